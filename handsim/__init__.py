"""handsim: a dexterous robotic hand grasp simulator and the 33-type grasp taxonomy benchmark.

The pure-numpy layers (kinematics, scoring) import without PyBullet; the simulation layer,
the Gymnasium environment and the benchmark load PyBullet when used.
"""

from handsim.errors import (
    ConfigurationError,
    DataNotFoundError,
    GraspDataError,
    HandsimError,
    MetadataError,
    MissingDependencyError,
    SimulationError,
    UnknownNameError,
    URDFError,
)
from handsim.kinematics import KinematicTree, load_urdf

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "ConfigurationError",
    "DataNotFoundError",
    "GraspDataError",
    "HandsimError",
    "KinematicTree",
    "MetadataError",
    "MissingDependencyError",
    "SimulationError",
    "UnknownNameError",
    "URDFError",
    "load_urdf",
]
