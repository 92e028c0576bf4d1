"""MJCF import: the Shadow hand (read from the installed gymnasium-robotics) and a hand-written toy.

Golden values come from MuJoCo itself (``mj_kinematics`` body poses, the compiled joint ranges,
actuator force ranges, site positions, touch-sensor sites on the finger pads) and from PyBullet
loading the converted URDF, never from the converter.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import handsim
from handsim.data import available_hands, hand_dir, models_dir
from handsim.errors import (
    ConfigurationError,
    DataNotFoundError,
    MetadataError,
    MissingDependencyError,
)
from handsim.hand import load_hand
from handsim.transforms import pose_to_matrix, quat_to_matrix

_MISSING = [m for m in ("mujoco", "gymnasium_robotics") if importlib.util.find_spec(m) is None]
pytestmark = [pytest.mark.usefixtures("cache_dir"), pytest.mark.skipif(
    bool(_MISSING), reason=f"MJCF import needs the handsim[mjcf] extra ({', '.join(_MISSING)} not importable)")]

SHADOW = models_dir() / "shadow_hand"
PREFIX = "robot0:"
FINGER_CODES = {"thumb": "th", "index": "ff", "middle": "mf", "ring": "rf", "little": "lf"}


@pytest.fixture(scope="module")
def shadow():
    return load_hand("shadow_hand")


@pytest.fixture(scope="module")
def shadow_mj():
    import mujoco

    mapping = json.loads((SHADOW / "mjcf.json").read_text())
    spec = importlib.util.find_spec(mapping["mjcf"]["package"])
    path = Path(next(iter(spec.submodule_search_locations))) / mapping["mjcf"]["path"]
    return mujoco.MjModel.from_xml_path(str(path)), mapping


def _subtree(model, root: str) -> list[int]:
    root_id = model.body(root).id
    out = []
    for b in range(model.nbody):
        p = b
        while p not in (0, root_id):
            p = int(model.body_parentid[p])
        if p == root_id and b != root_id:
            out.append(b)
    return out


def _palm_rotation(frame: dict) -> np.ndarray:
    """Columns: the handsim palm axes (x distal, y = z x x, z palmar) in the MJCF palm body frame."""
    x, z = np.asarray(frame["distal"], float), np.asarray(frame["palmar"], float)
    return np.stack([x, np.cross(z, x), z], axis=1)


def _mujoco_frames(model, q_by_joint: dict[str, float], root: str, palm_frame: dict,
                   names: dict[str, str]) -> dict[str, np.ndarray]:
    """MuJoCo's body frames, moved to the URDF link convention (body frame translated by its
    last joint's anchor), relative to the handsim palm frame: link name -> (4, 4)."""
    import mujoco

    data = mujoco.MjData(model)
    data.qpos[:] = model.qpos0
    for jname, value in q_by_joint.items():
        data.qpos[model.jnt_qposadr[model.joint(jname).id]] = value
    mujoco.mj_kinematics(model, data)
    rid = model.body(root).id
    palm = pose_to_matrix(data.xpos[rid], data.xquat[rid])
    palm[:3, 3] += palm[:3, :3] @ np.asarray(palm_frame.get("origin", [0, 0, 0]), float)
    palm[:3, :3] = palm[:3, :3] @ _palm_rotation(palm_frame)
    inv = np.linalg.inv(palm)
    out = {}
    for b in _subtree(model, root):
        frame = pose_to_matrix(data.xpos[b], data.xquat[b])
        nj = int(model.body_jntnum[b])
        if nj:
            anchor = np.eye(4)
            anchor[:3, 3] = model.jnt_pos[model.body_jntadr[b] + nj - 1]
            frame = frame @ anchor
        out[names[model.body(b).name]] = inv @ frame
    return out


