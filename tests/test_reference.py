"""Every loss and option combination against the plain loops of ``reference.py``."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

import crossentropy as ce

from . import losses, reference

N_CLASSES = 4
BATCH = (3, 2)


def _categorical_shape(axis):
    """The input shape of batch shape (3, 2) with 4 classes on `axis`."""
    shape = list(BATCH)
    shape.insert(axis % 3, N_CLASSES)
    return tuple(shape)


def _categorical_options(rng, *, soft, cw, sw, wh, ls, axis):
    options = {"label_smoothing": ls, "axis": axis}
    if cw:
        options["class_weight"] = np.array([0.5, 2.0, 0.0, 1.3])
    if sw:
        options["sample_weight"] = rng.uniform(0.0, 2.0, size=(3, 1))
    if wh:
        options["where"] = np.array([[True, False], [True, True], [False, True]])
        if not soft:
            options["ignore_index"] = 3
    return options


def _assert_every_reduction_equals_the_loop(loss, first, target, options):
    for reduction in ("mean", "sum", "none"):
        got = loss(first, target, reduction=reduction, **options)
        expected = loss.oracle(first, target, reduction=reduction, **options)
        np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15, err_msg=reduction)
        if reduction != "none":
            assert isinstance(got, np.float64)


def _with_gradient(loss, first, target, options):
    """The gradient, checked to leave the loss unchanged, and the summed loss of `first`."""
    value, grad = loss(first, target, return_grad=True, **options)
    np.testing.assert_array_equal(value, loss(first, target, **options))

    def summed(x):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # perturbed rows of probabilities
            return float(np.sum(loss(x, target, **options)))

    return grad, summed


def _rotate(cases, extra):
    """Give each of `cases` one combination of `extra`, in turn.

    Options that only change the data of a case (label smoothing, the class axis, the
    kind of target) are rotated through the cases instead of multiplying them: every
    value of every factor still meets every value of every other factor (see
    test_rotated_cases_hold_every_pair_of_values).
    """
    combinations = list(itertools.product(*extra))
    return [(*case, *combinations[i % len(combinations)]) for i, case in enumerate(cases)]


def _missing_pairs(cases):
    """Return the pairs of values of two factors that no case holds together."""
    values = [{case[i] for case in cases} for i in range(len(cases[0]))]
    return [
        (i, j, a, b)
        for i, j in itertools.combinations(range(len(values)), 2)
        for a in values[i]
        for b in values[j]
        if not any(case[i] == a and case[j] == b for case in cases)
    ]


CATEGORICAL_CASES = list(
    itertools.product(
        [False, True],  # soft targets
        [False, True],  # class_weight
        [False, True],  # sample_weight
        [False, True],  # where (and ignore_index for class indices)
        [0.0, 0.15],  # label_smoothing
        [-1, 0, 1],  # axis
    )
)


def _case_id(case):
    soft, cw, sw, wh, ls, axis = case
    parts = ["soft" if soft else "labels"]
    parts += [name for name, on in (("cw", cw), ("sw", sw), ("where", wh)) if on]
    return "-".join([*parts, f"ls{ls}", f"axis{axis}"])


@losses.parametrize(losses.CATEGORICAL)
@pytest.mark.parametrize("case", CATEGORICAL_CASES, ids=_case_id)
def test_categorical_equals_the_loop(rng, loss, case):
    soft, cw, sw, wh, ls, axis = case
    first, target = loss.make(rng, _categorical_shape(axis), soft=soft, axis=axis)
    options = _categorical_options(rng, soft=soft, cw=cw, sw=sw, wh=wh, ls=ls, axis=axis)
    _assert_every_reduction_equals_the_loop(loss, first, target, options)


# Every loss, reduction and weighting, each with one of the smoothings and class axes.
CATEGORICAL_GRADIENT_CASES = _rotate(
    itertools.product(
        [False, True],  # soft targets
        ["mean", "sum", "none"],
        [False, True],  # class and sample weights
        [False, True],  # where (and ignore_index for class indices)
    ),
    [[0.0, 0.15], [-1, 0, 1]],  # label_smoothing, axis
)


def test_rotated_cases_hold_every_pair_of_values():
    for cases in (CATEGORICAL_GRADIENT_CASES, BINARY_GRADIENT_CASES, PROBABILITY_GRADIENT_CASES):
        assert _missing_pairs(cases) == []


@losses.parametrize(losses.CATEGORICAL)
@pytest.mark.parametrize(
    "case",
    CATEGORICAL_GRADIENT_CASES,
    ids=lambda c: f"{c[1]}-{_case_id((c[0], c[2], c[2], c[3], c[4], c[5]))}",
)
def test_categorical_gradient_against_finite_differences(rng, loss, case):
    soft, reduction, weighted, masked, ls, axis = case
    # Probabilities well inside (0, 1), so that the differences stay inside the clip range.
    first, target = loss.make(rng, _categorical_shape(axis), soft=soft, axis=axis)
    options = _categorical_options(
        rng, soft=soft, cw=weighted, sw=weighted, wh=masked, ls=ls, axis=axis
    )
    options["reduction"] = reduction
    grad, summed = _with_gradient(loss, first, target, options)
    expected = reference.central_difference(summed, first, 1e-3 if loss.from_logits else 1e-5)
    np.testing.assert_allclose(grad, expected, rtol=1e-7, atol=1e-9)
    assert grad.shape == first.shape


BINARY_CASES = list(
    itertools.product(
        [False, True],  # pos_weight
        [False, True],  # sample_weight
        [False, True],  # where
        [0.0, 0.2],  # label_smoothing
        ["float", "int", "bool"],  # target kind
    )
)


def _binary_case_id(case):
    pw, sw, wh, ls, kind = case
    parts = [kind]
    parts += [name for name, on in (("pw", pw), ("sw", sw), ("where", wh)) if on]
    return "-".join([*parts, f"ls{ls}"])


def _binary_inputs(loss, rng, kind, shape=(4, 3)):
    first, target = loss.make(rng, shape, soft=True)
    if kind == "int":
        target = (target > 0.5).astype(np.int64)
    elif kind == "bool":
        target = target > 0.5
    return first, target


def _binary_options(rng, shape, *, pw, sw, wh, ls):
    options = {"label_smoothing": ls}
    if pw:
        options["pos_weight"] = np.array([3.0, 0.5, 1.0])
    if sw:
        options["sample_weight"] = rng.uniform(0.0, 2.0, size=(shape[0], 1))
    if wh:
        options["where"] = rng.random(shape) > 0.3
    return options


@losses.parametrize(losses.BINARY)
@pytest.mark.parametrize("case", BINARY_CASES, ids=_binary_case_id)
def test_binary_equals_the_loop(rng, loss, case):
    pw, sw, wh, ls, kind = case
    first, target = _binary_inputs(loss, rng, kind)
    options = _binary_options(rng, first.shape, pw=pw, sw=sw, wh=wh, ls=ls)
    _assert_every_reduction_equals_the_loop(loss, first, target, options)


# Every loss, reduction and weighting, each with one of the smoothings and target kinds.
BINARY_GRADIENT_CASES = _rotate(
    itertools.product(
        ["mean", "sum", "none"],
        [False, True],  # pos_weight
        [False, True],  # sample_weight
        [False, True],  # where
    ),
    [[0.0, 0.2], ["float", "int", "bool"]],  # label_smoothing, target kind
)


@losses.parametrize(losses.BINARY)
@pytest.mark.parametrize(
    "case", BINARY_GRADIENT_CASES, ids=lambda c: f"{c[0]}-{_binary_case_id(c[1:])}"
)
def test_binary_gradient_against_finite_differences(rng, loss, case):
    reduction, pw, sw, wh, ls, kind = case
    first, target = _binary_inputs(loss, rng, kind, shape=(3, 3))
    options = _binary_options(rng, first.shape, pw=pw, sw=sw, wh=wh, ls=ls)
    options["reduction"] = reduction
    grad, summed = _with_gradient(loss, first, target, options)
    expected = reference.central_difference(summed, first, 1e-3 if loss.from_logits else 1e-6)
    np.testing.assert_allclose(grad, expected, rtol=1e-7, atol=1e-9)
    if wh:
        assert np.all(grad[~options["where"]] == 0)


@losses.parametrize(losses.ALL)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "weighted"])
def test_float32_is_close_to_the_float64_loop(rng, loss, reduction, weighted):
    if loss.categorical:
        calls = []
        for soft in (False, True):
            first, target = loss.make(rng, _categorical_shape(1), soft=soft, axis=1)
            options = _categorical_options(
                rng, soft=soft, cw=True, sw=weighted, wh=weighted, ls=0.1 * weighted, axis=1
            )
            calls.append((first, target, options))
    else:
        first, target = _binary_inputs(loss, rng, "float")
        options = _binary_options(
            rng, first.shape, pw=weighted, sw=weighted, wh=weighted, ls=0.1 * weighted
        )
        calls = [(first, target, options)]
    for first, target, options in calls:
        options["reduction"] = reduction
        first32 = first.astype(np.float32)
        target32 = target.astype(np.float32) if target.dtype.kind == "f" else target
        got, grad32 = loss(first32, target32, return_grad=True, **options)
        expected = loss.oracle(first32, target32, **options)
        assert np.asarray(got).dtype == np.float32
        assert grad32.dtype == np.float32
        np.testing.assert_allclose(got, expected, rtol=2e-6)
        # the float64 gradient, checked against differences above, of the same values
        _, grad64 = loss(first, target, return_grad=True, **options)
        scale = np.max(np.abs(grad64))
        np.testing.assert_allclose(grad32, grad64, rtol=1e-5, atol=1e-6 * scale)


@pytest.mark.parametrize("eps", [None, 0.0, 1e-4, 0.3])
def test_binary_probability_clipping(eps):
    probs = np.array([0.0, 1e-20, 0.2, 0.9, 1.0 - 1e-17, 1.0])
    target = np.array([0.0, 1.0, 1.0, 0.0, 1.0, 1.0])
    got = ce.binary_cross_entropy(probs, target, eps=eps, reduction="none")
    expected = reference.binary(probs, target, logits=False, eps=eps, reduction="none")
    np.testing.assert_allclose(got, expected, rtol=1e-14)


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
        f"eps{c[0]}-{'soft' if c[1] else 'labels'}-cw{c[2]:d}-sw{c[3]:d}-mask{c[4]:d}-ls{c[5]}"
    ),
)
def test_categorical_probabilities_with_clipping_and_every_option(rng, case):
    eps, soft, cw, sw, masked, ls = case
    probs, target = _probabilities_with_zeros(rng, soft)
    options = {"label_smoothing": ls, "eps": eps}
    if cw:
        options["class_weight"] = np.array([0.5, 2.0, 0.0, 1.3])
    if sw:
        options["sample_weight"] = np.array([[1.5, 0.0], [0.3, 2.0], [0.0, 1.0]])
    if masked:
        options["where"] = np.array([[True, True], [False, True], [True, False]])
        if not soft:
            options["ignore_index"] = 3
    loss = losses.BY_NAME["categorical_cross_entropy"]
    _assert_every_reduction_equals_the_loop(loss, probs, target, options)


@losses.parametrize(losses.CATEGORICAL)
@pytest.mark.parametrize("soft", [False, True], ids=["labels", "soft"])
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
def test_categorical_without_batch_dimensions(rng, loss, soft, options):
    first, target = loss.make(rng, (3,), soft=soft)
    _assert_every_reduction_equals_the_loop(loss, first, target, options)
    assert np.shape(loss(first, target, reduction="none", **options)) == ()


@losses.parametrize(losses.CATEGORICAL)
@pytest.mark.parametrize(
    "sample_weight",
    [2.0, [[0.5], [1.0], [2.0]], [[0.5, 1.0]], np.arange(6.0).reshape(3, 2)],
    ids=["scalar", "column", "row", "full"],
)
def test_categorical_sample_weight_broadcasts(rng, loss, sample_weight):
    first, target = loss.make(rng, _categorical_shape(1), axis=1)
    options = {"sample_weight": sample_weight, "axis": 1}
    _assert_every_reduction_equals_the_loop(loss, first, target, options)


@losses.parametrize(losses.BINARY)
@pytest.mark.parametrize(
    "pos_weight",
    [None, 2.5, [3.0, 0.5, 1.0], "full", "zero"],
    ids=["none", "scalar", "per-label", "full", "zero"],
)
@pytest.mark.parametrize("sample_weight", [None, "batch", "full"], ids=["sw-none", "sw1", "sw3"])
def test_binary_multilabel_3d_equals_the_loop(rng, loss, pos_weight, sample_weight):
    shape = (2, 4, 3)
    first, target = _binary_inputs(loss, rng, "float", shape=shape)
    options = {"where": rng.random(shape) > 0.2, "label_smoothing": 0.1}
    if isinstance(pos_weight, str):
        pos_weight = rng.uniform(0, 3, shape) if pos_weight == "full" else np.zeros(3)
    if pos_weight is not None:
        options["pos_weight"] = pos_weight
    if sample_weight == "batch":
        options["sample_weight"] = rng.uniform(0, 2, (2, 1, 1))
    elif sample_weight == "full":
        options["sample_weight"] = rng.uniform(0, 2, shape)
    _assert_every_reduction_equals_the_loop(loss, first, target, options)


# Every clip bound, target kind, weighting and reduction, each with one of the smoothings.
PROBABILITY_GRADIENT_CASES = _rotate(
    itertools.product(
        [None, 0.0, 0.05],  # eps
        [False, True],  # soft targets
        [False, True],  # class and sample weights
        ["mean", "sum", "none"],
    ),
    [[0.0, 0.2]],  # label_smoothing
)


@pytest.mark.parametrize(
    "case",
    PROBABILITY_GRADIENT_CASES,
    ids=lambda c: f"eps{c[0]}-{'soft' if c[1] else 'labels'}-w{c[2]:d}-{c[3]}-ls{c[4]}",
)
def test_categorical_probability_gradient_with_clipping(rng, case):
    eps, soft, weighted, reduction, ls = case
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


def _exact_logits_gradient(logits, target, *, label_smoothing=0.0, class_weight=None):
    """The gradient of the summed loss of rows of logits: ``A softmax(x) - a``, and ``D``.

    ``a = w * ((1 - eps) t + eps / C)`` and ``A = sum_c a_c``; the mean's gradient is
    this over ``D = sum_c w_c t_c`` with the unsmoothed target.
    """
    n_classes = logits.shape[1]
    unsmoothed = target if target.dtype.kind == "f" else np.eye(n_classes)[target]
    w = np.ones(n_classes) if class_weight is None else np.asarray(class_weight)
    a = ((1 - label_smoothing) * unsmoothed + label_smoothing / n_classes) * w
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    softmax = e / e.sum(axis=1, keepdims=True)
    return a.sum(axis=1, keepdims=True) * softmax - a, float(np.sum(unsmoothed @ w))


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
    summed_grad, total = _exact_logits_gradient(
        logits, target, label_smoothing=ls, class_weight=options.get("class_weight")
    )
    for reduction, exact in (("none", summed_grad), ("mean", summed_grad / total)):
        got, grad = ce.categorical_cross_entropy_with_logits(
            logits, target, reduction=reduction, return_grad=True, **options
        )
        expected = reference.categorical(
            logits, target, logits=True, reduction=reduction, **options
        )
        np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(grad, exact, rtol=1e-12, atol=1e-16)


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


@losses.parametrize(losses.BINARY)
@pytest.mark.parametrize("threads", [1, 2])
def test_large_binary_inputs_over_blocks_and_threads(rng, loss, threads):
    n = 300_001
    x = rng.normal(scale=5.0, size=n)
    first = x if loss.from_logits else 1 / (1 + np.exp(-x))
    t = rng.random(n)
    with ce.num_threads(threads):
        value, grad = loss(first, t, reduction="none", return_grad=True, pos_weight=2.0)
    focal = loss.name.startswith("binary_focal")  # gamma=2 by default
    if loss.from_logits and focal:
        p, u = 1 / (1 + np.exp(-x)), 1 / (1 + np.exp(x))
        above, below = np.logaddexp(0, x), np.logaddexp(0, -x)
        expected = (1 - t) * p**2 * above + 2 * t * u**2 * below
        expected_grad = (1 - t) * p**2 * (p + 2 * u * above) - 2 * t * u**2 * (u + 2 * p * below)
    elif focal:
        q = np.clip(first, np.finfo(float).eps, 1 - np.finfo(float).eps)
        expected = -(2 * t * (1 - q) ** 2 * np.log(q) + (1 - t) * q**2 * np.log1p(-q))
        expected_grad = (1 - t) * (q**2 / (1 - q) - 2 * q * np.log1p(-q)) - 2 * t * (
            (1 - q) ** 2 / q - 2 * (1 - q) * np.log(q)
        )
    elif loss.from_logits:
        expected = (1 - t) * np.logaddexp(0, x) + 2 * t * np.logaddexp(0, -x)
        expected_grad = (1 - t) / (1 + np.exp(-x)) - 2 * t / (1 + np.exp(x))
    else:
        q = np.clip(first, np.finfo(float).eps, 1 - np.finfo(float).eps)
        expected = -(2 * t * np.log(q) + (1 - t) * np.log1p(-q))
        expected_grad = (1 - t) / (1 - q) - 2 * t / q
    np.testing.assert_allclose(value, expected, rtol=1e-12)
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


@losses.parametrize(losses.ALL)
@pytest.mark.parametrize(
    "where",
    [np.array([[True, False]]), np.array([[True], [False], [True]]), np.True_, np.False_],
    ids=["row", "column", "true", "false"],
)
def test_where_broadcasts_against_the_batch_shape(rng, loss, where):
    # the batch shape is (3, 2): classes on axis 1 for the categorical losses
    if loss.categorical:
        first, target = loss.make(rng, _categorical_shape(1), axis=1)
        axis = {"axis": 1}
    else:
        first, target = loss.make(rng, BATCH)
        axis = {}
    _assert_every_reduction_equals_the_loop(loss, first, target, {"where": where, **axis})


@losses.parametrize(losses.CATEGORICAL)
def test_mean_is_nan_where_only_the_smoothed_share_weighs(rng, loss):
    # D weighs the unsmoothed labels, all of class weight 0: the sum is not 0, D is.
    first, _ = loss.make(rng, (4, 3))
    labels = np.array([0, 0, 1, 1])
    options = {"class_weight": [0.0, 0.0, 2.0], "label_smoothing": 0.3}
    _assert_every_reduction_equals_the_loop(loss, first, labels, options)
    mean, grad = loss(first, labels, return_grad=True, **options)
    assert np.isnan(mean)
    np.testing.assert_array_equal(grad, 0.0)
    assert loss(first, labels, reduction="sum", **options) > 0
