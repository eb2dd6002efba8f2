"""Training loops: act, learn, log, repeat.

The older loops, which notebook 09's agents still use (the other notebooks' algorithms have
their loops in their own files, ``course_utils/agents/<algo>.py``):

* ``train_off_policy``: off-policy (DQN, DDPG): every environment step goes into a replay
  buffer; every few steps the agent takes gradient steps on replayed batches.
* ``train_goal_conditioned``: off-policy on a goal environment (notebook 09): whole episodes,
  stored with Hindsight Experience Replay, then a number of gradient steps per episode.

A loop shows a progress bar with the current average return, can refresh a live plot in the
notebook, and can be interrupted (Kernel → Interrupt, or Ctrl-C) without losing anything: the
agent keeps what it learned and the Tracker keeps the history up to the interruption.
``train_off_policy`` also writes checkpoints and resumes from them.
"""

from __future__ import annotations

import copy
import os
import random
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from course_utils.agents.base import OffPolicyAgent
from course_utils.buffers import (GoalEpisode, GoalSelection, ReplayBuffer,
                                  future_goal_indices, goal_observations, store_episode)
from course_utils.tracking import Tracker
from course_utils.trajectory import env_action, evaluate
from course_utils.validation import check_int


_LOOP_METRICS = {"return", "return_std", "episode_length", "env_steps"}


