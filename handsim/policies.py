"""Policies for ``handsim/Grasp-v0`` and the factory protocol the benchmark uses.

A **policy factory** is any callable ``factory(env) -> policy`` where ``policy(obs) -> action``
returns a float32 action in the env's action space and, optionally, ``policy.reset(info)`` is
called after every ``env.reset`` (the protocol, with the other ``reset`` signatures the
benchmark accepts, is :class:`Policy`). Factories are named ``"module:attribute"``
(:func:`resolve_factory`); handsim ships:

* ``handsim.policies:scripted``: :class:`ScriptedGraspPolicy`, the hand's grasp data played
  open-loop (pre-shape, then close, then hold);
* ``handsim.policies:uniform``: uniformly random actions from the env's action space (for
  throughput measurements).

This module imports no PyBullet: it works through the env object it is given.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import math
import types
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from handsim.errors import ConfigurationError, UnknownNameError, one_line, suggest

#: The benchmark's default policy factory: the hand's scripted grasp policy.
DEFAULT_FACTORY = "handsim.policies:scripted"

__all__ = [
    "CLOSE_FRACTION",
    "DEFAULT_FACTORY",
    "Policy",
    "PolicyFactory",
    "ScriptedGraspPolicy",
    "UniformPolicy",
    "parse_policy_spec",
    "resolve_factory",
    "scripted",
    "uniform",
]

#: What ``--policy handsim.policies:NAME`` may name (the "valid" list of an unknown name); a
#: module of your own may set ``__policy_factories__`` too, else its ``__all__`` or public
#: callables are listed.
__policy_factories__ = ("scripted", "uniform", "ScriptedGraspPolicy", "UniformPolicy")

#: Fraction of the grasp phase over which the scripted policy moves from pre-shape to close
#: targets; it holds the close targets for the rest (a slow close lets the object settle
#: against the first fingers before the others arrive).
CLOSE_FRACTION = 0.6


@runtime_checkable
class Policy(Protocol):
    """What a policy factory returns: ``policy(obs) -> action``, and optionally ``reset``.

    * ``policy(obs)``: the action for the coming step, finite numbers of the env's action
      shape (float32; entries outside [-1, 1] are clipped by the env, NaN/inf entries are an
      error that stops the benchmark run, naming the trial).
    * ``policy.reset(info)`` (optional): called after every ``env.reset(seed=...)`` with the
      reset's ``info`` dict (``info["grasp_id"]`` is the episode's grasp type), as in
      ``obs, info = env.reset(seed=0); policy.reset(info)``. The benchmark
      (:mod:`handsim.bench.runner`) passes arguments by the parameters' names: ``obs`` (or
      ``observation``) gets the first observation, ``info`` the info; an otherwise named
      required parameter gets the info when it is the only one, and ``(obs, info)`` when there
      are two (``env.reset``'s order); ``reset()`` and ``reset(*args)`` get nothing / the info.
      Parameters with defaults and other names keep their defaults.

      A keyword-only ``obs``/``observation``/``info`` parameter gets its value by name, and
      ``reset(**kwargs)`` gets ``obs=`` and ``info=``.

    A policy keeps its own state between steps; the env is its only link to the simulation.
    The benchmark builds one policy per worker process and grasp type, and calls ``reset``
    before each trial. **A stochastic policy must restart its randomness from the trial**: the
    benchmark's reset info carries the trial's seed as ``info["trial_seed"]``, and the env's
    ``action_space`` is seeded with it before ``reset``; otherwise a trial's actions depend on
    the trials its worker ran before, and results change with ``--jobs`` and ``--resume``.
    """

    def __call__(self, obs: NDArray[np.float32]) -> NDArray[np.float32]:  # pragma: no cover - protocol
        ...


#: ``factory(env) -> policy``.
PolicyFactory = Callable[[Any], Policy]


def _grasp_env(env: Any) -> Any:
    from handsim.envs.grasp_env import GraspEnv  # lazy: the env module imports PyBullet

    inner = getattr(env, "unwrapped", env)
    if not isinstance(inner, GraspEnv):
        raise ConfigurationError(
            f"expected a handsim GraspEnv (gymnasium.make('handsim/Grasp-v0') or a wrapper of one), got {type(inner).__name__}"
        )
    return inner


class ScriptedGraspPolicy:
    """Plays the hand's grasp data for the env's current target grasp, open loop.

    For control step ``k = 1 .. K`` of the grasp phase (K = ``episode.grasp_steps``) the joint
    targets are ``preshape + alpha_k (close - preshape)`` with
    ``alpha_k = min(1, k / ceil(CLOSE_FRACTION * K))``: a linear close over the first ~60 % of
    the grasp phase, then hold. The plan is the env's :meth:`GraspEpisode.plan_for` the episode's
    grasp type (the rest pose when the hand has no data for it), read from the env after each
    reset, so it works with ``grasp=None``. The step index is the episode's own control-step
    counter, so forgetting :meth:`reset` does not desynchronise it.

    Args:
        env: A ``handsim/Grasp-v0`` env (wrapped or not); absolute or delta action mode.
        close_fraction: Fraction of the grasp phase spent closing, in (0, 1].

    Raises:
        ConfigurationError: ``env`` is not a GraspEnv, or a bad ``close_fraction``.
    """

    def __init__(self, env: Any, close_fraction: float = CLOSE_FRACTION) -> None:
        self.env = _grasp_env(env)
        if not (isinstance(close_fraction, (int, float)) and math.isfinite(close_fraction) and 0 < close_fraction <= 1):
            raise ConfigurationError(f"close_fraction: expected a number in (0, 1], got {close_fraction!r}")
        self.close_fraction = float(close_fraction)
        self._grasp_id: str | None = None
        self._pre = np.zeros(0)
        self._close = np.zeros(0)

    def reset(self, info: Any = None) -> None:
        """Read the new episode's plan from the env (call after ``env.reset``; ``info`` unused)."""
        ep = self.env.episode
        if ep.plan is None or self.env.grasp is None:
            raise ConfigurationError("ScriptedGraspPolicy.reset(): the env has not been reset yet")
        self._grasp_id = self.env.grasp.id
        self._pre = ep.plan.preshape.copy()
        self._close = ep.plan.close.copy()

    def targets(self, step: int) -> NDArray[np.float64]:
        """Joint targets [rad] for control step ``step`` (1-based) of the grasp phase."""
        ramp = max(1, math.ceil(self.close_fraction * self.env.episode.grasp_steps))
        alpha = min(1.0, step / ramp)
        return self._pre + alpha * (self._close - self._pre)

    def __call__(self, obs: ArrayLike | None = None) -> NDArray[np.float32]:
        """The action for the coming step (``obs`` is not needed: the policy is open loop)."""
        env = self.env
        if env.grasp is None:
            raise ConfigurationError("ScriptedGraspPolicy: call env.reset() first")
        if self._grasp_id != env.grasp.id or self._pre.shape != env.lower.shape:
            self.reset()
        return env.targets_to_action(self.targets(env.episode.control_step + 1))


class UniformPolicy:
    """Uniformly random actions from the env's action space (seed with ``seed``; the benchmark
    reseeds it with each trial's seed, ``info["trial_seed"]``)."""

    def __init__(self, env: Any, seed: int | None = None) -> None:
        self.space = env.action_space
        self.space.seed(seed)

    def reset(self, info: Any = None) -> None:
        """Restart the random stream from ``info["trial_seed"]`` when the info has one (the
        benchmark's trials), so that a trial's actions do not depend on the trials before it."""
        if isinstance(info, Mapping) and info.get("trial_seed") is not None:
            self.space.seed(int(info["trial_seed"]))

    def __call__(self, obs: ArrayLike | None = None) -> NDArray[np.float32]:
        """A sample of the action space."""
        return self.space.sample()


def scripted(env: Any) -> ScriptedGraspPolicy:
    """Factory: the scripted grasp policy of ``env`` (``handsim.policies:scripted``)."""
    return ScriptedGraspPolicy(env)


def uniform(env: Any) -> UniformPolicy:
    """Factory: uniform random actions, seeded 0 (``handsim.policies:uniform``)."""
    return UniformPolicy(env, seed=0)


def parse_policy_spec(spec: str) -> tuple[str, str]:
    """Split ``"module:callable"`` into its two parts.

    Raises:
        ConfigurationError: If the spec is not of that form.
    """
    if not isinstance(spec, str) or spec.count(":") != 1:
        raise ConfigurationError(f"policy: expected MODULE:CALLABLE (e.g. {DEFAULT_FACTORY}), got {spec!r}")
    module, attr = spec.split(":")
    if not module or not attr or not all(part.isidentifier() for part in module.split(".") + attr.split(".")):
        raise ConfigurationError(f"policy: expected MODULE:CALLABLE (e.g. {DEFAULT_FACTORY}), got {spec!r}")
    return module, attr


def _factory_names(obj: Any) -> list[str]:
    """The names a policy spec may pick in ``obj``: its ``__policy_factories__`` when it has
    one, else its ``__all__`` callables when it has ``__all__``, else the public callables
    defined in it (not the names it imported, like ``np``), for a module; the public callable
    attributes of anything else. Protocol classes (which cannot be instantiated) are left out."""

    def factory_like(value: Any) -> bool:  # functions and classes; not typing aliases like PolicyFactory
        if inspect.isclass(value) and getattr(value, "_is_protocol", False):
            return False
        return inspect.isroutine(value) or inspect.isclass(value) or isinstance(value, functools.partial)

    names = getattr(obj, "__policy_factories__", None)
    if not isinstance(names, (list, tuple)):
        names = getattr(obj, "__all__", None)
    if isinstance(names, (list, tuple)):
        return [n for n in names if isinstance(n, str) and factory_like(getattr(obj, n, None))]
    if isinstance(obj, types.ModuleType):
        return [n for n, v in vars(obj).items()
                if not n.startswith("_") and factory_like(v) and getattr(v, "__module__", None) == obj.__name__]
    return [n for n in dir(obj) if not n.startswith("_") and factory_like(getattr(obj, n, None))]


def resolve_factory(spec: str | Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Import a policy factory named ``"module:callable"`` (a callable is returned as is).

    A module that exists but fails while importing (a SyntaxError, an ImportError of its own
    dependencies, any exception at import time) is a :class:`ConfigurationError` naming the
    spec and the cause (type and message; the original is its ``__cause__``).

    Raises:
        ConfigurationError: A malformed spec, or the module fails while importing.
        UnknownNameError: The module cannot be found, or has no such callable (close matches
            among the callables the module defines, or its ``__all__``).
    """
    if callable(spec):
        return spec
    module_name, attr = parse_policy_spec(spec)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only when the missing module is the one asked for (or a parent package of it).
        if exc.name is None or not (module_name == exc.name or module_name.startswith(exc.name + ".")):
            # The module exists; an import inside it fails.
            raise ConfigurationError(
                f"policy {spec!r}: importing module {module_name!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
        raise UnknownNameError(
            f"policy {spec!r}: no module {module_name!r} can be imported; expected MODULE:CALLABLE "
            f"with an importable module, e.g. {DEFAULT_FACTORY}"
        ) from None
    except Exception as exc:  # the module exists but its code fails: name the cause, one line
        raise ConfigurationError(
            f"policy {spec!r}: importing module {module_name!r} failed: {type(exc).__name__}: {one_line(exc)}"
        ) from exc
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UnknownNameError(f"policy {spec!r}: " + suggest(part, _factory_names(obj), "factory"))
        obj = getattr(obj, part)
    if not callable(obj):
        raise UnknownNameError(f"policy {spec!r}: {attr} is a {type(obj).__name__}, expected a callable factory(env)")
    return obj
