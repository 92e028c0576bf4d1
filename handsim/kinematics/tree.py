"""A kinematic tree with numpy-vectorised forward kinematics and geometric Jacobians.

Conventions (pytorch_kinematics-like): the batch axis comes first; a single configuration of
shape ``(n,)`` gives results without the batch axis. Frames are 4x4 homogeneous transforms of
the URDF *link* frames (not inertial frames) relative to the root link.

Implementation notes (why it is shaped like this):

* A revolute joint about a coordinate axis changes only two rotation columns of its link
  frame, mixed by ``cos q`` and ``sin q``; a link with an oblique axis is computed in an
  "aligned" frame ``F_i = T_i @ P_i`` whose z is the axis, and turned back at the end. The
  constant part of every joint (URDF origin, alignments) is one 12x12 map per link applied to
  the parent's row-major 3x4 frame with one BLAS call, straight into the output array.
* Work is done in chunks of configurations whose frames fit in cache.
* ``cos``/``sin`` come from one ``tan(q/2)`` (the half-angle identities), half the cost of
  calling both; it is exact to a few ulp, including at ``q = pi``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from handsim.errors import ConfigurationError, URDFError, UnknownNameError, suggest
from handsim.kinematics.urdf import JointSpec, parse_urdf

__all__ = ["KinematicTree", "load_urdf"]

_KIND_FIXED, _KIND_REVOLUTE, _KIND_PRISMATIC = 0, 1, 2
_CHUNK = 2048  # configurations per pass, so their frames (about 3 kB each for a hand) stay in cache


def _coordinate_axis(axis: NDArray[np.float64]) -> tuple[int, float] | None:
    """``(k, sign)`` when ``axis == sign * e_k`` exactly, else None."""
    for k in range(3):
        if abs(abs(axis[k]) - 1.0) < 1e-15 and abs(axis[(k + 1) % 3]) < 1e-15 and abs(axis[(k + 2) % 3]) < 1e-15:
            return k, float(np.sign(axis[k]))
    return None


def _align(axis: NDArray[np.float64]) -> NDArray[np.float64]:
    """A rotation P with ``P @ e_z = axis`` (for oblique revolute axes)."""
    z = np.asarray(axis, dtype=np.float64)
    helper = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=1)


def _right_multiply_map(rot: NDArray[np.float64], trans: NDArray[np.float64]) -> NDArray[np.float64]:
    """The 12x12 matrix K with ``vec(F @ [rot, trans]) = K @ vec(F)`` for flattened 3x4 frames.

    A frame is flattened as ``[R00 R01 R02 R10 R11 R12 R20 R21 R22 t0 t1 t2]``.
    """
    k = np.zeros((12, 12))
    for r in range(3):
        for c in range(3):
            for m in range(3):
                k[r * 3 + c, r * 3 + m] = rot[m, c]
        for m in range(3):
            k[9 + r, r * 3 + m] = trans[m]
        k[9 + r, 9 + r] = 1.0
    return k


class KinematicTree:
    """Kinematics of a URDF tree: FK and Jacobians for batches of configurations.

    Build one with :func:`load_urdf`. ``q`` always lists the *independent* movable joints in
    :attr:`joint_names` order (URDF document order); mimic joints follow their master.

    Attributes:
        name: The URDF robot name.
        link_names: All links, root first, parents before children (depth-first, URDF joint order).
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
        order: list[str] = []
        stack = [root]
        while stack:
            link = stack.pop()
            order.append(link)
            stack.extend(j.child for j in reversed(children[link]))
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
        align = np.tile(np.eye(3), (nl, 1, 1))  # P_i: identity unless the joint axis is oblique
        self._steps: list[tuple[int, int, NDArray[np.float64], tuple | None]] = []
        slot_col, slot_mult, slot_off = [], [], []
        self._slot_of_link: dict[int, int] = {}
        for i, link in enumerate(order[1:], start=1):
            j = child_joint[link]
            p = self._link_index[j.parent]
            self._parent[i] = p
            motion = None
            if j.type != "fixed":
                slot = len(slot_col)
                col, mult, off = self._drive[j.name]
                slot_col.append(col)
                slot_mult.append(mult)
                slot_off.append(off)
                self._slot_of_link[i] = slot
                self._axis[i] = j.axis
                if j.type == "prismatic":
                    self._kind[i] = _KIND_PRISMATIC
                    motion = ("lin", slot, j.axis.copy())
                else:
                    self._kind[i] = _KIND_REVOLUTE
                    coord = _coordinate_axis(j.axis)
                    if coord is None:
                        align[i] = _align(j.axis)
                        coord = (2, 1.0)
                    k, sign = coord
                    motion = ("rot", slot, (k + 1) % 3, (k + 2) % 3, sign)
            # F_i = F_p @ (P_p^T @ origin @ P_i) @ motion, on row-major 3x4 frames
            const = np.eye(4)
            const[:3, :3] = align[p].T @ j.origin[:3, :3] @ align[i]
            const[:3, 3] = align[p].T @ j.origin[:3, 3]
            kmap_t = np.zeros((12, 12))
            for r in range(3):
                kmap_t[r * 4 : r * 4 + 4, r * 4 : r * 4 + 4] = const
            self._steps.append((i, p, kmap_t, motion))
        self._slot_col = np.array(slot_col, dtype=np.intp)
        self._slot_mult = np.array(slot_mult, dtype=np.float64)
        self._slot_off = np.array(slot_off, dtype=np.float64)
        self._identity_slots = bool(np.all(self._slot_mult == 1.0) and np.all(self._slot_off == 0.0))
        # Oblique revolute links are computed in an aligned frame F_i = T_i @ P_i; undo at the end.
        self._unalign = [(i, align[i].T.copy()) for i in range(nl) if not np.array_equal(align[i], np.eye(3))]
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
        if not np.all(np.isfinite(arr)):
            bad = np.argwhere(~np.isfinite(arr))[0]
            raise ConfigurationError(
                f"q has a non-finite value ({arr[tuple(bad)]}) at batch {bad[0]}, joint {self.joint_names[bad[1]]!r}"
            )
        return arr, single

    # ------------------------------------------------------------------ FK
    def forward_kinematics(self, q: ArrayLike) -> NDArray[np.floating]:
        """Link frames relative to the root link.

        Args:
            q: (n,) or (B, n) joint values [rad or m] in :attr:`joint_names` order. float32 input
                is computed and returned in float32; anything else in float64.

        Returns:
            (L, 4, 4) or (B, L, 4, 4) homogeneous transforms, in :attr:`link_names` order.

        Raises:
            ConfigurationError: Wrong shape or a non-finite value.
        """
        arr, single = self._as_batch(q)
        out = np.empty((arr.shape[0], len(self.link_names), 4, 4), dtype=arr.dtype)
        for start in range(0, arr.shape[0], _CHUNK):
            self._fk_chunk(arr[start : start + _CHUNK], out[start : start + _CHUNK])
        return out[0] if single else out

    def _fk_chunk(self, q: NDArray[np.floating], out: NDArray[np.floating]) -> None:
        dtype, b, nl = q.dtype, q.shape[0], len(self.link_names)
        one = dtype.type(1.0)
        angles = q[:, self._slot_col]  # (b, M)
        if not self._identity_slots:
            angles = angles * self._slot_mult.astype(dtype) + self._slot_off.astype(dtype)
        half = np.tan(angles * dtype.type(0.5))
        h2 = half * half
        inv = one / (one + h2)
        cos = (one - h2) * inv
        sin = (dtype.type(2.0) * half) * inv

        flat = out.reshape(b, nl, 16)  # row-major 4x4: [R0. t0 R1. t1 R2. t2 0 0 0 1]
        flat[:, 0, :] = (1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1)
        flat[:, 1:, 12:15] = 0.0
        flat[:, 1:, 15] = 1.0
        for i, p, kmap_t, motion in self._steps:
            f = flat[:, i, :12]
            np.matmul(flat[:, p, :12], kmap_t.astype(dtype, copy=False), out=f)
            if motion is None:
                continue
            if motion[0] == "rot":
                _, slot, ka, kb, sign = motion
                c, s = cos[:, slot, None], sin[:, slot, None]
                if sign < 0:
                    s = -s
                col_a, col_b = f[:, ka:12:4], f[:, kb:12:4]  # (b, 3) views of two rotation columns
                new_a = col_a * c
                new_a += col_b * s
                col_b *= c
                col_b -= col_a * s
                col_a[...] = new_a
            else:  # prismatic: t += d * (R @ axis)
                _, slot, axis = motion
                d = angles[:, slot, None]
                for k in range(3):
                    if axis[k] != 0.0:
                        f[:, 3:12:4] += f[:, k:12:4] * (d * dtype.type(axis[k]))
        for i, align_t in self._unalign:
            rot = out[:, i, :3, :3]
            rot[...] = rot @ align_t.astype(dtype, copy=False)

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
