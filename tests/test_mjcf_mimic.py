"""MJCF couplings converted as URDF ``<mimic>`` joints (the mapping's ``couplings``).

Independent sources: the MJCF compiled by MuJoCo (the Shadow hand's tendon coefficients and its
actuated joints), the converted URDF read with ElementTree, PyBullet's ``getJointState``, and
numbers written literally into the toy MJCF below; never the converter's own values.
"""

from __future__ import annotations

import importlib.util
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from handsim.data import models_dir
from handsim.errors import MetadataError
from handsim.hand import load_hand

_MISSING = [m for m in ("mujoco", "gymnasium_robotics") if importlib.util.find_spec(m) is None]
pytestmark = [pytest.mark.usefixtures("cache_dir"), pytest.mark.skipif(
    bool(_MISSING), reason=f"MJCF import needs the handsim[mjcf] extra ({', '.join(_MISSING)} not importable)")]

SHADOW = models_dir() / "shadow_hand"
PREFIX = "robot0:"
COUPLED = ("FF", "MF", "RF", "LF")  # fingers whose distal J0 follows J1 through a tendon T_<f>J1c
# A free Shadow finger's mimic J0 settles within 1e-6 rad of ratio x J1 after 0.6 s (measured:
# the ratio read back from PyBullet agrees with the MJCF's to 6 digits); 1e-4 rad leaves margin
# for solver noise and is 1400x below the tendon's slack (0.14 rad), so an independent J0 fails.
TRACK_TOL_RAD = 1e-4


@pytest.fixture(scope="module")
def shadow_mj():
    import mujoco

    mapping = json.loads((SHADOW / "mjcf.json").read_text())
    spec = importlib.util.find_spec(mapping["mjcf"]["package"])
    path = Path(next(iter(spec.submodule_search_locations))) / mapping["mjcf"]["path"]
    return mujoco.MjModel.from_xml_path(str(path))


def _tendon(model, finger: str) -> tuple[dict[str, float], tuple[float, float]]:
    """The fixed tendon T_<f>J1c: MJCF joint -> coefficient, and its length range [m]."""
    t = model.tendon(f"{PREFIX}T_{finger}J1c").id
    adr = int(model.tendon_adr[t])
    coef = {model.joint(int(model.wrap_objid[adr + k])).name: float(model.wrap_prm[adr + k]) for k in range(2)}
    return coef, (float(model.tendon_range[t, 0]), float(model.tendon_range[t, 1]))


def _tendon_ratio(model, finger: str) -> float:
    """q_J0 / q_J1 held by the tendon (c0 q0 + c1 q1 in a narrow range about 0)."""
    coef, _ = _tendon(model, finger)
    return -coef[f"{PREFIX}{finger}J1"] / coef[f"{PREFIX}{finger}J0"]


def _mimic_tags(urdf: Path) -> dict[str, dict[str, str]]:
    """URDF joint -> its <mimic> attributes, read with ElementTree."""
    out = {}
    for joint in ET.parse(urdf).getroot().findall("joint"):
        tag = joint.find("mimic")
        if tag is not None:
            out[joint.get("name")] = dict(tag.attrib)
    return out


def _shadow_copy(tmp_path: Path, **changes) -> Path:
    mapping = json.loads((SHADOW / "mjcf.json").read_text())
    mapping.update(changes)
    (tmp_path / "mjcf.json").write_text(json.dumps(mapping))
    return tmp_path


# ---------------------------------------------------------------------------- the Shadow hand
def test_shadow_urdf_has_mimic_on_exactly_the_four_distal_joints(shadow_mj):
    hand = load_hand("shadow_hand")
    tags = _mimic_tags(hand.urdf_path)
    assert sorted(tags) == sorted(f"{f}J0" for f in COUPLED)
    for f in COUPLED:
        ratio = _tendon_ratio(shadow_mj, f)
        assert ratio == pytest.approx(0.00805 / 0.00705, rel=1e-12)  # shared.xml's coefficients
        assert tags[f"{f}J0"]["joint"] == f"{f}J1"
        assert float(tags[f"{f}J0"]["multiplier"]) == pytest.approx(ratio, rel=1e-12)
        assert float(tags[f"{f}J0"]["offset"]) == 0.0
    assert "written as URDF mimic joints" in json.loads(hand.metadata_path.read_text())["description"]


