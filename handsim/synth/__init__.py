"""Automatic per-type grasp synthesis: ``handsim synth`` (issue #6).

Pure-numpy candidate generation on the kinematics core (:mod:`handsim.synth.sdf`,
:mod:`handsim.synth.handmodel`, :mod:`handsim.synth.optimize`, :mod:`handsim.synth.wrench`,
:mod:`handsim.synth.closing`: importable without PyBullet),
verification in physics with the benchmark's own trial (:mod:`handsim.synth.verify`), an
optional physics hill climb of plans that nearly hold (:mod:`handsim.synth.refine`), and the
orchestration that writes a hand's ``grasps.json`` (:mod:`handsim.synth.synthesize`, imported
lazily because verification needs PyBullet).
"""

from __future__ import annotations

from handsim.synth.closing import DEFAULT_CLOSING, ClosingSettings, sweep_candidates
from handsim.synth.handmodel import HandSurface
from handsim.synth.optimize import (
    Candidate,
    ClosingCheck,
    GraspProblem,
    SynthSettings,
    closing_check,
    optimize,
    plan_from_solution,
)
from handsim.synth.sdf import (
    ObjectSDF,
    box_sdf,
    capsule_sdf,
    cylinder_sdf,
    object_sdf,
    sphere_sdf,
    torus_sdf,
)
from handsim.synth.wrench import motor_wrench_margin

__all__ = [
    "DEFAULT_CLOSING",
    "Candidate",
    "ClosingCheck",
    "ClosingSettings",
    "GraspProblem",
    "HandSurface",
    "ObjectSDF",
    "SynthSettings",
    "box_sdf",
    "capsule_sdf",
    "closing_check",
    "cylinder_sdf",
    "motor_wrench_margin",
    "object_sdf",
    "optimize",
    "plan_from_solution",
    "sphere_sdf",
    "sweep_candidates",
    "torus_sdf",
]
