"""Unit tests of notebook 03's checks (course_utils.checks.monte_carlo_td): each check
passes on reference implementations (several correct styles) and fails, with a helpful message,
on plausible wrong answers of students."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from check_helpers import assert_fails, assert_passes
from course_utils.checks import (
    check_double_q_update,
    check_expected_sarsa_update,
    check_first_visit_mc_prediction,
    check_q_learning_update,
    check_sarsa_update,
    check_td0_update,
)


# ------------------------------------------------------------------------------- first-visit MC


def mc_reference(episodes, n_states, gamma):
    """Backward pass per episode; the earliest visit overwrites later ones."""
    totals, counts = np.zeros(n_states), np.zeros(n_states)
    for states, rewards in episodes:
        g, first = 0.0, {}
        for t in reversed(range(len(states))):
            g = rewards[t] + gamma * g
            first[states[t]] = g
        for s, value in first.items():
            totals[s] += value
            counts[s] += 1
    return np.where(counts > 0, totals / np.maximum(counts, 1), 0.0)


def mc_forward_returns_list(episodes, n_states, gamma):
    """Correct, in the book's style: lists of returns, 'if S_t not in S_0…S_{t−1}'."""
    returns = defaultdict(list)
    for states, rewards in episodes:
        states, rewards = list(states), list(rewards)
        T = len(states)
        g = 0.0
        for t in range(T - 1, -1, -1):
            g = gamma * g + rewards[t]
            if states[t] not in states[:t]:
                returns[states[t]].append(g)
    V = np.zeros(n_states)
    for s, values in returns.items():
        V[s] = np.mean(values)
    return V


def mc_incremental(episodes, n_states, gamma):
    """Correct, with incremental means and explicit discount powers."""
    V, N = np.zeros(n_states), np.zeros(n_states)
    for states, rewards in episodes:
        seen = set()
        for t, s in enumerate(states):
            if s in seen:
                continue
            seen.add(s)
            g = sum(gamma ** (k - t) * rewards[k] for k in range(t, len(rewards)))
            N[s] += 1
            V[s] += (g - V[s]) / N[s]
    return V


def mc_every_visit(episodes, n_states, gamma):
    totals, counts = np.zeros(n_states), np.zeros(n_states)
    for states, rewards in episodes:
        g = 0.0
        for t in reversed(range(len(states))):
            g = rewards[t] + gamma * g
            totals[states[t]] += g
            counts[states[t]] += 1
    return np.where(counts > 0, totals / np.maximum(counts, 1), 0.0)


def mc_last_visit(episodes, n_states, gamma):
    totals, counts = np.zeros(n_states), np.zeros(n_states)
    for states, rewards in episodes:
        g, returns = 0.0, []
        for t in reversed(range(len(states))):
            g = rewards[t] + gamma * g
            returns.append((states[t], g))
        last = {}
        for s, value in reversed(returns):  # forward in time: later visits overwrite
            last[s] = value
        for s, value in last.items():
            totals[s] += value
            counts[s] += 1
    return np.where(counts > 0, totals / np.maximum(counts, 1), 0.0)


def mc_forward_cumsum(episodes, n_states, gamma):
    """Sums the rewards BEFORE the visit instead of after it."""
    totals, counts = np.zeros(n_states), np.zeros(n_states)
    for states, rewards in episodes:
        g, seen = 0.0, set()
        for t, s in enumerate(states):
            g = g + gamma ** t * rewards[t]
            if s not in seen:
                seen.add(s)
                totals[s] += g
                counts[s] += 1
    return np.where(counts > 0, totals / np.maximum(counts, 1), 0.0)


def mc_absolute_discount(episodes, n_states, gamma):
    """γ^k instead of γ^(k−t)."""
    totals, counts = np.zeros(n_states), np.zeros(n_states)
    for states, rewards in episodes:
        seen = set()
        for t, s in enumerate(states):
            if s not in seen:
                seen.add(s)
                totals[s] += sum(gamma ** k * rewards[k] for k in range(t, len(rewards)))
                counts[s] += 1
    return np.where(counts > 0, totals / np.maximum(counts, 1), 0.0)


