"""The fused linear cross-entropy on the last layer of a language model.

``linear_cross_entropy(hidden, weight, labels)`` in float32, forward and forward with
the three gradients, on a small layer and on the 4096x512 hidden states and 32768
classes of the issue that asked for it (seconds per call, so few repeats). Each
shape is timed (``time_loss``), measured as asv measures memory (``peakmem_loss``,
the process's peak resident memory), and measured with tracemalloc
(``track_extra_memory``: the peak of what one call allocates beyond the gradients it
returns, as a fraction of the logits it never builds; at most 1/8 for the default
64 MiB budget on the large layer). ``LinearThreads`` times the small layer on 1 and 2
threads.
"""

from __future__ import annotations

import functools
import tracemalloc

import numpy as np

import crossentropy as ce

from ._data import PASSES

# (rows, features, classes)
SHAPES = {"1024x256->8192": (1024, 256, 8192), "4096x512->32768": (4096, 512, 32768)}


@functools.cache
def layer(n_rows: int, n_features: int, n_classes: int) -> tuple[np.ndarray, ...]:
    """Standard normal hidden states, a weight of scale 0.05, uniform integer labels."""
    rng = np.random.default_rng(4)
    hidden = rng.standard_normal((n_rows, n_features), dtype=np.float32)
    weight = rng.standard_normal((n_classes, n_features), dtype=np.float32) * np.float32(0.05)
    return hidden, weight, rng.integers(0, n_classes, size=n_rows)


class LinearCrossEntropy:
    """Forward and forward+grad on a small and a language-model-sized last layer."""

    params = (list(SHAPES), PASSES)
    param_names = ["shape", "pass"]
    timeout = 900
    number = 1
    repeat = (1, 5, 120.0)
    warmup_time = 0.0

    def setup(self, shape, pass_):
        self.hidden, self.weight, self.labels = layer(*SHAPES[shape])
        self.grad = pass_ == "forward+grad"

    def _call(self):
        return ce.linear_cross_entropy(self.hidden, self.weight, self.labels, return_grad=self.grad)

    def time_loss(self, shape, pass_):
        self._call()

    def peakmem_loss(self, shape, pass_):
        self._call()

    def track_extra_memory(self, shape, pass_):
        n_rows, _, n_classes = SHAPES[shape]
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            result = self._call()
            peak = tracemalloc.get_traced_memory()[1] - before
        finally:
            tracemalloc.stop()
        returned = sum(g.nbytes for g in result[1] if g is not None) if self.grad else 0
        return (peak - returned) / (n_rows * n_classes * 4)

    track_extra_memory.unit = "fraction of the logits"


class LinearThreads:
    """The small layer, forward+grad, on 1 and 2 threads."""

    params = [[1, 2]]
    param_names = ["threads"]

    def setup(self, threads):
        self.hidden, self.weight, self.labels = layer(*SHAPES["1024x256->8192"])

    def time_loss(self, threads):
        with ce.num_threads(threads):
            ce.linear_cross_entropy(self.hidden, self.weight, self.labels, return_grad=True)
