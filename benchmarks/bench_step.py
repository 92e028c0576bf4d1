"""Benchmark: where a judged physics step's time goes, and why the full run is not faster.

A program, not a test. ``handsim bench`` spends ~92 % of its wall time in PyBullet's
``stepSimulation`` (session 16's profile), almost all of it in held trials' judged steps: the
settle and the six pushes, 1625 steps at the protocol's 250 Hz and 150 solver iterations. This
program measures, for a few grasps the default hand holds:

* ``ms_per_step``: the judged steps' mean wall time, from an unprofiled run of the trial;
* the shares of PyBullet's own profile timings (``STATE_LOGGING_PROFILE_TIMINGS``) over the
  first ``--window`` judged steps (rounded up to a whole call of ``World.step``: the settle is
  one call of 125 steps) of a second, identical run: the constraint solver's
  iterations, its setup, collision detection and the rest; and the solver iterations actually
  run per step (PyBullet stops early only when the residual falls below
  ``solverResidualThreshold``);
* hand-object contact points per step (sampled every 25 judged steps).

Two peers, measured in the same run on the same machine:

* the hand alone (no object, no contact), its 21 motors holding a pose, at the protocol's
  150 iterations and at PyBullet's default 50: the fixed cost of the motor rows;
* each grasp's trial re-run with ``solverResidualThreshold`` raised from PyBullet's 1e-7 to
  larger values: whether the solver can stop early without changing the outcome (the
  threshold acts in the grasp phase too, so an outcome can change while the judged steps
  still run every iteration; their count is taken over the profiled window).

The "iterations" column counts PyBullet's ``solveSingleIteration`` calls per step: the
protocol's 150 for the island of the hand and the object, and one for the rest of the world.

Usage::

    python benchmarks/bench_step.py                  # writes benchmarks/results/step.json
    python benchmarks/bench_step.py --grasps tripod --out /tmp/step.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pybullet
from _save import machine_info, save_result

from handsim.bench.config import trial_seed
from handsim.bench.runner import TrialTask, close_worker_envs, run_trial
from handsim.grasps import all_grasps
from handsim.hand import load_hand
from handsim.sim import HandBody, World
from handsim.tolerances import DEFAULT_PROTOCOL

RESULTS = Path(__file__).resolve().parent / "results" / "step.json"
GRASPS = ("large_diameter", "power_sphere", "tripod", "palmar_pinch")
THRESHOLDS = (1.0, 10.0, 100.0)
#: PyBullet profile timings grouped into the shares reported (names without their counters).
SHARES = {
    "solver_iterations": "solveGroupCacheFriendlyIterations",
    "solver_setup": "solveGroupCacheFriendlySetup",
    "collision_detection": "performDiscreteCollisionDetection",
}


def _judged(world: World) -> bool:
    p = world.protocol
    return world.timestep_s == p.timestep_s and world.solver_iterations == p.solver_iterations


@contextlib.contextmanager
def _instrumented(window: int, profile_path: str | None, threshold: float | None) -> Iterator[dict[str, Any]]:
    """Patch :meth:`World.step` (this process only) to time, sample and profile judged steps."""
    stats: dict[str, Any] = {"steps": 0, "seconds": 0.0, "contacts": [], "log": None}
    step, reset, close = World.step, World.reset, World.close

    def timed_step(self: World, n: int = 1) -> None:
        if not _judged(self):
            step(self, n)
            return
        c = self.client
        if profile_path and stats["log"] is None and stats["steps"] == 0:
            stats["log"] = c.startStateLogging(pybullet.STATE_LOGGING_PROFILE_TIMINGS, profile_path)
        t = time.perf_counter()
        step(self, n)
        stats["seconds"] += time.perf_counter() - t
        before, stats["steps"] = stats["steps"], stats["steps"] + int(n)
        if before // 25 != stats["steps"] // 25:
            stats["contacts"].append(sum(1 for cp in c.getContactPoints() if cp[1] != cp[2]))
        if stats["log"] is not None and stats["steps"] >= window:
            c.stopStateLogging(stats["log"])
            stats["log"] = -1

    def thresholded_reset(self: World, *args: Any, **kwargs: Any) -> None:
        reset(self, *args, **kwargs)
        if threshold is not None:
            self.client.setPhysicsEngineParameter(solverResidualThreshold=threshold)

    def closing(self: World) -> None:
        # A trial that ends before the window (a failure) still writes its profile.
        if isinstance(stats["log"], int) and stats["log"] >= 0 and not self.closed:
            self.client.stopStateLogging(stats["log"])
            stats["log"] = -1
        close(self)

    World.step, World.reset, World.close = timed_step, thresholded_reset, closing  # type: ignore[method-assign]
    try:
        yield stats
    finally:
        close_worker_envs()
        World.step, World.reset, World.close = step, reset, close  # type: ignore[method-assign]


def _trial(hand_dir: str, grasp_id: str, number: int, *, window: int = 0, profile_path: str | None = None,
           threshold: float | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    task = TrialTask("handsim/Grasp-v0", (), hand_dir, "handsim.policies:scripted", grasp_id, number, 0,
                     trial_seed(0, number, 0), False)
    with _instrumented(window, profile_path, threshold) as stats:
        record, _ = run_trial(task)
    return record, stats


def _profile_shares(path: str) -> dict[str, Any]:
    """Seconds per named timing in a PyBullet profile dump, as shares of the step total."""
    # PyBullet appends a counter to the file name (``_0.json``, then ``_1.json``, ...).
    dumps = sorted(Path(path).parent.glob(Path(path).name + "_*.json"))
    if len(dumps) != 1:
        raise RuntimeError(f"expected one PyBullet profile dump for {path}, found {[d.name for d in dumps]}")
    events = json.loads(dumps[0].read_text())["traceEvents"]
    total: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    open_at: dict[str, list[float]] = {}
    for e in events:
        name = re.sub(r"\d+$", "", e["name"])
        if e["ph"] == "B":
            open_at.setdefault(name, []).append(float(e["ts"]))
            counts[name] += 1
        elif e["ph"] == "E" and open_at.get(name):
            total[name] += float(e["ts"]) - open_at[name].pop()
    steps = counts["internalSingleStepSimulation"]
    step_us = total["internalSingleStepSimulation"]
    shares = {key: total[name] / step_us for key, name in SHARES.items()}
    shares["other"] = 1.0 - sum(shares.values())
    return {"profiled_steps": steps, "shares": shares, "solver_iterations_per_step": counts["solveSingleIteration"] / steps}


def grasp_step_cost(hand_dir: str, grasp_id: str, number: int, window: int) -> dict[str, Any]:
    """One grasp's judged-step cost: plain timing, profile shares, contacts."""
    record, stats = _trial(hand_dir, grasp_id, number)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "timings.json")
        _trial(hand_dir, grasp_id, number, window=window, profile_path=path)
        profile = _profile_shares(path)
    return {
        "grasp": grasp_id,
        "success": bool(record["success"]),
        "judged_steps": stats["steps"],
        "ms_per_step": 1000.0 * stats["seconds"] / max(1, stats["steps"]),
        "contacts_per_step": float(np.mean(stats["contacts"])) if stats["contacts"] else 0.0,
        **profile,
    }


