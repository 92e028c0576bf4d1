"""``handsim synth``: synthesize a hand's grasp data for every grasp type.

Wired into :mod:`handsim.cli` by ``add_synth(subparsers)``; the handler raises
:class:`~handsim.errors.HandsimError` for bad input (the ``handsim`` main prints it as one line
and exits 2) and returns the exit code otherwise (0 done, 130 interrupted).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from handsim._argtypes import EXIT_INTERRUPTED, EXIT_OK, whole_number, whole_numbers
from handsim.errors import ConfigurationError, UnknownNameError

__all__ = ["add_synth", "format_synth_table", "run_synth_command"]

def add_synth(subparsers: argparse._SubParsersAction) -> None:
    """Register ``handsim synth``."""
    from handsim.synth.optimize import SynthSettings
    from handsim.synth.refine import DEFAULT_REFINE_SETTINGS
    from handsim.synth.synthesize import DEFAULT_REFINE, DEFAULT_VERIFY, REFINE_BUDGET

    p = subparsers.add_parser(
        "synth",
        help="synthesize a hand's grasp plans for every grasp type",
        description=(
            "Optimise, for every grasp type, the object pose and the hand's contact configuration against the "
            "type's contact signature (batched, numpy), derive pre-shape and closing targets, verify the best "
            "candidates in physics with the benchmark's own trial and seeds (a candidate that verifies is run "
            "again at 149 and 151 solver iterations, and one that holds no trial at either is not verified: it "
            "would hold only by the protocol's exact solve), and write the winners as grasps.json. "
            "A plan the file already holds is only replaced by a verified one (the file as it was is kept as "
            "<out>.bak, or the next free <out>.bak.N); an unverified candidate for such a type goes to <out stem>.unverified.json instead."
        ),
    )
    p.add_argument("--hand", required=True, metavar="NAME|PATH", help="a shipped hand's name or a hand folder")
    p.add_argument("--grasps", default=None, metavar="ID,...", help="comma-separated grasp ids or numbers (default: all 33)")
    p.add_argument("--seed", type=whole_number(0), default=0, metavar="S", help="synthesis seed (default 0)")
    p.add_argument("--jobs", type=whole_number(1), default=None, metavar="J", help="worker processes (default: the CPU count)")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="grasps file to write (default: <hand folder>/grasps.json for a hand given as a path; "
                        "required for a shipped hand)")
    p.add_argument("--candidates", type=whole_number(1), default=SynthSettings.restarts, metavar="N",
                   help=f"random restarts of the optimisation per type (default {SynthSettings.restarts})")
    p.add_argument("--verify", type=whole_number(0), default=DEFAULT_VERIFY, metavar="K",
                   help=f"best candidates per type verified in physics (default {DEFAULT_VERIFY}; 0: none)")
    p.add_argument("--refine", type=whole_number(0), default=None, metavar="N",
                   help=f"physics hill-climb evaluations per type left unverified whose best candidate kept the "
                        f"signature through the settle (close targets and object pose, on climb seeds that are not "
                        f"the benchmark's; the result is verified like any candidate; default {DEFAULT_REFINE}: off, "
                        f"{REFINE_BUDGET} with --retune; "
                        f"{REFINE_BUDGET} verified 3 more types on the default hand and about doubles the run)")
    p.add_argument("--climb-trials", type=whole_number(1), default=DEFAULT_REFINE_SETTINGS.climb_trials, metavar="K",
                   help=f"climb seeds each climb candidate is scored on (default "
                        f"{DEFAULT_REFINE_SETTINGS.climb_trials}; more cost proportionally more physics and fit the "
                        "climb's own draws of the placement jitter less)")
    p.add_argument("--climb-counts", type=whole_numbers(1), default=None, metavar="N,...",
                   help="constraint-solver iteration counts the climb seeds are scored at, in turn (e.g. 150,149,151: "
                        "a climb towards a plan that does not hold by the protocol's exact solve alone; default: the "
                        "protocol's count, and with --retune 150,149,151 for a plan that holds only at it, on at least 3 climb "
                        "seeds; at most one count per climb seed)")
    p.add_argument("--retune", action="store_true",
                   help="instead of synthesizing new plans, re-tune the ones the hand has (those in --out, else in "
                        "the hand's grasps.json), e.g. after the hand changed: each is verified on the benchmark's "
                        "seeds and hill-climbed (--refine N evaluations) from where it is unless it already holds on "
                        "the climb seeds (a plan that holds only at the protocol's solver count is climbed with its "
                        "climb seeds at 150, 149 and 151 iterations in turn, unless --climb-counts is given); the "
                        "climbed plan replaces it only if it verifies, and with at least the old plan's successes when "
                        "the old plan verified too; --candidates and --verify do not apply")
    p.set_defaults(handler=run_synth_command)


def _grasp_ids(text: str | None) -> tuple[str, ...] | None:
    from handsim.grasps import default_taxonomy

    if text is None:
        return None
    taxonomy = default_taxonomy()
    keys = [k.strip() for k in text.split(",") if k.strip()]
    if not keys:
        raise UnknownNameError(f"--grasps: expected comma-separated grasp ids or numbers, got {text!r}; "
                               f"valid: {', '.join(taxonomy.ids())}")
    out = []
    for key in keys:
        try:
            out.append(taxonomy.get(int(key) if key.isdigit() else key).id)
        except UnknownNameError as exc:
            raise UnknownNameError(f"--grasps: {exc}") from None
    return tuple(out)


def resolve_out(hand: str, out: str | None) -> Path:
    """Where the grasps file goes (never into the installed package's shipped hands).

    Raises:
        ConfigurationError: A shipped hand without ``--out``, an ``--out`` inside the package's
            ``models`` folder, a folder, or a file that cannot be written (checked by writing a
            probe file next to it, so the error comes before any work, not after the first type).
    """
    from handsim.data import hand_dir, is_inside, models_dir

    folder = hand_dir(hand)
    shipped = is_inside(folder, models_dir())
    if out is None:
        if shipped:
            raise ConfigurationError(
                f"--out: {hand!r} is a shipped hand; expected --out FILE (synth never writes into the package's "
                f"{models_dir()})")
        return folder / "grasps.json"
    path = Path(out)
    if is_inside(path, models_dir()):
        raise ConfigurationError(f"--out: {path} is inside the package's {models_dir()}; expected a file elsewhere")
    if path.is_dir():
        raise ConfigurationError(f"--out: expected a file to write, got the folder {path}")
    _check_writable(path)
    return path


def _check_writable(path: Path) -> None:
    """Create ``path``'s folder if needed and write (then remove) a probe file in it."""
    blocker = next((a for a in path.parents if a.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise ConfigurationError(f"--out {path}: {blocker} is a file, not a folder; expected a file path in a "
                                 "folder that exists or can be created")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".probe", dir=path.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigurationError(f"--out {path}: cannot write a file there: {exc.strerror or exc}; expected a "
                                 "file path in a writable folder") from None


def format_synth_table(results) -> str:  # results: handsim.synth.synthesize.SynthResults
    """The per-type table ``handsim synth`` prints."""
    lines = ["| # | grasp | verified | trials | Q1 | cost [mm] | first reason |", "|---|---|---|---|---|---|---|"]
    for t in results.types:
        reason = t.reasons[0].replace("|", "\\|") if t.reasons else ""
        cost = "-" if t.cost == float("inf") else f"{t.cost * 1e3:.2f}"
        lines.append(f"| {t.number} | {t.grasp_id} | {'yes' if t.verified else 'no'} | {t.successes}/{t.trials} | "
                     f"{t.q1:.3f} | {cost} | {reason} |")
    lines.append(f"verified: {results.verified}/{len(results.types)}  ({results.wall_s:.1f} s, {results.jobs} jobs)  "
                 f"written: {results.out}")
    if results.kept:
        lines.append(f"kept the existing plans of {', '.join(results.kept)} (their candidates were not verified); "
                     f"the candidates are in {results.unverified_out}")
    if results.backup is not None:
        lines.append(f"verified plans replaced existing ones; the file as it was: {results.backup}")
    return "\n".join(lines)


def run_synth_command(args: argparse.Namespace) -> int:
    """``handsim synth``: synthesize, write the grasps file as types finish, print the table."""
    from handsim.hand import load_hand
    from handsim.synth.optimize import SynthSettings
    from handsim.synth.refine import RefineSettings
    from handsim.synth.synthesize import synthesize

    load_hand(args.hand)  # unknown hand or malformed metadata: one line, before any work
    ids = _grasp_ids(args.grasps)
    out = resolve_out(args.hand, args.out)
    settings = SynthSettings(restarts=args.candidates)
    if args.climb_counts and len(args.climb_counts) > args.climb_trials:
        raise ConfigurationError(
            f"--climb-counts {','.join(map(str, args.climb_counts))}: {len(args.climb_counts)} counts but --climb-trials "
            f"{args.climb_trials}; expected at most one count per climb seed (give --climb-trials "
            f"{len(args.climb_counts)} or more)")
    try:
        results = synthesize(args.hand, out, ids, seed=args.seed, jobs=args.jobs, verify=args.verify,
                             settings=settings, refine=args.refine, retune=args.retune,
                             climb=RefineSettings(climb_trials=args.climb_trials,
                                                  solver_counts=args.climb_counts or ()))
    except KeyboardInterrupt:
        from handsim.synth.synthesize import unverified_path

        print(f"handsim synth: interrupted; the types that finished are in {out} (unverified candidates for types "
              f"it already had a plan for: in {unverified_path(out)})", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(format_synth_table(results))
    return EXIT_OK
