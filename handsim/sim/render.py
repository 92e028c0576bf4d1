"""Headless snapshots of a world (PyBullet's CPU TinyRenderer, no display needed)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from handsim._pybullet import pybullet
from handsim.errors import ConfigurationError
from handsim.sim.world import World

__all__ = ["render_rgb"]

_FOV_DEG = 50.0
_NEAR_M, _FAR_M = 0.01, 10.0


def render_rgb(
    world: World,
    width: int = 320,
    height: int = 240,
    target: ArrayLike = (0.0, 0.0, 0.0),
    distance: float = 0.4,
    yaw: float = 45.0,
    pitch: float = -30.0,
) -> NDArray[np.uint8]:
    """Render the world from an orbit camera with ``ER_TINY_RENDERER``.

    Args:
        world: The world to draw.
        width: Image width [px].
        height: Image height [px].
        target: The point the camera looks at, (3,) [m], world frame.
        distance: Camera distance from the target [m].
        yaw: Camera yaw about world z [deg].
        pitch: Camera pitch [deg] (negative looks down).

    Returns:
        The image, (height, width, 3) uint8 RGB.
    """
    if not (isinstance(width, (int, np.integer)) and isinstance(height, (int, np.integer)) and width > 0 and height > 0):
        raise ConfigurationError(f"render_rgb: expected positive integer width and height [px], got {width!r} x {height!r}")
    tgt = np.asarray(target, dtype=np.float64)
    if tgt.shape != (3,) or not np.all(np.isfinite(tgt)):
        raise ConfigurationError(f"render_rgb: target expected 3 finite numbers [m], got {target!r}")
    if not (np.isfinite(distance) and distance > 0):
        raise ConfigurationError(f"render_rgb: distance expected a finite number > 0 [m], got {distance!r}")
    c = world.client
    view = c.computeViewMatrixFromYawPitchRoll(tgt.tolist(), float(distance), float(yaw), float(pitch), 0.0, 2)
    proj = c.computeProjectionMatrixFOV(_FOV_DEG, width / height, _NEAR_M, _FAR_M)
    _, _, rgba, _, _ = c.getCameraImage(int(width), int(height), view, proj, renderer=pybullet.ER_TINY_RENDERER)
    img = np.asarray(rgba, dtype=np.uint8).reshape(int(height), int(width), 4)
    return np.ascontiguousarray(img[..., :3])
