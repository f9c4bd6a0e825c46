"""linear_cross_entropy: values and gradients, tiles, threads, dtypes and bad input.

Every value is checked against one computed independently: the materialised logits
through ``categorical_cross_entropy_with_logits`` with its gradient pushed through the
matrix product, golden values from PyTorch autograd (``fixtures/make_linear_golden.py``),
or mpmath for tiny losses.
"""

from __future__ import annotations

import inspect
import itertools
import json
import tracemalloc
from pathlib import Path

import mpmath
import numpy as np
import pytest

import crossentropy as ce
from crossentropy import _linear

# The smallest tile is one row of 16 classes. For 12 rows of 37 classes and 4 features
# in float64, these budgets force class tiles (1 row of 17 to 33 classes) and row tiles
# (2 to 4 rows of all classes), with or without gradients and soft cap.
CLASS_TILES = 800
ROW_TILES = 4_000
BUDGETS = {"default": _linear.DEFAULT_MEMORY_BUDGET, "rows": ROW_TILES, "classes": CLASS_TILES}
OPTIONS = ("class_weight", "sample_weight", "where", "ignore_index", "label_smoothing")


def materialised(hidden, weight, target, *, bias=None, **options):
    """The loss and gradients from the logits held in memory."""
    logits = np.asarray(hidden) @ np.asarray(weight).T
    if bias is not None:
        logits = logits + bias
    loss, grad = ce.categorical_cross_entropy_with_logits(
        logits, target, return_grad=True, **options
    )
    rows = grad.reshape(-1, grad.shape[-1])
    hidden_rows = np.asarray(hidden).reshape(len(rows), np.shape(hidden)[-1])
    grads = (
        (rows @ weight).reshape(np.shape(hidden)),
        rows.T @ hidden_rows,
        None if bias is None else rows.sum(axis=0),
    )
    return loss, grads


def assert_grads_close(grads, expected, *, rtol):
    assert len(grads) == 3
    for got, want in zip(grads, expected, strict=True):
        if want is None:
            assert got is None
            continue
        atol = rtol * float(np.max(np.abs(want), initial=0.0))
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def problem(rng, batch=(7,), n_classes=5, n_features=4, dtype=np.float64, bias=True):
    hidden = rng.normal(size=(*batch, n_features)).astype(dtype)
    weight = rng.normal(scale=0.7, size=(n_classes, n_features)).astype(dtype)
    target = rng.integers(0, n_classes, size=batch)
    b = rng.normal(size=n_classes).astype(dtype) if bias else None
    return hidden, weight, target, b


def option_values(rng, batch, n_classes):
    """Two or three values of each option: the default first."""
    weights = rng.uniform(0.2, 2.0, size=n_classes)
    weights[0] = 0.0
    return {
        "reduction": ["mean", "sum", "none"],
        "class_weight": [None, weights],
        "sample_weight": [None, rng.uniform(0.0, 2.0, size=batch)],
        "where": [None, rng.random(batch) > 0.3],
        "ignore_index": [None, 1],
        "label_smoothing": [0.0, 0.15],
        "z_loss": [0.0, 0.01],
        "softcap": [None, 3.0],
    }


def pairs_of_options(values):
    """Calls that hold every pair of values of two options (not the full product)."""
    names = list(values)
    rows = []
    for a, b in itertools.combinations(names, 2):
        for i, j in itertools.product(range(len(values[a])), range(len(values[b]))):
            if any(row.get(a) == i and row.get(b) == j for row in rows):
                continue
            row = next((r for r in rows if r.get(a, i) == i and r.get(b, j) == j), None)
            if row is None:
                rows.append({a: i, b: j})
            else:
                row.update({a: i, b: j})
    return [{name: values[name][row.get(name, 0)] for name in names} for row in rows]


