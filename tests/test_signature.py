"""Contact-signature matching on hand-made contact sets over a label vocabulary built here.

The independent source is a plain-python reference matcher (sets and fnmatch, one trial at a
time) written in this file from the rule in grasps/README.md.
"""

from __future__ import annotations

import fnmatch

import numpy as np
import pytest

from handsim import grasps
from handsim.errors import ConfigurationError, UnknownNameError
from handsim.grasps import Signature
from handsim.scoring.signature import CompiledSignature, match_signature

SEGMENTS = {
    "thumb": ("metacarpal", "proximal", "distal"),
    **{f: ("proximal", "middle", "distal") for f in ("index", "middle", "ring", "little")},
}


def vocabulary(fingers=("thumb", "index", "middle", "ring", "little")) -> tuple[str, ...]:
    """Every label models/README.md allows for a hand with these fingers, plus a non-region link."""
    labels = ["palm.pad", "palm.side", "palm.dorsal"]
    for f in fingers:
        for seg in SEGMENTS[f]:
            labels += [f"{f}.{seg}.pad", f"{f}.{seg}.side", f"{f}.{seg}.dorsal"]
            if seg == "distal":
                labels.append(f"{f}.{seg}.tip")
    return tuple(labels + ["other.wrist_mount"])


LABELS = vocabulary()
LABELS4 = vocabulary(("thumb", "index", "middle", "ring"))

POWER_WRAP = {"palm.pad", "thumb.proximal.pad", "thumb.distal.pad"} | {
    f"{f}.{seg}.pad" for f in ("index", "middle", "ring", "little") for seg in ("proximal", "middle", "distal")
}
TIP_PINCH = {"thumb.distal.tip", "index.distal.tip"}
PALMAR_PINCH = {"thumb.distal.pad", "index.distal.pad"}


def row(contacts: set[str], labels: tuple[str, ...] = LABELS) -> np.ndarray:
    unknown = contacts - set(labels)
    assert not unknown, unknown
    return np.array([lab in contacts for lab in labels], dtype=bool)


def reference_verdict(sig: Signature, contacts: set[str], thumb_abducted: bool,
                      along_deg: tuple[float, ...] = ()) -> bool:
    """The rule, written out loop by loop."""
    for spec, angle in zip(sig.along, along_deg, strict=True):
        if not angle <= spec.max_angle_deg:  # NaN: the hand has no such finger
            return False
    for group in sig.required:
        if not any(fnmatch.fnmatchcase(c, p) for c in contacts for p in group):
            return False
    for p in sig.forbidden:
        if any(fnmatch.fnmatchcase(c, p) for c in contacts):
            return False
    if sig.thumb == "abducted":
        return thumb_abducted
    if sig.thumb == "adducted":
        return not thumb_abducted
    return True


def verdict(gid: str, contacts: set[str], thumb_abducted: bool, labels: tuple[str, ...] = LABELS,
            along_deg: tuple[float, ...] | None = None):
    sig = grasps.get(gid).signature
    if along_deg is None:  # the fingers lie along the object
        along_deg = (0.0,) * len(sig.along)
    return match_signature(sig, labels, row(contacts, labels), thumb_abducted, along_deg=along_deg)


# ----------------------------------------------------------------------------------------------


def test_power_wrap_passes_wraps_and_fails_pinches() -> None:
    for gid in ("large_diameter", "medium_wrap", "power_sphere", "power_disk", "small_diameter"):
        assert verdict(gid, POWER_WRAP, True).matched, gid
    for gid in ("tip_pinch", "palmar_pinch", "inferior_pincer"):
        m = verdict(gid, POWER_WRAP, True)
        assert not m.matched
        assert any(r.startswith("forbidden palm.* touched") for r in m.reasons())


@pytest.mark.parametrize("gid", [g.id for g in grasps.all_grasps() if g.opposition in ("pad", "side")])
@pytest.mark.parametrize("thumb_abducted", [True, False])
def test_power_wrap_never_satisfies_a_pad_or_side_grasp(gid: str, thumb_abducted: bool) -> None:
    # Even with every side and tip touched as well, the palm contact must rule the pinch out.
    everything_but_dorsal = POWER_WRAP | {lab for lab in LABELS if lab.endswith((".side", ".tip"))}
    for contacts in (POWER_WRAP, everything_but_dorsal):
        assert not verdict(gid, contacts, thumb_abducted).matched


