"""The bit-flipping task of Hindsight Experience Replay (Andrychowicz et al. 2017) as a goal env.

The state is a vector of ``n`` bits, and so is the goal; both are drawn uniformly at random (and
distinct) at every reset. An action is the index of one bit, which the step flips. The reward is
sparse: −1 after every step that does not reach the goal, 0 on the step that does, which also ends
the episode (``terminated``). An episode that has not reached the goal after ``n`` steps is
truncated (``n`` flips are always enough, so this is a time limit, not a terminal state).

With ``n`` = 40 a random policy reaches the goal about once in 2^40 tries: without a reward
signal, DQN learns nothing. Relabelling the failed episodes with goals they did reach (HER,
``course_utils.buffers``) turns each of them into successes for other goals.

The interface is gymnasium-robotics' goal interface: the observation is a ``Dict`` with
``observation`` (the bits), ``achieved_goal`` (the goal the state achieves: the bits again) and
``desired_goal`` (the goal), and the environment recomputes rewards for any goal, on batches::

    env = gym.make("course_utils/BitFlip-v0", n_bits=10)
    obs, info = env.reset(seed=0)
    rewards = env.unwrapped.compute_reward(achieved_goals, desired_goals, None)  # (B, n) -> (B,)

``info["is_success"]`` says after every step whether the state equals the goal.
"""

from __future__ import annotations

from typing import Any, Optional

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from course_utils.validation import check_int

__all__ = ["BitFlipEnv"]


class BitFlipEnv(gym.Env):
    """``n_bits`` bits to flip into a goal pattern (see the module's docstring).

    Args:
        n_bits: the number of bits ``n`` (at least 1); the episode length is ``n`` as well.
        render_mode: ``"ansi"`` renders the state and the goal as two lines of 0s and 1s.

    Observations are ``int8`` arrays of shape ``(n,)`` under the keys ``observation``,
    ``achieved_goal`` and ``desired_goal``; the action space is ``Discrete(n)``.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, n_bits: int = 10, render_mode: Optional[str] = None) -> None:
        self.n_bits = check_int("n_bits", n_bits)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.render_mode = render_mode
        bits = spaces.MultiBinary(self.n_bits)
        self.observation_space = spaces.Dict(
            {"observation": bits, "achieved_goal": bits, "desired_goal": bits})
        self.action_space = spaces.Discrete(self.n_bits)
        self.state = np.zeros(self.n_bits, dtype=np.int8)
        self.goal = np.ones(self.n_bits, dtype=np.int8)
        self.steps = 0

    def compute_reward(self, achieved_goal: Any, desired_goal: Any, info: Any) -> np.ndarray:
        """0 where the achieved goal equals the desired goal, else −1: float32 of shape ``(B,)``
        for goals of shape ``(B, n)`` (a 0-d array for one goal pair); ``info`` is unused."""
        reached = np.all(np.asarray(achieved_goal) == np.asarray(desired_goal), axis=-1)
        return reached.astype(np.float32) - 1.0

    def compute_terminated(self, achieved_goal: Any, desired_goal: Any, info: Any) -> np.ndarray:
        """True where the achieved goal equals the desired goal: reaching the goal ends the task."""
        return np.all(np.asarray(achieved_goal) == np.asarray(desired_goal), axis=-1)

    def compute_truncated(self, achieved_goal: Any, desired_goal: Any, info: Any) -> np.ndarray:
        """Never: the time limit depends on the step count, not on the goals."""
        return np.zeros(np.broadcast_shapes(np.shape(achieved_goal), np.shape(desired_goal))[:-1],
                        dtype=bool)

    def _observation(self) -> dict[str, np.ndarray]:
        return {"observation": self.state.copy(), "achieved_goal": self.state.copy(),
                "desired_goal": self.goal.copy()}

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        super().reset(seed=seed)
        self.state = self.np_random.integers(0, 2, self.n_bits, dtype=np.int8)
        self.goal = self.np_random.integers(0, 2, self.n_bits, dtype=np.int8)
        while np.array_equal(self.state, self.goal):  # an episode starts with work to do
            self.goal = self.np_random.integers(0, 2, self.n_bits, dtype=np.int8)
        self.steps = 0
        return self._observation(), {"is_success": False}

    def step(self, action: Any):
        if isinstance(action, (bool, np.bool_)) or not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not a bit of BitFlip with n_bits="
                             f"{self.n_bits}: expected an int index in 0 … {self.n_bits - 1}")
        self.state[int(action)] ^= 1
        self.steps += 1
        observation = self._observation()
        reward = float(self.compute_reward(observation["achieved_goal"], self.goal, None))
        terminated = bool(self.compute_terminated(observation["achieved_goal"], self.goal, None))
        truncated = not terminated and self.steps >= self.n_bits
        return observation, reward, terminated, truncated, {"is_success": terminated}

    def render(self) -> Optional[str]:
        if self.render_mode == "ansi":
            as_text = lambda bits: "".join(str(int(b)) for b in bits)  # noqa: E731
            return f"state {as_text(self.state)}\ngoal  {as_text(self.goal)}\n"
        return None
