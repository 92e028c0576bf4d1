"""Contact-region labels of the default hand, checked on surface points built from PyBullet.

The independent source: PyBullet's collision shapes (``getCollisionShapeData``: capsule
radius/length and pose, palm box size and pose) and joint axes (``getJointInfo``). A
segment's pad side is the way its flexion curls it (joint axis x segment axis), so none of
the test points comes from ``hand.json``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from handsim.errors import ConfigurationError, MetadataError, UnknownNameError
from handsim.hand import load_hand
from handsim.regions import REGION_KINDS, Region, RegionMap

p = pytest.importorskip("pybullet")


@pytest.fixture(scope="module")
def hand():
    return load_hand("default_hand")


@pytest.fixture(scope="module")
def bullet(hand):
    """(client, body, link name -> PyBullet index, PyBullet link-name list with the palm first)."""
    cid = p.connect(p.DIRECT)
    body = p.loadURDF(str(hand.urdf_path), useFixedBase=True, physicsClientId=cid)
    index = {hand.palm_link: -1}
    for j in range(p.getNumJoints(body, physicsClientId=cid)):
        index[p.getJointInfo(body, j, physicsClientId=cid)[12].decode()] = j
    yield cid, body, index
    p.disconnect(cid)


def _pose(pos, quat_xyzw) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = np.reshape(p.getMatrixFromQuaternion(quat_xyzw), (3, 3))
    m[:3, 3] = pos
    return m


def _link_world(cid, body, li) -> np.ndarray:
    if li == -1:
        pos, orn = p.getBasePositionAndOrientation(body, physicsClientId=cid)
        return _pose(pos, orn)  # the base frame of a URDF loaded at the origin is the link frame
    s = p.getLinkState(body, li, computeForwardKinematics=True, physicsClientId=cid)
    return _pose(s[4], s[5])


def _shape_in_link(cid, body, li, k: int = 0):
    """(geometry type, dimensions, 4x4 pose of the link's k-th collision shape in the URDF link
    frame). Shape 0 is the segment's own capsule; the thenar eminence (hand v4) follows it on the
    thumb metacarpal."""
    shape = p.getCollisionShapeData(body, li, physicsClientId=cid)[k]
    inertial = p.getDynamicsInfo(body, li, physicsClientId=cid)[3:5]
    # PyBullet reports collision frames relative to the link's inertial frame.
    return shape[2], shape[3], _pose(*inertial) @ _pose(shape[5], shape[6])


def _capsule(cid, body, li):
    """Capsule of a link in its frame: centre (3,), unit axis (3,), cylinder length, radius."""
    gtype, dims, pose = _shape_in_link(cid, body, li)
    assert gtype == p.GEOM_CAPSULE
    return pose[:3, 3], pose[:3, 2], dims[0], dims[1]


def _curl_direction(cid, body, index, hand, link: str) -> np.ndarray:
    """Unit direction (link frame) the segment's pad faces: where flexion curls the finger.

    The flexion joint is the segment's own proximal joint, except for the thumb metacarpal
    (whose proximal joints are the two CMC axes) where it is the MCP joint at its distal end.
    """
    li = index[link]
    finger = next(f for f in hand.fingers.values() if link in f.links)
    chain = list(finger.links)
    joint_child = chain[chain.index(link) + 1] if link == finger.segments.get("metacarpal") else link
    jc = index[joint_child]
    axis_world = _link_world(cid, body, jc)[:3, :3] @ np.array(p.getJointInfo(body, jc, physicsClientId=cid)[13])
    to_link = _link_world(cid, body, li)[:3, :3].T
    _, seg_axis, _, _ = _capsule(cid, body, li)
    n = np.cross(to_link @ axis_world, seg_axis)
    return n / np.linalg.norm(n)


def _ring_point(c, u, n, r, s, angle_deg):
    """Point on a capsule's cylinder at axial offset s from the centre, angle from n towards u x n."""
    b = np.cross(u, n)
    a = math.radians(angle_deg)
    return c + s * u + r * (math.cos(a) * n + math.sin(a) * b)


def _segment_links(hand):
    return [link for f in hand.fingers.values() for link in f.links]


