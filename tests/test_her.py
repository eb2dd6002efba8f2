"""Unit tests of course_utils.agents.her: goal observations, store_episode (HER's relabelling with
the future strategy), and the goal-conditioned loop with DQN (bit flipping) and DDPG."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import course_utils.envs  # noqa: F401  (registers BitFlip)
from course_utils.agents import ddpg, dqn, her
from course_utils.agents.her import (HERConfig, goal_observation_space,
                                     goal_observations, play_episode, store_episode)
from course_utils.buffers import ReplayBuffer
from course_utils.envs import BITFLIP_ID


def bitflip(n_bits=4):
    return gym.make(BITFLIP_ID, n_bits=n_bits)


class Recorder:
    """A buffer that keeps every extend call's arrays."""

    def __init__(self):
        self.calls = []

    def extend(self, *fields):
        self.calls.append(tuple(np.asarray(f) for f in fields))


def failed_episode(n_bits=4, seed=0):
    """A BitFlip episode of n flips of bits that were already right: it never reaches the goal,
    and every state it visits is different."""
    env = bitflip(n_bits)
    observation, _ = env.reset(seed=seed)
    right = np.flatnonzero(observation["observation"] == observation["desired_goal"])
    assert len(right) >= 2, "pick a seed whose start has two right bits"
    actions = iter([int(right[i % 2]) for i in range(n_bits)])
    episode = play_episode(env, lambda obs: (a := next(actions), np.int64(a)), seed)
    assert len(episode) == n_bits and episode.truncated[-1] and not episode.terminated.any()
    return env, episode


# ------------------------------------------------------------------------ goal observations


def test_goal_observation_space_and_goal_observations():
    env = bitflip(3)
    space = goal_observation_space(env.observation_space)
    assert space.shape == (6,) and space.dtype == np.float32
    assert goal_observations(np.array([1, 0, 1]), np.array([0, 0, 1])).tolist() == [1, 0, 1, 0, 0, 1]
    assert goal_observations(np.zeros((4, 3)), np.ones((4, 2))).shape == (4, 5)
    with pytest.raises(ValueError, match="space: expected a goal environment's Dict"):
        goal_observation_space(gym.spaces.Box(0, 1, (3,)))


def test_play_episode_shapes():
    env, episode = failed_episode(4)
    assert episode.observations.shape == (5, 4) and episode.achieved_goals.shape == (5, 4)
    assert episode.desired_goal.shape == (4,) and episode.actions.shape == (4,)
    assert episode.infos.shape == (4,) and episode.infos[0]["is_success"] is False
    assert len(episode) == 4 and episode.rewards.tolist() == [-1.0] * 4


# ------------------------------------------------------------------------ store_episode


def test_store_episode_matches_a_hand_computed_relabelling():
    env, episode = failed_episode(4)
    goal_env = env.unwrapped
    buffer, k = Recorder(), 2
    n = store_episode(buffer, episode, k, np.random.default_rng(5), goal_env.compute_reward,
                      goal_env.compute_terminated)
    assert n == 4 * 3 and len(buffer.calls) == 2
    own, copies = buffer.calls
    assert np.array_equal(own[0], goal_observations(episode.observations[:-1],
                                                    np.tile(episode.desired_goal, (4, 1))))
    assert own[2].tolist() == [-1.0] * 4 and not own[4].any()
    indices = np.random.default_rng(5).integers(np.arange(4)[:, None] + 1, 5, size=(4, k))
    for row, (t, j) in enumerate((t, j) for t in range(4) for j in indices[t]):
        goal = episode.achieved_goals[j]
        assert np.array_equal(copies[0][row], goal_observations(episode.observations[t], goal))
        assert np.array_equal(copies[3][row], goal_observations(episode.observations[t + 1], goal))
        assert copies[1][row] == episode.actions[t]
        reached = j == t + 1  # the states are all different: only its own next state is reached
        assert copies[2][row] == (0.0 if reached else -1.0) and copies[4][row] == reached
        assert copies[5][row] == episode.truncated[t]


def test_store_episode_without_k_or_compute_terminated():
    env, episode = failed_episode(4)
    buffer = Recorder()
    assert store_episode(buffer, episode, 0, np.random.default_rng(0),
                         env.unwrapped.compute_reward) == 4
    assert len(buffer.calls) == 1
    store_episode(buffer, episode, 3, np.random.default_rng(0), env.unwrapped.compute_reward)
    assert not buffer.calls[-1][4].any()  # never terminal without compute_terminated
    assert (buffer.calls[-1][2] == 0.0).any()  # but some copies reach their goal


def test_store_episode_into_a_replay_buffer():
    env, episode = failed_episode(4)
    buffer = ReplayBuffer(100, goal_observation_space(env.observation_space).shape, device="cpu")
    store_episode(buffer, episode, 4, np.random.default_rng(0), env.unwrapped.compute_reward,
                  env.unwrapped.compute_terminated)
    assert len(buffer) == 20


