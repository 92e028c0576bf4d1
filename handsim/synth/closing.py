"""Candidate grasps by a quasi-static closing model: object pose first, then each finger closes.

This is how the hand-written plans that hold in physics were made (``models/default_hand/
GRASPS.md``): the object pose comes first, relative to the palm (power grasps rest it on the
palm pad), then every finger closes on it, and the closing targets go only a little past where
each finger first meets the object, so that the position servos make a stiff cage instead of
effort-capped motors pushing the object around.

For a batch of candidates at once (pure numpy, on the fast FK):

1. **Object pose.** Types that require the palm pad put the object on it: a random point of
   the palm's pad face, the object's long axis (cylinders, capsules) across the palm within
   ``palm_axis_deg`` of the palm's lateral axis, lowered along the face normal until it is
   ``palm_gap_m`` above the palm. Other types put the object's centre half-way between a
   sample of the first and a sample of a second required group in a random configuration (for
   a pinch: between the thumb and the finger pads), in a random orientation.
2. **Hand sample.** Each finger's spread joints (abduction, thumb roll; names containing
   ``abd`` or ``roll``) are drawn once and stay put; its flexion joints get an open value (the
   lower quarter of their range: the pre-shape) and an end value (half way to the upper limit
   or more: the direction it closes in).
3. **Closing sweep.** All flexion joints advance from open to end in ``steps`` steps. A joint
   stops for good at the step where a link it moves would enter the object (so a finger whose
   proximal phalanx lands on a handle keeps curling its distal joints: each joint has its own
   servo in physics). Distances are from the capsule cores (exact for capsule links, and thin
   objects are not missed between surface samples).
4. **Plan.** The contact configuration is scored by the optimisation cost
   (:meth:`handsim.synth.optimize.GraspProblem.evaluate`: penetration, forbidden regions,
   self-collision, balance), its contact term replaced by the way the physics labels contacts
   (:func:`_group_scores`: a required group whose link is nearest the object with another
   region, a side where a pad is required, is charged), plus the penetration of the straight
   joint-space path from the pre-shape to it (what the scripted ramp actually drives), a
   finger carrying a required group that never stopped on the object, and a grazing contact
   (the closing motion slides the link past the object instead of pressing on it). Each finger
   keeps, per object pose, the best of ``variants`` hand samples. The closing targets are the
   contact configuration plus a press on every joint that stopped on the object: the turn
   that pushes the link that stopped it a given depth into the object (``presses_m``),
   clipped to ``limit_margin_rad`` inside the URDF limits (the protocol fails joints folded
   past their limits); joints that never met the object close to their end value. The
   pre-shape keeps the moving (capsule) links ``clearance_m`` from the object; the palm and
   the knuckles stay where the object pose put them.

Fingers whose every region is forbidden by the type (the middle, ring and little fingers of
a tip pinch) do not sweep: they stay open or curl to their end value, whichever the sample
drew, and the cost's forbidden term keeps them off the object.

**Balls held by the pads (tripod, quadpod, tip pinch, sphere 3/4 finger, ...).** A random
object pose between two random pads almost never makes the pads oppose each other: the
contacts land on a fingertip's side, or all below the ball's equator, and the ball is
squeezed out at release. For these types the object pose and the posture come together
(:func:`_opposed_poses`): each finger is its own kinematic chain, so a cloud of random
configurations gives, per required pad, the ball centres at which that pad would touch the
ball; postures whose thumb centre has a centre of every other finger near it are matched
(nearest neighbours), ranked by how well the contact normals balance and enclose the ball, by
a second phalanx of each finger resting on it too (the holding hand-written tripod presses
the index's distal and middle pads), by the fingers pressing towards the palm (curled over
the ball rather than holding it on open pads), and by penetration and forbidden contact.
The sweep then runs through that posture (open and end values on one line through it), and
each finger's closing targets press its contact point a few millimetres along the contact
normal with all the finger's joints (``W J^T u``, W the joints' effort caps: the weak distal
joint, which folds past its limit, takes little of it; a thumb whose flexion only slides its
tip along the ball presses through its abduction), shallow presses (2-8 mm): the
hand-written pinches that hold press with well under 1 N before release.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from numpy.typing import NDArray

from handsim.synth.optimize import (
    PENETRATION_SLACK_M,
    W_FORBIDDEN,
    W_PENETRATION,
    Candidate,
    GraspProblem,
    rotvec_to_matrix,
    rotvec_to_quat,
)

__all__ = ["DEFAULT_CLOSING", "ClosingSettings", "sweep_candidates"]

_F = NDArray[np.float64]
#: Charged for a finger that carries a required group but never stopped on the object [m].
UNTOUCHED_M = 0.01
#: Charged for a required group whose link is nearest the object with a sample of another
#: label (the physics would report, e.g., a side contact where a pad is required) [m].
LABEL_MISS_M = 0.005
#: Nearest samples of a link whose labels are checked against a required group [-].
_LABEL_SAMPLES = 3
#: Charged per unit of (1 - approach cosine) of the link meeting a required group [m].
W_APPROACH_M = 0.003
#: Spacing of the grid on the palm's pad face that palm-type objects are lowered onto [m].
_PALM_GRID_M = 0.003
#: Bisections of a palm-type object's height above the palm [-] (0.15 m / 2^14: 0.01 mm).
_PALM_BISECTIONS = 14
#: Fine steps (each a 1/_FINE of a coarse one) after the coarse closing sweep [-].
_FINE = 4
#: Weight of (1 - enclosure) of the contact normals in the opposed placement [m].
W_COVER_M = 0.01
#: Weight of the imbalance of the contact normals (the length of their mean) [m]: pads that
#: all push the ball one way (up, off the thumb) squeeze it out at release.
W_BALANCE_M = 0.03


def _fibonacci_directions(count: int) -> NDArray[np.float64]:
    """``count`` unit vectors spread evenly over the sphere (a Fibonacci lattice), (count, 3)."""
    i = np.arange(count) + 0.5
    z = 1.0 - 2.0 * i / count
    a = math.pi * (1.0 + 5.0**0.5) * i
    s = np.sqrt(1.0 - z * z)
    return np.stack([s * np.cos(a), s * np.sin(a), z], axis=1)


#: Directions the enclosure of a ball's contact normals is checked along.
_DIRECTIONS = _fibonacci_directions(64)


@dataclasses.dataclass(frozen=True)
class ClosingSettings:
    """Numbers of the closing-model candidate generator.

    Attributes:
        poses: Object poses per type.
        variants: Hand samples swept per object pose; each finger keeps its best one [-].
        steps: Coarse steps of the closing sweep from the open to the end value of each joint
            (then `_FINE` steps of a quarter step each from where each joint stopped).
        palm_gap_m: Gap left between a palm-type object and the palm pad face [m].
        palm_axis_deg: Largest angle of a palm-type object's axis from the palm's lateral axis [deg].
        clearance_m: The pre-shape keeps every capsule this far from the object [m] (the
            benchmark jitters the object by 2 mm / 3 deg).
        opposed_samples: Random configurations of the opposed placement (0: off) [-].
        thumb_gap_m: The opposed placement's thumb sample may stand off the ball by up to this [m].
        opposed_open: Range of the fraction of the way back from the opposed posture to the
            lower limits that the pre-shape opens [-].
        opposed_end: Range of the fraction of the same distance the sweep's end goes past the posture [-].
        opposed_wrap: Weight of the gap of each finger's second-nearest link in the opposed
            ranking [m/m].
        opposed_curl: Weight of the fingers' mean contact normal along the palm normal [m].
        opposed_pads: The opposed placement matches a finger's required contact on its pads
            only (when the group has any): the round tip lets the ball roll.
        opposed_effort_weighted: The press along the contact normal is shared among the
            finger's joints in proportion to their effort caps (else equally: least norm).
        opposed_presses_m: The presses of opposed-placement plans, as ``presses_m``, along each
            finger's contact normal [m].
        presses_m: How far past the surface each plan's closing targets press the link that
            stopped each joint, ``(fingers, thumb)``, one plan per pair, in order [m]: the joint's
            target goes ``depth / lever`` past its contact angle (lever: from the joint to that
            link's point nearest the object). PyBullet's position servo drives a blocked joint
            at its effort cap whatever the error, but the contact is compliant: a shallow press
            lets a finger reach its target and hold there (a stiff cage), a deep one saturates
            it (a force). ``(0.015, 0.003)`` is a vise: the fingers press the object onto a thumb
            that holds its position, the squeeze a pinch needs to carry the weight at release
            (on prismatic 2 finger, a shallow press on both sides left 0.1-0.2 N and the object
            fell; this pair held it with 5-19 N). The first pair held light tool 3/3.
        max_squeeze_rad: Largest squeeze of one joint [rad].
        restarts: Candidate families per type, each from its own random stream (object
            placements and hand samples drawn afresh), verified in turn by
            :func:`handsim.synth.synthesize.synthesize_type`: the first with the type's whole
            verification budget, each further one only while none verified and some earlier
            candidate passed the settle screen (the signature formed and survived the release).
        restart_verify: Candidates of each further family verified in physics (its best
            contact configurations, each with its presses) [-].
        self_margin_m: Gap the fingers keep between them at contact when scored [m] (side by
            side in a wrap they are a few millimetres apart).
        limit_margin_rad: Closing targets stay this far inside the URDF joint limits [rad].
        open_fraction: Open values of the flexion joints are drawn in this fraction of their
            range above the lower limit [-].
        end_fraction: End values are drawn between this fraction of their range and the upper limit [-].
    """

    poses: int = 256
    variants: int = 6
    steps: int = 20
    palm_gap_m: float = 0.002
    palm_axis_deg: float = 35.0
    clearance_m: float = 0.004
    presses_m: tuple[tuple[float, float], ...] = ((0.01, 0.01), (0.015, 0.003), (0.005, 0.005))
    max_squeeze_rad: float = 0.4
    restarts: int = 4
    restart_verify: int = 6
    limit_margin_rad: float = 0.03
    self_margin_m: float = 0.001
    open_fraction: float = 0.25
    end_fraction: float = 0.5
    opposed_samples: int = 4096
    thumb_gap_m: float = 0.0
    opposed_open: tuple[float, float] = (0.3, 0.8)
    opposed_end: tuple[float, float] = (0.15, 0.5)
    opposed_wrap: float = 0.3
    opposed_curl: float = 0.01
    opposed_pads: bool = True
    opposed_effort_weighted: bool = True
    opposed_presses_m: tuple[tuple[float, float], ...] = ((0.002, 0.002), (0.004, 0.004), (0.008, 0.008))


#: The default closing-model numbers.
DEFAULT_CLOSING = ClosingSettings()


def _random_rotations(rng: np.random.Generator, count: int) -> _F:
    """Uniform random rotations as (count, 3, 3) matrices (from unit quaternions)."""
    q = rng.normal(size=(count, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def _matrix_to_rotvec(rot: _F) -> _F:
    """(B, 3, 3) rotation matrices -> (B, 3) rotation vectors [rad]."""
    cos = np.clip((np.trace(rot, axis1=1, axis2=2) - 1.0) / 2.0, -1.0, 1.0)
    theta = np.arccos(cos)
    axis = np.stack([rot[:, 2, 1] - rot[:, 1, 2], rot[:, 0, 2] - rot[:, 2, 0], rot[:, 1, 0] - rot[:, 0, 1]], -1)
    s = np.linalg.norm(axis, axis=1)
    out = np.zeros((len(rot), 3))
    ok = s > 1e-9
    out[ok] = axis[ok] / s[ok, None] * theta[ok, None]
    # Near 180 deg the antisymmetric part vanishes: the axis is the dominant column of R + I.
    flip = ~ok & (theta > 1.0)
    if flip.any():
        m = rot[flip] + np.eye(3)
        col = np.argmax(np.linalg.norm(m, axis=1), axis=1)
        ax = m[np.arange(len(m)), :, col]
        out[flip] = ax / np.linalg.norm(ax, axis=1, keepdims=True) * theta[flip, None]
    return out


def _axis_frames(axis: _F, rng: np.random.Generator) -> _F:
    """Rotations whose z column is ``axis`` (B, 3), with a random spin about it, (B, 3, 3)."""
    z = axis / np.linalg.norm(axis, axis=1, keepdims=True)
    helper = np.where(np.abs(z[:, :1]) < 0.9, np.array([[1.0, 0.0, 0.0]]), np.array([[0.0, 1.0, 0.0]]))
    x = np.cross(helper, z)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = np.cross(z, x)
    a = rng.uniform(0, 2 * math.pi, size=len(z))[:, None]
    x, y = np.cos(a) * x + np.sin(a) * y, -np.sin(a) * x + np.cos(a) * y
    return np.stack([x, y, z], axis=-1)


def _place(tree, q: _F, links: NDArray[np.int64], local: _F) -> _F:
    """Palm-frame positions of one link-fixed point per row, (B, 3) [m]: ``local[b]`` (B, 3) in
    the frame of link ``links[b]`` at configuration ``q[b]``."""
    fr = tree.forward_kinematics(q)[np.arange(len(q)), links]  # (B, 4, 4)
    return np.einsum("bij,bj->bi", fr[:, :3, :3], local) + fr[:, :3, 3]


class _Sweeper:
    """The capsule cores grouped by link, and which joints move each of those links."""

    def __init__(self, problem: GraspProblem) -> None:
        surf = problem.surface
        self.problem = problem
        n = problem.n
        groups = surf._core_groups  # (link index, core point indices)
        self.links = [li for li, _ in groups]
        # Every other capsule core point (3 mm apart on 7-10 mm capsules: the distance error is
        # well under 0.1 mm) halves the cost of the sweep; mesh parts' core balls are a cover of
        # the part already fitted to a tolerance, so all of them are kept.
        caps = surf.capsule_core_count
        groups = [(li, np.concatenate([idx[idx < caps][::2], idx[idx >= caps]])) for li, idx in groups]
        order = np.concatenate([idx for _, idx in groups]) if groups else np.zeros(0, np.int64)
        self.order = order
        sizes = [len(idx) for _, idx in groups]
        self.starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if sizes else np.zeros(0, np.int64)
        self.radius = surf.core_radius[order] if len(order) else np.zeros(0)
        # Which joints move which link: finite differences of the FK around a mid configuration.
        q0 = (problem.lower + problem.upper) / 2
        probe = np.repeat(q0[None], n + 1, axis=0)
        probe[1:] += 1e-3 * np.eye(n)
        frames = problem.tree.forward_kinematics(probe)[:, :, :3, 3][:, self.links]  # (n + 1, L, 3)
        self.moves = (np.linalg.norm(frames[1:] - frames[:1], axis=-1) > 1e-7).T  # (L, n)

    def levers(self, x_pose: _F, q: _F, blocker: _F) -> _F:
        """Per joint, the distance from its axis point (its child link's origin) to the point
        nearest the object of the link that stopped it, (B, n) [m]."""
        p = self.problem
        tree = p.tree
        frames = tree.forward_kinematics(q)  # (B, Lall, 4, 4)
        origin = np.stack([frames[:, tree.link_index(tree.joints[j].child), :3, 3] for j in tree.joint_names], axis=1)
        cores = p.surface.pose_cores(q)[:, self.order]  # (B, M, 3)
        d = p.sdf.distance(p.object_frame(x_pose, cores)) - self.radius
        ends = np.append(self.starts[1:], len(self.order))
        nearest = np.empty((len(q), len(self.links), 3))
        for k, (a, e) in enumerate(zip(self.starts, ends)):
            i = a + np.argmin(d[:, a:e], axis=1)
            nearest[:, k] = cores[np.arange(len(q)), i]
        point = np.take_along_axis(nearest, blocker[:, :, None], axis=1)  # (B, n, 3)
        return np.linalg.norm(point - origin, axis=-1)

    def approach(self, x_pose: _F, q: _F, dq: _F) -> _F:
        """Per core link, the cosine between the motion of its point nearest the object when
        the joints move along ``dq`` and the direction into the object there, (B, L) [-]: 1 when
        the closing motion presses the link straight in, near 0 for a grazing contact (a
        squeeze then slides it past the object instead of pressing)."""
        p = self.problem
        c0 = p.surface.pose_cores(q)[:, self.order]
        c1 = p.surface.pose_cores(q + 1e-3 * dq)[:, self.order]
        local = p.object_frame(x_pose, c0)
        d = p.sdf.distance(local) - self.radius
        ends = np.append(self.starts[1:], len(self.order))
        rows = np.arange(len(q))
        rot = rotvec_to_matrix(x_pose[:, 3:6])
        out = np.ones((len(q), len(self.links)))
        for k, (a, e) in enumerate(zip(self.starts, ends)):
            i = a + np.argmin(d[:, a:e], axis=1)
            v = c1[rows, i] - c0[rows, i]
            inward = -np.einsum("bij,bj->bi", rot, p.sdf.normal(local[rows, i]))  # palm frame
            speed = np.linalg.norm(v, axis=1)
            out[:, k] = np.where(speed > 1e-9, np.einsum("bi,bi->b", v, inward) / np.maximum(speed, 1e-12), 1.0)
        return out

    def normal_press(self, x_pose: _F, q: _F, columns: dict[str, NDArray[np.int64]], touch_m: float = 0.001,
                     effort: _F | None = None) -> _F:
        """Per finger touching the object, the joint motion that pushes its contact point into
        the object along the contact normal, per metre of push, (B, n) [rad/m]: the
        least-norm solution ``J^T u / |J^T u|^2`` (J: the finger's joints' Jacobian of its
        point nearest the object, u: the inward normal there), so every joint of the finger,
        its spread joints too, helps press (a thumb whose flexion only slides its tip along a
        ball presses through its abduction). Fingers whose nearest link is farther than
        ``touch_m`` get zeros."""
        p = self.problem
        tree = p.tree
        cores = p.surface.pose_cores(q)[:, self.order]
        local = p.object_frame(x_pose, cores)
        d = p.sdf.distance(local) - self.radius
        link_of = np.repeat(np.arange(len(self.links)), np.diff(np.append(self.starts, len(self.order))))
        rot = rotvec_to_matrix(x_pose[:, 3:6])
        core_local = p.surface.core_points[self.order]
        out = np.zeros_like(q)
        rows = np.arange(len(q))
        for cols in columns.values():
            mine = np.flatnonzero(np.isin(link_of, [k for k in range(len(self.links)) if self.moves[k, cols].any()]))
            if not len(mine) or not len(cols):
                continue
            j = mine[np.argmin(d[:, mine], axis=1)]  # (B,) the finger's core point nearest the object
            near = d[rows, j] <= touch_m
            inward = -np.einsum("bij,bj->bi", rot, p.sdf.normal(local[rows, j]))
            li = np.array(self.links)[link_of[j]]
            pt = core_local[j]
            p0 = _place(tree, q, li, pt)
            jac = np.empty((len(q), 3, len(cols)))
            for c, col in enumerate(cols):
                qq = q.copy()
                qq[:, col] += 1e-4
                jac[:, :, c] = (_place(tree, qq, li, pt) - p0) / 1e-4
            jtu = np.einsum("bic,bi->bc", jac, inward)
            # Weighted by the joints' effort caps (W = diag(effort): dq = W J^T u / (u J W J^T u)),
            # so the strong proximal joints take the press and the weak distal one (0.6 N m on
            # the default hand, which folds past its limit) little of it.
            w = jtu * (effort[cols] if effort is not None else 1.0)
            dq = w / np.maximum(np.sum(jtu * w, axis=1, keepdims=True), 1e-12)
            out[:, cols] = np.where(near[:, None], dq, 0.0)
        return out

    def link_distance(self, x_pose: _F, q: _F) -> _F:
        """Smallest core-capsule distance to the object per core link, (B, L) [m]."""
        p = self.problem
        cores = p.surface.pose_cores(q)[:, self.order]  # (B, M, 3)
        d = p.sdf.distance(p.object_frame(x_pose, cores)) - self.radius
        return np.minimum.reduceat(d, self.starts, axis=1)


def _posed(frames: _F, surf, idx: NDArray[np.int64]) -> tuple[_F, _F]:
    """Points and normals of the samples ``idx`` (B, S) in the palm frame, from link frames
    (B, L, 4, 4): (B, S, 3) each."""
    rows = np.arange(len(frames))[:, None]
    li = surf.link_index[idx]
    rot = frames[rows, li, :3, :3]
    pts = np.einsum("bsij,bsj->bsi", rot, surf.local_points[idx]) + frames[rows, li, :3, 3]
    return pts, np.einsum("bsij,bsj->bsi", rot, surf.local_normals[idx])


def _opposed_poses(problem: GraspProblem, rng: np.random.Generator, count: int,
                   settings: ClosingSettings) -> tuple[_F, _F] | None:
    """Sphere pad types: object poses where the required pads of the fingers oppose each other.

    Each finger is its own kinematic chain, so ``opposed_samples`` random configurations give,
    per required group, a cloud of predicted sphere centres (a group sample plus the radius
    along its outward normal: where the ball's centre is when that sample touches it). A
    configuration whose thumb centre (with a random gap of up to ``thumb_gap_m``: a thumb at
    its extension limits cannot open, the fingers press the ball onto it) has a centre of
    every other group near it (nearest neighbours) is a hand posture in which all the required
    pads touch one ball; scored by the mismatch of the centres plus the imbalance of the
    contact normals (their mean's length: 0 when the pushes cancel, the opposition a pinch
    needs) and the penetration of the fingers' other links and of the forbidden regions.

    Returns:
        ``(x_pose (count, 6), q_contact (count, n))``, or None when the type is not a sphere
        held by single-finger groups without the palm.
    """
    from scipy.spatial import cKDTree

    obj = problem.grasp.object
    surf = problem.surface
    groups = [g for g in problem.groups if len(g)]
    if obj.shape != "sphere" or "palm.pad" in problem.group_names or len(groups) < 2:
        return None
    owners = [np.unique(surf.finger[g]) for g in groups]
    if any(len(o) != 1 or o[0] == "palm" for o in owners) or len({o[0] for o in owners}) != len(groups):
        return None
    fingers = [str(o[0]) for o in owners]
    r = float(obj.radius)
    k = settings.opposed_samples
    per = 4
    q = rng.uniform(problem.lower, problem.upper, size=(k, problem.n))
    frames = problem.tree.forward_kinematics(q)
    anchor = fingers.index("thumb") if "thumb" in fingers else 0
    cents, norms = [], []
    for gi, g in enumerate(groups):
        if settings.opposed_pads and fingers[gi] != "thumb":
            # A finger's round tip lets the ball roll on it; its pads hold it (when it has any).
            pads = g[np.char.endswith(np.asarray(problem.hand.regions.labels)[surf.label_ids[g]].astype(str), ".pad")]
            g = pads if len(pads) else g
        idx = g[rng.integers(0, len(g), size=(k, per))]
        pts, nrm = _posed(frames, surf, idx)
        gap = rng.uniform(0.0, settings.thumb_gap_m, size=(k, per, 1)) if gi == anchor else 0.0
        cents.append((pts + (r + gap) * nrm).reshape(-1, 3))
        norms.append(nrm.reshape(-1, 3))
    cfg = np.repeat(np.arange(k), per)
    mismatch = np.zeros(k * per)
    centre = cents[anchor].copy()
    match, idx_of = {}, {}
    for gi in range(len(groups)):
        if gi == anchor:
            continue
        d, j = cKDTree(cents[gi]).query(cents[anchor])
        mismatch += d
        centre += cents[gi][j]
        idx_of[gi] = j
        match[gi] = cfg[j]
    centre /= len(groups)
    # The postures whose centres agree best, then how well their pushes enclose the ball: for
    # the worst direction u, the largest n_i . u over the contacts (the pads must push from all
    # sides: contacts all below the equator squeeze the ball out like a seed), and the
    # penetration on the whole hand.
    best = np.argsort(mismatch)[: 16 * count]
    nrm = np.stack([norms[anchor][best]] + [norms[gi][cfg_j[best]] for gi, cfg_j in idx_of.items()], axis=1)
    cover = (nrm @ _DIRECTIONS.T).max(axis=1).min(axis=1)  # (M,) in [-1, 1]
    score = mismatch[best] + W_COVER_M * (1.0 - cover) + W_BALANCE_M * np.linalg.norm(nrm.mean(axis=1), axis=1)
    # The fingers curl over the ball and press it towards the palm (the thumb on the palm side):
    # fingers that press it away from the palm hold it on their open pads, and a push rolls it
    # over their tips. Charged by the mean of the fingers' normals along the palm normal.
    labels = list(problem.hand.regions.labels)
    if "palm.pad" in labels and settings.opposed_curl:
        pad = surf.label_ids == labels.index("palm.pad")
        up = surf.local_normals[pad].mean(axis=0)
        up /= max(float(np.linalg.norm(up)), 1e-9)
        finger_rows = [k + 1 for k, gi in enumerate(idx_of) if fingers[gi] != "thumb"] if anchor == fingers.index("thumb") else []
        if finger_rows:
            score = score + settings.opposed_curl * (nrm[:, finger_rows] @ up).mean(axis=1)
    qc = q[cfg[best]].copy()
    for gi, rows in match.items():
        cols = problem.finger_columns[fingers[gi]]
        qc[:, cols] = q[rows[best]][:, cols]
    x = np.concatenate([centre[best], np.zeros((len(best), 3))], axis=1)
    sw = _Sweeper(problem)
    dl = sw.link_distance(x, qc)  # (M, L)
    pen = np.maximum(-dl - PENETRATION_SLACK_M, 0.0).max(axis=1) if dl.shape[1] else np.zeros(len(best))
    # A finger that rests on the ball with a second phalanx too (the distal and middle pads of
    # the holding tripod) wraps it: charged by the gap of its second-nearest link.
    wrap = np.zeros(len(best))
    for f in fingers:
        mine = [k for k, li in enumerate(sw.links) if sw.moves[k, problem.finger_columns[f]].any()]
        if len(mine) >= 2:
            wrap += np.clip(np.sort(dl[:, mine], axis=1)[:, 1], 0.0, 0.02)
    forb = np.zeros(len(best))
    if len(problem.forbidden):
        fp, _ = _posed(problem.tree.forward_kinematics(qc), surf, np.repeat(problem.forbidden[None], len(best), axis=0))
        dist = problem.sdf.distance(fp - x[:, None, :3])
        forb = problem.forbidden_intrusion(dist).max(axis=1)
    total = score + W_PENETRATION * pen + W_FORBIDDEN * forb + settings.opposed_wrap * wrap
    keep = np.argsort(total, kind="stable")[:count]
    return x[keep], qc[keep]


def _object_poses(problem: GraspProblem, rng: np.random.Generator, count: int, q_rand: _F,
                  settings: ClosingSettings) -> _F:
    """(count, 6) object positions [m] and rotation vectors [rad] in the palm frame."""
    surf, sdf = problem.surface, problem.sdf
    shape = problem.grasp.object.shape
    labels = list(problem.hand.regions.labels)
    palm_types = "palm.pad" in problem.group_names
    if palm_types and "palm.pad" in labels:
        pts0, nrm0 = surf.pose(np.zeros((1, problem.n)))
        pid = labels.index("palm.pad")
        face = np.flatnonzero((surf.label_ids == pid) & (nrm0[0, :, 2] > 0.9))
        if not len(face):
            face = np.flatnonzero(surf.label_ids == pid)
        pick = rng.choice(face, size=count)
        anchor, normal = pts0[0, pick], nrm0[0, pick]
        # The palm's lateral axis: across the finger roots (normal x finger direction).
        lateral = np.cross(normal, np.array([1.0, 0.0, 0.0]))
        lateral /= np.maximum(np.linalg.norm(lateral, axis=1, keepdims=True), 1e-9)
        if shape in ("cylinder", "capsule"):
            ang = np.radians(rng.uniform(-settings.palm_axis_deg, settings.palm_axis_deg, size=count))[:, None]
            axis = np.cos(ang) * lateral + np.sin(ang) * np.cross(normal, lateral)
            rot = _axis_frames(axis, rng)
        elif shape == "box":
            # The box's thinnest axis along the palm normal, a random turn about it.
            half = np.asarray(sdf.half_extents)
            thin = int(np.argmin(half))
            base = _axis_frames(normal, rng)  # z column = normal
            perm = np.eye(3)[:, [(thin + 1) % 3, (thin + 2) % 3, thin]]  # object axis ``thin`` -> column z
            rot = np.matmul(base, perm.T)
        else:
            rot = _random_rotations(rng, count)
        rv = _matrix_to_rotvec(rot)
        # Lower the object along the normal until the palm is palm_gap_m outside it: the pad
        # face on a fine grid (the box samples are too coarse for a millimetre gap), the rest
        # of the palm's samples as they are.
        palm = pts0[0, surf.finger == "palm"]
        fpts, fn = pts0[0, face], nrm0[0, face].mean(axis=0)
        fn /= np.linalg.norm(fn)
        u = np.cross(fn, [1.0, 0.0, 0.0] if abs(fn[0]) < 0.9 else [0.0, 1.0, 0.0])
        u /= np.linalg.norm(u)
        v = np.cross(fn, u)
        level = np.round(fpts @ fn, 3)  # one grid per face (a palm may be several boxes)
        grids = [palm]
        for lv in np.unique(level):
            sub = fpts[level == lv]
            cu, cv = sub @ u, sub @ v
            gu, gv = np.meshgrid(np.arange(cu.min(), cu.max() + 1e-9, _PALM_GRID_M),
                                 np.arange(cv.min(), cv.max() + 1e-9, _PALM_GRID_M))
            grids.append(gu.reshape(-1, 1) * u + gv.reshape(-1, 1) * v + lv * fn)
        palm = np.concatenate(grids)[None]

        def gap(h: _F) -> _F:
            x = np.concatenate([anchor + h[:, None] * normal, rv], axis=1)
            return sdf.distance(problem.object_frame(x, np.repeat(palm, count, axis=0))).min(axis=1)

        # Bisection on the height: below it the object is closer than the gap, above it clear.
        lo_h, hi_h = np.zeros(count), np.full(count, 2.2 * float(max(sdf.half_extents)) + 0.01)
        for _ in range(_PALM_BISECTIONS):
            mid = (lo_h + hi_h) / 2
            clear = gap(mid) >= settings.palm_gap_m
            hi_h = np.where(clear, mid, hi_h)
            lo_h = np.where(clear, lo_h, mid)
        return np.concatenate([anchor + hi_h[:, None] * normal, rv], axis=1)
    # Between two required groups (the thumb's first when it has one) in a random configuration.
    pts, _ = surf.pose(q_rand)
    groups = [g for g in problem.groups if len(g)]
    rows = np.arange(count)
    if len(groups) >= 2:
        thumb = [i for i, g in enumerate(groups) if (surf.finger[g] == "thumb").all()]
        first = thumb[0] if thumb else 0
        others = [i for i in range(len(groups)) if i != first]
        second = rng.choice(others, size=count)
        a = pts[rows, rng.choice(groups[first], size=count)]
        b = np.stack([pts[r, rng.choice(groups[second[r]])] for r in rows])
        centre = (a + b) / 2
        if shape in ("cylinder", "capsule", "box"):
            # The long axis across the line between the two contacts.
            u = b - a
            u /= np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-9)
            v = np.cross(u, rng.normal(size=(count, 3)))
            rot = _axis_frames(v, rng)
            if shape == "box":
                # The box's thinnest axis along the line between the contacts.
                thin = int(np.argmin(np.asarray(sdf.half_extents)))
                base = _axis_frames(u, rng)
                rot = np.matmul(base, np.eye(3)[:, [(thin + 1) % 3, (thin + 2) % 3, thin]].T)
        else:
            rot = _random_rotations(rng, count)
    else:
        pool = groups[0] if groups else np.arange(len(surf))
        k = rng.choice(pool, size=count)
        centre = pts[rows, k]
        rot = _random_rotations(rng, count)
    return np.concatenate([centre, _matrix_to_rotvec(rot)], axis=1)


def _group_scores(problem: GraspProblem, x_pose: _F, q: _F) -> tuple[_F, _F]:
    """How each required group is met the way the physics labels a contact: per link, its
    sample nearest the object is where a contact would be reported, so a group is met by a
    link whose nearest samples carry the group's labels. Score per group: the smallest, over
    the links that carry the group's labels, of the link's gap plus ``LABEL_MISS_M`` times the
    fraction of its ``_LABEL_SAMPLES`` nearest samples with another label.

    Returns:
        ``(score (B, G) [m], link (B, G) the scoring link's index into problem.tree links)``.
    """
    surf, sdf = problem.surface, problem.sdf
    links = np.unique(surf.link_index)
    per_link = [np.flatnonzero(surf.link_index == li) for li in links]
    group_labels = [np.unique(surf.label_ids[g]) for g in problem.groups]
    score = np.full((len(q), len(problem.groups)), np.inf)
    owner = np.zeros((len(q), len(problem.groups)), dtype=np.int64)
    for lo in range(0, len(q), 1024):
        sl = slice(lo, lo + 1024)
        pts, _ = surf.pose(q[sl])
        rot = rotvec_to_matrix(x_pose[sl, 3:6])
        d = sdf.distance(np.matmul(pts - x_pose[sl, None, :3], rot))
        rows = np.arange(len(d))
        for li, idx in zip(links, per_link):
            near = np.argsort(d[:, idx], axis=1)[:, :_LABEL_SAMPLES]  # the link's nearest samples
            k = idx[near[:, 0]]
            gap = np.abs(d[rows, k])
            lab = surf.label_ids[idx[near]]  # (b, k)
            for gi, labs in enumerate(group_labels):
                if not len(labs) or not np.isin(labs, surf.label_ids[idx]).any():
                    continue
                # The contact point moves with the benchmark's jitter: the fraction of the
                # nearest samples off the group's labels is charged, not only the nearest one's.
                sc = gap + LABEL_MISS_M * (~np.isin(lab, labs)).mean(axis=1)
                better = sc < score[sl, gi]
                score[sl, gi] = np.where(better, sc, score[sl, gi])
                owner[sl, gi] = np.where(better, li, owner[sl, gi])
    return score, owner


def _finger_scores(problem: GraspProblem, x_pose: _F, q: _F, sw: _Sweeper, fingers: list[str],
                   dq: _F | None = None) -> tuple[_F, _F]:
    """Per finger, how well it serves the type at ``q``: the scores of the required groups it
    meets (:func:`_group_scores`; with ``dq``, the closing direction, plus ``W_APPROACH_M``
    times one minus the approach cosine of the link meeting each, :meth:`_Sweeper.approach`),
    its penetration and its forbidden intrusion, (B, F) [m]; and the group scores (B, G)."""
    surf, sdf = problem.surface, problem.sdf
    gscore, owner = _group_scores(problem, x_pose, q)
    link_finger = {}
    for li in np.unique(surf.link_index):
        link_finger[int(li)] = surf.finger[np.flatnonzero(surf.link_index == li)[0]]
    owner_finger = np.vectorize(lambda li: link_finger.get(int(li), "palm"))(owner) if owner.size else owner
    if dq is not None:
        # A required group met by a link the closing motion only grazes is charged.
        cos = sw.approach(x_pose, q, dq)  # (B, L)
        pos = {int(li): k for k, li in enumerate(sw.links)}
        col = np.vectorize(lambda li: pos.get(int(li), -1))(owner) if owner.size else owner
        c = np.where(col >= 0, np.take_along_axis(cos, np.maximum(col, 0), axis=1), 1.0)
        gscore = gscore + W_APPROACH_M * (1.0 - np.clip(c, -1.0, 1.0))
    out = np.zeros((len(q), len(fingers)))
    for fi, f in enumerate(fingers):
        out[:, fi] = np.where(owner_finger == f, gscore, 0.0).sum(axis=1)
    if len(problem.forbidden):
        for lo in range(0, len(q), 1024):
            sl = slice(lo, lo + 1024)
            pts, _ = surf.pose(q[sl])
            rot = rotvec_to_matrix(x_pose[sl, 3:6])
            d = sdf.distance(np.matmul(pts[:, problem.forbidden] - x_pose[sl, None, :3], rot))
            forb = problem.forbidden_intrusion(d)
            for fi, f in enumerate(fingers):
                mine = surf.finger[problem.forbidden] == f
                if mine.any():
                    out[sl, fi] += W_FORBIDDEN * forb[:, mine].max(axis=1)
    dl = sw.link_distance(x_pose, q)  # (B, L)
    for fi, f in enumerate(fingers):
        mine = np.array([link_finger.get(int(li), "palm") == f for li in sw.links])
        if mine.any():
            out[:, fi] += W_PENETRATION * np.maximum(-dl[:, mine] - PENETRATION_SLACK_M, 0.0).max(axis=1)
    return out, gscore


def sweep_candidates(problem: GraspProblem, rng: np.random.Generator, settings: ClosingSettings = DEFAULT_CLOSING,
                     count: int = 16) -> list[Candidate]:
    """The best candidates of the closing model (see the module notes), one plan per squeeze.

    Args:
        problem: The grasp problem.
        rng: The random generator (the only source of randomness).
        settings: Sample count, sweep and squeeze numbers.
        count: Distinct contact configurations returned (each with every squeeze).

    Returns:
        Up to ``count * len(settings.presses_m)`` candidates: the contact configurations by
        cost (lowest first), each with its presses in the settings' order.
    """
    s = settings
    nb, nv, n = s.poses, s.variants, problem.n
    b = nb * nv
    lo, hi = problem.lower, problem.upper
    names = problem.tree.joint_names
    spread = np.array([("abd" in j) or ("roll" in j) for j in names])
    span = hi - lo
    q_rand = rng.uniform(lo, hi, size=(b, n))
    open_q = lo + rng.uniform(0.0, s.open_fraction, size=(b, n)) * span
    end_q = lo + rng.uniform(s.end_fraction, 1.0, size=(b, n)) * span
    open_q[:, spread] = q_rand[:, spread]
    end_q[:, spread] = q_rand[:, spread]
    # Fingers the type forbids entirely stay clear: open, or curled to their end value.
    labels = list(problem.hand.regions.labels)
    other = labels.index("other") if "other" in labels else -1
    forb_ids = set(problem.surface.label_ids[problem.forbidden].tolist())
    sweeping = np.ones(n, dtype=bool)
    for finger, cols in problem.finger_columns.items():
        ids = set(problem.surface.label_ids[problem.surface.finger == finger].tolist()) - {other}
        if len(cols) and ids and ids <= forb_ids:
            sweeping[cols] = False
            curl = rng.random(b) < 0.5
            open_q[np.ix_(curl, cols)] = end_q[np.ix_(curl, cols)]
            end_q[:, cols] = open_q[:, cols]
    # One object pose per ``variants`` hand samples.
    opposed = _opposed_poses(problem, rng, nb, s) if s.opposed_samples else None
    if opposed is None:
        x_pose = np.repeat(_object_poses(problem, rng, nb, q_rand[::nv], s), nv, axis=0)
    else:
        # The fingers that carry a required group sweep through their opposed posture: open a
        # random part of the way back to the lower limit, end a random part of the way on.
        nb = len(opposed[0])
        b = nb * nv
        x_pose = np.repeat(opposed[0], nv, axis=0)
        qc = np.repeat(opposed[1], nv, axis=0)
        open_q, end_q, q_rand = open_q[:b], end_q[:b], q_rand[:b]
        req = np.zeros(n, dtype=bool)
        for finger, cols in problem.finger_columns.items():
            if any(len(g) and (problem.surface.finger[g] == finger).all() for g in problem.groups):
                req[cols] = True
        a = rng.uniform(*s.opposed_open, size=(b, 1))
        e = rng.uniform(*s.opposed_end, size=(b, 1))
        o2 = np.where(spread, qc, qc - a * (qc - lo))
        # The same direction on both sides, so the straight path passes through the posture.
        e2 = np.where(spread, qc, np.minimum(qc + e * (qc - lo), hi))
        open_q = np.where(req, o2, open_q)
        end_q = np.where(req, e2, end_q)
    sw = _Sweeper(problem)
    moving = ~spread & sweeping
    alpha = np.zeros((b, n))
    stopped = np.zeros((b, n), dtype=bool)
    stopped[:, ~moving] = True
    step = 1.0 / s.steps
    blocker = np.zeros((b, n), dtype=np.int64)
    # A coarse sweep, then a fine one (a quarter step) from where each joint stopped.
    schedule = [step] * s.steps + [step / _FINE] * _FINE
    for it, inc in enumerate(schedule):
        if it == s.steps:
            stopped = ~moving[None] | (alpha >= 1.0)
        trial = np.where(stopped, alpha, np.minimum(alpha + inc, 1.0))
        q = open_q + trial * (end_q - open_q)
        hit = sw.link_distance(x_pose, q) < 0.0  # (B, L)
        block = (hit.astype(np.int64) @ sw.moves.astype(np.int64)) > 0  # (B, n)
        new = block & moving[None] & ~stopped
        if new.any():
            # The link that stopped each joint: the last hit link (in the core order) it moves.
            hits = hit[:, :, None] & sw.moves[None]  # (B, L, n)
            last = sw.moves.shape[0] - 1 - np.argmax(hits[:, ::-1], axis=1)
            blocker = np.where(new, last, blocker)
        stopped |= block & moving[None]
        alpha = np.where(stopped, alpha, trial)
    contact_q = open_q + alpha * (end_q - open_q)
    touched = stopped & moving[None] & (alpha < 1.0)  # joints that stopped on the object
    # Each finger is its own kinematic chain: per object pose, keep each finger's best variant.
    fingers = [f for f, cols in problem.finger_columns.items() if len(cols)]
    score, _ = _finger_scores(problem, x_pose, contact_q, sw, fingers, np.where(moving, end_q - open_q, 0.0))
    # A finger a required group lives on must have stopped on the object, not hover beside it.
    for fi, f in enumerate(fingers):
        if any(len(g) and (problem.surface.finger[g] == f).all() for g in problem.groups):
            score[:, fi] += np.where(touched[:, problem.finger_columns[f]].any(axis=1), 0.0, UNTOUCHED_M)
    score = score.reshape(nb, nv, len(fingers))
    pick = np.argmin(score, axis=1)  # (nb, F)
    base = np.arange(nb) * nv
    rows = np.repeat(base[:, None], n, axis=1)
    for fi, f in enumerate(fingers):
        rows[:, problem.finger_columns[f]] = (base + pick[:, fi])[:, None]
    cols = np.arange(n)[None]
    open_q, end_q, contact_q, touched, blocker = (a[rows, cols] for a in (open_q, end_q, contact_q, touched, blocker))
    x_pose = x_pose[base]
    d0 = sw.link_distance(x_pose, open_q)
    start_gap = d0.min(axis=1) if d0.shape[1] else np.full(nb, np.inf)
    x = np.concatenate([x_pose, contact_q], axis=1)
    margin = problem.self_margin
    problem.self_margin = s.self_margin_m
    try:
        cost, terms, _, _ = problem.evaluate(x)
    finally:
        problem.self_margin = margin
    for f in fingers:
        if any(len(g) and (problem.surface.finger[g] == f).all() for g in problem.groups):
            cost = cost + np.where(touched[:, problem.finger_columns[f]].any(axis=1), 0.0, UNTOUCHED_M)
    # The contact term as the physics labels contacts (each link's nearest sample), instead of
    # the optimisation's best-facing sample of each group.
    labelled = _finger_scores(problem, x_pose, contact_q, sw, fingers, np.where(moving, end_q - open_q, 0.0))[1].sum(axis=1)
    cost = cost - terms["contact"] + labelled
    terms = terms | {"contact": labelled}
    # The scripted ramp drives the straight joint path from the pre-shape to the targets: it must
    # not run the hand through the object before the contact configuration.
    path_pen = np.zeros(nb)
    for a in (0.25, 0.5, 0.75, 0.9):
        d = sw.link_distance(x_pose, open_q + a * (contact_q - open_q)).min(axis=1)
        path_pen = np.maximum(path_pen, np.maximum(-d - 0.0005, 0.0))
    cost = cost + W_PENETRATION * path_pen
    cost = np.where(start_gap >= s.clearance_m, cost, np.inf)
    order = np.argsort(cost, kind="stable")
    order = order[np.isfinite(cost[order])][:count]
    out: list[Candidate] = []
    if not len(order):
        return out
    xs = x[order]
    q1 = problem.quality(xs, problem.evaluate(xs)[2])
    lever = sw.levers(x_pose[order], contact_q[order], blocker[order])  # (K, n) [m]
    lim_lo, lim_hi = lo + s.limit_margin_rad, hi - s.limit_margin_rad
    thumb_cols = np.zeros(n, dtype=bool)
    # The last joint of each finger (the DIP: the weakest motor, 0.6 N m on the default hand)
    # folds past its limit under a deep press: it gets the shallow one.
    distal_cols = np.zeros(n, dtype=bool)
    for cols in problem.finger_columns.values():
        if len(cols):
            distal_cols[cols[-1]] = True
    if problem.hand.thumb_abduction is not None:
        for finger, cols in problem.finger_columns.items():
            if problem.tree.joint_index(problem.hand.thumb_abduction.joint) in cols:
                thumb_cols[cols] = True
    if opposed is not None:
        # A pinch presses each finger along its contact normal (every joint of the finger).
        per_m = sw.normal_press(x_pose[order], contact_q[order], problem.finger_columns,
                                effort=problem.efforts if s.opposed_effort_weighted else None)
        pressing = np.abs(per_m) > 0
    for k, i in enumerate(order):
        direction = np.sign(end_q[i] - open_q[i])
        term = {name: float(v[i]) for name, v in terms.items()} | {"sweep": float(W_PENETRATION * path_pen[i])}
        for depth, thumb_depth in (s.presses_m if opposed is None else s.opposed_presses_m):
            # Per joint, the turn that presses the link that stopped it ``depth`` into the
            # object (its lever arm from the contact configuration), at most ``max_squeeze_rad``.
            press = np.where(thumb_cols | distal_cols, min(depth, thumb_depth), depth)
            sq = np.minimum(press / np.maximum(lever[k], 1e-3), s.max_squeeze_rad)
            close = np.where(touched[i], contact_q[i] + sq * direction, end_q[i])
            if opposed is not None:
                push = np.where(thumb_cols, thumb_depth, depth) * per_m[k]
                close = np.where(pressing[k], contact_q[i] + np.clip(push, -s.max_squeeze_rad, s.max_squeeze_rad), close)
            clip = moving | (pressing[k] if opposed is not None else False)
            close = np.where(clip, np.clip(close, np.minimum(lim_lo, contact_q[i]), np.maximum(lim_hi, contact_q[i])), close)
            out.append(Candidate(
                cost=float(cost[i]), q1=float(q1[k]), object_xyz=x_pose[i, :3].copy(),
                object_quat_wxyz=rotvec_to_quat(x_pose[i, 3:6]), contact_q=contact_q[i].copy(),
                preshape=open_q[i].copy(), close=close, clearance_m=float(start_gap[i]), terms=term,
                solution=x[i].copy(),
            ))
    return out
