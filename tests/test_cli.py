"""The ``handsim`` command line: user errors are one line + exit 2, baselines exit 1 on a
regression, Ctrl-C exits 130 with the finished trials saved. Benchmarks here run the fake env
of tests/test_bench.py (imported by gymnasium through ``--env test_bench:...``)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_bench import FAKE_ENV, FAKE_POLICY, _results

from handsim.bench.runner import OUTPUT_FILES
from handsim.cli import main
from handsim.data import hand_dir

TESTS_DIR = Path(__file__).resolve().parent
FAKE = ["--env", FAKE_ENV, "--policy", FAKE_POLICY, "--jobs", "1"]


def fails_with_one_line(capsys, argv: list[str], *needles: str) -> str:
    """Run the CLI; expect exit 2 and exactly one stderr line containing every needle."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    "argv, needles",
    [
        (["bench", "--grasps", "tip_pinc"], ["unknown grasp 'tip_pinc'", "did you mean 'tip_pinch'", "valid:", "tripod"]),
        (["bench", "--grasps", "TIP_PINCH"], ["unknown grasp 'TIP_PINCH'", "did you mean 'tip_pinch'?", "valid:"]),
        (["bench", "--grasps", "24,99"], ["unknown grasp number 99", "valid: 1..33"]),
        (["bench", "--grasps", ","], ["--grasps", "valid:"]),
        (["bench", "--trials", "0"], ["--trials", "expected a whole number >= 1, got 0"]),
        (["bench", "--trials", "three"], ["--trials", "'three'"]),
        (["bench", "--jobs", "-1"], ["--jobs", ">= 1"]),
        (["bench", "--seed", "-3"], ["--seed", ">= 0"]),
        (["bench", "--quick", "--trials", "2"], ["not allowed with argument"]),
        # review 18: "--trials 3" (the default's value) passed beside --quick, which ran 1 trial
        (["bench", "--quick", "--trials", "3"], ["--trials: not allowed with argument --quick"]),
        (["bench", "--trials", "3", "--quick"], ["--quick: not allowed with argument --trials"]),
        (["compare", "default_hand", "--out", "x", "--trials", "3", "--quick"], ["not allowed with argument"]),
        (["bench", "--hand", "no_such_hand"], ["no hand 'no_such_hand'", "valid: default_hand"]),
        (["bench", "--policy", "no_such_module:scripted"], ["no module 'no_such_module'", "MODULE:CALLABLE"]),
        (["bench", "--policy", "handsim.policies:scriptd"], ["did you mean 'scripted'"]),
        (["bench", "--policy", "handsim.policies"], ["expected MODULE:CALLABLE"]),
        (["bench", "--bogus"], ["unrecognized arguments: --bogus"]),
        # review 18: an id gymnasium cannot parse named no valid env
        (["bench", "--env", "my env-v0"], ["env 'my env-v0'", "Malformed environment ID", "valid: handsim/Grasp-v0"]),
        (["benchh"], ["invalid choice: 'benchh'", "bench"]),
        ([], ["expected a command", "valid: bench"]),
        (["bench", "--executor", "rey"], ["--executor", "invalid choice: 'rey'", "local", "ray"]),
        (["bench", "--ray-address", "auto"], ["--ray-address", "--executor ray"]),
        (["compare", "default_hand"], ["--out", "required"]),
        (["compare", "--out", "x"], ["expected at least one HAND or --from-results"]),
        (["compare", "no_such_hand", "--out", "x"], ["no hand 'no_such_hand'", "valid: default_hand"]),
        (["compare", "--from-results", "nope.json", "--out", "x"], ["nope.json", "no such results file"]),
        (["sweep"], ["SPEC.toml", "required"]),
        (["sweep", "nope.toml"], ["nope.toml", "no such sweep spec"]),
        (["sweep", str(Path(__file__).parent)], [f"{Path(__file__).parent}: is a folder; expected a sweep spec TOML"]),
        # Empty values (an unset CI variable) would mean "no baseline" or "this folder" (review 17).
        (["bench", "--baseline", ""], ["--baseline", "expected a results.json path, got an empty string"]),
        (["bench", "--out", " "], ["--out", "expected an output folder, got an empty string"]),
        (["bench", "--hand", ""], ["--hand", "expected a shipped hand's name or a hand folder, got an empty string"]),
        (["bench", "--policy", ""], ["--policy", "expected MODULE:CALLABLE, got an empty string"]),
        (["bench", "--tolerance", "0.5"], ["--tolerance 0.5: only used with --baseline FILE"]),
        (["compare", "", "--out", "x"], ["HAND", "expected a shipped hand's name or a hand folder, got an empty string"]),
        (["compare", "default_hand", "--out", ""], ["--out", "expected an output folder, got an empty string"]),
        (["hand", "make", ""], ["OUT_DIR", "expected an output folder, got an empty string"]),
        (["sweep", "s.toml", "--out", ""], ["--out", "expected an output folder, got an empty string"]),
    ],
)
def test_user_errors_are_one_line_exit_2(capsys, argv, needles):
    fails_with_one_line(capsys, argv, *needles)


