"""Human and CI readable outputs of a run: the terminal table, ``report.md``, ``junit.xml``.

All of them are functions of a :class:`~handsim.bench.results.BenchResults` only, so they can
be regenerated from a saved ``results.json``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from handsim.bench.pictures import run_pictures
from handsim.bench.results import BenchResults, GraspOutcome, wilson_interval
from handsim.bench.runner import frame_path

__all__ = ["coverage_line", "format_table", "junit_xml", "report_markdown", "write_outputs"]

_HEADERS = ("#", "name", "type", "success", "Q1", "Q1 soft", "achieved", "reason")


def coverage_line(results: BenchResults) -> str:
    """``coverage: N/total``."""
    return f"coverage: {results.achieved}/{results.total}"


def _cells(g: GraspOutcome, reason_width: int | None) -> tuple[str, ...]:
    rate = "-" if g.success_rate is None else f"{g.successes}/{g.trials} ({g.success_rate:.2f})"
    reason = g.reason
    if reason_width is not None and len(reason) > reason_width:
        reason = reason[: reason_width - 3] + "..."
    soft = "-" if g.q1_soft is None else f"{g.q1_soft:.4f}"
    return (str(g.number), g.name, g.type, rate, f"{g.q1:.4f}", soft, "yes" if g.achieved else "no", reason)


def _columns(rows: Sequence[Sequence[str]]) -> list[int]:
    return [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]


def format_table(results: BenchResults, reason_width: int | None = 70) -> str:
    """The per-grasp table as aligned plain text, then the coverage line.

    Args:
        results: The run.
        reason_width: Truncate the reason column to this many characters (None: never).
    """
    rows = [_HEADERS] + [_cells(g, reason_width) for g in results.grasps]
    widths = _columns(rows)
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append(coverage_line(results))
    return "\n".join(lines)


def _interval(g: GraspOutcome) -> str:
    ci = g.success_interval
    return "-" if ci is None else f"{ci[0]:.2f}-{ci[1]:.2f}"


def _trials_to_establish(threshold: float, limit: int = 1000) -> int | None:
    """The fewest trials whose all-success 95 % interval lies at or above ``threshold``
    (None when even ``limit`` trials cannot)."""
    for n in range(1, limit + 1):
        if wilson_interval(n, n)[0] >= threshold:
            return n
    return None


def confidence_line(results: BenchResults) -> str:
    """How many achieved types the trials run establish at 95 %, and how many trials would."""
    thr = results.success_threshold
    achieved = [g for g in results.grasps if g.achieved]
    sure = sum(1 for g in achieved if g.success_interval is not None and g.success_interval[0] >= thr - 1e-12)
    need = _trials_to_establish(thr)
    line = (f"- confidence: the 95 % interval of the success rate (Wilson score) lies wholly at or above {thr:g} "
            f"for {sure} of the {len(achieved)} achieved types")
    if need is not None:
        line += (f"; a type needs at least {need} trials, all successful, for that "
                 f"(`--trials`; {need}/{need} gives {wilson_interval(need, need)[0]:.2f}-1.00)")
    return line


def _md(text: str) -> str:
    # "|" would end a table cell; two "*" (region patterns: "index.*.pad ...; middle.*.pad")
    # would make the text between them emphasis and drop both.
    return text.replace("|", "\\|").replace("*", "\\*").replace("\n", " ")


def _effort_caps_lines(hand: Mapping[str, object], run: set[str]) -> list[str]:
    """The report line listing the run's grasp types whose plans lower motor caps (if any)."""
    caps = hand.get("effort_caps")
    if not isinstance(caps, Mapping):
        return []
    parts = [f"{gid}: " + ", ".join(f"{j} {c:g}" if isinstance(c, (int, float)) else f"{j} {c!r}"
                                    for j, c in joints.items())
             for gid, joints in caps.items() if gid in run and isinstance(joints, Mapping)]
    if not parts:
        return []
    return ["- plans that lower motor effort caps below the URDF's, in N m or N (a gentler grip for "
            "that type): " + "; ".join(parts)]


def _not_pushed(trial: Mapping[str, Any]) -> bool:
    """A failed trial whose record says the disturbance protocol was not run on it (``pushed``
    false: failed already after the settle, or knocked away)."""
    return not trial.get("success") and trial.get("pushed") is False


