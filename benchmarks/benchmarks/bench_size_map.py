"""The categorical loss from logits over the size map: every batch size, three class counts.

``SizeMap.time_loss`` times ``categorical_cross_entropy_with_logits`` on float32 logits
with integer labels and ``reduction="mean"``, forward and forward with gradient, for
N in 1, 64, 256, 1024, 4096, 16384 rows and C in 10, 100, 1000 classes, on 1 and
2 threads: from the calls of a training loop on minibatches, where the fixed cost of a
call dominates, to the large arrays, where the passes over the logits do.
``Vocabulary.time_loss`` adds the map's column of a language model's vocabulary,
C = 32000 classes at N = 256 and 1024 rows. ``benchmarks/compare.py --cases map`` times
the same cells against their peers, as ratios.
"""

from __future__ import annotations

import crossentropy as ce

from ._data import PASSES, THREADS, Pinned, categorical_logits

ROWS = [1, 64, 256, 1024, 4096, 16384]
CLASSES = [10, 100, 1000]


class SizeMap(Pinned):
    """float32 logits of N rows and C classes with integer labels; mean loss."""

    params = (ROWS, CLASSES, PASSES, THREADS)
    param_names = ["rows", "classes", "pass", "threads"]
    # Every sample is one call of a large cell, or a batch of calls of a small one
    # (`number`, set in setup), so that it lasts a few milliseconds.
    repeat = (5, 20, 1.0)

    def setup(self, rows, classes, pass_, threads):
        self.pin(threads)
        self.logits, self.labels = categorical_logits(rows, classes, "float32")
        self.grad = pass_ == "forward+grad"
        self.number = max(1, min(50, 2**20 // (rows * classes)))

    def time_loss(self, rows, classes, pass_, threads):
        ce.categorical_cross_entropy_with_logits(self.logits, self.labels, return_grad=self.grad)


class Vocabulary(SizeMap):
    """The size map's C = 32000 column: float32 logits over a vocabulary; mean loss."""

    params = ([256, 1024], [32000], PASSES, THREADS)
