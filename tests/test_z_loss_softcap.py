"""``z_loss`` and ``softcap`` of the categorical loss with logits.

Values against the plain loops of ``reference.py`` and mpmath at 50 digits, gradients
against finite differences, Hessians and big inputs (both kernel layouts, many blocks,
threads) against formulas written out in NumPy, float32 against float64, Dask against
NumPy, and what happens to infinite logits and to rows left out.
"""

from __future__ import annotations

import itertools

import mpmath
import numpy as np
import pytest

import crossentropy as ce

from . import losses, reference
from .test_reference import (
    CATEGORICAL_CASES,
    CATEGORICAL_GRADIENT_CASES,
    _categorical_options,
    _categorical_shape,
    _rotate,
)

mpmath.mp.dps = 50

LOSS = losses.BY_NAME["categorical_cross_entropy_with_logits"]
# (z_loss, softcap): every pair of values but both off, rotated through the cases.
SETTINGS = [
    setting
    for setting in itertools.product([0.0, 1e-4, 0.3], [None, 1.5, 20.0])
    if setting != (0.0, None)
]


def _id(case):
    soft, cw, sw, wh, ls, axis, (z_loss, softcap) = case
    parts = ["soft" if soft else "labels"]
    parts += [name for name, on in (("cw", cw), ("sw", sw), ("where", wh)) if on]
    return "-".join([*parts, f"ls{ls}", f"axis{axis}", f"z{z_loss:g}", f"cap{softcap}"])


@pytest.mark.parametrize("case", _rotate(CATEGORICAL_CASES, [SETTINGS]), ids=_id)
def test_equals_the_loop(rng, case):
    soft, cw, sw, wh, ls, axis, (z_loss, softcap) = case
    first, target = LOSS.make(rng, _categorical_shape(axis), soft=soft, axis=axis)
    options = _categorical_options(rng, soft=soft, cw=cw, sw=sw, wh=wh, ls=ls, axis=axis)
    options |= {"z_loss": z_loss, "softcap": softcap}
    for reduction in ("mean", "sum", "none"):
        got = LOSS(first, target, reduction=reduction, **options)
        expected = LOSS.oracle(first, target, reduction=reduction, **options)
        np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15, err_msg=reduction)


@pytest.mark.parametrize(
    "case",
    _rotate(CATEGORICAL_GRADIENT_CASES, [SETTINGS]),
    ids=lambda c: f"{c[1]}-z{c[6][0]:g}-cap{c[6][1]}-{c[0]}-{c[2]}-{c[3]}-ls{c[4]}-ax{c[5]}",
)
def test_gradient_against_finite_differences(rng, case):
    soft, reduction, weighted, masked, ls, axis, (z_loss, softcap) = case
    first, target = LOSS.make(rng, _categorical_shape(axis), soft=soft, axis=axis)
    options = _categorical_options(
        rng, soft=soft, cw=weighted, sw=weighted, wh=masked, ls=ls, axis=axis
    )
    options |= {"reduction": reduction, "z_loss": z_loss, "softcap": softcap}
    value, grad = LOSS(first, target, return_grad=True, **options)
    np.testing.assert_array_equal(value, LOSS(first, target, **options))

    def summed(x):
        return float(np.sum(LOSS.oracle(x, target, **options)))

    expected = reference.central_difference(summed, first, 1e-3)
    np.testing.assert_allclose(grad, expected, rtol=1e-7, atol=1e-9)


