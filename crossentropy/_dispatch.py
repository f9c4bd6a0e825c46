"""The path every public loss takes: NumPy arrays to ``_prepare``, Dask arrays to ``_dask``."""

from __future__ import annotations

import sys
from typing import Any, Literal, overload

from ._prepare import Loss, evaluate_numpy, evaluate_plain
from ._types import FloatArray, LossResult, LossValue
from ._validation import check_return_flag

__all__ = ["evaluate", "uses_dask"]


def uses_dask(*values: object) -> bool:
    """Return whether any of `values` is a Dask array (without importing Dask)."""
    dask_array = sys.modules.get("dask.array")
    if dask_array is None:
        return False
    return any(isinstance(value, dask_array.Array) for value in values)


@overload
def evaluate(
    loss: Loss,
    first: object,
    target: object,
    *,
    return_grad: Literal[False],
    out: object,
    options: dict[str, Any],
    return_hess: Literal[False] = ...,
) -> LossValue: ...


@overload
def evaluate(
    loss: Loss,
    first: object,
    target: object,
    *,
    return_grad: object,
    out: object,
    options: dict[str, Any],
    return_hess: Literal[False] = ...,
) -> LossValue | tuple[LossValue, FloatArray]: ...


@overload
def evaluate(
    loss: Loss,
    first: object,
    target: object,
    *,
    return_grad: object,
    out: object,
    options: dict[str, Any],
    return_hess: object = ...,
) -> LossResult: ...


def evaluate(
    loss: Loss,
    first: object,
    target: object,
    *,
    return_grad: object,
    out: object,
    options: dict[str, Any],
    return_hess: object = False,
) -> LossResult:
    """Evaluate `loss` on NumPy or Dask arguments.

    Return the loss, ``(loss, grad)``, or with `return_hess` (whatever `return_grad`)
    ``(loss, grad, hess)``. On Dask arguments, Dask arrays take the places that the
    annotations (which describe NumPy arguments) give to NumPy scalars and arrays.
    """
    with_grad = check_return_flag(return_grad, "return_grad")
    with_hess = check_return_flag(return_hess, "return_hess")
    with_grad = with_grad or with_hess
    if out is not None and not with_grad:
        msg = "out receives the gradient and needs return_grad=True"
        raise ValueError(msg)
    if not with_hess:
        plain = evaluate_plain(loss, first, target, return_grad=with_grad, out=out, options=options)
        if plain is not None:
            return (plain.loss, plain.grad) if with_grad else plain.loss
    if uses_dask(first, target, *options.values()):
        from ._dask import evaluate_on_dask  # noqa: PLC0415  (Dask is optional)

        lazy: LossResult = evaluate_on_dask(
            loss,
            first,
            target,
            return_grad=with_grad,
            return_hess=with_hess,
            out=out,
            options=options,
        )
        return lazy
    outcome = evaluate_numpy(
        loss,
        first,
        target,
        return_grad=with_grad,
        return_hess=with_hess,
        out=out,
        options=options,
    )
    if with_hess:
        return outcome.loss, outcome.grad, outcome.hess
    return (outcome.loss, outcome.grad) if with_grad else outcome.loss
