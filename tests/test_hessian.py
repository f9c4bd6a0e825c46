"""``return_hess=True``: the diagonal of the Hessian, against the derivative of the gradient.

Rows (categorical) and elements (binary) are independent, and ``D`` does not depend on
the logits, so moving one class of every row at once (binary: every element) moves
each gradient entry by its own diagonal Hessian entry alone: a central difference of
the gradient over that move is the diagonal, one class at a time.
"""

from __future__ import annotations

import numpy as np
import pytest

from . import losses

STEP = 1e-5


def _numeric_diagonal(loss, logits, target, options):
    """Central differences of the gradient: the Hessian's diagonal, one class at a time."""

    def grad(x):
        return loss(x, target, return_grad=True, **options)[1]

    if not loss.categorical:
        return (grad(logits + STEP) - grad(logits - STEP)) / (2 * STEP)
    axis = options.get("axis", -1)
    diagonal = np.empty_like(logits)
    for c in range(logits.shape[axis]):
        move = np.zeros_like(logits)
        np.moveaxis(move, axis, 0)[c] = STEP
        column = (grad(logits + move) - grad(logits - move)) / (2 * STEP)
        np.moveaxis(diagonal, axis, 0)[c] = np.moveaxis(column, axis, 0)[c]
    return diagonal


def _cases(loss):
    """Options of the loss in pairs, with integer and probability targets.

    The focal losses get each case with the default ``gamma=2`` and more with other
    exponents: below 1 (where ``g''`` of the categorical loss is unbounded), 1, a
    non-integer above 2, and 0 (the cross-entropy); the binary one with ``alpha`` too.
    """
    # The option cases of the loss's kind that this loss takes.
    cases = [case for case in _option_cases(loss) if set(case[0]) <= set(loss.options)]
    if "gamma" not in loss.options:
        return cases
    focal = [({"gamma": 0.5}, False), ({"gamma": 0.5, "reduction": "sum"}, True)]
    focal += [({"gamma": 1.0, "label_smoothing": 0.1}, False), ({"gamma": 0.0}, True)]
    focal += [({**options, "gamma": 3.7}, soft) for options, soft in cases[1:4]]
    if "alpha" in loss.options:
        focal += [({"gamma": 0.3, "alpha": 0.25, "pos_weight": 2.0}, True)]
        focal += [({"gamma": 2.5, "alpha": 0.9, "sample_weight": "weights"}, False)]
    else:
        focal += [({"gamma": 0.3, "label_smoothing": 0.3, "reduction": "sum"}, False)]
    return cases + focal


def _option_cases(loss):
    if loss.categorical:
        return [
            ({}, False),
            ({"reduction": "sum", "class_weight": [0.5, 2.0, 0.0, 1.0, 3.0]}, False),
            ({"reduction": "none", "label_smoothing": 0.2, "ignore_index": 1}, False),
            ({"sample_weight": "weights", "where": "mask"}, False),
            ({"class_weight": [0.5, 2.0, 1.0, 1.0, 3.0], "label_smoothing": 0.1}, True),
            ({"reduction": "sum", "sample_weight": "weights"}, True),
            ({"axis": 0, "reduction": "none"}, False),
            ({"z_loss": 0.1}, False),
            (
                {"softcap": 2.0, "reduction": "sum", "class_weight": [0.5, 2.0, 0.0, 1.0, 3.0]},
                False,
            ),
            (
                {
                    "z_loss": 0.05,
                    "softcap": 1.5,
                    "reduction": "none",
                    "label_smoothing": 0.2,
                    "ignore_index": 1,
                },
                False,
            ),
            ({"z_loss": 0.2, "softcap": 3.0, "sample_weight": "weights", "where": "mask"}, True),
            ({"z_loss": 0.3, "class_weight": [0.5, 2.0, 0.0, 1.0, 3.0]}, True),
            ({"z_loss": 0.1, "softcap": 2.5, "axis": 0, "reduction": "sum"}, False),
        ]
    return [
        ({}, False),
        ({"reduction": "sum", "pos_weight": [0.5, 2.0, 3.0, 1.0, 0.0]}, False),
        ({"reduction": "none", "label_smoothing": 0.2, "where": "mask"}, True),
        ({"sample_weight": "weights", "pos_weight": 2.5}, True),
    ]


def _with_arrays(rng, options, batch_shape):
    made = dict(options)
    if made.get("sample_weight") == "weights":
        made["sample_weight"] = rng.uniform(0.0, 2.0, size=batch_shape)
    if made.get("where") == "mask":
        made["where"] = rng.random(batch_shape) > 0.3
    return made


@pytest.mark.parametrize(
    ("loss", "options", "soft"),
    [(loss, *case) for loss in losses.HESSIAN for case in _cases(loss)],
    ids=[f"{loss.name}-{i}" for loss in losses.HESSIAN for i in range(len(_cases(loss)))],
)
def test_hessian_is_the_derivative_of_the_gradient(rng, loss, options, soft):
    axis = options.get("axis", -1)
    logits, target = loss.make(rng, (6, 5), soft=soft, axis=axis)
    options = _with_arrays(rng, options, loss.batch_shape((6, 5), axis))
    result = loss(logits, target, return_hess=True, **options)
    assert len(result) == 3
    value, grad, hess = result
    expected_value, expected_grad = loss(logits, target, return_grad=True, **options)
    # Without the Hessian a call without options takes the plain lane: the same to rounding.
    np.testing.assert_allclose(value, expected_value, rtol=4 * np.finfo(value.dtype).eps)
    np.testing.assert_allclose(grad, expected_grad, rtol=4 * np.finfo(grad.dtype).eps, atol=1e-300)
    assert hess.shape == logits.shape
    assert hess.dtype == grad.dtype
    np.testing.assert_allclose(
        hess, _numeric_diagonal(loss, logits, target, options), rtol=1e-6, atol=1e-9
    )


