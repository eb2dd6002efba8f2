"""PushT made as easy as it can be for reinforcement learning from scratch (notebook 09, §2).

``RelativePushT`` changes what the agent sees and does, not the task:

- observations ``(6,)``: the pusher's and the block's positions mapped to ``[-1, 1]`` and
  ``cos θ, sin θ`` of the block's angle (the first six of ``pusht_features``);
- actions ``a ∈ [-1, 1]²``: a move of ``MOVE · a`` px from where the pusher is, so that a
  Gaussian policy around 0 explores near the pusher instead of anywhere on the table.

Registered as ``course_utils/RelativePushT-v0`` (PushT's coverage reward) and
``course_utils/RelativePushTShaped-v0`` (``PushTEnv(reward="shaped")``, ManiSkill3's terms).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from course_utils.envs.pusht import WORKSPACE
from course_utils.envs.pusht_features import pusht_features

__all__ = ["RelativePushT"]


class RelativePushT(gym.Wrapper):
    """PushT with scaled observations ``(6,)`` and moves relative to the pusher ``(2,)``."""

    MOVE = 60.0  # px per unit of action

    def __init__(self, reward: str = "coverage") -> None:
        super().__init__(gym.make("course_utils/PushT-v0", reward=reward))
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (6,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.state = np.zeros(5)

    def _observation(self) -> np.ndarray:
        return pusht_features(torch.as_tensor(self.state, dtype=torch.float32))[:6].numpy()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        self.state, info = self.env.reset(seed=seed, options=options)
        return self._observation(), info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        move = self.MOVE * np.clip(action, -1.0, 1.0)
        target = np.clip(self.state[:2] + move, 0.0, WORKSPACE)
        self.state, reward, terminated, truncated, info = self.env.step(target)
        return self._observation(), reward, terminated, truncated, info