def _assert_frames_close(fk: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> None:
    for link, t in ref.items():
        np.testing.assert_allclose(fk[link][:3, 3], t[:3, 3], atol=1e-6, err_msg=link)
        np.testing.assert_allclose(fk[link][:3, :3], t[:3, :3], atol=1e-6, err_msg=link)


# ---------------------------------------------------------------------------- the Shadow hand
def test_shadow_is_a_shipped_hand_loaded_from_the_cache(shadow, cache_dir):
    assert "shadow_hand" in available_hands()
    assert hand_dir("shadow_hand") == SHADOW
    assert shadow.folder == SHADOW  # grasps.json is looked up here
    assert cache_dir in shadow.urdf_path.parents and cache_dir in shadow.metadata_path.parents
    assert sorted(p.name for p in SHADOW.iterdir() if p.suffix in (".urdf", ".obj", ".stl")) == []
    assert shadow.palm_link == "palm" and shadow.finger_names == ("thumb", "index", "middle", "ring", "little")
    tree = handsim.load_urdf(shadow.urdf_path)
    assert tree.root_link == "palm" and tree.joint_names == shadow.actuated_joints


def test_conversion_is_cached_and_keyed_by_content(tmp_path, cache_dir):
    from handsim.importers import converted_hand_dir

    first = converted_hand_dir(SHADOW)
    stamp = (first / "hand.urdf").stat().st_mtime_ns
    assert converted_hand_dir(SHADOW) == first and (first / "hand.urdf").stat().st_mtime_ns == stamp
    mapping = json.loads((SHADOW / "mjcf.json").read_text())
    mapping["fingers"]["index"]["tip_from"] = 0.6
    (tmp_path / "mjcf.json").write_text(json.dumps(mapping))
    other = converted_hand_dir(tmp_path)
    assert other != first and other.parent == first.parent


def test_cache_key_follows_the_mesh_files_the_mjcf_names(toy, cache_dir):
    """Editing a mesh file (found through <compiler meshdir>) converts again; the converted
    mesh is the edited one."""
    from handsim.importers import converted_hand_dir

    (toy / "assets").mkdir()
    wedge = "v 0 0 0\nv 0.02 0 0\nv 0 0.02 0\nv 0 0 0.02\nf 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n"
    (toy / "assets" / "wedge.obj").write_text(wedge)
    xml = TOY_XML.replace('<mesh name="wedge" vertex="0 0 0  0.02 0 0  0 0.02 0  0 0 0.02"/>',
                          '<mesh name="wedge" file="wedge.obj"/>')
    (toy / "toy.xml").write_text(xml.replace("<default>", '<compiler meshdir="assets"/>\n  <default>', 1))
    first = converted_hand_dir(toy)
    assert converted_hand_dir(toy) == first
    edited = toy / "assets" / "wedge.obj"
    edited.write_text(wedge.replace("v 0.02 0 0", "v 0.04 0 0"))
    # MuJoCo's own asset cache keys a file on its name and modification time in whole
    # seconds: an edit is seen from the next second on, as it is for a user editing a mesh.
    stat = edited.stat()
    os.utime(edited, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    second = converted_hand_dir(toy)
    assert second != first

    def extent(folder):  # MuJoCo re-centres and turns meshes: the largest vertex distance is invariant
        (obj,) = (folder / "meshes").glob("*wedge*.obj")
        v = np.array([[float(x) for x in line.split()[1:4]] for line in obj.read_text().splitlines()
                      if line.startswith("v ")])
        return np.linalg.norm(v[:, None] - v[None], axis=-1).max()

    assert extent(first) == pytest.approx(0.02 * np.sqrt(2), rel=1e-4)
    assert extent(second) == pytest.approx(np.hypot(0.04, 0.02), rel=1e-4)


def test_shadow_joints_limits_and_efforts_equal_the_mjcf(shadow, shadow_mj):
    model, _ = shadow_mj
    bodies = _subtree(model, "robot0:palm")
    mj_joints = [j for j in range(model.njnt) if model.jnt_bodyid[j] in bodies]
    # the wrist joints WRJ0/WRJ1 sit at or above the palm: 22 joints below it, 18 of them actuated
    assert len(mj_joints) == 22 and len(shadow.movable_joints) == 22
    assert [model.joint(j).name.removeprefix(PREFIX) for j in mj_joints] == list(shadow.movable_joints)
    force = {model.actuator_trnid[a, 0]: model.actuator_forcerange[a, 1] for a in range(model.nu)}
    # the independent (commanded) joints are exactly MuJoCo's actuated ones; J0 follows J1 (a <mimic>)
    actuated = [model.joint(j).name.removeprefix(PREFIX) for j in mj_joints if j in force]
    assert len(actuated) == 18 == shadow.num_dof and list(shadow.actuated_joints) == actuated
    for j in mj_joints:
        lim = shadow.joint_limits[model.joint(j).name.removeprefix(PREFIX)]
        assert (lim.lower, lim.upper) == tuple(model.jnt_range[j])
        # J0 (distal) has no actuator: it is tendon-coupled to J1 and takes J1's force.
        name = model.joint(j).name
        source = model.joint(name.replace("J0", "J1")).id if name.endswith("J0") and j not in force else j
        assert lim.effort == pytest.approx(force[source])


def test_shadow_links_carry_each_joints_armature(shadow, shadow_mj):
    """Each hinge's child link has, about the joint axis, MuJoCo's compiled body inertia about
    it (a tiny stand-in for a link between two joints of one body) plus the joint's armature,
    which MuJoCo adds to the joint's inertia and URDF cannot state; PyBullet loads it so."""
    import xml.etree.ElementTree as ET

    import pybullet as pb
    from test_armature import _inertials

    model, _ = shadow_mj
    root = ET.parse(shadow.urdf_path).getroot()
    tensors = {name: tensor for name, (_, _, tensor) in _inertials(root).items()}
    joints = {j.get("name"): j for j in root.findall("joint")}
    mj_joints = [j for j in range(model.njnt) if model.jnt_bodyid[j] in _subtree(model, "robot0:palm")]
    about_axis = {}
    for j in mj_joints:
        joint = joints[model.joint(j).name.removeprefix(PREFIX)]
        axis = np.array([float(v) for v in joint.find("axis").get("xyz").split()])
        np.testing.assert_allclose(axis, model.jnt_axis[j])  # in the body's orientation
        tensor = tensors[joint.find("child").get("link")]
        b = int(model.jnt_bodyid[j])
        last = j == model.body_jntadr[b] + model.body_jntnum[b] - 1
        body = quat_to_matrix(model.body_iquat[b]) @ np.diag(model.body_inertia[b]) @ quat_to_matrix(model.body_iquat[b]).T
        own = axis @ body @ axis if last else 1e-9  # the converter's intermediate link: 1e-9 kg m^2
        armature = float(model.dof_armature[model.jnt_dofadr[j]])
        assert armature > 0.0
        assert axis @ tensor @ axis == pytest.approx(own + armature, rel=1e-6), joint.get("name")
        about_axis[joint.find("child").get("link")] = (axis, own + armature)
    client = pb.connect(pb.DIRECT)
    try:
        body_id = pb.loadURDF(str(shadow.urdf_path), useFixedBase=True, flags=pb.URDF_USE_INERTIA_FROM_FILE,
                              physicsClientId=client)
        seen = 0
        for k in range(pb.getNumJoints(body_id, physicsClientId=client)):
            name = pb.getJointInfo(body_id, k, physicsClientId=client)[12].decode()
            if name in about_axis:
                info = pb.getDynamicsInfo(body_id, k, physicsClientId=client)
                r = np.array(pb.getMatrixFromQuaternion(info[4])).reshape(3, 3)
                axis, expected = about_axis[name]
                assert axis @ r @ np.diag(info[2]) @ r.T @ axis == pytest.approx(expected, rel=1e-5), name
                seen += 1
        assert seen == len(about_axis) == 22
    finally:
        pb.disconnect(client)


def test_shadow_fk_matches_mujoco_and_pybullet(shadow, shadow_mj, rng):
    from handsim.sim.hand import HandBody
    from handsim.sim.world import World

    model, mapping = shadow_mj
    tree = handsim.load_urdf(shadow.urdf_path)
    names = {model.body(b).name: model.body(b).name.removeprefix(PREFIX) for b in _subtree(model, "robot0:palm")}
    lower, upper = tree.lower.copy(), tree.upper.copy()
    for mimic in shadow.mimic_joints.values():  # keep every J0 = ratio x J1 inside J0's range, where
        # PyBullet puts it (HandBody clips a mimic joint's value to its limits; the FK does not)
        col = tree.joint_names.index(mimic.master)
        upper[col] = min(upper[col], (shadow.joint_limits[mimic.joint].upper - mimic.offset) / mimic.multiplier)
    q = rng.uniform(lower, upper, size=(8, tree.num_joints))
    frames = tree.forward_kinematics(q)  # (B, L, 4, 4)
    idx = {link: i for i, link in enumerate(tree.link_names)}
    with World(gravity=False) as world:
        body = HandBody(world, shadow.urdf_path)
        assert body.joint_names == tree.joint_names == shadow.actuated_joints
        for qb, fb in zip(q, frames):
            fk = {link: fb[i] for link, i in idx.items()}
            q_all = dict(zip(shadow.movable_joints, shadow.movable_values(qb)))  # the four J0 included
            ref = _mujoco_frames(model, {PREFIX + j: v for j, v in q_all.items()}, "robot0:palm",
                                 mapping["palm_frame"], names)
            _assert_frames_close(fk, ref)
            import mujoco

            data = mujoco.MjData(model)
            for j, v in q_all.items():
                data.qpos[model.jnt_qposadr[model.joint(PREFIX + j).id]] = v
            mujoco.mj_kinematics(model, data)
            palm = pose_to_matrix(data.xpos[model.body("robot0:palm").id], data.xquat[model.body("robot0:palm").id])
            for finger, code in FINGER_CODES.items():  # tip links sit at MuJoCo's fingertip sites
                site = np.linalg.inv(palm) @ np.append(data.site_xpos[model.site(f"{PREFIX}S_{code}tip").id], 1.0)
                np.testing.assert_allclose(fk[f"{finger}_tip"][:3, 3],
                                           _palm_rotation(mapping["palm_frame"]).T @ site[:3], atol=1e-6)
            body.reset_joints(qb)
            xyz, quat = body.link_poses()
            for link, pos, qt in zip(body.link_names, xyz, quat):
                np.testing.assert_allclose(pos, fk[link][:3, 3], atol=1e-6, err_msg=link)
                np.testing.assert_allclose(quat_to_matrix(qt), fk[link][:3, :3], atol=1e-6, err_msg=link)


def test_shadow_follows_the_palm_frame_convention(shadow):
    """x distal, z palmar, y towards the little finger (models/README.md)."""
    tree = handsim.load_urdf(shadow.urdf_path)
    frames = tree.forward_kinematics(np.zeros(tree.num_joints))
    tip = {f: frames[tree.link_names.index(f"{f}_tip")][:3, 3] for f in FINGER_CODES}
    assert tip["middle"][0] > 0.15  # fingertips distal of the wrist
    assert tip["index"][1] < tip["middle"][1] < tip["ring"][1] < tip["little"][1]
    assert tip["thumb"][1] < tip["index"][1]  # the thumb on the radial side
    pad = frames[tree.link_names.index("ffdistal")][:3, :3] @ shadow.regions.region("ffdistal").palmar
    np.testing.assert_allclose(pad, [0, 0, 1], atol=1e-9)  # the finger pads face palmar (+z)


def test_shadow_regions_label_mujoco_touch_sites_and_capsule_pads(shadow, shadow_mj):
    model, _ = shadow_mj
    regions = shadow.regions
    for finger, code in FINGER_CODES.items():
        # MuJoCo's fingertip touch sensors sit on the distal pads (link frame = body frame: joint anchors are 0).
        touch = model.site_pos[model.site(f"{PREFIX}Tch_{code}tip").id]
        tip = model.site_pos[model.site(f"{PREFIX}S_{code}tip").id]
        distal = f"{code}distal"
        assert regions.label_names(regions.classify([touch, tip], distal)) == [f"{finger}.distal.pad",
                                                                               f"{finger}.distal.tip"]
        segs = {"thumb": ("thproximal", "thmiddle"), "little": ("lfproximal", "lfmiddle")}.get(
            finger, (f"{code}proximal", f"{code}middle"))
        pad_dir = np.array([-1.0, 0, 0]) if finger == "thumb" else np.array([0, -1.0, 0])
        for link, seg in zip(segs, ("metacarpal", "proximal") if finger == "thumb" else ("proximal", "middle")):
            g = model.geom(f"{PREFIX}C_{link}")
            radius, half = g.size[0], g.size[1]
            centre = g.pos
            axis = quat_to_matrix(g.quat)[:, 2]
            pad_point = centre + radius * pad_dir
            back_point = centre - radius * pad_dir
            side_point = centre + radius * np.cross(axis, pad_dir)
            labels = regions.label_names(regions.classify([pad_point, back_point, side_point], link))
            assert labels == [f"{finger}.{seg}.pad", f"{finger}.{seg}.dorsal", f"{finger}.{seg}.side"], (link, half)
    palm_box = model.geom(f"{PREFIX}C_palm0")
    # The palm box's palmar face (MJCF -y), in the handsim palm frame: z = +half-thickness.
    face = np.array([palm_box.pos[2], -palm_box.pos[0], palm_box.size[1]])
    assert regions.label_names(regions.classify(face, "palm")) == ["palm.pad"]
    assert regions.label_names(regions.classify(face * [1, 1, -1], "palm")) == ["palm.dorsal"]


# ---------------------------------------------------------------------------- mapping errors
def _mapping_copy(tmp_path: Path, **changes) -> Path:
    mapping = json.loads((SHADOW / "mjcf.json").read_text())
    for dotted, value in changes.items():
        *path, last = dotted.split("__")
        node = mapping
        for key in path:
            node = node[key]
        node[last] = value
    (tmp_path / "mjcf.json").write_text(json.dumps(mapping))
    return tmp_path


def test_unknown_body_names_the_field_and_the_valid_bodies(tmp_path):
    from handsim.importers import convert_mjcf

    folder = _mapping_copy(tmp_path, fingers__index__segments__distal__body="robot0:ffdistl")
    with pytest.raises(MetadataError) as err:
        convert_mjcf(folder, tmp_path / "out")
    msg = str(err.value)
    assert "fingers.index.segments.distal.body" in msg and "did you mean 'robot0:ffdistal'" in msg
    assert "valid:" in msg and "robot0:thdistal" in msg and "robot0:forearm" not in msg  # only below the palm
    folder = _mapping_copy(tmp_path, root_body="robot0:plam", palm={"robot0:plam": {"pad": [0, -1, 0]}})
    with pytest.raises(MetadataError, match=r"root_body: unknown MJCF body 'robot0:plam'; did you mean 'robot0:palm'"):
        convert_mjcf(folder, tmp_path / "out")
    folder = _mapping_copy(tmp_path, palm={"robot0:palm": {"pad": [0, -1, 0]}, "robot0:thhub": {"pad": [0, -1, 0]}})
    with pytest.raises(MetadataError, match=r"field palm.robot0:thhub: expected a body that is not below a finger"):
        convert_mjcf(folder, tmp_path / "out")
    folder = _mapping_copy(tmp_path, fingers__thumb__tip={"site": "robot0:S_fftip"})
    with pytest.raises(MetadataError, match=r"fingers.thumb.tip.site: expected a site on the distal body"):
        convert_mjcf(folder, tmp_path / "out")


def test_a_mapping_that_is_not_utf8_is_a_metadata_error(tmp_path):
    # Review: bytes that are not UTF-8 raised UnicodeDecodeError (a traceback, exit 3).
    from handsim.importers import load_mapping

    (tmp_path / "mjcf.json").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(MetadataError, match="not UTF-8 text") as info:
        load_mapping(tmp_path)
    assert str(tmp_path / "mjcf.json") in str(info.value)


@pytest.mark.parametrize("below", [False, True])
def test_a_cache_dir_that_is_a_file_is_one_line_naming_it(tmp_path, monkeypatch, below):
    # Review: HANDSIM_CACHE_DIR=<a file> raised NotADirectoryError from converted_hand_dir (exit 3).
    from handsim.importers import converted_hand_dir

    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    monkeypatch.setenv("HANDSIM_CACHE_DIR", str(blocker / "sub" if below else blocker))
    for call in (lambda: converted_hand_dir(SHADOW), lambda: load_hand(SHADOW)):
        with pytest.raises(ConfigurationError) as info:
            call()
        msg = str(info.value)
        assert "HANDSIM_CACHE_DIR" in msg and str(blocker) in msg and "\n" not in msg, msg
    assert blocker.read_text() == "not a folder"


def test_missing_files_and_packages_name_the_field(tmp_path):
    from handsim.importers import load_mapping

    with pytest.raises(MetadataError, match=r"field mjcf: expected an existing MJCF file \(looked for .*nowhere.xml\)"):
        load_mapping(_mapping_copy(tmp_path, mjcf="nowhere.xml"))
    with pytest.raises(MetadataError, match=r"field mjcf.path: expected an existing file inside gymnasium_robotics"):
        load_mapping(_mapping_copy(tmp_path, mjcf={"package": "gymnasium_robotics", "path": "nope.xml"}))
    with pytest.raises(MissingDependencyError, match=r"pip install handsim\[mjcf\]"):
        load_mapping(_mapping_copy(tmp_path, mjcf={"package": "no_such_package_zz", "path": "a.xml"}))
    with pytest.raises(MetadataError, match=r"fingers.index.segments.tip: unknown index segment 'tip'.*valid: distal"):
        load_mapping(_mapping_copy(tmp_path, fingers__index__segments__tip={"body": "x", "pad": [0, 1, 0]}))
    with pytest.raises(MetadataError, match=r"field roots_body: unknown top-level field.*did you mean 'root_body'"):
        load_mapping(_mapping_copy(tmp_path, roots_body="x"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataNotFoundError, match="no hand.json .* and no mjcf.json"):
        hand_dir(empty)


# ---------------------------------------------------------------------------- any MJCF hand
TOY_XML = """
<mujoco model="toy">
  <compiler angle="degree"/>
  <default>
    <joint damping="0.05" limited="true"/>
    <geom contype="1" conaffinity="1" rgba="0.7 0.6 0.5 1"/>
    <default class="viz"><geom contype="0" conaffinity="0"/></default>
  </default>
  <asset>
    <mesh name="wedge" vertex="0 0 0  0.02 0 0  0 0.02 0  0 0 0.02"/>
  </asset>
  <worldbody>
    <body name="arm" pos="0.1 0.2 0.3" euler="0 90 0">
      <joint name="arm_slide" type="slide" axis="0 0 1" range="-0.1 0.1"/>
      <geom type="box" size="0.02 0.02 0.05"/>
      <body name="base" pos="0 0 0.06" euler="10 0 0">
        <geom type="box" size="0.04 0.015 0.01"/>
        <geom type="ellipsoid" size="0.01 0.02 0.005" pos="0 0 -0.01"/>
        <body name="f_prox" pos="0.02 0 0.01" quat="0.9659 0 0.2588 0">
          <joint name="f_abd" axis="0 1 0" pos="0 0 -0.005" range="-20 20"/>
          <joint name="f_flex" axis="1 0 0" pos="0 0.001 -0.004" range="0 90"/>
          <geom type="capsule" fromto="0 0 0  0 0 0.04" size="0.008"/>
          <geom class="viz" type="mesh" mesh="wedge"/>
          <body name="f_dist" pos="0 0 0.045">
            <joint name="f_dip" axis="1 0 0" pos="0 0 -0.002" range="0 80"/>
            <joint name="f_twist" axis="0 0 1" range="-30 30"/>
            <geom type="cylinder" size="0.007 0.01" pos="0 0 0.01"/>
            <geom type="sphere" size="0.007" pos="0 0 0.02"/>
            <site name="f_tip" pos="0 0 0.025"/>
          </body>
        </body>
        <body name="t_meta" pos="-0.02 -0.01 0" axisangle="0 1 0 -30">
          <joint name="t_rot" axis="0 0 1" range="-45 45"/>
          <geom type="capsule" size="0.009 0.015" pos="0 0 0.015"/>
          <body name="t_dist" pos="0 0 0.03">
            <joint name="t_frozen" axis="1 0 0" pos="0 0 0.003" range="-10 10"/>
            <joint name="t_flex" axis="0 1 0" pos="0.001 0 0" range="-60 0"/>
            <geom type="capsule" size="0.008 0.012" pos="0 0 0.012"/>
          </body>
        </body>
      </body>
    </body>
  </worldbody>
  <tendon>
    <fixed name="couple" limited="true" range="-0.001 0.001">
      <joint joint="f_dip" coef="0.01"/>
      <joint joint="f_flex" coef="-0.008"/>
    </fixed>
  </tendon>
  <actuator>
    <position joint="f_abd" kp="2" forcelimited="true" forcerange="-0.5 0.5"/>
    <position joint="f_flex" kp="2" forcelimited="true" forcerange="-0.8 0.8"/>
    <motor joint="t_rot" gear="2" ctrlrange="-1 1" ctrllimited="true" forcelimited="true" forcerange="-0.3 0.3"/>
    <position joint="t_flex" kp="0.5" ctrlrange="-1 0" ctrllimited="true"/>
  </actuator>
</mujoco>
"""

TOY_MAPPING = {
    "schema": 1,
    "name": "toy",
    "mjcf": "toy.xml",
    "root_body": "base",
    "palm_frame": {"origin": [0.01, 0.0, -0.005], "distal": [0, 0.7071067811865476, 0.7071067811865476],
                   "palmar": [0, -0.7071067811865476, 0.7071067811865476]},
    "palm": {"base": {"pad": [0, -0.7071067811865476, 0.7071067811865476]}},
    "fingers": {
        "thumb": {"segments": {"proximal": {"body": "t_meta", "pad": [1, 0, 0]},
                               "distal": {"body": "t_dist", "pad": [1, 0, 0]}},
                  "tip": {"pos": [0, 0, 0.025]}},
        "index": {"segments": {"proximal": {"body": "f_prox", "pad": [0, -1, 0]},
                               "distal": {"body": "f_dist", "pad": [0, -1, 0]}},
                  "tip": {"site": "f_tip"}, "tip_from": 0.6},
    },
    "thumb_abduction": {"joint": "t_rot", "abducted_min": 0.3},
    "freeze": {"t_frozen": 0.1},
    "efforts": {"f_twist": 0.05},
    "rest_pose": {"f_flex": 0.2},
}


@pytest.fixture
def toy(tmp_path):
    folder = tmp_path / "toy_hand"
    folder.mkdir()
    (folder / "toy.xml").write_text(TOY_XML)
    (folder / "mjcf.json").write_text(json.dumps(TOY_MAPPING))
    return folder


def test_toy_mjcf_converts_and_its_fk_matches_mujoco(toy, rng):
    import mujoco

    hand = load_hand(toy)
    model = mujoco.MjModel.from_xml_path(str(toy / "toy.xml"))
    tree = handsim.load_urdf(hand.urdf_path)
    # f_abd and f_flex share a body: one intermediate link; t_frozen is fixed at 0.1 rad; f_dip
    # follows f_flex through the tendon "couple" (0.01 f_dip - 0.008 f_flex = 0): a mimic joint.
    assert tree.joint_names == ("f_abd", "f_flex", "f_twist", "t_rot", "t_flex") == hand.actuated_joints
    assert hand.movable_joints == ("f_abd", "f_flex", "f_dip", "f_twist", "t_rot", "t_flex")
    assert hand.fingers["index"].joints == ("f_abd", "f_flex", "f_dip", "f_twist")
    dip = hand.mimic_joints["f_dip"]
    assert (dip.master, dip.offset) == ("f_flex", 0.0) and dip.multiplier == pytest.approx(0.008 / 0.01, rel=1e-12)
    assert hand.thumb_abduction.joint == "t_rot" and hand.rest_pose == {"f_flex": 0.2}
    effort = {j: hand.joint_limits[j].effort for j in hand.movable_joints}
    # forcerange, gear x forcerange, kp x ctrlrange width, coupled follower, mapping override:
    assert effort == pytest.approx({"f_abd": 0.5, "f_flex": 0.8, "f_dip": 0.8, "f_twist": 0.05, "t_rot": 0.6,
                                    "t_flex": 0.5})
    assert dict(zip(tree.joint_names, tree.effort)) == {j: effort[j] for j in tree.joint_names}
    for j in hand.movable_joints:
        np.testing.assert_allclose([hand.joint_limits[j].lower, hand.joint_limits[j].upper],
                                   model.jnt_range[model.joint(j).id])
    names = {model.body(b).name: model.body(b).name for b in _subtree(model, "base")}
    q = rng.uniform(tree.lower, tree.upper, size=(6, tree.num_joints))
    frames = tree.forward_kinematics(q)
    for qb, fb in zip(q, frames):
        qd = dict(zip(tree.joint_names, qb))
        ref = _mujoco_frames(model, {**qd, "f_dip": 0.8 * qd["f_flex"], "t_frozen": 0.1, "arm_slide": 0.05},
                             "base", TOY_MAPPING["palm_frame"], names)
        _assert_frames_close({link: fb[i] for i, link in enumerate(tree.link_names)}, ref)


def test_toy_hand_loads_in_pybullet_with_meshes_and_mujoco_self_collision(toy):
    from handsim.sim.hand import HandBody
    from handsim.sim.world import World

    hand = load_hand(toy)
    text = hand.urdf_path.read_text()
    meshes = set(re.findall(r'<mesh filename="([^"]+)"', text))
    assert len(meshes) == 2 and "meshes/wedge.obj" in meshes  # and the ellipsoid, written as OBJ files
    assert all((hand.urdf_path.parent / m).is_file() for m in meshes)
    with World(gravity=False) as world:
        body = HandBody(world, hand.urdf_path)
        tree = handsim.load_urdf(hand.urdf_path)
        assert body.joint_names == tree.joint_names
        q = np.clip(hand.rest_vector(), tree.lower, tree.upper)
        body.reset_joints(q)
        xyz, _ = body.link_poses()
        fk = tree.forward_kinematics(q)
        for link, pos in zip(body.link_names, xyz):
            np.testing.assert_allclose(pos, fk[tree.link_names.index(link)][:3, 3], atol=1e-6)


def test_bench_runs_the_shadow_hand_and_fails_honestly(tmp_path, capsys):
    from handsim.cli import main

    out = tmp_path / "bench"
    assert main(["bench", "--hand", "shadow_hand", "--grasps", "tip_pinch", "--trials", "1", "--jobs", "1",
                 "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    # 18 actuated joints, as MuJoCo's model (and the real hand): the four J0 are mimic joints
    assert results["hand"]["name"] == "shadow_hand" and results["hand"]["dof"] == 18
    assert "no grasp data" in capsys.readouterr().out


def test_shadow_mapping_ships_without_converted_files():
    shipped = sorted(p.name for p in SHADOW.iterdir())
    assert "mjcf.json" in shipped and "hand.urdf" not in shipped and "hand.json" not in shipped


def test_missing_mujoco_is_a_one_line_install_hint(toy, tmp_path, monkeypatch):
    from handsim.importers import convert_mjcf

    monkeypatch.setitem(sys.modules, "mujoco", None)  # `import mujoco` now fails
    with pytest.raises(MissingDependencyError) as err:
        convert_mjcf(toy, tmp_path / "out")
    assert "pip install handsim[mjcf]" in str(err.value) and "\n" not in str(err.value)


def _toy_mapping(toy: Path, xml: str | None = None, **changes) -> Path:
    """The toy hand with its mapping (and optionally its MJCF) changed; a value None deletes."""
    mapping = json.loads(json.dumps(TOY_MAPPING))
    for key, value in changes.items():
        if value is None:
            mapping.pop(key, None)
        else:
            mapping[key] = value
    (toy / "mjcf.json").write_text(json.dumps(mapping))
    if xml is not None:
        (toy / "toy.xml").write_text(xml)
    return toy


@pytest.mark.parametrize(
    ("changes", "field", "expected"),
    [({"efforts": {"f_twist": -2.0}}, "efforts.f_twist", "expected a number in (0, inf], got -2.0"),
     ({"efforts": {"f_twist": 0}}, "efforts.f_twist", "expected a number in (0, inf], got 0"),
     ({"efforts": {"f_twist": 0.05, "f_twst": 1.0}}, "efforts.f_twst", "did you mean 'f_twist'"),
     ({"rest_pose": {"f_flex": 5.0}}, "rest_pose.f_flex", "expected a value in the joint's MJCF range [0, 1.5708]"),
     ({"freeze": {"t_frozen": 0.5}}, "freeze.t_frozen", "expected a value in the joint's MJCF range [-0.174533, 0.174533]"),
     ({"thumb_abduction": {"joint": "t_rot", "abducted_min": 2.0}}, "thumb_abduction.abducted_min",
      "expected a value in the joint's MJCF range [-0.785398, 0.785398]"),
     ({"thumb_abduction": {"joint": "f_abd", "abducted_min": 0.1}}, "thumb_abduction.joint", "valid: t_flex, t_rot"),
     ({"thumb_abduction": {"joint": "t_rot", "abducted_max": -2.0}}, "thumb_abduction.abducted_max",
      "expected a value in the joint's MJCF range [-0.785398, 0.785398]"),
     ({"thumb_abduction": {"joint": "t_rot", "abducted_min": 0.1, "abducted_max": -0.1}}, "thumb_abduction",
      "expected exactly one of abducted_min or abducted_max")],
    ids=["effort_negative", "effort_zero", "effort_unknown_joint", "rest_out_of_range", "freeze_out_of_range",
         "abducted_min_out_of_range", "abduction_joint_not_thumb", "abducted_max_out_of_range", "abduction_both_sides"],
)
def test_mapping_values_are_checked_against_the_mjcf_joints(toy, changes, field, expected):
    """Mistakes in the mapping's joint values are reported against mjcf.json and its field (the
    ranges are MuJoCo's compiled ones, in radians), never against the converted file in the cache."""
    _toy_mapping(toy, **changes)
    with pytest.raises(MetadataError) as err:
        load_hand(toy)
    msg = str(err.value)
    assert msg.startswith(f"{(toy / 'mjcf.json').resolve()}: field {field}: "), msg
    assert expected in msg and "hand.json" not in msg, msg


def test_thumb_abducted_max_passes_through_to_the_converted_hand(toy):
    """A mapping may give ``abducted_max`` (a thumb whose opposition turns its joint negative):
    the converted hand judges the thumb abducted at or below it."""
    _toy_mapping(toy, thumb_abduction={"joint": "t_rot", "abducted_max": -0.3})
    ta = load_hand(toy).thumb_abduction
    assert (ta.joint, ta.abducted_min, ta.abducted_max) == ("t_rot", None, -0.3)
    assert ta.is_abducted(-0.5) and not ta.is_abducted(0.0)


def test_ball_joint_advice_is_not_circular(toy):
    """A ball joint below the root can be neither converted nor frozen: both errors say so and
    give the same two ways out (and neither sends the user to the other)."""
    flex = '<joint name="t_flex" axis="0 1 0" pos="0.001 0 0" range="-60 0"/>'
    assert flex in TOY_XML
    ball = TOY_XML.replace(flex, flex + '\n            <joint name="t_ball" type="ball"/>')  # MuJoCo: a ball comes last
    _toy_mapping(toy, xml=ball)
    with pytest.raises(MetadataError) as below:
        load_hand(toy)
    _toy_mapping(toy, xml=ball, freeze={"t_frozen": 0.1, "t_ball": 0.0})
    with pytest.raises(MetadataError) as frozen:
        load_hand(toy)
    assert "field root_body: joint 't_ball' below it is a mjJNT_BALL joint" in str(below.value)
    assert "field freeze.t_ball: expected a hinge or slide joint (only those can be frozen" in str(frozen.value)
    for err in (below, frozen):
        msg = str(err.value)
        assert "choose a root_body below the joint, or replace it in the MJCF by hinge joints" in msg, msg
        assert "list it in freeze" not in msg
    # The way out works: the same body with the ball joint replaced by a hinge converts.
    _toy_mapping(toy, xml=ball.replace('<joint name="t_ball" type="ball"/>',
                                       '<joint name="t_ball" axis="0 0 1" range="-10 10"/>'),
                 efforts={"f_twist": 0.05, "t_ball": 0.1})
    assert "t_ball" in handsim.load_urdf(load_hand(toy).urdf_path).joint_names


def test_readme_grasp_plan_workflow_for_the_shadow_hand(tmp_path, shadow):
    """models/shadow_hand/README.md: synth never writes into the package; a folder holding a
    copy of mjcf.json is the same hand, and synth's default output is that folder's grasps.json,
    where the benchmark's loader looks."""
    import shutil

    from handsim.errors import ConfigurationError
    from handsim.synth.cli import resolve_out

    readme = (SHADOW / "README.md").read_text()
    assert "cp models/shadow_hand/mjcf.json my_shadow/" in readme and "handsim synth --hand my_shadow " in readme
    with pytest.raises(ConfigurationError, match="shipped hand; expected --out FILE"):
        resolve_out("shadow_hand", None)
    mine = tmp_path / "my_shadow"
    mine.mkdir()
    shutil.copy(SHADOW / "mjcf.json", mine / "mjcf.json")
    hand = load_hand(mine)
    assert hand.folder == mine and hand.urdf_path == shadow.urdf_path  # the same conversion
    assert resolve_out(str(mine), None) == mine / "grasps.json"
