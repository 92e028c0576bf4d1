"""Executors (handsim.bench.executors): Ray gives the same records as the local pool, streams
results into results.json, resumes after an interruption, and fails with a one-line hint when
Ray is missing.

The fake env of tests/test_bench.py decides each trial from its seed in closed form, so the
local run is checked against that rule there; here the Ray run is compared with the local run
record by record (timing aside), and one slow test does the same with the real physics env.
Ray is started once for the module (``ray.init(num_cpus=2)``, ~5 s on this machine).
"""

from __future__ import annotations

import builtins
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_bench import (
    FAKE_ENV,
    FAKE_POLICY,
    GRASPS,
    fake_config,
    fake_rule,
    first_uniform,
    interrupt_after,
)

from handsim.bench import BenchConfig, BenchInterrupted, run_bench, strip_timing
from handsim.bench.executors import (
    RAY_HINT,
    LocalExecutor,
    RayExecutor,
    import_ray,
    make_executor,
)
from handsim.cli import main
from handsim.data import hand_dir
from handsim.errors import ConfigurationError, MissingDependencyError, UnknownNameError

TESTS_DIR = Path(__file__).resolve().parent

try:
    import ray
except ImportError:  # pragma: no cover - CI installs the extra
    ray = None

needs_ray = pytest.mark.skipif(ray is None, reason='ray is not installed (pip install "handsim[ray]")')


#: Set in the Ray workers only: where :func:`crashing_policy` leaves its "crashed once" marker.
CRASH_MARKER_ENV = "HANDSIM_TEST_CRASH_MARKER"


def crashing_policy(env: Any):
    """Policy factory: the fake policy, except that the first trial run in any Ray worker of this
    module kills its worker process (once, across the module: a marker file remembers it)."""

    def act(obs):
        marker = os.environ.get(CRASH_MARKER_ENV)
        if marker and not os.path.exists(marker):
            Path(marker).touch()
            os._exit(1)  # a lost worker: the process dies mid-trial
        return np.zeros(1, np.float32)

    return act


@pytest.fixture(scope="module")
def crash_marker(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("crash") / "crashed"


@pytest.fixture(scope="module")
def ray_instance(crash_marker):
    """One local Ray instance for the module; its workers import tests/ (the fake env, policy)."""
    assert ray is not None
    if ray.is_initialized():  # someone else's instance: our workers would lack the env var
        pytest.skip("a Ray instance is already running in this process")
    paths = [str(TESTS_DIR)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(paths), CRASH_MARKER_ENV: str(crash_marker)}})
    yield ray
    ray.shutdown()


def raw(out: Path) -> dict[str, Any]:
    return json.loads((out / "results.json").read_text())


