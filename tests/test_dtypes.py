"""Dtypes in and out, memory layouts, read-only and list inputs, empty and masked batches."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from . import losses


def _problem(rng, loss, n=6, dtype=np.float64):
    """A batch of `n` elements: (n, 3) logits or probabilities and their targets."""
    return loss.make(rng, (n, 3), dtype)


def _as_dtype(loss, first, target, dtype):
    """`first` in `dtype`; as integers or bools, still a valid input of `loss`."""
    if np.dtype(dtype).kind not in "biu":
        return first.astype(dtype)
    if loss.categorical and not loss.from_logits:
        return np.eye(first.shape[-1], dtype=dtype)[target]  # one-hot probabilities
    return (first > 0.5).astype(dtype)


def _rtol(dtype):
    return 2e-6 if np.dtype(dtype).itemsize < 8 else 1e-13


def _assert_results_equal(got, expected):
    for got_part, expected_part in zip(got, expected, strict=True):
        np.testing.assert_array_equal(got_part, expected_part)


DTYPE_TABLE = [
    (np.float16, np.float32),
    (np.float32, np.float32),
    (np.float64, np.float64),
    (np.int64, np.float64),
    (np.int8, np.float64),
    (np.bool_, np.float64),
]


@losses.parametrize(losses.ALL)
@pytest.mark.parametrize(
    ("dtype", "expected"), DTYPE_TABLE, ids=[np.dtype(d).name for d, _ in DTYPE_TABLE]
)
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_dtype_table(rng, loss, dtype, expected, reduction):
    first, target = _problem(rng, loss)
    first = _as_dtype(loss, first, target, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # float16 rows may not sum to 1
        loss_value, grad = loss(first, target, reduction=reduction, return_grad=True)
        computed = loss(first.astype(expected), target, reduction=reduction, return_grad=True)
    assert np.asarray(loss_value).dtype == expected
    assert grad.dtype == expected
    if reduction == "mean":
        assert type(loss_value) is expected  # a NumPy scalar
    # float16 is computed in float32, integers and bools in float64: the same results
    _assert_results_equal((loss_value, grad), computed)
    oracle = loss.oracle(first, target, reduction=reduction)
    np.testing.assert_allclose(loss_value, oracle, rtol=_rtol(expected), atol=1e-15)


@losses.parametrize(losses.ALL)
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int64])
def test_targets_and_weights_of_another_dtype_are_cast_to_the_computation_dtype(rng, loss, dtype):
    first, target = _problem(rng, loss)
    first = _as_dtype(loss, first, target, dtype)
    computation = np.float64 if dtype in (np.float64, np.int64) else np.float32
    other = np.float32 if computation == np.float64 else np.float64
    target = target.astype(np.int32) if loss.categorical else target.astype(other)
    weight = np.linspace(0.5, 2.0, 6).astype(other)
    if not loss.categorical:
        weight = weight[:, None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # float16 rows may not sum to 1
        total, grad = loss(first, target, sample_weight=weight, return_grad=True, reduction="sum")
        out = np.empty(first.shape, computation)
        _, into = loss(first, target, return_grad=True, out=out, sample_weight=weight)
    assert type(total) is computation
    assert grad.dtype == computation
    assert into is out
    oracle = loss.oracle(first, target, sample_weight=weight, reduction="sum")
    np.testing.assert_allclose(total, oracle, rtol=_rtol(computation))


@losses.parametrize(losses.ALL)
def test_layouts_read_only_memmaps_and_lists_give_the_same_values(rng, loss, tmp_path):
    first, target = _problem(rng, loss, n=8)
    weight = np.linspace(0.5, 2.0, 8) if loss.categorical else np.linspace(0.5, 2.0, 8)[:, None]
    options = {"reduction": "none", "sample_weight": weight}
    expected = loss(first, target, return_grad=True, **options)
    oracle = loss.oracle(first, target, **options)
    np.testing.assert_allclose(expected[0], oracle, rtol=1e-13, atol=1e-15)

    read_only = first.copy()
    read_only.flags.writeable = False
    np.save(tmp_path / "first.npy", first)
    mapped = {}
    for label, array in (("first", first), ("target", target)):
        path = tmp_path / f"{label}.bin"
        writer = np.memmap(path, dtype=array.dtype, mode="w+", shape=array.shape)
        writer[...] = array
        writer.flush()
        del writer
        mapped[label] = np.memmap(path, dtype=array.dtype, mode="r", shape=array.shape)
    assert not mapped["first"].flags.writeable
    firsts = {
        "fortran": np.asfortranarray(first),
        "strided": np.repeat(first, 2, axis=0)[::2],
        "read-only": read_only,
        "np.load-memmap": np.load(tmp_path / "first.npy", mmap_mode="r"),
        "np.memmap": mapped["first"],
        "list": first.tolist(),
    }
    for label, variant in firsts.items():
        got = loss(variant, target, return_grad=True, **options)
        _assert_results_equal(got, expected)
        assert not np.shares_memory(got[1], mapped["first"]), label
    for variant in (target.tolist(), mapped["target"]):
        _assert_results_equal(loss(first, variant, return_grad=True, **options), expected)
    lists = loss(
        first.tolist(),
        target.tolist(),
        return_grad=True,
        **options | {"sample_weight": weight.tolist()},
    )
    _assert_results_equal(lists, expected)


@losses.parametrize(losses.ALL)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_contiguous_3d_inputs_and_targets(rng, loss, dtype):
    # Every argument a strided, transposed view; class axis 0 for the categorical losses.
    if loss.categorical:
        base, _ = loss.make(rng, (8, 4, 10), axis=0)
        first = base.astype(dtype)[:, ::2, ::3].transpose(0, 2, 1)  # (8, 4, 2), class axis 0
        target = rng.integers(0, 8, size=(2, 4)).T  # the batch shape (4, 2), transposed
        options = {"axis": 0, "sample_weight": np.ones((2, 8))[:, ::2].T * 1.5}
    else:
        base, _ = loss.make(rng, (8, 10))
        first = base.astype(dtype)[::2, ::3].T  # (4, 4)
        target = (rng.random((8, 8)) > 0.5)[::2, ::2].T
        options = {"pos_weight": np.arange(1.0, 9.0)[::2], "sample_weight": 1.5}
    assert not first.flags.c_contiguous
    got = loss(first, target, reduction="none", return_grad=True, **options)
    contiguous = {
        key: np.ascontiguousarray(value) if isinstance(value, np.ndarray) else value
        for key, value in options.items()
    }
    expected = loss(
        np.ascontiguousarray(first),
        np.ascontiguousarray(target),
        reduction="none",
        return_grad=True,
        **contiguous,
    )
    _assert_results_equal(got, expected)
    assert got[1].dtype == dtype
    oracle = loss.oracle(first, target, reduction="none", **options)
    np.testing.assert_allclose(got[0], oracle, rtol=_rtol(dtype), atol=1e-15)


@losses.parametrize(losses.ALL)
def test_no_option_or_input_is_modified(rng, loss):
    first, target = _problem(rng, loss, n=5)
    if loss.categorical:
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
            "pos_weight": rng.uniform(size=3),
            "sample_weight": rng.uniform(size=(5, 3)),
            "where": rng.random((5, 3)) > 0.3,
            "label_smoothing": 0.2,
        }
        calls = [(first, target, options), (first, target > 0.5, options)]
    for a, b, opts in calls:
        arrays = [a, b, *(v for v in opts.values() if isinstance(v, np.ndarray))]
        copies = [array.copy() for array in arrays]
        for reduction in ("mean", "sum", "none"):
            out = np.empty_like(a)
            loss(a, b, reduction=reduction, return_grad=True, out=out, **opts)
            loss(a, b, reduction=reduction, **opts)
        for array, copy in zip(arrays, copies, strict=True):
            assert array.dtype == copy.dtype
            np.testing.assert_array_equal(array, copy)


def _empty_cases(loss):
    if loss.categorical:
        return [
            (np.zeros((0, 3)), np.zeros(0, np.int64), {}),
            (np.zeros((0, 3)), [], {}),  # an empty list holds class indices
            (np.zeros((2, 0, 3)), np.zeros((2, 0), np.int64), {}),
            (np.zeros((3, 0)), np.zeros(0, np.int64), {"axis": 0}),
            (np.zeros((0, 3)), np.zeros((0, 3)), {"class_weight": [1.0, 2.0, 3.0]}),
        ]
    return [(np.zeros((0,)), np.zeros(0), {}), (np.zeros((4, 0)), np.zeros((4, 0)), {})]


@losses.parametrize(losses.ALL)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_empty_batches_of_every_shape(loss, reduction):
    for first, target, options in _empty_cases(loss):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the mean of nothing is NaN without a warning
            result, grad = loss(first, target, reduction=reduction, return_grad=True, **options)
        assert grad.shape == first.shape
        assert grad.dtype == np.float64
        if reduction == "mean":
            assert np.isnan(result)
            assert isinstance(result, np.float64)
        elif reduction == "sum":
            assert result == 0
            assert isinstance(result, np.float64)
        else:
            assert result.shape == loss.batch_shape(first.shape, options.get("axis", -1))
            assert result.dtype == np.float64


# How everything is left out, and the option it takes.
LEFT_OUT_BY = {
    "where": "where",
    "zero-sample-weights": "sample_weight",
    "zero-class-weights": "class_weight",
    "ignore_index": "ignore_index",
}
LEFT_OUT = [
    (loss, how)
    for loss in losses.ALL
    for how, option in LEFT_OUT_BY.items()
    if option in loss.options
]


@pytest.mark.parametrize(
    ("loss", "how"), LEFT_OUT, ids=[f"{loss.name}-{how}" for loss, how in LEFT_OUT]
)
def test_everything_left_out(rng, loss, how):
    first, target = _problem(rng, loss)
    batch = loss.batch_shape(first.shape)
    if how == "where":
        options = {"where": np.zeros((batch[0],) + (1,) * (len(batch) - 1), bool)}  # broadcasts
    elif how == "zero-sample-weights":
        options = {"sample_weight": np.zeros(batch)}
    elif how == "zero-class-weights":
        options = {"class_weight": np.zeros(first.shape[-1])}
    else:
        target = np.full_like(target, -100)
        options = {"ignore_index": -100}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mean, grad = loss(first, target, return_grad=True, **options)
        total = loss(first, target, reduction="sum", **options)
        none = loss(first, target, reduction="none", **options)
    assert np.isnan(mean)
    assert total == 0
    np.testing.assert_array_equal(grad, 0.0)
    np.testing.assert_array_equal(none, 0.0)
    assert none.shape == batch


@losses.parametrize(losses.ALL)
def test_out_receives_the_gradient_in_any_layout(rng, loss):
    first, target = _problem(rng, loss)
    expected = loss(first, target, return_grad=True)
    backing = np.full((first.shape[0], 2 * first.shape[1]), np.nan)
    outs = {
        "c-contiguous": np.full_like(first, np.nan),
        "fortran": np.asfortranarray(np.full_like(first, np.nan)),
        "strided": backing[:, ::2],
    }
    for label, out in outs.items():
        result, grad = loss(first, target, return_grad=True, out=out)
        assert grad is out, label
        assert result == expected[0], label
        np.testing.assert_array_equal(out, expected[1], err_msg=label)
    assert np.all(np.isnan(backing[:, 1::2]))  # nothing written outside out


@losses.parametrize(losses.CATEGORICAL)
def test_out_with_another_class_axis(rng, loss):
    first, target = loss.make(rng, (3, 4, 5), axis=1)
    expected = loss(first, target, axis=1, return_grad=True)
    out = np.empty_like(first)
    _, grad = loss(first, target, axis=1, return_grad=True, out=out)
    assert grad is out
    np.testing.assert_array_equal(out, expected[1])


@losses.parametrize(losses.ALL)
def test_out_aliasing_any_input_is_refused(rng, loss):
    first, target = _problem(rng, loss)
    if loss.categorical:
        _, soft = loss.make(rng, first.shape, soft=True)
        cases = [
            ("first", first, soft, {}, first),
            ("soft target", first, soft, {}, soft),
            ("view of first", first, target, {}, None),
        ]
    else:
        weights = np.ones_like(first)
        cases = [
            ("first", first, target, {}, first),
            ("target", first, target, {}, target),
            ("pos_weight", first, target, {"pos_weight": weights}, weights),
            ("sample_weight", first, target, {"sample_weight": weights}, weights),
        ]
    for label, given, b, options, aliased in cases:
        a, alias = given, aliased
        if alias is None:
            # out overlaps first only partly, through a view of a larger buffer
            big = np.concatenate([given, given])
            a, alias = big[: len(given)], big[len(given) // 2 : len(given) // 2 + len(given)]
        copies = [np.array(a, copy=True), np.array(b, copy=True)]
        with pytest.raises(ValueError, match="out must not share memory"):
            loss(a, b, return_grad=True, out=alias, **options)
        np.testing.assert_array_equal(a, copies[0], err_msg=label)
        np.testing.assert_array_equal(b, copies[1], err_msg=label)


@losses.parametrize(losses.ALL)
@pytest.mark.parametrize(
    ("dtype", "out_dtype"),
    [
        (np.float16, np.float16),
        (np.float32, np.float64),
        (np.float64, np.float32),
        (np.int64, np.int64),
    ],
)
def test_out_of_the_wrong_dtype_is_refused(rng, loss, dtype, out_dtype):
    first, target = _problem(rng, loss)
    first = _as_dtype(loss, first, target, dtype)
    out = np.zeros(first.shape, out_dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # float16 rows may not sum to 1
        with pytest.raises(TypeError, match="out must have the computation dtype"):
            loss(first, target, return_grad=True, out=out)
    np.testing.assert_array_equal(out, 0)
