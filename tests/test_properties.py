"""Invariances and equivalences that hold for any input (hypothesis)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import crossentropy as ce

finite = st.floats(-30, 30, allow_nan=False, allow_infinity=False, width=64)


@st.composite
def categorical_problems(draw, *, max_classes=6):
    """Logits of shape (batch..., C) with integer labels and optional weights and mask."""
    batch = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5))
    n_classes = draw(st.integers(1, max_classes))
    logits = draw(hnp.arrays(np.float64, (*batch, n_classes), elements=finite))
    labels = draw(hnp.arrays(np.int64, batch, elements=st.integers(0, n_classes - 1)))
    class_weight = draw(st.none() | hnp.arrays(np.float64, n_classes, elements=st.floats(0.1, 3.0)))
    sample_weight = draw(st.none() | hnp.arrays(np.float64, batch, elements=st.floats(0, 3)))
    where = draw(st.none() | hnp.arrays(np.bool_, batch))
    smoothing = draw(st.sampled_from([0.0, 0.1, 0.5]))
    return (
        logits,
        labels,
        {
            "class_weight": class_weight,
            "sample_weight": sample_weight,
            "where": where,
            "label_smoothing": smoothing,
        },
    )


@given(categorical_problems(), st.floats(-50, 50))
def test_adding_a_constant_to_a_row_changes_nothing(problem, shift):
    logits, labels, options = problem
    before = ce.categorical_cross_entropy_with_logits(logits, labels, reduction="none", **options)
    after = ce.categorical_cross_entropy_with_logits(
        logits + shift, labels, reduction="none", **options
    )
    np.testing.assert_allclose(after, before, rtol=1e-9, atol=1e-9)


@given(categorical_problems(), st.data())
def test_axis_equals_moving_the_class_axis_last(problem, data):
    logits, labels, options = problem
    axis = data.draw(st.integers(0, logits.ndim - 1))
    moved = np.moveaxis(logits, -1, axis)
    loss, grad = ce.categorical_cross_entropy_with_logits(
        moved, labels, axis=axis, reduction="none", return_grad=True, **options
    )
    expected_loss, expected_grad = ce.categorical_cross_entropy_with_logits(
        logits, labels, reduction="none", return_grad=True, **options
    )
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-13)
    np.testing.assert_allclose(np.moveaxis(grad, axis, -1), expected_grad, rtol=1e-13)


@given(categorical_problems())
def test_where_equals_boolean_indexing(problem):
    logits, labels, options = problem
    where = options.pop("where")
    if where is None:
        where = np.ones(labels.shape, dtype=bool)
    weights = options.pop("sample_weight")
    selected = weights[where] if weights is not None else None
    for reduction in ("sum", "mean"):
        masked = ce.categorical_cross_entropy_with_logits(
            logits, labels, where=where, sample_weight=weights, reduction=reduction, **options
        )
        indexed = ce.categorical_cross_entropy_with_logits(
            logits[where], labels[where], sample_weight=selected, reduction=reduction, **options
        )
        np.testing.assert_allclose(masked, indexed, rtol=1e-12, atol=1e-14)


@given(categorical_problems())
def test_reductions_agree(problem):
    logits, labels, options = problem
    none = ce.categorical_cross_entropy_with_logits(logits, labels, reduction="none", **options)
    total, grad_sum = ce.categorical_cross_entropy_with_logits(
        logits, labels, reduction="sum", return_grad=True, **options
    )
    mean, grad_mean = ce.categorical_cross_entropy_with_logits(
        logits, labels, reduction="mean", return_grad=True, **options
    )
    np.testing.assert_allclose(np.sum(none), total, rtol=1e-12, atol=1e-14)
    weight = 1.0 if options["sample_weight"] is None else options["sample_weight"]
    class_weight = options["class_weight"]
    weight = weight * (1.0 if class_weight is None else class_weight[labels])
    where = options["where"]
    denominator = np.sum(np.broadcast_to(weight, labels.shape)[where if where is not None else ...])
    if denominator > 0:
        np.testing.assert_allclose(mean, total / denominator, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(grad_mean, grad_sum / denominator, rtol=1e-12, atol=1e-15)
    else:
        assert np.isnan(mean)
        assert np.all(grad_mean == 0)


@given(categorical_problems(), st.randoms())
def test_permuting_the_batch_permutes_none(problem, random):
    logits, labels, _ = problem
    flat = logits.reshape(-1, logits.shape[-1])
    order = list(range(len(flat)))
    random.shuffle(order)
    flat_labels = labels.reshape(-1)
    loss = ce.categorical_cross_entropy_with_logits(flat, flat_labels, reduction="none")
    permuted = ce.categorical_cross_entropy_with_logits(
        flat[order], flat_labels[order], reduction="none"
    )
    np.testing.assert_array_equal(permuted, loss[order])


@given(categorical_problems())
def test_return_grad_does_not_change_the_loss(problem):
    logits, labels, options = problem
    for reduction in ("none", "sum", "mean"):
        plain = ce.categorical_cross_entropy_with_logits(
            logits, labels, reduction=reduction, **options
        )
        with_grad, _ = ce.categorical_cross_entropy_with_logits(
            logits, labels, reduction=reduction, return_grad=True, **options
        )
        np.testing.assert_array_equal(with_grad, plain)


@given(categorical_problems())
def test_unweighted_one_hot_gradient_rows_sum_to_zero(problem):
    logits, labels, _ = problem
    _, grad = ce.categorical_cross_entropy_with_logits(
        logits, labels, reduction="sum", return_grad=True
    )
    np.testing.assert_allclose(grad.sum(axis=-1), 0.0, atol=1e-14)


@given(categorical_problems())
def test_rows_left_out_have_exactly_zero_gradient(problem):
    logits, labels, options = problem
    where = np.zeros(labels.shape, dtype=bool)
    where.flat[::2] = True
    logits = logits.copy()
    logits[~where] = np.nan  # whatever a left-out row holds
    options["where"] = where
    loss, grad = ce.categorical_cross_entropy_with_logits(
        logits, labels, reduction="none", return_grad=True, **options
    )
    assert np.all(grad[~where] == 0)
    assert np.all(loss[~where] == 0)
    assert np.all(np.isfinite(loss[where]))


@given(
    hnp.arrays(np.float64, hnp.array_shapes(max_dims=3, max_side=6), elements=finite),
    st.sampled_from([0.0, 0.2]),
)
def test_binary_logits_equal_the_two_class_categorical_loss(x, smoothing):
    t = (np.abs(x) * 7 % 1 > 0.5).astype(np.int64)
    binary = ce.binary_cross_entropy_with_logits(x, t, reduction="none", label_smoothing=smoothing)
    two_class = np.stack([np.zeros_like(x), x], axis=-1)
    categorical = ce.categorical_cross_entropy_with_logits(
        two_class, t, reduction="none", label_smoothing=smoothing
    )
    np.testing.assert_allclose(binary, categorical, rtol=1e-12, atol=1e-300)


def test_results_do_not_depend_on_the_thread_count(rng):
    # 6000 x 50 = 300_000 elements: large enough to be split over 2 threads.
    logits = rng.normal(size=(6000, 50)).astype(np.float32)
    labels = rng.integers(0, 50, size=6000)
    x = rng.normal(size=400_000)
    t = rng.random(400_000)
    results = {}
    for threads in (1, 2, 3):
        with ce.num_threads(threads):
            results[threads] = (
                ce.categorical_cross_entropy_with_logits(logits, labels, return_grad=True),
                ce.binary_cross_entropy_with_logits(x, t, return_grad=True),
            )
    for threads in (2, 3):
        for got, expected in zip(results[threads], results[1], strict=True):
            np.testing.assert_allclose(got[0], expected[0], rtol=1e-6)
            np.testing.assert_array_equal(got[1], expected[1])


@pytest.mark.parametrize(
    "name",
    [
        "categorical_cross_entropy_with_logits",
        "categorical_cross_entropy",
        "binary_cross_entropy_with_logits",
        "binary_cross_entropy",
    ],
)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_thread_count_with_every_option(rng, name, reduction):
    n, n_classes = 3000, 120  # 360_000 elements
    if name.startswith("categorical"):
        first = rng.normal(size=(n, n_classes))
        if name.endswith("entropy"):
            first = np.exp(first) / np.exp(first).sum(axis=1, keepdims=True)
        target = rng.integers(0, n_classes, size=n)
        options = {
            "class_weight": rng.uniform(0, 2, n_classes),
            "ignore_index": 7,
            "label_smoothing": 0.1,
        }
        batch = (n,)
    else:
        first = rng.normal(size=(n, n_classes))
        if name.endswith("entropy"):
            first = 1 / (1 + np.exp(-first))
        target = rng.random((n, n_classes))
        options = {"pos_weight": rng.uniform(0, 2, n_classes), "label_smoothing": 0.1}
        batch = (n, n_classes)
    options["sample_weight"] = rng.uniform(0, 2, batch)
    options["where"] = rng.random(batch) > 0.1
    function = getattr(ce, name)
    with ce.num_threads(1):
        loss1, grad1 = function(first, target, reduction=reduction, return_grad=True, **options)
    with ce.num_threads(2):
        loss2, grad2 = function(first, target, reduction=reduction, return_grad=True, **options)
    np.testing.assert_allclose(loss2, loss1, rtol=1e-13)
    np.testing.assert_allclose(grad2, grad1, rtol=1e-13, atol=1e-300)


def test_concurrent_calls_from_python_threads(rng):
    problems = [(rng.normal(size=(2000, 300)), rng.integers(0, 300, size=2000)) for _ in range(6)]
    expected = [
        ce.categorical_cross_entropy_with_logits(x, y, return_grad=True) for x, y in problems
    ]
    results: dict[int, object] = {}

    def work(i):
        # Each thread also asks for its own thread count (a context, local to it).
        with ce.num_threads(1 + i % 3):
            for _ in range(3):
                results[i] = ce.categorical_cross_entropy_with_logits(
                    *problems[i], return_grad=True
                )

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i, (loss, grad) in enumerate(expected):
        assert results[i][0] == loss
        np.testing.assert_array_equal(results[i][1], grad)


def test_thread_settings():
    default = ce.get_num_threads()
    with ce.num_threads(1):
        assert ce.get_num_threads() == 1
        with ce.num_threads(3):
            assert ce.get_num_threads() == 3
        assert ce.get_num_threads() == 1
    ce.set_num_threads(2)
    try:
        assert ce.get_num_threads() == 2
    finally:
        ce.set_num_threads(None)
    assert ce.get_num_threads() == default
    with pytest.raises(ValueError, match="positive"):
        ce.set_num_threads(0)
    with pytest.raises(TypeError, match="positive int"):
        ce.num_threads(1.5).__enter__()


def test_environment_variable_sets_the_default(monkeypatch):
    monkeypatch.setenv("CROSSENTROPY_NUM_THREADS", "3")
    assert ce.get_num_threads() == 3
    monkeypatch.setenv("CROSSENTROPY_NUM_THREADS", "many")
    with pytest.raises(ValueError, match="CROSSENTROPY_NUM_THREADS"):
        ce.get_num_threads()


@given(categorical_problems(), st.floats(-50, 50))
def test_shift_changes_no_gradient(problem, shift):
    logits, labels, options = problem
    _, before = ce.categorical_cross_entropy_with_logits(
        logits, labels, reduction="sum", return_grad=True, **options
    )
    _, after = ce.categorical_cross_entropy_with_logits(
        logits + shift, labels, reduction="sum", return_grad=True, **options
    )
    np.testing.assert_allclose(after, before, rtol=1e-8, atol=1e-10)


def _softmax(logits):
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize(
    ("loss", "first_of"),
    [
        (ce.categorical_cross_entropy_with_logits, lambda logits: logits),
        (ce.categorical_cross_entropy, _softmax),
    ],
    ids=["logits", "probabilities"],
)
@given(problem=categorical_problems())
def test_integer_targets_equal_one_hot_targets(loss, first_of, problem):
    logits, labels, options = problem
    first = first_of(logits)
    one_hot = np.eye(logits.shape[-1])[labels]
    for reduction in ("none", "sum", "mean"):
        by_label = loss(first, labels, reduction=reduction, return_grad=True, **options)
        by_one_hot = loss(first, one_hot, reduction=reduction, return_grad=True, **options)
        for a, b in zip(by_label, by_one_hot, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@given(categorical_problems(), st.data())
def test_probabilities_axis_equals_moving_the_class_axis_last(problem, data):
    logits, labels, options = problem
    probs = _softmax(logits)
    axis = data.draw(st.integers(-probs.ndim, probs.ndim - 1))
    moved = np.moveaxis(probs, -1, axis)
    loss, grad = ce.categorical_cross_entropy(
        moved, labels, axis=axis, reduction="none", return_grad=True, **options
    )
    expected_loss, expected_grad = ce.categorical_cross_entropy(
        probs, labels, reduction="none", return_grad=True, **options
    )
    np.testing.assert_array_equal(loss, expected_loss)
    np.testing.assert_array_equal(np.moveaxis(grad, axis, -1), expected_grad)


@given(categorical_problems(), st.data())
def test_soft_targets_axis_where_and_reductions(problem, data):
    logits, labels, options = problem
    soft = _softmax(data.draw(hnp.arrays(np.float64, logits.shape, elements=finite)) / 10)
    axis = data.draw(st.integers(0, logits.ndim - 1))
    where = options.pop("where")
    if where is None:
        where = np.ones(labels.shape, dtype=bool)
    weights = options.pop("sample_weight")
    moved = np.moveaxis(logits, -1, axis)
    moved_soft = np.moveaxis(soft, -1, axis)
    loss, grad = ce.categorical_cross_entropy_with_logits(
        moved, moved_soft, axis=axis, where=where, sample_weight=weights, reduction="none",
        return_grad=True, **options,
    )  # fmt: skip
    expected = ce.categorical_cross_entropy_with_logits(
        logits, soft, where=where, sample_weight=weights, reduction="none", **options
    )
    np.testing.assert_allclose(loss, expected, rtol=1e-13, atol=1e-300)
    assert np.all(np.moveaxis(grad, axis, -1)[~where] == 0)
    selected = weights[where] if weights is not None else None
    for reduction in ("sum", "mean"):
        masked = ce.categorical_cross_entropy_with_logits(
            logits, soft, where=where, sample_weight=weights, reduction=reduction, **options
        )
        indexed = ce.categorical_cross_entropy_with_logits(
            logits[where], soft[where], sample_weight=selected, reduction=reduction, **options
        )
        np.testing.assert_allclose(masked, indexed, rtol=1e-12, atol=1e-14)
    # mean = sum / D with D = sum s * (w . t) (or sum s without class weights)
    total = ce.categorical_cross_entropy_with_logits(
        logits, soft, where=where, sample_weight=weights, reduction="sum", **options
    )
    mean = ce.categorical_cross_entropy_with_logits(
        logits, soft, where=where, sample_weight=weights, reduction="mean", **options
    )
    s = np.ones(labels.shape) if weights is None else weights
    cw = options["class_weight"]
    per_row = np.ones(labels.shape) if cw is None else soft @ cw
    denominator = np.sum((s * per_row)[where])
    if denominator > 0:
        np.testing.assert_allclose(mean, total / denominator, rtol=1e-12, atol=1e-14)
    else:
        assert np.isnan(mean)


@st.composite
def binary_problems(draw, *, probabilities=False):
    """Logits (or probabilities) of any shape with targets, weights and a mask."""
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5))
    elements = st.floats(1e-6, 1 - 1e-6) if probabilities else finite
    first = draw(hnp.arrays(np.float64, shape, elements=elements))
    kind = draw(st.sampled_from(["float", "int", "bool"]))
    if kind == "float":
        target = draw(hnp.arrays(np.float64, shape, elements=st.floats(0, 1)))
    elif kind == "int":
        target = draw(hnp.arrays(np.int8, shape, elements=st.integers(0, 1)))
    else:
        target = draw(hnp.arrays(np.bool_, shape))
    last = shape[-1:]
    pos_weight = draw(
        st.none()
        | hnp.arrays(np.float64, st.sampled_from([(), last, shape]), elements=st.floats(0, 3))
    )
    sample_weight = draw(st.none() | hnp.arrays(np.float64, shape, elements=st.floats(0, 3)))
    where = draw(st.none() | hnp.arrays(np.bool_, shape))
    smoothing = draw(st.sampled_from([0.0, 0.1, 0.5]))
    return (
        first,
        target,
        {
            "pos_weight": pos_weight,
            "sample_weight": sample_weight,
            "where": where,
            "label_smoothing": smoothing,
        },
    )


BINARY = {
    "logits": (ce.binary_cross_entropy_with_logits, binary_problems()),
    "probs": (ce.binary_cross_entropy, binary_problems(probabilities=True)),
}


@pytest.mark.parametrize("name", BINARY)
def test_binary_reductions_where_and_gradients(name):
    function, strategy = BINARY[name]

    @given(strategy)
    def check(problem):
        first, target, options = problem
        none, grad_none = function(first, target, reduction="none", return_grad=True, **options)
        total, grad_sum = function(first, target, reduction="sum", return_grad=True, **options)
        mean, grad_mean = function(first, target, reduction="mean", return_grad=True, **options)
        # return_grad does not change the loss
        np.testing.assert_array_equal(function(first, target, reduction="none", **options), none)
        np.testing.assert_array_equal(function(first, target, reduction="mean", **options), mean)
        assert none.shape == first.shape
        np.testing.assert_allclose(np.sum(none), total, rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(grad_none, grad_sum)
        where = options["where"]
        kept = np.ones(first.shape, bool) if where is None else where
        s = options["sample_weight"]
        denominator = np.sum(np.broadcast_to(1.0 if s is None else s, first.shape)[kept])
        if denominator > 0:
            np.testing.assert_allclose(mean, total / denominator, rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(grad_mean, grad_sum / denominator, rtol=1e-12, atol=1e-15)
        else:
            assert np.isnan(mean)
            assert np.all(grad_mean == 0)
        assert np.all(none[~kept] == 0)
        assert np.all(grad_sum[~kept] == 0)
        # where == boolean indexing
        pw = options["pos_weight"]
        indexed = function(
            first[kept],
            target[kept],
            reduction="sum",
            sample_weight=None if s is None else s[kept],
            pos_weight=None if pw is None else np.broadcast_to(pw, first.shape)[kept],
            label_smoothing=options["label_smoothing"],
        )
        np.testing.assert_allclose(total, indexed, rtol=1e-12, atol=1e-14)
        # permuting the elements permutes "none"
        order = np.random.default_rng(first.size).permutation(first.size)
        flat = {
            key: None if value is None else np.broadcast_to(value, first.shape).reshape(-1)[order]
            for key, value in options.items()
            if key != "label_smoothing"
        }
        permuted = function(
            first.reshape(-1)[order],
            target.reshape(-1)[order],
            reduction="none",
            label_smoothing=options["label_smoothing"],
            **flat,
        )
        np.testing.assert_array_equal(permuted, none.reshape(-1)[order])

    check()


@given(binary_problems())
def test_binary_probabilities_of_the_sigmoid_equal_logits(problem):
    x, target, options = problem
    x = np.clip(x, -15, 15)  # keep the probabilities well inside the clip range
    probs = 1 / (1 + np.exp(-x))
    from_logits = ce.binary_cross_entropy_with_logits(x, target, reduction="none", **options)
    from_probs = ce.binary_cross_entropy(probs, target, reduction="none", eps=0, **options)
    np.testing.assert_allclose(from_probs, from_logits, rtol=1e-8, atol=1e-12)


@given(categorical_problems(max_classes=5))
def test_categorical_probabilities_of_the_softmax_equal_logits(problem):
    logits, labels, options = problem
    logits = np.clip(logits, -10, 10)
    probs = _softmax(logits)
    from_logits = ce.categorical_cross_entropy_with_logits(
        logits, labels, reduction="none", **options
    )
    from_probs = ce.categorical_cross_entropy(probs, labels, reduction="none", eps=0, **options)
    np.testing.assert_allclose(from_probs, from_logits, rtol=1e-10, atol=1e-12)
