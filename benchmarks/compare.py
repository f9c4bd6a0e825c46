"""Time crossentropy against PyTorch CPU and scikit-learn, side by side, as ratios.

Both run in this one process on the same arrays (PyTorch sees them through
``torch.from_numpy``, without a copy). For every thread count (``torch.set_num_threads``
and ``crossentropy.num_threads`` alike), each case alternates ours and theirs for a
number of repeats, checks that the values agree (losses, and the gradient where both
compute one), and keeps the best time of each; the ratio is ours / theirs, next to its
target. The peak extra memory of our passes over 16384x1000 float32 logits is measured
with tracemalloc (NumPy reports its allocations to it) in a fresh process, on the first
call (which also makes the per-thread block buffers the kernels keep) and on a later
one; one ``np.exp`` over the same logits, split over the threads, is printed as the
bound that a pass over the logits cannot beat.

The fused linear layer (i) is timed against ``F.linear_cross_entropy`` with its chunked
CPU path (``options=LinearCrossEntropyOptions()``), forward and backward, on a language
model's last layer: 4096x512 hidden states, 32768 classes, float32; it takes seconds
per call, so it gets at most ``LINEAR_REPEATS`` repeats. For it the script also
prints (j) the peak extra memory of ``linear_cross_entropy`` beyond the gradients it
returns, in a fresh process, for that call and for a forward pass over 4096x256
hidden states and 131072 classes, and (k) the share of its time spent outside the
three matrix products, against the same products run alone on the same tiles and
threads: in CPU time (the work of the process's threads, which other processes on the
machine disturb far less than wall time), and in wall time.

PyTorch (``torch==2.13.0``) and scikit-learn must be importable: the script changes
nothing in the environment unless asked to with ``--install-peers``, which pip-installs
the ones that are missing into this interpreter. ``nox -s compare`` installs them in a
virtual environment of its own. On Linux, PyPI's torch wheel is the CUDA build: for the
CPU-only one, point pip at PyTorch's CPU wheel index first (``PIP_EXTRA_INDEX_URL``).

Usage::

    python benchmarks/compare.py [--threads 1,2] [--repeats 15] [--quick] [--cases a,i]
                                 [--json results.json] [--plot ratios.png] [--strict]
                                 [--install-peers]
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib
import itertools
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import crossentropy as ce

PEERS = {"torch": "torch==2.13.0", "sklearn": "scikit-learn"}

# Peak extra memory of our passes over 16384x1000 float32 logits, over the logits' size:
# the forward pass at most 1/16; with the gradient, the gradient itself plus 1/16.
MEMORY_LIMITS = {"forward": 1 / 16, "forward+grad": 1 + 1 / 16}

# Run in a fresh interpreter: argv = threads, 0|1 (return_grad). Prints the peak extra
# memory of the first call and of the second, in bytes, and the logits' size.
MEMORY_PROBE = """
import sys, tracemalloc
import numpy as np
import crossentropy as ce

ce.set_num_threads(int(sys.argv[1]))
grad = sys.argv[2] == "1"
rng = np.random.default_rng(0)
logits = rng.standard_normal((16384, 1000), dtype=np.float32)
labels = rng.integers(0, 1000, size=16384)
tracemalloc.start()
peaks = []
for _ in range(2):
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    result = ce.categorical_cross_entropy_with_logits(logits, labels, return_grad=grad)
    peaks.append(tracemalloc.get_traced_memory()[1] - before)
    del result
print(*peaks, logits.nbytes)
"""

# The fused linear layer: (rows, features, classes) of the timed case and of the
# forward pass whose memory is measured; the most repeats of its timing.
LINEAR_SHAPE = (4096, 512, 32768)
LINEAR_FORWARD_SHAPE = (4096, 256, 131072)
LINEAR_REPEATS = 2
# (j) peak extra memory beyond the returned gradients, in bytes; (k) the most of the
# time spent outside the three matrix products.
LINEAR_MEMORY_LIMITS = {"forward+grad": 64 * 2**20, "forward": 128 * 2**20}
LINEAR_OUTSIDE_PRODUCTS = 0.15

# Run in a fresh interpreter: argv = threads, 0|1 (return_grad), rows, features,
# classes. Prints the peak extra memory of a call beyond what it returns, in bytes.
LINEAR_MEMORY_PROBE = """
import sys, tracemalloc
import numpy as np
import crossentropy as ce

