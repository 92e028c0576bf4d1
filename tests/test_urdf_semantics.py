"""Joint semantics and hand.json rules for "benchmark your own hand" (review R12, set X12B).

Independent sources: analytic excesses (a prismatic jaw put a known distance past its stop),
PyBullet itself (a plain ``loadURDF`` shows the jammed joint and the overlapping pair; the
kinematics core's FK shows two thumbs are the same physical pose), scipy's rotations (the
rpy the palm-frame error suggests), and hand folders edited in ``tmp_path`` (copies of
``default_hand``).
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from handsim.data import hand_dir
from handsim.errors import ConfigurationError, MetadataError, ResultsError
from handsim.hand import ThumbAbduction, load_hand
from handsim.kinematics import load_urdf
from handsim.tolerances import DEFAULT_PROTOCOL, Protocol

p = pytest.importorskip("pybullet")


def _sub1(pattern: str, repl: str, text: str) -> str:
    out, n = re.subn(pattern, repl, text, count=1, flags=re.DOTALL)
    assert n == 1, f"no match for {pattern}"
    return out


def _variant(tmp_path: Path, name: str, urdf: Callable[[str], str] | None = None,
             hand: Callable[[dict], None] | None = None, grasps: Callable[[dict], None] | None = None) -> Path:
    """A copy of default_hand in ``tmp_path/name`` with its files edited."""
    folder = tmp_path / name
    shutil.copytree(hand_dir("default_hand"), folder)
    if urdf is not None:
        path = folder / "hand.urdf"
        path.write_text(urdf(path.read_text()))
    for fname, edit in (("hand.json", hand), ("grasps.json", grasps)):
        if edit is not None:
            data = json.loads((folder / fname).read_text())
            edit(data)
            (folder / fname).write_text(json.dumps(data))
    return folder


# ------------------------------------------------------------- 6: prismatic joint excess
_GRIPPER_URDF = """<?xml version="1.0"?>
<robot name="gripper">
  <link name="palm">
    <inertial><mass value="0.3"/><inertia ixx="1e-4" ixy="0" ixz="0" iyy="1e-4" iyz="0" izz="1e-4"/></inertial>
    <collision><origin xyz="0.02 0 0"/><geometry><box size="0.04 0.12 0.04"/></geometry></collision>
  </link>
  <link name="index_distal">
    <inertial><origin xyz="0.03 0 0"/><mass value="0.02"/><inertia ixx="1e-6" ixy="0" ixz="0" iyy="1e-6" iyz="0" izz="1e-6"/></inertial>
    <collision><origin xyz="0.03 0 0"/><geometry><box size="0.06 0.01 0.02"/></geometry></collision>
  </link>
  <link name="index_tip"/>
  <link name="middle_distal">
    <inertial><origin xyz="0.03 0 0"/><mass value="0.02"/><inertia ixx="1e-6" ixy="0" ixz="0" iyy="1e-6" iyz="0" izz="1e-6"/></inertial>
    <collision><origin xyz="0.03 0 0"/><geometry><box size="0.06 0.01 0.02"/></geometry></collision>
  </link>
  <link name="middle_tip"/>
  <joint name="index_slide" type="prismatic">
    <parent link="palm"/><child link="index_distal"/><origin xyz="0.04 -0.05 0"/><axis xyz="0 1 0"/>
    <limit lower="0" upper="0.045" effort="20" velocity="0.1"/>
  </joint>
  <joint name="index_tipj" type="fixed"><parent link="index_distal"/><child link="index_tip"/><origin xyz="0.06 0 0"/></joint>
  <joint name="middle_slide" type="prismatic">
    <parent link="palm"/><child link="middle_distal"/><origin xyz="0.04 0.05 0"/><axis xyz="0 -1 0"/>
    <limit lower="0" upper="0.045" effort="20" velocity="0.1"/>
  </joint>
  <joint name="middle_tipj" type="fixed"><parent link="middle_distal"/><child link="middle_tip"/><origin xyz="0.06 0 0"/></joint>
