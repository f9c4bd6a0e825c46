"""Dtypes in and out, memory layouts, read-only and list inputs, empty and masked batches."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import crossentropy as ce

LOSSES = {
    "categorical_logits": ce.categorical_cross_entropy_with_logits,
    "categorical_probs": ce.categorical_cross_entropy,
    "binary_logits": ce.binary_cross_entropy_with_logits,
    "binary_probs": ce.binary_cross_entropy,
}


def _problem(rng, name, dtype=np.float64, n=6, n_classes=3):
    if name.startswith("categorical"):
        if name.endswith("logits"):
            first = rng.normal(size=(n, n_classes))
        else:
            first = rng.dirichlet(np.ones(n_classes), size=n)
        target = rng.integers(0, n_classes, size=n)
    else:
        first = rng.normal(size=(n, 2)) if name.endswith("logits") else rng.uniform(size=(n, 2))
        target = (rng.random((n, 2)) > 0.5).astype(np.float64)
    return first.astype(dtype), target


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        (np.float16, np.float32),
        (np.float32, np.float32),
        (np.float64, np.float64),
        (np.int64, np.float64),
        (np.int8, np.float64),
        (np.bool_, np.float64),
    ],
    ids=["float16", "float32", "float64", "int64", "int8", "bool"],
)
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_dtype_table(rng, name, dtype, expected, reduction):
    first, target = _problem(rng, name)
    if dtype in (np.int64, np.int8, np.bool_):
        first = (first > 0.5).astype(dtype)
        if name == "categorical_probs":
            first = np.eye(3, dtype=dtype)[target]
    else:
        first = first.astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # float16 rows may not sum to 1
        loss, grad = LOSSES[name](first, target, reduction=reduction, return_grad=True)
        reference = LOSSES[name](first.astype(expected), target, reduction=reduction)
    assert np.asarray(loss).dtype == expected
    assert grad.dtype == expected
    if reduction == "mean":
        assert type(loss) is expected  # a NumPy scalar
    np.testing.assert_array_equal(loss, reference)


@pytest.mark.parametrize("name", LOSSES)
def test_float32_targets_and_weights_with_float64_input_compute_in_float64(rng, name):
    first, target = _problem(rng, name)
    loss = LOSSES[name](first, target.astype(np.float32) if name.startswith("binary") else target)
    assert isinstance(loss, np.float64)


@pytest.mark.parametrize("name", LOSSES)
def test_layouts_read_only_and_lists_give_the_same_values(rng, name, tmp_path):
    first, target = _problem(rng, name, n=8)
    expected = LOSSES[name](first, target, reduction="none", return_grad=True)
    fortran = np.asfortranarray(first)
    strided = np.repeat(first, 2, axis=0)[::2]
    read_only = first.copy()
    read_only.flags.writeable = False
    path = tmp_path / "first.npy"
    np.save(path, first)
    memmap = np.load(path, mmap_mode="r")
    for variant in (fortran, strided, read_only, memmap, first.tolist()):
        got = LOSSES[name](variant, target, reduction="none", return_grad=True)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])
    got = LOSSES[name](first, target.tolist(), reduction="none")
    np.testing.assert_array_equal(got, expected[0])


@pytest.mark.parametrize("name", LOSSES)
def test_inputs_are_not_modified(rng, name):
    first, target = _problem(rng, name)
    weights = rng.uniform(size=first.shape[:1] + ((1,) if name.startswith("binary") else ()))
    copies = (first.copy(), target.copy(), weights.copy())
    LOSSES[name](first, target, sample_weight=weights, return_grad=True, label_smoothing=0.1)
    for original, copy in zip((first, target, weights), copies, strict=True):
        np.testing.assert_array_equal(original, copy)


@pytest.mark.parametrize("name", LOSSES)
def test_empty_batch(rng, name):
    first, target = _problem(rng, name, n=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mean, grad = LOSSES[name](first, target, return_grad=True)
    assert np.isnan(mean)
    assert grad.shape == first.shape
    assert LOSSES[name](first, target, reduction="sum") == 0
    assert LOSSES[name](first, target, reduction="none").shape == target.shape


def test_empty_list_targets_are_class_indices():
    loss = ce.categorical_cross_entropy_with_logits(np.zeros((0, 3)), [], reduction="sum")
    assert loss == 0


@pytest.mark.parametrize("name", LOSSES)
def test_all_masked_batch(rng, name):
    first, target = _problem(rng, name)
    where = np.zeros(target.shape[:1] + ((1,) if name.startswith("binary") else ()), bool)
    mean, grad = LOSSES[name](first, target, where=where, return_grad=True)
    assert np.isnan(mean)
    assert np.all(grad == 0)
    none = LOSSES[name](first, target, where=where, reduction="none")
    assert np.all(none == 0)


@pytest.mark.parametrize("name", LOSSES)
def test_out_receives_the_gradient(rng, name):
    first, target = _problem(rng, name)
    expected = LOSSES[name](first, target, return_grad=True)[1]
    out = np.full_like(first, np.nan)
    _, grad = LOSSES[name](first, target, return_grad=True, out=out)
    assert grad is out
    np.testing.assert_array_equal(out, expected)
    fortran = np.asfortranarray(np.zeros_like(first))
    _, grad = LOSSES[name](first, target, return_grad=True, out=fortran)
    assert grad is fortran
    np.testing.assert_array_equal(fortran, expected)


def test_out_with_another_class_axis(rng):
    logits = rng.normal(size=(3, 4, 5))
    labels = rng.integers(0, 4, size=(3, 5))
    expected = ce.categorical_cross_entropy_with_logits(logits, labels, axis=1, return_grad=True)
    out = np.empty_like(logits)
    _, grad = ce.categorical_cross_entropy_with_logits(
        logits, labels, axis=1, return_grad=True, out=out
    )
    assert grad is out
    np.testing.assert_array_equal(out, expected[1])


@pytest.mark.parametrize(
    ("out", "error", "match"),
    [
        (np.empty((6, 2)), ValueError, "out must have the input's shape"),
        (np.empty((6, 3), dtype=np.float32), TypeError, "out must have the computation dtype"),
        ([[0.0] * 3] * 6, TypeError, "out must be a NumPy array"),
    ],
    ids=["shape", "dtype", "list"],
)
def test_bad_out(rng, out, error, match):
    first, target = _problem(rng, "categorical_logits")
    with pytest.raises(error, match=match):
        ce.categorical_cross_entropy_with_logits(first, target, return_grad=True, out=out)


def test_out_may_not_alias_an_input_or_come_without_return_grad(rng):
    first, target = _problem(rng, "categorical_logits")
    with pytest.raises(ValueError, match="out must not share memory"):
        ce.categorical_cross_entropy_with_logits(first, target, return_grad=True, out=first)
    read_only = np.empty_like(first)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="out must be writeable"):
        ce.categorical_cross_entropy_with_logits(first, target, return_grad=True, out=read_only)
    with pytest.raises(ValueError, match="needs return_grad=True"):
        ce.categorical_cross_entropy_with_logits(first, target, out=np.empty_like(first))
