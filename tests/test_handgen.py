"""The parametric hand generator (handsim.handgen) and ``handsim hand make``.

Independent sources: the hand-built default hand (its URDF and hand.json, for the
default-equivalent and scaled hands), PyBullet's URDF import (joints, limits, masses, link
frames, collision shapes, physics under position control), and expectations written out here
from the generator's contract (which digits and joints a parameter set has).
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import math
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from test_armature import ARMATURE, _inertials, _movable
from test_kinematics import PyBulletReference

from handsim.cli import main
from handsim.data import DEFAULT_HAND, hand_dir, models_dir
from handsim.episode import GraspEpisode
from handsim.errors import ConfigurationError
from handsim.grasp_data import load_hand_grasps
from handsim.grasps import all_grasps, get
from handsim.hand import load_hand
from handsim.handgen import make_hand
from handsim.kinematics import load_urdf
from handsim.scoring.signature import CompiledSignature

p = pytest.importorskip("pybullet")

FOUR = ("index", "middle", "ring", "little")
GRID = list(itertools.product((3, 4, 5), (0, 2, 4, 5, 6), (True, False), (0.8, 1.0, 1.3)))


def _make(tmp_path: Path, fingers=5, thumb_dof=5, dip=True, scale=1.0, **kw) -> Path:
    return make_hand(tmp_path / f"f{fingers}_t{thumb_dof}_{'dip' if dip else 'nodip'}_s{scale}",
                     fingers=fingers, thumb_dof=thumb_dof, dip=dip, scale=scale, **kw)


def _tensors(urdf: Path) -> dict[str, np.ndarray]:
    """Each link's inertia tensor in its link frame, as the URDF states it."""
    return {name: tensor for name, (_, _, tensor) in _inertials(ET.parse(urdf).getroot()).items()}


def _expected_digits(fingers: int, thumb_dof: int) -> tuple[str, ...]:
    return (("thumb",) if thumb_dof else ()) + FOUR[:fingers - 1]


class _Bullet:
    """A hand loaded in its own PyBullet client (fixed base, self-collision like HandBody)."""

    def __init__(self, urdf: Path, free: bool = False) -> None:
        self.cid = p.connect(p.DIRECT)
        flags = p.URDF_USE_INERTIA_FROM_FILE | p.URDF_USE_SELF_COLLISION | p.URDF_USE_SELF_COLLISION_EXCLUDE_PARENT
        self.body = p.loadURDF(str(urdf), basePosition=(0, 0, 1) if free else (0, 0, 0),
                               useFixedBase=not free, flags=flags, physicsClientId=self.cid)
        self.joint, self.link, self.info = {}, {}, {}
        for j in range(p.getNumJoints(self.body, physicsClientId=self.cid)):
            info = p.getJointInfo(self.body, j, physicsClientId=self.cid)
            self.joint[info[1].decode()] = j
            self.link[info[12].decode()] = j
            self.info[info[1].decode()] = info
        self.link[p.getBodyInfo(self.body, physicsClientId=self.cid)[0].decode()] = -1

    def close(self) -> None:
        p.disconnect(self.cid)

    def movable(self) -> list[str]:
        return [n for n, i in sorted(self.info.items(), key=lambda kv: kv[1][0]) if i[2] != p.JOINT_FIXED]

    def mass(self) -> float:
        return sum(p.getDynamicsInfo(self.body, li, physicsClientId=self.cid)[0] for li in self.link.values())

    def shapes(self, link: str) -> list:
        return p.getCollisionShapeData(self.body, self.link[link], physicsClientId=self.cid)

    def overlaps(self, tol: float = 1e-4) -> list[tuple[str, str, float]]:
        """Non-parent link pairs (those EXCLUDE_PARENT lets collide) overlapping deeper than tol [m]."""
        names = {li: n for n, li in self.link.items()}
        solid = [li for li in self.link.values() if p.getCollisionShapeData(self.body, li, physicsClientId=self.cid)]
        parent = {li: p.getJointInfo(self.body, li, physicsClientId=self.cid)[16] for li in solid if li >= 0}
        out = []
        for i, a in enumerate(solid):
            for b in solid[i + 1:]:
                if parent.get(a) == b or parent.get(b) == a:
                    continue
                rows = p.getClosestPoints(self.body, self.body, 0.0, a, b, physicsClientId=self.cid)
                depth = -min((r[8] for r in rows), default=0.0)
                if depth > tol:
                    out.append((names[a], names[b], depth))
        return out


