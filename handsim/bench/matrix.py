"""The coverage matrix: several benchmark runs (hands) x the 33 grasp types of the taxonomy.

Built from ``results.json`` files (:func:`load_matrix`) or loaded results
(:func:`build_matrix`); each run is one row, labelled with its hand's name. A cell holds the
grasp type's success rate in that run (``successes / trials``, None when the run did not include
the type) and whether it was achieved (rate >= the run's success threshold). A hand's coverage
is its achieved types out of the 33 (types a run skipped count as not achieved, and the
number of types it ran is given too).

Outputs (:func:`write_matrix`):

* ``matrix.json``: ``{"schema": 1, "grasps": [{"number", "id", "name", "type"} x 33],
  "hands": [{"label", "name", "path", "source", "policy", "trials", "seed",
  "success_threshold", "complete", "coverage": {"achieved", "run", "total"}}],
  "success_rate": [[rate or null] x 33] per hand, "successes": [[int]], "trials": [[int]],
  "achieved": [[bool]], "notes": [str]}``.
* ``matrix.png``: a heat map drawn with Pillow: one row per hand, one column per grasp number;
  the colour goes from red (rate 0) through yellow to green (rate 1), light grey where the type
  was not run; a black dot marks an achieved cell; the hand's ``N/33`` is at the row's end.
* :meth:`CoverageMatrix.table`: a text table with one line per grasp type and one column per
  hand (``2/3 yes``), ending with the coverage line.

Differences between the runs that affect the comparison are listed in ``notes``: success
threshold, policy, trials per type, incomplete runs, and the configuration keys the baseline
comparison (:func:`handsim.bench.compare.compare_results`) also notes: ``seed``, ``protocol``,
``episode``, ``env_id`` and ``env_kwargs`` (for the dicts, each key inside that differs, e.g.
``config.protocol.max_rotation_deg``). Comparing such runs is allowed; the reader should know.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from handsim.bench.results import (
    MISSING,
    BenchResults,
    config_differences,
    load_results,
    make_out_dir,
    write_json_atomic,
)
from handsim.errors import ConfigurationError
from handsim.grasps import default_taxonomy

__all__ = [
    "CELL_PX",
    "CONFIG_NOTE_KEYS",
    "MATRIX_JSON",
    "MATRIX_PNG",
    "MATRIX_SCHEMA",
    "CoverageMatrix",
    "HeatmapGeometry",
    "MatrixRow",
    "build_matrix",
    "heatmap",
    "heatmap_geometry",
    "load_matrix",
    "rate_colour",
    "write_matrix",
]

MATRIX_SCHEMA = 1
MATRIX_JSON = "matrix.json"
MATRIX_PNG = "matrix.png"
#: Side of one heat-map cell [px].
CELL_PX = 22

_NOT_RUN = (215, 215, 215)
_RED = (215, 48, 39)
_YELLOW = (254, 224, 139)
_GREEN = (26, 152, 80)
_BLACK = (0, 0, 0)
_WHITE = (255, 255, 255)
_GREY = (90, 90, 90)


@dataclasses.dataclass(frozen=True)
class MatrixRow:
    """One run (hand) of the matrix; every tuple has one entry per taxonomy type, number order.

    Attributes:
        label: The row's unique label (the hand name, ``#2`` etc. added for repeats).
        hand: The hand's name.
        path: The hand folder the run used.
        source: The results file the row came from ("" when built in memory).
        policy: The run's policy factory.
        trials_planned: Trials per type the run asked for.
        seed: The run's base seed (None if not recorded).
        success_threshold: The run's achieved threshold [-].
        complete: Every planned trial of the run has a result.
        success_rate: Per type, successes / trials [-], None when the type was not run.
        successes: Per type, successful trials.
        trials: Per type, trials run.
        achieved: Per type, achieved in this run.
    """

    label: str
    hand: str
    path: str
    source: str
    policy: str
    trials_planned: int
    seed: int | None
    success_threshold: float
    complete: bool
    success_rate: tuple[float | None, ...]
    successes: tuple[int, ...]
    trials: tuple[int, ...]
    achieved: tuple[bool, ...]

    @property
    def coverage(self) -> int:
        """Achieved types."""
        return sum(self.achieved)

    @property
    def types_run(self) -> int:
        """Types with at least one trial."""
        return sum(n > 0 for n in self.trials)


@dataclasses.dataclass(frozen=True)
class CoverageMatrix:
    """Hands x grasp types.

    Attributes:
        grasps: ``(number, id, name, type)`` of every taxonomy type, in number order.
        rows: One per run.
        notes: Differences between the runs worth knowing.
    """

    grasps: tuple[tuple[int, str, str, str], ...]
    rows: tuple[MatrixRow, ...]
    notes: tuple[str, ...]

    @property
    def total(self) -> int:
        """Number of grasp types (33)."""
        return len(self.grasps)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (see the module docstring)."""
        return {
            "schema": MATRIX_SCHEMA,
            "grasps": [{"number": n, "id": i, "name": name, "type": t} for n, i, name, t in self.grasps],
            "hands": [
                {"label": r.label, "name": r.hand, "path": r.path, "source": r.source, "policy": r.policy,
                 "trials": r.trials_planned, "seed": r.seed, "success_threshold": r.success_threshold,
                 "complete": r.complete,
                 "coverage": {"achieved": r.coverage, "run": r.types_run, "total": self.total}}
                for r in self.rows
            ],
            "success_rate": [list(r.success_rate) for r in self.rows],
            "successes": [list(r.successes) for r in self.rows],
            "trials": [list(r.trials) for r in self.rows],
            "achieved": [list(r.achieved) for r in self.rows],
            "notes": list(self.notes),
        }

    def table(self) -> str:
        """A text table: one line per grasp type, one column per hand, then the coverage line."""
        cells = [[_cell_text(r, j) for r in self.rows] for j in range(self.total)]
        widths = [max([len(r.label)] + [len(cells[j][i]) for j in range(self.total)] + [len(_cov_text(r, self.total))])
                  for i, r in enumerate(self.rows)]
        name_w = max(len(name) for _, _, name, _ in self.grasps)
        head = f"{'#':>2}  {'grasp':<{name_w}}  " + "  ".join(f"{r.label:<{w}}" for r, w in zip(self.rows, widths))
        lines = [head.rstrip(), "-" * len(head.rstrip())]
        for j, (number, _, name, _) in enumerate(self.grasps):
            line = f"{number:>2}  {name:<{name_w}}  " + "  ".join(f"{c:<{w}}" for c, w in zip(cells[j], widths))
            lines.append(line.rstrip())
        cov = f"{'':>2}  {'coverage':<{name_w}}  " + "  ".join(
            f"{_cov_text(r, self.total):<{w}}" for r, w in zip(self.rows, widths))
        lines += ["-" * len(head.rstrip()), cov.rstrip()]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _cell_text(row: MatrixRow, j: int) -> str:
    if row.trials[j] == 0:
        return "-"
    return f"{row.successes[j]}/{row.trials[j]} {'yes' if row.achieved[j] else 'no'}"