def test_labels_order_and_other_last(hand):
    labels = hand.regions.labels
    assert labels[-1] == "other"
    expected, seen = [], set()
    for region in hand.regions.regions:  # hand.json order; a part shared by several links once
        if region.part in seen:
            continue
        seen.add(region.part)
        kinds = REGION_KINDS if region.part.endswith(".distal") else REGION_KINDS[:3]
        expected += [f"{region.part}.{k}" for k in kinds]
    assert list(labels) == expected + ["other"]
    # The palm is several links (palm box, knuckle pads) sharing one label vocabulary.
    assert len(hand.regions.links_of_part("palm")) > 1
    assert [lab for lab in labels if lab.startswith("palm.")] == ["palm.pad", "palm.side", "palm.dorsal"]
    assert len(set(labels)) == len(labels)
    for i, label in enumerate(labels):
        assert hand.regions.label_index(label) == i


@pytest.mark.parametrize("angle, kind", [(0, "pad"), (40, "pad"), (-40, "pad"), (70, "side"),
                                         (90, "side"), (-90, "side"), (110, "side"),
                                         (140, "dorsal"), (180, "dorsal"), (-150, "dorsal")])
def test_phalanx_surface_points(hand, bullet, angle, kind):
    # The default hand uses the README's 55 deg half-angles on phalanges; the angles above sit
    # at least 15 deg away from both cone edges.
    assert hand.pad_half_angle_deg == 55 and hand.dorsal_half_angle_deg == 55
    cid, body, index = bullet
    for link in _segment_links(hand):
        c, u, h, r = _capsule(cid, body, index[link])
        n = _curl_direction(cid, body, index, hand, link)
        # Axial position: the proximal quarter of the cylinder, clear of any tip zone.
        point = _ring_point(c, u, n, r, -0.25 * h, angle)
        (label,) = hand.regions.label_names(hand.regions.classify(point, link))
        part = hand.regions.region(link).part
        assert label == f"{part}.{kind}", (link, angle)


@pytest.mark.parametrize("angle", [0, 35, -35])
def test_thenar_surface_is_metacarpal_pad(hand, bullet, angle):
    """The thenar eminence (a capsule laid on the palmar side of the thumb metacarpal, as PyBullet
    loads it) is labelled ``thumb.metacarpal.pad`` where it bulges out of the bone capsule."""
    cid, body, index = bullet
    link = hand.fingers["thumb"].segments["metacarpal"]
    shapes = p.getCollisionShapeData(body, index[link], physicsClientId=cid)
    if len(shapes) < 2:
        pytest.skip("this hand has no thenar shape on the thumb metacarpal")
    gtype, dims, pose = _shape_in_link(cid, body, index[link], 1)
    assert gtype == p.GEOM_CAPSULE
    c, u, h, r = pose[:3, 3], pose[:3, 2], dims[0], dims[1]
    n = _curl_direction(cid, body, index, hand, link)
    bone_c, bone_u, bone_h, bone_r = _capsule(cid, body, index[link])
    for s in (-0.4 * h, 0.0, 0.4 * h):
        point = _ring_point(c, u, n, r, s, angle)
        # A point of the bulge's outer surface, outside the bone capsule.
        d = point - bone_c
        d_axis = np.clip(d @ bone_u, -bone_h / 2, bone_h / 2)
        assert np.linalg.norm(d - d_axis * bone_u) > bone_r
        (label,) = hand.regions.label_names(hand.regions.classify(point, link))
        assert label == "thumb.metacarpal.pad", (s, angle)


def test_fingertip_end_is_tip(hand, bullet):
    cid, body, index = bullet
    for finger in hand.fingers.values():
        link = finger.segments["distal"]
        c, u, h, r = _capsule(cid, body, index[link])
        n = _curl_direction(cid, body, index, hand, link)
        pole = c + (h / 2 + r) * u  # the far end of the fingertip
        pad_end = c + (h / 2) * u + r * (math.cos(math.radians(60)) * u + math.sin(math.radians(60)) * n)
        got = hand.regions.label_names(hand.regions.classify(np.stack([pole, pad_end]), link))
        assert got == [f"{finger.name}.distal.tip"] * 2
        # The pad near the distal joint is not the tip.
        (near,) = hand.regions.label_names(hand.regions.classify(_ring_point(c, u, n, r, -h / 2, 0), link))
        assert near == f"{finger.name}.distal.pad"


