"""``log_loss``: scikit-learn's semantics, checked against scikit-learn and the plain loop.

The comparisons with scikit-learn run only where it is installed; the checks against
``reference.categorical`` need nothing but NumPy.
"""

from __future__ import annotations

import inspect
import math
import warnings

import numpy as np
import pytest

import crossentropy as ce

from . import reference


def _probabilities(rng, n, n_classes, dtype=np.float64):
    return rng.dirichlet(np.full(n_classes, 2.0), size=n).astype(dtype)


def _sklearn_log_loss():
    return pytest.importorskip("sklearn.metrics").log_loss


# Labels, probabilities' columns and options: (y_true, n_columns, labels).
_LABEL_CASES = {
    "ints": (np.array([0, 2, 1, 1, 0, 2, 2]), 3, None),
    "ints not from 0": (np.array([5, 7, 9, 7, 5, 9]), 3, None),
    "negative ints": (np.array([-1, 3, -1, 3, 3]), 2, None),
    "strings": (np.array(["spam", "ham", "eggs", "ham", "spam"]), 3, None),
    "string list": (["no", "yes", "yes", "no"], 2, None),
    "bools": (np.array([True, False, False, True, True]), 2, None),
    "integral floats": (np.array([1.0, 0.0, 2.0, 2.0]), 3, None),
    "labels for a missing class": (np.array([1, 2, 2, 1]), 3, [1, 2, 3]),
    "string labels": (np.array(["b", "b", "c"]), 3, ["a", "b", "c"]),
    "uint8 labels in range": (np.array([0, 1, 3, 2, 3], dtype=np.uint8), 4, None),
    "int labels in range given": (np.array([0, 1, 0]), 4, [0, 1, 2, 3]),
}


@pytest.mark.parametrize("case", list(_LABEL_CASES), ids=list(_LABEL_CASES))
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_equals_sklearn(rng, case, normalize, weighted, dtype):
    sk_log_loss = _sklearn_log_loss()
    y_true, n_columns, labels = _LABEL_CASES[case]
    n = len(y_true)
    y_proba = _probabilities(rng, n, n_columns, dtype)
    sample_weight = rng.uniform(0.1, 3.0, n) if weighted else None
    options = {"normalize": normalize, "sample_weight": sample_weight, "labels": labels}
    expected = sk_log_loss(y_true, y_proba, **options)
    got = ce.log_loss(y_true, y_proba, **options)
    assert type(got) is float
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    assert got == pytest.approx(expected, rel=rtol)


@pytest.mark.parametrize("shape", ["1-D", "column"])
@pytest.mark.parametrize("normalize", [True, False])
def test_binary_positive_class_equals_sklearn(rng, shape, normalize):
    sk_log_loss = _sklearn_log_loss()
    y_true = np.array(["neg", "pos", "pos", "neg", "pos"])
    positive = rng.uniform(0, 1, 5)
    positive[0] = 0.0  # clipped
    y_proba = positive if shape == "1-D" else positive[:, None]
    weight = rng.uniform(0.5, 2, 5)
    for sample_weight in (None, weight):
        expected = sk_log_loss(y_true, y_proba, normalize=normalize, sample_weight=sample_weight)
        got = ce.log_loss(y_true, y_proba, normalize=normalize, sample_weight=sample_weight)
        assert got == pytest.approx(expected, rel=1e-12)


def test_clipping_and_extremes_equal_sklearn():
    sk_log_loss = _sklearn_log_loss()
    y_true = [0, 1, 2, 1]
    for dtype in (np.float64, np.float32):
        y_proba = np.array(
            [[0, 0.5, 0.5], [1, 0, 0], [0, 0, 1], [0, 1, 0]], dtype=dtype
        )  # probabilities 0 and 1 of the true class
        assert ce.log_loss(y_true, y_proba) == pytest.approx(
            sk_log_loss(y_true, y_proba), rel=1e-12 if dtype == np.float64 else 1e-6
        )


