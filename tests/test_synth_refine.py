"""Tests of the refine stage of ``handsim synth`` (:mod:`handsim.synth.refine`): the graded trial
score against hand-built trial records, the climb's determinism, its pre-shape rule against
PyBullet's own closest points, its score re-measured by fresh benchmark trials, and
``--refine 0`` leaving synthesis exactly as it was."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from handsim.data import hand_dir
from handsim.grasps import default_taxonomy
from handsim.tolerances import DEFAULT_PROTOCOL

# A shipped plan the benchmark fails quickly (the object turns under the first pushes), so a
# climb of a few evaluations stays cheap. Read from the shipped hand: data, not numbers here.
_TYPE = "tip_pinch"


def _shipped_plan(grasp_id: str = _TYPE) -> dict[str, Any]:
    raw = json.loads((hand_dir("default_hand") / "grasps.json").read_text(encoding="utf-8"))
    return raw["grasps"][grasp_id]


def _record(held: dict[str, bool | None], moved_m: dict[str, float], turned_deg: dict[str, float], steps: int,
            reasons: list[str], success: bool, dist_reason: str = "") -> dict[str, Any]:
    directions = list(DEFAULT_PROTOCOL.directions)
    failed = next((d for d in directions if held.get(d) is False), None)
    return {
        "success": success,
        "failure_reasons": reasons,
        "disturbance": {
            "directions": directions,
            "held_per_direction": {d: held.get(d) for d in directions},
            "max_translation_m": {d: moved_m.get(d) for d in directions},
            "max_rotation_deg": {d: turned_deg.get(d) for d in directions},
            "failed_direction": failed,
            "reason": dist_reason,
            "steps": steps,
        },
    }


def test_graded_score_of_hand_built_trial_records() -> None:
    from handsim.synth.verify import GRADED_NOT_PUSHED, GRADED_PER_REASON, graded_score

    p = DEFAULT_PROTOCOL
    dirs = list(p.directions)
    n = p.steps(p.direction_duration_s)
    assert len(dirs) == 6
    # Held everywhere without moving: 6 directions + a full margin.
    still = _record({d: True for d in dirs}, {d: 0.0 for d in dirs}, {d: 0.0 for d in dirs}, 6 * n, [], True)
    assert graded_score(still) == pytest.approx(7.0)
    # Two directions held, one moving half the translation limit, the other turning a quarter
    # of the rotation limit; the third lost a quarter of the way through its push:
    # 2 + 0.25 + (0.5 + 0.75) / 6.
    d0, d1, d2 = dirs[:3]
    lost = _record({d0: True, d1: True, d2: False}, {d0: 0.5 * p.max_translation_m, d1: 0.0, d2: 0.03},
                   {d0: 0.0, d1: 0.25 * p.max_rotation_deg, d2: 1.0}, 2 * n + n // 4, ["slipped"], False, "slipped")
    assert graded_score(lost) == pytest.approx(2 + (n // 4) / n + (0.5 + 0.75) / 6)
    # The same pushes with a signature group missing too: one other reason.
    missing = dict(lost, failure_reasons=["required thumb.distal.pad not in contact", "slipped"])
    assert graded_score(missing) == pytest.approx(graded_score(lost) - GRADED_PER_REASON)
    # Knocked away during the grasp: no disturbance ran.
    assert graded_score({"success": False, "failure_reasons": ["knocked"], "disturbance": None}) == GRADED_NOT_PUSHED
    # Held but moved past the limits in no direction and exactly at them in one: margin 0 there.
    edge = _record({d: True for d in dirs}, {d: (p.max_translation_m if d == d0 else 0.0) for d in dirs},
                   {d: 0.0 for d in dirs}, 6 * n, [], True)
    assert graded_score(edge) == pytest.approx(6 + 5 / 6)


def test_climb_seeds_are_not_the_benchmarks() -> None:
    from handsim.bench.config import trial_seed
    from handsim.synth.refine import climb_seeds
    from handsim.synth.synthesize import verification_seeds

    for grasp in default_taxonomy():
        climb = set(climb_seeds(grasp.number, 3))
        assert len(climb) == 3
        held_out = {trial_seed(base, grasp.number, t) for base in range(10) for t in range(3)}
        assert not climb & set(verification_seeds(grasp.number))
        assert not climb & held_out


def test_bad_settings_and_budget_are_refused(tmp_path) -> None:
    from handsim.errors import ConfigurationError
    from handsim.synth.refine import RefineSettings, refine_plan

    with pytest.raises(ConfigurationError, match="climb_trials"):
        RefineSettings(climb_trials=0)
    with pytest.raises(ConfigurationError, match="move_odds"):
        RefineSettings(move_odds=(0.0, 0.0, 0.0, 0.0, 0.0))
    with pytest.raises(ConfigurationError, match="budget"):
        refine_plan(hand_dir("default_hand"), _TYPE, _shipped_plan(), -1, workdir=tmp_path)
    from handsim.synth.synthesize import synthesize

    with pytest.raises(ConfigurationError, match="refine"):
        synthesize("default_hand", tmp_path / "g.json", [_TYPE], refine=-1, jobs=1, progress=False)
    assert not (tmp_path / "g.json").exists()  # refused before any work


def _rerun_graded(plan: dict[str, Any], seeds: tuple[int, ...], tmp_path: Path, name: str) -> float:
    """The plan's trials re-run from scratch with the benchmark's runner on a hand copy."""
    from handsim.bench.config import DEFAULT_ENV_ID, DEFAULT_POLICY
    from handsim.bench.runner import TrialTask, close_worker_envs, run_trial
    from handsim.synth.verify import graded_score

    folder = tmp_path / name
    shutil.copytree(hand_dir("default_hand"), folder, ignore=shutil.ignore_patterns("*.png"))
    raw = json.loads((folder / "grasps.json").read_text(encoding="utf-8"))
    raw["grasps"][_TYPE] = plan
    (folder / "grasps.json").write_text(json.dumps(raw), encoding="utf-8")
    number = default_taxonomy().get(_TYPE).number
    records = []
    for t, seed in enumerate(seeds):
        # push_failed as verify_plan runs it: the graded score counts a failed grasp's pushes
        task = TrialTask(env_id=DEFAULT_ENV_ID, env_kwargs=(("push_failed", True),), hand=str(folder),
                         policy=DEFAULT_POLICY, grasp_id=_TYPE, number=number, trial=t, seed=seed, render=False)
        records.append(run_trial(task)[0])
    close_worker_envs()
    return float(np.mean([graded_score(r) for r in records]))


@pytest.mark.slow
def test_climb_is_deterministic_and_keeps_or_improves_the_real_trials_score(tmp_path) -> None:
    from handsim.synth.refine import climb_seeds, refine_plan

    start = _shipped_plan()
    a = refine_plan(hand_dir("default_hand"), _TYPE, start, 5, seed=1, workdir=tmp_path / "a")
    b = refine_plan(hand_dir("default_hand"), _TYPE, start, 5, seed=1, workdir=tmp_path / "b")
    assert a == b  # the same plan, scores and counts, to the last bit
    assert a.evaluations <= 5 and a.trials <= 2 * a.evaluations
    assert a.score >= a.start_score
    # Fresh trials of the returned and the starting plan (new worlds, the runner's own trial):
    # the climb's numbers are what the benchmark's trial measures.
    seeds = climb_seeds(default_taxonomy().get(_TYPE).number)
    got = _rerun_graded(a.entry, seeds, tmp_path, "got")
    was = _rerun_graded(start, seeds, tmp_path, "was")
    assert got == pytest.approx(a.score, abs=1e-9)
    assert was == pytest.approx(a.start_score, abs=1e-9)
    assert got >= was
    # Only the close targets and the object pose are touched.
    assert a.entry["preshape"] == start["preshape"]
    names = set(start["close"])
    assert set(a.entry["close"]) == names


@pytest.mark.slow
def test_a_plan_naming_only_the_joints_it_moves_climbs_as_its_spelled_out_form(tmp_path) -> None:
    """Hand-authored plans may leave joints out (``grasp_data``: a joint missing from the
    pre-shape takes the rest pose, one missing from the close keeps its pre-shape). The climb
    spells them out as the episode reads them: a partial shipped plan and the same plan with
    every joint written climb identically, and the result names every actuated joint."""
    from handsim.grasp_data import load_plans_of
    from handsim.hand import load_hand
    from handsim.kinematics import load_urdf
    from handsim.synth.refine import refine_plan

    gid = "fixed_hook"  # fails within 0.04 s of pushing: cheap trials
    start = _shipped_plan(gid)
    hand = load_hand("default_hand")
    names = load_urdf(hand.urdf_path).joint_names
    assert set(start["close"]) < set(names)  # the shipped plan is partial (else pick another)
    plan = load_plans_of(hand)[gid]
    full = {**start, "preshape": dict(zip(names, map(float, plan.preshape))),
            "close": dict(zip(names, map(float, plan.close)))}
    a = refine_plan(hand.folder, gid, start, 2, seed=3, workdir=tmp_path / "a")
    b = refine_plan(hand.folder, gid, full, 2, seed=3, workdir=tmp_path / "b")
    assert a == b
    assert set(a.entry["close"]) == set(a.entry["preshape"]) == set(names)


def _overlap(plan: dict[str, Any], folder: Path) -> float:
    """Deepest hand-object overlap at the plan's un-jittered placement [m], from PyBullet's own
    closest points between the two bodies after the episode's reset."""
    from handsim.episode import EpisodeSettings, GraspEpisode

    if not folder.exists():
        shutil.copytree(hand_dir("default_hand"), folder, ignore=shutil.ignore_patterns("*.png"))
    raw = json.loads((folder / "grasps.json").read_text(encoding="utf-8"))
    raw["grasps"][_TYPE] = plan
    (folder / "grasps.json").write_text(json.dumps(raw), encoding="utf-8")
    ep = GraspEpisode(folder, settings=EpisodeSettings(jitter_m=0.0, jitter_deg=0.0), visuals=False)
    try:
        ep.reset(default_taxonomy().get(_TYPE), np.random.default_rng(0))
        rows = ep.world.client.getClosestPoints(bodyA=ep.body.body_id, bodyB=ep.obj.body_id, distance=0.05)
        return max(0.0, -min((r[8] for r in rows), default=math.inf))
    finally:
        ep.close()