@pytest.mark.parametrize("extra, trials", [([], 3), (["--trials", "3"], 3), (["--trials", "2"], 2), (["--quick"], 1)])
def test_trials_default_given_and_quick(tmp_path, capsys, extra, trials):
    out = tmp_path / "o"
    assert main(["bench", *FAKE, "--grasps", "2", "--out", str(out), *extra]) == 0, capsys.readouterr().err
    assert json.loads((out / "results.json").read_text())["config"]["trials"] == trials


def test_a_refused_bench_leaves_no_folder_and_an_earlier_run_as_it_was(tmp_path, capsys):
    # Review 18: a grasps.json that does not load, or an env that cannot be built, was found
    # after --out was made and an earlier run's report, junit.xml and pictures moved to .bak.
    hand = tmp_path / "hand"
    shutil.copytree(hand_dir("default_hand"), hand)
    (hand / "grasps.json").write_text('{"schema": 1, "grasps": {"tip_pinchh": {}}}')
    fails_with_one_line(capsys, ["bench", "--hand", str(hand), "--grasps", "24", "--out", str(tmp_path / "new")],
                        "grasps.json", "did you mean 'tip_pinch'")
    assert not (tmp_path / "new").exists()
    out = tmp_path / "run"
    assert main(["bench", *FAKE, "--grasps", "2", "--quick", "--out", str(out)]) == 0
    before = sorted(p.name for p in out.iterdir())
    assert "report.md" in before and "junit.xml" in before
    capsys.readouterr()
    fails_with_one_line(capsys, ["bench", "--env", "CartPole-v1", "--grasps", "2", "--quick", "--out", str(out)],
                        "env 'CartPole-v1'", "unexpected keyword argument 'grasp'")
    assert sorted(p.name for p in out.iterdir()) == before
    fails_with_one_line(capsys, ["bench", "--hand", str(hand), "--grasps", "24", "--out", str(out)], "grasps.json")
    assert sorted(p.name for p in out.iterdir()) == before


def test_missing_hand_folder_and_malformed_metadata(tmp_path, capsys):
    fails_with_one_line(capsys, ["bench", "--hand", str(tmp_path)], "has no hand.json")
    hand = tmp_path / "hand"
    shutil.copytree(hand_dir("default_hand"), hand)
    meta = json.loads((hand / "hand.json").read_text())
    meta["palm_link"] = "plam"
    (hand / "hand.json").write_text(json.dumps(meta))
    fails_with_one_line(capsys, ["bench", "--hand", str(hand), "--grasps", "24", "--out", str(tmp_path / "o")],
                        str(hand / "hand.json"), "palm_link")


def test_bad_baseline_and_resume_mismatch(tmp_path, capsys):
    fails_with_one_line(capsys, ["bench", "--baseline", str(tmp_path / "none.json")], "no such results file")
    out = str(tmp_path / "run")
    assert main(["bench", *FAKE, "--grasps", "1", "--quick", "--out", out]) == 0
    capsys.readouterr()
    fails_with_one_line(capsys, ["bench", *FAKE, "--grasps", "1", "--trials", "2", "--out", out, "--resume"],
                        "cannot --resume", "config.trials 1 vs 2")


