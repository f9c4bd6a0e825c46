"""``class_weight="balanced"`` and ``pos_weight="balanced"``: weights computed from the targets.

The weights are checked against scikit-learn's ``compute_class_weight`` and against plain
loops over the elements counted; the losses with "balanced" against the same losses given
those weights explicitly (and the plain-loop oracles of ``reference.py``).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from . import losses

compute_class_weight = pytest.importorskip("sklearn.utils.class_weight").compute_class_weight


def _class_weight_loop(labels, n_classes, counted=None, sample_weight=None):
    """``n / (C n_c)`` over the counted elements, one element at a time; 0 for n_c = 0."""
    totals = [0.0] * n_classes
    for i, label in enumerate(labels):
        if counted is None or counted[i]:
            totals[label] += 1.0 if sample_weight is None else float(sample_weight[i])
    n = sum(totals)
    return np.array([n / (n_classes * total) if total > 0 else 0.0 for total in totals])


def _pos_weight_loop(target, counted=None, sample_weight=None):
    """Per label of the last axis: the total of 1 - t over that of t; 1 if either is 0."""
    target = np.asarray(target, dtype=float)
    if target.ndim < 2:
        target = target.reshape(-1, 1)
        counted = None if counted is None else np.reshape(counted, (-1, 1))
        sample_weight = None if sample_weight is None else np.reshape(sample_weight, (-1, 1))
    rows, labels = target.shape[0], target.shape[-1]
    weights = []
    for k in range(labels):
        positive = negative = 0.0
        for index in np.ndindex(target.shape[:-1]):
            if counted is not None and not counted[(*index, k)]:
                continue
            s = 1.0 if sample_weight is None else float(sample_weight[(*index, k)])
            positive += s * target[(*index, k)]
            negative += s * (1.0 - target[(*index, k)])
        weights.append(negative / positive if positive > 0 and negative > 0 else 1.0)
    del rows
    return np.array(weights)


def _assert_same_call(loss, first, target, weight_option, weights, **options):
    """The loss with "balanced" equals the loss with `weights`, for every reduction."""
    for reduction in ("none", "sum", "mean"):
        got = loss(first, target, reduction=reduction, **{weight_option: "balanced"}, **options)
        want = loss(first, target, reduction=reduction, **{weight_option: weights}, **options)
        np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-300)
        oracle = loss.oracle(
            first, target, reduction=reduction, **{weight_option: weights}, **options
        )
        np.testing.assert_allclose(got, oracle, rtol=1e-12, atol=1e-300)
    got = loss(first, target, return_grad=True, **{weight_option: "balanced"}, **options)
    want = loss(first, target, return_grad=True, **{weight_option: weights}, **options)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-14, atol=1e-300)


@losses.parametrize(losses.CATEGORICAL)
def test_class_weight_is_scikit_learns_compute_class_weight(rng, loss):
    first, target = loss.make(rng, (40, 4))
    target[:4] = [0, 1, 2, 3]  # every class present, as compute_class_weight needs
    expected = compute_class_weight("balanced", classes=np.arange(4), y=target)
    np.testing.assert_allclose(expected, _class_weight_loop(target, 4), rtol=1e-15)
    _assert_same_call(loss, first, target, "class_weight", expected)
    sample_weight = rng.uniform(0.0, 3.0, size=40)
    weighted = compute_class_weight(
        "balanced", classes=np.arange(4), y=target, sample_weight=sample_weight
    )
    np.testing.assert_allclose(
        weighted, _class_weight_loop(target, 4, sample_weight=sample_weight), rtol=1e-14
    )
    _assert_same_call(
        loss, first, target, "class_weight", weighted, sample_weight=sample_weight, axis=-1
    )


@losses.parametrize(losses.CATEGORICAL)
def test_with_every_class_present_the_mean_divides_by_the_number_of_elements(rng, loss):
    # D = sum_c n_c * n / (C n_c) = n: balanced weights keep the scale of the mean.
    first, target = loss.make(rng, (30, 3))
    target[:3] = [0, 1, 2]
    total = loss(first, target, class_weight="balanced", reduction="sum")
    mean = loss(first, target, class_weight="balanced")
    np.testing.assert_allclose(mean, total / 30, rtol=1e-14)


@losses.parametrize(losses.CATEGORICAL)
def test_only_the_elements_counted_are_counted(rng, loss):
    first, target = loss.make(rng, (5, 4, 6), axis=1)  # 4 classes, batch shape (5, 6)
    target[0, :4] = [0, 1, 2, 3]
    where = rng.random((5, 6)) > 0.3
    where[0, :4] = True
    target[1, 1] = target[2, 3] = -100
    counted = where & (target != -100)
    sample_weight = rng.uniform(0.5, 2.0, size=(5, 1))
    weight = np.broadcast_to(sample_weight, (5, 6))
    expected = compute_class_weight(
        "balanced", classes=np.arange(4), y=target[counted], sample_weight=weight[counted]
    )
    looped = _class_weight_loop(target.reshape(-1), 4, counted.reshape(-1), weight.reshape(-1))
    np.testing.assert_allclose(expected, looped, rtol=1e-14)
    options = {"axis": 1, "where": where, "ignore_index": -100, "sample_weight": sample_weight}
    _assert_same_call(loss, first, target, "class_weight", expected, **options)


@losses.parametrize(losses.CATEGORICAL)
def test_masked_elements_are_not_counted(rng, loss):
    first, target = loss.make(rng, (12, 3))
    target[:3] = [0, 1, 2]
    mask = np.zeros(12, bool)
    mask[[4, 7, 9]] = True
    masked = np.ma.masked_array(target, mask=mask)
    expected = _class_weight_loop(target, 3, counted=~mask)
    got = loss(first, masked, class_weight="balanced", reduction="sum")
    want = loss(first, target, class_weight=expected, where=~mask, reduction="sum")
    np.testing.assert_allclose(got, want, rtol=1e-14)


@losses.parametrize(losses.CATEGORICAL)
def test_a_class_that_no_element_has_weighs_zero(rng, loss):
    first, target = loss.make(rng, (20, 4))
    target[target == 2] = 0  # class 2 absent
    target[:3] = [0, 1, 3]
    with pytest.raises(ValueError, match="classes should have valid labels"):
        compute_class_weight("balanced", classes=np.arange(4), y=target)
    present = np.array([0, 1, 3])
    expected = np.zeros(4)
    # scikit-learn, over the classes present: n / (3 n_c); here C = 4 classes.
    expected[present] = compute_class_weight("balanced", classes=present, y=target) * 3 / 4
    np.testing.assert_allclose(expected, _class_weight_loop(target, 4), rtol=1e-15)
    assert expected[2] == 0
    _assert_same_call(loss, first, target, "class_weight", expected, label_smoothing=0.1)


@losses.parametrize(losses.CATEGORICAL)
def test_balanced_needs_class_indices(rng, loss):
    first, target = loss.make(rng, (4, 3), soft=True)
    with pytest.raises(ValueError, match=r"class_weight='balanced'.*integer labels"):
        loss(first, target, class_weight="balanced")
    first, target = loss.make(rng, (4, 3))
    with pytest.raises(ValueError, match=r"class_weight must be None, 'balanced' or an array"):
        loss(first, target, class_weight="Balanced")


@losses.parametrize(losses.BINARY)
@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
def test_pos_weight_is_negatives_over_positives_per_label(rng, loss, soft):
    first, target = loss.make(rng, (30, 4), soft=soft)
    if not soft:
        target[:6] = np.tile([0.0, 1.0], 3)[:, None] * np.ones(4)  # both kinds in every label
    expected = _pos_weight_loop(target)
    if not soft:
        np.testing.assert_allclose(
            expected, (target == 0).sum(axis=0) / (target == 1).sum(axis=0), rtol=1e-15
        )
    _assert_same_call(loss, first, target, "pos_weight", expected)


@losses.parametrize(losses.BINARY)
def test_pos_weight_counts_only_the_elements_counted_with_their_weights(rng, loss):
    first, target = loss.make(rng, (3, 10, 5))
    where = rng.random((3, 10, 5)) > 0.25
    sample_weight = rng.uniform(0.0, 2.0, size=(3, 10, 1))
    weight = np.broadcast_to(sample_weight, target.shape)
    expected = _pos_weight_loop(target, counted=where, sample_weight=weight)
    options = {"where": where, "sample_weight": sample_weight, "label_smoothing": 0.1}
    _assert_same_call(loss, first, target, "pos_weight", expected, **options)
    garbage = target.copy()
    garbage[~where] = np.nan  # never read
    got = loss(first, garbage, pos_weight="balanced", reduction="sum", **options)
    np.testing.assert_allclose(
        got, loss(first, target, pos_weight=expected, reduction="sum", **options), rtol=1e-14
    )


@losses.parametrize(losses.BINARY)
def test_a_one_dimensional_input_is_one_label(rng, loss):
    first, target = loss.make(rng, (25,))
    target[:2] = [0.0, 1.0]
    expected = np.count_nonzero(target == 0) / np.count_nonzero(target == 1)
    np.testing.assert_allclose(_pos_weight_loop(target), [expected], rtol=1e-15)
    _assert_same_call(loss, first, target, "pos_weight", expected)


@losses.parametrize(losses.BINARY)
def test_a_label_without_positives_or_negatives_weighs_one(rng, loss):
    first, target = loss.make(rng, (8, 3))
    target[:, 0] = 0.0  # no positive
    target[:, 1] = 1.0  # no negative
    target[:, 2] = [1, 0, 0, 0, 0, 0, 0, 1]
    expected = np.array([1.0, 1.0, 3.0])
    np.testing.assert_array_equal(_pos_weight_loop(target), expected)
    _assert_same_call(loss, first, target, "pos_weight", expected, label_smoothing=0.2)
    everything_out = np.zeros((8, 3), bool)
    got = loss(first, target, pos_weight="balanced", where=everything_out, reduction="sum")
    assert got == 0


@losses.parametrize(losses.BINARY)
def test_other_strings_are_refused(rng, loss):
    first, target = loss.make(rng, (4, 3))
    with pytest.raises(ValueError, match=r"pos_weight must be None, 'balanced' or an array"):
        loss(first, target, pos_weight="balance")


@losses.parametrize(losses.ALL)
def test_inputs_are_not_modified(rng, loss):
    first, target = loss.make(rng, (6, 3))
    option = "class_weight" if loss.categorical else "pos_weight"
    sample_weight = rng.uniform(size=loss.batch_shape((6, 3)))
    before = copy.deepcopy((first, target, sample_weight))
    loss(first, target, sample_weight=sample_weight, return_grad=True, **{option: "balanced"})
    for was, now in zip(before, (first, target, sample_weight), strict=True):
        np.testing.assert_array_equal(was, now)


class TestDask:
    """On Dask arrays the weights are those of the whole array, not of each chunk."""

    da = pytest.importorskip("dask.array")

    @losses.parametrize(losses.CATEGORICAL)
    def test_categorical(self, rng, loss):
        da = self.da
        first, target = loss.make(rng, (7, 4, 9), axis=1)
        sample_weight = rng.uniform(0.0, 2.0, size=(7, 9))
        where = rng.random((7, 9)) > 0.2
        options = {"axis": 1, "ignore_index": 3, "sample_weight": sample_weight, "where": where}
        lazy = {**options, "sample_weight": da.from_array(sample_weight, chunks=(3, 4))}
        lazy_first = da.from_array(first, chunks=(3, 2, 4))
        lazy_target = da.from_array(target, chunks=(2, 5))
        for reduction in ("none", "sum", "mean"):
            got = loss(
                lazy_first,
                lazy_target,
                class_weight="balanced",
                reduction=reduction,
                return_grad=True,
                **lazy,
            )
            want = loss(
                first,
                target,
                class_weight="balanced",
                reduction=reduction,
                return_grad=True,
                **options,
            )
            assert isinstance(got[0], da.Array)
            for lazy_result, result in zip(got, want, strict=True):
                np.testing.assert_allclose(lazy_result.compute(), result, rtol=1e-12)

    @losses.parametrize(losses.BINARY)
    @pytest.mark.parametrize("shape", [(9, 5, 3), (23,)], ids=["labels-split", "one-label"])
    def test_binary(self, rng, loss, shape):
        da = self.da
        first, target = loss.make(rng, shape, soft=True)
        where = rng.random(shape) > 0.2
        chunks = (4, 2, 2) if len(shape) == 3 else (6,)
        lazy_first = da.from_array(first, chunks=chunks)
        for reduction in ("none", "mean"):
            got = loss(lazy_first, target, pos_weight="balanced", where=where, reduction=reduction)
            want = loss(first, target, pos_weight="balanced", where=where, reduction=reduction)
            assert isinstance(got, da.Array)
            np.testing.assert_allclose(got.compute(), want, rtol=1e-12)

    @losses.parametrize(losses.ALL)
    def test_a_masked_input_is_read_for_its_mask(self, rng, loss):
        da = self.da
        first, target = loss.make(rng, (30, 3))
        mask = np.zeros((30, 3), bool)
        mask[[2, 5, 9]] = True  # whole rows, as a categorical loss needs
        masked = np.ma.masked_array(first, mask)
        lazy = da.from_array(masked, chunks=(7, 3), asarray=False)
        option = "class_weight" if loss.categorical else "pos_weight"
        got = loss(lazy, target, **{option: "balanced"}).compute()
        np.testing.assert_allclose(got, loss(masked, target, **{option: "balanced"}), rtol=1e-12)
        unmasked = loss(first, target, **{option: "balanced"})
        assert not np.isclose(got, unmasked, rtol=1e-6)