</robot>
"""
_GRIPPER_JSON = {
    "schema": 1, "name": "gripper", "urdf": "hand.urdf", "palm_link": "palm",
    "fingers": {
        "index": {"segments": {"distal": "index_distal"}, "joints": ["index_slide"], "tip_link": "index_tip"},
        "middle": {"segments": {"distal": "middle_distal"}, "joints": ["middle_slide"], "tip_link": "middle_tip"},
    },
    "regions": {
        "palm": {"part": "palm", "center": [0.02, 0, 0], "axis": [1, 0, 0], "palmar": [0, 0, 1]},
        "index_distal": {"part": "index.distal", "axis": [1, 0, 0], "palmar": [0, 1, 0], "length": 0.06, "tip_from": 0.9},
        "middle_distal": {"part": "middle.distal", "axis": [1, 0, 0], "palmar": [0, -1, 0], "length": 0.06,
                          "tip_from": 0.9},
    },
    "pad_half_angle_deg": 55, "dorsal_half_angle_deg": 55,
}


@pytest.fixture
def gripper(tmp_path: Path) -> Path:
    folder = tmp_path / "gripper"
    folder.mkdir()
    (folder / "hand.urdf").write_text(_GRIPPER_URDF)
    (folder / "hand.json").write_text(json.dumps(_GRIPPER_JSON))
    (folder / "grasps.json").write_text(json.dumps({"schema": 1, "grasps": {}}))
    return folder


def _put_joint(ep, joint: str, value: float) -> None:
    """Teleport one PyBullet joint (no step) and drop the episode's per-step reads."""
    body = ep.body
    ep.world.client.resetJointState(body.body_id, body.joint_index[joint], value, 0.0)
    ep._cache.clear()  # the same physics step, another state: read it again


def test_prismatic_excess_is_metres(gripper):
    """A jaw 20 mm past its 45 mm stop is 20 mm over (not np.degrees(0.02) = 1.15 "deg",
    which passed the 5 deg limit): the reason says mm and the revolute excess stays 0."""
    from handsim.episode import GraspEpisode
    from handsim.grasps import default_taxonomy

    ep = GraspEpisode(gripper, visuals=False)
    ep.reset(default_taxonomy().get("adduction_grip"), np.random.default_rng(0))
    upper = 0.045  # the URDF's <limit upper>
    _put_joint(ep, "index_slide", upper + 0.020)
    # PyBullet holds the value we put (the independent reading).
    assert ep.world.client.getJointState(ep.body.body_id, ep.body.joint_index["index_slide"])[0] == \
        pytest.approx(upper + 0.020)
    m, joint = ep.joint_excess_m()
    assert joint == "index_slide" and m == pytest.approx(0.020, abs=1e-12)
    assert ep.joint_excess()[0] == 0.0  # no revolute joint at all
    assert ep.joint_limit_reasons() == ["joint index_slide 20.0 mm past its limit > 2.0 mm"]
    # 1.5 mm below the lower stop is within the 2 mm allowance; 2.5 mm is not.
    _put_joint(ep, "index_slide", 0.0)
    _put_joint(ep, "middle_slide", -0.0015)
    assert ep.joint_excess_m() == (pytest.approx(0.0015, abs=1e-12), "middle_slide")
    assert ep.joint_limit_reasons() == []
    _put_joint(ep, "middle_slide", -0.0025)
    assert ep.joint_limit_reasons() == ["joint middle_slide 2.5 mm past its limit > 2.0 mm"]
    # The protocol it is judged by is the one recorded with the results.
    tight = dataclasses.replace(DEFAULT_PROTOCOL, max_joint_excess_m=0.003)
    ep.protocol = tight
    assert ep.joint_limit_reasons() == []


