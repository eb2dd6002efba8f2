"""The maximisation-bias MDP of Sutton & Barto's Example 6.7 (Figure 6.5) as a gymnasium
environment.

Two non-terminal states, A and B. Every episode starts in A, which has two actions: RIGHT (1)
ends the episode at once with reward 0; LEFT (0) moves to B with reward 0. B has ``n_actions_b``
actions (10 by default), every one of which ends the episode with a reward drawn from
``N(reward_mean, reward_std²)`` (mean −0.1, standard deviation 1 by default). So LEFT is worth
−0.1 on average and RIGHT 0: the optimal policy goes right. But the *maximum* of the estimates of
B's actions is positive more often than not, and methods that bootstrap from a maximum
(Q-learning) are drawn to the left.

Observations: ``0`` = A, ``1`` = B, ``2`` = the terminal state. The action space is
``Discrete(max(2, n_actions_b))``; which actions are legal in the *new* state is in
``info["action_mask"]`` (an ``int8`` array, gymnasium's convention, as in Taxi): A's legal actions
are 0 and 1 only, B's are ``0 … n_actions_b − 1``, and the terminal state has none. An illegal
action raises ``ValueError``. A tabular agent can keep a Q-table of shape
``(3, env.action_space.n)``; its terminal row is never bootstrapped from, and only the legal
entries of A's row are ever chosen or updated. A random legal action is
``env.action_space.sample(mask=info["action_mask"])``.

Registered as ``course_utils/MaxBias-v0``::

    import gymnasium as gym
    import course_utils.envs  # registers it
    env = gym.make("course_utils/MaxBias-v0", n_actions_b=10)
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from course_utils.validation import check_int

__all__ = ["LEFT", "RIGHT", "STATE_A", "STATE_B", "TERMINAL", "MaxBiasEnv"]

STATE_A, STATE_B, TERMINAL = 0, 1, 2
LEFT, RIGHT = 0, 1


class MaxBiasEnv(gym.Env):
    """States A and B and a terminal state (see the module's docstring).

    Args:
        n_actions_b: the number of actions in B (at least 2).
        reward_mean, reward_std: the normal distribution of the reward of every action in B.
    """

    metadata = {"render_modes": []}

    def __init__(self, n_actions_b: int = 10, reward_mean: float = -0.1, reward_std: float = 1.0):
        self.n_actions_b = check_int("n_actions_b", n_actions_b, minimum=2)
        for name, value in (("reward_mean", reward_mean), ("reward_std", reward_std)):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                    or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if reward_std < 0:
            raise ValueError(f"reward_std must be >= 0, got {reward_std!r}")
        self.reward_mean, self.reward_std = float(reward_mean), float(reward_std)
        self.observation_space = spaces.Discrete(3)
        self.action_space = spaces.Discrete(max(2, self.n_actions_b))
        n = self.action_space.n
        self._masks = np.zeros((3, n), dtype=np.int8)
        self._masks[STATE_A, :2] = 1
        self._masks[STATE_B, : self.n_actions_b] = 1
        self.state = STATE_A

    def action_mask(self, state: int) -> np.ndarray:
        """The legal actions of ``state`` as an ``int8`` mask of shape ``(action_space.n,)``."""
        return self._masks[state].copy()

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.state = STATE_A
        return self.state, {"action_mask": self.action_mask(self.state)}

    def step(self, action):
        if self.state == TERMINAL:
            raise RuntimeError("step() called after the episode terminated; call reset() first")
        if not self.action_space.contains(action) or not self._masks[self.state, action]:
            legal = np.flatnonzero(self._masks[self.state]).tolist()
            name = "A" if self.state == STATE_A else "B"
            raise ValueError(f"action {action!r} is not legal in state {name}; legal actions: {legal}")
        if self.state == STATE_A:
            self.state = STATE_B if action == LEFT else TERMINAL
            reward = 0.0
        else:
            self.state = TERMINAL
            reward = float(self.np_random.normal(self.reward_mean, self.reward_std))
        terminated = self.state == TERMINAL
        return self.state, reward, terminated, False, {"action_mask": self.action_mask(self.state)}
