"""Importers: hand descriptions in other formats converted into what handsim loads.

:mod:`handsim.importers.mjcf` converts a MuJoCo MJCF hand, described by a small mapping file
(``mjcf.json``), into ``hand.urdf`` + ``hand.json`` in a cache folder. A hand folder holding a
mapping file instead of a URDF is accepted everywhere a hand folder is
(:func:`handsim.data.hand_metadata_path` converts it on first use).
"""

from __future__ import annotations

from handsim.importers.mjcf import (
    COUPLING_MODES,
    MAPPING_FILE,
    MjcfMapping,
    cache_root,
    convert_mjcf,
    converted_hand_dir,
    load_mapping,
)

__all__ = [
    "COUPLING_MODES",
    "MAPPING_FILE",
    "MjcfMapping",
    "cache_root",
    "convert_mjcf",
    "converted_hand_dir",
    "load_mapping",
]
