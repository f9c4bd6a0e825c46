"""Train classifiers on handwritten digits with plain NumPy and this package's gradient.
=====================================================================================

Multinomial logistic regression and a two-layer perceptron (64 -> 128 -> 10, ReLU) are
trained with Adam on scikit-learn's bundled digits data (1,797 8x8 images; no download).
Each step calls ``categorical_cross_entropy_with_logits(..., return_grad=True)``, which
returns the mean loss and its gradient with respect to the logits from one pass, written
into a buffer reused across steps (``out=``); backpropagation through the layers is a few
lines of NumPy. Label smoothing and balanced class weights are options. The script prints
the loss per epoch and the held-out accuracy, and saves a PNG of the training curves.

Run it with::

    python -m pip install ".[examples]" && python examples/digits_training.py

Options: ``--model logreg|mlp|both``, ``--epochs``, ``--label-smoothing``,
``--class-weight balanced|none``, ``--out PATH`` for the PNG, ``--blas-threads``.

The matrix products here are tiny (a batch of 64 rows), so BLAS runs them on one thread
(``threadpoolctl``, installed with scikit-learn): with several, OpenBLAS threads wait
for one another on every product, which on a busy machine made training about 100 times slower.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

import crossentropy as ce

N_CLASSES = 10


class Adam:
    """Adam updates for a list of parameter arrays, in place."""

    def __init__(self, params: list[np.ndarray], rate: float) -> None:
        self.params = params
        self.rate = rate
        self.first = [np.zeros_like(p) for p in params]
        self.second = [np.zeros_like(p) for p in params]
        self.steps = 0

    def step(self, grads: list[np.ndarray]) -> None:
        self.steps += 1
        correction1 = 1 - 0.9**self.steps
        correction2 = 1 - 0.999**self.steps
        for param, grad, mean, square in zip(
            self.params, grads, self.first, self.second, strict=True
        ):
            mean[...] = 0.9 * mean + 0.1 * grad
            square[...] = 0.999 * square + 0.001 * grad * grad
            step = (mean / correction1) / (np.sqrt(square / correction2) + 1e-8)
            np.subtract(param, self.rate * step, out=param)


class LogisticRegression:
    """Logits = X W + b."""

    def __init__(self, n_features: int, rng: np.random.Generator) -> None:
        self.weight = rng.normal(0, 0.01, size=(n_features, N_CLASSES))
        self.bias = np.zeros(N_CLASSES)
        self.params = [self.weight, self.bias]

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.inputs = x
        return x @ self.weight + self.bias

    def backward(self, grad_logits: np.ndarray, decay: float) -> list[np.ndarray]:
        return [self.inputs.T @ grad_logits + decay * self.weight, grad_logits.sum(axis=0)]


class TwoLayerPerceptron:
    """Logits = relu(X W1 + b1) W2 + b2, with He initialisation."""

    def __init__(self, n_features: int, n_hidden: int, rng: np.random.Generator) -> None:
        self.w1 = rng.normal(0, np.sqrt(2 / n_features), size=(n_features, n_hidden))
        self.b1 = np.zeros(n_hidden)
        self.w2 = rng.normal(0, np.sqrt(2 / n_hidden), size=(n_hidden, N_CLASSES))
        self.b2 = np.zeros(N_CLASSES)
        self.params = [self.w1, self.b1, self.w2, self.b2]

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.inputs = x
        self.hidden = np.maximum(x @ self.w1 + self.b1, 0)
        return self.hidden @ self.w2 + self.b2

    def backward(self, grad_logits: np.ndarray, decay: float) -> list[np.ndarray]:
        grad_hidden = grad_logits @ self.w2.T
        grad_hidden[self.hidden <= 0] = 0
        return [
            self.inputs.T @ grad_hidden + decay * self.w1,
            grad_hidden.sum(axis=0),
            self.hidden.T @ grad_logits + decay * self.w2,
            grad_logits.sum(axis=0),
        ]


def train(
    model: Any,
    data: dict[str, np.ndarray],
    *,
    epochs: int,
    batch_size: int,
    rate: float,
    decay: float,
    label_smoothing: float,
    class_weight: np.ndarray | None,
    rng: np.random.Generator,
) -> dict[str, list[float]]:
    """Minibatch Adam on the mean (smoothed, weighted) cross-entropy; return the curves."""
    optimizer = Adam(model.params, rate)
    x_train, y_train = data["x_train"], data["y_train"]
    grad_buffer = np.empty((batch_size, N_CLASSES))
    history: dict[str, list[float]] = {key: [] for key in ("train", "test", "accuracy")}
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(x_train))
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            logits = model.forward(x_train[batch])
            _, grad = ce.categorical_cross_entropy_with_logits(
                logits,
                y_train[batch],
                label_smoothing=label_smoothing,
                class_weight=class_weight,
                return_grad=True,
                out=grad_buffer[: len(batch)],
            )
            optimizer.step(model.backward(grad, decay))
        # The curves show the plain cross-entropy (no smoothing, no class weights).
        train_loss = ce.categorical_cross_entropy_with_logits(model.forward(x_train), y_train)
        test_logits = model.forward(data["x_test"])
        test_loss = ce.categorical_cross_entropy_with_logits(test_logits, data["y_test"])
        accuracy = float(np.mean(test_logits.argmax(axis=1) == data["y_test"]))
        history["train"].append(float(train_loss))
        history["test"].append(float(test_loss))
        history["accuracy"].append(accuracy)
        print(
            f"  epoch {epoch:3d}  train loss {train_loss:.4f}  held-out loss {test_loss:.4f}"
            f"  held-out accuracy {accuracy:.2%}"
        )
    return history


def plot(histories: dict[str, dict[str, list[float]]], path: Path) -> None:
    figure, (losses, accuracies) = plt.subplots(1, 2, figsize=(10, 4))
    for name, history in histories.items():
        epochs = np.arange(1, len(history["train"]) + 1)
        losses.plot(epochs, history["train"], label=f"{name}, training")
        losses.plot(epochs, history["test"], "--", label=f"{name}, held out")
        accuracies.plot(epochs, history["accuracy"], label=name)
    losses.set(xlabel="epoch", ylabel="mean cross-entropy", yscale="log", title="Loss")
    accuracies.set(xlabel="epoch", ylabel="accuracy", title="Held-out accuracy")
    losses.legend()
    accuracies.legend()
    figure.suptitle("Digits, trained with crossentropy's loss and gradient")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["logreg", "mlp", "both"], default="both")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--label-smoothing", type=float, default=0.05)
    parser.add_argument("--class-weight", choices=["balanced", "none"], default="none")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "output" / "digits_training.png"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--blas-threads", type=int, default=1, help="threads for the (tiny) matrix products"
    )
    args = parser.parse_args()

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data, digits.target, test_size=0.25, stratify=digits.target, random_state=0
    )
    scaler = StandardScaler().fit(x_train)
    data = {
        "x_train": scaler.transform(x_train),
        "x_test": scaler.transform(x_test),
        "y_train": y_train,
        "y_test": y_test,
    }
    class_weight = None
    if args.class_weight == "balanced":
        counts = np.bincount(y_train, minlength=N_CLASSES)
        class_weight = len(y_train) / (N_CLASSES * counts)
    print(
        f"digits: {len(y_train)} training and {len(y_test)} held-out images, "
        f"label smoothing {args.label_smoothing}, class weights {args.class_weight}"
    )

    # name: (model from a generator, Adam step size, weight decay)
    models = {
        "logistic regression": (lambda rng: LogisticRegression(64, rng), 0.01, 1e-3),
        "two-layer perceptron": (lambda rng: TwoLayerPerceptron(64, 128, rng), 0.002, 1e-4),
    }
    chosen = {"logreg": ["logistic regression"], "mlp": ["two-layer perceptron"]}.get(
        args.model, list(models)
    )
    histories = {}
    for name in chosen:
        make_model, rate, decay = models[name]
        rng = np.random.default_rng(args.seed)  # the same run whichever models are chosen
        model = make_model(rng)
        print(f"{name}:")
        start = time.perf_counter()
        with threadpool_limits(limits=args.blas_threads, user_api="blas"):
            histories[name] = train(
                model,
                data,
                epochs=args.epochs,
                batch_size=args.batch_size,
                rate=rate,
                decay=decay,
                label_smoothing=args.label_smoothing,
                class_weight=class_weight,
                rng=rng,
            )
        print(
            f"{name}: held-out accuracy {histories[name]['accuracy'][-1]:.2%} "
            f"after {args.epochs} epochs ({time.perf_counter() - start:.1f} s)"
        )
    plot(histories, args.out)
    print(f"training curves saved to {args.out}")


if __name__ == "__main__":
    main()