@pytest.mark.parametrize("gid", [g.id for g in grasps.all_grasps() if g.opposition == "pad"])
def test_pad_opposition_fails_when_the_object_lies_on_the_thumbs_back(gid: str) -> None:
    # Pad opposition is between the thumb's pad (or tip) and the finger pads: with the book
    # pressed by the back of the thumb (extension type, a candidate plan of session 11: 55 N on
    # thumb.proximal.dorsal, 46 N on the thumb tip) the type is not formed, whatever else touches.
    sig = grasps.get(gid).signature
    abducted = sig.thumb != "adducted"
    ok = set()
    for group in sig.required:  # one label per required group, none forbidden
        ok.add(next(lab for lab in LABELS if any(fnmatch.fnmatchcase(lab, p) for p in group)
                    and not any(fnmatch.fnmatchcase(lab, f) for f in sig.forbidden)))
    assert verdict(gid, ok, abducted).matched
    # The distal segment's back: the pinches also forbid the thumb's proximal segment outright.
    m = verdict(gid, ok | {"thumb.distal.dorsal"}, abducted)
    assert not m.matched and m.reasons() == ["forbidden thumb.*.dorsal touched (thumb.distal.dorsal)"]
    assert reference_verdict(sig, ok | {"thumb.distal.dorsal"}, abducted) is False


def test_tip_pinch_set() -> None:
    assert verdict("tip_pinch", TIP_PINCH, True).matched
    m = verdict("large_diameter", TIP_PINCH, True)
    assert not m.matched
    assert "required palm.pad not in contact" in m.reasons()
    assert "required little.*.pad|little.distal.tip not in contact" in m.reasons()
    # Tip to tip is not the pad-to-pad palmar pinch; pad to pad satisfies both pinches.
    assert not verdict("palmar_pinch", TIP_PINCH, True).matched
    assert verdict("palmar_pinch", PALMAR_PINCH, True).matched
    assert verdict("tip_pinch", PALMAR_PINCH, True).matched
    # A third finger spoils a pinch.
    m = verdict("tip_pinch", TIP_PINCH | {"middle.distal.tip"}, True)
    assert not m.matched and m.reasons() == ["forbidden middle.* touched (middle.distal.tip)"]


@pytest.mark.parametrize("gid", ["tip_pinch", "palmar_pinch"])
def test_a_web_wrap_is_not_a_pinch(gid: str) -> None:
    """A small object held in the thumb-index web touches the distal pads too; the pinches are
    held between the distal segments alone (grasps/README.md)."""
    web = TIP_PINCH | PALMAR_PINCH
    assert verdict(gid, web, True).matched
    for lower in ("thumb.metacarpal.pad", "thumb.proximal.pad", "thumb.proximal.side",
                  "index.proximal.pad", "index.middle.pad", "index.middle.side"):
        m = verdict(gid, web | {lower}, True)
        assert not m.matched, lower
        assert any(r.startswith("forbidden ") and r.endswith(f"({lower})") for r in m.reasons()), m.reasons()
        assert reference_verdict(grasps.get(gid).signature, web | {lower}, True) is False


def test_reasons_name_the_missing_group() -> None:
    m = verdict("tip_pinch", {"index.distal.tip"}, True)
    assert m.reasons() == ["required thumb.distal.tip|thumb.distal.pad not in contact"]
    assert m.missing.tolist() == [True, False]
    # palm, middle, ring, little, the thumb's back, the thumb's and index's lower segments
    assert m.forbidden_hit.tolist() == [False] * 9
    assert verdict("tip_pinch", TIP_PINCH, True).reasons() == []


def test_thumb_state() -> None:
    m = verdict("tip_pinch", TIP_PINCH, False)
    assert not m.matched and not m.thumb_ok
    assert m.reasons() == ["thumb adducted, grasp needs abducted"]
    lateral = {"thumb.distal.pad", "index.middle.side"}
    assert verdict("lateral", lateral, False).matched
    m = verdict("lateral", lateral, True)
    assert not m.matched and m.reasons() == ["thumb abducted, grasp needs adducted"]
    # The adduction grip does not involve the thumb: either position, but no thumb contact.
    between_fingers = {"index.middle.side", "middle.middle.side"}
    assert verdict("adduction_grip", between_fingers, True).matched
    assert verdict("adduction_grip", between_fingers, False).matched
    assert not verdict("adduction_grip", between_fingers | {"thumb.distal.pad"}, False).matched