def test_one_hot_indicator_y_true_equals_sklearn(rng):
    sk_log_loss = _sklearn_log_loss()
    indices = np.array([0, 2, 1, 2, 0])
    y_true = np.eye(3, dtype=int)[indices]
    y_proba = _probabilities(rng, 5, 3)
    assert ce.log_loss(y_true, y_proba) == pytest.approx(sk_log_loss(y_true, y_proba), rel=1e-12)
    assert ce.log_loss(y_true, y_proba) == ce.log_loss(indices, y_proba)


def test_indicator_columns_are_the_classes(rng):
    # A column that is never 1 is still a class, as in scikit-learn.
    indices = np.array([0, 1, 1, 0])
    y_true = np.eye(3, dtype=np.int64)[indices]
    y_proba = _probabilities(rng, 4, 3)
    expected = reference.categorical(y_proba, indices, logits=False)
    assert ce.log_loss(y_true, y_proba) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="labels cannot be given with a label indicator"):
        ce.log_loss(y_true, y_proba, labels=[0, 1, 2])
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    assert ce.log_loss(y_true, y_proba) == pytest.approx(
        sklearn_metrics.log_loss(y_true, y_proba), rel=1e-12
    )


def test_large_random_cases_equal_sklearn(rng):
    sk_log_loss = _sklearn_log_loss()
    for n, n_classes in ((1000, 2), (5000, 7), (20000, 30)):
        y_true = rng.integers(0, n_classes, n)
        y_proba = _probabilities(rng, n, n_classes)
        weight = rng.uniform(0, 2, n)
        for sample_weight in (None, weight):
            for normalize in (True, False):
                expected = sk_log_loss(
                    y_true, y_proba, normalize=normalize, sample_weight=sample_weight
                )
                got = ce.log_loss(y_true, y_proba, normalize=normalize, sample_weight=sample_weight)
                assert got == pytest.approx(expected, rel=1e-12)


def test_float16_is_close_to_sklearn(rng):
    sk_log_loss = _sklearn_log_loss()
    y_true = np.array([0, 1, 1, 0])
    y_proba = np.array([[1.0, 0.0], [0.3, 0.7], [0.0, 1.0], [0.0, 1.0]], dtype=np.float16)
    # scikit-learn computes in float16, this package in float32 with float16's eps.
    assert ce.log_loss(y_true, y_proba) == pytest.approx(sk_log_loss(y_true, y_proba), rel=1e-3)


# Checks that need no scikit-learn: the plain loop of reference.py on the indices that
# scikit-learn's ordering gives.


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_string_labels_equal_reference(rng, normalize, weighted, dtype):
    y_true = np.array(["spam", "ham", "eggs", "ham", "spam", "eggs", "ham"])
    indices = np.array([2, 1, 0, 1, 2, 0, 1])  # sorted: eggs, ham, spam
    y_proba = _probabilities(rng, len(y_true), 3, dtype)
    sample_weight = rng.uniform(0.1, 3.0, len(y_true)) if weighted else None
    expected = reference.categorical(
        y_proba,
        indices,
        logits=False,
        sample_weight=sample_weight,
        reduction="mean" if normalize else "sum",
    )
    got = ce.log_loss(y_true, y_proba, normalize=normalize, sample_weight=sample_weight)
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    assert got == pytest.approx(expected, rel=rtol)


@pytest.mark.parametrize(
    ("y_true", "labels", "indices", "n_columns"),
    [
        ([3, 1, 2, 1], None, [2, 0, 1, 0], 3),
        ([True, False, True], None, [1, 0, 1], 2),
        ([-2.0, 5.0, 5.0], None, [0, 1, 1], 2),
        ([1, 2, 2], [1, 2, 3], [0, 1, 1], 3),
        (["b", "c"], ["a", "b", "c", "d"], [1, 2], 4),
        ([0, 1, 2, 3, 1], None, [0, 1, 2, 3, 1], 4),
    ],
)
def test_label_order_equals_reference(rng, y_true, labels, indices, n_columns):
    y_proba = _probabilities(rng, len(y_true), n_columns)
    sample_weight = rng.uniform(0.5, 2.0, len(y_true))
    for weight in (None, sample_weight):
        expected = reference.categorical(
            y_proba, np.array(indices), logits=False, sample_weight=weight
        )
        assert ce.log_loss(y_true, y_proba, labels=labels, sample_weight=weight) == pytest.approx(
            expected, rel=1e-12
        )


