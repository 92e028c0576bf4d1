"""Hand metadata: load and validate a hand folder's ``hand.json`` against its URDF.

The schema is documented in ``models/README.md``. Everything is checked on load and every
problem raises :class:`handsim.errors.MetadataError` naming the file, the field path (e.g.
``fingers.index.segments.distal``), what was expected and what was found, with close
matches for unknown link and joint names.

The URDF is read here with :mod:`xml.etree.ElementTree` only for its link and joint names,
joint types, parents/children and limits (the cross-checks); the kinematics live in
:mod:`handsim.kinematics`. This module is pure numpy/json: it never imports PyBullet.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
from numpy.typing import ArrayLike, NDArray

from handsim._io import DuplicateKeyError, loads_unique_keys, not_utf8
from handsim._urdf_assets import (
    check_inertials,
    check_link_numbers,
    check_not_xacro,
    check_urdf_assets,
    looks_like_xacro,
    mjcf_message,
    thin_collision_primitives,
    xacro_message,
)
from handsim.data import hand_dir, hand_metadata_path
from handsim.errors import (
    ConfigurationError,
    MetadataError,
    UnknownNameError,
    URDFError,
    suggest,
)
from handsim.kinematics.urdf import (
    _check_mimics,
    _float_attr,
    _floats,
    matrix_to_rpy,
    rpy_to_matrix,
)
from handsim.regions import Region, RegionMap

__all__ = [
    "FINGER_NAMES",
    "SCHEMA_VERSION",
    "SEGMENT_NAMES",
    "Finger",
    "Hand",
    "JointLimit",
    "MimicJoint",
    "ThumbAbduction",
    "load_hand",
]

SCHEMA_VERSION = 1
#: Finger names a hand may have, in anatomical order.
FINGER_NAMES: tuple[str, ...] = ("thumb", "index", "middle", "ring", "little")
#: Segment names per finger kind (the thumb has a metacarpal instead of a middle phalanx).
SEGMENT_NAMES: Mapping[str, tuple[str, ...]] = types.MappingProxyType({
    "thumb": ("metacarpal", "proximal", "distal"),
    "finger": ("proximal", "middle", "distal"),
})
_MOVABLE = ("revolute", "continuous", "prismatic")
# |axis . palmar| above this (sin 5 deg) is not "perpendicular"; below it palmar is
# orthogonalised against axis so the README rule measures angles in the plane normal to axis.
_MAX_AXIS_PALMAR_COS = math.sin(math.radians(5.0))
_MIN_VECTOR_NORM = 1e-9
_TOP_LEVEL = ("schema", "name", "urdf", "palm_link", "fingers", "regions",
              "pad_half_angle_deg", "dorsal_half_angle_deg")
_OPTIONAL_TOP_LEVEL = ("thumb_abduction", "rest_pose", "description")


@dataclasses.dataclass(frozen=True)
class JointLimit:
    """Limits of one movable URDF joint.

    Attributes:
        lower: Lower position limit [rad] (or [m] for prismatic); -inf for continuous joints.
        upper: Upper position limit [rad] (or [m]); +inf for continuous joints.
        effort: Torque limit [N m] (force [N] for prismatic), always > 0: a movable joint
            without a ``<limit effort=...>`` > 0 is refused (``URDFError``), since the motor
            is capped at it and PyBullet reads a missing effort as 0 (a joint that never moves).
        velocity: Speed limit [rad/s] (or [m/s]); +inf if the URDF gives none (handsim does not
            use it: the motors are capped by effort only).
    """

    lower: float
    upper: float
    effort: float
    velocity: float


@dataclasses.dataclass(frozen=True)
class MimicJoint:
    """A coupled joint: a URDF ``<mimic>`` tag makes it follow an independent joint.

    Its angle is ``multiplier * q[master] + offset`` (a chain of mimic tags is resolved down to
    the independent joint at its end, the multipliers and offsets composed).

    Attributes:
        joint: The mimic joint's name.
        master: The independent joint it follows (the end of the chain of ``<mimic>`` tags).
        multiplier: d(joint) / d(master) [-] (rad/rad, or m/rad etc. for mixed types).
        offset: The joint's value when the master is at 0 [rad or m].
    """

    joint: str
    master: str
    multiplier: float
    offset: float


@dataclasses.dataclass(frozen=True)
class Finger:
    """One finger of a hand.

    Attributes:
        name: ``thumb``, ``index``, ``middle``, ``ring`` or ``little``.
        segments: Segment name -> link name, palm outwards (``metacarpal``/``proximal``/
            ``middle``/``distal``).
        joints: The finger's movable joints, palm outwards (mimic joints included: they are
            joints of the finger, though not commanded; see :attr:`Hand.mimic_joints`).
        tip_link: Massless link fixed at the fingertip.
    """

    name: str
    segments: Mapping[str, str]
    joints: tuple[str, ...]
    tip_link: str

    @property
    def links(self) -> tuple[str, ...]:
        """The segment links, palm outwards."""
        return tuple(self.segments.values())


@dataclasses.dataclass(frozen=True)
class ThumbAbduction:
    """When the thumb counts as abducted (opposed).

    Exactly one of the two thresholds is set: ``abducted_min`` for a joint that opposes the
    thumb towards positive angles (abducted at or above it), ``abducted_max`` for one whose URDF
    axis makes opposition negative (abducted at or below it). Which one a hand needs depends
    only on the sign its URDF gave the joint's axis.

    Attributes:
        joint: The thumb joint that opposes the thumb.
        abducted_min: Abducted when ``joint >= abducted_min`` [rad], or None.
        abducted_max: Abducted when ``joint <= abducted_max`` [rad], or None.

    Raises:
        ConfigurationError: Not exactly one of ``abducted_min`` and ``abducted_max`` is given.
    """

    joint: str
    abducted_min: float | None = None
    abducted_max: float | None = None

    def __post_init__(self) -> None:
        if (self.abducted_min is None) == (self.abducted_max is None):
            raise ConfigurationError(f"ThumbAbduction({self.joint!r}): expected exactly one of abducted_min and "
                                     f"abducted_max, got {self.abducted_min!r} and {self.abducted_max!r}")

    @property
    def threshold(self) -> float:
        """The angle between adducted and abducted [rad] (whichever field is set)."""
        return float(self.abducted_min if self.abducted_min is not None else self.abducted_max)  # type: ignore[arg-type]

    @property
    def direction(self) -> int:
        """+1 when abduction is towards positive angles (``abducted_min``), -1 otherwise."""
        return 1 if self.abducted_min is not None else -1

    def is_abducted(self, angle: float) -> bool:
        """Whether a ``joint`` angle [rad] is abducted (the threshold itself counts as abducted)."""
        return bool(self.direction * (angle - self.threshold) >= 0.0)

    def side_range(self, abducted: bool, lower: float, upper: float, margin: float = 0.0) -> tuple[float, float]:
        """The part of ``[lower, upper]`` on one side of the threshold.

        Args:
            abducted: The abducted side (else the adducted one).
            lower: The joint's lower bound [rad].
            upper: The joint's upper bound [rad].
            margin: Keep this far from the threshold [rad].

        Returns:
            ``(lo, hi)`` [rad]; ``lo > hi`` when the joint cannot reach that side.
        """
        if abducted == (self.direction > 0):  # the side above the threshold
            return max(lower, self.threshold + margin), upper
        return lower, min(upper, self.threshold - margin)


@dataclasses.dataclass(frozen=True)
class Hand:
    """A hand model: its folder, URDF and validated metadata.

    Attributes:
        name: The hand's name (``hand.json`` ``name``).
        folder: The hand folder.
        urdf_path: The URDF file.
        palm_link: The root link (frame at the wrist, x distal, z palmar).
        fingers: Finger name -> :class:`Finger`, in :data:`FINGER_NAMES` order.
        regions: The contact-region labeller.
        thumb_abduction: The abducted/adducted rule, or ``None`` if the hand has no thumb entry.
        actuated_joints: The independent movable joints, URDF document order: what is commanded,
            planned and observed (``q``; the kinematics tree's ``joint_names``). A hand without
            ``<mimic>`` tags actuates every movable joint.
        movable_joints: Every movable joint (revolute, continuous, prismatic), URDF document
            order: the actuated ones and the mimic joints.
        mimic_joints: Mimic joint name -> :class:`MimicJoint` (empty for most hands), in
            URDF document order.
        joint_limits: Movable joint name -> :class:`JointLimit`, every movable joint (mimic
            joints too: their limits are checked in physics like any joint's).
        link_names: Every URDF link, in document order.
        pad_half_angle_deg: Default pad half-angle of the region rule [deg].
        dorsal_half_angle_deg: Default dorsal half-angle of the region rule [deg].
        rest_pose: Joint name -> rest angle [rad] (``hand.json`` ``rest_pose``; joints not
            listed rest at 0).
        metadata_path: The ``hand.json`` file.
    """

    name: str
    folder: Path
    urdf_path: Path
    palm_link: str
    fingers: Mapping[str, Finger]
    regions: RegionMap
    thumb_abduction: ThumbAbduction | None
    actuated_joints: tuple[str, ...]
    movable_joints: tuple[str, ...]
    mimic_joints: Mapping[str, MimicJoint]
    joint_limits: Mapping[str, JointLimit]
    link_names: tuple[str, ...]
    pad_half_angle_deg: float
    dorsal_half_angle_deg: float
    rest_pose: Mapping[str, float]
    metadata_path: Path

    @property
    def finger_names(self) -> tuple[str, ...]:
        """The hand's fingers in anatomical order."""
        return tuple(self.fingers)

    @property
    def tip_links(self) -> Mapping[str, str]:
        """Finger name -> fingertip link."""
        return types.MappingProxyType({f.name: f.tip_link for f in self.fingers.values()})

    @property
    def num_dof(self) -> int:
        """Number of actuated (independent) joints, the length of ``q``."""
        return len(self.actuated_joints)

    def rest_vector(self) -> NDArray[np.float64]:
        """(num_dof,) rest angles [rad] in :attr:`actuated_joints` order."""
        return np.array([self.rest_pose.get(j, 0.0) for j in self.actuated_joints], dtype=np.float64)

    def movable_values(self, q: ArrayLike) -> NDArray[np.float64]:
        """Every movable joint's value from the actuated joints' (mimic joints follow their
        master), unclipped.

        Args:
            q: (..., num_dof) actuated joint values [rad or m], :attr:`actuated_joints` order.

        Returns:
            (..., len(movable_joints)) values in :attr:`movable_joints` order.

        Raises:
            ConfigurationError: ``q``'s last axis is not ``num_dof`` long.
        """
        q = np.asarray(q, dtype=np.float64)
        if q.ndim < 1 or q.shape[-1] != self.num_dof:
            raise ConfigurationError(f"Hand.movable_values(q): expected shape (..., {self.num_dof}) over "
                                     f"{', '.join(self.actuated_joints)}, got {q.shape}")
        col = {j: i for i, j in enumerate(self.actuated_joints)}
        out = []
        for j in self.movable_joints:
            m = self.mimic_joints.get(j)
            out.append(q[..., col[j]] if m is None else m.multiplier * q[..., col[m.master]] + m.offset)
        return np.stack(out, axis=-1) if out else np.zeros(q.shape[:-1] + (0,))

    def finger(self, name: str) -> Finger:
        """The finger called ``name``.

        Raises:
            UnknownNameError: If the hand has no such finger.
        """
        try:
            return self.fingers[name]
        except KeyError:
            raise UnknownNameError(suggest(name, self.fingers, "finger")) from None


# ---------------------------------------------------------------------------- URDF reading
@dataclasses.dataclass(frozen=True)
class _UrdfJoint:
    name: str
    type: str
    parent: str
    child: str
    limit: JointLimit | None
    mimic: tuple[str, float, float] | None = None  # (the joint it names, multiplier, offset)


@dataclasses.dataclass(frozen=True)
class _UrdfSummary:
    links: tuple[str, ...]
    joints: tuple[_UrdfJoint, ...]
    xml: ET.Element = dataclasses.field(compare=False, repr=False)  # the parsed <robot>, for later checks

    @property
    def movable(self) -> tuple[str, ...]:
        return tuple(j.name for j in self.joints if j.type in _MOVABLE)

    def mimics(self) -> dict[str, MimicJoint]:
        """Mimic joint -> :class:`MimicJoint`, chains resolved to the independent master
        (``_read_urdf`` has checked that every chain ends at one)."""
        by_name = {j.name: j for j in self.joints}
        out = {}
        for j in self.joints:
            if j.mimic is None:
                continue
            mult, off, cur = 1.0, 0.0, j
            while cur.mimic is not None:
                master, m, o = cur.mimic
                mult, off = mult * m, mult * o + off  # q_j = mult * (m * q_master + o) + off
                cur = by_name[master]
            out[j.name] = MimicJoint(j.name, cur.name, mult, off)
        return out

    def root(self) -> str:
        children = {j.child for j in self.joints}
        roots = [link for link in self.links if link not in children]
        return roots[0] if len(roots) == 1 else ""

    def path_joints(self, child_link: str) -> list[_UrdfJoint]:
        """Joints from the root down to ``child_link``, root first."""
        parent_joint = {j.child: j for j in self.joints}
        out: list[_UrdfJoint] = []
        link = child_link
        while link in parent_joint and len(out) <= len(self.joints):
            out.append(parent_joint[link])
            link = parent_joint[link].parent
        return out[::-1]


def _read_urdf(path: Path) -> _UrdfSummary:
    """Read a URDF's names, joints and limits and run every check that needs no physics: the
    limits (``_check_limit``), the inertials and the mesh files (:mod:`handsim._urdf_assets`).

    Raises:
        URDFError: The first problem found, naming the file, the link or joint and the value.
    """
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        if looks_like_xacro(path.read_text(encoding="utf-8", errors="replace")):
            raise URDFError(xacro_message(path)) from exc
        raise URDFError(f"{path}: not well-formed XML ({exc})") from exc
    if root.tag == "mujoco":
        raise URDFError(mjcf_message(path))
    if root.tag != "robot":
        raise URDFError(f"{path}: expected a <robot> root element, got <{root.tag}>")
    check_not_xacro(root, path)  # before the joints: "${pi/2}" is not a number, but that is not the point
    links = tuple(el.get("name", "") for el in root.findall("link"))
    joints = []
    for el in root.findall("joint"):
        name, jtype = el.get("name", ""), el.get("type", "")
        parent, child = el.find("parent"), el.find("child")
        if parent is None or child is None:
            raise URDFError(f"{path}: joint {name!r} lacks a <parent> or <child> element")
        limit = None
        if jtype in _MOVABLE:
            lim = el.find("limit")
            where = f"{path}: joint {name!r} <limit>"
            # A hand's joints are motors capped at their effort: without one (PyBullet reads a
            # missing effort as 0) the joint could never move, so even a continuous joint, on which
            # URDF allows no <limit>, needs one here.
            if lim is None:
                raise URDFError(f"{path}: joint {name!r}: a hand's {jtype} joint needs a <limit ... effort=...> "
                                "element (URDF requires one on revolute and prismatic joints; the effort is the "
                                "motor's force cap)")
            get = (lambda key, default, lim=lim, where=where: _float_attr(lim, key, default, where))
            if jtype == "continuous":
                lower, upper = -math.inf, math.inf
            else:
                lower, upper = get("lower", 0.0), get("upper", 0.0)
            effort = get("effort", 0.0)
            if not effort > 0:
                raise URDFError(f"{where}: expected effort > 0 (the motor's force cap, N m or N), got "
                                f"{'nothing' if lim.get('effort') is None else effort}")
            limit = JointLimit(lower, upper, effort, get("velocity", math.inf))
            _check_limit(where, jtype, limit, lim)
        mimic = None
        mimic_el = el.find("mimic")
        if mimic_el is not None and jtype in _MOVABLE:
            where = f"{path}: joint {name!r} <mimic>"
            if not mimic_el.get("joint"):
                raise URDFError(f"{where} needs a joint attribute")
            mimic = (mimic_el.get("joint", ""), _float_attr(mimic_el, "multiplier", 1.0, where, finite=True),
                     _float_attr(mimic_el, "offset", 0.0, where, finite=True))
        joints.append(_UrdfJoint(name, jtype, parent.get("link", ""), child.get("link", ""), limit, mimic))
    # The kinematics reader's check, so both readers reject a bad <mimic> with the same message.
    _check_mimics(str(path), {j.name: j.type for j in joints},
                  {j.name: j.mimic[0] for j in joints if j.mimic is not None})
    _check_tree(path, links, joints)
    check_inertials(root, path)
    check_link_numbers(root, path)
    for message in thin_collision_primitives(root, path):
        warnings.warn(message, UserWarning, stacklevel=3)
    check_urdf_assets(root, path)
    return _UrdfSummary(links, tuple(joints), root)


def _check_tree(path: Path, links: tuple[str, ...], joints: list[_UrdfJoint]) -> None:
    """The links and joints form one tree: unique names, every joint between known links, each
    link the child of at most one joint, and exactly one link (the root) the child of none.

    Raises:
        URDFError: Naming the duplicate, unknown or orphan link or joint.
    """
    for kind, names in (("link", links), ("joint", tuple(j.name for j in joints))):
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise URDFError(f"{path}: duplicate {kind} name {name!r} (each {kind} needs its own name)")
            seen.add(name)
    known = set(links)
    parent_of: dict[str, str] = {}
    for j in joints:
        for end, link in (("parent", j.parent), ("child", j.child)):
            if link not in known:
                raise URDFError(f"{path}: joint {j.name!r} <{end} link={link!r}>: " + suggest(link, links, "link"))
        if j.child in parent_of:
            raise URDFError(f"{path}: link {j.child!r} is the child of two joints ({parent_of[j.child]!r} and "
                            f"{j.name!r}); a URDF is a tree, each link has at most one parent joint")
        parent_of[j.child] = j.name
    roots = [link for link in links if link not in parent_of]
    if len(roots) != 1:
        children: dict[str, list[str]] = {}
        for j in joints:
            children.setdefault(j.parent, []).append(j.child)

        def size(link: str) -> int:  # links in the subtree (no loop below a root: each has one parent)
            return 1 + sum(size(c) for c in children.get(link, ()))

        roots.sort(key=size, reverse=True)  # the real root carries the most links; the others are orphans
        orphans = ", ".join(repr(r) for r in roots[1:])
        raise URDFError(f"{path}: expected one root link, found {len(roots)}: {', '.join(map(repr, roots))}"
                        + (f"; {orphans} {'has' if len(roots) == 2 else 'have'} no parent joint (a joint "
                           "whose <child> names it is missing)" if roots else " (the joints form a loop)"))


def _check_limit(where: str, jtype: str, limit: JointLimit, element: ET.Element) -> None:
    """Refuse limits PyBullet would run but that are almost certainly a mistake.

    Raises:
        URDFError: An effort that is not finite (an uncapped motor), a revolute or prismatic
            range that is not finite, inverted, or emptied by a missing ``lower``/``upper``
            (URDF reads it as 0: ``<limit effort velocity>`` alone is [0, 0]), or a revolute
            range above 2 pi.
    """
    if not math.isfinite(limit.effort):
        raise URDFError(f"{where}: expected a finite effort (the motor's force cap, N m or N), got "
                        f"{element.get('effort')!r}: an infinite one leaves the motor uncapped")
    if jtype not in ("revolute", "prismatic"):
        return
    if not (math.isfinite(limit.lower) and math.isfinite(limit.upper)):
        hint = "; a joint without limits is type continuous" if jtype == "revolute" else ""
        raise URDFError(f"{where}: expected finite lower and upper, got {limit.lower} and {limit.upper}{hint}")
    if limit.lower > limit.upper:  # the kinematics reader's message, so both say the same
        raise URDFError(f"{where[:-len(' <limit>')]}: <limit> lower {limit.lower} is above upper {limit.upper}")
    missing = [k for k in ("lower", "upper") if element.get(k) is None]
    # Only a range emptied by a missing attribute is refused: an explicit lower == upper is a
    # deliberate freeze that keeps the joint in the plans (tests/test_honesty.py's frozen hands).
    if limit.upper == limit.lower and missing:
        raise URDFError(f"{where}: lower == upper == {limit.lower:g} ({' and '.join(missing)} missing: URDF reads "
                        "it as 0): the joint cannot move; give it a range, or make it type \"fixed\"")
    # Above one turn by more than export rounding (+-3.1416 is a common +-pi); a range written
    # in degrees is tens of units wide.
    if jtype == "revolute" and limit.upper - limit.lower > 2 * math.pi + 0.1:
        raise URDFError(f"{where}: range [{limit.lower:g}, {limit.upper:g}] is more than 2 pi rad: the limits "
                        "look like degrees (URDF revolute limits are in radians)")


# ---------------------------------------------------------------------------- validation
class _Checker:
    """Builds MetadataError messages that name the file and the field path."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, field: str, expected: str, got: Any) -> MetadataError:
        shown = got if isinstance(got, str) and got.startswith("<") else repr(got)
        return MetadataError(f"{self.path}: field {field}: expected {expected}, got {shown}")

    def unknown(self, field: str, name: Any, valid: Any, what: str) -> MetadataError:
        if not isinstance(name, str):
            return self.fail(field, f"a {what} name (string)", name)
        return MetadataError(f"{self.path}: field {field}: {suggest(name, valid, what)}")

    def get(self, obj: Mapping[str, Any], key: str, field: str, kind: type | tuple[type, ...],
            what: str) -> Any:
        if key not in obj:
            self.missing(field, what)
        value = obj[key]
        if isinstance(value, bool) or not isinstance(value, kind):
            raise self.fail(field, what, value)
        return value

    def missing(self, field: str, what: str) -> NoReturn:
        raise self.fail(field, what, "<missing>")

    def required_and_schema(self, raw: Mapping[str, Any], required: Sequence[str], version: int) -> None:
        """Every ``required`` top-level field is present and ``schema`` is ``version``."""
        for key in required:
            if key not in raw:
                self.missing(key, "a value (required field)")
        if raw["schema"] != version or isinstance(raw["schema"], bool):
            raise self.fail("schema", f"schema version {version}", raw["schema"])

    def number(self, value: Any, field: str, lo: float = -math.inf, hi: float = math.inf,
               lo_open: bool = False, hi_open: bool = False) -> float:
        rng = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(field, f"a finite number in {rng}", value)
        v = float(value)
        if v < lo or v > hi or (lo_open and v == lo) or (hi_open and v == hi):
            raise self.fail(field, f"a number in {rng}", value)
        return v

    def vector(self, value: Any, field: str, unit: bool) -> NDArray[np.float64]:
        what = "a non-zero 3-vector [x, y, z]" if unit else "a 3-vector [x, y, z] [m]"
        if (not isinstance(value, (list, tuple)) or len(value) != 3 or any(
                isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
                for v in value)):
            raise self.fail(field, what, value)
        vec = np.asarray(value, dtype=np.float64)
        if unit:
            norm = float(np.linalg.norm(vec))
            if norm < _MIN_VECTOR_NORM:
                raise self.fail(field, "a non-zero direction (it is normalised on load)", value)
            vec = vec / norm
        vec.setflags(write=False)
        return vec


def load_hand(name_or_path: str | Path) -> Hand:
    """Load and validate a hand: a shipped hand's name or a folder holding ``hand.json``.

    Args:
        name_or_path: e.g. ``"default_hand"`` or ``Path("my_hands/gripper")``.

    Returns:
        The validated :class:`Hand`.

    Raises:
        DataNotFoundError: If the hand cannot be found (see :func:`handsim.data.hand_dir`).
        MetadataError: If ``hand.json`` is not UTF-8 text, is malformed or disagrees with the URDF.
        URDFError: If the URDF is not well-formed XML.
        ConfigurationError: An MJCF hand whose converted files cannot be cached (see
            :func:`handsim.importers.converted_hand_dir`: ``HANDSIM_CACHE_DIR`` names a file).
    """
    folder = hand_dir(name_or_path)
    path = hand_metadata_path(folder)  # an MJCF hand's is converted, outside the folder
    chk = _Checker(path)
    try:
        raw = loads_unique_keys(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise MetadataError(f"{path}: not valid JSON ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise MetadataError(not_utf8(path, exc)) from None
    except DuplicateKeyError as exc:
        raise MetadataError(f"{path}: {exc}") from None
    if not isinstance(raw, dict):
        raise chk.fail("(top level)", "a JSON object", type(raw).__name__)
    for key in raw:
        if key not in _TOP_LEVEL + _OPTIONAL_TOP_LEVEL:
            raise chk.unknown(key, key, _TOP_LEVEL + _OPTIONAL_TOP_LEVEL, "top-level field")
    chk.required_and_schema(raw, _TOP_LEVEL, SCHEMA_VERSION)
    name = chk.get(raw, "name", "name", str, "the hand's name (string)")
    urdf_name = chk.get(raw, "urdf", "urdf", str, "a URDF file name relative to the hand folder")
    urdf_path = (path.parent / urdf_name).resolve()
    if not urdf_path.is_file():
        raise chk.fail("urdf", f"an existing URDF file (looked for {urdf_path})", urdf_name)
    urdf = _read_urdf(urdf_path)
    links = set(urdf.links)
    joints_by_name = {j.name: j for j in urdf.joints}

    def link_field(value: Any, field: str) -> str:
        if not isinstance(value, str) or value not in links:  # a list is unhashable: check the type first
            raise chk.unknown(field, value, urdf.links, f"link of {urdf_path.name}")
        return value

    palm = link_field(chk.get(raw, "palm_link", "palm_link", str, "the palm link name"), "palm_link")
    if urdf.root() != palm:
        raise chk.fail("palm_link", f"the URDF root link ({urdf.root() or 'none unique'}; set palm_link to the "
                       "URDF root, or make the joints above the palm fixed)", palm)

    mimics = urdf.mimics()
    fingers = _load_fingers(raw, chk, urdf, palm, link_field, joints_by_name, urdf_path.name)
    thumb_abd = _load_thumb_abduction(raw, chk, fingers, joints_by_name, mimics)

    pad = chk.number(raw["pad_half_angle_deg"], "pad_half_angle_deg", 0.0, 180.0, True, True)
    dorsal = chk.number(raw["dorsal_half_angle_deg"], "dorsal_half_angle_deg", 0.0, 180.0, True, True)
    if pad + dorsal > 180.0:
        raise chk.fail("dorsal_half_angle_deg", f"at most 180 - pad_half_angle_deg = {180 - pad:g} "
                       "(pad and dorsal cones must not overlap)", raw["dorsal_half_angle_deg"])
    regions = _load_regions(raw, chk, fingers, palm, link_field, pad, dorsal, urdf)
    _check_palm(chk, urdf, urdf_path, palm, fingers, regions)
    rest = _load_rest_pose(raw, chk, urdf, joints_by_name, mimics)

    movable = urdf.movable
    limits = {j: joints_by_name[j].limit for j in movable}
    return Hand(
        name=name,
        folder=folder,
        urdf_path=urdf_path,
        palm_link=palm,
        fingers=types.MappingProxyType(fingers),
        regions=RegionMap(regions, urdf.links),
        thumb_abduction=thumb_abd,
        actuated_joints=tuple(j for j in movable if j not in mimics),
        movable_joints=movable,
        mimic_joints=types.MappingProxyType(mimics),
        joint_limits=types.MappingProxyType(limits),  # type: ignore[arg-type]
        link_names=urdf.links,
        pad_half_angle_deg=pad,
        dorsal_half_angle_deg=dorsal,
        rest_pose=types.MappingProxyType(rest),
        metadata_path=path,
    )


def _load_fingers(raw: Mapping[str, Any], chk: _Checker, urdf: _UrdfSummary, palm: str,
                  link_field: Any, joints_by_name: Mapping[str, _UrdfJoint],
                  urdf_file: str) -> dict[str, Finger]:
    entries = chk.get(raw, "fingers", "fingers", dict, "an object of fingers")
    if not entries:
        raise chk.fail("fingers", f"at least one of {', '.join(FINGER_NAMES)}", entries)
    for fname in entries:
        if fname not in FINGER_NAMES:
            raise chk.unknown(f"fingers.{fname}", fname, FINGER_NAMES, "finger")
    fingers: dict[str, Finger] = {}
    seen_links: dict[str, str] = {}
    seen_joints: dict[str, str] = {}  # joint -> the field that listed it first
    for fname in FINGER_NAMES:  # anatomical order whatever the file order
        if fname not in entries:
            continue
        base = f"fingers.{fname}"
        entry = chk.get(entries, fname, base, dict, "an object with segments, joints, tip_link")
        for key in entry:
            if key not in ("segments", "joints", "tip_link"):
                raise chk.unknown(f"{base}.{key}", key, ("segments", "joints", "tip_link"), "finger field")
        kind = "thumb" if fname == "thumb" else "finger"
        valid_segments = SEGMENT_NAMES[kind]
        segs = chk.get(entry, "segments", f"{base}.segments", dict,
                       f"an object mapping {'/'.join(valid_segments)} to link names")
        if not segs:
            raise chk.fail(f"{base}.segments", f"at least one of {', '.join(valid_segments)}", segs)
        for sname in segs:
            if sname not in valid_segments:
                raise chk.unknown(f"{base}.segments.{sname}", sname, valid_segments, f"{fname} segment")
        segments = {}
        for sname in valid_segments:  # palm outwards
            if sname in segs:
                field = f"{base}.segments.{sname}"
                link = link_field(segs[sname], field)
                if link in seen_links or link == palm:
                    other = seen_links.get(link, "palm_link")
                    raise chk.fail(field, "a link no other segment uses", f"{link!r} (also {other})")
                seen_links[link] = field
                segments[sname] = link
        tip = link_field(chk.get(entry, "tip_link", f"{base}.tip_link", str, "the fingertip link name"),
                         f"{base}.tip_link")
        joints = chk.get(entry, "joints", f"{base}.joints", list, "a list of joint names, palm outwards")
        for i, jname in enumerate(joints):
            if not isinstance(jname, str) or jname not in joints_by_name:
                raise chk.unknown(f"{base}.joints[{i}]", jname, joints_by_name, f"joint of {urdf_file}")
            if joints_by_name[jname].type not in _MOVABLE:
                raise chk.fail(f"{base}.joints[{i}]", "a movable (revolute/continuous/prismatic) joint",
                               f"{jname!r} of type {joints_by_name[jname].type!r}")
        # The chain from the palm to the tip fixes which joints and segments belong to the finger.
        chain = urdf.path_joints(tip)
        if not chain or chain[0].parent != palm:
            raise chk.fail(f"{base}.tip_link", f"a link below the palm link {palm!r}", tip)
        chain_links = [j.child for j in chain]
        last = next(reversed(segments.values()), None)
        if last is not None and last not in chain_links:
            # Checked before the joints: a tip on another finger or on a middle link would
            # otherwise be reported as a wrong joints list.
            raise chk.fail(f"{base}.tip_link", f"the finger's last segment {last!r} or a link below it "
                           "(its fingertip)", tip)
        for i, jname in enumerate(joints):
            if jname in seen_joints:
                raise chk.fail(f"{base}.joints[{i}]", "a joint no other finger lists (a joint above the palm, "
                               "e.g. a wrist, belongs to no finger: set palm_link to the URDF root, or make the "
                               "joints above the palm fixed)", f"<{jname!r}, also in {seen_joints[jname]}>")
            seen_joints[jname] = f"{base}.joints[{i}]"
        chain_movable = [j.name for j in chain if j.type in _MOVABLE]
        if list(joints) != chain_movable:
            raise chk.fail(f"{base}.joints", f"the movable joints from the palm to {tip!r} in order, "
                           f"{chain_movable}", joints)
        order = [chain_links.index(link) if link in chain_links else -1 for link in segments.values()]
        for (sname, link), pos in zip(segments.items(), order):
            if pos < 0:
                raise chk.fail(f"{base}.segments.{sname}", f"a link on the chain from the palm to {tip!r}",
                               link)
        if order != sorted(order):
            raise chk.fail(f"{base}.segments", "segments in palm-outwards order along the chain",
                           dict(segments))
        fingers[fname] = Finger(fname, types.MappingProxyType(segments), tuple(joints), tip)
    return fingers


def _mimic_got(name: str, mimic: MimicJoint) -> str:
    """How a field naming a mimic joint is shown: the joint and the master it follows."""
    return (f"<{name!r}, a mimic joint following {mimic.master!r} ({name} = {mimic.multiplier:g} x "
            f"{mimic.master} + {mimic.offset:g}); name {mimic.master!r} instead>")


def _load_thumb_abduction(raw: Mapping[str, Any], chk: _Checker, fingers: Mapping[str, Finger],
                          joints_by_name: Mapping[str, _UrdfJoint],
                          mimics: Mapping[str, MimicJoint]) -> ThumbAbduction | None:
    what = "an object {joint, abducted_min} (or {joint, abducted_max})"
    if "thumb_abduction" not in raw:
        if "thumb" in fingers:
            chk.missing("thumb_abduction", f"{what} (the hand has a thumb)")
        return None
    entry = chk.get(raw, "thumb_abduction", "thumb_abduction", dict, what)
    if "thumb" not in fingers:
        raise chk.fail("thumb_abduction", "no entry (the hand has no thumb)", entry)
    fields = ("joint", "abducted_min", "abducted_max")
    for key in entry:
        if key not in fields:
            raise chk.unknown(f"thumb_abduction.{key}", key, fields, "thumb_abduction field")
    joint = chk.get(entry, "joint", "thumb_abduction.joint", str, "a thumb joint name")
    thumb_joints = fingers["thumb"].joints
    if joint not in thumb_joints:
        raise chk.unknown("thumb_abduction.joint", joint, thumb_joints, "thumb joint")
    if joint in mimics:  # the rule is read from (and planned on) an independent joint
        raise chk.fail("thumb_abduction.joint", "an independent thumb joint (not a mimic joint)",
                       _mimic_got(joint, mimics[joint]))
    given = [key for key in ("abducted_min", "abducted_max") if key in entry]
    if len(given) != 1:
        # abducted_min when opposing the thumb turns the joint positive, abducted_max when the
        # URDF axis makes it turn negative: one rule, so exactly one threshold.
        raise chk.fail("thumb_abduction", "exactly one of abducted_min (abducted at or above it, a joint "
                       "that opposes the thumb towards positive angles) and abducted_max (abducted at or "
                       "below it, a joint whose axis makes opposition negative) [rad]",
                       f"<{' and '.join(given) or 'neither'}>")
    key = given[0]
    lim = joints_by_name[joint].limit
    assert lim is not None  # movable joints always get a JointLimit
    value = chk.number(entry[key], f"thumb_abduction.{key}", lim.lower, lim.upper)
    return ThumbAbduction(joint, **{key: value})


def _palm_side_links(urdf: _UrdfSummary, palm: str, segment_links: set[str]) -> list[str]:
    """Links that are neither a finger segment nor below one (e.g. ``<f>_knuckle``, ``thumb_cmc``).

    They move with the palm or with a joint between the palm and a segment, so geometry on them
    is palm tissue (the palm at the MCP joints, the thenar) and their regions may be ``palm``.
    """
    out = []
    for link in urdf.links:
        if link == palm or link in segment_links:
            continue
        ancestors = {j.parent for j in urdf.path_joints(link)}
        if not ancestors & segment_links:
            out.append(link)
    return out


def _load_regions(raw: Mapping[str, Any], chk: _Checker, fingers: Mapping[str, Finger], palm: str,
                  link_field: Any, pad: float, dorsal: float, urdf: _UrdfSummary) -> list[Region]:
    entries = chk.get(raw, "regions", "regions", dict, "an object mapping link names to regions")
    part_of = {palm: "palm"}
    for finger in fingers.values():
        for sname, link in finger.segments.items():
            part_of[link] = f"{finger.name}.{sname}"
    # Palm pads on links between the palm and the segments (knuckles, thumb CMC) are palm too.
    for link in _palm_side_links(urdf, palm, set(part_of) - {palm}):
        part_of[link] = "palm"
    allowed = ("part", "center", "axis", "palmar", "length", "tip_from",
               "pad_half_angle_deg", "dorsal_half_angle_deg")
    regions = []
    for link, entry in entries.items():
        base = f"regions.{link}"
        link_field(link, base)
        if not isinstance(entry, dict):
            raise chk.fail(base, "an object {part, axis, palmar, ...}", entry)
        for key in entry:
            if key not in allowed:
                raise chk.unknown(f"{base}.{key}", key, allowed, "region field")
        part = chk.get(entry, "part", f"{base}.part", str, "'palm' or '<finger>.<segment>'")
        expected_part = part_of.get(link)
        if expected_part is None:
            raise chk.fail(base, "a region for the palm link, a finger segment link or a link "
                           f"between them ({', '.join(sorted(part_of))})", link)
        if part != expected_part:
            why = (f"the segment {link!r} is in fingers" if expected_part != "palm" else
                   f"{link!r} is the palm link" if link == palm else
                   f"{link!r} lies between the palm and the finger segments")
            raise chk.fail(f"{base}.part", f"{expected_part!r} ({why})", part)
        center = chk.vector(entry.get("center", [0.0, 0.0, 0.0]), f"{base}.center", unit=False)
        for key in ("axis", "palmar"):
            if key not in entry:
                chk.missing(f"{base}.{key}", "a non-zero 3-vector")
        axis = chk.vector(entry["axis"], f"{base}.axis", unit=True)
        palmar = chk.vector(entry["palmar"], f"{base}.palmar", unit=True)
        if abs(float(axis @ palmar)) > _MAX_AXIS_PALMAR_COS:
            raise chk.fail(f"{base}.palmar", "a direction perpendicular to axis (within 5 deg)",
                           entry["palmar"])
        palmar = palmar - (axis @ palmar) * axis
        palmar = palmar / np.linalg.norm(palmar)
        palmar.setflags(write=False)
        r_pad = chk.number(entry.get("pad_half_angle_deg", pad), f"{base}.pad_half_angle_deg",
                           0, 180, True, True)
        r_dor = chk.number(entry.get("dorsal_half_angle_deg", dorsal), f"{base}.dorsal_half_angle_deg",
                           0, 180, True, True)
        if r_pad + r_dor > 180.0:
            raise chk.fail(f"{base}.dorsal_half_angle_deg",
                           f"at most 180 - pad half-angle = {180 - r_pad:g}", r_dor)
        is_distal = part.endswith(".distal")
        length = tip_from = None
        if "length" in entry:
            length = chk.number(entry["length"], f"{base}.length", 0.0, lo_open=True)
        if is_distal:
            if length is None:
                chk.missing(f"{base}.length", "the distal segment length [m] (needed for its tip)")
            if "tip_from" not in entry:
                chk.missing(f"{base}.tip_from", "a fraction of length in [0, 1] where the tip starts")
            tip_from = chk.number(entry["tip_from"], f"{base}.tip_from", 0.0, 1.0)
        elif "tip_from" in entry:
            raise chk.fail(f"{base}.tip_from", "no tip_from (only distal segments have a tip)",
                           entry["tip_from"])
        regions.append(Region(link, part, center, axis, palmar, r_pad, r_dor, length, tip_from))
    return regions


# The palm region's axis and palmar may be this far [deg] from the root frame's +x and +z (the
# frame convention of models/README). The shipped hands (default_hand, shadow_hand and every
# `handsim hand make` hand) have them exactly on +x and +z; 30 deg allows a palm region drawn
# along a slanted palm, and catches a root frame turned by a quarter turn (an Allegro-style
# z-distal base frame is 90 deg off).
_MAX_PALM_FRAME_DEG = 30.0


def _palm_branch_link(urdf: _UrdfSummary, palm: str, fingers: Mapping[str, Finger]) -> str:
    """The palm proper: the deepest link every finger's chain passes through (``palm`` itself
    when the fingers branch at the root, or with one finger); below a forearm or wrist root
    used as ``palm_link``, the palm the fingers share."""
    chains = [[palm] + [j.child for j in urdf.path_joints(next(iter(f.segments.values())))]
              for f in fingers.values()]
    if len(chains) < 2:
        return palm
    branch = palm
    for links in zip(*chains):
        if len(set(links)) != 1:
            break
        branch = links[0]
    return branch


def _check_palm(chk: _Checker, urdf: _UrdfSummary, urdf_path: Path, palm: str,
                fingers: Mapping[str, Finger], regions: Sequence[Region]) -> None:
    """The palm has a region (else its contacts are ``other.<link>`` and no palm grasp can
    pass) and that region's axis/palmar lie along the root frame's +x/+z (models/README)."""
    root = urdf.xml  # parsed once, by _read_urdf
    with_collision = {el.get("name", "") for el in root.findall("link") if el.find("collision") is not None}
    by_link = {r.link: r for r in regions}
    branch = _palm_branch_link(urdf, palm, fingers)
    if branch in with_collision and branch not in by_link:
        where = "palm_link" if branch == palm else f"the palm (the link below palm_link {palm!r} where the fingers branch)"
        raise chk.fail(f"regions.{branch}", f"a region for {where}, part 'palm': its contacts would be labelled "
                       f"'other.{branch}', so no grasp needing palm contact could pass", "<missing>")
    link = branch if branch in by_link else palm if palm in by_link else None
    if link is None:
        return  # a palm without geometry or region: nothing touches it and nothing to check
    # The region's directions in the root frame: through the joint origins from the root (a
    # movable joint at 0).
    origins = {}
    for el in root.findall("joint"):
        org = el.find("origin")
        name = el.get("name", "")
        rpy = _floats(None if org is None else org.get("rpy"), 3, (0.0, 0.0, 0.0),
                      f"{urdf_path}: joint {name!r} <origin rpy>")
        origins[name] = rpy_to_matrix(rpy)
    rot = np.eye(3)
    for j in urdf.path_joints(link):
        rot = rot @ origins[j.name]
    region = by_link[link]
    axis, palmar = rot @ region.axis, rot @ region.palmar
    off_x = math.degrees(math.acos(float(np.clip(axis[0], -1.0, 1.0))))
    off_z = math.degrees(math.acos(float(np.clip(palmar[2], -1.0, 1.0))))
    if off_x <= _MAX_PALM_FRAME_DEG and off_z <= _MAX_PALM_FRAME_DEG:
        return
    # The convention frame's axes in the root frame are (axis, palmar x axis, palmar); a new
    # root above the old one, on a fixed joint with this rpy, puts the old root in convention.
    conv = np.column_stack([axis, np.cross(palmar, axis), palmar])
    # Entries of float noise snapped to 0, so that the suggestion reads pi, not -pi, for a half turn.
    rpy = matrix_to_rpy(np.where(np.abs(conv.T) < 1e-12, 0.0, conv.T))
    raise chk.fail(f"regions.{link}", f"axis along +x and palmar along +z of the URDF root frame {palm!r} "
                   f"within {_MAX_PALM_FRAME_DEG:g} deg (models/README 'Frame conventions': the root frame "
                   "sits at the wrist, x distal, z palmar); the frame needs turning: add a root link above "
                   f"{palm!r} on a fixed joint with <origin rpy=\"{rpy[0]:.4f} {rpy[1]:.4f} {rpy[2]:.4f}\"/>, "
                   "make it palm_link and re-express grasps.json in it",
                   f"<axis {np.round(axis, 3).tolist()} ({off_x:.0f} deg off +x), palmar "
                   f"{np.round(palmar, 3).tolist()} ({off_z:.0f} deg off +z) in the root frame>")


def _load_rest_pose(raw: Mapping[str, Any], chk: _Checker, urdf: _UrdfSummary,
                    joints_by_name: Mapping[str, _UrdfJoint],
                    mimics: Mapping[str, MimicJoint]) -> dict[str, float]:
    if "rest_pose" not in raw:
        return {}
    entry = chk.get(raw, "rest_pose", "rest_pose", dict, "an object mapping joint names to angles [rad]")
    rest = {}
    for jname, value in entry.items():
        field = f"rest_pose.{jname}"
        if jname not in urdf.movable:
            raise chk.unknown(field, jname, urdf.movable, "movable joint")
        if jname in mimics:  # its rest angle follows its master's: one value, not two to agree
            raise chk.fail(field, "an independent joint (a mimic joint rests where its master puts it)",
                           _mimic_got(jname, mimics[jname]))
        lim = joints_by_name[jname].limit
        assert lim is not None
        rest[jname] = chk.number(value, field, lim.lower, lim.upper)
    return rest