def _boxes(cid, body, li):
    """Every collision box of a link: list of (half extents (3,), 4x4 pose in the link frame)."""
    inertial = p.getDynamicsInfo(body, li, physicsClientId=cid)[3:5]
    out = []
    for shape in p.getCollisionShapeData(body, li, physicsClientId=cid):
        assert shape[2] == p.GEOM_BOX
        out.append((np.asarray(shape[3]) / 2, _pose(*inertial) @ _pose(shape[5], shape[6])))
    return out


def _inside(point, boxes, skip) -> bool:
    """Whether a point lies strictly inside any box but ``skip`` (a face covered by another box)."""
    for k, (half, pose) in enumerate(boxes):
        local = pose[:3, :3].T @ (point - pose[:3, 3])
        if k != skip and np.all(np.abs(local) < half - 1e-9):
            return True
    return False


def test_palm_box_faces(hand, bullet):
    """The palm link's boxes: exposed palmar faces are palm.pad, the back palm.dorsal, the
    radial/ulnar faces at mid-height palm.side."""
    cid, body, index = bullet
    boxes = _boxes(cid, body, -1)
    assert len(boxes) >= 1
    # The palm is a base box plus a raised central pad: the box reaching furthest palmar (+z of
    # the palm frame) carries the central palmar face, the one reaching furthest dorsal the back.
    top = max(range(len(boxes)), key=lambda k: boxes[k][1][2, 3] + boxes[k][0][2])
    back = min(range(len(boxes)), key=lambda k: boxes[k][1][2, 3] - boxes[k][0][2])

    def face(k, v):
        half, pose = boxes[k]
        return pose[:3, 3] + pose[:3, :3] @ (np.asarray(v) * half)

    points = {
        "palm.pad": [face(top, [0, 0, 1]), face(top, [0.8, 0.8, 1]), face(top, [-0.8, -0.8, 1])],
        "palm.dorsal": [face(back, [0, 0, -1]), face(back, [0.8, -0.8, -1]), face(back, [-0.5, 0.8, -1])],
        "palm.side": [face(back, [0, 1, 0]), face(back, [0, -1, 0]), face(back, [0.5, 1, 0.3]),
                      face(back, [-0.5, -1, -0.3])],
    }
    # Exposed palmar faces of the other boxes (e.g. the thenar strip beside the raised pad).
    for k in range(len(boxes)):
        if k != top:
            pt = face(k, [-0.5, -0.9, 1])
            if not _inside(pt, boxes, k):
                points["palm.pad"].append(pt)
    for expected, pts in points.items():
        got = hand.regions.label_names(hand.regions.classify(np.stack(pts), hand.palm_link))
        assert got == [expected] * len(pts)


def test_knuckle_pads_are_palm(hand, bullet):
    """Every link between the palm and a finger's proximal phalanx that carries collision geometry
    (the MCP pads on the ``<f>_knuckle`` links) labels its palmar face ``palm.pad``."""
    cid, body, index = bullet
    pads = [f"{f}_knuckle" for f in ("index", "middle", "ring", "little")]
    assert set(pads) <= set(hand.regions.links_of_part("palm"))
    assert set(hand.regions.links_of_label("palm.pad")) == {hand.palm_link, *pads}
    for link in pads:
        # Palmar, in the knuckle frame, is where the proximal phalanx (its child) curls when it
        # flexes: flexion axis x phalanx axis, both from PyBullet.
        child = index[link.replace("_knuckle", "_proximal")]
        to_knuckle = _link_world(cid, body, index[link])[:3, :3].T
        child_rot = _link_world(cid, body, child)[:3, :3]
        flex_axis = to_knuckle @ child_rot @ np.array(p.getJointInfo(body, child, physicsClientId=cid)[13])
        _, seg_axis, _, _ = _capsule(cid, body, child)
        palmar = np.cross(flex_axis, to_knuckle @ child_rot @ seg_axis)
        boxes = _boxes(cid, body, index[link])
        assert boxes, link
        for half, pose in boxes:
            # The box face whose outward normal is most palmar, its centre and points near corners.
            dots = pose[:3, :3].T @ palmar
            k = int(np.argmax(np.abs(dots)))
            u, v = [i for i in range(3) if i != k]
            pts = []
            for a, b in ((0, 0), (0.8, 0.8), (-0.8, -0.8), (0.8, -0.8)):
                local = np.zeros(3)
                local[k], local[u], local[v] = np.sign(dots[k]), a, b
                pts.append(pose[:3, 3] + pose[:3, :3] @ (local * half))
            got = hand.regions.label_names(hand.regions.classify(np.stack(pts), link))
            assert got == ["palm.pad"] * len(pts), link
        assert hand.regions.region(link).part == "palm"


