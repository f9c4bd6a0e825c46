"""Time ``crossentropy.log_loss`` against ``sklearn.metrics.log_loss``, interleaved.

1,000,000 x 10 float64 probabilities (Dirichlet rows) with integer labels in [0, 10),
or with ``--column`` a binary problem's 1-D column of the positive class's probabilities;
for each thread count of this package (``crossentropy.num_threads``; scikit-learn's
``log_loss`` runs on one), the two calls take turns for a number of repeats after a
warm-up call each, and the best time of each is kept. Prints both times, the ratio
scikit-learn / crossentropy and the relative difference of the two values. Needs
scikit-learn. Usage::

    python benchmarks/log_loss_speed.py [--rows 1000000] [--classes 10] [--repeats 5]
                                        [--threads 1,2] [--column]
"""

from __future__ import annotations

import argparse
import gc
import os
import time

import numpy as np
import sklearn
from sklearn.metrics import log_loss as sklearn_log_loss

import crossentropy as ce


def best_of_interleaved(functions, repeats):
    """Best time of each function, in seconds, and its value; the functions take turns."""
    values = [function() for function in functions]  # warm-up
    times = [[] for _ in functions]
    gc.disable()
    try:
        for _ in range(repeats):
            for function, its_times in zip(functions, times, strict=True):
                start = time.perf_counter()
                function()
                its_times.append(time.perf_counter() - start)
    finally:
        gc.enable()
    return [min(its_times) for its_times in times], values


def main():
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--column",
        action="store_true",
        help="a binary problem: y_proba is the 1-D column of the positive class",
    )
    parser.add_argument(
        "--threads",
        default=str(ce.get_num_threads()),
        help="comma-separated thread counts of crossentropy (default: the current one)",
    )
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    classes = 2 if args.column else args.classes
    y_proba = rng.dirichlet(np.ones(classes), size=args.rows)
    y_true = rng.integers(0, classes, size=args.rows)
    shape = f"{args.rows} x {classes}"
    if args.column:
        y_proba = np.ascontiguousarray(y_proba[:, 1])
        shape = f"{args.rows} (the positive class's column)"
    print(
        f"{shape} float64, best of {args.repeats} interleaved; "
        f"numpy {np.__version__}, scikit-learn {sklearn.__version__}, {cores} cores, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    for threads in (int(n) for n in args.threads.split(",")):
        with ce.num_threads(threads):
            (theirs, ours), (expected, got) = best_of_interleaved(
                [lambda: sklearn_log_loss(y_true, y_proba), lambda: ce.log_loss(y_true, y_proba)],
                args.repeats,
            )
        print(f"crossentropy on {threads} thread(s):")
        print(f"  sklearn.metrics.log_loss   {theirs * 1e3:8.1f} ms")
        print(f"  crossentropy.log_loss      {ours * 1e3:8.1f} ms")
        print(f"  ratio (sklearn / ours)     {theirs / ours:8.1f}x")
        print(f"  relative difference        {abs(got - expected) / expected:8.1e}")


if __name__ == "__main__":
    main()
