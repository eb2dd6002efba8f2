"""DDPG and TD3 (notebook 08): a deterministic actor trained through a learned Q-function.

DDPG (Lillicrap et al. 2016) learns ``Q(s, a)`` by regression on ``r + γ Q'(s', μ'(s'))`` and
moves the actor ``μ`` uphill on ``Q(s, μ(s))`` (the deterministic policy gradient). TD3
(Fujimoto et al. 2018) adds three fixes against overestimation: the minimum of two critics in
the target, noise on the target action (target policy smoothing), and fewer actor updates than
critic updates. The targets and the actor loss are parameters, so a student's own versions train
the agents.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Optional

import gymnasium as gym
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.agents.base import OffPolicyAgent
from course_utils.agents.continuous import (ActionScaler, ActorPolicy, DeterministicActor,
                                            GaussianNoise, QCritic, check_box_action_space)
from course_utils.buffers import ReplayBatch
from course_utils.device import get_device
from course_utils.nn import flat_size, make_adam, polyak_update
from course_utils.validation import check_int


def ddpg_critic_target(rewards: torch.Tensor, next_q_target: torch.Tensor,
                       terminated: torch.Tensor, gamma: float) -> torch.Tensor:
    """``y = r + γ (1 − terminated) Q'(s', μ'(s'))``, shape ``(B,)``."""
    return rewards + gamma * (1.0 - terminated) * next_q_target


def ddpg_actor_loss(q_values: torch.Tensor) -> torch.Tensor:
    """``−mean Q(s, μ(s))``: minimising it moves ``μ(s)`` towards actions the critic rates higher."""
    return -q_values.mean()


def td3_target_actions(next_actions: torch.Tensor, noise_std: float, noise_clip: float,
                       generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Target policy smoothing: ``clip(μ'(s') + clip(ε, −c, c), −1, 1)``, ``ε ~ N(0, σ²)``.

    Actions are in the unit box ``[-1, 1]``. The noise makes the target an average of Q over a
    small neighbourhood of ``μ'(s')``, so the actor cannot exploit a narrow peak of the critic.
    """
    noise = torch.randn(next_actions.shape, generator=generator).to(next_actions.device)
    noise = (noise_std * noise).clamp(-noise_clip, noise_clip)
    return (next_actions + noise).clamp(-1.0, 1.0)


def td3_critic_target(rewards: torch.Tensor, next_q1_target: torch.Tensor,
                      next_q2_target: torch.Tensor, terminated: torch.Tensor,
                      gamma: float) -> torch.Tensor:
    """Clipped double Q: ``y = r + γ (1 − terminated) min(Q1'(s', ã), Q2'(s', ã))``."""
    return rewards + gamma * (1.0 - terminated) * torch.minimum(next_q1_target, next_q2_target)