# ---------------------------------------------------------------------------- the grid
@pytest.mark.parametrize("fingers, thumb_dof, dip, scale", GRID)
def test_grid_hand_loads_and_agrees_with_pybullet(tmp_path, fingers, thumb_dof, dip, scale):
    folder = _make(tmp_path, fingers, thumb_dof, dip, scale)
    hand = load_hand(folder)  # hand.json validated against the URDF
    digits = _expected_digits(fingers, thumb_dof)
    assert hand.finger_names == digits
    per_finger = 4 if dip else 3
    assert hand.num_dof == thumb_dof + per_finger * (fingers - 1)
    if thumb_dof:
        assert len(hand.fingers["thumb"].joints) == thumb_dof
        assert hand.thumb_abduction is not None and hand.thumb_abduction.joint == "thumb_cmc_abd"
    else:
        assert hand.thumb_abduction is None
        assert not any(label.startswith("thumb.") for label in hand.regions.labels)
    for f in digits[1 if thumb_dof else 0:]:
        assert (f"{f}_dip" in hand.actuated_joints) == dip
        # No DIP: the fused segment keeps both labels (signatures keep their meaning).
        assert f"{f}.middle.pad" in hand.regions.labels and f"{f}.distal.tip" in hand.regions.labels
    # The kinematics core and the metadata agree on the joints; grasps.json is valid and empty.
    tree = load_urdf(hand.urdf_path)
    assert tree.joint_names == hand.actuated_joints
    assert load_hand_grasps(folder, tree.joint_names, tree.lower, tree.upper, ()) == {}
    bullet = _Bullet(hand.urdf_path)
    try:
        assert bullet.movable() == list(hand.actuated_joints)
        for name in hand.actuated_joints:
            lim, info = hand.joint_limits[name], bullet.info[name]
            assert (lim.lower, lim.upper, lim.effort, lim.velocity) == pytest.approx(info[8:12], abs=1e-9)
            assert lim.lower < lim.upper and lim.effort > 0
        # Every link that can touch an object has a region, but the 6-DoF thumb's MCP hub
        # (documented: the schema gives links below a segment no region, so it is 'other').
        for link, li in bullet.link.items():
            if p.getCollisionShapeData(bullet.body, li, physicsClientId=bullet.cid) and link != "thumb_knuckle":
                assert link in hand.regions, link
        # Laid out like the default hand: nothing overlaps at the zero pose.
        assert not bullet.overlaps()
    finally:
        bullet.close()


