"""Extreme values against mpmath at 50 digits, and the 0 * log 0 = 0 rule."""

from __future__ import annotations

import warnings

import mpmath
import numpy as np
import pytest

import crossentropy as ce

from . import losses

mpmath.mp.dps = 50


def _mp_categorical(row, label):
    """lse(x) - x_y = log1p(sum_{c != y} exp(x_c - x_y)), at 50 digits."""
    values = [mpmath.mpf(float(v)) for v in row]
    others = mpmath.fsum(mpmath.exp(v - values[label]) for c, v in enumerate(values) if c != label)
    return float(mpmath.log1p(others))


def _mp_binary(x, t):
    x = mpmath.mpf(float(x))
    return float(t * mpmath.log1p(mpmath.exp(-x)) + (1 - t) * mpmath.log1p(mpmath.exp(x)))


@pytest.mark.parametrize("margin", [0.5, 5.0, 20.0, 40.0, 80.0, 300.0, 700.0])
@pytest.mark.parametrize("n_classes", [2, 10, 1000])
def test_confident_correct_prediction_keeps_relative_accuracy(margin, n_classes):
    row = np.zeros(n_classes)
    row[1] = margin
    expected = _mp_categorical(row, 1)
    got = ce.categorical_cross_entropy_with_logits(row[None], [1])
    assert got > 0
    np.testing.assert_allclose(got, expected, rtol=4e-15)
    got32 = ce.categorical_cross_entropy_with_logits(row[None].astype(np.float32), [1])
    expected32 = np.float32(_mp_categorical(row.astype(np.float32), 1))  # may underflow to 0
    tiny = np.finfo(np.float32).smallest_subnormal
    np.testing.assert_allclose(got32, expected32, rtol=4 * np.finfo(np.float32).eps, atol=tiny)


def _mp_softmax_minus_target(row, label):
    """``softmax(row) - onehot(label)`` at 50 digits."""
    values = [mpmath.mpf(float(v)) for v in row]
    top = max(values)
    exps = [mpmath.exp(v - top) for v in values]
    total = mpmath.fsum(exps)
    others = mpmath.fsum(e for c, e in enumerate(exps) if c != label)
    # At the label, -others / total: 1 - e / total would lose what 50 digits cannot hold.
    return [float(-others / total if c == label else e / total) for c, e in enumerate(exps)]


@pytest.mark.parametrize("margin", [0.5, 20.0, 40.0, 80.0, 700.0])
@pytest.mark.parametrize("n_classes", [3, 1000])  # the transposed and the row layout
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gradient_at_a_confident_label_keeps_relative_accuracy(margin, n_classes, dtype):
    # softmax_y - 1 = -others / (1 + others): computed as a difference it would be 0
    # for margins past about 37 (float64) or 17 (float32).
    rows = np.zeros((2, n_classes))
    rows[0, 1] = margin
    rows[1, [0, 2]] = margin  # a tie at the maximum: no cancellation, same formula
    rows = rows.astype(dtype)
    labels = np.array([1, 2])
    weights = np.array([0.5, 3.0])
    class_weight = np.linspace(0.5, 2.0, n_classes)
    _, grad = ce.categorical_cross_entropy_with_logits(
        rows,
        labels,
        sample_weight=weights,
        class_weight=class_weight,
        reduction="sum",
        return_grad=True,
    )
    assert grad.dtype == dtype
    factor = weights * class_weight[labels]
    expected = [
        np.multiply(f, _mp_softmax_minus_target(row, y))
        for f, row, y in zip(factor, rows, labels, strict=True)
    ]
    tiny = np.finfo(dtype).smallest_subnormal
    rtol = 8 * np.finfo(dtype).eps
    expected = np.array(expected).astype(dtype)
    np.testing.assert_allclose(grad, expected, rtol=rtol, atol=tiny)
    assert (grad[0, 1] < 0) == (expected[0, 1] < 0)


@pytest.mark.parametrize("scale", [1.0, 30.0, 1e3, 1e30])
def test_random_rows_against_mpmath(rng, scale):
    logits = rng.normal(size=(20, 7)) * scale
    labels = rng.integers(0, 7, size=20)
    got = ce.categorical_cross_entropy_with_logits(logits, labels, reduction="none")
    expected = [_mp_categorical(row, y) for row, y in zip(logits, labels, strict=True)]
    np.testing.assert_allclose(got, expected, rtol=4e-15)