def _categorical_diagonal(logits, weights):
    """``s p_c (1 - p_c)`` for every row (``A = 1``), in float64 NumPy.

    ``1 - p_c`` is the other classes' share: for the row's largest logit, the sum of
    the other exponentials, without the cancellation of ``1 - p``.
    """
    x = logits.astype(np.float64)
    rows = np.arange(len(x))
    top = x.argmax(axis=1)
    e = np.exp(x - x[rows, top][:, None])
    total = e.sum(axis=1, keepdims=True)
    rest = total - e
    e_without_top = e.copy()
    e_without_top[rows, top] = 0
    rest[rows, top] = e_without_top.sum(axis=1)
    return weights[:, None] * (e / total) * (rest / total)


@pytest.mark.parametrize("n_classes", [3, 48, 49, 700])
@pytest.mark.parametrize("threads", [1, 2])
def test_categorical_hessian_over_blocks_and_threads(rng, n_classes, threads):
    # Both layouts of the kernel (classes up to 48 are transposed) and many blocks.
    import crossentropy as ce

    n_rows = (1 << 19) // n_classes + 3
    logits, target = losses.BY_NAME["categorical_cross_entropy_with_logits"].make(
        rng, (n_rows, n_classes)
    )
    weights = rng.uniform(0.0, 2.0, size=n_rows)
    weights[::7] = 0
    with ce.num_threads(threads):
        _, _, hess = ce.categorical_cross_entropy_with_logits(
            logits, target, sample_weight=weights, reduction="sum", return_hess=True
        )
    np.testing.assert_allclose(
        hess, _categorical_diagonal(logits, weights), rtol=1e-12, atol=1e-300
    )


@losses.parametrize(losses.HESSIAN)
def test_hessian_of_rows_left_out_is_zero(loss):
    # A row of -inf logits whose target weighs 0, and a row left out by where.
    if loss.categorical:
        logits = np.array([[-np.inf, -np.inf, -np.inf], [1.0, 2.0, 3.0], [0.0, 50.0, -50.0]])
        target = np.array([0, 1, 1])
        options = {"class_weight": [0.0, 1.0, 1.0], "where": [True, False, True]}
    else:
        logits = np.array([[np.inf, -np.inf, 1.0], [0.0, 40.0, -40.0]])
        target = np.array([[0.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
        options = {"where": [[True, True, False], [True, True, True]]}
    _, grad, hess = loss(logits, target, return_hess=True, **options)
    assert np.all(np.isfinite(hess))
    if "gamma" in loss.options:
        # The focal losses are not convex; their values are tested in test_focal.py.
        np.testing.assert_array_equal(hess[:2] if loss.categorical else hess[0], 0)
        return
    assert np.all(hess >= 0)
    if loss.categorical:
        np.testing.assert_array_equal(hess[:2], 0)
        # softmax of (0, 50, -50): p (1 - p) of the largest keeps its digits.
        p_small = np.exp(-50.0) / (1 + np.exp(-50.0) + np.exp(-100.0))
        np.testing.assert_allclose(hess[2, 0], p_small * (1 - p_small), rtol=1e-14)
    else:
        np.testing.assert_array_equal(hess[0], 0)  # +-inf: sigmoid(x) sigmoid(-x) = 0
        np.testing.assert_array_equal(grad[0, 2], 0)
        s = np.exp(-40.0) / (1 + np.exp(-40.0)) ** 2
        np.testing.assert_allclose(hess[1, 1:], [s / 5, s / 5], rtol=1e-14)  # D = 5


@losses.parametrize(losses.HESSIAN)
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_hessian_has_the_computation_dtype(rng, loss, dtype):
    logits, target = loss.make(rng, (4, 3), dtype=dtype)
    _, grad, hess = loss(logits, target, return_hess=True)
    assert hess.dtype == grad.dtype == np.float32
    expected = loss(logits.astype(np.float64), target, return_hess=True)[2]
    np.testing.assert_allclose(hess, expected, rtol=1e-5, atol=1e-7)


@losses.parametrize(losses.HESSIAN)
def test_return_hess_must_be_a_bool(rng, loss):
    logits, target = loss.make(rng, (4, 3))
    with pytest.raises(TypeError, match="return_hess must be a bool, got 1 of type int"):
        loss(logits, target, return_hess=1)


@losses.parametrize(losses.HESSIAN)
def test_hessian_on_dask_equals_numpy(rng, loss):
    da = pytest.importorskip("dask.array")
    logits, target = loss.make(rng, (9, 4))
    for reduction in ("mean", "sum", "none"):
        expected = loss(logits, target, reduction=reduction, return_hess=True)
        lazy = loss(
            da.from_array(logits, chunks=(4, 4)),
            da.from_array(target, chunks=4 if loss.categorical else (4, 4)),
            reduction=reduction,
            return_hess=True,
        )
        for got, want in zip(da.compute(*lazy), expected, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-300)
