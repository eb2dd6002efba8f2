"""Unit tests of notebook 09's HER checks (course_utils.checks.her): each check passes on
reference implementations (several correct styles) and fails, with a helpful message, on
plausible wrong answers of students."""

from __future__ import annotations

import numpy as np
import pytest

from check_helpers import assert_fails, assert_passes, own_copy
from course_utils.buffers import episode_goal_indices, final_goal_indices, future_goal_indices
from course_utils.envs.bitflip import BitFlipEnv
from course_utils.checks.her import check_bitflip_reward, check_future_goal_indices

# The package's answers as a student would write them: the checks refuse the package's own
# functions (checks.common.references).
future_goal_indices = own_copy(future_goal_indices)
bitflip_compute_reward = own_copy(BitFlipEnv.compute_reward)

# What every check must do (fail when unfinished, when returning nothing...) is tested for all
# exported checks at once in test_every_check.py.


# ---------------------------------------------------------------------------- BitFlip reward

BATCH_ANSWER = "expected [0.0, -1.0, -1.0, 0.0, -1.0]"


def reward_env(achieved_goal, desired_goal, info):
    return bitflip_compute_reward(BitFlipEnv(3), achieved_goal, desired_goal, info)


def reward_where(achieved_goal, desired_goal, info):
    """Correct, with np.where on 'all bits equal'."""
    return np.where((achieved_goal == desired_goal).all(axis=-1), 0.0, -1.0)


def reward_distance(achieved_goal, desired_goal, info):
    """Correct, in gymnasium-robotics' style: a distance and a threshold."""
    distance = np.linalg.norm(np.asarray(achieved_goal, float) - desired_goal, axis=-1)
    return -(distance > 0.5).astype(np.float32)


def reward_integers(achieved_goal, desired_goal, info):
    """Correct: integer rewards 0 and −1."""
    return np.all(achieved_goal == desired_goal, axis=-1).astype(int) - 1


def reward_one_zero(achieved_goal, desired_goal, info):
    return np.all(achieved_goal == desired_goal, axis=-1).astype(np.float32)


def reward_swapped(achieved_goal, desired_goal, info):
    return np.where(np.all(achieved_goal == desired_goal, axis=-1), -1.0, 0.0)


def reward_any(achieved_goal, desired_goal, info):
    return np.any(achieved_goal == desired_goal, axis=-1) - 1.0


def reward_dense(achieved_goal, desired_goal, info):
    return -np.sum(achieved_goal != desired_goal, axis=-1).astype(float)


def reward_axis_zero(achieved_goal, desired_goal, info):
    return np.all(achieved_goal == desired_goal, axis=0) - 1.0


def reward_not_vectorised(achieved_goal, desired_goal, info):
    return 0.0 if np.array_equal(achieved_goal, desired_goal) else -1.0


def reward_elementwise(achieved_goal, desired_goal, info):
    return (achieved_goal == desired_goal).astype(float) - 1.0


def reward_bool(achieved_goal, desired_goal, info):
    return ~np.all(achieved_goal == desired_goal, axis=-1)


def reward_in_place(achieved_goal, desired_goal, info):
    achieved_goal ^= desired_goal  # 0 where the bits agree
    return -np.any(achieved_goal, axis=-1).astype(float)


def reward_tolerates_one_bit(achieved_goal, desired_goal, info):
    return -(np.sum(achieved_goal != desired_goal, axis=-1) > 1).astype(float)


def reward_batch_only(achieved_goal, desired_goal, info):
    """Right on batches, wrong on one pair: a loop over the rows of a 2-D array."""
    return np.array([0.0 if (a == d).all() else -1.0 for a, d in zip(achieved_goal, desired_goal)])


def reward_first_goal_only(achieved_goal, desired_goal, info):
    """A broadcasting slip: every achieved goal is compared with the FIRST desired goal."""
    return np.all(achieved_goal == desired_goal[0], axis=-1) - 1.0


def test_check_bitflip_reward_passes_on_references(capsys):
    for fn in (reward_env, reward_where, reward_distance, reward_integers):
        assert_passes(check_bitflip_reward, fn, capsys, "bitflip_reward")


