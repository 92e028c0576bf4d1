"""Run the grasp-coverage benchmark: every trial an episode of ``handsim/Grasp-v0``.

The unit of work is one trial (one grasp type, one seed). Trials run on an executor
(:mod:`handsim.bench.executors`): a local process pool by default, or Ray; each worker keeps
the env of the grasp it last ran, so consecutive trials of one grasp do not rebuild it. A
trial's seed depends only on the base seed, the grasp's number and the trial index
(:func:`handsim.bench.config.trial_seed`), and every episode starts from a fresh physics
world, so the results depend neither on the number of workers nor on the executor.

After every finished trial ``results.json`` is rewritten atomically: an interrupted run keeps
what it finished and ``resume=True`` runs only the rest. The first trial of each grasp also
returns the env's last frame (rgb_array, at the end of the hold) for the contact sheet; it is
kept as ``frames/<number:02d>_<id>.png`` next to the results.

Example::

    config = BenchConfig(hand=str(hand_dir("default_hand")), grasp_ids=grasps.ids())
    results = run_bench(config, "handsim-results", jobs=2)
    print(results.achieved, "/", results.total)
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.metadata
import inspect
import json
import math
import platform
import shutil
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from numpy.typing import NDArray

from handsim._io import free_backup_path, quiet_stdout
from handsim.bench.config import BenchConfig, load_policy_factory
from handsim.bench.executors import Executor, LocalExecutor
from handsim.bench.progress import Progress
from handsim.bench.results import (
    RESULTS_FILE,
    BenchResults,
    aggregate,
    config_differences,
    load_results,
    make_out_dir,
)
from handsim.errors import (
    ConfigurationError,
    HandsimError,
    ResultsError,
    SimulationError,
    UnknownNameError,
    one_line,
)
from handsim.grasps import GraspType, default_taxonomy
from handsim.hand import load_hand

__all__ = [
    "FRAMES_DIR",
    "HAND_FILES_KEY",
    "BenchInterrupted",
    "TrialTask",
    "frame_path",
    "hand_files_sha256",
    "handsim_env_ids",
    "plan_tasks",
    "run_bench",
    "run_trial",
]

FRAMES_DIR = "frames"
#: The files :func:`handsim.bench.report.write_outputs` writes next to ``results.json``.
OUTPUT_FILES = ("report.md", "junit.xml", "contact_sheet.png", "coverage.png")


class BenchInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run; ``results`` holds the trials that finished (already written)."""

    def __init__(self, results: BenchResults) -> None:
        super().__init__("benchmark interrupted")
        self.results = results


@dataclasses.dataclass(frozen=True)
class TrialTask:
    """One trial, everything a worker process needs to run it (picklable).

    Attributes:
        env_id: The Gymnasium env id.
        env_kwargs: Extra ``gymnasium.make`` keyword arguments, as (name, value) pairs.
        hand: The hand folder.
        policy: ``"module:callable"`` policy factory.
        grasp_id: The grasp type.
        number: Its taxonomy number.
        trial: Trial index, from 0.
        seed: The episode's seed.
        render: Return the last frame (the first trial of each grasp).
    """

    env_id: str
    env_kwargs: tuple[tuple[str, Any], ...]
    hand: str
    policy: str
    grasp_id: str
    number: int
    trial: int
    seed: int
    render: bool


# ----------------------------------------------------------------------------------------------
# Worker side


# The env (and its policy) of the grasp this process ran last, keyed by everything that built it.
_WORKER_ENV: dict[tuple[Any, ...], tuple[Any, Any]] = {}


def _register_handsim_envs() -> None:
    # handsim's envs register lazily (no pybullet import) through register_envs().
    envs = importlib.import_module("handsim.envs")
    register = getattr(envs, "register_envs", None)
    if callable(register):
        register()


def handsim_env_ids() -> list[str]:
    """The registered ``handsim/...`` Gymnasium env ids (what ``--env`` offers), sorted."""
    import gymnasium

    _register_handsim_envs()
    return sorted(k for k in gymnasium.registry if k.startswith("handsim/"))


def _env_choices() -> str:
    return (f"valid: {', '.join(handsim_env_ids())}, or MODULE:ns/Name-vN to import the module "
            "that registers your env")


def _ensure_registered(env_id: str) -> None:
    """Register handsim's envs and import the module of a ``"module:ns/Name-vN"`` id.

    Raises:
        UnknownNameError: The module of ``"module:..."`` does not exist.
        ConfigurationError: It exists but fails while importing (the cause is named).
    """
    _register_handsim_envs()
    if ":" not in env_id:
        return
    # gymnasium would import the module itself, but its error loses which module was missing.
    module_name = env_id.split(":", 1)[0]
    try:
        importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise UnknownNameError(f"env {env_id!r}: no module {module_name!r} can be imported; "
                                   f"{_env_choices()}") from None
        raise ConfigurationError(f"env {env_id!r}: importing module {module_name!r} failed: "
                                 f"{type(exc).__name__}: {exc}") from exc
    except Exception as exc:
        raise ConfigurationError(f"env {env_id!r}: importing module {module_name!r} failed: "
                                 f"{type(exc).__name__}: {one_line(exc)}") from exc


