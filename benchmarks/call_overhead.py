"""Where the time of a small call goes: the checks, the arithmetic, and the rest.

For ``categorical_cross_entropy_with_logits`` on float32 logits with integer labels
(one thread, mean), prints the time of a whole call, of the checks that admit it to the
lane of plain calls (``plain_call``), of the lane's NumPy calls for its one block
(``_plain_block``, the arithmetic of the loss), and of the NumPy code the call replaces
(max, subtract, exp, sum, log, gather), each the best of interleaved repeats of loops
of calls. What a call costs beyond the arithmetic is the floor of a checked call in
pure NumPy. With ``--grad`` the call returns the gradient too, the arithmetic forms
it, and the NumPy code adds ``(softmax - onehot) / N``.

Usage::

    python benchmarks/call_overhead.py [--shapes 1x10,64x10,64x100] [--repeats 15] [--grad]
"""

from __future__ import annotations

import argparse
import inspect
import time
from collections.abc import Callable

import numpy as np

import crossentropy as ce
from crossentropy import _kernel, _prepare


def naive(logits: np.ndarray, labels: np.ndarray) -> float:
    """The cross-entropy as a user writes it in NumPy."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_sums = np.log(np.exp(shifted).sum(axis=1))
    return float((log_sums - shifted[np.arange(len(labels)), labels]).mean())


def naive_with_grad(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """The cross-entropy and its gradient, ``(softmax - onehot) / N``, as a user writes them."""
    rows = np.arange(len(labels))
    shifted = logits - logits.max(axis=1, keepdims=True)
    exps = np.exp(shifted)
    sums = exps.sum(axis=1, keepdims=True)
    loss = float((np.log(sums[:, 0]) - shifted[rows, labels]).mean())
    grad = exps / sums
    grad[rows, labels] -= 1
    grad /= len(labels)
    return loss, grad


def best_of_interleaved(calls: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Return the best time of one call of each, in microseconds, from loops of calls."""
    number = 2000
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            for _ in range(number):
                call()
            best[name] = min(best[name], (time.perf_counter() - start) / number * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="1x10,1x1000,64x10,64x100")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--grad", action="store_true", help="with return_grad=True")
    args = parser.parse_args()
    ce.set_num_threads(1)
    rng = np.random.default_rng(0)
    # The options of the loss at their defaults, as a call passes them on.
    signature = inspect.signature(ce.categorical_cross_entropy_with_logits)
    options = {
        name: parameter.default
        for name, parameter in signature.parameters.items()
        if parameter.kind is parameter.KEYWORD_ONLY
        and name not in ("return_grad", "return_hess", "out")
    }
    print("| logits | whole call (us) | checks | arithmetic | rest | naive NumPy | call / naive |")
    print("| --- | --: | --: | --: | --: | --: | --: |")
    for shape in args.shapes.split(","):
        n_rows, n_classes = (int(size) for size in shape.split("x"))
        logits = rng.standard_normal((n_rows, n_classes), dtype=np.float32)
        labels = rng.integers(0, n_classes, n_rows)
        work = np.empty_like(logits)

        # The factor of the gradient of the mean, as the lane forms it.
        scale = np.float32(1 / n_rows) if args.grad else None

        # The per-row buffers of the label-referenced form, where the lane takes it.
        unshifted = None
        if n_rows * n_classes >= _kernel._UNSHIFTED_ELEMENTS:
            unshifted = (np.empty((3, n_rows), np.float32), np.empty(n_rows, np.intp))

        def arithmetic(
            logits=logits, labels=labels, work=work, scale=scale, unshifted=unshifted
        ) -> float:
            return _kernel._plain_block(
                logits, labels, work, None, scale=scale, unshifted=unshifted
            )

        times = best_of_interleaved(
            {
                "call": lambda logits=logits, labels=labels: (
                    ce.categorical_cross_entropy_with_logits(logits, labels, return_grad=args.grad)
                ),
                "checks": lambda logits=logits, labels=labels: _prepare.plain_call(
                    logits, labels, options
                ),
                "arithmetic": arithmetic,
                "naive": lambda logits=logits, labels=labels: (
                    naive_with_grad if args.grad else naive
                )(logits, labels),
            },
            args.repeats,
        )
        rest = times["call"] - times["checks"] - times["arithmetic"]
        print(
            f"| {shape} f32 | {times['call']:.1f} | {times['checks']:.1f} | "
            f"{times['arithmetic']:.1f} | {rest:.1f} | {times['naive']:.1f} | "
            f"{times['call'] / times['naive']:.2f} |"
        )


if __name__ == "__main__":
    main()