def test_revolute_excess_stays_degrees():
    """A revolute joint 0.1 rad past its limit is 5.73 deg (analytic), reported in deg; the
    prismatic excess of a hand without prismatic joints is 0."""
    from handsim.episode import GraspEpisode
    from handsim.grasps import default_taxonomy

    ep = GraspEpisode("default_hand", visuals=False)
    ep.reset(default_taxonomy().get("tripod"), np.random.default_rng(0))
    upper = ep.hand.joint_limits["index_dip"].upper
    _put_joint(ep, "index_dip", upper + 0.1)
    deg, joint = ep.joint_excess()
    assert joint == "index_dip" and deg == pytest.approx(np.rad2deg(0.1), rel=1e-9)
    assert ep.joint_excess_m()[0] == 0.0
    assert ep.joint_limit_reasons() == ["joint index_dip 5.7 deg past its limit > 5.0 deg"]


def test_protocol_max_joint_excess_m():
    assert DEFAULT_PROTOCOL.max_joint_excess_m == 0.002
    assert DEFAULT_PROTOCOL.to_dict()["max_joint_excess_m"] == 0.002
    with pytest.raises(ConfigurationError, match="max_joint_excess_m"):
        Protocol(max_joint_excess_m=-0.001)


# ------------------------------------------------------------- 3: links overlapping at rest
def _selfcol_urdf(text: str, back: float = 0.02) -> str:
    # index_proximal's capsule core reaches ``back`` [m] further back, into the palm box
    # (review R12 v/selfcol: 20 mm, an overlap of 10.8 mm).
    length = 0.04655 + back
    return _sub1(r'(<link name="index_proximal">.*?<collision>)<origin xyz="0.023275 0 0"(.*?)length="0.04655"',
                 rf'\1<origin xyz="{0.04655 / 2 - back / 2:.6f} 0 0"\2length="{length:.6f}"', text)


def _raw_overlaps(urdf: Path) -> dict[tuple[str, str], float]:
    """Overlapping link pairs that are not parent and child, from a plain PyBullet load."""
    cid = p.connect(p.DIRECT)
    try:
        body = p.loadURDF(str(urdf), useFixedBase=True, physicsClientId=cid,
                          flags=p.URDF_USE_SELF_COLLISION | p.URDF_USE_SELF_COLLISION_EXCLUDE_PARENT)
        names = {-1: p.getBodyInfo(body, physicsClientId=cid)[0].decode()}
        parent = {}
        for j in range(p.getNumJoints(body, physicsClientId=cid)):
            info = p.getJointInfo(body, j, physicsClientId=cid)
            names[j], parent[j] = info[12].decode(), info[16]
        out: dict[tuple[str, str], float] = {}
        for r in p.getClosestPoints(body, body, 0.0, physicsClientId=cid):
            a, b = sorted((r[3], r[4]))
            if a != b and parent.get(b) != a and r[8] < 0:
                key = (names[a], names[b])
                out[key] = min(out.get(key, 0.0), r[8])
        return out
    finally:
        p.disconnect(cid)


def _flex_reached(urdf: Path, use_handbody: bool) -> float:
    """index_mcp_flex after 2 s driven to 1.2 rad: through HandBody, or a plain PyBullet load
    with the same flags and motor."""
    from handsim.sim.hand import HandBody, load_flags
    from handsim.sim.world import World

    world = World(gravity=False)
    try:
        if use_handbody:
            body = HandBody(world, urdf, visual=False)
            q = body.targets
            q[body.q_index("index_mcp_flex")] = 1.2
            body.set_targets(q)
            world.step(500)
            return float(body.joint_state()[0][body.q_index("index_mcp_flex")])
        c = world.client
        bid = c.loadURDF(str(urdf), useFixedBase=True, flags=load_flags(visual=False))
        j = next(j for j in range(c.getNumJoints(bid)) if c.getJointInfo(bid, j)[1] == b"index_mcp_flex")
        c.setJointMotorControl2(bid, j, p.POSITION_CONTROL, targetPosition=1.2, force=2.0, positionGain=0.1)
        world.step(500)
        return float(c.getJointState(bid, j)[0])
    finally:
        world.close()


