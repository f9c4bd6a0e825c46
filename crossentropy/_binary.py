"""Binary (elementwise, multi-label) cross-entropy from logits and from probabilities."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._dispatch import evaluate
from ._prepare import Loss, Prepared, part, weighted_product
from ._threads import run_in_ranges, scratch
from ._types import FloatArray, Reduction

__all__ = ["binary_cross_entropy", "binary_cross_entropy_with_logits"]


# Bytes of one block of each work buffer: the handful of buffers stays in the L2 cache.
_BLOCK_BYTES = 1 << 19


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
    positive-class term ``g``; a term whose weight is 0 contributes exactly 0.
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
        buffers = scratch("binary", (8, min(block, max(stop - start, 1))), self.dtype)
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
        target = part(self.target, start, stop)
        hard, share = self.smoothing
        if share or target.dtype != self.dtype:
            # Also turns integer targets into floats once, not in every ufunc below.
            target = np.multiply(target, hard, out=buffers[1])
            if share:
                target += share
        negative = np.subtract(1, target, out=buffers[2])
        positive = target
        if self.pos_weight is not None:
            positive = np.multiply(target, part(self.pos_weight, start, stop), out=buffers[1])
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
        weight = part(self.weight, start, stop)
        if weight is not None:
            losses *= weight
            _zero_where_zero(losses, weight)
            summed = float(losses.sum(dtype=np.float64))
        if self.grad is not None:
            slope = self.grad[start:stop]
            self.slope(
                start, stop, negative=negative, positive=positive, out=slope, buffers=buffers[3:]
            )
            scale = self.call.grad_scale(start, stop)
            slope *= scale
            _zero_where_zero(slope, scale)
        return summed

    # Whether terms() returns -f and -g, the sum being negated once instead.
    negated_terms = False

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
            # A probability of 0 or 1 (eps=0) under a term of weight 0.
            out[...] = weighted_product(negative, 1 / (1 - clipped))
            out -= weighted_product(positive, 1 / clipped)
        low, high = self.clip
        if p.min() < low or p.max() > high:
            out[(p < low) | (p > high)] = 0


def binary_cross_entropy_with_logits(
    logits: object,
    target: object,
    *,
    reduction: Reduction = "mean",
    pos_weight: object = None,
    sample_weight: object = None,
    where: object = None,
    label_smoothing: float = 0.0,
    return_grad: bool = False,
    out: FloatArray | None = None,
) -> Any:
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
    pos_weight : array_like, optional
        Finite, non-negative weight of the positive term; broadcasts to the shape of
        `logits` (a vector weighs each label of the last axis, as in PyTorch). It does
        not enter the denominator of the mean.
    sample_weight : array_like, optional
        Finite, non-negative weight of each element; broadcasts to the shape of `logits`.
    where : array_like of bool, optional
        Broadcasts to the shape of `logits`; elements where it is False are left out.
    label_smoothing : float, default 0.0
        :math:`\epsilon` in :math:`t \leftarrow (1-\epsilon) t + \epsilon / 2`.
    return_grad : bool, default False
        Also return the gradient of the returned loss (of its sum for ``'none'``) with
        respect to `logits`, from the same pass.
    out : ndarray, optional
        With `return_grad`: an array of the shape of `logits` and the computation
        dtype that receives the gradient and is returned. It must not share memory
        with any input.

    Returns
    -------
    loss : floating scalar or ndarray of the shape of `logits`
        float32 for float16 and float32 `logits`, float64 otherwise.
    grad : ndarray of the shape of `logits`
        Only with ``return_grad=True``.

    Raises
    ------
    ValueError
        For a target of another shape, outside [0, 1] (integers other than 0 and 1),
        NaN, weights that are negative, non-finite, masked or do not broadcast, or
        options out of range.
    TypeError
        For complex, object or string arrays, or a non-bool `where` or `return_grad`.

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
    gradient is :math:`s((1-t)\sigma(x) - p_w t\, \sigma(-x))`, divided by ``D`` for
    the mean.

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
    return evaluate(_LOGITS, logits, target, return_grad=return_grad, out=out, options=options)


def binary_cross_entropy(
    probs: object,
    target: object,
    *,
    reduction: Reduction = "mean",
    pos_weight: object = None,
    sample_weight: object = None,
    where: object = None,
    label_smoothing: float = 0.0,
    eps: float | None = None,
    return_grad: bool = False,
    out: FloatArray | None = None,
) -> Any:
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
    pos_weight : array_like, optional
        Finite, non-negative weight of the positive term; broadcasts to the shape of
        `probs`. It does not enter the denominator of the mean.
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
)
_PROBABILITIES = Loss(
    function="binary_cross_entropy",
    name="probs",
    categorical=False,
    kernel=_BinaryProbabilities.kernel,
)
