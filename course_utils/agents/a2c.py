"""A2C: advantage actor-critic on N environments stepped together (notebook 06).

The actor ``π_θ(a|s)`` (a Categorical over discrete actions) and the critic ``V_φ(s)`` are two
MLPs trained by one optimiser on one loss, over rollouts of ``T`` steps of ``N`` environments::

    δ_t   = r_t + γ (1 − d_t) V(s_{t+1}) − V(s_t)                     the TD error
    Â_t   = δ_t + γλ (1 − done_t) Â_{t+1},   Â_T = 0                   GAE(λ), backwards
    R_t   = Â_t + V(s_t)                                               the critic's target
    L     = −mean(log π_θ(a_t|s_t) Â_t) + c_v mean((R_t − V_φ(s_t))²) − c_e mean(H[π_θ(·|s_t)])

A truncated episode (a time limit, not a terminal state) still has a future, worth
``V(final observation)``. With same-step autoreset the observation the vector environment returns
after such a step is already the next episode's first, so the rollout adds ``γ V(final obs)`` to
that step's reward and then treats the step as an episode end (SB3 and CleanRL do the same);
``δ_t = r_t + γ V(s_final) − V(s_t)`` as it should be.

Pseudocode (Mnih et al. 2016, synchronous version)::

    for each iteration:
        collect T steps of N environments with π_θ: observations, actions, V(s_t), rewards,
            episode ends; at a truncation reward += γ V(final observation); V(s_T) at the end
        Â, R ← GAE(λ) on the (T, N) rollout
        one gradient step on L over the T·N samples (gradient norm clipped)

The notebook's student writes ``collect_rollout`` and ``a2c_update``; ``train`` takes both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical

from course_utils.device import get_device, set_seed
from course_utils.envs.vector import make_vector_env
from course_utils.nn import MLPConfig, build_mlp, make_adam, orthogonal_init
from course_utils.returns import gae
from course_utils.tracking import Tracker, TrainConfig, TrainingRun
from course_utils.trajectory import evaluate


@dataclass
class A2CConfig(TrainConfig):
    """A2C's hyperparameters (the defaults are Stable-Baselines3's for A2C, except the learning
    rate), on top of ``TrainConfig``'s budget, seed and reporting."""

    n_envs: int = 8  # N, environments stepped together
    n_steps: int = 5  # T, steps per environment in one rollout
    learning_rate: float = 7e-4
    anneal_lr: bool = False  # decay the learning rate linearly to 0 over total_steps
    gamma: float = 0.99
    gae_lambda: float = 1.0  # 1: the n-step return bootstrapped at the rollout's end
    value_coef: float = 0.5  # c_v
    entropy_coef: float = 0.0  # c_e
    max_grad_norm: float = 0.5  # clip the gradient's global norm
    normalize_advantages: bool = False  # standardise Â over each rollout
    n_layers: int = 2  # hidden layers of actor and critic
    size: int = 64  # units per hidden layer
    activation: str = "tanh"
    device: Optional[str] = None  # None: get_device()


# ------------------------------------------------------------------------------- networks


