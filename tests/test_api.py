"""The public API is exactly ``__all__``, with arrays by position or name, options by keyword."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import numpy as np
import pytest

import crossentropy as ce

LOSSES = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "categorical_cross_entropy",
    "categorical_cross_entropy_with_logits",
]


def test_all_is_sorted_and_complete():
    assert ce.__all__ == sorted(ce.__all__)
    assert set(ce.__all__) == {*LOSSES, "get_num_threads", "num_threads", "set_num_threads"}
    public = {name for name in dir(ce) if not name.startswith("_")}
    modules = {name for name in public if inspect.ismodule(getattr(ce, name))}
    assert public - modules == set(ce.__all__)


def test_modules_are_private_and_declare_all():
    for module in pkgutil.iter_modules(ce.__path__):
        assert module.name.startswith("_")
        if module.name == "_dask":
            continue  # imported only with Dask inputs; covered by test_dask.py
        imported = importlib.import_module(f"crossentropy.{module.name}")
        assert isinstance(imported.__all__, list)


@pytest.mark.parametrize("name", LOSSES)
def test_signature(name):
    parameters = list(inspect.signature(getattr(ce, name)).parameters.values())
    first, target, *options = parameters
    assert first.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert target.name == "target"
    assert target.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert all(option.kind is inspect.Parameter.KEYWORD_ONLY for option in options)
    assert {"reduction", "sample_weight", "where", "label_smoothing", "return_grad", "out"} <= {
        option.name for option in options
    }


def test_arrays_by_name():
    logits = np.array([[1.0, 0.0]])
    by_position = ce.categorical_cross_entropy_with_logits(logits, [0])
    assert ce.categorical_cross_entropy_with_logits(logits=logits, target=[0]) == by_position
    assert ce.binary_cross_entropy(probs=[0.3], target=[1]) == ce.binary_cross_entropy([0.3], [1])


def test_py_typed_is_shipped():
    assert (inspect.getfile(ce).rsplit("/", 1)[0] + "/py.typed").endswith("py.typed")
    import pathlib

    assert (pathlib.Path(ce.__file__).parent / "py.typed").exists()