def train_off_policy(env: gym.Env, agent: OffPolicyAgent, buffer: ReplayBuffer, total_steps: int,
                     *, tracker: Optional[Tracker] = None, seed: Optional[int] = None,
                     learning_starts: int = 1_000, train_every: int = 1, gradient_steps: int = 1,
                     batch_size: int = 64, eval_env: Optional[gym.Env] = None,
                     eval_every: int = 0, eval_episodes: int = 10,
                     solved_at: Optional[float] = None, keep_best: bool = False,
                     on_evaluation: Optional[Callable[[int], dict[str, float]]] = None,
                     checkpoint: Optional[Union[str, Path]] = None, checkpoint_every: int = 0,
                     log_every: int = 1_000, progress: bool = True, live_plot_every: int = 0,
                     live_plot_keys: Sequence[str] = ("return", "eval_return")) -> Tracker:
    """Off-policy training for ``total_steps`` environment steps.

    Each step: act (uniformly at random before ``learning_starts``, then ``agent.act(o, step)``,
    which applies the agent's ε or noise schedule), store the transition in ``buffer``, and every
    ``train_every`` steps take ``gradient_steps`` updates on batches of ``batch_size``. The agent
    updates its own target networks. Episodes that end by truncation are stored with their true
    last observation, so their targets bootstrap.

    Args:
        env: a gymnasium environment (not vectorised).
        agent: an ``OffPolicyAgent`` (``act``, ``update``, ``state_dict``, ``load_state_dict``).
        buffer: the replay buffer (pass the same one again to continue a run).
        total_steps: train until this many environment steps have been taken in all.
        tracker: where metrics go (default: a new one, x axis "environment steps"); the tracker
            of an earlier run continues that run.
        seed: seeds the first reset and the random warm-up actions.
        eval_env, eval_every, eval_episodes: every ``eval_every`` steps, the return of
            ``eval_episodes`` episodes of the greedy policy on ``eval_env`` (the same seeds each
            time). Evaluation time is excluded from ``train_seconds``.
        solved_at: stop at the first evaluation whose mean return reaches this.
        keep_best: at the end, restore the agent of the best evaluation.
        on_evaluation: called as ``on_evaluation(step)`` after each evaluation; the metrics it
            returns are logged at that step (e.g. the Q-values the agent predicts).
        checkpoint: a file for agent, buffer, tracker and counters. If it exists when the loop
            starts, training resumes from it; it is written every ``checkpoint_every`` steps
            (0: only at the end) and when the run is interrupted.
        log_every: log the update metrics (averaged) and the speed every this many steps.
        progress, live_plot_every, live_plot_keys: progress bar; live plot every that many
            steps (0: none).

    Logged: ``return`` and ``episode_length`` per episode; ``eval_return``, ``eval_return_std``
    (with ``train_seconds``) per evaluation; ``env_steps``, ``train_seconds``,
    ``steps_per_second`` and the averaged
    update metrics every ``log_every`` steps and when the run stops. Steps are environment
    steps. Passing the returned tracker (with the same agent and buffer) to a new call continues
    the run where it stopped, an interrupted one included; so does a checkpoint file, across
    kernel restarts. NaN or infinite update metrics raise ``FloatingPointError`` at the next log.
    """
    total_steps = check_int("total_steps", total_steps, minimum=0)
    for name, value in (("train_every", train_every), ("gradient_steps", gradient_steps),
                        ("batch_size", batch_size), ("eval_episodes", eval_episodes),
                        ("log_every", log_every)):
        check_int(name, value)
    for name, value in (("learning_starts", learning_starts), ("eval_every", eval_every),
                        ("checkpoint_every", checkpoint_every),
                        ("live_plot_every", live_plot_every)):
        check_int(name, value, minimum=0)
    if eval_every and eval_env is None:
        raise ValueError("eval_every > 0 needs an eval_env (a separate environment to evaluate on)")
    if (solved_at is not None or keep_best) and not eval_every:
        raise ValueError("solved_at and keep_best need evaluations: set eval_every > 0")
    tracker = tracker if tracker is not None else Tracker(x_label="environment steps")
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    state = _start_run(checkpoint, agent, buffer, tracker)
    eval_seed = _eval_seed(seed)
    env.action_space.seed(seed if state.step == 0 else None)
    # A continued run starts a new episode: an environment's state cannot be saved.
    observation, _ = env.reset(seed=seed if seed is None or state.step == 0 else seed + state.step)
    episode_return, episode_length = 0.0, 0
    recent_returns: deque[float] = deque(tracker.history.get("return", [])[-10:], maxlen=10)
    update_metrics: list[dict[str, Any]] = []
    bar = tqdm(total=total_steps, initial=state.step, disable=not progress, desc="training",
               file=sys.stdout, mininterval=1.0, unit="step")
    interrupted = False
    clock = _Stopwatch(state)  # counts training time only: paused while evaluating or saving
    try:
        while state.step < total_steps:
            if state.step < learning_starts:
                action = env.action_space.sample()
            else:
                action = agent.act(observation, state.step)
            next_observation, reward, terminated, truncated, _ = env.step(action)
            buffer.add(observation, action, reward, next_observation, terminated, truncated)
            episode_return += float(reward)
            episode_length += 1
            state.step += 1
            if terminated or truncated:
                tracker.log(state.step, **{"return": episode_return,
                                           "episode_length": episode_length})
                recent_returns.append(episode_return)
                agent.end_episode()
                observation, _ = env.reset()
                episode_return, episode_length = 0.0, 0
            else:
                observation = next_observation

            if state.step > learning_starts and state.step % train_every == 0:
                for _ in range(gradient_steps):
                    update_metrics.append(agent.update(buffer.sample(batch_size)))

            if state.step % log_every == 0:
                _log_updates(tracker, state, clock, update_metrics)
                update_metrics = []
                _show_progress(bar, state, tracker, recent_returns)

            if eval_every and state.step % eval_every == 0:
                mean_return = _evaluate_and_log(eval_env, agent, eval_episodes, eval_seed, tracker,
                                                state, clock, keep_best, on_evaluation)
                if solved_at is not None and mean_return >= solved_at:
                    break

            _periodic_save_and_plot(state.step - 1, state, checkpoint, checkpoint_every, agent,
                                    buffer, tracker, clock, live_plot_every, live_plot_keys)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        clock.pause()
        bar.n = state.step
        bar.close()
    _finish_run(agent, buffer, tracker, state, clock, update_metrics, interrupted, total_steps,
                checkpoint, keep_best, live_plot_every, live_plot_keys)
    return tracker


def _crossed(before: int, after: int, every: int) -> bool:
    """Whether a multiple of ``every`` lies in ``(before, after]``: a rollout steps N at a time."""
    return after // every > before // every


def _periodic_save_and_plot(steps_before: int, state: "_RunState", checkpoint: Optional[Path],
                            checkpoint_every: int, agent: Any, buffer: Optional[ReplayBuffer],
                            tracker: Tracker, clock: "_Stopwatch", live_plot_every: int,
                            live_plot_keys: Sequence[str]) -> None:
    """Write the checkpoint (training clock paused) and redraw the live plot when a multiple of
    their periods lies in ``(steps_before, state.step]``; a period of 0 means never."""
    if checkpoint is not None and checkpoint_every and \
            _crossed(steps_before, state.step, checkpoint_every):
        clock.pause()
        _save_checkpoint(checkpoint, agent, buffer, tracker, state)
        clock.resume()
    if live_plot_every and _crossed(steps_before, state.step, live_plot_every):
        tracker.live_plot([k for k in live_plot_keys if k in tracker.keys])


