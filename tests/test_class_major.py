"""PyTorch's ``(N, C, H, W)`` layout: class-major blocks read from the logits themselves.

With ``axis=1`` (any axis with trailing axes after it) the log-sum-exp kernel reads
``(C, n)`` blocks of a view of the logits instead of a copy with the class axis moved
last. Values, gradients and Hessians are checked against a plain float64 loop over the
moved-axis rows, for every option, and against the rows path of the package.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import crossentropy as ce
from crossentropy import _kernel, _prepare
from crossentropy._categorical import _FOCAL_LOGITS, _LOGITS

from . import losses

CCE = ce.categorical_cross_entropy_with_logits


@pytest.fixture
def small_blocks(monkeypatch):
    """Take the class-major layout from runs of 1 and cut it into blocks of 64 elements.

    So that small arrays cross block and batch boundaries, with short last blocks.
    """
    monkeypatch.setattr(_prepare, "_MIN_CLASS_MAJOR_RUN", 1)
    monkeypatch.setattr(_kernel, "_CLASS_MAJOR_BLOCK_ELEMENTS", 64)
    monkeypatch.setattr(_kernel, "_LABEL_REFERENCED_BLOCK_ELEMENTS", 64)


def _is_class_major(logits, target, axis=1, **options):
    """Whether a call of the logits loss gets class-major blocks that view `logits`."""
    full = losses.public_options("categorical_cross_entropy_with_logits", axis=axis, **options)
    call = _prepare.prepare(_LOGITS, logits, target, return_grad=False, out=None, options=full)
    return call.class_major and np.shares_memory(call.values, logits)


def _loop(logits, target, *, axis=1, reduction="mean", **options):
    """Loss, gradient and Hessian diagonal by a float64 loop over the moved-axis rows.

    From the definitions: ``y = c tanh(x / c)`` (with a soft cap), ``a = w ((1 - eps) t
    + eps / C)``, per row ``s (sum_c a_c (lse(y) - y_c) + z lse(y)^2)``; the gradient
    ``s / D ((A + 2 z lse) p - a)`` and the Hessian's diagonal ``s / D ((A + 2 z lse)
    p (1 - p) + 2 z p^2)`` with respect to ``y``, carried to ``x`` by the chain rule.
    """
    x = np.moveaxis(np.asarray(logits, dtype=np.float64), axis, -1)
    batch, n_classes = x.shape[:-1], x.shape[-1]
    rows = x.reshape(-1, n_classes)
    n_rows = len(rows)
    labels = np.asarray(target).dtype.kind in "iu"
    t = np.asarray(target).reshape(-1) if labels else None
    soft = None if labels else np.moveaxis(np.asarray(target, float), axis, -1).reshape(rows.shape)
    w = options.get("class_weight")
    w = [1.0] * n_classes if w is None else [float(v) for v in w]
    weight = options.get("sample_weight")
    s = np.broadcast_to(1.0 if weight is None else weight, batch).reshape(-1)
    kept = np.broadcast_to(
        True if options.get("where") is None else options["where"], batch
    ).reshape(-1)
    eps = options.get("label_smoothing", 0.0)
    z = options.get("z_loss", 0.0)
    cap = options.get("softcap")
    ignore = options.get("ignore_index")
    losses = np.zeros(n_rows)
    grad_y = np.zeros(rows.shape)
    hess_y = np.zeros(rows.shape)
    slope = np.ones(rows.shape)
    bend = np.zeros(rows.shape)
    total = 0.0
    scale = np.zeros(n_rows)
    for i in range(n_rows):
        if not kept[i] or (labels and t[i] == ignore):
            continue
        if labels:
            onehot = [1.0 if c == t[i] else 0.0 for c in range(n_classes)]
        else:
            onehot = [float(v) for v in soft[i]]
        y = [float(v) for v in rows[i]]
        if cap is not None:
            u = [v / cap for v in y]
            y = [cap * math.tanh(v) for v in u]
            slope[i] = [1 / math.cosh(v) ** 2 for v in u]
            bend[i] = [-2 / cap * math.tanh(v) / math.cosh(v) ** 2 for v in u]
        top = max(y)
        exps = [math.exp(v - top) for v in y]
        lse = top + math.log(sum(exps))
        p = [e / sum(exps) for e in exps]
        a = [w[c] * ((1 - eps) * onehot[c] + eps / n_classes) for c in range(n_classes)]
        weight = sum(a) + 2 * z * lse
        loss = sum(a[c] * (lse - y[c]) for c in range(n_classes) if a[c]) + z * lse**2
        losses[i] = s[i] * loss
        grad_y[i] = [weight * p[c] - a[c] for c in range(n_classes)]
        hess_y[i] = [weight * p[c] * (1 - p[c]) + 2 * z * p[c] ** 2 for c in range(n_classes)]
        scale[i] = s[i]
        total += s[i] * sum(w[c] * onehot[c] for c in range(n_classes))
    if reduction == "mean":
        scale = scale / total
    grad = scale[:, None] * grad_y * slope
    hess = scale[:, None] * (hess_y * slope**2 + grad_y * bend)
    loss = {"none": losses.reshape(batch), "sum": losses.sum(), "mean": losses.sum() / total}

    def shaped(rows_array):
        return np.moveaxis(rows_array.reshape((*batch, n_classes)), -1, axis)

    return loss[reduction], shaped(grad), shaped(hess)


def _arrays(rng, shape, *, soft=False, axis=1, dtype=np.float64, scale=3.0):
    """Logits of `shape`, and integer labels or class probabilities along `axis`."""
    logits = (scale * rng.standard_normal(shape)).astype(dtype)
    n_classes = shape[axis]
    batch = shape[:axis] + shape[axis + 1 :]
    if soft:
        target = rng.dirichlet(np.ones(n_classes), size=batch)
        return logits, np.moveaxis(target, -1, axis)
    return logits, rng.integers(0, n_classes, size=batch)


def _options(rng, name, batch, n_classes):
    """One option of the logits loss, with values of the batch shape where it takes them."""
    if name == "class_weight":
        weight = rng.uniform(0.2, 2.0, n_classes)
        weight[0] = 0  # a class of weight 0
        return {"class_weight": weight}
    if name == "sample_weight":
        weight = rng.uniform(0.0, 2.0, batch)
        weight.reshape(-1)[::5] = 0
        return {"sample_weight": weight}
    if name == "where":
        return {"where": rng.uniform(size=batch) > 0.3}
    if name == "ignore_index":
        return {"ignore_index": 1}
    if name == "label_smoothing":
        return {"label_smoothing": 0.2}
    if name == "smoothing_and_class_weight":
        return {"label_smoothing": 0.1, "class_weight": rng.uniform(0.0, 2.0, n_classes)}
    if name == "z_loss":
        return {"z_loss": 0.01}
    if name == "softcap":
        return {"softcap": 2.5}
    if name == "all":
        weight = rng.uniform(0.1, 2.0, n_classes)
        return {
            "z_loss": 0.02,
            "softcap": 4.0,
            "label_smoothing": 0.05,
            "class_weight": weight,
            "sample_weight": rng.uniform(0.5, 2.0, batch),
        }
    assert name == "none"
    return {}


OPTIONS = [
    "none",
    "class_weight",
    "sample_weight",
    "where",
    "ignore_index",
    "label_smoothing",
    "smoothing_and_class_weight",
    "z_loss",
    "softcap",
    "all",
]


@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize(
    ("option", "soft"),
    # ignore_index takes class indices only
    [
        (option, soft)
        for option in OPTIONS
        for soft in (False, True)
        if option != "ignore_index" or not soft
    ],
)
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_every_option_equals_the_loop(rng, option, soft, reduction):
    shape = (2, 5, 3, 7)  # B = 2, C = 5, S = 21: blocks of 12 rows, the last ones of 9
    logits, target = _arrays(rng, shape, soft=soft)
    options = _options(rng, option, (2, 3, 7), 5)
    assert _is_class_major(logits, target, **options)
    loss, grad, hess = CCE(logits, target, axis=1, reduction=reduction, return_hess=True, **options)
    want_loss, want_grad, want_hess = _loop(logits, target, axis=1, reduction=reduction, **options)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(hess, want_hess, rtol=1e-10, atol=1e-15)
    assert grad.flags.c_contiguous  # written in the caller's layout, not copied back
    # The loss alone, and the gradient alone, are the same numbers.
    alone = CCE(logits, target, axis=1, reduction=reduction, **options)
    loss_grad, grad_alone = CCE(
        logits, target, axis=1, reduction=reduction, return_grad=True, **options
    )
    if option == "none" and not soft:
        # Plain calls take the label-referenced lane; return_hess takes the general path.
        np.testing.assert_allclose(alone, loss, rtol=1e-14)
        np.testing.assert_allclose(grad_alone, grad, rtol=1e-13, atol=1e-17)
        np.testing.assert_array_equal(loss_grad, alone)
        return
    np.testing.assert_array_equal(alone, loss)
    np.testing.assert_array_equal(loss_grad, loss)
    np.testing.assert_array_equal(grad_alone, grad)


@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize(
    ("shape", "axis"),
    [
        ((1, 4, 13), 1),  # B = 1, S not a multiple of the block
        ((3, 1, 5, 2), 1),  # C = 1: every loss is 0
        ((2, 300, 3), 1),  # C = 300: blocks of one row
        ((3, 6), 0),  # the class axis first: B = 1
        ((2, 3, 4, 5), 2),  # an inner class axis
        ((2, 7, 1), 1),  # S = 1: rows are a view already
    ],
)
def test_odd_shapes_equal_the_loop(rng, shape, axis):
    logits, target = _arrays(rng, shape, axis=axis)
    loss, grad, hess = CCE(logits, target, axis=axis, reduction="none", return_hess=True)
    want = _loop(logits, target, axis=axis, reduction="none")
    for got, expected in zip((loss, grad, hess), want, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("n_classes", [21, 150])
def test_float32_equals_the_rows_path(rng, soft, n_classes):
    # At the real block size and thresholds: (B, C, H, W) against the same logits with
    # the class axis moved last (a copy, read as rows), to float32 rounding.
    shape = (2, n_classes, 24, 40)
    logits, target = _arrays(rng, shape, soft=soft, dtype=np.float32)
    assert _is_class_major(logits, target)
    moved = np.ascontiguousarray(np.moveaxis(logits, 1, -1))
    moved_target = target if not soft else np.moveaxis(target, 1, -1)
    options = {"label_smoothing": 0.1, "z_loss": 1e-3}
    loss, grad, hess = CCE(logits, target, axis=1, reduction="none", return_hess=True, **options)
    rows_loss, rows_grad, rows_hess = CCE(
        moved, moved_target, reduction="none", return_hess=True, **options
    )
    np.testing.assert_allclose(loss, rows_loss, rtol=2e-6)
    for derivative, want in ((grad, rows_grad), (hess, rows_hess)):
        moved_back = np.moveaxis(derivative, 1, -1)
        np.testing.assert_allclose(moved_back, want, rtol=2e-5, atol=1e-6 * np.abs(want).max())


@pytest.mark.parametrize("threads", [1, 2])
def test_many_blocks_on_threads_equal_float64_formulas(rng, threads):
    # Large enough for several blocks and both threads; a vectorized float64 reference.
    shape = (3, 21, 100, 131)
    logits, target = _arrays(rng, shape)
    weights = rng.uniform(0.0, 2.0, size=(3, 100, 131))
    assert _is_class_major(logits, target)
    with ce.num_threads(threads):
        loss, grad, hess = CCE(
            logits, target, axis=1, sample_weight=weights, reduction="sum", return_hess=True
        )
    x = np.moveaxis(logits, 1, -1).reshape(-1, 21)
    labels = target.reshape(-1)
    s = weights.reshape(-1)
    top = x.max(axis=1, keepdims=True)
    e = np.exp(x - top)
    p = e / e.sum(axis=1, keepdims=True)
    lse = top[:, 0] + np.log(e.sum(axis=1))
    onehot = np.eye(21)[labels]
    want_loss = np.sum(s * (lse - x[np.arange(len(x)), labels]))
    want_grad = s[:, None] * (p - onehot)
    want_hess = s[:, None] * p * (1 - p)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-12)
    for derivative, want in ((grad, want_grad), (hess, want_hess)):
        rows = np.moveaxis(derivative, 1, -1).reshape(-1, 21)
        np.testing.assert_allclose(rows, want, rtol=1e-9, atol=1e-15)


def test_results_do_not_depend_on_the_thread_count(rng):
    logits, target = _arrays(rng, (4, 21, 64, 101), dtype=np.float32)
    results = []
    for threads in (1, 2):
        with ce.num_threads(threads):
            results.append(CCE(logits, target, axis=1, reduction="none", return_grad=True))
    # Each row is computed alone, the same in any block: the same numbers exactly.
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


@pytest.mark.usefixtures("small_blocks")
def test_non_contiguous_logits_fall_back_to_rows(rng):
    logits, target = _arrays(rng, (2, 4, 6, 10))
    strided = logits[:, :, :, ::2]
    assert not _is_class_major(strided, target[:, :, ::2])
    loss, grad = CCE(strided, target[:, :, ::2], axis=1, reduction="none", return_grad=True)
    want = _loop(strided, target[:, :, ::2], axis=1, reduction="none")
    np.testing.assert_allclose(loss, want[0], rtol=1e-12)
    np.testing.assert_allclose(grad, want[1], rtol=1e-10, atol=1e-15)


@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize("contiguous", [True, False])
def test_out_receives_the_gradient(rng, contiguous):
    logits, target = _arrays(rng, (2, 4, 3, 5))
    out = np.full((2, 4, 3, 10), np.nan)
    out = out[..., :5] if not contiguous else np.full((2, 4, 3, 5), np.nan)
    _, grad = CCE(logits, target, axis=1, return_grad=True, out=out)
    assert grad is out
    np.testing.assert_allclose(out, _loop(logits, target, axis=1)[1], rtol=1e-10, atol=1e-15)


@pytest.mark.usefixtures("small_blocks")
def test_inputs_are_not_modified(rng):
    logits, target = _arrays(rng, (2, 5, 3, 7))
    kept = logits.copy()
    CCE(logits, target, axis=1, softcap=3.0, z_loss=0.1, return_hess=True)
    np.testing.assert_array_equal(logits, kept)


@pytest.mark.usefixtures("small_blocks")
def test_infinite_and_nan_logits_as_the_rows_path():
    logits = np.zeros((1, 4, 6))
    logits[0, :, 0] = [1.0, -np.inf, 0.5, -np.inf]  # -inf of classes not the label
    logits[0, :, 1] = [np.inf, 0.0, 1.0, 2.0]  # +inf
    logits[0, :, 2] = -np.inf  # every class -inf
    logits[0, :, 3] = [0.0, np.nan, 1.0, 2.0]
    logits[0, :, 4] = [3.0, 3.0, 3.0, 1.0]  # three tied maxima
    logits[0, :, 5] = [2.0, 2.0 - 1e-17, 1.0, 0.0]  # a tie by rounding
    target = np.array([[0, 1, 2, 3, 0, 1]])
    with np.errstate(invalid="ignore"):
        got = CCE(logits, target, axis=1, reduction="none", return_hess=True)
        rows = CCE(logits[0].T.copy(), target[0], reduction="none", return_hess=True)
    np.testing.assert_allclose(got[0][0], rows[0], rtol=1e-15)
    for derivative, want in zip(got[1:], rows[1:], strict=True):
        np.testing.assert_allclose(derivative[0].T, want, rtol=1e-15)
    assert np.isfinite(got[0][0, 0])
    np.testing.assert_allclose(got[0][0, 4], math.log(3 + math.exp(-2)), rtol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tiny_losses_keep_their_relative_accuracy(dtype):
    # A confident, correct prediction: loss = log1p(sum_{c != y} e^(x_c - x_y)).
    import mpmath

    mpmath.mp.dps = 50
    n_classes, run = 21, 300
    margins = np.linspace(5.0, 60.0, run)
    logits = np.zeros((1, n_classes, run), dtype=dtype)
    logits[0, 0] = margins
    logits[0, 1:] = np.linspace(-1.0, 0.0, n_classes - 1, dtype=dtype)[:, None]
    target = np.zeros((1, run), dtype=np.intp)
    assert _is_class_major(logits, target)
    got = CCE(logits, target, axis=1, reduction="none")[0]
    for k in range(run):
        x = [mpmath.mpf(float(v)) for v in logits[0, :, k]]
        want = mpmath.log1p(sum(mpmath.exp(v - x[0]) for v in x[1:]))
        assert abs(got[k] - float(want)) <= 4 * np.finfo(dtype).eps * float(want) + 1e-300


def test_a_forward_pass_does_not_copy_the_logits(rng):
    logits = rng.standard_normal((8, 21, 128, 128), dtype=np.float32)
    target = rng.integers(0, 21, size=(8, 128, 128))
    # The work buffers of the threads are made once, and not counted.
    peak = losses.second_call_peak(lambda: CCE(logits, target, axis=1))
    # Nothing of the logits' size: one per-row array (1/C of it, the losses), and the
    # per-block values of each thread.
    assert peak < logits.nbytes / 8


FOCAL = ce.categorical_focal_loss_with_logits


@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize(
    "option", ["none", "class_weight", "where", "label_smoothing", "soft", "soft_and_weights"]
)
@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_the_focal_loss_equals_its_rows_path(rng, monkeypatch, option, gamma):
    # Class-major blocks against the rows of the same logits with the class axis last:
    # integer targets alone (the sums of the cross-entropy), and the dense path.
    soft = option.startswith("soft")
    logits, target = _arrays(rng, (2, 5, 3, 7), soft=soft)
    # Ties, and a tie by rounding: exponentials of 1 that class-major blocks leave out.
    logits[0, :, 0, 0] = [2.0, 2.0, 1.0, 0.0, -1.0]
    logits[0, :, 0, 1] = [3e-17, 0.0, -1.0, -2.0, -3.0]  # e^(0 - 3e-17) rounds to 1
    options = {}
    if option == "soft_and_weights":
        options = {"class_weight": rng.uniform(0.5, 2.0, 5), "label_smoothing": 0.1}
    elif not soft and option != "none":
        options = _options(rng, option, (2, 3, 7), 5)
    call = _prepare.prepare(
        _FOCAL_LOGITS,
        logits,
        target,
        return_grad=False,
        out=None,
        options={
            "reduction": "mean",
            "class_weight": None,
            "sample_weight": None,
            "where": None,
            "ignore_index": None,
            "label_smoothing": 0.0,
            "gamma": gamma,
            "axis": 1,
            **options,
        },
    )
    assert call.class_major
    assert np.shares_memory(call.values, logits)
    got = FOCAL(logits, target, axis=1, gamma=gamma, reduction="none", return_hess=True, **options)
    moved = np.ascontiguousarray(np.moveaxis(logits, 1, -1))
    moved_target = np.moveaxis(target, 1, -1) if soft else target
    monkeypatch.setattr(_prepare, "_MIN_CLASS_MAJOR_RUN", 1 << 62)  # rows, as they are
    want = FOCAL(moved, moved_target, gamma=gamma, reduction="none", return_hess=True, **options)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-13, atol=1e-300)
    for derivative, rows in zip(got[1:], want[1:], strict=True):
        np.testing.assert_allclose(np.moveaxis(derivative, 1, -1), rows, rtol=1e-12, atol=1e-15)


# The lane of plain class-major calls: integer labels, no options (``_plain_class_major``).


def _takes_the_class_major_lane(logits, labels, **options):
    """Whether a plain call reaches the class-major lane, reading `logits` in place."""
    full = losses.public_options("categorical_cross_entropy_with_logits", axis=1, **options)
    call = _prepare.plain_call(logits, labels, full)
    return call is not None and call.logits.ndim == 3 and np.shares_memory(call.logits, logits)


def _general_path(logits, labels, **options):
    """The same call on the general path: class weights of 1 change nothing."""
    ones = np.ones(logits.shape[1], dtype=logits.dtype)
    return CCE(logits, labels, axis=1, class_weight=ones, **options)


@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize(
    "shape",
    [(2, 5, 3, 7), (1, 4, 13), (3, 2, 40), (2, 70, 5)],  # many blocks; one position each
)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
# e^x where every sum of e^x is at least 1/2; e^(x - x_y) in blocks where one is less (-30),
# where e^x_y is subnormal (-95) or e^x overflows in float32 (80 + 4 * 4 > 88.7).
@pytest.mark.parametrize("shift", [0.0, -30.0, -95.0, 80.0])
def test_lane_equals_the_loop(rng, shape, reduction, dtype, shift):
    logits, target = _arrays(rng, shape, dtype=dtype, scale=4.0)
    logits += dtype(shift)
    assert _takes_the_class_major_lane(logits, target, reduction=reduction)
    loss, grad = CCE(logits, target, axis=1, reduction=reduction, return_grad=True)
    alone = CCE(logits, target, axis=1, reduction=reduction)
    want_loss, want_grad, _ = _loop(logits, target, axis=1, reduction=reduction)
    assert grad.dtype == dtype
    assert np.asarray(loss).dtype == dtype
    assert grad.flags.c_contiguous
    rtol = 1e-13 if dtype == np.float64 else 2e-6
    # The loop's lse(x) - x_y loses the last digits of small losses that the lane keeps.
    np.testing.assert_allclose(loss, want_loss, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(grad, want_grad, rtol=rtol * 10, atol=rtol * 1e-3)
    np.testing.assert_array_equal(alone, loss)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lane_axis_zero_and_inner_axes(rng, dtype):
    for shape, axis in (((5, 3, 2), 0), ((2, 3, 4, 5), 2)):
        logits, target = _arrays(rng, shape, axis=axis, dtype=dtype)
        full = losses.public_options("categorical_cross_entropy_with_logits", axis=axis)
        call = _prepare.plain_call(logits, target, full)
        assert call is not None
        assert call.logits.ndim == 3
        loss, grad = CCE(logits, target, axis=axis, reduction="none", return_grad=True)
        want_loss, want_grad, _ = _loop(logits, target, axis=axis, reduction="none")
        rtol = 1e-13 if dtype == np.float64 else 2e-6
        np.testing.assert_allclose(loss, want_loss, rtol=rtol, atol=rtol)
        np.testing.assert_allclose(grad, want_grad, rtol=rtol * 10, atol=rtol * 1e-3)


@pytest.mark.parametrize("margin", [0.5, 5.0, 20.0, 40.0, 80.0, 300.0, 700.0])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lane_tiny_losses_and_gradients_against_mpmath(margin, dtype):
    # Per position: the label holds the maximum (a tiny loss and a gradient that a
    # difference would round to 0); a tie at the maximum; the label below the maximum
    # by the margin (past log(max) the lane hands the call to the general path).
    import mpmath

    mpmath.mp.dps = 50
    n_classes = 6
    columns = np.zeros((n_classes, 3))
    columns[1, 0] = margin
    columns[[0, 2], 1] = margin
    columns[4, 2] = margin
    logits = np.tile(columns, (2, 1, 1)).astype(dtype)  # (2, 6, 3)
    target = np.array([[1, 2, 0]] * 2)
    assert _takes_the_class_major_lane(logits, target)
    loss, grad = CCE(logits, target, axis=1, reduction="none", return_grad=True)
    for k in range(3):
        x = [mpmath.mpf(float(v)) for v in logits[0, :, k]]
        y = int(target[0, k])
        others = mpmath.fsum(mpmath.exp(v - x[y]) for c, v in enumerate(x) if c != y)
        want = float(mpmath.log1p(others))
        want_grad = [
            float(-others / (1 + others) if c == y else mpmath.exp(v - x[y]) / (1 + others))
            for c, v in enumerate(x)
        ]
        tiny = np.finfo(dtype).smallest_subnormal
        rtol = 4 * np.finfo(dtype).eps
        np.testing.assert_allclose(loss[:, k], np.float64(want).astype(dtype), rtol=rtol, atol=tiny)
        expected_grad = np.array(want_grad).astype(dtype)
        np.testing.assert_allclose(grad[0, :, k], expected_grad, rtol=2 * rtol, atol=tiny)
        np.testing.assert_array_equal(grad[1, :, k], grad[0, :, k])
        if np.float64(want).astype(dtype) > 0:
            assert np.all(loss[:, k] > 0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lane_hands_overflow_inf_and_nan_to_the_general_path(dtype):
    # Each position alone in its call: a block that the label-referenced form cannot
    # take sends the whole call to the general path, whose results these must be.
    gap = 100.0 if dtype == np.float32 else 800.0  # e^gap overflows
    cases = [
        ([0.0, gap, 1.0], 0),  # a logit far above the label's: finite loss of about gap
        ([np.inf, 0.0, 1.0], 0),  # +inf at the label: NaN, as any row of maximum +inf
        ([0.0, np.inf, 1.0], 0),  # +inf elsewhere
        ([-np.inf, 0.0, 1.0], 0),  # -inf at the label: an infinite loss
        ([0.0, -np.inf, 1.0], 0),  # -inf elsewhere: the lane takes it
        ([0.0, np.nan, 1.0], 0),  # NaN
        ([-np.inf, -np.inf, -np.inf], 1),  # every class -inf: NaN
    ]
    for column, label in cases:
        logits = np.tile(np.array(column, dtype=dtype)[:, None], (1, 1, 4))  # (1, 3, 4)
        target = np.full((1, 4), label)
        assert _takes_the_class_major_lane(logits, target)
        with np.errstate(invalid="ignore", over="ignore"):
            got = CCE(logits, target, axis=1, reduction="none", return_grad=True)
            want = _general_path(logits, target, reduction="none", return_grad=True)
        np.testing.assert_allclose(got[0], want[0], rtol=4 * np.finfo(dtype).eps)
        np.testing.assert_allclose(got[1], want[1], rtol=4 * np.finfo(dtype).eps)
    with np.errstate(over="ignore"):
        far = CCE(np.array([[[0.0], [gap]]], dtype=dtype), np.array([[0]]), axis=1)
    np.testing.assert_allclose(far, gap, rtol=4 * np.finfo(dtype).eps)


def test_lane_results_do_not_depend_on_the_thread_count(rng):
    logits, target = _arrays(rng, (4, 21, 64, 101), dtype=np.float32)
    assert _takes_the_class_major_lane(logits, target)
    results = []
    for threads in (1, 2):
        with ce.num_threads(threads):
            results.append(
                [
                    CCE(logits, target, axis=1, reduction=reduction, return_grad=True)
                    for reduction in ("mean", "none")
                ]
            )
    for one, two in zip(*results, strict=True):
        np.testing.assert_array_equal(one[0], two[0])
        np.testing.assert_array_equal(one[1], two[1])


@pytest.mark.usefixtures("small_blocks")
def test_lane_declines_what_it_cannot_read_in_place(rng):
    logits, target = _arrays(rng, (2, 4, 6, 10))
    assert not _takes_the_class_major_lane(logits[:, :, :, ::2], target[:, :, ::2])
    assert not _takes_the_class_major_lane(logits, target, label_smoothing=0.1)
    bad = target.copy()
    bad[0, 0, 0] = 4
    assert not _takes_the_class_major_lane(logits, bad)
    with pytest.raises(ValueError, match=r"class index 4, outside \[0, 4\)"):
        CCE(logits, bad, axis=1)


@pytest.mark.usefixtures("small_blocks")
def test_lane_keeps_inputs_and_the_focal_loss_at_gamma_zero(rng):
    logits, target = _arrays(rng, (2, 5, 3, 7), dtype=np.float32)
    logits.flags.writeable = False
    kept = logits.copy()
    assert _takes_the_class_major_lane(logits, target)
    loss, grad = CCE(logits, target, axis=1, return_grad=True)
    focal, focal_grad = FOCAL(logits, target, axis=1, gamma=0.0, return_grad=True)
    np.testing.assert_array_equal(logits, kept)
    np.testing.assert_array_equal(focal, loss)
    np.testing.assert_array_equal(focal_grad, grad)