# ------------------------------------------------------------------------ the loop


def dqn_agent(env, seed=0):
    return her.dqn_goal_agent(env, dqn.DQNConfig(n_layers=1, size=64, gamma=0.98, tau=0.05,
                                                 seed=seed, device="cpu"))


def test_a_tiny_run_logs_episodes_evaluations_and_stores_with_her():
    env = bitflip(3)
    agent = dqn_agent(env)
    config = HERConfig(total_steps=30, eval_every=15, eval_episodes=2, gradient_steps=2,
                       batch_size=8, buffer_size=1_000, log_every=15, progress=False)
    tracker = her.train(env, agent, config)
    steps = tracker.last("env_steps")
    assert steps >= 30 and len(agent.buffer) == 5 * steps  # each step once, plus k = 4 copies
    assert len(tracker.history["eval_success"]) == 2
    assert {"return", "success", "episode_length", "loss", "q"} <= set(tracker.keys)


def test_the_store_function_passed_is_the_one_used():
    env = bitflip(3)
    calls = []

    def store(buffer, episode, k, rng, compute_reward, compute_terminated=None):
        calls.append(len(episode))
        return store_episode(buffer, episode, k, rng, compute_reward, compute_terminated)

    her.train(env, dqn_agent(env), HERConfig(total_steps=9, gradient_steps=1, batch_size=4,
                                             buffer_size=100, progress=False), store=store)
    assert sum(calls) >= 9


def test_same_seed_same_run():
    def run():
        env = bitflip(4)
        return her.train(env, dqn_agent(env), HERConfig(total_steps=60, gradient_steps=2,
                                                        batch_size=8, buffer_size=1_000,
                                                        progress=False)).history["return"]
    assert run() == run()


def test_the_run_continues_with_the_agent_and_tracker():
    env = bitflip(3)
    agent = dqn_agent(env)
    config = HERConfig(total_steps=12, gradient_steps=1, batch_size=4, buffer_size=1_000,
                       progress=False)
    tracker = her.train(env, agent, config)
    first = int(tracker.last("env_steps"))
    config.total_steps = first + 12
    her.train(env, agent, config, tracker=tracker)
    assert tracker.last("env_steps") >= first + 12 and len(agent.buffer) == 5 * tracker.last("env_steps")


def test_bitflip_5_learns_with_her_and_stops_when_solved():
    torch.set_num_threads(1)
    env = bitflip(5)
    config = HERConfig(total_steps=300 * 5, eval_every=50 * 5, eval_episodes=20, solved_at=1.0,
                       buffer_size=50_000, progress=False)
    tracker = her.train(env, dqn_agent(env), config)
    assert tracker.last("eval_success") == 1.0 and tracker.last("env_steps") < 300 * 5


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


def test_works_for_ddpg_and_td3_on_a_box_goal_env():
    for config, update in ((ddpg.DDPGConfig(size=32), ddpg.ddpg_update),
                           (ddpg.td3_config(size=32), ddpg.td3_update)):
        env = GoalPoint()
        agent = her.ddpg_goal_agent(env, config, update)
        tracker = her.train(env, agent, HERConfig(total_steps=100, gradient_steps=2,
                                                  batch_size=16, buffer_size=5_000,
                                                  learning_starts=40, eval_every=50,
                                                  eval_episodes=2, progress=False),
                            eval_env=GoalPoint())
        assert len(agent.buffer) == 5 * 100 and len(tracker.history["eval_success"]) == 2
        assert "critic_loss" in tracker.keys
        assert not agent.buffer.at(torch.arange(100)).terminated.any()


def test_an_env_without_the_goal_interface_raises_a_clear_error():
    agent = dqn_agent(bitflip(2))
    with pytest.raises(ValueError, match="env: HER needs a goal environment"):
        her.train(gym.make("CartPole-v1"), agent, HERConfig(total_steps=10, progress=False))


@pytest.mark.parametrize("changes, message", [
    (dict(her_k=-1), "her_k must be an int >= 0"),
    (dict(gradient_steps=0), "gradient_steps must be an int >= 1"),
    (dict(solved_at=1.0), "solved_at and keep_best need evaluations"),
])
def test_argument_errors(changes, message):
    env = bitflip(2)
    with pytest.raises(ValueError, match=message):
        her.train(env, dqn_agent(env), HERConfig(total_steps=10, progress=False, **changes))


def test_dqn_goal_agent_needs_discrete_actions():
    with pytest.raises(ValueError, match="env.action_space: DQN needs a Discrete"):
        her.dqn_goal_agent(GoalPoint(), dqn.DQNConfig())