def test_masked_class_with_minus_inf_logit_contributes_zero():
    logits = np.array([[2.0, -np.inf, 0.5], [-np.inf, 1.0, 1.0]])
    soft = np.array([[0.6, 0.0, 0.4], [0.0, 0.5, 0.5]])
    got = ce.categorical_cross_entropy_with_logits(logits, soft, reduction="none")
    expected = [
        0.6 * _mp_categorical([2.0, -1e300, 0.5], 0) + 0.4 * _mp_categorical([2.0, -1e300, 0.5], 2),
        np.log(2.0),
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-15)
    labels = ce.categorical_cross_entropy_with_logits(logits, [0, 2], reduction="none")
    assert np.all(np.isfinite(labels))
    _, grad = ce.categorical_cross_entropy_with_logits(logits, [0, 2], return_grad=True)
    assert np.all(np.isfinite(grad))
    assert grad[0, 1] == 0
    assert grad[1, 0] == 0


def test_label_smoothing_onto_a_minus_inf_logit_is_inf_but_zero_weight_is_not():
    logits = np.array([[2.0, -np.inf, 0.5]])
    assert ce.categorical_cross_entropy_with_logits(logits, [0], label_smoothing=0.1) == np.inf
    weighted = ce.categorical_cross_entropy_with_logits(
        logits, [0], label_smoothing=0.1, class_weight=[1.0, 0.0, 1.0]
    )
    assert np.isfinite(weighted)


def test_nan_logits_propagate_and_unbounded_rows_are_nan():
    got = ce.categorical_cross_entropy_with_logits(
        [[np.nan, 0.0], [np.inf, 0.0], [-np.inf, -np.inf], [1.0, 0.0]],
        [0, 0, 0, 0],
        reduction="none",
    )
    assert np.isnan(got[:3]).all()
    assert np.isfinite(got[3])


@pytest.mark.parametrize("x", [-745.0, -100.0, -40.0, -20.0, -1.0, 0.0, 3.0, 37.0, 50.0, 700.0])
@pytest.mark.parametrize("t", [0.0, 1.0, 0.3])
def test_binary_with_logits_against_mpmath(x, t):
    got = ce.binary_cross_entropy_with_logits([x], [t], reduction="sum")
    np.testing.assert_allclose(got, _mp_binary(x, t), rtol=4e-15)
    got32 = ce.binary_cross_entropy_with_logits(np.float32([x]), np.float32([t]), reduction="sum")
    if np.isfinite(np.float32(x)):
        expected32 = _mp_binary(np.float32(x), float(np.float32(t)))
        np.testing.assert_allclose(got32, expected32, rtol=4 * np.finfo(np.float32).eps, atol=1e-44)


def test_zero_probability_with_zero_weight_is_not_nan():
    got = ce.binary_cross_entropy([0.0, 1.0], [0.0, 1.0], eps=0, reduction="none")
    np.testing.assert_array_equal(got, [0.0, 0.0])
    got = ce.categorical_cross_entropy([[0.0, 1.0]], [1], eps=0)
    assert got == 0.0
    got = ce.categorical_cross_entropy([[0.0, 1.0]], np.array([[0.0, 1.0]]), eps=0)
    assert got == 0.0
    assert ce.categorical_cross_entropy([[0.0, 1.0]], [0], eps=0) == np.inf


@pytest.mark.parametrize("p", [1e-300, 1e-20, 1e-10, 0.5, 1 - 1e-10])
def test_tiny_probability_losses_keep_relative_accuracy(p):
    # -log(1 - p) for a negative target; -log(p) for a positive one.
    got = ce.binary_cross_entropy([p, p], [0.0, 1.0], eps=0, reduction="none")
    expected = [float(-mpmath.log1p(-mpmath.mpf(p))), float(-mpmath.log(mpmath.mpf(p)))]
    np.testing.assert_allclose(got, expected, rtol=4e-16 * 4)


def test_long_float32_class_axis_and_batch_sums_stay_accurate(rng):
    logits = rng.normal(size=(64, 32000)).astype(np.float32)
    labels = rng.integers(0, 32000, size=64)
    got = ce.categorical_cross_entropy_with_logits(logits, labels, reduction="none")
    expected = ce.categorical_cross_entropy_with_logits(
        logits.astype(np.float64), labels, reduction="none"
    )
    np.testing.assert_allclose(got, expected, rtol=4 * np.finfo(np.float32).eps)
    values = np.float32(rng.uniform(0, 1, size=2_000_000))
    total = ce.binary_cross_entropy(values, np.zeros_like(values), reduction="sum")
    exact = float(np.sum(-np.log1p(-np.maximum(values.astype(np.float64), 0)), dtype=np.float64))
    np.testing.assert_allclose(total, exact, rtol=1e-6)


