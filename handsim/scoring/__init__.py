"""The vectorised grasp-scoring core (pure numpy; never imports PyBullet).

* :mod:`handsim.scoring.quality`: analytic grasp quality (Ferrari-Canny Q1, force closure,
  wrench-hull volume) over batches of grasps.
* :mod:`handsim.scoring.signature`: does a trial's set of touched hand regions match a grasp
  type's contact signature?
* :mod:`handsim.scoring.contacts`: label contact points with hand regions through the
  kinematics core.
"""

from handsim.scoring.contacts import contact_matrix, label_contacts
from handsim.scoring.quality import (
    epsilon_quality,
    force_closure,
    friction_cone_wrenches,
    hull_volume,
    wrench_epsilon,
    wrench_hull_volume,
)
from handsim.scoring.signature import CompiledSignature, SignatureMatch, match_signature

__all__ = [
    "CompiledSignature",
    "SignatureMatch",
    "contact_matrix",
    "epsilon_quality",
    "force_closure",
    "friction_cone_wrenches",
    "hull_volume",
    "label_contacts",
    "match_signature",
    "wrench_epsilon",
    "wrench_hull_volume",
]
