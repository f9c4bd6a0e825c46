"""The losses on Dask arrays give the values of the NumPy path on the same data."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import crossentropy as ce

da = pytest.importorskip("dask.array")

RTOL = 1e-12


@pytest.fixture
def rng():
    return np.random.default_rng(20261125)


CATEGORICAL = [ce.categorical_cross_entropy_with_logits, ce.categorical_cross_entropy]
BINARY = [ce.binary_cross_entropy_with_logits, ce.binary_cross_entropy]


def _categorical_case(rng, loss, *, soft):
    """Inputs of shape (7, 4, 5, 6) with the class axis 1, and uneven chunks."""
    shape = (7, 4, 5, 6)
    if loss is ce.categorical_cross_entropy_with_logits:
        first = rng.normal(size=shape) * 3
    else:
        first = np.moveaxis(rng.dirichlet(np.ones(4), size=(7, 5, 6)), -1, 1)
    if soft:
        target = np.moveaxis(rng.dirichlet(np.ones(4), size=(7, 5, 6)), -1, 1)
    else:
        target = rng.integers(0, 4, size=(7, 5, 6))
    return first, target


def _compare(numpy_result, dask_result, *, scheduler="threads"):
    computed = da.compute(dask_result, scheduler=scheduler)[0]
    if isinstance(numpy_result, tuple):
        for expected, got in zip(numpy_result, computed, strict=True):
            np.testing.assert_allclose(got, expected, rtol=RTOL, atol=1e-300)
    else:
        np.testing.assert_allclose(computed, numpy_result, rtol=RTOL, atol=1e-300)


@pytest.mark.parametrize("loss", CATEGORICAL, ids=lambda f: f.__name__)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("soft", [False, True], ids=["labels", "soft"])
@pytest.mark.parametrize("return_grad", [False, True], ids=["loss", "grad"])
def test_categorical_matches_numpy(rng, loss, reduction, soft, return_grad):
    first, target = _categorical_case(rng, loss, soft=soft)
    options = {
        "axis": 1,
        "reduction": reduction,
        "class_weight": rng.uniform(0.2, 2.0, size=4),
        "sample_weight": rng.uniform(0.0, 2.0, size=(7, 1, 6)),
        "where": rng.random((7, 5, 6)) > 0.2,
        "label_smoothing": 0.1,
        "return_grad": return_grad,
    }
    if not soft:
        options["ignore_index"] = 3
    expected = loss(first, target, **options)
    lazy_first = da.from_array(first, chunks=(3, 2, 2, 4))  # the class axis is split too
    chunks = (3, 2, 4) if soft else (2, 3, 5)
    lazy_target = da.from_array(target, chunks=(4, *chunks) if soft else chunks)
    dask_options = {**options, "sample_weight": da.from_array(options["sample_weight"], 2)}
    result = loss(lazy_first, lazy_target, **dask_options)
    for part in result if return_grad else (result,):
        assert isinstance(part, da.Array)
    if return_grad:
        assert result[1].shape == first.shape
        assert result[1].chunks[0] == (3, 3, 1)  # chunked like the input
        assert result[1].chunks[1] == (4,)  # the class axis in one chunk
    _compare(expected, result)


@pytest.mark.parametrize("loss", BINARY, ids=lambda f: f.__name__)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("return_grad", [False, True], ids=["loss", "grad"])
def test_binary_matches_numpy(rng, loss, reduction, return_grad):
    shape = (9, 5, 3)
    if loss is ce.binary_cross_entropy_with_logits:
        first = rng.normal(size=shape) * 4
    else:
        first = rng.uniform(0.01, 0.99, size=shape)
    target = rng.random(shape)
    options = {
        "reduction": reduction,
        "pos_weight": rng.uniform(0.5, 3.0, size=3),
        "sample_weight": rng.uniform(0.0, 2.0, size=(9, 1, 1)),
        "where": rng.random(shape) > 0.1,
        "label_smoothing": 0.2,
        "return_grad": return_grad,
    }
    expected = loss(first, target, **options)
    result = loss(
        da.from_array(first, chunks=(4, 2, 3)),
        da.from_array(target, chunks=(5, 5, 1)),
        **{**options, "where": da.from_array(options["where"], chunks=2)},
    )
    _compare(expected, result)


def test_numpy_first_argument_with_dask_target(rng):
    logits = rng.normal(size=(20, 3))
    labels = rng.integers(0, 3, size=20)
    expected = ce.categorical_cross_entropy_with_logits(logits, labels)
    result = ce.categorical_cross_entropy_with_logits(logits, da.from_array(labels, chunks=7))
    _compare(expected, result)


def test_mean_of_nothing_is_nan_with_zero_gradient(rng):
    logits = da.from_array(rng.normal(size=(6, 3)), chunks=2)
    loss, grad = ce.categorical_cross_entropy_with_logits(
        logits, np.zeros(6, dtype=int), where=np.zeros(6, dtype=bool), return_grad=True
    )
    assert np.isnan(loss.compute())
    assert np.all(grad.compute() == 0)


def test_float32_stays_float32(rng):
    logits = da.from_array(rng.normal(size=(10, 4)).astype(np.float32), chunks=3)
    loss, grad = ce.categorical_cross_entropy_with_logits(
        logits, rng.integers(0, 4, size=10), return_grad=True
    )
    assert loss.dtype == np.float32
    assert loss.compute().dtype == np.float32
    assert grad.compute().dtype == np.float32


def test_data_errors_are_raised_on_compute_with_the_numpy_message(rng):
    labels = np.array([0, 1, 2, 7, 1, 0])
    result = ce.categorical_cross_entropy_with_logits(
        da.from_array(rng.normal(size=(6, 3)), chunks=2), da.from_array(labels, chunks=2)
    )
    with pytest.raises(ValueError, match=r"class index 7, outside \[0, 3\)"):
        result.compute()
    probs = da.from_array(np.array([0.2, 1.5, 0.3]), chunks=1)
    with pytest.raises(ValueError, match=r"probs must lie in \[0, 1\]"):
        ce.binary_cross_entropy(probs, np.ones(3)).compute()


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"reduction": "avg"}, ValueError, "reduction must be one of"),
        ({"axis": 2}, ValueError, "axis 2 is out of range"),
        ({"label_smoothing": 1.5}, ValueError, r"label_smoothing must be in \[0, 1\]"),
        ({"class_weight": [1.0, 2.0]}, ValueError, r"class_weight must have shape \(3,\)"),
        ({"sample_weight": np.ones(4)}, ValueError, "sample_weight of shape"),
    ],
    ids=["reduction", "axis", "label_smoothing", "class_weight", "sample_weight"],
)
def test_option_errors_are_raised_at_once(rng, options, error, match):
    logits = da.from_array(rng.normal(size=(6, 3)), chunks=2)
    with pytest.raises(error, match=match):
        ce.categorical_cross_entropy_with_logits(logits, np.zeros(6, dtype=int), **options)


def test_target_shape_mismatch_is_raised_at_once(rng):
    logits = da.from_array(rng.normal(size=(6, 3)), chunks=2)
    with pytest.raises(ValueError, match=r"must have shape \(6,\)"):
        ce.categorical_cross_entropy_with_logits(logits, np.zeros(5, dtype=int))


def test_out_is_refused(rng):
    logits = da.from_array(rng.normal(size=(6, 3)), chunks=2)
    with pytest.raises(TypeError, match="out is not supported with Dask arrays"):
        ce.categorical_cross_entropy_with_logits(
            logits, np.zeros(6, dtype=int), return_grad=True, out=np.empty((6, 3))
        )


def test_chunks_run_on_one_thread(rng, monkeypatch):
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
            part="outcome",
        )
    assert seen == [1]
    assert outcome.total == 4


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("return_grad", [False, True], ids=["loss", "grad"])
def test_many_chunks_are_added_as_a_tree(rng, reduction, return_grad):
    # 300 chunks: two levels of partial sums before the last task.
    logits = rng.normal(size=(300, 5)) * 4
    labels = rng.integers(0, 5, size=300)
    weights = rng.uniform(0, 2, size=300)
    options = {"reduction": reduction, "sample_weight": weights, "return_grad": return_grad}
    expected = ce.categorical_cross_entropy_with_logits(logits, labels, **options)
    result = ce.categorical_cross_entropy_with_logits(
        da.from_array(logits, chunks=1), da.from_array(labels, chunks=1), **options
    )
    loss = result[0] if return_grad else result
    graph = dict(loss.__dask_graph__())
    assert sum(str(key[0]).startswith("crossentropy-add-") for key in graph) == 19 + 2
    _compare(expected, result)


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
    _compare(expected, result)
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


def test_importing_the_package_does_not_import_dask():
    code = "import sys, crossentropy; print('dask' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


@pytest.fixture(scope="module")
def cluster_client():
    distributed = pytest.importorskip("distributed")
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
        yield client


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_local_cluster_of_two_worker_processes(rng, cluster_client, reduction):
    logits = rng.normal(size=(300, 7, 2))
    labels = rng.integers(0, 7, size=(300, 2))
    weights = rng.uniform(0, 1, size=(300, 1))
    expected = ce.categorical_cross_entropy_with_logits(
        logits, labels, axis=1, sample_weight=weights, reduction=reduction, return_grad=True
    )
    result = ce.categorical_cross_entropy_with_logits(
        da.from_array(logits, chunks=(70, 7, 1)),
        da.from_array(labels, chunks=(45, 2)),
        axis=1,
        sample_weight=weights,
        reduction=reduction,
        return_grad=True,
    )
    computed = cluster_client.compute(result, sync=True)
    for expected_part, got in zip(expected, computed, strict=True):
        np.testing.assert_allclose(got, expected_part, rtol=RTOL)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.parametrize(
    "loss",
    [ce.categorical_cross_entropy, ce.binary_cross_entropy_with_logits, ce.binary_cross_entropy],
    ids=lambda f: f.__name__,
)
def test_local_cluster_runs_the_other_losses(rng, cluster_client, loss):
    if loss is ce.categorical_cross_entropy:
        first = rng.dirichlet(np.ones(5), size=400)
        target = rng.integers(0, 5, size=400)
        options = {"class_weight": rng.uniform(0.5, 2, size=5), "label_smoothing": 0.1}
        chunks = (90, 5)
    else:
        first = rng.normal(size=(400, 3)) if "logits" in loss.__name__ else rng.random((400, 3))
        target = (rng.random((400, 3)) > 0.5).astype(float)
        options = {"pos_weight": rng.uniform(0.5, 2, size=3)}
        chunks = (90, 2)
    options["where"] = rng.random(400 if target.ndim == 1 else (400, 3)) > 0.2
    expected = loss(first, target, return_grad=True, **options)
    result = loss(da.from_array(first, chunks=chunks), target, return_grad=True, **options)
    computed = cluster_client.compute(result, sync=True)
    for expected_part, got in zip(expected, computed, strict=True):
        np.testing.assert_allclose(got, expected_part, rtol=RTOL)
