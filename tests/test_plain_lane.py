"""The lane of plain calls: logits and labels without options, as a training loop makes them.

Every test first checks that its calls do take the lane (``plain_call`` accepts them and
the lane fits their shape), then checks them against mpmath, a float64 loop
(``tests/reference.py``) or the general path, which an option that changes nothing
(``class_weight`` of ones) forces.
"""

from __future__ import annotations

import numpy as np
import pytest

import crossentropy as ce
from crossentropy import _kernel
from crossentropy._categorical import _LOGITS
from crossentropy._prepare import plain_call

from . import losses, reference
from .test_extreme import _mp_categorical, _mp_softmax_minus_target

# The options of the public function, at their defaults.
OPTIONS = losses.public_options("categorical_cross_entropy_with_logits")


def _takes_the_lane(logits, labels, **options):
    call = plain_call(logits, labels, {**OPTIONS, **options})
    assert _LOGITS.plain is not None
    return call is not None and call.logits.ndim == 2


def _float64_losses_and_gradient(logits, labels):
    """Per-row losses ``lse(x) - x_y`` and ``softmax(x) - onehot(y)``, in float64."""
    x = logits.astype(np.float64)
    rows = np.arange(len(x))
    top = x.max(axis=1, keepdims=True)
    exps = np.exp(x - top)
    sums = exps.sum(axis=1, keepdims=True)
    gradient = exps / sums
    gradient[rows, labels] -= 1
    return np.log(sums[:, 0]) + top[:, 0] - x[rows, labels], gradient


