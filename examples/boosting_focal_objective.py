"""Gradient boosting on a rare class with a focal objective: ``crossentropy.objectives``.
======================================================================================

Which digit images are an 8? Most 8s are taken out of the training half, so that one
training image in sixty is positive, and a gradient-boosted model (LightGBM, or XGBoost
with ``--library xgboost``) is trained three times with the same parameters: with the
library's own logistic objective; with the focal loss of
``binary_focal_loss_with_logits`` (``gamma=2``), which weighs down the images the model
already gets right; and with the cross-entropy with ``pos_weight="balanced"``, which
weighs each positive by the ratio of negatives to positives. The two last objectives come
from ``crossentropy.objectives``: the loss's gradient and the diagonal of its Hessian, in
the library's conventions. All three start from a score of 0 (probability 1/2), as a
custom objective does.

The script prints the average precision of each model on the held-out half (which keeps
all its 8s) for several random splits, and their mean, and saves a PNG of the
precision-recall curves of the first split beside the average precision of every split.
With so few positives the differences between the objectives are of the size of the
differences between splits: the script shows how to train with these objectives and how
to compare them, not that one of them wins.

Run it with::

    python -m pip install ".[examples,boosting]" && python examples/boosting_focal_objective.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import average_precision_score, precision_recall_curve
from sklearn.model_selection import train_test_split

from crossentropy import objectives

POSITIVE_DIGIT = 8


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--library", choices=["lightgbm", "xgboost"], default="lightgbm")
    parser.add_argument("--gamma", type=float, default=2.0, help="the focal loss's exponent")
    parser.add_argument(
        "--keep", type=float, default=1 / 6, help="share of the training 8s kept (default 1/6)"
    )
    parser.add_argument("--rounds", type=int, default=300, help="boosting rounds")
    parser.add_argument("--splits", type=int, default=5, help="random train/test splits")
    parser.add_argument(
        "--out", type=Path, help="the PNG (default: output/boosting_focal_objective_LIBRARY.png)"
    )
    args = parser.parse_args()
    if args.out is None:
        name = f"boosting_focal_objective_{args.library}.png"
        args.out = Path(__file__).parent / "output" / name
    return args


def imbalanced_split(X, y, keep, seed):
    """Halve the data, stratified; keep only a share `keep` of the training positives."""
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.5, stratify=y, random_state=seed
    )
    positives = np.flatnonzero(y_train == 1)
    rng = np.random.default_rng(seed)
    kept = rng.choice(positives, size=max(2, round(keep * positives.size)), replace=False)
    rows = np.concatenate([np.flatnonzero(y_train == 0), kept])
    return X_train[rows], y_train[rows], X_test, y_test


def objectives_of(library, gamma):
    """The three objectives: None for the library's own, else a crossentropy objective."""
    make = objectives.lightgbm if library == "lightgbm" else objectives.xgboost
    return {
        "built-in logistic": None,
        f"focal, gamma={gamma:g}": make("binary_focal_loss_with_logits", gamma=gamma),
        "pos_weight='balanced'": make("binary_cross_entropy_with_logits", pos_weight="balanced"),
    }


def train_and_predict(library, objective, X_train, y_train, X_test, rounds):
    """Return the predicted probabilities of the positive class on `X_test`."""
    if library == "lightgbm":
        import lightgbm as lgb

        params = {"num_leaves": 15, "learning_rate": 0.05, "min_child_samples": 5}
        params |= {"num_threads": 1, "seed": 0, "verbose": -1}
        if objective is None:
            params |= {"objective": "binary", "boost_from_average": False}
        else:
            params |= {"objective": objective}
        booster = lgb.train(params, lgb.Dataset(X_train, label=y_train), rounds)
        scores = booster.predict(X_test)
        # A custom objective gives raw scores: the logits.
        return scores if objective is None else 1 / (1 + np.exp(-scores))
    import xgboost as xgb

    # The built-in objective's name and base_score=0.5 (a margin of 0) for all three:
    # predict then returns probabilities.
    params = {"objective": "binary:logistic", "base_score": 0.5, "max_depth": 4, "eta": 0.05}
    params |= {"min_child_weight": 0.1, "nthread": 1, "seed": 0}
    booster = xgb.train(params, xgb.DMatrix(X_train, label=y_train), rounds, obj=objective)
    return booster.predict(xgb.DMatrix(X_test))


def main() -> None:
    args = parse_arguments()
    X, digits = load_digits(return_X_y=True)
    y = (digits == POSITIVE_DIGIT).astype(np.int64)
    models = objectives_of(args.library, args.gamma)
    precision = {name: [] for name in models}
    first_split = {}
    positives_in = 0
    for seed in range(args.splits):
        X_train, y_train, X_test, y_test = imbalanced_split(X, y, args.keep, seed)
        line = [f"split {seed}: {y_train.sum()} positives of {y_train.size} training images"]
        for name, objective in models.items():
            scores = train_and_predict(
                args.library, objective, X_train, y_train, X_test, args.rounds
            )
            precision[name].append(average_precision_score(y_test, scores))
            line.append(f"{name} {precision[name][-1]:.3f}")
            if seed == 0:
                first_split[name] = precision_recall_curve(y_test, scores)[:2]
                positives_in = round(y_train.size / y_train.sum())
        print(" | ".join(line))
    print(f"\naverage precision on the held-out halves ({args.library}, {args.rounds} rounds):")
    for name, values in precision.items():
        spread = f", sd {np.std(values, ddof=1):.3f}" if len(values) > 1 else ""
        print(f"  {name:>24}: mean {np.mean(values):.3f}{spread}")

    figure, (curves, points) = plt.subplots(1, 2, figsize=(11, 4.5))
    for name, (precisions, recalls) in first_split.items():
        curves.step(recalls, precisions, where="post", label=f"{name} ({precision[name][0]:.3f})")
    curves.set(xlabel="recall", ylabel="precision", title="held-out half of split 0")
    curves.legend(title="average precision", loc="lower left")
    for offset, (name, values) in enumerate(precision.items()):
        points.plot(np.arange(args.splits) + 0.1 * (offset - 1), values, "o", label=name)
    points.set(xlabel="split", ylabel="average precision", title="every split")
    points.set_xticks(range(args.splits))
    points.legend(loc="lower left")
    figure.suptitle(
        f"Is it an {POSITIVE_DIGIT}? {args.library}, trained on 1 positive in {positives_in}"
    )
    figure.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=120)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
