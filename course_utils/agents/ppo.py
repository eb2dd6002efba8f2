"""PPO, proximal policy optimisation with the clipped surrogate (notebook 07), in one file.

Schulman et al., *Proximal policy optimization algorithms*, 2017; the details follow CleanRL's
``ppo.py`` and ``ppo_continuous_action.py``. With the probability ratio
``r = π_θ(a|s) / π_old(a|s) = exp(log π_θ(a|s) − log π_old(a|s))`` and the rollout's GAE
advantages ``Â`` and returns ``R = Â + V_old(s)``, each minibatch minimises

    L(θ, φ) = −mean(min(r Â, clip(r, 1 − ε, 1 + ε) Â))      the clipped surrogate, negated
              + c_v mean((V_φ(s) − R)²)                      the critic's squared error
              − c_e mean(H[π_θ(·|s)])                        the entropy bonus

and the approximate KL ``mean((r − 1) − log r)`` of an epoch can stop the update early.

    for iteration = 1, 2, …:
        run π_θ for T steps in each of N environments; store s, a, log π_old(a|s), r, V_old(s)
        V(final observation) bootstraps each truncated episode; Â and R by GAE(γ, λ)
        for epoch = 1 … K:
            for each of the T·N / M shuffled minibatches:
                normalise Â within the minibatch; gradient step on L, its norm clipped to c
            if the epoch's mean approximate KL > target_kl: stop the epochs
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
from course_utils.envs.vector import make_vector_env
from course_utils.nn import (MLPConfig, RunningNorm, build_mlp, flat_size, make_adam,
                             orthogonal_init)
from course_utils.returns import gae
from course_utils.tracking import Tracker, TrainConfig, TrainingRun
from course_utils.trajectory import evaluate
from course_utils.validation import check_int


@dataclass
class PPOConfig(TrainConfig):
    """PPO's hyperparameters (the defaults are Stable-Baselines3's), with ``TrainConfig``'s budget,
    seed, evaluation and reporting. One log row per update (``log_every = 1``)."""

    n_envs: int = 8  # N environments stepped together
    n_steps: int = 256  # T steps of each per rollout: T·N samples per update
    normalize_reward: bool = False  # divide rewards by a running std of the discounted return
    normalize_observations: bool = False  # standardise observations with running statistics
    n_layers: int = 2  # hidden layers of actor and critic
    size: int = 64  # units per hidden layer (tanh)
    initial_log_std: float = 0.0  # the Gaussian's log σ at the start (Box actions)
    # gSDE (Box actions): noise φ(s)·W from the actor's last hidden features, W redrawn every
    # this many steps; 0 keeps state-independent noise
    state_dependent_every: int = 0
    learning_rate: float = 3e-4
    anneal_lr: bool = False  # decay the learning rate linearly to 0 over total_steps
    gamma: float = 0.99
    gae_lambda: float = 0.95
    n_epochs: int = 10  # K passes over the rollout per update
    batch_size: int = 64  # M samples per minibatch
    clip: float = 0.2  # ε; math.inf gives the unclipped surrogate
    value_coef: float = 0.5  # c_v
    entropy_coef: float = 0.0  # c_e
    max_grad_norm: float = 0.5  # c: the gradient's global norm is clipped to it
    normalize_advantages: bool = True  # standardise Â within each minibatch
    target_kl: Optional[float] = None  # stop an update's epochs above this approximate KL
    log_every: int = 1

    def __post_init__(self) -> None:
        for name in ("n_envs", "n_steps", "n_layers", "size", "n_epochs", "batch_size",
                     "state_dependent_every"):
            check_int(name, getattr(self, name),
                      minimum=0 if name in ("n_layers", "state_dependent_every") else 1)
        if self.state_dependent_every and not self.n_layers:
            raise ValueError("state_dependent_every needs hidden features: n_layers must be ≥ 1")
        for name in ("learning_rate", "clip", "max_grad_norm"):
            if not getattr(self, name) > 0:  # also refuses NaN
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        for name in ("gamma", "gae_lambda"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)!r}")
        if self.target_kl is not None and not self.target_kl > 0:
            raise ValueError(f"target_kl must be positive or None, got {self.target_kl!r}")


# ------------------------------------------------------------------------------- networks


class ActorCritic(nn.Module):
    """An actor ``π_θ(·|s)`` and a separate critic ``V_φ(s)``, MLPs of ``config``'s size.

    Discrete actions: ``π_θ(·|s) = Categorical(logits = actor(s))``. A one-dimensional Box:
    the diagonal Gaussian ``N(actor(s), diag(σ²))`` with a learned, state-independent ``log σ``;
    the sample itself is stored and scored, the environment receives it clipped to the Box.
    With ``state_dependent_every`` (gSDE, Raffin et al. 2022), ``log σ`` is ``(features, d)``
    and the noise is ``φ(s) W``, ``φ(s)`` the actor's last hidden layer and ``W_ji ~ N(0, σ_ji²)``
    held for several steps: ``a_i ~ N(actor(s)_i, Σ_j φ_j(s)² σ_ji²)``, a smoother exploration.
    """

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, config: PPOConfig,
                 device: Optional[torch.device | str] = None) -> None:
        super().__init__()
        if not isinstance(observation_space, gym.spaces.Box) or len(observation_space.shape) != 1:
            raise ValueError(
                f"observation_space must be a one-dimensional Box, got {observation_space}")
        if isinstance(action_space, gym.spaces.Discrete) and action_space.start != 0:
            raise ValueError(f"action_space must be Discrete(n) starting at 0, got {action_space}")
        self.device = torch.device(device) if device is not None else get_device()
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        self.observation_size = flat_size(observation_space, "observation_space")
        n_outputs = flat_size(action_space, "action_space")  # refuses other action spaces
        hidden = dict(n_layers=config.n_layers, size=config.size, activation="tanh")
        self.actor = build_mlp(MLPConfig(self.observation_size, n_outputs, **hidden), self.device)
        self.state_dependent = bool(config.state_dependent_every) and not self.discrete
        if not self.discrete:
            shape = (config.size, n_outputs) if self.state_dependent else (n_outputs,)
            self.log_std = nn.Parameter(torch.full(shape, config.initial_log_std,
                                                   device=self.device))
            self.exploration: Optional[torch.Tensor] = None  # gSDE's W, (N, features, d)
        self.critic = build_mlp(MLPConfig(self.observation_size, 1, **hidden), self.device)
        orthogonal_init(self.actor, last_gain=0.01)
        orthogonal_init(self.critic, last_gain=1.0)
        self.obs_norm = RunningNorm(self.observation_size, self.device) \
            if config.normalize_observations else None

    def _inputs(self, observations: Any) -> torch.Tensor:
        """Observations ``(..., obs_size)`` as float32 on the device, normalised if configured."""
        x = torch.as_tensor(observations, dtype=torch.float32, device=self.device)
        if x.shape[-1:] != (self.observation_size,):
            raise ValueError(f"observations must end in dimension {self.observation_size}, "
                             f"got shape {tuple(x.shape)}")
        return self.obs_norm(x) if self.obs_norm is not None else x

    def _distribution(self, x: torch.Tensor) -> tuple[Distribution, torch.Tensor]:
        """``π_θ(·|s)``, and ``φ(s)``: the actor's last hidden layer (the input of its last Linear)."""
        features = self.actor[:-2](x)
        out = self.actor[-2:](features)
        if self.discrete:
            return Categorical(logits=out, validate_args=False), features
        if self.state_dependent:  # SB3's choice: the variance does not train φ (detached)
            std = torch.sqrt(features.detach() ** 2 @ self.log_std.exp() ** 2 + 1e-6)
        else:
            std = self.log_std.exp()
        # Independent(…, 1) sums the log-densities of the d dimensions: a diagonal Gaussian.
        return Independent(Normal(out, std, validate_args=False), 1), features

    @torch.no_grad()
    def resample_exploration(self, n: int) -> None:
        """gSDE: draw a new ``W ~ N(0, σ²)`` ``(features, d)`` for each of ``n`` environments."""
        if self.state_dependent:
            self.exploration = Normal(0.0, self.log_std.exp()).sample((n,))

    def value(self, observations: Any) -> torch.Tensor:
        """``V_φ(s)`` for observations ``(B, obs_size)``: ``(B,)``."""
        return self.critic(self._inputs(observations)).squeeze(-1)

    @torch.no_grad()
    def act(self, observations: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For observations ``(N, obs_size)``: sampled actions ``(N,)`` or ``(N, d)`` (unclipped),
        their ``log π_θ(a|s)`` ``(N,)`` and ``V_φ(s)`` ``(N,)``."""
        x = self._inputs(observations)
        distribution, features = self._distribution(x)
        if not self.state_dependent:
            actions = distribution.sample()
        else:  # a = μ(s) + φ(s) W, each environment with its own W
            if self.exploration is None or len(self.exploration) != len(x):
                self.resample_exploration(len(x))
            actions = distribution.mean + torch.einsum("nf,nfd->nd", features, self.exploration)
        return actions, distribution.log_prob(actions), self.critic(x).squeeze(-1)

    def evaluate(self, observations: torch.Tensor, actions: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``log π_θ(a|s)``, the entropy ``H[π_θ(·|s)]`` and ``V_φ(s)``, each ``(B,)``, with
        gradients: what the update needs for a minibatch."""
        x = self._inputs(observations)
        distribution, _ = self._distribution(x)
        return distribution.log_prob(actions), distribution.entropy(), self.critic(x).squeeze(-1)

    @torch.no_grad()
    def action_std(self, observations: Any) -> torch.Tensor:
        """The Gaussian's σ ``(B, d)`` in the states ``(B, obs_size)`` (without gSDE, everywhere σ)."""
        return self._distribution(self._inputs(observations))[0].base_dist.scale

    @torch.no_grad()
    def greedy_action(self, observation: np.ndarray) -> Any:
        """The mode of ``π_θ(·|s)`` for one observation: the likeliest action, or the mean."""
        out = self.actor(self._inputs(observation))
        return int(out.argmax()) if self.discrete else out.cpu().numpy()

    def update_normalizer(self, observations: torch.Tensor) -> None:
        if self.obs_norm is not None:
            self.obs_norm.update(observations.reshape(-1, self.observation_size))


# ------------------------------------------------------------------------------- update


@dataclass(frozen=True)
class Rollout:
    """One rollout's ``B = T·N`` samples, flattened: ``observations`` ``(B, obs_size)``,
    ``actions`` ``(B,)`` or ``(B, d)``, and ``(B,)`` each: ``log_probs`` (log π_old(a|s)),
    ``values`` (V_old(s)), ``advantages`` (Â) and ``returns`` (R = Â + V_old(s))."""

    observations: torch.Tensor
    actions: torch.Tensor
    log_probs: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor


UpdateFn = Callable[[ActorCritic, torch.optim.Optimizer, Rollout, PPOConfig, torch.Generator],
                    dict[str, Any]]


def ppo_update(model: ActorCritic, optimizer: torch.optim.Optimizer, rollout: Rollout,
               config: PPOConfig, generator: torch.Generator) -> dict[str, Any]:
    """PPO's update on one rollout: ``config.n_epochs`` passes over shuffled minibatches of
    ``config.batch_size`` (one ``torch.randperm(B, generator=generator)`` per epoch), each a
    gradient step on the clipped loss; stops after an epoch whose mean approximate KL exceeds
    ``config.target_kl``. Returns the last epoch's means of ``policy_loss``, ``value_loss``,
    ``entropy``, ``approx_kl`` and ``clip_fraction`` (tensors) and ``epochs``, the epochs run."""
    n = rollout.advantages.shape[0]
    for epoch in range(config.n_epochs):
        order = torch.randperm(n, generator=generator).to(rollout.advantages.device)
        stats = []
        for start in range(0, n, config.batch_size):
            index = order[start:start + config.batch_size]
            log_probs, entropy, values = model.evaluate(rollout.observations[index],
                                                        rollout.actions[index])
            advantages = rollout.advantages[index]
            if config.normalize_advantages and len(index) > 1:
                advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
            log_ratio = log_probs - rollout.log_probs[index]
            ratio = torch.exp(log_ratio)  # r = π_θ / π_old, 1 in the first minibatch
            clipped = torch.clamp(ratio, 1.0 - config.clip, 1.0 + config.clip)
            policy_loss = -torch.min(ratio * advantages, clipped * advantages).mean()
            value_loss = ((values - rollout.returns[index]) ** 2).mean()
            loss = policy_loss + config.value_coef * value_loss \
                - config.entropy_coef * entropy.mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            with torch.no_grad():
                stats.append(torch.stack([
                    policy_loss, value_loss, entropy.mean(), ((ratio - 1.0) - log_ratio).mean(),
                    ((ratio - 1.0).abs() > config.clip).float().mean()]))
        means = torch.stack(stats).mean(0)
        # One synchronisation per epoch (not per minibatch) decides on the early stop.
        if config.target_kl is not None and means[3] > config.target_kl:
            break
    names = ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction")
    return {**dict(zip(names, means)), "epochs": epoch + 1}


# ------------------------------------------------------------------------------- training


def train(env_id: str, config: PPOConfig, update: UpdateFn = ppo_update,
          model: Optional[ActorCritic] = None, tracker: Optional[Tracker] = None,
          device: Optional[torch.device | str] = None) -> tuple[ActorCritic, Tracker]:
    """Train PPO on ``config.n_envs`` copies of ``env_id`` for ``config.total_steps`` steps.

    ``update``: ``ppo_update`` or a student's function of its signature. ``model`` and
    ``tracker``: those of an earlier (or interrupted) run, to continue it (with a new Adam).
    ``device``: default ``get_device()``. Logs ``return`` and ``episode_length`` per finished
    episode, the update's metrics (with ``explained_variance``), and ``eval_return``,
    ``eval_return_std`` every ``config.eval_every`` steps (greedy policy, clock paused).
    Returns the model (the best evaluated one with ``keep_best``) and the tracker.
    """
    set_seed(config.seed)
    envs = make_vector_env(env_id, config.n_envs, seed=config.seed, gamma=config.gamma,
                           normalize_reward=config.normalize_reward)
    eval_env = gym.make(env_id)
    if model is None:
        model = ActorCritic(envs.single_observation_space, envs.single_action_space, config, device)
    device = model.device
    optimizer = make_adam(model.parameters(), config.learning_rate, device)
    generator = torch.Generator().manual_seed(config.seed)  # the minibatches' order, on the CPU
    box = envs.single_action_space if not model.discrete else None
    T, N = config.n_steps, config.n_envs
    # The rollout's storage, (T, N, ...) on the training device.
    observations_t = torch.zeros((T, N, model.observation_size), device=device)
    actions_t = torch.zeros((T, N, *envs.single_action_space.shape), device=device,
                            dtype=torch.long if model.discrete else torch.float32)
    log_probs_t, values_t, rewards_t, bootstrap_t = (torch.zeros((T, N), device=device)
                                                     for _ in range(4))
    terminated_t, truncated_t = (torch.zeros((T, N), dtype=torch.bool, device=device)
                                 for _ in range(2))

    def evaluate_greedy() -> dict[str, float]:
        returns = evaluate(eval_env, model, config.eval_episodes, seed=config.seed + 1_000_000)
        return {"eval_return": returns.mean(), "eval_return_std": returns.std()}

    with TrainingRun(config, model, evaluate_greedy, tracker) as run:
        # A continued run starts new episodes: an environment's state is not saved.
        observations, _ = envs.reset(seed=config.seed + run.step)
        while not run.finished:
            episodes = []
            for t in range(T):
                if config.state_dependent_every and t % config.state_dependent_every == 0:
                    model.resample_exploration(N)
                observations_t[t] = torch.as_tensor(observations, device=device)
                actions, log_probs_t[t], values_t[t] = model.act(observations_t[t])
                actions_t[t] = actions
                env_actions = actions.cpu().numpy()
                if box is not None:  # the sample is stored; the environment gets it clipped
                    env_actions = np.clip(env_actions, box.low, box.high)
                observations, rewards, terminated, truncated, infos = envs.step(env_actions)
                rewards_t[t] = torch.as_tensor(rewards, device=device)
                terminated_t[t] = torch.as_tensor(terminated, device=device)
                truncated_t[t] = torch.as_tensor(truncated, device=device)
                # Same-step autoreset: where an episode ended, `observations` already holds the
                # next episode's first observation and infos["final_obs"] its true last one. A
                # truncated episode (a time limit, not a terminal state) still has a future,
                # worth V(final observation): it bootstraps that step.
                bootstrap_t[t] = 0.0
                truncated_only = truncated & ~terminated  # NumPy flags: no device synchronisation
                if truncated_only.any():
                    index = np.flatnonzero(truncated_only)
                    with torch.no_grad():
                        bootstrap_t[t, torch.as_tensor(index, device=device)] = model.value(
                            np.stack(infos["final_obs"][index]))
                for i in np.flatnonzero(infos.get("_episode", [])):
                    episodes.append((float(infos["episode"]["r"][i]), int(infos["episode"]["l"][i])))

            # V(s_{t+1}) for every step: the next stored observation, the observation after the
            # rollout for its last step, and V(final observation) where step t truncated.
            with torch.no_grad():
                last_values = model.value(observations)
            next_values = torch.cat([values_t[1:], last_values[None]])
            next_values = torch.where(truncated_t, bootstrap_t, next_values)
            advantages = gae(rewards_t, values_t, next_values, terminated_t.float(),
                             (terminated_t | truncated_t).float(), config.gamma, config.gae_lambda)
            returns = advantages + values_t
            rollout = Rollout(observations_t.flatten(0, 1), actions_t.flatten(0, 1),
                              log_probs_t.flatten(), values_t.flatten(), advantages.flatten(),
                              returns.flatten())
            if config.anneal_lr:  # α = α_0 (1 − t / t_max), t the steps before this update
                for group in optimizer.param_groups:
                    group["lr"] = config.learning_rate * (1.0 - run.step / config.total_steps)
            metrics = update(model, optimizer, rollout, config, generator)
            model.update_normalizer(observations_t)  # between rollouts, never within one
            explained = 1.0 - (rollout.returns - rollout.values).var() / rollout.returns.var()
            run.update({**metrics, "explained_variance": explained})
            run.advance(T * N)  # logs, evaluates and redraws when their periods are due
            for episode_return, length in episodes:
                run.episode(episode_return, length)
    envs.close()
    return model, run.tracker