def _unshifted(n_rows, n_classes):
    """Whether a block of these rows may take e^x without the shift."""
    long_rows = n_classes > _kernel._EINSUM_CLASSES
    block = _kernel._LONG_ROW_BLOCK_ELEMENTS if long_rows else _kernel._BLOCK_ELEMENTS
    block_rows = max(1, block // n_classes)
    return min(block_rows, n_rows) * n_classes >= _kernel._UNSHIFTED_ELEMENTS


def _general(logits, labels, **options):
    """The same call on the general path: class weights of 1 change nothing."""
    ones = np.ones(logits.shape[-1], dtype=logits.dtype)
    return ce.categorical_cross_entropy_with_logits(logits, labels, class_weight=ones, **options)


@pytest.mark.parametrize("margin", [0.5, 5.0, 20.0, 40.0, 80.0, 300.0, 700.0])
@pytest.mark.parametrize("n_classes", [2, 10, 1000])
@pytest.mark.parametrize("n_rows", [1, 64])  # one small block; one large enough for e^x
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_confident_correct_predictions_against_mpmath(margin, n_classes, n_rows, dtype):
    row = np.zeros(n_classes)
    row[1] = margin
    logits = np.tile(row, (n_rows, 1)).astype(dtype)
    labels = np.ones(n_rows, dtype=np.int64)
    assert _takes_the_lane(logits, labels)
    got = ce.categorical_cross_entropy_with_logits(logits, labels, reduction="none")
    expected = np.float64(_mp_categorical(logits[0].astype(np.float64), 1)).astype(dtype)
    rtol = 4 * np.finfo(dtype).eps
    tiny = np.finfo(dtype).smallest_subnormal
    np.testing.assert_allclose(got, np.full(n_rows, expected), rtol=rtol, atol=tiny)
    if expected > 0:
        assert np.all(got > 0)


@pytest.mark.parametrize("margin", [0.5, 20.0, 40.0, 80.0, 700.0])
@pytest.mark.parametrize("n_classes", [3, 1000])
@pytest.mark.parametrize("n_rows", [2, 64])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gradient_at_a_confident_label_against_mpmath(margin, n_classes, n_rows, dtype):
    # softmax_y - 1 = -others / (1 + others), which a difference would round to 0.
    pair = np.zeros((2, n_classes))
    pair[0, 1] = margin
    pair[1, [0, 2]] = margin  # a tie at the maximum
    logits = np.tile(pair, (n_rows // 2, 1)).astype(dtype)
    labels = np.tile([1, 2], n_rows // 2)
    assert _takes_the_lane(logits, labels)
    _, grad = ce.categorical_cross_entropy_with_logits(
        logits, labels, reduction="sum", return_grad=True
    )
    expected = np.array(
        [
            _mp_softmax_minus_target(row.astype(np.float64), y)
            for row, y in zip(pair, [1, 2], strict=True)
        ]
    )
    expected = np.tile(expected, (n_rows // 2, 1)).astype(dtype)
    rtol = 8 * np.finfo(dtype).eps
    np.testing.assert_allclose(grad, expected, rtol=rtol, atol=np.finfo(dtype).smallest_subnormal)
    np.testing.assert_array_equal(grad[0::2, 1] < 0, expected[0::2, 1] < 0)


@pytest.mark.parametrize("scale", [1.0, 30.0, 1e3, 1e30])
@pytest.mark.parametrize("n_rows", [20, 4000])  # 4000 x 7: blocks of e^x where they can
def test_random_rows_against_mpmath(rng, scale, n_rows):
    logits = rng.normal(size=(n_rows, 7)) * scale
    labels = rng.integers(0, 7, size=n_rows)
    assert _takes_the_lane(logits, labels)
    got = ce.categorical_cross_entropy_with_logits(logits, labels, reduction="none")
    picked = rng.choice(n_rows, size=20, replace=False)
    expected = [_mp_categorical(logits[i], labels[i]) for i in picked]
    np.testing.assert_allclose(got[picked], expected, rtol=4e-15)


# e^x where every row's sum of e^x is at least 1/2 (0, 30); the shift by the maxima where
# one is less (-50), or where e^x overflows (200)
@pytest.mark.parametrize("shift", [0.0, -50.0, 30.0, 200.0])
@pytest.mark.parametrize(
    ("n_rows", "n_classes"), [(3, 5), (64, 100), (300, 300), (40, 2000), (2000, 10)]
)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_against_a_float64_loop(rng, shift, n_rows, n_classes, reduction, dtype):
    logits = (rng.normal(size=(n_rows, n_classes)) * 3 + shift).astype(dtype)
    labels = rng.integers(0, n_classes, size=n_rows)
    assert _takes_the_lane(logits, labels, reduction=reduction)
    got, grad = ce.categorical_cross_entropy_with_logits(
        logits, labels, reduction=reduction, return_grad=True
    )
    assert grad.dtype == dtype
    assert np.asarray(got).dtype == dtype
    expected = reference.categorical(logits, labels, logits=True, reduction=reduction)
    rtol = 1e-13 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(got, expected, rtol=rtol)
    # softmax - onehot, times 1/N for the mean, in float64
    wide = logits.astype(np.float64)
    softmax = np.exp(wide - wide.max(axis=1, keepdims=True))
    softmax /= softmax.sum(axis=1, keepdims=True)
    softmax[np.arange(n_rows), labels] -= 1
    if reduction == "mean":
        softmax /= n_rows
    atol = 1e-15 if dtype == np.float64 else 1e-7 / (n_rows if reduction == "mean" else 1)
    np.testing.assert_allclose(grad, softmax, rtol=rtol, atol=atol)


@pytest.mark.parametrize(("n_rows", "n_classes"), [(64, 10), (64, 100), (700, 300), (70, 1000)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_lane_and_the_general_path_agree_to_rounding(rng, n_rows, n_classes, dtype):
    logits = (rng.normal(size=(n_rows, n_classes)) * 4).astype(dtype)
    labels = rng.integers(0, n_classes, size=n_rows)
    assert _takes_the_lane(logits, labels)
    eps = np.finfo(dtype).eps
    for reduction in ("mean", "sum", "none"):
        got = ce.categorical_cross_entropy_with_logits(
            logits, labels, reduction=reduction, return_grad=True
        )
        expected = _general(logits, labels, reduction=reduction, return_grad=True)
        np.testing.assert_allclose(got[0], expected[0], rtol=8 * eps)
        np.testing.assert_allclose(got[1], expected[1], rtol=8 * eps, atol=eps / n_rows)


@pytest.mark.parametrize("n_classes", [3, 100])
@pytest.mark.parametrize("n_rows", [4, 400])
def test_nan_and_unbounded_rows(n_classes, n_rows):
    logits = np.zeros((n_rows, n_classes))
    logits[:, 0] = 1.0
    logits[0, 1] = np.nan
    logits[1, 1] = np.inf  # the label is not at the +inf
    logits[2, :] = -np.inf
    logits[3, 0] = -np.inf  # the label's logit is -inf: a finite row, an infinite loss
    labels = np.zeros(n_rows, dtype=np.int64)
    labels[3] = 0
    assert _takes_the_lane(logits, labels)
    none = ce.categorical_cross_entropy_with_logits(logits, labels, reduction="none")
    assert np.isnan(none[:3]).all()
    assert none[3] == np.inf
    assert np.all(np.isfinite(none[4:]))
    _, grad = ce.categorical_cross_entropy_with_logits(
        logits, labels, reduction="sum", return_grad=True
    )
    assert np.isnan(grad[:3]).all()
    # softmax(x)_0 = 0 at the -inf label: the gradient there is -1
    assert grad[3, 0] == -1.0
    assert np.all(np.isfinite(grad[3:]))
    np.testing.assert_array_equal(none, _general(logits, labels, reduction="none"))


# One row of 5 logits and its label: each makes NaN, inf or a wide gap in its own way.
_UNBOUNDED_ROWS = {
    "+inf at the label": ([0.0, np.inf, 1.0, 2.0, 3.0], 1),
    "+inf elsewhere": ([0.0, np.inf, 1.0, 2.0, 3.0], 0),
    "+inf twice": ([np.inf, np.inf, 1.0, 2.0, 3.0], 0),
    "NaN": ([0.0, np.nan, 1.0, 2.0, 3.0], 0),
    "-inf at the label": ([-np.inf, 0.0, 1.0, 2.0, 3.0], 0),
    "-inf elsewhere": ([-np.inf, 0.0, 1.0, 2.0, 3.0], 2),
    "all -inf": ([-np.inf] * 5, 3),
    "a gap of 100 above the label": ([100.0, 0.0, 1.0, 2.0, 3.0], 1),
    "a gap of 100 below the label": ([100.0, 0.0, 1.0, 2.0, 3.0], 0),
}


@pytest.mark.parametrize("case", list(_UNBOUNDED_ROWS))
@pytest.mark.parametrize("n_rows", [1, 64])  # a single row skips the errstate where it can
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rows_with_infinities_nan_and_wide_gaps(case, n_rows, dtype):
    row, label = _UNBOUNDED_ROWS[case]
    logits = np.tile(np.array(row, dtype=dtype), (n_rows, 1))
    labels = np.full(n_rows, label)
    assert _takes_the_lane(logits, labels)
    none, grad = ce.categorical_cross_entropy_with_logits(
        logits, labels, reduction="none", return_grad=True
    )
    expected, expected_grad = _general(logits, labels, reduction="none", return_grad=True)
    rtol = 4 * np.finfo(dtype).eps
    np.testing.assert_allclose(none, expected, rtol=rtol, atol=0)
    np.testing.assert_allclose(grad, expected_grad, rtol=rtol, atol=0)
    mean = ce.categorical_cross_entropy_with_logits(logits, labels)
    np.testing.assert_allclose(mean, _general(logits, labels), rtol=rtol, atol=0)
    # NaN where a row holds +inf or NaN, or only -inf; +inf where the label's logit is
    # -inf in a row with a finite logit; else log1p of the others plus the margin, in
    # float64 (below the label's gap of 100, about e^-97: subnormal in float32).
    if case in ("+inf at the label", "+inf elsewhere", "+inf twice", "NaN", "all -inf"):
        assert np.isnan(none).all()
        assert np.isnan(grad).all()
    elif case == "-inf at the label":
        assert (none == np.inf).all()
        np.testing.assert_array_equal(grad[:, 0], -1.0)  # softmax is 0 there
    else:
        top = int(np.argmax(row))
        others = sum(np.exp(value - row[top]) for c, value in enumerate(row) if c != top)
        loss = np.log1p(others) + (row[top] - row[label])
        tiny = np.finfo(dtype).smallest_subnormal
        np.testing.assert_allclose(none, loss, rtol=rtol, atol=4 * tiny)
        assert (none > 0).all()
        assert np.isfinite(grad).all()


@pytest.mark.parametrize("n_classes", [10, 50, 300, 1000])
def test_results_do_not_depend_on_the_thread_count(rng, n_classes):
    n_rows = 3 * 2**19 // n_classes  # several blocks, split over the threads
    logits = rng.normal(size=(n_rows, n_classes)).astype(np.float32)
    logits[::97] -= 10  # some blocks with negative maxima: the shifted form
    labels = rng.integers(0, n_classes, size=n_rows)
    assert _takes_the_lane(logits, labels)
    assert _unshifted(n_rows, n_classes)
    results = {}
    for threads in (1, 2, 3):
        with ce.num_threads(threads):
            results[threads] = [
                ce.categorical_cross_entropy_with_logits(
                    logits, labels, reduction=reduction, return_grad=True
                )
                for reduction in ("mean", "none")
            ]
    for threads in (2, 3):
        for (value, grad), (expected_value, expected_grad) in zip(
            results[threads], results[1], strict=True
        ):
            np.testing.assert_array_equal(value, expected_value)
            np.testing.assert_array_equal(grad, expected_grad)
    # Blocks of both forms, against float64 formulas.
    want, want_grad = _float64_losses_and_gradient(logits, labels)
    none, grad = results[1][1]
    np.testing.assert_allclose(none, want, rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(grad, want_grad, rtol=2e-5, atol=1e-7)


def test_batch_shapes_label_dtypes_and_out(rng):
    logits = rng.normal(size=(2, 3, 5)).astype(np.float32)
    labels = rng.integers(0, 5, size=(2, 3))
    assert _takes_the_lane(logits, labels)
    none, grad = ce.categorical_cross_entropy_with_logits(
        logits, labels, reduction="none", return_grad=True
    )
    assert none.shape == (2, 3)
    assert grad.shape == (2, 3, 5)
    flat = ce.categorical_cross_entropy_with_logits(
        logits.reshape(6, 5), labels.reshape(6), reduction="none"
    )
    np.testing.assert_array_equal(none.reshape(6), flat)
    for dtype in (np.uint8, np.int16, np.int32, np.uint64):
        got = ce.categorical_cross_entropy_with_logits(
            logits, labels.astype(dtype), reduction="none"
        )
        np.testing.assert_array_equal(got, none)
    for out in (np.empty_like(logits), np.empty((2, 5, 3), np.float32).transpose(0, 2, 1)):
        _, got_grad = ce.categorical_cross_entropy_with_logits(
            logits, labels, reduction="none", return_grad=True, out=out
        )
        assert got_grad is out
        np.testing.assert_array_equal(out, grad)


def test_inputs_are_not_modified_and_may_be_read_only(rng):
    logits = rng.normal(size=(300, 400))
    labels = rng.integers(0, 400, size=300)
    logits.flags.writeable = False
    labels.flags.writeable = False
    before = logits.copy()
    assert _takes_the_lane(logits, labels)
    ce.categorical_cross_entropy_with_logits(logits, labels, return_grad=True)
    np.testing.assert_array_equal(logits, before)


@pytest.mark.parametrize(
    ("labels", "error"),
    [
        ([0, 5], r"class index 5, outside \[0, 5\)"),
        ([-1, 0], r"class index -1, outside \[0, 5\)"),
        ([5], r"class index 5, outside \[0, 5\)"),  # a single label is read as an int
        ([-1], r"class index -1, outside \[0, 5\)"),
    ],
)
def test_bad_labels_take_the_general_path_and_its_errors(labels, error):
    logits = np.zeros((len(labels), 5))
    labels = np.array(labels)
    assert plain_call(logits, labels, OPTIONS) is None
    with pytest.raises(ValueError, match=error):
        ce.categorical_cross_entropy_with_logits(logits, labels)


def test_options_at_their_neutral_values_stay_plain(rng):
    logits = rng.normal(size=(8, 5))
    labels = rng.integers(0, 5, size=8)
    neutral = {"label_smoothing": 0, "z_loss": 0.0, "axis": 1, "ignore_index": None}
    assert _takes_the_lane(logits, labels, **neutral)
    for options in ({"label_smoothing": 0.1}, {"z_loss": 1e-4}, {"ignore_index": 3}, {"axis": 0}):
        assert plain_call(logits, labels, {**OPTIONS, **options}) is None
    expected = reference.categorical(logits, labels, logits=True)
    got = ce.categorical_cross_entropy_with_logits(logits, labels, **neutral)
    np.testing.assert_allclose(got, expected, rtol=1e-14)


def test_few_classes_where_e_x_does_not_hold_take_the_general_path(rng):
    # Many rows to a block: the shift by the maxima would keep arrays of one value per
    # row of each block, so the lane hands such calls to the general path.
    n_rows, n_classes = 8192, 10
    logits = rng.normal(size=(n_rows, n_classes)).astype(np.float32) - 10  # sums below 1/2
    labels = rng.integers(0, n_classes, size=n_rows)
    assert _takes_the_lane(logits, labels)
    assert _kernel.plain_cross_entropy(logits, labels, "mean", None) is None
    assert _kernel.plain_cross_entropy(logits + 10, labels, "mean", None) is not None
    none, grad = ce.categorical_cross_entropy_with_logits(
        logits, labels, reduction="none", return_grad=True
    )
    want, want_grad = _float64_losses_and_gradient(logits, labels)
    np.testing.assert_allclose(none, want, rtol=2e-6)
    np.testing.assert_allclose(grad, want_grad, rtol=2e-5, atol=1e-7)