# ---------------------------------------------------------------------------- default-equivalent
def test_default_equivalent_hand_is_the_default_hand(tmp_path, rng):
    folder = make_hand(tmp_path / "gen")
    ref_hand, gen_hand = load_hand(DEFAULT_HAND), load_hand(folder)
    ref, gen = load_urdf(ref_hand.urdf_path), load_urdf(gen_hand.urdf_path)
    assert gen.link_names == ref.link_names
    assert gen.joint_names == ref.joint_names and gen.mimic_joint_names == ref.mimic_joint_names
    assert set(gen.joints) == set(ref.joints)
    for name, a in ref.joints.items():
        b = gen.joints[name]
        assert (b.type, b.parent, b.child) == (a.type, a.parent, a.child), name
        np.testing.assert_allclose(b.origin, a.origin, atol=1e-9, rtol=0, err_msg=name)
        np.testing.assert_allclose(b.axis, a.axis, atol=1e-9, rtol=0, err_msg=name)
        assert (b.lower, b.upper, b.effort, b.velocity) == pytest.approx((a.lower, a.upper, a.effort, a.velocity),
                                                                         abs=1e-9), name
    qs = rng.uniform(ref.lower, ref.upper, size=(200, ref.num_joints))
    np.testing.assert_allclose(gen.forward_kinematics(qs), ref.forward_kinematics(qs), atol=1e-9, rtol=0)
    # The metadata too: fingers, thumb rule, region geometry, label vocabulary.
    assert gen_hand.fingers == ref_hand.fingers
    assert gen_hand.thumb_abduction == ref_hand.thumb_abduction
    assert gen_hand.regions.labels == ref_hand.regions.labels
    for region in ref_hand.regions.regions:
        other = gen_hand.regions.region(region.link)
        assert (other.part, other.length, other.tip_from, other.pad_half_angle_deg, other.dorsal_half_angle_deg) == (
            region.part, region.length, region.tip_from, region.pad_half_angle_deg, region.dorsal_half_angle_deg)
        for key in ("center", "axis", "palmar"):
            np.testing.assert_allclose(getattr(other, key), getattr(region, key), atol=1e-12)
    # Masses recomputed from the primitives at the default's density: the default hand's weight.
    a, b = _Bullet(ref_hand.urdf_path, free=True), _Bullet(gen_hand.urdf_path, free=True)
    try:
        assert b.mass() == pytest.approx(a.mass(), rel=1e-3)
    finally:
        a.close()
        b.close()
    # Inertias too, the v6 joint armature included (the shipped file was written by hand-run
    # edits of v5's; the generator adds the armature itself). The shipped palm keeps only the
    # diagonal of its two boxes' compound tensor (off-diagonals 1-3 % of it), to 4 digits.
    ref_t, gen_t = _tensors(ref_hand.urdf_path), _tensors(gen_hand.urdf_path)
    assert ref_t.keys() == gen_t.keys()
    for link, tensor in ref_t.items():
        other, tol = (np.diag(np.diag(gen_t[link])), 1e-3) if link == "palm" else (gen_t[link], 1e-5)
        np.testing.assert_allclose(other, tensor, rtol=0, atol=tol * np.abs(tensor).max() + 1e-12, err_msg=link)


def test_four_dof_thumb_is_the_default_hand_without_roll(tmp_path, rng):
    """thumb_dof=4 fixes thumb_cmc_roll at 0: every link frame is the default hand's with the
    roll at 0 (the v2 default hand's thumb), PyBullet's FK of the default hand as reference."""
    gen_hand = load_hand(_make(tmp_path, thumb_dof=4))
    assert gen_hand.fingers["thumb"].joints == ("thumb_cmc_abd", "thumb_cmc_flex", "thumb_mcp", "thumb_ip")
    gen = load_urdf(gen_hand.urdf_path)
    ref = _Bullet(load_hand(DEFAULT_HAND).urdf_path)
    try:
        qs = rng.uniform(gen.lower, gen.upper, size=(10, gen.num_joints))
        frames = gen.forward_kinematics(qs)
        for b, q in enumerate(qs):
            p.resetJointState(ref.body, ref.joint["thumb_cmc_roll"], 0.0, physicsClientId=ref.cid)
            for name, v in zip(gen.joint_names, q):
                p.resetJointState(ref.body, ref.joint[name], v, physicsClientId=ref.cid)
            for li, name in enumerate(gen.link_names):
                if ref.link[name] < 0:
                    continue
                state = p.getLinkState(ref.body, ref.link[name], computeForwardKinematics=True, physicsClientId=ref.cid)
                np.testing.assert_allclose(frames[b, li, :3, 3], state[4], atol=1e-6, err_msg=name)
                rot = np.reshape(p.getMatrixFromQuaternion(state[5]), (3, 3))
                np.testing.assert_allclose(frames[b, li, :3, :3], rot, atol=1e-6, err_msg=name)
    finally:
        ref.close()


