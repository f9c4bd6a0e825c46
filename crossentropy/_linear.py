r"""The cross-entropy of a linear layer's output, fused: the logits exist a tile at a time.

``linear_cross_entropy(hidden, weight, target)`` is the categorical cross-entropy of the
logits ``hidden @ weight.T + bias``, which for a language model's vocabulary are far
larger than anything else in the step. They are formed a tile at a time, within a
memory budget:

- Row tiles. ``R`` rows of all ``C`` classes: one matrix product makes a tile's
  logits, the log-sum-exp kernel of every categorical loss turns them into their
  gradient ``G`` in the same buffer (``Prepared.grad_rows`` is its ``values``), and two
  more products give the tile's share of the gradients, ``G @ weight`` (its rows of
  ``grads.hidden``) and ``G.T @ hidden`` (added to ``grads.weight``, a class chunk at
  a time through a small buffer, since NumPy has no product that adds to its output).
- Class tiles. When not even one row of all classes fits, a tile is ``R`` rows of
  ``Cb`` classes, and the kernel's per-row sums of each class tile are merged (see
  ``_kernel``); a second pass over the class tiles forms the gradient from the merged
  sums, at the cost of a fourth product.

Tiles are spread over the package's threads, each with its own buffers, while BLAS is
held to one thread (with threadpoolctl, when installed); the additions to
``grads.weight`` (a lock per chunk of classes) and ``grads.bias`` take locks.

The targets and weights go through ``_prepare.count_targets`` and ``weigh_targets``
once for the batch, and the mean through ``_reduction``: the same checks and the same
rule as every loss.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, overload

import numpy as np
import numpy.typing as npt

from ._kernel import (
    RowSums,
    add_class_tile,
    class_tile_gradient,
    class_tiles_losses,
    softmax_cross_entropy,
    work_elements,
)
from ._prepare import (
    Loss,
    Plan,
    Prepared,
    Weights,
    count_targets,
    make_plan,
    part,
    weigh_targets,
    whole,
)
from ._reduction import reduce
from ._threads import can_pin_blas, get_num_threads, num_threads, one_blas_thread, run_in_ranges
from ._types import FloatArray, LinearOptions, LossValue, Reduction
from ._validation import (
    as_real_array,
    check_memory_budget,
    check_return_flag,
    computation_dtype,
    refuse_masked,
    unmasked,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["DEFAULT_MEMORY_BUDGET", "LinearGradients", "linear_cross_entropy"]

# 64 MiB: an eighth of the logits of 4096 rows of 32768 classes in float32.
DEFAULT_MEMORY_BUDGET = 64 * 2**20
# A tile holds at least one row of this many classes (of all of them when fewer).
_MIN_TILE_CLASSES = 16
# The weight gradient's accumulation buffer takes at most this part of the budget.
_ACCUMULATOR_PART = 16
# This part of the budget is kept back for what the tiles do not account for: the
# arrays of a value per row or per class, and the call's bookkeeping.
_HEADROOM_PART = 32
# Calls of fewer multiply-adds run their tiles on the calling thread, BLAS untouched.
_MIN_PARALLEL_WORK = 1 << 26

_LINEAR = Loss(
    function="linear_cross_entropy",
    name="logits",  # the logits it never holds: make_plan sees their shape
    categorical=True,
    kernel=softmax_cross_entropy,
)


class LinearGradients(NamedTuple):
    """The gradients of :func:`linear_cross_entropy` with respect to its arguments.

    Each has its argument's shape, in the computation dtype; ``bias`` is None when the
    call had no bias.
    """

    hidden: FloatArray
    weight: FloatArray
    bias: FloatArray | None


@dataclass(frozen=True)
class _Layout:
    """How a call is tiled: tiles of ``rows`` x ``classes``, ``threads`` at a time.

    ``chunk`` is the number of classes of one product of the weight gradient's
    accumulation (0 without gradients).
    """

    rows: int
    classes: int
    chunk: int
    threads: int


def _tile_bytes(rows: int, classes: int, itemsize: int, *, softcap: bool, grad: bool) -> int:
    """Return the bytes of a tile of `rows` x `classes` logits with the kernel's block buffers."""
    kernel = work_elements(rows, classes, softcap=softcap, grad=grad)
    return itemsize * (rows * classes + kernel)


