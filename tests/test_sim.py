"""The PyBullet simulation layer: objects, the hand body, contacts, the disturbance protocol.

Expected values come from analytic mechanics (free fall, F = m a, box geometry), from
PyBullet's own queries (getAABB, getDynamicsInfo, rayTest) and from trimesh's mass properties,
never from the code under test. The hand is a parallel-jaw test gripper in tests/data (not the
default hand, which is developed separately).
"""

from __future__ import annotations

import gc
import json
import math
import multiprocessing
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pybullet
import pytest
import trimesh

from handsim.errors import (
    ConfigurationError,
    SimulationError,
    UnknownNameError,
    URDFError,
)
from handsim.sim import (
    DIRECTION_VECTORS,
    DisturbanceResult,
    DisturbanceStep,
    HandBody,
    World,
    render_rgb,
    run_disturbance,
    spawn_object,
)
from handsim.tolerances import DEFAULT_PROTOCOL, Protocol
from handsim.transforms import quat_angle, quat_to_matrix

DATA = Path(__file__).resolve().parent / "data"
GRIPPER = DATA / "parallel_gripper.urdf"
# Gripper geometry (see the URDF): a finger's inner face sits at |y| = 0.05 - q in the palm frame.
FINGER_BASE_Y = 0.05
CLOSED_Q = [0.035, 0.035]  # the upper joint limits: 5 mm past touching a 4 cm box
WRIST = np.array([0.0, 0.0, 0.3])
BOX = {"shape": "box", "size": [0.04, 0.04, 0.04], "mass": 0.1, "friction": 0.8, "description": "4 cm cube"}
BOX_AT = WRIST + [0.05, 0.0, 0.0]  # between the fingers
G = DEFAULT_PROTOCOL.gravity


@pytest.fixture
def weak_gripper(tmp_path: Path) -> Path:
    """The gripper with 3 N per finger: friction 2 * 0.8 * 3 N = 4.8 N < the 9.81 N push."""
    path = tmp_path / "weak_gripper.urdf"
    path.write_text(GRIPPER.read_text().replace('effort="20"', 'effort="3"'))
    return path


def grasp_box(world: World, urdf: Path = GRIPPER, spec: dict = BOX) -> tuple[HandBody, object]:
    """Close the gripper on a weightless box, then let it settle with gravity."""
    p = world.protocol
    world.set_gravity(False)
    hand = HandBody(world, urdf, WRIST, [1, 0, 0, 0])
    obj = spawn_object(world, spec, BOX_AT)
    hand.set_targets(CLOSED_Q)
    world.step(p.steps(p.grasp_duration_s))
    world.set_gravity(True)
    world.step(p.steps(p.settle_s))
    return hand, obj


def episode(world: World, urdf: Path = GRIPPER) -> tuple[DisturbanceResult, list[tuple[float, float]], np.ndarray]:
    """One full grasp episode; returns the result, the per-step motion and the final object pose."""
    _, obj = grasp_box(world, urdf)
    trace: list[tuple[float, float]] = []
    result = run_disturbance(world, obj, on_step=lambda s: trace.append((s.translation_m, s.rotation_deg)))
    xyz, quat = obj.pose()
    return result, trace, np.concatenate([xyz, quat])


# -- the protocol --------------------------------------------------------------------------


def test_free_object_drops_under_minus_z_at_the_free_fall_time() -> None:
    protocol = Protocol(directions=("-z",))
    with World(protocol) as world:
        obj = spawn_object(world, BOX, [0, 0, 1])
        result = run_disturbance(world, obj)
    assert not result.held
    assert result.failed_direction == "-z"
    assert result.held_per_direction == {"-z": False}
    assert "dropped under -z" in result.reason
    # Gravity plus 10x weight downwards: 11 g. The 2 cm limit is crossed at t = sqrt(2 d / a),
    # to within a step or two of the time discretisation.
    t_cross = math.sqrt(2 * protocol.max_translation_m / (11 * G))
    assert abs(result.steps * protocol.timestep_s - t_cross) <= 2 * protocol.timestep_s
    assert result.force_n == pytest.approx(10 * 0.1 * G)


def test_a_check_at_the_end_of_a_push_fails_that_direction() -> None:
    # The object rests on a fixed block and no force pushes it (factor 0): every direction holds
    # on motion, so only the check can fail one; it is asked once per direction, after its last step.
    protocol = Protocol(disturbance_factor=0.0)
    asked: list[tuple[str, int]] = []
    with World(protocol) as world:
        c = world.client
        block = c.createMultiBody(0, c.createCollisionShape(pybullet.GEOM_BOX, halfExtents=[0.1, 0.1, 0.05]),
                                  basePosition=[0, 0, 0.95])
        assert block >= 0
        obj = spawn_object(world, BOX, [0, 0, 1.02])
        world.step(protocol.steps(0.3))  # settle on the block

        def check(direction: str) -> str | None:
            asked.append((direction, world.step_count))
            return "forbidden palm.* touched (palm.pad)" if direction == "-x" else None

        start = world.step_count
        result = run_disturbance(world, obj, check=check)
    n = protocol.steps(protocol.direction_duration_s)
    assert asked == [("+x", start + n), ("-x", start + 2 * n)]
    assert not result.held and result.failed_direction == "-x" and result.steps == 2 * n
    assert result.held_per_direction == {"+x": True, "-x": False, "+y": None, "-y": None, "+z": None, "-z": None}
    assert result.reason == "forbidden palm.* touched (palm.pad) under -x (at the end of its push)"


def test_free_object_fails_first_direction_and_skips_the_rest() -> None:
    with World() as world:
        obj = spawn_object(world, BOX, [0, 0, 1])
        result = run_disturbance(world, obj)
        assert obj.velocity()[0][2] < 0  # it was falling, gravity on
        offset = obj.pose()[0] - [0, 0, 1]
    assert result.failed_direction == "+x"
    # It slipped under the push, 10 g along +x, while falling at 1 g: after n steps of
    # semi-implicit Euler the offset is a dt^2 n (n + 1) / 2 with a = (10 g, 0, -g).
    n, dt = result.steps, DEFAULT_PROTOCOL.timestep_s
    np.testing.assert_allclose(offset, np.array([10 * G, 0, -G]) * dt**2 * n * (n + 1) / 2, rtol=0, atol=1e-12)
    assert result.max_translation_m["+x"] == pytest.approx(np.linalg.norm(offset), rel=1e-12)
    assert "+x" in result.reason
    assert result.held_per_direction["+x"] is False
    for d in ("-x", "+y", "-y", "+z", "-z"):
        assert result.held_per_direction[d] is None
        assert result.max_translation_m[d] is None and result.max_rotation_deg[d] is None
    assert json.loads(json.dumps(result.to_dict()))["max_translation_m"]["-z"] is None


