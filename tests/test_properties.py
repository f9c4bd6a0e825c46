"""Invariances and equivalences that hold for any input (hypothesis)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import crossentropy as ce

from . import losses

finite = st.floats(-30, 30, allow_nan=False, allow_infinity=False, width=64)


def _softmax(logits):
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _sigmoid(logits):
    return 1 / (1 + np.exp(-logits))


def _link(loss):
    """The map from logits to the first argument of `loss`."""
    if loss.from_logits:
        return lambda logits: logits
    return _softmax if loss.categorical else _sigmoid


@st.composite
def problems(draw, loss, *, targets=("labels", "soft")):
    """(first, target, options) for `loss`, its classes last, with weights and a mask.

    `first` is the link (softmax or sigmoid) of logits for the probability losses.
    Categorical targets are class indices or class probabilities, as `targets` allows;
    binary targets are floats, 0/1 integers or bools.
    """
    batch = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5))
    if loss.categorical:
        n_classes = draw(st.integers(1, 6))
        shape = (*batch, n_classes)
    else:
        shape = batch
    first = _link(loss)(draw(hnp.arrays(np.float64, shape, elements=finite)))
    options = {}
    if loss.categorical:
        if draw(st.sampled_from(targets)) == "labels":
            target = draw(hnp.arrays(np.int64, batch, elements=st.integers(0, n_classes - 1)))
        else:
            target = _softmax(draw(hnp.arrays(np.float64, shape, elements=finite)) / 10)
        options["class_weight"] = draw(
            st.none() | hnp.arrays(np.float64, n_classes, elements=st.floats(0.1, 3.0))
        )
    else:
        kind = draw(st.sampled_from(["float", "int", "bool"]))
        if kind == "float":
            target = draw(hnp.arrays(np.float64, shape, elements=st.floats(0, 1)))
        elif kind == "int":
            target = draw(hnp.arrays(np.int8, shape, elements=st.integers(0, 1)))
        else:
            target = draw(hnp.arrays(np.bool_, shape))
        weight_shape = st.sampled_from([(), shape[-1:], shape])
        options["pos_weight"] = draw(
            st.none() | hnp.arrays(np.float64, weight_shape, elements=st.floats(0, 3))
        )
    weights = st.floats(0, 3)  # subnormal weights too: D may be below 1 / DBL_MAX
    options["sample_weight"] = draw(st.none() | hnp.arrays(np.float64, batch, elements=weights))
    options["where"] = draw(st.none() | hnp.arrays(np.bool_, batch))
    options["label_smoothing"] = draw(st.sampled_from([0.0, 0.1, 0.5]))
    return first, target, options


def _total_weight(loss, target, options, batch):
    """``D`` per element: ``s * sum_c w_c t_c`` (categorical), ``s`` (binary)."""
    sample_weight = options["sample_weight"]
    s = np.broadcast_to(1.0 if sample_weight is None else sample_weight, batch)
    if not loss.categorical:
        return s
    w = options["class_weight"]
    if target.dtype.kind in "iu":
        return s if w is None else s * w[target]
    return s * (target.sum(axis=-1) if w is None else target @ w)


def _per_element(options, shape):
    """The per-element options broadcast to `shape` (None stays None)."""
    return {
        key: None if options.get(key) is None else np.broadcast_to(options[key], shape)
        for key in ("sample_weight", "where", "pos_weight")
        if key in options
    }


def _check_reductions_where_and_gradients(loss, problem):
    first, target, options = problem
    batch = loss.batch_shape(first.shape)
    kept = np.ones(batch, bool) if options["where"] is None else options["where"]
    first = first.copy()
    first[~kept] = np.nan  # whatever an element left out holds
    results = {}
    for reduction in ("none", "sum", "mean"):
        value, grad = loss(first, target, reduction=reduction, return_grad=True, **options)
        # return_grad does not change the loss
        np.testing.assert_array_equal(loss(first, target, reduction=reduction, **options), value)
        results[reduction] = value, grad
    (none, grad_none), (total, grad_sum), (mean, grad_mean) = results.values()
    assert none.shape == batch
    np.testing.assert_allclose(np.sum(none), total, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(grad_none, grad_sum)
    # mean = sum / D, and D == 0 gives NaN with a zero gradient
    denominator = np.sum(_total_weight(loss, target, options, batch)[kept])
    if denominator > 0:
        np.testing.assert_allclose(mean, total / denominator, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(grad_mean, grad_sum / denominator, rtol=1e-12, atol=1e-15)
    else:
        assert np.isnan(mean)
        assert np.all(grad_mean == 0)
    # elements left out: exactly 0, the others finite
    assert np.all(none[~kept] == 0)
    assert np.all(grad_sum[~kept] == 0)
    assert np.all(np.isfinite(none[kept]))
    # where == boolean indexing
    per_element = _per_element(options, first.shape if not loss.categorical else batch)
    indexed = {
        key: None if value is None else value[kept]
        for key, value in per_element.items()
        if key != "where"
    }
    others = {key: value for key, value in options.items() if key not in per_element}
    for reduction, expected in (("sum", total), ("mean", mean)):
        got = loss(first[kept], target[kept], reduction=reduction, **indexed, **others)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)
    # permuting the batch permutes "none"
    order = np.random.default_rng(none.size).permutation(none.size)
    flat = {
        key: None if value is None else value.reshape(-1)[order]
        for key, value in per_element.items()
    }
    rows = (-1, first.shape[-1]) if loss.categorical else (-1,)
    flat_target = target.reshape(-1) if target.shape == batch else target.reshape(rows)
    permuted = loss(
        first.reshape(rows)[order], flat_target[order], reduction="none", **flat, **others
    )
    np.testing.assert_array_equal(permuted, none.reshape(-1)[order])


@losses.parametrize(losses.ALL)
def test_reductions_where_and_gradients(loss):
    @given(problems(loss))
    def check(problem):
        _check_reductions_where_and_gradients(loss, problem)

    check()


@losses.parametrize(losses.CATEGORICAL)
def test_axis_equals_moving_the_class_axis_last(loss):
    # a cheap property: half the examples cover it
    @settings(max_examples=30)
    @given(problems(loss), st.data())
    def check(problem, data):
        first, target, options = problem
        axis = data.draw(st.integers(-first.ndim, first.ndim - 1))
        moved_target = target if target.dtype.kind in "iu" else np.moveaxis(target, -1, axis)
        got, grad = loss(
            np.moveaxis(first, -1, axis), moved_target, axis=axis, reduction="none",
            return_grad=True, **options,
        )  # fmt: skip
        expected, expected_grad = loss(first, target, reduction="none", return_grad=True, **options)
        np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-300)
        np.testing.assert_allclose(np.moveaxis(grad, axis, -1), expected_grad, rtol=1e-13)

    check()


@settings(max_examples=30)
@given(problems(losses.BY_NAME["categorical_cross_entropy_with_logits"]), st.floats(-50, 50))
def test_adding_a_constant_to_the_logits_of_a_row_changes_neither_loss_nor_gradient(problem, shift):
    loss = losses.BY_NAME["categorical_cross_entropy_with_logits"]
    logits, target, options = problem
    before, grad = loss(logits, target, reduction="none", return_grad=True, **options)
    after, grad_after = loss(logits + shift, target, reduction="none", return_grad=True, **options)
    np.testing.assert_allclose(after, before, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(grad_after, grad, rtol=1e-8, atol=1e-10)
    # each row of the gradient, s (A softmax - a), sums to s (A - A) = 0
    np.testing.assert_allclose(grad.sum(axis=-1), 0.0, atol=1e-13 * (1 + np.abs(grad).max()))


@losses.parametrize(losses.CATEGORICAL)
def test_integer_targets_equal_one_hot_targets(loss):
    # a cheap property: half the examples cover it
    @settings(max_examples=30)
    @given(problems(loss, targets=("labels",)))
    def check(problem):
        first, labels, options = problem
        one_hot = np.eye(first.shape[-1])[labels]
        for reduction in ("none", "sum", "mean"):
            by_label = loss(first, labels, reduction=reduction, return_grad=True, **options)
            by_one_hot = loss(first, one_hot, reduction=reduction, return_grad=True, **options)
            for a, b in zip(by_label, by_one_hot, strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)

    check()


@losses.parametrize(losses.PROBABILITIES)
def test_probabilities_of_the_link_equal_the_logits_loss(loss):
    # x within +-10: the probabilities and their complements keep 11 digits or more
    from_logits = losses.with_logits(loss)

    @settings(max_examples=30)
    @given(problems(from_logits))
    def check(problem):
        logits, target, options = problem
        logits = np.clip(logits, -10, 10)
        expected = from_logits(logits, target, reduction="none", **options)
        got = loss(_link(loss)(logits), target, reduction="none", eps=0, **options)
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)

    check()


@settings(max_examples=30)
@given(
    hnp.arrays(np.float64, hnp.array_shapes(max_dims=3, max_side=6), elements=finite),
    st.sampled_from([0.0, 0.2]),
)
def test_binary_logits_equal_the_two_class_categorical_loss(x, smoothing):
    t = (np.abs(x) * 7 % 1 > 0.5).astype(np.int64)
    binary = ce.binary_cross_entropy_with_logits(x, t, reduction="none", label_smoothing=smoothing)
    two_class = np.stack([np.zeros_like(x), x], axis=-1)
    categorical = ce.categorical_cross_entropy_with_logits(
        two_class, t, reduction="none", label_smoothing=smoothing
    )
    np.testing.assert_allclose(binary, categorical, rtol=1e-12, atol=1e-300)


def test_results_do_not_depend_on_the_thread_count(rng):
    # 6000 x 50 = 300_000 elements: large enough to be split over 2 threads.
    logits = rng.normal(size=(6000, 50)).astype(np.float32)
    labels = rng.integers(0, 50, size=6000)
    x = rng.normal(size=400_000)
    t = rng.random(400_000)
    results = {}
    for threads in (1, 2, 3):
        with ce.num_threads(threads):
            results[threads] = (
                ce.categorical_cross_entropy_with_logits(logits, labels, return_grad=True),
                ce.binary_cross_entropy_with_logits(x, t, return_grad=True),
            )
    for threads in (2, 3):
        for got, expected in zip(results[threads], results[1], strict=True):
            np.testing.assert_allclose(got[0], expected[0], rtol=1e-6)
            np.testing.assert_array_equal(got[1], expected[1])


@losses.parametrize(losses.ALL)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_thread_count_with_every_option(rng, loss, reduction):
    n, n_classes = 3000, 120  # 360_000 elements
    first, target = loss.make(rng, (n, n_classes))
    if loss.categorical:
        options = {
            "class_weight": rng.uniform(0, 2, n_classes),
            "ignore_index": 7,
            "label_smoothing": 0.1,
        }
        batch = (n,)
    else:
        target = rng.random((n, n_classes))
        options = {"pos_weight": rng.uniform(0, 2, n_classes), "label_smoothing": 0.1}
        batch = (n, n_classes)
    options["sample_weight"] = rng.uniform(0, 2, batch)
    options["where"] = rng.random(batch) > 0.1
    with ce.num_threads(1):
        loss1, grad1 = loss(first, target, reduction=reduction, return_grad=True, **options)
    with ce.num_threads(2):
        loss2, grad2 = loss(first, target, reduction=reduction, return_grad=True, **options)
    np.testing.assert_allclose(loss2, loss1, rtol=1e-13)
    np.testing.assert_allclose(grad2, grad1, rtol=1e-13, atol=1e-300)


def test_concurrent_calls_from_python_threads(rng):
    problems = [(rng.normal(size=(2000, 300)), rng.integers(0, 300, size=2000)) for _ in range(6)]
    expected = [
        ce.categorical_cross_entropy_with_logits(x, y, return_grad=True) for x, y in problems
    ]
    results: dict[int, object] = {}

    def work(i):
        # Each thread also asks for its own thread count (a context, local to it).
        with ce.num_threads(1 + i % 3):
            for _ in range(3):
                results[i] = ce.categorical_cross_entropy_with_logits(
                    *problems[i], return_grad=True
                )

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i, (loss, grad) in enumerate(expected):
        assert results[i][0] == loss
        np.testing.assert_array_equal(results[i][1], grad)


def test_thread_settings():
    default = ce.get_num_threads()
    with ce.num_threads(1):
        assert ce.get_num_threads() == 1
        with ce.num_threads(3):
            assert ce.get_num_threads() == 3
        assert ce.get_num_threads() == 1
    ce.set_num_threads(2)
    try:
        assert ce.get_num_threads() == 2
    finally:
        ce.set_num_threads(None)
    assert ce.get_num_threads() == default
    with pytest.raises(ValueError, match="positive"):
        ce.set_num_threads(0)
    with pytest.raises(TypeError, match="positive int"):
        ce.num_threads(1.5).__enter__()


def test_environment_variable_sets_the_default(monkeypatch):
    monkeypatch.setenv("CROSSENTROPY_NUM_THREADS", "3")
    assert ce.get_num_threads() == 3
    monkeypatch.setenv("CROSSENTROPY_NUM_THREADS", "many")
    with pytest.raises(ValueError, match="CROSSENTROPY_NUM_THREADS"):
        ce.get_num_threads()
