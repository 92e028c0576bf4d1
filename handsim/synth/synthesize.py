"""``handsim synth``'s engine: per-type optimisation, physics verification, the grasps file.

For each grasp type (one unit of work, run in a process pool):

1. Types without a required side contact: the closing model
   (:func:`handsim.synth.closing.sweep_candidates`: object pose first, then each finger closes
   until it meets the object, the targets a small press past that) gives the candidates, by
   cost. Side types (the object between fingers' sides, or against the index's side: the
   spread joints must close, which the closing model holds still):
   :func:`handsim.synth.optimize.optimize` minimises the type's cost from random restarts
   (numpy only); the best candidates become plans (:func:`~handsim.synth.optimize.plan_from_solution`),
   ordered by cost with Q1 breaking near-ties.
2. The best ``verify`` plans are run in physics with the benchmark's trial and seeds
   (:func:`handsim.synth.verify.verify_plan`), in order: a candidate that fails the first seed
   is dropped after it (a cheap screen), one that holds is run on every seed, and the search
   stops at a candidate that passes them all. The winner is the candidate with the most
   successes (ties: the higher Q1 measured in physics, then the lower cost).
   Restarts (closing-model types): when none of them is verified, further candidate families
   are drawn, each from its own random stream (``SeedSequence([seed, number, 1, r])``: new
   object placements and hand samples), and their best ``restart_verify`` candidates are
   verified in turn, up to ``ClosingSettings.restarts`` families in all, and only while the
   screen says it pays: some candidate so far kept the signature through the release and
   settle and lost the object only under the pushes (a type whose candidates never form the
   signature gets no restart). One placement family fits a seed's draw; with four, the
   4-finger hand's sphere 3 finger is verified with 3 of seeds 0-9 instead of none of 0-13.
3. Refine (``refine`` > 0 evaluations): when no candidate is verified but some kept the
   signature through the release and settle (the screen's ``settled``), the best of those is
   hill-climbed in physics (:func:`handsim.synth.refine.refine_plan`: its close targets and
   object pose, scored by the graded trial score on climb seeds that are not the benchmark's),
   and the climb's plan, when it changed, is verified on the benchmark's seeds like any
   candidate and competes with them for the win. On the default hand, seed 0, 32
   evaluations (:data:`REFINE_BUDGET`; the default is 0, off) climb 12 types and verify 3 more (prismatic 3 finger, power sphere, sphere 3
   finger: 10/33), for about twice the physics (all 33 types on 2 jobs: 206 -> 394 s on
   session 10's machine, ``synth_refine.json``).
4. The winner is written into the output ``grasps.json`` as soon as its type finishes, with
   one exception: a winner that is **not verified never replaces a plan the file already
   holds** (hand-written or from an earlier run). The old plan stays, and the candidate goes
   to the sibling file :func:`unverified_path` (``grasps.unverified.json`` next to
   ``grasps.json``; the same format), which ``handsim synth`` names. A type the file has no
   plan for gets the unverified winner (so ``handsim bench`` measures it), its note saying
   ``verified: false`` with the reasons. Before a verified winner replaces an existing plan,
   the file as it was before the run is copied to ``<out>.bak`` (``<out>.bak.1``, ... when
   earlier runs' backups exist: none is overwritten).

**Re-tune** (``retune=True``, ``handsim synth --retune``) replaces steps 1-3 by
:func:`retune_type`: the type's existing plan (in ``out``, else in the hand's own
``grasps.json``) is verified on the benchmark's seeds and refine-climbed from where it is (a
plan that already holds on the climb seeds is not climbed); the climbed plan is verified and
wins when the plan as it was failed, or when it verifies with at least the plan's successes.
Step 4's rules write the result (a plan kept as it was is written back unchanged and counts as
no replacement).

A type's random streams depend only on the seed, the type's number and the restart
(``SeedSequence([seed, number])`` for the optimisation, ``[seed, number, 1]`` for the closing
model's first family, ``[seed, number, 2]`` for the refine climb), and each physics trial
starts from a fresh world, so the file does not depend on ``jobs``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import math
import multiprocessing
import os
import signal
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from handsim._io import free_backup_path
from handsim.bench.config import DEFAULT_TRIALS, SUCCESS_THRESHOLD, trial_seed
from handsim.bench.progress import Progress
from handsim.errors import ConfigurationError
from handsim.grasps import GraspType, default_taxonomy
from handsim.hand import load_hand
from handsim.kinematics import load_urdf
from handsim.synth.closing import DEFAULT_CLOSING, ClosingSettings, sweep_candidates
from handsim.synth.handmodel import HandSurface
from handsim.synth.optimize import (
    DEFAULT_SETTINGS,
    Candidate,
    GraspProblem,
    SynthSettings,
    closing_check,
    optimize,
    plan_from_solution,
)
from handsim.synth.refine import DEFAULT_REFINE_SETTINGS, RefineSettings, refine_plan
from handsim.synth.verify import (
    NEIGHBOUR_ITERATIONS,
    Verification,
    read_grasp_file,
    verify_plan,
)
from handsim.tolerances import DEFAULT_PROTOCOL

__all__ = ["DEFAULT_REFINE", "DEFAULT_VERIFY", "REFINE_BUDGET", "SynthResults", "TypeResult", "retune_type", "synthesize",
           "synthesize_type", "unverified_path", "verification_seeds"]

#: Candidates per type verified in physics by default.
DEFAULT_VERIFY = 16

#: Refine-climb evaluations per unverified type that pay. Measured on the default hand
#: (prototype of session 10, the same climb): 16 evaluations verified none of the 26 unverified
#: types, 32 verified 3 (prismatic 3 finger, power sphere, sphere 3 finger: their climbs reached
#: a mean climb score of 6, every direction held, after 18-28 evaluations and stopped), 48 the
#: same 3 for 1.5 x the physics of 32 (the other climbs use their whole budget).
REFINE_BUDGET = 32
#: ``handsim synth``'s default: off. The stage about doubles a run (the default hand, all 33
#: types, 2 jobs: 206 s -> 394 s on session 10's machine, ``benchmarks/results/synth_refine.json``),
#: past the 5 minutes a whole synthesis is allowed; ``--refine 32`` (:data:`REFINE_BUDGET`)
#: turns it on.
DEFAULT_REFINE = 0


@dataclasses.dataclass(frozen=True)
class TypeResult:
    """What the synthesis made of one grasp type.

    Attributes:
        grasp_id: The type.
        number: Its taxonomy number.
        entry: The written ``grasps.json`` entry (None when nothing could be made).
        verified: The winner achieved the type in physics on at least the benchmark's success
            threshold of the verification seeds.
        successes: The winner's successful trials.
        trials: The winner's trials run.
        q1: The winner's mean Q1 in physics (synthesis Q1 when never verified).
        cost: The winner's optimisation cost [m].
        reasons: Why it is not verified (the winner's failure reasons, or why no candidate).
        candidates_verified: Candidates run in physics.
        wall_s: Time spent on the type [s].
    """

    grasp_id: str
    number: int
    entry: dict[str, Any] | None
    verified: bool
    successes: int
    trials: int
    q1: float
    cost: float
    reasons: tuple[str, ...]
    candidates_verified: int
    wall_s: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy (without the entry)."""
        out = dataclasses.asdict(self)
        out.pop("entry")
        out["reasons"] = list(self.reasons)
        return out


@dataclasses.dataclass(frozen=True)
class SynthResults:
    """All types of one synthesis run.

    Attributes:
        out: The grasps file written.
        seed: The synthesis seed.
        types: Per type, in taxonomy order.
        wall_s: Total wall time [s].
        jobs: Worker processes used.
        kept: Types whose existing plan in ``out`` was kept because their winner was not
            verified (the winner is in ``unverified_out``), in taxonomy order.
        unverified_out: The file holding those withheld candidates (None when there are none).
        backup: Copy of ``out`` as it was before the run, made before a verified plan replaced
            an existing one (None when nothing was replaced).
    """

    out: Path
    seed: int
    types: tuple[TypeResult, ...]
    wall_s: float
    jobs: int
    kept: tuple[str, ...] = ()
    unverified_out: Path | None = None
    backup: Path | None = None

    @property
    def verified(self) -> int:
        """Types with a verified plan."""
        return sum(t.verified for t in self.types)


class _TypeProgress(Progress):
    """The benchmark's progress display, counting grasp types instead of trials."""

    def line(self, what: str = "") -> str:
        return super().line(what).replace(" trials  pass ", " types  verified ", 1).replace(" fail ", " not ", 1).replace(
            " trials/s ", " types/s ", 1)


def _successes_needed(trials: int) -> int:
    """Successes a plan needs on ``trials`` verification trials: the benchmark's achieved rule."""
    return max(1, math.ceil(SUCCESS_THRESHOLD * trials))


def verification_seeds(number: int, trials: int = DEFAULT_TRIALS) -> tuple[int, ...]:
    """The benchmark's own seeds of a type (``handsim bench``'s default base seed 0)."""
    return tuple(trial_seed(0, number, t) for t in range(trials))


def _entry(cand: Candidate, joint_names: Sequence[str], note: str) -> dict[str, Any]:
    return {
        "object_xyz": [float(v) for v in cand.object_xyz],
        "object_quat_wxyz": [float(v) for v in cand.object_quat_wxyz],
        "preshape": {j: float(v) for j, v in zip(joint_names, cand.preshape)},
        "close": {j: float(v) for j, v in zip(joint_names, cand.close)},
        "note": note,
    }


def _ranked(problem: GraspProblem, xs: np.ndarray, costs: np.ndarray, count: int, settings: SynthSettings) -> list[Candidate]:
    """Plans of the best distinct solutions, in the order they are verified: by cost, near-ties
    (within ``tie_m``) by Q1.

    With ``settings.closing_rank``, every restart's solution becomes a plan, and its scripted
    close is simulated on the fast FK (:func:`~handsim.synth.optimize.closing_check`). Plans whose close reaches every
    required group (no finger blocked, nothing forbidden touched) come first, and among them
    those whose end contacts can hold the protocol's push with the capped motors (motor-wrench
    margin >= 1); within each tier the order is by cost, near-ties (within ``tie_m``) by Q1.
    """
    pool = [plan_from_solution(problem, x, settings) for x in (xs if settings.closing_rank else xs[: max(count * 3, count)])]
    best = min(c.cost for c in pool)
    near = sorted((c for c in pool if c.cost <= best + settings.tie_m), key=lambda c: (-c.q1, c.cost))
    rest = sorted((c for c in pool if c.cost > best + settings.tie_m), key=lambda c: c.cost)
    ordered = near + rest
    if not settings.closing_rank:
        return ordered[:count]
    checks = [closing_check(problem, c) for c in ordered]
    tiers = [(0 if k.ok else 1) * 2 + (0 if k.margin >= 1.0 else 1) for k in checks]
    order = sorted(range(len(ordered)), key=lambda i: (tiers[i], i))
    return [dataclasses.replace(ordered[i], margin=checks[i].margin) for i in order][:count]


def _closing_model_fits(problem: GraspProblem) -> bool:
    """Whether the closing model suits the type: it closes the fingers by flexion with their
    spread joints held, which meets pads, tips and the palm; a required side contact (the
    object between two fingers' sides, or against the index's side) needs the spread joints
    to close, which the optimisation's candidates do."""
    return not any(name.endswith(".side") or ".side|" in name for name in problem.group_names)


def synthesize_type(
    hand_folder: str | Path,
    grasp_id: str,
    seed: int = 0,
    verify: int = DEFAULT_VERIFY,
    settings: SynthSettings = DEFAULT_SETTINGS,
    workdir: str | Path | None = None,
    closing: ClosingSettings | None = DEFAULT_CLOSING,
    refine: int = DEFAULT_REFINE,
    climb: RefineSettings = DEFAULT_REFINE_SETTINGS,
) -> TypeResult:
    """Synthesize and verify one grasp type's plan for a hand.

    Args:
        hand_folder: The hand folder.
        grasp_id: The grasp type.
        seed: The synthesis seed.
        verify: Candidates verified in physics (0: none; the best by cost and Q1 is kept).
        settings: Optimisation numbers.
        workdir: Scratch folder for the hand copies (default: a temporary folder).
        closing: The closing model's numbers (:func:`~handsim.synth.closing.sweep_candidates`);
            None: the optimisation alone.
        refine: Evaluations of the refine climb (:func:`handsim.synth.refine.refine_plan`) of
            the best settled candidate when none is verified (0: no climb; needs ``verify``).
        climb: The climb's numbers (its climb seeds per candidate among them).

    Returns:
        The :class:`TypeResult`.
    """
    start = time.perf_counter()
    grasp = default_taxonomy().get(grasp_id)
    hand = load_hand(hand_folder)
    tree = load_urdf(hand.urdf_path)
    problem = GraspProblem(hand, tree, HandSurface(hand, tree), grasp,
                           grasp.object.friction * DEFAULT_PROTOCOL.hand_lateral_friction)
    if not problem.feasible:
        return TypeResult(grasp.id, grasp.number, None, False, 0, 0, 0.0, math.inf, (problem.infeasible_reason,), 0,
                          time.perf_counter() - start)
    cands: list[Candidate] = []
    origin: list[str] = []
    if closing is not None and _closing_model_fits(problem):
        per_config = max(len(closing.presses_m), 1)
        cands = sweep_candidates(problem, np.random.default_rng(np.random.SeedSequence([seed, grasp.number, 1])), closing,
                                 count=max(math.ceil(verify / per_config), 1))
        origin = ["closing model"] * len(cands)
    per_margin = max(math.ceil(verify / (len(settings.squeezes) * len(settings.self_margins))), 1)
    pools: list[list[Candidate]] = []
    for margin in (settings.self_margins if not cands else ()):
        problem.self_margin = margin
        # The same stream for every margin: a margin's solutions do not depend on the others.
        xs, costs = optimize(problem, np.random.default_rng(np.random.SeedSequence([seed, grasp.number])), settings)
        # Each solution is tried with every squeeze: how hard the effort-capped motors press
        # decides whether the object stays put when the fixture lets go, and that is not
        # modelled by the optimisation.
        pools.append([plan_from_solution(problem, c.solution, dataclasses.replace(settings, squeeze_rad=sq))
                      for c in _ranked(problem, xs, costs, per_margin, settings) for sq in settings.squeezes])
    # The margins' solutions in turn (each with its squeezes), the best of each first.
    k = len(settings.squeezes)
    chunks = [[pool[i:i + k] for i in range(0, len(pool), k)] for pool in pools]
    optimised = [c for row in itertools.zip_longest(*chunks, fillvalue=[]) for chunk in row for c in chunk]
    cands += optimised
    origin += ["optimisation"] * len(optimised)
    if not cands:
        return TypeResult(grasp.id, grasp.number, None, False, 0, 0, 0.0, math.inf,
                          ("no candidate: every closing-model sample started inside the object",), 0,
                          time.perf_counter() - start)
    seeds = verification_seeds(grasp.number)
    needed = _successes_needed(len(seeds))
    results: list[tuple[int, Candidate, Verification]] = []
    restarts = closing.restarts if closing is not None and origin and origin[0] == "closing model" else 1
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="handsim-synth-"))
        batch = cands[:verify]
        tried: list[str] = []  # the origin of each verified candidate
        for restart in range(restarts):
            if restart:
                # A restart only where the screen says it pays: some earlier candidate formed
                # the signature and kept it through the release and settle (it then lost the
                # object under the pushes), so other placements of the same family may hold.
                if not any(v.settled for _, _, v in results) or not closing.restart_verify:
                    break
                rng = np.random.default_rng(np.random.SeedSequence([seed, grasp.number, 1, restart]))
                batch = sweep_candidates(problem, rng, closing, count=max(math.ceil(closing.restart_verify / per_config), 1))
                batch = batch[:closing.restart_verify]
            for k, cand in enumerate(batch):
                i = len(results)
                best_succ = max((v.successes for _, _, v in results if v.verifies(len(seeds), needed)), default=0)
                ver = verify_plan(hand.folder, grasp.id, grasp.number, _entry(cand, tree.joint_names, ""), seeds,
                                  workdir, f"{grasp.id}_{i}", needed=max(needed, best_succ), screen=True,
                                  neighbours=True)
                results.append((i, cand, ver))
                tried.append(origin[k] if not restart else f"closing model, restart {restart}")
                if ver.successes == len(seeds) and ver.verifies(len(seeds), needed):
                    break  # cannot be beaten on successes; Q1 ties are not worth more physics
            if any(v.verifies(len(seeds), needed) for _, _, v in results):
                break  # verified: the next restart's placements are not worth more physics
        settled = [r for r in results if r[2].settled]
        refine_note = ""  # what the climb did, for the note when its plan does not win
        if refine > 0 and settled and not any(v.verifies(len(seeds), needed) for _, _, v in results):
            # The best candidate that kept the signature through the settle and lost the
            # object only under the pushes: the kind the authors' margin climbs turned into holds.
            i0, c0, _ = max(settled, key=lambda r: (r[2].successes, r[2].q1, -r[1].cost))
            climb = refine_plan(hand.folder, grasp.id, _entry(c0, tree.joint_names, ""), refine, seed,
                                workdir=Path(workdir) / "refine", settings=climb)
            what = (f"{climb.evaluations} climb evaluations, {climb.accepted} accepted, "
                    f"climb score {climb.start_score:.2f} -> {climb.score:.2f}")
            if climb.changed:
                refined = dataclasses.replace(
                    c0,
                    object_xyz=np.asarray(climb.entry["object_xyz"], dtype=np.float64),
                    object_quat_wxyz=np.asarray(climb.entry["object_quat_wxyz"], dtype=np.float64),
                    close=np.array([climb.entry["close"][j] for j in tree.joint_names], dtype=np.float64),
                )
                best_succ = max((v.successes for _, _, v in results if v.verifies(len(seeds), needed)), default=0)
                ver = verify_plan(hand.folder, grasp.id, grasp.number, _entry(refined, tree.joint_names, ""), seeds,
                                  workdir, f"{grasp.id}_refined", needed=max(needed, best_succ), neighbours=True)
                results.append((len(results), refined, ver))
                tried.append(f"{tried[i0]}, refined ({what})")
                refine_note = f"refined candidate {i0} ({what}) verified {ver.successes}/{ver.trials}"
            else:
                refine_note = f"refine of candidate {i0} found nothing better ({what})"
        from handsim.bench.runner import close_worker_envs

        close_worker_envs()
    if results:
        idx, cand, ver = max(results, key=lambda r: (r[2].verifies(len(seeds), needed), r[2].successes, r[2].q1,
                                                     -r[1].cost))
        verified = ver.verifies(len(seeds), needed)
        successes, trials, q1, reasons = ver.successes, ver.trials, ver.q1, ver.reasons
    else:
        idx, cand, verified, successes, trials, q1, reasons = 0, cands[0], False, 0, 0, cands[0].q1, ("not verified in physics",)
    note = (f"synthesized, seed {seed}, verified {successes}/{trials}" if verified else
            f"synthesized, seed {seed}, verified: false ({successes}/{trials})")
    note += (f"; {tried[idx] if tried else origin[0]}; cost {cand.cost * 1e3:.2f} mm, synthesis Q1 {cand.q1:.3f}, "
             f"pre-shape clearance {cand.clearance_m * 1e3:.1f} mm")
    if refine_note and "refined (" not in (tried[idx] if tried else ""):
        note += "; " + refine_note
    if not verified:
        note += "; not verified: " + " | ".join(reasons)
    return TypeResult(grasp.id, grasp.number, _entry(cand, tree.joint_names, note), verified, successes, trials, q1,
                      cand.cost, tuple(reasons) if not verified else (), len(results), time.perf_counter() - start)


