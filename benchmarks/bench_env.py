"""Benchmark: ``handsim/Grasp-v0`` throughput against Gymnasium-Robotics ``HandManipulateBlock-v1``.

A program, not a test. :func:`run` measures, at the env's 25 Hz control rate:

* **single env, RL mode** (``evaluate=False``): env steps per second, episodes reset as they
  end (reset time included), with three workloads: uniform random actions (the peer's
  workload; absolute targets jump across the joint range, so the fingers slam and knock the
  object away within ~6 steps), the same in ``action_mode="delta"`` (a random walk of the
  targets, at most 0.1 rad per step), and the scripted grasp policy
  (``handsim.policies:scripted``: episodes last their full 25 steps);
* **vector env**: ``gymnasium.make_vec(..., num_envs=2, vectorization_mode="async")`` with
  random actions, env steps per second summed over both sub-envs;
* **free wrist** (``wrist="free"``, 6 more action dims, no fixture so the protocol's solver
  iterations throughout): single env, random actions;
* **evaluation cost** (``evaluate=True``): wall time of one full episode (reset, 25 scripted
  steps, settle + six-direction disturbance + scoring) over several grasp types, and the
  share spent in the evaluating last step;
* **frame links**: PyBullet ``stepSimulation`` time of the hand as the URDF describes it and
  of the copy :class:`handsim.sim.HandBody` loads (without the massless, shapeless fingertip
  frames), fingers driven by their motors at the grasp phase's step and solver iterations.

The peer, Gymnasium-Robotics' ``HandManipulateBlock-v1`` (MuJoCo Shadow hand, 20 substeps of
2 ms = 25 Hz control, the same rate), is measured in the same run with the same random-action
workload when ``gymnasium_robotics`` and ``mujoco`` are installed (``pip install
gymnasium-robotics mujoco==3.5.0``); otherwise it is skipped with a printed note. Each
measurement is repeated ``rounds`` times, ours and the peer's interleaved so that a busy
machine slows both alike; the best round counts.

``--before OLD.json`` copies an earlier result's figures (e.g. one measured with the code
before a change, with its own peer run) under ``"before"`` in the saved JSON, so one file
records before and after.

Usage::

    python benchmarks/bench_env.py                  # writes benchmarks/results/env.json
    python benchmarks/bench_env.py --steps 500 --rounds 1 --out /tmp/env.json --compare benchmarks/results/env.json
    python benchmarks/bench_env.py --hand path/to/hand --before /tmp/env_before.json
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
from _save import save_result

from handsim.envs import GRASP_ENV_ID, register_envs
from handsim.policies import scripted, uniform

RESULTS = Path(__file__).resolve().parent / "results" / "env.json"
PEER_ID = "HandManipulateBlock-v1"
# Grasp types timed for the evaluation cost: one per object shape of the taxonomy.
EVAL_GRASPS = ("large_diameter", "power_sphere", "tip_pinch", "lateral", "ring", "palmar")


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("gymnasium", "pybullet", "numpy", "gymnasium-robotics", "mujoco"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _peer_available() -> str:
    """"" when the peer can run, else why not."""
    try:
        import gymnasium_robotics
        import mujoco
    except ImportError as exc:
        return f"peer {PEER_ID} skipped: {exc.name} is not installed (pip install gymnasium-robotics mujoco==3.5.0)"
    gymnasium.register_envs(gymnasium_robotics)
    return ""


def steps_per_second(make: Callable[[], gymnasium.Env], policy_factory: Callable[[Any], Any], steps: int, seed: int = 0) -> dict[str, float]:
    """Run ``steps`` env steps (resetting as episodes end) and time them.

    Returns:
        ``{"steps_per_s", "episodes", "mean_episode_steps"}``.
    """
    env = make()
    policy = policy_factory(env)
    obs, _ = env.reset(seed=seed)
    if hasattr(policy, "reset"):
        policy.reset()
    episodes, n = 0, 0
    start = time.perf_counter()
    while n < steps:
        obs, _, terminated, truncated, _ = env.step(policy(obs))
        n += 1
        if terminated or truncated:
            episodes += 1
            obs, _ = env.reset()
            if hasattr(policy, "reset"):
                policy.reset()
    wall = time.perf_counter() - start
    env.close()
    return {"steps_per_s": n / wall, "episodes": episodes, "mean_episode_steps": n / max(episodes, 1)}


def vector_steps_per_second(env_id: str, kwargs: dict[str, Any], num_envs: int, steps: int, seed: int = 0) -> float:
    """Env steps per second (summed over sub-envs) of an async vector env with random actions."""
    venv = gymnasium.make_vec(env_id, num_envs=num_envs, vectorization_mode="async", **kwargs)
    venv.action_space.seed(seed)
    venv.reset(seed=seed)
    calls = max(1, steps // num_envs)
    start = time.perf_counter()
    for _ in range(calls):
        venv.step(venv.action_space.sample())  # sub-envs reset themselves (autoreset)
    wall = time.perf_counter() - start
    venv.close()
    return calls * num_envs / wall


def episode_cost(grasps: tuple[str, ...] = EVAL_GRASPS, seed: int = 0, hand: str = "default_hand") -> dict[str, Any]:
    """Wall time of full ``evaluate=True`` episodes with the scripted policy, per grasp type [s]."""
    per: dict[str, dict[str, float]] = {}
    for gid in grasps:
        # push_failed: every episode runs the whole protocol, whether or not its grasp fails
        # (the figure is the cost of an evaluation, not of this hand's verdicts)
        env = gymnasium.make(GRASP_ENV_ID, grasp=gid, evaluate=True, push_failed=True, disable_env_checker=True,
                             hand=hand)
        policy = scripted(env)
        env.reset(seed=seed)  # warm-up: caches, first-use tables
        start = time.perf_counter()
        obs, _ = env.reset(seed=seed)
        policy.reset()
        terminated = truncated = False
        last = 0.0
        while not (terminated or truncated):
            t = time.perf_counter()
            obs, _, terminated, truncated, info = env.step(policy(obs))
            last = time.perf_counter() - t
        total = time.perf_counter() - start
        per[gid] = {"episode_s": total, "last_step_s": last, "achieved": bool(info["is_success"])}
        env.close()
    totals = [v["episode_s"] for v in per.values()]
    return {
        "per_grasp": per,
        "mean_episode_s": float(np.mean(totals)),
        "mean_last_step_share": float(np.mean([v["last_step_s"] / v["episode_s"] for v in per.values()])),
    }


def frame_link_cost(hand: str = "default_hand", steps: int = 400, rounds: int = 5) -> dict[str, Any]:
    """``stepSimulation`` time [us] of the hand's URDF as written and as HandBody loads it."""
    import pybullet

    from handsim.hand import load_hand
    from handsim.sim.hand import _physics_urdf, load_flags
    from handsim.tolerances import DEFAULT_PROTOCOL as P

    original = load_hand(hand).urdf_path
    files = {"urdf_as_written": original, "frame_links_left_out": _physics_urdf(original)}
    flags = load_flags()
    times: dict[str, list[float]] = {k: [] for k in files}
    links: dict[str, int] = {}
    for _ in range(rounds):
        for key, path in files.items():
            cid = pybullet.connect(pybullet.DIRECT)
            pybullet.setPhysicsEngineParameter(fixedTimeStep=P.grasp_timestep_s, numSolverIterations=P.grasp_solver_iterations,
                                               deterministicOverlappingPairs=1, useSplitImpulse=1, enableConeFriction=1,
                                               physicsClientId=cid)
            body = pybullet.loadURDF(str(path), useFixedBase=True, flags=flags, physicsClientId=cid)
            infos = [pybullet.getJointInfo(body, j, physicsClientId=cid) for j in range(pybullet.getNumJoints(body, physicsClientId=cid))]
            movable = [i[0] for i in infos if i[2] != pybullet.JOINT_FIXED]
            pybullet.setJointMotorControlArray(body, movable, pybullet.POSITION_CONTROL,
                                               targetPositions=[0.5 * (infos[j][8] + infos[j][9]) for j in movable],
                                               forces=[infos[j][10] for j in movable], physicsClientId=cid)
            for _ in range(50):
                pybullet.stepSimulation(physicsClientId=cid)
            start = time.perf_counter()
            for _ in range(steps):
                pybullet.stepSimulation(physicsClientId=cid)
            times[key].append((time.perf_counter() - start) / steps * 1e6)
            links[key] = len(infos) + 1
            pybullet.disconnect(cid)
    best = {k: min(v) for k, v in times.items()}
    return {"step_us_best": best, "links": links, "speedup": best["urdf_as_written"] / best["frame_links_left_out"]}