def test_applied_force_follows_newton_in_free_flight() -> None:
    # Gravity off, a constant 0.3 N: v = F t / m exactly (the force is re-applied every step).
    with World(gravity=False) as world:
        obj = spawn_object(world, BOX, [0, 0, 0])
        obj.apply_force([0.3, 0.0, 0.0])
        world.step(120)
        v_mid = obj.velocity()[0]
        obj.clear_force()
        world.step(120)
        v_end = obj.velocity()[0]
    expected = 0.3 / 0.1 * 120 * DEFAULT_PROTOCOL.timestep_s
    np.testing.assert_allclose(v_mid, [expected, 0, 0], atol=1e-9)
    np.testing.assert_allclose(v_end, v_mid, atol=1e-9)  # no force, no damping


def test_each_push_follows_newton_along_its_own_direction() -> None:
    # A free box and limits it cannot reach, so every direction runs. run_disturbance switches
    # gravity on and carries the object's state from one direction to the next (no reset), so
    # over direction d's n steps, from the position x0 and velocity v0 it ended the previous one
    # with, PyBullet's semi-implicit Euler (v += a dt, then x += v dt) gives
    #     v = v0 + a n dt,   x = x0 + v0 n dt + a dt^2 n (n + 1) / 2,   a = F u_d / m + g.
    # Taking off the carried velocity and gravity leaves the push alone: along u_d, of size
    # F t^2 / (2 m) with t = n dt, times (n + 1) / n for the time discretisation.
    protocol = Protocol(direction_duration_s=0.1, max_translation_m=100.0)
    start = np.array([0.0, 0.0, 1.0])
    ends: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    trace: dict[str, list[float]] = {d: [] for d in protocol.directions}
    with World(protocol) as world:
        obj = spawn_object(world, BOX, start)

        def on_step(s: DisturbanceStep) -> None:
            pos, _, lin, _ = obj.raw_state()
            ends[s.direction] = (np.array(pos), np.array(lin))
            trace[s.direction].append(s.translation_m)
            assert s.translation_m == pytest.approx(np.linalg.norm(np.subtract(pos, start)), abs=1e-12)

        result = run_disturbance(world, obj, protocol, on_step=on_step)
    assert result.held, result.reason
    n = protocol.steps(protocol.direction_duration_s)
    dt, t, m = protocol.timestep_s, n * protocol.timestep_s, BOX["mass"]
    force = protocol.disturbance_factor * m * G
    assert result.force_n == pytest.approx(force, rel=1e-12)
    gravity = np.array([0.0, 0.0, -G])
    x0, v0 = start, np.zeros(3)
    for d in protocol.directions:
        u = np.array(DIRECTION_VECTORS[d])
        x, v = ends[d]
        push_dv = v - v0 - gravity * t
        push_dx = x - x0 - v0 * t - gravity * dt**2 * n * (n + 1) / 2
        np.testing.assert_allclose(push_dv, force / m * t * u, rtol=0, atol=1e-9, err_msg=d)
        np.testing.assert_allclose(push_dx, force / m * dt**2 * n * (n + 1) / 2 * u, rtol=0, atol=1e-9, err_msg=d)
        assert push_dx @ u == pytest.approx(force * t**2 / (2 * m) * (n + 1) / n, rel=1e-9), d
        assert len(trace[d]) == n
        assert result.max_translation_m[d] == max(trace[d])
        assert result.max_rotation_deg[d] == pytest.approx(0.0, abs=1e-6)  # pushed at the COM
        x0, v0 = x, v


def test_gripper_with_adequate_effort_holds_in_all_six_directions() -> None:
    with World() as world:
        _, obj = grasp_box(world)
        start = obj.pose()[0]
        offsets: dict[str, list[np.ndarray]] = {d: [] for d in DEFAULT_PROTOCOL.directions}
        result = run_disturbance(world, obj, on_step=lambda s: offsets[s.direction].append(obj.pose()[0] - start))
    assert result.held, result.reason
    assert result.failed_direction is None
    assert result.held_per_direction == {d: True for d in DEFAULT_PROTOCOL.directions}
    assert result.reason == "held in all 6 directions"
    assert result.steps == 6 * DEFAULT_PROTOCOL.steps(DEFAULT_PROTOCOL.direction_duration_s)
    assert max(result.max_translation_m.values()) < DEFAULT_PROTOCOL.max_translation_m
    assert max(result.max_rotation_deg.values()) < DEFAULT_PROTOCOL.max_rotation_deg
    assert all(result.max_translation_m[d] > 0 for d in DEFAULT_PROTOCOL.directions), result.max_translation_m
    # Held, the object still gives along each horizontal push: its offset from the pose before
    # the pushes reaches 0.16-5 mm along it here, and stays <= 0 with that push left out. The
    # vertical pushes cannot be told apart this way (under +z the fingers' friction holds the
    # box 0.2 mm below its start, and it sags about as far under gravity alone as under -z);
    # test_each_push_follows_newton_along_its_own_direction checks every push on a free box.
    for d in ("+x", "-x", "+y", "-y"):
        along = max(o @ np.array(DIRECTION_VECTORS[d]) for o in offsets[d])
        assert along > 5e-5, f"under {d} the object moved only {along * 1e3:.4f} mm along the push"


def test_gripper_with_too_little_effort_is_not_held(weak_gripper: Path) -> None:
    with World() as world:
        _, obj = grasp_box(world, weak_gripper)
        start = obj.pose()[0]
        result = run_disturbance(world, obj)
        offset = obj.pose()[0] - start
    assert not result.held
    # Along x only friction resists the push (the fingers close along y), and 4.8 N < 9.81 N:
    # the first push, +x, slips the box out, and the offset points along it.
    assert result.failed_direction == "+x"
    assert offset @ np.array(DIRECTION_VECTORS["+x"]) > 0.95 * np.linalg.norm(offset)
    assert np.linalg.norm(offset) == pytest.approx(result.max_translation_m["+x"], rel=1e-12)
    assert f"under {result.failed_direction}" in result.reason
    assert result.held_per_direction[result.failed_direction] is False
    assert result.max_translation_m[result.failed_direction] > DEFAULT_PROTOCOL.max_translation_m or (
        result.max_rotation_deg[result.failed_direction] > DEFAULT_PROTOCOL.max_rotation_deg
    )