@pytest.mark.parametrize("scale", [0.8, 1.3])
def test_scaled_hand_is_the_default_hand_scaled(tmp_path, rng, scale):
    ref_hand, gen_hand = load_hand(DEFAULT_HAND), load_hand(make_hand(tmp_path / "gen", scale=scale))
    ref, gen = load_urdf(ref_hand.urdf_path), load_urdf(gen_hand.urdf_path)
    qs = rng.uniform(ref.lower, ref.upper, size=(20, ref.num_joints))
    a, b = ref.forward_kinematics(qs), gen.forward_kinematics(qs)
    np.testing.assert_allclose(b[..., :3, :3], a[..., :3, :3], atol=1e-9)     # same angles
    np.testing.assert_allclose(b[..., :3, 3], scale * a[..., :3, 3], atol=1e-9)  # lengths x scale
    np.testing.assert_allclose(gen.effort, ref.effort * scale ** 3, rtol=1e-9)
    np.testing.assert_allclose(gen.velocity, ref.velocity)
    # Inertias, the joint armature's included, go with scale**5 (the metacarpal's thenar, whose
    # part outside the capsule is summed on a fixed 0.4 mm grid, to 1e-4).
    ref_t, gen_t = _tensors(ref_hand.urdf_path), _tensors(gen_hand.urdf_path)
    for link, tensor in ref_t.items():
        if link != "palm":  # the shipped palm's tensor is diagonal only (above)
            tol = 1e-4 if link == "thumb_metacarpal" else 1e-5
            np.testing.assert_allclose(gen_t[link], scale ** 5 * tensor, rtol=0,
                                       atol=tol * scale ** 5 * np.abs(tensor).max() + 1e-12, err_msg=link)
    ba, bb = _Bullet(ref_hand.urdf_path, free=True), _Bullet(gen_hand.urdf_path, free=True)
    try:
        assert bb.mass() == pytest.approx(ba.mass() * scale ** 3, rel=1e-3)
        for link in ("index_distal", "thumb_metacarpal", "palm"):
            for sa, sb in zip(ba.shapes(link), bb.shapes(link)):
                np.testing.assert_allclose(sb[3], scale * np.array(sa[3]), atol=1e-9)  # dimensions
    finally:
        ba.close()
        bb.close()


# ---------------------------------------------------------------------------- FK vs PyBullet
def test_a_fixed_joint_carries_no_armature(tmp_path):
    """The armature stands for a joint's actuator: a joint the generator fixes (the DIPs with
    dip=False, the CMC roll with thumb_dof=4) leaves its child link without it, and every other
    link keeps the default-equivalent hand's tensor. PyBullet loads the tensors it is given."""
    full = _make(tmp_path)
    axes = dict(_movable(ET.parse(full / "hand.urdf").getroot()))
    base = _tensors(full / "hand.urdf")
    for kw, freed in (({"dip": False}, [f"{f}_distal" for f in FOUR]), ({"thumb_dof": 4}, ["thumb_metacarpal"])):
        folder = _make(tmp_path, **kw)
        tensors = _tensors(folder / "hand.urdf")
        assert not set(freed) & {child for child, _ in _movable(ET.parse(folder / "hand.urdf").getroot())}
        for link, tensor in base.items():
            want = tensor - ARMATURE * (0.5 * np.eye(3) + 0.5 * np.outer(axes[link], axes[link])) if link in freed else tensor
            np.testing.assert_allclose(tensors[link], want, rtol=0, atol=1e-12, err_msg=f"{kw} {link}")
        bullet = _Bullet(folder / "hand.urdf")
        try:
            for link in freed:
                local = p.getDynamicsInfo(bullet.body, bullet.link[link], physicsClientId=bullet.cid)[2]
                np.testing.assert_allclose(sorted(local), np.linalg.eigvalsh(tensors[link]), rtol=1e-5, err_msg=link)
        finally:
            bullet.close()


@pytest.mark.parametrize("kw", [
    {"fingers": 5, "thumb_dof": 6, "dip": True, "scale": 1.3},
    {"fingers": 4, "thumb_dof": 2, "dip": False, "scale": 0.8},
    {"fingers": 3, "thumb_dof": 0, "dip": True, "scale": 1.0},
    {"fingers": 4, "thumb_dof": 5, "dip": False, "scale": 1.0, "finger_lengths": [0.13, 0.1, 0.08, 0.09]},
    {"fingers": 5, "thumb_dof": 4, "dip": True, "scale": 1.0},
], ids=["f5_t6_s1.3", "f4_t2_nodip_s0.8", "f3_t0", "f4_lengths", "f5_t4"])
def test_fk_matches_pybullet(tmp_path, rng, kw):
    folder = _make(tmp_path, **kw)
    tree = load_urdf(load_hand(folder).urdf_path)
    ref = PyBulletReference(folder / "hand.urdf", tree)
    try:
        qs = rng.uniform(tree.lower, tree.upper, size=(8, tree.num_joints))
        ours = tree.forward_kinematics(qs)
        for b, q in enumerate(qs):
            ref.set_q(q)
            frames = ref.link_frames()
            for li, name in enumerate(tree.link_names):
                np.testing.assert_allclose(ours[b, li], frames[name], atol=1e-6, rtol=0, err_msg=name)
    finally:
        ref.close()


