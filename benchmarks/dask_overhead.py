"""Time the loss on a Dask array against the NumPy call on the same cores.

On 16384x1000 float32 logits with integer labels (mean loss) cut into 8 chunks of 2048
rows, for each thread count and each pass (forward, forward with gradient), this prints
the best of interleaved repeats of:

- ``numpy``: the NumPy call on that many threads;
- ``dask``: building the lazy loss (and gradient) and computing it with the threaded
  scheduler on that many workers (``dask.compute(..., num_workers=threads)``);

and their ratio, ``dask / numpy``, which ``DaskOverhead.track_overhead`` in the asv
suite tracks. Needs Dask::

    python benchmarks/dask_overhead.py [--threads 1,2] [--repeats 15]
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import subprocess
import time
from collections.abc import Callable
from typing import Any

import dask
import dask.array as da
import numpy as np

import crossentropy as ce

ROWS, CLASSES, CHUNK = 16384, 1000, 2048


def machine() -> str:
    """CPU model name and the number of cores available to this process."""
    model = platform.processor() or platform.machine()
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(
            (line.split(":", 1)[1].strip() for line in lscpu.splitlines() if "Model name" in line),
            model,
        )
    except (OSError, subprocess.CalledProcessError):
        pass
    return f"{model}, {len(os.sched_getaffinity(0))} cores"


def calls(threads: int, grad: bool) -> dict[str, Callable[[], Any]]:
    """The two callables of one thread count and pass, on the same arrays."""
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((ROWS, CLASSES), dtype=np.float32)
    labels = rng.integers(0, CLASSES, size=ROWS)
    lazy_logits = da.from_array(logits, chunks=(CHUNK, -1))
    lazy_labels = da.from_array(labels, chunks=CHUNK)

    def numpy_call() -> Any:
        with ce.num_threads(threads):
            return ce.categorical_cross_entropy_with_logits(logits, labels, return_grad=grad)

    def dask_call() -> Any:
        result = ce.categorical_cross_entropy_with_logits(
            lazy_logits, lazy_labels, return_grad=grad
        )
        return dask.compute(result, scheduler="threads", num_workers=threads)[0]

    return {"numpy": numpy_call, "dask": dask_call}


def best_of_interleaved(functions: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Best time of each function, in seconds, the functions taking turns."""
    for function in functions.values():  # warm-up: thread pools, buffers, Dask's imports
        function()
    times: dict[str, list[float]] = {name: [] for name in functions}
    gc.disable()
    try:
        for _ in range(repeats):
            for name, function in functions.items():
                start = time.perf_counter()
                function()
                times[name].append(time.perf_counter() - start)
    finally:
        gc.enable()
    return {name: min(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--repeats", type=int, default=15, help="interleaved repeats (15)")
    args = parser.parse_args()
    print(
        f"{ROWS}x{CLASSES} float32 logits in {ROWS // CHUNK} chunks of rows, mean loss; "
        f"{machine()}, load average {os.getloadavg()[0]:.1f}; numpy {np.__version__}, "
        f"dask {dask.__version__}; best of {args.repeats} interleaved repeats\n"
    )
    print("| threads | pass | numpy (ms) | dask (ms) | dask / numpy |")
    print("| --: | --- | --: | --: | --: |")
    for threads in (int(n) for n in args.threads.split(",")):
        for grad in (False, True):
            best = best_of_interleaved(calls(threads, grad), args.repeats)
            numpy_ms, dask_ms = best["numpy"] * 1e3, best["dask"] * 1e3
            print(
                f"| {threads} | {'forward+grad' if grad else 'forward'} | {numpy_ms:.1f} "
                f"| {dask_ms:.1f} | {dask_ms / numpy_ms:.2f} |"
            )


if __name__ == "__main__":
    main()
