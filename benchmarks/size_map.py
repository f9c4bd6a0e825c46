"""The size map of ``compare.py``: its cells and targets, and its tables and heat map.

The map times ``categorical_cross_entropy_with_logits`` on float32 logits with integer
labels and ``reduction="mean"``, on one thread, from the calls of a training loop on
minibatches (N = 1, 64, 256 rows), where the fixed cost of a call dominates, to the
large arrays (N = 1024, 4096, 16384), where the passes over the logits do, for C = 10,
100, 1000 classes, and a vocabulary of C = 32000 at N = 256 and 1024. Each cell compares
our forward pass and our forward pass with gradient with the code they replace, each as
a ratio (ours / theirs; below 1, ours is faster) against a target, the most it may be:

- small cells (N <= 256, C <= 1000): forward and forward+grad against the NumPy a user
  writes (max, subtract, exp, sum, log, gather; for the gradient ``softmax - onehot``
  divided by N), 1.5 at N = 1 and 64, 1.0 at N = 256; forward+grad against PyTorch's
  forward and backward, 1.0 from N = 64;
- mid and large cells (N >= 1024, or C = 32000): forward against the faster of that
  NumPy code and ``scipy.special.log_softmax`` with the gather, 0.8; forward+grad
  against PyTorch's forward and backward, 1.0 where C >= 1000 and 1.3 where C <= 100;
  forward against one single-threaded ``np.exp`` over the same logits into a
  preallocated array, 3.0, wherever N * C >= 2**18.

``compare.py`` runs the map (``--cases map``) and stores it in its JSON; this script
turns that JSON into the Markdown tables the README shows and, with ``--plot``, into a
heat map of the ratios over (N, C), coloured by ratio / target. Usage::

    python benchmarks/size_map.py benchmarks/compare.json [--plot benchmarks/size_map.png]
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from typing import Any

ROWS = (1, 64, 256, 1024, 4096, 16384)
CLASSES = (10, 100, 1000, 32000)
SMALL_ROWS = (1, 64, 256)
VOCABULARY_ROWS = (256, 1024)
THREADS = 1  # every target of the map is stated on one thread
EXP_CELLS = 2**18  # the np.exp target holds where N * C is at least this

PASSES = ("forward", "forward+grad")
# What each peer key of a target times, as the tables and the heat map name it.
PEERS = {
    "numpy": "naive NumPy",
    "numpy|scipy": "faster of naive NumPy and scipy log_softmax",
    "torch": "PyTorch forward+backward",
    "exp": "one np.exp pass",
}
# The three tables: a title, the peers they show and what their targets are.
TABLES = (
    (
        "ours / the NumPy code it replaces",
        ("numpy", "numpy|scipy"),
        "targets: at most 1.5 at N = 1 and 64, 1.0 at N = 256 (naive NumPy, both passes); "
        "0.8 from N = 1024 and at C = 32000 (forward, against the faster of naive NumPy "
        "and `scipy.special.log_softmax` with the gather)",
    ),
    (
        "ours / PyTorch forward+backward",
        ("torch",),
        "targets: at most 1.0 at N = 64 and 256 and wherever C >= 1000, "
        "1.3 from N = 1024 where C <= 100",
    ),
    (
        "ours / one single-threaded np.exp over the logits",
        ("exp",),
        "target: at most 3.0 wherever N * C >= 2^18",
    ),
)


@dataclass(frozen=True)
class Target:
    """One comparison of a cell: our pass over a peer's time is at most `limit`."""

    pass_: str
    peer: str
    limit: float


def cells() -> list[tuple[int, int]]:
    """The (rows, classes) of every cell of the map, small cells first."""
    small = [(n, c) for n in SMALL_ROWS for c in CLASSES[:3]]
    large = [(n, c) for n in ROWS[3:] for c in CLASSES[:3]]
    return small + large + [(n, CLASSES[3]) for n in VOCABULARY_ROWS]


def cell_key(rows: int, classes: int) -> str:
    return f"{rows}x{classes}"


def targets(rows: int, classes: int) -> list[Target]:
    """The comparisons of a cell and their targets (see the module's docstring)."""
    if rows in SMALL_ROWS and classes in CLASSES[:3]:
        limit = 1.0 if rows == 256 else 1.5
        found = [Target(pass_, "numpy", limit) for pass_ in PASSES]
        if rows >= 64:
            found.append(Target("forward+grad", "torch", 1.0))
    else:
        found = [
            Target("forward", "numpy|scipy", 0.8),
            Target("forward+grad", "torch", 1.0 if classes >= 1000 else 1.3),
        ]
    if rows * classes >= EXP_CELLS:
        found.append(Target("forward", "exp", 3.0))
    return found


def _mark(comparison: dict[str, Any]) -> str:
    return f"{comparison['ratio']:.2f} {'✓' if comparison['passed'] else '✗'}"