def test_finger_lengths_are_the_lengths_asked_for(tmp_path):
    """From the first joint of each digit (CMC / MCP) to the far end of its distal capsule, at the
    straight zero pose, measured on PyBullet's collision shapes."""
    asked = {"thumb": 0.13, "index": 0.10, "middle": 0.08, "ring": 0.09}
    scale = 1.1
    folder = _make(tmp_path, fingers=4, scale=scale, finger_lengths=list(asked.values()))
    hand = load_hand(folder)
    bullet = _Bullet(hand.urdf_path)
    default = _Bullet(load_hand(DEFAULT_HAND).urdf_path)
    try:
        for finger, length in asked.items():
            first = hand.fingers[finger].links[0]
            start = np.array(p.getLinkState(bullet.body, bullet.link[first], computeForwardKinematics=True,
                                            physicsClientId=bullet.cid)[4])
            distal = hand.fingers[finger].segments["distal"]
            (shape,) = bullet.shapes(distal)
            cyl, radius = shape[3][0], shape[3][1]
            state = p.getLinkState(bullet.body, bullet.link[distal], computeForwardKinematics=True,
                                   physicsClientId=bullet.cid)
            rot = np.reshape(p.getMatrixFromQuaternion(state[1]), (3, 3))
            centre = np.array(state[0]) + rot @ np.array(shape[5])
            axis = rot @ np.reshape(p.getMatrixFromQuaternion(shape[6]), (3, 3))[:, 2]
            axis *= np.sign(axis @ (centre - start))
            end = centre + (cyl / 2 + radius) * axis
            assert np.linalg.norm(end - start) == pytest.approx(length, abs=1e-6), finger
            # Radii follow the scale only.
            (ref_shape,) = default.shapes(distal)
            assert radius == pytest.approx(scale * ref_shape[3][1], abs=1e-9)
    finally:
        bullet.close()
        default.close()


# ---------------------------------------------------------------------------- physics
def _reach_failures(hand, bullet: _Bullet) -> list:
    """Each joint in turn to 20 % and 80 % of its range, the others at 0, under gravity, with
    self-collision and the URDF torque caps (as tests/test_hand.py does for the default hand)."""
    cid, body = bullet.cid, bullet.body
    p.setGravity(0, 0, -9.81, physicsClientId=cid)
    ids = [bullet.joint[j] for j in hand.actuated_joints]
    forces = [hand.joint_limits[j].effort for j in hand.actuated_joints]
    failures = []
    for k, name in enumerate(hand.actuated_joints):
        lim = hand.joint_limits[name]
        for frac in (0.2, 0.8):
            for j in ids:
                p.resetJointState(body, j, 0.0, physicsClientId=cid)
            target = np.zeros(len(ids))
            target[k] = lim.lower + frac * (lim.upper - lim.lower)
            p.setJointMotorControlArray(body, ids, p.POSITION_CONTROL, targetPositions=target, forces=forces,
                                        physicsClientId=cid)
            for _ in range(300):
                p.stepSimulation(physicsClientId=cid)
            q = p.getJointState(body, ids[k], physicsClientId=cid)[0]
            if abs(q - target[k]) > math.radians(2.0):
                failures.append((name, frac, round(math.degrees(q - target[k]), 2)))
    return failures


@pytest.mark.slow
@pytest.mark.parametrize("kw", [
    {"fingers": 5, "thumb_dof": 6, "dip": True, "scale": 1.0},
    {"fingers": 4, "thumb_dof": 2, "dip": False, "scale": 0.8},
    {"fingers": 3, "thumb_dof": 0, "dip": True, "scale": 1.3},
    {"fingers": 5, "thumb_dof": 5, "dip": False, "scale": 1.3},
], ids=["f5_t6", "f4_t2_nodip_s0.8", "f3_t0_s1.3", "f5_nodip_s1.3"])
def test_every_joint_reaches_targets(tmp_path, kw):
    hand = load_hand(_make(tmp_path, **kw))
    bullet = _Bullet(hand.urdf_path)
    try:
        assert not _reach_failures(hand, bullet)
    finally:
        bullet.close()


