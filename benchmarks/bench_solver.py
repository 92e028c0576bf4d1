"""Benchmark: how much the coverage figure depends on the constraint solver's iteration count.

A program, not a test. The protocol runs PyBullet's multibody solver (projected Gauss-Seidel)
for ``Protocol.solver_iterations`` (150) iterations per judged step. Bullet's
``btMultiBodyConstraintSolver::solveSingleIteration`` sweeps the non-contact rows (the hand's
joint motors) forwards on odd iterations and backwards on even ones, so when the solve has not
converged, the state after an even count differs from the state after an odd one. This program
measures two things, on the same machine in the same run:

* **the probe**: one grasp (default medium wrap) closed by its scripted plan at seed 0 and
  released, its settle run at the protocol's count, the state saved; then, from that state,
  ``--probe-steps`` judged steps at each count of ``PROBE_COUNTS``: the object's rotation, its
  mean angular speed and the mean summed hand-object normal force (over the second half). A
  converged solve would give the same numbers at 150 and 151; the counts far from 150 start
  from a state settled at 150, so their first steps re-settle the contact forces;
* **the coverage**: ``handsim bench`` (the scripted policy, ``--trials`` trials per type at
  ``--seed``) with only ``solver_iterations`` changed, for each count of ``--iterations``
  (default 149, 150, 151): coverage, and the types that differ from the protocol's count.

Usage::

    python benchmarks/bench_solver.py                       # writes benchmarks/results/solver.json
    python benchmarks/bench_solver.py --iterations 150,151 --grasps tripod,stick --out /tmp/s.json
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
from _save import machine_info, save_result
from scipy.spatial.transform import Rotation

import handsim
from handsim.bench.config import BenchConfig
from handsim.bench.runner import close_worker_envs, run_bench
from handsim.grasps import all_grasps
from handsim.hand import load_hand
from handsim.policies import ScriptedGraspPolicy
from handsim.tolerances import DEFAULT_PROTOCOL

RESULTS = Path(__file__).resolve().parent / "results" / "solver.json"
PROBE_COUNTS = (148, 149, 150, 151, 200, 201, 300, 301, 1000, 1001)


def probe(hand: str, grasp: str, steps: int, seed: int = 0) -> list[dict[str, Any]]:
    """From one settled grasp's saved state, ``steps`` judged steps at each of ``PROBE_COUNTS``."""
    env = gymnasium.make("handsim/Grasp-v0", grasp=grasp, hand=hand, evaluate=False)
    try:
        policy = ScriptedGraspPolicy(env)
        obs, info = env.reset(seed=seed)
        policy.reset(info)
        ep = env.unwrapped.episode
        while not ep.grasp_phase_over:
            obs, _, terminated, truncated, _ = env.step(policy(obs))
            if terminated or truncated:
                break
        ep.release_object()  # the judged regime from here: 4 ms steps, the protocol's count
        c, obj = ep.world.client, ep.obj.body_id
        for _ in range(round(DEFAULT_PROTOCOL.settle_s / DEFAULT_PROTOCOL.timestep_s)):
            c.stepSimulation()
        state = c.saveState()
        rows = []
        for n in PROBE_COUNTS:
            c.restoreState(state)
            c.setPhysicsEngineParameter(numSolverIterations=n)
            q0 = Rotation.from_quat(c.getBasePositionAndOrientation(obj)[1])
            speed, normal = [], []
            for _ in range(steps):
                c.stepSimulation()
                speed.append(float(np.linalg.norm(c.getBaseVelocity(obj)[1])))
                normal.append(sum(cp[9] for cp in c.getContactPoints(bodyA=obj)))
            q1 = Rotation.from_quat(c.getBasePositionAndOrientation(obj)[1])
            rows.append({
                "solver_iterations": n,
                "rotation_deg": float(np.degrees((q1 * q0.inv()).magnitude())),
                "mean_angular_speed_rad_s": float(np.mean(speed)),
                "mean_normal_force_n": float(np.mean(normal[steps // 2:])),
            })
        return rows
    finally:
        env.close()


def coverage(hand: str, counts: list[int], grasps: tuple[str, ...], trials: int, seed: int) -> list[dict[str, Any]]:
    """``handsim bench`` at each solver iteration count, everything else the protocol's."""
    rows = []
    for n in counts:
        protocol = dataclasses.replace(DEFAULT_PROTOCOL, solver_iterations=n)
        config = BenchConfig(hand=hand, grasp_ids=grasps, trials=trials, seed=seed,
                             env_kwargs=(("protocol", protocol),))
        with tempfile.TemporaryDirectory() as out:
            t = time.perf_counter()
            res = run_bench(config, out, progress=False)
            wall = time.perf_counter() - t
        close_worker_envs()
        per = {g["id"]: g for g in res.to_dict()["grasps"]}
        rows.append({
            "solver_iterations": n,
            "achieved": sum(1 for g in per.values() if g["achieved"]),
            "total": len(per),
            "wall_s": wall,
            "success_rate": {gid: g["success_rate"] for gid, g in per.items()},
            "achieved_types": sorted(gid for gid, g in per.items() if g["achieved"]),
        })
        print(f"  {n} iterations: {rows[-1]['achieved']}/{len(per)} achieved ({wall:.0f} s)", flush=True)
    return rows


def report(result: dict[str, Any]) -> str:
    lines = [f"probe: {result['probe_grasp']}, {result['probe_steps']} judged steps from its settled state"]
    lines.append(f"{'iterations':>10} {'rotation deg':>12} {'|omega| rad/s':>13} {'normal N':>9}")
    for r in result["probe"]:
        lines.append(f"{r['solver_iterations']:>10} {r['rotation_deg']:>12.3f} "
                     f"{r['mean_angular_speed_rad_s']:>13.4f} {r['mean_normal_force_n']:>9.1f}")
    ref = {r["solver_iterations"]: r for r in result["coverage"]}.get(DEFAULT_PROTOCOL.solver_iterations)
    lines.append(f"coverage (scripted policy, seed {result['seed']}, {result['trials']} trials per type)")
    for r in result["coverage"]:
        diff = ""
        if ref is not None and r is not ref:
            lost = sorted(set(ref["achieved_types"]) - set(r["achieved_types"]))
            won = sorted(set(r["achieved_types"]) - set(ref["achieved_types"]))
            diff = f"  lost vs {DEFAULT_PROTOCOL.solver_iterations}: {', '.join(lost) or '-'}; won: {', '.join(won) or '-'}"
        lines.append(f"  {r['solver_iterations']:>4}: {r['achieved']}/{r['total']}{diff}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hand", default="default_hand", help="a shipped hand's name or a hand folder")
    ap.add_argument("--iterations", default="149,150,151", help="solver iteration counts for the coverage runs")
    ap.add_argument("--grasps", default="", help="comma-separated grasp ids (default: all 33)")
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--probe-grasp", default="medium_wrap")
    ap.add_argument("--probe-steps", type=int, default=100)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    hand = str(load_hand(args.hand).folder)
    grasps = tuple(g.strip() for g in args.grasps.split(",") if g.strip()) or tuple(g.id for g in all_grasps())
    counts = [int(n) for n in args.iterations.split(",") if n.strip()]
    result: dict[str, Any] = {
        "benchmark": "solver iteration count: the probe and the coverage",
        "machine": machine_info(),
        "versions": {"handsim": handsim.__version__},
        "hand": args.hand, "seed": args.seed, "trials": args.trials,
        "probe_grasp": args.probe_grasp, "probe_steps": args.probe_steps,
    }
    result["probe"] = probe(hand, args.probe_grasp, args.probe_steps, args.seed)
    result["coverage"] = coverage(hand, counts, grasps, args.trials, args.seed)
    print(report(result))
    save_result(result, args.out)


if __name__ == "__main__":
    main()
