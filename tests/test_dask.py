"""The losses on Dask arrays give the values of the NumPy path on the same data."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import crossentropy as ce

from . import losses

da = pytest.importorskip("dask.array")

RTOL = 1e-12


def _assert_close(computed, expected):
    """Compare a computed result (a value or a (loss, grad) pair) with the NumPy one."""
    if isinstance(expected, tuple):
        for got, want in zip(computed, expected, strict=True):
            np.testing.assert_allclose(got, want, rtol=RTOL, atol=1e-300)
    else:
        np.testing.assert_allclose(computed, expected, rtol=RTOL, atol=1e-300)


def _chunked_problem(rng, loss, *, soft):
    """NumPy and Dask arguments of every kind, the Dask ones in uneven chunks.

    Categorical: inputs (7, 4, 5, 6) with the class axis 1, split too; binary: (9, 5, 3).
    """
    if loss.categorical:
        first, target = loss.make(rng, (7, 4, 5, 6), soft=soft, axis=1)
        options = {
            "axis": 1,
            "class_weight": rng.uniform(0.2, 2.0, size=4),
            "sample_weight": rng.uniform(0.0, 2.0, size=(7, 1, 6)),
            "where": rng.random((7, 5, 6)) > 0.2,
            "label_smoothing": 0.1,
        }
        if not soft:
            options["ignore_index"] = 3
        first_chunks = (3, 2, 2, 4)
        target_chunks = (4, 3, 2, 4) if soft else (2, 3, 5)
        lazy_option = "sample_weight"
    else:
        first, target = loss.make(rng, (9, 5, 3), soft=soft)
        options = {
            "pos_weight": rng.uniform(0.5, 3.0, size=3),
            "sample_weight": rng.uniform(0.0, 2.0, size=(9, 1, 1)),
            "where": rng.random((9, 5, 3)) > 0.1,
            "label_smoothing": 0.2,
        }
        first_chunks, target_chunks = (4, 2, 3), (5, 5, 1)
        lazy_option = "where"
    lazy = (
        da.from_array(first, chunks=first_chunks),
        da.from_array(target, chunks=target_chunks),
        {**options, lazy_option: da.from_array(options[lazy_option], chunks=2)},
    )
    return (first, target, options), lazy


@losses.parametrize(losses.ALL)
@pytest.mark.parametrize("soft", [False, True], ids=["hard-targets", "soft-targets"])
def test_every_reduction_with_and_without_gradient_matches_numpy(rng, loss, soft):
    (first, target, options), (lazy_first, lazy_target, lazy_options) = _chunked_problem(
        rng, loss, soft=soft
    )
    expected, results = [], []
    for reduction in ("mean", "sum", "none"):
        for return_grad in (False, True):
            call = {**options, "reduction": reduction, "return_grad": return_grad}
            expected.append(loss(first, target, **call))
            result = loss(lazy_first, lazy_target, **{**call, **lazy_options})
            for part in result if return_grad else (result,):
                assert isinstance(part, da.Array)
            if return_grad:
                assert result[1].shape == first.shape
                assert result[1].chunks[0] == lazy_first.chunks[0]  # chunked like the input
                if loss.categorical:
                    assert result[1].chunks[1] == (4,)  # the class axis in one chunk
            results.append(result)
    for computed, numpy_result in zip(da.compute(*results), expected, strict=True):
        _assert_close(computed, numpy_result)


def _mixes(rng, loss):
    """The NumPy call, and the same call with each argument in turn a Dask array."""
    first, target = loss.make(rng, (20, 3))
    batch = loss.batch_shape(first.shape)
    weight_option = "class_weight" if loss.categorical else "pos_weight"
    options = {
        "sample_weight": rng.uniform(0, 2, batch),
        "where": rng.random(batch) > 0.2,
        weight_option: rng.uniform(0.5, 2, 3),
    }
    mixes = {
        "first": (da.from_array(first, chunks=7), target, options),
        "target": (first, da.from_array(target, chunks=7), options),
    }
    for key, value in options.items():
        mixes[key] = (first, target, {**options, key: da.from_array(value, chunks=7)})
    return (first, target, options), mixes


@losses.parametrize(losses.ALL)
def test_any_mix_of_numpy_and_dask_arguments(rng, loss):
    (first, target, options), mixes = _mixes(rng, loss)
    for reduction in ("mean", "none"):
        expected = loss(first, target, reduction=reduction, return_grad=True, **options)
        results = {
            label: loss(a, b, reduction=reduction, return_grad=True, **opts)
            for label, (a, b, opts) in mixes.items()
        }
        for label, result in results.items():
            assert isinstance(result[0], da.Array), label
        for computed, label in zip(da.compute(*results.values()), results, strict=True):
            for got, want in zip(computed, expected, strict=True):
                np.testing.assert_allclose(got, want, rtol=RTOL, err_msg=f"{label} {reduction}")


@losses.parametrize(losses.ALL)
def test_mean_of_nothing_is_nan_with_zero_gradient(rng, loss):
    first, target = loss.make(rng, (6, 3))
    where = np.zeros(loss.batch_shape(first.shape), dtype=bool)
    mean, grad = loss(da.from_array(first, chunks=2), target, where=where, return_grad=True)
    mean, grad = da.compute(mean, grad)
    assert np.isnan(mean)
    np.testing.assert_array_equal(grad, 0.0)


@losses.parametrize(losses.ALL)
def test_float32_stays_float32(rng, loss):
    first, target = loss.make(rng, (10, 4), np.float32)
    value, grad = loss(da.from_array(first, chunks=3), target, return_grad=True)
    assert value.dtype == np.float32
    assert grad.dtype == np.float32
    computed, computed_grad = da.compute(value, grad)
    assert computed.dtype == np.float32
    assert computed_grad.dtype == np.float32
    expected = loss(first, target, return_grad=True)
    np.testing.assert_allclose(computed, expected[0], rtol=1e-6)
    np.testing.assert_allclose(computed_grad, expected[1], rtol=1e-6)


def _data_errors(loss, first, target):
    """Calls whose error needs the data: (what the message says, first, target, options)."""
    weight = np.ones(loss.batch_shape(first.shape))
    weight.flat[3] = -1.0
    errors = [("sample_weight must be >= 0", first, target, {"sample_weight": weight})]
    if loss.categorical:
        labels = target.copy()
        labels[3] = 7
        errors.append((r"class index 7, outside \[0, 3\)", first, labels, {}))
    else:
        errors.append(("must hold only 0 and 1, got 2", first, target.astype(np.int64) * 2, {}))
    if not loss.from_logits:
        outside = first.copy()
        outside[3, 1] = 1.5
        errors.append((r"probs must lie in \[0, 1\]", outside, target, {}))
    return errors


@losses.parametrize(losses.ALL)
def test_data_errors_are_raised_on_compute_with_the_numpy_message(rng, loss):
    first, target = loss.make(rng, (6, 3))
    for match, a, b, options in _data_errors(loss, first, target):
        with pytest.raises(ValueError, match=match) as numpy_error:
            loss(a, b, **options)
        lazy = {key: da.from_array(value, chunks=2) for key, value in options.items()}
        result = loss(da.from_array(a, chunks=2), da.from_array(b, chunks=2), **lazy)
        with pytest.raises(ValueError, match=match) as dask_error:
            result.compute()
        assert str(dask_error.value) == str(numpy_error.value)


def _argument_errors(loss):
    """Calls whose error needs no data: {label: (first, target, options)}."""
    rng = np.random.default_rng(0)
    first, target = loss.make(rng, (6, 3))
    cases = {
        "reduction": (first, target, {"reduction": "avg"}),
        "label_smoothing": (first, target, {"label_smoothing": 1.5}),
        "label_smoothing-string": (first, target, {"label_smoothing": "0.1"}),
        "sample_weight-shape": (first, target, {"sample_weight": np.ones(4)}),
        "where-shape": (first, target, {"where": np.ones(4, bool)}),
        "target-shape": (first, target[:5], {}),
        "out-without-return_grad": (first, target, {"out": np.empty(first.shape)}),
        "first-dtype": (first.astype(complex), target, {}),
        "target-dtype": (first, target.astype(str), {}),
        "sample_weight-dtype": (first, target, {"sample_weight": "heavy"}),
        "where-dtype": (first, target, {"where": 1.0}),
    }
    if "eps" in loss.options:
        cases["eps"] = (first, target, {"eps": 0.7})
    if "z_loss" in loss.options:
        cases["z_loss"] = (first, target, {"z_loss": -1.0})
        cases["z_loss-bool"] = (first, target, {"z_loss": False})
        cases["softcap"] = (first, target, {"softcap": 0.0})
        cases["softcap-string"] = (first, target, {"softcap": "30"})
    if loss.categorical:
        _, soft = loss.make(rng, (6, 3), soft=True)
        cases |= {
            "zero-d-input": (first[0, 0], np.int64(0), {}),
            "axis": (first, target, {"axis": 2}),
            "axis-bool": (first, target, {"axis": True}),
            "class_weight-length": (first, target, {"class_weight": [1.0, 2.0]}),
            "class_weight-negative": (first, target, {"class_weight": [1.0, -1.0, 1.0]}),
            "ignore_index-float": (first, target, {"ignore_index": 1.0}),
            "ignore_index-with-probability-targets": (first, soft, {"ignore_index": 1}),
            "soft-target-shape": (first, soft[:, :2], {}),
            "float-labels": (first, target.astype(float), {}),
            "bool-labels": (first, target.astype(bool), {}),
        }
    else:
        cases["pos_weight-shape"] = (first, target, {"pos_weight": np.ones(4)})
        cases["target-transposed"] = (first, target.T, {})
    return cases


ARGUMENT_ERRORS = [
    pytest.param(
        loss,
        (first, target, options),
        id=f"{loss.name}-{label}",
    )
    for loss in losses.ALL
    for label, (first, target, options) in _argument_errors(loss).items()
]


@pytest.mark.parametrize(("loss", "call"), ARGUMENT_ERRORS)
def test_argument_errors_are_raised_at_once_with_the_numpy_message(loss, call):
    first, target, options = call
    with pytest.raises((TypeError, ValueError)) as numpy_error:
        loss(first, target, **options)
    with pytest.raises(numpy_error.type) as dask_error:
        loss(da.from_array(first, chunks=2), target, **options)  # nothing computed
    assert str(dask_error.value) == str(numpy_error.value)


@losses.parametrize(losses.ALL)
def test_out_is_refused(rng, loss):
    first, target = loss.make(rng, (6, 3))
    with pytest.raises(TypeError, match="out is not supported with Dask arrays"):
        loss(da.from_array(first, chunks=2), target, return_grad=True, out=np.empty(first.shape))


def test_chunks_run_on_one_thread(rng):
    import dataclasses

    from crossentropy import _dask
    from crossentropy._categorical import _LOGITS

    seen = []

    def kernel(call):
        seen.append(ce.get_num_threads())
        return _LOGITS.kernel(call)

    with ce.num_threads(2):
        outcome = _dask._evaluate_chunk(
            rng.normal(size=(4, 3)),
            np.zeros(4, dtype=int),
            loss=dataclasses.replace(_LOGITS, kernel=kernel),
            per_element_names=(),
            options={
                "reduction": "sum",
                "class_weight": None,
                "where": None,
                "sample_weight": None,
                "ignore_index": None,
                "label_smoothing": 0.0,
                "axis": -1,
            },
            return_grad=False,
            return_hess=False,
            part="outcome",
        )
    assert seen == [1]
    assert outcome.total == 4


def test_many_chunks_are_added_as_a_tree(rng):
    # 300 chunks: two levels of partial sums before the last task, for the loss alone
    # (mean) and for the loss with its gradient (sum).
    logits = rng.normal(size=(300, 5)) * 4
    labels = rng.integers(0, 5, size=300)
    weights = rng.uniform(0, 2, size=300)
    lazy = (da.from_array(logits, chunks=1), da.from_array(labels, chunks=1))
    expected, results = [], []
    for reduction, return_grad in (("mean", False), ("sum", True)):
        options = {"reduction": reduction, "sample_weight": weights, "return_grad": return_grad}
        expected.append(ce.categorical_cross_entropy_with_logits(logits, labels, **options))
        result = ce.categorical_cross_entropy_with_logits(*lazy, **options)
        loss = result[0] if return_grad else result
        graph = dict(loss.__dask_graph__())
        assert sum(str(key[0]).startswith("crossentropy-add-") for key in graph) == 19 + 2
        results.append(result)
    for computed, numpy_result in zip(da.compute(*results), expected, strict=True):
        _assert_close(computed, numpy_result)


def test_loss_and_gradient_computed_together_share_the_chunk_tasks(rng, monkeypatch):
    from crossentropy import _dask

    calls = []
    chunk = _dask._evaluate_chunk

    def counting(*args, **kwargs):
        calls.append(1)
        return chunk(*args, **kwargs)

    monkeypatch.setattr(_dask, "_evaluate_chunk", counting)
    logits = rng.normal(size=(20, 3))
    labels = rng.integers(0, 3, size=20)
    expected = ce.categorical_cross_entropy_with_logits(logits, labels, return_grad=True)
    result = ce.categorical_cross_entropy_with_logits(
        da.from_array(logits, chunks=5), labels, return_grad=True
    )
    _assert_close(da.compute(*result), expected)
    assert len(calls) == 4


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_no_task_gathers_the_outcomes_of_several_chunks(rng, reduction):
    # Only the small (sum, D) pairs may meet in one task; a chunk's gradient stays put.
    from dask.core import get_dependencies

    logits = da.from_array(rng.normal(size=(40, 3)), chunks=2)
    loss, grad = ce.categorical_cross_entropy_with_logits(
        logits, rng.integers(0, 3, size=40), reduction=reduction, return_grad=True
    )
    graph = {**dict(loss.__dask_graph__()), **dict(grad.__dask_graph__())}
    outcomes = {key for key in graph if str(key[0]).startswith("crossentropy-outcome-")}
    assert len(outcomes) == 20
    for key in graph:
        assert len(get_dependencies(graph, key) & outcomes) <= 1, key


def test_importing_the_package_or_calling_a_loss_does_not_import_dask():
    code = (
        "import sys, crossentropy as ce; "
        "ce.categorical_cross_entropy_with_logits([[0.0, 1.0]], [1]); "
        "ce.binary_cross_entropy([0.25], [1.0]); "
        "print('dask' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def _cluster_problem(rng, loss):
    """NumPy arguments of 300 elements, and the chunks of the lazy input and target."""
    if loss.categorical:
        first, target = loss.make(rng, (300, 7, 2), axis=1)
        options = {"axis": 1, "class_weight": rng.uniform(0.5, 2, size=7), "label_smoothing": 0.1}
        chunks = (70, 7, 1), (45, 2)
    else:
        first, target = loss.make(rng, (300, 3))
        options = {"pos_weight": rng.uniform(0.5, 2, size=3)}
        chunks = (70, 2), (45, 3)
    batch = loss.batch_shape(first.shape, options.get("axis", -1))
    options["sample_weight"] = rng.uniform(0, 1, size=(300,) + (1,) * (len(batch) - 1))
    options["where"] = rng.random(batch) > 0.2
    return first, target, options, chunks


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_every_loss_on_a_local_cluster_of_two_worker_processes(rng):
    distributed = pytest.importorskip("distributed")
    expected, results = [], []
    for loss in losses.ALL:
        first, target, options, (chunks, target_chunks) = _cluster_problem(rng, loss)
        lazy = (da.from_array(first, chunks=chunks), da.from_array(target, chunks=target_chunks))
        for reduction in ("mean", "none"):  # the sum is the mean's tree without its last step
            expected.append(loss(first, target, reduction=reduction, return_grad=True, **options))
            results.append(loss(*lazy, reduction=reduction, return_grad=True, **options))
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",  # any free port: several clusters may run at once
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        computed = client.compute(results, sync=True)
    for computed_result, numpy_result in zip(computed, expected, strict=True):
        _assert_close(tuple(computed_result), numpy_result)
