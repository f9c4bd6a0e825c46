"""The public API is exactly ``__all__``, with arrays by position or name, options by keyword."""

from __future__ import annotations

import importlib
import inspect
import pathlib
import pkgutil

import numpy as np
import pytest

import crossentropy as ce

from . import losses

THREAD_CONTROLS = {"get_num_threads", "num_threads", "set_num_threads"}
SUBMODULES = {"objectives"}  # public, as ce.objectives


def test_all_is_sorted_and_exactly_the_public_names():
    assert ce.__all__ == sorted(ce.__all__)
    assert set(ce.__all__) == (
        {loss.name for loss in losses.ALL}
        | THREAD_CONTROLS
        | SUBMODULES
        | {"ProbabilitySumWarning", "log_loss"}
    )
    public = {name for name in vars(ce) if not name.startswith("_")}
    assert public == set(ce.__all__)  # no other submodule or helper is public
    for name in set(ce.__all__) - SUBMODULES:
        assert callable(getattr(ce, name))
        assert getattr(ce, name).__module__.startswith("crossentropy.")
        assert getattr(ce, name).__doc__
    for name in SUBMODULES:
        module = getattr(ce, name)
        assert module.__name__ == f"crossentropy.{name}"
        assert module.__doc__
        public = {key for key in vars(module) if not key.startswith("_")}
        for key in module.__all__:
            assert callable(getattr(module, key))
            assert getattr(module, key).__doc__
        assert set(module.__all__) <= public


def test_modules_are_private_and_declare_all():
    for module in pkgutil.iter_modules(ce.__path__):
        assert module.name.startswith("_") or module.name in SUBMODULES
        if module.name == "_dask":
            continue  # imported only with Dask inputs; covered by test_dask.py
        imported = importlib.import_module(f"crossentropy.{module.name}")
        assert isinstance(imported.__all__, list)


def test_py_typed_is_shipped():
    assert (pathlib.Path(ce.__file__).parent / "py.typed").is_file()


@losses.parametrize(losses.ALL)
def test_exact_signature_and_defaults(loss):
    assert getattr(ce, loss.name) is loss.function
    assert loss.first == ("logits" if loss.from_logits else "probs")
    parameters = inspect.signature(loss.function).parameters
    assert list(parameters) == [loss.first, "target", *loss.options]
    for name in (loss.first, "target"):
        assert parameters[name].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        assert parameters[name].default is inspect.Parameter.empty
    for option, default in loss.options.items():
        assert parameters[option].kind is inspect.Parameter.KEYWORD_ONLY
        assert parameters[option].default == default


@losses.parametrize(losses.ALL)
def test_both_arrays_by_position_or_by_name(rng, loss):
    first, target = loss.make(rng, (2, 3))
    expected = loss.oracle(first, target, reduction="none")
    for args, kwargs in (
        ((first, target), {}),
        ((first,), {"target": target}),
        ((), {loss.first: first, "target": target}),
        ((), {"target": target, loss.first: first}),
    ):
        got = loss(*args, **kwargs, reduction="none")
        np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)
    with pytest.raises(TypeError):
        loss(first, target, "none")  # options are keyword-only
    with pytest.raises(TypeError):
        loss(first)
    other = "probs" if loss.first == "logits" else "logits"
    with pytest.raises(TypeError):
        loss(**{other: first, "target": target})
