"""The one accessor for data shipped with handsim (hand models and the grasp taxonomy).

In a source checkout or an editable install the data folders sit at the top of the
repository (``models/``, ``grasps/``); a wheel carries them inside the package as
``handsim/_data/models`` and ``handsim/_data/grasps``. Nothing here depends on the working
directory.
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

from handsim.errors import ConfigurationError, DataNotFoundError, suggest

__all__ = [
    "DEFAULT_HAND",
    "MJCF_MAPPING_FILE",
    "available_hands",
    "cache_folder_error",
    "cache_root",
    "data_dir",
    "grasps_dir",
    "hand_dir",
    "hand_metadata_path",
    "is_inside",
    "models_dir",
]

DEFAULT_HAND = "default_hand"
#: A hand folder may hold this MJCF mapping file instead of hand.json + URDF
#: (:mod:`handsim.importers.mjcf`; same name as its ``MAPPING_FILE``).
MJCF_MAPPING_FILE = "mjcf.json"
_KINDS = ("models", "grasps")
_PACKAGE = Path(__file__).resolve().parent


@functools.cache
def data_dir(kind: str) -> Path:
    """Return the folder of one kind of shipped data.

    Args:
        kind: ``"models"`` or ``"grasps"``.

    Returns:
        The absolute path of the folder.

    Raises:
        DataNotFoundError: If the folder is in neither the wheel layout nor the source layout.
    """
    if kind not in _KINDS:
        raise DataNotFoundError(suggest(kind, _KINDS, "data kind"))
    for candidate in (_PACKAGE / "_data" / kind, _PACKAGE.parent / kind):
        if candidate.is_dir():
            return candidate
    raise DataNotFoundError(
        f"handsim data folder {kind!r} not found (looked in {_PACKAGE / '_data' / kind} and "
        f"{_PACKAGE.parent / kind}); reinstall handsim"
    )


def models_dir() -> Path:
    """Folder holding one sub-folder per shipped hand."""
    return data_dir("models")


def grasps_dir() -> Path:
    """Folder holding the taxonomy data files."""
    return data_dir("grasps")


def _is_hand_folder(path: Path) -> bool:
    return (path / "hand.json").is_file() or (path / MJCF_MAPPING_FILE).is_file()


def available_hands() -> list[str]:
    """Names of the shipped hands (sub-folders of ``models/`` with a ``hand.json`` or an MJCF
    mapping file)."""
    return sorted(p.name for p in models_dir().iterdir() if _is_hand_folder(p))


def hand_dir(name_or_path: str | Path) -> Path:
    """Resolve a shipped hand's name, or a path to a hand folder, to the folder.

    Args:
        name_or_path: A shipped hand's name (see :func:`available_hands`) or a path to a folder
            holding ``hand.json`` (or an MJCF mapping file, see :func:`hand_metadata_path`).
            A bare name (no path separator) found in both places is the folder on disk only
            if that folder is a hand folder.

    Raises:
        DataNotFoundError: If neither resolves, naming the valid shipped hands.
    """
    path = Path(name_or_path)
    shipped = models_dir() / str(name_or_path)
    # A bare shipped name stays the shipped hand when the working directory happens to hold a
    # folder of that name that is not a hand folder.
    bare = isinstance(name_or_path, str) and not any(sep and sep in name_or_path for sep in ("/", os.sep, os.altsep))
    bare_shipped_name = bare and _is_hand_folder(shipped)
    if path.is_dir() and (_is_hand_folder(path) or not bare_shipped_name):
        if not _is_hand_folder(path):
            raise DataNotFoundError(f"hand folder {path} has no hand.json (the hand metadata file) "
                                    f"and no {MJCF_MAPPING_FILE} (an MJCF hand's mapping file)")
        return path.resolve()
    if _is_hand_folder(shipped):
        return shipped
    if path.is_file():  # the URDF or hand.json given for its folder
        hint = f" (the folder holding it, {path.parent}, is one)" if _is_hand_folder(path.parent) else ""
        raise DataNotFoundError(f"no hand {str(name_or_path)!r}: that is a file; expected a hand folder, holding "
                                f"hand.json or {MJCF_MAPPING_FILE}{hint}")
    raise DataNotFoundError(
        f"no hand {str(name_or_path)!r}: not a folder on disk; "
        + suggest(str(name_or_path), available_hands(), "shipped hand")
    )


def hand_metadata_path(folder: Path) -> Path:
    """The ``hand.json`` of a hand folder (from :func:`hand_dir`).

    A folder with an MJCF mapping file and no ``hand.json`` is an MJCF hand: it is converted
    (once; cached by content hash) by :func:`handsim.importers.mjcf.converted_hand_dir`, and the
    converted ``hand.json`` is returned. Its URDF sits next to it; the hand folder itself (its
    ``grasps.json``) stays ``folder``.

    Raises:
        MissingDependencyError: An MJCF hand without the ``handsim[mjcf]`` extra installed.
        MetadataError: A malformed mapping file.
    """
    path = Path(folder) / "hand.json"
    if path.is_file() or not (Path(folder) / MJCF_MAPPING_FILE).is_file():
        return path
    from handsim.importers.mjcf import converted_hand_dir  # mujoco is an optional extra

    return converted_hand_dir(folder) / "hand.json"


def cache_root() -> Path:
    """Where handsim caches files it derives from hand descriptions (MJCF hands converted to
    URDF, PyBullet's copies of URDFs without frame links): ``$HANDSIM_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/handsim``, else ``~/.cache/handsim`` (a folder under the system temp dir
    if that is not writable)."""
    env = os.environ.get("HANDSIM_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    root = Path(base) / "handsim"
    try:
        root.mkdir(parents=True, exist_ok=True)
        if os.access(root, os.W_OK):
            return root
    except OSError:
        pass
    return Path(tempfile.gettempdir()) / f"handsim-cache-{os.getuid() if hasattr(os, 'getuid') else 'user'}"


def cache_folder_error(folder: Path, what: str, exc: OSError) -> ConfigurationError:
    """The error for a cache folder that cannot be created or written (``HANDSIM_CACHE_DIR``
    naming a file, or a read-only place): names the folder, what it was for and how to choose
    another.

    Args:
        folder: The folder that could not be created or written.
        what: What it was for (e.g. "the converted MJCF hand 'shadow'").
        exc: The error the file system gave.
    """
    env = os.environ.get("HANDSIM_CACHE_DIR")
    source = (f"HANDSIM_CACHE_DIR={env}" if env else
              "the default cache ($XDG_CACHE_HOME/handsim or ~/.cache/handsim); set HANDSIM_CACHE_DIR to choose another")
    return ConfigurationError(f"cannot create the folder {folder} for {what}: {exc.strerror or exc}; expected a cache "
                              f"folder that can be created and written ({source})")


def is_inside(path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is ``folder`` or lies under it (both resolved: symlinks and ``..`` followed)."""
    try:
        Path(path).resolve().relative_to(Path(folder).resolve())
    except ValueError:
        return False
    return True