def mc_divide_by_episodes(episodes, n_states, gamma):
    totals = np.zeros(n_states)
    for states, rewards in episodes:
        g, first = 0.0, {}
        for t in reversed(range(len(states))):
            g = rewards[t] + gamma * g
            first[states[t]] = g
        for s, value in first.items():
            totals[s] += value
    return totals / len(episodes)


def mc_return_carries_over(episodes, n_states, gamma):
    """The return is not reset between episodes."""
    totals, counts = np.zeros(n_states), np.zeros(n_states)
    g = 0.0
    for states, rewards in episodes:
        first = {}
        for t in reversed(range(len(states))):
            g = rewards[t] + gamma * g
            first[states[t]] = g
        for s, value in first.items():
            totals[s] += value
            counts[s] += 1
    return np.where(counts > 0, totals / np.maximum(counts, 1), 0.0)


def mc_nan_for_unvisited(episodes, n_states, gamma):
    totals, counts = np.zeros(n_states), np.zeros(n_states)
    for states, rewards in episodes:
        g, first = 0.0, {}
        for t in reversed(range(len(states))):
            g = rewards[t] + gamma * g
            first[states[t]] = g
        for s, value in first.items():
            totals[s] += value
            counts[s] += 1
    with np.errstate(invalid="ignore"):
        return totals / counts


def mc_excludes_own_reward(episodes, n_states, gamma):
    """G_t without r_t: off by one step."""
    totals, counts = np.zeros(n_states), np.zeros(n_states)
    for states, rewards in episodes:
        g, first = 0.0, {}
        for t in reversed(range(len(states))):
            first[states[t]] = g
            g = rewards[t] + gamma * g
        for s, value in first.items():
            totals[s] += value
            counts[s] += 1
    return np.where(counts > 0, totals / np.maximum(counts, 1), 0.0)


def mc_pops_input(episodes, n_states, gamma):
    """Consumes the episodes' lists while computing (correct values otherwise)."""
    V = mc_reference([(list(s), list(r)) for s, r in episodes], n_states, gamma)
    for states, rewards in episodes:
        if isinstance(states, list):
            states.clear()
    return V


def mc_dict(episodes, n_states, gamma):
    V = mc_reference(episodes, n_states, gamma)
    return {s: V[s] for s in range(n_states)}


def test_check_first_visit_mc_prediction_passes_on_references(capsys):
    for fn in (mc_reference, mc_forward_returns_list, mc_incremental):
        assert_passes(check_first_visit_mc_prediction, fn, capsys, "first_visit_mc_prediction")


@pytest.mark.parametrize("mutant, fragments", [
    (mc_every_visit, ["returned [8.5, 9.0, 4.0, 0.0]", "EVERY-visit"]),
    (mc_last_visit, ["returned [7.0, 9.0, 4.0, 0.0]", "LAST visit"]),
    (mc_forward_cumsum, ["returned [1.0, 3.0, 10.0, 0.0]", "expected [10.0, 9.0, 4.0, 0.0]"]),
    (mc_absolute_discount, ["gamma=0.5", "returned [3.25, 2.25, 0.5, 0.0]", "γ^(k−t)"]),
    (mc_divide_by_episodes, ["returned [0.3333, 0.0, 3.3333]", "VISIT the state"]),
    (mc_return_carries_over, ["returned [1.0, 0.5, 10.0]", "start every episode's return afresh"]),
    (mc_nan_for_unvisited, ["not 0/0 = nan"]),
    (mc_excludes_own_reward, ["returned [9.0, 7.0, 0.0, 0.0]"]),
    (mc_pops_input, ["modified the episodes"]),
    (mc_dict, ["returned dict; expected a numpy.ndarray"]),
])
def test_check_first_visit_mc_prediction_fails_on_mutants(mutant, fragments):
    assert_fails(check_first_visit_mc_prediction, mutant, "first_visit_mc_prediction", *fragments)


def test_check_first_visit_mc_prediction_catches_error_only_on_random_case():
    def wrong_on_long_episodes(episodes, n_states, gamma):
        if len(episodes) > 50:
            return mc_every_visit(episodes, n_states, gamma)
        return mc_reference(episodes, n_states, gamma)

    assert_fails(check_first_visit_mc_prediction, wrong_on_long_episodes, "200 random episodes")


# ------------------------------------------------------------------------------- TD(0)


