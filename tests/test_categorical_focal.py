"""The categorical focal losses: the plain loop (terms from mpmath), the cross-entropy at
gamma=0 bit for bit, Keras' documented values and formula, finite differences, tiny
losses, extreme logits and the Hessian near certainty against mpmath, blocks and
threads, Dask, errors."""

from __future__ import annotations

import itertools
import warnings

import mpmath
import numpy as np
import pytest

import crossentropy as ce

from . import losses, reference

FOCAL = (
    losses.BY_NAME["categorical_focal_loss"],
    losses.BY_NAME["categorical_focal_loss_with_logits"],
)
LOGITS = losses.BY_NAME["categorical_focal_loss_with_logits"]
CROSS_ENTROPY = {
    "categorical_focal_loss": ce.categorical_cross_entropy,
    "categorical_focal_loss_with_logits": ce.categorical_cross_entropy_with_logits,
}
GAMMAS = [0.5, 2.0, 3.7]
REDUCTIONS = ["mean", "sum", "none"]
SHAPE = (3, 4)


def _option_sets(rng, soft):
    """Every combination of class weights, sample weights with a mask (and for labels
    an ignored class) and smoothing, each absent or a valid value."""
    class_weights = [None, rng.uniform(0.5, 2.0, size=SHAPE[-1])]
    weightings = [
        {},
        {"sample_weight": rng.uniform(0.0, 2.0, size=SHAPE[0]), "where": [True, False, True]},
    ]
    if not soft:
        weightings.append({"ignore_index": 1})
    for class_weight, weighting, smoothing in itertools.product(
        class_weights, weightings, [0.0, 0.1]
    ):
        yield {"class_weight": class_weight, "label_smoothing": smoothing, **weighting}


@losses.parametrize(FOCAL)
@pytest.mark.parametrize("gamma", GAMMAS)
def test_every_option_combination_equals_the_plain_loop(rng, loss, gamma):
    count = 0
    for soft in (False, True):
        for options in _option_sets(rng, soft):
            first, target = loss.make(rng, SHAPE, soft=soft)
            for reduction in REDUCTIONS:
                got = loss(first, target, gamma=gamma, reduction=reduction, **options)
                expected = loss.oracle(first, target, gamma=gamma, reduction=reduction, **options)
                np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-300)
                count += 1
    assert count == (12 + 8) * 3


def _extreme_rows(loss, dtype):
    """Rows with logits of -inf, +-1000 and 40 (probabilities of 0 and 1) and their labels."""
    if loss.from_logits:
        first = np.array(
            [
                [40.0, 0.0, -1.0, 2.0],
                [-np.inf, 1.0, 1000.0, -1000.0],
                [0.5, -np.inf, -np.inf, 3.0],
                [1.0, 2.0, 3.0, 4.0],
            ]
        )
    else:
        first = np.array(
            [[1.0, 0.0, 0.0, 0.0], [0.0, 0.2, 0.8, 0.0], [0.25, 0.25, 0.25, 0.25], [0.1] * 4]
        )
        first[3] = [0.1, 0.2, 0.3, 0.4]
    return first.astype(dtype), np.array([0, 2, 3, 1])


@losses.parametrize(FOCAL)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gamma_0_is_the_cross_entropy_bit_for_bit(rng, loss, dtype):
    cross_entropy = CROSS_ENTROPY[loss.name]
    first, labels = _extreme_rows(loss, dtype)
    soft = rng.dirichlet(np.ones(4), size=4)
    soft[1, 0] = 0  # no weight on the logit of -inf
    soft[2, 1:3] = 0
    soft /= soft.sum(axis=1, keepdims=True)
    for target, options in itertools.product(
        [labels, soft],
        [{}, {"class_weight": [0.5, 2.0, 0.0, 1.0], "sample_weight": [1.0, 0.5, 2.0, 0.0]}],
    ):
        flags = [{"return_grad": False}, {"return_grad": True}]
        if loss.from_logits:
            flags.append({"return_hess": True})
        for reduction, flag in itertools.product(REDUCTIONS, flags):
            call = {"reduction": reduction, **flag, **options}
            got = loss(first, target, gamma=0.0, **call)
            expected = cross_entropy(first, target, **call)
            several = isinstance(expected, tuple)
            pairs = zip(got, expected, strict=True) if several else [(got, expected)]
            for got_part, expected_part in pairs:
                assert type(got_part) is type(expected_part)
                np.testing.assert_array_equal(got_part, expected_part, strict=True)


