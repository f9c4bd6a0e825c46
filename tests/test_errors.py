"""Bad input: the right exception, a message naming the argument, and nothing modified."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import crossentropy as ce

LOGITS = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
PROBS = np.array([[0.2, 0.5, 0.3], [0.1, 0.1, 0.8]])
LABELS = np.array([1, 2])
BINARY_X = np.array([[0.5, -1.0], [2.0, 0.0]])
BINARY_P = np.array([[0.5, 0.2], [0.9, 0.4]])
BINARY_T = np.array([[1.0, 0.0], [0.0, 1.0]])

CCE = ce.categorical_cross_entropy_with_logits
CCP = ce.categorical_cross_entropy
BCE = ce.binary_cross_entropy_with_logits
BCP = ce.binary_cross_entropy

CASES = {
    # the categorical losses
    "label-too-large": (
        CCE,
        LOGITS,
        np.array([1, 3]),
        {},
        ValueError,
        r"class index 3, outside \[0, 3\)",
    ),
    "label-negative": (CCE, LOGITS, np.array([-1, 0]), {}, ValueError, "class index -1"),
    "label-uint-too-large": (
        CCE,
        LOGITS,
        np.array([1, 7], np.uint8),
        {},
        ValueError,
        "class index 7",
    ),
    "float-labels": (
        CCE,
        LOGITS,
        np.array([1.0, 2.0]),
        {},
        ValueError,
        r"target of shape \(2,\).*integer dtype",
    ),
    "bool-labels": (
        CCE,
        LOGITS,
        np.array([True, False]),
        {},
        TypeError,
        "target must hold integer class indices",
    ),
    "label-shape": (
        CCE,
        LOGITS,
        np.array([1, 2, 0]),
        {},
        ValueError,
        r"target holds class indices and must have shape \(2,\)",
    ),
    "soft-shape": (
        CCE,
        LOGITS,
        np.ones((2, 4)) / 4,
        {},
        ValueError,
        r"must have shape \(2, 3\).*got shape \(2, 4\)",
    ),
    "soft-outside": (
        CCE,
        LOGITS,
        np.array([[1.2, -0.2, 0.0], [0, 0, 1]]),
        {},
        ValueError,
        r"target must lie in \[0, 1\]",
    ),
    "soft-nan": (
        CCE,
        LOGITS,
        np.array([[np.nan, 0.5, 0.5], [0, 0, 1]]),
        {},
        ValueError,
        r"target must lie in \[0, 1\]",
    ),
    "probs-outside": (
        CCP,
        np.array([[1.5, -0.5, 0.0], [0.1, 0.1, 0.8]]),
        LABELS,
        {},
        ValueError,
        r"probs must lie in \[0, 1\]",
    ),
    "probs-nan": (
        CCP,
        np.array([[np.nan, 0.5, 0.5], [0.1, 0.1, 0.8]]),
        LABELS,
        {},
        ValueError,
        r"probs must lie in \[0, 1\]",
    ),
    "class-weight-length": (
        CCE,
        LOGITS,
        LABELS,
        {"class_weight": [1.0, 2.0]},
        ValueError,
        r"class_weight must have shape \(3,\)",
    ),
    "class-weight-negative": (
        CCE,
        LOGITS,
        LABELS,
        {"class_weight": [1.0, -2.0, 1.0]},
        ValueError,
        "class_weight must be >= 0",
    ),
    "class-weight-nan": (
        CCE,
        LOGITS,
        LABELS,
        {"class_weight": [1.0, np.nan, 1.0]},
        ValueError,
        "class_weight must be finite",
    ),
    "sample-weight-negative": (
        CCE,
        LOGITS,
        LABELS,
        {"sample_weight": [1.0, -1.0]},
        ValueError,
        "sample_weight must be >= 0",
    ),
    "sample-weight-inf": (
        CCE,
        LOGITS,
        LABELS,
        {"sample_weight": [np.inf, 1.0]},
        ValueError,
        "sample_weight must be finite",
    ),
    "sample-weight-shape": (
        CCE,
        LOGITS,
        LABELS,
        {"sample_weight": [1.0, 2.0, 3.0]},
        ValueError,
        r"sample_weight of shape \(3,\) does not broadcast",
    ),
    "where-shape": (
        CCE,
        LOGITS,
        LABELS,
        {"where": [True, False, True]},
        ValueError,
        r"where of shape \(3,\) does not broadcast",
    ),
    "where-not-bool": (
        CCE,
        LOGITS,
        LABELS,
        {"where": [1, 0]},
        TypeError,
        "where must be a boolean array",
    ),
    "smoothing-above-one": (
        CCE,
        LOGITS,
        LABELS,
        {"label_smoothing": 1.5},
        ValueError,
        r"label_smoothing must be in \[0, 1\]",
    ),
    "smoothing-negative": (
        CCE,
        LOGITS,
        LABELS,
        {"label_smoothing": -0.1},
        ValueError,
        r"label_smoothing must be in \[0, 1\]",
    ),
    "smoothing-string": (
        CCE,
        LOGITS,
        LABELS,
        {"label_smoothing": "0.1"},
        TypeError,
        "label_smoothing must be a real number",
    ),
    "ignore-index-soft": (
        CCE,
        LOGITS,
        PROBS,
        {"ignore_index": 0},
        ValueError,
        "ignore_index=0 needs integer class indices",
    ),
    "ignore-index-float": (
        CCE,
        LOGITS,
        LABELS,
        {"ignore_index": 1.0},
        TypeError,
        "ignore_index must be an int",
    ),
    "reduction": (
        CCE,
        LOGITS,
        LABELS,
        {"reduction": "average"},
        ValueError,
        "reduction must be one of 'mean', 'sum', 'none', got 'average'",
    ),
    "reduction-none-object": (
        CCE,
        LOGITS,
        LABELS,
        {"reduction": None},
        ValueError,
        "reduction must be one of",
    ),
    "axis-out-of-range": (
        CCE,
        LOGITS,
        LABELS,
        {"axis": 2},
        ValueError,
        "axis 2 is out of range for an input with 2 dimension",
    ),
    "axis-negative-out-of-range": (
        CCE,
        LOGITS,
        LABELS,
        {"axis": -3},
        ValueError,
        "axis -3 is out of range",
    ),
    "axis-float": (CCE, LOGITS, LABELS, {"axis": 1.0}, TypeError, "axis must be an int"),
    "zero-d-logits": (
        CCE,
        np.float64(1.0),
        np.int64(0),
        {},
        ValueError,
        "logits must have at least one dimension",
    ),
    "no-classes": (CCE, np.zeros((2, 0)), np.array([0, 0]), {}, ValueError, "at least one class"),
    "complex-logits": (
        CCE,
        LOGITS.astype(complex),
        LABELS,
        {},
        TypeError,
        "logits must hold real numbers",
    ),
    "string-logits": (
        CCE,
        np.array([["a", "b"]]),
        np.array([0]),
        {},
        TypeError,
        "logits must hold real numbers",
    ),
    "object-logits": (
        CCE,
        np.array([[1.0, None]], dtype=object),
        np.array([0]),
        {},
        TypeError,
        "logits must hold real numbers",
    ),
    "complex-target": (
        CCE,
        LOGITS,
        PROBS.astype(complex),
        {},
        TypeError,
        "target must hold real numbers",
    ),
    "eps-negative": (
        CCP,
        PROBS,
        LABELS,
        {"eps": -1e-3},
        ValueError,
        r"eps must be None or a number in \[0, 0.5\]",
    ),
    "eps-large": (
        CCP,
        PROBS,
        LABELS,
        {"eps": 0.7},
        ValueError,
        r"eps must be None or a number in \[0, 0.5\]",
    ),
    # the binary losses
    "binary-target-shape": (
        BCE,
        BINARY_X,
        np.array([1.0, 0.0]),
        {},
        ValueError,
        r"target must have the input's shape \(2, 2\), got shape \(2,\)",
    ),
    "binary-target-int": (
        BCE,
        BINARY_X,
        np.array([[1, 2], [0, 1]]),
        {},
        ValueError,
        "target with an integer dtype must hold only 0 and 1, got 2",
    ),
    "binary-target-outside": (
        BCE,
        BINARY_X,
        np.array([[1.5, 0.0], [0.0, 1.0]]),
        {},
        ValueError,
        r"target must lie in \[0, 1\]",
    ),
    "binary-target-nan": (
        BCP,
        BINARY_P,
        np.array([[np.nan, 0.0], [0.0, 1.0]]),
        {},
        ValueError,
        r"target must lie in \[0, 1\]",
    ),
    "binary-probs-outside": (
        BCP,
        np.array([[1.5, 0.2], [0.9, 0.4]]),
        BINARY_T,
        {},
        ValueError,
        r"probs must lie in \[0, 1\]",
    ),
    "binary-probs-nan": (
        BCP,
        np.array([[np.nan, 0.2], [0.9, 0.4]]),
        BINARY_T,
        {},
        ValueError,
        r"probs must lie in \[0, 1\]",
    ),
    "pos-weight-negative": (
        BCE,
        BINARY_X,
        BINARY_T,
        {"pos_weight": [-1.0, 1.0]},
        ValueError,
        "pos_weight must be >= 0",
    ),
    "pos-weight-nan": (
        BCE,
        BINARY_X,
        BINARY_T,
        {"pos_weight": [np.nan, 1.0]},
        ValueError,
        "pos_weight must be finite",
    ),
    "pos-weight-shape": (
        BCE,
        BINARY_X,
        BINARY_T,
        {"pos_weight": [1.0, 2.0, 3.0]},
        ValueError,
        r"pos_weight of shape \(3,\) does not broadcast",
    ),
    "binary-sample-weight": (
        BCP,
        BINARY_P,
        BINARY_T,
        {"sample_weight": [[-1.0], [1.0]]},
        ValueError,
        "sample_weight must be >= 0",
    ),
    "binary-smoothing": (
        BCE,
        BINARY_X,
        BINARY_T,
        {"label_smoothing": 2},
        ValueError,
        r"label_smoothing must be in \[0, 1\]",
    ),
    "binary-reduction": (
        BCP,
        BINARY_P,
        BINARY_T,
        {"reduction": "max"},
        ValueError,
        "reduction must be one of",
    ),
    "binary-eps": (
        BCP,
        BINARY_P,
        BINARY_T,
        {"eps": np.inf},
        ValueError,
        "eps must be None or a number",
    ),
    "binary-where": (
        BCP,
        BINARY_P,
        BINARY_T,
        {"where": np.ones((2, 2), dtype=np.int8)},
        TypeError,
        "where must be a boolean array",
    ),
    "binary-complex": (
        BCE,
        BINARY_X.astype(complex),
        BINARY_T,
        {},
        TypeError,
        "logits must hold real numbers",
    ),
    "binary-ragged": (
        BCE,
        [[1.0, 2.0], [3.0]],
        BINARY_T,
        {},
        TypeError,
        "logits must be array-like",
    ),
    # more categorical cases
    "label-too-large-probs": (
        CCP,
        PROBS,
        np.array([0, 3]),
        {},
        ValueError,
        r"class index 3, outside \[0, 3\)",
    ),
    "label-too-large-with-ignore-index": (
        CCE,
        LOGITS,
        np.array([-100, 5]),
        {"ignore_index": -100},
        ValueError,
        "class index 5.*ignore_index is -100",
    ),
    "label-out-of-range-axis0": (
        CCE,
        LOGITS,
        np.array([0, 2, 1]),
        {"axis": 0},
        ValueError,
        r"class index 2, outside \[0, 2\) for 2 classes along axis 0",
    ),
    "labels-shape-axis0": (
        CCE,
        LOGITS,
        LABELS,
        {"axis": 0},
        ValueError,
        r"target holds class indices and must have shape \(3,\).*got shape \(2,\)",
    ),
    "int-one-hot-target": (
        CCE,
        LOGITS,
        np.eye(3, dtype=np.int64)[[1, 2]],
        {},
        ValueError,
        r"target holds class indices and must have shape \(2,\).*got shape \(2, 3\)",
    ),
    "float-labels-probs": (
        CCP,
        PROBS,
        np.array([1.0, 2.0], np.float32),
        {},
        ValueError,
        r"target of shape \(2,\).*probs of shape \(2, 3\).*integer dtype",
    ),
    "string-target": (
        CCE,
        LOGITS,
        np.array(["a", "b"]),
        {},
        TypeError,
        "target must hold real numbers",
    ),
    "object-target": (
        CCE,
        LOGITS,
        np.array([1, 2], dtype=object),
        {},
        TypeError,
        "target must hold real numbers",
    ),
    "complex-probs": (
        CCP,
        PROBS.astype(np.complex64),
        LABELS,
        {},
        TypeError,
        "probs must hold real numbers",
    ),
    "class-weight-inf": (
        CCP,
        PROBS,
        LABELS,
        {"class_weight": [1.0, np.inf, 1.0]},
        ValueError,
        "class_weight must be finite",
    ),
    "class-weight-2d": (
        CCE,
        LOGITS,
        LABELS,
        {"class_weight": np.ones((1, 3))},
        ValueError,
        r"class_weight must have shape \(3,\)",
    ),
    "class-weight-complex": (
        CCE,
        LOGITS,
        LABELS,
        {"class_weight": np.array([1j, 1, 1])},
        TypeError,
        "class_weight must hold real numbers",
    ),
    "sample-weight-nan": (
        CCP,
        PROBS,
        LABELS,
        {"sample_weight": np.array([np.nan, 1.0])},
        ValueError,
        "sample_weight must be finite",
    ),
    "sample-weight-string": (
        CCE,
        LOGITS,
        LABELS,
        {"sample_weight": "heavy"},
        TypeError,
        "sample_weight must hold real numbers",
    ),
    "where-float": (
        CCP,
        PROBS,
        LABELS,
        {"where": np.array([1.0, 0.0])},
        TypeError,
        "where must be a boolean array",
    ),
    "ignore-index-bool": (
        CCE,
        LOGITS,
        LABELS,
        {"ignore_index": True},
        TypeError,
        "ignore_index must be an int",
    ),
    "ignore-index-soft-probs": (
        CCP,
        PROBS,
        PROBS,
        {"ignore_index": -100},
        ValueError,
        "ignore_index=-100 needs integer class indices",
    ),
    "smoothing-nan": (
        CCP,
        PROBS,
        LABELS,
        {"label_smoothing": np.nan},
        ValueError,
        r"label_smoothing must be in \[0, 1\]",
    ),
    "eps-nan": (
        CCP,
        PROBS,
        LABELS,
        {"eps": np.nan},
        ValueError,
        r"eps must be None or a number in \[0, 0.5\]",
    ),
    "eps-string": (CCP, PROBS, LABELS, {"eps": "1e-7"}, TypeError, "eps must be a real number"),
    "reduction-upper": (
        CCP,
        PROBS,
        LABELS,
        {"reduction": "MEAN"},
        ValueError,
        "reduction must be one of 'mean', 'sum', 'none', got 'MEAN'",
    ),
    "soft-target-probs-loss-outside": (
        CCP,
        PROBS,
        np.array([[0.5, 0.6, -0.1], [0, 0, 1]]),
        {},
        ValueError,
        r"target must lie in \[0, 1\]",
    ),
    "probs-3d-axis1-outside": (
        CCP,
        np.full((2, 3, 2), 1 / 3) + np.array([0, 0, 2.0])[None, :, None],
        np.zeros((2, 2), np.int64),
        {"axis": 1},
        ValueError,
        r"probs must lie in \[0, 1\]",
    ),
    # more binary cases
    "binary-target-int-negative": (
        BCP,
        BINARY_P,
        np.array([[1, -1], [0, 1]]),
        {},
        ValueError,
        "target with an integer dtype must hold only 0 and 1, got -1",
    ),
    "binary-target-transposed-shape": (
        BCE,
        np.zeros((2, 3)),
        np.zeros((3, 2)),
        {},
        ValueError,
        r"target must have the input's shape \(2, 3\), got shape \(3, 2\)",
    ),
    "binary-target-broadcastable": (
        BCE,
        BINARY_X,
        np.array([[1.0, 0.0]]),
        {},
        ValueError,
        r"target must have the input's shape \(2, 2\), got shape \(1, 2\)",
    ),
    "binary-target-string": (
        BCE,
        BINARY_X,
        np.array([["1", "0"], ["0", "1"]]),
        {},
        TypeError,
        "target must hold real numbers",
    ),
    "binary-probs-negative": (
        BCP,
        np.array([[-1e-12, 0.2], [0.9, 0.4]]),
        BINARY_T,
        {},
        ValueError,
        r"probs must lie in \[0, 1\]",
    ),
    "binary-probs-object": (
        BCP,
        np.array([[0.5, None], [0.9, 0.4]], dtype=object),
        BINARY_T,
        {},
        TypeError,
        "probs must hold real numbers",
    ),
    "pos-weight-inf": (
        BCP,
        BINARY_P,
        BINARY_T,
        {"pos_weight": np.inf},
        ValueError,
        "pos_weight must be finite",
    ),
    "pos-weight-complex": (
        BCE,
        BINARY_X,
        BINARY_T,
        {"pos_weight": np.array([1j, 1.0])},
        TypeError,
        "pos_weight must hold real numbers",
    ),
    "binary-sample-weight-inf": (
        BCE,
        BINARY_X,
        BINARY_T,
        {"sample_weight": [[np.inf, 1.0], [1.0, 1.0]]},
        ValueError,
        "sample_weight must be finite",
    ),
    "binary-sample-weight-shape": (
        BCE,
        BINARY_X,
        BINARY_T,
        {"sample_weight": [1.0, 2.0, 3.0]},
        ValueError,
        r"sample_weight of shape \(3,\) does not broadcast",
    ),
    "binary-where-shape": (
        BCE,
        BINARY_X,
        BINARY_T,
        {"where": np.ones((3, 2), bool)},
        ValueError,
        r"where of shape \(3, 2\) does not broadcast",
    ),
    "binary-smoothing-negative": (
        BCP,
        BINARY_P,
        BINARY_T,
        {"label_smoothing": -1e-9},
        ValueError,
        r"label_smoothing must be in \[0, 1\]",
    ),
    "binary-eps-negative": (
        BCP,
        BINARY_P,
        BINARY_T,
        {"eps": -0.1},
        ValueError,
        r"eps must be None or a number in \[0, 0.5\]",
    ),
    "binary-eps-above-half": (
        BCP,
        BINARY_P,
        BINARY_T,
        {"eps": 0.6},
        ValueError,
        r"eps must be None or a number in \[0, 0.5\]",
    ),
    "binary-string-logits": (
        BCE,
        np.array(["1.0", "2.0"]),
        np.array([1.0, 0.0]),
        {},
        TypeError,
        "logits must hold real numbers",
    ),
}


def _assert_unchanged(before, after):
    if isinstance(before, np.ndarray):
        assert before.dtype == after.dtype
        np.testing.assert_array_equal(after, before)
    elif isinstance(before, float) and np.isnan(before):
        assert np.isnan(after)
    else:
        assert after == before


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_input_raises_and_modifies_nothing(case):
    function, first, target, options, error, match = case
    before = copy.deepcopy((first, target, options))
    with pytest.raises(error, match=match):
        function(first, target, **options)
    _assert_unchanged(before[0], first)
    _assert_unchanged(before[1], target)
    assert before[2].keys() == options.keys()
    for key, value in options.items():
        _assert_unchanged(before[2][key], value)


def test_unknown_and_positional_options_are_refused():
    with pytest.raises(TypeError, match="pos_weight"):
        CCE(LOGITS, LABELS, pos_weight=[1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="class_weight"):
        BCE(BINARY_X, BINARY_T, class_weight=[1.0, 2.0])
    with pytest.raises(TypeError, match="positional"):
        CCE(LOGITS, LABELS, "mean")


def test_left_out_elements_are_not_checked():
    labels = np.array([1, 99])
    loss = CCE(LOGITS, labels, where=np.array([True, False]))
    assert np.isfinite(loss)
    assert CCE(LOGITS, np.array([1, -100]), ignore_index=-100) == CCE(LOGITS[:1], labels[:1])
    probs = np.array([[0.2, 0.5, 0.3], [7.0, np.nan, -1.0]])
    assert np.isfinite(CCP(probs, LABELS, where=np.array([True, False])))


def test_probability_rows_that_do_not_sum_to_one_warn():
    probs = np.array([[0.2, 0.5, 0.2], [0.1, 0.1, 0.8]])
    with pytest.warns(UserWarning, match=r"probs: 1 row\(s\) along the class axis do not sum to 1"):
        CCP(probs, LABELS)
    soft = np.array([[0.5, 0.6, 0.0], [0.0, 0.0, 1.0]])
    with pytest.warns(UserWarning, match="target: 1 row"):
        CCE(LOGITS, soft)
    # within sqrt(eps) is fine, and rows left out are not checked
    close = PROBS + np.array([[1e-9, 0, 0], [0, 0, 0]])
    CCP(close, LABELS)
    CCP(probs, LABELS, where=np.array([False, True]))


@pytest.mark.parametrize(
    ("function", "first", "target", "options", "error", "match"),
    [
        (CCE, LOGITS, LABELS, {"out": np.empty((2, 3))}, ValueError, "needs return_grad=True"),
        (BCP, BINARY_P, BINARY_T, {"out": np.empty((2, 2))}, ValueError, "needs return_grad=True"),
        (
            CCE,
            LOGITS,
            LABELS,
            {"return_grad": True, "out": np.empty((3, 2))},
            ValueError,
            r"out must have the input's shape \(2, 3\)",
        ),
        (
            BCE,
            BINARY_X,
            BINARY_T,
            {"return_grad": True, "out": np.empty((2, 2), np.float32)},
            TypeError,
            "out must have the computation dtype float64",
        ),
        (
            BCE,
            BINARY_X,
            BINARY_T,
            {"return_grad": True, "out": [[0.0, 0.0], [0.0, 0.0]]},
            TypeError,
            "out must be a NumPy array",
        ),
    ],
    ids=["cce-out-no-grad", "bcp-out-no-grad", "cce-out-shape", "bce-out-dtype", "bce-out-list"],
)
def test_bad_out_raises_and_writes_nothing(function, first, target, options, error, match):
    before = copy.deepcopy((first, target))
    out = options["out"]
    out_before = copy.deepcopy(out)
    with pytest.raises(error, match=match):
        function(first, target, **options)
    _assert_unchanged(before[0], first)
    _assert_unchanged(before[1], target)
    if isinstance(out, np.ndarray):
        assert out.tobytes() == out_before.tobytes()  # nothing written into it


@pytest.mark.parametrize(
    ("function", "first", "target", "name", "options"),
    [
        (CCP, np.array([[0.2, 0.5, 0.2], [0.1, 0.1, 0.8]]), LABELS, "probs", {}),
        (CCP, np.array([[0.2, 0.5, 0.3], [0.1, 0.1, 0.79]], np.float32), LABELS, "probs", {}),
        (CCP, PROBS, np.array([[0.2, 0.5, 0.2], [0.1, 0.1, 0.8]]), "target", {}),
        (CCE, LOGITS, np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), "target", {}),
        (CCE, LOGITS.T, np.array([[0.3, 0.0], [0.3, 0.0], [0.3, 1.0]]), "target", {"axis": 0}),
    ],
    ids=["probs", "probs-float32", "soft-target-probs-loss", "soft-target-zero-row", "axis0"],
)
def test_rows_not_summing_to_one_warn_naming_the_argument(function, first, target, name, options):
    before = copy.deepcopy((first, target))
    with pytest.warns(UserWarning, match=rf"^{name}: 1 row\(s\) along the class axis"):
        loss = function(first, target, **options)
    assert np.isfinite(loss)
    _assert_unchanged(before[0], first)
    _assert_unchanged(before[1], target)


def test_float32_rows_within_their_tolerance_do_not_warn():
    # sqrt(float32 eps) = 3.5e-4: an error of 1e-4 is fine in float32, not in float64.
    probs = np.array([[0.5, 0.5001]])
    ce.categorical_cross_entropy(probs.astype(np.float32), [0])
    with pytest.warns(UserWarning, match="probs"):
        ce.categorical_cross_entropy(probs, [0])


def test_left_out_soft_target_rows_are_not_checked():
    soft = np.array([[0.2, 0.5, 0.3], [np.nan, 3.0, -1.0]])
    loss = CCE(LOGITS, soft, where=np.array([True, False]))
    assert loss == CCE(LOGITS[:1], soft[:1])
    binary = BCE(BINARY_X, np.array([[1.0, 7.0], [np.nan, 0.0]]), where=BINARY_T == 1)
    assert np.isfinite(binary)
    ints = BCE(BINARY_X, np.array([[1, 5], [-3, 1]]), where=BINARY_T == 1)
    assert np.isfinite(ints)
