"""A kinematic tree with numpy-vectorised forward kinematics and geometric Jacobians.

Conventions (pytorch_kinematics-like): the batch axis comes first; a single configuration of
shape ``(n,)`` gives results without the batch axis. Frames are 4x4 homogeneous transforms of
the URDF *link* frames (not inertial frames) relative to the root link.

Implementation notes (why it is shaped like this):

* Frames are stored by columns, batch last: ``(L, 4 columns, 4 rows, b)``. The links of one
  tree depth (a contiguous block in breadth-first order) are composed together: one stacked
  ``(4, 4) @ (4, 4 * b)`` BLAS product of the constant joint transforms with the parents'
  frames. A revolute joint about a coordinate axis then rotates two columns of its link's
  frame by ``cos q`` and ``sin q`` (contiguous rows of length b); a link with an oblique axis
  is computed in an "aligned" frame ``F_i = T_i @ P_i`` whose z is the axis, turned back at
  the end.
* Up to ``_SINGLE_PASS`` configurations are computed in one pass straight into the result;
  larger batches in cache-sized passes. The result is returned as a batch-first view of the
  batch-last array (no transposing copy).
* A single configuration (an env step) takes another path: every link's joint motion is
  built at once as a (L, 4, 4) stack and each tree level is one batched ``(4, 4) @ (4, 4)``
  product, row-major; the column form's per-link loop costs more than the maths at b = 1
  (32 vs 216 us for the 21-joint default hand).
* ``cos``/``sin`` come from one ``tan(q/2)`` (the half-angle identities), half the cost of
  calling both; it is exact to a few ulp, including at ``q = pi``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from handsim.errors import ConfigurationError, UnknownNameError, URDFError, suggest
from handsim.kinematics.urdf import JointSpec, parse_urdf

__all__ = ["KinematicTree", "load_urdf"]

_KIND_FIXED, _KIND_REVOLUTE, _KIND_PRISMATIC = 0, 1, 2  # per link: the joint above it
_CHUNK = 2048  # configurations per pass for large batches, so their frames stay in cache
# Up to this many configurations, one pass straight into the result beats cache-sized passes
# plus the copy out of them (measured on the default hand: ~1.8M vs ~1.2M configs/s at 10k).
_SINGLE_PASS = 16384


def _coordinate_axis(axis: NDArray[np.float64]) -> tuple[int, float] | None:
    """``(k, sign)`` when ``axis`` is exactly ``sign * e_k``, else None (an oblique axis)."""
    for k in range(3):
        if abs(abs(axis[k]) - 1.0) < 1e-15 and abs(axis[(k + 1) % 3]) < 1e-15 and abs(axis[(k + 2) % 3]) < 1e-15:
            return k, float(np.sign(axis[k]))
    return None


def _align(axis: NDArray[np.float64]) -> NDArray[np.float64]:
    """A rotation P with ``P @ e_z = axis``: a signed permutation (exact) for coordinate axes."""
    z = np.asarray(axis, dtype=np.float64)
    for k in range(3):
        if abs(abs(z[k]) - 1.0) < 1e-15 and abs(z[(k + 1) % 3]) < 1e-15 and abs(z[(k + 2) % 3]) < 1e-15:
            zk = np.eye(3)[k] * np.sign(z[k])
            xk = np.eye(3)[(k + 1) % 3]
            return np.stack([xk, np.cross(zk, xk), zk], axis=1)
    helper = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=1)


class KinematicTree:
    """Kinematics of a URDF tree: FK and Jacobians for batches of configurations.

    Build one with :func:`load_urdf`. ``q`` always lists the *independent* movable joints in
    :attr:`joint_names` order (URDF document order); mimic joints follow their master.

    Attributes:
        name: The URDF robot name.
        link_names: All links, root first, then breadth-first (parents before children; siblings
            in URDF joint order).
        joint_names: Independent movable joints (revolute, continuous, prismatic; not mimic).
        mimic_joint_names: Movable joints driven by a ``<mimic>`` tag.
        lower, upper: (n,) joint limits [rad or m] (``-inf``/``inf`` for continuous joints).
        effort, velocity: (n,) effort [N m or N] and velocity limits (``inf`` when unspecified).
        joints: Every joint's :class:`JointSpec`, by name.
        source: Where the URDF came from.
    """

    def __init__(self, name: str, links: Sequence[str], joints: Sequence[JointSpec], source: str = "") -> None:
        self.name = name
        self.source = source
        self.joints: dict[str, JointSpec] = {j.name: j for j in joints}
        child_joint = {j.child: j for j in joints}
        children: dict[str, list[JointSpec]] = {link: [] for link in links}
        for j in joints:
            children[j.parent].append(j)
        root = next(link for link in links if link not in child_joint)
        # Breadth-first: every depth is one contiguous block, so FK runs level by level.
        order: list[str] = [root]
        for link in order:
            order.extend(j.child for j in children[link])
        self.link_names: tuple[str, ...] = tuple(order)
        self._link_index = {link: i for i, link in enumerate(order)}

        movable = [j for j in joints if j.type != "fixed"]
        self.joint_names: tuple[str, ...] = tuple(j.name for j in movable if j.mimic is None)
        self.mimic_joint_names: tuple[str, ...] = tuple(j.name for j in movable if j.mimic is not None)
        self._joint_index = {jn: i for i, jn in enumerate(self.joint_names)}
        indep = [self.joints[jn] for jn in self.joint_names]
        self.lower = np.array([j.lower for j in indep], dtype=np.float64)
        self.upper = np.array([j.upper for j in indep], dtype=np.float64)
        self.effort = np.array([j.effort for j in indep], dtype=np.float64)
        self.velocity = np.array([j.velocity for j in indep], dtype=np.float64)

        # Each movable joint is driven by q[column] * multiplier + offset (mimic chains resolved).
        self._drive: dict[str, tuple[int, float, float]] = {}
        for j in movable:
            mult, off, cur, seen = 1.0, 0.0, j, {j.name}
            while cur.mimic is not None:
                master, m, o = cur.mimic
                if master in seen:
                    raise URDFError(f"{source}: mimic joints form a cycle through {master!r}")
                seen.add(master)
                # q_cur = m * q_master + o, so q_j = mult * (m * q_master + o) + off
                mult, off = mult * m, mult * o + off
                cur = self.joints[master]
            self._drive[j.name] = (self._joint_index[cur.name], mult, off)

        nl = len(order)
        self._parent = np.full(nl, -1, dtype=np.intp)
        self._kind = np.zeros(nl, dtype=np.intp)
        self._axis = np.zeros((nl, 3))
        depth = np.zeros(nl, dtype=np.intp)
        align = np.tile(np.eye(4), (nl, 1, 1))  # P_i (homogeneous): z of the aligned frame = joint axis
        slot_col, slot_mult, slot_off = [], [], []
        self._slot_of_link: dict[int, int] = {}
        link_slot = np.full(nl, -1, dtype=np.intp)
        joint_of = [None] + [child_joint[link] for link in order[1:]]
        for i in range(1, nl):
            j = joint_of[i]
            p = self._link_index[j.parent]
            self._parent[i] = p
            depth[i] = depth[p] + 1
            if j.type == "fixed":
                continue
            col, mult, off = self._drive[j.name]
            link_slot[i] = self._slot_of_link[i] = len(slot_col)
            slot_col.append(col)
            slot_mult.append(mult)
            slot_off.append(off)
            self._axis[i] = j.axis
            if j.type == "prismatic":
                self._kind[i] = _KIND_PRISMATIC
            else:
                self._kind[i] = _KIND_REVOLUTE
                if _coordinate_axis(j.axis) is None:  # oblique: computed in an aligned frame
                    align[i, :3, :3] = _align(j.axis)
        self._slot_col = np.array(slot_col, dtype=np.intp)
        self._slot_mult = np.array(slot_mult, dtype=np.float64)
        self._slot_off = np.array(slot_off, dtype=np.float64)
        self._identity_slots = bool(np.all(self._slot_mult == 1.0) and np.all(self._slot_off == 0.0))
        self._moving = link_slot >= 0
        self._revolute = self._kind == _KIND_REVOLUTE
        self._link_slot = link_slot[self._moving]
        # Column form: a frame is stored by columns, F[col, row]; F_i = F_p @ C_i becomes
        # cols_i = C_i^T @ cols_p, one (4, 4) @ (4, 4 * b) product per link.
        const_t = np.zeros((nl, 4, 4))
        for i in range(1, nl):
            j, p = joint_of[i], self._parent[i]
            const_t[i] = (align[p].T @ j.origin @ align[i]).T
        self._levels: list[tuple[int, int, slice | NDArray[np.intp], NDArray[np.float64], list[tuple[int, NDArray]]]] = []
        for d in range(1, int(depth.max(initial=0)) + 1):
            members = np.nonzero(depth == d)[0]
            lo, hi = int(members[0]), int(members[-1]) + 1
            parents = self._parent[lo:hi]
            contiguous = np.array_equal(parents, np.arange(parents[0], parents[0] + len(parents)))
            src = slice(int(parents[0]), int(parents[-1]) + 1) if contiguous else parents.copy()
            motions = []  # (index in level, kind, column a, column b, sign, prismatic axis)
            for i in range(lo, hi):
                if self._kind[i] == _KIND_PRISMATIC:
                    motions.append((i - lo, _KIND_PRISMATIC, 0, 0, 1.0, self._axis[i].copy()))
                elif self._kind[i] == _KIND_REVOLUTE:
                    k, sign = _coordinate_axis(self._axis[i]) or (2, 1.0)  # oblique: aligned z
                    motions.append((i - lo, _KIND_REVOLUTE, (k + 1) % 3, (k + 2) % 3, sign, None))
            self._levels.append((lo, hi, src, const_t[lo:hi].copy(), motions))
        # T_i = F_i @ P_i^T, i.e. cols_T = P_i @ cols_F, for the oblique links only
        self._unalign = [(i, align[i].copy()) for i in range(nl) if not np.array_equal(align[i], np.eye(4))]
        # Single-configuration form (one pose per call, e.g. an env step): row-major frames,
        # F_i = F_p @ C_i @ M_i(q) with every link's motion M_i built at once and one batched
        # product per tree level; the per-link loop of the column form costs more than the maths
        # at batch size 1.
        self._const = np.ascontiguousarray(const_t.transpose(0, 2, 1))
        # The revolute links' column pairs and signs are the column form's (its level motions).
        revolute = [(lo + j, a, b, sign) for lo, _, _, _, motions in self._levels
                    for j, kind, a, b, sign, _ in motions if kind == _KIND_REVOLUTE]
        rev, ca, cb, sgn = (np.array(col) for col in zip(*revolute)) if revolute else (np.zeros(0, np.intp),) * 4
        self._rev_rows = (rev.astype(np.intp), ca.astype(np.intp), cb.astype(np.intp), sgn.astype(np.float64))
        pri = np.nonzero(self._kind == _KIND_PRISMATIC)[0]
        self._pri_rows = (pri, self._axis[pri].copy())
        self._unalign_t = [(i, np.ascontiguousarray(a.T)) for i, a in self._unalign]
        # Jacobian support: the movable joints on the path from the root to each link.
        self._chain: list[list[int]] = []
        for i in range(nl):
            path, cur = [], i
            while cur > 0:
                if cur in self._slot_of_link:
                    path.append(cur)
                cur = int(self._parent[cur])
            self._chain.append(path[::-1])

    # ------------------------------------------------------------------ names
    @property
    def num_joints(self) -> int:
        """Number of independent movable joints ``n`` (the length of ``q``)."""
        return len(self.joint_names)

    @property
    def root_link(self) -> str:
        """Name of the root link (the frame every result is expressed in)."""
        return self.link_names[0]

    def link_index(self, link: str | int) -> int:
        """Index of a link in :attr:`link_names` (accepts an index and checks its range)."""
        if isinstance(link, (int, np.integer)):
            if not 0 <= int(link) < len(self.link_names):
                raise UnknownNameError(f"link index {link} out of range 0..{len(self.link_names) - 1}")
            return int(link)
        try:
            return self._link_index[link]
        except KeyError:
            raise UnknownNameError(suggest(str(link), self.link_names, "link")) from None

    def joint_index(self, joint: str) -> int:
        """Index of an independent movable joint in :attr:`joint_names` (i.e. its column of q)."""
        try:
            return self._joint_index[joint]
        except KeyError:
            raise UnknownNameError(suggest(str(joint), self.joint_names, "joint")) from None

    def mimic_drive(self, joint: str) -> tuple[str, float, float]:
        """``(master, multiplier, offset)``: the independent joint that drives a movable joint
        and how, ``q_joint = multiplier * q_master + offset`` (a chain of ``<mimic>`` tags
        resolved; an independent joint gives ``(joint, 1.0, 0.0)``)."""
        try:
            col, mult, off = self._drive[joint]
        except KeyError:
            raise UnknownNameError(suggest(str(joint), list(self._drive), "movable joint")) from None
        return self.joint_names[col], mult, off

    def parent_link(self, link: str | int) -> str | None:
        """Name of a link's parent link (``None`` for the root)."""
        p = int(self._parent[self.link_index(link)])
        return None if p < 0 else self.link_names[p]

    # ------------------------------------------------------------------ input
    def _as_batch(self, q: ArrayLike) -> tuple[NDArray[np.floating], bool]:
        arr = np.asarray(q)
        if arr.dtype == np.float32:
            dtype = np.float32
        elif np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_:
            dtype = np.float64
        else:
            raise ConfigurationError(f"q must be numeric, got dtype {arr.dtype}")
        arr = arr.astype(dtype, copy=False)
        n = self.num_joints
        if arr.ndim == 1 and arr.shape[0] == n:
            single = True
            arr = arr[None, :]
        elif arr.ndim == 2 and arr.shape[1] == n:
            single = False
        else:
            raise ConfigurationError(
                f"q must have shape ({n},) or (B, {n}) for the {n} joints of {self.name!r} "
                f"(see joint_names), got shape {arr.shape}"
            )
        if not np.isfinite(arr).all():
            bad = np.argwhere(~np.isfinite(arr))[0]
            raise ConfigurationError(
                f"q has a non-finite value ({arr[tuple(bad)]}) at batch {bad[0]}, joint {self.joint_names[bad[1]]!r}"
            )
        return arr, single

    # ------------------------------------------------------------------ FK
    def forward_kinematics(self, q: ArrayLike, out: NDArray[np.floating] | None = None) -> NDArray[np.floating]:
        """Link frames relative to the root link.

        Args:
            q: (n,) or (B, n) joint values [rad or m] in :attr:`joint_names` order. float32 input
                is computed and returned in float32; anything else in float64.
            out: For a (B, n) batch, an array an earlier call returned for a batch of the same
                size and dtype, overwritten with the new frames and returned. A caller that
                evaluates batches in a loop saves allocating the result each time: above
                glibc's 32 MiB heap-reuse size (e.g. 10k configurations of a 27-link hand in
                float64) every fresh result is mapped anew from the OS and its pages faulted
                in, which costs more than the FK (``benchmarks/bench_fk.py`` measures both).

        Returns:
            (L, 4, 4) or (B, L, 4, 4) homogeneous transforms, in :attr:`link_names` order. The
            array is a view whose batch axis is last in memory (the layout the vectorised code
            computes in); ``np.ascontiguousarray`` gives a C-ordered copy when one is needed.

        Raises:
            ConfigurationError: Wrong shape or a non-finite value, or an ``out`` that is not
                such an earlier result.
        """
        arr, single = self._as_batch(q)
        if single:
            if out is not None:
                raise ConfigurationError("out: only for a (B, n) batch of configurations, got a single (n,) one")
            return self._fk_single(arr[0])
        bsz, nl = arr.shape[0], len(self.link_names)
        if out is None:
            store = np.empty((nl, 4, 4, bsz), dtype=arr.dtype)  # (link, column, row, batch)
        else:
            store = self._out_store(out, bsz, arr.dtype)
        if bsz <= _SINGLE_PASS:  # one pass, written straight into the result
            self._fk_chunk(arr, out=store)
        else:
            for start in range(0, bsz, _CHUNK):
                stop = min(bsz, start + _CHUNK)
                store[..., start:stop] = self._fk_chunk(arr[start:stop])
        return store.transpose(3, 0, 2, 1) if out is None else out

    def _out_store(self, out: NDArray[np.floating], bsz: int, dtype: np.dtype) -> NDArray[np.floating]:
        """The batch-last memory behind ``out``, checked to be an earlier result's layout."""
        nl = len(self.link_names)
        expected = (bsz, nl, 4, 4)
        if not isinstance(out, np.ndarray) or out.shape != expected or out.dtype != dtype:
            got = (getattr(out, "shape", None), getattr(out, "dtype", type(out).__name__))
            raise ConfigurationError(
                f"out: expected an array forward_kinematics returned for this batch, shape {expected} "
                f"dtype {np.dtype(dtype)}, got shape {got[0]} dtype {got[1]}"
            )
        store = out.transpose(1, 3, 2, 0)
        if not (store.flags.c_contiguous and out.flags.writeable):
            raise ConfigurationError(
                "out: expected a writeable array forward_kinematics returned (batch axis last in memory), "
                "got another layout; pass the returned array itself, not a copy"
            )
        return store

    def _fk_chunk(self, q: NDArray[np.floating], out: NDArray[np.floating] | None = None) -> NDArray[np.floating]:
        """Frames of one chunk, (L, 4 columns, 4 rows, b), into ``out`` if given (contiguous)."""
        dtype, b, nl = q.dtype, q.shape[0], len(self.link_names)
        one = dtype.type(1.0)
        angles = np.zeros((nl, b), dtype=dtype)  # fixed links: angle 0, i.e. cos 1 and sin 0
        moving = q.T[self._slot_col[self._link_slot]]
        if not self._identity_slots:
            slots = self._link_slot
            moving = moving * self._slot_mult[slots, None].astype(dtype) + self._slot_off[slots, None].astype(dtype)
        angles[self._moving] = moving
        half = np.tan(np.where(self._revolute[:, None], angles, 0) * dtype.type(0.5))
        h2 = half * half
        inv = one / (one + h2)
        cos = ((one - h2) * inv)[:, None, :]
        sin = ((dtype.type(2.0) * half) * inv)[:, None, :]

        work = np.empty((nl, 4, 4, b), dtype=dtype) if out is None else out
        work[0] = np.eye(4, dtype=dtype)[:, :, None]
        for lo, hi, src, const_t, motions in self._levels:
            level = work[lo:hi]
            np.matmul(const_t.astype(dtype, copy=False), work[src].reshape(hi - lo, 4, 4 * b), out=level.reshape(hi - lo, 4, 4 * b))
            for j, kind, ca, cb, sign, axis in motions:
                f = level[j]  # (4 columns, 4 rows, b)
                if kind == _KIND_REVOLUTE:  # rotate columns a, b about the joint axis
                    c, s = cos[lo + j, 0], sin[lo + j, 0]
                    if sign < 0:
                        s = -s
                    col_a, col_b = f[ca, :3], f[cb, :3]  # (3, b)
                    new_a = col_a * c
                    new_a += col_b * s
                    col_b *= c
                    col_b -= col_a * s
                    col_a[...] = new_a
                else:  # prismatic: t += d * (R @ axis); its angle slot holds d
                    d = angles[lo + j]
                    for k in range(3):
                        if axis[k] != 0.0:
                            f[3, :3] += f[k, :3] * (d * dtype.type(axis[k]))
        for i, align in self._unalign:
            work[i] = (align.astype(dtype, copy=False) @ work[i].reshape(4, 4 * b)).reshape(4, 4, b)
        return work


    def _fk_single(self, q: NDArray[np.floating]) -> NDArray[np.floating]:
        """Frames of one configuration, (L, 4, 4) C-ordered (see the single-configuration form
        in ``__init__``)."""
        dtype, nl = q.dtype, len(self.link_names)
        angles = np.zeros(nl, dtype=dtype)
        moving = q[self._slot_col[self._link_slot]]
        if not self._identity_slots:
            slots = self._link_slot
            moving = moving * self._slot_mult[slots].astype(dtype) + self._slot_off[slots].astype(dtype)
        angles[self._moving] = moving
        motion = np.zeros((nl, 4, 4), dtype=dtype)
        motion[:, [0, 1, 2, 3], [0, 1, 2, 3]] = 1.0
        rev, ca, cb, sgn = self._rev_rows
        a = angles[rev]
        c, s = np.cos(a), np.sin(a) * sgn.astype(dtype)
        # F' = F @ M rotates columns a, b: F'_a = c F_a + s F_b, F'_b = c F_b - s F_a
        motion[rev, ca, ca] = c
        motion[rev, cb, cb] = c
        motion[rev, cb, ca] = s
        motion[rev, ca, cb] = -s
        pri, axis = self._pri_rows
        if len(pri):
            motion[pri, :3, 3] = angles[pri, None] * axis.astype(dtype)
        local = np.matmul(self._const.astype(dtype, copy=False), motion)
        work = np.empty((nl, 4, 4), dtype=dtype)
        work[0] = np.eye(4, dtype=dtype)
        for lo, hi, src, _, _ in self._levels:
            np.matmul(work[src], local[lo:hi], out=work[lo:hi])
        for i, align_t in self._unalign_t:
            work[i] = work[i] @ align_t.astype(dtype, copy=False)
        return work

    # ------------------------------------------------------------------ Jacobian
    def jacobian(self, q: ArrayLike, link: str | int) -> NDArray[np.floating]:
        """Geometric Jacobian of a link's frame origin.

        Args:
            q: (n,) or (B, n) joint values.
            link: Link name or index.

        Returns:
            (6, n) or (B, 6, n): rows 0-2 map joint velocities to the linear velocity [m/s] of
            the link origin, rows 3-5 to the angular velocity [rad/s], both expressed in the root
            link frame. Mimic joints add their contribution, times their multiplier, to their
            master's column.
        """
        arr, single = self._as_batch(q)
        frames = self.forward_kinematics(arr)  # (B, L, 4, 4)
        return self._jacobian_from_frames(frames, self.link_index(link), single)

    def _jacobian_from_frames(self, frames: NDArray[np.floating], li: int, single: bool) -> NDArray[np.floating]:
        bsz = frames.shape[0]
        jac = np.zeros((bsz, 6, self.num_joints), dtype=frames.dtype)
        p_link = frames[:, li, :3, 3]
        for ci in self._chain[li]:
            slot = self._slot_of_link[ci]
            col, mult = self._slot_col[slot], self._slot_mult[slot]
            z = frames[:, ci, :3, :3] @ self._axis[ci].astype(frames.dtype)  # (B, 3) world joint axis
            if self._kind[ci] == _KIND_REVOLUTE:
                jac[:, :3, col] += mult * np.cross(z, p_link - frames[:, ci, :3, 3])
                jac[:, 3:, col] += mult * z
            else:
                jac[:, :3, col] += mult * z
        return jac[0] if single else jac

    def __repr__(self) -> str:
        return (
            f"KinematicTree({self.name!r}, links={len(self.link_names)}, joints={self.num_joints}, "
            f"mimic={len(self.mimic_joint_names)})"
        )


def load_urdf(path: str | Path) -> KinematicTree:
    """Load any URDF into a :class:`KinematicTree`.

    Args:
        path: Path of the URDF file.

    Raises:
        URDFError: The file is missing or is not a valid URDF tree (the message says why).
    """
    name, links, joints = parse_urdf(path)
    return KinematicTree(name, links, joints, source=str(path))