def _make_env(task: TrialTask) -> tuple[Any, Any]:
    key = (task.env_id, task.env_kwargs, task.hand, task.policy, task.grasp_id)
    if key in _WORKER_ENV:
        return _WORKER_ENV[key]
    close_worker_envs()
    import gymnasium

    _ensure_registered(task.env_id)
    try:
        with quiet_stdout():
            env = gymnasium.make(
                task.env_id,
                grasp=task.grasp_id,
                hand=task.hand,
                render_mode="rgb_array",  # frames are only drawn when render() is called
                evaluate=True,
                disable_env_checker=True,
                **dict(task.env_kwargs),
            )
    except (gymnasium.error.UnregisteredEnv, gymnasium.error.DeprecatedEnv) as exc:  # Name/Namespace/VersionNotFound
        raise UnknownNameError(f"env {task.env_id!r}: {one_line(exc)}; {_env_choices()}") from None
    except gymnasium.error.Error as exc:
        if type(exc) is not gymnasium.error.Error:  # e.g. DependencyNotInstalled: the id is fine, making it is not
            raise ConfigurationError(f"env {task.env_id!r}: {type(exc).__name__}: {one_line(exc)}") from exc
        # The base class: an id gymnasium cannot parse ("", "my env-v0"): "Malformed environment ID"
        raise UnknownNameError(f"env {task.env_id!r}: {one_line(exc)}; {_env_choices()}") from None
    except TypeError as exc:
        if "unexpected keyword argument" not in str(exc):
            raise
        # A registered env that does not take the contract's arguments (e.g. CartPole-v1).
        why = one_line(exc).split(" was raised from")[0]  # gymnasium appends every kwarg
        raise ConfigurationError(
            f"env {task.env_id!r}: {why}; expected an env following the handsim/Grasp-v0 contract "
            "(gymnasium.make(id, grasp=, hand=, render_mode=, evaluate=)); " + _env_choices()
        ) from exc
    factory = load_policy_factory(task.policy)
    try:
        policy = factory(env)
    except Exception as exc:
        env.close()
        raise ConfigurationError(
            f"policy {task.policy!r}: factory(env) raised {type(exc).__name__}: {one_line(exc)}"
        ) from exc
    if not callable(policy):
        env.close()
        raise ConfigurationError(f"policy {task.policy!r}: factory(env) returned a {type(policy).__name__}, "
                                 "expected a callable policy(obs) -> action")
    _WORKER_ENV[key] = (env, policy)
    return env, policy


def close_worker_envs() -> None:
    """Close the env this process keeps between trials."""
    while _WORKER_ENV:
        _, (env, _) = _WORKER_ENV.popitem()
        env.close()


#: Parameter names of ``policy.reset`` that receive the first observation / the reset's info.
_OBS_NAMES = ("obs", "observation")
_INFO_NAMES = ("info",)


