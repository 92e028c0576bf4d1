"""Kinematics core against PyBullet (an independent implementation) and finite differences."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pybullet as pb
import pybullet_data
import pytest
from conftest import DATA_DIR

from handsim import data
from handsim.errors import ConfigurationError, HandsimError, UnknownNameError, URDFError
from handsim.kinematics import load_urdf

PB_DATA = Path(pybullet_data.getDataPath())


def _default_hand_urdf() -> Path:
    folder = data.hand_dir(data.DEFAULT_HAND)
    return folder / json.loads((folder / "hand.json").read_text())["urdf"]


# Our hand, two robots from pybullet_data that we did not write, and a test tree with oblique
# axes, every joint type and a mimic joint.
URDFS = {
    **({"default_hand": _default_hand_urdf} if (data.models_dir() / data.DEFAULT_HAND / "hand.json").is_file() else {}),
    "kuka_iiwa": lambda: PB_DATA / "kuka_iiwa" / "model.urdf",
    "franka_panda": lambda: PB_DATA / "franka_panda" / "panda.urdf",
    "r2d2": lambda: PB_DATA / "r2d2.urdf",
    "branchy": lambda: DATA_DIR / "kin_branchy.urdf",
}


def _pose_matrix(pos, orn) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = np.array(pb.getMatrixFromQuaternion(orn)).reshape(3, 3)
    m[:3, 3] = pos
    return m


class PyBulletReference:
    """Link frames and Jacobians from PyBullet for a fixed-base URDF."""

    def __init__(self, path: Path, tree) -> None:
        self.cid = pb.connect(pb.DIRECT)
        self.body = pb.loadURDF(str(path), useFixedBase=True, physicsClientId=self.cid)
        self.tree = tree
        self.joint_of = {}  # joint name -> pybullet index
        self.link_of = {}  # link name -> pybullet link index
        for k in range(pb.getNumJoints(self.body, physicsClientId=self.cid)):
            info = pb.getJointInfo(self.body, k, physicsClientId=self.cid)
            self.joint_of[info[1].decode()] = k
            self.link_of[info[12].decode()] = k
        self.movable = [
            k
            for k in range(pb.getNumJoints(self.body, physicsClientId=self.cid))
            if pb.getJointInfo(self.body, k, physicsClientId=self.cid)[2] != pb.JOINT_FIXED
        ]

    def close(self) -> None:
        pb.disconnect(self.cid)

    def set_q(self, q: np.ndarray) -> dict[str, float]:
        values = dict(zip(self.tree.joint_names, q))
        for name in self.tree.mimic_joint_names:  # PyBullet ignores <mimic>: set it by hand
            master, mult, off = self.tree.joints[name].mimic
            while master not in values:
                m2, mu2, o2 = self.tree.joints[master].mimic
                master, mult, off = m2, mult * mu2, mult * o2 + off
            values[name] = mult * values[master] + off
        for name, v in values.items():
            pb.resetJointState(self.body, self.joint_of[name], float(v), physicsClientId=self.cid)
        return values

    def root_frame(self) -> np.ndarray:
        com = _pose_matrix(*pb.getBasePositionAndOrientation(self.body, physicsClientId=self.cid))
        dyn = pb.getDynamicsInfo(self.body, -1, physicsClientId=self.cid)
        return com @ np.linalg.inv(_pose_matrix(dyn[3], dyn[4]))

    def link_frames(self) -> dict[str, np.ndarray]:
        root = self.root_frame()
        inv_root = np.linalg.inv(root)
        frames = {self.tree.root_link: np.eye(4)}
        for name, k in self.link_of.items():
            st = pb.getLinkState(self.body, k, computeForwardKinematics=True, physicsClientId=self.cid)
            frames[name] = inv_root @ _pose_matrix(st[4], st[5])
        return frames

    def jacobian(self, q_values: dict[str, float], link: str) -> np.ndarray:
        k = self.link_of[link]
        pos = [pb.getJointState(self.body, m, physicsClientId=self.cid)[0] for m in self.movable]
        zero = [0.0] * len(pos)
        # Measured on pybullet 3.2.7: localPosition is taken in the URDF link frame, and the result
        # is expressed in the axes of the base's *inertial* frame; rotate it into the root link's.
        lin, ang = pb.calculateJacobian(self.body, k, [0.0, 0.0, 0.0], pos, zero, zero, physicsClientId=self.cid)
        base_inertial = pb.getDynamicsInfo(self.body, -1, physicsClientId=self.cid)[4]
        rot = np.array(pb.getMatrixFromQuaternion(base_inertial)).reshape(3, 3)
        full = np.vstack([rot @ np.array(lin), rot @ np.array(ang)])  # (6, dofs), PyBullet's order
        out = np.zeros((6, self.tree.num_joints))
        for col, m in enumerate(self.movable):
            name = pb.getJointInfo(self.body, m, physicsClientId=self.cid)[1].decode()
            if name in self.tree.joint_names:
                out[:, self.tree.joint_index(name)] += full[:, col]
            else:  # a mimic joint adds its column, scaled, to its master's
                master, mult, _ = self.tree.joints[name].mimic
                while master not in self.tree.joint_names:
                    m2, mu2, _ = self.tree.joints[master].mimic
                    master, mult = m2, mult * mu2
                out[:, self.tree.joint_index(master)] += mult * full[:, col]
        return out


def _random_q(tree, rng, count: int) -> np.ndarray:
    lo = np.where(np.isfinite(tree.lower), tree.lower, -np.pi)
    hi = np.where(np.isfinite(tree.upper), tree.upper, np.pi)
    return rng.uniform(lo, hi, size=(count, tree.num_joints))


@pytest.fixture(params=sorted(URDFS), scope="module")
def robot(request):
    path = URDFS[request.param]()
    tree = load_urdf(path)
    ref = PyBulletReference(path, tree)
    yield tree, ref
    ref.close()


def test_names_and_limits_match_pybullet(robot):
    tree, ref = robot
    assert set(tree.link_names) == set(ref.link_of) | {tree.root_link}
    movable = {pb.getJointInfo(ref.body, k, physicsClientId=ref.cid)[1].decode() for k in ref.movable}
    assert set(tree.joint_names) | set(tree.mimic_joint_names) == movable
    for name in tree.joint_names:
        info = pb.getJointInfo(ref.body, ref.joint_of[name], physicsClientId=ref.cid)
        if info[2] != pb.JOINT_FIXED and np.isfinite(tree.lower[tree.joint_index(name)]) and info[8] <= info[9]:
            assert tree.lower[tree.joint_index(name)] == pytest.approx(info[8])
            assert tree.upper[tree.joint_index(name)] == pytest.approx(info[9])


def test_fk_matches_pybullet(robot, rng):
    tree, ref = robot
    qs = _random_q(tree, rng, 12)
    ours = tree.forward_kinematics(qs)  # (B, L, 4, 4)
    for b, q in enumerate(qs):
        ref.set_q(q)
        frames = ref.link_frames()
        single = tree.forward_kinematics(q)  # the one-configuration code path
        for li, name in enumerate(tree.link_names):
            for got in (ours[b, li], single[li]):
                np.testing.assert_allclose(got[:3, 3], frames[name][:3, 3], atol=1e-6, rtol=0, err_msg=name)
                np.testing.assert_allclose(got[:3, :3], frames[name][:3, :3], atol=1e-6, rtol=0, err_msg=name)


def test_batched_equals_one_at_a_time(robot, rng):
    tree, _ = robot
    qs = _random_q(tree, rng, 20000)  # large enough to be computed in several passes
    batched = tree.forward_kinematics(qs)
    np.testing.assert_allclose(batched[:5000], tree.forward_kinematics(qs[:5000]), atol=1e-12, rtol=0)  # one pass
    for b in (0, 1, 2047, 2048, 19999):
        single = tree.forward_kinematics(qs[b])
        assert single.shape == (len(tree.link_names), 4, 4)
        np.testing.assert_allclose(batched[b], single, atol=1e-12, rtol=0)
    np.testing.assert_allclose(batched[:, :, 3], np.broadcast_to([0, 0, 0, 1.0], batched[:, :, 3].shape))


def test_fk_into_an_earlier_result_matches_pybullet(robot, rng):
    tree, ref = robot
    buffer = tree.forward_kinematics(_random_q(tree, rng, 3000))  # > one pass of 2048
    qs = _random_q(tree, rng, 3000)
    got = tree.forward_kinematics(qs, out=buffer)
    assert got is buffer
    for b in (0, 2047, 2048, 2999):
        ref.set_q(qs[b])
        frames = ref.link_frames()
        for li, name in enumerate(tree.link_names):
            np.testing.assert_allclose(got[b, li, :3], frames[name][:3], atol=1e-6, rtol=0, err_msg=name)


def test_fk_out_must_be_an_earlier_result_of_that_batch():
    tree = load_urdf(DATA_DIR / "kin_branchy.urdf")
    q = np.zeros((4, 5))
    frames = tree.forward_kinematics(q)
    with pytest.raises(ConfigurationError, match=r"shape \(4, \d+, 4, 4\) dtype float64, got shape \(3,"):
        tree.forward_kinematics(q, out=frames[:3])
    with pytest.raises(ConfigurationError, match="dtype float64, got shape .* dtype float32"):
        tree.forward_kinematics(q, out=frames.astype(np.float32))
    with pytest.raises(ConfigurationError, match="not a copy"):
        tree.forward_kinematics(q, out=np.ascontiguousarray(frames))
    with pytest.raises(ConfigurationError, match="single"):
        tree.forward_kinematics(q[0], out=frames)


def test_float32_close_to_float64(robot, rng):
    tree, _ = robot
    qs = _random_q(tree, rng, 64)
    f32 = tree.forward_kinematics(qs.astype(np.float32))
    assert f32.dtype == np.float32
    np.testing.assert_allclose(f32, tree.forward_kinematics(qs), atol=2e-5)


def test_jacobian_matches_pybullet_and_finite_differences(robot, rng):
    tree, ref = robot
    qs = _random_q(tree, rng, 3)
    links = [name for name in tree.link_names[1:] if name in ref.link_of][-4:]
    for q in qs:
        values = ref.set_q(q)
        for link in links:
            jac = tree.jacobian(q, link)
            assert jac.shape == (6, tree.num_joints)
            np.testing.assert_allclose(jac, ref.jacobian(values, link), atol=1e-6, err_msg=link)
            # central differences of our own FK: position and rotation (via R' R^T)
            h = 1e-6
            li = tree.link_index(link)
            fd = np.zeros_like(jac)
            for k in range(tree.num_joints):
                dq = np.zeros(tree.num_joints)
                dq[k] = h
                plus, minus = tree.forward_kinematics(q + dq)[li], tree.forward_kinematics(q - dq)[li]
                fd[:3, k] = (plus[:3, 3] - minus[:3, 3]) / (2 * h)
                w = (plus[:3, :3] - minus[:3, :3]) / (2 * h) @ tree.forward_kinematics(q)[li, :3, :3].T
                fd[3:, k] = [w[2, 1], w[0, 2], w[1, 0]]
            np.testing.assert_allclose(jac, fd, atol=1e-6, err_msg=link)
    batched = tree.jacobian(qs, links[-1])
    assert batched.shape == (3, 6, tree.num_joints)
    np.testing.assert_allclose(batched[1], tree.jacobian(qs[1], links[-1]), atol=1e-12)


def test_mimic_joint_follows_master():
    tree = load_urdf(DATA_DIR / "kin_branchy.urdf")
    assert "j_e" in tree.mimic_joint_names and "j_e" not in tree.joint_names
    assert tree.num_joints == 5
    # as the file's tag says (j_d is independent); an independent joint drives itself
    assert tree.mimic_drive("j_e") == ("j_d", -0.7, 0.25)
    assert tree.mimic_drive("j_d") == ("j_d", 1.0, 0.0)


# ---------------------------------------------------------------- bad input
def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "robot.urdf"
    path.write_text(text)
    return path


LINK = '<link name="{}"/>'
ZERO_AXIS = '<axis xyz="0 0 0"/>'
BAD_ORIGIN = '<origin xyz="0 nan"/>'
BAD_MIMIC = '<mimic joint="jj"/>'


def _joint(name, parent, child, jtype="revolute", extra=""):
    return (
        f'<joint name="{name}" type="{jtype}"><parent link="{parent}"/><child link="{child}"/>'
        f'<limit lower="-1" upper="1" effort="1" velocity="1"/>{extra}</joint>'
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("<robot name='r'><link name='a'>", "malformed XML"),
        ("<notrobot/>", "root element must be <robot>"),
        (f"<robot name='r'>{LINK.format('a')}{LINK.format('b')}{_joint('j', 'a', 'b', 'ballsocket')}</robot>", "unknown joint type 'ballsocket'"),
        (f"<robot name='r'>{LINK.format('a')}{LINK.format('b')}{_joint('j', 'a', 'b', 'floating')}</robot>", "not supported"),
        (f"<robot name='r'>{LINK.format('a')}{LINK.format('b')}{_joint('j', 'a', 'bb')}</robot>", "did you mean 'b'"),
        (
            f"<robot name='r'>{LINK.format('a')}{LINK.format('b')}{LINK.format('c')}"
            f"{_joint('j1', 'a', 'b')}{_joint('j2', 'b', 'c')}{_joint('j3', 'c', 'b')}</robot>",
            "two parent joints",
        ),
        (
            f"<robot name='r'>{LINK.format('a')}{LINK.format('b')}{_joint('j1', 'a', 'b')}{_joint('j2', 'b', 'a')}</robot>",
            "cycle",
        ),
        (f"<robot name='r'>{LINK.format('a')}{LINK.format('b')}{_joint('j', 'a', 'b', extra=ZERO_AXIS)}</robot>", "non-zero"),
        (f"<robot name='r'>{LINK.format('a')}{LINK.format('b')}{_joint('j', 'a', 'b', extra=BAD_ORIGIN)}</robot>", "expected 3 finite numbers"),
        (f"<robot name='r'>{LINK.format('a')}{LINK.format('b')}{_joint('j', 'a', 'b', extra=BAD_MIMIC)}</robot>", "unknown joint 'jj'"),
        (f"<robot name='r'>{LINK.format('a')}{LINK.format('b')}</robot>", "exactly one root"),
    ],
)
def test_malformed_urdf_raises_named_error(tmp_path, text, fragment):
    with pytest.raises(URDFError) as info:
        load_urdf(_write(tmp_path, text))
    assert fragment in str(info.value)
    assert isinstance(info.value, HandsimError)


def test_missing_file(tmp_path):
    with pytest.raises(URDFError, match="not found"):
        load_urdf(tmp_path / "nope.urdf")


def test_bad_configurations():
    tree = load_urdf(DATA_DIR / "kin_branchy.urdf")
    with pytest.raises(ConfigurationError, match=r"shape \(5,\) or \(B, 5\)"):
        tree.forward_kinematics(np.zeros(4))
    with pytest.raises(ConfigurationError, match="shape"):
        tree.forward_kinematics(np.zeros((2, 3, 5)))
    q = np.zeros((3, 5))
    q[2, 1] = np.nan
    with pytest.raises(ConfigurationError, match="non-finite.*batch 2.*'j_b'"):
        tree.forward_kinematics(q)
    with pytest.raises(ConfigurationError, match="numeric"):
        tree.forward_kinematics(np.array(["a"] * 5))
    with pytest.raises(UnknownNameError, match="did you mean 'tip'"):
        tree.jacobian(np.zeros(5), "tips")


def test_kinematics_does_not_import_pybullet():
    code = "import sys, handsim.kinematics; assert 'pybullet' not in sys.modules, 'pybullet imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_matrix_to_rpy_inverts_rpy_to_matrix_against_scipy() -> None:
    """URDF rpy (fixed axes x, y, z) of random rotations and of gimbal-locked ones (pitch +-90
    deg) gives back the same rotation, built independently by scipy."""
    from scipy.spatial.transform import Rotation

    from handsim.kinematics.urdf import matrix_to_rpy, rpy_to_matrix

    rots = list(Rotation.random(200, random_state=3).as_matrix())
    rots += [Rotation.from_euler("xyz", [0.3, s * np.pi / 2, -1.1]).as_matrix() for s in (1, -1)]
    for rot in rots:
        rpy = matrix_to_rpy(rot)
        np.testing.assert_allclose(Rotation.from_euler("xyz", rpy).as_matrix(), rot, atol=1e-9)
        np.testing.assert_allclose(rpy_to_matrix(np.array(rpy)), rot, atol=1e-9)
