"""Score a scikit-learn classifier's probabilities: the value of ``log_loss``, in less time.

A logistic regression is fitted to scikit-learn's bundled digits (10 classes) and breast
cancer (2 classes) data; its ``predict_proba`` on held-out samples is scored with
``crossentropy.categorical_cross_entropy`` and ``crossentropy.binary_cross_entropy``,
with and without sample weights, and checked against ``sklearn.metrics.log_loss``. Both
are then timed on 200,000 resampled predictions (best of several runs).

Run it with::

    python -m pip install ".[examples]" && python examples/score_classifier.py
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import crossentropy as ce


def best_time(function: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def held_out_probabilities(loader: Callable[..., Any]) -> tuple[np.ndarray, np.ndarray]:
    x, y = loader(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.3, stratify=y, random_state=0
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(x_train, y_train)
    return model.predict_proba(x_test), y_test


def compare(name: str, ours: Callable[..., Any], proba: np.ndarray, y: np.ndarray) -> None:
    weights = np.random.default_rng(0).uniform(0.5, 2.0, size=len(y))
    value, reference = ours(proba, y), log_loss(y, proba)
    weighted, weighted_reference = (
        ours(proba, y, sample_weight=weights),
        log_loss(y, proba, sample_weight=weights),
    )
    print(f"{name}: {len(y)} held-out samples")
    print(f"  crossentropy {value:.15f}   log_loss {reference:.15f}")
    print(f"  with sample weights: {weighted:.15f}   log_loss {weighted_reference:.15f}")
    assert np.isclose(value, reference, rtol=1e-12, atol=0)
    assert np.isclose(weighted, weighted_reference, rtol=1e-12, atol=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    digits_proba, digits_y = held_out_probabilities(load_digits)
    compare("digits, 10 classes", ce.categorical_cross_entropy, digits_proba, digits_y)
    cancer_proba, cancer_y = held_out_probabilities(load_breast_cancer)
    compare(
        "breast cancer, 2 classes (positive-class probability)",
        ce.binary_cross_entropy,
        cancer_proba[:, 1],
        cancer_y,
    )

    print(f"\ntiming on {args.rows:,} resampled predictions (best of {args.repeats}):")
    rng = np.random.default_rng(1)
    cases = [
        ("digits", ce.categorical_cross_entropy, digits_proba, digits_y),
        ("breast cancer", ce.binary_cross_entropy, cancer_proba[:, 1], cancer_y),
    ]
    for name, ours, proba, y in cases:
        rows = rng.integers(0, len(y), size=args.rows)
        big_proba, big_y = proba[rows], y[rows]
        ours_time = best_time(partial(ours, big_proba, big_y), args.repeats)
        theirs_time = best_time(partial(log_loss, big_y, big_proba), args.repeats)
        print(
            f"  {name:14s} crossentropy {ours_time * 1e3:7.2f} ms   log_loss "
            f"{theirs_time * 1e3:7.2f} ms   ratio {ours_time / theirs_time:.3f}"
        )


if __name__ == "__main__":
    main()
