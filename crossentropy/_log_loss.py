"""scikit-learn's ``log_loss(y_true, y_proba)``: labels of any kind, one reduction rule.

The labels are turned into class indices here; the loss itself is the categorical
cross-entropy from probabilities, through the same kernel, clipping and reduction as
:func:`categorical_cross_entropy`. Only the names in its messages differ: they speak
of ``y_proba``, the argument a caller of ``log_loss`` passed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ._categorical import _PLAIN_BLOCK_ELEMENTS, _from_probabilities, plain_probabilities
from ._dispatch import evaluate
from ._prepare import Loss, run_lane_blocks
from ._reduction import reduce_sum
from ._threads import scratch
from ._types import Reduction
from ._validation import (
    as_real_array,
    check_return_flag,
    check_unit_interval,
    value_bounds,
    warn,
)

__all__ = ["log_loss"]

# Probabilities of a block of a 1-D column (see _column_loss): as many as the rows of a
# block of the stacked rows' lane, whose sums, and so results, it gives bit for bit.
_COLUMN_BLOCK = _PLAIN_BLOCK_ELEMENTS // 2

_Y_PROBA = Loss(
    function="log_loss",
    name="y_proba",
    categorical=True,
    kernel=_from_probabilities,
    plain=plain_probabilities,
)


def _as_probabilities(y_proba: object) -> np.ndarray[Any, Any]:
    """Return `y_proba` as a floating (n, C) array, or a 1-D or (n, 1) one as its column.

    Integers and bools become float64; float16, float32 and float64 are kept (float16
    is then computed in float32, clipped at float16's eps). A column, the probabilities
    of the positive class, is checked to lie in [0, 1] here; the caller stacks it into
    rows ``[1 - p, p]`` where :func:`_column_loss` does not take it.
    """
    array = as_real_array(y_proba, "y_proba")
    if array.dtype.kind in "biu":
        array = array.astype(np.float64)
    if array.ndim not in (1, 2):
        msg = (
            "y_proba must be 1-D (the probability of the positive class) or 2-D "
            f"(n_samples, n_classes), got an array of shape {array.shape}"
        )
        raise ValueError(msg)
    if array.shape[0] == 0:
        msg = f"y_proba must hold at least one sample, got an array of shape {array.shape}"
        raise ValueError(msg)
    if array.ndim == 2 and array.shape[1] != 1:
        return array
    positive = array.reshape(-1)
    check_unit_interval(positive, "y_proba", None)
    return positive


def _column_loss(positive: np.ndarray[Any, Any], indices: Any, reduction: Reduction) -> Any:
    """Return the loss of a 1-D `positive` column of checked probabilities, or None.

    The numbers of the stacked rows ``[1 - p, p]`` through the categorical lane
    (:func:`crossentropy._categorical.plain_probabilities`), bit for bit: each row's
    picked probability is ``1 - p`` or ``p`` exactly, clipped and logged as there, in
    blocks of as many rows; but without the stacked array, a block of the column at a
    time. `indices` are the class indices, 0 or 1. Returns None for what the stacked
    rows' path should take (float16, which is computed in float32 there; a column that
    is not C-contiguous).
    """
    dtype = positive.dtype
    if dtype.itemsize not in (4, 8) or not positive.flags.c_contiguous:
        return None
    size = positive.size
    block = _COLUMN_BLOCK
    low = dtype.type(np.finfo(dtype).eps)
    high = 1 - low

    def compute(start: int, stop: int) -> float:
        p = positive[start:stop]
        complement, target, picked = scratch("log-loss-column", (3, min(block, size)), dtype)[
            :, : stop - start
        ]
        np.subtract(1, p, out=complement)  # the stacked rows' first column
        np.copyto(target, indices[start:stop], casting="unsafe")
        np.multiply(target, p, out=picked)
        np.subtract(1, target, out=target)
        complement *= target
        picked += complement  # p or 1 - p, exactly: the other term is 0
        np.clip(picked, low, high, out=picked)
        np.log(picked, out=picked)
        return -float(np.add.reduce(picked, dtype=np.float64))

    summed = run_lane_blocks(compute, size, block, 1, None)
    return reduce_sum(summed, reduction, size, dtype)


def _as_labels(y_true: object) -> tuple[np.ndarray[Any, Any], int | None]:
    """Return `y_true` as a 1-D array of labels, and None.

    A label indicator matrix of shape (n, k) gives the column of each row's 1 and k:
    its classes are its columns, as in scikit-learn, whether or not each occurs.
    """
    try:
        array = np.asarray(y_true)
    except (ValueError, TypeError) as error:
        msg = f"y_true must be array-like, got {type(y_true).__name__}: {error}"
        raise TypeError(msg) from None
    if array.ndim == 2 and array.shape[1] == 1:
        return array.reshape(-1), None
    if array.ndim == 2:
        is_binary = array.dtype.kind in "biuf" and bool(np.all((array == 0) | (array == 1)))
        if not is_binary or not np.all(array.sum(axis=1) == 1):
            msg = (
                "y_true of 2 dimensions must be a label indicator matrix with exactly one "
                "1 (the true class) per row and 0 elsewhere; multi-label rows are not "
                f"supported, got an array of shape {array.shape} and dtype {array.dtype}"
            )
            raise ValueError(msg)
        indices: np.ndarray[Any, Any] = np.argmax(array, axis=1)
        return indices, array.shape[1]
    if array.ndim != 1:
        msg = f"y_true must be a 1-D array-like of labels, got an array of shape {array.shape}"
        raise ValueError(msg)
    return array, None


def _check_lengths(y_true: np.ndarray[Any, Any], y_proba: np.ndarray[Any, Any]) -> None:
    if y_true.shape[0] != y_proba.shape[0]:
        msg = (
            "y_proba and y_true must have the same number of samples, got "
            f"[{y_proba.shape[0]}, {y_true.shape[0]}] (y_proba, y_true)"
        )
        raise ValueError(msg)


def _check_sample_weight(sample_weight: object, n_samples: int) -> np.ndarray[Any, Any] | None:
    """Return `sample_weight` as a 1-D array of `n_samples` values, not all 0.

    Finiteness and signs are checked by the loss, as for every loss of the package.
    """
    if sample_weight is None:
        return None
    weight = as_real_array(sample_weight, "sample_weight")
    if weight.ndim != 1:
        msg = (
            f"sample_weight must be a 1-D array of {n_samples} weights, one per sample, "
            f"got an array of shape {weight.shape}"
        )
        raise ValueError(msg)
    if weight.shape[0] != n_samples:
        msg = f"sample_weight must have one weight per sample, {n_samples}, got {weight.shape[0]}"
        raise ValueError(msg)
    if not np.any(weight):
        msg = "sample_weight must hold at least one non-zero weight, got only zeros"
        raise ValueError(msg)
    return weight


def _unique(values: np.ndarray[Any, Any], name: str) -> tuple[Any, Any]:
    """Return the sorted unique `values` and the index of each value among them."""
    if values.dtype.kind == "f" and not np.all(np.isfinite(values) & (values == np.round(values))):
        msg = (
            f"{name} must hold class labels (strings, integers, bools or integral floats), "
            "got floats that are not whole numbers: a continuous target"
        )
        raise ValueError(msg)
    if values.dtype.kind == "c":
        msg = f"{name} must hold class labels, got the complex dtype {values.dtype}"
        raise TypeError(msg)
    try:
        return np.unique(values, return_inverse=True)
    except TypeError:
        kinds = sorted({type(value).__name__ for value in values.tolist()})
        msg = f"{name} must hold labels of one kind (all strings or all numbers), got {kinds}"
        raise TypeError(msg) from None


def _present_classes(
    y_true: np.ndarray[Any, Any], n_columns: int
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]] | None:
    """Classes and indices of integer labels already in ``[0, n_columns)``, else None.

    Sorting a million labels would cost more than the loss: their bounds and a count
    per class give the classes present in the same sorted order as ``np.unique``.
    When every class is present, the labels are their own indices.
    """
    if y_true.dtype.kind == "b":
        y_true = y_true.view(np.uint8)
    if y_true.dtype.kind not in "iu":
        return None
    low, high = value_bounds(y_true)
    if low < 0 or high >= n_columns:
        return None
    if (low, high) == (0, 1) and n_columns == 2:  # both classes are present: no count
        return np.arange(2), y_true
    counts = np.bincount(y_true.astype(np.intp, copy=False), minlength=n_columns)
    # When a class is missing, the classes present are fewer than the columns: the
    # caller raises, and the indices are never used.
    return np.flatnonzero(counts), y_true


def _given_labels(
    y_true: np.ndarray[Any, Any], labels: object
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Return the sorted `labels` and the index of each label of `y_true` among them."""
    given = np.asarray(labels)
    if given.ndim != 1:
        msg = f"labels must be a 1-D array-like of class labels, got shape {given.shape}"
        raise ValueError(msg)
    classes, _ = _unique(given, "labels")
    if classes.size != given.size:
        msg = f"labels must not repeat a label, got {given.tolist()}"
        raise ValueError(msg)
    if not np.array_equal(classes, given):
        msg = (
            f"labels {given.tolist()} are not sorted: the columns of y_proba are taken in "
            f"the sorted order labels={classes.tolist()}, as in scikit-learn; pass them "
            "sorted and check that the columns follow that order"
        )
        warn(msg, UserWarning)
    try:
        indices = np.searchsorted(classes, y_true)
        found = classes[np.minimum(indices, classes.size - 1)] == y_true
    except TypeError:  # strings against numbers
        found = np.zeros(y_true.shape, dtype=bool)
    if not np.all(found):
        missing = set(np.asarray(y_true)[~found].tolist())
        msg = f"y_true contains labels {missing} that are not in labels {given.tolist()}"
        raise ValueError(msg)
    return classes, indices


