"""Behaviour cloning and DAgger (notebook 09, PushT).

**Behaviour cloning** (BC) is supervised learning on demonstrations ``D = {(s_i, a_i)}``: a
deterministic policy ``π_θ`` is fit to the demonstrated actions by minimising, over minibatches,

    L(θ) = 1/(B·d) Σ_i ‖π_θ(s_i) − u(a_i, s_i)‖²

where ``u(a, s)`` is the demonstrated action in the network's normalised frame
(``BCPolicy.to_unit``: the action space's bounds mapped to ``[-1, 1]``, or a move relative to the
pusher along the block's axes on PushT). ``bc_update`` is one such step; ``train`` runs epochs
of shuffled minibatches with a cosine learning-rate decay.

**DAgger** (Ross et al. 2011) fixes BC's compounding error: a cloned policy drifts into states
the expert never visited, where it was never trained. DAgger labels the learner's own states::

    D ← demonstrations;  π ← BC on D
    for i = 1 … iterations:
        run π (the expert with probability β) for some episodes; visited states S_i
        D ← D ∪ {(s, π*(s)) : s ∈ S_i}          # the expert's label in the learner's states
        π ← BC on D (``train``, continuing from π)

Measured on PushT (seed 0, 3 × 256 ReLU, batch 128, Adam 1.5e-3 with the cosine decay,
``pusht_features`` and ``pusht_pusher_frame``; mean max coverage / success rate over the
evaluation seeds 0–49): after 60 epochs, 10, 50 and 200 demonstrations give 0.15 / 0.00,
0.23 / 0.00 and 0.48 / 0.04, with their reflections 0.19 / 0.00, 0.35 / 0.02 and 0.53 / 0.26;
on ``previous_and_current`` pairs (``HistoryPolicy``), 200 demonstrations and their reflections,
120 epochs: 0.86 / 0.36; 300 epochs at Adam 1e-3 (the defaults): 0.88 / 0.50 in 204 s.

Usage (notebook 09)::

    config = BCConfig(epochs=60, batch_size=128, learning_rate=1.5e-3)
    policy = BCPolicy(env.observation_space, env.action_space, config, features=pusht_features,
                      action_frame=pusht_pusher_frame)
    policy, tracker = train(policy, demos.observations, demos.actions, config, update=bc_update)
    evaluate_pusht(policy)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, Optional

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from course_utils.device import get_device
from course_utils.nn import MLPConfig, build_mlp, make_adam
from course_utils.tracking import TrainConfig, Tracker, TrainingRun
from course_utils.validation import check_int

__all__ = ["BCConfig", "BCPolicy", "DAggerConfig", "HistoryPolicy", "bc_update", "dagger",
           "history_space", "train"]

# An action frame maps observations (B, n) to an origin (B, d) and a rotation (B, d, d).
ActionFrame = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
Features = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class BCConfig(TrainConfig):
    """BC's hyperparameters. The run's length counts epochs (passes over the data), and so do
    ``eval_every`` and ``log_every``; ``total_steps`` is set from ``epochs``."""

    epochs: int = 300
    batch_size: int = 128
    learning_rate: float = 1e-3  # Adam's peak step size
    cosine_decay: bool = True  # anneal the step size to 0 by the last update
    n_layers: int = 3  # hidden layers (ReLU)
    size: int = 256
    action_scale: float = 100.0  # with an action frame: one unit of the output, in action units
    log_every: int = 1  # log the mean loss every this many epochs
    score_key: str = "coverage"  # the evaluation metric of keep_best, solved_at and the bar
    device: Optional[str] = None  # default: get_device()


# ------------------------------------------------------------------------------------ networks


def _box_bounds(space: gym.Space, name: str) -> tuple[np.ndarray, np.ndarray]:
    if not (isinstance(space, gym.spaces.Box) and len(space.shape) == 1):
        raise ValueError(f"{name} must be a one-dimensional Box, got {space}")
    return space.low.astype(np.float64), space.high.astype(np.float64)


class BCPolicy(nn.Module):
    """``π(s)``: features → MLP → normalised action ``u`` ``(B, d)`` → environment action.

    The environment action is ``centre + half_width · clip(u, −1, 1)`` by the action space's
    bounds or, with an ``action_frame`` ``s → (origin (B, d), rotation (B, d, d))``, the action in
    that frame, ``origin(s) + rotation(s) · action_scale · u`` (a move relative to the pusher,
    along the block's axes), clipped to the bounds either way. Without ``features`` the
    observations are normalised by the observation space's bounds.
    """

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, config: BCConfig,
                 features: Optional[Features] = None, action_frame: Optional[ActionFrame] = None) -> None:
        super().__init__()
        obs_low, obs_high = _box_bounds(observation_space, "observation_space")
        act_low, act_high = _box_bounds(action_space, "action_space")
        if not (np.all(np.isfinite(act_low)) and np.all(np.isfinite(act_high))):
            raise ValueError(f"action_space must be bounded, got {action_space}")
        if features is None and not (np.all(np.isfinite(obs_low)) and np.all(np.isfinite(obs_high))):
            raise ValueError("observation_space is unbounded: pass features= to normalise observations")
        if not config.action_scale > 0:
            raise ValueError(f"action_scale must be > 0, got {config.action_scale}")
        check_int("n_layers", config.n_layers, minimum=0)
        check_int("size", config.size)
        self.device = torch.device(config.device) if config.device is not None else get_device()
        self.features, self.action_frame = features, action_frame
        self.action_scale = float(config.action_scale)
        as_tensor = lambda x: torch.as_tensor(x, dtype=torch.float32, device=self.device)  # noqa: E731
        # Buffers move with .to(device) and are saved in state_dict.
        self.register_buffer("obs_centre", as_tensor((obs_high + obs_low) / 2 if features is None else 0.0))
        self.register_buffer("obs_half", as_tensor((obs_high - obs_low) / 2 if features is None else 1.0))
        self.register_buffer("act_low", as_tensor(act_low))
        self.register_buffer("act_high", as_tensor(act_high))
        self.n_observations, self.n_actions = observation_space.shape[0], action_space.shape[0]
        n_inputs = self.n_observations
        if features is not None:
            n_inputs = features(torch.zeros(1, n_inputs, device=self.device)).shape[-1]
        torch.manual_seed(config.seed)  # the initial weights
        self.net = build_mlp(MLPConfig(n_inputs, self.n_actions, config.n_layers, config.size, "relu"),
                             device=self.device)

    def inputs(self, observations: torch.Tensor) -> torch.Tensor:
        """Observations ``(B, n)`` → the network's inputs ``(B, m)``: the features, or the
        observations normalised by the space's bounds."""
        if self.features is not None:
            return self.features(observations)
        return (observations - self.obs_centre) / self.obs_half

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """Observations ``(B, n)`` → normalised actions ``(B, d)`` (what the loss compares)."""
        return self.net(self.inputs(observations))

    def to_unit(self, env_actions: torch.Tensor, observations: torch.Tensor) -> torch.Tensor:
        """Environment actions ``(B, d)``, taken in ``observations`` ``(B, n)`` → normalised ones."""
        if self.action_frame is not None:
            origin, rotation = self.action_frame(observations)
            # rotation⁻¹ = rotationᵀ: (rotationᵀ v)_i = Σ_j rotation_ji v_j
            return torch.einsum("...ji,...j->...i", rotation, env_actions - origin) / self.action_scale
        return 2 * (env_actions - self.act_low) / (self.act_high - self.act_low) - 1

    def to_env(self, unit_actions: torch.Tensor, observations: torch.Tensor) -> torch.Tensor:
        """Normalised actions ``(B, d)`` → environment actions, within the action space."""
        if self.action_frame is not None:
            origin, rotation = self.action_frame(observations)
            actions = origin + torch.einsum("...ij,...j->...i", rotation, self.action_scale * unit_actions)
        else:
            actions = self.act_low + (unit_actions.clamp(-1, 1) + 1) / 2 * (self.act_high - self.act_low)
        return torch.maximum(torch.minimum(actions, self.act_high), self.act_low)

    @torch.no_grad()
    def greedy_action(self, observation: Any) -> np.ndarray:
        """One observation ``(n,)`` (or a batch ``(B, n)``) → environment action(s), as NumPy."""
        obs = torch.as_tensor(np.asarray(observation), dtype=torch.float32, device=self.device)
        return self.to_env(self(obs), obs).cpu().numpy()

    def get_action(self, observation: Any) -> np.ndarray:
        """The same as ``greedy_action`` (for ``record_episode``; calling the module is ``forward``)."""
        return self.greedy_action(observation)


def history_space(space: gym.Space) -> gym.spaces.Box:
    """The space of ``[previous, current]`` pairs of observations of the Box ``space``."""
    low, high = _box_bounds(space, "space")
    return gym.spaces.Box(np.tile(low, 2).astype(np.float32), np.tile(high, 2).astype(np.float32),
                          dtype=np.float32)


class HistoryPolicy:
    """Acts with a ``BCPolicy`` of ``[previous, current]`` observations (on ``history_space``,
    trained on ``previous_and_current`` pairs), remembering the previous observation.

    At the first step after ``reset()`` (which ``evaluate_pusht`` calls at every episode's start)
    the current observation stands in for the previous one, as in the training pairs.
    """

    def __init__(self, cloned: BCPolicy) -> None:
        self.cloned = cloned
        self.previous: Optional[np.ndarray] = None

    def reset(self) -> None:
        self.previous = None

    def greedy_action(self, observation: Any) -> np.ndarray:
        observation = np.asarray(observation)
        previous = observation if self.previous is None else self.previous
        self.previous = observation
        return self.cloned.greedy_action(np.concatenate([previous, observation]))

    def __call__(self, observation: Any) -> np.ndarray:
        return self.greedy_action(observation)

    get_action = __call__


# ------------------------------------------------------------------------------ the update step


def bc_update(policy: BCPolicy, optimizer: torch.optim.Optimizer, observations: torch.Tensor,
              actions: torch.Tensor) -> torch.Tensor:
    """One gradient step of BC on a minibatch: observations ``(B, n)``, environment actions
    ``(B, d)``. The loss is the mean squared error in the normalised action frame (pixels would
    weigh a 100-px error 10,000 times a 1-px one and set the step size by the workspace's size).
    Returns the loss, detached (a scalar tensor: no ``.item()`` in the hot path)."""
    predicted = policy(observations)
    # The target is data: it carries no gradient (to_unit has no parameters).
    target = policy.to_unit(actions, observations)
    loss = ((predicted - target) ** 2).mean()
    optimizer.zero_grad()  # gradients accumulate in .grad otherwise
    loss.backward()
    optimizer.step()
    return loss.detach()


# ------------------------------------------------------------------------------------ training

Update = Callable[[BCPolicy, torch.optim.Optimizer, torch.Tensor, torch.Tensor], torch.Tensor]


def _as_dataset(name: str, values: Any, device: torch.device, width: int) -> torch.Tensor:
    tensor = torch.as_tensor(np.asarray(values), dtype=torch.float32, device=device)
    if tensor.ndim != 2 or tensor.shape[1] != width:
        raise ValueError(f"{name} must have shape (N, {width}), got {tuple(tensor.shape)}")
    return tensor


def train(policy: BCPolicy, observations: Any, actions: Any, config: Optional[BCConfig] = None,
          update: Update = bc_update, evaluate: Optional[Callable[[BCPolicy], dict[str, float]]] = None,
          tracker: Optional[Tracker] = None) -> tuple[BCPolicy, Tracker]:
    """Train ``policy`` on demonstrations ``observations (N, n)``, ``actions (N, d)`` (environment
    units) for ``config.epochs`` epochs of shuffled minibatches.

    ``update(policy, optimizer, observations, actions) -> loss`` is the update step (yours in the
    notebook). With ``cosine_decay`` the step size of update ``k`` of ``K`` is
    ``lr · (1 + cos(π k / K)) / 2`` (Loshchilov & Hutter 2017): the last, small steps average out
    the minibatch noise a constant step leaves in the weights. ``evaluate(policy) -> {metric:
    value}`` runs every ``config.eval_every`` epochs, the clock paused; its ``config.score_key``
    entry drives ``keep_best`` and ``solved_at``. Logged every ``log_every`` epochs: ``loss`` (the
    mean minibatch loss) and ``TrainingRun``'s ``env_steps`` (here the epoch count),
    ``train_seconds`` and ``steps_per_second`` (epochs per second). An interrupt (Ctrl-C) keeps
    the policy and the history; passing them again continues the run (with a new optimiser, the
    schedule where it was).
    Returns ``(policy, tracker)``.
    """
    config = config if config is not None else BCConfig()
    epochs = check_int("epochs", config.epochs, minimum=0)
    batch_size = check_int("batch_size", config.batch_size)
    if not config.learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {config.learning_rate}")
    obs = _as_dataset("observations", observations, policy.device, policy.n_observations)
    act = _as_dataset("actions", actions, policy.device, policy.n_actions)
    if len(obs) != len(act) or len(obs) == 0:
        raise ValueError(f"observations and actions must have the same, non-zero length, got "
                         f"{len(obs)} and {len(act)}")
    optimizer = make_adam(policy.parameters(), config.learning_rate, policy.device)
    batches_per_epoch = -(-len(obs) // batch_size)
    total_updates = max(epochs * batches_per_epoch, 1)
    run_config = dataclasses.replace(config, total_steps=epochs)  # TrainingRun counts epochs
    tracker = tracker if tracker is not None else Tracker(x_label="epoch")
    evaluation = (lambda: evaluate(policy)) if evaluate is not None else None
    with TrainingRun(run_config, policy, evaluation, tracker, score_key=config.score_key,
                     plot_keys=("loss", config.score_key), unit="epoch") as run:
        generator = torch.Generator()
        while not run.finished:
            # Seeded by the epoch, so that a continued run shuffles as the uninterrupted one would.
            generator.manual_seed(config.seed * 1_000_003 + run.step)
            order = torch.randperm(len(obs), generator=generator).to(policy.device)
            for k, idx in enumerate(order.split(batch_size)):
                if config.cosine_decay:
                    done = run.step * batches_per_epoch + k
                    for group in optimizer.param_groups:
                        group["lr"] = config.learning_rate * 0.5 * (1 + math.cos(math.pi * done / total_updates))
                run.update({"loss": update(policy, optimizer, obs[idx], act[idx])})
            run.advance(1)  # one epoch
    return policy, run.tracker


# -------------------------------------------------------------------------------------- DAgger


@dataclass
class DAggerConfig(BCConfig):
    """BC's settings for the training of every DAgger iteration (``epochs`` each), and DAgger's."""

    iterations: int = 4
    episodes: int = 20  # learner episodes labelled by the expert per iteration
    beta: float = 0.0  # the probability of acting with the expert instead of the learner


def dagger(policy: BCPolicy, expert: Any, observations: Any, actions: Any, config: DAggerConfig,
           update: Update = bc_update,
           evaluate: Optional[Callable[[BCPolicy], dict[str, float]]] = None,
           env_id: str = "course_utils/PushT-v0") -> tuple[np.ndarray, np.ndarray, Tracker]:
    """DAgger from ``policy`` (already trained by BC on ``observations``, ``actions``).

    Each of ``config.iterations`` iterations runs ``config.episodes`` episodes (reset seeds
    ``10_000 + config.seed + j``, apart from the evaluation seeds 0–49), acting with the expert
    with probability ``config.beta`` and with the learner otherwise (β = 0, the usual choice after BC), labels every visited state with
    ``expert(state)``, then trains ``policy`` ``config.epochs`` more epochs on all the data
    (``train`` with ``update``, the schedule restarting at every iteration). The expert needs
    ``reset()`` and ``expert(obs)``; it is called in every visited state, also where the learner
    acts, so its memory follows the episode. Returns the aggregated ``(observations (N, n), actions (N, d))``
    and a tracker with, per iteration, ``states`` (the data set's size), ``loss`` (the last
    epoch's) and what ``evaluate(policy)`` returns.
    """
    import course_utils.envs  # noqa: F401  (registers the environments)

    iterations = check_int("iterations", config.iterations, minimum=0)
    episodes = check_int("episodes", config.episodes)
    beta = config.beta
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    all_obs, all_act = [np.asarray(observations, np.float64)], [np.asarray(actions, np.float64)]
    tracker = Tracker(x_label="DAgger iteration")
    rng = np.random.default_rng(config.seed)
    env = gym.make(env_id)
    seed = 10_000 + config.seed
    for iteration in range(1, iterations + 1):
        new_obs, new_act = [], []
        for _ in range(episodes):
            obs, _ = env.reset(seed=seed)
            seed += 1
            expert.reset()
            done = False
            while not done:
                label = expert(obs)
                new_obs.append(obs)
                new_act.append(label)
                action = label if rng.random() < beta else policy.greedy_action(obs)
                obs, _, terminated, truncated, _ = env.step(action)
                done = terminated or truncated
        all_obs.append(np.array(new_obs))
        all_act.append(np.array(new_act))
        data_obs, data_act = np.concatenate(all_obs), np.concatenate(all_act)
        _, run_tracker = train(policy, data_obs, data_act, config, update)
        extra = evaluate(policy) if evaluate is not None else {}
        tracker.log(iteration, states=len(data_obs), loss=run_tracker.last("loss"), **extra)
    env.close()
    return np.concatenate(all_obs), np.concatenate(all_act), tracker
