"""The path every public loss takes: NumPy arrays here, Dask arrays to ``_dask``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, NamedTuple

__all__ = ["Outcome", "evaluate", "uses_dask"]


class Outcome(NamedTuple):
    """What one evaluation of a loss on NumPy arrays gives.

    ``total`` is ``D``, the weight that ``"mean"`` divides by; ``grad`` is None unless
    the gradient was asked for.
    """

    loss: Any
    grad: Any
    total: float


Compute = Callable[..., Outcome]


def uses_dask(*values: object) -> bool:
    """Return whether any of `values` is a Dask array (without importing Dask)."""
    dask_array = sys.modules.get("dask.array")
    if dask_array is None:
        return False
    return any(isinstance(value, dask_array.Array) for value in values)


def evaluate(
    compute: Compute,
    first: object,
    target: object,
    *,
    name: str,
    categorical: bool,
    return_grad: bool,
    out: object,
    options: dict[str, Any],
) -> Any:
    """Run `compute` on NumPy inputs, or on Dask inputs chunk by chunk, and shape the result."""
    if out is not None and not return_grad:
        msg = "out receives the gradient and needs return_grad=True"
        raise ValueError(msg)
    if uses_dask(first, target, *options.values()):
        from ._dask import evaluate_on_dask  # noqa: PLC0415  (Dask is optional)

        return evaluate_on_dask(
            compute,
            first,
            target,
            name=name,
            categorical=categorical,
            return_grad=return_grad,
            out=out,
            options=options,
        )
    outcome = compute(first, target, return_grad=return_grad, out=out, **options)
    return (outcome.loss, outcome.grad) if return_grad else outcome.loss