def test_spinning_object_turns_at_the_analytic_angle() -> None:
    # A box spun about its vertical axis at 20 rad/s turns 20 t rad (a principal axis: no
    # precession); an upward push of 10x its weight lifts it, 2 cm only after ~21 ms, so the
    # 15 degree limit is crossed first, between the steps that straddle 15 deg / 20 rad/s.
    protocol = Protocol(directions=("+z",))
    spin = 20.0
    with World(protocol) as world:
        obj = spawn_object(world, BOX, [0, 0, 1])
        world.client.resetBaseVelocity(obj.body_id, [0, 0, 0], [0, 0, spin])
        trace: list[float] = []
        result = run_disturbance(world, obj, on_step=lambda s: trace.append(s.rotation_deg))
    dt = protocol.timestep_s
    expected = [math.degrees(spin * dt * (k + 1)) for k in range(len(trace))]
    np.testing.assert_allclose(trace, expected, rtol=1e-3)
    assert "turned under +z" in result.reason
    assert len(trace) == math.floor(math.radians(protocol.max_rotation_deg) / (spin * dt)) + 1


def test_disturbance_rotation_matches_scipy_for_any_orientation(rng: np.random.Generator) -> None:
    from scipy.spatial.transform import Rotation

    from handsim.sim.protocol import _angle_from

    for _ in range(200):
        q0, q1 = rng.normal(size=4), rng.normal(size=4)  # not unit: both are normalised
        angle = _angle_from(q0)(tuple(np.roll(q1, -1)))  # q0 is (w, x, y, z), PyBullet gives (x, y, z, w)
        r0, r1 = Rotation.from_quat(np.roll(q0, -1)), Rotation.from_quat(np.roll(q1, -1))
        assert angle == pytest.approx((r0.inv() * r1).magnitude(), abs=1e-12)


@pytest.mark.parametrize(("value", "limit", "text"), [
    (15.06, 15.0, "15.1 deg > 15.0 deg"),
    (15.04, 15.0, "15.04 deg > 15.00 deg"),  # one decimal would read "15.0 deg > 15.0 deg"
    (15.0004, 15.0, "15.0004 deg > 15.0000 deg"),
    (31.2, 15.0, "31.2 deg > 15.0 deg"),
    (15.000001, 15.0, "just over the 15.0 deg"),  # the caller appends " limit"
])
def test_a_failure_reason_never_reads_value_equal_to_limit(value: float, limit: float, text: str) -> None:
    from handsim.tolerances import over_limit

    assert over_limit(value, limit, "deg") == text


def test_blow_up_is_reported_as_simulation_error() -> None:
    # A speed cap far below free-fall speed stands in for a blown-up state.
    with World(Protocol(max_linear_speed_m_s=0.05, directions=("-z",))) as world:
        obj = spawn_object(world, BOX, [0, 0, 1])
        with pytest.raises(SimulationError, match=r"blow-up under -z.*max_linear_speed_m_s"):
            run_disturbance(world, obj)


# -- contacts ------------------------------------------------------------------------------


def test_contact_normals_point_into_the_object_from_each_finger() -> None:
    with World() as world:
        hand, obj = grasp_box(world)
        contacts = hand.contacts(obj)
        obj_xyz, obj_quat = obj.pose()
    assert len(contacts) >= 2
    assert set(contacts.link_names) == {"left_finger", "right_finger"}
    names = np.array(contacts.link_names)
    # The left finger sits at +y and pushes towards -y; the right one the opposite.
    left, right = names == "left_finger", names == "right_finger"
    assert np.all(contacts.normals[left] @ [0, -1, 0] > 0.99)
    assert np.all(contacts.normals[right] @ [0, 1, 0] > 0.99)
    # The points lie on the box's +y / -y faces (object frame), within the solver's overlap.
    local = (contacts.points - obj_xyz) @ quat_to_matrix(obj_quat)
    np.testing.assert_allclose(local[left, 1], 0.02, atol=1e-3)
    np.testing.assert_allclose(local[right, 1], -0.02, atol=1e-3)
    assert np.all(contacts.distances <= DEFAULT_PROTOCOL.contact_distance_m)
    # Each finger squeezes with (about) its 20 N effort limit, and the two balance.
    assert contacts.normal_forces[left].sum() == pytest.approx(20.0, rel=0.15)
    assert contacts.normal_forces[right].sum() == pytest.approx(20.0, rel=0.15)
    assert contacts.link_indices.dtype == np.int64 and len(contacts.link_indices) == len(contacts)


def test_penetration_is_reported_for_an_overlapping_placement() -> None:
    with World(gravity=False) as world:
        hand = HandBody(world, GRIPPER, WRIST, [1, 0, 0, 0])
        obj = spawn_object(world, BOX, BOX_AT)
        assert hand.max_penetration(obj) == 0.0  # open fingers: 1 cm gap each side
        # Fingers closed to q = 0.035: faces at |y| = 0.015, the box face at 0.02: 5 mm overlap.
        hand.reset_joints(CLOSED_Q)
        assert hand.max_penetration(obj) == pytest.approx(0.005, abs=2e-4)
        world.step(1)
        assert np.min(hand.contacts(obj).distances) < -0.001


def test_no_contacts_without_touching() -> None:
    with World(gravity=False) as world:
        hand = HandBody(world, GRIPPER, WRIST, [1, 0, 0, 0])
        obj = spawn_object(world, BOX, BOX_AT)
        world.step(2)
        c = hand.contacts(obj)
    assert len(c) == 0 and c.points.shape == (0, 3) and c.normals.shape == (0, 3)


# -- reproducibility -----------------------------------------------------------------------


@pytest.mark.slow
def test_runs_reset_and_parallel_worlds_are_bit_identical(weak_gripper: Path) -> None:
    with World() as world:
        ref = episode(world)

    # 1. Same inputs in a fresh world.
    with World() as world:
        again = episode(world)

    # 2. Reset after a different episode (another hand, a dropped sphere).
    with World() as world:
        episode(world, weak_gripper)
        spawn_object(world, {"shape": "sphere", "radius": 0.03, "mass": 0.2, "friction": 0.5}, [0.1, 0, 0.2])
        world.step(50)
        world.reset()
        after_reset = episode(world)

    # 3. Interleaved with another world stepping between every step of this one.
    with World() as other, World() as world:
        _, other_obj = grasp_box(other, weak_gripper)
        other_obj.apply_force([0.0, 3.0, 0.0])
        _, obj = grasp_box(world)
        trace: list[tuple[float, float]] = []

        def step_other_too(s) -> None:
            trace.append((s.translation_m, s.rotation_deg))
            other.step(1)

        result = run_disturbance(world, obj, on_step=step_other_too)
        xyz, quat = obj.pose()
        interleaved = (result, trace, np.concatenate([xyz, quat]))

    for run in (again, after_reset, interleaved):
        assert run[0] == ref[0]
        assert run[1] == ref[1]  # every step's motion, exactly
        assert np.array_equal(run[2], ref[2])


