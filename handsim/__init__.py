"""handsim: a dexterous robotic hand grasp simulator and the 33-type grasp taxonomy benchmark.

The pure-numpy layers (kinematics, taxonomy, hand metadata, scoring) import without PyBullet;
the simulation layer, the grasp episode and the Gymnasium environment load PyBullet when
first used (they are imported lazily on attribute access). ``import handsim`` registers the
environment ``handsim/Grasp-v0`` with Gymnasium.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from handsim import grasps
from handsim.data import (
    DEFAULT_HAND,
    MJCF_MAPPING_FILE,
    available_hands,
    hand_dir,
    hand_metadata_path,
)
from handsim.envs import GRASP_ENV_ID, register_envs
from handsim.errors import (
    ConfigurationError,
    DataNotFoundError,
    GraspDataError,
    HandsimError,
    MetadataError,
    MissingDependencyError,
    ResultsError,
    SimulationError,
    UnknownNameError,
    URDFError,
)
from handsim.grasp_data import HandGrasp, load_hand_grasps
from handsim.grasps import GraspType, Signature, TestObject
from handsim.hand import Finger, Hand, JointLimit, MimicJoint, ThumbAbduction, load_hand
from handsim.handgen import make_hand
from handsim.importers import (
    MjcfMapping,
    convert_mjcf,
    converted_hand_dir,
    load_mapping,
)
from handsim.kinematics import KinematicTree, load_urdf
from handsim.regions import Region, RegionMap
from handsim.synth import GraspProblem, ObjectSDF, SynthSettings
from handsim.tolerances import DEFAULT_PROTOCOL, Protocol

if TYPE_CHECKING:
    from handsim.envs.grasp_env import GraspEnv, RewardWeights
    from handsim.episode import EpisodeResult, EpisodeSettings, GraspEpisode
    from handsim.policies import ScriptedGraspPolicy
    from handsim.synth.synthesize import (
        SynthResults,
        TypeResult,
        synthesize,
        synthesize_type,
    )

__version__ = "0.1.0"

# Names that need PyBullet: imported on first access.
_LAZY = {
    "GraspEpisode": "handsim.episode",
    "EpisodeResult": "handsim.episode",
    "EpisodeSettings": "handsim.episode",
    "GraspEnv": "handsim.envs.grasp_env",
    "RewardWeights": "handsim.envs.grasp_env",
    "ScriptedGraspPolicy": "handsim.policies",
    "SynthResults": "handsim.synth.synthesize",
    "TypeResult": "handsim.synth.synthesize",
    "synthesize": "handsim.synth.synthesize",
    "synthesize_type": "handsim.synth.synthesize",
}

__all__ = [
    "DEFAULT_HAND",
    "DEFAULT_PROTOCOL",
    "GRASP_ENV_ID",
    "MJCF_MAPPING_FILE",
    "ConfigurationError",
    "DataNotFoundError",
    "EpisodeResult",
    "EpisodeSettings",
    "Finger",
    "GraspDataError",
    "GraspEnv",
    "GraspEpisode",
    "GraspProblem",
    "GraspType",
    "Hand",
    "HandGrasp",
    "HandsimError",
    "JointLimit",
    "KinematicTree",
    "MetadataError",
    "MimicJoint",
    "MissingDependencyError",
    "MjcfMapping",
    "ObjectSDF",
    "Protocol",
    "Region",
    "RegionMap",
    "ResultsError",
    "RewardWeights",
    "ScriptedGraspPolicy",
    "Signature",
    "SimulationError",
    "SynthResults",
    "SynthSettings",
    "TestObject",
    "ThumbAbduction",
    "TypeResult",
    "URDFError",
    "UnknownNameError",
    "__version__",
    "available_hands",
    "convert_mjcf",
    "converted_hand_dir",
    "grasps",
    "hand_dir",
    "hand_metadata_path",
    "load_hand",
    "load_hand_grasps",
    "load_mapping",
    "load_urdf",
    "make_hand",
    "register_envs",
    "synthesize",
    "synthesize_type",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'handsim' has no attribute {name!r}")


register_envs()
