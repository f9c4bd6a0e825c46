"""Extreme values against mpmath at 50 digits, and the 0 * log 0 = 0 rule."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

import crossentropy as ce

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


@pytest.mark.parametrize("scale", [1.0, 30.0, 1e3, 1e30])
def test_random_rows_against_mpmath(rng, scale):
    logits = rng.normal(size=(20, 7)) * scale
    labels = rng.integers(0, 7, size=20)
    got = ce.categorical_cross_entropy_with_logits(logits, labels, reduction="none")
    expected = [_mp_categorical(row, y) for row, y in zip(logits, labels, strict=True)]
    np.testing.assert_allclose(got, expected, rtol=4e-15)


def test_no_log_of_softmax():
    # log(softmax([0, -1000])[1]) underflows to log(0) = -inf; the loss is exactly 1000.
    assert ce.categorical_cross_entropy_with_logits([[0.0, -1000.0]], [1]) == 1000.0
    assert ce.categorical_cross_entropy_with_logits([[1e30, -1e30]], [1]) == 2e30


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


@pytest.mark.parametrize(
    ("x", "t", "expected"),
    [
        (np.inf, 1.0, 0.0),
        (-np.inf, 0.0, 0.0),
        (np.inf, 0.0, np.inf),
        (-np.inf, 1.0, np.inf),
        (np.inf, 0.5, np.inf),
    ],
)
def test_binary_with_infinite_logits_is_exact(x, t, expected):
    loss, grad = ce.binary_cross_entropy_with_logits(
        np.array([x]), np.array([t]), reduction="none", return_grad=True
    )
    assert loss[0] == expected
    assert np.all(np.isfinite(grad))


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
