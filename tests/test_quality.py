"""Tests of handsim.scoring.quality against independent sources.

Independent sources: closed forms (cross-polytope, cube, the wrench of a frictionless
contact on a sphere), a brute-force enumeration of every d-subset hyperplane, and
scipy.spatial.ConvexHull (Qhull).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.spatial import ConvexHull, QhullError

from handsim.errors import ConfigurationError, HandsimError
from handsim.scoring.quality import (
    epsilon_quality,
    force_closure,
    friction_cone_wrenches,
    hull_volume,
    wrench_epsilon,
    wrench_hull_volume,
)


def qhull_epsilon(w: np.ndarray) -> float:
    """Q1 by Qhull: min facet offset when the origin is strictly inside, else 0."""
    hull = ConvexHull(w)
    offsets = -hull.equations[:, -1]  # scipy: n . x + c <= 0 inside, so the offset is -c
    return float(offsets.min()) if offsets.min() > 0 else 0.0


def brute_force_epsilon(w: np.ndarray) -> float:
    """Q1 by trying every d-subset of points as a facet (exponential; small inputs only)."""
    n_pts, d = w.shape
    best = math.inf
    for subset in itertools.combinations(range(n_pts), d):
        x = w[list(subset)]
        diff = x[1:] - x[0]
        if np.linalg.matrix_rank(diff, tol=1e-9) < d - 1:
            continue
        normal = np.linalg.svd(diff)[2][-1]
        side = w @ normal - x[0] @ normal
        if side.max() > 1e-9:
            normal, side = -normal, -side
        if side.max() > 1e-9:
            continue  # points on both sides: not a supporting plane
        best = min(best, float(x[0] @ normal))
    return max(best, 0.0)


def sphere_contacts(rng: np.random.Generator, batch: int, contacts: int, radius: float = 0.04):
    """Random contacts on a sphere of ``radius`` [m] at the origin, normals to its centre."""
    p = rng.normal(size=(batch, contacts, 3))
    p *= radius / np.linalg.norm(p, axis=-1, keepdims=True)
    return p, -p / radius


def box_contacts(rng: np.random.Generator, batch: int, contacts: int, half=(0.03, 0.02, 0.05)):
    """Random contacts on the faces of a box with half-extents ``half`` [m], inward normals."""
    half = np.asarray(half)
    axis = rng.integers(0, 3, size=(batch, contacts))
    sign = rng.choice([-1.0, 1.0], size=(batch, contacts))
    p = rng.uniform(-1, 1, size=(batch, contacts, 3)) * half
    n = np.zeros((batch, contacts, 3))
    b, c = np.indices((batch, contacts))
    p[b, c, axis] = sign * half[axis]
    n[b, c, axis] = -sign
    return p, n


# ------------------------------------------------------------------------------ wrenches


def test_cone_edges_have_unit_normal_force_and_friction_angle(rng):
    p, n = sphere_contacts(rng, 3, 4)
    mu = 0.7
    w = friction_cone_wrenches(p, n, mu, num_edges=6, torque_scale=0.04)
    assert w.shape == (3, 24, 6)
    f = w[..., :3].reshape(3, 4, 6, 3)
    normal_part = np.einsum("bckd,bcd->bck", f, n)
    np.testing.assert_allclose(normal_part, 1.0, atol=1e-12)
    tangential = np.linalg.norm(f - normal_part[..., None] * n[:, :, None], axis=-1)
    np.testing.assert_allclose(tangential, mu, atol=1e-12)
    # Torques are (p - center) x f / torque_scale, checked with numpy's cross product.
    tau = np.cross(np.repeat(p, 6, axis=1), w[..., :3]) / 0.04
    np.testing.assert_allclose(w[..., 3:], tau, atol=1e-12)
    # The edges are evenly spread: consecutive tangential parts are 60 degrees apart.
    t = f - normal_part[..., None] * n[:, :, None]
    cos = np.einsum("bckd,bckd->bck", t, np.roll(t, -1, axis=2)) / mu**2
    np.testing.assert_allclose(cos, 0.5, atol=1e-12)


def test_center_shifts_torques_and_single_grasp_shape(rng):
    p, n = sphere_contacts(rng, 1, 3)
    center = np.array([0.01, -0.02, 0.03])
    w = friction_cone_wrenches(p[0], n[0], 0.5, num_edges=4, center=center)
    assert w.shape == (12, 6)
    np.testing.assert_allclose(w[:, 3:], np.cross(np.repeat(p[0] - center, 4, axis=0), w[:, :3]), atol=1e-12)


# ------------------------------------------------------------------------------ closed forms


def test_cross_polytope_and_cube_closed_forms():
    d, a = 6, 2.5
    cross = np.concatenate([a * np.eye(d), -a * np.eye(d)])
    # The facets of the cross-polytope are x . s = a for sign vectors s / sqrt(d).
    np.testing.assert_allclose(wrench_epsilon(cross), a / math.sqrt(d), rtol=1e-12)
    np.testing.assert_allclose(wrench_hull_volume(cross), (2 * a) ** d / math.factorial(d), rtol=1e-12)
    cube = np.array(list(itertools.product([-1.0, 1.0], repeat=d))) * 0.5
    np.testing.assert_allclose(wrench_epsilon(cube), 0.5, rtol=1e-12)
    np.testing.assert_allclose(wrench_hull_volume(cube), 1.0, rtol=1e-12)
    shifted = cube + np.array([0.7, 0, 0, 0, 0, 0])  # origin outside: not force closure
    assert wrench_epsilon(shifted) == 0.0
    assert wrench_hull_volume(shifted) == pytest.approx(1.0, rel=1e-12)
    touching = cube + np.array([0.5, 0, 0, 0, 0, 0])  # origin on a facet: not strictly inside
    assert wrench_epsilon(touching) == 0.0


def test_planar_square_and_two_antipodal_planar_contacts():
    square = np.array([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]]) * 0.3
    assert wrench_epsilon(square) == pytest.approx(0.3, rel=1e-12)
    # Two antipodal contacts with friction on a disc of radius 1, planar wrenches
    # (fx, fy, tz), edges f = n +- mu t: force closure in the plane for any mu > 0
    # (V.-D. Nguyen, "Constructing force-closure grasps", IJRR 1988), unlike in 6-D.
    mu = 0.5
    rows = []
    for p, n in (((0.0, -1.0), (0.0, 1.0)), ((0.0, 1.0), (0.0, -1.0))):
        t = np.array([-n[1], n[0]])
        for sgn in (1, -1):
            f = np.array(n) + sgn * mu * t
            rows.append([f[0], f[1], p[0] * f[1] - p[1] * f[0]])
    w = np.array(rows)
    assert wrench_epsilon(w) > 0
    # The hull is the octahedron-like polytope spanned by (+-mu, +-1, +-mu) pairs; compare
    # with the brute-force enumeration of every 3-point plane.
    assert wrench_epsilon(w) == pytest.approx(brute_force_epsilon(w), abs=1e-12)


def test_two_antipodal_contacts_are_not_closure_in_6d():
    # Point contacts cannot resist a torque about the line through them.
    p = np.array([[0.0, 0.0, -0.05], [0.0, 0.0, 0.05]])
    n = -p / 0.05
    assert epsilon_quality(p, n, 1.0, torque_scale=0.05) == 0.0
    assert not force_closure(p, n, 1.0, torque_scale=0.05)
    assert hull_volume(p, n, 1.0) == 0.0  # 16 wrenches but they span fewer than 6 dimensions


# ------------------------------------------------------------------------------ soft fingers


def test_soft_finger_wrenches_twist_each_edge_both_ways(rng):
    p, n = sphere_contacts(rng, 2, 3)
    mu, gamma, k, scale = 0.6, 0.003, 5, 0.04
    point = friction_cone_wrenches(p, n, mu, num_edges=k, torque_scale=scale)
    soft = friction_cone_wrenches(p, n, mu, num_edges=k, torque_scale=scale, torsion=gamma)
    assert soft.shape == (2, 3 * 2 * k, 6)
    per = soft.reshape(2, 3, 2, k, 6)
    edges = point.reshape(2, 3, k, 6)
    for sign, half in ((1.0, per[:, :, 0]), (-1.0, per[:, :, 1])):
        np.testing.assert_allclose(half[..., :3], edges[..., :3], atol=1e-15)  # same forces
        # torque = ((p - c) x f + sign gamma n) / torque_scale, written out here
        twist = sign * gamma * n[:, :, None, :] / scale
        np.testing.assert_allclose(half[..., 3:], edges[..., 3:] + twist, atol=1e-12)
    # gamma = 0 repeats every point-contact wrench: the same hull, the same Q1
    assert epsilon_quality(p, n, mu, num_edges=k, torque_scale=scale, torsion=0.0) == pytest.approx(
        epsilon_quality(p, n, mu, num_edges=k, torque_scale=scale), abs=1e-12)


@pytest.mark.parametrize("mu", [0.3, 0.5, 1.0])
@pytest.mark.parametrize("gamma", [0.0005, 0.001, 0.002])
def test_two_antipodal_soft_fingers_resist_a_twist_of_gamma(mu, gamma):
    # Point contacts at +-R cannot resist a torque about the line through them (above);
    # soft fingers can, up to gamma per newton of normal force (Murray, Li and Sastry 1994:
    # two soft fingers are force closure iff the line through them lies inside both friction
    # cones). The hull's support along the pure twist about x is gamma / R (every other wrench
    # has no x torque: (+-R e_x) x f has none), so Q1 <= gamma / R; while the twist is the
    # weakest direction (gamma / R <= 0.1 here) Q1 equals it, which Qhull confirms.
    radius = 0.02
    p = np.array([[radius, 0.0, 0.0], [-radius, 0.0, 0.0]])
    n = -p / radius
    q = epsilon_quality(p, n, mu, torque_scale=radius, torsion=gamma)
    assert q == pytest.approx(gamma / radius, rel=1e-9)
    w = friction_cone_wrenches(p, n, mu, torque_scale=radius, torsion=gamma)
    assert qhull_epsilon(w) == pytest.approx(gamma / radius, rel=1e-9)
    assert force_closure(p, n, mu, torque_scale=radius, torsion=gamma)
    assert epsilon_quality(p, n, mu, torque_scale=radius) == 0.0


def test_soft_fingers_outside_each_others_cone_are_not_closure():
    # The line through the two contacts makes 40 deg with each normal, more than the friction
    # angle atan(0.5) = 26.6 deg: no squeeze holds, whatever the torsion (Murray, Li, Sastry).
    tilt = math.radians(40.0)
    p = np.array([[0.02, 0.0, 0.0], [-0.02, 0.0, 0.0]])
    n = np.array([[-math.cos(tilt), math.sin(tilt), 0.0], [math.cos(tilt), math.sin(tilt), 0.0]])
    assert not force_closure(p, n, 0.5, torque_scale=0.02, torsion=0.01)
    assert epsilon_quality(p, n, 0.5, torque_scale=0.02, torsion=0.01) == 0.0
    # At 20 deg, inside the cones, the same pair is force closure.
    tilt = math.radians(20.0)
    n = np.array([[-math.cos(tilt), math.sin(tilt), 0.0], [math.cos(tilt), math.sin(tilt), 0.0]])
    assert force_closure(p, n, 0.5, torque_scale=0.02, torsion=0.01)


def test_soft_q1_matches_qhull_and_never_falls_below_point_q1(rng):
    p, n = box_contacts(rng, 40, 3)
    mu = rng.uniform(0.2, 1.0, size=40)
    gamma = rng.uniform(0.0, 0.01, size=(40, 3))
    soft = epsilon_quality(p, n, mu, num_edges=4, torque_scale=0.05, torsion=gamma)
    point = epsilon_quality(p, n, mu, num_edges=4, torque_scale=0.05)
    assert (soft >= point - 1e-12).all()  # more wrenches, a larger hull
    for b in range(40):
        w = friction_cone_wrenches(p[b], n[b], mu[b], num_edges=4, torque_scale=0.05, torsion=gamma[b])
        try:
            ref = qhull_epsilon(w)
        except QhullError:  # Qhull refuses lower-dimensional input (three contacts on one face)
            ref = 0.0
        assert soft[b] == pytest.approx(ref, abs=1e-9)
    assert (soft > point + 1e-6).sum() > 5  # the twist matters on some three-contact grasps


def test_frictionless_sphere_contacts_exert_no_torque():
    # With mu = 0 every normal passes through the centre: zero torque, a 3-D wrench set.
    p = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1], [1, 0, 0], [0, 0, -1]]) * 0.03
    n = -p / np.linalg.norm(p, axis=1, keepdims=True)
    w = friction_cone_wrenches(p, n, 0.0)
    np.testing.assert_allclose(w[:, 3:], 0.0, atol=1e-15)
    assert epsilon_quality(p, n, 0.0) == 0.0
    assert not force_closure(p, n, 0.0)
    assert hull_volume(p, n, 0.0) == 0.0


def test_one_sided_contacts_are_not_closure():
    # All contacts on the lower hemisphere push up: no wrench can pull the object down.
    rng = np.random.default_rng(3)
    p = rng.normal(size=(6, 3))
    p[:, 2] = -np.abs(p[:, 2]) - 0.3
    p *= 0.05 / np.linalg.norm(p, axis=1, keepdims=True)
    n = -p / 0.05
    assert epsilon_quality(p, n, 0.3, torque_scale=0.05) == 0.0
    assert not force_closure(p, n, 0.3, torque_scale=0.05)


def test_tetrahedron_on_sphere_matches_brute_force():
    # Regular tetrahedron contacts on a sphere, normals to the centre, mu = 0.5, 4 edges:
    # 16 wrenches, 8008 candidate facets enumerated by brute force.
    r = 0.05
    p = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) * (r / math.sqrt(3))
    n = -p / r
    q = epsilon_quality(p, n, 0.5, num_edges=4, torque_scale=r)
    assert q > 0.05
    assert force_closure(p, n, 0.5, num_edges=4, torque_scale=r)
    w = friction_cone_wrenches(p, n, 0.5, num_edges=4, torque_scale=r)
    assert q == pytest.approx(brute_force_epsilon(w), abs=1e-10)
    assert q == pytest.approx(qhull_epsilon(w), abs=1e-10)


# ------------------------------------------------------------------------------ vs Qhull


def _random_sets(rng: np.random.Generator, count: int):
    """Seeded random grasps: sphere or box contacts, 3-6 contacts, 4-8 edges, random mu."""
    for i in range(count):
        c = int(rng.integers(3, 7))
        k = int(rng.integers(4, 9))
        p, n = (sphere_contacts if i % 2 else box_contacts)(rng, 1, c)
        mu = float(rng.uniform(0.1, 1.2))
        yield p[0], n[0], mu, k


@pytest.mark.slow
def test_epsilon_and_volume_match_qhull_on_200_random_grasps(rng):
    n_closure = 0
    for p, n, mu, k in _random_sets(rng, 200):
        scale = 0.05
        w = friction_cone_wrenches(p, n, mu, num_edges=k, torque_scale=scale)
        ref = qhull_epsilon(w)
        q = epsilon_quality(p, n, mu, num_edges=k, torque_scale=scale)
        # Wrench norms are ~1-2 here, so 1e-9 absolute is ~1e-9 relative.
        assert q == pytest.approx(ref, abs=1e-9)
        assert bool(force_closure(p, n, mu, num_edges=k, torque_scale=scale)) == (ref > 0)
        vol = hull_volume(p, n, mu, num_edges=k, torque_scale=scale)
        assert vol == pytest.approx(ConvexHull(w).volume, rel=1e-9)
        n_closure += ref > 0
    assert 40 < n_closure < 190  # the sample covers both outcomes


def test_batched_equals_one_at_a_time_and_matches_qhull(rng):
    p, n = sphere_contacts(rng, 60, 5)
    mu = rng.uniform(0.1, 1.0, size=60)
    q = epsilon_quality(p, n, mu, num_edges=6, torque_scale=0.04)
    fc = force_closure(p, n, mu, num_edges=6, torque_scale=0.04)
    vol = hull_volume(p, n, mu, num_edges=6, torque_scale=0.04)
    assert q.shape == fc.shape == vol.shape == (60,)
    for b in range(60):
        one = epsilon_quality(p[b], n[b], mu[b], num_edges=6, torque_scale=0.04)
        assert one.shape == ()
        assert one == pytest.approx(q[b], abs=1e-12)
        w = friction_cone_wrenches(p[b], n[b], mu[b], num_edges=6, torque_scale=0.04)
        assert q[b] == pytest.approx(qhull_epsilon(w), abs=1e-9)
        assert fc[b] == (q[b] > 0)
        assert vol[b] == pytest.approx(ConvexHull(w).volume, rel=1e-9)
    assert 0 < fc.sum() < 60


def test_batches_larger_than_a_chunk_match_qhull(rng):
    # The core works on slices of grasps; a batch spanning several must still line up.
    p, n = box_contacts(rng, 600, 4)
    mu = rng.uniform(0.3, 1.0, size=600)
    q = epsilon_quality(p, n, mu, num_edges=4, torque_scale=0.05)
    for b in range(0, 600, 7):
        w = friction_cone_wrenches(p[b], n[b], mu[b], num_edges=4, torque_scale=0.05)
        assert q[b] == pytest.approx(qhull_epsilon(w), abs=1e-9)


def _structured_cases():
    """Symmetric contact layouts: many exactly coplanar wrenches and non-simplicial facets."""
    r = 0.05
    faces = np.concatenate([np.eye(3), -np.eye(3)]) * r
    tet = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) * (r / math.sqrt(3))
    corners = np.array([[1, 1, 1], [1, 1, -1], [1, -1, 1], [-1, 1, 1], [-1, -1, -1]]) * 0.03
    jaw = np.array([[0.01, 0, r], [-0.01, 0, r], [0.01, 0, -r], [-0.01, 0, -r]])
    layouts = {
        "cube_faces": (faces, -faces / r),
        "tetrahedron": (tet, -tet / r),
        "corners_x_normals": (corners, -np.sign(corners) * [1.0, 0.0, 0.0]),
        "parallel_jaw": (jaw, -np.sign(jaw) * [0.0, 0.0, 1.0]),
    }
    for name, (p, n) in layouts.items():
        for mu in (0.0, 0.3, 1.0):
            for k in (3, 4, 8):
                yield pytest.param(p, n, mu, k, id=f"{name}-mu{mu}-k{k}")


@pytest.mark.parametrize(("p", "n", "mu", "k"), list(_structured_cases()))
def test_symmetric_degenerate_layouts_match_qhull(p, n, mu, k):
    w = friction_cone_wrenches(p, n, mu, num_edges=k, torque_scale=0.05)
    try:
        hull = ConvexHull(w)
        ref_q, ref_v = qhull_epsilon(w), hull.volume
    except QhullError:
        # Qhull refuses lower-dimensional input. Here that is right only without friction: every
        # cone edge is then the normal, so these layouts (at most six contacts) give at most six
        # distinct wrenches, whose hull is at most 5-dimensional (volume 0) and cannot be force
        # closure (frictionless closure needs seven contacts): Q1 = 0 analytically. A refusal
        # with friction is a failure, not "expect 0".
        assert mu == 0.0, f"Qhull refused the wrenches of a grasp with friction mu = {mu}"
        ref_q, ref_v = 0.0, 0.0
    assert epsilon_quality(p, n, mu, num_edges=k, torque_scale=0.05) == pytest.approx(ref_q, abs=1e-10)
    assert hull_volume(p, n, mu, num_edges=k, torque_scale=0.05) == pytest.approx(ref_v, rel=1e-9, abs=1e-12)


def test_mask_equals_dropping_contacts(rng):
    p, n = box_contacts(rng, 40, 7)
    mu = rng.uniform(0.2, 1.0, size=(40, 7))
    mask = rng.random((40, 7)) < 0.75
    mask[:, :2] = True
    p_nan = np.where(mask[..., None], p, np.nan)  # masked contacts may hold anything
    q = epsilon_quality(p_nan, n, mu, num_edges=5, torque_scale=0.05, mask=mask)
    vol = hull_volume(p_nan, n, mu, num_edges=5, torque_scale=0.05, mask=mask)
    for b in range(40):
        keep = mask[b]
        ref = epsilon_quality(p[b, keep], n[b, keep], mu[b, keep], num_edges=5, torque_scale=0.05)
        assert q[b] == pytest.approx(ref, abs=1e-12)
        ref_v = hull_volume(p[b, keep], n[b, keep], mu[b, keep], num_edges=5, torque_scale=0.05)
        assert vol[b] == pytest.approx(ref_v, rel=1e-9, abs=1e-300)


def test_wrench_level_3d_matches_qhull(rng):
    w = rng.normal(size=(50, 12, 3)) + rng.normal(size=(50, 1, 3)) * 0.6
    q = wrench_epsilon(w)
    v = wrench_hull_volume(w)
    for b in range(50):
        assert q[b] == pytest.approx(qhull_epsilon(w[b]), abs=1e-10)
        assert v[b] == pytest.approx(ConvexHull(w[b]).volume, rel=1e-10)


# ------------------------------------------------------------------------------ degenerate / bad input


def test_degenerate_inputs_return_zero_not_crash(rng):
    p, n = sphere_contacts(rng, 3, 4)
    n[1, 2] = 0.0  # grasp 1 has a zero normal
    q = epsilon_quality(p, n, 0.5)
    assert q[1] == 0.0 and not force_closure(p, n, 0.5)[1] and hull_volume(p, n, 0.5)[1] == 0.0
    # Too few wrenches for a 6-D hull, coplanar points, all-masked grasps.
    assert wrench_epsilon(rng.normal(size=(6, 6))) == 0.0
    flat = rng.normal(size=(20, 6))
    flat[:, 5] = 0.0
    assert wrench_epsilon(flat) == 0.0 and wrench_hull_volume(flat) == 0.0
    assert epsilon_quality(p[0], n[0], 0.5, mask=np.zeros(4, dtype=bool)) == 0.0
    assert wrench_epsilon(np.zeros((0, 10, 6))).shape == (0,)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"points": np.zeros((2, 3, 2))}, "points"),
        ({"normals": np.zeros((2, 4, 3))}, "normals"),
        ({"mu": np.ones(5)}, "mu"),
        ({"mu": -0.1}, "mu"),
        ({"mu": np.nan}, "mu"),
        ({"num_edges": 2}, "num_edges"),
        ({"torque_scale": 0.0}, "torque_scale"),
        ({"torsion": -0.001}, "torsion"),
        ({"torsion": np.full(4, 0.001)}, "torsion"),
        ({"torsion": np.nan}, "torsion"),
        ({"center": np.zeros(2)}, "center"),
        ({"mask": np.ones((2, 3), dtype=int)}, "mask"),
        ({"points": np.full((2, 3, 3), np.nan)}, "points"),
        ({"normals": np.full((2, 3, 3), np.inf)}, "normals"),
    ],
)
def test_bad_input_raises_configuration_error_naming_the_argument(kwargs, name):
    args = {"points": np.ones((2, 3, 3)), "normals": np.ones((2, 3, 3)), "mu": 0.5}
    args.update(kwargs)
    for fn in (epsilon_quality, force_closure, hull_volume):
        with pytest.raises(ConfigurationError, match=name) as info:
            fn(**args)
        assert isinstance(info.value, HandsimError)
    with pytest.raises(ConfigurationError, match="wrenches"):
        wrench_epsilon(np.full((10, 6), np.nan))
    with pytest.raises(ConfigurationError, match="wrenches"):
        wrench_epsilon(np.zeros(6))


# ------------------------------------------------------------------------------ one grasp's path


def _one_grasp_cases(rng: np.random.Generator):
    """Grasps of every kind the env scores, and degenerate ones: (points, normals, mu, k, torsion)."""
    for i in range(120):
        c = int(rng.integers(1, 17))  # 1 and 2 contacts are never closure; 16 x 8 edges grow the slots
        k = int(rng.choice([3, 4, 6, 8]))
        p, n = (sphere_contacts if i % 2 else box_contacts)(rng, 1, c)
        mu = float(rng.choice([0.0, rng.uniform(0.1, 1.2)])) if i % 5 == 0 else float(rng.uniform(0.1, 1.2))
        yield p[0], n[0], mu, k, (0.004 if i % 3 == 0 else None)
    for p, n, mu, k in (case.values for case in _structured_cases()):
        yield p, n, mu, k, None
        yield p, n, mu, k, 0.003
    p, n = sphere_contacts(rng, 1, 4)
    n[0, 1] = 0.0  # a zero normal
    yield p[0], n[0], 0.5, 8, None


def test_one_grasp_path_is_bit_identical_to_the_batched_path(rng):
    # A single grasp takes _Hull, a batch _Hulls: the same floating-point steps, so the same bits.
    closure = 0
    for p, n, mu, k, torsion in _one_grasp_cases(rng):
        kw = {"num_edges": k, "torque_scale": 0.05, "center": np.array([0.001, -0.002, 0.0005]), "torsion": torsion}
        one = epsilon_quality(p, n, mu, **kw)
        two = epsilon_quality(np.stack([p, p]), np.stack([n, n]), mu, **kw)
        assert one.shape == () and float(one) == two[0] == two[1]
        fc = force_closure(p, n, mu, **kw)
        assert bool(fc) == bool(force_closure(np.stack([p, p]), np.stack([n, n]), mu, **kw)[0]) == (one > 0)
        w = friction_cone_wrenches(p, n, mu, num_edges=k, torque_scale=0.05, center=kw["center"], torsion=torsion)
        if np.linalg.norm(n, axis=1).min() > 0 and np.linalg.matrix_rank(w - w.mean(axis=0), tol=1e-9) == 6:
            assert float(one) == pytest.approx(qhull_epsilon(w), abs=1e-9)
        closure += one > 0
    assert closure > 30  # the sample covers both outcomes


def test_one_wrench_set_is_bit_identical_to_a_batch(rng):
    for _ in range(60):
        d = int(rng.integers(2, 7))
        w = rng.normal(size=(int(rng.integers(1, 40)), d)) + rng.normal(size=(1, d)) * 0.5
        if rng.random() < 0.2:
            w[:, -1] = 0.0  # lower-dimensional
        assert float(wrench_epsilon(w)) == wrench_epsilon(np.stack([w, w]))[0]
