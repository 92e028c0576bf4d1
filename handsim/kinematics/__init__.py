"""Pure-numpy kinematics: URDF loading, batched forward kinematics and Jacobians.

Importing this package never imports PyBullet.
"""

from handsim.kinematics.tree import KinematicTree, load_urdf
from handsim.kinematics.urdf import (
    SUPPORTED_JOINT_TYPES,
    JointSpec,
    parse_urdf,
    rpy_to_matrix,
)

__all__ = ["SUPPORTED_JOINT_TYPES", "JointSpec", "KinematicTree", "load_urdf", "parse_urdf", "rpy_to_matrix"]
