"""Unit tests of Hindsight Experience Replay (course_utils.buffers: replay strategies, relabelling,
store_episode) and of the goal-conditioned loop (course_utils.loops.train_goal_conditioned)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import course_utils.envs  # noqa: F401  (registers BitFlip)
from course_utils.agents.legacy_dqn import DQNAgent
from course_utils.agents.legacy_sac import SACAgent
from course_utils.buffers import (HER_STRATEGIES, GoalEpisode, ReplayBuffer, episode_goal_indices,
                                  final_goal_indices, future_goal_indices, goal_observation_space,
                                  goal_observations, relabelled_transitions, store_episode)
from course_utils.envs import BITFLIP_ID
from course_utils.loops import train_goal_conditioned
from course_utils.nn import MLPConfig
from course_utils.schedules import linear_schedule


def bitflip(n_bits=4):
    return gym.make(BITFLIP_ID, n_bits=n_bits)


def play(env, actions, seed=0):
    """A BitFlip episode with the given actions (it stops early if the goal is reached)."""
    observation, _ = env.reset(seed=seed)
    observations, taken, rewards, terminated, truncated, infos = [observation], [], [], [], [], []
    for action in actions:
        observation, reward, term, trunc, info = env.step(action)
        for values, value in zip((observations, taken, rewards, terminated, truncated, infos),
                                 (observation, action, reward, term, trunc, info)):
            values.append(value)
        if term or trunc:
            break
    return GoalEpisode.from_steps(observations, taken, rewards, terminated, truncated, infos)


def failed_episode(n_bits=4, seed=0):
    """An episode of n flips of bits that were already right: it never reaches the goal, and
    every state it visits is different."""
    env = bitflip(n_bits)
    observation, _ = env.reset(seed=seed)
    right = np.flatnonzero(observation["observation"] == observation["desired_goal"])
    assert len(right) >= 2, "pick a seed whose start has two right bits"
    episode = play(env, [int(right[i % 2]) for i in range(n_bits)], seed)
    assert len(episode) == n_bits and episode.truncated[-1] and not episode.terminated.any()
    return env, episode


# ------------------------------------------------------------------------ replay strategies


def test_future_picks_only_achieved_goals_of_the_same_or_later_transitions():
    rng = np.random.default_rng(0)
    T, k = 6, 4
    seen = {t: set() for t in range(T)}
    for _ in range(300):
        indices = future_goal_indices(T, k, rng)
        assert indices.shape == (T, k) and indices.dtype.kind in "iu"
        for t in range(T):
            assert ((t + 1 <= indices[t]) & (indices[t] <= T)).all(), (t, indices[t])
            seen[t].update(indices[t].tolist())
    for t in range(T):  # every allowed index is used: uniform on {t+1, …, T}
        assert seen[t] == set(range(t + 1, T + 1))


def test_future_is_roughly_uniform_over_the_allowed_indices():
    indices = future_goal_indices(4, 20_000, np.random.default_rng(1))
    counts = np.bincount(indices[0], minlength=5)  # transition 0: indices 1 … 4
    assert counts[0] == 0
    np.testing.assert_allclose(counts[1:] / 20_000, 0.25, atol=0.02)


def test_final_picks_the_last_achieved_goal_only():
    indices = final_goal_indices(5, 3, np.random.default_rng(0))
    assert indices.shape == (5, 3) and indices.dtype.kind in "iu"
    assert (indices == 5).all()


def test_episode_picks_any_achieved_goal_of_the_episode_before_or_after():
    indices = episode_goal_indices(5, 500, np.random.default_rng(0))
    assert indices.shape == (5, 500) and indices.dtype.kind in "iu"
    for t in range(5):  # unlike future, goals achieved before t are allowed too
        assert set(indices[t].tolist()) == {1, 2, 3, 4, 5}


def test_strategies_by_name():
    assert HER_STRATEGIES == {"final": final_goal_indices, "future": future_goal_indices,
                              "episode": episode_goal_indices}


# ------------------------------------------------------------------------------ relabelling


def test_goal_episode_from_steps_shapes():
    _, episode = failed_episode(4)
    assert len(episode) == 4
    assert episode.observations.shape == (5, 4) and episode.achieved_goals.shape == (5, 4)
    assert episode.desired_goal.shape == (4,) and episode.actions.shape == (4,)
    assert episode.rewards.tolist() == [-1.0] * 4 and len(episode.infos) == 4


def test_relabelled_transitions_observations_goals_and_rewards():
    env, episode = failed_episode(4, seed=0)
    T = len(episode)
    indices = np.array([[1, 3], [2, 2], [4, 3], [4, 4]])
    obs, actions, rewards, next_obs, terminated, truncated = relabelled_transitions(
        episode, indices, env.unwrapped.compute_reward, env.unwrapped.compute_terminated)
    assert obs.shape == next_obs.shape == (8, 8) and obs.dtype == np.float32
    for row, (t, j) in enumerate((t, j) for t in range(T) for j in range(2)):
        goal = episode.achieved_goals[indices[t, j]]
        np.testing.assert_array_equal(obs[row], np.concatenate([episode.observations[t], goal]))
        np.testing.assert_array_equal(next_obs[row],
                                      np.concatenate([episode.observations[t + 1], goal]))
        assert actions[row] == episode.actions[t]
        # The reward the environment would have given for this goal: 0 exactly where
        # transition t reached it (indices t + 1; all states of this episode are distinct).
        reached = indices[t, j] == t + 1
        assert rewards[row] == (0.0 if reached else -1.0)
        assert terminated[row] == reached
        assert truncated[row] == episode.truncated[t]


def test_final_strategy_rewards_the_last_transition():
    """An episode that ends away from its goal is a success for the goal it ended at."""
    env, episode = failed_episode(4, seed=0)
    T = len(episode)
    _, _, rewards, _, terminated, _ = relabelled_transitions(
        episode, final_goal_indices(T, 1, None), env.unwrapped.compute_reward,
        env.unwrapped.compute_terminated)
    assert rewards.tolist() == [-1.0, -1.0, -1.0, 0.0]
    assert terminated.tolist() == [False, False, False, True]


def test_future_strategy_gives_some_zero_rewards_the_original_goal_none():
    env, episode = failed_episode(5, seed=2)
    buffer = ReplayBuffer(1000, (10,), device="cpu", seed=0)
    stored = store_episode(buffer, episode, future_goal_indices, 4, np.random.default_rng(0),
                           env.unwrapped.compute_reward, env.unwrapped.compute_terminated)
    assert stored == len(buffer) == 5 * (1 + 4)
    batch = buffer.at(torch.arange(len(buffer)))
    original, relabelled = batch.rewards[:5], batch.rewards[5:]
    assert original.tolist() == [-1.0] * 5  # the episode's own goal was never reached
    assert (relabelled == 0.0).any() and (relabelled == -1.0).any()
    np.testing.assert_array_equal(batch.terminated.numpy(), (batch.rewards == 0.0).numpy())
    # The original transitions carry the episode's desired goal.
    goal = torch.as_tensor(episode.desired_goal, dtype=torch.float32)
    assert (batch.observations[:5, 5:] == goal).all()


def test_a_successful_episode_keeps_its_reward_and_terminal_flag():
    env = bitflip(3)
    observation, _ = env.reset(seed=4)
    wrong = np.flatnonzero(observation["observation"] != observation["desired_goal"])
    episode = play(env, [int(b) for b in wrong], seed=4)
    assert episode.terminated[-1] and episode.rewards[-1] == 0.0
    buffer = ReplayBuffer(100, (6,), device="cpu", seed=0)
    store_episode(buffer, episode, None, 4, np.random.default_rng(0),
                  env.unwrapped.compute_reward)
    batch = buffer.at(torch.arange(len(buffer)))
    assert len(buffer) == len(episode)  # goal_selection=None: no relabelled copies
    assert batch.rewards.tolist() == episode.rewards.tolist()
    assert batch.terminated.tolist() == episode.terminated.tolist()


def test_k_zero_stores_only_the_episode():
    env, episode = failed_episode(4)
    buffer = ReplayBuffer(100, (8,), device="cpu", seed=0)
    assert store_episode(buffer, episode, future_goal_indices, 0, np.random.default_rng(0),
                         env.unwrapped.compute_reward) == 4
    assert len(buffer) == 4


def test_without_compute_terminated_relabelled_transitions_never_end():
    env, episode = failed_episode(4)
    _, _, rewards, _, terminated, _ = relabelled_transitions(
        episode, final_goal_indices(4, 1, None), env.unwrapped.compute_reward)
    assert rewards[-1] == 0.0 and not terminated.any()


@pytest.mark.parametrize("selection, message", [
    (lambda T, k, rng: np.zeros((T,), dtype=int), r"expected \(4, 2\) integer indices"),
    (lambda T, k, rng: np.zeros((T, k)), r"expected \(4, 2\) integer indices.*float64"),
    (lambda T, k, rng: np.full((T, k), T + 1), r"indices must lie in 0 … 4"),
    (lambda T, k, rng: np.full((T, k), -1), r"indices must lie in 0 … 4"),
])
def test_a_bad_goal_selection_raises_naming_it(selection, message):
    env, episode = failed_episode(4)
    buffer = ReplayBuffer(100, (8,), device="cpu", seed=0)
    with pytest.raises(ValueError, match="goal_selection: " + message):
        store_episode(buffer, episode, selection, 2, np.random.default_rng(0),
                      env.unwrapped.compute_reward)


def test_a_compute_reward_that_is_not_vectorised_raises():
    _, episode = failed_episode(4)

    def one_reward(achieved, desired, info):
        return float(np.array_equal(achieved, desired)) - 1.0

    with pytest.raises(ValueError, match="compute_reward: expected one reward per relabelled"):
        relabelled_transitions(episode, final_goal_indices(4, 1, None), one_reward)


def test_goal_observation_space_and_goal_observations():
    space = goal_observation_space(bitflip(6).observation_space)
    assert space == gym.spaces.Box(0.0, 1.0, (12,), np.float32)
    obs = goal_observations(np.array([1, 0], dtype=np.int8), np.array([0, 1], dtype=np.int8))
    assert obs.dtype == np.float32 and obs.tolist() == [1.0, 0.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="space: expected a goal environment's Dict"):
        goal_observation_space(gym.spaces.Box(-1, 1, (3,)))


# ---------------------------------------------------------------------------- the loop


def dqn_for(env, seed=0, **kwargs):
    n = env.action_space.n
    space = goal_observation_space(env.observation_space)
    agent = DQNAgent(space, env.action_space, network=MLPConfig(2 * n, n, 1, 64, "relu"),
                     gamma=0.98, epsilon=linear_schedule(1.0, 0.1, 200), tau=0.05,
                     target_update_every=1, device="cpu", seed=seed, **kwargs)
    return agent, ReplayBuffer(50_000, space.shape, device="cpu", seed=seed)


def test_a_tiny_dqn_run_logs_episodes_evaluations_and_stores_with_her():
    env, eval_env = bitflip(3), bitflip(3)
    agent, buffer = dqn_for(env)
    tracker = train_goal_conditioned(env, agent, buffer, 150, her_k=2, seed=0,
                                     learning_starts=30, gradient_steps=4, batch_size=16,
                                     eval_env=eval_env, eval_every=50, eval_episodes=5,
                                     log_every=50, progress=False)
    episodes = len(tracker.history["success"])
    lengths = tracker.history["episode_length"]
    assert sum(lengths) == tracker.last("env_steps") >= 150
    assert len(buffer) == 3 * sum(lengths)  # each transition with its goal and 2 relabelled
    assert set(tracker.history["success"]) <= {0.0, 1.0}
    # Success iff the episode ended before its time limit, with reward 0 at the last step.
    for length, success, ret in zip(lengths, tracker.history["success"],
                                    tracker.history["return"]):
        assert success == (length < 3 or ret == -(length - 1))
    assert len(tracker.history["eval_success"]) == 3 and episodes > 20
    assert agent.updates > 0 and "loss" in tracker.keys


def test_dqn_with_her_learns_bitflip_without_her_it_does_worse():
    """A learning test, on 6 bits: HER solves it within 1,500 steps; plain DQN does not."""
    results = {}
    for k in (4, 0):
        env, eval_env = bitflip(6), bitflip(6)
        agent, buffer = dqn_for(env, seed=1)
        tracker = train_goal_conditioned(env, agent, buffer, 1_500, her_k=k, seed=1,
                                         learning_starts=200, gradient_steps=8, batch_size=64,
                                         eval_env=eval_env, eval_every=1_500, eval_episodes=50,
                                         progress=False)
        results[k] = tracker.last("eval_success")
    assert results[4] >= 0.9 and results[0] <= 0.5, results


def test_the_students_goal_selection_is_the_one_used():
    calls = []

    def final_only(T, k, rng):
        calls.append((T, k))
        return np.full((T, k), T)

    env = bitflip(3)
    agent, buffer = dqn_for(env)
    train_goal_conditioned(env, agent, buffer, 30, goal_selection=final_only, her_k=1, seed=0,
                           learning_starts=1_000, progress=False)
    assert calls and all(k == 1 for _, k in calls)
    batch = buffer.at(torch.arange(len(buffer)))
    relabelled_goal_zero = batch.rewards == 0.0
    assert relabelled_goal_zero.sum() >= len(calls)  # the final step of each episode


def test_the_students_compute_reward_is_the_one_used():
    env = bitflip(3)
    agent, buffer = dqn_for(env)
    train_goal_conditioned(env, agent, buffer, 30, her_k=2, seed=0, learning_starts=1_000,
                           compute_reward=lambda a, d, info: np.full(len(a), 7.0),
                           progress=False)
    batch = buffer.at(torch.arange(len(buffer)))
    assert (batch.rewards == 7.0).sum() == 2 * (batch.rewards != 7.0).sum()


def test_same_seed_same_run():
    runs = []
    for _ in range(2):
        env = bitflip(4)
        agent, buffer = dqn_for(env, seed=3)
        tracker = train_goal_conditioned(env, agent, buffer, 200, seed=3, learning_starts=50,
                                         gradient_steps=2, batch_size=16, progress=False)
        runs.append((tracker.history["return"], buffer.at(torch.arange(len(buffer)))))
    assert runs[0][0] == runs[1][0]
    assert torch.equal(runs[0][1].observations, runs[1][1].observations)


class InterruptingDQN(DQNAgent):
    """Raises KeyboardInterrupt at update number ``interrupt_at``."""

    interrupt_at = 10

    def update(self, batch):
        if self.updates + 1 == self.interrupt_at:
            self.interrupt_at = -1  # once
            raise KeyboardInterrupt
        return super().update(batch)


def test_interrupt_keeps_agent_buffer_and_history_and_the_run_continues(tmp_path, capsys):
    env = bitflip(4)
    space = goal_observation_space(env.observation_space)
    agent = InterruptingDQN(space, env.action_space, network=MLPConfig(8, 4, 1, 32, "relu"),
                            device="cpu", seed=0)
    buffer = ReplayBuffer(10_000, space.shape, device="cpu", seed=0)
    checkpoint = tmp_path / "her.pt"
    tracker = train_goal_conditioned(env, agent, buffer, 400, seed=0, learning_starts=20,
                                     gradient_steps=4, batch_size=16, checkpoint=checkpoint,
                                     progress=False)
    out = capsys.readouterr().out
    assert "Interrupted at step" in out and "the agent, the buffer and the tracker" in out
    assert agent.updates == 9 and checkpoint.exists()
    episodes, steps = len(tracker.history["success"]), int(tracker.last("env_steps"))
    assert episodes > 0 and steps < 400
    assert len(buffer) == 5 * sum(tracker.history["episode_length"])  # whole episodes, k = 4

    tracker = train_goal_conditioned(env, agent, buffer, 400, tracker=tracker, seed=0,
                                     learning_starts=20, gradient_steps=4, batch_size=16,
                                     progress=False)
    assert tracker.last("env_steps") >= 400 and len(tracker.history["success"]) > episodes
    assert agent.updates > 9


def test_resume_from_a_checkpoint(tmp_path):
    env = bitflip(3)
    checkpoint = tmp_path / "run.pt"
    agent, buffer = dqn_for(env)
    train_goal_conditioned(env, agent, buffer, 60, seed=0, learning_starts=10, gradient_steps=2,
                           batch_size=8, checkpoint=checkpoint, progress=False)
    fresh_agent, fresh_buffer = dqn_for(env, seed=5)
    tracker = train_goal_conditioned(env, fresh_agent, fresh_buffer, 90, seed=0,
                                     learning_starts=10, gradient_steps=2, batch_size=8,
                                     checkpoint=checkpoint, progress=False)
    first_part = [s for s in tracker.steps("success") if s <= 60]
    assert len(first_part) > 0 and tracker.last("env_steps") >= 90
    assert fresh_agent.updates > agent.updates > 0


def test_solved_at_stops_at_the_first_good_evaluation():
    env, eval_env = bitflip(1), bitflip(1)  # one bit: the only action always succeeds
    agent, buffer = dqn_for(env)
    tracker = train_goal_conditioned(env, agent, buffer, 1_000, seed=0, learning_starts=0,
                                     gradient_steps=1, batch_size=4, eval_env=eval_env,
                                     eval_every=10, eval_episodes=3, solved_at=1.0,
                                     progress=False)
    assert tracker.history["eval_success"] == [1.0]
    assert tracker.last("env_steps") == 10


class GoalPoint(gym.Env):
    """A point on a line moved by a continuous action towards a goal: a goal env with Box spaces
    (no compute_terminated: reaching the goal does not end the episode, as in Fetch)."""

    def __init__(self):
        box = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.observation_space = gym.spaces.Dict(
            {"observation": box, "achieved_goal": box, "desired_goal": box})
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def compute_reward(self, achieved_goal, desired_goal, info):
        distance = np.abs(np.asarray(achieved_goal) - np.asarray(desired_goal))[..., 0]
        return -(distance > 0.1).astype(np.float32)

    def _observation(self):
        return {"observation": self.x.copy(), "achieved_goal": self.x.copy(),
                "desired_goal": self.goal.copy()}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = self.np_random.uniform(-1, 1, 1).astype(np.float32)
        self.goal = self.np_random.uniform(-1, 1, 1).astype(np.float32)
        self.t = 0
        return self._observation(), {}

    def step(self, action):
        self.x = np.clip(self.x + 0.2 * np.asarray(action, np.float32), -1, 1).astype(np.float32)
        self.t += 1
        reward = float(self.compute_reward(self.x, self.goal, None))
        return self._observation(), reward, False, self.t >= 10, {"is_success": reward == 0.0}


def test_works_for_a_continuous_agent_on_a_box_goal_env():
    env, eval_env = GoalPoint(), GoalPoint()
    space = goal_observation_space(env.observation_space)
    agent = SACAgent(space, env.action_space, size=32, device="cpu", seed=0)
    buffer = ReplayBuffer.for_env(gym.make("Pendulum-v1"), 10, device="cpu")  # wrong shape
    with pytest.raises(ValueError, match=r"observations: expected shape \(3,\)"):
        train_goal_conditioned(env, agent, buffer, 20, learning_starts=0, progress=False)
    buffer = ReplayBuffer(5_000, space.shape, action_shape=(1,), action_dtype=torch.float32,
                          device="cpu", seed=0)
    tracker = train_goal_conditioned(env, agent, buffer, 100, seed=0, learning_starts=40,
                                     gradient_steps=2, batch_size=16, eval_env=eval_env,
                                     eval_every=50, eval_episodes=2, progress=False)
    assert len(buffer) == 5 * 100 and len(tracker.history["eval_success"]) == 2
    assert not buffer.at(torch.arange(100)).terminated.any()


def test_an_env_without_the_goal_interface_raises_a_clear_error():
    env = gym.make("CartPole-v1")
    agent, buffer = dqn_for(bitflip(2))
    with pytest.raises(ValueError, match="env: goal-conditioned training needs a goal environment"):
        train_goal_conditioned(env, agent, buffer, 10, progress=False)


class NoRewardGoalEnv(GoalPoint):
    compute_reward = None


def test_an_env_without_compute_reward_raises():
    agent, buffer = dqn_for(bitflip(2))
    with pytest.raises(ValueError, match="compute_reward"):
        train_goal_conditioned(NoRewardGoalEnv(), agent, buffer, 10, progress=False)


@pytest.mark.parametrize("kwargs, message", [
    (dict(her_k=-1), "her_k must be an int >= 0"),
    (dict(gradient_steps=0), "gradient_steps must be an int >= 1"),
    (dict(eval_every=10), "eval_every > 0 needs an eval_env"),
    (dict(solved_at=1.0), "solved_at and keep_best need evaluations"),
    (dict(eval_env=gym.make("CartPole-v1"), eval_every=5), "env: goal-conditioned training"),
])
def test_argument_errors(kwargs, message):
    env = bitflip(2)
    agent, buffer = dqn_for(env)
    with pytest.raises(ValueError, match=message):
        train_goal_conditioned(env, agent, buffer, 10, progress=False, **kwargs)
