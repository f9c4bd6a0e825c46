"""The binary focal losses: the plain-loop oracle, the cross-entropy at gamma=0,
torchvision's formula, finite differences, extreme logits against mpmath (values, first
and second derivatives), errors. The categorical ones: test_categorical_focal.py."""

from __future__ import annotations

import itertools
import math

import mpmath
import numpy as np
import pytest

import crossentropy as ce

from . import losses, reference

FOCAL = (losses.BY_NAME["binary_focal_loss"], losses.BY_NAME["binary_focal_loss_with_logits"])
CROSS_ENTROPY = {
    "binary_focal_loss": ce.binary_cross_entropy,
    "binary_focal_loss_with_logits": ce.binary_cross_entropy_with_logits,
}
GAMMAS = [0.0, 0.5, 2.0, 3.7]
REDUCTIONS = ["mean", "sum", "none"]
SHAPE = (3, 4)


def _option_sets(rng):
    """Every combination of the weighting options (pos_weight, sample_weight with where,
    alpha, smoothing), each either absent or a valid value."""
    pos_weights = [None, rng.uniform(0.5, 3.0, size=SHAPE[-1])]
    weights = [
        {},
        {"sample_weight": rng.uniform(0.0, 2.0, size=SHAPE), "where": rng.random(SHAPE) > 0.3},
    ]
    for pos_weight, weighting, alpha, smoothing in itertools.product(
        pos_weights, weights, [None, 0.25], [0.0, 0.1]
    ):
        options = {"pos_weight": pos_weight, "alpha": alpha, "label_smoothing": smoothing}
        yield {**options, **weighting}


@losses.parametrize(FOCAL)
@pytest.mark.parametrize("gamma", GAMMAS)
def test_every_option_combination_equals_the_plain_loop(rng, loss, gamma):
    count = 0
    for soft, options in itertools.product([False, True], list(_option_sets(rng))):
        first, target = loss.make(rng, SHAPE, soft=soft)
        for reduction in REDUCTIONS:
            got = loss(first, target, gamma=gamma, reduction=reduction, **options)
            expected = loss.oracle(first, target, gamma=gamma, reduction=reduction, **options)
            np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-300)
            count += 1
    assert count == 2 * 16 * 3


@losses.parametrize(FOCAL)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gamma_0_without_alpha_is_the_cross_entropy_bit_for_bit(rng, loss, dtype):
    cross_entropy = CROSS_ENTROPY[loss.name]
    extreme = [np.inf, -np.inf, 1000.0, -1000.0, 40.0, -40.0] if loss.from_logits else []
    for soft, option_set in itertools.product([False, True], list(_option_sets(rng))):
        options = dict(option_set)
        if options.pop("alpha") is not None:
            continue
        first, target = loss.make(rng, SHAPE, dtype, soft=soft)
        first.flat[: len(extreme)] = extreme
        for reduction, return_grad in itertools.product(REDUCTIONS, [False, True]):
            call = {"reduction": reduction, "return_grad": return_grad, **options}
            got = loss(first, target, gamma=0.0, **call)
            expected = cross_entropy(first, target, **call)
            pairs = zip(got, expected, strict=True) if return_grad else [(got, expected)]
            for got_part, expected_part in pairs:
                assert type(got_part) is type(expected_part)
                assert np.asarray(got_part).dtype == np.asarray(expected_part).dtype
                np.testing.assert_array_equal(got_part, expected_part, strict=True)


def _torchvision_sigmoid_focal_loss(inputs, targets, alpha, gamma, reduction):
    """torchvision.ops.sigmoid_focal_loss as its documentation writes it, in float64."""
    p = 1 / (1 + np.exp(-inputs))
    ce_loss = np.maximum(inputs, 0) - inputs * targets + np.log1p(np.exp(-np.abs(inputs)))
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce_loss * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("alpha", [-1.0, 0.0, 0.25, 0.5, 1.0])  # torchvision: < 0 is None
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_hard_targets_give_torchvisions_sigmoid_focal_loss(rng, gamma, alpha, reduction):
    logits = rng.normal(scale=3.0, size=(5, 7))
    target = (rng.random((5, 7)) > 0.5).astype(np.float64)
    expected = _torchvision_sigmoid_focal_loss(logits, target, alpha, gamma, reduction)
    ours = {"gamma": gamma, "alpha": None if alpha < 0 else alpha, "reduction": reduction}
    got = ce.binary_focal_loss_with_logits(logits, target, **ours)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-300)
    probs = 1 / (1 + np.exp(-logits))
    got = ce.binary_focal_loss(probs, target, **ours)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-300)