def _episode_in_this_process() -> tuple[dict, list[tuple[float, float]], list[float]]:
    with World() as world:
        result, trace, pose = episode(world)
    return result.to_dict(), trace, pose.tolist()


@pytest.mark.slow
def test_episode_is_bit_identical_in_a_fresh_process() -> None:
    # A process pool of any size must give the results of a serial run: compare a fresh
    # interpreter (spawn) against this one, where many other episodes have already run.
    here = _episode_in_this_process()
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        there = pool.submit(_episode_in_this_process).result(timeout=120)
    assert there == here


def test_bodies_from_before_reset_are_rejected() -> None:
    with World() as world:
        obj = spawn_object(world, BOX, [0, 0, 0])
        world.reset()
        assert not obj.valid
        with pytest.raises(SimulationError, match="before World.reset"):
            obj.pose()
    with pytest.raises(SimulationError, match="closed"):
        world.step()
    # PyBullet reuses client ids: dropping a closed World must not disconnect a newer one.
    old = World()
    old.close()
    new = World()
    del old
    gc.collect()
    new.step()
    new.close()


# -- objects -------------------------------------------------------------------------------

SHAPES = {
    "sphere": ({"shape": "sphere", "radius": 0.035}, [0.035, 0.035, 0.035]),
    "box": ({"shape": "box", "size": [0.085, 0.054, 0.002]}, [0.0425, 0.027, 0.001]),
    "cylinder": ({"shape": "cylinder", "radius": 0.01, "length": 0.2}, [0.01, 0.01, 0.1]),
    "capsule": ({"shape": "capsule", "radius": 0.005, "length": 0.14}, [0.005, 0.005, 0.07]),
}


def _trimesh_of(spec: dict) -> trimesh.Trimesh:
    s = spec["shape"]
    if s == "sphere":
        return trimesh.creation.icosphere(subdivisions=5, radius=spec["radius"])
    if s == "box":
        return trimesh.creation.box(extents=spec["size"])
    if s == "cylinder":
        return trimesh.creation.cylinder(radius=spec["radius"], height=spec["length"], sections=256)
    if s == "capsule":  # trimesh's height is the cylindrical part; ours is tip to tip
        # trimesh's default tessellation (finer counts give non-watertight meshes in trimesh 4-5).
        return trimesh.creation.capsule(height=spec["length"] - 2 * spec["radius"], radius=spec["radius"])
    return trimesh.creation.torus(spec["major_radius"], spec["minor_radius"], major_sections=256, minor_sections=128)


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_primitive_spawns_with_mass_aabb_and_inertia(name: str) -> None:
    geometry, half = SHAPES[name]
    spec = {**geometry, "mass": 0.07, "friction": 0.6}
    centre = np.array([0.1, -0.2, 0.5])
    with World() as world:
        obj = spawn_object(world, spec, centre)
        dyn = world.client.getDynamicsInfo(obj.body_id, -1)
        lo, hi = world.client.getAABB(obj.body_id)
        np.testing.assert_allclose(obj.pose()[0], centre)
    assert dyn[0] == pytest.approx(0.07)
    assert dyn[1] == pytest.approx(0.6)
    np.testing.assert_allclose(lo, centre - half, atol=1e-6)
    np.testing.assert_allclose(hi, centre + half, atol=1e-6)
    mesh = _trimesh_of(spec)
    assert mesh.is_watertight
    mesh.density = 0.07 / mesh.volume
    np.testing.assert_allclose(dyn[2], np.diag(mesh.moment_inertia), rtol=3e-3)


def test_torus_is_a_ring_with_a_hole() -> None:
    spec = {"shape": "torus", "major_radius": 0.05, "minor_radius": 0.008, "mass": 0.05, "friction": 0.7}
    outer, tube = 0.058, 0.008
    with World() as world:
        obj = spawn_object(world, spec, [0, 0, 0])
        c = world.client
        dyn = c.getDynamicsInfo(obj.body_id, -1)
        lo, hi = c.getAABB(obj.body_id)
        # Rays from outside towards the centre meet the outer surface at R + a (the capsule ends
        # sit on the centre circle along x and y); a ray down the axis passes through the hole.
        hits = c.rayTestBatch([[0.2, 0, 0], [0, -0.2, 0], [0.05, 0, 0.2], [0, 0, 0.2]],
                              [[0, 0, 0], [0, 0, 0], [0.05, 0, -0.2], [0, 0, -0.2]])
    assert dyn[0] == pytest.approx(0.05)
    assert hits[0][3][0] == pytest.approx(outer, abs=1e-6)
    assert hits[1][3][1] == pytest.approx(-outer, abs=1e-6)
    assert hits[2][3][2] == pytest.approx(tube, abs=1e-6)
    assert hits[3][0] == -1
    # PyBullet's compound AABB bounds each capsule's box, so it is a little loose.
    assert np.all(np.array(hi) >= [outer - 1e-6, outer - 1e-6, tube - 1e-6])
    assert np.all(np.array(hi) <= [outer * 1.05, outer * 1.05, tube * 1.3])
    np.testing.assert_allclose(lo, -np.array(hi), atol=1e-9)
    mesh = _trimesh_of(spec)
    assert mesh.is_watertight
    mesh.density = 0.05 / mesh.volume
    np.testing.assert_allclose(dyn[2], np.diag(mesh.moment_inertia), rtol=2e-3)


