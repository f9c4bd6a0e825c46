"""Binary cross-entropy, from logits and from probabilities, on the hot-path sizes.

Every class times (``time_loss``) and measures (``peakmem_loss``, the process's peak
resident memory; ``track_extra_memory``, what one call allocates as a fraction of the
input) the mean loss with 0/1 float targets, forward and forward with gradient
(``return_grad=True``), in float32 and float64, on 1 and 2 threads. ``Options`` measures
what one forward pass with an option allocates.
"""

from __future__ import annotations

import functools

import numpy as np

import crossentropy as ce

from ._data import DTYPES, PASSES, THREADS, Pinned, binary, extra_memory


class BinaryWithLogits(Pinned):
    """10 million logits, as F.binary_cross_entropy_with_logits gets them."""

    params = (DTYPES, PASSES, THREADS)
    param_names = ["dtype", "pass", "threads"]
    timeout = 300

    def setup(self, dtype, pass_, threads):
        self.pin(threads)
        self.logits, self.target = binary(10_000_000, dtype, logits=True)
        self.grad = pass_ == "forward+grad"

    def _call(self):
        return ce.binary_cross_entropy_with_logits(self.logits, self.target, return_grad=self.grad)

    def time_loss(self, dtype, pass_, threads):
        self._call()

    def peakmem_loss(self, dtype, pass_, threads):
        self._call()

    def track_extra_memory(self, dtype, pass_, threads):
        return extra_memory(self._call, self.logits.nbytes)

    track_extra_memory.unit = "fraction of the logits"


class BinaryWithProbabilities(Pinned):
    """2 million probabilities of the positive class, as scikit-learn's log_loss gets them."""

    params = (DTYPES, PASSES, THREADS)
    param_names = ["dtype", "pass", "threads"]

    def setup(self, dtype, pass_, threads):
        self.pin(threads)
        self.probs, self.target = binary(2_000_000, dtype, logits=False)
        self.grad = pass_ == "forward+grad"

    def _call(self):
        return ce.binary_cross_entropy(self.probs, self.target, return_grad=self.grad)

    def time_loss(self, dtype, pass_, threads):
        self._call()

    def peakmem_loss(self, dtype, pass_, threads):
        self._call()

    def track_extra_memory(self, dtype, pass_, threads):
        return extra_memory(self._call, self.probs.nbytes)

    track_extra_memory.unit = "fraction of the probabilities"


@functools.cache
def _with_option(option):
    """4M float32 logits of 65536 rows by 64 labels, 0/1 targets, and an option's arguments."""
    logits, target = binary(4 * 2**20, "float32", logits=True)
    logits, target = logits.reshape(65536, 64), target.reshape(65536, 64)
    rng = np.random.default_rng(5)
    options = {
        "none": {},
        "where": {"where": rng.random(logits.shape) > 0.1},
        "pos_weight": {"pos_weight": rng.uniform(0.5, 4.0, 64).astype(np.float32)},
        "sample_weight=0.5": {"sample_weight": 0.5},
        "sample_weight rows": {"sample_weight": rng.uniform(0.0, 1.0, (65536, 1))},
    }[option]
    return logits, target, options


class Options(Pinned):
    """What one forward pass with an option allocates, over 4M float32 logits (multi-label)."""

    params = (["none", "where", "pos_weight", "sample_weight=0.5", "sample_weight rows"], THREADS)
    param_names = ["option", "threads"]

    def setup(self, option, threads):
        self.pin(threads)
        self.logits, self.target, self.options = _with_option(option)

    def _call(self):
        return ce.binary_cross_entropy_with_logits(self.logits, self.target, **self.options)

    def track_extra_memory(self, option, threads):
        return extra_memory(self._call, self.logits.nbytes)

    track_extra_memory.unit = "fraction of the logits"