def td0_reference(V, s, r, s_next, terminated, alpha, gamma):
    target = r if terminated else r + gamma * V[s_next]
    delta = target - V[s]
    V[s] += alpha * delta
    return delta


def td0_mask_arithmetic(V, s, r, s_next, terminated, alpha, gamma):
    """Correct, with the mask as a factor (1 − terminated)."""
    delta = r + gamma * (1 - terminated) * V[s_next] - V[s]
    V[s] = V[s] + alpha * delta
    return float(delta)


def td0_no_mask(V, s, r, s_next, terminated, alpha, gamma):
    delta = r + gamma * V[s_next] - V[s]
    V[s] += alpha * delta
    return delta


def td0_wrong_sign(V, s, r, s_next, terminated, alpha, gamma):
    target = r if terminated else r + gamma * V[s_next]
    delta = V[s] - target
    V[s] += alpha * delta
    return delta


def td0_updates_next_state(V, s, r, s_next, terminated, alpha, gamma):
    target = r if terminated else r + gamma * V[s_next]
    delta = target - V[s]
    V[s_next] += alpha * delta
    return delta


def td0_bootstraps_from_self(V, s, r, s_next, terminated, alpha, gamma):
    target = r if terminated else r + gamma * V[s]
    delta = target - V[s]
    V[s] += alpha * delta
    return delta


def td0_discounts_reward(V, s, r, s_next, terminated, alpha, gamma):
    target = gamma * r if terminated else gamma * (r + V[s_next])
    delta = target - V[s]
    V[s] += alpha * delta
    return delta


def td0_returns_copy(V, s, r, s_next, terminated, alpha, gamma):
    new = V.copy()
    td0_reference(new, s, r, s_next, terminated, alpha, gamma)
    return new


def td0_returns_new_value(V, s, r, s_next, terminated, alpha, gamma):
    td0_reference(V, s, r, s_next, terminated, alpha, gamma)
    return V[s]


def td0_returns_nothing(V, s, r, s_next, terminated, alpha, gamma):
    td0_reference(V, s, r, s_next, terminated, alpha, gamma)


def td0_delta_after_update(V, s, r, s_next, terminated, alpha, gamma):
    td0_reference(V, s, r, s_next, terminated, alpha, gamma)
    return (r if terminated else r + gamma * V[s_next]) - V[s]


def td0_no_step_size(V, s, r, s_next, terminated, alpha, gamma):
    target = r if terminated else r + gamma * V[s_next]
    delta = target - V[s]
    V[s] += delta
    return delta


def test_check_td0_update_passes_on_references(capsys):
    for fn in (td0_reference, td0_mask_arithmetic):
        assert_passes(check_td0_update, fn, capsys, "td0_update")


@pytest.mark.parametrize("mutant, fragments", [
    (td0_no_mask, ["terminated=True", "the target is the reward alone"]),
    (td0_wrong_sign, ["V after the call returned", "expected [0.0, 0.3, 1.155, 0.9, 7.0]"]),
    (td0_updates_next_state, ["returned [0.0, 0.3, 0.5, 1.555, 7.0]"]),
    (td0_bootstraps_from_self, ["V after the call returned [0.0, 0.3, 0.975, 0.9, 7.0]"]),
    (td0_discounts_reward, ["expected [0.0, 0.3, 1.155, 0.9, 7.0]"]),
    (td0_returns_copy, ["returned a new table and left V unchanged", "IN PLACE"]),
    (td0_returns_new_value, ["returned 1.1550", "That is the new estimate"]),
    (td0_returns_nothing, ["returned None", "TD error"]),
    (td0_delta_after_update, ["returned 0.6550; expected the TD error δ = 1.3100", "BEFORE the update"]),
    (td0_no_step_size, ["expected [0.0, 0.3, 1.155, 0.9, 7.0]"]),
])
def test_check_td0_update_fails_on_mutants(mutant, fragments):
    assert_fails(check_td0_update, mutant, "td0_update", *fragments)


def test_check_td0_update_catches_error_only_on_random_case():
    def ignores_gamma_below_one(V, s, r, s_next, terminated, alpha, gamma):
        return td0_reference(V, s, r, s_next, terminated, alpha, 1.0 if gamma == 0.95 else gamma)

    assert_fails(check_td0_update, ignores_gamma_below_one, "300 random transitions")


