"""Where benchmark trials run: a local process pool (the default) or a Ray cluster.

An executor takes the list of :class:`~handsim.bench.runner.TrialTask` still to run and
yields ``(task, record, frame)`` for each trial **in completion order**, as it finishes; the
runner records each one and rewrites ``results.json`` atomically before taking the next. So a
killed driver loses only the trials in flight, and ``--resume`` runs the rest. Every trial's
outcome depends only on its task (seeded, fresh physics world per episode), so all executors
give the same records (timing aside) for the same configuration.

* ``local`` (:class:`LocalExecutor`): a ``multiprocessing`` pool of ``jobs`` processes
  (``jobs=1`` runs in this process). Needs nothing beyond handsim.
* ``ray`` (:class:`RayExecutor`): every trial is one Ray task (1 CPU), with at most ``jobs``
  in flight. ``ray`` is imported only when a run starts; without it a one-line
  :class:`~handsim.errors.MissingDependencyError` says ``pip install "handsim[ray]"``.
  With ``address`` it connects to an existing cluster (``ray.init(address=...)``) and
  disconnects at the end; without, it uses the Ray instance this process is already connected
  to, or else starts a local one with ``num_cpus=jobs`` and shuts it down at the end. Ray
  retries a trial whose worker died (``max_retries``); a trial is deterministic, so a retry
  gives the same record. Frames come back through Ray's object store. An exception raised in
  a trial is re-raised here as itself (not Ray's ``RayTaskError`` with the remote traceback
  in its message), so errors read the same as with the local pool.

  On a cluster every node must see the hand folder (and the policy's module) at the same
  path: a shared file system, or a Ray ``runtime_env`` set up by whoever starts the cluster.
  A local instance started here gets this process's ``sys.path`` as ``PYTHONPATH`` so a
  policy or env importable here is importable in its workers (as with the local pool).

Example::

    from handsim.bench.executors import make_executor
    results = run_bench(config, "out", jobs=2, executor=make_executor("ray"))
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import multiprocessing
import os
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import NDArray

from handsim.errors import (
    ConfigurationError,
    MissingDependencyError,
    UnknownNameError,
    one_line,
    suggest,
)

if TYPE_CHECKING:
    from handsim.bench.runner import TrialTask

__all__ = [
    "DEFAULT_EXECUTOR",
    "EXECUTORS",
    "RAY_HINT",
    "Executor",
    "LocalExecutor",
    "RayExecutor",
    "TrialOutput",
    "import_ray",
    "make_executor",
]

#: The executor names ``--executor`` accepts.
EXECUTORS = ("local", "ray")
DEFAULT_EXECUTOR = "local"
#: The one-line hint when ``ray`` is missing.
RAY_HINT = 'the ray executor needs Ray: pip install "handsim[ray]" (or use --executor local)'
#: Ray re-runs a trial whose worker process died this many times before giving up.
RAY_MAX_RETRIES = 3

#: What an executor yields per trial: the task, its record, its last frame (H, W, 3) uint8 or None.
TrialOutput = tuple["TrialTask", dict[str, Any], "NDArray[np.uint8] | None"]


class Executor(Protocol):
    """Runs trials and yields their outputs in completion order."""

    #: The name recorded in ``results.json`` timing.
    name: str

    def default_jobs(self) -> int:
        """Concurrent trials when the caller does not say (local: CPU count; Ray: cluster CPUs)."""
        ...

    def run(self, tasks: Sequence[TrialTask], jobs: int) -> Iterator[TrialOutput]:
        """Run ``tasks`` with at most ``jobs`` at a time, yielding each as it finishes.

        Closing the iterator early (an exception or Ctrl-C in the consumer) stops the rest.
        """
        ...

    def close(self) -> None:
        """Release what the executor holds (Ray: disconnect / shut down what it started)."""
        ...


# ----------------------------------------------------------------------------------------------
# local


class LocalExecutor:
    """A process pool on this machine (``jobs=1``: in this process, no pool)."""

    name = "local"

    def default_jobs(self) -> int:
        """The CPU count."""
        return os.cpu_count() or 1

    def run(self, tasks: Sequence[TrialTask], jobs: int) -> Iterator[TrialOutput]:
        """See :meth:`Executor.run`."""
        from handsim.bench.runner import _worker_init, _worker_run, close_worker_envs

        if not tasks:
            return
        if jobs == 1:
            try:
                for task in tasks:
                    yield _worker_run(task)
            finally:
                close_worker_envs()
            return
        pool = multiprocessing.get_context().Pool(jobs, initializer=_worker_init)
        try:
            # chunksize 1: a trial is the unit of work, so the cores stay busy to the end.
            yield from pool.imap_unordered(_worker_run, tasks, chunksize=1)
            pool.close()
        except BaseException:  # also GeneratorExit when the runner stops early
            pool.terminate()
            raise
        finally:
            pool.join()

    def close(self) -> None:
        """Nothing to release (the pool lives only inside :meth:`run`)."""


# ----------------------------------------------------------------------------------------------
# ray


def import_ray() -> Any:
    """Import ``ray``, or raise a one-line :class:`MissingDependencyError` with the install hint."""
    try:
        return importlib.import_module("ray")
    except ImportError as exc:
        raise MissingDependencyError(RAY_HINT) from exc


def _ray_trial(task: TrialTask) -> TrialOutput:
    from handsim.bench.runner import _worker_run

    # Ray workers are long-lived: the env cached by the runner is reused by the next trial of
    # the same grasp landing on this worker, like a pool process.
    return _worker_run(task)


class RayExecutor:
    """Trials as Ray tasks, on an existing cluster (``address``) or a local instance.

    Args:
        address: A Ray cluster address (``"ray://host:10001"``, ``"host:6379"``, ``"auto"``); None
            uses the instance this process is connected to, or starts a local one.
        init_kwargs: Extra ``ray.init`` keyword arguments (e.g. a ``runtime_env``).
    """

    name = "ray"

    def __init__(self, address: str | None = None, init_kwargs: dict[str, Any] | None = None) -> None:
        self.address = address
        self.init_kwargs = dict(init_kwargs or {})
        self.startup_s: float | None = None  # how long ray.init took here (None: already connected)
        self._ray: Any = None
        self._owned = False  # we called ray.init, so we call ray.shutdown

    def _connect(self, jobs: int | None) -> Any:
        """Ray, connected (``ray.init`` on first use).

        Raises:
            ConfigurationError: ``address`` is malformed or no cluster answers there (one line
                naming the address and the forms allowed).
        """
        import time

        ray = import_ray()
        self._ray = ray
        if ray.is_initialized():
            return ray
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "logging_level": logging.ERROR}
        if self.address is not None:
            kwargs["address"] = self.address
        else:
            kwargs["num_cpus"] = jobs or os.cpu_count() or 1
            # Workers of a fresh local instance import what this process can (policy and env modules).
            paths = [p for p in ([os.environ.get("PYTHONPATH", "")] + sys.path) if p]
            kwargs["runtime_env"] = {"env_vars": {"PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}}
        kwargs.update(self.init_kwargs)
        start = time.perf_counter()
        if self.address is None:
            ray.init(**kwargs)
        else:
            try:
                ray.init(**kwargs)
            except (ValueError, ConnectionError) as exc:  # "Invalid address format", nobody there
                raise ConfigurationError(
                    f"ray address {self.address!r}: cannot connect ({one_line(exc)}); expected the address of a "
                    'running Ray cluster: host:port (e.g. 127.0.0.1:6379), ray://host:10001, or "auto"') from None
        self.startup_s = time.perf_counter() - start
        self._owned = True
        return ray

    def default_jobs(self) -> int:
        """The cluster's CPUs when connecting to one; else this machine's CPU count.

        Raises:
            ConfigurationError: The cluster's address is malformed or nobody answers there.
        """
        if self.address is None and not (self._ray is not None and self._ray.is_initialized()):
            return os.cpu_count() or 1
        ray = self._connect(None)
        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    def run(self, tasks: Sequence[TrialTask], jobs: int) -> Iterator[TrialOutput]:
        """See :meth:`Executor.run`. At most ``jobs`` trials are submitted at a time.

        Raises:
            ConfigurationError: The cluster's address is malformed or nobody answers there.
        """
        if not tasks:
            return
        ray = self._connect(jobs)
        remote = ray.remote(num_cpus=1, max_retries=RAY_MAX_RETRIES)(_ray_trial)
        pending = list(reversed(tasks))  # pop() from the end keeps the planned order
        in_flight: list[Any] = []
        try:
            while pending or in_flight:
                while pending and len(in_flight) < jobs:
                    in_flight.append(remote.remote(pending.pop()))
                done, in_flight = ray.wait(in_flight, num_returns=1)
                try:
                    output = ray.get(done[0])
                except ray.exceptions.RayTaskError as exc:
                    # Ray's error repeats the worker's whole traceback (with colour codes) in its
                    # message; the trial's own exception is what the user must see (one line for
                    # a HandsimError, exit 2), as with the local pool.
                    cause = getattr(exc, "cause", None)
                    if isinstance(cause, BaseException):
                        raise cause from None
                    raise
                yield output
        finally:
            # Stopped early (Ctrl-C, an error in the consumer): the trials in flight are lost.
            for ref in in_flight:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)

    def close(self) -> None:
        """Shut down the local instance we started, or disconnect from the cluster we joined."""
        if self._owned and self._ray is not None:
            self._ray.shutdown()
        self._owned = False


def make_executor(name: str = DEFAULT_EXECUTOR, *, ray_address: str | None = None) -> Executor:
    """The executor called ``name`` (see :data:`EXECUTORS`).

    ``ray`` is not imported here (only when trials run), so a bad name or a missing extra shows
    up before any work: :func:`import_ray` checks the extra.

    Raises:
        UnknownNameError: ``name`` is not an executor.
        ConfigurationError: ``ray_address`` with the local executor.
        MissingDependencyError: ``ray`` asked for and not installed.
    """
    if name not in EXECUTORS:
        raise UnknownNameError(suggest(str(name), EXECUTORS, "executor"))
    if name == "local":
        if ray_address is not None:
            raise ConfigurationError(f"ray address {ray_address!r} given with the local executor; "
                                     "expected --executor ray with --ray-address")
        return LocalExecutor()
    import_ray()
    return RayExecutor(address=ray_address)
