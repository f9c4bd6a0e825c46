"""Multi-class cross-entropy from logits and from probabilities."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._dispatch import Outcome, evaluate
from ._kernel import softmax_cross_entropy, weighted_product
from ._reduction import gradient_scale, reduce, total_weight
from ._validation import (
    FloatArray,
    Reduction,
    as_computation_array,
    as_real_array,
    check_axis,
    check_class_weight,
    check_eps,
    check_ignore_index,
    check_label_smoothing,
    check_out,
    check_reduction,
    check_unit_interval,
    check_weight,
    check_where,
    value_bounds,
    warn_if_rows_do_not_sum_to_one,
)

__all__ = ["categorical_cross_entropy", "categorical_cross_entropy_with_logits"]


@dataclass
class _Categorical:
    """A categorical call, checked and laid out as rows of classes.

    ``rows`` is the input with the class axis moved last, as (N, C). Exactly one of
    ``labels`` (valid indices, 0 where left out) and ``soft_target`` is set.
    ``counted`` is False for the rows left out (None: none is), and ``row_weight`` is
    each row's sample weight, 0 where the row is left out (None: all 1).
    """

    shape: tuple[int, ...]
    batch_shape: tuple[int, ...]
    axis: int
    rows: FloatArray
    labels: np.ndarray[Any, Any] | None
    soft_target: FloatArray | None
    class_weight: FloatArray | None
    label_smoothing: float
    counted: np.ndarray[Any, Any] | None
    row_weight: FloatArray | None
    reduction: Reduction
    total: float

    def grad_scale(self) -> Any:
        """Return the factor of each row of the gradient of the reduced loss (or of all)."""
        factor = self.rows.dtype.type(gradient_scale(self.reduction, self.total))
        return factor if self.row_weight is None else self.row_weight * factor

    def grad_rows(self, out: object, *inputs: object) -> tuple[FloatArray, FloatArray]:
        """Return the gradient as the caller sees it and as (N, C) rows to fill.

        The two share memory unless `out` cannot be viewed as C-contiguous rows; then
        the rows are a new array that :meth:`finish_grad` copies into it.
        """
        dtype = self.rows.dtype
        if out is None:
            rows = np.empty(self.rows.shape, dtype=dtype)
            grad = np.moveaxis(rows.reshape((*self.batch_shape, self.rows.shape[1])), -1, self.axis)
            return grad, rows
        grad = check_out(out, self.shape, dtype, *inputs)
        moved = np.moveaxis(grad, self.axis, -1)
        rows = moved.reshape(self.rows.shape)
        if not (np.shares_memory(rows, grad) and rows.flags.c_contiguous):
            rows = np.empty(self.rows.shape, dtype=dtype)
        return grad, rows

    def finish_grad(self, grad: FloatArray, rows: FloatArray) -> FloatArray:
        """Copy `rows` into `grad` where they are not already its memory."""
        if not np.shares_memory(rows, grad):
            np.moveaxis(grad, self.axis, -1)[...] = rows.reshape(
                (*self.batch_shape, self.rows.shape[1])
            )
        return grad

    def result(self, row_losses: FloatArray) -> Any:
        """Weight the per-row losses, zero the rows left out, and reduce them."""
        losses = row_losses
        if self.row_weight is not None:
            losses = weighted_product(self.row_weight, row_losses)
        return reduce(losses.reshape(self.batch_shape), self.reduction, self.total)


def _prepare(
    value: object,
    target: object,
    name: str,
    *,
    reduction: object,
    class_weight: object,
    sample_weight: object,
    where: object,
    ignore_index: object,
    label_smoothing: object,
    axis: object,
) -> _Categorical:
    """Check the arguments of a categorical loss and lay them out as rows of classes."""
    array = as_computation_array(value, name)
    dtype = array.dtype
    if array.ndim == 0:
        msg = f"{name} must have at least one dimension, the class axis; got a 0-d array"
        raise ValueError(msg)
    class_axis = check_axis(axis, array.ndim)
    n_classes = array.shape[class_axis]
    if n_classes == 0:
        msg = (
            f"{name} must have at least one class along axis {class_axis}, got shape {array.shape}"
        )
        raise ValueError(msg)
    checked_reduction = check_reduction(reduction)
    smoothing = check_label_smoothing(label_smoothing)
    ignored = check_ignore_index(ignore_index)
    batch_shape = array.shape[:class_axis] + array.shape[class_axis + 1 :]
    counted = check_where(where, batch_shape, "batch shape")

    target_array = as_real_array(target, "target")
    is_labels = target_array.dtype.kind in "iu" or (
        target_array.dtype.kind == "f"
        and target_array.size == 0
        and target_array.shape == batch_shape
    )
    if target_array.dtype.kind == "b":
        msg = (
            "target must hold integer class indices or floating class probabilities, "
            f"got dtype bool of shape {target_array.shape}"
        )
        raise TypeError(msg)
    expected = batch_shape if is_labels else array.shape
    if target_array.shape != expected:
        if target_array.dtype.kind == "f" and target_array.shape == batch_shape:
            msg = (
                f"target of shape {target_array.shape} (the batch shape of {name} of shape "
                f"{array.shape}) is read as class indices, which need an integer dtype, got "
                f"dtype {target_array.dtype}; pass integer labels, or class probabilities of "
                f"shape {array.shape}"
            )
        else:
            kind = "class indices" if is_labels else "class probabilities"
            msg = (
                f"target holds {kind} and must have shape {expected} for {name} of shape "
                f"{array.shape} with the class axis {class_axis}, got shape {target_array.shape}"
            )
        raise ValueError(msg)

    flat_counted = None if counted is None else counted.reshape(-1)
    labels = None
    soft_target = None
    if is_labels:
        flat_labels = target_array.reshape(-1)
        if ignored is not None:
            kept = flat_labels != ignored
            flat_counted = kept if flat_counted is None else flat_counted & kept
        if flat_counted is None:
            # The common case, read once per block for both bounds.
            low, high = value_bounds(flat_labels)
            valid = flat_labels.size == 0 or (low >= 0 and high < n_classes)
        else:
            valid = bool(np.all((flat_labels >= 0) & (flat_labels < n_classes) | ~flat_counted))
        if not valid:
            outside = (flat_labels < 0) | (flat_labels >= n_classes)
            if flat_counted is not None:
                outside &= flat_counted
            bad = flat_labels[outside].flat[0]
            msg = (
                f"target holds class index {bad}, outside [0, {n_classes}) for {n_classes} "
                f"classes along axis {class_axis} of {name}"
            )
            if ignored is not None:
                msg += f" (ignore_index is {ignored})"
            raise ValueError(msg)
        safe = flat_labels if flat_counted is None else np.where(flat_counted, flat_labels, 0)
        labels = safe.astype(np.intp, copy=False)
    else:
        if ignored is not None:
            msg = (
                f"ignore_index={ignored} needs integer class indices as target, "
                "got class probabilities"
            )
            raise ValueError(msg)
        soft_target = np.moveaxis(target_array, class_axis, -1).reshape(-1, n_classes)
        soft_target = soft_target.astype(dtype, copy=False)
        row_mask = None if flat_counted is None else flat_counted[:, None]
        check_unit_interval(soft_target, "target", row_mask)
        warn_if_rows_do_not_sum_to_one(soft_target, "target", flat_counted)

    weight = check_class_weight(class_weight, n_classes, dtype)
    n_rows = int(np.prod(batch_shape))
    row_weight = None
    if sample_weight is not None:
        row_weight = check_weight(
            sample_weight, "sample_weight", batch_shape, "batch shape", dtype
        ).reshape(-1)
    if flat_counted is not None:
        kept = 1 if row_weight is None else row_weight
        row_weight = np.where(flat_counted, kept, 0).astype(dtype, copy=False)

    # D: each row weighs s * sum_c w_c t_c with the unsmoothed target.
    if weight is None:
        target_weight: Any = 1.0
    elif labels is not None:
        target_weight = weight[labels]
    else:
        assert soft_target is not None
        target_weight = soft_target @ weight
    if row_weight is None and weight is None:
        total = float(n_rows)
    else:
        total = total_weight((1 if row_weight is None else row_weight) * target_weight)

    rows = np.moveaxis(array, class_axis, -1).reshape(-1, n_classes)
    return _Categorical(
        shape=array.shape,
        batch_shape=batch_shape,
        axis=class_axis,
        rows=rows,
        labels=labels,
        soft_target=soft_target,
        class_weight=weight,
        label_smoothing=smoothing,
        counted=flat_counted,
        row_weight=row_weight,
        reduction=checked_reduction,
        total=total,
    )


def categorical_cross_entropy_with_logits(
    logits: object,
    target: object,
    *,
    reduction: Reduction = "mean",
    class_weight: object = None,
    sample_weight: object = None,
    where: object = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    axis: int = -1,
    return_grad: bool = False,
    out: FloatArray | None = None,
) -> Any:
    r"""Cross-entropy between targets and the softmax of `logits` along `axis`.

    Parameters
    ----------
    logits : array_like of shape (..., C, ...)
        Unnormalized log-probabilities, C classes along `axis`. Any float, -inf
        included. float16 is computed in float32, integers and bools in float64.
    target : array_like of int of the batch shape, or of float of the shape of `logits`
        Class indices in ``[0, C)`` (any integer dtype), or class probabilities.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        ``'none'`` returns the batch-shaped per-element losses (0 where left out);
        ``'sum'`` their sum; ``'mean'`` their sum divided by the total weight ``D``.
    class_weight : array_like of shape (C,), optional
        Finite, non-negative weight of each class.
    sample_weight : array_like, optional
        Finite, non-negative weight of each element; broadcasts to the batch shape.
    where : array_like of bool, optional
        Broadcasts to the batch shape; elements where it is False are left out.
    ignore_index : int, optional
        With integer targets: elements whose target equals it are left out.
    label_smoothing : float, default 0.0
        :math:`\epsilon` in :math:`t \leftarrow (1-\epsilon) t + \epsilon / C`; with
        integer targets no one-hot array is built.
    axis : int, default -1
        The class axis (PyTorch's layout is ``axis=1``).
    return_grad : bool, default False
        Also return the gradient of the returned loss (of its sum for ``'none'``) with
        respect to `logits`, computed in the same pass.
    out : ndarray, optional
        With `return_grad`: an array of the shape of `logits` and the computation
        dtype that receives the gradient and is returned. It must not share memory
        with any input.

    Returns
    -------
    loss : floating scalar or ndarray of the batch shape
        float32 for float16 and float32 `logits`, float64 otherwise.
    grad : ndarray of the shape of `logits`
        Only with ``return_grad=True``.

    Raises
    ------
    ValueError
        For a class index outside ``[0, C)`` (other than `ignore_index`), target or
        option shapes that do not fit, out-of-range options, probability targets
        outside [0, 1], or `ignore_index` with probability targets.
    TypeError
        For complex, object or string arrays, bool targets or a non-bool `where`.

    See Also
    --------
    categorical_cross_entropy : the same loss from probabilities.

    Notes
    -----
    With :math:`a_c = w_c t_c` (class weight times smoothed target) and sample weight
    :math:`s`, the loss of one element is

    .. math::

        \ell = s \sum_c a_c \bigl(\operatorname{lse}(x) - x_c\bigr), \qquad
        \operatorname{lse}(x) = m + \log \sum_c e^{x_c - m},\ m = \max_c x_c,

    evaluated as a sum of non-negative terms, so that tiny losses keep their relative
    accuracy, and never as ``log(softmax(x))``. A class whose target weight is 0
    contributes exactly 0, even with a logit of -inf. The mean divides by
    :math:`D = \sum s \sum_c w_c t_c` over the elements not left out, with the
    unsmoothed target: for integer targets PyTorch's weighted mean
    :math:`\sum s\, w_{y}`; without class weights, the number of elements (or the sum
    of the sample weights). :math:`D = 0` gives NaN and a zero gradient. Rows whose
    maximum is +inf, or that are all -inf, give NaN, as NaN logits do.

    The gradient is :math:`s (A \operatorname{softmax}(x) - a) / D` with
    :math:`A = \sum_c a_c` (without the :math:`1/D` for ``'sum'`` and ``'none'``);
    rows left out or of weight 0 get exactly 0.

    Examples
    --------
    >>> import numpy as np
    >>> import crossentropy as ce
    >>> logits = np.array([[2.0, 0.5, -1.0], [0.0, 0.0, 3.0]])
    >>> float(ce.categorical_cross_entropy_with_logits(logits, [0, 2]))
    0.1681...
    >>> ce.categorical_cross_entropy_with_logits(logits, [0, 2], reduction="none")
    array([0.2413..., 0.0949...])

    Where ``log(softmax(x))`` overflows to inf, the loss stays exact:

    >>> float(ce.categorical_cross_entropy_with_logits([[0.0, -1000.0]], [1]))
    1000.0

    The gradient comes from the same pass:

    >>> loss, grad = ce.categorical_cross_entropy_with_logits(logits, [0, 2], return_grad=True)
    >>> grad.round(4)
    array([[-0.1072,  0.0876,  0.0196],
           [ 0.0226,  0.0226, -0.0453]])
    """
    options = {
        "reduction": reduction,
        "class_weight": class_weight,
        "sample_weight": sample_weight,
        "where": where,
        "ignore_index": ignore_index,
        "label_smoothing": label_smoothing,
        "axis": axis,
    }
    return evaluate(
        _from_logits,
        logits,
        target,
        name="logits",
        categorical=True,
        return_grad=return_grad,
        out=out,
        options=options,
    )


def _from_logits(
    logits: object, target: object, *, return_grad: bool, out: object, **options: Any
) -> Outcome:
    call = _prepare(logits, target, "logits", **options)
    losses: dict[str, Any] = {
        "labels": call.labels,
        "soft_target": call.soft_target,
        "class_weight": call.class_weight,
        "label_smoothing": call.label_smoothing,
    }
    if not return_grad:
        row_losses = softmax_cross_entropy(call.rows, **losses)
        return Outcome(call.result(row_losses), None, call.total)
    grad, grad_rows = call.grad_rows(out, logits, target, *options.values())
    row_losses = softmax_cross_entropy(
        call.rows, **losses, grad=grad_rows, grad_scale=call.grad_scale()
    )
    return Outcome(call.result(row_losses), call.finish_grad(grad, grad_rows), call.total)


def _dense_target_weights(call: _Categorical) -> FloatArray:
    """Return ``a = w * ((1 - eps) t + eps / C)`` as an (N, C) array."""
    rows = call.rows
    dtype = rows.dtype.type
    n_classes = rows.shape[1]
    share = dtype(call.label_smoothing / n_classes)
    hard = dtype(1.0 - call.label_smoothing)
    if call.labels is None:
        assert call.soft_target is not None
        weights = call.soft_target * hard
        weights += share
    else:
        weights = np.full(rows.shape, share, dtype=rows.dtype)
        weights[np.arange(rows.shape[0]), call.labels] += hard
    if call.class_weight is not None:
        weights *= call.class_weight
    return weights


def categorical_cross_entropy(
    probs: object,
    target: object,
    *,
    reduction: Reduction = "mean",
    class_weight: object = None,
    sample_weight: object = None,
    where: object = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    eps: float | None = None,
    axis: int = -1,
    return_grad: bool = False,
    out: FloatArray | None = None,
) -> Any:
    r"""Cross-entropy between targets and predicted class probabilities `probs`.

    Parameters
    ----------
    probs : array_like of shape (..., C, ...)
        Predicted probabilities in [0, 1], C classes along `axis`; rows should sum to
        1. float16 is computed in float32, integers and bools in float64.
    target : array_like of int of the batch shape, or of float of the shape of `probs`
        Class indices in ``[0, C)`` (any integer dtype), or class probabilities.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        ``'none'`` returns the batch-shaped per-element losses (0 where left out);
        ``'sum'`` their sum; ``'mean'`` their sum divided by the total weight ``D``.
    class_weight : array_like of shape (C,), optional
        Finite, non-negative weight of each class.
    sample_weight : array_like, optional
        Finite, non-negative weight of each element; broadcasts to the batch shape.
    where : array_like of bool, optional
        Broadcasts to the batch shape; elements where it is False are left out.
    ignore_index : int, optional
        With integer targets: elements whose target equals it are left out.
    label_smoothing : float, default 0.0
        :math:`\epsilon` in :math:`t \leftarrow (1-\epsilon) t + \epsilon / C`.
    eps : float, optional
        Probabilities are clipped to ``[eps, 1 - eps]`` before the logarithm. None
        (the default) means ``np.finfo(dtype).eps`` of the computation dtype, as in
        scikit-learn's ``log_loss``; 0 means no clipping.
    axis : int, default -1
        The class axis.
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
    loss : floating scalar or ndarray of the batch shape
        float32 for float16 and float32 `probs`, float64 otherwise.
    grad : ndarray of the shape of `probs`
        Only with ``return_grad=True``.

    Raises
    ------
    ValueError
        For probabilities outside [0, 1] or NaN, a class index outside ``[0, C)``
        (other than `ignore_index`), shapes that do not fit, out-of-range options, or
        `ignore_index` with probability targets.
    TypeError
        For complex, object or string arrays, bool targets or a non-bool `where`.

    Warns
    -----
    UserWarning
        When rows of `probs` (or of probability targets) that are not left out do not
        sum to 1 within ``sqrt(np.finfo(dtype).eps)``, as scikit-learn warns.

    See Also
    --------
    categorical_cross_entropy_with_logits : the same loss from logits, exact and faster.

    Notes
    -----
    With :math:`a_c = w_c t_c` (class weight times smoothed target) and sample weight
    :math:`s`, the loss of one element is

    .. math::

        \ell = -s \sum_c a_c \log \operatorname{clip}(p_c, \epsilon, 1 - \epsilon),

    where a class whose target weight is 0 contributes exactly 0, even where
    :math:`p_c = 0` and ``eps=0``. Reductions follow the same rule as
    :func:`categorical_cross_entropy_with_logits`; with integer targets and
    ``sample_weight`` the mean equals scikit-learn's ``log_loss``. Elements left out
    by `where` or `ignore_index` are not checked.

    Examples
    --------
    >>> import numpy as np
    >>> import crossentropy as ce
    >>> probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    >>> float(ce.categorical_cross_entropy(probs, [0, 2]))
    0.2899...
    >>> ce.categorical_cross_entropy(probs, [0, 2], sample_weight=[3.0, 1.0], reduction="none")
    array([1.0700..., 0.2231...])

    A probability of 0 for the true class is clipped to ``eps`` rather than giving inf:

    >>> float(ce.categorical_cross_entropy([[1.0, 0.0]], [1]))
    36.0436...
    """
    options = {
        "reduction": reduction,
        "class_weight": class_weight,
        "sample_weight": sample_weight,
        "where": where,
        "ignore_index": ignore_index,
        "label_smoothing": label_smoothing,
        "eps": eps,
        "axis": axis,
    }
    return evaluate(
        _from_probabilities,
        probs,
        target,
        name="probs",
        categorical=True,
        return_grad=return_grad,
        out=out,
        options=options,
    )


def _from_probabilities(
    probs: object, target: object, *, return_grad: bool, out: object, **options: Any
) -> Outcome:
    eps = options.pop("eps")
    call = _prepare(probs, target, "probs", **options)
    rows = call.rows
    dtype = rows.dtype
    low = dtype.type(check_eps(eps, dtype))
    high = dtype.type(1) - low
    counted_rows = None if call.counted is None else call.counted[:, None]
    check_unit_interval(rows, "probs", counted_rows)
    warn_if_rows_do_not_sum_to_one(rows, "probs", call.counted)

    if call.labels is not None and call.label_smoothing == 0:
        # Only the probability of the true class enters the loss: gather it.
        positions = np.arange(0, rows.size, rows.shape[1])
        positions += call.labels
        picked = np.take(rows, positions)
        weights: Any = 1.0 if call.class_weight is None else call.class_weight[call.labels]
    else:
        picked = rows
        weights = _dense_target_weights(call)
    clipped = np.clip(picked, low, high)
    with np.errstate(divide="ignore"):
        terms = np.log(clipped)
    np.negative(terms, out=terms)
    terms = weighted_product(weights, terms)
    row_losses = terms if terms.ndim == 1 else terms.sum(axis=1)
    loss = call.result(np.asarray(row_losses, dtype=dtype))
    if not return_grad:
        return Outcome(loss, None, call.total)

    grad, grad_rows = call.grad_rows(out, probs, target, *options.values())
    scale = call.grad_scale()
    with np.errstate(divide="ignore"):
        slope = weighted_product(weights, -1 / clipped)
    slope = np.where((picked >= low) & (picked <= high), slope, 0).astype(dtype, copy=False)
    # A row left out (scale 0) gets a zero gradient even where its slope is infinite.
    with np.errstate(invalid="ignore"):
        if slope.ndim == 1:
            grad_rows[...] = 0
            grad_rows.reshape(-1)[positions] = np.where(scale == 0, 0, scale * slope)
        else:
            np.multiply(slope, scale if np.ndim(scale) == 0 else scale[:, None], out=grad_rows)
            grad_rows[scale == 0] = 0
    return Outcome(loss, call.finish_grad(grad, grad_rows), call.total)
