"""What the benchmarks share: the thread pinning, and arrays made from fixed seeds.

Every benchmark class derives from :class:`Pinned` and has ``threads`` as its last
parameter: its ``setup`` runs the benchmark on exactly that many threads, for this
package and for BLAS, and its ``teardown`` restores both.
"""

from __future__ import annotations

import contextlib
import functools
import time
import timeit
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

import crossentropy as ce

PASSES = ["forward", "forward+grad"]
DTYPES = ["float32", "float64"]
THREADS = [1, 2]

# Made once per process: finding the loaded BLAS libraries takes milliseconds, limiting
# them afterwards microseconds (setup runs again before every timed call).
_BLAS = ThreadpoolController()


class Pinned:
    """A benchmark class whose last parameter is the thread count it runs on.

    ``pin(threads)``, called first in ``setup``, enters ``crossentropy.num_threads``
    and limits BLAS (NumPy's ``matmul`` serves some options and the probability
    checks) to as many threads; ``teardown`` leaves both, so that the settings in force
    before ``setup`` come back.

    On one thread the timer is the CPU time of the process (``time.process_time``):
    the time the call runs on a core, which does not count the time other processes
    that share the machine hold the core (on a busy 2-core machine that stretches the
    wall-clock time of a call up to 3x), though they still slow the core and its
    caches. On several threads it is the wall-clock time, since that is what running
    in parallel gains; those timings are only as good as the machine is idle.

    The other timing attributes are asv's, set for medians that hold from run to run:
    each of the two rounds (processes) warms up for 0.2 s (the first call makes the
    per-thread buffers), then takes at least 5 samples and adds more, up to 10, while
    under 4 s.
    """

    rounds = 2
    warmup_time = 0.2
    repeat = (5, 10, 4.0)
    min_run_count = 5

    def pin(self, threads: int) -> None:
        pinned = contextlib.ExitStack()
        pinned.enter_context(ce.num_threads(threads))
        pinned.enter_context(_BLAS.limit(limits=threads, user_api="blas"))
        self._pinned = pinned
        self.timer = time.process_time if threads == 1 else timeit.default_timer

    def teardown(self, *params: Any) -> None:
        pinned = self.__dict__.pop("_pinned", None)
        if pinned is not None:
            pinned.close()


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
