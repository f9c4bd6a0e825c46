"""Development sessions, ``nox -s NAME``: tests, lint, docs, examples, bench, stability,
compare.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.default_venv_backend = "venv"


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite and the doctests."""
    session.install("-e", ".[test,boosting]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Check style, formatting and types."""
    session.install("-e", ".[lint]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site with warnings as errors, into docs/_build/html."""
    session.install("-e", ".[docs]")
    session.env["MPLBACKEND"] = "Agg"
    session.run(
        "sphinx-build",
        "-W",
        "--keep-going",
        "-b",
        "html",
        "docs",
        "docs/_build/html",
        *session.posargs,
    )


@nox.session
def examples(session: nox.Session) -> None:
    """Run every example: bundled data, a language model (minutes), 4 GB of logits, twice."""
    session.install("-e", ".[examples,dask,boosting]")
    session.env["MPLBACKEND"] = "Agg"
    session.run("python", "examples/score_classifier.py")
    session.run("python", "examples/digits_training.py")
    session.run("python", "examples/imbalanced_binary.py")
    session.run("python", "examples/boosting_focal_objective.py")
    session.run("python", "examples/boosting_focal_objective.py", "--library", "xgboost")
    session.run("python", "examples/train_language_model.py")
    session.run("python", "examples/score_out_of_core.py")
    session.run("python", "examples/score_out_of_core.py", "--workers", "2")


@nox.session
def bench(session: nox.Session) -> None:
    """Run every asv benchmark once, in this environment, to check that they work."""
    session.install("-e", ".[bench]")
    session.chdir("benchmarks")
    session.run("asv", "machine", "--yes")
    session.run("asv", "run", "--quick", "--python=same", "--dry-run", "--show-stderr")


@nox.session
def stability(session: nox.Session) -> None:
    """Check that two asv runs of this commit compare as unchanged (a subset; minutes)."""
    session.install("-e", ".[bench]")
    session.run("python", "benchmarks/check_stability.py", *session.posargs)


@nox.session
def compare(session: nox.Session) -> None:
    """Time ours against PyTorch CPU and scikit-learn on the same arrays, as ratios."""
    session.install("-e", ".[examples]")
    session.install("torch==2.13.0")
    session.run("python", "benchmarks/compare.py", *session.posargs)
