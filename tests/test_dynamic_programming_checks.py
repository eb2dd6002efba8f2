"""Unit tests of notebook 02's checks (course_utils.checks.dynamic_programming): each check
passes on reference implementations (several correct styles) and fails, with a helpful message,
on plausible wrong answers of students."""

from __future__ import annotations

import numpy as np
import pytest

from check_helpers import assert_fails, assert_passes, not_implemented
from course_utils.checks import check_greedy_policy, check_policy_evaluation, check_value_iteration


# ------------------------------------------------------------------------------- policy evaluation


def evaluation_reference(P, R, policy, gamma, theta=1e-10, max_sweeps=100_000):
    V = np.zeros(len(R))
    sweeps = 0
    while sweeps < max_sweeps:
        new = (policy * (R + gamma * P @ V)).sum(axis=1)
        sweeps += 1
        delta = np.max(np.abs(new - V))
        V = new
        if delta < theta:
            break
    return V, sweeps


def evaluation_einsum(P, R, policy, gamma, theta=1e-10, max_sweeps=100_000):
    """Correct: the policy's own transition matrix and reward vector first."""
    P_pi = np.einsum("sa,sat->st", policy, P)
    R_pi = np.einsum("sa,sa->s", policy, R)
    V = np.zeros(len(R))
    for sweep in range(1, max_sweeps + 1):
        V, old = R_pi + gamma * P_pi @ V, V
        if np.abs(V - old).max() < theta:
            return V, sweep
    return V, max_sweeps


def evaluation_loops(P, R, policy, gamma, theta=1e-10, max_sweeps=100_000):
    """Correct, with Python loops (a copy of V per sweep), returning NumPy integer counts."""
    S, A = R.shape
    V = np.zeros(S)
    sweeps = np.int64(0)
    while sweeps < max_sweeps:
        new = np.zeros(S)
        for s in range(S):
            for a in range(A):
                new[s] += policy[s, a] * (R[s, a] + gamma * sum(P[s, a, t] * V[t] for t in range(S)))
        sweeps += 1
        done = max(abs(new[s] - V[s]) for s in range(S)) < theta
        V = new
        if done:
            break
    return V, sweeps


def evaluation_in_place(P, R, policy, gamma, theta=1e-10, max_sweeps=100_000):
    """Gauss-Seidel sweeps: each new value is used at once by the states after it."""
    V = np.zeros(len(R))
    sweeps = 0
    while sweeps < max_sweeps:
        delta = 0.0
        for s in range(len(R)):
            new = policy[s] @ (R[s] + gamma * P[s] @ V)
            delta = max(delta, abs(new - V[s]))
            V[s] = new
        sweeps += 1
        if delta < theta:
            break
    return V, sweeps


def evaluation_max(P, R, policy, gamma, theta=1e-10, max_sweeps=100_000):
    """Ignores the policy: value iteration."""
    V, sweeps = np.zeros(len(R)), 0
    while sweeps < max_sweeps:
        new = (R + gamma * P @ V).max(axis=1)
        sweeps, delta, V = sweeps + 1, np.abs(new - V).max(), new
        if delta < theta:
            break
    return V, sweeps


def evaluation_uniform(P, R, policy, gamma, theta=1e-10, max_sweeps=100_000):
    """Averages the actions uniformly instead of weighting by π."""
    return evaluation_reference(P, R, np.full_like(policy, 1.0 / policy.shape[1]), gamma, theta,
                                max_sweeps)


def evaluation_no_gamma(P, R, policy, gamma, theta=1e-10, max_sweeps=100_000):
    return evaluation_reference(P, R, policy, 1.0, theta, max_sweeps)


def evaluation_count_from_zero(P, R, policy, gamma, theta=1e-10, max_sweeps=100_000):
    """Off by one: does not count the sweep that detected convergence."""
    V, sweeps = evaluation_reference(P, R, policy, gamma, theta, max_sweeps)
    return V, sweeps - 1 if sweeps < max_sweeps else sweeps


def evaluation_previous_values(P, R, policy, gamma, theta=1e-10, max_sweeps=100_000):
    """Returns the values before the last sweep."""
    V, sweeps = np.zeros(len(R)), 0
    while sweeps < max_sweeps:
        new = (policy * (R + gamma * P @ V)).sum(axis=1)
        sweeps += 1
        if np.abs(new - V).max() < theta:
            break
        V = new
    return V, sweeps


