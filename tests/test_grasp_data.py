"""Validation of a hand's grasps.json (handsim.grasp_data)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from handsim.errors import GraspDataError
from handsim.grasp_data import load_hand_grasps

JOINTS = ("a", "b", "c")
LOWER = np.array([-1.0, 0.0, 0.0])
UPPER = np.array([1.0, 1.5, 2.0])
IDS = ("tip_pinch", "large_diameter")
GOOD = {
    "object_xyz": [0.1, 0.0, 0.05],
    "object_quat_wxyz": [1, 0, 0, 0],
    "preshape": {"a": 0.5},
    "close": {"b": 1.2},
    "note": "test",
}


EFFORT = np.array([3.0, 2.0, 0.6])
MIMIC = {"c_follower": "c"}


def _load(tmp_path, grasps, rest=None):
    (tmp_path / "grasps.json").write_text(json.dumps({"schema": 1, "grasps": grasps}))
    return load_hand_grasps(tmp_path, JOINTS, LOWER, UPPER, IDS, rest=rest, mimic=MIMIC, effort=EFFORT)


def test_good_file_fills_defaults(tmp_path):
    plans = _load(tmp_path, {"tip_pinch": GOOD}, rest=np.array([0.0, 0.1, 0.2]))
    plan = plans["tip_pinch"]
    np.testing.assert_allclose(plan.preshape, [0.5, 0.1, 0.2])  # unlisted joints: rest pose
    np.testing.assert_allclose(plan.close, [0.5, 1.2, 0.2])  # unlisted joints: keep pre-shape
    assert plan.note == "test"


def test_effort_caps_lower_named_joints_only(tmp_path):
    plans = _load(tmp_path, {"tip_pinch": {**GOOD, "effort": {"a": 1.5, "c": 0.6}}, "large_diameter": GOOD})
    capped = plans["tip_pinch"]
    np.testing.assert_array_equal(capped.effort, [1.5, 2.0, 0.6])  # unnamed joints: the URDF's
    assert capped.lowered_efforts(JOINTS, EFFORT) == {"a": 1.5}  # a cap equal to the URDF's lowers nothing
    assert plans["large_diameter"].effort is None
    assert plans["large_diameter"].lowered_efforts(JOINTS, EFFORT) == {}


@pytest.mark.parametrize(
    ("effort", "fragment"),
    [
        ({"a": 3.5}, "tip_pinch.effort.a: 3.5 is above the joint's URDF effort: a plan may lower a motor's cap, "
                     "never raise it (allowed: (0, 3]"),
        ({"b": 0}, "effort.b: expected a cap > 0 (a motor capped at 0 cannot move; allowed: (0, 2]"),
        ({"b": -1.0}, "expected a cap > 0"),
        ({"b": True}, "effort.b: expected a number (allowed: (0, 2], the joint's URDF effort being 2 [N m or N]), got true"),
        ({"b": "1"}, 'got "1"'),
        ({"b": None}, "got null"),
        ({"bb": 1.0}, "unknown joint 'bb'"),
        ({"c_follower": 0.1}, "mimic joint following 'c'"),
        ([1.0, 1.0, 1.0], "expected an object mapping joint names to effort caps"),
    ],
)
def test_effort_cap_errors(tmp_path, effort, fragment):
    with pytest.raises(GraspDataError) as info:
        _load(tmp_path, {"tip_pinch": {**GOOD, "effort": effort}})
    assert fragment in str(info.value)
    assert "grasps.json" in str(info.value)


def test_effort_caps_need_the_urdf_efforts(tmp_path):
    (tmp_path / "grasps.json").write_text(json.dumps({"schema": 1, "grasps": {"tip_pinch": {**GOOD, "effort": {"a": 1}}}}))
    with pytest.raises(GraspDataError, match=r"load_hand_grasps\(effort=...\) was not given the hand's URDF efforts"):
        load_hand_grasps(tmp_path, JOINTS, LOWER, UPPER, IDS)


def test_missing_file_is_no_plans(tmp_path):
    assert load_hand_grasps(tmp_path, JOINTS, LOWER, UPPER, IDS) == {}


@pytest.mark.parametrize(
    ("entry", "grasp_id", "fragment"),
    [
        (GOOD, "tip_pinc", "did you mean 'tip_pinch'"),
        ({**GOOD, "preshape": {"bb": 0.1}}, "tip_pinch", "unknown joint 'bb'"),
        ({**GOOD, "close": {"b": 2.0}}, "tip_pinch", "outside the joint's limits"),
        ({**GOOD, "object_quat_wxyz": [1, 1, 0, 0]}, "tip_pinch", "unit quaternion"),
        ({**GOOD, "object_xyz": [0, 0]}, "tip_pinch", "list of 3 numbers"),
        ({k: v for k, v in GOOD.items() if k != "close"}, "tip_pinch", "missing field 'close'"),
        ({**GOOD, "clsoe": {}}, "tip_pinch", "did you mean 'close'"),
        ({**GOOD, "preshape": {"a": float("nan")}}, "tip_pinch", "finite number"),
        # JSON true/false are not numbers (Python's bool is an int)
        ({**GOOD, "preshape": {"a": True}}, "tip_pinch", "preshape.a: expected a finite number, got True"),
        ({**GOOD, "object_xyz": [True, 0, 0.05]}, "tip_pinch", "list of 3 numbers"),
        ({**GOOD, "object_quat_wxyz": [True, False, False, False]}, "tip_pinch", "list of 4 numbers"),
    ],
)
def test_errors_name_file_and_field(tmp_path, entry, grasp_id, fragment):
    with pytest.raises(GraspDataError) as info:
        _load(tmp_path, {grasp_id: entry})
    assert fragment in str(info.value)
    assert "grasps.json" in str(info.value)


def test_invalid_json(tmp_path):
    (tmp_path / "grasps.json").write_text("{not json")
    with pytest.raises(GraspDataError, match="invalid JSON"):
        load_hand_grasps(tmp_path, JOINTS, LOWER, UPPER, IDS)


def test_a_file_that_is_not_utf8_is_a_grasp_data_error(tmp_path):
    # Review: bytes that are not UTF-8 raised UnicodeDecodeError (a traceback, exit 3).
    (tmp_path / "grasps.json").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(GraspDataError, match="not UTF-8 text") as info:
        load_hand_grasps(tmp_path, JOINTS, LOWER, UPPER, IDS)
    assert str(tmp_path / "grasps.json") in str(info.value)


@pytest.mark.parametrize(("where", "key"), [("grasps", "tip_pinch"), ("close", "b")])
def test_a_key_given_twice_is_an_error_not_last_one_wins(tmp_path, where, key):
    # Review R16 #9: json.loads kept the last plan (or target) of a repeated key, silently.
    entry = json.dumps(GOOD)
    if where == "grasps":
        text = f'{{"schema": 1, "grasps": {{"tip_pinch": {entry}, "tip_pinch": {entry}}}}}'
    else:
        text = '{"schema": 1, "grasps": {"tip_pinch": ' + entry.replace('"close": {"b": 1.2}',
                                                                      '"close": {"b": 1.2, "b": 0.3}') + "}}"
    assert json.loads(text)  # valid JSON, which the plain reader takes
    (tmp_path / "grasps.json").write_text(text)
    with pytest.raises(GraspDataError, match=rf"grasps.json: duplicate key '{key}' in one JSON object"):
        load_hand_grasps(tmp_path, JOINTS, LOWER, UPPER, IDS)


def test_a_key_given_twice_in_hand_json_or_the_taxonomy_is_an_error(tmp_path):
    import shutil

    from handsim.data import hand_dir
    from handsim.errors import MetadataError
    from handsim.grasps import load_taxonomy
    from handsim.hand import load_hand

    folder = tmp_path / "hand"
    shutil.copytree(hand_dir("default_hand"), folder)
    meta = folder / "hand.json"
    text = meta.read_text()
    meta.write_text(text.replace('"name":', '"palm_link": "palm", "name":', 1))
    with pytest.raises(MetadataError, match=r"hand.json: duplicate key 'palm_link'"):
        load_hand(folder)
    from handsim.data import grasps_dir

    taxonomy = tmp_path / "grasps"
    shutil.copytree(grasps_dir(), taxonomy)
    first = min(taxonomy.glob("*.json"))
    first.write_text(first.read_text().replace("{", '{"schema": 1, ', 1))
    with pytest.raises(GraspDataError, match=rf"{first.name}: duplicate key 'schema'"):
        load_taxonomy(taxonomy)


def test_schema_true_is_not_schema_1(tmp_path):
    (tmp_path / "grasps.json").write_text(json.dumps({"schema": True, "grasps": {}}))
    with pytest.raises(GraspDataError, match='"schema": 1'):
        load_hand_grasps(tmp_path, JOINTS, LOWER, UPPER, IDS)