def test_keras_documented_example():
    # keras.losses.categorical_focal_crossentropy's docstring: alpha=0.25, gamma=2,
    # y_true [[0, 1, 0], [0, 0, 1]]; float32, and printed to 9 digits.
    probs = np.array([[0.05, 0.9, 0.05], [0.1, 0.85, 0.05]])
    options = {"class_weight": [0.25] * 3, "eps": 1e-7, "reduction": "none"}
    got32 = ce.categorical_focal_loss(probs.astype(np.float32), [1, 2], **options)
    np.testing.assert_allclose(got32, [2.6340148e-04, 6.7591208e-01], rtol=2e-7)
    got = ce.categorical_focal_loss(probs, [1, 2], **options)
    np.testing.assert_allclose(got, [2.63401289e-04, 6.75912094e-01], rtol=1e-8)


def _keras_categorical_focal_crossentropy(y_true, y_pred, alpha, gamma, from_logits):
    """keras.losses.categorical_focal_crossentropy as its source writes it, in float64."""
    if from_logits:
        e = np.exp(y_pred - y_pred.max(axis=-1, keepdims=True))
        y_pred = e / e.sum(axis=-1, keepdims=True)
    y_pred = y_pred / np.sum(y_pred, axis=-1, keepdims=True)
    y_pred = np.clip(y_pred, 1e-7, 1.0 - 1e-7)
    cce = -y_true * np.log(y_pred)
    modulating_factor = (1.0 - y_pred) ** gamma
    weighting_factor = modulating_factor * alpha
    return np.sum(weighting_factor * cce, axis=-1)


@losses.parametrize(FOCAL)
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 3.7])
@pytest.mark.parametrize("alpha", [0.25, 1.0, "per class"])
def test_hard_targets_give_keras_categorical_focal_crossentropy(rng, loss, gamma, alpha):
    # Keras clips softmax(logits) to [1e-7, 1 - 1e-7] too: logits of scale 1 are not
    # clipped, probabilities are clipped alike with eps=1e-7.
    n_classes = 6
    if alpha == "per class":
        alpha = rng.uniform(0.1, 1.0, size=n_classes)
    first, labels = loss.make(rng, (20, n_classes))
    if loss.from_logits:
        first /= 3
    else:
        first[0] = [1.0, 0, 0, 0, 0, 0]  # clipped
    one_hot = np.eye(n_classes)[labels]
    expected = _keras_categorical_focal_crossentropy(one_hot, first, alpha, gamma, loss.from_logits)
    class_weight = np.broadcast_to(alpha, (n_classes,))
    options = {"class_weight": class_weight, "gamma": gamma}
    if not loss.from_logits:
        options["eps"] = 1e-7
    for target in (labels, one_hot):
        got = loss(first, target, reduction="none", **options)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-300)
        total = loss(first, target, reduction="sum", **options)
        np.testing.assert_allclose(total, expected.sum(), rtol=1e-12)


@losses.parametrize(FOCAL)
@pytest.mark.parametrize(("gamma", "reduction"), [(0.5, "mean"), (1.0, "none"), (3.7, "sum")])
def test_gradient_matches_fourth_order_finite_differences(rng, loss, gamma, reduction):
    for soft in (False, True):
        for options in list(_option_sets(rng, soft))[::3]:
            first, target = loss.make(rng, SHAPE, soft=soft)
            call = {"gamma": gamma, "reduction": reduction, **options}
            _, grad = loss(first, target, return_grad=True, **call)

            def total(values, call=call, target=target):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # perturbed probability rows
                    return float(np.sum(loss(values, target, **call)))

            step = 1e-3 if loss.from_logits else 1e-5
            expected = reference.central_difference(total, first, step)
            np.testing.assert_allclose(grad, expected, rtol=1e-7, atol=1e-9)