@losses.parametrize(FOCAL)
@pytest.mark.parametrize("gamma", [0.5, 2.0, 3.7])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradient_matches_fourth_order_finite_differences(rng, loss, gamma, reduction):
    for soft, options in itertools.product([False, True], list(_option_sets(rng))[::3]):
        first, target = loss.make(rng, SHAPE, soft=soft)
        if not loss.from_logits:
            first = np.clip(first, 0.05, 0.95)  # away from the clip bounds by more than the step
        call = {"gamma": gamma, "reduction": reduction, **options}
        _, grad = loss(first, target, return_grad=True, **call)

        def total(values, call=call, target=target):
            return float(np.sum(loss(values, target, **call)))

        step = 1e-3 if loss.from_logits else 1e-4
        expected = reference.central_difference(total, first, step)
        np.testing.assert_allclose(grad, expected, rtol=1e-8, atol=1e-9)


def _mp_focal(x, t, gamma, alpha):
    """The loss of one logit and its derivative, at 50 digits (derivative numerically)."""
    a_plus, a_minus = (1, 1) if alpha is None else (mpmath.mpf(alpha), 1 - mpmath.mpf(alpha))
    t = mpmath.mpf(t)
    gamma = mpmath.mpf(gamma)

    def loss(v):
        p = 1 / (1 + mpmath.exp(-v))
        q = 1 / (1 + mpmath.exp(v))
        # log p = -log1p(e^-v): log(p) would lose the digits of a p near 1.
        minus_log_p, minus_log_q = mpmath.log1p(mpmath.exp(-v)), mpmath.log1p(mpmath.exp(v))
        return a_plus * t * q**gamma * minus_log_p + a_minus * (1 - t) * p**gamma * minus_log_q

    x = mpmath.mpf(x)
    return loss(x), mpmath.diff(loss, x)


@pytest.mark.parametrize("x", [40.0, -40.0, 100.0, -100.0, 1000.0, -1000.0, 12.5, -3.0, 0.0])
@pytest.mark.parametrize("t", [0.0, 1.0, 0.3])
@pytest.mark.parametrize("gamma", [0.5, 2.0, 3.7])
@pytest.mark.parametrize("alpha", [None, 0.25])
def test_extreme_logits_are_exact_against_mpmath(x, t, gamma, alpha):
    with mpmath.workdps(50):
        expected, expected_grad = _mp_focal(x, t, gamma, alpha)
    loss, grad = ce.binary_focal_loss_with_logits(
        [x], [t], gamma=gamma, alpha=alpha, reduction="sum", return_grad=True
    )
    assert np.isfinite(loss)
    assert np.all(np.isfinite(grad))
    # A few ulp of the exact value, also where it is tiny; values below the smallest
    # normal number (e^-1000 and less) are 0 or subnormal in float64.
    np.testing.assert_allclose(loss, float(expected), rtol=2e-15, atol=1e-300)
    np.testing.assert_allclose(grad[0], float(expected_grad), rtol=2e-15, atol=1e-300)


@pytest.mark.parametrize("x", [40.0, -40.0, 100.0, -100.0, 700.0, -700.0, 12.5, -3.0, 0.0])
@pytest.mark.parametrize("gamma", [0.1, 0.5, 1.0, 1.5, 2.0, 3.7])
@pytest.mark.parametrize("alpha", [None, 0.25])
def test_second_derivative_against_mpmath(x, gamma, alpha):
    # d2/dp2 of (1-p)^gamma log p has terms in (1-p)^(gamma-2) and grows like
    # (1-p)^(gamma-1) as p -> 1: unbounded for gamma < 1. d2/dx2 is finite, as
    # dp/dx = p (1-p), and keeps its relative accuracy where tiny.
    t = np.array([0.0, 1.0, 0.3])
    _, _, hess = ce.binary_focal_loss_with_logits(
        np.full(3, x), t, gamma=gamma, alpha=alpha, reduction="sum", return_hess=True
    )
    assert np.all(np.isfinite(hess))
    a_plus, a_minus = (1.0, 1.0) if alpha is None else (alpha, 1 - alpha)
    for k, target in enumerate(t):
        with mpmath.workdps(60):

            def positive(v):
                q = 1 / (1 + mpmath.exp(v))
                return q**gamma * mpmath.log1p(mpmath.exp(-v))  # -(1-p)^gamma log p

            def negative(v):
                p = 1 / (1 + mpmath.exp(-v))
                return p**gamma * mpmath.log1p(mpmath.exp(v))  # -p^gamma log(1-p)

            v = mpmath.mpf(x)
            parts = [
                a_plus * target * mpmath.diff(positive, v, 2),
                a_minus * (1 - target) * mpmath.diff(negative, v, 2),
            ]
        # Close to the exact value, also where it is tiny; where the two terms nearly
        # cancel (as for t = 0.3 at x = 12.5), close to the larger term. A term near
        # its own sign change (gamma softplus(x) (gamma (1-p) - p) + (2 gamma + 1) p
        # = 0, as for gamma = 0.1 at x = 12.5) loses a few digits more.
        scale = max(abs(float(part)) for part in parts)
        np.testing.assert_allclose(
            hess[k], float(sum(parts)), rtol=5e-14, atol=max(2e-14 * scale, 1e-300)
        )


