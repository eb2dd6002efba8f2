"""Checks of notebook 09's Hindsight Experience Replay exercises: BitFlip's reward function and
the ``future`` goal-selection strategy.

Conventions (those of ``course_utils.envs.bitflip`` and ``course_utils.buffers``): goals are
arrays of bits, a batch of ``B`` of them ``(B, n)``. An episode of ``T`` transitions has ``T + 1``
achieved goals ``achieved_goals[0 … T]``; transition t (from ``o_t`` to ``o_{t+1}``) achieved
``achieved_goals[t + 1]``. A goal selection ``(T, k, rng) -> (T, k)`` returns, in row t, the
indices of the k achieved goals transition t is relabelled with.
"""

from __future__ import annotations

import numpy as np

from course_utils.checks.common import (call, expect_array, expect_unchanged, fmt_array, Fn,
                                                global_generators, passed, references)

__all__ = ["check_bitflip_reward", "check_future_goal_indices"]


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


# --------------------------------------------------------------------- future goal selection

_FUTURE_HINT = ("Row t holds k indices drawn uniformly from {t+1, …, T}: "
                "rng.integers(t + 1, T + 1, size=…) (the high end is exclusive).")


def _call_selection(fn: Fn, name: str, T: int, k: int, seed: int) -> np.ndarray:
    shown = f"{name}(T={T}, k={k}, rng=np.random.default_rng({seed}))"
    result = call(fn, name, T, k, np.random.default_rng(seed))
    if isinstance(result, np.ndarray) and result.shape != (T, k):
        hint = (" Draw k indices for each of the T transitions, size=(T, k)."
                if result.shape in ((T,), (k, T), (T * k,), (k,)) else "")
        raise AssertionError(f"{shown} returned shape {result.shape}; expected ({T}, {k})."
                             + hint)
    return expect_array(result, (T, k), shown, integer=True)


def _indices_hint(indices: np.ndarray, T: int) -> str:
    """What wrong indices ``(T, k)`` say about the student's rule."""
    t = np.arange(T)[:, None]
    if (indices == T).all() and T > 1:
        return ("Every index is T: that is the `final` strategy. `future` picks, for transition "
                "t, any goal achieved from t+1 to T.")
    if (indices < t).any():
        return ("Indices below t are goals achieved before transition t (the `episode` "
                "strategy allows them); `future` picks only t+1 … T.")
    if (indices == t).any():
        return ("Index t is the goal achieved BEFORE transition t (its start state); transition "
                "t achieves achieved_goals[t + 1], so the smallest allowed index is t + 1.")
    if (indices > T).any():
        return (f"Index {indices.max()} is past the end: an episode of T = {T} steps has "
                f"achieved goals 0 … T.")
    return _FUTURE_HINT


def _expect_in_future(indices: np.ndarray, name: str, T: int, k: int) -> None:
    """Every entry of row t lies in {t+1, …, T}, or an error showing the first bad row."""
    t = np.arange(T)[:, None]
    bad = ((indices < t + 1) | (indices > T)).any(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        shown = (f"row {row} = {indices[row].tolist()}" if k <= 12 else
                 f"row {row} has {indices[row][(indices[row] < row + 1) | (indices[row] > T)][0]}")
        raise AssertionError(f"{name}(T={T}, k={k}, rng) gave {shown}; every entry of row {row} "
                             f"must lie in {{{row + 1}, …, {T}}}. {_indices_hint(indices, T)}")


@references("course_utils.buffers.future_goal_indices")
def check_future_goal_indices(fn: Fn) -> None:
    """Check ``fn(T, k, rng) -> (T, k)`` integers is the ``future`` strategy: row t holds k
    indices drawn uniformly (with ``rng``) from ``{t+1, …, T}``, the goals achieved by transition
    t or a later one of the same episode."""
    name = "future_goal_indices"
    n = 0
    for T, k in ((5, 4), (1, 3), (8, 1)):
        _expect_in_future(_call_selection(fn, name, T, k, seed=T), name, T, k)
        n += 1

    with global_generators(0):
        first = _call_selection(fn, name, 6, 5, seed=42)
        again = _call_selection(fn, name, 6, 5, seed=42)
    if not np.array_equal(first, again):
        raise AssertionError(
            f"{name}(T=6, k=5, rng=np.random.default_rng(42)) gave different indices on two calls "
            "with equally seeded generators: draw them with the rng argument (rng.integers), not "
            "with np.random or random, so that runs are reproducible.")
    n += 1

    columns = _call_selection(fn, name, 10, 6, seed=3)
    _expect_in_future(columns, name, 10, 6)
    if (columns == 10).all():
        raise AssertionError(f"{name}(T=10, k=6, rng) gave index T = 10 everywhere. "
                             + _indices_hint(columns, 10))
    if all((columns[:, j] == columns[:, 0]).all() for j in range(6)):
        raise AssertionError(
            f"{name}(T=10, k=6, rng) gave the same index in all k columns of every row: the k "
            "goals of a transition must be drawn independently, size=(T, k), not one per row "
            "repeated.")
    n += 1

    T, k = 6, 3000
    indices = _call_selection(fn, name, T, k, seed=7)
    _expect_in_future(indices, name, T, k)
    for t in range(T):
        row = indices[t]
        allowed = T - t
        counts = np.bincount(row - (t + 1), minlength=allowed)
        if (counts == 0).any():
            missing = int(np.flatnonzero(counts == 0)[0]) + t + 1
            hint = _FUTURE_HINT
            if missing == T:
                hint = ("The last achieved goal, index T, is never picked: rng.integers(low, "
                        "high) excludes high, so use high = T + 1.")
            elif missing == t + 1:
                hint = (f"The goal transition {t} achieved itself (index t + 1 = {t + 1}) is "
                        "never picked; it belongs to the future too (it is the relabelling that "
                        "gives this very transition the reward of success).")
            raise AssertionError(f"{name}(T={T}, k={k}, rng) never picked index {missing} in row "
                                 f"{t} in {k} draws. {hint}")
        frequencies = counts / k
        if np.abs(frequencies - 1 / allowed).max() > 0.05:
            raise AssertionError(
                f"{name}(T={T}, k={k}, rng) row {t}: the indices {t + 1} … {T} came with "
                f"frequencies {np.round(frequencies, 3).tolist()}; expected each about "
                f"{1 / allowed:.3f} (uniform). {_FUTURE_HINT}")
    n += 1
    passed(name, n)
