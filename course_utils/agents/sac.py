"""Soft Actor-Critic (notebook 08): maximum-entropy RL with a squashed Gaussian policy.

SAC (Haarnoja et al. 2018) maximises ``E[Σ γ^t (r_t + α H(π(·|s_t)))]``. For a replayed batch::

    a = tanh(u), u = μ(s) + σ(s) ξ, ξ ~ N(0, I)      (reparameterised: differentiable in θ)
    log π(a|s) = log N(u; μ, σ²) − Σ_i log(1 − tanh(u_i)²)            (change of variables)
    y = r + γ (1 − terminated)(min_j Q'_j(s', a') − α log π(a'|s')),  a' ~ π(·|s')
    critics: min Σ_j (1/B) Σ (Q_j(s, a) − y)²
    actor:   min (1/B) Σ (α log π(ã|s) − min_j Q_j(s, ã)),            ã ~ π(·|s) reparameterised
    temperature: min −log α · (1/B) Σ (log π(ã|s) + H̄),  H̄ = −|A|     (log π held constant)
    targets: φ'_j ← τ φ_j + (1 − τ) φ'_j

``train`` runs the replay loop of ``ddpg.py`` (``off_policy_loop``: random actions first, then
samples of π, truncation bootstrapped from the true next state) with ``sac_update``; there is no
exploration noise, SAC explores by its own entropy.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Callable, Optional

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.agents.ddpg import (QCritic, Update, action_box, check_box_action_space,
                                      off_policy_loop)
from course_utils.buffers import ReplayBatch, ReplayBuffer
from course_utils.device import get_device
from course_utils.nn import MLPConfig, build_mlp, flat_size, make_adam, polyak_update
from course_utils.tracking import TrainConfig, Tracker

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0  # keeps σ in [0.007, 7.4]: no collapse, no explosion


@dataclass
class SACConfig(TrainConfig):
    """SAC's hyperparameters (the replay fields are those of ``DDPGConfig``)."""

    total_steps: int = 10_000
    n_layers: int = 2  # hidden layers of actor and critics (ReLU)
    size: int = 64
    learning_rate: float = 1e-3  # actor, critics and temperature
    gamma: float = 0.99
    tau: float = 0.005  # Polyak coefficient of the target critics
    initial_alpha: float = 1.0
    target_entropy: Optional[float] = None  # default −|A|
    buffer_size: int = 50_000
    batch_size: int = 128
    learning_starts: int = 1_000
    train_every: int = 1


# ------------------------------------------------------------------------------------ networks


def tanh_log_prob_correction(pre_tanh: torch.Tensor) -> torch.Tensor:
    """``Σ_i log(1 − tanh(u_i)²)`` over the last dimension of ``u`` ``(B, d)``, shape ``(B,)``.

    Computed as ``2 (log 2 − u − softplus(−2u))``: the naive form takes the log of a number
    that rounds to 0 once ``|u|`` exceeds about 9 in float32.
    """
    return (2.0 * (math.log(2.0) - pre_tanh - F.softplus(-2.0 * pre_tanh))).sum(dim=-1)