def test_default_hand_has_no_overlapping_links():
    """The shipped hand's links are clear of each other at rest (PyBullet), so nothing is
    turned off and its physics is what it was."""
    from handsim.sim.hand import HandBody
    from handsim.sim.world import World

    hand = load_hand("default_hand")
    assert _raw_overlaps(hand.urdf_path) == {}
    world = World(gravity=False)
    try:
        assert HandBody(world, hand.urdf_path, visual=False, rest_q=hand.rest_vector()).disabled_collision_pairs == ()
    finally:
        world.close()


def test_shallow_overlap_with_an_ancestor_is_released(tmp_path):
    """However shallow, a phalanx overlapping the palm behind its knuckle jams the knuckle in
    plain PyBullet (the capsule's end swings into the palm as it flexes): released."""
    from handsim.sim.hand import HandBody
    from handsim.sim.world import World

    urdf = _variant(tmp_path, "shallow", urdf=lambda t: _selfcol_urdf(t, back=0.0097)) / "hand.urdf"
    raw = _raw_overlaps(urdf)
    assert list(raw) == [("palm", "index_proximal")] and -0.001 < raw[("palm", "index_proximal")] < 0
    world = World(gravity=False)
    try:
        pairs = HandBody(world, urdf, visual=False).disabled_collision_pairs
        assert [(a, b) for a, b, _ in pairs] == [("palm", "index_proximal")]
    finally:
        world.close()
    assert _flex_reached(urdf, use_handbody=False) < 0.3  # jammed by the palm
    assert _flex_reached(urdf, use_handbody=True) == pytest.approx(1.2, abs=0.02)


def test_fingers_touching_each_other_keep_colliding(tmp_path):
    """Links of two fingers that touch at rest (the middle proximal phalanx 2.3 mm thicker, into
    the ring's) keep their collision: a touch between fingers does not jam, and released they
    could pass through each other."""
    from handsim.sim.hand import HandBody
    from handsim.sim.world import World

    def thicker(t: str) -> str:
        return _sub1(r'(<link name="middle_proximal">.*?<collision>.*?)<capsule radius="0.009"',
                     r'\1<capsule radius="0.0113"', t)

    urdf = _variant(tmp_path, "touching", urdf=thicker) / "hand.urdf"
    raw = _raw_overlaps(urdf)
    assert ("middle_proximal", "ring_proximal") in raw, raw
    world = World(gravity=False)
    try:
        assert HandBody(world, urdf, visual=False).disabled_collision_pairs == ()
    finally:
        world.close()


def test_overlapping_links_are_released(tmp_path):
    """A proximal phalanx overlapping the palm at rest jams its MCP joint in plain PyBullet;
    HandBody lists the pair and the joint reaches its target."""
    from handsim.sim.hand import HandBody
    from handsim.sim.world import World

    urdf = _variant(tmp_path, "selfcol", urdf=_selfcol_urdf) / "hand.urdf"
    raw = _raw_overlaps(urdf)
    assert list(raw) == [("palm", "index_proximal")] and raw[("palm", "index_proximal")] < -0.005
    world = World(gravity=False)
    try:
        pairs = HandBody(world, urdf, visual=False).disabled_collision_pairs
        assert [(a, b) for a, b, _ in pairs] == [("palm", "index_proximal")]
        assert pairs[0][2] == pytest.approx(raw[("palm", "index_proximal")], abs=1e-9)
        assert HandBody(world, urdf, visual=False, self_collision=False).disabled_collision_pairs == ()
    finally:
        world.close()
    assert _flex_reached(urdf, use_handbody=False) < 0.3  # jammed by the palm
    assert _flex_reached(urdf, use_handbody=True) == pytest.approx(1.2, abs=0.02)