# ------------------------------------------------------------------------------- SARSA


def sarsa_reference(Q, s, a, r, s_next, a_next, terminated, alpha, gamma):
    target = r if terminated else r + gamma * Q[s_next, a_next]
    delta = target - Q[s, a]
    Q[s, a] += alpha * delta
    return delta


def sarsa_mask_arithmetic(Q, s, a, r, s_next, a_next, terminated, alpha, gamma):
    delta = r + gamma * Q[s_next][a_next] * (not terminated) - Q[s][a]
    Q[s][a] += alpha * delta
    return delta


def sarsa_uses_max(Q, s, a, r, s_next, a_next, terminated, alpha, gamma):
    target = r if terminated else r + gamma * Q[s_next].max()
    delta = target - Q[s, a]
    Q[s, a] += alpha * delta
    return delta


def sarsa_no_mask(Q, s, a, r, s_next, a_next, terminated, alpha, gamma):
    delta = r + gamma * Q[s_next, a_next] - Q[s, a]
    Q[s, a] += alpha * delta
    return delta


def sarsa_same_state(Q, s, a, r, s_next, a_next, terminated, alpha, gamma):
    """Q[s, a_next] instead of Q[s_next, a_next]."""
    target = r if terminated else r + gamma * Q[s, a_next]
    delta = target - Q[s, a]
    Q[s, a] += alpha * delta
    return delta


def sarsa_updates_next_pair(Q, s, a, r, s_next, a_next, terminated, alpha, gamma):
    target = r if terminated else r + gamma * Q[s_next, a_next]
    delta = target - Q[s, a]
    Q[s_next, a_next] += alpha * delta
    return delta


def sarsa_updates_row(Q, s, a, r, s_next, a_next, terminated, alpha, gamma):
    target = r if terminated else r + gamma * Q[s_next, a_next]
    delta = target - Q[s, a]
    Q[s] += alpha * (target - Q[s])
    return delta


def sarsa_returns_copy(Q, s, a, r, s_next, a_next, terminated, alpha, gamma):
    new = Q.copy()
    sarsa_reference(new, s, a, r, s_next, a_next, terminated, alpha, gamma)
    return new


def test_check_sarsa_update_passes_on_references(capsys):
    for fn in (sarsa_reference, sarsa_mask_arithmetic):
        assert_passes(check_sarsa_update, fn, capsys, "sarsa_update")


@pytest.mark.parametrize("mutant, fragments", [
    (sarsa_uses_max, ["a_next=2", "the action actually chosen next"]),
    (sarsa_no_mask, ["terminated=True", "the target is the reward alone"]),
    (sarsa_same_state, ["expected [[0.0, 1.9, 3.0], [1.0, 5.0, 2.0], [4.0, 4.0, 4.0]]"]),
    (sarsa_updates_next_pair, ["Q after the call returned [[0.0, 1.0, 3.0], [1.0, 5.0, 2.9]"]),
    (sarsa_updates_row, ["expected [[0.0, 1.9, 3.0]"]),
    (sarsa_returns_copy, ["returned a new table and left Q unchanged"]),
])
def test_check_sarsa_update_fails_on_mutants(mutant, fragments):
    assert_fails(check_sarsa_update, mutant, "sarsa_update", *fragments)


# ------------------------------------------------------------------------------- Q-learning


def ql_reference(Q, s, a, r, s_next, terminated, alpha, gamma):
    target = r if terminated else r + gamma * np.max(Q[s_next])
    delta = target - Q[s, a]
    Q[s, a] += alpha * delta
    return delta


def ql_argmax_then_index(Q, s, a, r, s_next, terminated, alpha, gamma):
    """Correct: the value of the greedy action, via argmax."""
    best = Q[s_next, np.argmax(Q[s_next])] * (0.0 if terminated else 1.0)
    delta = r + gamma * best - Q[s, a]
    Q[s, a] += alpha * delta
    return delta


def ql_argmax_as_value(Q, s, a, r, s_next, terminated, alpha, gamma):
    target = r if terminated else r + gamma * np.argmax(Q[s_next])
    delta = target - Q[s, a]
    Q[s, a] += alpha * delta
    return delta