def _formulas(x, labels, weights, z_loss, softcap):
    """Loss, gradient and Hessian diagonal of ``sum s (lse(y) - y_label + z lse(y)^2)``.

    Written out in float64 NumPy from the definitions, for logits of moderate size.
    """
    u = x / softcap
    y = softcap * np.tanh(u)
    rows = np.arange(len(y))
    top = y.max(axis=1, keepdims=True)
    e = np.exp(y - top)
    total = e.sum(axis=1, keepdims=True)
    lse = top + np.log(total)
    p = e / total
    # 1 - p as the other classes' share, without cancellation where p is near 1
    q = (total - e) / total
    onehot = np.zeros_like(y)
    onehot[rows, labels] = 1
    s = weights[:, None]
    loss = weights * (lse[:, 0] - y[rows, labels] + z_loss * lse[:, 0] ** 2)
    grad_y = s * (p - onehot + 2 * z_loss * lse * p)
    hess_y = s * (p * q + 2 * z_loss * (p * p + lse * p * q))
    slope = 1 / np.cosh(u) ** 2
    bend = -2 / softcap * np.tanh(u) * slope
    return loss, grad_y * slope, hess_y * slope**2 + grad_y * bend


@pytest.mark.parametrize("n_classes", [3, 48, 49, 700])
@pytest.mark.parametrize("threads", [1, 2])
def test_big_inputs_over_both_layouts_blocks_and_threads(rng, n_classes, threads):
    n_rows = (1 << 19) // n_classes + 3
    logits, target = LOSS.make(rng, (n_rows, n_classes))
    weights = rng.uniform(0.0, 2.0, size=n_rows)
    weights[::7] = 0
    z_loss, softcap = 0.01, 4.0
    with ce.num_threads(threads):
        loss, grad, hess = LOSS(
            logits,
            target,
            sample_weight=weights,
            reduction="none",
            z_loss=z_loss,
            softcap=softcap,
            return_hess=True,
        )
    expected = _formulas(logits, target, weights, z_loss, softcap)
    np.testing.assert_allclose(loss, expected[0], rtol=1e-12, atol=1e-300)
    for got, want in zip((grad, hess), expected[1:], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14 * np.max(np.abs(want)))


@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("n_classes", [4, 60])  # the transposed and the row layout
def test_float32_is_close_to_float64(rng, soft, reduction, n_classes):
    first, target = LOSS.make(rng, (5, n_classes, 3), soft=soft, axis=1)
    options = {
        "axis": 1,
        "reduction": reduction,
        "class_weight": rng.uniform(0.0, 2.0, size=n_classes),
        "sample_weight": rng.uniform(0.0, 2.0, size=(5, 1)),
        "label_smoothing": 0.1,
        "z_loss": 0.05,
        "softcap": 2.5,
    }
    if not soft:
        options["ignore_index"] = 1
    target32 = target.astype(np.float32) if soft else target
    got = LOSS(first.astype(np.float32), target32, return_hess=True, **options)
    expected = LOSS(first, target, return_hess=True, **options)
    assert all(np.asarray(part).dtype == np.float32 for part in got)
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-5)
    for part, want in zip(got[1:], expected[1:], strict=True):
        np.testing.assert_allclose(part, want, rtol=1e-5, atol=1e-6 * np.max(np.abs(want)))


@pytest.mark.parametrize("soft", [False, True], ids=["labels", "soft"])
def test_dask_equals_numpy(rng, soft):
    da = pytest.importorskip("dask.array")
    first, target = LOSS.make(rng, (7, 4, 5), soft=soft, axis=1)
    options = {
        "axis": 1,
        "class_weight": rng.uniform(0.0, 2.0, size=4),
        "sample_weight": rng.uniform(0.0, 2.0, size=(7, 1)),
        "where": rng.random((7, 5)) > 0.2,
        "label_smoothing": 0.1,
        "z_loss": 0.02,
        "softcap": 3.0,
    }
    if not soft:
        options["ignore_index"] = 2
    lazy_first = da.from_array(first, chunks=(3, 2, 4))
    lazy_target = da.from_array(target, chunks=(4, 2, 3) if soft else (4, 3))
    for reduction in ("mean", "sum", "none"):
        expected = LOSS(first, target, reduction=reduction, return_hess=True, **options)
        lazy = LOSS(lazy_first, lazy_target, reduction=reduction, return_hess=True, **options)
        for got, want in zip(da.compute(*lazy), expected, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-300)


