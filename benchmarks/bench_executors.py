"""Benchmark: trials/s of ``handsim bench`` on the local process pool vs on Ray, same task list.

A program, not a test. :func:`run` runs the same benchmark configuration (the default hand and
its scripted policy, a few grasp types x a few seeded trials, real physics) with ``jobs``
concurrent trials on:

* ``local``: :class:`handsim.bench.executors.LocalExecutor` (a fresh ``multiprocessing`` pool
  per run, its start-up included, as ``handsim bench`` does);
* ``ray``: :class:`handsim.bench.executors.RayExecutor` on a local Ray instance started once
  with ``num_cpus=jobs``. The instance's start-up (``ray.init``) is timed separately; the first
  Ray round also pays for starting the Ray worker processes and their imports (recorded as
  ``ray_first_round_s``), later rounds reuse them.

Rounds alternate local and Ray so that a busy machine slows both alike; the best round of each
counts. It also checks that the two executors produced the same trial records (timing aside).

Usage::

    python benchmarks/bench_executors.py                  # writes benchmarks/results/executors.json
    python benchmarks/bench_executors.py --trials 1 --rounds 1 --out /tmp/executors.json
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from _save import save_result

from handsim.bench import BenchConfig, run_bench, strip_timing
from handsim.bench.executors import LocalExecutor, RayExecutor, import_ray
from handsim.data import hand_dir

RESULTS = Path(__file__).resolve().parent / "results" / "executors.json"
#: One grasp type per object shape family, and the three the default hand achieves.
GRASPS = ("large_diameter", "power_sphere", "tip_pinch", "lateral", "ring", "palmar", "adduction_grip", "tripod")


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("handsim", "ray", "pybullet", "numpy"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _timed_run(config: BenchConfig, executor: Any, jobs: int, out: Path) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    results = run_bench(config, out, jobs=jobs, progress=False, executor=executor)
    return time.perf_counter() - start, results.to_dict()


def run(grasps: tuple[str, ...] = GRASPS, trials: int = 2, jobs: int = 2, rounds: int = 2, seed: int = 0) -> dict[str, Any]:
    """Measure both executors on the same task list.

    Returns:
        A JSON-ready dict: the task list, per-round wall times [s], best trials/s of each, their
        ratio (ray / local), Ray's start-up and shutdown times [s], and whether the records agree.
    """
    config = BenchConfig(hand=str(hand_dir("default_hand")), grasp_ids=grasps, trials=trials, seed=seed)
    n = len(grasps) * trials
    local_s: list[float] = []
    ray_s: list[float] = []
    same = True
    ray_exec = RayExecutor()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            t0 = time.perf_counter()
            import_ray()  # timed apart from the start-up
            import_s = time.perf_counter() - t0
            reference = None
            for r in range(rounds):
                wall, res = _timed_run(config, LocalExecutor(), jobs, Path(tmp) / f"local{r}")
                local_s.append(wall)
                reference = reference or strip_timing(res)
                same &= strip_timing(res) == reference
                wall, res = _timed_run(config, ray_exec, jobs, Path(tmp) / f"ray{r}")
                # The first Ray round includes ray.init; report it apart.
                ray_s.append(wall - (ray_exec.startup_s or 0.0) if r == 0 else wall)
                same &= strip_timing(res) == reference
        finally:
            t0 = time.perf_counter()
            ray_exec.close()
            shutdown_s = time.perf_counter() - t0
    best_local, best_ray = min(local_s), min(ray_s)
    return {
        "what": "handsim bench trials/s, LocalExecutor (process pool) vs RayExecutor (local Ray instance), "
                "same task list, real physics, default hand + scripted policy",
        "tasks": {"grasps": list(grasps), "trials_per_grasp": trials, "trials": n, "seed": seed, "jobs": jobs},
        "rounds": rounds,
        "local_wall_s": local_s,
        "ray_wall_s": ray_s,
        "local_trials_per_s": n / best_local,
        "ray_trials_per_s": n / best_ray,
        "ratio_ray_over_local": best_local / best_ray,
        "ray_import_s": import_s,
        "ray_startup_s": ray_exec.startup_s,
        "ray_first_round_s": ray_s[0],
        "ray_shutdown_s": shutdown_s,
        "records_identical": bool(same),
        # Load average (1, 5, 15 min) before and after: other processes share the cores.
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "loadavg_before": list(load_before), "loadavg_after": list(os.getloadavg())},
        "versions": _versions(),
        "note": "wall times include each run's own set-up (pool start for local; task submission for Ray); "
                "ray_startup_s (ray.init) is excluded from ray_wall_s. Timings are noisy on a shared machine: "
                "the ratio, measured in one run, is the figure to compare.",
    }


def report(res: dict[str, Any]) -> str:
    """A small text table of :func:`run`'s result."""
    t = res["tasks"]
    lines = [
        (f"{t['trials']} trials ({len(t['grasps'])} grasps x {t['trials_per_grasp']}), jobs={t['jobs']}, "
         f"best of {res['rounds']} rounds"),
        f"{'executor':<10} {'trials/s':>9}  wall per round [s]",
        f"{'local':<10} {res['local_trials_per_s']:>9.2f}  " + ", ".join(f"{w:.2f}" for w in res["local_wall_s"]),
        f"{'ray':<10} {res['ray_trials_per_s']:>9.2f}  " + ", ".join(f"{w:.2f}" for w in res["ray_wall_s"]),
        f"ratio ray/local: {res['ratio_ray_over_local']:.2f}x",
        (f"ray: import {res['ray_import_s']:.2f} s, ray.init {res['ray_startup_s'] or 0.0:.2f} s, "
         f"first round {res['ray_first_round_s']:.2f} s, shutdown {res['ray_shutdown_s']:.2f} s"),
        f"records identical: {res['records_identical']}",
        (f"load average before/after (1 min): {res['machine']['loadavg_before'][0]:.1f} / "
         f"{res['machine']['loadavg_after'][0]:.1f} on {res['machine']['cpus']} CPUs"),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=2, help="trials per grasp type")
    parser.add_argument("--jobs", type=int, default=2, help="concurrent trials")
    parser.add_argument("--rounds", type=int, default=2, help="alternating local/Ray repeats (best counts)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON output (default {RESULTS})")
    args = parser.parse_args(argv)
    res = run(trials=args.trials, jobs=args.jobs, rounds=args.rounds)
    print(report(res))
    save_result(res, args.out)


if __name__ == "__main__":
    main()