def ql_mean(Q, s, a, r, s_next, terminated, alpha, gamma):
    target = r if terminated else r + gamma * Q[s_next].mean()
    delta = target - Q[s, a]
    Q[s, a] += alpha * delta
    return delta


def ql_no_mask(Q, s, a, r, s_next, terminated, alpha, gamma):
    delta = r + gamma * Q[s_next].max() - Q[s, a]
    Q[s, a] += alpha * delta
    return delta


def ql_current_state_max(Q, s, a, r, s_next, terminated, alpha, gamma):
    target = r if terminated else r + gamma * Q[s].max()
    delta = target - Q[s, a]
    Q[s, a] += alpha * delta
    return delta


def ql_global_max(Q, s, a, r, s_next, terminated, alpha, gamma):
    target = r if terminated else r + gamma * Q.max()
    delta = target - Q[s, a]
    Q[s, a] += alpha * delta
    return delta


def ql_max_with_zero(Q, s, a, r, s_next, terminated, alpha, gamma):
    """max(0, ...) creeps in, e.g. from initialising the running best at 0."""
    best = 0.0
    for value in Q[s_next]:
        best = max(best, value)
    target = r if terminated else r + gamma * best
    delta = target - Q[s, a]
    Q[s, a] += alpha * delta
    return delta


def test_check_q_learning_update_passes_on_references(capsys):
    for fn in (ql_reference, ql_argmax_then_index):
        assert_passes(check_q_learning_update, fn, capsys, "q_learning_update")


@pytest.mark.parametrize("mutant, fragments", [
    (ql_argmax_as_value, ["expected [[0.0, 1.0, 3.75]", "the VALUE of the best next action"]),
    (ql_mean, ["returned [[0.0, 1.0, 2.7]", "expected [[0.0, 1.0, 3.75]"]),
    (ql_no_mask, ["terminated=True", "the target is the reward alone"]),
    (ql_current_state_max, ["returned [[0.0, 1.0, 2.4]", "expected [[0.0, 1.0, 3.75]"]),
    (ql_global_max, ["s_next=2", "expected [[0.0, 1.0, 2.0], [0.5, 5.0, 2.0]"]),
    (ql_max_with_zero, ["The maximum of negative values is negative"]),
])
def test_check_q_learning_update_fails_on_mutants(mutant, fragments):
    assert_fails(check_q_learning_update, mutant, "q_learning_update", *fragments)


# ------------------------------------------------------------------------------- Expected SARSA


def es_reference(Q, s, a, r, s_next, terminated, alpha, gamma, epsilon):
    row = Q[s_next]
    expectation = (1 - epsilon) * row.max() + epsilon * row.mean()
    target = r if terminated else r + gamma * expectation
    delta = target - Q[s, a]
    Q[s, a] += alpha * delta
    return delta


def es_explicit_probabilities(Q, s, a, r, s_next, terminated, alpha, gamma, epsilon):
    """Correct: π as a vector, the greedy mass split among tied actions."""
    row = Q[s_next]
    probs = np.full(len(row), epsilon / len(row))
    best = np.flatnonzero(row == row.max())
    probs[best] += (1 - epsilon) / len(best)
    target = r + (0.0 if terminated else gamma * probs @ row)
    delta = target - Q[s, a]
    Q[s, a] += alpha * delta
    return delta


def es_first_argmax(Q, s, a, r, s_next, terminated, alpha, gamma, epsilon):
    """Correct: all the greedy mass on np.argmax's pick (ties have equal values)."""
    row = Q[s_next]
    probs = np.full(len(row), epsilon / len(row))
    probs[np.argmax(row)] += 1 - epsilon
    target = r if terminated else r + gamma * np.sum(probs * row)
    delta = target - Q[s, a]
    Q[s, a] += alpha * delta
    return delta


def es_uniform(Q, s, a, r, s_next, terminated, alpha, gamma, epsilon):
    return es_reference(Q, s, a, r, s_next, terminated, alpha, gamma, 1.0)


def es_greedy(Q, s, a, r, s_next, terminated, alpha, gamma, epsilon):
    return es_reference(Q, s, a, r, s_next, terminated, alpha, gamma, 0.0)


