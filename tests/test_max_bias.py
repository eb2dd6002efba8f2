"""Unit tests of course_utils.envs.max_bias (Sutton & Barto's Example 6.7, Figure 6.5)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env, check_reset_options, check_reset_seed_determinism
from gymnasium.utils.passive_env_checker import env_reset_passive_checker, env_step_passive_checker

import course_utils.envs  # noqa: F401  (registers the environments)
from course_utils.envs import MAX_BIAS_ID, MaxBiasEnv
from course_utils.envs.max_bias import LEFT, RIGHT, STATE_A, STATE_B, TERMINAL


def test_passes_gymnasium_checker():
    # check_env steps with action_space.sample(), which ignores the action mask: with two actions
    # in B every action is legal everywhere, and the whole checker applies.
    check_env(MaxBiasEnv(n_actions_b=2), skip_render_check=True)
    # With ten, the checks that do not step at random, and the passive step checker with legal actions.
    env = MaxBiasEnv(n_actions_b=10)
    check_reset_seed_determinism(env)
    check_reset_options(env)
    _, info = env_reset_passive_checker(env)
    env_step_passive_checker(env, env.action_space.sample(mask=info["action_mask"]))


def test_registered_with_masks():
    env = gym.make(MAX_BIAS_ID, n_actions_b=4)
    observation, info = env.reset(seed=0)
    assert observation == STATE_A
    assert info["action_mask"].tolist() == [1, 1, 0, 0] and info["action_mask"].dtype == np.int8
    assert env.action_space == gym.spaces.Discrete(4) and env.observation_space == gym.spaces.Discrete(3)
    observation, reward, terminated, truncated, info = env.step(LEFT)
    assert (observation, reward, terminated, truncated) == (STATE_B, 0.0, False, False)
    assert info["action_mask"].tolist() == [1, 1, 1, 1]
    observation, reward, terminated, truncated, info = env.step(3)
    assert observation == TERMINAL and terminated and not truncated
    assert info["action_mask"].tolist() == [0, 0, 0, 0]


def test_right_ends_at_once_with_zero():
    env = MaxBiasEnv()
    env.reset(seed=0)
    assert env.step(RIGHT)[:4] == (TERMINAL, 0.0, True, False)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(RIGHT)


def test_two_actions_in_b():
    env = MaxBiasEnv(n_actions_b=2)
    assert env.action_space.n == 2
    env.reset(seed=0)
    env.step(LEFT)
    assert env.step(1)[0] == TERMINAL


def test_b_rewards_are_normal_with_the_given_mean_and_std():
    env = MaxBiasEnv(n_actions_b=10)
    env.reset(seed=1)
    rewards = []
    for i in range(20_000):
        env.reset()
        env.step(LEFT)
        rewards.append(env.step(i % 10)[1])
    rewards = np.array(rewards)
    assert abs(rewards.mean() - (-0.1)) < 6 / np.sqrt(len(rewards))
    assert abs(rewards.std() - 1.0) < 0.05
    shifted = MaxBiasEnv(reward_mean=2.0, reward_std=0.0)
    shifted.reset(seed=0)
    shifted.step(LEFT)
    assert shifted.step(0)[1] == 2.0


def test_seeded_rewards_repeat():
    def rewards(seed):
        env = MaxBiasEnv()
        env.reset(seed=seed)
        out = []
        for _ in range(5):
            env.reset()
            env.step(LEFT)
            out.append(env.step(0)[1])
        return out

    assert rewards(3) == rewards(3) and rewards(3) != rewards(4)


def test_illegal_actions_are_refused():
    env = MaxBiasEnv(n_actions_b=10)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action 5 is not legal in state A; legal actions: \[0, 1\]"):
        env.step(5)
    with pytest.raises(ValueError, match="not legal"):
        env.step(10)


@pytest.mark.parametrize("kwargs, error", [
    ({"n_actions_b": 1}, "n_actions_b must be an int >= 2"),
    ({"reward_mean": float("nan")}, "reward_mean must be a finite number"),
    ({"reward_std": -1.0}, "reward_std must be >= 0"),
    ({"reward_std": "1"}, "reward_std must be a finite number"),
])
def test_bad_arguments(kwargs, error):
    with pytest.raises(ValueError, match=error):
        MaxBiasEnv(**kwargs)


def test_action_mask_helper_returns_a_copy():
    env = MaxBiasEnv(n_actions_b=3)
    mask = env.action_mask(STATE_A)
    mask[:] = 0
    assert env.action_mask(STATE_A).tolist() == [1, 1, 0]
    assert env.action_mask(STATE_B).tolist() == [1, 1, 1]
