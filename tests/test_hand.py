"""The default hand model and its metadata loader.

Independent sources: PyBullet's own URDF import (joint names, limits, collision shapes,
physics under position control) and hand-broken copies of ``hand.json``.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import least_squares

from handsim.data import hand_dir
from handsim.errors import DataNotFoundError, MetadataError, UnknownNameError, URDFError
from handsim.hand import FINGER_NAMES, load_hand
from handsim.kinematics import load_urdf

p = pytest.importorskip("pybullet")

PRIMITIVES = {"GEOM_BOX", "GEOM_SPHERE", "GEOM_CAPSULE", "GEOM_CYLINDER"}


@pytest.fixture(scope="module")
def hand():
    return load_hand("default_hand")


def _connect(hand, flags: int):
    # Inertias from the file, as the simulator loads the hand (handsim.sim.hand): without it
    # PyBullet gives the shape-less thumb_cmc2 hub ~1e-9 kg m^2 and its solver stalls the thumb.
    cid = p.connect(p.DIRECT)
    body = p.loadURDF(str(hand.urdf_path), useFixedBase=True, flags=flags | p.URDF_USE_INERTIA_FROM_FILE,
                      physicsClientId=cid)
    return cid, body


@pytest.fixture(scope="module")
def bullet(hand):
    cid, body = _connect(hand, 0)
    yield cid, body, _names(cid, body)
    p.disconnect(cid)


def _names(cid, body):
    """(joint name -> index, link name -> index) as PyBullet sees them (palm = -1)."""
    joints, links = {}, {}
    for j in range(p.getNumJoints(body, physicsClientId=cid)):
        info = p.getJointInfo(body, j, physicsClientId=cid)
        joints[info[1].decode()] = j
        links[info[12].decode()] = j
    links[p.getBodyInfo(body, physicsClientId=cid)[0].decode()] = -1
    return joints, links


# ------------------------------------------------------------------------------ metadata
def test_default_hand_loads(hand, bullet):
    cid, body, (joints, links) = bullet
    assert hand.name == "default_hand"
    assert hand.finger_names == FINGER_NAMES
    assert hand.num_dof >= 20
    assert len(hand.fingers["thumb"].joints) >= 4
    assert set(hand.tip_links) == set(FINGER_NAMES)
    assert hand.palm_link in links and links[hand.palm_link] == -1
    for finger in hand.fingers.values():
        for link in (*finger.links, finger.tip_link):
            assert link in links, link
        for joint in finger.joints:
            assert joint in joints, joint
    for link in hand.regions.links:
        assert link in links
    # Every link with collision geometry (every link that can touch an object) has a region.
    for link, li in links.items():
        if p.getCollisionShapeData(body, li, physicsClientId=cid):
            assert link in hand.regions, link
    assert hand.thumb_abduction is not None and hand.thumb_abduction.joint in hand.fingers["thumb"].joints
    for name in hand.rest_pose:
        assert name in hand.actuated_joints


def test_tip_links_are_massless_and_fixed(hand, bullet):
    cid, body, (joints, links) = bullet
    for tip in hand.tip_links.values():
        li = links[tip]
        assert p.getJointInfo(body, li, physicsClientId=cid)[2] == p.JOINT_FIXED
        assert p.getDynamicsInfo(body, li, physicsClientId=cid)[0] == 0.0


def test_same_joints_and_limits_as_pybullet(hand, bullet):
    cid, body, (joints, links) = bullet
    movable = [name for name, j in sorted(joints.items(), key=lambda kv: kv[1])
               if p.getJointInfo(body, j, physicsClientId=cid)[2] != p.JOINT_FIXED]
    assert list(hand.actuated_joints) == movable
    for name in movable:
        info = p.getJointInfo(body, joints[name], physicsClientId=cid)
        lim = hand.joint_limits[name]
        assert (lim.lower, lim.upper, lim.effort, lim.velocity) == pytest.approx(info[8:12], abs=1e-9)
        assert lim.lower < lim.upper
        # human-like torques [N m]; v5 raised the thumb CMC flexion to 6 (an adult key pinch)
        assert 0.4 <= lim.effort <= (6.0 if name == "thumb_cmc_flex" else 3.0), name
        assert 3.0 <= lim.velocity <= 5.0, name        # [rad/s]


def test_collision_shapes_are_primitives_and_mass_is_human(hand, bullet):
    cid, body, (joints, links) = bullet
    kinds = {getattr(p, k): k for k in PRIMITIVES}
    for link, li in links.items():
        for shape in p.getCollisionShapeData(body, li, physicsClientId=cid):
            assert shape[2] in kinds, (link, shape[2])
    # A fixed base reports mass 0, so weigh the hand as a free body.
    free = p.loadURDF(str(hand.urdf_path), basePosition=(0, 0, 1), physicsClientId=cid)
    total = sum(p.getDynamicsInfo(free, li, physicsClientId=cid)[0] for li in links.values())
    p.removeBody(free, physicsClientId=cid)
    assert 0.39 <= total <= 0.6  # kg; an adult hand is about 0.4-0.6 kg


# ---------------------------------------------------------------------- broken metadata
def _broken_copy(tmp_path: Path, edit) -> Path:
    src = hand_dir("default_hand")
    folder = tmp_path / "hand"
    shutil.copytree(src, folder)
    meta = json.loads((folder / "hand.json").read_text())
    edit(meta)
    (folder / "hand.json").write_text(json.dumps(meta))
    return folder


def _set(path: str, value):
    def edit(meta):
        keys = path.split(".")
        node = meta
        for k in keys[:-1]:
            node = node[k]
        if value is _DELETE:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value
    return edit


_DELETE = object()


@pytest.mark.parametrize("edit, needles", [
    (_set("palm_link", _DELETE), ["field palm_link", "missing"]),
    (_set("regions.index_distal.tip_from", _DELETE), ["regions.index_distal.tip_from"]),
    (_set("fingers.index.segments.distal", "index_distl"),
     ["fingers.index.segments.distal", "did you mean 'index_distal'"]),
    (_set("fingers.middle.joints", ["middle_mcp_abd", "middle_mcp_flx", "middle_pip", "middle_dip"]),
     ["fingers.middle.joints[1]", "did you mean 'middle_mcp_flex'"]),
    (_set("regions.index_distal.axis", [0, 0, 0]), ["regions.index_distal.axis", "non-zero"]),
    (_set("regions.palm.palmar", [1, 0, 0]), ["regions.palm.palmar", "perpendicular"]),
    (lambda m: m["fingers"].__setitem__("pinky", m["fingers"].pop("little")), ["fingers.pinky", "valid: index"]),
    (_set("fingers.thumb.segments.middle", "thumb_proximal"), ["fingers.thumb.segments.middle", "metacarpal"]),
    (_set("urdf", "no_such_hand.urdf"), ["field urdf", "no_such_hand.urdf"]),
    (_set("schema", 2), ["field schema", "1"]),
    (_set("regions.ring_distal.tip_from", 1.5), ["regions.ring_distal.tip_from", "[0, 1]"]),
    (_set("regions.ring_distl", {"part": "ring.distal", "axis": [1, 0, 0], "palmar": [0, 0, 1]}),
     ["regions.ring_distl", "did you mean 'ring_distal'"]),
    (_set("regions.ring_middle.part", "ring.distal"), ["regions.ring_middle.part", "'ring.middle'"]),
    (_set("thumb_abduction.abducted_min", 99.0), ["thumb_abduction.abducted_min"]),
    (_set("fingers.index.joints", ["index_mcp_flex", "index_mcp_abd", "index_pip", "index_dip"]),
     ["fingers.index.joints", "in order"]),
    (_set("pad_half_angle_deg", 150), ["dorsal_half_angle_deg", "overlap"]),
    (_set("regions.index_knuckle.part", "index.proximal"),
     ["regions.index_knuckle.part", "'palm'", "between the palm and the finger segments"]),
    (_set("regions.index_tip", {"part": "palm", "axis": [1, 0, 0], "palmar": [0, 0, 1]}),
     ["regions.index_tip", "a link between them"]),
    # a list where a name belongs: a clear error, not a TypeError from hashing it
    (_set("fingers.index.segments.distal", ["index_distal"]),
     ["fingers.index.segments.distal", "name (string)", "['index_distal']"]),
    (_set("fingers.index.joints", [["index_mcp_abd"], "index_mcp_flex", "index_pip", "index_dip"]),
     ["fingers.index.joints[0]", "name (string)"]),
    (_set("thumb_abduction.abducted_mn", 0.3), ["thumb_abduction.abducted_mn", "did you mean 'abducted_min'"]),
])
def test_broken_metadata_is_reported(tmp_path, edit, needles):
    folder = _broken_copy(tmp_path, edit)
    with pytest.raises(MetadataError) as info:
        load_hand(folder)
    message = str(info.value)
    assert str(folder / "hand.json") in message
    for needle in needles:
        assert needle in message, message


def test_hand_json_that_is_not_utf8_is_a_metadata_error(tmp_path):
    # Review: bytes that are not UTF-8 raised UnicodeDecodeError (a traceback, exit 3).
    folder = tmp_path / "hand"
    shutil.copytree(hand_dir("default_hand"), folder)
    (folder / "hand.json").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(MetadataError, match="not UTF-8 text") as info:
        load_hand(folder)
    assert str(folder / "hand.json") in str(info.value)


@pytest.mark.parametrize("attr", ["upper", "effort"])
def test_malformed_urdf_limit_is_reported(tmp_path, attr):
    folder = _broken_copy(tmp_path, lambda meta: None)
    urdf = folder / "hand.urdf"
    text = urdf.read_text()
    start = text.index(f'{attr}="', text.index('<joint name="index_pip"'))
    end = text.index('"', start + len(attr) + 2)
    urdf.write_text(text[:start] + f'{attr}="abc' + text[end:])
    with pytest.raises(URDFError) as info:
        load_hand(folder)
    message = str(info.value)
    for needle in (str(urdf), "'index_pip'", repr(attr), "'abc'", "must be a number"):
        assert needle in message, message


def test_a_collision_box_thinner_than_pybullets_margin_is_reported(tmp_path, recwarn):
    # The same shape as a visual is fine (it does not collide), and the shipped hand has none.
    load_hand("default_hand")
    assert not [w for w in recwarn if "collision margin" in str(w.message)]
    folder = _broken_copy(tmp_path, lambda meta: None)
    urdf = folder / "hand.urdf"
    text = urdf.read_text()
    thin = '<collision><origin xyz="0.041 0.01 0.018" rpy="0 0 0"/><geometry><box size="0.058 0.06 0.0012"/>'
    urdf.write_text(text.replace('<collision><origin xyz="0.041 0.01 0.018" rpy="0 0 0"/><geometry><box size="0.058 0.06 0.008"/>', thin, 1))
    with pytest.warns(UserWarning) as caught:
        load_hand(folder)
    messages = [str(w.message) for w in caught if "collision margin" in str(w.message)]
    expected = (f"{urdf}: link 'palm' <collision> box is 1.20 mm thick: PyBullet's 1 mm collision margin "
                "puts one of its faces up to 0.40 mm inside it (make it >= 2 mm thick)")
    assert messages == [expected]


@pytest.mark.parametrize("jtype, limit, needles", [
    ("revolute", "", ["'index_pip'", "revolute joint needs a <limit"]),  # URDF requires <limit> on a revolute joint
    ("revolute", '<limit lower="0" upper="1.7" effort="0" velocity="4"/>', ["'index_pip'", "effort > 0", "got 0"]),
    ("revolute", '<limit lower="0" upper="1.7" velocity="4"/>', ["'index_pip'", "effort > 0", "got nothing"]),
    # URDF allows a continuous joint without <limit>; a hand's motor still needs its effort
    ("continuous", "", ["'index_pip'", "continuous joint needs a <limit ... effort=...>"]),
])
def test_urdf_limit_without_a_usable_effort_is_reported(tmp_path, jtype, limit, needles):
    """Both URDF readers (the hand's and the kinematic tree's) refuse a revolute joint without
    <limit>, and the hand's refuses a movable joint PyBullet could not drive, before any physics,
    instead of reading it as a [0, 0] or an unbounded range."""
    folder = _broken_copy(tmp_path, lambda meta: None)
    urdf = folder / "hand.urdf"
    text = urdf.read_text().replace('<joint name="index_pip" type="revolute"', f'<joint name="index_pip" type="{jtype}"')
    start = text.index("<limit", text.index('<joint name="index_pip"'))
    end = text.index("/>", start) + 2
    urdf.write_text(text[:start] + limit + text[end:])
    with pytest.raises(URDFError) as info:
        load_hand(folder)
    for needle in (str(urdf), *needles):
        assert needle in str(info.value), str(info.value)
    if jtype == "revolute" and not limit:
        with pytest.raises(URDFError, match="index_pip.*revolute joint needs a <limit"):
            load_urdf(urdf)


def test_bare_name_is_the_shipped_hand_beside_a_folder_of_that_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "default_hand").mkdir()  # not a hand folder: no hand.json
    assert hand_dir("default_hand") == hand_dir(Path(__file__).resolve().parents[1] / "models" / "default_hand")
    with pytest.raises(DataNotFoundError, match="has no hand.json"):
        hand_dir("./default_hand")  # a path names the folder on disk


def test_unknown_hand_message_reads_as_one_sentence():
    with pytest.raises(DataNotFoundError) as info:
        hand_dir("zzzz_no_hand")
    assert "unknown shipped hand 'zzzz_no_hand'; valid: " in str(info.value)


def test_a_hand_file_given_for_its_folder_names_the_folder(tmp_path, monkeypatch):
    # Review 18: "--hand my_hand/hand.urdf" said "not a folder on disk; unknown shipped hand".
    folder = tmp_path / "mine"
    shutil.copytree(hand_dir("default_hand"), folder)
    with pytest.raises(DataNotFoundError) as info:
        hand_dir(folder / "hand.urdf")
    assert f"that is a file; expected a hand folder, holding hand.json or mjcf.json (the folder holding it, " \
           f"{folder}, is one)" in str(info.value)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataNotFoundError, match=r"that is a file; expected a hand folder, holding hand.json or "
                                                r"mjcf.json$"):
        hand_dir(tmp_path / "notes.txt")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "default_hand").write_text("a file named like the shipped hand")
    assert hand_dir("default_hand") == hand_dir(Path(__file__).resolve().parents[1] / "models" / "default_hand")


def test_vectors_are_normalised(tmp_path):
    folder = _broken_copy(tmp_path, _set("regions.index_distal.axis", [3.0, 0, 0]))
    region = load_hand(folder).regions.region("index_distal")
    np.testing.assert_allclose(region.axis, [1.0, 0.0, 0.0])
    assert not region.axis.flags.writeable


def test_finger_lookup_suggests(hand):
    with pytest.raises(UnknownNameError, match="did you mean 'index'"):
        hand.finger("indx")


# --------------------------------------------------------------------------------- physics
def _drive(cid, body, joint_ids, targets, forces, steps):
    p.setJointMotorControlArray(body, joint_ids, p.POSITION_CONTROL, targetPositions=targets,
                                forces=forces, physicsClientId=cid)
    for _ in range(steps):
        p.stepSimulation(physicsClientId=cid)
    return np.array([s[0] for s in p.getJointStates(body, joint_ids, physicsClientId=cid)])


@pytest.mark.slow
@pytest.mark.parametrize("flags", ["exclude_parent", "no_self_collision"])
def test_every_joint_reaches_targets_across_its_range(hand, flags):
    """Each joint in turn to 20 % and 80 % of its range, the others at rest, under gravity."""
    bits = p.URDF_USE_SELF_COLLISION | p.URDF_USE_SELF_COLLISION_EXCLUDE_PARENT if flags == "exclude_parent" else 0
    cid, body = _connect(hand, bits)
    try:
        p.setGravity(0, 0, -9.81, physicsClientId=cid)
        joints, _ = _names(cid, body)
        ids = [joints[j] for j in hand.actuated_joints]
        forces = [hand.joint_limits[j].effort for j in hand.actuated_joints]
        rest = hand.rest_vector()
        failures = []
        for k, name in enumerate(hand.actuated_joints):
            lim = hand.joint_limits[name]
            for frac in (0.2, 0.8):
                for j, q in zip(ids, rest):
                    p.resetJointState(body, j, q, physicsClientId=cid)
                target = rest.copy()
                target[k] = lim.lower + frac * (lim.upper - lim.lower)
                q = _drive(cid, body, ids, target, forces, steps=300)
                if abs(q[k] - target[k]) > math.radians(2.0):
                    failures.append((name, frac, round(math.degrees(q[k] - target[k]), 2)))
        assert not failures
    finally:
        p.disconnect(cid)


def _pad_point(cid, body, li, axis_joint_link):
    """World pad point and normal of a distal capsule: the middle of its cylinder on the curl side."""
    (shape,) = p.getCollisionShapeData(body, li, physicsClientId=cid)
    length, radius = shape[3][0], shape[3][1]
    state = p.getLinkState(body, li, computeForwardKinematics=True, physicsClientId=cid)
    com_pos, com_rot = np.array(state[0]), np.reshape(p.getMatrixFromQuaternion(state[1]), (3, 3))
    shape_rot = np.reshape(p.getMatrixFromQuaternion(shape[6]), (3, 3))
    centre = com_pos + com_rot @ np.array(shape[5])
    axis = com_rot @ shape_rot[:, 2]
    link_rot = np.reshape(p.getMatrixFromQuaternion(state[5]), (3, 3))
    joint_axis = link_rot @ np.array(p.getJointInfo(body, axis_joint_link, physicsClientId=cid)[13])
    if np.dot(np.array(state[0]) - np.array(state[4]), axis) < 0:  # keep axis pointing distally
        axis = -axis
    normal = np.cross(joint_axis, axis)  # flexion curls the segment towards its pad
    normal /= np.linalg.norm(normal)
    return centre + radius * normal, normal, length


def test_thumb_opposes_index(hand):
    """Opposition exists: a configuration where the thumb pad faces the index pad within
    1.5 cm, with no other part of the thumb inside the fingers or the palm, which the
    position-controlled hand (self-collision on, URDF torque limits) reaches from rest."""
    cid, body = _connect(hand, p.URDF_USE_SELF_COLLISION | p.URDF_USE_SELF_COLLISION_EXCLUDE_PARENT)
    try:
        joints, links = _names(cid, body)
        names = list(hand.fingers["thumb"].joints) + list(hand.fingers["index"].joints)
        ids = [joints[n] for n in names]
        lo = np.array([hand.joint_limits[n].lower for n in names])
        hi = np.array([hand.joint_limits[n].upper for n in names])
        t_link, i_link = links["thumb_distal"], links["index_distal"]
        # Every thumb link against every index/middle link and the palm, but the two pads.
        others = [links[n] for n in ("index_proximal", "index_middle", "index_distal", "middle_proximal",
                                     "middle_middle", "middle_distal")] + [-1]
        pairs = [(links[t], o) for t in ("thumb_metacarpal", "thumb_proximal", "thumb_distal")
                 for o in others if (links[t], o) not in ((t_link, i_link), (links["thumb_metacarpal"], -1))]
        margin = 0.002  # [m]

        def pads(q):
            for j, v in zip(ids, q):
                p.resetJointState(body, j, v, physicsClientId=cid)
            a, na, _ = _pad_point(cid, body, t_link, t_link)
            b, nb, _ = _pad_point(cid, body, i_link, i_link)
            return a, na, b, nb

        def clearance_violations():
            out = []
            for la, lb in pairs:
                dist = min((c[8] for c in p.getClosestPoints(body, body, margin, la, lb, physicsClientId=cid)),
                           default=margin)
                out.append(max(0.0, margin - dist) / 0.001)
            return np.array(out)

        def residual(q):
            a, na, b, nb = pads(q)
            # Pads 4 mm apart along the normal (a thin object), facing each other.
            return np.concatenate([(a - b + 0.004 * na) / 0.001, 5.0 * (na + nb), clearance_violations()])

        seeds = [np.clip(lo + f * (hi - lo), lo, hi) for f in (0.3, 0.5)]
        if "thumb_cmc_roll" in names:  # also from the unrolled thumb (v2 geometry)
            k = names.index("thumb_cmc_roll")
            seeds += [np.where(np.arange(len(names)) == k, 0.0, s) for s in seeds]
        best = min((least_squares(residual, s, bounds=(lo, hi), diff_step=1e-4) for s in seeds),
                   key=lambda r: r.cost)
        a, na, b, nb = pads(best.x)
        assert np.linalg.norm(a - b) < 0.015 and np.dot(na, nb) < -0.8, (best.x, np.linalg.norm(a - b), na @ nb)
        assert np.all(clearance_violations() < 1.0)  # nothing else overlaps by more than 1 mm
        # Drive there from the rest pose with the URDF torque limits.
        rest = hand.rest_vector()
        all_ids = [joints[j] for j in hand.actuated_joints]
        for j, v in zip(all_ids, rest):
            p.resetJointState(body, j, v, physicsClientId=cid)
        target = rest.copy()
        for n, v in zip(names, best.x):
            target[hand.actuated_joints.index(n)] = v
        forces = [hand.joint_limits[j].effort for j in hand.actuated_joints]
        _drive(cid, body, all_ids, target, forces, steps=480)
        a, na, _ = _pad_point(cid, body, t_link, t_link)
        b, nb, _ = _pad_point(cid, body, i_link, i_link)
        assert np.linalg.norm(a - b) < 0.015, np.linalg.norm(a - b)
        assert np.dot(na, nb) < -0.7
    finally:
        p.disconnect(cid)


# ------------------------------------------------------------------- palm pads, self-collision
def _overlapping_pairs(cid, body, pairs, tol=0.001):
    """Link pairs whose PyBullet closest distance is below -tol (overlap deeper than tol [m])."""
    out = []
    for a, b in pairs:
        rows = p.getClosestPoints(body, body, 0.0, a, b, physicsClientId=cid)
        depth = -min((r[8] for r in rows), default=0.0)
        if depth > tol:
            out.append((a, b, round(depth * 1e3, 2)))
    return out


def _non_parent_pairs(cid, body, links):
    """Every pair of links with collision geometry that are not parent and child (the pairs
    URDF_USE_SELF_COLLISION_EXCLUDE_PARENT lets collide)."""
    solid = [li for li in links.values() if p.getCollisionShapeData(body, li, physicsClientId=cid)]
    parent = {li: p.getJointInfo(body, li, physicsClientId=cid)[16] for li in solid if li >= 0}
    return [(a, b) for i, a in enumerate(solid) for b in solid[i + 1:]
            if parent.get(a) != b and parent.get(b) != a]


def _set_pose(cid, body, joints, hand, pose):
    for name in hand.actuated_joints:
        p.resetJointState(body, joints[name], pose.get(name, hand.rest_pose.get(name, 0.0)), physicsClientId=cid)


FOUR = ("index", "middle", "ring", "little")


def test_fingers_flexed_no_overlap(hand):
    """All four MCPs at 90 deg (the rest elsewhere): no pair of links but parent/child overlaps
    by more than 1 mm: the palm and the knuckle pads leave the flexed proximal phalanges free."""
    cid, body = _connect(hand, p.URDF_USE_SELF_COLLISION | p.URDF_USE_SELF_COLLISION_EXCLUDE_PARENT)
    try:
        joints, links = _names(cid, body)
        pairs = _non_parent_pairs(cid, body, links)
        for flex in (0.0, math.pi / 2):
            _set_pose(cid, body, joints, hand, {f"{f}_mcp_flex": flex for f in FOUR})
            assert not _overlapping_pairs(cid, body, pairs), flex
    finally:
        p.disconnect(cid)


def test_knuckle_pads_clear_across_abduction(hand):
    """The MCP pads (geometry on the <f>_knuckle links) never overlap each other or another
    finger's links by more than 1 mm, for every combination of the four abduction limits with
    the MCPs extended, hyperextended or flexed 90 deg."""
    import itertools

    cid, body = _connect(hand, p.URDF_USE_SELF_COLLISION | p.URDF_USE_SELF_COLLISION_EXCLUDE_PARENT)
    try:
        joints, links = _names(cid, body)
        pads = {links[f"{f}_knuckle"] for f in FOUR}
        assert all(p.getCollisionShapeData(body, li, physicsClientId=cid) for li in pads)
        pairs = [pr for pr in _non_parent_pairs(cid, body, links) if set(pr) & pads]
        failures = []
        for ends in itertools.product((0, 1), repeat=4):
            for flex in (hand.joint_limits["index_mcp_flex"].lower, 0.0, math.pi / 2):
                pose = {f"{f}_mcp_flex": flex for f in FOUR}
                for f, end in zip(FOUR, ends):
                    lim = hand.joint_limits[f"{f}_mcp_abd"]
                    pose[f"{f}_mcp_abd"] = lim.upper if end else lim.lower
                _set_pose(cid, body, joints, hand, pose)
                failures += [(ends, flex, o) for o in _overlapping_pairs(cid, body, pairs)]
        assert not failures
    finally:
        p.disconnect(cid)


# ------------------------------------------------------------------- thumb CMC roll (hand v3)
def _v2_urdf_text(v3: str) -> str:
    """The v2 hand's URDF rebuilt from the v3 text: the flexion joint's child back to the
    metacarpal, the ``thumb_cmc2`` hub link and the ``thumb_cmc_roll`` joint removed."""
    out = v3.replace('<parent link="thumb_cmc"/><child link="thumb_cmc2"/>',
                     '<parent link="thumb_cmc"/><child link="thumb_metacarpal"/>')
    start = out.index('  <link name="thumb_cmc2">')
    out = out[:start] + out[out.index("</link>", start) + len("</link>\n"):]
    start = out.index('  <joint name="thumb_cmc_roll"')
    out = out[:start] + out[out.index("</joint>", start) + len("</joint>\n"):]
    assert "thumb_cmc2" not in out and "thumb_cmc_roll" not in out
    return out


def _link_poses(cid, body, links):
    """{link name: (position (3,), rotation (3, 3))} of the URDF link frames [m]."""
    out = {}
    for name, li in links.items():
        if li < 0:
            continue
        state = p.getLinkState(body, li, computeForwardKinematics=True, physicsClientId=cid)
        out[name] = (np.array(state[4]), np.reshape(p.getMatrixFromQuaternion(state[5]), (3, 3)))
    return out


def test_thumb_roll_zero_is_the_v2_hand(hand, tmp_path):
    """At ``thumb_cmc_roll`` = 0 every link frame is where the v2 hand (without the joint) puts
    it, for random angles of all the other joints (PyBullet's FK of both URDFs)."""
    v2 = tmp_path / "v2.urdf"
    v2.write_text(_v2_urdf_text(hand.urdf_path.read_text()))
    ca, ba = _connect(hand, 0)
    cb = p.connect(p.DIRECT)
    bb = p.loadURDF(str(v2), useFixedBase=True, physicsClientId=cb)
    try:
        ja, la = _names(ca, ba)
        jb, lb = _names(cb, bb)
        assert set(la) - set(lb) == {"thumb_cmc2"} and set(ja) - set(jb) == {"thumb_cmc_roll"}
        rng = np.random.default_rng(3)
        for _ in range(20):
            for name in jb:
                lim = hand.joint_limits.get(name)
                q = rng.uniform(lim.lower, lim.upper) if lim is not None else 0.0
                if lim is not None:
                    p.resetJointState(ba, ja[name], q, physicsClientId=ca)
                    p.resetJointState(bb, jb[name], q, physicsClientId=cb)
            p.resetJointState(ba, ja["thumb_cmc_roll"], 0.0, physicsClientId=ca)
            pa, pb = _link_poses(ca, ba, la), _link_poses(cb, bb, lb)
            for name, (pos, rot) in pb.items():
                np.testing.assert_allclose(pa[name][0], pos, atol=1e-9, err_msg=name)
                np.testing.assert_allclose(pa[name][1], rot, atol=1e-9, err_msg=name)
    finally:
        p.disconnect(ca)
        p.disconnect(cb)


def test_thumb_roll_pronates(hand):
    """Pronation (positive ``thumb_cmc_roll``) turns the thumb pad: with the thumb adducted
    (``thumb_cmc_abd`` below the abducted threshold) the distal pad normal never faces the
    fingertips (palm +x within 60 deg) over a grid of the other thumb joints at roll 0, as
    in the v2 hand (GRASPS.md, note A: 0 of 40 000 random poses); at the pronation limit it
    does. Normals from PyBullet's link frames (pads face link +z)."""
    cid, body = _connect(hand, 0)
    try:
        joints, links = _names(cid, body)
        lim = hand.joint_limits
        abd_max = hand.thumb_abduction.abducted_min
        grid = [np.linspace(0.0, 0.9 * abd_max, 3)] + [
            np.linspace(lim[n].lower, lim[n].upper, 5) for n in ("thumb_cmc_flex", "thumb_mcp", "thumb_ip")]
        names = ("thumb_cmc_abd", "thumb_cmc_flex", "thumb_mcp", "thumb_ip")

        def best_nx(roll: float) -> float:
            p.resetJointState(body, joints["thumb_cmc_roll"], roll, physicsClientId=cid)
            best = -1.0
            for combo in np.array(np.meshgrid(*grid, indexing="ij")).reshape(4, -1).T:
                for n, v in zip(names, combo):
                    p.resetJointState(body, joints[n], v, physicsClientId=cid)
                state = p.getLinkState(body, links["thumb_distal"], computeForwardKinematics=True,
                                       physicsClientId=cid)
                best = max(best, np.reshape(p.getMatrixFromQuaternion(state[5]), (3, 3))[0, 2])
            return best

        assert lim["thumb_cmc_roll"].lower <= 0.0 < lim["thumb_cmc_roll"].upper
        assert best_nx(0.0) < 0.5
        assert best_nx(lim["thumb_cmc_roll"].upper) > 0.8
    finally:
        p.disconnect(cid)