def es_explores_others_only(Q, s, a, r, s_next, terminated, alpha, gamma, epsilon):
    """Exploration spreads ε over the NON-greedy actions only."""
    row = Q[s_next]
    best = np.argmax(row)
    others = np.delete(row, best)
    target = r if terminated else r + gamma * ((1 - epsilon) * row[best] + epsilon * others.mean())
    delta = target - Q[s, a]
    Q[s, a] += alpha * delta
    return delta


def es_forgets_greedy_share(Q, s, a, r, s_next, terminated, alpha, gamma, epsilon):
    """π(greedy) = 1 − ε, forgetting its share ε/|A| of the exploration."""
    row = Q[s_next]
    probs = np.full(len(row), epsilon / len(row))
    probs[np.argmax(row)] = 1 - epsilon
    target = r if terminated else r + gamma * probs @ row
    delta = target - Q[s, a]
    Q[s, a] += alpha * delta
    return delta


def es_no_mask(Q, s, a, r, s_next, terminated, alpha, gamma, epsilon):
    return es_reference(Q, s, a, r, s_next, False, alpha, gamma, epsilon)


def es_epsilon_swapped(Q, s, a, r, s_next, terminated, alpha, gamma, epsilon):
    return es_reference(Q, s, a, r, s_next, terminated, alpha, gamma, 1 - epsilon)


def test_check_expected_sarsa_update_passes_on_references(capsys):
    for fn in (es_reference, es_explicit_probabilities, es_first_argmax):
        assert_passes(check_expected_sarsa_update, fn, capsys, "expected_sarsa_update")


@pytest.mark.parametrize("mutant, fragments", [
    (es_uniform, ["epsilon=0.2", "(1 − ε) max Q[s'] + ε mean Q[s']"]),
    (es_greedy, ["epsilon=0.2", "probability 1 − ε + ε/|A|"]),
    (es_explores_others_only, ["epsilon=0.2", "exploration may pick it too"]),
    (es_forgets_greedy_share, ["epsilon=0.2", "1 − ε + ε/|A|"]),
    (es_no_mask, ["terminated=True", "the target is the reward alone"]),
    (es_epsilon_swapped, ["epsilon=0.2"]),
])
def test_check_expected_sarsa_update_fails_on_mutants(mutant, fragments):
    assert_fails(check_expected_sarsa_update, mutant, "expected_sarsa_update", *fragments)


# ------------------------------------------------------------------------------- Double Q-learning


def dq_reference(Q1, Q2, s, a, r, s_next, terminated, alpha, gamma, rng):
    if rng.random() < 0.5:
        Q1, Q2 = Q2, Q1  # update Q2, evaluated by Q1
    target = r if terminated else r + gamma * Q2[s_next, np.argmax(Q1[s_next])]
    delta = target - Q1[s, a]
    Q1[s, a] += alpha * delta
    return delta


def dq_two_branches(Q1, Q2, s, a, r, s_next, terminated, alpha, gamma, rng):
    """Correct, written out as the book's two branches, with rng.integers for the coin."""
    future = 0.0 if terminated else 1.0
    if rng.integers(2) == 0:
        delta = r + gamma * future * Q2[s_next][np.argmax(Q1[s_next])] - Q1[s][a]
        Q1[s][a] += alpha * delta
    else:
        delta = r + gamma * future * Q1[s_next][np.argmax(Q2[s_next])] - Q2[s][a]
        Q2[s][a] += alpha * delta
    return delta


def dq_always_first(Q1, Q2, s, a, r, s_next, terminated, alpha, gamma, rng):
    target = r if terminated else r + gamma * Q2[s_next, np.argmax(Q1[s_next])]
    delta = target - Q1[s, a]
    Q1[s, a] += alpha * delta
    return delta


def dq_both_tables(Q1, Q2, s, a, r, s_next, terminated, alpha, gamma, rng):
    b1, b2 = Q1.copy(), Q2.copy()
    dq_always_first(Q1, b2, s, a, r, s_next, terminated, alpha, gamma, rng)
    return dq_always_first(Q2, b1, s, a, r, s_next, terminated, alpha, gamma, rng)


