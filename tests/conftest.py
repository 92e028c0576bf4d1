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


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """A private handsim cache (``HANDSIM_CACHE_DIR``) for one test module: converted hands (MJCF)
    go there, not to the user's cache. Use with ``pytestmark = pytest.mark.usefixtures("cache_dir")``."""
    path = tmp_path_factory.mktemp("handsim-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HANDSIM_CACHE_DIR", str(path))
        yield path
