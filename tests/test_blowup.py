"""A physics blow-up (a non-finite state PyBullet hands back) is a SimulationError wherever it
happens, in the grasp phase, the settle or the disturbance, and the benchmark records it as a
failed trial ("simulation error: ...") instead of stopping the run as bad input.

The blow-up is made real in PyBullet: a NaN velocity (or joint angle) is written into the
running simulation, which then integrates it into the state, as a diverging solver would.
"""

from __future__ import annotations

import math

import gymnasium
import numpy as np
import pytest

import handsim  # noqa: F401  (registers the env)
from handsim.bench.runner import TrialTask, close_worker_envs, run_trial
from handsim.errors import SimulationError
from handsim.policies import ScriptedGraspPolicy


def _run(what: str, at_step: int) -> None:
    env = gymnasium.make("handsim/Grasp-v0", grasp="lateral")
    try:
        obs, info = env.reset(seed=0)
        policy = ScriptedGraspPolicy(env)
        policy.reset(info)
        ep = env.unwrapped.episode
        client = ep.world.client
        for k in range(40):
            if k == at_step:
                if what == "object":
                    client.resetBaseVelocity(ep.obj.body_id, [math.nan] * 3, [0.0, 0.0, 0.0])
                elif what == "joint":
                    client.resetJointState(ep.body.body_id, ep.body._joint_ids[0], math.nan, 0.0)
                else:  # the settle: the object's spin goes bad after the last grasp step
                    client.resetBaseVelocity(ep.obj.body_id, [0.0, 0.0, 0.0], [math.nan] * 3)
                    ep.evaluate(run_protocol=True)
                    return
            obs, _, terminated, truncated, _ = env.step(policy(obs))
            if terminated or truncated:
                break
    finally:
        env.close()


@pytest.mark.parametrize(("what", "at_step", "where"), [
    ("object", 3, "at control step 4"),
    ("joint", 3, "at control step 4"),
])
def test_grasp_phase_blow_up_is_a_simulation_error(what: str, at_step: int, where: str) -> None:
    with pytest.raises(SimulationError, match=f"physics blow-up.*{where}"):
        _run(what, at_step)


def test_blow_up_in_the_settle_is_a_simulation_error() -> None:
    with pytest.raises(SimulationError, match="physics blow-up.*during the settle"):
        _run("settle", 10)


class _BlowUp(ScriptedGraspPolicy):
    def __call__(self, obs=None):
        ep = self.env.unwrapped.episode
        if ep.control_step == 3:
            ep.world.client.resetBaseVelocity(ep.obj.body_id, [math.nan] * 3, [0.0, 0.0, 0.0])
        return super().__call__(obs)


def make_blow_up_policy(env):
    return _BlowUp(env)


def test_the_benchmark_records_a_blow_up_as_a_failed_trial() -> None:
    task = TrialTask(env_id="handsim/Grasp-v0", env_kwargs=(), hand="default_hand",
                     policy="test_blowup:make_blow_up_policy", grasp_id="lateral", number=16, trial=0, seed=0,
                     render=False)
    try:
        record, _ = run_trial(task)
    finally:
        close_worker_envs()
    assert record["success"] is False
    assert any(r.startswith("simulation error: physics blow-up") for r in record["failure_reasons"]), record



def test_free_wrist_blow_up_is_a_simulation_error() -> None:
    env = gymnasium.make("handsim/Grasp-v0", grasp="lateral", wrist="free", evaluate=False)
    try:
        env.reset(seed=0)
        ep = env.unwrapped.episode
        ep.world.client.resetBaseVelocity(ep.body.body_id, [math.nan] * 3, [0.0, 0.0, 0.0])
        with pytest.raises(SimulationError, match="physics blow-up.*at control step 1"):
            env.step(np.zeros(env.action_space.shape, np.float32))
    finally:
        env.close()