def run(steps: int = 2000, rounds: int = 3, num_envs: int = 2, peer: bool = True, hand: str = "default_hand") -> dict[str, Any]:
    """Measure everything; returns a JSON-ready dict (best of ``rounds`` for each figure)."""
    register_envs()
    note = _peer_available() if peer else "peer skipped (--no-peer)"
    if note:
        print(note)
    ours_kwargs = {"evaluate": False, "disable_env_checker": True, "hand": hand}

    def ours() -> gymnasium.Env:
        return gymnasium.make(GRASP_ENV_ID, **ours_kwargs)

    def peer_env() -> gymnasium.Env:
        return gymnasium.make(PEER_ID, disable_env_checker=True)

    def ours_delta() -> gymnasium.Env:
        return gymnasium.make(GRASP_ENV_ID, action_mode="delta", **ours_kwargs)

    def ours_free() -> gymnasium.Env:
        return gymnasium.make(GRASP_ENV_ID, wrist="free", **ours_kwargs)

    rows: dict[str, list[float]] = {k: [] for k in (
        "ours_random", "ours_delta_random", "ours_scripted", "ours_free_wrist_random", "ours_vec", "peer_random",
        "peer_vec")}
    episodes: dict[str, float] = {}
    for r in range(rounds):
        res = steps_per_second(ours, uniform, steps, seed=r)
        rows["ours_random"].append(res["steps_per_s"])
        episodes["ours_random_mean_episode_steps"] = res["mean_episode_steps"]
        res = steps_per_second(ours_delta, uniform, steps, seed=r)
        rows["ours_delta_random"].append(res["steps_per_s"])
        episodes["ours_delta_random_mean_episode_steps"] = res["mean_episode_steps"]
        res = steps_per_second(ours, scripted, steps, seed=r)
        rows["ours_scripted"].append(res["steps_per_s"])
        episodes["ours_scripted_mean_episode_steps"] = res["mean_episode_steps"]
        res = steps_per_second(ours_free, uniform, steps, seed=r)
        rows["ours_free_wrist_random"].append(res["steps_per_s"])
        episodes["ours_free_wrist_random_mean_episode_steps"] = res["mean_episode_steps"]
        if not note:
            res = steps_per_second(peer_env, uniform, steps, seed=r)
            rows["peer_random"].append(res["steps_per_s"])
            episodes["peer_random_mean_episode_steps"] = res["mean_episode_steps"]
        rows["ours_vec"].append(vector_steps_per_second(GRASP_ENV_ID, ours_kwargs, num_envs, steps, seed=r))
        if not note:
            rows["peer_vec"].append(vector_steps_per_second(PEER_ID, {"disable_env_checker": True}, num_envs, steps, seed=r))
        print(f"round {r + 1}/{rounds}: " + ", ".join(f"{k} {v[-1]:.0f}" for k, v in rows.items() if v))
    best = {k: (max(v) if v else None) for k, v in rows.items()}
    ratios = {}
    if best["peer_random"]:
        ratios = {
            "single_random": best["ours_random"] / best["peer_random"],
            "single_delta_random": best["ours_delta_random"] / best["peer_random"],
            "single_scripted_vs_peer_random": best["ours_scripted"] / best["peer_random"],
            "single_free_wrist_random": best["ours_free_wrist_random"] / best["peer_random"],
            "vec_async": best["ours_vec"] / best["peer_vec"],
        }
    from handsim.episode import EpisodeSettings
    from handsim.tolerances import DEFAULT_PROTOCOL

    return {
        "benchmark": "envs.Grasp-v0 throughput",
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1min_at_end": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        },
        "versions": _versions(),
        "hand": hand,
        "control_hz": EpisodeSettings().control_hz,
        "protocol": DEFAULT_PROTOCOL.to_dict(),
        "steps_per_measurement": steps,
        "rounds": rounds,
        "num_envs": num_envs,
        "steps_per_s_best": best,
        "steps_per_s_all_rounds": rows,
        "episode_lengths": episodes,
        "ratio_vs_peer": ratios,
        "peer": PEER_ID,
        "peer_note": note,
        "evaluate_true_episode": episode_cost(hand=hand),
        "physics_step_frame_links": frame_link_cost(hand=hand),
    }


