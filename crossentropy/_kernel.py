r"""The log-sum-exp kernel behind every categorical loss with logits.

For a row of logits :math:`x` and target weights :math:`a_c = w_c t_c` (class weight
times smoothed target) the kernel returns

.. math::

    r = \sum_c a_c (\operatorname{lse}(x) - x_c)
      = A \log\Bigl(1 + \sum_{c \ne k} e^{x_c - m}\Bigr) + \sum_c a_c (m - x_c),

with :math:`m = x_k` the row maximum and :math:`A = \sum_c a_c`. Both terms are sums
of non-negative numbers, so :math:`r` keeps its relative accuracy even when it is tiny
(a confident, correct prediction), where ``lse(x) - x_y`` would cancel. The exponential
of the maximum, exactly 1, is left out of the sum and added back by ``log1p``.

The gradient with respect to :math:`x`, :math:`A\,\operatorname{softmax}(x) - a`,
is formed in the same buffer as the exponentials, and the diagonal of the Hessian,
:math:`A\,p_c (1 - p_c)` with :math:`p = \operatorname{softmax}(x)`, from them too.

Two options of the plan change the row itself, and every caller that hands the kernel
a :class:`Prepared` gets them:

- ``softcap`` :math:`c`: each block is first replaced, in the work buffer, by
  :math:`y = c \tanh(x / c)`, and everything above is computed from :math:`y`; the
  derivatives with respect to :math:`x` follow by the chain rule, with
  :math:`y' = \operatorname{sech}^2(x / c) = 4 e / (1 + e)^2`,
  :math:`e = \exp(-2 |x| / c)` (not :math:`1 - (y/c)^2`, which cancels where
  :math:`|x| \gg c`) and
  :math:`y'' = -(2/c) \tanh(x/c) \operatorname{sech}^2(x/c)`.
- ``z_loss`` :math:`z`: each row gains :math:`z \operatorname{lse}(y)^2`, with
  :math:`\operatorname{lse} = m + \log(1 + \sum_{c \ne k} e^{y_c - m})` from the same
  sums; its gradient :math:`2 z \operatorname{lse}\, p` joins the softmax term as
  :math:`(A + 2 z \operatorname{lse})\, p`, and its Hessian diagonal is
  :math:`2 z (p^2 + \operatorname{lse}\, p (1 - p))`. It is not weighted by the
  targets: a row whose target weighs 0 still has it.

Rows are processed in blocks that stay in cache, and blocks are spread over threads.
Each block's sums become its losses (weighted, and summed for a mean or a sum) before
the next block: a call keeps no per-row array but the losses it returns. The focal
loss (``_focal``) runs on the same blocks, through hooks of the class that holds a
call, :meth:`_Problem.target_sums`, :meth:`_Problem.block_losses` and
:meth:`_Problem.gradient`.
The gradient may be asked for in the place of the logits (``grad_rows`` is
``values``): what the chain rule of the soft cap needs of them is taken first.

Plain calls
-----------
A call with integer labels and no option (:func:`plain_call` in ``_prepare``), the call
a training loop makes thousands of times on small batches, takes a lane of its own,
:func:`plain_cross_entropy`: the same formulas on blocks in the row layout, with the
row sums of :func:`_sum_others`, but with neither :class:`Prepared` nor
:class:`_Problem`, whose setup costs several times the arithmetic of a small call.
Large blocks first take each row's label logit as the reference of its sum, from
``e^x`` itself (:func:`_label_referenced_rows`): no pass looks for the maxima or
subtracts them; blocks where that does not hold (:func:`_unshifted_sums`) take the
shift (rows of few classes too: without the maxima, the row layout costs less than the
transposed one of :class:`_Problem`). Plain calls in PyTorch's layout (classes before
other axes) take :func:`_plain_class_major`: blocks viewed in place, each position's
label logit as the reference of its sum, so that no pass looks for the maxima; calls
where that reference overflows go to :class:`_Problem`.

Tiles of classes
----------------
A caller that cannot hold whole rows (the fused linear layer) gives the kernel tiles of
classes, for integer targets: :func:`add_class_tile` adds the per-row sums of a tile
to :class:`RowSums`, which holds them relative to the largest logit seen so far. When
a tile raises the maximum from :math:`m` to :math:`m'`, the sums so far are rescaled,
:math:`1 + \sum_{c \ne k} e^{y_c - m}` by :math:`e^{m - m'}`, and the tile's by
:math:`e^{m_b - m'}`; every piece is non-negative and the exact 1 of the overall maximum
stays out of the sum, as in one pass over the whole row. The margin of the label is
:math:`(m - m_y) + (m_y - y_y)`, with :math:`m_y` the maximum of the tile holding it,
and the smoothing sums gain :math:`W (m' - m)` for the weight :math:`W` of the classes
seen: sums of non-negative terms too. :func:`class_tiles_losses` combines the sums as
the kernel combines its own (the z-loss with the lse of the whole row), and
:func:`class_tile_gradient` forms a tile's columns of the gradient from the sums of all
classes, shifting by the overall maximum.
"""

from __future__ import annotations

import contextlib
import functools
import math
from typing import Any

import numpy as np

from ._prepare import Prepared, RowParts, Unfit, lane_outputs, run_lane, weighted_product, whole
from ._threads import run_in_ranges, scratch
from ._types import FloatArray, Reduction

__all__ = [
    "RowSums",
    "add_class_tile",
    "class_tile_gradient",
    "class_tiles_losses",
    "plain_cross_entropy",
    "row_indices",
    "softmax_cross_entropy",
    "work_elements",
]

# Elements of one block of rows: a block and its exponentials stay in the L2 cache,
# and blocks are large enough that the cost of a NumPy call is small beside its work.
_BLOCK_ELEMENTS = 1 << 18
# Up to this many classes, blocks are transposed to (classes, rows).
_MAX_TRANSPOSED_CLASSES = 48
# Elements of one class-major block, (classes, rows) read from a view of the logits.
_CLASS_MAJOR_BLOCK_ELEMENTS = 1 << 18
# Elements of a block of a class-major plain call (see _plain_class_major): fewer
# Python steps than smaller blocks, whose cost shows on two threads; 2 MiB of float32.
_LABEL_REFERENCED_BLOCK_ELEMENTS = 1 << 19
# Blocks of plain calls from this many elements take e^x without the shift, when they
# can (see plain_cross_entropy): below, the checks cost more than the passes saved.
_UNSHIFTED_ELEMENTS = 1 << 14
# Plain calls of up to this many elements skip the runtime and its kept buffers.
_TINY_ELEMENTS = 1 << 15
# Row indices of blocks (see row_indices): grown to the largest block seen, never written.
_ROW_INDICES = [np.arange(1 << 12)]
_ROW_INDICES[0].flags.writeable = False
# Rows of the per-row work buffer of a block (see _Block): the row maxima, then the
# losses (formed once the maxima are used); the sums of the others; the ties of the
# maxima, then log(1 + others); the margins; the smoothing sums; lse; a_y; A; the row
# weights. And of its buffer of indices: the labels (if converted) and positions.
_MAXIMUM = _LOSSES = 0
_OTHERS, _TIES, _MARGIN, _SPREAD, _LSE, _HARD, _TARGET_WEIGHT, _ROW_WEIGHT = range(1, 9)
_LOG_SUM = _TIES
_ROW_VALUES = 9
_LABELS, _POSITIONS = 0, 1
# Calls of fewer blocks than this get an even number of them (see _Problem.run).
_FEW_BLOCKS = 8
# Calls of this many elements spread over two threads (see run_in_ranges): _Problem
# gives them an even number of blocks, so that two threads share the blocks evenly.
_TWO_THREAD_ELEMENTS = 1 << 18
# Up to this many classes, rows are summed by einsum (see _sum_others).
_EINSUM_CLASSES = 512
# Elements of a block of a plain call whose rows are longer than that: 1.5 MiB of
# float32, whose buffers on two threads stay below 1/16 of a 16384x1000 input.
_LONG_ROW_BLOCK_ELEMENTS = 3 << 17
_EINSUM_ROWS = 32
# Blocks of plain calls of up to this many rows keep their row offsets (_row_offsets).
_OFFSET_ROWS = 1 << 10
# The smallest normal float32 and float64.
_TINY = {char: float(np.finfo(char).tiny) for char in "fd"}
# In place of np.errstate where no operation can be invalid (see _plain_block).
_QUIET = contextlib.nullcontext()


def _shift_rows(values: Any, work: FloatArray, rows: Any) -> tuple[Any, Any]:
    """Write ``values - m`` into `work`, ``m`` the maximum of each row (the row layout).

    Returns the column ``k`` of each row's maximum (the first, where several tie) and
    ``m`` itself. ``argmax`` and a gather cost less than ``max`` over short rows.
    """
    top = np.argmax(values, axis=1)
    row_max = values[rows, top]
    np.subtract(values, row_max[:, None], out=work)
    return top, row_max


