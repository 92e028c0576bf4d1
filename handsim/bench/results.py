"""The benchmark's results file (``results.json``, schema 1): build, write atomically, load.

The file is the run's source of truth. Its trial records are what ``--resume`` continues
from; everything else (per-grasp rates, coverage) is recomputed from them by
:func:`aggregate`, so a resumed run and an uninterrupted one give the same file.

Layout (keys in this order)::

    {
      "schema": 1,
      "complete": true,                 # false while running or after an interruption
      "hand": {"name", "path", "dof", "sha256": {"urdf", "hand_json", "grasps_json", "meshes"},
               "collision_off": [[link a, link b, depth mm], ...],
               "effort_caps": {grasp id: {joint: cap}}},
                                        # sha256: hex digests of the hand's files (grasps_json
                                        # null without one; meshes only for a URDF naming mesh
                                        # files); optional, absent from files written before it
                                        # existed; --resume compares it. collision_off: link
                                        # pairs overlapping at the rest pose, whose collision
                                        # the physics turns off; present only when there are any.
                                        # effort_caps: the plans that lower motor caps below the
                                        # URDF's [N m or N] (grasps.json "effort"); only if any
      "policy": "handsim.policies:scripted",
      "config": {"env_id", "env_kwargs", "grasps", "trials", "seed", "success_threshold",
                 "protocol": Protocol.to_dict(), "episode": EpisodeSettings.to_dict()},
      "coverage": {"achieved": 21, "total": 33},
      "grasps": [                        # taxonomy number order
        {"number", "id", "name", "type", "achieved", "success_rate", "trials",
         "trials_planned", "successes", "q1", "q1_soft", "max_penetration_m",
         "contact_regions",              # union over trials, sorted
         "contact_regions_per_trial",    # list per trial
         "failure_reasons",              # list per trial ([] for a success)
         "timing": {"wall_s", "trials_per_s"},
         "trial_results": [{"trial", "seed", "success", "held", "signature_matched",
                            "thumb_abducted", "q1", "q1_soft", "num_contacts", "max_penetration_m",
                            "max_joint_excess_deg", "max_joint_excess_m", "contact_regions",
                            "required_force_n",   # per required group [N]; since session 14
                            "along_deg",          # {finger: deg} of signature.along; since session 15
                            "settle_translation_m", "settle_rotation_deg",  # recorded, not judged
                            "failure_reasons", "steps", "wall_s",
                            "pushed",             # the disturbance protocol ran; since session 21
                            "disturbance"}]}      # its per-direction record, null when not pushed
      ],
      "timing": {"wall_s", "trials_run", "trials_per_s", "jobs", "executor"},   # this invocation
      "versions": {"handsim", "pybullet", "numpy", "python"}
    }

``q1`` is the mean over the trials run, ``max_penetration_m`` the largest; ``success_rate``
is ``successes / trials`` (null before any trial ran). ``q1_soft`` (since session 16) is the
mean Q1 of the same contacts as soft fingers, with the torsional friction the simulator gives
the pads; null for a file whose trials predate it. ``pushed`` (since session 21) is false for
a trial that was not pushed because it had already failed when it was scored after the settle
(or its object was knocked away during the grasp; ``handsim bench --push-failed`` pushes every
trial), true when the disturbance protocol ran, and null when the env does not say (a custom
``--env``, a simulation error, an episode cut before its evaluation; also a file from before).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import statistics
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from handsim.errors import ConfigurationError, ResultsError
from handsim.grasps import default_taxonomy

__all__ = [
    "MISSING",
    "RESULTS_FILE",
    "SCHEMA_VERSION",
    "TIMING_KEYS",
    "BenchResults",
    "GraspOutcome",
    "aggregate",
    "config_differences",
    "load_results",
    "make_out_dir",
    "strip_timing",
    "wilson_interval",
    "write_json_atomic",
]

SCHEMA_VERSION = 1
RESULTS_FILE = "results.json"
#: Keys whose values are wall-clock measurements: they differ between identical runs.
TIMING_KEYS = ("timing", "wall_s", "versions")

_TRIAL_KEYS = ("trial", "seed", "success", "q1", "max_penetration_m", "contact_regions", "failure_reasons")
_GRASP_KEYS = ("number", "id", "name", "type", "trial_results")
_TOP_KEYS = ("schema", "hand", "policy", "config", "grasps")


@dataclasses.dataclass(frozen=True)
class GraspOutcome:
    """One grasp type's outcome over its trials.

    Attributes:
        number: Taxonomy number, 1..33.
        id: Taxonomy id.
        name: The paper's name.
        type: ``power``, ``intermediate`` or ``precision``.
        achieved: ``success_rate >= success_threshold`` (False before any trial ran).
        success_rate: Successful trials / trials run [-], None before any trial ran.
        trials: Trials run.
        trials_planned: Trials the run asks for.
        successes: Successful trials.
        q1: Mean Ferrari-Canny Q1 over the trials run [-] (0 before any trial ran), point
            contacts as peers report it.
        max_penetration_m: Largest hand-object penetration over the trials [m].
        contact_regions: Union of the hand regions in contact over the trials (sorted).
        contact_regions_per_trial: The regions in contact, per trial run.
        failure_reasons: The failure reasons, per trial run (empty for a success).
        wall_s: Wall time of the trials, summed [s].
        trial_results: The trial records, by trial index.
        q1_soft: Mean Q1 with soft-finger contacts over the trials that record it [-] (None
            when none does: files written before it existed).
    """

    number: int
    id: str
    name: str
    type: str
    achieved: bool
    success_rate: float | None
    trials: int
    trials_planned: int
    successes: int
    q1: float
    max_penetration_m: float
    contact_regions: tuple[str, ...]
    contact_regions_per_trial: tuple[tuple[str, ...], ...]
    failure_reasons: tuple[tuple[str, ...], ...]
    wall_s: float
    trial_results: tuple[Mapping[str, Any], ...]
    q1_soft: float | None = None

    @property
    def success_interval(self) -> tuple[float, float] | None:
        """The 95 % Wilson score interval of the success rate (:func:`wilson_interval`), None
        before any trial ran."""
        return wilson_interval(self.successes, self.trials) if self.trials else None

    @property
    def reason(self) -> str:
        """The most frequent failure reason over the failed trials ("" when none failed)."""
        counts: dict[str, int] = {}
        for reasons in self.failure_reasons:
            if reasons:
                counts[reasons[0]] = counts.get(reasons[0], 0) + 1
        if not counts:
            return ""
        # Most frequent; ties go to the earliest trial's reason so the text is deterministic.
        return max(counts, key=lambda r: counts[r])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict in the file's key order."""
        return {
            "number": self.number,
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "achieved": self.achieved,
            "success_rate": self.success_rate,
            "trials": self.trials,
            "trials_planned": self.trials_planned,
            "successes": self.successes,
            "q1": self.q1,
            "q1_soft": self.q1_soft,
            "max_penetration_m": self.max_penetration_m,
            "contact_regions": list(self.contact_regions),
            "contact_regions_per_trial": [list(r) for r in self.contact_regions_per_trial],
            "failure_reasons": [list(r) for r in self.failure_reasons],
            "timing": {
                "wall_s": self.wall_s,
                "trials_per_s": (self.trials / self.wall_s) if self.wall_s > 0 else None,
            },
            "trial_results": [dict(t) for t in self.trial_results],
        }


