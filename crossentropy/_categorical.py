"""Multi-class cross-entropy from logits and from probabilities."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
import numpy.typing as npt

from ._dispatch import evaluate
from ._focal import softmax_focal_loss
from ._kernel import plain_cross_entropy, row_indices, softmax_cross_entropy
from ._prepare import (
    Loss,
    Prepared,
    Unfit,
    buffered_part,
    inside_unit_interval,
    lane_outputs,
    part,
    run_lane_blocks,
    weighted_product,
)
from ._threads import run_in_ranges, scratch
from ._types import (
    CategoricalFocalOptions,
    CategoricalLogitsOptions,
    CategoricalProbabilityFocalOptions,
    CategoricalProbabilityOptions,
    FloatArray,
    LossResult,
    LossValue,
    Reduction,
)
from ._validation import rows_off_one

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "categorical_cross_entropy",
    "categorical_cross_entropy_with_logits",
    "categorical_focal_loss",
    "categorical_focal_loss_with_logits",
]


def _from_logits(call: Prepared) -> Any:
    """Compute the loss from logits: the log-sum-exp kernel, weighted per row.

    Per row, or for ``"mean"`` and ``"sum"`` their float64 sum.
    """
    return softmax_cross_entropy(call, weighted=True)


def _focal_from_logits(call: Prepared) -> Any:
    """Compute the focal loss from logits: the log-sum-exp kernel, weighted per row.

    Per row, or for ``"mean"`` and ``"sum"`` their float64 sum.
    """
    return softmax_focal_loss(call, weighted=True)


# Elements of a block of the probability kernel: its few temporaries stay in the cache.
# A gathered block (integer targets, no smoothing) has temporaries of one value per
# row: it takes this many rows.
_PROBABILITY_BLOCK = 1 << 13
_GATHERED_BLOCK = 1 << 13
# Gathered blocks of the cross-entropy grow up to this factor, while they hold at most
# 1/_GROWTH_SHARE of the rows.
_MAX_GROWTH = 2
_GROWTH_SHARE = 4
# Elements of a block of the lane of plain calls (see plain_probabilities), checked and
# computed while in the cache.
_PLAIN_BLOCK_ELEMENTS = 1 << 18


def _dense_target_weights(
    call: Prepared, start: int, stop: int, labels: np.ndarray[Any, Any] | None
) -> FloatArray:
    """Return ``a = w * ((1 - eps) t + eps / C)`` of rows ``start:stop`` as an array."""
    rows = call.values[start:stop]
    dtype = rows.dtype.type
    hard, share = (dtype(value) for value in call.smoothing)
    if labels is None:
        assert call.target is not None
        weights = call.target[start:stop] * hard
        weights += share
    else:
        weights = np.full(rows.shape, share, dtype=rows.dtype)
        weights[np.arange(rows.shape[0]), labels] += hard
    if call.class_weight is not None:
        weights *= call.class_weight
    return weights


def _focal_terms(clipped: FloatArray, gamma: float) -> FloatArray:
    """Return ``-(1 - q)^gamma log q`` of clipped probabilities ``q`` (``-log q`` for 0)."""
    with np.errstate(divide="ignore"):
        terms = np.log(clipped)
    np.negative(terms, out=terms)
    if gamma != 0:
        terms *= np.power(1 - clipped, gamma)
    return terms


def _focal_slopes(clipped: FloatArray, gamma: float) -> FloatArray:
    """Return the derivative of :func:`_focal_terms` with respect to ``q``.

    ``gamma (1 - q)^(gamma - 1) log q - (1 - q)^gamma / q``; ``-1 / q`` for ``gamma = 0``.
    At ``q = 1`` (``eps=0``) the first term's limit is 0, also for ``gamma < 1``.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        if gamma == 0:
            return -1 / clipped
        complement = 1 - clipped
        slopes = np.power(complement, gamma - 1)
        slopes *= np.log(clipped)
        slopes[complement == 0] = 0
        slopes *= gamma
        slopes -= np.power(complement, gamma) / clipped
    return slopes