def _sum_others(exps: FloatArray, at_top: Any, row_max: Any) -> Any:
    """Return ``sum_{c != k} exps`` per row, putting 0 at the maximum ``k`` in `exps`.

    `at_top` holds the flat positions in `exps` of the maxima ``k``.

    `exps` holds ``e^(x - m)`` in the row layout (C-contiguous), or ``e^x`` (then the
    caller scales the sums by ``e^-m``). Its entry at ``k`` (exactly 1 in the first
    case) is left out, so that the sum of the other, non-negative, terms keeps its
    relative accuracy where it is tiny. Rows of up to ``_EINSUM_CLASSES`` classes (in
    blocks of ``_EINSUM_ROWS`` rows or more; the call costs more on fewer) are summed
    by ``einsum``, several times faster than ``sum(axis=1)`` over short rows,
    to a few units in the last place (at most 3 seen, for 512 equal terms, where
    errors add up most); longer rows in equal parts of that size by ``einsum`` and the
    parts' sums pairwise (:func:`_einsum_part`), or, where no such part divides the
    row, by NumPy's pairwise sums, whose error does not grow with the row. Each sums
    each row on its own, in an order that does not depend on the other rows of the
    block (a BLAS product with ones would be faster still, but its sums change with
    the rows around them, and so with the thread count). A row whose maximum is +inf
    gets NaN (``m - m``, which is put at ``k`` in place of 0), as one of NaNs or all
    -inf does on its own.
    """
    exps.reshape(-1)[at_top] = row_max - row_max  # 0, or NaN where m is +-inf or NaN
    return _row_sums(exps)


