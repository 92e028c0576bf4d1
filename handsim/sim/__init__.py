"""The PyBullet simulation layer: world, test objects, hand body, disturbance protocol, render.

Importing this package imports PyBullet; the kinematics and scoring layers do not.

One grasp episode (the numbers come from :class:`handsim.tolerances.Protocol`)::

    with World(protocol, gravity=False) as world:             # weightless grasp phase
        hand = HandBody(world, urdf_path, wrist_xyz, wrist_quat_wxyz)
        obj = spawn_object(world, grasp.object_spec, obj_xyz, obj_quat_wxyz)
        hand.reset_joints(pre_shape)
        hand.set_targets(closing_targets)                       # motors capped at URDF effort
        world.step(protocol.steps(protocol.grasp_duration_s))
        contacts = hand.contacts(obj)                           # normals point into the object
        ok_depth = hand.max_penetration(obj) <= protocol.max_penetration_m
        world.set_gravity(True)
        world.step(protocol.steps(protocol.settle_s))
        result = run_disturbance(world, obj)                    # 10 x weight along +-x, +-y, +-z
"""

# PyBullet without its import banner, before any module below (or pybullet_utils) imports it.
from handsim._pybullet import pybullet as _pybullet  # noqa: F401
from handsim.sim.hand import Contacts, HandBody
from handsim.sim.objects import SHAPE_FIELDS, ObjectBody, object_inertia, spawn_object
from handsim.sim.protocol import (
    DIRECTION_VECTORS,
    DisturbanceResult,
    DisturbanceStep,
    run_disturbance,
)
from handsim.sim.render import render_rgb
from handsim.sim.world import World

__all__ = [
    "DIRECTION_VECTORS",
    "SHAPE_FIELDS",
    "Contacts",
    "DisturbanceResult",
    "DisturbanceStep",
    "HandBody",
    "ObjectBody",
    "World",
    "object_inertia",
    "render_rgb",
    "run_disturbance",
    "spawn_object",
]
