"""Tests of synth's hand model for mesh hands (handsim.synth.handmodel): the linear-time
Poisson-disk filter against the quadratic loop it replaced, core balls inside their part (brute
force over the hull's triangles, scipy's Delaunay for inside), the finger-to-finger gap of mesh
fingers against analytic box, cylinder and capsule distances, a 0.76 mm card through a mesh
fingertip, and the capsule-only default hand's cores and gaps unchanged (a pinned copy of the
old code)."""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import trimesh
from scipy.spatial import Delaunay
from scipy.spatial.transform import Rotation

from handsim.data import hand_dir
from handsim.errors import UnknownNameError
from handsim.hand import load_hand
from handsim.kinematics import load_urdf
from handsim.kinematics.urdf import rpy_to_matrix
from handsim.synth.handmodel import (
    _CORE_MIN_RADIUS_M,
    CORE_TOLERANCE_M,
    SAMPLE_SPACING_M,
    SELF_GAP_TOLERANCE_M,
    HandSurface,
    Primitive,
    _convex_cores,
    _core_balls,
    _poisson_disk,
    _sample,
    read_collision_primitives,
)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(14)


# ----------------------------------------------------------------------------------------------
# The Poisson-disk filter


def _greedy(cand: np.ndarray, min_dist: float) -> np.ndarray:
    """The filter as it was written before (every candidate against every kept sample)."""
    min_d2 = min_dist**2
    kept: list[int] = []
    for k in range(len(cand)):
        if not kept or np.min(np.sum((cand[kept] - cand[k]) ** 2, axis=1)) >= min_d2:
            kept.append(k)
    return np.array(kept, dtype=np.int64)


_HULLS = {
    "palm_box": lambda: trimesh.creation.box(extents=(0.07, 0.081, 0.028)),
    "capsule": lambda: trimesh.creation.capsule(height=0.03, radius=0.009, count=[48, 48]),
    "icosphere": lambda: trimesh.creation.icosphere(subdivisions=3, radius=0.012),
    "cylinder": lambda: trimesh.creation.cylinder(radius=0.008, height=0.03, sections=32),
    "box": lambda: trimesh.creation.box(extents=(0.02, 0.015, 0.04)),
    "random": lambda: trimesh.Trimesh(np.random.default_rng(3).normal(size=(60, 3)) * [0.012, 0.008, 0.02]),
}


@pytest.mark.parametrize("shape", ["palm_box", "capsule", "icosphere"])
def test_mesh_sampler_keeps_exactly_what_the_greedy_loop_kept(shape: str) -> None:
    """The mesh sampler's candidates (as ``_sample`` draws them) filtered by the spatial hash
    are the greedy loop's samples, in the same order; ``_sample`` returns those points."""
    hull = _HULLS[shape]().convex_hull
    count = max(64, math.ceil(20 * hull.area / SAMPLE_SPACING_M**2))
    cand, _ = trimesh.sample.sample_surface(hull, count, seed=0)
    cand = np.asarray(cand, dtype=np.float64)
    want = _greedy(cand, 0.55 * SAMPLE_SPACING_M)
    np.testing.assert_array_equal(_poisson_disk(cand, 0.55 * SAMPLE_SPACING_M), want)
    pts, nrm = _sample(Primitive("part", "mesh", np.eye(4), hull=hull), SAMPLE_SPACING_M)
    np.testing.assert_array_equal(pts, cand[want])
    np.testing.assert_allclose(np.linalg.norm(nrm, axis=1), 1.0)


