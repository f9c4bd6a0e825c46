"""Bad input: the right exception, a message naming the argument, and nothing modified."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from . import losses


def _valid(loss):
    """Fixed valid inputs: (2, 3) for the categorical losses with labels [1, 2], else (2, 2)."""
    if loss.categorical:
        first = (
            np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
            if loss.from_logits
            else np.array([[0.2, 0.5, 0.3], [0.1, 0.1, 0.8]])
        )
        return first, np.array([1, 2])
    first = (
        np.array([[0.5, -1.0], [2.0, 0.0]])
        if loss.from_logits
        else np.array([[0.5, 0.2], [0.9, 0.4]])
    )
    return first, np.array([[1.0, 0.0], [0.0, 1.0]])


def _with(value):
    """Replace the first element of a valid array by `value`."""

    def change(array):
        array = array.astype(np.result_type(array, np.asarray(value)))
        array.flat[0] = value
        return array

    return change


@dataclass(frozen=True)
class Bad:
    """A bad call: `first` and `target` are values, or callables that change the valid ones.

    `match` may name the first argument as ``{first}``.
    """

    id: str
    error: type[Exception]
    match: str
    options: dict[str, Any] = field(default_factory=dict)
    first: Any = None
    target: Any = None

    def arguments(self, loss) -> tuple[Any, Any]:
        first, target = _valid(loss)
        return self._pick(self.first, first), self._pick(self.target, target)

    @staticmethod
    def _pick(given: Any, valid: Any) -> Any:
        if given is None:
            return valid
        if callable(given):
            return given(valid)
        return given


FOR_ALL = [
    Bad("reduction", ValueError, "reduction must be one of 'mean', 'sum', 'none', got 'average'",
        {"reduction": "average"}),
    Bad("reduction-upper", ValueError, "reduction must be one of 'mean', 'sum', 'none', got 'MEAN'",
        {"reduction": "MEAN"}),
    Bad("reduction-none-object", ValueError, "reduction must be one of", {"reduction": None}),
    Bad("sample-weight-negative", ValueError, "sample_weight must be >= 0",
        {"sample_weight": -1.0}),
    Bad("sample-weight-inf", ValueError, "sample_weight must be finite",
        {"sample_weight": np.inf}),
    Bad("sample-weight-nan", ValueError, "sample_weight must be finite",
        {"sample_weight": np.nan}),
    Bad("sample-weight-string", TypeError, "sample_weight must hold real numbers",
        {"sample_weight": "heavy"}),
    Bad("sample-weight-shape", ValueError, r"sample_weight of shape \(5,\) does not broadcast",
        {"sample_weight": np.ones(5)}),
    Bad("where-shape", ValueError, r"where of shape \(5,\) does not broadcast",
        {"where": np.ones(5, bool)}),
    Bad("where-int", TypeError, "where must be a boolean array", {"where": np.ones(2, np.int8)}),
    Bad("where-float", TypeError, "where must be a boolean array", {"where": 1.0}),
    Bad("smoothing-above-one", ValueError, r"label_smoothing must be in \[0, 1\]",
        {"label_smoothing": 1.5}),
    Bad("smoothing-negative", ValueError, r"label_smoothing must be in \[0, 1\]",
        {"label_smoothing": -1e-9}),
    Bad("smoothing-nan", ValueError, r"label_smoothing must be in \[0, 1\]",
        {"label_smoothing": np.nan}),
    Bad("smoothing-string", TypeError, "label_smoothing must be a real number",
        {"label_smoothing": "0.1"}),
    Bad("complex-first", TypeError, "{first} must hold real numbers",
        first=lambda valid: valid.astype(complex)),
    Bad("complex64-first", TypeError, "{first} must hold real numbers",
        first=lambda valid: valid.astype(np.complex64)),
    Bad("string-first", TypeError, "{first} must hold real numbers",
        first=lambda valid: valid.astype(str)),
    Bad("object-first", TypeError, "{first} must hold real numbers",
        first=lambda valid: np.array([[0.5, None]], dtype=object)),
    Bad("ragged-first", TypeError, "{first} must be array-like", first=[[0.5, 0.2], [0.3]]),
    Bad("complex-target", TypeError, "target must hold real numbers",
        target=lambda valid: valid.astype(complex)),
    Bad("string-target", TypeError, "target must hold real numbers",
        target=lambda valid: valid.astype(str)),
    Bad("object-target", TypeError, "target must hold real numbers",
        target=lambda valid: valid.astype(object)),
]  # fmt: skip

FOR_PROBABILITIES = [
    Bad("probs-outside", ValueError, r"probs must lie in \[0, 1\]", first=_with(1.5)),
    Bad("probs-negative", ValueError, r"probs must lie in \[0, 1\]", first=_with(-1e-12)),
    Bad("probs-nan", ValueError, r"probs must lie in \[0, 1\]", first=_with(np.nan)),
    Bad("eps-negative", ValueError, r"eps must be None or a number in \[0, 0.5\]",
        {"eps": -1e-3}),
    Bad("eps-above-half", ValueError, r"eps must be None or a number in \[0, 0.5\]",
        {"eps": 0.6}),
    Bad("eps-nan", ValueError, r"eps must be None or a number in \[0, 0.5\]", {"eps": np.nan}),
    Bad("eps-inf", ValueError, r"eps must be None or a number in \[0, 0.5\]", {"eps": np.inf}),
    Bad("eps-string", TypeError, "eps must be a real number", {"eps": "1e-7"}),
]  # fmt: skip

FOR_CATEGORICAL = [
    Bad("label-too-large", ValueError, r"class index 3, outside \[0, 3\)",
        target=np.array([1, 3])),
    Bad("label-negative", ValueError, "class index -1", target=np.array([-1, 0])),
    Bad("label-uint-too-large", ValueError, "class index 7", target=np.array([1, 7], np.uint8)),
    Bad("label-too-large-with-ignore-index", ValueError, "class index 5.*ignore_index is -100",
        {"ignore_index": -100}, target=np.array([-100, 5])),
    Bad("label-out-of-range-axis0", ValueError,
        r"class index 2, outside \[0, 2\) for 2 classes along axis 0",
        {"axis": 0}, target=np.array([0, 2, 1])),
    Bad("float-labels", ValueError,
        r"target of shape \(2,\) \(the batch shape of {first} of shape \(2, 3\)\).*integer dtype",
        target=np.array([1.0, 2.0])),
    Bad("float32-labels", ValueError, r"target of shape \(2,\).*integer dtype",
        target=np.array([1.0, 2.0], np.float32)),
    Bad("bool-labels", TypeError, "target must hold integer class indices",
        target=np.array([True, False])),
    Bad("label-shape", ValueError, r"target holds class indices and must have shape \(2,\)",
        target=np.array([1, 2, 0])),
    Bad("labels-shape-axis0", ValueError,
        r"target holds class indices and must have shape \(3,\).*got shape \(2,\)",
        {"axis": 0}),
    Bad("int-one-hot-target", ValueError,
        r"target holds class indices and must have shape \(2,\).*got shape \(2, 3\)",
        target=np.eye(3, dtype=np.int64)[[1, 2]]),
    Bad("soft-shape", ValueError, r"must have shape \(2, 3\).*got shape \(2, 4\)",
        target=np.ones((2, 4)) / 4),
    Bad("scalar-target", ValueError, r"must have shape \(2, 3\).*got shape \(\)",
        target=np.float64(1.0)),
    Bad("soft-outside", ValueError, r"target must lie in \[0, 1\]",
        target=np.array([[1.2, -0.2, 0.0], [0, 0, 1]])),
    Bad("soft-nan", ValueError, r"target must lie in \[0, 1\]",
        target=np.array([[np.nan, 0.5, 0.5], [0, 0, 1]])),
    Bad("class-weight-length", ValueError, r"class_weight must have shape \(3,\)",
        {"class_weight": [1.0, 2.0]}),
    Bad("class-weight-2d", ValueError, r"class_weight must have shape \(3,\)",
        {"class_weight": np.ones((1, 3))}),
    Bad("class-weight-negative", ValueError, "class_weight must be >= 0",
        {"class_weight": [1.0, -2.0, 1.0]}),
    Bad("class-weight-nan", ValueError, "class_weight must be finite",
        {"class_weight": [1.0, np.nan, 1.0]}),
    Bad("class-weight-inf", ValueError, "class_weight must be finite",
        {"class_weight": [1.0, np.inf, 1.0]}),
    Bad("class-weight-complex", TypeError, "class_weight must hold real numbers",
        {"class_weight": np.array([1j, 1, 1])}),
    Bad("class-weight-string", ValueError,
        "class_weight must be None, 'balanced' or an array of 3 weights, one per class index, "
        "got the string 'balance'", {"class_weight": "balance"}),
    Bad("class-weight-dict", TypeError,
        r"class_weight must be None, 'balanced' or an array of 3 weights.*got a dict",
        {"class_weight": {0: 1.0, 1: 2.0, 2: 1.0}}),
    Bad("class-weight-balanced-soft", ValueError,
        r"class_weight='balanced' counts the class indices of the target and needs integer "
        r"labels of the batch shape \(2,\), got class probabilities",
        {"class_weight": "balanced"}, target=np.array([[0.2, 0.5, 0.3], [0.1, 0.1, 0.8]])),
    Bad("ignore-index-soft", ValueError, "ignore_index=0 needs integer class indices",
        {"ignore_index": 0}, target=np.array([[0.2, 0.5, 0.3], [0.1, 0.1, 0.8]])),
    Bad("ignore-index-float", TypeError, "ignore_index must be an int", {"ignore_index": 1.0}),
    Bad("ignore-index-bool", TypeError, "ignore_index must be an int", {"ignore_index": True}),
    Bad("axis-out-of-range", ValueError, "axis 2 is out of range for an input with 2 dimension",
        {"axis": 2}),
    Bad("axis-negative-out-of-range", ValueError, "axis -3 is out of range", {"axis": -3}),
    Bad("axis-float", TypeError, "axis must be an int", {"axis": 1.0}),
    Bad("axis-bool", TypeError, "axis must be an int, got True", {"axis": True}),
    Bad("zero-d-first", ValueError, "{first} must have at least one dimension",
        first=np.float64(0.5), target=np.int64(0)),
    Bad("no-classes", ValueError, "at least one class",
        first=np.zeros((2, 0)), target=np.array([0, 0])),
]  # fmt: skip

FOR_CATEGORICAL_PROBABILITIES = [
    Bad("probs-3d-axis1-outside", ValueError, r"probs must lie in \[0, 1\]", {"axis": 1},
        first=np.full((2, 3, 2), 1 / 3) + np.array([0, 0, 2.0])[None, :, None],
        target=np.zeros((2, 2), np.int64)),
]  # fmt: skip

FOR_BINARY = [
    Bad("binary-target-shape", ValueError,
        r"target must have the input's shape \(2, 2\), got shape \(2,\)",
        target=np.array([1.0, 0.0])),
    Bad("binary-target-broadcastable", ValueError,
        r"target must have the input's shape \(2, 2\), got shape \(1, 2\)",
        target=np.array([[1.0, 0.0]])),
    Bad("binary-target-transposed-shape", ValueError,
        r"target must have the input's shape \(2, 3\), got shape \(3, 2\)",
        first=lambda valid: np.full((2, 3), valid.flat[0]), target=np.zeros((3, 2))),
    Bad("binary-target-int", ValueError,
        "target with an integer dtype must hold only 0 and 1, got 2",
        target=np.array([[1, 2], [0, 1]])),
    Bad("binary-target-int-negative", ValueError,
        "target with an integer dtype must hold only 0 and 1, got -1",
        target=np.array([[1, -1], [0, 1]])),
    Bad("binary-target-outside", ValueError, r"target must lie in \[0, 1\]", target=_with(1.5)),
    Bad("binary-target-nan", ValueError, r"target must lie in \[0, 1\]", target=_with(np.nan)),
    Bad("pos-weight-negative", ValueError, "pos_weight must be >= 0",
        {"pos_weight": [-1.0, 1.0]}),
    Bad("pos-weight-nan", ValueError, "pos_weight must be finite", {"pos_weight": [np.nan, 1.0]}),
    Bad("pos-weight-inf", ValueError, "pos_weight must be finite", {"pos_weight": np.inf}),
    Bad("pos-weight-shape", ValueError, r"pos_weight of shape \(3,\) does not broadcast",
        {"pos_weight": [1.0, 2.0, 3.0]}),
    Bad("pos-weight-complex", TypeError, "pos_weight must hold real numbers",
        {"pos_weight": np.array([1j, 1.0])}),
    Bad("pos-weight-string", ValueError,
        "pos_weight must be None, 'balanced' or an array of weights that broadcasts against "
        "the input, got the string 'Balanced'", {"pos_weight": "Balanced"}),
    Bad("binary-sample-weight-negative", ValueError, "sample_weight must be >= 0",
        {"sample_weight": [[-1.0], [1.0]]}),
    Bad("binary-sample-weight-inf", ValueError, "sample_weight must be finite",
        {"sample_weight": [[np.inf, 1.0], [1.0, 1.0]]}),
    Bad("binary-where-shape", ValueError, r"where of shape \(3, 2\) does not broadcast",
        {"where": np.ones((3, 2), bool)}),
]  # fmt: skip

FOR_Z_LOSS_AND_SOFTCAP = [
    Bad("z-loss-negative", ValueError, "z_loss must be a finite number >= 0, got -0.1",
        {"z_loss": -0.1}),
    Bad("z-loss-nan", ValueError, "z_loss must be a finite number >= 0", {"z_loss": np.nan}),
    Bad("z-loss-inf", ValueError, "z_loss must be a finite number >= 0", {"z_loss": np.inf}),
    Bad("z-loss-string", TypeError, "z_loss must be a real number", {"z_loss": "0.1"}),
    Bad("z-loss-bool", TypeError, "z_loss must be a real number, got True", {"z_loss": True}),
    Bad("z-loss-none", TypeError, "z_loss must be a real number, got None", {"z_loss": None}),
    Bad("z-loss-array", TypeError, "z_loss must be a real number", {"z_loss": np.array([0.1])}),
    Bad("z-loss-above-float32", ValueError, "z_loss must be at most the largest float32 number",
        {"z_loss": 1e39}, first=lambda valid: valid.astype(np.float32)),
    Bad("softcap-zero", ValueError, "softcap must be None or a finite number > 0, got 0",
        {"softcap": 0}),
    Bad("softcap-negative", ValueError, "softcap must be None or a finite number > 0",
        {"softcap": -30.0}),
    Bad("softcap-nan", ValueError, "softcap must be None or a finite number > 0",
        {"softcap": np.nan}),
    Bad("softcap-inf", ValueError, "softcap must be None or a finite number > 0",
        {"softcap": np.inf}),
    Bad("softcap-string", TypeError, "softcap must be a real number", {"softcap": "30"}),
    Bad("softcap-bool", TypeError, "softcap must be a real number, got True", {"softcap": True}),
    Bad("softcap-subnormal", ValueError, "softcap must be a normal float64 number",
        {"softcap": 1e-310}),
    Bad("softcap-below-float32", ValueError, "softcap must be a normal float32 number",
        {"softcap": 1e-40}, first=lambda valid: valid.astype(np.float32)),
    Bad("softcap-float16-in-float32", ValueError, "softcap must be a normal float32 number",
        {"softcap": 1e39}, first=lambda valid: valid.astype(np.float16)),
]  # fmt: skip

GROUPS = [
    (losses.ALL, FOR_ALL),
    (tuple(loss for loss in losses.ALL if "z_loss" in loss.options), FOR_Z_LOSS_AND_SOFTCAP),
    (losses.PROBABILITIES, FOR_PROBABILITIES),
    (losses.CATEGORICAL, FOR_CATEGORICAL),
    (tuple(set(losses.CATEGORICAL) & set(losses.PROBABILITIES)), FOR_CATEGORICAL_PROBABILITIES),
    (losses.BINARY, FOR_BINARY),
]
CASES = [(loss, bad) for entries, group in GROUPS for loss in entries for bad in group]


def _assert_unchanged(before, after):
    if isinstance(before, np.ndarray):
        assert before.dtype == after.dtype
        np.testing.assert_array_equal(after, before)
    elif isinstance(before, float) and np.isnan(before):
        assert np.isnan(after)
    else:
        assert after == before


@pytest.mark.parametrize(
    ("loss", "bad"), CASES, ids=[f"{loss.name}-{bad.id}" for loss, bad in CASES]
)
def test_bad_input_raises_and_modifies_nothing(loss, bad):
    first, target = bad.arguments(loss)
    options = bad.options
    before = copy.deepcopy((first, target, options))
    with pytest.raises(bad.error, match=bad.match.format(first=loss.first)):
        loss(first, target, **options)
    _assert_unchanged(before[0], first)
    _assert_unchanged(before[1], target)
    assert before[2].keys() == options.keys()
    for key, value in options.items():
        _assert_unchanged(before[2][key], value)


EVERY_OPTION = {option for loss in losses.ALL for option in loss.options}


@losses.parametrize(losses.ALL)
def test_options_of_other_losses_are_refused(loss):
    first, target = _valid(loss)
    for option in sorted(EVERY_OPTION - set(loss.options)):
        with pytest.raises(TypeError, match=option):
            loss(first, target, **{option: None})


BAD_OUT = {
    "without-return-grad": ({}, np.empty_like, ValueError,
                            "out receives the gradient and needs return_grad=True"),
    "shape": ({"return_grad": True}, lambda first: np.empty((*first.shape[::-1], 1)),
              ValueError, r"out must have the input's shape \(2, \d\)"),
    "dtype": ({"return_grad": True}, lambda first: np.empty(first.shape, np.float32),
              TypeError, "out must have the computation dtype float64, got dtype float32"),
    "list": ({"return_grad": True}, lambda first: first.tolist(),
             TypeError, "out must be a NumPy array, got list"),
    "read-only": ({"return_grad": True}, lambda first: np.broadcast_to(0.0, first.shape),
                  ValueError, "out must be writeable"),
}  # fmt: skip


@losses.parametrize(losses.ALL)
@pytest.mark.parametrize("case", BAD_OUT.values(), ids=BAD_OUT.keys())
def test_bad_out_raises_and_writes_nothing(loss, case):
    options, make_out, error, match = case
    first, target = _valid(loss)
    before = copy.deepcopy((first, target))
    out = make_out(first)
    out_before = copy.deepcopy(out)
    with pytest.raises(error, match=match):
        loss(first, target, out=out, **options)
    _assert_unchanged(before[0], first)
    _assert_unchanged(before[1], target)
    if isinstance(out, np.ndarray):
        assert out.tobytes() == out_before.tobytes()  # nothing written into it


def _left_out_garbage(loss, rng):
    """Inputs of 4 elements whose element 0 is left out and holds invalid values.

    Returns (first, target, options) calls: each names the element left out by
    `where` (and, for class indices, by `ignore_index`).
    """
    shape = (4, 3)
    first, target = loss.make(rng, shape)
    batch = loss.batch_shape(shape)
    where = np.ones(batch, bool)
    where.flat[0] = False
    if not loss.from_logits:
        first = first.copy()
        if loss.categorical:
            first[0] = [7.0, np.nan, -1.0]
        else:
            first.flat[0] = np.nan
    calls = []
    if loss.categorical:
        labels = target.copy()
        labels[0] = 99
        calls.append((first, labels, {"where": where}))
        ignored = target.copy()
        ignored[0] = -100
        calls.append((first, ignored, {"ignore_index": -100}))
        _, soft = loss.make(rng, shape, soft=True)
        soft[0] = [np.nan, 3.0, -1.0]
        calls.append((first, soft, {"where": where}))
    else:
        floats = target.copy()
        floats.flat[0] = np.nan
        calls.append((first, floats, {"where": where}))
        ints = target.astype(np.int64)
        ints.flat[0] = 5
        calls.append((first, ints, {"where": where}))
    return calls


@losses.parametrize(losses.ALL)
def test_elements_left_out_are_not_checked(rng, loss):
    for first, target, options in _left_out_garbage(loss, rng):
        for reduction in ("none", "sum", "mean"):
            got = loss(first, target, reduction=reduction, **options)
            expected = loss.oracle(first, target, reduction=reduction, **options)
            np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize(
    ("name", "first", "target", "argument", "options"),
    [
        ("categorical_cross_entropy", [[0.2, 0.5, 0.2], [0.1, 0.1, 0.8]], [1, 2], "probs", {}),
        (
            "categorical_cross_entropy",
            np.array([[0.2, 0.5, 0.3], [0.1, 0.1, 0.79]], np.float32),
            [1, 2],
            "probs",
            {},
        ),
        (
            "categorical_cross_entropy",
            [[0.2, 0.5, 0.3], [0.1, 0.1, 0.8]],
            np.array([[0.2, 0.5, 0.2], [0.1, 0.1, 0.8]]),
            "target",
            {},
        ),
        (
            "categorical_cross_entropy_with_logits",
            [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]],
            np.array([[0.5, 0.6, 0.0], [0.0, 0.0, 1.0]]),
            "target",
            {},
        ),
        (
            "categorical_cross_entropy_with_logits",
            [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]],
            np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),
            "target",
            {},
        ),
        (
            "categorical_cross_entropy_with_logits",
            [[1.0, 0.0], [2.0, -1.0], [0.5, 3.0]],
            np.array([[0.3, 0.0], [0.3, 0.0], [0.3, 1.0]]),
            "target",
            {"axis": 0},
        ),
    ],
    ids=["probs", "probs-float32", "soft-target-probs-loss", "soft-target", "zero-row", "axis0"],
)
def test_rows_not_summing_to_one_warn_naming_the_argument(name, first, target, argument, options):
    loss = losses.BY_NAME[name]
    before = copy.deepcopy((first, target))
    with pytest.warns(UserWarning, match=rf"^{argument}: 1 row\(s\) along the class axis"):
        result = loss(first, target, reduction="none", **options)
    expected = loss.oracle(first, target, reduction="none", **options)
    np.testing.assert_allclose(result, expected, rtol=1e-6)
    _assert_unchanged(before[0], first)
    _assert_unchanged(before[1], target)


def test_rows_within_the_tolerance_of_their_dtype_do_not_warn():
    loss = losses.BY_NAME["categorical_cross_entropy"]
    probs = np.array([[0.2, 0.5, 0.3], [0.1, 0.1, 0.8]])
    loss(probs + np.array([[1e-9, 0, 0], [0, 0, 0]]), [1, 2])  # within sqrt(eps) of 1
    # sqrt(float32 eps) = 3.5e-4: an error of 1e-4 is fine in float32, not in float64.
    probs = np.array([[0.5, 0.5001]])
    loss(probs.astype(np.float32), [0])
    with pytest.warns(UserWarning, match="probs"):
        loss(probs, [0])


@losses.parametrize(losses.CATEGORICAL)
def test_mean_of_target_rows_not_summing_to_one_divides_by_their_sum(loss):
    first, _ = _valid(loss)
    target = np.array([[0.5, 0.6, 0.0], [0.0, 0.0, 0.5]])
    with pytest.warns(UserWarning, match="target: 2 row"):
        mean = loss(first, target)
    with pytest.warns(UserWarning, match="target: 2 row"):
        with_ones = loss(first, target, class_weight=np.ones(3))
    np.testing.assert_allclose(with_ones, loss.oracle(first, target), rtol=1e-13)
    np.testing.assert_allclose(mean, loss.oracle(first, target), rtol=1e-13)
