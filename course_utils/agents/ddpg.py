"""DDPG and TD3 (notebook 08): a deterministic actor trained through a learned Q-function.

DDPG (Lillicrap et al. 2016) regresses a critic on a TD target and moves the actor uphill on it::

    y = r + γ (1 − terminated) Q'(s', μ'(s'))             critic: min (1/B) Σ (Q(s, a) − y)²
    actor: min −(1/B) Σ Q(s, μ(s))                         targets: θ' ← τ θ + (1 − τ) θ'

TD3 (Fujimoto et al. 2018) adds three fixes against overestimation: target policy smoothing
``ã = clip(μ'(s') + clip(ε, −c, c), −1, 1)``, ``ε ~ N(0, σ²)``; clipped double Q
``y = r + γ (1 − terminated) min_j Q'_j(s', ã)``; and an actor (and target) update only every
``policy_delay`` critic updates. ``td3_target`` is the one target of both: DDPG is its special
case with one critic and σ = 0. Pseudocode of ``train``::

    for t = 1 … total_steps:
        a = uniform random (t ≤ learning_starts), else clip(μ(s) + exploration noise, −1, 1)
        step the environment; store (s, a, r, s', terminated, truncated), s' the true next state
        if t > learning_starts and t % train_every == 0: update(agent, a sampled batch, config)

Networks work in the unit box ``[-1, 1]^d`` (the actor ends in tanh); actions are scaled to the
environment's ``[low, high]`` only when they are sent to it, and stored in the buffer unscaled.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.buffers import ReplayBatch, ReplayBuffer
from course_utils.device import get_device
from course_utils.trajectory import evaluate
from course_utils.nn import MLPConfig, build_mlp, flat_size, make_adam, polyak_update
from course_utils.tracking import TrainConfig, Tracker, TrainingRun
from course_utils.validation import check_int


@dataclass
class DDPGConfig(TrainConfig):
    """DDPG's hyperparameters; ``td3_config()`` gives TD3's (twin critics, smoothing, delay)."""

    total_steps: int = 10_000
    n_layers: int = 2  # hidden layers of actor and critics (ReLU)
    size: int = 64
    actor_learning_rate: float = 1e-3
    critic_learning_rate: float = 1e-3
    gamma: float = 0.99
    tau: float = 0.005  # Polyak coefficient of the target networks
    buffer_size: int = 50_000
    batch_size: int = 128
    learning_starts: int = 1_000  # uniformly random actions (and no update) before this step
    train_every: int = 1  # one update every this many environment steps
    exploration_noise: float = 0.1  # σ of the acting noise, in the unit box
    ou_theta: float = 0.0  # > 0: Ornstein-Uhlenbeck noise with this θ; 0: Gaussian
    twin_critics: bool = False  # TD3: two critics, the minimum in the target
    target_noise: float = 0.0  # TD3: σ of target policy smoothing (0: off)
    target_noise_clip: float = 0.5  # TD3: c
    policy_delay: int = 1  # TD3: actor and targets updated every this many critic updates


def td3_config(**changes: Any) -> DDPGConfig:
    """TD3's settings: DDPG's plus twin critics, σ = 0.2, c = 0.5 and a policy delay of 2."""
    return DDPGConfig(**{"twin_critics": True, "target_noise": 0.2, "policy_delay": 2, **changes})


# ------------------------------------------------------------------------------------ networks


class QCritic(nn.Module):
    """``Q(s, a)``: an MLP on the concatenation of observation ``(B, n)`` and unit-box action
    ``(B, d)``; returns ``(B,)``."""

    def __init__(self, observation_size: int, action_size: int, config: DDPGConfig) -> None:
        super().__init__()
        self.net = build_mlp(MLPConfig(observation_size + action_size, 1, config.n_layers,
                                       config.size, "relu"))

    def forward(self, observations: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([observations, actions], dim=-1)).squeeze(-1)


class ExplorationNoise:
    """The noise ``ε_t`` added to ``μ(s_t)`` when acting, shape ``(d,)``: Gaussian ``σ ξ`` when
    ``theta = 0``; otherwise Ornstein-Uhlenbeck ``x ← x − θ x Δt + σ √Δt ξ``, which keeps pushing
    in one direction for a while (``reset`` at the start of an episode). ``ξ ~ N(0, I)``."""

    def __init__(self, size: int, sigma: float, theta: float = 0.0, dt: float = 1e-2,
                 generator: Optional[torch.Generator] = None) -> None:
        self.size, self.sigma, self.theta, self.dt = size, sigma, theta, dt
        self.generator = generator
        self.state = torch.zeros(size)

    def __call__(self) -> torch.Tensor:
        xi = torch.randn(self.size, generator=self.generator)
        if self.theta == 0.0:
            return self.sigma * xi
        self.state = self.state - self.theta * self.state * self.dt + self.sigma * math.sqrt(self.dt) * xi
        return self.state

    def reset(self) -> None:
        self.state = torch.zeros(self.size)


class DDPGAgent(nn.Module):
    """Actor ``μ(s) = tanh(MLP(s))``, one or two critics, their target copies and optimisers.

    ``state_dict`` holds the networks (what keep-best saves); ``updates`` counts critic updates
    (for the policy delay); ``generator`` draws the exploration and target-smoothing noise.
    """

    def __init__(self, observation_space: gym.Space, action_space: gym.Space,
                 config: DDPGConfig) -> None:
        super().__init__()
        check_box_action_space(action_space, "DDPG/TD3")
        self.device = get_device()
        torch.manual_seed(config.seed)
        self.generator = torch.Generator().manual_seed(config.seed)
        n_inputs, n_actions = flat_size(observation_space, "observation_space"), action_space.shape[0]
        self.actor = build_mlp(MLPConfig(n_inputs, n_actions, config.n_layers, config.size, "relu",
                                         output_activation="tanh"))
        self.critics = nn.ModuleList(QCritic(n_inputs, n_actions, config)
                                     for _ in range(2 if config.twin_critics else 1))
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critics_target = copy.deepcopy(self.critics).requires_grad_(False)
        self.actor_optimizer = make_adam(self.actor.parameters(), config.actor_learning_rate)
        self.critic_optimizer = make_adam(self.critics.parameters(), config.critic_learning_rate)
        self.noise = ExplorationNoise(n_actions, config.exploration_noise, config.ou_theta,
                                      generator=self.generator)
        self.centre, self.half_width = action_box(action_space, self.device)
        self.updates = 0
        self.buffer: Optional[ReplayBuffer] = None  # made by train, kept to continue a run

    def to_env(self, unit_actions: torch.Tensor) -> np.ndarray:
        """``centre + a · half_width`` for ``a`` in ``[-1, 1]^d``: the box's bounds, as NumPy."""
        return (self.centre + self.half_width * unit_actions).cpu().numpy()

    @torch.no_grad()
    def greedy_action(self, observation: np.ndarray) -> np.ndarray:
        """``μ(s)`` scaled to the bounds: the evaluation action."""
        observation = torch.as_tensor(observation, dtype=torch.float32, device=self.device)
        return self.to_env(self.actor(observation))

    @torch.no_grad()
    def explore(self, observation: np.ndarray) -> torch.Tensor:
        """``clip(μ(s) + ε, −1, 1)`` in the unit box, shape ``(d,)``: the training action."""
        observation = torch.as_tensor(observation, dtype=torch.float32, device=self.device)
        return (self.actor(observation) + self.noise().to(self.device)).clamp(-1.0, 1.0)

    def end_episode(self) -> None:
        self.noise.reset()