def evaluation_wrong_axis(P, R, policy, gamma, theta=1e-10, max_sweeps=100_000):
    """Sums over the wrong axis of P: Σ_s P[s, a, s2] V[s] instead of Σ_s2."""
    V, sweeps = np.zeros(len(R)), 0
    while sweeps < max_sweeps:
        new = (policy * (R + gamma * np.einsum("sat,s->ta", P, V))).sum(axis=1)
        sweeps, delta, V = sweeps + 1, np.abs(new - V).max(), new
        if delta < theta:
            break
    return V, sweeps


def evaluation_ignores_max_sweeps(P, R, policy, gamma, theta=1e-10, max_sweeps=100_000):
    return evaluation_reference(P, R, policy, gamma, max(theta, 1e-12), 100_000)


def evaluation_values_only(P, R, policy, gamma, theta=1e-10, max_sweeps=100_000):
    return evaluation_reference(P, R, policy, gamma, theta, max_sweeps)[0]


def evaluation_float_count(P, R, policy, gamma, theta=1e-10, max_sweeps=100_000):
    V, sweeps = evaluation_reference(P, R, policy, gamma, theta, max_sweeps)
    return V, float(sweeps)


def evaluation_normalises_in_place(P, R, policy, gamma, theta=1e-10, max_sweeps=100_000):
    policy /= policy.sum(axis=1, keepdims=True) + 1e-3
    return evaluation_reference(P, R, policy, gamma, theta, max_sweeps)


def test_check_policy_evaluation_passes_on_references(capsys):
    for fn in (evaluation_reference, evaluation_einsum, evaluation_loops):
        assert_passes(check_policy_evaluation, fn, capsys, "policy_evaluation")


@pytest.mark.parametrize("mutant, fragments", [
    (evaluation_in_place, ["chain 2 → 1 → 0", "returned [1.0, 0.9, 0.81]", "expected [1.0, 0.0, 0.0]",
                           "PREVIOUS sweep's values"]),
    (evaluation_max, ["returned [3.0]", "expected [2.5]", "that is value iteration"]),
    (evaluation_uniform, ["returned [2.0]", "expected [2.5]", "weigh them by policy[s, a]"]),
    (evaluation_no_gamma, ["returned [3.0, 2.0]", "expected [2.8, 2.0]", "1 + γ·V(1)"]),
    (evaluation_count_from_zero, ["reported 2 sweeps; expected 3", "including the last one"]),
    (evaluation_previous_values, ["comes back forever", "returned [1.998]", "values of the LAST sweep"]),
    (evaluation_wrong_axis, ["expected [2.8, 2.0]"]),
    (evaluation_ignores_max_sweeps, ["max_sweeps=1", "expected [1.0, 0.0, 0.0]"]),
    (evaluation_values_only, ["returned only an array", "tuple (V, n_sweeps)"]),
    (evaluation_float_count, ["(the number of sweeps) is 3.0; expected an int"]),
    (evaluation_normalises_in_place, ["modified its input policy in place"]),
    (lambda P, R, policy, gamma, theta, max_sweeps: None, ["returned NoneType; expected a tuple"]),
])
def test_check_policy_evaluation_fails_on_mutants(mutant, fragments):
    assert_fails(check_policy_evaluation, mutant, "policy_evaluation", *fragments)


def test_check_policy_evaluation_catches_wrong_fixed_point_on_gridworld():
    """Right on the small cases, a slightly wrong γ on the gridworld (γ = 1 there)."""
    def wrong_on_grid(P, R, policy, gamma, theta=1e-10, max_sweeps=100_000):
        if len(R) == 16:
            gamma = 0.99
        return evaluation_reference(P, R, policy, gamma, theta, max_sweeps)

    assert_fails(check_policy_evaluation, wrong_on_grid, "gridworld")


def test_check_policy_evaluation_in_place_also_caught_on_gridworld():
    """Gauss-Seidel sweeps disagree with Figure 4.1's synchronous values from k = 1 on."""
    def in_place_only_on_grid(P, R, policy, gamma, theta=1e-10, max_sweeps=100_000):
        if len(R) == 16:
            return evaluation_in_place(P, R, policy, gamma, theta, max_sweeps)
        return evaluation_reference(P, R, policy, gamma, theta, max_sweeps)

    assert_fails(check_policy_evaluation, in_place_only_on_grid, "max_sweeps=1",
                 "returned V[2] = -1.25; expected -1", "PREVIOUS sweep's values")


