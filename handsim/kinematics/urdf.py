"""URDF parsing into a :class:`~handsim.kinematics.tree.KinematicTree`.

Hand-written on top of :mod:`xml.etree.ElementTree`: the kinematic subset of URDF is small, and
owning the parser lets every error name the file, the element and what is allowed.
Supported: ``revolute``, ``continuous``, ``prismatic`` and ``fixed`` joints, arbitrary trees,
``origin xyz/rpy``, ``axis``, ``limit`` and ``mimic``. Geometry, inertia and transmissions are
ignored here.
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from handsim.errors import URDFError, suggest

__all__ = ["SUPPORTED_JOINT_TYPES", "JointSpec", "parse_urdf", "rpy_to_matrix"]

SUPPORTED_JOINT_TYPES = ("revolute", "continuous", "prismatic", "fixed")
_UNSUPPORTED = ("floating", "planar")
#: Joint types URDF requires a <limit> element on.
_LIMITED = ("revolute", "prismatic")


@dataclass(frozen=True)
class JointSpec:
    """One URDF joint as read from the file (SI units: metres, radians).

    Attributes:
        name: Joint name.
        type: One of :data:`SUPPORTED_JOINT_TYPES`.
        parent: Parent link name.
        child: Child link name.
        origin: (4, 4) transform from the parent link frame to the joint (= child link) frame.
        axis: (3,) unit axis in the joint frame.
        lower: Lower limit [rad or m] (``-inf`` for continuous or unspecified).
        upper: Upper limit [rad or m].
        effort: Effort limit [N m or N] (``inf`` if unspecified).
        velocity: Velocity limit [rad/s or m/s] (``inf`` if unspecified).
        mimic: ``(master joint name, multiplier, offset)`` or ``None``.
    """

    name: str
    type: str
    parent: str
    child: str
    origin: NDArray[np.float64]
    axis: NDArray[np.float64]
    lower: float
    upper: float
    effort: float
    velocity: float
    mimic: tuple[str, float, float] | None


def rpy_to_matrix(rpy: NDArray[np.float64]) -> NDArray[np.float64]:
    """URDF roll-pitch-yaw (fixed axes x, y, z) to a (3, 3) rotation: ``Rz(y) @ Ry(p) @ Rx(r)``."""
    r, p, y = rpy
    cr, sr, cp, sp, cy, sy = math.cos(r), math.sin(r), math.cos(p), math.sin(p), math.cos(y), math.sin(y)
    return np.array(
        [
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr],
        ]
    )


def armature_inertia(armature: float, axis: NDArray[np.float64] | tuple[float, ...]) -> NDArray[np.float64]:
    """The (3, 3) inertia tensor a joint armature adds to the joint's child link [kg m^2]: a thin
    disk's, ``armature`` about ``axis`` (in the link frame) and half of it about the two
    perpendicular axes, the least tensor with that moment that is still a body's (a rotor adds
    inertia about its own axis only, and PyBullet replaces a tensor that breaks the triangle
    inequality)."""
    a = np.asarray(axis, dtype=np.float64)
    a = a / np.linalg.norm(a)
    return armature * (0.5 * np.eye(3) + 0.5 * np.outer(a, a))


def matrix_to_rpy(rot: NDArray[np.float64]) -> tuple[float, float, float]:
    """URDF roll-pitch-yaw of a (3, 3) rotation ``Rz(y) @ Ry(p) @ Rx(r)`` (inverse of
    :func:`rpy_to_matrix`) [rad]; at gimbal lock (pitch +-90 deg) the rotation about z goes
    into yaw, roll 0."""
    r = np.asarray(rot, dtype=np.float64)
    sp = -float(r[2, 0])
    if abs(sp) > 1.0 - 1e-12:
        return 0.0, math.copysign(math.pi / 2, sp), math.atan2(-float(r[0, 1]), float(r[1, 1]))
    return math.atan2(float(r[2, 1]), float(r[2, 2])), math.asin(sp), math.atan2(float(r[1, 0]), float(r[0, 0]))


def _floats(text: str | None, count: int, default: tuple[float, ...], where: str) -> NDArray[np.float64]:
    if text is None:
        return np.array(default, dtype=np.float64)
    parts = text.split()
    try:
        values = np.array([float(v) for v in parts], dtype=np.float64)
    except ValueError:
        raise URDFError(f"{where}: expected {count} numbers, got {text!r}") from None
    if values.shape != (count,) or not np.all(np.isfinite(values)):
        raise URDFError(f"{where}: expected {count} finite numbers, got {text!r}")
    return values


def _float_attr(elem: ET.Element, attr: str, default: float, where: str, finite: bool = False) -> float:
    """A number attribute (``default`` when absent); NaN is refused, and +-inf too with ``finite``."""
    text = elem.get(attr)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise URDFError(f"{where}: attribute {attr!r} must be a number, got {text!r}") from None
    if math.isnan(value):
        raise URDFError(f"{where}: attribute {attr!r} is NaN")
    if finite and not math.isfinite(value):
        raise URDFError(f"{where}: attribute {attr!r} expected a finite number, got {text!r}")
    return value


def _parse_joint(elem: ET.Element, src: str) -> JointSpec:
    name = elem.get("name")
    if not name:
        raise URDFError(f"{src}: a <joint> has no name attribute")
    where = f"{src}: joint {name!r}"
    jtype = elem.get("type")
    if jtype in _UNSUPPORTED:
        raise URDFError(f"{where}: joint type {jtype!r} is not supported; supported: {', '.join(SUPPORTED_JOINT_TYPES)}")
    if jtype not in SUPPORTED_JOINT_TYPES:
        raise URDFError(f"{where}: unknown joint type {jtype!r}; valid: {', '.join(SUPPORTED_JOINT_TYPES)}")
    parent_el, child_el = elem.find("parent"), elem.find("child")
    if parent_el is None or parent_el.get("link") is None:
        raise URDFError(f"{where}: missing <parent link=...>")
    if child_el is None or child_el.get("link") is None:
        raise URDFError(f"{where}: missing <child link=...>")

    origin = np.eye(4)
    origin_el = elem.find("origin")
    if origin_el is not None:
        origin[:3, 3] = _floats(origin_el.get("xyz"), 3, (0.0, 0.0, 0.0), f"{where} <origin xyz>")
        origin[:3, :3] = rpy_to_matrix(_floats(origin_el.get("rpy"), 3, (0.0, 0.0, 0.0), f"{where} <origin rpy>"))

    axis_el = elem.find("axis")
    axis = _floats(None if axis_el is None else axis_el.get("xyz"), 3, (1.0, 0.0, 0.0), f"{where} <axis xyz>")
    norm = float(np.linalg.norm(axis))
    if jtype != "fixed":
        if norm < 1e-12:
            raise URDFError(f"{where}: <axis xyz> must be a non-zero vector, got {axis.tolist()}")
        axis = axis / norm

    lower, upper, effort, velocity = -math.inf, math.inf, math.inf, math.inf
    limit_el = elem.find("limit")
    if limit_el is None and jtype in _LIMITED:
        raise URDFError(f"{where}: a {jtype} joint needs a <limit lower=... upper=... effort=... velocity=...> "
                        "element (URDF requires one; only continuous joints may omit it)")
    if limit_el is not None:
        effort = _float_attr(limit_el, "effort", math.inf, f"{where} <limit>")
        velocity = _float_attr(limit_el, "velocity", math.inf, f"{where} <limit>")
        if jtype in ("revolute", "prismatic"):
            lower = _float_attr(limit_el, "lower", 0.0, f"{where} <limit>")
            upper = _float_attr(limit_el, "upper", 0.0, f"{where} <limit>")
            if lower > upper:
                raise URDFError(f"{where}: <limit> lower {lower} is above upper {upper}")

    mimic = None
    mimic_el = elem.find("mimic")
    if mimic_el is not None and jtype != "fixed":
        master = mimic_el.get("joint")
        if not master:
            raise URDFError(f"{where}: <mimic> needs a joint attribute")
        mimic = (
            master,
            _float_attr(mimic_el, "multiplier", 1.0, f"{where} <mimic>", finite=True),
            _float_attr(mimic_el, "offset", 0.0, f"{where} <mimic>", finite=True),
        )
    return JointSpec(
        name=name,
        type=jtype,
        parent=parent_el.get("link"),
        child=child_el.get("link"),
        origin=origin,
        axis=axis,
        lower=lower,
        upper=upper,
        effort=effort,
        velocity=velocity,
        mimic=mimic,
    )


def parse_urdf(source: str | os.PathLike[str], *, is_text: bool = False) -> tuple[str, list[str], list[JointSpec]]:
    """Read a URDF file (or text) into its robot name, link names and joints (document order).

    Args:
        source: Path of a URDF file, or the XML text itself when ``is_text`` is True.
        is_text: Treat ``source`` as XML text.

    Returns:
        ``(robot_name, link_names, joints)``.

    Raises:
        URDFError: Missing file, malformed XML, missing or duplicate names, unknown joint types,
            unknown links, links with two parents, no single root, cycles, bad mimic references.
    """
    if is_text:
        src = "<urdf text>"
        text = str(source)
    else:
        path = Path(source)
        src = str(path)
        if not path.is_file():
            raise URDFError(f"URDF file not found: {src}")
        text = path.read_text(encoding="utf-8", errors="replace")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise URDFError(f"{src}: malformed XML ({exc})") from None
    if root.tag != "robot":
        raise URDFError(f"{src}: root element must be <robot>, got <{root.tag}>")

    links: list[str] = []
    for el in root.findall("link"):
        name = el.get("name")
        if not name:
            raise URDFError(f"{src}: a <link> has no name attribute")
        if name in links:
            raise URDFError(f"{src}: duplicate link name {name!r}")
        links.append(name)
    if not links:
        raise URDFError(f"{src}: no <link> elements")

    joints = [_parse_joint(el, src) for el in root.findall("joint")]
    link_set = set(links)
    seen_joint: set[str] = set()
    parent_of: dict[str, str] = {}
    for j in joints:
        if j.name in seen_joint:
            raise URDFError(f"{src}: duplicate joint name {j.name!r}")
        seen_joint.add(j.name)
        for role, link in (("parent", j.parent), ("child", j.child)):
            if link not in link_set:
                raise URDFError(f"{src}: joint {j.name!r} {role} " + suggest(link, links, "link"))
        if j.child in parent_of:
            raise URDFError(
                f"{src}: link {j.child!r} has two parent joints ({parent_of[j.child]!r} and {j.name!r}); "
                "a URDF must be a tree"
            )
        parent_of[j.child] = j.name
    roots = [name for name in links if name not in parent_of]
    if len(roots) != 1:
        if not roots:
            raise URDFError(f"{src}: every link has a parent, so the joints form a cycle; a URDF must be a tree")
        raise URDFError(f"{src}: expected exactly one root link, found {len(roots)}: {', '.join(roots)}")
    # A cycle among non-root links leaves them unreachable from the root.
    children: dict[str, list[str]] = {name: [] for name in links}
    for j in joints:
        children[j.parent].append(j.child)
    reached, stack = set(), [roots[0]]
    while stack:
        link = stack.pop()
        reached.add(link)
        stack.extend(children[link])
    if len(reached) != len(links):
        lost = [name for name in links if name not in reached]
        raise URDFError(f"{src}: links {', '.join(lost)} are not reachable from root {roots[0]!r}: the joints form a cycle")
    _check_mimics(src, {j.name: j.type for j in joints},
                  {j.name: j.mimic[0] for j in joints if j.mimic is not None})
    return root.get("name", ""), links, joints


def _check_mimics(src: str, joint_types: dict[str, str], masters: dict[str, str]) -> None:
    """Every ``<mimic>`` names a movable joint, and following masters ends at a joint without one.

    Shared by this reader and the hand metadata's (:mod:`handsim.hand`), so that both reject a
    bad mimic tag with the same message, naming the joint that carries it.

    Args:
        src: The file (or ``<urdf text>``) for the message.
        joint_types: Every joint's name -> URDF type, document order.
        masters: Mimic joint name -> the joint its ``<mimic joint=...>`` names.

    Raises:
        URDFError: A master that does not exist, is fixed, or a chain of masters that loops.
    """
    movable = [name for name, jtype in joint_types.items() if jtype != "fixed"]
    for name, master in masters.items():
        where = f"{src}: joint {name!r} <mimic joint={master!r}>"
        if master not in joint_types:
            raise URDFError(f"{where}: " + suggest(master, movable, "joint"))
        if joint_types[master] == "fixed":
            raise URDFError(f"{where}: the master must be a movable joint, {master!r} is fixed; "
                            f"movable: {', '.join(movable)}")
    for name in masters:
        chain = [name]
        while chain[-1] in masters:
            nxt = masters[chain[-1]]
            if nxt in chain:
                loop = " -> ".join(chain[chain.index(nxt):] + [nxt])
                raise URDFError(f"{src}: joint {name!r} <mimic>: mimic joints form a cycle ({loop}); "
                                "following masters must end at a joint without <mimic>")
            chain.append(nxt)
