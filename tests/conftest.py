"""Shared fixtures: a seeded random generator and the hypothesis profile."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import settings

settings.register_profile("crossentropy", deadline=None, max_examples=60, derandomize=True)
settings.load_profile("crossentropy")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261125)