def test_bench_prints_table_and_writes_outputs(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["bench", *FAKE, "--grasps", "3,tip_pinch,1", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    lines = stdout.splitlines()
    assert lines[0].split() == ["#", "name", "type", "success", "Q1", "Q1", "soft", "achieved", "reason"]
    # number order whatever order --grasps gave; grasp 3 always succeeds in the fake env
    assert [ln.split()[0] for ln in lines[2:5]] == ["1", "3", "24"]
    assert lines[3].split()[1:4] == ["Medium", "Wrap", "power"] and "3/3" in lines[3]
    assert any(ln.startswith("coverage: ") and ln.endswith("/3") for ln in lines)
    assert "trials/s" in stdout
    for name in ("results.json", "report.md", "junit.xml", "contact_sheet.png", "coverage.png"):
        assert (out / name).is_file(), name


def test_baseline_exit_codes(tmp_path, capsys):
    # The fake env: small_diameter (2) never succeeds, medium_wrap (3) always does.
    worse = tmp_path / "worse.json"
    _results({"small_diameter": (0, 3), "medium_wrap": (0, 3)}).write(worse)
    better = tmp_path / "better.json"
    _results({"small_diameter": (3, 3), "medium_wrap": (3, 3)}).write(better)
    argv = ["bench", *FAKE, "--grasps", "2,3", "--out", str(tmp_path / "run")]

    assert main(argv + ["--baseline", str(worse)]) == 0
    out = capsys.readouterr().out
    assert "gained coverage" in out and "Medium Wrap" in out and "no regression" in out

    assert main(argv + ["--baseline", str(better)]) == 1
    out = capsys.readouterr().out
    assert "lost coverage" in out and "2 Small Diameter (small_diameter): success rate 1.00 -> 0.00" in out
    assert "REGRESSION" in out


def test_a_baseline_that_compares_nothing_or_would_be_overwritten_is_refused(tmp_path, capsys):
    other = tmp_path / "other.json"
    _results({"tip_pinch": (3, 3)}).write(other)
    out = tmp_path / "run"
    fails_with_one_line(capsys, ["bench", *FAKE, "--grasps", "2,3", "--out", str(out), "--baseline", str(other)],
                        "no grasp type in common", "baseline: tip_pinch", "this run: small_diameter, medium_wrap")
    assert not out.exists()  # refused before any trial
    assert main(["bench", *FAKE, "--grasps", "2,3", "--out", str(out)]) == 0
    before = (out / "results.json").read_bytes()
    capsys.readouterr()
    for baseline in (out / "results.json", out):  # the file or its folder
        fails_with_one_line(capsys, ["bench", *FAKE, "--grasps", "2,3", "--out", str(out), "--baseline", str(baseline)],
                            "the results file this run writes")
    assert (out / "results.json").read_bytes() == before


@pytest.mark.parametrize("content", ["{truncated", '{"hello": 1}', "[]"])
def test_a_foreign_results_file_in_out_is_not_overwritten(tmp_path, capsys, content):
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.json").write_text(content)
    fails_with_one_line(capsys, ["bench", *FAKE, "--grasps", "3", "--out", str(out)],
                        "is not a handsim results file", "remove it or choose another --out")
    assert (out / "results.json").read_text() == content


def _subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS_DIR), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def test_no_traceback_in_a_fresh_process():
    proc = subprocess.run([sys.executable, "-m", "handsim.cli", "bench", "--grasps", "nope"],
                          capture_output=True, text=True, timeout=60, env=_subprocess_env())
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "unknown grasp 'nope'" in proc.stderr
    # PyBullet's C banner ("pybullet build time: ...") sits in C stdio's buffer when stdout is
    # a pipe; it must not be written out at exit after (or instead of) our own output.
    assert proc.stdout == "", proc.stdout


@pytest.mark.slow
def test_ctrl_c_saves_finished_trials_and_exits_130(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "handsim.cli", "bench", "--env", FAKE_ENV, "--policy", FAKE_POLICY,
           "--grasps", "1,2,3,4", "--jobs", "2", "--out", str(out)]
    # 0.15 s per step, 3 steps per trial: 12 trials take ~3 s on two workers. SIGINT's default
    # action is restored in the child: a shell starts background jobs with SIGINT ignored, and
    # Python then installs no KeyboardInterrupt handler (a backgrounded CI run finished all 12).
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_subprocess_env(HANDSIM_FAKE_STEP_S="0.15"), start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            path = out / "results.json"
            if path.is_file():
                data = json.loads(path.read_text())
                if sum(len(g["trial_results"]) for g in data["grasps"]) >= 2:
                    break
            time.sleep(0.05)
        # Like a terminal's Ctrl-C: SIGINT to the whole process group (parent and workers).
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "--resume" in err and "Traceback" not in err
    data = json.loads((out / "results.json").read_text())
    done = sum(len(g["trial_results"]) for g in data["grasps"])
    assert data["complete"] is False and 2 <= done < 12
    # and --resume finishes the rest
    proc = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=60, env=_subprocess_env())
    assert proc.returncode == 0, proc.stderr
    data = json.loads((out / "results.json").read_text())
    assert data["complete"] is True and data["timing"]["trials_run"] == 12 - done
    report = (out / "report.md").read_text()
    assert (f"for the {12 - done} trials this run made" in report
            and f"the other {done} trials were kept from an earlier run (--resume)" in report), report