@pytest.mark.slow
def test_bench_records_the_released_pairs(tmp_path):
    """The benchmark says which link pairs it released: results.json ``hand.collision_off``
    and report.md name the pair PyBullet finds overlapping (depth in mm); the shipped hand's
    record has no such key."""
    from handsim.bench.results import load_results
    from handsim.cli import main

    folder = _variant(tmp_path, "selfcol", urdf=_selfcol_urdf)
    depth_mm = -1000.0 * _raw_overlaps(folder / "hand.urdf")[("palm", "index_proximal")]
    out = tmp_path / "out"
    assert main(["bench", "--hand", str(folder), "--grasps", "lateral", "--trials", "1", "--jobs", "1",
                 "--out", str(out)]) == 0
    pairs = load_results(out).hand["collision_off"]
    assert [p_[:2] for p_ in pairs] == [["palm", "index_proximal"]]
    assert pairs[0][2] == pytest.approx(depth_mm, abs=0.01)
    assert "palm-index_proximal" in (out / "report.md").read_text()
    from handsim.bench.runner import COLLISION_OFF_KEY, _hand_info
    assert COLLISION_OFF_KEY not in _hand_info(load_hand("default_hand"), "default_hand")
    # --resume does not trip over the derived key
    assert main(["bench", "--hand", str(folder), "--grasps", "lateral", "--trials", "1", "--jobs", "1",
                 "--out", str(out), "--resume"]) == 0


# ------------------------------------------------------------- 4: thumb abducted_max
def _thumbneg(tmp_path: Path, abduction: dict) -> Path:
    """default_hand with thumb_cmc_abd's axis negated: the same physical hand, whose
    opposition turns the joint negative (limits, plans and rest negated)."""
    def urdf(t: str) -> str:
        t = _sub1(r'(<joint name="thumb_cmc_abd".*?)<axis xyz="0.82752 0.39634 0.39765"/>',
                  r'\1<axis xyz="-0.82752 -0.39634 -0.39765"/>', t)
        return _sub1(r'(<joint name="thumb_cmc_abd".*?)<limit lower="0.0000" upper="2.1000"',
                     r'\1<limit lower="-2.1000" upper="0.0000"', t)

    def hand(j: dict) -> None:
        j["thumb_abduction"] = abduction
        if "thumb_cmc_abd" in j.get("rest_pose", {}):
            j["rest_pose"]["thumb_cmc_abd"] *= -1

    def grasps(g: dict) -> None:
        for plan in g["grasps"].values():
            for key in ("preshape", "close"):
                if "thumb_cmc_abd" in plan[key]:
                    plan[key]["thumb_cmc_abd"] = -plan[key]["thumb_cmc_abd"]

    return _variant(tmp_path, "thumbneg", urdf=urdf, hand=hand, grasps=grasps)


def test_thumb_abducted_max(tmp_path):
    """With the axis negated, ``abducted_max: -0.5`` judges every physical pose as the right
    hand's ``abducted_min: 0.5`` does; the pose is the same (FK of the thumb tip)."""
    right = load_hand("default_hand")
    neg = load_hand(_thumbneg(tmp_path, {"joint": "thumb_cmc_abd", "abducted_max": -0.5}))
    ta_r, ta_n = right.thumb_abduction, neg.thumb_abduction
    assert (ta_n.abducted_min, ta_n.abducted_max, ta_n.direction) == (None, -0.5, -1)
    tree_r, tree_n = load_urdf(right.urdf_path), load_urdf(neg.urdf_path)
    col = tree_r.joint_index("thumb_cmc_abd")
    tip = tree_r.link_index("thumb_tip")
    for a in np.linspace(0.0, 2.1, 43):  # 0.05 rad steps, 0.5 among them
        q = np.zeros(tree_r.num_joints)
        q[col] = a
        q_neg = q.copy()
        q_neg[col] = -a
        np.testing.assert_allclose(tree_n.forward_kinematics(q_neg)[tip], tree_r.forward_kinematics(q)[tip],
                                   atol=1e-12)
        assert ta_n.is_abducted(-a) == ta_r.is_abducted(a) == (a >= 0.5)
    # The search bounds of either side, mirrored.
    lim_n = neg.joint_limits["thumb_cmc_abd"]
    assert ta_n.side_range(True, lim_n.lower, lim_n.upper, 0.1) == pytest.approx((-2.1, -0.6))
    assert ta_n.side_range(False, lim_n.lower, lim_n.upper, 0.1) == pytest.approx((-0.4, 0.0))
    assert ta_r.side_range(True, 0.0, 2.1, 0.1) == pytest.approx((0.6, 2.1))