def report_markdown(results: BenchResults) -> str:
    """``report.md``: coverage, the table, the configuration and every failure with its reasons."""
    hand, cfg = results.hand, results.config
    out = [
        f"# handsim bench: {hand.get('name', '?')}",
        "",
        f"**{coverage_line(results)}** (a grasp type is achieved when its success rate is at least "
        f"{results.success_threshold:g}; a trial succeeds when the hand has a plan for it, its pre-shape does not "
        "start inside the object, the object is held through the disturbance protocol, the contact signature "
        "matches (regions, thumb abducted or adducted), the penetration is within the limit and no joint is "
        "further past its limit than the protocol allows)"
        + ("" if results.complete else " - **incomplete run**"),
        "",
        f"- hand: `{hand.get('name')}` ({hand.get('dof')} DoF) from `{hand.get('path')}`",
        *([] if not hand.get("collision_off") else [
            "- collision turned off between links that overlap at the rest pose: "
            + ", ".join(f"{p[0]}-{p[1]} ({p[2]} mm)" for p in hand["collision_off"] if len(p) == 3)]),
        *_effort_caps_lines(hand, {g.id for g in results.grasps}),
        f"- policy: `{results.policy}`",
        f"- env: `{cfg.get('env_id')}`; trials per grasp: {cfg.get('trials')}; seed: {cfg.get('seed')}",
        confidence_line(results),
        ("- Q1: Ferrari-Canny epsilon of the contacts when the grasp is scored, as point contacts (the "
         "figure peers report; 0 for a two-finger pinch, which cannot resist a twist about the line between "
         "its contacts) and as soft fingers (`Q1 soft`, with the pads' torsional friction the simulator "
         "models); mean over the trials"),
    ]
    timing = results.timing
    if timing.get("wall_s") is not None:
        rate = timing.get("trials_per_s")
        total = sum(g.trials for g in results.grasps)
        run = timing.get("trials_run")
        resumed = (f"; the other {total - run} trials were kept from an earlier run (--resume)"
                   if isinstance(run, int) and run < total else "")
        out.append(
            f"- wall time: {timing['wall_s']:.1f} s for the {run} trials this run made "
            f"({'-' if rate is None else f'{rate:.2f}'} trials/s, {timing.get('jobs')} jobs){resumed}"
        )
    out += ["", "| # | name | type | success | 95 % interval | Q1 | Q1 soft | achieved | reason |",
            "|---|---|---|---|---|---|---|---|---|"]
    for g in results.grasps:
        cells = _cells(g, None)
        out.append("| " + " | ".join(_md(c) for c in (*cells[:4], _interval(g), *cells[4:])) + " |")
    out += ["", "## Configuration", ""]
    for section in ("protocol", "episode"):
        values = cfg.get(section)
        if isinstance(values, dict):
            out.append(f"- {section}: " + ", ".join(f"`{k}` = {v}" for k, v in values.items()))
    out += [f"- success threshold: {results.success_threshold:g}", "", "## Failures", ""]
    failures = [g for g in results.grasps if any(g.failure_reasons)]
    if not failures:
        out.append("None.")
    elif any(_not_pushed(t) for g in failures for t in g.trial_results):
        out += [("A trial marked *not pushed* had already failed when it was scored after the settle (or its "
                 "object was knocked away during the grasp), so the disturbance protocol did not run on it: no "
                 "push could make it succeed. `handsim bench --push-failed` pushes it too and records whether "
                 "the wrong grasp held."), ""]
    for g in failures:
        out.append(f"### {g.number} {g.name} (`{g.id}`): {g.successes}/{g.trials} trials succeeded")
        out.append("")
        for t, reasons in zip(g.trial_results, g.failure_reasons):
            if reasons:
                out.append(f"- trial {t['trial']} (seed {t['seed']}): " + "; ".join(_md(r) for r in reasons)
                           + (" (*not pushed*)" if _not_pushed(t) else ""))
        out.append("")
    return "\n".join(out).rstrip() + "\n"


#: Characters XML 1.0 forbids (ElementTree escapes & < > but writes these as they are, which
#: makes the file unreadable): C0 controls but tab, newline and return, lone surrogates, and the
#: noncharacters U+FFFE and U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_safe(text: str) -> str:
    """``text`` with the characters XML cannot hold shown as ``\\xNN`` escapes."""
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def junit_xml(results: BenchResults) -> str:
    """JUnit XML: one testcase per grasp type; a failed testcase's message is its reasons."""
    suite = ET.Element(
        "testsuite",
        name=f"handsim.bench.{results.hand.get('name', 'hand')}",
        tests=str(results.total),
        # A grasp not run is skipped, not failed (it is not both).
        failures=str(sum(g.trials > 0 and not g.achieved for g in results.grasps)),
        errors="0",
        skipped=str(sum(g.trials == 0 for g in results.grasps)),
        time=f"{sum(g.wall_s for g in results.grasps):.3f}",
    )
    for g in results.grasps:
        case = ET.SubElement(
            suite, "testcase", classname=f"handsim.bench.{g.type}", name=f"{g.number:02d}_{g.id}", time=f"{g.wall_s:.3f}"
        )
        if g.trials == 0:
            ET.SubElement(case, "skipped", message="not run")
        elif not g.achieved:
            reasons = [r for rs in g.failure_reasons for r in rs]
            unique = list(dict.fromkeys(reasons))
            fail = ET.SubElement(
                case, "failure",
                message=_xml_safe(f"success rate {g.success_rate:.2f} < {results.success_threshold:g}: " + "; ".join(unique)),
            )
            fail.text = _xml_safe("\n".join(
                f"trial {t['trial']} (seed {t['seed']}): " + ("; ".join(rs) if rs else "success")
                for t, rs in zip(g.trial_results, g.failure_reasons)
            ))
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_outputs(results: BenchResults, out_dir: str | Path) -> dict[str, Path]:
    """Write ``report.md``, ``junit.xml``, ``contact_sheet.png`` and ``coverage.png``.

    The contact sheet uses the frames the run kept in ``out_dir/frames``.

    Returns:
        Output name -> path.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"report": out / "report.md", "junit": out / "junit.xml"}
    paths["report"].write_text(report_markdown(results), encoding="utf-8")
    paths["junit"].write_text(junit_xml(results), encoding="utf-8")
    frames = {g.id: frame_path(out, g.number, g.id) for g in results.grasps}
    paths["contact_sheet"], paths["coverage"] = run_pictures(results, out, frames)
    return paths
