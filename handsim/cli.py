"""The ``handsim`` command line.

Subcommands (each is an ``add_<name>(subparsers)`` function that builds its parser and sets
``handler``; add new ones to :data:`COMMANDS`):

* ``handsim bench``: the 33-grasp coverage benchmark (:mod:`handsim.bench`).
* ``handsim hand make``: write a generated hand folder (:mod:`handsim.handgen`).
* ``handsim compare``: benchmark several hands, coverage matrix (:mod:`handsim.sweep`,
  :mod:`handsim.bench.matrix`).
* ``handsim sweep``: the hands and generated-hand grids of a TOML spec (:mod:`handsim.sweep`).

Exit codes (:data:`EXIT_OK` ...; also in ``handsim --help``): 0 success; 1 a benchmark
regression against ``--baseline`` (and nothing else); 2 bad input (one line on stderr naming
the problem and the valid choices, no traceback); 3 an internal error (an unexpected exception:
a bug in handsim, or in a policy or env module it ran; its traceback, then one line saying so);
130 interrupted (Ctrl-C). Whatever the exit code, the trials that finished stay in
``results.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from handsim._argtypes import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_REGRESSION,
    EXIT_USAGE,
    non_empty,
    whole_number,
)
from handsim.errors import ConfigurationError, HandsimError, ResultsError, one_line
from handsim.synth.cli import add_synth
from handsim.tolerances import DEFAULT_PROTOCOL

if TYPE_CHECKING:
    from handsim.bench.results import BenchResults

__all__ = ["COMMANDS", "EXIT_INTERNAL", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_REGRESSION", "EXIT_USAGE", "build_parser", "main"]

DEFAULT_OUT = "handsim-results"


class UsageError(Exception):
    """A command-line mistake found by argparse (reported as one line, exit 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage + error and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: error: {message}")


_positive_int = whole_number(1)
_seed = whole_number(0)
_hand_arg = non_empty("a shipped hand's name or a hand folder")
_dir_arg = non_empty("an output folder")


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {value}")
    return value


# ----------------------------------------------------------------------------------------------
# handsim bench


def add_bench(subparsers: argparse._SubParsersAction) -> None:
    """Register ``handsim bench``."""
    from handsim.bench.config import (
        BASELINE_TOLERANCE,
        DEFAULT_ENV_ID,
        DEFAULT_POLICY,
        SUCCESS_THRESHOLD,
    )
    from handsim.data import DEFAULT_HAND

    p = subparsers.add_parser(
        "bench",
        help="run the 33-grasp coverage benchmark",
        description=(
            "Run every grasp type of the taxonomy as episodes of handsim/Grasp-v0 (benchmark mode) with a "
            f"policy, and report coverage: a grasp type is achieved when at least {SUCCESS_THRESHOLD:g} of "
            "its trials succeed. Writes results.json (resumable), report.md, junit.xml, contact_sheet.png "
            "and coverage.png."
        ),
        epilog=EXIT_CODES_SHORT,
    )
    p.add_argument("--hand", type=_hand_arg, default=DEFAULT_HAND, metavar="NAME|PATH",
                   help=f"a shipped hand's name or a hand folder (default {DEFAULT_HAND})")
    p.add_argument("--policy", type=non_empty("MODULE:CALLABLE"), default=DEFAULT_POLICY, metavar="MODULE:CALLABLE",
                   help=f"policy factory, factory(env) -> policy (default {DEFAULT_POLICY})")
    p.add_argument("--grasps", default=None, metavar="ID,...",
                   help="comma-separated grasp ids or numbers (default: all 33)")
    _add_trials_args(p, quick_help="one trial per grasp (for CI)")
    p.add_argument("--seed", type=_seed, default=0, metavar="S", help="base seed (default 0)")
    p.add_argument("--solver-iterations", type=_positive_int, default=None, metavar="N",
                   help=f"constraint-solver iterations per judged step (default: the protocol's, "
                        f"{DEFAULT_PROTOCOL.solver_iterations}); another count shows how far coverage depends on it")
    p.add_argument("--push-failed", action="store_true",
                   help="push every trial through the disturbance protocol, also one that has already failed "
                        "after the settle (its signature, penetration or a joint limit): slower, the same verdicts, "
                        "and the record says whether the wrong grasp held")
    p.add_argument("--jobs", type=_positive_int, default=None, metavar="J",
                   help=f"worker processes (default: the CPU count, {os.cpu_count()})")
    p.add_argument("--env", default=DEFAULT_ENV_ID, metavar="ENV_ID",
                   help=f"Gymnasium env id following the {DEFAULT_ENV_ID} contract; 'module:ns/Name-vN' imports "
                        f"the module that registers it first (default {DEFAULT_ENV_ID})")
    p.add_argument("--out", type=_dir_arg, default=DEFAULT_OUT, metavar="DIR", help=f"output folder (default ./{DEFAULT_OUT}); a finished run there is replaced, its "
                   "results.json kept as results.json.bak[.N]")
    p.add_argument("--baseline", type=non_empty("a results.json path"), default=None, metavar="FILE",
                   help="an earlier results.json: exit 1 if coverage or a success rate dropped")
    p.add_argument("--tolerance", type=_fraction, default=None, metavar="T",
                   help=f"with --baseline: success-rate drop that is not a regression (default {BASELINE_TOLERANCE})")
    p.add_argument("--resume", action="store_true",
                   help="keep the trials already in DIR/results.json (same configuration) and run the rest")
    _add_executor_args(p)
    p.set_defaults(handler=run_bench_command)


def _add_executor_args(p: argparse.ArgumentParser) -> None:
    from handsim.bench.executors import DEFAULT_EXECUTOR, EXECUTORS

    p.add_argument("--executor", choices=EXECUTORS, default=DEFAULT_EXECUTOR,
                   help=f"where trials run: local (a process pool) or ray (needs handsim[ray]; default {DEFAULT_EXECUTOR})")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="with --executor ray: an existing Ray cluster (e.g. ray://head:10001 or auto); "
                        "default: start a local Ray instance for the run")


