"""Categorical cross-entropy, from logits and from probabilities, on the hot-path shapes.

Every class times (``time_loss``) and measures (``peakmem_loss``, the process's peak
resident memory; ``track_extra_memory``, what one call allocates as a fraction of the
input) the loss with integer labels and ``reduction="mean"``, forward and forward with
gradient (``return_grad=True``), in float32 and float64, on 1 and 2 threads. The size
map of float32 logits from 1 to 16384 rows is ``bench_size_map``. ``ClassAxisOne`` is
PyTorch's layout of a batch of images, the classes on axis 1; ``Float64Logits`` the
float64 forward pass that ``benchmarks/compare.py`` compares with PyTorch's (n).
"""

from __future__ import annotations

import functools

import numpy as np

import crossentropy as ce

from ._data import (
    DTYPES,
    PASSES,
    THREADS,
    Pinned,
    binary,
    categorical_logits,
    categorical_probabilities,
    extra_memory,
)

SHAPES = {"16384x1000": (16384, 1000), "2048x32000": (2048, 32000), "262144x10": (262144, 10)}


class CategoricalWithLogits(Pinned):
    """Logits with integer labels: a vocabulary-sized batch, a long class axis, few classes."""

    params = (list(SHAPES), DTYPES, PASSES, THREADS)
    param_names = ["shape", "dtype", "pass", "threads"]
    timeout = 300

    def setup(self, shape, dtype, pass_, threads):
        self.pin(threads)
        self.logits, self.labels = categorical_logits(*SHAPES[shape], dtype)
        self.grad = pass_ == "forward+grad"

    def _call(self):
        return ce.categorical_cross_entropy_with_logits(
            self.logits, self.labels, return_grad=self.grad
        )

    def time_loss(self, shape, dtype, pass_, threads):
        self._call()

    def peakmem_loss(self, shape, dtype, pass_, threads):
        self._call()

    def track_extra_memory(self, shape, dtype, pass_, threads):
        return extra_memory(self._call, self.logits.nbytes)

    track_extra_memory.unit = "fraction of the logits"


@functools.cache
def _class_axis_one() -> tuple[np.ndarray, np.ndarray]:
    """(8, 21, 128, 128) float32 logits, the classes on axis 1, and (8, 128, 128) labels."""
    rng = np.random.default_rng(4)
    logits = rng.standard_normal((8, 21, 128, 128), dtype=np.float32)
    return logits, rng.integers(0, 21, size=(8, 128, 128))


class ClassAxisOne(Pinned):
    """PyTorch's (N, C, H, W) layout, ``axis=1``: a semantic segmentation batch."""

    params = (PASSES, THREADS)
    param_names = ["pass", "threads"]

    def setup(self, pass_, threads):
        self.pin(threads)
        self.logits, self.labels = _class_axis_one()
        self.grad = pass_ == "forward+grad"

    def _call(self):
        return ce.categorical_cross_entropy_with_logits(
            self.logits, self.labels, axis=1, return_grad=self.grad
        )

    def time_loss(self, pass_, threads):
        self._call()

    def peakmem_loss(self, pass_, threads):
        self._call()

    def track_extra_memory(self, pass_, threads):
        return extra_memory(self._call, self.logits.nbytes)

    track_extra_memory.unit = "fraction of the logits"


class Float64Logits(Pinned):
    """8192x1000 float64 logits with integer labels, forward, mean."""

    params = (THREADS,)
    param_names = ["threads"]

    def setup(self, threads):
        self.pin(threads)
        self.logits, self.labels = categorical_logits(8192, 1000, "float64")

    def time_forward(self, threads):
        ce.categorical_cross_entropy_with_logits(self.logits, self.labels)


class CategoricalWithProbabilities(Pinned):
    """200000x10 probabilities with integer labels, as scikit-learn's log_loss gets them."""

    params = (DTYPES, PASSES, THREADS)
    param_names = ["dtype", "pass", "threads"]

    def setup(self, dtype, pass_, threads):
        self.pin(threads)
        self.probs, self.labels = categorical_probabilities(200_000, 10, dtype)
        self.grad = pass_ == "forward+grad"

    def _call(self):
        return ce.categorical_cross_entropy(self.probs, self.labels, return_grad=self.grad)

    def time_loss(self, dtype, pass_, threads):
        self._call()

    def peakmem_loss(self, dtype, pass_, threads):
        self._call()

    def track_extra_memory(self, dtype, pass_, threads):
        return extra_memory(self._call, self.probs.nbytes)

    track_extra_memory.unit = "fraction of the probabilities"


class LogLoss(Pinned):
    """scikit-learn's ``log_loss`` API: 200000x10 rows, or a binary problem's 2M column."""

    params = (["rows", "column"], THREADS)
    param_names = ["y_proba", "threads"]

    def setup(self, y_proba, threads):
        self.pin(threads)
        if y_proba == "rows":
            self.y_proba, self.y_true = categorical_probabilities(200_000, 10, "float64")
        else:
            self.y_proba, target = binary(2_000_000, "float64", logits=False)
            self.y_true = target.astype(np.int64)

    def time_log_loss(self, y_proba, threads):
        ce.log_loss(self.y_true, self.y_proba)

    def track_extra_memory(self, y_proba, threads):
        return extra_memory(lambda: ce.log_loss(self.y_true, self.y_proba), self.y_proba.nbytes)

    track_extra_memory.unit = "fraction of y_proba"


@functools.cache
def _with_option(option):
    """16384x1000 float32 logits, integer labels and the keyword arguments of `option`."""
    logits, labels = categorical_logits(16384, 1000, "float32")
    rng = np.random.default_rng(3)
    options = {
        "none": {},
        "class_weight": {"class_weight": rng.uniform(0.5, 2.0, 1000)},
        "label_smoothing": {"label_smoothing": 0.1},
        "sample_weight+where": {
            "sample_weight": rng.uniform(0.0, 1.0, 16384),
            "where": rng.random(16384) > 0.1,
        },
        "where": {"where": rng.random(16384) > 0.1},
        "sample_weight=0.5": {"sample_weight": 0.5},
        "axis=0": {"axis": 0},
    }[option]
    if option == "axis=0":  # PyTorch's layout for a batch of sequences: classes first
        logits = np.ascontiguousarray(logits.T)
    return logits, labels, options


class Options(Pinned):
    """What the options cost on the 16384x1000 float32 forward pass, in time and memory."""

    params = (
        [
            "none",
            "class_weight",
            "label_smoothing",
            "sample_weight+where",
            "axis=0",
            "where",
            "sample_weight=0.5",
        ],
        THREADS,
    )
    param_names = ["option", "threads"]

    def setup(self, option, threads):
        self.pin(threads)
        self.logits, self.labels, self.options = _with_option(option)

    def _call(self):
        return ce.categorical_cross_entropy_with_logits(self.logits, self.labels, **self.options)

    def time_forward(self, option, threads):
        self._call()

    def track_extra_memory(self, option, threads):
        return extra_memory(self._call, self.logits.nbytes)

    track_extra_memory.unit = "fraction of the logits"
