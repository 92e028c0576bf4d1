"""The joint-limit check: a grasp held with a joint folded past its URDF limit is not achieved.

Independent source: PyBullet's own joint readings (``getJointState``) against the limits in
the URDF, and a protocol whose allowance is set below/above a measured excess.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pybullet as pb
import pytest

from handsim.bench.config import trial_seed
from handsim.episode import GraspEpisode
from handsim.grasps import get
from handsim.tolerances import DEFAULT_PROTOCOL, Protocol

pytestmark = pytest.mark.slow


def _run(ep: GraspEpisode, grasp_id: str, seed: int):
    g = get(grasp_id)
    ep.reset(g, np.random.default_rng(seed))
    n = ep.grasp_steps
    ramp = max(1, round(0.6 * n))
    for k in range(n):
        a = min(1.0, (k + 1) / ramp)
        ep.apply((1 - a) * ep.plan.preshape + a * ep.plan.close)
    return ep.evaluate()


def test_excess_matches_pybullet_joint_readings() -> None:
    ep = GraspEpisode()
    g = get("medium_wrap")
    ep.reset(g, np.random.default_rng(0))
    for _ in range(ep.grasp_steps):
        ep.apply(ep.upper)  # every joint driven to its upper limit, fingers onto the object
    deg, name = ep.joint_excess()
    body, cid = ep.body.body_id, ep.world.client_id
    worst = 0.0
    for j in range(pb.getNumJoints(body, physicsClientId=cid)):
        info = pb.getJointInfo(body, j, physicsClientId=cid)
        if info[2] == pb.JOINT_FIXED:
            continue
        q = pb.getJointState(body, j, physicsClientId=cid)[0]
        lo, hi = info[8], info[9]
        worst = max(worst, np.degrees(max(lo - q, q - hi, 0.0)))
    assert deg == pytest.approx(worst, abs=1e-9)
    assert name in ep.joint_names


def test_allowance_below_the_measured_excess_fails_the_trial() -> None:
    # An achieved grasp of the committed plans, then the same trial with an allowance below
    # the excess it measured: it must fail, naming the joint.
    grasp_id = "prismatic_2_finger"
    seed = trial_seed(0, get(grasp_id).number, 0)
    result = _run(GraspEpisode(), grasp_id, seed)
    assert result.achieved, result.failure_reasons
    assert 0.0 <= result.max_joint_excess_deg <= DEFAULT_PROTOCOL.max_joint_excess_deg
    if result.max_joint_excess_deg <= 1e-6:
        pytest.skip("this plan keeps every joint inside its limits: nothing to undercut")
    tight = dataclasses.replace(DEFAULT_PROTOCOL, max_joint_excess_deg=result.max_joint_excess_deg / 2)
    again = _run(GraspEpisode(protocol=tight), grasp_id, seed)
    assert not again.achieved
    assert any("past its limit" in r for r in again.failure_reasons)


def test_protocol_rejects_a_negative_allowance() -> None:
    with pytest.raises(Exception, match="max_joint_excess_deg"):
        Protocol(max_joint_excess_deg=-1.0)