@pytest.mark.parametrize("x", [40.0, -40.0, 12.5, -3.0, 0.0])
@pytest.mark.parametrize("gamma", [0.5, 2.0, 3.7])
def test_float32_logits_are_accurate_against_mpmath(x, gamma):
    # float32 computes with gamma rounded to float32; the exact value uses the same.
    gamma32 = float(np.float32(gamma))
    for t in (0.0, 1.0, 0.3):
        with mpmath.workdps(50):
            expected, expected_grad = _mp_focal(x, float(np.float32(t)), gamma32, None)
        loss, grad = ce.binary_focal_loss_with_logits(
            np.float32([x]), np.float32([t]), gamma=gamma, reduction="sum", return_grad=True
        )
        assert loss.dtype == grad.dtype == np.float32
        np.testing.assert_allclose(loss, float(expected), rtol=2e-6, atol=1e-44)
        np.testing.assert_allclose(grad[0], float(expected_grad), rtol=2e-6, atol=1e-44)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 3.7])
@pytest.mark.parametrize("alpha", [None, 0.0, 0.25, 1.0])
def test_infinite_logits_give_the_limits(gamma, alpha):
    x = np.array([np.inf, -np.inf, np.inf, -np.inf, np.inf, -np.inf])
    t = np.array([1.0, 0.0, 0.0, 1.0, 0.5, 0.5])
    a_plus, a_minus = (1.0, 1.0) if alpha is None else (alpha, 1 - alpha)
    loss, grad = ce.binary_focal_loss_with_logits(
        x, t, gamma=gamma, alpha=alpha, reduction="none", return_grad=True
    )
    # A right prediction costs 0; a wrong one inf (0 when its term weighs 0).
    inf_unless_0 = [math.inf if w else 0.0 for w in (a_minus, a_plus, a_minus, a_plus)]
    np.testing.assert_array_equal(loss, [0.0, 0.0, *inf_unless_0])
    # The gradient tends to a- (1-t) at +inf and to -a+ t at -inf.
    expected_grad = [0.0, 0.0, a_minus, -a_plus, a_minus / 2, -a_plus / 2]
    np.testing.assert_array_equal(grad, expected_grad)
    # The second derivative tends to 0 on both sides.
    _, _, hess = ce.binary_focal_loss_with_logits(
        x, t, gamma=gamma, alpha=alpha, reduction="none", return_hess=True
    )
    np.testing.assert_array_equal(hess, np.zeros(6), strict=True)
    # NaN logits propagate.
    loss, grad, hess = ce.binary_focal_loss_with_logits(
        [np.nan], [0.5], gamma=gamma, alpha=alpha, return_hess=True
    )
    assert np.isnan(loss)
    assert np.isnan(grad).all()
    assert np.isnan(hess).all()


@pytest.mark.parametrize("gamma", [0.5, 2.0, 3.7])
def test_probabilities_of_0_and_1_without_clipping(gamma):
    probs = np.array([0.0, 1.0, 0.0, 1.0])
    target = np.array([0.0, 1.0, 1.0, 0.0])
    loss, grad = ce.binary_focal_loss(
        probs, target, gamma=gamma, eps=0, reduction="none", return_grad=True
    )
    np.testing.assert_array_equal(loss, [0.0, 0.0, np.inf, np.inf])
    np.testing.assert_array_equal(grad, [0.0, 0.0, -np.inf, np.inf])


