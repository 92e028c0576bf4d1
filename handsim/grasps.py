"""The 33-type GRASP taxonomy as data: loader, validation and registry (pure python).

Source: T. Feix, J. Romero, H.-B. Schmiedmayer, A. M. Dollar, D. Kragic, "The GRASP Taxonomy
of Human Grasp Types", IEEE Transactions on Human-Machine Systems 46(1):66-77, 2016.

One JSON file per grasp type lives in the shipped ``grasps/`` folder (found only through
:func:`handsim.data.grasps_dir`), named ``<number:02d>_<id>.json``. ``grasps/README.md``
documents the schema, the choice of test objects and the disputed table cells. Every file is
validated when loaded; any problem raises :class:`~handsim.errors.GraspDataError` naming the
file and the field path.

Registry::

    from handsim import grasps
    grasps.get("tip_pinch") is grasps.get(24) is grasps.get("24")
    [g.id for g in grasps.by_tag("power")]

Hand-specific data (the object's pose in the palm frame, pre-shape, closing targets) is not here: it lives with each
hand in ``models/<hand>/grasps.json``.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from handsim._io import DuplicateKeyError, loads_unique_keys
from handsim.data import grasps_dir
from handsim.errors import GraspDataError, UnknownNameError, suggest

__all__ = [
    "ALL_REGION_LABELS",
    "FINGER_NAMES",
    "FINGER_SEGMENTS",
    "GRASP_TYPES",
    "NUM_GRASPS",
    "OBJECT_SHAPES",
    "OPPOSITIONS",
    "REGION_KINDS",
    "SCHEMA_VERSION",
    "SIGNATURE_THUMB",
    "THUMB_POSITIONS",
    "Along",
    "GraspType",
    "Signature",
    "Taxonomy",
    "TestObject",
    "all_grasps",
    "by_tag",
    "default_taxonomy",
    "get",
    "ids",
    "load_taxonomy",
    "tags",
]

SCHEMA_VERSION = 1
NUM_GRASPS = 33

GRASP_TYPES = ("power", "intermediate", "precision")
OPPOSITIONS = ("palm", "pad", "side")
THUMB_POSITIONS = ("abducted", "adducted")
SIGNATURE_THUMB = ("abducted", "adducted", "any")

# The contact-region label grammar of models/README.md: ``<finger>.<segment>.<region>`` and
# ``palm.<region>``; ``tip`` exists only on a distal segment.
FINGER_NAMES = ("thumb", "index", "middle", "ring", "little")
FINGER_SEGMENTS: Mapping[str, tuple[str, ...]] = {
    "thumb": ("metacarpal", "proximal", "distal"),
    "index": ("proximal", "middle", "distal"),
    "middle": ("proximal", "middle", "distal"),
    "ring": ("proximal", "middle", "distal"),
    "little": ("proximal", "middle", "distal"),
}
REGION_KINDS = ("pad", "side", "dorsal", "tip")
_PALM_REGIONS = ("pad", "side", "dorsal")

# Shape -> its dimension fields (all metres); "size" is a 3-vector, the others scalars.
OBJECT_SHAPES: Mapping[str, tuple[str, ...]] = {
    "sphere": ("radius",),
    "cylinder": ("radius", "length"),
    "box": ("size",),
    "capsule": ("radius", "length"),
    "torus": ("major_radius", "minor_radius"),
}

_MAX_FRICTION = 2.0
_SLUG_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_FILE_RE = re.compile(r"^(\d{2})_([a-z][a-z0-9_]*)\.json$")

_TOP_REQUIRED = ("schema", "number", "id", "name", "type", "opposition", "vf2", "thumb", "tags",
                 "object", "signature")
_TOP_OPTIONAL = ("vf3", "notes")
_OBJECT_COMMON = ("shape", "mass", "friction", "description")
_SIGNATURE_FIELDS = ("required", "forbidden", "thumb", "rationale")
_SIGNATURE_OPTIONAL = ("along",)
_ALONG_FIELDS = ("finger", "max_angle_deg")


def _all_region_labels() -> tuple[str, ...]:
    labels = [f"palm.{r}" for r in _PALM_REGIONS]
    for finger, segments in FINGER_SEGMENTS.items():
        for seg in segments:
            for region in REGION_KINDS:
                if region != "tip" or seg == "distal":
                    labels.append(f"{finger}.{seg}.{region}")
    return tuple(labels)


#: Every label the grammar allows on a five-finger hand (a signature pattern must match one).
ALL_REGION_LABELS = _all_region_labels()


@dataclass(frozen=True)
class TestObject:
    """The object a person would naturally use for one grasp type.

    The object frame sits at the centre of mass; cylinder, capsule and torus axes run along z.

    Attributes:
        shape: One of :data:`OBJECT_SHAPES` (``sphere``, ``cylinder``, ``box``, ``capsule``,
            ``torus``).
        mass: Mass [kg].
        friction: Lateral friction coefficient [-].
        description: What the object stands for ("pen", "tennis ball", ...).
        radius: Sphere, cylinder or capsule radius [m] (None for other shapes).
        length: Cylinder length end to end, or capsule length tip to tip (>= 2 radius) [m]
            (the convention of :mod:`handsim.sim.objects`).
        size: Box full edge lengths (x, y, z) [m].
        major_radius: Torus radius from its axis to the tube centre [m].
        minor_radius: Torus tube radius [m].
    """

    __test__ = False  # the name starts with "Test"; keep pytest from collecting it

    shape: str
    mass: float
    friction: float
    description: str
    radius: float | None = None
    length: float | None = None
    size: tuple[float, float, float] | None = None
    major_radius: float | None = None
    minor_radius: float | None = None

    def as_spec(self) -> dict[str, Any]:
        """The object as a plain spec dict with only its shape's fields (for ``handsim.sim``).

        Returns:
            ``{"shape", <size fields>, "mass", "friction", "description"}``; ``size`` as a list.
        """
        spec: dict[str, Any] = {"shape": self.shape}
        for name in OBJECT_SHAPES[self.shape]:
            value = getattr(self, name)
            spec[name] = list(value) if name == "size" else value
        spec.update(mass=self.mass, friction=self.friction, description=self.description)
        return spec

    def half_extents(self) -> tuple[float, float, float]:
        """Half-extents of the object's axis-aligned bounding box in its own frame [m], (3,)."""
        if self.shape == "sphere":
            r = float(self.radius)  # type: ignore[arg-type]
            return (r, r, r)
        if self.shape == "cylinder":
            r, h = float(self.radius), float(self.length) / 2  # type: ignore[arg-type]
            return (r, r, h)
        if self.shape == "capsule":
            r = float(self.radius)  # type: ignore[arg-type]
            return (r, r, float(self.length) / 2)  # type: ignore[arg-type]
        if self.shape == "box":
            sx, sy, sz = self.size  # type: ignore[misc]
            return (sx / 2, sy / 2, sz / 2)
        outer = float(self.major_radius) + float(self.minor_radius)  # type: ignore[arg-type]
        return (outer, outer, float(self.minor_radius))  # type: ignore[arg-type]

    def long_axis(self) -> int | None:
        """The object-frame axis (0, 1 or 2 for x, y, z) of the object's longest extent, or None
        when no single axis is the longest (a sphere, a cube, a torus, a disk-like cylinder)."""
        half = self.half_extents()
        longest = max(half)
        axes = [i for i, h in enumerate(half) if h >= longest * (1.0 - 1e-9)]
        return axes[0] if len(axes) == 1 else None


