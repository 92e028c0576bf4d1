"""What the effort-capped finger motors can hold: the motor-wrench margin of a grasp (a small LP).

The benchmark pushes the released object at its centre of mass with ``disturbance_factor``
times its weight along each world axis (gravity on meanwhile), with the motors capped at the
URDF efforts. A grasp can resist a push ``F`` only if some contact forces ``f_i`` inside their
(linearised) friction cones balance it,

    sum_i f_i = -F,      sum_i (p_i - c) x f_i = 0,

while the joint torques that those forces load the fingers with stay within the motors' caps,

    |sum_i J_i^T f_i|_j <= effort_j   for every joint j

(``J_i`` the 3 x n translational Jacobian of contact ``i``; palm contacts load no joint). For
each push direction the linear programme (scipy.optimize.linprog, HiGHS) finds the largest
scale ``t`` of the push that can be balanced; the grasp's margin is the smallest ``t`` over the
directions (1 = exactly the protocol's push; 0 = some direction cannot be resisted at all, as
without force closure). This is an upper bound of what physics holds (the motors must also
reach those torques, the object may roll), which is why it only ranks candidates and the
physics trial decides. Soft-finger torsional friction is ignored (conservative).

Model from grasp analysis (e.g. Murray, Li and Sastry, "A Mathematical Introduction to
Robotic Manipulation", 1994, ch. 5: the grasp map, friction cones and the hand Jacobian);
the push magnitude and directions from :class:`handsim.tolerances.Protocol`.

Pure numpy + scipy: no PyBullet.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import linprog

__all__ = ["AXIS_DIRECTIONS", "cone_edges", "motor_wrench_margin"]

_F = NDArray[np.float64]

#: The six world-axis push directions of the protocol, (6, 3).
AXIS_DIRECTIONS: _F = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=np.float64)


def cone_edges(normals: ArrayLike, friction: float, num_edges: int = 8) -> _F:
    """Edges of the linearised (inscribed polyhedral) friction cones.

    Args:
        normals: (C, 3) unit contact normals, pointing into the object (the direction a
            frictionless contact pushes it).
        friction: Coulomb friction coefficient [-].
        num_edges: Edges per cone.

    Returns:
        (C, K, 3) edge directions ``n + mu (cos a t1 + sin a t2)`` (not normalised).
    """
    n = np.asarray(normals, dtype=np.float64)
    n = n / np.linalg.norm(n, axis=1, keepdims=True)
    # A tangent basis per contact: the world axis least aligned with n, made orthogonal.
    helper = np.eye(3)[np.argmin(np.abs(n), axis=1)]
    t1 = np.cross(n, helper)
    t1 /= np.linalg.norm(t1, axis=1, keepdims=True)
    t2 = np.cross(n, t1)
    a = 2 * math.pi * np.arange(num_edges) / num_edges
    tang = np.cos(a)[None, :, None] * t1[:, None] + np.sin(a)[None, :, None] * t2[:, None]
    return n[:, None] + friction * tang


def motor_wrench_margin(
    points: ArrayLike,
    normals: ArrayLike,
    jacobians: ArrayLike,
    efforts: ArrayLike,
    friction: float,
    center: ArrayLike,
    force_n: float,
    directions: ArrayLike = AXIS_DIRECTIONS,
    num_edges: int = 8,
    t_max: float = 10.0,
) -> tuple[float, _F]:
    """Largest multiple of a push, per direction, the contacts and the capped motors can balance.

    Args:
        points: (C, 3) contact points [m].
        normals: (C, 3) unit normals into the object [-].
        jacobians: (C, 3, n) d point / d q of each contact on its finger [m/rad] (zeros for a
            contact on a link no joint moves, e.g. the palm).
        efforts: (n,) motor torque caps [N m].
        friction: Coulomb friction coefficient [-].
        center: (3,) where the push acts (the object's centre of mass) [m].
        force_n: Magnitude of the push [N].
        directions: (D, 3) unit push directions (default the six axes).
        num_edges: Friction-cone edges.
        t_max: Cap of the scale (the LP is bounded by it) [-].

    Returns:
        ``(margin, t)``: ``t`` (D,) the largest scale of the push along each direction that
        can be balanced (0 when none can; ``t_max`` when at least that), ``margin = min(t)``.
    """
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    dirs = np.asarray(directions, dtype=np.float64).reshape(-1, 3)
    if len(p) == 0:
        return 0.0, np.zeros(len(dirs))
    edges = cone_edges(normals, friction, num_edges)  # (C, K, 3)
    c, k = edges.shape[:2]
    jac = np.asarray(jacobians, dtype=np.float64).reshape(c, 3, -1)
    eff = np.asarray(efforts, dtype=np.float64)
    arm = p - np.asarray(center, dtype=np.float64)
    torques = np.cross(arm[:, None], edges)  # (C, K, 3)
    # Scale torques by a length so that force and torque rows are of one size for the solver.
    length = max(float(np.abs(arm).max()), 1e-3)
    wrench = np.concatenate([edges, torques / length], axis=2).reshape(c * k, 6).T  # (6, CK)
    joint = np.einsum("cin,cki->nck", jac, edges).reshape(len(eff), c * k)  # (n, CK) torque per unit edge weight
    loaded = np.abs(joint).max(axis=1) > 1e-12
    a_ub = np.concatenate([joint[loaded], -joint[loaded]])
    a_ub = np.concatenate([a_ub, np.zeros((len(a_ub), 1))], axis=1)
    b_ub = np.concatenate([eff[loaded], eff[loaded]])
    cost = np.zeros(c * k + 1)
    cost[-1] = -1.0  # maximise t
    bounds = [(0.0, None)] * (c * k) + [(0.0, t_max)]
    out = np.zeros(len(dirs))
    for d, u in enumerate(dirs):
        push = np.concatenate([u * force_n, np.zeros(3)])
        a_eq = np.concatenate([wrench, push[:, None]], axis=1)  # sum f + t F = 0
        res = linprog(cost, A_ub=a_ub if len(a_ub) else None, b_ub=b_ub if len(a_ub) else None, A_eq=a_eq,
                      b_eq=np.zeros(6), bounds=bounds, method="highs")
        out[d] = float(res.x[-1]) if res.status == 0 else 0.0
    return float(out.min()), out
