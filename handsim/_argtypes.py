"""Argument types and exit codes shared by the ``handsim`` subcommands (:mod:`handsim.cli` and
the subcommands that live beside their feature, e.g. :mod:`handsim.synth.cli`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

__all__ = ["EXIT_INTERNAL", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_REGRESSION", "EXIT_USAGE", "non_empty", "whole_number", "whole_numbers"]

EXIT_OK = 0
EXIT_REGRESSION = 1
EXIT_USAGE = 2
#: An unexpected exception (a bug in handsim, or in a policy/env module it ran): traceback + one line.
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C


def whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {value}")
        return value

    return parse


def whole_numbers(minimum: int) -> Callable[[str], tuple[int, ...]]:
    """An argparse type: comma-separated whole numbers >= ``minimum`` (at least one)."""
    one = whole_number(minimum)

    def parse(text: str) -> tuple[int, ...]:
        parts = [t.strip() for t in text.split(",")]
        if not text.strip() or any(not t for t in parts):
            raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers >= {minimum}, got {text!r}")
        return tuple(one(t) for t in parts)

    return parse


def non_empty(what: str) -> Callable[[str], str]:
    """An argparse type: a string that is not empty or blank (``what`` names what is expected).

    An empty path would silently mean the current folder, and an empty ``--baseline`` (an unset
    CI variable) would silently skip the comparison.
    """

    def parse(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"expected {what}, got an empty string")
        return text

    return parse
