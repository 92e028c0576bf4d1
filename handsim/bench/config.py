"""What one benchmark run is: hand, policy, grasps, trials, seeds and the pass thresholds.

A grasp type counts as **achieved** by a hand + policy when at least
:data:`SUCCESS_THRESHOLD` (one half) of its trials succeed (``info["is_success"]`` of the env
in benchmark mode: held through the six-direction disturbance protocol, contact signature
matched, penetration within the limit; see :mod:`handsim.episode`). With the default three
trials that is two out of three.

A later run *regresses* against a baseline when its coverage drops, or when some grasp's
success rate drops by more than :data:`BASELINE_TOLERANCE` (0.34: more than one trial of
three).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np

from handsim.errors import ConfigurationError
from handsim.policies import DEFAULT_FACTORY, parse_policy_spec
from handsim.policies import resolve_factory as load_policy_factory

__all__ = [
    "BASELINE_TOLERANCE",
    "DEFAULT_ENV_ID",
    "DEFAULT_POLICY",
    "DEFAULT_TRIALS",
    "SUCCESS_THRESHOLD",
    "BenchConfig",
    "load_policy_factory",
    "parse_policy_spec",
    "trial_seed",
]

#: Fraction of a grasp's trials that must succeed for the grasp to count as achieved [-].
SUCCESS_THRESHOLD = 0.5
#: Largest success-rate drop against a baseline that is not a regression [-] (one trial of three).
BASELINE_TOLERANCE = 0.34
#: The policy factory the benchmark runs unless told otherwise (``module:callable``).
DEFAULT_POLICY = DEFAULT_FACTORY
#: The Gymnasium env every trial runs in.
DEFAULT_ENV_ID = "handsim/Grasp-v0"
#: Trials per grasp type of a full run (``--quick`` runs one).
DEFAULT_TRIALS = 3


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """Everything that decides a benchmark's outcome (and nothing that does not, like jobs).

    Attributes:
        hand: The hand folder (resolved absolute path, as a string).
        policy: The policy factory, ``"module:callable"``; ``factory(env) -> policy``.
        grasp_ids: The grasp types to run, in taxonomy number order.
        trials: Trials per grasp type (>= 1).
        seed: Base seed; every trial's seed is :func:`trial_seed` of it.
        success_threshold: See :data:`SUCCESS_THRESHOLD`.
        env_id: The Gymnasium env id.
        env_kwargs: Extra keyword arguments for ``gymnasium.make`` (recorded; none by default).
    """

    hand: str
    policy: str = DEFAULT_POLICY
    grasp_ids: tuple[str, ...] = ()
    trials: int = DEFAULT_TRIALS
    seed: int = 0
    success_threshold: float = SUCCESS_THRESHOLD
    env_id: str = DEFAULT_ENV_ID
    env_kwargs: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.trials, bool) or not isinstance(self.trials, int) or self.trials < 1:
            raise ConfigurationError(f"trials: expected an integer >= 1, got {self.trials!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigurationError(f"seed: expected an integer >= 0, got {self.seed!r}")
        if not 0.0 < self.success_threshold <= 1.0:
            raise ConfigurationError(f"success_threshold: expected a number in (0, 1], got {self.success_threshold!r}")
        if not self.grasp_ids:
            raise ConfigurationError("grasp_ids: expected at least one grasp id, got none")
        parse_policy_spec(self.policy)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the protocol numbers are added by the runner, from the env)."""
        return {
            "env_id": self.env_id,
            "env_kwargs": {name: _recorded(value) for name, value in self.env_kwargs},
            "grasps": list(self.grasp_ids),
            "trials": self.trials,
            "seed": self.seed,
            "success_threshold": self.success_threshold,
        }


def _recorded(value: Any) -> Any:
    """An env keyword argument as ``results.json`` records it: a dataclass instance (a
    :class:`~handsim.tolerances.Protocol`, :class:`~handsim.episode.EpisodeSettings`) as its fields,
    with JSON's lists for tuples, so that a resumed run's configuration compares equal."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json.loads(json.dumps(dataclasses.asdict(value)))
    return value


def trial_seed(seed: int, grasp_number: int, trial: int) -> int:
    """The seed of one trial, a function of the base seed, the grasp's number and the trial index only.

    The three are mixed by :class:`numpy.random.SeedSequence`, so results do not depend on
    how trials are spread over worker processes, and neighbouring seeds give unrelated streams.

    Args:
        seed: The run's base seed (>= 0).
        grasp_number: The taxonomy number, 1..33.
        trial: The trial index, from 0.

    Returns:
        A seed in [0, 2**32).
    """
    return int(np.random.SeedSequence([seed, grasp_number, trial]).generate_state(1, dtype=np.uint32)[0])


