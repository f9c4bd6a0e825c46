"""Train a next-token language model on the Python standard library with a fused last layer.
===========================================================================================

A small neural language model in the manner of Bengio et al. (2003) learns to predict
the next token of Python source code, in plain NumPy, from text that every Python
installation has: the ``.py`` files of its standard library. Its last layer and its
loss are one call of ``crossentropy.linear_cross_entropy(hidden, weight, target,
bias=bias, return_grad=True)``, which returns the mean cross-entropy over a vocabulary
of 32,768 tokens and its gradients with respect to ``hidden``, ``weight`` and ``bias``
without ever holding the batch's logits: they exist a tile at a time, within a memory
budget. The script prints the training and held-out loss under a progress bar, the
model's guesses for the next token of a few lines of code, and the peak memory of the
loss next to what the materialised logits would have taken, and saves a PNG of the
curves.

The corpus is the standard library of the Python running the script
(``sysconfig.get_paths()["stdlib"]``): every ``.py`` file in path order but the test
suites, IDLE, installed packages and the generated codec tables of ``encodings``. One
file in ten (the 10th, 20th, ...) is held out. A regular expression cuts the text into
tokens, each a word (a run of letters, digits and underscores) or a single other
character; whitespace is dropped. The 32,767 most frequent tokens of the training files
(ties in alphabetical order) and an unknown token, which stands for every other one,
make the vocabulary.

The model embeds each of the previous eight tokens in 64 features, passes the 512
concatenated features through a tanh layer of 256 units, and ends in the fused layer:
``weight`` of shape (32768, 256), one row per token as in PyTorch's ``nn.Linear``, and a
``bias`` that starts at the tokens' log-frequencies, so that the model starts as one
that ignores the context; the loss of token frequencies alone is drawn as a baseline.
The gradient that the loss returns for the hidden layer is propagated back through the
tanh layer and the embeddings by hand, and Adam updates all 10.6 million parameters, in
float32.

The memory that the loss allocates is measured with ``tracemalloc`` on its first calls:
the held-out loss, 2,048 tokens scored in one call, whose logits would take 256 MiB, and
a training step. The logits of a training batch of 256 tokens take 32 MiB, which fits
in the loss's default memory budget (64 MiB, the keyword ``memory_budget``): the fused
layer saves memory on batches larger than that, such as the held-out one.

Run it with::

    python -m pip install ".[examples]" && python examples/train_language_model.py

Options: ``--steps`` (600), ``--batch-size`` (256 tokens), ``--rate`` (Adam's step
size), ``--seed``, ``--out PATH`` for the PNG, and ``--quick``: 20 steps of 64 tokens,
to check that it runs. The defaults take a few minutes on two cores, most of it in the
fused layer's matrix products, and bring the held-out loss from about 5.7 nats per
token, that of the token frequencies, to about 4.5. On one or two threads
(``crossentropy.get_num_threads()``) the run is the same for the same seed and Python
installation; on more, the threads' shares of ``grads.weight`` are added in the order
in which they finish, which changes its last bits from one run to the next and, over
the steps, the last printed digits. The corpus, and so the numbers, differ a little from
one Python version to another.
"""

from __future__ import annotations

import argparse
import re
import sys
import sysconfig
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import crossentropy as ce

VOCABULARY = 32768  # the 32,767 most frequent training tokens and the unknown token
UNKNOWN = 0  # the id of the unknown token
CONTEXT = 8  # previous tokens the model sees
EMBEDDING = 64  # features per token; the tanh layer sees CONTEXT * EMBEDDING of them
HIDDEN = 256  # units of the tanh layer, the input of the fused output layer
HELD_OUT_EVERY = 10  # one file in ten is held out
HELD_OUT_TOKENS = 2048  # held-out targets scored at every evaluation, in one call
DTYPE = np.float32

# Words (letters, digits and underscores) or a single other non-space character.
# Whitespace, and so indentation and line breaks, is dropped.
TOKEN = re.compile(r"\w+|[^\w\s]")
# Directories left out: installed packages, the test suites, IDLE, and the codec tables
# of `encodings`, which are long generated lists of character names.
EXCLUDED = {"site-packages", "dist-packages", "test", "tests", "idlelib", "encodings"}
# Code whose next token the script guesses, from the last CONTEXT tokens of each.
PROMPTS = [
    "class Spam(object):\n    def __init__(self",
    "    def check(name):\n        if not isinstance(name, str):\n            raise",
    "        return result\n\n    def __repr__(self):\n        return",
    "    def get(self, key, value=None):\n        if value is",
    "        result = []\n        for item in items:\n            result.",
]