def _cov_text(row: MatrixRow, total: int) -> str:
    return f"{row.coverage}/{total}" + (f" ({row.types_run} run)" if row.types_run < total else "")


def _row(results: BenchResults, label: str, grasps: Sequence[tuple[int, str, str, str]]) -> MatrixRow:
    by_id = {g.id: g for g in results.grasps}
    outcomes = [by_id.get(gid) for _, gid, _, _ in grasps]
    seed = results.config.get("seed")
    return MatrixRow(
        label=label,
        hand=str(results.hand.get("name", "?")),
        path=str(results.hand.get("path", "")),
        source="" if results.path is None else str(results.path),
        policy=results.policy,
        trials_planned=int(results.config["trials"]),
        seed=None if seed is None else int(seed),
        success_threshold=results.success_threshold,
        complete=results.complete,
        success_rate=tuple(None if o is None else o.success_rate for o in outcomes),
        successes=tuple(0 if o is None else o.successes for o in outcomes),
        trials=tuple(0 if o is None else o.trials for o in outcomes),
        achieved=tuple(bool(o is not None and o.achieved) for o in outcomes),
    )


#: ``config`` keys whose differences are noted (as ``compare_results`` does for a baseline).
CONFIG_NOTE_KEYS = ("seed", "protocol", "episode", "env_id", "env_kwargs")
def _shown(value: Any) -> str:
    return "(not recorded)" if value is MISSING else repr(value)


