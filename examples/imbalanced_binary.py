"""Multi-label digits with rare labels: ``binary_cross_entropy_with_logits`` and ``pos_weight``.
=============================================================================================

Each digit image gets three binary labels of very different frequency: "is a 0" (about
10% positive), "is a 7 or a 9" (about 20%) and "is even" (about 50%). A linear model with
one logit per label is trained with plain NumPy gradient descent on
``binary_cross_entropy_with_logits(..., return_grad=True)``, once unweighted and once
with ``pos_weight = n_negative / n_positive`` per label, which makes a positive count as
much as all the negatives of its label. The script prints the recall, the precision and
the balanced accuracy of each label under both settings on held-out images, and saves a
PNG of the three, per label and setting.

Run it with::

    python -m pip install ".[examples]" && python examples/imbalanced_binary.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import balanced_accuracy_score, precision_score, recall_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import crossentropy as ce

LABELS = ["is a 0", "is a 7 or a 9", "is even"]


def multi_label_targets(digits: np.ndarray) -> np.ndarray:
    return np.stack([digits == 0, np.isin(digits, [7, 9]), digits % 2 == 0], axis=1)


def train(
    x: np.ndarray, y: np.ndarray, pos_weight: np.ndarray | None, *, steps: int, rate: float
) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Full-batch gradient descent on the mean binary cross-entropy; return W, b, losses."""
    weight = np.zeros((x.shape[1], y.shape[1]))
    bias = np.zeros(y.shape[1])
    losses = []
    grad_logits = np.empty(y.shape)
    for _ in range(steps):
        loss, grad = ce.binary_cross_entropy_with_logits(
            x @ weight + bias, y, pos_weight=pos_weight, return_grad=True, out=grad_logits
        )
        weight -= rate * (x.T @ grad + 1e-3 * weight)
        bias -= rate * grad.sum(axis=0)
        losses.append(float(loss))
    return weight, bias, losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rate", type=float, default=1.0)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "output" / "imbalanced_binary.png"
    )
    args = parser.parse_args()

    digits = load_digits()
    x_train, x_test, d_train, d_test = train_test_split(
        digits.data, digits.target, test_size=0.3, stratify=digits.target, random_state=0
    )
    scaler = StandardScaler().fit(x_train)
    x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)
    y_train, y_test = multi_label_targets(d_train), multi_label_targets(d_test)
    positives = y_train.sum(axis=0)
    balance = (len(y_train) - positives) / positives
    print("positive fraction per label:", ", ".join(f"{m:.0%}" for m in y_train.mean(axis=0)))
    print("pos_weight = n_negative / n_positive:", np.round(balance, 2))

    metrics: dict[str, dict[str, list[float]]] = {}
    for setting, pos_weight in [("unweighted", None), ("pos_weight", balance)]:
        weight, bias, losses = train(x_train, y_train, pos_weight, steps=args.steps, rate=args.rate)
        predicted = (x_test @ weight + bias) > 0
        print(f"\n{setting}: final training loss {losses[-1]:.4f} (the loss it minimises)")
        metrics[setting] = {"recall": [], "precision": [], "balanced accuracy": []}
        for j, label in enumerate(LABELS):
            recall = recall_score(y_test[:, j], predicted[:, j])
            precision = precision_score(y_test[:, j], predicted[:, j], zero_division=0)
            balanced = balanced_accuracy_score(y_test[:, j], predicted[:, j])
            for metric, value in zip(metrics[setting], (recall, precision, balanced), strict=True):
                metrics[setting][metric].append(value)
            print(
                f"  {label:14s} recall {recall:.3f}  precision {precision:.3f}  "
                f"balanced accuracy {balanced:.3f}"
            )

    figure, panels = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
    positions = np.arange(len(LABELS))
    for axes, metric in zip(panels, metrics["unweighted"], strict=True):
        for offset, setting in zip((-0.2, 0.2), metrics, strict=True):
            axes.bar(positions + offset, metrics[setting][metric], width=0.4, label=setting)
        axes.set(xticks=positions, xticklabels=LABELS, ylim=(0.5, 1.02), title=metric)
    panels[0].set_ylabel("held out")
    panels[0].legend(loc="lower left")
    figure.suptitle("Multi-label digits: a linear model with and without pos_weight")
    figure.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=100)
    print(f"\nchart saved to {args.out}")


if __name__ == "__main__":
    main()
