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

PyTorch's layout of a batch of images, (8, 21, 128, 128) float32 logits with the
classes on ``axis=1``, forward (l) and forward+grad (m), and 8192x1000 float64 logits,
forward (n), are timed against ``F.cross_entropy`` on 2 threads, the count their
targets are stated on, whatever ``--threads`` says (groups ``nchw`` and ``f64``).

The size map (``--cases map``, or single cells such as ``--cases 64x10,1024x32000``;
``size_map.py`` holds its cells and targets) runs on 1 thread, whatever ``--threads``
says: ``categorical_cross_entropy_with_logits`` on float32 logits with integer labels,
forward and forward+grad, for N = 1, 64, 256, 1024, 4096, 16384 rows by C = 10, 100,
1000 classes and N = 256, 1024 by C = 32000, against the NumPy code a user writes (max,
subtract, exp, sum, log, gather; the gradient ``softmax - onehot`` over N), against
``scipy.special.log_softmax`` with the gather, against PyTorch's forward and backward,
and against one ``np.exp`` over the logits into a preallocated array. A cell's sample of
a callable is a loop of as many calls as last about ``MAP_SAMPLE_SECONDS`` (a few
milliseconds); each repeat takes one sample of each callable in turn, and the losses
and gradients of all of them must agree. The script prints every comparison, then the
map as the README shows it (Markdown tables: rows N, columns C); ``--map-plot`` draws
it as a heat map. The README's map and figure are regenerated from a saved run with
one command::

    python benchmarks/size_map.py benchmarks/compare.json --plot benchmarks/size_map.png

PyTorch (``torch==2.13.0``), scikit-learn and SciPy must be importable: the script
changes nothing in the environment unless asked to with ``--install-peers``, which
pip-installs the ones that are missing into this interpreter (scikit-learn brings
SciPy). ``nox -s compare`` installs them in a virtual environment of its own. On
Linux, PyPI's torch wheel is the CUDA build: for the CPU-only one, point pip at
PyTorch's CPU wheel index first (``PIP_EXTRA_INDEX_URL``).

Usage::

    python benchmarks/compare.py [--threads 1,2] [--repeats 15] [--quick] [--cases a,i,map]
                                 [--json results.json] [--plot ratios.png]
                                 [--map-plot size_map.png] [--strict] [--install-peers]

The run stored in the repository, with its bar chart and heat map::

    python benchmarks/compare.py --json benchmarks/compare.json --plot benchmarks/compare.png \\
        --map-plot benchmarks/size_map.png
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
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import size_map  # benchmarks/size_map.py: the cells of the map, their targets, the tables

import crossentropy as ce

PEERS = {"torch": "torch==2.13.0", "sklearn": "scikit-learn", "scipy": "scipy"}

# PyTorch's OpenMP workers spin after each of its calls (about 7 ms of CPU on the
# reference machine) on the core that the second thread of our next call needs: in the
# alternation, that times their spinning against us, and our 2-thread calls run about
# as on one. A short spin (set before PyTorch loads; a setting of the caller wins) ends
# it within a fraction of a millisecond; PyTorch's own best times stay within their
# spread from run to run (the README gives both).
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

# PyTorch's layout of a batch of images: (N, C, H, W), the classes on axis 1 (l, m).
NCHW_SHAPE = (8, 21, 128, 128)

# The size map: a sample of a callable lasts about this long (a loop of calls of a
# small cell; with --quick, MAP_QUICK_SECONDS), with at most this many calls.
MAP_SAMPLE_SECONDS = 0.005
MAP_QUICK_SECONDS = 0.002
MAP_MAX_CALLS = 20_000

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
    # The thread counts its target is stated on, whatever --threads says (None: those).
    threads: tuple[int, ...] | None = None
    group: str = ""  # a name that --cases selects it by, with the other cases of its group


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
    cases += layout_cases(rng)

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


