"""Deep Q-networks (DQN, Mnih et al. 2015) with the Double DQN target (van Hasselt et al. 2016).

Key equations, for a minibatch B of transitions (s, a, r, s', d) replayed from the memory D
(d = 1 where s' is terminal; a truncated transition has d = 0 and bootstraps from its s'):

    a*  = argmax_a' Q_θ(s', a')            (Double DQN: the online network selects;
                                            DQN: a* = argmax_a' Q_θ̄(s', a'))
    y   = r + γ (1 − d) Q_θ̄(s', a*)        (the target network evaluates; y is held constant)
    L(θ) = mean over B of Huber(Q_θ(s, a) − y)
    θ  ← θ − α clip(∇_θ L(θ))              (Adam; the gradient's norm clipped)
    θ̄  ← τ θ + (1 − τ) θ̄                  every C gradient steps (τ = 1: a hard copy)

Pseudocode:

    initialise Q_θ, θ̄ ← θ, an empty replay memory D
    for t = 0, 1, …, T − 1:
        a_t ← random if t < learning_starts, else ε_t-greedy w.r.t. Q_θ(s_t, ·)
        step the environment; store (s_t, a_t, r_t, s_{t+1}, terminated_t, truncated_t) in D
        (s_{t+1} is the true last observation also at a truncation; then reset)
        every train_every steps after learning_starts, gradient_steps times:
            update(θ, θ̄) on a minibatch sampled uniformly from D

The notebook's student writes ``dqn_update`` (and ``double_dqn_target``, which it calls);
``train`` takes the update function as an argument.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, Optional

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.buffers import ReplayBatch, ReplayBuffer
from course_utils.device import get_device, set_seed
from course_utils.nn import MLPConfig, build_mlp, make_adam, polyak_update
from course_utils.tracking import Tracker, TrainConfig, TrainingRun


@dataclass
class DQNConfig(TrainConfig):
    """DQN's hyperparameters (the defaults: Double DQN on CartPole-v1, the course's settings)."""

    env_id: str = "CartPole-v1"
    n_layers: int = 2  # hidden layers of the Q-network
    size: int = 64  # units per hidden layer
    learning_rate: float = 1e-3
    gamma: float = 0.99
    buffer_size: int = 50_000
    batch_size: int = 64
    learning_starts: int = 1_000  # random actions, and no update, before this step
    train_every: int = 1  # environment steps between two rounds of updates
    gradient_steps: int = 1  # updates per round
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    epsilon_steps: int = 5_000  # ε falls linearly from start to end over this many steps
    double: bool = True  # Double DQN's target (False: DQN's)
    tau: float = 0.005  # the target network's update: θ̄ ← τ θ + (1 − τ) θ̄ (1: a hard copy)
    target_update_every: int = 1  # C: update the target every C gradient steps
    max_grad_norm: Optional[float] = 10.0  # clip the gradient's global norm (None: no clipping)
    device: Optional[str] = None  # default: get_device()


# ------------------------------------------------------------------------------------ networks


class QNetworks(nn.Module):
    """The online Q-network ``Q_θ`` and its target copy ``Q_θ̄``: observation ``(B, obs_size)``
    -> one value per action ``(B, n_actions)``. The target's parameters never need gradients."""

    def __init__(self, observation_size: int, n_actions: int, n_layers: int = 2, size: int = 64,
                 device: Optional[torch.device | str] = None) -> None:
        super().__init__()
        config = MLPConfig(observation_size, n_actions, n_layers, size, activation="relu")
        self.online = build_mlp(config, device=device)
        self.target = copy.deepcopy(self.online).requires_grad_(False)
        self.action_start = 0  # Discrete(n, start): the actions the outputs 0 … n−1 stand for

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.online(observations)

    @torch.no_grad()
    def greedy_action(self, observation: Any) -> int:
        """``argmax_a Q_θ(o, a)`` for one observation, as an action of the environment."""
        device = next(self.online.parameters()).device
        q = self.online(torch.as_tensor(observation, dtype=torch.float32, device=device))
        return int(q.argmax()) + self.action_start


# ------------------------------------------------------------------------------ the update step