# --------------------------------------------------------------------------------------
# Against the materialised logits
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("budget", list(BUDGETS), ids=list(BUDGETS))
@pytest.mark.parametrize("batch", [(7,), (3, 4), (2, 3, 2), ()], ids=str)
def test_every_pair_of_options_equals_the_materialised_logits(rng, batch, budget):
    hidden, weight, target, bias = problem(rng, batch, n_classes=37)
    target.reshape(-1)[::4] = 1  # some elements hold ignore_index
    calls = pairs_of_options(option_values(rng, batch, 37))
    assert 6 <= len(calls) <= 20
    for options in calls:
        for b in (None, bias):
            expected_loss, expected_grads = materialised(hidden, weight, target, bias=b, **options)
            loss = ce.linear_cross_entropy(
                hidden, weight, target, bias=b, memory_budget=BUDGETS[budget], **options
            )
            np.testing.assert_allclose(loss, expected_loss, rtol=1e-12, atol=1e-300)
            loss, grads = ce.linear_cross_entropy(
                hidden, weight, target, bias=b, return_grad=True, memory_budget=BUDGETS[budget],
                **options,
            )  # fmt: skip
            np.testing.assert_allclose(loss, expected_loss, rtol=1e-12, atol=1e-300)
            assert_grads_close(grads, expected_grads, rtol=1e-12)


def test_the_budgets_force_the_tiles_they_are_named_after():
    dtype = np.dtype(np.float64)
    rows = _linear._layout(12, 37, 4, dtype, ROW_TILES, grad=True, threads=1)
    assert rows is not None
    assert rows.classes == 37
    assert 1 < rows.rows < 12
    classes = _linear._layout(12, 37, 4, dtype, CLASS_TILES, grad=True, threads=1)
    assert classes is not None
    assert 16 <= classes.classes < 37
    forward = _linear._layout(12, 37, 4, dtype, CLASS_TILES, grad=False, threads=1)
    assert forward is not None
    assert forward.classes < 37