@pytest.mark.parametrize(
    ("x", "t", "loss", "grad"),
    [
        (np.inf, 1.0, 0.0, 0.0),
        (-np.inf, 0.0, 0.0, 0.0),
        (np.inf, 0.0, np.inf, 1.0),
        (-np.inf, 1.0, np.inf, -1.0),
        (np.inf, 0.5, np.inf, 0.5),
        (1e30, 1.0, 0.0, 0.0),
        (-1e30, 0.0, 0.0, 0.0),
        (1e30, 0.0, 1e30, 1.0),
        (-1e30, 1.0, 1e30, -1.0),
        (1e308, 0.0, 1e308, 1.0),
    ],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_binary_extreme_logits_exact_loss_and_gradient(x, t, loss, grad, dtype):
    if np.isfinite(x) and abs(x) > float(np.finfo(dtype).max):
        pytest.skip("not representable")
    got, got_grad = ce.binary_cross_entropy_with_logits(
        np.array([x], dtype), np.array([t], dtype), reduction="sum", return_grad=True
    )
    assert got == dtype(loss)
    assert got_grad[0] == grad
    assert got_grad.dtype == dtype


def test_binary_extreme_logits_with_pos_weight_and_smoothing():
    x = np.array([np.inf, -np.inf, 1e30, -1e30])
    t = np.array([1.0, 0.0, 1.0, 0.0])
    # pos_weight 0 on a positive target: the positive term is gone; the negative term is 0
    got = ce.binary_cross_entropy_with_logits(x, t, pos_weight=0.0, reduction="none")
    np.testing.assert_array_equal(got, [0.0, 0.0, 0.0, 0.0])
    # smoothing puts weight on the wrong side: the loss is the logit's magnitude times it
    got = ce.binary_cross_entropy_with_logits(x, t, label_smoothing=0.2, reduction="none")
    np.testing.assert_array_equal(got[:2], [np.inf, np.inf])
    np.testing.assert_allclose(got[2:], [0.1 * 1e30, 0.1 * 1e30], rtol=1e-15)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_binary_nan_logits_propagate(reduction):
    x = np.array([np.nan, 0.0, 1.0])
    t = np.array([1.0, 0.0, 1.0])
    loss, grad = ce.binary_cross_entropy_with_logits(x, t, reduction=reduction, return_grad=True)
    assert np.isnan(loss)
    assert np.isnan(grad[0])
    assert np.all(np.isfinite(grad[1:]))
    none = ce.binary_cross_entropy_with_logits(x, t, reduction="none")
    assert np.isnan(none[0])
    assert np.all(np.isfinite(none[1:]))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_categorical_nan_logits_propagate(reduction):
    logits = np.array([[np.nan, 0.0, 1.0], [0.0, 1.0, 2.0]])
    loss, grad = ce.categorical_cross_entropy_with_logits(
        logits, [1, 2], reduction=reduction, return_grad=True
    )
    assert np.isnan(loss)
    assert np.all(np.isnan(grad[0]))
    assert np.all(np.isfinite(grad[1]))


@pytest.mark.parametrize("x", [-40.0, -80.0, -700.0, -745.0])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_tiny_binary_losses_keep_relative_accuracy(x, dtype):
    # t=0 and x very negative: loss = log1p(e^x), about e^x; likewise t=1 at -x.
    got = ce.binary_cross_entropy_with_logits(
        np.array([x, -x], dtype), np.array([0.0, 1.0], dtype), reduction="none"
    )
    xs = dtype(x)
    expected = float(mpmath.log1p(mpmath.exp(mpmath.mpf(float(xs)))))
    tiny = float(np.finfo(dtype).smallest_subnormal)
    rtol = 4e-16 if dtype == np.float64 else 4 * float(np.finfo(np.float32).eps)
    np.testing.assert_allclose(got, [expected, expected], rtol=rtol, atol=tiny)
    if expected > 1e3 * float(np.finfo(dtype).tiny):
        assert np.all(got > 0)


@pytest.mark.parametrize("margin", [20.0, 40.0, 700.0])
@pytest.mark.parametrize("layout", ["labels", "one-hot", "smoothed-cw"])
def test_confident_correct_prediction_other_targets(margin, layout):
    # 3 classes, class 0 wins by `margin`; soft one-hot targets must keep the accuracy too.
    row = np.array([[margin, 0.0, -1.0]])
    exact = [
        mpmath.log1p(
            mpmath.fsum(mpmath.exp(mpmath.mpf(v) - mpmath.mpf(margin)) for v in row[0, 1:])
        )
    ]
    if layout == "labels":
        got = ce.categorical_cross_entropy_with_logits(row, [0])
        expected = float(exact[0])
    elif layout == "one-hot":
        got = ce.categorical_cross_entropy_with_logits(row, np.array([[1.0, 0.0, 0.0]]))
        expected = float(exact[0])
    else:
        # w = [1, 2, 0], smoothing 0.1 onto 3 classes: a = [0.9 + 0.1/3, 2 * 0.1/3, 0]
        got = ce.categorical_cross_entropy_with_logits(
            row, [0], label_smoothing=0.1, class_weight=[1.0, 2.0, 0.0], reduction="sum"
        )
        lse_minus = [exact[0], exact[0] + mpmath.mpf(margin)]
        a = [mpmath.mpf(0.9) + mpmath.mpf(0.1) / 3, 2 * mpmath.mpf(0.1) / 3]
        expected = float(a[0] * lse_minus[0] + a[1] * lse_minus[1])
    np.testing.assert_allclose(got, expected, rtol=1e-14)


def test_logits_near_the_overflow_limit():
    # exp would overflow without the shift by the row maximum.
    row = np.array([[709.0, 710.0, 708.0], [-1e307, 1e307, 0.0]])
    got, grad = ce.categorical_cross_entropy_with_logits(
        row, [0, 0], reduction="none", return_grad=True
    )
    expected0 = float(mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(v) - 709) for v in row[0])))
    np.testing.assert_allclose(got[0], expected0, rtol=1e-15)
    assert got[1] == 2e307
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad[1], [-1.0, 1.0, 0.0], atol=0)


