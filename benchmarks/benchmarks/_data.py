"""Arrays shared by the benchmarks, made from fixed seeds once per process and parameter."""

from __future__ import annotations

import functools
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

PASSES = ["forward", "forward+grad"]
DTYPES = ["float32", "float64"]


@functools.cache
def categorical_logits(n_rows: int, n_classes: int, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """Standard normal logits and uniform integer labels."""
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((n_rows, n_classes), dtype=np.dtype(dtype).type)
    return logits, rng.integers(0, n_classes, size=n_rows)


@functools.cache
def categorical_probabilities(
    n_rows: int, n_classes: int, dtype: str
) -> tuple[np.ndarray, np.ndarray]:
    """Dirichlet(1) probability rows, renormalised in `dtype`, and integer labels."""
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(n_classes), size=n_rows).astype(dtype)
    probs /= probs.sum(axis=1, keepdims=True)
    return probs, rng.integers(0, n_classes, size=n_rows)


@functools.cache
def binary(n: int, dtype: str, *, logits: bool) -> tuple[np.ndarray, np.ndarray]:
    """Standard normal logits or uniform probabilities, and 0/1 float targets."""
    rng = np.random.default_rng(2)
    kind = np.dtype(dtype).type
    first = rng.standard_normal(n, dtype=kind) if logits else rng.random(n, dtype=kind)
    return first, (rng.random(n, dtype=np.float32) < 0.5).astype(dtype)


def extra_memory(call: Callable[[], Any], nbytes: int) -> float:
    """Peak memory a call allocates (tracemalloc, after a warm-up call), over `nbytes`.

    NumPy reports its data buffers to tracemalloc. The warm-up call leaves the
    per-thread block buffers that the kernels keep from call to call in place, so
    this is what every later call allocates; asv's ``peakmem_`` covers the rest.
    """
    call()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return (peak - before) / nbytes
