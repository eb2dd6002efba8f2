"""Experiences, trajectories, how to sample them from an environment, and how to evaluate a policy.

A *trajectory* is the sequence of experiences ``(o_t, a_t, r_t)`` of one episode, together with
how it ended: ``terminated`` (a terminal state was reached: no future reward) or ``truncated``
(the episode was cut off, e.g. by a time limit: the future was not zero, it was not observed).
The two must stay apart: value-based methods bootstrap through a truncation but not through a
termination.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import gymnasium as gym
import numpy as np
import torch


ActionFn = Callable[[np.ndarray], Any]


@dataclass(frozen=True)
class ExperienceData:
    """One step of interaction: what the agent saw, what it did, what it got, and whether it ended."""

    observation: np.ndarray
    action: Any
    reward: float
    terminated: bool
    truncated: bool


@dataclass(frozen=True)
class Trajectory:
    """One finished episode of length T, stored as arrays.

    Attributes:
        observations: ``(T, *obs_shape)``, ``o_0 … o_{T-1}``.
        actions: ``(T, *action_shape)`` (``(T,)`` for discrete actions).
        rewards: ``(T,)`` float32, ``r_0 … r_{T-1}``.
        terminated: ``(T,)`` bool; only the last entry can be True.
        truncated: ``(T,)`` bool; only the last entry can be True.
        final_observation: ``o_T``, the observation after the last step (``None`` if not given);
            needed to bootstrap a value at a truncation.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    final_observation: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return len(self.rewards)

    @property
    def total_reward(self) -> float:
        """The return of the episode, ``r(τ) = Σ_t r_t``."""
        return float(self.rewards.sum())


class TrajectoryBuilder:
    """Builds one trajectory step by step and refuses anything that would corrupt it.

    ``add_experience`` records ``terminated`` and ``truncated`` exactly as given, refuses a step
    after the episode has ended, and refuses an observation whose shape differs from the first.
    ``trajectory`` can only be read once the episode has ended.
    """

    def __init__(self) -> None:
        self._experiences: list[ExperienceData] = []
        self._final_observation: Optional[np.ndarray] = None
        self._done = False

    def add_experience(self, observation: np.ndarray, action: Any, reward: float,
                       terminated: bool, truncated: bool,
                       next_observation: Optional[np.ndarray] = None) -> bool:
        """Append one step; return True when the episode has ended (terminated or truncated).

        ``next_observation`` (optional) is the observation that followed this step; the one given
        with the last step is kept as ``Trajectory.final_observation``.
        """
        if self._done:
            raise RuntimeError(
                "add_experience: the episode already ended (terminated or truncated); "
                "start a new TrajectoryBuilder for the next episode"
            )
        observation = np.array(observation)  # a copy: some environments reuse their buffers
        if self._experiences and observation.shape != self._experiences[0].observation.shape:
            raise ValueError(
                f"add_experience: observation has shape {observation.shape}, but this trajectory's "
                f"observations have shape {self._experiences[0].observation.shape}"
            )
        reward = float(reward)
        if not np.isfinite(reward):
            raise ValueError(f"add_experience: reward must be finite, got {reward}")
        self._experiences.append(
            ExperienceData(observation, action, reward, bool(terminated), bool(truncated))
        )
        self._done = bool(terminated) or bool(truncated)
        if next_observation is not None:
            self._final_observation = np.asarray(next_observation)
        return self._done

    @property
    def done(self) -> bool:
        """True once an experience with ``terminated`` or ``truncated`` has been added."""
        return self._done

    def __len__(self) -> int:
        return len(self._experiences)

    @property
    def trajectory(self) -> Trajectory:
        """The finished trajectory; raises if the episode has not ended yet."""
        if not self._done:
            raise RuntimeError(
                f"trajectory: the episode has not ended after {len(self._experiences)} steps; add "
                "experiences until one has terminated=True or truncated=True"
            )
        exps = self._experiences
        return Trajectory(
            observations=np.stack([e.observation for e in exps]),
            actions=np.stack([np.asarray(e.action) for e in exps]),
            rewards=np.array([e.reward for e in exps], dtype=np.float32),
            terminated=np.array([e.terminated for e in exps], dtype=bool),
            truncated=np.array([e.truncated for e in exps], dtype=bool),
            final_observation=self._final_observation,
        )