def retune_type(
    hand_folder: str | Path,
    grasp_id: str,
    entry: dict[str, Any] | None,
    seed: int = 0,
    refine: int = REFINE_BUDGET,
    workdir: str | Path | None = None,
    climb: RefineSettings = DEFAULT_REFINE_SETTINGS,
) -> TypeResult:
    """Re-tune a plan a hand already has: verify it on the benchmark's seeds, hill-climb it
    (:func:`handsim.synth.refine.refine_plan`, ``refine`` evaluations on the climb seeds) and
    verify the climbed plan.

    For a hand that changed under its plans (hand v6's joint armature left nine of v5's plans
    short of their signature or their hold, and others holding on the benchmark's seeds only):
    the climb starts from the author's plan, not from a new optimisation. The climb's first
    evaluation scores the plan on the climb seeds, which are not the benchmark's: a plan that
    holds there (mean graded score 6) is not climbed; a plan that verifies on the benchmark's
    seeds but holds no trial at a neighbouring solver count (:data:`NEIGHBOUR_ITERATIONS`) is
    climbed with its climb seeds scored at 150, 149 and 151 iterations in turn, on at least three
    climb seeds (:attr:`RefineSettings.solver_counts`, unless ``climb`` sets them). The note of a
    re-tuned plan says ``verified k/n`` or ``k/n, not verified`` (with the neighbouring count
    that had no success) for the climbed plan and the plan as it was. A climbed plan wins when it verifies on the
    benchmark's seeds with at least the successes the plan had there, so a plan that verified
    but held on the climb seeds only by luck is replaced by one that holds on both, never by one
    the benchmark rates lower.

    Args:
        hand_folder: The hand folder.
        grasp_id: The grasp type.
        entry: The plan to re-tune (``grasps.json`` entry format); None: no plan (nothing done).
        seed: The climb's seed.
        refine: Climb evaluations (0: the plan is only verified).
        workdir: Scratch folder for the hand copies (default: a temporary folder).
        climb: The climb's numbers (its climb seeds per candidate among them).

    Returns:
        The :class:`TypeResult`: the climbed plan when it wins (its note saying what the climb
        did and both verdicts); else the plan as it was (its entry unchanged) when it verifies,
        or the climbed plan, not verified, when neither does.
    """
    start = time.perf_counter()
    grasp = default_taxonomy().get(grasp_id)
    if entry is None:
        return TypeResult(grasp.id, grasp.number, None, False, 0, 0, 0.0, math.inf, ("no plan to re-tune",), 0,
                          time.perf_counter() - start)
    hand = load_hand(hand_folder)
    seeds = verification_seeds(grasp.number)
    needed = _successes_needed(len(seeds))
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="handsim-retune-"))
        ver = verify_plan(hand.folder, grasp.id, grasp.number, entry, seeds, workdir, f"{grasp.id}_as_is",
                          neighbours=True)
        plan, runs = dict(entry), 1
        if refine > 0:
            if _fragile(ver, len(seeds), needed) and not climb.solver_counts:
                # Scored at 150 alone, a plan that holds only there holds on the climb seeds
                # too, and the climb would stop before its first move. One climb seed per count
                # at least, so that each count is scored.
                climb = dataclasses.replace(climb, solver_counts=_CLIMB_COUNTS,
                                            climb_trials=max(climb.climb_trials, len(_CLIMB_COUNTS)))
            res = refine_plan(hand.folder, grasp.id, entry, refine, seed, workdir=Path(workdir) / "refine",
                              settings=climb)
            counts = ("" if not climb.solver_counts else
                      f" at {'/'.join(str(n) for n in climb.solver_counts)} solver iterations in turn")
            what = (f"{res.evaluations} climb evaluations on {climb.climb_trials} climb seeds{counts}, "
                    f"{res.accepted} accepted, climb score {res.start_score:.2f} -> {res.score:.2f}")
            if res.changed:
                new = verify_plan(hand.folder, grasp.id, grasp.number, res.entry, seeds, workdir, f"{grasp.id}_retuned",
                                  neighbours=True)
                runs += 1
                held = ver.verifies(len(seeds), needed)
                if (new.verifies(len(seeds), needed) and new.successes >= ver.successes) or not held:
                    note = str(entry.get("note", ""))
                    plan = {**res.entry, "note": (note + " " if note else "") +
                            f"[Re-tuned by handsim synth --retune, seed {seed}: {what}; "
                            f"{_verdict(new, len(seeds), needed)} (the plan as it was: "
                            f"{_verdict(ver, len(seeds), needed)}).]"}
                    ver = new
        from handsim.bench.runner import close_worker_envs

        close_worker_envs()
    verified = ver.verifies(len(seeds), needed)
    return TypeResult(grasp.id, grasp.number, plan, verified, ver.successes, ver.trials, ver.q1, math.inf,
                      () if verified else ver.reasons, runs, time.perf_counter() - start)