@pytest.mark.parametrize("abduction, field", [
    ({"joint": "thumb_cmc_abd", "abducted_max": -0.5, "abducted_min": -1.0}, "abducted_min and abducted_max"),
    ({"joint": "thumb_cmc_abd"}, "neither"),
    ({"joint": "thumb_cmc_abd", "abducted_max": 0.5}, "thumb_abduction.abducted_max"),  # outside [-2.1, 0]
], ids=["both", "neither", "out_of_limits"])
def test_thumb_abduction_needs_exactly_one(tmp_path, abduction, field):
    with pytest.raises(MetadataError, match=re.escape(field)):
        load_hand(_thumbneg(tmp_path, abduction))
    with pytest.raises(ConfigurationError, match="exactly one"):
        ThumbAbduction("thumb_cmc_abd")


# ------------------------------------------------------------- 7: the palm frame
_R_ZDISTAL = np.array([[0.0, 0.0, 1.0], [0.0, -1.0, 0.0], [1.0, 0.0, 0.0]])  # palm frame in base_link's


def _reroot(t: str, rpy: tuple[float, float, float], root: str, child: str) -> str:
    link = f'<link name="{root}"/><joint name="{root}_to_{child}" type="fixed"><parent link="{root}"/>' \
           f'<child link="{child}"/><origin xyz="0 0 0" rpy="{rpy[0]!r} {rpy[1]!r} {rpy[2]!r}"/></joint>'
    return _sub1(r'(<robot name="[^"]*">)', lambda m: m.group(1) + link, t)


def test_rotated_root_frame_is_refused_with_the_fix(tmp_path):
    """An Allegro-style root (z distal, x palmar) above the palm is refused on the palm's
    region; the rpy the message suggests (checked with scipy) puts the frame right, and the
    hand re-rooted with it loads."""
    rpy = (np.pi, -np.pi / 2, 0.0)  # URDF rpy of _R_ZDISTAL
    np.testing.assert_allclose(Rotation.from_euler("xyz", rpy).as_matrix(), _R_ZDISTAL, atol=1e-12)
    folder = _variant(tmp_path, "zdistal", urdf=lambda t: _reroot(t, rpy, "base_link", "palm"),
                      hand=lambda j: j.update(palm_link="base_link"))
    with pytest.raises(MetadataError, match=r"regions\.palm: expected axis along \+x") as err:
        load_hand(folder)
    fix = [float(v) for v in re.search(r'rpy="([^"]+)"', str(err.value)).group(1).split()]
    turn = Rotation.from_euler("xyz", fix).as_matrix()  # URDF rpy: fixed axes x, y, z
    np.testing.assert_allclose(turn @ _R_ZDISTAL @ [1, 0, 0], [1, 0, 0], atol=1e-3)
    np.testing.assert_allclose(turn @ _R_ZDISTAL @ [0, 0, 1], [0, 0, 1], atol=1e-3)
    path = folder / "hand.urdf"
    path.write_text(_reroot(path.read_text(), tuple(fix), "wrist", "base_link"))
    data = json.loads((folder / "hand.json").read_text())
    data["palm_link"] = "wrist"
    (folder / "hand.json").write_text(json.dumps(data))
    assert load_hand(folder).palm_link == "wrist"