def action_function(actor: Any) -> ActionFn:
    """Turn what acts into a function ``observation -> action``.

    Accepts an agent (anything with ``.policy.get_action``), a policy (anything with
    ``.get_action``) or a plain callable. ``get_action`` is looked for first: a policy that is an
    ``nn.Module`` is also callable, but calling it runs its forward pass, not its action choice.
    """
    policy = getattr(actor, "policy", None)
    if policy is not None and hasattr(policy, "get_action"):
        return policy.get_action
    if hasattr(actor, "get_action"):
        return actor.get_action
    if callable(actor):
        return actor
    raise TypeError(
        f"expected an agent, a policy with get_action(observation) or a callable, got {type(actor)}"
    )


def env_action(action: Any, action_space: gym.Space) -> Any:
    """What the environment is given: tensors become NumPy, continuous actions are clipped to
    the box, and a 0-d integer array becomes a Python int."""
    if isinstance(action, torch.Tensor):
        action = action.detach().cpu().numpy()
    if isinstance(action_space, gym.spaces.Box):
        return np.clip(action, action_space.low, action_space.high)
    if isinstance(action, np.ndarray) and action.ndim == 0 and action.dtype.kind in "iu":
        return int(action)
    return action


def sample_trajectory(env: gym.Env, agent: Any, seed: Optional[int] = None,
                      max_steps: Optional[int] = None) -> Trajectory:
    """Run one episode with ``agent`` (see ``action_function``) and return its trajectory.

    Args:
        env: a gymnasium environment; it is reset (with ``seed`` if given).
        agent: an agent, a policy or a callable ``observation -> action``.
        seed: seeds the environment's reset; ``None`` continues its random stream.
        max_steps: cut the episode after this many steps, recorded as a truncation.

    The stored action is the one the policy chose; a continuous action is clipped to the action
    space only when it is passed to the environment (so log-probabilities stay exact).
    """
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be >= 1 or None, got {max_steps}")
    act = action_function(agent)
    builder = TrajectoryBuilder()
    observation, _ = env.reset(seed=seed)
    done = False
    while not done:
        action = act(observation)
        next_observation, reward, terminated, truncated, _ = env.step(
            env_action(action, env.action_space))
        if max_steps is not None and len(builder) + 1 >= max_steps and not terminated:
            truncated = True  # our own time limit; a terminal step stays terminal
        done = builder.add_experience(observation, action, reward, terminated, truncated,
                                      next_observation)
        observation = next_observation
    return builder.trajectory


def sample_trajectories(env: gym.Env, agent: Any, min_timesteps: int,
                        seed: Optional[int] = None,
                        max_steps: Optional[int] = None) -> list[Trajectory]:
    """Sample whole episodes until together they hold at least ``min_timesteps`` steps.

    Sampling by a budget of timesteps (rather than a fixed number of episodes) keeps the batch
    size, and so the cost and the noise of one update, roughly constant while episodes grow
    longer as the agent improves. ``seed`` seeds the first reset only; later episodes continue
    the environment's random stream, so they differ from each other.
    """
    if min_timesteps < 1:
        raise ValueError(f"min_timesteps must be >= 1, got {min_timesteps}")
    trajectories: list[Trajectory] = []
    steps = 0
    while steps < min_timesteps:
        trajectory = sample_trajectory(env, agent, seed=seed if not trajectories else None,
                                       max_steps=max_steps)
        trajectories.append(trajectory)
        steps += len(trajectory)
    return trajectories


def evaluate(env: gym.Env, policy, n_episodes: int = 10, seed: Optional[int] = None,
             greedy: bool = True) -> np.ndarray:
    """Returns of ``n_episodes`` episodes, shape ``(n_episodes,)``.

    ``greedy`` acts with ``policy.greedy_action`` (the most likely action) when the policy has
    one; otherwise ``policy.get_action`` (sampling). An agent may be given for its policy. Episodes use seeds ``seed, seed+1, …``.
    """
    policy = getattr(policy, "policy", policy)  # an agent: evaluate its policy
    act = policy.greedy_action if greedy and hasattr(policy, "greedy_action") else policy
    seeds = [None if seed is None else seed + i for i in range(n_episodes)]
    return np.array([sample_trajectory(env, act, seed=s).total_reward for s in seeds])