@dataclasses.dataclass(frozen=True)
class BenchResults:
    """A whole benchmark run (see the module docstring for the file layout).

    Attributes:
        hand: ``{"name", "path", "dof"}``.
        policy: The policy factory, ``"module:callable"``.
        config: Trials, seed, grasps, success threshold, env id, protocol and episode settings.
        grasps: Per-grasp outcomes, in taxonomy number order.
        complete: Every planned trial has run.
        timing: ``{"wall_s", "trials_run", "trials_per_s", "jobs", "executor"}`` of the last invocation.
        versions: Package versions the run used.
        path: The file it was loaded from (None when built in memory).
    """

    hand: Mapping[str, Any]
    policy: str
    config: Mapping[str, Any]
    grasps: tuple[GraspOutcome, ...]
    complete: bool
    timing: Mapping[str, Any]
    versions: Mapping[str, Any]
    path: Path | None = dataclasses.field(default=None, compare=False)

    @property
    def achieved(self) -> int:
        """Number of achieved grasp types."""
        return sum(g.achieved for g in self.grasps)

    @property
    def total(self) -> int:
        """Number of grasp types in the run."""
        return len(self.grasps)

    @property
    def success_threshold(self) -> float:
        """The success-rate threshold the run used."""
        return float(self.config["success_threshold"])

    def grasp(self, grasp_id: str) -> GraspOutcome:
        """The outcome of one grasp type by id."""
        for g in self.grasps:
            if g.id == grasp_id:
                return g
        raise KeyError(grasp_id)

    def trial_records(self) -> dict[tuple[str, int], Mapping[str, Any]]:
        """Every trial record keyed by ``(grasp_id, trial)``."""
        return {(g.id, int(t["trial"])): t for g in self.grasps for t in g.trial_results}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict in the file's key order."""
        return {
            "schema": SCHEMA_VERSION,
            "complete": self.complete,
            "hand": dict(self.hand),
            "policy": self.policy,
            "config": dict(self.config),
            "coverage": {"achieved": self.achieved, "total": self.total},
            "grasps": [g.to_dict() for g in self.grasps],
            "timing": dict(self.timing),
            "versions": dict(self.versions),
        }

    def write(self, path: str | Path) -> Path:
        """Write the file atomically (see :func:`write_json_atomic`)."""
        return write_json_atomic(path, self.to_dict())


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a success rate (E. B. Wilson, "Probable inference, the law of
    succession, and statistical inference", JASA 22(158), 1927).

    Unlike ``p +- z sqrt(p (1 - p) / n)`` it stays inside [0, 1] and is not empty at 0/n or n/n,
    which a benchmark of a few trials per type mostly sees: 3/3 gives (0.44, 1.00), so three
    trials cannot show a true rate above one half at 95 %; 5/5 gives (0.57, 1.00).

    Args:
        successes: Successful trials (0 <= successes <= trials).
        trials: Trials run (>= 1).
        confidence: Two-sided confidence level, in (0, 1).

    Returns:
        (lower, upper) bounds of the success rate [-].

    Raises:
        ConfigurationError: Counts or confidence out of range.
    """
    if isinstance(trials, bool) or not isinstance(trials, (int, np.integer)) or trials < 1:
        raise ConfigurationError(f"wilson_interval: trials: expected an int >= 1, got {trials!r}")
    if isinstance(successes, bool) or not isinstance(successes, (int, np.integer)) or not 0 <= successes <= trials:
        raise ConfigurationError(f"wilson_interval: successes: expected an int in [0, {trials}], got {successes!r}")
    if not (isinstance(confidence, (int, float)) and 0.0 < confidence < 1.0):
        raise ConfigurationError(f"wilson_interval: confidence: expected a number in (0, 1), got {confidence!r}")
    z = statistics.NormalDist().inv_cdf(0.5 + confidence / 2.0)
    n, p = float(trials), successes / trials
    z2n = z * z / n
    centre = (p + z2n / 2.0) / (1.0 + z2n)
    half = z * math.sqrt(p * (1.0 - p) / n + z2n / (4.0 * n)) / (1.0 + z2n)
    # At 0/n and n/n the bound is exactly 0 or 1; rounding must not leave 1e-17 or 0.9999999.
    lower = 0.0 if successes == 0 else max(0.0, centre - half)
    upper = 1.0 if successes == trials else min(1.0, centre + half)
    return lower, upper


def _outcome(info: Mapping[str, Any], trials: Sequence[Mapping[str, Any]], planned: int, threshold: float) -> GraspOutcome:
    trials = sorted(trials, key=lambda t: int(t["trial"]))
    n = len(trials)
    successes = sum(bool(t["success"]) for t in trials)
    rate = successes / n if n else None
    regions_per = tuple(tuple(t["contact_regions"]) for t in trials)
    soft = [float(t["q1_soft"]) for t in trials if t.get("q1_soft") is not None]
    return GraspOutcome(
        number=int(info["number"]),
        id=str(info["id"]),
        name=str(info["name"]),
        type=str(info["type"]),
        # A tiny epsilon keeps 1/2 >= 0.5 exact-safe whatever float division gives.
        achieved=bool(rate is not None and rate >= threshold - 1e-12),
        success_rate=rate,
        trials=n,
        trials_planned=planned,
        successes=successes,
        q1=float(sum(float(t["q1"]) for t in trials) / n) if n else 0.0,
        q1_soft=float(sum(soft) / len(soft)) if soft else None,
        max_penetration_m=max((float(t["max_penetration_m"]) for t in trials), default=0.0),
        contact_regions=tuple(sorted(set().union(*regions_per))) if regions_per else (),
        contact_regions_per_trial=regions_per,
        failure_reasons=tuple(tuple(t["failure_reasons"]) for t in trials),
        wall_s=float(sum(float(t.get("wall_s", 0.0)) for t in trials)),
        trial_results=tuple(trials),
    )


def aggregate(
    *,
    hand: Mapping[str, Any],
    policy: str,
    config: Mapping[str, Any],
    grasp_info: Sequence[Mapping[str, Any]],
    records: Mapping[tuple[str, int], Mapping[str, Any]],
    timing: Mapping[str, Any],
    versions: Mapping[str, Any],
) -> BenchResults:
    """Build the run's results from its trial records.

    Args:
        hand: ``{"name", "path", "dof"}``.
        policy: ``"module:callable"``.
        config: The run's config dict (must hold ``trials`` and ``success_threshold``).
        grasp_info: ``{"number", "id", "name", "type"}`` per grasp of the run, in number order.
        records: Trial records keyed by ``(grasp_id, trial)``.
        timing: Timing of this invocation.
        versions: Package versions.

    Returns:
        The results; ``complete`` when every grasp has all its planned trials.
    """
    planned = int(config["trials"])
    threshold = float(config["success_threshold"])
    by_grasp: dict[str, list[Mapping[str, Any]]] = {str(g["id"]): [] for g in grasp_info}
    for (gid, _), rec in records.items():
        if gid in by_grasp:
            by_grasp[gid].append(rec)
    outcomes = tuple(_outcome(g, by_grasp[str(g["id"])], planned, threshold) for g in grasp_info)
    return BenchResults(
        hand=dict(hand),
        policy=policy,
        config=dict(config),
        grasps=outcomes,
        complete=all(o.trials >= planned for o in outcomes),
        timing=dict(timing),
        versions=dict(versions),
    )


def make_out_dir(out: str | Path) -> Path:
    """Create an output folder (``--out DIR``), or say in one line why it cannot be.

    Raises:
        ConfigurationError: ``out`` is an existing file, cannot be created (no such parent,
            read-only file system, permissions) or is not writable.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigurationError(f"--out {out}: cannot create the output folder: a file of that name exists; "
                                 "expected a folder (new or existing)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(f"--out {out}: cannot create the output folder: {exc.strerror or exc}; "
                                 "expected a folder path that can be created") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ConfigurationError(f"--out {out}: cannot write in the output folder: permission denied")
    return out


#: :func:`config_differences`' stand-in for a key a configuration lacks (an older file).
MISSING: Any = object()


def config_differences(
    configs: Sequence[Mapping[str, Any]], keys: Sequence[str], missing: Any = MISSING
) -> list[tuple[str, str | None, list[Any]]]:
    """Where the ``config`` blocks of several runs differ, for the keys given.

    A key whose values are all dicts is compared key by key inside (sorted), so a difference is
    ``(key, sub, values)``, e.g. ``("protocol", "max_rotation_deg", [15.0, 45.0])``; any other
    difference is ``(key, None, values)``. The baseline comparison, ``--resume`` and the coverage
    matrix all word their notes from this.

    Args:
        configs: The runs' ``config`` blocks.
        keys: The keys to compare, in the order to report them.
        missing: The value reported (and compared) for a key a configuration lacks.

    Returns:
        One ``(key, sub or None, value per run)`` per difference.
    """
    out: list[tuple[str, str | None, list[Any]]] = []
    for key in keys:
        values = [c.get(key, missing) for c in configs]
        if all(v == values[0] for v in values[1:]):
            continue
        if all(isinstance(v, Mapping) for v in values):
            for sub in sorted(set().union(*values)):
                inner = [v.get(sub, missing) for v in values]
                if not all(x == inner[0] for x in inner[1:]):
                    out.append((key, sub, inner))
        else:
            out.append((key, None, values))
    return out


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """Write JSON so that a reader (or a crash) never sees a half-written file.

    The text goes to a temporary file in the same folder, is flushed to disk, then replaces
    ``path`` with :func:`os.replace` (atomic on POSIX and Windows).

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=1, allow_nan=False) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); give it the mode a plain open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        # Also on KeyboardInterrupt: never leave the temporary file behind.
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def _need(obj: Any, keys: Sequence[str], where: str, path: Path) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise ResultsError(f"{path}: field {where!r}: expected an object, got {type(obj).__name__}")
    missing = [k for k in keys if k not in obj]
    if missing:
        raise ResultsError(f"{path}: field {where!r}: missing {missing}; required: {list(keys)}")
    return obj


def _got(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({'null' if value is None else type(value).__name__})"


def _bad(path: Path, where: str, expected: str, value: Any) -> ResultsError:
    return ResultsError(f"{path}: field {where!r}: expected {expected}, got {_got(value)}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_int(obj: Mapping[str, Any], key: str, where: str, path: Path, minimum: int = 0) -> int:
    value = obj[key]
    if not _is_int(value) or value < minimum:
        raise _bad(path, f"{where}.{key}", f"an integer >= {minimum}", value)
    return value


def _check_number(obj: Mapping[str, Any], key: str, where: str, path: Path) -> float:
    value = obj[key]
    if not _is_number(value):
        raise _bad(path, f"{where}.{key}", "a finite number", value)
    return float(value)


def _check_str(obj: Mapping[str, Any], key: str, where: str, path: Path) -> str:
    value = obj[key]
    if not isinstance(value, str):
        raise _bad(path, f"{where}.{key}", "a string", value)
    return value


def _check_strings(obj: Mapping[str, Any], key: str, where: str, path: Path) -> None:
    value = obj[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(path, f"{where}.{key}", "a list of strings", value)


def _check_bool(obj: Mapping[str, Any], key: str, where: str, path: Path, nullable: bool = False) -> None:
    value = obj[key]
    if not (isinstance(value, bool) or (nullable and value is None)):
        raise _bad(path, f"{where}.{key}", "true or false" + (" or null" if nullable else ""), value)


def _check_trial(t: Mapping[str, Any], where: str, path: Path, planned: int) -> None:
    """Type-check one trial record (the required keys are known to be present)."""
    trial = _check_int(t, "trial", where, path)
    if trial >= planned:
        raise _bad(path, f"{where}.trial", f"a trial index in 0..{planned - 1} (config.trials is {planned})", trial)
    _check_int(t, "seed", where, path)
    _check_bool(t, "success", where, path)
    _check_number(t, "q1", where, path)
    if t.get("q1_soft") is not None:  # null from an env that does not give it
        _check_number(t, "q1_soft", where, path)
    _check_number(t, "max_penetration_m", where, path)
    _check_strings(t, "contact_regions", where, path)
    _check_strings(t, "failure_reasons", where, path)
    # Written by every run, read by the report and the matrix: checked when present.
    for key in ("held", "signature_matched"):
        if key in t:
            _check_bool(t, key, where, path)
    if "thumb_abducted" in t:
        _check_bool(t, "thumb_abducted", where, path, nullable=True)
    for key in ("num_contacts", "steps"):
        if key in t:
            _check_int(t, key, where, path)
    for key in ("max_joint_excess_deg", "max_joint_excess_m", "wall_s"):
        if key in t:
            _check_number(t, key, where, path)
    if "pushed" in t:
        _check_bool(t, "pushed", where, path, nullable=True)
    if t.get("disturbance") is not None and not isinstance(t["disturbance"], Mapping):
        raise _bad(path, f"{where}.disturbance", "an object or null", t["disturbance"])
    # The verdict must agree with the record it sums up: a success flag flipped by hand does not
    # make a failed trial count.
    if t["success"] and t["failure_reasons"]:
        raise _bad(path, f"{where}.success", "false for a trial with failure_reasons", t["success"])
    if not t["success"] and not t["failure_reasons"]:
        raise _bad(path, f"{where}.failure_reasons", "at least one reason for a failed trial", t["failure_reasons"])
    for key in ("held", "signature_matched"):
        if t["success"] and t.get(key) is False:
            raise _bad(path, f"{where}.success", f"false for a trial whose {key} is false", t["success"])


def load_results(path: str | Path) -> BenchResults:
    """Read and check a ``results.json`` (or a folder holding one).

    Per-grasp aggregates are recomputed from the trial records, so a file edited by hand
    cannot claim a rate its trials do not show. Every field the aggregates, ``--resume``,
    ``--baseline`` and the coverage matrix read is type-checked (``"success": "no"`` is an
    error, not a success).

    Raises:
        ResultsError: The file is missing, not JSON, of another schema version, lacks a field
            or has a field of the wrong type or range (the message names the file and the
            field, what was expected and what it holds).
    """
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    if not path.is_file():
        raise ResultsError(f"{path}: no such results file (expected a results.json written by `handsim bench`)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: not valid JSON ({exc})") from None
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    _need(raw, _TOP_KEYS, "<top>", path)
    if raw["schema"] != SCHEMA_VERSION:
        raise ResultsError(f"{path}: field 'schema': expected {SCHEMA_VERSION}, got {raw['schema']!r}")
    if "complete" in raw:
        _check_bool(raw, "complete", "<top>", path)
    if not isinstance(raw["policy"], str):
        raise _bad(path, "policy", "a string (MODULE:CALLABLE)", raw["policy"])
    for key in ("timing", "versions"):
        if key in raw and not isinstance(raw[key], Mapping):
            raise _bad(path, key, "an object", raw[key])
    config = _need(raw["config"], ("trials", "success_threshold", "grasps"), "config", path)
    planned = _check_int(config, "trials", "config", path, minimum=1)
    threshold = config["success_threshold"]
    if not _is_number(threshold) or not 0.0 < threshold <= 1.0:
        raise _bad(path, "config.success_threshold", "a number in (0, 1]", threshold)
    _check_strings(config, "grasps", "config", path)
    if "seed" in config:
        _check_int(config, "seed", "config", path)
    hand = _need(raw["hand"], ("name", "path", "dof"), "hand", path)
    _check_str(hand, "name", "hand", path)
    _check_str(hand, "path", "hand", path)
    _check_int(hand, "dof", "hand", path)
    if "sha256" in hand:
        digests = hand["sha256"]
        if not isinstance(digests, Mapping) or not all(
                isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in digests.items()):
            raise _bad(path, "hand.sha256", "an object of file -> hex digest (or null)", digests)
    if not isinstance(raw["grasps"], list):
        raise _bad(path, "grasps", "a list", raw["grasps"])
    info: list[Mapping[str, Any]] = []
    records: dict[tuple[str, int], Mapping[str, Any]] = {}
    seen: set[str] = set()
    taxonomy = default_taxonomy()
    taxonomy_ids = set(taxonomy.ids())
    for i, g in enumerate(raw["grasps"]):
        where = f"grasps[{i}]"
        _need(g, _GRASP_KEYS, where, path)
        _check_int(g, "number", where, path, minimum=1)
        for key in ("id", "name", "type"):
            _check_str(g, key, where, path)
        if g["id"] in seen:
            raise _bad(path, f"{where}.id", "each grasp id once", g["id"])
        if g["id"] not in taxonomy_ids:  # ids only: Taxonomy's own `in` also takes numbers
            raise _bad(path, f"{where}.id", "a grasp id of the taxonomy (e.g. 'tip_pinch')", g["id"])
        number = taxonomy.get(g["id"]).number
        if number != g["number"]:
            raise _bad(path, f"{where}.number", f"{number} (the number of {g['id']!r})", g["number"])
        seen.add(g["id"])
        info.append({k: g[k] for k in ("number", "id", "name", "type")})
        if not isinstance(g["trial_results"], list):
            raise _bad(path, f"{where}.trial_results", "a list", g["trial_results"])
        for j, t in enumerate(g["trial_results"]):
            _need(t, _TRIAL_KEYS, f"{where}.trial_results[{j}]", path)
            _check_trial(t, f"{where}.trial_results[{j}]", path, planned)
            key = (g["id"], t["trial"])
            if key in records:
                raise _bad(path, f"{where}.trial_results[{j}].trial", "each trial index once", t["trial"])
            records[key] = t
    results = aggregate(
        hand=hand,
        policy=raw["policy"],
        config=config,
        grasp_info=info,
        records=records,
        timing=raw.get("timing", {}),
        versions=raw.get("versions", {}),
    )
    return dataclasses.replace(results, path=path)


def strip_timing(data: Any) -> Any:
    """A copy of a results dict without wall-clock values (to compare two runs' outcomes)."""
    if isinstance(data, Mapping):
        return {k: strip_timing(v) for k, v in data.items() if k not in TIMING_KEYS}
    if isinstance(data, list):
        return [strip_timing(v) for v in data]
    return data