@pytest.mark.parametrize("scale", [0.8, 1.3])
def test_six_dof_thumb_metacarpal_clears_proximal(tmp_path, scale):
    """The metacarpal and the proximal phalanx are not parent and child with thumb_dof=6, so
    PyBullet lets them collide: they must clear each other over the MCP's whole range."""
    hand = load_hand(_make(tmp_path, thumb_dof=6, scale=scale))
    bullet = _Bullet(hand.urdf_path)
    try:
        a, b = bullet.link["thumb_metacarpal"], bullet.link["thumb_proximal"]
        assert bullet.info["thumb_mcp_abd"][16] == a and bullet.info["thumb_mcp"][16] == bullet.link["thumb_knuckle"]
        flex, abd = hand.joint_limits["thumb_mcp"], hand.joint_limits["thumb_mcp_abd"]
        closest = math.inf
        for qf in np.linspace(flex.lower, flex.upper, 7):
            for qa in np.linspace(abd.lower, abd.upper, 5):
                p.resetJointState(bullet.body, bullet.joint["thumb_mcp"], qf, physicsClientId=bullet.cid)
                p.resetJointState(bullet.body, bullet.joint["thumb_mcp_abd"], qa, physicsClientId=bullet.cid)
                rows = p.getClosestPoints(bullet.body, bullet.body, 0.05, a, b, physicsClientId=bullet.cid)
                closest = min(closest, min(r[8] for r in rows))
        assert closest >= 0.001 * scale, closest
    finally:
        bullet.close()


@pytest.mark.slow
def test_grasp_episode_on_a_four_finger_hand_fails_honestly(tmp_path):
    folder = _make(tmp_path, fingers=4)
    ep = GraspEpisode(folder)
    try:
        assert ep.hand.finger_names == ("thumb", "index", "middle", "ring")
        ep.reset(get("tip_pinch"), np.random.default_rng(0))
        for _ in range(ep.grasp_steps):
            ep.apply(ep.rest)
        result = ep.evaluate()
    finally:
        ep.close()
    assert not result.achieved
    assert any("no grasp data" in reason for reason in result.failure_reasons), result.failure_reasons


def test_thumbless_hand_cannot_pinch(tmp_path):
    hand = load_hand(_make(tmp_path, fingers=5, thumb_dof=0))
    assert not any(label.startswith("thumb.") for label in hand.regions.labels)
    signature = get("tip_pinch").signature
    compiled = CompiledSignature.compile(signature, hand.regions.labels)
    thumb_groups = [all(pattern.startswith("thumb.") for pattern in group) for group in signature.required]
    assert any(thumb_groups)
    assert compiled.impossible.tolist() == thumb_groups
    labels = np.zeros(len(hand.regions.labels), dtype=bool)
    labels[hand.regions.label_index("index.distal.pad")] = True
    match = compiled.match(labels, None)
    assert not match.matched
    assert "hand has no region for thumb.distal.tip|thumb.distal.pad" in match.reasons()


def test_thumbless_hand_fails_every_type_that_names_a_thumb_position(tmp_path):
    """A thumb position is part of each type's definition (the taxonomy's thumb column): a hand
    without a thumb meets it nowhere, even where no thumb contact is required; only adduction
    grip (thumb position "any") can pass. The reason names the missing thumb, not a position."""
    hand = load_hand(_make(tmp_path, fingers=5, thumb_dof=0))
    labels = hand.regions.labels
    checked = 0
    for grasp in all_grasps():
        sig = grasp.signature
        if any(all(p.startswith("thumb.") for p in group) for group in sig.required):
            continue  # needs a thumb contact: covered above
        touched = np.zeros(len(labels), dtype=bool)
        for group in sig.required:  # touch one label of every required group
            touched[next(i for i, lab in enumerate(labels) if any(fnmatch.fnmatch(lab, p) for p in group))] = True
        # fingers the type lays along the object do lie along it (index finger extension)
        match = CompiledSignature.compile(sig, labels).match(touched, None, along_deg=np.zeros(len(sig.along)))
        if sig.thumb == "any":
            assert match.matched, grasp.id
        else:
            assert not match.matched, grasp.id
            assert match.reasons() == [f"hand has no thumb, grasp needs thumb {sig.thumb}"], grasp.id
        checked += 1
    assert checked == 6  # small diameter, light tool, fixed hook, index finger extension, palmar, adduction grip


