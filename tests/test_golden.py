"""Golden values from PyTorch 2.13 CPU and scikit-learn (see fixtures/make_golden.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import crossentropy as ce

GOLDEN = np.load(Path(__file__).parent / "fixtures" / "golden.npz")
META = json.loads(str(GOLDEN["index"]))
TOLERANCE = {np.dtype(np.float32): 2e-5, np.dtype(np.float64): 1e-12}
# PyTorch's float32 kernels form log(1 + e^-|x|) with an absolute error of a few float32
# ulp of 1, so its tiny float32 losses are off relatively (ours are exact: test_extreme).
ABSOLUTE = {np.dtype(np.float32): 8 * float(np.finfo(np.float32).eps), np.dtype(np.float64): 0.0}


def _arrays(case):
    return {field: GOLDEN[f"{case['key']}/{field}"] for field in case["arrays"]}


@pytest.mark.parametrize("case", META["cases"], ids=[case["id"] for case in META["cases"]])
def test_golden(case):
    arrays = _arrays(case)
    function = getattr(ce, case["function"])
    options = {
        name: arrays[value] if isinstance(value, str) and value in arrays else value
        for name, value in case["options"].items()
    }
    first, target = arrays["first"], arrays["target"]
    rtol = TOLERANCE[first.dtype]
    if "grad" in arrays:
        loss, grad = function(first, target, return_grad=True, **options)
        assert grad.dtype == first.dtype
        np.testing.assert_allclose(grad, arrays["grad"], rtol=rtol, atol=rtol * 1e-3)
    else:
        loss = function(first, target, **options)
    assert np.asarray(loss).dtype == first.dtype
    np.testing.assert_allclose(loss, arrays["loss"], rtol=rtol, atol=ABSOLUTE[first.dtype])


def test_the_fixtures_cover_every_peer():
    functions = {case["function"] for case in META["cases"]}
    assert functions == {
        "categorical_cross_entropy_with_logits",
        "categorical_cross_entropy",
        "binary_cross_entropy_with_logits",
        "binary_cross_entropy",
    }
    assert META["torch"].startswith("2.13")
