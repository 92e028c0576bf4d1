"""Verification of synthesized plans in physics, with exactly the benchmark's trial.

A candidate plan is written into a scratch copy of the hand folder (its ``grasps.json`` is the
hand's own, with only the candidate's type replaced), and each trial is
:func:`handsim.bench.runner.run_trial`: the ``handsim/Grasp-v0`` env in benchmark mode, the
scripted policy, the benchmark's seeds. The plan is stored as JSON with full float precision
before it is verified, so the file the synthesis writes is exactly the plan that was tested.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from handsim.errors import GraspDataError
from handsim.grasp_data import GRASP_DATA_FILE, load_plans_of
from handsim.hand import Hand

__all__ = ["NEIGHBOUR_ITERATIONS", "Verification", "graded_score", "read_grasp_file", "verify_plan"]

#: Solver iteration counts either side of the protocol's 150 at which a plan that verifies is
#: run again. Hand v5's coverage depended on the count's parity (session 18), and a plan can
#: still be tuned to the exact solve: session 21's prismatic 4 finger climb verified 2/3 at 150
#: and held 0/9 at 149 and 151. A plan that holds no trial at one of them is not verified.
NEIGHBOUR_ITERATIONS = (149, 151)


@dataclasses.dataclass(frozen=True)
class Verification:
    """Physics verdict of one candidate plan.

    Attributes:
        successes: Trials achieved.
        trials: Trials run (fewer than the seeds when it could no longer reach ``needed``).
        q1: Mean Q1 over the trials run, as scored after the settle [-].
        reasons: The failed trials' reasons, one line per trial (seed first).
        settled: The first trial still formed the contact signature after the release and
            settle (the screen passed it on to the disturbance; True when not screened).
        graded: Mean :func:`graded_score` over the trials run (NaN when the screen stopped the
            candidate before a full trial) [-].
        neighbours: ``(solver iterations, successes)`` of the same trials at each of
            :data:`NEIGHBOUR_ITERATIONS`, when the plan verified at the protocol's count and
            ``neighbours`` was asked for (empty otherwise).
    """

    successes: int
    trials: int
    q1: float
    reasons: tuple[str, ...]
    settled: bool = True
    graded: float = math.nan
    neighbours: tuple[tuple[int, int], ...] = ()

    def verifies(self, seeds: int, needed: int) -> bool:
        """Every seed run, at least ``needed`` successes, and, where the neighbouring solver
        counts were checked (:data:`NEIGHBOUR_ITERATIONS`), at least one success at each."""
        return (self.trials == seeds and self.successes >= needed
                and all(wins > 0 for _, wins in self.neighbours))


#: Graded score of a trial that ended before the disturbance (knocked away, physics error).
GRADED_NOT_PUSHED = -10.0
#: Graded score lost per failure reason other than the disturbance's (a missing signature
#: group, penetration, a joint past its limit): half the six directions, so that a climb is
#: drawn to the signature first but still sees the pushes a plan survives meanwhile.
GRADED_PER_REASON = 3.0


def graded_score(record: Mapping[str, Any], protocol: Any = None) -> float:
    """A trial's graded score: how far it got, not only whether it succeeded.

    ``directions held + the fraction of the failed direction's push survived + the mean margin
    left over the held directions`` (each ``1 - max(moved / max_translation_m, turned /
    max_rotation_deg)``, clipped at 0) ``- GRADED_PER_REASON`` per other failure reason; a trial
    that ended before the disturbance scores ``GRADED_NOT_PUSHED``. With the six directions a
    successful trial scores in [6, 7], one that fails only under the pushes in [0, 7).

    Args:
        record: A trial record of :func:`handsim.bench.runner.run_trial`.
        protocol: The protocol the trial ran (default: the benchmark's).

    Returns:
        The score [-].
    """
    from handsim.tolerances import DEFAULT_PROTOCOL

    p = DEFAULT_PROTOCOL if protocol is None else protocol
    dist = record.get("disturbance")
    if not dist:
        return GRADED_NOT_PUSHED
    per_direction = p.steps(p.direction_duration_s)
    held = [d for d in dist["directions"] if dist["held_per_direction"].get(d)]
    score = float(len(held))
    if dist.get("failed_direction") is not None and per_direction > 0:
        score += min(max(dist["steps"] - len(held) * per_direction, 0) / per_direction, 1.0)
    margins = [max(0.0, 1.0 - max(dist["max_translation_m"][d] / p.max_translation_m,
                                  dist["max_rotation_deg"][d] / p.max_rotation_deg)) for d in held]
    score += sum(margins) / max(len(dist["directions"]), 1)
    if not record.get("success"):
        others = [r for r in record.get("failure_reasons", ()) if r != dist.get("reason")]
        score -= GRADED_PER_REASON * len(others)
    return score


_SHAPE = 'an object {"schema": 1, "grasps": {<grasp id>: <plan>, ...}} (the grasps.json format)'


def read_grasp_file(path: str | Path, hand: Hand | None = None) -> dict[str, Any]:
    """The ``{"schema": 1, "grasps": {...}}`` content of a grasp file (empty when absent).

    Args:
        path: The grasps file (any name).
        hand: When given, every plan in the file is also validated against this hand with the
            benchmark's own loader (:func:`handsim.grasp_data.load_plans_of`: grasp ids,
            joint names, targets inside the limits, unit quaternions), so that a file synthesis
            adds to is one the benchmark can load.

    Returns:
        The parsed file (other top-level keys included).

    Raises:
        GraspDataError: Not JSON, not of that shape, or (with ``hand``) a plan the hand cannot
            load; the message names the file.
    """
    p = Path(path)
    if not p.exists():
        return {"schema": 1, "grasps": {}}
    if not p.is_file():
        raise GraspDataError(f"{p}: expected a grasps file, got a folder")
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GraspDataError(f"{p}: invalid JSON ({exc}); expected {_SHAPE}") from None
    if not isinstance(raw, dict):
        raise GraspDataError(f"{p}: expected {_SHAPE}, got a JSON {type(raw).__name__}")
    schema = raw.get("schema")
    if isinstance(schema, bool) or schema != 1:
        raise GraspDataError(f"{p}: field schema: expected 1, got {schema!r}")
    if not isinstance(raw.get("grasps"), dict):
        raise GraspDataError(f"{p}: field grasps: expected an object mapping grasp ids to plans, "
                             f"got {type(raw.get('grasps')).__name__}")
    if hand is not None:
        _check_plans(p, hand)
    return raw


def _check_plans(path: Path, hand: Hand) -> None:
    """Validate a grasps file's plans against ``hand`` exactly as the benchmark loads them."""
    if path.name == GRASP_DATA_FILE:
        load_plans_of(hand, path.parent)
        return
    # The loader reads <folder>/grasps.json: check a copy, and name the user's file.
    with tempfile.TemporaryDirectory(prefix="handsim-synth-check-") as tmp:
        copy = Path(tmp) / GRASP_DATA_FILE
        shutil.copyfile(path, copy)
        try:
            load_plans_of(hand, tmp)
        except GraspDataError as exc:
            raise GraspDataError(str(exc).replace(str(copy), str(path))) from None