def hand_alone(hand_dir: str, iterations: int, steps: int = 500) -> float:
    """ms per step of the hand alone, every motor holding a pose a quarter up its range."""
    with World(DEFAULT_PROTOCOL) as world:
        world.set_solver_iterations(iterations)
        hand = HandBody(world, load_hand(hand_dir).urdf_path, visual=False)
        q = hand.lower + 0.25 * (hand.upper - hand.lower)
        hand.reset_joints(q)
        hand.set_targets(q)
        world.step(50)
        t = time.perf_counter()
        world.step(steps)
        return 1000.0 * (time.perf_counter() - t) / steps


def threshold_sweep(hand_dir: str, grasp_id: str, number: int) -> list[dict[str, Any]]:
    """The same trial with larger ``solverResidualThreshold``: iterations run, time, outcome."""
    rows = []
    for threshold in (None, *THRESHOLDS):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "timings.json")
            record, _ = _trial(hand_dir, grasp_id, number, window=250, profile_path=path, threshold=threshold)
            profile = _profile_shares(path)
        rows.append({
            "solver_residual_threshold": threshold if threshold is not None else 1e-7,
            "solver_iterations_per_step": profile["solver_iterations_per_step"],
            "success": bool(record["success"]),
            "q1": record["q1"],
            "first_failure": (record["failure_reasons"] or [None])[0],
        })
    return rows


