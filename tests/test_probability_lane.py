"""The lane of plain calls of ``categorical_cross_entropy``: probabilities and labels.

Every test first checks that its calls take the lane (``plain_call`` accepts them), then
checks them against mpmath, the float64 loop of ``tests/reference.py`` or the general
path, which ``class_weight`` of ones forces (it changes nothing).
"""

from __future__ import annotations

import warnings

import mpmath
import numpy as np
import pytest

import crossentropy as ce
from crossentropy import ProbabilitySumWarning, _categorical, _log_loss
from crossentropy._prepare import plain_call

from . import losses, reference

mpmath.mp.dps = 50

OPTIONS = losses.public_options("categorical_cross_entropy")
# Blocks of a few hundred elements (see small_blocks).
SMALL_BLOCK_ELEMENTS = 1 << 9


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of SMALL_BLOCK_ELEMENTS: calls of a few thousand rows span several."""
    monkeypatch.setattr(_categorical, "_PLAIN_BLOCK_ELEMENTS", SMALL_BLOCK_ELEMENTS)


def _takes_the_lane(probs, labels, **options):
    assert _categorical._PROBABILITIES.plain is not None
    call = plain_call(probs, labels, {**OPTIONS, **options}, from_logits=False)
    return call is not None and call.logits.ndim == 2


def _general(probs, labels, **options):
    """The same call on the general path: class weights of 1 change nothing."""
    ones = np.ones(probs.shape[-1], dtype=probs.dtype)
    return ce.categorical_cross_entropy(probs, labels, class_weight=ones, **options)


def _probabilities(rng, n_rows, n_classes, dtype):
    """Rows that sum to 1 in `dtype` (to its rounding), a few with 0 at some classes."""
    probs = rng.dirichlet(np.ones(n_classes), size=n_rows)
    probs[::11, 0] = 0.0
    probs /= probs.sum(axis=1, keepdims=True)
    return probs.astype(dtype)


def _float64_gradient(probs, labels, scale):
    """``s (-1 / q_y)`` at the labels (0 where ``p_y`` is clipped), 0 elsewhere."""
    eps = float(np.finfo(probs.dtype).eps)
    rows = np.arange(len(probs))
    picked = probs[rows, labels].astype(np.float64)
    slope = -1 / np.clip(picked, eps, 1 - eps)
    slope[(picked < eps) | (picked > 1 - eps)] = 0
    grad = np.zeros(probs.shape)
    grad[rows, labels] = scale * slope
    return grad


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(("n_rows", "n_classes"), [(1, 3), (64, 10), (1000, 7), (300, 100)])
@pytest.mark.usefixtures("small_blocks")
def test_against_a_float64_loop(rng, dtype, reduction, n_rows, n_classes):
    probs = _probabilities(rng, n_rows, n_classes, dtype)
    labels = rng.integers(0, n_classes, size=n_rows)
    labels[::11] = 0  # some labels' probabilities are 0: clipped
    assert _takes_the_lane(probs, labels)
    loss, grad = ce.categorical_cross_entropy(probs, labels, reduction=reduction, return_grad=True)
    expected = reference.categorical(probs, labels, logits=False, reduction=reduction)
    rtol = 1e-13 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(loss, expected, rtol=rtol)
    scale = 1 / n_rows if reduction == "mean" else 1.0
    np.testing.assert_allclose(grad, _float64_gradient(probs, labels, scale), rtol=rtol)
    assert grad.dtype == dtype
    assert np.asarray(loss).dtype == dtype


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.usefixtures("small_blocks")
def test_the_lane_and_the_general_path_give_the_same_bits(rng, dtype):
    probs = _probabilities(rng, 2000, 6, dtype)
    labels = rng.integers(0, 6, size=2000)
    assert _takes_the_lane(probs, labels)
    for reduction in ("none", "mean"):
        got = ce.categorical_cross_entropy(probs, labels, reduction=reduction, return_grad=True)
        want = _general(probs, labels, reduction=reduction, return_grad=True)
        np.testing.assert_array_equal(got[1], want[1])
        if reduction == "none":
            np.testing.assert_array_equal(got[0], want[0])
        else:  # the block sums may be added in another order
            np.testing.assert_allclose(got[0], want[0], rtol=4 * np.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("p", [1e-30, 1e-5, 0.5, 1 - 1e-5, 1 - 1e-12])
def test_tiny_losses_keep_their_relative_accuracy(dtype, p):
    probs = np.array([[p, 1 - p], [1 - p, p]], dtype=dtype)
    probs /= probs.sum(axis=1, keepdims=True)
    labels = np.array([0, 0])
    assert _takes_the_lane(probs, labels)
    got = ce.categorical_cross_entropy(probs, labels, reduction="none")
    eps = mpmath.mpf(float(np.finfo(dtype).eps))
    expected = [
        float(-mpmath.log(min(max(mpmath.mpf(float(row[0])), eps), 1 - eps))) for row in probs
    ]
    np.testing.assert_allclose(got, expected, rtol=4 * float(np.finfo(dtype).eps))


@pytest.mark.usefixtures("small_blocks")
def test_rows_that_do_not_sum_to_one_warn_as_on_the_general_path(rng):
    probs = _probabilities(rng, 3000, 5, np.float64)
    probs[2500] *= 1.5  # in a late block: earlier blocks have run
    probs[2500] /= probs[2500].max()  # still in [0, 1]
    labels = rng.integers(0, 5, size=3000)
    assert _takes_the_lane(probs, labels)
    with warnings.catch_warnings(record=True) as got_warnings:
        warnings.simplefilter("always")
        got = ce.categorical_cross_entropy(probs, labels)
        want = _general(probs, labels)
    assert len(got_warnings) == 2
    assert all(w.category is ProbabilitySumWarning for w in got_warnings)
    assert str(got_warnings[0].message) == str(got_warnings[1].message)
    assert got_warnings[0].filename == __file__
    np.testing.assert_allclose(got, want, rtol=1e-15)


@pytest.mark.parametrize(
    ("value", "error"),
    [(1.5, r"probs must lie in \[0, 1\].*1\.5"), (np.nan, r"probs must lie in \[0, 1\].*nan")],
)
@pytest.mark.usefixtures("small_blocks")
def test_values_out_of_range_take_the_general_path_and_its_errors(rng, value, error):
    probs = _probabilities(rng, 3000, 5, np.float64)
    probs[2900, 1] = value
    labels = rng.integers(0, 5, size=3000)
    assert _takes_the_lane(probs, labels)
    with pytest.raises(ValueError, match=error):
        ce.categorical_cross_entropy(probs, labels, return_grad=True)


@pytest.mark.parametrize(
    "label_dtype", [np.int8, np.uint8, np.int16, np.int32, np.int64, np.uint32, np.uint64]
)
@pytest.mark.usefixtures("small_blocks")
def test_label_dtypes(rng, label_dtype):
    probs = _probabilities(rng, 500, 4, np.float64)
    labels = rng.integers(0, 4, size=500).astype(label_dtype)
    assert _takes_the_lane(probs, labels)
    got = ce.categorical_cross_entropy(probs, labels, reduction="none")
    np.testing.assert_array_equal(got, _general(probs, labels, reduction="none"))


def test_results_do_not_depend_on_the_thread_count(rng):
    probs = _probabilities(rng, 300_000, 10, np.float64)  # several blocks
    labels = rng.integers(0, 10, size=300_000)
    assert _takes_the_lane(probs, labels)
    results = {}
    for threads in (1, 2, 3):
        with ce.num_threads(threads):
            results[threads] = [
                ce.categorical_cross_entropy(probs, labels, reduction=r, return_grad=True)
                for r in ("mean", "none")
            ]
    for threads in (2, 3):
        for got, want in zip(results[threads], results[1], strict=True):
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])
    picked = probs[np.arange(len(probs)), labels]
    eps = float(np.finfo(np.float64).eps)
    expected = -np.log(np.clip(picked, eps, 1 - eps))
    np.testing.assert_allclose(results[1][1][0], expected, rtol=1e-15)
    np.testing.assert_allclose(results[1][0][0], expected.mean(), rtol=1e-13)


def test_what_stays_off_the_lane_gets_the_same_results(rng):
    probs = _probabilities(rng, 40, 6, np.float64)
    labels = rng.integers(0, 6, size=40)
    expected = reference.categorical(probs, labels, logits=False, reduction="none")
    assert not _takes_the_lane(probs, labels, eps=1e-7)
    assert not _takes_the_lane(probs, labels, label_smoothing=0.1)
    # PyTorch's layout: the lane takes rows only.
    class_major = np.moveaxis(probs.reshape(4, 10, 6), 2, 1).copy()
    assert not _takes_the_lane(class_major, labels.reshape(4, 10), axis=1)
    got = ce.categorical_cross_entropy(class_major, labels.reshape(4, 10), axis=1, reduction="none")
    np.testing.assert_allclose(got, expected.reshape(4, 10), rtol=1e-15)
    # Integer probabilities warn on the general path: they are most often labels.
    one_hot = np.eye(6, dtype=np.int64)[labels]
    assert not _takes_the_lane(one_hot, labels)
    with pytest.warns(UserWarning, match=r"\(probs, target\)"):
        ce.categorical_cross_entropy(one_hot, labels)
    # Read-only inputs, untouched.
    probs.flags.writeable = False
    kept = probs.copy()
    assert _takes_the_lane(probs, labels)
    got = ce.categorical_cross_entropy(probs, labels, reduction="none")
    np.testing.assert_allclose(got, expected, rtol=1e-15)
    np.testing.assert_array_equal(probs, kept)


@pytest.mark.usefixtures("small_blocks")
def test_log_loss_takes_the_lane_with_its_own_names(rng):
    probs = _probabilities(rng, 3000, 4, np.float64)
    labels = rng.integers(0, 4, size=3000)
    assert ce.log_loss(labels, probs) == pytest.approx(
        reference.categorical(probs, labels, logits=False), rel=1e-13
    )
    np.testing.assert_allclose(
        ce.log_loss(labels, probs, normalize=False),
        reference.categorical(probs, labels, logits=False, reduction="sum"),
        rtol=1e-13,
    )
    probs[2500] *= 0.5  # a late block's row does not sum to 1
    with pytest.warns(ProbabilitySumWarning, match="y_proba"):
        ce.log_loss(labels, probs)
    probs[2600, 1] = 1.5
    with pytest.raises(ValueError, match=r"y_proba must lie in \[0, 1\]"):
        ce.log_loss(labels, probs)


@pytest.fixture
def small_column_blocks(monkeypatch):
    """Blocks of a few hundred rows for both the stacked rows and the 1-D column."""
    monkeypatch.setattr(_categorical, "_PLAIN_BLOCK_ELEMENTS", SMALL_BLOCK_ELEMENTS)
    monkeypatch.setattr(_log_loss, "_COLUMN_BLOCK", SMALL_BLOCK_ELEMENTS // 2)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.usefixtures("small_column_blocks")
def test_log_loss_of_a_column_gives_the_stacked_rows_bits(rng, dtype, normalize):
    positive = rng.random(3000).astype(dtype)
    positive[:4] = [0.0, 1.0, 0.0, 1.0]  # clipped, either label
    y_true = np.arange(3000) % 2
    stacked = np.stack([1 - positive, positive], axis=1)
    got = ce.log_loss(y_true, positive, normalize=normalize)
    assert got == ce.log_loss(y_true, stacked, normalize=normalize)
    reduction = "mean" if normalize else "sum"
    expected = reference.categorical(stacked, y_true, logits=False, reduction=reduction)
    assert got == pytest.approx(expected, rel=1e-13 if dtype == np.float64 else 2e-6)
    # Labels of any kind, and a column of shape (n, 1).
    named = np.array(["no", "yes"])[y_true]
    assert ce.log_loss(named, positive[:, None], normalize=normalize) == got


@pytest.mark.usefixtures("small_column_blocks")
def test_log_loss_of_a_column_off_its_lane(rng):
    positive = rng.random(3000)
    y_true = np.arange(3000) % 2
    stacked = np.stack([1 - positive, positive], axis=1)
    weight = rng.random(3000)
    for args, kwargs in [
        ((y_true, positive[::-1]), {}),  # not C-contiguous
        ((y_true, positive.astype(np.float16)), {}),  # computed in float32, eps of float16
        ((y_true, positive), {"sample_weight": weight}),
    ]:
        column = args[1]
        rows = np.stack([1 - column, column], axis=1)
        assert ce.log_loss(*args, **kwargs) == ce.log_loss(args[0], rows, **kwargs)
    assert _log_loss._column_loss(positive[::-1], y_true, "mean") is None
    expected = reference.categorical(stacked, y_true, logits=False, sample_weight=weight)
    assert ce.log_loss(y_true, positive, sample_weight=weight) == pytest.approx(expected, rel=1e-13)
    positive[2500] = 1.5
    with pytest.raises(ValueError, match=r"y_proba must lie in \[0, 1\]"):
        ce.log_loss(y_true, positive)


def test_log_loss_of_a_column_allocates_no_stacked_rows(rng):
    positive = rng.random(2_000_000)  # 16 MiB
    y_true = (rng.random(positive.size) < 0.5).astype(np.int64)
    peak = losses.second_call_peak(lambda: ce.log_loss(y_true, positive))
    assert peak < positive.nbytes / 16
