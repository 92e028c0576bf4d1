"""handsim.transforms against scipy.spatial.transform.Rotation (an independent implementation).

scipy orders quaternions (x, y, z, w); handsim (w, x, y, z).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from handsim.errors import ConfigurationError
from handsim.transforms import (
    matrix_to_pose,
    matrix_to_quat,
    pose_to_matrix,
    quat_angle,
    quat_multiply,
    quat_rotate,
    quat_to_matrix,
    quat_wxyz_to_xyzw,
    quat_xyzw_to_wxyz,
)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def rotations(rng: np.random.Generator) -> Rotation:
    # Random rotations plus the awkward ones: identity and 180-degree turns about each axis.
    special = Rotation.from_rotvec([[0, 0, 0], [np.pi, 0, 0], [0, np.pi, 0], [0, 0, np.pi],
                                    [np.pi / np.sqrt(2), np.pi / np.sqrt(2), 0]])
    return Rotation.concatenate([Rotation.random(200, random_state=rng), special])


def _wxyz(r: Rotation) -> np.ndarray:
    xyzw = r.as_quat()
    return np.concatenate([xyzw[:, 3:], xyzw[:, :3]], axis=1)


def _same_rotation(q1: np.ndarray, q2: np.ndarray) -> bool:
    # q and -q are the same rotation.
    return bool(np.all(np.abs(np.abs(np.sum(q1 * q2, axis=-1)) - 1.0) < 1e-12))


def test_reorder_roundtrip_and_meaning() -> None:
    q_wxyz = np.array([0.1, 0.2, 0.3, 0.4])
    assert np.array_equal(quat_wxyz_to_xyzw(q_wxyz), [0.2, 0.3, 0.4, 0.1])
    assert np.array_equal(quat_xyzw_to_wxyz(quat_wxyz_to_xyzw(q_wxyz)), q_wxyz)
    batch = np.arange(24.0).reshape(2, 3, 4)
    assert np.array_equal(quat_xyzw_to_wxyz(quat_wxyz_to_xyzw(batch)), batch)


def test_quat_to_matrix_matches_scipy(rotations: Rotation) -> None:
    np.testing.assert_allclose(quat_to_matrix(_wxyz(rotations)), rotations.as_matrix(), atol=1e-12)
    # Single quaternion keeps its dimensionality; unnormalised input is normalised.
    one = _wxyz(rotations[:1])[0]
    np.testing.assert_allclose(quat_to_matrix(3.0 * one), rotations[0].as_matrix(), atol=1e-12)


def test_matrix_to_quat_matches_scipy(rotations: Rotation) -> None:
    q = matrix_to_quat(rotations.as_matrix())
    assert q.shape == (len(rotations), 4)
    assert _same_rotation(q, _wxyz(rotations))
    assert np.all(q[:, 0] >= 0)


def test_batched_equals_one_at_a_time(rotations: Rotation) -> None:
    mats = rotations.as_matrix().reshape(-1, 5, 3, 3)  # (41, 5, 3, 3)
    batched = matrix_to_quat(mats)
    single = np.array([[matrix_to_quat(m) for m in row] for row in mats])
    np.testing.assert_array_equal(batched, single)


def test_multiply_and_rotate_match_scipy(rotations: Rotation, rng: np.random.Generator) -> None:
    a, b = rotations[:100], rotations[100:200]
    assert _same_rotation(quat_multiply(_wxyz(a), _wxyz(b)), _wxyz(a * b))
    v = rng.normal(size=(100, 3))
    np.testing.assert_allclose(quat_rotate(_wxyz(a), v), a.apply(v), atol=1e-12)


def test_pose_roundtrip(rotations: Rotation, rng: np.random.Generator) -> None:
    xyz = rng.normal(size=(len(rotations), 3))
    t = pose_to_matrix(xyz, _wxyz(rotations))
    assert t.shape == (len(rotations), 4, 4)
    # The transform maps a point like scipy's rotation plus the translation.
    p = rng.normal(size=3)
    np.testing.assert_allclose(t[:, :3, :3] @ p + t[:, :3, 3], rotations.apply(p) + xyz, atol=1e-12)
    np.testing.assert_array_equal(t[:, 3], np.tile([0, 0, 0, 1.0], (len(rotations), 1)))
    xyz2, q2 = matrix_to_pose(t)
    np.testing.assert_allclose(xyz2, xyz)
    assert _same_rotation(q2, _wxyz(rotations))


def test_quat_angle_matches_scipy(rotations: Rotation) -> None:
    a, b = rotations[:100], rotations[100:200]
    expected = (a.inv() * b).magnitude()
    np.testing.assert_allclose(quat_angle(_wxyz(a), _wxyz(b)), expected, atol=1e-10)
    # Sign of the quaternion does not matter; a tiny angle keeps its precision.
    q = _wxyz(a[:1])[0]
    assert quat_angle(q, -q) == pytest.approx(0.0, abs=1e-12)
    small = Rotation.from_rotvec([[1e-9, 0, 0]])
    assert quat_angle([1, 0, 0, 0], _wxyz(small)[0]) == pytest.approx(1e-9, rel=1e-6)
    assert isinstance(quat_angle(q, q), float)


def test_bad_input_raises() -> None:
    with pytest.raises(ConfigurationError, match="non-zero norm"):
        quat_to_matrix([0, 0, 0, 0])
    with pytest.raises(ConfigurationError, match=r"expected shape \(\.\.\., 4\)"):
        quat_to_matrix([1, 0, 0])
    with pytest.raises(ConfigurationError, match="finite"):
        pose_to_matrix([np.nan, 0, 0], [1, 0, 0, 0])
