"""Benchmark: how stiffly the position servo holds each finger joint against a contact.

A program, not a test; it measures the simulator as the benchmark drives it, so that the
"soft distal joints" limit (README, ``models/default_hand/GRASPS.md``) is a recorded figure.

The hand holds a pose (every joint a quarter of the way up its range, gravity off, the protocol's
time step and solver iterations, :class:`handsim.sim.HandBody`'s motors: PyBullet
``POSITION_CONTROL`` capped at the URDF efforts). For each probed joint, a 6 mm sphere held by
a fixed constraint (500 N) starts 0.5 mm off the palmar surface of the link the joint carries,
on the line that turns that joint, and is pushed into it in steps of ``step_mm``; after each
step (0.5 s) the joint's deflection and its motor's torque (which equals the contact's torque
about the joint, as the link is otherwise free) are read. Contact stiffness = the secant
d(torque) / d(deflection) between the last two steps (1 and 1.5 mm) [N m/rad].

Each joint is measured in the judged phase's settings at the protocol's ``position_gain`` and at
a higher gain, once in the grasp phase's settings (8 ms step, 20 solver iterations, while the
object sits on its fixture), and with the
inertia of the probed link scaled up (what a real actuator's reflected rotor inertia, its
"armature", would add), because PyBullet's position motor is a velocity-level constraint:
against a contact its correction is an impulse proportional to the inertia it moves and to
the gain, so it acts as a spring whose stiffness scales with both. The table shows it.

Usage::

    python benchmarks/bench_servo.py                 # writes benchmarks/results/servo.json
    python benchmarks/bench_servo.py --hand path/to/hand --out /tmp/servo.json
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pybullet
from _save import machine_info, save_result

from handsim.hand import load_hand
from handsim.sim import HandBody, World
from handsim.tolerances import DEFAULT_PROTOCOL

RESULTS = Path(__file__).resolve().parent / "results" / "servo.json"
JOINTS = ("index_mcp_flex", "index_pip", "index_dip", "thumb_cmc_flex", "thumb_mcp", "thumb_ip")
SPHERE_RADIUS_M = 0.006
#: Solver settings of the episode's two phases: (time step [s], solver iterations).
PHASES = {
    "judged": (DEFAULT_PROTOCOL.timestep_s, DEFAULT_PROTOCOL.solver_iterations),
    "grasp": (DEFAULT_PROTOCOL.grasp_timestep_s, DEFAULT_PROTOCOL.grasp_solver_iterations),
}
# The held pose: every joint this far from its lower limit, as a fraction of its range (a
# mostly open hand, no link touching another).
POSE_FRACTION = 0.25


def _probe_link(c: Any, body: int, joint_id: int, q: np.ndarray, col: int) -> tuple[int, np.ndarray]:
    """The link carried by the joint that the push acts on, and the push direction (unit, world).

    The joint's own child link, or the first link below it whose centre is >= 4 mm from the
    axis; the push is along minus the Jacobian column of the joint at that centre (it opens
    the joint).
    """
    parent = {j: c.getJointInfo(body, j)[16] for j in range(c.getNumJoints(body))}
    frontier, zeros = [joint_id], [0.0] * len(q)
    while frontier:
        for link in frontier:
            com = list(c.getDynamicsInfo(body, link)[3])
            jac = np.array(c.calculateJacobian(body, link, com, q.tolist(), zeros, zeros)[0])[:, col]
            if np.linalg.norm(jac) >= 0.004:
                return link, -jac / np.linalg.norm(jac)
        frontier = [j for j, p in parent.items() if p in frontier]
    raise RuntimeError(f"no link carried by joint {joint_id} has its centre off the axis")


def probe(
    urdf: Path, joint: str, *, gain: float, inertia_scale: float = 1.0, phase: str = "judged", step_mm: float = 0.5, steps: int = 3
) -> dict[str, Any]:
    """Push a sphere into the link a joint carries; deflection and torque after each step.

    ``phase`` picks the solver settings: ``"judged"`` (``timestep_s``, ``solver_iterations``:
    from the object's release on, everything that is scored) or ``"grasp"``
    (``grasp_timestep_s``, ``grasp_solver_iterations``: while the object sits on its fixture).
    """
    p = DEFAULT_PROTOCOL
    dt, iterations = PHASES[phase]
    with World(p, gravity=False) as world:
        world.set_timestep(dt)
        world.set_solver_iterations(iterations)
        hand = HandBody(world, urdf, visual=False, position_gain=gain)
        c, body = world.client, hand.body_id
        lower = np.array([c.getJointInfo(body, j)[8] for j in hand._joint_ids])
        upper = np.array([c.getJointInfo(body, j)[9] for j in hand._joint_ids])
        q = lower + POSE_FRACTION * (upper - lower)
        hand.reset_joints(q)
        col = hand.q_index(joint)
        joint_id = hand._joint_ids[col]
        link, push = _probe_link(c, body, joint_id, q, col)
        if inertia_scale != 1.0:
            inertia = np.array(c.getDynamicsInfo(body, link)[2]) * inertia_scale
            c.changeDynamics(body, link, localInertiaDiagonal=inertia.tolist())
        com = np.array(c.getLinkState(body, link, computeForwardKinematics=1)[0])
        # Start well outside along -push, then move in until 0.5 mm clear of the link.
        start = com - push * 0.05
        sphere = c.createMultiBody(0.05, c.createCollisionShape(pybullet.GEOM_SPHERE, radius=SPHERE_RADIUS_M), -1, start.tolist())
        gap = min(cp[8] for cp in c.getClosestPoints(sphere, body, 0.1, linkIndexB=link))
        start = start + push * (gap - 0.0005)
        c.resetBasePositionAndOrientation(sphere, start.tolist(), [0, 0, 0, 1])
        hold = c.createConstraint(sphere, -1, -1, -1, pybullet.JOINT_FIXED, [0, 0, 0], [0, 0, 0], start.tolist())
        rows = []
        for k in range(steps + 1):
            c.changeConstraint(hold, jointChildPivot=(start + push * k * step_mm * 1e-3).tolist(), maxForce=500.0)
            world.step(round(0.5 / dt))
            angle, _, _, torque = c.getJointState(body, joint_id)
            touching = [cp for cp in c.getContactPoints(body, sphere) if cp[3] == link]
            rows.append({
                "push_mm": k * step_mm,
                "deflection_rad": float(q[col] - angle),
                "torque_nm": float(abs(torque)),
                "contact_n": float(sum(cp[9] for cp in touching)),
                "other_links_touching": sorted({hand.link_name(cp[3]) for cp in c.getContactPoints(body, sphere) if cp[3] != link}),
            })
        # The secant over the last two steps (the first step only closes the 0.5 mm gap).
        d = rows[-1]["deflection_rad"] - rows[-2]["deflection_rad"]
        stiffness = (rows[-1]["torque_nm"] - rows[-2]["torque_nm"]) / d if d > 1e-9 else float("inf")
        return {
            "joint": joint,
            "link": hand.link_name(link),
            "effort_nm": float(hand.effort[col]),
            "gain": gain,
            "phase": phase,
            "timestep_s": dt,
            "solver_iterations": iterations,
            "inertia_scale": inertia_scale,
            "stiffness_nm_per_rad": float(stiffness),
            "steps": rows,
        }


def run(hand: str = "default_hand", gains: tuple[float, ...] = (DEFAULT_PROTOCOL.position_gain, 1.0), inertia_scales: tuple[float, ...] = (1.0, 10.0)) -> dict[str, Any]:
    """Probe every joint of :data:`JOINTS` the hand has, at each gain and inertia scale."""
    h = load_hand(hand)
    probes = []
    for joint in JOINTS:
        if joint not in h.joint_limits:
            continue
        for gain in gains:
            for scale in inertia_scales:
                probes.append(probe(h.urdf_path, joint, gain=gain, inertia_scale=scale))
        # The hand as the grasp phase runs it (the protocol's gain, the hand's own inertia).
        probes.append(probe(h.urdf_path, joint, gain=DEFAULT_PROTOCOL.position_gain, phase="grasp"))
    p = DEFAULT_PROTOCOL
    return {
        "benchmark": "servo contact stiffness",
        "machine": machine_info(),
        "pybullet_api": pybullet.getAPIVersion(),
        "hand": h.name,
        "protocol": {"timestep_s": p.timestep_s, "solver_iterations": p.solver_iterations, "position_gain": p.position_gain, "velocity_gain": p.velocity_gain},
        "probes": probes,
    }


def report(res: dict[str, Any]) -> str:
    """A text table: stiffness per joint, gain and inertia scale."""
    lines = [f"{'joint':16s} {'link':18s} {'effort':>6s} {'phase':>6s} {'gain':>5s} {'inertia':>7s} {'k [N m/rad]':>12s}  torque at 1 / 1.5 mm push"]
    for r in res["probes"]:
        s = r["steps"]
        lines.append(
            f"{r['joint']:16s} {r['link']:18s} {r['effort_nm']:6.2f} {r['phase']:>6s} {r['gain']:5.2f} {r['inertia_scale']:6.0f}x "
            f"{r['stiffness_nm_per_rad']:12.2f}  {s[-2]['torque_nm']:.3f} / {s[-1]['torque_nm']:.3f} N m"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hand", default="default_hand", help="a shipped hand's name or a hand folder")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    res = run(args.hand)
    print(report(res))
    save_result(res, args.out)


if __name__ == "__main__":
    main()
