"""Binary (elementwise, multi-label) cross-entropy from logits and from probabilities."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._kernel import weighted_product
from ._reduction import gradient_scale, reduce, total_weight
from ._validation import (
    FloatArray,
    Reduction,
    as_computation_array,
    check_binary_target,
    check_eps,
    check_label_smoothing,
    check_out,
    check_reduction,
    check_unit_interval,
    check_weight,
    check_where,
)

__all__ = ["binary_cross_entropy", "binary_cross_entropy_with_logits"]


@dataclass
class _Binary:
    """A binary call, checked: the input, the target weights of both terms, the weights.

    ``negative = 1 - t`` and ``positive = pos_weight * t`` with the smoothed target
    ``t``; ``weight`` is the sample weight, 0 where an element is left out.
    """

    values: FloatArray
    negative: FloatArray
    positive: FloatArray
    counted: np.ndarray[Any, Any] | None
    weight: FloatArray
    reduction: Reduction
    total: float

    def losses(self, negative_term: FloatArray, positive_term: FloatArray) -> Any:
        """Combine ``(1-t) f + pw t g`` per element, weight it and reduce it."""
        per_element = weighted_product(self.negative, negative_term)
        per_element += weighted_product(self.positive, positive_term)
        with np.errstate(invalid="ignore"):
            per_element *= self.weight
        losses = np.where(self.weight != 0, per_element, 0).astype(self.values.dtype, copy=False)
        return reduce(losses, self.reduction, self.total)

    def grad(self, slope: FloatArray, out: object, *inputs: object) -> FloatArray:
        """Scale the derivative of the summed per-element loss to the reduction's."""
        dtype = self.values.dtype
        grad = (
            np.empty(self.values.shape, dtype=dtype)
            if out is None
            else check_out(out, self.values.shape, dtype, *inputs)
        )
        scale = self.weight * dtype.type(gradient_scale(self.reduction, self.total))
        np.multiply(slope, scale, out=grad)
        grad[scale == 0] = 0
        return grad


def _prepare(
    value: object,
    target: object,
    name: str,
    *,
    reduction: object,
    pos_weight: object,
    sample_weight: object,
    where: object,
    label_smoothing: object,
) -> _Binary:
    array = as_computation_array(value, name)
    dtype = array.dtype
    shape = array.shape
    checked_reduction = check_reduction(reduction)
    smoothing = check_label_smoothing(label_smoothing)
    counted = check_where(where, shape, "input shape")
    smoothed = check_binary_target(target, shape, dtype, counted)
    if smoothing:
        smoothed = smoothed * dtype.type(1 - smoothing) + dtype.type(smoothing / 2)
    negative = 1 - smoothed
    positive = smoothed
    if pos_weight is not None:
        positive = smoothed * check_weight(pos_weight, "pos_weight", shape, "input shape", dtype)
    weight = np.ones(shape, dtype=dtype)
    if sample_weight is not None:
        weight = np.array(check_weight(sample_weight, "sample_weight", shape, "input shape", dtype))
    if counted is not None:
        weight = np.where(counted, weight, 0).astype(dtype, copy=False)
    return _Binary(
        values=array,
        negative=negative,
        positive=positive,
        counted=counted,
        weight=weight,
        reduction=checked_reduction,
        total=total_weight(weight),
    )


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
        included. float16 is computed in float32, integers and bools in float64.
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
        NaN, weights that are negative, non-finite or do not broadcast, or options out
        of range.
    TypeError
        For complex, object or string arrays, or a non-bool `where`.

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
    call = _prepare(
        logits,
        target,
        "logits",
        reduction=reduction,
        pos_weight=pos_weight,
        sample_weight=sample_weight,
        where=where,
        label_smoothing=label_smoothing,
    )
    if out is not None and not return_grad:
        msg = "out receives the gradient and needs return_grad=True"
        raise ValueError(msg)
    x = call.values
    decay = np.exp(-np.abs(x))
    log_term = np.log1p(decay)
    loss = call.losses(np.maximum(x, 0) + log_term, np.maximum(-x, 0) + log_term)
    if not return_grad:
        return loss
    # sigmoid(|x|) = 1 / (1 + e^-|x|); sigmoid(-|x|) = e^-|x| / (1 + e^-|x|).
    large = 1 / (1 + decay)
    small = decay * large
    nonnegative = x >= 0
    sigmoid = np.where(nonnegative, large, small)
    sigmoid_of_negative = np.where(nonnegative, small, large)
    slope = call.negative * sigmoid - call.positive * sigmoid_of_negative
    return loss, call.grad(slope, out, logits, target, pos_weight, sample_weight, where)


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
        float16 is computed in float32, integers and bools in float64.
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
        weights that are negative, non-finite or do not broadcast, or options out of
        range.
    TypeError
        For complex, object or string arrays, or a non-bool `where`.

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
    call = _prepare(
        probs,
        target,
        "probs",
        reduction=reduction,
        pos_weight=pos_weight,
        sample_weight=sample_weight,
        where=where,
        label_smoothing=label_smoothing,
    )
    if out is not None and not return_grad:
        msg = "out receives the gradient and needs return_grad=True"
        raise ValueError(msg)
    p = call.values
    dtype = p.dtype
    check_unit_interval(p, "probs", call.counted)
    low = dtype.type(check_eps(eps, dtype))
    high = dtype.type(1) - low
    clipped = np.clip(p, low, high)
    with np.errstate(divide="ignore"):
        loss = call.losses(-np.log1p(-clipped), -np.log(clipped))
    if not return_grad:
        return loss
    with np.errstate(divide="ignore"):
        slope = weighted_product(call.negative, 1 / (1 - clipped))
        slope -= weighted_product(call.positive, 1 / clipped)
    slope = np.where((p >= low) & (p <= high), slope, 0).astype(dtype, copy=False)
    return loss, call.grad(slope, out, probs, target, pos_weight, sample_weight, where)