def _executor(args: argparse.Namespace):  # -> handsim.bench.executors.Executor
    """The executor the arguments name, a Ray cluster's address already tried (a bad one fails
    here, before any output folder is made)."""
    from handsim.bench.executors import make_executor

    executor = make_executor(args.executor, ray_address=args.ray_address)
    if args.ray_address is not None:
        executor.default_jobs()  # connects to the cluster
    return executor


def _add_trials_args(p: argparse.ArgumentParser, *, quick_help: str) -> None:
    """``--trials N | --quick`` (bench and compare; read back with :func:`_trials`)."""
    from handsim.bench.config import DEFAULT_TRIALS

    trials = p.add_mutually_exclusive_group()
    # default None, not DEFAULT_TRIALS: argparse takes "--trials 3" for the default (the same int
    # object) and would let it pass beside --quick
    trials.add_argument("--trials", type=_positive_int, default=None, metavar="N",
                        help=f"seeded trials per grasp (default {DEFAULT_TRIALS})")
    trials.add_argument("--quick", action="store_true", help=quick_help)


def _trials(args: argparse.Namespace) -> int:
    """Trials per grasp type: 1 with ``--quick``, else ``--trials`` or the default."""
    from handsim.bench.config import DEFAULT_TRIALS

    if args.quick:
        return 1
    return DEFAULT_TRIALS if args.trials is None else args.trials


def _grasp_ids(text: str | None) -> tuple[str, ...]:
    from handsim.errors import UnknownNameError
    from handsim.grasps import default_taxonomy

    taxonomy = default_taxonomy()
    if text is None:
        return taxonomy.ids()
    keys = [k.strip() for k in text.split(",") if k.strip()]
    if not keys:
        raise UnknownNameError(f"--grasps: expected comma-separated grasp ids or numbers, got {text!r}; "
                               f"valid: {', '.join(taxonomy.ids())}")
    chosen = set()
    for key in keys:
        try:
            chosen.add(taxonomy.get(key).number)
        except UnknownNameError as exc:
            raise UnknownNameError(f"--grasps: {exc}") from None
    return tuple(g.id for g in taxonomy if g.number in chosen)