def test_binary_1d_equals_reference(rng):
    positive = rng.uniform(0, 1, 6)
    y_true = np.array([0, 1, 1, 0, 1, 0])
    expected = reference.categorical(
        np.stack([1 - positive, positive], axis=1), y_true, logits=False, reduction="sum"
    )
    assert ce.log_loss(y_true, positive, normalize=False) == pytest.approx(expected, rel=1e-12)
    assert ce.log_loss(y_true, positive[:, None], normalize=False) == pytest.approx(
        expected, rel=1e-12
    )


def test_is_categorical_cross_entropy_on_indices(rng):
    # One kernel, one clipping rule and one reduction rule: bit for bit the same.
    y_proba = _probabilities(rng, 1000, 5)
    y_proba[:10, 0] = 0.0
    y_proba[:10] /= y_proba[:10].sum(axis=1, keepdims=True)
    indices = rng.integers(0, 5, 1000)
    names = np.array(["a", "b", "c", "d", "e"])[indices]
    weight = rng.uniform(0, 2, 1000)
    for y_true in (indices, names):
        assert ce.log_loss(y_true, y_proba) == float(ce.categorical_cross_entropy(y_proba, indices))
        assert ce.log_loss(y_true, y_proba, normalize=False, sample_weight=weight) == float(
            ce.categorical_cross_entropy(y_proba, indices, reduction="sum", sample_weight=weight)
        )


def test_clipping_at_the_dtype_eps():
    for dtype in (np.float64, np.float32):
        eps = float(np.finfo(dtype).eps)
        y_proba = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=dtype)
        got = ce.log_loss([1, 0], y_proba, normalize=False)
        assert got == pytest.approx(-2 * math.log(np.float64(dtype(eps))), rel=1e-6)


def test_integer_probabilities_are_floats_without_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = ce.log_loss([0, 1, 0], [0, 1, 0])
    assert got == pytest.approx(-math.log1p(-np.finfo(np.float64).eps))


def test_inputs_are_not_modified(rng):
    y_true = np.array([2, 0, 1, 1])
    y_proba = _probabilities(rng, 4, 3)
    weight = np.array([1.0, 2.0, 0.5, 1.0])
    copies = [a.copy() for a in (y_true, y_proba, weight)]
    ce.log_loss(y_true, y_proba, sample_weight=weight)
    for before, after in zip(copies, (y_true, y_proba, weight), strict=True):
        np.testing.assert_array_equal(before, after)


def test_fast_path_gives_the_general_path_result(rng):
    # Integer labels in [0, C) with every class present skip the sort; as strings they
    # take np.unique: both must give the same columns.
    y_true = rng.integers(0, 12, 5000)
    y_proba = _probabilities(rng, 5000, 12)
    as_text = np.char.zfill(y_true.astype(str), 2)  # "00" < "01" < ... < "11"
    assert ce.log_loss(y_true, y_proba) == ce.log_loss(as_text, y_proba)
    for dtype in (np.int8, np.uint16, np.int32, np.uint64):
        assert ce.log_loss(y_true.astype(dtype), y_proba) == ce.log_loss(y_true, y_proba)


# Errors and warnings, one mistake at a time.


def test_rows_that_do_not_sum_to_one_warn():
    y_proba = np.array([[0.2, 0.7], [0.6, 0.3], [0.4, 0.7], [0.8, 0.3]])
    with pytest.warns(ce.ProbabilitySumWarning, match=r"y_proba.*do not sum to 1"):
        ce.log_loss([0, 1, 1, 0], y_proba)
    assert issubclass(ce.ProbabilitySumWarning, UserWarning)