@pytest.mark.parametrize(
    ("spec", "error", "pattern"),
    [
        ({"shape": "sphre", "radius": 0.01, "mass": 0.1, "friction": 0.5}, UnknownNameError, "did you mean 'sphere'.*valid: box, capsule"),
        ({"radius": 0.01, "mass": 0.1, "friction": 0.5}, ConfigurationError, "missing field 'shape'; valid shapes: sphere"),
        ({"shape": "cylinder", "radius": 0.01, "mass": 0.1, "friction": 0.5}, ConfigurationError, "missing field.*length.*needs shape, mass, friction, radius, length"),
        ({"shape": "sphere", "radius": -0.01, "mass": 0.1, "friction": 0.5}, ConfigurationError, "'radius': expected a finite number > 0, got -0.01"),
        ({"shape": "sphere", "radius": 0.01, "mass": 0.0, "friction": 0.5}, ConfigurationError, "'mass'"),
        ({"shape": "sphere", "radius": 0.01, "mass": 0.1, "friction": float("nan")}, ConfigurationError, "'friction'"),
        ({"shape": "box", "size": [0.1, 0.1], "mass": 0.1, "friction": 0.5}, ConfigurationError, "'size': expected 3"),
        ({"shape": "sphere", "radius": 0.01, "mass": 0.1, "friction": 0.5, "radios": 1}, ConfigurationError, "unknown field.*'radios'.*valid"),
        ({"shape": "capsule", "radius": 0.02, "length": 0.03, "mass": 0.1, "friction": 0.5}, ConfigurationError, "tip to tip"),
        ({"shape": "torus", "major_radius": 0.01, "minor_radius": 0.02, "mass": 0.1, "friction": 0.5}, ConfigurationError, "minor_radius < major_radius"),
        ("sphere", ConfigurationError, "expected a mapping"),
    ],
)
def test_bad_object_specs_raise_clear_errors(spec: object, error: type[Exception], pattern: str) -> None:
    with World() as world:
        with pytest.raises(error, match=pattern):
            spawn_object(world, spec, [0, 0, 0])


# -- the hand body -------------------------------------------------------------------------


def test_hand_names_link_frames_and_joints_follow_the_urdf() -> None:
    # A wrist turned 90 deg about x: the palm's y axis maps to world z.
    quat = [math.cos(math.pi / 4), math.sin(math.pi / 4), 0.0, 0.0]
    rot = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]], dtype=float)
    wrist = np.array([0.1, 0.2, 0.3])
    with World(gravity=False) as world:
        hand = HandBody(world, GRIPPER, wrist, quat)
        assert hand.joint_names == ("left_slide", "right_slide")
        assert hand.root_link == "palm" and hand.link_id("palm") == -1
        assert hand.link_name(hand.link_id("right_finger")) == "right_finger"
        assert hand.q_index("right_slide") == 1
        assert hand.joint_index["right_slide"] == hand.link_id("right_finger")  # PyBullet: joint j moves link j
        np.testing.assert_array_equal(hand.effort, [20.0, 20.0])
        q = np.array([0.01, 0.025])
        hand.reset_joints(q)
        np.testing.assert_allclose(hand.joint_state()[0], q, atol=1e-12)
        xyz, quats = hand.link_poses()
        names = hand.link_names
        # The root link frame is the wrist, even though the palm's inertial frame is offset.
        np.testing.assert_allclose(xyz[names.index("palm")], wrist, atol=1e-6)
        np.testing.assert_allclose(quat_to_matrix(quats[names.index("palm")]), rot, atol=1e-6)
        # Prismatic joint frames: origin (0, +-0.05, 0) moved by q along the closing axis.
        np.testing.assert_allclose(xyz[names.index("left_finger")], wrist + rot @ [0, FINGER_BASE_Y - q[0], 0], atol=1e-6)
        np.testing.assert_allclose(xyz[names.index("right_finger")], wrist + rot @ [0, -FINGER_BASE_Y + q[1], 0], atol=1e-6)
        # Motors hold the targets (no gravity, no contact).
        hand.set_targets([0.02, 0.02])
        world.step(240)
        np.testing.assert_allclose(hand.joint_state()[0], [0.02, 0.02], atol=1e-4)
        with pytest.raises(UnknownNameError, match="did you mean 'left_finger'"):
            hand.link_id("left_fingr")
        with pytest.raises(ConfigurationError, match="expected 2 finite joint values"):
            hand.set_targets([0.0])
        with pytest.raises(ConfigurationError, match="'right_slide' = 0.05 is outside its URDF limits"):
            hand.set_targets([0.0, 0.05])


_LOAD_FLAGS = (
    pybullet.URDF_USE_INERTIA_FROM_FILE | pybullet.URDF_USE_SELF_COLLISION | pybullet.URDF_USE_SELF_COLLISION_EXCLUDE_PARENT
)


def _drive_and_drop_a_ball(urdf: Path) -> np.ndarray:
    """Raw PyBullet: fingers closing under effort-capped motors while a ball falls into the
    hand; (steps, q + ball pose) history."""
    cid = pybullet.connect(pybullet.DIRECT)
    try:
        pybullet.setPhysicsEngineParameter(fixedTimeStep=0.004, numSolverIterations=50,
                                           deterministicOverlappingPairs=1, physicsClientId=cid)
        pybullet.setGravity(0, 0, -9.81, physicsClientId=cid)
        body = pybullet.loadURDF(str(urdf), useFixedBase=True, flags=_LOAD_FLAGS, physicsClientId=cid)
        infos = [pybullet.getJointInfo(body, j, physicsClientId=cid) for j in range(pybullet.getNumJoints(body, physicsClientId=cid))]
        movable = [i[0] for i in infos if i[2] != pybullet.JOINT_FIXED]
        upper = [infos[j][9] for j in movable]
        effort = [infos[j][10] for j in movable]
        pybullet.setJointMotorControlArray(body, movable, pybullet.POSITION_CONTROL, targetPositions=[0.7 * u for u in upper],
                                           forces=effort, physicsClientId=cid)
        ball = pybullet.createMultiBody(
            0.05, pybullet.createCollisionShape(pybullet.GEOM_SPHERE, radius=0.025, physicsClientId=cid),
            basePosition=[0.05, 0.0, 0.05], physicsClientId=cid,
        )
        rows, touched = [], 0
        for _ in range(150):
            pybullet.stepSimulation(physicsClientId=cid)
            touched += bool(pybullet.getContactPoints(body, ball, physicsClientId=cid))
            q = [s[0] for s in pybullet.getJointStates(body, movable, physicsClientId=cid)]
            xyz, quat = pybullet.getBasePositionAndOrientation(ball, physicsClientId=cid)
            rows.append([*q, *xyz, *quat])
        assert touched > 10, "the ball should touch the hand"
        return np.array(rows)
    finally:
        pybullet.disconnect(cid)


