"""A plan's ``effort`` caps (grasps.json): PyBullet's own reading of the motor torque shows the
cap holds and bites, the benchmark records and reports every lowered cap, and a cap above the
URDF effort is refused."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest

from handsim.bench.compare import compare_results
from handsim.bench.results import load_results
from handsim.cli import main
from handsim.data import hand_dir
from handsim.episode import GraspEpisode
from handsim.errors import ConfigurationError
from handsim.grasps import get


def _capped_copy(tmp_path, grasp_id, caps):
    folder = tmp_path / "hand"
    shutil.copytree(hand_dir("default_hand"), folder)
    path = folder / "grasps.json"
    data = json.loads(path.read_text())
    data["grasps"][grasp_id]["effort"] = caps
    path.write_text(json.dumps(data))
    return folder


def _grasp_phase_torques(ep, grasp_id, joint):
    """|applied motor torque| of ``joint`` after every control step of the plan's closing, as
    PyBullet reports it (getJointState's appliedJointMotorTorque)."""
    ep.reset(get(grasp_id), np.random.default_rng(0))
    plan = ep.plan
    ramp = max(1, round(0.6 * ep.grasp_steps))
    c, body, j = ep.world.client, ep.body.body_id, ep.body.joint_index[joint]
    out = []
    for k in range(ep.grasp_steps):
        a = min(1.0, (k + 1) / ramp)
        ep.apply((1 - a) * plan.preshape + a * plan.close)
        out.append(abs(c.getJointState(body, j)[3]))
    return np.array(out)


@pytest.mark.slow
def test_a_plan_cap_holds_the_motor_torque_below_it(tmp_path):
    # Closing on the bottle, the middle PIP presses with ~0.29 N m (its URDF effort is 1.2): a
    # cap of 0.15 must hold it at 0.15 (saturated), and nothing changes the uncapped hand.
    free = GraspEpisode(visuals=False)
    uncapped = _grasp_phase_torques(free, "large_diameter", "middle_pip")
    assert free.body.effort[free.joint_names.index("middle_pip")] == pytest.approx(1.2)
    free.close()
    assert uncapped[-5:].min() > 0.2

    ep = GraspEpisode(_capped_copy(tmp_path, "large_diameter", {"middle_pip": 0.15}), visuals=False)
    capped = _grasp_phase_torques(ep, "large_diameter", "middle_pip")
    i = ep.joint_names.index("middle_pip")
    assert ep.body.effort[i] == 0.15 and ep.body.urdf_effort[i] == pytest.approx(1.2)
    assert capped.max() <= 0.15 * (1 + 1e-9)
    assert capped[-5:].min() == pytest.approx(0.15, rel=1e-6)  # the cap bites: saturated
    # The cap lasts the whole trial: released under gravity (settle, pushes) it still holds.
    ep.release_object()
    c, body, j = ep.world.client, ep.body.body_id, ep.body.joint_index["middle_pip"]
    after = []
    for _ in range(50):
        ep.world.step()
        after.append(abs(c.getJointState(body, j)[3]))
    assert max(after) <= 0.15 * (1 + 1e-9)
    ep.close()


def test_a_capped_master_caps_its_mimic_joint_in_proportion(tmp_path):
    # A coupled-DIP hand: index_dip follows index_pip (x0.7) through its own motor (URDF 0.6 N m).
    # Capping the PIP at 1 % of its URDF effort caps the DIP's motor at 1 % too (0.006 N m):
    # PyBullet's applied torque on the DIP saturates there, where uncapped it applies ~0.05.
    from handsim.hand import load_hand
    from handsim.handgen import make_hand
    from handsim.sim import HandBody, World

    hand = load_hand(make_hand(tmp_path / "c", dip_coupling=0.7))

    def dip_torques(frac):
        world = World(gravity=False)
        try:
            body = HandBody(world, hand.urdf_path, visual=False)
            q = np.clip(hand.rest_vector(), body.lower, body.upper)
            body.reset_joints(q)
            if frac is not None:
                caps = body.urdf_effort.copy()
                caps[body.q_index("index_pip")] *= frac
                body.set_effort(caps)
            q[body.q_index("index_pip")] = 1.5
            body.set_targets(q)
            out = []
            for _ in range(5):
                world.step()
                out.append(abs(world.client.getJointState(body.body_id, body.joint_index["index_dip"])[3]))
            return np.array(out)
        finally:
            world.close()

    assert dip_torques(None).max() > 0.03
    capped = dip_torques(0.01)
    assert capped.max() <= 0.006 * (1 + 1e-9)
    assert capped.max() == pytest.approx(0.006, rel=1e-6)


def test_hand_body_refuses_a_cap_above_the_urdf_effort():
    ep = GraspEpisode(visuals=False)
    ep.reset(get("tripod"), np.random.default_rng(0))
    caps = ep.body.urdf_effort.copy()
    caps[0] *= 2
    with pytest.raises(ConfigurationError, match=rf"{ep.joint_names[0]!r} = .* is not in \(0, "):
        ep.body.set_effort(caps)
    with pytest.raises(ConfigurationError, match="expected shape"):
        ep.body.set_effort(caps[:-1])
    ep.close()


@pytest.mark.slow
def test_bench_records_and_reports_lowered_caps(tmp_path, capsys):
    hand = _capped_copy(tmp_path, "large_diameter", {"thumb_cmc_flex": 1.5, "index_mcp_flex": 2.0})
    out = tmp_path / "out"
    assert main(["bench", "--hand", str(hand), "--grasps", "large_diameter", "--trials", "1", "--jobs", "1",
                 "--out", str(out)]) in (0, 1)
    results = json.loads((out / "results.json").read_text())
    # index_mcp_flex's cap equals its URDF effort (2 N m): not a lowered cap. The shipped
    # plans' own caps (hand v5) are listed too.
    shipped = json.loads((hand_dir("default_hand") / "grasps.json").read_text())["grasps"]
    expected = {gid: plan["effort"] for gid, plan in shipped.items() if "effort" in plan}
    expected["large_diameter"] = {"thumb_cmc_flex": 1.5}
    assert results["hand"]["effort_caps"] == expected
    assert "large_diameter: thumb_cmc_flex 1.5" in (out / "report.md").read_text()
    # A baseline made before the cap: the comparison says the plans' caps and files changed.
    run = load_results(out / "results.json")
    before = dataclasses.replace(run, hand={**run.hand, "effort_caps": {},
                                            "sha256": {**run.hand["sha256"], "grasps_json": "0" * 64}})
    notes = compare_results(run, before).notes
    assert "the hand's files differ from the baseline's: grasps_json" in notes
    assert f"plans' lowered effort caps differ: none -> {results['hand']['effort_caps']}" in notes
    assert not compare_results(run, run).notes


def test_a_cap_above_the_urdf_effort_is_a_one_line_user_error(tmp_path, capsys):
    hand = _capped_copy(tmp_path, "tripod", {"thumb_cmc_flex": 6.5})
    assert main(["bench", "--hand", str(hand), "--grasps", "tripod", "--quick", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "grasps.tripod.effort.thumb_cmc_flex: 6.5 is above the joint's URDF effort" in err
    assert "allowed: (0, 6]" in err
    assert "Traceback" not in err
