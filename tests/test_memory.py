"""Options on large inputs: the same losses as the loops, and no array of the input's size.

Weights and masks that broadcast against the input are read a block of rows at a
time. Calls large enough to run in many blocks, on one and two threads, are checked
row by row against the plain loops of ``reference.py`` (rows at block edges and
elsewhere), and their sum and mean against independent totals. The memory of a
forward pass with options is measured as ``benchmarks/memory.py`` does: tracemalloc,
the peak of a second call beyond what was allocated before it (the first makes each
thread's block buffers, kept from call to call).
"""

from __future__ import annotations

import numpy as np
import pytest

import crossentropy as ce

from . import losses

# Rows checked against the loops: the first and last, and around the edges of blocks.
EDGES = (0, 1, 819, 820, 1637, 1638, 8191, 8192, 8193, 16383, 16384, 24575, 24576)


def _binary_call(rng, loss):
    shape = (1000, 300)  # 300000 elements: many blocks, spread over two threads
    first, target = loss.make(rng, shape, soft=True)
    options = {
        "pos_weight": rng.uniform(0.5, 2.0, shape[1]),
        "sample_weight": rng.uniform(0.0, 2.0, (shape[0], 1)),
        "where": rng.random(shape) > 0.2,
        "label_smoothing": 0.1,
    }
    counted = np.broadcast_to(options["where"], shape)
    total = np.sum(np.broadcast_to(options["sample_weight"], shape) * counted)
    return first, target, options, total


def _categorical_call(rng, loss):
    n_rows, n_classes = 30000, 10
    first, target = loss.make(rng, (n_rows, n_classes))
    target[::7] = -1
    options = {
        "class_weight": rng.uniform(0.5, 2.0, n_classes),
        "sample_weight": rng.uniform(0.0, 2.0, n_rows),
        "where": rng.random(n_rows) > 0.2,
        "ignore_index": -1,
        "label_smoothing": 0.1,
    }
    counted = options["where"] & (target != -1)
    weight = options["class_weight"][np.where(counted, target, 0)]
    total = np.sum(options["sample_weight"] * weight * counted)
    return first, target, options, total


def _rows_of(options, rows, shape):
    """Return the options of rows `rows` of a call of input `shape`."""
    sliced = dict(options)
    for name in ("sample_weight", "where"):
        value = options[name]
        sliced[name] = np.broadcast_to(value, shape[: value.ndim])[rows]
    return sliced


@losses.parametrize(losses.ALL)
@pytest.mark.parametrize("threads", [1, 2])
def test_large_calls_with_every_option_equal_the_loops_row_by_row(rng, loss, threads):
    make = _categorical_call if loss.categorical else _binary_call
    first, target, options, total = make(rng, loss)
    with ce.num_threads(threads):
        per_row = loss(first, target, reduction="none", **options)
        summed = loss(first, target, reduction="sum", **options)
        mean = loss(first, target, **options)
    rows = [row for row in EDGES if row < first.shape[0]] + [first.shape[0] - 1]
    expected = loss.oracle(
        first[rows], target[rows], reduction="none", **_rows_of(options, rows, first.shape)
    )
    np.testing.assert_allclose(per_row[rows], expected, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(summed, np.sum(per_row), rtol=1e-12)
    np.testing.assert_allclose(mean, np.sum(per_row) / total, rtol=1e-12)


@losses.parametrize(losses.ALL)
def test_large_calls_do_not_depend_on_the_thread_count_beyond_rounding(rng, loss):
    make = _categorical_call if loss.categorical else _binary_call
    first, target, options, _ = make(rng, loss)
    results = []
    for threads in (1, 2):
        with ce.num_threads(threads):
            results.append(loss(first, target, return_grad=True, **options))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-13)
    np.testing.assert_array_equal(results[0][1], results[1][1])


@losses.parametrize(losses.BINARY)
def test_a_masked_large_input_equals_where(rng, loss):
    first, target = loss.make(rng, (1000, 300), soft=True)
    mask = rng.random(first.shape) < 0.2
    hidden = first.copy()
    hidden[mask] = np.nan  # masked values weigh 0 and give no NaN
    masked = np.ma.masked_array(hidden, mask=mask)
    with ce.num_threads(2):
        got, grad = loss(masked, target, return_grad=True)
        expected, expected_grad = loss(first, target, where=~mask, return_grad=True)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(grad, expected_grad)


def _binary_memory_cases(rng, shape):
    return {
        "where": {"where": rng.random(shape) < 0.9},
        "where per row": {"where": rng.random((shape[0], 1)) < 0.9},
        "pos_weight vector": {"pos_weight": rng.random(shape[1]) + 0.5},
        "pos_weight balanced": {"pos_weight": "balanced"},
        "sample_weight scalar": {"sample_weight": 2.0},
        "sample_weight per row": {"sample_weight": rng.random((shape[0], 1))},
        "sample_weight float32": {"sample_weight": rng.random(shape, dtype=np.float32)},
        "everything": {
            "where": rng.random((shape[0], 1)) < 0.9,
            "pos_weight": rng.random(shape[1]) + 0.5,
            "sample_weight": rng.random(shape[1]),
            "label_smoothing": 0.1,
        },
    }


BINARY_MEMORY_CASES = [*_binary_memory_cases(np.random.default_rng(0), (2, 2)), "masked"]


