"""The lane of plain binary calls: probabilities and 0/1 targets without options.

Every test first checks that its calls take the lane (``plain_call`` accepts them), then
checks them against mpmath, the float64 loop of ``tests/reference.py`` or the general
path, which float targets (the same 0/1 values) force.
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

OPTIONS = losses.public_options("binary_cross_entropy")
# More elements than one block of the lane, in float64 and in float32.
SEVERAL_BLOCKS = 3 * _binary._PLAIN_BLOCK_BYTES // 4 + 17


def _takes_the_lane(probs, target, **options):
    assert _binary._PROBABILITIES.plain is not None
    return plain_call(probs, target, {**OPTIONS, **options}, categorical=False) is not None


def _float64_gradient(probs, target, eps, scale):
    """``s ((1 - t) / (1 - q) - t / q)`` in float64, 0 where ``p`` is clipped."""
    p = probs.astype(np.float64)
    t = target.astype(np.float64)
    q = np.clip(p, eps, 1 - eps)
    grad = scale * ((1 - t) / (1 - q) - t / q)
    grad[(p < eps) | (p > 1 - eps)] = 0
    return grad


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("size", [1, 1000, SEVERAL_BLOCKS])
def test_against_a_float64_loop(rng, dtype, reduction, size):
    probs = rng.random(size).astype(dtype)
    target = rng.integers(0, 2, size=size)
    assert _takes_the_lane(probs, target)
    loss, grad = ce.binary_cross_entropy(probs, target, reduction=reduction, return_grad=True)
    expected = reference.binary(probs, target, logits=False, reduction=reduction)
    rtol = 1e-13 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(loss, expected, rtol=rtol)
    scale = 1 / size if reduction == "mean" else 1.0
    eps = float(np.finfo(dtype).eps)
    np.testing.assert_allclose(grad, _float64_gradient(probs, target, eps, scale), rtol=rtol)
    assert grad.dtype == dtype
    assert np.asarray(loss).dtype == dtype


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("p", [1e-30, 1e-12, 1e-5, 0.5, 1 - 1e-5])
def test_tiny_losses_keep_their_relative_accuracy(dtype, p):
    # -log1p(-q) for a negative target, -log(q) for a positive one: both tiny somewhere.
    probs = np.array([p, p, 1 - p, 1 - p], dtype=dtype)
    target = np.array([0, 1, 0, 1])
    assert _takes_the_lane(probs, target)
    got = ce.binary_cross_entropy(probs, target, reduction="none")
    eps = mpmath.mpf(float(np.finfo(dtype).eps))
    expected = []
    for value, label in zip(probs, target, strict=True):
        q = min(max(mpmath.mpf(float(value)), eps), 1 - eps)
        expected.append(float(-mpmath.log(q) if label else -mpmath.log1p(-q)))
    ulp = float(np.finfo(dtype).eps)
    np.testing.assert_allclose(got, expected, rtol=4 * ulp)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_clipped_probabilities_and_their_zero_gradient(dtype):
    eps = float(np.finfo(dtype).eps)
    probs = np.array([0.0, 1.0, eps / 4, 1 - eps / 4, 0.0, 1.0, 0.25, 0.75], dtype=dtype)
    target = np.array([1, 0, 1, 0, 0, 1, 1, 0], dtype=np.int8)
    assert _takes_the_lane(probs, target)
    loss, grad = ce.binary_cross_entropy(probs, target, reduction="none", return_grad=True)
    expected = reference.binary(probs, target, logits=False, reduction="none")
    np.testing.assert_allclose(loss, expected, rtol=4 * eps)
    np.testing.assert_allclose(grad, _float64_gradient(probs, target, eps, 1.0), rtol=4 * eps)
    assert (grad[probs.astype(np.float64) < eps] == 0).all()
    assert grad[6] != 0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_lane_and_the_general_path_agree(rng, dtype):
    probs = rng.random((300, 7)).astype(dtype)
    probs[::13, 2] = 0.0
    target = rng.integers(0, 2, size=probs.shape)
    assert _takes_the_lane(probs, target)
    as_floats = target.astype(dtype)  # the same targets, on the general path
    assert not _takes_the_lane(probs, as_floats)
    for reduction in ("mean", "sum", "none"):
        got = ce.binary_cross_entropy(probs, target, reduction=reduction, return_grad=True)
        want = ce.binary_cross_entropy(probs, as_floats, reduction=reduction, return_grad=True)
        for a, b in zip(got, want, strict=True):
            np.testing.assert_allclose(a, b, rtol=4 * np.finfo(dtype).eps, atol=0)


@pytest.mark.parametrize(
    "target_dtype", [bool, np.int8, np.uint8, np.int16, np.int32, np.int64, np.uint64]
)
def test_target_dtypes(rng, target_dtype):
    probs = rng.random(SEVERAL_BLOCKS)
    target = rng.integers(0, 2, size=probs.size).astype(target_dtype)
    assert _takes_the_lane(probs, target)
    got = ce.binary_cross_entropy(probs, target)
    np.testing.assert_allclose(got, reference.binary(probs, target, logits=False), rtol=1e-13)


def test_results_do_not_depend_on_the_thread_count(rng):
    probs = rng.random(3 * SEVERAL_BLOCKS)
    probs[::1001] = 1.0  # some blocks clip
    target = rng.integers(0, 2, size=probs.size)
    assert _takes_the_lane(probs, target)
    results = {}
    for threads in (1, 2, 3):
        with ce.num_threads(threads):
            results[threads] = [
                ce.binary_cross_entropy(probs, target, reduction=reduction, return_grad=True)
                for reduction in ("mean", "none")
            ]
    for threads in (2, 3):
        for got, want in zip(results[threads], results[1], strict=True):
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_allclose(
        results[1][0][0], reference.binary(probs, target, logits=False), rtol=1e-13
    )


@pytest.mark.parametrize(
    ("probs", "target", "error"),
    [
        ([0.2, 1.5], [1, 0], r"probs must lie in \[0, 1\].*1\.5"),
        ([-0.1, 0.5], [1, 0], r"probs must lie in \[0, 1\].*-0\.1"),
        ([0.2, np.nan], [1, 0], r"probs must lie in \[0, 1\].*nan"),
        ([0.2, 0.5], [2, 0], r"target .* only 0 and 1, got 2"),
        ([0.2, 0.5], [-1, 0], r"target .* only 0 and 1, got -1"),
    ],
)
def test_bad_values_take_the_general_path_and_its_errors(probs, target, error):
    # The last block holds the bad value: the blocks before it have run.
    first = np.full(SEVERAL_BLOCKS, 0.5)
    first[-2:] = probs
    labels = np.zeros(SEVERAL_BLOCKS, dtype=np.int64)
    labels[-2:] = target
    assert _takes_the_lane(first, labels)
    with pytest.raises(ValueError, match=error):
        ce.binary_cross_entropy(first, labels, reduction="none", return_grad=True)


def test_what_stays_off_the_lane_gets_the_same_results(rng):
    probs = rng.random((40, 6))
    target = rng.integers(0, 2, size=probs.shape)
    expected = reference.binary(probs, target, logits=False, reduction="none")
    others = {
        "strided probabilities": (probs[:, ::2], target[:, ::2], {}),
        "strided target": (np.ascontiguousarray(probs[:, ::2]), target[:, ::2], {}),
        "float16": (probs.astype(np.float16), target, {}),
        "eps": (probs, target, {"eps": 1e-7}),
        "pos_weight": (probs, target, {"pos_weight": 1.0}),
    }
    for name, (first, second, options) in others.items():
        assert not _takes_the_lane(first, second, **options), name
    neutral = {"pos_weight": None, "sample_weight": None, "where": None, "label_smoothing": 0}
    assert _takes_the_lane(probs, target, **neutral)
    got = ce.binary_cross_entropy(probs, target, reduction="none", **neutral)
    np.testing.assert_allclose(got, expected, rtol=1e-14)
    strided = ce.binary_cross_entropy(probs[:, ::2], target[:, ::2], reduction="none")
    np.testing.assert_allclose(strided, expected[:, ::2], rtol=1e-14)


def test_shapes_out_and_untouched_inputs(rng):
    probs = rng.random((3, 4, 5)).astype(np.float32)
    target = rng.integers(0, 2, size=probs.shape)
    probs.flags.writeable = False
    target.flags.writeable = False
    kept = probs.copy(), target.copy()
    assert _takes_the_lane(probs, target)
    out = np.empty(probs.shape, np.float32)
    loss, grad = ce.binary_cross_entropy(probs, target, reduction="none", return_grad=True, out=out)
    assert grad is out
    assert loss.shape == probs.shape
    np.testing.assert_allclose(
        loss, reference.binary(probs, target, logits=False, reduction="none"), rtol=2e-6
    )
    np.testing.assert_array_equal(probs, kept[0])
    np.testing.assert_array_equal(target, kept[1])
    scalar = ce.binary_cross_entropy(np.float64(0.25), np.int64(1), reduction="none")
    assert scalar.shape == ()
    assert scalar == pytest.approx(-np.log(0.25), rel=1e-15)


@pytest.mark.parametrize("threads", [1, 2])
def test_a_forward_pass_allocates_at_most_a_sixteenth_of_the_input(rng, threads):
    probs = rng.random(2_000_000)  # 16 MiB
    target = rng.integers(0, 2, size=probs.size)
    assert _takes_the_lane(probs, target)
    with ce.num_threads(threads):
        peak = losses.second_call_peak(lambda: ce.binary_cross_entropy(probs, target))
    assert peak < probs.nbytes / 16