def log_loss(
    y_true: npt.ArrayLike,
    y_proba: npt.ArrayLike,
    *,
    normalize: bool = True,
    sample_weight: npt.ArrayLike | None = None,
    labels: npt.ArrayLike | None = None,
) -> float:
    r"""Log loss of predicted probabilities, with scikit-learn's arguments and semantics.

    A drop-in replacement for ``sklearn.metrics.log_loss``: the same argument order,
    label handling, clipping, warnings and errors, computed by
    :func:`categorical_cross_entropy` on class indices.

    Parameters
    ----------
    y_true : array_like of shape (n_samples,)
        True labels of any kind (strings, integers, bools, integral floats, a pandas
        Series), or a label indicator matrix of shape (n_samples, n_classes) with one
        1 per row, whose columns are the classes.
    y_proba : array_like of shape (n_samples, n_classes) or (n_samples,)
        Predicted probabilities, the columns in the sorted order of the classes (as
        ``np.unique`` and scikit-learn's ``LabelBinarizer`` sort them). A 1-D array,
        or one of shape (n_samples, 1), is the probability of the second
        (positive) class of a binary problem.
    normalize : bool, default True
        Return the (weighted) mean loss per sample; False returns the (weighted) sum.
    sample_weight : array_like of shape (n_samples,), optional
        Finite, non-negative weight of each sample, not all 0.
    labels : array_like, optional
        All the classes, sorted, for when `y_true` does not hold every class. By
        default the classes are the sorted unique values of `y_true`.

    Returns
    -------
    loss : float
        The mean (or sum) of :math:`-\log \operatorname{clip}(p_{i, y_i})`.

    Raises
    ------
    ValueError
        When `y_true`, `y_proba` and `sample_weight` have different numbers of
        samples; when the classes (of `y_true`, or `labels`) are fewer than two or not
        as many as the columns of `y_proba`; when `y_true` holds a label missing
        from `labels`; for probabilities outside [0, 1] or NaN, non-integral float
        labels, repeated `labels`, negative, non-finite or all-zero weights, or
        `labels` with a label indicator `y_true`.
    TypeError
        When `normalize` is not a bool, `y_proba` or `sample_weight` do not hold real
        numbers, or `y_true` or `labels` mix strings and numbers.

    Warns
    -----
    ProbabilitySumWarning
        When rows of `y_proba` do not sum to 1 within ``sqrt(np.finfo(dtype).eps)``,
        as scikit-learn warns (a :class:`UserWarning`); for float16, within float32's.
    UserWarning
        When `labels` are not sorted: the columns of `y_proba` are still taken in
        sorted order, as in scikit-learn.

    See Also
    --------
    categorical_cross_entropy : the loss on class indices, with every option.

    Notes
    -----
    With :math:`c_i` the column of sample :math:`i`'s label and :math:`s_i` its
    weight (1 without `sample_weight`),

    .. math::

        L = \frac{\sum_i s_i\, \bigl(-\log \operatorname{clip}(p_{i c_i},
            \epsilon, 1 - \epsilon)\bigr)}{\sum_i s_i},

    without the denominator for ``normalize=False``; :math:`\epsilon` is
    ``np.finfo(y_proba.dtype).eps``, as in scikit-learn. Integer and bool
    probabilities are taken as float64; float16 ones are clipped at float16's eps
    and computed in float32, so they can differ from scikit-learn (which computes in
    float16) in the last float16 digits, and their row sums are checked at float32's
    tolerance, where scikit-learn allows float16's.

    Integer labels already in ``[0, n_classes)`` are counted per class rather than
    sorted. When every class is present they are their own column indices; when
    some class is missing, the classes present decide, as in scikit-learn (an error
    unless `labels` is given).

    Differences from scikit-learn: negative sample weights are a ``ValueError``
    (scikit-learn accepts them); a multi-label indicator `y_true` (rows with several
    1s) is a ``ValueError``; the result is a Python float in both.

    Examples
    --------
    >>> import crossentropy as ce
    >>> y_proba = [[0.1, 0.9], [0.9, 0.1], [0.8, 0.2], [0.35, 0.65]]
    >>> ce.log_loss(["spam", "ham", "ham", "spam"], y_proba)
    0.2161...

    A 1-D `y_proba` is the probability of the positive class:

    >>> ce.log_loss([0, 1, 1], [0.2, 0.7, 0.9], normalize=False)
    0.6851...

    Classes missing from `y_true` are given with `labels`:

    >>> y_proba = [[0.7, 0.1, 0.2], [0.2, 0.7, 0.1], [0.1, 0.7, 0.2]]
    >>> ce.log_loss([1, 2, 2], y_proba, labels=[1, 2, 3])
    0.3566...
    """
    reduction: Reduction = "mean" if check_return_flag(normalize, "normalize") else "sum"
    probabilities = _as_probabilities(y_proba)
    n_samples = probabilities.shape[0]
    n_columns = probabilities.shape[1] if probabilities.ndim == 2 else 2
    labels_true, indicator_columns = _as_labels(y_true)
    _check_lengths(labels_true, probabilities)
    weight = _check_sample_weight(sample_weight, n_samples)
    if indicator_columns is not None:
        if labels is not None:
            msg = (
                "labels cannot be given with a label indicator matrix y_true, whose "
                "columns are the classes; pass y_true as a 1-D array of labels instead"
            )
            raise ValueError(msg)
        classes, indices = np.arange(indicator_columns), labels_true
    elif labels is not None:
        classes, indices = _given_labels(labels_true, labels)
    else:
        present = _present_classes(labels_true, n_columns)
        classes, indices = present if present is not None else _unique(labels_true, "y_true")
    if classes.size == 1:
        msg = (
            f"y_true contains only one label ({classes.tolist()[0]!r}); pass every class, sorted, "
            "with labels="
            if labels is None
            else f"labels must hold at least two classes, got {classes.tolist()}"
        )
        raise ValueError(msg)
    if classes.size != n_columns:
        where = "y_true" if labels is None else "labels"
        msg = (
            f"y_proba has {n_columns} columns but {where} has {classes.size} classes "
            f"{classes.tolist()}: it must have one column per class"
        )
        if labels is None:
            msg += ", or pass every class with labels="
        raise ValueError(msg)
    if probabilities.ndim == 1:
        column = None if weight is not None else _column_loss(probabilities, indices, reduction)
        if column is not None:
            return float(column)
        probabilities = np.stack([1 - probabilities, probabilities], axis=1)
    eps = np.finfo(np.float16).eps if probabilities.dtype == np.float16 else None
    options = {
        "reduction": reduction,
        "class_weight": None,
        "sample_weight": weight,
        "where": None,
        "ignore_index": None,
        "label_smoothing": 0.0,
        "eps": None if eps is None else float(eps),
        "axis": -1,
    }
    loss = evaluate(_Y_PROBA, probabilities, indices, return_grad=False, out=None, options=options)
    return float(loss)
