"""The one reduction rule that every loss follows.

``"sum"`` adds the per-element losses that are not left out. ``"mean"`` divides that
sum by the total weight ``D`` of the elements that are not left out (each element
weighs its sample weight times the class-weighted sum of its unsmoothed target). With
``D == 0`` the mean is NaN and the gradient is zero.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._types import FloatArray, Reduction

__all__ = [
    "SAFE_TOTALS",
    "gradient_scale",
    "power_of_two_exponent",
    "reduce",
    "reduce_kernel_result",
    "reduce_sum",
    "smoothing",
    "total_weight",
]

# Totals D in this range are used as they are. Outside it (tiny or huge weights), the
# weights are first scaled by powers of two, which changes neither the mean nor its
# gradient but keeps 1 / D, s / D and the weighted losses far from overflow and
# from subnormal numbers.
SAFE_TOTALS = (2.0**-64, 2.0**64)


def smoothing(label_smoothing: float, n_classes: int) -> tuple[float, float]:
    """Return ``(1 - eps, eps / n)``: ``t <- (1 - eps) t + eps / n`` for `n` classes.

    Binary losses smooth over two classes (``n = 2``).
    """
    return 1.0 - label_smoothing, label_smoothing / n_classes


def total_weight(weights: np.ndarray[Any, Any] | float) -> float:
    """Return ``D``, the sum of the per-element weights, accumulated in float64."""
    return float(np.sum(weights, dtype=np.float64))


def power_of_two_exponent(value: float) -> int:
    """Return ``e`` with ``value = m 2**e``, ``0.5 <= m < 1`` (0 for 0, inf and NaN)."""
    if value == 0 or not math.isfinite(value):
        return 0
    return math.frexp(value)[1]


def gradient_scale(
    reduction: Reduction, total: float, row_weight: Any, dtype: np.dtype[Any]
) -> Any:
    """Return the factor of each row of the gradient of the reduced loss (or of all rows).

    That is the row's weight ``s`` (1 when `row_weight` is None) for ``"sum"`` and
    ``"none"``, and ``s / D`` for ``"mean"``, divided in float64 (not multiplied by
    ``1 / D``, which overflows for a subnormal ``D``). With ``D == 0`` it is 0.
    """
    if row_weight is None:
        row_weight = 1.0
    if reduction != "mean":
        scale = row_weight
    elif total == 0:
        scale = 0.0
    else:
        with np.errstate(over="ignore"):  # only where the gradient itself overflows
            scale = np.divide(row_weight, total, dtype=np.float64)
    if np.ndim(scale) == 0:
        return dtype.type(scale)
    return np.asarray(scale).astype(dtype, copy=False)


def reduce(losses: FloatArray, reduction: Reduction, total: float) -> Any:
    """Reduce per-element `losses` (0 where left out) to the result of a loss function.

    ``"none"`` returns `losses` itself; otherwise see :func:`reduce_sum`.
    """
    if reduction == "none":
        return losses
    return reduce_sum(np.sum(losses, dtype=np.float64), reduction, total, losses.dtype)


def reduce_sum(summed: float, reduction: Reduction, total: float, dtype: np.dtype[Any]) -> Any:
    """Return the ``"sum"`` or ``"mean"`` of losses whose float64 sum is `summed`.

    The result is a NumPy scalar of `dtype`; a mean over ``total == 0`` is NaN.
    """
    if reduction == "sum":
        return dtype.type(summed)
    if total == 0:
        return dtype.type(np.nan)
    return dtype.type(summed / total)


def reduce_kernel_result(
    losses: Any,
    reduction: Reduction,
    total: float,
    batch_shape: tuple[int, ...],
    dtype: np.dtype[Any],
) -> Any:
    """Reduce what a kernel returns: per-row losses (an array) or their float64 sum.

    Per-row losses come back in `batch_shape` for ``"none"``; see :func:`reduce` and
    :func:`reduce_sum`.
    """
    if isinstance(losses, np.ndarray):
        return reduce(losses.reshape(batch_shape), reduction, total)
    return reduce_sum(losses, reduction, total, dtype)