@pytest.mark.parametrize("deg, ok", [(25.0, True), (35.0, False)])
def test_palm_region_tolerance(tmp_path, deg, ok):
    """The palm region may lean up to 30 deg from +x/+z (a region turned about y)."""
    turn = Rotation.from_euler("y", deg, degrees=True).as_matrix()

    def hand(j: dict) -> None:
        j["regions"]["palm"]["axis"] = (turn @ [1, 0, 0]).tolist()
        j["regions"]["palm"]["palmar"] = (turn @ [0, 0, 1]).tolist()

    folder = _variant(tmp_path, f"lean{deg:g}", hand=hand)
    if ok:
        load_hand(folder)
    else:
        with pytest.raises(MetadataError, match=r"regions\.palm.*35 deg off \+x"):
            load_hand(folder)


# ------------------------------------------------------------- 8, 13, 14: fingers and the palm
_FOREARM = ('<link name="forearm"><inertial><mass value="1.0"/><inertia ixx="1e-3" ixy="0" ixz="0" iyy="1e-3" '
            'iyz="0" izz="1e-3"/></inertial><collision><origin xyz="-0.1 0 0"/><geometry><box size="0.2 0.06 0.04"/>'
            '</geometry></collision></link>')


def _forearm(t: str, wrist: str) -> str:
    return _sub1(r'(<robot name="[^"]*">)', lambda m: m.group(1) + _FOREARM + wrist, t)


_REVOLUTE_WRIST = ('<joint name="wrist_flex" type="revolute"><parent link="forearm"/><child link="palm"/>'
                   '<axis xyz="0 1 0"/><limit lower="-1" upper="1" effort="5" velocity="2"/></joint>')
_FIXED_WRIST = '<joint name="wrist_fixed" type="fixed"><parent link="forearm"/><child link="palm"/></joint>'


def test_joint_in_two_fingers(tmp_path):
    def hand(j: dict) -> None:
        j["palm_link"] = "forearm"
        for finger in j["fingers"].values():
            finger["joints"].insert(0, "wrist_flex")

    folder = _variant(tmp_path, "wrist_all", urdf=lambda t: _forearm(t, _REVOLUTE_WRIST), hand=hand)
    with pytest.raises(MetadataError, match=re.escape("fingers.index.joints[0]") + ".*'wrist_flex', also in "
                       + re.escape("fingers.thumb.joints[0]")):
        load_hand(folder)


def test_palm_link_below_root(tmp_path):
    folder = _variant(tmp_path, "forearm", urdf=lambda t: _forearm(t, _FIXED_WRIST))
    with pytest.raises(MetadataError, match="set palm_link to the URDF root, or make the joints above the palm fixed"):
        load_hand(folder)
    # The forearm as palm_link: the palm the fingers branch at keeps its region; the forearm
    # needs none.
    data = json.loads((folder / "hand.json").read_text())
    data["palm_link"] = "forearm"
    (folder / "hand.json").write_text(json.dumps(data))
    assert load_hand(folder).regions.region("palm").part == "palm"


@pytest.mark.parametrize("tip, ok", [("middle_tip", False), ("index_middle", False), ("index_distal", True)],
                         ids=["other_finger", "middle_link", "distal_link"])
def test_tip_link_checked_first(tmp_path, tip, ok):
    """tip_link must be the last segment or below it, and the error says so on tip_link."""
    folder = _variant(tmp_path, "tip", hand=lambda j: j["fingers"]["index"].update(tip_link=tip))
    if ok:
        assert load_hand(folder).tip_links["index"] == "index_distal"
    else:
        with pytest.raises(MetadataError, match=r"fingers\.index\.tip_link: expected the finger's last segment "
                                                r"'index_distal' or a link below it"):
            load_hand(folder)


def test_palm_without_region(tmp_path):
    """A palm with collision geometry but no region would label its contacts other.palm."""
    folder = _variant(tmp_path, "no_palm_region", hand=lambda j: j["regions"].pop("palm"))
    with pytest.raises(MetadataError, match=r"regions\.palm: expected a region for palm_link, part 'palm'.*other\.palm"):
        load_hand(folder)