def corpus_files() -> list[Path]:
    """Return the standard library's ``.py`` files, less EXCLUDED, sorted by path."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(
        path
        for path in root.rglob("*.py")
        if not EXCLUDED.intersection(path.relative_to(root).parts[:-1])
    )
    if not files:
        message = f"no Python source files under {root}: this installation has none"
        raise SystemExit(message)
    return files


def tokenize(text: str) -> list[str]:
    return TOKEN.findall(text)


def build_corpus(files: list[Path]) -> dict[str, Any]:
    """Tokenize the files, split them, build the vocabulary and encode both splits.

    Returns the vocabulary (a list of tokens, the unknown token first), each split as one
    stream of token ids with the positions of its targets (the tokens with CONTEXT
    predecessors in their own file), and the training token counts by id.
    """
    texts = [tokenize(path.read_text(encoding="utf-8", errors="replace")) for path in files]
    held_out = [index % HELD_OUT_EVERY == HELD_OUT_EVERY - 1 for index in range(len(files))]
    counts = Counter(
        token for tokens, out in zip(texts, held_out, strict=True) if not out for token in tokens
    )
    # Most frequent first; ties in alphabetical order, so that the vocabulary is fixed.
    frequent = sorted(counts, key=lambda token: (-counts[token], token))[: VOCABULARY - 1]
    # A small installation may have fewer distinct tokens: the classes left are unused.
    vocabulary = ["<unknown>", *frequent, *["<unused>"] * (VOCABULARY - 1 - len(frequent))]
    ids = {token: index for index, token in enumerate(vocabulary)}
    corpus: dict[str, Any] = {"vocabulary": vocabulary, "files": {"train": 0, "held_out": 0}}
    for split, wanted in (("train", False), ("held_out", True)):
        streams, positions, offset = [], [], 0
        for tokens, out in zip(texts, held_out, strict=True):
            if out != wanted:
                continue
            streams.append(np.array([ids.get(token, UNKNOWN) for token in tokens], np.int32))
            positions.append(np.arange(offset + CONTEXT, offset + len(tokens)))
            offset += len(tokens)
            corpus["files"][split] += 1
        corpus[split] = {"stream": np.concatenate(streams), "targets": np.concatenate(positions)}
    corpus["counts"] = np.bincount(corpus["train"]["stream"], minlength=VOCABULARY)
    return corpus


def batch(split: dict[str, np.ndarray], targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The contexts (rows of CONTEXT ids) and the next tokens at target positions."""
    contexts = split["stream"][targets[:, None] + np.arange(-CONTEXT, 0)]
    return contexts, split["stream"][targets]