class _RunState:
    """The counters of a training run that a checkpoint must restore."""

    def __init__(self) -> None:
        self.step = 0
        self.train_seconds = 0.0
        self.best_return = -float("inf")
        self.best_step = 0
        self.best_agent: Optional[dict[str, Any]] = None


class _Stopwatch:
    """Adds the wall-clock time between ``resume`` and ``pause`` to ``state.train_seconds``."""

    def __init__(self, state: "_RunState") -> None:
        self.state = state
        self.started: Optional[float] = time.perf_counter()

    def pause(self) -> None:
        if self.started is not None:  # pausing twice (an interrupt while paused) counts once
            self.state.train_seconds += time.perf_counter() - self.started
            self.started = None

    def resume(self) -> None:
        self.started = time.perf_counter()

    def read(self) -> float:
        """The training seconds so far, counting the current stretch."""
        running = time.perf_counter() - self.started if self.started is not None else 0.0
        return self.state.train_seconds + running


def _log_updates(tracker: Tracker, state: _RunState, clock: _Stopwatch,
                 update_metrics: list[dict[str, Any]]) -> None:
    """Log the mean of each update metric since the last log, the step count and the speed."""
    means = {}
    for name in update_metrics[0] if update_metrics else ():
        # One conversion per metric per log: no `.item()` (a GPU sync) after every update.
        value = float(torch.stack([torch.as_tensor(m[name]).float() for m in update_metrics]).mean())
        if not np.isfinite(value):
            raise FloatingPointError(f"the agent's {name!r} became {value} at step {state.step:,}; "
                                     "lower the learning rate or check the targets")
        means[name] = value
    seconds = clock.read()
    tracker.log(state.step, env_steps=state.step, train_seconds=seconds,
                steps_per_second=state.step / max(seconds, 1e-9), **means)


def _eval_seed(seed: Optional[int]) -> Optional[int]:
    """The first seed of the evaluation episodes: the same every evaluation, unlike training's."""
    return None if seed is None else seed + 1_000_000


def _start_run(checkpoint: Optional[Path], agent: Any, buffer: Optional[ReplayBuffer],
               tracker: Tracker) -> _RunState:
    """The counters a run starts from: a checkpoint's (restoring agent, buffer and tracker from
    it), those of the tracker of an earlier or interrupted run, or zero."""
    state = _RunState()
    if checkpoint is not None and checkpoint.exists():
        state = _load_checkpoint(checkpoint, agent, buffer, tracker)
        print(f"Resuming from {checkpoint} at step {state.step:,}.")
    elif "env_steps" in tracker.keys:  # the tracker of an earlier (or interrupted) run: continue it
        state.step = int(tracker.last("env_steps"))
        state.train_seconds = tracker.last("train_seconds")
    return state


def _show_progress(bar: tqdm, state: _RunState, tracker: Tracker, recent_returns: deque) -> None:
    """Move the bar to the current step and show the recent training and evaluation returns."""
    bar.update(state.step - bar.n)
    postfix = {"return": f"{np.mean(recent_returns):.1f}" if recent_returns else "-"}
    if "eval_return" in tracker.keys:
        postfix["eval"] = f"{tracker.last('eval_return'):.1f}"
    bar.set_postfix(postfix, refresh=False)


def _evaluate_and_log(eval_env: gym.Env, agent: Any, eval_episodes: int,
                      eval_seed: Optional[int], tracker: Tracker, state: _RunState,
                      clock: _Stopwatch, keep_best: bool,
                      on_evaluation: Optional[Callable[[int], dict[str, float]]]) -> float:
    """Evaluate the greedy policy (training clock paused), log it, remember the best agent;
    returns the mean evaluation return."""
    clock.pause()
    returns = evaluate(eval_env, agent.policy, eval_episodes, seed=eval_seed)
    extra = on_evaluation(state.step) if on_evaluation is not None else {}
    tracker.log(state.step, eval_return=returns.mean(), eval_return_std=returns.std(),
                train_seconds=clock.read(), **extra)
    if keep_best and returns.mean() > state.best_return:
        state.best_return, state.best_step = float(returns.mean()), state.step
        state.best_agent = copy.deepcopy(agent.state_dict())
    clock.resume()
    return float(returns.mean())