def dq_own_max(Q1, Q2, s, a, r, s_next, terminated, alpha, gamma, rng):
    """Plain Q-learning on the chosen table."""
    if rng.random() < 0.5:
        Q1, Q2 = Q2, Q1
    target = r if terminated else r + gamma * Q1[s_next].max()
    delta = target - Q1[s, a]
    Q1[s, a] += alpha * delta
    return delta


def dq_other_max(Q1, Q2, s, a, r, s_next, terminated, alpha, gamma, rng):
    """The other table both chooses and evaluates."""
    if rng.random() < 0.5:
        Q1, Q2 = Q2, Q1
    target = r if terminated else r + gamma * Q2[s_next].max()
    delta = target - Q1[s, a]
    Q1[s, a] += alpha * delta
    return delta


def dq_roles_swapped(Q1, Q2, s, a, r, s_next, terminated, alpha, gamma, rng):
    """The other table chooses, the updated one evaluates."""
    if rng.random() < 0.5:
        Q1, Q2 = Q2, Q1
    target = r if terminated else r + gamma * Q1[s_next, np.argmax(Q2[s_next])]
    delta = target - Q1[s, a]
    Q1[s, a] += alpha * delta
    return delta


def dq_sum_argmax(Q1, Q2, s, a, r, s_next, terminated, alpha, gamma, rng):
    """The behaviour policy's choice (argmax of Q1 + Q2) instead of the updated table's."""
    best = np.argmax(Q1[s_next] + Q2[s_next])
    if rng.random() < 0.5:
        Q1, Q2 = Q2, Q1
    target = r if terminated else r + gamma * Q2[s_next, best]
    delta = target - Q1[s, a]
    Q1[s, a] += alpha * delta
    return delta


def dq_no_mask(Q1, Q2, s, a, r, s_next, terminated, alpha, gamma, rng):
    return dq_reference(Q1, Q2, s, a, r, s_next, False, alpha, gamma, rng)


def dq_global_numpy(Q1, Q2, s, a, r, s_next, terminated, alpha, gamma, rng):
    return dq_reference(Q1, Q2, s, a, r, s_next, terminated, alpha, gamma, np.random)


def dq_fixed_seed(Q1, Q2, s, a, r, s_next, terminated, alpha, gamma, rng):
    return dq_reference(Q1, Q2, s, a, r, s_next, terminated, alpha, gamma, np.random.default_rng(0))


def dq_biased_coin(Q1, Q2, s, a, r, s_next, terminated, alpha, gamma, rng):
    if rng.random() < 0.9:
        Q1, Q2 = Q2, Q1
    target = r if terminated else r + gamma * Q2[s_next, np.argmax(Q1[s_next])]
    delta = target - Q1[s, a]
    Q1[s, a] += alpha * delta
    return delta


def dq_returns_target(Q1, Q2, s, a, r, s_next, terminated, alpha, gamma, rng):
    if rng.random() < 0.5:
        Q1, Q2 = Q2, Q1
    target = r if terminated else r + gamma * Q2[s_next, np.argmax(Q1[s_next])]
    Q1[s, a] += alpha * (target - Q1[s, a])
    return target


def test_check_double_q_update_passes_on_references(capsys):
    for fn in (dq_reference, dq_two_branches):
        assert_passes(check_double_q_update, fn, capsys, "double_q_update")


@pytest.mark.parametrize("mutant, fragments", [
    (dq_always_first, ["updated Q1 in all of 80 calls", "Flip a fair coin"]),
    (dq_both_tables, ["changed both Q1 and Q2"]),
    (dq_own_max, ["s_next=1", "CHOOSES the next action and the other table EVALUATES it"]),
    (dq_other_max, ["s_next=1", "CHOOSES the next action"]),
    (dq_roles_swapped, ["s_next=1", "CHOOSES the next action"]),
    (dq_sum_argmax, ["s_next=1", "CHOOSES the next action"]),
    (dq_no_mask, ["terminated=True", "the target is the reward alone"]),
    (dq_global_numpy, ["same seed", "`rng` argument"]),
    (dq_fixed_seed, ["in all of 80 calls"]),
    (dq_biased_coin, ["calls; expected about 2000"]),
    (dq_returns_target, ["expected the TD error δ"]),
])
def test_check_double_q_update_fails_on_mutants(mutant, fragments):
    assert_fails(check_double_q_update, mutant, "double_q_update", *fragments)
