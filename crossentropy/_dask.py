"""The losses on Dask arrays: the NumPy path on every chunk, combined lazily.

Imported only when an argument is a Dask array, so that Dask stays optional.
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np

from ._dispatch import Compute, Outcome
from ._reduction import gradient_scale, reduce_sum
from ._threads import num_threads
from ._validation import (
    Reduction,
    as_computation_array,
    broadcast_argument,
    check_axis,
    check_class_weight,
    check_eps,
    check_ignore_index,
    check_label_smoothing,
    check_reduction,
)

__all__ = ["evaluate_on_dask"]

# Options that hold one value per element of the batch (or, for the binary losses,
# of the input): they are cut into the same chunks as the batch.
_PER_ELEMENT = ("sample_weight", "where", "pos_weight")


def _evaluate_chunk(
    first: Any,
    target: Any,
    *per_element: Any,
    compute: Compute,
    per_element_names: tuple[str, ...],
    options: dict[str, Any],
    return_grad: bool,
) -> Outcome:
    """Run the NumPy path on one chunk, on one thread: Dask spreads chunks over cores."""
    with num_threads(1):
        return compute(
            first,
            target,
            return_grad=return_grad,
            out=None,
            **options,
            **dict(zip(per_element_names, per_element, strict=True)),
        )


def _loss_of(outcome: Outcome | list[Outcome]) -> Any:
    """Return a chunk's per-element losses (in a list when the class axis is dropped)."""
    if isinstance(outcome, list):
        (outcome,) = outcome
    return outcome.loss


def _grad_of(outcome: Outcome) -> Any:
    """Return the gradient of a chunk."""
    return outcome.grad


def _reduce_pair(pair: Any, reduction: Reduction, dtype: np.dtype[Any]) -> Any:
    """Return the reduced loss from the global ``(sum, D)``, as a 0-d array."""
    return np.asarray(reduce_sum(float(pair[0]), reduction, float(pair[1]), dtype))


def _scale_of_pair(pair: Any, dtype: np.dtype[Any]) -> Any:
    """Return the factor of the gradient of the mean from the global ``(sum, D)``."""
    return np.asarray(gradient_scale("mean", float(pair[1])), dtype=dtype)


def _sum_and_total(outcome: Outcome, ndim: int) -> Any:
    """Return a chunk's float64 loss sum and weight ``D``, shaped (1, ..., 1, 2)."""
    summed = np.sum(outcome.loss, dtype=np.float64)
    return np.array([summed, outcome.total], dtype=np.float64).reshape((1,) * ndim + (2,))


def evaluate_on_dask(
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
    """Evaluate a loss on Dask arrays; return lazy results (see the README, Scaling out).

    The class axis is rechunked into one chunk. Every other array argument is cut into
    the chunks of the batch. Each chunk runs the NumPy path with ``reduction="none"``
    (whose gradient is that of the sum); the float64 sums and the total weights ``D``
    of the chunks are added as a tree, and the mean divides the global sum by the
    global ``D``.
    """
    if out is not None:
        msg = "out is not supported with Dask arrays: the gradient is a lazy Dask array"
        raise TypeError(msg)
    options = dict(options)
    reduction = check_reduction(options.pop("reduction"))
    x = da.asarray(first)
    dtype = as_computation_array(np.empty(0, dtype=x.dtype), name).dtype
    y = da.asarray(target)
    # Options that need no data are checked now; the data, chunk by chunk, on compute.
    check_label_smoothing(options["label_smoothing"])
    if "eps" in options:
        check_eps(options["eps"], dtype)

    if categorical:
        if x.ndim == 0:
            msg = f"{name} must have at least one dimension, the class axis; got a 0-d array"
            raise ValueError(msg)
        axis = check_axis(options["axis"], x.ndim)
        options["axis"] = axis
        x = x.rechunk({axis: -1})
        batch_shape = x.shape[:axis] + x.shape[axis + 1 :]
        batch_chunks = x.chunks[:axis] + x.chunks[axis + 1 :]
        labels = y.dtype.kind in "iu"
        expected = batch_shape if labels else x.shape
        if y.shape != expected:
            kind = "class indices" if labels else "class probabilities"
            msg = (
                f"target holds {kind} and must have shape {expected} for {name} of shape "
                f"{x.shape} with the class axis {axis}, got shape {y.shape}"
            )
            raise ValueError(msg)
        y = y.rechunk(batch_chunks if labels else x.chunks)
        ignore_index = check_ignore_index(options["ignore_index"])
        if ignore_index is not None and not labels:
            msg = (
                f"ignore_index={ignore_index} needs integer class indices as target, "
                "got class probabilities"
            )
            raise ValueError(msg)
        class_weight = options["class_weight"]
        if isinstance(class_weight, da.Array):
            class_weight = class_weight.compute()
        options["class_weight"] = check_class_weight(class_weight, x.shape[axis], dtype)
    else:
        axis = None
        batch_shape, batch_chunks = x.shape, x.chunks
        if y.shape != x.shape:
            msg = f"target must have the input's shape {x.shape}, got shape {y.shape}"
            raise ValueError(msg)
        y = y.rechunk(x.chunks)

    letters = "abcdefghijklmnopqrstuvwxyz"[: x.ndim]
    batch_letters = "".join(c for d, c in enumerate(letters) if d != axis)
    arguments: list[Any] = [x, letters, y, letters if y.ndim == x.ndim else batch_letters]
    names = []
    for key in _PER_ELEMENT:
        if options.get(key) is not None:
            what = "batch shape" if categorical else "input shape"
            value = broadcast_argument(
                da.asarray(options.pop(key)), key, batch_shape, what, da.broadcast_to
            )
            arguments += [value.rechunk(batch_chunks), batch_letters]
            names.append(key)
    # One task per chunk, whose result is the chunk's Outcome; the loss, the sums and
    # the gradient are then taken out of it, so that each chunk is computed once.
    outcomes = da.blockwise(
        _evaluate_chunk,
        letters,
        *arguments,
        compute=compute,
        per_element_names=tuple(names),
        options={**options, "reduction": "none"},
        return_grad=return_grad,
        meta=np.empty((0,) * x.ndim, dtype=object),
        concatenate=True,
    )
    if reduction == "none":
        loss = da.blockwise(
            _loss_of,
            batch_letters,
            outcomes,
            letters,
            concatenate=False,
            meta=np.empty((0,) * len(batch_shape), dtype=dtype),
        )
    else:
        parts = outcomes.map_blocks(
            _sum_and_total,
            x.ndim,
            new_axis=x.ndim,
            chunks=(*((1,) * n for n in x.numblocks), (2,)),
            dtype=np.float64,
            meta=np.empty((0,) * (x.ndim + 1), dtype=np.float64),
        )
        # (sum, D) over all chunks, added as a tree, then the one reduction rule.
        pair = parts.sum(axis=tuple(range(x.ndim)))
        loss = pair.map_blocks(
            _reduce_pair, reduction, dtype, drop_axis=0, meta=np.empty((), dtype=dtype)
        )
    if not return_grad:
        return loss
    grad = outcomes.map_blocks(
        _grad_of, chunks=x.chunks, dtype=dtype, meta=np.empty((0,) * x.ndim, dtype=dtype)
    )
    if reduction == "mean":
        grad = grad * pair.map_blocks(
            _scale_of_pair, dtype, drop_axis=0, meta=np.empty((), dtype=dtype)
        )
    return loss, grad