# ---------------------------------------------------------------------------- API errors
@pytest.mark.parametrize("kw, needle", [
    ({"fingers": 2}, "fingers: expected a whole number in 3..5"),
    ({"fingers": True}, "fingers"),
    ({"thumb_dof": 7}, "thumb_dof: expected a whole number in 0..6"),
    ({"scale": float("inf")}, "scale: expected a number in [0.5, 2]"),
    ({"scale": 0.1}, "[0.5, 2]"),
    ({"dip": "no"}, "dip: expected True or False"),
    ({"finger_lengths": [0.1] * 4}, "expected 5 lengths"),
    ({"fingers": 3, "thumb_dof": 0, "finger_lengths": [0.1, 0.5]}, "middle length expected in"),
    ({"name": "no spaces"}, "name:"),
])
def test_bad_parameters_name_the_valid_range(tmp_path, kw, needle):
    with pytest.raises(ConfigurationError) as info:
        make_hand(tmp_path / "h", **kw)
    assert needle in str(info.value)
    assert not (tmp_path / "h").exists()


def test_non_empty_folder_needs_force(tmp_path):
    folder = tmp_path / "h"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(ConfigurationError, match="not empty"):
        make_hand(folder)
    make_hand(folder, fingers=3, force=True)
    assert load_hand(folder).finger_names == ("thumb", "index", "middle")
    assert (folder / "notes.txt").read_text() == "mine"  # other files are left alone


