"""The random walk of Sutton & Barto's Example 6.2 as a gymnasium environment.

``n_states`` non-terminal states in a row (5 by default: A, B, C, D, E) between two terminal
states. Observations are the positions ``0 … n_states + 1``: ``0`` is the left terminal state,
``1 … n_states`` the non-terminal states from left to right, ``n_states + 1`` the right terminal
state. Every episode starts in the middle, position ``(n_states + 1) // 2`` (C for five states).

Action 0 moves one position left, action 1 one position right. The book's random walk is a
Markov reward process: it moves left or right with equal probability. Here that randomness is
the *policy's*: the uniformly random policy (``action = rng.integers(2)``) gives exactly the
book's process, and the environment itself is deterministic. Every reward is 0 except +1 for
the step that enters the right terminal state; the episode terminates when either end is
reached. With γ = 1 the value of position ``i`` under the random policy is the probability of
ending on the right, ``i / (n_states + 1)`` (1/6 … 5/6 for five states): see :func:`true_values`.

Registered as ``course_utils/RandomWalk-v0``::

    import gymnasium as gym
    import course_utils.envs  # registers it
    env = gym.make("course_utils/RandomWalk-v0")             # five states
    env = gym.make("course_utils/RandomWalk-v0", n_states=19)
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from course_utils.validation import check_int

__all__ = ["LEFT", "RIGHT", "RandomWalkEnv", "true_values"]

LEFT, RIGHT = 0, 1


def true_values(n_states: int = 5) -> np.ndarray:
    """The state values under the uniformly random policy with γ = 1, for every position
    (terminal positions included, with value 0): ``V(i) = i / (n_states + 1)``."""
    n_states = check_int("n_states", n_states)
    values = np.arange(n_states + 2) / (n_states + 1)
    values[-1] = 0.0  # the right terminal state: nothing more to come
    return values


class RandomWalkEnv(gym.Env):
    """A row of ``n_states`` non-terminal states between two terminal ones (see the module's
    docstring). The state's letter (A, B, …) is in ``info["letter"]`` for up to 26 states."""

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, n_states: int = 5, render_mode: str | None = None):
        self.n_states = check_int("n_states", n_states)
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.render_mode = render_mode
        self.observation_space = spaces.Discrete(self.n_states + 2)
        self.action_space = spaces.Discrete(2)
        self.start = (self.n_states + 1) // 2
        self.position = self.start

    def _info(self) -> dict[str, Any]:
        inside = 1 <= self.position <= self.n_states
        return {"letter": chr(ord("A") + self.position - 1) if inside and self.n_states <= 26 else ""}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.position = self.start
        return self.position, self._info()

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"action must be 0 (left) or 1 (right), got {action!r}")
        if self.position in (0, self.n_states + 1):
            raise RuntimeError("step() called after the episode terminated; call reset() first")
        self.position += 1 if action == RIGHT else -1
        terminated = self.position in (0, self.n_states + 1)
        reward = 1.0 if self.position == self.n_states + 1 else 0.0
        return self.position, reward, terminated, False, self._info()

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        names = [chr(ord("A") + i) if self.n_states <= 26 else "·" for i in range(self.n_states)]
        cells = ["■"] + names + ["■"]
        cells[self.position] = "●"
        return " ".join(cells)