def _notes(runs: Sequence[BenchResults], labels: Sequence[str]) -> list[str]:
    notes = []
    for what, get in (("success threshold", lambda r: r.success_threshold), ("policy", lambda r: r.policy),
                      ("trials per type", lambda r: int(r.config["trials"]))):
        values = [get(r) for r in runs]
        if len(set(values)) > 1:
            notes.append(f"the runs differ in {what}: " + ", ".join(f"{lab} {v}" for lab, v in zip(labels, values)))
    for key, sub, values in config_differences([r.config for r in runs], CONFIG_NOTE_KEYS):
        field = f"config.{key}" + ("" if sub is None else f".{sub}")
        notes.append(f"the runs differ in {field}: " + ", ".join(f"{lab} {_shown(v)}" for lab, v in zip(labels, values)))
    for lab, r in zip(labels, runs):
        if not r.complete:
            done = sum(g.trials for g in r.grasps)
            planned = sum(g.trials_planned for g in r.grasps)
            notes.append(f"{lab}: incomplete run ({done}/{planned} trials; finish it with --resume)")
    return notes


def build_matrix(runs: Sequence[BenchResults], labels: Sequence[str] | None = None) -> CoverageMatrix:
    """The matrix of some runs, one row each, in the order given.

    Args:
        runs: Benchmark results (see :func:`handsim.bench.results.load_results`).
        labels: Row labels (default: the hands' names; repeats get ``#2``, ``#3``...).

    Raises:
        ConfigurationError: No runs, or ``labels`` of another length or with repeats.
    """
    if not runs:
        raise ConfigurationError("coverage matrix: expected at least one results file, got none")
    if labels is None:
        labels, seen = [], {}
        for r in runs:
            name = str(r.hand.get("name", "?"))
            seen[name] = seen.get(name, 0) + 1
            labels.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    labels = [str(x) for x in labels]
    if len(labels) != len(runs):
        raise ConfigurationError(f"coverage matrix: expected one label per run ({len(runs)}), got {len(labels)}")
    if len(set(labels)) != len(labels):
        raise ConfigurationError(f"coverage matrix: labels must differ, got {labels}")
    grasps = tuple((g.number, g.id, g.name, g.type) for g in default_taxonomy())
    return CoverageMatrix(
        grasps=grasps,
        rows=tuple(_row(r, lab, grasps) for r, lab in zip(runs, labels)),
        notes=tuple(_notes(runs, labels)),
    )


def load_matrix(paths: Sequence[str | Path], labels: Sequence[str] | None = None) -> CoverageMatrix:
    """:func:`build_matrix` of ``results.json`` files (or folders holding one).

    Raises:
        ResultsError: A file is missing or malformed (the message names it).
    """
    return build_matrix([load_results(p) for p in paths], labels)


# ----------------------------------------------------------------------------------------------
# heat map


def rate_colour(rate: float | None) -> tuple[int, int, int]:
    """Cell colour: red (0) -> yellow (0.5) -> green (1); light grey for None (not run)."""
    if rate is None:
        return _NOT_RUN
    r = min(1.0, max(0.0, float(rate)))
    a, b, t = (_RED, _YELLOW, r / 0.5) if r <= 0.5 else (_YELLOW, _GREEN, (r - 0.5) / 0.5)
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b))  # type: ignore[return-value]


