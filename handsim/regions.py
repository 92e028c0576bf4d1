"""Contact-region labels: which part of the hand (pad, side, dorsal, tip, palm) a contact touches.

The rule is the one documented in ``models/README.md`` (section "hand.json schema",
``regions``). For a contact point ``p`` given in the frame of the link it lies on, with that
link's region entry (``center`` c, unit ``axis`` a, unit ``palmar`` n perpendicular to a):

1. ``d = p - c`` and ``s = d . a``;
2. on a ``distal`` segment, ``s >= tip_from * length`` is the **tip**;
3. otherwise ``d_perp = d - s a`` is compared with n: an angle to n at most the pad
   half-angle is the **pad**, an angle to ``-n`` at most the dorsal half-angle is
   **dorsal**, anything in between is the **side**. A point on the axis itself
   (``|d_perp| < 1e-12`` m, which no surface point of a capsule is) is the **side**.

Several links may belong to one part (the default hand's palm is the ``palm`` link plus pads on
the ``<f>_knuckle`` links): each keeps its own labelling geometry, and they share the part's
labels, so ``palm.pad`` is one label whichever of them is touched.

A contact on a link without a region entry gets the single label ``other`` (its full name,
``other.<link name>``, is built by :meth:`RegionMap.label_names`).

This module is pure numpy; :func:`handsim.hand.load_hand` builds the :class:`RegionMap` of a
hand from its ``hand.json``.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from handsim.errors import ConfigurationError, MetadataError, UnknownNameError, suggest

__all__ = ["OTHER_LABEL", "REGION_KINDS", "Region", "RegionMap"]

#: Region kinds of a part, in the order their labels appear in :attr:`RegionMap.labels`.
#: ``tip`` exists only on distal segments.
REGION_KINDS: tuple[str, ...] = ("pad", "side", "dorsal", "tip")
#: The label of every contact on a link that has no region entry.
OTHER_LABEL = "other"
# Below this perpendicular distance [m] a point is on the region axis: no direction, "side".
_ON_AXIS_M = 1e-12
_SIDE, _PAD, _DORSAL, _TIP = "side", "pad", "dorsal", "tip"


@dataclasses.dataclass(frozen=True)
class Region:
    """The labelling geometry of one link, in that link's frame.

    Attributes:
        link: The URDF link the entry belongs to.
        part: ``"palm"`` or ``"<finger>.<segment>"``, e.g. ``"index.distal"``.
        center: (3,) origin ``c`` of the labelling geometry [m].
        axis: (3,) unit vector along the segment.
        palmar: (3,) unit vector perpendicular to ``axis``, the way the pad faces.
        pad_half_angle_deg: Largest angle [deg] between ``d_perp`` and ``palmar`` labelled pad.
        dorsal_half_angle_deg: Largest angle [deg] between ``d_perp`` and ``-palmar`` labelled
            dorsal.
        length: Segment length [m] along ``axis`` from ``center``; ``None`` if not given.
        tip_from: Fraction of ``length`` from which a distal segment is the tip; ``None`` on
            parts that have no tip.
    """

    link: str
    part: str
    center: NDArray[np.float64]
    axis: NDArray[np.float64]
    palmar: NDArray[np.float64]
    pad_half_angle_deg: float
    dorsal_half_angle_deg: float
    length: float | None = None
    tip_from: float | None = None

    @property
    def has_tip(self) -> bool:
        """Whether the region has a ``.tip`` label (distal segments)."""
        return self.tip_from is not None

    @property
    def labels(self) -> tuple[str, ...]:
        """The labels this region can produce, in :data:`REGION_KINDS` order."""
        kinds = REGION_KINDS if self.has_tip else REGION_KINDS[:3]
        return tuple(f"{self.part}.{k}" for k in kinds)


class RegionMap:
    """Labels contact points by hand region, vectorised over points.

    Label ids index :attr:`labels`: for each part, in the ``hand.json`` order of its first
    region, its ``<part>.pad``, ``<part>.side``, ``<part>.dorsal`` and, for distal segments,
    ``<part>.tip``; then ``other`` last. Regions of later links of the same part reuse those
    labels (each label appears once).

    Args:
        regions: The regions in ``hand.json`` order (one per link; several links may share a
            part if they agree on whether it has a tip).
        link_names: Every link name of the hand (regions or not); when given, classifying a
            point on a link outside this set raises :class:`UnknownNameError`. Defaults to the
            region links only, so any other name is ``other``.
    """

    def __init__(self, regions: Iterable[Region], link_names: Iterable[str] | None = None) -> None:
        regions = tuple(regions)
        by_link: dict[str, Region] = {}
        labels: list[str] = []
        first: dict[str, int] = {}
        part_first: dict[str, Region] = {}
        label_links: dict[str, list[str]] = {}
        for region in regions:
            if region.link in by_link:
                raise MetadataError(f"regions: expected one entry per link, got two for {region.link!r}")
            by_link[region.link] = region
            earlier = part_first.get(region.part)
            if earlier is not None:
                # Another link of an existing part: it labels into that part's labels.
                if region.labels != earlier.labels:
                    raise MetadataError(
                        f"regions.{region.link}: expected the labels of part {region.part!r} as "
                        f"{earlier.link!r} gives them {list(earlier.labels)}, got {list(region.labels)} "
                        "(links sharing a part must agree on having a tip)")
                first[region.link] = first[earlier.link]
            else:
                for label in region.labels:
                    if label in labels:
                        raise MetadataError(f"regions.{region.link}.part: expected a part whose labels no "
                                            f"other part produces, got {region.part!r} (label {label!r} twice)")
                part_first[region.part] = region
                first[region.link] = len(labels)
                labels.extend(region.labels)
            for label in region.labels:
                label_links.setdefault(label, []).append(region.link)
        labels.append(OTHER_LABEL)
        self._regions = regions
        self._by_link = by_link
        self._first = first
        self._label_links = {label: tuple(links) for label, links in label_links.items()}
        self._labels = tuple(labels)
        self._index = {label: i for i, label in enumerate(self._labels)}
        self._known = None if link_names is None else frozenset(link_names) | frozenset(by_link)
        # Per-link parameter tables by link-name list: an env step labels a few contacts with
        # the same list every time, and building the table costs more than labelling.
        self._tables: dict[tuple[str, ...], dict[str, NDArray]] = {}

    # ------------------------------------------------------------------ lookup
    @property
    def labels(self) -> tuple[str, ...]:
        """Every label the hand can produce, in id order (``other`` last)."""
        return self._labels

    @property
    def regions(self) -> tuple[Region, ...]:
        """The regions in ``hand.json`` order."""
        return self._regions

    @property
    def links(self) -> tuple[str, ...]:
        """The links that have a region entry, in ``hand.json`` order."""
        return tuple(r.link for r in self._regions)

    @property
    def parts(self) -> tuple[str, ...]:
        """The parts, each once, in label order (e.g. ``("palm", "thumb.metacarpal", ...)``)."""
        return tuple(dict.fromkeys(r.part for r in self._regions))

    def links_of_part(self, part: str) -> tuple[str, ...]:
        """The links whose regions belong to ``part``, in ``hand.json`` order.

        Raises:
            UnknownNameError: If no region has that part, with close matches.
        """
        links = tuple(r.link for r in self._regions if r.part == part)
        if not links:
            raise UnknownNameError(suggest(part, self.parts, "region part"))
        return links

    def links_of_label(self, label: str) -> tuple[str, ...]:
        """The links a contact labelled ``label`` can lie on (several for a shared part).

        ``other`` gives ``()``: it is the label of every link without a region.

        Raises:
            UnknownNameError: If the hand cannot produce that label, with close matches.
        """
        self.label_index(label)  # raises with suggestions on an unknown label
        return self._label_links.get(label, ())

    @property
    def other_id(self) -> int:
        """The id of the ``other`` label."""
        return len(self._labels) - 1

    def __len__(self) -> int:
        return len(self._labels)

    def __contains__(self, link: object) -> bool:
        return link in self._by_link

    def region(self, link: str) -> Region:
        """The region entry of ``link``.

        Raises:
            UnknownNameError: If the link has no region entry, naming the ones that do.
        """
        try:
            return self._by_link[link]
        except KeyError:
            raise UnknownNameError(suggest(link, self._by_link, "region link")) from None

    def label_index(self, label: str) -> int:
        """The id of ``label`` (e.g. ``"index.distal.pad"``).

        Raises:
            UnknownNameError: If the hand cannot produce that label, with close matches.
        """
        try:
            return self._index[label]
        except KeyError:
            raise UnknownNameError(suggest(label, self._labels, "region label")) from None

    def match(self, pattern: str) -> NDArray[np.bool_]:
        """Which labels an fnmatch-style pattern selects.

        Args:
            pattern: e.g. ``"index.*.pad"``, ``"thumb.distal.*"``, ``"palm.*"``, ``"*.tip"``
                (``*`` also spans dots, as in :func:`fnmatch.fnmatchcase`).

        Returns:
            (len(labels),) bool mask over :attr:`labels`.

        Raises:
            UnknownNameError: If the pattern selects no label, with close matches.
        """
        mask = np.fromiter((fnmatch.fnmatchcase(label, pattern) for label in self._labels), bool,
                           count=len(self._labels))
        if not mask.any():
            raise UnknownNameError(
                f"region pattern {pattern!r} matches no label; "
                + suggest(pattern, self._labels, "region label pattern")
            )
        return mask

    def label_names(self, label_ids: ArrayLike, links: ArrayLike | None = None,
                    link_names: Sequence[str] | None = None) -> list[str]:
        """Label strings of ids, spelling ``other`` as ``other.<link name>`` when links are given.

        Args:
            label_ids: (N,) ids from :meth:`classify`.
            links: Optional (N,) link names or indices into ``link_names``, as for
                :meth:`classify`.
            link_names: The link-name list that integer ``links`` index.

        Returns:
            N label strings.
        """
        ids = np.asarray(label_ids, dtype=np.int64).reshape(-1)
        names = [self._labels[i] for i in ids]
        if links is None:
            return names
        link_list = self._link_strings(links, link_names, len(ids))
        return [f"{OTHER_LABEL}.{ln}" if i == self.other_id else n
                for i, n, ln in zip(ids, names, link_list)]

    # ------------------------------------------------------------- classify
    def classify(self, points_local: ArrayLike, links: ArrayLike | str | int,
                 link_names: Sequence[str] | None = None) -> NDArray[np.int64]:
        """Label contact points given in the frames of the links they lie on.

        Args:
            points_local: (N, 3) or (3,) contact points, each in its link's frame [m].
            links: (N,) link names, or (N,) integer indices into ``link_names``; a single
                name or index applies to every point.
            link_names: The link-name list integer ``links`` index (e.g. the PyBullet link
                order); required with integer links.

        Returns:
            (N,) int64 label ids into :attr:`labels` (a (3,) point gives shape (1,)).

        Raises:
            ConfigurationError: On wrong shapes, non-finite points, or integer links without
                ``link_names`` / out of range.
            UnknownNameError: On a link name the hand does not have (when the map knows the
                hand's links).
        """
        pts = np.asarray(points_local, dtype=np.float64)
        if pts.ndim == 1:
            pts = pts[None, :]
        if pts.ndim != 2 or pts.shape[1] != 3:
            raise ConfigurationError(f"points_local: expected shape (N, 3), got {np.shape(points_local)}")
        if not np.isfinite(pts).all():
            raise ConfigurationError("points_local: expected finite coordinates, got NaN or inf")
        n = pts.shape[0]
        table_names, inverse = self._link_table(links, link_names, n)
        params = self._params(table_names)
        k = inverse  # (N,) row into the per-link table
        center, axis, palmar = params["center"][k], params["axis"][k], params["palmar"][k]  # (N, 3)
        d = pts - center
        s = np.einsum("ij,ij->i", d, axis)  # (N,) [m]
        perp = d - s[:, None] * axis
        norm = np.linalg.norm(perp, axis=1)
        cos = np.einsum("ij,ij->i", perp, palmar) / np.where(norm > _ON_AXIS_M, norm, 1.0)
        on_axis = norm <= _ON_AXIS_M
        base = params["base"][k]  # (N,) id of "<part>.pad", -1 for links without a region
        # Offsets from the part's pad label follow REGION_KINDS: pad 0, side 1, dorsal 2, tip 3.
        offset = np.full(n, 1, dtype=np.int64)
        offset[(cos >= params["pad_cos"][k]) & ~on_axis] = 0
        offset[(-cos >= params["dorsal_cos"][k]) & ~on_axis] = 2
        tip = params["has_tip"][k] & (s >= params["tip_s"][k])
        offset[tip] = 3
        return np.where(base >= 0, base + offset, self.other_id).astype(np.int64)

    def _link_strings(self, links: ArrayLike | str | int, link_names: Sequence[str] | None,
                      n: int) -> list[str]:
        names, inverse = self._link_table(links, link_names, n)
        return [names[i] for i in inverse]

    def _link_table(self, links: ArrayLike | str | int, link_names: Sequence[str] | None,
                    n: int) -> tuple[list[str], NDArray[np.int64]]:
        """Unique link names and, per point, the row into them."""
        arr = np.asarray(links)
        if arr.ndim == 0:
            arr = np.full(n, arr.item(), dtype=arr.dtype)
        if arr.shape != (n,):
            raise ConfigurationError(f"links: expected shape ({n},) to match the points, got {arr.shape}")
        if arr.dtype.kind in "iu":
            if link_names is None:
                raise ConfigurationError("links: integer link indices need link_names (the list they index)")
            link_names = list(link_names)
            if n and (arr.min() < 0 or arr.max() >= len(link_names)):
                raise ConfigurationError(
                    f"links: expected indices in [0, {len(link_names)}), "
                    f"got {int(arr.min())}..{int(arr.max())}"
                )
            return link_names, arr.astype(np.int64)
        if arr.dtype.kind not in "UO":
            raise ConfigurationError(f"links: expected link names or integer indices, got dtype {arr.dtype}")
        uniq, inverse = np.unique(arr.astype(str), return_inverse=True)
        return [str(u) for u in uniq], inverse.astype(np.int64).reshape(-1)

    def _params(self, names: Sequence[str]) -> dict[str, NDArray]:
        """Per-link labelling parameters for a list of link names (rows follow ``names``;
        cached per list, read-only)."""
        key = tuple(names)
        table = self._tables.get(key)
        if table is None:
            table = self._build_params(key)
            for arr in table.values():
                arr.flags.writeable = False
            if len(self._tables) < 64:  # a hand has one or two lists in use; bound it anyway
                self._tables[key] = table
        return table

    def _build_params(self, names: Sequence[str]) -> dict[str, NDArray]:
        m = len(names)
        out: dict[str, NDArray] = {
            "center": np.zeros((m, 3)), "axis": np.tile([1.0, 0.0, 0.0], (m, 1)),
            "palmar": np.tile([0.0, 0.0, 1.0], (m, 1)), "pad_cos": np.ones(m),
            "dorsal_cos": np.ones(m), "has_tip": np.zeros(m, bool), "tip_s": np.full(m, np.inf),
            "base": np.full(m, -1, dtype=np.int64),
        }
        for i, name in enumerate(names):
            region = self._by_link.get(name)
            if region is None:
                if self._known is not None and name not in self._known:
                    raise UnknownNameError(suggest(name, self._known, "link"))
                continue
            out["center"][i], out["axis"][i], out["palmar"][i] = region.center, region.axis, region.palmar
            out["pad_cos"][i] = np.cos(np.radians(region.pad_half_angle_deg))
            out["dorsal_cos"][i] = np.cos(np.radians(region.dorsal_half_angle_deg))
            if region.has_tip:
                out["has_tip"][i] = True
                out["tip_s"][i] = region.tip_from * region.length
            out["base"][i] = self._first[name]
        return out

    def __repr__(self) -> str:
        return f"RegionMap({len(self._regions)} regions, {len(self._labels)} labels)"