#: Solver counts a fragile plan's climb scores its climb seeds at, in turn: the protocol's and
#: the neighbouring ones the verification checks.
_CLIMB_COUNTS = (DEFAULT_PROTOCOL.solver_iterations, *NEIGHBOUR_ITERATIONS)


def _verdict(ver: Verification, seeds: int, needed: int) -> str:
    """A re-tune note's words for a verification: ``verified 3/3``, ``1/3, not verified``, or
    ``3/3, not verified (no success at 149 or 151 iterations)``."""
    if ver.verifies(seeds, needed):
        return f"verified {ver.successes}/{ver.trials}"
    missing = [str(n) for n, wins in ver.neighbours if wins == 0]
    why = f" (no success at {' or '.join(missing)} iterations)" if missing else ""
    return f"{ver.successes}/{ver.trials}, not verified{why}"


def _fragile(ver: Verification, seeds: int, needed: int) -> bool:
    """The plan verified at the protocol's solver count and failed only the neighbouring-count check."""
    return ver.trials == seeds and ver.successes >= needed and any(wins == 0 for _, wins in ver.neighbours)


def unverified_path(out: str | Path) -> Path:
    """Where synthesis puts unverified candidates it did not let replace a plan of ``out``:
    ``<out stem>.unverified.json`` next to it (``grasps.json`` -> ``grasps.unverified.json``)."""
    out = Path(out)
    return out.with_name(out.stem + ".unverified.json")


