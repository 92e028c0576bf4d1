"""Benchmark: batched Ferrari-Canny Q1 (handsim.scoring.quality) against a per-grasp Qhull loop.

A program, not a test. :func:`run` times :func:`handsim.scoring.quality.epsilon_quality` on
``batch`` random grasps (contacts on a sphere, normals towards its centre tilted by up to
``tilt_deg``, random friction) and a per-grasp ``scipy.spatial.ConvexHull`` loop on the first
``subset`` of them (its time per grasp is extrapolated to the whole batch: a full Qhull loop
over 10k grasps takes over a minute). Both are checked to agree on the subset.

Usage::

    python benchmarks/bench_quality.py                # writes benchmarks/results/quality.json
    python benchmarks/bench_quality.py --batch 2000 --out /tmp/q.json --compare benchmarks/results/quality.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy
from _save import save_result
from scipy.spatial import ConvexHull

from handsim.scoring.quality import (
    HULL_REL_TOL,
    RANK_REL_TOL,
    epsilon_quality,
    friction_cone_wrenches,
)

RESULTS = Path(__file__).resolve().parent / "results" / "quality.json"


def make_grasps(batch: int, contacts: int, seed: int, radius: float = 0.04, tilt_deg: float = 15.0):
    """Random grasps on a sphere of ``radius`` [m]: points (B, C, 3), normals, mu (B,)."""
    rng = np.random.default_rng(seed)
    p = rng.normal(size=(batch, contacts, 3))
    p *= radius / np.linalg.norm(p, axis=-1, keepdims=True)
    n = -p / radius + rng.normal(size=p.shape) * np.tan(np.radians(tilt_deg)) / np.sqrt(3)
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    mu = rng.uniform(0.2, 1.0, size=batch)
    return p, n, mu


def qhull_epsilon(w: np.ndarray) -> float:
    """Q1 of one wrench set with Qhull: min facet offset if the origin is inside, else 0."""
    offsets = -ConvexHull(w).equations[:, -1]
    return float(offsets.min()) if offsets.min() > 0 else 0.0


def run(batch: int = 10_000, contacts: int = 5, edges: int = 8, subset: int = 500, seed: int = 0, repeats: int = 3) -> dict[str, Any]:
    """Time both methods and compare them; returns a JSON-ready dict."""
    radius = 0.04
    p, n, mu = make_grasps(batch, contacts, seed, radius)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        q = epsilon_quality(p, n, mu, num_edges=edges, torque_scale=radius)
        times.append(time.perf_counter() - t0)
    t_batched = min(times)

    m = min(subset, batch)
    w = friction_cone_wrenches(p[:m], n[:m], mu[:m], num_edges=edges, torque_scale=radius)
    t0 = time.perf_counter()
    ref = np.array([qhull_epsilon(w[b]) for b in range(m)])
    t_subset = time.perf_counter() - t0
    per_grasp_scipy = t_subset / m
    t_scipy = per_grasp_scipy * batch  # extrapolated

    diff = np.abs(q[:m] - ref)
    return {
        "benchmark": "quality.epsilon_quality",
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
        },
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "B": batch,
        "C": contacts,
        "k": edges,
        "seed": seed,
        "tolerances": {"HULL_REL_TOL": HULL_REL_TOL, "RANK_REL_TOL": RANK_REL_TOL},
        "batched_s": t_batched,
        "batched_s_all_repeats": times,
        "batched_grasps_per_s": batch / t_batched,
        "scipy_subset": m,
        "scipy_subset_s": t_subset,
        "scipy_s_per_grasp": per_grasp_scipy,
        "scipy_s_extrapolated": t_scipy,
        "scipy_grasps_per_s": 1.0 / per_grasp_scipy,
        "speedup": t_scipy / t_batched,
        "force_closure_fraction": float((q > 0).mean()),
        "subset_max_abs_diff": float(diff.max()),
        "subset_closure_agree": bool(((q[:m] > 0) == (ref > 0)).all()),
    }


def report(res: dict[str, Any], old: dict[str, Any] | None = None) -> str:
    """A text table of one result (and the change against an older one)."""
    rows = [
        ("grasps (B x C contacts x k edges)", f"{res['B']} x {res['C']} x {res['k']}"),
        ("batched epsilon_quality [s]", f"{res['batched_s']:.3f}"),
        ("batched [grasps/s]", f"{res['batched_grasps_per_s']:,.0f}"),
        (f"scipy ConvexHull loop, {res['scipy_subset']} grasps [s]", f"{res['scipy_subset_s']:.3f}"),
        ("scipy loop extrapolated to B [s]", f"{res['scipy_s_extrapolated']:.1f}"),
        ("scipy [grasps/s]", f"{res['scipy_grasps_per_s']:,.0f}"),
        ("speed-up (scipy / batched)", f"{res['speedup']:.1f}x"),
        ("max |Q1 - Q1_qhull| on the subset", f"{res['subset_max_abs_diff']:.2e}"),
        ("force-closure fraction", f"{res['force_closure_fraction']:.3f}"),
    ]
    if old is not None:
        rows.append(("speed-up vs the compared result", f"{old['batched_s'] / res['batched_s']:.2f}x"))
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{a:<{width}}  {b}" for a, b in rows)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--contacts", type=int, default=5)
    ap.add_argument("--edges", type=int, default=8)
    ap.add_argument("--subset", type=int, default=500, help="grasps timed with the scipy loop")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--compare", type=Path, default=None, help="an earlier result JSON to compare with")
    args = ap.parse_args(argv)
    res = run(args.batch, args.contacts, args.edges, args.subset, args.seed, args.repeats)
    old = json.loads(args.compare.read_text()) if args.compare else None
    print(report(res, old))
    save_result(res, args.out)


if __name__ == "__main__":
    main()