@pytest.mark.parametrize("n_classes", [1, 2, 16, 17, 33, 100, 1000])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_class_tiles_of_every_size_equal_whole_rows(rng, n_classes, dtype):
    hidden, weight, target, bias = problem(rng, (11,), n_classes, 3, dtype)
    options = {
        "label_smoothing": 0.1,
        "class_weight": rng.uniform(0, 2, n_classes),
        "z_loss": 1e-3,
        "softcap": 2.0,
    }
    whole = ce.linear_cross_entropy(
        hidden, weight, target, bias=bias, return_grad=True, reduction="none", **options
    )
    itemsize = np.dtype(dtype).itemsize
    for budget in (1_000 * itemsize // 8, 3_000 * itemsize // 8, 20_000 * itemsize // 8):
        tiled = ce.linear_cross_entropy(
            hidden, weight, target, bias=bias, return_grad=True, reduction="none",
            memory_budget=budget, **options,
        )  # fmt: skip
        rtol = 1e-12 if dtype == np.float64 else 1e-5
        np.testing.assert_allclose(tiled[0], whole[0], rtol=rtol)
        assert_grads_close(tiled[1], whole[1], rtol=rtol)


def test_class_tiles_merge_maxima_in_any_order(rng):
    # One feature of 1: the logits are the weights. The row maximum is in the first,
    # a middle or the last class tile, tied across tiles, far above the label's logit,
    # or the label's logit by far (a tiny loss): the merged sums are exact.
    n_classes = 64
    base = rng.normal(size=n_classes)
    cases = [  # (label, {class: logit})
        (0, {0: 9.0}),
        (63, {63: 9.0}),
        (30, {10: 9.0, 50: 9.0}),
        (5, {33: 40.0}),
        (17, {17: 600.0}),
        (40, dict.fromkeys(range(n_classes), -3.0)),
    ]
    for label, changes in cases:
        logits = base.copy()
        logits[list(changes)] = list(changes.values())
        weight = logits[:, None]
        expected = materialised(np.ones((1, 1)), weight, [label], reduction="sum")
        loss, grads = ce.linear_cross_entropy(
            np.ones((1, 1)), weight, [label], reduction="sum", return_grad=True,
            memory_budget=CLASS_TILES,
        )  # fmt: skip
        # exp(x - m) is as accurate as x - m, a few ulp of 600 here: 1e-13 of the loss
        np.testing.assert_allclose(loss, expected[0], rtol=1e-13, atol=0)
        assert_grads_close(grads, expected[1], rtol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_class_tiles_whose_maxima_differ_beyond_the_range_of_exp(dtype):
    # The tile maxima are 200 and -150 apart from the rest: exp of their difference
    # overflows (in float32), but only in the rescaling that is not used.
    weight = np.zeros((40, 1), dtype)
    weight[35, 0], weight[3, 0] = 200.0, -150.0
    target = np.array([35, 3, 20])
    expected = materialised(np.ones((3, 1), dtype), weight, target, label_smoothing=0.1)
    got = ce.linear_cross_entropy(
        np.ones((3, 1), dtype), weight, target, label_smoothing=0.1, return_grad=True,
        memory_budget=class_tiles_budget(weight, 3),
    )  # fmt: skip
    rtol = 1e-13 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(got[0], expected[0], rtol=rtol)
    assert_grads_close(got[1], expected[1], rtol=rtol)


def test_minus_inf_bias_leaves_classes_out_also_across_class_tiles(rng):
    hidden, weight, target, bias = problem(rng, (5,), 40, 3)
    bias[16:32] = -np.inf  # a whole class tile, and parts of others
    bias[5] = -np.inf
    target = np.array([0, 39, 12, 33, 4])
    expected = materialised(hidden, weight, target, bias=bias, label_smoothing=0.0)
    for budget in (None, CLASS_TILES):
        extra = {} if budget is None else {"memory_budget": budget}
        loss, grads = ce.linear_cross_entropy(
            hidden, weight, target, bias=bias, return_grad=True, **extra
        )
        np.testing.assert_allclose(loss, expected[0], rtol=1e-13)
        assert_grads_close(grads, expected[1], rtol=1e-13)
        assert np.all(grads.bias[16:32] == 0)
        # A label on a class of -inf logit: an infinite loss, as with the logits held
        assert np.isinf(
            ce.linear_cross_entropy(hidden, weight, [5, 0, 0, 0, 0], bias=bias, **extra)
        )


def test_nan_propagates_through_the_tiles(rng):
    hidden, weight, target, bias = problem(rng, (4,), 40, 3)
    hidden[2, 0] = np.nan
    for budget in (None, CLASS_TILES):
        extra = {} if budget is None else {"memory_budget": budget}
        losses = ce.linear_cross_entropy(
            hidden, weight, target, bias=bias, reduction="none", **extra
        )
        assert np.isnan(losses[2])
        assert np.all(np.isfinite(losses[[0, 1, 3]]))


# --------------------------------------------------------------------------------------
# Golden values from PyTorch autograd
# --------------------------------------------------------------------------------------

with np.load(Path(__file__).parent / "fixtures" / "linear_golden.npz") as _golden:
    GOLDEN = {name: _golden[name] for name in _golden.files}
GOLDEN_INDEX = json.loads(str(GOLDEN.pop("index")))
GOLDEN_CASES = GOLDEN_INDEX["cases"]
GOLDEN_RTOL = {"float64": 1e-10, "float32": 1e-4}


def formula_array(shape, salt):
    """The arrays that make_linear_golden.py makes from a formula (its formula_array)."""
    index = np.arange(int(np.prod(shape)), dtype=np.int64)
    return (((index * 37 + salt * 101) % 257) - 128).reshape(shape) / 64.0


def golden_arrays(case):
    arrays = {name: GOLDEN[f"{case['id']}/{name}"] for name in case["arrays"]}
    for name, (shape, salt) in case["formulas"].items():
        arrays[name] = formula_array(tuple(shape), salt).astype(case["dtype"])
    return arrays


def class_tiles_budget(weight, n_rows, *, grad=True, softcap=False):
    """A budget that tiles the classes: tiles of 16 classes, or of about C / 4 for many."""
    n_classes, n_features = weight.shape
    budget = max(
        _linear.smallest_budget(n_classes, n_features, weight.dtype, grad=grad, softcap=softcap),
        n_classes * weight.itemsize,
    )
    layout = _linear._layout(
        n_rows, n_classes, n_features, weight.dtype, budget, grad=grad, threads=1,
        softcap=softcap,
    )  # fmt: skip
    assert layout is not None
    assert layout.classes < n_classes or n_classes <= 16
    return budget


def golden_call(case, arrays, **extra):
    options = {
        name: arrays[value[1:]] if isinstance(value, str) and value.startswith("@") else value
        for name, value in case["options"].items()
    }
    return ce.linear_cross_entropy(
        arrays["hidden"], arrays["weight"], arrays["target"], bias=arrays.get("bias"),
        **options, **extra,
    )  # fmt: skip


@pytest.mark.parametrize("budget", ["default", "classes"])
@pytest.mark.parametrize("case", GOLDEN_CASES, ids=[case["id"] for case in GOLDEN_CASES])
def test_golden_values_from_pytorch_autograd(case, budget):
    arrays = golden_arrays(case)
    rtol = GOLDEN_RTOL[case["dtype"]]
    extra = {}
    if budget == "classes":
        n_rows = int(np.prod(arrays["hidden"].shape[:-1]))
        softcap = case["options"].get("softcap") is not None
        extra["memory_budget"] = class_tiles_budget(arrays["weight"], n_rows, softcap=softcap)
    loss, grads = golden_call(case, arrays, return_grad=True, **extra)
    for value in (loss, *grads):
        assert value is None or value.dtype == np.dtype(case["dtype"])
    np.testing.assert_allclose(loss, arrays["loss"], rtol=rtol, atol=0)
    np.testing.assert_allclose(golden_call(case, arrays, **extra), loss, rtol=rtol, atol=0)
    assert grads.hidden.shape == arrays["hidden"].shape
    if "rows" in arrays:  # only some rows of the weight's and the bias's gradients
        rows = arrays["rows"]
        grads = (grads.hidden, grads.weight[rows], grads.bias[rows])
        expected = (arrays["grad_hidden"], arrays["grad_weight_rows"], arrays["grad_bias_rows"])
    else:
        expected = (arrays["grad_hidden"], arrays["grad_weight"], arrays.get("grad_bias"))
    assert_grads_close(grads, expected, rtol=rtol)


def test_the_golden_values_cover_every_option_shape_and_dtype():
    assert GOLDEN_INDEX["torch"].startswith("2.13")
    options = {name for case in GOLDEN_CASES for name in case["options"]}
    assert options == {"reduction", *OPTIONS, "z_loss", "softcap"}
    assert {case["dtype"] for case in GOLDEN_CASES} == {"float32", "float64"}
    assert {case["options"]["reduction"] for case in GOLDEN_CASES} == {"mean", "sum", "none"}
    ranks = {golden_arrays(case)["hidden"].ndim for case in GOLDEN_CASES}
    assert ranks == {1, 2, 3, 4}
    classes = {golden_arrays(case)["weight"].shape[0] for case in GOLDEN_CASES}
    assert min(classes) == 2
    assert max(classes) == 100_000
    assert any("bias" in case["arrays"] for case in GOLDEN_CASES)


# --------------------------------------------------------------------------------------
# Accuracy
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("budget", [None, CLASS_TILES])
@pytest.mark.parametrize("smoothing", [0.0, 1e-3])
def test_tiny_losses_keep_their_relative_accuracy(budget, smoothing):
    # One feature of 1: the logits are the weights, exactly; the label's logit leads by
    # 20 to 700, so the loss is as small as 1e-300 (mpmath at 60 digits).
    n_classes = 50
    gaps = np.array([20.0, 37.5, 100.0, 300.0, 700.0])
    hidden = np.ones((len(gaps), 1))
    rng = np.random.default_rng(5)
    base = rng.normal(size=n_classes)
    target = np.array([3, 49, 20, 0, 31])
    extra = {} if budget is None else {"memory_budget": budget}
    for row, gap in enumerate(gaps):
        logits = base.copy()
        logits[target[row]] = logits.max() + gap
        weight = logits[:, None]
        got = ce.linear_cross_entropy(
            hidden[:1], weight, target[row : row + 1], reduction="sum",
            label_smoothing=smoothing, **extra,
        )  # fmt: skip
        with mpmath.workdps(60):
            x = [mpmath.mpf(float(v)) for v in logits]
            y = target[row]
            # lse - x_y = log(1 + sum_{c != y} exp(x_c - x_y)), without cancellation
            margin = mpmath.log1p(mpmath.fsum(mpmath.exp(v - x[y]) for v in x[:y] + x[y + 1 :]))
            spread = mpmath.fsum(margin + x[y] - v for v in x)
            exact = (1 - smoothing) * margin + smoothing / n_classes * spread
        assert float(got) == pytest.approx(float(exact), rel=1e-13, abs=0)


def test_float32_against_float64(rng):
    hidden, weight, target, bias = problem(rng, (40,), 3000, 16, np.float32)
    loss32, grads32 = ce.linear_cross_entropy(
        hidden, weight, target, bias=bias, return_grad=True, label_smoothing=0.1
    )
    loss64, grads64 = ce.linear_cross_entropy(
        *(a.astype(np.float64) for a in (hidden, weight)), target,
        bias=bias.astype(np.float64), return_grad=True, label_smoothing=0.1,
    )  # fmt: skip
    assert loss32.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads32)
    np.testing.assert_allclose(loss32, loss64, rtol=1e-5)
    assert_grads_close(grads32, grads64, rtol=1e-4)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_hundred_thousand_classes_with_a_tiny_hidden_size(rng, dtype):
    hidden, weight, target, bias = problem(rng, (3, 2), 100_000, 2, dtype)
    expected = materialised(hidden, weight, target, bias=bias, label_smoothing=0.05)
    got = ce.linear_cross_entropy(
        hidden, weight, target, bias=bias, label_smoothing=0.05, return_grad=True,
        memory_budget=2**20,  # one row of classes does not fit: class tiles
    )  # fmt: skip
    rtol = 1e-12 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(got[0], expected[0], rtol=rtol)
    assert_grads_close(got[1], expected[1], rtol=rtol)


# --------------------------------------------------------------------------------------
# Threads and memory
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("pinned", [True, False], ids=["threadpoolctl", "without"])
def test_one_and_two_threads_agree_to_rounding(rng, monkeypatch, pinned):
    if pinned:
        pytest.importorskip("threadpoolctl")
    monkeypatch.setattr(_linear, "can_pin_blas", lambda: pinned)
    hidden, weight, target, bias = problem(rng, (640,), 2048, 64, np.float32)
    budget = 2**22  # several row tiles per thread
    layout = _linear._layout(640, 2048, 64, np.dtype(np.float32), budget, grad=True, threads=2)
    assert layout is not None
    assert layout.rows < 320
    sample_weight = rng.uniform(size=640)
    results = {}
    for threads in (1, 2):
        with ce.num_threads(threads):
            assert _linear._threads(640, 2048, 64) == ((threads, True) if pinned else (1, False))
            results[threads] = ce.linear_cross_entropy(
                hidden, weight, target, bias=bias, return_grad=True, memory_budget=budget,
                sample_weight=sample_weight,
            )  # fmt: skip
    np.testing.assert_allclose(results[1][0], results[2][0], rtol=1e-6)
    assert_grads_close(results[1][1], results[2][1], rtol=1e-5)


def test_blas_is_held_to_one_thread_only_during_the_call(rng):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = [info["num_threads"] for info in threadpoolctl.threadpool_info()]
    hidden, weight, target, _ = problem(rng, (640,), 2048, 64, np.float32)
    seen = []

    def watch(*args, **kwargs):
        seen.append([info["num_threads"] for info in threadpoolctl.threadpool_info()])
        return kernel(*args, **kwargs)

    kernel = _linear.softmax_cross_entropy
    with pytest.MonkeyPatch.context() as patch, ce.num_threads(2):
        patch.setattr(_linear, "softmax_cross_entropy", watch)
        ce.linear_cross_entropy(hidden, weight, target, memory_budget=2**22)
    blas = [info["user_api"] == "blas" for info in threadpoolctl.threadpool_info()]
    assert seen
    assert all(
        n == 1 for during in seen for n, is_blas in zip(during, blas, strict=True) if is_blas
    )
    assert [info["num_threads"] for info in threadpoolctl.threadpool_info()] == before


@pytest.mark.parametrize("grad", [False, True])
@pytest.mark.parametrize(
    ("n_rows", "n_classes", "budget"),
    [(600, 4096, 2**20), (4, 200_000, _linear.DEFAULT_MEMORY_BUDGET)],
    ids=["rows", "classes"],
)
def test_the_memory_budget_bounds_the_work_memory(rng, grad, n_rows, n_classes, budget):
    # 600 x 4096 float64 logits are 18.75 MiB, and a budget of 1 MiB holds a few rows;
    # 4 rows of 200000 classes fit in the default budget. What a call allocates beyond
    # what it returns is what its layout accounts for, and arrays of a value per row or
    # per class; the tile is as large as the budget allows.
    hidden, weight, target, bias = problem(rng, (n_rows,), n_classes, 8)
    with ce.num_threads(1):
        layout = _linear._layout(n_rows, n_classes, 8, weight.dtype, budget, grad=grad, threads=1)
        assert layout is not None
        assert layout.classes == n_classes
        tile = layout.rows * n_classes
        kernel = _linear.work_elements(layout.rows, n_classes, softcap=False, grad=grad)
        accounted = 8 * (tile + kernel + layout.chunk * 8)
        returned = 8 * (hidden.size + weight.size + bias.size) if grad else 0
        small = 8 * (8 * n_rows + 4 * n_classes)
        ce.linear_cross_entropy(hidden[:10], weight, target[:10], memory_budget=budget)
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            ce.linear_cross_entropy(
                hidden, weight, target, bias=bias, return_grad=grad, memory_budget=budget
            )
            peak = tracemalloc.get_traced_memory()[1] - before
        finally:
            tracemalloc.stop()
    assert accounted <= budget
    assert 8 * tile <= peak - returned <= accounted + small


# --------------------------------------------------------------------------------------
# Arguments, dtypes and shapes
# --------------------------------------------------------------------------------------


def test_signature():
    parameters = inspect.signature(ce.linear_cross_entropy).parameters
    assert list(parameters) == [
        "hidden", "weight", "target", "bias", "reduction", *OPTIONS, "z_loss", "softcap",
        "return_grad", "memory_budget",
    ]  # fmt: skip
    for name in ("hidden", "weight", "target"):
        assert parameters[name].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    defaults = {
        "bias": None, "reduction": "mean", "class_weight": None, "sample_weight": None,
        "where": None, "ignore_index": None, "label_smoothing": 0.0, "z_loss": 0.0,
        "softcap": None, "return_grad": False, "memory_budget": 64 * 2**20,
    }  # fmt: skip
    for name, default in defaults.items():
        assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
        assert parameters[name].default == default


@pytest.mark.parametrize(
    ("dtype", "computed"),
    [
        (np.float64, np.float64),
        (np.float32, np.float32),
        (np.float16, np.float32),
        (np.int64, np.float64),
    ],
)
def test_dtypes(rng, dtype, computed):
    hidden, weight, target, bias = problem(rng, (5,), 6, 3)
    hidden, weight, bias = (np.round(a * 4).astype(dtype) for a in (hidden, weight, bias))
    loss, grads = ce.linear_cross_entropy(hidden, weight, target, bias=bias, return_grad=True)
    assert loss.dtype == computed
    assert all(g.dtype == computed for g in grads)
    expected = materialised(
        hidden.astype(computed), weight.astype(computed), target, bias=bias.astype(computed)
    )
    rtol = 1e-12 if computed == np.float64 else 1e-5
    np.testing.assert_allclose(loss, expected[0], rtol=rtol)
    assert_grads_close(grads, expected[1], rtol=rtol)


def test_inputs_are_never_modified_and_views_are_accepted(rng):
    hidden, weight, target, bias = problem(rng, (6,), 40, 5)
    hidden_t = np.asfortranarray(hidden).T.T  # not C-contiguous
    weight_f = np.asfortranarray(weight)
    strided = np.repeat(weight, 2, axis=1)[:, ::2]  # neither C- nor F-contiguous
    arrays = (hidden_t, weight_f, strided, target, bias)
    copies = [a.copy() for a in arrays]
    for a in arrays:
        a.flags.writeable = False
    expected = materialised(hidden, weight, target, bias=bias)
    for w in (weight_f, strided):
        for budget in (None, CLASS_TILES):
            extra = {} if budget is None else {"memory_budget": budget}
            loss, grads = ce.linear_cross_entropy(
                hidden_t, w, target, bias=bias, return_grad=True, **extra
            )
            np.testing.assert_allclose(loss, expected[0], rtol=1e-13)
            assert_grads_close(grads, expected[1], rtol=1e-13)
    for a, copy in zip(arrays, copies, strict=True):
        np.testing.assert_array_equal(a, copy)
    # lists work too
    loss = ce.linear_cross_entropy(hidden.tolist(), weight.tolist(), target.tolist())
    np.testing.assert_allclose(loss, materialised(hidden, weight, target)[0], rtol=1e-13)


def test_balanced_class_weights(rng):
    hidden, weight, target, bias = problem(rng, (3, 5), 6, 3)
    target[0, :4] = 2  # an imbalance
    options = {"class_weight": "balanced", "sample_weight": rng.uniform(size=5)}
    expected = materialised(hidden, weight, target, bias=bias, **options)
    for budget in (None, CLASS_TILES):
        extra = {} if budget is None else {"memory_budget": budget}
        got = ce.linear_cross_entropy(
            hidden, weight, target, bias=bias, return_grad=True, **options, **extra
        )
        np.testing.assert_allclose(got[0], expected[0], rtol=1e-13)
        assert_grads_close(got[1], expected[1], rtol=1e-13)


def test_a_masked_target_leaves_its_elements_out(rng):
    hidden, weight, target, bias = problem(rng, (6,), 7, 3)
    mask = np.array([0, 1, 0, 0, 1, 0], bool)
    masked = np.ma.masked_array(target, mask=mask)
    got = ce.linear_cross_entropy(hidden, weight, masked, bias=bias, return_grad=True)
    expected = materialised(hidden, weight, target, bias=bias, where=~mask)
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-13)
    assert_grads_close(got[1], expected[1], rtol=1e-13)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_an_empty_batch(rng, reduction):
    hidden, weight, _, bias = problem(rng, (0,), 7, 3)
    loss, grads = ce.linear_cross_entropy(
        hidden, weight, np.zeros(0, int), bias=bias, reduction=reduction, return_grad=True
    )
    if reduction == "mean":
        assert np.isnan(loss)
    elif reduction == "sum":
        assert loss == 0
    else:
        assert loss.shape == (0,)
    assert grads.hidden.shape == (0, 3)
    assert np.all(grads.weight == 0)
    assert np.all(grads.bias == 0)


