"""The physics world: one PyBullet DIRECT client with the protocol's fixed settings."""

from __future__ import annotations

from types import TracebackType

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pybullet_utils import bullet_client

from handsim._io import quiet_connect
from handsim._pybullet import pybullet
from handsim.errors import ConfigurationError, SimulationError
from handsim.tolerances import DEFAULT_PROTOCOL, Protocol

__all__ = ["World"]


class World:
    """One PyBullet physics client (DIRECT, headless) with reproducible settings.

    Every PyBullet call goes through :attr:`client`, a
    ``pybullet_utils.bullet_client.BulletClient`` that passes this world's
    ``physicsClientId``, so several worlds in one process never touch each other.

    :meth:`reset` empties the world and re-applies every setting the protocol relies on, so an
    episode started after ``reset()`` evolves bit for bit the same whatever ran before it in
    this world or in the process. Gravity points along world -z and can be switched off (the
    grasp phase may run with the object weightless).

    Bodies (:class:`~handsim.sim.ObjectBody`, :class:`~handsim.sim.HandBody`) created before a
    ``reset()`` are invalid afterwards; using one raises :class:`SimulationError`.

    Args:
        protocol: Time step, solver iterations and gravity magnitude (see
            :class:`handsim.tolerances.Protocol`).
        gravity: Whether gravity starts switched on.

    Example:
        >>> with World() as world:
        ...     world.step(10)
    """

    def __init__(self, protocol: Protocol = DEFAULT_PROTOCOL, *, gravity: bool = True) -> None:
        if not isinstance(protocol, Protocol):
            raise ConfigurationError(f"World(protocol=...): expected a handsim Protocol, got {type(protocol).__name__}")
        self.protocol = protocol
        with quiet_connect():  # PyBullet prints "argv[0]=" to stdout when it connects
            self._client: bullet_client.BulletClient | None = bullet_client.BulletClient(connection_mode=pybullet.DIRECT)
        self._generation = 0
        self._forces: dict[int, NDArray[np.float64]] = {}
        self._gravity = bool(gravity)
        self._step_count = 0
        self._time_s = 0.0
        self._timestep_s = protocol.timestep_s
        self._solver_iterations = protocol.solver_iterations
        self.reset(gravity=gravity)

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def client(self) -> bullet_client.BulletClient:
        """The PyBullet client bound to this world's physicsClientId."""
        if self._client is None:
            raise SimulationError("World is closed; create a new World")
        return self._client

    @property
    def client_id(self) -> int:
        """PyBullet's physicsClientId of this world."""
        return int(self.client._client)

    @property
    def generation(self) -> int:
        """Incremented by every :meth:`reset`; bodies remember the generation they were made in."""
        return self._generation

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._client is None

    def reset(
        self, *, gravity: bool = True, solver_iterations: int | None = None, timestep_s: float | None = None
    ) -> None:
        """Remove every body and restore the protocol's settings and time zero.

        Args:
            gravity: Whether gravity is on after the reset.
            solver_iterations: Constraint-solver iterations to start with (default
                ``protocol.solver_iterations``; see :meth:`set_solver_iterations`).
            timestep_s: Physics time step to start with [s] (default ``protocol.timestep_s``;
                see :meth:`set_timestep`).
        """
        c = self.client
        c.resetSimulation()
        # Set every engine parameter we depend on explicitly: resetSimulation keeps whatever a
        # previous episode (or another caller) set, and the broadphase pair order must not
        # depend on history (deterministicOverlappingPairs).
        c.setPhysicsEngineParameter(
            fixedTimeStep=self.protocol.timestep_s,
            numSubSteps=0,
            numSolverIterations=self.protocol.solver_iterations,
            deterministicOverlappingPairs=1,
            useSplitImpulse=1,
            enableConeFriction=1,
        )
        c.setTimeStep(self.protocol.timestep_s)
        self._timestep_s = self.protocol.timestep_s
        self._solver_iterations = self.protocol.solver_iterations
        self._generation += 1
        self._forces.clear()
        self._step_count = 0
        self._time_s = 0.0
        self.set_gravity(gravity)
        if solver_iterations is not None:
            self.set_solver_iterations(solver_iterations)
        if timestep_s is not None:
            self.set_timestep(timestep_s)

    @property
    def solver_iterations(self) -> int:
        """Constraint-solver iterations per step currently in force [-]."""
        return self._solver_iterations

    def set_solver_iterations(self, n: int) -> None:
        """Change the constraint-solver iterations per step (from the next step on).

        The protocol's ``solver_iterations`` is what every judged step runs with; a grasp phase
        against a fixed object may run with ``protocol.grasp_solver_iterations`` instead (see
        :class:`handsim.tolerances.Protocol`). :meth:`reset` restores the protocol's value.

        Args:
            n: Iterations (an int >= 1).
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ConfigurationError(f"World.set_solver_iterations(n): expected an int >= 1, got {n!r}")
        if int(n) != self._solver_iterations:
            self.client.setPhysicsEngineParameter(numSolverIterations=int(n))
            self._solver_iterations = int(n)

    @property
    def timestep_s(self) -> float:
        """Physics time step currently in force [s]."""
        return self._timestep_s

    def set_timestep(self, dt: float) -> None:
        """Change the physics time step (from the next step on).

        The protocol's ``timestep_s`` is what every judged step runs with; a grasp phase
        against a fixed object may run with ``protocol.grasp_timestep_s`` instead (see
        :class:`handsim.tolerances.Protocol`). :meth:`reset` restores the protocol's value.
        A hand's motors take their step-scaled gain when their targets are set
        (:meth:`HandBody.set_targets`), so set them again after changing the step, as
        :meth:`handsim.episode.GraspEpisode.release_object` does.

        Args:
            dt: Time step [s], a finite number > 0.
        """
        ok = isinstance(dt, (int, float, np.floating)) and not isinstance(dt, bool) and np.isfinite(dt) and dt > 0
        if not ok:
            raise ConfigurationError(f"World.set_timestep(dt): expected a finite number > 0 [s], got {dt!r}")
        if float(dt) != self._timestep_s:
            self.client.setPhysicsEngineParameter(fixedTimeStep=float(dt))
            self.client.setTimeStep(float(dt))
            self._timestep_s = float(dt)

    def close(self) -> None:
        """Disconnect from PyBullet (idempotent)."""
        if self._client is not None:
            try:
                self._client.disconnect()
            finally:
                self._client = None

    def __enter__(self) -> World:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __del__(self) -> None:  # a forgotten World must not leak its physics server
        try:
            self.close()
        except Exception:
            pass

    # -- gravity and time ------------------------------------------------------------------
    @property
    def gravity_enabled(self) -> bool:
        """Whether gravity (``protocol.gravity`` along world -z) is on."""
        return self._gravity

    def set_gravity(self, enabled: bool) -> None:
        """Switch gravity along world -z on or off.

        Args:
            enabled: True for ``-protocol.gravity`` [m/s^2] along z, False for weightless.
        """
        self._gravity = bool(enabled)
        self.client.setGravity(0.0, 0.0, -self.protocol.gravity if self._gravity else 0.0)

    @property
    def step_count(self) -> int:
        """Physics steps taken since the last :meth:`reset`."""
        return self._step_count

    @property
    def time_s(self) -> float:
        """Simulated time since the last :meth:`reset` [s]."""
        return self._time_s

    def step(self, n: int = 1) -> None:
        """Advance the physics by ``n`` fixed time steps.

        External forces registered with :meth:`set_external_force` are applied before every
        step (PyBullet clears external forces after each ``stepSimulation``).

        Args:
            n: Number of steps (>= 0).
        """
        if not isinstance(n, (int, np.integer)) or n < 0:
            raise ConfigurationError(f"World.step(n): expected an int >= 0, got {n!r}")
        c = self.client
        # Bound methods fetched once: BulletClient builds a partial on every attribute access.
        step = c.stepSimulation
        self._time_s += int(n) * self._timestep_s
        if not self._forces:
            for _ in range(int(n)):
                step()
                self._step_count += 1
            return
        base_pose, apply = c.getBasePositionAndOrientation, c.applyExternalForce
        for _ in range(int(n)):
            for body_id, force in self._forces.items():
                apply(body_id, -1, force.tolist(), base_pose(body_id)[0], pybullet.WORLD_FRAME)
            step()
            self._step_count += 1

    # -- used by the bodies ----------------------------------------------------------------
    def set_external_force(self, body_id: int, force: ArrayLike | None) -> None:
        """Apply a world-frame force [N] at a body's centre of mass on every following step.

        Args:
            body_id: PyBullet body unique id.
            force: Force, shape (3,) [N], world frame; ``None`` removes it.
        """
        if force is None:
            self._forces.pop(body_id, None)
            return
        f = np.asarray(force, dtype=np.float64)
        if f.shape != (3,) or not np.all(np.isfinite(f)):
            raise ConfigurationError(f"external force: expected 3 finite numbers [N], got {force!r}")
        self._forces[body_id] = f.copy()

    def _forget(self, body_id: int) -> None:
        self._forces.pop(body_id, None)

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"client {self.client_id}, t={self.time_s:.4f} s"
        return f"World({state}, gravity={'on' if self._gravity else 'off'})"
