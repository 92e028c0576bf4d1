"""A hand (any URDF) with a fixed (or constraint-driven) wrist, position-controlled joints and
contact queries."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from handsim._pybullet import pybullet
from handsim._urdf_assets import (
    check_mesh_files,
    mesh_references,
    resolve_mesh_filename,
)
from handsim.data import cache_folder_error, cache_root
from handsim.errors import (
    ConfigurationError,
    SimulationError,
    UnknownNameError,
    URDFError,
    suggest,
)
from handsim.kinematics import KinematicTree
from handsim.kinematics.urdf import parse_urdf
from handsim.sim._body import _Body, _pose_args
from handsim.sim.world import World
from handsim.transforms import quat_xyzw_to_wxyz

__all__ = ["Contacts", "HandBody", "load_flags"]

_MOVABLE = {pybullet.JOINT_REVOLUTE: "revolute", pybullet.JOINT_PRISMATIC: "prismatic"}
# Joint values may sit this far outside their limits (float noise from data files) [m or rad].
_LIMIT_SLACK = 1e-9


@dataclasses.dataclass(frozen=True)
class Contacts:
    """Hand-object contact points from the last physics step (N points).

    Attributes:
        points: Contact points on the object's surface, (N, 3) [m], world frame.
        normals: Unit contact normals pointing INTO the object (the direction the hand pushes),
            (N, 3), world frame.
        normal_forces: Normal force of each contact in the last step, (N,) [N].
        distances: Signed distance of each point pair, (N,) [m]; negative is penetration.
        link_indices: PyBullet link index of the hand link touching, (N,) (-1 = root link).
        link_names: URDF name of the hand link of each contact (N names).
    """

    points: NDArray[np.float64]
    normals: NDArray[np.float64]
    normal_forces: NDArray[np.float64]
    distances: NDArray[np.float64]
    link_indices: NDArray[np.int64]
    link_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.link_names)

    @property
    def total_normal_force(self) -> float:
        """Sum of the normal forces [N]."""
        return float(self.normal_forces.sum())


_Mimic = tuple[str, float, float]  # (the independent joint it follows, multiplier, offset)


def _document_joints(path: Path) -> tuple[tuple[str, ...], dict[str, _Mimic]]:
    """The URDF's joint names in document order and its mimic joints, each with the independent
    joint it follows and how (chains of ``<mimic>`` tags resolved; PyBullet ignores the tags)."""
    stat = path.stat()
    order, mimics = _joints_cached(str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    return order, dict(mimics)


@functools.lru_cache(maxsize=32)
def _joints_cached(path: str, mtime_ns: int, size: int) -> tuple[tuple[str, ...], tuple[tuple[str, _Mimic], ...]]:
    # Keyed on the file's modification time and size too: an edited URDF is parsed again. The
    # kinematics core reads (checks and resolves) the <mimic> tags, as it does for FK.
    name, links, joints = parse_urdf(path)
    tree = KinematicTree(name, links, joints, source=path)
    return tuple(j.name for j in joints), tuple((m, tree.mimic_drive(m)) for m in tree.mimic_joint_names)


def _physics_urdf(path: Path, visual: bool = True) -> Path:
    """The URDF PyBullet loads for ``path``: the file itself, or a copy without frame links.

    A frame link is a leaf link on a fixed joint with no mass, no visual and no collision shape
    (e.g. a fingertip frame the kinematics core uses for the tip position). It has no effect
    on the dynamics, but PyBullet carries every link through every step: dropping the default
    hand's five fingertip frames makes ``stepSimulation`` faster with bit-identical
    trajectories (``benchmarks/bench_env.py`` measures both; ``tests/test_sim.py`` checks the
    trajectories against PyBullet running the original). PyBullet's own
    ``URDF_MERGE_FIXED_LINKS`` is NOT equivalent: it moves the parent's centre of mass to the
    link origin.

    The copy is written once into ``<cache_root()>/bullet/`` under a hash of the file, its
    folder and whether visuals were left out. In it every mesh file name is the absolute path
    :func:`handsim._urdf_assets.resolve_mesh_filename` finds (``package://NAME/rest``,
    ``file://`` and relative names resolved as PyBullet resolves them next to the original), so
    meshes still load from the cache folder. A copy is also written, with the frame links kept,
    when a mesh name needs that resolution or when ``visual`` is false and a ``<visual>`` names
    a mesh file: the visuals are then left out of the copy (PyBullet reads visual mesh files
    even with ``URDF_IGNORE_VISUAL_SHAPES``, and refuses the URDF when one is missing); visuals
    made of primitives cost nothing and stay.

    Args:
        path: The URDF file.
        visual: Keep the ``<visual>`` elements (rendering needs them; the physics does not).

    Raises:
        URDFError: Not valid XML, or a mesh PyBullet would load (every collision mesh, and the
            visual ones with ``visual``) is not found: the message names the link, visual or
            collision, the file name and the paths tried.
    """
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, bool(visual))
    target = _physics_urdf_cached(*key)
    if not target.is_file():  # the cache folder was cleared while this process ran: write it again
        _physics_urdf_cached.cache_clear()
        target = _physics_urdf_cached(*key)
    return target


def _end(joint: ET.Element, which: str) -> str | None:
    """The ``parent``/``child`` link name of a URDF joint element (None if it has none)."""
    element = joint.find(which)
    return None if element is None else element.get("link")


def _is_frame_link(link: ET.Element) -> bool:
    if link.find("visual") is not None or link.find("collision") is not None:
        return False
    mass = link.find("inertial/mass")
    try:
        return mass is None or float(mass.get("value", "0")) == 0.0
    except ValueError:
        return False  # PyBullet reports a malformed mass when it loads the original


@functools.lru_cache(maxsize=32)
def _physics_urdf_cached(path: str, mtime_ns: int, size: int, visual: bool = True) -> Path:
    # Keyed on the file's modification time and size too: an edited URDF is pruned again.
    source = Path(path)
    data = source.read_bytes()
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise URDFError(f"{path}: not valid XML ({e})") from e
    links = {link.get("name"): link for link in root.findall("link")}
    joints = root.findall("joint")
    dropped: set[str] = set()
    while True:  # a frame link's parent may become a frame link once its child is gone
        kept = [j for j in joints if _end(j, "child") not in dropped]
        parents = {_end(j, "parent") for j in kept}
        frames = {
            child
            for j in kept
            if j.get("type") == "fixed"
            and (child := _end(j, "child")) in links
            and child not in parents
            and _is_frame_link(links[child])
        }
        if not frames:
            break
        dropped |= frames
    # Visuals go only when they name mesh files (which PyBullet would read for nothing); the
    # frame links were chosen on the original (a link with a visual is no frame link), so the
    # links PyBullet gets never depend on ``visual``.
    strip_visuals = not visual and any(link.find("visual/geometry/mesh") is not None for link in links.values())
    kinds = ("collision", "visual") if visual else ("collision",)
    meshes = mesh_references(root, source, kinds)
    check_mesh_files(meshes, source)
    # A name PyBullet finds right next to the original (or an absolute one) needs no rewriting.
    resolved = any(m.path not in (source.parent / m.filename, Path(m.filename)) for m in meshes)
    if not (dropped or strip_visuals or resolved):
        return source
    for j in joints:
        if _end(j, "child") in dropped:
            root.remove(j)
    for name in dropped:
        root.remove(links[name])
    if strip_visuals:
        for link in links.values():
            for element in link.findall("visual"):
                link.remove(element)
    for element in root.iter():  # meshes and textures resolve against the original's folder
        name = element.get("filename")
        if not name:
            continue
        if element.tag == "mesh":  # the resolver PyBullet's own lookup follows (package:// too)
            found, _ = resolve_mesh_filename(name, source)
            if found is not None:
                element.set("filename", str(found))
        elif "://" not in name and not os.path.isabs(name):
            element.set("filename", str(source.parent / name))
    tag = b"\0no-visuals" if strip_visuals else b""
    key = hashlib.sha256(data + b"\0" + str(source.parent).encode() + tag).hexdigest()[:20]
    folder = cache_root() / "bullet"
    target = folder / f"{source.stem}-{key}.urdf"
    if not target.is_file():
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}-", dir=folder)
        except OSError as exc:
            raise cache_folder_error(folder, f"PyBullet's copy of {source}", exc) from None
        with os.fdopen(fd, "wb") as f:
            f.write(ET.tostring(root, encoding="utf-8", xml_declaration=True))
        os.replace(tmp, target)  # atomic: parallel workers never see half a file
    return target


def load_flags(self_collision: bool = True, visual: bool = True) -> int:
    """The ``pybullet.loadURDF`` flags :class:`HandBody` loads a hand with (benchmarks that
    drive PyBullet directly use them to load it the same way)."""
    flags = pybullet.URDF_USE_INERTIA_FROM_FILE
    if self_collision:
        flags |= pybullet.URDF_USE_SELF_COLLISION | pybullet.URDF_USE_SELF_COLLISION_EXCLUDE_PARENT
    if not visual:
        flags |= pybullet.URDF_IGNORE_VISUAL_SHAPES
    return flags


def _on_one_chain(parent: dict[int, int], a: int, b: int) -> bool:
    """Whether link ``a`` is an ancestor of link ``b`` or the reverse (PyBullet link indices,
    -1 the root; ``parent``: link -> its parent link)."""
    def ancestors(link: int) -> set[int]:
        seen = set()
        while link in parent and link not in seen:
            seen.add(link)
            link = parent[link]
        return seen | {link}

    return a in ancestors(b) or b in ancestors(a)


class HandBody(_Body):
    """A hand loaded from a URDF with its root (the palm) fixed at a wrist pose.

    The finger joints are driven by PyBullet ``POSITION_CONTROL`` motors whose force is capped
    at each joint's URDF ``effort`` limit (or a lower cap, :meth:`set_effort`), so a finger
    closing on an object squeezes it with at most that effort and never teleports into it. The
    motors hold their targets until new ones are set, also across :meth:`World.step` calls.

    Gains: PyBullet's position motor drives the joint velocity towards
    ``position_gain * (q_target - q) / dt + velocity_gain * (0 - qd)`` within the effort limit
    (defaults ``Protocol.position_gain = 0.1``, ``Protocol.velocity_gain = 1.0``: a free
    finger closes about 10 % of its remaining error per step). ``position_gain`` is the gain at
    the protocol's ``timestep_s``; at another step (the grasp phase's
    ``Protocol.grasp_timestep_s``) the gain is scaled by the ratio of the steps, so that the
    servo demands the same velocity, ``position_gain / timestep_s`` (25 per s) times the error,
    whatever the step.

    The wrist is fixed (``useFixedBase``) by default. With ``free_wrist=True`` the root link is a
    free body held at a wrist pose by a PyBullet fixed constraint (``JOINT_FIXED`` between the
    root link and the world) whose force is capped at ``wrist_max_force``; :meth:`set_wrist_target`
    moves the constraint's world frame, and the constraint drags the hand there within that
    force. With gravity on, :meth:`compensate_gravity` cancels the hand's weight.

    Link names map to PyBullet link indices, with the URDF root link as index -1. Frame links
    (massless leaf links on fixed joints without shapes, e.g. fingertip frames) are not loaded
    into PyBullet: they have no dynamics and would slow every step (the kinematics core keeps
    them). Movable
    joints (revolute and prismatic) are listed in URDF document order, the order of ``q``.
    Inertias come from the URDF (``URDF_USE_INERTIA_FROM_FILE``).

    **Links overlapping at rest.** With self-collision on, PyBullet collides every pair of links
    that are not parent and child, e.g. the palm and a proximal phalanx mounted on a knuckle
    link. Imported hands (CAD meshes turned into convex hulls, about 1 mm of collision margin)
    often have such a pair already overlapping at the rest pose; left colliding, the contact
    pushes the links apart and jams the joint between them silently (a finger that never
    flexes). So, at the rest pose (``rest_q``), every such pair on one kinematic chain (a link
    and one of its ancestors: the joint housings of a finger, a phalanx against the palm) that
    PyBullet reports overlapping (``getClosestPoints`` between the hand and itself, signed
    distance < 0, however shallow: 0.5 mm of a phalanx into the palm behind its knuckle jams the
    knuckle) gets its collision turned off (``setCollisionFilterPair``), the usual practice for
    imported hands, and is listed in :attr:`disabled_collision_pairs`. Links of different
    fingers keep colliding even when they touch at rest (two mesh hulls 2 mm apart touch through
    their ~1 mm margins; such a touch does not jam, and releasing it would let the two fingers
    pass through each other), and so does every pair apart at rest.

    **Mimic joints** (a URDF ``<mimic joint="master" multiplier="m" offset="o"/>``, which
    PyBullet ignores): ``q``, :attr:`joint_names`, :meth:`set_targets` and :meth:`joint_state`
    cover the independent joints only (:attr:`dof` counts them), as in
    :class:`~handsim.kinematics.KinematicTree`. Each mimic joint (:attr:`mimic_joint_names`;
    a chain of tags resolved to the independent joint at its end) has its own position motor,
    capped at its own URDF effort, driven to ``m * q_target[master] + o`` clipped to its own
    limits, with the same gains; :meth:`movable_joint_state` reads every movable joint. A free
    mimic joint tracks its master closely; one blocked by an object (or whose master is
    blocked) is where the contact leaves it, like a compliant coupling, not a rigid linkage.

    Args:
        world: The world to load into.
        urdf_path: Path of the URDF file.
        xyz: Wrist (root link frame) position, (3,) [m].
        quat_wxyz: Wrist orientation, (4,) (w, x, y, z).
        self_collision: Enable self-collision between links that are not parent and child
            (``URDF_USE_SELF_COLLISION | URDF_USE_SELF_COLLISION_EXCLUDE_PARENT``).
        lateral_friction: Lateral friction given to every link (default
            ``world.protocol.hand_lateral_friction``; PyBullet multiplies it with the object's).
        keep_urdf_friction: Keep the URDF's per-link friction instead.
        position_gain: Motor Kp (default ``world.protocol.position_gain``).
        velocity_gain: Motor Kd (default ``world.protocol.velocity_gain``).
        visual: Load the URDF's visual shapes (needed only for rendering; without them loading
            takes about half the time and the physics is the same).
        free_wrist: A free root link driven by a fixed constraint instead of a fixed base.
        wrist_max_force: Force cap of the wrist constraint [N] (only with ``free_wrist``).
        rest_q: The hand's rest pose, (dof,) [rad or m], at which links overlapping each other
            are found (default: zeros clipped to the limits). The body starts at zeros clipped
            to the limits either way.

    Attributes:
        disabled_collision_pairs: ``(link a, link b, signed distance [m])`` of each pair of links
            whose collision was turned off because they overlapped at ``rest_q`` (deepest point;
            link a first in PyBullet's link order); empty for a hand whose links are clear of
            each other at rest (the shipped ``default_hand``) and without self-collision.

    Raises:
        URDFError: Missing/unloadable file, a joint type other than fixed/revolute/prismatic,
            or a movable joint without a positive effort limit.
    """

    _kind = "hand"

    def __init__(
        self,
        world: World,
        urdf_path: str | os.PathLike[str],
        xyz: ArrayLike = (0.0, 0.0, 0.0),
        quat_wxyz: ArrayLike = (1.0, 0.0, 0.0, 0.0),
        *,
        self_collision: bool = True,
        lateral_friction: float | None = None,
        keep_urdf_friction: bool = False,
        position_gain: float | None = None,
        velocity_gain: float | None = None,
        visual: bool = True,
        free_wrist: bool = False,
        wrist_max_force: float = 500.0,
        rest_q: ArrayLike | None = None,
    ) -> None:
        path = Path(urdf_path)
        if not path.is_file():
            raise URDFError(f"hand URDF not found: {path}")
        order, mimic = _document_joints(path)  # mimic joint -> (independent master, multiplier, offset)
        pos, orn = _pose_args(xyz, quat_wxyz)
        flags = load_flags(self_collision=self_collision, visual=visual)
        c = world.client
        physics_path = _physics_urdf(path, visual=visual)
        try:
            body = c.loadURDF(str(physics_path), pos, orn, useFixedBase=not free_wrist, flags=flags)
        except pybullet.error as e:
            # PyBullet prints its reason to stdout and raises only "Cannot load URDF file.":
            # name what it loaded, and the usual causes the mesh check above does not cover.
            copy = "" if physics_path == path else f" (its physics copy {physics_path})"
            raise URDFError(f"{path}: PyBullet could not load it{copy} ({e}); PyBullet's own message, printed "
                            "above, names the line of the file it loaded") from e
        super().__init__(world, body)
        self.urdf_path = path
        p = world.protocol
        self.position_gain = float(p.position_gain if position_gain is None else position_gain)
        self.velocity_gain = float(p.velocity_gain if velocity_gain is None else velocity_gain)

        self.root_link: str = c.getBodyInfo(body)[0].decode()
        link_index = {self.root_link: -1}
        joint_index: dict[str, int] = {}
        movable: list[tuple[str, int, float, float, float]] = []
        for j in range(c.getNumJoints(body)):
            info = c.getJointInfo(body, j)
            jname, jtype, lower, upper, effort = info[1].decode(), info[2], info[8], info[9], info[10]
            link_index[info[12].decode()] = j
            joint_index[jname] = j
            if jtype == pybullet.JOINT_FIXED:
                continue
            if jtype not in _MOVABLE:
                self.remove()
                raise URDFError(f"{path}: joint {jname!r} has a type handsim cannot drive; valid: fixed, revolute, prismatic")
            if not effort > 0:
                self.remove()
                raise URDFError(
                    f"{path}: joint {jname!r}: expected <limit effort=...> > 0 (the motor force cap, "
                    f"N m or N), got {effort}"
                )
            if lower > upper:  # PyBullet marks continuous joints with lower > upper
                lower, upper = -np.inf, np.inf
            movable.append((jname, j, lower, upper, effort))
        rank = {name: i for i, name in enumerate(order)}
        movable.sort(key=lambda m: rank.get(m[0], len(rank)))
        # Mimic joints get their own motor, not a JOINT_GEAR constraint to the master: a motor
        # keeps each joint's URDF effort cap (a gear constraint's maxForce is one number for the
        # pair and the master's motor would then have to move both links), and it is the same
        # servo, gains and step scaling as every other joint. Measured on the default hand with
        # its DIP coupled to its PIP (0.7, +0.05 rad): a free finger keeps the mimic joint within
        # 1.4e-5 rad of m * q_master + o while moving, 3e-6 rad settled (tests/test_mimic.py).
        # In contact the mimic joint follows its master's target, not its angle, so a blocked
        # master and a free mimic joint (or the reverse) part: up to 0.26 rad in the grasp phase
        # of 5 types x 2 seeds, 0.11 rad after the disturbances (7/10 trials held). A prototype
        # gear constraint (gearRatio -1/m, relativePositionTarget -o/m, maxForce 10x the effort)
        # parted more, 0.39-1.5 rad, with the grasp phase's 20 solver iterations (3/10 held).
        # The episode therefore labels contacts with the measured angles of every joint.
        mimics = [m for m in movable if m[0] in mimic]
        self.movable_joint_names: tuple[str, ...] = tuple(m[0] for m in movable)
        self._movable_ids = [m[1] for m in movable]
        movable = [m for m in movable if m[0] not in mimic]

        self.link_index: dict[str, int] = link_index
        self.link_names: tuple[str, ...] = tuple(sorted(link_index, key=link_index.__getitem__))
        self._link_name_by_index = {i: n for n, i in link_index.items()}
        self.joint_index: dict[str, int] = joint_index
        self.joint_names: tuple[str, ...] = tuple(m[0] for m in movable)
        self._joint_ids = [m[1] for m in movable]
        self.lower: NDArray[np.float64] = np.array([m[2] for m in movable], dtype=np.float64)
        self.upper: NDArray[np.float64] = np.array([m[3] for m in movable], dtype=np.float64)
        self.urdf_effort: NDArray[np.float64] = np.array([m[4] for m in movable], dtype=np.float64)
        self.effort: NDArray[np.float64] = self.urdf_effort.copy()
        self._targets = np.zeros(len(movable))
        self.mimic_joint_names: tuple[str, ...] = tuple(m[0] for m in mimics)
        self._mimic_ids = [m[1] for m in mimics]
        self._mimic_col = np.array([self.joint_names.index(mimic[m[0]][0]) for m in mimics], dtype=np.intp)
        self._mimic_mult = np.array([mimic[m[0]][1] for m in mimics], dtype=np.float64)
        self._mimic_off = np.array([mimic[m[0]][2] for m in mimics], dtype=np.float64)
        self._mimic_lower = np.array([m[2] for m in mimics], dtype=np.float64)
        self._mimic_upper = np.array([m[3] for m in mimics], dtype=np.float64)
        self._mimic_urdf_effort = np.array([m[4] for m in mimics], dtype=np.float64)
        self._mimic_effort = self._mimic_urdf_effort.copy()

        # Soft finger pads resist twisting about the contact normal (see Protocol). PyBullet
        # combines it as hand_spinning * object_friction (+ object_spinning * hand_friction).
        dynamics: dict[str, float] = {"spinningFriction": p.hand_torsional_friction_m}
        if not keep_urdf_friction:
            dynamics["lateralFriction"] = p.hand_lateral_friction if lateral_friction is None else float(lateral_friction)
        for link in self.link_names:
            c.changeDynamics(body, link_index[link], **dynamics)
        self.free_wrist = bool(free_wrist)
        self.wrist_constraint: int | None = None
        self.wrist_max_force = float(wrist_max_force)
        # The root link's inertial frame in its link frame: PyBullet places the base (and the
        # parent frame of a constraint on it) at its centre of mass, not at the link frame.
        self._inertial = tuple(c.getDynamicsInfo(body, -1)[3:5])
        if self.free_wrist:
            if not (np.isfinite(self.wrist_max_force) and self.wrist_max_force > 0):
                self.remove()
                raise ConfigurationError(f"HandBody(wrist_max_force=...): expected a finite number > 0 [N], got {wrist_max_force!r}")
            inv_pos, inv_orn = c.invertTransform(*self._inertial)
            self.wrist_constraint = c.createConstraint(
                body, -1, -1, -1, pybullet.JOINT_FIXED, [0.0, 0.0, 0.0], inv_pos, pos,
                parentFrameOrientation=inv_orn, childFrameOrientation=orn,
            )
            c.changeConstraint(self.wrist_constraint, maxForce=self.wrist_max_force)
        self._mass: float | None = None
        start = np.clip(np.zeros(self.dof), self.lower, self.upper)
        self.reset_joints(start)
        self.disabled_collision_pairs: tuple[tuple[str, str, float], ...] = ()
        if self_collision:
            self.disabled_collision_pairs = self._disable_rest_overlaps(start, rest_q)

    def _disable_rest_overlaps(self, start: NDArray[np.float64],
                               rest_q: ArrayLike | None) -> tuple[tuple[str, str, float], ...]:
        """Turn off collision between the links that overlap at ``rest_q`` (see the class
        docstring) and return them; the joints are left at ``start``."""
        c = self._c()
        body = self.body_id
        rest = start if rest_q is None else self._check_q(rest_q, "HandBody(rest_q=...)")
        moved = not np.array_equal(rest, start)
        if moved:
            self.reset_joints(rest)
        parent = {j: c.getJointInfo(body, j)[16] for j in range(c.getNumJoints(body))}
        deepest: dict[tuple[int, int], float] = {}
        for row in c.getClosestPoints(bodyA=body, bodyB=body, distance=0.0):
            a, b, dist = min(row[3], row[4]), max(row[3], row[4]), row[8]
            # PyBullet never collides a link with itself or with its parent
            # (URDF_USE_SELF_COLLISION_EXCLUDE_PARENT): those pairs are not jammed by contact.
            if a == b or parent.get(b) == a or not dist < 0.0 or not _on_one_chain(parent, a, b):
                continue
            deepest[(a, b)] = min(dist, deepest.get((a, b), 0.0))
        for a, b in deepest:
            c.setCollisionFilterPair(body, body, a, b, enableCollision=0)
        if moved:
            self.reset_joints(start)
        return tuple((self._link_name_by_index[a], self._link_name_by_index[b], float(d))
                     for (a, b), d in sorted(deepest.items()))

    # -- names -----------------------------------------------------------------------------
    @property
    def dof(self) -> int:
        """Number of independent movable joints (the length of ``q``; mimic joints excluded)."""
        return len(self.joint_names)

    def link_id(self, name: str) -> int:
        """PyBullet link index of a link name (-1 for the root link)."""
        try:
            return self.link_index[name]
        except KeyError:
            raise UnknownNameError(suggest(name, self.link_index, "link")) from None

    def q_index(self, joint: str) -> int:
        """Position of a movable joint in ``q`` (see :attr:`joint_names`)."""
        try:
            return self.joint_names.index(joint)
        except ValueError:
            raise UnknownNameError(suggest(joint, self.joint_names, "movable joint")) from None

    def link_name(self, index: int) -> str:
        """URDF link name of a PyBullet link index (-1 is the root link)."""
        try:
            return self._link_name_by_index[int(index)]
        except KeyError:
            raise UnknownNameError(
                f"unknown link index {index}; valid: -1..{len(self.link_names) - 2}"
            ) from None

    # -- wrist -----------------------------------------------------------------------------
    @property
    def mass(self) -> float:
        """Total mass of the hand, every link [kg]."""
        if self._mass is None:
            c = self._c()
            self._mass = float(sum(c.getDynamicsInfo(self.body_id, self.link_index[n])[0] for n in self.link_names))
        return self._mass

    def set_wrist_pose(self, xyz: ArrayLike, quat_wxyz: ArrayLike) -> None:
        """Move the root link (the wrist) to a new pose (a teleport: set up, not mid-grasp).

        With a free wrist the constraint's target moves there too and the base is put at rest.
        """
        pos, orn = _pose_args(xyz, quat_wxyz)
        c = self._c()
        # resetBasePositionAndOrientation places the base's centre of mass, not its link frame.
        com_pos, com_orn = c.multiplyTransforms(pos, orn, *self._inertial)
        c.resetBasePositionAndOrientation(self.body_id, com_pos, com_orn)
        if self.free_wrist:
            c.resetBaseVelocity(self.body_id, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0])
            self.set_wrist_target(xyz, quat_wxyz)

    def set_wrist_target(self, xyz: ArrayLike, quat_wxyz: ArrayLike) -> None:
        """Drive the free wrist towards a pose (the constraint pulls with at most ``wrist_max_force``).

        Args:
            xyz: Root-link frame position, (3,) [m], world frame.
            quat_wxyz: Root-link orientation, (4,) (w, x, y, z).

        Raises:
            ConfigurationError: The hand has a fixed wrist, or a bad pose.
        """
        if not self.free_wrist:
            raise ConfigurationError("set_wrist_target: this hand has a fixed wrist; build it with free_wrist=True")
        pos, orn = _pose_args(xyz, quat_wxyz)
        self._c().changeConstraint(
            self.wrist_constraint, jointChildPivot=pos, jointChildFrameOrientation=orn, maxForce=self.wrist_max_force
        )

    def wrist_pose(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """World pose of the root link frame: ``(xyz (3,) [m], quat_wxyz (4,))``."""
        c = self._c()
        com_pos, com_orn = c.getBasePositionAndOrientation(self.body_id)
        if not all(np.isfinite(com_pos + com_orn)):
            raise SimulationError(f"physics blow-up: the wrist's pose became non-finite {com_pos + com_orn}")
        inv_pos, inv_orn = c.invertTransform(*self._inertial)
        root_pos, root_orn = c.multiplyTransforms(com_pos, com_orn, inv_pos, inv_orn)
        return np.array(root_pos, dtype=np.float64), quat_xyzw_to_wxyz(root_orn)

    def compensate_gravity(self, enabled: bool) -> None:
        """Cancel the hand's weight with an upward force at the root's centre of mass on every
        step (a free wrist only; the constraint takes the remaining moment).

        Args:
            enabled: True to apply ``mass * protocol.gravity`` [N] along +z, False to stop.
        """
        self._c()
        if enabled and self.free_wrist:
            self.world.set_external_force(self.body_id, [0.0, 0.0, self.mass * self.world.protocol.gravity])
        else:
            self.world.set_external_force(self.body_id, None)

    # -- joints ----------------------------------------------------------------------------
    def _check_q(self, q: ArrayLike, what: str) -> NDArray[np.float64]:
        arr = np.asarray(q, dtype=np.float64)
        if arr.shape != (self.dof,) or not np.isfinite(arr).all():
            raise ConfigurationError(
                f"{what}: expected {self.dof} finite joint values for {', '.join(self.joint_names)}, got shape "
                f"{arr.shape}: {arr}"
            )
        bad = np.flatnonzero((arr < self.lower - _LIMIT_SLACK) | (arr > self.upper + _LIMIT_SLACK))
        if bad.size:
            i = int(bad[0])
            raise ConfigurationError(
                f"{what}: joint {self.joint_names[i]!r} = {arr[i]:.6g} is outside its URDF limits "
                f"[{self.lower[i]:.6g}, {self.upper[i]:.6g}]"
            )
        return np.clip(arr, self.lower, self.upper)

    def reset_joints(self, q: ArrayLike) -> None:
        """Teleport the joints to ``q`` at rest and make ``q`` the motor targets.

        Args:
            q: Joint values, (dof,) [rad or m], within the URDF limits.
        """
        q = self._check_q(q, "reset_joints(q)")
        c = self._c()
        for j, v in zip(self._joint_ids + self._mimic_ids, np.concatenate([q, self.mimic_targets(q)])):
            c.resetJointState(self.body_id, j, float(v), 0.0)
        self.set_targets(q)

    def mimic_targets(self, q: ArrayLike) -> NDArray[np.float64]:
        """The mimic joints' targets for independent targets ``q``: ``m * q[master] + o``
        clipped to each mimic joint's own limits, (len(mimic_joint_names),) [rad or m]."""
        q = np.asarray(q, dtype=np.float64)
        return np.clip(self._mimic_mult * q[self._mimic_col] + self._mimic_off, self._mimic_lower, self._mimic_upper)

    def set_effort(self, effort: ArrayLike | None = None) -> None:
        """Cap the motors at ``effort`` from the next :meth:`set_targets` on (a gentler grip).

        Args:
            effort: (dof,) caps [N m or N], each in (0, the joint's URDF effort]; ``None``
                restores the URDF efforts. A mimic joint's own motor is capped at the same
                fraction of its URDF effort as its master's (a capped finger is capped whole).

        Raises:
            ConfigurationError: Wrong shape, or a cap that is not in (0, URDF effort].
        """
        if effort is None:
            self.effort = self.urdf_effort.copy()
            self._mimic_effort = self._mimic_urdf_effort.copy()
            return
        arr = np.asarray(effort, dtype=np.float64)
        if arr.shape != (self.dof,):
            raise ConfigurationError(f"set_effort(effort): expected shape ({self.dof},), got {arr.shape}")
        bad = ~((arr > 0.0) & (arr <= self.urdf_effort))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ConfigurationError(
                f"set_effort(effort): joint {self.joint_names[i]!r} = {arr[i]:.6g} is not in (0, "
                f"{self.urdf_effort[i]:.6g}] (a cap may lower a motor's URDF effort, never raise it)"
            )
        self.effort = arr.copy()
        self._mimic_effort = self._mimic_urdf_effort * (arr / self.urdf_effort)[self._mimic_col]

    def set_targets(self, q: ArrayLike) -> None:
        """Drive the joints towards ``q`` with force capped at :attr:`effort` (the URDF effort
        limits unless :meth:`set_effort` lowered them).

        Args:
            q: Joint targets, (dof,) [rad or m], within the URDF limits.
        """
        q = self._check_q(q, "set_targets(q)")
        gain = self.position_gain * self.world.timestep_s / self.world.protocol.timestep_s
        n = self.dof + len(self._mimic_ids)
        self._c().setJointMotorControlArray(
            self.body_id,
            self._joint_ids + self._mimic_ids,
            pybullet.POSITION_CONTROL,
            targetPositions=q.tolist() + self.mimic_targets(q).tolist(),
            targetVelocities=[0.0] * n,
            # Clipped: an effort assigned directly never exceeds the URDF's either.
            forces=np.minimum(self.effort, self.urdf_effort).tolist() + self._mimic_effort.tolist(),
            positionGains=[gain] * n,
            velocityGains=[self.velocity_gain] * n,
        )
        self._targets = q.copy()

    @property
    def targets(self) -> NDArray[np.float64]:
        """The current motor targets, (dof,) [rad or m]."""
        return self._targets.copy()

    def joint_state(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Independent joint positions and velocities, ``(q (dof,), qd (dof,))`` [rad or m, per s]."""
        return self._states(self._joint_ids)

    def movable_joint_state(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Every movable joint's position and velocity, mimic joints included, in
        :attr:`movable_joint_names` order: ``(q (N,), qd (N,))`` [rad or m, per s]."""
        return self._states(self._movable_ids)

    def _states(self, ids: list[int]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        states = self._c().getJointStates(self.body_id, ids)
        q = np.array([s[0] for s in states], dtype=np.float64)
        qd = np.array([s[1] for s in states], dtype=np.float64)
        if not (np.isfinite(q).all() and np.isfinite(qd).all()):
            # A state read back from PyBullet is never user input: a blow-up, not a bad argument.
            bad = [self._c().getJointInfo(self.body_id, i)[1].decode() for i, a, b in zip(ids, q, qd)
                   if not (np.isfinite(a) and np.isfinite(b))]
            named = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
            raise SimulationError(f"physics blow-up: joint state became non-finite ({named})")
        return q, qd

    # -- links -----------------------------------------------------------------------------
    def link_poses(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """World poses of every link frame (the URDF link frames, not the inertial frames).

        Returns:
            ``(xyz (L, 3) [m], quat_wxyz (L, 4))`` in the order of :attr:`link_names` (the
            root link first).
        """
        c = self._c()
        n = len(self.link_names)
        xyz = np.empty((n, 3))
        quat = np.empty((n, 4))
        # The root: PyBullet reports its centre of mass; remove the URDF inertial offset.
        xyz[0], quat[0] = self.wrist_pose()
        if n > 1:
            states = c.getLinkStates(self.body_id, list(range(n - 1)), computeForwardKinematics=True)
            xyz[1:] = [s[4] for s in states]
            quat[1:] = quat_xyzw_to_wxyz(np.array([s[5] for s in states]))
        return xyz, quat

    # -- contacts --------------------------------------------------------------------------
    def contacts(self, other: _Body, *, max_distance: float | None = None) -> Contacts:
        """Contacts between the hand and another body found in the last physics step.

        Args:
            other: The object (any handsim body in the same world).
            max_distance: Keep point pairs with signed distance up to this [m] (default
                ``protocol.contact_distance_m``; PyBullet also reports pairs a few mm apart).

        Returns:
            The contacts, normals pointing into ``other``.
        """
        c = self._c()
        other._c()
        limit = self.world.protocol.contact_distance_m if max_distance is None else float(max_distance)
        rows = [r for r in c.getContactPoints(bodyA=self.body_id, bodyB=other.body_id) if r[8] <= limit]
        # A fixed order (link, then position): PyBullet's order can differ between a fresh and a
        # restored world with identical states, and sums over contacts (Q1) depend on order.
        rows.sort(key=lambda r: (r[3], r[6], r[5], r[8]))
        n = len(rows)
        # PyBullet's contactNormalOnB points from B (the object) towards A (the hand): flip it.
        return Contacts(
            points=np.array([r[6] for r in rows], dtype=np.float64).reshape(n, 3),
            normals=-np.array([r[7] for r in rows], dtype=np.float64).reshape(n, 3),
            normal_forces=np.array([r[9] for r in rows], dtype=np.float64).reshape(n),
            distances=np.array([r[8] for r in rows], dtype=np.float64).reshape(n),
            link_indices=np.array([r[3] for r in rows], dtype=np.int64).reshape(n),
            link_names=tuple(self._link_name_by_index[r[3]] for r in rows),
        )

    def max_penetration(self, other: _Body) -> float:
        """Deepest hand-object overlap in the current state (no step needed) [m], 0 if none.

        Uses PyBullet's closest-point query (``getClosestPoints``), so it also sees an overlap
        created by placing the bodies, before any step has run.
        """
        c = self._c()
        other._c()
        rows = c.getClosestPoints(bodyA=self.body_id, bodyB=other.body_id, distance=0.0)
        if not rows:
            return 0.0
        return max(0.0, -min(r[8] for r in rows))

    def __repr__(self) -> str:
        return f"HandBody({self.urdf_path.name}, dof={self.dof}, id={self.body_id})"