def markdown(data: dict[str, Any]) -> str:
    """The map of a ``compare.py`` JSON as Markdown: rows N, columns C, one table a peer.

    Each cell reads "forward / forward+grad", each ratio marked ✓ (target met) or ✗,
    with "-" for a pass that has no target against that peer.
    """
    size_map = data.get("size_map")
    if not size_map or not size_map.get("cells"):
        msg = "the JSON has no size map: run compare.py with --cases map (or all cases)"
        raise SystemExit(msg)
    by_cell = {(cell["rows"], cell["classes"]): cell for cell in size_map["cells"]}
    rows = [n for n in ROWS if any(key[0] == n for key in by_cell)]
    columns = [c for c in CLASSES if any(key[1] == c for key in by_cell)]
    lines = [
        f"{data.get('title', '')}; best of {data.get('repeats')} interleaved repeats, "
        f"{size_map['threads']} thread; command: `{data.get('command', 'compare.py')}`",
        "",
    ]
    for title, peers, note in TABLES:
        shown = {
            (comparison["pass"], (cell["rows"], cell["classes"])): comparison
            for cell in size_map["cells"]
            for comparison in cell["comparisons"]
            if comparison["peer"] in peers
        }
        passes = [pass_ for pass_ in PASSES if any(key[0] == pass_ for key in shown)]
        if not passes:
            continue
        header = " | ".join(f"C = {c}" for c in columns)
        table = [
            f"| {title}: {' / '.join(passes)} | {header} |",
            "| --: |" + " --: |" * len(columns),
        ]
        for n in rows:
            row = f"| N = {n} |"
            for c in columns:
                found = [shown.get((pass_, (n, c))) for pass_ in passes]
                texts = ["-" if comparison is None else _mark(comparison) for comparison in found]
                row += " |" if (n, c) not in by_cell else f" {' / '.join(texts)} |"
            table.append(row)
        lines += [*table, "", f"{note}.", ""]
    return "\n".join(lines).rstrip() + "\n"


def heat_map(data: dict[str, Any], path: str) -> None:
    """Save a heat map of the map's ratios over (N, C), one panel a pass, as a PNG.

    A cell's colour is its largest ratio / target among the comparisons of that pass
    (green below 1, the targets met; red above), on a log scale; its text lists every
    ratio with its target.
    """
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm
    from matplotlib.ticker import FixedLocator, NullLocator

    size_map = data["size_map"]
    by_cell = {(cell["rows"], cell["classes"]): cell for cell in size_map["cells"]}
    rows = [n for n in ROWS if any(key[0] == n for key in by_cell)]
    columns = [c for c in CLASSES if any(key[1] == c for key in by_cell)]
    short = {"numpy": "NumPy", "numpy|scipy": "NumPy|SciPy", "torch": "torch", "exp": "np.exp"}
    figure, axes = plt.subplots(
        1,
        2,
        figsize=(2.5 + 3.0 * len(columns), 1.6 + 0.8 * len(rows)),
        squeeze=False,
        layout="constrained",
    )
    norm = LogNorm(vmin=0.25, vmax=4.0)
    image = None
    for panel, pass_ in zip(axes[0], PASSES, strict=True):
        values = [[math.nan] * len(columns) for _ in rows]
        for i, n in enumerate(rows):
            for j, c in enumerate(columns):
                cell = by_cell.get((n, c))
                found = [x for x in cell["comparisons"] if x["pass"] == pass_] if cell else []
                if not found:
                    continue
                values[i][j] = max(x["ratio"] / x["target"] for x in found)
                text = "\n".join(
                    f"{short[x['peer']]} {x['ratio']:.2f} ({x['target']:g}) "
                    f"{'✓' if x['passed'] else '✗'}"
                    for x in found
                )
                panel.text(j, i, text, ha="center", va="center", fontsize=7)
        image = panel.imshow(values, cmap="RdYlGn_r", norm=norm, aspect="auto")
        panel.set_xticks(range(len(columns)), [f"C = {c}" for c in columns], fontsize=8)
        panel.set_yticks(range(len(rows)), [f"N = {n}" for n in rows], fontsize=8)
        panel.set_title(f"{pass_}: peer, ratio ours / peer (target)", fontsize=9)
    assert image is not None
    colour_bar = figure.colorbar(image, ax=axes[0].tolist(), shrink=0.9)
    colour_bar.set_label("largest ratio / target (below 1: every target met)", fontsize=8)
    ticks = [0.25, 0.5, 1.0, 2.0, 4.0]
    colour_bar.ax.yaxis.set_major_locator(FixedLocator(ticks))
    colour_bar.ax.yaxis.set_minor_locator(NullLocator())
    colour_bar.ax.set_yticklabels([f"{t:g}" for t in ticks], fontsize=8)
    figure.suptitle(
        f"categorical_cross_entropy_with_logits, float32 logits, integer labels, mean, "
        f"{size_map['threads']} thread\n{data.get('title', '')}",
        fontsize=8,
    )
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", help="the JSON that compare.py --json saved")
    parser.add_argument("--plot", metavar="PATH", help="also save the heat map (PNG)")
    args = parser.parse_args()
    with open(args.json, encoding="utf-8") as file:
        data = json.load(file)
    print(markdown(data), end="")
    if args.plot:
        heat_map(data, args.plot)
        print(f"\nheat map saved to {args.plot}")


if __name__ == "__main__":
    main()
