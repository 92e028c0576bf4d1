"""Convert a MuJoCo MJCF hand into a handsim hand (``hand.urdf`` + ``hand.json``).

A hand folder may hold a **mapping file** (:data:`MAPPING_FILE`, ``mjcf.json``) instead of a
URDF: it names the MJCF file, the body that is the palm, which bodies are which finger's
phalanges, the way each phalanx's pad faces, and the joints to freeze (the schema is in
``models/shadow_hand/README.md``). :func:`converted_hand_dir` converts it on first use into a
cache folder keyed by a hash of the mapping, the MJCF files and this converter's version, so
the repository never holds converted files; :func:`handsim.data.hand_metadata_path` calls it,
so ``--hand <folder>`` works everywhere.

**How the conversion works.** The MJCF is compiled by MuJoCo itself
(``mujoco.MjModel.from_xml_path``), which resolves includes, defaults and classes,
``fromto``/``euler``/``axisangle`` and mesh re-centring; the compiled arrays are then written as
URDF:

* The mapping's ``root_body`` is the palm and the fixed base: its own joints and every body
  above it (arm, forearm, wrist) are dropped, i.e. the wrist is fixed. The root link ``palm``
  gets the handsim palm frame (``models/README.md``: x distal, z palmar) through the mapping's
  ``palm_frame``; the root body's geometry is re-expressed in it.
* Every other body below the root becomes a link. A hinge becomes a ``revolute`` joint (a
  ``continuous`` one when unlimited), a slide a ``prismatic`` one; the URDF joint (and link)
  frame sits at the MJCF joint's anchor ``pos`` with the body's orientation, so link frame =
  body frame translated by the anchor. A body with several joints gets one massless
  intermediate link per extra joint (``<body>__<joint>``). Ball and free joints below the root
  are rejected and cannot be frozen: choose a root below them, or replace a ball joint in the
  MJCF by hinges. Hinge and slide joints named in ``freeze`` become part of a fixed transform
  at the given value.
* The mapping's joint values (``freeze``, ``rest_pose``, ``thumb_abduction.abducted_min`` or
  ``abducted_max``) must
  lie inside the joint's MJCF range (when limited), ``efforts`` must be positive and name joints
  below the root, and ``thumb_abduction.joint`` must be a thumb joint: each mistake is reported
  against the mapping file and its field, not against the converted files.
* Limits are the MJCF ``range``. The effort limit [N m] of a joint is the largest force of the
  actuators driving it (``|gear| * forcerange``, or ``kp * ctrlrange`` width for a
  position actuator without a force range); a joint without an actuator that a **coupling**
  ties to an actuated joint takes that joint's effort; ``efforts`` in the mapping overrides.
  Friction loss goes to ``<dynamics friction>``. **Damping is written as 0**: MuJoCo integrates
  joint damping implicitly, while PyBullet applies it explicitly. Measured (converter 4, before
  the armature below): the Shadow hand's 0.1 N m s/rad locked a flexing finger at -49 rad/s
  against its limit in PyBullet; with 0 it reaches its target. The position motors' velocity
  gain damps the joints instead.
* **Armature** (a joint's reflected rotor inertia, which MuJoCo adds to the joint's inertia;
  on the Shadow hand 0.001 kg m^2, ~100x a phalanx's own) has no URDF field, so a hinge joint's
  ``armature`` J is added to its child link's inertia: J about the joint axis and J/2 about the
  two perpendicular axes (a thin disk's tensor, the least a body can have: an inertia about one
  axis alone breaks the triangle inequality and PyBullet would zero it), written in the new
  principal axes. This is what the default hand does (``models/default_hand/README.md``,
  "Joint armature (v6)"): without it the light links leave PyBullet's solve unconverged and
  the verdicts depend on the parity of the solver's iteration count. A slide joint's armature
  (a mass) is not carried over.
* **Couplings.** A fixed tendon of two joints whose length range is narrow (slack below
  :data:`COUPLING_MAX_SLACK` of either joint's travel), or a joint ``equality``, is a coupling:
  the Shadow hand's distal joint J0 has no actuator and follows the middle joint J1 through one
  (``T_FFJ1c``: 0.00705 q0 - 0.00805 q1 in [-1, 1] mm, q0 = 1.142 q1 within 0.14 rad), so
  MuJoCo's hand, like the real one, has 18 actuated finger joints, not 22. With the mapping's
  ``couplings`` = ``"mimic"`` (the default) the follower is written as a URDF
  ``<mimic joint="leader" multiplier="ratio" offset="offset"/>`` (the offset is a joint
  equality's constant term, 0 for a tendon), so plans, actions and observations cover only the
  independent joints and a plan cannot set J0 and J1 apart, which neither MuJoCo's model nor
  the real hand can (handsim runs ``<mimic>`` joints end to end: each follows its master's
  target with its own effort-capped motor, :class:`~handsim.sim.HandBody`). With
  ``"independent"`` the two are written as independent joints (the tendon's slack becomes a free
  DoF, at the price of DoF the MJCF does not actuate). The follower of a tendon is its joint
  without an actuator (the first one when both or neither have one); a joint equality's follower
  is its ``joint1``. A follower whose leader is frozen or not converted (above ``root_body``),
  one already following another joint, or one that would close a cycle stays independent, with
  a note in ``hand.json`` ``description``; a nonlinear equality keeps only its linear part (a
  note says so). The coupled joints keep their MJCF limits (a mimic joint's target is clipped to
  them) and the follower keeps the leader's effort (its motor needs a cap); ``description``
  records each ratio and whether it was written as a mimic or as independent joints. The mapping's
  ``rest_pose`` and ``thumb_abduction.joint`` may not name a mimic follower (the error names its
  leader).
* Geometry: a geom is collision geometry when MuJoCo would collide it (``contype`` or
  ``conaffinity`` non-zero), else visual only. Spheres, capsules, cylinders and boxes are
  written as URDF primitives; meshes (as MuJoCo compiled them, re-centred and scaled) and
  ellipsoids (as a UV-sphere mesh) are written as OBJ files next to the URDF (collision meshes:
  PyBullet, like MuJoCo, collides their convex hull). Planes and height fields are rejected.
* **Self-collision as MuJoCo has it.** MuJoCo collides two hand geoms only when their
  ``contype``/``conaffinity`` bits match (or a ``<pair>`` names them), never parent and child
  bodies, never excluded pairs; PyBullet's ``URDF_USE_SELF_COLLISION`` would collide every
  non-adjacent pair (the Shadow hand's thumb base sits inside its palm box, harmless in
  MuJoCo, and PyBullet would throw the thumb out through its joint limits). So each link with
  collision geometry gets its own collision-filter bit (``<collision group mask>``, which
  PyBullet honours for self-collision too) and a mask of the Bullet default filters (so every
  object still collides with it) plus the bits of the links MuJoCo lets it touch. With more
  than :data:`_MAX_FILTER_LINKS` such links, the hand gets no self-collision at all (stated in
  ``hand.json`` ``description``).
* Masses and centres of mass are MuJoCo's compiled ones; inertias are MuJoCo's compiled
  ones plus the joints' armature (above).
* ``hand.json``: fingers (segments, movable joints palm outwards, a ``<finger>_tip`` link at
  the mapping's ``tip`` site or point), ``thumb_abduction``, ``rest_pose`` and regions: per
  segment the mapping's ``pad`` direction, the axis from the segment's joint to the next
  segment's joint (to the tip for the distal one) unless the mapping gives ``axis``, the
  length along it (the distal one to the end of its collision geometry) and ``tip_from``; per
  palm body its pad direction and the palm's distal direction, centred at the volume-weighted
  centre of its collision geometry.

This module never imports PyBullet; it imports ``mujoco`` only when it converts (the optional
``handsim[mjcf]`` extra).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import importlib.util
import json
import math
import os
import re
import shutil
import tempfile
import types
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from handsim._io import DuplicateKeyError, loads_unique_keys, not_utf8
from handsim.data import MJCF_MAPPING_FILE, cache_folder_error, cache_root
from handsim.errors import MetadataError, MissingDependencyError
from handsim.hand import FINGER_NAMES, SEGMENT_NAMES, _Checker
from handsim.kinematics.urdf import armature_inertia, matrix_to_rpy
from handsim.transforms import pose_to_matrix

__all__ = [
    "CONVERTER_VERSION",
    "COUPLING_MAX_SLACK",
    "COUPLING_MODES",
    "MAPPING_FILE",
    "MAPPING_SCHEMA_VERSION",
    "MjcfMapping",
    "cache_root",
    "convert_mjcf",
    "converted_hand_dir",
    "load_mapping",
]

#: The mapping file's name inside a hand folder.
MAPPING_FILE = MJCF_MAPPING_FILE
MAPPING_SCHEMA_VERSION = 1
#: Bumped whenever the converter's output or its checks change, so cached conversions are redone
#: (3: mapping values checked against the MJCF joint ranges; 4: couplings written as URDF
#: ``<mimic>`` joints by default).
CONVERTER_VERSION = 5
#: A two-joint fixed tendon is a coupling when its length range is narrower than this fraction
#: of either joint's travel times its coefficient (Shadow's J1/J0 tendon: 0.18; its limit
#: tendons are wider than the whole travel).
COUPLING_MAX_SLACK = 0.25
#: The mapping's ``couplings`` values: how a coupled follower joint is written (module doc).
COUPLING_MODES = ("mimic", "independent")
_DEFAULT_COUPLINGS = "mimic"
_INSTALL_HINT = "pip install handsim[mjcf]"
_TOP_LEVEL = ("schema", "name", "mjcf", "root_body", "palm", "fingers")
_OPTIONAL = ("description", "strip_prefix", "palm_frame", "thumb_abduction", "freeze", "efforts",
             "couplings", "rest_pose", "velocity_limit", "pad_half_angle_deg", "dorsal_half_angle_deg")
_DEFAULT_HALF_ANGLE_DEG = 55.0
_DEFAULT_TIP_FROM = 0.7
_DEFAULT_VELOCITY = 4.0  # [rad/s] MJCF has no velocity limit; the default hand's value
_INTERMEDIATE_MASS = (1e-4, 1e-9)  # [kg], [kg m^2]: a link between two joints of one body
_NAME_RE = re.compile(r"[^A-Za-z0-9_.-]")
# Bullet's predefined filter groups (default, static, kinematic, debris, sensor, character) are
# bits 0-5; every object handsim creates uses them. Hand links take bits 6-30 (bit 31 would be
# a negative int32 in the URDF attribute).
_BULLET_FILTERS = 0b111111
_FIRST_LINK_BIT = 6
_MAX_FILTER_LINKS = 31 - _FIRST_LINK_BIT
_PALM_LINK = "palm"
# What a user can do about a ball or free joint below the root (neither converts, nor freezes).
_BALL_ADVICE = ("choose a root_body below the joint, or replace it in the MJCF by hinge joints (up to three, "
                "which convert, and can be frozen)")


# ---------------------------------------------------------------------------- the mapping
@dataclasses.dataclass(frozen=True)
class SegmentMap:
    """One phalanx: its MJCF body, pad direction and optional axis, in the body frame."""

    body: str
    pad: NDArray[np.float64]
    axis: NDArray[np.float64] | None


@dataclasses.dataclass(frozen=True)
class PalmMap:
    """A body carrying palm tissue: pad direction (body frame) and optional half-angles [deg]."""

    body: str
    pad: NDArray[np.float64]
    axis: NDArray[np.float64] | None
    pad_half_angle_deg: float | None
    dorsal_half_angle_deg: float | None


@dataclasses.dataclass(frozen=True)
class FingerMap:
    """One finger: segment name -> :class:`SegmentMap`, and its tip (a site or a point)."""

    name: str
    segments: Mapping[str, SegmentMap]
    tip_site: str | None
    tip_pos: NDArray[np.float64] | None
    tip_from: float


@dataclasses.dataclass(frozen=True)
class MjcfMapping:
    """A validated mapping file (names are still MJCF names; checked against the model on
    conversion).

    Attributes:
        path: The mapping file.
        name: The hand's name.
        mjcf_path: The resolved MJCF file.
        root_body: The palm body (fixed base).
        strip_prefix: Removed from MJCF names to form URDF names.
        palm_origin: (3,) palm frame origin in the root body frame [m].
        palm_distal, palm_palmar: (3,) unit palm x and z in the root body frame.
        palm: Palm bodies.
        fingers: Finger name -> :class:`FingerMap`, in anatomical order.
        thumb_abduction: ``(MJCF joint, "abducted_min" or "abducted_max", angle [rad])`` or
            None (``abducted_max`` for a thumb whose opposition turns its joint negative).
        freeze: MJCF joint -> fixed value [rad or m].
        efforts: MJCF joint -> effort limit override [N m or N].
        couplings: How coupled joints are written: ``"mimic"`` (URDF ``<mimic>``) or
            ``"independent"`` (:data:`COUPLING_MODES`).
        rest_pose: MJCF joint -> rest angle [rad].
        velocity_limit: URDF velocity limit of every joint [rad/s or m/s].
        pad_half_angle_deg, dorsal_half_angle_deg: Region half-angles [deg].
        description: Free text.
    """

    path: Path
    name: str
    mjcf_path: Path
    root_body: str
    strip_prefix: str
    palm_origin: NDArray[np.float64]
    palm_distal: NDArray[np.float64]
    palm_palmar: NDArray[np.float64]
    palm: Mapping[str, PalmMap]
    fingers: Mapping[str, FingerMap]
    thumb_abduction: tuple[str, str, float] | None
    freeze: Mapping[str, float]
    efforts: Mapping[str, float]
    couplings: str
    rest_pose: Mapping[str, float]
    velocity_limit: float
    pad_half_angle_deg: float
    dorsal_half_angle_deg: float
    description: str


def _resolve_mjcf(value: Any, chk: _Checker, folder: Path) -> Path:
    """The MJCF file: a path relative to the mapping's folder, or ``{package, path}`` inside an
    installed Python package (found without importing it)."""
    if isinstance(value, str):
        path = (folder / value).resolve()
        if not path.is_file():
            raise chk.fail("mjcf", f"an existing MJCF file (looked for {path})", value)
        return path
    if not isinstance(value, dict) or set(value) != {"package", "path"}:
        raise chk.fail("mjcf", "a file path (relative to the mapping file) or {\"package\": ..., \"path\": ...}",
                       value)
    package = chk.get(value, "package", "mjcf.package", str, "an installed Python package name")
    rel = chk.get(value, "path", "mjcf.path", str, "a file path inside the package")
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            f"{chk.path}: field mjcf.package: the package {package!r} that holds the MJCF is not "
            f"installed; {_INSTALL_HINT} (or install {package})")
    root = Path(next(iter(spec.submodule_search_locations)))
    path = (root / rel).resolve()
    if not path.is_file():
        raise chk.fail("mjcf.path", f"an existing file inside {package} (looked for {path})", rel)
    return path


def _opt_vector(chk: _Checker, entry: Mapping[str, Any], key: str, field: str) -> NDArray[np.float64] | None:
    return chk.vector(entry[key], f"{field}.{key}", unit=True) if key in entry else None


def _keys(chk: _Checker, entry: Any, field: str, allowed: tuple[str, ...], what: str) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise chk.fail(field, what, entry)
    top = field == "(top level)"
    for key in entry:
        if key not in allowed:
            raise chk.unknown(key if top else f"{field}.{key}", key, allowed, "top-level field" if top else "field")
    return entry


def _number_map(chk: _Checker, raw: Mapping[str, Any], key: str, lo: float = -math.inf,
                lo_open: bool = False) -> dict[str, float]:
    entry = raw.get(key, {})
    if not isinstance(entry, dict):
        raise chk.fail(key, "an object mapping MJCF joint names to numbers", entry)
    return {str(k): chk.number(v, f"{key}.{k}", lo, lo_open=lo_open) for k, v in entry.items()}


def load_mapping(path: str | os.PathLike[str]) -> MjcfMapping:
    """Read and validate a mapping file (structure only; names are checked on conversion).

    Args:
        path: The mapping file, or a hand folder holding :data:`MAPPING_FILE`.

    Returns:
        The validated mapping.

    Raises:
        MetadataError: Not UTF-8 text, malformed JSON, a missing or unknown field, a bad value, or a missing MJCF
            file; the message names the file and the field.
        MissingDependencyError: The package named in ``mjcf.package`` is not installed.
    """
    path = Path(path)
    if path.is_dir():
        path = path / MAPPING_FILE
    chk = _Checker(path)
    try:
        raw = loads_unique_keys(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MetadataError(f"{path}: no such mapping file") from None
    except json.JSONDecodeError as exc:
        raise MetadataError(f"{path}: not valid JSON ({exc})") from None
    except UnicodeDecodeError as exc:
        raise MetadataError(not_utf8(path, exc)) from None
    except DuplicateKeyError as exc:
        raise MetadataError(f"{path}: {exc}") from None
    _keys(chk, raw, "(top level)", _TOP_LEVEL + _OPTIONAL, "a JSON object")
    chk.required_and_schema(raw, _TOP_LEVEL, MAPPING_SCHEMA_VERSION)
    name = chk.get(raw, "name", "name", str, "the hand's name (string)")
    mjcf_path = _resolve_mjcf(raw["mjcf"], chk, path.parent)
    root_body = chk.get(raw, "root_body", "root_body", str, "the MJCF body of the palm")
    prefix = raw.get("strip_prefix", "")
    if not isinstance(prefix, str):
        raise chk.fail("strip_prefix", "a string", prefix)

    frame = _keys(chk, raw.get("palm_frame", {}), "palm_frame", ("origin", "distal", "palmar"),
                  "an object {origin, distal, palmar}")
    origin = chk.vector(frame.get("origin", [0.0, 0.0, 0.0]), "palm_frame.origin", unit=False)
    distal = chk.vector(frame.get("distal", [1.0, 0.0, 0.0]), "palm_frame.distal", unit=True)
    palmar = chk.vector(frame.get("palmar", [0.0, 0.0, 1.0]), "palm_frame.palmar", unit=True)
    if abs(float(distal @ palmar)) > math.sin(math.radians(5.0)):
        raise chk.fail("palm_frame.palmar", "a direction perpendicular to palm_frame.distal (within 5 deg)",
                       frame.get("palmar"))

    palm_raw = chk.get(raw, "palm", "palm", dict, "an object mapping MJCF bodies to {pad, ...}")
    palm: dict[str, PalmMap] = {}
    for body, entry in palm_raw.items():
        field = f"palm.{body}"
        entry = _keys(chk, entry, field, ("pad", "axis", "pad_half_angle_deg", "dorsal_half_angle_deg"),
                      "an object {pad, axis, pad_half_angle_deg, dorsal_half_angle_deg}")
        if "pad" not in entry:
            chk.missing(f"{field}.pad", "the palmar direction in the body frame")
        halves = [chk.number(entry[k], f"{field}.{k}", 0.0, 180.0, True, True) if k in entry else None
                  for k in ("pad_half_angle_deg", "dorsal_half_angle_deg")]
        palm[body] = PalmMap(body, chk.vector(entry["pad"], f"{field}.pad", unit=True),
                             _opt_vector(chk, entry, "axis", field), *halves)
    if root_body not in palm:
        raise chk.fail("palm", f"an entry for root_body {root_body!r} (the palm's own pad)", sorted(palm))

    fingers_raw = chk.get(raw, "fingers", "fingers", dict, "an object mapping finger names to fingers")
    fingers: dict[str, FingerMap] = {}
    for fname in fingers_raw:
        if fname not in FINGER_NAMES:
            raise chk.unknown(f"fingers.{fname}", fname, FINGER_NAMES, "finger")
    for fname in [f for f in FINGER_NAMES if f in fingers_raw]:
        base = f"fingers.{fname}"
        entry = _keys(chk, fingers_raw[fname], base, ("segments", "tip", "tip_from"),
                      "an object {segments, tip, tip_from}")
        segs_raw = chk.get(entry, "segments", f"{base}.segments", dict, "an object segment -> {body, pad}")
        valid = SEGMENT_NAMES["thumb" if fname == "thumb" else "finger"]
        segments: dict[str, SegmentMap] = {}
        for sname in segs_raw:
            if sname not in valid:
                raise chk.unknown(f"{base}.segments.{sname}", sname, valid, f"{fname} segment")
        for sname in [s for s in valid if s in segs_raw]:
            sfield = f"{base}.segments.{sname}"
            sentry = _keys(chk, segs_raw[sname], sfield, ("body", "pad", "axis"), "an object {body, pad, axis}")
            body = chk.get(sentry, "body", f"{sfield}.body", str, "an MJCF body name")
            if "pad" not in sentry:
                chk.missing(f"{sfield}.pad", "the pad direction in the body frame")
            segments[sname] = SegmentMap(body, chk.vector(sentry["pad"], f"{sfield}.pad", unit=True),
                                         _opt_vector(chk, sentry, "axis", sfield))
        if "distal" not in segments:
            chk.missing(f"{base}.segments.distal", "the distal phalanx {body, pad}")
        tip = _keys(chk, entry.get("tip"), f"{base}.tip", ("site", "pos"),
                    "an object {site: MJCF site} or {pos: [x, y, z] in the distal body frame}")
        if len(tip) != 1:
            raise chk.fail(f"{base}.tip", "exactly one of site or pos", tip)
        site = chk.get(tip, "site", f"{base}.tip.site", str, "an MJCF site name") if "site" in tip else None
        pos = chk.vector(tip["pos"], f"{base}.tip.pos", unit=False) if "pos" in tip else None
        tip_from = chk.number(entry.get("tip_from", _DEFAULT_TIP_FROM), f"{base}.tip_from", 0.0, 1.0)
        fingers[fname] = FingerMap(fname, types.MappingProxyType(segments), site, pos, tip_from)

    thumb_abd = None
    if "thumb_abduction" in raw:
        entry = _keys(chk, raw["thumb_abduction"], "thumb_abduction", ("joint", "abducted_min", "abducted_max"),
                      "an object {joint, abducted_min or abducted_max}")
        joint = chk.get(entry, "joint", "thumb_abduction.joint", str, "an MJCF thumb joint name")
        sides = [k for k in ("abducted_min", "abducted_max") if k in entry]
        if len(sides) != 1:
            raise chk.fail("thumb_abduction", "exactly one of abducted_min or abducted_max", entry)
        thumb_abd = (joint, sides[0], chk.number(entry[sides[0]], f"thumb_abduction.{sides[0]}"))
    elif "thumb" in fingers:
        chk.missing("thumb_abduction", "an object {joint, abducted_min or abducted_max} (the hand has a thumb)")
    couplings = raw.get("couplings", _DEFAULT_COUPLINGS)
    if not isinstance(couplings, str):
        raise chk.fail("couplings", f"one of {', '.join(map(repr, COUPLING_MODES))} (default "
                       f"{_DEFAULT_COUPLINGS!r})", couplings)
    if couplings not in COUPLING_MODES:
        raise chk.unknown("couplings", couplings, COUPLING_MODES, "couplings mode")

    return MjcfMapping(
        path=path.resolve(), name=name, mjcf_path=mjcf_path, root_body=root_body, strip_prefix=prefix,
        palm_origin=origin, palm_distal=distal, palm_palmar=palmar,
        palm=types.MappingProxyType(palm), fingers=types.MappingProxyType(fingers),
        thumb_abduction=thumb_abd,
        freeze=types.MappingProxyType(_number_map(chk, raw, "freeze")),
        efforts=types.MappingProxyType(_number_map(chk, raw, "efforts", 0.0, lo_open=True)),
        couplings=couplings,
        rest_pose=types.MappingProxyType(_number_map(chk, raw, "rest_pose")),
        velocity_limit=chk.number(raw.get("velocity_limit", _DEFAULT_VELOCITY), "velocity_limit", 0.0, lo_open=True),
        pad_half_angle_deg=chk.number(raw.get("pad_half_angle_deg", _DEFAULT_HALF_ANGLE_DEG),
                                      "pad_half_angle_deg", 0.0, 180.0, True, True),
        dorsal_half_angle_deg=chk.number(raw.get("dorsal_half_angle_deg", _DEFAULT_HALF_ANGLE_DEG),
                                         "dorsal_half_angle_deg", 0.0, 180.0, True, True),
        description=str(raw.get("description", "")),
    )


# ---------------------------------------------------------------------------- MuJoCo
def _import_mujoco() -> Any:
    try:
        import mujoco
    except ImportError as exc:
        raise MissingDependencyError(f"MJCF import needs the mujoco package ({exc}); {_INSTALL_HINT}") from None
    return mujoco


def _compile(mapping: MjcfMapping) -> Any:
    mujoco = _import_mujoco()
    try:
        return mujoco.MjModel.from_xml_path(str(mapping.mjcf_path))
    except ValueError as exc:  # MuJoCo's XML / compile errors
        raise MetadataError(f"{mapping.path}: field mjcf: MuJoCo could not load {mapping.mjcf_path} ({exc})") from None


def _translation(p: NDArray[np.float64]) -> NDArray[np.float64]:
    t = np.eye(4)
    t[:3, 3] = p
    return t


def _axis_motion(kind: str, axis: NDArray[np.float64], value: float) -> NDArray[np.float64]:
    """Homogeneous transform of a hinge (rotation) or slide (translation) at ``value``."""
    if kind == "prismatic":
        return _translation(axis * value)
    half = 0.5 * value
    return pose_to_matrix(np.zeros(3), np.concatenate([[math.cos(half)], math.sin(half) * axis]))


def _origin_xml(t: NDArray[np.float64]) -> str:
    x, y, z = (repr(float(v)) for v in t[:3, 3])
    r, p, yaw = (repr(v) for v in matrix_to_rpy(t[:3, :3]))
    return f'<origin xyz="{x} {y} {z}" rpy="{r} {p} {yaw}"/>'


@dataclasses.dataclass
class _Geom:
    kind: str  # sphere, capsule, cylinder, box, mesh
    pose: NDArray[np.float64]  # (4, 4) in the link frame
    size: tuple[float, ...]  # radius; radius, length; radius, length; x, y, z (full); (mesh file)
    mesh: str = ""
    rgba: tuple[float, ...] = (0.8, 0.8, 0.8, 1.0)

    def volume(self) -> float:
        if self.kind == "sphere":
            return 4.0 / 3.0 * math.pi * self.size[0] ** 3
        if self.kind == "capsule":
            r, h = self.size
            return math.pi * r * r * h + 4.0 / 3.0 * math.pi * r ** 3
        if self.kind == "cylinder":
            return math.pi * self.size[0] ** 2 * self.size[1]
        if self.kind == "box":
            return float(np.prod(self.size))
        return 0.0

    def support(self, direction: NDArray[np.float64], vertices: NDArray[np.float64] | None) -> float:
        """Largest ``p . direction`` over the shape's points [m] (link frame)."""
        rot, centre = self.pose[:3, :3], self.pose[:3, 3]
        local = rot.T @ direction  # the direction in the shape's own frame
        reach = 0.0
        if self.kind == "sphere":
            reach = self.size[0]
        elif self.kind in ("capsule", "cylinder"):
            r, h = self.size
            side = math.hypot(local[0], local[1])
            reach = 0.5 * h * abs(local[2]) + (r if self.kind == "capsule" else r * side)
        elif self.kind == "box":
            reach = 0.5 * float(np.abs(local) @ np.asarray(self.size))
        elif vertices is not None:
            reach = float(np.max(vertices @ local))
        return float(centre @ direction) + reach