def test_check_policy_evaluation_not_implemented():
    assert_fails(check_policy_evaluation, not_implemented, "policy_evaluation is not implemented")


# ------------------------------------------------------------------------------- greedy policy


def greedy_reference(P, R, V, gamma):
    q = R + gamma * P @ V
    return np.argmax(q >= q.max(axis=1, keepdims=True) - 1e-9, axis=1)


def greedy_loops(P, R, V, gamma):
    """Correct, with loops and an explicit tie rule."""
    S, A = R.shape
    actions = np.zeros(S, dtype=int)
    for s in range(S):
        q = [R[s, a] + gamma * float(P[s, a] @ V) for a in range(A)]
        best = max(q)
        actions[s] = next(a for a in range(A) if q[a] >= best - 1e-9)
    return actions


def greedy_isclose(P, R, V, gamma):
    """Correct: np.isclose with an absolute tolerance of 1e-9 and no relative one."""
    q = np.einsum("sat,t->sa", P, V) * gamma + R
    return np.argmax(np.isclose(q, q.max(axis=1, keepdims=True), rtol=0, atol=1e-9), axis=1)


def greedy_rewards_only(P, R, V, gamma):
    return np.argmax(R, axis=1)


def greedy_no_gamma(P, R, V, gamma):
    return greedy_reference(P, R, V, 1.0)


def greedy_exact_argmax(P, R, V, gamma):
    return np.argmax(R + gamma * P @ V, axis=1)


def greedy_last_tie(P, R, V, gamma):
    q = R + gamma * P @ V
    A = q.shape[1]
    return A - 1 - np.argmax((q >= q.max(axis=1, keepdims=True) - 1e-9)[:, ::-1], axis=1)


def greedy_rounded(P, R, V, gamma):
    return np.argmax(np.round(R + gamma * P @ V, 5), axis=1)


def greedy_one_hot(P, R, V, gamma):
    return np.eye(R.shape[1])[greedy_reference(P, R, V, gamma)]


def greedy_float(P, R, V, gamma):
    return greedy_reference(P, R, V, gamma).astype(float)


def greedy_wrong_axis(P, R, V, gamma):
    return np.argmax(R + gamma * np.einsum("sat,s->ta", P, V), axis=1)


def greedy_argmin(P, R, V, gamma):
    q = R + gamma * P @ V
    return np.argmax(q <= q.min(axis=1, keepdims=True) + 1e-9, axis=1)


def greedy_list(P, R, V, gamma):
    return greedy_reference(P, R, V, gamma).tolist()


def greedy_q_aliases_r(P, R, V, gamma):
    q = R
    q += gamma * P @ V
    return greedy_reference(P, q, np.zeros_like(V), gamma)


def test_check_greedy_policy_passes_on_references(capsys):
    for fn in (greedy_reference, greedy_loops, greedy_isclose):
        assert_passes(check_greedy_policy, fn, capsys, "greedy_policy")


@pytest.mark.parametrize("mutant, fragments", [
    (greedy_rewards_only, ["returned [1, 0, 0]", "include the value of the next state"]),
    (greedy_no_gamma, ["gamma=0.4", "multiply the next state's value by gamma"]),
    (greedy_exact_argmax, ["1.000000000001", "returned [1]", "expected [0]", "within 1e-9"]),
    (greedy_last_tie, ["returned [0, 1, 1]", "all their actions tie, so action 0"]),
    (greedy_rounded, ["1.000001", "returned [0]", "do not round"]),
    (greedy_one_hot, ["shape (1, 3)", "one action index per state"]),
    (greedy_float, ["dtype float64", "integer"]),
    (greedy_wrong_axis, ["returned [1, 0, 0]", "include the value of the next state"]),
    (greedy_argmin, ["returned [0]", "expected [1]", "largest q(s, a)"]),
    (greedy_list, ["returned list; expected a numpy.ndarray"]),
    (greedy_q_aliases_r, ["modified its input R in place"]),
    (lambda P, R, V, gamma: None, ["returned NoneType; expected a numpy.ndarray"]),
])
def test_check_greedy_policy_fails_on_mutants(mutant, fragments):
    assert_fails(check_greedy_policy, mutant, "greedy_policy", *fragments)


