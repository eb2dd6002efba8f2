"""Unit tests of notebook 09's HER checks (course_utils.checks.her): each check passes on
reference implementations (several correct styles) and fails, with a helpful message, on
plausible wrong answers of students."""

from __future__ import annotations

import numpy as np
import pytest

from check_helpers import assert_fails, assert_passes, own_copy
from course_utils.agents.her import goal_observations, store_episode
from course_utils.envs.bitflip import BitFlipEnv
from course_utils.checks.her import check_bitflip_reward, check_store_episode

# The package's answers as a student would write them: the checks refuse the package's own
# functions (checks.common.references).
store_episode_copy = own_copy(store_episode)
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


# ------------------------------------------------------------------------ store_episode


def store_variant(mistake=None):
    """``store_episode`` written with one usual mistake (``None``: correct, in another style: a
    loop over the transitions, ``buffer.add`` for the copies)."""

    def store(buffer, episode, k, rng, compute_reward, compute_terminated=None):
        T = len(episode)
        goal = np.broadcast_to(episode.desired_goal, (T, len(episode.desired_goal)))
        if mistake != "no original":
            buffer.extend(goal_observations(episode.observations[:-1], goal), episode.actions,
                          episode.rewards, goal_observations(episode.observations[1:], goal),
                          episode.terminated, episode.truncated)
        if k == 0 or mistake == "no copies":
            return T * (1 + k)
        t = np.arange(T)[:, None]
        low, high = {"present": (t, T + 1), "past": (0 * t, T + 1), "past end": (t + 1, T + 2),
                     }.get(mistake, (t + 1, T + 1))
        if mistake == "np.random":
            indices = np.random.randint(low, high, size=(T, k))
        elif mistake == "per row":
            indices = np.stack([rng.integers(row + 1, T + 1, size=k) for row in range(T)])
        else:
            indices = rng.integers(low, high, size=(T, 1 if mistake == "one copy" else k))
        for row in range(T):
            for j in indices[row]:
                g = episode.achieved_goals[j]
                achieved = episode.achieved_goals[row if mistake == "achieved at t" else row + 1]
                reward = (episode.rewards[row] if mistake == "reward copied"
                          else compute_reward(achieved, g, episode.infos[row]))
                terminated = (episode.terminated[row] if mistake == "terminated copied" or
                              compute_terminated is None
                              else compute_terminated(achieved, g, episode.infos[row]))
                next_goal = episode.desired_goal if mistake == "next keeps goal" else g
                obs_goal = episode.desired_goal if mistake == "obs keeps goal" else g
                buffer.add(goal_observations(episode.observations[row], obs_goal),
                           episode.actions[row], reward,
                           goal_observations(episode.observations[row + 1], next_goal),
                           terminated, episode.truncated[row])
        return T * (1 + k)

    return store


def store_in_place(buffer, episode, k, rng, compute_reward, compute_terminated=None):
    episode.rewards[:] = 0.0
    return store_episode_copy(buffer, episode, k, rng, compute_reward, compute_terminated)


def store_returns_nothing(buffer, episode, k, rng, compute_reward, compute_terminated=None):
    store_episode_copy(buffer, episode, k, rng, compute_reward, compute_terminated)


def test_check_store_episode_passes_on_references(capsys):
    # store_variant("per row") draws row by row, rng.integers(t + 1, T + 1, size=k): NumPy gives
    # the same numbers as the one (T, k) draw, so it is right too.
    for fn in (store_episode_copy, store_variant(), store_variant("per row")):
        assert_passes(check_store_episode, fn, capsys, "store_episode")


@pytest.mark.parametrize("mistake, fragments", [
    ("present", ["a goal from its start state (the present)", "t+1, …, T"]),
    ("past", ["a goal from the past", "rng.integers(t + 1, T + 1, size=(T, k))"]),
    ("past end", ["IndexError", "T + 1 is one past the end"]),
    ("reward copied", ["the episode's reward was copied"]),
    ("achieved at t", ["computed from achieved_goals[t]"]),
    ("terminated copied", ["terminated was copied from the episode"]),
    ("next keeps goal", ["the next observation keeps the episode's goal"]),
    ("obs keeps goal", ["the observation keeps the episode's goal"]),
    ("no original", ["the transitions with the episode's own goal are missing"]),
    ("no copies", ["the k relabelled copies are missing"]),
    ("one copy", ["one relabelled copy per transition instead of k"]),
    ("np.random", ["draw the indices once", "not np.random"]),
])
def test_check_store_episode_fails_on_mutants(mistake, fragments):
    assert_fails(check_store_episode, store_variant(mistake), "store_episode", *fragments)


def test_check_store_episode_fails_on_in_place_changes_and_a_missing_count():
    assert_fails(check_store_episode, store_in_place, "modified its input episode.rewards")
    assert_fails(check_store_episode, store_returns_nothing, "returned None", "T·(1 + k)")