def layout_cases(rng: np.random.Generator) -> list[Case]:
    """(l), (m): PyTorch's (N, C, H, W) layout, ``axis=1``; (n): float64; on 2 threads."""
    import torch
    import torch.nn.functional as F

    logits = rng.standard_normal(NCHW_SHAPE, dtype=np.float32)
    labels = rng.integers(0, NCHW_SHAPE[1], size=(NCHW_SHAPE[0], *NCHW_SHAPE[2:]))
    x, y = torch.from_numpy(logits), torch.from_numpy(labels)

    def theirs_grad():
        leaf = x.detach().requires_grad_()
        loss = F.cross_entropy(leaf, y)
        loss.backward()
        return loss.detach(), leaf.grad

    shape = "x".join(str(n) for n in NCHW_SHAPE) + " f32, axis=1"
    cases = [
        Case(
            "l",
            f"categorical logits {shape}, forward",
            "F.cross_entropy",
            0.6,
            lambda: ce.categorical_cross_entropy_with_logits(logits, labels, axis=1),
            lambda: F.cross_entropy(x, y),
            1e-4,
            threads=(2,),
            group="nchw",
        ),
        Case(
            "m",
            f"categorical logits {shape}, forward+grad",
            "F.cross_entropy+backward",
            0.5,
            lambda: ce.categorical_cross_entropy_with_logits(
                logits, labels, axis=1, return_grad=True
            ),
            theirs_grad,
            1e-4,
            threads=(2,),
            group="nchw",
        ),
    ]
    wide = rng.standard_normal((8192, 1000))
    wide_labels = rng.integers(0, 1000, size=8192)
    xw, yw = torch.from_numpy(wide), torch.from_numpy(wide_labels)
    cases.append(
        Case(
            "n",
            "categorical logits 8192x1000 f64, forward",
            "F.cross_entropy",
            0.6,
            lambda: ce.categorical_cross_entropy_with_logits(wide, wide_labels),
            lambda: F.cross_entropy(xw, yw),
            1e-10,
            threads=(2,),
            group="f64",
        )
    )
    return cases


