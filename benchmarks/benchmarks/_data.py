"""Arrays shared by the benchmarks, made once per process from fixed seeds."""

from __future__ import annotations

import functools

import numpy as np


@functools.cache
def categorical(n_rows: int, n_classes: int, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((n_rows, n_classes), dtype=np.float64).astype(dtype)
    return logits, rng.integers(0, n_classes, size=n_rows)


@functools.cache
def probabilities(n_rows: int, n_classes: int, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(n_classes), size=n_rows).astype(dtype)
    probs /= probs.sum(axis=1, keepdims=True)
    return probs, rng.integers(0, n_classes, size=n_rows)


@functools.cache
def binary(n: int, dtype: str, *, logits: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    if logits:
        first = rng.standard_normal(n, dtype=np.float64).astype(dtype)
    else:
        first = rng.random(n).astype(dtype)
    return first, (rng.random(n) < 0.5).astype(dtype)
