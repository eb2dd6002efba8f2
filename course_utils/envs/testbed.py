"""The k-armed testbed (Sutton & Barto, section 2.3) as one vectorised environment.

``KArmedTestbed(num_envs=R)`` holds R independent k-armed bandit problems and steps them all at
once: an action is one arm index per problem (shape ``(R,)``), and the rewards come back as an
array of shape ``(R,)``. A 2000-run × 1000-step experiment is then 1000 NumPy steps on arrays of
2000 rows, which takes well under a second, instead of two million Python-level steps.

It is a :class:`gymnasium.vector.VectorEnv` whose sub-environments are the R problems. A bandit
has a single situation, so the observation is trivial (always 0, ``Discrete(1)`` per problem),
and its task is continuing: ``terminated`` and ``truncated`` are always False, so autoreset
never happens. ``info["optimal"]`` (bool, ``(R,)``) says whether each chosen arm had the
largest true value ``q*`` at the moment it was chosen (every tied best arm counts as optimal).

Each problem's true action values are drawn at ``reset`` as ``q*(a) ~ N(q_star_mean,
q_star_std²)``, independently for every arm and problem; a reward for arm ``a`` is
``q*(a) + N(0, reward_std²)``. With ``walk_std > 0`` the problem is non-stationary: after every
step each ``q*(a)`` takes an independent random-walk step ``N(0, walk_std²)``
(``q_star_std=0`` makes all arms start equal, as in Sutton & Barto's exercise 2.5).

All randomness (the ``q*`` draws, the reward noise, the walk) comes from the environment's own
``np.random.Generator``, seeded by ``reset(seed=...)``, so the same seed gives the same problems
and the same reward sequence for the same actions.

The environment is registered as ``course_utils/Testbed-v0`` (a vector entry point only)::

    import gymnasium as gym
    import course_utils.envs  # registers it
    env = gym.make_vec("course_utils/Testbed-v0", num_envs=2000, k=10)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from course_utils.validation import check_int

__all__ = ["KArmedTestbed"]


def _check_real(name: str, value: Any, minimum: float | None = None) -> float:
    """``value`` as a float if it is a finite real number (≥ ``minimum`` if given), else ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or (minimum is not None and value < minimum):
        bound = f" >= {minimum}" if minimum is not None else ""
        raise ValueError(f"{name} must be a finite number{bound}, got {value!r}")
    return float(value)


class KArmedTestbed(VectorEnv):
    """R independent k-armed bandit problems stepped together (see the module's docstring).

    Args:
        num_envs: R, the number of independent problems (runs).
        k: the number of arms of each problem.
        q_star_mean, q_star_std: the true values are drawn as ``q*(a) ~ N(q_star_mean, q_star_std²)``
            at each ``reset``.
        reward_std: the standard deviation of the reward noise around ``q*(a)``.
        walk_std: the standard deviation of each arm's random-walk step after every step;
            0 (the default) gives a stationary problem.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 2000, k: int = 10, q_star_mean: float = 0.0,
                 q_star_std: float = 1.0, reward_std: float = 1.0, walk_std: float = 0.0):
        self.num_envs = check_int("num_envs", num_envs)
        self.k = check_int("k", k)
        self.q_star_mean = _check_real("q_star_mean", q_star_mean)
        self.q_star_std = _check_real("q_star_std", q_star_std, minimum=0.0)
        self.reward_std = _check_real("reward_std", reward_std, minimum=0.0)
        self.walk_std = _check_real("walk_std", walk_std, minimum=0.0)

        self.single_observation_space = spaces.Discrete(1)
        self.single_action_space = spaces.Discrete(self.k)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

        self._rows = np.arange(self.num_envs)
        self._observations = np.zeros(self.num_envs, dtype=np.int64)
        self._no = np.zeros(self.num_envs, dtype=bool)
        self._q_star: np.ndarray | None = None  # (R, k), set by reset
        self._best: np.ndarray | None = None  # (R,), max_a q*(a)

    @property
    def stationary(self) -> bool:
        return self.walk_std == 0.0

    @property
    def q_star(self) -> np.ndarray:
        """A copy of the current true action values, shape ``(num_envs, k)``."""
        if self._q_star is None:
            raise RuntimeError("q_star is drawn by reset(): call reset() first")
        return self._q_star.copy()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Draw R new problems; returns the (trivial) observations ``(R,)`` and an empty info."""
        if seed is not None:
            self._np_random, self._np_random_seed = seeding.np_random(seed)
        rng = self.np_random
        self._q_star = self.q_star_mean + self.q_star_std * rng.standard_normal((self.num_envs, self.k))
        self._best = self._q_star.max(axis=1)
        return self._observations.copy(), {}

    def _check_actions(self, actions: Any) -> np.ndarray:
        array = np.asarray(actions)
        if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
            raise TypeError(f"actions must be integer arm indices in [0, {self.k - 1}], one per run; "
                            f"got an array of dtype {array.dtype}")
        if array.shape != (self.num_envs,):
            raise ValueError(f"actions must have shape ({self.num_envs},), one arm index per run; "
                             f"got shape {array.shape}")
        low, high = array.min(), array.max()
        if low < 0 or high >= self.k:
            bad = int(np.flatnonzero((array < 0) | (array >= self.k))[0])
            raise ValueError(f"actions must be in [0, {self.k - 1}] (k = {self.k} arms); "
                             f"got {int(array[bad])} for run {bad}")
        return array

    def step(self, actions: Any):
        """Pull one arm in every problem.

        Returns ``(observations, rewards, terminated, truncated, info)``: zeros ``(R,)``, float
        rewards ``(R,)``, two all-False arrays ``(R,)`` and ``{"optimal": bool (R,)}``.
        """
        if self._q_star is None:
            raise RuntimeError("call reset() before step()")
        actions = self._check_actions(actions)
        rng = self.np_random
        values = self._q_star[self._rows, actions]
        rewards = values + self.reward_std * rng.standard_normal(self.num_envs)
        optimal = values >= self._best
        if not self.stationary:
            self._q_star += self.walk_std * rng.standard_normal(self._q_star.shape)
            self._best = self._q_star.max(axis=1)
        return self._observations.copy(), rewards, self._no.copy(), self._no.copy(), {"optimal": optimal}

    def __repr__(self) -> str:
        return (f"KArmedTestbed(num_envs={self.num_envs}, k={self.k}, q_star_mean={self.q_star_mean}, "
                f"q_star_std={self.q_star_std}, reward_std={self.reward_std}, walk_std={self.walk_std})")