@dataclasses.dataclass
class _Link:
    name: str
    body: int  # MuJoCo body id (-1 for none)
    mass: float = 0.0
    inertial: NDArray[np.float64] = dataclasses.field(default_factory=lambda: np.eye(4))
    inertia: tuple[float, float, float] = (0.0, 0.0, 0.0)
    collision: list[_Geom] = dataclasses.field(default_factory=list)
    visual: list[_Geom] = dataclasses.field(default_factory=list)


def _add_armature(link: _Link, axis: NDArray[np.float64], armature: float) -> None:
    """Add a thin disk's inertia, ``armature`` about ``axis`` (in the link frame) and half of it
    about the perpendicular axes, to ``link``'s inertia, rewritten in its new principal axes."""
    rot = link.inertial[:3, :3]
    tensor = rot @ np.diag(link.inertia) @ rot.T + armature_inertia(armature, axis)
    moments, axes = np.linalg.eigh(tensor)
    if np.linalg.det(axes) < 0.0:
        axes[:, 0] = -axes[:, 0]
    link.inertial = link.inertial.copy()
    link.inertial[:3, :3] = axes
    link.inertia = tuple(float(v) for v in moments)


@dataclasses.dataclass
class _Joint:
    name: str
    type: str  # revolute, continuous, prismatic, fixed
    parent: str
    child: str
    origin: NDArray[np.float64]
    axis: NDArray[np.float64] = dataclasses.field(default_factory=lambda: np.array([1.0, 0.0, 0.0]))
    lower: float = 0.0
    upper: float = 0.0
    effort: float = 0.0
    damping: float = 0.0
    friction: float = 0.0
    mjcf_name: str = ""


