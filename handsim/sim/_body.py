"""Shared plumbing of the simulated bodies: validity against World.reset() and removal."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from handsim.errors import ConfigurationError, SimulationError
from handsim.sim.world import World
from handsim.transforms import quat_normalize, quat_wxyz_to_xyzw


class _Body:
    """A PyBullet body owned by a :class:`World` generation."""

    _kind = "body"

    def __init__(self, world: World, body_id: int) -> None:
        self.world = world
        self.body_id = int(body_id)
        self._generation = world.generation
        self._removed = False

    @property
    def valid(self) -> bool:
        """False once removed, or once its world was reset or closed."""
        return not self._removed and not self.world.closed and self._generation == self.world.generation

    def _c(self):  # -> BulletClient; checked access for every PyBullet call on this body
        if self._removed:
            raise SimulationError(f"{self._kind} {self.body_id} was removed")
        if self.world.closed:
            raise SimulationError(f"{self._kind} {self.body_id}: its World is closed")
        if self._generation != self.world.generation:
            raise SimulationError(
                f"{self._kind} {self.body_id} belongs to a World state from before World.reset(); create it again"
            )
        return self.world.client

    def remove(self) -> None:
        """Delete the body from the world (idempotent)."""
        if self.valid:
            self.world._forget(self.body_id)
            self.world.client.removeBody(self.body_id)
        self._removed = True


def _pose_args(xyz: ArrayLike, quat_wxyz: ArrayLike) -> tuple[list[float], list[float]]:
    """Check a pose (xyz [m], quat wxyz) and convert it to PyBullet lists (xyz, quat xyzw)."""
    pos = np.asarray(xyz, dtype=np.float64)
    if pos.shape != (3,) or not np.all(np.isfinite(pos)):
        raise ConfigurationError(f"position xyz: expected 3 finite numbers [m], got {xyz!r}")
    q = np.asarray(quat_wxyz, dtype=np.float64)
    if q.shape != (4,):
        raise ConfigurationError(f"orientation: expected a quaternion (w, x, y, z), got {quat_wxyz!r}")
    return pos.tolist(), quat_wxyz_to_xyzw(quat_normalize(q)).tolist()
