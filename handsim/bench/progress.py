"""A dependency-free text progress display for the benchmark (stderr).

On a terminal it redraws one line in place (bar, counts, rate, ETA); into a file or a pipe
(CI logs) it prints a plain line at most every ``interval_s`` seconds and at the end, so logs
stay short.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress", "format_duration"]

_BAR_WIDTH = 28


def format_duration(seconds: float) -> str:
    """``m:ss`` (or ``h:mm:ss``) for a duration in seconds; ``?`` when unknown."""
    if seconds != seconds or seconds < 0 or seconds == float("inf"):  # NaN, negative, inf
        return "?"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """Counts finished trials and shows them.

    Args:
        total: Trials to run in this invocation.
        stream: Where to draw (default ``sys.stderr``).
        interval_s: Seconds between plain lines when ``stream`` is not a terminal [s].
        label: Text before the bar.
        enabled: False draws nothing at all.
    """

    def __init__(
        self,
        total: int,
        stream: TextIO | None = None,
        interval_s: float = 10.0,
        label: str = "bench",
        enabled: bool = True,
    ) -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.interval_s = interval_s
        self.label = label
        self.enabled = enabled
        self.done = 0
        self.passed = 0
        self.failed = 0
        self._start = time.perf_counter()
        self._last_line = -float("inf")
        try:
            self._tty = bool(self.stream.isatty())
        except (AttributeError, ValueError):
            self._tty = False

    def update(self, success: bool, what: str = "") -> None:
        """Count one finished trial and redraw."""
        self.done += 1
        if success:
            self.passed += 1
        else:
            self.failed += 1
        self._draw(what, final=self.done >= self.total)

    def line(self, what: str = "") -> str:
        """The current status text (no control characters)."""
        elapsed = time.perf_counter() - self._start
        frac = self.done / self.total if self.total else 1.0
        filled = int(round(frac * _BAR_WIDTH))
        bar = "#" * filled + "." * (_BAR_WIDTH - filled)
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        text = (
            f"{self.label} [{bar}] {self.done}/{self.total} trials  pass {self.passed} fail {self.failed}  "
            f"{rate:.2f} trials/s  elapsed {format_duration(elapsed)}  ETA {format_duration(eta)}"
        )
        return text + (f"  {what}" if what else "")

    def _draw(self, what: str, final: bool) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if self._tty:
            # \r + clear-to-end-of-line redraws in place; the last draw ends the line.
            self.stream.write("\r\x1b[K" + self.line(what) + ("\n" if final else ""))
            self.stream.flush()
        elif final or now - self._last_line >= self.interval_s:
            self._last_line = now
            self.stream.write(self.line(what) + "\n")
            self.stream.flush()

    def close(self) -> None:
        """End a redrawn line that did not reach the total (e.g. after Ctrl-C)."""
        if self.enabled and self._tty and self.done < self.total:
            self.stream.write("\n")
            self.stream.flush()