@pytest.mark.slow
def test_climb_never_returns_a_plan_whose_preshape_overlaps_the_object_more(tmp_path) -> None:
    """The object is first brought to within half a millimetre of the hand (along the line to a
    point inside the palm, by bisection on PyBullet's closest points); object moves of a few
    millimetres towards the hand are then dropped (seed 1 drops at least one; plateau moves
    away from the hand are accepted, so not every seed does). What comes back overlaps no more
    than the start."""
    from handsim.synth.refine import RefineSettings, refine_plan

    shipped = _shipped_plan()
    folder = tmp_path / "probe"

    xyz = np.asarray(shipped["object_xyz"], dtype=float)
    palm = np.array([0.05, 0.0, 0.0])  # inside the palm link of the default hand
    length = float(np.linalg.norm(palm - xyz))

    def moved(d: float) -> dict[str, Any]:  # d [m] along the line towards the palm point
        return dict(shipped, object_xyz=[float(v) for v in xyz + d / length * (palm - xyz)])

    assert _overlap(moved(0.0), folder) == 0.0
    free, inside = 0.0, length
    assert _overlap(moved(inside), folder) > 0.0
    while inside - free > 2e-4:
        mid = 0.5 * (free + inside)
        free, inside = (mid, inside) if _overlap(moved(mid), folder) == 0.0 else (free, mid)
    start = moved(max(free - 5e-4, 0.0))
    settings = RefineSettings(xyz_sd_m=0.003, move_odds=(0.0, 0.0, 0.0, 1.0, 0.0))
    res = refine_plan(hand_dir("default_hand"), _TYPE, start, 8, seed=1, workdir=tmp_path / "w", settings=settings)
    assert res.rejected_overlap >= 1
    assert _overlap(res.entry, folder) <= _overlap(start, folder) + 1e-4