def naive_forward(logits: np.ndarray, labels: np.ndarray) -> Any:
    """The mean loss as a user writes it in NumPy: max, subtract, exp, sum, log, gather."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(axis=1))
    return np.mean(log_sum - shifted[np.arange(len(labels)), labels])


def naive_forward_grad(logits: np.ndarray, labels: np.ndarray) -> tuple[Any, np.ndarray]:
    """The same and its gradient, ``softmax - onehot`` divided by N, reusing the exps."""
    rows = np.arange(len(labels))
    shifted = logits - logits.max(axis=1, keepdims=True)
    exps = np.exp(shifted)
    sums = exps.sum(axis=1, keepdims=True)
    loss = np.mean(np.log(sums[:, 0]) - shifted[rows, labels])
    grad = exps / sums
    grad[rows, labels] -= 1
    grad /= len(labels)
    return loss, grad


def scipy_forward(logits: np.ndarray, labels: np.ndarray) -> Any:
    """The mean loss from ``scipy.special.log_softmax`` and the gather."""
    from scipy.special import log_softmax

    return -np.mean(log_softmax(logits, axis=1)[np.arange(len(labels)), labels])


@dataclass
class MapCell:
    """A cell of the size map: our passes and the peers its targets name, on one array."""

    rows: int
    classes: int
    results: dict[str, dict[str, float]] = field(default_factory=dict)
    comparisons: list[dict[str, Any]] = field(default_factory=list)

    @property
    def key(self) -> str:
        return size_map.cell_key(self.rows, self.classes)

    def runners(self, rng: np.random.Generator) -> dict[str, Callable[[], Any]]:
        """Every callable the cell times, by name: ``{ours,peer} {pass}``, or ``exp``."""
        import torch
        import torch.nn.functional as F

        logits = rng.standard_normal((self.rows, self.classes), dtype=np.float32)
        labels = rng.integers(0, self.classes, size=self.rows)
        x, y = torch.from_numpy(logits), torch.from_numpy(labels)
        buffer = np.empty_like(logits)
        peers = {target.peer for target in size_map.targets(self.rows, self.classes)}

        def torch_grad():
            leaf = x.detach().requires_grad_()
            loss = F.cross_entropy(leaf, y)
            loss.backward()
            return loss.detach(), leaf.grad

        runners: dict[str, Callable[[], Any]] = {
            "ours forward": lambda: ce.categorical_cross_entropy_with_logits(logits, labels),
            "ours forward+grad": lambda: ce.categorical_cross_entropy_with_logits(
                logits, labels, return_grad=True
            ),
        }
        if peers & {"numpy", "numpy|scipy"}:
            runners["numpy forward"] = lambda: naive_forward(logits, labels)
        if "numpy" in peers:
            runners["numpy forward+grad"] = lambda: naive_forward_grad(logits, labels)
        if "numpy|scipy" in peers:
            runners["scipy forward"] = lambda: scipy_forward(logits, labels)
        if "torch" in peers:
            runners["torch forward+grad"] = torch_grad
        if "exp" in peers:
            runners["exp"] = lambda: np.exp(logits, out=buffer)
        return runners


def check_map_agreement(cell: MapCell, values: dict[str, Any]) -> None:
    """Every loss of a cell agrees with every other, every gradient with every other."""
    losses = {name: as_arrays(value)[0] for name, value in values.items() if name != "exp"}
    grads = {name: as_arrays(value)[1] for name, value in values.items() if name.endswith("+grad")}
    for what, found in (("loss", losses), ("gradient", grads)):
        reference = found["ours forward+grad" if what == "gradient" else "ours forward"]
        atol = 1e-4 * float(np.max(np.abs(reference), initial=0.0)) if reference.ndim else 0.0
        for name, value in found.items():
            if value.shape != reference.shape or not np.allclose(
                value, reference, rtol=1e-4, atol=atol
            ):
                msg = (
                    f"(map {cell.key}) the {what} of {name} and ours disagree beyond "
                    f"rtol=1e-4: {value.ravel()[:4]} vs {reference.ravel()[:4]}"
                )
                raise SystemExit(msg)


def time_map_cell(cell: MapCell, repeats: int, sample_seconds: float) -> None:
    """Time every callable of a cell, interleaved, best of `repeats`; fill in the ratios.

    After a checked warm-up call of each, a sample of a callable is a loop of as many
    calls as last about `sample_seconds` (one for a large cell): the per-call cost of a
    small cell is far below the timer's resolution and its noise. Every repeat takes one
    sample of each callable in turn, in the order of the last repeat reversed, so that a
    spell of load from other processes falls on all of them.
    """
    runners = cell.runners(np.random.default_rng(cell.rows * 100_003 + cell.classes))
    check_map_agreement(cell, {name: run() for name, run in runners.items()})
    calls = {}
    for name, run in runners.items():
        # As timeit's autorange: loops of 1, 4, 16... calls until one lasts a fifth of
        # a sample, which gives the per-call time that sizes the samples.
        count = 1
        while True:
            start = time.perf_counter()
            for _ in range(count):
                run()
            elapsed = time.perf_counter() - start
            if elapsed >= sample_seconds / 5 or count >= MAP_MAX_CALLS:
                break
            count *= 4
        calls[name] = max(1, min(MAP_MAX_CALLS, round(sample_seconds * count / elapsed)))
    best = dict.fromkeys(runners, float("inf"))
    names = list(runners)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for repeat in range(repeats):
            for name in names if repeat % 2 == 0 else names[::-1]:
                run, count = runners[name], calls[name]
                start = time.perf_counter()
                for _ in range(count):
                    run()
                best[name] = min(best[name], (time.perf_counter() - start) / count)
    finally:
        if gc_was_enabled:
            gc.enable()
    cell.results = {name: {"us": best[name] * 1e6, "calls": calls[name]} for name in names}
    cell.comparisons = []
    for target in size_map.targets(cell.rows, cell.classes):
        ours = best[f"ours {target.pass_}"]
        if target.peer == "exp":
            peer_names = ["exp"]
        elif target.peer == "numpy|scipy":
            peer_names = ["numpy forward", "scipy forward"]
        else:
            peer_names = [f"{target.peer} {target.pass_}"]
        theirs = min(best[name] for name in peer_names)
        ratio = ours / theirs
        cell.comparisons.append(
            {
                "pass": target.pass_,
                "peer": target.peer,
                "ours_us": ours * 1e6,
                "peer_us": theirs * 1e6,
                "peer_timed": min(peer_names, key=best.__getitem__),
                "ratio": ratio,
                "target": target.limit,
                "passed": ratio <= target.limit,
            }
        )


def print_map(cells: list[MapCell]) -> bool:
    """Print every comparison of the map; return whether every target was met."""
    print(f"size map, {size_map.THREADS} thread: categorical logits f32, integer labels, mean\n")
    print("| cell | pass | peer | ours (us) | peer (us) | ratio | target | |")
    print("| --- | --- | --- | --: | --: | --: | --: | --- |")
    passed = True
    for cell in cells:
        for comparison in cell.comparisons:
            passed &= comparison["passed"]
            peer = size_map.PEERS[comparison["peer"]]
            if comparison["peer"] == "numpy|scipy":
                peer += f" ({comparison['peer_timed'].split()[0]})"
            print(
                f"| {cell.key} | {comparison['pass']} | {peer} | {comparison['ours_us']:.1f} | "
                f"{comparison['peer_us']:.1f} | {comparison['ratio']:.3f} | "
                f"{comparison['target']} | {'pass' if comparison['passed'] else 'FAIL'} |"
            )
    return passed


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


def exp_bound(
    threads: int,
    repeats: int,
    shape: tuple[int, ...] = (16384, 1000),
    *,
    class_sum: bool = False,
) -> float:
    """Best time of one np.exp over float32 logits of `shape` into `out`, over threads.

    The logits are split over the threads along their first axis. With `class_sum`,
    each thread also sums its part of `out` over axis 1 (the classes of PyTorch's
    layout): the two passes that any forward pass in NumPy makes.
    """
    logits = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    out = np.empty_like(logits)
    bounds = np.linspace(0, len(logits), threads + 1).astype(int)
    blocks = [slice(start, stop) for start, stop in itertools.pairwise(bounds)]

    def exp_block(rows: slice) -> None:
        np.exp(logits[rows], out=out[rows])
        if class_sum:
            np.add.reduce(out[rows], axis=1)

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
    """Print the Markdown table of times and ratios; return whether every target was met.

    A case timed on some of the thread counts only (l to n) has blank cells elsewhere.
    """
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
            result = case.results.get(threads)
            if result is None:
                row += " | | |"
                continue
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

    figure, axes = plt.subplots(figsize=(10, max(5.0, 1.0 + 0.45 * len(cases))))
    positions = np.arange(len(cases))
    width = 0.8 / len(thread_counts)
    centres = positions + width * (len(thread_counts) - 1) / 2
    for i, threads in enumerate(thread_counts):
        ratios = [case.results.get(threads, {}).get("ratio", np.nan) for case in cases]
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


def select(cases: list[Case], selection: str | None) -> tuple[list[Case], list[MapCell]]:
    """The cases and map cells that --cases names: keys, groups, ``map``, or cells."""
    cells = [MapCell(rows, classes) for rows, classes in size_map.cells()]
    if not selection:
        return cases, cells
    keys = set(selection.split(","))
    chosen = [case for case in cases if case.key in keys or case.group in keys]
    chosen_cells = [cell for cell in cells if "map" in keys or cell.key in keys]
    known = {case.key for case in cases} | {case.group for case in cases} | {"map"}
    unknown = keys - known - {cell.key for cell in cells}
    if unknown:
        msg = f"unknown --cases: {', '.join(sorted(unknown))}"
        raise SystemExit(msg)
    return chosen, chosen_cells


def main() -> None:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--threads",
        default=",".join(str(n) for n in sorted({1, cores or 1})),
        help="comma-separated thread counts of cases a to k (default: 1 and all the cores); "
        "l to n run on 2 threads and the size map on 1, as their targets are stated",
    )
    parser.add_argument("--repeats", type=int, default=15, help="interleaved repeats (15)")
    parser.add_argument("--quick", action="store_true", help="3 repeats, for a smoke test")
    parser.add_argument(
        "--cases",
        help="comma-separated keys of the cases to run (default: all): a to n, the groups "
        "nchw (l, m) and f64 (n), map (every cell of the size map) or cells of it (64x10)",
    )
    parser.add_argument("--json", metavar="PATH", help="save the results as JSON")
    parser.add_argument("--plot", metavar="PATH", help="save a bar chart of the ratios (PNG)")
    parser.add_argument(
        "--map-plot", metavar="PATH", help="save a heat map of the size map's ratios (PNG)"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument(
        "--install-peers",
        action="store_true",
        help="pip-install PyTorch, scikit-learn and SciPy into this interpreter if missing",
    )
    args = parser.parse_args()
    repeats = 3 if args.quick else args.repeats
    thread_counts = [int(n) for n in args.threads.split(",")]
    command = shlex.join(["python", *sys.argv])

    check_peers(install=args.install_peers)
    import sklearn
    import torch

    cases, cells = select(build_cases(), args.cases)
    busy = {"before": warn_if_busy("before the timings")}
    counts = {case.key: list(case.threads or thread_counts) for case in cases}
    for threads in sorted({n for values in counts.values() for n in values}):
        torch.set_num_threads(threads)
        with ce.num_threads(threads):
            for case in cases:
                if threads not in counts[case.key]:
                    continue
                ours_time, theirs_time = best_of_interleaved(case, repeats, threads)
                case.results[threads] = {
                    "ours_ms": ours_time * 1e3,
                    "theirs_ms": theirs_time * 1e3,
                    "ratio": ours_time / theirs_time,
                }
    sample_seconds = MAP_QUICK_SECONDS if args.quick else MAP_SAMPLE_SECONDS
    if cells:
        torch.set_num_threads(size_map.THREADS)
        with ce.num_threads(size_map.THREADS):
            for cell in cells:
                time_map_cell(cell, repeats, sample_seconds)
    keys = {case.key for case in cases}
    memory = {threads: peak_memory(threads) for threads in thread_counts} if "a" in keys else {}
    exp_ms = {}
    if any(case.threads is None for case in cases):
        exp_ms = {threads: exp_bound(threads, repeats) * 1e3 for threads in thread_counts}
    nchw = {case.key: case for case in cases if case.group == "nchw"}
    nchw_exp_ms = nchw_floor_ms = None
    if nchw:
        nchw_exp_ms = exp_bound(2, repeats, NCHW_SHAPE) * 1e3
        nchw_floor_ms = exp_bound(2, repeats, NCHW_SHAPE, class_sum=True) * 1e3
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
    passed = True
    if cases:
        table_counts = sorted({n for case in cases for n in case.results})
        passed &= print_table(cases, table_counts)
        print()
    if memory:
        passed &= print_memory(memory)
        print()
    if linear:
        passed &= print_linear(linear)
        print()
    if nchw_exp_ms is not None and nchw_floor_ms is not None:
        # NumPy's floor for PyTorch's layout: what one exp pass alone costs beside the peer,
        # and with the sum over the classes that any forward pass in NumPy adds to it.
        for what, floor_ms in (
            ("one np.exp", nchw_exp_ms),
            ("one np.exp and a sum over the classes", nchw_floor_ms),
        ):
            line = f"{what} over the {NCHW_SHAPE} f32 logits on 2 threads: {floor_ms:.2f} ms"
            for case in nchw.values():
                theirs_ms = case.results.get(2, {}).get("theirs_ms")
                if theirs_ms:
                    line += f"; {floor_ms / theirs_ms:.2f} x {case.peer} ({case.key})"
            print(line)
    forward = cases[0].results if cases and cases[0].key == "a" else None
    for threads, exp_time in exp_ms.items():
        line = (
            f"one np.exp over the 16384x1000 f32 logits on {threads} thread(s): {exp_time:.2f} ms"
        )
        if forward is not None:
            ours_ms = forward[threads]["ours_ms"]
            ratio = ours_ms / exp_time
            line += f"; our forward pass (a): {ours_ms:.2f} ms = {ratio:.2f} x np.exp"
        print(line)
    if cells:
        print()
        passed &= print_map(cells)
    print("\nevery target met" if passed else "\nsome targets were missed")

    data = {
        "title": title,
        "command": command,
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
        "nchw_exp_ms": nchw_exp_ms,
        "nchw_exp_sum_ms": nchw_floor_ms,
        "size_map": {
            "threads": size_map.THREADS,
            "sample_seconds": sample_seconds,
            "peers": size_map.PEERS,
            "cells": [
                {
                    "key": cell.key,
                    "rows": cell.rows,
                    "classes": cell.classes,
                    "results": cell.results,
                    "comparisons": cell.comparisons,
                }
                for cell in cells
            ],
        },
        "busy_cores": busy,
        "passed": passed,
    }
    if cells:
        print("\nthe size map, as the README shows it:\n")
        print(size_map.markdown(data), end="")
    if args.json:
        with open(args.json, "w") as file:
            json.dump(data, file, indent=2)
        print(f"results saved to {args.json}")
    if args.plot and cases:
        plot(cases, sorted({n for case in cases for n in case.results}), args.plot, title)
        print(f"chart saved to {args.plot}")
    if args.map_plot and cells:
        size_map.heat_map(data, args.map_plot)
        print(f"heat map saved to {args.map_plot}")
    if args.strict and not passed:
        sys.exit(1)


if __name__ == "__main__":
    main()