def test_poisson_disk_edge_cases(rng: np.random.Generator) -> None:
    """Same result as the greedy loop where a hash is easiest to get wrong: points exactly the
    minimum distance apart on a lattice (kept: the test is ``>=``), duplicates, points on cell
    boundaries, negative and large coordinates, tight clusters, one point, none."""
    d = 0.25  # exact in binary: lattice distances are exactly d
    lattice = np.stack(np.meshgrid(*[np.arange(-3, 4) * d] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    clouds = {
        "lattice": rng.permutation(lattice),
        "lattice_and_duplicates": np.concatenate([lattice, lattice[::3], lattice + d / 2]),
        "clusters": np.concatenate([c + rng.normal(scale=0.3 * d, size=(200, 3)) for c in rng.uniform(-2, 2, (10, 3))]),
        "far_negative": rng.uniform(-1.0, 1.0, (800, 3)) - 1e3,
        "nearly_min_dist": np.concatenate([np.zeros((1, 3)), [[d * (1 - 1e-16), 0, 0], [0, d * (1 + 1e-15), 0],
                                                               [0, 0, np.nextafter(d, 0)], [-d, 0, 0]]]),
        "one": np.ones((1, 3)),
    }
    for name, pts in clouds.items():
        np.testing.assert_array_equal(_poisson_disk(pts, d), _greedy(pts, d), err_msg=name)
    assert len(_poisson_disk(lattice, d)) == len(lattice)
    assert _poisson_disk(np.zeros((0, 3)), d).shape == (0,)


# ----------------------------------------------------------------------------------------------
# Core balls of one part


def _surface_distance(mesh: trimesh.Trimesh, points: np.ndarray) -> np.ndarray:
    """Unsigned distance to a mesh's surface by brute force over every triangle."""
    tris = mesh.triangles
    out = np.empty(len(points))
    for i, p in enumerate(points):
        closest = trimesh.triangles.closest_point(tris, np.repeat(p[None], len(tris), axis=0))
        out[i] = np.linalg.norm(closest - p, axis=1).min()
    return out


def _covered(points: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Signed distance of each point to the union of the balls, (P,) (negative inside)."""
    return (np.linalg.norm(points[:, None] - centres[None], axis=-1) - radii[None]).min(axis=1)


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["capsule", "box", "cylinder", "icosphere", "random"])
def test_core_balls_stay_inside_the_part_and_fill_most_of_it(shape: str, rng: np.random.Generator) -> None:
    """Every core ball lies inside the hull (centre inside by Delaunay, distance to the nearest
    triangle >= radius), so no ball can report an overlap that is not there; the balls fill
    most of the hull (Monte Carlo volume) and reach near its surface (median within the
    tolerance)."""
    hull = _HULLS[shape]().convex_hull
    centres, radii = _convex_cores(hull, CORE_TOLERANCE_M, _CORE_MIN_RADIUS_M)
    assert len(radii) and (radii >= _CORE_MIN_RADIUS_M * 0.99).all()
    tri = Delaunay(hull.vertices)
    assert (tri.find_simplex(centres) >= 0).all()
    assert (_surface_distance(hull, centres) >= radii - 1e-12).all()
    box = rng.uniform(hull.bounds[0], hull.bounds[1], (12_000, 3))
    inside = box[tri.find_simplex(box) >= 0]
    volume = float((_covered(inside, centres, radii) <= 0).mean())
    assert volume >= 0.85, volume
    surf, _ = trimesh.sample.sample_surface(hull, 1500, seed=11)
    gap = _covered(np.asarray(surf), centres, radii)
    assert gap.min() >= -1e-9  # a surface point is never strictly inside a ball
    assert np.median(gap) <= CORE_TOLERANCE_M, np.median(gap)


def test_primitive_core_balls_inside_the_analytic_shape(rng: np.random.Generator) -> None:
    """A sphere is its own ball; a box's and a cylinder's balls lie inside the analytic
    shape (in the primitive's posed frame)."""
    tf = np.eye(4)
    tf[:3, :3] = rpy_to_matrix([0.3, -0.2, 1.1])
    tf[:3, 3] = [0.01, -0.02, 0.005]
    c, r = _core_balls(Primitive("l", "sphere", tf, radius=0.008), CORE_TOLERANCE_M, _CORE_MIN_RADIUS_M)
    np.testing.assert_allclose(c, tf[None, :3, 3])
    np.testing.assert_allclose(r, [0.008])
    size = (0.02, 0.012, 0.03)
    c, r = _core_balls(Primitive("l", "box", tf, size=size), CORE_TOLERANCE_M, _CORE_MIN_RADIUS_M)
    local = (c - tf[:3, 3]) @ tf[:3, :3]
    assert (np.abs(local) + r[:, None] <= np.array(size) / 2 + 1e-12).all()
    c, r = _core_balls(Primitive("l", "cylinder", tf, radius=0.007, length=0.025), CORE_TOLERANCE_M, _CORE_MIN_RADIUS_M)
    local = (c - tf[:3, 3]) @ tf[:3, :3]
    assert (np.hypot(local[:, 0], local[:, 1]) + r <= 0.007 + 1e-12).all()
    assert (np.abs(local[:, 2]) + r <= 0.0125 + 1e-12).all()
    assert len(r) > 1


# ----------------------------------------------------------------------------------------------
# Mesh-finger hands


def _origin(tf: np.ndarray) -> str:
    rpy = Rotation.from_matrix(tf[:3, :3]).as_euler("xyz")  # URDF rpy: fixed axes x, y, z
    np.testing.assert_allclose(rpy_to_matrix(rpy), tf[:3, :3], atol=1e-12)
    return f'<origin xyz="{tf[0, 3]:.12g} {tf[1, 3]:.12g} {tf[2, 3]:.12g}" rpy="{rpy[0]:.15g} {rpy[1]:.15g} {rpy[2]:.15g}"/>'


def _strip_finger_collisions(text: str, hand) -> str:
    """The URDF without the fingers' collision elements (the palm's and knuckles' stay)."""
    links = {link for f in hand.fingers.values() for link in f.links}
    for link in links:
        start = text.index(f'<link name="{link}">')
        end = text.index("</link>", start)
        text = text[:start] + re.sub(r"<collision.*?</collision>", "", text[start:end], flags=re.DOTALL) + text[end:]
    return text


def _two_part_hand(tmp_path: Path, parts: dict[str, tuple[trimesh.Trimesh, np.ndarray]]) -> Path:
    """The default hand with no finger collisions but ``parts``: link -> (mesh, its pose in the
    palm frame at q = 0), each written as an STL collision mesh of that link."""
    folder = tmp_path / "hand"
    shutil.copytree(hand_dir("default_hand"), folder)
    (folder / "meshes").mkdir()
    hand = load_hand(folder)
    tree = load_urdf(hand.urdf_path)
    frames = tree.forward_kinematics(np.zeros((1, tree.num_joints)))[0]
    text = _strip_finger_collisions((folder / "hand.urdf").read_text(), hand)
    for k, (link, (mesh, pose)) in enumerate(parts.items()):
        mesh.export(folder / "meshes" / f"part{k}.stl")
        local = np.linalg.inv(frames[tree.link_index(link)]) @ pose
        col = f'<collision>{_origin(local)}<geometry><mesh filename="meshes/part{k}.stl"/></geometry></collision>'
        start = text.index(f'<link name="{link}">')
        text = text[:start] + text[start:].replace("</link>", col + "</link>", 1)
    (folder / "hand.urdf").write_text(text)
    return folder


def _surface(folder: Path) -> tuple[HandSurface, int]:
    hand = load_hand(folder)
    tree = load_urdf(hand.urdf_path)
    return HandSurface(hand, tree), tree.num_joints


def _pose(x: float, y: float, z: float) -> np.ndarray:
    tf = np.eye(4)
    tf[:3, 3] = [x, y, z]
    return tf


@pytest.mark.parametrize("shape", ["box", "cylinder"])
@pytest.mark.parametrize("gap", [-0.002, 0.0005, 0.002, 0.005])
def test_two_mesh_fingers_self_gap_against_the_analytic_gap(shape: str, gap: float, tmp_path: Path) -> None:
    """The index and middle distal links as meshes side by side in the palm frame (parallel
    boxes or parallel cylinders along x, a known distance apart along y; no other finger
    collides): ``self_gap`` is negative when they overlap, never below the analytic gap (the
    balls are inside the parts), and at most ``2 SELF_GAP_TOLERANCE_M`` above it."""
    if shape == "box":
        a, b = trimesh.creation.box(extents=(0.022, 0.012, 0.014)), trimesh.creation.box(extents=(0.018, 0.010, 0.012))
        half_a, half_b = 0.006, 0.005
    else:  # along x; 64 sections: the facets lie within 0.12 % of the radius inside the round surface
        turn = trimesh.transformations.rotation_matrix(math.pi / 2, [0, 1, 0])
        a = trimesh.creation.cylinder(radius=0.007, height=0.022, sections=64, transform=turn)
        b = trimesh.creation.cylinder(radius=0.006, height=0.018, sections=64, transform=turn)
        half_a, half_b = 0.007, 0.006
    centre = half_a + half_b + gap  # along y; x offset 3 mm, z offset 1 mm: still facing
    folder = _two_part_hand(tmp_path, {"index_distal": (a, _pose(0.17, 0.0, 0.0)),
                                       "middle_distal": (b, _pose(0.173, -centre, 0.001))})
    surf, n = _surface(folder)
    got = float(surf.self_gap(np.zeros((1, n)))[0])
    if gap < 0:
        assert got < 0, got
    else:
        facets = (0.007 + 0.006) * (1 - math.cos(math.pi / 64)) if shape == "cylinder" else 0.0
        assert gap - 1e-9 <= got <= gap + facets + 2 * SELF_GAP_TOLERANCE_M, (got, gap)


def test_a_part_too_thin_for_a_ball_has_no_cores(tmp_path: Path) -> None:
    """A 1.5 mm plate is thinner than two of the smallest balls: no cores (its overlaps are
    left to the physics, as before), and a hand with one such finger part still builds: its
    gap is +inf when no other finger has cores."""
    plate = trimesh.creation.box(extents=(0.02, 0.0015, 0.012))
    centres, radii = _convex_cores(plate.convex_hull, CORE_TOLERANCE_M, _CORE_MIN_RADIUS_M)
    assert centres.shape == (0, 3) and radii.shape == (0,)
    folder = _two_part_hand(tmp_path, {"index_distal": (plate, _pose(0.17, 0.0, 0.0)),
                                       "middle_distal": (trimesh.creation.box(extents=(0.018, 0.01, 0.012)),
                                                         _pose(0.17, -0.02, 0.0))})
    surf, n = _surface(folder)
    assert np.isinf(surf.self_gap(np.zeros((2, n)))).all()
    assert len(surf.core_points) > 0  # the box's


@pytest.mark.parametrize("thickness_m", [0.003, 0.0038, 0.0045])
def test_finger_parts_thinner_than_the_gap_balls_still_show_their_overlap(tmp_path: Path, thickness_m: float) -> None:
    """Plates 3-4 mm thick get no balls of the coarse finger-gap set (2 mm minimum radius) but
    do get the object check's: two such plates of different fingers, overlapping 1 mm across
    their thickness (analytic), must give a gap of about -1 mm, not +inf."""
    def plate() -> trimesh.Trimesh:
        return trimesh.creation.box(extents=(0.02, thickness_m, 0.012))

    folder = _two_part_hand(tmp_path, {"index_distal": (plate(), _pose(0.17, 0.0, 0.0)),
                                       "middle_distal": (plate(), _pose(0.17, -(thickness_m - 0.001), 0.0))})
    surf, n = _surface(folder)
    assert surf.self_gap(np.zeros((1, n)))[0] == pytest.approx(-0.001, abs=0.3e-3)


def _segment_distance(p0: np.ndarray, p1: np.ndarray, q0: np.ndarray, q1: np.ndarray) -> float:
    """Exact distance between segments p0-p1 and q0-q1: the four endpoint-to-segment
    distances, and the common perpendicular when its feet fall inside both segments."""

    def point_seg(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
        ab = b - a
        t = np.clip(np.dot(x - a, ab) / max(np.dot(ab, ab), 1e-300), 0.0, 1.0)
        return float(np.linalg.norm(x - (a + t * ab)))

    best = min(point_seg(p0, q0, q1), point_seg(p1, q0, q1), point_seg(q0, p0, p1), point_seg(q1, p0, p1))
    u, v, w = p1 - p0, q1 - q0, p0 - q0
    a, b, c, d, e = u @ u, u @ v, v @ v, u @ w, v @ w
    den = a * c - b * b
    if den > 1e-20 * a * c:
        s, t = (b * e - c * d) / den, (a * e - b * d) / den
        if 0 <= s <= 1 and 0 <= t <= 1:
            best = min(best, float(np.linalg.norm(w + s * u - t * v)))
    return best


@pytest.fixture(scope="module")
def capsule_mesh_hand(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default hand with every finger capsule but the thumb's as an STL of the same capsule
    (trimesh, 32 sections: the hull lies inside the round capsule, within 0.5 % of its radius):
    mesh fingers, and mesh against capsule for the thumb."""
    folder = tmp_path_factory.mktemp("capsule_mesh") / "hand"
    shutil.copytree(hand_dir("default_hand"), folder)
    (folder / "meshes").mkdir()
    text = (folder / "hand.urdf").read_text()
    made: dict[tuple[str, str], str] = {}

    def to_mesh(m: re.Match) -> str:
        key = (m.group(1), m.group(2))
        if key not in made:
            name = f"meshes/cap{len(made)}.stl"
            trimesh.creation.capsule(height=float(key[1]), radius=float(key[0]), count=[32, 32]).export(folder / name)
            made[key] = f'<mesh filename="{name}"/>'
        return made[key]

    pattern = re.compile(r'<capsule radius="([0-9.e-]+)" length="([0-9.e-]+)"\s*/>')
    out, pos = [], 0
    for m in re.finditer(r'<link name="([^"]+)">.*?</link>', text, flags=re.DOTALL):
        out.append(text[pos:m.start()])
        block = m.group(0)
        out.append(block if m.group(1).startswith("thumb") else pattern.sub(to_mesh, block))
        pos = m.end()
    out.append(text[pos:])
    (folder / "hand.urdf").write_text("".join(out))
    return folder


@pytest.mark.slow
def test_mesh_finger_gap_bounds_the_true_capsule_gap(capsule_mesh_hand: Path, rng: np.random.Generator) -> None:
    """Random configurations of the capsule-mesh hand: ``self_gap`` is never below the true
    gap between the round capsules the meshes approximate from inside (exact segment
    distances), so every overlap it reports is real; where the capsules are apart it is at
    most ``2 SELF_GAP_TOLERANCE_M`` (plus the 0.5 % facets) above the truth, and where they
    overlap by more than that it reports an overlap."""
    surf, n = _surface(capsule_mesh_hand)
    ref = load_hand("default_hand")
    tree = load_urdf(ref.urdf_path)
    part_of = {link: f.name for f in ref.fingers.values() for link in f.links}
    caps = [c for c in read_collision_primitives(ref.urdf_path) if c.kind == "capsule" and c.link in part_of]
    q = rng.uniform(tree.lower, tree.upper, (40, n))
    frames = tree.forward_kinematics(q)
    got = surf.self_gap(q)
    for b in range(len(q)):
        ends = []
        for c in caps:
            tf = frames[b, tree.link_index(c.link)] @ c.origin
            ends.append((tf[:3, :3] @ [0, 0, -c.length / 2] + tf[:3, 3], tf[:3, :3] @ [0, 0, c.length / 2] + tf[:3, 3],
                         c.radius, part_of[c.link]))
        true = min(_segment_distance(a0, a1, b0, b1) - ra - rb for i, (a0, a1, ra, fa) in enumerate(ends)
                   for (b0, b1, rb, fb) in ends[i + 1:] if fa != fb)
        assert got[b] >= true - 1e-9, (b, got[b], true)
        if true > 0:
            assert got[b] <= true + 2 * SELF_GAP_TOLERANCE_M + 2 * 0.011 * (1 - math.cos(math.pi / 32)), (b, got[b], true)
        elif true < -2 * SELF_GAP_TOLERANCE_M:
            assert got[b] < 0, (b, got[b], true)


def _card_sdf(points: np.ndarray, pose: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Signed distance to a box (half extents ``half``, pose in the palm frame), analytic."""
    local = np.abs((points - pose[:3, 3]) @ pose[:3, :3]) - half
    return np.linalg.norm(np.maximum(local, 0.0), axis=-1) + np.minimum(local.max(axis=-1), 0.0)


@pytest.mark.slow
def test_a_card_through_a_mesh_fingertip_is_caught_by_the_cores(capsule_mesh_hand: Path) -> None:
    """A 0.76 mm card (a credit card's thickness) across the index distal mesh, through its
    middle: some core of that link is nearer the card than its radius (the search sees the
    penetration the surface samples, 6.5 mm apart, may step over); the same card 0.3 mm past
    the fingertip's end touches nothing and no core reports it."""
    surf, n = _surface(capsule_mesh_hand)
    tree = surf.tree
    q = np.zeros((1, n))
    frame = tree.forward_kinematics(q)[0, tree.link_index("index_distal")]
    (cap,) = [c for c in read_collision_primitives(hand_dir("default_hand") / "hand.urdf") if c.link == "index_distal"]
    axis_tf = frame @ cap.origin  # capsule frame: its axis along z
    cores = surf.pose_cores(q)[0]
    mine = _core_links(surf) == tree.link_index("index_distal")
    assert mine.any()
    half = np.array([0.02, 0.02, 0.00038])
    through = axis_tf.copy()
    d = _card_sdf(cores, through, half) - surf.core_radius
    assert d[mine].min() < 0, d[mine].min()
    past = axis_tf.copy()
    past[:3, 3] = axis_tf[:3, 3] + axis_tf[:3, 2] * (cap.length / 2 + cap.radius + 0.0003 + half[2])
    assert (_card_sdf(cores, past, half) - surf.core_radius).min() > 0


def _core_links(surf: HandSurface) -> np.ndarray:
    """The link index of each core point, from the surface's per-link groups."""
    out = np.full(len(surf.core_points), -1)
    for li, idx in surf._core_groups:
        out[idx] = li
    return out


# ----------------------------------------------------------------------------------------------
# The capsule path, unchanged


def _old_capsule_cores(tree, prims, part_of) -> tuple[list, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A pinned copy of HandSurface's capsule cores before mesh cores (session 10)."""
    ends = []
    for c in (c for c in prims if c.kind == "capsule"):
        a = c.origin @ np.array([0.0, 0.0, -c.length / 2, 1.0])
        b = c.origin @ np.array([0.0, 0.0, c.length / 2, 1.0])
        ends.append((tree.link_index(c.link), a[:3], b[:3], c.radius, part_of.get(c.link, "palm")))
    pairs = [(i, j) for i in range(len(ends)) for j in range(i + 1, len(ends))
             if ends[i][4] != ends[j][4] and "palm" not in (ends[i][4], ends[j][4])]
    core_pts, core_links, core_r = [], [], []
    for li, a, b, r, _ in ends:
        k = max(2, math.ceil(np.linalg.norm(b - a) / 0.0015) + 1)
        core_pts.append(a + np.linspace(0.0, 1.0, k)[:, None] * (b - a))
        core_links.append(np.full(k, li))
        core_r.append(np.full(k, r))
    return ends, np.array(pairs).reshape(-1, 2), np.concatenate(core_pts), np.concatenate(core_r), np.concatenate(core_links)


def _old_self_gap(tree, ends, pairs, q: np.ndarray) -> np.ndarray:
    """A pinned copy of HandSurface.self_gap before mesh cores (session 10)."""
    frames = tree.forward_kinematics(q)
    seg_a = np.stack([frames[:, li, :3, :3] @ a + frames[:, li, :3, 3] for li, a, _, _, _ in ends], axis=1)
    seg_b = np.stack([frames[:, li, :3, :3] @ b + frames[:, li, :3, 3] for li, _, b, _, _ in ends], axis=1)
    radii = np.array([c[3] for c in ends])
    i, j = pairs[:, 0], pairs[:, 1]
    ts = np.linspace(0.0, 1.0, 5)[None, None, :, None]

    def point_segment(p, a, b):
        ab = (b - a)[:, :, None]
        t = np.clip(np.sum((p - a[:, :, None]) * ab, -1) / np.maximum(np.sum(ab * ab, -1), 1e-12), 0, 1)
        return np.linalg.norm(p - (a[:, :, None] + t[..., None] * ab), axis=-1).min(axis=-1)

    pa = seg_a[:, i, None] + ts * (seg_b[:, i, None] - seg_a[:, i, None])
    pb = seg_a[:, j, None] + ts * (seg_b[:, j, None] - seg_a[:, j, None])
    dist = np.minimum(point_segment(pa, seg_a[:, j], seg_b[:, j]), point_segment(pb, seg_a[:, i], seg_b[:, i]))
    return (dist - radii[i] - radii[j]).min(axis=1)


def test_capsule_hand_cores_and_gap_are_bit_identical_to_the_old_code(rng: np.random.Generator) -> None:
    """The default hand (capsule fingers, box palm and knuckle pads) gets exactly the cores and
    the finger gap it had: core points, radii, their posed positions and ``self_gap`` equal a
    pinned copy of the code before mesh cores, bit for bit, on random configurations."""
    hand = load_hand("default_hand")
    tree = load_urdf(hand.urdf_path)
    surf = HandSurface(hand, tree)
    part_of = {link: f.name for f in hand.fingers.values() for link in f.links}
    ends, pairs, pts, radius, links = _old_capsule_cores(tree, read_collision_primitives(hand.urdf_path), part_of)
    np.testing.assert_array_equal(surf.core_points, pts)
    np.testing.assert_array_equal(surf.core_radius, radius)
    q = rng.uniform(tree.lower, tree.upper, (16, tree.num_joints))
    np.testing.assert_array_equal(surf.self_gap(q), _old_self_gap(tree, ends, pairs, q))
    np.testing.assert_array_equal(surf.self_gap(q[:1]), _old_self_gap(tree, ends, pairs, q[:1]))
    # pose_cores, as it was: one product per link group
    frames = tree.forward_kinematics(q)
    posed = np.empty((len(q), len(pts), 3))
    for li in np.unique(links):
        idx = np.flatnonzero(links == li)
        rot_t = np.ascontiguousarray(frames[:, li, :3, :3].transpose(0, 2, 1))
        posed[:, idx] = np.matmul(pts[idx], rot_t) + frames[:, li, None, :3, 3]
    np.testing.assert_array_equal(surf.pose_cores(q), posed)


def test_ball_cores_option_names_the_valid_kinds() -> None:
    """An unknown ``ball_cores`` kind is refused with the valid ones and a close match; boxes
    asked for get balls (the default hand's palm and knuckle pads)."""
    hand = load_hand("default_hand")
    tree = load_urdf(hand.urdf_path)
    with pytest.raises(UnknownNameError, match=r"did you mean 'box'.*valid: box, cylinder, mesh, sphere"):
        HandSurface(hand, tree, ball_cores=("boxes",))
    plain = HandSurface(hand, tree)
    boxed = HandSurface(hand, tree, ball_cores=("mesh", "box"))
    assert len(boxed.core_points) > len(plain.core_points)
    np.testing.assert_array_equal(boxed.core_points[:len(plain.core_points)], plain.core_points)
    assert tree.link_index("palm") in {li for li, _ in boxed._core_groups}
