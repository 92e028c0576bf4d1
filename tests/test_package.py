"""The public surface of the package."""

from __future__ import annotations

import subprocess
import sys

import handsim


def test_every_public_name_resolves():
    for name in handsim.__all__:
        assert getattr(handsim, name) is not None, name


def test_import_is_light_and_registers_the_env():
    code = (
        "import sys, handsim, gymnasium;"
        "assert 'pybullet' not in sys.modules, 'import handsim loaded pybullet';"
        "assert handsim.GRASP_ENV_ID in gymnasium.registry"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
