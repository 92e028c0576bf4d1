"""URDF checks before the physics (review R12 findings 1, 2, 9, 10, 11, 13): mesh files found the
way PyBullet finds them (package://, file://), missing meshes named up front, inertials,
limits, xacro/MJCF files given as URDF, meshes in millimetres, and the results hash over meshes.

Each case is a copy of the shipped default hand in ``tmp_path`` with one edit. Where a message
claims what PyBullet would do, or where handsim resolves a file for PyBullet, plain
``pybullet.loadURDF`` on the edited file is the independent source.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pybullet
import pytest
import trimesh

from handsim.bench.runner import hand_files_sha256
from handsim.data import DEFAULT_HAND, hand_dir
from handsim.errors import URDFError
from handsim.hand import load_hand
from handsim.sim import HandBody, World

# The default hand's index_distal capsule (visual and collision are the same capsule).
_DISTAL_CAPSULE = '<capsule radius="0.007" length="0.01143"/>'


def _copy_hand(tmp_path: Path, name: str = "hand", edit: Callable[[str], str] | None = None) -> Path:
    folder = tmp_path / name
    shutil.copytree(hand_dir(DEFAULT_HAND), folder)
    if edit is not None:
        urdf = folder / "hand.urdf"
        urdf.write_text(edit(urdf.read_text(encoding="utf-8")), encoding="utf-8")
    return folder


def _link_block(text: str, link: str) -> tuple[int, int]:
    start = text.index(f'<link name="{link}">')
    return start, text.index("</link>", start)


def _in_link(text: str, link: str, old: str, new: str, *, kind: str | None = None, count: int = 1) -> str:
    """Replace ``old`` by ``new`` inside one link (only in its ``<kind>`` elements if given)."""
    start, end = _link_block(text, link)
    block = text[start:end]
    if kind is None:
        assert old in block, (link, old)
        block = block.replace(old, new, count)
    else:
        pattern = re.compile(rf"<{kind}>.*?</{kind}>", re.DOTALL)
        hits = [m for m in pattern.finditer(block) if old in m.group(0)]
        assert hits, (link, kind, old)
        m = hits[0]
        block = block[:m.start()] + m.group(0).replace(old, new) + block[m.end():]
    return text[:start] + block + text[end:]


def _capsule_stl(path: Path, scale: float = 1.0) -> Path:
    """The index_distal capsule as an STL (trimesh: z-axis capsule, like URDF's)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mesh = trimesh.creation.capsule(height=0.01143, radius=0.007, count=[16, 16])
    mesh.apply_scale(scale)
    mesh.export(path)
    return path


def _mesh(filename: str, scale: str | None = None) -> str:
    return f'<mesh filename="{filename}"' + (f' scale="{scale}"' if scale else "") + "/>"


def _raw_load(urdf: Path, visual: bool = False) -> tuple[int, int]:
    """(client, body) of plain pybullet.loadURDF on ``urdf`` (PyBullet's own file lookup)."""
    cid = pybullet.connect(pybullet.DIRECT)
    flags = pybullet.URDF_USE_INERTIA_FROM_FILE | (0 if visual else pybullet.URDF_IGNORE_VISUAL_SHAPES)
    try:
        return cid, pybullet.loadURDF(str(urdf), useFixedBase=True, flags=flags, physicsClientId=cid)
    except pybullet.error:
        pybullet.disconnect(cid)
        raise


def _link_index(cid: int, body: int, link: str) -> int:
    for j in range(pybullet.getNumJoints(body, physicsClientId=cid)):
        if pybullet.getJointInfo(body, j, physicsClientId=cid)[12].decode() == link:
            return j
    raise KeyError(link)


# ---------------------------------------------------------------------------- finding 1: mesh files
def test_package_uri_collision_mesh_resolves_like_pybullet_and_matches_the_relative_one(tmp_path: Path) -> None:
    # A ROS-style layout: the URDF in my_hand_description/urdf/, the mesh named through the
    # package, found in the folder above the package (an ancestor of the URDF's folder).
    rel = _copy_hand(tmp_path, "rel", lambda t: _in_link(t, "index_distal", _DISTAL_CAPSULE,
                                                         _mesh("meshes/distal.stl"), kind="collision"))
    _capsule_stl(rel / "meshes" / "distal.stl")
    pkg = _copy_hand(tmp_path, "pkg")
    desc = pkg / "my_hand_description"
    _capsule_stl(desc / "meshes" / "distal.stl")
    (desc / "urdf").mkdir()
    urdf_text = (pkg / "hand.urdf").read_text(encoding="utf-8")
    (desc / "urdf" / "hand.urdf").write_text(_in_link(
        urdf_text, "index_distal", _DISTAL_CAPSULE, _mesh("package://my_hand_description/meshes/distal.stl"),
        kind="collision"), encoding="utf-8")
    (pkg / "hand.urdf").unlink()
    meta = json.loads((pkg / "hand.json").read_text())
    meta["urdf"] = "my_hand_description/urdf/hand.urdf"
    (pkg / "hand.json").write_text(json.dumps(meta))

    hand_pkg, hand_rel = load_hand(pkg), load_hand(rel)
    boxes = {}
    for name, hand in (("pkg", hand_pkg), ("rel", hand_rel)):
        for visual in (False, True):
            with World() as world:
                body = HandBody(world, hand.urdf_path, visual=visual)
                link = body.link_id("index_distal")
                shape = world.client.getCollisionShapeData(body.body_id, link)[0]
                assert shape[2] == pybullet.GEOM_MESH
                boxes[name, visual] = (Path(shape[4].decode()), np.array(world.client.getAABB(body.body_id, link)))
    assert boxes["pkg", False][0] == desc / "meshes" / "distal.stl"
    assert boxes["rel", False][0] == rel / "meshes" / "distal.stl"
    for visual in (False, True):
        np.testing.assert_allclose(boxes["pkg", visual][1], boxes["rel", visual][1], atol=1e-9)
    # PyBullet's own lookup on the original file finds the same mesh (the same box).
    cid, body = _raw_load(hand_pkg.urdf_path)
    try:
        raw = np.array(pybullet.getAABB(body, _link_index(cid, body, "index_distal"), physicsClientId=cid))
    finally:
        pybullet.disconnect(cid)
    np.testing.assert_allclose(raw, boxes["pkg", False][1], atol=1e-9)


def test_package_uri_visual_mesh_on_a_hand_with_fingertip_frames_loads(tmp_path: Path) -> None:
    # R12's vis_pkg: the fingertip frames make handsim load a copy in its cache, where a
    # package:// name used to resolve against the cache folder.
    folder = _copy_hand(tmp_path, edit=lambda t: _in_link(
        t, "index_distal", _DISTAL_CAPSULE, _mesh("package://my_hand_description/meshes/distal.stl"), kind="visual"))
    mesh = _capsule_stl(folder / "my_hand_description" / "meshes" / "distal.stl")
    hand = load_hand(folder)
    cid, _ = _raw_load(hand.urdf_path, visual=True)  # PyBullet loads the original as is
    pybullet.disconnect(cid)
    for visual in (False, True):
        with World() as world:
            body = HandBody(world, hand.urdf_path, visual=visual)
            assert "index_tip" not in body.link_names  # the frame links are still left out
            files = {row[4].decode() for row in world.client.getVisualShapeData(body.body_id)}
            assert (str(mesh) in files) == visual


def test_file_uri_mesh_loads(tmp_path: Path) -> None:
    folder = tmp_path / "hand"
    mesh = _capsule_stl(tmp_path / "elsewhere" / "distal.stl")
    _copy_hand(tmp_path, edit=lambda t: _in_link(t, "index_distal", _DISTAL_CAPSULE,
                                                 _mesh(f"file://{mesh}"), kind="collision"))
    hand = load_hand(folder)
    with World() as world:
        body = HandBody(world, hand.urdf_path, visual=False)
        shape = world.client.getCollisionShapeData(body.body_id, body.link_id("index_distal"))[0]
        assert Path(shape[4].decode()) == mesh


@pytest.mark.parametrize("kind", ["collision", "visual"])
def test_a_missing_mesh_is_named_before_any_physics(tmp_path: Path, kind: str) -> None:
    folder = _copy_hand(tmp_path, edit=lambda t: _in_link(t, "index_distal", _DISTAL_CAPSULE,
                                                          _mesh("meshes/nope.stl"), kind=kind))
    urdf = folder / "hand.urdf"
    with pytest.raises(pybullet.error):  # PyBullet refuses it, visual or not (the claim in the message)
        _raw_load(urdf, visual=False)
    with pytest.raises(URDFError) as info:
        load_hand(folder)
    msg = str(info.value)
    for part in (str(urdf), "'index_distal'", f"<{kind}>", "'meshes/nope.stl'", "not found",
                 str(folder / "meshes" / "nope.stl")):
        assert part in msg
    # HandBody without load_hand names it too (not "PyBullet could not load it").
    if kind == "collision":
        with World() as world, pytest.raises(URDFError, match=r"'index_distal' <collision> mesh 'meshes/nope.stl'"):
            HandBody(world, urdf, visual=False)


def test_a_mesh_type_pybullet_cannot_read_is_refused(tmp_path: Path) -> None:
    folder = _copy_hand(tmp_path, edit=lambda t: _in_link(t, "index_distal", _DISTAL_CAPSULE,
                                                          _mesh("meshes/distal.ply"), kind="collision"))
    (folder / "meshes").mkdir()
    trimesh.creation.box(extents=[0.01, 0.01, 0.01]).export(folder / "meshes" / "distal.ply")
    with pytest.raises(URDFError, match=r"'index_distal' <collision> mesh 'meshes/distal.ply'.*\.stl, \.obj, \.dae"):
        load_hand(folder)


# ---------------------------------------------------------------------------- finding 9: meshes in mm
def test_a_collision_mesh_in_millimetres_is_refused_and_scale_fixes_it(tmp_path: Path) -> None:
    def with_mesh(scale: str | None) -> Callable[[str], str]:
        return lambda t: _in_link(t, "index_distal", _DISTAL_CAPSULE, _mesh("meshes/mm.stl", scale), kind="collision")

    mm = _copy_hand(tmp_path, "mm", with_mesh(None))
    _capsule_stl(mm / "meshes" / "mm.stl", scale=1000.0)
    with pytest.raises(URDFError) as info:
        load_hand(mm)
    assert "'index_distal'" in str(info.value) and 'scale="0.001 0.001 0.001"' in str(info.value)
    scaled = _copy_hand(tmp_path, "scaled", with_mesh("0.001 0.001 0.001"))
    _capsule_stl(scaled / "meshes" / "mm.stl", scale=1000.0)
    load_hand(scaled)


# ---------------------------------------------------------------------------- finding 11: results hash
def test_hand_files_sha256_covers_the_mesh_files(tmp_path: Path) -> None:
    default = load_hand(DEFAULT_HAND)
    digests = hand_files_sha256(default)
    # A hand of primitives hashes as before the meshes were covered (its old results resume).
    assert set(digests) == {"urdf", "hand_json", "grasps_json"}
    assert digests["urdf"] == hashlib.sha256(default.urdf_path.read_bytes()).hexdigest()

    folder = _copy_hand(tmp_path, edit=lambda t: _in_link(
        t, "index_distal", _DISTAL_CAPSULE, _mesh("package://desc/meshes/distal.stl"), kind="collision"))
    mesh = _capsule_stl(folder / "desc" / "meshes" / "distal.stl")
    first = hand_files_sha256(load_hand(folder))
    assert first["meshes"] is not None
    _capsule_stl(mesh, scale=1.5)  # R12: a re-exported mesh, same URDF
    second = hand_files_sha256(load_hand(folder))
    assert second["meshes"] != first["meshes"]
    assert {k: v for k, v in second.items() if k != "meshes"} == {k: v for k, v in first.items() if k != "meshes"}


# ---------------------------------------------------------------------------- finding 2: inertials
_IM = r'(<link name="index_middle">\s*)<inertial>.*?</inertial>'
_IM_INERTIA = r'(<link name="index_middle">\s*<inertial>.*?)<inertia[^>]*/>'
_IM_MASS = r'(<link name="index_middle">\s*<inertial>.*?)<mass value="[^"]*"/>'


def _sub(pattern: str, repl: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        out, n = re.subn(pattern, repl, text, count=1, flags=re.DOTALL)
        assert n == 1
        return out
    return edit


def _inertia(ixx: float, iyy: float, izz: float, ixy: float = 0.0) -> str:
    return rf'\1<inertia ixx="{ixx}" ixy="{ixy}" ixz="0" iyy="{iyy}" iyz="0" izz="{izz}"/>'


@pytest.mark.parametrize(("case", "edit", "expect", "pybullet_mass", "pybullet_inertia"), [
    ("missing", _sub(_IM, r"\1"), r"no <inertial>.*1 kg", 1.0, (1.0, 1.0, 1.0)),
    ("negative mass", _sub(_IM_MASS, r'\1<mass value="-0.01"/>'), r"mass > 0 .*got -0.01", None, None),
    ("zero mass", _sub(_IM_MASS, r'\1<mass value="0"/>'), r"mass > 0 .*got 0", None, None),
    ("not positive definite", _sub(_IM_INERTIA, _inertia(1e-7, 1.217e-6, 1.217e-6, ixy=5e-6)),
     r"positive-definite.*ixy=5e-06.*zero", None, (0.0, 0.0, 0.0)),
    ("negative moment", _sub(_IM_INERTIA, _inertia(-2.665e-7, 1.217e-6, 1.217e-6)),
     r"positive-definite.*ixx=-2.665e-07", None, (0.0, 0.0, 0.0)),
    ("triangle", _sub(_IM_INERTIA, _inertia(1e-9, 1e-9, 1.217e-5)), r"triangle inequality.*izz=1.217e-05.*zero",
     None, (0.0, 0.0, 0.0)),
    # CAD rounding: broken by 1e-12 only; the message shows digits that make it visible, and by how much
    ("triangle by a hair", _sub(_IM_INERTIA, _inertia(1e-6, 2e-6, 3.000001e-6)),
     r"principal moments 1e-06, 2e-06, 3.000001e-06 break the triangle inequality by 1e-12.*by 1e-12",
     None, (0.0, 0.0, 0.0)),
    # a zero moment: refused (singular), but PyBullet keeps it, and the message says so
    ("zero moment", _sub(_IM_INERTIA, _inertia(0, 5.35e-6, 5.35e-6)), r"a zero moment.*PyBullet keeps",
     None, (0.0, 5.35e-6, 5.35e-6)),
])
def test_bad_inertials_are_refused_naming_the_link(tmp_path: Path, case: str, edit: Callable[[str], str],
                                                   expect: str, pybullet_mass: float | None,
                                                   pybullet_inertia: tuple[float, float, float] | None) -> None:
    folder = _copy_hand(tmp_path, edit=edit)
    with pytest.raises(URDFError, match=r"link 'index_middle'.*" + expect):
        load_hand(folder)
    if pybullet_mass is None and pybullet_inertia is None:
        return
    # What the message says PyBullet would do, checked on PyBullet.
    cid, body = _raw_load(folder / "hand.urdf")
    try:
        info = pybullet.getDynamicsInfo(body, _link_index(cid, body, "index_middle"), physicsClientId=cid)
    finally:
        pybullet.disconnect(cid)
    if pybullet_mass is not None:
        assert info[0] == pytest.approx(pybullet_mass)
    np.testing.assert_allclose(info[2], pybullet_inertia, atol=1e-12)


def test_frame_links_need_no_inertial_and_a_valid_edge_inertia_passes(tmp_path: Path) -> None:
    # The tip frames without <inertial> at all (the default hand gives them mass 0), and a
    # thin-rod-like inertia exactly on the triangle inequality's edge (ixx + iyy == izz).
    def edit(text: str) -> str:
        text = re.sub(r'(<link name="\w+_tip">\s*)<inertial>.*?</inertial>', r"\1", text, flags=re.DOTALL)
        return _sub(_IM_INERTIA, _inertia(2e-7, 1e-6, 1.2e-6))(text)

    folder = _copy_hand(tmp_path, edit=edit)
    assert "index_tip" in load_hand(folder).link_names
    cid, body = _raw_load(folder / "hand.urdf")  # PyBullet keeps that inertia (does not zero it)
    try:
        inertia = pybullet.getDynamicsInfo(body, _link_index(cid, body, "index_middle"), physicsClientId=cid)[2]
    finally:
        pybullet.disconnect(cid)
    np.testing.assert_allclose(inertia, (2e-7, 1e-6, 1.2e-6), rtol=1e-9)


# ---------------------------------------------------------------------------- finding 10: limits
_PIP_LIMIT = r'(<joint name="index_pip" type="revolute">.*?)<limit[^>]*/>'


@pytest.mark.parametrize(("limit", "expect"), [
    ('<limit lower="0" upper="1.745" effort="inf" velocity="5"/>', r"finite effort.*'inf'"),
    ('<limit effort="0.5" velocity="5"/>', r"lower == upper == 0 \(lower and upper missing.*\"fixed\""),
    ('<limit upper="0" effort="0.5" velocity="5"/>', r"lower == upper == 0 \(lower missing.*\"fixed\""),
    ('<limit lower="0" upper="90" effort="0.5" velocity="5"/>', r"\[0, 90\].*look like degrees"),
    ('<limit lower="-inf" upper="1" effort="0.5" velocity="5"/>', r"finite lower and upper.*continuous"),
    ('<limit lower="1.5" upper="0" effort="0.5" velocity="5"/>', r"lower 1.5 is above upper 0"),
])
def test_suspicious_limits_are_refused_naming_the_joint(tmp_path: Path, limit: str, expect: str) -> None:
    folder = _copy_hand(tmp_path, edit=_sub(_PIP_LIMIT, rf"\1{limit}"))
    with pytest.raises(URDFError, match=r"joint 'index_pip':? <limit>.*" + expect):
        load_hand(folder)


def test_a_full_turn_rounded_up_is_not_taken_for_degrees(tmp_path: Path) -> None:
    # +-pi written with 4 decimals (a common export) is one turn, not degrees.
    folder = _copy_hand(tmp_path, edit=_sub(_PIP_LIMIT, r'\1<limit lower="-3.1416" upper="3.1416" effort="0.5" velocity="5"/>'))
    assert load_hand(folder).joint_limits["index_pip"].upper == 3.1416


def test_a_malformed_joint_origin_is_one_urdf_error(tmp_path: Path) -> None:
    # Parsed by the palm-frame check too: a clean URDFError naming the joint, never a ValueError.
    def edit(text: str) -> str:
        return _sub(r'(<joint name="thumb_cmc_abd" type="revolute">.*?<origin xyz="[^"]*" )rpy="[^"]*"',
                    r'\1rpy="1.57,0,0"')(text)

    with pytest.raises(URDFError, match=r"joint 'thumb_cmc_abd' <origin rpy>: expected 3 numbers, got '1.57,0,0'"):
        load_hand(_copy_hand(tmp_path, edit=edit))


def test_explicit_equal_limits_are_a_deliberate_freeze(tmp_path: Path) -> None:
    # tests/test_honesty.py freezes joints this way, keeping them in the plans.
    folder = _copy_hand(tmp_path, edit=_sub(_PIP_LIMIT, r'\1<limit lower="0.5" upper="0.5" effort="0.5" velocity="5"/>'))
    limit = load_hand(folder).joint_limits["index_pip"]
    assert (limit.lower, limit.upper) == (0.5, 0.5)


# ---------------------------------------------------------------------------- review R16: geometry numbers, the tree
_IP_CAPSULE = '<capsule radius="0.009" length="0.04655"/>'


@pytest.mark.parametrize(("case", "edit", "expect"), [
    ("nan capsule radius", lambda t: _in_link(t, "index_proximal", _IP_CAPSULE,
                                              '<capsule radius="nan" length="0.04655"/>', kind="collision"),
     r"link 'index_proximal' <collision> <capsule>: attribute 'radius' expected a finite number, got 'nan'"),
    ("negative capsule radius", lambda t: _in_link(t, "index_proximal", _IP_CAPSULE,
                                                   '<capsule radius="-0.009" length="0.04655"/>', kind="collision"),
     r"link 'index_proximal' <collision> <capsule>: attribute 'radius' expected > 0 \[m\], got '-0.009'"),
    ("capsule without radius", lambda t: _in_link(t, "index_proximal", _IP_CAPSULE, '<capsule length="0.04655"/>',
                                                  kind="collision"),
     r"link 'index_proximal' <collision> <capsule>: needs a 'radius' attribute"),
    ("nan box size", _sub(r'(<link name="palm">.*?<collision>.*?)<box size="([^ ]+) [^ ]+ ', r'\1<box size="\2 nan '),
     r"link 'palm' <collision> #1 <box>: attribute 'size' expected 3 finite numbers, got '0.07 nan 0.028'"),
    ("zero box size", _sub(r'(<link name="palm">.*?<collision>.*?)<box size="([^ ]+) [^ ]+ ', r'\1<box size="\2 0 '),
     r"link 'palm' <collision> #1 <box>: attribute 'size' expected > 0 \[m\], got '0.07 0 0.028'"),
    ("nan visual size", lambda t: _in_link(t, "index_proximal", _IP_CAPSULE, '<capsule radius="0.009" length="nan"/>',
                                           kind="visual"),
     r"link 'index_proximal' <visual> <capsule>: attribute 'length' expected a finite number"),
    ("nan collision origin", lambda t: _in_link(t, "index_proximal", '<origin xyz="0.023275 0 0" rpy="0 1.5707963267949 0"/>',
                                                '<origin xyz="nan 0 0" rpy="0 1.5707963267949 0"/>', kind="collision"),
     r"link 'index_proximal' <collision> <origin>: attribute 'xyz' expected 3 finite numbers, got 'nan 0 0'"),
    ("inf inertial origin", lambda t: _in_link(t, "index_proximal", '<origin xyz="0.023275 0 0" rpy="0 0 0"/>',
                                               '<origin xyz="0.023275 0 0" rpy="inf 0 0"/>', kind="inertial"),
     r"link 'index_proximal' <inertial> <origin>: attribute 'rpy' expected 3 finite numbers, got 'inf 0 0'"),
    ("nan damping", _sub(r'(<joint name="index_pip" type="revolute">.*?)<dynamics[^>]*/>',
                         r'\1<dynamics damping="nan" friction="0"/>'),
     r"joint 'index_pip' <dynamics>: attribute 'damping' expected a finite number, got 'nan'"),
    ("negative friction", _sub(r'(<joint name="index_pip" type="revolute">.*?)<dynamics[^>]*/>',
                               r'\1<dynamics damping="0.02" friction="-1"/>'),
     r"joint 'index_pip' <dynamics>: attribute 'friction' expected >= 0, got '-1'"),
    ("negative contact friction", _sub(r'(<link name="index_proximal">)', r'\1<contact><lateral_friction value="-0.5"/></contact>'),
     r"link 'index_proximal' <contact><lateral_friction>: expected a value >= 0, got '-0.5'"),
])
def test_bad_geometry_and_dynamics_numbers_are_refused_naming_the_link(tmp_path: Path, case: str,
                                                                       edit: Callable[[str], str], expect: str) -> None:
    """PyBullet loads these without complaint (a NaN or negative capsule radius is kept as the
    shape's size, checked below; a bench on such a hand ran and reported grasps achieved)."""
    folder = _copy_hand(tmp_path, edit=edit)
    with pytest.raises(URDFError, match=expect):
        load_hand(folder)
    if case in ("nan capsule radius", "negative capsule radius"):
        cid, body = _raw_load(folder / "hand.urdf")
        try:
            radius = pybullet.getCollisionShapeData(body, _link_index(cid, body, "index_proximal"),
                                                    physicsClientId=cid)[0][3][1]
        finally:
            pybullet.disconnect(cid)
        assert np.isnan(radius) if case.startswith("nan") else radius == -0.009


def _drop_joint(name: str) -> Callable[[str], str]:
    return _sub(rf'<joint name="{name}" type="[a-z]+">.*?</joint>', "")


@pytest.mark.parametrize(("edit", "expect"), [
    (_drop_joint("index_dip"), (r"expected one root link, found 2: 'palm', 'index_distal'; 'index_distal' has no "
                                r"parent joint")),
    (_sub(r'<joint name="index_dip"', '<joint name="index_pip"'), r"duplicate joint name 'index_pip'"),
    (_sub(r'<link name="index_distal">', '<link name="index_middle">'), r"duplicate link name 'index_middle'"),
    (_sub(r'(<joint name="index_dip" type="revolute">\s*<parent link=")index_middle', r"\1index_midle"),
     r"joint 'index_dip' <parent link='index_midle'>: unknown link 'index_midle'; did you mean 'index_middle'"),
    (_sub(r'(<joint name="index_dip" type="revolute">\s*<parent link="index_middle"/><child link=")index_distal',
          r"\1index_middle"),
     r"link 'index_middle' is the child of two joints \('index_pip' and 'index_dip'\)"),
])
def test_a_urdf_that_is_not_one_tree_names_the_link_or_joint(tmp_path: Path, edit: Callable[[str], str],
                                                             expect: str) -> None:
    # Before, a deleted joint blamed hand.json's palm_link and a duplicate joint name went unreported.
    with pytest.raises(URDFError, match=expect):
        load_hand(_copy_hand(tmp_path, edit=edit))


@pytest.mark.parametrize("value", ["inf", "-inf"])
def test_an_infinite_mimic_multiplier_is_refused_by_both_readers(tmp_path: Path, value: str) -> None:
    from handsim.kinematics.urdf import parse_urdf

    def edit(text: str) -> str:
        return _sub(r'(<joint name="index_dip" type="revolute">.*?)</joint>',
                    rf'\1  <mimic joint="index_pip" multiplier="{value}" offset="0"/>\n  </joint>')(text)

    folder = _copy_hand(tmp_path, edit=edit)
    expect = rf"joint 'index_dip' <mimic>: attribute 'multiplier' expected a finite number, got '{value}'"
    with pytest.raises(URDFError, match=expect):
        load_hand(folder)
    with pytest.raises(URDFError, match=expect):
        parse_urdf(folder / "hand.urdf")


# ---------------------------------------------------------------------------- finding 13: not a URDF
_XACRO = """<?xml version="1.0"?>
<robot name="hand" xmlns:xacro="http://www.ros.org/wiki/xacro">
  <xacro:property name="r" value="0.009"/>
  <link name="palm"/>
</robot>
"""


@pytest.mark.parametrize("text", [
    _XACRO,
    _XACRO.replace(' xmlns:xacro="http://www.ros.org/wiki/xacro"', ""),  # unbound prefix: not even XML
    None,  # the default hand with one ${...} expression
])
def test_a_xacro_file_gets_the_xacro_command(tmp_path: Path, text: str | None) -> None:
    folder = _copy_hand(tmp_path, edit=(None if text is not None else _sub(
        r'(<joint name="index_pip" type="revolute">.*?<limit[^>]*)upper="[^"]*"', r'\1upper="${pi/2}"')))
    if text is not None:
        (folder / "hand.urdf").write_text(text)
    with pytest.raises(URDFError, match=r"hand\.urdf: this is a xacro file.*`xacro hand\.urdf > hand_expanded\.urdf`"):
        load_hand(folder)


def test_an_mjcf_file_given_as_urdf_points_at_mjcf_json(tmp_path: Path) -> None:
    folder = _copy_hand(tmp_path)
    (folder / "hand.urdf").write_text('<mujoco model="hand"><worldbody/></mujoco>')
    with pytest.raises(URDFError, match=r"got <mujoco>: this is an MJCF.*mjcf\.json"):
        load_hand(folder)


# ---------------------------------------------------------------------------- the shipped hands pass
def test_generated_hands_pass_the_checks(tmp_path: Path) -> None:
    from handsim.handgen import make_hand

    for i, kwargs in enumerate([{}, {'fingers': 3, 'thumb_dof': 2, 'dip': False, 'scale': 0.5},
                                {'thumb_dof': 6, 'scale': 2.0}, {'fingers': 4, 'thumb_dof': 0}]):
        load_hand(make_hand(tmp_path / f"h{i}", **kwargs))


@pytest.mark.slow
@pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in ("mujoco", "gymnasium_robotics")),
                    reason="the shadow hand needs mujoco and gymnasium_robotics")
def test_the_shadow_hand_passes_the_checks_and_hashes_its_meshes() -> None:
    hand = load_hand("shadow_hand")  # converted from MJCF: OBJ meshes next to the URDF
    digests = hand_files_sha256(hand)
    assert digests["meshes"] is not None
