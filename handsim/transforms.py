"""Rotation and pose conversions (pure numpy).

handsim stores quaternions as **(w, x, y, z)** with unit norm; PyBullet and
``scipy.spatial.transform.Rotation`` use **(x, y, z, w)**. Data crosses into PyBullet only
through :func:`quat_wxyz_to_xyzw` / :func:`quat_xyzw_to_wxyz`.

Every function accepts leading batch dimensions (``(..., 4)`` quaternions, ``(..., 3, 3)``
rotation matrices, ``(..., 4, 4)`` homogeneous transforms) and returns the same batch shape.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from handsim.errors import ConfigurationError

__all__ = [
    "matrix_to_pose",
    "matrix_to_quat",
    "pose_to_matrix",
    "quat_angle",
    "quat_conjugate",
    "quat_multiply",
    "quat_normalize",
    "quat_rotate",
    "quat_to_matrix",
    "quat_wxyz_to_xyzw",
    "quat_xyzw_to_wxyz",
]

# Below this norm a quaternion carries no rotation information.
_MIN_QUAT_NORM = 1e-9


def _as_array(x: ArrayLike, last: tuple[int, ...], name: str) -> NDArray[np.float64]:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim < len(last) or arr.shape[arr.ndim - len(last):] != last:
        raise ConfigurationError(f"{name}: expected shape (..., {', '.join(map(str, last))}), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ConfigurationError(f"{name}: expected finite values, got {arr}")
    return arr


def quat_wxyz_to_xyzw(q: ArrayLike) -> NDArray[np.float64]:
    """Reorder quaternions from handsim's (w, x, y, z) to PyBullet/scipy's (x, y, z, w).

    Args:
        q: Quaternions, shape (..., 4), order (w, x, y, z).

    Returns:
        The same quaternions, shape (..., 4), order (x, y, z, w).
    """
    q = _as_array(q, (4,), "quaternion (w, x, y, z)")
    return np.concatenate([q[..., 1:], q[..., :1]], axis=-1)


def quat_xyzw_to_wxyz(q: ArrayLike) -> NDArray[np.float64]:
    """Reorder quaternions from PyBullet/scipy's (x, y, z, w) to handsim's (w, x, y, z).

    Args:
        q: Quaternions, shape (..., 4), order (x, y, z, w).

    Returns:
        The same quaternions, shape (..., 4), order (w, x, y, z).
    """
    q = _as_array(q, (4,), "quaternion (x, y, z, w)")
    return np.concatenate([q[..., 3:], q[..., :3]], axis=-1)


def quat_normalize(q: ArrayLike) -> NDArray[np.float64]:
    """Scale quaternions to unit norm.

    Args:
        q: Quaternions, shape (..., 4), (w, x, y, z).

    Returns:
        Unit quaternions, shape (..., 4).

    Raises:
        ConfigurationError: If a quaternion has (near) zero norm.
    """
    q = _as_array(q, (4,), "quaternion (w, x, y, z)")
    n = np.linalg.norm(q, axis=-1, keepdims=True)
    if (n < _MIN_QUAT_NORM).any():
        raise ConfigurationError(f"quaternion (w, x, y, z): expected a non-zero norm, got {q}")
    return q / n


def quat_conjugate(q: ArrayLike) -> NDArray[np.float64]:
    """Conjugate (the inverse of a unit quaternion), shape (..., 4), (w, x, y, z)."""
    q = _as_array(q, (4,), "quaternion (w, x, y, z)")
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def quat_multiply(q1: ArrayLike, q2: ArrayLike) -> NDArray[np.float64]:
    """Hamilton product ``q1 * q2`` (apply ``q2`` first, then ``q1``).

    Args:
        q1: Quaternions, shape (..., 4), (w, x, y, z).
        q2: Quaternions, shape (..., 4), (w, x, y, z); broadcast against ``q1``.

    Returns:
        The products, shape (..., 4), (w, x, y, z).
    """
    a = _as_array(q1, (4,), "quaternion q1 (w, x, y, z)")
    b = _as_array(q2, (4,), "quaternion q2 (w, x, y, z)")
    w1, x1, y1, z1 = np.moveaxis(a, -1, 0)
    w2, x2, y2, z2 = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ],
        axis=-1,
    )


def quat_to_matrix(q: ArrayLike) -> NDArray[np.float64]:
    """Rotation matrices of quaternions (normalised first).

    Args:
        q: Quaternions, shape (..., 4), (w, x, y, z).

    Returns:
        Rotation matrices, shape (..., 3, 3).
    """
    w, x, y, z = np.moveaxis(quat_normalize(q), -1, 0)
    r = np.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
            2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
            2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
        ],
        axis=-1,
    )
    return r.reshape(r.shape[:-1] + (3, 3))


def quat_rotate(q: ArrayLike, v: ArrayLike) -> NDArray[np.float64]:
    """Rotate vectors by quaternions.

    Args:
        q: Quaternions, shape (..., 4), (w, x, y, z).
        v: Vectors, shape (..., 3); broadcast against ``q``.

    Returns:
        Rotated vectors, shape (..., 3).
    """
    v = _as_array(v, (3,), "vector")
    return np.einsum("...ij,...j->...i", quat_to_matrix(q), v)


def matrix_to_quat(r: ArrayLike) -> NDArray[np.float64]:
    """Quaternions of rotation matrices (Shepperd's method, robust near 180 degrees).

    Args:
        r: Rotation matrices, shape (..., 3, 3).

    Returns:
        Unit quaternions, shape (..., 4), (w, x, y, z), sign chosen so that ``w >= 0``.
    """
    r = _as_array(r, (3, 3), "rotation matrix")
    m00, m11, m22 = r[..., 0, 0], r[..., 1, 1], r[..., 2, 2]
    # Four candidate solutions, each well conditioned when its own diagonal term is largest.
    cand = np.stack(
        [
            np.stack([1 + m00 + m11 + m22, r[..., 2, 1] - r[..., 1, 2], r[..., 0, 2] - r[..., 2, 0], r[..., 1, 0] - r[..., 0, 1]], -1),
            np.stack([r[..., 2, 1] - r[..., 1, 2], 1 + m00 - m11 - m22, r[..., 0, 1] + r[..., 1, 0], r[..., 0, 2] + r[..., 2, 0]], -1),
            np.stack([r[..., 0, 2] - r[..., 2, 0], r[..., 0, 1] + r[..., 1, 0], 1 - m00 + m11 - m22, r[..., 1, 2] + r[..., 2, 1]], -1),
            np.stack([r[..., 1, 0] - r[..., 0, 1], r[..., 0, 2] + r[..., 2, 0], r[..., 1, 2] + r[..., 2, 1], 1 - m00 - m11 + m22], -1),
        ],
        axis=-2,
    )  # (..., 4 candidates, 4)
    pick = np.argmax(np.stack([m00 + m11 + m22, m00, m11, m22], -1), axis=-1)
    q = np.take_along_axis(cand, pick[..., None, None], axis=-2)[..., 0, :]
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., :1] < 0, -q, q)


def pose_to_matrix(xyz: ArrayLike, quat_wxyz: ArrayLike) -> NDArray[np.float64]:
    """Homogeneous transforms from positions and orientations.

    Args:
        xyz: Positions, shape (..., 3) [m].
        quat_wxyz: Orientations, shape (..., 4), (w, x, y, z); broadcast against ``xyz``.

    Returns:
        Transforms, shape (..., 4, 4).
    """
    p = _as_array(xyz, (3,), "position xyz")
    r = quat_to_matrix(quat_wxyz)
    batch = np.broadcast_shapes(p.shape[:-1], r.shape[:-2])
    t = np.zeros(batch + (4, 4))
    t[..., :3, :3] = r
    t[..., :3, 3] = p
    t[..., 3, 3] = 1.0
    return t


def matrix_to_pose(t: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Positions and orientations of homogeneous transforms.

    Args:
        t: Transforms, shape (..., 4, 4).

    Returns:
        ``(xyz, quat_wxyz)``: positions (..., 3) [m] and unit quaternions (..., 4), ``w >= 0``.
    """
    t = _as_array(t, (4, 4), "homogeneous transform")
    return t[..., :3, 3].copy(), matrix_to_quat(t[..., :3, :3])


def quat_angle(q1: ArrayLike, q2: ArrayLike) -> NDArray[np.float64] | float:
    """Angle of the relative rotation between two orientations.

    Args:
        q1: Quaternions, shape (..., 4), (w, x, y, z).
        q2: Quaternions, shape (..., 4), (w, x, y, z); broadcast against ``q1``.

    Returns:
        Angles in [0, pi] [rad], shape (...) (a float for single quaternions).
    """
    rel = quat_multiply(quat_conjugate(quat_normalize(q1)), quat_normalize(q2))
    # atan2 keeps full precision for tiny angles, where 2*acos(w) loses half the digits.
    ang = 2.0 * np.arctan2(np.linalg.norm(rel[..., 1:], axis=-1), np.abs(rel[..., 0]))
    return float(ang) if np.ndim(ang) == 0 else ang