def action_box(action_space: gym.spaces.Box, device: torch.device) -> tuple[torch.Tensor, ...]:
    """The box's centre ``(high + low)/2`` and half-width ``(high − low)/2``, each ``(d,)``."""
    low, high = (torch.as_tensor(b, dtype=torch.float32, device=device)
                 for b in (action_space.low, action_space.high))
    return (high + low) / 2, (high - low) / 2


def check_box_action_space(action_space: gym.Space, algorithm: str) -> None:
    """A bounded one-dimensional Box, or a ValueError that says what the algorithm needs."""
    if not (isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1
            and np.all(np.isfinite(action_space.low)) and np.all(np.isfinite(action_space.high))):
        raise ValueError(f"action_space: {algorithm} needs a bounded one-dimensional Box, got "
                         f"{action_space}; for discrete actions use DQN (agents/dqn.py)")


# ---------------------------------------------------------------------------- target and updates


def td3_target(rewards: torch.Tensor, next_observations: torch.Tensor, terminated: torch.Tensor,
               gamma: float, actor_target: nn.Module, critics_target: Sequence[nn.Module],
               noise_std: float, noise_clip: float,
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """``y = r + γ (1 − terminated) min_j Q'_j(s', ã)``, ``ã = clip(μ'(s') + clip(ε, −c, c), −1, 1)``.

    ``rewards``, ``terminated`` (floats, 1.0 at a terminal ``s'``) ``(B,)``; ``next_observations``
    ``(B, n)``; ``ε ~ N(0, σ²)`` with σ = ``noise_std``, drawn from ``generator``. Every target
    critic judges the same ``ã``. One critic and σ = 0 give DDPG's target. Returns ``(B,)``.
    """
    next_actions = actor_target(next_observations)
    if noise_std > 0:  # target policy smoothing: Q averaged over a neighbourhood of μ'(s')
        noise = torch.randn(next_actions.shape, generator=generator).to(next_actions.device)
        next_actions = (next_actions + (noise_std * noise).clamp(-noise_clip, noise_clip)).clamp(-1, 1)
    next_q = torch.stack([critic(next_observations, next_actions) for critic in critics_target])
    return rewards + gamma * (1.0 - terminated) * next_q.min(dim=0).values


def ddpg_update(agent: DDPGAgent, batch: ReplayBatch, config: DDPGConfig) -> dict[str, torch.Tensor]:
    """One critic step on the target (3), one actor step on ``−mean Q(s, μ(s))``, then the
    Polyak updates of both targets. ``terminated`` only masks the bootstrap: a truncated
    transition's ``s'`` still has a future."""
    with torch.no_grad():  # y is a regression target, not a function of the critic's parameters
        targets = td3_target(batch.rewards, batch.next_observations, batch.terminated.float(),
                             config.gamma, agent.actor_target, agent.critics_target, 0.0, 0.0)
    q_values = agent.critics[0](batch.observations, batch.actions)
    critic_loss = F.mse_loss(q_values, targets)
    agent.critic_optimizer.zero_grad(set_to_none=True)
    critic_loss.backward()
    agent.critic_optimizer.step()
    # The actor's gradient flows through the critic into the action, not into the critic.
    agent.critics.requires_grad_(False)
    actor_loss = -agent.critics[0](batch.observations, agent.actor(batch.observations)).mean()
    agent.critics.requires_grad_(True)
    agent.actor_optimizer.zero_grad(set_to_none=True)
    actor_loss.backward()
    agent.actor_optimizer.step()
    polyak_update(agent.actor_target, agent.actor, config.tau)
    polyak_update(agent.critics_target, agent.critics, config.tau)
    return {"critic_loss": critic_loss.detach(), "actor_loss": actor_loss.detach(),
            "q": q_values.detach().mean()}


def td3_update(agent: DDPGAgent, batch: ReplayBatch, config: DDPGConfig) -> dict[str, torch.Tensor]:
    """One step of both critics on TD3's target; every ``policy_delay``-th call also one actor step
    (on the first critic) and the Polyak updates of all targets. ``actor_loss`` is returned only
    when the actor moved."""
    with torch.no_grad():
        targets = td3_target(batch.rewards, batch.next_observations, batch.terminated.float(),
                             config.gamma, agent.actor_target, agent.critics_target,
                             config.target_noise, config.target_noise_clip, agent.generator)
    q_values = [critic(batch.observations, batch.actions) for critic in agent.critics]
    critic_loss = sum(F.mse_loss(q, targets) for q in q_values)
    agent.critic_optimizer.zero_grad(set_to_none=True)
    critic_loss.backward()
    agent.critic_optimizer.step()
    agent.updates += 1
    metrics = {"critic_loss": critic_loss.detach(), "q": q_values[0].detach().mean()}
    if agent.updates % config.policy_delay == 0:  # delayed: the critic's error shrinks first
        agent.critics.requires_grad_(False)
        actor_loss = -agent.critics[0](batch.observations, agent.actor(batch.observations)).mean()
        agent.critics.requires_grad_(True)
        agent.actor_optimizer.zero_grad(set_to_none=True)
        actor_loss.backward()
        agent.actor_optimizer.step()
        polyak_update(agent.actor_target, agent.actor, config.tau)
        polyak_update(agent.critics_target, agent.critics, config.tau)
        metrics["actor_loss"] = actor_loss.detach()
    return metrics


# --------------------------------------------------------------------------------- training

Update = Callable[[Any, ReplayBatch, Any], dict[str, torch.Tensor]]


def train(env: gym.Env, config: Optional[DDPGConfig] = None, update: Update = ddpg_update,
          agent: Optional[DDPGAgent] = None, tracker: Optional[Tracker] = None,
          on_evaluation: Optional[Callable[[Any], dict[str, float]]] = None,
          ) -> tuple[DDPGAgent, Tracker]:
    """Train DDPG (or TD3: ``td3_config()`` and ``update=td3_update``) on ``env``.

    ``update(agent, batch, config)`` is the update step (yours in the notebook).
    ``on_evaluation(agent) -> {metric: value}`` adds metrics to each evaluation. Passing the
    returned agent and tracker again continues the run. Returns ``(agent, tracker)``.
    """
    config = config if config is not None else DDPGConfig()
    agent = agent if agent is not None else DDPGAgent(env.observation_space, env.action_space,
                                                      config)
    return agent, off_policy_loop(env, agent, config, update, tracker, on_evaluation)


def off_policy_loop(env: gym.Env, agent: Any, config: Any, update: Update,
                    tracker: Optional[Tracker] = None,
                    on_evaluation: Optional[Callable[[Any], dict[str, float]]] = None) -> Tracker:
    """The replay loop shared by DDPG, TD3 and SAC (``sac.train`` calls it).

    ``agent`` provides ``explore(observation) -> unit-box action (d,)``, ``greedy_action``,
    ``to_env``, ``end_episode`` and a ``buffer`` slot; ``config`` the fields of ``DDPGConfig``'s
    replay section (buffer_size, batch_size, learning_starts, train_every) and ``TrainConfig``'s.
    """
    check_box_action_space(env.action_space, type(agent).__name__)
    for name in ("buffer_size", "batch_size", "train_every"):
        check_int(name, getattr(config, name))
    check_int("learning_starts", config.learning_starts, minimum=0)
    if agent.buffer is None:
        agent.buffer = ReplayBuffer.for_env(env, config.buffer_size, device=agent.device,
                                            seed=config.seed)
    eval_env = gym.make(env.spec) if config.eval_every else None
    centre, half_width = (b.cpu().numpy() for b in action_box(env.action_space, agent.device))

    def evaluate_agent() -> dict[str, float]:
        returns = evaluate(eval_env, agent.greedy_action, config.eval_episodes,
                           seed=config.seed + 1_000_000)  # the same episodes every time
        extra = on_evaluation(agent) if on_evaluation is not None else {}
        return {"eval_return": float(returns.mean()), "eval_return_std": float(returns.std()),
                **extra}

    # TD3's actor_loss exists every policy_delay updates: each update logs the latest value of
    # every metric (the first log period, which starts with a critic-only update, omits it).
    latest: dict[str, torch.Tensor] = {}
    with TrainingRun(config, agent, evaluate_agent, tracker) as run:
        first_run = run.step == 0
        env.action_space.seed(config.seed if first_run else None)
        # A continued run starts a new episode: an environment's state cannot be saved.
        observation, _ = env.reset(seed=config.seed if first_run else config.seed + run.step)
        episode_return, episode_length = 0.0, 0
        while not run.finished:
            if run.step < config.learning_starts:  # uniform in the box = uniform in the unit box
                action = env.action_space.sample()
                unit = (action - centre) / half_width
            else:
                explored = agent.explore(observation)
                action, unit = agent.to_env(explored), explored.cpu().numpy()
            next_observation, reward, terminated, truncated, _ = env.step(action)
            # s' is the true next state, also at truncation; the update masks with `terminated`
            # only, so a transition cut by the time limit bootstraps from its s'.
            agent.buffer.add(observation, unit, reward, next_observation, terminated, truncated)
            episode_return += float(reward)
            episode_length += 1
            step = run.step + 1
            if step > config.learning_starts and step % config.train_every == 0:
                latest.update(update(agent, agent.buffer.sample(config.batch_size), config))
                run.update(dict(latest))
            run.advance(1)
            if terminated or truncated:
                run.episode(episode_return, episode_length)
                agent.end_episode()
                observation, _ = env.reset()
                episode_return, episode_length = 0.0, 0
            else:
                observation = next_observation
    return run.tracker
