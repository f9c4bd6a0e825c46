"""Time ``crossentropy.log_loss`` against ``sklearn.metrics.log_loss``: best of 5 each.

1,000,000 x 10 float64 probabilities (Dirichlet rows) with integer labels in [0, 10);
prints both times, the ratio scikit-learn / crossentropy and the relative difference of
the two values. Needs scikit-learn. Usage::

    python benchmarks/log_loss_speed.py [--rows 1000000] [--classes 10] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import sklearn
from sklearn.metrics import log_loss as sklearn_log_loss

import crossentropy as ce


def best_of(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        value = function()
        times.append(time.perf_counter() - start)
    return min(times), value


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    y_proba = rng.dirichlet(np.ones(args.classes), size=args.rows)
    y_true = rng.integers(0, args.classes, size=args.rows)
    theirs, expected = best_of(lambda: sklearn_log_loss(y_true, y_proba), args.repeats)
    ours, got = best_of(lambda: ce.log_loss(y_true, y_proba), args.repeats)
    print(
        f"{args.rows} x {args.classes} float64, best of {args.repeats}; numpy {np.__version__}, "
        f"scikit-learn {sklearn.__version__}, {ce.get_num_threads()} thread(s)"
    )
    print(f"sklearn.metrics.log_loss   {theirs * 1e3:8.1f} ms")
    print(f"crossentropy.log_loss      {ours * 1e3:8.1f} ms")
    print(f"ratio (sklearn / ours)     {theirs / ours:8.1f}x")
    print(f"relative difference        {abs(got - expected) / expected:8.1e}")


if __name__ == "__main__":
    main()