def test_a_folder_inside_the_packages_models_is_refused(tmp_path, monkeypatch, capsys):
    # Review: `hand make <repo>/models/default_hand --force` overwrote the shipped default hand,
    # the template of every generated hand.
    with pytest.raises(ConfigurationError, match="inside the package's"):  # the real one (no --force: harmless)
        make_hand(models_dir() / DEFAULT_HAND, fingers=3)
    # with --force, against a stand-in models folder: a regression must not overwrite the real one
    models = tmp_path / "models"
    shutil.copytree(hand_dir(DEFAULT_HAND), models / DEFAULT_HAND)
    monkeypatch.setattr("handsim.data.models_dir", lambda: models)
    shipped = models / DEFAULT_HAND
    before = {f.name: f.read_bytes() for f in shipped.iterdir()}
    for target in (shipped, models / "new_hand"):
        with pytest.raises(ConfigurationError, match="inside the package's") as info:
            make_hand(target, fingers=3, force=True)
        assert str(target) in str(info.value) and "expected a folder elsewhere" in str(info.value)
    assert main(["hand", "make", str(shipped), "--fingers", "3", "--force"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(shipped) in err[0], err
    assert {f.name: f.read_bytes() for f in shipped.iterdir()} == before
    assert not (models / "new_hand").exists()


def test_force_keeps_a_grasps_json_holding_plans_as_a_backup(tmp_path, capsys):
    # Review: --force emptied a grasps.json holding plans, without a copy.
    folder = make_hand(tmp_path / "h")
    plans = (hand_dir(DEFAULT_HAND) / "grasps.json").read_bytes()
    (folder / "grasps.json").write_bytes(plans)
    (folder / "grasps.json.bak").write_text("an older backup")
    capsys.readouterr()
    assert main(["hand", "make", str(folder), "--fingers", "4", "--force"]) == 0
    out = capsys.readouterr().out
    backup = folder / "grasps.json.bak.1"
    assert backup.read_bytes() == plans and str(backup) in out, out
    assert (folder / "grasps.json.bak").read_text() == "an older backup"  # a backup is never overwritten
    assert json.loads((folder / "grasps.json").read_text()) == {"schema": 1, "grasps": {}}
    # the empty grasps.json make_hand writes is not backed up again
    make_hand(folder, fingers=3, force=True)
    assert "kept as" not in capsys.readouterr().out
    assert sorted(f.name for f in folder.iterdir() if ".bak" in f.name) == ["grasps.json.bak", "grasps.json.bak.1"]


# ---------------------------------------------------------------------------- CLI
def test_cli_makes_a_loadable_folder(tmp_path, capsys):
    out = tmp_path / "four"
    assert main(["hand", "make", str(out), "--fingers", "4", "--no-dip"]) == 0
    assert str(out) in capsys.readouterr().out
    hand = load_hand(out)
    assert hand.finger_names == ("thumb", "index", "middle", "ring")
    assert not any(j.endswith("_dip") for j in hand.actuated_joints)
    assert json.loads((out / "grasps.json").read_text()) == {"schema": 1, "grasps": {}}


@pytest.mark.parametrize("args, needles", [
    (["--fingers", "6"], ["--fingers", "3..5"]),
    (["--fingers", "three"], ["--fingers", "3..5"]),
    (["--thumb-dof", "-1"], ["--thumb-dof", "0..6"]),
    (["--scale", "3"], ["--scale", "[0.5, 2]"]),
    (["--finger-lengths", "0.1,0.1"], ["finger_lengths", "expected 5 lengths"]),
    (["--finger-lengths", "0.1,x"], ["--finger-lengths", "comma-separated"]),
    (["--fingers", "3", "--finger-lengths", "0.12,0.1,0.5"], ["middle length expected in", "m"]),
    ([], None),
])
def test_cli_bad_values_exit_2_with_one_line(tmp_path, capsys, args, needles):
    out = tmp_path / "h"
    if needles is None:  # an existing, non-empty folder without --force
        out.mkdir()
        (out / "x").write_text("")
        needles = ["not empty", "--force"]
    code = main(["hand", "make", str(out), *args])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("handsim hand make: error: "), lines[0]  # argparse's and handsim's alike
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_cli_hand_without_subcommand(capsys):
    assert main(["hand"]) == 2
    assert "valid: make" in capsys.readouterr().err


def test_coupled_dip_hand_follows_its_pips_in_physics(tmp_path):
    """``dip_coupling`` writes each finger's DIP as a URDF <mimic> of its PIP: the hand loads
    with the four DIPs out of the actuated joints (21 -> 17), the thumb untouched, and in
    PyBullet (HandBody's motors) each DIP settles at the coupling times its PIP."""
    from handsim.sim import HandBody, World

    hand = load_hand(make_hand(tmp_path / "c", dip_coupling=0.7))
    assert hand.name == "handgen_f5_t5_dipc0.7_s1" and hand.num_dof == 17 and len(hand.movable_joints) == 21
    fingers = ("index", "middle", "ring", "little")
    assert {j: (m.master, m.multiplier) for j, m in hand.mimic_joints.items()} == {
        f"{f}_dip": (f"{f}_pip", 0.7) for f in fingers}
    assert all(f"{f}_dip" in hand.fingers[f].joints for f in fingers)  # still joints of their fingers
    world = World(gravity=False)
    try:
        body = HandBody(world, hand.urdf_path, visual=False)
        q = np.clip(hand.rest_vector(), body.lower, body.upper)
        for f in fingers:
            q[body.q_index(f"{f}_pip")] = 1.0
        body.set_targets(q)
        for _ in range(500):
            world.step()
        moved, _ = body.movable_joint_state()
        angle = dict(zip(body.movable_joint_names, moved))
        for f in fingers:
            assert angle[f"{f}_pip"] == pytest.approx(1.0, abs=0.01)
            assert angle[f"{f}_dip"] == pytest.approx(0.7 * angle[f"{f}_pip"], abs=0.01)
    finally:
        world.close()


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"dip_coupling": 0.0}, r"dip_coupling: expected a number in \(0, 2\]"),
    ({"dip_coupling": 2.5}, r"dip_coupling: expected a number in \(0, 2\]"),
    ({"dip_coupling": True}, r"dip_coupling: expected a number"),
    ({"dip_coupling": 0.7, "dip": False}, r"dip_coupling: needs DIP joints to couple"),
])
def test_bad_dip_coupling_is_refused(tmp_path, kwargs, match):
    with pytest.raises(ConfigurationError, match=match):
        make_hand(tmp_path / "bad", **kwargs)


def test_hand_make_couple_dip_cli(tmp_path, capsys):
    assert main(["hand", "make", str(tmp_path / "c"), "--couple-dip", "0.7"]) == 0
    assert "17 actuated joints" in capsys.readouterr().out
    assert main(["hand", "make", str(tmp_path / "d"), "--couple-dip", "3"]) == 2
    assert "--couple-dip: expected a number in (0, 2], got 3" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()
