"""Type aliases and the outcome of one evaluation, shared by every module."""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = ["BoolArray", "FloatArray", "Outcome", "Reduction"]

FloatArray = npt.NDArray[np.floating[Any]]
BoolArray = npt.NDArray[np.bool_]
Reduction = Literal["mean", "sum", "none"]


class Outcome(NamedTuple):
    """What one evaluation of a loss on NumPy arrays gives.

    ``loss`` is the reduced loss (a NumPy scalar) or, for ``"none"``, the batch-shaped
    losses; ``grad`` is None unless the gradient was asked for; ``total`` is ``D``, the
    weight that ``"mean"`` divides by; ``hess``, the diagonal of the Hessian, is None
    unless it was asked for.
    """

    loss: Any
    grad: Any
    total: float
    hess: Any = None
