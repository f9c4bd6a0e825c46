"""Binary cross-entropy, from logits and from probabilities, on the hot-path sizes.

Every class times (``time_loss``) and measures (``peakmem_loss``, the process's peak
resident memory; ``track_extra_memory``, what one call allocates as a fraction of the
input) the mean loss with 0/1 float targets, forward and forward with gradient
(``return_grad=True``), in float32 and float64, on 1 and 2 threads.
"""

from __future__ import annotations

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