def _protocol_kwargs(solver_iterations: int | None) -> tuple[tuple[str, object], ...]:
    """The env keyword arguments of ``--solver-iterations``: none at the protocol's own count, so
    that such a run's configuration stays that of a run without the option."""
    if solver_iterations is None or solver_iterations == DEFAULT_PROTOCOL.solver_iterations:
        return ()
    return (("protocol", dataclasses.replace(DEFAULT_PROTOCOL, solver_iterations=solver_iterations)),)


def run_bench_command(args: argparse.Namespace) -> int:
    """``handsim bench``: run, write the outputs, print the table, compare with a baseline."""
    from handsim.bench.compare import compare_results
    from handsim.bench.config import BASELINE_TOLERANCE, BenchConfig
    from handsim.bench.report import format_table, write_outputs
    from handsim.bench.results import RESULTS_FILE, load_results
    from handsim.bench.runner import BenchInterrupted, run_bench
    from handsim.data import hand_dir
    from handsim.hand import load_hand

    executor = _executor(args)  # a missing Ray extra or a bad address fails here, before any work
    folder = hand_dir(args.hand)
    load_hand(folder)  # malformed metadata fails here, before any worker starts
    if args.tolerance is not None and args.baseline is None:
        raise ConfigurationError(f"--tolerance {args.tolerance:g}: only used with --baseline FILE; give the baseline or "
                                 "drop --tolerance")
    baseline = load_results(args.baseline) if args.baseline is not None else None
    tolerance = BASELINE_TOLERANCE if args.tolerance is None else args.tolerance
    config = BenchConfig(
        hand=str(folder),
        policy=args.policy,
        grasp_ids=_grasp_ids(args.grasps),
        trials=_trials(args),
        seed=args.seed,
        env_id=args.env,
        env_kwargs=_protocol_kwargs(args.solver_iterations) + ((("push_failed", True),) if args.push_failed else ()),
    )
    out = Path(args.out)
    if baseline is not None:
        _check_baseline_fits(Path(args.baseline), baseline, config.grasp_ids, out / RESULTS_FILE)
    try:
        with contextlib.closing(executor):
            results = run_bench(config, out, jobs=args.jobs, resume=args.resume, executor=executor)
    except BenchInterrupted as stop:
        done = sum(g.trials for g in stop.results.grasps)
        planned = config.trials * len(config.grasp_ids)
        print(f"handsim bench: interrupted; {done}/{planned} trials saved in {out / RESULTS_FILE} "
              "(run again with --resume to finish)", file=sys.stderr)
        return EXIT_INTERRUPTED
    paths = write_outputs(results, out)
    print(format_table(results))
    if args.solver_iterations not in (None, DEFAULT_PROTOCOL.solver_iterations):
        print(f"protocol changed: solver_iterations {args.solver_iterations} (the protocol's is "
              f"{DEFAULT_PROTOCOL.solver_iterations}); compare this coverage only with runs at the same count")
    t = results.timing
    rate = t.get("trials_per_s")
    print(f"wall time: {t['wall_s']:.1f} s, {t['trials_run']} trials, "
          f"{'-' if rate is None else f'{rate:.2f}'} trials/s, {t['jobs']} jobs ({executor.name})")
    print(f"results: {out / RESULTS_FILE}, " + ", ".join(str(p) for p in paths.values()), file=sys.stderr)
    if baseline is not None:
        comparison = compare_results(results, baseline, tolerance)
        print(comparison.text())
        return EXIT_REGRESSION if comparison.regressed else EXIT_OK
    return EXIT_OK