class _Converter:
    """Builds the URDF links/joints and the hand.json of one mapping + compiled model."""

    def __init__(self, mapping: MjcfMapping, model: Any, out_dir: Path) -> None:
        import mujoco  # already imported by _compile

        self.mj = mujoco
        self.map = mapping
        self.m = model
        self.out = out_dir
        self.chk = _Checker(mapping.path)
        self.links: dict[str, _Link] = {}
        self.joints: list[_Joint] = []
        self.body_link: dict[int, str] = {}  # MuJoCo body id -> URDF link carrying it
        self.link_in_body: dict[int, NDArray[np.float64]] = {}  # A_b: link frame in body frame
        self.mesh_files: dict[int, str] = {}
        self.names_used: dict[str, str] = {}  # URDF name -> MJCF name
        self.notes: list[str] = []  # approximations stated in hand.json's description
        self.body_names = [model.body(i).name for i in range(model.nbody)]
        self.joint_names = [model.joint(i).name for i in range(model.njnt)]
        self.site_names = [model.site(i).name for i in range(model.nsite)]

    # -- names
    def urdf_name(self, mjcf_name: str, what: str) -> str:
        name = mjcf_name.removeprefix(self.map.strip_prefix)
        name = _NAME_RE.sub("_", name) or f"unnamed_{what}"
        if name in self.names_used and self.names_used[name] != mjcf_name:
            raise MetadataError(f"{self.map.path}: field strip_prefix: MJCF names {self.names_used[name]!r} and "
                                f"{mjcf_name!r} both become the URDF name {name!r}; expected distinct names")
        self.names_used[name] = mjcf_name
        return name

    def body_id(self, name: str, field: str, among: list[int] | None = None) -> int:
        valid = [self.body_names[i] for i in among] if among is not None else self.body_names
        if name not in valid:
            where = "MJCF body (below root_body)" if among is not None else "MJCF body"
            raise self.chk.unknown(field, name, valid, where)
        return self.body_names.index(name)

    def joint_id(self, name: str, field: str, valid: list[str]) -> int:
        if name not in valid:
            raise self.chk.unknown(field, name, valid, "MJCF joint below root_body")
        return self.joint_names.index(name)

    # -- tree
    def subtree(self, root: int) -> list[int]:
        inside = {root}
        out = []
        for b in range(root + 1, self.m.nbody):  # MuJoCo numbers bodies depth-first
            if int(self.m.body_parentid[b]) in inside:
                inside.add(b)
                out.append(b)
        return out

    def build(self) -> None:
        m, mp = self.m, self.map
        root = self.body_id(mp.root_body, "root_body")
        self.bodies = self.subtree(root)
        sub_joints = [self.joint_names[j] for b in self.bodies
                      for j in range(m.body_jntadr[b], m.body_jntadr[b] + m.body_jntnum[b])]
        for jname, value in mp.freeze.items():
            self.check_value(self.joint_id(jname, f"freeze.{jname}", sub_joints), f"freeze.{jname}", value, frozen=True)
        for jname in mp.efforts:
            self.joint_id(jname, f"efforts.{jname}", sub_joints)
        x, z = mp.palm_distal, mp.palm_palmar - (mp.palm_palmar @ mp.palm_distal) * mp.palm_distal
        z = z / np.linalg.norm(z)
        a_root = np.eye(4)
        a_root[:3, :3] = np.stack([x, np.cross(z, x), z], axis=1)
        a_root[:3, 3] = mp.palm_origin
        self.root_and_bodies = [root, *self.bodies]
        self.names_used[_PALM_LINK] = mp.root_body  # no other body may become "palm"
        self.add_body_link(root, _PALM_LINK, a_root)
        efforts = self.efforts()
        for b in self.bodies:
            self.add_body(b, efforts)
        self.mimic = self.mimics()  # URDF follower -> (URDF leader, multiplier, offset)
        self.filters = self.collision_filters()

    def add_body_link(self, b: int, name: str, a_b: NDArray[np.float64]) -> None:
        m = self.m
        link = _Link(name, b)
        inv = np.linalg.inv(a_b)
        link.mass = float(m.body_mass[b])
        link.inertial = inv @ pose_to_matrix(m.body_ipos[b], m.body_iquat[b])
        link.inertia = tuple(float(v) for v in m.body_inertia[b])
        for g in range(m.body_geomadr[b], m.body_geomadr[b] + m.body_geomnum[b]):
            geom = self.geom(g, inv)
            collides = m.geom_contype[g] != 0 or m.geom_conaffinity[g] != 0
            (link.collision if collides else link.visual).append(geom)
        self.links[name] = link
        self.body_link[b] = name
        self.link_in_body[b] = a_b

    def geom(self, g: int, inv: NDArray[np.float64]) -> _Geom:
        m, mj = self.m, self.mj
        gt = mj.mjtGeom
        kind, size = int(m.geom_type[g]), m.geom_size[g]
        pose = inv @ pose_to_matrix(m.geom_pos[g], m.geom_quat[g])
        mat = int(m.geom_matid[g])
        rgba = tuple(float(v) for v in (m.mat_rgba[mat] if mat >= 0 else m.geom_rgba[g]))
        if kind == gt.mjGEOM_SPHERE:
            return _Geom("sphere", pose, (float(size[0]),), rgba=rgba)
        if kind in (gt.mjGEOM_CAPSULE, gt.mjGEOM_CYLINDER):
            name = "capsule" if kind == gt.mjGEOM_CAPSULE else "cylinder"
            return _Geom(name, pose, (float(size[0]), 2.0 * float(size[1])), rgba=rgba)
        if kind == gt.mjGEOM_BOX:
            return _Geom("box", pose, tuple(2.0 * float(v) for v in size), rgba=rgba)
        if kind == gt.mjGEOM_MESH:
            mesh = int(m.geom_dataid[g])
            return _Geom("mesh", pose, (), mesh=self.mesh_file(mesh), rgba=rgba)
        if kind == gt.mjGEOM_ELLIPSOID:
            return _Geom("mesh", pose, (), mesh=self.ellipsoid_file(g, size), rgba=rgba)
        raise MetadataError(f"{self.map.path}: field root_body: geom {m.geom(g).name or g!r} below it has type "
                            f"{gt(kind).name}, which a hand link cannot have; expected sphere, capsule, "
                            "cylinder, box, ellipsoid or mesh")

    def mesh_file(self, mesh: int) -> str:
        if mesh not in self.mesh_files:
            m = self.m
            verts = m.mesh_vert[m.mesh_vertadr[mesh]:m.mesh_vertadr[mesh] + m.mesh_vertnum[mesh]]
            faces = m.mesh_face[m.mesh_faceadr[mesh]:m.mesh_faceadr[mesh] + m.mesh_facenum[mesh]]
            name = f"meshes/{self.urdf_name(m.mesh(mesh).name, 'mesh')}.obj"
            _write_obj(self.out / name, verts, faces)
            self.mesh_files[mesh] = name
        return self.mesh_files[mesh]

    def ellipsoid_file(self, g: int, radii: NDArray[np.float64]) -> str:
        n_lat, n_lon = 8, 16
        theta = np.linspace(0.0, math.pi, n_lat + 1)
        phi = np.linspace(0.0, 2 * math.pi, n_lon, endpoint=False)
        verts = [(0.0, 0.0, 1.0)] + [(math.sin(t) * math.cos(p), math.sin(t) * math.sin(p), math.cos(t))
                                     for t in theta[1:-1] for p in phi] + [(0.0, 0.0, -1.0)]

        def ring(i: int, j: int) -> int:  # vertex of latitude ring i, meridian j
            return 1 + i * n_lon + j % n_lon

        faces = [(0, ring(0, j), ring(0, j + 1)) for j in range(n_lon)]
        for i in range(n_lat - 2):
            for j in range(n_lon):
                faces += [(ring(i, j), ring(i + 1, j), ring(i + 1, j + 1)), (ring(i, j), ring(i + 1, j + 1), ring(i, j + 1))]
        last = len(verts) - 1
        faces += [(last, ring(n_lat - 2, j + 1), ring(n_lat - 2, j)) for j in range(n_lon)]
        name = f"meshes/ellipsoid_{g}.obj"
        _write_obj(self.out / name, np.asarray(verts) * radii, np.asarray(faces))
        return name

    def efforts(self) -> dict[int, float]:
        """Effort limit of each joint id that has one from actuators or couplings [N m or N]."""
        m, mj = self.m, self.mj
        effort: dict[int, float] = {}
        for a in range(m.nu):
            if m.actuator_trntype[a] != mj.mjtTrn.mjTRN_JOINT:
                continue
            j, gear = int(m.actuator_trnid[a, 0]), abs(float(m.actuator_gear[a, 0]))
            if m.actuator_forcelimited[a]:
                value = gear * float(np.max(np.abs(m.actuator_forcerange[a])))
            else:  # a position servo's largest force over its control range
                lo, hi = m.actuator_ctrlrange[a]
                value = gear * abs(float(m.actuator_gainprm[a, 0])) * float(hi - lo)
            effort[j] = max(effort.get(j, 0.0), value)
        self.couplings = self.find_couplings(set(effort))
        for follower, leader, _ratio, _offset in self.couplings:
            if follower not in effort and leader in effort:
                effort[follower] = effort[leader]
        return effort

    def find_couplings(self, actuated: set[int]) -> list[tuple[int, int, float, float]]:
        """``(follower joint, leader joint, ratio, offset)`` with ``q_follower ~= ratio * q_leader
        + offset``; a tendon's follower is its joint without an actuator (module doc).

        Args:
            actuated: Joint ids driven by an actuator.
        """
        m, mj = self.m, self.mj
        out = []
        for t in range(m.ntendon):
            adr, num = int(m.tendon_adr[t]), int(m.tendon_num[t])
            if num != 2 or not m.tendon_limited[t] or any(m.wrap_type[adr + k] != mj.mjtWrap.mjWRAP_JOINT for k in range(2)):
                continue
            (ja, ca), (jb, cb) = [(int(m.wrap_objid[adr + k]), float(m.wrap_prm[adr + k])) for k in range(2)]
            lo, hi = m.tendon_range[t]
            travel = min(abs(ca) * float(np.ptp(m.jnt_range[ja])), abs(cb) * float(np.ptp(m.jnt_range[jb])))
            if ca * cb < 0 and lo <= 0.0 <= hi and (hi - lo) < COUPLING_MAX_SLACK * travel:
                if ja in actuated and jb not in actuated:  # the unactuated joint follows
                    (ja, ca), (jb, cb) = (jb, cb), (ja, ca)
                out.append((ja, jb, -cb / ca, 0.0))  # ca qa + cb qb = 0
        for e in range(m.neq):
            if m.eq_type[e] == mj.mjtEq.mjEQ_JOINT and m.eq_obj2id[e] >= 0:
                ja, jb = int(m.eq_obj1id[e]), int(m.eq_obj2id[e])
                # q1 = a0 + a1 q2 + a2 q2^2 + ... (refs are 0: checked per joint); linear part kept
                a0, a1, *higher = (float(v) for v in m.eq_data[e, :5])
                if any(higher):
                    self.notes.append(f"the joint equality {self.joint_names[ja]} = poly({self.joint_names[jb]}) "
                                      f"is nonlinear; only its linear part ({a1:.4g} x + {a0:.4g}) is used")
                out.append((ja, jb, a1, a0))
        return out

    def mimics(self) -> dict[str, tuple[str, float, float]]:
        """URDF follower joint -> ``(URDF leader joint, multiplier, offset)`` for the couplings
        written as ``<mimic>`` (none with ``couplings`` = ``"independent"``); a coupling that
        cannot be one (leader frozen, not converted, a second leader, a cycle) gets a note."""
        converted = {j.mjcf_name: j.name for j in self.joints if j.mjcf_name}
        out: dict[str, tuple[str, float, float]] = {}
        if self.map.couplings != "mimic":
            return out
        for f, l, ratio, offset in self.couplings:
            follower, leader = self.joint_names[f], self.joint_names[l]
            if follower not in converted:
                continue  # frozen, or above the root: nothing to couple
            why = ""
            if leader in self.map.freeze:
                why = f"its leader {leader} is frozen"
            elif leader not in converted:
                why = f"its leader {leader} is not below root_body"
            elif converted[follower] in out:
                why = f"it already follows {out[converted[follower]][0]}"
            else:
                head = converted[leader]
                while head in out and head != converted[follower]:
                    head = out[head][0]
                if head == converted[follower]:
                    why = f"following {leader} would close a cycle of couplings"
            if why:
                self.notes.append(f"MJCF coupling {follower} = {ratio:.4g} x {leader} + {offset:.4g} written as "
                                  f"independent joints: {why}")
                continue
            out[converted[follower]] = (converted[leader], ratio, offset)
        return out

    def add_body(self, b: int, efforts: dict[int, float]) -> None:
        m, mj, mp = self.m, self.mj, self.map
        parent = int(m.body_parentid[b])
        parent_link = self.body_link[parent]
        body_name = self.urdf_name(self.body_names[b], "body")
        # c: the body frame (joints so far applied) expressed in the current link's frame.
        c = np.linalg.inv(self.link_in_body[parent]) @ pose_to_matrix(m.body_pos[b], m.body_quat[b])
        current = parent_link
        jids = list(range(m.body_jntadr[b], m.body_jntadr[b] + m.body_jntnum[b]))
        movable = [j for j in jids if self.joint_names[j] not in mp.freeze]
        armature: list[tuple[str, NDArray[np.float64], float]] = []
        for j in jids:
            jname = self.joint_names[j]
            jt, anchor, axis = int(m.jnt_type[j]), m.jnt_pos[j].copy(), m.jnt_axis[j].copy()
            if jt not in (mj.mjtJoint.mjJNT_HINGE, mj.mjtJoint.mjJNT_SLIDE):
                raise MetadataError(
                    f"{mp.path}: field root_body: joint {jname!r} below it is a {mj.mjtJoint(jt).name} joint; "
                    f"expected only hinge and slide joints below root_body ({_BALL_ADVICE})")
            kind = "prismatic" if jt == mj.mjtJoint.mjJNT_SLIDE else "revolute"
            if abs(float(m.qpos0[m.jnt_qposadr[j]])) > 0.0:
                raise MetadataError(f"{mp.path}: joint {jname!r} has a non-zero ref (qpos0 = "
                                    f"{float(m.qpos0[m.jnt_qposadr[j]])}); expected ref 0 (not supported)")
            if jname in mp.freeze:
                c = c @ _translation(anchor) @ _axis_motion(kind, axis, mp.freeze[jname]) @ _translation(-anchor)
                continue
            child = body_name if j == movable[-1] else f"{body_name}__{self.urdf_name(jname, 'joint')}"
            if child != body_name:
                self.links[child] = _Link(child, -1, _INTERMEDIATE_MASS[0], inertia=(_INTERMEDIATE_MASS[1],) * 3)
            limited = bool(m.jnt_limited[j])
            if kind == "revolute" and not limited:
                kind = "continuous"
            elif not limited:
                raise MetadataError(f"{mp.path}: slide joint {jname!r} has no range; expected a limited slide joint")
            if jname in mp.efforts:
                effort = mp.efforts[jname]
            elif j in efforts:
                effort = efforts[j]
            else:
                raise MetadataError(
                    f"{mp.path}: field efforts: joint {jname!r} has no actuator and no coupling to an "
                    "actuated joint; expected its effort limit [N m] in efforts (e.g. \"efforts\": "
                    f"{{\"{jname}\": 1.0}})")
            dof = int(m.jnt_dofadr[j])
            lo, hi = (float(v) for v in m.jnt_range[j])
            self.joints.append(_Joint(
                self.urdf_name(jname, "joint"), kind, current, child, c @ _translation(anchor), axis,
                lo, hi, effort, 0.0, float(m.dof_frictionloss[dof]), jname))  # damping: module doc
            if kind != "prismatic" and float(m.dof_armature[dof]) > 0.0:
                # the child link's frame has the body's orientation, in which MuJoCo gives the axis
                armature.append((child, axis, float(m.dof_armature[dof])))
            current = child
            c = _translation(-anchor)
        if not movable:
            self.joints.append(_Joint(f"{body_name}_fixed", "fixed", current, body_name, c))
            c = np.eye(4)
            # the fixed joint's origin put the body frame at the link frame
        self.add_body_link(b, body_name, np.linalg.inv(c))
        for link_name, axis, inertia in armature:
            _add_armature(self.links[link_name], axis, inertia)

    def check_value(self, j: int, field: str, value: float, frozen: bool = False) -> None:
        """A mapping value for joint ``j`` (a freeze value, rest angle or abduction threshold)
        must be one the joint can take: inside its MJCF range when it is limited."""
        m, mj = self.m, self.mj
        jt = int(m.jnt_type[j])
        if jt not in (mj.mjtJoint.mjJNT_HINGE, mj.mjtJoint.mjJNT_SLIDE):
            what = "frozen" if frozen else "used here"
            raise self.chk.fail(field, f"a hinge or slide joint (only those can be {what}; {_BALL_ADVICE})",
                                f"the {mj.mjtJoint(jt).name} joint {self.joint_names[j]!r}")
        if m.jnt_limited[j]:
            lo, hi = (float(v) for v in m.jnt_range[j])
            unit = "m" if jt == mj.mjtJoint.mjJNT_SLIDE else "rad"
            if not lo - 1e-9 <= value <= hi + 1e-9:
                raise self.chk.fail(field, f"a value in the joint's MJCF range [{lo:.6g}, {hi:.6g}] [{unit}]", value)

    # -- hand.json
    def link_of(self, body: str, field: str) -> str:
        return self.body_link[self.body_id(body, field, [*self.root_and_bodies])]

    def zero_pose(self) -> dict[str, NDArray[np.float64]]:
        """Every link's frame at q = 0 in the palm frame."""
        out = {_PALM_LINK: np.eye(4)}
        pending = list(self.joints)
        while pending:
            rest = []
            for j in pending:
                if j.parent in out:
                    out[j.child] = out[j.parent] @ j.origin
                else:
                    rest.append(j)
            pending = rest
        return out

    def chain(self, link: str) -> list[_Joint]:
        by_child = {j.child: j for j in self.joints}
        out = []
        while link in by_child:
            out.append(by_child[link])
            link = by_child[link].parent
        return out[::-1]

    def metadata(self) -> dict[str, Any]:
        m, mp = self.m, self.map
        frames = self.zero_pose()
        joint_urdf = {j.mjcf_name: j.name for j in self.joints if j.mjcf_name}
        fingers: dict[str, Any] = {}
        regions: dict[str, Any] = {}
        used_links: dict[str, str] = {}

        def rot_in_link(body: str, vec: NDArray[np.float64]) -> NDArray[np.float64]:
            return np.linalg.inv(self.link_in_body[self.body_names.index(body)])[:3, :3] @ vec

        for body, entry in mp.palm.items():
            field = f"palm.{body}"
            link = self.link_of(body, field)
            col = self.links[link].collision
            vols = np.array([g.volume() for g in col])
            center = (np.average([g.pose[:3, 3] for g in col], axis=0, weights=vols)
                      if col and vols.sum() > 0 else np.zeros(3))
            axis = (rot_in_link(body, entry.axis) if entry.axis is not None
                    else frames[link][:3, :3].T @ np.array([1.0, 0.0, 0.0]))
            regions[link] = {"part": "palm", "center": _list(center), "axis": _list(axis),
                             "palmar": _list(rot_in_link(body, entry.pad))}
            for key in ("pad_half_angle_deg", "dorsal_half_angle_deg"):
                if getattr(entry, key) is not None:
                    regions[link][key] = getattr(entry, key)
            used_links[link] = field
        for fname, finger in mp.fingers.items():
            base = f"fingers.{fname}"
            segs = list(finger.segments.items())
            distal_body = finger.segments["distal"].body
            distal_link = self.link_of(distal_body, f"{base}.segments.distal.body")
            if finger.tip_site is not None:
                if finger.tip_site not in self.site_names:
                    raise self.chk.unknown(f"{base}.tip.site", finger.tip_site, self.site_names, "MJCF site")
                s = self.site_names.index(finger.tip_site)
                if self.body_names[int(m.site_bodyid[s])] != distal_body:
                    raise self.chk.fail(f"{base}.tip.site", f"a site on the distal body {distal_body!r}",
                                        finger.tip_site)
                tip_body = pose_to_matrix(m.site_pos[s], [1.0, 0.0, 0.0, 0.0])
            else:
                tip_body = _translation(finger.tip_pos)
            tip_link = f"{fname}_tip"
            if tip_link in self.links:
                raise MetadataError(f"{mp.path}: {base}: the tip link name {tip_link!r} is already an MJCF body name")
            tip_origin = np.linalg.inv(self.link_in_body[self.body_names.index(distal_body)]) @ tip_body
            self.joints.append(_Joint(f"{fname}_tip_joint", "fixed", distal_link, tip_link, tip_origin))
            self.links[tip_link] = _Link(tip_link, -1)
            frames[tip_link] = frames[distal_link] @ tip_origin
            seg_links = {}
            for i, (sname, seg) in enumerate(segs):
                field = f"{base}.segments.{sname}.body"
                link = self.link_of(seg.body, field)
                if link in used_links:
                    raise self.chk.fail(field, f"a body not already used by {used_links[link]}", seg.body)
                used_links[link] = field
                seg_links[sname] = link
                nxt = tip_link if i == len(segs) - 1 else self.link_of(segs[i + 1][1].body, f"{base}.segments.{segs[i + 1][0]}.body")
                to_next = (np.linalg.inv(frames[link]) @ frames[nxt])[:3, 3]
                if seg.axis is not None:
                    axis = rot_in_link(seg.body, seg.axis)
                elif np.linalg.norm(to_next) > 1e-9:
                    axis = to_next / np.linalg.norm(to_next)
                else:
                    raise self.chk.fail(f"{base}.segments.{sname}.axis", "an axis (the next segment starts at this "
                                        "segment's joint, so its direction cannot be derived)", "<missing>")
                pad = rot_in_link(seg.body, seg.pad)
                if abs(float(pad @ axis)) > math.sin(math.radians(5.0)):
                    raise self.chk.fail(f"{base}.segments.{sname}.pad", "a direction perpendicular to the segment "
                                        f"axis {_list(axis)} (link frame; within 5 deg)", _list(seg.pad))
                length = float(to_next @ axis)
                region: dict[str, Any] = {"part": f"{fname}.{sname}", "axis": _list(axis), "palmar": _list(pad)}
                if sname == "distal":
                    reach = [g.support(axis, self.vertices(g)) for g in self.links[link].collision]
                    region["length"] = round(max([length, *reach]), 6)
                    region["tip_from"] = finger.tip_from
                elif length > 0:
                    region["length"] = round(length, 6)
                regions[link] = region
            chain = [j.name for j in self.chain(tip_link) if j.type != "fixed"]
            fingers[fname] = {"segments": seg_links, "joints": chain, "tip_link": tip_link}
        segment_links = {link for f in fingers.values() for link in f["segments"].values()}
        for body in mp.palm:
            link = self.link_of(body, f"palm.{body}")
            if segment_links & {j.parent for j in self.chain(link)}:
                raise self.chk.fail(f"palm.{body}", "a body that is not below a finger segment (palm tissue "
                                    "lies between the palm and the phalanges)", body)
        meta: dict[str, Any] = {
            "schema": 1,
            "name": mp.name,
            "urdf": "hand.urdf",
            "palm_link": _PALM_LINK,
            "description": self.description(joint_urdf),
            "fingers": fingers,
        }
        if mp.thumb_abduction is not None:
            jname, side, value = mp.thumb_abduction
            if "thumb" not in fingers:
                raise self.chk.fail("thumb_abduction", "no entry (the mapping has no fingers.thumb)",
                                    {"joint": jname, side: value})
            thumb = [mj for mj, urdf in joint_urdf.items() if urdf in fingers.get("thumb", {}).get("joints", ())]
            self.check_value(self.joint_id(jname, "thumb_abduction.joint", thumb), f"thumb_abduction.{side}", value)
            self.check_not_follower(jname, joint_urdf[jname], "thumb_abduction.joint")
            meta["thumb_abduction"] = {"joint": joint_urdf[jname], side: value}
        if mp.rest_pose:
            for jname, value in mp.rest_pose.items():
                self.check_value(self.joint_id(jname, f"rest_pose.{jname}", list(joint_urdf)), f"rest_pose.{jname}", value)
                self.check_not_follower(jname, joint_urdf[jname], f"rest_pose.{jname}")
            meta["rest_pose"] = {joint_urdf[j]: v for j, v in mp.rest_pose.items()}
        meta["regions"] = regions
        meta["pad_half_angle_deg"] = mp.pad_half_angle_deg
        meta["dorsal_half_angle_deg"] = mp.dorsal_half_angle_deg
        return meta

    def vertices(self, geom: _Geom) -> NDArray[np.float64] | None:
        if geom.kind != "mesh":
            return None
        return _read_obj_vertices(self.out / geom.mesh)

    def description(self, joint_urdf: Mapping[str, str]) -> str:
        text = f"Converted by handsim.importers.mjcf from {self.map.mjcf_path.name} (mapping {self.map.path})."
        pairs = [(joint_urdf[self.joint_names[f]], joint_urdf[self.joint_names[l]], r, o)
                 for f, l, r, o in self.couplings
                 if self.joint_names[f] in joint_urdf and self.joint_names[l] in joint_urdf]

        def formula(f: str, leader: str, r: float, o: float) -> str:
            return f"{f} = {r:.4g} x {leader}" + (f" {'+' if o >= 0 else '-'} {abs(o):.4g}" if o else "")

        mimic = [p for p in pairs if self.mimic.get(p[0], ("",))[0] == p[1]]
        independent = [p for p in pairs if p not in mimic]
        if mimic:
            text += (" MJCF couplings written as URDF mimic joints (follower = ratio x leader + offset): "
                     + ", ".join(formula(*p) for p in mimic) + ".")
        if independent:
            how = ' ("couplings": "independent")' if self.map.couplings == "independent" else ""
            text += (f" MJCF couplings written as independent joints{how} (follower = ratio x leader + offset): "
                     + ", ".join(formula(*p) for p in independent) + ".")
        return text + "".join(f" {note}." for note in self.notes)

    def check_not_follower(self, mjcf_joint: str, urdf_joint: str, field: str) -> None:
        """A mapping field that names a joint (a rest angle, the abduction joint) may not name a
        mimic follower: it rests where its leader puts it (as ``load_hand`` rules for hand.json)."""
        if urdf_joint in self.mimic:
            leader, ratio, offset = self.mimic[urdf_joint]
            mj_leader = self.names_used.get(leader, leader)
            raise self.chk.fail(field, f"a joint that is not a coupling follower ({mjcf_joint} is written as a "
                                f"mimic of {mj_leader}, {urdf_joint} = {ratio:.4g} x {leader} + {offset:.4g}; name "
                                f"{mj_leader!r} instead, or set \"couplings\": \"independent\")", mjcf_joint)

    def collision_filters(self) -> dict[str, tuple[int, int]]:
        """URDF link -> ``(group, mask)`` reproducing MuJoCo's self-collision rules (module doc)."""
        m, mj = self.m, self.mj
        links = [link for link in self.links.values() if link.collision]
        if len(links) > _MAX_FILTER_LINKS:
            self.notes.append(f"{len(links)} links with collision geometry exceed the {_MAX_FILTER_LINKS} "
                              "collision-filter bits: no self-collision between hand links")
            return {link.name: (1 << _FIRST_LINK_BIT, _BULLET_FILTERS) for link in links}
        weld = m.body_weldid
        filter_parent = not (m.opt.disableflags & mj.mjtDisableBit.mjDSBL_FILTERPARENT)
        excluded = {int(sig) for sig in m.exclude_signature}
        pairs = {frozenset((int(m.geom_bodyid[a]), int(m.geom_bodyid[b])))
                 for a, b in zip(m.pair_geom1, m.pair_geom2)}

        def collide(ba: int, bb: int) -> bool:
            if frozenset((ba, bb)) in pairs:
                return True
            wa, wb = int(weld[ba]), int(weld[bb])
            if wa == wb or ((ba << 16) + bb) in excluded or ((bb << 16) + ba) in excluded:
                return False
            if filter_parent and wa and wb and (wa == weld[m.body_parentid[wb]] or wb == weld[m.body_parentid[wa]]):
                return False
            ga = range(m.body_geomadr[ba], m.body_geomadr[ba] + m.body_geomnum[ba])
            gb = range(m.body_geomadr[bb], m.body_geomadr[bb] + m.body_geomnum[bb])
            return any((m.geom_contype[i] & m.geom_conaffinity[j]) or (m.geom_contype[j] & m.geom_conaffinity[i])
                       for i in ga for j in gb)

        bit = {link.name: 1 << (_FIRST_LINK_BIT + k) for k, link in enumerate(links)}
        out = {}
        for a in links:
            mask = _BULLET_FILTERS
            for b in links:
                if a is not b and collide(a.body, b.body):
                    mask |= bit[b.name]
            out[a.name] = (bit[a.name], mask)
        return out

    # -- URDF
    def urdf(self) -> str:
        lines = ['<?xml version="1.0"?>',
                 (f"<!-- {self.map.name}: converted by handsim.importers.mjcf from {self.map.mjcf_path}. "
                 "Do not edit: it is regenerated from the mapping file. -->"),
                 f'<robot name="{self.map.name}">']
        filters = self.filters
        for link in self.links.values():
            lines.append(f'  <link name="{link.name}">')
            ixx, iyy, izz = link.inertia
            lines.append(f"    <inertial>{_origin_xml(link.inertial)}<mass value=\"{link.mass!r}\"/>"
                         f'<inertia ixx="{ixx!r}" ixy="0" ixz="0" iyy="{iyy!r}" iyz="0" izz="{izz!r}"/></inertial>')
            for tag, geoms in (("visual", link.visual or link.collision), ("collision", link.collision)):
                for g in geoms:
                    extra = attrs = ""
                    if tag == "visual":
                        rgba = " ".join(f"{v:.3g}" for v in g.rgba)
                        extra = f'<material name="rgba {rgba}"><color rgba="{rgba}"/></material>'
                    else:
                        attrs = ' group="{}" mask="{}"'.format(*filters[link.name])
                    lines.append(f"    <{tag}{attrs if tag == 'collision' else ''}>{_origin_xml(g.pose)}"
                                 f"<geometry>{_geometry_xml(g)}</geometry>{extra}</{tag}>")
            lines.append("  </link>")
        for j in self.joints:
            lines.append(f'  <joint name="{j.name}" type="{j.type}">')
            lines.append(f'    <parent link="{j.parent}"/><child link="{j.child}"/>{_origin_xml(j.origin)}')
            if j.type != "fixed":
                ax = " ".join(repr(float(v)) for v in j.axis)
                lim = "" if j.type == "continuous" else f'lower="{j.lower!r}" upper="{j.upper!r}" '
                lines.append(f'    <axis xyz="{ax}"/><limit {lim}effort="{j.effort!r}" velocity="{self.map.velocity_limit!r}"/>'
                             f'<dynamics damping="{j.damping!r}" friction="{j.friction!r}"/>')
                if j.name in self.mimic:
                    leader, ratio, offset = self.mimic[j.name]
                    lines.append(f'    <mimic joint="{leader}" multiplier="{ratio!r}" offset="{offset!r}"/>')
            lines.append("  </joint>")
        lines += ["</robot>", ""]
        return "\n".join(lines)


