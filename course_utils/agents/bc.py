"""Behaviour cloning, DAgger and RL from demonstrations (notebook 09, PushT).

**Behaviour cloning** (BC) is supervised learning on demonstrations: an MLP ``π(s)`` is fit to
the demonstrated actions by minimising ``mean ‖π(s) − a‖²`` over minibatches. Inputs and
outputs are normalised: observations to about ``[-1, 1]`` (the PushT features below: positions
divided by the workspace, the block's angle as ``cos θ, sin θ`` so that 0 and 2π are one angle),
actions to ``[-1, 1]`` by the action space's bounds (or expressed in a frame of the state, see
``BCPolicy``), and mapped back to ``[low, high]`` when the policy acts. The loss is a parameter
(``loss_fn``), so a student's own loss trains the policy::

    agent = BCAgent(env.observation_space, env.action_space, features=pusht_features,
                    action_frame=pusht_pusher_frame)
    tracker = train_bc(agent, demos.observations, demos.actions, epochs=300, cosine_decay=True)
    evaluate_pusht(agent)                     # course_utils.envs.pusht_eval

Measured on PushT (3 × 256 ReLU, Adam 1e-3 with ``cosine_decay``, batch 128, 300 epochs,
``pusht_features`` and ``action_frame=pusht_pusher_frame``; mean max coverage / success rate over
the evaluation seeds 0–49, notebook 09, seed 0): 10, 50 and 200 shipped demonstrations give
0.13 / 0.00, 0.23 / 0.02 and 0.54 / 0.36; with their reflections (``PushTDemos.mirrored``,
twice the data) 0.16 / 0.00, 0.35 / 0.02 and 0.76 / 0.46. On the previous and the current
state (``previous_and_current``, ``pusht_history_features``, acting through ``HistoryPolicy``),
``benchmarks/solve.py bc`` (200 demonstrations and reflections) ends at 0.87, 0.91 and 0.88 on
seeds 0–2; on the current state alone it ended at 0.75, 0.71 and 0.67. The expert itself scores
0.96 / 1.00.

**DAgger** (Ross et al. 2011) fixes BC's compounding error: the states a cloned policy visits
drift away from the expert's, where it was never trained. It runs the *learner*, asks the
expert what it would have done in every visited state, adds those labels to the data set and
trains again (``dagger``). Its guarantee assumes the learner can represent the expert's labels
in the states it visits; with PushT's scripted expert, which remembers the push it committed to,
it did not improve on BC (notebook 09 measures why).

**RL from demonstrations** for the off-policy agents (DDPG, TD3, SAC): the demonstrations sit in
their own ``ReplayBuffer`` (``demo_replay_buffer``) and make up a fixed fraction of every
minibatch (``course_utils.buffers.MixedReplay``); before RL starts, the actor is pre-trained by BC
on the demonstrations (``pretrain_actor``) and the critics by regression on the demonstrations'
discounted Monte Carlo returns (``pretrain_critic``)::

    demo_buffer = demo_replay_buffer(demos, gamma=agent.gamma)
    pretrain_actor(agent, demo_buffer); pretrain_critic(agent, demos)
    train_off_policy(env, agent, MixedReplay(buffer, demo_buffer, demo_ratio=0.25), 50_000)
"""

from __future__ import annotations

import math
import sys
from typing import Any, Callable, Optional

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from course_utils.agents.base import Policy
from course_utils.buffers import ReplayBuffer
from course_utils.device import get_device
from course_utils.returns import reward_to_go
from course_utils.nn import MLPConfig, build_mlp, make_adam
from course_utils.tracking import Tracker
from course_utils.validation import check_int

__all__ = ["BCAgent", "BCPolicy", "HistoryPolicy", "bc_mse_loss", "dagger", "demo_replay_buffer",
           "discounted_returns", "history_space", "pretrain_actor", "pretrain_critic",
           "previous_and_current", "pusht_features", "pusht_history_features", "pusht_history_frame",
           "pusht_pusher_frame", "train_bc"]

