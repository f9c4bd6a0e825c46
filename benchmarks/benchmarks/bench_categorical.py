"""Categorical cross-entropy, from logits and from probabilities, on the hot-path shapes.

Every class times (``time_loss``) and measures (``peakmem_loss``, the process's peak
resident memory; ``track_extra_memory``, what one call allocates as a fraction of the
input) the loss with integer labels and ``reduction="mean"``, forward and forward with
gradient (``return_grad=True``), in float32 and float64, on 1 and 2 threads. The size
map of float32 logits from 1 to 16384 rows is ``bench_size_map``.
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
        "axis=0": {"axis": 0},
    }[option]
    if option == "axis=0":  # PyTorch's layout for a batch of sequences: classes first
        logits = np.ascontiguousarray(logits.T)
    return logits, labels, options


class Options(Pinned):
    """What the options cost on the 16384x1000 float32 forward pass."""

    params = (["none", "class_weight", "label_smoothing", "sample_weight+where", "axis=0"], THREADS)
    param_names = ["option", "threads"]

    def setup(self, option, threads):
        self.pin(threads)
        self.logits, self.labels, self.options = _with_option(option)

    def time_forward(self, option, threads):
        ce.categorical_cross_entropy_with_logits(self.logits, self.labels, **self.options)
