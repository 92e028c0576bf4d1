"""Parametric hand generator: write a hand folder that handsim loads, simulates and benchmarks.

Design engineers ask what a joint or a finger is worth in coverage ("what does removing the DIP
joint, or the little finger, cost?"). :func:`make_hand` writes a complete hand folder
(``hand.urdf``, ``hand.json``, an empty ``grasps.json`` and a ``README.md``) for a variant of
the shipped ``default_hand``; ``handsim hand make`` is its command line.

**Where the numbers come from.** Every length, radius, joint origin, axis, limit, effort and
damping, the palm and knuckle-pad boxes, the tip frames and the region geometry are read *at
generation time* from the default hand's ``hand.urdf`` and ``hand.json`` (found through
:func:`handsim.data.hand_dir`); their sources are in ``models/default_hand/README.md``
(Buchholz et al. 1992 segment lengths, AAOS / Hume et al. 1990 ranges, Dempster 1955 density).
So with the default arguments (5 fingers, 5-DoF thumb, DIP joints, scale 1) the generated hand
is kinematically the default hand: same link and joint names, same joint origins, axes and
limits (bit for bit: numbers are written with ``repr`` and scale 1 multiplies exactly), and it
follows the default hand when that one is revised. Masses and inertias are recomputed from the
collision primitives at the default hand's density, as its README describes, and every movable
joint's child link carries the default hand's joint armature (v6, :data:`JOINT_ARMATURE_KG_M2`
about the joint axis, a thin disk's tensor, written in principal axes); a joint the parameters
fix has no actuator and adds none. The shape-less thumb hub links keep the template's own
inertia (its tensor less that armature).

**The parameters.**

* ``fingers``: 5 = thumb + index, middle, ring, little; 4 drops the little finger; 3 drops ring
  and little. The palm is left as it is (same boxes): only the finger question changes.
* ``thumb_dof``: 5 = ``thumb_cmc_abd``, ``thumb_cmc_flex``, ``thumb_cmc_roll``,
  ``thumb_mcp``, ``thumb_ip`` (the default hand, v3: ``thumb_cmc_roll`` is the CMC axial
  rotation / pronation about the metacarpal's long axis). 4 fixes ``thumb_cmc_roll`` at 0 rad,
  which is exactly the v2 default hand's 4-DoF thumb (CMC abd + flex, MCP, IP); 1-3 then drop
  joints from the tip side (IP, then MCP, then CMC flexion). Dropped joints become **fixed
  joints at 0 rad** (the segments and the ``thumb_cmc2`` hub link stay, straight), so the thumb
  keeps its shape and its region labels. 0 means no thumb at all (no thumb links, no
  ``thumb_abduction`` entry, no ``thumb.*`` labels). 6 adds ``thumb_mcp_abd``, an MCP
  abduction (radial/ulnar deviation) before ``thumb_mcp``, through a new link
  ``thumb_knuckle``; see "6-DoF thumb" below. (Before the v3 default hand, 4 was the default
  and 5 the MCP-abduction thumb.)
* ``dip=False``: the **DIP joints become fixed at 0 rad**: the middle and distal phalanges are
  one rigid straight segment made of the two links. This keeps both the ``<f>.middle.*`` and
  ``<f>.distal.*`` labels (every taxonomy signature still compiles with the same meaning) and
  the distal tip region, at the cost of one fixed joint per finger.
* ``dip_coupling=m``: each finger's **DIP follows its PIP**, DIP = m x PIP (a URDF ``<mimic>``;
  the thumb is not coupled). The DIPs keep their links, limits and efforts and stay joints of
  their fingers, but are no longer commanded or planned (17 actuated joints instead of 21), as
  in hands whose distal phalanx is driven by a linkage; in physics each follows its PIP's target
  with its own motor (``handsim.sim.HandBody``).
* ``scale``: every length (joint origins, radii, boxes, tip frames, region centres and lengths)
  times ``scale``; masses follow from the primitives' volumes (so times ``scale**3``), inertias
  times ``scale**5``. **Efforts (and joint damping) times** ``scale**3``: muscle force goes with
  the physiological cross-section (``scale**2``) and its moment arm about the joint with
  ``scale``, so the torque a hand of similar build produces grows as ``scale**3``, the same
  factor as its mass (a scaled hand lifts its own scaled segments just as well). Velocity limits
  [rad/s] and the thumb abduction threshold [rad] are angles: unchanged.
* ``finger_lengths``: per-finger total lengths [m], in finger order (the digits present, thumb
  first). A finger's total is the sum of its segment lengths: proximal + middle + distal for
  the fingers (MCP joint to fingertip), metacarpal + proximal + distal for the thumb (CMC joint
  to thumb tip). Its segments keep the default proportions; radii, the MCP/CMC positions and
  the palm follow ``scale`` only. Each length must lie within
  :data:`FINGER_LENGTH_FACTOR_RANGE` times the finger's scaled default length.

**6-DoF thumb.** ``thumb_mcp_abd`` turns about the metacarpal frame's z (the thumb pad normal);
positive turns the phalanx towards the frame's +y (at the zero pose palm direction
(0.78, 0.48, -0.40): distal, ulnar, dorsal). Range +/- :data:`THUMB_MCP_ABD_LIMIT_DEG` deg, an
assumption of the order of the human thumb MCP's small radial/ulnar deviation; effort and
damping those of the finger MCP abduction. PyBullet's ``URDF_USE_SELF_COLLISION_EXCLUDE_PARENT``
only exempts parent and child, and the metacarpal and the proximal phalanx are no longer
parent and child (``thumb_knuckle`` sits between). Their capsules meet at the MCP, so they
would collide all the time. (PyBullet 3.2.7 ignores URDF collision group/mask attributes for
self-collision: measured.) So the metacarpal capsule stops, and the proximal one starts,
:func:`_mcp_gap` before/after the MCP, far enough that the two clear each other by 1.5 mm (x
scale) at every MCP angle in the limits, and ``thumb_knuckle`` carries a sphere of the
metacarpal's radius at the MCP (exempt from both neighbours) that fills the gap. ``thumb_knuckle``
lies below a thumb segment, so the schema gives it no region: contacts on that sphere are
labelled ``other``.

Pure python + numpy: never imports PyBullet.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from handsim._io import free_backup_path
from handsim.data import DEFAULT_HAND, hand_dir
from handsim.errors import ConfigurationError, URDFError
from handsim.kinematics.urdf import armature_inertia, rpy_to_matrix

__all__ = [
    "DENSITY_KG_M3",
    "DIP_COUPLING_RANGE",
    "FINGERS_RANGE",
    "FINGER_LENGTH_FACTOR_RANGE",
    "JOINT_ARMATURE_KG_M2",
    "SCALE_RANGE",
    "THUMB_DOF_RANGE",
    "THUMB_MCP_ABD_LIMIT_DEG",
    "default_finger_lengths",
    "finger_names",
    "make_hand",
]

#: Valid ``fingers`` (thumb included): 5 = thumb..little, 4 without little, 3 without ring and little.
FINGERS_RANGE: tuple[int, int] = (3, 5)
#: Valid ``thumb_dof``: 0 = no thumb, 5 = the default hand's thumb (CMC abd, flex, roll, MCP,
#: IP), 4 fixes the CMC roll (the v2 thumb), 1-3 fix more from the tip side, 6 adds an MCP abduction.
THUMB_DOF_RANGE: tuple[int, int] = (0, 6)
#: Valid ``scale`` [-]: half to double the adult default hand (0.095-0.38 m hand length).
SCALE_RANGE: tuple[float, float] = (0.5, 2.0)
#: A ``finger_lengths`` entry must lie within these multiples of the finger's scaled default
#: length: shorter and the distal capsule degenerates (its radius exceeds the segment), longer
#: and the fingers pass far beyond the palm and through each other in flexion.
FINGER_LENGTH_FACTOR_RANGE: tuple[float, float] = (0.5, 2.0)
#: Valid ``dip_coupling`` (exclusive, inclusive]: each finger's DIP follows its PIP times this
#: (a URDF ``<mimic>``; human DIP flexion is about 2/3 of PIP's in free motion).
DIP_COUPLING_RANGE: tuple[float, float] = (0.0, 2.0)
#: Half-range of ``thumb_mcp_abd`` (6-DoF thumb) [deg].
THUMB_MCP_ABD_LIMIT_DEG = 15.0
#: Hand tissue density [kg/m^3] (Dempster, WADC TR 55-159, 1955), as in the default hand.
DENSITY_KG_M3 = 1160.0
#: The default hand's joint armature [kg m^2] (v6; its README, "Joint armature (v6)"): every
#: movable joint's child link carries a thin disk's inertia, this about the joint axis and half
#: of it about the two perpendicular axes (times ``scale**5``, like the links' own inertias).
JOINT_ARMATURE_KG_M2 = 2e-4

_ALL_FINGERS = ("thumb", "index", "middle", "ring", "little")
_FOUR = ("index", "middle", "ring", "little")
_THUMB_JOINTS = ("thumb_cmc_abd", "thumb_cmc_flex", "thumb_cmc_roll", "thumb_mcp", "thumb_ip")
# The order in which thumb_dof 4..1 keep joints movable: the CMC roll goes first (thumb_dof 4 is
# the v2 default hand's thumb), then the joints from the tip side.
_THUMB_KEEP_ORDER = ("thumb_cmc_abd", "thumb_cmc_flex", "thumb_mcp", "thumb_ip", "thumb_cmc_roll")
_THUMB_SEGMENTS = ("metacarpal", "proximal", "distal")
_FINGER_SEGMENTS = ("proximal", "middle", "distal")
# Grid step [m] for the part of an overlay shape outside its link's primitives (the same grid as
# the v4 hand's own mass computation, so the generated default hand weighs what it does).
_OVERLAY_GRID_M = 0.0004
# Clearance kept between the 6-DoF thumb's metacarpal and proximal capsules [m] (x scale).
_MCP_CLEARANCE_M = 0.0015
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_FILES = ("hand.urdf", "hand.json", "grasps.json", "README.md")
_COLOURS = {"palm": "0.85 0.70 0.60 1", "a": "0.90 0.75 0.65 1", "b": "0.80 0.62 0.52 1"}
_CAPSULE_RPY = (0.0, math.pi / 2, 0.0)  # URDF capsules run along z: turn them onto the link's x


# ---------------------------------------------------------------------------- the template
@dataclasses.dataclass(frozen=True)
class _Joint:
    """One URDF joint as written (or read): SI units; ``lower``.. only for movable joints."""

    name: str
    type: str
    parent: str
    child: str
    xyz: tuple[float, float, float]
    rpy: tuple[float, float, float]
    axis: tuple[float, float, float] = (1.0, 0.0, 0.0)
    lower: float = 0.0
    upper: float = 0.0
    effort: float = 0.0
    velocity: float = 0.0
    damping: float = 0.0
    friction: float = 0.0
    mimic: tuple[str, float] | None = None  # (master joint, multiplier): a coupled joint


@dataclasses.dataclass(frozen=True)
class _Shape:
    """A collision (and visual) primitive in its link's frame: ``box`` (size) or ``capsule``
    (radius, length of the cylinder part, along the link's x) or ``sphere`` (radius).

    ``name`` is the URDF ``<collision name=...>``: empty for a link's own primitive (a segment's
    capsule, a palm or knuckle box), set for a soft-tissue shape laid over it (the v4 thenar
    eminence on ``thumb_metacarpal``), which may overlap the primitives before it (see
    :func:`_mass_properties`)."""

    kind: str
    xyz: tuple[float, float, float]
    size: tuple[float, ...]
    name: str = ""


@dataclasses.dataclass(frozen=True)
class _Template:
    """The default hand's numbers the generator varies."""

    urdf_path: Path
    joints: Mapping[str, _Joint]
    shapes: Mapping[str, tuple[_Shape, ...]]
    inertial: Mapping[str, tuple[float, NDArray[np.float64]]]  # link -> (mass [kg], (3, 3) inertia [kg m^2]
                                                                 # about the centre of mass, in the link frame)
    meta: Mapping[str, Any]  # the default hand.json

    def own_inertia(self, link: str) -> tuple[float, float]:
        """A shape-less link's mass [kg] and its own isotropic inertia [kg m^2]: the template's
        tensor less the armature of the joint that moves it (:data:`JOINT_ARMATURE_KG_M2`)."""
        mass, tensor = self.inertial[link]
        movers = [j for j in self.joints.values() if j.child == link and j.type != "fixed"]
        for j in movers:
            tensor = tensor - armature_inertia(JOINT_ARMATURE_KG_M2, j.axis)
        own = float(np.trace(tensor)) / 3.0
        if not own > 0.0 or np.linalg.eigvalsh(tensor).min() < -1e-3 * JOINT_ARMATURE_KG_M2:
            raise URDFError(f"{self.urdf_path}: link {link!r} carries less inertia than a joint armature of "
                            f"{JOINT_ARMATURE_KG_M2:g} kg m^2 (handgen.JOINT_ARMATURE_KG_M2, the default hand's): "
                            "the template's armature and the generator's differ")
        return mass, own

    def length(self, link: str) -> float:
        """A segment's length [m] (``hand.json`` ``regions.<link>.length``)."""
        return float(self.meta["regions"][link]["length"])

    def capsule(self, link: str) -> _Shape:
        """A segment's own capsule (the unnamed one)."""
        (shape,) = [s for s in self.shapes[link] if s.kind == "capsule" and not s.name]
        return shape

    def box(self, link: str) -> _Shape:
        (shape,) = [s for s in self.shapes[link] if s.kind == "box" and not s.name]
        return shape

    def overlays(self, link: str) -> tuple[_Shape, ...]:
        """The named soft-tissue shapes laid over a link's own primitive (e.g. the thenar)."""
        return tuple(s for s in self.shapes.get(link, ()) if s.name)


