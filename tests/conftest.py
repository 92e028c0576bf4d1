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


def v5_hand(dest: Path) -> Path:
    """A copy of the default hand folder at ``dest`` as it was at hand v5 (session 18): no joint
    armature, and the plans v6 re-authored put back (``tests/data/default_hand_v5.json``). The
    scenarios some tests build (a joint folded far
    past its limit, a ball caught by the palm only under the pushes) were found on v5, whose
    light links leave PyBullet's solve unconverged; on v6 they do not happen."""
    import json
    import re
    import shutil

    from handsim.data import hand_dir

    v5 = json.loads((DATA_DIR / "default_hand_v5.json").read_text(encoding="utf-8"))
    shutil.copytree(hand_dir("default_hand"), dest)
    urdf = dest / "hand.urdf"
    text = urdf.read_text(encoding="utf-8")
    for link, inertial in v5["inertial"].items():
        text, n = re.subn(r'(<link name="' + re.escape(link) + r'">\s*)<inertial>.*?</inertial>',
                          lambda m, inertial=inertial: m.group(1) + inertial, text, count=1, flags=re.DOTALL)
        assert n == 1, link
    urdf.write_text(text, encoding="utf-8")
    plans = json.loads((dest / "grasps.json").read_text(encoding="utf-8"))
    plans["grasps"].update(v5["plans"])
    (dest / "grasps.json").write_text(json.dumps(plans, indent=2) + "\n", encoding="utf-8")
    return dest