def test_vectorised_equals_loop_and_integer_links(hand, bullet, rng):
    cid, body, index = bullet
    names = sorted(index, key=index.get)  # PyBullet order: palm (-1) first, then link 0, 1, ...
    n = 500
    which = rng.integers(0, len(names), n)
    pts = rng.normal(scale=0.015, size=(n, 3))
    pts[:5] = 0.0  # on-axis points of some links
    by_name = hand.regions.classify(pts, np.array(names)[which])
    by_index = hand.regions.classify(pts, which, link_names=names)
    loop = np.array([hand.regions.classify(pts[i], names[which[i]])[0] for i in range(n)])
    np.testing.assert_array_equal(by_name, loop)
    np.testing.assert_array_equal(by_index, loop)
    assert by_name.shape == (n,) and by_name.dtype == np.int64
    # Links without a region (knuckles, tip frames) are "other", spelt with the link name.
    other = [i for i in range(n) if names[which[i]] not in hand.regions]
    assert other and np.all(by_name[other] == hand.regions.other_id)
    spelt = hand.regions.label_names(by_name[other], np.array(names)[which][other])
    assert all(s == f"other.{names[which[i]]}" for s, i in zip(spelt, other))


def test_classify_input_errors(hand):
    regions = hand.regions
    with pytest.raises(ConfigurationError, match="shape"):
        regions.classify(np.zeros((4, 2)), "index_distal")
    with pytest.raises(ConfigurationError, match="finite"):
        regions.classify([[np.nan, 0, 0]], "index_distal")
    with pytest.raises(ConfigurationError, match="link_names"):
        regions.classify(np.zeros((2, 3)), [0, 1])
    with pytest.raises(ConfigurationError, match="indices"):
        regions.classify(np.zeros((2, 3)), [0, 7], link_names=["palm", "index_distal"])
    with pytest.raises(UnknownNameError, match="did you mean 'index_distal'"):
        regions.classify(np.zeros((1, 3)), "index_distl")


@pytest.mark.parametrize("pattern, expected", [
    ("index.*.pad", ["index.proximal.pad", "index.middle.pad", "index.distal.pad"]),
    ("thumb.distal.*", ["thumb.distal.pad", "thumb.distal.side", "thumb.distal.dorsal", "thumb.distal.tip"]),
    ("palm.*", ["palm.pad", "palm.side", "palm.dorsal"]),
    ("*.tip", [f"{f}.distal.tip" for f in ("thumb", "index", "middle", "ring", "little")]),
    ("other", ["other"]),
])
def test_match(hand, pattern, expected):
    mask = hand.regions.match(pattern)
    assert mask.shape == (len(hand.regions.labels),) and mask.dtype == bool
    assert [label for label, m in zip(hand.regions.labels, mask) if m] == expected


def test_match_and_lookup_errors(hand):
    with pytest.raises(UnknownNameError, match="matches no label"):
        hand.regions.match("indx.*.pad")
    with pytest.raises(UnknownNameError, match="did you mean 'index.distal.tip'"):
        hand.regions.label_index("index.distal.tp")
    with pytest.raises(UnknownNameError, match="valid"):
        hand.regions.region("index_tip")


