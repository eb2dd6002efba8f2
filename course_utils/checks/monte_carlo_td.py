"""Checks of notebook 03's exercises: first-visit Monte Carlo prediction, and the one-transition
updates of TD(0), SARSA, Q-learning, Expected SARSA and Double Q-learning.

The updates work on NumPy tables, one transition at a time: they change the table IN PLACE (only
the entry of the state, or state-action pair, just left) and return the TD error δ computed
before the change. ``terminated=True`` means the next state is terminal: its future is zero, so
the target is the reward alone, whatever the table holds in the terminal row. Every case below
puts a non-zero value in that row, so a missing terminal mask cannot go unnoticed.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from course_utils.checks.common import (
    Fn,
    call,
    expect_array,
    expect_array_close,
    fmt_array,
    global_generators,
    passed,
)

__all__ = [
    "check_double_q_update",
    "check_expected_sarsa_update",
    "check_first_visit_mc_prediction",
    "check_q_learning_update",
    "check_sarsa_update",
    "check_td0_update",
]

TERMINAL_HINT = ("When the next state is terminal (terminated=True) there is no future: the target "
                 "is the reward alone, whatever the table holds for the terminal state.")


def _expect_number(result: Any, shown: str) -> float:
    """``result`` as a float if it is one real number, else an AssertionError."""
    if isinstance(result, np.ndarray) and result.size == 1 and result.ndim <= 1:
        result = result.reshape(())[()]
    if result is None:
        raise AssertionError(f"{shown} returned None; return the TD error δ (a number), computed "
                             "before the table is changed.")
    if isinstance(result, bool) or not isinstance(result, (int, float, np.integer, np.floating)):
        raise AssertionError(f"{shown} returned {type(result).__name__}; expected the TD error δ, "
                             "one number. Change the table in place and return δ.")
    return float(result)


def _expect_update(table: np.ndarray, expected: np.ndarray, before: np.ndarray, result: Any,
                   delta: float, shown: str, what: str, hint: str) -> None:
    """The table was changed in place to ``expected`` and the call returned ``delta``."""
    if np.array_equal(table, before) and not np.allclose(expected, before):
        if isinstance(result, np.ndarray) and result.shape == table.shape:
            raise AssertionError(f"{shown} returned a new table and left {what} unchanged. Update "
                                 f"{what} IN PLACE ({what}[...] += ...) and return the TD error δ.")
        raise AssertionError(f"{shown} left {what} unchanged; expected {what} to become "
                             f"{fmt_array(expected)}. {hint}")
    expect_array_close(table, expected, f"{shown}: {what} after the call", hint)
    value = _expect_number(result, shown)
    if not math.isclose(value, delta, rel_tol=1e-6, abs_tol=1e-6):
        after = float(np.asarray(expected).ravel()[np.flatnonzero(~np.isclose(expected, before))[0]]) \
            if not np.allclose(expected, before) else None
        extra = ""
        if after is not None and math.isclose(value, after, rel_tol=1e-6, abs_tol=1e-6):
            extra = " That is the new estimate; return the TD error δ = target − old estimate."
        elif math.isclose(value, -delta, rel_tol=1e-6, abs_tol=1e-6):
            extra = " Check the sign: δ = target − estimate."
        raise AssertionError(f"{shown} returned {value:.4f}; expected the TD error δ = {delta:.4f} "
                             f"(target minus the estimate BEFORE the update).{extra}")



# ------------------------------------------------------------------------------- first-visit MC


def _reference_first_visit(episodes, n_states: int, gamma: float) -> np.ndarray:
    totals, counts = np.zeros(n_states), np.zeros(n_states)
    for states, rewards in episodes:
        g, first = 0.0, {}
        for t in range(len(states) - 1, -1, -1):
            g = rewards[t] + gamma * g
            first[states[t]] = g  # overwritten until the earliest visit remains
        for s, value in first.items():
            totals[s] += value
            counts[s] += 1
    return np.divide(totals, counts, out=np.zeros(n_states), where=counts > 0)


def _copy_episodes(episodes):
    return [(list(states), list(rewards)) for states, rewards in episodes]


def check_first_visit_mc_prediction(fn: Fn) -> None:
    """Check ``fn(episodes, n_states, gamma) -> V (n_states,)``: each episode is a pair
    ``(states, rewards)`` with ``rewards[t]`` the reward received after leaving ``states[t]``;
    ``V[s]`` is the mean, over the episodes that visit ``s``, of the return that follows its FIRST
    visit, and 0 for a state that no episode visits."""
    name = "first_visit_mc_prediction"
    n = 0

    episode = ([0, 1, 0, 2], [1.0, 2.0, 3.0, 4.0])
    shown = f"{name}(episodes=[([0, 1, 0, 2], [1.0, 2.0, 3.0, 4.0])], n_states=4, gamma=1.0)"
    result = call(fn, name, [(list(episode[0]), list(episode[1]))], 4, 1.0)
    result = expect_array(result, (4,), shown)
    hint = ("The returns are G = [10, 9, 7, 4] (G_t sums the rewards from step t to the end). "
            "State 0 is visited at t = 0 and t = 2; first-visit MC uses only G_0 = 10.")
    if np.isclose(result[0], 8.5):
        hint += " 8.5 averages both visits: that is EVERY-visit MC."
    elif np.isclose(result[0], 7.0):
        hint += " 7 is the return of the LAST visit: keep the earliest one."
    if np.isnan(result).any():
        hint += " A state that no episode visits gets the value 0 (not 0/0 = nan)."
    expect_array_close(result, np.array([10.0, 9.0, 4.0, 0.0]), shown, hint)
    n += 1

    shown = f"{name}(episodes=[([0, 1, 0, 2], [1.0, 2.0, 3.0, 4.0])], n_states=4, gamma=0.5)"
    result = call(fn, name, [(list(episode[0]), list(episode[1]))], 4, 0.5)
    expect_array_close(result, np.array([3.25, 4.5, 4.0, 0.0]), shown,
                       "G_t = r_t + γ G_{t+1}: discount each reward by γ^(k−t), its distance "
                       "from step t (G_3 = 4, G_2 = 3 + 0.5·4 = 5, G_1 = 2 + 0.5·5 = 4.5, "
                       "G_0 = 1 + 0.5·4.5 = 3.25).")
    n += 1

    episodes = [([0, 1], [0.0, 1.0]), ([1], [-1.0]), ([2, 2], [5.0, 5.0])]
    shown = (f"{name}(episodes=[([0, 1], [0.0, 1.0]), ([1], [-1.0]), ([2, 2], [5.0, 5.0])], "
             "n_states=3, gamma=1.0)")
    before = _copy_episodes(episodes)
    result = call(fn, name, episodes, 3, 1.0)
    if _copy_episodes(episodes) != before:
        raise AssertionError(f"{name} modified the episodes it was given; leave its input unchanged.")
    expect_array_close(result, np.array([1.0, 0.0, 10.0]), shown,
                       "Average over the episodes that VISIT the state (state 0: one episode, "
                       "return 1; state 1: two episodes, returns 1 and −1), and start every "
                       "episode's return afresh: returns never run from one episode into the next.")
    n += 1

    # The same episodes as NumPy arrays (as an environment gives them) must work as well.
    states = np.array([3, 3, 1, 3, 0])
    rewards = np.array([0.0, -1.0, 2.0, 0.5, 1.0])
    shown = (f"{name}(episodes=[(np.array({states.tolist()}), np.array({rewards.tolist()}))], "
             "n_states=5, gamma=0.9)")
    result = call(fn, name, [(states.copy(), rewards.copy())], 5, 0.9)
    expect_array_close(result, _reference_first_visit([(states, rewards)], 5, 0.9), shown,
                       "States and rewards may come as NumPy arrays; use states[t] as an index.")
    n += 1

    rng = np.random.default_rng(30)
    episodes = []
    for _ in range(200):
        length = int(rng.integers(1, 15))
        episodes.append((rng.integers(0, 8, size=length).tolist(), rng.normal(size=length).round(3).tolist()))
    shown = f"{name}(200 random episodes over 8 states with repeated visits, n_states=10, gamma=0.95)"
    result = call(fn, name, _copy_episodes(episodes), 10, 0.95)
    expect_array_close(result, _reference_first_visit(episodes, 10, 0.95), shown,
                       "Each state's first visit in each episode contributes one return.")
    n += 1
    passed(name, n)


# ------------------------------------------------------------------------------- TD(0)


def check_td0_update(fn: Fn) -> None:
    """Check ``fn(V, s, r, s_next, terminated, alpha, gamma) -> δ``: V changes in place at ``s``
    only, ``V[s] += α δ`` with ``δ = r + γ V[s_next] − V[s]`` (``r − V[s]`` if ``terminated``)."""
    name = "td0_update"
    n = 0
    rule = "V[s] ← V[s] + α (r + γ V[s'] − V[s]); no other entry changes."

    cases = [
        # V, s, r, s_next, terminated, alpha, gamma, hint
        ([0.0, 0.3, 0.5, 0.9, 7.0], 2, 1.0, 3, False, 0.5, 0.9, rule),
        ([0.0, 0.3, 0.5, 0.9, 7.0], 3, 1.0, 4, True, 0.5, 0.9, TERMINAL_HINT),
        ([2.0, 4.0, 1.0], 1, -1.0, 0, False, 0.1, 1.0,
         "The target bootstraps from the NEXT state's value V[s_next]. " + rule),
        ([0.0, 2.0, 6.0], 2, 3.0, 1, False, 1.0, 0.0,
         "With γ = 0 the target is the reward alone; with α = 1 V[s] becomes the target."),
    ]
    for values, s, r, s_next, terminated, alpha, gamma, hint in cases:
        V = np.array(values)
        before = V.copy()
        target = r if terminated else r + gamma * V[s_next]
        delta = target - V[s]
        expected = V.copy()
        expected[s] += alpha * delta
        shown = (f"{name}(V={fmt_array(V)}, s={s}, r={r}, s_next={s_next}, terminated={terminated}, "
                 f"alpha={alpha}, gamma={gamma})")
        result = call(fn, name, V, s, r, s_next, terminated, alpha, gamma)
        _expect_update(V, expected, before, result, delta, shown, "V", hint)
        n += 1

    # A whole random walk of updates, each checked.
    rng = np.random.default_rng(31)
    V, reference = np.zeros(9), np.zeros(9)
    for step in range(300):
        s, s_next = int(rng.integers(1, 8)), int(rng.integers(0, 9))
        terminated = s_next in (0, 8)
        r, alpha = float(rng.normal()), float(rng.uniform(0.01, 0.5))
        V[[0, 8]] = reference[[0, 8]] = rng.normal(size=2)  # terminal entries: garbage, never to be used
        before = V.copy()
        delta = (r if terminated else r + 0.95 * reference[s_next]) - reference[s]
        reference[s] += alpha * delta
        shown = f"{name}(...) at step {step + 1} of 300 random transitions (gamma=0.95)"
        result = call(fn, name, V, s, r, s_next, terminated, alpha, 0.95)
        _expect_update(V, reference, before, result, delta, shown, "V", rule)
    n += 1
    passed(name, n)


# ------------------------------------------------------------------------------- SARSA, Q-learning


def _check_q_update(name: str, run: Callable[..., Any], cases, random_target: Callable[..., float],
                    random_label: str, seed: int) -> int:
    """Known-answer cases and 300 random transitions for an update of one Q entry.

    ``cases``: (Q rows, s, a, r, s_next, extra, terminated, alpha, gamma, target, hint, label)
    where ``extra`` is passed after ``s_next`` (SARSA's next action) when not None.
    ``run(Q, s, a, r, s_next, extra, terminated, alpha, gamma)`` calls the student's function.
    """
    n = 0
    for rows, s, a, r, s_next, extra, terminated, alpha, gamma, target, hint, label in cases:
        Q = np.array(rows, dtype=float)
        before = Q.copy()
        delta = target - Q[s, a]
        expected = Q.copy()
        expected[s, a] += alpha * delta
        shown = f"{name}(Q={fmt_array(Q)}, {label}, alpha={alpha}, gamma={gamma})"
        result = run(Q, s, a, r, s_next, extra, terminated, alpha, gamma)
        _expect_update(Q, expected, before, result, delta, shown, "Q", hint)
        n += 1

    rng = np.random.default_rng(seed)
    Q = rng.normal(size=(6, 4))
    reference = Q.copy()
    for step in range(300):
        s, a, s_next = int(rng.integers(0, 5)), int(rng.integers(0, 4)), int(rng.integers(0, 6))
        extra = int(rng.integers(0, 4))
        terminated = s_next == 5
        Q[5] = reference[5] = rng.normal(size=4)  # the terminal row: never to be used
        r, alpha = float(rng.normal()), float(rng.uniform(0.01, 0.5))
        before = Q.copy()
        target = r if terminated else r + 0.9 * random_target(reference[s_next], extra)
        delta = target - reference[s, a]
        reference[s, a] += alpha * delta
        shown = f"{name}(...) at step {step + 1} of 300 random transitions ({random_label}, gamma=0.9)"
        result = run(Q, s, a, r, s_next, extra, terminated, alpha, 0.9)
        _expect_update(Q, reference, before, result, delta, shown, "Q", "Only Q[s, a] changes.")
    return n + 1


def check_sarsa_update(fn: Fn) -> None:
    """Check ``fn(Q, s, a, r, s_next, a_next, terminated, alpha, gamma) -> δ``:
    ``Q[s, a] += α (r + γ Q[s_next, a_next] − Q[s, a])`` in place (``r`` alone if terminated)."""
    name = "sarsa_update"
    rule = ("SARSA's target uses the action actually chosen next: r + γ Q[s_next, a_next], "
            "not the best one.")
    q = [[0.0, 1.0, 3.0], [1.0, 5.0, 2.0], [4.0, 4.0, 4.0]]
    cases = [
        (q, 0, 1, 1.0, 1, 2, False, 0.5, 0.9, 1.0 + 0.9 * 2.0, rule,
         "s=0, a=1, r=1.0, s_next=1, a_next=2, terminated=False"),
        (q, 1, 0, -1.0, 2, 0, True, 0.5, 0.9, -1.0, TERMINAL_HINT,
         "s=1, a=0, r=-1.0, s_next=2, a_next=0, terminated=True"),
        (q, 1, 2, 0.0, 0, 0, False, 1.0, 1.0, 0.0,
         "Only Q[s, a] changes, towards r + γ Q[s_next, a_next]; with α = 1 it becomes the target.",
         "s=1, a=2, r=0.0, s_next=0, a_next=0, terminated=False"),
    ]

    def run(Q, s, a, r, s_next, extra, terminated, alpha, gamma):
        return call(fn, name, Q, s, a, r, s_next, extra, terminated, alpha, gamma)

    n = _check_q_update(name, run, cases, lambda row, a_next: row[a_next], "random next actions", 32)
    passed(name, n)


def check_q_learning_update(fn: Fn) -> None:
    """Check ``fn(Q, s, a, r, s_next, terminated, alpha, gamma) -> δ``:
    ``Q[s, a] += α (r + γ max_a' Q[s_next, a'] − Q[s, a])`` in place (``r`` alone if terminated)."""
    name = "q_learning_update"
    rule = ("Q-learning's target is r + γ max_a' Q[s_next, a']: the VALUE of the best next action "
            "(Q[s_next].max()), whatever action is taken next.")
    q = [[0.0, 1.0, 2.0], [1.0, 5.0, 2.0], [-3.0, -1.0, -2.0], [4.0, 4.0, 4.0]]
    cases = [
        (q, 0, 2, 1.0, 1, None, False, 0.5, 0.9, 1.0 + 0.9 * 5.0, rule,
         "s=0, a=2, r=1.0, s_next=1, terminated=False"),
        (q, 1, 1, 2.0, 3, None, True, 0.5, 0.9, 2.0, TERMINAL_HINT,
         "s=1, a=1, r=2.0, s_next=3, terminated=True"),
        (q, 1, 0, 0.0, 2, None, False, 0.25, 1.0, -1.0,
         "The maximum of negative values is negative: use the best VALUE of the next state. " + rule,
         "s=1, a=0, r=0.0, s_next=2, terminated=False"),
    ]

    def run(Q, s, a, r, s_next, extra, terminated, alpha, gamma):
        return call(fn, name, Q, s, a, r, s_next, terminated, alpha, gamma)

    n = _check_q_update(name, run, cases, lambda row, _: row.max(), "random transitions", 33)
    passed(name, n)


def _epsilon_greedy_expectation(row: np.ndarray, epsilon: float) -> float:
    return (1 - epsilon) * row.max() + epsilon * row.mean()


def check_expected_sarsa_update(fn: Fn) -> None:
    """Check ``fn(Q, s, a, r, s_next, terminated, alpha, gamma, epsilon) -> δ``: the target is
    ``r + γ Σ_a' π(a'|s_next) Q[s_next, a']`` with π ε-greedy with respect to Q (greedy action
    ``1 − ε + ε/|A|``, every other ``ε/|A|``); ``r`` alone if terminated."""
    name = "expected_sarsa_update"
    rule = ("The target is r + γ Σ_a' π(a'|s') Q[s', a'] with π ε-greedy: the greedy action has "
            "probability 1 − ε + ε/|A| (exploration may pick it too) and every other action ε/|A|, "
            "so the expectation is (1 − ε) max Q[s'] + ε mean Q[s'].")
    q = [[0.0, 4.0, 2.0, 2.0], [1.0, 1.0, 1.0, 1.0], [3.0, 3.0, 0.0, 0.0], [5.0, 5.0, 5.0, 5.0]]
    cases = [
        # Q, s, a, r, s_next, epsilon, terminated, alpha, gamma, target, hint
        (q, 1, 0, 1.0, 0, 0.2, False, 0.5, 0.9, 1.0 + 0.9 * (0.8 * 4.0 + 0.2 * 2.0), rule),
        (q, 0, 1, -1.0, 3, 0.2, True, 0.5, 0.9, -1.0, TERMINAL_HINT),
        (q, 1, 2, 0.0, 0, 0.0, False, 1.0, 1.0, 4.0, "With ε = 0 the policy is greedy: Expected "
         "SARSA becomes Q-learning. " + rule),
        (q, 1, 3, 0.0, 0, 1.0, False, 1.0, 1.0, 2.0, "With ε = 1 the policy is uniform: the "
         "expectation is the mean of Q[s']. " + rule),
        (q, 0, 0, 0.5, 2, 0.3, False, 0.5, 1.0, 0.5 + (0.7 * 3.0 + 0.3 * 1.5),
         "Tied greedy actions share the greedy probability; the expectation is still "
         "(1 − ε) max + ε mean. " + rule),
    ]
    n = 0
    for rows, s, a, r, s_next, epsilon, terminated, alpha, gamma, target, hint in cases:
        Q = np.array(rows)
        before = Q.copy()
        delta = target - Q[s, a]
        expected = Q.copy()
        expected[s, a] += alpha * delta
        shown = (f"{name}(Q={fmt_array(Q)}, s={s}, a={a}, r={r}, s_next={s_next}, "
                 f"terminated={terminated}, alpha={alpha}, gamma={gamma}, epsilon={epsilon})")
        result = call(fn, name, Q, s, a, r, s_next, terminated, alpha, gamma, epsilon)
        _expect_update(Q, expected, before, result, delta, shown, "Q", hint)
        n += 1

    rng = np.random.default_rng(34)
    Q = rng.normal(size=(6, 5))
    reference = Q.copy()
    for step in range(300):
        s, a, s_next = int(rng.integers(0, 5)), int(rng.integers(0, 5)), int(rng.integers(0, 6))
        terminated = s_next == 5
        Q[5] = reference[5] = rng.normal(size=5)
        r, alpha, epsilon = float(rng.normal()), float(rng.uniform(0.01, 0.5)), float(rng.uniform(0, 1))
        before = Q.copy()
        target = r if terminated else r + 0.9 * _epsilon_greedy_expectation(reference[s_next], epsilon)
        delta = target - reference[s, a]
        reference[s, a] += alpha * delta
        shown = f"{name}(...) at step {step + 1} of 300 random transitions (5 actions, gamma=0.9)"
        result = call(fn, name, Q, s, a, r, s_next, terminated, alpha, 0.9, epsilon)
        _expect_update(Q, reference, before, result, delta, shown, "Q", rule)
    n += 1
    passed(name, n)


# ------------------------------------------------------------------------------- Double Q-learning


def check_double_q_update(fn: Fn) -> None:
    """Check ``fn(Q1, Q2, s, a, r, s_next, terminated, alpha, gamma, rng) -> δ``: with
    probability ½ (drawn from ``rng``) update ``Q1[s, a]`` towards
    ``r + γ Q2[s_next, argmax Q1[s_next]]``, otherwise ``Q2[s, a]`` towards
    ``r + γ Q1[s_next, argmax Q2[s_next]]``; ``r`` alone if terminated. Exactly one entry of one
    table changes, in place, and the TD error of that update is returned."""
    name = "double_q_update"
    rule = ("The table being updated CHOOSES the next action and the other table EVALUATES it: "
            "updating Q1, the target is r + γ Q2[s', argmax Q1[s']]; updating Q2, it is "
            "r + γ Q1[s', argmax Q2[s']].")
    n = 0

    # Q1[s'] = [1, 4, 2] picks action 1; Q2[s'] = [3, 0, 5] picks action 2. Every wrong
    # combination (own max, the other's max, the other's choice, the sum's choice) gives another
    # target.
    q1_rows = [[0.5, -1.0, 0.0], [1.0, 4.0, 2.0], [9.0, 9.0, 9.0]]
    q2_rows = [[1.5, 2.0, -0.5], [3.0, 0.0, 5.0], [-9.0, -9.0, -9.0]]

    def one_call(s, a, r, s_next, terminated, alpha, gamma, rng, label):
        Q1, Q2 = np.array(q1_rows), np.array(q2_rows)
        b1, b2 = Q1.copy(), Q2.copy()
        shown = (f"{name}(Q1={fmt_array(Q1)}, Q2={fmt_array(Q2)}, {label}, alpha={alpha}, "
                 f"gamma={gamma}, rng)")
        result = call(fn, name, Q1, Q2, s, a, r, s_next, terminated, alpha, gamma, rng)
        changed1, changed2 = not np.array_equal(Q1, b1), not np.array_equal(Q2, b2)
        if changed1 and changed2:
            raise AssertionError(f"{shown} changed both Q1 and Q2. Double Q-learning updates ONE "
                                 "table per step, chosen by a coin flip with probability ½.")
        if not changed1 and not changed2:
            value = result if not isinstance(result, tuple) else "a tuple"
            raise AssertionError(f"{shown} changed neither Q1 nor Q2 (it returned {value!r}). "
                                 "Update the chosen table in place and return the TD error δ.")
        first = changed1
        own, other, before = (Q1, Q2, b1) if first else (Q2, Q1, b2)
        other_before = b2 if first else b1
        target = r if terminated else r + gamma * other_before[s_next, int(np.argmax(before[s_next]))]
        delta = target - before[s, a]
        expected = before.copy()
        expected[s, a] += alpha * delta
        table = "Q1" if first else "Q2"
        _expect_update(own, expected, before, result, delta, f"{shown} (it updated {table})", table,
                       TERMINAL_HINT if terminated else rule)
        return first

    rng = np.random.default_rng(35)
    label = "s=0, a=1, r=1.0, s_next=1, terminated=False"
    picks = [one_call(0, 1, 1.0, 1, False, 0.5, 0.9, rng, label) for _ in range(40)]
    n += 1
    label = "s=0, a=2, r=-1.0, s_next=2, terminated=True"
    picks += [one_call(0, 2, -1.0, 2, True, 0.5, 0.9, rng, label) for _ in range(40)]
    n += 1
    if all(picks) or not any(picks):
        table = "Q1" if picks[0] else "Q2"
        raise AssertionError(f"{name} updated {table} in all of 80 calls. Flip a fair coin with "
                             "rng (e.g. rng.random() < 0.5) at every call to choose which table to "
                             "update: each table must learn, from half of the transitions.")

    n_calls = 4000
    counts = sum(one_call(0, 1, 1.0, 1, False, 0.5, 0.9, rng, label) for _ in range(n_calls))
    bound = 6 * math.sqrt(n_calls / 4)
    if abs(counts - n_calls / 2) > bound:
        raise AssertionError(f"{name} updated Q1 in {counts} of {n_calls} calls; expected about "
                             f"{n_calls // 2} (± {bound:.0f}): each table with probability ½.")
    n += 1

    # Every random choice from rng: the same seed gives the same choices, another seed others.
    def choices(seed: int, global_seed: int) -> list[bool]:
        generator = np.random.default_rng(seed)
        with global_generators(global_seed):
            return [one_call(0, 1, 1.0, 1, False, 0.5, 0.9, generator, label) for _ in range(60)]

    first, again, other = choices(7, 1), choices(7, 2), choices(8, 2)
    if first != again:
        raise AssertionError(f"{name} chose different tables for two generators with the same seed. "
                             "Draw the coin from the `rng` argument (rng.random()), not from np.random "
                             "or the random module: then a seed makes a run reproducible.")
    if first == other:
        raise AssertionError(f"{name} made the same 60 choices for generators with seeds 7 and 8: the "
                             "coin must come from the `rng` argument, not from a generator created "
                             "inside the function.")
    n += 1

    # Random transitions against a reference that follows the student's coin.
    rng = np.random.default_rng(36)
    Q1, Q2 = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    for step in range(300):
        s, a, s_next = int(rng.integers(0, 5)), int(rng.integers(0, 4)), int(rng.integers(0, 6))
        terminated = s_next == 5
        Q1[5], Q2[5] = rng.normal(size=4), rng.normal(size=4)
        r, alpha = float(rng.normal()), float(rng.uniform(0.01, 0.5))
        b1, b2 = Q1.copy(), Q2.copy()
        shown = f"{name}(...) at step {step + 1} of 300 random transitions (gamma=0.9)"
        result = call(fn, name, Q1, Q2, s, a, r, s_next, terminated, alpha, 0.9, rng)
        changed1 = not np.array_equal(Q1, b1)
        own, other, before, table = (Q1, b2, b1, "Q1") if changed1 else (Q2, b1, b2, "Q2")
        if changed1 and not np.array_equal(Q2, b2):
            raise AssertionError(f"{shown} changed both Q1 and Q2; update ONE table per step.")
        target = r if terminated else r + 0.9 * other[s_next, int(np.argmax(before[s_next]))]
        delta = target - before[s, a]
        expected = before.copy()
        expected[s, a] += alpha * delta
        _expect_update(own, expected, before, result, delta, f"{shown} (it updated {table})", table, rule)
    n += 1
    passed(name, n)
