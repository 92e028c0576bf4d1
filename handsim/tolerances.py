"""Every number of the grasp-evaluation protocol, named and with units, in one place.

The protocol a grasp is judged by (see :func:`handsim.sim.run_disturbance`):

1. close the hand on the object for ``grasp_duration_s``; with ``hold_object_during_grasp``
   the object is held in place meanwhile (as if presented by a fixture, or handed over), so
   the first finger to arrive cannot flick a weightless object away;
2. release it and, with gravity on, let it settle for ``settle_s`` (the grasp is scored at
   the end of the settle, as it actually holds);
3. push the object at its centre of mass with ``disturbance_factor`` times its weight along
   each world axis in ``directions`` in turn, ``direction_duration_s`` each, the wrist fixed
   and the hand holding its joint targets. The object is held if, at every step, it has moved
   less than ``max_translation_m`` and turned less than ``max_rotation_deg`` from its pose at
   the start of the evaluation. Before the test the hand must not penetrate the object by more
   than ``max_penetration_m``.

Sources (facts, see /work/shared/reference/feix-grasp-taxonomy.md):

* BODex / DexGraspBench (MuJoCo): an external force of 10 x the object weight along
  +-x, +-y, +-z in turn (our ``disturbance_factor`` and ``directions``); initial penetration
  above 1 cm fails.
* Dexonomy: success means the object moves less than 5 cm and turns less than 15 degrees
  (our ``max_rotation_deg``; our translation limit, 2 cm, is stricter).
* DexGraspNet (ICRA 2023): six directions, and a penetration limit (1 mm there; ours 5 mm
  since PyBullet's contact solver keeps a few millimetres of steady-state overlap under load).

The benchmark records :meth:`Protocol.to_dict` next to its results.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from handsim.errors import ConfigurationError

__all__ = ["DEFAULT_PROTOCOL", "VALID_DIRECTIONS", "Protocol", "over_limit"]

#: World-axis disturbance directions the protocol knows.
VALID_DIRECTIONS: tuple[str, ...] = ("+x", "-x", "+y", "-y", "+z", "-z")


@dataclasses.dataclass(frozen=True)
class Protocol:
    """The grasp-evaluation protocol and the simulator settings it runs with.

    Attributes:
        timestep_s: Physics time step [s] (250 Hz, near PyBullet's default 240 Hz, so that the
            25 Hz control rate of the env is a whole 10 physics steps).
        solver_iterations: Constraint-solver iterations per step [-]. PyBullet's default 50
            under-converges on a squeezing grasp: the test gripper (friction margin 3x) lost
            a 4 cm box under -z (turned 15.8 deg); at 150 it holds with <= 6 deg and at 300
            with <= 3 deg, for 1.3x / 2.2x the run time of 50. Used from the release of the
            object on (settle, disturbance, scoring): every judged step.
        grasp_solver_iterations: Constraint-solver iterations per step while the object is held
            by the fixture (the grasp phase with ``hold_object_during_grasp``) [-]. The object
            cannot move then, so nothing is judged on the solver's convergence; the fingers
            only have to close on a fixed object. The count is switched to
            ``solver_iterations`` when the object is released, before anything is judged.
            About 2.5x cheaper physics per step of a random-action RL episode than 150
            (``benchmarks/bench_env.py``). Its effect on ``handsim bench`` (33 x 3 trials) is of
            the size of any change of the grasp-phase numerics: against 150, 20 changed 43 of
            the 99 trials' first failure reason (palmar 3/3 -> 0/3, index finger extension 1/3 ->
            2/3) and raising it to 200 instead changed 35 (palmar 3/3 -> 1/3), with mean
            penetration, trials held and signatures matched alike in all three; grasps whose
            outcome flips are marginal ones. Without the fixture it is not used.
        grasp_timestep_s: Physics time step while the object is held by the fixture [s]
            (125 Hz: 5 steps per 25 Hz control step). As with ``grasp_solver_iterations``,
            nothing is judged then and the object cannot move; the step is switched to
            ``timestep_s`` when the object is released, before anything is judged. It halves
            the physics of the grasp phase, which is what an RL episode mostly runs. The
            finger motors' gain is scaled with the step (``HandBody.set_targets``) so that the
            servo closes as fast at either step. Against 4 ms, ``handsim bench`` (33 x 3) went
            from 10/33 to 9/33: adducted thumb 2/3 -> 1/3 (its trials turn exactly 15.0 deg) and
            stick 2/3 -> 3/3; the other types kept their success counts.
        gravity: Magnitude of gravity along world -z [m/s^2].
        grasp_duration_s: Time the hand gets to close on the object [s].
        settle_s: Time with gravity on, the object released, before the disturbances start [s].
        hold_object_during_grasp: Hold the object fixed at its placed pose during the grasp
            phase (a fixed constraint), and release it when the grasp phase ends. Without it
            the object floats weightless and the closing fingers may push it away.
        disturbance_factor: Disturbance force as a multiple of the object weight [-].
        direction_duration_s: Time each disturbance direction is applied [s].
        directions: World axes pushed along, in order (each one of ``VALID_DIRECTIONS``).
        max_translation_m: Largest object displacement from its start pose that still counts
            as held [m].
        max_rotation_deg: Largest object rotation from its start pose that still counts as
            held [deg].
        max_penetration_m: Largest hand-object penetration allowed before the evaluation [m].
        max_joint_excess_deg: Largest excess of any movable joint (mimic joints included)
            past its URDF limit allowed when the grasp is scored (after the settle) and at the
            end of the disturbances [deg]. PyBullet enforces joint limits as soft constraints: fingers pressed on an
            object by effort-capped motors can fold past their limits (measured up to 60 deg
            after a 20-iteration grasp phase, 30 deg at 150 iterations). A grasp held in such a
            pose is one the hand cannot take, so it fails. 5 deg is the same order as the
            penetration allowance (5 mm at a 6 cm phalanx). Revolute (and continuous) joints
            only: a prismatic joint's excess is a length, judged by ``max_joint_excess_m``.
        max_joint_excess_m: The same limit for prismatic joints (a gripper's sliding jaw) [m].
            PyBullet enforces their limits as soft constraints too. 2 mm is about what 5 deg
            moves a fingertip 2 cm from the joint turning it (the default hand's distal
            phalanges are 1.8-2.1 cm long: 1.6-1.8 mm), and below the 5 mm penetration allowance: a jaw 2 mm past its stop is
            still a pose the gripper can nearly take, 1 cm past it is not. (Before this field
            existed the excess of a prismatic joint was converted with ``np.degrees`` as if it
            were an angle, so 5 "deg" allowed 87 mm.)
        contact_distance_m: A hand-object point pair counts as a contact when its signed
            distance is at most this [m] (PyBullet also reports pairs a few mm apart).
        hand_lateral_friction: Lateral friction given to every hand link [-]. PyBullet
            multiplies the two bodies' coefficients, so with 1.0 the contact friction equals
            the object's ``friction``.
        hand_torsional_friction_m: Torsional ("spinning") friction of every hand link [m]: a
            contact resists twisting about its normal up to this x the object's friction x the
            normal force [N m]. Finger pads are soft: a uniformly pressed contact patch of radius
            a resists up to (2/3) mu a N (the soft-finger model of grasp analysis), and 4 mm is
            2/3 of a 6 mm patch radius. PyBullet's point contacts have none by default, so a
            pinched sphere or pen spins freely about the pinch axis; real fingertips do not.
        wrist_max_force_n: Force cap of the constraint that drives a free wrist (the env's
            ``wrist="free"``) [N]: several times what the disturbance pushes through a held
            object (10 x the weight of the heaviest test object, 1 kg, is 98 N), so the
            wrist holds still under the protocol as a fixed one would, yet bounded so that a
            wrist driven into the object cannot crush it with unlimited force.
        position_gain: PyBullet POSITION_CONTROL ``positionGain`` (Kp) of the finger motors [-].
        velocity_gain: PyBullet POSITION_CONTROL ``velocityGain`` (Kd) of the finger motors [-].
        max_linear_speed_m_s: An object faster than this is a physics blow-up [m/s].
        max_angular_speed_rad_s: An object spinning faster than this is a physics blow-up [rad/s].
        check_forbidden_under_push: Judge the type's forbidden regions again at the end of each
            push direction, the object still pushed: a forbidden region in contact then fails
            the trial (``forbidden palm.* touched (palm.pad) under -x (at the end of its
            push)``). The signature is otherwise scored once, after the settle; without this
            a ball held on the fingertips there and caught by the palm under every push counted
            as a pad grasp (session 13: sphere 4 finger, sphere 3 finger and extension type,
            each on all three seed-0 trials). Required regions are not re-judged under a push:
            a contact on the side the push pulls the object away from may open by more than
            the 1 mm contact distance while the others hold it. False reproduces the earlier
            trials bit for bit.
        required_min_force_n: The least total contact normal force each required region group
            of the signature must carry when the grasp is scored [N]. A contact pair within
            ``contact_distance_m`` counts as touching (so that a forbidden region a hair away
            from the object is caught), but a required finger that lies beside the object
            without pressing on it is not holding it: the trial fails with ``required
            index.*.pad|index.distal.tip touched without load (0.000 N < 0.010 N)``. 10 mN is
            a fifth of the lightest test object's weight (the 5 g marble, 49 mN) and about a
            thirtieth of the least load a required group carried on the achieved trials when
            this was added (session 14, seed 0: 0.32 N), except on index finger extension's
            first two, whose index lay on the handle at 0.0 N. 0 reproduces the earlier trials
            bit for bit.
        check_penetration_under_push: Judge the hand-object penetration again at the end of
            each push, the object still pushed, against ``max_penetration_m`` (``penetration
            6.5 mm > 5.0 mm under +x (at the end of its push)``). Off by default: the 5 mm limit
            is for the grasp at rest, and under a 10 x weight push the contact solver's
            compliance lets a firmly held object sink further (session 14, seed 0: power
            sphere's ball 6.5-6.7 mm under +x on all three trials, held within 2 cm and 15 deg;
            every other achieved trial stays under 3.7 mm), about as far as a palm's soft tissue
            gives under that load. The value is recorded per direction either way (the trial's
            ``disturbance.penetration_m``); the check only reads the state, so True changes
            verdicts, never trajectories.
    """

    timestep_s: float = 1.0 / 250.0
    solver_iterations: int = 150
    grasp_solver_iterations: int = 20
    grasp_timestep_s: float = 1.0 / 125.0
    gravity: float = 9.81
    grasp_duration_s: float = 1.0
    settle_s: float = 0.5
    hold_object_during_grasp: bool = True
    disturbance_factor: float = 10.0
    direction_duration_s: float = 1.0
    directions: tuple[str, ...] = VALID_DIRECTIONS
    max_translation_m: float = 0.02
    max_rotation_deg: float = 15.0
    max_penetration_m: float = 0.005
    max_joint_excess_deg: float = 5.0
    max_joint_excess_m: float = 0.002
    contact_distance_m: float = 0.001
    hand_lateral_friction: float = 1.0
    hand_torsional_friction_m: float = 0.004
    wrist_max_force_n: float = 500.0
    position_gain: float = 0.1
    velocity_gain: float = 1.0
    max_linear_speed_m_s: float = 100.0
    max_angular_speed_rad_s: float = 1000.0
    check_forbidden_under_push: bool = True
    required_min_force_n: float = 0.01
    check_penetration_under_push: bool = False

    def __post_init__(self) -> None:
        positive = (
            "timestep_s", "grasp_timestep_s", "solver_iterations", "grasp_solver_iterations", "gravity", "grasp_duration_s", "direction_duration_s",
            "max_translation_m", "max_rotation_deg", "max_penetration_m", "max_joint_excess_deg",
            "max_joint_excess_m", "position_gain", "wrist_max_force_n",
            "max_linear_speed_m_s", "max_angular_speed_rad_s",
        )
        non_negative = (
            "settle_s", "disturbance_factor", "hand_lateral_friction", "hand_torsional_friction_m", "velocity_gain",
            "required_min_force_n",
        )
        for name in positive + non_negative:
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if not ok or value < 0 or (name in positive and value == 0):
                kind = "> 0" if name in positive else ">= 0"
                raise ConfigurationError(f"Protocol.{name}: expected a finite number {kind}, got {value!r}")
        for name in ("solver_iterations", "grasp_solver_iterations"):
            if not isinstance(getattr(self, name), int):
                raise ConfigurationError(f"Protocol.{name}: expected an int, got {getattr(self, name)!r}")
        # Accept a list from JSON but store a tuple so the dataclass stays hashable.
        directions = tuple(self.directions)
        object.__setattr__(self, "directions", directions)
        if not directions:
            raise ConfigurationError(f"Protocol.directions: expected at least one of {VALID_DIRECTIONS}, got ()")
        for d in directions:
            if d not in VALID_DIRECTIONS:
                raise ConfigurationError(
                    f"Protocol.directions: unknown direction {d!r}; valid: {', '.join(VALID_DIRECTIONS)}"
                )
        if len(set(directions)) != len(directions):
            raise ConfigurationError(f"Protocol.directions: expected no repeats, got {directions}")

    def steps(self, seconds: float) -> int:
        """Number of physics steps covering ``seconds`` [s] (rounded to the nearest step)."""
        return max(0, int(round(seconds / self.timestep_s)))

    def to_dict(self) -> dict[str, Any]:
        """All values as a JSON-ready dict (the directions as a list)."""
        d = dataclasses.asdict(self)
        d["directions"] = list(self.directions)
        return d


DEFAULT_PROTOCOL = Protocol()


def over_limit(value: float, limit: float, unit: str) -> str:
    """``"15.1 deg > 15.0 deg"``: one decimal, or as many more as it takes (up to four) for the
    value to read as more than the limit; past that, ``"just over the 15.0 deg"`` (never
    "15.0 deg > 15.0 deg")."""
    for digits in range(1, 5):
        v, lim = f"{value:.{digits}f}", f"{limit:.{digits}f}"
        if v != lim:
            return f"{v} {unit} > {lim} {unit}"
    return f"just over the {limit:.1f} {unit}"