def _dump(path: Path, content: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)  # atomic: an interrupted run never leaves half a file


def _split(base: dict[str, Any], held: dict[str, Any], done: dict[str, TypeResult],
           order: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any], list[str], list[str]]:
    """The plans of ``out`` and of the unverified file after the finished types: a verified
    winner, or one for a type ``out`` has no plan for, goes into ``out`` (and leaves the
    unverified file); an unverified one for a type ``out`` has a plan for goes to the unverified
    file. Also returns the types kept and the existing plans replaced."""
    existing = base["grasps"]
    grasps, withheld = dict(existing), dict(held["grasps"])
    kept, replaced = [], []
    for gid in order:
        res = done.get(gid)
        if res is None or res.entry is None:
            continue
        if res.verified or gid not in existing:
            grasps[gid] = res.entry
            withheld.pop(gid, None)
            if gid in existing and res.entry != existing[gid]:
                replaced.append(gid)
        else:
            withheld[gid] = res.entry
            kept.append(gid)
    return grasps, withheld, kept, replaced


def _worker_init() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# (synthesize_type or retune_type, its positional arguments)
_Task = tuple[Callable[..., TypeResult], tuple[Any, ...]]


def _run_one(task: _Task) -> TypeResult:
    from handsim._io import quiet_stdout

    fn, args = task
    with quiet_stdout():
        return fn(*args)