def _mp_loss(row, label, z_loss, softcap):
    """``lse(y) - y_label + z lse(y)^2``, ``y = c tanh(x / c)``, at 50 digits.

    ``lse(y) - y_label`` is ``log1p(sum_{c != label} exp(y_c - y_label))``, not a
    difference.
    """
    c = mpmath.mpf(softcap)
    y = [c * mpmath.tanh(mpmath.mpf(float(v)) / c) for v in row]
    others = mpmath.fsum(mpmath.exp(v - y[label]) for k, v in enumerate(y) if k != label)
    lse = y[label] + mpmath.log1p(others)
    return mpmath.log1p(others) + z_loss * lse**2


@pytest.mark.parametrize("margin", [0.5, 5.0, 20.0, 40.0, 200.0, 1e6])
@pytest.mark.parametrize("softcap", [30.0, 100.0])
@pytest.mark.parametrize("n_classes", [2, 10, 1000])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_tiny_capped_losses_keep_their_relative_accuracy(margin, softcap, n_classes, dtype):
    # The capped margin is at most 2c: exp(-2c) is tiny but, for c = 30, a normal number.
    rows = np.zeros((1, n_classes), dtype=dtype)
    rows[0, 1] = margin
    got = LOSS(rows, [1], softcap=softcap, reduction="sum")
    expected = _mp_loss(rows[0], 1, 0.0, softcap)
    assert got > 0 or float(expected) < np.finfo(dtype).smallest_subnormal
    # The capped logits are rounded, to a few ulp of c: the loss, a function of their
    # differences, to a few ulp of c relatively.
    rtol = 8 * np.finfo(dtype).eps * softcap
    # Below the normal numbers (float32 and c = 100) each exponential is rounded to a
    # multiple of the smallest subnormal number.
    atol = n_classes * np.finfo(dtype).smallest_subnormal
    np.testing.assert_allclose(got, float(expected), rtol=rtol, atol=atol)


@pytest.mark.parametrize("scale", [1.0, 30.0, 1e3, 1e30])
def test_random_rows_with_both_options_against_mpmath(rng, scale):
    logits = rng.normal(size=(20, 7)) * scale
    labels = rng.integers(0, 7, size=20)
    got = LOSS(logits, labels, z_loss=0.01, softcap=15.0, reduction="none")
    expected = [float(_mp_loss(row, y, 0.01, 15.0)) for row, y in zip(logits, labels, strict=True)]
    np.testing.assert_allclose(got, expected, rtol=1e-14)


def _mp_z_gradient(row, label, z_loss):
    """The gradient of ``lse(x) - x_label + z lse(x)^2`` at 50 digits, exact at the label."""
    values = [mpmath.mpf(float(v)) for v in row]
    top = max(values)
    exps = [mpmath.exp(v - top) for v in values]
    total = mpmath.fsum(exps)
    others = mpmath.fsum(e for k, e in enumerate(exps) if k != label)
    lse = top + mpmath.log(total)
    return [
        float((-others if k == label else e) / total + 2 * z_loss * lse * e / total)
        for k, e in enumerate(exps)
    ]


@pytest.mark.parametrize("margin", [0.5, 20.0, 40.0, 300.0])
@pytest.mark.parametrize("n_classes", [3, 1000])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gradient_at_a_confident_label_keeps_relative_accuracy(margin, n_classes, dtype):
    # At the label holding the maximum: (2 z lse - others) / (1 + others), lse about
    # others; as (A + 2 z lse) p - 1 it would be a difference of numbers near 1.
    rows = np.zeros((1, n_classes))
    rows[0, 1] = margin
    rows = rows.astype(dtype)
    _, grad = LOSS(rows, [1], z_loss=0.25, reduction="sum", return_grad=True)
    expected = np.array([_mp_z_gradient(rows[0], 1, 0.25)]).astype(dtype)
    rtol = 8 * np.finfo(dtype).eps
    np.testing.assert_allclose(grad, expected, rtol=rtol, atol=np.finfo(dtype).smallest_subnormal)
    assert (grad[0, 1] < 0) == (expected[0, 1] < 0)


