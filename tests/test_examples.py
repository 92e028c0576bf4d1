"""``examples/``: the example scripts use the hand they are given (no RL extra needed here)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import gymnasium
import numpy as np

from handsim.envs import GRASP_ENV_ID
from handsim.handgen import make_hand

REPO = Path(__file__).resolve().parent.parent


def _train_ppo():
    spec = importlib.util.spec_from_file_location(
        "train_ppo", REPO / "examples" / "train_ppo.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_ppo_evaluates_the_hand_it_trains_on(tmp_path):
    # Review 18: evaluate_policy built its env without the --hand argument, so a model trained
    # on another hand (other observation and action sizes) was evaluated on the default hand.
    folder = make_hand(tmp_path / "f4", fingers=4)
    env = gymnasium.make(
        GRASP_ENV_ID, grasp="lateral", hand=str(folder), evaluate=False
    )
    obs_shape, action_shape = env.observation_space.shape, env.action_space.shape
    env.close()
    seen = []

    class Model:  # SB3's predict(obs, deterministic) -> (action, state)
        def predict(self, obs, deterministic):
            seen.append(obs.shape)
            return np.zeros(action_shape, np.float32), None

    result = _train_ppo().evaluate_policy(
        Model(), "lateral", 1, 0, evaluate=False, hand=str(folder)
    )
    assert set(seen) == {obs_shape} and len(seen) > 1
    assert result["success_rate"] == 0.0  # a generated hand has no plans
