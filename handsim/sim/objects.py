"""Test objects: primitive rigid bodies built from the taxonomy's object schema.

The schema (see ``grasps/README.md``), metres and kilograms, object frame at the centre of mass:

=========  ==================================  ==========================================
shape      size fields                         notes
=========  ==================================  ==========================================
sphere     ``radius``
cylinder   ``radius``, ``length``              axis along z, ``length`` end to end
box        ``size: [x, y, z]``                 full edge lengths
capsule    ``radius``, ``length``              axis along z, ``length`` tip to tip (>= 2 r)
torus      ``major_radius``, ``minor_radius``  axis along z (a ring, a bag handle)
=========  ==================================  ==========================================

plus ``mass`` [kg] (> 0) and ``friction`` (lateral, > 0). ``description``, ``name``, ``notes``
and ``rgba`` (render colour) are accepted and ignored by the physics.

A torus is a ring of ``TORUS_SEGMENTS`` capsules whose end spheres sit on the centre circle
(fast; no concave mesh). Inertia tensors are analytic for the ideal shape (the capsule ring's
own inertia differs from the ideal torus by under 1 % at 16 segments).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from handsim._pybullet import pybullet
from handsim._urdf_assets import PYBULLET_PRIMITIVE_MARGIN_M, margin_half_thickness
from handsim.errors import (
    ConfigurationError,
    SimulationError,
    UnknownNameError,
    suggest,
)
from handsim.sim._body import _Body, _pose_args
from handsim.sim.world import World
from handsim.transforms import matrix_to_quat, quat_wxyz_to_xyzw, quat_xyzw_to_wxyz

__all__ = ["SHAPE_FIELDS", "TORUS_SEGMENTS", "ObjectBody", "object_inertia", "spawn_object"]

#: Size fields of each shape.
SHAPE_FIELDS: dict[str, tuple[str, ...]] = {
    "sphere": ("radius",),
    "cylinder": ("radius", "length"),
    "box": ("size",),
    "capsule": ("radius", "length"),
    "torus": ("major_radius", "minor_radius"),
}
_COMMON_FIELDS = ("shape", "mass", "friction")
_IGNORED_FIELDS = ("description", "name", "notes", "rgba")
#: Capsules in a torus ring (a multiple of 4 so the AABB is exact along x and y).
TORUS_SEGMENTS = 16
_DEFAULT_RGBA = (0.85, 0.45, 0.15, 1.0)


def _positive(spec: Mapping[str, Any], key: str) -> float:
    value = spec[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigurationError(f"object spec field {key!r}: expected a finite number > 0, got {value!r}")
    return float(value)


def _validate(spec: Mapping[str, Any] | Any) -> dict[str, Any]:
    """Check a test-object spec and return it as a plain dict of floats."""
    if dataclasses.is_dataclass(spec) and not isinstance(spec, type):
        spec = dataclasses.asdict(spec)
    if not isinstance(spec, Mapping):
        raise ConfigurationError(f"object spec: expected a mapping with {', '.join(_COMMON_FIELDS)}, got {type(spec).__name__}")
    if "shape" not in spec:
        raise ConfigurationError(f"object spec: missing field 'shape'; valid shapes: {', '.join(SHAPE_FIELDS)}")
    shape = spec["shape"]
    if shape not in SHAPE_FIELDS:
        raise UnknownNameError(suggest(str(shape), SHAPE_FIELDS, "object shape"))
    fields = _COMMON_FIELDS + SHAPE_FIELDS[shape]
    missing = [f for f in fields if f not in spec]
    if missing:
        raise ConfigurationError(
            f"object spec ({shape}): missing field(s) {', '.join(missing)}; a {shape} needs {', '.join(fields)}"
        )
    extra = [k for k in spec if k not in fields and k not in _IGNORED_FIELDS]
    if extra:
        raise ConfigurationError(
            f"object spec ({shape}): unknown field(s) {', '.join(map(repr, extra))}; "
            f"valid: {', '.join(fields + _IGNORED_FIELDS)}"
        )
    out: dict[str, Any] = {"shape": shape, "mass": _positive(spec, "mass"), "friction": _positive(spec, "friction")}
    if shape == "box":
        size = spec["size"]
        try:
            arr = np.asarray(size, dtype=np.float64)
        except (TypeError, ValueError):
            arr = np.empty(0)
        if arr.shape != (3,) or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
            raise ConfigurationError(f"object spec field 'size': expected 3 finite edge lengths > 0 [m], got {size!r}")
        out["size"] = arr.tolist()
    else:
        for key in SHAPE_FIELDS[shape]:
            out[key] = _positive(spec, key)
    if shape == "capsule" and out["length"] < 2 * out["radius"]:
        raise ConfigurationError(
            f"object spec (capsule): 'length' is tip to tip and must be >= 2 * radius = "
            f"{2 * out['radius']}, got {out['length']}"
        )
    if shape == "torus" and out["minor_radius"] >= out["major_radius"]:
        raise ConfigurationError(
            f"object spec (torus): expected minor_radius < major_radius, got "
            f"{out['minor_radius']} >= {out['major_radius']}"
        )
    rgba = spec.get("rgba", _DEFAULT_RGBA)
    out["rgba"] = [float(v) for v in rgba]
    return out


def object_inertia(spec: Mapping[str, Any]) -> NDArray[np.float64]:
    """Principal moments of inertia of a test object about its centre of mass.

    Args:
        spec: A test-object spec (validated here).

    Returns:
        ``(Ixx, Iyy, Izz)`` [kg m^2] in the object frame.
    """
    s = _validate(spec)
    m = s["mass"]
    shape = s["shape"]
    if shape == "sphere":
        i = 0.4 * m * s["radius"] ** 2
        return np.array([i, i, i])
    if shape == "box":
        x, y, z = s["size"]
        return m / 12.0 * np.array([y * y + z * z, x * x + z * z, x * x + y * y])
    if shape == "cylinder":
        r, h = s["radius"], s["length"]
        ixx = m * (3 * r * r + h * h) / 12.0
        return np.array([ixx, ixx, 0.5 * m * r * r])
    if shape == "capsule":
        # Cylinder of length h plus two hemispheres, mass split by volume; the hemisphere term
        # (2/5 r^2 + h^2/4 + 3/8 h r) is the parallel-axis result about the capsule centre.
        r = s["radius"]
        h = s["length"] - 2 * r
        v_cyl, v_sph = math.pi * r * r * h, 4.0 / 3.0 * math.pi * r**3
        m_cyl, m_sph = m * v_cyl / (v_cyl + v_sph), m * v_sph / (v_cyl + v_sph)
        ixx = m_cyl * (3 * r * r + h * h) / 12.0 + m_sph * (0.4 * r * r + h * h / 4.0 + 3.0 * h * r / 8.0)
        izz = 0.5 * m_cyl * r * r + 0.4 * m_sph * r * r
        return np.array([ixx, ixx, izz])
    # Solid torus (major radius R, tube radius a) about its centre.
    big, a = s["major_radius"], s["minor_radius"]
    ixx = m * (0.5 * big * big + 0.625 * a * a)
    return np.array([ixx, ixx, m * (big * big + 0.75 * a * a)])


def _torus_segments(major: float) -> tuple[list[list[float]], list[list[float]], float]:
    """Frame positions, orientations (xyzw) and cylinder length of the torus capsules."""
    n = TORUS_SEGMENTS
    chord = 2.0 * major * math.sin(math.pi / n)
    positions, orientations = [], []
    for k in range(n):
        theta = 2.0 * math.pi * (k + 0.5) / n
        radial = np.array([math.cos(theta), math.sin(theta), 0.0])
        # Capsule axis (local z) along the tangent: columns x = world z, y = radial, z = x × y.
        rot = np.column_stack([[0.0, 0.0, 1.0], radial, np.cross([0.0, 0.0, 1.0], radial)])
        positions.append((major * math.cos(math.pi / n) * radial).tolist())
        orientations.append(quat_wxyz_to_xyzw(matrix_to_quat(rot)).tolist())
    return positions, orientations, chord


def _check_finite(shape: str, what: str, values: tuple[float, ...]) -> None:
    """A state read back from PyBullet is never user input: a non-finite one is a physics
    blow-up (:class:`~handsim.errors.SimulationError`), not a bad argument."""
    if not all(math.isfinite(v) for v in values):
        raise SimulationError(f"physics blow-up: the {shape} object's {what} became non-finite {tuple(values)}")


class ObjectBody(_Body):
    """A test object in a :class:`World` (create with :func:`spawn_object`).

    Attributes:
        spec: The validated spec (shape, sizes [m], mass [kg], friction).
        shape: The shape name.
        mass: Mass [kg].
    """

    _kind = "object"

    def __init__(self, world: World, body_id: int, spec: dict[str, Any]) -> None:
        super().__init__(world, body_id)
        self.spec = spec
        self.shape: str = spec["shape"]
        self.mass: float = spec["mass"]

    def pose(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Object frame (= centre of mass) in the world.

        Returns:
            ``(xyz, quat_wxyz)``: position (3,) [m] and orientation (4,) (w, x, y, z).
        """
        pos, orn = self._c().getBasePositionAndOrientation(self.body_id)
        _check_finite(self.shape, "pose", pos + orn)
        return np.array(pos, dtype=np.float64), quat_xyzw_to_wxyz(orn)

    def set_pose(self, xyz: ArrayLike, quat_wxyz: ArrayLike) -> None:
        """Teleport the object and zero its velocity (for setting up a scene, not mid-episode)."""
        pos, orn = _pose_args(xyz, quat_wxyz)
        c = self._c()
        c.resetBasePositionAndOrientation(self.body_id, pos, orn)
        c.resetBaseVelocity(self.body_id, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0])

    def raw_state(self) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
        """PyBullet's state of the object as plain tuples, for per-step loops.

        Returns:
            ``(xyz, quat_xyzw, linear, angular)``: position [m], orientation in PyBullet's
            (x, y, z, w) order, linear [m/s] and angular [rad/s] velocity, world frame.
        """
        c = self._c()
        pos, orn = c.getBasePositionAndOrientation(self.body_id)
        lin, ang = c.getBaseVelocity(self.body_id)
        return pos, orn, lin, ang

    def velocity(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Linear (3,) [m/s] and angular (3,) [rad/s] velocity in the world frame."""
        lin, ang = self._c().getBaseVelocity(self.body_id)
        _check_finite(self.shape, "velocity", lin + ang)
        return np.array(lin, dtype=np.float64), np.array(ang, dtype=np.float64)

    def apply_force(self, force: ArrayLike | None) -> None:
        """Push at the centre of mass with a world-frame force on every following step.

        The force stays until :meth:`clear_force` (or ``apply_force(None)``); the world
        re-applies it before each step because PyBullet forgets external forces after one.

        Args:
            force: Force, shape (3,) [N], world frame, or None to remove it.
        """
        self._c()
        self.world.set_external_force(self.body_id, force)

    def clear_force(self) -> None:
        """Stop applying the force set by :meth:`apply_force`."""
        self.apply_force(None)

    def aabb(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """PyBullet's axis-aligned bounding box, ``(lower (3,), upper (3,))`` [m]."""
        lo, hi = self._c().getAABB(self.body_id)
        return np.array(lo, dtype=np.float64), np.array(hi, dtype=np.float64)

    def __repr__(self) -> str:
        return f"ObjectBody({self.shape}, mass={self.mass} kg, id={self.body_id})"


def spawn_object(
    world: World,
    spec: Mapping[str, Any],
    xyz: ArrayLike = (0.0, 0.0, 0.0),
    quat_wxyz: ArrayLike = (1.0, 0.0, 0.0, 0.0),
    *,
    visual: bool = True,
) -> ObjectBody:
    """Create a test object in the world.

    Args:
        world: The world to add it to.
        spec: The object spec (see the module docstring); a dataclass with the same fields
            is accepted too.
        xyz: Position of the object frame (its centre of mass), shape (3,) [m].
        quat_wxyz: Orientation, shape (4,), (w, x, y, z).
        visual: Give it a visual shape (needed only for rendering; a torus's 16 visual capsules
            cost more than the rest of the set-up; the physics is the same without).

    Returns:
        The object, at rest, with no damping (free flight follows F = m a exactly).

    Raises:
        UnknownNameError: Unknown shape (the message lists the valid shapes).
        ConfigurationError: A missing, unknown or invalid field, or a bad pose.
    """
    s = _validate(spec)
    pos, orn = _pose_args(xyz, quat_wxyz)
    c = world.client
    shape = s["shape"]
    rgba = s["rgba"]
    vis = -1
    if shape == "sphere":
        col = c.createCollisionShape(pybullet.GEOM_SPHERE, radius=s["radius"])
        if visual:
            vis = c.createVisualShape(pybullet.GEOM_SPHERE, radius=s["radius"], rgbaColor=rgba)
    elif shape == "box":
        half = [0.5 * v for v in s["size"]]
        col = c.createCollisionShape(pybullet.GEOM_BOX, halfExtents=half)
        if visual:
            vis = c.createVisualShape(pybullet.GEOM_BOX, halfExtents=half, rgbaColor=rgba)
    elif shape == "cylinder":
        col = c.createCollisionShape(pybullet.GEOM_CYLINDER, radius=s["radius"], height=s["length"])
        if visual:
            vis = c.createVisualShape(pybullet.GEOM_CYLINDER, radius=s["radius"], length=s["length"], rgbaColor=rgba)
    elif shape == "capsule":
        # PyBullet's capsule height is the cylindrical part; the schema's length is tip to tip.
        h = s["length"] - 2 * s["radius"]
        col = c.createCollisionShape(pybullet.GEOM_CAPSULE, radius=s["radius"], height=h)
        if visual:
            vis = c.createVisualShape(pybullet.GEOM_CAPSULE, radius=s["radius"], length=h, rgbaColor=rgba)
    else:  # torus
        positions, orientations, chord = _torus_segments(s["major_radius"])
        n = len(positions)
        col = c.createCollisionShapeArray(
            shapeTypes=[pybullet.GEOM_CAPSULE] * n,
            radii=[s["minor_radius"]] * n,
            lengths=[chord] * n,
            collisionFramePositions=positions,
            collisionFrameOrientations=orientations,
        )
        if visual:
            vis = c.createVisualShapeArray(
                shapeTypes=[pybullet.GEOM_CAPSULE] * n,
                radii=[s["minor_radius"]] * n,
                lengths=[chord] * n,
                visualFramePositions=positions,
                visualFrameOrientations=orientations,
                rgbaColors=[rgba] * n,
            )
    if col < 0:
        raise ConfigurationError(f"PyBullet could not build a collision shape for {s}")
    body = c.createMultiBody(baseMass=s["mass"], baseCollisionShapeIndex=col, baseVisualShapeIndex=vis,
                             basePosition=pos, baseOrientation=orn)
    # PyBullet shrinks a box or cylinder by its 1 mm collision margin, so that the margin lands
    # on the true surface; one thinner than 2 mm cannot shrink that far, and a face then collides
    # up to (1 mm - half thickness) inside it (the 0.76 mm card's lower face sat 0.62 mm inside,
    # sloping). Such a shape gets Bullet's own "safe margin", a tenth of its half thickness.
    half = margin_half_thickness(shape, s.get("size", ()), s.get("radius", 0.0), s.get("length", 0.0))
    if half is not None and half < PYBULLET_PRIMITIVE_MARGIN_M:
        c.changeDynamics(body, -1, collisionMargin=0.1 * half)
    c.changeDynamics(
        body, -1,
        lateralFriction=s["friction"],
        localInertiaDiagonal=object_inertia(s).tolist(),
        linearDamping=0.0,
        angularDamping=0.0,
    )
    return ObjectBody(world, body, s)
