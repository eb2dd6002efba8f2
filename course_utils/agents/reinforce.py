"""REINFORCE (vanilla policy gradient), notebook 05: one gradient step per batch of whole episodes.

The policy gradient, estimated from N episodes of B steps in all::

    ∇_θ J(θ) = E[ Σ_t ∇_θ log π_θ(a_t|o_t) Ψ_t ]
    Ψ_t = r(τ)                 the episode's total reward           (reward_to_go=False, gamma=1)
        = Ĝ_t = Σ_{k≥t} γ^{k−t} r_k   its reward-to-go              (reward_to_go=True)
        = Ĝ_t − V_φ(o_t)       minus a learned baseline             (baseline=True)

PyTorch minimises the surrogate loss ``L(θ) = −(1/B) Σ_t log π_θ(a_t|o_t) w_t``, the weights
``w_t`` held constant: its gradient is the estimate above, negated. A truncated episode's returns
are bootstrapped from the baseline, ``Ĝ_t += γ^{T−t} V_φ(o_T)``, when there is one (without a
critic the future after a time limit is unknown: it counts as zero).

Pseudocode::

    for iteration = 1, 2, ...:
        sample whole episodes with π_θ until the batch holds at least batch_steps steps
        Ĝ_t from each episode's own rewards (bootstrapped at a truncation if there is a V_φ)
        w_t = Ĝ_t (or the episode's return) minus V_φ(o_t), evaluated before V_φ is refitted
        one Adam step on L(θ)
        value_steps Adam steps on (1/B) Σ_t (V_φ(o_t) − Ĝ_t)²          (with a baseline)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical, Distribution, Independent, Normal

from course_utils.device import get_device, set_seed
from course_utils.nn import MLPConfig, build_mlp, flat_size
from course_utils.tracking import Tracker, TrainConfig, TrainingRun
from course_utils.trajectory import env_action, evaluate


@dataclass
class ReinforceConfig(TrainConfig):
    """REINFORCE's hyperparameters, besides the budget and reporting of ``TrainConfig``."""

    total_steps: int = 100_000
    batch_steps: int = 1_000  # sample whole episodes until the batch holds at least this many steps
    learning_rate: float = 5e-3  # Adam, policy
    reward_to_go: bool = True  # weight each step by Ĝ_t (True) or by the episode's return (False)
    gamma: float = 1.0  # discount of the returns; 1 for the undiscounted return
    baseline: bool = False  # subtract a learned V_φ(o_t) from the weights
    value_learning_rate: float = 1e-2  # Adam, baseline
    value_steps: int = 5  # regression steps of the baseline per batch
    n_layers: int = 2  # hidden layers of the policy and of the baseline
    size: int = 64  # units per hidden layer


# ----------------------------------------------------------------------------------- networks


class CategoricalPolicy(nn.Module):
    """``π_θ(a|o) = softmax(f_θ(o))_a`` for ``Discrete(n)`` actions: the MLP outputs n logits."""

    def __init__(self, observation_size: int, n_actions: int, config: ReinforceConfig) -> None:
        super().__init__()
        self.net = build_mlp(MLPConfig(observation_size, n_actions, config.n_layers, config.size))

    def distribution(self, observations: torch.Tensor) -> Distribution:
        """``π_θ(·|o)`` for observations ``(B, obs_size)``: batch shape ``(B,)``."""
        return Categorical(logits=self.net(observations), validate_args=False)

    def sample(self, observation: torch.Tensor) -> torch.Tensor:
        """One action index for one observation ``(obs_size,)``: a 0-d int64 tensor."""
        # The Gumbel-max trick, argmax_a (logit_a + g_a) with g_a = −log E_a, E_a ~ Exp(1), draws
        # a ~ softmax(logits) exactly, and costs less than a Categorical or torch.multinomial.
        logits = self.net(observation)
        return (logits - torch.empty_like(logits).exponential_().log()).argmax(-1)

    def greedy(self, observation: torch.Tensor) -> torch.Tensor:
        """The most likely action (for evaluation without exploration)."""
        return self.net(observation).argmax(-1)


class GaussianPolicy(nn.Module):
    """``π_θ(a|o) = N(μ_θ(o), diag σ²)`` for ``Box(d)`` actions; ``log σ`` is a learned vector
    (state-independent), so that σ stays positive without a constraint."""

    def __init__(self, observation_size: int, action_size: int, config: ReinforceConfig,
                 initial_log_std: float = -0.5) -> None:
        super().__init__()
        self.net = build_mlp(MLPConfig(observation_size, action_size, config.n_layers, config.size))
        self.log_std = nn.Parameter(torch.full((action_size,), initial_log_std))

    def distribution(self, observations: torch.Tensor) -> Distribution:
        """``π_θ(·|o)`` for observations ``(B, obs_size)``: batch shape ``(B,)``, event ``(d,)``."""
        # Independent(..., 1) sums the log-densities of the d dimensions: a diagonal Gaussian.
        return Independent(Normal(self.net(observations), self.log_std.exp(),
                                  validate_args=False), 1)

    def sample(self, observation: torch.Tensor) -> torch.Tensor:
        mean = self.net(observation)
        return mean + self.log_std.exp() * torch.randn_like(mean)

    def greedy(self, observation: torch.Tensor) -> torch.Tensor:
        return self.net(observation)


