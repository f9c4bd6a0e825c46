"""The four losses, forward and forward with gradient, on the shapes of the hot path."""

from __future__ import annotations

import crossentropy as ce

from . import _data


class CategoricalWithLogits:
    """Integer labels, mean: 16384x1000 (vocabulary-sized), 2048x32000, 262144x10."""

    params = (
        ["16384x1000", "2048x32000", "262144x10"],
        ["float32", "float64"],
        [False, True],
    )
    param_names = ["shape", "dtype", "return_grad"]
    timeout = 300

    def setup(self, shape, dtype, return_grad):
        n_rows, n_classes = (int(n) for n in shape.split("x"))
        self.logits, self.labels = _data.categorical(n_rows, n_classes, dtype)

    def time_loss(self, shape, dtype, return_grad):
        ce.categorical_cross_entropy_with_logits(self.logits, self.labels, return_grad=return_grad)

    def peakmem_loss(self, shape, dtype, return_grad):
        ce.categorical_cross_entropy_with_logits(self.logits, self.labels, return_grad=return_grad)


class CategoricalWithProbabilities:
    """200000x10 probabilities with integer labels, as scikit-learn's log_loss gets them."""

    params = (["float32", "float64"], [False, True])
    param_names = ["dtype", "return_grad"]

    def setup(self, dtype, return_grad):
        self.probs, self.labels = _data.probabilities(200_000, 10, dtype)

    def time_loss(self, dtype, return_grad):
        ce.categorical_cross_entropy(self.probs, self.labels, return_grad=return_grad)

    def peakmem_loss(self, dtype, return_grad):
        ce.categorical_cross_entropy(self.probs, self.labels, return_grad=return_grad)


class BinaryWithLogits:
    """10 million logits with 0/1 targets."""

    params = (["float32", "float64"], [False, True])
    param_names = ["dtype", "return_grad"]
    timeout = 300

    def setup(self, dtype, return_grad):
        self.logits, self.target = _data.binary(10_000_000, dtype, logits=True)

    def time_loss(self, dtype, return_grad):
        ce.binary_cross_entropy_with_logits(self.logits, self.target, return_grad=return_grad)

    def peakmem_loss(self, dtype, return_grad):
        ce.binary_cross_entropy_with_logits(self.logits, self.target, return_grad=return_grad)


class BinaryWithProbabilities:
    """2 million probabilities of the positive class, as log_loss gets them."""

    params = (["float32", "float64"], [False, True])
    param_names = ["dtype", "return_grad"]

    def setup(self, dtype, return_grad):
        self.probs, self.target = _data.binary(2_000_000, dtype, logits=False)

    def time_loss(self, dtype, return_grad):
        ce.binary_cross_entropy(self.probs, self.target, return_grad=return_grad)

    def peakmem_loss(self, dtype, return_grad):
        ce.binary_cross_entropy(self.probs, self.target, return_grad=return_grad)


class Options:
    """The cost of the options on the 16384x1000 float32 forward pass."""

    params = [["none", "class_weight", "label_smoothing", "sample_weight+where", "axis=0"]]
    param_names = ["option"]

    def setup(self, option):
        import numpy as np

        self.logits, self.labels = _data.categorical(16384, 1000, "float32")
        rng = np.random.default_rng(3)
        self.options = {
            "none": {},
            "class_weight": {"class_weight": rng.uniform(0.5, 2, 1000)},
            "label_smoothing": {"label_smoothing": 0.1},
            "sample_weight+where": {
                "sample_weight": rng.uniform(0, 1, 16384),
                "where": rng.random(16384) > 0.1,
            },
            "axis=0": {"axis": 0},
        }[option]
        if option == "axis=0":
            self.logits = np.ascontiguousarray(self.logits.T)

    def time_forward(self, option):
        ce.categorical_cross_entropy_with_logits(self.logits, self.labels, **self.options)


class Threads:
    """Forward pass of 16384x1000 float32 on 1 and 2 threads."""

    params = [[1, 2]]
    param_names = ["threads"]

    def setup(self, threads):
        self.logits, self.labels = _data.categorical(16384, 1000, "float32")

    def time_forward(self, threads):
        with ce.num_threads(threads):
            ce.categorical_cross_entropy_with_logits(self.logits, self.labels)
