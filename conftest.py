"""The doctests of ``crossentropy.objectives`` train models: they need the ``boosting`` extra."""

from __future__ import annotations

import importlib.util

import pytest

_MISSING = [name for name in ("xgboost", "lightgbm") if importlib.util.find_spec(name) is None]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip those doctests, saying why, when XGBoost or LightGBM is not installed."""
    if not _MISSING:
        return
    reason = f"{' and '.join(_MISSING)} not installed (pip install '.[boosting]')"
    for item in items:
        if item.nodeid.startswith("crossentropy/objectives.py::"):
            item.add_marker(pytest.mark.skip(reason=reason))
