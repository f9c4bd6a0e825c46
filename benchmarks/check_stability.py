"""Check that two asv runs of one commit compare as unchanged.

Runs a subset of the asv suite twice in this environment (``asv run --python=same``),
into two result sets of one commit, and compares them with asv's own comparison, that of
``asv compare --factor 1.5 --split``: a benchmark counts as changed when the medians
differ by more than the factor and the samples differ significantly. Exits 1 if any
benchmark has improved or got worse, so that a suite that reports changes where there
are none fails.

The runs are interleaved, as ``asv continuous`` interleaves the rounds of two commits:
round 1 of the first set, round 1 of the second, round 2 of the second, round 2 of the
first, and so on (``-a rounds=1 --append-samples``), so that a spell of load from other
processes falls on both sets rather than on one. The default subset, the size map on
one thread (12 cells, from a per-call cost of well under a millisecond to tens of
milliseconds), in 4 rounds per set takes about 2 minutes on 2 cores at a load average
of 5, and 4 at 10. Everything asv writes (the results, its machine file) goes to a
temporary directory, which is removed at the end.

Usage::

    python benchmarks/check_stability.py [--factor 1.5] [--rounds 4] [--bench REGEX]
                                         [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from asv.commands.compare import Compare
from asv.config import Config
from asv.results import iter_results_for_machine_and_hash
from asv.util import load_json

HERE = Path(__file__).resolve().parent
SETS = ("first", "second")
MACHINE = "stability-check"
# The size map on one thread: 64, 1024 and 16384 rows, 10 and 1000 classes, both passes.
DEFAULT_BENCH = r"SizeMap\.time_loss\((64|1024|16384), (10|1000), '[^']+', 1\)"


def write_config(directory: Path, name: str) -> Path:
    """Copy asv.conf.json with absolute paths and results of its own under `directory`."""
    config = load_json(str(HERE / "asv.conf.json"), js_comments=True)
    config.update(
        repo=str((HERE / config["repo"]).resolve()),
        benchmark_dir=str(HERE / config["benchmark_dir"]),
        env_dir=str(directory / "env"),
        results_dir=str(directory / "results" / name),
        html_dir=str(directory / "html"),
    )
    path = directory / f"asv-{name}.json"
    path.write_text(json.dumps(config, indent=4))
    return path


def asv(*args: str, env: dict[str, str]) -> None:
    command = [sys.executable, "-m", "asv", *args]
    print("$ asv", " ".join(args), flush=True)
    subprocess.run(command, check=True, env=env, cwd=HERE)


def results(config: Config, commit: str):
    """asv's result tuples of one set, as `Compare.print_table` takes them."""
    for result in iter_results_for_machine_and_hash(config.results_dir, MACHINE, commit):
        for key in result.get_all_result_keys():
            params = result.get_result_params(key)
            yield (
                key,
                params,
                result.get_result_value(key, params),
                result.get_result_stats(key, params),
                result.get_result_samples(key, params),
                result.benchmark_version.get(key),
                MACHINE,
                result.env_name,
            )


def load_average() -> str:
    """The 1-minute load average: how many processes wanted a core, on average."""
    return f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factor", type=float, default=1.5, help="asv compare's factor (1.5)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds of each set (4)")
    parser.add_argument("--bench", default=DEFAULT_BENCH, help="asv's benchmark regex")
    parser.add_argument("--keep", metavar="DIR", help="keep the results in DIR")
    args = parser.parse_args()

    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], check=True, capture_output=True, text=True, cwd=HERE
    ).stdout.strip()
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="asv-stability-") as temporary:
        directory = Path(temporary)
        # asv keeps its machine descriptions in ~/.asv-machine.json: use a home of our own,
        # and keep git's global settings (safe.directory, for one) where git finds them.
        env = {**os.environ, "HOME": str(directory)}
        gitconfig = Path("~/.gitconfig").expanduser()
        if "GIT_CONFIG_GLOBAL" not in env and gitconfig.exists():
            env["GIT_CONFIG_GLOBAL"] = str(gitconfig)
        configs = {name: write_config(directory, name) for name in SETS}
        asv("machine", "--yes", "--machine", MACHINE, "--config", str(configs["first"]), env=env)
        for round_ in range(args.rounds):
            # First, second; then second, first: a load that grows or shrinks during
            # the check weighs on both sets alike.
            for name in SETS if round_ % 2 == 0 else SETS[::-1]:
                asv(
                    "run",
                    "--python=same",
                    f"--set-commit-hash={commit}",
                    f"--machine={MACHINE}",
                    f"--config={configs[name]}",
                    f"--bench={args.bench}",
                    "--attribute=rounds=1",
                    "--append-samples",
                    env=env,
                )
        loaded = {name: Config.load(str(configs[name])) for name in SETS}
        table = io.StringIO()
        with contextlib.redirect_stdout(table):
            worsened, improved = Compare.print_table(
                loaded["first"],
                commit,
                commit,
                factor=args.factor,
                split=True,
                resultset_1=results(loaded["first"], commit),
                resultset_2=results(loaded["second"], commit),
            )
        print(
            f"\nthe first set (before) against the second (after), factor {args.factor}; "
            f"load average at the start {load_before}, at the end {load_average()}:"
        )
        for line in table.getvalue().splitlines():
            if line.count("| n/a ") < 2:  # the parameters outside the subset
                print(line)
        if args.keep:
            shutil.copytree(directory / "results", args.keep, dirs_exist_ok=True)
    if worsened or improved:
        print("\nFAIL: two runs of one commit compare as changed", file=sys.stderr)
        return 1
    print("\nok: two runs of one commit compare as unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