@dataclass(frozen=True)
class Along:
    """A finger that must lie along the object's long axis (e.g. the index of index finger
    extension, VF3, on the top of the handle).

    The finger's direction is the line from the origin of its first segment's link (the joint
    next to the palm: the MCP of a finger, the CMC of the thumb) to its tip link; the object's
    long axis is :meth:`TestObject.long_axis`. The angle between the two lines (0-90 deg: a
    line has no sign) must not exceed ``max_angle_deg``.

    Attributes:
        finger: One of :data:`FINGER_NAMES`.
        max_angle_deg: Largest angle allowed [deg], in (0, 90].
    """

    finger: str
    max_angle_deg: float


@dataclass(frozen=True)
class Signature:
    """A hand-independent contact signature, written in contact-region label patterns.

    Patterns are :mod:`fnmatch` patterns over labels such as ``index.distal.tip`` or
    ``palm.pad`` (see models/README.md).

    Attributes:
        required: Groups of patterns; a group is satisfied when at least one contact carries a
            label matching one of its patterns. Every group must be satisfied.
        forbidden: Patterns no contact may match.
        thumb: ``"abducted"``, ``"adducted"`` or ``"any"``.
        rationale: One line saying where the signature comes from.
        along: Fingers whose direction must follow the object's long axis (:class:`Along`);
            empty for most types.
    """

    required: tuple[tuple[str, ...], ...]
    forbidden: tuple[str, ...]
    thumb: str
    rationale: str = ""
    along: tuple[Along, ...] = ()


