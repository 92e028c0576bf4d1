"""Benchmark: ``handsim synth`` on the default hand, and its coverage against the authored plans.

A program, not a test. :func:`run` synthesizes all 33 types for the default hand (timed: the
goal is <= 5 minutes on 2 cores), then runs the benchmark (``handsim.bench.run_bench``: the
same env, policy, seeds and 3 trials per type) on both plan sets, the hand-authored
``models/default_hand/grasps.json`` and the synthesized file, and records N/33 of each and
the per-type success; then synthesizes the generated 4-finger hand's plans
(``make_hand(OUT, fingers=4)``, no authored plans to compare with) and records how many types
its synthesis verified. Timings on the shared 2-core machine are noisy; the coverage figures
are deterministic for the seed.

Usage::

    python benchmarks/bench_synth.py               # writes benchmarks/results/synth.json and
                                                   # benchmarks/results/synth_default_grasps.json
    python benchmarks/bench_synth.py --grasps lateral,palmar --out /tmp/s.json --plans /tmp/plans.json
    python benchmarks/bench_synth.py --refine 32 --no-four-finger --out benchmarks/results/synth_refine.json \
        --plans benchmarks/results/synth_refine_default_grasps.json    # the refine stage (session 17)
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from _save import save_result

from handsim.bench.config import BenchConfig
from handsim.bench.runner import run_bench
from handsim.data import hand_dir
from handsim.grasps import default_taxonomy
from handsim.handgen import make_hand
from handsim.synth.synthesize import synthesize

RESULTS = Path(__file__).resolve().parent / "results" / "synth.json"
PLANS = Path(__file__).resolve().parent / "results" / "synth_default_grasps.json"


def _bench(hand_folder: Path, grasp_ids: list[str], out_dir: Path, jobs: int) -> dict[str, Any]:
    results = run_bench(BenchConfig(hand=str(hand_folder), grasp_ids=tuple(grasp_ids)), out_dir, jobs=jobs, progress=False)
    return {
        "achieved": results.achieved,
        "total": results.total,
        "wall_s": results.timing.get("wall_s"),
        "per_type": {g.id: {"successes": g.successes, "trials": g.trials,
                            "achieved": g.achieved, "reason": g.reason}
                     for g in results.grasps},
    }


def run(grasp_ids: list[str] | None = None, seed: int = 0, jobs: int = 2, plans: Path = PLANS,
        four_finger: bool = True, refine: int = 0) -> dict[str, Any]:
    """Synthesize, then benchmark the authored and the synthesized plans; then synthesize the
    generated 4-finger hand's plans (its verified count); returns a JSON-ready dict."""
    ids = grasp_ids or list(default_taxonomy().ids())
    folder = hand_dir("default_hand")
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    synth = synthesize("default_hand", plans, ids, seed=seed, jobs=jobs, progress=True, refine=refine)
    synth_wall = time.perf_counter() - t0
    load_after = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as tmp:
        tmp_path = Path(tmp)
        synth_hand = tmp_path / "default_hand_synth"
        shutil.copytree(folder, synth_hand, ignore=shutil.ignore_patterns("grasps.json"))
        shutil.copy(plans, synth_hand / "grasps.json")
        authored = _bench(folder, ids, tmp_path / "authored", jobs)
        synthesized = _bench(synth_hand, ids, tmp_path / "synthesized", jobs)
        four = None
        if four_finger:
            # The generated 4-finger hand (handsim hand make OUT --fingers 4): synthesized only.
            h4 = make_hand(tmp_path / "four_finger", fingers=4)
            t1 = time.perf_counter()
            res4 = synthesize(h4, tmp_path / "four_finger_plans.json", ids, seed=seed, jobs=jobs, progress=True,
                              refine=refine)
            four = {
                "hand": "handsim.handgen.make_hand(OUT, fingers=4)", "wall_s": time.perf_counter() - t1,
                "verified": res4.verified, "types": len(ids),
                "per_type": {t.grasp_id: t.to_dict() for t in res4.types},
            }
    return {
        "benchmark": "handsim synth on default_hand, then handsim bench on the authored and the synthesized plans",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "synth": {
            "seed": seed, "jobs": jobs, "refine": refine, "types": len(ids), "wall_s": synth_wall, "goal_s": 300.0,
            # The machine is shared: its load average (1, 5, 15 min) before and after the
            # synthesis says how much of the wall time was other people's work.
            "load_avg_before": list(load_before), "load_avg_after": list(load_after),
            "type_wall_s_sum": sum(t.wall_s for t in synth.types),  # each type in its worker
            "verified": synth.verified, "plans_file": _label(plans),
            "per_type": {t.grasp_id: t.to_dict() for t in synth.types},
        },
        "coverage": {
            "authored": f"{authored['achieved']}/{authored['total']}",
            "synthesized": f"{synthesized['achieved']}/{synthesized['total']}",
            "bench_seed": 0, "trials_per_type": 3,
        },
        "bench_authored": authored,
        "bench_synthesized": synthesized,
        "four_finger": four,
    }


def _label(path: Path) -> str:
    """The plans file as recorded: relative to the repository when inside it, else a label
    (an outside path means nothing on another machine)."""
    repo = Path(__file__).resolve().parent.parent
    try:
        return str(path.resolve().relative_to(repo))
    except ValueError:
        return f"<outside the repository>/{path.name}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grasps", default=None, help="comma-separated grasp ids (default: all 33)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--plans", type=Path, default=PLANS, help=f"where the synthesized plans go (default {PLANS})")
    ap.add_argument("--out", type=Path, default=RESULTS, help=f"results JSON (default {RESULTS})")
    ap.add_argument("--no-four-finger", action="store_true", help="skip the generated 4-finger hand")
    ap.add_argument("--refine", type=int, default=0, help="handsim synth --refine N (default 0, as the CLI)")
    args = ap.parse_args()
    res = run(args.grasps.split(",") if args.grasps else None, args.seed, args.jobs, args.plans, not args.no_four_finger,
              args.refine)
    print(f"synth: {res['synth']['types']} types in {res['synth']['wall_s']:.1f} s ({args.jobs} jobs), "
          f"{res['synth']['verified']} verified by synth")
    print("| grasp | synth verified | authored (bench) | synthesized (bench) |")
    print("|---|---|---|---|")
    for gid, t in res["synth"]["per_type"].items():
        a, s = res["bench_authored"]["per_type"][gid], res["bench_synthesized"]["per_type"][gid]
        print(f"| {gid} | {t['successes']}/{t['trials']} | {a['successes']}/{a['trials']} | {s['successes']}/{s['trials']} |")
    print(f"coverage: authored {res['coverage']['authored']}, synthesized {res['coverage']['synthesized']}")
    if res["four_finger"]:
        f = res["four_finger"]
        won = [g for g, t in f["per_type"].items() if t["verified"]]
        print(f"4-finger hand: {f['verified']}/{f['types']} verified by synth in {f['wall_s']:.1f} s: {', '.join(won) or '-'}")
    save_result(res, args.out)


if __name__ == "__main__":
    main()
