"""Gymnasium environments of handsim.

``register_envs()`` registers ``handsim/Grasp-v0`` with the lazy entry point
``"handsim.envs.grasp_env:GraspEnv"``: registering imports neither PyBullet nor the env module;
``gymnasium.make("handsim/Grasp-v0", ...)`` loads them when an env is built.

``GraspEnv`` and ``RewardWeights`` are reachable as attributes of this package; they are
imported on first access (module ``__getattr__``), so ``import handsim.envs`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from handsim.tolerances import DEFAULT_PROTOCOL

if TYPE_CHECKING:  # for type checkers only: the real import is lazy (see __getattr__)
    from handsim.envs.grasp_env import GraspEnv, RewardWeights

__all__ = [
    "DEFAULT_MAX_EPISODE_STEPS",
    "GRASP_ENTRY_POINT",
    "GRASP_ENV_ID",
    "MAX_EPISODE_STEPS_MARGIN",
    "GraspEnv",
    "RewardWeights",
    "register_envs",
]

#: The registered id of the grasp environment.
GRASP_ENV_ID = "handsim/Grasp-v0"
#: Where gymnasium finds the class (imported only by ``gymnasium.make``).
GRASP_ENTRY_POINT = "handsim.envs.grasp_env:GraspEnv"
#: Extra control steps the TimeLimit allows after the grasp phase. The env terminates by itself
#: at the end of the grasp phase, so the TimeLimit is a safety net that never fires with the
#: default protocol; the margin keeps it from racing the env's own termination.
MAX_EPISODE_STEPS_MARGIN = 5
# EpisodeSettings().control_hz, repeated here because handsim.episode imports PyBullet;
# tests/test_env.py checks that the two agree.
_DEFAULT_CONTROL_HZ = 25.0
#: TimeLimit of the registered env: the default grasp phase (``Protocol.grasp_duration_s`` x
#: 25 Hz = 25 control steps) plus :data:`MAX_EPISODE_STEPS_MARGIN`.
DEFAULT_MAX_EPISODE_STEPS = (
    max(1, int(round(DEFAULT_PROTOCOL.grasp_duration_s * _DEFAULT_CONTROL_HZ))) + MAX_EPISODE_STEPS_MARGIN
)

_LAZY = {"GraspEnv", "RewardWeights"}


def register_envs() -> None:
    """Register ``handsim/Grasp-v0`` with gymnasium (idempotent; imports no PyBullet).

    Calling it again, or after another process state registered the id, does nothing, so
    ``import handsim`` may call it unconditionally.
    """
    from gymnasium.envs.registration import register, registry

    if GRASP_ENV_ID in registry:
        return
    # Gymnasium's passive env checker is off by default: in gymnasium 1.4 a first reset() that
    # raises (a bad seed or grasp, which this env refuses with a clear error) leaves the checker
    # without its reset data, and every later step() then fails with "cannot unpack
    # non-iterable NoneType". The env passes gymnasium's full check_env (tests/test_env.py);
    # make(..., disable_env_checker=False) still turns the passive checker on.
    register(
        id=GRASP_ENV_ID,
        entry_point=GRASP_ENTRY_POINT,
        max_episode_steps=DEFAULT_MAX_EPISODE_STEPS,
        disable_env_checker=True,
    )


def __getattr__(name: str) -> Any:
    # Lazy attributes: building the env class imports PyBullet, which plain registration must not.
    if name in _LAZY:
        from handsim.envs import grasp_env

        return getattr(grasp_env, name)
    raise AttributeError(f"module 'handsim.envs' has no attribute {name!r}")
