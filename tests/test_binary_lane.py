"""The lanes of plain binary calls: values and targets without options.

Every test first checks that its calls take the lane (``plain_call`` accepts them), then
checks them against mpmath, the float64 loop of ``tests/reference.py`` or the general
path, which ``pos_weight=1.0`` forces (it changes nothing).
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

import crossentropy as ce
from crossentropy import _binary
from crossentropy._prepare import plain_call

from . import losses, reference

mpmath.mp.dps = 50

# More elements than one block of the lanes, in float64 and in float32.
SEVERAL_BLOCKS = 3 * _binary._PLAIN_BLOCK_BYTES // 4 + 17
# Blocks of a few hundred elements, for tests against the float64 loop (see small_blocks).
SMALL_BLOCK_BYTES = 1 << 12
SEVERAL_SMALL_BLOCKS = 3 * SMALL_BLOCK_BYTES // 4 + 17
LOSSES = {
    "probs": (ce.binary_cross_entropy, _binary._PROBABILITIES),
    "logits": (ce.binary_cross_entropy_with_logits, _binary._LOGITS),
}


def _takes_the_lane(kind, values, target, **options):
    function, loss = LOSSES[kind]
    assert loss.plain is not None
    options = {**losses.public_options(function.__name__), **options}
    return plain_call(values, target, options, categorical=False) is not None


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of SMALL_BLOCK_BYTES: calls of a few thousand elements span several."""
    monkeypatch.setattr(_binary, "_PLAIN_BLOCK_BYTES", SMALL_BLOCK_BYTES)


def _float64_losses(kind, values, target):
    """The per-element losses in float64, vectorized (for arrays too long for the loop)."""
    x = values.astype(np.float64)
    t = np.asarray(target, dtype=np.float64)
    if kind == "logits":
        return np.log1p(np.exp(-np.abs(x))) + (1 - t) * np.maximum(x, 0) + t * np.maximum(-x, 0)
    eps = float(np.finfo(values.dtype).eps)
    q = np.clip(x, eps, 1 - eps)
    return -(t * np.log(q) + (1 - t) * np.log1p(-q))


def _values(kind, rng, shape, dtype):
    if kind == "probs":
        return rng.random(shape).astype(dtype)
    return (4 * rng.standard_normal(shape)).astype(dtype)


def _float64_gradient(kind, values, target, scale):
    """The derivative of the summed losses times `scale`, in float64."""
    x = values.astype(np.float64)
    t = np.asarray(target, dtype=np.float64)
    if kind == "logits":
        # sigmoid(x) - t as (1 - t) sigmoid(x) - t sigmoid(-x): no cancellation at 0/1.
        with np.errstate(over="ignore"):
            return scale * ((1 - t) / (1 + np.exp(-x)) - t / (1 + np.exp(x)))
    eps = float(np.finfo(values.dtype).eps)
    q = np.clip(x, eps, 1 - eps)
    grad = scale * ((1 - t) / (1 - q) - t / q)
    grad[(x < eps) | (x > 1 - eps)] = 0
    return grad