def test_batched_equals_one_at_a_time_and_reference() -> None:
    rng = np.random.default_rng(7)
    batch = 48
    # Sparse random contact sets plus the hand-made ones, so both verdicts occur.
    contact = rng.random((batch, len(LABELS))) < 0.12
    contact[0], contact[1], contact[2] = row(POWER_WRAP), row(TIP_PINCH), row(PALMAR_PINCH)
    thumb = rng.random(batch) < 0.5
    thumb[:3] = True
    n_matched = 0
    for g in grasps.all_grasps():
        compiled = CompiledSignature.compile(g.signature, LABELS)
        # angles either side of each 'along' limit, and a NaN (no such finger)
        along = rng.uniform(0.0, 90.0, (batch, len(g.signature.along)))
        along[3:6] = 0.0
        along[6:8] = np.nan
        batched = compiled.match(contact, thumb, along_deg=along)
        assert batched.matched.shape == (batch,)
        assert batched.missing.shape == (batch, len(g.signature.required))
        assert batched.forbidden_hit.shape == (batch, len(g.signature.forbidden))
        for b in range(batch):
            single = compiled.match(contact[b], thumb[b], along_deg=along[b])
            assert single.matched.shape == ()
            assert bool(single.matched) == bool(batched.matched[b])
            np.testing.assert_array_equal(single.missing, batched.missing[b])
            np.testing.assert_array_equal(single.forbidden_hit, batched.forbidden_hit[b])
            assert single.reasons() == batched.reasons(b)
            contacts = {lab for lab, c in zip(LABELS, contact[b]) if c}
            assert bool(batched.matched[b]) == reference_verdict(g.signature, contacts, bool(thumb[b]), tuple(along[b]))
            assert (batched.reasons(b) == []) == bool(batched.matched[b])
        n_matched += int(batched.matched.sum())
    assert n_matched > 0


def test_four_finger_hand() -> None:
    # Required little-finger group: the hand cannot do the grasp, whatever it touches.
    m = verdict("large_diameter", {lab for lab in LABELS4 if not lab.startswith("other.")}, True, LABELS4)
    assert not m.matched
    assert "hand has no region for little.*.pad|little.distal.tip" in m.reasons()
    # A forbidden little.* matching nothing is fine.
    assert verdict("tip_pinch", TIP_PINCH, True, LABELS4).matched
    assert verdict("tripod", TIP_PINCH | {"middle.distal.pad"}, True, LABELS4).matched


def test_pattern_for_a_part_the_hand_has_must_match() -> None:
    no_tip = tuple(lab for lab in LABELS if lab != "index.distal.tip")
    with pytest.raises(UnknownNameError, match=r"'index.distal.tip'.*part 'index.distal'"):
        CompiledSignature.compile(grasps.get("tip_pinch").signature, no_tip)
    typo = Signature(required=(("index.distal.tipp",),), forbidden=(), thumb="any")
    with pytest.raises(UnknownNameError, match=r"did you mean 'index.distal.tip'"):
        CompiledSignature.compile(typo, LABELS)


def test_other_links_never_match() -> None:
    sig = Signature(required=(("thumb.*",),), forbidden=("index.*",), thumb="any")
    m = match_signature(sig, LABELS, row({"other.wrist_mount", "thumb.distal.side"}), False)
    assert m.matched


@pytest.mark.parametrize("gid", [g.id for g in grasps.all_grasps() if "palm.*" in g.signature.forbidden])
def test_a_type_held_off_the_palm_cannot_lean_on_an_unlabelled_link(gid: str) -> None:
    """A link without a region (a forearm, a thumb base a hand's metadata leaves out) is not a
    finger pad: every type that forbids the palm forbids it too, and says which link."""
    sig = grasps.get(gid).signature
    abducted = sig.thumb != "adducted"
    ok = set()
    for group in sig.required:
        ok.add(next(lab for lab in LABELS if any(fnmatch.fnmatchcase(lab, p) for p in group)
                    and not any(fnmatch.fnmatchcase(lab, f) for f in sig.forbidden)))
    assert verdict(gid, ok, abducted).matched
    m = verdict(gid, ok | {"other.wrist_mount"}, abducted)
    assert not m.matched
    why = "forbidden unlabelled link touched (other.wrist_mount; with palm.* forbidden, a link without a region is too)"
    assert m.reasons() == [why]
    assert m.forbidden_hit.tolist() == [False] * len(sig.forbidden)  # no pattern was hit
    # A hand's own vocabulary spells it "other" (one label for every unlabelled link).
    plain = tuple("other" if lab == "other.wrist_mount" else lab for lab in LABELS)
    assert not match_signature(sig, plain, row(ok | {"other"}, plain), abducted).matched


def test_palm_types_leave_unlabelled_links_free() -> None:
    wrap = POWER_WRAP | {"other.wrist_mount"}
    assert verdict("large_diameter", wrap, True).matched


def test_compile_is_cached_and_read_only() -> None:
    sig = grasps.get("tip_pinch").signature
    a = CompiledSignature.compile(sig, LABELS)
    assert CompiledSignature.compile(sig, list(LABELS)) is a
    with pytest.raises(ValueError):
        a.group_masks[0, 0] = True


