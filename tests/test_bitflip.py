"""Unit tests of course_utils.envs.bitflip: the bit-flipping goal environment of HER."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import course_utils.envs  # noqa: F401  (registers the environments)
from course_utils.envs import BITFLIP_ID, BitFlipEnv


def make(n_bits=5):
    return gym.make(BITFLIP_ID, n_bits=n_bits)


def test_registered_with_the_goal_interface_spaces():
    env = make(7)
    assert isinstance(env.observation_space, gym.spaces.Dict)
    assert set(env.observation_space) == {"observation", "achieved_goal", "desired_goal"}
    for key in env.observation_space:
        assert env.observation_space[key] == gym.spaces.MultiBinary(7)
    assert env.action_space == gym.spaces.Discrete(7)
    observation, info = env.reset(seed=0)
    assert env.observation_space.contains(observation)
    assert info == {"is_success": False}


def test_passes_gymnasiums_environment_checker():
    check_env(BitFlipEnv(4), skip_render_check=True)


def test_reset_is_seeded_and_starts_away_from_the_goal():
    env = make(3)
    first, _ = env.reset(seed=11)
    again, _ = env.reset(seed=11)
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
    starts = set()
    for seed in range(1000):  # 3 bits: state == goal would happen in 1 of 8 resets
        observation, _ = env.reset(seed=seed)
        assert not np.array_equal(observation["observation"], observation["desired_goal"])
        np.testing.assert_array_equal(observation["achieved_goal"], observation["observation"])
        starts.add((tuple(observation["observation"]), tuple(observation["desired_goal"])))
    assert len(starts) == 8 * 7  # every (state, goal) pair with state ≠ goal occurs


def test_one_bit_episode_reaches_the_goal_in_one_flip():
    env = make(1)
    observation, _ = env.reset(seed=0)
    assert observation["observation"][0] != observation["desired_goal"][0]
    observation, reward, terminated, truncated, info = env.step(0)
    assert (reward, terminated, truncated, info["is_success"]) == (0.0, True, False, True)


def test_a_step_flips_one_bit_and_costs_minus_one_until_the_goal():
    env = make(6)
    observation, _ = env.reset(seed=3)
    state, goal = observation["observation"].copy(), observation["desired_goal"]
    wrong = np.flatnonzero(state != goal)
    right = np.flatnonzero(state == goal)
    if len(right):  # flipping a correct bit moves away from the goal
        observation, reward, terminated, truncated, info = env.step(int(right[0]))
        expected = state.copy()
        expected[right[0]] ^= 1
        np.testing.assert_array_equal(observation["observation"], expected)
        assert (reward, terminated, truncated, info["is_success"]) == (-1.0, False, False, False)
        env.step(int(right[0]))  # and back
    for i, bit in enumerate(wrong):
        observation, reward, terminated, truncated, info = env.step(int(bit))
        last = i == len(wrong) - 1
        assert reward == (0.0 if last else -1.0)
        assert terminated is last and info["is_success"] is last and truncated is False
    np.testing.assert_array_equal(observation["observation"], goal)


def test_truncated_after_n_steps_without_success():
    env = make(4)
    observation, _ = env.reset(seed=0)
    right = np.flatnonzero(observation["observation"] == observation["desired_goal"])
    assert len(right) > 0  # this seed's state has a bit that is already right
    # Flipping a right bit back and forth never reaches the goal.
    results = [env.step(int(right[0])) for _ in range(4)]
    flags = [(terminated, truncated) for _, _, terminated, truncated, _ in results]
    assert flags == [(False, False)] * 3 + [(False, True)]
    assert all(reward == -1.0 for _, reward, _, _, _ in results)


def test_compute_reward_is_vectorised_and_equals_the_step_reward():
    env = make(5)
    goal_env = env.unwrapped
    rng = np.random.default_rng(0)
    achieved = rng.integers(0, 2, (64, 5)).astype(np.int8)
    desired = achieved.copy()
    desired[::3, 2] ^= 1  # every third pair differs in one bit
    rewards = goal_env.compute_reward(achieved, desired, None)
    assert rewards.shape == (64,) and rewards.dtype == np.float32
    np.testing.assert_array_equal(rewards, np.where(np.arange(64) % 3 == 0, -1.0, 0.0))
    np.testing.assert_array_equal(goal_env.compute_terminated(achieved, desired, None),
                                  rewards == 0.0)
    assert goal_env.compute_truncated(achieved, desired, None).shape == (64,)

    observation, _ = env.reset(seed=5)
    for action in [0, 1, 2, 3, 4, 0, 1]:
        observation, reward, terminated, truncated, info = env.step(action)
        recomputed = goal_env.compute_reward(observation["achieved_goal"],
                                             observation["desired_goal"], info)
        assert float(recomputed) == reward
        if terminated or truncated:
            break


@pytest.mark.parametrize("action", [5, -1, 1.0, "0", True, np.array([1, 2])])
def test_a_bad_action_raises_an_error_naming_it(action):
    env = BitFlipEnv(5)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action .* is not a bit of BitFlip with n_bits=5"):
        env.step(action)


def test_numpy_integer_actions_are_accepted():
    env = BitFlipEnv(3)
    observation, _ = env.reset(seed=0)
    before = observation["observation"].copy()
    observation, *_ = env.step(np.int64(2))
    assert observation["observation"][2] == 1 - before[2]


def test_bad_n_bits_and_render_mode_raise():
    with pytest.raises(ValueError, match="n_bits"):
        BitFlipEnv(0)
    with pytest.raises(ValueError, match="render_mode"):
        BitFlipEnv(3, render_mode="human")


def test_ansi_render_shows_state_and_goal():
    env = BitFlipEnv(4, render_mode="ansi")
    observation, _ = env.reset(seed=1)
    text = env.render()
    as_text = "".join(str(b) for b in observation["observation"])
    goal_text = "".join(str(b) for b in observation["desired_goal"])
    assert text == f"state {as_text}\ngoal  {goal_text}\n"
