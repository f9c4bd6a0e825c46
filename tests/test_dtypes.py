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


@pytest.mark.parametrize("name", LOSSES)
def test_read_only_np_memmap_inputs(rng, name, tmp_path):
    first, target = _problem(rng, name, n=8)
    expected = LOSSES[name](first, target, reduction="none", return_grad=True)
    mapped = []
    for label, array in (("first", first), ("target", target)):
        path = tmp_path / f"{label}.bin"
        writer = np.memmap(path, dtype=array.dtype, mode="w+", shape=array.shape)
        writer[...] = array
        writer.flush()
        del writer
        mapped.append(np.memmap(path, dtype=array.dtype, mode="r", shape=array.shape))
    assert not mapped[0].flags.writeable
    got = LOSSES[name](*mapped, reduction="none", return_grad=True)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    assert not isinstance(got[1], np.memmap) or not np.shares_memory(got[1], mapped[0])


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_contiguous_3d_inputs_and_targets(rng, name, dtype):
    # Every argument a strided, transposed view; class axis 0 for the categorical losses.
    if name.startswith("categorical"):
        base = rng.normal(size=(8, 4, 10))
        if name.endswith("probs"):
            base = np.exp(base) / np.exp(base).sum(axis=0, keepdims=True)
        first = base.astype(dtype)[:, ::2, ::3].transpose(0, 2, 1)  # (8, 4, 2), class axis 0
        target = rng.integers(0, 8, size=(2, 4)).T  # the batch shape (4, 2), transposed
        options = {"axis": 0, "sample_weight": np.ones((2, 8))[:, ::2].T * 1.5}
    else:
        base = rng.normal(size=(8, 10))
        if name.endswith("probs"):
            base = 1 / (1 + np.exp(-base))
        first = base.astype(dtype)[::2, ::3].T  # (4, 4)
        target = (rng.random((8, 8)) > 0.5)[::2, ::2].T
        options = {"pos_weight": np.arange(1.0, 9.0)[::2], "sample_weight": 1.5}
    assert not first.flags.c_contiguous
    got = LOSSES[name](first, target, reduction="none", return_grad=True, **options)
    contiguous = {
        key: np.ascontiguousarray(value) if isinstance(value, np.ndarray) else value
        for key, value in options.items()
    }
    expected = LOSSES[name](
        np.ascontiguousarray(first),
        np.ascontiguousarray(target),
        reduction="none",
        return_grad=True,
        **contiguous,
    )
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    assert got[1].dtype == dtype


@pytest.mark.parametrize("name", LOSSES)
def test_python_lists_and_scalars(rng, name):
    first, target = _problem(rng, name, n=3)
    expected = LOSSES[name](first, target, reduction="none", return_grad=True)
    got = LOSSES[name](first.tolist(), target.tolist(), reduction="none", return_grad=True)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    weight = [0.5, 1.0, 2.0] if name.startswith("categorical") else [[0.5], [1.0], [2.0]]
    np.testing.assert_array_equal(
        LOSSES[name](first.tolist(), target.tolist(), sample_weight=weight),
        LOSSES[name](first, target, sample_weight=np.array(weight)),
    )


