"""FK throughput of handsim's numpy kinematics core against PyBullet, measured in one run.

Usage:
    python benchmarks/bench_fk.py [--urdf PATH] [--out benchmarks/results/fk.json]

handsim is timed at N = 1, 100, 10k and 100k configurations per call, in float64 and float32
(configurations per second, best of several repeats), and on one (n,) configuration, which
takes a separate single-pose path (what an env step calls), and at N = 10k written into the
array an earlier call returned (``out=``). PyBullet is timed on its fastest
per-configuration path: ``resetJointStatesMultiDof`` for all joints, then ``getLinkStates``
with ``computeForwardKinematics=1`` for every link. Ratios are handsim / PyBullet.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from _save import save_result

from handsim import data
from handsim.kinematics import load_urdf

SIZES = (1, 100, 10_000, 100_000)


def _default_urdf() -> Path:
    folder = data.hand_dir(data.DEFAULT_HAND)
    return folder / json.loads((folder / "hand.json").read_text())["urdf"]


def _configs(tree, count: int, seed: int = 0) -> np.ndarray:
    lo = np.where(np.isfinite(tree.lower), tree.lower, -np.pi)
    hi = np.where(np.isfinite(tree.upper), tree.upper, np.pi)
    return np.random.default_rng(seed).uniform(lo, hi, size=(count, tree.num_joints))


def _best_rate(fn, per_call: int, min_time: float = 0.3, repeats: int = 5) -> float:
    """Configurations per second: the best of `repeats` timings, each looping for `min_time`."""
    fn()  # warm-up
    best = 0.0
    for _ in range(repeats):
        calls, start = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
        best = max(best, calls * per_call / elapsed)
    return best


def measure_handsim(tree) -> dict[str, dict[str, float]]:
    """handsim FK rate [configs/s] per dtype and batch size."""
    out: dict[str, dict[str, float]] = {}
    for dtype in (np.float64, np.float32):
        rates = {}
        for n in SIZES:
            q = _configs(tree, n).astype(dtype)
            rates[str(n)] = _best_rate(lambda q=q: tree.forward_kinematics(q), n, repeats=3 if n >= 100_000 else 5)
        out[np.dtype(dtype).name] = rates
    # One (n,) configuration per call (an env step) takes its own code path:
    single = _configs(tree, 1)[0]
    out["float64_single_configuration"] = {"1": _best_rate(lambda: tree.forward_kinematics(single), 1)}
    # FK returns a batch-first view of batch-last memory; what a C-ordered copy would cost:
    q = _configs(tree, 10_000)
    out["float64_with_c_order_copy"] = {
        "10000": _best_rate(lambda: np.ascontiguousarray(tree.forward_kinematics(q)), 10_000)
    }
    # The same batch written into the array an earlier call returned (forward_kinematics(q, out=)):
    # no fresh allocation per call, which above glibc's 32 MiB heap-reuse size is mapped anew.
    buffer = tree.forward_kinematics(q)
    out["float64_into_out"] = {"10000": _best_rate(lambda: tree.forward_kinematics(q, out=buffer), 10_000)}
    return out


def measure_pybullet(path: Path, tree, count: int = 2000) -> float:
    """PyBullet FK rate [configs/s] on its per-configuration path."""
    import pybullet as pb

    cid = pb.connect(pb.DIRECT)
    try:
        body = pb.loadURDF(str(path), useFixedBase=True, physicsClientId=cid)
        index = {pb.getJointInfo(body, k, physicsClientId=cid)[1].decode(): k for k in range(pb.getNumJoints(body, physicsClientId=cid))}
        joints = [index[name] for name in tree.joint_names]
        links = list(range(pb.getNumJoints(body, physicsClientId=cid)))
        qs = [[[float(v)] for v in q] for q in _configs(tree, count)]

        def run() -> None:
            for q in qs:
                pb.resetJointStatesMultiDof(body, joints, q, physicsClientId=cid)
                pb.getLinkStates(body, links, computeForwardKinematics=1, physicsClientId=cid)

        return _best_rate(run, count, min_time=0.5, repeats=3)
    finally:
        pb.disconnect(cid)


def run(path: Path) -> dict:
    """Measure both and return the result record."""
    tree = load_urdf(path)
    ours = measure_handsim(tree)
    peer = measure_pybullet(path, tree)
    ratios = {dt: {n: r / peer for n, r in rates.items()} for dt, rates in ours.items()}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "benchmark": "fk_throughput",
        "unit": "configurations/s",
        "urdf": str(path.name),
        "links": len(tree.link_names),
        "joints": tree.num_joints,
        "handsim": ours,
        "pybullet_per_config": peer,
        "ratio_vs_pybullet": ratios,
        "target": {"float64_at_10000": 1_000_000, "goal": 2_000_000, "ratio_at_10000": 35},
        "machine": {
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_1min_at_end": load,
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--urdf", type=Path, default=None, help="URDF to measure (default: the default hand)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "fk.json")
    args = parser.parse_args(argv)
    result = run(args.urdf or _default_urdf())
    print(f"FK throughput, {result['urdf']}: {result['links']} links, {result['joints']} joints")
    print(f"{'N':>8} {'float64 /s':>14} {'x PyBullet':>11} {'float32 /s':>14} {'x PyBullet':>11}")
    for n in map(str, SIZES):
        r64, r32 = result["handsim"]["float64"][n], result["handsim"]["float32"][n]
        print(
            f"{n:>8} {r64:>14,.0f} {result['ratio_vs_pybullet']['float64'][n]:>10.1f}x "
            f"{r32:>14,.0f} {result['ratio_vs_pybullet']['float32'][n]:>10.1f}x"
        )
    one = result["handsim"]["float64_single_configuration"]["1"]
    print(f"       1 {one:>14,.0f} {result['ratio_vs_pybullet']['float64_single_configuration']['1']:>10.1f}x  "
          "(float64, one (n,) configuration: the env's path)")
    c_order = result["handsim"]["float64_with_c_order_copy"]["10000"]
    print(f"   10000 {c_order:>14,.0f} {result['ratio_vs_pybullet']['float64_with_c_order_copy']['10000']:>10.1f}x  (float64 + np.ascontiguousarray)")
    into = result["handsim"]["float64_into_out"]["10000"]
    print(f"   10000 {into:>14,.0f} {result['ratio_vs_pybullet']['float64_into_out']['10000']:>10.1f}x  (float64, out= an earlier result)")
    print(f"PyBullet resetJointStatesMultiDof + getLinkStates: {result['pybullet_per_config']:,.0f} configs/s")
    save_result(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
