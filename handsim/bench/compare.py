"""Compare a run with a baseline run: coverage lost, success rates dropped, improvements.

A run **regresses** when, over the grasp types both runs have results for, its coverage is
lower than the baseline's, or when any grasp type's success rate is lower by more than the
tolerance (default :data:`~handsim.bench.config.BASELINE_TOLERANCE`, 0.34: one trial of
three). A grasp that lost its "achieved" status always lowers the coverage, so it is a
regression too. Differences in configuration (protocol, trials, hand, policy) are reported as
notes: comparing such runs is allowed, but the reader should know.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from handsim.bench.config import BASELINE_TOLERANCE
from handsim.bench.results import BenchResults, config_differences
from handsim.errors import ConfigurationError, ResultsError

__all__ = ["Comparison", "compare_results"]

# Rates are ratios of small counts; 1e-9 keeps 1/3 - 0 from tripping a 0.34 tolerance by rounding.
_EPS = 1e-9


@dataclasses.dataclass(frozen=True)
class Comparison:
    """The outcome of :func:`compare_results`.

    Attributes:
        coverage_before: Achieved grasp types in the baseline, over the shared grasp types.
        coverage_after: Achieved grasp types in the run, over the shared grasp types.
        shared: Number of grasp types both runs have results for.
        lost: Lines for grasp types achieved in the baseline and not now.
        dropped: Lines for success rates lower by more than the tolerance.
        gained: Lines for grasp types achieved now and not in the baseline.
        raised: Lines for success rates higher by more than the tolerance.
        notes: Configuration differences and grasp types only one run has.
        tolerance: The success-rate tolerance used [-].
    """

    coverage_before: int
    coverage_after: int
    shared: int
    lost: tuple[str, ...]
    dropped: tuple[str, ...]
    gained: tuple[str, ...]
    raised: tuple[str, ...]
    notes: tuple[str, ...]
    tolerance: float

    @property
    def regressed(self) -> bool:
        """Coverage dropped or some success rate dropped beyond the tolerance."""
        return self.coverage_after < self.coverage_before or bool(self.lost) or bool(self.dropped)

    def text(self) -> str:
        """A readable diff, one fact per line, ending with the verdict."""
        lines = [f"baseline comparison over {self.shared} grasp types: coverage {self.coverage_before} -> "
                 f"{self.coverage_after}"]
        lines += [f"note: {n}" for n in self.notes]
        if self.lost:
            lines.append("lost coverage:")
            lines += [f"  {x}" for x in self.lost]
        if self.dropped:
            lines.append(f"success rate dropped by more than {self.tolerance:g}:")
            lines += [f"  {x}" for x in self.dropped]
        if self.gained:
            lines.append("gained coverage:")
            lines += [f"  {x}" for x in self.gained]
        if self.raised:
            lines.append(f"success rate rose by more than {self.tolerance:g}:")
            lines += [f"  {x}" for x in self.raised]
        if self.regressed:
            lines.append("REGRESSION against the baseline")
        else:
            lines.append("no regression against the baseline" + (" (improved)" if self.gained or self.raised else ""))
        return "\n".join(lines)


def compare_results(current: BenchResults, baseline: BenchResults, tolerance: float = BASELINE_TOLERANCE) -> Comparison:
    """Compare a run with a baseline run.

    Args:
        current: The new run.
        baseline: The earlier run.
        tolerance: Success-rate drop that is still not a regression [-], in [0, 1].

    Returns:
        The comparison (``regressed`` tells the verdict, ``text()`` the diff).

    Raises:
        ConfigurationError: ``tolerance`` outside [0, 1].
        ResultsError: The two runs share no grasp type with finished trials (nothing to compare).
    """
    if not 0.0 <= tolerance <= 1.0:
        raise ConfigurationError(f"tolerance: expected a number in [0, 1], got {tolerance!r}")
    before = {g.id: g for g in baseline.grasps if g.trials > 0}
    after = {g.id: g for g in current.grasps if g.trials > 0}
    shared = [g.id for g in current.grasps if g.id in before and g.id in after]
    if not shared:
        # "No regression over 0 grasp types" would pass CI with the wrong baseline file.
        raise ResultsError(f"baseline: no grasp type in common with this run, nothing to compare (baseline: "
                           f"{', '.join(before) or 'no finished trial'}; this run: {', '.join(after) or 'no finished trial'})")
    notes = []
    only_base = [gid for gid in before if gid not in after]
    only_now = [gid for gid in after if gid not in before]
    if only_base:
        notes.append(f"not compared (only in the baseline): {', '.join(only_base)}")
    if only_now:
        notes.append(f"not compared (only in this run): {', '.join(only_now)}")
    if dict(current.hand).get("name") != dict(baseline.hand).get("name"):
        notes.append(f"hand differs: {baseline.hand.get('name')!r} -> {current.hand.get('name')!r}")
    if current.policy != baseline.policy:
        notes.append(f"policy differs: {baseline.policy!r} -> {current.policy!r}")
    files_before, files_after = dict(baseline.hand).get("sha256"), dict(current.hand).get("sha256")
    if isinstance(files_before, Mapping) and isinstance(files_after, Mapping):
        changed = sorted(k for k in set(files_before) & set(files_after) if files_before[k] != files_after[k])
        if changed:
            notes.append(f"the hand's files differ from the baseline's: {', '.join(changed)}")
    caps_before, caps_after = dict(baseline.hand).get("effort_caps") or {}, dict(current.hand).get("effort_caps") or {}
    if caps_before != caps_after:
        notes.append(f"plans' lowered effort caps differ: {caps_before or 'none'} -> {caps_after or 'none'}")
    keys = ("trials", "seed", "success_threshold", "protocol", "episode", "env_id")
    found = config_differences([baseline.config, current.config], keys, missing=None)
    for key in dict.fromkeys(k for k, _, _ in found):
        parts = [f"{was!r} -> {now!r}" if sub is None else f"{sub} {was!r} -> {now!r}"
                 for k, sub, (was, now) in found if k == key]
        notes.append(f"config.{key} differs: " + ", ".join(parts))
    lost, dropped, gained, raised = [], [], [], []
    for gid in shared:
        b, a = before[gid], after[gid]
        assert b.success_rate is not None and a.success_rate is not None  # trials > 0 above
        what = f"{a.number} {a.name} ({gid}): success rate {b.success_rate:.2f} -> {a.success_rate:.2f}"
        if b.achieved and not a.achieved:
            lost.append(what + (f"; now: {a.reason}" if a.reason else ""))
        elif a.achieved and not b.achieved:
            gained.append(what)
        delta = a.success_rate - b.success_rate
        if delta < -tolerance - _EPS:
            dropped.append(what + (f"; now: {a.reason}" if a.reason else ""))
        elif delta > tolerance + _EPS:
            raised.append(what)
    return Comparison(
        coverage_before=sum(before[g].achieved for g in shared),
        coverage_after=sum(after[g].achieved for g in shared),
        shared=len(shared),
        lost=tuple(lost),
        dropped=tuple(dropped),
        gained=tuple(gained),
        raised=tuple(raised),
        notes=tuple(notes),
        tolerance=tolerance,
    )