def _execute(tasks: Sequence[_Task], jobs: int) -> Iterator[TypeResult]:
    if jobs == 1:
        for task in tasks:
            yield _run_one(task)
        return
    pool = multiprocessing.get_context().Pool(jobs, initializer=_worker_init)
    try:
        yield from pool.imap_unordered(_run_one, tasks, chunksize=1)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


def synthesize(
    hand: str | Path,
    out: str | Path,
    grasp_ids: Sequence[str] | None = None,
    *,
    seed: int = 0,
    jobs: int | None = None,
    verify: int = DEFAULT_VERIFY,
    settings: SynthSettings = DEFAULT_SETTINGS,
    closing: ClosingSettings | None = DEFAULT_CLOSING,
    refine: int | None = None,
    retune: bool = False,
    climb: RefineSettings = DEFAULT_REFINE_SETTINGS,
    progress: bool = True,
    stream: TextIO | None = None,
    on_type: Callable[[TypeResult], None] | None = None,
) -> SynthResults:
    """Synthesize every requested type's plan for a hand and write them to ``out``.

    Entries of ``out`` for other types (when it exists) are kept; each finished type's entry
    is written at once (atomically), so an interrupted run keeps what it finished. A plan
    ``out`` already holds is replaced only by a verified one: an unverified winner for such a
    type goes to :func:`unverified_path` instead (``SynthResults.kept`` lists those types), and
    ``out`` as it was is copied to ``<out>.bak`` (or the next free ``<out>.bak.N``) before a
    verified winner replaces a plan.

    Args:
        hand: A shipped hand's name or a hand folder.
        out: The grasps file to write.
        grasp_ids: Types to synthesize (default all 33), any order; run in taxonomy order.
        seed: The synthesis seed.
        jobs: Worker processes (default ``os.cpu_count()``).
        verify: Candidates per type verified in physics.
        settings: Optimisation numbers.
        closing: The closing model's numbers (None: the optimisation alone).
        refine: Refine-climb evaluations per type left unverified with a settled candidate
            (0: no refine stage); with ``retune``, per plan. None: :data:`DEFAULT_REFINE`
            (synthesis), :data:`REFINE_BUDGET` (``retune``).
        retune: Instead of synthesizing, re-tune the plans the hand already has
            (:func:`retune_type`): each type's plan in ``out``, or else in the hand's own
            ``grasps.json``, is verified and, when it fails, climbed (``refine`` evaluations);
            the writing rules are the same (a plan that verifies as it is stays untouched).
        climb: The refine climb's numbers (:class:`~handsim.synth.refine.RefineSettings`).
        progress: Show a progress bar on ``stream`` (default stderr).
        stream: Where the progress bar goes.
        on_type: Called in this process after each type finishes.

    Returns:
        The :class:`SynthResults`.

    Raises:
        HandsimError: Unknown hand or grasp id (before any work).
        ConfigurationError: A negative ``refine``; ``verify > 0`` on a hand with a joint without finite limits
            (continuous): the benchmark's trial cannot run it (before any work).
        GraspDataError: An existing ``out`` (or its unverified file) that is not a grasps file
            this hand can load (before any work); the message names the file.
    """
    start = time.perf_counter()
    if refine is None:
        refine = REFINE_BUDGET if retune else DEFAULT_REFINE
    if refine < 0:
        raise ConfigurationError(f"synth: refine: expected 0 (off) or more climb evaluations per type, got {refine}")
    hand_obj = load_hand(hand)
    unlimited = [j for j, lim in hand_obj.joint_limits.items() if not (math.isfinite(lim.lower) and math.isfinite(lim.upper))]
    if verify > 0 and unlimited:
        # The benchmark's env maps its [-1, 1] actions onto the joint limits (action_mode
        # 'absolute'), so the trial that verifies a plan cannot run such a hand: say so now,
        # not after the optimisation.
        raise ConfigurationError(
            f"synth: verify {verify}: joints {unlimited} of hand {hand_obj.name!r} have no finite limits "
            "(continuous), and the benchmark's trial that verifies plans needs finite limits (action_mode "
            "'absolute'); expected verify 0 (--verify 0: plans written unverified, those joints searched over "
            "one turn about their rest angle) or limits on those joints")
    taxonomy = default_taxonomy()
    grasps: list[GraspType] = sorted({taxonomy.get(g).id: taxonomy.get(g) for g in (grasp_ids or taxonomy.ids())}.values(),
                                     key=lambda g: g.number)
    out_path = Path(out)
    side_path = unverified_path(out_path)
    # Validated against the hand before any work: a malformed or foreign file is never
    # overwritten (its content would be lost), and what is written stays loadable.
    base = read_grasp_file(out_path, hand_obj)
    held = read_grasp_file(side_path, hand_obj)
    original = out_path.read_bytes() if out_path.is_file() else None
    backup: Path | None = None
    order = [g.id for g in grasps]
    tasks: list[_Task]
    if retune:
        own = read_grasp_file(hand_obj.folder / "grasps.json", hand_obj)["grasps"]
        tasks = [(retune_type, (str(hand_obj.folder), g.id, base["grasps"].get(g.id, own.get(g.id)), int(seed),
                                int(refine), None, climb)) for g in grasps]
    else:
        tasks = [(synthesize_type, (str(hand_obj.folder), g.id, int(seed), int(verify), settings, None, closing,
                                    int(refine), climb)) for g in grasps]
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(tasks)))
    bar = _TypeProgress(len(tasks), stream=stream, enabled=progress, label="synth")
    done: dict[str, TypeResult] = {}
    try:
        for res in _execute(tasks, jobs):
            done[res.grasp_id] = res
            plans, withheld, _, replaced = _split(base, held, done, order)
            if replaced and backup is None and original is not None:
                backup = free_backup_path(out_path)
                backup.write_bytes(original)
            if withheld != held["grasps"]:
                _dump(side_path, {**held, "grasps": withheld})
            _dump(out_path, {**base, "grasps": plans})
            if on_type is not None:
                on_type(res)
            bar.update(res.verified, f"{res.number:02d} {res.grasp_id} {res.successes}/{res.trials}")
    except KeyboardInterrupt:
        bar.close()
        raise
    types = tuple(done[g] for g in order if g in done)
    _, _, kept, _ = _split(base, held, done, order)
    return SynthResults(out=out_path, seed=seed, types=types, wall_s=time.perf_counter() - start, jobs=jobs,
                        kept=tuple(kept), unverified_out=side_path if kept else None, backup=backup)