def test_no_log_of_softmax_in_the_loss_or_its_gradient():
    # log(softmax([0, -1000])[1]) underflows to log(0) = -inf; the loss is exactly 1000.
    loss, grad = ce.categorical_cross_entropy_with_logits(
        [[0.0, -1000.0], [1e30, -1e30]], [1, 1], reduction="none", return_grad=True
    )
    np.testing.assert_array_equal(loss, [1000.0, 2e30])
    np.testing.assert_array_equal(grad, [[1.0, -1.0], [1.0, -1.0]])


def test_masked_minus_inf_logits_with_soft_targets_and_weights():
    logits = np.array([[-np.inf, 3.0, -np.inf, 1.0]])
    soft = np.array([[0.0, 0.7, 0.0, 0.3]])
    expected = 0.7 * _mp_categorical([-1e300, 3.0, -1e300, 1.0], 1) + 0.3 * _mp_categorical(
        [-1e300, 3.0, -1e300, 1.0], 3
    )
    for options in ({}, {"class_weight": [5.0, 1.0, 2.0, 1.0]}, {"sample_weight": [1.0]}):
        loss, grad = ce.categorical_cross_entropy_with_logits(
            logits, soft, reduction="sum", return_grad=True, **options
        )
        np.testing.assert_allclose(loss, expected, rtol=1e-15)
        assert grad[0, 0] == 0
        assert grad[0, 2] == 0
        assert np.all(np.isfinite(grad))
    # 1-D, class axis 0, and float32
    loss32 = ce.categorical_cross_entropy_with_logits(
        logits[0].astype(np.float32), soft[0].astype(np.float32), axis=0
    )
    np.testing.assert_allclose(loss32, expected, rtol=4 * np.finfo(np.float32).eps)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_zero_probabilities_under_zero_weights_give_no_nan_gradient(reduction):
    # eps=0: p=0 where the target weight is 0 gives a finite loss and a finite gradient.
    probs = np.array([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5]])
    soft = np.array([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5]])
    for target in (np.array([1, 2]), soft):
        loss, grad = ce.categorical_cross_entropy(
            probs, target, eps=0, reduction=reduction, return_grad=True
        )
        assert np.all(np.isfinite(loss))
        assert np.all(np.isfinite(grad))
    loss, grad = ce.categorical_cross_entropy(
        probs, [1, 0], eps=0, class_weight=[1.0, 1.0, 0.0], label_smoothing=0.3,
        reduction=reduction, return_grad=True,
    )  # fmt: skip
    assert not np.any(np.isnan(loss))
    assert not np.any(np.isnan(grad))
    loss, grad = ce.binary_cross_entropy(
        [0.0, 1.0, 0.0], [0.0, 1.0, 1.0], eps=0, pos_weight=[1.0, 1.0, 0.0],
        reduction=reduction, return_grad=True,
    )  # fmt: skip
    np.testing.assert_array_equal(np.sum(loss), 0.0)
    np.testing.assert_array_equal(
        grad, [1.0, -1.0, 0.0] if reduction != "mean" else [1 / 3, -1 / 3, 0.0]
    )


