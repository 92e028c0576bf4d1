"""Label contact points with hand regions through the kinematics core (vectorised)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from handsim.errors import ConfigurationError
from handsim.kinematics import KinematicTree
from handsim.regions import RegionMap

__all__ = ["contact_matrix", "label_contacts"]


def label_contacts(
    tree: KinematicTree,
    regions: RegionMap,
    q: ArrayLike,
    points: ArrayLike,
    links: ArrayLike,
    mask: ArrayLike | None = None,
    base_pose: ArrayLike | None = None,
) -> NDArray[np.int64]:
    """Region label ids of contact points, for a batch of trials at once.

    Args:
        tree: The hand's kinematic tree.
        regions: The hand's region map (see :mod:`handsim.regions`).
        q: (B, n) or (n,) joint configuration of each trial [rad].
        points: (B, C, 3) contact points [m], in the hand's root-link frame, or in the world
            frame when ``base_pose`` is given.
        links: (B, C) int index into ``tree.link_names`` of the link each contact is on.
        mask: (B, C) bool, True for real contacts (ragged batches); default all True.
        base_pose: (4, 4) or (B, 4, 4) world pose of the root link, if points are in world.

    Returns:
        (B, C) int64 label ids into ``regions.labels``; -1 where masked.
    """
    frames = tree.forward_kinematics(np.atleast_2d(np.asarray(q, dtype=np.float64)))  # (B, L, 4, 4)
    pts = np.asarray(points, dtype=np.float64)
    link_idx = np.asarray(links)
    if pts.ndim != 3 or pts.shape[-1] != 3 or pts.shape[0] != frames.shape[0]:
        raise ConfigurationError(f"points must have shape (B, C, 3) with B = {frames.shape[0]}, got {pts.shape}")
    if link_idx.shape != pts.shape[:2] or not np.issubdtype(link_idx.dtype, np.integer):
        raise ConfigurationError(f"links must be integer indices of shape {pts.shape[:2]}, got {link_idx.dtype} {link_idx.shape}")
    valid = np.ones(pts.shape[:2], dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if valid.shape != pts.shape[:2]:
        raise ConfigurationError(f"mask must have shape {pts.shape[:2]}, got {valid.shape}")
    if np.any(valid & ((link_idx < 0) | (link_idx >= len(tree.link_names)))):
        raise ConfigurationError(f"links must index tree.link_names (0..{len(tree.link_names) - 1})")
    safe_links = np.where(valid, link_idx, 0)
    if base_pose is not None:
        base = np.broadcast_to(np.asarray(base_pose, dtype=np.float64), (pts.shape[0], 4, 4))
        pts = np.einsum("bji,bcj->bci", base[:, :3, :3], pts - base[:, None, :3, 3])  # world -> root
    batch = np.arange(pts.shape[0])[:, None]
    link_frames = frames[batch, safe_links]  # (B, C, 4, 4)
    local = np.einsum("bcji,bcj->bci", link_frames[..., :3, :3], pts - link_frames[..., :3, 3])
    ids = np.full(pts.shape[:2], -1, dtype=np.int64)
    if valid.any():
        ids[valid] = regions.classify(local[valid], safe_links[valid], link_names=tree.link_names)
    return ids


def contact_matrix(label_ids: ArrayLike, num_labels: int) -> NDArray[np.bool_]:
    """Which labels each trial touched.

    Args:
        label_ids: (B, C) label ids, -1 for no contact.
        num_labels: R, the size of the label vocabulary.

    Returns:
        (B, R) bool, True where trial b has at least one contact labelled r.
    """
    ids = np.asarray(label_ids)
    out = np.zeros((ids.shape[0], num_labels), dtype=bool)
    rows, cols = np.nonzero(ids >= 0)
    out[rows, ids[rows, cols]] = True
    return out
