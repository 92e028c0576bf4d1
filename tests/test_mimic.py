"""Hands with coupled (URDF ``<mimic>``) joints run through every user path.

The test hand is the default hand with its index DIP coupled to its PIP
(``<mimic joint="index_pip" multiplier="0.7" offset="0.05"/>``, the way commercial hands couple a
DIP to its PIP), built in a temporary folder. Independent sources: the URDF read here with
ElementTree (joint counts, limits, the mimic tag's numbers), PyBullet queried directly (joint
states, link poses), gymnasium's ``check_env``, and the files the CLI writes.
"""

from __future__ import annotations

import json
import shutil
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from handsim.cli import main
from handsim.data import hand_dir
from handsim.envs import GRASP_ENV_ID
from handsim.episode import GraspEpisode
from handsim.errors import (
    ConfigurationError,
    GraspDataError,
    HandsimError,
    MetadataError,
    URDFError,
)
from handsim.grasp_data import load_plans_of
from handsim.hand import load_hand
from handsim.kinematics import load_urdf
from handsim.sim import HandBody, World
from handsim.tolerances import DEFAULT_PROTOCOL

MULT, OFFSET = 0.7, 0.05
MIMIC_TAG = f'<mimic joint="index_pip" multiplier="{MULT}" offset="{OFFSET}"/>'
# Steady-state error of a mimic joint's motor, measured: <= 3e-6 rad after 0.6 s of a free
# index finger (both motors are the same servo, closing ~10 % of their error per step, so the
# coupled joint also keeps the ratio while moving, within 1.4e-5 rad). 1e-4 rad leaves margin for
# solver noise and is still 30x below what a one-degree mistake in the coupling would give.
TRACK_TOL_RAD = 1e-4


def _add_mimic(urdf: Path, joint: str, tag: str) -> None:
    tree = ET.parse(urdf)
    el = next(j for j in tree.getroot().findall("joint") if j.get("name") == joint)
    el.append(ET.fromstring(tag))
    tree.write(urdf)


def _drop_joint_from_plans(grasps: Path, joint: str) -> None:
    data = json.loads(grasps.read_text())
    for plan in data["grasps"].values():
        for key in ("preshape", "close"):
            plan[key].pop(joint, None)
    grasps.write_text(json.dumps(data, indent=1))


def _copy_default(dest: Path) -> Path:
    shutil.copytree(hand_dir("default_hand"), dest)
    return dest


