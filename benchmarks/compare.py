"""Time crossentropy against PyTorch CPU and scikit-learn, side by side, as ratios.

Both run in this one process on the same arrays (PyTorch sees them through
``torch.from_numpy``, without a copy). Each case checks that the values agree, then
alternates ours and theirs for a number of repeats and keeps the best time of each;
the ratio is ours / theirs, on 1 thread and on all the cores (``torch.set_num_threads``
and ``crossentropy.num_threads`` alike). The peak extra memory of our forward pass is
measured with tracemalloc. Missing peers are installed first (``torch==2.13.0``, the CPU
build, and scikit-learn).

Usage::

    python benchmarks/compare.py [--threads 1,2] [--repeats 15] [--quick]
                                 [--json results.json] [--plot ratios.png]
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import crossentropy as ce

PEERS = {"torch": "torch==2.13.0", "sklearn": "scikit-learn"}


def install_missing_peers() -> None:
    for module, requirement in PEERS.items():
        if importlib.util.find_spec(module) is None:
            print(f"installing {requirement} ...", flush=True)
            subprocess.run([sys.executable, "-m", "pip", "install", requirement], check=True)


@dataclass
class Case:
    name: str
    target: float
    ours: Callable[[], Any]
    theirs: Callable[[], Any]
    peer: str
    rtol: float
    results: dict[int, dict[str, float]] = field(default_factory=dict)


def best_of_interleaved(ours: Callable[[], Any], theirs: Callable[[], Any], repeats: int):
    ours(), theirs()  # warm up both
    ours_times, theirs_times = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        ours()
        ours_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        theirs()
        theirs_times.append(time.perf_counter() - start)
    return min(ours_times), min(theirs_times)


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {len(os.sched_getaffinity(0))} cores"


def build_cases() -> list[Case]:
    import torch
    import torch.nn.functional as F
    from sklearn.metrics import log_loss

    rng = np.random.default_rng(0)
    cases = []

    def categorical(name, n_rows, n_classes, target, grad=False):
        logits = rng.standard_normal((n_rows, n_classes), dtype=np.float32)
        labels = rng.integers(0, n_classes, size=n_rows)
        x, y = torch.from_numpy(logits), torch.from_numpy(labels)
        if grad:
            ours = lambda: ce.categorical_cross_entropy_with_logits(  # noqa: E731
                logits, labels, return_grad=True
            )[0]

            def theirs():
                leaf = x.detach().requires_grad_()
                loss = F.cross_entropy(leaf, y)
                loss.backward()
                return loss.detach()
        else:
            ours = lambda: ce.categorical_cross_entropy_with_logits(logits, labels)  # noqa: E731
            theirs = lambda: F.cross_entropy(x, y)  # noqa: E731
        cases.append(Case(name, target, ours, theirs, "torch", 1e-4))

    categorical("categorical logits 16384x1000 f32, forward", 16384, 1000, 0.6)
    categorical("categorical logits 16384x1000 f32, forward+grad", 16384, 1000, 0.5, grad=True)
    categorical("categorical logits 2048x32000 f32, forward", 2048, 32000, 0.55)
    categorical("categorical logits 262144x10 f32, forward", 262144, 10, 0.4)

    x = rng.standard_normal(10_000_000, dtype=np.float32)
    t = (rng.random(10_000_000) < 0.5).astype(np.float32)
    xt, tt = torch.from_numpy(x), torch.from_numpy(t)
    cases.append(
        Case(
            "binary logits 10M f32, forward",
            0.5,
            lambda: ce.binary_cross_entropy_with_logits(x, t),
            lambda: F.binary_cross_entropy_with_logits(xt, tt),
            "torch",
            1e-4,
        )
    )
    p = rng.random(2_000_000)
    y = (rng.random(2_000_000) < 0.5).astype(np.int64)
    cases.append(
        Case(
            "binary probabilities 2M f64 vs log_loss",
            0.03,
            lambda: ce.binary_cross_entropy(p, y),
            lambda: log_loss(y, p),
            "sklearn",
            1e-10,
        )
    )
    probs = rng.dirichlet(np.ones(10), size=200_000)
    labels = rng.integers(0, 10, size=200_000)
    cases.append(
        Case(
            "categorical probabilities 200000x10 f64 vs log_loss",
            0.1,
            lambda: ce.categorical_cross_entropy(probs, labels),
            lambda: log_loss(labels, probs, labels=range(10)),
            "sklearn",
            1e-10,
        )
    )
    return cases


def peak_memory_fractions() -> dict[str, float]:
    """Peak extra memory (tracemalloc) of our passes over 16384x1000 float32 logits."""
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((16384, 1000), dtype=np.float32)
    labels = rng.integers(0, 1000, size=16384)
    fractions = {}
    for name, grad in (("forward", False), ("forward+grad", True)):
        ce.categorical_cross_entropy_with_logits(logits, labels, return_grad=grad)
        tracemalloc.start()
        ce.categorical_cross_entropy_with_logits(logits, labels, return_grad=grad)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        fractions[name] = peak / logits.nbytes
    return fractions


def exp_bound(threads: int, repeats: int) -> float:
    """Best time of one np.exp over the 16384x1000 float32 logits, split over threads."""
    logits = np.random.default_rng(0).standard_normal((16384, 1000), dtype=np.float32)
    out = np.empty_like(logits)
    parts = np.array_split(np.arange(len(logits)), threads)
    with ThreadPoolExecutor(threads) as pool:

        def run():
            list(
                pool.map(
                    lambda rows: np.exp(
                        logits[rows[0] : rows[-1] + 1], out=out[rows[0] : rows[-1] + 1]
                    ),
                    parts,
                )
            )

        run()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
    return min(times)


def plot(cases: list[Case], thread_counts: list[int], path: str, title: str) -> None:
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(10, 5))
    positions = np.arange(len(cases))
    width = 0.8 / len(thread_counts)
    for i, threads in enumerate(thread_counts):
        ratios = [case.results[threads]["ratio"] for case in cases]
        axes.barh(positions + i * width, ratios, height=width, label=f"{threads} thread(s)")
    axes.scatter(
        [c.target for c in cases],
        positions + 0.4 - width / 2,
        marker="|",
        s=400,
        color="black",
        label="target",
        zorder=3,
    )
    axes.set_yticks(positions + 0.4 - width / 2, [c.name for c in cases], fontsize=8)
    axes.invert_yaxis()
    axes.set_xscale("log")
    axes.set_xlabel("time ratio, crossentropy / peer (lower is faster)")
    axes.set_title(title, fontsize=9)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cores = len(os.sched_getaffinity(0))
    parser.add_argument("--threads", default=f"1,{cores}" if cores > 1 else "1")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="3 repeats")
    parser.add_argument("--json", default=None)
    parser.add_argument("--plot", default=None)
    args = parser.parse_args()
    repeats = 3 if args.quick else args.repeats
    thread_counts = [int(n) for n in args.threads.split(",")]

    install_missing_peers()
    import sklearn
    import torch

    cases = build_cases()
    for case in cases:
        ours, theirs = float(case.ours()), float(case.theirs())
        if not np.isclose(ours, theirs, rtol=case.rtol):
            msg = f"{case.name}: ours {ours} and {case.peer}'s {theirs} disagree"
            raise SystemExit(msg)
    for threads in thread_counts:
        torch.set_num_threads(threads)
        with ce.num_threads(threads):
            for case in cases:
                ours_time, theirs_time = best_of_interleaved(case.ours, case.theirs, repeats)
                case.results[threads] = {
                    "ours_ms": ours_time * 1e3,
                    "theirs_ms": theirs_time * 1e3,
                    "ratio": ours_time / theirs_time,
                }
    memory = peak_memory_fractions()
    bounds = {threads: exp_bound(threads, repeats) * 1e3 for threads in thread_counts}

    date = datetime.date.today().isoformat()
    title = (
        f"{machine()}; numpy {np.__version__}, torch {torch.__version__}, "
        f"scikit-learn {sklearn.__version__}; {date}"
    )
    print(title)
    print(f"best of {repeats} interleaved repeats; ratio = crossentropy / peer\n")
    header = "| case | peer | threads | crossentropy (ms) | peer (ms) | ratio | target | |"
    print(header)
    print("| --- | --- | --: | --: | --: | --: | --: | --- |")
    passed = True
    for case in cases:
        for threads in thread_counts:
            result = case.results[threads]
            ok = result["ratio"] <= case.target
            passed &= ok
            print(
                f"| {case.name} | {case.peer} | {threads} | {result['ours_ms']:.2f} | "
                f"{result['theirs_ms']:.2f} | {result['ratio']:.3f} | {case.target} | "
                f"{'ok' if ok else 'MISSED'} |"
            )
    limits = {"forward": 1 / 16, "forward+grad": 1 + 1 / 16}
    print()
    for name, fraction in memory.items():
        ok = fraction <= limits[name]
        passed &= ok
        print(
            f"peak extra memory of the {name} pass at 16384x1000 f32: {fraction:.4f} of the "
            f"logits (limit {limits[name]:.4f}) {'ok' if ok else 'MISSED'}"
        )
    forward = cases[0].results
    for threads in thread_counts:
        print(
            f"one np.exp over the 16384x1000 f32 logits on {threads} thread(s): "
            f"{bounds[threads]:.2f} ms; our forward takes {forward[threads]['ours_ms']:.2f} ms "
            f"({forward[threads]['ours_ms'] / bounds[threads]:.2f}x)"
        )
    if args.json:
        with open(args.json, "w") as file:
            json.dump(
                {
                    "title": title,
                    "cases": [
                        {"name": c.name, "target": c.target, "results": c.results} for c in cases
                    ],
                    "memory": memory,
                    "exp_ms": bounds,
                },
                file,
                indent=2,
            )
    if args.plot:
        plot(cases, thread_counts, args.plot, title)
        print(f"chart saved to {args.plot}")
    if not passed:
        print("\nsome targets were missed")


if __name__ == "__main__":
    main()