@pytest.mark.parametrize("case", BINARY_MEMORY_CASES)
@pytest.mark.parametrize(
    "function",
    [ce.binary_cross_entropy, ce.binary_cross_entropy_with_logits],
    ids=lambda f: f.__name__,
)
@pytest.mark.parametrize("threads", [1, 2])
def test_binary_options_cost_at_most_a_sixteenth_of_the_input(rng, function, case, threads):
    shape = (20_000, 100)  # 16 MiB of float64
    first = rng.random(shape)
    target = (rng.random(shape) < 0.5).astype(np.float64)
    if case == "masked":
        first, options = np.ma.masked_array(first, mask=rng.random(shape) < 0.1), {}
    else:
        options = _binary_memory_cases(rng, shape)[case]
    with ce.num_threads(threads):
        peak = losses.second_call_peak(lambda: function(first, target, **options))
    assert peak < first.nbytes / 16


def _categorical_options(rng, case, batch_shape, n_classes, weight_dtype):
    """The options of a memory case of a categorical loss (the targets aside)."""
    if case == "class_weight":
        return {"class_weight": rng.random(n_classes) + 0.5}
    if case == "class_weight balanced":
        return {"class_weight": "balanced"}
    if case == "sample_weight":
        return {"sample_weight": rng.random(batch_shape, dtype=weight_dtype)}
    if case == "where":
        return {"where": rng.random(batch_shape) < 0.9}
    if case == "ignore_index":
        return {"ignore_index": -100}
    if case == "label_smoothing":
        return {"label_smoothing": 0.1}
    if case == "z_loss":
        return {"z_loss": 1e-4}
    if case == "softcap":
        return {"softcap": 5.0}
    return {}


CATEGORICAL_MEMORY_CASES = [
    "none",
    "where",
    "sample_weight",
    "class_weight",
    "class_weight balanced",
    "label_smoothing",
    "ignore_index",
    "soft target",
    "masked",
    "int32 labels",
]


@pytest.mark.parametrize("case", CATEGORICAL_MEMORY_CASES)
@pytest.mark.parametrize(
    "function", [ce.categorical_cross_entropy, ce.categorical_focal_loss], ids=lambda f: f.__name__
)
@pytest.mark.parametrize("threads", [1, 2])
def test_categorical_probabilities_cost_at_most_a_sixteenth_of_the_input(
    rng, function, case, threads
):
    n_rows, n_classes = 200_000, 10  # 16 MiB of float64
    first = rng.dirichlet(np.ones(n_classes), size=n_rows)
    target = rng.integers(0, n_classes, size=n_rows)
    options = _categorical_options(rng, case, (n_rows,), n_classes, np.float64)
    if case == "ignore_index":
        target[::7] = -100
    elif case == "soft target":
        target = rng.dirichlet(np.ones(n_classes), size=n_rows)
    elif case == "masked":
        mask = np.repeat(rng.random((n_rows, 1)) < 0.1, n_classes, axis=1)
        first = np.ma.masked_array(first, mask=mask)
    elif case == "int32 labels":
        target = target.astype(np.int32)
    with ce.num_threads(threads):
        peak = losses.second_call_peak(lambda: function(first, target, **options))
    assert peak < first.nbytes / 16


LOGITS_MEMORY_CASES = [
    "none",
    "class_weight",
    "class_weight balanced",
    "sample_weight",
    "where",
    "ignore_index",
    "label_smoothing",
    "soft target",
    "z_loss",
    "softcap",
    "masked",
]
# (N, C) rows of few classes (the general path, blocks transposed), and PyTorch's
# (N, C, H, W) with axis=1 (class-major blocks): about 10 MiB of float32 each.
LOGITS_LAYOUTS = {"rows": ((262_144, 10), -1), "nchw": ((8, 21, 128, 128), 1)}


@pytest.mark.parametrize("case", LOGITS_MEMORY_CASES)
@pytest.mark.parametrize("layout", list(LOGITS_LAYOUTS))
@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize(
    "function",
    [ce.categorical_cross_entropy_with_logits, ce.categorical_focal_loss_with_logits],
    ids=lambda f: f.__name__,
)
@pytest.mark.parametrize("threads", [1, 2])
def test_categorical_logits_cost_at_most_a_sixteenth_of_the_input(
    rng, function, case, layout, reduction, threads
):
    # The forward pass of the log-sum-exp kernel keeps the per-row values of a block
    # only; for "none" the per-row losses returned are the output, not counted.
    shape, axis = LOGITS_LAYOUTS[layout]
    focal = function is ce.categorical_focal_loss_with_logits
    if focal and case in ("z_loss", "softcap"):
        pytest.skip("options of the cross-entropy only")
    if layout == "nchw" and case == "soft target":
        pytest.skip("C-contiguous class probabilities of (N, C, H, W) are copied to rows")
    first = rng.standard_normal(shape, dtype=np.float32)
    n_classes = shape[axis]
    batch_shape = shape[:1] if layout == "rows" else (shape[0], *shape[2:])
    target = rng.integers(0, n_classes, size=batch_shape)
    options = _categorical_options(rng, case, batch_shape, n_classes, np.float32)
    if case == "ignore_index":
        target.reshape(-1)[::7] = -100
    elif case == "soft target":
        target = rng.dirichlet(np.ones(n_classes), size=batch_shape).astype(np.float32)
    elif case == "masked":
        left_out = np.expand_dims(rng.random(batch_shape) < 0.1, axis)
        first = np.ma.masked_array(first, mask=np.broadcast_to(left_out, shape))
    if focal:
        options["gamma"] = 2.0
    output = np.empty(batch_shape, np.float32).nbytes if reduction == "none" else 0

    def call():
        return function(first, target, axis=axis, reduction=reduction, **options)

    with ce.num_threads(threads):
        peak = losses.second_call_peak(call)
    assert peak - output < first.nbytes / 16