def _finish_run(agent: Any, buffer: Optional[ReplayBuffer], tracker: Tracker, state: _RunState,
                clock: _Stopwatch, update_metrics: list[dict[str, Any]], interrupted: bool,
                total_steps: int, checkpoint: Optional[Path], keep_best: bool,
                live_plot_every: int, live_plot_keys: Sequence[str]) -> None:
    """After the loop: the last row, the interruption message, the checkpoint, ``keep_best``'s
    restore and the final plot."""
    # The last row: the final partial interval's metrics, and where a continued run starts.
    logged_here = "env_steps" in tracker.keys and tracker.last("env_steps") == state.step
    if update_metrics or (state.step > 0 and not logged_here):
        _log_updates(tracker, state, clock, update_metrics)
    if interrupted:
        where = f"; checkpoint written to {checkpoint}" if checkpoint is not None else ""
        kept = "the agent, the buffer" if buffer is not None else "the agent"
        print(f"\nInterrupted at step {state.step:,} of {total_steps:,}: {kept} and the tracker "
              f"keep everything so far (call again to continue){where}.")
    if checkpoint is not None:
        _save_checkpoint(checkpoint, agent, buffer, tracker, state)
    if keep_best and state.best_agent is not None and not interrupted:
        agent.load_state_dict(state.best_agent)
        print(f"Restored the agent of step {state.best_step:,}, the best evaluation "
              f"({state.best_return:.1f}).")
    if live_plot_every:
        tracker.live_plot([k for k in live_plot_keys if k in tracker.keys])
        tracker.finish_live_plot()


def _save_checkpoint(path: Path, agent: Any, buffer: Optional[ReplayBuffer], tracker: Tracker,
                     state: _RunState) -> None:
    """Write everything a run needs to resume (an on-policy run has no ``buffer``: a rollout is
    not kept across updates); a temporary file first, so a crash leaves the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"agent": agent.state_dict(),
               "buffer": buffer.state_dict() if buffer is not None else None,
               "tracker": tracker.state_dict(), "state": vars(state).copy(),
               "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                       "python": random.getstate()}}
    temporary = path.with_name(path.name + ".tmp")
    torch.save(payload, temporary)
    os.replace(temporary, path)


def _load_checkpoint(path: Path, agent: Any, buffer: Optional[ReplayBuffer],
                     tracker: Tracker) -> _RunState:
    # weights_only=False: the file holds NumPy's and Python's generator states; it is our own file.
    payload = torch.load(path, weights_only=False)
    agent.load_state_dict(payload["agent"])
    if buffer is not None:
        buffer.load_state_dict(payload["buffer"])
    tracker.load_state_dict(payload["tracker"])
    torch.set_rng_state(payload["rng"]["torch"])
    np.random.set_state(payload["rng"]["numpy"])
    random.setstate(payload["rng"]["python"])
    state = _RunState()
    vars(state).update(payload["state"])
    return state


# ------------------------------------------------------------------- goal-conditioned training

_GOAL_KEYS = ("observation", "achieved_goal", "desired_goal")


def _check_goal_env(env: gym.Env) -> None:
    """A ValueError unless ``env`` has gymnasium-robotics' goal interface."""
    space = env.observation_space
    if not (isinstance(space, gym.spaces.Dict) and set(_GOAL_KEYS) <= set(space)
            and callable(getattr(env.unwrapped, "compute_reward", None))):
        raise ValueError(
            "env: goal-conditioned training needs a goal environment, with a Dict observation "
            "space of 'observation', 'achieved_goal' and 'desired_goal' and a vectorised "
            f"compute_reward(achieved_goal, desired_goal, info) (as gymnasium-robotics' tasks); "
            f"got {env} with observation space {space}")


def _goal_episode(env: gym.Env, act: Callable[[np.ndarray], Any], seed: Optional[int],
                  on_step: Optional[Callable[[], None]] = None) -> tuple[GoalEpisode, bool]:
    """Play one episode, acting on ``concat(observation, desired_goal)``; returns it and whether
    its last step was a success (``info["is_success"]``, else a reward of 0)."""
    observation, _ = env.reset(seed=seed)
    observations, actions, rewards, terminated, truncated, infos = [observation], [], [], [], [], []
    done = False
    while not done:
        action = act(goal_observations(observation["observation"], observation["desired_goal"]))
        observation, reward, term, trunc, info = env.step(env_action(action, env.action_space))
        for values, value in zip((observations, actions, rewards, terminated, truncated, infos),
                                 (observation, action, float(reward), term, trunc, info)):
            values.append(value)
        done = term or trunc
        if on_step is not None:
            on_step()
    success = bool(infos[-1].get("is_success", rewards[-1] == 0.0))
    return GoalEpisode.from_steps(observations, actions, rewards, terminated, truncated,
                                  infos), success


