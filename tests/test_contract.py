"""The contract fixes: the mean of unnormalized targets, masked arrays, warnings at the
caller's line, extreme weights, and the mistakes people make with the argument order."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import crossentropy as ce

from . import losses, reference

CATEGORICAL = losses.CATEGORICAL
BINARY = losses.BINARY
CCE = losses.BY_NAME["categorical_cross_entropy_with_logits"]
CCP = losses.BY_NAME["categorical_cross_entropy"]
BCE = losses.BY_NAME["binary_cross_entropy_with_logits"]
BCP = losses.BY_NAME["binary_cross_entropy"]


def _first(function, rng, shape):
    """A valid first argument: logits, or probabilities (rows that sum to 1 for categorical)."""
    return function.make(rng, shape)[0]


# -- 7. the mean of probability targets whose rows do not sum to 1 ------------------------


@pytest.mark.filterwarnings("ignore::crossentropy.ProbabilitySumWarning")
@losses.parametrize(CATEGORICAL, "function")
@pytest.mark.parametrize("class_weight", [None, "ones", "random"])
@pytest.mark.parametrize("sample_weight", [False, True], ids=["unweighted", "sample-weighted"])
def test_mean_of_unnormalized_targets_divides_by_their_total_weight(
    rng, function, class_weight, sample_weight
):
    first = _first(function, rng, (5, 4))
    target = rng.uniform(0.0, 0.6, size=(5, 4))  # rows sum to about 1.2, not 1
    options = {}
    if class_weight == "ones":
        options["class_weight"] = np.ones(4)
    elif class_weight == "random":
        options["class_weight"] = rng.uniform(0.2, 3.0, size=4)
    if sample_weight:
        options["sample_weight"] = rng.uniform(0.5, 2.0, size=5)
    with pytest.warns(ce.ProbabilitySumWarning):
        got = function(first, target, **options)
    expected = function.oracle(first, target, **options)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # D = sum s * sum_c w_c t_c, not the number of rows
    weights = np.ones(4) if class_weight in (None, "ones") else options["class_weight"]
    s = options.get("sample_weight", np.ones(5))
    total = float(np.sum(s * (target @ weights)))
    summed = function(first, target, reduction="sum", **options)
    np.testing.assert_allclose(got, summed / total, rtol=1e-12)


@losses.parametrize(CATEGORICAL, "function")
def test_class_weight_of_ones_changes_nothing(rng, function):
    first = _first(function, rng, (6, 3))
    target = rng.uniform(0.0, 1.0, size=(6, 3))
    with pytest.warns(ce.ProbabilitySumWarning):
        plain = function(first, target, return_grad=True)
    with pytest.warns(ce.ProbabilitySumWarning):
        ones = function(first, target, class_weight=np.ones(3), return_grad=True)
    np.testing.assert_allclose(ones[0], plain[0], rtol=1e-14)
    np.testing.assert_allclose(ones[1], plain[1], rtol=1e-14)


@losses.parametrize(CATEGORICAL, "function")
def test_an_all_zero_target_row_weighs_nothing(rng, function):
    first = _first(function, rng, (4, 3))
    target = np.eye(3)[[0, 1, 2, 0]].astype(float)
    target[2] = 0.0
    with pytest.warns(ce.ProbabilitySumWarning):
        loss, grad = function(first, target, return_grad=True)
    kept = [0, 1, 3]
    expected = function(first[kept], target[kept])
    np.testing.assert_allclose(loss, expected, rtol=1e-12)
    np.testing.assert_array_equal(grad[2], 0.0)
    zeros = np.zeros((3, 3))
    with pytest.warns(ce.ProbabilitySumWarning):
        loss, grad = function(first[:3], zeros, return_grad=True)
    assert math.isnan(loss)
    np.testing.assert_array_equal(grad, 0.0)


# -- 8. NumPy masked arrays ------------------------------------------------------------------


@losses.parametrize(BINARY, "function")
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_masked_input_equals_where(rng, function, reduction):
    first = _first(function, rng, (4, 3))
    target = rng.integers(0, 2, size=(4, 3)).astype(float)
    mask = rng.random((4, 3)) < 0.3
    hidden = first.copy()
    hidden[mask] = np.nan  # masked values are never read
    masked = np.ma.masked_array(hidden, mask=mask)
    loss, grad = function(masked, target, reduction=reduction, return_grad=True)
    expected, expected_grad = function(
        first, target, where=~mask, reduction=reduction, return_grad=True
    )
    np.testing.assert_allclose(loss, expected, rtol=1e-13)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-13)
    assert not isinstance(loss, np.ma.MaskedArray)
    np.testing.assert_allclose(
        loss, function.oracle(first, target, where=~mask, reduction=reduction), rtol=1e-12
    )


@losses.parametrize(CATEGORICAL, "function")
def test_categorical_masked_rows_are_left_out(rng, function):
    first = _first(function, rng, (5, 3))
    labels = np.array([0, 2, 1, 1, 0])
    mask = np.zeros((5, 3), dtype=bool)
    mask[[1, 3]] = True
    hidden = first.copy()
    hidden[mask] = -7.0  # would be out of [0, 1] for probabilities: never read
    loss, grad = function(np.ma.masked_array(hidden, mask=mask), labels, return_grad=True)
    where = ~mask.all(axis=1)
    expected, expected_grad = function(first, labels, where=where, return_grad=True)
    np.testing.assert_allclose(loss, expected, rtol=1e-13)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-13)
    np.testing.assert_allclose(loss, function.oracle(first, labels, where=where), rtol=1e-12)


@losses.parametrize(CATEGORICAL, "function")
def test_a_partly_masked_row_is_refused(rng, function):
    first = _first(function, rng, (3, 3))
    mask = np.zeros((3, 3), dtype=bool)
    mask[1, 0] = True
    with pytest.raises(ValueError, match="some but not all classes of a row masked"):
        function(np.ma.masked_array(first, mask=mask), [0, 1, 2])


@losses.parametrize(CATEGORICAL, "function")
def test_masked_labels_and_masked_soft_target_rows_are_left_out(rng, function):
    first = _first(function, rng, (4, 3))
    labels = np.ma.masked_array([0, 99, 2, 1], mask=[False, True, False, False])
    where = np.array([True, False, True, True])
    expected = function(first, np.array([0, 0, 2, 1]), where=where)
    np.testing.assert_allclose(function(first, labels), expected, rtol=1e-13)
    soft = np.eye(3)[[0, 0, 2, 1]]
    soft[1] = np.nan
    soft_mask = np.zeros((4, 3), dtype=bool)
    soft_mask[1] = True
    got = function(first, np.ma.masked_array(soft, mask=soft_mask))
    np.testing.assert_allclose(got, expected, rtol=1e-13)


@losses.parametrize(BINARY, "function")
def test_masked_binary_target_leaves_its_element_out(rng, function):
    first = _first(function, rng, (6,))
    target = np.ma.masked_array([1.0, 7.0, 0.0, 1.0, 0.5, 0.0], mask=[0, 1, 0, 0, 0, 1])
    where = ~np.ma.getmaskarray(target)
    expected = function(first, np.ma.getdata(target).clip(0, 1), where=where)
    np.testing.assert_allclose(function(first, target), expected, rtol=1e-13)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("sample_weight", np.ma.masked_array([1.0, 2.0, 3.0], mask=[0, 1, 0])),
        ("class_weight", np.ma.masked_array([1.0, 2.0, 3.0], mask=[0, 0, 1])),
        ("where", np.ma.masked_array([True, False, True], mask=[1, 0, 0])),
    ],
)
def test_masked_weights_are_refused(rng, option, value):
    with pytest.raises(ValueError, match=f"{option} must not have masked entries"):
        CCE(rng.normal(size=(3, 3)), [0, 1, 2], **{option: value})


def test_masked_pos_weight_is_refused(rng):
    value = np.ma.masked_array([1.0, 2.0], mask=[0, 1])
    with pytest.raises(ValueError, match="pos_weight must not have masked entries"):
        BCE(rng.normal(size=(3, 2)), np.ones((3, 2)), pos_weight=value)


def test_masked_array_without_masked_entries_is_its_data(rng):
    x = rng.normal(size=(4, 3))
    labels = np.array([0, 1, 2, 0])
    np.testing.assert_array_equal(CCE(np.ma.masked_array(x), labels), CCE(x, labels))


# -- 9. warnings point at the caller's line ----------------------------------------------


def _warning_of(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    assert len(caught) == 1, [str(w.message) for w in caught]
    return caught[0]


@losses.parametrize(CATEGORICAL, "function")
def test_row_sum_warning_points_at_the_callers_line(function):
    first = np.array([[0.2, 0.3, 0.1]]) if not function.from_logits else np.zeros((1, 3))
    target = [0] if not function.from_logits else np.array([[0.5, 0.1, 0.1]])
    caught = _warning_of(lambda: function.function(first, target))  # not through the registry
    assert caught.category is ce.ProbabilitySumWarning
    assert issubclass(ce.ProbabilitySumWarning, UserWarning)
    assert caught.filename == __file__


def test_row_sum_warning_can_be_silenced_by_its_category():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", ce.ProbabilitySumWarning)
        ce.categorical_cross_entropy([[0.2, 0.3, 0.1]], [0])


def test_dask_warnings_point_at_the_callers_line():
    da = pytest.importorskip("dask.array")
    import dask

    probs = da.from_array(np.array([[0.2, 0.3, 0.1], [0.5, 0.5, 0.0]]), chunks=(1, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no data is read before compute: nothing to warn of
        ce.categorical_cross_entropy(probs, da.from_array(np.array([0, 1]), chunks=1))
    labels = da.from_array(np.array([[1, 0, 0], [0, 1, 0]]), chunks=(1, 3))
    caught = _warning_of(
        lambda: ce.binary_cross_entropy(labels, probs)
    )  # the argument order, at build time
    assert caught.filename == __file__
    loss = ce.categorical_cross_entropy(probs, da.from_array(np.array([0, 1]), chunks=1))
    with dask.config.set(scheduler="synchronous"):
        caught = _warning_of(loss.compute)  # on this thread: the line that computes
    assert caught.category is ce.ProbabilitySumWarning
    assert caught.filename == __file__


# -- 10. extreme weights ---------------------------------------------------------------------


@losses.parametrize(losses.ALL, "function")
@pytest.mark.parametrize("weight", [1e-320, 1e-310, 1e-200, 1e200, 1e300])
def test_tiny_and_huge_sample_weights_give_the_unweighted_mean(rng, function, weight):
    shape = (5, 3)
    first = _first(function, rng, shape)
    target = [0, 2, 1, 1, 0] if function.categorical else rng.integers(0, 2, shape)
    batch = (5,) if function.categorical else shape
    plain, plain_grad = function(first, target, return_grad=True)
    with np.errstate(all="raise"):
        loss, grad = function(first, target, sample_weight=np.full(batch, weight), return_grad=True)
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(loss, plain, rtol=1e-13)
    np.testing.assert_allclose(grad, plain_grad, rtol=1e-13)


@losses.parametrize(CATEGORICAL, "function")
@pytest.mark.parametrize("weight", [1e-320, 1e-300, 1e300])
@pytest.mark.parametrize("soft", [False, True], ids=["labels", "soft"])
def test_tiny_and_huge_class_weights_give_the_unweighted_mean(rng, function, weight, soft):
    first = _first(function, rng, (4, 3))
    target = np.array([0, 2, 1, 1])
    if soft:
        target = np.eye(3)[target]
    plain, plain_grad = function(first, target, return_grad=True)
    loss, grad = function(first, target, class_weight=np.full(3, weight), return_grad=True)
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(loss, plain, rtol=1e-13)
    np.testing.assert_allclose(grad, plain_grad, rtol=1e-13)


def test_subnormal_total_weight_mixed_with_normal_class_weights(rng):
    x = rng.normal(size=(3, 2))
    labels = np.array([1, 1, 1])
    loss, grad = CCE(x, labels, class_weight=[1.0, 1e-310], return_grad=True)
    plain, plain_grad = CCE(x, labels, return_grad=True)
    assert np.all(np.isfinite(grad))
    # the weight 1e-310 is subnormal: it and the losses it weighs keep about 35 bits
    np.testing.assert_allclose(loss, plain, rtol=1e-9)
    np.testing.assert_allclose(grad, plain_grad, rtol=1e-9)


def test_float32_tiny_weights_give_finite_exact_gradients(rng):
    x = rng.normal(size=(6, 4)).astype(np.float32)
    labels = np.array([0, 1, 2, 3, 0, 1])
    plain, plain_grad = CCE(x, labels, return_grad=True)
    loss, grad = CCE(x, labels, sample_weight=np.full(6, 1e-42), return_grad=True)
    assert grad.dtype == np.float32
    np.testing.assert_allclose(loss, plain, rtol=1e-6)
    np.testing.assert_allclose(grad, plain_grad, rtol=1e-6)


@pytest.mark.parametrize("soft", [False, True, "class_weight"], ids=["labels", "soft", "soft+w"])
def test_minus_inf_row_whose_target_weighs_nothing_has_zero_gradient(soft):
    x = np.array([[-np.inf, -np.inf, -np.inf], [1.0, 2.0, 0.5]])
    if soft == "class_weight":  # a target on a class of weight 0
        target = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        loss, grad = CCE(x, target, class_weight=[0.0, 1.0, 1.0], return_grad=True)
    elif soft:
        target = np.array([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        with pytest.warns(ce.ProbabilitySumWarning):
            loss, grad = CCE(x, target, return_grad=True)
    else:
        loss, grad = CCE(x, [0, 1], class_weight=[0.0, 1.0, 1.0], return_grad=True)
    np.testing.assert_array_equal(grad[0], 0.0)
    expected = reference.categorical(x[1:], [1], logits=True)
    np.testing.assert_allclose(loss, expected, rtol=1e-13)
    assert np.all(np.isfinite(grad))


# -- 11. mistakes with the argument order and the options ---------------------------------


@losses.parametrize(losses.PROBABILITIES, "function")
@pytest.mark.parametrize("dtype", [np.int64, np.bool_])
def test_integer_probabilities_warn_naming_the_order(function, dtype):
    if not function.categorical:
        y_true, y_proba = np.array([1, 0, 1]).astype(dtype), np.array([0.9, 0.2, 0.6])
    else:
        y_true, y_proba = np.eye(2)[[0, 1]].astype(dtype), np.array([[0.0, 1.0], [1.0, 0.0]])
    with pytest.warns(UserWarning, match=r"takes \(probs, target\).*log_loss") as caught:
        function.function(y_true, y_proba)  # not through the registry: the line is this one
    assert caught[0].filename == __file__


def test_float_probabilities_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        BCP(np.array([0.9, 0.2]), np.array([1, 0]))


@losses.parametrize(losses.ALL, "function")
@pytest.mark.parametrize("flag", [1, "yes", None, 1.0])
def test_return_grad_must_be_a_bool(rng, function, flag):
    first = _first(function, rng, (2, 2))
    target = [0, 1] if function.categorical else np.ones((2, 2))
    with pytest.raises(TypeError, match="return_grad must be a bool"):
        function(first, target, return_grad=flag)
    loss, _ = function(first, target, return_grad=np.True_)
    np.testing.assert_allclose(loss, function(first, target), rtol=1e-15)


def test_integer_one_hot_target_suggests_a_float_cast(rng):
    with pytest.raises(ValueError, match="cast the target to float"):
        CCE(rng.normal(size=(3, 4)), np.eye(4, dtype=int)[[0, 1, 2]])


def test_pytorch_layout_suggests_axis_1(rng):
    logits = rng.normal(size=(2, 5, 4, 3))
    target = rng.integers(0, 5, size=(2, 4, 3))
    with pytest.raises(ValueError, match="axis=1"):
        CCE(logits, target)
    expected = reference.categorical(logits, target, logits=True, axis=1)
    np.testing.assert_allclose(CCE(logits, target, axis=1), expected, rtol=1e-12)


def test_dict_class_weight_is_explained(rng):
    with pytest.raises(TypeError, match=r"class_weight must be None, 'balanced' or an array of 2 "):
        CCE(rng.normal(size=(3, 2)), [0, 1, 1], class_weight={0: 1.0, 1: 2.0})
    with pytest.raises(TypeError, match=r"got a dict; pass for instance np\.array\(\[weights"):
        CCE(rng.normal(size=(3, 2)), [0, 1, 1], class_weight={0: 1.0, 1: 2.0})