ce.set_num_threads(int(sys.argv[1]))
grad = sys.argv[2] == "1"
n_rows, n_features, n_classes = (int(n) for n in sys.argv[3:6])
rng = np.random.default_rng(0)
hidden = rng.standard_normal((n_rows, n_features), dtype=np.float32)
weight = rng.standard_normal((n_classes, n_features), dtype=np.float32) * np.float32(0.05)
labels = rng.integers(0, n_classes, size=n_rows)
tracemalloc.start()
before = tracemalloc.get_traced_memory()[0]
result = ce.linear_cross_entropy(hidden, weight, labels, return_grad=grad)
peak = tracemalloc.get_traced_memory()[1] - before
returned = sum(g.nbytes for g in result[1] if g is not None) if grad else 0
print(peak - returned)
"""


def check_peers(*, install: bool) -> None:
    """Make sure PyTorch and scikit-learn import; pip-install the missing ones if `install`.

    Without `install`, a missing peer ends the script with a message that says how to
    get it: nothing is installed unasked.
    """
    for module, requirement in PEERS.items():
        try:
            importlib.import_module(module)
        except ImportError:
            command = [sys.executable, "-m", "pip", "install", requirement]
            if not install:
                sys.exit(
                    f"{module} does not import: install it ({' '.join(command)}), "
                    "run this script with --install-peers, or use `nox -s compare`"
                )
            print(f"{module} does not import: running {' '.join(command)}", flush=True)
            subprocess.run(command, check=True)
            importlib.invalidate_caches()


@dataclass
class Case:
    """One comparison: two callables that compute the same thing on the same arrays."""

    key: str
    name: str
    peer: str
    target: float
    ours: Callable[[], Any]
    theirs: Callable[[], Any]
    rtol: float
    results: dict[int, dict[str, float]] = field(default_factory=dict)
    max_repeats: int | None = None  # for cases of seconds per call


def as_arrays(value: Any) -> list[np.ndarray]:
    """A loss, or a (loss, gradient) pair, from either library, as NumPy arrays."""
    values = value if isinstance(value, tuple) else (value,)
    return [np.asarray(v.detach().numpy() if hasattr(v, "detach") else v) for v in values]


def check_agreement(case: Case, ours: Any, theirs: Any, threads: int) -> None:
    pairs = zip(as_arrays(ours), as_arrays(theirs), strict=True)
    names = ("loss", "gradient", "second gradient")
    for what, (a, b) in zip(names, pairs, strict=False):
        # Gradient entries are tiny where the softmax is: tolerate rtol of the largest.
        atol = case.rtol * float(np.max(np.abs(b), initial=0.0)) if b.ndim else 0.0
        if a.shape != b.shape or not np.allclose(a, b, rtol=case.rtol, atol=atol):
            msg = (
                f"({case.key}) {case.name} on {threads} thread(s): our {what} and "
                f"{case.peer}'s disagree beyond rtol={case.rtol}: "
                f"{a if a.ndim == 0 else a.ravel()[:4]} vs {b if b.ndim == 0 else b.ravel()[:4]}"
            )
            raise SystemExit(msg)


def best_of_interleaved(case: Case, repeats: int, threads: int) -> tuple[float, float]:
    """Best times of ours and theirs, alternated, after a checked warm-up call of each."""
    check_agreement(case, case.ours(), case.theirs(), threads)
    repeats = min(repeats, case.max_repeats or repeats)
    ours_times, theirs_times = [], []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            start = time.perf_counter()
            case.ours()
            ours_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            case.theirs()
            theirs_times.append(time.perf_counter() - start)
    finally:
        if gc_was_enabled:
            gc.enable()
    return min(ours_times), min(theirs_times)


def build_cases() -> list[Case]:
    """The cases (a) to (g): our loss and its peer's on the same arrays."""
    import torch
    import torch.nn.functional as F
    from sklearn.metrics import log_loss

    rng = np.random.default_rng(0)
    cases = []

    def categorical(key: str, n_rows: int, n_classes: int, target: float, grad: bool) -> None:
        logits = rng.standard_normal((n_rows, n_classes), dtype=np.float32)
        labels = rng.integers(0, n_classes, size=n_rows)
        x, y = torch.from_numpy(logits), torch.from_numpy(labels)
        shape = f"{n_rows}x{n_classes} f32"
        if grad:

            def ours():
                return ce.categorical_cross_entropy_with_logits(logits, labels, return_grad=True)

            def theirs():
                leaf = x.detach().requires_grad_()
                loss = F.cross_entropy(leaf, y)
                loss.backward()
                return loss.detach(), leaf.grad

            name, peer = f"categorical logits {shape}, forward+grad", "F.cross_entropy+backward"
        else:

            def ours():
                return ce.categorical_cross_entropy_with_logits(logits, labels)

            def theirs():
                return F.cross_entropy(x, y)

            name, peer = f"categorical logits {shape}, forward", "F.cross_entropy"
        cases.append(Case(key, name, peer, target, ours, theirs, 1e-4))

    categorical("a", 16384, 1000, 0.6, grad=False)
    categorical("b", 16384, 1000, 0.5, grad=True)
    categorical("c", 2048, 32000, 0.55, grad=False)
    categorical("d", 262144, 10, 0.4, grad=False)

    x = rng.standard_normal(10_000_000, dtype=np.float32)
    t = (rng.random(10_000_000) < 0.5).astype(np.float32)
    xt, tt = torch.from_numpy(x), torch.from_numpy(t)
    cases.append(
        Case(
            "e",
            "binary logits 10M f32, forward",
            "F.binary_cross_entropy_with_logits",
            0.5,
            lambda: ce.binary_cross_entropy_with_logits(x, t),
            lambda: F.binary_cross_entropy_with_logits(xt, tt),
            1e-4,
        )
    )
    p = rng.random(2_000_000)
    y = (rng.random(2_000_000) < 0.5).astype(np.int64)
    cases.append(
        Case(
            "f",
            "binary probabilities 2M f64, forward",
            "log_loss",
            0.03,
            lambda: ce.binary_cross_entropy(p, y),
            lambda: log_loss(y, p),
            1e-10,
        )
    )
    probs = rng.dirichlet(np.ones(10), size=200_000)
    labels = rng.integers(0, 10, size=200_000)
    cases.append(
        Case(
            "g",
            "categorical probabilities 200000x10 f64, forward",
            "log_loss",
            0.1,
            lambda: ce.categorical_cross_entropy(probs, labels),
            lambda: log_loss(labels, probs, labels=np.arange(10)),
            1e-10,
        )
    )
    cases.append(linear_case(rng))
    return cases