def test_fingertip_frames_are_left_out_of_pybullet_and_the_physics_is_bit_identical() -> None:
    from handsim.data import DEFAULT_HAND
    from handsim.hand import load_hand
    from handsim.sim.hand import _physics_urdf

    hand = load_hand(DEFAULT_HAND)
    tips = {f.tip_link for f in hand.fingers.values()}
    links = {link.get("name") for link in ET.parse(hand.urdf_path).getroot().findall("link")}
    pruned = _physics_urdf(hand.urdf_path)
    assert {link.get("name") for link in ET.parse(pruned).getroot().findall("link")} == links - tips
    # PyBullet itself runs the pruned copy step for step like the original.
    np.testing.assert_array_equal(_drive_and_drop_a_ball(pruned), _drive_and_drop_a_ball(hand.urdf_path))
    with World() as world:
        body = HandBody(world, hand.urdf_path, visual=False)
        assert set(body.link_names) == links - tips
        with pytest.raises(UnknownNameError, match="index_tip"):
            body.link_id("index_tip")


def test_frame_link_pruning_keeps_shapes_and_resolves_meshes_from_the_original_folder(tmp_path: Path) -> None:
    (tmp_path / "meshes").mkdir()
    trimesh.creation.box(extents=[0.04, 0.02, 0.02]).export(tmp_path / "meshes" / "finger.obj")
    inertial = '<inertial><mass value="0.05"/><inertia ixx="1e-5" ixy="0" ixz="0" iyy="1e-5" iyz="0" izz="1e-5"/></inertial>'
    fixed = '<joint name="{0}_joint" type="fixed"><parent link="{1}"/><child link="{0}"/></joint>'
    (tmp_path / "hand.urdf").write_text(f"""<robot name="t">
  <link name="palm">{inertial}<collision><geometry><box size="0.05 0.05 0.02"/></geometry></collision></link>
  <link name="finger">{inertial}<collision><geometry><mesh filename="meshes/finger.obj"/></geometry></collision></link>
  <joint name="flex" type="revolute"><parent link="palm"/><child link="finger"/><origin xyz="0.05 0 0"/>
    <axis xyz="0 1 0"/><limit lower="0" upper="1.5" effort="1" velocity="5"/></joint>
  <link name="frame_a"><inertial><mass value="0"/><inertia ixx="0" ixy="0" ixz="0" iyy="0" iyz="0" izz="0"/></inertial></link>
  <link name="frame_b"/>
  <link name="sensor"><collision><geometry><sphere radius="0.003"/></geometry></collision></link>
  <link name="weight">{inertial}</link>
  {fixed.format("frame_a", "finger")}
  {fixed.format("frame_b", "frame_a")}
  {fixed.format("sensor", "finger")}
  {fixed.format("weight", "palm")}
</robot>
""")
    with World() as world:
        body = HandBody(world, tmp_path / "hand.urdf", visual=False)
        # frame_b, then frame_a (a frame once frame_b is gone) are dropped; a link with a shape
        # or a mass stays.
        assert set(body.link_names) == {"palm", "finger", "sensor", "weight"}
        shapes = world.client.getCollisionShapeData(body.body_id, body.link_id("finger"))
        assert shapes[0][2] == pybullet.GEOM_MESH and Path(shapes[0][4].decode()) == tmp_path / "meshes" / "finger.obj"


def test_a_pruned_copy_deleted_during_a_run_is_written_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from handsim.data import DEFAULT_HAND
    from handsim.hand import load_hand
    from handsim.sim.hand import _physics_urdf

    monkeypatch.setenv("HANDSIM_CACHE_DIR", str(tmp_path / "cache"))
    urdf = load_hand(DEFAULT_HAND).urdf_path
    # A copy of the hand folder gives a cache key of its own (the key hashes the folder), so
    # the process-wide memo has not seen it yet.
    hand_dir = tmp_path / "hand"
    shutil.copytree(urdf.parent, hand_dir)
    first = _physics_urdf(hand_dir / urdf.name)
    assert first.parent == tmp_path / "cache" / "bullet" and first.is_file()
    shutil.rmtree(tmp_path / "cache")  # e.g. a user clearing ~/.cache while a benchmark runs
    with World() as world:
        body = HandBody(world, hand_dir / urdf.name, visual=False)
        assert body.link_names and first.is_file()


def test_bad_urdfs_raise_urdf_error(tmp_path: Path) -> None:
    zero_effort = tmp_path / "zero_effort.urdf"
    zero_effort.write_text(GRIPPER.read_text().replace('effort="20"', 'effort="0"'))
    with World() as world:
        with pytest.raises(URDFError, match="not found"):
            HandBody(world, tmp_path / "nope.urdf")
        with pytest.raises(URDFError, match="left_slide.*effort"):
            HandBody(world, zero_effort)


def test_protocol_validates_and_round_trips() -> None:
    assert Protocol(**DEFAULT_PROTOCOL.to_dict()) == DEFAULT_PROTOCOL
    assert DEFAULT_PROTOCOL.disturbance_factor == 10.0 and DEFAULT_PROTOCOL.steps(1.0) == 250
    with pytest.raises(ConfigurationError, match="unknown direction 'up'; valid: \\+x"):
        Protocol(directions=("up",))
    with pytest.raises(ConfigurationError, match="max_translation_m"):
        Protocol(max_translation_m=-1.0)


# -- rendering -----------------------------------------------------------------------------


def test_render_returns_a_non_blank_frame_showing_the_scene() -> None:
    with World(gravity=False) as world:
        empty = render_rgb(world, 64, 48, target=BOX_AT, distance=0.3)
        HandBody(world, GRIPPER, WRIST, [1, 0, 0, 0])
        spawn_object(world, {"shape": "torus", "major_radius": 0.03, "minor_radius": 0.006, "mass": 0.02, "friction": 0.5}, BOX_AT)
        frame = render_rgb(world, 64, 48, target=BOX_AT, distance=0.3)
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 5
    assert np.mean(np.any(frame != empty, axis=-1)) > 0.05  # the bodies cover part of the view


# -- thin objects -----------------------------------------------------------------------------


def face_errors(world: World, body_id: int, half_thickness: float) -> list[float]:
    """|PyBullet's distance - the true one| [m] from a 5 mm probe sphere 2 mm off either face
    (local +-z) of a body at the origin, at the centre and at two off-centre points."""
    c = world.client
    probe = c.createMultiBody(0, c.createCollisionShape(pybullet.GEOM_SPHERE, radius=0.005), basePosition=[0, 0, 1])
    errors = []
    for x, y in ((0.0, 0.0), (0.005, 0.003), (-0.004, 0.002)):
        for side in (1.0, -1.0):
            c.resetBasePositionAndOrientation(probe, [x, y, side * (half_thickness + 0.007)], [0, 0, 0, 1])
            distance = min(p[8] for p in c.getClosestPoints(body_id, probe, 0.05))
            errors.append(abs(distance - 0.002))
    c.removeBody(probe)
    return errors


