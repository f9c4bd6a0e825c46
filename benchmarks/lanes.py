"""Time the lanes of plain calls against the general path, in one process.

A plain call (no option, see ``crossentropy._prepare.plain_call``) takes its loss's
lane; the same call with an option that changes nothing takes the general path:
``pos_weight=1.0`` for the binary losses, ``class_weight`` of ones for the categorical
ones. Both compute the same formulas (the lanes give the same values element by
element), so the ratio lane / general path is what the lane saves. Each pair takes
turns for a number of repeats after a warm-up call each; the best time of each is
kept. Prints one table per thread count.

Usage::

    python benchmarks/lanes.py [--threads 1,2] [--repeats 10]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import crossentropy as ce


def cases(
    rng: np.random.Generator,
) -> list[tuple[str, Callable[..., Any], tuple[Any, ...], dict[str, Any]]]:
    """Each case: its name, the loss, its arrays, and the option that forces the general path."""
    logits = rng.standard_normal(10_000_000, dtype=np.float32)
    targets = (rng.random(logits.size) < 0.5).astype(np.float32)
    probs = rng.random(2_000_000)
    labels = (rng.random(probs.size) < 0.5).astype(np.int64)
    rows = rng.dirichlet(np.ones(10), size=200_000)
    classes = rng.integers(0, 10, size=len(rows))
    neutral_binary = {"pos_weight": 1.0}
    neutral_rows = {"class_weight": np.ones(10)}
    return [
        (
            "binary logits 10M f32, float targets",
            ce.binary_cross_entropy_with_logits,
            (logits, targets),
            neutral_binary,
        ),
        (
            "binary probabilities 2M f64, integer targets",
            ce.binary_cross_entropy,
            (probs, labels),
            neutral_binary,
        ),
        (
            "categorical probabilities 200000x10 f64, integer labels",
            ce.categorical_cross_entropy,
            (rows, classes),
            neutral_rows,
        ),
    ]


def best_of_interleaved(calls: list[Callable[[], object]], repeats: int) -> list[float]:
    """Best time of each call, in milliseconds; the calls take turns."""
    for call in calls:
        call()  # warm-up: the threads' buffers
    best = [float("inf")] * len(calls)
    for _ in range(repeats):
        for index, call in enumerate(calls):
            start = time.perf_counter()
            call()
            best[index] = min(best[index], (time.perf_counter() - start) * 1e3)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--repeats", type=int, default=10, help="interleaved repeats")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    chosen = cases(rng)
    for threads in (int(value) for value in args.threads.split(",")):
        print(f"\n{threads} thread(s), best of {args.repeats} interleaved repeats")
        print("| call | pass | lane (ms) | general path (ms) | lane / general |")
        print("| --- | --- | --: | --: | --: |")
        with ce.num_threads(threads):
            for name, loss, arrays, neutral in chosen:
                for pass_, grad in (("forward", False), ("forward+grad", True)):
                    lane, general = best_of_interleaved(
                        [
                            lambda: loss(*arrays, return_grad=grad),  # noqa: B023
                            lambda: loss(*arrays, return_grad=grad, **neutral),  # noqa: B023
                        ],
                        args.repeats,
                    )
                    print(
                        f"| {name} | {pass_} | {lane:.2f} | {general:.2f} | {lane / general:.2f} |"
                    )


if __name__ == "__main__":
    main()