class ReinforceAgent(nn.Module):
    """The policy π_θ, the optional baseline V_φ (``None`` without one) and their optimisers."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space,
                 config: ReinforceConfig, device: torch.device | str | None = None) -> None:
        super().__init__()
        if not (isinstance(observation_space, gym.spaces.Box) and len(observation_space.shape) == 1):
            raise ValueError(f"observation_space must be a one-dimensional Box, got {observation_space}")
        self.device = torch.device(device) if device is not None else get_device()
        obs_size = observation_space.shape[0]
        if isinstance(action_space, gym.spaces.Discrete):
            if int(action_space.start) != 0:
                raise ValueError(f"action_space must be Discrete(n) starting at 0, got {action_space}")
            self.policy: nn.Module = CategoricalPolicy(obs_size, int(action_space.n), config)
        elif isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
            self.policy = GaussianPolicy(obs_size, flat_size(action_space, "action_space"), config)
        else:
            raise ValueError(f"action_space must be Discrete or a one-dimensional Box, got {action_space}")
        self.value = build_mlp(MLPConfig(obs_size, 1, config.n_layers, config.size)) \
            if config.baseline else None
        self.to(self.device)
        self.policy_optimizer = torch.optim.Adam(self.policy.parameters(), lr=config.learning_rate)
        self.value_optimizer = torch.optim.Adam(self.value.parameters(), lr=config.value_learning_rate) \
            if self.value is not None else None

    @torch.no_grad()
    def act(self, observation: np.ndarray, greedy: bool = False) -> Any:
        """The action for one observation: sampled from π_θ, or its mode if ``greedy``."""
        obs = torch.as_tensor(observation, dtype=torch.float32, device=self.device)
        return (self.policy.greedy(obs) if greedy else self.policy.sample(obs)).cpu().numpy()


@dataclass
class EpisodeBatch:
    """N whole episodes concatenated along time, B = Σ_i T_i steps, on the agent's device.

    Attributes:
        observations: ``(B, obs_size)`` float32, ``o_t``.
        actions: ``(B,)`` int64 (discrete) or ``(B, d)`` float32, ``a_t`` as sampled.
        rewards: ``(B,)`` float32, ``r_t``.
        lengths: the N episode lengths ``T_i`` (``rewards.split(lengths)`` gives each episode's).
        truncated: ``(N,)`` bool, whether episode i was cut off (True) or terminated (False).
        final_observations: ``(N, obs_size)``, ``o_{T_i}``, the observation after each last step.
    """

    observations: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    lengths: list[int]
    truncated: torch.Tensor
    final_observations: torch.Tensor


# ----------------------------------------------------------------------------------- update


def discounted_reward_to_go(rewards: torch.Tensor, gamma: float,
                            last_value: float | torch.Tensor = 0.0) -> torch.Tensor:
    """``Ĝ_t = r_t + γ Ĝ_{t+1}`` backwards from ``Ĝ_T = last_value``, for one episode ``(T,)``.

    ``last_value`` is 0 after a terminal state and ``V(o_T)`` to bootstrap a truncated episode.
    The recursion, unlike the closed form ``γ^{−t} Σ_k γ^k r_k``, cannot overflow.
    """
    # On Python floats: a loop over tensor elements would cost more than the whole update.
    returns, running = rewards.tolist(), float(last_value)
    for t in range(len(returns) - 1, -1, -1):
        running = returns[t] = returns[t] + gamma * running
    return torch.tensor(returns, dtype=rewards.dtype, device=rewards.device)


def reinforce_update(agent: ReinforceAgent, batch: EpisodeBatch,
                     config: ReinforceConfig) -> dict[str, torch.Tensor]:
    """One REINFORCE update from a batch of whole episodes; returns the losses (0-d tensors)."""
    # Bootstrap values: V_φ(o_T) for a truncated episode, 0 after a terminal state or without V_φ.
    last_values = torch.zeros(len(batch.lengths), device=batch.rewards.device)
    if agent.value is not None:
        with torch.no_grad():
            last_values = agent.value(batch.final_observations).squeeze(-1) * batch.truncated
    # Every step's return, from its own episode's rewards only (returns must not leak between
    # episodes): Ĝ_t, or the episode's return Ĝ_0 at each of its steps.
    returns = []
    for rewards, last_value in zip(batch.rewards.split(batch.lengths), last_values):
        episode_returns = discounted_reward_to_go(rewards, config.gamma, last_value)
        returns.append(episode_returns if config.reward_to_go
                       else episode_returns[0].expand_as(episode_returns))
    returns = torch.cat(returns)
    weights = returns
    if agent.value is not None:
        # The baseline enters the policy loss as a constant: detached, and evaluated before it is
        # refitted on this batch (refitted first, V_φ(o_t) would have seen Ĝ_t).
        weights = returns - agent.value(batch.observations).squeeze(-1).detach()
    log_probs = agent.policy.distribution(batch.observations).log_prob(batch.actions)
    loss = -(log_probs * weights).mean()  # the mean over the B steps of the batch
    agent.policy_optimizer.zero_grad()
    loss.backward()
    agent.policy_optimizer.step()
    metrics = {"loss": loss.detach()}
    if agent.value is not None:
        for _ in range(config.value_steps):
            value_loss = nn.functional.mse_loss(agent.value(batch.observations).squeeze(-1), returns)
            agent.value_optimizer.zero_grad()
            value_loss.backward()
            agent.value_optimizer.step()
        metrics["value_loss"] = value_loss.detach()
    return metrics


UpdateFn = Callable[[ReinforceAgent, EpisodeBatch, ReinforceConfig], dict[str, Any]]


# ----------------------------------------------------------------------------------- training


def train(env: gym.Env, config: ReinforceConfig, update: UpdateFn = reinforce_update,
          agent: Optional[ReinforceAgent] = None, tracker: Optional[Tracker] = None,
          eval_env: Optional[gym.Env] = None) -> tuple[ReinforceAgent, Tracker]:
    """Train REINFORCE on ``env`` for ``config.total_steps`` environment steps.

    ``update(agent, batch, config)`` is called once per batch (the notebook passes the student's).
    A new ``agent`` is built when none is given; pass an agent and its tracker to continue a run.
    The last batch finishes its episodes, so a run can exceed ``total_steps`` by one batch.
    Logged: each episode's ``return`` and ``episode_length``, the update's losses every
    ``config.log_every`` steps, and ``eval_return`` (greedy policy) every ``config.eval_every``.
    """
    if config.batch_steps < 1:
        raise ValueError(f"batch_steps must be >= 1, got {config.batch_steps}")
    if not 0.0 <= config.gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {config.gamma}")
    fresh = tracker is None or "env_steps" not in tracker.keys
    if fresh:
        set_seed(config.seed)  # the sampled actions; a given agent keeps its initial weights
    if agent is None:
        agent = ReinforceAgent(env.observation_space, env.action_space, config)
    if config.eval_every and eval_env is None:
        eval_env = gym.make(env.spec)  # evaluation must not cut a training episode short

    def evaluate_greedy() -> dict[str, float]:
        returns = evaluate(eval_env, lambda o: agent.act(o, greedy=True), config.eval_episodes,
                           seed=config.seed + 1_000_000)
        return {"eval_return": float(returns.mean())}

    device = agent.device
    with TrainingRun(config, agent, evaluate_greedy, tracker) as run:
        observation, _ = env.reset(seed=config.seed if fresh else None)
        while not run.finished:
            # 1. Sample whole episodes with π_θ until the batch holds at least batch_steps steps.
            observations, actions, rewards, lengths, truncations, finals = [], [], [], [], [], []
            while len(rewards) < config.batch_steps:
                start, done = len(rewards), False
                while not done:
                    action = agent.act(observation)
                    # The environment gets a clipped action, the batch the sampled one (exact log π).
                    next_observation, reward, terminated, truncated, _ = env.step(
                        env_action(action, env.action_space))
                    observations.append(observation)
                    actions.append(action)
                    rewards.append(float(reward))
                    observation, done = next_observation, terminated or truncated
                lengths.append(len(rewards) - start)
                truncations.append(truncated and not terminated)
                finals.append(observation)  # o_T, to bootstrap a truncated episode
                run.advance(lengths[-1])
                run.episode(sum(rewards[start:]), lengths[-1])
                observation, _ = env.reset()
            if run.solved:  # an evaluation during this batch reached solved_at: keep that policy
                break
            # 2. One update on the batch.
            batch = EpisodeBatch(
                observations=torch.as_tensor(np.array(observations), dtype=torch.float32,
                                             device=device),
                actions=torch.as_tensor(np.array(actions), device=device),
                rewards=torch.tensor(rewards, dtype=torch.float32, device=device),
                lengths=lengths,
                truncated=torch.tensor(truncations, device=device),
                final_observations=torch.as_tensor(np.array(finals), dtype=torch.float32,
                                                   device=device),
            )
            run.update(update(agent, batch, config))
    return agent, run.tracker