@pytest.mark.parametrize("spec, half", [
    ({"shape": "box", "size": [0.0856, 0.054, 0.00076], "mass": 0.005, "friction": 0.4}, 0.00038),  # palmar pinch's card
    ({"shape": "box", "size": [0.04, 0.04, 0.0012], "mass": 0.005, "friction": 0.4}, 0.0006),
    ({"shape": "cylinder", "radius": 0.02, "length": 0.001, "mass": 0.005, "friction": 0.4}, 0.0005),  # a thin coin
    ({"shape": "box", "size": [0.055, 0.024, 0.0025], "mass": 0.01, "friction": 0.4}, 0.00125),  # lateral's key
])
def test_a_thin_object_collides_at_its_true_faces(spec: dict, half: float) -> None:
    # PyBullet shrinks a box or cylinder by its 1 mm collision margin; one thinner than 2 mm
    # keeps a face up to (1 mm - half) inside itself unless the margin is reduced. PyBullet's
    # own distance query is the check: both faces where the spec puts them, within 1 um.
    with World(gravity=False) as world:
        obj = spawn_object(world, spec, [0, 0, 0])
        assert max(face_errors(world, obj.body_id, half)) < 1e-6
        if half < 0.001:  # not vacuous: the shape PyBullet builds by default is wrong here
            raw = world.client.createCollisionShape(
                pybullet.GEOM_BOX if spec["shape"] == "box" else pybullet.GEOM_CYLINDER,
                **({"halfExtents": [0.5 * v for v in spec["size"]]} if spec["shape"] == "box"
                   else {"radius": spec["radius"], "height": spec["length"]}))
            plain = world.client.createMultiBody(0.005, raw, basePosition=[0, 0, 0])
            world.client.removeBody(obj.body_id)
            assert max(face_errors(world, plain, half)) > 0.5 * (0.001 - half)


# -- soft-finger contact -------------------------------------------------------------------


@pytest.mark.parametrize("torsional", [0.0, DEFAULT_PROTOCOL.hand_torsional_friction_m])
def test_torsional_friction_resists_twisting_a_pinched_sphere(torsional: float) -> None:
    # A sphere pinched between the two flat jaws touches each at one point. A torque about the
    # pinch axis well below the soft-finger limit (2 contacts x torsional x mu x N, ~0.1 N m
    # here) spins it freely with point contacts (torsional 0) and not with soft ones.
    protocol = Protocol(hand_torsional_friction_m=torsional)
    sphere = {"shape": "sphere", "radius": 0.02, "mass": 0.05, "friction": 0.8}
    with World(protocol, gravity=False) as world:
        hand = HandBody(world, GRIPPER, WRIST, [1, 0, 0, 0])
        spins = [world.client.getDynamicsInfo(hand.body_id, hand.link_id(n))[7] for n in hand.link_names]
        assert spins == pytest.approx([torsional] * len(spins))
        obj = spawn_object(world, sphere, BOX_AT)
        hand.set_targets(CLOSED_Q)
        world.step(protocol.steps(protocol.grasp_duration_s))
        _, q0 = obj.pose()
        for _ in range(protocol.steps(0.5)):
            world.client.applyExternalTorque(obj.body_id, -1, [0.0, 0.02, 0.0], flags=pybullet.WORLD_FRAME)
            world.step(1)
        turned = math.degrees(quat_angle(q0, obj.pose()[1]))
    if torsional == 0.0:
        assert turned > 45.0
    else:
        assert turned < 5.0


@pytest.mark.parametrize("fraction, spins", [(0.9, False), (1.1, True)])
def test_a_pinch_resists_a_twist_up_to_the_soft_finger_limit_q1_soft_assumes(fraction: float, spins: bool) -> None:
    # Q1 soft (GraspEpisode.quality(soft=True)) lets each contact twist the object about its
    # normal up to hand_torsional_friction_m x object friction x normal force. PyBullet is the
    # independent source: with the normal forces it reports, a twist below that limit holds
    # the pinched sphere and one 10 % above it spins the sphere (the limit is sharp: 0.95 holds,
    # 1.05 spins).
    protocol = Protocol()
    sphere = {"shape": "sphere", "radius": 0.02, "mass": 0.05, "friction": 0.8}
    with World(protocol, gravity=False) as world:
        hand = HandBody(world, GRIPPER, WRIST, [1, 0, 0, 0])
        obj = spawn_object(world, sphere, BOX_AT)
        hand.set_targets(CLOSED_Q)
        world.step(protocol.steps(protocol.grasp_duration_s))
        normal = sum(c[9] for c in world.client.getContactPoints(hand.body_id, obj.body_id))
        limit = protocol.hand_torsional_friction_m * sphere["friction"] * normal  # [N m]
        assert normal > 1.0  # a real squeeze (the jaws press ~tens of N)
        _, q0 = obj.pose()
        for _ in range(protocol.steps(0.5)):
            world.client.applyExternalTorque(obj.body_id, -1, [0.0, fraction * limit, 0.0], flags=pybullet.WORLD_FRAME)
            world.step(1)
        turned = math.degrees(quat_angle(q0, obj.pose()[1]))
    assert (turned > 45.0) if spins else (turned < 5.0)


# -- solver iterations and the free wrist ----------------------------------------------------


def test_timestep_switch_time_and_reset_restore_the_protocol_step() -> None:
    """PyBullet's own parameter report is the independent source; simulated time adds up the
    steps taken at each step size."""
    protocol = Protocol()
    with World(protocol, gravity=False) as world:
        reported = lambda: world.client.getPhysicsEngineParameters()["fixedTimeStep"]
        assert reported() == pytest.approx(protocol.timestep_s) and world.timestep_s == protocol.timestep_s
        world.set_timestep(protocol.grasp_timestep_s)
        assert reported() == pytest.approx(protocol.grasp_timestep_s)
        world.step(5)
        world.set_timestep(protocol.timestep_s)
        world.step(10)
        assert world.step_count == 15
        assert world.time_s == pytest.approx(5 * protocol.grasp_timestep_s + 10 * protocol.timestep_s)
        world.reset(gravity=False, timestep_s=0.01)
        assert reported() == pytest.approx(0.01) and world.time_s == 0.0
        world.reset(gravity=False)
        assert reported() == pytest.approx(protocol.timestep_s)
        for bad in (0.0, -0.004, float("nan"), True, "0.004"):
            with pytest.raises(ConfigurationError, match="finite number > 0"):
                world.set_timestep(bad)
    with pytest.raises(ConfigurationError, match="grasp_timestep_s"):
        Protocol(grasp_timestep_s=0.0)