class Model:
    """Next-token logits ``tanh(concat(embed(context)) W1 + b1) W_out.T + b_out``.

    The model computes the hidden layer (``tanh(...)``) and backpropagates the gradient
    that the loss returns for it; the last product and the loss are one call of
    `linear_cross_entropy`, with `w_out` and `b_out` as its weight and bias.
    """

    def __init__(self, frequencies: np.ndarray, rng: np.random.Generator) -> None:
        inputs = CONTEXT * EMBEDDING
        self.embedding = rng.normal(0, 1, (VOCABULARY, EMBEDDING)).astype(DTYPE)
        self.w1 = rng.normal(0, 1 / np.sqrt(inputs), (inputs, HIDDEN)).astype(DTYPE)
        self.b1 = np.zeros(HIDDEN, DTYPE)
        # PyTorch's layout for a linear layer: one row of weights per class.
        self.w_out = rng.normal(0, 1 / np.sqrt(HIDDEN), (VOCABULARY, HIDDEN)).astype(DTYPE)
        # The tokens' log-frequencies: the model starts close to one that ignores the
        # context, and the steps go into what the context adds.
        self.b_out = np.log(frequencies).astype(DTYPE)
        self.params = [self.embedding, self.w1, self.b1, self.w_out, self.b_out]

    def hidden(self, contexts: np.ndarray) -> np.ndarray:
        """The hidden layer of a batch of contexts; kept for `backward`."""
        self.contexts = contexts
        self.inputs = self.embedding[contexts].reshape(len(contexts), -1)
        self.activations = np.tanh(self.inputs @ self.w1 + self.b1)
        return self.activations

    def backward(self, grads: Any) -> list[np.ndarray]:
        """The gradients of every parameter, from those of the last `hidden` call's loss."""
        grad_pre = grads.hidden * (1 - self.activations * self.activations)
        grad_inputs = grad_pre @ self.w1.T
        grad_embedding = np.zeros_like(self.embedding)
        np.add.at(grad_embedding, self.contexts.ravel(), grad_inputs.reshape(-1, EMBEDDING))
        return [
            grad_embedding,
            self.inputs.T @ grad_pre,
            grad_pre.sum(axis=0),
            grads.weight,
            grads.bias,
        ]

    def next_tokens(self, contexts: np.ndarray) -> np.ndarray:
        """Next-token probabilities for a few contexts (whose logits are small)."""
        logits = self.hidden(contexts) @ self.w_out.T + self.b_out
        logits -= logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        return probabilities / probabilities.sum(axis=1, keepdims=True)


class Adam:
    """Adam updates for a list of parameter arrays, in place."""

    def __init__(self, params: list[np.ndarray], rate: float) -> None:
        self.params = params
        self.rate = rate
        self.first = [np.zeros_like(p) for p in params]
        self.second = [np.zeros_like(p) for p in params]
        # Every operation writes into one of these: no temporary arrays of the size of
        # the output weights (32 MiB) on every step.
        self.work = [np.empty_like(p) for p in params]
        self.steps = 0

    def step(self, grads: list[np.ndarray]) -> None:
        self.steps += 1
        rate = float(self.rate * np.sqrt(1 - 0.999**self.steps) / (1 - 0.9**self.steps))
        for param, grad, mean, square, work in zip(
            self.params, grads, self.first, self.second, self.work, strict=True
        ):
            np.multiply(mean, 0.9, out=mean)  # mean = 0.9 mean + 0.1 grad
            np.add(mean, np.multiply(grad, 0.1, out=work), out=mean)
            np.multiply(square, 0.999, out=square)  # square = 0.999 square + 0.001 grad^2
            np.multiply(grad, grad, out=work)
            np.add(square, np.multiply(work, 0.001, out=work), out=square)
            np.sqrt(square, out=work)  # param -= rate mean / (sqrt(square) + 1e-8)
            np.add(work, 1e-8, out=work)
            np.divide(mean, work, out=work)
            np.subtract(param, np.multiply(work, rate, out=work), out=param)


class Progress:
    """A progress bar on stderr: redrawn in place on a terminal, a line a tenth otherwise."""

    def __init__(self, total: int, stream: TextIO = sys.stderr) -> None:
        self.total = total
        self.stream = stream
        self.terminal = stream.isatty()
        self.start = time.perf_counter()
        self.shown = 0

    def update(self, done: int, text: str) -> None:
        sys.stdout.flush()  # what was printed comes before the bar
        elapsed = time.perf_counter() - self.start
        remaining = elapsed / done * (self.total - done)
        filled = 30 * done // self.total
        line = (
            f"[{'#' * filled}{'.' * (30 - filled)}] {done}/{self.total}  {text}  "
            f"{elapsed:.0f} s, {remaining:.0f} s left"
        )
        if self.terminal:
            self.stream.write(f"\r{line}\x1b[K")
        elif 10 * done // self.total > self.shown or done == self.total:
            self.shown = 10 * done // self.total
            self.stream.write(line + "\n")
        self.stream.flush()

    def print(self, text: str) -> None:
        """Print `text` to stdout, above the bar."""
        if self.terminal:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
        print(text, flush=True)

    def close(self) -> None:
        if self.terminal:
            self.stream.write("\n")
            self.stream.flush()