class ActorCritic(nn.Module):
    """The actor ``π_θ(·|s)`` (logits of a Categorical) and the critic ``V_φ(s)``: two MLPs that
    share no weights, initialised orthogonally (gain √2, the output layers 0.01 and 1) as the
    common PPO and A2C implementations do, so that the first policy is nearly uniform."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space,
                 config: A2CConfig) -> None:
        super().__init__()
        if not isinstance(observation_space, gym.spaces.Box) or len(observation_space.shape) != 1:
            raise ValueError(f"observation_space must be a one-dimensional Box, got {observation_space}")
        if not isinstance(action_space, gym.spaces.Discrete) or int(action_space.start) != 0:
            raise ValueError(f"action_space must be Discrete(n) (starting at 0): this A2C has a "
                             f"Categorical policy; got {action_space}")
        self.device = torch.device(config.device) if config.device is not None else get_device()
        self.observation_size = int(observation_space.shape[0])
        hidden = dict(n_layers=config.n_layers, size=config.size, activation=config.activation)
        self.actor = build_mlp(MLPConfig(self.observation_size, int(action_space.n), **hidden),
                               device=self.device)
        self.critic = build_mlp(MLPConfig(self.observation_size, 1, **hidden), device=self.device)
        orthogonal_init(self.actor, last_gain=0.01)
        orthogonal_init(self.critic, last_gain=1.0)

    def distribution(self, observations: torch.Tensor) -> Categorical:
        """``π_θ(·|s)`` for observations ``(B, obs_size)``: a batch of ``B`` Categoricals."""
        return Categorical(logits=self.actor(observations), validate_args=False)

    def value(self, observations: torch.Tensor) -> torch.Tensor:
        """``V_φ(s)`` for observations ``(B, obs_size)``: shape ``(B,)``."""
        return self.critic(observations).squeeze(-1)

    @torch.no_grad()
    def act(self, observations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sampled actions ``(N,)`` (int64) and ``V(s)`` ``(N,)`` for observations ``(N, obs_size)``."""
        actions = self.distribution(observations).sample()
        return actions, self.value(observations)

    @torch.no_grad()
    def greedy_action(self, observation: np.ndarray) -> int:
        """The most likely action for one observation (evaluations and animations)."""
        obs = torch.as_tensor(observation, dtype=torch.float32, device=self.device)
        return int(self.actor(obs).argmax())

    @torch.no_grad()
    def get_action(self, observation: np.ndarray) -> int:
        """A sample of ``π_θ(·|s)`` for one observation."""
        obs = torch.as_tensor(observation, dtype=torch.float32, device=self.device)
        return int(self.distribution(obs).sample())


# ------------------------------------------------------------------------------- the rollout