@pytest.mark.parametrize("gamma", [0.5, 2.0, 3.7])
def test_probability_gradient_is_0_where_clipped(gamma):
    probs = np.array([0.05, 0.1, 0.5, 0.9, 0.95])
    target = np.array([1.0, 1.0, 0.3, 0.0, 0.0])
    _, grad = ce.binary_focal_loss(probs, target, gamma=gamma, eps=0.1, return_grad=True)
    assert grad[0] == grad[-1] == 0
    assert np.all(grad[1:-1] != 0)  # the clip range is inclusive, as for the cross-entropy
    clipped = np.clip(probs, 0.1, 0.9)
    np.testing.assert_array_equal(
        ce.binary_focal_loss(probs, target, gamma=gamma, eps=0.1, reduction="none"),
        ce.binary_focal_loss(clipped, target, gamma=gamma, eps=0.1, reduction="none"),
    )


@losses.parametrize(FOCAL)
@pytest.mark.parametrize("gamma", [0.5, 2.0, 3.7])
def test_float32_is_close_to_float64(rng, loss, gamma):
    first, target = loss.make(rng, (50,), soft=True)
    options = {"gamma": gamma, "alpha": 0.25, "pos_weight": 2.0, "label_smoothing": 0.05}
    for reduction in REDUCTIONS:
        value32, grad32 = loss(
            first.astype(np.float32), target, reduction=reduction, return_grad=True, **options
        )
        value64, grad64 = loss(first, target, reduction=reduction, return_grad=True, **options)
        assert np.asarray(value32).dtype == np.float32
        assert grad32.dtype == np.float32
        np.testing.assert_allclose(value32, value64, rtol=2e-5, atol=1e-30)
        np.testing.assert_allclose(grad32, grad64, rtol=2e-5, atol=2e-6 * np.abs(grad64).max())


@losses.parametrize(FOCAL)
def test_focal_on_dask_arrays_equals_numpy(rng, loss):
    da = pytest.importorskip("dask.array")
    first, target = loss.make(rng, (9, 6), soft=True)
    options = {
        "gamma": 3.7,
        "alpha": 0.3,
        "pos_weight": rng.uniform(0.5, 3.0, size=6),
        "sample_weight": rng.uniform(0.0, 2.0, size=(9, 1)),
        "where": rng.random((9, 6)) > 0.2,
        "label_smoothing": 0.1,
    }
    lazy = (da.from_array(first, chunks=(4, 3)), da.from_array(target, chunks=(5, 2)))
    for reduction in REDUCTIONS:
        expected = loss(first, target, reduction=reduction, return_grad=True, **options)
        got = loss(*lazy, reduction=reduction, return_grad=True, **options)
        assert isinstance(got[1], da.Array)
        for computed, want in zip(da.compute(*got), expected, strict=True):
            np.testing.assert_allclose(computed, want, rtol=1e-12, atol=1e-300)
    with pytest.raises(ValueError, match="gamma"):
        loss(*lazy, gamma=-1.0)  # checked at once, before any chunk is computed


@losses.parametrize(FOCAL)
@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"gamma": -0.5}, ValueError),
        ({"gamma": np.inf}, ValueError),
        ({"gamma": np.nan}, ValueError),
        ({"gamma": "2"}, TypeError),
        ({"gamma": None}, TypeError),
        ({"gamma": True}, TypeError),
        ({"gamma": 2j}, TypeError),
        ({"gamma": [2.0]}, TypeError),
        ({"alpha": -0.1}, ValueError),
        ({"alpha": 1.5}, ValueError),
        ({"alpha": np.nan}, ValueError),
        ({"alpha": "0.25"}, TypeError),
        ({"alpha": True}, TypeError),
    ],
)
def test_bad_gamma_or_alpha_is_an_error_naming_it(rng, loss, options, error):
    first, target = loss.make(rng, SHAPE)
    (name,) = options
    with pytest.raises(error, match=name):
        loss(first, target, **options)


def test_alpha_weighs_the_two_terms_and_not_the_mean():
    logits = np.array([1.0, -2.0, 0.5, 3.0])
    target = np.array([1.0, 0.0, 0.0, 1.0])
    plain = ce.binary_focal_loss_with_logits(logits, target, reduction="none")
    weighted = ce.binary_focal_loss_with_logits(logits, target, alpha=0.25, reduction="none")
    np.testing.assert_allclose(weighted, plain * np.where(target == 1, 0.25, 0.75), rtol=1e-15)
    mean = ce.binary_focal_loss_with_logits(logits, target, alpha=0.25)
    np.testing.assert_allclose(mean, weighted.sum() / 4, rtol=1e-15)