def run(hand: str, grasp_ids: tuple[str, ...], window: int) -> dict[str, Any]:
    h = load_hand(hand)
    numbers = {g.id: g.number for g in all_grasps()}
    unknown = [g for g in grasp_ids if g not in numbers]
    if unknown:
        raise SystemExit(f"unknown grasp id(s) {', '.join(unknown)}; valid: {', '.join(numbers)}")
    p = DEFAULT_PROTOCOL
    return {
        "benchmark": "judged physics step cost",
        "machine": machine_info(),
        "pybullet_api": pybullet.getAPIVersion(),
        "hand": h.name,
        "protocol": {"timestep_s": p.timestep_s, "solver_iterations": p.solver_iterations},
        "grasps": [grasp_step_cost(str(h.folder), g, numbers[g], window) for g in grasp_ids],
        "hand_alone_ms_per_step": {str(n): hand_alone(str(h.folder), n) for n in (p.solver_iterations, 50)},
        "residual_threshold_sweep": [{"grasp": g, "rows": threshold_sweep(str(h.folder), g, numbers[g])} for g in grasp_ids],
    }


def report(res: dict[str, Any]) -> str:
    lines = [f"{'grasp':16s} {'held':>4s} {'ms/step':>8s} {'contacts':>8s} {'iters':>6s} {'solver it.':>10s} {'setup':>6s} {'collide':>7s} {'other':>6s}"]
    for r in res["grasps"]:
        s = r["shares"]
        lines.append(
            f"{r['grasp']:16s} {'yes' if r['success'] else 'no':>4s} {r['ms_per_step']:8.3f} {r['contacts_per_step']:8.1f} "
            f"{r['solver_iterations_per_step']:6.0f} {s['solver_iterations']:10.0%} {s['solver_setup']:6.0%} "
            f"{s['collision_detection']:7.0%} {s['other']:6.0%}"
        )
    alone = res["hand_alone_ms_per_step"]
    lines.append("hand alone (motors only): " + ", ".join(f"{n} iterations {ms:.3f} ms/step" for n, ms in alone.items()))
    for sweep in res["residual_threshold_sweep"]:
        lines.append(f"solverResidualThreshold on {sweep['grasp']}:")
        for r in sweep["rows"]:
            lines.append(f"  {r['solver_residual_threshold']:>8g}: {r['solver_iterations_per_step']:6.1f} iterations/step, "
                         f"success {r['success']}, q1 {r['q1']:.4f}" + (f", {r['first_failure']}" if r["first_failure"] else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hand", default="default_hand", help="a shipped hand's name or a hand folder")
    ap.add_argument("--grasps", default=",".join(GRASPS), help=f"comma-separated grasp ids (default {','.join(GRASPS)})")
    ap.add_argument("--window", type=int, default=500, help="judged steps profiled per grasp (default 500)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    res = run(args.hand, tuple(g.strip() for g in args.grasps.split(",") if g.strip()), args.window)
    print(report(res))
    save_result(res, args.out)


if __name__ == "__main__":
    main()
