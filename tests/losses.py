"""The losses under test: one entry per public loss, used by every test file.

A generic test takes its losses from here (``@losses.parametrize(losses.ALL)``), so a
new loss is tested everywhere once it has an entry in ``ALL``: its function, the name
of its first argument, its kind, its keyword-only options with their defaults, a maker
of small valid inputs and its plain-loop oracle from ``reference.py``.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType
from typing import Any

import numpy as np
import pytest

import crossentropy as ce

from . import reference

__all__ = [
    "ALL",
    "BINARY",
    "BY_NAME",
    "CATEGORICAL",
    "HESSIAN",
    "LOGITS",
    "PROBABILITIES",
    "Loss",
    "parametrize",
    "with_logits",
]


@dataclass(frozen=True, eq=False)  # entries compare and hash by identity
class Loss:
    """One public loss and what the tests need to know about it.

    ``make(rng, shape, dtype, *, soft=False, axis=-1)`` returns a small valid
    ``(first, target)`` pair: `first` of `shape` and `dtype` (logits, or probabilities
    well inside (0, 1)), for a categorical loss with its classes along `axis`; `target`
    holds class indices of the batch shape, or with ``soft=True`` class probabilities
    of `shape`; for a binary loss, 0/1 floats of `shape`, or with ``soft=True`` floats
    in [0, 1]. ``oracle(first, target, **options)`` is the plain float64 loop of
    ``reference.py`` for the same call. ``hessian`` says whether it takes
    ``return_hess``.
    """

    function: Callable[..., Any]  # the public function
    name: str  # its name in crossentropy (and the test id)
    first: str  # the name of its first argument: "logits" or "probs"
    categorical: bool  # a class axis, or elementwise (binary)
    from_logits: bool  # logits, or probabilities
    options: Mapping[str, Any]  # the keyword-only options and defaults, in order
    make: Callable[..., tuple[np.ndarray, np.ndarray]]
    oracle: Callable[..., Any]
    hessian: bool = False  # whether it takes return_hess

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)

    def batch_shape(self, shape: tuple[int, ...], axis: int = -1) -> tuple[int, ...]:
        """Return the batch shape of an input of `shape` (classes along `axis`)."""
        if not self.categorical:
            return tuple(shape)
        axis = axis % len(shape)
        return tuple(shape[:axis]) + tuple(shape[axis + 1 :])

    def __repr__(self) -> str:
        return self.name


def _options(*names: str) -> Mapping[str, Any]:
    defaults = {
        "gamma": 2.0,
        "alpha": None,
        "reduction": "mean",
        "class_weight": None,
        "pos_weight": None,
        "sample_weight": None,
        "where": None,
        "ignore_index": None,
        "label_smoothing": 0.0,
        "z_loss": 0.0,
        "softcap": None,
        "eps": None,
        "axis": -1,
        "return_grad": False,
        "return_hess": False,
        "out": None,
    }
    return MappingProxyType({name: defaults[name] for name in names})


def _make_categorical(from_logits, rng, shape, dtype=np.float64, *, soft=False, axis=-1):
    shape = tuple(shape)
    axis = axis % len(shape)
    n_classes = shape[axis]
    last = (*shape[:axis], *shape[axis + 1 :], n_classes)  # the classes last
    batch = last[:-1]
    if from_logits:
        first = rng.normal(scale=3.0, size=last)
    else:
        first = rng.dirichlet(np.full(n_classes, 5.0), size=batch)
    if soft:
        target = np.moveaxis(rng.dirichlet(np.full(n_classes, 0.7), size=batch), -1, axis)
    else:
        target = rng.integers(0, n_classes, size=batch)
    return np.moveaxis(first, -1, axis).astype(dtype), target


def _make_binary(from_logits, rng, shape, dtype=np.float64, *, soft=False, axis=-1):
    del axis  # elementwise: no class axis
    first = rng.normal(scale=3.0, size=shape) if from_logits else rng.uniform(0.02, 0.98, shape)
    target = rng.random(shape)
    if not soft:
        target = (target > 0.5).astype(np.float64)
    return first.astype(dtype), target


_CATEGORICAL_OPTIONS = (
    "reduction",
    "class_weight",
    "sample_weight",
    "where",
    "ignore_index",
    "label_smoothing",
)
_BINARY_OPTIONS = ("reduction", "pos_weight", "sample_weight", "where", "label_smoothing")
_FOCAL_OPTIONS = ("gamma", "alpha", *_BINARY_OPTIONS)

ALL = (
    Loss(
        function=ce.binary_cross_entropy,
        name="binary_cross_entropy",
        first="probs",
        categorical=False,
        from_logits=False,
        options=_options(*_BINARY_OPTIONS, "eps", "return_grad", "out"),
        make=partial(_make_binary, False),
        oracle=partial(reference.binary, logits=False),
    ),
    Loss(
        function=ce.binary_cross_entropy_with_logits,
        name="binary_cross_entropy_with_logits",
        first="logits",
        categorical=False,
        from_logits=True,
        options=_options(*_BINARY_OPTIONS, "return_grad", "return_hess", "out"),
        make=partial(_make_binary, True),
        oracle=partial(reference.binary, logits=True),
        hessian=True,
    ),
    Loss(
        function=ce.categorical_cross_entropy,
        name="categorical_cross_entropy",
        first="probs",
        categorical=True,
        from_logits=False,
        options=_options(*_CATEGORICAL_OPTIONS, "eps", "axis", "return_grad", "out"),
        make=partial(_make_categorical, False),
        oracle=partial(reference.categorical, logits=False),
    ),
    Loss(
        function=ce.categorical_cross_entropy_with_logits,
        name="categorical_cross_entropy_with_logits",
        first="logits",
        categorical=True,
        from_logits=True,
        options=_options(
            *_CATEGORICAL_OPTIONS, "z_loss", "softcap", "axis", "return_grad", "return_hess", "out"
        ),
        make=partial(_make_categorical, True),
        oracle=partial(reference.categorical, logits=True),
        hessian=True,
    ),
    Loss(
        function=ce.binary_focal_loss,
        name="binary_focal_loss",
        first="probs",
        categorical=False,
        from_logits=False,
        options=_options(*_FOCAL_OPTIONS, "eps", "return_grad", "out"),
        make=partial(_make_binary, False),
        oracle=partial(reference.binary_focal, logits=False),
    ),
    Loss(
        function=ce.binary_focal_loss_with_logits,
        name="binary_focal_loss_with_logits",
        first="logits",
        categorical=False,
        from_logits=True,
        options=_options(*_FOCAL_OPTIONS, "return_grad", "return_hess", "out"),
        make=partial(_make_binary, True),
        oracle=partial(reference.binary_focal, logits=True),
        hessian=True,
    ),
    Loss(
        function=ce.categorical_focal_loss,
        name="categorical_focal_loss",
        first="probs",
        categorical=True,
        from_logits=False,
        options=_options("gamma", *_CATEGORICAL_OPTIONS, "eps", "axis", "return_grad", "out"),
        make=partial(_make_categorical, False),
        oracle=partial(reference.categorical_focal, logits=False),
    ),
    Loss(
        function=ce.categorical_focal_loss_with_logits,
        name="categorical_focal_loss_with_logits",
        first="logits",
        categorical=True,
        from_logits=True,
        options=_options(
            "gamma", *_CATEGORICAL_OPTIONS, "axis", "return_grad", "return_hess", "out"
        ),
        make=partial(_make_categorical, True),
        oracle=partial(reference.categorical_focal, logits=True),
        hessian=True,
    ),
)

BY_NAME = MappingProxyType({loss.name: loss for loss in ALL})
CATEGORICAL = tuple(loss for loss in ALL if loss.categorical)
BINARY = tuple(loss for loss in ALL if not loss.categorical)
LOGITS = tuple(loss for loss in ALL if loss.from_logits)
PROBABILITIES = tuple(loss for loss in ALL if not loss.from_logits)
HESSIAN = tuple(loss for loss in ALL if loss.hessian)


def with_logits(loss: Loss) -> Loss:
    """Return the loss of the same kind that takes the logits of `loss`'s probabilities."""
    return BY_NAME[f"{loss.name}_with_logits"]


def parametrize(entries: tuple[Loss, ...], argname: str = "loss") -> Any:
    """Parametrize a test over `entries`, each test id the loss's name."""
    return pytest.mark.parametrize(argname, entries, ids=[loss.name for loss in entries])


def by_name(name: str) -> Loss:
    """Return the loss of the registry named `name`."""
    return next(loss for loss in ALL if loss.name == name)


def public_options(name: str, **changes: Any) -> dict[str, Any]:
    """Return the options of loss `name` at their defaults (no return flags), with `changes`."""
    options = {
        key: value
        for key, value in by_name(name).options.items()
        if key not in ("return_grad", "return_hess", "out")
    }
    return {**options, **changes}


def second_call_peak(call) -> int:
    """Return the peak memory a second call of `call` allocates (tracemalloc).

    Beyond the block buffers it keeps for later calls, which the first call makes.
    """
    call()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = call()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # A pool thread that the first call left idle makes its block buffers in the second,
    # and keeps them: what stays allocated beyond the result is such buffers.
    parts = result if isinstance(result, tuple) else (result,)
    returned = sum(part.nbytes for part in parts if isinstance(part, np.ndarray))
    kept = max(0, current - before - returned)
    return peak - before - kept
