"""Hand v6's joint armature (models/default_hand/README.md, "Joint armature (v6)"): what the
URDF states, what PyBullet loads, and why it is there (the solve converges: the verdict no
longer depends on the parity of the solver's iteration count)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pybullet as pb
import pytest
from conftest import DATA_DIR, v5_hand
from scipy.spatial.transform import Rotation

from handsim.data import hand_dir

ARMATURE = 2e-4  # kg m^2 about each movable joint's axis (the README's figure)


def _inertials(root: ET.Element) -> dict[str, tuple[float, np.ndarray, np.ndarray]]:
    """Per link: mass, centre of mass and the inertia tensor in the link frame."""
    out = {}
    for link in root.findall("link"):
        inertial = link.find("inertial")
        if inertial is None:
            continue
        origin = inertial.find("origin")
        rot = Rotation.from_euler("xyz", [float(v) for v in origin.get("rpy", "0 0 0").split()]).as_matrix()
        a = inertial.find("inertia").attrib
        tensor = np.array([[float(a["ixx"]), float(a["ixy"]), float(a["ixz"])],
                           [float(a["ixy"]), float(a["iyy"]), float(a["iyz"])],
                           [float(a["ixz"]), float(a["iyz"]), float(a["izz"])]])
        out[link.get("name")] = (float(inertial.find("mass").get("value")),
                                 np.array([float(v) for v in origin.get("xyz").split()]), rot @ tensor @ rot.T)
    return out


def _movable(root: ET.Element) -> list[tuple[str, np.ndarray]]:
    """(child link, unit joint axis in the child's frame) of every movable joint."""
    out = []
    for joint in root.findall("joint"):
        if joint.get("type") in ("revolute", "continuous", "prismatic"):
            axis = np.array([float(v) for v in joint.find("axis").get("xyz").split()])
            out.append((joint.find("child").get("link"), axis / np.linalg.norm(axis)))
    return out


def test_every_movable_joint_adds_a_disk_armature_to_v5s_link(tmp_path) -> None:
    """v6 - v5, link by link in the link frame: ARMATURE about the joint axis and half of it
    about the two perpendicular axes (a thin disk, the least a body can have); masses and
    centres of mass unchanged, and no other link touched."""
    v6 = ET.parse(hand_dir("default_hand") / "hand.urdf").getroot()
    old = _inertials(ET.parse(v5_hand(tmp_path / "v5") / "hand.urdf").getroot())
    new = _inertials(v6)
    movable = _movable(v6)
    assert len(movable) == 21
    assert set(json.loads((DATA_DIR / "default_hand_v5.json").read_text())["inertial"]) == {c for c, _ in movable}
    for child, axis in movable:
        added = new[child][2] - old[child][2]
        expected = ARMATURE * (0.5 * np.eye(3) + 0.5 * np.outer(axis, axis))
        np.testing.assert_allclose(added, expected, rtol=0, atol=ARMATURE * 1e-5, err_msg=child)
        assert new[child][0] == old[child][0]
        np.testing.assert_array_equal(new[child][1], old[child][1])
    for name in set(new) - {c for c, _ in movable}:
        np.testing.assert_array_equal(new[name][2], old[name][2])


def test_pybullet_loads_the_armature_about_each_joint_axis() -> None:
    """PyBullet (inertia from the file) keeps each link's tensor: its principal moments and
    frame give >= ARMATURE about the joint's axis (PyBullet would zero an unphysical tensor)."""
    urdf = hand_dir("default_hand") / "hand.urdf"
    axes = dict(_movable(ET.parse(urdf).getroot()))
    client = pb.connect(pb.DIRECT)
    try:
        body = pb.loadURDF(str(urdf), useFixedBase=True, flags=pb.URDF_USE_INERTIA_FROM_FILE, physicsClientId=client)
        seen = 0
        for j in range(pb.getNumJoints(body, physicsClientId=client)):
            link = pb.getJointInfo(body, j, physicsClientId=client)[12].decode()
            if link not in axes:
                continue
            info = pb.getDynamicsInfo(body, j, physicsClientId=client)
            rot = np.array(pb.getMatrixFromQuaternion(info[4])).reshape(3, 3)
            about_axis = axes[link] @ rot @ np.diag(info[2]) @ rot.T @ axes[link]
            assert ARMATURE <= about_axis < 1.2 * ARMATURE, (link, about_axis)
            seen += 1
        assert seen == 21
    finally:
        pb.disconnect(client)


@pytest.mark.slow
def test_the_verdict_no_longer_depends_on_the_solver_iterations_parity(tmp_path) -> None:
    """Medium wrap's benchmark trial 0 at seed 0: on hand v5 it holds at the protocol's 150
    solver iterations and turns out at 151 (Bullet sweeps the motor rows forwards on odd
    iterations, backwards on even ones, and v5's light links leave the solve unconverged:
    GRASPS.md, "Session 18"); on v6 it holds at both."""
    from test_honesty import seed0_trial

    v5 = v5_hand(tmp_path / "v5")
    v5_runs = [seed0_trial("medium_wrap", v5, solver_iterations=n) for n in (150, 151)]
    v6_runs = [seed0_trial("medium_wrap", solver_iterations=n) for n in (150, 151)]
    assert v5_runs[0]["success"] and not v5_runs[1]["success"], [r["failure_reasons"] for r in v5_runs]
    assert all(r["success"] for r in v6_runs), [r["failure_reasons"] for r in v6_runs]