def _row_sums(exps: FloatArray, out: Any = None) -> Any:
    """Return the sums of the rows of C-contiguous `exps` (see :func:`_sum_others`)."""
    n_rows, n_classes = exps.shape
    if n_rows >= _EINSUM_ROWS:
        if n_classes <= _EINSUM_CLASSES:
            return np.einsum("ij->i", exps, out=out)
        part = _einsum_part(n_classes)
        if part:
            # Equal parts of a long row by einsum, then their few sums pairwise.
            parts = np.einsum("ijk->ij", exps.reshape(n_rows, n_classes // part, part))
            return np.add.reduce(parts, axis=1, out=out)
    return np.add.reduce(exps, axis=1, out=out)


@functools.cache
def _einsum_part(n_classes: int) -> int:
    """Return the longest part of at most ``_EINSUM_CLASSES`` classes that divides a row.

    0 where no part of at least an eighth of that divides it (a prime number of classes,
    say): such rows are summed pairwise whole.
    """
    for part in range(_EINSUM_CLASSES, _EINSUM_CLASSES // 8 - 1, -1):
        if n_classes % part == 0:
            return part
    return 0


@functools.lru_cache(maxsize=16)
def _row_offsets(n: int, n_classes: int) -> Any:
    """Return ``arange(n) * n_classes``, read-only: the flat position of each row's start.

    Kept for the few shapes of a training loop's small blocks (``_OFFSET_ROWS``).
    """
    offsets = row_indices(n) * n_classes
    offsets.flags.writeable = False
    return offsets


class _Block:
    """One block of rows of a call, ``start:stop``, and its per-row values.

    ``rows`` indexes the rows of the block. For integer targets, ``labels`` are the
    columns of the labels in the block (0 in the rows left out, and in a tile of
    classes where the label is not one of its columns), ``hard`` is the weight
    ``a_y = (1 - eps) w_y`` of each row's label and ``target_weight`` the weight ``A``
    of each row: arrays, or one scalar for all rows. For probability targets the pass
    fills ``target_weight``. It fills ``margin``, ``spread`` (smoothing of integer
    targets) and ``lse`` (z-loss); each is None where not used. All are the work
    buffers of the thread that runs the block, or parts of whole arrays. ``values``
    and ``indices`` are the block's work buffers of per-row values (a row each, see
    ``_MAXIMUM`` and the others) and of indices (``_LABELS``, ``_POSITIONS``): one of
    each, whatever the block needs, which costs less than a buffer each. ``marks``
    holds 1.0 where a transposed block left an exponential of 1 out of the sums (see
    :meth:`_Problem.block_losses`), 0.0 elsewhere; None in the row layout.
    """

    __slots__ = (
        "hard",
        "indices",
        "labels",
        "lse",
        "margin",
        "marks",
        "rows",
        "spread",
        "start",
        "stop",
        "target_weight",
        "values",
    )

    def __init__(self, start: int, stop: int, values: Any, indices: Any) -> None:
        self.start = start
        self.stop = stop
        self.rows = row_indices(stop - start)
        self.values = values
        self.indices = indices
        self.marks: Any = None
        self.labels: Any = None
        self.hard: Any = None
        self.target_weight: Any = None
        self.margin: Any = None
        self.spread: Any = None
        self.lse: Any = None


def _times(weight: Any, values: Any, out: Any, *, positive: bool) -> Any:
    """Return :func:`weighted_product` of `weight` and `values` into `out`.

    `positive` says that `weight` holds no 0: then the product needs no check.
    """
    if positive and not (np.ndim(weight) == 0 and weight == 1):
        return np.multiply(weight, values, out=out)
    return weighted_product(weight, values, out=out)


def row_indices(n: int) -> Any:
    """Return ``arange(n)``, read-only: a view of one array kept for every call and thread."""
    rows = _ROW_INDICES[0]
    if rows.size < n:
        rows = np.arange(n)
        rows.flags.writeable = False
        _ROW_INDICES[0] = rows
    return rows[:n]


class _Problem:
    """One call of the kernel: its arrays, shared by the threads that work on its blocks.

    Each block of rows is laid out so that the class reductions are fast in NumPy: as
    it is, (rows, classes), when the class axis is long; transposed, (classes, rows),
    when it is short, so that a reduction over classes runs over whole contiguous rows.
    A block never writes outside its own rows of the per-row results.

    A class-major call (:attr:`Prepared.class_major`, such as PyTorch's
    ``(N, C, H, W)`` with ``axis=1``) has its blocks in that transposed layout already:
    ``values[b, :, s0:s1]``, a view of the logits. Its class reductions read the view,
    the shifted logits go to the work buffer in the same pass, and the gradient and the
    Hessian are written straight into their blocks of ``(B, C, S)``: nothing of the
    size of the input is copied. Every option works there, through the same code as
    transposed blocks. A block lies within one ``b``.

    The per-row values of a block (:class:`_Block`) live in its thread's work buffers,
    and each block's sums are combined into its losses at once: a call keeps no
    per-row array but its result. With `weighted`, the losses are weighted by the row
    weights there too, and for ``"mean"`` and ``"sum"`` only the float64 sum of each
    block is kept. The blocks depend on the shape of the call alone, so that these
    sums, added in the order of the blocks, do not depend on the thread count.

    `call` may hold a tile of classes, ``first_class:first_class + n`` of rows of
    ``call.plan.n_classes`` (integer targets only): the labels found in the tile then
    count as its columns, and the class weights of its columns are its own, while the
    weight ``A`` of each row is that of the whole row; the pass keeps its per-row sums
    (``maximum``, ``others``, ``margin``, ``spread``) for :class:`RowSums`. With
    `sums`, the sums of all the classes of the rows, the pass forms the tile's gradient
    from them instead of sums of its own.
    """

    def __init__(
        self,
        call: Prepared,
        first_class: int = 0,
        sums: RowSums | None = None,
        *,
        weighted: bool = False,
    ) -> None:
        logits = call.values
        n_rows, n_classes = call.rows_shape
        self.n_rows = n_rows
        self.n_classes = n_classes
        self.class_major = call.class_major
        # Elements of a block: a subclass with more work buffers may take smaller blocks.
        self.block_elements = _CLASS_MAJOR_BLOCK_ELEMENTS if call.class_major else _BLOCK_ELEMENTS
        # Rows per b of a class-major call, (B, C, S): S.
        self.span = logits.shape[2] if call.class_major else n_rows
        dtype = logits.dtype.type
        hard_fraction, smooth_share = call.smoothing
        self.logits = logits
        # The caller's class indices (any integer dtype, or RowParts), read per block.
        self.labels = call.labels
        self.soft_target = call.target
        self.sums = sums
        # A tile of classes: the labels found in it, as its columns (0 where not found).
        self.found: np.ndarray[Any, Any] | None = None
        self.columns: np.ndarray[Any, Any] | None = None
        class_weight = call.class_weight
        if n_classes != call.plan.n_classes:
            assert call.labels is not None, "tiles of classes take integer targets"
            local = np.asarray(whole(call.labels)) - first_class
            self.found = (local >= 0) & (local < n_classes)
            self.columns = np.where(self.found, local, 0)
            if class_weight is not None:
                class_weight = class_weight[first_class : first_class + n_classes]
        self.class_weight = class_weight
        self.hard_fraction = dtype(hard_fraction)
        self.smooth_share = dtype(smooth_share)
        self.call = call
        self.weighted = weighted
        self.grad = call.grad_rows
        self.hess = call.hess_rows
        self.transposed = call.class_major or n_classes <= _MAX_TRANSPOSED_CLASSES
        plan = call.plan
        self.softcap: Any = None if plan.softcap is None else dtype(plan.softcap)
        self.z_loss = plan.z_loss
        self.smoothed = plan.label_smoothing > 0
        # A tile's per-row sums, kept for RowSums: the maximum m; sum_{c != k}
        # exp(x_c - m); m - x_y; and sum_c w_c (m - x_c) when smoothing.
        self.keeps_sums = self.found is not None and sums is None
        kept_rows = n_rows if self.keeps_sums else 0
        self.maximum = np.empty(kept_rows, dtype=dtype)
        self.others = np.empty(kept_rows, dtype=dtype)
        self.margin = np.empty(kept_rows, dtype=dtype)
        self.spread = np.empty(kept_rows, dtype=dtype) if self.smoothed else None
        # A call of whole rows forms its losses: per row, or the float64 sum of each block.
        self.forms_losses = self.found is None and sums is None
        self.row_losses: FloatArray | None = None
        if self.forms_losses and (not weighted or plan.reduction == "none"):
            self.row_losses = np.empty(n_rows, dtype=dtype)
        self.block_sums: list[float] = []
        # Smoothing spreads weight over the classes of non-zero class weight only, so
        # that a class of weight 0 contributes exactly 0, even with a logit of -inf.
        self.smooth_classes: np.ndarray[Any, Any] | None = None
        self.smooth_weight: FloatArray | None = None
        # The weight of the classes that smoothing reaches: of the whole row, and of
        # the columns of this call.
        class_weight_sum = dtype(call.plan.n_classes)
        self.columns_smooth_weight = float(n_classes)
        if class_weight is not None:
            assert call.class_weight is not None
            class_weight_sum = call.class_weight.sum(dtype=np.float64).astype(logits.dtype)
            positive = class_weight > 0
            if not np.all(positive):
                self.smooth_classes = np.flatnonzero(positive)
            self.smooth_weight = class_weight[positive]
            self.columns_smooth_weight = float(self.smooth_weight.sum(dtype=np.float64))
        # For integer targets, A = a_y + (eps / C) sum_c w_c: the second term is the same
        # for every row; without class weights, a_y is too.
        self.label_share = self.smooth_share * class_weight_sum
        self.hard_scalar = self.hard_fraction * 1.0
        # With class weights, a_y and A of each class, (1 - eps) w_y and a_y + (eps / C)
        # sum_c w_c: a block takes those of its labels, the same numbers as forming
        # them per row. Where none is 0, their products need no check for 0.
        self.label_hard = self.label_target = None
        # (Probability targets form A per row, and check it.)
        self.positive_hard = bool(self.hard_scalar != 0)
        self.positive_target = call.labels is not None and bool(
            self.hard_scalar + self.label_share != 0
        )
        if call.class_weight is not None and call.labels is not None:
            self.label_hard = self.hard_fraction * call.class_weight
            self.label_target = self.label_hard + self.label_share
            self.positive_hard = bool(self.label_hard.all())
            self.positive_target = bool(self.label_target.all())
        self.block_rows = 1
        self.blocks_per_span = 1

    def run(self) -> None:
        """Run every block of the call, on every core.

        Blocks hold ``block_elements`` elements (class-major blocks within one ``b``),
        the last of a ``b`` fewer.
        A call of fewer than ``_FEW_BLOCKS`` blocks but work for two threads has an even
        number of them instead, of equal size, so that two threads share them evenly.
        They depend on the shape alone.
        """
        n_rows, n_classes = self.n_rows, self.n_classes
        elements = self.block_elements
        span = self.span
        n_spans = n_rows // span if span else 0
        block_rows = max(1, elements // n_classes)
        per_span = -(-span // block_rows)
        n_blocks = n_spans * per_span
        if n_blocks % 2 and n_blocks < _FEW_BLOCKS and n_rows * n_classes >= _TWO_THREAD_ELEMENTS:
            per_span = min(per_span + 1, span)
            block_rows = -(-span // per_span)
            n_blocks = n_spans * per_span
        self.block_rows = block_rows
        self.blocks_per_span = max(per_span, 1)
        if self.forms_losses and self.row_losses is None:
            self.block_sums = [0.0] * n_blocks
        run_in_ranges(self.run_blocks, n_blocks, -(-n_rows * n_classes // max(n_blocks, 1)))

    def result(self) -> Any:
        """Return the losses of a call of whole rows.

        Per row, or, for a weighted ``"mean"`` or ``"sum"``, their float64 sum.
        """
        if self.row_losses is not None:
            return self.row_losses
        return math.fsum(self.block_sums)

    def bounds(self, index: int) -> tuple[int, int]:
        """Return the rows ``start, stop`` of block `index`."""
        span_index, block = divmod(index, self.blocks_per_span)
        start = span_index * self.span + block * self.block_rows
        return start, min(start + self.block_rows, (span_index + 1) * self.span)

    def run_blocks(self, first: int, last: int) -> None:
        """Compute blocks ``first:last``, with this thread's work buffers."""
        n_classes = self.n_classes
        dtype = self.logits.dtype
        block_rows = min(self.block_rows, self.n_rows)
        shape = (n_classes, block_rows) if self.transposed else (block_rows, n_classes)
        buffer = scratch("kernel", shape, dtype)
        # The per-row values and indices of a block (see _Block).
        row_values = scratch("kernel-rows", (_ROW_VALUES, block_rows), dtype)
        indices = scratch("kernel-indices", (2, block_rows), np.dtype(np.intp))
        # Transposed blocks mark their maxima in a second buffer, as 1.0 and 0.0.
        marks = scratch("marks", shape, dtype) if self.transposed else buffer
        # Transposed blocks form the Hessian's diagonal in a third buffer.
        curvature = None
        if self.hess is not None and self.transposed:
            curvature = scratch("curvature", shape, dtype)
        for index in range(first, last):
            start, stop = self.bounds(index)
            n = stop - start
            block = self.block(start, stop, row_values[:, :n], indices[:, :n])
            losses = self.run_block(block, buffer, marks, curvature)
            if losses is not None:
                self.block_sums[index] = float(np.add.reduce(losses, dtype=np.float64))

    def block(self, start: int, stop: int, values: Any = None, indices: Any = None) -> _Block:
        """Return block ``start:stop``, with the weights of its integer targets.

        `values` and `indices` are its work buffers (see :class:`_Block`); new arrays
        if not given.
        """
        n = stop - start
        if values is None:
            values = np.empty((_ROW_VALUES, n), dtype=self.logits.dtype)
            indices = np.empty((2, n), dtype=np.intp)
        block = _Block(start, stop, values, indices)
        if self.keeps_sums:
            block.margin = self.margin[start:stop]
            block.spread = None if self.spread is None else self.spread[start:stop]
        else:
            block.margin = values[_MARGIN]
            block.spread = values[_SPREAD] if self.smoothed else None
        if self.z_loss > 0:
            block.lse = values[_LSE]
        if self.labels is None:
            block.target_weight = values[_TARGET_WEIGHT]
            return block
        labels = self.labels
        if isinstance(labels, RowParts):
            labels = labels.part(start, stop, block.indices[_LABELS])
        else:
            labels = labels[start:stop]
            if labels.dtype != np.intp:
                labels = labels.astype(np.intp, casting="unsafe", copy=False)
        block.labels = labels if self.columns is None else self.columns[start:stop]
        if self.call.class_weight is None:
            block.hard = self.hard_scalar
            block.target_weight = self.hard_scalar + self.label_share
        else:
            assert self.label_hard is not None
            assert self.label_target is not None
            block.hard = np.take(self.label_hard, labels, out=values[_HARD])
            block.target_weight = block.hard  # A = a_y without smoothing
            if self.label_share != 0:
                block.target_weight = np.take(self.label_target, labels, out=values[_TARGET_WEIGHT])
        return block

    def block_of(self, rows: Any, start: int, stop: int) -> Any:
        """Return rows ``start:stop`` of `rows` (the logits or a derivative), laid out.

        A view: ``(C, n)`` of transposed blocks, ``(n, C)`` of the others.
        """
        if self.class_major:
            batch, first = divmod(start, self.span)
            return rows[batch, :, first : first + stop - start]
        block = rows[start:stop]
        return block.T if self.transposed else block

    def laid_out(self, name: str, n: int) -> Any:
        """Return this thread's work buffer `name` for a block of `n` rows, laid out."""
        n_classes = self.n_classes
        shape = (n_classes, n) if self.transposed else (n, n_classes)
        return scratch(name, shape, self.logits.dtype)

    def cap(self, work: FloatArray, values: Any) -> None:
        """Write ``c tanh(values / c)`` into `work` (+-inf become +-c; NaN stays NaN)."""
        with np.errstate(over="ignore"):  # |x / c| beyond the largest number: tanh is +-1
            np.divide(values, self.softcap, out=work)
        np.tanh(work, out=work)
        np.multiply(work, self.softcap, out=work)

    def run_block(
        self,
        block: _Block,
        buffer: FloatArray,
        marks: FloatArray,
        curvature: FloatArray | None,
    ) -> FloatArray | None:
        """Compute one block of rows: per-row sums, losses, and the derivatives if asked for.

        Returns the block's weighted losses where only their sum is kept, else None.
        """
        start, stop = block.start, block.stop
        values_block = self.block_of(self.logits, start, stop)
        n = stop - start
        n_classes = self.n_classes
        rows = block.rows
        grad_block = None if self.grad is None else self.block_of(self.grad, start, stop)
        if self.softcap is not None and grad_block is not None:
            # Before anything is written: the gradient may take the logits' place.
            self.softcap_slopes(start, stop)
        sums = self.sums
        with np.errstate(invalid="ignore"):
            if sums is not None:
                # A tile's gradient from the sums of all classes: e^(y - m) with m the
                # maximum of the whole row (exactly 1 where the tile holds it).
                row_max = sums.maximum[start:stop]
                others = sums.others[start:stop]
                if self.transposed:
                    work = buffer.reshape(-1)[: n_classes * n].reshape(n_classes, n)
                    np.copyto(work, values_block)
                    values = work
                else:
                    work = buffer[:n]
                    if grad_block is not None and grad_block.flags.c_contiguous:
                        work = grad_block
                    values = values_block
                if self.softcap is not None:
                    self.cap(work, values)
                    values = work
                np.subtract(values, self.per_row(row_max), out=work)
                np.exp(work, out=work)
            elif self.transposed:
                # (classes, rows), contiguous: the maxima are marked, and may tie; the
                # exponential of each is exactly 1, left out of the sums and counted back
                # beyond the first.
                work = buffer.reshape(-1)[: n_classes * n].reshape(n_classes, n)
                is_max = marks.reshape(-1)[: n_classes * n].reshape(n_classes, n)
                values = values_block
                if self.softcap is not None:
                    self.cap(work, values_block)
                    values = work
                elif not self.class_major:
                    # A transposed view is read faster once, into the buffer, than twice.
                    np.copyto(work, values_block)
                    values = work
                # A class-major view is read twice, the second time from the cache: for
                # the maximum, and shifted into the buffer, which is written once.
                row_max = np.max(values, axis=0, out=block.values[_MAXIMUM])
                np.subtract(values, row_max, out=work)
                if not self.class_major:
                    np.equal(work, 0, out=is_max)
                self.target_sums(block, work)
                np.exp(work, out=work)
                if self.class_major:
                    # e <= 1: its floor is 1 where e is 1, at the maxima and at logits
                    # within rounding of them (whose 1 is as good as their e), 0 elsewhere
                    # (NaN in a row of NaN or of an infinite maximum, NaN anyway). Faster
                    # than comparing: no boolean to convert, and no pass before exp.
                    np.floor(work, out=is_max)
                np.subtract(work, is_max, out=work)
                block.marks = is_max
                # Sums over axis 0 add the classes of each row in order, whatever the
                # row's place in the block; a product with ones (BLAS) is faster, but
                # its rounding depends on that place, and so on the thread count.
                others = work.sum(axis=0, out=block.values[_OTHERS])
                ties = is_max.sum(axis=0, out=block.values[_TIES])
                ties -= 1
                others += ties
            else:
                work = buffer[:n]
                if grad_block is not None and grad_block.flags.c_contiguous:
                    work = grad_block
                values = values_block
                if self.softcap is not None:
                    self.cap(work, values_block)
                    values = work
                top, row_max = _shift_rows(values, work, rows)
                self.target_sums(block, work)
                np.exp(work, out=work)
                others = _sum_others(work, rows * n_classes + top, row_max)
        if block.lse is not None:
            _log_sum_exp(row_max, others, out=block.lse)
        losses = None
        if self.keeps_sums:
            self.maximum[start:stop] = row_max
            self.others[start:stop] = others
        elif self.forms_losses:
            losses = self.keep_losses(block, self.block_losses(block, work, others))
        if grad_block is None:
            return losses
        if sums is not None:
            pass  # nothing was left out of the exponentials
        elif self.transposed:
            np.add(work, is_max, out=work)
        else:
            work[rows, top] = 1
        hess_work = None
        if self.hess is not None:
            hess_work = self.hess[start:stop]
            if curvature is not None:
                hess_work = curvature.reshape(-1)[: n_classes * n].reshape(n_classes, n)
        if block.lse is None:
            self.gradient(block, work, others, hess=hess_work)
        else:
            # A row of infinite lse has an infinite z-loss and NaN derivatives (inf * 0).
            with np.errstate(invalid="ignore"):
                self.gradient(block, work, others, hess=hess_work)
        if self.transposed:
            grad_block[...] = work
            if self.hess is not None and hess_work is not None:
                self.block_of(self.hess, start, stop)[...] = hess_work
        elif work is not grad_block:
            grad_block[...] = work
        return losses

    def block_losses(self, block: _Block, exps: FloatArray, others: FloatArray) -> FloatArray:
        """Return the losses of a block from its sums ``others``, before its derivatives.

        `exps` holds the block's ``e^(x - m)``, laid out, 0 at the row maximum (at every
        tied maximum when transposed, and at every class whose ``e^(x - m)`` rounds to 1
        in a class-major block). The block's shifted logits went to
        :meth:`target_sums` before: a subclass that needs per-class terms of the
        log-sum-exp (the focal loss) keeps them there and forms its terms here. The
        result may be a work buffer, or the block's rows of :attr:`row_losses`.
        """
        return self.combine(
            block,
            others,
            block.margin,
            spread=block.spread,
            lse=block.lse,
            out=self.losses_buffer(block),
        )

    def losses_buffer(self, block: _Block) -> FloatArray:
        """Return where the losses of `block` go: its rows of the result, or a work buffer."""
        if self.row_losses is not None:
            return self.row_losses[block.start : block.stop]
        return block.values[_LOSSES]  # type: ignore[no-any-return]

    def keep_losses(self, block: _Block, losses: FloatArray) -> FloatArray | None:
        """Weigh a block's losses (if the call is weighted) and put them in the result.

        Returns them where only their sum is kept, else None.
        """
        start, stop = block.start, block.stop
        if self.weighted:
            weight = self.call.row_weight
            if isinstance(weight, RowParts):
                weight = weight.part(start, stop, block.values[_ROW_WEIGHT])
            if weight is not None:
                losses = weighted_product(weight, losses, out=losses)
        if self.row_losses is None:
            return losses
        if not np.shares_memory(losses, self.row_losses):
            self.row_losses[start:stop] = losses
        return None

    def per_row(self, values: Any) -> Any:
        """Shape per-row `values` (or one value for all rows) to broadcast against a block."""
        return values if self.transposed or np.ndim(values) == 0 else values[:, None]

    def label_positions(self, labels: Any, rows: Any, n_classes: int, out: Any = None) -> Any:
        """Return the flat positions of the (row, label) entries of a contiguous work block."""
        if self.transposed:
            positions = np.multiply(labels, len(rows), out=out)
            positions += rows
        else:
            positions = np.multiply(rows, n_classes, out=out)
            positions += labels
        return positions

    def target_sums(self, block: _Block, shifted: FloatArray) -> None:
        """Store the target-weighted sums of ``m - x`` of a block, from ``shifted = x - m``."""
        axis = 0 if self.transposed else 1
        n = block.stop - block.start
        if self.labels is None:
            weights = self.dense_weights(block.start, block.stop, out=self.laid_out("weights", n))
            products = np.multiply(weights, shifted, out=self.laid_out("products", n))
            zero = np.equal(weights, 0, out=scratch("zero", weights.shape, np.dtype(np.bool_)))
            np.copyto(products, 0, where=zero)
            weights.sum(axis=axis, out=block.target_weight)
            products.sum(axis=axis, out=block.margin)
            np.negative(block.margin, out=block.margin)
            return
        positions = self.label_positions(
            block.labels,
            block.rows,
            self.n_classes,
            out=block.indices[_POSITIONS],
        )
        np.take(shifted.reshape(-1), positions, out=block.margin)
        np.negative(block.margin, out=block.margin)
        if block.spread is None:
            return
        if self.smooth_classes is not None:
            smooth = self.smooth_classes
            taken = scratch(
                "smooth", (len(smooth), n) if self.transposed else (n, len(smooth)), shifted.dtype
            )
            shifted = np.take(shifted, smooth, axis=axis, out=taken)
        if self.smooth_weight is None:
            shifted.sum(axis=axis, out=block.spread)
        elif self.transposed:
            np.matmul(self.smooth_weight, shifted, out=block.spread)
        else:
            np.matmul(shifted, self.smooth_weight, out=block.spread)
        np.negative(block.spread, out=block.spread)

    def dense_weights(self, start: int, stop: int, out: Any = None) -> FloatArray:
        """Return the smoothed, class-weighted probability targets of a block, laid out."""
        assert self.soft_target is not None
        target = self.soft_target[start:stop]
        weights: FloatArray = np.multiply(
            target.T if self.transposed else target, self.hard_fraction, out=out
        )
        weights += self.smooth_share
        if self.class_weight is not None:
            weights *= self.class_weight[:, None] if self.transposed else self.class_weight
        return weights

    def gradient(
        self,
        block: _Block,
        exps: FloatArray,
        others: FloatArray,
        *,
        hess: FloatArray | None,
    ) -> None:
        """Turn the exponentials of a block into the rows of the gradient, in place.

        That is ``scale * ((A + 2 z lse) softmax(y) - a)``, and with `hess`, first,
        ``scale * ((A + 2 z lse) p (1 - p) + 2 z p^2)`` there, ``p = softmax(y)``; with
        a soft cap both are then carried from the capped logits ``y`` to ``x``. Rows
        whose scale is 0 become exactly 0.
        """
        call = self.call
        start, stop = block.start, block.stop
        target_weight = block.target_weight
        # s A / D and s a_y / D are divided in float64, not formed as (s / D) A: with tiny
        # class weights s / D alone may overflow where the product is of order 1.
        scaled_target_weight = call.grad_scale(start, stop, factor=target_weight)
        # The weight of softmax(y) in the gradient: s (A + 2 z lse) / D.
        softmax_weight = scaled_target_weight
        scaled_z = lse = None
        if block.lse is not None:
            lse = block.lse
            twice_z_lse = np.multiply(lse, 2 * self.z_loss, dtype=np.float64)
            scaled_z = call.grad_scale(start, stop, factor=twice_z_lse)
            softmax_weight = scaled_target_weight + scaled_z
        denominator = 1 + others
        if hess is not None:
            # p (1 - p) = e (1 + others - e) / (1 + others)^2: the row maximum (e = 1)
            # gets others / (1 + others)^2 without cancellation.
            np.subtract(1, exps, out=hess)
            hess += self.per_row(others)
            hess *= exps
            hess *= self.per_row(softmax_weight / (denominator * denominator))
            if scaled_z is not None:
                # + 2 z p^2 = 2 z e^2 / (1 + others)^2
                twice_z = call.grad_scale(start, stop, factor=2 * self.z_loss)
                hess += np.square(exps) * self.per_row(twice_z / (denominator * denominator))
        if self.labels is None:
            exps *= self.per_row(softmax_weight / denominator)
            exps -= self.dense_weights(start, stop) * self.per_row(call.grad_scale(start, stop))
        else:
            scaled_hard = call.grad_scale(start, stop, factor=block.hard)
            positions = self.label_positions(block.labels, block.rows, self.n_classes)
            at_labels = np.take(exps.reshape(-1), positions)
            z_at_labels = None if scaled_z is None else scaled_z * at_labels
            exps *= self.per_row(softmax_weight / denominator)
            # A softmax(x)_y - a_y = ((A e_y - a_y) - a_y others) / (1 + others): where the
            # label holds the row's maximum (e_y = 1, A = a_y without smoothing), this
            # keeps the digits that A / (1 + others) - a_y would lose to cancellation.
            # The z-loss's 2 z lse e_y is added to that, not folded into A.
            at_labels *= scaled_target_weight
            at_labels -= scaled_hard
            at_labels -= scaled_hard * others
            if z_at_labels is not None:
                at_labels += z_at_labels
            at_labels /= denominator
            if self.found is not None:  # a tile of classes: the labels it holds
                found = self.found[start:stop]
                positions, at_labels = positions[found], at_labels[found]
            exps.reshape(-1)[positions] = at_labels
            if self.smoothed:
                share = self.per_row(call.grad_scale(start, stop) * self.smooth_share)
                if self.class_weight is None:
                    exps -= share
                else:
                    weight = self.class_weight
                    exps -= share * (weight[:, None] if self.transposed else weight)
        if self.softcap is not None:
            self.chain_softcap(start, stop, exps, hess)
        if lse is not None:
            # A row whose lse is infinite has an infinite z-loss and no derivatives: NaN
            # in both layouts, as autograd gives (not inf where the maximum is +inf).
            for values in (exps,) if hess is None else (exps, hess):
                self.fill_rows(values, ~np.isfinite(lse), np.nan)
        # Rows left out, of weight 0 or (without z-loss) whose target weighs 0 (even with
        # logits of -inf and NaN exponentials) have derivatives of exactly 0: a_c >= 0
        # sum to A. With z-loss only the row weight counts: every counted row has one.
        if scaled_z is None:
            left_out = scaled_target_weight == 0
        else:
            left_out = call.grad_scale(start, stop) == 0
        for values in (exps,) if hess is None else (exps, hess):
            self.zero_rows(values, left_out)

    def zero_rows(self, values: FloatArray, left_out: Any) -> None:
        """Set to 0 the rows of a laid-out block where `left_out` (per row, or one) is True."""
        self.fill_rows(values, left_out, 0.0)

    def fill_rows(self, values: FloatArray, which: Any, value: float) -> None:
        """Set the rows of a laid-out block where `which` (per row, or one) is True to `value`."""
        if np.ndim(which) == 0:
            if which:
                values[...] = value
        elif np.any(which):
            if self.transposed:
                values[:, which] = value
            else:
                values[which] = value

    def softcap_slopes(self, start: int, stop: int) -> None:
        """Write ``y' = sech(u)^2`` (and ``tanh(u)`` for the Hessian), ``u = x / c``.

        Into this thread's work buffers ``slope`` (and ``bend``) for the block of rows
        ``start:stop``, from the logits as given: before the block is capped, since its
        gradient may be written over them. :meth:`chain_softcap` reads them.
        """
        block = self.block_of(self.logits, start, stop)
        n = stop - start
        # y', y'' and a spare in work buffers of their own.
        slope = self.laid_out("slope", n)
        spare = self.laid_out("spare", n)
        with np.errstate(over="ignore"):  # |x / c| beyond the largest number: y' = 0
            np.divide(block, self.softcap, out=slope)
        if self.hess is not None:
            np.tanh(slope, out=self.laid_out("bend", n))
        # sech(u)^2 = 4 e / (1 + e)^2 with e = exp(-2 |u|), not 1 - tanh(u)^2: no
        # cancellation where |x| >> c, and 0 (not NaN) for x = +-inf; an exponential
        # costs less than cosh.
        np.abs(slope, out=slope)
        with np.errstate(over="ignore"):  # -2 |u| = -inf: e = 0
            slope *= -2
        np.exp(slope, out=slope)
        np.add(slope, 1, out=spare)
        np.square(spare, out=spare)
        slope *= 4
        slope /= spare

    def chain_softcap(
        self,
        start: int,
        stop: int,
        grad: FloatArray,
        hess: FloatArray | None,
    ) -> None:
        """Carry the derivatives of a block from the capped logits ``y`` to ``x``.

        With ``u = x / c``: ``y' = sech(u)^2`` and ``y'' = -(2 / c) tanh(u) sech(u)^2``;
        ``grad_x = grad_y y'`` and ``hess_x = hess_y y'^2 + grad_y y''``. The block's
        ``y'`` and ``tanh(u)`` are in the buffers :meth:`softcap_slopes` wrote.
        """
        n = stop - start
        slope = self.laid_out("slope", n)
        bend = None if hess is None else self.laid_out("bend", n)
        if hess is not None and bend is not None:
            # tanh(u) sech(u)^2 / c before the factor -2: 0, not inf * 0, where sech(u)^2
            # underflows and c is tiny.
            bend *= slope
            bend /= self.softcap
            bend *= -2
            bend *= grad
            hess *= slope
            hess *= slope
            hess += bend
        grad *= slope

    def combine(
        self,
        block: _Block,
        others: FloatArray,
        margin: FloatArray,
        *,
        spread: Any,
        lse: Any,
        out: FloatArray | None = None,
    ) -> FloatArray:
        """Return ``A log(1 + others) + margin (+ z lse^2)`` from per-row sums.

        The sums of the rows of `block`, or of all its rows merged over tiles of classes.
        For integer targets the margin is ``a_y (m - x_y) + (eps / C) spread``; `lse` is
        None without z-loss. With `out` (none of the sums), the losses are formed there,
        with the thread's work buffers, and `spread` is overwritten.
        """
        n = len(others)
        dtype = self.logits.dtype
        fresh = out is None
        if out is None:
            out = np.empty(n, dtype=dtype)
        log_sum = np.log1p(others, out=None if fresh else block.values[_LOG_SUM])
        term = _times(block.target_weight, log_sum, log_sum, positive=self.positive_target)
        if self.labels is not None:
            margin = _times(block.hard, margin, out, positive=self.positive_hard)
            if spread is not None:
                spread = np.multiply(spread, self.smooth_share, out=None if fresh else spread)
                margin = np.add(margin, spread, out=out)
        np.add(term, margin, out=out)
        if lse is not None:
            # Both terms are >= 0: the sum keeps the relative accuracy of each.
            squares = None if fresh else scratch("kernel-squares", (n,), np.dtype(np.float64))
            squares = np.square(lse, dtype=np.float64, out=squares)
            squares *= self.z_loss
            squares += out
            np.copyto(out, squares, casting="same_kind")
        return out


class RowSums:
    """The per-row sums of the tiles of classes added so far, for integer targets.

    All are relative to ``maximum``, the largest logit seen (-inf before any tile):
    ``others``, the sum of ``exp(x_c - maximum)`` over every class but one that holds
    the maximum; ``margin``, ``label_maximum - x_y``, with ``label_maximum`` the maximum
    of the tile that holds the label; ``spread``, ``sum_c w_c (maximum - x_c)`` over the
    classes that smoothing reaches (None without smoothing), whose weights add up to
    ``smooth_weight``. Every update adds non-negative terms. A tile whose logits are
    all -inf in a row adds nothing to its ``others`` (and an infinite ``spread`` if
    smoothing reaches a class of it); NaN propagates. With a soft cap, the logits are
    the capped ones.
    """

    def __init__(self, n_rows: int, dtype: np.dtype[Any], *, smoothing: bool) -> None:
        self.maximum = np.full(n_rows, -np.inf, dtype=dtype)
        self.others = np.zeros(n_rows, dtype=dtype)
        self.label_maximum = np.full(n_rows, np.nan, dtype=dtype)
        self.margin = np.zeros(n_rows, dtype=dtype)
        self.spread = np.zeros(n_rows, dtype=dtype) if smoothing else None
        self.smooth_weight = 0.0

    def add(self, tile: _Problem) -> None:
        """Merge the sums of a tile of classes (a finished pass of `tile`)."""
        new = tile.maximum
        old = self.maximum
        empty = new == -np.inf  # only -inf logits in the tile
        grows = new > old
        # Both rescalings are formed for every row, and the one that np.where keeps has
        # exp(<= 0): no overflow there; the -inf of a row without tiles yet gives 0.
        with np.errstate(invalid="ignore", over="ignore"):
            maximum = np.maximum(old, new)  # NaN stays NaN
            # Rescale the sums so far (where the maximum grows) or the tile's (elsewhere).
            kept = self.others + (1 + tile.others) * np.exp(new - old)
            raised = tile.others + (1 + self.others) * np.exp(old - new)
            others = np.where(grows, raised, kept)
            self.others = np.where(empty, self.others, others).astype(old.dtype, copy=False)
            assert tile.found is not None
            found = tile.found
            self.label_maximum = np.where(found, new, self.label_maximum)
            self.margin = np.where(found, np.where(empty, np.inf, tile.margin), self.margin)
            if self.spread is not None:
                assert tile.spread is not None
                spread = self.spread
                if self.smooth_weight > 0:  # the classes so far, from the old maximum
                    spread = spread + np.where(grows, self.smooth_weight * (maximum - old), 0)
                weight = tile.columns_smooth_weight
                added = tile.spread + weight * (maximum - new)  # >= 0 terms
                added = np.where(empty, np.inf if weight > 0 else 0.0, added)
                self.spread = (spread + added).astype(old.dtype, copy=False)
                self.smooth_weight += weight
        self.maximum = maximum

    def margins(self) -> FloatArray:
        """Return ``maximum - x_y`` per row, as ``(maximum - label_maximum) + margin``."""
        with np.errstate(invalid="ignore"):
            margin: FloatArray = (self.maximum - self.label_maximum) + self.margin
        return margin


def _log_sum_exp(row_max: Any, others: Any, out: Any = None) -> Any:
    """Return ``lse = m + log(1 + others)`` per row; ``m`` itself where it is +-inf.

    A row holding +inf has ``lse = +inf`` and a row of -inf only ``lse = -inf``, where
    ``m + log1p(others)`` would be NaN (its ``others`` are NaN). Into `out` if given.
    """
    lse = np.log1p(others, out=out)
    lse += row_max
    infinite = np.isinf(row_max)
    if np.any(infinite):
        lse[infinite] = row_max[infinite]
    return lse


def softmax_cross_entropy(call: Prepared, *, weighted: bool = False) -> Any:
    """Return the per-row cross-entropy of a categorical call's ``(N, C)`` logits.

    That is ``sum_c a_c (lse(x) - x_c)`` per row, with ``a_c = w_c t_c`` (class weight
    times smoothed target), unweighted by any sample weight; with ``call.plan.z_loss``
    ``z``, plus ``z lse(x)^2``. With ``call.grad_rows`` the rows of the gradient,
    ``grad_scale * ((A + 2 z lse) softmax(x) - a)``, are written there, and with
    ``call.hess_rows`` the diagonal of the Hessian, ``grad_scale * ((A + 2 z lse)
    p (1 - p) + 2 z p^2)``; rows whose scale is 0 (without z-loss, also rows whose
    target weighs 0) are exactly 0. With ``call.plan.softcap`` ``c`` all of this is of
    the capped logits ``y = c tanh(x / c)``, formed block by block in the work buffer,
    and the derivatives written are those with respect to ``x``, by the chain rule.
    Each row of ``call.values`` must hold every class: ``lse`` is that of the row.

    With `weighted`, the losses are weighted by the row weights, and for ``"mean"``
    and ``"sum"`` their float64 sum is returned instead (see :class:`_Problem`): no
    per-row array is kept.
    """
    problem = _Problem(call, weighted=weighted)
    problem.run()
    return problem.result()


def plain_cross_entropy(
    values: FloatArray, labels: Any, reduction: Reduction, grad: FloatArray | None
) -> Any:
    r"""Return the cross-entropy of a plain call: logits, labels, no options; or None.

    The lane of the calls that a training loop makes thousands of times: integer
    labels in ``[0, C)`` (checked by the caller), no weights, masks, smoothing or
    other options, float32 or float64 ``(N, C)`` rows, or ``(B, C, S)`` class-major
    logits (:func:`_plain_class_major`). Each block of rows is computed with the
    formulas of the row layout of :func:`softmax_cross_entropy` (:func:`_sum_others`),
    or in the label-referenced form below, with none of the per-call setup that options
    need: on a small call that setup would cost several times the arithmetic. Returns
    the per-row losses for ``"none"``, else their float64 sum, summed block by block
    (no per-row array is kept). With `grad`, a C-contiguous array of the logits'
    layout, the gradient of the reduced loss is written there: ``s (softmax(x) -
    onehot(y))`` with ``s = 1/N`` for the mean, its entry at the label formed as
    ``s (\operatorname{expm1}(x_y - m) - others) / (1 + others)`` (``-s T / (1 + T)``
    in the label-referenced form below), which keeps its relative accuracy where the
    label holds the maximum.

    A block of at least ``_UNSHIFTED_ELEMENTS`` elements first takes each row's label
    as its reference, from the exponentials of the logits themselves
    (:func:`_label_referenced_rows`): no pass looks for the maxima, and none subtracts
    them. A block where that does not hold takes the shift by the maxima, except in
    calls of more than ``_TINY_ELEMENTS`` elements with rows of up to
    ``_MAX_TRANSPOSED_CLASSES`` classes: many rows to a block, whose per-row arrays
    would cost too much memory. Such a call returns None, and takes the general path
    (so do such calls of logits that are not C-contiguous). Blocks are the same
    whatever the thread count (``granule``), and so is every result, bit for bit.
    """
    dtype = values.dtype
    losses, scale = lane_outputs(labels.shape, reduction, dtype)
    if grad is None:
        scale = None  # no gradient to form
    if values.ndim == 3:
        return _plain_class_major(values, labels, grad, scale=scale, losses=losses)
    n_rows, n_classes = values.shape
    if n_rows * n_classes <= _TINY_ELEMENTS:
        # One block on this thread, in a new buffer: smaller than the runtime's cost.
        work = np.empty(values.shape, dtype) if grad is None else grad
        buffers = None
        if n_rows * n_classes >= _UNSHIFTED_ELEMENTS:
            buffers = (np.empty((3, n_rows), dtype), np.empty(n_rows, np.intp))
        summed = _plain_block(values, labels, work, losses, scale=scale, unshifted=buffers)
        return summed if losses is None else losses
    # Long rows (summed pairwise) gain from larger blocks; shorter ones keep blocks that
    # split mid-size calls evenly over the threads.
    block_elements = _LONG_ROW_BLOCK_ELEMENTS if n_classes > _EINSUM_CLASSES else _BLOCK_ELEMENTS
    block_rows = max(1, block_elements // n_classes)
    block_sums = [0.0] * -(-n_rows // block_rows)
    # Blocks too small to gain from e^x take the shift: its checks would cost more.
    unshifted = min(block_rows, n_rows) * n_classes >= _UNSHIFTED_ELEMENTS
    # Rows of few classes are many to a block, and the shift by the maxima keeps arrays
    # of one value per row: calls whose blocks would need it take the general path.
    few_classes = n_classes <= _MAX_TRANSPOSED_CLASSES
    if few_classes and not (unshifted and values.flags.c_contiguous):
        return None

    def run_rows(start: int, stop: int) -> None:
        # The gradient's rows are the work buffer where it is asked for.
        rows = min(block_rows, stop - start)
        buffer = grad
        if buffer is None:
            buffer = scratch("kernel", (rows, n_classes), dtype)
        per_row = scratch("kernel-rows", (3, rows), dtype)
        positions = scratch("kernel-indices", (rows,), np.dtype(np.intp))
        for begin in range(start, stop, block_rows):
            end = min(begin + block_rows, stop)
            block_sums[begin // block_rows] = _plain_block(
                values[begin:end],
                labels[begin:end],
                buffer[begin:end] if grad is not None else buffer[: end - begin],
                None if losses is None else losses[begin:end],
                scale=scale,
                unshifted=(per_row, positions) if unshifted else None,
                shift=not few_classes,
            )

    return run_lane(run_rows, (n_rows, n_classes, block_rows), block_sums, losses)


def _plain_block(
    block: FloatArray,
    labels: Any,
    work: FloatArray,
    losses: Any,
    *,
    scale: Any,
    unshifted: tuple[Any, Any] | None,
    shift: bool = True,
) -> float:
    """Compute one block of :func:`plain_cross_entropy`; return the float64 sum of its losses.

    `work` is the block's work buffer, or its rows of the gradient when `scale` (``s``) is
    given; `losses`, where given, receives the per-row losses (the sum is then 0). With
    `unshifted`, the buffers of per-row values and positions that it needs, a
    C-contiguous block first tries :func:`_label_referenced_rows`; where that does not
    hold and `shift` is False, it raises :class:`Unfit` instead of shifting.
    Invalid operations, where rows hold +inf or NaN, are ignored here.
    """
    n, n_classes = block.shape
    if unshifted is not None and block.flags.c_contiguous:
        per_row, positions = unshifted
        summed = _label_referenced_rows(
            block, labels, work, losses, scale=scale, per_row=per_row, positions=positions
        )
        if summed is not None:
            return summed
        if not shift:
            raise Unfit
    # Flat positions (a single row's are its columns): indexing a flat view costs a
    # fraction of a gather by (row, column), and of np.take.
    rows = row_indices(n)
    top = block.argmax(axis=1)
    if n == 1:
        at_top, at_label = top, labels
    else:
        offsets = _row_offsets(n, n_classes) if n <= _OFFSET_ROWS else rows * n_classes
        at_top = offsets + top
        at_label = offsets + labels
    values = block.reshape(-1) if block.flags.c_contiguous else None
    row_max = values[at_top] if values is not None else block[rows, top]
    flat = work.reshape(-1)  # work is C-contiguous
    # inf - inf and inf * 0 are NaN in the rows that hold +inf: as they should be. A row
    # whose maximum is finite makes no NaN, and one such row skips the errstate, which
    # costs a tenth of its call.
    quiet = n == 1 and math.isfinite(row_max[0])
    with _QUIET if quiet else np.errstate(invalid="ignore"):
        np.subtract(block, row_max[:, None], out=work)
        shifted_label = flat[at_label]
        np.exp(work, out=work)
        others = _sum_others(work, at_top, row_max)
        row_losses = np.log1p(others, out=losses)
        row_losses -= shifted_label
        if scale is not None:
            # s e^(x - m) / (1 + others), and s / (1 + others) at the maximum.
            factor = scale / (1 + others)
            work *= factor[:, None]
            flat[at_top] = factor
            at_labels = np.expm1(shifted_label)
            at_labels -= others
            at_labels *= factor
            flat[at_label] = at_labels
    if losses is not None:
        return 0.0
    if n == 1:  # the float64 sum of one loss
        return float(row_losses[0])
    return float(np.add.reduce(row_losses, dtype=np.float64))


def _unshifted_sums(
    logits: Any, work: Any, flat: Any, at_label: Any, per_row: Any, *, by_row: bool
) -> bool:
    """Write ``e^x`` of a block into `work` and its per-row sums; return whether they hold.

    `flat` is `work` flat (or the C-contiguous array it views), `at_label` the flat
    positions of the labels there. Writes ``e^{x_y}`` into ``per_row[0]``, 0 at the
    labels, and ``T``, the sum of the others over ``e^{x_y}``, into ``per_row[1]``;
    ``per_row[2]`` is spare. `by_row`: the rows of `work` are the block's rows (summed
    by :func:`_row_sums`), else its columns are.

    The sums hold where every ``e^{x_y}`` is a normal number, every ``T`` finite and
    every sum of ``e^x`` at least 1/2 (as for log-probabilities, whose sums are 1 to
    rounding). Then either ``e^{x_y} >= 1/4``, and what ``e^x`` loses to the subnormal
    range changes ``T`` by at most four times what ``e^{x - x_y}`` loses there (a few of
    the smallest subnormal numbers), or the others sum to at least 1/4, and ``T`` keeps
    its relative accuracy; and the gradient's factor ``s / sum`` is at most ``2 s``, so
    that each term keeps what it holds. Logits far below 0, or above ``log(max)`` (88.7
    in float32), and inf or NaN fail it (NaN fails every comparison). Overflows and
    invalid operations are the caller's to silence.
    """
    reference, others, spare = per_row
    np.exp(logits, out=work)
    np.take(flat, at_label, out=reference)  # e^(x_y)
    flat[at_label] = 0
    if by_row:
        _row_sums(work, out=others)
    else:
        np.add.reduce(work, axis=0, out=others)
    np.add(others, reference, out=spare)  # the whole sum
    others /= reference
    # The least and the largest e^(x_y), T and whole sum: two reductions, not six.
    least, _, least_sum = per_row.min(axis=1).tolist()
    largest, largest_t, _ = per_row.max(axis=1).tolist()
    return bool(
        _TINY[reference.dtype.char] <= least
        and largest < math.inf
        and least_sum >= 0.5
        and largest_t < math.inf
    )


def _label_referenced_rows(
    block: FloatArray,
    labels: Any,
    work: FloatArray,
    losses: Any,
    *,
    scale: Any,
    per_row: Any,
    positions: Any,
) -> float | None:
    r"""Compute a block of rows with each row's label as reference, from ``e^x``; or None.

    Per row, ``T = \sum_{c \ne y} e^{x_c} / e^{x_y}`` (``e^{x_y}`` read back from the
    block, then put to 0 before the row sums of :func:`_row_sums`), the loss
    ``log(1 + T)`` and the gradient ``s e^{x_c} / (e^{x_y} (1 + T))``, ``-s T / (1 +
    T)`` at the label: the forms of :func:`_plain_class_major`, in the row layout, with
    the same condition (:func:`_unshifted_sums`). `per_row` (three rows of at least
    the block's rows) and `positions` (as many indices) are the thread's buffers.
    Returns the float64 sum of the losses (0 where `losses` receives them), or None
    where the condition fails: `work` then holds nothing of use, and the caller shifts
    by the maxima.
    """
    n, n_classes = block.shape
    at_label = np.multiply(row_indices(n), n_classes, out=positions[:n])
    at_label += labels
    flat = work.reshape(-1)
    values = per_row[:, :n]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if not _unshifted_sums(block, work, flat, at_label, values, by_row=True):
            return None
    return _referenced_losses(
        work, flat, at_label, values, losses=losses, scale=scale, unshifted=True, by_row=True
    )


def _referenced_losses(
    work: FloatArray,
    flat: Any,
    at_label: Any,
    per_row: Any,
    *,
    losses: Any,
    scale: Any,
    unshifted: bool,
    by_row: bool,
) -> float:
    """Form the losses ``log(1 + T)`` of a label-referenced block, and its gradient.

    `per_row` holds ``e^{x_y}`` (where `unshifted`), ``T`` and a spare row, per row (or
    position); `work` the block's exponentials, ``e^x`` where `unshifted`, else
    ``e^{x - x_y}``, 0 at the labels, whose positions in `flat` (`work` or the
    C-contiguous array it views) are `at_label`. Where `scale` ``s`` is given, writes
    the gradient: ``s e / (e^{x_y} (1 + T))`` over `work` (without ``e^{x_y}`` for
    ``e^{x - x_y}``), ``-s T / (1 + T)`` at the labels; `per_row` is overwritten.
    `by_row`: the rows of `work` are the block's rows (else its columns are). Returns
    the float64 sum of the losses (0 where `losses` receives them).
    """
    reference, others, spare = per_row
    row_losses = np.log1p(others, out=spare if losses is None else losses)
    summed = 0.0 if losses is not None else float(np.add.reduce(row_losses, dtype=np.float64))
    if scale is not None:
        factor = np.divide(scale, np.add(others, 1, out=spare), out=spare)
        scaled = np.divide(factor, reference, out=reference) if unshifted else factor
        work *= scaled[:, None] if by_row else scaled
        np.negative(others, out=others)
        flat[at_label] = np.multiply(others, factor, out=others)
    return summed


def _plain_class_major(
    values: FloatArray, labels: Any, grad: FloatArray | None, *, scale: Any, losses: Any
) -> Any:
    r"""Return the cross-entropy of a class-major plain call, or None (see below).

    `values` is a C-contiguous ``(B, C, S)`` view of logits whose classes lie before
    other axes (PyTorch's ``(N, C, H, W)``, read in place), `labels` the ``(B, S)``
    labels, `grad` None or a C-contiguous ``(B, C, S)`` array for the gradient, `scale`
    its factor ``s``, `losses` the ``(B, S)`` per-position losses of ``"none"`` (else
    None), as :func:`plain_cross_entropy` makes them. Blocks are
    ``values[b, :, s0:s1]``: ``C`` contiguous runs of positions, a stride of ``S``
    apart. Each position takes its label's logit ``x_y`` as reference:

    .. math::

        T = \sum_{c \ne y} e^{x_c - x_y}, \qquad \ell = \log(1 + T),

    a sum of non-negative terms, the kernel's form with ``m = x_y`` (the same formula
    where the label holds the maximum): a tiny loss keeps its relative accuracy. The
    gradient is ``s e^{x_c - x_y} / (1 + T)`` off the label and ``-s T / (1 + T)`` at
    it. No pass finds the maxima; the label's entry is put to 0 by flat positions
    before the sum over the classes. The work is written into the gradient where it
    is asked for, else into a buffer of the thread.

    A block first takes ``e^x`` itself, without a shift: ``T`` is the sum of the
    others over ``e^{x_y}``, read back from the block. That saves a pass, and reads
    the label's logits once they are in the cache. A block where it does not hold
    (:func:`_unshifted_sums`: logits far below 0, or above ``log(max)``, inf or NaN)
    takes ``e^{x - x_y}``, one pass more. Where that overflows
    too (a logit more than ``log(max)`` above its label's) or ``x_y`` is ``+inf`` or
    NaN, the call stops and returns None: the caller hands it to the general path,
    which shifts by the maxima (and gives NaN where a row's maximum is ``+inf``).
    Blocks are fixed by the shape, and so is every result, whatever the thread count.
    """
    n_images, n_classes, span = values.shape
    dtype = values.dtype
    # Positions of a block: equal parts of each (C, S) image, at most a block's elements;
    # an even number of blocks where few share two threads (as _Problem.run makes them).
    parts = -(-span * n_classes // _LABEL_REFERENCED_BLOCK_ELEMENTS)
    n_blocks = n_images * parts
    if n_blocks % 2 and n_blocks < _FEW_BLOCKS and values.size >= _TWO_THREAD_ELEMENTS:
        parts = min(parts + 1, span)
    block_span = -(-span // parts)
    parts = -(-span // block_span)
    block_sums = [0.0] * (n_images * parts)

    def run_blocks(first: int, last: int) -> None:
        # The thread's buffers: three rows of per-position values, then the (C, n) work
        # where the gradient does not take its place; two rows of positions.
        rows_needed = 3 + (n_classes if grad is None else 0)
        buffer = scratch("kernel", (rows_needed, block_span), dtype)
        positions = scratch("kernel-indices", (2, block_span), np.dtype(np.intp))
        # e^x overflows or is 0, and inf - inf is NaN, only in blocks that take the shift
        # by x_y or that Unfit stops.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for index in range(first, last):
                image, part = divmod(index, parts)
                start = part * block_span
                stop = min(start + block_span, span)
                block_sums[index] = _label_referenced_block(
                    values[image],
                    labels[image, start:stop],
                    start,
                    grad=None if grad is None else grad[image],
                    buffer=buffer,
                    positions=positions,
                    losses=None if losses is None else losses[image, start:stop],
                    scale=scale,
                )

    return run_lane(run_blocks, (n_images * parts, n_classes * block_span, 1), block_sums, losses)


def _label_referenced_block(
    image: FloatArray,
    labels: Any,
    start: int,
    *,
    grad: FloatArray | None,
    buffer: Any,
    positions: Any,
    losses: Any,
    scale: Any,
) -> float:
    """Compute positions ``start:start + len(labels)`` of one image of :func:`_plain_class_major`.

    `image` holds the image's ``(C, S)`` logits, `grad` its gradient or None. `buffer`
    (rows of the thread's block size) gives three rows to the per-position values,
    and the rest, where `grad` is None, to the work. `positions` holds two rows of
    indices. Returns the float64 sum of the block's losses (0 where `losses` receives
    them). Raises :class:`Unfit` where the label-referenced form does not hold.
    """
    n_classes, span = image.shape
    n = labels.shape[0]
    stop = start + n
    logits = image[:, start:stop]
    rows = row_indices(n)
    values = buffer[:3, :n]
    # Flat positions of the labels in the work array.
    at_label = positions[0, :n]
    if grad is None:
        flat = buffer[3:].reshape(-1)[: n_classes * n]
        work = flat.reshape(n_classes, n)
        np.multiply(labels, n, out=at_label)
    else:
        work = grad[:, start:stop]
        flat = grad.reshape(-1)
        np.multiply(labels, span, out=at_label)
        at_label += start
    at_label += rows
    unshifted = _unshifted_sums(logits, work, flat, at_label, values, by_row=False)
    if not unshifted:
        # Shifted by x_y: e^(x_c - x_y), exactly 1 at the label. The labels' positions in
        # the image are their positions in the gradient, where the work is the gradient.
        at_image = at_label
        if grad is None:
            at_image = positions[1, :n]
            np.multiply(labels, span, out=at_image)
            at_image += start
            at_image += rows
        _, others, spare = values
        label_logits = np.take(image.reshape(-1), at_image, out=spare)
        np.subtract(logits, label_logits, out=work)
        np.exp(work, out=work)
        flat[at_label] = 0
        np.add.reduce(work, axis=0, out=others)
        if not (others.max() < math.inf and label_logits.max() < math.inf):
            raise Unfit
    return _referenced_losses(
        work, flat, at_label, values, losses=losses, scale=scale, unshifted=unshifted, by_row=False
    )


def work_elements(n_rows: int, n_classes: int, *, softcap: bool, grad: bool) -> int:
    """Return the elements of the work buffers one thread takes for these rows.

    For :func:`softmax_cross_entropy` (or a tile of classes) on ``(n_rows, n_classes)``
    rows without the Hessian: blocks of at most ``_BLOCK_ELEMENTS`` elements (at least
    one row), in one buffer, a second for transposed blocks, and two more for the soft
    cap's chain rule. Callers that budget memory (the fused linear layer) count them.
    """
    block_rows = max(1, _BLOCK_ELEMENTS // max(n_classes, 1))
    buffers = 1 + (n_classes <= _MAX_TRANSPOSED_CLASSES) + 2 * (softcap and grad)
    return buffers * min(block_rows, n_rows) * n_classes


def add_class_tile(call: Prepared, first_class: int, sums: RowSums) -> None:
    """Add a tile of classes to the per-row sums of its rows.

    ``call.values`` holds classes ``first_class:first_class + n`` of the rows of
    ``call.plan.n_classes`` classes, with integer targets (``call.labels``, indices
    into all the classes) and the class weights of all classes; no gradient is formed.
    """
    problem = _Problem(call, first_class)
    problem.run()
    sums.add(problem)


def class_tiles_losses(call: Prepared, sums: RowSums) -> FloatArray:
    """Return the per-row losses of rows whose every class `sums` holds.

    As :func:`softmax_cross_entropy` returns them; `call` is any tile of those rows.
    """
    lse = None
    if call.plan.z_loss > 0:
        lse = _log_sum_exp(sums.maximum, sums.others)
    problem = _Problem(call)
    block = problem.block(0, len(sums.others))
    return problem.combine(block, sums.others, sums.margins(), spread=sums.spread, lse=lse)


def class_tile_gradient(call: Prepared, first_class: int, sums: RowSums) -> None:
    """Write a tile's columns of the gradient into ``call.grad_rows``, from `sums`.

    `sums` holds every class of the rows; the tile is as for :func:`add_class_tile`.
    ``call.grad_rows`` may be ``call.values`` itself: the tile becomes its gradient.
    """
    problem = _Problem(call, first_class, sums)
    problem.run()