def test_finger_servo_closes_alike_at_the_grasp_phase_step() -> None:
    """The motor gain follows the time step (HandBody.set_targets): a free gripper finger
    driven from open to a target follows the same trajectory at the grasp phase's 8 ms step as
    at the protocol's 4 ms step, sampled at the 25 Hz control ticks; with an unscaled gain it
    would close half as fast."""
    protocol = Protocol()

    def trajectory(dt: float) -> np.ndarray:
        with World(protocol, gravity=False) as world:
            world.set_timestep(dt)
            hand = HandBody(world, GRIPPER, WRIST, [1, 0, 0, 0])
            hand.set_targets([0.03, 0.03])
            per_tick = int(round(0.04 / dt))
            out = []
            for _ in range(10):
                world.step(per_tick)
                out.append(hand.joint_state()[0][0])
            return np.array(out)

    fine, coarse = trajectory(protocol.timestep_s), trajectory(protocol.grasp_timestep_s)
    assert fine[0] > 0.005  # it moves within the first tick
    np.testing.assert_allclose(coarse, fine, atol=0.1 * 0.03)


def test_solver_iterations_switch_and_reset_restores_the_protocol_value() -> None:
    """PyBullet's own parameter report is the independent source."""
    protocol = Protocol(solver_iterations=80, grasp_solver_iterations=12)
    with World(protocol, gravity=False) as world:
        reported = lambda: world.client.getPhysicsEngineParameters()["numSolverIterations"]
        assert reported() == world.solver_iterations == 80
        world.set_solver_iterations(protocol.grasp_solver_iterations)
        assert reported() == world.solver_iterations == 12
        world.reset(gravity=False)
        assert reported() == 80
        world.reset(gravity=False, solver_iterations=5)
        assert reported() == world.solver_iterations == 5
        for bad in (0, 2.5, True):
            with pytest.raises(ConfigurationError, match="int >= 1"):
                world.set_solver_iterations(bad)
    with pytest.raises(ConfigurationError, match="grasp_solver_iterations"):
        Protocol(grasp_solver_iterations=0)
    with pytest.raises(ConfigurationError, match="wrist_max_force_n"):
        Protocol(wrist_max_force_n=-1.0)


def test_free_wrist_gripper_follows_its_target_and_holds_a_box_like_a_fixed_one() -> None:
    """A free-wrist gripper (root held by a capped fixed constraint, weight compensated) ends
    where its target is (PyBullet's base pose against the commanded pose), and holds the 4 cm
    box through the six-direction protocol as the fixed-wrist gripper does."""
    with World(gravity=False) as world:
        hand = HandBody(world, GRIPPER, WRIST, [1, 0, 0, 0], free_wrist=True, wrist_max_force=500.0)
        assert hand.wrist_constraint is not None and hand.mass > 0
        target = WRIST + [0.03, -0.02, 0.01]
        turn = np.array([np.cos(0.1), 0.0, 0.0, np.sin(0.1)])  # 0.2 rad about world z
        hand.set_wrist_target(target, turn)
        world.step(100)
        com_pos, com_orn = world.client.getBasePositionAndOrientation(hand.body_id)
        inertial = world.client.getDynamicsInfo(hand.body_id, -1)[3:5]
        pos, orn = world.client.multiplyTransforms(com_pos, com_orn, *world.client.invertTransform(*inertial))
        np.testing.assert_allclose(pos, target, atol=2e-4)
        assert math.degrees(quat_angle(turn, np.array([orn[3], orn[0], orn[1], orn[2]]))) < 0.2
        # Back home, close on the box, and run the protocol with gravity compensated.
        hand.set_wrist_pose(WRIST, [1, 0, 0, 0])
        obj = spawn_object(world, BOX, BOX_AT)
        hand.set_targets(CLOSED_Q)
        world.step(DEFAULT_PROTOCOL.steps(DEFAULT_PROTOCOL.grasp_duration_s))
        hand.compensate_gravity(True)
        world.set_gravity(True)
        world.step(DEFAULT_PROTOCOL.steps(DEFAULT_PROTOCOL.settle_s))
        result = run_disturbance(world, obj)
        assert result.held, result.reason
        assert np.linalg.norm(hand.wrist_pose()[0] - WRIST) < 1e-3
    with World(gravity=False) as world:
        fixed = HandBody(world, GRIPPER, WRIST, [1, 0, 0, 0])
        with pytest.raises(ConfigurationError, match="fixed wrist"):
            fixed.set_wrist_target(WRIST, [1, 0, 0, 0])


@pytest.mark.parametrize("code", [
    "from handsim.sim import World; World().close()",
    "import gymnasium, handsim; gymnasium.make('handsim/Grasp-v0').close()",
])
def test_pybullet_prints_nothing_of_its_own(code):
    # PyBullet prints its build time to stderr on import and "argv[0]=" to stdout on connect;
    # a CLI error must be one line on stderr and the benchmark table alone on stdout.
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == "", (proc.stdout, proc.stderr)


def test_a_cache_dir_that_is_a_file_is_one_line_naming_it_for_urdf_hands(tmp_path, monkeypatch):
    """PyBullet loads a copy of the hand's URDF written to the cache; a cache folder that cannot
    be created is a one-line ConfigurationError naming it (review 17: NotADirectoryError, exit 3)."""
    from handsim.data import hand_dir

    hand = tmp_path / "hand"
    shutil.copytree(hand_dir("default_hand"), hand)  # a new path: not in the copy cache yet
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    monkeypatch.setenv("HANDSIM_CACHE_DIR", str(blocker))
    with World(DEFAULT_PROTOCOL) as world, pytest.raises(ConfigurationError) as info:
        HandBody(world, hand / "hand.urdf", visual=False)
    msg = str(info.value)
    assert f"HANDSIM_CACHE_DIR={blocker}" in msg and "PyBullet's copy of" in msg and "\n" not in msg, msg
    assert blocker.read_text() == "not a folder"