def double_dqn_target(rewards: torch.Tensor, next_q_online: torch.Tensor,
                      next_q_target: torch.Tensor, terminated: torch.Tensor,
                      gamma: float) -> torch.Tensor:
    """``y = r + γ (1 − terminated) Q_θ̄(s', a*)`` with ``a* = argmax_a' Q_θ(s', a')``, ``(B,)``.

    ``rewards`` and ``terminated`` (floats, 1.0 where s' is terminal) are ``(B,)``, the next
    states' values ``(B, A)``. Passing the target network's values as ``next_q_online`` too
    gives DQN's target, ``max_a' Q_θ̄(s', a')``.
    """
    best_actions = next_q_online.argmax(dim=1, keepdim=True)  # the online network selects
    next_values = next_q_target.gather(1, best_actions).squeeze(1)  # the target evaluates
    return rewards + gamma * (1.0 - terminated) * next_values


def dqn_update(nets: QNetworks, optimizer: torch.optim.Optimizer, batch: ReplayBatch,
               config: DQNConfig, step: int) -> dict[str, torch.Tensor]:
    """One gradient step on the Huber loss of the TD errors, then the target update if due.

    ``batch`` holds ``B`` transitions (``actions`` ``(B,)`` indices 0 … A−1); ``step`` counts the
    gradient steps, this one included (the target moves when ``step % C == 0``). Returns the
    loss and the mean ``Q_θ(s, a)``, as tensors (no ``.item()``: no GPU synchronisation).
    """
    n = len(batch)
    # One forward pass of the online network over s and s' (Double DQN needs Q_θ(s', ·) too).
    q_all = nets.online(torch.cat([batch.observations, batch.next_observations]))
    q_taken = q_all[:n].gather(1, batch.actions[:, None]).squeeze(1)  # Q_θ(s, a), (B,)
    with torch.no_grad():  # y is a fixed regression label: no gradient flows through it
        next_q_target = nets.target(batch.next_observations)
        next_q_select = q_all[n:] if config.double else next_q_target
        # terminated only: a truncated transition still bootstraps from its true s'.
        targets = double_dqn_target(batch.rewards, next_q_select, next_q_target,
                                    batch.terminated.float(), config.gamma)
    loss = F.smooth_l1_loss(q_taken, targets)  # Huber with κ = 1
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if config.max_grad_norm is not None:
        nn.utils.clip_grad_norm_(nets.online.parameters(), config.max_grad_norm)
    optimizer.step()
    if step % config.target_update_every == 0:
        polyak_update(nets.target, nets.online, config.tau)
    return {"loss": loss.detach(), "q": q_taken.detach().mean()}


UpdateFn = Callable[[QNetworks, torch.optim.Optimizer, ReplayBatch, DQNConfig, int],
                    dict[str, torch.Tensor]]


# ------------------------------------------------------------------------------ evaluation


def evaluate(envs: list[gym.Env], nets: QNetworks, seed: int) -> np.ndarray:
    """The undiscounted returns of greedy episodes, one per environment of ``envs`` (reset with
    seeds ``seed, seed + 1, …``), played in lockstep so that one forward pass serves them all."""
    observations = [env.reset(seed=seed + i)[0] for i, env in enumerate(envs)]
    returns, running = np.zeros(len(envs)), list(range(len(envs)))
    device = next(nets.online.parameters()).device
    while running:
        with torch.no_grad():
            batch = torch.as_tensor(np.array([observations[i] for i in running]),
                                    dtype=torch.float32, device=device)
            actions = (nets.online(batch).argmax(dim=1) + nets.action_start).tolist()
        still_running = []
        for i, action in zip(running, actions):
            observations[i], reward, terminated, truncated, _ = envs[i].step(action)
            returns[i] += float(reward)
            if not (terminated or truncated):
                still_running.append(i)
        running = still_running
    return returns


# ------------------------------------------------------------------------------ training


@dataclass
class DQNState:
    """What a run leaves behind; pass it to ``train`` again to continue that run."""

    nets: QNetworks
    optimizer: torch.optim.Optimizer
    buffer: ReplayBuffer
    tracker: Tracker
    updates: int = 0  # gradient steps taken


