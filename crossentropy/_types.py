"""Type aliases and the outcome of one evaluation, shared by every module.

The public losses are annotated with these: their array arguments take any
:data:`numpy.typing.ArrayLike`, and a loss comes back as a :data:`LossValue`, alone or,
with ``return_grad=True`` or ``return_hess=True``, in a tuple with the gradient (and the
Hessian's diagonal), whose overloads the ``*Options`` dictionaries below keep short: they
hold the keyword options that a loss takes besides ``return_grad``, ``return_hess`` and
``out``.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple, TypedDict

import numpy as np
import numpy.typing as npt

__all__ = [
    "BinaryFocalOptions",
    "BinaryOptions",
    "BinaryProbabilityFocalOptions",
    "BinaryProbabilityOptions",
    "BoolArray",
    "CategoricalFocalOptions",
    "CategoricalLogitsOptions",
    "CategoricalOptions",
    "CategoricalProbabilityFocalOptions",
    "CategoricalProbabilityOptions",
    "FloatArray",
    "LossResult",
    "LossValue",
    "Outcome",
    "Reduction",
]

FloatArray = npt.NDArray[np.floating[Any]]
BoolArray = npt.NDArray[np.bool_]
Reduction = Literal["mean", "sum", "none"]

# What a loss returns for NumPy inputs: a NumPy floating scalar for "mean" and "sum",
# an array of the batch shape for "none" (both convert with float() when 0-d). The
# reduction is not part of the overloads, which would double their number. For Dask
# inputs the same positions hold Dask arrays, which these annotations do not describe.
LossValue = np.floating[Any] | FloatArray
# What a loss with `return_hess` returns when the flags are not literals.
LossResult = LossValue | tuple[LossValue, FloatArray] | tuple[LossValue, FloatArray, FloatArray]


class _Options(TypedDict, total=False):
    """The keyword options of every loss."""

    reduction: Reduction
    sample_weight: npt.ArrayLike | None
    where: npt.ArrayLike | None
    label_smoothing: float


class BinaryOptions(_Options, total=False):
    """The options of ``binary_cross_entropy_with_logits``."""

    pos_weight: npt.ArrayLike | Literal["balanced"] | None


class BinaryProbabilityOptions(BinaryOptions, total=False):
    """The options of ``binary_cross_entropy``."""

    eps: float | None


class BinaryFocalOptions(BinaryOptions, total=False):
    """The options of ``binary_focal_loss_with_logits``."""

    gamma: float
    alpha: float | None


class BinaryProbabilityFocalOptions(BinaryFocalOptions, total=False):
    """The options of ``binary_focal_loss``."""

    eps: float | None


class CategoricalOptions(_Options, total=False):
    """The options of every categorical loss."""

    class_weight: npt.ArrayLike | Literal["balanced"] | None
    ignore_index: int | None
    axis: int


class CategoricalLogitsOptions(CategoricalOptions, total=False):
    """The options of ``categorical_cross_entropy_with_logits``."""

    z_loss: float
    softcap: float | None


class CategoricalProbabilityOptions(CategoricalOptions, total=False):
    """The options of ``categorical_cross_entropy``."""

    eps: float | None


class CategoricalFocalOptions(CategoricalOptions, total=False):
    """The options of ``categorical_focal_loss_with_logits``."""

    gamma: float


class CategoricalProbabilityFocalOptions(CategoricalFocalOptions, total=False):
    """The options of ``categorical_focal_loss``."""

    eps: float | None


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