def _floats(text: str | None, n: int, default: float = 0.0) -> tuple[float, ...]:
    if text is None:
        return (default,) * n
    values = tuple(float(v) for v in text.split())
    if len(values) != n:
        raise ValueError(f"expected {n} numbers, got {text!r}")
    return values


def _attr(element: ET.Element | None, key: str) -> str | None:
    return None if element is None else element.get(key)


def _read_template(name: str | Path = DEFAULT_HAND) -> _Template:
    """Read the default hand's URDF (joints, collision primitives) and hand.json."""
    folder = hand_dir(name)
    meta = json.loads((folder / "hand.json").read_text(encoding="utf-8"))
    path = folder / meta["urdf"]
    try:
        root = ET.parse(path).getroot()
        joints: dict[str, _Joint] = {}
        for el in root.findall("joint"):
            origin, axis, lim, dyn = el.find("origin"), el.find("axis"), el.find("limit"), el.find("dynamics")
            joints[el.get("name", "")] = _Joint(
                name=el.get("name", ""), type=el.get("type", ""),
                parent=el.find("parent").get("link", ""), child=el.find("child").get("link", ""),
                xyz=_floats(_attr(origin, "xyz"), 3), rpy=_floats(_attr(origin, "rpy"), 3),
                axis=_floats(_attr(axis, "xyz"), 3) if axis is not None else (1.0, 0.0, 0.0),
                lower=float(_attr(lim, "lower") or 0.0), upper=float(_attr(lim, "upper") or 0.0),
                effort=float(_attr(lim, "effort") or 0.0), velocity=float(_attr(lim, "velocity") or 0.0),
                damping=float(_attr(dyn, "damping") or 0.0), friction=float(_attr(dyn, "friction") or 0.0),
            )
        shapes: dict[str, tuple[_Shape, ...]] = {}
        inertial: dict[str, tuple[float, NDArray[np.float64]]] = {}
        for link in root.findall("link"):
            found = []
            for col in link.findall("collision"):
                xyz = _floats(_attr(col.find("origin"), "xyz"), 3)
                geom = col.find("geometry")[0]
                name = col.get("name", "")
                if geom.tag == "box":
                    found.append(_Shape("box", xyz, _floats(geom.get("size"), 3), name))
                elif geom.tag == "capsule":
                    found.append(_Shape("capsule", xyz, (float(geom.get("radius")), float(geom.get("length"))), name))
                elif geom.tag == "sphere":
                    found.append(_Shape("sphere", xyz, (float(geom.get("radius")),), name))
            shapes[link.get("name", "")] = tuple(found)
            ine = link.find("inertial")
            if ine is not None:
                a = ine.find("inertia").attrib
                xx, xy, xz, yy, yz, zz = (float(a.get(k, 0.0)) for k in ("ixx", "ixy", "ixz", "iyy", "iyz", "izz"))
                rot = rpy_to_matrix(np.array(_floats(_attr(ine.find("origin"), "rpy"), 3)))
                tensor = rot @ np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]]) @ rot.T
                inertial[link.get("name", "")] = (float(ine.find("mass").get("value")), tensor)
    except (ET.ParseError, AttributeError, TypeError, ValueError, IndexError) as exc:
        raise URDFError(f"{path}: the hand generator could not read its template ({exc})") from exc
    return _Template(path, joints, shapes, inertial, meta)


