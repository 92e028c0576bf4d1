"""The 33-grasp coverage benchmark: run a hand + policy through every taxonomy grasp type.

Layers (data flows down the list): :mod:`~handsim.bench.config` (what a run is, thresholds,
seeds), :mod:`~handsim.bench.runner` (trials in a process pool, resumable ``results.json``),
:mod:`~handsim.bench.results` (the file: build, write atomically, load),
:mod:`~handsim.bench.report` (table, ``report.md``, ``junit.xml``),
:mod:`~handsim.bench.pictures` (contact sheet, coverage chart),
:mod:`~handsim.bench.compare` (against a baseline), :mod:`~handsim.bench.executors` (where
trials run: a local process pool or Ray), :mod:`~handsim.bench.matrix` (hands x 33 types
coverage matrix for ``handsim compare`` and ``handsim sweep``). The ``handsim bench`` command
(:mod:`handsim.cli`) is a thin layer over them.

Importing this package does not import PyBullet; running trials does (in the env).
"""

from handsim.bench.compare import Comparison, compare_results
from handsim.bench.config import (
    BASELINE_TOLERANCE,
    DEFAULT_ENV_ID,
    DEFAULT_POLICY,
    DEFAULT_TRIALS,
    SUCCESS_THRESHOLD,
    BenchConfig,
    load_policy_factory,
    trial_seed,
)
from handsim.bench.executors import EXECUTORS, LocalExecutor, RayExecutor, make_executor
from handsim.bench.matrix import CoverageMatrix, build_matrix, load_matrix, write_matrix
from handsim.bench.report import (
    coverage_line,
    format_table,
    junit_xml,
    report_markdown,
    write_outputs,
)
from handsim.bench.results import (
    RESULTS_FILE,
    BenchResults,
    GraspOutcome,
    aggregate,
    load_results,
    strip_timing,
    write_json_atomic,
)
from handsim.bench.runner import BenchInterrupted, TrialTask, run_bench, run_trial

__all__ = [
    "BASELINE_TOLERANCE",
    "DEFAULT_ENV_ID",
    "DEFAULT_POLICY",
    "DEFAULT_TRIALS",
    "EXECUTORS",
    "RESULTS_FILE",
    "SUCCESS_THRESHOLD",
    "BenchConfig",
    "BenchInterrupted",
    "BenchResults",
    "Comparison",
    "CoverageMatrix",
    "GraspOutcome",
    "LocalExecutor",
    "RayExecutor",
    "TrialTask",
    "aggregate",
    "build_matrix",
    "compare_results",
    "coverage_line",
    "format_table",
    "junit_xml",
    "load_matrix",
    "load_policy_factory",
    "load_results",
    "make_executor",
    "report_markdown",
    "run_bench",
    "run_trial",
    "strip_timing",
    "trial_seed",
    "write_json_atomic",
    "write_matrix",
    "write_outputs",
]
