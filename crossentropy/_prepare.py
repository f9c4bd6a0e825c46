"""One preparation step for every loss: check the arguments, lay them out, weigh them.

A loss is described once (:class:`Loss`: binary or categorical, from logits or from
probabilities, and its kernel). :func:`make_plan` checks everything that needs no data
(options, shapes, dtypes) and is shared with the Dask path, so that both raise the same
errors; :func:`prepare` then checks the data and lays a call out as a frozen
:class:`Prepared`: the input as rows (``(N, C)`` with the classes last, or the ``N``
elements of a binary loss), the targets, which rows count and with what weight, the
total weight ``D``, and the output views the gradient is written through. A kernel
reads a :class:`Prepared` and returns per-row losses; :func:`evaluate_numpy` reduces
them. Adding a loss means a kernel and a public function, not another copy of this.

The targets are checked by :func:`count_targets` and weighed by :func:`weigh_targets`,
once per call: the fused linear layer (``_linear.py``) uses both too, for a batch whose
logits it forms a tile at a time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

import numpy as np

from ._reduction import (
    SAFE_TOTALS,
    gradient_scale,
    power_of_two_exponent,
    reduce_kernel_result,
    smoothing,
    total_weight,
)
from ._threads import run_in_ranges, scratch
from ._types import BoolArray, FloatArray, Outcome, Reduction
from ._validation import (
    as_real_array,
    check_axis,
    check_balanced,
    check_binary_target,
    check_class_weight,
    check_eps,
    check_focal,
    check_ignore_index,
    check_label_smoothing,
    check_out,
    check_reduction,
    check_softcap,
    check_unit_interval,
    check_weight,
    check_where,
    check_z_loss,
    computation_dtype,
    rows_off_one,
    unmasked,
    value_bounds,
    warn_if_integer_probabilities,
    warn_rows_off_one,
)

__all__ = [
    "Broadcast",
    "Counted",
    "Lane",
    "Loss",
    "PlainCall",
    "Plan",
    "Prepared",
    "RowParts",
    "RowWeight",
    "SafeLabels",
    "Unfit",
    "Weights",
    "balance_totals",
    "balanced_weight",
    "broadcast_part",
    "buffered_part",
    "count_targets",
    "evaluate_numpy",
    "evaluate_plain",
    "flat",
    "in_blocks",
    "inside_unit_interval",
    "labels_in_range",
    "lane_outputs",
    "make_plan",
    "part",
    "plain_call",
    "prepare",
    "run_lane",
    "run_lane_blocks",
    "weigh_targets",
    "weighted_product",
    "whole",
]

# Elements checked or weighed at a time: a block of rows stays in the cache for its row
# sums, minimum and maximum, and its parts of the weights and masks are small.
_CHECK_BLOCK = 1 << 14
_LARGE_BLOCK = 1 << 16
_Result = TypeVar("_Result")
# A kernel that reads class-major blocks (see Prepared) gets them up to this many
# classes, when the run of each class along the trailing axes is at least this long:
# shorter runs make blocks too small for the cost of a NumPy call, and more classes
# make each reduction over them a long series of short ones. Other calls get rows.
_MAX_CLASS_MAJOR_CLASSES = 1024
_MIN_CLASS_MAJOR_RUN = 256


def weighted_product(weight: Any, values: Any, out: Any = None) -> Any:
    """Return ``weight * values``, with exactly 0 where `weight` is 0 (also for inf values).

    A scalar weight of 1 returns `values` itself. Otherwise, with `out` (which may be
    `values`, of the product's dtype), the product is written there.
    """
    if np.ndim(weight) == 0 and weight == 1:
        return values
    with np.errstate(invalid="ignore"):
        product = np.multiply(weight, values, out=out)
    if np.ndim(weight) == 0:
        if weight != 0:
            return product
        if out is None:
            return np.zeros_like(product)
        product[...] = 0
        return product
    if not (weight.all() if isinstance(weight, np.ndarray) else np.all(weight)):
        product[np.broadcast_to(weight == 0, product.shape)] = 0
    return product


# -- Per-row values formed a block at a time ------------------------------------------------
#
# Weights and masks that broadcast against the input are kept as the caller's arrays
# (views): a kernel forms the rows of a block when it runs it, and nothing of the input's
# size is made for an option.


def broadcast_part(
    array: np.ndarray[Any, Any],
    shape: tuple[int, ...],
    start: int,
    stop: int,
    out: np.ndarray[Any, Any] | None = None,
) -> np.ndarray[Any, Any]:
    """Return elements ``start:stop`` of `array` broadcast to `shape`, flat in C order.

    Only those elements are copied (into `out` if given, converted to its dtype), in
    at most two pieces per axis; `array` of the shape, C-contiguous and of the dtype
    asked for, gives a view of its own elements instead. Read the result, never write it.
    """
    if (
        array.shape == shape
        and array.flags.c_contiguous
        and (out is None or out.dtype == array.dtype)
    ):
        return array.reshape(-1)[start:stop]
    out = np.empty(stop - start, dtype=array.dtype) if out is None else out[: stop - start]
    _copy_range(np.broadcast_to(array, shape), start, stop, out)
    return out


def _copy_range(
    view: np.ndarray[Any, Any], start: int, stop: int, out: np.ndarray[Any, Any]
) -> None:
    """Copy elements ``start:stop`` of `view`, flat in C order, into `out`."""
    if stop <= start:
        return
    if view.ndim <= 1:
        np.copyto(out, view.reshape(-1)[start:stop], casting="unsafe")
        return
    inner = math.prod(view.shape[1:])
    first, head = divmod(start, inner)
    last, tail = divmod(stop, inner)
    if first == last:
        _copy_range(view[first], head, tail, out)
        return
    done = 0
    if head:
        done = inner - head
        _copy_range(view[first], head, inner, out[:done])
        first += 1
    if last > first:
        count = (last - first) * inner
        whole = out[done : done + count].reshape((last - first, *view.shape[1:]))
        np.copyto(whole, view[first:last], casting="unsafe")
        done += count
    if tail:
        _copy_range(view[last], 0, tail, out[done:])


class RowParts:
    """Flat per-row values (per element, for a binary loss), formed a block at a time.

    :meth:`part` returns rows ``start:stop``: into `out` when given (a work buffer of
    the block's length at least), else as a new array. Read a part, never write it: it
    may be a view of the caller's array.
    """

    size: int
    dtype: np.dtype[Any]

    def part(
        self, start: int, stop: int, out: np.ndarray[Any, Any] | None = None
    ) -> np.ndarray[Any, Any]:
        """Return rows ``start:stop``."""
        raise NotImplementedError

    def whole(self) -> np.ndarray[Any, Any]:
        """Return every row as one new array (for small calls and messages)."""
        return np.array(self.part(0, self.size))

    def __len__(self) -> int:
        return self.size


class Broadcast(RowParts):
    """The caller's array broadcast to `shape`, in `dtype` (its own dtype for None)."""

    def __init__(
        self, array: np.ndarray[Any, Any], shape: tuple[int, ...], dtype: Any = None
    ) -> None:
        self.array = array
        self.shape = shape
        self.size = math.prod(shape)
        self.dtype = array.dtype if dtype is None else np.dtype(dtype)

    def part(
        self, start: int, stop: int, out: np.ndarray[Any, Any] | None = None
    ) -> np.ndarray[Any, Any]:
        if out is None and self.dtype != self.array.dtype:
            out = np.empty(stop - start, dtype=self.dtype)
        values = broadcast_part(self.array, self.shape, start, stop, out)
        if values.dtype != self.dtype:
            return values.astype(self.dtype)
        return values


def flat(array: np.ndarray[Any, Any]) -> Any:
    """Return `array` as flat elements: a view where it is C-contiguous, else parts of it."""
    if array.flags.c_contiguous:
        return array.reshape(-1)
    return Broadcast(array, array.shape)


class Counted(RowParts):
    """Which rows count: those every one of `kept` keeps and none of `dropped` drops.

    Both hold flat booleans (arrays or :class:`RowParts`); with `labels` and
    `ignore_index`, rows whose label is `ignore_index` are dropped too.
    """

    def __init__(
        self,
        size: int,
        kept: tuple[Any, ...] = (),
        dropped: tuple[Any, ...] = (),
        labels: Any = None,
        ignore_index: int | None = None,
    ) -> None:
        self.size = size
        self.dtype = np.dtype(np.bool_)
        self.kept = kept
        self.dropped = dropped
        self.labels = labels
        self.ignore_index = ignore_index

    def part(
        self, start: int, stop: int, out: np.ndarray[Any, Any] | None = None
    ) -> np.ndarray[Any, Any]:
        counted = np.ones(stop - start, dtype=np.bool_) if out is None else out[: stop - start]
        counted[...] = True
        for kept in self.kept:
            counted &= buffered_part(kept, start, stop, "counted-part")
        for dropped in self.dropped:
            # Kept and not dropped: a > b for booleans.
            np.greater(counted, buffered_part(dropped, start, stop, "counted-part"), out=counted)
        if self.labels is not None:
            labels = part(self.labels, start, stop)
            counted &= labels != self.ignore_index
        return counted


class SafeLabels(RowParts):
    """Class indices as ``intp``, 0 in the rows that `counted` leaves out."""

    def __init__(self, labels: Any, counted: Counted) -> None:
        self.labels = labels
        self.counted = counted
        self.size = counted.size
        self.dtype = np.dtype(np.intp)

    def part(
        self, start: int, stop: int, out: np.ndarray[Any, Any] | None = None
    ) -> np.ndarray[Any, Any]:
        counted = self.counted.part(
            start, stop, scratch("labels-counted", (stop - start,), np.dtype(np.bool_))
        )
        labels = part(self.labels, start, stop)
        if out is None:
            out = np.empty(stop - start, dtype=np.intp)
        out = out[: stop - start]
        np.multiply(labels, counted, out=out, casting="unsafe")
        return out


class RowWeight(RowParts):
    """Each row's sample weight (1 without), 0 in the rows left out, in `dtype`.

    `sample` is None, a scalar or a :class:`Broadcast`; `exponents` are powers of two
    the weights are divided by, one after the other (see :func:`_rescaled`).
    """

    def __init__(
        self,
        size: int,
        sample: Any,
        counted: Counted | None,
        dtype: np.dtype[Any],
        exponents: tuple[int, ...] = (),
    ) -> None:
        self.size = size
        self.sample = sample
        self.counted = counted
        self.dtype = dtype
        self.exponents = exponents

    def scaled(self, exponent: int) -> RowWeight:
        """Return these weights divided by ``2**exponent``."""
        return RowWeight(
            self.size, self.sample, self.counted, self.dtype, (*self.exponents, exponent)
        )

    def part(
        self, start: int, stop: int, out: np.ndarray[Any, Any] | None = None
    ) -> np.ndarray[Any, Any]:
        n = stop - start
        weight = np.empty(n, dtype=self.dtype) if out is None else out[:n]
        if isinstance(self.sample, RowParts):
            sample = self.sample.part(start, stop, weight)
            if self.counted is None and not self.exponents:
                return sample
            if not np.shares_memory(sample, weight):
                np.copyto(weight, sample, casting="unsafe")
        else:
            weight[...] = 1 if self.sample is None else self.sample
        if self.counted is not None:
            counted = self.counted.part(
                start, stop, scratch("weight-counted", (n,), np.dtype(np.bool_))
            )
            # The weights are finite: times 1 they stay, times 0 they become exactly 0.
            np.multiply(weight, counted, out=weight)
        for exponent in self.exponents:
            np.ldexp(weight, -exponent, out=weight)
        return weight


def part(values: Any, start: int, stop: int | None) -> Any:
    """Return entries ``start:stop`` of a flat per-row array, or a scalar (or None) as it is.

    Of :class:`RowParts`, a new array.
    """
    if values is None:
        return None
    if isinstance(values, RowParts):
        return values.part(start, values.size if stop is None else stop)
    return values if np.ndim(values) == 0 else values[start:stop]


def buffered_part(values: Any, start: int, stop: int, name: str) -> Any:
    """Return :func:`part` of `values`, with the rows of :class:`RowParts` formed in place.

    Into this thread's work buffer `name` (see :func:`scratch`), kept from call to call,
    instead of a new array.
    """
    if isinstance(values, RowParts):
        return values.part(start, stop, scratch(name, (stop - start,), values.dtype))
    return part(values, start, stop)


def whole(values: Any) -> Any:
    """Return flat per-row values as an array (a scalar or None as it is)."""
    return values.whole() if isinstance(values, RowParts) else values


def in_blocks(
    work: Callable[[int, int], _Result],
    n_rows: int,
    elements_per_row: int,
    block: int = _CHECK_BLOCK,
) -> list[_Result]:
    """Return ``work(start, stop)`` of every block of rows, in the order of the rows.

    The blocks (of about `block` elements) are the same for any thread count, so float
    sums of their results, added in this order, do not depend on it. They run on every
    core.
    """
    step = max(1, block // max(elements_per_row, 1))
    n_blocks = -(-n_rows // step)

    def blocks(first: int, last: int) -> list[_Result]:
        return [work(b * step, min(b * step + step, n_rows)) for b in range(first, last)]

    ranges = run_in_ranges(blocks, n_blocks, step * max(elements_per_row, 1))
    return [result for results in ranges for result in results]


# The lane of a loss for plain calls (see :func:`plain_call`): it takes the values and
# targets of a :class:`PlainCall` (rows, class-major, or flat for binary losses), the
# reduction and the array for the gradient (or None), returns what the loss's kernel
# returns, and writes the gradient. It may return None instead: the call then takes the
# general path (whatever it wrote into the gradient is written again there).
Lane = Callable[[FloatArray, Any, Reduction, "FloatArray | None"], Any]


class Unfit(Exception):
    """Raised by a block of a lane that hands its call to the general path."""


def lane_outputs(
    shape: tuple[int, ...], reduction: Reduction, dtype: np.dtype[Any]
) -> tuple[FloatArray | None, Any]:
    """Return a lane's per-row losses (for ``"none"``, else None) and its gradient's factor.

    The factor ``s`` is :func:`gradient_scale`'s for a call of ``N >= 1`` unweighted rows,
    ``1 / N`` for the mean and 1 otherwise, without its checks, which a small call feels.
    """
    losses = np.empty(shape, dtype=dtype) if reduction == "none" else None
    size = math.prod(shape)
    return losses, dtype.type(1.0 / size if reduction == "mean" else 1.0)


def run_lane(
    work: Callable[[int, int], None],
    units: tuple[int, int, int],
    block_sums: list[float],
    losses: Any,
) -> Any:
    """Run a lane's `work` over its ``(count, elements each, granule)`` `units`.

    Returns the per-row `losses` for ``"none"``, else the float64 sum of `block_sums`
    (added with ``math.fsum`` in block order); None where a block raised
    :class:`Unfit`: the call then takes the general path.
    """
    count, elements, granule = units
    try:
        run_in_ranges(work, count, elements, granule=granule)
    except Unfit:
        return None
    return math.fsum(block_sums) if losses is None else losses


def run_lane_blocks(
    compute: Callable[[int, int], float], count: int, block: int, elements: int, losses: Any
) -> Any:
    """Run a lane over `count` rows (or elements) in blocks of `block`, as :func:`run_lane`.

    ``compute(start, stop)`` computes a block and returns the float64 sum of its losses;
    each row holds `elements` elements. Blocks are fixed by `count`, whatever the thread
    count.
    """
    n_blocks = -(-count // block)
    block_sums = [0.0] * n_blocks

    def run_blocks(first: int, last: int) -> None:
        for index in range(first, last):
            start = index * block
            block_sums[index] = compute(start, min(start + block, count))

    return run_lane(run_blocks, (n_blocks, block * elements, 1), block_sums, losses)


@dataclass(frozen=True)
class Loss:
    """One public loss: its name, its first argument, its kind, and its kernel.

    The kernel takes a :class:`Prepared` call and returns either the per-row losses,
    weighted and 0 where left out, as a flat array, or (for ``"mean"`` and ``"sum"``)
    their float64 sum; it fills ``grad_rows`` when a gradient is asked for. ``plain``,
    where a loss has one, computes the same for the calls :func:`plain_call` accepts.
    ``class_major`` says that the kernel also reads class-major calls (see
    :class:`Prepared`); others always get rows.
    """

    function: str
    name: str  # the first argument: "logits" or "probs"
    categorical: bool
    kernel: Callable[[Prepared], Any]
    # The lane of plain calls (see :func:`plain_call`), for a loss that has one.
    plain: Lane | None = None
    class_major: bool = False

    @property
    def from_logits(self) -> bool:
        """Whether the first argument holds logits (else probabilities)."""
        return self.name == "logits"


@dataclass(frozen=True)
class Plan:
    """What a call is, from its shapes, dtypes and options alone (no data is read).

    ``axis`` is the class axis (None for binary losses) and ``batch_shape`` the input
    shape without it; ``labels`` says whether a categorical target holds class indices.
    ``eps`` is the clipping bound of a probability loss (0 for logits); ``gamma`` and
    ``alpha`` are the focusing exponent and the class balance of a focal loss (0 and
    None for a cross-entropy). ``z_loss`` and ``softcap`` are the z-loss factor and the
    logit soft cap of a categorical loss with logits (0 and None: off), which the
    log-sum-exp kernel applies itself. ``balanced`` says whether ``class_weight`` (categorical)
    or ``pos_weight`` (binary) is ``"balanced"``, to be computed from the targets.
    """

    loss: Loss
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    axis: int | None
    batch_shape: tuple[int, ...]
    labels: bool
    reduction: Reduction
    label_smoothing: float
    ignore_index: int | None
    eps: float
    gamma: float = 0.0
    alpha: float | None = None
    z_loss: float = 0.0
    softcap: float | None = None
    balanced: bool = False

    @property
    def n_classes(self) -> int:
        """The number of classes (2 for a binary loss)."""
        return 2 if self.axis is None else self.shape[self.axis]

    @property
    def what(self) -> str:
        """How messages call the shape that weights and masks broadcast against."""
        return "batch shape" if self.loss.categorical else "input shape"


def _axis_hint(shape: tuple[int, ...], target_shape: tuple[int, ...], axis: int) -> str:
    """Return advice naming the class axes for which `target_shape` is the batch shape."""
    fits = [
        k for k in range(len(shape)) if k != axis and shape[:k] + shape[k + 1 :] == target_shape
    ]
    if not fits:
        return ""
    return f"; it is the batch shape for axis={fits[0]} (PyTorch's (N, C, ...) layout is axis=1)"


def _categorical_target_kind(
    loss: Loss,
    shape: tuple[int, ...],
    axis: int,
    target_shape: tuple[int, ...],
    target_dtype: np.dtype[Any],
) -> bool:
    """Check a categorical target's shape and dtype; return whether it holds class indices."""
    name = loss.name
    batch_shape = shape[:axis] + shape[axis + 1 :]
    if target_dtype.kind == "b":
        msg = (
            "target must hold integer class indices or floating class probabilities, "
            f"got dtype bool of shape {target_shape}"
        )
        raise TypeError(msg)
    labels = target_dtype.kind in "iu" or (
        target_dtype.kind == "f" and 0 in target_shape and target_shape == batch_shape
    )
    expected = batch_shape if labels else shape
    if target_shape == expected:
        return labels
    if target_dtype.kind == "f" and target_shape == batch_shape:
        msg = (
            f"target of shape {target_shape} (the batch shape of {name} of shape "
            f"{shape}) is read as class indices, which need an integer dtype, got "
            f"dtype {target_dtype}; pass integer labels, or class probabilities of "
            f"shape {shape}"
        )
    else:
        kind = "class indices" if labels else "class probabilities"
        msg = (
            f"target holds {kind} and must have shape {expected} for {name} of shape "
            f"{shape} with the class axis {axis}, got shape {target_shape}"
        )
        if labels and target_shape == shape:
            msg += (
                "; it has the input's shape: for one-hot rows or other class "
                "probabilities, cast the target to float"
            )
        elif labels:
            msg += _axis_hint(shape, target_shape, axis)
    raise ValueError(msg)


def make_plan(
    loss: Loss,
    shape: tuple[int, ...],
    dtype: np.dtype[Any],
    target_shape: tuple[int, ...],
    target_dtype: np.dtype[Any],
    *,
    options: dict[str, Any],
) -> Plan:
    """Check what needs no data, for NumPy and Dask arguments alike, and describe the call.

    `dtype` is the dtype of the first argument as given; the plan holds the dtype of
    the computation.
    """
    computation = computation_dtype(dtype)
    reduction = check_reduction(options["reduction"])
    label_smoothing = check_label_smoothing(options["label_smoothing"])
    eps = 0.0
    if not loss.from_logits:
        warn_if_integer_probabilities(dtype, loss.function)
        eps = check_eps(options["eps"], computation)
    gamma, alpha = 0.0, None
    if "gamma" in options:
        gamma, alpha = check_focal(options["gamma"], options.get("alpha"))
    z_loss = check_z_loss(options.get("z_loss", 0.0), computation)
    softcap = check_softcap(options.get("softcap"), computation)
    axis = None
    batch_shape = shape
    labels = False
    ignore_index = None
    if loss.categorical:
        if not shape:
            msg = f"{loss.name} must have at least one dimension, the class axis; got a 0-d array"
            raise ValueError(msg)
        axis = check_axis(options["axis"], len(shape))
        if shape[axis] == 0:
            msg = f"{loss.name} must have at least one class along axis {axis}, got shape {shape}"
            raise ValueError(msg)
        batch_shape = shape[:axis] + shape[axis + 1 :]
        ignore_index = check_ignore_index(options["ignore_index"])
        labels = _categorical_target_kind(loss, shape, axis, target_shape, target_dtype)
        if ignore_index is not None and not labels:
            msg = (
                f"ignore_index={ignore_index} needs integer class indices as target, "
                "got class probabilities"
            )
            raise ValueError(msg)
        expected = f"an array of {shape[axis]} weights, one per class index"
        balanced = check_balanced(options["class_weight"], "class_weight", expected)
        if balanced and not labels:
            msg = (
                "class_weight='balanced' counts the class indices of the target and needs "
                f"integer labels of the batch shape {batch_shape}, got class probabilities"
            )
            raise ValueError(msg)
    else:
        if target_shape != shape:
            msg = f"target must have the input's shape {shape}, got shape {target_shape}"
            raise ValueError(msg)
        expected = "an array of weights that broadcasts against the input"
        balanced = check_balanced(options["pos_weight"], "pos_weight", expected)
    return Plan(
        loss=loss,
        shape=shape,
        dtype=computation,
        axis=axis,
        batch_shape=batch_shape,
        labels=labels,
        reduction=reduction,
        label_smoothing=label_smoothing,
        ignore_index=ignore_index,
        eps=eps,
        gamma=gamma,
        alpha=alpha,
        z_loss=z_loss,
        softcap=softcap,
        balanced=balanced,
    )


@dataclass(frozen=True)
class Prepared:
    """A call checked and laid out for a kernel; nothing in it is the caller's to change.

    - ``values``: the input as ``(N, C)`` rows with the classes last (categorical) or
      as its ``N`` elements (binary), in the computation dtype; a view where possible.
    - ``labels``: class indices, or None: flat integers, or :class:`RowParts` (read
      through :func:`part`) that give 0 where left out; kernels read them a block of
      rows at a time. ``target``: the class
      probabilities ``(N, C)`` (categorical) or the binary target, flat as given
      (floats of any dtype, integers, ``uint8`` for bools), or None.
    - ``class_weight`` ``(C,)`` and ``pos_weight`` (a scalar or :class:`RowParts` of
      ``N`` values), or None.
    - ``counted``: False for the rows left out (None: none is), as :class:`RowParts`;
      ``row_weight``: each row's sample weight, 0 where left out (None: all 1; a
      scalar: the same for all), as :class:`RowParts`. Weights and masks stay the
      caller's arrays: a kernel forms the rows of a block with :func:`part`.
    - ``total``: ``D``, the weight the mean divides by.
    - ``grad``: the gradient as the caller gets it; ``grad_rows``: the rows the kernel
      fills, sharing its memory unless it cannot be viewed as C-contiguous rows.
    - ``hess`` and ``hess_rows``: the same for the diagonal of the Hessian (logits
      losses only; None unless asked for). ``hess_rows`` is always C-contiguous.
    - ``class_major``: the rows are laid out as ``(B, C, S)`` instead (for a loss whose
      kernel reads that, see :attr:`Loss.class_major`): ``values``, ``grad_rows`` and
      ``hess_rows`` have that shape, and row ``n = b S + s`` (the same order as the
      ``(N, C)`` rows) is ``values[b, :, s]``. ``B`` is the size of the axes before the
      class axis and ``S`` of those after it: PyTorch's ``(N, C, H, W)`` with
      ``axis=1`` is ``(N, C, H W)``, a view of the input, not a copy with the class axis
      moved last. Per-row arrays (``labels``, ``row_weight``, ...) and the class
      probabilities ``target`` keep the ``(N, C)`` rows' layout.
    """

    plan: Plan
    values: FloatArray
    labels: Any
    target: np.ndarray[Any, Any] | None
    class_weight: FloatArray | None
    pos_weight: Any
    counted: Any
    row_weight: Any
    total: float
    grad: FloatArray | None
    grad_rows: FloatArray | None
    hess: FloatArray | None = None
    hess_rows: FloatArray | None = None
    class_major: bool = False

    @property
    def dtype(self) -> np.dtype[Any]:
        """The computation dtype."""
        return self.plan.dtype

    @property
    def rows_shape(self) -> tuple[int, int]:
        """``(N, C)`` of the rows in ``values``, whatever their layout (categorical only).

        ``C`` is that of ``values``: a tile of the classes (the fused linear layer) has
        fewer than the plan.
        """
        shape = self.values.shape
        if self.class_major:
            return shape[0] * shape[2], shape[1]
        return shape[0], shape[1]

    @property
    def smoothing(self) -> tuple[float, float]:
        """``(1 - eps, eps / n)`` of the label smoothing, ``n`` classes (2 for binary)."""
        return smoothing(self.plan.label_smoothing, self.plan.n_classes)

    def grad_scale(self, start: int = 0, stop: int | None = None, factor: Any = None) -> Any:
        """Return the factor of rows ``start:stop`` of the gradient (a scalar or an array).

        That is ``s / D`` for the mean, ``s`` otherwise; with `factor` (per row, or one
        for all), ``s factor / D``, multiplied and divided in float64.
        """
        weight = part(self.row_weight, start, stop)
        if factor is not None:
            weight = factor if weight is None else np.multiply(weight, factor, dtype=np.float64)
        return gradient_scale(self.plan.reduction, self.total, weight, self.dtype)

    def weigh(self, row_losses: FloatArray) -> FloatArray:
        """Return per-row losses times the row weights, exactly 0 where a weight is 0.

        Row weights held as :class:`RowParts` multiply `row_losses` in place, a block
        of rows at a time.
        """
        weight = self.row_weight
        if weight is None:
            return row_losses
        if not isinstance(weight, RowParts):
            return weighted_product(weight, row_losses)  # type: ignore[no-any-return]
        step = _CHECK_BLOCK
        for start in range(0, row_losses.size, step):
            stop = min(start + step, row_losses.size)
            row_losses[start:stop] = weighted_product(
                weight.part(start, stop), row_losses[start:stop]
            )
        return row_losses

    def outcome(self, losses: Any) -> Outcome:
        """Reduce a kernel's result, finish the gradient, and return both with ``D``."""
        plan = self.plan
        loss = reduce_kernel_result(
            losses, plan.reduction, self.total, plan.batch_shape, self.dtype
        )
        for shaped, rows in ((self.grad, self.grad_rows), (self.hess, self.hess_rows)):
            if shaped is not None and not np.shares_memory(shaped, rows):
                assert rows is not None
                if plan.axis is None or self.class_major:
                    shaped[...] = rows.reshape(plan.shape)
                else:
                    moved = np.moveaxis(shaped, plan.axis, -1)
                    moved[...] = rows.reshape(moved.shape)
        return Outcome(loss, self.grad, self.total, self.hess)


def _rows_left_out(mask: BoolArray, axis: int, name: str) -> BoolArray:
    """Return which rows (flat) a mask leaves out: rows with every class masked.

    `axis` is the class axis of `mask`; the result is one boolean per row.
    """
    every: BoolArray = np.asarray(mask.all(axis=axis)).reshape(-1)
    partly = np.asarray(mask.any(axis=axis)).reshape(-1)
    if np.any(np.not_equal(partly, every, out=partly)):
        msg = (
            f"{name} is a masked array with some but not all classes of a row masked; "
            "mask whole rows (every class) to leave them out"
        )
        raise ValueError(msg)
    return every


def _as_rows(array: np.ndarray[Any, Any], plan: Plan) -> np.ndarray[Any, Any]:
    """Return an input-shaped array as ``(N, C)`` rows (categorical) or flat (binary)."""
    if plan.axis is None:
        return array.reshape(-1)
    return np.moveaxis(array, plan.axis, -1).reshape(-1, plan.n_classes)


def _class_major(array: np.ndarray[Any, Any], plan: Plan) -> np.ndarray[Any, Any] | None:
    """Return an input-shaped array as ``(B, C, S)`` class-major blocks, or None.

    A view, for a C-contiguous array whose class axis has at least
    ``_MIN_CLASS_MAJOR_RUN`` elements after it and at most ``_MAX_CLASS_MAJOR_CLASSES``
    classes, of a loss whose kernel reads that layout (see :class:`Prepared`); None
    for every other call, which gets ``(N, C)`` rows.
    """
    axis = plan.axis
    if axis is None or not plan.loss.class_major or not array.flags.c_contiguous:
        return None
    n_classes = plan.n_classes
    run = math.prod(plan.shape[axis + 1 :])
    if run < _MIN_CLASS_MAJOR_RUN or n_classes > _MAX_CLASS_MAJOR_CLASSES:
        return None
    return array.reshape(math.prod(plan.shape[:axis]), n_classes, run)


def _check_in_blocks(
    plan: Plan, is_valid: Callable[[int, int], bool], check_all: Callable[[], None], per_row: int
) -> None:
    """Run `is_valid` over the blocks of rows of a call; if one fails, `check_all` raises.

    `check_all` checks the whole call at once, to name what is wrong (it may allocate:
    only a call that raises gets there).
    """
    n_rows = math.prod(plan.batch_shape)
    if not all(in_blocks(is_valid, n_rows, per_row)):
        check_all()
        msg = "a block failed a check that the whole call passed"
        raise AssertionError(msg)


def inside_unit_interval(values: np.ndarray[Any, Any], counted: Any) -> bool:
    """Return whether the `counted` values (rows, for ``(n, C)`` values) lie in [0, 1]."""
    if counted is not None:
        values = values[counted]
    if values.size == 0:
        return True
    return bool(values.min() >= 0 and values.max() <= 1)  # NaN fails


def _check_labels(plan: Plan, labels: Any, counted: Counted | None) -> None:
    """Raise unless every counted class index lies in ``[0, C)``."""
    n_classes = plan.n_classes
    if counted is None:
        low, high = value_bounds(labels)
        if labels.size == 0 or (low >= 0 and high < n_classes):
            return
    else:

        def is_valid(start: int, stop: int) -> bool:
            block = part(labels, start, stop)
            counted_block = buffered_part(counted, start, stop, "check-counted")
            if not np.any(counted_block):
                return True
            block = block[counted_block]
            return bool(block.min() >= 0 and block.max() < n_classes)

        if all(in_blocks(is_valid, labels.size, 1)):
            return
    flat_labels = whole(labels)
    outside = (flat_labels < 0) | (flat_labels >= n_classes)
    if counted is not None:
        outside &= counted.whole()
    msg = (
        f"target holds class index {flat_labels[outside].flat[0]}, outside [0, {n_classes}) "
        f"for {n_classes} classes along axis {plan.axis} of {plan.loss.name}"
    )
    if plan.ignore_index is not None:
        msg += f" (ignore_index is {plan.ignore_index})"
    raise ValueError(msg)


def _check_probability_rows(rows: FloatArray, name: str, counted: Any) -> None:
    """Raise unless counted ``(N, C)`` probability rows lie in [0, 1]; warn unless they sum to 1.

    One pass, a block of rows at a time on every core: each block stays in the cache
    for its row sums, minimum and maximum.
    """
    n_rows, n_classes = rows.shape
    ones = np.ones(n_classes, dtype=rows.dtype)

    def check(start: int, stop: int) -> tuple[bool, int, Any]:
        block = rows[start:stop]
        counted_block = buffered_part(counted, start, stop, "check-counted")
        valid = inside_unit_interval(block, counted_block)
        sums = block @ ones
        off, example = rows_off_one(sums, counted_block)
        return valid, off, example

    # Without rows left out a block makes nothing of its size: larger blocks cost less.
    block = _CHECK_BLOCK if counted is not None else _LARGE_BLOCK
    results = in_blocks(check, n_rows, n_classes, block)
    if not all(valid for valid, _, _ in results):
        check_unit_interval(
            rows, name, None if counted is None else whole(counted)[:, None]
        )  # raises, naming a value
        msg = "a block failed a check that the whole call passed"
        raise AssertionError(msg)
    off = sum(count for _, count, _ in results)
    example = next((example for _, count, example in results if count), None)
    warn_rows_off_one(name, off, example, rows.dtype)


def _categorical_target(
    plan: Plan, target: np.ndarray[Any, Any], counted: Counted | None
) -> tuple[Any, Any, Counted | None]:
    """Check a categorical target; return ``(labels, soft_target, counted)``.

    `ignore_index` leaves more rows out: the rows counted come back too. The labels
    are the caller's (flat, a view where possible), wrapped to read 0 where left out.
    """
    n_rows = math.prod(plan.batch_shape)
    if plan.labels:
        labels: Any = target.reshape(-1)  # one per row: a copy only if not contiguous
        if labels.dtype.kind not in "iu":
            labels = labels.astype(np.intp)  # float labels of an empty batch, or log_loss's
        if plan.ignore_index is not None:
            kept = dropped = ()
            if counted is not None:
                kept, dropped = counted.kept, counted.dropped
            counted = Counted(n_rows, kept, dropped, labels, plan.ignore_index)
        _check_labels(plan, labels, counted)
        if counted is not None:
            labels = SafeLabels(labels, counted)
        return labels, None, counted
    soft = _as_rows(target, plan).astype(plan.dtype, copy=False)
    _check_probability_rows(soft, "target", counted)
    return None, soft, counted


def _binary_target(
    plan: Plan, target: np.ndarray[Any, Any], counted: Counted | None
) -> np.ndarray[Any, Any]:
    """Check a binary target; return it flat, as given (bools as ``uint8``)."""
    dtype = plan.dtype
    values = check_binary_target(target, dtype, None) if counted is None else target
    values = values.reshape(-1)  # a view unless the target is not contiguous
    if counted is None or values.dtype.kind == "b":
        return values.view(np.uint8) if values.dtype.kind == "b" else values

    def is_valid(start: int, stop: int) -> bool:
        block = values[start:stop][buffered_part(counted, start, stop, "check-counted")]
        if block.size == 0:
            return True
        low, high = block.min(), block.max()
        if block.dtype.kind == "f":
            low, high = dtype.type(low), dtype.type(high)
        return bool(low >= 0 and high <= 1)

    def check_all() -> None:
        check_binary_target(values, dtype, counted.whole())

    _check_in_blocks(plan, is_valid, check_all, 1)
    return values


def _check_binary_probabilities(plan: Plan, values: FloatArray, counted: Counted | None) -> None:
    """Raise unless the counted probabilities of a binary loss lie in [0, 1]."""
    name = plan.loss.name
    if counted is None:
        check_unit_interval(values, name, None)
        return
    _check_in_blocks(
        plan,
        lambda start, stop: inside_unit_interval(
            values[start:stop], buffered_part(counted, start, stop, "check-counted")
        ),
        lambda: check_unit_interval(values, name, counted.whole()),
        1,
    )


def _largest(row_weight: Any) -> float:
    """Return the largest row weight (0 without rows)."""
    if not isinstance(row_weight, RowParts):
        return float(row_weight)
    highs = in_blocks(
        lambda start, stop: float(np.max(row_weight.part(start, stop), initial=0)),
        row_weight.size,
        1,
    )
    return max(highs, default=0.0)


def _ldexp(row_weight: Any, exponent: int, dtype: np.dtype[Any]) -> Any:
    """Return row weights (None: 1) divided by ``2**exponent``."""
    if isinstance(row_weight, RowWeight):
        return row_weight.scaled(exponent)
    return dtype.type(np.ldexp(1.0 if row_weight is None else row_weight, -exponent))


def _rescaled(
    plan: Plan,
    row_weight: Any,
    class_weight: FloatArray | None,
    weigh_rows: Callable[[Any, FloatArray | None], float],
) -> tuple[Any, FloatArray | None, float]:
    """Return the weights and ``D`` of a mean, scaled by powers of two when ``D`` is extreme.

    Powers of two scale exactly: the mean ``sum s l / D`` and its gradient ``s (...) / D``
    do not change, but ``D``, ``1 / D`` and the weighted losses stay normal numbers.
    """
    total = weigh_rows(row_weight, class_weight)
    low, high = SAFE_TOTALS
    if plan.reduction != "mean" or total == 0 or low <= total <= high:
        return row_weight, class_weight, total
    dtype = plan.dtype
    if class_weight is not None:
        exponent = power_of_two_exponent(float(class_weight.max()))
        class_weight = np.ldexp(class_weight, -exponent, dtype=dtype)
    if row_weight is not None:
        row_weight = _ldexp(row_weight, power_of_two_exponent(_largest(row_weight)), dtype)
    total = weigh_rows(row_weight, class_weight)
    if total != 0 and not low <= total <= high:
        # Scale the row weights so that D is about 1, as far as they stay finite.
        largest = 1.0 if row_weight is None else _largest(row_weight)
        headroom = np.finfo(dtype).maxexp - 4 - power_of_two_exponent(largest)
        exponent = max(power_of_two_exponent(total), -headroom)
        row_weight = _ldexp(row_weight, exponent, dtype)
        total = weigh_rows(row_weight, class_weight)
    return row_weight, class_weight, total


def _gradient_views(
    plan: Plan,
    rows_shape: tuple[int, ...],
    out: object,
    inputs: tuple[object, ...],
    *,
    class_major: bool = False,
) -> tuple[FloatArray, FloatArray]:
    """Return the gradient as the caller gets it and as the rows a kernel fills.

    `rows_shape` is the shape of the values of the call: ``(N, C)`` rows, or with
    `class_major` ``(B, C, S)`` blocks. The two share memory unless `out` cannot be
    viewed as C-contiguous rows (blocks); then the rows are a new array that
    :meth:`Prepared.outcome` copies into it.
    """
    if out is None:
        if class_major:
            grad = np.empty(plan.shape, dtype=plan.dtype)
            return grad, grad.reshape(rows_shape)
        rows = np.empty(rows_shape, dtype=plan.dtype)
        if plan.axis is None:
            return rows.reshape(plan.shape), rows
        batch_rows = rows.reshape((*plan.batch_shape, plan.n_classes))
        return np.moveaxis(batch_rows, -1, plan.axis), rows
    grad = check_out(out, plan.shape, plan.dtype, *inputs)
    if class_major:
        if grad.flags.c_contiguous:
            return grad, grad.reshape(rows_shape)
        return grad, np.empty(rows_shape, dtype=plan.dtype)
    rows = _as_rows(grad, plan)
    if not (np.shares_memory(rows, grad) and rows.flags.c_contiguous):
        rows = np.empty(rows_shape, dtype=plan.dtype)
    return grad, rows


def _left_out_by_masks(
    plan: Plan, first_mask: BoolArray | None, target_mask: BoolArray | None
) -> tuple[Any, ...]:
    """Return the flat booleans of the rows (elements, for a binary loss) masks leave out.

    A binary loss's masks are the caller's, read a block at a time; a categorical
    loss's are reduced over the classes, one boolean per row.
    """
    left_out: tuple[Any, ...] = ()
    if first_mask is not None:
        if plan.axis is None:
            left_out += (flat(first_mask),)
        else:
            left_out += (_rows_left_out(first_mask, plan.axis, plan.loss.name),)
    if target_mask is not None:
        if plan.axis is None or plan.labels:
            left_out += (flat(target_mask),)
        else:
            left_out += (_rows_left_out(target_mask, plan.axis, "target"),)
    return left_out


def _targets_and_weights(
    loss: Loss, first: object, target: object, options: dict[str, Any]
) -> tuple[Plan, np.ndarray[Any, Any], Any, Any, Counted | None, Any]:
    """Check a call up to the values of its first argument; say what counts, and how much.

    Returns ``(plan, array, labels, target, counted, row_weight)``: the first argument
    as a NumPy array (its values neither converted nor checked), the class indices or
    the target laid out as for :class:`Prepared`, which rows count (None: all) and the
    row weights, 0 where left out (None: all 1).
    """
    name = loss.name
    first_data, first_mask = unmasked(first, name)
    target_data, target_mask = unmasked(target, "target")
    array = as_real_array(first_data, name)
    target_array = as_real_array(target_data, "target")
    plan = make_plan(
        loss, array.shape, array.dtype, target_array.shape, target_array.dtype, options=options
    )
    left_out = _left_out_by_masks(plan, first_mask, target_mask)
    labels, soft_target, counted, row_weight = count_targets(
        plan, target_array, options=options, left_out=left_out
    )
    return plan, array, labels, soft_target, counted, row_weight


def _broadcast_weight(
    weight: np.ndarray[Any, Any], shape: tuple[int, ...], dtype: np.dtype[Any]
) -> Any:
    """Return a checked weight broadcast to `shape`: a scalar if it has one value."""
    if weight.size == 1:
        return dtype.type(weight.reshape(-1)[0])
    return Broadcast(weight, shape, dtype)


def count_targets(
    plan: Plan, target: np.ndarray[Any, Any], *, options: dict[str, Any], left_out: Any
) -> tuple[Any, Any, Counted | None, Any]:
    """Check the target, ``where`` and the sample weights of a call of `plan`.

    `target` is the target as a real array (masked entries as they are), `left_out`
    the rows (elements, for a binary loss) that masked arrays leave out: None, flat
    booleans, or a tuple of them. Returns ``(labels, target, counted, row_weight)``:
    the class indices or the target laid out as for :class:`Prepared`, which rows
    count (None: all) and the row weights, 0 where left out (None: all 1; a scalar:
    the same for all), neither made whole.
    """
    n_rows = math.prod(plan.batch_shape)
    where = check_where(options["where"], plan.batch_shape, plan.what)
    kept: tuple[Any, ...] = () if where is None else (Broadcast(where, plan.batch_shape),)
    if left_out is None:
        left_out = ()
    elif not isinstance(left_out, tuple):
        left_out = (left_out,)
    counted = Counted(n_rows, kept, left_out) if kept or left_out else None
    labels = soft_target = None
    if plan.loss.categorical:
        labels, soft_target, counted = _categorical_target(plan, target, counted)
    else:
        soft_target = _binary_target(plan, target, counted)
    sample: Any = None
    if options["sample_weight"] is not None:
        sample = check_weight(
            options["sample_weight"], "sample_weight", plan.batch_shape, plan.what, plan.dtype
        )
        sample = _broadcast_weight(sample, plan.batch_shape, plan.dtype)
    row_weight = sample
    if counted is not None or isinstance(sample, RowParts):
        row_weight = RowWeight(n_rows, sample, counted, plan.dtype)
    return labels, soft_target, counted, row_weight


def _summed_in_ranges(
    add: Callable[[int, int, np.ndarray[Any, Any]], None],
    shape: tuple[int, ...],
    n_rows: int,
    elements_per_row: int,
) -> np.ndarray[Any, Any]:
    """Return the float64 totals of `shape` that ``add(start, stop, totals)`` adds up.

    Each range of rows (on every core) adds its blocks into totals of its own; the
    ranges' totals are then added in the order of the rows.
    """
    step = max(1, _CHECK_BLOCK // max(elements_per_row, 1))

    def add_range(start: int, stop: int) -> np.ndarray[Any, Any]:
        totals = np.zeros(shape)
        for begin in range(start, stop, step):
            add(begin, min(begin + step, stop), totals)
        return totals

    return np.sum(run_in_ranges(add_range, n_rows, elements_per_row), axis=0)  # type: ignore[no-any-return]


def _totals(plan: Plan, labels: Any, target: Any, row_weight: Any) -> np.ndarray[Any, Any]:
    """Return the float64 totals that ``"balanced"`` weights are made of.

    Each element counted weighs its sample weight (1 without). Categorical: the total
    weight of each class among the targets, shape ``(C,)``. Binary: the totals of ``t``
    and of ``1 - t`` (the unsmoothed target) of each label, shape ``(2, K)`` for the
    ``K`` labels of the last axis, or ``(2,)`` for a 0-d or 1-d input (one label).
    Computed a block of rows at a time.
    """
    if plan.loss.categorical:
        n_classes = plan.n_classes

        def count(start: int, stop: int, totals: np.ndarray[Any, Any]) -> None:
            weight = part(row_weight, start, stop)
            block = np.asarray(part(labels, start, stop))
            if weight is not None and np.ndim(weight) == 0:
                totals += np.bincount(block, minlength=n_classes) * float(weight)
            else:
                totals += np.bincount(block, weights=weight, minlength=n_classes)

        return _summed_in_ranges(count, (n_classes,), math.prod(plan.batch_shape), 1)
    labels_shape = plan.shape[-1:] if len(plan.shape) >= 2 else ()
    columns = max(1, math.prod(labels_shape))
    dtype = plan.dtype

    def add(start: int, stop: int, totals: np.ndarray[Any, Any]) -> None:
        first, last = start * columns, stop * columns
        values = np.asarray(part(target, first, last))
        if values.dtype.kind == "f":
            values = values.astype(dtype, copy=False)  # as the kernel reads it
        positive = values.astype(np.float64).reshape(-1, columns)
        negative = 1 - positive
        weight = part(row_weight, first, last)
        if weight is not None:
            weight = np.asarray(weight)
            if weight.ndim:
                weight = weight.reshape(-1, columns)
            # Elements left out weigh 0, and their targets may be anything, NaN included.
            positive = weighted_product(weight, positive)
            negative = weighted_product(weight, negative)
        totals[0] += positive.sum(axis=0)
        totals[1] += negative.sum(axis=0)

    n_label_rows = math.prod(plan.shape) // columns
    totals = _summed_in_ranges(add, (2, columns), n_label_rows, columns)
    return totals.reshape((2, *labels_shape))


def balance_totals(
    loss: Loss, first: object, target: object, *, options: dict[str, Any]
) -> np.ndarray[Any, Any]:
    """Return the totals of :func:`balanced_weight` for one call (on Dask, one chunk).

    Only the shape, dtype and mask of `first` are read.
    """
    plan, _, labels, soft_target, _, row_weight = _targets_and_weights(loss, first, target, options)
    return _totals(plan, labels, soft_target, row_weight)


def balanced_weight(plan: Plan, totals: np.ndarray[Any, Any]) -> FloatArray:
    """Return what ``"balanced"`` means for the totals of a whole call, in its dtype.

    Categorical (``class_weight``): ``n / (C n_c)`` with ``n_c`` the weight of class
    ``c`` and ``n`` that of all classes, as scikit-learn's ``compute_class_weight``; 0
    for a class that no element counted has. Binary (``pos_weight``): negatives over
    positives of each label, 1 for a label without positives or without negatives.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        if plan.loss.categorical:
            n_classes = plan.n_classes
            weight = np.where(totals > 0, totals.sum() / (n_classes * totals), 0.0)
        else:
            positive, negative = totals
            weight = np.where((positive > 0) & (negative > 0), negative / positive, 1.0)
    return weight.astype(plan.dtype)


def prepare(
    loss: Loss,
    first: object,
    target: object,
    *,
    return_grad: bool,
    out: object,
    options: dict[str, Any],
    return_hess: bool = False,
) -> Prepared:
    """Check the arguments of a call of `loss` and lay them out for its kernel.

    `return_hess` asks for the diagonal of the Hessian too (and implies the gradient).
    """
    plan, array, labels, soft_target, counted, row_weight = _targets_and_weights(
        loss, first, target, options
    )
    dtype = plan.dtype
    array = array.astype(dtype, copy=False)
    blocks = _class_major(array, plan)
    values = _as_rows(array, plan) if blocks is None else blocks
    class_major = blocks is not None
    if not loss.from_logits and loss.categorical:
        _check_probability_rows(values, loss.name, counted)
    elif not loss.from_logits:
        _check_binary_probabilities(plan, values, counted)
    weights = weigh_targets(plan, labels, soft_target, counted, row_weight, options=options)
    grad = grad_rows = hess = hess_rows = None
    if return_grad or return_hess:
        inputs = (first, target, *options.values())
        grad, grad_rows = _gradient_views(plan, values.shape, out, inputs, class_major=class_major)
    if return_hess:
        hess, hess_rows = _gradient_views(plan, values.shape, None, (), class_major=class_major)
    return Prepared(
        plan=plan,
        values=values,
        labels=labels,
        target=soft_target,
        class_weight=weights.class_weight,
        pos_weight=weights.pos_weight,
        counted=counted,
        row_weight=weights.row_weight,
        total=weights.total,
        grad=grad,
        grad_rows=grad_rows,
        hess=hess,
        hess_rows=hess_rows,
        class_major=class_major,
    )


class Weights(NamedTuple):
    """The weights of a call, as :class:`Prepared` holds them, and ``D`` (``total``)."""

    class_weight: FloatArray | None
    pos_weight: Any
    row_weight: Any
    total: float


def weigh_targets(
    plan: Plan,
    labels: Any,
    soft_target: Any,
    counted: Any,
    row_weight: Any,
    *,
    options: dict[str, Any],
) -> Weights:
    """Check the class or positive weights of a call, or make the balanced ones; find ``D``.

    The targets, rows counted and row weights are those of :func:`count_targets`. The
    weights come back scaled by powers of two where ``D`` would be extreme (which
    changes neither the mean nor its gradient), with ``D`` of the whole call, summed a
    block of rows at a time in an order fixed by the shape alone.
    """
    loss = plan.loss
    dtype = plan.dtype
    balanced = None
    if plan.balanced:
        balanced = balanced_weight(plan, _totals(plan, labels, soft_target, row_weight))

    class_weight = pos_weight = None
    if loss.categorical:
        class_weight = balanced
        if class_weight is None:
            class_weight = check_class_weight(options["class_weight"], plan.n_classes, dtype)
    elif balanced is not None:
        pos_weight = _broadcast_weight(balanced, plan.shape, dtype)
    elif options["pos_weight"] is not None:
        weight = check_weight(options["pos_weight"], "pos_weight", plan.shape, plan.what, dtype)
        pos_weight = _broadcast_weight(weight, plan.shape, dtype)
    n_rows = math.prod(plan.batch_shape)
    n_classes = plan.n_classes if loss.categorical else 1

    def weigh_rows(row_weight: Any, class_weight: FloatArray | None) -> float:
        # D: each row weighs s * sum_c w_c t_c with the unsmoothed target (binary: s).
        no_target_weight = labels is None or class_weight is None
        if (soft_target is None or not loss.categorical) and no_target_weight:
            if row_weight is None:
                return float(n_rows)
            if not isinstance(row_weight, RowParts):
                return float(row_weight) * n_rows
        ones = None if soft_target is None else np.ones(n_classes, dtype=dtype)

        def weigh_block(start: int, stop: int) -> float:
            # sum_c w_c t_c of each row; None: 1 for every row
            target_weight: Any = None
            if labels is not None and class_weight is not None:
                target_weight = class_weight[part(labels, start, stop)]
            elif soft_target is not None and loss.categorical:
                weight = ones if class_weight is None else class_weight
                target_weight = soft_target[start:stop] @ weight
            weight = part(row_weight, start, stop)
            if target_weight is None:
                return total_weight(weight)
            if weight is None:
                return total_weight(target_weight)
            return total_weight(weighted_product(weight, target_weight))

        # Categorical blocks make one value per row: larger blocks cost less.
        block = _LARGE_BLOCK if loss.categorical else _CHECK_BLOCK
        return float(sum(in_blocks(weigh_block, n_rows, n_classes, block)))

    row_weight, class_weight, total = _rescaled(plan, row_weight, class_weight, weigh_rows)
    return Weights(class_weight, pos_weight, row_weight, total)


# Unsigned dtypes to view integer labels as: a negative label becomes one >= C.
_UNSIGNED = {size: np.dtype(f"u{size}") for size in (1, 2, 4, 8)}
_REDUCTIONS = ("mean", "sum", "none")
# The value of each option at which a call is plain (reduction and axis aside).
_NEUTRAL: dict[str, Any] = {
    "class_weight": None,
    "sample_weight": None,
    "where": None,
    "ignore_index": None,
    "softcap": None,
    "label_smoothing": 0,
    "z_loss": 0,
    "gamma": 0,
    "pos_weight": None,
    "eps": None,
}
_NO_NEUTRAL = object()  # an option without a neutral value: never plain


def _plain_options(options: dict[str, Any], ndim: int) -> tuple[Reduction, int] | None:
    """Return the reduction and the class axis (from 0) if every other option is neutral."""
    reduction = options["reduction"]
    if type(reduction) is not str or reduction not in _REDUCTIONS:
        return None
    axis = ndim - 1
    for name, value in options.items():
        if name == "reduction":
            continue
        if name == "axis":
            if type(value) is int and -ndim <= value < ndim:
                axis = value % ndim
                continue
            return None
        neutral = _NEUTRAL.get(name, _NO_NEUTRAL)
        if value is None and neutral is None:
            continue
        if neutral == 0 and type(value) in (float, int) and value == 0:
            continue
        return None
    return reduction, axis  # type: ignore[return-value]  # one of _REDUCTIONS


def labels_in_range(labels: np.ndarray[Any, Any], n_classes: int) -> bool:
    """Whether integer `labels` all lie in ``[0, n_classes)``.

    One reduction checks both ends: viewed as unsigned, a negative label is >= C. A
    single label is read as a Python int instead, for a tenth of the reduction's cost.
    """
    if labels.size == 1:
        return 0 <= int(labels.item()) < n_classes
    return bool(np.maximum.reduce(labels.view(_UNSIGNED[labels.itemsize]), axis=None) < n_classes)


class PlainCall(NamedTuple):
    """A plain call (see :func:`plain_call`): its logits, labels, reduction, input shape.

    ``logits`` are ``(N, C)`` rows and ``labels`` ``N`` integers; or, for a class axis
    before the last, ``(B, C, S)`` and ``(B, S)``: ``B`` the product of the axes
    before the classes, ``S`` of those after. ``batch_shape`` is the shape of the
    per-row losses.
    """

    logits: FloatArray
    labels: np.ndarray[Any, Any]
    reduction: Reduction
    shape: tuple[int, ...]
    batch_shape: tuple[int, ...]


def plain_call(
    first: object,
    target: object,
    options: dict[str, Any],
    *,
    categorical: bool = True,
    from_logits: bool = True,
) -> PlainCall | None:
    """Return the call as a :class:`PlainCall` if it needs no preparation, else None.

    A plain categorical call: logits with at least one row and two axes, a plain
    ``ndarray`` of a real dtype (probabilities, not `from_logits`: a floating dtype;
    others warn on the general path); integer labels of the batch shape, all in ``[0,
    C)``; every option but the reduction and the class axis at its neutral value (None,
    or 0 for ``label_smoothing``, ``z_loss`` and ``gamma``). A plain binary call (not
    `categorical`): see :func:`_plain_elements`. With the classes on the last axis
    (or followed by axes of length 1), the logits come back as ``(N, C)`` rows in the
    computation dtype (converted as :func:`prepare` converts them; a view where
    possible) and the labels as ``N`` integers (a view where possible). With the classes
    before other axes (PyTorch's ``(N, C, H, W)``), C-contiguous logits come back as a
    ``(B, C, S)`` view and the labels as ``(B, S)``; other strides take the general
    path. Nothing here raises: a call that is anything else, valid or not, takes the
    general path, whose checks raise the errors. These checks cost a few microseconds,
    against tens for :func:`prepare`.
    """
    if type(first) is not np.ndarray or type(target) is not np.ndarray:
        return None
    if not categorical:
        return _plain_elements(first, target, options)
    shape = first.shape
    plain = (
        len(shape) >= 2
        and first.dtype.kind in ("biuf" if from_logits else "f")
        and first.dtype.itemsize <= 8
        and first.size > 0
        and target.dtype.kind in "iu"
        and target.dtype.isnative
    )
    options_met = _plain_options(options, len(shape)) if plain else None
    if options_met is None:
        return None
    reduction, axis = options_met
    n_classes = shape[axis]
    batch_shape = shape[:axis] + shape[axis + 1 :]
    span = math.prod(shape[axis + 1 :])
    if (
        target.shape != batch_shape
        or (span > 1 and not first.flags.c_contiguous)
        or not labels_in_range(target, n_classes)
    ):
        return None
    logits: FloatArray = first.astype(computation_dtype(first.dtype), copy=False)
    if span > 1:
        layout = (math.prod(shape[:axis]), n_classes, span)
        labels = target.reshape(layout[0], span)
        return PlainCall(logits.reshape(layout), labels, reduction, shape, batch_shape)
    rows = logits.reshape(-1, n_classes)
    return PlainCall(rows, target.reshape(-1), reduction, shape, batch_shape)


def _plain_elements(
    first: np.ndarray[Any, Any], target: np.ndarray[Any, Any], options: dict[str, Any]
) -> PlainCall | None:
    """Return a plain binary call as a :class:`PlainCall` of flat views, else None.

    Plain: C-contiguous float32 or float64 values (native byte order, at least one),
    a C-contiguous target of their shape (bools, integers or floats), every option but
    the reduction at its neutral value (``eps`` None among them). The values of neither
    are read here: the lane checks them block by block, and hands a call whose targets
    are not in ``[0, 1]`` (integers: not 0 or 1), or whose probabilities are not, to
    the general path, which raises.
    """
    shape = first.shape
    plain = (
        first.dtype.kind == "f"
        and first.dtype.itemsize in (4, 8)
        and first.dtype.isnative
        and first.size > 0
        and target.shape == shape
        and target.dtype.kind in "biuf"
        and target.dtype.isnative
        and first.flags.c_contiguous
        and target.flags.c_contiguous
    )
    options_met = _plain_options(options, len(shape)) if plain else None
    if options_met is None:
        return None
    return PlainCall(first.reshape(-1), target.reshape(-1), options_met[0], shape, shape)


def evaluate_plain(
    loss: Loss,
    first: object,
    target: object,
    *,
    return_grad: bool,
    out: object,
    options: dict[str, Any],
) -> Outcome | None:
    """Evaluate a plain call (see :func:`plain_call`) on the lane of `loss`, or return None.

    `out`, checked as :func:`prepare` checks it, receives the gradient: directly where
    it is C-contiguous, else through a new array copied into it.
    """
    if loss.plain is None:
        return None
    call = plain_call(
        first, target, options, categorical=loss.categorical, from_logits=loss.from_logits
    )
    if call is None:
        return None
    logits, labels, reduction, shape, batch_shape = call
    if loss.categorical and loss.from_logits and labels.dtype != np.intp:
        labels = labels.astype(np.intp)  # the probabilities' lane reads them a block at a time
    grad = rows = None
    copy_back = False
    if out is not None:
        grad = check_out(out, shape, logits.dtype, first, target)
        copy_back = not grad.flags.c_contiguous
        rows = np.empty(logits.shape, logits.dtype) if copy_back else grad.reshape(logits.shape)
    elif return_grad:
        rows = np.empty(logits.shape, dtype=logits.dtype)
        grad = rows.reshape(shape)
    losses = loss.plain(logits, labels, reduction, rows)
    if losses is None:
        return None  # a call that its lane hands to the general path
    if copy_back:
        assert grad is not None
        assert rows is not None
        grad[...] = rows.reshape(shape)
    n_rows = labels.size
    value = reduce_kernel_result(losses, reduction, n_rows, batch_shape, logits.dtype)
    return Outcome(value, grad, float(n_rows), None)


def evaluate_numpy(
    loss: Loss,
    first: object,
    target: object,
    *,
    return_grad: bool,
    out: object,
    options: dict[str, Any],
    return_hess: bool = False,
) -> Outcome:
    """Evaluate `loss` on NumPy arguments: prepare, run the kernel, reduce."""
    prepared = prepare(
        loss,
        first,
        target,
        return_grad=return_grad,
        return_hess=return_hess,
        out=out,
        options=options,
    )
    return prepared.outcome(loss.kernel(prepared))