@pytest.mark.parametrize("name", LOSSES)
def test_no_option_or_input_is_modified(rng, name):
    first, target = _problem(rng, name, n=5)
    if name.startswith("categorical"):
        soft = rng.dirichlet(np.ones(3), size=5)
        options = {
            "class_weight": np.array([0.5, 1.0, 2.0]),
            "sample_weight": rng.uniform(size=5),
            "where": np.array([True, False, True, True, False]),
            "label_smoothing": 0.2,
        }
        calls = [(first, target, {**options, "ignore_index": 1}), (first, soft, options)]
    else:
        options = {
            "pos_weight": rng.uniform(size=2),
            "sample_weight": rng.uniform(size=(5, 2)),
            "where": rng.random((5, 2)) > 0.3,
            "label_smoothing": 0.2,
        }
        calls = [(first, target, options), (first, target > 0.5, options)]
    for a, b, opts in calls:
        arrays = [a, b, *(v for v in opts.values() if isinstance(v, np.ndarray))]
        copies = [array.copy() for array in arrays]
        for reduction in ("mean", "sum", "none"):
            out = np.empty_like(a)
            LOSSES[name](a, b, reduction=reduction, return_grad=True, out=out, **opts)
            LOSSES[name](a, b, reduction=reduction, **opts)
        for array, copy in zip(arrays, copies, strict=True):
            assert array.dtype == copy.dtype
            np.testing.assert_array_equal(array, copy)


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int64])
def test_gradient_has_the_computation_dtype_with_mixed_arguments(rng, name, dtype):
    first, target = _problem(rng, name)
    if dtype == np.int64:
        first = (first > 0.5).astype(dtype)
        if name == "categorical_probs":
            first = np.eye(3, dtype=dtype)[target]
    else:
        first = first.astype(dtype)
    computation = np.float64 if dtype in (np.float64, np.int64) else np.float32
    # targets and weights in another dtype are cast to the computation dtype
    weight = np.ones(first.shape[:1] + ((1,) if name.startswith("binary") else ()), np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # float16 rows may not sum to 1
        loss, grad = LOSSES[name](
            first, target, sample_weight=weight, return_grad=True, reduction="sum"
        )
        out = np.empty(first.shape, computation)
        _, into = LOSSES[name](first, target, return_grad=True, out=out, sample_weight=weight)
    assert type(loss) is computation
    assert grad.dtype == computation
    assert into is out


@pytest.mark.parametrize("name", LOSSES)
def test_float16_gives_the_float32_result(rng, name):
    first, target = _problem(rng, name)
    first16 = first.astype(np.float16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        got = LOSSES[name](first16, target, reduction="none", return_grad=True)
        expected = LOSSES[name](
            first16.astype(np.float32), target, reduction="none", return_grad=True
        )
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    assert got[0].dtype == got[1].dtype == np.float32


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_empty_batches_of_every_shape(name, reduction):
    if name.startswith("categorical"):
        cases = [
            (np.zeros((0, 3)), np.zeros(0, np.int64), {}),
            (np.zeros((2, 0, 3)), np.zeros((2, 0), np.int64), {}),
            (np.zeros((3, 0)), np.zeros(0, np.int64), {"axis": 0}),
            (np.zeros((0, 3)), np.zeros((0, 3)), {"class_weight": [1.0, 2.0, 3.0]}),
        ]
    else:
        cases = [(np.zeros((0,)), np.zeros(0), {}), (np.zeros((4, 0)), np.zeros((4, 0)), {})]
    for first, target, options in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            loss, grad = LOSSES[name](
                first, target, reduction=reduction, return_grad=True, **options
            )
        assert grad.shape == first.shape
        assert grad.dtype == np.float64
        if reduction == "mean":
            assert np.isnan(loss)
            assert isinstance(loss, np.float64)
        elif reduction == "sum":
            assert loss == 0
            assert isinstance(loss, np.float64)
        else:
            expected_shape = target.shape if target.dtype.kind == "i" else target.shape[:-1]
            if name.startswith("binary"):
                expected_shape = first.shape
            assert loss.shape == expected_shape
            assert loss.dtype == np.float64


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("how", ["where", "zero-weights", "ignore_index"])
def test_everything_left_out(rng, name, how):
    first, target = _problem(rng, name)
    batch = target.shape  # labels of the batch shape; binary targets of the input's shape
    if how == "where":
        options = {"where": np.zeros(batch, bool)}
    elif how == "zero-weights":
        options = {"sample_weight": np.zeros(batch)}
    else:
        if name.startswith("binary"):
            pytest.skip("ignore_index is categorical")
        target = np.full_like(target, -100)
        options = {"ignore_index": -100}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mean, grad = LOSSES[name](first, target, return_grad=True, **options)
        total = LOSSES[name](first, target, reduction="sum", **options)
        none = LOSSES[name](first, target, reduction="none", **options)
    assert np.isnan(mean)
    assert total == 0
    np.testing.assert_array_equal(grad, 0.0)
    np.testing.assert_array_equal(none, 0.0)


@pytest.mark.parametrize("name", LOSSES)
def test_out_shares_memory_and_may_be_non_contiguous(rng, name):
    first, target = _problem(rng, name)
    expected = LOSSES[name](first, target, return_grad=True, reduction="sum")[1]
    backing = np.full((first.shape[0], 2 * first.shape[1]), np.nan)
    out = backing[:, ::2]
    _, grad = LOSSES[name](first, target, return_grad=True, reduction="sum", out=out)
    assert grad is out
    assert np.shares_memory(grad, backing)
    np.testing.assert_array_equal(out, expected)
    assert np.all(np.isnan(backing[:, 1::2]))  # nothing written outside out


@pytest.mark.parametrize("name", LOSSES)
def test_out_aliasing_any_input_is_refused(rng, name):
    first, target = _problem(rng, name)
    float_target = target.astype(np.float64) if name.startswith("binary") else None
    if name.startswith("categorical"):
        soft = rng.dirichlet(np.ones(3), size=first.shape[0])
        if name.endswith("probs"):
            first = rng.dirichlet(np.ones(3), size=first.shape[0])
        cases = [
            ("first", first, soft, {}, first),
            ("soft target", first, soft, {}, soft),
            ("view of first", first, target, {}, None),
        ]
    else:
        weights = np.ones_like(first)
        cases = [
            ("first", first, float_target, {}, first),
            ("target", first, float_target, {}, float_target),
            ("pos_weight", first, float_target, {"pos_weight": weights}, weights),
            ("sample_weight", first, float_target, {"sample_weight": weights}, weights),
        ]
    for label, given, b, options, aliased in cases:
        a, alias = given, aliased
        if alias is None:
            # out overlaps first only partly, through a view of a larger buffer
            big = np.concatenate([given, given])
            a, alias = big[: len(given)], big[len(given) // 2 : len(given) // 2 + len(given)]
        copies = [np.array(a, copy=True), np.array(b, copy=True)]
        with pytest.raises(ValueError, match="out must not share memory"):
            LOSSES[name](a, b, return_grad=True, out=alias, **options)
        np.testing.assert_array_equal(a, copies[0], err_msg=label)
        np.testing.assert_array_equal(b, copies[1], err_msg=label)


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize(
    ("dtype", "out_dtype"),
    [
        (np.float16, np.float16),
        (np.float32, np.float64),
        (np.float64, np.float32),
        (np.int64, np.int64),
    ],
)
def test_out_of_the_wrong_dtype_is_refused(rng, name, dtype, out_dtype):
    first, target = _problem(rng, name)
    first = first.astype(dtype) if dtype != np.int64 else (first > 0.5).astype(dtype)
    if name == "categorical_probs" and dtype == np.int64:
        first = np.eye(3, dtype=dtype)[target]
    out = np.zeros(first.shape, out_dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(TypeError, match="out must have the computation dtype"):
            LOSSES[name](first, target, return_grad=True, out=out)
    np.testing.assert_array_equal(out, 0)
