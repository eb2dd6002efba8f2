"""Checks of notebook 09's Hindsight Experience Replay exercises: BitFlip's reward function and
``store_episode``, HER's relabelling with the ``future`` strategy.

Conventions (those of ``course_utils.envs.bitflip`` and ``course_utils.agents.her``): goals are
arrays, a batch of ``B`` of them ``(B, g)``. An episode of ``T`` transitions has ``T + 1``
achieved goals ``achieved_goals[0 … T]``; transition t (from ``o_t`` to ``o_{t+1}``) achieved
``achieved_goals[t + 1]``. ``store_episode`` draws the goal indices once,
``rng.integers(t + 1, T + 1, size=(T, k))``, so that its result can be compared exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from course_utils.agents.her import GoalEpisode
from course_utils.checks.common import (call, expect_array, expect_unchanged, fmt_array, Fn,
                                        passed, references)

__all__ = ["check_bitflip_reward", "check_store_episode"]


# ---------------------------------------------------------------------------- BitFlip reward

# 5 goal pairs of n = 3 bits (B ≠ n, so a comparison over the wrong axis shows as a wrong
# shape): pairs 0 and 3 are equal; pair 1 differs in one bit, pair 2 in all three, pair 4 in two.
_ACHIEVED = [[0, 1, 1], [1, 1, 0], [0, 0, 0], [1, 0, 1], [1, 1, 1]]
_DESIRED = [[0, 1, 1], [1, 1, 1], [1, 1, 1], [1, 0, 1], [0, 1, 0]]
_REWARDS = [0.0, -1.0, -1.0, 0.0, -1.0]


def _reward_mistake(result: np.ndarray, achieved: np.ndarray, desired: np.ndarray) -> str:
    """The hint for a wrong batch of rewards, from the mistakes students make."""
    equal = np.all(achieved == desired, axis=-1)
    wrong_bits = np.sum(achieved != desired, axis=-1)
    candidates = [
        (equal.astype(float), "The reward is 0 at the goal and −1 elsewhere (the HER paper's), "
                              "not 1 and 0: subtract 1."),
        (np.where(equal, -1.0, 0.0), "The signs are swapped: 0 where the goal is reached, −1 "
                                     "where it is not."),
        (np.any(achieved == desired, axis=-1) - 1.0,
         "A goal is reached only when EVERY bit matches: np.all(..., axis=-1), not np.any."),
        (-wrong_bits.astype(float), "That is a dense reward, minus the number of wrong bits; "
                                    "the task's reward is sparse: 0 if all bits match, else −1."),
        (-(wrong_bits > 1).astype(float), "One wrong bit is still a miss: the goal is reached "
                                          "only with zero wrong bits."),
    ]
    for wrong, hint in candidates:
        if np.allclose(result.astype(float), wrong):
            return hint
    return "reward = 0 where all n bits of achieved_goal equal desired_goal, else −1."


def _check_reward_batch(fn: Fn, name: str, achieved: np.ndarray, desired: np.ndarray,
                        shown: str) -> None:
    before = (achieved.copy(), desired.copy())
    result = call(fn, name, achieved, desired, None)
    expect_unchanged(name, "achieved_goal", before[0], achieved)
    expect_unchanged(name, "desired_goal", before[1], desired)
    B, n = achieved.shape
    if isinstance(result, np.ndarray) and result.shape != (B,):
        axis_hint = (" Compare along the LAST axis (the bits), np.all(..., axis=-1): axis 0 runs "
                     "over the batch." if result.shape == (n,) else
                     " Return one reward per goal pair (reduce over the bits, axis=-1)."
                     if result.shape in ((), (B, n)) else "")
        raise AssertionError(f"{shown} returned shape {result.shape}; expected ({B},), one reward "
                             "per goal pair: the function must work on batches." + axis_hint)
    result = expect_array(result, (B,), shown)
    if result.dtype.kind not in "iuf":
        raise AssertionError(f"{shown} returned an array of dtype {result.dtype}; expected "
                             "numbers (0.0 and −1.0), e.g. equal.astype(np.float32) − 1.")
    expected = np.all(achieved == desired, axis=-1).astype(float) - 1.0
    if not np.allclose(result.astype(float), expected):
        raise AssertionError(f"{shown} returned {fmt_array(result)}; expected "
                             f"{fmt_array(expected)}. {_reward_mistake(result, achieved, desired)}")


@references("course_utils.envs.bitflip.BitFlipEnv.compute_reward")
def check_bitflip_reward(fn: Fn) -> None:
    """Check ``fn(achieved_goal (B, n), desired_goal (B, n), info) -> (B,)``: BitFlip's sparse
    reward, 0 where the two goals are equal in every bit and −1 elsewhere, on batches (and on
    one pair of shape ``(n,)``), for int8 bits and float bits alike."""
    name = "bitflip_reward"
    n = 0
    achieved, desired = np.array(_ACHIEVED, dtype=np.int8), np.array(_DESIRED, dtype=np.int8)
    _check_reward_batch(fn, name, achieved, desired,
                        f"{name}(achieved_goal={_ACHIEVED}, desired_goal={_DESIRED}, info=None)")
    n += 1

    _check_reward_batch(fn, name, achieved.astype(np.float32), desired.astype(np.float32),
                        f"{name}(the same goals as float32 arrays, info=None)")
    n += 1

    for a, d, reward in (([1, 0, 1, 1], [1, 0, 1, 1], 0.0), ([1, 0, 1, 1], [1, 0, 1, 0], -1.0)):
        shown = (f"{name}(achieved_goal=np.array({a}), desired_goal=np.array({d}), info=None) "
                 "(one pair, no batch dimension)")
        result = np.asarray(call(fn, name, np.array(a, dtype=np.int8),
                                 np.array(d, dtype=np.int8), None))
        if result.shape != () or result.dtype.kind not in "iuf":
            raise AssertionError(f"{shown} returned {result!r}; expected the number {reward} "
                                 "(reduce over the last axis, axis=-1, so that one pair gives "
                                 "one reward and a batch gives a batch).")
        if float(result) != reward:
            raise AssertionError(f"{shown} returned {float(result)}; expected {reward}.")
        n += 1

    rng = np.random.default_rng(9)
    B, bits = 200, 6
    achieved = rng.integers(0, 2, (B, bits)).astype(np.int8)
    desired = achieved.copy()
    flips = rng.random((B, bits)) < 0.1  # about half of the pairs differ, in one bit or more
    desired[flips] ^= 1
    _check_reward_batch(fn, name, achieved, desired,
                        f"{name}(a random batch of {B} pairs of {bits} bits, info=None)")
    n += 1
    passed(name, n)


# ------------------------------------------------------------------------ store_episode

# A fixed episode of T = 5 steps: observations (x, y, speed) of 3 numbers, goals (x, y) of 2, all
# achieved goals distinct (so a stored goal tells which achieved goal it is), the desired goal
# never reached, the time limit cutting the last step (truncated). The reward is minus the
# distance to the goal (dense, so that a reward computed from the wrong achieved goal shows),
# and coming within 0.5 of the goal ends the task.
_POSITIONS = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [2.0, 1.0], [2.0, 2.0], [3.0, 2.0]]
_SPEEDS = [0.0, 1.0, 1.0, 1.0, 1.0, 1.0]


def _reach_reward(achieved_goal: Any, desired_goal: Any, info: Any) -> np.ndarray:
    distance = np.linalg.norm(np.asarray(achieved_goal, float) - np.asarray(desired_goal, float),
                              axis=-1)
    return (-distance).astype(np.float32)


def _reach_terminated(achieved_goal: Any, desired_goal: Any, info: Any) -> np.ndarray:
    distance = np.linalg.norm(np.asarray(achieved_goal, float) - np.asarray(desired_goal, float),
                              axis=-1)
    return distance < 0.5


def _episode(T: int) -> GoalEpisode:
    positions = np.array(_POSITIONS[: T + 1])
    observations = np.concatenate([positions, np.array(_SPEEDS[: T + 1])[:, None]], axis=1)
    infos = np.empty(T, dtype=object)
    infos[:] = [{"step": t} for t in range(T)]
    return GoalEpisode(observations=observations, achieved_goals=positions.copy(),
                       desired_goal=np.array([9.0, 9.0]),
                       actions=np.arange(2 * T, dtype=float).reshape(T, 2) / 10,
                       rewards=_reach_reward(positions[1:], [9.0, 9.0], None), terminated=np.zeros(T, dtype=bool),
                       truncated=np.arange(T) == T - 1, infos=infos)


class _RecordingBuffer:
    """A stand-in for the replay buffer that keeps what ``extend`` (or ``add``) was given."""

    def __init__(self) -> None:
        self.rows: list[tuple[np.ndarray, ...]] = []

    def extend(self, *fields: Any) -> None:
        if len(fields) != 6:
            raise AssertionError(f"store_episode called buffer.extend with {len(fields)} arguments; "
                                 "expected 6: (observations, actions, rewards, next_observations, "
                                 "terminated, truncated), each with one row per transition.")
        arrays = [np.asarray(f.detach().cpu() if hasattr(f, "detach") else f) for f in fields]
        counts = {len(a) if a.ndim else 0 for a in arrays}
        if len(counts) != 1:
            raise AssertionError("store_episode called buffer.extend with fields of different "
                                 f"lengths {[a.shape for a in arrays]}: every field needs one row "
                                 "per transition.")
        self.rows.extend(zip(*arrays))

    def add(self, *fields: Any) -> None:
        self.extend(*(np.asarray(f)[None] for f in fields))


def _stored(fn: Fn, name: str, T: int, k: int, seed: int) -> tuple[list, GoalEpisode, str]:
    """Run ``fn`` on the fixed episode of ``T`` steps; the recorded transitions, the episode and
    how the call is shown."""
    episode = _episode(T)
    before = {key: getattr(episode, key).copy() for key in
              ("observations", "achieved_goals", "actions", "rewards", "terminated", "truncated")}
    buffer = _RecordingBuffer()
    shown = f"{name}(buffer, episode of T={T} steps, k={k}, rng=np.random.default_rng({seed}), …)"
    try:
        returned = call(fn, name, buffer, episode, k, np.random.default_rng(seed), _reach_reward,
                        _reach_terminated)
    except IndexError as error:
        raise AssertionError(
            f"{shown} raised IndexError ({error}). An episode of T steps has T + 1 achieved "
            "goals, indices 0 … T: a goal index of T + 1 is one past the end (rng.integers "
            "excludes its high end: high = T + 1 gives indices up to T).") from None
    for key, value in before.items():
        expect_unchanged(name, f"episode.{key}", value, getattr(episode, key))
    if returned is None or int(returned) != T * (1 + k):
        raise AssertionError(f"{shown} returned {returned!r}; expected the number of transitions "
                             f"stored, T·(1 + k) = {T * (1 + k)}.")
    return buffer.rows, episode, shown


def _transition_index(row: tuple, episode: GoalEpisode, shown: str) -> int:
    """Which transition t a stored row is, from its observation and action; checks o_{t+1}."""
    observation, action, _, next_observation = (np.asarray(row[i], float) for i in range(4))
    obs_dim = episode.observations.shape[1]
    if observation.shape != (obs_dim + 2,) or next_observation.shape != (obs_dim + 2,):
        raise AssertionError(f"{shown} stored an observation of shape {observation.shape}; "
                             f"expected ({obs_dim + 2},), concat(observation, goal) "
                             "(goal_observations(observations, goals)).")
    matches = [t for t in range(len(episode))
               if np.allclose(observation[:obs_dim], episode.observations[t])
               and np.allclose(action, episode.actions[t])]
    if not matches:
        raise AssertionError(f"{shown} stored an observation {fmt_array(observation)} with "
                             f"action {fmt_array(action)} that is no o_t, a_t of the episode: "
                             "transition t stores concat(o_t, goal) and a_t.")
    t = matches[0]
    if not np.allclose(next_observation[:obs_dim], episode.observations[t + 1]):
        raise AssertionError(f"{shown} stored transition {t} with next observation "
                             f"{fmt_array(next_observation[:obs_dim])}; expected o_(t+1) = "
                             f"{fmt_array(episode.observations[t + 1])}.")
    return t


def _check_relabelled(row: tuple, t: int, episode: GoalEpisode, shown: str) -> int:
    """The goal index j of a relabelled copy of transition t, after checking its fields."""
    obs_dim, T = episode.observations.shape[1], len(episode)
    goal = np.asarray(row[0], float)[obs_dim:]
    next_goal = np.asarray(row[3], float)[obs_dim:]
    if not np.allclose(goal, next_goal):
        which = ("the next observation keeps the episode's goal" if
                 np.allclose(next_goal, episode.desired_goal) else
                 "the observation keeps the episode's goal" if
                 np.allclose(goal, episode.desired_goal) else "they differ")
        raise AssertionError(f"{shown}: a relabelled copy of transition {t} has goal "
                             f"{fmt_array(goal)} in its observation but {fmt_array(next_goal)} in "
                             f"its next observation ({which}). Both must carry the new goal.")
    found = [j for j in range(T + 1) if np.allclose(goal, episode.achieved_goals[j])]
    if not found:
        raise AssertionError(f"{shown}: a relabelled copy of transition {t} has goal "
                             f"{fmt_array(goal)}, which the episode never achieved; the new goals "
                             "are achieved_goals[j].")
    j = found[0]
    achieved = episode.achieved_goals[t + 1]
    reward, expected = float(np.asarray(row[2])), float(_reach_reward(achieved, goal, None))
    if not np.isclose(reward, expected, atol=1e-5):
        if np.isclose(reward, episode.rewards[t], atol=1e-5):
            hint = ("the episode's reward was copied: recompute it for the new goal, "
                    "compute_reward(achieved_goals[t + 1], new goal, info).")
        elif np.isclose(reward, _reach_reward(episode.achieved_goals[t], goal, None), atol=1e-5):
            hint = ("it was computed from achieved_goals[t], the state before the step; "
                    "transition t achieved achieved_goals[t + 1].")
        else:
            hint = "it must be compute_reward(achieved_goals[t + 1], new goal, info)."
        raise AssertionError(f"{shown}: the copy of transition {t} relabelled with "
                             f"achieved_goals[{j}] has reward {reward:.4g}; expected {expected:.4g}: "
                             + hint)
    terminated = bool(np.asarray(row[4]))
    if terminated != bool(_reach_terminated(achieved, goal, None)):
        hint = ("terminated was copied from the episode: recompute it for the new goal with "
                "compute_terminated (reaching the new goal ends its task)."
                if terminated == bool(episode.terminated[t]) else
                "it must be compute_terminated(achieved_goals[t + 1], new goal, info).")
        raise AssertionError(f"{shown}: the copy of transition {t} relabelled with "
                             f"achieved_goals[{j}] has terminated={terminated}; " + hint)
    if bool(np.asarray(row[5])) != bool(episode.truncated[t]):
        raise AssertionError(f"{shown}: a copy of transition {t} has truncated="
                             f"{bool(np.asarray(row[5]))}; a copy keeps the transition's own "
                             "truncated flag (the time limit does not depend on the goal).")
    return j


def _check_stored(fn: Fn, name: str, T: int, k: int, seed: int) -> None:
    rows, episode, shown = _stored(fn, name, T, k, seed)
    obs_dim = episode.observations.shape[1]
    if len(rows) != T * (1 + k):
        hint = ("only the episode with its own goal: the k relabelled copies are missing"
                if len(rows) == T else
                "the transitions with the episode's own goal are missing (store them too)"
                if len(rows) == T * k else
                "one relabelled copy per transition instead of k (size=(T, k))"
                if len(rows) == 2 * T else "")
        raise AssertionError(f"{shown} stored {len(rows)} transitions; expected T·(1 + k) = "
                             f"{T * (1 + k)}, the T transitions with the episode's goal and k "
                             "copies of each with achieved goals" + (f": {hint}." if hint else "."))
    own = [0] * T
    indices: list[list[int]] = [[] for _ in range(T)]
    for row in rows:
        t = _transition_index(row, episode, shown)
        goal = np.asarray(row[0], float)[obs_dim:]
        next_goal = np.asarray(row[3], float)[obs_dim:]
        if np.allclose(goal, episode.desired_goal) and np.allclose(next_goal, goal):
            if (not np.isclose(float(np.asarray(row[2])), episode.rewards[t], atol=1e-5)
                    or bool(np.asarray(row[4])) != bool(episode.terminated[t])
                    or bool(np.asarray(row[5])) != bool(episode.truncated[t])):
                raise AssertionError(f"{shown}: transition {t} with the episode's own goal must "
                                     "keep its reward, terminated and truncated as played.")
            own[t] += 1
        else:
            indices[t].append(_check_relabelled(row, t, episode, shown))
    if own != [1] * T:
        raise AssertionError(f"{shown} stored the transitions with the episode's own goal "
                             f"{own} times (per t); expected once each.")
    past = [(t, j) for t in range(T) for j in indices[t] if j <= t]
    if past:
        t, j = min(past, key=lambda pair: pair[1] - pair[0])  # the furthest in the past
        raise AssertionError(
            f"{shown}: transition {t} was relabelled with achieved_goals[{j}], a goal from "
            f"{'its start state (the present)' if j == t else 'the past'}. The future strategy "
            f"picks j in {{t+1, …, T}}: transition t achieves achieved_goals[t + 1]. Draw "
            "rng.integers(t + 1, T + 1, size=(T, k)) with t = np.arange(T)[:, None].")
    expected = np.random.default_rng(seed).integers(np.arange(T)[:, None] + 1, T + 1, size=(T, k))
    for t in range(T):
        if len(indices[t]) != k:
            raise AssertionError(f"{shown} stored {len(indices[t])} relabelled copies of "
                                 f"transition {t}; expected k = {k}.")
        if sorted(indices[t]) != sorted(expected[t].tolist()):
            raise AssertionError(
                f"{shown}: transition {t} was relabelled with achieved goals "
                f"{sorted(indices[t])}; with this rng the convention gives {sorted(expected[t])}. "
                "Every goal is a valid future one, but draw the indices once, as "
                "rng.integers(t + 1, T + 1, size=(T, k)) with t = np.arange(T)[:, None], with "
                "the rng argument (not np.random), so that runs are reproducible and checkable.")


@references("course_utils.agents.her.store_episode")
def check_store_episode(fn: Fn) -> None:
    """Check ``fn(buffer, episode, k, rng, compute_reward, compute_terminated) -> int``: HER's
    relabelling with the ``future`` strategy, on a fixed episode with a recording buffer: the T
    transitions with the episode's goal, and k copies of each transition t with goals
    ``achieved_goals[j]``, ``j`` drawn as ``rng.integers(t + 1, T + 1, size=(T, k))``, their
    rewards and ``terminated`` recomputed for the new goal."""
    name = "store_episode"
    n = 0
    for T, k, seed in ((5, 3, 0), (5, 4, 1), (1, 2, 2), (5, 0, 3)):
        _check_stored(fn, name, T, k, seed)
        n += 1
    passed(name, n)