def test_small_map_analytic():
    """A hand-made map: labels, per-region half-angles and the tip threshold."""
    ex, ez = np.array([1.0, 0, 0]), np.array([0, 0, 1.0])
    regions = RegionMap([
        Region("base", "palm", np.array([0.0, 0, -0.1]), ex, ez, 30.0, 30.0),
        Region("tipper", "index.distal", np.zeros(3), ex, ez, 55.0, 55.0, length=0.02, tip_from=0.5),
    ])
    assert regions.labels == ("palm.pad", "palm.side", "palm.dorsal", "index.distal.pad",
                              "index.distal.side", "index.distal.dorsal", "index.distal.tip", "other")
    pts = np.array([
        [0.0, 0.0, 0.0],     # 0 deg from +z seen from the centre (0, 0, -0.1): pad
        [0.0, 0.1, 0.0],     # 45 deg: side (beyond 30)
        [0.0, 0.0, -0.2],    # dorsal
        [0.009, 0.0, 0.01],  # s = 0.009 < 0.01: pad
        [0.010, 0.0, -0.01], # s = 0.010 >= 0.5 * 0.02: tip, whatever the side
        [0.0, 0.0, 0.0],     # on the axis of "tipper": side by definition
    ])
    links = ["base", "base", "base", "tipper", "tipper", "tipper"]
    got = regions.label_names(regions.classify(pts, links))
    assert got == ["palm.pad", "palm.side", "palm.dorsal", "index.distal.pad", "index.distal.tip",
                   "index.distal.side"]
    assert regions.classify(pts[:1], "nowhere")[0] == regions.other_id  # map without link list


def test_shared_part_analytic():
    """Two links of one part share its labels; each keeps its own geometry."""
    ex, ez = np.array([1.0, 0, 0]), np.array([0, 0, 1.0])
    regions = RegionMap([
        Region("base", "palm", np.zeros(3), ex, ez, 60.0, 60.0),
        Region("pad_a", "palm", np.array([0.0, 0, -0.01]), ex, -ez, 30.0, 30.0),  # faces -z
        Region("tipper", "index.distal", np.zeros(3), ex, ez, 55.0, 55.0, length=0.02, tip_from=0.5),
    ])
    assert regions.labels == ("palm.pad", "palm.side", "palm.dorsal", "index.distal.pad",
                              "index.distal.side", "index.distal.dorsal", "index.distal.tip", "other")
    assert regions.parts == ("palm", "index.distal")
    assert regions.links_of_part("palm") == ("base", "pad_a")
    assert regions.links_of_label("palm.side") == ("base", "pad_a")
    assert regions.links_of_label("index.distal.tip") == ("tipper",)
    assert regions.links_of_label("other") == ()
    pts = np.array([[0, 0, 0.01], [0, 0, -0.02], [0, 0.01, 0.0], [0, 0, 0.0]])
    got = regions.label_names(regions.classify(pts, ["base", "pad_a", "pad_a", "pad_a"]))
    # On pad_a (centre z = -0.01, palmar -z): z = -0.02 is its pad, (0, 0.01, 0) is 45 deg from
    # its dorsal direction (+z): side (beyond 30); (0, 0, 0) is straight dorsal.
    assert got == ["palm.pad", "palm.pad", "palm.side", "palm.dorsal"]
    with pytest.raises(UnknownNameError, match="did you mean 'palm'"):
        regions.links_of_part("plam")
    with pytest.raises(UnknownNameError, match="did you mean 'palm.pad'"):
        regions.links_of_label("palm.pda")


def test_shared_part_must_agree_on_tip():
    ex, ez = np.array([1.0, 0, 0]), np.array([0, 0, 1.0])
    with pytest.raises(MetadataError, match="must agree on having a tip"):
        RegionMap([
            Region("a", "index.distal", np.zeros(3), ex, ez, 55.0, 55.0, length=0.02, tip_from=0.5),
            Region("b", "index.distal", np.zeros(3), ex, ez, 55.0, 55.0),
        ])
    with pytest.raises(MetadataError, match="one entry per link"):
        RegionMap([Region("a", "palm", np.zeros(3), ex, ez, 55.0, 55.0)] * 2)
