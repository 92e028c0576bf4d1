"""The one exception hierarchy of handsim.

Every error a user can cause derives from :class:`HandsimError` and says what was expected,
what was found and, where there is a closed set, the valid choices.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "ConfigurationError",
    "DataNotFoundError",
    "GraspDataError",
    "HandsimError",
    "MetadataError",
    "MissingDependencyError",
    "ResultsError",
    "SimulationError",
    "URDFError",
    "UnknownNameError",
    "one_line",
    "suggest",
]


class HandsimError(Exception):
    """Base class of every error raised by handsim."""


class DataNotFoundError(HandsimError, FileNotFoundError):
    """A shipped data file or folder (hand model, taxonomy) could not be found."""


class URDFError(HandsimError, ValueError):
    """A URDF file is missing, malformed or describes something handsim cannot load."""


class ConfigurationError(HandsimError, ValueError):
    """A joint configuration (or another array argument) has the wrong shape or non-finite values."""


class MetadataError(HandsimError, ValueError):
    """A hand metadata file is malformed: the message names the file, the field and what is allowed."""


class GraspDataError(HandsimError, ValueError):
    """A grasp (taxonomy or hand-specific) data file is malformed."""


class UnknownNameError(HandsimError, KeyError):
    """A name (grasp, link, joint, hand, region) is not known; the message lists close matches."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class SimulationError(HandsimError, RuntimeError):
    """The physics went wrong (blow-up, NaN state) or was used incorrectly."""


class MissingDependencyError(HandsimError, ImportError):
    """An optional dependency is needed; the message gives the pip install hint."""


class ResultsError(HandsimError, ValueError):
    """A saved benchmark results file is missing, malformed, or does not match the run asked for."""


def one_line(message: object) -> str:
    """``str(message)`` with every run of whitespace (newlines included) made one space: what a
    user error prints, and what a nested exception's text becomes inside another message."""
    return " ".join(str(message).split())


def suggest(name: str, valid: Iterable[str], what: str = "name") -> str:
    """Build an "unknown X" message with close matches and the valid choices.

    Args:
        name: The name that was asked for.
        valid: All valid names.
        what: What kind of name it is ("grasp", "link", ...).

    Returns:
        A one-line message such as ``unknown grasp 'tip_pinc'; did you mean 'tip_pinch'? valid: ...``.
    """
    valid = sorted(valid)
    close = difflib.get_close_matches(name, valid, n=3, cutoff=0.6)
    if not close:  # a name typed in another case ('TIP_PINCH', 'Palm'): match it case-folded
        folded: dict[str, str] = {}
        for v in valid:
            folded.setdefault(v.casefold(), v)
        close = ([folded[name.casefold()]] if name.casefold() in folded else
                 [folded[c] for c in difflib.get_close_matches(name.casefold(), list(folded), n=3, cutoff=0.6)])
    msg = f"unknown {what} {name!r}"
    if close:
        msg += "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    shown = ", ".join(valid[:40]) + (", ..." if len(valid) > 40 else "")
    return msg + (" " if close else "; ") + f"valid: {shown}"