def _mp_one_hot_derivatives(row, label, gamma, entries):
    """The loss of a row with a one-hot target, and its first and second derivatives
    with respect to the logits at `entries`, at 60 digits.

    The loss is ``F(s) = -(1-p)^gamma log p = u^gamma log1p(s)`` of
    ``s = sum_{c != y} e^(x_c - x_y)`` and ``u = 1 - p = s / (1 + s)``: no digit is lost
    where ``p`` is near 1. ``ds/dx_j = d2s/dx_j2 = e^(x_j - x_y)`` for ``j != y``,
    ``ds/dx_y = -s`` and ``d2s/dx_y2 = s``.
    """
    with mpmath.workdps(60):
        x = [mpmath.mpf(float(v)) for v in row]
        shares = [mpmath.exp(v - x[label]) for v in x]
        s = mpmath.fsum(e for c, e in enumerate(shares) if c != label)
        u, log_term = s / (1 + s), mpmath.log1p(s)
        du, d2u = 1 / (1 + s) ** 2, -2 / (1 + s) ** 3
        dlog, d2log = 1 / (1 + s), -1 / (1 + s) ** 2
        first = gamma * u ** (gamma - 1) * du * log_term + u**gamma * dlog
        second = (
            gamma * (gamma - 1) * u ** (gamma - 2) * du**2 * log_term
            + gamma * u ** (gamma - 1) * (d2u * log_term + 2 * du * dlog)
            + u**gamma * d2log
        )
        grad, hess = [], []
        for j in entries:
            ds, d2s = (-s, s) if j == label else (shares[j], shares[j])
            grad.append(float(first * ds))
            hess.append(float(second * ds**2 + first * d2s))
        return float(u**gamma * log_term), grad, hess


@pytest.mark.parametrize("margin", [0.5, 5.0, 20.0, 40.0, 80.0, 300.0, 700.0])
@pytest.mark.parametrize("n_classes", [3, 60])  # the transposed and the row layout
@pytest.mark.parametrize("gamma", [0.3, 2.0, 3.7])
def test_confident_correct_prediction_against_mpmath(margin, n_classes, gamma):
    # Loss ~ r^(gamma+1), gradient ~ r^gamma p_j, Hessian ~ r^(gamma+1) (r = e^-margin):
    # each keeps its relative accuracy until it leaves the range of float64, with labels
    # and with one-hot probabilities (the per-class path).
    row = np.zeros(n_classes)
    row[1] = margin
    row[2] = margin / 2
    entries = [1, 2, 0]
    expected_loss, expected_grad, expected_hess = _mp_one_hot_derivatives(row, 1, gamma, entries)
    for target in (np.array([1]), np.eye(n_classes)[[1]]):
        loss, grad, hess = ce.categorical_focal_loss_with_logits(
            row[None], target, gamma=gamma, reduction="sum", return_hess=True
        )
        tiny = np.finfo(np.float64).tiny
        assert loss > 0 or expected_loss < tiny
        np.testing.assert_allclose(loss, expected_loss, rtol=4e-15, atol=1e-300)
        # The true class's entries: -B (1 - p_y) and its Hessian, a few ulp; the others
        # are sums of a few terms, a few ulp more.
        np.testing.assert_allclose(grad[0, entries], expected_grad, rtol=2e-14, atol=1e-300)
        np.testing.assert_allclose(hess[0, entries], expected_hess, rtol=2e-14, atol=1e-300)


