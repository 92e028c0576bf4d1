"""PyBullet, imported without its banner.

PyBullet's C module prints "pybullet build time: ..." to stderr when it is imported; a user
error from ``handsim`` must be one line on stderr, so every handsim module imports PyBullet
from here (``from handsim._pybullet import pybullet``). If the caller imported PyBullet first,
the banner is already out and this changes nothing.
"""

from __future__ import annotations

from handsim._io import quiet_stderr

with quiet_stderr():
    import pybullet

__all__ = ["pybullet"]
