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
    assert set(ce.__all__) == {
        *LOSSES,
        "ProbabilitySumWarning",
        "get_num_threads",
        "num_threads",
        "set_num_threads",
    }
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


SIGNATURES = {
    "categorical_cross_entropy_with_logits": (
        "logits",
        ["reduction", "class_weight", "sample_weight", "where", "ignore_index",
         "label_smoothing", "axis", "return_grad", "out"],
    ),
    "categorical_cross_entropy": (
        "probs",
        ["reduction", "class_weight", "sample_weight", "where", "ignore_index",
         "label_smoothing", "eps", "axis", "return_grad", "out"],
    ),
    "binary_cross_entropy_with_logits": (
        "logits",
        ["reduction", "pos_weight", "sample_weight", "where", "label_smoothing",
         "return_grad", "out"],
    ),
    "binary_cross_entropy": (
        "probs",
        ["reduction", "pos_weight", "sample_weight", "where", "label_smoothing", "eps",
         "return_grad", "out"],
    ),
}  # fmt: skip
DEFAULTS = {
    "reduction": "mean",
    "class_weight": None,
    "pos_weight": None,
    "sample_weight": None,
    "where": None,
    "ignore_index": None,
    "label_smoothing": 0.0,
    "eps": None,
    "axis": -1,
    "return_grad": False,
    "out": None,
}


@pytest.mark.parametrize("name", LOSSES)
def test_exact_signature_and_defaults(name):
    first_name, options = SIGNATURES[name]
    parameters = inspect.signature(getattr(ce, name)).parameters
    assert list(parameters) == [first_name, "target", *options]
    for option in options:
        assert parameters[option].default == DEFAULTS[option]
    assert parameters[first_name].default is inspect.Parameter.empty
    assert parameters["target"].default is inspect.Parameter.empty


def _arrays(name):
    if name.startswith("categorical"):
        return np.array([[0.2, 0.7, 0.1], [0.5, 0.25, 0.25]]), np.array([1, 0])
    return np.array([[0.2, 0.7], [0.5, 0.9]]), np.array([[0.0, 1.0], [1.0, 1.0]])


@pytest.mark.parametrize("name", LOSSES)
def test_both_arrays_by_position_or_by_name(name):
    function = getattr(ce, name)
    first_name = SIGNATURES[name][0]
    first, target = _arrays(name)
    expected = function(first, target, reduction="none")
    for args, kwargs in (
        ((first,), {"target": target}),
        ((), {first_name: first, "target": target}),
        ((), {"target": target, first_name: first}),
    ):
        np.testing.assert_array_equal(function(*args, **kwargs, reduction="none"), expected)
    with pytest.raises(TypeError):
        function(first, target, "none")
    with pytest.raises(TypeError):
        function(first)
    other = "probs" if first_name == "logits" else "logits"
    with pytest.raises(TypeError):
        function(**{other: first, "target": target})


@pytest.mark.parametrize("name", LOSSES)
def test_every_option_is_keyword_only(name):
    function = getattr(ce, name)
    first, target = _arrays(name)
    for extra in range(1, 3):
        with pytest.raises(TypeError):
            function(first, target, *(["mean"] + [None] * (extra - 1)))


def test_submodules_do_not_leak_names():
    public = {name for name in vars(ce) if not name.startswith("_")}
    assert public == set(ce.__all__)
    for name in ce.__all__:
        assert callable(getattr(ce, name))
        assert getattr(ce, name).__module__.startswith("crossentropy")
        assert getattr(ce, name).__doc__