def test_check_greedy_policy_catches_column_mix_up_on_gridworld():
    """Left and right swapped: right on every symmetric small case, wrong on the gridworld."""
    def swapped(P, R, V, gamma):
        actions = greedy_reference(P, R, V, gamma)
        if len(R) == 16:
            actions = np.array([2, 1, 0, 3])[actions]
        return actions

    assert_fails(check_greedy_policy, swapped, "gridworld", "0 left, 1 down, 2 right, 3 up")


def test_check_greedy_policy_not_implemented():
    assert_fails(check_greedy_policy, not_implemented, "greedy_policy is not implemented")


# ------------------------------------------------------------------------------- value iteration


def vi_reference(P, R, gamma, theta=1e-10, max_sweeps=100_000):
    V = np.zeros(len(R))
    for sweep in range(1, max_sweeps + 1):
        new = np.max(R + gamma * P @ V, axis=1)
        delta = np.abs(new - V).max()
        V = new
        if delta < theta:
            return V, sweep
    return V, max_sweeps


def vi_loops(P, R, gamma, theta=1e-10, max_sweeps=100_000):
    """Correct, with loops and a copy per sweep."""
    S, A = R.shape
    V, sweeps = [0.0] * S, 0
    while sweeps < max_sweeps:
        new = [max(R[s, a] + gamma * sum(P[s, a, t] * V[t] for t in range(S)) for a in range(A))
               for s in range(S)]
        sweeps += 1
        delta = max(abs(x - y) for x, y in zip(new, V))
        V = new
        if delta < theta:
            break
    return np.array(V), sweeps


def vi_via_evaluation(P, R, gamma, theta=1e-10, max_sweeps=100_000):
    """Correct: one sweep of evaluating the greedy policy, written with a one-hot policy."""
    S, A = R.shape
    V, sweeps = np.zeros(S), 0
    while sweeps < max_sweeps:
        q = R + gamma * P @ V
        policy = np.eye(A)[q.argmax(axis=1)]
        new = (policy * q).sum(axis=1)
        sweeps += 1
        delta, V = np.abs(new - V).max(), new
        if delta < theta:
            break
    return V, sweeps


def vi_mean(P, R, gamma, theta=1e-10, max_sweeps=100_000):
    return evaluation_reference(P, R, np.full(R.shape, 1.0 / R.shape[1]), gamma, theta, max_sweeps)


def vi_min(P, R, gamma, theta=1e-10, max_sweeps=100_000):
    V, sweeps = np.zeros(len(R)), 0
    while sweeps < max_sweeps:
        new = (R + gamma * P @ V).min(axis=1)
        sweeps, delta, V = sweeps + 1, np.abs(new - V).max(), new
        if delta < theta:
            break
    return V, sweeps


def vi_in_place(P, R, gamma, theta=1e-10, max_sweeps=100_000):
    V, sweeps = np.zeros(len(R)), 0
    while sweeps < max_sweeps:
        delta = 0.0
        for s in range(len(R)):
            new = (R[s] + gamma * P[s] @ V).max()
            delta, V[s] = max(delta, abs(new - V[s])), new
        sweeps += 1
        if delta < theta:
            break
    return V, sweeps


def vi_no_gamma(P, R, gamma, theta=1e-10, max_sweeps=100_000):
    return vi_reference(P, R, 1.0, theta, min(max_sweeps, 10_000))


def vi_count_from_zero(P, R, gamma, theta=1e-10, max_sweeps=100_000):
    V, sweeps = vi_reference(P, R, gamma, theta, max_sweeps)
    return V, sweeps - 1 if sweeps < max_sweeps else sweeps


def vi_returns_policy(P, R, gamma, theta=1e-10, max_sweeps=100_000):
    V, sweeps = vi_reference(P, R, gamma, theta, max_sweeps)
    return greedy_reference(P, R, V, gamma), sweeps


def vi_wrong_axis(P, R, gamma, theta=1e-10, max_sweeps=100_000):
    V, sweeps = np.zeros(len(R)), 0
    while sweeps < max_sweeps:
        new = (R + gamma * np.einsum("sat,s->ta", P, V)).max(axis=1)
        sweeps, delta, V = sweeps + 1, np.abs(new - V).max(), new
        if delta < theta:
            break
    return V, sweeps


