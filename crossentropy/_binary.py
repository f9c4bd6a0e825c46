"""Binary (elementwise, multi-label) cross-entropy and focal losses, from logits or probs."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal, Protocol, overload

import numpy as np
import numpy.typing as npt

from ._dispatch import evaluate
from ._prepare import (
    Loss,
    Prepared,
    Unfit,
    buffered_part,
    inside_unit_interval,
    labels_in_range,
    lane_outputs,
    run_lane_blocks,
    weighted_product,
)
from ._threads import run_in_ranges, scratch
from ._types import (
    BinaryFocalOptions,
    BinaryOptions,
    BinaryProbabilityFocalOptions,
    BinaryProbabilityOptions,
    FloatArray,
    LossResult,
    LossValue,
    Reduction,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "binary_focal_loss",
    "binary_focal_loss_with_logits",
]


# Bytes of one block of each work buffer: the handful of buffers stays in the L2 cache.
_BLOCK_BYTES = 1 << 19
# Bytes of a block of the lanes of plain calls (see _plain_binary), and their rows of
# work: fewer buffers than the general path's, twice as long, for half the NumPy calls.
_PLAIN_BLOCK_BYTES = 1 << 20
_PLAIN_ROWS = 5


def _weighted_quotient(weight: Any, values: FloatArray) -> Any:
    """Return ``weight / values``, exactly 0 where `weight` is 0 (also for values of 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        quotient = np.divide(weight, values)
    if np.ndim(weight) == 0:
        return quotient if weight != 0 else np.zeros_like(quotient)
    quotient[np.broadcast_to(weight == 0, quotient.shape)] = 0
    return quotient


def _zero_where_zero(values: FloatArray, weight: Any) -> None:
    """Set `values` to exactly 0 where `weight` (a scalar or an array of its size) is 0."""
    if np.ndim(weight) == 0:
        if weight == 0:
            values[...] = 0
    else:
        values[weight == 0] = 0


class _Binary:
    """A binary call's kernel, computed block by block on every core.

    With the smoothed target ``t``, each element's loss is ``a f + b g`` where
    ``a = 1 - t`` and ``b = pos_weight * t`` weigh the negative-class term ``f`` and the
    positive-class term ``g``; a term whose weight is 0 contributes exactly 0. A focal
    loss's ``alpha`` multiplies ``a`` by ``1 - alpha`` and ``b`` by ``alpha``.
    """

    def __init__(self, call: Prepared) -> None:
        self.call = call
        self.dtype = call.dtype
        self.values = call.values
        self.target = call.target
        self.pos_weight = call.pos_weight
        self.weight = call.row_weight
        self.smoothing = tuple(self.dtype.type(value) for value in call.smoothing)
        low = self.dtype.type(call.plan.eps)
        self.clip = (low, self.dtype.type(1) - low)
        self.grad = call.grad_rows
        self.hess = call.hess_rows
        # Focal losses: the exponent, and the class balance as weights of the two terms.
        self.gamma = self.dtype.type(call.plan.gamma)
        alpha = call.plan.alpha
        self.balance = (
            None if alpha is None else (self.dtype.type(1 - alpha), self.dtype.type(alpha))
        )
        self.losses: FloatArray | None = None
        if call.plan.reduction == "none":
            self.losses = np.empty(self.values.size, dtype=self.dtype)

    @classmethod
    def kernel(cls, call: Prepared) -> Any:
        """Compute every block; return the per-element losses, or their float64 sum."""
        problem = cls(call)
        sums = run_in_ranges(problem.run_range, problem.values.size, 1)
        return sum(sums) if problem.losses is None else problem.losses

    def run_range(self, start: int, stop: int) -> float:
        """Compute elements ``start:stop`` block by block, with this thread's buffers.

        Returns the float64 sum of their losses.
        """
        block = max(1, _BLOCK_BYTES // self.dtype.itemsize)
        shape = (self.n_buffers, min(block, max(stop - start, 1)))
        buffers = scratch("binary", shape, self.dtype)
        summed = 0.0
        # Infinite terms of weight 0 and probabilities of 0 or 1 are mended per block.
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            for begin in range(start, stop, block):
                end = min(begin + block, stop)
                summed += self.run_block(begin, end, buffers[:, : end - begin])
        return summed

    def run_block(self, start: int, stop: int, buffers: FloatArray) -> float:
        """Compute one block into the losses (or a buffer) and the gradient; return its sum."""
        losses = buffers[0] if self.losses is None else self.losses[start:stop]
        # The smoothed target and the weights of the two terms.
        target = buffered_part(self.target, start, stop, "binary-target")
        hard, share = self.smoothing
        if target.dtype.kind == "f" and target.dtype != self.dtype:
            # Floats of another dtype are read in the computation dtype first.
            np.copyto(buffers[1], target, casting="unsafe")
            target = buffers[1]
        if share or target.dtype != self.dtype:
            # Also turns integer targets into floats once, not in every ufunc below.
            target = np.multiply(target, hard, out=buffers[1])
            if share:
                target += share
        negative = np.subtract(1, target, out=buffers[2])
        positive = target
        if self.pos_weight is not None:
            pos_weight = buffered_part(self.pos_weight, start, stop, "binary-pos-weight")
            positive = np.multiply(target, pos_weight, out=buffers[1])
        if self.balance is not None:
            negative *= self.balance[0]
            positive = np.multiply(positive, self.balance[1], out=buffers[1])
        terms = self.terms(start, stop, buffers[3:])
        np.multiply(negative, terms[0], out=losses)
        losses += np.multiply(positive, terms[1], out=buffers[5])
        if not np.isfinite(losses.sum()):
            # An infinite term of weight 0 gave NaN: recompute the block term by term.
            losses[...] = weighted_product(negative, terms[0])
            losses += weighted_product(positive, terms[1])
        if self.negated_terms:
            np.negative(losses, out=losses)
        summed = float(losses.sum(dtype=np.float64))
        weight = buffered_part(self.weight, start, stop, "binary-weight")
        if weight is not None:
            losses *= weight
            _zero_where_zero(losses, weight)
            summed = float(losses.sum(dtype=np.float64))
        if self.grad is None:
            return summed
        scale = self.call.grad_scale(start, stop)
        if self.hess is not None:
            # Before slope(), which may overwrite what terms() left in the buffers.
            curvature = self.hess[start:stop]
            self.curvature(
                start,
                stop,
                negative=negative,
                positive=positive,
                out=curvature,
                buffers=buffers[3:],
            )
            curvature *= scale
            _zero_where_zero(curvature, scale)
        slope = self.grad[start:stop]
        self.slope(
            start, stop, negative=negative, positive=positive, out=slope, buffers=buffers[3:]
        )
        slope *= scale
        _zero_where_zero(slope, scale)
        return summed

    # Whether terms() returns -f and -g, the sum being negated once instead.
    negated_terms = False
    # Rows of the work buffers of a block: 0 to 2 for run_block, from 3 on for terms()
    # and slope(), which get them as their rows 0, 1, ..., except their row 2 (run_block's
    # product of the positive weight and term) between the two.
    n_buffers = 8

    def terms(self, start: int, stop: int, buffers: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Return the negative- and positive-class terms of a block (per subclass)."""
        raise NotImplementedError

    def slope(
        self,
        start: int,
        stop: int,
        *,
        negative: Any,
        positive: Any,
        out: FloatArray,
        buffers: FloatArray,
    ) -> None:
        """Write the derivative of ``a f + b g`` of a block into `out` (per subclass)."""
        raise NotImplementedError

    def curvature(
        self,
        start: int,
        stop: int,
        *,
        negative: Any,
        positive: Any,
        out: FloatArray,
        buffers: FloatArray,
    ) -> None:
        """Write the second derivative of ``a f + b g`` of a block into `out` (logits only).

        Called after terms() and before slope(); its row 2 of `buffers` is free.
        """
        raise NotImplementedError


class _BinaryLogits(_Binary):
    """``f = softplus(x)``, ``g = softplus(-x)``; ``softplus(x) = max(x, 0) + log1p(e^-|x|)``."""

    def terms(self, start: int, stop: int, buffers: FloatArray) -> tuple[FloatArray, FloatArray]:
        x = self.values[start:stop]
        above = np.maximum(x, 0, out=buffers[0])
        below = np.negative(x, out=buffers[1])
        np.maximum(below, 0, out=below)
        decay = np.add(above, below, out=buffers[3])  # |x|
        np.negative(decay, out=decay)
        np.exp(decay, out=decay)  # e^-|x|, kept for the gradient
        log_term = np.log1p(decay, out=buffers[4])
        above += log_term
        below += log_term
        return above, below

    def slope(
        self,
        start: int,
        stop: int,
        *,
        negative: Any,
        positive: Any,
        out: FloatArray,
        buffers: FloatArray,
    ) -> None:
        # a sigmoid(x) - b sigmoid(-x), where sigmoid(|x|) = 1 / (1 + e^-|x|) and
        # sigmoid(-|x|) = e^-|x| sigmoid(|x|); each picked exactly by a 0/1 factor.
        x = self.values[start:stop]
        decay = buffers[3]
        large = np.add(decay, 1, out=buffers[0])
        np.reciprocal(large, out=large)
        small = np.multiply(decay, large, out=buffers[1])
        nonnegative = np.greater_equal(x, 0, out=buffers[3])
        negative_x = np.subtract(1, nonnegative, out=buffers[4])
        # out = a * sigmoid(x)
        np.multiply(nonnegative, large, out=out)
        out += np.multiply(negative_x, small, out=buffers[2])
        out *= negative
        # minus b * sigmoid(-x)
        np.multiply(nonnegative, small, out=small)
        np.multiply(negative_x, large, out=large)
        large += small
        large *= positive
        out -= large

    def curvature(
        self,
        start: int,
        stop: int,
        *,
        negative: Any,
        positive: Any,
        out: FloatArray,
        buffers: FloatArray,
    ) -> None:
        # (a + b) sigmoid(x) sigmoid(-x) = (a + b) e^-|x| / (1 + e^-|x|)^2.
        decay = buffers[3]
        np.add(decay, 1, out=out)
        np.multiply(out, out, out=out)
        np.divide(decay, out, out=out)
        out *= np.add(negative, positive, out=buffers[2])


class _BinaryProbabilities(_Binary):
    """``f = -log(1 - q)``, ``g = -log(q)`` with ``q = clip(p, eps, 1 - eps)``.

    The terms come back as ``log1p(-q)`` and ``log(q)``, negated once per element in
    the loss.
    """

    negated_terms = True

    def terms(self, start: int, stop: int, buffers: FloatArray) -> tuple[FloatArray, FloatArray]:
        clipped = np.clip(self.values[start:stop], *self.clip, out=buffers[3])
        of_negative = np.negative(clipped, out=buffers[0])
        np.log1p(of_negative, out=of_negative)
        return of_negative, np.log(clipped, out=buffers[1])

    def slope(
        self,
        start: int,
        stop: int,
        *,
        negative: Any,
        positive: Any,
        out: FloatArray,
        buffers: FloatArray,
    ) -> None:
        # d/dp of the clipped expression: a / (1 - q) - b / q inside [eps, 1 - eps], else 0.
        p = self.values[start:stop]
        clipped = buffers[3]
        np.subtract(1, clipped, out=out)
        np.divide(negative, out, out=out)
        out -= np.divide(positive, clipped, out=buffers[0])
        if not np.isfinite(out.sum()):
            # A probability of 0 or 1 (eps=0) under a term of weight 0 (or a NaN left out).
            np.subtract(1, clipped, out=out)
            out[...] = _weighted_quotient(negative, out)
            out -= _weighted_quotient(positive, clipped)
        low, high = self.clip
        if p.min() < low or p.max() > high:
            out[(p < low) | (p > high)] = 0


class _PlainBlock(Protocol):
    """A block of a plain binary call (see :func:`_plain_binary`).

    It takes the block's values and targets, its rows of work, its losses (None: they
    are summed), its gradient (None: not asked for) and the gradient's factor ``s``;
    it returns the float64 sum of the losses (0 where they are kept), or raises
    :class:`Unfit`.
    """

    def __call__(
        self,
        values: FloatArray,
        target: Any,
        buffers: FloatArray,
        /,
        *,
        losses: Any,
        grad: Any,
        scale: Any,
    ) -> float: ...


def _plain_binary(
    block_of: _PlainBlock,
    values: FloatArray,
    target: Any,
    reduction: Reduction,
    grad: FloatArray | None,
) -> Any:
    """Run the lane of plain binary calls: `block_of` over blocks of the flat `values`.

    A plain binary call (see :func:`crossentropy._prepare.plain_call`): flat float32 or
    float64 values, a flat target (bools, integers or floats), no weights, masks or
    smoothing, the default ``eps``. Returns the losses for ``"none"``, else their
    float64 sum; None where a block raised :class:`Unfit` (the general path then takes
    the call). Blocks are fixed by the size, and so is every result, whatever the
    thread count.
    """
    dtype = values.dtype
    size = values.size
    block = _PLAIN_BLOCK_BYTES // dtype.itemsize
    losses, scale = lane_outputs((size,), reduction, dtype)

    def compute(start: int, stop: int) -> float:
        buffers = scratch("binary", (_PLAIN_ROWS, min(block, size)), dtype)
        return block_of(
            values[start:stop],
            target[start:stop],
            buffers[:, : stop - start],
            losses=None if losses is None else losses[start:stop],
            grad=None if grad is None else grad[start:stop],
            scale=scale,
        )

    return run_lane_blocks(compute, size, block, 1, losses)


def _read_targets(target: Any, out: FloatArray) -> None:
    """Write `target` into `out`; raise :class:`Unfit` for values outside ``[0, 1]``.

    Integers must be 0 or 1 (booleans are); floats may lie anywhere in ``[0, 1]``.
    """
    kind = target.dtype.kind
    if kind == "f":
        if not inside_unit_interval(target, None):
            raise Unfit
    elif kind != "b" and not labels_in_range(target, 2):  # booleans are 0 or 1
        raise Unfit
    np.copyto(out, target, casting="unsafe")


def plain_binary_cross_entropy_with_logits(
    logits: FloatArray, target: Any, reduction: Reduction, grad: FloatArray | None
) -> Any:
    r"""Return the cross-entropy of a plain binary call of logits, or None.

    The lane of plain calls (see :func:`_plain_binary`), with the formulas of the
    general path (:class:`_BinaryLogits`), bit for bit, in fewer passes: each element's
    loss is

    .. math::

        \ell = (1 - t) \operatorname{softplus}(x) + t \operatorname{softplus}(-x),
        \qquad \operatorname{softplus}(x) = \max(x, 0) + \operatorname{log1p}(e^{-|x|}),

    and where `grad` is given, ``s ((1 - t) \operatorname{sigmoid}(x) - t
    \operatorname{sigmoid}(-x))``, each sigmoid ``1 / (1 + e^{-|x|})`` or ``e^{-|x|}
    / (1 + e^{-|x|})`` by the sign of ``x``: the larger of ``[x >= 0] / (1 +
    e^{-|x|})`` and ``e^{-|x|} / (1 + e^{-|x|})`` (one pass for the general path's
    three, the same value). A block whose losses are not all finite (infinite or NaN
    logits, whose terms of weight 0 the general path leaves out), or a target out of
    range, hands the call to the general path.
    """
    return _plain_binary(_plain_logits_block, logits, target, reduction, grad)


def _plain_logits_block(
    x: FloatArray, labels: Any, buffers: FloatArray, *, losses: Any, grad: Any, scale: Any
) -> float:
    """Compute one block of :func:`plain_binary_cross_entropy_with_logits` (see _PlainBlock)."""
    target, decay, spare, above, below = buffers
    _read_targets(labels, target)
    np.absolute(x, out=decay)
    np.negative(decay, out=decay)
    np.exp(decay, out=decay)  # e^-|x|
    log_term = np.log1p(decay, out=spare)
    np.maximum(x, 0, out=above)
    above += log_term  # softplus(x)
    np.negative(x, out=below)
    np.maximum(below, 0, out=below)
    below += log_term  # softplus(-x)
    with np.errstate(invalid="ignore"):  # inf * 0: the block is handed on below
        below *= target
        # 1 - t, in the gradient's place where it is asked for (target is kept for it).
        other = np.subtract(1, target, out=target if grad is None else grad)
        terms = np.multiply(other, above, out=above)
        terms += below
    summed = float(np.add.reduce(terms, dtype=np.float64))
    if not math.isfinite(summed):
        raise Unfit
    if losses is not None:
        losses[...] = terms
        summed = 0.0
    if grad is not None:
        large = np.add(decay, 1, out=spare)
        np.reciprocal(large, out=large)  # 1 / (1 + e^-|x|)
        small = np.multiply(decay, large, out=decay)  # e^-|x| / (1 + e^-|x|)
        positive = np.greater_equal(x, 0, out=below)
        rising = np.multiply(positive, large, out=above)
        np.maximum(rising, small, out=rising)  # sigmoid(x)
        np.subtract(1, positive, out=positive)
        falling = np.multiply(positive, large, out=large)
        np.maximum(falling, small, out=falling)  # sigmoid(-x)
        falling *= target
        np.multiply(other, rising, out=grad)
        grad -= falling
        grad *= scale
    return summed


def plain_binary_cross_entropy(
    probs: FloatArray, target: Any, reduction: Reduction, grad: FloatArray | None
) -> Any:
    r"""Return the cross-entropy of a plain binary call of probabilities, or None.

    The lane of plain calls (see :func:`_plain_binary`), for the calls that score
    predictions. Per element, with :math:`q = \operatorname{clip}(p, \epsilon, 1 -
    \epsilon)` and the default ``eps``,

    .. math::

        \ell = -\bigl(t \log q + (1 - t) \operatorname{log1p}(-q)\bigr),

    the formula of the general path, bit for bit (a target of 0 or 1 picks one term
    exactly), and where `grad` is given, ``s ((1 - t) / (1 - q) - t / q)`` (0 where
    ``p`` is clipped), with ``s = 1/N`` for the mean. Blocks check what the general
    path checks: an integer target other than 0 or 1, a float target or a probability
    outside ``[0, 1]`` or NaN hands the call to the general path, which raises. ``q``
    is ``p`` itself in blocks that need no clipping.
    """
    return _plain_binary(_plain_probabilities_block, probs, target, reduction, grad)


def _plain_probabilities_block(
    p: FloatArray, labels: Any, buffers: FloatArray, *, losses: Any, grad: Any, scale: Any
) -> float:
    """Compute one block of :func:`plain_binary_cross_entropy` (see _PlainBlock)."""
    low = p.dtype.type(np.finfo(p.dtype).eps)
    high = 1 - low
    lowest, highest = p.min(), p.max()
    if not (lowest >= 0 and highest <= 1):  # NaN fails both
        raise Unfit
    target = buffers[1]
    _read_targets(labels, target)
    clipped = not (low <= lowest and highest <= high)
    q = np.clip(p, low, high, out=buffers[0]) if clipped else p
    positive = np.log(q, out=buffers[2])
    negative = np.negative(q, out=buffers[3])
    np.log1p(negative, out=negative)
    positive *= target
    if grad is not None:
        np.divide(target, q, out=grad)  # t / q
    other = np.subtract(1, target, out=target)  # 1 - t
    negative *= other
    positive += negative  # t log q + (1 - t) log1p(-q)
    summed = 0.0
    if losses is None:
        summed = -float(np.add.reduce(positive, dtype=np.float64))
    else:
        np.negative(positive, out=losses)
    if grad is not None:
        complement = np.subtract(1, q, out=buffers[3])
        np.divide(other, complement, out=complement)  # (1 - t) / (1 - q)
        np.subtract(complement, grad, out=grad)
        grad *= scale
        if clipped:
            grad[(p < low) | (p > high)] = 0
    return summed


def _zero_where(values: FloatArray, mask: Any) -> None:
    """Set `values` to 0 where `mask` is True (a few elements at most, rarely any)."""
    if np.any(mask):
        values[mask] = 0


class _BinaryFocalLogits(_BinaryLogits):
    """``f = p^gamma softplus(x)``, ``g = (1 - p)^gamma softplus(-x)``, ``p = sigmoid(x)``.

    ``-log(1 - p) = softplus(x)`` and ``-log p = softplus(-x)`` come from the
    cross-entropy's terms, the powers from ``sigmoid(+-|x|)`` computed with the same
    ``e^-|x|``: a confident correct prediction keeps its relative accuracy, and
    ``x = +-inf`` gives exact terms (``0^gamma * 0 = 0``). With ``gamma = 0`` the
    cross-entropy's kernel runs unchanged.
    """

    n_buffers = 12

    def terms(self, start: int, stop: int, buffers: FloatArray) -> tuple[FloatArray, FloatArray]:
        above, below = super().terms(start, stop, buffers)  # rows 0, 1; e^-|x| in row 3
        if self.gamma == 0:
            return above, below
        x = self.values[start:stop]
        # Kept for slope(): softplus(x) in row 0, softplus(-x) in row 1, p^gamma in row 5,
        # (1-p)^gamma in row 6, p in row 7 and 1 - p in row 8.
        large = np.add(buffers[3], 1, out=buffers[5])
        np.reciprocal(large, out=large)  # sigmoid(|x|)
        small = np.multiply(buffers[3], large, out=buffers[6])  # sigmoid(-|x|)
        negative_x = np.less(x, 0)
        p, q = buffers[7], buffers[8]
        p[...] = large
        np.copyto(p, small, where=negative_x)
        q[...] = small
        np.copyto(q, large, where=negative_x)
        p_power = np.power(p, self.gamma, out=buffers[5])
        q_power = np.power(q, self.gamma, out=buffers[6])
        return (
            np.multiply(p_power, above, out=buffers[3]),
            np.multiply(q_power, below, out=buffers[4]),
        )

    def slope(
        self,
        start: int,
        stop: int,
        *,
        negative: Any,
        positive: Any,
        out: FloatArray,
        buffers: FloatArray,
    ) -> None:
        if self.gamma == 0:
            super().slope(
                start, stop, negative=negative, positive=positive, out=out, buffers=buffers
            )
            return
        # a p^gamma (p + gamma (1-p) softplus(x)) - b (1-p)^gamma ((1-p) + gamma p softplus(-x)):
        # d/dx p = p (1-p), d/dx softplus(x) = p, d/dx softplus(-x) = -(1-p).
        x = self.values[start:stop]
        gamma = self.gamma
        above, below, p_power, q_power, p, q = (buffers[k] for k in (0, 1, 5, 6, 7, 8))
        of_negative = np.multiply(q, above, out=buffers[2])
        of_positive = np.multiply(p, below, out=buffers[3])
        if not (np.isfinite(of_negative.sum()) and np.isfinite(of_positive.sum())):
            # 0 * inf at x = +inf (for f) and x = -inf (for g): the limits are 0.
            _zero_where(of_negative, x == np.inf)
            _zero_where(of_positive, x == -np.inf)
        of_negative *= gamma
        of_negative += p
        of_negative *= p_power
        np.multiply(negative, of_negative, out=out)
        of_positive *= gamma
        of_positive += q
        of_positive *= q_power
        of_positive *= positive
        out -= of_positive

    def curvature(
        self,
        start: int,
        stop: int,
        *,
        negative: Any,
        positive: Any,
        out: FloatArray,
        buffers: FloatArray,
    ) -> None:
        if self.gamma == 0:
            super().curvature(
                start, stop, negative=negative, positive=positive, out=out, buffers=buffers
            )
            return
        # d2/dx2 of p^gamma softplus(x) is p^gamma (1-p) (gamma softplus(x) (gamma (1-p) - p)
        # + (2 gamma + 1) p), and of (1-p)^gamma softplus(-x) the same with p and 1 - p,
        # x and -x exchanged: no negative power of p or 1 - p, finite for every gamma.
        # Rows 2 to 4 are free (the terms in rows 3 and 4 are summed); slope() reads the rest.
        x = self.values[start:stop]
        gamma = self.gamma
        above, below, p_power, q_power, p, q = (buffers[k] for k in (0, 1, 5, 6, 7, 8))
        bracket, other = buffers[2], buffers[3]
        for weight, power, softplus, near, far, first in (
            (negative, p_power, above, p, q, True),
            (positive, q_power, below, q, p, False),
        ):
            # power far (gamma softplus (gamma far - near) + (2 gamma + 1) near)
            np.multiply(far, gamma, out=bracket)
            bracket -= near
            bracket *= softplus
            bracket *= gamma
            bracket += np.multiply(near, 2 * gamma + 1, out=other)
            bracket *= far
            bracket *= power
            if first:
                np.multiply(weight, bracket, out=out)
            else:
                out += np.multiply(weight, bracket, out=bracket)
        if not np.isfinite(out.sum()):
            # x = +-inf: softplus is inf where the other factor is 0; the limits are 0.
            _zero_where(out, np.isinf(x))


class _BinaryFocalProbabilities(_BinaryProbabilities):
    """``f = -q^gamma log(1 - q)``, ``g = -(1 - q)^gamma log q``, ``q = clip(p, eps, 1 - eps)``.

    Negated like the cross-entropy's terms; with ``gamma = 0`` its kernel runs unchanged.
    """

    n_buffers = 12

    def terms(self, start: int, stop: int, buffers: FloatArray) -> tuple[FloatArray, FloatArray]:
        of_negative, of_positive = super().terms(start, stop, buffers)  # q in row 3
        if self.gamma == 0:
            return of_negative, of_positive
        clipped = buffers[3]
        # Kept for slope(): q^gamma in row 5, 1 - q in row 6, (1-q)^gamma in row 7.
        of_negative *= np.power(clipped, self.gamma, out=buffers[5])
        complement = np.subtract(1, clipped, out=buffers[6])
        of_positive *= np.power(complement, self.gamma, out=buffers[7])
        return of_negative, of_positive

    def slope(
        self,
        start: int,
        stop: int,
        *,
        negative: Any,
        positive: Any,
        out: FloatArray,
        buffers: FloatArray,
    ) -> None:
        if self.gamma == 0:
            super().slope(
                start, stop, negative=negative, positive=positive, out=out, buffers=buffers
            )
            return
        # d/dq of -q^g log(1-q) is q^g / (1-q) - g q^(g-1) log(1-q), and of
        # -(1-q)^g log q is g (1-q)^(g-1) log q - (1-q)^g / q: 0^(g-1) log 1 is 0 (eps=0).
        gamma = self.gamma
        clipped, p_power, complement, q_power = (buffers[k] for k in (3, 5, 6, 7))
        low, high = self.clip
        rising = np.divide(p_power, complement, out=buffers[0])
        product = np.power(clipped, gamma - 1, out=buffers[1])
        product *= np.log1p(np.negative(clipped, out=buffers[2]), out=buffers[2])
        if low == 0:
            _zero_where(product, clipped == 0)
        product *= gamma
        rising -= product
        falling = np.divide(q_power, clipped, out=buffers[4])  # minus d/dq of g
        product = np.power(complement, gamma - 1, out=buffers[1])
        product *= np.log(clipped, out=buffers[2])
        if low == 0:
            _zero_where(product, complement == 0)
        product *= gamma
        falling -= product
        np.multiply(negative, rising, out=out)
        out -= np.multiply(positive, falling, out=buffers[1])
        if not np.isfinite(out.sum()):
            # A probability of 0 or 1 (eps=0) under a term of weight 0.
            out[...] = weighted_product(negative, rising)
            out -= weighted_product(positive, falling)
        p = self.values[start:stop]
        if p.min() < low or p.max() > high:
            out[(p < low) | (p > high)] = 0


@overload
def binary_cross_entropy_with_logits(
    logits: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    return_grad: Literal[False] = ...,
    return_hess: Literal[False] = ...,
    **options: Unpack[BinaryOptions],
) -> LossValue: ...


@overload
def binary_cross_entropy_with_logits(
    logits: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    return_grad: Literal[True],
    return_hess: Literal[False] = ...,
    out: FloatArray | None = ...,
    **options: Unpack[BinaryOptions],
) -> tuple[LossValue, FloatArray]: ...


@overload
def binary_cross_entropy_with_logits(
    logits: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    return_grad: bool = ...,
    return_hess: Literal[True],
    out: FloatArray | None = ...,
    **options: Unpack[BinaryOptions],
) -> tuple[LossValue, FloatArray, FloatArray]: ...


@overload
def binary_cross_entropy_with_logits(
    logits: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    return_grad: bool = ...,
    return_hess: bool = ...,
    out: FloatArray | None = ...,
    **options: Unpack[BinaryOptions],
) -> LossResult: ...


def binary_cross_entropy_with_logits(
    logits: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    reduction: Reduction = "mean",
    pos_weight: npt.ArrayLike | Literal["balanced"] | None = None,
    sample_weight: npt.ArrayLike | None = None,
    where: npt.ArrayLike | None = None,
    label_smoothing: float = 0.0,
    return_grad: bool = False,
    return_hess: bool = False,
    out: FloatArray | None = None,
) -> LossResult:
    r"""Binary cross-entropy between `target` and the sigmoid of `logits`, elementwise.

    Parameters
    ----------
    logits : array_like
        Logits of any shape (2-D for multi-label problems); any float, +-inf
        included. float16 is computed in float32, integers and bools in float64. The
        masked elements of a NumPy masked array are left out.
    target : array_like of the shape of `logits`
        bool, integer 0/1, or floats in [0, 1].
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        ``'none'`` returns the per-element losses (0 where left out); ``'sum'`` their
        sum; ``'mean'`` their sum divided by the sum of the sample weights of the
        elements not left out (their number, without sample weights).
    pos_weight : array_like or 'balanced', optional
        Finite, non-negative weight of the positive term; broadcasts to the shape of
        `logits` (a vector weighs each label of the last axis, as in PyTorch). It does
        not enter the denominator of the mean.
        ``'balanced'`` computes, for each label of the last axis (a 0-d or 1-d input
        is one label), the total of ``1 - t`` over the total of ``t``, the target
        unsmoothed, over the elements counted, each weighed by its `sample_weight`:
        negatives over positives for 0/1 targets; 1 for a label without positives or
        without negatives.
    sample_weight : array_like, optional
        Finite, non-negative weight of each element; broadcasts to the shape of `logits`.
    where : array_like of bool, optional
        Broadcasts to the shape of `logits`; elements where it is False are left out.
    label_smoothing : float, default 0.0
        :math:`\epsilon` in :math:`t \leftarrow (1-\epsilon) t + \epsilon / 2`.
    return_grad : bool, default False
        Also return the gradient of the returned loss (of its sum for ``'none'``) with
        respect to `logits`, from the same pass.
    return_hess : bool, default False
        Return ``(loss, grad, hess)``, whatever `return_grad`: `hess` is the diagonal
        of the Hessian of the returned loss (of its sum for ``'none'``) with respect to
        `logits`, from the same pass. Elementwise, the Hessian is diagonal.
    out : ndarray, optional
        With `return_grad`: an array of the shape of `logits` and the computation
        dtype that receives the gradient and is returned. It must not share memory
        with any input.

    Returns
    -------
    loss : floating scalar or ndarray of the shape of `logits`
        float32 for float16 and float32 `logits`, float64 otherwise.
    grad : ndarray of the shape of `logits`
        Only with ``return_grad=True`` or ``return_hess=True``.
    hess : ndarray of the shape of `logits`
        Only with ``return_hess=True``.

    Raises
    ------
    ValueError
        For a target of another shape, outside [0, 1] (integers other than 0 and 1),
        NaN, weights that are negative, non-finite, masked or do not broadcast, or
        options out of range.
    TypeError
        For complex, object or string arrays, or a non-bool `where`, `return_grad` or
        `return_hess`.

    See Also
    --------
    binary_cross_entropy : the same loss from probabilities.

    Notes
    -----
    With sample weight :math:`s`, positive weight :math:`p_w` and the (smoothed)
    target :math:`t`, the loss of one element is

    .. math::

        \ell = s \bigl((1 - t) \operatorname{softplus}(x)
                     + p_w\, t \operatorname{softplus}(-x)\bigr), \qquad
        \operatorname{softplus}(x) = \max(x, 0) + \log\bigl(1 + e^{-|x|}\bigr),

    which equals :math:`s((1-t)x + (1 + (p_w - 1)t)\operatorname{softplus}(-x))`, is a
    sum of non-negative terms (tiny losses keep their relative accuracy) and is exact
    for :math:`x = \pm\infty`: a term whose weight is 0 contributes exactly 0. The
    gradient is :math:`s((1-t)\sigma(x) - p_w t\, \sigma(-x))` and the second
    derivative :math:`s(1 - t + p_w t)\,\sigma(x)\sigma(-x)`, both divided by ``D``
    for the mean.

    Examples
    --------
    >>> import numpy as np
    >>> import crossentropy as ce
    >>> logits = np.array([[1.5, -0.3], [-2.0, 4.0]])
    >>> target = np.array([[1, 0], [0, 1]])
    >>> float(ce.binary_cross_entropy_with_logits(logits, target))
    0.2252...

    Infinite logits give exact losses where ``t * log(sigmoid(x))`` gives NaN:

    >>> ce.binary_cross_entropy_with_logits([np.inf, -np.inf, np.inf], [1, 0, 0], reduction="none")
    array([ 0.,  0., inf])

    Weighting the positive term of rare labels:

    >>> loss, grad = ce.binary_cross_entropy_with_logits(
    ...     logits, target, pos_weight=[3.0, 1.0], reduction="sum", return_grad=True
    ... )
    >>> float(loss), grad.round(4)
    (1.3036..., array([[-0.5473,  0.4256],
           [ 0.1192, -0.018 ]]))
    """
    options = {
        "reduction": reduction,
        "pos_weight": pos_weight,
        "sample_weight": sample_weight,
        "where": where,
        "label_smoothing": label_smoothing,
    }
    return evaluate(
        _LOGITS,
        logits,
        target,
        return_grad=return_grad,
        return_hess=return_hess,
        out=out,
        options=options,
    )


@overload
def binary_cross_entropy(
    probs: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    return_grad: Literal[False] = ...,
    **options: Unpack[BinaryProbabilityOptions],
) -> LossValue: ...


@overload
def binary_cross_entropy(
    probs: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    return_grad: Literal[True],
    out: FloatArray | None = ...,
    **options: Unpack[BinaryProbabilityOptions],
) -> tuple[LossValue, FloatArray]: ...


@overload
def binary_cross_entropy(
    probs: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    return_grad: bool = ...,
    out: FloatArray | None = ...,
    **options: Unpack[BinaryProbabilityOptions],
) -> LossValue | tuple[LossValue, FloatArray]: ...


def binary_cross_entropy(
    probs: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    reduction: Reduction = "mean",
    pos_weight: npt.ArrayLike | Literal["balanced"] | None = None,
    sample_weight: npt.ArrayLike | None = None,
    where: npt.ArrayLike | None = None,
    label_smoothing: float = 0.0,
    eps: float | None = None,
    return_grad: bool = False,
    out: FloatArray | None = None,
) -> LossValue | tuple[LossValue, FloatArray]:
    r"""Binary cross-entropy between `target` and predicted probabilities `probs`.

    Parameters
    ----------
    probs : array_like
        Predicted probabilities of the positive class, in [0, 1], of any shape.
        float16 is computed in float32, integers and bools in float64. The masked
        elements of a NumPy masked array are left out.
    target : array_like of the shape of `probs`
        bool, integer 0/1, or floats in [0, 1].
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        ``'none'`` returns the per-element losses (0 where left out); ``'sum'`` their
        sum; ``'mean'`` their sum divided by the sum of the sample weights of the
        elements not left out (their number, without sample weights).
    pos_weight : array_like or 'balanced', optional
        Finite, non-negative weight of the positive term; broadcasts to the shape of
        `probs`. It does not enter the denominator of the mean.
        ``'balanced'`` computes, for each label of the last axis (a 0-d or 1-d input
        is one label), the total of ``1 - t`` over the total of ``t``, the target
        unsmoothed, over the elements counted, each weighed by its `sample_weight`:
        negatives over positives for 0/1 targets; 1 for a label without positives or
        without negatives.
    sample_weight : array_like, optional
        Finite, non-negative weight of each element; broadcasts to the shape of `probs`.
    where : array_like of bool, optional
        Broadcasts to the shape of `probs`; elements where it is False are left out.
    label_smoothing : float, default 0.0
        :math:`\epsilon` in :math:`t \leftarrow (1-\epsilon) t + \epsilon / 2`.
    eps : float, optional
        Probabilities are clipped to ``[eps, 1 - eps]`` before the logarithms. None
        (the default) means ``np.finfo(dtype).eps`` of the computation dtype, as in
        scikit-learn's ``log_loss``; 0 means no clipping.
    return_grad : bool, default False
        Also return the gradient of the returned loss (of its sum for ``'none'``) with
        respect to `probs`: the derivative of the clipped expression, 0 where a
        probability lies outside ``[eps, 1 - eps]``.
    out : ndarray, optional
        With `return_grad`: an array of the shape of `probs` and the computation
        dtype that receives the gradient and is returned. It must not share memory
        with any input.

    Returns
    -------
    loss : floating scalar or ndarray of the shape of `probs`
        float32 for float16 and float32 `probs`, float64 otherwise.
    grad : ndarray of the shape of `probs`
        Only with ``return_grad=True``.

    Raises
    ------
    ValueError
        For probabilities or targets outside [0, 1] or NaN, a target of another shape,
        weights that are negative, non-finite, masked or do not broadcast, or options
        out of range.
    TypeError
        For complex, object or string arrays, or a non-bool `where` or `return_grad`.

    Warns
    -----
    UserWarning
        When `probs` has an integer or bool dtype: most often labels passed first, in
        the order of scikit-learn's ``log_loss(y_true, y_proba)``.

    See Also
    --------
    binary_cross_entropy_with_logits : the same loss from logits, exact for any logit.

    Notes
    -----
    With sample weight :math:`s`, positive weight :math:`p_w`, the (smoothed) target
    :math:`t` and :math:`q = \operatorname{clip}(p, \epsilon, 1 - \epsilon)`,

    .. math::

        \ell = -s \bigl(p_w\, t \log q + (1 - t) \log(1 - q)\bigr),

    where a term whose weight is 0 contributes exactly 0 (also at :math:`q = 0` or 1
    with ``eps=0``). Unweighted, the mean equals scikit-learn's ``log_loss`` of the
    positive-class probabilities; with ``sample_weight``, its weighted average.

    Examples
    --------
    >>> import numpy as np
    >>> import crossentropy as ce
    >>> probs = np.array([0.9, 0.2, 0.6])
    >>> float(ce.binary_cross_entropy(probs, [1, 0, 1]))
    0.2797...
    >>> ce.binary_cross_entropy(probs, [1, 0, 1], reduction="none")
    array([0.1053..., 0.2231..., 0.5108...])
    """
    options = {
        "reduction": reduction,
        "pos_weight": pos_weight,
        "sample_weight": sample_weight,
        "where": where,
        "label_smoothing": label_smoothing,
        "eps": eps,
    }
    return evaluate(
        _PROBABILITIES, probs, target, return_grad=return_grad, out=out, options=options
    )


_LOGITS = Loss(
    function="binary_cross_entropy_with_logits",
    name="logits",
    categorical=False,
    kernel=_BinaryLogits.kernel,
    plain=plain_binary_cross_entropy_with_logits,
)
_PROBABILITIES = Loss(
    function="binary_cross_entropy",
    name="probs",
    categorical=False,
    kernel=_BinaryProbabilities.kernel,
    plain=plain_binary_cross_entropy,
)


@overload
def binary_focal_loss_with_logits(
    logits: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    return_grad: Literal[False] = ...,
    return_hess: Literal[False] = ...,
    **options: Unpack[BinaryFocalOptions],
) -> LossValue: ...


@overload
def binary_focal_loss_with_logits(
    logits: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    return_grad: Literal[True],
    return_hess: Literal[False] = ...,
    out: FloatArray | None = ...,
    **options: Unpack[BinaryFocalOptions],
) -> tuple[LossValue, FloatArray]: ...


@overload
def binary_focal_loss_with_logits(
    logits: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    return_grad: bool = ...,
    return_hess: Literal[True],
    out: FloatArray | None = ...,
    **options: Unpack[BinaryFocalOptions],
) -> tuple[LossValue, FloatArray, FloatArray]: ...


@overload
def binary_focal_loss_with_logits(
    logits: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    return_grad: bool = ...,
    return_hess: bool = ...,
    out: FloatArray | None = ...,
    **options: Unpack[BinaryFocalOptions],
) -> LossResult: ...


def binary_focal_loss_with_logits(
    logits: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    gamma: float = 2.0,
    alpha: float | None = None,
    reduction: Reduction = "mean",
    pos_weight: npt.ArrayLike | Literal["balanced"] | None = None,
    sample_weight: npt.ArrayLike | None = None,
    where: npt.ArrayLike | None = None,
    label_smoothing: float = 0.0,
    return_grad: bool = False,
    return_hess: bool = False,
    out: FloatArray | None = None,
) -> LossResult:
    r"""Binary focal loss between `target` and the sigmoid of `logits`, elementwise.

    The cross-entropy's terms weighed down where the prediction is already good:
    the positive term by :math:`(1 - p)^\gamma`, the negative one by :math:`p^\gamma`.

    Parameters
    ----------
    logits : array_like
        Logits of any shape (2-D for multi-label problems); any float, +-inf
        included. float16 is computed in float32, integers and bools in float64. The
        masked elements of a NumPy masked array are left out.
    target : array_like of the shape of `logits`
        bool, integer 0/1, or floats in [0, 1].
    gamma : float, default 2.0
        The focusing exponent, finite and >= 0; 0 gives the cross-entropy.
    alpha : float, optional
        Weight of the positive term, in [0, 1]; the negative term weighs
        ``1 - alpha``. None weighs both by 1.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        ``'none'`` returns the per-element losses (0 where left out); ``'sum'`` their
        sum; ``'mean'`` their sum divided by the sum of the sample weights of the
        elements not left out (their number, without sample weights).
    pos_weight : array_like or 'balanced', optional
        Finite, non-negative weight of the positive term; broadcasts to the shape of
        `logits`. It does not enter the denominator of the mean.
        ``'balanced'`` computes, for each label of the last axis (a 0-d or 1-d input
        is one label), the total of ``1 - t`` over the total of ``t``, the target
        unsmoothed, over the elements counted, each weighed by its `sample_weight`:
        negatives over positives for 0/1 targets; 1 for a label without positives or
        without negatives.
    sample_weight : array_like, optional
        Finite, non-negative weight of each element; broadcasts to the shape of `logits`.
    where : array_like of bool, optional
        Broadcasts to the shape of `logits`; elements where it is False are left out.
    label_smoothing : float, default 0.0
        :math:`\epsilon` in :math:`t \leftarrow (1-\epsilon) t + \epsilon / 2`.
    return_grad : bool, default False
        Also return the gradient of the returned loss (of its sum for ``'none'``) with
        respect to `logits`, from the same pass.
    return_hess : bool, default False
        Return ``(loss, grad, hess)``, whatever `return_grad`: `hess` is the diagonal
        of the Hessian of the returned loss (of its sum for ``'none'``) with respect to
        `logits`, from the same pass. Elementwise, the Hessian is diagonal.
    out : ndarray, optional
        With `return_grad`: an array of the shape of `logits` and the computation
        dtype that receives the gradient and is returned. It must not share memory
        with any input.

    Returns
    -------
    loss : floating scalar or ndarray of the shape of `logits`
        float32 for float16 and float32 `logits`, float64 otherwise.
    grad : ndarray of the shape of `logits`
        Only with ``return_grad=True`` or ``return_hess=True``.
    hess : ndarray of the shape of `logits`
        Only with ``return_hess=True``.

    Raises
    ------
    ValueError
        For a target of another shape, outside [0, 1] (integers other than 0 and 1),
        NaN, weights that are negative, non-finite, masked or do not broadcast, a
        negative or infinite `gamma`, an `alpha` outside [0, 1], or other options
        out of range.
    TypeError
        For complex, object or string arrays, a `gamma` or `alpha` that is not a real
        number, or a non-bool `where`, `return_grad` or `return_hess`.

    See Also
    --------
    binary_focal_loss : the same loss from probabilities.
    binary_cross_entropy_with_logits : the loss for ``gamma=0``.

    Notes
    -----
    With :math:`p = \sigma(x)`, sample weight :math:`s`, positive weight :math:`p_w`,
    the (smoothed) target :math:`t`, :math:`a_+ = \alpha` and :math:`a_- = 1 - \alpha`
    (both 1 when `alpha` is None), the loss of one element is

    .. math::

        \ell = -s \bigl(a_+ p_w\, t\, (1 - p)^\gamma \log p
                      + a_- (1 - t)\, p^\gamma \log(1 - p)\bigr),

    linear in :math:`t`, where a term whose weight is 0 contributes exactly 0. The
    mean divides by ``D``, the sum of the sample weights of the elements not left
    out, as for the cross-entropy: :math:`\alpha` and :math:`p_w` do not enter it.
    With :math:`\gamma = 0` and ``alpha=None`` the result is that of the
    cross-entropy, bit for bit. With 0/1 targets, no `pos_weight` and no smoothing,
    the per-element loss is the focal loss of Lin et al. (torchvision's
    ``sigmoid_focal_loss``).

    It is computed from :math:`-\log p = \operatorname{softplus}(-x)`,
    :math:`-\log(1 - p) = \operatorname{softplus}(x)` and
    :math:`\sigma(\pm|x|)` from the same :math:`e^{-|x|}`, so that extreme logits give
    no NaN and a confident correct prediction keeps its relative accuracy. The
    gradient of the element's loss is

    .. math::

        s \bigl(a_- (1-t)\, p^\gamma (p + \gamma (1-p) \operatorname{softplus}(x))
              - a_+ p_w\, t\, (1-p)^\gamma ((1-p) + \gamma p \operatorname{softplus}(-x))\bigr),

    divided by ``D`` for the mean. The second derivative of the negative term
    :math:`f = p^\gamma \operatorname{softplus}(x)` is

    .. math::

        f'' = p^\gamma (1-p) \bigl(\gamma \operatorname{softplus}(x) (\gamma (1-p) - p)
              + (2\gamma + 1) p\bigr),

    and that of the positive term the same with :math:`p` and :math:`1 - p`, :math:`x`
    and :math:`-x` exchanged. The second derivative with respect to :math:`p` is
    unbounded for :math:`0 < \gamma < 1` (like :math:`p^{\gamma - 1}` as :math:`p \to 0`
    for the negative term), but :math:`dp/dx = p (1 - p)` more than cancels it: the
    Hessian with respect to the logits has no negative power, is finite for every
    :math:`\gamma \ge 0` and every logit, and 0 at :math:`x = \pm\infty`.

    References
    ----------
    T.-Y. Lin, P. Goyal, R. Girshick, K. He and P. Dollar, "Focal Loss for Dense
    Object Detection", ICCV 2017.

    Examples
    --------
    >>> import numpy as np
    >>> import crossentropy as ce
    >>> logits = np.array([3.0, -1.0, 0.5])
    >>> target = np.array([1, 0, 0])
    >>> ce.binary_focal_loss_with_logits(logits, target, reduction="none")
    array([1.0928...e-04, 2.2658...e-02, 3.7741...e-01])

    Confident correct predictions hardly count; ``gamma=0`` is the cross-entropy:

    >>> float(ce.binary_focal_loss_with_logits([40.0], [1], reduction="sum"))
    7.6676...e-53
    >>> bool(
    ...     ce.binary_focal_loss_with_logits(logits, target, gamma=0)
    ...     == ce.binary_cross_entropy_with_logits(logits, target)
    ... )
    True

    The second derivatives come from the same pass, for Newton steps:

    >>> loss, grad, hess = ce.binary_focal_loss_with_logits(
    ...     logits, target, reduction="sum", return_hess=True
    ... )
    >>> hess.round(4)
    array([0.0009, 0.1106, 0.4931])
    """
    options = {
        "gamma": gamma,
        "alpha": alpha,
        "reduction": reduction,
        "pos_weight": pos_weight,
        "sample_weight": sample_weight,
        "where": where,
        "label_smoothing": label_smoothing,
    }
    return evaluate(
        _FOCAL_LOGITS,
        logits,
        target,
        return_grad=return_grad,
        return_hess=return_hess,
        out=out,
        options=options,
    )


@overload
def binary_focal_loss(
    probs: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    return_grad: Literal[False] = ...,
    **options: Unpack[BinaryProbabilityFocalOptions],
) -> LossValue: ...


@overload
def binary_focal_loss(
    probs: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    return_grad: Literal[True],
    out: FloatArray | None = ...,
    **options: Unpack[BinaryProbabilityFocalOptions],
) -> tuple[LossValue, FloatArray]: ...


@overload
def binary_focal_loss(
    probs: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    return_grad: bool = ...,
    out: FloatArray | None = ...,
    **options: Unpack[BinaryProbabilityFocalOptions],
) -> LossValue | tuple[LossValue, FloatArray]: ...


def binary_focal_loss(
    probs: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    gamma: float = 2.0,
    alpha: float | None = None,
    reduction: Reduction = "mean",
    pos_weight: npt.ArrayLike | Literal["balanced"] | None = None,
    sample_weight: npt.ArrayLike | None = None,
    where: npt.ArrayLike | None = None,
    label_smoothing: float = 0.0,
    eps: float | None = None,
    return_grad: bool = False,
    out: FloatArray | None = None,
) -> LossValue | tuple[LossValue, FloatArray]:
    r"""Binary focal loss between `target` and predicted probabilities `probs`.

    The cross-entropy's terms weighed down where the prediction is already good:
    the positive term by :math:`(1 - q)^\gamma`, the negative one by :math:`q^\gamma`.

    Parameters
    ----------
    probs : array_like
        Predicted probabilities of the positive class, in [0, 1], of any shape.
        float16 is computed in float32, integers and bools in float64. The masked
        elements of a NumPy masked array are left out.
    target : array_like of the shape of `probs`
        bool, integer 0/1, or floats in [0, 1].
    gamma : float, default 2.0
        The focusing exponent, finite and >= 0; 0 gives the cross-entropy.
    alpha : float, optional
        Weight of the positive term, in [0, 1]; the negative term weighs
        ``1 - alpha``. None weighs both by 1.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        ``'none'`` returns the per-element losses (0 where left out); ``'sum'`` their
        sum; ``'mean'`` their sum divided by the sum of the sample weights of the
        elements not left out (their number, without sample weights).
    pos_weight : array_like or 'balanced', optional
        Finite, non-negative weight of the positive term; broadcasts to the shape of
        `probs`. It does not enter the denominator of the mean.
        ``'balanced'`` computes, for each label of the last axis (a 0-d or 1-d input
        is one label), the total of ``1 - t`` over the total of ``t``, the target
        unsmoothed, over the elements counted, each weighed by its `sample_weight`:
        negatives over positives for 0/1 targets; 1 for a label without positives or
        without negatives.
    sample_weight : array_like, optional
        Finite, non-negative weight of each element; broadcasts to the shape of `probs`.
    where : array_like of bool, optional
        Broadcasts to the shape of `probs`; elements where it is False are left out.
    label_smoothing : float, default 0.0
        :math:`\epsilon` in :math:`t \leftarrow (1-\epsilon) t + \epsilon / 2`.
    eps : float, optional
        Probabilities are clipped to ``[eps, 1 - eps]``. None (the default) means
        ``np.finfo(dtype).eps`` of the computation dtype; 0 means no clipping.
    return_grad : bool, default False
        Also return the gradient of the returned loss (of its sum for ``'none'``) with
        respect to `probs`: the derivative of the clipped expression, 0 where a
        probability lies outside ``[eps, 1 - eps]``.
    out : ndarray, optional
        With `return_grad`: an array of the shape of `probs` and the computation
        dtype that receives the gradient and is returned. It must not share memory
        with any input.

    Returns
    -------
    loss : floating scalar or ndarray of the shape of `probs`
        float32 for float16 and float32 `probs`, float64 otherwise.
    grad : ndarray of the shape of `probs`
        Only with ``return_grad=True``.

    Raises
    ------
    ValueError
        For probabilities or targets outside [0, 1] or NaN, a target of another shape,
        weights that are negative, non-finite, masked or do not broadcast, a negative
        or infinite `gamma`, an `alpha` outside [0, 1], or other options out of range.
    TypeError
        For complex, object or string arrays, a `gamma` or `alpha` that is not a real
        number, or a non-bool `where` or `return_grad`.

    Warns
    -----
    UserWarning
        When `probs` has an integer or bool dtype: most often labels passed first.

    See Also
    --------
    binary_focal_loss_with_logits : the same loss from logits, exact for any logit.
    binary_cross_entropy : the loss for ``gamma=0``.

    Notes
    -----
    With the clipped :math:`q = \operatorname{clip}(p, \epsilon, 1 - \epsilon)` in
    place of :math:`p`, sample weight :math:`s`, positive weight :math:`p_w`, the
    (smoothed) target :math:`t`, :math:`a_+ = \alpha` and :math:`a_- = 1 - \alpha`
    (both 1 when `alpha` is None), the loss of one element is

    .. math::

        \ell = -s \bigl(a_+ p_w\, t\, (1 - p)^\gamma \log p
                      + a_- (1 - t)\, p^\gamma \log(1 - p)\bigr),

    linear in :math:`t`, where a term whose weight is 0 contributes exactly 0. The
    mean divides by ``D``, the sum of the sample weights of the elements not left
    out, as for the cross-entropy: :math:`\alpha` and :math:`p_w` do not enter it.
    With :math:`\gamma = 0` and ``alpha=None`` the result is that of the
    cross-entropy, bit for bit. With 0/1 targets, no `pos_weight` and no smoothing,
    the per-element loss is the focal loss of Lin et al. (torchvision's
    ``sigmoid_focal_loss``).

    The gradient of the element's loss with respect to `probs` is, inside
    ``[eps, 1 - eps]``,

    .. math::

        s \Bigl(a_- (1-t) \bigl(\tfrac{q^\gamma}{1-q} - \gamma q^{\gamma-1} \log(1-q)\bigr)
              - a_+ p_w\, t \bigl(\tfrac{(1-q)^\gamma}{q}
                                  - \gamma (1-q)^{\gamma-1} \log q\bigr)\Bigr),

    divided by ``D`` for the mean.

    References
    ----------
    T.-Y. Lin, P. Goyal, R. Girshick, K. He and P. Dollar, "Focal Loss for Dense
    Object Detection", ICCV 2017.

    Examples
    --------
    >>> import numpy as np
    >>> import crossentropy as ce
    >>> probs = np.array([0.9, 0.2, 0.6])
    >>> ce.binary_focal_loss(probs, [1, 0, 1], reduction="none")
    array([0.0010..., 0.0089..., 0.0817...])
    >>> float(ce.binary_focal_loss(probs, [1, 0, 1], gamma=0.0, alpha=0.25))
    0.1071...
    """
    options = {
        "gamma": gamma,
        "alpha": alpha,
        "reduction": reduction,
        "pos_weight": pos_weight,
        "sample_weight": sample_weight,
        "where": where,
        "label_smoothing": label_smoothing,
        "eps": eps,
    }
    return evaluate(
        _FOCAL_PROBABILITIES, probs, target, return_grad=return_grad, out=out, options=options
    )


_FOCAL_LOGITS = Loss(
    function="binary_focal_loss_with_logits",
    name="logits",
    categorical=False,
    kernel=_BinaryFocalLogits.kernel,
)
_FOCAL_PROBABILITIES = Loss(
    function="binary_focal_loss",
    name="probs",
    categorical=False,
    kernel=_BinaryFocalProbabilities.kernel,
)
