"""The hand's collision surface as labelled sample points, posed by the kinematics core.

The URDF's collision primitives (capsules, boxes, spheres, cylinders; PyBullet's capsule
``length`` is the core segment between the two sphere centres) and collision meshes (STL, OBJ:
the convex hull of each part, which is what PyBullet collides) are sampled on their surface
every few millimetres; each point keeps its link, its outward normal and the contact-region
label a contact there would get (:meth:`handsim.regions.RegionMap.classify`, the labeller the
benchmark uses). :meth:`HandSurface.pose` places every point for a batch of joint
configurations with one forward-kinematics call. Interior cores (capsule core segments, balls
fitted inside mesh parts) give the finger-to-finger gap and catch objects thinner than the
sample spacing (:class:`HandSurface`). Pure numpy: no PyBullet.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from handsim.errors import UnknownNameError, URDFError, suggest
from handsim.hand import Hand
from handsim.kinematics import KinematicTree
from handsim.kinematics.urdf import rpy_to_matrix

__all__ = ["HandSurface", "Primitive", "read_collision_primitives"]

#: Target spacing of the surface samples [m]: below the thinnest test objects' radius
#: (the 3.75 mm pencil) would be ideal; 6.5 mm keeps ~1,300 points on a 20-DoF hand, which
#: the batched cost can afford (contacts are refined by the closing motion in physics).
SAMPLE_SPACING_M = 0.0065
#: Spacing of the points on the capsules' core segments [m].
_CORE_SPACING_M = 0.0015
#: Box faces (palm, knuckle pads) are sampled this much coarser than round primitives [-].
_BOX_SPACING_FACTOR = 2.5
#: Non-capsule shapes given interior core balls by default (:class:`HandSurface` ``ball_cores``).
#: Boxes, spheres and cylinders can be added; they are not by default so that a capsule-finger
#: hand keeps the search it had (the default hand's palm and knuckle pads are boxes, a
#: generated 6-DoF thumb's knuckle is a sphere).
BALL_CORE_KINDS: tuple[str, ...] = ("mesh",)
#: Shapes that can get core balls.
_BALL_CORE_VALID = ("box", "cylinder", "mesh", "sphere")
#: Core balls for the object check (:meth:`HandSurface.pose_cores`): every surface probe whose
#: largest inscribed tangent ball is at least ``min_radius`` lies within ``tolerance`` of a ball
#: [m] (the penetration slack the search allows is 0.5 mm too).
CORE_TOLERANCE_M = 0.0005
#: Coarser core balls for the finger-to-finger gap (:meth:`HandSurface.self_gap`), which
#: compares every ball of one finger with every ball of another: fewer balls, a gap
#: overestimated by at most about twice this [m].
SELF_GAP_TOLERANCE_M = 0.001
#: Probes nearer a sharp edge than where a tangent ball this big fits need no ball [m]: covering
#: them would take many tiny balls, and what they miss is a sliver along the edge.
_CORE_MIN_RADIUS_M = 0.001
_SELF_GAP_MIN_RADIUS_M = 0.002
#: Spacing of the surface probes the core balls are fitted to [m], and their largest number per
#: part (a bigger part gets sparser probes: a palm's are ~3 mm apart).
_CORE_PROBE_SPACING_M = 0.002
_CORE_MAX_PROBES = 2000
#: Sections of the polygonal prism a cylinder's core balls are fitted in (inscribed: its faces
#: are at most r (1 - cos(pi / 64)) = 0.12 % of r inside the round surface).
_CYLINDER_SECTIONS = 64


@dataclasses.dataclass(frozen=True)
class Primitive:
    """One collision primitive of a link.

    Attributes:
        link: The link it belongs to.
        kind: ``capsule``, ``box``, ``sphere`` or ``cylinder``.
        origin: (4, 4) primitive frame in the link frame (capsule/cylinder axis along its z).
        radius: Radius [m] (capsule, sphere, cylinder).
        length: Core length [m] (capsule: between the sphere centres; cylinder: end to end).
        size: (3,) full edge lengths [m] (box).
        hull: The convex hull of one mesh part, scaled, in the primitive frame (kind ``mesh``;
            a ``trimesh.Trimesh``).
    """

    link: str
    kind: str
    origin: NDArray[np.float64]
    radius: float = 0.0
    length: float = 0.0
    size: tuple[float, float, float] = (0.0, 0.0, 0.0)
    hull: Any = dataclasses.field(default=None, compare=False)


def _floats(text: str | None, n: int, where: str) -> NDArray[np.float64]:
    try:
        vals = [float(v) for v in (text or "").split()] or [0.0] * n
    except ValueError:
        raise URDFError(f"{where}: expected {n} numbers, got {text!r}") from None
    if len(vals) != n:
        raise URDFError(f"{where}: expected {n} numbers, got {text!r}")
    return np.array(vals, dtype=np.float64)


def read_collision_primitives(urdf_path: str | Path) -> list[Primitive]:
    """Every ``<collision>`` shape of a URDF: primitives as they are, a mesh as one ``mesh``
    primitive per convex part PyBullet collides (STL: the whole file's hull; OBJ: each
    ``o``/``g`` part's hull), scaled, found as PyBullet finds it (``package://``, ``file://``).

    Raises:
        URDFError: Unreadable file, malformed numbers, an unsupported geometry (planes, DAE
            meshes), or a mesh file that cannot be found.
    """
    path = Path(urdf_path)
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise URDFError(f"{path}: cannot read the URDF ({exc})") from None
    out = []
    for link in root.findall("link"):
        name = link.get("name", "")
        for col in link.findall("collision"):
            where = f"{path}: link {name!r} collision"
            org = col.find("origin")
            tf = np.eye(4)
            if org is not None:
                tf[:3, :3] = rpy_to_matrix(_floats(org.get("rpy"), 3, where + " origin rpy"))
                tf[:3, 3] = _floats(org.get("xyz"), 3, where + " origin xyz")
            geom = col.find("geometry")
            shape = geom[0] if geom is not None and len(geom) else None
            if shape is None:
                raise URDFError(f"{where}: expected a <geometry> with a primitive")
            if shape.tag in ("capsule", "cylinder"):
                out.append(Primitive(name, shape.tag, tf, radius=float(shape.get("radius", 0)),
                                     length=float(shape.get("length", 0))))
            elif shape.tag == "sphere":
                out.append(Primitive(name, "sphere", tf, radius=float(shape.get("radius", 0))))
            elif shape.tag == "box":
                s = _floats(shape.get("size"), 3, where + " box size")
                out.append(Primitive(name, "box", tf, size=(float(s[0]), float(s[1]), float(s[2]))))
            elif shape.tag == "mesh":
                out.extend(Primitive(name, "mesh", tf, hull=h) for h in _mesh_hulls(shape, path, where))
            else:
                raise URDFError(f"{where}: geometry {shape.tag!r} is not supported; expected capsule, box, "
                                "sphere, cylinder or mesh")
    return out


def _mesh_hulls(mesh: ET.Element, urdf_path: Path, where: str) -> list[Any]:
    """The convex hulls PyBullet collides for one ``<mesh>`` (scaled): one for an STL, one
    per ``o``/``g`` part of an OBJ (PyBullet's URDF importer makes a compound of per-part
    hulls for a moving link)."""
    import trimesh

    from handsim._urdf_assets import _scale, resolve_mesh_filename

    filename = mesh.get("filename", "")
    path, tried = resolve_mesh_filename(filename, urdf_path)
    if path is None:
        raise URDFError(f"{where}: mesh {filename!r} not found (looked at {', '.join(map(str, tried))})")
    scale = np.array(_scale(mesh, where))
    suffix = path.suffix.lower()
    if suffix == ".stl":
        parts = [np.asarray(trimesh.load(path, force="mesh").vertices, dtype=np.float64)]
    elif suffix == ".obj":
        parts = _obj_parts(path)
    else:
        raise URDFError(f"{where}: mesh {filename!r}: handsim synth reads STL and OBJ meshes, got {path.suffix!r} "
                        "(convert it, e.g. with trimesh)")
    hulls = []
    for verts in parts:
        if len(verts) < 4:
            continue
        try:
            hull = trimesh.Trimesh(vertices=verts * scale).convex_hull
        except Exception:  # noqa: BLE001, S112 - qhull on a flat or degenerate part: no volume to touch
            continue
        if hull.area > 0:
            hulls.append(hull)
    if not hulls:
        raise URDFError(f"{where}: mesh {filename!r} has no part with volume")
    return hulls


def _obj_parts(path: Path) -> list[NDArray[np.float64]]:
    """The vertices each ``o``/``g`` part of a Wavefront OBJ uses, as PyBullet's importer splits
    it (a part is what its faces reference; an OBJ without faces is one part of its vertices)."""
    verts: list[list[float]] = []
    parts: list[set[int]] = [set()]
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        tok = line.split()
        if not tok:
            continue
        if tok[0] == "v" and len(tok) >= 4:
            verts.append([float(t) for t in tok[1:4]])
        elif tok[0] in ("o", "g"):
            if parts[-1]:
                parts.append(set())
        elif tok[0] == "f":
            for t in tok[1:]:
                k = int(t.split("/")[0])
                parts[-1].add(k - 1 if k > 0 else len(verts) + k)
    v = np.array(verts, dtype=np.float64).reshape(-1, 3)
    used = [sorted(p) for p in parts if p]
    return [v[idx] for idx in used] if used else [v]


def _ring(radius: float, count: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    a = np.arange(count) * (2 * math.pi / count)
    dirs = np.stack([np.cos(a), np.sin(a), np.zeros(count)], axis=1)
    return radius * dirs, dirs


#: The 27 cells around (and including) a cell of the Poisson-disk filter's hash, own cell first
#: (a rejected candidate is usually rejected by a sample of its own cell).
_NEIGHBOUR_CELLS = sorted(((i, j, k) for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)),
                          key=lambda c: abs(c[0]) + abs(c[1]) + abs(c[2]))


def _poisson_disk(points: NDArray[np.float64], min_dist: float) -> NDArray[np.int64]:
    """Greedy Poisson-disk filter: the indices of the points kept when each is taken in order
    unless a point already kept is closer than ``min_dist`` (squared distances compared with
    ``min_dist ** 2``), in linear time.

    The kept points sit in a spatial hash of cubic cells a hair wider than ``min_dist``, so a
    kept point closer than ``min_dist`` is always in one of the 27 cells around the
    candidate's (the extra 1e-9 keeps that true when ``x / cell`` rounds across a cell
    boundary); a cell holds at most a few kept points. The result is the greedy filter's
    exactly: the same points, in the same order, compared with the same squared distances
    (``dx*dx + dy*dy + dz*dz``, what ``np.sum(d ** 2, axis=1)`` computes).

    Args:
        points: (C, 3) candidates, in the order they are considered [m].
        min_dist: Smallest distance between two kept points [m], > 0.

    Returns:
        (K,) increasing indices into ``points`` of the kept points.
    """
    if not len(points):
        return np.zeros(0, np.int64)
    min_d2 = min_dist**2
    cell = np.floor(points / (min_dist * (1.0 + 1e-9))).astype(np.int64)  # (C, 3)
    cell -= cell.min(axis=0) - 1  # >= 1, so every neighbour index is >= 0
    ny, nz = int(cell[:, 1].max()) + 2, int(cell[:, 2].max()) + 2
    keys = ((cell[:, 0] * ny + cell[:, 1]) * nz + cell[:, 2]).tolist()  # one integer per cell
    offsets = [(di * ny + dj) * nz + dk for di, dj, dk in _NEIGHBOUR_CELLS]
    coords = points.tolist()
    grid: dict[int, list[int]] = {}
    kept: list[int] = []
    for k, key in enumerate(keys):
        x, y, z = coords[k]
        near = False
        for off in offsets:
            for m in grid.get(key + off, ()):
                px, py, pz = coords[m]
                dx, dy, dz = px - x, py - y, pz - z
                if dx * dx + dy * dy + dz * dz < min_d2:
                    near = True
                    break
            if near:
                break
        if not near:
            kept.append(k)
            grid.setdefault(key, []).append(k)
    return np.array(kept, dtype=np.int64)


def _sample(prim: Primitive, spacing: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Surface points and outward normals of one primitive, in its own frame, (P, 3) each [m].

    Round primitives: rings every ``spacing``; boxes: a grid on each face, ``_BOX_SPACING_FACTOR``
    coarser; a mesh part: a Poisson-disk set on its convex hull (``20 area / spacing**2``
    random candidates, fixed seed, thinned by :func:`_poisson_disk` to samples at least
    0.55 spacing apart, in time linear in the candidates: ~10 ms for a palm-size hull, ~50 ms
    for a forearm-size one; ``benchmarks/bench_synth_sampler.py``), normals the faces'.
    """
    pts, nrm = [], []
    if prim.kind in ("capsule", "cylinder", "sphere"):
        r = prim.radius
        around = max(8, math.ceil(2 * math.pi * r / spacing))
        half = prim.length / 2 if prim.kind != "sphere" else 0.0
        rings = max(1, math.ceil(2 * half / spacing) + 1) if half > 0 else 1
        for z in np.linspace(-half, half, rings) if half > 0 else [0.0]:
            p, n = _ring(r, around)
            p[:, 2] = z
            pts.append(p)
            nrm.append(n)
        if prim.kind == "cylinder":
            for sgn in (-1.0, 1.0):
                for rr in np.arange(0.0, r, spacing):
                    k = max(1, math.ceil(2 * math.pi * rr / spacing))
                    p, _ = _ring(rr, k)
                    p[:, 2] = sgn * half
                    pts.append(p)
                    nrm.append(np.tile([0.0, 0.0, sgn], (k, 1)))
        else:
            # Hemispherical caps (a whole sphere for kind "sphere"): rings of latitude.
            steps = max(2, math.ceil((math.pi / 2) * r / spacing))
            for sgn in (-1.0, 1.0):
                for lat in np.linspace(0, math.pi / 2, steps + 1)[1:]:
                    rr = r * math.cos(lat)
                    k = max(1, math.ceil(2 * math.pi * rr / spacing))
                    a = np.arange(k) * (2 * math.pi / k)
                    n = np.stack([np.cos(lat) * np.cos(a), np.cos(lat) * np.sin(a), np.full(k, sgn * math.sin(lat))], axis=1)
                    p = r * n
                    p[:, 2] += sgn * half
                    pts.append(p)
                    nrm.append(n)
    elif prim.kind == "mesh":
        # A Poisson-disk set on the hull: dense random candidates (fixed seed: the same hand
        # gives the same samples), kept greedily when no kept sample is within 0.55 spacing, so
        # every point of the surface is within about that of a sample (the round primitives'
        # rings leave gaps of ~0.6 spacing); normals are the faces' normals. The filter hashes
        # the kept samples into cells (linear time; the quadratic loop took 0.6 s on a palm).
        import trimesh

        hull = prim.hull
        count = max(64, math.ceil(20 * hull.area / spacing**2))
        cand, face = trimesh.sample.sample_surface(hull, count, seed=0)
        cand = np.asarray(cand, dtype=np.float64)
        kept = _poisson_disk(cand, 0.55 * spacing)
        pts.append(cand[kept])
        nrm.append(np.asarray(hull.face_normals[face[kept]], dtype=np.float64))
    else:  # box: a grid on each face, coarser (flat faces need fewer points than round ones)
        spacing = spacing * _BOX_SPACING_FACTOR
        h = np.array(prim.size) / 2
        for axis in range(3):
            u, v = (axis + 1) % 3, (axis + 2) % 3
            nu = max(2, math.ceil(2 * h[u] / spacing) + 1)
            nv = max(2, math.ceil(2 * h[v] / spacing) + 1)
            gu, gv = np.meshgrid(np.linspace(-h[u], h[u], nu), np.linspace(-h[v], h[v], nv), indexing="ij")
            for sgn in (-1.0, 1.0):
                p = np.zeros((gu.size, 3))
                p[:, u], p[:, v], p[:, axis] = gu.ravel(), gv.ravel(), sgn * h[axis]
                n = np.zeros_like(p)
                n[:, axis] = sgn
                pts.append(p)
                nrm.append(n)
    return np.concatenate(pts), np.concatenate(nrm)