def train_goal_conditioned(env: gym.Env, agent: OffPolicyAgent, buffer: ReplayBuffer,
                           total_steps: int, *,
                           goal_selection: Optional[GoalSelection] = future_goal_indices,
                           her_k: int = 4,
                           compute_reward: Optional[Callable[..., Any]] = None,
                           tracker: Optional[Tracker] = None, seed: Optional[int] = None,
                           learning_starts: int = 1_000, gradient_steps: int = 16,
                           batch_size: int = 128, eval_env: Optional[gym.Env] = None,
                           eval_every: int = 0, eval_episodes: int = 10,
                           solved_at: Optional[float] = None, keep_best: bool = False,
                           checkpoint: Optional[Union[str, Path]] = None,
                           checkpoint_every: int = 0, log_every: int = 1_000,
                           progress: bool = True, live_plot_every: int = 0,
                           live_plot_keys: Sequence[str] = ("success", "eval_success")) -> Tracker:
    """Goal-conditioned off-policy training with Hindsight Experience Replay, episode by episode.

    Each episode is played with ``agent.act(concat(observation, desired_goal), step)`` (uniformly
    random actions before ``learning_starts`` steps), stored in ``buffer`` by
    ``buffers.store_episode``: each transition with the episode's goal and ``her_k`` times with
    goals ``goal_selection`` picks among those the episode achieved, rewards recomputed by
    ``compute_reward``. Then the agent takes ``gradient_steps`` updates on batches of
    ``batch_size`` (the HER paper's optimisation steps of a cycle). Works for every
    ``OffPolicyAgent`` built on ``buffers.goal_observation_space(env.observation_space)``: DQN
    (BitFlip), DDPG, TD3 and SAC.

    Args:
        env: a goal environment (gymnasium-robotics' interface: Dict observations
            ``observation``, ``achieved_goal``, ``desired_goal``; ``compute_reward`` on batches;
            ``compute_terminated`` if reaching a goal ends the episode; ``info["is_success"]``).
        agent, buffer: the agent and a ``ReplayBuffer`` of ``concat(observation, goal)``
            observations (pass both again, with the tracker, to continue a run).
        total_steps: train until this many environment steps in all; whole episodes only, so
            the last episode may end a few steps past it.
        goal_selection: the replay strategy ``(T, k, rng) -> (T, k)`` indices into the
            episode's T + 1 achieved goals (``future_goal_indices``, ``final_goal_indices``,
            ``episode_goal_indices`` or a student's own). ``None`` or ``her_k=0``: no HER, the
            plain off-policy baseline.
        her_k: relabelled copies per transition (the paper's k; 4 works best with ``future``).
        compute_reward: ``(achieved_goals (B, g), desired_goals (B, g), infos) -> (B,)``;
            default the environment's own.
        tracker, seed, learning_starts, batch_size: as in ``train_off_policy``.
        eval_env, eval_every, eval_episodes: after the first episode past each multiple of
            ``eval_every`` steps, the success rate and return of ``eval_episodes`` greedy
            episodes on ``eval_env`` (the same seeds each time); evaluation time is excluded
            from ``train_seconds``.
        solved_at: stop at the first evaluation whose success rate reaches this (e.g. 1.0).
        keep_best: at the end, restore the agent of the evaluation with the best success rate.
        checkpoint, checkpoint_every: agent, buffer, tracker and counters, as in
            ``train_off_policy`` (written after the first episode past each multiple).
        log_every: log the averaged update metrics and the speed after the first episode past
            each multiple of this many steps.
        progress, live_plot_every, live_plot_keys: progress bar with the success rate of the
            last 100 episodes; live plot every that many steps (0: none).

    Logged: ``return``, ``episode_length`` and ``success`` (0 or 1) per episode;
    ``eval_success``, ``eval_return`` per evaluation; ``env_steps``, ``train_seconds``,
    ``steps_per_second`` and the update metrics every ``log_every`` steps. Interrupting
    (KeyboardInterrupt) keeps the agent, the buffer and the tracker; the episode in progress is
    not stored (HER needs whole episodes), though its steps are counted.
    """
    _check_goal_env(env)
    total_steps = check_int("total_steps", total_steps, minimum=0)
    her_k = check_int("her_k", her_k, minimum=0)
    for name, value in (("gradient_steps", gradient_steps), ("batch_size", batch_size),
                        ("eval_episodes", eval_episodes), ("log_every", log_every)):
        check_int(name, value)
    for name, value in (("learning_starts", learning_starts), ("eval_every", eval_every),
                        ("checkpoint_every", checkpoint_every),
                        ("live_plot_every", live_plot_every)):
        check_int(name, value, minimum=0)
    if eval_every and eval_env is None:
        raise ValueError("eval_every > 0 needs an eval_env (a separate environment to evaluate on)")
    if eval_env is not None:
        _check_goal_env(eval_env)
    if (solved_at is not None or keep_best) and not eval_every:
        raise ValueError("solved_at and keep_best need evaluations: set eval_every > 0")
    goal_env = env.unwrapped
    compute_reward = compute_reward if compute_reward is not None else goal_env.compute_reward
    compute_terminated = getattr(goal_env, "compute_terminated", None)
    tracker = tracker if tracker is not None else Tracker(x_label="environment steps")
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    state = _start_run(checkpoint, agent, buffer, tracker)
    eval_seed = _eval_seed(seed)
    rng = np.random.default_rng(seed if state.step == 0 else None)  # the HER goals' generator
    env.action_space.seed(seed if state.step == 0 else None)
    # A continued run continues the environment's random stream with a new seed.
    reset_seed = seed if seed is None or state.step == 0 else seed + state.step
    recent_successes: deque[float] = deque(tracker.history.get("success", [])[-100:], maxlen=100)
    update_metrics: list[dict[str, Any]] = []
    bar = tqdm(total=total_steps, initial=state.step, disable=not progress, desc="training",
               file=sys.stdout, mininterval=1.0, unit="step")
    interrupted = False
    clock = _Stopwatch(state)  # counts training time only: paused while evaluating or saving

    def explore(goal_observation: np.ndarray) -> Any:
        if state.step < learning_starts:
            return env.action_space.sample()
        return agent.act(goal_observation, state.step)

    def count_step() -> None:
        state.step += 1

    try:
        while state.step < total_steps:
            steps_before = state.step
            episode, success = _goal_episode(env, explore, reset_seed, on_step=count_step)
            reset_seed = None  # later episodes continue the environment's random stream
            store_episode(buffer, episode, goal_selection, her_k, rng, compute_reward,
                          compute_terminated)
            tracker.log(state.step, **{"return": float(episode.rewards.sum()),
                                       "episode_length": len(episode), "success": float(success)})
            recent_successes.append(float(success))
            agent.end_episode()
            if state.step >= learning_starts:
                for _ in range(gradient_steps):
                    update_metrics.append(agent.update(buffer.sample(batch_size)))

            if _crossed(steps_before, state.step, log_every):
                _log_updates(tracker, state, clock, update_metrics)
                update_metrics = []
                bar.update(state.step - bar.n)
                postfix = {"success": f"{np.mean(recent_successes):.2f}"}
                if "eval_success" in tracker.keys:
                    postfix["eval"] = f"{tracker.last('eval_success'):.2f}"
                bar.set_postfix(postfix, refresh=False)

            if eval_every and _crossed(steps_before, state.step, eval_every):
                clock.pause()
                results = [_goal_episode(eval_env, agent.policy.greedy_action, eval_seed + i
                                         if eval_seed is not None else None)
                           for i in range(eval_episodes)]
                success_rate = float(np.mean([ok for _, ok in results]))
                tracker.log(state.step, eval_success=success_rate,
                            eval_return=float(np.mean([e.rewards.sum() for e, _ in results])),
                            train_seconds=clock.read())
                if keep_best and success_rate > state.best_return:
                    state.best_return, state.best_step = success_rate, state.step
                    state.best_agent = copy.deepcopy(agent.state_dict())
                clock.resume()
                if solved_at is not None and success_rate >= solved_at:
                    break

            _periodic_save_and_plot(steps_before, state, checkpoint, checkpoint_every, agent,
                                    buffer, tracker, clock, live_plot_every, live_plot_keys)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        clock.pause()
        bar.n = state.step
        bar.close()
    _finish_run(agent, buffer, tracker, state, clock, update_metrics, interrupted, total_steps,
                checkpoint, keep_best, live_plot_every, live_plot_keys)
    return tracker