def _scratch_hand(hand_folder: Path, workdir: Path, name: str, grasp_id: str, entry: Mapping[str, Any]) -> Path:
    dest = workdir / name
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(hand_folder, dest, ignore=shutil.ignore_patterns(GRASP_DATA_FILE, "*.png", "__pycache__"))
    data = read_grasp_file(hand_folder / GRASP_DATA_FILE)
    grasps = dict(data["grasps"])
    grasps[grasp_id] = dict(entry)
    (dest / GRASP_DATA_FILE).write_text(json.dumps({"schema": 1, "grasps": grasps}, indent=1), encoding="utf-8")
    return dest


def _settle_screen(task: Any) -> str:
    """The benchmark's trial run only up to its score after the settle: the same env, policy
    and seed as :func:`handsim.bench.runner.run_trial` (so the same physics step for step), the
    last control step applied and the object released and settled as
    :meth:`handsim.episode.GraspEpisode.evaluate` does, then the verdicts that do not need the
    disturbance: the contact signature, the penetration before and after the grasp, and the
    joint-limit excess. A failure here fails the full trial too.

    Returns:
        Why the trial would fail ("" when it passes to the disturbance).
    """
    # The runner's own env cache and policy reset: the trial's exact set-up.
    from handsim.bench.runner import _make_env, _start_trial

    env, policy = _make_env(task)
    obs, info = _start_trial(env, policy, task.seed)
    genv = env.unwrapped
    ep = genv.episode
    for _ in range(ep.grasp_steps - 1):
        obs, _, terminated, truncated, info = env.step(policy(obs))
        if terminated or truncated:
            return "object knocked away during the grasp"
    ep.apply(genv.action_to_targets(genv._check_action(policy(obs))))
    ep.release_object()
    if ep.pushed_away():
        return "object knocked away during the grasp"
    proto = ep.protocol
    ep.world.set_gravity(True)
    ep.world.step(proto.steps(proto.settle_s))
    score = ep.score(compute_q1=False)
    reasons = list(score.signature_reasons)
    if max(score.max_penetration_m, ep.initial_penetration_m) > proto.max_penetration_m:
        reasons.append(f"penetration {max(score.max_penetration_m, ep.initial_penetration_m) * 1e3:.1f} mm")
    reasons.extend(ep.joint_limit_reasons())  # revolute in deg, prismatic in mm
    return "; ".join(reasons)