def vi_max_over_states(P, R, gamma, theta=1e-10, max_sweeps=100_000):
    """Maximises over the wrong axis of q (over states instead of actions)."""
    V, sweeps = np.zeros(len(R)), 0
    while sweeps < max_sweeps:
        q = R + gamma * P @ V
        new = np.resize(q.max(axis=0), len(R))
        sweeps, delta, V = sweeps + 1, np.abs(new - V).max(), new
        if delta < theta:
            break
    return V, sweeps


def vi_integer_values(P, R, gamma, theta=1e-10, max_sweeps=100_000):
    V, sweeps = vi_reference(P, R, gamma, theta, max_sweeps)
    return V.round().astype(int), sweeps


def vi_q_aliases_r(P, R, gamma, theta=1e-10, max_sweeps=100_000):
    """`q = R; q += ...` makes q another name for R, which then changes at every sweep."""
    V, sweeps = np.zeros(len(R)), 0
    while sweeps < max_sweeps:
        q = R
        with np.errstate(all="ignore"):  # R grows without bound
            q += gamma * P @ V
        new = q.max(axis=1)
        sweeps, delta, V = sweeps + 1, np.abs(new - V).max(), new
        if delta < theta:
            break
    return V, sweeps


def test_check_value_iteration_passes_on_references(capsys):
    for fn in (vi_reference, vi_loops, vi_via_evaluation):
        assert_passes(check_value_iteration, fn, capsys, "value_iteration")


@pytest.mark.parametrize("mutant, fragments", [
    (vi_mean, ["returned [2.0]", "expected [3.0]", "takes the MAXIMUM"]),
    (vi_min, ["returned [1.0]", "smallest action value"]),
    (vi_in_place, ["chain 2 → 1 → 0", "returned [1.0, 0.9, 0.81]", "PREVIOUS sweep's values"]),
    (vi_no_gamma, ["gamma=0.9", "expected [10.0]", "1/(1 − γ) = 10"]),
    (vi_count_from_zero, ["reported 1 sweeps; expected 2", "including the last one"]),
    (vi_returns_policy, ["dtype int64; expected floats"]),
    (vi_integer_values, ["dtype int64; expected floats"]),
    (vi_wrong_axis, ["gridworld", "max_sweeps=2", "steps to the nearest terminal corner"]),
    (vi_max_over_states, ["returned [1.0]", "expected [3.0]", "max_a q(s, a)"]),
    (vi_q_aliases_r, ["modified its input R in place"]),
    (lambda P, R, gamma, theta, max_sweeps: V_only(P, R, gamma, theta, max_sweeps),
     ["returned only an array"]),
])
def test_check_value_iteration_fails_on_mutants(mutant, fragments):
    assert_fails(check_value_iteration, mutant, "value_iteration", *fragments)


def V_only(P, R, gamma, theta, max_sweeps):
    return vi_reference(P, R, gamma, theta, max_sweeps)[0]


def test_check_value_iteration_catches_wrong_axis_on_random_mdp():
    """An axis mix-up that only shows where P is not symmetric: the optimality residual."""
    def wrong_only_on_random(P, R, gamma, theta=1e-10, max_sweeps=100_000):
        if len(R) == 5:
            return vi_wrong_axis(P, R, gamma, theta, max_sweeps)
        return vi_reference(P, R, gamma, theta, max_sweeps)

    assert_fails(check_value_iteration, wrong_only_on_random, "random MDP",
                 "Bellman optimality equation")


def test_check_value_iteration_catches_early_stop_on_gridworld():
    """Stopping one sweep early (delta <= theta on an exact fixed point is the same rule, but a
    loop that stops when V_new equals V before counting it is not)."""
    def stops_before_counting(P, R, gamma, theta=1e-10, max_sweeps=100_000):
        V, sweeps = vi_reference(P, R, gamma, theta, max_sweeps)
        if len(R) == 16 and sweeps < max_sweeps:
            sweeps -= 1
        return V, sweeps

    assert_fails(check_value_iteration, stops_before_counting, "gridworld",
                 "reported 3 sweeps; expected 4")


def test_check_value_iteration_not_implemented():
    assert_fails(check_value_iteration, not_implemented, "value_iteration is not implemented")
