"""Checks of notebook 01's exercises: the incremental update, ε-greedy selection, UCB selection
and the gradient-bandit update. All four work on NumPy arrays with one row per run.

The statistical cases draw from a generator seeded here, so a given implementation always gets
the same verdict; their bounds are six standard deviations wide, so a correct implementation
fails them with probability below one in a hundred million per case.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from course_utils.checks.common import (
    Fn,
    call,
    expect_array,
    expect_array_close,
    expect_unchanged,
    fmt_array,
    global_generators,
    passed,
)

__all__ = [
    "check_epsilon_greedy",
    "check_gradient_bandit_update",
    "check_incremental_update",
    "check_ucb_select",
]


def _bound(p: float, n: int) -> float:
    """Six standard deviations of a frequency with probability ``p`` over ``n`` draws."""
    return 6 * math.sqrt(p * (1 - p) / n)


def _expect_actions(result: Any, n_runs: int, k: int, shown: str) -> np.ndarray:
    actions = expect_array(result, (n_runs,), shown, integer=True)
    if actions.min() < 0 or actions.max() >= k:
        raise AssertionError(f"{shown} returned arm indices outside [0, {k - 1}] "
                             f"(from {actions.min()} to {actions.max()}).")
    return actions


def _reference_update(q: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                      step_size: Any) -> np.ndarray:
    rows = np.arange(len(q))
    new = q.astype(float)
    new[rows, actions] += step_size * (rewards - q[rows, actions])
    return new


# ------------------------------------------------------------------------------- incremental update


def check_incremental_update(fn: Fn) -> None:
    """Check ``fn(q (R,k), actions (R,), rewards (R,), step_size) -> new q (R,k)``: in each run
    only the chosen arm moves, ``Q ← Q + step_size (R − Q)``; ``step_size`` is a number or one
    number per run."""
    name = "incremental_update"
    n = 0

    q = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    actions, rewards = np.array([2, 0]), np.array([4.0, 5.0])
    shown = f"{name}(q={fmt_array(q)}, actions=[2, 0], rewards=[4.0, 5.0], step_size=0.25)"
    q_before = q.copy()
    result = call(fn, name, q, actions.copy(), rewards.copy(), 0.25)
    expect_unchanged(name, "q", q_before, q)
    expect_array_close(result, np.array([[0.0, 0.0, 1.0], [2.0, 2.0, 3.0]]), shown,
                       "In each run (row) only the CHOSEN arm moves: Q[r, A_r] ← Q[r, A_r] + "
                       "step_size · (R_r − Q[r, A_r]); every other entry stays as it was.")
    n += 1

    q = np.zeros((3, 2))
    steps = np.array([1.0, 0.5, 0.25])
    shown = f"{name}(q={fmt_array(q)}, actions=[0, 1, 0], rewards=[4.0, 4.0, 4.0], step_size=[1.0, 0.5, 0.25])"
    result = call(fn, name, q, np.array([0, 1, 0]), np.array([4.0, 4.0, 4.0]), steps.copy())
    expect_array_close(result, np.array([[4.0, 0.0], [0.0, 2.0], [1.0, 0.0]]), shown,
                       "step_size may hold one step size per run (1/N for sample averages): run r "
                       "uses step_size[r].")
    n += 1

    # Sample averages: with step size 1/n the estimate is the mean of the rewards so far.
    sequence = [2.0, 4.0, 9.0, 1.0]
    q = np.full((2, 3), 7.0)
    estimates = []
    for i, reward in enumerate(sequence, start=1):
        q = call(fn, name, q, np.array([1, 1]), np.full(2, reward), 1.0 / i)
        q = expect_array(q, (2, 3), f"{name}(...) at step {i} of a sample average")
        estimates.append(float(q[0, 1]))
    expected = [2.0, 3.0, 5.0, 4.0]
    if not np.allclose(estimates, expected) or not np.allclose(q[:, [0, 2]], 7.0):
        raise AssertionError(
            f"Four updates of arm 1 from Q = 7 with rewards {sequence} and step sizes 1, 1/2, 1/3, "
            f"1/4 gave estimates {np.round(estimates, 4).tolist()}; expected the running means "
            f"{expected} (and arms 0 and 2 left at 7). With step size 1/n the update computes the "
            "sample average exactly; the initial value is forgotten at n = 1."
        )
    n += 1

    # Constant step size: the exponential recency-weighted average, initial value included.
    rng = np.random.default_rng(10)
    sequence, alpha, initial = rng.normal(size=40), 0.1, 5.0
    q = np.full((1, 2), initial)
    for reward in sequence:
        q = call(fn, name, q, np.array([0]), np.array([reward]), alpha)
        q = expect_array(q, (1, 2), f"{name}(...) with a constant step size")
    weights = alpha * (1 - alpha) ** np.arange(len(sequence) - 1, -1, -1)
    expected = (1 - alpha) ** len(sequence) * initial + (weights * sequence).sum()
    if not math.isclose(q[0, 0], expected, rel_tol=1e-6, abs_tol=1e-6):
        raise AssertionError(
            f"40 updates with step_size=0.1 from Q = 5 gave {q[0, 0]:.4f}; expected {expected:.4f} "
            "= (1−α)^n Q_1 + Σ_i α(1−α)^(n−i) R_i, the exponential recency-weighted average."
        )
    n += 1

    rng = np.random.default_rng(11)
    q = rng.normal(size=(300, 10))
    actions, rewards = rng.integers(10, size=300), rng.normal(size=300)
    steps = rng.uniform(0.01, 1.0, size=300)
    result = call(fn, name, q.copy(), actions.copy(), rewards.copy(), steps.copy())
    expect_array_close(result, _reference_update(q, actions, rewards, steps),
                       f"{name}(300 random runs with 10 arms)")
    n += 1
    passed(name, n)


# ------------------------------------------------------------------------------- ε-greedy


def _frequencies(actions: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(actions, minlength=k) / len(actions)


def check_epsilon_greedy(fn: Fn) -> None:
    """Check ``fn(q (R,k), epsilon, rng) -> actions (R,)``: with probability ε a uniformly random
    arm (all k arms), otherwise a greedy arm with ties broken uniformly at random, decided
    independently in every run, with every random choice drawn from ``rng``."""
    name = "epsilon_greedy"
    n = 0

    q = np.array([[0.0, 1.0, 2.0], [5.0, 1.0, 0.0], [0.0, 3.0, 1.0], [-1.0, -2.0, -0.5]])
    q_before = q.copy()
    shown = f"{name}(q={fmt_array(q)}, epsilon=0, rng)"
    result = _expect_actions(call(fn, name, q, 0.0, np.random.default_rng(0)), 4, 3, shown)
    expect_unchanged(name, "q", q_before, q)
    if not np.array_equal(result, [2, 0, 1, 2]):
        raise AssertionError(f"{shown} returned {result.tolist()}; expected [2, 0, 1, 2]. With "
                             "epsilon = 0 every run takes its greedy arm: the argmax of its ROW "
                             "(axis=1).")
    n += 1

    q = np.tile([0.3, 0.3001, 0.2999], (1000, 1))
    shown = f"{name}(q: 1000 runs with estimates [0.3, 0.3001, 0.2999], epsilon=0, rng)"
    result = _expect_actions(call(fn, name, q, 0.0, np.random.default_rng(0)), 1000, 3, shown)
    if (result != 1).any():
        raise AssertionError(f"{shown} chose arm {result[result != 1][0]} in {np.mean(result != 1):.1%} "
                             "of the runs; expected arm 1 every time. Only EXACTLY equal estimates "
                             "are ties: random noise added to q to break ties must not reorder "
                             "estimates that differ.")
    n += 1

    # Every random choice from rng: the same seed gives the same actions, another seed others.
    q = np.tile([1.0, 3.0, 0.0, 3.0, 3.0], (1000, 1))
    shown = f"{name}(1000 runs with tied greedy arms, epsilon=0.5, rng)"
    with global_generators(1):
        first = _expect_actions(call(fn, name, q.copy(), 0.5, np.random.default_rng(7)), 1000, 5, shown)
    with global_generators(2):
        again = _expect_actions(call(fn, name, q.copy(), 0.5, np.random.default_rng(7)), 1000, 5, shown)
        other = _expect_actions(call(fn, name, q.copy(), 0.5, np.random.default_rng(8)), 1000, 5, shown)
    if not np.array_equal(first, again):
        raise AssertionError(
            f"{shown} gave different actions for two generators with the same seed. Draw every "
            "random number from the `rng` argument (rng.random, rng.integers), not from np.random "
            "or the random module: then a seed makes a run reproducible."
        )
    if np.array_equal(first, other):
        raise AssertionError(
            f"{shown} gave the same actions for generators with seeds 7 and 8: the choices must "
            "come from the `rng` argument, not from a generator created inside the function."
        )
    n += 1

    # Ties among the greedy arms are broken uniformly at random.
    rng = np.random.default_rng(12)
    n_runs = 30_000
    for row, tied, situation in [
        ([1.0, 3.0, 0.0, 3.0, 3.0], [1, 3, 4], "arms 1, 3 and 4 tie for the largest estimate"),
        ([0.0] * 10, list(range(10)), "all 10 estimates are 0, as at the start"),
    ]:
        k = len(row)
        shown = f"{name}(q: {n_runs:,} runs where {situation}, epsilon=0, rng)"
        actions = _expect_actions(call(fn, name, np.tile(row, (n_runs, 1)), 0.0, rng), n_runs, k, shown)
        wrong = np.setdiff1d(np.unique(actions), tied)
        if wrong.size:
            raise AssertionError(f"{shown} chose arm {wrong[0]}, which is not greedy. With "
                                 "epsilon = 0 only arms with the largest estimate may be chosen.")
        freq = _frequencies(actions, k)[tied]
        p = 1 / len(tied)
        if np.abs(freq - p).max() > _bound(p, n_runs):
            raise AssertionError(
                f"{shown} chose the tied arms {tied} with frequencies {np.round(freq, 3).tolist()}; "
                f"expected {p:.3f} each (± {_bound(p, n_runs):.3f}). Break ties uniformly at random: "
                "np.argmax always returns the FIRST largest entry, which makes the first steps "
                "deterministic and favours low arm indices."
            )
        n += 1

    # Every run decides on its own whether to explore.
    q = rng.normal(size=(2000, 10))
    greedy = q.argmax(axis=1)
    p = 0.5 + 0.5 / 10
    for i in range(10):
        shown = f"{name}(2000 runs with 10 arms, epsilon=0.5, rng), call {i + 1} of 10"
        actions = _expect_actions(call(fn, name, q.copy(), 0.5, rng), 2000, 10, shown)
        share = float(np.mean(actions == greedy))
        if abs(share - p) > _bound(p, 2000):
            raise AssertionError(
                f"{shown}: {share:.1%} of the runs took their greedy arm; expected about {p:.1%} "
                f"(1 − ε + ε/k). Each run tosses its own coin (e.g. rng.random(R) < epsilon): one "
                "coin for all runs makes every run explore, or exploit, at the same time."
            )
    n += 1

    # epsilon = 1: uniform over all k arms, whatever the estimates.
    n_runs = 30_000
    shown = f"{name}(q: {n_runs:,} runs with estimates [0, 1, 2, 3, 4], epsilon=1, rng)"
    actions = _expect_actions(call(fn, name, np.tile(np.arange(5.0), (n_runs, 1)), 1.0, rng),
                              n_runs, 5, shown)
    freq = _frequencies(actions, 5)
    if np.abs(freq - 0.2).max() > _bound(0.2, n_runs):
        raise AssertionError(f"{shown} chose the arms with frequencies {np.round(freq, 3).tolist()}; "
                             f"expected 0.2 each (± {_bound(0.2, n_runs):.3f}). With epsilon = 1 "
                             "every action is uniformly random over ALL k arms.")
    n += 1

    # epsilon = 0.1: the greedy arm with probability 1 − ε + ε/k, each other arm with ε/k.
    n_runs, k, epsilon = 100_000, 10, 0.1
    shown = f"{name}(q: {n_runs:,} runs with estimates [0, 1, ..., 9], epsilon=0.1, rng)"
    actions = _expect_actions(call(fn, name, np.tile(np.arange(float(k)), (n_runs, 1)), epsilon, rng),
                              n_runs, k, shown)
    freq = _frequencies(actions, k)
    p_greedy, p_other = 1 - epsilon + epsilon / k, epsilon / k
    if abs(freq[-1] - p_greedy) > _bound(p_greedy, n_runs) or \
            np.abs(freq[:-1] - p_other).max() > _bound(p_other, n_runs):
        raise AssertionError(
            f"{shown} chose the greedy arm 9 in {freq[-1]:.2%} of the runs and the others in "
            f"{freq[:-1].min():.2%} to {freq[:-1].max():.2%}; expected {p_greedy:.0%} for arm 9 "
            f"(1 − ε + ε/k) and {p_other:.0%} for each other arm (ε/k). With probability ε pick "
            "uniformly among ALL k arms, the greedy one included; otherwise pick greedily."
        )
    n += 1
    passed(name, n)


# ------------------------------------------------------------------------------- UCB


def _ucb_scores(q: np.ndarray, counts: np.ndarray, t: int, c: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = q + c * np.sqrt(math.log(t) / counts)
    return np.where(counts == 0, np.inf, scores)


def check_ucb_select(fn: Fn) -> None:
    """Check ``fn(q (R,k), counts (R,k), t, c) -> actions (R,)``: in each run the argmax of
    ``Q(a) + c sqrt(ln t / N(a))``, an arm with ``N(a) = 0`` counting as maximising."""
    name = "ucb_select"
    n = 0
    known = [
        ([0.2, 0.9, 0.5], [3, 3, 3], 10, 0.0, 1, "With c = 0 there is no bonus: UCB is greedy."),
        ([0.0, 0.0, 0.0], [5, 50, 20], 75, 1.0, 0,
         "With equal estimates the least-tried arm has the largest bonus c·sqrt(ln t / N(a))."),
        ([0.0, 1.0], [4, 100], 104, 1.0, 1,
         "The bonus is c·sqrt(ln t / N(a)): the natural log of t, and the square root of the ratio."),
        ([0.0, 1.2], [2, 400], 402, 1.0, 0, "ln is the natural logarithm (np.log), not log10."),
        ([0.0, 0.5], [1, 3], 10, 1.0, 0, "Divide by N(a) itself, not N(a) + 1."),
        ([0.0, 1.0], [10, 40], 50, 4.0, 0,
         "c multiplies the square root: c·sqrt(ln t / N(a)), not sqrt(c·ln t / N(a))."),
    ]
    for q_row, count_row, t, c, expected, hint in known:
        q, counts = np.array([q_row]), np.array([count_row])
        shown = f"{name}(q={fmt_array(q)}, counts={counts.tolist()}, t={t}, c={c})"
        q_before, counts_before = q.copy(), counts.copy()
        result = _expect_actions(call(fn, name, q, counts, t, c), 1, len(q_row), shown)
        expect_unchanged(name, "q", q_before, q)
        expect_unchanged(name, "counts", counts_before, counts)
        if result[0] != expected:
            scores = np.round(_ucb_scores(q, counts, t, c)[0], 3).tolist()
            raise AssertionError(f"{shown} returned [{result[0]}]; expected [{expected}] (the scores "
                                 f"Q + c·sqrt(ln t / N) are {scores}). {hint}")
        n += 1

    untried_hint = ("An arm never tried (N(a) = 0) counts as maximising, as if its bonus were "
                    "infinite: choose an untried arm before any tried one.")
    q = np.array([[5.0, -10.0, 3.0], [-1.0, -2.0, 10.0]])
    counts = np.array([[3, 0, 7], [0, 0, 5]])
    shown = f"{name}(q={fmt_array(q)}, counts={counts.tolist()}, t=11, c=2)"
    q_before, counts_before = q.copy(), counts.copy()
    result = _expect_actions(call(fn, name, q, counts, 11, 2.0), 2, 3, shown)
    expect_unchanged(name, "q", q_before, q)
    expect_unchanged(name, "counts", counts_before, counts)
    if result[0] != 1 or result[1] not in (0, 1):
        raise AssertionError(f"{shown} returned {result.tolist()}; expected arm 1 in the first run "
                             f"and arm 0 or 1 in the second. {untried_hint}")
    n += 1
    shown = f"{name}(q=zeros((2, 4)), counts=zeros((2, 4)), t=1, c=2)"
    _expect_actions(call(fn, name, np.zeros((2, 4)), np.zeros((2, 4), dtype=int), 1, 2.0), 2, 4, shown)
    n += 1

    rng = np.random.default_rng(13)
    n_runs, k, t, c = 400, 10, 500, 1.5
    q = rng.normal(size=(n_runs, k))
    counts = rng.integers(1, 60, size=(n_runs, k))
    counts[: n_runs // 4] *= rng.random((n_runs // 4, k)) < 0.8  # some untried arms in a quarter of the runs
    shown = f"{name}({n_runs} random runs with 10 arms, t={t}, c={c})"
    result = _expect_actions(call(fn, name, q.copy(), counts.copy(), t, c), n_runs, k, shown)
    chose_untried = counts[np.arange(n_runs), result] == 0
    has_untried = (counts == 0).any(axis=1)
    if (has_untried & ~chose_untried).any():
        row = int(np.flatnonzero(has_untried & ~chose_untried)[0])
        raise AssertionError(f"{shown}: run {row} has untried arms {np.flatnonzero(counts[row] == 0).tolist()} "
                             f"but it chose arm {result[row]} (tried {counts[row, result[row]]} times). "
                             f"{untried_hint}")
    expected = np.argmax(_ucb_scores(q, counts, t, c), axis=1)
    wrong = ~has_untried & (result != expected)
    if wrong.any():
        row = int(np.flatnonzero(wrong)[0])
        raise AssertionError(f"{shown}: run {row} chose arm {result[row]}; expected {expected[row]}. "
                             "Each run takes the argmax of ITS OWN scores (axis=1).")
    n += 1
    passed(name, n)


# ------------------------------------------------------------------------------- gradient bandit


def _softmax(h: np.ndarray) -> np.ndarray:
    z = np.exp(h - h.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def _reference_gradient_update(h, pi, actions, rewards, baseline, alpha):
    one_hot = np.zeros_like(h, dtype=float)
    one_hot[np.arange(len(h)), actions] = 1.0
    advantage = (np.asarray(rewards, dtype=float) - baseline)[:, None]
    return h + alpha * advantage * (one_hot - pi)


def check_gradient_bandit_update(fn: Fn) -> None:
    """Check ``fn(H (R,k), pi (R,k), actions (R,), rewards (R,), baseline, alpha) -> new H``:
    ``H(a) ← H(a) + α (R − B)(1{a = A} − π(a))`` for every arm; ``baseline`` is a number or one
    number per run."""
    name = "gradient_bandit_update"
    n = 0
    rule = ("H(a) ← H(a) + α (R − B)(1{a = A} − π(a)) for EVERY arm a: the chosen arm moves by "
            "α (R − B)(1 − π(A)), every other arm by −α (R − B) π(a).")

    h = np.array([[math.log(2.0), 0.0, 0.0], [0.0, 0.0, 0.0]])
    pi = _softmax(h)  # [0.5, 0.25, 0.25] and [1/3, 1/3, 1/3]
    h_before, pi_before = h.copy(), pi.copy()
    shown = (f"{name}(H={fmt_array(h)}, pi={fmt_array(pi)}, actions=[0, 2], rewards=[3.0, 0.0], "
             "baseline=[1.0, 1.0], alpha=0.5)")
    result = call(fn, name, h, pi, np.array([0, 2]), np.array([3.0, 0.0]), np.array([1.0, 1.0]), 0.5)
    expect_unchanged(name, "H", h_before, h)
    expect_unchanged(name, "pi", pi_before, pi)
    expected = h + np.array([[0.5, -0.25, -0.25], [1 / 6, 1 / 6, -1 / 3]])
    expect_array_close(result, expected, shown, rule)
    n += 1

    h = np.zeros((1, 2))
    shown = f"{name}(H=[[0.0, 0.0]], pi=[[0.5, 0.5]], actions=[0], rewards=[2.0], baseline=0.0, alpha=0.1)"
    result = call(fn, name, h, np.full((1, 2), 0.5), np.array([0]), np.array([2.0]), 0.0, 0.1)
    expect_array_close(result, np.array([[0.1, -0.1]]), shown,
                       "baseline may be a single number (0 for no baseline) as well as one per run.")
    n += 1

    rng = np.random.default_rng(14)
    n_runs, k = 200, 10
    h = rng.normal(size=(n_runs, k))
    pi = _softmax(h)
    actions, rewards = rng.integers(k, size=n_runs), rng.normal(1.0, 2.0, size=n_runs)
    baseline = rng.normal(size=n_runs)
    random_call = f"{name}({n_runs} random runs with 10 arms, alpha=0.3)"
    general = expect_array(call(fn, name, h.copy(), pi.copy(), actions.copy(), rewards.copy(),
                                baseline.copy(), 0.3), (n_runs, k), random_call)
    if general.dtype.kind not in "biuf":
        raise AssertionError(f"{random_call} returned an array of dtype {general.dtype}; expected numbers.")
    if not np.allclose(general.sum(axis=1), h.sum(axis=1), atol=1e-6):
        row = int(np.flatnonzero(~np.isclose(general.sum(axis=1), h.sum(axis=1), atol=1e-6))[0])
        raise AssertionError(
            f"{random_call} changed the sum of the preferences of run {row} from {h[row].sum():.4f} to "
            f"{general[row].sum():.4f}. Since Σ_a (1{{a = A}} − π(a)) = 1 − 1 = 0, the update never "
            f"changes Σ_a H(a). {rule}"
        )
    n += 1
    shown = f"{name}({n_runs} random runs, rewards equal to the baseline)"
    result = call(fn, name, h.copy(), pi.copy(), actions.copy(), rewards.copy(), rewards.copy(), 0.3)
    expect_array_close(result, h, shown, "When R = B there is no surprise and nothing may change.")
    n += 1

    expect_array_close(general, _reference_gradient_update(h, pi, actions, rewards, baseline, 0.3),
                       random_call, rule)
    n += 1

    # Averaged over A ~ π (with R = q*(A)), the update is α ∂E[R]/∂H, whatever the baseline.
    k = 5
    h_row = rng.normal(size=k)
    pi_row = _softmax(h_row)
    q_star = np.array([1.0, -0.5, 2.0, 0.3, 1.2])
    gradient = pi_row * (q_star - pi_row @ q_star)
    for b in (0.0, 2.5):
        result = expect_array(
            call(fn, name, np.tile(h_row, (k, 1)), np.tile(pi_row, (k, 1)), np.arange(k), q_star.copy(),
                 b, 0.2), (k, k), f"{name}(each of 5 actions in turn, baseline={b})")
        mean_step = pi_row @ (result - h_row)
        if not np.allclose(mean_step, 0.2 * gradient, atol=1e-6):
            raise AssertionError(
                f"With q* = {q_star.tolist()}, π = {np.round(pi_row, 3).tolist()} and baseline={b}, "
                f"the update averaged over A ~ π is {np.round(mean_step, 4).tolist()}; expected "
                f"α ∂E[R]/∂H = α π(a)(q*(a) − Σ_b π(b) q*(b)) = {np.round(0.2 * gradient, 4).tolist()}, "
                f"the same for every baseline. {rule}"
            )
        n += 1
    passed(name, n)