def linear_data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hidden states, weight and labels of the last layer of a language model (i)."""
    n_rows, n_features, n_classes = LINEAR_SHAPE
    hidden = rng.standard_normal((n_rows, n_features), dtype=np.float32)
    weight = rng.standard_normal((n_classes, n_features), dtype=np.float32) * np.float32(0.05)
    return hidden, weight, rng.integers(0, n_classes, size=n_rows)


def linear_case(rng: np.random.Generator) -> Case:
    """(i): the fused linear layer, forward and gradients, against PyTorch's chunked path."""
    import torch
    import torch.nn.functional as F

    hidden, weight, labels = linear_data(rng)
    h, w, y = (torch.from_numpy(a) for a in (hidden, weight, labels))
    options = torch.nn.LinearCrossEntropyOptions()

    def ours():
        loss, grads = ce.linear_cross_entropy(hidden, weight, labels, return_grad=True)
        return loss, grads.hidden, grads.weight

    def theirs():
        h_leaf, w_leaf = h.detach().requires_grad_(), w.detach().requires_grad_()
        loss = F.linear_cross_entropy(h_leaf, w_leaf, y, options=options)
        loss.backward()
        return loss.detach(), h_leaf.grad, w_leaf.grad

    n_rows, n_features, n_classes = LINEAR_SHAPE
    name = f"linear {n_rows}x{n_features} -> {n_classes} f32, forward+grad"
    peer = "F.linear_cross_entropy chunked+backward"
    return Case("i", name, peer, 0.8, ours, theirs, 1e-4, max_repeats=LINEAR_REPEATS)