@dataclass(frozen=True)
class GraspType:
    """One grasp type of the taxonomy.

    Attributes:
        number: The paper's number, 1..33.
        id: Stable slug (``tip_pinch``); the file is ``<number:02d>_<id>.json``.
        name: The paper's name ("Tip Pinch").
        type: ``power``, ``intermediate`` or ``precision``.
        opposition: ``palm``, ``pad`` or ``side``.
        vf2: Fingers of virtual finger 2 (those opposing the thumb or the palm).
        vf3: Fingers of virtual finger 3 when the table gives one, else empty.
        thumb: ``abducted`` or ``adducted``.
        tags: Registry tags (type, opposition, ``thumb_<position>``, ``object_<shape>``, ...).
        object: The test object.
        signature: The contact signature.
        notes: Free text (disputed cells, modelling choices); empty when none.
        source: The file the grasp was loaded from.
    """

    number: int
    id: str
    name: str
    type: str
    opposition: str
    vf2: tuple[str, ...]
    vf3: tuple[str, ...]
    thumb: str
    tags: tuple[str, ...]
    object: TestObject
    signature: Signature
    notes: str = ""
    source: Path | None = field(default=None, compare=False, repr=False)


# ----------------------------------------------------------------------------------------------
# Validation helpers: each raises GraspDataError "<file>: field '<path>': expected ..., got ...".


class _Checker:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, msg: str) -> GraspDataError:
        return GraspDataError(f"{self.path}: field {where!r}: {msg}")

    def fields(self, obj: Any, where: str, required: Sequence[str], optional: Sequence[str] = ()) -> dict:
        if not isinstance(obj, dict):
            raise self.fail(where, f"expected an object, got {type(obj).__name__}")
        # Unknown fields first: a misspelt field then gets a "did you mean" rather than "missing".
        extra = [k for k in obj if k not in required and k not in optional]
        if extra:
            valid = list(required) + list(optional)
            hints = [suggest(k, valid, "field") for k in extra]
            raise self.fail(where, "; ".join(hints))
        missing = [k for k in required if k not in obj]
        if missing:
            raise self.fail(where, f"missing field(s) {missing}; required: {list(required)}")
        return obj

    def string(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, f"expected a non-empty string, got {value!r}")
        return value

    def enum(self, value: Any, where: str, allowed: Sequence[str]) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise self.fail(where, f"expected one of {list(allowed)}, got {value!r}")
        return value

    def integer(self, value: Any, where: str, lo: int, hi: int) -> int:
        # bool is an int subclass; true/false is never a valid number here
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"expected an integer in {lo}..{hi}, got {value!r}")
        if not lo <= value <= hi:
            raise self.fail(where, f"expected an integer in {lo}..{hi}, got {value}")
        return value

    def number(self, value: Any, where: str, what: str, lo: float = 0.0, hi: float = math.inf,
               hi_inclusive: bool = True) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(where, f"expected a finite number ({what}), got {value!r}")
        ok = value > lo and (value <= hi if hi_inclusive else value < hi)
        if not ok:
            upper = f" and <= {hi}" if math.isfinite(hi) else ""
            raise self.fail(where, f"expected {what} > {lo}{upper}, got {value}")
        return float(value)

    def name_list(
        self, value: Any, where: str, allowed: Sequence[str], allow_empty: bool = False
    ) -> tuple[str, ...]:
        if not isinstance(value, list) or (not value and not allow_empty):
            raise self.fail(where, f"expected a {'' if allow_empty else 'non-empty '}list, got {value!r}")
        out = tuple(self.enum(v, f"{where}[{i}]", allowed) for i, v in enumerate(value))
        if len(set(out)) != len(out):
            raise self.fail(where, f"expected no duplicates, got {list(out)}")
        return out

    def pattern(self, value: Any, where: str) -> str:
        pat = self.string(value, where)
        if not any(fnmatch.fnmatchcase(label, pat) for label in ALL_REGION_LABELS):
            raise self.fail(
                where,
                f"pattern {pat!r} matches no contact-region label (grammar "
                "'<finger>.<segment>.<pad|side|dorsal|tip>' or 'palm.<pad|side|dorsal>'); "
                + suggest(pat, ALL_REGION_LABELS, "label"),
            )
        return pat


