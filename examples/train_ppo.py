"""Train Stable-Baselines3 PPO on ``handsim/Grasp-v0`` for a short run and save the learning curve.

Needs the optional extra ``handsim[rl]`` (stable-baselines3 and matplotlib)::

    pip install -e ".[rl]"
    python examples/train_ppo.py --grasp tip_pinch --timesteps 20000 --out ppo_tip_pinch

The env runs in RL mode (``evaluate=False``: the episode ends with the grasp phase and is
scored on the grasp as formed, without the disturbance protocol) with ``action_mode="delta"``
(small per-step target changes are easier to explore than jumps across the joint range).
Every ``--eval-every`` timesteps the policy is evaluated deterministically on full
``evaluate=True`` episodes (the benchmark's protocol), and the mean return and success rate
of both are plotted against timesteps in ``<out>/learning_curve.png`` (also saved as
``<out>/learning_curve.json``; the model as ``<out>/model.zip``).

A run of 20k timesteps (800 episodes of 25 steps) takes a few minutes on a laptop CPU: enough
to see the dense reward terms rise, not to learn a grasp.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np

from handsim.envs import GRASP_ENV_ID, register_envs
from handsim.errors import MissingDependencyError


def _require_rl_extra() -> tuple[Any, Any, Any]:
    try:
        import matplotlib

        matplotlib.use("Agg")  # headless: write the PNG only
        import matplotlib.pyplot as plt
        from stable_baselines3 import PPO
        from stable_baselines3.common.monitor import Monitor
    except ImportError as exc:
        raise MissingDependencyError(
            f"examples/train_ppo.py needs {exc.name}: pip install 'handsim[rl]' "
            "(stable-baselines3 and matplotlib)"
        ) from exc
    return PPO, Monitor, plt


def evaluate_policy(model: Any, grasp: str | None, episodes: int, seed: int, evaluate: bool,
                    hand: str = "default_hand") -> dict[str, float]:
    """Mean return and success rate of the deterministic policy on ``hand`` over ``episodes`` episodes."""
    env = gymnasium.make(GRASP_ENV_ID, grasp=grasp, hand=hand, evaluate=evaluate, action_mode="delta")
    returns, successes = [], []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        total, done, info = 0.0, False, {}
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, info = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
        successes.append(bool(info.get("is_success", False)))
    env.close()
    return {"mean_return": float(np.mean(returns)), "success_rate": float(np.mean(successes))}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grasp", default="tip_pinch", help="grasp id, or 'any' to sample all 33 per episode")
    parser.add_argument("--hand", default="default_hand")
    parser.add_argument("--timesteps", type=int, default=20_000)
    parser.add_argument("--eval-every", type=int, default=5_000)
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("ppo_grasp"))
    args = parser.parse_args(argv)
    PPO, Monitor, plt = _require_rl_extra()
    register_envs()
    grasp = None if args.grasp == "any" else args.grasp

    # SB3's Monitor writes info["episode"] (return, length) over the env's own EpisodeResult dict;
    # is_success and the reward_* terms are separate keys and survive.
    env = Monitor(gymnasium.make(GRASP_ENV_ID, grasp=grasp, hand=args.hand, evaluate=False, action_mode="delta"),
                  info_keywords=("is_success",))
    # n_steps a multiple of the 25-step episode; small batches for a short CPU run.
    model = PPO("MlpPolicy", env, n_steps=500, batch_size=100, learning_rate=3e-4, seed=args.seed, verbose=0)

    curve: list[dict[str, float]] = []
    done_steps = 0
    while done_steps < args.timesteps:
        chunk = min(args.eval_every, args.timesteps - done_steps)
        model.learn(total_timesteps=chunk, reset_num_timesteps=False)
        done_steps += chunk
        rl = evaluate_policy(model, grasp, args.eval_episodes, 10_000, evaluate=False, hand=args.hand)
        full = evaluate_policy(model, grasp, args.eval_episodes, 10_000, evaluate=True, hand=args.hand)
        point = {"timesteps": done_steps, "rl_return": rl["mean_return"], "rl_success": rl["success_rate"],
                 "eval_return": full["mean_return"], "eval_success": full["success_rate"]}
        curve.append(point)
        print(", ".join(f"{k} {v:.3g}" for k, v in point.items()))
    env.close()

    args.out.mkdir(parents=True, exist_ok=True)
    model.save(args.out / "model.zip")
    (args.out / "learning_curve.json").write_text(json.dumps(curve, indent=2) + "\n")
    steps = [p["timesteps"] for p in curve]
    fig, (ax_r, ax_s) = plt.subplots(1, 2, figsize=(10, 4))
    ax_r.plot(steps, [p["rl_return"] for p in curve], "o-", label="evaluate=False")
    ax_r.plot(steps, [p["eval_return"] for p in curve], "s-", label="evaluate=True")
    ax_r.set(xlabel="timesteps", ylabel="mean episode return", title=f"PPO on {GRASP_ENV_ID} ({args.grasp})")
    ax_s.plot(steps, [p["rl_success"] for p in curve], "o-", label="evaluate=False")
    ax_s.plot(steps, [p["eval_success"] for p in curve], "s-", label="evaluate=True")
    ax_s.set(xlabel="timesteps", ylabel="success rate", ylim=(-0.05, 1.05))
    for ax in (ax_r, ax_s):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.out / "learning_curve.png", dpi=120)
    print(f"saved {args.out / 'learning_curve.png'}, {args.out / 'model.zip'}")


if __name__ == "__main__":
    main()
