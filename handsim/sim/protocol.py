"""The disturbance protocol: push the held object along each world axis and watch it."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from handsim.errors import SimulationError
from handsim.sim.objects import ObjectBody
from handsim.sim.world import World
from handsim.tolerances import Protocol, over_limit

__all__ = ["DIRECTION_VECTORS", "DisturbanceResult", "DisturbanceStep", "run_disturbance"]

#: Unit world vectors of the direction names.
DIRECTION_VECTORS: dict[str, tuple[float, float, float]] = {
    "+x": (1.0, 0.0, 0.0), "-x": (-1.0, 0.0, 0.0),
    "+y": (0.0, 1.0, 0.0), "-y": (0.0, -1.0, 0.0),
    "+z": (0.0, 0.0, 1.0), "-z": (0.0, 0.0, -1.0),
}


@dataclasses.dataclass(frozen=True)
class DisturbanceStep:
    """What ``on_step`` receives after every physics step of the evaluation.

    Attributes:
        direction: The direction being pushed ("+x", ...).
        step: Step index within this direction (0-based).
        time_s: Time since the start of the evaluation [s].
        translation_m: Object displacement from its start pose [m].
        rotation_deg: Object rotation from its start pose [deg].
    """

    direction: str
    step: int
    time_s: float
    translation_m: float
    rotation_deg: float


@dataclasses.dataclass(frozen=True)
class DisturbanceResult:
    """Outcome of :func:`run_disturbance`.

    Attributes:
        held: True when the object stayed within the limits in every direction.
        directions: The directions in the order pushed.
        held_per_direction: Per direction True / False, or None when not evaluated (a
            previous direction had failed).
        max_translation_m: Per direction, the largest displacement from the start pose seen
            while pushing it [m] (None when not evaluated).
        max_rotation_deg: Per direction, the largest rotation from the start pose [deg]
            (None when not evaluated).
        failed_direction: The first direction that failed, or None.
        reason: One line, e.g. ``"dropped under -z (moved 2.1 cm > 2.0 cm limit after 0.07 s)"``.
        force_n: Magnitude of the disturbance force [N].
        steps: Physics steps simulated.
    """

    held: bool
    directions: tuple[str, ...]
    held_per_direction: dict[str, bool | None]
    max_translation_m: dict[str, float | None]
    max_rotation_deg: dict[str, float | None]
    failed_direction: str | None
    reason: str
    force_n: float
    steps: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field."""
        d = dataclasses.asdict(self)
        d["directions"] = list(self.directions)
        return d


def run_disturbance(
    world: World,
    obj: ObjectBody,
    protocol: Protocol | None = None,
    on_step: Callable[[DisturbanceStep], None] | None = None,
    check: Callable[[str], str | None] | None = None,
) -> DisturbanceResult:
    """Push the object with ``disturbance_factor`` x its weight along each direction in turn.

    The hand (if any) keeps its joint targets and its fixed wrist; gravity is switched on.
    Along each of ``protocol.directions`` a world-frame force of ``disturbance_factor * mass *
    gravity`` [N] acts at the object's centre of mass for ``direction_duration_s``. After every
    step the object's displacement and rotation from its pose at the start of this call are
    checked; exceeding ``max_translation_m`` or ``max_rotation_deg`` fails that direction at
    once and the remaining directions are not evaluated. Gravity stays on and the force is
    removed when the call returns.

    Args:
        world: The world holding the object (and the hand).
        obj: The object to push.
        protocol: The protocol numbers (default: the world's protocol).
        on_step: Called after every physics step with a :class:`DisturbanceStep`.
        check: Called with the direction after the last step of each direction the object
            held, the push still applied; a string it returns fails that direction with that
            reason (the episode passes its forbidden-region check here).

    Returns:
        The per-direction verdicts and motions.

    Raises:
        SimulationError: The object's state became non-finite or its speed absurd (more than
            ``max_linear_speed_m_s`` or ``max_angular_speed_rad_s``): a physics blow-up.
    """
    p = world.protocol if protocol is None else protocol
    if not math.isclose(p.timestep_s, world.protocol.timestep_s):
        raise SimulationError(
            f"run_disturbance: protocol time step {p.timestep_s} s differs from the world's "
            f"{world.protocol.timestep_s} s; build the World with this protocol"
        )
    world.set_gravity(True)
    force = p.disturbance_factor * obj.mass * p.gravity
    n_steps = p.steps(p.direction_duration_s)
    start_xyz, start_quat = obj.pose()
    sx, sy, sz = (float(v) for v in start_xyz)
    rotation_from_start = _angle_from(start_quat)
    held_per: dict[str, bool | None] = {d: None for d in p.directions}
    max_t: dict[str, float | None] = {d: None for d in p.directions}
    max_r: dict[str, float | None] = {d: None for d in p.directions}
    failed: str | None = None
    reason = f"held in all {len(p.directions)} directions"
    total = 0
    try:
        for d in p.directions:
            obj.apply_force(force * np.array(DIRECTION_VECTORS[d]))
            worst_t = worst_r = 0.0
            max_t[d], max_r[d] = worst_t, worst_r
            for k in range(n_steps):
                world.step(1)
                total += 1
                # Plain floats, not numpy: this runs ~1500 times per held trial, and numpy's
                # per-call overhead on 3- and 4-vectors was ~15 % of the trial's wall time.
                pos, orn, lin, ang = obj.raw_state()
                t_s = total * p.timestep_s
                _check_sane(pos, orn, lin, ang, p, d, t_s)
                trans = math.sqrt((pos[0] - sx) ** 2 + (pos[1] - sy) ** 2 + (pos[2] - sz) ** 2)
                rot = math.degrees(rotation_from_start(orn))
                worst_t, worst_r = max(worst_t, trans), max(worst_r, rot)
                max_t[d], max_r[d] = worst_t, worst_r
                if on_step is not None:
                    on_step(DisturbanceStep(d, k, t_s, trans, rot))
                if trans > p.max_translation_m:
                    verb = "dropped" if d == "-z" else "slipped"
                    reason = (
                        f"{verb} under {d} (moved {over_limit(100 * trans, 100 * p.max_translation_m, 'cm')} limit "
                        f"after {t_s:.2f} s)"
                    )
                elif rot > p.max_rotation_deg:
                    reason = f"turned under {d} (rotated {over_limit(rot, p.max_rotation_deg, 'deg')} limit after {t_s:.2f} s)"
                else:
                    continue
                failed = d
                break
            if failed is None and check is not None:
                problem = check(d)
                if problem:
                    failed = d
                    reason = f"{problem} under {d} (at the end of its push)"
            held_per[d] = failed is None
            if failed is not None:
                break
    finally:
        if obj.valid:
            obj.clear_force()
    return DisturbanceResult(
        held=failed is None,
        directions=tuple(p.directions),
        held_per_direction=held_per,
        max_translation_m=max_t,
        max_rotation_deg=max_r,
        failed_direction=failed,
        reason=reason,
        force_n=force,
        steps=total,
    )


