"""The benchmark machinery (handsim.bench) against a small fake env that follows the
``handsim/Grasp-v0`` contract and whose outcomes are known in closed form.

The fake env decides a trial from the first uniform draw ``u`` of its ``np_random`` after
``reset(seed)`` (gymnasium's own seeding, not handsim code): grasp numbers divisible by 3
always succeed, numbers = 1 (mod 3) succeed when ``u < 0.5``, the rest never do. So every
aggregate in ``results.json`` can be checked against numbers computed here from the recorded
seeds. One slow test runs the real env.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import os
import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import pytest
from gymnasium.utils import seeding
from PIL import Image

from handsim.bench import (
    BenchConfig,
    BenchInterrupted,
    compare_results,
    load_results,
    run_bench,
    strip_timing,
    write_json_atomic,
    write_outputs,
)
from handsim.bench.pictures import (
    LABEL_HEIGHT_PX,
    contact_sheet,
    coverage_chart,
    frame_note,
)
from handsim.bench.report import junit_xml, report_markdown
from handsim.bench.results import aggregate, wilson_interval
from handsim.data import hand_dir
from handsim.errors import ConfigurationError, ResultsError
from handsim.grasps import default_taxonomy
from handsim.tolerances import Protocol

FAKE_ID = "handsim_test/FakeGrasp-v0"
#: What the benchmark is told: gymnasium imports this module (which registers the env) first.
FAKE_ENV = f"test_bench:{FAKE_ID}"
FAKE_POLICY = "test_bench:fake_policy"
FRAME_SHAPE = (48, 64, 3)
# A few grasp numbers covering the three outcome rules (0, 1, 2 mod 3).
GRASPS = ("large_diameter", "small_diameter", "medium_wrap", "adducted_thumb")  # 1, 2, 3, 4


def fake_rule(number: int, u: float) -> bool:
    """The fake env's outcome rule (see the module docstring)."""
    return number % 3 == 0 or (number % 3 == 1 and u < 0.5)


def first_uniform(seed: int) -> float:
    """The first uniform draw of a gymnasium env's np_random after reset(seed=seed)."""
    rng, _ = seeding.np_random(seed)
    return float(rng.uniform())


def frame_colour(number: int) -> tuple[int, int, int]:
    return (number * 7 % 256, 100, 200)


