"""Shared fixtures: a seeded random generator and the hypothesis profile."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import settings

# The fixture script needs PyTorch and scikit-learn; the tests only read what it wrote.
collect_ignore_glob = ["fixtures/*"]

settings.register_profile("crossentropy", deadline=None, max_examples=60, derandomize=True)
settings.load_profile("crossentropy")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261125)