def verify_plan(
    hand_folder: str | Path,
    grasp_id: str,
    number: int,
    entry: Mapping[str, Any],
    seeds: Sequence[int],
    workdir: str | Path,
    name: str,
    needed: int = 0,
    screen: bool = False,
    neighbours: bool = False,
    solver_iterations: Sequence[int] = (),
) -> Verification:
    """Run the benchmark's trial of ``entry`` for each seed.

    Args:
        hand_folder: The hand folder.
        grasp_id: The grasp type.
        number: Its taxonomy number.
        entry: The plan, in the ``grasps.json`` entry format.
        seeds: Episode seeds, in order.
        workdir: A scratch folder (the hand copy is made inside it).
        name: Sub-folder name of this candidate's hand copy (unique per candidate).
        needed: Stop once ``needed`` successes can no longer be reached.
        screen: Stop at the first trial when it fails (a cheap screen of many candidates:
            only a candidate that holds on the first seed is run on the others); and before
            that trial, run it only up to the score after the settle (:func:`_settle_screen`):
            a candidate whose grasp is already lost there skips the six-direction disturbance
            (up to 6 s of simulated time), whose verdict could not save it.
        neighbours: When the plan verifies (every seed run, at least ``max(needed, 1)``
            successes), run the same trials at each of :data:`NEIGHBOUR_ITERATIONS` too (stopping
            at a count's first success); one without any success is named in the reasons.
        solver_iterations: Constraint-solver iteration counts the seeds' trials run at, in turn
            (seed ``t`` at ``solver_iterations[t % len]``; empty: the protocol's count). A climb
            scores a plan across the counts with it (:attr:`handsim.synth.refine.RefineSettings.solver_counts`).
            Not with ``neighbours``, which checks a plan verified at the protocol's count.

    Returns:
        The :class:`Verification`.

    Raises:
        ConfigurationError: ``solver_iterations`` together with ``neighbours``.
    """
    from handsim.bench.config import DEFAULT_ENV_ID, DEFAULT_POLICY
    from handsim.bench.runner import TrialTask, run_trial
    from handsim.errors import ConfigurationError
    from handsim.tolerances import DEFAULT_PROTOCOL

    if neighbours and solver_iterations:
        raise ConfigurationError("verify_plan: neighbours=True checks a plan verified at the protocol's solver count; "
                                 f"expected no solver_iterations with it, got {tuple(solver_iterations)}")
    folder = _scratch_hand(Path(hand_folder), Path(workdir), name, grasp_id, entry)

    def trial(t: int, seed: int, **env_kwargs: Any) -> TrialTask:
        return TrialTask(env_id=DEFAULT_ENV_ID, env_kwargs=tuple(env_kwargs.items()), hand=str(folder),
                         policy=DEFAULT_POLICY, grasp_id=grasp_id, number=number, trial=t, seed=int(seed), render=False)

    def at_count(n: int) -> dict[str, Any]:
        """The env kwargs of a trial at ``n`` solver iterations (none at the protocol's own)."""
        return {} if n == DEFAULT_PROTOCOL.solver_iterations else {
            "protocol": dataclasses.replace(DEFAULT_PROTOCOL, solver_iterations=int(n))}

    successes, q1s, grades, reasons = 0, [], [], []
    for t, seed in enumerate(seeds):
        count = solver_iterations[t % len(solver_iterations)] if solver_iterations else DEFAULT_PROTOCOL.solver_iterations
        # push_failed: the graded score counts the pushes a failing grasp survives (a climb
        # sees a plan that holds before it forms the whole signature).
        task = trial(t, seed, push_failed=True, **at_count(count))
        if screen and t == 0:
            why = _settle_screen(task)
            if why:
                return Verification(successes=0, trials=1, q1=0.0, reasons=(f"seed {seed}: {why} (after the settle)",),
                                    settled=False)
        record, _ = run_trial(task)
        q1s.append(float(record["q1"]))
        grades.append(graded_score(record))
        if record["success"]:
            successes += 1
        else:
            reasons.append(f"seed {seed}: " + "; ".join(record["failure_reasons"]))
        if successes + (len(seeds) - t - 1) < needed or (screen and successes == 0):
            break
    counts: list[tuple[int, int]] = []
    if neighbours and len(q1s) == len(seeds) and successes >= max(needed, 1):
        for n in NEIGHBOUR_ITERATIONS:
            # any() stops at the first success: one is all the check asks for
            counts.append((n, int(any(run_trial(trial(t, seed, **at_count(n)))[0]["success"]
                                      for t, seed in enumerate(seeds)))))
        if any(wins == 0 for _, wins in counts):
            reasons.append("holds only at the protocol's solver count: " + ", ".join(
                f"{wins}/{len(seeds)} at {n} iterations" for n, wins in counts if wins == 0)
                + f" (solver_iterations {DEFAULT_PROTOCOL.solver_iterations}: {successes}/{len(seeds)})")
    return Verification(successes=successes, trials=len(q1s), q1=sum(q1s) / len(q1s), reasons=tuple(reasons),
                        graded=sum(grades) / len(grades), neighbours=tuple(counts))