# ---------------------------------------------------------------------------- parameters
def finger_names(fingers: int = 5, thumb_dof: int = 5) -> tuple[str, ...]:
    """The digits a generated hand has, thumb first (the ``finger_lengths`` order).

    Args:
        fingers: 3, 4 or 5 (thumb included).
        thumb_dof: 0 leaves the thumb out.
    """
    names = _ALL_FINGERS[:fingers]
    return names if thumb_dof > 0 else names[1:]


def default_finger_lengths(scale: float = 1.0, template: str | Path = DEFAULT_HAND) -> dict[str, float]:
    """Each digit's total length [m] in the default proportions at ``scale``.

    The thumb's runs from the CMC joint (metacarpal + proximal + distal), the others' from the MCP
    joint (proximal + middle + distal), to the fingertip.
    """
    tpl = _read_template(template)
    return {f: scale * _total_length(tpl, f) for f in _ALL_FINGERS}


def _segments(finger: str) -> tuple[str, ...]:
    return _THUMB_SEGMENTS if finger == "thumb" else _FINGER_SEGMENTS


def _total_length(tpl: _Template, finger: str) -> float:
    return sum(tpl.length(f"{finger}_{s}") for s in _segments(finger))


def _whole(value: Any, what: str, lo: int, hi: int, meaning: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= int(value) <= hi:
        raise ConfigurationError(f"{what}: expected a whole number in {lo}..{hi} ({meaning}), got {value!r}")
    return int(value)


@dataclasses.dataclass(frozen=True)
class _Params:
    fingers: int
    thumb_dof: int
    dip: bool
    scale: float
    digits: tuple[str, ...]
    length_factor: Mapping[str, float]  # digit -> total length / (scale * default total)
    name: str
    dip_coupling: float | None = None  # each finger's DIP = this x its PIP (a <mimic> tag)


def _check_params(tpl: _Template, fingers: Any, thumb_dof: Any, dip: Any, scale: Any,
                  finger_lengths: Any, name: Any, dip_coupling: Any = None) -> _Params:
    fingers = _whole(fingers, "fingers", *FINGERS_RANGE,
                     "5 = thumb + index..little, 4 drops the little finger, 3 drops ring and little")
    thumb_dof = _whole(thumb_dof, "thumb_dof", *THUMB_DOF_RANGE,
                       "0 = no thumb, 5 = CMC abd + CMC flex + CMC roll + MCP + IP, 4 fixes the CMC roll, "
                       "6 adds an MCP abduction")
    if not isinstance(dip, (bool, np.bool_)):
        raise ConfigurationError(f"dip: expected True or False, got {dip!r}")
    if dip_coupling is not None:
        clo, chi = DIP_COUPLING_RANGE
        if (isinstance(dip_coupling, bool) or not isinstance(dip_coupling, (int, float, np.floating, np.integer))
                or not math.isfinite(dip_coupling) or not clo < dip_coupling <= chi):
            raise ConfigurationError(f"dip_coupling: expected a number in ({clo:g}, {chi:g}] (DIP = that x PIP), "
                                     f"got {dip_coupling!r}")
        if not dip:
            raise ConfigurationError("dip_coupling: needs DIP joints to couple, got dip=False (fixed DIPs)")
        dip_coupling = float(dip_coupling)
    lo, hi = SCALE_RANGE
    if (isinstance(scale, bool) or not isinstance(scale, (int, float, np.floating, np.integer))
            or not math.isfinite(scale) or not lo <= scale <= hi):
        raise ConfigurationError(f"scale: expected a number in [{lo:g}, {hi:g}], got {scale!r}")
    scale = float(scale)
    digits = finger_names(fingers, thumb_dof)
    factors = {d: 1.0 for d in digits}
    if isinstance(finger_lengths, np.ndarray):
        finger_lengths = finger_lengths.tolist()
    if finger_lengths is not None:
        if isinstance(finger_lengths, (str, bytes)) or not isinstance(finger_lengths, Sequence):
            raise ConfigurationError(f"finger_lengths: expected {len(digits)} lengths [m] "
                                     f"({', '.join(digits)}), got {finger_lengths!r}")
        if len(finger_lengths) != len(digits):
            raise ConfigurationError(
                f"finger_lengths: expected {len(digits)} lengths [m], one per finger in the order "
                f"{', '.join(digits)}, got {len(finger_lengths)}: {list(finger_lengths)!r}")
        flo, fhi = FINGER_LENGTH_FACTOR_RANGE
        for digit, value in zip(digits, finger_lengths):
            default = scale * _total_length(tpl, digit)
            if (isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer))
                    or not math.isfinite(value) or not flo * default <= value <= fhi * default):
                raise ConfigurationError(
                    f"finger_lengths: {digit} length expected in [{flo * default:.4f}, {fhi * default:.4f}] m "
                    f"({flo:g}x..{fhi:g}x its default {default:.4f} m at scale {scale:g}), got {value!r}")
            factors[digit] = float(value) / default
    if name is None:
        name = (f"handgen_f{fingers}_t{thumb_dof}{'' if dip else '_nodip'}"
                + ("" if dip_coupling is None else f"_dipc{dip_coupling:g}") + f"_s{scale:g}"
                + ("_custom" if finger_lengths is not None else ""))
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigurationError(f"name: expected letters, digits, '_', '.' or '-' (not starting with "
                                 f"'.' or '-'), got {name!r}")
    return _Params(fingers, thumb_dof, bool(dip), scale, digits, factors, name, dip_coupling)