def test_one_class_and_no_features(rng):
    hidden = rng.normal(size=(4, 3))
    loss, grads = ce.linear_cross_entropy(hidden, np.ones((1, 3)), [0, 0, 0, 0], return_grad=True)
    assert loss == 0
    assert np.all(grads.hidden == 0)
    assert np.all(grads.weight == 0)
    bias = rng.normal(size=5)
    target = np.array([1, 4, 0, 2])
    got = ce.linear_cross_entropy(
        np.empty((4, 0)), np.empty((5, 0)), target, bias=bias, return_grad=True
    )
    expected = materialised(np.empty((4, 0)), np.empty((5, 0)), target, bias=bias)
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-14)
    assert_grads_close(got[1], expected[1], rtol=1e-14)


# --------------------------------------------------------------------------------------
# Bad input: a registry of bad calls, each raising before anything is computed
# --------------------------------------------------------------------------------------


def _valid():
    rng = np.random.default_rng(1)
    return {
        "hidden": rng.normal(size=(4, 3)),
        "weight": rng.normal(size=(5, 3)),
        "target": np.array([0, 4, 2, 1]),
        "bias": None,
    }


BAD = [
    # (id, error, match, changes to the valid call)
    ("features-mismatch", ValueError, r"weight must have shape \(C, 3\).*got shape \(5, 4\)",
     {"weight": np.ones((5, 4))}),
    ("weight-1d", ValueError, r"weight must have shape \(C, 3\)", {"weight": np.ones(3)}),
    ("weight-3d", ValueError, r"weight must have shape \(C, 3\)", {"weight": np.ones((2, 5, 3))}),
    ("weight-no-classes", ValueError, "weight must have at least one class",
     {"weight": np.ones((0, 3))}),
    ("hidden-0d", ValueError, "hidden must have at least one dimension", {"hidden": 1.0}),
    ("bias-length", ValueError, r"bias must have shape \(5,\).*got shape \(4,\)",
     {"bias": np.ones(4)}),
    ("bias-2d", ValueError, r"bias must have shape \(5,\)", {"bias": np.ones((1, 5))}),
    ("label-too-large", ValueError, r"class index 5, outside \[0, 5\)",
     {"target": np.array([0, 5, 1, 1])}),
    ("label-negative", ValueError, r"class index -1", {"target": np.array([0, -1, 1, 1])}),
    ("label-outside-with-ignore-index", ValueError, "class index 9.*ignore_index is -100",
     {"target": np.array([-100, 9, 1, 1]), "ignore_index": -100}),
    ("float-target", TypeError, "target must hold integer class indices.*float64",
     {"target": np.array([0.0, 1.0, 2.0, 1.0])}),
    ("probability-target", TypeError, "target must hold integer class indices",
     {"target": np.full((4, 5), 0.2)}),
    ("bool-target", TypeError, "target must hold integer class indices.*bool",
     {"target": np.array([True, False, True, True])}),
    ("target-shape", ValueError, r"target must have the batch shape \(4,\).*got shape \(3,\)",
     {"target": np.array([0, 1, 2])}),
    ("mixed-dtypes", TypeError, "hidden float32, weight float64",
     {"hidden": np.ones((4, 3), np.float32)}),
    ("mixed-bias-dtype", TypeError, "bias float32", {"bias": np.ones(5, np.float32)}),
    ("complex-hidden", TypeError, "hidden must hold real numbers",
     {"hidden": np.ones((4, 3), complex)}),
    ("string-weight", TypeError, "weight must hold real numbers",
     {"weight": np.full((5, 3), "a")}),
    ("masked-hidden", ValueError, "hidden must not have masked entries",
     {"hidden": np.ma.masked_array(np.ones((4, 3)), mask=np.eye(4, 3, dtype=bool))}),
    ("masked-weight", ValueError, "weight must not have masked entries",
     {"weight": np.ma.masked_array(np.ones((5, 3)), mask=np.eye(5, 3, dtype=bool))}),
    ("budget-too-small", ValueError, "memory_budget of 100 bytes is too small.*at least",
     {"memory_budget": 100}),
    ("budget-too-small-for-gradients", ValueError,
     "memory_budget of 130 bytes is too small.*the loss and its gradients need",
     {"memory_budget": 130, "return_grad": True}),
    ("budget-zero", ValueError, "memory_budget must be a positive number of bytes",
     {"memory_budget": 0}),
    ("budget-float", TypeError, "memory_budget must be an int", {"memory_budget": 1e6}),
    ("budget-bool", TypeError, "memory_budget must be an int", {"memory_budget": True}),
    ("return-grad-int", TypeError, "return_grad must be a bool", {"return_grad": 1}),
    ("reduction", ValueError, "reduction must be one of", {"reduction": "avg"}),
    ("class-weight-length", ValueError, r"class_weight must have shape \(5,\)",
     {"class_weight": np.ones(4)}),
    ("class-weight-negative", ValueError, "class_weight must be >= 0",
     {"class_weight": -np.ones(5)}),
    ("sample-weight-shape", ValueError, "sample_weight of shape", {"sample_weight": np.ones(3)}),
    ("sample-weight-nan", ValueError, "sample_weight must be finite",
     {"sample_weight": np.nan}),
    ("where-int", TypeError, "where must be a boolean array", {"where": np.ones(4, int)}),
    ("smoothing", ValueError, r"label_smoothing must be in \[0, 1\]", {"label_smoothing": 2.0}),
    ("z-loss-negative", ValueError, "z_loss must be a finite number >= 0", {"z_loss": -0.1}),
    ("z-loss-string", TypeError, "z_loss must be a real number", {"z_loss": "0.1"}),
    ("softcap-zero", ValueError, "softcap must be None or a finite number > 0", {"softcap": 0.0}),
    ("softcap-inf", ValueError, "softcap must be None or a finite number > 0",
     {"softcap": np.inf}),
    ("ignore-index-float", TypeError, "ignore_index must be an int", {"ignore_index": 1.5}),
]  # fmt: skip


@pytest.mark.parametrize(("error", "match", "changes"), [case[1:] for case in BAD],
                         ids=[case[0] for case in BAD])  # fmt: skip
def test_bad_input_raises_before_anything_is_computed(monkeypatch, error, match, changes):
    call = {**_valid(), **changes}
    arrays = {name: value for name, value in call.items() if isinstance(value, np.ndarray)}
    copies = {name: value.copy() for name, value in arrays.items()}

    def computed(*args, **kwargs):
        pytest.fail("the kernel ran")

    monkeypatch.setattr(_linear, "softmax_cross_entropy", computed)
    monkeypatch.setattr(_linear._Call, "run", computed)
    with pytest.raises(error, match=match):
        ce.linear_cross_entropy(call.pop("hidden"), call.pop("weight"), call.pop("target"), **call)
    for name, value in arrays.items():
        np.testing.assert_array_equal(value, copies[name])


def test_the_registry_names_every_argument():
    named = {name for _, _, _, changes in BAD for name in changes}
    parameters = set(inspect.signature(ce.linear_cross_entropy).parameters)
    assert parameters == named
