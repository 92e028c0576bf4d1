"""Hand-specific grasp data: how one hand attempts each taxonomy grasp.

Each hand folder may hold a ``grasps.json``::

    {
      "schema": 1,
      "grasps": {
        "tip_pinch": {
          "object_xyz": [0.11, -0.01, 0.06],          # object centre in the palm (root) frame [m]
          "object_quat_wxyz": [1, 0, 0, 0],           # object orientation in the palm frame
          "preshape": {"thumb_cmc_abd": 1.2, ...},    # joint targets before closing [rad]
          "close": {"index_mcp_flex": 0.9, ...},      # closing targets [rad]
          "effort": {"thumb_cmc_flex": 1.5},          # optional: lower motor caps [N m]
          "note": "why this pose"
        }
      }
    }

Joints missing from ``preshape`` take the hand's rest pose; joints missing from ``close`` keep their pre-shape
value. Closing targets are usually *past* the object surface: the joint motors, capped at the
URDF effort, then press on the object. A plan's optional ``effort`` lowers named motors' caps
for that grasp type only, whatever the policy (a gentler grip, as a real hand's controller sets
its grip force); each cap is at most the URDF effort, so a plan never makes a motor stronger
than the hand, and the benchmark's results and report list every lowered cap. A grasp type
with no entry is one the hand's author did not provide: the benchmark still runs it (from the
rest pose) and it fails honestly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from handsim._io import DuplicateKeyError, loads_unique_keys, not_utf8
from handsim.errors import GraspDataError, suggest

if TYPE_CHECKING:
    from handsim.hand import Hand
    from handsim.kinematics import KinematicTree

__all__ = ["GRASP_DATA_FILE", "HandGrasp", "load_hand_grasps", "load_plans_of"]

GRASP_DATA_FILE = "grasps.json"
_FIELDS = ("object_xyz", "object_quat_wxyz", "preshape", "close", "effort", "note")


@dataclass(frozen=True)
class HandGrasp:
    """One hand's plan for one grasp type.

    Attributes:
        grasp_id: Taxonomy id (e.g. ``"tip_pinch"``).
        object_xyz: (3,) object centre of mass in the palm (root link) frame [m].
        object_quat_wxyz: (4,) unit quaternion, object orientation in the palm frame.
        preshape: (n,) joint targets before closing [rad or m], in the hand's joint order.
        close: (n,) closing joint targets, in the hand's joint order.
        note: Free text from the author.
        effort: (n,) the motors' effort caps for this grasp [N m or N], in the hand's joint
            order, each at most the URDF effort; ``None`` (no ``effort`` field): the URDF efforts.
    """

    grasp_id: str
    object_xyz: NDArray[np.float64]
    object_quat_wxyz: NDArray[np.float64]
    preshape: NDArray[np.float64]
    close: NDArray[np.float64]
    note: str = ""
    effort: NDArray[np.float64] | None = None

    def lowered_efforts(self, joint_names: Sequence[str], urdf_effort: ArrayLike) -> dict[str, float]:
        """The joints whose cap this plan lowers below ``urdf_effort``: ``{joint: cap}``."""
        if self.effort is None:
            return {}
        urdf = np.asarray(urdf_effort, dtype=np.float64)
        return {joint_names[i]: float(self.effort[i]) for i in np.flatnonzero(self.effort < urdf)}


def _is_number(v: object) -> bool:
    """A JSON number; ``true``/``false`` are not (bool is an int subclass in Python)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _vector(raw: object, size: int, where: str) -> NDArray[np.float64]:
    if not isinstance(raw, list) or len(raw) != size or not all(_is_number(v) for v in raw):
        raise GraspDataError(f"{where}: expected a list of {size} numbers, got {raw!r}")
    arr = np.array(raw, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise GraspDataError(f"{where}: values must be finite, got {raw!r}")
    return arr


def _named_joints(
    raw: object, joints: Sequence[str], where: str, mimic: Mapping[str, str], what: str, mimic_hint: str,
) -> Iterator[tuple[int, str, object]]:
    """``(index, joint, value)`` for each entry of a ``{joint: value}`` field of a plan, after
    checking it is a mapping of independent joints of the hand (errors name the field)."""
    if not isinstance(raw, Mapping):
        raise GraspDataError(f"{where}: expected an object mapping joint names to {what}, got {type(raw).__name__}")
    index = {name: i for i, name in enumerate(joints)}
    for name, value in raw.items():
        if name in mimic:
            raise GraspDataError(f"{where}.{name}: {name!r} is a mimic joint following {mimic[name]!r}: "
                                 + mimic_hint.format(master=mimic[name], joint=name))
        if name not in index:
            raise GraspDataError(f"{where}: " + suggest(name, joints, "joint"))
        yield index[name], name, value


def _targets(
    raw: object, base: NDArray[np.float64], joints: Sequence[str], lower: NDArray, upper: NDArray, where: str,
    mimic: Mapping[str, str],
) -> NDArray[np.float64]:
    out = base.copy()
    hint = "plans list independent joints only (give {master!r}'s target; {joint!r} follows it)"
    for i, name, value in _named_joints(raw, joints, where, mimic, "targets", hint):
        if not _is_number(value) or not math.isfinite(value):
            raise GraspDataError(f"{where}.{name}: expected a finite number, got {value!r}")
        if not lower[i] - 1e-9 <= value <= upper[i] + 1e-9:
            raise GraspDataError(
                f"{where}.{name}: {value} is outside the joint's limits [{lower[i]:.4g}, {upper[i]:.4g}]"
            )
        out[i] = float(value)
    return out


def _efforts(
    raw: object, urdf: NDArray[np.float64], joints: Sequence[str], where: str, mimic: Mapping[str, str],
) -> NDArray[np.float64]:
    out = urdf.copy()
    hint = "a plan caps independent joints only (cap {master!r}: {joint!r}'s motor follows in proportion)"
    for i, name, value in _named_joints(raw, joints, where, mimic, "effort caps [N m or N]", hint):
        allowed = f"allowed: (0, {urdf[i]:.6g}], the joint's URDF effort being {urdf[i]:.6g} [N m or N]"
        if not _is_number(value):
            raise GraspDataError(f"{where}.{name}: expected a number ({allowed}), got {json.dumps(value)}")
        if not value > 0.0:
            raise GraspDataError(f"{where}.{name}: expected a cap > 0 (a motor capped at 0 cannot move; "
                                 f"{allowed}), got {value!r}")
        if not value <= urdf[i] * (1.0 + 1e-9):
            raise GraspDataError(f"{where}.{name}: {value!r} is above the joint's URDF effort: a plan may lower a "
                                 f"motor's cap, never raise it ({allowed})")
        out[i] = min(float(value), urdf[i])
    return out


def load_hand_grasps(
    folder: str | Path,
    joint_names: Sequence[str],
    lower: NDArray[np.float64],
    upper: NDArray[np.float64],
    grasp_ids: Sequence[str],
    rest: NDArray[np.float64] | None = None,
    mimic: Mapping[str, str] | None = None,
    effort: NDArray[np.float64] | None = None,
) -> dict[str, HandGrasp]:
    """Read and validate a hand folder's ``grasps.json``.

    Args:
        folder: The hand folder.
        joint_names: The hand's independent joints, in q order.
        lower, upper: (n,) joint limits, to check every target against.
        grasp_ids: Valid taxonomy ids.
        rest: (n,) the hand's rest pose: the pre-shape of joints a plan does not list (default
            zeros clipped to the limits).
        mimic: Mimic joint -> the independent joint it follows, to say so when a plan names one.
        effort: (n,) the URDF efforts, the most a plan's ``effort`` may give a joint (a plan
            with an ``effort`` field is refused without them).

    Returns:
        Grasp plans by taxonomy id (empty when the file does not exist).

    Raises:
        GraspDataError: Not UTF-8 text, malformed JSON, unknown grasp ids or joints, targets outside the limits,
            non-unit quaternions, effort caps above the URDF's; the message names the file and
            the field.
    """
    path = Path(folder) / GRASP_DATA_FILE
    if not path.is_file():
        return {}
    try:
        raw = loads_unique_keys(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise GraspDataError(f"{path}: invalid JSON ({exc})") from None
    except UnicodeDecodeError as exc:
        raise GraspDataError(not_utf8(path, exc)) from None
    except DuplicateKeyError as exc:
        raise GraspDataError(f"{path}: {exc}") from None
    schema = raw.get("schema") if isinstance(raw, dict) else None
    if not isinstance(raw, dict) or not _is_number(schema) or schema != 1 or not isinstance(raw.get("grasps"), dict):
        raise GraspDataError(f"{path}: expected an object with \"schema\": 1 and a \"grasps\" object")
    lower, upper = np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
    base = np.clip(np.zeros(len(joint_names)) if rest is None else np.asarray(rest, dtype=np.float64), lower, upper)
    plans: dict[str, HandGrasp] = {}
    for gid, entry in raw["grasps"].items():
        where = f"{path}: grasps.{gid}"
        if gid not in grasp_ids:
            raise GraspDataError(f"{path}: grasps: " + suggest(gid, grasp_ids, "grasp id"))
        if not isinstance(entry, dict):
            raise GraspDataError(f"{where}: expected an object")
        for key in entry:
            if key not in _FIELDS:
                raise GraspDataError(f"{where}: " + suggest(key, _FIELDS, "field"))
        for key in ("object_xyz", "object_quat_wxyz", "preshape", "close"):
            if key not in entry:
                raise GraspDataError(f"{where}: missing field {key!r}; required: object_xyz, object_quat_wxyz, preshape, close")
        quat = _vector(entry["object_quat_wxyz"], 4, f"{where}.object_quat_wxyz")
        norm = float(np.linalg.norm(quat))
        if abs(norm - 1.0) > 1e-3:
            raise GraspDataError(f"{where}.object_quat_wxyz: expected a unit quaternion (w, x, y, z), norm is {norm:.4f}")
        pre = _targets(entry["preshape"], base, joint_names, lower, upper, f"{where}.preshape", mimic or {})
        caps = None
        if "effort" in entry:
            if effort is None:
                raise GraspDataError(f"{where}.effort: load_hand_grasps(effort=...) was not given the hand's URDF "
                                     f"efforts to check the caps against (load_plans_of passes them)")
            caps = _efforts(entry["effort"], np.asarray(effort, dtype=np.float64), joint_names, f"{where}.effort",
                            mimic or {})
        plans[gid] = HandGrasp(
            grasp_id=gid,
            object_xyz=_vector(entry["object_xyz"], 3, f"{where}.object_xyz"),
            object_quat_wxyz=quat / norm,
            preshape=pre,
            close=_targets(entry["close"], pre, joint_names, lower, upper, f"{where}.close", mimic or {}),
            note=str(entry.get("note", "")),
            effort=caps,
        )
    return plans


def load_plans_of(
    hand: Hand, folder: str | Path | None = None, tree: KinematicTree | None = None
) -> dict[str, HandGrasp]:
    """A hand's ``grasps.json`` as the benchmark's episode reads it.

    The plans are checked against the URDF's independent joints (mimic joints are not planned),
    their limits, the hand's rest pose clipped to them and the taxonomy's ids: the one place
    that decides which plans a hand can run, for the episode, ``handsim synth`` and
    ``handsim sweep`` alike.

    Args:
        hand: The hand.
        folder: The folder holding the ``grasps.json`` to read (default: the hand's own).
        tree: The hand's kinematic tree, if the caller has it loaded (default: loaded here).

    Returns:
        Grasp plans by taxonomy id (empty when the file does not exist).

    Raises:
        GraspDataError: As :func:`load_hand_grasps`.
    """
    from handsim.grasps import default_taxonomy
    from handsim.kinematics import load_urdf

    names = (tree or load_urdf(hand.urdf_path)).joint_names
    lower = np.array([hand.joint_limits[j].lower for j in names])
    upper = np.array([hand.joint_limits[j].upper for j in names])
    rest = np.clip(hand.rest_vector(), lower, upper)
    effort = np.array([hand.joint_limits[j].effort for j in names])
    return load_hand_grasps(hand.folder if folder is None else folder, names, lower, upper,
                            default_taxonomy().ids(), rest=rest,
                            mimic={j: m.master for j, m in hand.mimic_joints.items()}, effort=effort)
