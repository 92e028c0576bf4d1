"""The taxonomy data and its loader, checked against the reference table of Feix et al. 2016.

The reference (/work/shared/reference/feix-grasp-taxonomy.md) is parsed at test time, so the
data is compared with an independent source, not with itself.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from handsim import grasps
from handsim.data import grasps_dir
from handsim.errors import GraspDataError, UnknownNameError
from handsim.grasps import ALL_REGION_LABELS, GraspType, load_taxonomy

# The taxonomy table (published facts, Feix et al. 2016, with its citation): the project's shared
# reference folder beside the checkout when it is there, else the copy under tests/data, so the
# comparison runs in any clone; the copy is checked against the shared file when both exist.
SHARED_REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "feix-grasp-taxonomy.md"
REFERENCE_COPY = Path(__file__).resolve().parent / "data" / "feix-grasp-taxonomy.md"
REFERENCE = SHARED_REFERENCE if SHARED_REFERENCE.is_file() else REFERENCE_COPY
FINGER_BY_DIGIT = {1: "thumb", 2: "index", 3: "middle", 4: "ring", 5: "little"}
ALL_IDS = grasps.ids()


def _digits(cell: str) -> list[str]:
    """'2-5' -> [index, middle, ring, little]; '2*' -> [index]; '(1)' -> [thumb]."""
    cell = cell.replace("*", "").replace("(", "").replace(")", "").strip()
    if "-" in cell:
        lo, hi = (int(x) for x in cell.split("-"))
        return [FINGER_BY_DIGIT[i] for i in range(lo, hi + 1)]
    return [FINGER_BY_DIGIT[int(cell)]]


def _parse_reference() -> dict[int, dict]:
    rows = {}
    for line in REFERENCE.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\|\s*(\d+)\s*\|", line)
        if not m:
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        number, name, typ, opp, vf2, thumb, note = cells
        vf3 = re.search(r"VF3:\s*(\(?\d\)?)", note)
        rows[int(number)] = {
            "name": name,
            "type": typ.lower(),
            "opposition": opp.lower(),
            "vf2": _digits(vf2),
            "thumb": {"abd": "abducted", "add": "adducted"}[thumb.replace("*", "").strip().lower()],
            "vf3": _digits(vf3.group(1)) if vf3 else [],
            "disputed": "*" in vf2 or "*" in thumb or "*" in typ or "*" in opp,
        }
    return rows


@pytest.fixture(scope="module")
def reference() -> dict[int, dict]:
    assert REFERENCE.is_file(), f"reference table missing: neither {SHARED_REFERENCE} nor {REFERENCE_COPY}"
    rows = _parse_reference()
    assert sorted(rows) == list(range(1, 34)), "reference table parse failed"
    return rows


def test_reference_copy_matches_the_shared_table() -> None:
    if not SHARED_REFERENCE.is_file():
        pytest.skip(f"no shared reference folder beside this checkout ({SHARED_REFERENCE}); the copy is used")
    assert REFERENCE_COPY.read_text(encoding="utf-8") == SHARED_REFERENCE.read_text(encoding="utf-8")


# ----------------------------------------------------------------------------------------------
# Registry-driven: every grasp


@pytest.mark.parametrize("gid", ALL_IDS)
def test_grasp_matches_reference_table(gid: str, reference: dict[int, dict]) -> None:
    g = grasps.get(gid)
    row = reference[g.number]
    assert g.name == row["name"]
    assert g.type == row["type"]
    assert g.opposition == row["opposition"]
    assert list(g.vf2) == row["vf2"]
    assert g.thumb == row["thumb"]
    assert list(g.vf3) == row["vf3"]
    assert g.source is not None and g.source.name == f"{g.number:02d}_{g.id}.json"
    for tag in (g.type, g.opposition, f"thumb_{g.thumb}"):
        assert g in grasps.by_tag(tag)
    if row["disputed"]:
        assert "disputed" in g.notes.lower(), f"{gid}: disputed cell without a note"
        assert "disputed" in g.tags


@pytest.mark.parametrize("gid", ALL_IDS)
def test_signature_consistent_with_columns(gid: str) -> None:
    g = grasps.get(gid)
    sig = g.signature

    def group_matches(label: str) -> bool:
        return any(any(fnmatch.fnmatchcase(label, p) for p in group) for group in sig.required)

    def forbidden(label: str) -> bool:
        return any(fnmatch.fnmatchcase(label, p) for p in sig.forbidden)

    palm_labels = [lab for lab in ALL_REGION_LABELS if lab.startswith("palm.")]
    if g.opposition == "palm":
        assert group_matches("palm.pad"), "palm opposition must require palm contact"
    if g.opposition == "pad":
        assert all(forbidden(lab) for lab in palm_labels), "pad opposition must forbid the palm"
        thumb_back = [lab for lab in ALL_REGION_LABELS if lab.startswith("thumb.") and lab.endswith(".dorsal")]
        assert thumb_back and all(forbidden(lab) for lab in thumb_back), "pad opposition must forbid the thumb's back"
        thumb_group = any(all(p.startswith("thumb.") for p in grp) for grp in sig.required)
        assert thumb_group, "pad opposition needs the thumb"
    if g.opposition == "side":
        assert any(p.endswith(".side") for grp in sig.required for p in grp), "side opposition must use sides"
    # Each VF2 finger has a required group of its own.
    for finger in g.vf2:
        own_group = any(all(p.startswith(f"{finger}.") for p in grp) for grp in sig.required)
        assert own_group, f"VF2 {finger} not required"
    # Thumb: the column, or 'any' with a documented reason.
    if sig.thumb == "any":
        assert "thumb" in g.notes.lower() and "not involved" in g.notes.lower()
        assert "thumb.*" in sig.forbidden
    else:
        assert sig.thumb == g.thumb
    # No label can be both required (as the only way to satisfy a group) and forbidden.
    for group in sig.required:
        ok = [lab for lab in ALL_REGION_LABELS if any(fnmatch.fnmatchcase(lab, p) for p in group)]
        assert ok and not all(forbidden(lab) for lab in ok), f"group {group} unsatisfiable"
    assert sig.rationale and "\n" not in sig.rationale


@pytest.mark.parametrize("gid", ALL_IDS)
def test_test_object_is_physical(gid: str) -> None:
    obj = grasps.get(gid).object
    assert 0.3 <= obj.friction <= 1.0
    assert all(h > 0 for h in obj.half_extents())
    # Volume from the textbook formulas, to catch unit slips (grams for kg, cm for m).
    if obj.shape == "sphere":
        vol = 4 / 3 * math.pi * obj.radius**3
    elif obj.shape == "cylinder":
        vol = math.pi * obj.radius**2 * obj.length
    elif obj.shape == "capsule":
        # length is tip to tip: a cylinder of length - 2 r plus a sphere
        vol = math.pi * obj.radius**2 * (obj.length - 2 * obj.radius) + 4 / 3 * math.pi * obj.radius**3
    elif obj.shape == "box":
        vol = math.prod(obj.size)
    else:
        # A torus stands for a loaded bag's handle: its mass is the bag's, so no density check.
        assert obj.minor_radius < obj.major_radius and 0.1 <= obj.mass <= 5.0
        return
    density = obj.mass / vol  # [kg/m^3]
    assert 100 <= density <= 9000, f"{gid}: density {density:.0f} kg/m^3 is not a real material"


def test_counts_and_order() -> None:
    assert len(grasps.all_grasps()) == 33
    assert [g.number for g in grasps.all_grasps()] == list(range(1, 34))
    assert grasps.ids() == tuple(g.id for g in grasps.all_grasps())
    assert len(grasps.by_tag("power")) == 15
    assert len(grasps.by_tag("intermediate")) == 6
    assert len(grasps.by_tag("precision")) == 12
    for tag in grasps.tags():
        numbers = [g.number for g in grasps.by_tag(tag)]
        assert numbers == sorted(numbers)


def test_lookup_by_id_number_and_string() -> None:
    g = grasps.get("tip_pinch")
    assert g is grasps.get(24) is grasps.get("24")
    assert g.name == "Tip Pinch" and g.vf2 == ("index",)
    assert grasps.default_taxonomy() is grasps.default_taxonomy()


def test_unknown_grasp_suggests_close_match() -> None:
    with pytest.raises(UnknownNameError, match=r"did you mean 'tip_pinch'"):
        grasps.get("tip_pinc")
    with pytest.raises(UnknownNameError, match=r"1\.\.33"):
        grasps.get(34)
    with pytest.raises(UnknownNameError):
        grasps.get(True)
    with pytest.raises(UnknownNameError, match=r"did you mean 'power'"):
        grasps.by_tag("powr")
    assert "tip_pinch" in grasps.default_taxonomy() and "tip_pinc" not in grasps.default_taxonomy()


def test_loaded_data_is_frozen() -> None:
    g = grasps.get(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.number = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.object.mass = 0.0  # type: ignore[misc]
    assert isinstance(g, GraspType) and isinstance(g.signature.required, tuple)


def test_readme_keeps_citation_and_disputed_notes(reference: dict[int, dict]) -> None:
    text = (grasps_dir() / "README.md").read_text(encoding="utf-8")
    assert "Feix" in text and "Human-Machine Systems" in text and "2016" in text
    for number, row in reference.items():
        if row["disputed"]:
            assert grasps.get(number).name in text, f"README lacks the note on disputed grasp {number}"


def test_pure_python_no_pybullet() -> None:
    code = "import sys, handsim.grasps, handsim.scoring.signature; print('pybullet' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ----------------------------------------------------------------------------------------------
# Broken data in tmp_path


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    folder = tmp_path / "grasps"
    shutil.copytree(grasps_dir(), folder)
    return folder


def _edit(folder: Path, name: str, fn) -> Path:
    path = folder / name
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))
    return path


def test_copy_loads(broken: Path) -> None:
    assert load_taxonomy(broken).ids() == grasps.ids()


_MUTATIONS = {
    "missing_field": (lambda d: d.pop("thumb"), r"'<top>'.*missing field.*thumb"),
    "extra_field": (lambda d: d.update(colour="red"), r"unknown field 'colour'"),
    "misspelt_field": (lambda d: d.update(oposition=d.pop("opposition")), r"did you mean 'opposition'"),
    "number_as_string": (lambda d: d.update(number="24"), r"field 'number': expected an integer"),
    "bad_type_enum": (
        lambda d: d.update(type="powerful"),
        r"field 'type': expected one of \['power', 'intermediate', 'precision'\]",
    ),
    "bad_finger": (lambda d: d.update(vf2=["pinky"]), r"field 'vf2\[0\]': expected one of .*'little'"),
    "negative_radius": (lambda d: d["object"].update(radius=-0.01), r"field 'object.radius'.*positive length"),
    "friction_too_high": (lambda d: d["object"].update(friction=2.5), r"field 'object.friction'"),
    "friction_zero": (lambda d: d["object"].update(friction=0), r"field 'object.friction'"),
    "mass_zero": (lambda d: d["object"].update(mass=0), r"field 'object.mass'"),
    "wrong_shape_field": (lambda d: d["object"].update(length=0.1), r"field 'object'.*unknown field 'length'"),
    "bad_shape": (lambda d: d["object"].update(shape="cube"), r"field 'object.shape': expected one of .*'box'"),
    "slug_mismatch": (lambda d: d.update(id="tip_pinchh"), r"field 'id'.*24_tip_pinchh.json"),
    "bad_pattern": (lambda d: d["signature"]["required"][1].__setitem__(0, "index.distl.tip"),
                    r"field 'signature.required\[1\]\[0\]'.*did you mean 'index.distal.tip'"),
    "thumb_contradiction": (lambda d: d["signature"].update(thumb="adducted"), r"field 'signature.thumb'"),
    "missing_type_tag": (lambda d: d.update(tags=["pad"]), r"field 'tags'.*'precision'"),
    "empty_group": (lambda d: d["signature"]["required"].append([]), r"field 'signature.required\[2\]'"),
}


@pytest.mark.parametrize("case", sorted(_MUTATIONS))
def test_broken_field_names_file_and_field(broken: Path, case: str) -> None:
    mutate, pattern = _MUTATIONS[case]
    _edit(broken, "24_tip_pinch.json", mutate)
    with pytest.raises(GraspDataError, match=pattern) as info:
        load_taxonomy(broken)
    assert "24_tip_pinch.json" in str(info.value)


_ALONG_MUTATIONS = {
    "unknown_finger": ([{"finger": "pinky", "max_angle_deg": 45}], r"'signature.along\[0\].finger': expected one of .*'little'"),
    "angle_zero": ([{"finger": "index", "max_angle_deg": 0}], r"'signature.along\[0\].max_angle_deg'.*> 0.0 and <= 90.0"),
    "angle_over_90": ([{"finger": "index", "max_angle_deg": 95}], r"'signature.along\[0\].max_angle_deg'.*got 95"),
    "angle_nan": ([{"finger": "index", "max_angle_deg": float("nan")}], r"max_angle_deg'.*finite number"),
    "missing_angle": ([{"finger": "index"}], r"'signature.along\[0\]'.*missing field.*max_angle_deg"),
    "misspelt_key": ([{"fingr": "index", "max_angle_deg": 45}], r"did you mean 'finger'"),
    "twice": ([{"finger": "index", "max_angle_deg": 45}, {"finger": "index", "max_angle_deg": 30}],
              r"'signature.along': expected each finger once"),
    "empty": ([], r"'signature.along': expected a non-empty list"),
}


@pytest.mark.parametrize("case", sorted(_ALONG_MUTATIONS))
def test_broken_along_names_file_and_field(broken: Path, case: str) -> None:
    along, pattern = _ALONG_MUTATIONS[case]
    _edit(broken, "17_index_finger_extension.json", lambda d: d["signature"].update(along=along))
    with pytest.raises(GraspDataError, match=pattern) as info:
        load_taxonomy(broken)
    assert "17_index_finger_extension.json" in str(info.value)


@pytest.mark.parametrize("name, obj", [
    ("24_tip_pinch.json", None),  # a marble: a sphere has no long axis
    ("17_index_finger_extension.json", {"shape": "box", "size": [0.05, 0.05, 0.02]}),  # two longest edges
    ("17_index_finger_extension.json", {"shape": "cylinder", "radius": 0.04, "length": 0.02}),  # a disk
])
def test_along_needs_an_object_with_one_long_axis(broken: Path, name: str, obj: dict | None) -> None:
    def mutate(d: dict) -> None:
        d["signature"]["along"] = [{"finger": "index", "max_angle_deg": 45}]
        if obj is not None:
            d["object"] = {**{k: d["object"][k] for k in ("mass", "friction", "description")}, **obj}
    _edit(broken, name, mutate)
    with pytest.raises(GraspDataError, match=r"'signature.along': the object .* has no single longest axis"):
        load_taxonomy(broken)


def test_long_axis_of_each_shape() -> None:
    box = grasps.get("index_finger_extension").object  # 20 x 2.5 x 1.8 cm
    assert box.long_axis() == 0
    assert dataclasses.replace(box, size=(0.02, 0.01, 0.2)).long_axis() == 2
    pen = dataclasses.replace(box, shape="cylinder", size=None, radius=0.004, length=0.14)
    assert pen.long_axis() == 2 and dataclasses.replace(pen, length=0.008).long_axis() is None  # 2 r = length
    assert grasps.get("tip_pinch").object.long_axis() is None


def test_box_size_must_be_three_positive_lengths(broken: Path) -> None:
    _edit(broken, "09_palmar_pinch.json", lambda d: d["object"].update(size=[0.08, 0.05]))
    with pytest.raises(GraspDataError, match=r"09_palmar_pinch.json: field 'object.size'"):
        load_taxonomy(broken)


def test_json_syntax_error_names_file_and_line(broken: Path) -> None:
    path = broken / "24_tip_pinch.json"
    path.write_text(path.read_text().replace('"tip_pinch",', '"tip_pinch"', 1))
    with pytest.raises(GraspDataError, match=r"24_tip_pinch.json: invalid JSON at line \d+"):
        load_taxonomy(broken)


def test_duplicate_number(broken: Path) -> None:
    _edit(broken, "33_inferior_pincer.json", lambda d: d.update(number=24))
    (broken / "33_inferior_pincer.json").rename(broken / "24_inferior_pincer.json")
    with pytest.raises(GraspDataError, match=r"duplicate number 24"):
        load_taxonomy(broken)


def test_duplicate_id(broken: Path) -> None:
    (broken / "33_inferior_pincer.json").unlink()
    shutil.copy(broken / "24_tip_pinch.json", broken / "33_tip_pinch.json")
    _edit(broken, "33_tip_pinch.json", lambda d: d.update(number=33))
    with pytest.raises(GraspDataError, match=r"33_tip_pinch.json: field 'id': duplicate id 'tip_pinch'"):
        load_taxonomy(broken)


def test_missing_number(broken: Path) -> None:
    (broken / "07_prismatic_3_finger.json").unlink()
    with pytest.raises(GraspDataError, match=r"numbers \[7\] missing"):
        load_taxonomy(broken)


def test_bad_file_name(broken: Path) -> None:
    shutil.copy(broken / "24_tip_pinch.json", broken / "tip_pinch_copy.json")
    with pytest.raises(GraspDataError, match=r"tip_pinch_copy.json: file name must be"):
        load_taxonomy(broken)


@pytest.mark.parametrize("gid", ALL_IDS)
def test_object_spec_accepted_by_sim(gid: str) -> None:
    objects = pytest.importorskip("handsim.sim.objects", reason="the simulation layer (PyBullet) is not available")
    obj = grasps.get(gid).object
    spec = obj.as_spec()
    assert set(spec) == {"shape", "mass", "friction", "description", *grasps.OBJECT_SHAPES[obj.shape]}
    inertia = objects.object_inertia(spec)  # validates the spec with the simulator's own rules
    assert inertia.shape == (3,) and (inertia > 0).all()


def test_capsule_length_is_tip_to_tip(broken: Path) -> None:
    _edit(broken, "05_light_tool.json", lambda d: d["object"].update(radius=0.0125, length=0.02))
    with pytest.raises(GraspDataError, match=r"05_light_tool.json: field 'object.length'.*tip to tip"):
        load_taxonomy(broken)