def _from_probabilities(call: Prepared) -> Any:
    """Compute the loss from probabilities: ``-sum_c a_c (1 - q_c)^gamma log q_c`` per row.

    ``q = clip(p)``; ``gamma`` is 0 for the cross-entropy. Only the probability of the
    true class enters the loss of an integer target without smoothing: it is gathered,
    not the whole row. Blocks of rows run on every core, each with temporaries of its
    own size only; returns the per-row losses, or for ``"mean"`` and ``"sum"`` their
    float64 sum.
    """
    n_rows, n_classes = call.values.shape
    gathered = call.labels is not None and call.plan.label_smoothing == 0
    # A gathered block's temporaries hold one value per row, a dense one per element.
    step = _GATHERED_BLOCK if gathered else max(1, _PROBABILITY_BLOCK // n_classes)
    plain = call.row_weight is None and call.counted is None and call.class_weight is None
    if gathered and plain and call.plan.gamma == 0:
        # The few temporaries of the plain cross-entropy let large calls take larger
        # blocks, with fewer Python steps, which hold the GIL that threads contend for.
        step *= min(_MAX_GROWTH, max(1, n_rows // (_GROWTH_SHARE * _GATHERED_BLOCK)))
    losses = None
    if call.plan.reduction == "none":
        losses = np.empty(n_rows, dtype=call.dtype)

    def run(start: int, stop: int) -> float:
        summed = 0.0
        for begin in range(start, stop, step):
            end = min(begin + step, stop)
            summed += _probability_block(call, begin, end, losses, gathered=gathered)
        return summed

    sums = run_in_ranges(run, n_rows, n_classes)
    return sum(sums) if losses is None else losses


def _probability_block(
    call: Prepared, start: int, stop: int, losses: FloatArray | None, *, gathered: bool
) -> float:
    """Compute rows ``start:stop`` of the probability loss and its gradient.

    Writes the weighted per-row losses into `losses` (or returns their float64 sum).
    """
    rows = call.values[start:stop]
    dtype = rows.dtype
    low = dtype.type(call.plan.eps)
    high = dtype.type(1) - low
    gamma = call.plan.gamma
    labels = part(call.labels, start, stop)
    if labels is not None:
        labels = labels.astype(np.intp, copy=False)  # any integer dtype, a block at a time
    weights: Any
    if gathered:
        # In this thread's buffers, kept from call to call: positions and row weights.
        positions = scratch("probability-positions", (stop - start,), np.dtype(np.intp))
        np.multiply(row_indices(stop - start), rows.shape[1], out=positions)
        positions += labels
        picked = np.take(rows, positions)
        weights = 1.0 if call.class_weight is None else call.class_weight[labels]
    else:
        picked = rows
        weights = _dense_target_weights(call, start, stop, labels)
    if gathered and call.grad_rows is None:
        # The common case, in place: -(1 - q)^gamma log q of the labels' probabilities q.
        clipped = np.clip(picked, low, high, out=picked)
        with np.errstate(divide="ignore"):
            terms = np.log(clipped, out=None if gamma else clipped)
        np.negative(terms, out=terms)
        if gamma != 0:
            complement = np.subtract(1, clipped, out=clipped)
            terms *= np.power(complement, gamma, out=complement)
        row_losses = np.asarray(weighted_product(weights, terms), dtype=dtype)
    else:
        clipped = np.clip(picked, low, high)
        terms = weighted_product(weights, _focal_terms(clipped, gamma))
        row_losses = np.asarray(terms if terms.ndim == 1 else terms.sum(axis=1), dtype=dtype)
    row_weight = buffered_part(call.row_weight, start, stop, "probability-weight")
    if row_weight is not None:
        row_losses = weighted_product(row_weight, row_losses)
    if call.grad_rows is not None:
        grad_rows = call.grad_rows[start:stop]
        scale = call.grad_scale(start, stop)
        slope = weighted_product(weights, _focal_slopes(clipped, gamma))
        slope = np.where((picked >= low) & (picked <= high), slope, 0).astype(dtype, copy=False)
        # A row left out (scale 0) gets a zero gradient even where its slope is infinite.
        with np.errstate(invalid="ignore"):
            if gathered:
                grad_rows[...] = 0
                grad_rows.reshape(-1)[positions] = np.where(scale == 0, 0, scale * slope)
            else:
                np.multiply(slope, scale if np.ndim(scale) == 0 else scale[:, None], out=grad_rows)
                grad_rows[scale == 0] = 0
    if losses is not None:
        losses[start:stop] = row_losses
        return 0.0
    return float(np.sum(row_losses, dtype=np.float64))


def plain_probabilities(
    probs: FloatArray, labels: Any, reduction: Reduction, grad: FloatArray | None
) -> Any:
    r"""Return the cross-entropy of a plain call of class probabilities, or None.

    The lane of plain calls (see :func:`crossentropy._prepare.plain_call`) of
    :func:`categorical_cross_entropy`: ``(N, C)`` rows of probabilities and ``N``
    labels in ``[0, C)``, no option, the default ``eps`` (class-major calls return
    None). Per row, the general path's formula (:func:`_probability_block`), bit for
    bit,

    .. math::

        \ell = -\log q_y, \qquad q_y = \operatorname{clip}(p_y, \epsilon, 1 - \epsilon),

    and where `grad` is given, ``s (-1 / q_y)`` at the label (0 where ``p_y`` is
    clipped), 0 elsewhere. Each block checks what the general path checks, while it is
    in the cache: probabilities in ``[0, 1]`` (a block that fails hands the call to the
    general path, which raises) and rows that sum to 1 within ``sqrt(eps)`` (else the
    general path warns, and computes). The general path checks every row in one pass
    and reads the labels' probabilities in another. Returns the per-row losses for
    ``"none"``, else their float64 sum; blocks are fixed by the shape.
    """
    if probs.ndim != 2:
        return None
    n_rows, n_classes = probs.shape
    dtype = probs.dtype
    block_rows = max(1, _PLAIN_BLOCK_ELEMENTS // n_classes)
    losses, scale = lane_outputs((n_rows,), reduction, dtype)

    def compute(start: int, stop: int) -> float:
        return _plain_probability_block(
            probs[start:stop],
            labels[start:stop],
            losses=None if losses is None else losses[start:stop],
            grad=None if grad is None else grad[start:stop],
            scale=scale,
        )

    return run_lane_blocks(compute, n_rows, block_rows, n_classes, losses)


def _plain_probability_block(
    rows: FloatArray, labels: Any, *, losses: Any, grad: Any, scale: Any
) -> float:
    """Compute one block of :func:`plain_probabilities`; return the float64 sum of its losses.

    The sum is 0 where `losses` receives them. Raises :class:`Unfit` where a check fails.
    """
    n, n_classes = rows.shape
    dtype = rows.dtype
    if not inside_unit_interval(rows, None):
        raise Unfit
    # In this thread's buffers: the row sums, the labels' probabilities, their positions.
    sums, picked = scratch("probability-rows", (2, n), dtype)
    positions = scratch("probability-positions", (n,), np.dtype(np.intp))
    # The row sums and their check as the general path's (_check_probability_rows).
    np.matmul(rows, np.ones(n_classes, dtype), out=sums)
    if rows_off_one(sums, None)[0]:
        raise Unfit
    np.multiply(row_indices(n), n_classes, out=positions)
    positions += labels.astype(np.intp, copy=False)  # any integer dtype, a block at a time
    np.take(rows, positions, out=picked)
    low = dtype.type(np.finfo(dtype).eps)
    high = 1 - low
    clipped = np.clip(picked, low, high, out=None if grad is not None else picked)
    if grad is not None:
        slope = -1 / clipped
        slope[(picked < low) | (picked > high)] = 0
        grad[...] = 0
        grad.reshape(-1)[positions] = scale * slope
    terms = np.log(clipped, out=clipped)
    np.negative(terms, out=terms)
    if losses is not None:
        losses[...] = terms
        return 0.0
    return float(np.sum(terms, dtype=np.float64))


_LOGITS = Loss(
    function="categorical_cross_entropy_with_logits",
    name="logits",
    categorical=True,
    kernel=_from_logits,
    plain=plain_cross_entropy,
    class_major=True,
)
_PROBABILITIES = Loss(
    function="categorical_cross_entropy",
    name="probs",
    categorical=True,
    kernel=_from_probabilities,
    plain=plain_probabilities,
)


@overload
def categorical_cross_entropy_with_logits(
    logits: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    return_grad: Literal[False] = ...,
    return_hess: Literal[False] = ...,
    **options: Unpack[CategoricalLogitsOptions],
) -> LossValue: ...


@overload
def categorical_cross_entropy_with_logits(
    logits: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    return_grad: Literal[True],
    return_hess: Literal[False] = ...,
    out: FloatArray | None = ...,
    **options: Unpack[CategoricalLogitsOptions],
) -> tuple[LossValue, FloatArray]: ...


@overload
def categorical_cross_entropy_with_logits(
    logits: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    return_grad: bool = ...,
    return_hess: Literal[True],
    out: FloatArray | None = ...,
    **options: Unpack[CategoricalLogitsOptions],
) -> tuple[LossValue, FloatArray, FloatArray]: ...


@overload
def categorical_cross_entropy_with_logits(
    logits: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    return_grad: bool = ...,
    return_hess: bool = ...,
    out: FloatArray | None = ...,
    **options: Unpack[CategoricalLogitsOptions],
) -> LossResult: ...


def categorical_cross_entropy_with_logits(
    logits: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    reduction: Reduction = "mean",
    class_weight: npt.ArrayLike | Literal["balanced"] | None = None,
    sample_weight: npt.ArrayLike | None = None,
    where: npt.ArrayLike | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    softcap: float | None = None,
    axis: int = -1,
    return_grad: bool = False,
    return_hess: bool = False,
    out: FloatArray | None = None,
) -> LossResult:
    r"""Cross-entropy between targets and the softmax of `logits` along `axis`.

    Parameters
    ----------
    logits : array_like of shape (..., C, ...)
        Unnormalized log-probabilities, C classes along `axis`. Any float, -inf
        included. float16 is computed in float32, integers and bools in float64. In a
        NumPy masked array, rows whose classes are all masked are left out.
    target : array_like of int of the batch shape, or of float of the shape of `logits`
        Class indices in ``[0, C)`` (any integer dtype), or class probabilities.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        ``'none'`` returns the batch-shaped per-element losses (0 where left out);
        ``'sum'`` their sum; ``'mean'`` their sum divided by the total weight ``D``.
    class_weight : array_like of shape (C,), or 'balanced', optional
        Finite, non-negative weight of each class. ``'balanced'`` (integer targets
        only) computes ``n / (C n_c)`` from this call's targets, as scikit-learn's
        ``compute_class_weight``: ``n_c`` is the number of elements counted of class
        ``c`` (their total sample weight, with `sample_weight`) and ``n`` that of all
        classes; a class that no counted element has weighs 0.
    sample_weight : array_like, optional
        Finite, non-negative weight of each element; broadcasts to the batch shape.
    where : array_like of bool, optional
        Broadcasts to the batch shape; elements where it is False are left out.
    ignore_index : int, optional
        With integer targets: elements whose target equals it are left out.
    label_smoothing : float, default 0.0
        :math:`\epsilon` in :math:`t \leftarrow (1-\epsilon) t + \epsilon / C`; with
        integer targets no one-hot array is built.
    z_loss : float, default 0.0
        :math:`z \ge 0`: each element's loss gains :math:`z \operatorname{lse}(x)^2`
        (PaLM's auxiliary z-loss), times its sample weight but not its class weights;
        ``D`` is unchanged.
    softcap : float, optional
        :math:`c > 0`: the logits are first replaced by :math:`c \tanh(x / c)`
        (Gemma 2's soft-capping): the loss, the z-loss and the derivatives are those
        of the capped logits, carried back to `logits`. None (the default): no cap.
    axis : int, default -1
        The class axis (PyTorch's layout is ``axis=1``).
    return_grad : bool, default False
        Also return the gradient of the returned loss (of its sum for ``'none'``) with
        respect to `logits`, computed in the same pass.
    return_hess : bool, default False
        Return ``(loss, grad, hess)``, whatever `return_grad`: `hess` is the diagonal
        of the Hessian of the returned loss (of its sum for ``'none'``) with respect to
        `logits`, from the same pass.
    out : ndarray, optional
        With `return_grad`: an array of the shape of `logits` and the computation
        dtype that receives the gradient and is returned. It must not share memory
        with any input.

    Returns
    -------
    loss : floating scalar or ndarray of the batch shape
        float32 for float16 and float32 `logits`, float64 otherwise.
    grad : ndarray of the shape of `logits`
        Only with ``return_grad=True`` or ``return_hess=True``.
    hess : ndarray of the shape of `logits`
        Only with ``return_hess=True``.

    Raises
    ------
    ValueError
        For a class index outside ``[0, C)`` (other than `ignore_index`), target or
        option shapes that do not fit, out-of-range options (a negative or non-finite
        `z_loss`; a `softcap` that is not a positive normal number of the computation
        dtype), probability targets outside [0, 1], `ignore_index` or
        ``class_weight='balanced'`` with probability targets, a `class_weight` string
        other than ``'balanced'``, a masked array with some classes of a row masked,
        or masked weights.
    TypeError
        For complex, object or string arrays, bool targets, a non-bool `where`,
        `return_grad` or `return_hess`, a dict `class_weight`, or a `z_loss` or
        `softcap` that is not a real number (bools included).

    Warns
    -----
    ProbabilitySumWarning
        When rows of probability targets that are not left out do not sum to 1 within
        ``sqrt(np.finfo(dtype).eps)``.

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
    :math:`\sum s\, w_{y}`; without weights, the number of elements. Probability
    targets whose rows do not sum to 1 weigh their row sums (``w = 1`` when absent, so
    that ``class_weight=np.ones(C)`` changes nothing). :math:`D = 0` gives NaN and a
    zero gradient. Rows whose maximum is +inf, or that are all -inf, give NaN, as NaN
    logits do, unless their target weighs 0.

    The gradient is :math:`s (A \operatorname{softmax}(x) - a) / D` with
    :math:`A = \sum_c a_c` (without the :math:`1/D` for ``'sum'`` and ``'none'``);
    rows left out or of weight 0 get exactly 0. The diagonal of the Hessian is
    :math:`s A\, p_c (1 - p_c) / D` with :math:`p = \operatorname{softmax}(x)`.

    With `softcap` :math:`c`, every formula here holds for :math:`y = c \tanh(x / c)`
    in place of :math:`x` (:math:`\pm\infty` become :math:`\pm c`, NaN stays NaN), and
    the derivatives are carried to :math:`x` by the chain rule,
    :math:`g_x = g_y\, y'` and :math:`h_x = h_y\, y'^2 + g_y\, y''` with
    :math:`y' = \operatorname{sech}^2(x / c)` (computed so that it does not cancel where
    :math:`|x| \gg c`) and :math:`y'' = -(2 / c) \tanh(x / c)\, y'`. With `z_loss`
    :math:`z` the loss of an element is

    .. math::

        \ell = s \Bigl(\sum_c a_c \bigl(\operatorname{lse}(y) - y_c\bigr)
              + z \operatorname{lse}(y)^2\Bigr),

    two non-negative terms, with :math:`\operatorname{lse} = m + \log(1 +
    \sum_{c \ne k} e^{y_c - m})` from the same pass. The z-loss does not depend on the
    targets: an element whose target weighs 0 (a class weight of 0) still has it,
    while elements left out by `where`, `ignore_index` or a sample weight of 0
    contribute exactly 0 and get zero derivatives. The gradient gains
    :math:`2 s z \operatorname{lse}(y)\, p / D` and the Hessian's diagonal
    :math:`2 s z (p_c^2 + \operatorname{lse}(y)\, p_c (1 - p_c)) / D`, which is
    negative where :math:`\operatorname{lse}(y)` is. A counted row whose logits are all
    -inf (or that holds +inf) has :math:`\operatorname{lse} = \mp\infty`: its z-loss
    is +inf and its derivatives are NaN, as autograd gives; with `softcap` its logits
    are finite and so is everything else.

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

    and so does the diagonal of the Hessian, for Newton steps:

    >>> loss, grad, hess = ce.categorical_cross_entropy_with_logits(
    ...     logits, [0, 2], reduction="sum", return_hess=True
    ... )
    >>> hess.round(4)
    array([[0.1684, 0.1446, 0.0376],
           [0.0432, 0.0432, 0.0824]])

    A z-loss pulls the log-normalizer towards 0 (here ``lse`` is 2.24 and 3.09),
    and a soft cap bounds the logits, an infinite one included, by ``softcap``:

    >>> ce.categorical_cross_entropy_with_logits(logits, [0, 2], z_loss=1e-2, reduction="none")
    array([0.2915..., 0.1907...])
    >>> float(ce.categorical_cross_entropy_with_logits([[np.inf, 0.0]], [1], softcap=5.0))
    5.0067...
    """
    options = {
        "reduction": reduction,
        "class_weight": class_weight,
        "sample_weight": sample_weight,
        "where": where,
        "ignore_index": ignore_index,
        "label_smoothing": label_smoothing,
        "z_loss": z_loss,
        "softcap": softcap,
        "axis": axis,
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
def categorical_cross_entropy(
    probs: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    return_grad: Literal[False] = ...,
    **options: Unpack[CategoricalProbabilityOptions],
) -> LossValue: ...


@overload
def categorical_cross_entropy(
    probs: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    return_grad: Literal[True],
    out: FloatArray | None = ...,
    **options: Unpack[CategoricalProbabilityOptions],
) -> tuple[LossValue, FloatArray]: ...


@overload
def categorical_cross_entropy(
    probs: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    return_grad: bool = ...,
    out: FloatArray | None = ...,
    **options: Unpack[CategoricalProbabilityOptions],
) -> LossValue | tuple[LossValue, FloatArray]: ...


def categorical_cross_entropy(
    probs: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    reduction: Reduction = "mean",
    class_weight: npt.ArrayLike | Literal["balanced"] | None = None,
    sample_weight: npt.ArrayLike | None = None,
    where: npt.ArrayLike | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    eps: float | None = None,
    axis: int = -1,
    return_grad: bool = False,
    out: FloatArray | None = None,
) -> LossValue | tuple[LossValue, FloatArray]:
    r"""Cross-entropy between targets and predicted class probabilities `probs`.

    Parameters
    ----------
    probs : array_like of shape (..., C, ...)
        Predicted probabilities in [0, 1], C classes along `axis`; rows should sum to
        1. float16 is computed in float32, integers and bools in float64. In a NumPy
        masked array, rows whose classes are all masked are left out.
    target : array_like of int of the batch shape, or of float of the shape of `probs`
        Class indices in ``[0, C)`` (any integer dtype), or class probabilities.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        ``'none'`` returns the batch-shaped per-element losses (0 where left out);
        ``'sum'`` their sum; ``'mean'`` their sum divided by the total weight ``D``.
    class_weight : array_like of shape (C,), or 'balanced', optional
        Finite, non-negative weight of each class. ``'balanced'`` (integer targets
        only) computes ``n / (C n_c)`` from this call's targets, as scikit-learn's
        ``compute_class_weight``: ``n_c`` is the number of elements counted of class
        ``c`` (their total sample weight, with `sample_weight`) and ``n`` that of all
        classes; a class that no counted element has weighs 0.
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
        (other than `ignore_index`), shapes that do not fit, out-of-range options,
        `ignore_index` or ``class_weight='balanced'`` with probability targets, a
        `class_weight` string other than ``'balanced'``, a masked array with some
        classes of a row masked, or masked weights.
    TypeError
        For complex, object or string arrays, bool targets, a non-bool `where` or
        `return_grad`, or a dict `class_weight`.

    Warns
    -----
    ProbabilitySumWarning
        When rows of `probs` (or of probability targets) that are not left out do not
        sum to 1 within ``sqrt(np.finfo(dtype).eps)``, as scikit-learn warns.
    UserWarning
        When `probs` has an integer or bool dtype: most often labels passed first, in
        the order of scikit-learn's ``log_loss(y_true, y_proba)``.

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
        _PROBABILITIES, probs, target, return_grad=return_grad, out=out, options=options
    )


_FOCAL_LOGITS = Loss(
    function="categorical_focal_loss_with_logits",
    name="logits",
    categorical=True,
    kernel=_focal_from_logits,
    plain=plain_cross_entropy,  # for gamma=0 only: the cross-entropy
    class_major=True,
)
_FOCAL_PROBABILITIES = Loss(
    function="categorical_focal_loss",
    name="probs",
    categorical=True,
    kernel=_from_probabilities,
)


@overload
def categorical_focal_loss_with_logits(
    logits: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    return_grad: Literal[False] = ...,
    return_hess: Literal[False] = ...,
    **options: Unpack[CategoricalFocalOptions],
) -> LossValue: ...


@overload
def categorical_focal_loss_with_logits(
    logits: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    return_grad: Literal[True],
    return_hess: Literal[False] = ...,
    out: FloatArray | None = ...,
    **options: Unpack[CategoricalFocalOptions],
) -> tuple[LossValue, FloatArray]: ...


@overload
def categorical_focal_loss_with_logits(
    logits: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    return_grad: bool = ...,
    return_hess: Literal[True],
    out: FloatArray | None = ...,
    **options: Unpack[CategoricalFocalOptions],
) -> tuple[LossValue, FloatArray, FloatArray]: ...


@overload
def categorical_focal_loss_with_logits(
    logits: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    return_grad: bool = ...,
    return_hess: bool = ...,
    out: FloatArray | None = ...,
    **options: Unpack[CategoricalFocalOptions],
) -> LossResult: ...


def categorical_focal_loss_with_logits(
    logits: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    gamma: float = 2.0,
    reduction: Reduction = "mean",
    class_weight: npt.ArrayLike | Literal["balanced"] | None = None,
    sample_weight: npt.ArrayLike | None = None,
    where: npt.ArrayLike | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    axis: int = -1,
    return_grad: bool = False,
    return_hess: bool = False,
    out: FloatArray | None = None,
) -> LossResult:
    r"""Focal loss between targets and the softmax of `logits` along `axis`.

    The cross-entropy's term of each class weighed down by :math:`(1 - p_c)^\gamma`,
    where the prediction is already good.

    Parameters
    ----------
    logits : array_like of shape (..., C, ...)
        Unnormalized log-probabilities, C classes along `axis`. Any float, -inf
        included. float16 is computed in float32, integers and bools in float64. In a
        NumPy masked array, rows whose classes are all masked are left out.
    target : array_like of int of the batch shape, or of float of the shape of `logits`
        Class indices in ``[0, C)`` (any integer dtype), or class probabilities.
    gamma : float, default 2.0
        The focusing exponent, finite and >= 0; 0 gives the cross-entropy.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        ``'none'`` returns the batch-shaped per-element losses (0 where left out);
        ``'sum'`` their sum; ``'mean'`` their sum divided by the total weight ``D``.
    class_weight : array_like of shape (C,), or 'balanced', optional
        Finite, non-negative weight of each class (Keras' ``alpha``). ``'balanced'``
        (integer targets only) computes ``n / (C n_c)`` from this call's targets, as
        scikit-learn's ``compute_class_weight``: ``n_c`` is the number of elements
        counted of class ``c`` (their total sample weight, with `sample_weight`) and
        ``n`` that of all classes; a class that no counted element has weighs 0.
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
    return_hess : bool, default False
        Return ``(loss, grad, hess)``, whatever `return_grad`: `hess` is the diagonal
        of the Hessian of the returned loss (of its sum for ``'none'``) with respect to
        `logits`, from the same pass.
    out : ndarray, optional
        With `return_grad`: an array of the shape of `logits` and the computation
        dtype that receives the gradient and is returned. It must not share memory
        with any input.

    Returns
    -------
    loss : floating scalar or ndarray of the batch shape
        float32 for float16 and float32 `logits`, float64 otherwise.
    grad : ndarray of the shape of `logits`
        Only with ``return_grad=True`` or ``return_hess=True``.
    hess : ndarray of the shape of `logits`
        Only with ``return_hess=True``.

    Raises
    ------
    ValueError
        For a class index outside ``[0, C)`` (other than `ignore_index`), target or
        option shapes that do not fit, a negative or infinite `gamma`, other
        out-of-range options, probability targets outside [0, 1], `ignore_index` or
        ``class_weight='balanced'`` with probability targets, a `class_weight` string
        other than ``'balanced'``, a masked array with some classes of a row masked,
        or masked weights.
    TypeError
        For complex, object or string arrays, bool targets, a `gamma` that is not a
        real number, a non-bool `where`, `return_grad` or `return_hess`, or a dict
        `class_weight`.

    Warns
    -----
    ProbabilitySumWarning
        When rows of probability targets that are not left out do not sum to 1 within
        ``sqrt(np.finfo(dtype).eps)``.

    See Also
    --------
    categorical_focal_loss : the same loss from probabilities.
    categorical_cross_entropy_with_logits : the loss for ``gamma=0``.

    Notes
    -----
    With :math:`p = \operatorname{softmax}(x)`, :math:`a_c = w_c t_c` (class weight
    times smoothed target) and sample weight :math:`s`, the loss of one element is

    .. math::

        \ell = -s \sum_c a_c (1 - p_c)^\gamma \log p_c
             = s \sum_c a_c\, g(r_c), \qquad
        g(r) = (1 - e^{-r})^\gamma\, r, \quad r_c = \operatorname{lse}(x) - x_c,

    linear in the target, where a class whose target weight is 0 contributes exactly
    0. :math:`r_c \ge 0` comes from the cross-entropy's log-sum-exp as a sum of
    non-negative numbers, and :math:`1 - p_c` from the same sums (for the largest
    logit, the other classes' share of them, as :math:`-\operatorname{expm1}(-r_c)`
    would give it), so that a confident correct prediction
    (:math:`\ell \approx r^{\gamma + 1}`) keeps its relative accuracy and extreme
    logits give no NaN (rows whose maximum is +inf give NaN, as for the
    cross-entropy). No temporary array of the size of `logits` is made: the work is
    done in blocks of rows. The mean divides by ``D``, as for the
    cross-entropy. With :math:`\gamma = 0` the result is that of the cross-entropy,
    bit for bit. With one-hot targets and ``class_weight=np.full(C, alpha)`` the
    per-element loss is Keras' ``categorical_focal_crossentropy`` (without its
    clipping of the probabilities).

    With :math:`b_c = a_c g'(r_c)`, :math:`B = \sum_c b_c` and
    :math:`g'(r) = (1 - p)^{\gamma - 1} (1 - p + \gamma p r)` at :math:`p = e^{-r}`,
    the gradient is :math:`s (B p - b)` (divided by ``D`` for the mean): the
    cross-entropy's with :math:`a` replaced by :math:`b`, and for integer targets
    without smoothing :math:`g'(r_y)` times the cross-entropy's. The diagonal of the
    Hessian is

    .. math::

        H_{jj} = s \Bigl(B p_j (1 - p_j) + p_j^2 \sum_{c \ne j} a_c g''(r_c)
                 + a_j g''(r_j) (1 - p_j)^2\Bigr).

    For :math:`0 < \gamma < 1`, :math:`g''(r)` grows without bound as :math:`r \to 0`
    (a class predicted with certainty), but every term in which it enters for the
    class of largest probability :math:`p_d` carries a factor :math:`(1 - p_d)^2`
    or :math:`p_j^2 \le (1 - p_d)^2` that more than cancels it: the Hessian is finite
    for every :math:`\gamma \ge 0` and tends to 0 for a confident prediction, and it
    is computed in that form, with no cancellation.

    References
    ----------
    T.-Y. Lin, P. Goyal, R. Girshick, K. He and P. Dollar, "Focal Loss for Dense
    Object Detection", ICCV 2017.

    Examples
    --------
    >>> import numpy as np
    >>> import crossentropy as ce
    >>> logits = np.array([[2.0, 0.5, -1.0], [0.0, 0.0, 3.0]])
    >>> ce.categorical_focal_loss_with_logits(logits, [0, 2], reduction="none")
    array([0.0110..., 0.0007...])

    Confident correct predictions hardly count; ``gamma=0`` is the cross-entropy:

    >>> float(ce.categorical_focal_loss_with_logits([[40.0, 0.0]], [0], reduction="sum"))
    7.6676...e-53
    >>> bool(
    ...     ce.categorical_focal_loss_with_logits(logits, [0, 2], gamma=0)
    ...     == ce.categorical_cross_entropy_with_logits(logits, [0, 2])
    ... )
    True

    The gradient and the diagonal of the Hessian come from the same pass:

    >>> loss, grad, hess = ce.categorical_focal_loss_with_logits(
    ...     logits, [0, 2], reduction="sum", return_hess=True
    ... )
    >>> grad.round(4)
    array([[-0.0273,  0.0223,  0.005 ],
           [ 0.0011,  0.0011, -0.0022]])
    >>> hess.round(4)
    array([[0.0624, 0.0458, 0.0061],
           [0.002 , 0.002 , 0.0058]])
    """
    options = {
        "gamma": gamma,
        "reduction": reduction,
        "class_weight": class_weight,
        "sample_weight": sample_weight,
        "where": where,
        "ignore_index": ignore_index,
        "label_smoothing": label_smoothing,
        "axis": axis,
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
def categorical_focal_loss(
    probs: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    return_grad: Literal[False] = ...,
    **options: Unpack[CategoricalProbabilityFocalOptions],
) -> LossValue: ...


@overload
def categorical_focal_loss(
    probs: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    return_grad: Literal[True],
    out: FloatArray | None = ...,
    **options: Unpack[CategoricalProbabilityFocalOptions],
) -> tuple[LossValue, FloatArray]: ...


@overload
def categorical_focal_loss(
    probs: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    return_grad: bool = ...,
    out: FloatArray | None = ...,
    **options: Unpack[CategoricalProbabilityFocalOptions],
) -> LossValue | tuple[LossValue, FloatArray]: ...


def categorical_focal_loss(
    probs: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    gamma: float = 2.0,
    reduction: Reduction = "mean",
    class_weight: npt.ArrayLike | Literal["balanced"] | None = None,
    sample_weight: npt.ArrayLike | None = None,
    where: npt.ArrayLike | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    eps: float | None = None,
    axis: int = -1,
    return_grad: bool = False,
    out: FloatArray | None = None,
) -> LossValue | tuple[LossValue, FloatArray]:
    r"""Focal loss between targets and predicted class probabilities `probs`.

    The cross-entropy's term of each class weighed down by :math:`(1 - q_c)^\gamma`,
    where the prediction is already good.

    Parameters
    ----------
    probs : array_like of shape (..., C, ...)
        Predicted probabilities in [0, 1], C classes along `axis`; rows should sum to
        1. float16 is computed in float32, integers and bools in float64. In a NumPy
        masked array, rows whose classes are all masked are left out.
    target : array_like of int of the batch shape, or of float of the shape of `probs`
        Class indices in ``[0, C)`` (any integer dtype), or class probabilities.
    gamma : float, default 2.0
        The focusing exponent, finite and >= 0; 0 gives the cross-entropy.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        ``'none'`` returns the batch-shaped per-element losses (0 where left out);
        ``'sum'`` their sum; ``'mean'`` their sum divided by the total weight ``D``.
    class_weight : array_like of shape (C,), or 'balanced', optional
        Finite, non-negative weight of each class (Keras' ``alpha``). ``'balanced'``
        (integer targets only) computes ``n / (C n_c)`` from this call's targets, as
        scikit-learn's ``compute_class_weight``: ``n_c`` is the number of elements
        counted of class ``c`` (their total sample weight, with `sample_weight`) and
        ``n`` that of all classes; a class that no counted element has weighs 0.
    sample_weight : array_like, optional
        Finite, non-negative weight of each element; broadcasts to the batch shape.
    where : array_like of bool, optional
        Broadcasts to the batch shape; elements where it is False are left out.
    ignore_index : int, optional
        With integer targets: elements whose target equals it are left out.
    label_smoothing : float, default 0.0
        :math:`\epsilon` in :math:`t \leftarrow (1-\epsilon) t + \epsilon / C`.
    eps : float, optional
        Probabilities are clipped to ``[eps, 1 - eps]``. None (the default) means
        ``np.finfo(dtype).eps`` of the computation dtype; 0 means no clipping.
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
        (other than `ignore_index`), shapes that do not fit, a negative or infinite
        `gamma`, other out-of-range options, `ignore_index` or
        ``class_weight='balanced'`` with probability targets, a `class_weight` string
        other than ``'balanced'``, a masked array with some classes of a row masked,
        or masked weights.
    TypeError
        For complex, object or string arrays, bool targets, a `gamma` that is not a
        real number, a non-bool `where` or `return_grad`, or a dict `class_weight`.

    Warns
    -----
    ProbabilitySumWarning
        When rows of `probs` (or of probability targets) that are not left out do not
        sum to 1 within ``sqrt(np.finfo(dtype).eps)``.
    UserWarning
        When `probs` has an integer or bool dtype: most often labels passed first.

    See Also
    --------
    categorical_focal_loss_with_logits : the same loss from logits, exact for any logit.
    categorical_cross_entropy : the loss for ``gamma=0``.

    Notes
    -----
    With :math:`q = \operatorname{clip}(p, \epsilon, 1 - \epsilon)`,
    :math:`a_c = w_c t_c` (class weight times smoothed target) and sample weight
    :math:`s`, the loss of one element is

    .. math::

        \ell = -s \sum_c a_c (1 - q_c)^\gamma \log q_c,

    linear in the target, where a class whose target weight is 0 contributes exactly
    0, even where :math:`q_c = 0` and ``eps=0``. Reductions follow the same rule as
    :func:`categorical_cross_entropy`; with :math:`\gamma = 0` the result is that of
    the cross-entropy, bit for bit. With one-hot targets,
    ``class_weight=np.full(C, alpha)`` and ``eps=1e-7``, the per-element loss is
    Keras' ``categorical_focal_crossentropy`` of rows that sum to 1.

    The gradient of the element's loss with respect to `probs` is, inside
    ``[eps, 1 - eps]``,

    .. math::

        s\, a_c \Bigl(\gamma (1 - q_c)^{\gamma - 1} \log q_c
                      - \frac{(1 - q_c)^\gamma}{q_c}\Bigr),

    divided by ``D`` for the mean, and 0 outside.

    References
    ----------
    T.-Y. Lin, P. Goyal, R. Girshick, K. He and P. Dollar, "Focal Loss for Dense
    Object Detection", ICCV 2017.

    Examples
    --------
    >>> import numpy as np
    >>> import crossentropy as ce
    >>> probs = np.array([[0.05, 0.9, 0.05], [0.1, 0.85, 0.05]])
    >>> ce.categorical_focal_loss(probs, [1, 2], reduction="none")
    array([0.0010..., 2.7036...])

    Keras' ``alpha`` is a class weight of the same value for every class:

    >>> ce.categorical_focal_loss(probs, [1, 2], class_weight=[0.25] * 3, reduction="none")
    array([0.0002..., 0.6759...])
    """
    options = {
        "gamma": gamma,
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
        _FOCAL_PROBABILITIES, probs, target, return_grad=return_grad, out=out, options=options
    )
