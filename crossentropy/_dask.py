"""The losses on Dask arrays: the NumPy path on every chunk, combined lazily.

Imported only when an argument is a Dask array, so that Dask stays optional.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import dask.array as da
import numpy as np
from dask.base import compute, tokenize
from dask.delayed import delayed
from dask.highlevelgraph import HighLevelGraph

from ._prepare import Loss, Plan, balance_totals, balanced_weight, evaluate_numpy, make_plan
from ._reduction import gradient_scale, reduce_sum
from ._threads import num_threads
from ._types import Outcome, Reduction
from ._validation import (
    broadcast_argument,
    check_class_weight,
    check_real_dtype,
    check_where_dtype,
)

__all__ = ["evaluate_on_dask"]

# Options that hold one value per element of the batch (or, for the binary losses,
# of the input): they are cut into the same chunks as the batch.
_PER_ELEMENT = ("sample_weight", "where", "pos_weight")


# A mean or sum adds the chunks' (sum, D) pairs in groups of this many, as a tree.
_SPLIT_EVERY = 16


def _evaluate_chunk(
    first: Any,
    target: Any,
    *per_element: Any,
    loss: Loss,
    per_element_names: tuple[str, ...],
    options: dict[str, Any],
    return_grad: bool,
    return_hess: bool,
    part: str,
) -> Any:
    """Run the NumPy path on one chunk, on one thread: Dask spreads chunks over cores.

    The chunk's losses are those of ``reduction="none"`` (whose gradient is that of the
    sum). `part` says what the task returns: ``"loss"`` the losses, ``"pair"`` their
    float64 sum and the weight ``D``, ``"outcome"`` the whole `Outcome`.
    """
    with num_threads(1):
        outcome = evaluate_numpy(
            loss,
            first,
            target,
            return_grad=return_grad,
            return_hess=return_hess,
            out=None,
            options={**options, **dict(zip(per_element_names, per_element, strict=True))},
        )
    if part == "loss":
        return outcome.loss
    if part == "pair":
        return _pair_of(outcome)
    return outcome


def _chunk_totals(
    first: Any,
    target: Any,
    *per_element: Any,
    loss: Loss,
    per_element_names: tuple[str, ...],
    options: dict[str, Any],
    dtype: Any,
) -> Any:
    """Return the totals that "balanced" weights are made of, for one chunk.

    `first` is the chunk of the input, or only its shape: a stand-in of zeros then
    takes its place, as only its shape is read.
    """
    if isinstance(first, tuple):
        first = np.broadcast_to(np.zeros((), dtype), first)
    with num_threads(1):
        return balance_totals(
            loss,
            first,
            target,
            options={**options, **dict(zip(per_element_names, per_element, strict=True))},
        )


def _balanced_weight(
    loss: Loss, plan: Plan, inputs: list[Any], names: list[str], options: dict[str, Any]
) -> Any:
    """Compute ``class_weight="balanced"`` or ``pos_weight="balanced"`` now.

    One task per chunk reads the target and the per-element options (and the input
    only if it is a masked array: otherwise a stand-in of the chunk's shape), and the
    chunks' totals are added here, so that the weights are those of the whole array.
    """
    x, *others = inputs
    first_pieces = x.to_delayed() if isinstance(x._meta, np.ma.MaskedArray) else None
    pieces = [array.to_delayed() for array in others]
    task = delayed(
        partial(
            _chunk_totals,
            loss=loss,
            per_element_names=tuple(names),
            options={**options, "reduction": "none"},
            dtype=x.dtype,
        ),
        pure=True,
    )
    blocks = list(np.ndindex(*x.numblocks))
    tasks = []
    for block in blocks:
        batch_block = tuple(i for d, i in enumerate(block) if d != plan.axis)
        first = (
            tuple(chunks[i] for chunks, i in zip(x.chunks, block, strict=True))
            if first_pieces is None
            else first_pieces[block]
        )
        arguments = [
            piece[block if array.ndim == x.ndim else batch_block]
            for piece, array in zip(pieces, others, strict=True)
        ]
        tasks.append(task(first, *arguments))
    totals = compute(*tasks)
    if plan.axis is not None or len(plan.shape) < 2:
        combined = np.sum(totals, axis=0)
    else:
        # Binary, one weight per label of the last axis: each chunk holds some labels.
        combined = np.zeros((2, plan.shape[-1]))
        edges = np.cumsum((0, *x.chunks[-1]))
        for block, chunk_totals in zip(blocks, totals, strict=True):
            combined[:, edges[block[-1]] : edges[block[-1] + 1]] += chunk_totals
    return balanced_weight(plan, combined)


def _pair_of(outcome: Outcome) -> tuple[float, float]:
    """Return a chunk's float64 loss sum and its weight ``D``."""
    return float(np.sum(outcome.loss, dtype=np.float64)), float(outcome.total)


def _loss_of(outcome: Outcome) -> Any:
    """Return a chunk's per-element losses."""
    return outcome.loss


def _add_pairs(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    """Return the sum of (sum, D) pairs."""
    return sum(pair[0] for pair in pairs), sum(pair[1] for pair in pairs)


def _reduce_pairs(pairs: list[tuple[float, float]], reduction: Reduction, dtype: Any) -> Any:
    """Return the reduced loss from the last pairs of the tree, as a 0-d array."""
    summed, total = _add_pairs(pairs)
    return np.asarray(reduce_sum(summed, reduction, total, dtype))


def _grad_of(outcome: Outcome, field: str) -> Any:
    """Return a chunk's gradient or Hessian diagonal (`field`), that of its losses' sum."""
    return getattr(outcome, field)


def _mean_grad_of(outcome: Outcome, field: str, pair: tuple[float, float]) -> Any:
    """Return a chunk's gradient or Hessian diagonal of the mean: the sum's over ``D``."""
    grad = getattr(outcome, field)
    return np.multiply(grad, gradient_scale("mean", pair[1], None, grad.dtype), dtype=grad.dtype)


def _lazy(name: str, layer: dict[Any, Any], needs: list[Any], chunks: Any, dtype: Any) -> Any:
    """Return a Dask array of the tasks in `layer`, whose output keys start with `name`."""
    graph = HighLevelGraph.from_collections(name, layer, dependencies=needs)
    meta = np.empty((0,) * len(chunks), dtype=dtype)
    return da.Array(graph, name, chunks=chunks, dtype=dtype, meta=meta)


def _tree(keys: list[Any], name: str, layer: dict[Any, Any]) -> list[Any]:
    """Add tasks to `layer` that add the pairs of `keys` in groups; return the last keys.

    The last keys, at most ``_SPLIT_EVERY`` of them, are left for the task that needs
    the global sum and ``D``.
    """
    level = 0
    while len(keys) > _SPLIT_EVERY:
        groups = [keys[i : i + _SPLIT_EVERY] for i in range(0, len(keys), _SPLIT_EVERY)]
        keys = [(f"{name}-{level}", i) for i in range(len(groups))]
        for key, group in zip(keys, groups, strict=True):
            layer[key] = (_add_pairs, group)
        level += 1
    return keys


def evaluate_on_dask(
    loss: Loss,
    first: object,
    target: object,
    *,
    return_grad: bool,
    out: object,
    options: dict[str, Any],
    return_hess: bool = False,
) -> Any:
    """Evaluate a loss on Dask arrays; return lazy results (see the README, Scaling out).

    The class axis is rechunked into one chunk. Every other array argument is cut into
    the chunks of the batch. Each chunk runs the NumPy path with ``reduction="none"``
    (whose gradient is that of the sum) in one task; the float64 sums and the total
    weights ``D`` of the chunks are added as a tree, and the mean divides the global
    sum by the global ``D``. What needs no data is checked at once, by the same
    :func:`make_plan` as the NumPy path; the data, chunk by chunk, on compute.

    The graph is written out task by task rather than composed from Dask's array
    operations: one task per chunk and a few to add the pairs is all the work needs,
    and every extra layer costs scheduling time on each call. With `return_grad` the
    chunk tasks return the whole `Outcome`, which the loss and the gradient share, so
    that computing both together runs every chunk once; only small (sum, D) pairs
    travel between workers, never a chunk's gradient. `return_hess` (which implies
    `return_grad`) adds the diagonal of the Hessian, built like the gradient.

    ``class_weight="balanced"`` and ``pos_weight="balanced"`` need totals over the whole
    target: they are computed at once, one task per chunk that reads the target and the
    per-element options (not the input, unless it is a masked array), so that the call
    returns lazy results of the NumPy path given those weights.
    """
    if out is not None:
        msg = "out is not supported with Dask arrays: the gradient is a lazy Dask array"
        raise TypeError(msg)
    x = da.asarray(first)
    y = da.asarray(target)
    check_real_dtype(x, loss.name)
    check_real_dtype(y, "target")
    plan = make_plan(loss, x.shape, x.dtype, y.shape, y.dtype, options=options)
    if x.dtype.kind in "biu":
        x = x.astype(plan.dtype)  # warned about once, here, not again in every chunk
    reduction = plan.reduction
    dtype = plan.dtype
    axis = plan.axis
    options = {key: value for key, value in options.items() if key != "reduction"}
    if axis is None:
        batch_chunks = x.chunks
        y = y.rechunk(x.chunks)
    else:
        options["axis"] = axis
        x = x.rechunk({axis: -1})
        batch_chunks = x.chunks[:axis] + x.chunks[axis + 1 :]
        y = y.rechunk(batch_chunks if plan.labels else x.chunks)
        class_weight = options["class_weight"]
        if isinstance(class_weight, da.Array):
            class_weight = class_weight.compute()
        if not plan.balanced:
            options["class_weight"] = check_class_weight(class_weight, x.shape[axis], dtype)

    inputs: list[Any] = [x, y]
    names: list[str] = []

    def cut_like_the_batch(key: str, value: Any) -> None:
        # A per-element option becomes an input, in the chunks of the batch.
        value = da.asarray(value)
        if key == "where":
            check_where_dtype(value)
        else:
            check_real_dtype(value, key)
        value = broadcast_argument(value, key, plan.batch_shape, plan.what, da.broadcast_to)
        options[key] = None
        inputs.append(value.rechunk(batch_chunks))
        names.append(key)

    for key in _PER_ELEMENT:
        if options.get(key) is not None and not (key == "pos_weight" and plan.balanced):
            cut_like_the_batch(key, options[key])
    if plan.balanced:
        weight = _balanced_weight(loss, plan, inputs, names, options)
        if axis is None:
            cut_like_the_batch("pos_weight", weight)
        else:
            options["class_weight"] = weight
    # One task per chunk. The class axis is in one chunk (block index 0): an input
    # without it (labels, weights, masks) has the chunk's index without that axis.
    blocks = list(np.ndindex(*x.numblocks))
    batch_blocks = [tuple(i for d, i in enumerate(block) if d != axis) for block in blocks]
    part = "outcome" if return_grad else ("loss" if reduction == "none" else "pair")
    token = tokenize(loss.function, *inputs, names, options, reduction, return_grad, return_hess)
    task = partial(
        _evaluate_chunk,
        loss=loss,
        per_element_names=tuple(names),
        options={**options, "reduction": "none"},
        return_grad=return_grad,
        return_hess=return_hess,
        part=part,
    )
    chunk_name = f"crossentropy-{part}-{token}"
    chunk_keys = [(chunk_name, *block) for block in batch_blocks]
    layer = {
        key: (
            task,
            *((array.name, *(block if array.ndim == x.ndim else batch_block)) for array in inputs),
        )
        for key, block, batch_block in zip(chunk_keys, blocks, batch_blocks, strict=True)
    }
    chunks = _lazy(chunk_name, layer, inputs, batch_chunks, dtype if part == "loss" else object)
    if part == "loss":
        return chunks

    if reduction == "none":
        name = f"crossentropy-loss-{token}"
        layer = {(name, *key[1:]): (_loss_of, key) for key in chunk_keys}
        lazy_loss = _lazy(name, layer, [chunks], batch_chunks, dtype)
    else:
        name = f"crossentropy-{reduction}-{token}"
        layer = {}
        pair_keys = chunk_keys
        if part == "outcome":
            # Each chunk's pair is taken where the chunk is, apart from its gradient.
            pair_keys = [(f"crossentropy-pair-{token}", *key[1:]) for key in chunk_keys]
            layer.update(zip(pair_keys, ((_pair_of, key) for key in chunk_keys), strict=True))
        last = _tree(pair_keys, f"crossentropy-add-{token}", layer)
        layer[(name,)] = (_reduce_pairs, last, reduction, dtype)
        if return_grad and reduction == "mean":
            # The gradient's own total, beside the loss rather than before it: a loss
            # computed alone then has no single-input task that Dask would fuse away.
            total_key = (f"crossentropy-total-{token}",)
            layer[total_key] = (_add_pairs, last)
        lazy_loss = _lazy(name, layer, [chunks], (), dtype)
    if not return_grad:
        return lazy_loss

    derivatives = []
    for field in ("grad", "hess") if return_hess else ("grad",):
        name = f"crossentropy-{field}-{token}"
        if reduction == "mean":
            layer = {
                (name, *block): (_mean_grad_of, key, field, total_key)
                for key, block in zip(chunk_keys, blocks, strict=True)
            }
            needs = [chunks, lazy_loss]
        else:
            layer = {
                (name, *block): (_grad_of, key, field)
                for key, block in zip(chunk_keys, blocks, strict=True)
            }
            needs = [chunks]
        derivatives.append(_lazy(name, layer, needs, x.chunks, dtype))
    return (lazy_loss, *derivatives)