def _parse_object(c: _Checker, raw: Any) -> TestObject:
    every_dim = tuple(f for fs in OBJECT_SHAPES.values() for f in fs)
    c.fields(raw, "object", ("shape",), _OBJECT_COMMON + every_dim)
    shape = c.enum(raw["shape"], "object.shape", tuple(OBJECT_SHAPES))
    c.fields(raw, "object", _OBJECT_COMMON + OBJECT_SHAPES[shape])
    dims: dict[str, Any] = {}
    for name in OBJECT_SHAPES[shape]:
        where = f"object.{name}"
        if name == "size":
            v = raw[name]
            if not isinstance(v, list) or len(v) != 3:
                raise c.fail(where, f"expected [x, y, z] box edge lengths [m], got {v!r}")
            dims[name] = tuple(c.number(x, f"{where}[{i}]", "a positive length [m]") for i, x in enumerate(v))
        else:
            dims[name] = c.number(raw[name], where, "a positive length [m]")
    if shape == "capsule" and dims["length"] < 2 * dims["radius"]:
        raise c.fail(
            "object.length",
            f"expected a capsule length tip to tip >= 2 * radius = {2 * dims['radius']}, got {dims['length']}",
        )
    if shape == "torus" and dims["minor_radius"] >= dims["major_radius"]:
        raise c.fail(
            "object.minor_radius",
            f"expected < major_radius {dims['major_radius']} (a ring with a hole), got {dims['minor_radius']}",
        )
    return TestObject(
        shape=shape,
        mass=c.number(raw["mass"], "object.mass", "a positive mass [kg]"),
        friction=c.number(raw["friction"], "object.friction", "a friction coefficient", 0.0, _MAX_FRICTION),
        description=c.string(raw["description"], "object.description"),
        **dims,
    )


def _parse_along(c: _Checker, raw: Any, obj: TestObject) -> tuple[Along, ...]:
    if not isinstance(raw, list) or not raw:
        raise c.fail("signature.along", f"expected a non-empty list of {{finger, max_angle_deg}} objects, got {raw!r}")
    out = []
    for i, entry in enumerate(raw):
        where = f"signature.along[{i}]"
        c.fields(entry, where, _ALONG_FIELDS)
        out.append(Along(
            finger=c.enum(entry["finger"], f"{where}.finger", FINGER_NAMES),
            max_angle_deg=c.number(entry["max_angle_deg"], f"{where}.max_angle_deg", "an angle in degrees", 0.0, 90.0),
        ))
    fingers = [a.finger for a in out]
    if len(set(fingers)) != len(fingers):
        raise c.fail("signature.along", f"expected each finger once, got {fingers}")
    if obj.long_axis() is None:
        raise c.fail("signature.along", f"the object ({obj.shape}, half-extents {obj.half_extents()} m) has no single "
                     "longest axis for a finger to lie along; 'along' needs a box with one longest edge, or a "
                     "cylinder or capsule longer than it is wide")
    return tuple(out)


def _parse_signature(c: _Checker, raw: Any, obj: TestObject) -> Signature:
    c.fields(raw, "signature", _SIGNATURE_FIELDS, _SIGNATURE_OPTIONAL)
    groups_raw = raw["required"]
    if not isinstance(groups_raw, list) or not groups_raw:
        raise c.fail("signature.required", f"expected a non-empty list of pattern groups, got {groups_raw!r}")
    groups = []
    for g, group in enumerate(groups_raw):
        if not isinstance(group, list) or not group:
            raise c.fail(f"signature.required[{g}]", f"expected a non-empty list of patterns, got {group!r}")
        groups.append(tuple(c.pattern(p, f"signature.required[{g}][{i}]") for i, p in enumerate(group)))
    forb_raw = raw["forbidden"]
    if not isinstance(forb_raw, list):
        raise c.fail("signature.forbidden", f"expected a list of patterns, got {forb_raw!r}")
    forbidden = tuple(c.pattern(p, f"signature.forbidden[{i}]") for i, p in enumerate(forb_raw))
    return Signature(
        required=tuple(groups),
        forbidden=forbidden,
        thumb=c.enum(raw["thumb"], "signature.thumb", SIGNATURE_THUMB),
        rationale=c.string(raw["rationale"], "signature.rationale"),
        along=_parse_along(c, raw["along"], obj) if "along" in raw else (),
    )


