"""Soft Actor-Critic (notebook 08): maximum-entropy RL with a squashed Gaussian policy.

SAC (Haarnoja et al. 2018) maximises ``E[Σ γ^t (r_t + α H(π(·|s_t)))]``. Its pieces, each a
parameter so a student's own version trains the agent:

* the policy samples ``u ~ N(μ(s), σ(s)²)`` and acts ``a = tanh(u)``; by the change of variables
  ``log π(a|s) = log N(u) − Σ_i log(1 − tanh(u_i)²)`` (``tanh_log_prob_correction``);
* the soft Bellman target ``y = r + γ (1 − d)(min_j Q'_j(s', a') − α log π(a'|s'))`` with
  ``a' ~ π(·|s')`` (``sac_critic_target``);
* the actor minimises ``E[α log π(a|s) − min_j Q_j(s, a)]`` with ``a`` reparameterised;
* the temperature ``α = exp(log α)`` minimises ``−log α · (log π(a|s) + H_target)``
  (``temperature_loss``), with target entropy ``H_target = −|A|``.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Callable, Optional

import gymnasium as gym
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.agents.base import OffPolicyAgent
from course_utils.agents.continuous import (ActionScaler, ActorPolicy, QCritic,
                                            check_box_action_space)
from course_utils.buffers import ReplayBatch
from course_utils.device import get_device
from course_utils.nn import MLPConfig, build_mlp, flat_size, make_adam, polyak_update

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0  # keeps σ in [0.007, 7.4]: no collapse, no explosion


def tanh_log_prob_correction(pre_tanh: torch.Tensor) -> torch.Tensor:
    """``Σ_i log(1 − tanh(u_i)²)`` over the last dimension, computed stably, shape ``(B,)``.

    ``log(1 − tanh(u)²) = 2 (log 2 − u − softplus(−2u))``: the naive form takes the log of a
    number that rounds to 0 once ``|u|`` exceeds about 9 in float32.
    """
    return (2.0 * (math.log(2.0) - pre_tanh - F.softplus(-2.0 * pre_tanh))).sum(dim=-1)


def sac_critic_target(rewards: torch.Tensor, next_q1_target: torch.Tensor,
                      next_q2_target: torch.Tensor, next_log_probs: torch.Tensor,
                      terminated: torch.Tensor, alpha: torch.Tensor | float,
                      gamma: float) -> torch.Tensor:
    """``y = r + γ (1 − terminated)(min(Q1', Q2') − α log π(a'|s'))``, shape ``(B,)``."""
    soft_value = torch.minimum(next_q1_target, next_q2_target) - alpha * next_log_probs
    return rewards + gamma * (1.0 - terminated) * soft_value


def temperature_loss(log_alpha: torch.Tensor, log_probs: torch.Tensor,
                     target_entropy: float) -> torch.Tensor:
    """``−log α · mean(log π(a|s) + H_target)``: raises α when the entropy is below target."""
    return -(log_alpha * (log_probs.detach() + target_entropy)).mean()


class SquashedGaussianActor(nn.Module):
    """``π(·|s)``: ``a = tanh(u)``, ``u ~ N(μ(s), σ(s)²)``; ``sample`` returns ``(a, log π(a|s))``."""

    def __init__(self, observation_size: int, action_size: int, n_layers: int, size: int,
                 device: torch.device,
                 log_prob_correction: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        # One network outputs μ and log σ side by side.
        self.net = build_mlp(MLPConfig(observation_size, 2 * action_size, n_layers, size, "relu"),
                             device=device)
        self.log_prob_correction = log_prob_correction

    def _mean_log_std(self, observations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.net(observations).chunk(2, dim=-1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def sample(self, observations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised action ``(B, d)`` in ``(-1, 1)`` and its log-probability ``(B,)``."""
        mean, log_std = self._mean_log_std(observations)
        std = log_std.exp()
        pre_tanh = mean + std * torch.randn_like(mean)  # u = μ + σ ε: differentiable in μ, σ
        # log N(u; μ, σ) summed over dimensions, with (u − μ)/σ = ε.
        gaussian_log_prob = (-0.5 * ((pre_tanh - mean) / std) ** 2 - log_std
                             - 0.5 * math.log(2 * math.pi)).sum(dim=-1)
        return torch.tanh(pre_tanh), gaussian_log_prob - self.log_prob_correction(pre_tanh)

    def deterministic(self, observations: torch.Tensor) -> torch.Tensor:
        """``tanh(μ(s))``: the evaluation action."""
        return torch.tanh(self._mean_log_std(observations)[0])


