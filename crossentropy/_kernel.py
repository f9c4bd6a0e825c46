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
is formed in the same buffer as the exponentials.

Rows are processed in blocks that stay in cache, and blocks are spread over threads.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._threads import run_in_ranges
from ._validation import FloatArray

__all__ = ["softmax_cross_entropy", "weighted_product"]

# Elements of one row block: a block and its exponentials stay in the L2 cache.
_BLOCK_ELEMENTS = 1 << 14


def weighted_product(weight: Any, values: FloatArray) -> Any:
    """Return ``weight * values``, with exactly 0 where `weight` is 0 (also for inf values)."""
    with np.errstate(invalid="ignore"):
        product = weight * values
    return np.where(np.asarray(weight) != 0, product, 0)


class _Problem:
    """The arrays of one call, shared read-only by the threads that work on its blocks."""

    def __init__(
        self,
        logits: FloatArray,
        *,
        labels: np.ndarray[Any, Any] | None,
        soft_target: FloatArray | None,
        class_weight: FloatArray | None,
        label_smoothing: float,
        grad: FloatArray | None,
        grad_scale: FloatArray | None,
    ) -> None:
        n_classes = logits.shape[1]
        self.logits = logits
        self.labels = labels
        self.soft_target = soft_target
        self.class_weight = class_weight
        self.hard_fraction = 1.0 - label_smoothing
        self.smooth_share = label_smoothing / n_classes
        self.grad = grad
        self.grad_scale = grad_scale
        self.losses = np.empty(logits.shape[0], dtype=logits.dtype)
        # Smoothing with integer targets: sum_c w_c (m - x_c) over the classes of
        # non-zero weight (a class of weight 0 contributes exactly 0, even at -inf).
        self.smooth_columns: np.ndarray[Any, Any] | None = None
        self.smooth_weight: FloatArray | None = None
        self.total_class_weight = float(n_classes)
        if class_weight is not None:
            self.total_class_weight = float(np.sum(class_weight, dtype=np.float64))
            positive = class_weight > 0
            if not np.all(positive):
                self.smooth_columns = np.flatnonzero(positive)
            self.smooth_weight = class_weight[positive]

    def target_sums(
        self, start: int, stop: int, shifted: FloatArray
    ) -> tuple[Any, Any, FloatArray | None]:
        """Return ``A``, ``sum_c a_c (m - x_c)`` and the dense weights ``a`` of a block.

        `shifted` holds ``x - m`` for the rows of the block. ``a`` is None for integer
        targets, whose weights are never built as a dense array.
        """
        dtype = shifted.dtype
        if self.labels is None:
            assert self.soft_target is not None
            weights = self.soft_target[start:stop] * dtype.type(self.hard_fraction)
            weights += dtype.type(self.smooth_share)
            if self.class_weight is not None:
                weights *= self.class_weight
            with np.errstate(invalid="ignore"):
                products = weights * shifted
            products[weights == 0] = 0
            return weights.sum(axis=1), -products.sum(axis=1), weights
        labels = self.labels[start:stop]
        rows = np.arange(stop - start)
        label_weight: Any = 1.0 if self.class_weight is None else self.class_weight[labels]
        hard = dtype.type(self.hard_fraction) * label_weight
        total = hard + dtype.type(self.smooth_share * self.total_class_weight)
        margin = weighted_product(hard, -shifted[rows, labels])
        if self.smooth_share > 0:
            columns = shifted if self.smooth_columns is None else shifted[:, self.smooth_columns]
            spread = (
                columns.sum(axis=1) if self.smooth_weight is None else columns @ self.smooth_weight
            )
            margin = margin - dtype.type(self.smooth_share) * spread
        return total, margin, None

    def run_rows(self, start: int, stop: int) -> None:
        """Compute the losses (and the gradient) of rows ``start:stop``, block by block."""
        n_classes = self.logits.shape[1]
        block_rows = max(1, _BLOCK_ELEMENTS // max(n_classes, 1))
        buffer = np.empty((min(block_rows, stop - start), n_classes), dtype=self.logits.dtype)
        for begin in range(start, stop, block_rows):
            end = min(begin + block_rows, stop)
            self.run_block(begin, end, buffer[: end - begin])

    def run_block(self, start: int, stop: int, buffer: FloatArray) -> None:
        """Compute the losses (and the gradient) of one block of rows."""
        block = self.logits[start:stop]
        rows = np.arange(stop - start)
        grad_block = None if self.grad is None else self.grad[start:stop]
        work = buffer
        if grad_block is not None and grad_block.flags.c_contiguous:
            work = grad_block
        top = np.argmax(block, axis=1)
        row_max = block[rows, top]
        with np.errstate(invalid="ignore"):
            np.subtract(block, row_max[:, None], out=work)
        total, margin, dense_weights = self.target_sums(start, stop, work)
        np.exp(work, out=work)
        work[rows, top] = 0
        others = work.sum(axis=1)
        log_sum = np.log1p(others)
        self.losses[start:stop] = weighted_product(total, log_sum) + margin
        if grad_block is None:
            return
        assert self.grad_scale is not None
        scale = self.grad_scale[start:stop]
        work[rows, top] = 1
        work *= (scale * total / (1 + others))[:, None]
        if dense_weights is not None:
            dense_weights *= scale[:, None]
            work -= dense_weights
        else:
            assert self.labels is not None
            labels = self.labels[start:stop]
            hard = self.hard_fraction * (
                1.0 if self.class_weight is None else self.class_weight[labels]
            )
            work[rows, labels] -= scale * hard
            if self.smooth_share > 0:
                share = scale * self.smooth_share
                if self.class_weight is None:
                    work -= share[:, None]
                else:
                    work -= np.multiply.outer(share, self.class_weight)
        left_out = scale == 0
        if np.any(left_out):
            work[left_out] = 0
        if work is not grad_block:
            grad_block[...] = work


def softmax_cross_entropy(
    logits: FloatArray,
    *,
    labels: np.ndarray[Any, Any] | None = None,
    soft_target: FloatArray | None = None,
    class_weight: FloatArray | None = None,
    label_smoothing: float = 0.0,
    grad: FloatArray | None = None,
    grad_scale: FloatArray | None = None,
) -> FloatArray:
    """Return the per-row cross-entropy of 2-D `logits` (rows, classes).

    Parameters
    ----------
    logits : ndarray of shape (n_rows, n_classes)
        Floating logits, read only.
    labels : ndarray of shape (n_rows,), optional
        Valid class indices (``intp``); exactly one of `labels` and `soft_target`.
    soft_target : ndarray of shape (n_rows, n_classes), optional
        Target probabilities in the dtype of `logits`.
    class_weight : ndarray of shape (n_classes,), optional
        Non-negative class weights.
    label_smoothing : float
        Epsilon of ``t <- (1 - eps) t + eps / C``.
    grad : ndarray of shape (n_rows, n_classes), optional
        Receives ``grad_scale[:, None] * (A softmax(x) - a)``; rows whose scale is 0
        are set to exactly 0.
    grad_scale : ndarray of shape (n_rows,), optional
        Factor of each row of the gradient; required with `grad`.

    Returns
    -------
    ndarray of shape (n_rows,)
        ``sum_c a_c (lse(x) - x_c)`` per row, unweighted by any sample weight.
    """
    problem = _Problem(
        logits,
        labels=labels,
        soft_target=soft_target,
        class_weight=class_weight,
        label_smoothing=label_smoothing,
        grad=grad,
        grad_scale=grad_scale,
    )
    run_in_ranges(problem.run_rows, logits.shape[0], logits.shape[1])
    return problem.losses