@dataclass
class Rollout:
    """T steps of N environments, on the training device; ``(T, N)`` unless said otherwise."""

    observations: torch.Tensor  # (T, N, obs_size): s_t, on which a_t was chosen
    actions: torch.Tensor  # int64
    values: torch.Tensor  # V(s_t) when acting (no gradient)
    rewards: torch.Tensor  # r_t, plus γ V(final observation) where an episode was truncated
    dones: torch.Tensor  # 1.0 where an episode ended at step t (terminated or truncated)
    last_values: torch.Tensor  # (N,): V(s_T), the observations after the last step

    @classmethod
    def empty(cls, n_steps: int, n_envs: int, observation_size: int,
              device: torch.device) -> "Rollout":
        """A rollout of zeros, to fill step by step (``rollout.rewards[t] = ...``)."""
        def zeros(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
            return torch.zeros(shape, dtype=dtype, device=device)
        return cls(zeros(n_steps, n_envs, observation_size),
                   zeros(n_steps, n_envs, dtype=torch.int64), zeros(n_steps, n_envs),
                   zeros(n_steps, n_envs), zeros(n_steps, n_envs), zeros(n_envs))


def collect_rollout(envs: gym.vector.VectorEnv, model: ActorCritic, observations: np.ndarray,
                    n_steps: int, gamma: float) -> tuple[Rollout, np.ndarray]:
    """Step the N environments ``n_steps`` times with ``model``'s actor from ``observations``
    ``(N, obs_size)``; returns the rollout and the observations to continue from.

    The reference solution of notebook 06's rollout exercise.
    """
    rollout = Rollout.empty(n_steps, envs.num_envs, model.observation_size, model.device)
    for t in range(n_steps):
        obs = torch.as_tensor(observations, dtype=torch.float32, device=model.device)
        actions, values = model.act(obs)
        observations, rewards, terminated, truncated, infos = envs.step(actions.cpu().numpy())
        rewards = torch.as_tensor(rewards, dtype=torch.float32, device=model.device)
        cut = truncated & ~terminated  # episodes cut by the time limit: their future counts
        if cut.any():  # NumPy flags: no device synchronisation
            # Same-step autoreset: `observations` already starts the next episodes; the true
            # last observations of the cut ones are in infos["final_obs"].
            final = torch.as_tensor(np.stack(infos["final_obs"][cut]), dtype=torch.float32,
                                    device=model.device)
            with torch.no_grad():
                rewards[torch.as_tensor(np.flatnonzero(cut), device=model.device)] += \
                    gamma * model.value(final)
        rollout.observations[t], rollout.actions[t], rollout.values[t] = obs, actions, values
        rollout.rewards[t] = rewards
        rollout.dones[t] = torch.as_tensor(terminated | truncated, device=model.device)
    with torch.no_grad():
        rollout.last_values = model.value(
            torch.as_tensor(observations, dtype=torch.float32, device=model.device))
    return rollout, observations


# ------------------------------------------------------------------------------- the update


def a2c_update(model: ActorCritic, optimizer: torch.optim.Optimizer, rollout: Rollout,
               config: A2CConfig) -> dict[str, torch.Tensor]:
    """One A2C gradient step on the ``T·N`` samples of ``rollout``; returns the losses.

    The reference solution of notebook 06's update exercise.
    """
    # V(s_{t+1}): the next step's value, V(s_T) after the last step. Where an episode ended,
    # dones masks it (a truncation's bootstrap is already in its reward).
    next_values = torch.cat([rollout.values[1:], rollout.last_values[None]])
    advantages = gae(rollout.rewards, rollout.values, next_values, rollout.dones, rollout.dones,
                     config.gamma, config.gae_lambda)
    returns = (advantages + rollout.values).flatten()  # λ-returns, the critic's targets
    advantages = advantages.flatten()
    if config.normalize_advantages:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    observations, actions = rollout.observations.flatten(0, 1), rollout.actions.flatten()
    distribution = model.distribution(observations)
    log_probs, entropy = distribution.log_prob(actions), distribution.entropy()
    values = model.value(observations)
    policy_loss = -(log_probs * advantages.detach()).mean()  # Â is a constant weight
    value_loss = ((returns - values) ** 2).mean()
    loss = policy_loss + config.value_coef * value_loss - config.entropy_coef * entropy.mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
    optimizer.step()
    return {"loss": loss.detach(), "policy_loss": policy_loss.detach(),
            "value_loss": value_loss.detach(), "entropy": entropy.mean().detach()}


# ------------------------------------------------------------------------------- training

Collect = Callable[[gym.vector.VectorEnv, ActorCritic, np.ndarray, int, float],
                   tuple[Rollout, np.ndarray]]
Update = Callable[[ActorCritic, torch.optim.Optimizer, Rollout, A2CConfig], dict[str, Any]]


def train(env_id: str, config: A2CConfig, update: Update = a2c_update,
          collect: Collect = collect_rollout, model: Optional[ActorCritic] = None,
          tracker: Optional[Tracker] = None) -> tuple[ActorCritic, Tracker]:
    """A2C on ``config.n_envs`` copies of ``env_id`` for ``config.total_steps`` environment steps.

    ``collect`` and ``update`` are the two steps of each iteration (a student's functions, or
    the references). Evaluations (``config.eval_every``) play ``config.eval_episodes`` greedy
    episodes on a separate environment, seeds ``seed + 1_000_000 + i``. Pass back the returned
    model and tracker to continue an interrupted run (Adam then starts afresh).
    Returns the model (the best evaluated one with ``config.keep_best``) and the tracker.
    """
    envs = make_vector_env(env_id, config.n_envs, seed=config.seed)
    eval_env = gym.make(env_id)
    if model is None:
        set_seed(config.seed)
        model = ActorCritic(envs.single_observation_space, envs.single_action_space, config)
    optimizer = make_adam(model.parameters(), config.learning_rate, model.device)

    def evaluate_model() -> dict[str, float]:
        returns = evaluate(eval_env, model, config.eval_episodes, seed=config.seed + 1_000_000)
        return {"eval_return": float(returns.mean()), "eval_return_std": float(returns.std())}

    with TrainingRun(config, model, evaluate_model, tracker) as run:
        # A continued run starts new episodes: an environment's state cannot be saved.
        observations, _ = envs.reset(seed=config.seed + run.step)
        episodes_seen = envs.episode_count
        while not run.finished:
            if config.anneal_lr:
                for group in optimizer.param_groups:
                    group["lr"] = config.learning_rate * max(1.0 - run.step / config.total_steps, 0.0)
            rollout, observations = collect(envs, model, observations, config.n_steps, config.gamma)
            run.update(update(model, optimizer, rollout, config))
            run.advance(config.n_steps * config.n_envs)
            # The episodes that ended in this rollout (RecordEpisodeStatistics keeps the last 100).
            finished = min(envs.episode_count - episodes_seen, len(envs.return_queue))
            episodes_seen = envs.episode_count
            for i in range(-finished, 0):
                run.episode(float(envs.return_queue[i]), int(envs.length_queue[i]))
    envs.close()
    eval_env.close()
    return model, run.tracker