@pytest.mark.slow
def test_refine_zero_never_runs_the_stage_and_an_idle_climb_leaves_the_plan(tmp_path, monkeypatch) -> None:
    """``refine=0``: the climb is never called and the plan is synthesis's own; a climb that
    finds nothing better (stubbed: no physics) leaves the same plan, its note saying so. (Sphere
    4 finger: on hand v6 its seed-0 candidate keeps the signature through the settle and is not
    verified; power sphere's, used before v6, no longer keeps it and the test skipped.)"""
    import handsim.synth.synthesize as synth_mod
    from handsim.synth.closing import ClosingSettings
    from handsim.synth.refine import RefineResult

    calls: list[tuple[Any, ...]] = []

    def never(*args: Any, **kwargs: Any) -> RefineResult:
        raise AssertionError("refine_plan called with refine=0")

    def idle(hand_folder: Any, grasp_id: str, entry: dict[str, Any], budget: int, seed: int = 0, **kw: Any) -> RefineResult:
        calls.append((grasp_id, budget, seed))
        return RefineResult(entry=dict(entry), start_score=1.0, score=1.0, evaluations=budget, accepted=0,
                            trials=2 * budget, rejected_overlap=0)

    kwargs = {"seed": 0, "verify": 2, "closing": ClosingSettings(restarts=1)}
    monkeypatch.setattr(synth_mod, "refine_plan", never)
    off = synth_mod.synthesize_type(hand_dir("default_hand"), "sphere_4_finger", refine=0, **kwargs)
    monkeypatch.setattr(synth_mod, "refine_plan", idle)
    on = synth_mod.synthesize_type(hand_dir("default_hand"), "sphere_4_finger", refine=7, **kwargs)
    assert not off.verified and not on.verified
    if not calls:
        pytest.skip("no candidate kept the signature through the settle: the stage had nothing to refine")
    assert calls == [("sphere_4_finger", 7, 0)]
    strip = {k: v for k, v in off.entry.items() if k != "note"}
    assert strip == {k: v for k, v in on.entry.items() if k != "note"}
    assert "refine" not in off.entry["note"]
    assert "found nothing better (7 climb evaluations" in on.entry["note"]
    assert dataclasses.replace(off, wall_s=0.0, entry=None) == dataclasses.replace(on, wall_s=0.0, entry=None)