# ---------------------------------------------------------------------------- mass properties
def _box_inertia(size: Sequence[float]) -> tuple[float, NDArray[np.float64]]:
    """Mass [kg] and (3, 3) inertia [kg m^2] about the centre of a solid box."""
    a, b, c = size
    m = DENSITY_KG_M3 * a * b * c
    return m, np.diag([b * b + c * c, a * a + c * c, a * a + b * b]) * m / 12.0


def _capsule_inertia(radius: float, length: float) -> tuple[float, NDArray[np.float64]]:
    """Mass [kg] and (3, 3) inertia [kg m^2] about the centre of a solid capsule along x."""
    r, h = radius, length
    m_cyl = DENSITY_KG_M3 * math.pi * r * r * h
    m_sph = DENSITY_KG_M3 * 4.0 / 3.0 * math.pi * r ** 3  # the two hemispheres
    axial = m_cyl * r * r / 2.0 + m_sph * 2.0 * r * r / 5.0
    # Hemisphere centroids sit 3r/8 beyond the cylinder ends (parallel-axis theorem).
    perp = m_cyl * (h * h / 12.0 + r * r / 4.0) + m_sph * (2.0 * r * r / 5.0 + h * h / 4.0 + 3.0 * h * r / 8.0)
    return m_cyl + m_sph, np.diag([axial, perp, perp])


def _sphere_inertia(radius: float) -> tuple[float, NDArray[np.float64]]:
    m = DENSITY_KG_M3 * 4.0 / 3.0 * math.pi * radius ** 3
    return m, np.eye(3) * 0.4 * m * radius * radius