# ---------------------------------------------------------------------------------------------- error paths


def test_internal_error_is_exit_3_with_traceback_and_keeps_finished_trials(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["bench", "--env", FAKE_ENV, "--policy", "test_bench:buggy_second_policy", "--jobs", "1",
                 "--grasps", "3", "--trials", "3", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 3, err
    assert "Traceback" in err and "ZeroDivisionError: policy bug in the second episode" in err
    assert f"1 finished trials kept in {out / 'results.json'}" in err
    assert err.strip().splitlines()[-1].startswith("handsim bench: internal error")
    data = json.loads((out / "results.json").read_text())
    assert data["complete"] is False and len(data["grasps"][0]["trial_results"]) == 1


def test_help_lists_the_exit_codes(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "exit codes:" in text and "3    internal error" in text and "1    a benchmark regression" in text
    assert main(["bench", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "3 internal error" in text and "1 a regression against --baseline" in text


@pytest.mark.parametrize(
    "env, needles",
    [
        ("nope/Nope-v0", ["env 'nope/Nope-v0'", "Namespace nope not found", "valid: handsim/Grasp-v0"]),
        ("handsim/Grasp-v9", ["env 'handsim/Grasp-v9'", "valid: handsim/Grasp-v0"]),
        ("nomod:ns/X-v0", ["env 'nomod:ns/X-v0'", "no module 'nomod'", "valid: handsim/Grasp-v0"]),
        ("CartPole-v1", ["env 'CartPole-v1'", "unexpected keyword argument 'grasp'", "handsim/Grasp-v0 contract"]),
    ],
)
def test_unknown_env_is_one_line_exit_2(tmp_path, capsys, env, needles):
    fails_with_one_line(capsys, ["bench", "--env", env, "--policy", FAKE_POLICY, "--grasps", "1", "--quick",
                                 "--out", str(tmp_path / "o")], *needles)


def test_out_that_cannot_be_created_is_one_line_exit_2(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for out, why in ((afile, "a file of that name exists"), (afile / "sub", "cannot create the output folder")):
        fails_with_one_line(capsys, ["bench", *FAKE, "--grasps", "1", "--quick", "--out", str(out)],
                            f"--out {out}: ", why)
    # compare writes only the matrix when given only --from-results
    assert main(["bench", *FAKE, "--grasps", "1", "--quick", "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    fails_with_one_line(capsys, ["compare", "--from-results", str(tmp_path / "run"), "--out", str(afile)],
                        f"--out {afile}: ", "a file of that name exists")


def _module(folder: Path, name: str, text: str) -> str:
    (folder / f"{name}.py").write_text(text)
    return name


def test_policy_that_cannot_be_imported_or_built_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    broken = _module(tmp_path, "h7_brokenimport", "import numpy_nonexistent_dep\n")
    syntax = _module(tmp_path, "h7_syntaxpol", "def f(:\n")
    mixed = _module(tmp_path, "h7_mixedpol", "from __future__ import annotations\nimport numpy as np\n"
                                             "from os.path import join\n\ndef make(env):\n    return None\n")
    base = ["bench", "--env", FAKE_ENV, "--grasps", "1", "--quick", "--jobs", "1", "--out", str(tmp_path / "o")]
    fails_with_one_line(capsys, [*base, "--policy", f"{broken}:f"], f"policy '{broken}:f'",
                        f"importing module '{broken}' failed", "ModuleNotFoundError", "numpy_nonexistent_dep")
    fails_with_one_line(capsys, [*base, "--policy", f"{syntax}:f"], f"policy '{syntax}:f'",
                        "SyntaxError", "line 1")
    fails_with_one_line(capsys, [*base, "--policy", "test_bench:raising_policy"],
                        "policy 'test_bench:raising_policy'", "factory(env) raised RuntimeError: factory boom")
    fails_with_one_line(capsys, [*base, "--policy", f"{mixed}:make"], "factory(env) returned a NoneType")
    line = fails_with_one_line(capsys, [*base, "--policy", f"{mixed}:mak"], "did you mean 'make'?")
    assert line.endswith("valid: make"), "only what the module defines, not np, join or annotations"


def fails_after_progress(capsys, argv: list[str], *needles: str) -> str:
    """Like :func:`fails_with_one_line` for a run that got going: the progress lines come
    first, the error is the one last line."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert "Traceback" not in err
    assert all(ln.startswith("bench [") for ln in lines[:-1]), err
    for needle in needles:
        assert needle in lines[-1], lines[-1]
    return lines[-1]


def test_nan_action_is_one_line_exit_2_naming_the_trial(tmp_path, capsys):
    out = tmp_path / "run"
    line = fails_after_progress(capsys, ["bench", "--env", FAKE_ENV, "--policy", "test_bench:nan_second_policy",
                                        "--jobs", "1", "--grasps", "3", "--trials", "2", "--out", str(out)],
                               "medium_wrap trial 1 (seed ", "policy test_bench:nan_second_policy",
                               f"; 1 finished trials kept in {out / 'results.json'}")
    assert line.startswith("handsim bench: error: medium_wrap trial 1")
    assert len(json.loads((out / "results.json").read_text())["grasps"][0]["trial_results"]) == 1


def test_a_run_stopped_early_leaves_no_earlier_report_beside_its_results(tmp_path, capsys):
    """A fresh run moves the earlier run's report, junit.xml and pictures aside when it starts,
    so a run stopped by bad input (here a NaN action) never leaves them beside its own
    unfinished results.json (review 17: a CI job would have published the old junit.xml)."""
    out = tmp_path / "run"
    assert main(["bench", *FAKE, "--grasps", "3", "--trials", "1", "--out", str(out)]) == 0
    old = {name: (out / name).read_bytes() for name in OUTPUT_FILES}
    capsys.readouterr()
    assert main(["bench", "--env", FAKE_ENV, "--policy", "test_bench:nan_second_policy", "--jobs", "1",
                 "--grasps", "3", "--trials", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "the earlier run's outputs" in err and "report.md.bak" in err
    for name, content in old.items():
        assert not (out / name).exists(), name
        assert (out / f"{name}.bak").read_bytes() == content, name
    assert json.loads((out / "results.json.bak").read_text())["complete"] is True
    assert json.loads((out / "results.json").read_text())["complete"] is False


@pytest.mark.slow
def test_solver_iterations_option_reaches_the_env_and_the_recorded_protocol(tmp_path, capsys):
    """--solver-iterations N runs the real env at N iterations (its protocol, read back from the
    env, is what results.json records), and the protocol's own count adds nothing to the
    configuration, so such a run still resumes and compares like a run without the option."""
    out = tmp_path / "run"
    assert main(["bench", "--grasps", "lateral", "--quick", "--jobs", "1", "--solver-iterations", "151",
                 "--out", str(out)]) == 0
    assert "protocol changed: solver_iterations 151 (the protocol's is 150)" in capsys.readouterr().out
    config = json.loads((out / "results.json").read_text())["config"]
    assert config["protocol"]["solver_iterations"] == 151
    assert config["env_kwargs"]["protocol"]["solver_iterations"] == 151
    assert main(["bench", *FAKE, "--grasps", "1", "--quick", "--solver-iterations", "150",
                 "--out", str(tmp_path / "same")]) == 0
    assert json.loads((tmp_path / "same" / "results.json").read_text())["config"]["env_kwargs"] == {}
    assert "protocol changed" not in capsys.readouterr().out
    fails_with_one_line(capsys, ["bench", *FAKE, "--solver-iterations", "0"], "--solver-iterations")


@pytest.mark.slow
def test_push_failed_pushes_a_failed_grasp_and_changes_no_verdict(tmp_path, capsys):
    """A trial that has already failed when scored after the settle is not pushed by default
    (nothing recorded for the disturbance); --push-failed pushes it, records it in the
    configuration, and the trial's verdict and its other reasons stay the same. The type is the
    first whose trial 0 the committed baseline records as failed before the pushes."""
    baseline = json.loads((Path(__file__).parents[1] / "benchmarks/results/baseline/results.json").read_text())
    failed = [g["id"] for g in baseline["grasps"] if not g["trial_results"][0]["success"]
              and g["trial_results"][0]["pushed"] is False]
    # (a baseline recorded with --push-failed, or by code that pushes every trial, has none)
    assert failed, "the committed baseline has no trial 0 that failed and was not pushed"
    runs = {}
    for flag in ((), ("--push-failed",)):
        out = tmp_path / ("pushed" if flag else "default")
        assert main(["bench", "--grasps", failed[0], "--quick", "--jobs", "1", *flag, "--out", str(out)]) == 0
        runs[bool(flag)] = json.loads((out / "results.json").read_text())
    capsys.readouterr()
    default, pushed = (runs[k]["grasps"][0]["trial_results"][0] for k in (False, True))
    assert runs[False]["config"]["env_kwargs"] == {} and runs[True]["config"]["env_kwargs"] == {"push_failed": True}
    assert default["disturbance"] is None and not default["held"] and default["pushed"] is False
    assert pushed["pushed"] and len(pushed["disturbance"]["directions"]) == 6
    assert not default["success"] and not pushed["success"]
    reasons = default["failure_reasons"]
    assert reasons and pushed["failure_reasons"][:len(reasons)] == reasons  # pushing only adds its own lines
    assert default["contact_regions"] == pushed["contact_regions"] and default["q1"] == pushed["q1"]


def test_rerun_without_resume_refuses_an_unfinished_run(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["bench", "--env", FAKE_ENV, "--policy", "test_bench:nan_second_policy", "--jobs", "1",
            "--grasps", "3", "--trials", "2", "--out", str(out)]
    assert main(argv) == 2
    capsys.readouterr()
    before = (out / "results.json").read_bytes()
    fails_with_one_line(capsys, ["bench", *FAKE, "--grasps", "3", "--trials", "2", "--out", str(out)],
                        f"{out / 'results.json'} has 1 finished trials of an unfinished run",
                        "use --resume, or another --out / remove it")
    assert (out / "results.json").read_bytes() == before


@pytest.mark.parametrize(
    "field, value, needle",
    [
        ("max_penetration_m", None, "trial_results[0].max_penetration_m': expected a finite number, got None"),
        ("trial", "x", "trial_results[0].trial': expected an integer >= 0, got 'x'"),
        ("contact_regions", 5, "trial_results[0].contact_regions': expected a list of strings, got 5"),
        ("success", "no", "trial_results[0].success': expected true or false, got 'no'"),
    ],
)
def test_malformed_results_file_is_one_line_exit_2_everywhere(tmp_path, capsys, field, value, needle):
    out = tmp_path / "run"
    argv = ["bench", *FAKE, "--grasps", "1", "--quick", "--out", str(out)]
    assert main(argv) == 0
    capsys.readouterr()
    path = out / "results.json"
    data = json.loads(path.read_text())
    data["grasps"][0]["trial_results"][0][field] = value
    path.write_text(json.dumps(data))
    fails_with_one_line(capsys, [*argv, "--resume"], str(path), needle)
    fails_with_one_line(capsys, ["bench", *FAKE, "--grasps", "1", "--quick", "--out", str(tmp_path / "o2"),
                                 "--baseline", str(path)], str(path), needle)
    fails_with_one_line(capsys, ["compare", "--from-results", str(path), "--out", str(tmp_path / "m")],
                        str(path), needle)
