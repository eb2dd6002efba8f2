"""Deep Q-Networks (notebook 04): a Q-network, a target network, replay, ε-greedy exploration.

The pieces a student writes in the notebook are parameters of ``DQNAgent``, so their own code
trains the agent: ``td_target`` (the regression target, ``dqn_target`` or ``double_dqn_target``),
``target_update`` (``polyak_update``) and ``epsilon`` (a schedule ``step -> ε``).
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Optional

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.agents.base import OffPolicyAgent, Policy
from course_utils.buffers import ReplayBatch
from course_utils.device import get_device
from course_utils.nn import MLPConfig, build_mlp, flat_size, make_adam, polyak_update
from course_utils.schedules import Schedule, linear_schedule
from course_utils.validation import check_int

# (rewards (B,), next_q_online (B, A), next_q_target (B, A), terminated (B,) float, γ) -> (B,)
TDTarget = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor]
TargetUpdate = Callable[[nn.Module, nn.Module, float], None]


def dqn_target(rewards: torch.Tensor, next_q_online: torch.Tensor, next_q_target: torch.Tensor,
               terminated: torch.Tensor, gamma: float) -> torch.Tensor:
    """The DQN target ``y = r + γ (1 − terminated) max_a' Q_target(s', a')``, shape ``(B,)``.

    The target network both selects and evaluates the next action; ``next_q_online`` is unused
    (it is there so DQN and Double DQN targets share one signature).
    """
    return rewards + gamma * (1.0 - terminated) * next_q_target.max(dim=1).values


def double_dqn_target(rewards: torch.Tensor, next_q_online: torch.Tensor,
                      next_q_target: torch.Tensor, terminated: torch.Tensor,
                      gamma: float) -> torch.Tensor:
    """Double DQN: the online network selects ``a* = argmax_a Q(s', a)``, the target evaluates it.

    ``y = r + γ (1 − terminated) Q_target(s', a*)``; decoupling selection from evaluation removes
    most of the maximisation bias of ``max_a Q_target(s', a)``.
    """
    best_actions = next_q_online.argmax(dim=1, keepdim=True)
    return rewards + gamma * (1.0 - terminated) * next_q_target.gather(1, best_actions).squeeze(1)


class EpsilonGreedyPolicy(Policy):
    """Acts greedily with respect to a Q-network, except with probability ``epsilon`` at random."""

    def __init__(self, q_network: nn.Module, n_actions: int, epsilon: float = 0.0,
                 seed: Optional[int] = None, action_start: int = 0) -> None:
        self.q_network = q_network
        self.n_actions = n_actions
        # Discrete(n, start=s) has actions s … s+n−1; the network's outputs are indexed 0 … n−1.
        self.action_start = action_start
        self.epsilon = epsilon
        self.device = next(q_network.parameters()).device
        self._rng = np.random.default_rng(seed)

    @torch.no_grad()
    def q_values(self, observation: Any) -> torch.Tensor:
        """``Q(o, ·)``, shape ``(A,)`` for one observation (``(B, A)`` for a batch)."""
        return self.q_network(torch.as_tensor(observation, dtype=torch.float32, device=self.device))

    def greedy_action(self, observation: Any) -> int:
        """``argmax_a Q(o, a)``."""
        return int(self.q_values(observation).argmax()) + self.action_start

    def get_action(self, observation: Any) -> int:
        if self._rng.random() < self.epsilon:
            return int(self._rng.integers(self.n_actions)) + self.action_start
        return self.greedy_action(observation)


class DQNAgent(OffPolicyAgent):
    """DQN (Mnih et al. 2015) with a target network, Huber loss and gradient-norm clipping.

    Args:
        observation_space: a one-dimensional Box.
        action_space: a Discrete space.
        network: the Q-network's MLP (default: 2 hidden layers of 128 ReLU units).
        learning_rate: Adam's step size.
        gamma: the discount factor γ.
        epsilon: the exploration schedule, environment step -> ε.
        td_target: the regression target; ``double_dqn_target`` gives Double DQN.
        tau: ``target_update``'s mixing coefficient: 1 is a hard copy, 0.005 a slow Polyak average.
        target_update_every: update the target network every this many gradient steps.
        target_update: how the target network follows the online one (``polyak_update``).
        max_grad_norm: clip the gradient's global norm to this (``None``: no clipping).
        loss: ``"huber"`` (smooth L1: quadratic near 0, linear beyond 1) or ``"mse"``.
        device: where the networks live (default ``get_device()``).
        seed: seeds the network initialisation and ε-greedy's coin flips.
    """

    def __init__(self, observation_space: gym.Space, action_space: gym.Space,
                 network: Optional[MLPConfig] = None, learning_rate: float = 1e-3,
                 gamma: float = 0.99,
                 epsilon: Schedule = linear_schedule(1.0, 0.05, 10_000),
                 td_target: TDTarget = dqn_target, tau: float = 1.0,
                 target_update_every: int = 500, target_update: TargetUpdate = polyak_update,
                 max_grad_norm: Optional[float] = 10.0, loss: str = "huber",
                 device: Optional[torch.device | str] = None, seed: Optional[int] = None) -> None:
        if not isinstance(action_space, gym.spaces.Discrete):
            raise ValueError(f"action_space: DQN needs a Discrete action space, got {action_space}; "
                             "for continuous actions use DDPG, TD3 or SAC")
        if not (isinstance(observation_space, gym.spaces.Box)
                and len(observation_space.shape) == 1):
            raise ValueError(f"observation_space must be a one-dimensional Box, got "
                             f"{observation_space}; one-hot encode Discrete observations first")
        if loss not in ("huber", "mse"):
            raise ValueError(f"loss must be 'huber' or 'mse', got {loss!r}")
        if not 0.0 < tau <= 1.0:
            raise ValueError(f"tau must be in (0, 1], got {tau!r}")
        self.n_actions = int(action_space.n)
        self.action_start = int(action_space.start)
        self.gamma = gamma
        self.epsilon = epsilon
        self.td_target = td_target
        self.tau = tau
        self.target_update_every = check_int("target_update_every", target_update_every)
        self.target_update = target_update
        self.max_grad_norm = max_grad_norm
        self.loss_fn = F.smooth_l1_loss if loss == "huber" else F.mse_loss
        self.device = torch.device(device) if device is not None else get_device()
        if seed is not None:
            torch.manual_seed(seed)
        network = network or MLPConfig(flat_size(observation_space, "observation_space"),
                                       self.n_actions, n_layers=2, size=128, activation="relu")
        if network.output_size != self.n_actions:
            raise ValueError(f"network.output_size must be the number of actions "
                             f"{self.n_actions}, got {network.output_size}")
        self.q_network = build_mlp(network, device=self.device)
        self.target_network = copy.deepcopy(self.q_network).requires_grad_(False)
        self.optimizer = make_adam(self.q_network.parameters(), learning_rate, self.device)
        self.policy = EpsilonGreedyPolicy(self.q_network, self.n_actions, seed=seed,
                                          action_start=self.action_start)
        self.updates = 0

    def act(self, observation: Any, step: int) -> int:
        """ε-greedy with ε = ``epsilon(step)``."""
        self.policy.epsilon = self.epsilon(step)
        return self.policy.get_action(observation)

    def update(self, batch: ReplayBatch) -> dict[str, torch.Tensor]:
        """One gradient step on the Huber (or squared) TD error, then the target update if due."""
        actions = batch.actions - self.action_start
        # One forward pass of the online network over s and s' (Double DQN needs Q(s', ·) too).
        n = len(batch)
        q_all = self.q_network(torch.cat([batch.observations, batch.next_observations]))
        q_taken = q_all[:n].gather(1, actions[:, None]).squeeze(1)  # Q(s, a), shape (B,)
        with torch.no_grad():  # the target is a fixed regression label: no gradient through it
            next_q_target = self.target_network(batch.next_observations)
            targets = self.td_target(batch.rewards, q_all[n:].detach(), next_q_target,
                                     batch.terminated.float(), self.gamma)
        if targets.shape != q_taken.shape:
            raise ValueError(f"td_target returned shape {tuple(targets.shape)}, expected "
                             f"{tuple(q_taken.shape)} (one target per transition)")
        loss = self.loss_fn(q_taken, targets)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(self.q_network.parameters(), self.max_grad_norm)
        self.optimizer.step()
        self.updates += 1
        if self.updates % self.target_update_every == 0:
            self.target_update(self.target_network, self.q_network, self.tau)
        return {"loss": loss.detach(), "q": q_taken.detach().mean()}

    def state_dict(self) -> dict[str, Any]:
        return {"q_network": self.q_network.state_dict(),
                "target_network": self.target_network.state_dict(),
                "optimizer": self.optimizer.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.q_network.load_state_dict(state["q_network"])
        self.target_network.load_state_dict(state["target_network"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates = int(state["updates"])
