"""The PyBullet simulation layer: world, test objects, hand body, disturbance protocol, render.

Importing this package imports PyBullet; the kinematics and scoring layers do not.
"""

from handsim.sim.hand import Contacts, HandBody
from handsim.sim.objects import SHAPE_FIELDS, ObjectBody, object_inertia, spawn_object
from handsim.sim.protocol import DIRECTION_VECTORS, DisturbanceResult, DisturbanceStep, run_disturbance
from handsim.sim.render import render_rgb
from handsim.sim.world import World

__all__ = [
    "World",
    "ObjectBody",
    "spawn_object",
    "object_inertia",
    "SHAPE_FIELDS",
    "HandBody",
    "Contacts",
    "run_disturbance",
    "DisturbanceResult",
    "DisturbanceStep",
    "DIRECTION_VECTORS",
    "render_rgb",
]