def _hull_planes(hull: Any) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Outward unit normals (F, 3) and offsets (F,) [m] of a convex mesh's face planes
    (``n . x <= b`` inside), coplanar triangles merged."""
    normals = np.asarray(hull.face_normals, dtype=np.float64)
    offsets = np.einsum("fi,fi->f", normals, np.asarray(hull.triangles[:, 0], dtype=np.float64))
    planes = np.unique(np.round(np.column_stack([normals, offsets]), 12), axis=0)
    return planes[:, :3], planes[:, 3]


#: Tangent balls and fitted cores already computed, by part (and settings): a hand's fingers
#: often share one mesh, the object check and the finger gap fit the same probes, and a
#: synthesis worker builds the hand's surface once per grasp type.
_TANGENT_CACHE: dict[bytes, tuple[NDArray[np.float64], ...]] = {}
_CORE_CACHE: dict[tuple[bytes, float, float], tuple[NDArray[np.float64], NDArray[np.float64]]] = {}


def _tangent_balls(hull: Any, key: bytes) -> tuple[NDArray[np.float64], ...]:
    """Surface probes of a convex mesh and the largest inside ball touching the surface at each.

    Probes: ~2 mm apart (at most ``_CORE_MAX_PROBES``; fixed seed). The largest ball inside
    the hull that touches the surface at probe p on the face of inward normal n is the
    "shrinking ball" of the medial axis, for a polytope in closed form: the ball of radius
    rho centred at p + rho n stays behind every face plane (m, b) (``m . x <= b``) while
    ``rho (1 + m . n) <= b - m . p`` (m outward, n inward: ~0 for the probe's own plane).

    Returns:
        Probes (P, 3), rho (P,), inward normals (P, 3), sorted by decreasing rho, then the
        hull's face-plane normals (F, 3) and offsets (F,).
    """
    import trimesh

    if key in _TANGENT_CACHE:
        return _TANGENT_CACHE[key]
    normals, offsets = _hull_planes(hull)
    count = int(np.clip(math.ceil(hull.area / _CORE_PROBE_SPACING_M**2), 64, _CORE_MAX_PROBES))
    probes, face = trimesh.sample.sample_surface(hull, count, seed=1)
    probes = np.asarray(probes, dtype=np.float64)
    inward = -np.asarray(hull.face_normals[face], dtype=np.float64)
    rho = np.empty(len(probes))
    for a in range(0, len(probes), 256):  # chunks of probes x planes: bounded memory on big meshes
        p, n = probes[a:a + 256], inward[a:a + 256]
        turn = n @ normals.T  # (P, F): m.n, then 1 + m.n: ~0 for the probe's own plane (n is inward)
        turn += 1.0
        np.maximum(turn, 1e-12, out=turn)
        room = p @ normals.T  # (P, F): distance behind each plane, +1e-12 so that the own
        np.subtract(offsets[None], room, out=room)  # plane gives ~1 m: no constraint
        np.maximum(room, 0.0, out=room)
        room += 1e-12
        room /= turn
        rho[a:a + 256] = room.min(axis=1)
    order = np.argsort(-rho, kind="stable")
    out = (probes[order], rho[order], inward[order], normals, offsets)
    if len(_TANGENT_CACHE) > 256:
        _TANGENT_CACHE.clear()
    _TANGENT_CACHE[key] = out
    return out


def _convex_cores(hull: Any, tolerance: float, min_radius: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Balls inside a convex mesh whose union reaches to within ``tolerance`` of its surface.

    Every surface probe gets its tangent ball (:func:`_tangent_balls`); a greedy set cover
    keeps the balls that reach (to within ``tolerance``) the most probes not yet reached,
    biggest first among equals, until every probe whose own ball is at least ``min_radius``
    is reached (probes nearer a sharp edge need no ball: covering them would take many tiny
    ones). Each ball kept then gets its radius exactly, as the smallest distance from its
    centre to a face plane, which for a point inside a convex polytope is its distance to
    the surface: a ball never pokes out of the hull (up to rounding, ~1e-13 m).

    Args:
        hull: A convex ``trimesh.Trimesh`` [m].
        tolerance: How near a probe a ball must reach [m].
        min_radius: Probes whose tangent ball is smaller need no ball [m].

    Returns:
        (K, 3) ball centres and (K,) radii [m], in the mesh's frame (K = 0 for a part thinner
        than ``2 min_radius``).
    """
    part = hashlib.sha1(np.ascontiguousarray(hull.vertices, dtype=np.float64).tobytes()
                        + np.ascontiguousarray(hull.faces, dtype=np.int64).tobytes()).digest()
    if (part, tolerance, min_radius) in _CORE_CACHE:
        return _CORE_CACHE[(part, tolerance, min_radius)]
    probes, rho, inward, normals, offsets = _tangent_balls(hull, part)
    big = np.flatnonzero(rho >= min_radius)
    centres = probes[big] + rho[big, None] * inward[big]
    reach = np.sum((probes[None] - centres[:, None]) ** 2, axis=-1) <= (rho[big, None] + tolerance) ** 2  # (K, P)
    todo = np.zeros(len(probes), dtype=bool)
    todo[big] = True  # each is reached by its own ball, so the cover ends
    gain = reach[:, todo].sum(axis=1)
    picked = []
    while todo.any():
        k = int(np.argmax(gain))  # the first of equals: the biggest (rho is sorted)
        new = todo & reach[k]
        gain -= reach[:, new].sum(axis=1)
        todo &= ~reach[k]
        picked.append(k)
    centres = centres[picked]
    radii = np.maximum((offsets[None] - centres @ normals.T).min(axis=1), 0.0)
    if len(_CORE_CACHE) > 256:
        _CORE_CACHE.clear()
    _CORE_CACHE[(part, tolerance, min_radius)] = (centres, radii)
    return centres, radii


def _core_balls(prim: Primitive, tolerance: float, min_radius: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Interior core balls of a non-capsule primitive, in the link frame: (K, 3) centres and
    (K,) radii [m]. A sphere is its own ball; a box, a cylinder (as the 64-sided prism inside
    it) and a mesh part get :func:`_convex_cores`."""
    import trimesh

    if prim.kind == "sphere":
        centres, radii = np.zeros((1, 3)), np.array([prim.radius])
    elif prim.kind == "box":
        centres, radii = _convex_cores(trimesh.creation.box(extents=prim.size), tolerance, min_radius)
    elif prim.kind == "cylinder":
        shape = trimesh.creation.cylinder(radius=prim.radius, height=prim.length, sections=_CYLINDER_SECTIONS)
        centres, radii = _convex_cores(shape, tolerance, min_radius)
    elif prim.kind == "mesh":
        centres, radii = _convex_cores(prim.hull, tolerance, min_radius)
    else:
        raise AssertionError(f"no core balls for a {prim.kind!r}")
    return centres @ prim.origin[:3, :3].T + prim.origin[:3, 3], radii


def _ball_gaps(a: NDArray[np.float64], ra: NDArray[np.float64], b: NDArray[np.float64],
               rb: NDArray[np.float64]) -> NDArray[np.float64]:
    """Gaps between balls a (B, K, 3), radii (K,), and balls b (B, J, 3), radii (J,): (B, K, J)
    [m]. Summed per coordinate, without (B, K, J, 3) temporaries: ~8x faster than a norm of
    the differences, and no cancellation (unlike |a|^2 + |b|^2 - 2 a.b)."""
    d = np.square(a[:, :, None, 0] - b[:, None, :, 0])
    for k in (1, 2):
        diff = a[:, :, None, k] - b[:, None, :, k]
        d += diff * diff
    np.sqrt(d, out=d)
    d -= ra[:, None]
    d -= rb[None]
    return d


def _point_segment(p: NDArray[np.float64], a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """Distances from points (B, K, 3) to segments a-b (B, C, 3) each: (B, K, C) [m]."""
    ab = (b - a)[:, None]  # (B, 1, C, 3)
    ap = p[:, :, None] - a[:, None]  # (B, K, C, 3)
    t = np.clip(np.sum(ap * ab, -1) / np.maximum(np.sum(ab * ab, -1), 1e-12), 0.0, 1.0)
    return np.linalg.norm(ap - t[..., None] * ab, axis=-1)


class HandSurface:
    """Labelled surface samples of a hand's collision geometry, and its interior cores.

    Every collision shape is sampled on its surface (:func:`_sample`). Objects thinner than the
    sample spacing (a 0.76 mm card) and fingers pressed into each other are caught by the
    shapes' cores instead (:meth:`pose_cores`, :meth:`self_gap`): balls inside the shapes,
    whose union is the shape seen from inside, so an object point nearer a core than its
    radius is inside the hand, and a ball overlap between two fingers is a real overlap (the
    check may miss a thin sliver along a sharp edge, never report an overlap that is not
    there). A capsule's cores are its core segment (exact). Mesh parts (and the
    ``ball_cores`` kinds) get balls fitted to their convex hull, which is what PyBullet
    collides (:func:`_convex_cores`): within ``CORE_TOLERANCE_M`` (0.5 mm) of the surface for
    the object check, within ``SELF_GAP_TOLERANCE_M`` (1 mm) for the finger gap, except
    within a millimetre or two of sharp edges. Boxes, spheres and cylinders have no cores
    by default (the default hand's palm and knuckle pads are boxes: its search is as it was).

    Args:
        hand: The hand (metadata, regions).
        tree: Its kinematic tree (:func:`handsim.kinematics.load_urdf` of ``hand.urdf_path``).
        spacing: Sample spacing [m].
        ball_cores: The non-capsule shape kinds given core balls: any of ``mesh``, ``box``,
            ``sphere``, ``cylinder``.

    Raises:
        UnknownNameError: A ``ball_cores`` kind that is not one of those.

    Attributes:
        link_index: (N,) index of each point's link in ``tree.link_names``.
        local_points: (N, 3) points in their link's frame [m].
        local_normals: (N, 3) outward unit normals in their link's frame.
        label_ids: (N,) contact-region label id of each point (``hand.regions.labels``).
        finger: (N,) name of the finger (or ``palm``) each point belongs to.
        core_points: (M, 3) core points in their link's frame [m] (capsule core segments, then
            core balls' centres).
        core_radius: (M,) their radii [m].
    """

    def __init__(self, hand: Hand, tree: KinematicTree, spacing: float = SAMPLE_SPACING_M,
                 ball_cores: Iterable[str] = BALL_CORE_KINDS) -> None:
        ball_kinds = tuple(ball_cores)
        for kind in ball_kinds:
            if kind not in _BALL_CORE_VALID:
                raise UnknownNameError(suggest(kind, _BALL_CORE_VALID, "core shape kind") + " (HandSurface ball_cores)")
        self.hand = hand
        self.tree = tree
        pts, nrm, links = [], [], []
        prims = read_collision_primitives(hand.urdf_path)
        for prim in prims:
            p, n = _sample(prim, spacing)
            rot, off = prim.origin[:3, :3], prim.origin[:3, 3]
            pts.append(p @ rot.T + off)
            nrm.append(n @ rot.T)
            links.append(np.full(len(p), tree.link_index(prim.link)))
        self.local_points = np.concatenate(pts)
        self.local_normals = np.concatenate(nrm)
        self.link_index = np.concatenate(links).astype(np.int64)
        names = [tree.link_names[i] for i in self.link_index]
        regions = hand.regions
        self.label_ids = np.full(len(names), regions.other_id, dtype=np.int64)
        known = np.array([n in regions for n in names])
        if known.any():
            self.label_ids[known] = regions.classify(self.local_points[known], [n for n, k in zip(names, known) if k])
        part_of = {}
        for f in hand.fingers.values():
            for link in f.links:
                part_of[link] = f.name
        self.finger = np.array([part_of.get(n, "palm") for n in names])
        # Capsule cores of different fingers, for the self-collision gap (the thumb against the
        # index is what blocks a pinch in physics).
        caps = [c for c in prims if c.kind == "capsule"]
        ends = []
        for c in caps:
            a = c.origin @ np.array([0.0, 0.0, -c.length / 2, 1.0])
            b = c.origin @ np.array([0.0, 0.0, c.length / 2, 1.0])
            ends.append((tree.link_index(c.link), a[:3], b[:3], c.radius, part_of.get(c.link, "palm")))
        pairs = [(i, j) for i in range(len(ends)) for j in range(i + 1, len(ends))
                 if ends[i][4] != ends[j][4] and "palm" not in (ends[i][4], ends[j][4])]
        self._caps = ends
        # Core segments of every capsule, sampled densely: a capsule overlaps an object exactly
        # when a core point is closer than its radius, which also catches objects thinner than
        # the surface-sample spacing (a 2.5 mm key, a 0.76 mm card).
        core_pts, core_links, core_r = [], [], []
        for li, a, b, r, _ in ends:
            k = max(2, math.ceil(np.linalg.norm(b - a) / _CORE_SPACING_M) + 1)
            core_pts.append(a + np.linspace(0.0, 1.0, k)[:, None] * (b - a))
            core_links.append(np.full(k, li))
            core_r.append(np.full(k, r))
        #: Capsule core points come first in ``core_points``: this many (ball cores follow).
        self.capsule_core_count = sum(len(c) for c in core_pts)
        # Core balls of the other shapes (meshes by default), after the capsules' cores: the
        # object check's set (CORE_TOLERANCE_M), and a coarser one for the finger gap.
        gap_c, gap_r, gap_link = [], [], []  # per primitive: (K, 3), (K,), its link's index
        for prim in (p for p in prims if p.kind in ball_kinds):
            li = tree.link_index(prim.link)
            c, r = _core_balls(prim, CORE_TOLERANCE_M, _CORE_MIN_RADIUS_M)
            core_pts.append(c)
            core_links.append(np.full(len(r), li))
            core_r.append(r)
            if part_of.get(prim.link, "palm") != "palm":
                fine = (c, r)
                c, r = _core_balls(prim, SELF_GAP_TOLERANCE_M, _SELF_GAP_MIN_RADIUS_M)
                if not len(r):  # a part 2-4 mm thick: too thin for the coarse set, not for the fine one
                    c, r = fine
                gap_c.append(c)
                gap_r.append(r)
                gap_link.append(li)
        self.core_points = np.concatenate(core_pts) if core_pts else np.zeros((0, 3))
        self.core_radius = np.concatenate(core_r) if core_r else np.zeros(0)
        core_link = np.concatenate(core_links).astype(np.int64) if core_links else np.zeros(0, np.int64)
        # The finger gap's parts: each link's gap balls (kind "balls") and each capsule (kind
        # "capsule"), with a bounding sphere in the link frame for the pruning in self_gap.
        # Capsule-capsule pairs keep their own path (_capsule_gap); every other pair of parts
        # of different fingers is compared.
        parts = []
        by_link: dict[int, list[int]] = {}
        for k, li in enumerate(gap_link):
            by_link.setdefault(li, []).append(k)
        for li, ks in by_link.items():
            c, r = np.concatenate([gap_c[k] for k in ks]), np.concatenate([gap_r[k] for k in ks])
            if not len(r):
                continue  # parts thinner than two smallest balls: none (see _convex_cores)
            mid = (c.min(axis=0) + c.max(axis=0)) / 2
            parts.append(("balls", part_of[tree.link_names[li]], li, c, r, mid,
                          float((np.linalg.norm(c - mid, axis=1) + r).max())))
        if parts:
            for k, (li, a, b, r, finger) in enumerate(ends):
                if finger != "palm":
                    parts.append(("capsule", finger, li, k, r, (a + b) / 2, float(np.linalg.norm(b - a)) / 2 + r))
        self._gap_parts = parts
        self._gap_pairs = [(i, j) for i in range(len(parts)) for j in range(i + 1, len(parts))
                           if parts[i][1] != parts[j][1] and "balls" in (parts[i][0], parts[j][0])]
        self._core_groups = [(int(li), np.flatnonzero(core_link == li)) for li in np.unique(core_link)]
        self._pairs = np.array(pairs, dtype=np.int64).reshape(-1, 2)
        # Points grouped by link, so posing is one small product per link.
        self._groups = [(int(li), np.flatnonzero(self.link_index == li)) for li in np.unique(self.link_index)]

    def __len__(self) -> int:
        return len(self.local_points)

    def self_gap(self, q: ArrayLike) -> NDArray[np.float64]:
        """Smallest surface gap between the collision shapes of different fingers, (B,) [m]
        (negative: overlap; +inf for a hand with fewer than two fingers; the palm is left out).

        Capsule against capsule: distances from five points on each core segment to the other
        segment (exact to well under a millimetre for phalanx-sized capsules). Shapes with core
        balls (meshes): every ball against every ball and capsule of the other finger, with the
        coarser ball set (``SELF_GAP_TOLERANCE_M``). The balls lie inside their part, so a ball
        gap is never smaller than the true gap: an overlap reported is real, and a gap is
        overestimated by at most about twice the tolerance (except along sharp edges, where the
        balls stop short of the surface; measured on capsule-shaped mesh fingers over random
        configurations: median 0.36 mm, worst 0.81 mm). Pairs of parts whose bounding spheres
        are farther apart than the best gap found are skipped (the result is the full
        comparison's).

        Args:
            q: (B, n) joint values [rad].

        Returns:
            (B,) smallest gap [m].
        """
        q = np.asarray(q, dtype=np.float64)
        if not self._gap_pairs:
            return self._capsule_gap(q)
        frames = self.tree.forward_kinematics(q)  # (B, L, 4, 4)
        gap = self._capsule_gap(q, frames)
        rows = np.arange(len(q))
        posed = []  # per part: (B, K, 3) ball centres or (B, 3) x 2 segment ends; (B, 3) bounding centre
        for kind, _, li, what, _, mid, _ in self._gap_parts:
            rot, off = frames[:, li, :3, :3], frames[:, li, :3, 3]
            geo = (np.matmul(what, rot.transpose(0, 2, 1)) + off[:, None] if kind == "balls" else
                   (rot @ self._caps[what][1] + off, rot @ self._caps[what][2] + off))
            posed.append((geo, rot @ mid + off))
        # Branch and bound: a pair's bounding spheres give a lower bound on its gap; one real
        # ball pair (each part's biggest ball, a capsule's middle ball) an upper bound. Only the
        # rows whose lower bound is below the best gap so far are measured ball by ball, nearest
        # pairs first: the result is the full comparison's, at a fraction of the cost.
        lower = np.empty((len(q), len(self._gap_pairs)))
        for p, (i, j) in enumerate(self._gap_pairs):
            pi, pj = self._gap_parts[i], self._gap_parts[j]
            lower[:, p] = np.linalg.norm(posed[i][1] - posed[j][1], axis=1) - pi[6] - pj[6]
            gap = np.minimum(gap, np.linalg.norm(self._anchor(i, posed[i][0]) - self._anchor(j, posed[j][0]), axis=1)
                             - self._anchor_radius(i) - self._anchor_radius(j))
        for p in np.argsort(lower.min(axis=0), kind="stable"):
            todo = rows[lower[:, p] < gap]
            if not len(todo):
                continue
            i, j = self._gap_pairs[p]
            if self._gap_parts[i][0] != "balls":
                i, j = j, i
            (ci, _), (gj, _) = posed[i], posed[j]
            ri = self._gap_parts[i][4]
            if self._gap_parts[j][0] == "balls":
                d = _ball_gaps(ci[todo], ri, gj[todo], self._gap_parts[j][4])
            else:
                d = _point_segment(ci[todo], gj[0][todo, None], gj[1][todo, None]) - ri[:, None] - self._gap_parts[j][4]
            gap[todo] = np.minimum(gap[todo], d.min(axis=(1, 2)))
        return gap

    def _anchor(self, k: int, geo: Any) -> NDArray[np.float64]:
        """One real ball of gap part ``k`` posed, (B, 3): its biggest ball, or a capsule's
        middle ball."""
        part = self._gap_parts[k]
        return geo[:, int(np.argmax(part[4]))] if part[0] == "balls" else (geo[0] + geo[1]) / 2

    def _anchor_radius(self, k: int) -> float:
        part = self._gap_parts[k]
        return float(np.max(part[4]))

    def _capsule_gap(self, q: NDArray[np.float64], frames: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
        """Smallest gap between capsules of different fingers, (B,) [m] (+inf: no such pair)."""
        if not len(self._pairs):
            return np.full(len(q), np.inf)
        if frames is None:
            frames = self.tree.forward_kinematics(q)  # (B, L, 4, 4)
        seg_a = np.stack([frames[:, li, :3, :3] @ a + frames[:, li, :3, 3] for li, a, _, _, _ in self._caps], axis=1)
        seg_b = np.stack([frames[:, li, :3, :3] @ b + frames[:, li, :3, 3] for li, _, b, _, _ in self._caps], axis=1)
        radii = np.array([c[3] for c in self._caps])
        i, j = self._pairs[:, 0], self._pairs[:, 1]
        ts = np.linspace(0.0, 1.0, 5)[None, None, :, None]

        def point_segment(p: NDArray, a: NDArray, b: NDArray) -> NDArray:
            # p (B, P, T, 3); a, b (B, P, 3)
            ab = (b - a)[:, :, None]
            t = np.clip(np.sum((p - a[:, :, None]) * ab, -1) / np.maximum(np.sum(ab * ab, -1), 1e-12), 0, 1)
            return np.linalg.norm(p - (a[:, :, None] + t[..., None] * ab), axis=-1).min(axis=-1)

        pa = seg_a[:, i, None] + ts * (seg_b[:, i, None] - seg_a[:, i, None])
        pb = seg_a[:, j, None] + ts * (seg_b[:, j, None] - seg_a[:, j, None])
        dist = np.minimum(point_segment(pa, seg_a[:, j], seg_b[:, j]), point_segment(pb, seg_a[:, i], seg_b[:, i]))
        return (dist - radii[i] - radii[j]).min(axis=1)

    def pose_cores(self, q: ArrayLike) -> NDArray[np.float64]:
        """Core points in the palm frame, (B, M, 3) [m], radii ``core_radius`` (M,) [m]: an
        object point nearer a core point than its radius is inside the hand.

        The capsules' core segments, sampled every 1.5 mm (exact: the capsule is the union of
        those balls up to 0.03 mm), then the core balls of the ``ball_cores`` shapes (meshes by
        default; ``CORE_TOLERANCE_M``). ``core_points`` and ``core_radius`` are in link frames,
        in the same order.

        Args:
            q: (B, n) joint values [rad].
        """
        frames = self.tree.forward_kinematics(np.asarray(q, dtype=np.float64))
        out = np.empty((frames.shape[0], len(self.core_points), 3))
        for li, idx in self._core_groups:
            rot_t = np.ascontiguousarray(frames[:, li, :3, :3].transpose(0, 2, 1))
            out[:, idx] = np.matmul(self.core_points[idx], rot_t) + frames[:, li, None, :3, 3]
        return out

    def pose(self, q: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Points and normals in the palm frame for a batch of configurations.

        Args:
            q: (B, n) joint values [rad] in ``tree.joint_names`` order.

        Returns:
            (B, N, 3) points [m] and (B, N, 3) outward unit normals, in the palm (root) frame.
        """
        frames = self.tree.forward_kinematics(np.asarray(q, dtype=np.float64))  # (B, L, 4, 4)
        bsz = frames.shape[0]
        pts = np.empty((bsz, len(self), 3))
        nrm = np.empty((bsz, len(self), 3))
        for li, idx in self._groups:
            rot_t = np.ascontiguousarray(frames[:, li, :3, :3].transpose(0, 2, 1))  # (B, 3, 3), R^T
            pts[:, idx] = np.matmul(self.local_points[idx], rot_t) + frames[:, li, None, :3, 3]
            nrm[:, idx] = np.matmul(self.local_normals[idx], rot_t)
        return pts, nrm