def test_shadow_has_mujocos_18_actuated_joints(shadow_mj):
    model = shadow_mj
    hand = load_hand("shadow_hand")
    actuated = {model.joint(int(model.actuator_trnid[a, 0])).name.removeprefix(PREFIX) for a in range(model.nu)}
    assert hand.num_dof == 18 and set(hand.actuated_joints) == actuated - {"WRJ0", "WRJ1"}  # the wrist is fixed
    assert len(hand.movable_joints) == 22 and set(hand.mimic_joints) == {f"{f}J0" for f in COUPLED}
    for f in COUPLED:
        m = hand.mimic_joints[f"{f}J0"]
        assert m.master == f"{f}J1"
        # the follower keeps its leader's effort (its motor needs a cap) and its own MJCF range
        assert hand.joint_limits[f"{f}J0"].effort == hand.joint_limits[f"{f}J1"].effort > 0
        j0 = model.joint(f"{PREFIX}{f}J0").id
        assert (hand.joint_limits[f"{f}J0"].lower, hand.joint_limits[f"{f}J0"].upper) == tuple(model.jnt_range[j0])


def test_shadow_distal_joints_settle_at_ratio_times_j1_in_pybullet(shadow_mj):
    """J1 commanded, J0 (no target of its own) settles at the tendon's ratio x J1 in PyBullet, and
    within the tendon's slack of where MuJoCo's own model puts it."""
    from handsim.sim import HandBody, World
    from handsim.tolerances import DEFAULT_PROTOCOL

    hand = load_hand("shadow_hand")
    targets = {"FFJ1": 0.6, "MFJ1": 0.9, "RFJ1": 0.3, "LFJ1": 1.2}  # ratio x 1.2 = 1.37 < J0's 1.571
    with World(DEFAULT_PROTOCOL, gravity=False) as world:
        body = HandBody(world, hand.urdf_path, visual=False)
        assert body.dof == 18 and sorted(body.mimic_joint_names) == sorted(f"{f}J0" for f in COUPLED)
        body.reset_joints(np.zeros(body.dof))
        q = np.zeros(body.dof)
        for joint, value in targets.items():
            q[body.q_index(joint)] = value
        body.set_targets(q)
        world.step(150)  # 0.6 s; a free finger settles in ~0.4 s
        c, bid = world.client, body.body_id
        pybullet_q = {}
        for f in COUPLED:
            q1 = c.getJointState(bid, body.joint_index[f"{f}J1"])[0]
            q0 = c.getJointState(bid, body.joint_index[f"{f}J0"])[0]
            assert q1 == pytest.approx(targets[f"{f}J1"], abs=1e-3)
            assert q0 == pytest.approx(_tendon_ratio(shadow_mj, f) * q1, abs=TRACK_TOL_RAD), f
            pybullet_q[f] = (q0, q1)
    # MuJoCo itself, J1 servos given the same targets: its unactuated J0 lies inside the tendon's
    # band about ratio x J1 (measured: at the band's edge, 0.1419 rad below, as nothing drives
    # it), so PyBullet's J0, at the band's centre, is within the band's half-width of MuJoCo's.
    import mujoco

    model = shadow_mj
    data = mujoco.MjData(model)
    model_gravity = model.opt.gravity.copy()
    model.opt.gravity[:] = 0.0
    try:
        for a in range(model.nu):
            data.ctrl[a] = targets.get(model.joint(int(model.actuator_trnid[a, 0])).name.removeprefix(PREFIX), 0.0)
        for _ in range(1000):  # 2 s at MuJoCo's 2 ms step
            mujoco.mj_step(model, data)
    finally:
        model.opt.gravity[:] = model_gravity
    for f in COUPLED:
        coef, (lo, hi) = _tendon(model, f)
        half_band = 0.5 * (hi - lo) / abs(coef[f"{PREFIX}{f}J0"])  # [rad] of J0 (0.1418)
        q0_mj, q1_mj = (data.qpos[model.jnt_qposadr[model.joint(f"{PREFIX}{f}{j}").id]] for j in ("J0", "J1"))
        # MuJoCo's J1 servo settles a little short of its target (2 mrad): the band moves with it
        slack = half_band + _tendon_ratio(model, f) * abs(pybullet_q[f][1] - q1_mj) + 1e-3
        assert abs(pybullet_q[f][0] - q0_mj) <= slack, (f, pybullet_q[f], (q0_mj, q1_mj), half_band)