@pytest.mark.parametrize("kind", LOSSES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("size", [1, 1000, SEVERAL_SMALL_BLOCKS])
@pytest.mark.usefixtures("small_blocks")
def test_against_a_float64_loop(rng, kind, dtype, reduction, size):
    values = _values(kind, rng, size, dtype)
    target = rng.integers(0, 2, size=size)
    assert _takes_the_lane(kind, values, target)
    function = LOSSES[kind][0]
    loss, grad = function(values, target, reduction=reduction, return_grad=True)
    expected = reference.binary(values, target, logits=kind == "logits", reduction=reduction)
    rtol = 1e-13 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(loss, expected, rtol=rtol)
    scale = 1 / size if reduction == "mean" else 1.0
    want = _float64_gradient(kind, values, target, scale)
    np.testing.assert_allclose(grad, want, rtol=rtol, atol=1e-30)
    assert grad.dtype == dtype
    assert np.asarray(loss).dtype == dtype


@pytest.mark.parametrize("kind", LOSSES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_soft_targets_against_a_float64_loop(rng, kind, dtype):
    values = _values(kind, rng, 5000, dtype)
    target = rng.random(5000)
    target[::7] = rng.integers(0, 2, size=target[::7].size)
    assert _takes_the_lane(kind, values, target)
    function = LOSSES[kind][0]
    loss, grad = function(values, target, reduction="none", return_grad=True)
    in_dtype = target.astype(dtype)  # targets are read in the computation dtype
    expected = reference.binary(values, in_dtype, logits=kind == "logits", reduction="none")
    rtol = 1e-13 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(loss, expected, rtol=rtol)
    want = _float64_gradient(kind, values, in_dtype, 1.0)
    # sigmoid(x) - t cancels where t is near sigmoid(x): a tolerance on its terms' scale.
    np.testing.assert_allclose(grad, want, rtol=rtol, atol=4 * rtol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("p", [1e-30, 1e-12, 1e-5, 0.5, 1 - 1e-5])
def test_tiny_probability_losses_keep_their_relative_accuracy(dtype, p):
    # -log1p(-q) for a negative target, -log(q) for a positive one: both tiny somewhere.
    probs = np.array([p, p, 1 - p, 1 - p], dtype=dtype)
    target = np.array([0, 1, 0, 1])
    assert _takes_the_lane("probs", probs, target)
    got = ce.binary_cross_entropy(probs, target, reduction="none")
    eps = mpmath.mpf(float(np.finfo(dtype).eps))
    expected = []
    for value, label in zip(probs, target, strict=True):
        q = min(max(mpmath.mpf(float(value)), eps), 1 - eps)
        expected.append(float(-mpmath.log(q) if label else -mpmath.log1p(-q)))
    np.testing.assert_allclose(got, expected, rtol=4 * float(np.finfo(dtype).eps))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("x", [0.5, 20.0, 40.0, 80.0, 700.0])
def test_tiny_logit_losses_and_gradients_keep_their_relative_accuracy(dtype, x):
    # A confident correct prediction either way: loss log1p(e^-x), gradient -+ sigmoid(-x).
    logits = np.array([x, -x, x, -x], dtype=dtype)
    target = np.array([1, 0, 0, 1])
    assert _takes_the_lane("logits", logits, target)
    got, grad = ce.binary_cross_entropy_with_logits(
        logits, target, reduction="none", return_grad=True
    )
    x = mpmath.mpf(float(logits[0]))
    tiny = float(mpmath.log1p(mpmath.exp(-x)))
    large = float(x + mpmath.log1p(mpmath.exp(-x)))
    small_slope = float(1 / (1 + mpmath.exp(x)))  # sigmoid(-x)
    rtol = 4 * float(np.finfo(dtype).eps)
    smallest = float(np.finfo(dtype).smallest_subnormal)
    np.testing.assert_allclose(got, [tiny, tiny, large, large], rtol=rtol, atol=smallest)
    expected = [-small_slope, small_slope, 1 - small_slope, small_slope - 1]
    np.testing.assert_allclose(grad, expected, rtol=rtol, atol=smallest)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_clipped_probabilities_and_their_zero_gradient(dtype):
    eps = float(np.finfo(dtype).eps)
    probs = np.array([0.0, 1.0, eps / 4, 1 - eps / 4, 0.0, 1.0, 0.25, 0.75], dtype=dtype)
    target = np.array([1, 0, 1, 0, 0, 1, 1, 0], dtype=np.int8)
    assert _takes_the_lane("probs", probs, target)
    loss, grad = ce.binary_cross_entropy(probs, target, reduction="none", return_grad=True)
    expected = reference.binary(probs, target, logits=False, reduction="none")
    np.testing.assert_allclose(loss, expected, rtol=4 * eps)
    np.testing.assert_allclose(grad, _float64_gradient("probs", probs, target, 1.0), rtol=4 * eps)
    assert (grad[probs.astype(np.float64) < eps] == 0).all()
    assert grad[6] != 0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_infinite_and_nan_logits_get_the_general_paths_results(dtype):
    logits = np.array([np.inf, -np.inf, np.inf, -np.inf, np.nan, 1e30, -1e30, 2.0], dtype)
    target = np.array([1, 0, 0, 1, 1, 1, 1, 0])
    assert _takes_the_lane("logits", logits, target)
    for reduction in ("none", "sum"):
        got, grad = ce.binary_cross_entropy_with_logits(
            logits, target, reduction=reduction, return_grad=True
        )
        want, want_grad = ce.binary_cross_entropy_with_logits(
            logits, target, reduction=reduction, return_grad=True, pos_weight=1.0
        )
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(grad, want_grad)
    none = ce.binary_cross_entropy_with_logits(logits, target, reduction="none")
    expected = [0.0, 0.0, np.inf, np.inf, np.nan, 0.0, 1e30, 2 + np.log1p(np.exp(-2))]
    np.testing.assert_allclose(none, np.array(expected, dtype), rtol=4 * np.finfo(dtype).eps)


@pytest.mark.parametrize("kind", LOSSES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("soft", [False, True])
def test_the_lane_and_the_general_path_agree(rng, kind, dtype, soft):
    values = _values(kind, rng, (300, 7), dtype)
    if kind == "probs":
        values[::13, 2] = 0.0
    target = rng.random(values.shape) if soft else rng.integers(0, 2, size=values.shape)
    assert _takes_the_lane(kind, values, target)
    assert not _takes_the_lane(kind, values, target, pos_weight=1.0)
    function = LOSSES[kind][0]
    # The same formulas, element by element: the same bits (the sums may differ in order).
    for reduction in ("none", "mean"):
        got = function(values, target, reduction=reduction, return_grad=True)
        want = function(values, target, reduction=reduction, return_grad=True, pos_weight=1.0)
        np.testing.assert_array_equal(got[1], want[1])
        if reduction == "none":
            np.testing.assert_array_equal(got[0], want[0])
        else:
            np.testing.assert_allclose(got[0], want[0], rtol=4 * np.finfo(dtype).eps)


@pytest.mark.parametrize("kind", LOSSES)
@pytest.mark.parametrize(
    "target_dtype", [bool, np.int8, np.uint8, np.int16, np.int32, np.int64, np.uint64, np.float32]
)
@pytest.mark.usefixtures("small_blocks")
def test_target_dtypes(rng, kind, target_dtype):
    values = _values(kind, rng, SEVERAL_SMALL_BLOCKS, np.float64)
    target = rng.integers(0, 2, size=values.size).astype(target_dtype)
    assert _takes_the_lane(kind, values, target)
    got = LOSSES[kind][0](values, target)
    expected = reference.binary(values, target, logits=kind == "logits")
    np.testing.assert_allclose(got, expected, rtol=1e-13)


@pytest.mark.parametrize("kind", LOSSES)
def test_results_do_not_depend_on_the_thread_count(rng, kind):
    values = _values(kind, rng, 3 * SEVERAL_BLOCKS, np.float64)
    if kind == "probs":
        values[::1001] = 1.0  # some blocks clip
    target = rng.integers(0, 2, size=values.size)
    assert _takes_the_lane(kind, values, target)
    function = LOSSES[kind][0]
    results = {}
    for threads in (1, 2, 3):
        with ce.num_threads(threads):
            results[threads] = [
                function(values, target, reduction=reduction, return_grad=True)
                for reduction in ("mean", "none")
            ]
    for threads in (2, 3):
        for got, want in zip(results[threads], results[1], strict=True):
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])
    expected = _float64_losses(kind, values, target)
    np.testing.assert_allclose(results[1][1][0], expected, rtol=1e-13)
    np.testing.assert_allclose(results[1][0][0], expected.mean(), rtol=1e-13)


@pytest.mark.parametrize(
    ("kind", "values", "target", "error"),
    [
        ("probs", [0.2, 1.5], [1, 0], r"probs must lie in \[0, 1\].*1\.5"),
        ("probs", [-0.1, 0.5], [1, 0], r"probs must lie in \[0, 1\].*-0\.1"),
        ("probs", [0.2, np.nan], [1, 0], r"probs must lie in \[0, 1\].*nan"),
        ("probs", [0.2, 0.5], [2, 0], r"target .* only 0 and 1, got 2"),
        ("probs", [0.2, 0.5], [-1, 0], r"target .* only 0 and 1, got -1"),
        ("probs", [0.2, 0.5], [1.5, 0.0], r"target must lie in \[0, 1\].*1\.5"),
        ("logits", [0.2, 3.0], [2, 0], r"target .* only 0 and 1, got 2"),
        ("logits", [0.2, 3.0], [np.nan, 0.0], r"target must lie in \[0, 1\].*nan"),
        ("logits", [0.2, 3.0], [-0.5, 0.0], r"target must lie in \[0, 1\].*-0\.5"),
    ],
)
def test_bad_values_take_the_general_path_and_its_errors(kind, values, target, error):
    # The last block holds the bad value: the blocks before it have run.
    first = np.full(SEVERAL_BLOCKS, 0.5)
    first[-2:] = values
    labels = np.zeros(SEVERAL_BLOCKS, dtype=np.asarray(target).dtype)
    labels[-2:] = target
    assert _takes_the_lane(kind, first, labels)
    with pytest.raises(ValueError, match=error):
        LOSSES[kind][0](first, labels, reduction="none", return_grad=True)


@pytest.mark.parametrize("kind", LOSSES)
def test_what_stays_off_the_lane_gets_the_same_results(rng, kind):
    values = _values(kind, rng, (40, 6), np.float64)
    target = rng.integers(0, 2, size=values.shape)
    logits = kind == "logits"
    expected = reference.binary(values, target, logits=logits, reduction="none")
    others = {
        "strided values": (values[:, ::2], target[:, ::2], {}),
        "strided target": (np.ascontiguousarray(values[:, ::2]), target[:, ::2], {}),
        "float16": (values.astype(np.float16), target, {}),
        "pos_weight": (values, target, {"pos_weight": 1.0}),
        "label_smoothing": (values, target, {"label_smoothing": 0.1}),
        "list": (values.tolist(), target, {}),
    }
    if not logits:
        others["eps"] = (values, target, {"eps": 1e-7})
    for name, (first, second, options) in others.items():
        assert not _takes_the_lane(kind, first, second, **options), name
    neutral = {"pos_weight": None, "sample_weight": None, "where": None, "label_smoothing": 0}
    assert _takes_the_lane(kind, values, target, **neutral)
    function = LOSSES[kind][0]
    got = function(values, target, reduction="none", **neutral)
    np.testing.assert_allclose(got, expected, rtol=1e-14)
    strided = function(values[:, ::2], target[:, ::2], reduction="none")
    np.testing.assert_allclose(strided, expected[:, ::2], rtol=1e-14)


@pytest.mark.parametrize("kind", LOSSES)
def test_shapes_out_and_untouched_inputs(rng, kind):
    values = _values(kind, rng, (3, 4, 5), np.float32)
    target = rng.integers(0, 2, size=values.shape)
    values.flags.writeable = False
    target.flags.writeable = False
    kept = values.copy(), target.copy()
    assert _takes_the_lane(kind, values, target)
    function = LOSSES[kind][0]
    out = np.empty(values.shape, np.float32)
    loss, grad = function(values, target, reduction="none", return_grad=True, out=out)
    assert grad is out
    assert loss.shape == values.shape
    expected = reference.binary(values, target, logits=kind == "logits", reduction="none")
    np.testing.assert_allclose(loss, expected, rtol=2e-6)
    np.testing.assert_array_equal(values, kept[0])
    np.testing.assert_array_equal(target, kept[1])
    scalar = function(np.float64(0.25), np.int64(1), reduction="none")
    assert scalar.shape == ()
    want = -np.log(0.25) if kind == "probs" else np.log1p(np.exp(-0.25))
    assert scalar == pytest.approx(want, rel=1e-15)


@pytest.mark.parametrize("kind", LOSSES)
@pytest.mark.parametrize("threads", [1, 2])
def test_a_forward_pass_allocates_at_most_a_sixteenth_of_the_input(rng, kind, threads):
    values = _values(kind, rng, 2_000_000, np.float64)  # 16 MiB
    target = rng.integers(0, 2, size=values.size).astype(np.float64)
    assert _takes_the_lane(kind, values, target)
    function = LOSSES[kind][0]
    with ce.num_threads(threads):
        peak = losses.second_call_peak(lambda: function(values, target))
    assert peak < values.nbytes / 16