@pytest.fixture(scope="module")
def local_run(tmp_path_factory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("local")
    run_bench(fake_config(), out, jobs=1, progress=False)
    return raw(out)


# ---------------------------------------------------------------------------------------------- ray


@needs_ray
def test_ray_records_equal_local_and_stream_into_the_file(tmp_path, ray_instance, local_run):
    seen = []

    def check(task, record):
        data = raw(tmp_path)  # rewritten (and parseable) after every trial
        seen.append(sum(len(g["trial_results"]) for g in data["grasps"]))

    executor = RayExecutor()
    run_bench(fake_config(), tmp_path, jobs=2, progress=False, executor=executor, on_trial=check)
    executor.close()
    assert ray_instance.is_initialized(), "an instance we did not start is left running"
    assert seen == list(range(1, 13))
    data = raw(tmp_path)
    assert data["timing"]["executor"] == "ray" and data["timing"]["jobs"] == 2
    assert strip_timing(data) == strip_timing(local_run)
    # and the rule of the fake env holds on what came back from the Ray workers
    for g in data["grasps"]:
        for t in g["trial_results"]:
            assert t["success"] is fake_rule(g["number"], first_uniform(t["seed"]))
    # the first trial's frame of every grasp came back through the object store
    assert sorted(p.name for p in (tmp_path / "frames").glob("*.png")) == [
        f"{g['number']:02d}_{g['id']}.png" for g in data["grasps"]]


@needs_ray
def test_ray_interrupted_then_resumed_equals_uninterrupted(tmp_path, ray_instance, local_run):
    stop_after_three = interrupt_after(3)

    with pytest.raises(BenchInterrupted):
        run_bench(fake_config(), tmp_path, jobs=2, progress=False, executor=RayExecutor(), on_trial=stop_after_three)
    saved = raw(tmp_path)
    assert saved["complete"] is False
    assert sum(len(g["trial_results"]) for g in saved["grasps"]) == 3
    ran = []
    run_bench(fake_config(), tmp_path, jobs=2, progress=False, resume=True, executor=RayExecutor(),
              on_trial=lambda task, rec: ran.append(task))
    assert len(ran) == 9
    assert strip_timing(raw(tmp_path)) == strip_timing(local_run)


@needs_ray
def test_a_lost_worker_loses_only_its_trial_which_ray_reruns(tmp_path, ray_instance, crash_marker, local_run):
    config = dataclasses.replace(fake_config(), policy="test_executors:crashing_policy")
    results = run_bench(config, tmp_path, jobs=2, progress=False, executor=RayExecutor())
    assert crash_marker.exists(), "a worker process died during a trial"
    assert results.complete
    # the re-run trial gives the same record: every grasp equals the uninterrupted local run
    assert strip_timing(results.to_dict())["grasps"] == strip_timing(local_run)["grasps"]


@needs_ray
@pytest.mark.slow
def test_ray_equals_local_with_the_real_env(tmp_path, ray_instance):
    """Real physics: a trial's record does not depend on which executor ran it."""
    config = BenchConfig(hand=str(hand_dir("default_hand")), grasp_ids=("lateral", "tip_pinch"), trials=1, seed=5)
    local = run_bench(config, tmp_path / "local", jobs=2, progress=False)
    remote = run_bench(config, tmp_path / "ray", jobs=2, progress=False, executor=RayExecutor())
    assert strip_timing(local.to_dict()) == strip_timing(remote.to_dict())
    assert local.timing["executor"] == "local" and remote.timing["executor"] == "ray"


@needs_ray
def test_cli_bench_with_ray_executor(tmp_path, ray_instance, local_run, capsys):
    out = tmp_path / "cli"
    code = main(["bench", "--env", FAKE_ENV, "--policy", FAKE_POLICY, "--grasps", ",".join(GRASPS),
                 "--trials", "3", "--seed", "7", "--jobs", "2", "--executor", "ray", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert strip_timing(raw(out)) == strip_timing(local_run)
    assert "coverage:" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------- no ray


@pytest.fixture
def no_ray(monkeypatch):
    """Make ``import ray`` fail as it does where the extra is not installed."""
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ModuleNotFoundError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    monkeypatch.setattr("handsim.bench.executors.importlib.import_module",
                        lambda name: fake_import(name))


def test_without_ray_the_ray_executor_is_a_one_line_hint(no_ray, tmp_path, capsys):
    with pytest.raises(MissingDependencyError, match=r'pip install "handsim\[ray\]"'):
        import_ray()
    with pytest.raises(MissingDependencyError):
        make_executor("ray")
    code = main(["bench", "--env", FAKE_ENV, "--policy", FAKE_POLICY, "--grasps", "1", "--trials", "1",
                 "--executor", "ray", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines() == [f"handsim bench: error: {RAY_HINT}"]
    assert not (tmp_path / "o").exists(), "nothing runs before the executor is known to work"


def test_local_executor_needs_no_ray(no_ray, tmp_path, local_run):
    assert isinstance(make_executor("local"), LocalExecutor)
    run_bench(fake_config(), tmp_path, jobs=2, progress=False, executor=make_executor("local"))
    assert raw(tmp_path)["timing"]["executor"] == "local"
    assert strip_timing(raw(tmp_path)) == strip_timing(local_run)


def test_executor_name_and_address_errors(capsys):
    with pytest.raises(UnknownNameError, match=r"unknown executor 'rey'; did you mean 'ray'\? valid: local, ray"):
        make_executor("rey")
    code = main(["bench", "--executor", "rey"])
    assert code == 2 and "invalid choice: 'rey'" in capsys.readouterr().err
    code = main(["bench", "--ray-address", "auto"])
    err = capsys.readouterr().err
    assert code == 2 and "--ray-address" in err and "--executor ray" in err


class _FakeRay:
    """What ``ray.init`` does with an address it cannot parse (ray 2.x: a ValueError)."""

    def __init__(self) -> None:
        self.inits: list[dict] = []

    def is_initialized(self) -> bool:
        return False

    def init(self, **kwargs):
        self.inits.append(kwargs)
        raise ValueError(f"Invalid address format: {kwargs['address']}")


def test_a_bad_ray_address_is_one_line_naming_it_and_the_forms_allowed(monkeypatch, tmp_path, capsys):
    # Review: --ray-address notanaddress raised ray.init's ValueError (a traceback, exit 3).
    fake = _FakeRay()
    monkeypatch.setattr("handsim.bench.executors.import_ray", lambda: fake)
    executor = RayExecutor(address="notanaddress")
    for call in (executor.default_jobs, lambda: list(executor.run([object()], 1))):
        with pytest.raises(ConfigurationError) as info:
            call()
        msg = str(info.value)
        assert "'notanaddress'" in msg and "host:port" in msg and '"auto"' in msg, msg
        assert "\n" not in msg
    assert [k["address"] for k in fake.inits] == ["notanaddress"] * 2
    executor.close()  # nothing was started: nothing to shut down
    code = main(["bench", "--env", FAKE_ENV, "--policy", FAKE_POLICY, "--grasps", "1", "--trials", "1",
                 "--executor", "ray", "--ray-address", "notanaddress", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "'notanaddress'" in err[0], err
    assert not (tmp_path / "o").exists(), "the address is tried before the output folder is made"
    # --jobs given: default_jobs is not needed for the run, the address is still tried first
    code = main(["bench", "--env", FAKE_ENV, "--policy", FAKE_POLICY, "--grasps", "1", "--trials", "1", "--jobs", "1",
                 "--executor", "ray", "--ray-address", "notanaddress", "--out", str(tmp_path / "o")])
    assert code == 2 and not (tmp_path / "o").exists()
    capsys.readouterr()
    code = main(["compare", "default_hand", "--env", FAKE_ENV, "--policy", FAKE_POLICY, "--grasps", "1", "--quick",
                 "--executor", "ray", "--ray-address", "notanaddress", "--out", str(tmp_path / "m")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "'notanaddress'" in err[0], err
    assert not (tmp_path / "m").exists()
    # review 18: a sweep spec's ray_address too (sweep made its output folder first)
    spec = tmp_path / "spec.toml"
    spec.write_text(f'out = "s"\nhands = ["default_hand"]\ngrasps = [1]\ntrials = 1\npolicy = "{FAKE_POLICY}"\n'
                    f'env = "{FAKE_ENV}"\nexecutor = "ray"\nray_address = "notanaddress"\n')
    code = main(["sweep", str(spec)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "'notanaddress'" in err[0], err
    assert not (tmp_path / "s").exists()


@needs_ray
def test_ray_trial_error_is_the_trials_own_one_line_error(tmp_path, ray_instance):
    """A trial's HandsimError comes back as itself, not RayTaskError with the remote traceback."""
    config = dataclasses.replace(fake_config(grasps=("medium_wrap", "adducted_thumb"), trials=1),
                                 policy="test_bench:nan_on_adducted_thumb_policy")
    # jobs=1: medium_wrap's trial finishes before adducted_thumb's (NaN actions) starts
    with pytest.raises(ConfigurationError) as info:
        run_bench(config, tmp_path, jobs=1, progress=False, executor=RayExecutor())
    assert type(info.value) is ConfigurationError
    msg = str(info.value)
    assert "\n" not in msg and "\x1b[" not in msg and "Traceback" not in msg, msg
    assert msg.startswith("adducted_thumb trial 0 (seed ") and "action: expected finite numbers" in msg
    assert msg.endswith(f"; 1 finished trials kept in {tmp_path / 'results.json'}")
    assert len(raw(tmp_path)["grasps"][0]["trial_results"]) == 1
