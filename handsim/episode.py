"""One grasp trial in PyBullet, scored by the vectorised core: the layer the env and the
benchmark share.

A trial (all numbers from :class:`handsim.tolerances.Protocol`):

1. **reset**: a fresh world; the hand's palm at the world origin; the grasp type's test object
   at the hand's planned pose for that type (``models/<hand>/grasps.json``), with a small
   seeded jitter; the fingers at the plan's pre-shape.
2. **grasp phase** (``grasp_duration_s``, object weightless, wrist fixed): a policy sets joint
   position targets at ``control_hz``; the motors are capped at the URDF efforts (or, for
   the whole trial, the lower caps of the plan's ``effort``, :mod:`handsim.grasp_data`).
   With ``Protocol.hold_object_during_grasp`` (default) the object is held in place by a
   fixture meanwhile (and the solver runs ``Protocol.grasp_solver_iterations``), and released
   when the grasp phase ends (the solver back at ``Protocol.solver_iterations``). With
   ``wrist="free"`` the policy also drives the wrist (:meth:`GraspEpisode.set_wrist_target`)
   and the object floats weightless where the plan puts it, on no fixture: the hand must
   reach it without knocking it away.
3. **settle**: gravity on for ``settle_s`` with the object released (benchmark mode).
4. **scoring of the grasp as it holds**: contacts labelled by hand region, the type's contact
   signature, thumb abducted/adducted, Ferrari-Canny Q1, largest penetration.
5. **evaluation** (optional for RL): the six-direction disturbance protocol
   (:func:`handsim.sim.run_disturbance`), skipped when step 4 has already failed the grasp
   unless ``evaluate(push_failed=True)``.

Speed without history: a :class:`GraspEpisode` keeps one PyBullet world and empties it at
every reset (``World.reset``), so a trial never depends on the trials before it (tested bit
for bit against a fresh episode); per-step reads of the state (joint states, object pose,
contacts, link frames) are computed once per physics state and shared by scoring and the
env's observation.

**Achieved = held in all six directions AND signature matched AND penetration within the
limit (at reset, where the pre-shape must not start inside the object, and as it holds) AND
no joint folded past its URDF limit by more than ``Protocol.max_joint_excess_deg`` (a
revolute joint) or ``Protocol.max_joint_excess_m`` (a prismatic one) when scored and after the
disturbances.**
Every failure says why.

**Mimic joints** (URDF ``<mimic>``, :attr:`Hand.mimic_joints`): the plans, the targets of
:meth:`GraspEpisode.apply` and :meth:`GraspEpisode.joint_state` cover the independent joints
(:attr:`GraspEpisode.joint_names`); :class:`~handsim.sim.HandBody` drives each mimic joint
after its master. The link frames that label contacts and give the fingertips are the FK of
every movable joint *as measured* (a mimic joint that lags its master, or is blocked by the
object, is where PyBullet has it, not where the ``<mimic>`` formula would put it), and the
joint-limit excess covers every movable joint, mimic ones included (a pose the hand cannot
take is one whatever drives the joint).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from handsim._pybullet import pybullet
from handsim.data import DEFAULT_HAND
from handsim.errors import ConfigurationError, SimulationError, suggest
from handsim.grasp_data import HandGrasp, load_plans_of
from handsim.grasps import GraspType, default_taxonomy
from handsim.hand import Hand, load_hand
from handsim.kinematics import KinematicTree, load_urdf
from handsim.kinematics.urdf import parse_urdf
from handsim.scoring import epsilon_quality
from handsim.scoring.signature import CompiledSignature, SignatureMatch
from handsim.sim import (
    Contacts,
    HandBody,
    ObjectBody,
    World,
    run_disturbance,
    spawn_object,
)
from handsim.tolerances import DEFAULT_PROTOCOL, Protocol, over_limit
from handsim.transforms import (
    quat_angle,
    quat_multiply,
    quat_normalize,
    quat_to_matrix,
    quat_wxyz_to_xyzw,
)

__all__ = ["WRIST_MODES", "ContactScore", "EpisodeResult", "EpisodeSettings", "GraspEpisode"]

#: Valid ``wrist`` values of :class:`GraspEpisode`.
WRIST_MODES: tuple[str, ...] = ("fixed", "free")

_NO_PLAN = "no plan in the hand's grasps.json"
#: Force cap of the fixture holding the object during the grasp phase [N]: far above what the
#: fingers can push (a few N m of joint torque over a few cm), so it acts as rigid.
_HOLD_FORCE_N = 1000.0


def _released_tree(urdf_path: Path) -> KinematicTree:
    """The hand's kinematic tree with every ``<mimic>`` tag dropped: each movable joint is a
    column of ``q`` (URDF document order), for FK of measured joint positions."""
    name, links, joints = parse_urdf(urdf_path)
    return KinematicTree(name, links, [dataclasses.replace(j, mimic=None) for j in joints], str(urdf_path))


def _divides(control_hz: float, timestep_s: float) -> bool:
    ratio = 1.0 / (control_hz * timestep_s)
    return abs(ratio - round(ratio)) <= 1e-6 and round(ratio) >= 1


def _substeps(control_hz: float, protocol: Protocol) -> dict[float, int]:
    """Physics steps per control step for each of the protocol's two physics rates (the grasp
    phase's ``grasp_timestep_s`` and ``timestep_s``): the control rate must divide both.

    Raises:
        ConfigurationError: It does not; the message lists the rates that do.
    """
    steps = (protocol.timestep_s, protocol.grasp_timestep_s)
    if not all(_divides(control_hz, dt) for dt in steps):
        slowest = 1.0 / max(steps)  # [Hz]: no control rate can be faster
        valid = [slowest / n for n in range(1, 1000) if all(_divides(slowest / n, dt) for dt in steps)]
        valid = [v for v in valid if abs(v - round(v)) < 1e-9] or valid  # the whole-number rates, when any
        valid = [v for v in valid if v >= 1.0][:8]
        choices = f"valid: {', '.join(f'{v:g}' for v in valid)} Hz" if valid else "no rate of 1 Hz or more is valid"
        # The grasp phase's step that would run this rate, when the other step already divides it.
        hint = ""
        if _divides(control_hz, protocol.timestep_s) and control_hz > 0:
            k = max(1, math.ceil(1.0 / (control_hz * protocol.grasp_timestep_s)))
            hint = f" (e.g. Protocol(grasp_timestep_s=1 / {k * control_hz:g}) for {control_hz:g} Hz)"
        raise ConfigurationError(
            f"EpisodeSettings.control_hz {control_hz:g}: a control step must be a whole number of physics steps at "
            f"both of the protocol's rates (Protocol.timestep_s: {1 / steps[0]:g} Hz, Protocol.grasp_timestep_s: "
            f"{1 / steps[1]:g} Hz); {choices}, or change the protocol's time steps{hint}")
    return {dt: round(1.0 / (control_hz * dt)) for dt in steps}


@dataclasses.dataclass(frozen=True)
class EpisodeSettings:
    """Episode numbers that are not part of the physics protocol.

    Attributes:
        control_hz: Policy rate [Hz]; each control step runs ``1 / (control_hz * timestep_s)``
            physics steps, which must be a whole number at both of the protocol's rates
            (``Protocol.grasp_timestep_s``, 125 Hz, in the grasp phase; ``Protocol.timestep_s``,
            250 Hz): 125, 25, 5 or 1 Hz with the default protocol (50 Hz needs
            ``Protocol(grasp_timestep_s=0.004)``).
        jitter_m: Half-width of the uniform jitter of the object position [m].
        jitter_deg: Half-width of the uniform jitter of the object orientation, about a random
            axis [deg].
        pushed_away_m: During the grasp phase, an object displaced this far from its start has
            been knocked away: the episode ends [m].
        num_edges: Friction-cone edges for Q1 [-].
    """

    control_hz: float = 25.0
    jitter_m: float = 0.002
    jitter_deg: float = 3.0
    pushed_away_m: float = 0.05
    num_edges: int = 8

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class ContactScore:
    """The grasp as formed: contacts, regions, signature verdict and quality.

    Attributes:
        regions: Labels of the hand regions in contact (sorted, unique).
        in_contact: (R,) bool over the hand's label vocabulary.
        signature_matched: The type's contact signature holds (thumb position included).
        signature_reasons: Why not, one line each (empty when matched).
        thumb_abducted: Thumb abducted per the hand's metadata (None for a thumbless hand).
        q1: Ferrari-Canny Q1 of the contacts as point contacts (0 if not force closure): the
            figure other tools report.
        num_contacts: Contact points found.
        total_normal_force_n: Sum of the contact normal forces [N].
        max_penetration_m: Largest hand-object penetration [m] (0 if none).
        required_force_n: Per required group of the signature (in its order), the total normal
            force on the group's labels in contact [N] (``Protocol.required_min_force_n``).
        along_deg: ``(finger, angle)`` per entry of the signature's ``along``: the finger's angle
            to the object's long axis [deg] (NaN when the hand has no such finger); empty for
            most types.
        q1_soft: Q1 of the same contacts as soft fingers, with the torsional friction the
            simulator gives them (``Protocol.hand_torsional_friction_m``): > 0 for a held
            two-finger pinch, whose point-contact Q1 is 0.
    """

    regions: tuple[str, ...]
    in_contact: NDArray[np.bool_]
    signature_matched: bool
    signature_reasons: tuple[str, ...]
    thumb_abducted: bool | None
    q1: float
    num_contacts: int
    total_normal_force_n: float
    max_penetration_m: float
    required_force_n: tuple[float, ...] = ()
    along_deg: tuple[tuple[str, float], ...] = ()
    q1_soft: float = 0.0


@dataclasses.dataclass(frozen=True)
class EpisodeResult:
    """The verdict of one trial.

    Attributes:
        grasp_id: Taxonomy id.
        achieved: Held in every direction, signature matched, penetration and joint-limit
            excess within limits.
        held: Survived the disturbance protocol (False when it was not run).
        evaluated: Whether the disturbance protocol ran (not when the object was knocked away,
            nor, without ``push_failed``, when the grasp had already failed).
        score: The grasp as formed (:class:`ContactScore`).
        disturbance: ``DisturbanceResult.to_dict()`` or None.
        failure_reasons: Why it failed, most basic first (empty when achieved).
        initial_penetration_m: Hand-object penetration right after reset, before any step [m].
        max_joint_excess_deg: Largest excess of a revolute joint (mimic joints included) past its
            URDF limit when the grasp was scored and, if they ran, at the end of the
            disturbances [deg].
        max_joint_excess_m: The same for prismatic joints [m] (0 for a hand without any).
        settle_translation_m: How far the object moved during the settle, from its release to
            the start of the pushes [m] (world frame; 0 when the protocol did not run). Recorded,
            not judged: the pushes' 2 cm budget counts from the end of the settle.
        settle_rotation_deg: How far it turned during the settle [deg].
    """

    grasp_id: str
    achieved: bool
    held: bool
    evaluated: bool
    score: ContactScore
    disturbance: dict[str, Any] | None
    failure_reasons: tuple[str, ...]
    initial_penetration_m: float = 0.0
    max_joint_excess_deg: float = 0.0
    max_joint_excess_m: float = 0.0
    settle_translation_m: float = 0.0
    settle_rotation_deg: float = 0.0

    @property
    def failure_reason(self) -> str:
        """All reasons in one line ("" when achieved)."""
        return "; ".join(self.failure_reasons)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        s = self.score
        return {
            "grasp_id": self.grasp_id,
            "achieved": self.achieved,
            "held": self.held,
            "evaluated": self.evaluated,
            "signature_matched": s.signature_matched,
            "thumb_abducted": s.thumb_abducted,
            "q1": s.q1,
            "q1_soft": s.q1_soft,
            "num_contacts": s.num_contacts,
            "total_normal_force_n": s.total_normal_force_n,
            "required_force_n": list(s.required_force_n),
            # JSON has no NaN: a finger the hand lacks is null
            "along_deg": {finger: (None if math.isnan(v) else v) for finger, v in s.along_deg},
            "max_penetration_m": s.max_penetration_m,
            "initial_penetration_m": self.initial_penetration_m,
            "max_joint_excess_deg": self.max_joint_excess_deg,
            "max_joint_excess_m": self.max_joint_excess_m,
            "settle_translation_m": self.settle_translation_m,
            "settle_rotation_deg": self.settle_rotation_deg,
            "contact_regions": list(s.regions),
            "failure_reasons": list(self.failure_reasons),
            "disturbance": self.disturbance,
        }


class GraspEpisode:
    """Runs grasp trials of one hand in its own PyBullet world.

    Args:
        hand: A :class:`~handsim.hand.Hand`, a shipped hand's name or a hand folder.
        protocol: The evaluation protocol.
        settings: Control rate, jitter and other episode numbers.
        wrist: ``"fixed"`` (the protocol's fixed wrist at the world origin) or ``"free"`` (the
            root link held by a constraint the caller moves with :meth:`set_wrist_target`,
            capped at ``Protocol.wrist_max_force_n``; the object on no fixture).
        visuals: Load visual shapes (needed only to render; the physics is the same without,
            and resets are about twice as fast).

    Raises:
        ConfigurationError: ``control_hz`` does not divide the physics rate, or an unknown
            ``wrist`` mode.
    """

    def __init__(
        self,
        hand: Hand | str | Path = DEFAULT_HAND,
        protocol: Protocol = DEFAULT_PROTOCOL,
        settings: EpisodeSettings = EpisodeSettings(),
        *,
        wrist: str = "fixed",
        visuals: bool = True,
    ) -> None:
        if wrist not in WRIST_MODES:
            raise ConfigurationError("GraspEpisode(wrist=...): " + suggest(str(wrist), WRIST_MODES, "wrist mode"))
        self.hand = hand if isinstance(hand, Hand) else load_hand(hand)
        self.protocol = protocol
        self.settings = settings
        self.wrist = wrist
        self.visuals = bool(visuals)
        self._substeps = _substeps(settings.control_hz, protocol)
        self.grasp_steps = max(1, int(round(protocol.grasp_duration_s * settings.control_hz)))
        self.tree = load_urdf(self.hand.urdf_path)
        self.joint_names = self.tree.joint_names
        # Link frames come from every movable joint as measured: for a hand with mimic joints a
        # tree in which they are free columns (the same links and order), else the tree itself.
        self._frame_tree = self.tree if not self.tree.mimic_joint_names else _released_tree(self.hand.urdf_path)
        self.movable_joint_names: tuple[str, ...] = self._frame_tree.joint_names
        self._movable_lower = np.array([self.hand.joint_limits[j].lower for j in self.movable_joint_names])
        self._movable_upper = np.array([self.hand.joint_limits[j].upper for j in self.movable_joint_names])
        # A prismatic joint's excess is a length [m], a revolute one's an angle: judged apart.
        self._movable_prismatic = np.array(
            [self._frame_tree.joints[j].type == "prismatic" for j in self.movable_joint_names], dtype=bool)
        self.lower = np.array([self.hand.joint_limits[j].lower for j in self.joint_names])
        self.upper = np.array([self.hand.joint_limits[j].upper for j in self.joint_names])
        self.taxonomy = default_taxonomy()
        self.rest = np.clip(self.hand.rest_vector(), self.lower, self.upper)
        self.plans: dict[str, HandGrasp] = load_plans_of(self.hand, tree=self.tree)
        self.labels = self.hand.regions.labels
        self._thumb_col = (
            self.tree.joint_index(self.hand.thumb_abduction.joint) if self.hand.thumb_abduction else None
        )
        self.world = World(protocol, gravity=False)
        self.body: HandBody | None = None
        self.obj: ObjectBody | None = None
        self.grasp: GraspType | None = None
        self.plan: HandGrasp | None = None
        self.control_step = 0
        self._start_xyz = np.zeros(3)
        self.initial_penetration_m = 0.0
        self._hold: int | None = None
        self._hold_generation = -1
        self._compiled: dict[str, CompiledSignature] = {}
        # Reads of the current physics state, keyed by (world generation, physics step): the
        # env's observation, reward and scoring all read the same step.
        self._cache: dict[str, Any] = {}
        self._cache_key: tuple[int, int] = (-1, -1)
        self.wrist_target: tuple[NDArray[np.float64], NDArray[np.float64]] = (
            np.zeros(3), np.array([1.0, 0.0, 0.0, 0.0])
        )

    @property
    def free_wrist(self) -> bool:
        """Whether the wrist is driven by the caller (``wrist="free"``)."""
        return self.wrist == "free"

    # ------------------------------------------------------------------ lifecycle
    def plan_for(self, grasp: GraspType) -> HandGrasp:
        """The hand's plan for a grasp type; without one, the rest pose and the object in front
        of the palm (the trial then fails honestly, with the reason recorded)."""
        if grasp.id in self.plans:
            return self.plans[grasp.id]
        half = max(grasp.object.half_extents())
        return HandGrasp(
            grasp_id=grasp.id,
            object_xyz=np.array([0.09, 0.0, 0.02 + half]),
            object_quat_wxyz=np.array([1.0, 0.0, 0.0, 0.0]),
            preshape=self.rest.copy(),
            close=self.rest.copy(),
            note=_NO_PLAN,
        )

    def reset(self, grasp: GraspType, rng: np.random.Generator) -> None:
        """Start a trial of ``grasp``: fresh world, hand pre-shaped, object placed (jittered)."""
        self.grasp = grasp
        self.plan = self.plan_for(grasp)
        # A fresh world for every trial. (Restoring a snapshot taken after loading the hand is
        # ~10x cheaper, but measured not bit-identical to a fresh world once a compound object
        # such as the ring has been touched; so was keeping the loaded hand and re-creating only
        # the object (reset joints, motors and world time): the ring's trajectory differed from
        # the first step after a few earlier trials. Trial results must not depend on history.)
        self.release_object()
        held = self.protocol.hold_object_during_grasp and not self.free_wrist
        # The solver count is set before any body exists, so the world is built exactly as a
        # fresh one whatever the previous trial switched.
        self.world.reset(
            gravity=False,
            solver_iterations=self.protocol.grasp_solver_iterations if held else self.protocol.solver_iterations,
            timestep_s=self.protocol.grasp_timestep_s if held else self.protocol.timestep_s,
        )
        self.body = HandBody(
            self.world, self.hand.urdf_path, visual=self.visuals, free_wrist=self.free_wrist,
            wrist_max_force=self.protocol.wrist_max_force_n, rest_q=self.rest,
        )
        if self.body.joint_names != self.joint_names or self.body.movable_joint_names != self.movable_joint_names:
            raise SimulationError(
                f"PyBullet's movable joints {self.body.movable_joint_names} (independent: {self.body.joint_names}) "
                f"differ from the kinematics core's {self.movable_joint_names} (independent: {self.joint_names})"
            )
        # PyBullet link index + 1 (the root is -1) -> the kinematics core's link index, for
        # labelling contacts without a name lookup per contact.
        self._tree_link_of_bullet = np.array(
            [self.tree.link_index(self.body.link_name(i)) for i in range(-1, len(self.body.link_names) - 1)], dtype=np.int64
        )
        self.wrist_target = (np.zeros(3), np.array([1.0, 0.0, 0.0, 0.0]))
        s = self.settings
        xyz = self.plan.object_xyz + rng.uniform(-s.jitter_m, s.jitter_m, 3)
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        angle = np.deg2rad(rng.uniform(-s.jitter_deg, s.jitter_deg))
        dq = np.concatenate([[np.cos(angle / 2)], np.sin(angle / 2) * axis])
        quat = quat_normalize(quat_multiply(dq, self.plan.object_quat_wxyz))
        self.obj = spawn_object(self.world, grasp.object.as_spec(), xyz, quat, visual=self.visuals)
        self._hold = None
        if held:
            c = self.world.client
            self._hold = c.createConstraint(
                self.obj.body_id, -1, -1, -1, pybullet.JOINT_FIXED, [0, 0, 0], [0, 0, 0],
                list(map(float, xyz)), childFrameOrientation=list(map(float, quat_wxyz_to_xyzw(quat))),
            )
            c.changeConstraint(self._hold, maxForce=_HOLD_FORCE_N)
            self._hold_generation = self.world.generation
        # The plan's effort caps (a gentler grip for this type) hold for every policy.
        self.body.set_effort(self.plan.effort)
        self.body.reset_joints(self.plan.preshape)
        self.body.set_targets(self.plan.preshape)
        self._cache_key = (-1, -1)
        self._start_xyz = np.asarray(self.obj.pose()[0], dtype=np.float64).copy()
        # A plan whose pre-shape already overlaps the object would start inside it (physics
        # then pops it out): measured before any step, and it fails the trial.
        self.initial_penetration_m = float(self.body.max_penetration(self.obj))
        self.control_step = 0

    def release_object(self) -> None:
        """Let go of the object if the protocol held it in place during the grasp phase; from
        here on the solver runs the protocol's ``solver_iterations``."""
        if self._hold is not None:
            if self.world.generation == self._hold_generation and not self.world.closed:
                self.world.client.removeConstraint(self._hold)
                self.world.set_solver_iterations(self.protocol.solver_iterations)
                self.world.set_timestep(self.protocol.timestep_s)
                if self.body is not None:  # the motors' gain follows the step (HandBody.set_targets)
                    self.body.set_targets(self.body.targets)
            self._hold = None

    @property
    def substeps(self) -> int:
        """Physics steps per control step at the time step now in force (the grasp phase's
        ``Protocol.grasp_timestep_s`` while the fixture holds the object, else ``timestep_s``)."""
        return self._substeps[self.world.timestep_s]

    @property
    def object_held(self) -> bool:
        """Whether the fixture holds the object (the grasp phase with the default protocol)."""
        return self._hold is not None

    def close(self) -> None:
        """Release the physics server."""
        self.world.close()

    # ------------------------------------------------------------------ stepping
    def apply(self, targets: ArrayLike) -> None:
        """Set joint position targets (clipped to the joint limits) and run one control step.

        Raises:
            ConfigurationError: Wrong shape or non-finite targets.
            SimulationError: The object's or a joint's state became non-finite (a physics
                blow-up).
        """
        t = np.asarray(targets, dtype=np.float64)
        if t.shape != (len(self.joint_names),) or not np.isfinite(t).all():
            raise ConfigurationError(
                f"joint targets must be {len(self.joint_names)} finite numbers (joint_names order), got shape "
                f"{t.shape}{'' if np.all(np.isfinite(t)) else ' with non-finite values'}"
            )
        assert self.body is not None and self.obj is not None, "reset() first"
        self.body.set_targets(np.clip(t, self.lower, self.upper))
        self.world.step(self.substeps)
        self.control_step += 1
        self._check_state(f"at control step {self.control_step}")

    def _check_state(self, when: str) -> None:
        """Raise :class:`SimulationError` when the physics blew up (a non-finite object or joint
        state), before any conversion reads the state as if it were an argument."""
        assert self.body is not None
        try:
            self.object_pose()
            self.object_velocity()
            self.movable_joint_state()  # cached: the step's later reads reuse it
            if self.free_wrist:
                self.wrist_pose()
        except SimulationError as exc:
            raise SimulationError(f"{exc} {when}") from None

    def set_wrist_target(self, xyz: ArrayLike, quat_wxyz: ArrayLike) -> None:
        """Drive the free wrist towards a pose from the next control step on.

        Args:
            xyz: Palm (root link) position, (3,) [m], world frame (the palm starts at the origin).
            quat_wxyz: Palm orientation, (4,) (w, x, y, z).

        Raises:
            ConfigurationError: The episode has a fixed wrist, or a bad pose.
        """
        if not self.free_wrist:
            raise ConfigurationError("set_wrist_target: the wrist is fixed; build the episode with wrist='free'")
        assert self.body is not None, "reset() first"
        self.body.set_wrist_target(xyz, quat_wxyz)
        self.wrist_target = (np.array(xyz, dtype=np.float64), quat_normalize(np.asarray(quat_wxyz, dtype=np.float64)))

    # ------------------------------------------------------------------ state of this step
    def _state(self) -> dict[str, Any]:
        """The per-step cache, emptied whenever the world stepped or was reset."""
        key = (self.world.generation, self.world.step_count)
        if key != self._cache_key:
            self._cache = {}
            self._cache_key = key
        return self._cache

    def _excess(self, prismatic: bool) -> tuple[float, str]:
        q, _ = self.movable_joint_state()
        excess = np.maximum(np.maximum(self._movable_lower - q, q - self._movable_upper), 0.0)
        excess = np.where(self._movable_prismatic == prismatic, excess, 0.0)
        i = int(np.argmax(excess)) if excess.size else 0
        return (float(excess[i]), self.movable_joint_names[i]) if excess.size else (0.0, "")

    def joint_excess(self) -> tuple[float, str]:
        """``(deg, joint)``: the revolute (or continuous) joint, mimic joints included, furthest
        past its URDF limit now (``(0.0, <any joint>)`` when none is). Prismatic joints are
        left to :meth:`joint_excess_m`."""
        rad, joint = self._excess(prismatic=False)
        return float(np.degrees(rad)), joint

    def joint_excess_m(self) -> tuple[float, str]:
        """``(m, joint)``: the prismatic joint, mimic joints included, furthest past its URDF
        limit now (``(0.0, <any joint>)`` when none is)."""
        return self._excess(prismatic=True)

    def joint_limit_reasons(self, excess_deg: tuple[float, str] | None = None,
                            excess_m: tuple[float, str] | None = None) -> list[str]:
        """The failure reasons for joints past their limits beyond the protocol's allowance
        (``Protocol.max_joint_excess_deg`` for revolute, ``max_joint_excess_m`` for prismatic).

        Args:
            excess_deg: ``(deg, joint)`` to judge (default :meth:`joint_excess` now).
            excess_m: ``(m, joint)`` to judge (default :meth:`joint_excess_m` now).

        Returns:
            Zero, one or two reasons, e.g. ``"joint index_dip 7.2 deg past its limit > 5.0 deg"``
            or ``"joint jaw_slide 20.0 mm past its limit > 2.0 mm"``.
        """
        deg, rjoint = self.joint_excess() if excess_deg is None else excess_deg
        m, pjoint = self.joint_excess_m() if excess_m is None else excess_m
        p = self.protocol
        reasons = []
        if deg > p.max_joint_excess_deg:
            reasons.append(f"joint {rjoint} {deg:.1f} deg past its limit > {p.max_joint_excess_deg:.1f} deg")
        if m > p.max_joint_excess_m:
            reasons.append(f"joint {pjoint} {m * 1e3:.1f} mm past its limit > {p.max_joint_excess_m * 1e3:.1f} mm")
        return reasons

    def _read_once(self, key: str, read: Callable[[], tuple[NDArray[np.float64], NDArray[np.float64]]]
                   ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """``read()``'s pair of arrays, read once per physics step and handed out read-only."""
        cache = self._state()
        if key not in cache:
            a, b = read()
            a.flags.writeable = b.flags.writeable = False
            cache[key] = (a, b)
        return cache[key]

    def movable_joint_state(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """``(q (N,), qd (N,))`` of every movable joint, mimic joints included, in
        :attr:`movable_joint_names` order [rad, rad/s] (read-only; the same arrays as
        :meth:`joint_state` for a hand without mimic joints)."""
        if self._frame_tree is self.tree:
            return self.joint_state()
        assert self.body is not None
        return self._read_once("movable", self.body.movable_joint_state)

    def joint_state(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """``(q (n,), qd (n,))`` joint positions and velocities now [rad, rad/s] (read-only)."""
        assert self.body is not None
        return self._read_once("joints", self.body.joint_state)

    def object_pose(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """``(xyz (3,) [m], quat_wxyz (4,))`` of the object now, world frame (read-only)."""
        assert self.obj is not None
        return self._read_once("pose", self.obj.pose)

    def object_velocity(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """``(linear (3,) [m/s], angular (3,) [rad/s])`` of the object now, world frame."""
        assert self.obj is not None
        return self._read_once("velocity", self.obj.velocity)

    def wrist_pose(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """``(xyz (3,) [m], quat_wxyz (4,))`` of the palm (root link) now, world frame."""
        cache = self._state()
        if "wrist" not in cache:
            if self.free_wrist:
                assert self.body is not None
                xyz, quat = self.body.wrist_pose()
            else:  # a fixed base never moves from where it was loaded
                xyz, quat = np.zeros(3), np.array([1.0, 0.0, 0.0, 0.0])
            xyz.flags.writeable = quat.flags.writeable = False
            cache["wrist"] = (xyz, quat)
        return cache["wrist"]

    def link_frames(self) -> NDArray[np.float64]:
        """(L, 4, 4) link frames in the palm (root link) frame now, kinematics-core FK of the
        measured positions of every movable joint (mimic joints too), ``tree.link_names`` order
        (read-only)."""
        cache = self._state()
        if "frames" not in cache:
            frames = np.ascontiguousarray(self._frame_tree.forward_kinematics(self.movable_joint_state()[0]))
            frames.flags.writeable = False
            cache["frames"] = frames
        return cache["frames"]

    def contacts(self) -> Contacts:
        """Hand-object contacts of the last physics step (see :meth:`HandBody.contacts`)."""
        cache = self._state()
        if "contacts" not in cache:
            assert self.body is not None and self.obj is not None
            cache["contacts"] = self.body.contacts(self.obj)
        return cache["contacts"]

    @property
    def grasp_phase_over(self) -> bool:
        """True once the grasp phase's control steps have run."""
        return self.control_step >= self.grasp_steps

    def object_displacement(self) -> float:
        """Distance of the object from where it was placed [m], relative to the palm.

        With a fixed wrist the palm is the world frame. With a free wrist it is measured in the
        moving palm's frame (the palm starts at the origin), so a hand carrying its object has
        not knocked it away.
        """
        assert self.obj is not None
        xyz = self.object_pose()[0]
        if self.free_wrist:
            palm_xyz, palm_quat = self.wrist_pose()
            xyz = (xyz - palm_xyz) @ quat_to_matrix(palm_quat)
        return float(np.linalg.norm(xyz - self._start_xyz))

    def pushed_away(self) -> bool:
        """The object was knocked away during the grasp phase."""
        return self.object_displacement() > self.settings.pushed_away_m

    def joint_positions(self) -> NDArray[np.float64]:
        """(n,) current joint positions [rad]."""
        return self.joint_state()[0].copy()

    # ------------------------------------------------------------------ scoring
    def quality(self, contacts: Contacts | None = None, soft: bool = False) -> float:
        """Ferrari-Canny Q1 of the current hand-object contacts (0 without force closure).

        Friction is the object's times the hand's; torques are divided by the object's largest
        half-extent; wrenches are taken about the object's centre of mass.

        Args:
            contacts: The contacts (default: the current ones).
            soft: Soft-finger contacts: each also resists a twist about its normal up to
                ``hand_torsional_friction_m`` x the object's friction x its normal force, as
                PyBullet combines the hand's spinning friction with the object's friction.
                Default: point contacts.
        """
        assert self.body is not None and self.obj is not None and self.grasp is not None
        # Q1 of this step's own contacts is computed once per physics state: the env's reward
        # and the scoring of the last step (``evaluate(run_protocol=False)``) both ask for it.
        cache = self._state() if contacts is None else None
        key = "q1_soft" if soft else "q1"
        if cache is not None and key in cache:
            return cache[key]
        contacts = self.contacts() if contacts is None else contacts
        if not len(contacts):
            return 0.0
        friction = self.grasp.object.friction
        q1 = float(
            epsilon_quality(
                contacts.points,
                contacts.normals,
                friction * self.protocol.hand_lateral_friction,
                num_edges=self.settings.num_edges,
                torque_scale=max(self.grasp.object.half_extents()),
                center=np.asarray(self.object_pose()[0]),
                torsion=friction * self.protocol.hand_torsional_friction_m if soft else None,
            )
        )
        if cache is not None:
            cache[key] = q1
        return q1

    def score(self, compute_q1: bool = True) -> ContactScore:
        """Score the current contacts: regions, signature, thumb, Q1, penetration.

        Args:
            compute_q1: Compute Q1, point and soft (a few ms each for one grasp); if False the
                score's ``q1`` and ``q1_soft`` are 0.
        """
        assert self.body is not None and self.obj is not None and self.grasp is not None
        contacts, in_contact, thumb, along, match = self._match_signature()
        n = len(contacts)
        q1 = self.quality() if compute_q1 and n else 0.0  # this step's contacts, as above
        q1_soft = self.quality(soft=True) if compute_q1 and n else 0.0
        matched = bool(match.matched[0])
        reasons = tuple(match.reasons(0)) if not matched else ()
        penetration = float(self.body.max_penetration(self.obj))
        regions = tuple(label for label, on in zip(self.labels, in_contact) if on)
        return ContactScore(
            regions=regions,
            in_contact=in_contact,
            signature_matched=matched,
            signature_reasons=reasons,
            thumb_abducted=thumb,
            q1=q1,
            q1_soft=q1_soft,
            num_contacts=n,
            total_normal_force_n=contacts.total_normal_force,
            max_penetration_m=penetration,
            required_force_n=tuple(float(f) for f in match.group_force_b[0]) if match.group_force_b is not None else (),
            along_deg=tuple((a.finger, float(v)) for a, v in zip(self.grasp.signature.along, along)),
        )

    def along_angles(self) -> NDArray[np.float64]:
        """(A,) the angle [deg] between each finger of the grasp's ``signature.along`` and the
        object's long axis now; NaN for a finger the hand does not have.

        A finger's direction is the line from its first segment's link origin (the joint at the
        palm) to its tip link, from :meth:`link_frames`; the object's long axis is its pose's
        column :meth:`~handsim.grasps.TestObject.long_axis`, taken into the palm frame. Lines
        have no sign, so the angle is in [0, 90].
        """
        assert self.grasp is not None
        specs = self.grasp.signature.along
        out = np.full(len(specs), np.nan)
        if not specs:
            return out
        axis_index = self.grasp.object.long_axis()
        assert axis_index is not None  # the grasp file's loader refuses 'along' otherwise
        _, quat = self.object_pose()
        axis = quat_to_matrix(quat)[:, axis_index]
        if self.free_wrist:  # world -> palm frame
            axis = quat_to_matrix(self.wrist_pose()[1]).T @ axis
        frames = self.link_frames()
        for i, spec in enumerate(specs):
            finger = self.hand.fingers.get(spec.finger)
            if finger is None or not finger.links:
                continue
            base = frames[self.tree.link_index(finger.links[0])][:3, 3]
            tip = frames[self.tree.link_index(finger.tip_link)][:3, 3]
            direction = tip - base
            norm = float(np.linalg.norm(direction))
            if norm > 0.0:
                cosine = min(1.0, abs(float(direction @ axis)) / (norm * float(np.linalg.norm(axis))))
                out[i] = math.degrees(math.acos(cosine))
        return out

    def signature_match(self) -> SignatureMatch:
        """The contact signature's verdict on this step's contacts as :meth:`score` judges it
        (one trial: arrays with a batch axis of 1; ``contact[0]`` is the score's ``in_contact``);
        judged once per physics state."""
        cache = self._state()
        if "match" not in cache:
            self._match_signature()
        return cache["match"]

    def _match_signature(
        self,
    ) -> tuple[Contacts, NDArray[np.bool_], bool | None, NDArray[np.float64], SignatureMatch]:
        """Judge this step's contacts against the grasp type's signature, the part of
        :meth:`score` the env needs every step (no Q1, no penetration query, no reasons).

        Returns:
            ``(contacts, in_contact (R,), thumb_abducted, along_deg (A,), match)``; ``match`` is
            also kept for :meth:`signature_match`.
        """
        assert self.grasp is not None
        contacts = self.contacts()
        q = self.joint_state()[0]
        in_contact = np.zeros(len(self.labels), dtype=bool)
        label_force = np.zeros(len(self.labels), dtype=np.float64)
        if len(contacts):
            ids = self._label_ids(contacts)
            in_contact[ids] = True
            # PyBullet reports >= 0 normal forces; clip a stray negative zero.
            label_force = np.bincount(ids, weights=np.maximum(contacts.normal_forces, 0.0), minlength=len(self.labels))
        thumb = None
        if self._thumb_col is not None:
            thumb = bool(self.hand.thumb_abduction.is_abducted(float(q[self._thumb_col])))
        compiled = self.compiled_signature(self.grasp)
        along = self.along_angles()
        match = compiled.match(
            in_contact[None], None if thumb is None else np.array([thumb]),
            label_force[None], self.protocol.required_min_force_n, along[None],
        )
        self._state()["match"] = match
        return contacts, in_contact, thumb, along, match

    def _under_push(self, depths: dict[str, float], direction: str) -> str | None:
        """What breaks the type at the end of a push, or None: the forbidden regions in contact
        (``Protocol.check_forbidden_under_push``) and, if judged, a penetration over the limit
        (``Protocol.check_penetration_under_push``; its value goes into ``depths`` either way)."""
        problems: list[str] = []
        if self.protocol.check_forbidden_under_push:
            problems.extend(self.signature_match().forbidden_reasons(0))
        assert self.body is not None and self.obj is not None
        depth = float(self.body.max_penetration(self.obj))  # a query: the physics is untouched
        depths[direction] = depth
        limit = self.protocol.max_penetration_m
        if self.protocol.check_penetration_under_push and depth > limit:
            problems.append(f"penetration {over_limit(depth * 1e3, limit * 1e3, 'mm')}")
        return "; ".join(problems) or None

    def compiled_signature(self, grasp: GraspType) -> CompiledSignature:
        """The grasp type's contact signature compiled against this hand's labels (cached)."""
        if grasp.id not in self._compiled:
            self._compiled[grasp.id] = CompiledSignature.compile(grasp.signature, self.labels)
        return self._compiled[grasp.id]

    def _label_ids(self, contacts: Contacts) -> NDArray[np.int64]:
        """(N,) region label ids of the contacts (the math of
        :func:`handsim.scoring.label_contacts`, on this step's cached link frames)."""
        links = self._tree_link_of_bullet[contacts.link_indices + 1]
        pts = contacts.points
        if self.free_wrist:  # world -> palm frame (a fixed palm sits at the world origin)
            xyz, quat = self.wrist_pose()
            pts = (pts - xyz) @ quat_to_matrix(quat)
        frames = self.link_frames()[links]  # (N, 4, 4)
        local = np.einsum("cji,cj->ci", frames[:, :3, :3], pts - frames[:, :3, 3])
        # Indices into the tree's link list: classify caches its per-link table for that list.
        return self.hand.regions.classify(local, links, link_names=self.tree.link_names)

    def evaluate(self, run_protocol: bool = True, push_failed: bool = False) -> EpisodeResult:
        """End the grasp phase and judge the grasp.

        With ``run_protocol`` (the benchmark): release the object, let it settle with gravity
        for ``settle_s``, score the grasp as it then holds (regions, signature, thumb, Q1,
        penetration), and run the six-direction disturbance protocol. Without (RL speed): release
        and score the contacts of the last step, no physics test.

        With ``push_failed`` False, a grasp that has already failed when it is scored after the
        settle (no plan, penetration, a signature check or a joint past its limit) is not pushed:
        no push can make it succeed, so the verdict and its reasons are those of a full run,
        less the push's own line; ``held`` is False and ``disturbance`` None, as for an object
        knocked away. The protocol itself stops at its first failed direction for the same
        reason. True pushes it anyway, to see whether the wrong grasp holds.
        """
        assert self.grasp is not None and self.obj is not None
        self.release_object()
        knocked = self.pushed_away()
        settle_m = settle_deg = 0.0
        if run_protocol and not knocked:
            released_xyz, released_quat = (np.array(v) for v in self.object_pose())
            if self.free_wrist:  # the wrist holds still under gravity as a fixed one would
                self.body.compensate_gravity(True)
            self.world.set_gravity(True)
            self.world.step(self.protocol.steps(self.protocol.settle_s))
            self._check_state("during the settle")
            xyz, quat = self.object_pose()
            settle_m = float(np.linalg.norm(xyz - released_xyz))
            settle_deg = float(np.degrees(quat_angle(released_quat, quat)))
        score = self.score()
        excess = self.joint_excess()
        excess_m = self.joint_excess_m()
        reasons: list[str] = []
        no_plan = self.plan is not None and self.plan.note == _NO_PLAN
        if no_plan:
            reasons.append(f"hand {self.hand.name!r} has no grasp data for {self.grasp.id!r}")
        limit = self.protocol.max_penetration_m
        if self.initial_penetration_m > limit:
            reasons.append(
                f"the pre-shape starts inside the object (penetration {self.initial_penetration_m * 1e3:.1f} mm "
                f"at reset > {limit * 1e3:.1f} mm)"
            )
        if score.max_penetration_m > limit:
            reasons.append(f"penetration {score.max_penetration_m * 1e3:.1f} mm > {limit * 1e3:.1f} mm")
        reasons.extend(score.signature_reasons)
        disturbance = None
        held = pushed = False
        limit_reasons = self.joint_limit_reasons(excess, excess_m)
        if knocked:
            reasons.append(f"object knocked away during the grasp (moved {self.object_displacement() * 100:.1f} cm)")
        elif run_protocol and (push_failed or not (reasons or limit_reasons)):
            pushed = True
            depths: dict[str, float] = {}
            result = run_disturbance(self.world, self.obj, self.protocol, check=functools.partial(self._under_push, depths))
            disturbance = result.to_dict()
            disturbance["penetration_m"] = {d: depths.get(d) for d in self.protocol.directions}
            held = result.held
            if not held:
                reasons.append(result.reason)
            excess = max(excess, self.joint_excess())
            excess_m = max(excess_m, self.joint_excess_m())
            limit_reasons = self.joint_limit_reasons(excess, excess_m)  # judged again after the pushes
        reasons.extend(limit_reasons)
        achieved = bool(
            run_protocol
            and not no_plan  # a type the hand has no plan for is failed, whatever a policy did
            and held
            and score.signature_matched
            and score.max_penetration_m <= limit
            and self.initial_penetration_m <= limit
            and not limit_reasons
        )
        if not run_protocol and not reasons and score.q1 <= 0.0:
            reasons.append("not force closure (Q1 = 0)")
        return EpisodeResult(
            grasp_id=self.grasp.id,
            achieved=achieved,
            held=held,
            evaluated=pushed,
            score=score,
            disturbance=disturbance,
            failure_reasons=tuple(reasons) if not achieved else (),
            initial_penetration_m=self.initial_penetration_m,
            max_joint_excess_deg=excess[0],
            max_joint_excess_m=excess_m[0],
            settle_translation_m=settle_m,
            settle_rotation_deg=settle_deg,
        )