@pytest.mark.parametrize("margin", [5.0, 10.0, 20.0, 40.0])
@pytest.mark.parametrize("gamma", [0.5, 2.0, 3.7])
def test_float32_confident_prediction_against_mpmath(margin, gamma):
    # float32 computes with gamma rounded to float32; the exact value uses the same.
    gamma32 = float(np.float32(gamma))
    row = np.zeros(5, dtype=np.float32)
    row[3] = margin
    entries = [3, 0]
    expected_loss, expected_grad, expected_hess = _mp_one_hot_derivatives(row, 3, gamma32, entries)
    for target in (np.array([3]), np.eye(5, dtype=np.float32)[[3]]):
        loss, grad, hess = ce.categorical_focal_loss_with_logits(
            row[None], target, gamma=gamma, reduction="sum", return_hess=True
        )
        assert loss.dtype == grad.dtype == hess.dtype == np.float32
        tiny = np.finfo(np.float32).smallest_subnormal
        rtol = 8 * np.finfo(np.float32).eps
        np.testing.assert_allclose(loss, expected_loss, rtol=rtol, atol=tiny)
        np.testing.assert_allclose(grad[0, entries], expected_grad, rtol=rtol, atol=tiny)
        np.testing.assert_allclose(hess[0, entries], expected_hess, rtol=rtol, atol=tiny)


def _mp_soft(row, target, gamma):
    """The loss of a row with probability targets, as a function of mpmath logits."""

    def loss(*x):
        total = 0
        for c, t in enumerate(target):
            if t:
                rest = mpmath.fsum(mpmath.exp(v - x[c]) for k, v in enumerate(x) if k != c)
                total += t * (rest / (1 + rest)) ** gamma * mpmath.log1p(rest)
        return total

    return loss


@pytest.mark.parametrize("gamma", [0.1, 0.5, 1.0, 1.5, 2.0, 3.7])
@pytest.mark.parametrize("margin", [3.0, 30.0, 100.0])
def test_hessian_near_certainty_against_mpmath(gamma, margin):
    # For gamma < 1, g''(r) of the likeliest class is unbounded as r -> 0; the Hessian
    # with respect to the logits is not, and is formed without it: against mpmath, on
    # the per-class path (probability targets) for every class of the row.
    row = np.array([margin, 0.0, -2.0, 1.0])
    target = np.array([0.7, 0.2, 0.0, 0.1])
    loss, grad, hess = ce.categorical_focal_loss_with_logits(
        row[None], target[None], gamma=gamma, reduction="sum", return_hess=True
    )
    # Derivatives as small beside the loss as e^-margin need that many more digits.
    with mpmath.workdps(60 + int(margin)):
        function = _mp_soft(row, target, gamma)
        x = [mpmath.mpf(v) for v in row]
        expected_loss = float(function(*x))
        expected_grad, expected_hess = [], []
        for j in range(4):
            orders = [0] * 4
            orders[j] = 1
            expected_grad.append(float(mpmath.diff(function, x, tuple(orders))))
            orders[j] = 2
            expected_hess.append(float(mpmath.diff(function, x, tuple(orders))))
    np.testing.assert_allclose(loss, expected_loss, rtol=4e-15)
    scale = np.abs(expected_grad).max()
    np.testing.assert_allclose(grad[0], expected_grad, rtol=1e-13, atol=1e-15 * scale)
    scale = np.abs(expected_hess).max()
    np.testing.assert_allclose(hess[0], expected_hess, rtol=1e-12, atol=1e-14 * scale)