class FakeGraspEnv(gymnasium.Env):
    """Three steps, then termination with an ``info["episode"]`` decided by ``fake_rule``."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 25}

    def __init__(self, grasp: str, hand: str = "default_hand", render_mode: str | None = None, evaluate: bool = True,
                 q1: float | None = None, penetration: float | None = None, soft: bool = True,
                 protocol: Any = None):
        self.grasp = default_taxonomy().get(grasp)
        self.q1_override, self.penetration_override, self.soft = q1, penetration, soft
        hand_dir(hand)  # unknown hands fail at construction, like the real env
        self.render_mode = render_mode
        self.observation_space = gymnasium.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.t = 0
        self.u = 0.0
        self.step_sleep_s = float(os.environ.get("HANDSIM_FAKE_STEP_S", "0"))

    def reset(self, *, seed: int | None = None, options: Any = None):
        super().reset(seed=seed)
        self.t = 0
        self.u = float(self.np_random.uniform())
        return np.zeros(2, np.float32), {"grasp_id": self.grasp.id}

    def step(self, action):
        if not np.all(np.isfinite(action)):  # the contract: NaN actions are bad input
            raise ConfigurationError(f"action: expected finite numbers, got {np.asarray(action).tolist()}")
        self.t += 1
        if self.step_sleep_s:
            time.sleep(self.step_sleep_s)
        obs = np.full(2, self.t / 10, np.float32)
        if self.t < 3:
            return obs, 0.0, False, False, {"is_success": False}
        ok = fake_rule(self.grasp.number, self.u)
        regions = ["palm.pad"] + (["index.distal.pad"] if self.u < 0.5 else []) + (["thumb.distal.tip"] if self.u > 0.8 else [])
        reasons = [] if ok else [f"fake failure of {self.grasp.id}", "second reason"]
        episode = {
            "grasp_id": self.grasp.id, "achieved": ok, "held": ok, "evaluated": True, "signature_matched": ok,
            "thumb_abducted": True, "q1": self.u if ok else 0.0, "q1_soft": 1.5 * self.u if ok else 0.0,
            "num_contacts": 3, "total_normal_force_n": 1.0,
            "max_penetration_m": self.u * 1e-3, "contact_regions": regions, "failure_reasons": reasons,
            "disturbance": {"held": ok, "max_translation_m": np.float64(0.001)},
        }
        if self.q1_override is not None:
            episode["q1"] = self.q1_override
        if self.penetration_override is not None:
            episode["max_penetration_m"] = self.penetration_override
        if not self.soft:
            del episode["q1_soft"]
        info = {"is_success": ok, "failure_reason": "; ".join(reasons), "episode": episode}
        return obs, float(ok), True, False, info

    def render(self):
        return np.full(FRAME_SHAPE, frame_colour(self.grasp.number), np.uint8)


#: The fake env reporting a NaN Q1 / an infinite penetration at the end of every episode.
NAN_Q1_ID = "handsim_test/FakeNanQ1-v0"
INF_PENETRATION_ID = "handsim_test/FakeInfPenetration-v0"
#: The fake env without ``q1_soft`` in its episode summary (another env than handsim's).
NO_SOFT_ID = "handsim_test/FakeNoSoftQ1-v0"

if FAKE_ID not in gymnasium.registry:
    gymnasium.register(FAKE_ID, entry_point=FakeGraspEnv)
    gymnasium.register(NAN_Q1_ID, entry_point=functools.partial(FakeGraspEnv, q1=float("nan")))
    gymnasium.register(INF_PENETRATION_ID, entry_point=functools.partial(FakeGraspEnv, penetration=float("inf")))
    gymnasium.register(NO_SOFT_ID, entry_point=functools.partial(FakeGraspEnv, soft=False))


def fake_policy(env: Any):
    """Policy factory: always the zero action."""
    return lambda obs: np.zeros(1, np.float32)


class _NanFromSecondEpisode:
    """Zero actions in its first episode, NaN from its second on (a policy bug found mid-run)."""

    def __init__(self, env: Any, fail: type[BaseException] | None = None) -> None:
        self.episodes = 0
        self.fail = fail

    def reset(self, info):
        self.episodes += 1

    def __call__(self, obs):
        if self.episodes > 1:
            if self.fail is not None:
                raise self.fail("policy bug in the second episode")
            return np.full(1, np.nan, np.float32)
        return np.zeros(1, np.float32)


def nan_second_policy(env: Any):
    """Policy factory: NaN actions from the second episode of each policy instance on."""
    return _NanFromSecondEpisode(env)


def nan_on_adducted_thumb_policy(env: Any):
    """Policy factory: NaN actions for the grasp adducted_thumb (4), zeros for the others."""
    bad = env.unwrapped.grasp.id == "adducted_thumb"
    return lambda obs: np.full(1, np.nan if bad else 0.0, np.float32)


def buggy_second_policy(env: Any):
    """Policy factory: raises ZeroDivisionError (not a HandsimError) in its second episode."""
    return _NanFromSecondEpisode(env, fail=ZeroDivisionError)


def raising_policy(env: Any):
    """Policy factory that fails."""
    raise RuntimeError("factory boom")


#: What each reset-protocol policy's ``reset`` received, by policy name (in this process).
RESET_CALLS: dict[str, list[tuple[str, ...]]] = {}


def _kinds(*args: Any) -> tuple[str, ...]:
    return tuple("obs" if isinstance(a, np.ndarray) else "info" if isinstance(a, dict) else repr(a) for a in args)


class _ResetRecorder:
    name = ""

    def __init__(self, env: Any) -> None:
        RESET_CALLS[self.name] = []

    def __call__(self, obs):
        return np.zeros(1, np.float32)


def _recorder(name: str, reset: Any) -> Any:
    cls = type(name, (_ResetRecorder,), {"name": name, "reset": reset})

    def factory(env: Any):
        return cls(env)

    return factory


def _log(name: str, *args: Any) -> None:
    RESET_CALLS[name].append(_kinds(*args))


reset_none = _recorder("reset_none", lambda self: _log("reset_none"))
reset_info = _recorder("reset_info", lambda self, info: _log("reset_info", info))
reset_obs = _recorder("reset_obs", lambda self, obs: _log("reset_obs", obs))
reset_unnamed = _recorder("reset_unnamed", lambda self, x: _log("reset_unnamed", x))
reset_two = _recorder("reset_two", lambda self, a, b: _log("reset_two", a, b))
reset_info_obs = _recorder("reset_info_obs", lambda self, info, obs: _log("reset_info_obs", info, obs))
reset_default = _recorder("reset_default", lambda self, info=None: _log("reset_default", info))
reset_varargs = _recorder("reset_varargs", lambda self, *args: _log("reset_varargs", *args))
reset_other_default = _recorder("reset_other_default", lambda self, verbose=False: _log("reset_other_default", verbose))
reset_kwonly = _recorder("reset_kwonly", lambda self, *, info: _log("reset_kwonly", info))
reset_kwonly_obs = _recorder("reset_kwonly_obs", lambda self, info, *, observation: _log("reset_kwonly_obs", info,
                                                                                       observation))
reset_kwargs = _recorder("reset_kwargs", lambda self, **kw: _log("reset_kwargs", kw["obs"], kw["info"]))


def fake_config(grasps=GRASPS, trials: int = 3, seed: int = 7) -> BenchConfig:
    return BenchConfig(hand=str(hand_dir("default_hand")), policy=FAKE_POLICY, grasp_ids=tuple(grasps),
                       trials=trials, seed=seed, env_id=FAKE_ENV)


def run(out: Path, jobs: int = 1, **kw: Any) -> Any:
    config = kw.pop("config", None) or fake_config()
    return run_bench(config, out, jobs=jobs, progress=False, **kw)


def raw(out: Path) -> dict[str, Any]:
    return json.loads((out / "results.json").read_text())


# ---------------------------------------------------------------------------------------------- schema


def test_results_json_schema_and_aggregates(tmp_path):
    run(tmp_path)
    data = raw(tmp_path)
    assert data["schema"] == 1 and data["complete"] is True
    assert set(data) >= {"hand", "policy", "config", "coverage", "grasps", "timing", "versions"}
    assert data["hand"]["name"] == "default_hand" and data["hand"]["dof"] > 0
    assert Path(data["hand"]["path"]).is_dir()
    cfg = data["config"]
    assert cfg["trials"] == 3 and cfg["seed"] == 7 and cfg["success_threshold"] == 0.5
    assert cfg["grasps"] == list(GRASPS)
    # every protocol threshold is recorded (the names of handsim.tolerances.Protocol)
    for key in ("max_translation_m", "max_rotation_deg", "max_penetration_m", "disturbance_factor", "directions"):
        assert key in cfg["protocol"]
    assert "control_hz" in cfg["episode"]
    assert data["timing"]["trials_run"] == 12 and data["timing"]["trials_per_s"] > 0

    seeds = set()
    achieved = 0
    for g in data["grasps"]:
        assert [t["trial"] for t in g["trial_results"]] == [0, 1, 2]
        outcomes = []
        for t in g["trial_results"]:
            seeds.add(t["seed"])
            u = first_uniform(t["seed"])
            expected = fake_rule(g["number"], u)
            assert t["success"] is expected
            assert t["failure_reasons"] == ([] if expected else [f"fake failure of {g['id']}", "second reason"])
            assert t["q1"] == pytest.approx(u if expected else 0.0)
            assert t["q1_soft"] == pytest.approx(1.5 * u if expected else 0.0)
            assert t["steps"] == 3
            outcomes.append(expected)
        us = [first_uniform(t["seed"]) for t in g["trial_results"]]
        assert g["trials"] == 3 and g["successes"] == sum(outcomes)
        assert g["success_rate"] == pytest.approx(sum(outcomes) / 3)
        assert g["achieved"] is (sum(outcomes) >= 2)
        assert g["q1"] == pytest.approx(np.mean([u if ok else 0.0 for u, ok in zip(us, outcomes)]))
        assert g["q1_soft"] == pytest.approx(np.mean([1.5 * u if ok else 0.0 for u, ok in zip(us, outcomes)]))
        assert g["max_penetration_m"] == pytest.approx(max(us) * 1e-3)
        per_trial = [sorted(t["contact_regions"]) for t in g["trial_results"]]
        assert g["contact_regions_per_trial"] == per_trial
        assert g["contact_regions"] == sorted(set().union(*map(set, per_trial)))
        assert len(g["failure_reasons"]) == 3
        achieved += g["achieved"]
    assert data["coverage"] == {"achieved": achieved, "total": len(GRASPS)}
    assert len(seeds) == 12, "every trial gets its own seed"
    # The rules guarantee: number 3 always achieved, number 2 never.
    by_num = {g["number"]: g for g in data["grasps"]}
    assert by_num[3]["achieved"] and by_num[3]["success_rate"] == 1.0
    assert not by_num[2]["achieved"] and by_num[2]["success_rate"] == 0.0


def test_results_file_written_after_every_trial(tmp_path):
    seen = []

    def check(task, record):
        data = raw(tmp_path)  # parses: never half-written
        seen.append(sum(len(g["trial_results"]) for g in data["grasps"]))
        assert data["complete"] is False or len(seen) == 12

    run(tmp_path, on_trial=check)
    assert seen == list(range(1, 13))
    assert not list(tmp_path.glob(".*tmp")), "no temporary files left behind"


def test_atomic_write_keeps_old_file_when_replace_fails(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    write_json_atomic(path, {"a": 1})

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("handsim.bench.results.os.replace", boom)
    with pytest.raises(OSError):
        write_json_atomic(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600


def test_load_results_errors(tmp_path):
    with pytest.raises(ResultsError, match="no such results file"):
        load_results(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ResultsError, match="not valid JSON"):
        load_results(bad)
    bad.write_text(json.dumps({"schema": 99, "hand": {}, "policy": "", "config": {}, "grasps": []}))
    with pytest.raises(ResultsError, match="schema"):
        load_results(bad)


def test_a_success_flag_that_contradicts_its_trial_record_is_refused(tmp_path, uninterrupted):
    # Review R16b #6: flipping "success" on failed trials raised the coverage of a results file.
    data = json.loads(json.dumps(uninterrupted))
    failed = next((g, t) for g in data["grasps"] for t in g["trial_results"] if not t["success"])
    failed[1]["success"] = True
    (tmp_path / "results.json").write_text(json.dumps(data))
    with pytest.raises(ResultsError, match=r"\.success': expected false for a trial with failure_reasons"):
        load_results(tmp_path)
    failed[1]["failure_reasons"] = []
    failed[1]["held"] = False
    (tmp_path / "results.json").write_text(json.dumps(data))
    with pytest.raises(ResultsError, match=r"\.success': expected false for a trial whose held is false"):
        load_results(tmp_path)
    failed[1]["success"] = False
    (tmp_path / "results.json").write_text(json.dumps(data))
    with pytest.raises(ResultsError, match=r"failure_reasons': expected at least one reason for a failed trial"):
        load_results(tmp_path)


@pytest.mark.parametrize(("field", "value", "expect"), [
    ("id", "nope", r"field 'grasps\[0\]\.id': expected a grasp id of the taxonomy"),
    ("number", 7, r"field 'grasps\[0\]\.number': expected \d+ \(the number of '\w+'\)"),
])
def test_a_results_file_naming_a_grasp_outside_the_taxonomy_is_refused(tmp_path, uninterrupted, field, value, expect):
    # Review R16 #11: `compare --from-results` dropped such a grasp from the matrix without a word.
    data = json.loads(json.dumps(uninterrupted))
    if field == "number" and data["grasps"][0]["number"] == value:
        value += 1
    data["grasps"][0][field] = value
    (tmp_path / "results.json").write_text(json.dumps(data))
    with pytest.raises(ResultsError, match=expect):
        load_results(tmp_path)


# ---------------------------------------------------------------------------------------------- resume, jobs


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("full")
    run(out)
    return raw(out)


def test_resume_from_partial_file_equals_uninterrupted_run(tmp_path, uninterrupted):
    partial = json.loads(json.dumps(uninterrupted))
    kept = 0
    for i, g in enumerate(partial["grasps"]):
        g["trial_results"] = g["trial_results"][:1] if i < 2 else []
        kept += len(g["trial_results"])
    partial["complete"] = False
    (tmp_path / "results.json").write_text(json.dumps(partial))
    ran = []
    run(tmp_path, resume=True, on_trial=lambda task, rec: ran.append((task.grasp_id, task.trial)))
    assert len(ran) == 12 - kept
    assert (GRASPS[0], 0) not in ran and (GRASPS[1], 0) not in ran
    assert strip_timing(raw(tmp_path)) == strip_timing(uninterrupted)


def interrupt_after(n: int):
    """An ``on_trial`` callback that presses Ctrl-C when the n-th trial has finished."""
    count = []

    def on_trial(task, record):
        count.append(1)
        if len(count) == n:
            raise KeyboardInterrupt

    return on_trial


def test_interrupt_keeps_finished_trials_and_resume_completes(tmp_path, uninterrupted):
    stop_after_three = interrupt_after(3)

    with pytest.raises(BenchInterrupted) as info:
        run(tmp_path, on_trial=stop_after_three)
    assert sum(g.trials for g in info.value.results.grasps) == 3
    saved = raw(tmp_path)
    assert saved["complete"] is False
    assert sum(len(g["trial_results"]) for g in saved["grasps"]) == 3
    run(tmp_path, resume=True)
    assert strip_timing(raw(tmp_path)) == strip_timing(uninterrupted)


def test_resume_with_another_config_is_a_clear_error(tmp_path, uninterrupted):
    (tmp_path / "results.json").write_text(json.dumps(uninterrupted))
    with pytest.raises(ResultsError, match=r"cannot --resume.*config\.trials 3 vs 2"):
        run(tmp_path, resume=True, config=fake_config(trials=2))
    with pytest.raises(ResultsError, match=r"config\.seed"):
        run(tmp_path, resume=True, config=fake_config(seed=8))


def test_a_protocol_in_env_kwargs_is_recorded_field_by_field_and_resumes(tmp_path):
    """A dataclass among the env keyword arguments (here a Protocol with another solver
    iteration count, as benchmarks/bench_solver.py passes) is written as its fields, not refused
    by the JSON writer, and the saved configuration matches the same config again on --resume."""
    protocol = Protocol(solver_iterations=151)
    config = dataclasses.replace(fake_config(grasps=("tripod",), trials=2), env_kwargs=(("protocol", protocol),))
    run(tmp_path, config=config)
    saved = raw(tmp_path)["config"]["env_kwargs"]["protocol"]
    assert saved["solver_iterations"] == 151
    assert saved["directions"] == list(protocol.directions)
    assert saved == json.loads(json.dumps(dataclasses.asdict(protocol)))
    run(tmp_path, resume=True, config=config)  # the same configuration: no "cannot --resume"


def sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_resume_refuses_changed_hand_files_and_accepts_files_without_their_hashes(tmp_path):
    """results.json records the hashes of the hand's URDF, hand.json and grasps.json; --resume
    refuses a hand whose plans changed, and a file saved before the hashes existed still resumes."""
    import shutil

    hand = tmp_path / "hand"
    shutil.copytree(hand_dir("default_hand"), hand)
    config = dataclasses.replace(fake_config(), hand=str(hand))
    out = tmp_path / "out"
    with pytest.raises(BenchInterrupted):
        run(out, config=config, on_trial=interrupt_after(3))
    saved = raw(out)
    assert saved["hand"]["sha256"] == {"urdf": sha256(hand / "hand.urdf"), "hand_json": sha256(hand / "hand.json"),
                                       "grasps_json": sha256(hand / "grasps.json")}
    # a results.json written before the hashes were recorded: resumed on name, path and DoF, with a
    # note, and it keeps no hashes (its saved trials were never checked against these files)
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "results.json").write_text(json.dumps({**saved, "hand": {k: v for k, v in saved["hand"].items()
                                                                       if k != "sha256"}}))
    note = io.StringIO()
    with pytest.raises(BenchInterrupted):
        run(legacy, config=config, resume=True, on_trial=interrupt_after(2), stream=note)
    assert sum(len(g["trial_results"]) for g in raw(legacy)["grasps"]) == 5 and "sha256" not in raw(legacy)["hand"]
    assert "predates hand.sha256" in note.getvalue()
    # plans changed since (e.g. by handsim synth): the saved trials ran other plans
    plans = json.loads((hand / "grasps.json").read_text())
    kept = (hand / "grasps.json").read_text()
    plans["grasps"].pop("lateral")
    (hand / "grasps.json").write_text(json.dumps(plans))
    with pytest.raises(ResultsError, match=r"cannot --resume.*the hand's grasps_json changed"):
        run(out, config=config, resume=True)
    (hand / "grasps.json").write_text(kept)
    assert run(out, config=config, resume=True).complete


def test_results_identical_for_one_and_two_jobs(tmp_path, uninterrupted):
    run(tmp_path, jobs=2)
    assert raw(tmp_path)["timing"]["jobs"] == 2
    assert strip_timing(raw(tmp_path)) == strip_timing(uninterrupted)


@pytest.mark.slow
def test_real_env_results_identical_for_one_and_two_jobs(tmp_path):
    """The real env and physics: trial outcomes do not depend on which worker ran them."""
    config = BenchConfig(hand=str(hand_dir("default_hand")), grasp_ids=("medium_wrap", "tip_pinch"), trials=2, seed=3)
    one = run_bench(config, tmp_path / "one", jobs=1, progress=False)
    two = run_bench(config, tmp_path / "two", jobs=2, progress=False)
    assert strip_timing(one.to_dict()) == strip_timing(two.to_dict())
    assert one.config["protocol"]["disturbance_factor"] == 10.0  # read from the env's episode


# ---------------------------------------------------------------------------------------------- outputs


def test_outputs_junit_report_and_contact_sheet(tmp_path):
    results = run(tmp_path)
    paths = write_outputs(results, tmp_path)

    root = ET.parse(paths["junit"]).getroot()
    cases = root.findall(".//testcase")
    assert [c.get("name") for c in cases] == [f"{g.number:02d}_{g.id}" for g in results.grasps]
    for case, g in zip(cases, results.grasps):
        failure = case.find("failure")
        assert (failure is None) == g.achieved
        if failure is not None:
            assert f"fake failure of {g.id}" in failure.get("message")
    assert int(root.find("testsuite").get("failures")) == sum(not g.achieved for g in results.grasps)

    report = paths["report"].read_text()
    assert f"coverage: {results.achieved}/4" in report
    assert "| 2 | Small Diameter | power | 0/3 (0.00) |" in report
    assert "fake failure of small_diameter" in report

    # 4 tiles of 240 x 180 in one row of 4, each with its label strip
    with Image.open(paths["contact_sheet"]) as img:
        assert img.format == "PNG"
        assert img.size == (4 * 240, 180 + LABEL_HEIGHT_PX)
        rgb = img.convert("RGB")
        for i, g in enumerate(results.grasps):
            x = i * 240
            assert rgb.getpixel((x + 120, 90)) == frame_colour(g.number)  # the env's frame
            strip = rgb.getpixel((x + 120, 180 + 1))
            assert (strip[1] > strip[0]) == g.achieved  # green PASS strip, red FAIL strip
    with Image.open(paths["coverage"]) as img:
        assert img.format == "PNG"


def test_contact_sheet_size_and_missing_frames(tmp_path):
    frame = tmp_path / "f.png"
    Image.fromarray(np.full((30, 40, 3), (10, 20, 30), np.uint8)).save(frame)
    tiles = [(f"{i} grasp", i % 2 == 0, frame if i != 3 else None) for i in range(7)]
    out = contact_sheet(tiles, tmp_path / "sheet.png", tile_size=(80, 60), columns=3)
    with Image.open(out) as img:
        assert img.size == (3 * 80, 3 * (60 + LABEL_HEIGHT_PX))
        rgb = img.convert("RGB")
        assert rgb.getpixel((40, 30)) == (10, 20, 30)  # tile 0: the frame, resized
        assert rgb.getpixel((0 * 80 + 40, 1 * (60 + LABEL_HEIGHT_PX) + 5)) == (200, 200, 200)  # tile 3: no frame


@pytest.mark.parametrize("n", [1, 3, 33])
def test_coverage_chart_text_is_not_cut_off_with_few_grasp_types(tmp_path, n):
    # Review 18: the chart was as wide as its bars, so a run of 1-3 types cut its title
    # ("default_hand + ...") and its footer off at the right edge.
    title = "default_hand + handsim.policies:scripted: coverage 2/3 (achieved = success rate >= 0.5)"
    out = coverage_chart([(i + 1, 1.0, True) for i in range(n)], tmp_path / "c.png", 0.5, title)
    with Image.open(out) as img:
        gray = np.asarray(img.convert("L"))
    for band in (gray[:40], gray[-20:]):  # the title, the footer
        inked = np.flatnonzero((band < 200).any(axis=0))
        assert inked.size and inked.max() < gray.shape[1] - 8, (n, gray.shape)


# ---------------------------------------------------------------------------------------------- baseline


def _results(rates: dict[str, tuple[int, int]], trials: int = 3, reason: str | None = None):
    """Hand-made results: grasp id -> (successes, trials run); failed trials give ``reason``."""
    taxonomy = default_taxonomy()
    info, records = [], {}
    for gid, (wins, n) in rates.items():
        g = taxonomy.get(gid)
        info.append({"number": g.number, "id": g.id, "name": g.name, "type": g.type})
        for t in range(n):
            ok = t < wins
            records[(gid, t)] = {"trial": t, "seed": t, "success": ok, "q1": 0.1 if ok else 0.0,
                                 "max_penetration_m": 0.0, "contact_regions": [],
                                 "failure_reasons": [] if ok else [reason or f"{gid} slipped"]}
    return aggregate(hand={"name": "h", "path": "/h", "dof": 20}, policy="p:q",
                     config={"trials": trials, "success_threshold": 0.5, "grasps": list(rates)},
                     grasp_info=info, records=records, timing={}, versions={})


@pytest.mark.parametrize("successes, trials", [(0, 1), (1, 1), (0, 3), (2, 3), (3, 3), (5, 5), (7, 15), (11, 15), (50, 60)])
@pytest.mark.parametrize("confidence", [0.95, 0.8])
def test_wilson_interval_matches_scipy(successes, trials, confidence):
    from scipy.stats import binomtest

    ci = binomtest(successes, trials).proportion_ci(confidence_level=confidence, method="wilson")
    lo, hi = wilson_interval(successes, trials, confidence)
    assert lo == pytest.approx(float(ci.low), abs=1e-12) and hi == pytest.approx(float(ci.high), abs=1e-12)
    assert 0.0 <= lo <= successes / trials <= hi <= 1.0


@pytest.mark.parametrize("args, needle", [
    ((1, 0), "trials: expected an int >= 1, got 0"),
    ((4, 3), r"successes: expected an int in \[0, 3\], got 4"),
    ((-1, 3), r"successes: expected an int in \[0, 3\], got -1"),
    ((1.0, 3), r"successes: expected an int in \[0, 3\], got 1.0"),
    ((1, 3, 1.0), r"confidence: expected a number in \(0, 1\), got 1.0"),
])
def test_wilson_interval_refuses_bad_counts(args, needle):
    with pytest.raises(ConfigurationError, match=needle):
        wilson_interval(*args)


def test_report_gives_each_rate_its_interval_and_what_the_trials_establish():
    results = _results({"lateral": (5, 5), "tip_pinch": (3, 5), "ring": (1, 5), "stick": (0, 0)}, trials=5)
    report = report_markdown(results)
    assert "| 16 | Lateral | intermediate | 5/5 (1.00) | 0.57-1.00 | 0.1000 | - | yes |" in report  # no soft Q1 recorded
    lo, hi = wilson_interval(3, 5)
    assert f"| 24 | Tip Pinch | precision | 3/5 (0.60) | {lo:.2f}-{hi:.2f} |" in report
    assert "| 29 | Stick | intermediate | - | - |" in report  # not run
    # lateral's interval lies above one half, tip pinch's (achieved, 3/5) does not; 3/3 (0.44) is
    # too few, 4/4 (0.51) the fewest all-success trials that would do
    assert "lies wholly at or above 0.5 for 1 of the 2 achieved types" in report
    assert "at least 4 trials, all successful" in report and "4/4 gives 0.51-1.00" in report


def test_report_escapes_the_asterisks_of_region_patterns():
    # Review 18: a trial's reasons "required index.*.pad|...; required middle.*.pad|..." rendered
    # as emphasis between the two "*", which Markdown then drops.
    reason = "required index.*.pad|index.distal.tip not in contact; forbidden palm.* touched (palm.pad)"
    report = report_markdown(_results({"ring": (0, 3)}, reason=reason))
    lines = [ln for ln in report.splitlines() if ln.startswith(("| 31 |", "- trial"))]
    assert len(lines) == 4
    for line in lines:
        assert "index.\\*.pad\\|index.distal.tip" in line and "palm.\\* touched" in line, line
        assert re.search(r"(?<!\\)\*", line) is None, line


def test_report_marks_the_trials_that_were_not_pushed_and_only_those():
    """``pushed`` false (failed after the settle, so not pushed) is marked; true, and null (a
    custom env that does not say, a simulation error's stand-in record), are not; a run with no
    unpushed failure gets no explanation either."""
    results = _results({"tripod": (0, 3), "ring": (0, 1)})
    ring = results.grasps[1]
    assert ring.id == "ring"
    records = [dict(t, pushed=p) for t, p in zip(results.grasps[0].trial_results, (False, True, None))]
    marked = dataclasses.replace(results, grasps=(dataclasses.replace(results.grasps[0], trial_results=tuple(records)),
                                                  ring))
    lines = [ln for ln in report_markdown(marked).splitlines() if ln.startswith("- trial")]
    assert [ln.endswith(" (*not pushed*)") for ln in lines] == [True, False, False, False]
    assert "A trial marked *not pushed* had already failed" in report_markdown(marked)
    assert "not pushed" not in report_markdown(results)


def test_baseline_comparison():
    base = _results({"tip_pinch": (3, 3), "medium_wrap": (2, 3), "tripod": (0, 3), "ring": (3, 3)})
    same = compare_results(base, base)
    assert not same.regressed and "no regression" in same.text()

    # one trial of three lost on tip pinch: within the 0.34 tolerance, still achieved
    c = compare_results(_results({"tip_pinch": (2, 3), "medium_wrap": (2, 3), "tripod": (0, 3), "ring": (3, 3)}), base)
    assert not c.regressed and not c.dropped

    # medium wrap 2/3 -> 1/3: lost coverage
    c = compare_results(_results({"tip_pinch": (3, 3), "medium_wrap": (1, 3), "tripod": (0, 3), "ring": (3, 3)}), base)
    assert c.regressed and c.coverage_before == 3 and c.coverage_after == 2
    assert "lost coverage" in c.text() and "3 Medium Wrap (medium_wrap): success rate 0.67 -> 0.33" in c.text()
    assert "now: medium_wrap slipped" in c.text() and "REGRESSION" in c.text()

    # ring 3/3 -> 1/3 (drop 0.67) while tripod gains: coverage equal, yet a regression
    c = compare_results(_results({"tip_pinch": (3, 3), "medium_wrap": (2, 3), "tripod": (3, 3), "ring": (1, 3)}), base)
    assert c.coverage_before == c.coverage_after == 3
    assert c.regressed and len(c.dropped) == 1 and "Ring" in c.dropped[0]
    assert "gained coverage" in c.text() and "Tripod" in c.text()

    # improvement only
    c = compare_results(_results({"tip_pinch": (3, 3), "medium_wrap": (3, 3), "tripod": (2, 3), "ring": (3, 3)}), base)
    assert not c.regressed and "(improved)" in c.text() and c.gained

    # a run of a subset is compared over the shared grasps, with a note
    c = compare_results(_results({"tip_pinch": (3, 3)}), base)
    assert not c.regressed and c.shared == 1 and "only in the baseline" in c.text()


def test_baseline_comparison_notes_each_configuration_difference():
    """A scalar difference is one note; a protocol difference names each changed setting."""
    base = _results({"tip_pinch": (3, 3)})
    now = _results({"tip_pinch": (3, 3)})
    base.config.update(seed=0, protocol={"max_rotation_deg": 15.0, "timestep_s": 0.004})
    now.config.update(seed=1, protocol={"max_rotation_deg": 45.0, "timestep_s": 0.004, "settle_s": 0.5})
    assert compare_results(now, base).notes == (
        "config.seed differs: 0 -> 1",
        "config.protocol differs: max_rotation_deg 15.0 -> 45.0, settle_s None -> 0.5",
    )


# ---------------------------------------------------------------------------------------------- error paths


def test_out_dir_that_cannot_be_created_is_a_configuration_error(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    with pytest.raises(ConfigurationError, match=r"--out .*afile: cannot create the output folder: a file"):
        run(afile)
    with pytest.raises(ConfigurationError, match=r"--out .*afile/sub: cannot create the output folder"):
        run(afile / "sub")
    assert afile.read_text() == "not a folder"


@pytest.mark.parametrize("entry", ["report.md", "junit.xml", "coverage.png", "frames"])
def test_an_output_name_taken_by_the_wrong_kind_of_entry_is_refused_before_any_trial(tmp_path, entry):
    # Review R16 #7: a folder named report.md (or a file named frames) was an exit-3 traceback
    # after the trials, when the report was written.
    from handsim.bench.runner import OUTPUT_FILES

    if entry == "frames":
        (tmp_path / entry).write_text("")
        expect = "frames there is a file; expected the folder of rendered frames"
    else:
        (tmp_path / entry).mkdir()
        expect = f"{entry} there is a folder; expected a file the run can write"
    with pytest.raises(ConfigurationError, match=expect):
        run(tmp_path, on_trial=lambda *a: pytest.fail("a trial ran"))
    clean = tmp_path / "clean"
    paths = write_outputs(run(clean), clean)  # OUTPUT_FILES is what write_outputs writes
    assert sorted(p.name for p in paths.values()) == sorted(OUTPUT_FILES)


def test_fresh_run_refuses_an_unfinished_runs_folder_and_keeps_its_trials(tmp_path):
    stop_after_three = interrupt_after(3)

    with pytest.raises(BenchInterrupted):
        run(tmp_path, on_trial=stop_after_three)
    before = (tmp_path / "results.json").read_bytes()
    with pytest.raises(ResultsError) as info:
        run(tmp_path)
    assert str(info.value) == (f"{tmp_path / 'results.json'} has 3 finished trials of an unfinished run: "
                               "use --resume, or another --out / remove it")
    assert (tmp_path / "results.json").read_bytes() == before, "the finished trials are untouched"
    # --resume finishes it; a complete file may then be replaced by a fresh run
    run(tmp_path, resume=True)
    assert raw(tmp_path)["complete"] is True
    finished = (tmp_path / "results.json").read_bytes()
    run(tmp_path, config=fake_config(trials=1))
    assert raw(tmp_path)["config"]["trials"] == 1
    # ... but never lost (review R16 #5): kept byte for byte, and a second replacement keeps both
    assert (tmp_path / "results.json.bak").read_bytes() == finished
    run(tmp_path, config=fake_config(trials=1))
    assert (tmp_path / "results.json.bak").read_bytes() == finished
    assert json.loads((tmp_path / "results.json.bak.1").read_text())["config"]["trials"] == 1


@pytest.mark.parametrize("env_id, field", [(NAN_Q1_ID, "q1"), (INF_PENETRATION_ID, "max_penetration_m")])
def test_non_finite_q1_or_penetration_is_a_failed_trial_the_loader_reads(tmp_path, env_id, field):
    # medium_wrap (3) succeeds in every trial of the fake env: here only the non-finite number fails it.
    config = BenchConfig(hand=str(hand_dir("default_hand")), policy=FAKE_POLICY, grasp_ids=("medium_wrap",),
                         trials=2, seed=7, env_id=f"test_bench:{env_id}")
    results = run(tmp_path, config=config)
    data = raw(tmp_path)
    for t in data["grasps"][0]["trial_results"]:
        assert t["success"] is False and t[field] == 0.0
        assert t["failure_reasons"][0].startswith(f"{field} not finite (")
    loaded = load_results(tmp_path)  # numbers, not null: the file reads back
    assert loaded.grasps[0].successes == 0 and not loaded.grasps[0].achieved
    assert strip_timing(loaded.to_dict()) == strip_timing(results.to_dict())
    run(tmp_path, config=config, resume=True)  # and resumes


def test_an_env_without_soft_q1_records_null_and_the_report_shows_a_dash(tmp_path):
    config = BenchConfig(hand=str(hand_dir("default_hand")), policy=FAKE_POLICY, grasp_ids=("medium_wrap",),
                         trials=2, seed=7, env_id=f"test_bench:{NO_SOFT_ID}")
    results = run(tmp_path, config=config)
    data = raw(tmp_path)
    g = data["grasps"][0]
    assert [t["q1_soft"] for t in g["trial_results"]] == [None, None] and g["q1_soft"] is None
    assert all(t["success"] for t in g["trial_results"])  # a missing soft Q1 fails nothing
    loaded = load_results(tmp_path)
    assert loaded.grasps[0].q1_soft is None
    assert strip_timing(loaded.to_dict()) == strip_timing(results.to_dict())
    row = next(ln for ln in report_markdown(loaded).splitlines() if ln.startswith("| 3 |"))
    assert row.split(" | ")[6] == "-"  # the Q1 soft cell


def test_nan_action_error_names_the_trial_and_keeps_finished_trials(tmp_path):
    from handsim.bench import trial_seed

    config = BenchConfig(hand=str(hand_dir("default_hand")), policy="test_bench:nan_second_policy",
                         grasp_ids=("medium_wrap",), trials=3, seed=7, env_id=FAKE_ENV)
    with pytest.raises(ConfigurationError) as info:
        run(tmp_path, config=config)
    seed = trial_seed(7, 3, 1)
    assert str(info.value) == (
        f"medium_wrap trial 1 (seed {seed}), policy test_bench:nan_second_policy: action: expected finite numbers, "
        f"got [nan]; 1 finished trials kept in {tmp_path / 'results.json'}"
    )
    data = raw(tmp_path)
    assert data["complete"] is False
    assert [t["trial"] for t in data["grasps"][0]["trial_results"]] == [0]


@pytest.mark.parametrize(
    "policy, received",
    [
        ("reset_none", ()),
        ("reset_info", ("info",)),  # the documented policy.reset(info)
        ("reset_obs", ("obs",)),
        ("reset_unnamed", ("info",)),
        ("reset_two", ("obs", "info")),
        ("reset_info_obs", ("info", "obs")),
        ("reset_default", ("info",)),
        ("reset_varargs", ("info",)),
        ("reset_other_default", ("False",)),
        ("reset_kwonly", ("info",)),
        ("reset_kwonly_obs", ("info", "obs")),
        ("reset_kwargs", ("obs", "info")),
    ],
)
def test_policy_reset_gets_what_its_parameters_name(tmp_path, policy, received):
    config = BenchConfig(hand=str(hand_dir("default_hand")), policy=f"test_bench:{policy}",
                         grasp_ids=("medium_wrap",), trials=2, seed=7, env_id=FAKE_ENV)
    run(tmp_path, config=config)
    assert RESET_CALLS[policy] == [received, received]  # once per trial


def _valid_file(tmp_path: Path, uninterrupted: dict[str, Any]) -> Path:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(uninterrupted))
    return path


@pytest.mark.parametrize(
    "where, value, field, expected",
    [
        (("grasps", 0, "trial_results", 0, "max_penetration_m"), None, "grasps[0].trial_results[0].max_penetration_m",
         "expected a finite number, got None (null)"),
        (("grasps", 0, "trial_results", 1, "trial"), "x", "grasps[0].trial_results[1].trial",
         "expected an integer >= 0, got 'x' (str)"),
        (("grasps", 0, "trial_results", 1, "trial"), 5, "grasps[0].trial_results[1].trial",
         "expected a trial index in 0..2"),
        (("grasps", 0, "trial_results", 0, "trial"), 1, "grasps[0].trial_results[1].trial", "each trial index once"),
        (("config", "trials"), "three", "config.trials", "expected an integer >= 1, got 'three' (str)"),
        (("config", "success_threshold"), 2, "config.success_threshold", "expected a number in (0, 1]"),
        (("grasps", 1, "trial_results", 2, "contact_regions"), 5, "grasps[1].trial_results[2].contact_regions",
         "expected a list of strings, got 5 (int)"),
        (("grasps", 1, "trial_results", 0, "success"), "no", "grasps[1].trial_results[0].success",
         "expected true or false, got 'no' (str)"),
        (("grasps", 1, "trial_results", 0, "failure_reasons"), "slipped", "grasps[1].trial_results[0].failure_reasons",
         "expected a list of strings"),
        (("grasps", 2, "number"), "3", "grasps[2].number", "expected an integer >= 1"),
        (("hand", "dof"), 20.5, "hand.dof", "expected an integer >= 0"),
        (("hand", "sha256"), "abc", "hand.sha256", "expected an object of file -> hex digest"),
        (("hand", "sha256"), {"urdf": 5}, "hand.sha256", "expected an object of file -> hex digest"),
        (("policy",), 3, "policy", "expected a string"),
        (("complete",), "yes", "<top>.complete", "expected true or false"),
    ],
)
def test_load_results_type_checks_every_field_it_reads(tmp_path, uninterrupted, where, value, field, expected):
    data = json.loads(json.dumps(uninterrupted))
    obj = data
    for key in where[:-1]:
        obj = obj[key]
    obj[where[-1]] = value
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ResultsError) as info:
        load_results(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: field {field!r}: "), msg
    assert expected in msg, msg
    assert load_results(_valid_file(tmp_path, uninterrupted)).total == len(GRASPS)


def test_junit_counts_grasps_not_run_as_skipped_not_failed():
    results = _results({"tip_pinch": (3, 3), "medium_wrap": (1, 3), "tripod": (0, 0), "ring": (0, 0)})
    root = ET.fromstring(junit_xml(results).split("?>", 1)[1])
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("4", "1", "2")
    by_name = {c.get("name").split("_", 1)[1]: c for c in suite.findall("testcase")}
    assert by_name["medium_wrap"].find("failure") is not None
    for gid in ("tripod", "ring"):
        assert by_name[gid].find("failure") is None and by_name[gid].find("skipped") is not None


def test_junit_stays_well_formed_when_a_reason_holds_control_characters():
    # A custom env's reason with an ANSI colour code: XML 1.0 cannot hold ESC at all.
    results = _results({"medium_wrap": (0, 3)}, reason="\x1b[31mslipped\x1b[0m \x00 under +x\ufffe")
    text = junit_xml(results)
    failure = ET.fromstring(text.split("?>", 1)[1]).find("testsuite/testcase/failure")
    assert "\\x1b[31mslipped\\x1b[0m \\x00 under +x\\xfffe" in failure.get("message")
    assert failure.text.count("\\x1b") == 6


def test_no_grasp_type_in_common_is_an_error_not_a_pass():
    with pytest.raises(ResultsError, match="no grasp type in common"):
        compare_results(_results({"tip_pinch": (3, 3)}), _results({"ring": (3, 3)}))


def test_contact_sheet_labels_say_which_trial_the_frame_shows(tmp_path):
    results = run(tmp_path)
    for g in results.grasps:
        first = g.trial_results[0]
        ok = fake_rule(g.number, first_uniform(first["seed"]))  # the fake env: held iff success
        assert frame_note(g) == f"{g.successes}/3 succeeded; trial 0 shown: {'success' if ok else 'not held'}"
    # review 18: a trial that was not held was called "dropped", also when the object turned in the hand
    turned = dataclasses.replace(results.grasps[1], trial_results=(
        {"trial": 0, "success": False, "held": False,
         "failure_reasons": ["turned under -x (rotated 15.1 deg > 15.0 deg limit after 1.26 s)"]},))
    assert frame_note(turned).endswith("trial 0 shown: not held")
    # held but failed: another check (signature, penetration) failed
    held = dataclasses.replace(results.grasps[1], trial_results=({"trial": 0, "success": False, "held": True},))
    assert frame_note(held).endswith("trial 0 shown: held, failed")
    # failed after the settle and so not pushed (no --push-failed): neither "held" nor "not held"
    unpushed = dataclasses.replace(results.grasps[1], trial_results=(
        {"trial": 0, "success": False, "held": False, "pushed": False, "disturbance": None,
         "failure_reasons": ["required index.distal.tip|index.distal.pad not in contact"]},))
    assert frame_note(unpushed).endswith("trial 0 shown: not pushed")
    partial = _results({"tip_pinch": (0, 0), "tripod": (2, 3)}, trials=3)
    assert [frame_note(g) for g in partial.grasps] == ["not run", "2/3 succeeded; trial 0 shown: success"]
    paths = write_outputs(results, tmp_path)
    with Image.open(paths["contact_sheet"]) as img:
        rgb = img.convert("RGB")
        # the second strip line (what the frame shows) is drawn: white text on the strip colour
        line = [rgb.getpixel((x, 180 + 3 + 15 + 6)) for x in range(4, 200)]
        assert any(p == (255, 255, 255) or min(p) > 200 for p in line)


@pytest.mark.slow
def test_a_random_policys_trial_does_not_depend_on_the_trials_before_it():
    # One policy serves every trial of a grasp type in a worker: a trial run after another must
    # give the record it gives alone (otherwise results change with --jobs and --resume).
    from handsim.bench import trial_seed
    from handsim.bench.runner import TrialTask, close_worker_envs, run_trial

    def task(t: int) -> TrialTask:
        return TrialTask(env_id="handsim/Grasp-v0", env_kwargs=(), hand="default_hand", policy="handsim.policies:uniform",
                         grasp_id="lateral", number=16, trial=t, seed=trial_seed(0, 16, t), render=False)

    def record(t: int) -> dict[str, Any]:
        rec, _ = run_trial(task(t))
        return {k: v for k, v in rec.items() if k != "wall_s"}

    try:
        alone = record(1)
        close_worker_envs()
        record(0)
        after = record(1)
    finally:
        close_worker_envs()
    assert after == alone