def _check_baseline_fits(path: Path, baseline: BenchResults, grasp_ids: Sequence[str], out_file: Path) -> None:
    """Refuse a ``--baseline`` that this run would overwrite, or that compares nothing, before
    any trial (a comparison over no grasp type would pass CI whatever the run gives).

    Raises:
        ResultsError: Naming the baseline and why it does not fit.
    """
    from handsim.bench.results import RESULTS_FILE

    target = path / RESULTS_FILE if path.is_dir() else path
    if target.resolve() == out_file.resolve():
        raise ResultsError(f"--baseline {path}: that is the results file this run writes ({out_file}), so the "
                           "run would overwrite the baseline; copy it elsewhere or choose another --out")
    compared = [g.id for g in baseline.grasps if g.trials > 0]
    if not set(compared) & set(grasp_ids):
        raise ResultsError(f"--baseline {path}: no grasp type in common with this run, so nothing would be "
                           f"compared (baseline: {', '.join(compared) or 'no finished trial'}; this run: "
                           f"{', '.join(grasp_ids)})")


# ----------------------------------------------------------------------------------------------
# handsim hand make


def _int_in(lo: int, hi: int, meaning: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number in {lo}..{hi} ({meaning}), got {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"expected a whole number in {lo}..{hi} ({meaning}), got {value}")
        return value

    return parse


def _float_in(lo: float, hi: float, lo_open: bool = False) -> Callable[[str], float]:
    """An argparse type: a number in [lo, hi] (or (lo, hi] with ``lo_open``)."""
    shown = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number in {shown}, got {text!r}") from None
        if not ((lo < value) if lo_open else (lo <= value)) or not value <= hi:  # also rejects nan
            raise argparse.ArgumentTypeError(f"expected a number in {shown}, got {text}")
        return value

    return parse


def _lengths(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated lengths in metres, one per finger (thumb first), got {text!r}") from None
    return values


def add_hand(subparsers: argparse._SubParsersAction) -> None:
    """Register ``handsim hand`` (``handsim hand make``)."""
    from handsim.handgen import (
        DIP_COUPLING_RANGE,
        FINGER_LENGTH_FACTOR_RANGE,
        FINGERS_RANGE,
        SCALE_RANGE,
        THUMB_DOF_RANGE,
    )

    p = subparsers.add_parser("hand", help="generate hand models (hand make)",
                              description="Hand model tools. Subcommands: make.")
    sub = p.add_subparsers(dest="hand_command", metavar="SUBCOMMAND", parser_class=_Parser)
    m = sub.add_parser(
        "make",
        help="write a generated hand folder",
        description=(
            "Write a hand folder (hand.urdf, hand.json, an empty grasps.json, README.md) derived from the default "
            "hand: fewer fingers, fewer or more thumb joints, no DIP joints, another size or finger lengths. "
            "The folder loads with --hand DIR in handsim bench."
        ),
    )
    m.add_argument("out_dir", type=_dir_arg, metavar="OUT_DIR", help="folder to write (new or empty, unless --force)")
    m.add_argument("--fingers", type=_int_in(*FINGERS_RANGE, "thumb included"), default=5, metavar="N",
                   help="5 = thumb + index..little, 4 drops the little finger, 3 drops ring and little (default 5)")
    m.add_argument("--thumb-dof", type=_int_in(*THUMB_DOF_RANGE, "0 = no thumb"), default=5, metavar="N",
                   help="thumb joints: 0 no thumb, 1-3 fix joints from the tip side, 4 the v2 thumb (CMC abd, "
                        "CMC flex, MCP, IP; roll fixed at 0), 5 like the default hand (adds the CMC roll), "
                        "6 adds an MCP abduction (default 5)")
    m.add_argument("--no-dip", dest="dip", action="store_false",
                   help="fix the DIP joints at 0 rad (middle and distal phalanx one rigid segment)")
    m.add_argument("--couple-dip", dest="dip_coupling", type=_float_in(*DIP_COUPLING_RANGE, lo_open=True), default=None, metavar="M",
                   help="couple each finger's DIP to its PIP, DIP = M x PIP (a URDF <mimic>: the DIPs are no "
                        "longer commanded or planned, as in linkage-driven fingers; e.g. 0.7)")
    m.add_argument("--scale", type=_float_in(*SCALE_RANGE), default=1.0, metavar="S",
                   help="scale every length (masses x S^3, efforts x S^3; default 1)")
    lo, hi = FINGER_LENGTH_FACTOR_RANGE
    m.add_argument("--finger-lengths", type=_lengths, default=None, metavar="L1,L2,...",
                   help="total length [m] of each finger present, thumb first (thumb from the CMC, fingers from "
                        f"the MCP, to the tip), each {lo:g}x..{hi:g}x its scaled default")
    m.add_argument("--name", default=None, metavar="NAME",
                   help="the hand's name (default handgen_f<N>_t<N>[_nodip][_dipc<M>]_s<S>)")
    m.add_argument("--force", action="store_true",
                   help="write into a non-empty OUT_DIR (replaces the hand files; a grasps.json holding plans is kept "
                        "as grasps.json.bak[.N]); never a folder inside the package's models/")
    p.set_defaults(handler=run_hand_command)


def run_hand_command(args: argparse.Namespace) -> int:
    """``handsim hand SUBCOMMAND``."""
    if args.hand_command != "make":
        print("handsim hand: error: expected a subcommand; valid: make", file=sys.stderr)
        return EXIT_USAGE
    from handsim.hand import load_hand
    from handsim.handgen import make_hand

    folder = make_hand(args.out_dir, fingers=args.fingers, thumb_dof=args.thumb_dof, dip=args.dip,
                       dip_coupling=args.dip_coupling, scale=args.scale, finger_lengths=args.finger_lengths, name=args.name, force=args.force)
    hand = load_hand(folder)  # the folder must load; a generator bug fails here, not in a later bench
    print(f"wrote hand {hand.name!r} to {folder}: {len(hand.fingers)} digits ({', '.join(hand.finger_names)}), "
          f"{hand.num_dof} actuated joints")
    return EXIT_OK


# ----------------------------------------------------------------------------------------------
# handsim compare


def add_compare(subparsers: argparse._SubParsersAction) -> None:
    """Register ``handsim compare``."""
    from handsim.bench.config import DEFAULT_ENV_ID, DEFAULT_POLICY

    p = subparsers.add_parser(
        "compare",
        help="benchmark several hands and build their coverage matrix",
        description=(
            "Run the benchmark for each HAND (a shipped name or a hand folder) into DIR/<hand name>/ (resumable), "
            "then write the coverage matrix (hands x 33 grasp types) as DIR/matrix.json and DIR/matrix.png and "
            "print it. --from-results adds existing results.json files to the matrix without running them. "
            "Every hand is checked before the first trial; a hand failing mid-run does not stop the others "
            "(exit 2 names it, after the matrix of the rest is written)."
        ),
    )
    p.add_argument("hands", nargs="*", type=_hand_arg, metavar="HAND", help="shipped hand names or hand folders to benchmark")
    p.add_argument("--from-results", nargs="+", default=[], metavar="FILE",
                   help="results.json files (or folders holding one) to add to the matrix as they are")
    p.add_argument("--grasps", default=None, metavar="ID,...",
                   help="comma-separated grasp ids or numbers (default: all 33)")
    _add_trials_args(p, quick_help="one trial per grasp")
    p.add_argument("--seed", type=_seed, default=0, metavar="S", help="base seed (default 0)")
    p.add_argument("--jobs", type=_positive_int, default=None, metavar="J",
                   help="trials at a time (default: the CPU count, or the Ray cluster's CPUs)")
    p.add_argument("--policy", default=DEFAULT_POLICY, metavar="MODULE:CALLABLE",
                   help=f"policy factory (default {DEFAULT_POLICY})")
    p.add_argument("--env", default=DEFAULT_ENV_ID, metavar="ENV_ID", help=f"Gymnasium env id (default {DEFAULT_ENV_ID})")
    p.add_argument("--out", type=_dir_arg, required=True, metavar="DIR", help="output folder: one results folder per hand + the matrix")
    p.add_argument("--resume", action="store_true", help="finish the hands' runs already in DIR (same configuration)")
    _add_executor_args(p)
    p.set_defaults(handler=run_compare_command)


def _interrupted(command: str, out: Path) -> int:
    print(f"handsim {command}: interrupted; finished trials are saved under {out} "
          "(run again with --resume to finish)", file=sys.stderr)
    return EXIT_INTERRUPTED


def _print_matrix(matrix, out: Path) -> None:  # matrix: handsim.bench.matrix.CoverageMatrix
    from handsim.bench.matrix import MATRIX_JSON, MATRIX_PNG

    print(matrix.table())
    print(f"matrix: {out / MATRIX_JSON}, {out / MATRIX_PNG}", file=sys.stderr)


def run_compare_command(args: argparse.Namespace) -> int:
    """``handsim compare``: benchmark each hand, then build, write and print the matrix."""
    from handsim.bench.matrix import build_matrix, write_matrix
    from handsim.bench.results import load_results
    from handsim.bench.runner import BenchInterrupted
    from handsim.errors import ConfigurationError
    from handsim.sweep import HandsFailed, hand_runs, run_hands

    if not args.hands and not args.from_results:
        raise ConfigurationError("expected at least one HAND or --from-results FILE, got neither")
    extra = [load_results(f) for f in args.from_results]  # a bad file fails before any run
    out = Path(args.out)
    if not args.hands:
        matrix = build_matrix(extra)
        write_matrix(matrix, out)
        _print_matrix(matrix, out)
        return EXIT_OK
    try:
        grasp_ids, grasps_error = _grasp_ids(args.grasps), None
    except HandsimError as exc:
        grasp_ids, grasps_error = (), exc
    try:
        runs = hand_runs(args.hands, policy=args.policy, env=args.env)  # every hand that does not load, in one error
    except HandsFailed as exc:
        if grasps_error is None:
            raise
        raise HandsFailed(f"{exc}; and {one_line(grasps_error)}", [*exc.failures, ("", grasps_error)]) from None
    if grasps_error is not None:
        raise grasps_error
    executor = _executor(args)
    try:
        with contextlib.closing(executor):
            _, matrix = run_hands(runs, out, grasp_ids=grasp_ids, trials=_trials(args),
                                  seed=args.seed, policy=args.policy, env=args.env, jobs=args.jobs,
                                  executor=executor, resume=args.resume, extra=extra)
    except BenchInterrupted:
        return _interrupted("compare", out)
    except HandsFailed as exc:
        if exc.matrix is not None:  # the hands that ran: their matrix, then the error (exit 2)
            _print_matrix(exc.matrix, out)
        raise
    _print_matrix(matrix, out)
    return EXIT_OK


# ----------------------------------------------------------------------------------------------
# handsim sweep


def add_sweep(subparsers: argparse._SubParsersAction) -> None:
    """Register ``handsim sweep``."""
    p = subparsers.add_parser(
        "sweep",
        help="benchmark the hands (and generated-hand grids) of a TOML spec",
        description=(
            "Run a sweep spec (TOML: hands, [[generate]] parameter grids for generated hands, grasps, trials, "
            "seed, policy, env, jobs, executor, ray_address, out; see handsim.sweep): one results folder per hand "
            "under the output folder, generated hands under OUT/hands/, and the coverage matrix OUT/matrix.json + "
            "OUT/matrix.png. Every hand is checked before the first trial; a hand failing mid-run does not stop "
            "the others (exit 2 names it, after the matrix of the rest is written)."
        ),
    )
    p.add_argument("spec", metavar="SPEC.toml", help="the sweep spec")
    p.add_argument("--out", type=_dir_arg, default=None, metavar="DIR", help="output folder (overrides the spec's out)")
    p.add_argument("--resume", action="store_true", help="finish an interrupted sweep in the same output folder")
    p.set_defaults(handler=run_sweep_command)


def run_sweep_command(args: argparse.Namespace) -> int:
    """``handsim sweep``: validate the spec, run it, print the matrix."""
    from handsim.bench.runner import BenchInterrupted
    from handsim.sweep import HandsFailed, load_spec, run_sweep

    spec = load_spec(args.spec, out=args.out)
    try:
        _, matrix = run_sweep(spec, resume=args.resume)
    except BenchInterrupted:
        return _interrupted("sweep", spec.out)
    except HandsFailed as exc:
        if exc.matrix is not None:  # the hands that ran: their matrix, then the error (exit 2)
            _print_matrix(exc.matrix, spec.out)
        raise
    _print_matrix(matrix, spec.out)
    return EXIT_OK


# ----------------------------------------------------------------------------------------------
# Entry point

#: Every subcommand's parser builder, in the order ``--help`` lists them.
COMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (add_bench, add_hand, add_synth, add_compare, add_sweep)


#: The exit codes, as ``handsim --help`` lists them.
EXIT_CODES_HELP = (
    "exit codes:\n"
    f"  {EXIT_OK}    success\n"
    f"  {EXIT_REGRESSION}    a benchmark regression against --baseline\n"
    f"  {EXIT_USAGE}    bad input: one line on stderr naming the problem and the valid choices\n"
    f"  {EXIT_INTERNAL}    internal error: an unexpected exception (its traceback, then one line)\n"
    f"  {EXIT_INTERRUPTED}  interrupted (Ctrl-C)\n"
    "finished trials are kept in results.json whatever the exit code"
)
#: The same on one line, for the subcommands' ``--help``.
EXIT_CODES_SHORT = (
    f"exit codes: {EXIT_OK} success, {EXIT_REGRESSION} a regression against --baseline, {EXIT_USAGE} bad input "
    f"(one line), {EXIT_INTERNAL} internal error (traceback), {EXIT_INTERRUPTED} interrupted; finished trials are "
    "kept in results.json whatever the exit code"
)


def build_parser() -> argparse.ArgumentParser:
    """The ``handsim`` parser with every subcommand of :data:`COMMANDS`."""
    parser = _Parser(prog="handsim", description="Dexterous robotic hand grasp simulator and the 33-grasp benchmark.",
                     epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    from handsim import __version__

    parser.add_argument("--version", action="version", version=f"handsim {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for add in COMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``handsim`` command line.

    Args:
        argv: Arguments without the program name (default ``sys.argv[1:]``).

    Returns:
        The exit code (see the module docstring).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print(one_line(exc), file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exc:  # --help / --version print and exit 0
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    if getattr(args, "handler", None) is None:
        names = ", ".join(sorted(subparsers_names(parser)))
        print(f"handsim: error: expected a command; valid: {names}", file=sys.stderr)
        return EXIT_USAGE
    # "handsim hand make": errors name the subcommand as argparse's own do
    command = " ".join(c for c in (args.command, getattr(args, "hand_command", None)) if c)
    try:
        return int(args.handler(args))
    except HandsimError as exc:
        print(f"handsim {command}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"handsim {command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception:  # noqa: BLE001 - reported, with its traceback, as exit 3
        # Not bad input but a bug (handsim's, or a policy/env module's): the traceback is what
        # finds it. Exit 3, never 1: CI reads 1 as a benchmark regression.
        traceback.print_exc()
        print(f"handsim {command}: internal error (an unexpected exception, traceback above; "
              f"exit {EXIT_INTERNAL})", file=sys.stderr)
        return EXIT_INTERNAL


def subparsers_names(parser: argparse.ArgumentParser) -> list[str]:
    """The subcommand names of a parser built by :func:`build_parser`."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []


if __name__ == "__main__":
    sys.exit(main())