@pytest.mark.parametrize("gamma", [0.5, 2.0, 3.7])
@pytest.mark.parametrize("soft", [False, True], ids=["labels", "soft"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_extreme_logits_give_no_nan(rng, gamma, soft, smoothing):
    logits = np.array(
        [
            [1e300, -1e300, 0.0, 1.0],
            [-1e300, 1e300, 1e300, 0.0],  # a tie at the maximum
            [-1e300, 5.0, -np.inf, 1000.0],
            [-1000.0, 1000.0, -np.inf, 0.0],
        ]
    )
    if soft:
        target = np.array(
            [[0.9, 0.1, 0, 0], [0.2, 0.3, 0.5, 0], [0, 0.6, 0, 0.4], [0.5, 0.5, 0, 0]]
        )
    else:
        target = np.array([1, 2, 1, 1])
    class_weight = [1.0, 2.0, 0.0, 0.5]  # the class of -inf logits weighs 0
    options = {"class_weight": class_weight, "label_smoothing": smoothing, "gamma": gamma}
    loss, grad, hess = ce.categorical_focal_loss_with_logits(
        logits, target, reduction="none", return_hess=True, **options
    )
    expected = reference.categorical_focal(logits, target, logits=True, reduction="none", **options)
    np.testing.assert_allclose(loss, expected, rtol=1e-13)
    assert np.all(np.isfinite(loss))
    assert np.all(np.isfinite(grad))
    assert np.all(np.isfinite(hess))
    # The gradient of the sum is 0 along a constant shift of the logits.
    np.testing.assert_allclose(grad.sum(axis=1), 0, atol=1e-12 * np.abs(grad).max())


def test_logit_of_minus_inf_under_weight_is_inf_and_plus_inf_is_nan_as_for_cross_entropy():
    # Smoothing puts weight on a class whose logit is -inf: the loss is inf, as for the
    # cross-entropy; a row whose maximum is +inf is NaN, as for the cross-entropy.
    logits = np.array([[-np.inf, 0.0, 1.0], [np.inf, 0.0, 1.0]])
    for gamma in (0.5, 2.0):
        loss = ce.categorical_focal_loss_with_logits(
            logits, [1, 0], gamma=gamma, label_smoothing=0.1, reduction="none"
        )
        expected = ce.categorical_cross_entropy_with_logits(
            logits, [1, 0], label_smoothing=0.1, reduction="none"
        )
        np.testing.assert_array_equal(loss, [np.inf, np.nan])
        np.testing.assert_array_equal(expected, [np.inf, np.nan])


def _numpy_focal(logits, weights, gamma):
    """Loss, gradient and Hessian diagonal of rows, from the formulas in float64 NumPy.

    ``1 - p`` is the sum of the other classes' exponentials over the total: moderate
    logits only.
    """
    x = logits.astype(np.float64)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    total = e.sum(axis=1, keepdims=True)
    p = e / total
    u = (total - e) / total
    r = -np.log(p)
    loss = (weights * u**gamma * r).sum(axis=1)
    slope = u**gamma + gamma * u ** (gamma - 1) * p * r  # g'
    bend = gamma * u ** (gamma - 2) * p * ((gamma - 1) * p * r - u * r + 2 * u)  # g''
    b = weights * slope
    big_b = b.sum(axis=1, keepdims=True)
    grad = big_b * p - b
    second = (weights * bend).sum(axis=1, keepdims=True)
    hess = big_b * p * (1 - p) + p**2 * second + weights * bend * (1 - 2 * p)
    return loss, grad, hess


@pytest.mark.parametrize("n_classes", [5, 300])
@pytest.mark.parametrize("layout", ["labels", "smoothed", "soft"])
def test_large_inputs_over_blocks_and_threads(rng, n_classes, layout):
    # Both layouts of the kernel (classes up to 48 are transposed), blocks and threads.
    n_rows = (1 << 19) // n_classes + 3
    logits, labels = LOGITS.make(rng, (n_rows, n_classes))
    logits /= 2
    options = {"gamma": 1.5, "class_weight": rng.uniform(0.5, 2.0, size=n_classes)}
    sample_weight = rng.uniform(0.0, 2.0, size=n_rows)
    sample_weight[::7] = 0
    weights = np.eye(n_classes)[labels]
    target = labels
    if layout == "smoothed":
        options["label_smoothing"] = 0.1
        weights = 0.9 * weights + 0.1 / n_classes
    elif layout == "soft":
        target = rng.dirichlet(np.ones(n_classes), size=n_rows)
        weights = target
    with ce.num_threads(2):
        loss, grad, hess = ce.categorical_focal_loss_with_logits(
            logits,
            target,
            sample_weight=sample_weight,
            reduction="none",
            return_hess=True,
            **options,
        )
    weights = weights * options["class_weight"]
    expected = _numpy_focal(logits, weights, options["gamma"])
    factors = (sample_weight, sample_weight[:, None], sample_weight[:, None])
    for got, want, factor in zip((loss, grad, hess), expected, factors, strict=True):
        np.testing.assert_allclose(got, factor * want, rtol=1e-9, atol=1e-14)


@losses.parametrize(FOCAL)
def test_focal_on_dask_arrays_equals_numpy(rng, loss):
    da = pytest.importorskip("dask.array")
    first, target = loss.make(rng, (9, 6), soft=True)
    options = {
        "gamma": 0.7,
        "class_weight": rng.uniform(0.5, 2.0, size=6),
        "sample_weight": rng.uniform(0.0, 2.0, size=9),
        "where": rng.random(9) > 0.2,
        "label_smoothing": 0.1,
    }
    flags = {"return_hess": True} if loss.from_logits else {"return_grad": True}
    lazy = (da.from_array(first, chunks=(4, 6)), da.from_array(target, chunks=(5, 6)))
    for reduction in REDUCTIONS:
        expected = loss(first, target, reduction=reduction, **flags, **options)
        got = loss(*lazy, reduction=reduction, **flags, **options)
        assert isinstance(got[1], da.Array)
        for computed, want in zip(da.compute(*got), expected, strict=True):
            np.testing.assert_allclose(computed, want, rtol=1e-12, atol=1e-300)
    with pytest.raises(ValueError, match="gamma"):
        loss(*lazy, gamma=-1.0)  # checked at once, before any chunk is computed


@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0, 3.7])
def test_probabilities_of_0_and_1_without_clipping(gamma):
    probs = np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 0.0]])
    target = np.array([1, 0, 2])
    loss, grad = ce.categorical_focal_loss(
        probs, target, gamma=gamma, eps=0, reduction="none", return_grad=True
    )
    np.testing.assert_array_equal(loss, [0.0, np.inf, np.inf])
    # d/dq of -(1-q)^gamma log q: 0 at q = 1 (its limit, also for gamma < 1), -inf at 0.
    np.testing.assert_array_equal(grad, [[0, 0, 0], [-np.inf, 0, 0], [0, 0, -np.inf]])