LEFT_OUT = {
    "where-labels": ("labels", {"where": np.array([False, True])}),
    "where-soft": ("soft", {"where": np.array([False, True])}),
    "zero-sample-weight-labels": ("labels", {"sample_weight": np.array([0.0, 1.0])}),
    "zero-sample-weight-soft": ("soft", {"sample_weight": np.array([0.0, 1.0])}),
    "ignore_index": ("labels", {"ignore_index": 0}),
}


@pytest.mark.parametrize(("target", "left_out"), LEFT_OUT.values(), ids=LEFT_OUT.keys())
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_zero_probability_in_a_row_left_out_has_zero_gradient(target, left_out, reduction):
    # Row 0 puts probability 0 on its own class (eps=0: -log 0 = inf), but it is left out
    # or weighs 0, so it contributes exactly 0 to the loss and gets exactly 0 gradient.
    probs = np.array([[0.0, 1.0], [0.5, 0.5]])
    labels = np.array([0, 1]) if target == "labels" else np.array([[1.0, 0.0], [0.0, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from inf * 0 either
        loss, grad = ce.categorical_cross_entropy(
            probs, labels, eps=0, reduction=reduction, return_grad=True, **left_out
        )
    np.testing.assert_allclose(np.sum(loss), np.log(2.0), rtol=1e-15)
    np.testing.assert_array_equal(grad[0], [0.0, 0.0])
    np.testing.assert_allclose(grad[1], [0.0, -2.0], rtol=1e-15)


def test_all_weights_zero_with_zero_probability_gives_nan_mean_and_zero_gradient():
    probs = np.array([[0.0, 1.0], [0.5, 0.5]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, grad = ce.categorical_cross_entropy(
            probs, [0, 1], eps=0, sample_weight=[0.0, 0.0], return_grad=True
        )
    assert np.isnan(loss)
    np.testing.assert_array_equal(grad, 0.0)


@pytest.mark.parametrize("n_classes", [5, 100])
@pytest.mark.parametrize("soft", [False, True], ids=["labels", "soft"])
def test_many_minus_inf_logits_in_classes_of_zero_target(rng, n_classes, soft):
    logits = rng.normal(size=(4, n_classes))
    logits[:, 2:] = -np.inf  # only classes 0 and 1 are possible
    labels = np.array([0, 1, 1, 0])
    target = np.eye(n_classes)[labels] if soft else labels
    loss, grad = ce.categorical_cross_entropy_with_logits(
        logits, target, reduction="none", return_grad=True
    )
    expected = [_mp_categorical(row[:2], y) for row, y in zip(logits, labels, strict=True)]
    np.testing.assert_allclose(loss, expected, rtol=4e-15)
    np.testing.assert_array_equal(grad[:, 2:], 0.0)
    assert np.all(np.isfinite(grad))
    # smoothing onto the impossible classes, unless their class weight is 0
    smoothed = ce.categorical_cross_entropy_with_logits(
        logits, target, label_smoothing=0.1, reduction="none"
    )
    assert np.all(smoothed == np.inf)
    weight = np.zeros(n_classes)
    weight[:2] = [1.0, 2.0]
    loss, grad = ce.categorical_cross_entropy_with_logits(
        logits, target, label_smoothing=0.1, class_weight=weight, reduction="none", return_grad=True
    )
    assert np.all(np.isfinite(loss))
    np.testing.assert_array_equal(grad[:, 2:], 0.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_no_log_of_softmax_in_float32(dtype):
    loss = ce.categorical_cross_entropy_with_logits(np.array([[0.0, -1000.0]], dtype), [1])
    assert loss == np.float32(1000.0)
    assert loss.dtype == np.float32
    if dtype == np.float32:
        big = np.float32(1e30)
        loss = ce.categorical_cross_entropy_with_logits(np.array([[big, -big]]), [1])
        assert loss == 2 * big


@losses.parametrize(losses.ALL)
def test_mean_and_its_gradient_with_a_tiny_total_weight(rng, loss):
    first, target = loss.make(rng, (1, 3))
    batch = loss.batch_shape(first.shape)
    weight = np.full(batch, 1e-310 / np.prod(batch))  # equal weights: the same mean
    mean, grad = loss(first, target, sample_weight=weight, return_grad=True)
    np.testing.assert_allclose(mean, loss.oracle(first, target), rtol=1e-9)
    np.testing.assert_allclose(grad, loss(first, target, return_grad=True)[1], rtol=1e-9)
