"""Mesh-hull surface sampler of ``handsim synth``: the greedy Poisson-disk filter, old vs new.

A program, not a test. ``handsim.synth.handmodel._sample`` samples a mesh collision part on
its convex hull: ``20 * area / spacing**2`` random surface candidates (trimesh, fixed seed),
thinned so that no two kept samples are closer than 0.55 spacing. :func:`run` times, on a
palm-size and a forearm-size hull, in the same run:

* **old**: the quadratic greedy loop the sampler used before (every candidate against every
  sample kept so far, O(candidates x kept)), reimplemented here;
* **new**: :func:`handsim.synth.handmodel._poisson_disk` (a spatial hash of cells one minimum
  distance wide, each candidate checked against the 27 cells around it: linear time);
* **sample**: the whole ``_sample`` call on the hull's ``mesh`` primitive (candidates + filter
  + normals), for scale,

checks that old and new keep exactly the same samples, and records the ratio new / old (best
of ``rounds``; the old loop on the forearm hull runs once per round, it takes seconds).

Usage::

    python benchmarks/bench_synth_sampler.py            # writes benchmarks/results/synth_sampler.json
    python benchmarks/bench_synth_sampler.py --rounds 1 --out /tmp/s.json
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import trimesh
from _save import save_result

from handsim.synth.handmodel import SAMPLE_SPACING_M, Primitive, _poisson_disk, _sample

RESULTS = Path(__file__).resolve().parent / "results" / "synth_sampler.json"


def _hulls() -> dict[str, trimesh.Trimesh]:
    """A palm-size box (the default hand's palm box) and a forearm-size cylinder (adult
    forearm: ~25 cm long, ~8 cm across), as convex hulls."""
    return {
        "palm_box_70x81x28mm": trimesh.creation.box(extents=(0.07, 0.081, 0.028)).convex_hull,
        "forearm_cylinder_r40_h250mm": trimesh.creation.cylinder(radius=0.04, height=0.25, sections=64).convex_hull,
    }


def greedy_filter(cand: np.ndarray, min_dist: float) -> np.ndarray:
    """The filter as it was: each candidate against every kept sample, O(candidates x kept)."""
    min_d2 = min_dist**2
    kept: list[int] = []
    for k in range(len(cand)):
        if not kept or np.min(np.sum((cand[kept] - cand[k]) ** 2, axis=1)) >= min_d2:
            kept.append(k)
    return np.array(kept, dtype=np.int64)


def _best(fn: Callable[[], Any], rounds: int) -> tuple[float, Any]:
    best, out = math.inf, None
    for _ in range(rounds):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def run(spacing: float = SAMPLE_SPACING_M, rounds: int = 3) -> dict[str, Any]:
    """Time old and new filters (and the whole sampler) on each hull.

    Args:
        spacing: Sample spacing [m] (the sampler's default).
        rounds: Timings per figure; the best counts.

    Returns:
        The result record (times in seconds).
    """
    out: dict[str, Any] = {}
    for name, hull in _hulls().items():
        count = max(64, math.ceil(20 * hull.area / spacing**2))  # what _sample draws
        cand, _ = trimesh.sample.sample_surface(hull, count, seed=0)
        cand = np.asarray(cand, dtype=np.float64)
        t_old, kept_old = _best(lambda c=cand: greedy_filter(c, 0.55 * spacing), rounds)
        t_new, kept_new = _best(lambda c=cand: _poisson_disk(c, 0.55 * spacing), rounds)
        prim = Primitive("part", "mesh", np.eye(4), hull=hull)
        t_sample, (pts, _) = _best(lambda p=prim: _sample(p, spacing), rounds)
        out[name] = {
            "area_m2": float(hull.area),
            "candidates": int(count),
            "kept": len(kept_new),
            "identical": bool(np.array_equal(kept_old, kept_new)) and len(pts) == len(kept_new),
            "old_filter_s": t_old,
            "new_filter_s": t_new,
            "ratio_new_over_old": t_new / t_old,
            "whole_sample_call_new_s": t_sample,
        }
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "benchmark": "synth_mesh_sampler",
        "unit": "s (best of rounds)",
        "spacing_m": spacing,
        "min_distance_m": 0.55 * spacing,
        "rounds": rounds,
        "hulls": out,
        "machine": {"python": sys.version.split()[0], "numpy": np.__version__, "trimesh": trimesh.__version__,
                    "platform": platform.platform(), "cpus": os.cpu_count(), "load_average_1min_at_end": load},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="timings per figure, the best counts (default 3)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"where to save the JSON (default {RESULTS})")
    args = parser.parse_args(argv)
    result = run(rounds=args.rounds)
    print(f"mesh-hull sampler, spacing {result['spacing_m'] * 1e3:.1f} mm (min distance {result['min_distance_m'] * 1e3:.2f} mm)")
    print(f"{'hull':<30} {'cand':>7} {'kept':>6} {'old [s]':>9} {'new [s]':>9} {'new/old':>8} {'same':>5} {'_sample [s]':>11}")
    for name, r in result["hulls"].items():
        print(f"{name:<30} {r['candidates']:>7} {r['kept']:>6} {r['old_filter_s']:>9.3f} {r['new_filter_s']:>9.4f} "
              f"{r['ratio_new_over_old']:>8.4f} {r['identical']!s:>5} {r['whole_sample_call_new_s']:>11.3f}")
    save_result(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