@dataclasses.dataclass(frozen=True)
class HeatmapGeometry:
    """Where the heat map's cells are [px].

    Attributes:
        left: x of the first column.
        top: y of the first row.
        cell: Cell side.
        width: Image width.
        height: Image height.
    """

    left: int
    top: int
    cell: int
    width: int
    height: int

    def cell_box(self, row: int, col: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of a cell, inclusive."""
        x0, y0 = self.left + col * self.cell, self.top + row * self.cell
        return x0, y0, x0 + self.cell - 1, y0 + self.cell - 1


_TITLE_H, _HEAD_H, _COV_W, _LEGEND_H, _PAD = 28, 22, 110, 40, 8


def heatmap_geometry(matrix: CoverageMatrix) -> HeatmapGeometry:
    """The layout :func:`heatmap` draws ``matrix`` with."""
    from handsim.bench.pictures import _font, _pil

    Image, ImageDraw, _ = _pil()
    font = _font(12)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_w = max(int(probe.textlength(r.label, font=font)) for r in matrix.rows)
    left = _PAD + label_w + _PAD
    top = _TITLE_H + _HEAD_H
    width = max(left + matrix.total * CELL_PX + _COV_W, 520)
    height = top + len(matrix.rows) * CELL_PX + _LEGEND_H
    return HeatmapGeometry(left=left, top=top, cell=CELL_PX, width=width, height=height)


def heatmap(matrix: CoverageMatrix, path: str | Path, title: str = "") -> Path:
    """Draw the matrix as a heat map PNG (see the module docstring).

    Returns:
        The path written.
    """
    from handsim.bench.pictures import _font, _pil

    Image, ImageDraw, _ = _pil()
    geo = heatmap_geometry(matrix)
    img = Image.new("RGB", (geo.width, geo.height), _WHITE)
    draw = ImageDraw.Draw(img)
    font, small = _font(12), _font(10)
    draw.text((_PAD, 8), title or f"coverage matrix: {len(matrix.rows)} hands x {matrix.total} grasp types",
              fill=_BLACK, font=font)
    for j, (number, _, _, _) in enumerate(matrix.grasps):
        x0, _, x1, _ = geo.cell_box(0, j)
        text = str(number)
        draw.text((x0 + (x1 - x0 + 1 - draw.textlength(text, font=small)) / 2, _TITLE_H + 6), text,
                  fill=_BLACK, font=small)
    dot = max(2, geo.cell // 6)
    for i, row in enumerate(matrix.rows):
        _, y0, _, y1 = geo.cell_box(i, 0)
        draw.text((_PAD, y0 + (geo.cell - 12) / 2), row.label, fill=_BLACK, font=font)
        for j in range(matrix.total):
            x0, y0, x1, y1 = geo.cell_box(i, j)
            draw.rectangle([x0, y0, x1, y1], fill=rate_colour(row.success_rate[j]), outline=_WHITE)
            if row.achieved[j]:
                cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
                draw.ellipse([cx - dot, cy - dot, cx + dot, cy + dot], fill=_BLACK)
        x_end = geo.left + matrix.total * geo.cell + _PAD
        draw.text((x_end, y0 + (geo.cell - 12) / 2), _cov_text(row, matrix.total), fill=_BLACK, font=font)
    ly = geo.top + len(matrix.rows) * geo.cell + 10
    draw.text((_PAD, ly), "colour: success rate, red 0 .. yellow 0.5 .. green 1; grey: not run; "
              "dot: achieved (rate >= threshold)", fill=_GREY, font=small)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def write_matrix(matrix: CoverageMatrix, out_dir: str | Path, title: str = "") -> dict[str, Path]:
    """Write ``matrix.json`` (atomically) and ``matrix.png`` into ``out_dir``.

    Returns:
        ``{"json": path, "png": path}``.

    Raises:
        ConfigurationError: ``out_dir`` cannot be created.
    """
    out = make_out_dir(out_dir)  # an --out that cannot be created is one line, not a traceback
    return {"json": write_json_atomic(out / MATRIX_JSON, matrix.to_dict()),
            "png": heatmap(matrix, out / MATRIX_PNG, title)}