@pytest.mark.parametrize("gamma", [0.5, 2.0, 3.7])
def test_probability_gradient_is_0_where_clipped(gamma):
    probs = np.array([[0.05, 0.9, 0.05], [0.5, 0.4, 0.1]])
    target = np.array([[0.5, 0.3, 0.2], [0.2, 0.3, 0.5]])
    _, grad = ce.categorical_focal_loss(probs, target, gamma=gamma, eps=0.1, return_grad=True)
    assert grad[0, 0] == grad[0, 2] == 0
    assert np.all(grad[1] != 0)  # the clip range is inclusive, as for the cross-entropy
    clipped = np.clip(probs, 0.1, 0.9)
    with pytest.warns(ce.ProbabilitySumWarning):  # clipped rows sum to 1.1
        expected = ce.categorical_focal_loss(
            clipped, target, gamma=gamma, eps=0.1, reduction="none"
        )
    np.testing.assert_array_equal(
        ce.categorical_focal_loss(probs, target, gamma=gamma, eps=0.1, reduction="none"),
        expected,
    )


@losses.parametrize(FOCAL)
@pytest.mark.parametrize(
    ("gamma", "error"),
    [
        (-0.5, ValueError),
        (np.inf, ValueError),
        (np.nan, ValueError),
        ("2", TypeError),
        (None, TypeError),
        (True, TypeError),
        (2j, TypeError),
        ([2.0], TypeError),
    ],
)
def test_bad_gamma_is_an_error_naming_it(rng, loss, gamma, error):
    first, target = loss.make(rng, SHAPE)
    with pytest.raises(error, match="gamma"):
        loss(first, target, gamma=gamma)


@losses.parametrize(FOCAL)
def test_the_categorical_focal_losses_take_no_alpha(rng, loss):
    # class_weight is the per-class balance (Keras' alpha).
    first, target = loss.make(rng, SHAPE)
    with pytest.raises(TypeError, match="alpha"):
        loss(first, target, alpha=0.25)