def _reset_arguments(reset: Callable[..., Any], obs: Any,
                     info: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """The arguments ``reset`` gets (the protocol of :class:`handsim.policies.Policy`):
    ``(positional, keyword)``.

    A parameter named ``obs``/``observation`` gets the observation and one named ``info`` the
    info, positional or keyword-only; unnamed required positional parameters get, as documented
    (``policy.reset(info)``): one, the info; two, ``(obs, info)`` in ``env.reset``'s order.
    Parameters with defaults and other names keep their defaults; ``reset(*args)`` gets the
    info, ``reset(**kwargs)`` gets ``obs=`` and ``info=``.
    """
    try:
        params = list(inspect.signature(reset).parameters.values())
    except (TypeError, ValueError):  # no signature (a builtin): the documented call
        return [info], {}
    values = {"obs": obs, "info": info}
    role_of = {**dict.fromkeys(_OBS_NAMES, "obs"), **dict.fromkeys(_INFO_NAMES, "info")}
    keyword: dict[str, Any] = {}
    for p in params:
        if p.kind is p.KEYWORD_ONLY:
            if p.name in role_of:
                keyword[p.name] = values[role_of[p.name]]
            elif p.default is p.empty:
                raise ConfigurationError(
                    f"policy.reset(*, {p.name}): cannot tell what to pass to the keyword-only parameter "
                    f"{p.name!r}; expected obs, observation or info (see handsim.policies.Policy)")
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    roles: list[str | None] = []
    for p in positional:
        if p.name in role_of:
            roles.append(role_of[p.name])
        elif p.default is p.empty:
            roles.append(None)  # unnamed and required
        else:
            roles.append("default")
    while roles and roles[-1] == "default":
        roles.pop()
    unnamed = [i for i, r in enumerate(roles) if r is None]
    free = [r for r in ("obs", "info") if r not in roles and r not in {role_of[k] for k in keyword}]
    if len(unnamed) == 1:
        roles[unnamed[0]] = "info" if "info" in free else (free[0] if free else None)
    elif len(unnamed) == 2 and free == ["obs", "info"]:
        roles[unnamed[0]], roles[unnamed[1]] = "obs", "info"
    if None in roles:
        names = ", ".join(p.name for p in positional)
        raise ConfigurationError(
            f"policy.reset({names}): cannot tell what to pass; expected reset(), reset(info), reset(obs) "
            "or reset(obs, info) (see handsim.policies.Policy)"
        )
    if not roles and not keyword:
        if any(p.kind is p.VAR_POSITIONAL for p in params):
            return [info], {}
        if any(p.kind is p.VAR_KEYWORD for p in params):
            return [], {"obs": obs, "info": info}
    return [values.get(r, p.default) for r, p in zip(roles, positional)], keyword


def _reset_policy(policy: Any, obs: Any, info: Mapping[str, Any]) -> None:
    reset = getattr(policy, "reset", None)
    if callable(reset):
        args, kwargs = _reset_arguments(reset, obs, info)
        reset(*args, **kwargs)


def _start_trial(env: Any, policy: Any, seed: int) -> tuple[Any, dict[str, Any]]:
    """Reset the env and the policy for a trial with seed ``seed``: ``(obs, info)``.

    The policy is built once per worker and grasp type and serves several trials, so anything
    random in it must restart from the trial's seed, or a trial's actions would depend on the
    trials its worker ran before (``--jobs``, ``--resume``): the env's action space is seeded
    with it, and the policy's reset info carries it as ``info["trial_seed"]``.
    """
    obs, info = env.reset(seed=seed)
    env.action_space.seed(seed)
    info = {**info, "trial_seed": seed}
    _reset_policy(policy, obs, info)
    return obs, info


def _jsonable(value: Any) -> Any:
    """Numpy types -> Python, non-finite floats -> None (JSON has neither)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else None
    return value


#: Trial record fields the results loader reads as numbers: a non-finite value fails the trial
#: and is written as 0.0 (JSON has no NaN).
_FINITE_FIELDS = ("q1", "q1_soft", "max_penetration_m", "max_joint_excess_deg", "max_joint_excess_m")
#: Of those, the ones an env may leave out (another env than handsim's): recorded as null.
_OPTIONAL_FIELDS = ("q1_soft",)
_NO_REASON = "not successful (the env gave no reason)"


def _with_message(exc: HandsimError, message: str) -> HandsimError:
    """A copy of ``exc`` (same class, so the CLI still exits 2) with another message."""
    try:
        new = type(exc)(message)
    except Exception:  # noqa: BLE001 - a subclass with another constructor signature
        new = HandsimError(message)
    return new


def run_trial(task: TrialTask) -> tuple[dict[str, Any], NDArray[np.uint8] | None]:
    """Run one episode with the policy until the env terminates or truncates.

    A physics blow-up (:class:`~handsim.errors.SimulationError`) is a failed trial with the
    reason recorded, and so is a non-finite ``q1``, ``q1_soft``, ``max_penetration_m``,
    ``max_joint_excess_deg`` or ``max_joint_excess_m`` from the env (recorded as 0.0, the reason saying what it was:
    JSON has no NaN, and the loader needs numbers there). Another
    :class:`~handsim.errors.HandsimError` (e.g. a NaN action from the policy) is re-raised as the
    same class with the grasp, trial, seed and policy prepended; any other exception is a bug
    and propagates unchanged.

    Raises:
        HandsimError: Bad input found while the trial ran (the message says which trial).

    Returns:
        The trial record (see :mod:`handsim.bench.results`) and, when ``task.render``, the
        last frame (H, W, 3) uint8.
    """
    env, policy = _make_env(task)
    start = time.perf_counter()
    steps = 0
    info: Mapping[str, Any] = {}
    terminated = truncated = False
    error = ""
    try:
        obs, info = _start_trial(env, policy, task.seed)
        while not (terminated or truncated):
            obs, _, terminated, truncated, info = env.step(policy(obs))
            steps += 1
    except SimulationError as exc:
        error = f"simulation error: {exc}"
    except HandsimError as exc:
        raise _with_message(exc, f"{task.grasp_id} trial {task.trial} (seed {task.seed}), "
                                 f"policy {task.policy}: {exc}") from exc
    wall = time.perf_counter() - start
    frame = None
    if task.render and not error:
        rendered = env.render()
        frame = None if rendered is None else np.ascontiguousarray(np.asarray(rendered, dtype=np.uint8)[..., :3])
    episode = info.get("episode") if terminated and not error else None
    if episode is None:
        why = error or (
            f"episode truncated after {steps} steps before the evaluation" if truncated
            else "episode ended without an evaluation"
        )
        episode = {"achieved": False, "held": False, "signature_matched": False, "thumb_abducted": None,
                   "q1": 0.0, "num_contacts": 0, "max_penetration_m": 0.0, "contact_regions": [],
                   "failure_reasons": [why], "disturbance": None}
        success = False
    else:
        success = bool(info.get("is_success", False))
    reasons = list(episode.get("failure_reasons", []))
    if not success and not reasons:
        reasons = [str(info.get("failure_reason") or _NO_REASON)]
    not_finite = []
    numbers: dict[str, float | None] = {}
    for key in _FINITE_FIELDS:
        if key in _OPTIONAL_FIELDS and episode.get(key) is None:
            numbers[key] = None
            continue
        value = episode.get(key, 0.0)
        try:
            number = float(value)
            shown = str(number)
        except (TypeError, ValueError):
            number, shown = math.nan, repr(value)
        if not math.isfinite(number):
            not_finite.append(f"{key} not finite ({shown}, recorded as 0.0)")
            number = 0.0
        numbers[key] = number
    if not_finite:
        # Not a number the scoring can stand behind: a failed trial, whatever the env said.
        success = False
        reasons = not_finite + [r for r in reasons if r != _NO_REASON]
    record = {
        "trial": task.trial,
        "seed": task.seed,
        "success": success,
        "held": bool(episode.get("held", False)),
        "signature_matched": bool(episode.get("signature_matched", False)),
        "thumb_abducted": episode.get("thumb_abducted"),
        "q1": numbers["q1"],
        "q1_soft": numbers["q1_soft"],
        "num_contacts": int(episode.get("num_contacts", 0)),
        "max_penetration_m": numbers["max_penetration_m"],
        "max_joint_excess_deg": numbers["max_joint_excess_deg"],
        "max_joint_excess_m": numbers["max_joint_excess_m"],
        "settle_translation_m": float(episode.get("settle_translation_m", 0.0)),
        "settle_rotation_deg": float(episode.get("settle_rotation_deg", 0.0)),
        "contact_regions": sorted(episode.get("contact_regions", [])),
        "required_force_n": [float(f) for f in episode.get("required_force_n", [])],
        "along_deg": {str(k): (None if v is None else float(v)) for k, v in (episode.get("along_deg") or {}).items()},
        "failure_reasons": [] if success else [str(r) for r in reasons],
        "steps": steps,
        "wall_s": wall,
        # null when the env does not say (a custom env; the stand-in record of an error or a cut)
        "pushed": None if episode.get("evaluated") is None else bool(episode["evaluated"]),
        "disturbance": episode.get("disturbance"),
    }
    return _jsonable(record), frame


def _worker_init() -> None:
    # Ctrl-C goes to the whole process group: the parent handles it, workers must not.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _worker_run(task: TrialTask) -> tuple[TrialTask, dict[str, Any], NDArray[np.uint8] | None]:
    record, frame = run_trial(task)
    return task, record, frame


# ----------------------------------------------------------------------------------------------
# Parent side


def plan_tasks(
    config: BenchConfig, grasps: Sequence[GraspType], done: Mapping[tuple[str, int], Any] | None = None
) -> list[TrialTask]:
    """The trials still to run, grasp by grasp in number order, trials in index order."""
    from handsim.bench.config import trial_seed

    tasks = []
    for g in grasps:
        for t in range(config.trials):
            if done is not None and (g.id, t) in done:
                continue
            tasks.append(TrialTask(
                env_id=config.env_id, env_kwargs=config.env_kwargs, hand=config.hand, policy=config.policy,
                grasp_id=g.id, number=g.number, trial=t, seed=trial_seed(config.seed, g.number, t), render=t == 0,
            ))
    return tasks


def frame_path(out_dir: str | Path, number: int, grasp_id: str) -> Path:
    """Where the first trial's last frame of a grasp is kept."""
    return Path(out_dir) / FRAMES_DIR / f"{number:02d}_{grasp_id}.png"


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("handsim", "pybullet", "numpy", "gymnasium"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def describe_env(config: BenchConfig, grasp_id: str) -> dict[str, Any]:
    """Build the env once in this process to check it and read the protocol it runs with.

    Returns:
        ``{"protocol": Protocol.to_dict(), "episode": EpisodeSettings.to_dict()}`` of the env's
        :class:`~handsim.episode.GraspEpisode`.
    """
    task = TrialTask(config.env_id, config.env_kwargs, config.hand, config.policy, grasp_id, 0, 0, 0, False)
    env, _ = _make_env(task)
    try:
        episode = getattr(env.unwrapped, "episode", None)
        if episode is None:
            from handsim.episode import EpisodeSettings
            from handsim.tolerances import DEFAULT_PROTOCOL

            # An env that does not expose its GraspEpisode runs the defaults (fake envs in tests).
            return {"protocol": DEFAULT_PROTOCOL.to_dict(), "episode": EpisodeSettings().to_dict()}
        return {"protocol": episode.protocol.to_dict(), "episode": episode.settings.to_dict()}
    finally:
        close_worker_envs()


#: ``results.json`` ``hand`` key: SHA-256 of the files that decide what a trial of the hand does.
HAND_FILES_KEY = "sha256"


def hand_files_sha256(hand: Any) -> dict[str, str | None]:
    """SHA-256 (hex) of a hand's URDF, ``hand.json`` and ``grasps.json`` (None: no grasps.json),
    and, for a URDF with mesh files, of those files.

    Recorded in ``results.json`` ``hand.sha256`` so that ``resume`` refuses a hand whose model
    or plans changed since the saved trials ran (e.g. plans written by ``handsim synth``, or a
    mesh re-exported). ``meshes`` (:func:`handsim._urdf_assets.mesh_files_sha256`: the sorted
    resolved paths and their bytes, found as PyBullet finds them) is present only when the URDF
    names mesh files, so a hand of primitives (every shipped URDF hand) hashes as before and
    its earlier results files still resume.

    Args:
        hand: A loaded :class:`~handsim.hand.Hand`.
    """
    import hashlib

    from handsim._urdf_assets import mesh_files_sha256
    from handsim.grasp_data import GRASP_DATA_FILE

    def digest(path: Path) -> str | None:
        return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None

    out = {"urdf": digest(Path(hand.urdf_path)), "hand_json": digest(Path(hand.metadata_path)),
           "grasps_json": digest(Path(hand.folder) / GRASP_DATA_FILE)}
    meshes = mesh_files_sha256(Path(hand.urdf_path))
    if meshes is not None:
        out["meshes"] = meshes
    return out


#: Protocol keys added after results files were first written, with the hands for which an
#: old file's missing key cannot change a verdict (so its trials resume):
#: ``max_joint_excess_m`` judges prismatic joints only.
_PROTOCOL_KEYS_ADDED = {"max_joint_excess_m": lambda hand: not _has_prismatic_joint(hand)}


def _has_prismatic_joint(hand: Any) -> bool:
    from handsim.kinematics import load_urdf

    tree = load_urdf(hand.urdf_path)
    return any(j.type == "prismatic" for j in tree.joints.values())


def _check_resumable(old: BenchResults, hand: Mapping[str, Any], policy: str, config: Mapping[str, Any], path: Path,
                     hand_model: Any = None) -> None:
    """Raise unless ``old`` was made with this hand, policy and configuration.

    Digests the old file lacks (it predates them) are not compared; a protocol key the old file
    lacks is accepted where it cannot change a verdict for ``hand_model`` (see
    ``_PROTOCOL_KEYS_ADDED``), and refused otherwise.
    """
    diffs = []
    old_hand, new_hand = dict(old.hand), dict(hand)
    old_files, new_files = old_hand.pop(HAND_FILES_KEY, None), new_hand.pop(HAND_FILES_KEY, None)
    # Derived from the hand's files (hashed above), so not compared on its own.
    for key in (COLLISION_OFF_KEY, EFFORT_CAPS_KEY):
        old_hand.pop(key, None)
        new_hand.pop(key, None)
    if old_hand != new_hand:
        diffs.append(f"hand {old_hand} vs {new_hand}")
    # A file saved before the hashes were recorded has none: it resumes on name, path and DoF.
    # Digests added later (``meshes``) are compared only when the old file has them too.
    if old_files is not None:  # load_results checked it is a mapping
        new_files = new_files or {}
        changed = [r for r in sorted(old_files) if old_files.get(r) != new_files.get(r)]
        if changed:
            diffs.append(f"the hand's {', '.join(changed)} changed since the saved trials ran (hand.{HAND_FILES_KEY})")
    if old.policy != policy:
        diffs.append(f"policy {old.policy!r} vs {policy!r}")
    found = config_differences([old.config, config], sorted(set(old.config) | set(config)), missing=None)
    old_protocol = old.config.get("protocol")
    if hand_model is not None and isinstance(old_protocol, Mapping):
        found = [(k, sub, vals) for k, sub, vals in found
                 if not (k == "protocol" and sub in _PROTOCOL_KEYS_ADDED and sub not in old_protocol
                         and _PROTOCOL_KEYS_ADDED[sub](hand_model))]
    for key in dict.fromkeys(k for k, _, _ in found):
        parts = [(sub, was, now) for k, sub, (was, now) in found if k == key]
        if parts[0][0] is None:  # the whole value differs
            diffs.append(f"config.{key} {parts[0][1]!r} vs {parts[0][2]!r}")
        else:
            diffs.append(f"config.{key} (" + ", ".join(f"{s}: {w!r} vs {n!r}" for s, w, n in parts) + ")")
    if diffs:
        raise ResultsError(
            f"{path}: cannot --resume: it was made with a different configuration (saved vs asked: "
            + "; ".join(diffs) + "); use another --out folder, or run without --resume to start again"
        )


#: ``results.json`` ``hand`` key: link pairs whose collision the physics turned off (present
#: only when there are any).
COLLISION_OFF_KEY = "collision_off"
#: ``results.json`` ``hand`` key: ``{grasp id: {joint: cap}}``, the plans that lower a motor's
#: effort cap below the URDF's (``grasps.json`` ``effort``; present only when there are any).
EFFORT_CAPS_KEY = "effort_caps"


def _hand_info(hand: Any, hand_path: str | Path) -> dict[str, Any]:
    """``results.json`` ``hand``: name, folder, DoF, the hashes of its files and, when there
    are any, the link pairs whose collision the physics turns off because they overlap at the
    rest pose (``[link a, link b, depth mm]``; :class:`~handsim.sim.HandBody`) and the plans
    that lower motor effort caps (:data:`EFFORT_CAPS_KEY`)."""
    info = {"name": hand.name, "path": str(Path(hand_path).resolve()), "dof": hand.num_dof,
            HAND_FILES_KEY: hand_files_sha256(hand)}
    pairs = _collision_off_pairs(hand)
    if pairs:
        info[COLLISION_OFF_KEY] = pairs
    caps = _effort_caps(hand)
    if caps:
        info[EFFORT_CAPS_KEY] = caps
    return info


def _effort_caps(hand: Any) -> dict[str, dict[str, float]]:
    """The hand's plans that lower motor caps: ``{grasp id: {joint: cap [N m or N]}}``."""
    from handsim.grasp_data import load_plans_of
    from handsim.kinematics import load_urdf

    tree = load_urdf(hand.urdf_path)
    plans = load_plans_of(hand, tree=tree)  # the tree loaded once, for both
    caps = {gid: plan.lowered_efforts(tree.joint_names, tree.effort) for gid, plan in sorted(plans.items())}
    return {gid: c for gid, c in caps.items() if c}


def _collision_off_pairs(hand: Any) -> list[list[Any]]:
    """The pairs :class:`~handsim.sim.HandBody` releases for ``hand`` at its rest pose, as the
    episode loads it (rest pose clipped to the joint limits), depths in mm (a few ms)."""
    from handsim.sim import HandBody, World

    limits = [hand.joint_limits[j] for j in hand.actuated_joints]
    rest = np.clip(hand.rest_vector(), [lim.lower for lim in limits], [lim.upper for lim in limits])
    world = World(gravity=False)
    try:
        body = HandBody(world, hand.urdf_path, visual=False, rest_q=rest)
        return [[a, b, round(-1000.0 * d, 2)] for a, b, d in body.disabled_collision_pairs]
    finally:
        world.close()


def _check_out_entries(out: Path) -> None:
    """The names the run writes in ``out`` are free for it: its files are not folders, and
    ``frames`` is not a file (found before any trial, not when the report is written after).

    Raises:
        ConfigurationError: Naming the entry in the way.
    """
    for name in (RESULTS_FILE, *OUTPUT_FILES):
        if (out / name).is_dir():
            raise ConfigurationError(f"--out {out}: {name} there is a folder; expected a file the run can write "
                                     "(remove or rename it, or choose another --out)")
    frames = out / FRAMES_DIR
    if frames.exists() and not frames.is_dir():
        raise ConfigurationError(f"--out {out}: {FRAMES_DIR} there is a file; expected the folder of rendered "
                                 "frames (remove or rename it, or choose another --out)")


def _move_old_outputs(out: Path, stream: TextIO) -> None:
    """Move an earlier run's report, junit.xml and pictures in ``out`` to ``<name>.bak[.N]``.

    They are written only when a run finishes, so a fresh run that is interrupted or stopped by
    bad input would otherwise leave them beside its own unfinished ``results.json``, describing
    the earlier run (a CI job publishing ``junit.xml`` would report that run as this one).
    """
    moved = []
    for name in OUTPUT_FILES:
        path = out / name
        if path.is_file():
            backup = free_backup_path(path)
            path.replace(backup)
            moved.append(backup.name)
    if moved:
        print(f"note: the earlier run's outputs in {out} are kept as {', '.join(moved)} (this run writes its own "
              "when it finishes)", file=stream)


def _refuse_unfinished_run(results_path: Path) -> None:
    """Raise when ``results_path`` holds finished trials of an unfinished run (a fresh run would lose them).

    Raises:
        ResultsError: Naming the file, the trials and what to do.
    """
    if results_path.exists() and not _looks_like_results(results_path):
        # Not a file handsim wrote (its writes are atomic): someone else's, or damaged. Replacing
        # it silently could lose work; --resume reports what is wrong with it.
        raise ResultsError(f"{results_path} exists and is not a handsim results file (or cannot be read): "
                           "remove it or choose another --out")
    kept = _finished_trials_of_unfinished_run(results_path) if results_path.is_file() else 0
    if kept:
        raise ResultsError(f"{results_path} has {kept} finished trials of an unfinished run: use --resume, "
                           "or another --out / remove it")


def _looks_like_results(path: Path) -> bool:
    """``path`` is a readable JSON object with a results file's ``grasps`` list (any schema)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and isinstance(data.get("grasps"), list)


def _finished_trials_of_unfinished_run(path: Path) -> int:
    """Trials saved in ``path`` when it is the results file of an unfinished run, else 0."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0  # not a results file we could resume from: nothing to keep
    if not isinstance(data, dict) or data.get("complete") is not False or not isinstance(data.get("grasps"), list):
        return 0
    return sum(len(g["trial_results"]) for g in data["grasps"]
               if isinstance(g, dict) and isinstance(g.get("trial_results"), list))


def run_bench(
    config: BenchConfig,
    out_dir: str | Path,
    *,
    jobs: int | None = None,
    resume: bool = False,
    progress: bool = True,
    stream: TextIO | None = None,
    on_trial: Callable[[TrialTask, Mapping[str, Any]], None] | None = None,
    executor: Executor | None = None,
) -> BenchResults:
    """Run every trial of ``config`` and keep ``out_dir/results.json`` up to date.

    Args:
        config: What to run.
        out_dir: Output folder (created).
        jobs: Trials at a time (default: the executor's, the CPU count for local); local with 1
            runs in this process.
        resume: Keep the trials of an existing ``results.json`` made with the same
            configuration and the same hand files (URDF, ``hand.json``, ``grasps.json``: their
            hashes are saved as ``hand.sha256``; a file without them resumes on the hand's name,
            path and DoF) and run only the missing ones. Without it, an existing
            ``results.json`` of a finished run is replaced, its copy kept as ``results.json.bak``
            (or the next free ``.bak.N``; the run's report, ``junit.xml`` and pictures are moved
            to ``<name>.bak[.N]`` likewise, so that outputs never describe another run than
            ``results.json``), and one of an unfinished run with finished trials is refused
            (they would be lost).
        progress: Show the progress display on ``stream``.
        stream: Progress stream (default ``sys.stderr``).
        on_trial: Called in this process after each trial is recorded (tests use it).
        executor: Where the trials run (default a :class:`~handsim.bench.executors.LocalExecutor`);
            it yields trials as they finish and the file is rewritten after each. An executor
            passed in is not closed here (the caller may use it for more runs).

    Returns:
        The results (also written to ``out_dir/results.json``).

    Raises:
        BenchInterrupted: On Ctrl-C, after writing the finished trials.
        ResultsError: ``resume`` with a results file of another configuration, or unreadable;
            or no ``resume`` and ``out_dir`` holds an unfinished run's trials.
        ConfigurationError: ``out_dir`` cannot be created.
        HandsimError: Bad hand, grasp, policy or env arguments (before any trial runs), or bad
            input found while a trial ran (e.g. a NaN action): the message names the trial and
            how many finished trials are kept in ``results.json``.
    """
    out = Path(out_dir)
    results_path = out / RESULTS_FILE
    taxonomy = default_taxonomy()
    grasps = [taxonomy.get(g) for g in config.grasp_ids]
    hand = load_hand(config.hand)
    load_policy_factory(config.policy)  # fail before any work when it cannot be imported
    # Before the folder is touched: a grasps.json that does not load, or an env that cannot be
    # built, must leave no empty --out behind, nor move an earlier run's report aside.
    hand_info = _hand_info(hand, config.hand)
    config_dict = config.to_dict() | describe_env(config, grasps[0].id)
    make_out_dir(out)
    _check_out_entries(out)
    if not resume:
        _refuse_unfinished_run(results_path)
        if results_path.is_file():  # a finished run: this run replaces it, but it is never lost
            backup = free_backup_path(results_path)
            shutil.copy2(results_path, backup)
            print(f"note: {out} held a finished run; its results are kept as {backup} (this run replaces "
                  f"{RESULTS_FILE}, report and pictures)", file=stream or sys.stderr)
        _move_old_outputs(out, stream or sys.stderr)
    grasp_info = [{"number": g.number, "id": g.id, "name": g.name, "type": g.type} for g in grasps]

    records: dict[tuple[str, int], Mapping[str, Any]] = {}
    if resume and results_path.is_file():
        old = load_results(results_path)
        _check_resumable(old, hand_info, config.policy, config_dict, results_path, hand_model=hand)
        records.update(old.trial_records())
        old_files = old.hand.get(HAND_FILES_KEY)
        if isinstance(old_files, Mapping) and set(hand_info[HAND_FILES_KEY]) - set(old_files):
            # Saved before some digest existed (``meshes``): the finished file keeps only the
            # digests its saved trials were checked against.
            unchecked = sorted(set(hand_info[HAND_FILES_KEY]) - set(old_files))
            hand_info = {**hand_info, HAND_FILES_KEY: {k: v for k, v in hand_info[HAND_FILES_KEY].items()
                                                        if k in old_files}}
            print(f"note: {results_path} predates hand.{HAND_FILES_KEY}.{', '.join(unchecked)}: its saved trials are "
                  "not checked against those files", file=stream or sys.stderr)
        if HAND_FILES_KEY not in old.hand:
            # Saved before the hashes existed: its trials cannot be checked against the hand's
            # files, so the finished file must not claim they were (it keeps no hashes).
            hand_info = {k: v for k, v in hand_info.items() if k != HAND_FILES_KEY}
            print(f"note: {results_path} predates hand.{HAND_FILES_KEY}: its saved trials are not checked against "
                  "the hand's current files", file=stream or sys.stderr)
    elif (out / FRAMES_DIR).is_dir():
        # A fresh run: frames of an earlier run in this folder must not end up on its contact sheet.
        for old_frame in (out / FRAMES_DIR).glob("*.png"):
            old_frame.unlink()
    tasks = plan_tasks(config, grasps, records)

    own = executor is None
    if executor is None:
        executor = LocalExecutor()
    try:
        return _run_tasks(executor, tasks, jobs, out, results_path, hand_info, config, config_dict, grasp_info,
                          records, progress, stream, on_trial)
    finally:
        # A caller's executor may serve several runs (compare, sweep: one Ray start for all hands).
        if own:
            executor.close()


def _run_tasks(
    executor: Executor,
    tasks: Sequence[TrialTask],
    jobs: int | None,
    out: Path,
    results_path: Path,
    hand_info: Mapping[str, Any],
    config: BenchConfig,
    config_dict: Mapping[str, Any],
    grasp_info: Sequence[Mapping[str, Any]],
    records: dict[tuple[str, int], Mapping[str, Any]],
    progress: bool,
    stream: TextIO | None,
    on_trial: Callable[[TrialTask, Mapping[str, Any]], None] | None,
) -> BenchResults:
    if jobs is None:
        jobs = executor.default_jobs()
    jobs = max(1, min(jobs, len(tasks))) if tasks else 1
    versions = _versions()
    start = time.perf_counter()
    finished = 0

    def build() -> BenchResults:
        wall = time.perf_counter() - start
        timing = {"wall_s": wall, "trials_run": finished, "trials_per_s": finished / wall if wall > 0 else None,
                  "jobs": jobs, "executor": executor.name}
        return aggregate(hand=hand_info, policy=config.policy, config=config_dict, grasp_info=grasp_info,
                         records=records, timing=timing, versions=versions)

    bar = Progress(len(tasks), stream=stream, enabled=progress)
    build().write(results_path)
    try:
        # closing() shuts the pool down at once when the loop body raises (e.g. Ctrl-C in on_trial).
        with contextlib.closing(executor.run(tasks, jobs)) as finished_trials:
            for task, record, frame in finished_trials:
                records[(task.grasp_id, task.trial)] = record
                finished += 1
                if frame is not None:
                    from handsim.bench.pictures import save_frame

                    save_frame(frame, frame_path(out, task.number, task.grasp_id))
                build().write(results_path)
                if on_trial is not None:
                    on_trial(task, record)
                bar.update(bool(record["success"]), f"{task.number:02d} {task.grasp_id} #{task.trial}")
    except KeyboardInterrupt:
        bar.close()
        results = build()
        results.write(results_path)
        raise BenchInterrupted(results) from None
    except Exception as exc:
        bar.close()
        build().write(results_path)
        kept = f"{len(records)} finished trials kept in {results_path}"
        if isinstance(exc, HandsimError):
            raise _with_message(exc, f"{exc}; {kept}") from exc
        exc.add_note(kept)  # a bug: its traceback is shown, and this says nothing was lost
        raise
    results = build()
    results.write(results_path)
    return results