def test_independent_couplings_give_todays_22_joints(tmp_path):
    hand = load_hand(_shadow_copy(tmp_path, couplings="independent"))
    assert hand.num_dof == 22 and hand.mimic_joints == {} and _mimic_tags(hand.urdf_path) == {}
    assert {f"{f}J0" for f in COUPLED} <= set(hand.actuated_joints)
    description = json.loads(hand.metadata_path.read_text())["description"]
    assert 'written as independent joints ("couplings": "independent")' in description
    assert "FFJ0 = 1.142 x FFJ1" in description


@pytest.mark.parametrize(
    ("value", "expected"),
    [("mimc", "unknown couplings mode 'mimc'; did you mean 'mimic'? valid: independent, mimic"),
     ("rigid", "unknown couplings mode 'rigid'; valid: independent, mimic"),
     (True, "expected one of 'mimic', 'independent' (default 'mimic'), got True")],
    ids=["typo", "unknown", "not_a_string"],
)
def test_a_bad_couplings_value_names_the_field_and_the_choices(tmp_path, value, expected):
    from handsim.importers import load_mapping

    folder = _shadow_copy(tmp_path, couplings=value)
    with pytest.raises(MetadataError) as err:
        load_mapping(folder)
    msg = str(err.value)
    assert msg.startswith(f"{(folder / 'mjcf.json').resolve()}: field couplings: ") and expected in msg, msg


# ---------------------------------------------------------------------------- couplings in any MJCF
# A two-finger toy: f_dip follows f_flex through a narrow tendon (0.01 f_dip = 0.008 f_flex);
# EXTRA is spliced in to add equalities.
TOY_XML = """
<mujoco model="toy">
  <compiler angle="degree"/>
  <default><joint limited="true"/><geom contype="1" conaffinity="1"/></default>
  <worldbody>
    <body name="base">
      <geom type="box" size="0.04 0.015 0.01"/>
      <body name="f_prox" pos="0.02 0 0.01">
        <joint name="f_abd" axis="0 1 0" range="-20 20"/>
        <joint name="f_flex" axis="1 0 0" range="0 90"/>
        <geom type="capsule" fromto="0 0 0  0 0 0.04" size="0.008"/>
        <body name="f_dist" pos="0 0 0.045">
          <joint name="f_dip" axis="1 0 0" range="0 80"/>
          <joint name="f_twist" axis="0 0 1" range="-30 30"/>
          <geom type="capsule" fromto="0 0 0  0 0 0.02" size="0.007"/>
        </body>
      </body>
    </body>
  </worldbody>
  <tendon>
    <fixed name="couple" limited="true" range="-0.001 0.001">TENDON</fixed>
  </tendon>
  EXTRA
  <actuator>
    <position joint="f_abd" kp="2" forcelimited="true" forcerange="-0.5 0.5"/>
    <position joint="f_flex" kp="2" forcelimited="true" forcerange="-0.8 0.8"/>
  </actuator>
</mujoco>
"""
DIP_FIRST = '<joint joint="f_dip" coef="0.01"/><joint joint="f_flex" coef="-0.008"/>'
FLEX_FIRST = '<joint joint="f_flex" coef="-0.008"/><joint joint="f_dip" coef="0.01"/>'


def _toy(folder: Path, tendon: str = DIP_FIRST, extra: str = "", **changes) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "toy.xml").write_text(TOY_XML.replace("TENDON", tendon).replace("EXTRA", extra))
    mapping = {
        "schema": 1, "name": "toy", "mjcf": "toy.xml", "root_body": "base",
        "palm": {"base": {"pad": [0, 0, 1]}},
        "fingers": {"index": {"segments": {"proximal": {"body": "f_prox", "pad": [0, -1, 0]},
                                           "distal": {"body": "f_dist", "pad": [0, -1, 0]}},
                              "tip": {"pos": [0, 0, 0.02]}}},
        "efforts": {"f_twist": 0.05},
    }
    mapping.update(changes)
    (folder / "mjcf.json").write_text(json.dumps(mapping))
    return folder


