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

Rows are processed in blocks that stay in cache, and blocks are spread over threads.
The focal loss (``_focal``) runs on the same blocks, through two hooks of the class
that holds a call, :meth:`_Problem.target_sums` and :meth:`_Problem.rows_summed`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._prepare import Prepared, part, weighted_product
from ._threads import run_in_ranges, scratch
from ._types import FloatArray

__all__ = ["softmax_cross_entropy"]

# Elements of one block of rows: a block and its exponentials stay in the L2 cache,
# and blocks are large enough that the cost of a NumPy call is small beside its work.
_BLOCK_ELEMENTS = 1 << 18
# Up to this many classes, blocks are transposed to (classes, rows).
_MAX_TRANSPOSED_CLASSES = 48


class _Problem:
    """One call of the kernel: its arrays, shared by the threads that work on its blocks.

    Each block of rows is laid out so that the class reductions are fast in NumPy: as
    it is, (rows, classes), when the class axis is long; transposed, (classes, rows),
    when it is short, so that a reduction over classes runs over whole contiguous rows.
    A block never writes outside its own rows of the per-row results.
    """

    # Elements of a block: a subclass with more work buffers may take smaller blocks.
    block_elements = _BLOCK_ELEMENTS

    def __init__(self, call: Prepared) -> None:
        logits = call.values
        labels = call.labels
        class_weight = call.class_weight
        label_smoothing = call.plan.label_smoothing
        n_rows, n_classes = logits.shape
        dtype = logits.dtype.type
        hard_fraction, smooth_share = call.smoothing
        self.logits = logits
        self.labels = labels
        self.soft_target = call.target
        self.class_weight = class_weight
        self.hard_fraction = dtype(hard_fraction)
        self.smooth_share = dtype(smooth_share)
        self.call = call
        self.grad = call.grad_rows
        self.hess = call.hess_rows
        self.transposed = n_classes <= _MAX_TRANSPOSED_CLASSES
        # Per row: sum_{c != k} exp(x_c - m); sum_c a_c (m - x_c), or for integer
        # targets m - x_y; and sum_c w_c (m - x_c) when smoothing integer targets.
        self.others = np.empty(n_rows, dtype=dtype)
        self.margin = np.empty(n_rows, dtype=dtype)
        self.spread = np.empty(n_rows, dtype=dtype) if label_smoothing > 0 else None
        # Smoothing spreads weight over the classes of non-zero class weight only, so
        # that a class of weight 0 contributes exactly 0, even with a logit of -inf.
        self.smooth_classes: np.ndarray[Any, Any] | None = None
        self.smooth_weight: FloatArray | None = None
        class_weight_sum = dtype(n_classes)
        if class_weight is not None:
            class_weight_sum = class_weight.sum(dtype=np.float64).astype(logits.dtype)
            positive = class_weight > 0
            if not np.all(positive):
                self.smooth_classes = np.flatnonzero(positive)
            self.smooth_weight = class_weight[positive]
        # A = sum_c a_c per row: known before the pass for integer targets.
        self.hard: Any = None
        self.target_weight: Any
        if labels is None:
            self.target_weight = np.empty(n_rows, dtype=dtype)
        else:
            label_weight = 1.0 if class_weight is None else class_weight[labels]
            self.hard = self.hard_fraction * label_weight
            self.target_weight = self.hard + self.smooth_share * class_weight_sum

    def run_rows(self, start: int, stop: int) -> None:
        """Compute rows ``start:stop``, block by block, with one work buffer."""
        n_classes = self.logits.shape[1]
        block_rows = max(1, self.block_elements // n_classes)
        shape = (min(block_rows, stop - start), n_classes)
        if self.transposed:
            shape = shape[::-1]
        buffer = scratch("kernel", shape, self.logits.dtype)
        # Transposed blocks mark their maxima in a second buffer, as 1.0 and 0.0.
        marks = scratch("marks", shape, self.logits.dtype) if self.transposed else buffer
        # Transposed blocks form the Hessian's diagonal in a third buffer.
        curvature = None
        if self.hess is not None and self.transposed:
            curvature = scratch("curvature", shape, self.logits.dtype)
        for begin in range(start, stop, block_rows):
            end = min(begin + block_rows, stop)
            self.run_block(begin, end, buffer, marks, curvature)

    def run_block(
        self,
        start: int,
        stop: int,
        buffer: FloatArray,
        marks: FloatArray,
        curvature: FloatArray | None,
    ) -> None:
        """Compute one block of rows: per-row sums, and the derivatives if asked for."""
        block = self.logits[start:stop]
        n = stop - start
        n_classes = block.shape[1]
        rows = np.arange(n)
        grad_block = None if self.grad is None else self.grad[start:stop]
        with np.errstate(invalid="ignore"):
            if self.transposed:
                # (classes, rows), contiguous: the maxima are found by comparing with 0
                # after the shift, and may tie; the exponential of each is exactly 1.
                work = buffer.reshape(-1)[: n_classes * n].reshape(n_classes, n)
                is_max = marks.reshape(-1)[: n_classes * n].reshape(n_classes, n)
                np.copyto(work, block.T)
                row_max = np.max(work, axis=0)
                np.subtract(work, row_max, out=work)
                np.equal(work, 0, out=is_max)
                self.target_sums(start, stop, work, rows)
                np.exp(work, out=work)
                np.subtract(work, is_max, out=work)
                ties = is_max.sum(axis=0)
                ties -= 1
                others = work.sum(axis=0)
                others += ties
            else:
                work = buffer[:n]
                if grad_block is not None and grad_block.flags.c_contiguous:
                    work = grad_block
                top = np.argmax(block, axis=1)
                np.subtract(block, block[rows, top][:, None], out=work)
                self.target_sums(start, stop, work, rows)
                np.exp(work, out=work)
                work[rows, top] = 0
                others = work.sum(axis=1)
        self.others[start:stop] = others
        self.rows_summed(start, stop, work, others)
        if grad_block is None:
            return
        if self.transposed:
            np.add(work, is_max, out=work)
        else:
            work[rows, top] = 1
        hess_work = None
        if self.hess is not None:
            hess_work = self.hess[start:stop]
            if curvature is not None:
                hess_work = curvature.reshape(-1)[: n_classes * n].reshape(n_classes, n)
        self.gradient(start, stop, work, rows, others, hess=hess_work)
        if self.transposed:
            grad_block[...] = work.T
            if self.hess is not None and hess_work is not None:
                self.hess[start:stop] = hess_work.T
        elif work is not grad_block:
            grad_block[...] = work

    def rows_summed(self, start: int, stop: int, exps: FloatArray, others: FloatArray) -> None:
        """Take note of a block's sums ``others``, before its derivatives (a hook).

        `exps` holds the block's ``e^(x - m)``, laid out, 0 at the row maximum (at every
        tied maximum when transposed). Nothing here. The block's shifted logits went to
        :meth:`target_sums` before: a subclass that needs per-class terms of the
        log-sum-exp (the focal loss) keeps them there and forms its terms here.
        """

    def per_row(self, values: Any) -> Any:
        """Shape per-row `values` (or one value for all rows) to broadcast against a block."""
        return values if self.transposed or np.ndim(values) == 0 else values[:, None]

    def label_positions(self, labels: Any, rows: Any, n_classes: int) -> Any:
        """Return the flat positions of the (row, label) entries of a contiguous work block."""
        return labels * len(rows) + rows if self.transposed else rows * n_classes + labels

    def target_sums(self, start: int, stop: int, shifted: FloatArray, rows: Any) -> None:
        """Store the target-weighted sums of ``m - x`` of a block, from ``shifted = x - m``."""
        axis = 0 if self.transposed else 1
        if self.labels is None:
            weights = self.dense_weights(start, stop)
            products = weights * shifted
            products[weights == 0] = 0
            self.target_weight[start:stop] = weights.sum(axis=axis)
            self.margin[start:stop] = -products.sum(axis=axis)
            return
        positions = self.label_positions(self.labels[start:stop], rows, self.logits.shape[1])
        self.margin[start:stop] = -np.take(shifted.reshape(-1), positions)
        if self.spread is None:
            return
        if self.smooth_classes is not None:
            shifted = np.take(shifted, self.smooth_classes, axis=axis)
        if self.smooth_weight is None:
            spread = shifted.sum(axis=axis)
        elif self.transposed:
            spread = self.smooth_weight @ shifted
        else:
            spread = shifted @ self.smooth_weight
        self.spread[start:stop] = -spread

    def dense_weights(self, start: int, stop: int) -> FloatArray:
        """Return the smoothed, class-weighted probability targets of a block, laid out."""
        assert self.soft_target is not None
        target = self.soft_target[start:stop]
        weights = (target.T if self.transposed else target) * self.hard_fraction
        weights += self.smooth_share
        if self.class_weight is not None:
            weights *= self.class_weight[:, None] if self.transposed else self.class_weight
        return weights

    def gradient(
        self,
        start: int,
        stop: int,
        exps: FloatArray,
        rows: Any,
        others: FloatArray,
        *,
        hess: FloatArray | None,
    ) -> None:
        """Turn the exponentials of a block into ``scale * (A softmax(x) - a)`` in place.

        With `hess`, first write ``scale * A p (1 - p)`` there, ``p = softmax(x)``.
        """
        call = self.call
        target_weight = part(self.target_weight, start, stop)
        # s A / D and s a_y / D are divided in float64, not formed as (s / D) A: with tiny
        # class weights s / D alone may overflow where the product is of order 1.
        scaled_target_weight = call.grad_scale(start, stop, factor=target_weight)
        denominator = 1 + others
        if hess is not None:
            # p (1 - p) = e (1 + others - e) / (1 + others)^2: the row maximum (e = 1)
            # gets others / (1 + others)^2 without cancellation.
            np.subtract(1, exps, out=hess)
            hess += self.per_row(others)
            hess *= exps
            hess *= self.per_row(scaled_target_weight / (denominator * denominator))
        if self.labels is None:
            exps *= self.per_row(scaled_target_weight / denominator)
            exps -= self.dense_weights(start, stop) * self.per_row(call.grad_scale(start, stop))
        else:
            labels = self.labels[start:stop]
            scaled_hard = call.grad_scale(start, stop, factor=part(self.hard, start, stop))
            positions = self.label_positions(labels, rows, self.logits.shape[1])
            at_labels = np.take(exps.reshape(-1), positions)
            exps *= self.per_row(scaled_target_weight / denominator)
            # A softmax(x)_y - a_y = ((A e_y - a_y) - a_y others) / (1 + others): where the
            # label holds the row's maximum (e_y = 1, A = a_y without smoothing), this
            # keeps the digits that A / (1 + others) - a_y would lose to cancellation.
            at_labels *= scaled_target_weight
            at_labels -= scaled_hard
            at_labels -= scaled_hard * others
            at_labels /= denominator
            exps.reshape(-1)[positions] = at_labels
            if self.spread is not None:
                share = self.per_row(call.grad_scale(start, stop) * self.smooth_share)
                if self.class_weight is None:
                    exps -= share
                else:
                    weight = self.class_weight
                    exps -= share * (weight[:, None] if self.transposed else weight)
        # Rows left out, of weight 0 or whose target weighs 0 (even with logits of -inf
        # and NaN exponentials) have a gradient of exactly 0: a_c >= 0 sum to A.
        left_out = scaled_target_weight == 0
        for values in (exps,) if hess is None else (exps, hess):
            self.zero_rows(values, left_out)

    def zero_rows(self, values: FloatArray, left_out: Any) -> None:
        """Set to 0 the rows of a laid-out block where `left_out` (per row, or one) is True."""
        if np.ndim(left_out) == 0:
            if left_out:
                values[...] = 0
        elif np.any(left_out):
            if self.transposed:
                values[:, left_out] = 0
            else:
                values[left_out] = 0

    def losses(self) -> FloatArray:
        """Combine the per-row sums into ``A log(1 + others) + margin``."""
        log_sum = np.log1p(self.others)
        if self.labels is None:
            margin = self.margin
        else:
            margin = weighted_product(self.hard, self.margin)
            if self.spread is not None:
                margin += self.smooth_share * self.spread
        losses: FloatArray = weighted_product(self.target_weight, log_sum) + margin
        return losses.astype(self.logits.dtype, copy=False)


def softmax_cross_entropy(call: Prepared) -> FloatArray:
    """Return the per-row cross-entropy of a categorical call's ``(N, C)`` logits.

    That is ``sum_c a_c (lse(x) - x_c)`` per row, with ``a_c = w_c t_c`` (class weight
    times smoothed target), unweighted by any sample weight. With ``call.grad_rows``
    the rows of the gradient, ``grad_scale * (A softmax(x) - a)``, are written there,
    and with ``call.hess_rows`` the diagonal of the Hessian, ``grad_scale * A p (1 - p)``;
    rows whose scale is 0 are exactly 0.
    """
    problem = _Problem(call)
    run_in_ranges(problem.run_rows, call.values.shape[0], call.values.shape[1])
    return problem.losses()
