"""Batched grasp optimisation for one grasp type (pure numpy, on the kinematics core).

The decision variables of a candidate are the object pose in the palm frame (position and a
rotation vector) and the hand's joint configuration at the moment of contact, ``x = (p, r, q)``
of size ``6 + n``. Its cost, in metres, is

* for every required region group of the type's contact signature: the best point of that
  group's surface samples, scored by its gap to the object surface plus how far its outward
  normal is from facing the object (``W_FACE (1 + n_hand . n_object)``);
* ``W_PENETRATION`` times the deepest hand sample inside the object;
* ``W_FORBIDDEN`` times how far any sample of a forbidden region comes inside ``FORBIDDEN_MARGIN_M``
  (``SHARED_LINK_FORBIDDEN_MARGIN_M``, none, for one on a link that also carries a required
  region: the back of a thumb whose pad must touch);
* ``W_SELF`` times the overlap of capsules of different fingers (PyBullet collides the hand
  with itself);
* ``W_BALANCE`` times the distance from the origin to the convex hull of the contact normals
  (0 when the squeeze of the contacts can cancel out);

with the joints inside their limits (a joint without limits, ``continuous``: one turn about its
rest angle, :func:`search_bounds`) and the thumb abduction joint on the side the type asks
for (``hand.json`` ``thumb_abduction``; by construction of the sampling). The minimiser is the
cross-entropy method (R. Rubinstein, "The cross-entropy method for combinatorial and continuous
optimization", 1999): ``restarts`` independent Gaussian populations, evaluated together in one
batch per iteration, each refit to its elite samples; the best solutions are then refined by
a local descent on forward-difference gradients (:func:`refine`, one batch per step). Among the best candidates the
Ferrari-Canny Q1 of their contact points (:func:`handsim.scoring.epsilon_quality`) breaks ties.

The fingers keep ``self_margin`` apart at contact; :func:`handsim.synth.synthesize.synthesize_type`
runs one optimisation per margin of :attr:`SynthSettings.self_margins`.

A solution becomes a plan (:func:`plan_from_solution`): the closing direction is the joint
direction that brings the contact points onto the object (finite differences of their
distances on the fast FK); the pre-shape opens along it until the hand is clear of the object,
and the closing targets go past the surface along it, so that the effort-capped motors squeeze.
:func:`closing_check` simulates the scripted close of a plan on the fast FK (each finger stops
at its first touch) and scores the contacts it ends with by the motor-wrench margin
(:mod:`handsim.synth.wrench`); ranking by it is optional (``SynthSettings.closing_rank``).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from numpy.typing import NDArray

from handsim.errors import ConfigurationError
from handsim.grasps import GraspType
from handsim.hand import Hand
from handsim.kinematics import KinematicTree
from handsim.scoring import epsilon_quality
from handsim.scoring.signature import CompiledSignature
from handsim.synth.handmodel import HandSurface
from handsim.synth.sdf import ObjectSDF
from handsim.synth.wrench import motor_wrench_margin
from handsim.tolerances import DEFAULT_PROTOCOL

__all__ = [
    "DEFAULT_SETTINGS",
    "Candidate",
    "ClosingCheck",
    "GraspProblem",
    "SynthSettings",
    "closing_check",
    "optimize",
    "plan_from_solution",
    "refine",
    "rotvec_to_matrix",
    "rotvec_to_quat",
    "search_bounds",
]

_F = NDArray[np.float64]

#: Weight of a contact normal's misalignment, per unit of ``1 + n_hand . n_object`` [m].
W_FACE = 0.006
#: Weight of the deepest hand-object penetration [-].
W_PENETRATION = 10.0
#: Weight of a forbidden region's intrusion inside the margin [-].
W_FORBIDDEN = 3.0
#: Forbidden regions must stay this far from the object [m].
FORBIDDEN_MARGIN_M = 0.008
#: ... except those on a link that also carries a required region, which only stay out of it [m].
SHARED_LINK_FORBIDDEN_MARGIN_M = 0.0
#: Hand samples may sit this deep in the object before penetration is charged [m]
#: (a contact point on the surface of a coarse sampling).
PENETRATION_SLACK_M = 0.0005
#: Links closer than this to the object count as contacts for Q1 [m].
Q1_CONTACT_M = 0.002
#: Weight of the overlap of two fingers' capsules (PyBullet collides the hand with itself) [-].
W_SELF = 5.0
#: Fingers keep this gap between them at contact, by default [m] (:attr:`SynthSettings.self_margins`).
SELF_MARGIN_M = 0.004
#: Weight of the distance from the origin to the hull of the contact normals [m per unit]:
#: contacts whose squeeze does not cancel push the object away when the fixture lets go.
W_BALANCE = 0.01
#: Damping of the least-squares closing direction [m].
_DLS_DAMPING_M = 0.01
#: Margin kept from the thumb's abducted/adducted threshold [rad].
THUMB_MARGIN_RAD = 0.08


@dataclasses.dataclass(frozen=True)
class SynthSettings:
    """Numbers of the optimisation and the plan derivation.

    Attributes:
        restarts: Independent CEM populations (random restarts) per type.
        population: Samples per population per iteration.
        elites: Samples per population kept to refit it.
        iterations: CEM iterations.
        smoothing: Weight of the new elite statistics in the refit [-].
        refine_count: Best CEM solutions refined by local descent (:func:`refine`).
        refine_steps: Descent iterations of the refinement (0, the default, skips it: measured on
            palmar, medium wrap and lateral, 30 steps lower the best cost by 0.2-3 mm, 5-10 %,
            for 50 % more optimisation time).
        clearance_m: The pre-shape keeps every hand sample this far from the object [m]
            (more than the benchmark's 2 mm / 3 deg placement jitter moves the surface).
        squeeze_rad: How far the closing targets go past the contact configuration, along the
            closing direction (largest joint component) [rad].
        squeezes: The squeezes each verified solution is tried with, in order [rad] (on 12
            near-miss types, 0.6 held the most first seeds, 0.9 the only lateral tripod, 0.1
            none).
        tie_m: Candidates within this much of the best cost are ordered by Q1 [m].
        self_margins: The gaps the fingers keep between them at contact [m]: one optimisation
            per margin, their candidates verified in turn. 1 mm lets the thumb and the index
            close into each other before both reach the object (PyBullet collides them):
            on 12 near-miss types (top 8 candidates, the first benchmark seed), 4 mm formed the
            signature after the settle 3-6 times out of 96 against once with 1 mm (8 mm: no
            better), and made lateral tripod 2/3; but tripod variation is verified only with 1 mm.
        closing_rank: Order the verified candidates by the kinematic closing check and the
            motor-wrench margin first (:func:`closing_check`), cost second. Off by default:
            measured on 10 near-miss types of the default hand (tip pinch, lateral, tripod,
            prismatic 2 finger, sphere 3 finger, stick, ring, lateral tripod, palmar, small
            diameter), the top 8 in this order formed the signature after the settle on the
            first benchmark seed as often as the cost order (1 of 80 either way) and verified
            none; the objects drop at release for reasons the kinematics does not see (a
            finger stopped short by another in physics, contact overlap).
    """

    restarts: int = 32
    population: int = 16
    elites: int = 4
    iterations: int = 24
    refine_count: int = 8
    refine_steps: int = 0
    smoothing: float = 0.7
    clearance_m: float = 0.006
    squeeze_rad: float = 0.3
    squeezes: tuple[float, ...] = (0.6, 0.3, 0.9)
    tie_m: float = 0.002
    closing_rank: bool = False
    self_margins: tuple[float, ...] = (0.004, 0.001)


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One optimised grasp and the plan derived from it.

    Attributes:
        cost: Its cost [m] (0 = every group touching with facing pads, nothing violated).
        q1: Ferrari-Canny Q1 of its contact points (one per required group) [-].
        object_xyz: (3,) object position in the palm frame [m].
        object_quat_wxyz: (4,) object orientation in the palm frame.
        contact_q: (n,) joint configuration at contact [rad].
        preshape: (n,) pre-shape targets [rad].
        close: (n,) closing targets [rad].
        clearance_m: Smallest hand-object distance at the pre-shape [m].
        terms: The cost's terms by name [m].
        solution: (6 + n,) the optimised vector it was derived from.
        margin: Motor-wrench margin after the simulated close (NaN when not checked) [-].
    """

    cost: float
    q1: float
    object_xyz: _F
    object_quat_wxyz: _F
    contact_q: _F
    preshape: _F
    close: _F
    clearance_m: float
    terms: dict[str, float]
    solution: _F
    margin: float = math.nan


#: The default optimisation numbers.
DEFAULT_SETTINGS = SynthSettings()


def rotvec_to_matrix(r: _F) -> _F:
    """Rotation vectors (B, 3) [rad] -> (B, 3, 3) rotation matrices (Rodrigues)."""
    r = np.asarray(r, dtype=np.float64)
    theta = np.linalg.norm(r, axis=-1)
    safe = np.where(theta > 1e-12, theta, 1.0)
    k = r / safe[..., None]
    kx, ky, kz = k[..., 0], k[..., 1], k[..., 2]
    zero = np.zeros_like(kx)
    kmat = np.stack([np.stack([zero, -kz, ky], -1), np.stack([kz, zero, -kx], -1), np.stack([-ky, kx, zero], -1)], -2)
    s, c = np.sin(theta)[..., None, None], np.cos(theta)[..., None, None]
    return np.eye(3) + s * kmat + (1 - c) * (kmat @ kmat)


def rotvec_to_quat(r: _F) -> _F:
    """Rotation vector (3,) [rad] -> unit quaternion (4,) w, x, y, z."""
    r = np.asarray(r, dtype=np.float64)
    theta = float(np.linalg.norm(r))
    if theta < 1e-12:
        return np.array([1.0, 0.0, 0.0, 0.0])
    axis = r / theta
    return np.concatenate([[math.cos(theta / 2)], math.sin(theta / 2) * axis])


def _hull_distance(normals: _F, iterations: int = 24) -> _F:
    """Distance from the origin to the convex hull of unit contact normals, (B, C, 3) -> (B,).

    0 when the contacts can squeeze the object with forces that cancel (the fixture that holds
    it while the hand closes lets go without a kick); Frank-Wolfe on the weight simplex.
    """
    bsz, c, _ = normals.shape
    w = np.full((bsz, c), 1.0 / c)
    rows = np.arange(bsz)
    for it in range(iterations):
        g = np.einsum("bc,bck->bk", w, normals)
        s_idx = np.argmin(np.einsum("bck,bk->bc", normals, g), axis=1)
        step = 2.0 / (it + 2.0)
        w *= 1.0 - step
        w[rows, s_idx] += step
    return np.linalg.norm(np.einsum("bc,bck->bk", w, normals), axis=1)


def search_bounds(hand: Hand, tree: KinematicTree) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The joint range the synthesis samples and clips to, in the tree's joint order.

    The URDF limits, except on joints without them: a ``continuous`` joint (or a revolute one
    whose limits are infinite) is searched over ``[rest - pi, rest + pi]`` about its rest angle
    (``hand.json`` ``rest_pose``, default 0), one full turn, which holds every distinct angle.
    A prismatic joint has no such natural range, so one without finite limits is refused. A
    joint that mimic joints follow is narrowed to where they stay within their own limits.

    Args:
        hand: The hand (its ``joint_limits`` and ``rest_pose``).
        tree: Its kinematic tree.

    Returns:
        ``(lower, upper)``, each (n,) [rad or m], finite.

    Raises:
        ConfigurationError: A prismatic joint without finite limits; the message names it.
    """
    lower = np.array([hand.joint_limits[j].lower for j in tree.joint_names], dtype=np.float64)
    upper = np.array([hand.joint_limits[j].upper for j in tree.joint_names], dtype=np.float64)
    for i, name in enumerate(tree.joint_names):
        if math.isfinite(lower[i]) and math.isfinite(upper[i]):
            continue
        if tree.joints[name].type == "prismatic":
            raise ConfigurationError(
                f"synth: joint {name!r} of hand {hand.name!r} is prismatic without finite limits "
                f"([{lower[i]}, {upper[i]}]); expected <limit lower upper> in {hand.urdf_path}")
        rest = float(hand.rest_pose.get(name, 0.0))
        if not math.isfinite(lower[i]):
            lower[i] = rest - math.pi
        if not math.isfinite(upper[i]):
            upper[i] = rest + math.pi
    # A master joint is searched only where its mimic joints stay inside their own limits (the
    # physics clips a mimic joint's target to them, and the protocol fails joints past them).
    for name in tree.mimic_joint_names:
        spec = tree.joints[name]
        master, mult, off = tree.mimic_drive(name)
        if mult == 0.0 or not (math.isfinite(spec.lower) and math.isfinite(spec.upper)):
            continue
        ends = sorted(((spec.lower - off) / mult, (spec.upper - off) / mult))
        i = tree.joint_index(master)
        lo, hi = max(lower[i], ends[0]), min(upper[i], ends[1])
        if lo <= hi:  # else the URDF's ranges disagree: keep the master's own
            lower[i], upper[i] = lo, hi
    return lower, upper


class GraspProblem:
    """The cost of grasp candidates of one type on one hand.

    Args:
        hand: The hand.
        tree: Its kinematic tree.
        surface: Its labelled surface samples.
        grasp: The grasp type.
        friction: Friction coefficient for Q1 (object times hand) [-].
        self_margin: Gap the fingers keep between them at contact [m].

    Attributes:
        feasible: False when the hand has no region for some required group (e.g. a thumb
            group on a thumbless hand); ``infeasible_reason`` says which.
        lower, upper: (n,) joint bounds the search uses (:func:`search_bounds`: the URDF
            limits, an unlimited revolute or continuous joint sampled over one turn about its
            rest angle; the thumb abduction joint narrowed to the side the type asks for).
        forbidden: Indices of the surface samples of the type's forbidden regions.
        forbidden_margin: (len(forbidden),) the distance each must keep from the object [m]:
            ``FORBIDDEN_MARGIN_M``, or ``SHARED_LINK_FORBIDDEN_MARGIN_M`` on a link that also
            carries a required region.

    Raises:
        ConfigurationError: A prismatic joint without finite limits (no range to sample).
    """

    def __init__(self, hand: Hand, tree: KinematicTree, surface: HandSurface, grasp: GraspType, friction: float,
                 self_margin: float = SELF_MARGIN_M) -> None:
        self.hand, self.tree, self.surface, self.grasp = hand, tree, surface, grasp
        self.self_margin = float(self_margin)
        self.sdf = ObjectSDF(grasp.object)
        self.friction = float(friction)
        self.torque_scale = float(max(grasp.object.half_extents()))
        compiled = CompiledSignature.compile(grasp.signature, hand.regions.labels)
        self.group_names = compiled.group_names
        labels = surface.label_ids
        self.groups = [np.flatnonzero(mask[labels]) for mask in compiled.group_masks]
        forb = compiled.forbidden_masks.any(axis=0) if len(compiled.forbidden_masks) else np.zeros(len(hand.regions.labels), bool)
        forb = forb | compiled.other_mask  # unlabelled links, where the palm is forbidden
        self.forbidden = np.flatnonzero(forb[labels])
        # A forbidden region on a link that also carries a required one (the back of the thumb
        # whose pad must touch) cannot keep a margin while its neighbour on the same rigid link
        # touches: it is only kept out of the object (SHARED_LINK_FORBIDDEN_MARGIN_M).
        required_links = np.unique(surface.link_index[np.concatenate(self.groups)]) if self.groups else []
        self.forbidden_margin = np.where(np.isin(surface.link_index[self.forbidden], required_links),
                                         SHARED_LINK_FORBIDDEN_MARGIN_M, FORBIDDEN_MARGIN_M)
        missing = [name for name, idx, imp in zip(self.group_names, self.groups, compiled.impossible) if imp or not len(idx)]
        self.lower, self.upper = search_bounds(hand, tree)
        self.thumb_col: int | None = None
        ta = hand.thumb_abduction
        thumb_side = grasp.signature.thumb
        if ta is not None and thumb_side in ("abducted", "adducted"):
            col = tree.joint_index(ta.joint)
            self.thumb_col = col
            self.lower[col], self.upper[col] = ta.side_range(
                thumb_side == "abducted", self.lower[col], self.upper[col], THUMB_MARGIN_RAD)
            if self.lower[col] > self.upper[col]:
                missing.append(f"thumb {thumb_side} (joint {ta.joint} cannot reach that side)")
        elif ta is None and thumb_side == "abducted":
            missing.append("thumb abducted (the hand has no thumb)")
        self.feasible = not missing
        self.infeasible_reason = (
            "" if self.feasible else "the hand cannot form the signature: " + "; ".join(f"no {m}" for m in missing)
        )
        self.efforts = np.array([hand.joint_limits[j].effort for j in tree.joint_names])
        self.n = tree.num_joints
        self.dim = 6 + self.n
        self.finger_columns = {
            # A finger's mimic joints are not columns of q: they move with their masters.
            f.name: np.array([tree.joint_index(j) for j in f.joints if j not in hand.mimic_joints], dtype=np.int64)
            for f in hand.fingers.values()
        }

    # ------------------------------------------------------------------ evaluation
    def clip(self, x: _F) -> _F:
        """Joint part of ``x`` (B, 6 + n) clipped to the bounds (in place); returns ``x``."""
        np.clip(x[:, 6:], self.lower, self.upper, out=x[:, 6:])
        return x

    def object_frame(self, x: _F, points: _F) -> _F:
        """Palm-frame points (B, N, 3) into each candidate's object frame."""
        rot = rotvec_to_matrix(x[:, 3:6])  # (B, 3, 3), object -> palm
        return np.matmul(points - x[:, None, :3], rot)

    def evaluate(self, x: _F) -> tuple[_F, dict[str, _F], _F, _F]:
        """Cost of candidates.

        Args:
            x: (B, 6 + n) candidates (position [m], rotation vector [rad], joints [rad]).

        Returns:
            ``(cost (B,), terms {name: (B,)}, best (B, G) sample index per required group,
            d (B, N) signed distances of every sample [m])``.
        """
        pts, nrm = self.surface.pose(x[:, 6:])
        rot = rotvec_to_matrix(x[:, 3:6])
        p_obj = np.matmul(pts - x[:, None, :3], rot)
        d = self.sdf.distance(p_obj)  # (B, N)
        bsz = len(x)
        contact = np.zeros(bsz)
        best = np.zeros((bsz, len(self.groups)), dtype=np.int64)
        rows = np.arange(bsz)
        normals: list[_F] = []
        for g, idx in enumerate(self.groups):
            if not len(idx):
                contact += 1.0
                continue
            dg = d[:, idx]
            n_obj = self.sdf.normal(p_obj[:, idx])
            n_hand = np.matmul(nrm[:, idx], rot)
            facing = 1.0 + np.einsum("bpk,bpk->bp", n_hand, n_obj)
            score = np.abs(dg) + W_FACE * facing
            k = np.argmin(score, axis=1)
            best[:, g] = idx[k]
            contact += score[rows, k]
            normals.append(n_obj[rows, k])
        pen = np.maximum(-d - PENETRATION_SLACK_M, 0.0).max(axis=1)
        if len(self.surface.core_points):
            core_gap = self.sdf.distance(np.matmul(self.surface.pose_cores(x[:, 6:]) - x[:, None, :3], rot))
            pen = np.maximum(pen, np.maximum(self.surface.core_radius - core_gap - PENETRATION_SLACK_M, 0.0).max(axis=1))
        forb = np.zeros(bsz)
        if len(self.forbidden):
            forb = self.forbidden_intrusion(d[:, self.forbidden]).max(axis=1)
        gap = self.surface.self_gap(x[:, 6:])
        balance = _hull_distance(np.stack(normals, axis=1)) if len(normals) >= 2 else np.ones(bsz)
        terms = {"contact": contact, "penetration": W_PENETRATION * pen, "forbidden": W_FORBIDDEN * forb,
                 "self_collision": W_SELF * np.maximum(self.self_margin - gap, 0.0), "balance": W_BALANCE * balance}
        return sum(terms.values()), terms, best, d

    def forbidden_intrusion(self, d: _F) -> _F:
        """How far each forbidden sample comes inside its margin [m], zero outside it.

        Args:
            d: (..., len(forbidden)) signed distances of the forbidden samples to the object [m].
        """
        return np.maximum(self.forbidden_margin - d, 0.0)

    def contact_set(self, x: _F, best: _F) -> tuple[_F, _F]:
        """The contact samples of one candidate: per link its sample nearest the surface when
        within ``Q1_CONTACT_M``, plus the required groups' best samples.

        Args:
            x: (6 + n,) one candidate.
            best: (G,) its sample index per required group.

        Returns:
            ``(idx (C,) sample indices, d (C,) their signed distances [m])``.
        """
        pts, _ = self.surface.pose(x[None, 6:])
        rot = rotvec_to_matrix(x[None, 3:6])
        d = self.sdf.distance(np.matmul(pts - x[None, None, :3], rot))[0]
        picks = []
        for li in np.unique(self.surface.link_index):
            idx = np.flatnonzero(self.surface.link_index == li)
            k = int(idx[np.argmin(np.abs(d[idx]))])
            if abs(d[k]) <= Q1_CONTACT_M:
                picks.append(k)
        sel = np.unique(np.concatenate([np.array(picks, dtype=np.int64), np.asarray(best, dtype=np.int64)]))
        return sel, d[sel]

    def motor_margin(self, x: _F, best: _F) -> float:
        """The motor-wrench margin of one candidate (:func:`handsim.synth.wrench.motor_wrench_margin`):
        the smallest multiple of the protocol's push (``disturbance_factor`` + 1 times the
        object's weight: the push plus gravity, in the worst case aligned), over the six axis
        directions, that its contacts can balance with the joint torques within the URDF efforts.

        Args:
            x: (6 + n,) one candidate.
            best: (G,) its sample index per required group.

        Returns:
            The margin [-] (>= 1: the effort-capped motors can hold the push in every direction).
        """
        x = np.asarray(x, dtype=np.float64)
        sel, _ = self.contact_set(x, best)
        n = self.n
        eps = 1e-6
        probe = np.repeat(x[None, 6:], n + 1, axis=0)
        probe[1:] += eps * np.eye(n)
        pts, _ = self.surface.pose(probe)
        jac = ((pts[1:, sel] - pts[0, sel]) / eps).transpose(1, 2, 0)  # (C, 3, n)
        rot = rotvec_to_matrix(x[None, 3:6])[0]
        inward = -(self.sdf.normal((pts[0, sel] - x[:3]) @ rot) @ rot.T)
        force = (DEFAULT_PROTOCOL.disturbance_factor + 1.0) * self.grasp.object.mass * DEFAULT_PROTOCOL.gravity
        margin, _ = motor_wrench_margin(pts[0, sel], inward, jac, self.efforts, self.friction, x[:3], force)
        return margin

    def quality(self, x: _F, best: _F) -> _F:
        """Q1 of candidates from every link touching the object: per link its sample nearest
        the surface, when within ``Q1_CONTACT_M`` (the required groups' best samples always
        count). More links in contact give a larger Q1 (wider support against turning).

        Args:
            x: (B, 6 + n) candidates.
            best: (B, G) sample index per required group.

        Returns:
            (B,) Q1 (0 without force closure).
        """
        pts, _ = self.surface.pose(x[:, 6:])
        rot = rotvec_to_matrix(x[:, 3:6])
        p_obj = np.matmul(pts - x[:, None, :3], rot)
        d = self.sdf.distance(p_obj)  # (B, N)
        bsz = len(x)
        rows = np.arange(bsz)
        links = np.unique(self.surface.link_index)
        picks, masks = [], []
        for li in links:
            idx = np.flatnonzero(self.surface.link_index == li)
            k = idx[np.argmin(np.abs(d[:, idx]), axis=1)]
            picks.append(k)
            masks.append(np.abs(d[rows, k]) <= Q1_CONTACT_M)
        for g in range(best.shape[1]):
            picks.append(best[:, g])
            masks.append(np.ones(bsz, dtype=bool))
        sel = np.stack(picks, axis=1)  # (B, C)
        mask = np.stack(masks, axis=1)
        cp = pts[rows[:, None], sel]
        n_in = -np.matmul(self.sdf.normal(p_obj[rows[:, None], sel]), rot.transpose(0, 2, 1))  # palm frame
        if mask.sum(axis=1).max() < 2:
            return np.zeros(bsz)
        return np.asarray(epsilon_quality(cp, n_in, self.friction, num_edges=8, torque_scale=self.torque_scale,
                                          mask=mask, center=x[:, :3]), dtype=np.float64)

    # ------------------------------------------------------------------ sampling
    def initial_means(self, rng: np.random.Generator, count: int) -> _F:
        """Random starts: joints uniform in the bounds, the object touching a random sample of
        a random required group at that configuration, in a uniformly random orientation."""
        q = rng.uniform(self.lower, self.upper, size=(count, self.n))
        pts, nrm = self.surface.pose(q)
        pool = np.concatenate([g for g in self.groups if len(g)]) if any(len(g) for g in self.groups) else np.arange(len(self.surface))
        pick = rng.choice(pool, size=count)
        rows = np.arange(count)
        reach = float(min(self.sdf.half_extents))
        pos = pts[rows, pick] + nrm[rows, pick] * reach
        quat = rng.normal(size=(count, 4))
        quat /= np.linalg.norm(quat, axis=1, keepdims=True)
        quat *= np.sign(quat[:, :1] + 1e-12)
        angle = 2 * np.arccos(np.clip(quat[:, 0], -1, 1))
        axis = quat[:, 1:] / np.maximum(np.linalg.norm(quat[:, 1:], axis=1, keepdims=True), 1e-12)
        return np.concatenate([pos, axis * angle[:, None], q], axis=1)


def optimize(problem: GraspProblem, rng: np.random.Generator, settings: SynthSettings = DEFAULT_SETTINGS) -> tuple[_F, _F]:
    """Cross-entropy minimisation of the problem's cost from random restarts.

    Args:
        problem: The grasp problem.
        rng: The random generator (the only source of randomness: same state, same result).
        settings: Population sizes and iterations.

    Returns:
        ``(x (R, 6 + n), cost (R,))``: each restart's best candidate, sorted by cost.
    """
    s = settings
    r, m, dim = s.restarts, s.population, problem.dim
    mean = problem.clip(problem.initial_means(rng, r))
    span = problem.upper - problem.lower
    std = np.concatenate([np.full(3, 0.015), np.full(3, 0.4), 0.25 * span])[None].repeat(r, axis=0)
    floor = np.concatenate([np.full(3, 5e-4), np.full(3, 0.01), np.full(problem.n, 0.005)])
    best_x = mean.copy()
    best_c = np.full(r, np.inf)
    for _ in range(s.iterations):
        noise = rng.normal(size=(r, m, dim))
        noise[:, 0] = 0.0  # each population re-evaluates its mean (elitism)
        samples = problem.clip((mean[:, None] + std[:, None] * noise).reshape(r * m, dim))
        cost = problem.evaluate(samples)[0].reshape(r, m)
        samples = samples.reshape(r, m, dim)
        order = np.argsort(cost, axis=1, kind="stable")
        elite = np.take_along_axis(samples, order[:, : s.elites, None], axis=1)  # (R, E, D)
        top = cost[np.arange(r), order[:, 0]]
        better = top < best_c
        best_c[better] = top[better]
        best_x[better] = samples[np.arange(r), order[:, 0]][better]
        mean = s.smoothing * elite.mean(axis=1) + (1 - s.smoothing) * mean
        std = np.maximum(s.smoothing * elite.std(axis=1) + (1 - s.smoothing) * std, floor)
    order = np.argsort(best_c, kind="stable")
    best_x, best_c = best_x[order], best_c[order]
    if s.refine_steps and s.refine_count:
        k = min(s.refine_count, r)
        best_x[:k], best_c[:k] = refine(problem, best_x[:k], best_c[:k], s.refine_steps)
        order = np.argsort(best_c, kind="stable")
        best_x, best_c = best_x[order], best_c[order]
    return best_x, best_c


def refine(problem: GraspProblem, x: _F, cost: _F, steps: int) -> tuple[_F, _F]:
    """Local descent from CEM solutions: forward-difference gradients on the fast FK (all
    candidates and all coordinates in one batch), sign steps scaled per coordinate, a step
    kept only when it lowers the cost (else that candidate's step size halves).

    Args:
        problem: The grasp problem.
        x: (K, D) starting points.
        cost: (K,) their costs.
        steps: Descent iterations.

    Returns:
        The improved ``(x, cost)``.
    """
    x, cost = x.copy(), cost.copy()
    k, dim = x.shape
    unit = np.concatenate([np.full(3, 1e-3), np.full(3, 0.02), np.full(problem.n, 0.02)])  # [m], [rad], [rad]
    rate = np.ones(k)
    h = unit * 0.05
    for _ in range(steps):
        probe = np.repeat(x[:, None], dim + 1, axis=1)  # (K, D + 1, D)
        probe[:, 1:] += np.diag(h)[None]
        c = problem.evaluate(problem.clip(probe.reshape(-1, dim)))[0].reshape(k, dim + 1)
        grad = (c[:, 1:] - c[:, :1]) / h
        trial = problem.clip(x - rate[:, None] * unit * np.sign(grad))
        tc = problem.evaluate(trial)[0]
        better = tc < cost
        x[better], cost[better] = trial[better], tc[better]
        rate[~better] *= 0.5
    return x, cost


def plan_from_solution(problem: GraspProblem, x: _F, settings: SynthSettings = DEFAULT_SETTINGS) -> Candidate:
    """Pre-shape and closing targets from an optimised contact configuration.

    Args:
        problem: The grasp problem.
        x: (6 + n,) one solution of :func:`optimize`.
        settings: Clearance and squeeze.

    Returns:
        The :class:`Candidate` (Q1 included).
    """
    x = problem.clip(np.array(x, dtype=np.float64)[None])[0]
    cost, terms, best, _ = problem.evaluate(x[None])
    q = x[6:]
    n = problem.n
    # Closing direction, finger by finger: the joint motion that drives that finger's contact
    # samples (one per required group) straight into the object, along minus the object's
    # surface normal: damped least squares on the contact Jacobians (forward differences on
    # the FK). (The distance gradient J^T n would also slide a grazing contact sideways.)
    eps = 1e-5
    probe = np.repeat(x[None], n + 1, axis=0)
    probe[1:, 6:] += eps * np.eye(n)
    pts, _ = problem.surface.pose(probe[:, 6:])
    chosen = np.unique(best[0])
    jac = (pts[1:, chosen] - pts[0, chosen]) / eps  # (n, C, 3): d point / d q_j, palm frame
    rot = rotvec_to_matrix(x[None, 3:6])[0]
    inward = -(problem.sdf.normal((pts[0, chosen] - x[:3]) @ rot) @ rot.T)  # (C, 3), palm frame
    direction = np.zeros(n)
    for finger, cols in problem.finger_columns.items():
        mine = np.flatnonzero(problem.surface.finger[chosen] == finger)
        if not len(mine) or not len(cols):
            continue
        jf = jac[np.ix_(cols, mine)].transpose(1, 2, 0).reshape(3 * len(mine), len(cols))  # (3C, nf)
        v = inward[mine].reshape(-1)
        g = jf.T @ np.linalg.solve(jf @ jf.T + (_DLS_DAMPING_M**2) * np.eye(len(v)), v)
        scale = float(np.abs(g).max())
        if scale > 0:
            g = g / scale
            g[np.abs(g) < 0.1] = 0.0
            direction[cols] = g

    def clearance(qs: _F) -> _F:
        xs = np.repeat(x[None], len(qs), axis=0)
        xs[:, 6:] = qs
        p, _ = problem.surface.pose(qs)
        gap = problem.sdf.distance(problem.object_frame(xs, p)).min(axis=1)
        if len(problem.surface.core_points):
            cores = problem.sdf.distance(problem.object_frame(xs, problem.surface.pose_cores(qs)))
            gap = np.minimum(gap, (cores - problem.surface.core_radius).min(axis=1))
        return gap

    steps = np.array([0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0, 1.3])
    opened = np.clip(q[None] - steps[:, None] * direction[None], problem.lower, problem.upper)
    clear = clearance(opened)
    ok = np.flatnonzero(clear >= settings.clearance_m)
    k = int(ok[0]) if len(ok) else int(np.argmax(clear))
    pre = opened[k]
    close = np.clip(q + settings.squeeze_rad * direction, problem.lower, problem.upper)
    # The closing sweep from the pre-shape to the contact configuration must not run another
    # part of the hand into the (fixed) object first: its deepest penetration before the end is
    # charged like a penetration at contact.
    alphas = np.linspace(0.0, 0.85, 6)[:, None]
    sweep = float(np.maximum(-clearance(pre[None] + alphas * (q - pre)[None]).min() - PENETRATION_SLACK_M, 0.0))
    terms = {name: v for name, v in terms.items()} | {"sweep": np.array([W_PENETRATION * sweep])}
    cost = cost + W_PENETRATION * sweep
    q1 = float(problem.quality(x[None], best)[0])
    quat = rotvec_to_quat(x[3:6])
    return Candidate(
        cost=float(cost[0]), q1=q1, object_xyz=x[:3].copy(), object_quat_wxyz=quat, contact_q=q.copy(),
        preshape=pre, close=close, clearance_m=float(clear[k]),
        terms={name: float(v[0]) for name, v in terms.items()}, solution=x.copy(),
    )


#: A required group counts as reached by the kinematic closing when one of its samples ends
#: within this of the surface [m] (PyBullet reports contacts a little apart; the samples are
#: a few millimetres apart).
REACH_M = 0.0025
#: Steps of the kinematic closing sweep from the pre-shape to the closing targets.
_SWEEP_STEPS = 41


@dataclasses.dataclass(frozen=True)
class ClosingCheck:
    """What the scripted close does to a plan, simulated on the fast FK (quasi-statically).

    The scripted policy ramps every joint target linearly from the pre-shape to the closing
    targets while a fixture holds the object; each finger moves along that line until it first
    touches the object, then (to first order) stops there. This predicts, without physics, the
    contacts the trial starts from.

    Attributes:
        reached: Required groups with a sample on the surface at the end [-].
        groups: Required groups of the type [-].
        blocked: Two fingers overlap somewhere on the way (PyBullet collides them, so one stops
            short of the object).
        forbidden: A forbidden region touches the object at the end.
        margin: Motor-wrench margin of the contacts at the end (:meth:`GraspProblem.motor_margin`).
        final_q: (n,) the configuration where every finger stopped [rad].
    """

    reached: int
    groups: int
    blocked: bool
    forbidden: bool
    margin: float
    final_q: _F

    @property
    def ok(self) -> bool:
        """Every required group reached, no finger blocked by another, nothing forbidden touched."""
        return self.reached == self.groups and not self.blocked and not self.forbidden


def closing_check(problem: GraspProblem, cand: Candidate) -> ClosingCheck:
    """Simulate the scripted close of a candidate plan on the fast FK (see :class:`ClosingCheck`).

    Args:
        problem: The grasp problem.
        cand: A plan from :func:`plan_from_solution`.

    Returns:
        The :class:`ClosingCheck`.
    """
    x = cand.solution
    alphas = np.linspace(0.0, 1.0, _SWEEP_STEPS)
    qs = cand.preshape[None] + alphas[:, None] * (cand.close - cand.preshape)[None]  # (A, n)
    xs = np.repeat(x[None], len(qs), axis=0)
    xs[:, 6:] = qs
    pts, _ = problem.surface.pose(qs)
    d = problem.sdf.distance(problem.object_frame(xs, pts))  # (A, N)
    final = qs[-1].copy()
    stop = np.full(problem.n, len(alphas) - 1)
    for finger, cols in problem.finger_columns.items():
        mine = problem.surface.finger == finger
        if not mine.any() or not len(cols):
            continue
        touch = np.flatnonzero(d[:, mine].min(axis=1) <= 0.0)
        if len(touch):
            final[cols] = qs[touch[0], cols]
            stop[cols] = touch[0]
    # Every finger follows the ramp until its own stop: the configurations on the way.
    idx = np.minimum(np.arange(len(alphas))[:, None], stop[None])
    path = qs[idx, np.arange(problem.n)[None]]
    blocked = bool(problem.surface.self_gap(path).min() < -problem.self_margin)
    xf = x.copy()
    xf[6:] = final
    _, _, best, df = problem.evaluate(xf[None])
    df = df[0]
    reached = sum(bool(len(g) and np.abs(df[g]).min() <= REACH_M) for g in problem.groups)
    forbidden = bool(len(problem.forbidden)
                     and (df[problem.forbidden] <= np.minimum(problem.forbidden_margin, Q1_CONTACT_M)).any())
    margin = problem.motor_margin(xf, best[0])
    return ClosingCheck(reached=reached, groups=len(problem.groups), blocked=blocked, forbidden=forbidden,
                        margin=margin, final_q=final)
