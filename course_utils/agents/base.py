"""The interfaces of the older, class-based agents that notebook 09 still uses: a ``Policy``
chooses actions; an ``OffPolicyAgent`` learns from replayed transitions."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np


class Policy(ABC):
    """A policy ``π: O → P(A)``: given an observation, it returns an action (sampled from π)."""

    @abstractmethod
    def get_action(self, observation: np.ndarray) -> Any:
        """An action for one observation of shape ``obs_shape`` (no batch dimension)."""


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