def peak_memory(call: Callable[[], Any]) -> tuple[Any, int]:
    """Return what `call()` returns and the peak of the memory it allocated, in bytes."""
    tracemalloc.start()
    try:
        result = call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def train(
    model: Model,
    corpus: dict[str, Any],
    *,
    steps: int,
    batch_size: int,
    rate: float,
    evaluations: int,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """Adam on batches drawn with replacement; return the curves and the memory peaks."""
    optimizer = Adam(model.params, rate)
    train_split, held_split = corpus["train"], corpus["held_out"]
    # A fixed sample of held-out targets, evenly spaced so that every held-out file counts.
    held_targets = held_split["targets"][
        np.linspace(0, len(held_split["targets"]) - 1, HELD_OUT_TOKENS).astype(np.int64)
    ]
    held_contexts, held_next = batch(held_split, held_targets)
    checkpoints = set(np.linspace(0, steps, evaluations + 1).astype(int).tolist())
    history: dict[str, Any] = {key: [] for key in ("step", "train", "held_step", "held_out")}
    history["train_mean"] = []  # of the training batches since the previous evaluation
    history["held_next"] = held_next

    # The memory of the first two calls of the loss in the process is measured, so that
    # work buffers it may keep from one call to the next count too.
    held_loss, held_peak = peak_memory(
        partial(
            ce.linear_cross_entropy,
            model.hidden(held_contexts),
            model.w_out,
            held_next,
            bias=model.b_out,
        )
    )
    history["held_step"].append(0)
    history["held_out"].append(float(held_loss))
    print(f"step {0:5d}  held-out loss {held_loss:.3f}")
    progress = Progress(steps)
    window: list[float] = []
    for step in range(1, steps + 1):
        contexts, target = batch(train_split, rng.choice(train_split["targets"], batch_size))
        loss_and_grads = partial(
            ce.linear_cross_entropy,
            model.hidden(contexts),
            model.w_out,
            target,
            bias=model.b_out,
            return_grad=True,
        )
        if step == 1:
            (loss, grads), train_peak = peak_memory(loss_and_grads)
            returned = grads.hidden.nbytes + grads.weight.nbytes + grads.bias.nbytes
        else:
            loss, grads = loss_and_grads()
        optimizer.step(model.backward(grads))
        history["step"].append(step)
        history["train"].append(float(loss))
        window.append(float(loss))
        if step in checkpoints:
            held_loss = ce.linear_cross_entropy(
                model.hidden(held_contexts), model.w_out, held_next, bias=model.b_out
            )
            history["held_step"].append(step)
            history["held_out"].append(float(held_loss))
            progress.print(
                f"step {step:5d}  held-out loss {held_loss:.3f}  training loss "
                f"{np.mean(window):.3f} (mean of the last {len(window)} batches)"
            )
            history["train_mean"].append(float(np.mean(window)))
            window = []
        progress.update(step, f"loss {loss:.3f}  held-out {history['held_out'][-1]:.3f}")
    progress.close()
    history["memory"] = {"held_out": held_peak, "train": train_peak, "returned": returned}
    return history


def frequencies(corpus: dict[str, Any]) -> np.ndarray:
    """The tokens' frequencies in the training files, add-one smoothed."""
    counts = corpus["counts"] + 1.0
    return counts / counts.sum()


def plot(history: dict[str, Any], baselines: dict[str, float], path: Path) -> None:
    figure, axes = plt.subplots(figsize=(8, 4.5))
    axes.plot(history["step"], history["train"], "C0", lw=0.6, alpha=0.4, label="training batch")
    axes.plot(
        history["held_step"][1:],
        history["train_mean"],
        "o-",
        color="C0",
        label="training, mean of the batches since the previous point",
    )
    axes.plot(history["held_step"], history["held_out"], "o-", color="C1", label="held out")
    for (name, value), color in zip(baselines.items(), ("C0", "C1"), strict=True):
        axes.axhline(value, color=color, ls="--", label=f"{name}, token frequencies alone")
    axes.set(
        xlabel="Adam step",
        ylabel="mean cross-entropy (nats per token)",
        title="Next-token model of the Python standard library, 32,768 classes",
    )
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)