@pytest.mark.parametrize("side", ["abducted", "adducted"])
def test_synth_narrows_a_negated_thumb_to_the_mirrored_side(tmp_path, side):
    """synth's search range for the thumb abduction joint on the negated-axis hand is the
    right hand's range mirrored (abducted: [0.5 + m, 2.1] -> [-2.1, -0.5 - m]), so the same
    physical thumb poses are searched."""
    from handsim.grasps import default_taxonomy
    from handsim.synth.handmodel import HandSurface
    from handsim.synth.optimize import GraspProblem

    grasp = next(g for g in default_taxonomy() if g.signature.thumb == side)
    ranges = []
    for folder, sign in (("default_hand", 1.0),
                         (_thumbneg(tmp_path, {"joint": "thumb_cmc_abd", "abducted_max": -0.5}), -1.0)):
        hand = load_hand(folder)
        tree = load_urdf(hand.urdf_path)
        prob = GraspProblem(hand, tree, HandSurface(hand, tree), grasp, grasp.object.friction)
        col = tree.joint_index("thumb_cmc_abd")
        assert prob.thumb_col == col
        lo, hi = prob.lower[col], prob.upper[col]
        ranges.append(sorted((sign * lo, sign * hi)))
    np.testing.assert_allclose(ranges[1], ranges[0], atol=1e-12)
    assert (ranges[0][0] > 0.5) if side == "abducted" else (ranges[0][1] < 0.5)


@pytest.mark.slow
def test_a_run_saved_before_max_joint_excess_m_resumes_unless_the_hand_has_prismatic_joints(tmp_path, gripper,
                                                                                             capsys):
    """An interrupted results.json saved before ``Protocol.max_joint_excess_m`` existed resumes
    for a hand without prismatic joints (the key judges nothing there), and is refused, naming
    the key, for a hand with them; digests the old file lacks are not claimed afterwards."""
    from handsim.bench.results import load_results
    from handsim.bench.runner import _check_resumable
    from handsim.cli import main

    out = tmp_path / "out"
    args = ["bench", "--grasps", "lateral", "--jobs", "1", "--out", str(out)]
    assert main([*args, "--trials", "1"]) == 0
    path = out / "results.json"
    data = json.loads(path.read_text())
    del data["config"]["protocol"]["max_joint_excess_m"]  # as written before the key existed
    data["config"]["trials"] = 2
    data["complete"] = False
    path.write_text(json.dumps(data))
    capsys.readouterr()
    assert main([*args, "--trials", "2", "--resume"]) == 0, capsys.readouterr().err
    done = load_results(path)
    assert done.complete and [t["trial"] for g in done.grasps for t in g.trial_results] == [0, 1]
    assert done.config["protocol"]["max_joint_excess_m"] == 0.002
    # the same old file against a hand with prismatic joints: refused, naming the key
    old = load_results(path)
    old_cfg = json.loads(json.dumps(old.config))
    del old_cfg["protocol"]["max_joint_excess_m"]
    old = dataclasses.replace(old, config=old_cfg)
    with pytest.raises(ResultsError, match="max_joint_excess_m: None vs 0.002"):
        _check_resumable(old, old.hand, old.policy, dict(done.config), path, hand_model=load_hand(gripper))
    _check_resumable(old, old.hand, old.policy, dict(done.config), path, hand_model=load_hand("default_hand"))
    # a digest the old file lacks (``meshes``, added later) is not a change; one it has is
    new_hand = {**old.hand, "sha256": {**old.hand["sha256"], "meshes": "ab" * 32}}
    _check_resumable(old, new_hand, old.policy, dict(done.config), path, hand_model=load_hand("default_hand"))
    changed = {**old.hand, "sha256": {**old.hand["sha256"], "urdf": "cd" * 32}}
    with pytest.raises(ResultsError, match="the hand's urdf changed"):
        _check_resumable(old, changed, old.policy, dict(done.config), path, hand_model=load_hand("default_hand"))
