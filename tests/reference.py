"""Plain float64 loops over elements: the oracle the tests compare the package with.

Written from the formulas of SPEC.md, one element and one class at a time, with
``math.log`` and ``math.exp`` on Python floats; nothing here is vectorized or shared
with the package.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import product

import mpmath
import numpy as np


def _log_sum_exp(row: list[float]) -> float:
    top = max(row)
    return top + math.log(sum(math.exp(v - top) for v in row))


def _log_softmax(row: list[float]) -> list[float]:
    top = max(row)
    total = sum(math.exp(v - top) for v in row)
    return [v - top - math.log(total) for v in row]


def default_eps(first) -> float:
    """``np.finfo`` eps of the computation dtype: float32 for float16/float32, else float64."""
    dtype = np.asarray(first).dtype
    return float(np.finfo(np.float32 if dtype in (np.float16, np.float32) else np.float64).eps)


def _reduce(losses: np.ndarray, weights: np.ndarray, reduction: str):
    if reduction == "none":
        return losses
    total = float(sum(losses.ravel()))
    if reduction == "sum":
        return total
    denominator = float(sum(weights.ravel()))
    return total / denominator if denominator else math.nan


def _focal_softmax_terms(row: list[float], gamma: float) -> list[float]:
    """``-(1 - p_c)^gamma log p_c`` of ``p = softmax(row)`` at 60 digits, with mpmath.

    ``1 - p_c`` is the sum of the other classes' probabilities and ``log p_c`` of the
    largest class ``-log1p`` of the others' share, so that no digit is lost where
    ``p_c`` is near 1.
    """
    with mpmath.workdps(60):
        x = [mpmath.mpf(v) for v in row]
        top = max(x)
        e = [mpmath.exp(v - top) for v in x]
        total = mpmath.fsum(e)
        terms = []
        for c in range(len(x)):
            rest = mpmath.fsum(e[:c] + e[c + 1 :])
            # The largest class: log p = -log1p(rest), without rounding total to 1.
            log_p = -mpmath.log1p(rest) if x[c] == top else x[c] - top - mpmath.log(total)
            terms.append(float(-((rest / total) ** gamma) * log_p))
    return terms


def categorical(
    first,
    target,
    *,
    logits: bool,
    gamma=0.0,
    reduction="mean",
    class_weight=None,
    sample_weight=None,
    where=None,
    ignore_index=None,
    label_smoothing=0.0,
    z_loss=0.0,
    softcap=None,
    eps=None,
    axis=-1,
):
    """The categorical losses, element by element; the focal losses for ``gamma > 0``.

    The focal losses with logits take their terms from :func:`_focal_softmax_terms`;
    with probabilities, ``-(1 - q)^gamma log q`` of the clipped ``q`` in float64. From
    logits, ``softcap=c`` first replaces each logit by ``c tanh(x / c)``, and
    ``z_loss=z`` adds ``z lse(x)^2`` to each element's loss before its sample weight.
    """
    clip = default_eps(first) if eps is None else eps
    x = np.moveaxis(np.asarray(first, dtype=float), axis, -1)
    n_classes = x.shape[-1]
    batch = x.shape[:-1]
    t = np.asarray(target)
    labels = t.dtype.kind in "iu"
    if not labels:
        t = np.moveaxis(t.astype(float), axis, -1)
    w = [1.0] * n_classes if class_weight is None else [float(v) for v in class_weight]
    s = np.broadcast_to(1.0 if sample_weight is None else sample_weight, batch)
    kept = np.broadcast_to(True if where is None else where, batch)
    losses = np.zeros(batch)
    weights = np.zeros(batch)
    for index in np.ndindex(batch):
        if not kept[index] or (labels and t[index] == ignore_index):
            continue
        row = [float(v) for v in x[index]]
        if labels:
            onehot = [1.0 if c == t[index] else 0.0 for c in range(n_classes)]
        else:
            onehot = [float(v) for v in t[index]]
        smooth = [(1 - label_smoothing) * v + label_smoothing / n_classes for v in onehot]
        if logits:
            if softcap is not None:
                row = [softcap * math.tanh(v / softcap) for v in row]
            log_p = _log_softmax(row)
        else:
            log_p = [
                math.log(min(max(p, clip), 1 - clip))
                if min(max(p, clip), 1 - clip) > 0
                else -math.inf
                for p in row
            ]
        # -(1 - p_c)^gamma log p_c; -log p_c for the cross-entropy
        if gamma == 0:
            terms = [-v for v in log_p]
        elif logits:
            terms = _focal_softmax_terms(row, gamma)
        else:
            q = [min(max(p, clip), 1 - clip) for p in row]
            terms = [(1 - q[c]) ** gamma * -log_p[c] if q[c] < 1 else 0.0 for c in range(n_classes)]
        loss = 0.0
        for c in range(n_classes):
            a = w[c] * smooth[c]
            if a != 0:
                loss += a * terms[c]
        if z_loss:
            loss += z_loss * _log_sum_exp(row) ** 2
        # A sample weight of 0 makes every term's weight 0: the element contributes 0.
        losses[index] = float(s[index]) * loss if s[index] else 0.0
        # D: each element weighs s * sum_c w_c t_c with the unsmoothed target, w = 1 when
        # absent, so that rows of probabilities that do not sum to 1 weigh their sum.
        weights[index] = float(s[index]) * sum(w[c] * onehot[c] for c in range(n_classes))
    return _reduce(losses, weights, reduction)


def categorical_focal(first, target, *, logits: bool, gamma=2.0, **options):
    """The categorical focal losses: :func:`categorical` with ``gamma`` (default 2)."""
    return categorical(first, target, logits=logits, gamma=gamma, **options)


def _softplus(x: float) -> float:
    if x == math.inf:
        return math.inf
    if x == -math.inf:
        return 0.0
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def binary(
    first,
    target,
    *,
    logits: bool,
    reduction="mean",
    pos_weight=None,
    sample_weight=None,
    where=None,
    label_smoothing=0.0,
    eps=None,
):
    """The binary losses, element by element."""
    clip = default_eps(first) if eps is None else eps
    x = np.asarray(first, dtype=float)
    t = np.asarray(target, dtype=float)
    pw = np.broadcast_to(1.0 if pos_weight is None else pos_weight, x.shape)
    s = np.broadcast_to(1.0 if sample_weight is None else sample_weight, x.shape)
    kept = np.broadcast_to(True if where is None else where, x.shape)
    losses = np.zeros(x.shape)
    weights = np.zeros(x.shape)
    for index in np.ndindex(x.shape):
        if not kept[index]:
            continue
        tt = (1 - label_smoothing) * float(t[index]) + label_smoothing / 2
        a, b = 1 - tt, float(pw[index]) * tt
        if logits:
            negative, positive = _softplus(float(x[index])), _softplus(-float(x[index]))
        else:
            q = min(max(float(x[index]), clip), 1 - clip)
            negative = -math.log1p(-q) if q < 1 else math.inf
            positive = -math.log(q) if q > 0 else math.inf
        loss = (a * negative if a else 0.0) + (b * positive if b else 0.0)
        losses[index] = float(s[index]) * loss if s[index] else 0.0
        weights[index] = float(s[index])
    return _reduce(losses, weights, reduction)


def binary_focal(
    first,
    target,
    *,
    logits: bool,
    gamma=2.0,
    alpha=None,
    reduction="mean",
    pos_weight=None,
    sample_weight=None,
    where=None,
    label_smoothing=0.0,
    eps=None,
):
    """The binary focal losses, element by element.

    ``-s (a+ pw t (1-p)^gamma log p + a- (1-t) p^gamma log(1-p))``; for logits
    ``log p = -softplus(-x)``, ``log(1-p) = -softplus(x)``, ``(1-p)^gamma =
    exp(-gamma softplus(x))`` and ``p^gamma = exp(-gamma softplus(-x))``.
    """
    clip = default_eps(first) if eps is None else eps
    x = np.asarray(first, dtype=float)
    t = np.asarray(target, dtype=float)
    pw = np.broadcast_to(1.0 if pos_weight is None else pos_weight, x.shape)
    s = np.broadcast_to(1.0 if sample_weight is None else sample_weight, x.shape)
    kept = np.broadcast_to(True if where is None else where, x.shape)
    a_plus, a_minus = (1.0, 1.0) if alpha is None else (alpha, 1.0 - alpha)
    losses = np.zeros(x.shape)
    weights = np.zeros(x.shape)
    for index in np.ndindex(x.shape):
        if not kept[index]:
            continue
        tt = (1 - label_smoothing) * float(t[index]) + label_smoothing / 2
        a, b = a_minus * (1 - tt), a_plus * float(pw[index]) * tt
        if logits:
            v = float(x[index])
            minus_log_q, minus_log_p = _softplus(v), _softplus(-v)  # -log(1-p), -log p
            p_power = math.exp(-gamma * minus_log_p) if gamma else 1.0
            q_power = math.exp(-gamma * minus_log_q) if gamma else 1.0
        else:
            p = min(max(float(x[index]), clip), 1 - clip)
            minus_log_q = -math.log1p(-p) if p < 1 else math.inf
            minus_log_p = -math.log(p) if p > 0 else math.inf
            p_power, q_power = p**gamma, (1 - p) ** gamma
        negative = p_power * minus_log_q if p_power else 0.0
        positive = q_power * minus_log_p if q_power else 0.0
        loss = (a * negative if a else 0.0) + (b * positive if b else 0.0)
        losses[index] = float(s[index]) * loss if s[index] else 0.0
        weights[index] = float(s[index])
    return _reduce(losses, weights, reduction)


def central_difference(function: Callable[[np.ndarray], float], x: np.ndarray, step: float):
    """The gradient of a scalar function by fourth-order central differences."""
    x = np.asarray(x, dtype=float)
    grad = np.zeros_like(x)
    for index in product(*(range(n) for n in x.shape)):
        values = []
        for k in (-2, -1, 1, 2):
            shifted = x.copy()
            shifted[index] += k * step
            values.append(function(shifted))
        grad[index] = (values[0] - 8 * values[1] + 8 * values[2] - values[3]) / (12 * step)
    return grad