def _angle_from(start_quat: np.ndarray) -> Callable[[tuple[float, ...]], float]:
    """``orn -> quat_angle(start_quat, orn)`` [rad] for PyBullet (x, y, z, w) tuples, in plain floats.

    The same formula as :func:`handsim.transforms.quat_angle` (normalise both, relative
    rotation, ``2 atan2(|v|, |w|)``), specialised to one fixed start orientation.
    """
    w0, x0, y0, z0 = (float(v) for v in start_quat)
    n0 = math.sqrt(w0 * w0 + x0 * x0 + y0 * y0 + z0 * z0)
    w0, x0, y0, z0 = w0 / n0, -x0 / n0, -y0 / n0, -z0 / n0  # the conjugate of the start

    def angle(orn: tuple[float, ...]) -> float:
        x1, y1, z1, w1 = orn
        n1 = math.sqrt(w1 * w1 + x1 * x1 + y1 * y1 + z1 * z1)
        w1, x1, y1, z1 = w1 / n1, x1 / n1, y1 / n1, z1 / n1
        rw = w0 * w1 - x0 * x1 - y0 * y1 - z0 * z1
        rx = w0 * x1 + x0 * w1 + y0 * z1 - z0 * y1
        ry = w0 * y1 - x0 * z1 + y0 * w1 + z0 * x1
        rz = w0 * z1 + x0 * y1 - y0 * x1 + z0 * w1
        return 2.0 * math.atan2(math.sqrt(rx * rx + ry * ry + rz * rz), abs(rw))

    return angle


def _check_sane(xyz: tuple[float, ...], quat: tuple[float, ...], lin: tuple[float, ...], ang: tuple[float, ...],
                p: Protocol, d: str, t: float) -> None:
    speed = math.sqrt(lin[0] * lin[0] + lin[1] * lin[1] + lin[2] * lin[2])
    spin = math.sqrt(ang[0] * ang[0] + ang[1] * ang[1] + ang[2] * ang[2])
    # A NaN fails every comparison, so the "<=" tests also catch non-finite velocities; only the
    # pose needs its own finiteness scan on the common (sane) path.
    if speed <= p.max_linear_speed_m_s and spin <= p.max_angular_speed_rad_s and all(map(math.isfinite, (*xyz, *quat))):
        return
    where = f"under {d} at t = {t:.3f} s"
    if not all(map(math.isfinite, (*xyz, *quat, *lin, *ang))):
        raise SimulationError(
            f"physics blow-up {where}: non-finite object state (xyz {list(xyz)}, velocity {list(lin)}, angular {list(ang)})"
        )
    if speed > p.max_linear_speed_m_s:
        raise SimulationError(
            f"physics blow-up {where}: object speed {speed:.3g} m/s > Protocol.max_linear_speed_m_s = "
            f"{p.max_linear_speed_m_s} m/s"
        )
    raise SimulationError(
        f"physics blow-up {where}: object spin {spin:.3g} rad/s > Protocol.max_angular_speed_rad_s = "
        f"{p.max_angular_speed_rad_s} rad/s"
    )