# An action frame maps observations (B, n) to an origin (B, d) and a rotation (B, d, d).
ActionFrame = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
_WORKSPACE = 512.0  # PushT's workspace side, px
# PushT's BLOCK_COG and GOAL_POSE (course_utils.envs.pusht), repeated here so that importing the
# agents does not import pygame and pymunk; a test checks that they agree.
_COG_Y = 45.0  # the block's centre of gravity, (0, 45) in its frame
_GOAL_ANGLE = math.pi / 4  # PushT's goal pose (256, 256, π/4) and its centre of gravity
_GOAL_COG = (256.0 - _COG_Y * math.sin(_GOAL_ANGLE), 256.0 + _COG_Y * math.cos(_GOAL_ANGLE))


def bc_mse_loss(predicted_actions: torch.Tensor, demo_actions: torch.Tensor) -> torch.Tensor:
    """The BC loss: ``mean over batch and action dimensions of (π(s) − a)²``, a scalar.

    Both arguments are ``(B, d)`` normalised actions (in ``[-1, 1]``).
    """
    return ((predicted_actions - demo_actions) ** 2).mean()


def pusht_features(observations: torch.Tensor) -> torch.Tensor:
    """PushT ``state`` observations ``(..., 5)`` → network inputs ``(..., 12)``.

    - ``[agent_x, agent_y, block_x, block_y]`` mapped from ``[0, 512]`` to ``[-1, 1]`` (where the
      walls are);
    - ``cos θ, sin θ`` of the block's angle (the raw angle jumps from 2π to 0 where the pose does
      not change, which a network would have to learn as a cliff);
    - the pusher's position in the block's frame, ``R(θ)ᵀ(agent − block)`` / 128: where it is
      relative to the faces of the T, which decides a push;
    - the error to the goal in the block's frame: the goal's centre of gravity minus the block's,
      ``R(θ)ᵀ(goal_cog − cog)`` / 128, and ``cos, sin`` of the angle still to turn,
      ``θ_goal − θ``: what the expert's choice of push depends on.

    In the block's frame, one situation (pusher, block and goal placed alike relative to each
    other) looks the same wherever the block is and however it is turned.
    """
    positions = observations[..., :4] / (_WORKSPACE / 2) - 1.0
    angle = observations[..., 4]
    cos, sin = torch.cos(angle), torch.sin(angle)

    def to_block_frame(vectors: torch.Tensor) -> torch.Tensor:  # R(θ)ᵀ v for v (..., 2)
        return torch.stack([cos * vectors[..., 0] + sin * vectors[..., 1],
                            -sin * vectors[..., 0] + cos * vectors[..., 1]], dim=-1)

    pusher = to_block_frame(observations[..., 0:2] - observations[..., 2:4]) / 128.0
    # The centre of gravity is at R(θ)(0, 45) from the block's origin.
    cog = observations[..., 2:4] + torch.stack([-_COG_Y * sin, _COG_Y * cos], dim=-1)
    goal_cog = torch.as_tensor(_GOAL_COG, dtype=observations.dtype, device=observations.device)
    error = to_block_frame(goal_cog - cog) / 128.0
    turn = _GOAL_ANGLE - angle
    return torch.cat([positions, cos[..., None], sin[..., None], pusher, error,
                      torch.cos(turn)[..., None], torch.sin(turn)[..., None]], dim=-1)


