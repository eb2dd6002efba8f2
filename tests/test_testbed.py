"""Unit tests of course_utils.envs.KArmedTestbed: the vectorised k-armed testbed."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from course_utils.envs import TESTBED_ID, KArmedTestbed


def stepped(env, actions):
    observations, rewards, terminated, truncated, info = env.step(actions)
    return observations, rewards, terminated, truncated, info


# ------------------------------------------------------------------------------- spaces and shapes


def test_spaces_and_shapes():
    env = KArmedTestbed(num_envs=7, k=4)
    assert isinstance(env, gym.vector.VectorEnv)
    assert env.num_envs == 7
    assert env.single_action_space == gym.spaces.Discrete(4)
    assert env.action_space == gym.spaces.MultiDiscrete([4] * 7)
    assert env.single_observation_space == gym.spaces.Discrete(1)
    observations, info = env.reset(seed=0)
    assert observations.shape == (7,) and (observations == 0).all() and info == {}
    assert env.observation_space.contains(observations)
    assert env.q_star.shape == (7, 4)
    observations, rewards, terminated, truncated, info = stepped(env, np.arange(7) % 4)
    assert observations.shape == (7,) and rewards.shape == (7,) and rewards.dtype == np.float64
    assert terminated.shape == truncated.shape == (7,)
    assert not terminated.any() and not truncated.any()  # a bandit never ends
    assert info["optimal"].shape == (7,) and info["optimal"].dtype == np.bool_


def test_action_space_sample_is_a_valid_action():
    env = KArmedTestbed(num_envs=5, k=3)
    env.reset(seed=0)
    env.action_space.seed(0)
    stepped(env, env.action_space.sample())


def test_default_is_the_book_testbed():
    env = KArmedTestbed()
    assert (env.num_envs, env.k, env.q_star_mean, env.q_star_std, env.reward_std, env.walk_std) == \
        (2000, 10, 0.0, 1.0, 1.0, 0.0)
    assert env.stationary


def test_registered_with_gymnasium():
    env = gym.make_vec(TESTBED_ID, num_envs=3, k=5, q_star_mean=4.0)
    assert isinstance(env.unwrapped, KArmedTestbed)
    assert env.num_envs == 3 and env.k == 5 and env.q_star_mean == 4.0
    assert env.spec.id == TESTBED_ID
    env.reset(seed=1)
    stepped(env, np.zeros(3, dtype=int))


def test_accepts_lists_and_other_integer_dtypes():
    env = KArmedTestbed(num_envs=3, k=4)
    env.reset(seed=0)
    stepped(env, [0, 1, 3])
    stepped(env, np.array([2, 2, 2], dtype=np.int8))
    stepped(env, np.array([1, 0, 3], dtype=np.uint16))


# ------------------------------------------------------------------------------- rewards and optimality


def test_rewards_are_q_star_plus_noise():
    env = KArmedTestbed(num_envs=4, k=3, reward_std=0.0)
    env.reset(seed=3)
    actions = np.array([0, 1, 2, 1])
    _, rewards, *_ = stepped(env, actions)
    np.testing.assert_array_equal(rewards, env.q_star[np.arange(4), actions])


def test_optimal_flag_marks_the_best_arm():
    env = KArmedTestbed(num_envs=50, k=6)
    env.reset(seed=4)
    best = env.q_star.argmax(axis=1)
    _, _, _, _, info = stepped(env, best)
    assert info["optimal"].all()
    _, _, _, _, info = stepped(env, (best + 1) % 6)
    assert not info["optimal"].any()


def test_every_tied_best_arm_is_optimal():
    env = KArmedTestbed(num_envs=4, k=3, q_star_std=0.0, walk_std=0.01)
    env.reset(seed=0)  # all arms start equal: the first action is optimal whatever it is
    _, _, _, _, info = stepped(env, np.array([0, 1, 2, 0]))
    assert info["optimal"].all()


def test_q_star_statistics():
    env = KArmedTestbed(num_envs=20_000, k=10, q_star_mean=4.0, q_star_std=2.0)
    env.reset(seed=5)
    q = env.q_star
    assert abs(q.mean() - 4.0) < 6 * 2.0 / np.sqrt(q.size)
    assert abs(q.std() - 2.0) < 0.02
    # arms and problems are independent: correlations between arms are near zero
    corr = np.corrcoef(q[:, 0], q[:, 1])[0, 1]
    assert abs(corr) < 6 / np.sqrt(len(q))


def test_reward_noise_statistics():
    n = 20_000
    env = KArmedTestbed(num_envs=n, k=10, reward_std=0.5)
    env.reset(seed=6)
    actions = np.random.default_rng(0).integers(10, size=n)
    means = env.q_star[np.arange(n), actions]
    noise = np.concatenate([stepped(env, actions)[1] - means for _ in range(5)])
    assert abs(noise.mean()) < 6 * 0.5 / np.sqrt(noise.size)
    assert abs(noise.std() - 0.5) < 0.01
    # fresh noise each step, independent of the previous one
    first, second = stepped(env, actions)[1] - means, stepped(env, actions)[1] - means
    assert abs(np.corrcoef(first, second)[0, 1]) < 6 / np.sqrt(n)


def test_stationary_q_star_does_not_change():
    env = KArmedTestbed(num_envs=10, k=5)
    env.reset(seed=7)
    before = env.q_star
    for _ in range(20):
        stepped(env, np.zeros(10, dtype=int))
    np.testing.assert_array_equal(env.q_star, before)


def test_q_star_returns_a_copy():
    env = KArmedTestbed(num_envs=2, k=2)
    env.reset(seed=0)
    env.q_star[:] = 100.0
    assert (env.q_star < 100.0).all()


# ------------------------------------------------------------------------------- non-stationary


def test_non_stationary_starts_equal_and_random_walks():
    n_runs, k, steps, walk = 5000, 10, 100, 0.01
    env = KArmedTestbed(num_envs=n_runs, k=k, q_star_mean=0.0, q_star_std=0.0, walk_std=walk)
    assert not env.stationary
    env.reset(seed=8)
    np.testing.assert_array_equal(env.q_star, np.zeros((n_runs, k)))
    previous = env.q_star
    increments = []
    for _ in range(steps):
        stepped(env, np.zeros(n_runs, dtype=int))
        current = env.q_star
        increments.append(current - previous)
        previous = current
    increments = np.stack(increments)
    assert abs(increments.mean()) < 6 * walk / np.sqrt(increments.size)
    assert abs(increments.std() - walk) < 0.01 * walk * 5
    # after n steps each q*(a) has variance n·walk²
    assert abs(previous.std() - walk * np.sqrt(steps)) < 0.02 * walk * np.sqrt(steps)
    # the arms walk independently of each other
    assert abs(np.corrcoef(previous[:, 0], previous[:, 1])[0, 1]) < 6 / np.sqrt(n_runs)


def test_non_stationary_optimal_flag_follows_the_walk():
    env = KArmedTestbed(num_envs=200, k=4, q_star_std=0.0, walk_std=0.5)
    env.reset(seed=9)
    for _ in range(10):
        best = env.q_star.argmax(axis=1)
        _, _, _, _, info = stepped(env, best)
        assert info["optimal"].all()


def test_rewards_use_the_values_before_the_walk():
    env = KArmedTestbed(num_envs=3, k=2, q_star_std=1.0, reward_std=0.0, walk_std=1.0)
    env.reset(seed=10)
    before = env.q_star
    _, rewards, *_ = stepped(env, np.array([0, 1, 0]))
    np.testing.assert_array_equal(rewards, before[np.arange(3), [0, 1, 0]])
    assert not np.array_equal(env.q_star, before)


# ------------------------------------------------------------------------------- seeding


def run_rewards(seed, steps=5, **kwargs):
    env = KArmedTestbed(num_envs=6, k=4, **kwargs)
    env.reset(seed=seed)
    actions = np.array([0, 1, 2, 3, 0, 1])
    return env.q_star, np.stack([stepped(env, actions)[1] for _ in range(steps)])


@pytest.mark.parametrize("kwargs", [{}, {"q_star_std": 0.0, "walk_std": 0.1}])
def test_same_seed_same_problems_and_rewards(kwargs):
    q1, r1 = run_rewards(11, **kwargs)
    q2, r2 = run_rewards(11, **kwargs)
    np.testing.assert_array_equal(q1, q2)
    np.testing.assert_array_equal(r1, r2)
    q3, r3 = run_rewards(12, **kwargs)
    assert not np.array_equal(r1, r3)


def test_reset_without_seed_draws_new_problems():
    env = KArmedTestbed(num_envs=5, k=3)
    env.reset(seed=13)
    first = env.q_star
    env.reset()
    assert not np.array_equal(env.q_star, first)
    env.reset(seed=13)
    np.testing.assert_array_equal(env.q_star, first)


def test_own_generator_independent_of_global_numpy():
    np.random.seed(0)
    q1, r1 = run_rewards(14)
    np.random.seed(1)
    np.random.random(100)
    q2, r2 = run_rewards(14)
    np.testing.assert_array_equal(r1, r2)


# ------------------------------------------------------------------------------- errors


@pytest.fixture
def env():
    testbed = KArmedTestbed(num_envs=3, k=4)
    testbed.reset(seed=0)
    return testbed


def test_step_before_reset():
    with pytest.raises(RuntimeError, match=r"reset\(\) before step\(\)"):
        KArmedTestbed(num_envs=2).step(np.zeros(2, dtype=int))
    with pytest.raises(RuntimeError, match="reset"):
        KArmedTestbed(num_envs=2).q_star


@pytest.mark.parametrize("actions, match", [
    (np.zeros(2, dtype=int), r"actions must have shape \(3,\).*got shape \(2,\)"),
    (np.zeros((3, 1), dtype=int), r"actions must have shape \(3,\).*got shape \(3, 1\)"),
    (5, r"actions must have shape \(3,\).*got shape \(\)"),
    (np.array([0, 4, 1]), r"actions must be in \[0, 3\].*got 4 for run 1"),
    (np.array([0, 1, -1]), r"actions must be in \[0, 3\].*got -1 for run 2"),
])
def test_bad_actions_value_error(env, actions, match):
    with pytest.raises(ValueError, match=match):
        env.step(actions)


@pytest.mark.parametrize("actions", [
    np.array([0.0, 1.0, 2.0]),
    np.array([True, False, True]),
    ["0", "1", "2"],
])
def test_non_integer_actions_type_error(env, actions):
    with pytest.raises(TypeError, match="actions must be integer arm indices"):
        env.step(actions)


@pytest.mark.parametrize("kwargs, match", [
    ({"num_envs": 0}, "num_envs must be an int >= 1"),
    ({"num_envs": 2.5}, "num_envs must be an int >= 1"),
    ({"k": 0}, "k must be an int >= 1"),
    ({"k": True}, "k must be an int >= 1"),
    ({"q_star_std": -1.0}, "q_star_std must be a finite number >= 0.0"),
    ({"reward_std": float("nan")}, "reward_std must be a finite number"),
    ({"walk_std": -0.01}, "walk_std must be a finite number >= 0.0"),
    ({"q_star_mean": float("inf")}, "q_star_mean must be a finite number"),
    ({"q_star_mean": "4"}, "q_star_mean must be a finite number"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        KArmedTestbed(**kwargs)


def test_bad_action_leaves_the_state_unchanged(env):
    """A refused action must not consume random numbers or move the walk."""
    reference = KArmedTestbed(num_envs=3, k=4)
    reference.reset(seed=0)
    with pytest.raises(ValueError):
        env.step(np.array([0, 9, 0]))
    actions = np.array([1, 2, 3])
    np.testing.assert_array_equal(stepped(env, actions)[1], stepped(reference, actions)[1])


# ------------------------------------------------------------------------------- speed


def test_a_book_sized_experiment_is_fast():
    """2000 runs × 1000 steps of the environment alone take well under a few seconds."""
    import time

    env = KArmedTestbed()
    env.reset(seed=0)
    actions = np.zeros(2000, dtype=int)
    start = time.perf_counter()
    for _ in range(1000):
        env.step(actions)
    assert time.perf_counter() - start < 5.0
