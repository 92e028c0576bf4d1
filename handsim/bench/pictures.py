"""Pictures of a benchmark run, drawn with Pillow only: the contact sheet and the coverage chart.

* ``contact_sheet.png``: one tile per grasp type, the env's rendered frame at the end of the
  first trial's (trial 0's) hold, over a two-line strip: ``<number> <name>`` and the grasp's
  verdict ``PASS|FAIL`` (green or red strip; grey ``NOT RUN``), then what the frame shows,
  e.g. ``2/3 succeeded; trial 0 shown: not held`` (the verdict is over all trials, the frame
  is one of them). Size: ``columns * tile_w`` by ``rows * (tile_h + LABEL_HEIGHT_PX)`` pixels.
* ``coverage.png``: one bar per grasp type, its success rate (0..1), green when achieved and
  red when not, with the success threshold as a dashed line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from handsim.bench.results import BenchResults, GraspOutcome
from handsim.errors import ConfigurationError, MissingDependencyError

__all__ = [
    "LABEL_HEIGHT_PX",
    "SHEET_COLUMNS",
    "TILE_SIZE_PX",
    "contact_sheet",
    "coverage_chart",
    "frame_note",
    "run_pictures",
    "save_frame",
]

#: Height of the two-line text strip under each contact-sheet tile [px].
LABEL_HEIGHT_PX = 34
_LINE_PX = 15
#: Contact-sheet tile (width, height) [px]; frames are resized to it.
TILE_SIZE_PX = (240, 180)
#: Tiles per contact-sheet row.
SHEET_COLUMNS = 6

_PASS = (34, 139, 34)
_FAIL = (200, 40, 40)
_GREY = (90, 90, 90)
_WHITE = (255, 255, 255)
_BLACK = (0, 0, 0)


def _pil():  # -> module PIL.Image; Pillow is a dependency, but say how to get it if missing
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError as exc:
        raise MissingDependencyError("the benchmark pictures need Pillow: pip install pillow") from exc
    return Image, ImageDraw, ImageFont


def _font(size: int):
    _, _, ImageFont = _pil()
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def save_frame(frame: ArrayLike, path: str | Path) -> Path:
    """Save an (H, W, 3) uint8 RGB frame as PNG (folders created)."""
    Image, _, _ = _pil()
    arr = np.asarray(frame, dtype=np.uint8)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ConfigurationError(f"save_frame: expected an (H, W, 3) RGB image, got shape {arr.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(arr[..., :3])).save(path)
    return path


def contact_sheet(
    tiles: Sequence[tuple[str, bool | None, Path | None] | tuple[str, bool | None, Path | None, str]],
    path: str | Path,
    tile_size: tuple[int, int] = TILE_SIZE_PX,
    columns: int = SHEET_COLUMNS,
) -> Path:
    """Tile frames into one labelled PNG.

    Args:
        tiles: Per grasp, in order: (label text such as ``"24 Tip Pinch"``, passed (None: not
            run, a grey strip), frame PNG path or None when there is no frame: a grey tile says
            so[, a second line saying what the frame shows]).
        path: The PNG to write.
        tile_size: (width, height) of a tile [px].
        columns: Tiles per row (fewer when there are fewer tiles).

    Returns:
        The path written; the image is ``min(columns, n) * width`` by
        ``rows * (height + LABEL_HEIGHT_PX)``.
    """
    Image, ImageDraw, _ = _pil()
    if not tiles:
        raise ConfigurationError("contact_sheet: expected at least one tile, got none")
    w, h = tile_size
    cols = max(1, min(columns, len(tiles)))
    rows = math.ceil(len(tiles) / cols)
    sheet = Image.new("RGB", (cols * w, rows * (h + LABEL_HEIGHT_PX)), _WHITE)
    draw = ImageDraw.Draw(sheet)
    font = _font(12)
    for i, (label, passed, frame, *rest) in enumerate(tiles):
        note = str(rest[0]) if rest else ""
        x, y = (i % cols) * w, (i // cols) * (h + LABEL_HEIGHT_PX)
        if frame is not None and Path(frame).is_file():
            with Image.open(frame) as img:
                sheet.paste(img.convert("RGB").resize((w, h)), (x, y))
        else:
            draw.rectangle([x, y, x + w - 1, y + h - 1], fill=(200, 200, 200))
            draw.text((x + 8, y + h // 2 - 6), "no frame", fill=_GREY, font=font)
        colour = _GREY if passed is None else _PASS if passed else _FAIL
        draw.rectangle([x, y + h, x + w - 1, y + h + LABEL_HEIGHT_PX - 1], fill=colour)
        verdict = "NOT RUN" if passed is None else "PASS" if passed else "FAIL"
        text = _fit(draw, label, font, w - 16 - int(draw.textlength(verdict, font=font)))
        draw.text((x + 4, y + h + 3), text, fill=_WHITE, font=font)
        draw.text((x + w - 4 - int(draw.textlength(verdict, font=font)), y + h + 3), verdict, fill=_WHITE, font=font)
        if note:
            draw.text((x + 4, y + h + 3 + _LINE_PX), _fit(draw, note, font, w - 8), fill=_WHITE, font=font)
        # A thin frame keeps neighbouring renders apart.
        draw.rectangle([x, y, x + w - 1, y + h + LABEL_HEIGHT_PX - 1], outline=_WHITE)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


def _fit(draw, text: str, font, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "..."


def coverage_chart(
    rates: Sequence[tuple[int, float | None, bool]],
    path: str | Path,
    threshold: float,
    title: str = "",
) -> Path:
    """Bar chart of the success rate per grasp type.

    Args:
        rates: Per grasp: (number, success rate in [0, 1] or None when not run, achieved).
        path: The PNG to write.
        threshold: The success threshold, drawn as a dashed line [-].
        title: Text above the chart.

    Returns:
        The path written.
    """
    Image, ImageDraw, _ = _pil()
    slot, left, right, top, bottom, plot_h = 26, 56, 16, 40, 44, 260
    font, small = _font(13), _font(10)
    footer = "grasp number (Feix et al. 2016); green: achieved, red: not"
    # Wide enough for the title and the footer too: a run of a few grasp types has few bars.
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    width = left + right + math.ceil(max(slot * max(1, len(rates)), measure.textlength(title, font=font),
                                         measure.textlength(footer, font=small)))
    img = Image.new("RGB", (width, top + plot_h + bottom), _WHITE)
    draw = ImageDraw.Draw(img)

    def y_of(v: float) -> float:
        return top + plot_h * (1.0 - v)

    for v in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = y_of(v)
        draw.line([left, y, width - right, y], fill=(225, 225, 225))
        draw.text((8, y - 6), f"{v:.2f}", fill=_BLACK, font=small)
    for i, (number, rate, achieved) in enumerate(rates):
        x0 = left + i * slot + 4
        x1 = x0 + slot - 8
        if rate is not None:
            # A zero rate still gets a 2 px sliver so the bar's colour shows.
            draw.rectangle([x0, min(y_of(rate), y_of(0) - 2), x1, y_of(0)], fill=_PASS if achieved else _FAIL)
        else:
            draw.text((x0 + 2, y_of(0) - 14), "-", fill=_GREY, font=small)
        label = str(number)
        draw.text((x0 + (x1 - x0 - draw.textlength(label, font=small)) / 2, y_of(0) + 4), label, fill=_BLACK, font=small)
    ty = y_of(threshold)
    for x in range(left, width - right, 8):
        draw.line([x, ty, min(x + 4, width - right), ty], fill=_BLACK, width=1)
    draw.text((width - right - 110, ty - 14), f"threshold {threshold:g}", fill=_BLACK, font=small)
    draw.line([left, top, left, y_of(0)], fill=_BLACK)
    draw.line([left, y_of(0), width - right, y_of(0)], fill=_BLACK)
    draw.text((left, 12), title, fill=_BLACK, font=font)
    draw.text((left, top + plot_h + 24), footer, fill=_GREY, font=small)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def frame_note(g: GraspOutcome) -> str:
    """The contact-sheet line under a grasp's name: its trials, and what trial 0's frame shows.

    The frame is the end of trial 0's hold while the strip's PASS/FAIL is the grasp's verdict
    over all its trials, so the line says which trial is shown and how it ended: ``success``,
    ``held, failed`` (held but another check failed), ``not held`` (it moved or turned past
    the protocol's limits: the object may still be in the hand, as a pinch that turned is) or
    ``not pushed`` (it had already failed after the settle, or was knocked away during the
    grasp, and the pushes did not run; the frame is the end of the settle).
    """
    if not g.trials:
        return "not run"
    first = next((t for t in g.trial_results if t.get("trial") == 0), None)
    if first is None:
        return f"{g.successes}/{g.trials} succeeded; trial 0 not run"
    if first.get("success"):
        state = "success"
    elif first.get("held"):
        state = "held, failed"
    elif first.get("pushed") is False:
        state = "not pushed"
    else:
        state = "not held"
    return f"{g.successes}/{g.trials} succeeded; trial 0 shown: {state}"


def run_pictures(results: BenchResults, out_dir: str | Path, frames: Mapping[str, Path | None]) -> tuple[Path, Path]:
    """Draw both pictures of a run into ``out_dir``.

    Args:
        results: The run.
        out_dir: Output folder.
        frames: Grasp id -> its frame PNG (or None).

    Returns:
        (contact sheet path, coverage chart path).
    """
    out = Path(out_dir)
    sheet = contact_sheet(
        [(f"{g.number} {g.name}", g.achieved if g.trials else None, frames.get(g.id), frame_note(g))
         for g in results.grasps],
        out / "contact_sheet.png",
    )
    title = (f"{results.hand.get('name', '?')} + {results.policy}: coverage {results.achieved}/{results.total} "
             f"(achieved = success rate >= {results.success_threshold:g})")
    chart = coverage_chart(
        [(g.number, g.success_rate, g.achieved) for g in results.grasps], out / "coverage.png",
        results.success_threshold, title,
    )
    return sheet, chart