def _list(v: NDArray[np.float64]) -> list[float]:
    return [round(float(x), 12) + 0.0 for x in v]  # + 0.0: no "-0.0" in the JSON


def _geometry_xml(g: _Geom) -> str:
    if g.kind == "sphere":
        return f'<sphere radius="{g.size[0]!r}"/>'
    if g.kind in ("capsule", "cylinder"):
        return f'<{g.kind} radius="{g.size[0]!r}" length="{g.size[1]!r}"/>'
    if g.kind == "box":
        return f'<box size="{" ".join(repr(v) for v in g.size)}"/>'
    return f'<mesh filename="{g.mesh}"/>'


def _write_obj(path: Path, verts: NDArray[np.float64], faces: NDArray[np.int64]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"v {x!r} {y!r} {z!r}" for x, y, z in np.asarray(verts, dtype=np.float64).tolist()]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in np.asarray(faces, dtype=np.int64).tolist()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _read_obj_vertices(path: Path) -> NDArray[np.float64]:
    rows = [line.split()[1:4] for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("v ")]
    return np.asarray(rows, dtype=np.float64)


# ---------------------------------------------------------------------------- conversion
def convert_mjcf(mapping: str | os.PathLike[str] | MjcfMapping, out_dir: str | os.PathLike[str]) -> Path:
    """Convert an MJCF hand into a hand folder (``hand.urdf``, ``hand.json``, ``meshes/``).

    Args:
        mapping: A mapping file, a folder holding one, or a loaded :class:`MjcfMapping`.
        out_dir: The folder to write (created; existing files of the same names are replaced).

    Returns:
        The folder, resolved. It loads with :func:`handsim.hand.load_hand`.

    Raises:
        MetadataError: A malformed mapping, a name the MJCF does not have (the message lists
            the valid ones), or MJCF features the converter does not support.
        MissingDependencyError: mujoco (or the package holding the MJCF) is not installed.
    """
    mp = mapping if isinstance(mapping, MjcfMapping) else load_mapping(mapping)
    model = _compile(mp)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    conv = _Converter(mp, model, out)
    conv.build()
    meta = conv.metadata()  # adds the tip links
    (out / "hand.urdf").write_text(conv.urdf(), encoding="utf-8")
    (out / "hand.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return out.resolve()


def _source_files(main: Path) -> list[tuple[Path, ET.Element | None]]:
    """The MJCF file and the files it includes (recursively; MuJoCo resolves them against the
    main file's folder), each with its parsed root (None when it does not parse: MuJoCo
    reports that when it compiles)."""
    seen: list[tuple[Path, ET.Element | None]] = []
    todo = [main]
    while todo:
        path = todo.pop()
        if any(path == p for p, _ in seen) or not path.is_file():
            continue
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError:
            seen.append((path, None))
            continue
        seen.append((path, root))
        todo += [(main.parent / el.get("file", "")).resolve() for el in root.iter("include") if el.get("file")]
    return seen


#: MJCF asset elements whose ``file`` the compiled model depends on, and the ``<compiler>``
#: attribute naming the folder MuJoCo resolves it against (``assetdir`` is the fallback).
_ASSET_DIRS = {"mesh": "meshdir", "hfield": "meshdir", "skin": "meshdir", "texture": "texturedir"}


def _asset_files(roots: list[ET.Element], main: Path) -> list[Path]:
    """The mesh, height-field, skin and texture files the parsed MJCF files name, resolved as
    MuJoCo does (against ``<compiler meshdir/texturedir/assetdir>``, relative to the main
    file's folder); files that do not exist are left to MuJoCo to report."""
    dirs: dict[str, str] = {}
    for root in roots:
        for compiler in root.iter("compiler"):
            dirs.update({k: v for k, v in compiler.attrib.items() if k in ("meshdir", "texturedir", "assetdir")})
    found: list[Path] = []
    for root in roots:
        for tag, dir_attr in _ASSET_DIRS.items():
            for el in root.iter(tag):
                name = el.get("file")
                if not name:
                    continue
                for folder in (dirs.get(dir_attr), dirs.get("assetdir"), ""):
                    if folder is None:
                        continue
                    candidate = (main.parent / folder / name).resolve()
                    if candidate.is_file():
                        if candidate not in found:
                            found.append(candidate)
                        break
    return found


def _cache_key(mp: MjcfMapping) -> str:
    digest = hashlib.sha256()
    digest.update(f"converter {CONVERTER_VERSION}\n".encode())
    try:
        digest.update(f"mujoco {importlib.metadata.version('mujoco')}\n".encode())
    except importlib.metadata.PackageNotFoundError:
        raise MissingDependencyError(f"MJCF import needs the mujoco package; {_INSTALL_HINT}") from None
    digest.update(mp.path.read_bytes())
    sources = _source_files(mp.mjcf_path)
    assets = _asset_files([root for _, root in sources if root is not None], mp.mjcf_path)
    for path in [p for p, _ in sources] + assets:
        digest.update(str(path).encode() + b"\n" + path.read_bytes())
    return digest.hexdigest()[:16]


def converted_hand_dir(mapping: str | os.PathLike[str]) -> Path:
    """The converted hand folder of a mapping, converting it into the cache on first use.

    The folder is ``<cache_root()>/mjcf/<name>-<key>``, the key a hash of the mapping file, the
    MJCF file and its includes, the mesh/texture files they name, the mujoco version and :data:`CONVERTER_VERSION`: editing any of
    them converts again. Concurrent callers (benchmark workers) are safe: each converts into a
    private folder and the first to rename it into place wins.

    Args:
        mapping: A mapping file or a folder holding :data:`MAPPING_FILE`.

    Returns:
        The folder holding ``hand.urdf`` and ``hand.json``.

    Raises:
        MetadataError: A malformed mapping, a name the MJCF does not have, or MJCF features the
            converter does not support (see :func:`convert_mjcf`).
        MissingDependencyError: mujoco (or the package holding the MJCF) is not installed.
        ConfigurationError: The cache folder cannot be created or written (``HANDSIM_CACHE_DIR``
            names a file, or a read-only place).
    """
    mp = load_mapping(mapping)
    target = cache_root() / "mjcf" / f"{_NAME_RE.sub('_', mp.name)}-{_cache_key(mp)}"
    if (target / "hand.json").is_file():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    except OSError as exc:
        raise cache_folder_error(target.parent, f"the converted MJCF hand {mp.name!r}", exc) from None
    try:
        convert_mjcf(mp, work)
        try:
            os.rename(work, target)
        except OSError:
            if not (target / "hand.json").is_file():
                raise
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return target

