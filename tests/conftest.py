"""Shared fixtures: seeded generators and paths built from this file's location."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

TESTS_DIR = Path(__file__).resolve().parent
DATA_DIR = TESTS_DIR / "data"
SHARED_DIR = TESTS_DIR.parent.parent / "shared"


@pytest.fixture
def rng() -> np.random.Generator:
    """A generator with a fixed seed, fresh for every test."""
    return np.random.default_rng(20261128)
