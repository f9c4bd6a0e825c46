"""Score a scikit-learn classifier's probabilities: the value of ``log_loss``, in less time.
=========================================================================================

A classifier (logistic regression by default, or histogram gradient boosting) is fitted
to scikit-learn's bundled digits (10 classes) and breast cancer (2 classes) data; its
``predict_proba`` on a held-out split is scored with
``crossentropy.categorical_cross_entropy(proba, y)`` and
``crossentropy.binary_cross_entropy(proba[:, 1], y)``, with and without sample weights,
and checked against ``sklearn.metrics.log_loss`` (the script stops if they differ by more
than a relative 1e-12). Both are then timed, best of several runs with
``time.perf_counter``, on the held-out split and on 200,000 predictions resampled from it,
and the ratio of the times is printed (below 1: crossentropy is faster).

Run it with::

    python -m pip install ".[examples]" && python examples/score_classifier.py

Options: ``--model logreg|hgb``, ``--rows`` (size of the resampled array),
``--repeats`` (timing runs), ``--seed``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import crossentropy as ce

RTOL = 1e-12


def best_time(function: Callable[[], Any], repeats: int) -> float:
    """The shortest of `repeats` wall-clock times of ``function()``, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def held_out_probabilities(
    loader: Callable[..., Any], model_name: str, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Fit the model on 70% of the data; return its probabilities and labels for the rest."""
    x, y = loader(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.3, stratify=y, random_state=seed
    )
    if model_name == "hgb":
        model = HistGradientBoostingClassifier(random_state=seed)
    else:
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(x_train, y_train)
    return model.predict_proba(x_test), y_test


def check_equal(label: str, ours: float, reference: float) -> None:
    print(f"  {label:22s} crossentropy {ours:.15f}   log_loss {reference:.15f}")
    if not np.isclose(ours, reference, rtol=RTOL, atol=0):
        msg = f"{label}: crossentropy gives {ours!r}, log_loss {reference!r}"
        raise SystemExit(msg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["logreg", "hgb"], default="logreg")
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the timed array")
    parser.add_argument("--repeats", type=int, default=7, help="timing runs (best is kept)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    digits_proba, digits_y = held_out_probabilities(load_digits, args.model, args.seed)
    cancer_proba, cancer_y = held_out_probabilities(load_breast_cancer, args.model, args.seed)
    # (name, our loss, the probabilities it takes, labels, what log_loss takes)
    cases = [
        ("digits", ce.categorical_cross_entropy, digits_proba, digits_y, digits_proba),
        # binary_cross_entropy takes the positive-class column; log_loss takes both.
        ("breast cancer", ce.binary_cross_entropy, cancer_proba[:, 1], cancer_y, cancer_proba),
    ]

    print(f"model: {args.model}; equality checked to rtol={RTOL:g}")
    timed = []
    for name, ours, proba, y, sk_proba in cases:
        print(f"{name}: {len(y)} held-out samples, {sk_proba.shape[1]} classes")
        weights = rng.uniform(0.5, 2.0, size=len(y))
        check_equal("mean log loss", ours(proba, y), log_loss(y, sk_proba))
        check_equal(
            "with sample_weight",
            ours(proba, y, sample_weight=weights),
            log_loss(y, sk_proba, sample_weight=weights),
        )
        rows = rng.integers(0, len(y), size=args.rows)
        big = (proba[rows], y[rows], sk_proba[rows])
        check_equal(f"{args.rows:,} resampled", ours(big[0], big[1]), log_loss(big[1], big[2]))
        timed += [(name, ours, proba, y, sk_proba), (name, ours, *big)]

    print(f"\ntiming, best of {args.repeats} (ratio = crossentropy / log_loss):")
    for name, ours, proba, y, sk_proba in timed:
        ours_time = best_time(partial(ours, proba, y), args.repeats)
        theirs_time = best_time(partial(log_loss, y, sk_proba), args.repeats)
        print(
            f"  {name:13s} {len(y):>8,} rows  crossentropy {ours_time * 1e3:8.3f} ms"
            f"   log_loss {theirs_time * 1e3:8.3f} ms   ratio {ours_time / theirs_time:.3f}"
        )


if __name__ == "__main__":
    main()