def test_the_cap_derivative_does_not_cancel_far_beyond_the_cap():
    # y' = sech(x / c)^2: 1 - tanh(x / c)^2 is 0 for |x| > 20 c or so.
    logits = np.array([[200.0, 0.0, -200.0, 1000.0]])
    softcap = 5.0
    _, grad, hess = LOSS(logits, [1], softcap=softcap, reduction="sum", return_hess=True)
    c = mpmath.mpf(softcap)
    x = [mpmath.mpf(v) for v in logits[0]]
    y = [c * mpmath.tanh(v / c) for v in x]
    total = mpmath.fsum(mpmath.exp(v) for v in y)
    p = [mpmath.exp(v) / total for v in y]
    grad_y = [p[k] - (k == 1) for k in range(4)]
    slope = [mpmath.sech(v / c) ** 2 for v in x]
    bend = [-2 / c * mpmath.tanh(v / c) * s for v, s in zip(x, slope, strict=True)]
    expected_grad = [float(g * s) for g, s in zip(grad_y, slope, strict=True)]
    expected_hess = [
        float(pk * (1 - pk) * s**2 + g * b)
        for pk, s, g, b in zip(p, slope, grad_y, bend, strict=True)
    ]
    assert np.all(grad[0, [0, 2, 3]] != 0)
    np.testing.assert_allclose(grad[0], expected_grad, rtol=1e-13)
    np.testing.assert_allclose(hess[0], expected_hess, rtol=1e-13)


@pytest.mark.parametrize("n_classes", [4, 60])
def test_softcap_is_the_loss_of_the_capped_logits(rng, n_classes):
    logits = rng.normal(scale=10.0, size=(6, n_classes))
    logits[0, :3] = [np.inf, -np.inf, 0.0]
    logits[1, :] = -np.inf
    labels = rng.integers(0, n_classes, size=6)
    labels[0] = 0
    softcap = 7.0
    capped = softcap * np.tanh(logits / softcap)
    np.testing.assert_array_equal(capped[0, :2], [softcap, -softcap])
    options = {"z_loss": 0.1, "reduction": "none", "return_grad": True}
    got, grad = LOSS(logits, labels, softcap=softcap, **options)
    expected, grad_of_capped = LOSS(capped, labels, **options)
    np.testing.assert_allclose(got, expected, rtol=1e-15)
    assert np.all(np.isfinite(got))
    # The chain rule: the capped logits' gradient times y' = 1 - (y / c)^2 (where it
    # does not cancel: |x| < 20), and exactly 0 at +-inf.
    moderate = np.abs(logits) < 20
    slope = 1 - (capped / softcap) ** 2
    np.testing.assert_allclose(grad[moderate], (grad_of_capped * slope)[moderate], rtol=1e-13)
    assert np.all(grad[np.isinf(logits)] == 0)


def test_z_loss_ignores_class_weights_but_not_sample_weights():
    logits = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0], [2.0, 2.0, 2.0]])
    labels = np.array([0, 2, 1])
    class_weight = np.array([1.0, 0.0, 2.0])  # the last row's target weighs 0
    sample_weight = np.array([0.5, 2.0, 3.0])
    z_loss = 0.1
    lse = np.log(np.exp(logits).sum(axis=1))
    loss, grad, hess = LOSS(
        logits,
        labels,
        class_weight=class_weight,
        sample_weight=sample_weight,
        z_loss=z_loss,
        reduction="mean",
        return_hess=True,
    )
    plain = LOSS(
        logits, labels, class_weight=class_weight, sample_weight=sample_weight, reduction="sum"
    )
    total = np.sum(sample_weight * class_weight[labels])  # D: no z-loss term
    np.testing.assert_allclose(
        loss, (plain + np.sum(sample_weight * z_loss * lse**2)) / total, rtol=1e-15
    )
    # The last row: only its z-loss, 2 z s lse p / D and 2 z s (p^2 + lse p (1 - p)) / D.
    p = np.full(3, 1 / 3)
    factor = 2 * z_loss * sample_weight[2] / total
    np.testing.assert_allclose(grad[2], factor * lse[2] * p, rtol=1e-14)
    np.testing.assert_allclose(hess[2], factor * (p * p + lse[2] * p * (1 - p)), rtol=1e-14)


