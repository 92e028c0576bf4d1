"""Analytic grasp quality in wrench space, vectorised over a batch of grasps.

Three classic measures of a set of point contacts with Coulomb friction:

* :func:`epsilon_quality`: the Ferrari-Canny quality Q1 (C. Ferrari and J. Canny, "Planning
  optimal grasps", ICRA 1992), L1 / "sum of normal forces" variant: the radius of the largest
  origin-centred ball inside the convex hull of the primitive contact wrenches. It is 0 when
  the grasp is not force closure.
* :func:`force_closure`: whether the origin lies strictly inside that hull (B. Mishra,
  J. T. Schwartz and M. Sharir, "On the existence and synthesis of multifinger positive
  grips", Algorithmica 1987: a grasp is force closure iff the primitive wrenches positively
  span wrench space, i.e. the origin is interior to their convex hull).
* :func:`hull_volume`: the 6-D volume of the wrench hull (Q-volume in the grasp-quality
  survey of M. A. Roa and R. Suarez, "Grasp quality measures: review and performance",
  Autonomous Robots 2015).

Each contact's friction cone is linearised into ``num_edges`` unit-normal-force edges
(:func:`friction_cone_wrenches`), so the hull is a polytope and all three measures are exact
(to floating-point tolerance ``HULL_REL_TOL``), not estimated by sampling directions. With
``torsion`` the contacts are soft fingers, which also resist a twist about their normal (each
edge twisted either way: ``2 * num_edges`` wrenches per contact); that is the contact the
simulator models, while the point-contact Q1 is the figure peers report.

Algorithm (why it is batched and exact). Q1 is the smallest facet offset of the hull, but the
full hull of 40 points in 6-D has ~2000 facets and only the nearest one matters. We grow an
inner polytope P, a subset of the hull's vertices, the way the expanding-polytope algorithm
(EPA, G. van den Bergen, "Proximity queries and penetration depth computation on 3D game
objects", GDC 2001) does: take P's facet with the smallest offset ``b`` and normal ``n``; if
no wrench reaches beyond it (``max_i w_i . n <= b``) that facet also supports the full hull, and
because P is inside the hull, ``b`` is Q1 exactly; otherwise add the farthest wrench to P with a
beneath-beyond step (remove the facets it sees, cone the horizon to it). Every grasp of the
batch runs the same step at once on padded arrays (facets are simplices with a neighbour
table; the horizon is where a visible facet borders a kept one; a new facet's plane is the
pencil combination of the two planes at its horizon ridge, O(d) per facet; new facets are
stitched together by sorting packed (d-2)-face keys per grasp); grasps that finish leave the
batch. There is no per-grasp Python loop. A single grasp (what an env scores every step) takes
the same steps on arrays without the batch axis (``_Hull``): the same floating-point operations
on the same operands, so the same bits, with less bookkeeping (about twice as fast on the
contacts of scripted grasps). Slices of ``_CHUNK`` grasps run one after another so that the
facet arrays stay in the CPU cache. If rounding ever leaves a grasp's facet
structure inconsistent (never seen in the tests) that grasp alone is recomputed with
``scipy.spatial.ConvexHull``. On 5 contacts x 8 edges an average force-closure grasp needs
~20 of the 40 wrenches and ~550 facets, against ~1750 for the full hull; see
``benchmarks/bench_quality.py`` for the speed against a per-grasp Qhull loop.
:func:`hull_volume` runs the same beneath-beyond step over every wrench in turn (farthest
first) and sums the volumes of the cones from an interior point over the final facets.

Degenerate input returns 0 (and ``False`` for :func:`force_closure`) instead of raising:
fewer than 7 affinely independent wrenches, all wrenches in a lower-dimensional subspace
(e.g. frictionless contacts on a sphere, which exert no torque about its centre), a contact
whose normal has zero length. NaN / inf in an unmasked contact and wrong shapes raise
:class:`handsim.errors.ConfigurationError` naming the argument.

Shapes: ``B`` grasps, ``C`` contacts, ``k`` cone edges, ``N = C * k`` primitive wrenches. A
single grasp (``points`` of shape ``(C, 3)``) is promoted to a batch of one and the batch axis
is removed again from the result, so a single grasp gives a 0-d array (shape ``()``).
Everything here is pure numpy (no PyBullet).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from handsim.errors import ConfigurationError

__all__ = [
    "HULL_REL_TOL",
    "RANK_REL_TOL",
    "epsilon_quality",
    "force_closure",
    "friction_cone_wrenches",
    "hull_volume",
    "wrench_epsilon",
    "wrench_hull_volume",
]

#: A wrench counts as beyond a hull facet when it is farther than this times the grasp's
#: largest wrench norm; also the accuracy of Q1 [fraction of the largest wrench norm].
HULL_REL_TOL = 1e-10
#: Wrenches whose affine span is thinner than this times the largest wrench norm in some
#: direction count as lower-dimensional: Q1 and the volume are then 0 [fraction].
RANK_REL_TOL = 1e-9
#: Grasps processed together (see ``_chunked``).
_CHUNK = 256
#: A contact normal shorter than this is a zero normal (the grasp is degenerate) [-].
_ZERO_NORMAL = 1e-12
#: The key of a facet column that is no ridge through the new point (sorts last).
_KEY_SENTINEL = np.iinfo(np.int64).max

_Float = NDArray[np.float64]


# ----------------------------------------------------------------------------------------------
# Input checking


def _as_float(name: str, value: ArrayLike) -> _Float:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"{name}: expected a numeric array, got {type(value).__name__}") from exc
    return arr


def _check_finite(name: str, arr: _Float, where: NDArray[np.bool_] | None = None) -> None:
    bad = ~np.isfinite(arr)
    if where is not None:
        bad &= where
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ConfigurationError(f"{name}: expected finite values, got {arr[first]} at index {first}")


def _batch_contacts(
    points: ArrayLike, normals: ArrayLike, mask: ArrayLike | None
) -> tuple[_Float, _Float, NDArray[np.bool_], bool]:
    """Promote (C, 3) to (1, C, 3), check shapes and finiteness (unmasked contacts only)."""
    p = _as_float("points", points)
    n = _as_float("normals", normals)
    if p.ndim not in (2, 3) or p.shape[-1] != 3:
        raise ConfigurationError(f"points: expected shape (B, C, 3) or (C, 3) [m], got {p.shape}")
    single = p.ndim == 2
    if n.shape != p.shape:
        raise ConfigurationError(f"normals: expected the shape of points {p.shape}, got {n.shape}")
    if single:
        p, n = p[None], n[None]
    if p.shape[1] == 0:
        raise ConfigurationError(f"points: expected at least one contact, got shape {p.shape}")
    if mask is None:
        m = np.ones(p.shape[:2], dtype=bool)
    else:
        m = np.asarray(mask)
        want = p.shape[1:2] if single else p.shape[:2]
        if m.dtype != np.bool_ or m.shape != want:
            raise ConfigurationError(
                f"mask: expected a bool array of shape {want} (True = contact used), got {m.dtype} {m.shape}"
            )
        m = m.reshape(p.shape[:2])
    _check_finite("points", p, m[..., None])
    _check_finite("normals", n, m[..., None])
    return p, n, m, single


def _per_grasp(name: str, value: ArrayLike, batch: int, contacts: int, single: bool, allow_contact: bool) -> _Float:
    """Broadcast a scalar / (B,) / (B, C) argument to (B, C) (single grasp: scalar / (C,))."""
    arr = _as_float(name, value)
    if arr.ndim == 0:
        return np.broadcast_to(arr, (batch, contacts))
    if single:
        if allow_contact and arr.shape == (contacts,):
            return arr[None]
        want = f"a scalar or shape ({contacts},)" if allow_contact else "a scalar"
    else:
        if arr.shape == (batch,):
            return np.broadcast_to(arr[:, None], (batch, contacts))
        if allow_contact and arr.shape == (batch, contacts):
            return arr
        want = f"a scalar, shape ({batch},)" + (f" or ({batch}, {contacts})" if allow_contact else "")
    raise ConfigurationError(f"{name}: expected {want}, got shape {arr.shape}")


def _tangent_basis(n: _Float) -> tuple[_Float, _Float]:
    """Orthonormal tangents (u, v) of unit normals n (..., 3), right-handed (u x v = n).

    The branch-free construction of T. Duff et al., "Building an orthonormal basis,
    revisited", JCGT 6(1) 2017: continuous except where n_z = -1 exactly, and deterministic,
    which matters because Q1 of a linearised cone depends on how its edges are rotated.
    """
    sign = np.where(n[..., 2] >= 0.0, 1.0, -1.0)
    a = -1.0 / (sign + n[..., 2])
    b = n[..., 0] * n[..., 1] * a
    u = np.stack([1.0 + sign * n[..., 0] ** 2 * a, sign * b, -sign * n[..., 0]], axis=-1)
    v = np.stack([b, sign + n[..., 1] ** 2 * a, -n[..., 1]], axis=-1)
    return u, v


# ----------------------------------------------------------------------------------------------
# Wrenches


def _wrenches(
    points: ArrayLike,
    normals: ArrayLike,
    mu: ArrayLike,
    num_edges: int,
    torque_scale: ArrayLike,
    center: ArrayLike | None,
    mask: ArrayLike | None,
    torsion: ArrayLike | None = None,
) -> tuple[_Float, NDArray[np.bool_], NDArray[np.bool_], bool]:
    """Shared body of the public functions: wrenches (B, N, 6), their mask, degenerate grasps."""
    p, n, m, single = _batch_contacts(points, normals, mask)
    batch, contacts = p.shape[:2]
    if isinstance(num_edges, bool) or not isinstance(num_edges, (int, np.integer)) or num_edges < 3:
        raise ConfigurationError(f"num_edges: expected an int >= 3 (edges of the linearised cone), got {num_edges!r}")
    k = int(num_edges)
    mu_b = _per_grasp("mu", mu, batch, contacts, single, allow_contact=True)
    _check_finite("mu", mu_b, m)
    if (np.where(m, mu_b, 0.0) < 0).any():
        raise ConfigurationError(f"mu: expected friction coefficients >= 0, got min {np.where(m, mu_b, 0).min()}")
    ts = _per_grasp("torque_scale", torque_scale, batch, 1, single, allow_contact=False)[:, 0]
    _check_finite("torque_scale", ts)
    if (ts <= 0).any():
        raise ConfigurationError(f"torque_scale: expected a length > 0 [m], got min {ts.min()}")
    if center is None:
        c = np.zeros((batch, 3))
    else:
        c = _as_float("center", center)
        if c.shape == (3,):
            c = np.broadcast_to(c, (batch, 3))
        elif single or c.shape != (batch, 3):
            want = "(3,)" if single else f"(3,) or ({batch}, 3)"
            raise ConfigurationError(f"center: expected shape {want} [m], got {c.shape}")
        _check_finite("center", c)

    length = np.linalg.norm(n, axis=-1)  # (B, C)
    zero = m & (length < _ZERO_NORMAL)
    unit = np.where(m[..., None] & ~zero[..., None], n / np.where(length > 0, length, 1.0)[..., None], 0.0)
    unit[zero | ~m] = (0.0, 0.0, 1.0)  # placeholder so the basis stays finite; zeroed below
    u, v = _tangent_basis(unit)
    t = 2.0 * np.pi * np.arange(k) / k
    mu_c = np.where(m, mu_b, 0.0)[..., None, None]  # (B, C, 1, 1)
    f = unit[:, :, None, :] + mu_c * (
        np.cos(t)[None, None, :, None] * u[:, :, None, :] + np.sin(t)[None, None, :, None] * v[:, :, None, :]
    )  # (B, C, k, 3) [N per unit normal force]
    r = np.where(m[..., None], p - c[:, None, :], 0.0)  # (B, C, 3) [m]
    tau = np.cross(r[:, :, None, :], f) / ts[:, None, None, None]  # (B, C, k, 3)
    if torsion is not None:
        # Soft finger: each edge twists either way about the normal, up to gamma per unit
        # normal force (edge j of sign +, then of sign -: k + k rows per contact).
        g = _per_grasp("torsion", torsion, batch, contacts, single, allow_contact=True)
        _check_finite("torsion", g, m)
        if (np.where(m, g, 0.0) < 0).any():
            raise ConfigurationError(f"torsion: expected torsional friction lengths >= 0 [m], got min {np.where(m, g, 0).min()}")
        spin = (np.where(m, g, 0.0) / ts[:, None])[..., None, None] * unit[:, :, None, :]  # (B, C, 1, 3)
        f = np.concatenate([f, f], axis=2)
        tau = np.concatenate([tau + spin, tau - spin], axis=2)
        k *= 2
    w = np.concatenate([f, tau], axis=-1)
    w[~m | zero] = 0.0
    valid = np.repeat(m & ~zero, k, axis=1)  # (B, C*k)
    return w.reshape(batch, contacts * k, 6), valid, zero.any(axis=1), single


def friction_cone_wrenches(
    points: ArrayLike,
    normals: ArrayLike,
    mu: ArrayLike,
    num_edges: int = 8,
    torque_scale: ArrayLike = 1.0,
    center: ArrayLike | None = None,
    torsion: ArrayLike | None = None,
) -> _Float:
    """Primitive wrenches of point contacts with linearised Coulomb friction cones.

    Edge ``j`` of contact ``c`` is the unit-normal-force edge
    ``f = n + mu (cos t_j u + sin t_j v)``, ``t_j = 2 pi j / k``, with ``(u, v)`` a deterministic
    orthonormal tangent basis of the unit normal ``n``; its wrench is
    ``[f; (p - center) x f / torque_scale]``.

    With ``torsion`` (gamma) the contacts are soft fingers: each may also twist the object
    about its normal by up to gamma times its normal force, independently of its tangential
    force (the soft-finger contact of R. M. Murray, Z. Li and S. S. Sastry, "A Mathematical
    Introduction to Robotic Manipulation", CRC Press 1994, Sec. 5.2: ``|f_t| <= mu f_n``,
    ``|tau_n| <= gamma f_n``; PyBullet's spinning friction is that same separate limit). Each
    edge then gives two wrenches, ``[f; ((p - center) x f +- gamma n) / torque_scale]``.

    Args:
        points: Contact points, shape (B, C, 3) or (C, 3) [m], in the object frame.
        normals: Contact normals, same shape, pointing INTO the object (the direction the
            finger pushes). They are normalised; a zero-length normal gives zero wrenches.
        mu: Friction coefficient(s) [-] >= 0: a scalar, (B,) per grasp or (B, C) per contact
            ((C,) for a single grasp).
        num_edges: Edges k >= 3 of each linearised cone.
        torque_scale: Length [m] dividing the torques so that they are commensurate with the
            forces (often the object's radius); a scalar or (B,).
        center: Torque reference point (the object's centre of mass), (3,) or (B, 3) [m];
            the origin by default.
        torsion: Torsional friction length(s) gamma >= 0 [m] (soft-finger contacts), shaped
            like ``mu``; None (default) for point contacts.

    Returns:
        Wrenches of shape (B, C * k, 6) ((C * k, 6) for a single grasp); row ``c * k + j`` is
        edge ``j`` of contact ``c``; columns are force [N] then scaled torque [N]. With
        ``torsion``, (B, 2 C k, 6): row ``c * 2k + j`` is edge ``j`` twisted by ``+gamma``,
        row ``c * 2k + k + j`` the same edge twisted by ``-gamma``.

    Raises:
        ConfigurationError: On a wrong shape, a non-finite value, ``mu < 0``,
            ``torsion < 0`` or ``torque_scale <= 0``, naming the argument.
    """
    w, _, _, single = _wrenches(points, normals, mu, num_edges, torque_scale, center, None, torsion)
    return w[0] if single else w


# ----------------------------------------------------------------------------------------------
# Batched hull machinery (any dimension d >= 2)


def _dot(a: _Float, b: _Float) -> _Float:
    """Row-wise dot product of component-major arrays (d, ...) . (d, ...) -> (...)."""
    out = a[0] * b[0]
    for j in range(1, a.shape[0]):
        out += a[j] * b[j]
    return out


def _planes(x: _Float, interior: _Float) -> tuple[_Float, _Float, _Float]:
    """Hyperplanes of simplicial facets, oriented away from an interior point.

    Arrays are component-major (structure of arrays) so every operation runs on long
    contiguous vectors; that is several times faster than (M, d, d) blocks with d = 6.

    Args:
        x: Facet vertices, shape (d, d, M): vertex, coordinate, facet.
        interior: A point strictly inside the polytope for each facet, shape (d, M).

    Returns:
        Unit outward normals (d, M), offsets b (M,) (the plane is ``n . y = b``) and the
        volume (M,) of the cone from ``interior`` over the facet.
    """
    d = x.shape[0]
    x0 = x[0]
    basis: list[_Float] = []
    log_area = np.zeros(x.shape[2])
    for i in range(1, d):
        e = x[i] - x0
        for q in basis:
            e -= _dot(e, q) * q
        norm = np.maximum(np.sqrt(_dot(e, e)), 1e-300)
        log_area += np.log(norm)
        e /= norm
        basis.append(e)
    r = interior - x0
    for _ in range(2):
        for q in basis:
            r -= _dot(r, q) * q
    depth = np.maximum(np.sqrt(_dot(r, r)), 1e-300)  # distance from the interior point
    normal = r / -depth
    offset = _dot(x[0], normal)
    for v in range(1, d):
        offset += _dot(x[v], normal)
    offset /= d
    cone = np.exp(log_area) / math.factorial(d - 1) * depth / d
    return normal, offset, cone


def _flat(arr: NDArray, axis: int) -> NDArray:
    """View of a C-contiguous array with the (A, F) axes starting at ``axis`` merged into one."""
    assert arr.flags.c_contiguous  # a copy would silently drop the writes
    shape = arr.shape[:axis] + (-1,) + arr.shape[axis + 2 :]
    return arr.reshape(shape)


def _drop_digit(packed: NDArray[np.int64], place: NDArray[np.intp], bits: int) -> NDArray[np.int64]:
    """Remove base-2**bits digit number ``place`` (0 = least significant) from packed keys."""
    shift = (bits * place).astype(np.int64)
    low = packed & ((np.int64(1) << shift) - 1)
    return ((packed >> (shift + bits)) << shift) | low


def _rank_in_group(group: NDArray[np.intp], size: int) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Position of each element within its group (``group`` sorted) and the group counts."""
    counts = np.bincount(group, minlength=size)
    start = np.cumsum(counts) - counts
    return np.arange(group.size) - start[group], counts


class _Hulls:
    """Simplicial convex polytopes of a batch of point sets on padded arrays, grown point by point.

    Facets live in F slots per grasp; slots ``< top`` are used (dead ones have ``alive`` False
    and offset +inf), new facets go after ``top`` and the slots are squeezed when they run out.
    Column j of a facet is its j-th smallest vertex index; ``nb[..., j]`` is the facet across
    the ridge that omits that vertex.

    Attributes (A active grasps, N points, F facet slots, d dimension):
        rows: (A,) index of each grasp in the caller's batch.
        w: (A, N, d) points; wt: (d, A, N) the same, component-major; valid: (A, N).
        tol: (A,) the "beyond" distance.
        interior: (d, A) centroid of the initial simplex, inside every later polytope.
        verts: (A, F, d) sorted point indices of each facet; nb: (A, F, d) neighbour slots;
        alive: (A, F); top: (A,); normal: (d, A, F) unit outward normals; offset: (A, F).
        broken: (A,) grasps whose facet structure became inconsistent (rounding): the caller
        recomputes them another way.
    """

    def __init__(
        self, w: _Float, valid: NDArray[np.bool_], tol: _Float, simplex: NDArray[np.intp], rows: NDArray[np.intp]
    ) -> None:
        a, n_pts, d = w.shape
        self.d = d
        self.bits = max(1, int(n_pts - 1).bit_length())
        if self.bits * (d - 1) > 50:
            raise ConfigurationError(
                f"wrenches: at most {2 ** (50 // (d - 1))} points per set in dimension {d}, got {n_pts}"
            )
        self.rows, self.w, self.valid, self.tol = rows, w, valid, tol
        self.wt = np.ascontiguousarray(w.transpose(2, 0, 1))
        ar = np.arange(a)[:, None]
        simplex = np.sort(simplex, axis=1)  # (A, d+1)
        self.interior = np.ascontiguousarray(w[ar, simplex].mean(axis=1).T)  # (d, A)
        f = d + 1
        drop = np.array([[j for j in range(f) if j != i] for i in range(f)])  # (d+1, d)
        cap = 4 * f
        self.verts = np.zeros((a, cap, d), dtype=np.int16 if n_pts < 2**15 else np.int32)
        self.verts[:, :f] = simplex[:, drop]  # facet i omits simplex vertex i; still sorted
        # Facet i's column j holds vertex drop[i, j]; the facet across that ridge omits it.
        self.nb = np.zeros((a, cap, d), dtype=np.int32)
        self.nb[:, :f] = drop
        self.alive = np.zeros((a, cap), dtype=bool)
        self.alive[:, :f] = True
        self.top = np.full(a, f)
        self.broken = np.zeros(a, dtype=bool)
        ga = np.repeat(np.arange(a), f)
        x = self._coords(ga, self.verts[:, :f].reshape(-1, d))
        normal, offset, _ = _planes(x, np.take(self.interior, ga, axis=1))
        self.normal = np.zeros((d, a, cap))
        self.normal[:, :, :f] = normal.reshape(d, a, f)
        self.offset = np.full((a, cap), np.inf)
        self.offset[:, :f] = offset.reshape(a, f)

    def _coords(self, ga: NDArray[np.intp], verts: NDArray[np.integer]) -> _Float:
        """Vertex coordinates (d, d, M) of facets ``verts`` (M, d) of grasps ``ga`` (M,)."""
        d = self.d
        wt = self.wt.reshape(d, -1)
        base = ga * self.w.shape[1]
        x = np.empty((d, d, ga.size))
        for v in range(d):
            x[v] = np.take(wt, base + verts[:, v], axis=1)
        return x

    def cones(self) -> _Float:
        """Volume (A,) of each polytope: the sum of the cones from ``interior`` over its facets."""
        ga, fa = np.nonzero(self.alive)
        x = self._coords(ga, self.verts[ga, fa])
        # Recomputed from the vertices (Gram-Schmidt) rather than from the pencil-updated
        # planes, so the volume carries no accumulated rounding.
        _, _, cone = _planes(x, np.take(self.interior, ga, axis=1))
        return np.bincount(ga, weights=cone, minlength=self.alive.shape[0])

    def keep(self, sel: NDArray[np.bool_]) -> None:
        """Drop the grasps where ``sel`` (A,) is False."""
        for name in ("rows", "w", "valid", "tol", "verts", "nb", "alive", "offset", "top", "broken"):
            setattr(self, name, getattr(self, name)[sel])
        for name in ("wt", "interior", "normal"):
            setattr(self, name, np.ascontiguousarray(getattr(self, name)[:, sel]))

    def _grow(self, need: int) -> None:
        """Enlarge the facet slots to at least ``need`` (twice as many), keeping every index."""
        old = self.alive.shape[1]
        extra = max(need, 2 * old) - old

        def pad(arr: NDArray, axis: int, value: float | bool) -> NDArray:
            shape = list(arr.shape)
            shape[axis] = extra
            return np.concatenate([arr, np.full(shape, value, dtype=arr.dtype)], axis=axis)

        self.verts = pad(self.verts, 1, 0)
        self.nb = pad(self.nb, 1, 0)
        self.normal = pad(self.normal, 2, 0.0)
        self.offset = pad(self.offset, 1, np.inf)
        self.alive = pad(self.alive, 1, False)

    def _squeeze(self, room: int) -> NDArray[np.int32]:
        """Move live facets to the front of their rows leaving ``room`` free slots.

        Returns:
            (A * old F,) the new slot of every old live flat slot (for indices the caller holds).
        """
        a, old_cap, d = self.verts.shape
        ga, fa = np.nonzero(self.alive)
        pos, counts = _rank_in_group(ga, a)
        cap = int(2 * (counts.max() + room)) + 16  # generous: squeezing copies everything
        src = ga * old_cap + fa
        dst = ga * cap + pos
        remap = np.zeros(a * old_cap, dtype=np.int32)
        remap[src] = pos
        verts = np.zeros((a, cap, d), dtype=self.verts.dtype)
        _flat(verts, 0)[dst] = _flat(self.verts, 0)[src]
        nb = np.zeros((a, cap, d), dtype=np.int32)
        _flat(nb, 0)[dst] = remap[(ga * old_cap)[:, None] + _flat(self.nb, 0)[src]]
        normal = np.zeros((d, a, cap))
        _flat(normal, 1)[:, dst] = np.take(_flat(self.normal, 1), src, axis=1)
        offset = np.full((a, cap), np.inf)
        _flat(offset, 0)[dst] = _flat(self.offset, 0)[src]
        alive = np.zeros((a, cap), dtype=bool)
        _flat(alive, 0)[dst] = True
        self.verts, self.nb, self.normal, self.offset, self.alive = verts, nb, normal, offset, alive
        self.top = counts
        return remap

    def add(self, s_idx: NDArray[np.intp], use: NDArray[np.bool_] | None = None) -> None:
        """Add point ``s_idx[a]`` to polytope ``a`` (where ``use[a]``): a beneath-beyond step.

        Facets that see the point (it is more than ``tol`` beyond their plane) are removed and
        each horizon ridge (between a removed facet V and a kept facet I) is coned to the point.
        The new facet's plane is the pencil combination of V's and I's planes through the point,
        ``a_V n_I - a_I n_V`` with ``a = n . s - b``, O(d) instead of an O(d^3) solve.
        A point inside the polytope or on its boundary sees no facet and changes nothing.
        """
        a, cap, d = self.verts.shape
        ar = np.arange(a)
        s = self.wt[:, ar, s_idx]  # (d, A)
        used = int(self.top.max())  # slots past every row's top are empty
        beyond = self.normal[0, :, :used] * s[0][:, None]
        for j in range(1, d):
            beyond += self.normal[j, :, :used] * s[j][:, None]
        beyond -= self.offset[:, :used]  # -inf on dead slots
        vis = beyond > self.tol[:, None]
        if use is not None:
            vis &= use[:, None]
        ga, fa = np.nonzero(vis)  # visible facets, grasp-major
        if ga.size == 0:
            return
        nb_v = _flat(self.nb, 0)[ga * cap + fa]  # (V, d)
        horizon = ~vis.reshape(-1)[ga[:, None] * used + nb_v]
        hv, hj = np.nonzero(horizon)
        g, fv, fi = ga[hv], fa[hv], nb_v[hv, hj]  # grasp, visible facet V, kept facet I
        a_v = beyond.reshape(-1)[g * used + fv]
        a_i = beyond.reshape(-1)[g * used + fi]
        n_flat = _flat(self.normal, 1)
        o_flat = _flat(self.offset, 0)
        n_new = a_v * np.take(n_flat, g * cap + fi, axis=1) - a_i * np.take(n_flat, g * cap + fv, axis=1)
        b_new = a_v * o_flat[g * cap + fi] - a_i * o_flat[g * cap + fv]
        length = np.sqrt(_dot(n_new, n_new))
        n_new /= length
        b_new /= length
        # Vertices: V's with column hj replaced by the new point, kept sorted.
        v_verts = _flat(self.verts, 0)[g * cap + fv].astype(np.int64)  # (M, d)
        others = np.array([[c for c in range(d) if c != j] for j in range(d)])  # (d, d-1)
        ridge = np.take_along_axis(v_verts, others[hj], axis=1)  # (M, d-1) sorted
        sv = s_idx[g][:, None]
        slot = (ridge < sv).sum(axis=1)  # column of the new point in the new facet
        col = np.arange(d)[None, :]
        left = np.concatenate([ridge, ridge[:, -1:]], axis=1)
        right = np.concatenate([ridge[:, :1], ridge], axis=1)
        new = np.where(col < slot[:, None], left, np.where(col == slot[:, None], sv, right))
        # I points at V across this ridge; it will point at the new facet (same column).
        i_col = (_flat(self.nb, 0)[g * cap + fi] == fv[:, None]).argmax(axis=1)
        # Retire V, then make room and place the new facets after each row's last used slot.
        _flat(self.alive, 0)[ga * cap + fa] = False
        o_flat[ga * cap + fa] = np.inf
        rank, hcount = _rank_in_group(g, a)
        if int((self.top + hcount).max()) > cap:
            if self.alive.sum() > 0.6 * self.top.sum():  # few dead slots: a plain copy is cheaper
                self._grow(int((self.top + hcount).max()))
                fi = fi.astype(np.int32)
            else:
                remap = self._squeeze(int(hcount.max()))
                fi = remap[g * cap + fi]
            cap = self.alive.shape[1]
        dest = (self.top[g] + rank).astype(np.int32)
        self.top = self.top + hcount
        flat = g * cap + dest
        _flat(self.verts, 0)[flat] = new
        _flat(self.normal, 1)[:, flat] = n_new
        _flat(self.offset, 0)[flat] = b_new
        _flat(self.alive, 0)[flat] = True
        nb_flat = _flat(self.nb, 0)
        links = np.zeros((g.size, d), dtype=np.int32)
        links[np.arange(g.size), slot] = fi
        nb_flat[g * cap + fi, i_col] = dest
        # The new facets meet each other across ridges through the new point: match the
        # (d-2)-faces they share, each of which belongs to exactly two of them.
        width = int(hcount.max())
        lbits = max(1, (width - 1).bit_length())
        cbits = max(1, (d - 1).bit_length())
        if self.bits * (d - 2) + lbits + cbits > 62:  # pragma: no cover - thousands of points
            raise ConfigurationError(f"wrenches: too many points ({self.w.shape[1]}) for dimension {d}")
        sentinel = np.iinfo(np.int64).max
        keys = np.full((a * width, d), sentinel, dtype=np.int64)
        at = g * width + rank
        # Pack the facet's sorted vertices (``bits`` each) and drop two digits per face.
        packed = new[:, 0].copy()
        for v in range(1, d):
            packed = (packed << self.bits) | new[:, v]
        tail = (rank.astype(np.int64) << cbits)
        for c in range(d):
            hi = np.minimum(slot, c)  # drop the more significant digit first
            lo = np.maximum(slot, c)
            code = _drop_digit(_drop_digit(packed, d - 1 - hi, self.bits), d - 1 - lo, self.bits)
            code = (code << (lbits + cbits)) | tail | c
            keys[at, c] = np.where(slot == c, sentinel, code)
        keys = keys.reshape(a, width * d)
        keys.sort(axis=1)
        npairs = hcount * (d - 1) // 2
        half = int(npairs.max())
        first, second = keys[:, 0 : 2 * half : 2], keys[:, 1 : 2 * half : 2]
        ok = np.arange(half)[None, :] < npairs[:, None]
        mismatch = ok & ((first >> (lbits + cbits)) != (second >> (lbits + cbits)))
        self.broken |= mismatch.any(axis=1) | (hcount * (d - 1) % 2 == 1)
        pg, pk = np.nonzero(ok & ~mismatch)
        lmask = (1 << lbits) - 1
        cmask = (1 << cbits) - 1
        k1, k2 = first[pg, pk], second[pg, pk]
        start = np.cumsum(hcount) - hcount
        m1 = start[pg] + ((k1 >> cbits) & lmask)
        m2 = start[pg] + ((k2 >> cbits) & lmask)
        links[m1, k1 & cmask] = dest[m2]
        links[m2, k2 & cmask] = dest[m1]
        nb_flat[flat] = links


class _Hull:
    """One grasp's polytope of :class:`_Hulls` without the batch axis, grown by the same steps.

    An env scores one grasp per call, where the batched arrays' bookkeeping (per-grasp ranks,
    one key column per ridge, padded rows) costs more than the arithmetic. Every floating-point
    operation is the batched one, in the same order and on the same operands, and facets take
    the same slots, so Q1 is bit-identical to :class:`_Hulls` (tested); only the integer
    bookkeeping is simpler.

    Attributes (N points, F facet slots, d dimension): as :class:`_Hulls` for one grasp:
        wt: (d, N); valid: (N,); tol: float; verts, nb: (F, d); alive: (F,); top: int;
        normal: (d, F); offset: (F,); broken: bool.
    """

    def __init__(self, hulls: _Hulls) -> None:
        assert hulls.rows.size == 1
        self.d, self.bits = hulls.d, hulls.bits
        self.wt = np.ascontiguousarray(hulls.wt[:, 0])
        self.valid = hulls.valid[0]
        self.tol = hulls.tol[0]
        self.verts, self.nb, self.alive = hulls.verts[0], hulls.nb[0], hulls.alive[0]
        self.normal = np.ascontiguousarray(hulls.normal[:, 0])
        self.offset = hulls.offset[0]
        self.top = int(hulls.top[0])
        self.broken = False
        d = self.d
        self._others = np.array([[c for c in range(d) if c != j] for j in range(d)])  # (d, d-1)
        self._cols = np.arange(d)

    def _make_room(self, count: int) -> NDArray[np.int32] | None:
        """``_Hulls``'s choice between growing and squeezing the slots, for ``count`` new facets.

        Returns:
            The new slot of every old slot after a squeeze, None after a plain growth.
        """
        cap = self.alive.shape[0]
        alive = int(self.alive.sum())
        if alive > 0.6 * self.top:  # few dead slots: a plain copy is cheaper
            extra = max(self.top + count, 2 * cap) - cap
            self.verts = np.concatenate([self.verts, np.zeros((extra, self.d), dtype=self.verts.dtype)])
            self.nb = np.concatenate([self.nb, np.zeros((extra, self.d), dtype=np.int32)])
            self.normal = np.concatenate([self.normal, np.zeros((self.d, extra))], axis=1)
            self.offset = np.concatenate([self.offset, np.full(extra, np.inf)])
            self.alive = np.concatenate([self.alive, np.zeros(extra, dtype=bool)])
            return None
        (src,) = np.nonzero(self.alive)
        new_cap = int(2 * (alive + count)) + 16
        remap = np.zeros(cap, dtype=np.int32)
        remap[src] = np.arange(alive)
        verts = np.zeros((new_cap, self.d), dtype=self.verts.dtype)
        verts[:alive] = self.verts[src]
        nb = np.zeros((new_cap, self.d), dtype=np.int32)
        nb[:alive] = remap[self.nb[src]]
        normal = np.zeros((self.d, new_cap))
        normal[:, :alive] = self.normal[:, src]
        offset = np.full(new_cap, np.inf)
        offset[:alive] = self.offset[src]
        live = np.zeros(new_cap, dtype=bool)
        live[:alive] = True
        self.verts, self.nb, self.normal, self.offset, self.alive = verts, nb, normal, offset, live
        self.top = alive
        return remap

    def add(self, s_idx: int) -> None:
        """:meth:`_Hulls.add` of point ``s_idx`` for this one grasp."""
        d = self.d
        s = self.wt[:, s_idx]  # (d,)
        used = self.top
        beyond = self.normal[0, :used] * s[0]
        for j in range(1, d):
            beyond += self.normal[j, :used] * s[j]
        beyond -= self.offset[:used]  # -inf on dead slots
        vis = beyond > self.tol
        (fa,) = np.nonzero(vis)  # visible facets, in slot order
        if fa.size == 0:
            return
        nb_v = self.nb[fa]  # (V, d)
        hv, hj = np.nonzero(~vis[nb_v])  # horizon ridges, in (visible facet, column) order
        fv, fi = fa[hv], nb_v[hv, hj]  # visible facet V, kept facet I
        a_v = beyond[fv]
        a_i = beyond[fi]
        n_new = a_v * self.normal[:, fi] - a_i * self.normal[:, fv]
        b_new = a_v * self.offset[fi] - a_i * self.offset[fv]
        length = np.sqrt(_dot(n_new, n_new))
        n_new /= length
        b_new /= length
        # Vertices: V's with column hj replaced by the new point, kept sorted.
        m = fv.size
        rank = np.arange(m)
        ridge = self.verts[fv[:, None], self._others[hj]].astype(np.int64)  # (M, d-1) sorted
        slot = (ridge < s_idx).sum(axis=1)  # column of the new point in the new facet
        col = self._cols[None, :]
        left = np.concatenate([ridge, ridge[:, -1:]], axis=1)
        right = np.concatenate([ridge[:, :1], ridge], axis=1)
        new = np.where(col < slot[:, None], left, np.where(col == slot[:, None], s_idx, right))
        i_col = (self.nb[fi] == fv[:, None]).argmax(axis=1)
        self.alive[fa] = False
        self.offset[fa] = np.inf
        if self.top + m > self.alive.shape[0]:
            remap = self._make_room(m)
            fi = fi.astype(np.int32) if remap is None else remap[fi]
        dest = np.arange(self.top, self.top + m, dtype=np.int32)
        self.top += m
        self.verts[dest] = new
        self.normal[:, dest] = n_new
        self.offset[dest] = b_new
        self.alive[dest] = True
        links = np.zeros((m, d), dtype=np.int32)
        links[rank, slot] = fi
        self.nb[fi, i_col] = dest
        # Stitch the new facets together as _Hulls.add does: the same packed keys, sorted and
        # paired, all ridge columns at once.
        lbits = max(1, (m - 1).bit_length())
        cbits = max(1, (d - 1).bit_length())
        if self.bits * (d - 2) + lbits + cbits > 62:  # pragma: no cover - thousands of points
            raise ConfigurationError(f"wrenches: too many points ({self.wt.shape[1]}) for dimension {d}")
        # A new facet less its column c (c != slot) is its ridge less column c - (c > slot): the
        # batched key (the packed facet less columns slot and c) is the packed ridge less one digit.
        packed = ridge[:, 0].copy()
        for v in range(1, d - 1):
            packed = (packed << self.bits) | ridge[:, v]
        place = d - 2 - np.minimum(col - (col > slot[:, None]), d - 2)  # (M, d); slot's own column masked below
        code = _drop_digit(packed[:, None], place, self.bits)
        code = (code << (lbits + cbits)) | (rank.astype(np.int64) << cbits)[:, None] | col
        keys = np.where(slot[:, None] == col, _KEY_SENTINEL, code).reshape(-1)
        keys.sort()
        half = m * (d - 1) // 2
        first, second = keys[0 : 2 * half : 2], keys[1 : 2 * half : 2]
        mismatch = (first >> (lbits + cbits)) != (second >> (lbits + cbits))
        self.broken |= bool(mismatch.any()) or m * (d - 1) % 2 == 1
        keep = ~mismatch
        k1, k2 = first[keep], second[keep]
        lmask = (1 << lbits) - 1
        cmask = (1 << cbits) - 1
        m1 = (k1 >> cbits) & lmask
        m2 = (k2 >> cbits) & lmask
        links[m1, k1 & cmask] = dest[m2]
        links[m2, k2 & cmask] = dest[m1]
        self.nb[dest] = links


def _epsilon_one(hulls: _Hulls, w: _Float, valid: NDArray[np.bool_], closure_only: bool) -> float:
    """:func:`_epsilon_core`'s loop for one grasp whose hull ``_prepare`` built (bit-identical)."""
    hull = _Hull(hulls)
    d = hull.d
    tol = hull.tol
    b = 0.0
    for _ in range(w.shape[1] + 2):  # each round adds a new vertex, so at most N rounds
        j = int(hull.offset.argmin())
        b = hull.offset[j]  # smallest facet offset of the inner polytope P
        n = hull.normal[:, j]
        reach = hull.wt[0] * n[0]
        for c in range(1, d):
            reach += hull.wt[c] * n[c]
        reach[~hull.valid] = -np.inf
        i = int(reach.argmax())
        h = reach[i]  # support function of the full hull along n
        # The tests and values of _epsilon_core (see there).
        if closure_only:
            if (h <= b + tol) or (h <= tol) or b > tol:
                value = 0.0 if h <= tol else max(b, 0.0)
                return 1.0 if (b > tol or value > tol) else 0.0
        elif (h <= b + tol) or (h <= tol):
            value = 0.0 if h <= tol else np.maximum(b, 0.0)
            return float(value) if value > tol else 0.0
        if hull.broken:
            q = _qhull_epsilon(w[0, valid[0]])
            return float(q > 0) if closure_only else q
        hull.add(i)
    # pragma: no cover - unreachable in exact arithmetic; keep the lower bound
    b = hull.offset.min()
    return (1.0 if closure_only else float(b)) if b > tol else 0.0


def _initial_simplex(w: _Float, valid: NDArray[np.bool_], scale: _Float) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
    """d+1 affinely independent points per grasp by pivoted Gram-Schmidt (a fat simplex).

    Returns:
        Indices (B, d+1) and ``ok`` (B,): False where the points span fewer than d dimensions
        (thinner than ``RANK_REL_TOL * scale``).
    """
    b, _, d = w.shape
    rb = np.arange(b)
    count = valid.sum(axis=1)
    mean = np.where(valid[..., None], w, 0.0).sum(axis=1) / np.maximum(count, 1)[:, None]
    far = np.where(valid, np.linalg.norm(w - mean[:, None], axis=-1), -1.0)
    first = far.argmax(axis=1)
    chosen = [first]
    r = np.where(valid[..., None], w - w[rb, first][:, None], 0.0)
    ok = count >= d + 1
    for _ in range(d):
        r2 = np.where(valid, np.einsum("bnd,bnd->bn", r, r), -1.0)
        i = r2.argmax(axis=1)
        length = np.sqrt(np.maximum(r2[rb, i], 0.0))
        ok &= length > RANK_REL_TOL * scale
        q = r[rb, i] / np.maximum(length, 1e-300)[:, None]
        r = r - np.einsum("bnd,bd->bn", r, q)[..., None] * q[:, None, :]
        chosen.append(i)
    return np.stack(chosen, axis=1), ok


def _prepare(w: _Float, valid: NDArray[np.bool_]) -> _Hulls:
    """Scale, rank check and initial simplex of every set; the full-dimensional ones' hulls."""
    scale = np.where(valid, np.linalg.norm(w, axis=-1), 0.0).max(axis=1) if w.shape[1] else np.zeros(len(w))
    simplex, ok = _initial_simplex(w, valid, scale)
    ok &= scale > 0
    rows = np.nonzero(ok)[0]
    return _Hulls(w[rows], valid[rows], HULL_REL_TOL * scale[rows], simplex[rows], rows)


def _chunked(core, w: _Float, valid: NDArray[np.bool_], **kwargs) -> _Float:
    """Run ``core`` on slices of ``_CHUNK`` grasps.

    The facet arrays of a slice stay in the CPU cache; on a 32 MB L3 this is about twice as
    fast as one pass over 10k grasps, and the Python overhead per slice is small.
    """
    if w.shape[0] <= _CHUNK:
        return core(w, valid, **kwargs)
    return np.concatenate([core(w[i : i + _CHUNK], valid[i : i + _CHUNK], **kwargs) for i in range(0, w.shape[0], _CHUNK)])


def _epsilon_core(w: _Float, valid: NDArray[np.bool_], closure_only: bool = False) -> _Float:
    """Q1 of each grasp's point set (B, N, d) (closure_only: 1.0 / 0.0 for closure / not)."""
    out = np.zeros(w.shape[0])
    if w.shape[0] == 0 or w.shape[1] == 0:
        return out
    hulls = _prepare(w, valid)
    if w.shape[0] == 1:  # one grasp (an env's step): the same steps without the batch axis
        if hulls.rows.size:
            out[0] = _epsilon_one(hulls, w, valid, closure_only)
        return out
    d = w.shape[2]
    active = np.ones(hulls.rows.size, dtype=bool)  # not finished yet
    fallback: list[int] = []
    for _ in range(w.shape[1] + 2):  # each round adds a new vertex, so at most N rounds
        if not active.any():
            break
        a = hulls.rows.size
        ar = np.arange(a)
        j = hulls.offset.argmin(axis=1)
        b = hulls.offset[ar, j]  # (A,) smallest facet offset of the inner polytope P
        n = hulls.normal[:, ar, j]  # (d, A)
        reach = hulls.wt[0] * n[0][:, None]
        for c in range(1, d):
            reach += hulls.wt[c] * n[c][:, None]
        reach[~hulls.valid] = -np.inf
        i = reach.argmax(axis=1)
        h = reach[ar, i]  # support function of the full hull along n
        tol = hulls.tol
        # h <= b: the facet supports the full hull, so Q1 = b (P inside the hull gives Q1 >= b).
        # h <= 0: a supporting plane through or past the origin, so the origin is not interior.
        done = active & ((h <= b + tol) | (h <= tol))
        value = np.where(h <= tol, 0.0, np.maximum(b, 0.0))
        if closure_only:
            inside = b > tol  # the origin is inside P, hence inside the hull
            done |= active & inside
            value = np.where(inside | (value > tol), 1.0, 0.0)
        else:
            value = np.where(value > tol, value, 0.0)
        out[hulls.rows[done]] = value[done]
        active &= ~done
        broken = active & hulls.broken
        if broken.any():
            fallback.extend(hulls.rows[broken].tolist())
            active &= ~broken
        if not active.any():
            break
        if active.mean() < 0.8:  # dropping finished grasps copies every array: batch it
            hulls.keep(active)
            i, active = i[active], active[active]
        hulls.add(i, active)
    else:  # pragma: no cover - unreachable in exact arithmetic; keep the lower bound
        b = hulls.offset.min(axis=1)
        out[hulls.rows[active]] = np.where(b > hulls.tol, 1.0 if closure_only else b, 0.0)[active]
    for r in fallback:
        q = _qhull_epsilon(w[r, valid[r]])
        out[r] = float(q > 0) if closure_only else q
    return out


def _qhull(points: _Float):
    from scipy.spatial import ConvexHull  # only for the rare fallback

    return ConvexHull(points)


def _qhull_epsilon(points: _Float) -> float:
    """Q1 of one point set by Qhull: the fallback for a grasp our facet structure lost."""
    try:
        offsets = -_qhull(points).equations[:, -1]
    except Exception:  # Qhull refuses lower-dimensional input: no interior, Q1 = 0
        return 0.0
    scale = np.abs(points).max()
    return float(offsets.min()) if offsets.min() > HULL_REL_TOL * scale else 0.0


def _qhull_volume(points: _Float) -> float:
    try:
        return float(_qhull(points).volume)
    except Exception:
        return 0.0


def _volume_core(w: _Float, valid: NDArray[np.bool_]) -> _Float:
    """Volume of the convex hull of each grasp's point set (B, N, d) [units of w ** d]."""
    out = np.zeros(w.shape[0])
    if w.shape[0] == 0 or w.shape[1] == 0:
        return out
    hulls = _prepare(w, valid)
    if hulls.rows.size == 0:
        return out
    a = hulls.rows.size
    # Farthest points first grows the polytope fastest, leaving few facets to cut later.
    dist = np.linalg.norm(hulls.w - hulls.interior.T[:, None, :], axis=-1)
    order = np.argsort(np.where(hulls.valid, -dist, np.inf), axis=1)
    ar = np.arange(a)
    for t in range(w.shape[1]):
        idx = order[:, t]
        hulls.add(idx, hulls.valid[ar, idx])
    out[hulls.rows] = hulls.cones()
    for r in hulls.rows[hulls.broken]:
        out[r] = _qhull_volume(w[r, valid[r]])
    return out



def _batch_wrenches(wrenches: ArrayLike, mask: ArrayLike | None) -> tuple[_Float, NDArray[np.bool_], bool]:
    w = _as_float("wrenches", wrenches)
    if w.ndim not in (2, 3) or w.shape[-1] < 2:
        raise ConfigurationError(f"wrenches: expected shape (B, N, d) or (N, d) with d >= 2, got {w.shape}")
    single = w.ndim == 2
    if single:
        w = w[None]
    if mask is None:
        m = np.ones(w.shape[:2], dtype=bool)
    else:
        m = np.asarray(mask)
        want = w.shape[1:2] if single else w.shape[:2]
        if m.dtype != np.bool_ or m.shape != want:
            raise ConfigurationError(f"mask: expected a bool array of shape {want}, got {m.dtype} {m.shape}")
        m = m.reshape(w.shape[:2])
    _check_finite("wrenches", w, m[..., None])
    return np.where(m[..., None], w, 0.0), m, single


def _unbatch(x: NDArray, single: bool) -> NDArray:
    return x[0] if single else x


# ----------------------------------------------------------------------------------------------
# Public measures


def wrench_epsilon(wrenches: ArrayLike, mask: ArrayLike | None = None) -> _Float:
    """Radius of the largest origin-centred ball inside the convex hull of given points.

    The wrench-level core of :func:`epsilon_quality`, for any dimension d >= 2 (e.g. planar
    wrenches (fx, fy, tz)).

    Args:
        wrenches: Points, shape (B, N, d) or (N, d).
        mask: Optional bool (B, N) ((N,) for one set); False rows are ignored.

    Returns:
        (B,) radii in the units of ``wrenches`` (shape () for one set); 0 where the origin is
        not strictly inside the hull or the points span fewer than d dimensions.
    """
    w, m, single = _batch_wrenches(wrenches, mask)
    return _unbatch(_chunked(_epsilon_core, w, m), single)


def wrench_hull_volume(wrenches: ArrayLike, mask: ArrayLike | None = None) -> _Float:
    """d-dimensional volume of the convex hull of given points (0 when degenerate).

    Args:
        wrenches: Points, shape (B, N, d) or (N, d).
        mask: Optional bool (B, N) ((N,) for one set); False rows are ignored.

    Returns:
        (B,) volumes in units of ``wrenches`` to the power d (shape () for one set).
    """
    w, m, single = _batch_wrenches(wrenches, mask)
    return _unbatch(_chunked(_volume_core, w, m), single)


def epsilon_quality(
    points: ArrayLike,
    normals: ArrayLike,
    mu: ArrayLike,
    num_edges: int = 8,
    torque_scale: ArrayLike = 1.0,
    mask: ArrayLike | None = None,
    center: ArrayLike | None = None,
    torsion: ArrayLike | None = None,
) -> _Float:
    """Ferrari-Canny Q1 (L1 variant) of a batch of grasps.

    Q1 is the radius of the largest origin-centred ball inside the convex hull of the
    primitive wrenches of :func:`friction_cone_wrenches` (each with unit normal force): the
    smallest wrench, over all directions, that the grasp can resist with a total normal force
    of 1 N. It is computed exactly (to ``HULL_REL_TOL`` of the largest wrench norm) by an
    expanding inner polytope; see the module docstring.

    Args:
        points: Contact points, (B, C, 3) or (C, 3) [m].
        normals: Contact normals, same shape, pointing INTO the object (the direction the
            finger pushes); normalised here. A grasp with a zero-length (unmasked) normal is
            degenerate: Q1 = 0.
        mu: Friction coefficient(s) >= 0: scalar, (B,) or (B, C) ((C,) for one grasp).
        num_edges: Edges k >= 3 of each linearised friction cone.
        torque_scale: Length [m] dividing torques (e.g. the object's radius); scalar or (B,).
        mask: Optional bool (B, C) ((C,) for one grasp): False contacts are ignored (ragged
            batches); their values may be NaN.
        center: Torque reference (the object's centre of mass), (3,) or (B, 3) [m]; origin
            by default.
        torsion: Soft-finger torsional friction length(s) gamma >= 0 [m], shaped like ``mu``
            (see :func:`friction_cone_wrenches`); None (default): point contacts, the classic
            Q1. Two opposed soft contacts are force closure, two point contacts never are.

    Returns:
        Q1 of shape (B,) [N per N of total normal force, torques divided by ``torque_scale``];
        shape () for a single grasp. 0 when the grasp is not force closure or degenerate.

    Raises:
        ConfigurationError: On wrong shapes or non-finite values, naming the argument.
    """
    w, valid, zero, single = _wrenches(points, normals, mu, num_edges, torque_scale, center, mask, torsion)
    q = _chunked(_epsilon_core, w, valid)
    q[zero] = 0.0
    return _unbatch(q, single)


def force_closure(
    points: ArrayLike,
    normals: ArrayLike,
    mu: ArrayLike,
    num_edges: int = 8,
    torque_scale: ArrayLike = 1.0,
    mask: ArrayLike | None = None,
    center: ArrayLike | None = None,
    torsion: ArrayLike | None = None,
) -> NDArray[np.bool_]:
    """Whether each grasp is force closure (the origin strictly inside the wrench hull).

    Same arguments as :func:`epsilon_quality`; equals ``epsilon_quality(...) > 0`` but may stop
    earlier (as soon as an inner polytope contains the origin).

    Returns:
        (B,) bool (shape () for a single grasp).
    """
    w, valid, zero, single = _wrenches(points, normals, mu, num_edges, torque_scale, center, mask, torsion)
    fc = _chunked(_epsilon_core, w, valid, closure_only=True) > 0.5
    fc[zero] = False
    return _unbatch(fc, single)


def hull_volume(
    points: ArrayLike,
    normals: ArrayLike,
    mu: ArrayLike,
    num_edges: int = 8,
    torque_scale: ArrayLike = 1.0,
    mask: ArrayLike | None = None,
    center: ArrayLike | None = None,
    torsion: ArrayLike | None = None,
) -> _Float:
    """6-D volume of the convex hull of the primitive wrenches (batched beneath-beyond).

    Same arguments as :func:`epsilon_quality`.

    Returns:
        (B,) volumes [N^6 with torques divided by ``torque_scale``] (shape () for a single
        grasp); 0 when the wrenches span fewer than 6 dimensions or a normal is zero.
    """
    w, valid, zero, single = _wrenches(points, normals, mu, num_edges, torque_scale, center, mask, torsion)
    v = _chunked(_volume_core, w, valid)
    v[zero] = 0.0
    return _unbatch(v, single)