def linear_memory(threads: int) -> dict[str, float]:
    """(j): the peak extra memory of linear_cross_entropy beyond what it returns, in bytes."""
    peaks = {}
    for name, grad, shape in (
        ("forward+grad", "1", LINEAR_SHAPE),
        ("forward", "0", LINEAR_FORWARD_SHAPE),
    ):
        command = [sys.executable, "-c", LINEAR_MEMORY_PROBE, str(threads), grad]
        command += [str(n) for n in shape]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        peaks[name] = float(output)
    return peaks


def linear_products(threads: int, repeats: int) -> dict[str, float]:
    """(k): best times of linear_cross_entropy (i) and of its three products alone.

    The products run as the call runs them: the same tiles (``_linear._layout``), the
    same threads, BLAS held to one thread the same way, the weight's gradient added a
    class chunk at a time; only the kernel, the bias and the bookkeeping are left out.
    Wall time and the process's CPU time (its threads' work, which other processes on
    the machine disturb far less), each the best of `repeats` interleaved runs, in s.
    """
    from crossentropy import _linear, _threads

    hidden, weight, labels = linear_data(np.random.default_rng(0))
    n_rows, n_features, n_classes = LINEAR_SHAPE
    with ce.num_threads(threads):
        count, pin_blas = _linear._threads(n_rows, n_classes, n_features)
    layout = _linear._layout(
        n_rows, n_classes, n_features, np.dtype(np.float32), _linear.DEFAULT_MEMORY_BUDGET,
        grad=True, threads=count,
    )  # fmt: skip
    assert layout is not None
    grad_hidden = np.empty_like(hidden)
    grad_weight = np.zeros_like(weight)
    n_tiles = -(-n_rows // layout.rows)

    def tiles(start: int, stop: int) -> None:
        tile = np.empty((layout.rows, n_classes), dtype=np.float32)
        share = np.empty((layout.chunk, n_features), dtype=np.float32)
        for index in range(start, stop):
            begin, end = index * layout.rows, min((index + 1) * layout.rows, n_rows)
            logits, rows = tile[: end - begin], hidden[begin:end]
            np.matmul(rows, weight.T, out=logits)
            np.matmul(logits, weight, out=grad_hidden[begin:end])
            for first in range(0, n_classes, layout.chunk):
                last = min(first + layout.chunk, n_classes)
                np.matmul(logits[:, first:last].T, rows, out=share[: last - first])
                grad_weight[first:last] += share[: last - first]

    def products() -> None:
        if not pin_blas:
            tiles(0, n_tiles)
            return
        with _threads.one_blas_thread():
            if layout.threads == 1:
                tiles(0, n_tiles)
            else:
                _threads.run_in_ranges(tiles, n_tiles, layout.rows * n_classes)

    def call() -> None:
        ce.linear_cross_entropy(hidden, weight, labels, return_grad=True)

    times: dict[str, list[float]] = {}
    with ce.num_threads(threads):
        for _ in range(repeats):
            for name, run in (("call", call), ("products", products)):
                start, start_cpu = time.perf_counter(), time.process_time()
                run()
                times.setdefault(f"{name}_wall", []).append(time.perf_counter() - start)
                times.setdefault(f"{name}_cpu", []).append(time.process_time() - start_cpu)
    return {name: min(values) for name, values in times.items()}


def peak_memory(threads: int) -> dict[str, dict[str, float]]:
    """(h): peak extra memory of our passes, first and later call, over the logits' size."""
    fractions = {}
    for name, grad in (("forward", "0"), ("forward+grad", "1")):
        command = [sys.executable, "-c", MEMORY_PROBE, str(threads), grad]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        first, later, nbytes = (int(n) for n in output.split())
        fractions[name] = {"first": first / nbytes, "later": later / nbytes}
    return fractions


def exp_bound(threads: int, repeats: int) -> float:
    """Best time of one np.exp over 16384x1000 float32 logits into `out`, over threads."""
    logits = np.random.default_rng(0).standard_normal((16384, 1000), dtype=np.float32)
    out = np.empty_like(logits)
    bounds = np.linspace(0, len(logits), threads + 1).astype(int)
    blocks = [slice(start, stop) for start, stop in itertools.pairwise(bounds)]

    def exp_block(rows: slice) -> None:
        np.exp(logits[rows], out=out[rows])

    with ThreadPoolExecutor(threads) as pool:
        times = []
        for _ in range(repeats + 1):  # the first is a warm-up
            start = time.perf_counter()
            list(pool.map(exp_block, blocks))
            times.append(time.perf_counter() - start)
    return min(times[1:])


def busy_cores(seconds: float = 0.5) -> float | None:
    """How many cores other processes keep busy, from /proc/stat (None where absent)."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as stat:
            fields = [int(n) for n in stat.readline().split()[1:]]
        return sum(fields), fields[3] + fields[4]  # all jiffies, idle + iowait

    try:
        total, idle = sample()
        time.sleep(seconds)
        total2, idle2 = sample()
    except (OSError, ValueError, IndexError):
        return None
    cores = os.cpu_count() or 1
    return cores * (1 - (idle2 - idle) / max(total2 - total, 1))


def warn_if_busy(when: str) -> float | None:
    busy = busy_cores()
    if busy is not None and busy > 0.5:
        print(
            f"warning: other processes kept {busy:.1f} cores busy {when}: the timings, "
            "above all those on several threads, are not to be trusted",
            flush=True,
        )
    return busy


def machine() -> str:
    """CPU model name and the number of cores available to this process."""
    model = platform.processor() or platform.machine()
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in lscpu.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
                break
    except (OSError, subprocess.CalledProcessError):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model}, {cores} cores"


def print_table(cases: list[Case], thread_counts: list[int]) -> bool:
    """Print the Markdown table of times and ratios; return whether every target was met."""
    header = "| | case (peer) | target |"
    rule = "| --- | --- | --: |"
    for threads in thread_counts:
        label = "thread" if threads == 1 else "threads"
        header += f" {threads} {label}: ours / peer (ms) | ratio | |"
        rule += " --: | --: | --- |"
    print(header)
    print(rule)
    passed = True
    for case in cases:
        row = f"| {case.key} | {case.name} ({case.peer}) | {case.target} |"
        for threads in thread_counts:
            result = case.results[threads]
            ok = result["ratio"] <= case.target
            passed &= ok
            row += (
                f" {result['ours_ms']:.1f} / {result['theirs_ms']:.1f} | "
                f"{result['ratio']:.3f} | {'pass' if ok else 'FAIL'} |"
            )
        print(row)
    return passed


def print_memory(memory: dict[int, dict[str, dict[str, float]]]) -> bool:
    """Print the (h) table; a pass has to stay within its limit on both calls."""
    print("| | pass, 16384x1000 f32 | threads | first call | later call | limit | |")
    print("| --- | --- | --: | --: | --: | --: | --- |")
    passed = True
    for threads, fractions in memory.items():
        for name, fraction in fractions.items():
            ok = max(fraction.values()) <= MEMORY_LIMITS[name]
            passed &= ok
            print(
                f"| h | {name} | {threads} | {fraction['first']:.4f} | {fraction['later']:.4f} | "
                f"{MEMORY_LIMITS[name]:.4f} | {'pass' if ok else 'FAIL'} |"
            )
    return passed


def print_linear(linear: dict[int, dict[str, Any]]) -> bool:
    """Print the (j) and (k) table of the fused linear layer; return whether both pass."""
    rows, features, classes = LINEAR_SHAPE
    forward = "x".join(str(n) for n in LINEAR_FORWARD_SHAPE[:2]) + f" -> {LINEAR_FORWARD_SHAPE[2]}"
    print("| | linear_cross_entropy, f32 | threads | measured | limit | |")
    print("| --- | --- | --: | --: | --: | --- |")
    passed = True
    for threads, result in linear.items():
        lines = [
            (
                f"j | peak extra memory beyond the gradients, {rows}x{features} -> {classes}, "
                "forward+grad",
                result["memory"]["forward+grad"] / 2**20,
                LINEAR_MEMORY_LIMITS["forward+grad"] / 2**20,
                "MiB",
            ),
            (
                f"j | peak extra memory, {forward}, forward",
                result["memory"]["forward"] / 2**20,
                LINEAR_MEMORY_LIMITS["forward"] / 2**20,
                "MiB",
            ),
            (
                f"k | CPU time outside the three products ({result['call_cpu']:.1f} s in all, "
                f"{result['products_cpu']:.1f} s of products; wall: {result['call_wall']:.1f} s "
                f"and {result['products_wall']:.1f} s, {result['outside_products_wall']:.3f})",
                result["outside_products"],
                LINEAR_OUTSIDE_PRODUCTS,
                "",
            ),
        ]
        for what, value, limit, unit in lines:
            ok = value <= limit
            passed &= ok
            print(
                f"| {what} | {threads} | {value:.3f} {unit} | {limit:.3f} {unit} | "
                f"{'pass' if ok else 'FAIL'} |"
            )
    return passed


def plot(cases: list[Case], thread_counts: list[int], path: str, title: str) -> None:
    """Save a bar chart of the ratios, with the targets marked, as a PNG."""
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(10, 5))
    positions = np.arange(len(cases))
    width = 0.8 / len(thread_counts)
    centres = positions + width * (len(thread_counts) - 1) / 2
    for i, threads in enumerate(thread_counts):
        ratios = [case.results[threads]["ratio"] for case in cases]
        label = f"{threads} thread" + ("" if threads == 1 else "s")
        axes.barh(positions + i * width, ratios, height=width, label=label)
    axes.scatter(
        [case.target for case in cases],
        centres,
        marker="|",
        s=600,
        color="black",
        label="target",
        zorder=3,
    )
    axes.axvline(1.0, color="grey", linewidth=0.8, linestyle="--")
    axes.set_yticks(centres, [f"({c.key}) {c.name}\nvs {c.peer}" for c in cases], fontsize=7)
    axes.invert_yaxis()
    axes.set_xscale("log")
    axes.set_xlabel("time ratio, crossentropy / peer (lower is faster)")
    axes.set_title(title, fontsize=9)
    axes.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--threads",
        default=",".join(str(n) for n in sorted({1, cores or 1})),
        help="comma-separated thread counts (default: 1 and all the cores)",
    )
    parser.add_argument("--repeats", type=int, default=15, help="interleaved repeats (15)")
    parser.add_argument("--quick", action="store_true", help="3 repeats, for a smoke test")
    parser.add_argument(
        "--cases", help="comma-separated keys of the cases to run (default: all, a to i)"
    )
    parser.add_argument("--json", metavar="PATH", help="save the results as JSON")
    parser.add_argument("--plot", metavar="PATH", help="save a bar chart of the ratios (PNG)")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument(
        "--install-peers",
        action="store_true",
        help="pip-install PyTorch and scikit-learn into this interpreter if they are missing",
    )
    args = parser.parse_args()
    repeats = 3 if args.quick else args.repeats
    thread_counts = [int(n) for n in args.threads.split(",")]

    check_peers(install=args.install_peers)
    import sklearn
    import torch

    cases = build_cases()
    if args.cases:
        keys = set(args.cases.split(","))
        cases = [case for case in cases if case.key in keys]
    busy = {"before": warn_if_busy("before the timings")}
    for threads in thread_counts:
        torch.set_num_threads(threads)
        with ce.num_threads(threads):
            for case in cases:
                ours_time, theirs_time = best_of_interleaved(case, repeats, threads)
                case.results[threads] = {
                    "ours_ms": ours_time * 1e3,
                    "theirs_ms": theirs_time * 1e3,
                    "ratio": ours_time / theirs_time,
                }
    keys = {case.key for case in cases}
    memory = {threads: peak_memory(threads) for threads in thread_counts} if "a" in keys else {}
    exp_ms = {threads: exp_bound(threads, repeats) * 1e3 for threads in thread_counts}
    linear: dict[int, dict[str, Any]] = {}
    if "i" in keys:
        for threads in thread_counts:
            times = linear_products(threads, min(repeats, LINEAR_REPEATS))
            linear[threads] = {
                "memory": linear_memory(threads),
                **times,
                "outside_products": 1 - times["products_cpu"] / times["call_cpu"],
                "outside_products_wall": 1 - times["products_wall"] / times["call_wall"],
            }
    busy["after"] = warn_if_busy("after the timings")

    date = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    title = (
        f"{machine()}; numpy {np.__version__}, torch {torch.__version__}, "
        f"scikit-learn {sklearn.__version__}; {date}"
    )
    print(title)
    note = f" (i: best of {min(repeats, LINEAR_REPEATS)})" if "i" in keys else ""
    print(
        f"best of {repeats} interleaved repeats{note}; ratio = crossentropy / peer; values agree\n"
    )
    passed = print_table(cases, thread_counts)
    print()
    if memory:
        passed &= print_memory(memory)
        print()
    if linear:
        passed &= print_linear(linear)
        print()
    forward = cases[0].results if cases[0].key == "a" else None
    for threads in thread_counts:
        line = (
            f"one np.exp over the 16384x1000 f32 logits on {threads} thread(s): "
            f"{exp_ms[threads]:.2f} ms"
        )
        if forward is not None:
            ours_ms = forward[threads]["ours_ms"]
            ratio = ours_ms / exp_ms[threads]
            line += f"; our forward pass (a): {ours_ms:.2f} ms = {ratio:.2f} x np.exp"
        print(line)
    print("\nevery target met" if passed else "\nsome targets were missed")

    if args.json:
        with open(args.json, "w") as file:
            json.dump(
                {
                    "title": title,
                    "repeats": repeats,
                    "cases": [
                        {
                            "key": c.key,
                            "name": c.name,
                            "peer": c.peer,
                            "target": c.target,
                            "results": c.results,
                        }
                        for c in cases
                    ],
                    "memory": {"limits": MEMORY_LIMITS, "fractions": memory},
                    "linear": {
                        "memory_limits": LINEAR_MEMORY_LIMITS,
                        "outside_products_limit": LINEAR_OUTSIDE_PRODUCTS,
                        "results": linear,
                    },
                    "exp_ms": exp_ms,
                    "busy_cores": busy,
                    "passed": passed,
                },
                file,
                indent=2,
            )
        print(f"results saved to {args.json}")
    if args.plot:
        plot(cases, thread_counts, args.plot, title)
        print(f"chart saved to {args.plot}")
    if args.strict and not passed:
        sys.exit(1)


if __name__ == "__main__":
    main()