class SquashedGaussianActor(nn.Module):
    """``(μ(s), log σ(s))`` from one MLP, each ``(B, d)``; ``log σ`` clamped to a safe range."""

    def __init__(self, observation_size: int, action_size: int, config: SACConfig) -> None:
        super().__init__()
        self.net = build_mlp(MLPConfig(observation_size, 2 * action_size, config.n_layers,
                                       config.size, "relu"))

    def forward(self, observations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.net(observations).chunk(2, dim=-1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)


def sample_action(actor: SquashedGaussianActor, observations: torch.Tensor,
                  correction: Callable[[torch.Tensor], torch.Tensor] = tanh_log_prob_correction,
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """A reparameterised action ``a = tanh(μ + σ ξ)`` ``(B, d)`` and ``log π(a|s)`` ``(B,)``."""
    mean, log_std = actor(observations)
    std = log_std.exp()
    pre_tanh = mean + std * torch.randn_like(mean)  # differentiable in μ and σ
    # log N(u; μ, σ) summed over the action dimensions, with (u − μ)/σ = ξ.
    gaussian_log_prob = (-0.5 * ((pre_tanh - mean) / std) ** 2 - log_std
                         - 0.5 * math.log(2 * math.pi)).sum(dim=-1)
    return torch.tanh(pre_tanh), gaussian_log_prob - correction(pre_tanh)


class SACAgent(nn.Module):
    """The actor, two critics and their target copies, ``log α``, and three optimisers."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space,
                 config: SACConfig) -> None:
        super().__init__()
        check_box_action_space(action_space, "SAC")
        self.device = get_device()
        torch.manual_seed(config.seed)
        n_inputs, n_actions = flat_size(observation_space, "observation_space"), action_space.shape[0]
        self.actor = SquashedGaussianActor(n_inputs, n_actions, config)
        self.critics = nn.ModuleList(QCritic(n_inputs, n_actions, config) for _ in range(2))
        self.critics_target = copy.deepcopy(self.critics).requires_grad_(False)
        # α = exp(log α) > 0 without a constraint.
        self.log_alpha = nn.Parameter(torch.tensor(math.log(config.initial_alpha),
                                                   device=self.device))
        self.target_entropy = float(-n_actions if config.target_entropy is None
                                    else config.target_entropy)
        self.actor_optimizer = make_adam(self.actor.parameters(), config.learning_rate)
        self.critic_optimizer = make_adam(self.critics.parameters(), config.learning_rate)
        self.alpha_optimizer = make_adam([self.log_alpha], config.learning_rate)
        self.centre, self.half_width = action_box(action_space, self.device)
        self.updates = 0
        self.buffer: Optional[ReplayBuffer] = None  # made by the loop, kept to continue a run

    def to_env(self, unit_actions: torch.Tensor) -> np.ndarray:
        """``centre + a · half_width`` for ``a`` in ``[-1, 1]^d``: the box's bounds, as NumPy."""
        return (self.centre + self.half_width * unit_actions).cpu().numpy()

    @torch.no_grad()
    def greedy_action(self, observation: np.ndarray) -> np.ndarray:
        """``tanh(μ(s))`` scaled to the bounds: the evaluation action."""
        observation = torch.as_tensor(observation, dtype=torch.float32, device=self.device)
        return self.to_env(torch.tanh(self.actor(observation)[0]))

    @torch.no_grad()
    def explore(self, observation: np.ndarray) -> torch.Tensor:
        """A sample of ``π(·|s)`` in the unit box, shape ``(d,)``: the training action."""
        observation = torch.as_tensor(observation, dtype=torch.float32, device=self.device)
        return sample_action(self.actor, observation[None])[0][0]

    def end_episode(self) -> None:
        """SAC keeps no state across steps (no noise process)."""


# ------------------------------------------------------------------------------------ update


def sac_update(agent: SACAgent, batch: ReplayBatch, config: SACConfig) -> dict[str, torch.Tensor]:
    """One step each for the two critics, the actor and the temperature, then the targets."""
    alpha = agent.log_alpha.detach().exp()
    with torch.no_grad():  # the soft target is a regression target: no gradient through it
        next_actions, next_log_probs = sample_action(agent.actor, batch.next_observations)
        next_q = torch.minimum(*(critic(batch.next_observations, next_actions)
                                 for critic in agent.critics_target))
        soft_value = next_q - alpha * next_log_probs  # the next state's entropy bonus added
        targets = batch.rewards + config.gamma * (1.0 - batch.terminated.float()) * soft_value
    q1, q2 = (critic(batch.observations, batch.actions) for critic in agent.critics)
    critic_loss = F.mse_loss(q1, targets) + F.mse_loss(q2, targets)
    agent.critic_optimizer.zero_grad(set_to_none=True)
    critic_loss.backward()
    agent.critic_optimizer.step()

    # The actor's gradient flows through the critics into the action, not into the critics.
    agent.critics.requires_grad_(False)
    actions, log_probs = sample_action(agent.actor, batch.observations)
    q_new = torch.minimum(*(critic(batch.observations, actions) for critic in agent.critics))
    actor_loss = (alpha * log_probs - q_new).mean()
    agent.critics.requires_grad_(True)
    agent.actor_optimizer.zero_grad(set_to_none=True)
    actor_loss.backward()
    agent.actor_optimizer.step()

    # The temperature's loss trains log α only: the log-probabilities are constants in it.
    alpha_loss = -(agent.log_alpha * (log_probs.detach() + agent.target_entropy)).mean()
    agent.alpha_optimizer.zero_grad(set_to_none=True)
    alpha_loss.backward()
    agent.alpha_optimizer.step()
    polyak_update(agent.critics_target, agent.critics, config.tau)
    agent.updates += 1
    return {"critic_loss": critic_loss.detach(), "actor_loss": actor_loss.detach(),
            "alpha_loss": alpha_loss.detach(), "alpha": alpha,
            "entropy": -log_probs.detach().mean(), "q": q1.detach().mean()}


# --------------------------------------------------------------------------------- training


def train(env: gym.Env, config: Optional[SACConfig] = None, update: Update = sac_update,
          agent: Optional[SACAgent] = None, tracker: Optional[Tracker] = None,
          on_evaluation: Optional[Callable[[Any], dict[str, float]]] = None,
          ) -> tuple[SACAgent, Tracker]:
    """Train SAC on ``env`` with ``update(agent, batch, config)`` (yours in the notebook), by the
    replay loop of ``ddpg.off_policy_loop``. Passing the returned agent and tracker again
    continues the run. Returns ``(agent, tracker)``."""
    config = config if config is not None else SACConfig()
    agent = agent if agent is not None else SACAgent(env.observation_space, env.action_space,
                                                     config)
    return agent, off_policy_loop(env, agent, config, update, tracker, on_evaluation)
