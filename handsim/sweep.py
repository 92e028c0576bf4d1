"""Benchmark many hands in one go: ``handsim compare`` and ``handsim sweep SPEC.toml``.

:func:`run_hands` runs the benchmark (:func:`handsim.bench.runner.run_bench`) once per hand,
each into its own folder ``OUT/<label>/`` (``results.json``, ``report.md``, ``junit.xml``,
pictures; resumable with ``resume=True``), on one executor shared by all hands (so Ray starts
once), and writes the combined coverage matrix (``OUT/matrix.json``, ``OUT/matrix.png``;
:mod:`handsim.bench.matrix`).

A **sweep spec** is a TOML file (:func:`load_spec`)::

    out = "sweep-results"              # output folder (relative to the spec's folder)
    hands = ["default_hand"]           # shipped hand names or hand folders (see below)
    grasps = ["lateral", "palmar", 24] # grasp ids or numbers, or "all" (default "all")
    trials = 1                         # seeded trials per grasp type (default 3)
    seed = 0                           # base seed (default 0)
    policy = "handsim.policies:scripted"   # optional
    env = "handsim/Grasp-v0"           # optional, the Gymnasium env id (as handsim bench --env)
    jobs = 2                           # optional, trials at a time (default: the executor's)
    executor = "local"                 # "local" (default) or "ray"
    ray_address = "ray://head:10001"   # optional, with executor = "ray"

    [[generate]]                       # generated hands (handsim.handgen.make_hand); a list is a
    fingers = [4, 5]                   # grid axis: every combination of the lists is one hand
    dip = [true, false]
    thumb_dof = 5                      # also: dip_coupling, scale, finger_lengths (a list of lists
                                       # for an axis)
    grasp_data = "default_hand"        # optional: copy this hand's grasps.json plans

Generated hands are written to ``OUT/hands/<name>/`` and named like ``handsim hand make``
names them (``handgen_f4_t5_nodip_s1``; a ``name`` key sets it for a one-point grid, or
prefixes the parameters otherwise). A generated hand has no grasp plans, so it fails every type
honestly, until plans are written into its ``grasps.json`` (by hand or ``handsim synth``: a
re-run of the sweep keeps them, and leaves the hand's other files alone when they are what the
generator writes), or unless ``grasp_data`` names a hand whose plans to copy (they replace the
file on every run): each plan's joint targets for
joints the generated hand does not actuate are dropped (a no-DIP hand keeps everything but the
DIP targets; a 4-finger hand loses the little finger's). The plans' object poses are copied
unchanged, so they suit generated hands of scale 1.

Hands (``hands``, ``grasp_data``) never depend on the working directory: an absolute path is
used as it is, a path (``hands/mine``, ``./mine``) is relative to the spec's folder, and a bare
name is the shipped hand of that name if there is one, else the folder of that name next to the
spec; anything else is an error naming the spec and the key.

Every key is checked: an error names the spec file, the key, what was given and what is allowed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import itertools
import json
import math
import re
import sys
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from handsim._io import not_utf8
from handsim.bench.config import (
    DEFAULT_ENV_ID,
    DEFAULT_POLICY,
    DEFAULT_TRIALS,
    BenchConfig,
)
from handsim.bench.executors import DEFAULT_EXECUTOR, EXECUTORS, Executor, make_executor
from handsim.bench.matrix import MATRIX_JSON, MATRIX_PNG, CoverageMatrix, build_matrix, write_matrix
from handsim.bench.results import BenchResults, make_out_dir, write_json_atomic
from handsim.errors import (
    ConfigurationError,
    DataNotFoundError,
    HandsimError,
    UnknownNameError,
    one_line,
    suggest,
)

__all__ = [
    "GENERATE_KEYS",
    "SPEC_KEYS",
    "GeneratedGrid",
    "HandRun",
    "HandsFailed",
    "SweepSpec",
    "expand_grid",
    "hand_label",
    "hand_runs",
    "load_spec",
    "parse_spec",
    "prepare_hands",
    "run_hands",
    "run_sweep",
]

#: Top-level keys of a sweep spec.
SPEC_KEYS = ("out", "hands", "generate", "grasps", "trials", "seed", "policy", "env", "jobs", "executor", "ray_address")
#: Keys of a ``[[generate]]`` table.
GENERATE_KEYS = ("fingers", "thumb_dof", "dip", "dip_coupling", "scale", "finger_lengths", "name", "grasp_data")
_GRID_KEYS = ("fingers", "thumb_dof", "dip", "dip_coupling", "scale", "finger_lengths")
_LABEL_RE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclasses.dataclass(frozen=True)
class HandRun:
    """One hand to benchmark.

    Attributes:
        label: Unique label: the row in the matrix and the results folder ``OUT/<label>``.
        hand: A shipped hand's name or a hand folder.
    """

    label: str
    hand: str


class HandsFailed(HandsimError):
    """Some hands of ``compare``/``sweep`` cannot run, or failed while running (exit 2).

    Raised before any trial when a hand's preconditions fail (``results`` empty, ``matrix``
    None: nothing ran), or after the other hands ran when one failed during its run (the
    matrix of the runs that finished is already written).

    Attributes:
        failures: ``(label, error)`` of every hand that failed (label ``""``: the policy/env).
        results: The runs that finished.
        matrix: Their matrix (written), or None.
    """

    def __init__(self, message: str, failures: Sequence[tuple[str, HandsimError]] = (),
                 results: Sequence[BenchResults] = (), matrix: CoverageMatrix | None = None) -> None:
        super().__init__(message)
        self.failures = tuple(failures)
        self.results = list(results)
        self.matrix = matrix


@dataclasses.dataclass(frozen=True)
class GeneratedGrid:
    """One ``[[generate]]`` table: parameter axes for :func:`handsim.handgen.make_hand`.

    Attributes:
        axes: ``(parameter, values)`` pairs, one per grid key given; the grid is their product.
        name: The hand name (one-point grid) or name prefix, or None.
        grasp_data: A hand folder whose grasps.json plans are copied, or None.
    """

    axes: tuple[tuple[str, tuple[Any, ...]], ...]
    name: str | None = None
    grasp_data: str | None = None


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """A validated sweep spec (see the module docstring); paths resolved against the spec's folder.

    Attributes:
        path: The spec file (None when built in memory).
        out: Output folder.
        hands: Hand folders (absolute; shipped hands as their folder under ``models/``).
        generate: Generated-hand grids.
        grasp_ids: Grasp types, taxonomy order.
        trials: Trials per type.
        seed: Base seed.
        policy: Policy factory ``module:callable``.
        env: Gymnasium env id.
        jobs: Trials at a time (None: the executor's default).
        executor: ``local`` or ``ray``.
        ray_address: Ray cluster address (``ray`` only).
    """

    path: Path | None
    out: Path
    hands: tuple[str, ...]
    generate: tuple[GeneratedGrid, ...]
    grasp_ids: tuple[str, ...]
    trials: int = DEFAULT_TRIALS
    seed: int = 0
    policy: str = DEFAULT_POLICY
    env: str = DEFAULT_ENV_ID
    jobs: int | None = None
    executor: str = DEFAULT_EXECUTOR
    ray_address: str | None = None


# ----------------------------------------------------------------------------------------------
# spec


class _Spec:
    """Checks values of one spec file; errors name the file, the key, expected and got."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, key: str, expected: str, got: Any) -> ConfigurationError:
        return ConfigurationError(f"{self.where}: key {key!r}: expected {expected}, got {got!r}")

    def keys(self, table: Mapping[str, Any], valid: Sequence[str], where: str) -> None:
        for key in table:
            if key not in valid:
                raise UnknownNameError(f"{self.where}: {where}" + suggest(key, valid, "key"))

    def whole(self, value: Any, key: str, lo: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise self.fail(key, f"a whole number >= {lo}", value)
        return value

    def text(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, "a non-empty string", value)
        return value


def _grasp_ids(value: Any, chk: _Spec) -> tuple[str, ...]:
    from handsim.grasps import default_taxonomy

    taxonomy = default_taxonomy()
    if value == "all":
        return taxonomy.ids()
    if not isinstance(value, list) or not value:
        raise chk.fail("grasps", '"all" or a non-empty list of grasp ids or numbers (1..33)', value)
    chosen = set()
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise chk.fail("grasps", "grasp ids (strings) or numbers 1..33", item)
        try:
            chosen.add(taxonomy.get(item).number)
        except UnknownNameError as exc:
            raise UnknownNameError(f"{chk.where}: key 'grasps': {exc}") from None
    return tuple(g.id for g in taxonomy if g.number in chosen)


def _hand_folder(value: str, base: Path, chk: _Spec, key: str) -> str:
    """The hand folder a spec names, never looked up in the working directory.

    An absolute path is used as it is, and a path (``a/b``, ``./a``, ``~/a``) is relative to
    the spec's folder. A bare name is a shipped hand if one has that name, else a folder next
    to the spec.

    Raises:
        DataNotFoundError: No such hand folder (names the spec, the key and where it looked).
    """
    import os

    from handsim.data import available_hands, hand_dir, models_dir

    bare = not any(sep and sep in value for sep in ("/", os.sep, os.altsep)) and value not in (".", "..")
    if bare and value in available_hands():
        return str(models_dir() / value)
    folder = (base / Path(value).expanduser()).resolve()
    if bare and not folder.is_dir():
        raise DataNotFoundError(f"{chk.where}: key {key!r}: no hand {value!r}: not a shipped hand and no folder "
                                f"{folder} (a bare name is a shipped hand or a folder next to the spec); "
                                + suggest(value, available_hands(), "shipped hand"))
    try:
        return str(hand_dir(folder))
    except DataNotFoundError as exc:
        raise DataNotFoundError(f"{chk.where}: key {key!r}: {exc}") from None


def _axis(value: Any, key: str, chk: _Spec) -> tuple[Any, ...]:
    # finger_lengths is itself a list: a list of numbers is one value, a list of lists an axis.
    if key == "finger_lengths":
        if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
            return tuple(tuple(v) for v in value)
        if isinstance(value, list) and value and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                     for v in value):
            return (tuple(value),)
        raise chk.fail(f"generate.{key}", "a list of lengths [m] (one per finger, thumb first), or a list of "
                                          "such lists (a grid axis)", value)
    values = tuple(value) if isinstance(value, list) else (value,)
    if not values:
        raise chk.fail(f"generate.{key}", "a value or a non-empty list of values", value)
    for v in values:
        if key in ("fingers", "thumb_dof") and (isinstance(v, bool) or not isinstance(v, int)):
            raise chk.fail(f"generate.{key}", "a whole number or a list of them", value)
        if key == "dip" and not isinstance(v, bool):
            raise chk.fail(f"generate.{key}", "true, false or a list of them", value)
        if key in ("scale", "dip_coupling") and (isinstance(v, bool) or not isinstance(v, (int, float))
                                                 or not math.isfinite(v)):
            raise chk.fail(f"generate.{key}", "a number or a list of numbers", value)
    return values


def parse_spec(raw: Mapping[str, Any], *, base: str | Path = ".", where: str = "sweep spec",
               out: str | Path | None = None) -> SweepSpec:
    """Validate a sweep spec already read from TOML.

    Args:
        raw: The spec's tables.
        base: Folder relative paths and bare names that are not shipped hands are resolved
            against (the spec's folder).
        where: What to call the spec in errors (its path).
        out: Overrides the spec's ``out``.

    Raises:
        ConfigurationError: A key with a wrong value (names the key, expected and got).
        UnknownNameError: An unknown key, grasp, or executor (names the valid ones).
        DataNotFoundError: A hand in ``hands`` or ``grasp_data`` that does not exist.
    """
    chk = _Spec(where)
    base = Path(base)
    chk.keys(raw, SPEC_KEYS, "")
    if out is None:
        if "out" not in raw:
            raise ConfigurationError(f"{where}: key 'out' is missing: expected the output folder (or --out DIR)")
        out = base / chk.text(raw["out"], "out")
    hands_raw = raw.get("hands", [])
    if not isinstance(hands_raw, list) or not all(isinstance(h, str) and h.strip() for h in hands_raw):
        raise chk.fail("hands", "a list of shipped hand names or hand folders", hands_raw)
    hands = tuple(_hand_folder(h, base, chk, "hands") for h in hands_raw)
    gen_raw = raw.get("generate", [])
    if isinstance(gen_raw, Mapping):
        gen_raw = [gen_raw]  # [generate] (one table) as well as [[generate]]
    if not isinstance(gen_raw, list) or not all(isinstance(g, Mapping) for g in gen_raw):
        raise chk.fail("generate", "[[generate]] tables of make_hand parameters", gen_raw)
    grids = []
    for i, table in enumerate(gen_raw):
        chk.keys(table, GENERATE_KEYS, f"[[generate]] #{i + 1}: ")
        axes = tuple((k, _axis(table[k], k, chk)) for k in _GRID_KEYS if k in table)
        name = None if table.get("name") is None else chk.text(table["name"], "generate.name")
        data = table.get("grasp_data")
        if data is not None:
            data = _hand_folder(chk.text(data, "generate.grasp_data"), base, chk, "generate.grasp_data")
        grids.append(GeneratedGrid(axes=axes, name=name, grasp_data=data))
    if not hands and not grids:
        raise ConfigurationError(f"{where}: expected at least one hand: a 'hands' list or a [[generate]] table, got neither")
    executor = raw.get("executor", DEFAULT_EXECUTOR)
    if executor not in EXECUTORS:
        raise UnknownNameError(f"{where}: key 'executor': " + suggest(str(executor), EXECUTORS, "executor"))
    ray_address = raw.get("ray_address")
    if ray_address is not None:
        chk.text(ray_address, "ray_address")
        if executor != "ray":
            raise chk.fail("ray_address", 'to go with executor = "ray"', ray_address)
    jobs = raw.get("jobs")
    return SweepSpec(
        path=None,
        out=Path(out),
        hands=hands,
        generate=tuple(grids),
        grasp_ids=_grasp_ids(raw.get("grasps", "all"), chk),
        trials=chk.whole(raw.get("trials", DEFAULT_TRIALS), "trials", 1),
        seed=chk.whole(raw.get("seed", 0), "seed", 0),
        policy=chk.text(raw.get("policy", DEFAULT_POLICY), "policy"),
        env=chk.text(raw.get("env", DEFAULT_ENV_ID), "env"),
        jobs=None if jobs is None else chk.whole(jobs, "jobs", 1),
        executor=executor,
        ray_address=ray_address,
    )


def load_spec(path: str | Path, *, out: str | Path | None = None) -> SweepSpec:
    """Read and validate a sweep spec TOML file (relative paths: against its folder).

    Raises:
        ConfigurationError: Missing file, not UTF-8 text, TOML syntax error, or a bad value.
        UnknownNameError: An unknown key or name.
        DataNotFoundError: A hand that does not exist.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigurationError(f"{path}: is a folder; expected a sweep spec TOML file "
                                 "(e.g. benchmarks/sweeps/example.toml)")
    if not path.is_file():
        raise ConfigurationError(f"{path}: no such sweep spec (expected a TOML file)")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path}: not valid TOML ({exc})") from None
    except UnicodeDecodeError as exc:
        raise ConfigurationError(not_utf8(path, exc, "TOML")) from None
    spec = parse_spec(raw, base=path.resolve().parent, where=str(path), out=out)
    return dataclasses.replace(spec, path=path.resolve())


def expand_grid(grid: GeneratedGrid) -> list[dict[str, Any]]:
    """Every parameter combination of a grid, as ``make_hand`` keyword arguments (with ``name``)."""
    from handsim.handgen import make_hand

    # Names follow make_hand's own defaults for the parameters a grid leaves out.
    default = {k: p.default for k, p in inspect.signature(make_hand).parameters.items()}
    keys = [k for k, _ in grid.axes]
    points = list(itertools.product(*(v for _, v in grid.axes)))
    length_axis = dict(grid.axes).get("finger_lengths", ())
    out = []
    for point in points:
        kw = dict(zip(keys, point))
        f, t, dip, c, s = (kw.get(k, default[k]) for k in ("fingers", "thumb_dof", "dip", "dip_coupling", "scale"))
        auto = f"f{f}_t{t}{'' if dip else '_nodip'}{'' if c is None else f'_dipc{c:g}'}_s{s:g}"
        if "finger_lengths" in kw:
            kw["finger_lengths"] = list(kw["finger_lengths"])
            auto += f"_len{length_axis.index(tuple(kw['finger_lengths'])) + 1}" if len(length_axis) > 1 else "_custom"
        if grid.name is None:
            kw["name"] = f"handgen_{auto}"
        else:
            kw["name"] = grid.name if len(points) == 1 else f"{grid.name}_{auto}"
        out.append(kw)
    return out


def _plan_source(source: str) -> Any:  # -> handsim.hand.Hand
    """The hand whose ``grasps.json`` plans ``grasp_data`` copies, its plans loaded (validated).

    Raises:
        HandsimError: The source hand or its ``grasps.json`` does not load, or it has none.
    """
    from handsim.grasp_data import GRASP_DATA_FILE, load_plans_of
    from handsim.hand import load_hand

    src_hand = load_hand(source)
    if not (src_hand.folder / GRASP_DATA_FILE).is_file():
        raise DataNotFoundError(f"{src_hand.folder} has no {GRASP_DATA_FILE} (no grasp plans to copy)")
    load_plans_of(src_hand)
    return src_hand


def _copy_plans(source: str, folder: Path) -> int:
    """Copy ``source``'s grasp plans into the generated hand at ``folder``; returns the plans copied.

    The source file is first validated by the normal loader against the source hand (its joints,
    limits and rest pose), so a malformed plan is an error naming the file and the field.

    Raises:
        HandsimError: The source hand or its ``grasps.json`` does not load, or it has none.
    """
    from handsim.grasp_data import GRASP_DATA_FILE, load_plans_of
    from handsim.hand import load_hand

    src_hand = _plan_source(source)
    src = src_hand.folder / GRASP_DATA_FILE
    data = json.loads(src.read_text(encoding="utf-8"))  # valid: the loader just read it
    target = load_hand(folder)
    keep = set(target.actuated_joints)
    plans = {}
    for gid, plan in data["grasps"].items():
        plan = dict(plan)
        for key in ("preshape", "close"):
            plan[key] = {j: v for j, v in plan[key].items() if j in keep}
        if "effort" in plan:
            # A cap is a fraction of the source motor: the same fraction of this hand's (a scaled
            # hand's motors scale with it); caps of joints this hand does not actuate are dropped.
            plan["effort"] = {j: v / src_hand.joint_limits[j].effort * target.joint_limits[j].effort
                              for j, v in plan["effort"].items() if j in keep}
        plan["note"] = (f"copied from {src} by handsim sweep (targets of joints this hand lacks dropped"
                        + ("; effort caps as the same fraction of this hand's motors)" if "effort" in plan else ")"))
        plans[gid] = plan
    write_json_atomic(folder / GRASP_DATA_FILE, {"schema": 1, "grasps": plans})
    load_plans_of(target)  # what was written must load (it names the file and the field if not)
    return len(plans)


def _write_generated(folder: Path, fresh: Path, plans_copied: bool) -> Path:
    """Write the generated hand ``fresh`` (a scratch folder :func:`~handsim.handgen.make_hand`
    wrote) into ``folder``, leaving alone every file that is already right.

    Only the files whose bytes differ are copied over, so a re-run leaves an unchanged hand
    untouched. Its empty ``grasps.json`` never replaces one holding plans (written by hand or by
    ``handsim synth``); with ``plans_copied`` (``grasp_data``) the caller writes that file.

    Returns:
        The folder, resolved.

    Raises:
        ConfigurationError: ``folder`` is a file.
    """
    from handsim.grasp_data import GRASP_DATA_FILE
    from handsim.handgen import _holds_plans

    if folder.exists() and not folder.is_dir():
        raise ConfigurationError(f"expected a folder to write the generated hand into, got the file {folder}")
    folder.mkdir(parents=True, exist_ok=True)
    for new in sorted(fresh.iterdir()):
        dst, data = folder / new.name, new.read_bytes()
        if dst.is_file() and dst.read_bytes() == data:
            continue
        if new.name == GRASP_DATA_FILE and (plans_copied or _holds_plans(dst)):
            continue
        dst.write_bytes(data)
    return folder.resolve()


def _in_spec(exc: HandsimError, where: str) -> HandsimError:
    """``exc`` (same class, so the CLI still exits 2) with ``where`` in front of its message."""
    try:
        return type(exc)(f"{where}: {exc}")
    except Exception:  # noqa: BLE001 - a subclass with another constructor signature
        return ConfigurationError(f"{where}: {exc}")


def hand_label(hand: str) -> str:
    """A folder-safe label for a hand: its ``hand.json`` name."""
    from handsim.hand import load_hand

    return _label_of(load_hand(hand).name)


def _label_of(name: str) -> str:
    return _LABEL_RE.sub("_", name)


def hand_runs(hands: Sequence[str], what: str = "HAND", policy: str | None = None,
              env: str | None = None) -> list[HandRun]:
    """:class:`HandRun` s of hands given by name or folder, labelled by :func:`hand_label`.

    Every hand is loaded before anything is reported, so one error names all the bad ones (and,
    when one does not load, the others' ``grasps.json`` problems and, when given, a policy or
    env that is bad too, so that a second run finds nothing new).

    Args:
        hands: Shipped hand names or hand folders.
        what: What the hands are called in errors (the CLI argument or spec key).
        policy: The policy factory the hands will run with, checked only when a hand fails.
        env: The env id, likewise.

    Raises:
        HandsFailed: Hands that do not load (each named with its error; a hand whose
            ``grasps.json`` does not load counts among them when another hand fails).
        ConfigurationError: Two hands with the same name (they name the results folders).
    """
    from handsim.data import hand_dir
    from handsim.grasp_data import load_plans_of
    from handsim.hand import load_hand

    runs, failures, hands_loaded = [], [], []
    for h in hands:
        try:
            folder = str(hand_dir(h))
            hand = load_hand(folder)
            runs.append(HandRun(_label_of(hand.name), folder))
            hands_loaded.append((str(h), hand))
        except HandsimError as exc:
            failures.append((str(h), exc))
    if failures:
        for h, hand in hands_loaded:  # the others' grasps.json in the same error (run_hands checks it too)
            try:
                load_plans_of(hand)
            except HandsimError as exc:
                failures.append((h, exc))
        message = (f"{what}: {len(failures)} of {len(hands)} hands do not load: "
                   + "; ".join(f"{h}: {one_line(e)}" for h, e in failures))
        if policy is not None or env is not None:
            try:
                _check_policy_and_env(policy or DEFAULT_POLICY, env or DEFAULT_ENV_ID)
            except HandsimError as exc:
                failures.append(("", exc))
                message += f"; and {one_line(exc)}"
        raise HandsFailed(message, failures)
    _check_labels(runs, what)
    return runs


def _check_labels(runs: Sequence[HandRun], what: str) -> None:
    seen: dict[str, str] = {}
    for r in runs:
        if r.label in seen:
            raise ConfigurationError(f"{what}: two hands named {r.label!r} ({seen[r.label]} and {r.hand}); expected "
                                     "hands with distinct names (they name the results folders)")
        seen[r.label] = r.hand


def prepare_hands(spec: SweepSpec, *, resume: bool = False) -> list[HandRun]:
    """The spec's hands, generated ones written under ``out/hands/`` (see :func:`_write_generated`).

    Every hand is checked (it loads; a generated one is made in a scratch folder, its
    ``grasp_data`` plans load) before the output folder is made, so a refused spec leaves no
    folder behind; when there is no such folder yet, so are the checks :func:`run_hands` makes
    before the first trial (the policy, the env, the ``hands``' plans; a new folder holds no
    results to check, and a generated hand passes them). A generated hand whose files are
    already what :func:`~handsim.handgen.make_hand` writes is left untouched, and its
    ``grasps.json`` keeps any plans it holds (unless ``grasp_data`` names plans to copy, which
    replace it).

    Raises:
        ConfigurationError: Two hands with the same label, bad generator parameters, or an
            ``out`` that cannot be created (see :func:`~handsim.bench.results.make_out_dir`).
        HandsFailed: Hands in ``hands`` that do not load (all named in one error); or, with no
            output folder yet, every problem :func:`run_hands` would refuse the run for.
        HandsimError: A ``grasp_data`` hand or plan file that does not load (the message names
            the spec, the ``[[generate]]`` table, the key and the file).
    """
    import tempfile

    from handsim.handgen import make_hand

    where = "sweep spec" if spec.path is None else str(spec.path)
    runs = hand_runs(spec.hands, f"{where}: key 'hands'", policy=spec.policy, env=spec.env)
    with tempfile.TemporaryDirectory(prefix="handsim-sweep-") as tmp:
        made = []  # (what to call the hand in errors, grid, its name, the scratch folder it was made in)
        for i, grid in enumerate(spec.generate):
            for kw in expand_grid(grid):
                at = f"{where}: [[generate]] #{i + 1} ({kw['name']})"
                try:
                    made.append((at, grid, kw["name"], make_hand(Path(tmp) / str(len(made)), **kw)))
                except HandsimError as exc:
                    raise _in_spec(exc, at) from None
            if grid.grasp_data is not None:
                try:
                    _plan_source(grid.grasp_data)
                except HandsimError as exc:
                    raise _in_spec(exc, f"{made[-1][0]}: key 'grasp_data'") from None
        _check_labels(runs + [HandRun(name, str(spec.out / "hands" / name)) for _, _, name, _ in made], where)
        _check_out(spec.out)
        if not spec.out.exists():
            _check_runs(runs, spec.out, grasp_ids=spec.grasp_ids, trials=spec.trials, seed=spec.seed,
                        policy=spec.policy, env=spec.env, resume=resume)
        make_out_dir(spec.out)  # a file named like the folder: one line now, not an OSError mid-way
        for at, grid, name, fresh in made:
            try:
                folder = _write_generated(spec.out / "hands" / name, fresh, grid.grasp_data is not None)
            except HandsimError as exc:
                raise _in_spec(exc, at) from None
            if grid.grasp_data is not None:
                try:
                    _copy_plans(grid.grasp_data, folder)
                except HandsimError as exc:
                    raise _in_spec(exc, f"{at}: key 'grasp_data'") from None
            runs.append(HandRun(name, str(folder)))
    return runs


# ----------------------------------------------------------------------------------------------
# running


def _check_policy_and_env(policy: str, env: str) -> None:
    """The policy factory and the env id can be imported / are registered (no env is built).

    Raises:
        HandsimError: Which one, and why (an unknown env lists the valid ids).
    """
    import gymnasium

    from handsim.bench.config import load_policy_factory
    from handsim.bench.runner import _ensure_registered, _env_choices

    load_policy_factory(policy)
    _ensure_registered(env)
    env_id = env.split(":", 1)[1] if ":" in env else env
    try:
        gymnasium.spec(env_id)  # what gymnasium.make looks up first
    except gymnasium.error.Error as exc:
        raise UnknownNameError(f"env {env!r}: {one_line(exc)}; {_env_choices()}") from None


def _check_hand(config: BenchConfig, results_path: Path, resume: bool) -> None:
    """What :func:`~handsim.bench.runner.run_bench` would refuse for this hand, found before any trial.

    The hand and its ``grasps.json`` load; without ``resume`` no unfinished run's trials sit in
    ``results_path``; with it, a ``results_path`` there loads and was made with this hand,
    policy and configuration (its protocol and episode settings are checked when the run
    starts: reading them builds the env).

    Raises:
        HandsimError: The first problem found.
    """
    from handsim.bench.results import load_results
    from handsim.bench.runner import _check_resumable, _hand_info, _refuse_unfinished_run
    from handsim.grasp_data import load_plans_of
    from handsim.hand import load_hand

    hand = load_hand(config.hand)
    load_plans_of(hand)
    if not resume:
        _refuse_unfinished_run(results_path)
        return
    if not results_path.is_file():
        return
    old = load_results(results_path)
    asked = {k: old.config[k] for k in ("protocol", "episode") if k in old.config} | config.to_dict()
    _check_resumable(old, _hand_info(hand, config.hand), config.policy, asked, results_path, hand_model=hand)


def _check_out(out: Path) -> None:
    """What :func:`~handsim.bench.results.make_out_dir` would refuse, found without making
    anything: ``out``, or the nearest existing path above it, is a file (each hand's run would
    fail on it in turn, after the checks said the hands could run).

    Raises:
        ConfigurationError: Naming ``out`` and the file in the way.
    """
    for path in (out, *out.parents):
        if path.exists():
            if not path.is_dir():
                raise ConfigurationError(f"--out {out}: cannot create the output folder: {path} is a file; expected "
                                         "a folder (new or existing)")
            return


def _check_runs(hands: Sequence[HandRun], out: Path, *, grasp_ids: Sequence[str], trials: int, seed: int,
                policy: str, env: str, resume: bool) -> list[BenchConfig]:
    """:func:`run_hands`' checks before the first trial: the output folder can be made, the
    policy, the env and every hand (:func:`_check_hand`, its results folder ``out/<label>``).

    Returns:
        Each hand's configuration, in order.

    Raises:
        HandsFailed: Every problem found, in one error (nothing was run).
    """
    from handsim.data import hand_dir

    configs, problems = [], []
    try:
        _check_out(out)
    except HandsimError as exc:
        problems.append(("", exc))
    try:
        _check_policy_and_env(policy, env)
        checked_policy, checked_env = policy, env
    except HandsimError as exc:
        problems.append(("", exc))
        # The hands are still checked (every problem in one error), under the defaults: a bad
        # --policy or --env must not hide a hand that would fail too.
        checked_policy, checked_env = DEFAULT_POLICY, DEFAULT_ENV_ID
    for h in hands:
        try:
            config = BenchConfig(hand=str(hand_dir(h.hand)), policy=checked_policy, grasp_ids=tuple(grasp_ids),
                                 trials=trials, seed=seed, env_id=checked_env)
            _check_hand(config, out / h.label / "results.json", resume)
            configs.append(config)  # as asked when the policy and env passed (else nothing runs)
        except HandsimError as exc:
            problems.append((h.label, exc))
    if problems:
        raise HandsFailed(f"nothing was run: {len(problems)} problem(s) found before the first trial: "
                          + "; ".join(f"{lab}: {one_line(e)}" if lab else one_line(e) for lab, e in problems),
                          problems)
    return configs


def run_hands(
    hands: Sequence[HandRun],
    out_dir: str | Path,
    *,
    grasp_ids: Sequence[str],
    trials: int = DEFAULT_TRIALS,
    seed: int = 0,
    policy: str = DEFAULT_POLICY,
    env: str = DEFAULT_ENV_ID,
    jobs: int | None = None,
    executor: Executor | None = None,
    resume: bool = False,
    progress: bool = True,
    stream: TextIO | None = None,
    extra: Sequence[BenchResults] = (),
    on_checked: Callable[[], None] | None = None,
) -> tuple[list[BenchResults], CoverageMatrix]:
    """Benchmark each hand into ``out_dir/<label>/`` and write the combined matrix into ``out_dir``.

    Before any trial runs, every hand is checked (:func:`_check_hand`: it loads, its grasp
    data loads, its results folder can be written or resumed) and so are the policy and the env
    id; every problem found is reported in one :class:`HandsFailed`. A hand that fails during its
    run (a :class:`~handsim.errors.HandsimError`) is recorded and the other hands still run;
    then the matrix of the runs that finished is written and :class:`HandsFailed` names the
    failed hands.

    Args:
        hands: The hands (labels must differ).
        out_dir: Output folder.
        grasp_ids: Grasp types for every hand.
        trials, seed, policy, env: As for :class:`~handsim.bench.config.BenchConfig`.
        jobs: Trials at a time.
        executor: Shared by all hands (default local); not closed here.
        resume: Continue each hand's ``results.json`` (hands already complete run nothing).
        progress: Show each run's progress display.
        stream: Where progress and per-hand lines go (default ``sys.stderr``).
        extra: Results loaded elsewhere, added to the matrix after the hands run here.
        on_checked: Called once every check passed, before the first trial (not when a check
            fails: nothing runs then).

    Returns:
        (the results of each hand run, in order; the matrix of those plus ``extra``).

    Raises:
        HandsFailed: Problems found before any trial (nothing ran), or hands that failed while
            running (the others ran; ``matrix`` is the matrix written, None if no run finished).
        BenchInterrupted: Ctrl-C; the hands finished so far and the trials of the current one are saved.
    """
    from handsim.bench.executors import LocalExecutor
    from handsim.bench.report import write_outputs
    from handsim.bench.runner import BenchInterrupted, run_bench

    stream = sys.stderr if stream is None else stream
    out = Path(out_dir)
    configs = _check_runs(hands, out, grasp_ids=grasp_ids, trials=trials, seed=seed, policy=policy, env=env,
                          resume=resume)
    if on_checked is not None:
        on_checked()
    executor = executor or LocalExecutor()
    results, labels, failed = [], [], []
    for i, (h, config) in enumerate(zip(hands, configs)):
        print(f"[{i + 1}/{len(hands)}] {h.label}: {h.hand}", file=stream)
        try:
            r = run_bench(config, out / h.label, jobs=jobs, resume=resume, progress=progress, stream=stream,
                          executor=executor)
        except BenchInterrupted:
            if failed:  # Ctrl-C must not swallow what an earlier hand's failure said
                print(f"interrupted; {len(failed)} hand(s) had failed before: "
                      + "; ".join(f"{lab}: {one_line(e)}" for lab, e in failed), file=stream)
            raise
        except HandsimError as exc:
            print(f"[{i + 1}/{len(hands)}] {h.label}: failed: {one_line(exc)}", file=stream)
            failed.append((h.label, exc))
            continue
        write_outputs(r, out / h.label)
        results.append(r)
        labels.append(h.label)
    runs = results + list(extra)
    matrix = build_matrix(runs, labels + _extra_labels(extra, labels)) if runs else None
    if matrix is not None:
        write_matrix(matrix, out)
    if failed:
        stale = [f.name for f in (out / MATRIX_JSON, out / MATRIX_PNG) if f.is_file()]
        kept = (f"the matrix of the {len(runs)} finished runs is in {out}" if matrix is not None
                else "no run finished, no matrix written" + (
                    f"; {' and '.join(stale)} in {out} are from an earlier run" if stale else ""))
        raise HandsFailed(f"{len(failed)} of {len(hands)} hands failed during their run ({kept}): "
                          + "; ".join(f"{lab}: {one_line(e)}" for lab, e in failed), failed, results, matrix)
    assert matrix is not None  # no failure: every hand ran
    return results, matrix


def _extra_labels(extra: Sequence[BenchResults], taken: Sequence[str]) -> list[str]:
    labels, used = [], set(taken)
    for r in extra:
        name = str(r.hand.get("name", "?"))
        label, k = name, 1
        while label in used:
            k += 1
            label = f"{name}#{k}"
        used.add(label)
        labels.append(label)
    return labels


def run_sweep(spec: SweepSpec, *, resume: bool = False, progress: bool = True,
              stream: TextIO | None = None) -> tuple[list[BenchResults], CoverageMatrix]:
    """Run a sweep spec: generate its hands, benchmark each, write the matrix (see :func:`run_hands`).

    The spec as run is saved as ``out/sweep.json`` (what was asked, with paths resolved) once
    the hands pass their checks, before the first trial: a refused run leaves the earlier one's.

    Raises:
        ConfigurationError: ``out`` is a file, or a folder that cannot be created or written (once
            the hands are checked, before anything is written; see
            :func:`~handsim.bench.results.make_out_dir`).
        MissingDependencyError: ``executor = "ray"`` without the ``ray`` extra (before any work).
        HandsFailed: Hands that cannot run (before any trial) or failed while running (see
            :func:`run_hands`).
        BenchInterrupted: Ctrl-C (what finished is saved; run again with ``resume=True``).
    """
    executor = make_executor(spec.executor, ray_address=spec.ray_address)
    with contextlib.closing(executor):  # closed also when preparing the hands fails
        if spec.ray_address is not None:
            executor.default_jobs()  # connects: a bad address fails before the output folder is made
        hands = prepare_hands(spec, resume=resume)  # every hand checked, then the output folder made
        record = {
            "spec": None if spec.path is None else str(spec.path),
            "hands": [dataclasses.asdict(h) for h in hands],
            "grasps": list(spec.grasp_ids), "trials": spec.trials, "seed": spec.seed, "policy": spec.policy,
            "env": spec.env, "executor": spec.executor,
        }
        return run_hands(hands, spec.out, grasp_ids=spec.grasp_ids, trials=spec.trials, seed=spec.seed,
                         policy=spec.policy, env=spec.env, jobs=spec.jobs, executor=executor, resume=resume,
                         progress=progress, stream=stream,
                         on_checked=lambda: write_json_atomic(spec.out / "sweep.json", record))