@pytest.mark.parametrize("mutant, fragments", [
    (reward_one_zero, [BATCH_ANSWER, "not 1 and 0"]),
    (reward_swapped, [BATCH_ANSWER, "signs are swapped"]),
    (reward_any, [BATCH_ANSWER, "EVERY bit matches"]),
    (reward_dense, [BATCH_ANSWER, "dense reward"]),
    (reward_tolerates_one_bit, [BATCH_ANSWER, "One wrong bit is still a miss"]),
    (reward_axis_zero, ["returned shape (3,); expected (5,)", "LAST axis"]),
    (reward_not_vectorised, ["returned float; expected a numpy.ndarray"]),
    (reward_elementwise, ["returned shape (5, 3); expected (5,)", "one reward per goal pair"]),
    (reward_bool, ["dtype bool", "expected numbers"]),
    (reward_in_place, ["modified its input achieved_goal in place"]),
    (reward_batch_only, ["one pair, no batch dimension"]),
    (reward_first_goal_only, [BATCH_ANSWER]),
])
def test_check_bitflip_reward_fails_on_mutants(mutant, fragments):
    assert_fails(check_bitflip_reward, mutant, "bitflip_reward", *fragments)


# --------------------------------------------------------------------- future goal selection


def future_loop(T, k, rng):
    """Correct, one row at a time."""
    return np.stack([rng.integers(t + 1, T + 1, size=k) for t in range(T)])


def future_offsets(T, k, rng):
    """Correct, in OpenAI baselines' style: t + 1 + ⌊u · (T − t)⌋ with u uniform on [0, 1)."""
    t = np.arange(T)[:, None]
    return t + 1 + (rng.random((T, k)) * (T - t)).astype(np.int64)


def future_includes_t(T, k, rng):
    t = np.arange(T)[:, None]
    return rng.integers(t, T + 1, size=(T, k))


def future_exclusive_high(T, k, rng):
    t = np.arange(T)[:, None]
    return rng.integers(t + 1, np.maximum(T, t + 2), size=(T, k))


def future_skips_own_goal(T, k, rng):
    t = np.arange(T)[:, None]
    return rng.integers(np.minimum(t + 2, T), T + 1, size=(T, k))


def future_global_numpy(T, k, rng):
    t = np.arange(T)[:, None]
    return np.random.randint(t + 1, T + 1, size=(T, k))


def future_one_per_row(T, k, rng):
    t = np.arange(T)
    return np.repeat(rng.integers(t + 1, T + 1)[:, None], k, axis=1)


def future_transposed(T, k, rng):
    return future_goal_indices(T, k, rng).T


def future_flat(T, k, rng):
    return future_goal_indices(T, k, rng).reshape(-1)


def future_floats(T, k, rng):
    return future_goal_indices(T, k, rng).astype(float)


def future_non_uniform(T, k, rng):
    """Biased towards the near future: the minimum of two uniform draws."""
    t = np.arange(T)[:, None]
    return np.minimum(rng.integers(t + 1, T + 1, size=(T, k)),
                      rng.integers(t + 1, T + 1, size=(T, k)))


def future_past_the_end(T, k, rng):
    t = np.arange(T)[:, None]
    return rng.integers(t + 1, T + 2, size=(T, k))


def test_check_future_goal_indices_passes_on_references(capsys):
    for fn in (future_goal_indices, future_loop, future_offsets):
        assert_passes(check_future_goal_indices, fn, capsys, "future_goal_indices")


@pytest.mark.parametrize("mutant, fragments", [
    (final_goal_indices, ["index T = 10 everywhere", "`final` strategy"]),
    (episode_goal_indices, ["`episode` strategy allows them"]),
    (future_includes_t, ["is the goal achieved BEFORE transition"]),
    (future_exclusive_high, ["never picked index 6", "excludes high"]),
    (future_skips_own_goal, ["never picked index 1 in row 0", "achieved itself"]),
    (future_global_numpy, ["with the rng argument"]),
    (future_one_per_row, ["same index in all k columns", "size=(T, k)"]),
    (future_transposed, ["returned shape (4, 5); expected (5, 4)"]),
    (future_flat, ["returned shape (20,); expected (5, 4)", "size=(T, k)"]),
    (future_floats, ["expected integer indices"]),
    (future_non_uniform, ["frequencies", "uniform"]),
    (future_past_the_end, ["past the end"]),
])
def test_check_future_goal_indices_fails_on_mutants(mutant, fragments):
    assert_fails(check_future_goal_indices, mutant, "future_goal_indices", *fragments)