@pytest.mark.parametrize("n_classes", [3, 60])
def test_infinite_logits_and_rows_left_out(n_classes):
    # Rows: all -inf (counted, target of weight 0); a +inf (counted, target of weight
    # 0); NaN but left out by where; all -inf but left out by ignore_index; NaN with a
    # sample weight of 0; an ordinary row.
    logits = np.zeros((6, n_classes))
    logits[0] = -np.inf
    logits[1, 1] = np.inf
    logits[2, 1] = np.nan
    logits[3] = -np.inf
    logits[4, 0] = np.nan
    logits[5, :3] = [1.0, 2.0, 3.0]
    labels = np.array([0, 0, 1, 7, 1, 2])
    class_weight = np.ones(n_classes)
    class_weight[0] = 0
    options = {
        "class_weight": class_weight,
        "where": [True, True, False, True, True, True],
        "ignore_index": 7,
        "sample_weight": [1.0, 1.0, 1.0, 1.0, 0.0, 1.0],
        "reduction": "none",
        "return_hess": True,
        "z_loss": 0.1,
    }
    loss, grad, hess = LOSS(logits, labels, **options)
    # lse = -inf and +inf: a z-loss of +inf and NaN derivatives, as autograd gives.
    np.testing.assert_array_equal(loss[:2], np.inf)
    assert np.all(np.isnan(grad[:2]))
    assert np.all(np.isnan(hess[:2]))
    # Rows left out and rows of weight 0 are exactly 0 whatever their logits.
    np.testing.assert_array_equal(loss[2:5], 0)
    np.testing.assert_array_equal(grad[2:5], 0)
    np.testing.assert_array_equal(hess[2:5], 0)
    assert np.all(np.isfinite(loss[5]))
    assert np.all(np.isfinite(grad[5]))
    # With a soft cap the logits are finite: -inf -> -c, +inf -> c.
    softcap = 2.0
    loss, grad, hess = LOSS(logits, labels, softcap=softcap, **options)
    capped = logits[:2].copy()
    capped[np.isinf(capped)] = np.sign(capped[np.isinf(capped)]) * softcap
    lse = np.log(np.exp(capped).sum(axis=1))
    np.testing.assert_allclose(loss[:2], 0.1 * lse**2, rtol=1e-14)
    np.testing.assert_array_equal(grad[2:5], 0)
    np.testing.assert_array_equal(hess[2:5], 0)
    assert np.all(np.isfinite(grad[[0, 1, 5]]))
    assert np.all(np.isfinite(hess[[0, 1, 5]]))
    np.testing.assert_array_equal(grad[[0, 1]][np.isinf(logits[[0, 1]])], 0)


@pytest.mark.parametrize("n_classes", [3, 60])
@pytest.mark.parametrize("softcap", [0.1, 1e-300])
def test_logits_beyond_the_largest_multiple_of_the_cap(n_classes, softcap):
    # x / c overflows to +-inf: y = +-c, y' = y'' = 0, and no warning (warnings fail).
    logits = np.zeros((2, n_classes))
    logits[0, 0] = 1e308
    logits[1, 1:3] = [-1e308, 1e300]
    capped = np.clip(logits / np.float64(1e300), -1, 1) * softcap  # +-c, and 0 at 0
    for options in ({}, {"z_loss": 0.5}):
        loss, grad, hess = LOSS(
            logits, [0, 2], softcap=softcap, reduction="none", return_hess=True, **options
        )
        expected = LOSS(capped, [0, 2], reduction="none", **options)
        np.testing.assert_allclose(loss, expected, rtol=1e-15)
        huge = np.abs(logits) > 1e299
        np.testing.assert_array_equal(grad[huge], 0)
        np.testing.assert_array_equal(hess[huge], 0)
        assert np.all(np.isfinite(grad))
        assert np.all(np.isfinite(hess))
