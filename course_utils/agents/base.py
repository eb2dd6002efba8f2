"""The two abstractions of the course: a policy chooses actions, an agent learns a policy."""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from typing import Any, Sequence

import gymnasium as gym
import numpy as np

from course_utils.trajectory import Trajectory


class Policy(ABC):
    """A policy ``π: O → P(A)``: given an observation, it returns an action (sampled from π)."""

    @abstractmethod
    def get_action(self, observation: np.ndarray) -> Any:
        """An action for one observation of shape ``obs_shape`` (no batch dimension)."""


class Agent(ABC):
    """An agent has a policy and improves it from the trajectories that policy produced."""

    policy: Policy

    @abstractmethod
    def update(self, trajectories: Sequence[Trajectory]) -> dict[str, float]:
        """Improve the policy from a batch of trajectories; return metrics to log."""


class OffPolicyAgent(ABC):
    """An agent that learns from replayed transitions (DQN, DDPG, TD3, SAC).

    The off-policy loop (``course_utils.loops.train_off_policy``) drives it: ``act`` picks the
    exploratory action at a given environment step (the step drives ε or noise schedules),
    ``update`` takes one gradient step on a replayed batch, ``state_dict`` and
    ``load_state_dict`` make checkpoints. ``policy.greedy_action`` is the deterministic policy
    used in evaluation.
    """

    policy: Policy

    @abstractmethod
    def act(self, observation: Any, step: int) -> Any:
        """The exploratory action for one observation at environment step ``step``."""

    @abstractmethod
    def update(self, batch: Any) -> dict[str, Any]:
        """One gradient step on a ``ReplayBatch``; returns metrics (tensors or numbers)."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Networks, optimisers and counters: everything needed to resume training."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""

    def end_episode(self) -> None:
        """Called by the loop when an episode ends (e.g. to reset temporally correlated noise)."""


class RandomPolicy(Policy):
    """Uniformly random actions from an action space; ignores the observation."""

    def __init__(self, action_space: gym.Space, seed: int | None = None) -> None:
        # A copy, so that seeding it does not reseed the environment's own action space.
        self.action_space = copy.deepcopy(action_space)
        self.action_space.seed(seed)

    def get_action(self, observation: np.ndarray) -> Any:
        return self.action_space.sample()


class RandomAgent(Agent):
    """An agent that never learns: the baseline every learning agent must beat."""

    def __init__(self, action_space: gym.Space, seed: int | None = None) -> None:
        self.policy = RandomPolicy(action_space, seed)

    def update(self, trajectories: Sequence[Trajectory]) -> dict[str, float]:
        return {}
