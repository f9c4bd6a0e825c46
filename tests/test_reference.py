"""Every loss and option combination against the plain loops of ``reference.py``."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

import crossentropy as ce

from . import reference

N_CLASSES = 4


def _categorical_inputs(rng, *, logits, soft, axis, concentration=1.0):
    """Logits or probabilities of batch shape (3, 2) with 4 classes on `axis`, and targets."""
    batch = (3, 2)
    if logits:
        first = rng.normal(scale=3.0, size=(*batch, N_CLASSES))
    else:
        first = rng.dirichlet(np.full(N_CLASSES, concentration), size=batch)
    if soft:
        target = np.moveaxis(rng.dirichlet(np.ones(N_CLASSES) * 0.7, size=batch), -1, axis)
    else:
        target = rng.integers(0, N_CLASSES, size=batch)
    return np.moveaxis(first, -1, axis), target


CATEGORICAL_CASES = list(
    itertools.product(
        [True, False],  # logits
        [False, True],  # soft targets
        ["mean", "sum", "none"],
        [False, True],  # class_weight
        [False, True],  # sample_weight
        [False, True],  # where
        [0.0, 0.15],  # label_smoothing
        [-1, 0, 1],  # axis
    )
)


def _case_id(case):
    logits, soft, reduction, cw, sw, wh, ls, axis = case
    parts = ["logits" if logits else "probs", "soft" if soft else "labels", reduction]
    parts += [name for name, on in (("cw", cw), ("sw", sw), ("where", wh)) if on]
    return "-".join([*parts, f"ls{ls}", f"axis{axis}"])


def _categorical_options(rng, soft, reduction, cw, sw, wh, ls, axis):
    options = {"reduction": reduction, "label_smoothing": ls, "axis": axis}
    if cw:
        options["class_weight"] = np.array([0.5, 2.0, 0.0, 1.3])
    if sw:
        options["sample_weight"] = rng.uniform(0.0, 2.0, size=(3, 1))
    if wh:
        options["where"] = np.array([[True, False], [True, True], [False, True]])
    if not soft:
        options["ignore_index"] = 3
    return options


def _loss_function(logits, categorical=True):
    if categorical:
        return ce.categorical_cross_entropy_with_logits if logits else ce.categorical_cross_entropy
    return ce.binary_cross_entropy_with_logits if logits else ce.binary_cross_entropy


@pytest.mark.parametrize("case", CATEGORICAL_CASES, ids=_case_id)
def test_categorical_equals_the_loop(rng, case):
    logits, soft, reduction, cw, sw, wh, ls, axis = case
    first, target = _categorical_inputs(rng, logits=logits, soft=soft, axis=axis)
    options = _categorical_options(rng, soft, reduction, cw, sw, wh, ls, axis)
    got = _loss_function(logits)(first, target, **options)
    expected = reference.categorical(first, target, logits=logits, **options)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)
    if reduction != "none":
        assert isinstance(got, np.float64)


@pytest.mark.parametrize("logits", [True, False], ids=["logits", "probs"])
@pytest.mark.parametrize("soft", [False, True], ids=["labels", "soft"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_categorical_float32_is_close_to_float64(rng, logits, soft, reduction):
    first, target = _categorical_inputs(rng, logits=logits, soft=soft, axis=-1)
    options = {"reduction": reduction, "class_weight": [1.0, 0.3, 2.0, 1.0]}
    function = _loss_function(logits)
    got = function(
        first.astype(np.float32),
        target.astype(np.float32) if soft else target,
        **options,
    )
    expected = reference.categorical(first.astype(np.float32), target, logits=logits, **options)
    assert np.asarray(got).dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=2e-6)


@pytest.mark.parametrize("eps", [None, 0.0, 1e-3, 0.2])
@pytest.mark.parametrize("soft", [False, True], ids=["labels", "soft"])
def test_categorical_probability_clipping(rng, eps, soft):
    probs = np.array([[0.0, 0.3, 0.7, 0.0], [0.95, 0.05, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]])
    target = (
        np.array([1, 0, 3])
        if not soft
        else np.array([[0, 0.5, 0.5, 0], [1, 0, 0, 0], [0, 0, 0, 1.0]])
    )
    got = ce.categorical_cross_entropy(probs, target, eps=eps, reduction="none")
    expected = reference.categorical(probs, target, logits=False, eps=eps, reduction="none")
    np.testing.assert_allclose(got, expected, rtol=1e-14)


BINARY_CASES = list(
    itertools.product(
        [True, False],  # logits
        ["mean", "sum", "none"],
        [False, True],  # pos_weight
        [False, True],  # sample_weight
        [False, True],  # where
        [0.0, 0.2],  # label_smoothing
        ["float", "int", "bool"],  # target kind
    )
)


def _binary_case_id(case):
    logits, reduction, pw, sw, wh, ls, kind = case
    parts = ["logits" if logits else "probs", reduction, kind]
    parts += [name for name, on in (("pw", pw), ("sw", sw), ("where", wh)) if on]
    return "-".join([*parts, f"ls{ls}"])


def _binary_inputs(rng, logits, kind, shape=(4, 3)):
    first = rng.normal(scale=4.0, size=shape) if logits else rng.uniform(0.01, 0.99, shape)
    target = rng.random(shape)
    if kind == "int":
        target = (target > 0.5).astype(np.int64)
    elif kind == "bool":
        target = target > 0.5
    return first, target


def _binary_options(rng, reduction, pw, sw, wh, ls):
    options = {"reduction": reduction, "label_smoothing": ls}
    if pw:
        options["pos_weight"] = np.array([3.0, 0.5, 1.0])
    if sw:
        options["sample_weight"] = rng.uniform(0.0, 2.0, size=(4, 1))
    if wh:
        options["where"] = rng.random((4, 3)) > 0.3
    return options


@pytest.mark.parametrize("case", BINARY_CASES, ids=_binary_case_id)
def test_binary_equals_the_loop(rng, case):
    logits, reduction, pw, sw, wh, ls, kind = case
    first, target = _binary_inputs(rng, logits, kind)
    options = _binary_options(rng, reduction, pw, sw, wh, ls)
    got = _loss_function(logits, categorical=False)(first, target, **options)
    expected = reference.binary(first, target, logits=logits, **options)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("eps", [None, 0.0, 1e-4, 0.3])
def test_binary_probability_clipping(eps):
    probs = np.array([0.0, 1e-20, 0.2, 0.9, 1.0 - 1e-17, 1.0])
    target = np.array([0.0, 1.0, 1.0, 0.0, 1.0, 1.0])
    got = ce.binary_cross_entropy(probs, target, eps=eps, reduction="none")
    expected = reference.binary(probs, target, logits=False, eps=eps, reduction="none")
    np.testing.assert_allclose(got, expected, rtol=1e-14)


def _with_gradient(function, first, target, options):
    loss, grad = function(first, target, return_grad=True, **options)
    np.testing.assert_array_equal(loss, function(first, target, **options))  # same value

    def summed(x):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # perturbed rows of probabilities
            return float(np.sum(function(x, target, **options)))

    return grad, summed


GRADIENT_CASES = list(
    itertools.product(
        [True, False],  # logits
        [False, True],  # soft targets
        ["mean", "sum", "none"],
        [False, True],  # class and sample weights
        [False, True],  # where (and ignore_index for labels)
        [0.0, 0.15],  # label_smoothing
        [-1, 0, 1],  # axis
    )
)


@pytest.mark.parametrize(
    "case", GRADIENT_CASES, ids=lambda c: _case_id((*c[:4], c[3], c[4], *c[5:]))
)
def test_categorical_gradient_against_finite_differences(rng, case):
    logits, soft, reduction, weighted, masked, ls, axis = case
    # Probabilities well inside (0, 1), so that the differences stay inside the clip range.
    first, target = _categorical_inputs(
        rng, logits=logits, soft=soft, axis=axis, concentration=20.0
    )
    options = _categorical_options(rng, soft, reduction, weighted, weighted, masked, ls, axis)
    if not masked:
        options.pop("ignore_index", None)
    function = _loss_function(logits)
    grad, summed = _with_gradient(function, first, target, options)
    expected = reference.central_difference(summed, first, 1e-3 if logits else 1e-5)
    np.testing.assert_allclose(grad, expected, rtol=1e-7, atol=1e-9)
    assert grad.shape == first.shape


@pytest.mark.parametrize(
    "case",
    list(itertools.product([True, False], ["mean", "sum", "none"], [False, True], [0.0, 0.2])),
    ids=lambda c: "-".join(map(str, c)),
)
def test_binary_gradient_against_finite_differences(rng, case):
    logits, reduction, weighted, ls = case
    first, target = _binary_inputs(rng, logits, "float")
    options = _binary_options(rng, reduction, weighted, weighted, weighted, ls)
    function = _loss_function(logits, categorical=False)
    grad, summed = _with_gradient(function, first, target, options)
    expected = reference.central_difference(summed, first, 1e-3 if logits else 1e-6)
    np.testing.assert_allclose(grad, expected, rtol=1e-7, atol=1e-9)


def test_clipped_probabilities_have_zero_gradient():
    probs = np.array([0.0, 0.5, 1.0])
    _, grad = ce.binary_cross_entropy(probs, [1.0, 1.0, 0.0], eps=1e-3, return_grad=True)
    np.testing.assert_array_equal(grad[[0, 2]], 0.0)
    np.testing.assert_allclose(grad[1], -1 / 0.5 / 3)
    _, grad = ce.categorical_cross_entropy(
        [[0.0, 1.0]], [0], eps=1e-3, return_grad=True, reduction="sum"
    )
    np.testing.assert_array_equal(grad, [[0.0, 0.0]])


def _probabilities_with_zeros(rng, soft):
    """Rows of 4 probabilities holding exact 0s and 1s and values near the clip bounds."""
    probs = rng.dirichlet(np.full(N_CLASSES, 0.6), size=(3, 2))
    probs[0, 0] = [1.0, 0.0, 0.0, 0.0]
    probs[1, 1] = [0.0, 0.5, 0.5 - 1e-4, 1e-4]
    probs[2, 0] = [0.25, 0.0, 0.75 - 1e-17, 1e-17]
    if soft:
        target = rng.dirichlet(np.full(N_CLASSES, 0.7), size=(3, 2))
        target[0, 0] = [1.0, 0.0, 0.0, 0.0]
        target[1, 1] = [0.0, 0.5, 0.5, 0.0]
        target[2, 0] = [0.5, 0.0, 0.5, 0.0]
    else:
        target = rng.integers(0, N_CLASSES, size=(3, 2))
        target[0, 0] = 0
        target[1, 1] = 1
        target[2, 0] = 2
    return probs, target


PROBABILITY_CASES = list(
    itertools.product(
        [None, 0.0, 1e-3, 0.2],  # eps
        [False, True],  # soft targets
        ["mean", "sum", "none"],
        [False, True],  # class_weight (one of 0)
        [False, True],  # sample_weight (one of 0)
        [False, True],  # where and ignore_index
        [0.0, 0.15],  # label_smoothing
    )
)


@pytest.mark.parametrize(
    "case",
    PROBABILITY_CASES,
    ids=lambda c: (
        f"eps{c[0]}-{'soft' if c[1] else 'labels'}-{c[2]}"
        f"-cw{c[3]:d}-sw{c[4]:d}-mask{c[5]:d}-ls{c[6]}"
    ),
)
def test_categorical_probabilities_with_clipping_and_every_option(rng, case):
    eps, soft, reduction, cw, sw, masked, ls = case
    probs, target = _probabilities_with_zeros(rng, soft)
    options = {"reduction": reduction, "label_smoothing": ls, "eps": eps}
    if cw:
        options["class_weight"] = np.array([0.5, 2.0, 0.0, 1.3])
    if sw:
        options["sample_weight"] = np.array([[1.5, 0.0], [0.3, 2.0], [0.0, 1.0]])
    if masked:
        options["where"] = np.array([[True, True], [False, True], [True, False]])
        if not soft:
            options["ignore_index"] = 3
    got = ce.categorical_cross_entropy(probs, target, **options)
    expected = reference.categorical(probs, target, logits=False, **options)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("logits", [True, False], ids=["logits", "probs"])
@pytest.mark.parametrize("soft", [False, True], ids=["labels", "soft"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"where": np.False_},
        {"where": True, "sample_weight": 2.5},
        {"class_weight": [0.3, 1.0, 2.0], "label_smoothing": 0.2},
    ],
    ids=["plain", "masked", "weighted", "cw-ls"],
)
def test_categorical_without_batch_dimensions(rng, logits, soft, reduction, options):
    first = rng.normal(size=3) if logits else rng.dirichlet(np.ones(3))
    target = rng.dirichlet(np.ones(3)) if soft else np.int64(1)
    function = _loss_function(logits)
    got = function(first, target, reduction=reduction, **options)
    expected = reference.categorical(first, target, logits=logits, reduction=reduction, **options)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)
    if reduction == "none":
        assert np.shape(got) == ()


@pytest.mark.parametrize(
    "sample_weight",
    [2.0, [[0.5], [1.0], [2.0]], [[0.5, 1.0]], np.arange(6.0).reshape(3, 2)],
    ids=["scalar", "column", "row", "full"],
)
@pytest.mark.parametrize("logits", [True, False], ids=["logits", "probs"])
def test_categorical_sample_weight_broadcasts(rng, logits, sample_weight):
    first, target = _categorical_inputs(rng, logits=logits, soft=False, axis=1)
    for reduction in ("mean", "sum", "none"):
        options = {"reduction": reduction, "sample_weight": sample_weight, "axis": 1}
        got = _loss_function(logits)(first, target, **options)
        expected = reference.categorical(first, target, logits=logits, **options)
        np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("logits", [True, False], ids=["logits", "probs"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(
    "pos_weight",
    [None, 2.5, [3.0, 0.5, 1.0], "full", "zero"],
    ids=["none", "scalar", "per-label", "full", "zero"],
)
@pytest.mark.parametrize("sample_weight", [None, "batch", "full"], ids=["sw-none", "sw1", "sw3"])
def test_binary_multilabel_3d_equals_the_loop(rng, logits, reduction, pos_weight, sample_weight):
    shape = (2, 4, 3)
    first, target = _binary_inputs(rng, logits, "float", shape=shape)
    options = {"reduction": reduction, "where": rng.random(shape) > 0.2, "label_smoothing": 0.1}
    if isinstance(pos_weight, str):
        pos_weight = rng.uniform(0, 3, shape) if pos_weight == "full" else np.zeros(3)
    if pos_weight is not None:
        options["pos_weight"] = pos_weight
    if sample_weight == "batch":
        options["sample_weight"] = rng.uniform(0, 2, (2, 1, 1))
    elif sample_weight == "full":
        options["sample_weight"] = rng.uniform(0, 2, shape)
    got = _loss_function(logits, categorical=False)(first, target, **options)
    expected = reference.binary(first, target, logits=logits, **options)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("logits", [True, False], ids=["logits", "probs"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "weighted"])
def test_binary_float32_is_close_to_float64(rng, logits, reduction, weighted):
    first, target = _binary_inputs(rng, logits, "float")
    options = _binary_options(rng, reduction, weighted, weighted, weighted, 0.1 * weighted)
    first32, target32 = first.astype(np.float32), target.astype(np.float32)
    got = _loss_function(logits, categorical=False)(first32, target32, **options)
    expected = reference.binary(first32, target32, logits=logits, **options)
    assert np.asarray(got).dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=2e-6)


@pytest.mark.parametrize("logits", [True, False], ids=["logits", "probs"])
@pytest.mark.parametrize("soft", [False, True], ids=["labels", "soft"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_float32_gradient_is_close_to_float64(rng, logits, soft, reduction):
    first, target = _categorical_inputs(rng, logits=logits, soft=soft, axis=1, concentration=5.0)
    options = _categorical_options(rng, soft, reduction, True, True, True, 0.1, 1)
    function = _loss_function(logits)
    _, grad64 = function(first, target, return_grad=True, **options)
    target32 = target.astype(np.float32) if soft else target
    _, grad32 = function(first.astype(np.float32), target32, return_grad=True, **options)
    assert grad32.dtype == np.float32
    scale = np.max(np.abs(grad64))
    np.testing.assert_allclose(grad32, grad64, rtol=1e-5, atol=1e-6 * scale)


PROBABILITY_GRADIENT_CASES = list(
    itertools.product(
        [None, 0.0, 0.05],  # eps
        [False, True],  # soft targets
        ["mean", "sum", "none"],
        [False, True],  # class and sample weights
        [0.0, 0.2],  # label_smoothing
    )
)


@pytest.mark.parametrize(
    "case",
    PROBABILITY_GRADIENT_CASES,
    ids=lambda c: f"eps{c[0]}-{'soft' if c[1] else 'labels'}-{c[2]}-w{c[3]:d}-ls{c[4]}",
)
def test_categorical_probability_gradient_with_clipping(rng, case):
    eps, soft, reduction, weighted, ls = case
    # Some probabilities lie below eps=0.05 (flat there: gradient 0), all others well inside.
    probs = np.array([[0.01, 0.3, 0.39, 0.3], [0.25, 0.25, 0.25, 0.25], [0.6, 0.02, 0.08, 0.3]])
    target = rng.dirichlet(np.ones(N_CLASSES), size=3) if soft else np.array([0, 3, 1])
    options = {"reduction": reduction, "label_smoothing": ls, "eps": eps}
    if weighted:
        options["class_weight"] = np.array([0.5, 2.0, 0.0, 1.3])
        options["sample_weight"] = np.array([1.5, 0.0, 0.7])
    grad, summed = _with_gradient(ce.categorical_cross_entropy, probs, target, options)
    expected = reference.central_difference(summed, probs, 1e-6)
    np.testing.assert_allclose(grad, expected, rtol=1e-7, atol=1e-8)
    if eps == 0.05:
        assert np.all(grad[probs < eps] == 0)


@pytest.mark.parametrize("case", BINARY_CASES, ids=_binary_case_id)
def test_binary_gradient_with_every_option(rng, case):
    logits, reduction, pw, sw, wh, ls, kind = case
    first, target = _binary_inputs(rng, logits, kind, shape=(3, 3))
    options = _binary_options(rng, reduction, pw, False, False, ls)
    if sw:
        options["sample_weight"] = rng.uniform(0.0, 2.0, size=(3, 1))
    if wh:
        options["where"] = np.array([[True, False, True], [True, True, True], [False, True, False]])
    function = _loss_function(logits, categorical=False)
    grad, summed = _with_gradient(function, first, target, options)
    expected = reference.central_difference(summed, first, 1e-3 if logits else 1e-6)
    np.testing.assert_allclose(grad, expected, rtol=1e-7, atol=1e-9)
    if wh:
        assert np.all(grad[~options["where"]] == 0)


@pytest.mark.parametrize("eps", [None, 0.0, 0.05])
def test_binary_probability_gradient_with_clipping(eps):
    probs = np.array([0.01, 0.2, 0.5, 0.97, 0.3, 0.8])
    target = np.array([1.0, 0.0, 0.3, 1.0, 1.0, 0.0])
    options = {"eps": eps, "pos_weight": 2.0, "reduction": "mean"}
    grad, summed = _with_gradient(ce.binary_cross_entropy, probs, target, options)
    expected = reference.central_difference(summed, probs, 1e-6)
    np.testing.assert_allclose(grad, expected, rtol=1e-7, atol=1e-9)
    if eps == 0.05:
        np.testing.assert_array_equal(grad[[0, 3]], 0.0)


LONG_CASES = list(
    itertools.product(
        [1, 2, 47, 48, 49, 60, 300],  # classes: short rows are laid out one way, long another
        [False, True],  # soft targets
        [0.0, 0.2],  # label_smoothing
        [False, True],  # class_weight
        [False, True],  # tied maxima
    )
)


@pytest.mark.parametrize(
    "case",
    LONG_CASES,
    ids=lambda c: f"C{c[0]}-{'soft' if c[1] else 'labels'}-ls{c[2]}-cw{c[3]:d}-ties{c[4]:d}",
)
def test_categorical_any_number_of_classes_and_tied_maxima(rng, case):
    n_classes, soft, ls, cw, ties = case
    logits = rng.normal(scale=3.0, size=(5, n_classes))
    if ties:
        logits[:, : min(3, n_classes)] = 4.0
        logits[0] = 4.0  # every class tied
    if soft:
        target = rng.dirichlet(np.ones(n_classes), size=5)
    else:
        target = rng.integers(0, n_classes, size=5)
    options = {"label_smoothing": ls, "axis": 1}
    if cw:
        options["class_weight"] = rng.uniform(0.1, 2.0, n_classes)
    for reduction in ("none", "mean"):
        got, grad = ce.categorical_cross_entropy_with_logits(
            logits, target, reduction=reduction, return_grad=True, **options
        )
        expected = reference.categorical(
            logits, target, logits=True, reduction=reduction, **options
        )
        np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)
    if n_classes <= 60:

        def summed(x):
            return float(ce.categorical_cross_entropy_with_logits(x, target, **options))

        expected = reference.central_difference(summed, logits, 1e-3)
        np.testing.assert_allclose(grad, expected, rtol=1e-7, atol=1e-9)
    else:
        # the exact gradient of the mean, written out: (A softmax(x) - a) / D
        a = np.eye(n_classes)[target] if not soft else target.copy()
        a = (1 - ls) * a + ls / n_classes
        w = options.get("class_weight", np.ones(n_classes))
        a = a * w
        unsmoothed = (np.eye(n_classes)[target] if not soft else target) @ w
        denominator = unsmoothed.sum() if cw else 5.0
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        softmax = e / e.sum(axis=1, keepdims=True)
        exact = (a.sum(axis=1, keepdims=True) * softmax - a) / denominator
        np.testing.assert_allclose(grad, exact, rtol=1e-12, atol=1e-17)


@pytest.mark.parametrize("n_classes", [20, 100])
@pytest.mark.parametrize("threads", [1, 2])
def test_large_inputs_over_blocks_and_threads_equal_the_loop(rng, n_classes, threads):
    # 400_000 elements: several blocks of rows, and on two threads, two ranges of rows.
    n = 400_000 // n_classes
    logits = rng.normal(scale=3.0, size=(n, n_classes))
    labels = rng.integers(0, n_classes, size=n)
    options = {
        "sample_weight": rng.uniform(0.0, 2.0, n),
        "where": rng.random(n) > 0.1,
        "class_weight": rng.uniform(0.0, 2.0, n_classes),
        "label_smoothing": 0.1,
        "ignore_index": 3,
    }
    with ce.num_threads(threads):
        loss, grad = ce.categorical_cross_entropy_with_logits(
            logits, labels, reduction="none", return_grad=True, **options
        )
        mean = ce.categorical_cross_entropy_with_logits(logits, labels, **options)
    # rows at the edges of blocks and thread ranges, and a random sample
    edges = [0, 1, n // 2 - 1, n // 2, n - 1, (1 << 18) // n_classes - 1, (1 << 18) // n_classes]
    rows = np.unique(np.concatenate([edges, rng.choice(n, 30, replace=False)]))
    subset = {
        key: value[rows] if key in ("sample_weight", "where") else value
        for key, value in options.items()
    }
    expected = reference.categorical(
        logits[rows], labels[rows], logits=True, reduction="none", **subset
    )
    np.testing.assert_allclose(loss[rows], expected, rtol=1e-13, atol=1e-15)
    kept = options["where"] & (labels != 3)
    weight = options["sample_weight"] * options["class_weight"][labels]
    np.testing.assert_allclose(mean, loss.sum() / weight[kept].sum(), rtol=1e-12)
    np.testing.assert_array_equal(grad[~kept], 0.0)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("logits", [True, False], ids=["logits", "probs"])
def test_large_binary_inputs_over_blocks_and_threads(rng, threads, logits):
    n = 300_001
    x = rng.normal(scale=5.0, size=n)
    first = x if logits else 1 / (1 + np.exp(-x))
    t = rng.random(n)
    function = _loss_function(logits, categorical=False)
    with ce.num_threads(threads):
        loss, grad = function(first, t, reduction="none", return_grad=True, pos_weight=2.0)
    if logits:
        expected = (1 - t) * np.logaddexp(0, x) + 2 * t * np.logaddexp(0, -x)
        expected_grad = (1 - t) / (1 + np.exp(-x)) - 2 * t / (1 + np.exp(x))
    else:
        q = np.clip(first, np.finfo(float).eps, 1 - np.finfo(float).eps)
        expected = -(2 * t * np.log(q) + (1 - t) * np.log1p(-q))
        expected_grad = (1 - t) / (1 - q) - 2 * t / q
    np.testing.assert_allclose(loss, expected, rtol=1e-12)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-10, atol=1e-15)


def test_the_clip_range_is_inclusive_for_the_gradient():
    # d clip(p)/dp = 1 for eps <= p <= 1 - eps, like torch.clamp
    _, grad = ce.categorical_cross_entropy([[0.25, 0.75]], [0], eps=0.25, return_grad=True)
    np.testing.assert_array_equal(grad, [[-4.0, 0.0]])
    _, grad = ce.categorical_cross_entropy(
        [[0.25, 0.75]], np.array([[0.5, 0.5]]), eps=0.25, return_grad=True
    )
    np.testing.assert_allclose(grad, [[-2.0, -2 / 3]], rtol=1e-15)
    _, grad = ce.binary_cross_entropy(
        [0.25, 0.75], [1.0, 0.0], eps=0.25, return_grad=True, reduction="sum"
    )
    np.testing.assert_array_equal(grad, [-4.0, 4.0])
    # eps = 0.5: every probability is clipped to 0.5; only exactly 0.5 has a slope
    loss, grad = ce.binary_cross_entropy(
        [0.0, 1.0, 0.5], [1.0, 0.0, 1.0], eps=0.5, return_grad=True, reduction="sum"
    )
    np.testing.assert_allclose(loss, 3 * np.log(2.0), rtol=1e-15)
    np.testing.assert_array_equal(grad, [0.0, 0.0, -2.0])


@pytest.mark.parametrize("logits", [True, False], ids=["logits", "probs"])
@pytest.mark.parametrize(
    "where",
    [np.array([[True, False]]), np.array([[True], [False], [True]]), np.True_, np.False_],
    ids=["row", "column", "true", "false"],
)
def test_where_broadcasts_against_the_batch_shape(rng, logits, where):
    first, target = _categorical_inputs(rng, logits=logits, soft=False, axis=1)
    for reduction in ("none", "sum", "mean"):
        options = {"where": where, "axis": 1, "reduction": reduction}
        got = _loss_function(logits)(first, target, **options)
        expected = reference.categorical(first, target, logits=logits, **options)
        np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)
    x, t = _binary_inputs(rng, logits, "float", shape=(3, 2))
    for reduction in ("none", "sum", "mean"):
        options = {"where": where, "reduction": reduction}
        got = _loss_function(logits, categorical=False)(x, t, **options)
        expected = reference.binary(x, t, logits=logits, **options)
        np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)