def td3_target(rewards: torch.Tensor, next_observations: torch.Tensor, terminated: torch.Tensor,
               gamma: float, actor_target: nn.Module, critic1_target: nn.Module,
               critic2_target: nn.Module, noise_std: float, noise_clip: float,
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """TD3's whole target: target policy smoothing, then clipped double Q, shape ``(B,)``.

    ``ã = clip(μ'(s') + clip(ε, −c, c), −1, 1)`` with ``ε ~ N(0, σ²)``, then
    ``y = r + γ (1 − terminated) min(Q1'(s', ã), Q2'(s', ã))``: both target critics judge the
    same smoothed action.
    """
    next_actions = td3_target_actions(actor_target(next_observations), noise_std, noise_clip,
                                      generator)
    return td3_critic_target(rewards, critic1_target(next_observations, next_actions),
                             critic2_target(next_observations, next_actions), terminated, gamma)


class DDPGAgent(OffPolicyAgent):
    """DDPG, or TD3 with ``twin_critics=True, policy_delay=2, target_noise=0.2``.

    Args:
        observation_space: a one-dimensional Box.
        action_space: a bounded one-dimensional Box; networks work in ``[-1, 1]`` and actions
            are scaled to ``[low, high]``.
        n_layers, size: the hidden layers of actor and critics (ReLU).
        actor_learning_rate, critic_learning_rate: Adam step sizes.
        gamma: the discount factor. tau: the Polyak coefficient of the target networks.
        exploration: noise added to the actor's unit-box action when acting (``GaussianNoise``
            or ``OrnsteinUhlenbeckNoise``); default Gaussian with σ = 0.1.
        twin_critics: learn two critics and use their minimum in the target (TD3).
        policy_delay: update actor and targets once every this many critic updates (TD3: 2).
        target_noise, target_noise_clip: target policy smoothing σ and c (TD3: 0.2, 0.5; 0: off).
        target_smoothing: ``(next_actions, noise_std, noise_clip, generator) -> next_actions``.
        critic_target: ``(rewards, next_q_target, terminated, gamma) -> (B,)`` for DDPG; with
            twin critics ``(rewards, next_q1, next_q2, terminated, gamma) -> (B,)``.
        actor_loss: ``q_values (B,) -> scalar``.
        td3_target: the whole TD3 target in one function (``td3_target``'s signature: rewards,
            next observations, terminated, γ, the target actor, the two target critics, σ, c and
            the noise generator); when given it replaces ``target_smoothing`` and
            ``critic_target``. Needs ``twin_critics``; ``target_noise=0`` turns smoothing off.
        device, seed: where the networks live; seeds initialisation and noise.
    """

    def __init__(self, observation_space: gym.Space, action_space: gym.Space,
                 n_layers: int = 2, size: int = 256, actor_learning_rate: float = 1e-3,
                 critic_learning_rate: float = 1e-3, gamma: float = 0.99, tau: float = 0.005,
                 exploration: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
                 twin_critics: bool = False, policy_delay: int = 1, target_noise: float = 0.0,
                 target_noise_clip: float = 0.5,
                 target_smoothing: Callable[..., torch.Tensor] = td3_target_actions,
                 critic_target: Optional[Callable[..., torch.Tensor]] = None,
                 actor_loss: Callable[[torch.Tensor], torch.Tensor] = ddpg_actor_loss,
                 td3_target: Optional[Callable[..., torch.Tensor]] = None,
                 device: Optional[torch.device | str] = None, seed: Optional[int] = None) -> None:
        check_box_action_space(action_space, "DDPG/TD3")
        if td3_target is not None and not twin_critics:
            raise ValueError("td3_target needs twin_critics=True (it takes the minimum of two "
                             "target critics); for one critic pass critic_target instead")
        self.device = torch.device(device) if device is not None else get_device()
        if seed is not None:
            torch.manual_seed(seed)
        self.generator = torch.Generator()
        self.generator.manual_seed(seed if seed is not None else torch.seed())
        n_inputs = flat_size(observation_space, "observation_space")
        n_actions = int(action_space.shape[0])
        self.gamma, self.tau = gamma, tau
        self.policy_delay = check_int("policy_delay", policy_delay)
        self.target_noise, self.target_noise_clip = target_noise, target_noise_clip
        self.target_smoothing = target_smoothing
        self.twin_critics = twin_critics
        self.critic_target = critic_target or (td3_critic_target if twin_critics
                                               else ddpg_critic_target)
        self.actor_loss = actor_loss
        self.td3_target = td3_target
        self.scaler = ActionScaler(action_space, self.device)
        self.actor = DeterministicActor(n_inputs, n_actions, n_layers, size, self.device)
        self.critics = nn.ModuleList(QCritic(n_inputs, n_actions, n_layers, size, self.device)
                                     for _ in range(2 if twin_critics else 1))
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critics_target = copy.deepcopy(self.critics).requires_grad_(False)
        self.actor_optimizer = make_adam(self.actor.parameters(), actor_learning_rate, self.device)
        self.critic_optimizer = make_adam(self.critics.parameters(), critic_learning_rate,
                                          self.device)
        self.exploration = exploration or GaussianNoise(0.1, self.generator)
        self.policy = ActorPolicy(self.actor, self.scaler, self.device, self.exploration)
        self.updates = 0
        self.last_actor_loss = torch.zeros((), device=self.device)  # logged between actor steps

    def act(self, observation: Any, step: int) -> Any:
        """``μ(s)`` plus exploration noise, clipped to the box and scaled to the bounds."""
        return self.policy.get_action(observation)

    def end_episode(self) -> None:
        self.exploration.reset()

    def update(self, batch: ReplayBatch) -> dict[str, torch.Tensor]:
        """One critic step; every ``policy_delay`` steps one actor step and the target updates."""
        actions = self.scaler.to_unit(batch.actions)
        terminated = batch.terminated.float()
        with torch.no_grad():
            if self.td3_target is not None:
                targets = self.td3_target(batch.rewards, batch.next_observations, terminated,
                                          self.gamma, self.actor_target, *self.critics_target,
                                          self.target_noise, self.target_noise_clip,
                                          self.generator)
            else:
                next_actions = self.actor_target(batch.next_observations)
                if self.target_noise > 0:
                    next_actions = self.target_smoothing(next_actions, self.target_noise,
                                                         self.target_noise_clip, self.generator)
                next_q = [critic(batch.next_observations, next_actions)
                          for critic in self.critics_target]
                targets = self.critic_target(batch.rewards, *next_q, terminated, self.gamma)
        q_values = [critic(batch.observations, actions) for critic in self.critics]
        critic_loss = sum(F.mse_loss(q, targets) for q in q_values)
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()
        self.updates += 1
        metrics = {"critic_loss": critic_loss.detach(), "q": q_values[0].detach().mean()}
        if self.updates % self.policy_delay == 0:
            # The critic is only read here: freezing it keeps its gradients clean and saves work.
            self.critics[0].requires_grad_(False)
            actor_loss = self.actor_loss(self.critics[0](batch.observations,
                                                         self.actor(batch.observations)))
            self.critics[0].requires_grad_(True)
            self.actor_optimizer.zero_grad(set_to_none=True)
            actor_loss.backward()
            self.actor_optimizer.step()
            polyak_update(self.actor_target, self.actor, self.tau)
            polyak_update(self.critics_target, self.critics, self.tau)
            self.last_actor_loss = actor_loss.detach()
        metrics["actor_loss"] = self.last_actor_loss
        return metrics

    def state_dict(self) -> dict[str, Any]:
        return {"actor": self.actor.state_dict(), "critics": self.critics.state_dict(),
                "actor_target": self.actor_target.state_dict(),
                "critics_target": self.critics_target.state_dict(),
                "actor_optimizer": self.actor_optimizer.state_dict(),
                "critic_optimizer": self.critic_optimizer.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in ("actor", "critics", "actor_target", "critics_target", "actor_optimizer",
                     "critic_optimizer"):
            getattr(self, name).load_state_dict(state[name])
        self.updates = int(state["updates"])


class TD3Agent(DDPGAgent):
    """TD3: DDPG with twin critics, delayed actor updates and target policy smoothing."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space,
                 twin_critics: bool = True, policy_delay: int = 2, target_noise: float = 0.2,
                 target_noise_clip: float = 0.5, **kwargs: Any) -> None:
        super().__init__(observation_space, action_space, twin_critics=twin_critics,
                         policy_delay=policy_delay, target_noise=target_noise,
                         target_noise_clip=target_noise_clip, **kwargs)
