"""Contact labelling through the kinematics core, checked against PyBullet's link frames."""

from __future__ import annotations

import numpy as np
import pybullet as pb
import pytest

from handsim.errors import ConfigurationError
from handsim.hand import load_hand
from handsim.kinematics import load_urdf
from handsim.scoring import contact_matrix, label_contacts


@pytest.fixture(scope="module")
def hand_setup():
    hand = load_hand("default_hand")
    tree = load_urdf(hand.urdf_path)
    cid = pb.connect(pb.DIRECT)
    body = pb.loadURDF(str(hand.urdf_path), useFixedBase=True, physicsClientId=cid)
    names = {pb.getJointInfo(body, k, physicsClientId=cid)[12].decode(): k for k in range(pb.getNumJoints(body, physicsClientId=cid))}
    joints = {pb.getJointInfo(body, k, physicsClientId=cid)[1].decode(): k for k in range(pb.getNumJoints(body, physicsClientId=cid))}
    yield hand, tree, cid, body, names, joints
    pb.disconnect(cid)


def _pb_link_frame(cid, body, names, link, root):
    if link == root:
        return np.eye(4)
    st = pb.getLinkState(body, names[link], computeForwardKinematics=True, physicsClientId=cid)
    m = np.eye(4)
    m[:3, :3] = np.array(pb.getMatrixFromQuaternion(st[5])).reshape(3, 3)
    m[:3, 3] = st[4]
    return m


def test_labels_match_labelling_in_pybullet_link_frames(hand_setup, rng):
    hand, tree, cid, body, names, joints = hand_setup
    region_links = [link for link in hand.regions.links]
    batch, per = 6, 20
    qs = rng.uniform(tree.lower, tree.upper, size=(batch, tree.num_joints))
    points = np.zeros((batch, per, 3))
    links = np.zeros((batch, per), dtype=np.int64)
    expected = np.zeros((batch, per), dtype=np.int64)
    for b, q in enumerate(qs):
        for name, v in zip(tree.joint_names, q):
            pb.resetJointState(body, joints[name], float(v), physicsClientId=cid)
        chosen = rng.choice(len(region_links), size=per)
        for c, k in enumerate(chosen):
            link = region_links[k]
            local = rng.uniform(-0.03, 0.03, size=3)  # a point near the link, in its own frame
            frame = _pb_link_frame(cid, body, names, link, tree.root_link)  # PyBullet's FK, not ours
            points[b, c] = frame[:3, :3] @ local + frame[:3, 3]
            links[b, c] = tree.link_index(link)
            expected[b, c] = hand.regions.classify(local[None], [link])[0]
    mask = rng.random((batch, per)) > 0.2
    ids = label_contacts(tree, hand.regions, qs, points, links, mask=mask)
    np.testing.assert_array_equal(ids[mask], expected[mask])
    assert np.all(ids[~mask] == -1)
    # world-frame input with a base pose gives the same labels
    base = np.eye(4)
    base[:3, 3] = [0.3, -0.2, 0.5]
    base[:3, :3] = np.array(pb.getMatrixFromQuaternion(pb.getQuaternionFromEuler([0.3, 0.2, -1.0]))).reshape(3, 3)
    world = points @ base[:3, :3].T + base[:3, 3]
    np.testing.assert_array_equal(label_contacts(tree, hand.regions, qs, world, links, mask=mask, base_pose=base), ids)
    touched = contact_matrix(ids, len(hand.regions.labels))
    for b in range(batch):
        assert set(np.nonzero(touched[b])[0]) == set(ids[b][ids[b] >= 0])


def test_bad_shapes(hand_setup):
    hand, tree, *_ = hand_setup
    q = np.zeros(tree.num_joints)
    with pytest.raises(ConfigurationError, match=r"\(B, C, 3\)"):
        label_contacts(tree, hand.regions, q, np.zeros((1, 2)), np.zeros((1, 2), dtype=int))
    with pytest.raises(ConfigurationError, match="integer"):
        label_contacts(tree, hand.regions, q, np.zeros((1, 2, 3)), np.zeros((1, 2)))
    with pytest.raises(ConfigurationError, match="index tree.link_names"):
        label_contacts(tree, hand.regions, q, np.zeros((1, 2, 3)), np.full((1, 2), 999))