def _inside(s: _Shape, pts: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Which of the (N, 3) points lie inside the primitive."""
    d = pts - np.asarray(s.xyz)
    if s.kind == "box":
        return np.all(np.abs(d) <= np.asarray(s.size) / 2.0, axis=1)
    if s.kind == "sphere":
        return np.einsum("ij,ij->i", d, d) <= s.size[0] ** 2
    r, h = s.size
    d[:, 0] -= np.clip(d[:, 0], -h / 2.0, h / 2.0)
    return np.einsum("ij,ij->i", d, d) <= r * r


def _overlay_part(s: _Shape, below: Sequence[_Shape]) -> tuple[float, NDArray[np.float64], NDArray[np.float64]] | None:
    """Mass, centre of mass and inertia about it of the part of overlay ``s`` outside the
    primitives ``below``, sampled at the cell centres of a regular grid."""
    step = _OVERLAY_GRID_M
    half = (np.asarray(s.size) / 2.0 if s.kind == "box" else np.full(3, s.size[0]) if s.kind == "sphere"
            else np.array([s.size[1] / 2.0 + s.size[0], s.size[0], s.size[0]]))
    lo, hi = np.asarray(s.xyz) - half, np.asarray(s.xyz) + half
    axes = [np.arange(lo[k] + step / 2.0, hi[k], step) for k in range(3)]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    keep = _inside(s, pts)
    for b in below:
        keep &= ~_inside(b, pts)
    pts = pts[keep]
    if not len(pts):
        return None
    dm = DENSITY_KG_M3 * step ** 3
    com = pts.mean(axis=0)
    d = pts - com
    return dm * len(pts), com, dm * (np.einsum("ij,ij->", d, d) * np.eye(3) - d.T @ d)


def _mass_properties(shapes: Sequence[_Shape]) -> tuple[float, NDArray[np.float64], NDArray[np.float64]]:
    """Mass [kg], centre of mass (3,) [m] and (3, 3) inertia about it of a link's primitives.

    The unnamed primitives do not overlap: exact formulas. A named overlay (the thenar) lies
    partly inside them: only its part outside the primitives before it counts (grid-sampled)."""
    parts = []
    for i, s in enumerate(shapes):
        if s.name:
            part = _overlay_part(s, shapes[:i])
            if part is not None:
                parts.append(part)
            continue
        if s.kind == "box":
            m, inertia = _box_inertia(s.size)
        elif s.kind == "capsule":
            m, inertia = _capsule_inertia(*s.size)
        else:
            m, inertia = _sphere_inertia(s.size[0])
        parts.append((m, np.array(s.xyz, dtype=np.float64), inertia))
    mass = sum(m for m, _, _ in parts)
    com = sum(m * c for m, c, _ in parts) / mass
    total = np.zeros((3, 3))
    for m, c, inertia in parts:
        d = c - com
        total += inertia + m * (d @ d * np.eye(3) - np.outer(d, d))
    return mass, com, total


# ---------------------------------------------------------------------------- URDF writing
def _num(x: float) -> str:
    """Shortest repr that reads back to the same float (scale 1 reproduces the template exactly);
    rounding to 1e-12 m removes the last-bit noise of products such as 0.8 * 0.04769."""
    v = round(float(x), 12)
    return repr(v + 0.0)  # + 0.0 turns -0.0 into 0.0


def _vec(values: Sequence[float]) -> str:
    return " ".join(_num(v) for v in values)


def _sig(x: float) -> str:
    """Masses and inertias: 9 significant digits (not part of the kinematic contract)."""
    return f"{float(x):.9g}"


@dataclasses.dataclass
class _LinkOut:
    name: str
    shapes: list[_Shape]
    colour: str = "a"
    mass: tuple[float, float] | None = None  # (mass [kg], isotropic inertia [kg m^2]): massive shape-less links
    armature: NDArray[np.float64] | None = None  # (3, 3) [kg m^2] added by the joint that moves the link


def _principal_axes(inertia: NDArray[np.float64]) -> tuple[str, NDArray[np.float64]]:
    """The inertial frame's ``rpy`` and the inertia in it: unchanged (``"0 0 0"``) when the tensor
    is diagonal, else its principal axes and moments (links with an overlay or an armature). PyBullet
    diagonalises a full tensor itself, iteratively, and the link frames it then reports drift by
    ~1e-7 m / rad; principal axes written in the file are taken exactly."""
    off = inertia - np.diag(np.diag(inertia))
    if not off.any():
        return "0 0 0", inertia
    moments, axes = np.linalg.eigh(inertia)
    if np.linalg.det(axes) < 0:
        axes[:, 2] = -axes[:, 2]
    # URDF rpy: R = Rz(yaw) Ry(pitch) Rx(roll), the columns of R the principal axes.
    pitch = math.asin(max(-1.0, min(1.0, -axes[2, 0])))
    roll, yaw = math.atan2(axes[2, 1], axes[2, 2]), math.atan2(axes[1, 0], axes[0, 0])
    return " ".join(_num(v) for v in (roll, pitch, yaw)), np.diag(moments)


def _link_xml(link: _LinkOut) -> str:
    lines = [f'  <link name="{link.name}">']
    if link.shapes or link.mass is not None:
        if link.shapes:
            mass, com, inertia = _mass_properties(link.shapes)
        else:
            mass, com, inertia = link.mass[0], np.zeros(3), link.mass[1] * np.eye(3)
        rpy = "0 0 0"
        if link.armature is not None:
            inertia = inertia + link.armature
        if link.armature is not None or any(s.name for s in link.shapes):  # off the link's axes
            rpy, inertia = _principal_axes(inertia)
        lines.append(
            f'    <inertial><origin xyz="{_vec(com)}" rpy="{rpy}"/><mass value="{_sig(mass)}"/>'
            f'<inertia ixx="{_sig(inertia[0, 0])}" ixy="{_sig(inertia[0, 1])}" ixz="{_sig(inertia[0, 2])}" '
            f'iyy="{_sig(inertia[1, 1])}" iyz="{_sig(inertia[1, 2])}" izz="{_sig(inertia[2, 2])}"/></inertial>')
    else:  # tip frames: massless
        lines.append('    <inertial><origin xyz="0 0 0"/><mass value="0"/>'
                     '<inertia ixx="0" ixy="0" ixz="0" iyy="0" iyz="0" izz="0"/></inertial>')
    for tag in ("visual", "collision"):
        for s in link.shapes:
            if s.kind == "box":
                geom, rpy = f'<box size="{_vec(s.size)}"/>', (0.0, 0.0, 0.0)
            elif s.kind == "capsule":
                geom, rpy = f'<capsule radius="{_num(s.size[0])}" length="{_num(s.size[1])}"/>', _CAPSULE_RPY
            else:
                geom, rpy = f'<sphere radius="{_num(s.size[0])}"/>', (0.0, 0.0, 0.0)
            material = (f'<material name="{link.colour}"><color rgba="{_COLOURS[link.colour]}"/></material>'
                        if tag == "visual" else "")
            name = f' name="{s.name}"' if s.name else ""
            lines.append(f'    <{tag}{name}><origin xyz="{_vec(s.xyz)}" rpy="{" ".join(repr(v) for v in rpy)}"/>'
                         f'<geometry>{geom}</geometry>{material}</{tag}>')
    lines.append("  </link>")
    return "\n".join(lines)


def _joint_xml(j: _Joint) -> str:
    lines = [f'  <joint name="{j.name}" type="{j.type}">',
             f'    <parent link="{j.parent}"/><child link="{j.child}"/>',
             f'    <origin xyz="{_vec(j.xyz)}" rpy="{" ".join(repr(v + 0.0) for v in j.rpy)}"/>']
    if j.type != "fixed":
        # Angles and axes are written as read (repr round-trips): they do not scale.
        lines += [f'    <axis xyz="{" ".join(repr(v + 0.0) for v in j.axis)}"/>',
                  (f'    <limit lower="{j.lower!r}" upper="{j.upper!r}" effort="{_num(j.effort)}" '
                   f'velocity="{j.velocity!r}"/>'),
                  f'    <dynamics damping="{_num(j.damping)}" friction="{_num(j.friction)}"/>']
        if j.mimic is not None:
            lines.append(f'    <mimic joint="{j.mimic[0]}" multiplier="{j.mimic[1]!r}" offset="0"/>')
    lines.append("  </joint>")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- building
def _scaled(v: Sequence[float], s: float) -> tuple[float, ...]:
    return tuple(s * x for x in v)


def _mcp_gap(r_meta: float, r_prox: float, flex_max: float, abd_max: float, clearance: float) -> float:
    """How far [m] the 6-DoF thumb's metacarpal capsule ends before, and the proximal capsule
    starts after, the MCP so that the two clear each other by ``clearance``.

    With both capsule axes ending ``a`` from the joint and bent by ``alpha``, their end points
    are ``a * sqrt(2 + 2 cos(alpha))`` apart, the closest approach of the axes while
    ``cos(alpha) >= -1/2``; ``cos(alpha) = cos(flex) cos(abd)`` for abduction then flexion.
    """
    cos_alpha = math.cos(flex_max) * math.cos(abd_max)
    assert cos_alpha > -0.5, "MCP bend too large for the end-point clearance rule"
    return (r_meta + r_prox + clearance) / math.sqrt(2.0 + 2.0 * cos_alpha)


class _Builder:
    def __init__(self, tpl: _Template, prm: _Params) -> None:
        self.tpl, self.prm, self.s = tpl, prm, prm.scale
        self.links: list[_LinkOut] = []
        self.joints: list[_Joint] = []
        self.fingers: dict[str, dict[str, Any]] = {}
        self.regions: dict[str, dict[str, Any]] = {}

    # -- helpers
    def joint(self, template: str, *, type: str | None = None, parent: str | None = None, child: str | None = None,
              xyz: Sequence[float] | None = None, **changes: Any) -> _Joint:
        """The template joint ``template``, scaled, optionally made fixed, re-linked or renamed."""
        t = self.tpl.joints[template]
        s3 = self.s ** 3  # efforts and damping: see the module docstring
        j = dataclasses.replace(
            t, type=type or t.type, parent=parent or t.parent, child=child or t.child,
            xyz=tuple(xyz) if xyz is not None else _scaled(t.xyz, self.s),
            effort=t.effort * s3, damping=t.damping * s3, **changes)
        self.joints.append(j)
        return j

    def segment_region(self, finger: str, seg: str, link: str, length: float) -> None:
        t = self.tpl.meta["regions"][link]
        entry = {k: v for k, v in t.items() if k not in ("length", "center")}
        if "center" in t:
            entry["center"] = [self.s * c for c in t["center"]]
        entry["length"] = length
        self.regions[link] = entry

    def capsule_link(self, finger: str, seg: str, factor: float, colour: str, start: float = 0.0,
                     end_cut: float = 0.0) -> _LinkOut:
        """A segment's link: its capsule lengthened with the finger (``factor``) and scaled;
        ``start``/``end_cut`` [m, final] move the capsule's first/last cap centre inwards."""
        link = f"{finger}_{seg}"
        cap = self.tpl.capsule(link)
        length = self.tpl.length(link)
        radius, cyl = cap.size
        new_cyl = self.s * (cyl + (factor - 1.0) * length) - start - end_cut
        # Overlays (the thenar on the metacarpal) keep their place along the segment (x times the
        # finger's length factor) and their size (times scale).
        extra = [dataclasses.replace(o, xyz=(self.s * factor * o.xyz[0], self.s * o.xyz[1], self.s * o.xyz[2]),
                                     size=_scaled(o.size, self.s)) for o in self.tpl.overlays(link)]
        out = _LinkOut(link, [_Shape("capsule", (start + new_cyl / 2.0, 0.0, 0.0), (self.s * radius, new_cyl)),
                              *extra], colour)
        self.links.append(out)
        self.segment_region(finger, seg, link, self.s * factor * length)
        return out

    # -- parts
    def palm(self) -> None:
        palm = self.tpl.meta["palm_link"]
        shapes = [dataclasses.replace(b, xyz=_scaled(b.xyz, self.s), size=_scaled(b.size, self.s))
                  for b in self.tpl.shapes[palm]]
        self.links.append(_LinkOut(palm, shapes, "palm"))
        t = self.tpl.meta["regions"][palm]
        self.regions[palm] = {**t, "center": [self.s * c for c in t.get("center", (0, 0, 0))]}

    def thumb(self) -> None:
        dof, s = self.prm.thumb_dof, self.s
        f = self.prm.length_factor["thumb"]
        movable = set(_THUMB_KEEP_ORDER[:min(dof, 5)])
        kind = {j: ("revolute" if j in movable else "fixed") for j in _THUMB_JOINTS}
        for hub in ("thumb_cmc", "thumb_cmc2"):
            hub_mass, hub_i = self.tpl.own_inertia(hub)
            self.links.append(_LinkOut(hub, [], mass=(hub_mass * s ** 3, hub_i * s ** 5)))
        mcp_t = self.tpl.joints["thumb_mcp"]
        gap = 0.0
        if dof == 6:
            abd = math.radians(THUMB_MCP_ABD_LIMIT_DEG)
            gap = _mcp_gap(s * self.tpl.capsule("thumb_metacarpal").size[0],
                           s * self.tpl.capsule("thumb_proximal").size[0],
                           max(abs(mcp_t.lower), abs(mcp_t.upper)), abd, s * _MCP_CLEARANCE_M)
        self.capsule_link("thumb", "metacarpal", f, "a", end_cut=gap)
        if dof == 6:
            r_meta = s * self.tpl.capsule("thumb_metacarpal").size[0]
            self.links.append(_LinkOut("thumb_knuckle", [_Shape("sphere", (0.0, 0.0, 0.0), (r_meta,))], "a"))
        self.capsule_link("thumb", "proximal", f, "b", start=gap)
        self.capsule_link("thumb", "distal", f, "a")
        self.links.append(_LinkOut("thumb_tip", []))

        self.joint("thumb_cmc_abd", type=kind["thumb_cmc_abd"])
        self.joint("thumb_cmc_flex", type=kind["thumb_cmc_flex"])
        self.joint("thumb_cmc_roll", type=kind["thumb_cmc_roll"])
        mcp_xyz = (s * f * mcp_t.xyz[0], 0.0, 0.0)
        joints = [j for j in _THUMB_JOINTS if j in movable]
        if dof == 6:
            # The finger MCP abduction's effort, damping and velocity limit for the thumb's.
            self.joint("index_mcp_abd", parent="thumb_metacarpal", child="thumb_knuckle", xyz=mcp_xyz,
                       rpy=(0.0, 0.0, 0.0), axis=(0.0, 0.0, 1.0), lower=-abd, upper=abd, name="thumb_mcp_abd")
            self.joint("thumb_mcp", parent="thumb_knuckle", xyz=(0.0, 0.0, 0.0))
            joints = ["thumb_cmc_abd", "thumb_cmc_flex", "thumb_cmc_roll", "thumb_mcp_abd", "thumb_mcp", "thumb_ip"]
        else:
            self.joint("thumb_mcp", type=kind["thumb_mcp"], xyz=mcp_xyz)
        self.joint("thumb_ip", type=kind["thumb_ip"], xyz=(s * f * self.tpl.joints["thumb_ip"].xyz[0], 0.0, 0.0))
        self.tip_joint("thumb", f)
        self.fingers["thumb"] = {
            "segments": {seg: f"thumb_{seg}" for seg in _THUMB_SEGMENTS},
            "joints": joints,
            "tip_link": "thumb_tip",
        }

    def tip_joint(self, finger: str, f: float) -> None:
        t = self.tpl.joints[f"{finger}_tip_joint"]
        distal = self.tpl.length(f"{finger}_distal")
        # The tip keeps its place relative to the fingertip (the distal segment's far end).
        self.joint(f"{finger}_tip_joint", xyz=(self.s * (t.xyz[0] + (f - 1.0) * distal), self.s * t.xyz[1],
                                               self.s * t.xyz[2]))

    def finger(self, finger: str) -> None:
        s, f = self.s, self.prm.length_factor[finger]
        knuckle = f"{finger}_knuckle"
        box = self.tpl.box(knuckle)
        self.links.append(_LinkOut(knuckle, [_Shape("box", _scaled(box.xyz, s), _scaled(box.size, s))], "palm"))
        t = self.tpl.meta["regions"][knuckle]
        self.regions[knuckle] = {**t, "center": [s * c for c in t.get("center", (0, 0, 0))]}
        self.capsule_link(finger, "proximal", f, "a")
        self.capsule_link(finger, "middle", f, "b")
        self.capsule_link(finger, "distal", f, "a")
        self.links.append(_LinkOut(f"{finger}_tip", []))
        self.joint(f"{finger}_mcp_abd")
        self.joint(f"{finger}_mcp_flex")
        for j in ("pip", "dip"):
            t_j = self.tpl.joints[f"{finger}_{j}"]
            coupled = j == "dip" and self.prm.dip_coupling is not None
            self.joint(f"{finger}_{j}", type="fixed" if (j == "dip" and not self.prm.dip) else None,
                       xyz=(s * f * t_j.xyz[0], s * t_j.xyz[1], s * t_j.xyz[2]),
                       mimic=(f"{finger}_pip", self.prm.dip_coupling) if coupled else None)
        self.tip_joint(finger, f)
        joints = [f"{finger}_mcp_abd", f"{finger}_mcp_flex", f"{finger}_pip"] + ([f"{finger}_dip"] if self.prm.dip else [])
        self.fingers[finger] = {
            "segments": {seg: f"{finger}_{seg}" for seg in _FINGER_SEGMENTS},
            "joints": joints,
            "tip_link": f"{finger}_tip",
        }

    def build(self) -> tuple[str, dict[str, Any]]:
        self.palm()
        for digit in self.prm.digits:
            self.thumb() if digit == "thumb" else self.finger(digit)
        # The joint armature (v6): on every movable joint's child link, about the joint's axis
        # (a URDF axis is in the joint frame, which is the child link's frame).
        links = {link.name: link for link in self.links}
        for j in self.joints:
            if j.type != "fixed":
                links[j.child].armature = armature_inertia(JOINT_ARMATURE_KG_M2 * self.s ** 5, j.axis)
        # Region order of the default hand.json: palm, knuckles, then segments finger by finger.
        knuckles = [k for k in self.regions if k.endswith("_knuckle")]
        order = [self.tpl.meta["palm_link"], *knuckles,
                 *[k for k in self.regions if k != self.tpl.meta["palm_link"] and k not in knuckles]]
        meta: dict[str, Any] = {
            "schema": self.tpl.meta["schema"],
            "name": self.prm.name,
            "urdf": "hand.urdf",
            "palm_link": self.tpl.meta["palm_link"],
            "description": _description(self.prm),
            "fingers": {d: self.fingers[d] for d in self.prm.digits},
        }
        if "thumb" in self.prm.digits:
            meta["thumb_abduction"] = dict(self.tpl.meta["thumb_abduction"])
        meta["regions"] = {k: self.regions[k] for k in order}
        meta["pad_half_angle_deg"] = self.tpl.meta["pad_half_angle_deg"]
        meta["dorsal_half_angle_deg"] = self.tpl.meta["dorsal_half_angle_deg"]
        urdf = "\n".join([
            '<?xml version="1.0"?>',
            (f"<!-- {self.prm.name}: generated by handsim.handgen from {self.tpl.urdf_path.parent.name} "
             f"({_description(self.prm)}). Do not edit: regenerate. -->"),
            f'<robot name="{self.prm.name}">',
            *(_link_xml(link) for link in self.links),
            *(_joint_xml(j) for j in self.joints),
            "</robot>",
            "",
        ])
        return urdf, meta


def _description(prm: _Params) -> str:
    lengths = ", ".join(f"{d} x{prm.length_factor[d]:.4g}" for d in prm.digits if prm.length_factor[d] != 1.0)
    return (f"fingers={prm.fingers}, thumb_dof={prm.thumb_dof}, dip={prm.dip}"
            + ("" if prm.dip_coupling is None else f" (coupled: DIP = {prm.dip_coupling:g} x PIP)")
            + f", scale={prm.scale:g}"
            + (f", finger lengths {lengths} of default" if lengths else ""))


def _readme(prm: _Params, tpl: _Template, meta: Mapping[str, Any]) -> str:
    dof = sum(len(f["joints"]) for f in meta["fingers"].values())
    if prm.dip_coupling is not None:  # the DIPs are joints of their fingers, not actuated
        dof -= sum(1 for d in prm.digits if d != "thumb")
    return (
        f"# {prm.name}\n\n"
        f"Generated by `handsim.handgen.make_hand` (`handsim hand make`): {_description(prm)}; "
        f"{len(prm.digits)} digits ({', '.join(prm.digits)}), {dof} actuated joints.\n\n"
        f"Every number derives from `{tpl.urdf_path.parent.name}` (see its README.md for the sources) as the "
        "`handsim.handgen` module docstring describes: dropped joints are fixed at 0 rad, lengths scale with "
        "`scale`, efforts and damping with `scale**3`, masses are the primitives' volumes at "
        f"{DENSITY_KG_M3:g} kg/m^3, and each movable joint's child link carries a joint armature of "
        f"{JOINT_ARMATURE_KG_M2:g} kg m^2 x scale^5 about the joint axis. `grasps.json` is empty: every grasp type runs from the rest pose and "
        "fails with \"no grasp data\" until plans are authored.\n"
    )


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def make_hand(
    out_dir: str | os.PathLike[str],
    *,
    fingers: int = 5,
    thumb_dof: int = 5,
    dip: bool = True,
    dip_coupling: float | None = None,
    scale: float = 1.0,
    finger_lengths: Sequence[float] | None = None,
    name: str | None = None,
    force: bool = False,
) -> Path:
    """Write a generated hand folder: ``hand.urdf``, ``hand.json``, ``grasps.json``, ``README.md``.

    Args:
        out_dir: The folder to write (created with its parents; must be new or empty unless
            ``force``).
        fingers: 3, 4 or 5 digits, thumb included (5 = thumb + index..little; 4 drops the little
            finger, 3 drops ring and little).
        thumb_dof: 0 (no thumb) .. 6; 5 is the default hand's thumb, 4 fixes ``thumb_cmc_roll``
            at 0 rad (the v2 thumb), fewer fix joints from the tip side too, 6 adds
            ``thumb_mcp_abd``.
        dip: False fixes every DIP joint at 0 rad (middle and distal phalanx one rigid segment).
        dip_coupling: Couple each finger's DIP to its PIP, DIP = this x PIP (a URDF ``<mimic>``,
            in :data:`DIP_COUPLING_RANGE`; the thumb is not coupled): the DIPs stay joints of
            their fingers with their own motors, but are no longer commanded or planned, as in
            hands with a linkage-driven distal phalanx. None (default): independent DIPs.
        scale: Length factor in :data:`SCALE_RANGE` (masses go with ``scale**3``, efforts
            and damping ``scale**3``).
        finger_lengths: Total length [m] of each digit present, in :func:`finger_names` order
            (thumb from the CMC, fingers from the MCP, to the fingertip); None keeps the default
            proportions.
        name: The hand's name (``hand.json`` ``name`` and URDF robot name); default
            ``handgen_f<fingers>_t<thumb_dof>[_nodip][_dipc<coupling>]_s<scale>``.
        force: Write into an existing non-empty folder (only the four files are replaced;
            other files are left alone). A ``grasps.json`` holding plans is first copied to
            ``grasps.json.bak`` (or the next free ``grasps.json.bak.N``), and a line on stdout
            names the copy.

    Returns:
        The folder, resolved.

    Raises:
        ConfigurationError: A parameter out of range (the message names the valid range),
            ``out_dir`` is inside the package's ``models`` folder (the shipped hands, the default
            hand among them: the template of every generated hand), or ``out_dir`` exists and is
            not an empty folder (without ``force``).
        URDFError: The default hand's files could not be read as a template.
    """
    from handsim.data import is_inside, models_dir

    tpl = _read_template()
    prm = _check_params(tpl, fingers, thumb_dof, dip, scale, finger_lengths, name, dip_coupling)
    out = Path(out_dir)
    if is_inside(out, models_dir()):
        raise ConfigurationError(f"out_dir: {out} is inside the package's {models_dir()} (the shipped hands; the "
                                 "default hand there is the template of every generated hand); expected a folder "
                                 "elsewhere")
    if out.exists() and not out.is_dir():
        raise ConfigurationError(f"out_dir: expected a folder to write the hand into, got the file {out}")
    if out.is_dir() and any(out.iterdir()) and not force:
        entries = sorted(p.name for p in out.iterdir())
        raise ConfigurationError(
            f"out_dir: {out} is not empty ({', '.join(entries[:5])}{', ...' if len(entries) > 5 else ''}); "
            "expected a new or empty folder, or force=True (--force) to overwrite the hand files")
    urdf, meta = _Builder(tpl, prm).build()
    out.mkdir(parents=True, exist_ok=True)
    grasps, backup = out / "grasps.json", None
    if _holds_plans(grasps):  # plans written by hand or by handsim synth: never lost silently
        backup = free_backup_path(grasps)
        shutil.copy2(grasps, backup)  # before any file is replaced
    _write(out / "hand.urdf", urdf)
    _write(out / "hand.json", json.dumps(meta, indent=2) + "\n")
    _write(grasps, json.dumps({"schema": 1, "grasps": {}}, indent=2) + "\n")
    _write(out / "README.md", _readme(prm, tpl, meta))
    if backup is not None:
        print(f"{grasps} held grasp plans: kept as {backup} (the new {grasps.name} has none)")
    return out.resolve()


def _holds_plans(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` exists and is not the empty ``grasps.json`` :func:`make_hand` writes
    (a file that does not parse counts as holding plans: it is not ours to judge)."""
    path = Path(path)
    if not path.exists():
        return False
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return True
    return not (isinstance(raw, dict) and raw.get("grasps") == {})