def _largest(fits: Any, high: int) -> int:
    """Return the largest ``n`` in ``[1, high]`` with ``fits(n)``, or 0 (`fits` is monotone)."""
    if high < 1 or not fits(1):
        return 0
    low = 1
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


def _layout(
    n_rows: int,
    n_classes: int,
    n_features: int,
    dtype: np.dtype[Any],
    budget: int,
    *,
    grad: bool,
    threads: int,
    softcap: bool = False,
) -> _Layout | None:
    """Return the tiles of a call within `budget` bytes (None if not even the smallest fits).

    A 32nd of the budget is kept back for the arrays of a value per row or per class
    and the call's bookkeeping; each thread gets an equal part of the rest. With
    gradients, a sixteenth of that part (at least one row) goes to the buffer that rows
    of ``grads.weight`` are summed through, and class tiles take one more buffer, of
    their rows of ``grads.hidden``. The rest holds a tile and the kernel's block
    buffers: whole rows of classes when at least one fits, the rows shared out so that
    every thread has some; otherwise tiles about square in elements, of as many classes
    as then fit, and at least ``min(C, 16)``. The number of threads is reduced to 1
    before giving up.
    """
    itemsize = dtype.itemsize
    row_bytes = max(1, n_features) * itemsize
    for count in dict.fromkeys((threads, 1)):
        per_thread = (budget - budget // _HEADROOM_PART) // count
        chunk = 0
        if grad:
            reserved = max(row_bytes, per_thread // _ACCUMULATOR_PART)
            chunk = min(n_classes, reserved // row_bytes)
            per_thread -= reserved
        share = max(1, math.ceil(n_rows / count))

        def row_tile_fits(rows: int, room: int = per_thread) -> bool:
            return _tile_bytes(rows, n_classes, itemsize, softcap=softcap, grad=grad) <= room

        rows = _largest(row_tile_fits, share)
        if rows:
            return _Layout(rows, n_classes, chunk, count)
        elements = max(1, per_thread // (4 * itemsize))
        for tile_rows in dict.fromkeys((min(share, max(1, math.isqrt(elements))), 1)):
            room = per_thread - (tile_rows * row_bytes if grad else 0)

            def class_tile_fits(classes: int, tile_rows: int = tile_rows, room: int = room) -> bool:
                tile = _tile_bytes(tile_rows, classes, itemsize, softcap=softcap, grad=grad)
                return tile <= room

            classes = _largest(class_tile_fits, n_classes - 1)
            if classes >= min(n_classes, _MIN_TILE_CLASSES):
                return _Layout(tile_rows, classes, min(chunk, classes), count)
    return None


def smallest_budget(
    n_classes: int, n_features: int, dtype: np.dtype[Any], *, grad: bool, softcap: bool = False
) -> int:
    """Return the smallest budget that holds one row of the smallest tile, in bytes."""

    def enough(budget: int) -> bool:
        layout = _layout(
            1, n_classes, n_features, dtype, budget, grad=grad, threads=1, softcap=softcap
        )
        return layout is not None

    low, high = 1, 64
    while not enough(high):
        low, high = high + 1, 2 * high
    while low < high:
        middle = (low + high) // 2
        if enough(middle):
            high = middle
        else:
            low = middle + 1
    return low


def _too_small(
    budget: int,
    n_classes: int,
    n_features: int,
    dtype: np.dtype[Any],
    *,
    grad: bool,
    softcap: bool,
) -> ValueError:
    """Return the error for a budget too small for one row of the smallest tile."""
    classes = min(n_classes, _MIN_TILE_CLASSES)
    needed = smallest_budget(n_classes, n_features, dtype, grad=grad, softcap=softcap)
    what = "the loss and its gradients need" if grad else "the loss needs"
    msg = (
        f"memory_budget of {budget} bytes is too small for one tile of 1 row of {classes} "
        f"classes in {dtype} with the buffers {what}: give at least {needed} bytes"
    )
    return ValueError(msg)


class _Targets(NamedTuple):
    """The class indices of a call (0 where left out), which count, and the weights.

    Which rows count and their weights are ``_prepare.RowParts``: a tile forms its rows.
    """

    labels: np.ndarray[Any, Any]
    counted: Any
    weights: Weights


class _Arguments(NamedTuple):
    """The arrays of a call, checked: `hidden` as C-contiguous ``(N, D)`` rows."""

    hidden: FloatArray
    weight: FloatArray
    bias: FloatArray | None
    target: np.ndarray[Any, Any]
    target_mask: np.ndarray[Any, Any] | None
    shape: tuple[int, ...]  # the shape of hidden as given
    dtype: np.dtype[Any]


def _check_arguments(hidden: object, weight: object, bias: object, target: object) -> _Arguments:
    """Check the shapes and dtypes of the arrays of a call and lay them out."""
    hidden_array = as_real_array(refuse_masked(hidden, "hidden"), "hidden")
    weight_array = as_real_array(refuse_masked(weight, "weight"), "weight")
    if hidden_array.ndim == 0:
        msg = "hidden must have at least one dimension, the features (last axis); got a 0-d array"
        raise ValueError(msg)
    n_features = hidden_array.shape[-1]
    if weight_array.ndim != 2 or weight_array.shape[1] != n_features:
        msg = (
            f"weight must have shape (C, {n_features}), one row of {n_features} features "
            f"per class for hidden of shape {hidden_array.shape}, got shape {weight_array.shape}"
        )
        raise ValueError(msg)
    n_classes = weight_array.shape[0]
    if n_classes == 0:
        msg = f"weight must have at least one class (row), got shape {weight_array.shape}"
        raise ValueError(msg)
    bias_array = None
    arrays = {"hidden": hidden_array, "weight": weight_array}
    if bias is not None:
        bias_array = as_real_array(refuse_masked(bias, "bias"), "bias")
        if bias_array.shape != (n_classes,):
            msg = (
                f"bias must have shape ({n_classes},), one value per class (row of weight), "
                f"got shape {bias_array.shape}"
            )
            raise ValueError(msg)
        arrays["bias"] = bias_array
    dtypes = {array.dtype for array in arrays.values()}
    if len(dtypes) > 1:
        given = ", ".join(f"{name} {array.dtype}" for name, array in arrays.items())
        msg = (
            f"hidden, weight and bias must have one dtype (their gradients come in it), "
            f"got {given}; cast them to one"
        )
        raise TypeError(msg)
    target_data, target_mask = unmasked(target, "target")
    target_array = as_real_array(target_data, "target")
    if target_array.dtype.kind not in "iu":
        msg = (
            "target must hold integer class indices, one per row of hidden, "
            f"got dtype {target_array.dtype}"
        )
        raise TypeError(msg)
    batch_shape = hidden_array.shape[:-1]
    if target_array.shape != batch_shape:
        msg = (
            f"target must have the batch shape {batch_shape} of hidden of shape "
            f"{hidden_array.shape} (all but its last axis), got shape {target_array.shape}"
        )
        raise ValueError(msg)
    dtype = computation_dtype(hidden_array.dtype)
    n_rows = math.prod(batch_shape)
    rows = np.ascontiguousarray(hidden_array.reshape(n_rows, n_features), dtype=dtype)
    weight_array = weight_array.astype(dtype, copy=False)
    if not (weight_array.flags.c_contiguous or weight_array.flags.f_contiguous):
        weight_array = np.ascontiguousarray(weight_array)
    if bias_array is not None:
        bias_array = bias_array.astype(dtype, copy=False)
    return _Arguments(
        rows, weight_array, bias_array, target_array, target_mask, hidden_array.shape, dtype
    )


class _Call:
    """One call: its arrays, its outputs, and the tiles that the threads work through.

    Each tile writes its own rows of the per-row losses and of ``grads.hidden``; the
    additions to ``grads.weight`` (a chunk of classes at a time, each chunk with its
    lock) and to ``grads.bias`` are made under locks.
    """

    def __init__(
        self,
        arguments: _Arguments,
        plan: Plan,
        targets: _Targets,
        layout: _Layout,
        *,
        grad: bool,
        pin_blas: bool,
    ) -> None:
        self.hidden = arguments.hidden
        self.weight = arguments.weight
        self.bias = arguments.bias
        self.plan = plan
        self.targets = targets
        self.layout = layout
        self.pin_blas = pin_blas
        dtype = arguments.dtype
        n_rows, n_features = self.hidden.shape
        n_classes = self.weight.shape[0]
        self.losses = np.empty(n_rows, dtype=dtype)
        self.grads: LinearGradients | None = None
        if grad:
            self.grads = LinearGradients(
                np.empty((n_rows, n_features), dtype=dtype),
                np.zeros((n_classes, n_features), dtype=dtype),
                None if self.bias is None else np.zeros(n_classes, dtype=dtype),
            )
        # With gradients, one lock per chunk of classes of grads.weight (chunks aligned
        # on multiples of the chunk) and one for grads.bias: threads add to different
        # chunks at once.
        n_chunks = -(-n_classes // layout.chunk) if grad else 0
        self.weight_locks = [threading.Lock() for _ in range(n_chunks)]
        self.bias_lock = threading.Lock()

    @property
    def n_tiles(self) -> int:
        """The number of row tiles."""
        return int(-(-self.hidden.shape[0] // self.layout.rows))

    def run(self) -> None:
        """Work through every tile: on the calling thread, or spread over threads."""
        layout = self.layout
        if not self.pin_blas:
            self.run_tiles(0, self.n_tiles)
            return
        with one_blas_thread():
            if layout.threads == 1:
                self.run_tiles(0, self.n_tiles)
            else:
                run_in_ranges(self.run_tiles, self.n_tiles, layout.rows * layout.classes)

    def run_tiles(self, start: int, stop: int) -> None:
        """Work through row tiles ``start:stop`` with this thread's buffers."""
        layout = self.layout
        n_rows, n_features = self.hidden.shape
        dtype = self.losses.dtype
        tile = np.empty(layout.rows * layout.classes, dtype=dtype)
        accumulator = hidden_share = None
        if self.grads is not None:
            accumulator = np.empty((layout.chunk, n_features), dtype=dtype)
            if self.class_tiled:
                hidden_share = np.empty((layout.rows, n_features), dtype=dtype)
        for index in range(start, stop):
            begin = index * layout.rows
            end = min(begin + layout.rows, n_rows)
            if self.class_tiled:
                self.class_tiles(begin, end, tile, accumulator, hidden_share)
            else:
                self.row_tile(begin, end, tile, accumulator)

    @property
    def class_tiled(self) -> bool:
        """Whether the classes are tiled too."""
        return bool(self.layout.classes < self.weight.shape[0])

    def kernel(self, function: Any, *args: Any) -> Any:
        """Call a function of the kernel: on this thread alone when tiles run on several."""
        if self.layout.threads == 1:
            return function(*args)
        with num_threads(1):  # the other threads work on other tiles
            return function(*args)

    def logits(self, start: int, stop: int, first: int, last: int, tile: FloatArray) -> FloatArray:
        """Form the logits of rows ``start:stop`` and classes ``first:last`` in `tile`."""
        logits: FloatArray = tile[: (stop - start) * (last - first)].reshape(stop - start, -1)
        np.matmul(self.hidden[start:stop], self.weight[first:last].T, out=logits)
        if self.bias is not None:
            logits += self.bias[first:last]
        return logits

    def prepared(
        self, start: int, stop: int, logits: FloatArray, *, grad: bool | None = None
    ) -> Prepared:
        """Return rows ``start:stop`` as a kernel's call on `logits`.

        With `grad` (by default, when the call has gradients) the kernel turns the
        logits into their gradient in place.
        """
        targets = self.targets
        weights = targets.weights
        if grad is None:
            grad = self.grads is not None
        grad_rows = logits if grad else None
        return Prepared(
            plan=self.plan,
            values=logits,
            labels=part(targets.labels, start, stop),
            target=None,
            class_weight=weights.class_weight,
            pos_weight=None,
            counted=part(targets.counted, start, stop),
            row_weight=part(weights.row_weight, start, stop),
            total=weights.total,
            grad=grad_rows,
            grad_rows=grad_rows,
        )

    def row_tile(
        self, start: int, stop: int, tile: FloatArray, accumulator: FloatArray | None
    ) -> None:
        """Compute rows ``start:stop`` from a tile of all classes."""
        rows = self.hidden[start:stop]
        logits = self.logits(start, stop, 0, self.weight.shape[0], tile)
        call = self.prepared(start, stop, logits)
        self.losses[start:stop] = call.weigh(self.kernel(softmax_cross_entropy, call))
        if self.grads is None:
            return
        assert accumulator is not None
        np.matmul(logits, self.weight, out=self.grads.hidden[start:stop])
        self.add_weight_share(logits, rows, accumulator, 0)

    def class_tiles(
        self,
        start: int,
        stop: int,
        tile: FloatArray,
        accumulator: FloatArray | None,
        hidden_share: FloatArray | None,
    ) -> None:
        """Compute rows ``start:stop`` a tile of classes at a time, in two passes.

        The first merges the kernel's per-row sums of the class tiles; the second
        forms each tile again and turns it into its columns of the gradient.
        """
        n_classes = self.weight.shape[0]
        width = self.layout.classes
        smoothing = self.plan.label_smoothing > 0
        sums = RowSums(stop - start, self.losses.dtype, smoothing=smoothing)
        call = None
        for first in range(0, n_classes, width):
            last = min(first + width, n_classes)
            call = self.prepared(
                start, stop, self.logits(start, stop, first, last, tile), grad=False
            )
            self.kernel(add_class_tile, call, first, sums)
        assert call is not None
        self.losses[start:stop] = call.weigh(class_tiles_losses(call, sums))
        if self.grads is None:
            return
        assert accumulator is not None
        assert hidden_share is not None
        rows = self.hidden[start:stop]
        grad_hidden = self.grads.hidden[start:stop]
        for first in range(0, n_classes, width):
            last = min(first + width, n_classes)
            logits = self.logits(start, stop, first, last, tile)
            self.kernel(class_tile_gradient, self.prepared(start, stop, logits), first, sums)
            if first == 0:
                np.matmul(logits, self.weight[first:last], out=grad_hidden)
            else:
                share = hidden_share[: stop - start]
                np.matmul(logits, self.weight[first:last], out=share)
                grad_hidden += share
            self.add_weight_share(logits, rows, accumulator, first)

    def add_weight_share(
        self, grad: FloatArray, rows: FloatArray, accumulator: FloatArray, first_class: int
    ) -> None:
        """Add a tile's share of the weight and bias gradients, from class `first_class` on.

        That is ``grad.T @ rows``, added to ``grads.weight`` a chunk of classes at a time
        through `accumulator`, and the column sums of `grad`, added to ``grads.bias``.
        """
        assert self.grads is not None
        weight_grad, bias_grad = self.grads.weight, self.grads.bias
        n_classes = grad.shape[1]
        if self.n_tiles == 1 and n_classes == weight_grad.shape[0]:
            np.matmul(grad.T, rows, out=weight_grad)  # the whole product: nothing to add to
            if bias_grad is not None:
                np.matmul(np.ones(grad.shape[0], dtype=grad.dtype), grad, out=bias_grad)
            return
        chunk = accumulator.shape[0]
        begin = first_class
        while begin < first_class + n_classes:
            # Up to the next multiple of the chunk: the rows of one lock.
            end = min((begin // chunk + 1) * chunk, first_class + n_classes)
            share = accumulator[: end - begin]
            np.matmul(grad[:, begin - first_class : end - first_class].T, rows, out=share)
            with self.weight_locks[begin // chunk]:
                weight_grad[begin:end] += share
            begin = end
        if bias_grad is not None:
            column_sums = np.ones(grad.shape[0], dtype=grad.dtype) @ grad
            with self.bias_lock:
                bias_grad[first_class : first_class + n_classes] += column_sums


def _threads(n_rows: int, n_classes: int, n_features: int) -> tuple[int, bool]:
    """Return how many threads work on tiles at once, and whether BLAS is held to one.

    A large call, where BLAS can be held to one thread (threadpoolctl), runs its tiles
    on :func:`get_num_threads` threads (one included), each product on its thread
    alone: BLAS's own threads are slower on these products, above all on
    ``G @ weight``, whose inner dimension is ``C``. Otherwise the tiles go one after
    the other, the products on BLAS's threads and the kernel on the package's.
    """
    work = n_rows * n_classes * max(1, n_features)
    if work < _MIN_PARALLEL_WORK or not can_pin_blas():
        return 1, False
    return get_num_threads(), True


@overload
def linear_cross_entropy(
    hidden: npt.ArrayLike,
    weight: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    return_grad: Literal[False] = ...,
    **options: Unpack[LinearOptions],
) -> LossValue: ...


@overload
def linear_cross_entropy(
    hidden: npt.ArrayLike,
    weight: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    return_grad: Literal[True],
    **options: Unpack[LinearOptions],
) -> tuple[LossValue, LinearGradients]: ...


@overload
def linear_cross_entropy(
    hidden: npt.ArrayLike,
    weight: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    return_grad: bool = ...,
    **options: Unpack[LinearOptions],
) -> LossValue | tuple[LossValue, LinearGradients]: ...


def linear_cross_entropy(
    hidden: npt.ArrayLike,
    weight: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    bias: npt.ArrayLike | None = None,
    reduction: Reduction = "mean",
    class_weight: npt.ArrayLike | Literal["balanced"] | None = None,
    sample_weight: npt.ArrayLike | None = None,
    where: npt.ArrayLike | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    softcap: float | None = None,
    return_grad: bool = False,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> LossValue | tuple[LossValue, LinearGradients]:
    r"""Cross-entropy of the logits ``hidden @ weight.T + bias``, without holding them.

    Equal to ``categorical_cross_entropy_with_logits(hidden @ weight.T + bias, target,
    ...)``, with the same options and the same mean, but the logits of the batch never
    exist at once: they are formed a tile at a time, within `memory_budget`. For the
    last layer of a language model or a recommender, whose logits (``N x C`` for a
    vocabulary of ``C`` classes) are the largest array of a training step.

    Parameters
    ----------
    hidden : array_like of shape (..., D)
        The features of each element: ``D`` along the last axis, any batch shape.
    weight : array_like of shape (C, D)
        One row of ``D`` weights per class (PyTorch's ``nn.Linear`` layout).
    target : array_like of int of the batch shape
        Class indices in ``[0, C)``, any integer dtype, the batch shape of `hidden` (all
        but its last axis). In a NumPy masked array, masked elements are left out.
    bias : array_like of shape (C,), optional
        Added to every row of logits. -inf leaves a class out of every softmax.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        ``'none'`` returns the batch-shaped per-element losses (0 where left out);
        ``'sum'`` their sum; ``'mean'`` their sum divided by the total weight ``D``.
    class_weight : array_like of shape (C,), or 'balanced', optional
        Finite, non-negative weight of each class. ``'balanced'`` computes
        ``n / (C n_c)`` from this call's targets, as for
        :func:`categorical_cross_entropy_with_logits`.
    sample_weight : array_like, optional
        Finite, non-negative weight of each element; broadcasts to the batch shape.
    where : array_like of bool, optional
        Broadcasts to the batch shape; elements where it is False are left out.
    ignore_index : int, optional
        Elements whose target equals it are left out.
    label_smoothing : float, default 0.0
        :math:`\epsilon` in :math:`t \leftarrow (1-\epsilon) t + \epsilon / C`.
    z_loss : float, default 0.0
        The factor :math:`z \ge 0` of the z-loss :math:`z \operatorname{lse}(x)^2`
        added to each element's loss, as in :func:`categorical_cross_entropy_with_logits`.
    softcap : float, optional
        A positive :math:`c`: the logits become :math:`c \tanh(x / c)` before anything
        else, as in :func:`categorical_cross_entropy_with_logits`.
    return_grad : bool, default False
        Also return the gradients of the returned loss (of its sum for ``'none'``) with
        respect to `hidden`, `weight` and `bias`, from the same pass.
    memory_budget : int, default ``64 * 2**20`` (64 MiB)
        The bytes that the work arrays of the call may take at once: the tiles of
        logits of every thread, the kernel's block buffers, and the buffers that the
        tiles' shares of the gradients are summed through, with a 32nd kept back for
        the call's arrays of one value per element or per class, which are not
        counted otherwise. Nor are the arguments (and their copies when they need
        converting), and the returned loss and gradients.

    Returns
    -------
    loss : floating scalar or ndarray of the batch shape
        In the computation dtype.
    grads : LinearGradients
        Only with ``return_grad=True``: a named tuple ``(hidden, weight, bias)``, each
        of the shape of its argument in the computation dtype (``bias`` is None
        without a bias).

    Raises
    ------
    ValueError
        For shapes that do not fit (`weight` not ``(C, D)`` for the ``D`` features of
        `hidden`, `bias` not ``(C,)``, `target` not of the batch shape), a class index
        outside ``[0, C)`` (other than `ignore_index`), out-of-range options, masked
        entries in `hidden`, `weight` or `bias`, or a `memory_budget` too small for one
        row of the smallest tile (1 row of 16 classes, or of all classes when fewer).
    TypeError
        For complex, object or string arrays, `hidden`, `weight` and `bias` of
        different dtypes, a `target` that is not of an integer dtype, a non-bool
        `return_grad`, or a `memory_budget` that is not an int.

    See Also
    --------
    categorical_cross_entropy_with_logits : the same loss from logits held in memory.

    Notes
    -----
    With :math:`x = h W^\top + b` the logits of an element, the loss is that of
    :func:`categorical_cross_entropy_with_logits`,

    .. math::

        \ell = s \sum_c a_c \bigl(\operatorname{lse}(x) - x_c\bigr),

    from the same log-sum-exp kernel, and so as accurate (also for tiny losses). With
    :math:`G = \partial L / \partial x` the gradient of the returned loss with respect
    to the logits (a row per element), the gradients are

    .. math::

        \nabla_h L = G W, \qquad \nabla_W L = G^\top H, \qquad
        \nabla_b L = \textstyle\sum_{\text{rows}} G.

    The logits exist a tile at a time. A 32nd of `memory_budget` is kept back for the
    call's small arrays; with ``n`` threads, a tile is ``R`` rows of all ``C`` classes,
    ``R`` as large as fits in ``n``-th of the rest with the kernel's buffers (up to
    ``N / n`` rows), and the kernel turns a tile's logits into its rows
    of :math:`G` in place. With gradients, a sixteenth of each thread's part of the
    budget is a buffer of rows of ``grads.weight``, through which its tiles' shares are
    added (NumPy's matrix product cannot add to its output). When not even one row of
    ``C`` classes fits, the classes are tiled too: ``R x Cb`` tiles whose per-row sums
    (maximum, sum of exponentials, margins) are merged with a running maximum, each sum
    rescaled as the maximum grows, and a second pass over the class tiles forms
    :math:`G` from the merged sums (one matrix product more). The smallest tile is one
    row of 16 classes.

    When the call is large and threadpoolctl is installed, the tiles are spread over
    :func:`get_num_threads` threads, each with its own tile and buffers, and BLAS is
    held to one thread while the call runs (for the whole process): BLAS's own threads
    are slower on these products, above all on :math:`G W`, whose inner dimension is
    ``C``. Without threadpoolctl the tiles go one after the other, the products on
    BLAS's threads and the kernel on the package's.
    Results do not depend on the number of threads beyond rounding (the order of the
    additions to ``grads.weight`` and ``grads.bias``).

    `hidden`, `weight` and `bias` must have one dtype, as in PyTorch: promoting one to
    another's would copy it, and `weight` may be the largest argument. float32 and
    float64 are kept; float16 is computed in float32 and integers in float64.

    Examples
    --------
    >>> import numpy as np
    >>> import crossentropy as ce
    >>> rng = np.random.default_rng(0)
    >>> hidden = rng.normal(size=(6, 4))
    >>> weight = rng.normal(size=(5, 4))
    >>> target = np.array([0, 1, 2, 3, 4, 0])
    >>> loss = ce.linear_cross_entropy(hidden, weight, target)
    >>> bool(np.isclose(loss, ce.categorical_cross_entropy_with_logits(hidden @ weight.T, target)))
    True

    The gradients come from the same pass, one for each argument:

    >>> loss, grads = ce.linear_cross_entropy(hidden, weight, target, return_grad=True)
    >>> grads.hidden.shape, grads.weight.shape, grads.bias
    ((6, 4), (5, 4), None)
    >>> _, grad = ce.categorical_cross_entropy_with_logits(
    ...     hidden @ weight.T, target, return_grad=True
    ... )
    >>> bool(np.allclose(grads.weight, grad.T @ hidden))
    True
    """
    with_grad = check_return_flag(return_grad, "return_grad")
    budget = check_memory_budget(memory_budget)
    arguments = _check_arguments(hidden, weight, bias, target)
    options = {
        "reduction": reduction,
        "class_weight": class_weight,
        "sample_weight": sample_weight,
        "where": where,
        "ignore_index": ignore_index,
        "label_smoothing": label_smoothing,
        "axis": -1,
        "z_loss": z_loss,
        "softcap": softcap,
    }
    n_rows, n_features = arguments.hidden.shape
    n_classes = arguments.weight.shape[0]
    batch_shape = arguments.shape[:-1]
    target_array = arguments.target
    plan = make_plan(
        _LINEAR,
        (*batch_shape, n_classes),
        arguments.dtype,
        target_array.shape,
        target_array.dtype,
        options=options,
    )
    threads, pin_blas = _threads(n_rows, n_classes, n_features)
    capped = plan.softcap is not None
    shape = (n_rows, n_classes, n_features, arguments.dtype, budget)
    layout = _layout(*shape, grad=with_grad, threads=threads, softcap=capped)
    if layout is None:
        raise _too_small(
            budget, n_classes, n_features, arguments.dtype, grad=with_grad, softcap=capped
        )
    mask = arguments.target_mask
    labels, _, counted, row_weight = count_targets(
        plan, target_array, options=options, left_out=None if mask is None else mask.reshape(-1)
    )
    weights = weigh_targets(plan, labels, None, counted, row_weight, options=options)
    # The kernel reads the class indices of a tile as an array of intp.
    labels = np.asarray(whole(labels)).astype(np.intp, copy=False)
    targets = _Targets(labels, counted, weights)
    call = _Call(arguments, plan, targets, layout, grad=with_grad, pin_blas=pin_blas)
    call.run()
    loss: LossValue = reduce(call.losses.reshape(batch_shape), plan.reduction, weights.total)
    if call.grads is None:
        return loss
    grads = call.grads
    return loss, grads._replace(hidden=grads.hidden.reshape(arguments.shape))