class SACAgent(OffPolicyAgent):
    """SAC with twin critics, Polyak-averaged target critics and automatic temperature.

    Args:
        observation_space: a one-dimensional Box.
        action_space: a bounded one-dimensional Box (actions are scaled to its bounds).
        n_layers, size: hidden layers of actor and critics (ReLU).
        learning_rate: Adam's step size for actor, critics and temperature.
        gamma, tau: discount factor; Polyak coefficient of the target critics.
        initial_alpha: the starting temperature; ``learn_alpha=False`` keeps it fixed.
        target_entropy: default ``−|A|``.
        log_prob_correction, critic_target, alpha_loss: the exercise pieces (see the module).
        device, seed: where the networks live; seeds the initialisation.
    """

    def __init__(self, observation_space: gym.Space, action_space: gym.Space,
                 n_layers: int = 2, size: int = 256, learning_rate: float = 3e-4,
                 gamma: float = 0.99, tau: float = 0.005, initial_alpha: float = 1.0,
                 learn_alpha: bool = True, target_entropy: Optional[float] = None,
                 log_prob_correction: Callable[[torch.Tensor], torch.Tensor] = tanh_log_prob_correction,
                 critic_target: Callable[..., torch.Tensor] = sac_critic_target,
                 alpha_loss: Callable[..., torch.Tensor] = temperature_loss,
                 device: Optional[torch.device | str] = None, seed: Optional[int] = None) -> None:
        check_box_action_space(action_space, "SAC")
        self.device = torch.device(device) if device is not None else get_device()
        if seed is not None:
            torch.manual_seed(seed)
        n_inputs = flat_size(observation_space, "observation_space")
        n_actions = int(action_space.shape[0])
        self.gamma, self.tau = gamma, tau
        self.critic_target, self.alpha_loss = critic_target, alpha_loss
        self.target_entropy = float(-n_actions if target_entropy is None else target_entropy)
        self.learn_alpha = learn_alpha
        self.scaler = ActionScaler(action_space, self.device)
        self.actor = SquashedGaussianActor(n_inputs, n_actions, n_layers, size, self.device,
                                           log_prob_correction)
        self.critics = nn.ModuleList(QCritic(n_inputs, n_actions, n_layers, size, self.device)
                                     for _ in range(2))
        self.critics_target = copy.deepcopy(self.critics).requires_grad_(False)
        self.log_alpha = torch.tensor(math.log(initial_alpha), device=self.device,
                                      requires_grad=learn_alpha)
        self.actor_optimizer = make_adam(self.actor.parameters(), learning_rate, self.device)
        self.critic_optimizer = make_adam(self.critics.parameters(), learning_rate, self.device)
        self.alpha_optimizer = make_adam([self.log_alpha], learning_rate, self.device)
        self.policy = ActorPolicy(self.actor.deterministic, self.scaler, self.device,
                                  explore=None)
        self.updates = 0

    @torch.no_grad()
    def act(self, observation: Any, step: int) -> Any:
        """A sample of ``π(·|s)``, scaled to the action bounds: SAC explores by its own entropy."""
        observation = torch.as_tensor(observation, dtype=torch.float32, device=self.device)
        action, _ = self.actor.sample(observation[None])
        return self.scaler.to_env(action[0]).cpu().numpy()

    def update(self, batch: ReplayBatch) -> dict[str, torch.Tensor]:
        """One step each for the critics, the actor and the temperature, then the targets."""
        alpha = self.log_alpha.detach().exp()
        with torch.no_grad():
            next_actions, next_log_probs = self.actor.sample(batch.next_observations)
            next_q1, next_q2 = (critic(batch.next_observations, next_actions)
                                for critic in self.critics_target)
            targets = self.critic_target(batch.rewards, next_q1, next_q2, next_log_probs,
                                         batch.terminated.float(), alpha, self.gamma)
        actions = self.scaler.to_unit(batch.actions)
        q1, q2 = (critic(batch.observations, actions) for critic in self.critics)
        critic_loss = F.mse_loss(q1, targets) + F.mse_loss(q2, targets)
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()

        # The actor's gradient flows through the critics into the action, not into the critics.
        self.critics.requires_grad_(False)
        new_actions, log_probs = self.actor.sample(batch.observations)
        q_new = torch.minimum(*(critic(batch.observations, new_actions) for critic in self.critics))
        actor_loss = (alpha * log_probs - q_new).mean()
        self.critics.requires_grad_(True)
        self.actor_optimizer.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_optimizer.step()

        if self.learn_alpha:
            loss_alpha = self.alpha_loss(self.log_alpha, log_probs, self.target_entropy)
            self.alpha_optimizer.zero_grad(set_to_none=True)
            loss_alpha.backward()
            self.alpha_optimizer.step()
        polyak_update(self.critics_target, self.critics, self.tau)
        self.updates += 1
        return {"critic_loss": critic_loss.detach(), "actor_loss": actor_loss.detach(),
                "alpha": alpha, "entropy": -log_probs.detach().mean(), "q": q1.detach().mean()}

    def state_dict(self) -> dict[str, Any]:
        return {"actor": self.actor.state_dict(), "critics": self.critics.state_dict(),
                "critics_target": self.critics_target.state_dict(),
                "log_alpha": self.log_alpha.detach().clone(),
                "actor_optimizer": self.actor_optimizer.state_dict(),
                "critic_optimizer": self.critic_optimizer.state_dict(),
                "alpha_optimizer": self.alpha_optimizer.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in ("actor", "critics", "critics_target", "actor_optimizer", "critic_optimizer",
                     "alpha_optimizer"):
            getattr(self, name).load_state_dict(state[name])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.updates = int(state["updates"])
