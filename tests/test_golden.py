"""Golden values from PyTorch 2.13 CPU and scikit-learn 1.9.

``fixtures/make_golden.py`` wrote them (see its docstring for what is covered and why);
these tests only read ``fixtures/golden.npz`` and need neither library.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import crossentropy as ce

from . import losses

with np.load(Path(__file__).parent / "fixtures" / "golden.npz") as _golden:
    POOLS = {name: _golden[name] for name in _golden.files}
META = json.loads(str(POOLS.pop("index")))
CASES = META["cases"]
REDUCTIONS = {"mean", "sum", "none"}

# Both sides are accurate to a few ulp of each element; sums over a few dozen elements.
RTOL = {"float64": 1e-12, "float32": 1e-5}
# Where a loss is tiny, PyTorch's own error is absolute: its log_softmax and its binary
# formula subtract numbers as large as the logits, so it makes an error of a few ulp of
# the largest |logit| an element depends on, times the element's weights (ours is
# relative to the loss: test_extreme checks that). Probabilities have no such term.
ULPS = 8


def _arrays(case: dict) -> dict[str, np.ndarray]:
    arrays = {}
    for field, where in case["arrays"].items():
        pool = POOLS[where["dtype"]]
        size = int(np.prod(where["shape"]))
        value = pool[where["offset"] : where["offset"] + size].reshape(where["shape"]).copy()
        value.flags.writeable = False  # the losses accept read-only input and never write
        arrays[field] = value
    return arrays


def _call(case: dict, arrays: dict[str, np.ndarray], **extra):
    options = {
        name: arrays[value] if isinstance(value, str) and value not in REDUCTIONS else value
        for name, value in case["options"].items()
    }
    function = getattr(ce, case["function"])
    return function(arrays["first"], arrays["target"], **options, **extra)


def _loss_atol(case: dict, arrays: dict[str, np.ndarray]):
    """PyTorch's absolute error bound: per element for "none", one element's for the rest."""
    first = arrays["first"]
    if not case["function"].endswith("_with_logits"):
        return 0.0
    options = case["options"]
    size = np.abs(first.astype(np.float64))
    if "class_weight" in options:
        size = size * np.max(arrays["class_weight"])
    if case["function"].startswith("categorical"):
        size = np.max(size, axis=options["axis"])
    bound = np.maximum(size, 1.0)
    if "pos_weight" in options:
        bound = bound * np.maximum(arrays["pos_weight"], 1.0)
    if "sample_weight" in options:
        bound = bound * arrays["sample_weight"]
    bound = ULPS * float(np.finfo(first.dtype).eps) * bound
    return bound if options["reduction"] == "none" else float(np.max(bound, initial=0.0))


def _assert_close(actual, desired, *, rtol: float, atol) -> None:
    """np.testing.assert_allclose, with an absolute tolerance per element."""
    if np.ndim(atol) == 0:
        np.testing.assert_allclose(actual, desired, rtol=rtol, atol=atol)
        return
    actual, desired = np.asarray(actual), np.asarray(desired)
    close = np.isclose(actual, desired, rtol=rtol, atol=0.0, equal_nan=True)
    close |= np.abs(actual.astype(np.float64) - desired) <= atol + rtol * np.abs(desired)
    if not close.all():
        where = np.argwhere(np.atleast_1d(~close)).tolist()
        np.testing.assert_allclose(
            actual[~close],
            desired[~close],
            rtol=rtol,
            atol=float(np.max(atol[~close])),  # fails at least where this bound is its own
            err_msg=f"at {where}, with absolute tolerances {atol[~close]}",
        )


def _check_loss(case: dict, loss, arrays: dict[str, np.ndarray]) -> None:
    assert np.asarray(loss).dtype == np.dtype(case["dtype"])
    assert np.shape(loss) == tuple(case["shape"])
    if case["options"]["reduction"] == "none":
        assert isinstance(loss, np.ndarray)
    else:
        assert isinstance(loss, np.floating)
    _assert_close(loss, arrays["loss"], rtol=RTOL[case["dtype"]], atol=_loss_atol(case, arrays))


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_loss_and_grad(case):
    arrays = _arrays(case)
    _check_loss(case, _call(case, arrays), arrays)
    if "grad" not in arrays:
        return  # scikit-learn's log_loss has no gradient
    loss, grad = _call(case, arrays, return_grad=True)
    _check_loss(case, loss, arrays)
    expected = arrays["grad"]
    assert grad.dtype == np.dtype(case["dtype"])
    assert grad.shape == arrays["first"].shape
    rtol = RTOL[case["dtype"]]
    atol = rtol * float(np.max(np.abs(expected), initial=0.0))
    np.testing.assert_allclose(grad, expected, rtol=rtol, atol=atol)


def test_the_fixtures_cover_every_function_option_and_dtype():
    assert META["torch"].startswith("2.13")
    assert META["sklearn"].startswith("1.9")
    # The focal losses have no peer in PyTorch or scikit-learn: test_focal.py compares
    # them with the documented formulas of torchvision (binary) and Keras (categorical).
    without_peer = {
        "binary_focal_loss",
        "binary_focal_loss_with_logits",
        "categorical_focal_loss",
        "categorical_focal_loss_with_logits",
    }
    assert {case["function"] for case in CASES} == {loss.name for loss in losses.ALL} - without_peer
    options = {name for case in CASES for name in case["options"]}
    assert options == {
        "reduction",
        "class_weight",
        "sample_weight",
        "pos_weight",
        "ignore_index",
        "label_smoothing",
        "axis",
        "eps",
        "z_loss",
        "softcap",
    }
    assert {case["dtype"] for case in CASES} == {"float32", "float64"}
    assert {case["options"]["reduction"] for case in CASES} == REDUCTIONS
    with_grad = [case for case in CASES if "grad" in case["arrays"]]
    assert len(with_grad) == sum(case["peer"].startswith("torch.") for case in CASES)