def test_cli_threads_refine_with_its_default(monkeypatch, tmp_path, capsys) -> None:
    import argparse

    import handsim.synth.synthesize as synth_mod
    from handsim.synth.cli import add_synth, run_synth_command

    seen: list[int] = []
    retunes: list[bool] = []

    climbs: list[int] = []
    counts: list[tuple[int, ...]] = []

    def fake(*args: Any, refine: int | None = -1, retune: bool = False, **kwargs: Any) -> Any:
        if refine is None:  # synthesize's own default for the mode
            refine = synth_mod.REFINE_BUDGET if retune else synth_mod.DEFAULT_REFINE
        seen.append(refine)
        retunes.append(retune)
        climbs.append(kwargs["climb"].climb_trials)
        counts.append(kwargs["climb"].solver_counts)
        return synth_mod.SynthResults(out=tmp_path / "g.json", seed=0, types=(), wall_s=0.0, jobs=1)

    monkeypatch.setattr(synth_mod, "synthesize", fake)
    parser = argparse.ArgumentParser()
    add_synth(parser.add_subparsers())
    for argv, expected in ((["synth", "--hand", "default_hand", "--out", str(tmp_path / "g.json")], synth_mod.DEFAULT_REFINE),
                           (["synth", "--hand", "default_hand", "--out", str(tmp_path / "g.json"), "--refine", "0"], 0),
                           (["synth", "--hand", "default_hand", "--out", str(tmp_path / "g.json"), "--refine", "5"], 5)):
        args = parser.parse_args(argv)
        assert run_synth_command(args) == 0
        assert seen[-1] == expected and retunes[-1] is False
    # --retune climbs by default (REFINE_BUDGET evaluations); --refine still sets the budget.
    for extra, expected in (([], synth_mod.REFINE_BUDGET), (["--refine", "0"], 0), (["--refine", "9"], 9)):
        args = parser.parse_args(["synth", "--hand", "default_hand", "--out", str(tmp_path / "g.json"), "--retune", *extra])
        assert run_synth_command(args) == 0
        assert seen[-1] == expected and retunes[-1] is True
    assert set(climbs) == {synth_mod.DEFAULT_REFINE_SETTINGS.climb_trials}
    args = parser.parse_args(["synth", "--hand", "default_hand", "--out", str(tmp_path / "g.json"), "--climb-trials", "4"])
    assert run_synth_command(args) == 0 and climbs[-1] == 4
    assert set(counts) == {()}  # the protocol's count unless asked
    args = parser.parse_args(["synth", "--hand", "default_hand", "--out", str(tmp_path / "g.json"),
                              "--climb-counts", "150, 149,151", "--climb-trials", "3"])
    assert run_synth_command(args) == 0 and counts[-1] == (150, 149, 151)
    from handsim.errors import ConfigurationError

    args = parser.parse_args(["synth", "--hand", "default_hand", "--out", str(tmp_path / "g.json"),
                              "--climb-counts", "150,149,151"])
    with pytest.raises(ConfigurationError, match=r"^--climb-counts 150,149,151: 3 counts but --climb-trials 2; "
                                                 r"expected at most one count per climb seed \(give --climb-trials 3"):
        run_synth_command(args)
    for bad in ("0", "150,,151", "", "150,x"):
        with pytest.raises(SystemExit):
            parser.parse_args(["synth", "--hand", "default_hand", "--climb-counts", bad])
    assert "expected comma-separated whole numbers >= 1, got '150,,151'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["synth", "--hand", "default_hand", "--climb-trials", "0"])
    with pytest.raises(SystemExit):
        parser.parse_args(["synth", "--hand", "default_hand", "--refine", "-1"])