def report(res: dict[str, Any], old: dict[str, Any] | None = None) -> str:
    """A text table of one result (and the change against an older one)."""
    b = res["steps_per_s_best"]

    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:,.0f}"

    rows = [
        ("single env, random actions [steps/s]", fmt(b["ours_random"])),
        ("single env, random actions, action_mode=delta [steps/s]", fmt(b["ours_delta_random"])),
        ("single env, scripted policy [steps/s]", fmt(b["ours_scripted"])),
        ("single env, random actions, wrist=free [steps/s]", fmt(b.get("ours_free_wrist_random"))),
        (f"async x{res['num_envs']}, random actions [steps/s]", fmt(b["ours_vec"])),
        (f"peer {res['peer']} single, random [steps/s]", fmt(b["peer_random"])),
        (f"peer async x{res['num_envs']}, random [steps/s]", fmt(b["peer_vec"])),
    ]
    for k, v in res["ratio_vs_peer"].items():
        rows.append((f"ratio ours / peer ({k})", f"{v:.2f}x"))
    ev = res["evaluate_true_episode"]
    rows.append(("evaluate=True episode, mean [s]", f"{ev['mean_episode_s']:.3f}"))
    rows.append(("  share of the evaluating last step", f"{ev['mean_last_step_share']:.0%}"))
    fl = res.get("physics_step_frame_links")
    if fl:
        b_us = fl["step_us_best"]
        rows.append((f"stepSimulation, URDF as written ({fl['links']['urdf_as_written']} links) [us]",
                     f"{b_us['urdf_as_written']:.0f}"))
        rows.append((f"stepSimulation, frame links left out ({fl['links']['frame_links_left_out']} links) [us]",
                     f"{b_us['frame_links_left_out']:.0f} ({fl['speedup']:.2f}x faster)"))
    if res["peer_note"]:
        rows.append(("note", res["peer_note"]))
    for label, other in (("the compared result", old), ("before", res.get("before"))):
        if other is None:
            continue
        ob = other["steps_per_s_best"]
        for k in ("ours_random", "ours_delta_random", "ours_scripted", "ours_vec"):
            if ob.get(k):
                rows.append((f"{k} vs {label}", f"{b[k] / ob[k]:.2f}x"))
        for k, v in other.get("ratio_vs_peer", {}).items():
            rows.append((f"{label}: ratio ours / peer ({k})", f"{v:.2f}x"))
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{a:<{width}}  {v}" for a, v in rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2000, help="env steps per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="repeats (best counts)")
    parser.add_argument("--num-envs", type=int, default=2, help="sub-envs of the async vector env")
    parser.add_argument("--no-peer", action="store_true", help="do not measure HandManipulateBlock-v1")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON output (default {RESULTS})")
    parser.add_argument("--compare", type=Path, help="an earlier JSON result to compare with")
    parser.add_argument("--hand", default="default_hand", help="hand name or folder (default default_hand)")
    parser.add_argument("--before", type=Path, help="an earlier JSON result to record under 'before' in the output")
    args = parser.parse_args(argv)
    res = run(args.steps, args.rounds, args.num_envs, peer=not args.no_peer, hand=args.hand)
    if args.before:
        before = json.loads(args.before.read_text())
        keys = ("steps_per_s_best", "steps_per_s_all_rounds", "ratio_vs_peer", "protocol", "versions", "machine",
                "steps_per_measurement", "rounds", "evaluate_true_episode", "note")
        res["before"] = {k: before[k] for k in keys if k in before}
    old = json.loads(args.compare.read_text()) if args.compare else None
    print(report(res, old))
    save_result(res, args.out)


if __name__ == "__main__":
    main()