def test_bad_inputs() -> None:
    compiled = CompiledSignature.compile(grasps.get("tip_pinch").signature, LABELS)
    with pytest.raises(ConfigurationError, match=rf"in_contact: expected shape \(B, {len(LABELS)}\)"):
        compiled.match(np.zeros((2, 5), bool), True)
    with pytest.raises(ConfigurationError, match=r"booleans"):
        compiled.match(np.full((2, len(LABELS)), 2), True)
    with pytest.raises(ConfigurationError, match=r"thumb_abducted: expected shape \(2,\)"):
        compiled.match(np.zeros((2, len(LABELS)), bool), [True, False, True])
    with pytest.raises(ConfigurationError, match=r"duplicates"):
        CompiledSignature.compile(grasps.get("tip_pinch").signature, LABELS + ("palm.pad",))
    # 0/1 integers and a scalar thumb state are accepted.
    m = compiled.match(np.stack([row(TIP_PINCH), row(POWER_WRAP)]).astype(int), 1)
    assert m.matched.tolist() == [True, False]


def forces(loads: dict[str, float], labels: tuple[str, ...] = LABELS) -> np.ndarray:
    return np.array([loads.get(lab, 0.0) for lab in labels], dtype=np.float64)


def test_a_required_group_must_carry_the_minimum_force() -> None:
    """A required group counts when its labels in contact carry >= min_force_n in total (summed
    over the group's labels); forbidden patterns are judged on contact alone."""
    sig = grasps.get("tip_pinch").signature
    contact = row(TIP_PINCH)
    loaded = forces({"thumb.distal.tip": 1.2, "index.distal.tip": 0.9})
    assert match_signature(sig, LABELS, contact, True, loaded, 0.01).matched
    # The index lies on the marble without pressing: not holding it.
    m = match_signature(sig, LABELS, contact, True, forces({"thumb.distal.tip": 1.2}), 0.01)
    assert not m.matched
    assert m.reasons() == ["required index.distal.tip|index.distal.pad touched without load (0.000 N < 0.010 N)"]
    assert m.missing.tolist() == [False, True]
    assert m.unloaded_b.tolist() == [[False, True]]
    # A group's load is the sum over its labels: 0.006 N on the tip + 0.006 N on the pad pass 0.01 N.
    both = row(TIP_PINCH | {"index.distal.pad"})
    split = forces({"thumb.distal.tip": 1.0, "index.distal.tip": 0.006, "index.distal.pad": 0.006})
    m = match_signature(sig, LABELS, both, True, split, 0.01)
    assert m.matched and np.allclose(m.group_force_b, [[1.0, 0.012]])
    # A force on a label not in contact is not counted (forces go with contacts).
    m = match_signature(sig, LABELS, row({"thumb.distal.tip"}), True, forces({"thumb.distal.tip": 1.0, "index.distal.tip": 5.0}), 0.01)
    assert m.reasons() == ["required index.distal.tip|index.distal.pad not in contact"]
    # A forbidden region touching at 0 N still breaks the type.
    m = match_signature(sig, LABELS, row(TIP_PINCH | {"palm.pad"}), True, loaded, 0.01)
    assert m.reasons() == ["forbidden palm.* touched (palm.pad)"]
    # min_force_n 0 (or no forces) is the contact-only rule.
    assert match_signature(sig, LABELS, contact, True, forces({}), 0.0).matched
    assert match_signature(sig, LABELS, contact, True).matched
    assert match_signature(sig, LABELS, contact, True).group_force_b is None


def test_force_floor_batched_equals_one_at_a_time() -> None:
    sig = grasps.get("sphere_4_finger").signature
    rng = np.random.default_rng(3)
    contact = rng.random((40, len(LABELS))) < 0.3
    load = np.where(rng.random((40, len(LABELS))) < 0.5, 0.0, rng.random((40, len(LABELS))))
    batch = match_signature(sig, LABELS, contact, True, load, 0.2)
    for b in range(40):
        one = match_signature(sig, LABELS, contact[b], True, load[b], 0.2)
        assert bool(one.matched) == bool(batch.matched[b])
        assert one.reasons() == batch.reasons(b)
        # Reference: each group needs a label in contact and the summed load of its labels in contact.
        ok_groups = all(
            any(contact[b, i] and any(fnmatch.fnmatchcase(lab, p) for p in g) for i, lab in enumerate(LABELS))
            and sum(load[b, i] for i, lab in enumerate(LABELS)
                    if contact[b, i] and any(fnmatch.fnmatchcase(lab, p) for p in g)) >= 0.2
            for g in sig.required
        )
        no_forbidden = not any(contact[b, i] and any(fnmatch.fnmatchcase(lab, f) for f in sig.forbidden)
                               for i, lab in enumerate(LABELS))
        assert bool(batch.matched[b]) == (ok_groups and no_forbidden)