@pytest.mark.slow
def test_refined_file_does_not_depend_on_jobs(tmp_path) -> None:
    """Two types whose few candidates are not verified, at least one of which settles and is
    climbed: the same file with one worker and with two (each climb's stream and trials are
    its own). Hand v4/v5: prismatic 3 finger and power sphere, both climbed. Hand v6 (these
    settings, seed 0): power sphere's candidate loses palm.pad in the settle, so no climb; of
    ten types tried only sphere 4 finger is climbed (1/3, refined); prismatic 3 finger kept,
    not climbed (its best candidate does not settle)."""
    from handsim.synth.closing import ClosingSettings
    from handsim.synth.synthesize import synthesize

    small = {"seed": 0, "verify": 2, "closing": ClosingSettings(restarts=1), "refine": 3, "progress": False}
    ids = ["prismatic_3_finger", "sphere_4_finger"]
    a = synthesize("default_hand", tmp_path / "a.json", ids, jobs=1, **small)
    synthesize("default_hand", tmp_path / "b.json", ids, jobs=2, **small)
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    notes = [json.loads((tmp_path / "a.json").read_text())["grasps"][g]["note"] for g in ids]
    assert sum("refine" in n for n in notes) >= 1, notes
    assert [t.grasp_id for t in a.types] == ids