def pusht_pusher_frame(observations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The frame PushT actions are predicted in, for ``action_frame=``: its origin is the
    pusher's position ``(..., 2)`` and its axes are the block's, the rotation ``R(θ)``
    ``(..., 2, 2)``. The policy then predicts where to move relative to the pusher (a small
    number where precision matters, while pushing), in the block's own directions (so pushing
    a face of the T is one output however the T is turned).
    """
    angle = observations[..., 4]
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.stack([torch.stack([cos, -sin], dim=-1), torch.stack([sin, cos], dim=-1)], dim=-2)
    return observations[..., :2], rotation


def _box_bounds(space: gym.Space, name: str) -> tuple[np.ndarray, np.ndarray]:
    if not (isinstance(space, gym.spaces.Box) and len(space.shape) == 1):
        raise ValueError(f"{name} must be a one-dimensional Box, got {space}")
    return space.low.astype(np.float64), space.high.astype(np.float64)


class BCPolicy(nn.Module, Policy):
    """``π(s)``: features (or bound-normalised observations) → MLP → normalised action → env action.

    The network predicts a normalised action ``u``; the environment action is
    ``centre + half_width · clip(u, −1, 1)`` by the action space's bounds, or, with an
    ``action_frame`` ``s → (origin (B, d), rotation (B, d, d))``, the action in that frame,
    ``origin(s) + rotation(s) · action_scale · u`` (e.g. a move relative to the pusher, along
    the block's axes), clipped to the bounds either way.

    ``forward(observations (B, n))`` returns normalised actions ``(B, d)`` (what the loss sees);
    ``to_unit(actions, observations)`` maps demonstrated actions the same way;
    ``get_action(obs)`` / ``greedy_action(obs)`` take one observation ``(n,)`` (or a batch) and
    return environment actions as NumPy.
    """

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, n_layers: int, size: int,
                 features: Optional[Callable[[torch.Tensor], torch.Tensor]], device: torch.device,
                 action_frame: Optional[ActionFrame] = None, action_scale: float = 100.0) -> None:
        super().__init__()
        obs_low, obs_high = _box_bounds(observation_space, "observation_space")
        act_low, act_high = _box_bounds(action_space, "action_space")
        if not (np.all(np.isfinite(act_low)) and np.all(np.isfinite(act_high))):
            raise ValueError(f"action_space must be bounded, got {action_space}")
        if features is None and not (np.all(np.isfinite(obs_low)) and np.all(np.isfinite(obs_high))):
            raise ValueError("observation_space is unbounded: pass features= to normalise observations")
        if not action_scale > 0:
            raise ValueError(f"action_scale must be > 0, got {action_scale}")
        self.device = device
        self.features, self.action_frame, self.action_scale = features, action_frame, float(action_scale)
        as_tensor = lambda x: torch.as_tensor(x, dtype=torch.float32, device=device)  # noqa: E731
        # Buffers move with .to(device) and are saved in state_dict.
        self.register_buffer("obs_centre", as_tensor((obs_high + obs_low) / 2 if features is None else 0.0))
        self.register_buffer("obs_half", as_tensor((obs_high - obs_low) / 2 if features is None else 1.0))
        self.register_buffer("act_low", as_tensor(act_low))
        self.register_buffer("act_high", as_tensor(act_high))
        self.n_observations, self.n_actions = observation_space.shape[0], action_space.shape[0]
        n_inputs = self.n_observations
        if features is not None:
            n_inputs = features(torch.zeros(1, n_inputs, device=device)).shape[-1]
        self.net = build_mlp(MLPConfig(n_inputs, self.n_actions, n_layers, size, "relu"), device=device)

    def inputs(self, observations: torch.Tensor) -> torch.Tensor:
        if self.features is not None:
            return self.features(observations)
        return (observations - self.obs_centre) / self.obs_half

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.net(self.inputs(observations))

    def to_unit(self, env_actions: torch.Tensor, observations: torch.Tensor) -> torch.Tensor:
        """Environment actions ``(B, d)`` (taken in ``observations``) → normalised actions."""
        if self.action_frame is not None:
            origin, rotation = self.action_frame(observations)
            # rotation⁻¹ = rotationᵀ: (rotationᵀ v)_i = Σ_j rotation_ji v_j
            local = torch.einsum("...ji,...j->...i", rotation, env_actions - origin)
            return local / self.action_scale
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
        obs = torch.as_tensor(np.asarray(observation), dtype=torch.float32, device=self.device)
        return self.to_env(self(obs), obs).cpu().numpy()

    def get_action(self, observation: Any) -> np.ndarray:
        return self.greedy_action(observation)


class BCAgent:
    """A behaviour-cloning agent: a ``BCPolicy``, its Adam optimiser and the loss.

    Args:
        observation_space, action_space: one-dimensional Boxes (the action space bounded).
        n_layers, size: the MLP's hidden layers (ReLU).
        learning_rate: Adam's step size.
        features: ``(B, n) → (B, m)`` network inputs (e.g. ``pusht_features``); default: the
            observations normalised by the observation space's bounds.
        action_frame, action_scale: predict actions in a frame of the state,
            ``origin(s) + rotation(s) · scale · u`` (e.g. ``pusht_pusher_frame`` and 100 px: a
            move relative to the pusher, along the block's axes); default: the action space's
            bounds map ``[-1, 1]`` onto ``[low, high]``.
        loss_fn: ``(predicted (B, d), demonstrated (B, d)) → scalar``, both normalised actions
            (default ``bc_mse_loss``; a student's function trains the policy).
        device: where the network lives (default ``get_device()``).
        seed: seeds the network's initialisation and the minibatch order.
    """

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, n_layers: int = 3,
                 size: int = 256, learning_rate: float = 1e-3,
                 features: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
                 loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = bc_mse_loss,
                 action_frame: Optional[ActionFrame] = None, action_scale: float = 100.0,
                 device: Optional[torch.device | str] = None, seed: Optional[int] = None) -> None:
        check_int("n_layers", n_layers, minimum=0)
        check_int("size", size)
        if not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable (predicted, demonstrated) -> loss, got {loss_fn!r}")
        self.device = torch.device(device) if device is not None else get_device()
        self.generator = torch.Generator()
        if seed is not None:
            torch.manual_seed(seed)
            self.generator.manual_seed(seed)
        self.policy = BCPolicy(observation_space, action_space, n_layers, size, features, self.device,
                               action_frame, action_scale)
        self.learning_rate = float(learning_rate)
        self.optimizer = make_adam(self.policy.parameters(), learning_rate, self.device)
        self.loss_fn = loss_fn

    def update(self, observations: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """One gradient step on a minibatch: observations ``(B, n)``, environment actions ``(B, d)``.

        Returns the loss (a detached scalar tensor: no ``.item()`` in the hot path).
        """
        loss = self.loss_fn(self.policy(observations), self.policy.to_unit(actions, observations))
        if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
            got = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
            raise ValueError(f"loss_fn must return a scalar tensor, got {got}")
        if not loss.requires_grad:
            raise ValueError("loss_fn returned a loss without a gradient (was it detached?)")
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def state_dict(self) -> dict[str, Any]:
        return {"policy": self.policy.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])


def _as_dataset(name: str, values: Any, device: torch.device, width: int) -> torch.Tensor:
    tensor = torch.as_tensor(np.asarray(values), dtype=torch.float32, device=device)
    if tensor.ndim != 2 or tensor.shape[1] != width:
        raise ValueError(f"{name} must have shape (N, {width}), got {tuple(tensor.shape)}")
    return tensor


def train_bc(agent: BCAgent, observations: Any, actions: Any, epochs: int, *, batch_size: int = 256,
             cosine_decay: bool = False, tracker: Optional[Tracker] = None, eval_every: int = 0,
             evaluate: Optional[Callable[[BCAgent], dict[str, float]]] = None,
             progress: bool = True) -> Tracker:
    """Minibatch training of ``agent`` on demonstrations for ``epochs`` passes over the data.

    Args:
        agent: a ``BCAgent``.
        observations, actions: the demonstrations, ``(N, n)`` and ``(N, d)`` (environment units).
        epochs: passes over the data, each in shuffled minibatches of ``batch_size``.
        cosine_decay: anneal the learning rate from the agent's ``learning_rate`` to 0 over the
            updates of this call, ``lr_k = lr · (1 + cos(π k / K)) / 2`` (Loshchilov & Hutter
            2017): the small steps at the end average out the minibatch noise that a constant
            step size leaves in the weights. Otherwise the rate stays the agent's.
        tracker: where metrics go (a new one by default, x axis "epoch"); passing the tracker of
            an earlier call continues its epoch count.
        eval_every, evaluate: every ``eval_every`` epochs (and after the last), log the metrics
            ``evaluate(agent)`` returns, e.g.
            ``lambda a: {"coverage": evaluate_pusht(a, range(10))["mean_max_coverage"]}``.
        progress: show a tqdm bar with the current loss.

    Logged per epoch: ``train_loss`` (the mean minibatch loss). Interrupting (Ctrl-C, Kernel →
    Interrupt) keeps the agent and the tracker as they are.
    """
    epochs = check_int("epochs", epochs, minimum=0)
    batch_size = check_int("batch_size", batch_size)
    check_int("eval_every", eval_every, minimum=0)
    if eval_every and evaluate is None:
        raise ValueError("eval_every > 0 needs evaluate (a function of the agent that returns metrics)")
    obs = _as_dataset("observations", observations, agent.device, agent.policy.n_observations)
    act = _as_dataset("actions", actions, agent.device, agent.policy.n_actions)
    if len(obs) != len(act) or len(obs) == 0:
        raise ValueError(f"observations and actions must have the same, non-zero length, got "
                         f"{len(obs)} and {len(act)}")
    tracker = tracker if tracker is not None else Tracker(x_label="epoch")
    first = int(tracker.steps("train_loss")[-1]) if "train_loss" in tracker.keys else 0
    total_updates, updates = max(epochs * -(-len(obs) // batch_size), 1), 0

    def set_learning_rate() -> None:
        rate = agent.learning_rate
        if cosine_decay:
            rate *= 0.5 * (1 + math.cos(math.pi * updates / total_updates))
        for group in agent.optimizer.param_groups:
            group["lr"] = rate

    bar = tqdm(range(first + 1, first + epochs + 1), disable=not progress, desc="BC", file=sys.stdout,
               mininterval=1.0, unit="epoch")
    try:
        for epoch in bar:
            order = torch.randperm(len(obs), generator=agent.generator).to(agent.device)
            losses = []
            for idx in order.split(batch_size):
                set_learning_rate()
                losses.append(agent.update(obs[idx], act[idx]))
                updates += 1
            loss = torch.stack(losses).mean().item()  # one synchronisation per epoch
            if not np.isfinite(loss):
                raise FloatingPointError(f"the BC loss is {loss} at epoch {epoch}")
            metrics = {"train_loss": loss}
            if eval_every and (epoch % eval_every == 0 or epoch == first + epochs):
                metrics.update(evaluate(agent))
            tracker.log(epoch, **metrics)
            bar.set_postfix({"loss": f"{loss:.4f}"}, refresh=False)
    except KeyboardInterrupt:
        done = len(tracker.steps("train_loss")) if "train_loss" in tracker.keys else 0
        print(f"\nInterrupted after {done} epochs in all; the agent and the tracker keep everything so far.")
    finally:
        bar.close()
        updates = 0
        set_learning_rate()  # the agent's own rate again, for what comes next
    return tracker


def dagger(agent: BCAgent, expert: Any, observations: Any, actions: Any, iterations: int, *,
           episodes_per_iteration: int = 20, epochs: int = 50, beta: float = 0.0, seed: int = 10_000,
           env_id: str = "course_utils/PushT-v0", batch_size: int = 256, cosine_decay: bool = False,
           tracker: Optional[Tracker] = None,
           evaluate: Optional[Callable[[BCAgent], dict[str, float]]] = None,
           progress: bool = True) -> tuple[np.ndarray, np.ndarray, Tracker]:
    """DAgger: roll out the learner, label every visited state with the expert, retrain on all.

    Each iteration runs ``episodes_per_iteration`` episodes (reset seeds ``seed, seed + 1, …``,
    different from the evaluation seeds 0–49), acting with the expert with probability ``beta``
    and with the learner otherwise (β = 0: the learner only, the usual choice after the first
    round), stores ``(state, expert(state))`` for every visited state, then trains ``agent``
    ``epochs`` more epochs on the aggregated data set (``batch_size`` and ``cosine_decay`` as in
    ``train_bc``; with the decay, every iteration anneals from the full rate). The expert must
    have ``reset()`` and ``expert(obs)``; it is called in every visited state, also when the
    learner acts, so its internal state follows the episode.

    Returns the aggregated ``(observations (N, n), actions (N, d))`` and the tracker (per epoch
    ``train_loss``; per iteration ``dagger_states``, the data set size, and whatever
    ``evaluate(agent)`` returns).
    """
    import course_utils.envs  # noqa: F401  (registers the environments)

    iterations = check_int("iterations", iterations, minimum=0)
    episodes_per_iteration = check_int("episodes_per_iteration", episodes_per_iteration)
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    all_obs, all_act = [np.asarray(observations, np.float64)], [np.asarray(actions, np.float64)]
    tracker = tracker if tracker is not None else Tracker(x_label="epoch")
    rng = np.random.default_rng(seed)
    env = gym.make(env_id)
    for iteration in range(iterations):
        new_obs, new_act = [], []
        for episode in range(episodes_per_iteration):
            obs, _ = env.reset(seed=seed + iteration * episodes_per_iteration + episode)
            expert.reset()
            done = False
            while not done:
                label = expert(obs)
                new_obs.append(obs)
                new_act.append(label)
                action = label if rng.random() < beta else agent.policy.greedy_action(obs)
                obs, _, terminated, truncated, _ = env.step(action)
                done = terminated or truncated
        all_obs.append(np.array(new_obs))
        all_act.append(np.array(new_act))
        data_obs, data_act = np.concatenate(all_obs), np.concatenate(all_act)
        train_bc(agent, data_obs, data_act, epochs, batch_size=batch_size, cosine_decay=cosine_decay,
                 tracker=tracker, progress=progress)
        extra = evaluate(agent) if evaluate is not None else {}
        tracker.log(int(tracker.steps("train_loss")[-1]), dagger_states=len(data_obs), **extra)
    env.close()
    return np.concatenate(all_obs), np.concatenate(all_act), tracker


# ------------------------------------------------------------------ one step of memory

def previous_and_current(observations: Any, episode_ends: Any) -> np.ndarray:
    """``[s_{t−1}, s_t]`` for every step of consecutive episodes: ``(N, n)`` → ``(N, 2n)``.

    ``episode_ends`` ``(E,)`` is one past each episode's last step (PushTDemos' convention). At an
    episode's first step there is no previous observation and the current one stands in for it,
    as ``HistoryPolicy`` does when it acts.
    """
    observations = np.asarray(observations)
    ends = np.asarray(episode_ends, dtype=np.int64)
    if observations.ndim != 2 or ends.ndim != 1 or not len(ends) or ends[-1] != len(observations):
        raise ValueError(f"observations must be (N, n) and episode_ends end at N = {len(observations)}, "
                         f"got shapes {observations.shape} and {ends.shape}")
    previous = np.concatenate([observations[:1], observations[:-1]])
    starts = np.concatenate([[0], ends[:-1]])
    previous[starts] = observations[starts]
    return np.concatenate([previous, observations], axis=1)


def history_space(space: gym.Space) -> gym.spaces.Box:
    """The space of ``[previous, current]`` pairs of observations of the Box ``space``."""
    low, high = _box_bounds(space, "space")
    return gym.spaces.Box(np.tile(low, 2).astype(np.float32), np.tile(high, 2).astype(np.float32),
                          dtype=np.float32)


def pusht_history_features(pairs: torch.Tensor) -> torch.Tensor:
    """``[previous, current]`` PushT states ``(..., 10)`` → network inputs ``(..., 24)``: the
    ``pusht_features`` of the current state and 10 × their change since the previous one (the
    pusher's and the block's motion, of order 1), which tells where the pusher was heading."""
    now, before = pusht_features(pairs[..., 5:]), pusht_features(pairs[..., :5])
    return torch.cat([now, 10.0 * (now - before)], dim=-1)


def pusht_history_frame(pairs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``pusht_pusher_frame`` of the current state of ``[previous, current]`` pairs ``(..., 10)``."""
    return pusht_pusher_frame(pairs[..., 5:])


class HistoryPolicy(Policy):
    """Acts with a policy of ``[previous, current]`` observations, remembering the previous one.

    ``cloned`` is trained on ``previous_and_current`` pairs (a ``BCPolicy`` on ``history_space``);
    ``greedy_action(obs)`` (also ``get_action`` and calling it) feeds it ``[previous, obs]``, with
    ``obs`` standing in for the previous observation at the first step after ``reset()``, which
    ``evaluate_pusht`` calls at every episode's start (call it yourself before another episode).
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

    def get_action(self, observation: Any) -> np.ndarray:
        return self.greedy_action(observation)

    def __call__(self, observation: Any) -> np.ndarray:
        return self.greedy_action(observation)


# ------------------------------------------------------------------ RL from demonstrations

def discounted_returns(rewards: np.ndarray, episode_ends: np.ndarray, gamma: float) -> np.ndarray:
    """Monte Carlo returns ``G_t = r_t + γ r_{t+1} + …`` to the end of each episode, ``(N,)``.

    ``rewards`` ``(N,)`` of consecutive episodes; ``episode_ends`` ``(E,)`` one past each
    episode's last step (PushTDemos' convention). An episode that was truncated rather than
    terminated has a future beyond its end that these returns leave out.
    """
    rewards = torch.as_tensor(np.asarray(rewards, dtype=np.float64))
    starts = np.concatenate([[0], np.asarray(episode_ends)[:-1]])
    return np.concatenate([reward_to_go(rewards[start:end], gamma).numpy()
                           for start, end in zip(starts, episode_ends)])


def _demo_transitions(demos: Any) -> dict[str, np.ndarray]:
    """The transitions ``(s, a, r, s', terminated, truncated)`` of ``PushTDemos``, ``(N, ...)``."""
    from course_utils.envs.pusht import SUCCESS_THRESHOLD, coverage_reward

    ends = np.asarray(demos.episode_ends)
    next_observations = np.concatenate([demos.observations[1:], demos.observations[:1]]).copy()
    next_observations[ends - 1] = demos.final_observations  # the last step's s' is the final state
    last = np.zeros(len(demos.observations), dtype=bool)
    last[ends - 1] = True
    terminated = last & (np.asarray(demos.coverage) > SUCCESS_THRESHOLD)
    return {"observations": np.asarray(demos.observations, np.float32),
            "actions": np.asarray(demos.actions, np.float32),
            "rewards": coverage_reward(np.asarray(demos.coverage)).astype(np.float32),
            "next_observations": next_observations.astype(np.float32),
            "terminated": terminated, "truncated": last & ~terminated}


def demo_replay_buffer(demos: Any, device: Optional[torch.device | str] = None,
                       seed: Optional[int] = None,
                       observation_transform: Optional[Callable[[np.ndarray], np.ndarray]] = None
                       ) -> ReplayBuffer:
    """The transitions of ``PushTDemos`` in a ``ReplayBuffer`` of exactly their number.

    The reward is PushT's, ``clip(coverage / 0.95, 0, 1)``; the last step of an episode is
    ``terminated`` if its coverage passed 0.95, else ``truncated``. ``observation_transform``
    ``(N, 5) → (N, m)`` maps the states as the agent's environment does (e.g. a normalising
    wrapper), so demonstrations and the agent's own transitions look alike.
    """
    data = _demo_transitions(demos)
    if observation_transform is not None:
        for key in ("observations", "next_observations"):
            data[key] = np.asarray(observation_transform(data[key]), np.float32)
    buffer = ReplayBuffer(len(data["rewards"]), data["observations"].shape[1:], data["actions"].shape[1:],
                          action_dtype=torch.float32, device=device, seed=seed)
    buffer.extend(*(data[k] for k in ("observations", "actions", "rewards", "next_observations",
                                       "terminated", "truncated")))
    return buffer


def _deterministic_actor(agent: Any) -> tuple[nn.Module, Callable[[torch.Tensor], torch.Tensor]]:
    """The actor module of DDPG/TD3 (``actor``) or SAC (``actor.deterministic``) and its forward."""
    actor = getattr(agent, "actor", None)
    if not isinstance(actor, nn.Module) or not hasattr(agent, "scaler"):
        raise TypeError(f"agent must be a DDPGAgent, TD3Agent or SACAgent, got {type(agent).__name__}")
    return actor, getattr(actor, "deterministic", actor)


def pretrain_actor(agent: Any, demo_buffer: ReplayBuffer, steps: int = 2_000, batch_size: int = 256,
                   loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = bc_mse_loss,
                   learning_rate: float = 1e-3, progress: bool = True) -> list[float]:
    """BC pre-training of an off-policy agent's actor on the demonstrations.

    Minimises ``loss_fn(μ(s), a)`` over minibatches of ``demo_buffer``, with actions in the
    agent's unit box (``agent.scaler.to_unit``), by its own Adam of ``learning_rate`` (the
    agent's optimiser keeps its state for RL). For SAC the deterministic action ``tanh(mean)``
    is trained. Returns the loss every 100 steps. The target networks are copied from the
    trained actor (DDPG/TD3), so the first targets use it.
    """
    steps = check_int("steps", steps, minimum=0)
    actor, forward = _deterministic_actor(agent)
    optimizer = torch.optim.Adam(actor.parameters(), lr=learning_rate)
    losses = []
    for step in tqdm(range(steps), disable=not progress, desc="actor pre-training", file=sys.stdout,
                     mininterval=1.0):
        batch = demo_buffer.sample(batch_size)
        loss = loss_fn(forward(batch.observations), agent.scaler.to_unit(batch.actions).clamp(-1, 1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 100 == 0 or step == steps - 1:
            losses.append(loss.item())
    if hasattr(agent, "actor_target"):
        agent.actor_target.load_state_dict(actor.state_dict())
    return losses


def pretrain_critic(agent: Any, demos: Any, steps: int = 2_000, batch_size: int = 256,
                    learning_rate: float = 1e-3, device: Optional[torch.device | str] = None,
                    observation_transform: Optional[Callable[[np.ndarray], np.ndarray]] = None,
                    progress: bool = True) -> list[float]:
    """Monte Carlo pre-training of the critics: ``Q_i(s_t, a_t) → G_t``, the demonstrations'
    discounted returns with the agent's ``gamma``, by MSE over minibatches.

    The returns come from ``discounted_returns`` over the demonstrations' episodes (rewards
    ``clip(coverage / 0.95, 0, 1)``), so nothing depends on the order of a transition's fields.
    Every critic of ``agent.critics`` is trained; the target critics are then copied from them.
    Returns the loss every 100 steps.
    """
    steps = check_int("steps", steps, minimum=0)
    _deterministic_actor(agent)  # the same agents as pretrain_actor
    device = torch.device(device) if device is not None else agent.device
    data = _demo_transitions(demos)
    returns = discounted_returns(data["rewards"], demos.episode_ends, agent.gamma)
    observations = data["observations"]
    if observation_transform is not None:
        observations = observation_transform(observations)
    obs = torch.as_tensor(np.asarray(observations), dtype=torch.float32, device=device)
    actions = agent.scaler.to_unit(torch.as_tensor(data["actions"], device=device)).clamp(-1, 1)
    targets = torch.as_tensor(returns, dtype=torch.float32, device=device)
    optimizer = torch.optim.Adam(agent.critics.parameters(), lr=learning_rate)
    generator = torch.Generator().manual_seed(0)
    losses = []
    for step in tqdm(range(steps), disable=not progress, desc="critic pre-training", file=sys.stdout,
                     mininterval=1.0):
        idx = torch.randint(len(obs), (batch_size,), generator=generator).to(device)
        loss = sum(((critic(obs[idx], actions[idx]) - targets[idx]) ** 2).mean() for critic in agent.critics)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 100 == 0 or step == steps - 1:
            losses.append(loss.item())
    agent.critics_target.load_state_dict(agent.critics.state_dict())
    return losses
