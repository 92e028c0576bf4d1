"""Small process-level I/O helpers (no third-party imports)."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

__all__ = ["DuplicateKeyError", "free_backup_path", "loads_unique_keys", "not_utf8", "quiet_connect", "quiet_stderr", "quiet_stdout"]


class DuplicateKeyError(ValueError):
    """A JSON object names the same key twice (``json.loads`` would silently keep the last)."""


def _unique_pairs(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKeyError(f"duplicate key {key!r} in one JSON object (JSON would silently keep only the "
                                    "last; each key must appear once)")
        out[key] = value
    return out


def loads_unique_keys(text: str) -> object:
    """``json.loads`` for files people write by hand (hand.json, grasps.json, the taxonomy):
    a key given twice in one object is an error, not a silent "last one wins".

    Raises:
        json.JSONDecodeError: Not JSON.
        DuplicateKeyError: A key repeated within one object.
    """
    return json.loads(text, object_pairs_hook=_unique_pairs)


def not_utf8(path: str | os.PathLike[str], exc: UnicodeDecodeError, kind: str = "JSON") -> str:
    """The one-line message for a data file that is not UTF-8 text (each loader raises it as
    its own error class)."""
    return f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); expected a {kind} file in UTF-8"


def free_backup_path(path: Path) -> Path:
    """``<path>.bak``, or ``<path>.bak.1``, ``.bak.2``, ... when earlier backups exist: a backup
    is never overwritten (it may hold the only copy of a hand-written plan or of a finished run)."""
    candidate = path.with_name(path.name + ".bak")
    n = 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.bak.{n}")
    return candidate


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Silence file descriptor 1 for the block (PyBullet's C code prints "argv[0]=" on connect).

    handsim's own output (the benchmark table) goes to stdout and must stay machine-readable.
    Python-level output is flushed first so nothing of ours is lost, and C stdio is flushed
    before fd 1 is restored, so nothing C code buffered comes out later (at exit, when stdout
    is a pipe or a file).
    """
    with _silenced((1,)):
        yield


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 for the block (PyBullet prints "pybullet build time: ..." to
    stderr when its module is imported, which would precede a user error's one line)."""
    with _silenced((2,)):
        yield


@contextlib.contextmanager
def quiet_connect() -> Iterator[None]:
    """Silence file descriptors 1 and 2 around a PyBullet connect ("argv[0]=" and the like).

    Only the connect is wrapped: errors there are raised as exceptions, so nothing of value is
    hidden.
    """
    with _silenced((1, 2)):
        yield


@contextlib.contextmanager
def _silenced(fds: tuple[int, ...]) -> Iterator[None]:
    saved: list[tuple[int, int]] = []
    try:
        for fd in fds:
            stream = {1: sys.stdout, 2: sys.stderr}.get(fd)
            if stream is not None:
                stream.flush()
            saved.append((fd, os.dup(fd)))
    except (OSError, ValueError, AttributeError):  # no real fd (embedded, closed): leave them be
        for _, copy in saved:
            os.close(copy)
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            for fd, _ in saved:
                os.dup2(devnull.fileno(), fd)
        yield
    finally:
        _flush_c_stdio()
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)


def _flush_c_stdio() -> None:
    """``fflush(NULL)``: write out every C stdio buffer (a no-op where libc is not reachable)."""
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError, TypeError):
        pass