def test_a_single_class_without_labels_raises():
    with pytest.raises(ValueError, match=r"y_true contains only one label \(2\).*labels="):
        ce.log_loss([2, 2], [[0.2, 0.8], [0.6, 0.4]])
    with pytest.raises(ValueError, match=r"only one label.*'a'"):
        ce.log_loss(["a", "a"], [[0.2, 0.8], [0.6, 0.4]])


def test_a_single_label_in_labels_raises():
    with pytest.raises(ValueError, match=r"labels must hold at least two classes, got \[1\]"):
        ce.log_loss([1, 1], [[0.2, 0.8], [0.6, 0.4]], labels=[1])


@pytest.mark.parametrize("y_proba", [[[0.2, 0.8], [0.6, 0.4], [0.7, 0.3]], [0.1, 0.2, 0.3]])
def test_inconsistent_lengths_raise(y_proba):
    with pytest.raises(ValueError, match=r"same number of samples, got \[3, 2\]"):
        ce.log_loss([0, 1], y_proba)


def test_sample_weight_of_another_length_raises():
    with pytest.raises(ValueError, match="sample_weight must have one weight per sample, 2"):
        ce.log_loss([0, 1], [[0.2, 0.8], [0.6, 0.4]], sample_weight=[1.0, 1.0, 1.0])


@pytest.mark.parametrize(
    ("sample_weight", "match"),
    [
        ([0.0, 0.0], "sample_weight must hold at least one non-zero"),
        ([[1.0], [1.0]], r"sample_weight must be a 1-D array"),
        (2.0, r"sample_weight must be a 1-D array"),
        ([1.0, -1.0], "sample_weight must be >= 0"),
        ([1.0, np.nan], "sample_weight must be finite"),
    ],
)
def test_bad_sample_weights_raise(sample_weight, match):
    with pytest.raises(ValueError, match=match):
        ce.log_loss([0, 1], [[0.2, 0.8], [0.6, 0.4]], sample_weight=sample_weight)


def test_labels_of_y_true_missing_from_labels_raise():
    with pytest.raises(ValueError, match=r"y_true contains labels \{'b'\} that are not in labels"):
        ce.log_loss(["a", "b", "c"], np.full((3, 3), 1 / 3), labels=["a", "c", "d"])
    with pytest.raises(ValueError, match="not in labels"):
        ce.log_loss(["a", "b"], [[0.2, 0.8], [0.6, 0.4]], labels=[0, 1])
    with pytest.raises(ValueError, match=r"\{5\}"):
        ce.log_loss([0, 5], [[0.2, 0.8], [0.6, 0.4]], labels=[0, 1])


@pytest.mark.parametrize(
    ("y_true", "y_proba", "labels", "match"),
    [
        ([1, 0, 2], np.full((3, 2), 0.5), None, "y_proba has 2 columns but y_true has 3 classes"),
        ([0, 2, 0], np.full((3, 3), 1 / 3), None, "y_proba has 3 columns but y_true has 2 classes"),
        ([0, 1, 2], [0.5, 0.5, 0.5], None, "y_proba has 2 columns but y_true has 3 classes"),
        ([0, 1, 1], np.full((3, 2), 0.5), [0, 1, 2], "y_proba has 2 columns but labels has 3"),
    ],
)
def test_columns_that_do_not_match_the_classes_raise(y_true, y_proba, labels, match):
    with pytest.raises(ValueError, match=match):
        ce.log_loss(y_true, y_proba, labels=labels)


def test_unsorted_labels_warn_and_use_the_sorted_order():
    y_proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])
    with pytest.warns(UserWarning, match=r"labels \['c', 'a', 'b'\] are not sorted") as record:
        got = ce.log_loss(["a", "b", "c"], y_proba, labels=["c", "a", "b"])
    assert not any(issubclass(w.category, ce.ProbabilitySumWarning) for w in record)
    assert got == ce.log_loss(["a", "b", "c"], y_proba)


def test_repeated_labels_raise():
    with pytest.raises(ValueError, match="labels must not repeat a label"):
        ce.log_loss([0, 1], [[0.2, 0.8], [0.6, 0.4]], labels=[0, 1, 1])


