r"""The categorical focal loss from logits, on the log-sum-exp kernel of ``_kernel``.

With :math:`r_c = \operatorname{lse}(x) - x_c \ge 0`, so that :math:`p_c = e^{-r_c}`,
and the target weights :math:`a_c = w_c t_c` (class weight times smoothed target), the
loss of a row is

.. math::

    \ell = \sum_c a_c\, g(r_c), \qquad g(r) = u^\gamma r, \quad u = 1 - e^{-r},

where the kernel gives :math:`r_c` as a sum of non-negative numbers, and
:math:`u_c = 1 - p_c` keeps its relative accuracy: for the row's maximum it is the
other classes' share, :math:`s / (1 + s)` with :math:`s = \sum_{c \ne k} e^{x_c - m}`
(what :math:`-\operatorname{expm1}(-r)` gives), and elsewhere :math:`p_c \le 1/2`. A
confident correct prediction, :math:`\ell \approx r^{\gamma + 1}`, keeps its digits.
For integer targets without smoothing only the true class enters, and the loss comes
from the kernel's per-row sums alone, with :math:`u = -\operatorname{expm1}(-r_y)`.

Since :math:`\partial r_c / \partial x_j = p_j - \delta_{cj}`, the gradient is the
cross-entropy's with the target weights :math:`a_c` replaced by :math:`b_c = a_c g'(r_c)`,

.. math::

    \partial_j \ell = B p_j - b_j, \quad B = \sum_c b_c, \qquad
    g'(r) = u^\gamma (1 + \gamma v), \quad v = \frac{r}{e^r - 1},

which for integer targets without smoothing is :math:`g'(r_y)` times the
cross-entropy's gradient. The diagonal of the Hessian is

.. math::

    H_{jj} = B p_j (1 - p_j) + p_j^2 \sum_{c \ne j} a_c g''(r_c) + a_j\, h(r_j),
    \qquad h(r) = u^2 g''(r) = \gamma\, u^\gamma e^{-r} u\, (2 - r + (\gamma - 1) v).

:math:`g''(r)` grows like :math:`\gamma (\gamma + 1) r^{\gamma - 1}` as :math:`r \to 0`,
without bound for :math:`0 < \gamma < 1`, and the textbook form
:math:`B p_j (1 - p_j) + p_j^2 \sum_c a_c g''(r_c) + a_j g''(r_j) (1 - 2 p_j)` cancels
there. But only a class of probability near 1 (at most one per row, above
``1 - _DOMINANT``) has a small :math:`r`, and its terms are :math:`a_d h(r_d)` on its
own diagonal entry and :math:`a_d h(r_d) (p_j / (1 - p_d))^2` on the others, with
:math:`p_j \le 1 - p_d`; the other classes' :math:`g''` is bounded. In this form every
term is finite, and so is the Hessian, for every :math:`\gamma \ge 0` and every finite
logit; it tends to 0 like :math:`r^{\gamma + 1}` for a confident prediction.

``gamma = 0`` runs the cross-entropy's kernel itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._kernel import _LOG_SUM, _Block, _Problem, softmax_cross_entropy
from ._prepare import Prepared, weighted_product
from ._threads import scratch
from ._types import FloatArray

__all__ = ["softmax_focal_loss"]

# Class probabilities above 1 - _DOMINANT (at most one per row, the row's maximum) have
# their g'' terms formed with h(r): for the others 1 / u^2 <= 1 / _DOMINANT^2.
_DOMINANT = 0.25


def _limits(v: FloatArray, r: FloatArray) -> None:
    """Give ``v = r / (e^r - 1)``, formed as ``p r / u``, its limits at ``r = 0`` and inf."""
    if not np.isfinite(v.sum()):
        v[r == 0] = 1
        v[r == np.inf] = 0


class _FocalProblem(_Problem):
    """The kernel's blocks with focal target weights; ``gamma > 0``.

    Integer targets without smoothing (`dense` False) use the cross-entropy's per-row
    sums and gradient, scaled per row. Otherwise each block keeps its shifted logits
    in a work buffer of its thread when :meth:`target_sums` sees them, turns them into
    ``r``, ``u`` and ``u^gamma`` once the block's log-sum-exp is known
    (:meth:`block_losses`), and forms the loss, gradient and Hessian from them: the
    same thread's buffers of the same name and shape are the same memory within a
    block.
    """

    def __init__(self, call: Prepared, *, weighted: bool = False) -> None:
        super().__init__(call, weighted=weighted)
        self.gamma = self.logits.dtype.type(call.plan.gamma)
        self.dense = self.labels is None or self.smoothed
        if self.dense:
            # Ten work buffers of a block, not one to three: blocks a quarter the size.
            self.block_elements //= 4

    def block_shape(self, start: int, stop: int) -> tuple[int, int]:
        """Return the laid-out shape of block ``start:stop``."""
        n_classes = self.logits.shape[1]
        return (n_classes, stop - start) if self.transposed else (stop - start, n_classes)

    def buffers(self, start: int, stop: int, count: int = 10) -> FloatArray:
        """Return `count` work buffers of this thread for block ``start:stop``.

        The dense path's rows: 0 ``r``, 1 ``u``, 2 ``u^gamma``, 3 ``a``, then work space.
        """
        shape = self.block_shape(start, stop)
        return scratch("focal", (count, *shape), self.logits.dtype)  # type: ignore[no-any-return]

    def mask(self, start: int, stop: int) -> Any:
        """Return a boolean work buffer of this thread for block ``start:stop``."""
        return scratch("focal-mask", self.block_shape(start, stop), np.dtype(np.bool_))

    def target_sums(self, block: _Block, shifted: FloatArray) -> None:
        if not self.dense:
            super().target_sums(block, shifted)
            return
        np.copyto(self.buffers(block.start, block.stop)[0], shifted)

    def block_losses(self, block: _Block, exps: FloatArray, others: FloatArray) -> FloatArray:
        """Return the focal losses of a block, unweighted by any sample weight."""
        out = self.losses_buffer(block)
        if not self.dense:
            # Only the label enters: from r_y = log(1 + others) + (m - x_y).
            with np.errstate(invalid="ignore"):
                r = np.log1p(others, out=block.values[_LOG_SUM])
                r += block.margin
                values = np.negative(r, out=out)
                np.expm1(values, out=values)
                np.negative(values, out=values)
                np.power(values, self.gamma, out=values)
                values *= r
            return weighted_product(block.hard, values, out=values)  # type: ignore[no-any-return]
        start, stop = block.start, block.stop
        axis = 0 if self.transposed else 1
        r, u, power, weights, terms = self.buffers(start, stop)[:5]
        with np.errstate(invalid="ignore"):
            total = 1 + others
            # u = 1 - p: at a row maximum (x = m) the others' share, others / (1 + others),
            # as -expm1(-r) would give it; elsewhere p <= 1/2 and 1 - p loses nothing.
            at_max = np.equal(r, 0, out=self.mask(start, stop))
            # The exponentials left out of the sums are 1 (a class-major block leaves out
            # those within rounding of the maximum too, where r > 0).
            if block.marks is not None:
                exps = np.add(exps, block.marks, out=u)
            np.divide(exps, self.per_row(total), out=u)
            np.subtract(1, u, out=u)
            np.copyto(u, self.per_row(others / total), where=at_max)
            np.subtract(self.per_row(np.log1p(others)), r, out=r)  # lse - x >= 0
            np.power(u, self.gamma, out=power)
            self.target_weights(block, out=weights)
            np.multiply(power, r, out=terms)
            terms *= weights
            terms.sum(axis=axis, out=out)
            if np.isnan(out.sum()):
                # A class of weight 0 with a logit of -inf (r = inf) contributes 0.
                terms[weights == 0] = 0
                terms.sum(axis=axis, out=out)
        return out

    def target_weights(self, block: _Block, out: FloatArray) -> None:
        """Write the smoothed, class-weighted targets ``a`` of a block, laid out, to `out`."""
        start, stop = block.start, block.stop
        if self.labels is None:
            self.dense_weights(start, stop, out=out)
            return
        # Integer targets with smoothing: eps / C spread over the classes, 1 - eps on y.
        share: Any = self.smooth_share
        label_weight: Any = self.hard_fraction
        labels = block.labels
        if self.class_weight is not None:
            weight = self.class_weight
            share = share * (weight[:, None] if self.transposed else weight)
            label_weight = label_weight * weight[labels]
        out[...] = share
        positions = self.label_positions(labels, block.rows, self.n_classes)
        out.reshape(-1)[positions] += label_weight

    def gradient(
        self,
        block: _Block,
        exps: FloatArray,
        others: FloatArray,
        *,
        hess: FloatArray | None,
    ) -> None:
        """Turn the exponentials of a block into the focal loss's gradient, in place.

        With `hess`, write the diagonal of the Hessian there.
        """
        with np.errstate(invalid="ignore", divide="ignore"):
            if self.dense:
                self.dense_gradient(block, exps, others, hess=hess)
            else:
                self.label_gradient(block, exps, others, hess=hess)

    def label_gradient(
        self,
        block: _Block,
        exps: FloatArray,
        others: FloatArray,
        *,
        hess: FloatArray | None,
    ) -> None:
        """Integer targets without smoothing: ``g'(r_y)`` times the cross-entropy's."""
        start, stop = block.start, block.stop
        gamma = self.gamma
        r = np.log1p(others)
        r += block.margin
        u = -np.expm1(-r)
        power = np.power(u, gamma)
        p = np.exp(-r)
        v = p * r / u
        _limits(v, r)
        slope = power * (1 + gamma * v)
        scaled_label_weight = self.call.grad_scale(start, stop, factor=block.hard)
        left_out = scaled_label_weight == 0
        extra = None
        if hess is not None:
            h = gamma * power * p * u * (2 - r + (gamma - 1) * v)
            h[r == np.inf] = 0
            curvature = weighted_product(scaled_label_weight, h)
            # a_y h(r_y) (p_j / (1 - p_y))^2 for j != y, a_y h(r_y) for j = y, where
            # p_j / (1 - p_y) = e_j / (u_y (1 + others)) <= 1.
            denominator = u * (1 + others)
            denominator[denominator == 0] = 1  # then e_j = 0 for j != y
            extra = self.buffers(start, stop, 1)[0]
            np.divide(exps, self.per_row(denominator), out=extra)
            extra *= extra
            extra *= self.per_row(curvature)
            positions = self.label_positions(block.labels, block.rows, self.n_classes)
            extra.reshape(-1)[positions] = curvature
            self.zero_rows(extra, left_out)
        super().gradient(block, exps, others, hess=hess)
        factor = self.per_row(np.where(left_out, 0, slope))
        exps *= factor
        if hess is not None and extra is not None:
            hess *= factor
            hess += extra

    def dense_gradient(
        self,
        block: _Block,
        exps: FloatArray,
        others: FloatArray,
        *,
        hess: FloatArray | None,
    ) -> None:
        """Soft targets or smoothing: ``B p - b`` per class, from the block's buffers."""
        start, stop = block.start, block.stop
        gamma = self.gamma
        axis = 0 if self.transposed else 1
        buffers = self.buffers(start, stop)
        r, u, power, weights, p, v, b = buffers[:7]
        denominator = 1 + others
        np.divide(exps, self.per_row(denominator), out=p)
        np.multiply(p, r, out=v)
        v /= u
        _limits(v, r)
        np.multiply(v, gamma, out=b)
        b += 1
        b *= power
        b *= weights
        total = b.sum(axis=axis)
        scale = self.call.grad_scale(start, stop)
        left_out = self.call.grad_scale(start, stop, factor=weights.sum(axis=axis)) == 0
        if hess is not None:
            self.dense_hessian(start, stop, exps, others, total, hess=hess)
            hess *= self.per_row(scale)
            self.zero_rows(hess, left_out)
        # (B e - b (1 + others)) / (1 + others): where b is the only weight, at the
        # row's maximum (e = 1), B - b is exactly 0 and -b others keeps its digits.
        exps *= self.per_row(total)
        exps -= b
        b *= self.per_row(others)
        exps -= b
        exps *= self.per_row(scale / denominator)
        self.zero_rows(exps, left_out)

    def dense_hessian(
        self,
        start: int,
        stop: int,
        exps: FloatArray,
        others: FloatArray,
        total: FloatArray,
        *,
        hess: FloatArray,
    ) -> None:
        """Write the diagonal of the Hessian of a block's loss (unscaled) into `hess`."""
        gamma = self.gamma
        axis = 0 if self.transposed else 1
        r, u, power, weights, p, v, _, pu, ah, q = self.buffers(start, stop)
        np.multiply(p, u, out=pu)  # p (1 - p)
        # a h(r) = a gamma u^gamma p u (2 - r + (gamma - 1) v); its limit at r = inf is 0.
        np.multiply(v, gamma - 1, out=ah)
        ah += 2
        ah -= r
        ah *= pu
        ah *= power
        ah *= gamma
        if not np.isfinite(ah.sum()):
            ah[r == np.inf] = 0
        ah *= weights
        # a g''(r) = a h(r) / u^2, except for a class of probability near 1.
        dominant = np.less(u, _DOMINANT, out=self.mask(start, stop))
        np.multiply(u, u, out=q)
        np.divide(ah, q, out=q)
        np.copyto(q, 0, where=dominant)
        summed = q.sum(axis=axis)
        dominant_ah = np.sum(ah, axis=axis, where=dominant)
        # B p (1 - p) + p^2 (sum_c q_c - q_j) + a_j h(r_j)
        np.subtract(self.per_row(summed), q, out=hess)
        hess *= p
        hess *= p
        hess += ah
        pu *= self.per_row(total)
        hess += pu
        if np.any(dominant_ah):
            # The dominant class d: a_d h(r_d) (p_j / (1 - p_d))^2 = a_d h(r_d) (e_j / others)^2
            # for j != d, as d is the row's maximum (e_d = 1).
            ratio = q
            np.divide(exps, self.per_row(np.where(others == 0, 1, others)), out=ratio)
            ratio *= ratio
            ratio *= self.per_row(dominant_ah)
            np.copyto(ratio, 0, where=dominant)
            hess += ratio


def softmax_focal_loss(call: Prepared, *, weighted: bool = False) -> Any:
    """Return the per-row focal loss of a categorical call's ``(N, C)`` logits.

    That is ``sum_c a_c (1 - p_c)^gamma (lse(x) - x_c)`` per row, unweighted by any
    sample weight, with the gradient and the diagonal of the Hessian written as
    :func:`softmax_cross_entropy` writes them; ``gamma = 0`` is that function.
    """
    if call.plan.gamma == 0:
        return softmax_cross_entropy(call, weighted=weighted)
    problem = _FocalProblem(call, weighted=weighted)
    problem.run()
    return problem.result()