def make_state(env: gym.Env, config: DQNConfig) -> DQNState:
    """Fresh networks (seeded with ``config.seed``), optimiser, replay memory and tracker."""
    if not isinstance(env.action_space, gym.spaces.Discrete):
        raise ValueError(f"env.action_space: DQN needs a Discrete action space, got "
                         f"{env.action_space}; for continuous actions use DDPG, TD3 or SAC")
    space = env.observation_space
    if not (isinstance(space, gym.spaces.Box) and len(space.shape) == 1):
        raise ValueError(f"env.observation_space must be a one-dimensional Box, got {space}")
    if not 0.0 < config.tau <= 1.0:
        raise ValueError(f"config.tau must be in (0, 1], got {config.tau!r}")
    device = torch.device(config.device) if config.device is not None else get_device()
    set_seed(config.seed)
    nets = QNetworks(space.shape[0], int(env.action_space.n), config.n_layers, config.size,
                     device)
    nets.action_start = int(env.action_space.start)
    optimizer = make_adam(nets.online.parameters(), config.learning_rate, device)
    buffer = ReplayBuffer.for_env(env, config.buffer_size, device=device, seed=config.seed)
    return DQNState(nets, optimizer, buffer, Tracker(x_label="environment steps"))


def train(config: DQNConfig, update: UpdateFn = dqn_update,
          on_evaluation: Optional[Callable[[QNetworks], dict[str, float]]] = None,
          state: Optional[DQNState] = None) -> DQNState:
    """Train DQN on ``config.env_id`` for ``config.total_steps`` environment steps.

    ``update`` is the update step (``dqn_update``, or the notebook's own). ``on_evaluation``,
    called after each evaluation, returns extra metrics to log (the notebook's value
    measurements). Pass the ``state`` of an earlier or interrupted run to continue it.
    Logged: ``return`` and ``episode_length`` per episode; ``eval_return``, ``eval_return_std``
    per evaluation; the mean ``loss`` and ``q`` of the updates every ``config.log_every`` steps.
    """
    env = gym.make(config.env_id)
    state = state if state is not None else make_state(env, config)
    nets, buffer = state.nets, state.buffer
    device = buffer.device
    eval_envs = [gym.make(config.env_id) for _ in range(config.eval_episodes)]

    def evaluation() -> dict[str, float]:
        returns = evaluate(eval_envs, nets, config.seed + 1_000_000)
        extra = on_evaluation(nets) if on_evaluation is not None else {}
        return {"eval_return": returns.mean(), "eval_return_std": returns.std(), **extra}

    rng = np.random.default_rng(config.seed)  # ε-greedy's coin flips and random actions
    n_actions = int(env.action_space.n)
    with TrainingRun(config, nets, evaluation, state.tracker) as run:
        first = run.step == 0
        env.action_space.seed(config.seed if first else None)
        # A continued run starts a new episode: an environment's state cannot be saved.
        observation, _ = env.reset(seed=config.seed if first else config.seed + run.step)
        episode_return, episode_length = 0.0, 0
        while not run.finished:
            step = run.step  # environment steps taken before this one
            if step < config.learning_starts:
                action = int(env.action_space.sample())
            else:
                fraction = min(step / config.epsilon_steps, 1.0)  # linear ε schedule
                epsilon = config.epsilon_start + fraction * (config.epsilon_end
                                                             - config.epsilon_start)
                if rng.random() < epsilon:
                    action = int(rng.integers(n_actions)) + nets.action_start
                else:
                    with torch.no_grad():
                        q = nets.online(torch.as_tensor(observation, dtype=torch.float32,
                                                        device=device))
                    action = int(q.argmax()) + nets.action_start
            next_observation, reward, terminated, truncated, _ = env.step(action)
            # next_observation is the true s' also at a truncation, so its target bootstraps.
            buffer.add(observation, action - nets.action_start, reward, next_observation,
                       terminated, truncated)
            episode_return += float(reward)
            episode_length += 1
            if step + 1 > config.learning_starts and (step + 1) % config.train_every == 0:
                for _ in range(config.gradient_steps):
                    state.updates += 1
                    run.update(update(nets, state.optimizer, buffer.sample(config.batch_size),
                                      config, state.updates))
            run.advance(1)  # logs, evaluates (after this step's updates), shows progress
            if terminated or truncated:
                run.episode(episode_return, episode_length)
                observation, _ = env.reset()
                episode_return, episode_length = 0.0, 0
            else:
                observation = next_observation
    return state