def test_bad_forces() -> None:
    compiled = CompiledSignature.compile(grasps.get("tip_pinch").signature, LABELS)
    contact = row(TIP_PINCH)
    with pytest.raises(ConfigurationError, match=r"label_force_n: expected the shape of in_contact"):
        compiled.match(contact, True, np.zeros(5), 0.01)
    with pytest.raises(ConfigurationError, match=r"label_force_n: expected finite forces >= 0"):
        compiled.match(contact, True, forces({"thumb.distal.tip": np.nan}), 0.01)
    with pytest.raises(ConfigurationError, match=r"label_force_n: expected finite forces >= 0"):
        compiled.match(contact, True, forces({"thumb.distal.tip": -1.0}), 0.01)
    with pytest.raises(ConfigurationError, match=r"min_force_n: expected a finite number >= 0"):
        compiled.match(contact, True, forces({}), -0.1)


# ---------------------------------------------------------------------------------------------- along

#: Index finger extension's contacts: palm and fingers 3-5 round the handle, the index on it.
INDEX_EXTENSION = {"palm.pad", "middle.proximal.pad", "ring.proximal.pad", "little.proximal.pad", "index.middle.pad"}


def test_a_finger_must_lie_along_the_object_within_its_limit() -> None:
    # thumb adducted, as the type needs; the limit is the grasp file's 45 deg
    assert grasps.get("index_finger_extension").signature.along[0].max_angle_deg == 45.0
    assert verdict("index_finger_extension", INDEX_EXTENSION, False, along_deg=(44.9,)).matched
    assert verdict("index_finger_extension", INDEX_EXTENSION, False, along_deg=(45.0,)).matched
    across = verdict("index_finger_extension", INDEX_EXTENSION, False, along_deg=(87.5,))
    assert not across.matched
    assert across.reasons() == ["index at 87.5 deg > 45.0 deg to the object's long axis (it must lie along it)"]
    # the reason never reads the value equal to the limit
    assert verdict("index_finger_extension", INDEX_EXTENSION, False, along_deg=(45.04,)).reasons() == [
        "index at 45.04 deg > 45.00 deg to the object's long axis (it must lie along it)"]
    # a hand without an index cannot lay it along anything
    none = verdict("index_finger_extension", INDEX_EXTENSION, False, along_deg=(float("nan"),))
    assert not none.matched and none.reasons() == ["hand has no index to lie along the object"]
    # the direction is one more condition: the contacts must still match
    both = verdict("index_finger_extension", INDEX_EXTENSION - {"index.middle.pad"}, False, along_deg=(60.0,))
    assert both.reasons() == ["required index.*.pad|index.distal.tip not in contact",
                              "index at 60.0 deg > 45.0 deg to the object's long axis (it must lie along it)"]
    m = verdict("index_finger_extension", INDEX_EXTENSION, False, along_deg=(30.0,))
    assert m.along_deg_b is not None and m.along_deg_b.shape == (1, 1) and not m.misaligned_b.any()


def test_along_angles_are_checked() -> None:
    ife = CompiledSignature.compile(grasps.get("index_finger_extension").signature, LABELS)
    contact = row(INDEX_EXTENSION)
    with pytest.raises(ConfigurationError, match=r"along_deg: the signature needs the angle of \['index'\]"):
        ife.match(contact, False)
    with pytest.raises(ConfigurationError, match=r"along_deg: expected shape \(1, 1\)"):
        ife.match(contact, False, along_deg=[10.0, 20.0])
    with pytest.raises(ConfigurationError, match=r"along_deg: expected angles in \[0, 90\]"):
        ife.match(contact, False, along_deg=[95.0])
    with pytest.raises(ConfigurationError, match=r"along_deg: expected angles in \[0, 90\]"):
        ife.match(contact, False, along_deg=[-1.0])
    # a signature without 'along' takes none (or an empty column set)
    lateral = CompiledSignature.compile(grasps.get("lateral").signature, LABELS)
    assert lateral.match(row({"thumb.distal.pad"})[None], False, along_deg=np.zeros((1, 0))).matched.shape == (1,)
    with pytest.raises(ConfigurationError, match=r"along_deg: expected shape \(1, 0\)"):
        lateral.match(row({"thumb.distal.pad"}), False, along_deg=[10.0])
