"""The one reduction rule that every loss follows.

``"sum"`` adds the per-element losses that are not left out. ``"mean"`` divides that
sum by the total weight ``D`` of the elements that are not left out (each element
weighs its sample weight times the class-weighted sum of its unsmoothed target). With
``D == 0`` the mean is NaN and the gradient is zero.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validation import FloatArray, Reduction

__all__ = ["gradient_scale", "reduce", "reduce_sum", "total_weight"]


def total_weight(weights: np.ndarray[Any, Any] | float) -> float:
    """Return ``D``, the sum of the per-element weights, accumulated in float64."""
    return float(np.sum(weights, dtype=np.float64))


def gradient_scale(reduction: Reduction, total: float) -> float:
    """Return the factor that turns the gradient of the summed loss into that of `reduction`."""
    if reduction != "mean":
        return 1.0
    return 0.0 if total == 0 else 1.0 / total


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
