"""URDF checks done before any physics: mesh files, inertials, and files that are not URDF.

One resolver, :func:`resolve_mesh_filename`, finds a ``<mesh filename>`` the way PyBullet's URDF
importer does (bullet3 ``UrdfFindMeshFile``: drop a ``package://``, ``model://`` or ``file://``
prefix, then try the rest relative to the URDF's folder and to each of its ancestor folders).
The load-time check (:func:`check_urdf_assets`, called by ``handsim.hand._read_urdf``), the
physics copy (``handsim.sim.hand._physics_urdf``, which writes the resolved absolute paths) and
the results hash (``handsim.bench.runner.hand_files_sha256``) all use it, so a file the check
accepts is the file PyBullet loads and the file the hash covers.

Pure python (xml + numpy); trimesh is imported only to measure collision meshes. No PyBullet.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from handsim.errors import URDFError

__all__ = [
    "MAX_COLLISION_MESH_EXTENT_M",
    "MESH_EXTENSIONS",
    "PYBULLET_PRIMITIVE_MARGIN_M",
    "MeshRef",
    "check_inertials",
    "check_link_numbers",
    "check_not_xacro",
    "check_urdf_assets",
    "margin_half_thickness",
    "mesh_files_sha256",
    "mesh_references",
    "resolve_mesh_filename",
    "thin_collision_primitives",
]

#: URI prefixes PyBullet drops from a mesh filename before looking the rest up.
_SCHEMES = ("package://", "model://", "file://")
#: Mesh file types PyBullet's URDF importer reads (lower-case suffix; the case of the file's
#: suffix does not matter to it).
MESH_EXTENSIONS: tuple[str, ...] = (".stl", ".obj", ".dae")
#: A collision mesh whose axis-aligned extent (after ``scale``) exceeds this [m] is not a hand
#: part: almost always a mesh exported in millimetres without ``scale="0.001 0.001 0.001"``.
MAX_COLLISION_MESH_EXTENT_M = 0.5
# Principal moments may break the triangle inequality by this fraction of their sum (float
# noise of the eigen-decomposition only): PyBullet zeroes an inertia that breaks it by 1e-15
# relative (measured on pybullet 3.2.x), so no tolerance for export rounding can be given.
_TRIANGLE_RTOL = 1e-12
_XACRO_NAMESPACES = ("{http://www.ros.org/wiki/xacro}", "{http://ros.org/wiki/xacro}")


@dataclasses.dataclass(frozen=True)
class MeshRef:
    """One ``<mesh>`` of a URDF link and where its file was found.

    Attributes:
        link: The link's name.
        kind: ``"visual"`` or ``"collision"``.
        filename: The ``filename`` attribute as written.
        scale: The ``scale`` attribute, (3,) [-] (1, 1, 1 if absent).
        path: The file found (absolute), or ``None``.
        tried: Every path looked at, in order.
    """

    link: str
    kind: str
    filename: str
    scale: tuple[float, float, float]
    path: Path | None
    tried: tuple[Path, ...]


def resolve_mesh_filename(filename: str, urdf_path: Path) -> tuple[Path | None, tuple[Path, ...]]:
    """Find a URDF mesh file the way PyBullet does.

    A ``package://``, ``model://`` or ``file://`` prefix is dropped (so ``package://NAME/rest``
    becomes ``NAME/rest``); an absolute rest is taken as is, a relative one is looked up in the
    URDF's folder and then in each ancestor folder (the folder above a ROS package, say, holds
    ``NAME/``). PyBullet also tries the process's working directory last; that is left out
    here so that whether a hand loads does not depend on where it is run from.

    Args:
        filename: The ``<mesh filename>`` attribute.
        urdf_path: The URDF file it appears in.

    Returns:
        The absolute path of the first existing file (or ``None``) and every path tried.
    """
    rest = filename
    for scheme in _SCHEMES:
        if rest.startswith(scheme):
            rest = rest[len(scheme):]
            break
    rel = Path(rest)
    if rel.is_absolute():
        candidates = [rel]
    else:
        folder = Path(urdf_path).resolve().parent
        candidates = [base / rel for base in (folder, *folder.parents)]
    for i, candidate in enumerate(candidates):
        if candidate.is_file():
            return candidate, tuple(candidates[:i + 1])
    return None, tuple(candidates)


def _scale(mesh: ET.Element, where: str) -> tuple[float, float, float]:
    text = mesh.get("scale")
    if text is None:
        return (1.0, 1.0, 1.0)
    try:
        values = [float(v) for v in text.split()]
    except ValueError:
        values = []
    if len(values) != 3 or not all(math.isfinite(v) and v != 0 for v in values):
        raise URDFError(f"{where}: <mesh scale> expected 3 finite non-zero numbers, got {text!r}")
    return (values[0], values[1], values[2])


def mesh_references(root: ET.Element, urdf_path: Path, kinds: Sequence[str] = ("collision", "visual")) -> list[MeshRef]:
    """Every ``<mesh>`` in the links' ``kinds`` elements, resolved (document order).

    Args:
        root: The URDF's ``<robot>`` element.
        urdf_path: The URDF file (mesh names are relative to it).
        kinds: Which link elements to read: ``"collision"`` and/or ``"visual"``.

    Raises:
        URDFError: A ``<mesh>`` has no ``filename`` or a malformed ``scale``.
    """
    out = []
    for link in root.findall("link"):
        name = link.get("name", "")
        for kind in kinds:
            for element in link.findall(kind):
                for mesh in element.findall("geometry/mesh"):
                    where = f"{urdf_path}: link {name!r} <{kind}>"
                    filename = mesh.get("filename")
                    if not filename:
                        raise URDFError(f"{where}: <mesh> needs a filename attribute")
                    path, tried = resolve_mesh_filename(filename, urdf_path)
                    out.append(MeshRef(name, kind, filename, _scale(mesh, where), path, tried))
    return out


def _tried(ref: MeshRef) -> str:
    if len(ref.tried) <= 5:
        return "; ".join(str(p) for p in ref.tried)
    return "; ".join([*(str(p) for p in ref.tried[:3]), f"... ({len(ref.tried) - 4} more folders up)",
                      str(ref.tried[-1])])


def check_mesh_files(refs: Iterable[MeshRef], urdf_path: Path) -> None:
    """Every mesh resolved to an existing file of a type PyBullet reads.

    Raises:
        URDFError: Naming the URDF, the link, visual or collision, the filename and the paths
            tried (or the suffix and the types PyBullet reads).
    """
    for ref in refs:
        where = f"{urdf_path}: link {ref.link!r} <{ref.kind}> mesh {ref.filename!r}"
        if ref.path is None:
            hint = ("" if ref.kind == "collision" else
                    " (PyBullet refuses a URDF with a missing visual mesh too, even when it loads no visuals)")
            raise URDFError(f"{where}: file not found{hint}; tried {_tried(ref)}")
        if ref.path.suffix.lower() not in MESH_EXTENSIONS:
            raise URDFError(f"{where}: PyBullet reads only {', '.join(MESH_EXTENSIONS)} meshes, got "
                            f"{ref.path.suffix!r} (convert it, e.g. with trimesh)")


@functools.lru_cache(maxsize=256)
def _mesh_bounds(path: str, mtime_ns: int, size: int) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    # Keyed on modification time and size too: an edited mesh is measured again.
    try:
        import trimesh
    except ImportError:  # the extent check is a courtesy: without trimesh it is skipped
        return None
    try:
        mesh = trimesh.load(path, force="mesh", process=False)
        lo, hi = np.asarray(mesh.bounds, dtype=np.float64)
    except Exception:  # noqa: BLE001 - e.g. a .dae without pycollada: PyBullet may still read it
        return None
    return tuple(lo.tolist()), tuple(hi.tolist())


def check_collision_mesh_extents(refs: Iterable[MeshRef], urdf_path: Path,
                                 max_extent: float = MAX_COLLISION_MESH_EXTENT_M) -> None:
    """No collision mesh is larger than ``max_extent`` along any axis after its ``scale``.

    Raises:
        URDFError: Naming the link, the file, the extent and the likely fix (meshes in mm).
    """
    for ref in refs:
        if ref.kind != "collision" or ref.path is None:
            continue
        stat = ref.path.stat()
        bounds = _mesh_bounds(str(ref.path), stat.st_mtime_ns, stat.st_size)
        if bounds is None:
            continue
        extent = (np.asarray(bounds[1]) - np.asarray(bounds[0])) * np.abs(np.asarray(ref.scale))
        if float(extent.max()) > max_extent:
            dims = " x ".join(f"{e:.3g}" for e in extent)
            raise URDFError(f"{urdf_path}: link {ref.link!r} <collision> mesh {ref.filename!r} is {dims} m "
                            f"(scale {' '.join(f'{s:g}' for s in ref.scale)}), more than {max_extent:g} m: "
                            "a mesh in millimetres needs scale=\"0.001 0.001 0.001\" on its <mesh>")


def check_urdf_assets(root: ET.Element, urdf_path: Path) -> list[MeshRef]:
    """The load-time asset check: every ``<collision>`` and ``<visual>`` mesh exists and is of
    a type PyBullet reads, and no collision mesh exceeds :data:`MAX_COLLISION_MESH_EXTENT_M`.

    Args:
        root: The URDF's ``<robot>`` element.
        urdf_path: The URDF file.

    Returns:
        The resolved meshes.

    Raises:
        URDFError: The first problem, naming the link, visual or collision, the file and the
            paths tried.
    """
    refs = mesh_references(root, urdf_path)
    check_mesh_files(refs, urdf_path)
    check_collision_mesh_extents(refs, urdf_path)
    return refs


def mesh_files_sha256(urdf_path: Path) -> str | None:
    """SHA-256 (hex) over the URDF's resolved mesh files (sorted paths and their bytes), or
    ``None`` if it uses no mesh files or cannot be parsed (a missing file hashes as missing)."""
    try:
        root = ET.parse(urdf_path).getroot()
        refs = mesh_references(root, Path(urdf_path))
    except (ET.ParseError, URDFError, OSError):
        return None
    files = sorted({str(r.path) if r.path is not None else f"<missing {r.filename}>" for r in refs})
    if not files:
        return None
    h = hashlib.sha256()
    for name in files:
        h.update(name.encode("utf-8") + b"\0")
        path = Path(name)
        h.update(path.read_bytes() if path.is_file() else b"<missing>")
        h.update(b"\0")
    return h.hexdigest()


# ---------------------------------------------------------------------------- inertials
def _attr(element: ET.Element | None, key: str, where: str) -> float:
    text = None if element is None else element.get(key)
    if text is None:
        return 0.0  # the URDF default of every <mass>/<inertia> attribute
    try:
        return float(text)
    except ValueError:
        raise URDFError(f"{where}: attribute {key!r} must be a number, got {text!r}") from None


def check_inertials(root: ET.Element, urdf_path: Path) -> None:
    """Every link that moves or collides has a physical ``<inertial>``.

    A link with ``<collision>`` geometry or on a movable joint (revolute, continuous,
    prismatic) needs an ``<inertial>`` with a finite mass > 0 [kg] and an inertia [kg m^2]
    whose principal moments are positive and satisfy the triangle inequalities
    (I1 + I2 >= I3). Without one PyBullet silently gives the link 1 kg and 1 kg m^2; an inertia
    that breaks the rules it silently replaces by zero. Other links (frames: no collision, on
    a fixed joint) may omit it or give mass 0, but a mass they give must be finite and >= 0,
    and a positive one needs a valid inertia too.

    Raises:
        URDFError: Naming the link, the value and what PyBullet would otherwise do.
    """
    moving = {(j.find("child").get("link") if j.find("child") is not None else None)
              for j in root.findall("joint") if j.get("type") in ("revolute", "continuous", "prismatic")}
    for link in root.findall("link"):
        name = link.get("name", "")
        required = link.find("collision") is not None or name in moving
        why = "it has collision geometry" if link.find("collision") is not None else "it is on a movable joint"
        where = f"{urdf_path}: link {name!r}"
        inertial = link.find("inertial")
        if inertial is None:
            if required:
                raise URDFError(f"{where}: no <inertial> element, but {why}; PyBullet would silently give it "
                                "a mass of 1 kg and an inertia of 1 kg m^2 (add <inertial> with <mass> and "
                                "<inertia>)")
            continue
        mass = _attr(inertial.find("mass"), "value", f"{where} <inertial><mass>")
        if not math.isfinite(mass) or mass < 0 or (required and mass == 0):
            got = "no <mass> (0)" if inertial.find("mass") is None else f"{mass:g}"
            raise URDFError(f"{where}: <inertial><mass> expected a finite mass > 0 [kg]"
                            f"{' (' + why + ')' if required else ''}, got {got}")
        if mass == 0:
            continue
        el = inertial.find("inertia")
        w = f"{where} <inertial><inertia>"
        ixx, iyy, izz, ixy, ixz, iyz = (_attr(el, k, w) for k in ("ixx", "iyy", "izz", "ixy", "ixz", "iyz"))
        values = {"ixx": ixx, "iyy": iyy, "izz": izz, "ixy": ixy, "ixz": ixz, "iyz": iyz}
        shown = " ".join(f"{k}={v:g}" for k, v in values.items())
        if not all(math.isfinite(v) for v in values.values()):
            raise URDFError(f"{w}: expected finite values, got {shown}")
        moments = np.linalg.eigvalsh(np.array([[ixx, ixy, ixz], [ixy, iyy, iyz], [ixz, iyz, izz]]))
        total = float(moments.sum())
        listed = ", ".join(f"{m:.10g}" for m in moments)
        if moments.min() < 0:
            raise URDFError(f"{w}: expected a positive-definite inertia [kg m^2], got {shown} (principal "
                            f"moments {listed}); PyBullet would silently replace it by zero")
        if not moments.min() > 0:
            raise URDFError(f"{w}: expected a positive-definite inertia [kg m^2], got {shown} (principal "
                            f"moments {listed}): a zero moment (a massless rod or point), which PyBullet keeps "
                            "but cannot integrate about that axis; give the link its real inertia")
        excess = 2 * float(moments.max()) - total  # I3 - (I1 + I2) for the largest I3
        if excess > _TRIANGLE_RTOL * total:
            raise URDFError(f"{w}: principal moments {listed} break the triangle inequality by {excess:.3g} "
                            f"(the two smaller must sum to at least the largest: no mass distribution has them), "
                            f"got {shown}; PyBullet would silently replace it by zero: raise the two smaller "
                            f"moments, or lower the largest, by {excess:.3g}")


# ---------------------------------------------------------------------------- geometry and joint numbers
#: A primitive's size attributes, each with whether it may be 0 (a capsule of length 0 is a ball).
_PRIMITIVE_SIZES: dict[str, tuple[tuple[str, bool], ...]] = {
    "box": (("size", False),), "sphere": (("radius", False),),
    "cylinder": (("radius", False), ("length", False)), "capsule": (("radius", False), ("length", True)),
}
#: PyBullet's ``<contact>`` extension: each child element's ``value`` must be finite and >= 0.
_CONTACT_VALUES = ("lateral_friction", "rolling_friction", "spinning_friction", "stiffness", "damping",
                   "restitution", "contact_cfm", "contact_erp")


def _numbers(element: ET.Element, key: str, count: int, where: str) -> list[float] | None:
    """The ``count`` numbers of an attribute (None when it is absent), or a URDFError."""
    text = element.get(key)
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split()]
    except ValueError:
        values = []
    if len(values) != count or not all(math.isfinite(v) for v in values):
        raise URDFError(f"{where}: attribute {key!r} expected {f'{count} finite numbers' if count > 1 else 'a finite number'}, "
                        f"got {text!r}")
    return values


#: PyBullet's collision margin of box and cylinder shapes [m] (see ``handsim.sim.objects``).
PYBULLET_PRIMITIVE_MARGIN_M = 0.001


def margin_half_thickness(shape: str, size: Sequence[float] = (), radius: float = 0.0, length: float = 0.0) -> float | None:
    """Half the thinnest dimension of a box (``size``) or cylinder (``radius``, ``length``) [m],
    the shapes PyBullet shrinks by ``PYBULLET_PRIMITIVE_MARGIN_M``; None for any other shape
    (a sphere's or capsule's margin is its radius, so exact)."""
    if shape == "box":
        return 0.5 * min(size)
    if shape == "cylinder":
        return min(radius, 0.5 * length)
    return None


def thin_collision_primitives(root: ET.Element, urdf_path: Path) -> list[str]:
    """The ``<collision>`` boxes and cylinders thinner than twice PyBullet's 1 mm margin.

    PyBullet shrinks such a shape by its margin so that the margin lands on the true surface; a
    shape thinner than 2 mm cannot shrink that far, and one of its faces then collides up to
    (1 mm - half thickness) inside it. For a test object handsim sets a smaller margin; a URDF
    link's margin cannot be changed through PyBullet's API (the loader wraps each link's shapes
    in a compound), so these are reported, not fixed. Sizes are checked by
    :func:`check_link_numbers` first.

    Returns:
        One line per thin shape, naming the link, its thickness and the face's error [mm].
    """
    found = []
    for link in root.findall("link"):
        for part in link.findall("collision"):
            geometry = part.find("geometry")
            for shape in ([] if geometry is None else list(geometry)):
                if shape.tag not in ("box", "cylinder"):
                    continue
                half = margin_half_thickness(shape.tag, [float(v) for v in shape.get("size", "").split()],
                                             float(shape.get("radius", "0")), float(shape.get("length", "0")))
                if half is not None and half < PYBULLET_PRIMITIVE_MARGIN_M:
                    found.append(f"{urdf_path}: link {link.get('name', '')!r} <collision> {shape.tag} is "
                                 f"{2e3 * half:.2f} mm thick: PyBullet's 1 mm collision margin puts one of its faces "
                                 f"up to {1e3 * (PYBULLET_PRIMITIVE_MARGIN_M - half):.2f} mm inside it (make it >= 2 mm thick)")
    return found


def check_link_numbers(root: ET.Element, urdf_path: Path) -> None:
    """Every number PyBullet reads from a link or a joint's ``<dynamics>`` is usable.

    PyBullet loads a NaN, infinite or negative size without complaint and then runs with it
    (a capsule of radius NaN collides as if it were not there; a NaN inertial origin blows the
    physics up at the first step). Checked: the ``<origin xyz rpy>`` of every ``<inertial>``,
    ``<visual>`` and ``<collision>`` (3 finite numbers each); the sizes of primitive geometry
    (box ``size``: 3 finite numbers > 0; sphere, cylinder and capsule ``radius`` > 0; cylinder
    ``length`` > 0, capsule ``length`` >= 0); a joint's ``<dynamics damping friction>`` (finite,
    >= 0); and PyBullet's ``<contact>`` values (finite, >= 0). Mesh scales and files are
    :func:`check_urdf_assets`'s, masses and inertias :func:`check_inertials`'.

    Raises:
        URDFError: The first bad number, naming the link or joint, the element and the value.
    """
    for link in root.findall("link"):
        name = link.get("name", "")
        for kind in ("inertial", "visual", "collision"):
            parts = link.findall(kind)
            for i, part in enumerate(parts):
                where = f"{urdf_path}: link {name!r} <{kind}>" + (f" #{i + 1}" if len(parts) > 1 else "")
                origin = part.find("origin")
                if origin is not None:
                    for key in ("xyz", "rpy"):
                        _numbers(origin, key, 3, f"{where} <origin>")
                geometry = part.find("geometry")
                for shape in ([] if geometry is None else list(geometry)):
                    for key, zero_ok in _PRIMITIVE_SIZES.get(shape.tag, ()):
                        count = 3 if key == "size" else 1
                        values = _numbers(shape, key, count, f"{where} <{shape.tag}>")
                        if values is None:
                            raise URDFError(f"{where} <{shape.tag}>: needs a {key!r} attribute")
                        if not all(v > 0 or (zero_ok and v == 0) for v in values):
                            raise URDFError(f"{where} <{shape.tag}>: attribute {key!r} expected "
                                            f"{'>= 0' if zero_ok else '> 0'} [m], got {shape.get(key)!r}")
        contact = link.find("contact")
        for child in ([] if contact is None else list(contact)):
            if child.tag in _CONTACT_VALUES:
                value = _numbers(child, "value", 1, f"{urdf_path}: link {name!r} <contact><{child.tag}>")
                if value is not None and value[0] < 0:
                    raise URDFError(f"{urdf_path}: link {name!r} <contact><{child.tag}>: expected a value >= 0, "
                                    f"got {child.get('value')!r}")
    for joint in root.findall("joint"):
        dynamics = joint.find("dynamics")
        if dynamics is None:
            continue
        where = f"{urdf_path}: joint {joint.get('name', '')!r} <dynamics>"
        for key in ("damping", "friction"):
            value = _numbers(dynamics, key, 1, where)
            if value is not None and value[0] < 0:
                raise URDFError(f"{where}: attribute {key!r} expected >= 0, got {dynamics.get(key)!r}")


# ---------------------------------------------------------------------------- not a URDF
def xacro_message(path: Path) -> str:
    """The hint for a xacro file given where a URDF is expected."""
    out = "hand.urdf" if path.name != "hand.urdf" else "hand_expanded.urdf"
    return (f"{path}: this is a xacro file (a URDF with macros and ${{...}} expressions), not a URDF: run "
            f"`xacro {path.name} > {out}` (ROS package xacro) and name the output in hand.json \"urdf\"")


def looks_like_xacro(text: str) -> bool:
    """Whether unparsable URDF text is a xacro file (for a hint on a parse error)."""
    return "xmlns:xacro" in text or "<xacro:" in text


def check_not_xacro(root: ET.Element, path: Path) -> None:
    """Refuse a ``<robot>`` that is a xacro file: it declares the xacro namespace, has
    ``xacro:`` elements, or ``${...}``/``$(...)`` in an attribute.

    Raises:
        URDFError: With the ``xacro FILE > hand.urdf`` hint.
    """
    for element in root.iter():
        tag = element.tag if isinstance(element.tag, str) else ""
        if tag.startswith(_XACRO_NAMESPACES) or any(
                "${" in v or "$(" in v for v in element.attrib.values()):
            raise URDFError(xacro_message(path))


def mjcf_message(path: Path) -> str:
    """The hint for an MJCF file given where a URDF is expected."""
    return (f"{path}: expected a <robot> root element, got <mujoco>: this is an MJCF (MuJoCo) file. A hand "
            "folder can use it directly: replace hand.json by an mjcf.json mapping file (models/README.md, "
            "'MJCF hands'; example: models/shadow_hand/mjcf.json)")