def _description(hand) -> str:
    return json.loads(hand.metadata_path.read_text())["description"]


@pytest.mark.parametrize("tendon", [DIP_FIRST, FLEX_FIRST], ids=["follower_first", "follower_second"])
def test_the_unactuated_joint_of_a_tendon_follows(tmp_path, tendon):
    hand = load_hand(_toy(tmp_path / "toy", tendon))
    assert _mimic_tags(hand.urdf_path) == {"f_dip": {"joint": "f_flex", "multiplier": repr(0.008 / 0.01),
                                                     "offset": "0.0"}}
    assert hand.actuated_joints == ("f_abd", "f_flex", "f_twist")
    assert hand.joint_limits["f_dip"].effort == 0.8  # f_flex's forcerange


def test_a_joint_equality_writes_its_offset(tmp_path):
    """MuJoCo's joint equality: q1 = a0 + a1 q2 (+ higher terms, which a mimic cannot hold)."""
    eq = '<equality><joint joint1="f_twist" joint2="f_abd" polycoef="0.02 0.5 0 0 0"/></equality>'
    hand = load_hand(_toy(tmp_path / "toy", extra=eq))
    assert _mimic_tags(hand.urdf_path)["f_twist"] == {"joint": "f_abd", "multiplier": "0.5", "offset": "0.02"}
    assert "f_twist = 0.5 x f_abd + 0.02" in _description(hand) and "nonlinear" not in _description(hand)
    curved = eq.replace("0.02 0.5 0 0 0", "0.02 0.5 0.1 0 0")
    hand = load_hand(_toy(tmp_path / "curved", extra=curved))
    assert _mimic_tags(hand.urdf_path)["f_twist"]["multiplier"] == "0.5"
    assert "is nonlinear; only its linear part" in _description(hand)


def test_followers_that_cannot_mimic_stay_independent_with_a_note(tmp_path):
    # the leader frozen: the follower stays a joint of its own (keeping the leader's effort)
    hand = load_hand(_toy(tmp_path / "frozen", freeze={"f_flex": 0.3}))
    assert hand.mimic_joints == {} and hand.actuated_joints == ("f_abd", "f_dip", "f_twist")
    assert "written as independent joints: its leader f_flex is frozen" in _description(hand)
    assert hand.joint_limits["f_dip"].effort == 0.8
    # a second coupling back to the follower's leader would close a cycle: the first one wins
    eq = '<equality><joint joint1="f_flex" joint2="f_dip" polycoef="0 1.25 0 0 0"/></equality>'
    hand = load_hand(_toy(tmp_path / "cycle", extra=eq))
    assert {j: m.master for j, m in hand.mimic_joints.items()} == {"f_dip": "f_flex"}
    assert "f_flex = 1.25 x f_dip + 0 written as independent joints: following f_dip would close a cycle" \
        in _description(hand)


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"rest_pose": {"f_dip": 0.1}}, "rest_pose.f_dip"),
     ({"fingers": {"thumb": {"segments": {"distal": {"body": "f_dist", "pad": [0, -1, 0]}},
                             "tip": {"pos": [0, 0, 0.02]}}},
       "thumb_abduction": {"joint": "f_dip", "abducted_min": 0.1}}, "thumb_abduction.joint")],
    ids=["rest_pose", "thumb_abduction"],
)
def test_mapping_fields_naming_a_follower_name_its_leader(tmp_path, changes, field):
    folder = _toy(tmp_path / "toy", **changes)
    with pytest.raises(MetadataError) as err:
        load_hand(folder)
    msg = str(err.value)
    assert msg.startswith(f"{(folder / 'mjcf.json').resolve()}: field {field}: expected a joint that is not "
                          "a coupling follower (f_dip is written as a mimic of f_flex"), msg
    assert "name 'f_flex' instead, or set \"couplings\": \"independent\"" in msg and "hand.json" not in msg
