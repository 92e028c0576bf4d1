"""A regular (wheel) install finds the hand models and the taxonomy through handsim.data."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_carries_data_and_finds_it(tmp_path):
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("handsim-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "handsim/_data/models/default_hand/hand.json" in names
    assert "handsim/_data/grasps/24_tip_pinch.json" in names
    assert "handsim/py.typed" in names

    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr
    code = (
        "import handsim, handsim.data as d, handsim.grasps as g, handsim.hand as h;"
        "print(handsim.__file__); print(d.models_dir()); print(d.grasps_dir());"
        "print(len(g.all_grasps())); print(h.load_hand('default_hand').num_dof)"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr
    module, models, grasps, count, dof = run.stdout.split()
    assert module.startswith(str(target))
    assert models == str(target / "handsim" / "_data" / "models")
    assert grasps == str(target / "handsim" / "_data" / "grasps")
    assert int(count) == 33 and int(dof) >= 20