@pytest.fixture(scope="module")
def mimic_hand(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = _copy_default(tmp_path_factory.mktemp("hands") / "mimic_hand")
    _add_mimic(folder / "hand.urdf", "index_dip", MIMIC_TAG)
    _drop_joint_from_plans(folder / "grasps.json", "index_dip")
    return folder


def _urdf_joints(path: Path) -> dict[str, ET.Element]:
    return {j.get("name"): j for j in ET.parse(path).getroot().findall("joint")}


# ---------------------------------------------------------------------------- loading
def test_mimic_hand_loads_with_its_independent_joints(mimic_hand: Path) -> None:
    joints = _urdf_joints(mimic_hand / "hand.urdf")
    movable = [n for n, j in joints.items() if j.get("type") != "fixed"]
    independent = [n for n in movable if joints[n].find("mimic") is None]
    hand = load_hand(mimic_hand)
    assert len(independent) == 20 and hand.num_dof == 20
    assert hand.actuated_joints == tuple(independent) == load_urdf(hand.urdf_path).joint_names
    assert hand.movable_joints == tuple(movable)
    m = hand.mimic_joints["index_dip"]
    assert (m.master, m.multiplier, m.offset) == ("index_pip", MULT, OFFSET)
    assert "index_dip" in hand.finger("index").joints  # a joint of its finger, though not commanded
    assert set(hand.joint_limits) == set(movable)      # mimic joints keep their own limits
    q = np.linspace(0.1, 0.5, 20)
    full = hand.movable_values(q)
    assert full.shape == (21,)
    pip = q[hand.actuated_joints.index("index_pip")]
    assert full[hand.movable_joints.index("index_dip")] == pytest.approx(MULT * pip + OFFSET)
    with pytest.raises(ConfigurationError, match=r"shape \(\.\.\., 20\)"):
        hand.movable_values(np.zeros(21))
    # A hand without <mimic> keeps its names: every movable joint is actuated.
    default = load_hand("default_hand")
    assert default.actuated_joints == default.movable_joints and default.num_dof == 21 and not default.mimic_joints


def test_plans_of_the_mimic_hand_cover_the_independent_joints(mimic_hand: Path) -> None:
    plans = load_plans_of(load_hand(mimic_hand))
    assert plans and all(p.preshape.shape == (20,) and p.close.shape == (20,) for p in plans.values())


# ---------------------------------------------------------------------------- physics
def test_mimic_joint_follows_its_master_and_pybullet_matches_fk(mimic_hand: Path) -> None:
    urdf = mimic_hand / "hand.urdf"
    world = World(DEFAULT_PROTOCOL, gravity=False)
    try:
        body = HandBody(world, urdf, visual=False)
        assert body.dof == 20 and body.mimic_joint_names == ("index_dip",)
        c, bid = world.client, body.body_id
        dip, pip = body.joint_index["index_dip"], body.joint_index["index_pip"]
        q = np.clip(np.zeros(body.dof), body.lower, body.upper)
        body.reset_joints(q)
        # reset_joints places the mimic joint where its master puts it
        assert c.getJointState(bid, dip)[0] == pytest.approx(MULT * q[body.q_index("index_pip")] + OFFSET, abs=1e-12)
        target = q.copy()
        target[body.q_index("index_pip")] = 1.2
        target[body.q_index("index_mcp_flex")] = 0.4
        body.set_targets(target)
        world.step(150)  # 0.6 s: a free finger settles within ~0.4 s
        q_pip, q_dip = c.getJointState(bid, pip)[0], c.getJointState(bid, dip)[0]
        assert q_pip == pytest.approx(1.2, abs=TRACK_TOL_RAD)
        assert q_dip == pytest.approx(MULT * q_pip + OFFSET, abs=TRACK_TOL_RAD)
        q_all, _ = body.movable_joint_state()
        assert q_all[list(body.movable_joint_names).index("index_dip")] == q_dip

        # PyBullet's link pose of the distal link = the kinematics core's FK of the independent q
        tree = load_urdf(urdf)
        q_ind, _ = body.joint_state()
        frame = tree.forward_kinematics(q_ind)[tree.link_index("index_distal")]
        state = c.getLinkState(bid, body.link_id("index_distal"), computeForwardKinematics=True)
        np.testing.assert_allclose(frame[:3, 3], state[4], atol=1e-6)
        rot = np.array(c.getMatrixFromQuaternion(state[5])).reshape(3, 3)
        # rotation error ~ the tracking error (the distal frame turns with the DIP)
        np.testing.assert_allclose(frame[:3, :3], rot, atol=TRACK_TOL_RAD)
    finally:
        world.close()


def test_episode_reads_measured_mimic_angles(mimic_hand: Path) -> None:
    """Contact labels and the joint-limit excess use the mimic joint as PyBullet has it."""
    ep = GraspEpisode(mimic_hand, visuals=False)
    try:
        ep.reset(ep.taxonomy.get("tripod"), np.random.default_rng(0))
        c, body = ep.world.client, ep.body
        upper = float(_urdf_joints(mimic_hand / "hand.urdf")["index_dip"].find("limit").get("upper"))
        c.resetJointState(body.body_id, body.joint_index["index_dip"], upper + 0.2, 0.0)  # folded past its stop
        deg, joint = ep.joint_excess()
        assert joint == "index_dip" and deg == pytest.approx(np.degrees(0.2), abs=1e-6)
        li = ep.tree.link_index("index_distal")
        state = c.getLinkState(body.body_id, body.link_id("index_distal"), computeForwardKinematics=True)
        rot = np.array(c.getMatrixFromQuaternion(state[5])).reshape(3, 3)
        # 1e-7: PyBullet's link orientation passes through a quaternion (6.0e-8 at session 19's
        # tripod pre-shape, 6.7e-9 at v5's); a mimic angle read wrong by the 0.2 rad would be ~0.2 off
        np.testing.assert_allclose(ep.link_frames()[li, :3, :3], rot, rtol=0, atol=1e-7)
        np.testing.assert_allclose(ep.link_frames()[li, :3, 3], state[4], atol=1e-9)
    finally:
        ep.close()


# ---------------------------------------------------------------------------- the env
def test_env_spaces_cover_the_independent_joints(mimic_hand: Path) -> None:
    env = gymnasium.make(GRASP_ENV_ID, grasp="tripod", hand=str(mimic_hand))
    try:
        inner = env.unwrapped
        n, labels = 20, len(load_hand(mimic_hand).regions.labels)
        assert env.action_space.shape == (n,) and inner.joint_names == load_hand(mimic_hand).actuated_joints
        assert env.observation_space.shape == (2 * n + 13 + 3 * 5 + labels + 33,)
        assert inner.obs_slices["joint_pos"] == slice(0, n)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            check_env(inner)
        env.reset(seed=0)
        with pytest.raises(ConfigurationError, match="non-finite"):
            env.step(np.full(n, np.nan, np.float32))
    finally:
        env.close()


@pytest.mark.slow
def test_bench_cli_runs_the_mimic_hand(mimic_hand: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["bench", "--hand", str(mimic_hand), "--grasps", "tripod", "--quick", "--jobs", "1",
                 "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["complete"] and results["hand"]["dof"] == 20
    (grasp,) = results["grasps"]
    assert grasp["id"] == "tripod" and grasp["trials"] == 1 and len(grasp["trial_results"]) == 1
    assert (out / "contact_sheet.png").stat().st_size > 0 and (out / "junit.xml").is_file()


# ---------------------------------------------------------------------------- bad input
def test_rest_pose_naming_a_mimic_joint_is_one_line_metadata_error(mimic_hand: Path, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "bad"
    shutil.copytree(mimic_hand, folder)
    meta = json.loads((folder / "hand.json").read_text())
    meta["rest_pose"] = {"index_dip": 0.1}
    (folder / "hand.json").write_text(json.dumps(meta))
    with pytest.raises(MetadataError) as info:
        load_hand(folder)
    msg = str(info.value)
    assert "\n" not in msg and "rest_pose.index_dip" in msg and "'index_pip'" in msg
    assert main(["bench", "--hand", str(folder), "--grasps", "tripod", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "index_pip" in err[0]


def test_thumb_abduction_on_a_mimic_joint_names_its_master(tmp_path: Path) -> None:
    folder = _copy_default(tmp_path / "thumb")
    _add_mimic(folder / "hand.urdf", "thumb_cmc_abd", '<mimic joint="thumb_cmc_flex" multiplier="-1"/>')
    with pytest.raises(MetadataError, match=r"thumb_abduction\.joint: .*'thumb_cmc_flex'"):
        load_hand(folder)


def test_plan_naming_a_mimic_joint_says_which_joint_to_plan(mimic_hand: Path, tmp_path: Path) -> None:
    folder = tmp_path / "plans"
    shutil.copytree(mimic_hand, folder)
    shutil.copy(hand_dir("default_hand") / "grasps.json", folder / "grasps.json")  # still plans index_dip
    with pytest.raises(GraspDataError, match=r"'index_dip' is a mimic joint following 'index_pip'"):
        load_plans_of(load_hand(folder))


@pytest.mark.parametrize(
    ("tag", "fragment"),
    [
        ('<mimic joint="index_pipp"/>', "unknown joint 'index_pipp'; did you mean 'index_pip'"),
        ('<mimic joint="index_tip_joint"/>', "'index_tip_joint' is fixed"),
        ('<mimic joint="index_dip"/>', "cycle (index_dip -> index_dip)"),
    ],
)
def test_both_urdf_readers_reject_a_bad_mimic_alike(tmp_path: Path, tag: str, fragment: str) -> None:
    folder = _copy_default(tmp_path / "bad_mimic")
    _add_mimic(folder / "hand.urdf", "index_dip", tag)
    with pytest.raises(URDFError) as from_tree:
        load_urdf(folder / "hand.urdf")
    with pytest.raises(URDFError) as from_hand:
        load_hand(folder)
    assert str(from_tree.value) == str(from_hand.value)
    assert fragment in str(from_hand.value) and "joint 'index_dip' <mimic" in str(from_hand.value)
    assert isinstance(from_hand.value, HandsimError)


def test_a_cycle_through_two_joints_names_both(tmp_path: Path) -> None:
    folder = _copy_default(tmp_path / "cycle")
    _add_mimic(folder / "hand.urdf", "index_dip", '<mimic joint="index_pip"/>')
    _add_mimic(folder / "hand.urdf", "index_pip", '<mimic joint="index_dip"/>')
    with pytest.raises(URDFError, match=r"cycle \(index_pip -> index_dip -> index_pip\)"):
        load_hand(folder)
    with pytest.raises(URDFError, match=r"cycle \(index_pip -> index_dip -> index_pip\)"):
        load_urdf(folder / "hand.urdf")


# ---------------------------------------------------------------------------- synth and sweep
def test_synth_searches_masters_where_their_mimic_joints_stay_within_limits(tmp_path: Path) -> None:
    from handsim.synth.optimize import search_bounds

    folder = _copy_default(tmp_path / "steep")
    # 1.2 x the PIP's range + 0.1 overshoots the DIP's upper limit: the PIP's search range shrinks
    _add_mimic(folder / "hand.urdf", "index_dip", '<mimic joint="index_pip" multiplier="1.2" offset="0.1"/>')
    hand = load_hand(folder)
    tree = load_urdf(hand.urdf_path)
    lower, upper = search_bounds(hand, tree)
    assert lower.shape == (20,)
    joints = _urdf_joints(folder / "hand.urdf")
    dip, pip = (joints[n].find("limit") for n in ("index_dip", "index_pip"))
    i = tree.joint_index("index_pip")
    assert 1.2 * float(pip.get("upper")) + 0.1 > float(dip.get("upper"))  # the case is a real one
    assert upper[i] == pytest.approx((float(dip.get("upper")) - 0.1) / 1.2)
    assert lower[i] == float(pip.get("lower"))  # 1.2 x 0 + 0.1 is inside the DIP's range


def test_sweep_copies_only_plans_of_independent_joints(mimic_hand: Path, tmp_path: Path) -> None:
    from handsim.sweep import _copy_plans

    folder = tmp_path / "copy"
    shutil.copytree(mimic_hand, folder)
    assert _copy_plans("default_hand", folder) > 0
    data = json.loads((folder / "grasps.json").read_text())
    assert all("index_dip" not in p["close"] for p in data["grasps"].values())
    assert load_plans_of(load_hand(folder))


@pytest.mark.slow
def test_synth_writes_plans_of_independent_joints(mimic_hand: Path, tmp_path: Path) -> None:
    out = tmp_path / "synth.json"
    assert main(["synth", "--hand", str(mimic_hand), "--grasps", "lateral,small_diameter", "--verify", "0",
                 "--candidates", "4", "--jobs", "1", "--out", str(out)]) == 0
    plans = json.loads(out.read_text())["grasps"]
    assert set(plans) == {"lateral", "small_diameter"}
    joints = _urdf_joints(mimic_hand / "hand.urdf")
    independent = {n for n, j in joints.items() if j.get("type") != "fixed" and j.find("mimic") is None}
    dip = joints["index_dip"].find("limit")
    for plan in plans.values():
        for key in ("preshape", "close"):
            assert set(plan[key]) == independent
            # the coupled DIP stays within its own URDF limits wherever the plan puts the PIP
            assert float(dip.get("lower")) - 1e-9 <= MULT * plan[key]["index_pip"] + OFFSET <= float(dip.get("upper")) + 1e-9
    folder = tmp_path / "with_synth"
    shutil.copytree(mimic_hand, folder)
    shutil.copy(out, folder / "grasps.json")
    assert set(load_plans_of(load_hand(folder))) == {"lateral", "small_diameter"}
