"""Signed distance functions of the test-object shapes (pure numpy, batched).

Every function takes points in the **object frame** (centre of mass at the origin; cylinder,
capsule and torus axes along z, the conventions of :mod:`handsim.grasps` and
:mod:`handsim.sim.objects`) and returns the signed distance to the surface: positive outside,
negative inside [m]. The closed forms are the standard ones (e.g. I. Quilez's catalogue of
distance functions): exact for sphere, capsule, box, cylinder and torus.

PyBullet builds the torus as a ring of 16 capsules (:mod:`handsim.sim.objects`); the ideal
torus differs from that ring by at most ``R (1 - cos(pi / 16))`` (1.1 mm for the 6 cm bag
handle), well inside the synthesis margins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from handsim.errors import ConfigurationError
from handsim.grasps import TestObject

__all__ = ["ObjectSDF", "box_sdf", "capsule_sdf", "cylinder_sdf", "object_sdf", "sphere_sdf", "torus_sdf"]

_F = NDArray[np.float64]
#: Step of the central differences that give the surface normal [m].
_NORMAL_STEP_M = 1e-5


def sphere_sdf(p: ArrayLike, radius: float) -> _F:
    """Sphere of ``radius`` [m] at the origin; ``p`` (..., 3) -> (...,) [m]."""
    p = np.asarray(p, dtype=np.float64)
    return np.linalg.norm(p, axis=-1) - radius


def capsule_sdf(p: ArrayLike, radius: float, length: float) -> _F:
    """Capsule along z, ``length`` tip to tip (>= 2 radius) [m]; ``p`` (..., 3) -> (...,)."""
    p = np.asarray(p, dtype=np.float64)
    half = max(length / 2.0 - radius, 0.0)  # half-length of the core segment
    z = np.clip(p[..., 2], -half, half)
    q = p.copy()
    q[..., 2] -= z
    return np.linalg.norm(q, axis=-1) - radius


def cylinder_sdf(p: ArrayLike, radius: float, length: float) -> _F:
    """Solid cylinder along z, ``length`` end to end [m]; ``p`` (..., 3) -> (...,)."""
    p = np.asarray(p, dtype=np.float64)
    dr = np.hypot(p[..., 0], p[..., 1]) - radius
    dz = np.abs(p[..., 2]) - length / 2.0
    outside = np.hypot(np.maximum(dr, 0.0), np.maximum(dz, 0.0))
    return outside + np.minimum(np.maximum(dr, dz), 0.0)


def box_sdf(p: ArrayLike, size: ArrayLike) -> _F:
    """Box with full edge lengths ``size`` (3,) [m] centred at the origin; ``p`` (..., 3) -> (...,)."""
    p = np.asarray(p, dtype=np.float64)
    q = np.abs(p) - np.asarray(size, dtype=np.float64) / 2.0
    outside = np.linalg.norm(np.maximum(q, 0.0), axis=-1)
    return outside + np.minimum(q.max(axis=-1), 0.0)


def torus_sdf(p: ArrayLike, major_radius: float, minor_radius: float) -> _F:
    """Torus about z (``major_radius`` axis to tube centre, ``minor_radius`` tube) [m]."""
    p = np.asarray(p, dtype=np.float64)
    ring = np.hypot(p[..., 0], p[..., 1]) - major_radius
    return np.hypot(ring, p[..., 2]) - minor_radius


class ObjectSDF:
    """The signed distance of one test object, with its outward surface normal.

    Args:
        obj: The grasp type's test object.

    Attributes:
        shape: The object's shape name.
        half_extents: (3,) half-extents of its bounding box in its frame [m].
    """

    def __init__(self, obj: TestObject) -> None:
        self.shape = obj.shape
        self.half_extents = np.array(obj.half_extents(), dtype=np.float64)
        fn: Callable[[Any], _F]
        if obj.shape == "sphere":
            fn = lambda p, r=float(obj.radius): sphere_sdf(p, r)
        elif obj.shape == "capsule":
            fn = lambda p, r=float(obj.radius), n=float(obj.length): capsule_sdf(p, r, n)
        elif obj.shape == "cylinder":
            fn = lambda p, r=float(obj.radius), n=float(obj.length): cylinder_sdf(p, r, n)
        elif obj.shape == "box":
            fn = lambda p, s=tuple(obj.size): box_sdf(p, s)
        elif obj.shape == "torus":
            fn = lambda p, a=float(obj.major_radius), b=float(obj.minor_radius): torus_sdf(p, a, b)
        else:
            raise ConfigurationError(
                f"object shape: expected one of sphere, capsule, cylinder, box, torus, got {obj.shape!r}"
            )
        self._fn = fn

    def distance(self, p: ArrayLike) -> _F:
        """Signed distance of points ``p`` (..., 3) in the object frame -> (...,) [m]."""
        return self._fn(p)

    def normal(self, p: ArrayLike) -> _F:
        """Outward unit normal (the SDF gradient) at points ``p`` (..., 3) -> (..., 3).

        Central differences of the exact distance (the gradient of these closed forms is
        piecewise smooth; at a box edge this gives the bisector).
        """
        p = np.asarray(p, dtype=np.float64)
        g = np.empty(p.shape, dtype=np.float64)
        for k in range(3):
            e = np.zeros(3)
            e[k] = _NORMAL_STEP_M
            g[..., k] = self._fn(p + e) - self._fn(p - e)
        norm = np.linalg.norm(g, axis=-1, keepdims=True)
        return g / np.where(norm > 0, norm, 1.0)


def object_sdf(obj: TestObject) -> ObjectSDF:
    """The :class:`ObjectSDF` of a test object."""
    return ObjectSDF(obj)