def _parse_grasp(path: Path) -> GraspType:
    c = _Checker(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GraspDataError(f"{path}: cannot read: {exc}") from exc
    try:
        raw = loads_unique_keys(text)
    except json.JSONDecodeError as exc:
        raise GraspDataError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    except DuplicateKeyError as exc:
        raise GraspDataError(f"{path}: {exc}") from None
    c.fields(raw, "<top>", _TOP_REQUIRED, _TOP_OPTIONAL)
    if raw["schema"] != SCHEMA_VERSION or isinstance(raw["schema"], bool):
        raise c.fail("schema", f"expected {SCHEMA_VERSION}, got {raw['schema']!r}")
    number = c.integer(raw["number"], "number", 1, NUM_GRASPS)
    gid = c.string(raw["id"], "id")
    if not _SLUG_RE.match(gid):
        raise c.fail("id", f"expected a lower-case slug [a-z][a-z0-9_]*, got {gid!r}")
    expected_name = f"{number:02d}_{gid}.json"
    if path.name != expected_name:
        raise c.fail("id", f"file name must be '<number:02d>_<id>.json' = {expected_name!r}, got {path.name!r}")
    thumb = c.enum(raw["thumb"], "thumb", THUMB_POSITIONS)
    gtype = c.enum(raw["type"], "type", GRASP_TYPES)
    opposition = c.enum(raw["opposition"], "opposition", OPPOSITIONS)
    tag_list = raw["tags"]
    if not isinstance(tag_list, list):
        raise c.fail("tags", f"expected a list of tags, got {tag_list!r}")
    tags = []
    for i, t in enumerate(tag_list):
        if not isinstance(t, str) or not _SLUG_RE.match(t):
            raise c.fail(f"tags[{i}]", f"expected a lower-case tag [a-z][a-z0-9_]*, got {t!r}")
        tags.append(t)
    if len(set(tags)) != len(tags):
        raise c.fail("tags", f"expected no duplicates, got {tags}")
    # The type/opposition/thumb tags are what by_tag() users rely on: keep them in step.
    for needed in (gtype, opposition, f"thumb_{thumb}"):
        if needed not in tags:
            raise c.fail("tags", f"expected the tag {needed!r} (from type/opposition/thumb), got {tags}")
    obj = _parse_object(c, raw["object"])
    signature = _parse_signature(c, raw["signature"], obj)
    if signature.thumb not in (thumb, "any"):
        raise c.fail("signature.thumb", f"expected {thumb!r} (the thumb column) or 'any', got {signature.thumb!r}")
    notes = raw.get("notes", "")
    if not isinstance(notes, str):
        raise c.fail("notes", f"expected a string, got {notes!r}")
    return GraspType(
        number=number,
        id=gid,
        name=c.string(raw["name"], "name"),
        type=gtype,
        opposition=opposition,
        vf2=c.name_list(raw["vf2"], "vf2", FINGER_NAMES),
        vf3=c.name_list(raw.get("vf3", []), "vf3", FINGER_NAMES, allow_empty="vf3" not in raw),
        thumb=thumb,
        tags=tuple(tags),
        object=obj,
        signature=signature,
        notes=notes,
        source=path,
    )


# ----------------------------------------------------------------------------------------------
# Registry


class Taxonomy:
    """A validated set of grasp types, looked up by id, number or tag.

    Built by :func:`load_taxonomy`; immutable after construction.
    """

    def __init__(self, grasps: Sequence[GraspType], folder: Path) -> None:
        self.folder = folder
        self._grasps = tuple(sorted(grasps, key=lambda g: g.number))
        self._by_id = {g.id: g for g in self._grasps}
        self._by_number = {g.number: g for g in self._grasps}
        tag_map: dict[str, list[GraspType]] = {}
        for g in self._grasps:
            for t in g.tags:
                tag_map.setdefault(t, []).append(g)
        self._by_tag = {t: tuple(gs) for t, gs in tag_map.items()}

    def __len__(self) -> int:
        return len(self._grasps)

    def __iter__(self) -> Iterator[GraspType]:
        return iter(self._grasps)

    def __contains__(self, key: object) -> bool:
        try:
            self.get(key)  # type: ignore[arg-type]
        except UnknownNameError:
            return False
        return True

    def __repr__(self) -> str:
        return f"Taxonomy({len(self)} grasps from {self.folder})"

    def get(self, key: str | int) -> GraspType:
        """Look a grasp up by id (``"tip_pinch"``), number (``24``) or number string (``"24"``).

        Raises:
            UnknownNameError: For an unknown id or number, with close matches.
        """
        if isinstance(key, bool):
            raise UnknownNameError(f"unknown grasp {key!r}: expected an id or a number 1..{NUM_GRASPS}")
        if isinstance(key, str) and key.strip().isdigit():
            key = int(key.strip())
        if isinstance(key, int):
            if key in self._by_number:
                return self._by_number[key]
            raise UnknownNameError(
                f"unknown grasp number {key}; valid: {min(self._by_number)}..{max(self._by_number)}"
            )
        if isinstance(key, str):
            if key in self._by_id:
                return self._by_id[key]
            raise UnknownNameError(suggest(key, self._by_id, "grasp"))
        raise UnknownNameError(f"unknown grasp {key!r}: expected an id (str) or a number (int), "
                               f"got {type(key).__name__}")

    def all(self) -> tuple[GraspType, ...]:
        """Every grasp, in number order."""
        return self._grasps

    def ids(self) -> tuple[str, ...]:
        """Every grasp id, in number order."""
        return tuple(g.id for g in self._grasps)

    def tags(self) -> tuple[str, ...]:
        """Every tag used by some grasp, sorted."""
        return tuple(sorted(self._by_tag))

    def by_tag(self, tag: str) -> tuple[GraspType, ...]:
        """The grasps carrying ``tag``, in number order.

        Raises:
            UnknownNameError: If no grasp carries the tag, with close matches.
        """
        if tag not in self._by_tag:
            raise UnknownNameError(suggest(tag, self._by_tag, "grasp tag"))
        return self._by_tag[tag]


def load_taxonomy(folder: str | Path | None = None) -> Taxonomy:
    """Load and validate every grasp file of a folder.

    Args:
        folder: A folder of ``<number:02d>_<id>.json`` files; None for the shipped taxonomy
            (:func:`handsim.data.grasps_dir`). Files not ending in ``.json`` are ignored.

    Returns:
        The taxonomy. The shipped one is cached: use :func:`default_taxonomy` for it.

    Raises:
        GraspDataError: On any malformed file, a duplicate number or id, or when numbers
            1..33 are not all present.
        DataNotFoundError: If the shipped folder cannot be found.
    """
    path = grasps_dir() if folder is None else Path(folder)
    if not path.is_dir():
        raise GraspDataError(f"{path}: not a folder of grasp files")
    files = sorted(p for p in path.iterdir() if p.suffix == ".json" and p.is_file())
    grasps: list[GraspType] = []
    seen_numbers: dict[int, Path] = {}
    seen_ids: dict[str, Path] = {}
    for f in files:
        if not _FILE_RE.match(f.name):
            raise GraspDataError(f"{f}: file name must be '<number:02d>_<id>.json' (e.g. '24_tip_pinch.json')")
        g = _parse_grasp(f)
        if g.number in seen_numbers:
            raise GraspDataError(
                f"{f}: field 'number': duplicate number {g.number} (also in {seen_numbers[g.number]})"
            )
        if g.id in seen_ids:
            raise GraspDataError(f"{f}: field 'id': duplicate id {g.id!r} (also in {seen_ids[g.id]})")
        seen_numbers[g.number] = f
        seen_ids[g.id] = f
        grasps.append(g)
    missing = sorted(set(range(1, NUM_GRASPS + 1)) - set(seen_numbers))
    if missing:
        raise GraspDataError(
            f"{path}: field 'number': grasp numbers {missing} missing; expected all of 1..{NUM_GRASPS}"
        )
    return Taxonomy(grasps, path)


@functools.cache
def default_taxonomy() -> Taxonomy:
    """The shipped taxonomy, loaded and validated once (cached)."""
    return load_taxonomy(None)


def get(key: str | int) -> GraspType:
    """Look a shipped grasp up by id, number or number string; see :meth:`Taxonomy.get`."""
    return default_taxonomy().get(key)


def all_grasps() -> tuple[GraspType, ...]:
    """Every shipped grasp, in number order."""
    return default_taxonomy().all()


def by_tag(tag: str) -> tuple[GraspType, ...]:
    """The shipped grasps carrying ``tag``, in number order; see :meth:`Taxonomy.by_tag`."""
    return default_taxonomy().by_tag(tag)


def ids() -> tuple[str, ...]:
    """Every shipped grasp id, in number order."""
    return default_taxonomy().ids()


def tags() -> tuple[str, ...]:
    """Every tag used by the shipped grasps, sorted."""
    return default_taxonomy().tags()
