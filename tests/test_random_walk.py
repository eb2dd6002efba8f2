"""Unit tests of course_utils.envs.random_walk (Sutton & Barto's Example 6.2)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import course_utils.envs  # noqa: F401  (registers the environments)
from course_utils.envs import RANDOM_WALK_ID, RandomWalkEnv
from course_utils.envs.random_walk import LEFT, RIGHT, true_values


def test_passes_gymnasium_checker():
    check_env(RandomWalkEnv(), skip_render_check=True)
    check_env(RandomWalkEnv(n_states=19), skip_render_check=True)


def test_registered_and_starts_in_the_middle():
    env = gym.make(RANDOM_WALK_ID)
    observation, info = env.reset(seed=0)
    assert observation == 3 and info["letter"] == "C"
    assert env.observation_space == gym.spaces.Discrete(7) and env.action_space == gym.spaces.Discrete(2)
    assert gym.make(RANDOM_WALK_ID, n_states=19).reset()[0] == 10


def test_moves_and_rewards():
    env = RandomWalkEnv()
    env.reset()
    assert env.step(RIGHT) == (4, 0.0, False, False, {"letter": "D"})
    assert env.step(RIGHT) == (5, 0.0, False, False, {"letter": "E"})
    assert env.step(RIGHT) == (6, 1.0, True, False, {"letter": ""})
    with pytest.raises(RuntimeError, match="reset"):
        env.step(LEFT)
    env.reset()
    for expected in (2, 1):
        assert env.step(LEFT)[:3] == (expected, 0.0, False)
    assert env.step(LEFT)[:3] == (0, 0.0, True)


def test_render_ansi():
    env = RandomWalkEnv(render_mode="ansi")
    env.reset()
    assert env.render() == "■ A B ● D E ■"
    assert RandomWalkEnv().render() is None


def test_true_values_solve_the_bellman_equations():
    for n in (5, 19):
        v = true_values(n)
        assert v[0] == 0 and v[-1] == 0
        inner = np.arange(1, n + 1)
        reward_right = (inner + 1 == n + 1).astype(float)
        # v(i) = ½ v(i−1) + ½ (r + v(i+1)), with v(terminal) = 0
        assert np.allclose(v[inner], 0.5 * v[inner - 1] + 0.5 * (reward_right + v[inner + 1]))
    assert np.allclose(true_values()[1:6], [1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6])


def test_random_policy_reaches_the_right_with_the_true_probability():
    env = RandomWalkEnv()
    rng = np.random.default_rng(0)
    wins = 0
    n = 20_000
    for _ in range(n):
        env.reset()
        done = False
        while not done:
            _, reward, done, _, _ = env.step(int(rng.integers(2)))
        wins += reward
    assert abs(wins / n - 0.5) < 6 * np.sqrt(0.25 / n)


@pytest.mark.parametrize("kwargs, error", [
    ({"n_states": 0}, "n_states must be an int >= 1"),
    ({"n_states": 2.5}, "n_states must be an int"),
    ({"render_mode": "human"}, "render_mode must be None or 'ansi'"),
])
def test_bad_arguments(kwargs, error):
    with pytest.raises(ValueError, match=error):
        RandomWalkEnv(**kwargs)


def test_bad_action():
    env = RandomWalkEnv()
    env.reset()
    with pytest.raises(ValueError, match="action must be 0"):
        env.step(2)
