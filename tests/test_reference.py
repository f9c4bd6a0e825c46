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
        [-1, 1],  # axis
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