def mib(size: float) -> str:
    return f"{size / 2**20:,.1f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=256, help="tokens per step")
    parser.add_argument("--rate", type=float, default=2e-3, help="Adam step size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="20 steps of 64 tokens")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "output" / "train_language_model.png"
    )
    args = parser.parse_args()
    if args.quick:
        args.steps, args.batch_size = 20, 64

    start = time.perf_counter()
    files = corpus_files()
    corpus = build_corpus(files)
    train_split, held_split = corpus["train"], corpus["held_out"]
    known = 1 - np.mean(held_split["stream"] == UNKNOWN)
    print(
        f"{len(files)} files of {Path(sysconfig.get_paths()['stdlib'])}: "
        f"{corpus['files']['train']} for training ({len(train_split['stream']):,} tokens), "
        f"{corpus['files']['held_out']} held out ({len(held_split['stream']):,} tokens, "
        f"{known:.1%} of them in the vocabulary of {VOCABULARY:,}); "
        f"read in {time.perf_counter() - start:.1f} s"
    )

    rng = np.random.default_rng(args.seed)
    model = Model(frequencies(corpus), rng)
    print(
        f"model: {CONTEXT} tokens x {EMBEDDING} features -> {HIDDEN} tanh -> "
        f"{VOCABULARY:,} classes, {sum(p.size for p in model.params):,} parameters; "
        f"{args.steps} Adam steps of {args.batch_size} tokens"
    )
    start = time.perf_counter()
    history = train(
        model,
        corpus,
        steps=args.steps,
        batch_size=args.batch_size,
        rate=args.rate,
        evaluations=max(1, min(10, args.steps // 10)),
        rng=rng,
    )
    seconds = time.perf_counter() - start
    # The held-out files happen to be easier: scored by the token frequencies alone,
    # the training targets take more nats than the held-out ones.
    log_frequencies = np.log(frequencies(corpus))
    train_split = corpus["train"]
    baselines = {
        "training": float(-np.mean(log_frequencies[train_split["stream"][train_split["targets"]]])),
        "held out": float(-np.mean(log_frequencies[history["held_next"]])),
    }
    held_out = history["held_out"]
    print(
        f"trained in {seconds:.0f} s. Mean loss in nats per token (perplexity):\n"
        f"  held out: {held_out[0]:.3f} -> {held_out[-1]:.3f} ({np.exp(held_out[-1]):,.0f}); "
        f"token frequencies alone: {baselines['held out']:.3f} "
        f"({np.exp(baselines['held out']):,.0f})\n"
        f"  training: {history['train_mean'][-1]:.3f} over the last "
        f"{history['step'][-1] - history['held_step'][-2]} batches "
        f"({np.exp(history['train_mean'][-1]):,.0f}); token frequencies alone: "
        f"{baselines['training']:.3f} ({np.exp(baselines['training']):,.0f})"
    )

    vocabulary = corpus["vocabulary"]
    ids = {token: index for index, token in enumerate(vocabulary)}
    contexts = np.array(
        [[ids.get(token, UNKNOWN) for token in tokenize(p)[-CONTEXT:]] for p in PROMPTS]
    )
    print("most likely next tokens:")
    for prompt, probabilities in zip(PROMPTS, model.next_tokens(contexts), strict=True):
        best = np.argsort(probabilities)[::-1][:3]
        guesses = ", ".join(f"{vocabulary[i]!r} {probabilities[i]:.0%}" for i in best)
        print(f"  {' '.join(prompt.split())} ...  {guesses}")

    # What the loss allocated at its peak (its arguments not counted), next to the size
    # of the logits that it never holds (with gradients, their gradient comes on top).
    logits_bytes = VOCABULARY * np.dtype(DTYPE).itemsize
    memory = history["memory"]
    print(
        "peak memory of the loss (tracemalloc, first call of each kind):\n"
        f"  held-out loss of {HELD_OUT_TOKENS:,} tokens: {mib(memory['held_out'])}; "
        f"their logits alone: {mib(HELD_OUT_TOKENS * logits_bytes)}\n"
        f"  loss and gradients of {args.batch_size:,} tokens: {mib(memory['train'])}, "
        f"{mib(memory['returned'])} of them the gradients it returns; their logits alone: "
        f"{mib(args.batch_size * logits_bytes)}, and as much again for their gradient"
    )
    plot(history, baselines, args.out)
    print(f"training curves saved to {args.out}")


if __name__ == "__main__":
    main()
