"""Training loops: sample with the current policy, update the agent, log, repeat.

A loop shows a progress bar with the current average return, can refresh a live plot in the
notebook, and can be interrupted (Kernel → Interrupt, or Ctrl-C) without losing anything: the
agent keeps what it learned and the Tracker keeps the history up to the interruption.
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from course_utils.agents.base import Agent
from course_utils.tracking import Tracker
from course_utils.trajectory import sample_trajectories, sample_trajectory


_LOOP_METRICS = {"return", "return_std", "episode_length", "env_steps"}


def train_agent(env: gym.Env, agent: Agent, n_iterations: int, min_timesteps: int,
                tracker: Optional[Tracker] = None, seed: Optional[int] = None,
                progress: bool = True, live_plot_every: int = 0,
                live_plot_keys: Sequence[str] = ("return",),
                max_steps: Optional[int] = None) -> Tracker:
    """On-policy training: each iteration samples ≥ ``min_timesteps`` steps, then one update.

    Args:
        env: a gymnasium environment (not vectorised).
        agent: an ``Agent``; ``agent.update(trajectories)`` returns a dict of metrics.
        n_iterations: number of sample-then-update iterations.
        min_timesteps: the batch size in environment steps (whole episodes are kept).
        tracker: where metrics go; pass the tracker of an earlier run to continue it.
        seed: seeds the first reset of the environment (the rest follow from it).
        progress: show a progress bar with the average return of the last batch.
        live_plot_every: refresh a live plot of ``live_plot_keys`` every this many iterations
            (0: no live plot).
        max_steps: cut episodes after this many steps (recorded as truncation).

    Logged per iteration: ``return`` (mean episode return of the batch), ``return_std``,
    ``episode_length``, ``env_steps`` (cumulative) and whatever ``agent.update`` returns.
    """
    if n_iterations < 0:
        raise ValueError(f"n_iterations must be >= 0, got {n_iterations}")
    tracker = tracker if tracker is not None else Tracker()
    first_iteration = len(tracker)
    env_steps = int(tracker.last("env_steps")) if "env_steps" in tracker.keys else 0
    bar = tqdm(range(first_iteration, first_iteration + n_iterations), disable=not progress,
               desc="training", file=sys.stdout, mininterval=1.0)
    try:
        for iteration in bar:
            first_seed = seed if iteration == first_iteration else None
            trajectories = sample_trajectories(env, agent, min_timesteps, seed=first_seed,
                                               max_steps=max_steps)
            metrics = agent.update(trajectories)
            clash = sorted(set(metrics) & _LOOP_METRICS)
            if clash:
                raise ValueError(f"agent.update returned metrics named {clash}, which the loop logs "
                                 "itself; rename them in the agent")
            returns = np.array([t.total_reward for t in trajectories])
            env_steps += sum(len(t) for t in trajectories)
            tracker.log(iteration, **{"return": returns.mean(), "return_std": returns.std(),
                                      "episode_length": np.mean([len(t) for t in trajectories]),
                                      "env_steps": env_steps}, **metrics)
            bar.set_postfix({"return": f"{returns.mean():.1f}"}, refresh=False)
            if live_plot_every and (iteration + 1) % live_plot_every == 0:
                tracker.live_plot(live_plot_keys)
    except KeyboardInterrupt:
        print(f"\nInterrupted after {len(tracker) - first_iteration} of {n_iterations} iterations; "
              "the agent and the tracker keep everything so far.")
    finally:
        bar.close()
        if live_plot_every:
            tracker.live_plot(live_plot_keys)
            tracker.finish_live_plot()
    return tracker


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