@pytest.mark.parametrize(
    ("y_proba", "error", "match"),
    [
        ([[1.5, -0.5], [0.5, 0.5]], ValueError, "y_proba must lie in"),
        ([[np.nan, 1.0], [0.5, 0.5]], ValueError, "y_proba must lie in"),
        ([1.5, 0.5], ValueError, "y_proba must lie in"),
        ([[[0.5, 0.5]], [[0.5, 0.5]]], ValueError, "y_proba must be 1-D .* or 2-D"),
        (np.array([["a", "b"], ["c", "d"]]), TypeError, "y_proba must hold real numbers"),
    ],
)
def test_bad_probabilities_raise(y_proba, error, match):
    with pytest.raises(error, match=match):
        ce.log_loss([0, 1], y_proba)


def test_bad_labels_raise():
    y_proba = [[0.2, 0.8], [0.6, 0.4]]
    with pytest.raises(ValueError, match=r"y_true must hold class labels.*continuous"):
        ce.log_loss([0.5, 1.0], y_proba)
    with pytest.raises(TypeError, match="y_true must hold labels of one kind"):
        ce.log_loss(np.array([0, "a"], dtype=object), y_proba)
    with pytest.raises(ValueError, match="y_true of 2 dimensions must be a label indicator"):
        ce.log_loss(np.array([[1, 1], [0, 1]]), y_proba)
    with pytest.raises(ValueError, match="y_true must be a 1-D"):
        ce.log_loss(np.zeros((2, 1, 1)), y_proba)


def test_empty_input_raises():
    with pytest.raises(ValueError, match="y_proba must hold at least one sample"):
        ce.log_loss([], np.zeros((0, 2)))


def test_normalize_must_be_a_bool():
    with pytest.raises(TypeError, match="normalize must be a bool"):
        ce.log_loss([0, 1], [[0.2, 0.8], [0.6, 0.4]], normalize=1)  # type: ignore[arg-type]


def test_options_are_keyword_only():
    with pytest.raises(TypeError):
        ce.log_loss([0, 1], [[0.2, 0.8], [0.6, 0.4]], False)  # type: ignore[misc]


def test_large_inputs_split_over_threads(rng):
    # Large enough for the checks and the gather to run in several ranges.
    n, n_classes = 400_000, 3
    y_true = rng.integers(0, n_classes, n)
    y_proba = _probabilities(rng, n, n_classes)
    y_proba[-5:] = [1.0, 0.0, 0.0]  # clipped where the true class is not 0
    picked = np.clip(y_proba[np.arange(n), y_true], np.finfo(float).eps, 1 - np.finfo(float).eps)
    expected = -np.log(picked)
    assert ce.log_loss(y_true, y_proba) == pytest.approx(expected.mean(), rel=1e-12)
    with ce.num_threads(1):
        one_thread = ce.log_loss(y_true, y_proba, normalize=False)
    assert ce.log_loss(y_true, y_proba, normalize=False) == pytest.approx(one_thread, rel=1e-12)
    for bad, match in ((np.nan, "y_proba must lie in"), (1.5, r"y_proba must lie in.*1\.5")):
        broken = y_proba.copy()
        broken[-1, 1] = bad
        with pytest.raises(ValueError, match=match):
            ce.log_loss(y_true, broken)
    off = y_proba.copy()
    off[-1] = [0.5, 0.2, 0.2]
    with pytest.warns(ce.ProbabilitySumWarning, match=r"y_proba: 1 row\(s\)"):
        ce.log_loss(y_true, off)


def test_signature_is_sklearns():
    parameters = inspect.signature(ce.log_loss).parameters
    assert list(parameters) == ["y_true", "y_proba", "normalize", "sample_weight", "labels"]
    for name in ("y_true", "y_proba"):
        assert parameters[name].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    defaults = {"normalize": True, "sample_weight": None, "labels": None}
    for name, default in defaults.items():
        assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
        assert parameters[name].default is default
    assert ce.log_loss(y_proba=[[0.2, 0.8], [0.6, 0.4]], y_true=[1, 0]) == ce.log_loss(
        [1, 0], [[0.2, 0.8], [0.6, 0.4]]
    )
