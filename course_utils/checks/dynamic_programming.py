"""Checks of notebook 02's exercises: policy evaluation, greedy policy improvement and value
iteration, all on NumPy arrays.

The exercises share one representation of a finite MDP (``course_utils.envs.transition_arrays``):
``P`` of shape ``(S, A, S)``, where ``P[s, a, s2]`` is the probability of moving to ``s2`` *with
the episode going on* (rows of terminating transitions sum to less than 1, terminal states have
zero rows), and ``R`` of shape ``(S, A)``, the expected reward. A policy is an ``(S, A)`` array of
probabilities ``π(a|s)``; a deterministic policy from ``greedy_policy`` is an ``(S,)`` array of
action indices.

The specifications the checks hold the functions to:

* ``policy_evaluation(P, R, policy, gamma, theta, max_sweeps) -> (V, n_sweeps)`` and
  ``value_iteration(P, R, gamma, theta, max_sweeps) -> (V, n_sweeps)`` start from ``V = 0`` and
  do *synchronous* sweeps (every new value from the previous sweep's values); they stop after
  the first sweep whose largest change ``max |V_new − V|`` is below ``theta``, or after
  ``max_sweeps`` sweeps, and return the last sweep's values with the number of sweeps done.
* ``greedy_policy(P, R, V, gamma) -> actions`` picks in every state an action maximising
  ``q(s, a) = R[s, a] + gamma · Σ P[s, a, s2] V[s2]``; actions whose ``q`` is within ``1e-9`` of
  the maximum count as tied, and ties go to the smallest action index.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from course_utils.checks.common import (
    Fn,
    call,
    expect_array,
    expect_array_close,
    expect_unchanged,
    fmt_array,
    passed,
)

__all__ = ["check_greedy_policy", "check_policy_evaluation", "check_value_iteration"]

TIE_TOLERANCE = 1e-9


# ------------------------------------------------------------------------------- reference code


def _sweeps(backup, n_states: int, theta: float, max_sweeps: int) -> tuple[np.ndarray, int]:
    values = np.zeros(n_states)
    sweeps = 0
    while sweeps < max_sweeps:
        new = backup(values)
        sweeps += 1
        delta = np.abs(new - values).max()
        values = new
        if delta < theta:
            break
    return values, sweeps


def _evaluate(P, R, policy, gamma, theta=1e-10, max_sweeps=100_000):
    return _sweeps(lambda v: (policy * (R + gamma * P @ v)).sum(axis=1), len(R), theta, max_sweeps)


def _optimal(P, R, gamma, theta=1e-10, max_sweeps=100_000):
    return _sweeps(lambda v: (R + gamma * P @ v).max(axis=1), len(R), theta, max_sweeps)


def _greedy(P, R, V, gamma):
    q = R + gamma * P @ V
    return np.argmax(q >= q.max(axis=1, keepdims=True) - TIE_TOLERANCE, axis=1)


# ------------------------------------------------------------------------------- small MDPs


def _chain(rewards: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """States 0, 1, …, n−1 with one action: s → s+1, and the last one ends the episode; the
    reward of leaving state s is ``rewards[s]``."""
    n = len(rewards)
    P = np.zeros((n, 1, n))
    for s in range(n - 1):
        P[s, 0, s + 1] = 1.0
    return P, np.array(rewards, dtype=float).reshape(n, 1)


def _backward_chain(n: int) -> tuple[np.ndarray, np.ndarray]:
    """States n−1 → … → 1 → 0 → end with one action; only the last step (from 0) earns 1.
    A sweep in the order 0, 1, …, n−1 that overwrites V state by state passes that reward all the
    way up in one sweep; a synchronous sweep moves it one state per sweep."""
    P = np.zeros((n, 1, n))
    for s in range(1, n):
        P[s, 0, s - 1] = 1.0
    R = np.zeros((n, 1))
    R[0, 0] = 1.0
    return P, R


def _one_state(rewards: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """One state whose actions all end the episode, with the given rewards."""
    return np.zeros((1, len(rewards), 1)), np.array([rewards], dtype=float)


def _self_loop(reward: float) -> tuple[np.ndarray, np.ndarray]:
    """One state, one action that earns ``reward`` and comes back forever."""
    return np.ones((1, 1, 1)), np.array([[reward]])


def _stay_or_leave() -> tuple[np.ndarray, np.ndarray]:
    """One state: action 0 earns 1 and stays; action 1 earns 5 and ends the episode."""
    P = np.zeros((1, 2, 1))
    P[0, 0, 0] = 1.0
    return P, np.array([[1.0, 5.0]])


def _gridworld() -> tuple[np.ndarray, np.ndarray]:
    """Sutton & Barto's Example 4.1 (4 × 4, corners terminal, −1 per move)."""
    from course_utils.envs.tabular import GridWorldEnv, transition_arrays

    return transition_arrays(GridWorldEnv())


def _random_mdp(seed: int, n_states: int, n_actions: int) -> tuple[np.ndarray, np.ndarray]:
    """A dense random MDP in which every transition ends the episode with probability 0.1–0.3."""
    rng = np.random.default_rng(seed)
    P = rng.random((n_states, n_actions, n_states))
    P *= rng.uniform(0.7, 0.9, (n_states, n_actions, 1)) / P.sum(axis=2, keepdims=True)
    return P, rng.normal(size=(n_states, n_actions))


def _random_policy(seed: int, n_states: int, n_actions: int) -> np.ndarray:
    weights = np.random.default_rng(seed).random((n_states, n_actions))
    return weights / weights.sum(axis=1, keepdims=True)


GRIDWORLD_OPTIMAL = -np.array([0, 1, 2, 3, 1, 2, 3, 2, 2, 3, 2, 1, 3, 2, 1, 0], dtype=float)
GRIDWORLD_RANDOM = -np.array([0, 14, 20, 22, 14, 18, 20, 20, 20, 20, 18, 14, 22, 20, 14, 0],
                             dtype=float)


# ------------------------------------------------------------------------------- helpers


def _copies(*arrays: np.ndarray) -> list[np.ndarray]:
    return [np.array(a, copy=True) for a in arrays]


def _expect_unchanged(before: list[np.ndarray], after: list[np.ndarray], names: list[str],
                      function: str) -> None:
    for b, a, name in zip(before, after, names):
        expect_unchanged(function, name, b, a)


def _expect_values_and_sweeps(result: Any, n_states: int, shown: str) -> tuple[np.ndarray, int]:
    """``result`` as ``(V, n_sweeps)``: a float array of shape ``(n_states,)`` and an int."""
    if isinstance(result, np.ndarray):
        raise AssertionError(f"{shown} returned only an array; expected a tuple (V, n_sweeps): "
                             "return the number of sweeps too.")
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise AssertionError(f"{shown} returned {type(result).__name__}; expected a tuple "
                             "(V, n_sweeps).")
    values = expect_array(result[0], (n_states,), f"{shown}[0] (the values)")
    if values.dtype.kind != "f":
        raise AssertionError(f"{shown}[0] (the values) has dtype {values.dtype}; expected floats "
                             "(start from np.zeros(n_states)).")
    sweeps = result[1]
    if isinstance(sweeps, (bool, np.bool_)) or not isinstance(sweeps, (int, np.integer)):
        raise AssertionError(f"{shown}[1] (the number of sweeps) is {sweeps!r}; expected an int.")
    return values, int(sweeps)


def _expect_values(values: np.ndarray, expected: np.ndarray, shown: str, hint: str = "") -> None:
    """Values close to ``expected`` (to 1e-6); for more than 12 states the message names the
    first state that differs."""
    if len(expected) <= 12:
        expect_array_close(values, expected, shown, hint)
        return
    wrong = np.flatnonzero(~np.isclose(values, expected, rtol=1e-6, atol=1e-6))
    if len(wrong):
        s = int(wrong[0])
        raise AssertionError(f"{shown} returned V[{s}] = {values[s]:.6g}; expected {expected[s]:.6g} "
                             f"({len(wrong)} of {len(expected)} states differ)."
                             + (f" {hint}" if hint else ""))


def _expect_sweeps(sweeps: int, expected: int, shown: str, hint: str = "") -> None:
    if sweeps != expected:
        raise AssertionError(f"{shown} reported {sweeps} sweeps; expected {expected}."
                             + (f" {hint}" if hint else ""))


SWEEP_COUNT_HINT = ("Count every sweep you compute, including the last one (the sweep whose "
                    "largest change fell below theta), and stop as soon as it does.")
IN_PLACE_HINT = ("A synchronous sweep computes every new value from the PREVIOUS sweep's values: "
                 "build a new array instead of overwriting V state by state.")


# ------------------------------------------------------------------------------- policy evaluation


def check_policy_evaluation(fn: Fn) -> None:
    """Check ``fn(P (S,A,S), R (S,A), policy (S,A), gamma, theta, max_sweeps) -> (V (S,), n_sweeps)``:
    synchronous iterative policy evaluation from ``V = 0`` (see the module's docstring)."""
    name = "policy_evaluation"
    n = 0

    def run(P, R, policy, gamma, theta, max_sweeps, label):
        shown = f"{name}({label}, gamma={gamma}, theta={theta}, max_sweeps={max_sweeps})"
        inputs = _copies(P, R, policy)
        result = call(fn, name, P, R, policy, gamma, theta=theta, max_sweeps=max_sweeps)
        _expect_unchanged(inputs, [P, R, policy], ["P", "R", "policy"], name)
        return _expect_values_and_sweeps(result, len(R), shown) + (shown,)

    # A two-state chain solved by hand: V(1) = 2, V(0) = 1 + 0.9 · 2 = 2.8.
    P, R = _chain([1.0, 2.0])
    V, sweeps, shown = run(P, R, np.ones((2, 1)), 0.9, 1e-8, 1000,
                           "a chain 0 → 1 → end with rewards 1 and 2")
    expect_array_close(V, np.array([2.8, 2.0]), shown,
                       "V(1) = 2 (its reward, then the episode ends); V(0) = 1 + γ·V(1) = 2.8.")
    _expect_sweeps(sweeps, 3, shown, "Sweep 1 gives [1, 2], sweep 2 the exact [2.8, 2], and "
                   "sweep 3 changes nothing (0 < theta), so the loop stops after 3 sweeps. "
                   + SWEEP_COUNT_HINT)
    n += 1

    # The policy's probabilities weigh the actions.
    P, R = _one_state([1.0, 3.0])
    V, _, shown = run(P, R, np.array([[0.25, 0.75]]), 1.0, 1e-8, 1000,
                      "one state, actions ending the episode with rewards [1, 3], π = [0.25, 0.75]")
    hint = "V(s) = Σ_a π(a|s) q(s, a) = 0.25·1 + 0.75·3."
    if np.isclose(V[0], 3.0):
        hint += " You took the max over actions: that is value iteration, not policy evaluation."
    elif np.isclose(V[0], 2.0):
        hint += " You averaged the actions uniformly: weigh them by policy[s, a]."
    expect_array_close(V, np.array([2.5]), shown, hint)
    n += 1

    # Synchronous, not in place: one synchronous sweep moves the final reward back by one state.
    P, R = _backward_chain(3)
    V, sweeps, shown = run(P, R, np.ones((3, 1)), 0.9, 0.0, 1,
                           "a chain 2 → 1 → 0 → end, reward 1 on the last step")
    expect_array_close(V, np.array([1.0, 0.0, 0.0]), shown, IN_PLACE_HINT)
    _expect_sweeps(sweeps, 1, shown, "With max_sweeps=1, do exactly one sweep.")
    n += 1

    # Figure 4.1: the random policy on the gridworld after k = 0, 1, 2, 3, 10 sweeps.
    P, R = _gridworld()
    uniform = np.full((16, 4), 0.25)
    for k in (0, 1, 2, 3, 10):
        V, sweeps, shown = run(P, R, uniform, 1.0, 0.0, k, "the 4×4 gridworld, random policy")
        expected, _ = _evaluate(P, R, uniform, 1.0, 0.0, k)
        _expect_values(V, expected, shown,
                       f"After {k} synchronous sweeps from V = 0 (Figure 4.1: k = 1 gives −1 in "
                           "every non-terminal cell, k = 2 gives −1.75 next to a terminal corner and "
                           "−2 elsewhere). " + IN_PLACE_HINT)
        _expect_sweeps(sweeps, k, shown, f"With theta=0 no sweep can stop the loop: do exactly "
                       f"max_sweeps={k} sweeps.")
        n += 1
    V, _, shown = run(P, R, uniform, 1.0, 1e-10, 100_000, "the 4×4 gridworld, random policy")
    _expect_values(V, GRIDWORLD_RANDOM, shown, "Figure 4.1 at k = ∞: −14, −20, −22 along the "
                       "top row; the values must converge to the true v_π.")
    n += 1

    # A geometric series: V_k = 2 (1 − 0.5^k) changes by 0.5^(k−1), first below 1e-3 at k = 11.
    P, R = _self_loop(1.0)
    V, sweeps, shown = run(P, R, np.ones((1, 1)), 0.5, 1e-3, 1000,
                           "one state that earns 1 and comes back forever")
    expect_array_close(V, np.array([2 * (1 - 0.5 ** 11)]), shown,
                       "Return the values of the LAST sweep: V_11 = 2 (1 − 0.5^11) = 1.99902.")
    _expect_sweeps(sweeps, 11, shown, "Sweep k changes V by 0.5^(k−1), first below theta = 1e-3 at "
                   "k = 11. " + SWEEP_COUNT_HINT)
    n += 1

    # A random MDP (S ≠ A, terminating transitions): the exact solution of the Bellman equation.
    P, R = _random_mdp(0, 5, 3)
    policy = _random_policy(1, 5, 3)
    V, _, shown = run(P, R, policy, 0.9, 1e-12, 100_000, "a random MDP with 5 states and 3 actions")
    P_pi, R_pi = np.einsum("sa,sat->st", policy, P), (policy * R).sum(axis=1)
    exact = np.linalg.solve(np.eye(5) - 0.9 * P_pi, R_pi)
    expect_array_close(V, exact, shown, "It must solve the Bellman expectation equation "
                       "V = R_π + γ P_π V (check which axis of P you sum over: P[s, a, s2]).")
    n += 1
    passed(name, n)


# ------------------------------------------------------------------------------- greedy policy


def check_greedy_policy(fn: Fn) -> None:
    """Check ``fn(P (S,A,S), R (S,A), V (S,), gamma) -> actions (S,)``: a greedy action in every
    state; q-values within 1e-9 of the maximum are tied, and ties go to the smallest index."""
    name = "greedy_policy"
    n = 0

    def run(P, R, V, gamma, label, expected, hint):
        shown = f"{name}({label}, gamma={gamma})"
        inputs = _copies(P, R, V)
        result = call(fn, name, P, R, V, gamma)
        _expect_unchanged(inputs, [P, R, V], ["P", "R", "V"], name)
        if isinstance(result, np.ndarray) and result.shape == R.shape:
            raise AssertionError(f"{shown} returned an array of shape {result.shape}, like q or a "
                                 f"one-hot policy; expected one action index per state, shape "
                                 f"{(len(R),)}.")
        actions = expect_array(result, (len(R),), shown, integer=True)
        if not np.array_equal(actions, expected):
            if len(expected) <= 12:
                raise AssertionError(f"{shown} returned {actions.tolist()}; expected "
                                     f"{expected.tolist()}. {hint}")
            wrong = np.flatnonzero(actions != expected)
            s = int(wrong[0])
            raise AssertionError(f"{shown} returned action {actions[s]} in state {s}; expected "
                                 f"{expected[s]} ({len(wrong)} of {len(expected)} states differ). "
                                 f"{hint}")

    P, R = _one_state([1.0, 3.0, 2.0])
    run(P, R, np.zeros(1), 1.0, "one state, actions ending the episode with rewards [1, 3, 2]",
        np.array([1]), "Pick the action with the largest q(s, a).")
    n += 1

    # The value of the next state matters: going to state 1 (V = 2) beats a reward of 0.5.
    P = np.zeros((3, 2, 3))
    P[0, 0, 1] = P[0, 1, 2] = 1.0
    R = np.array([[0.0, 0.5], [0.0, 0.0], [0.0, 0.0]])
    run(P, R, np.array([0.0, 2.0, 1.0]), 1.0,
        "state 0: action 0 → state 1 (V = 2), action 1 → state 2 (V = 1) with reward 0.5",
        np.array([0, 0, 0]), "q(s, a) = R[s, a] + γ Σ_s2 P[s, a, s2] V[s2]: include the value of "
        "the next state. (States 1 and 2 are terminal: all their actions tie, so action 0.)")
    n += 1

    # The discount decides: 1 now, or 2 one step later.
    P = np.zeros((2, 2, 2))
    P[0, 1, 1] = 1.0
    R = np.array([[1.0, 0.0], [0.0, 0.0]])
    for gamma, best in ((0.9, 1), (0.4, 0)):
        run(P, R, np.array([0.0, 2.0]), gamma,
            "state 0: action 0 earns 1 and ends, action 1 earns 0 and leads to V = 2",
            np.array([best, 0]), f"q(0, 1) = γ · 2 = {2 * gamma:.1f} against q(0, 0) = 1: "
            "multiply the next state's value by gamma.")
        n += 1

    # Ties, exact and within 1e-9, go to the smallest index; a real difference is not a tie.
    for rewards, best, hint in (
        ([2.0, 5.0, 5.0], 1, "Actions 1 and 2 tie: break ties towards the SMALLEST action index."),
        ([1.0, 1.0 + 1e-12, 0.5], 0, "q-values within 1e-9 of the maximum count as tied, so that "
         "floating-point noise does not decide: keep the smallest such index (e.g. np.argmax of "
         "the boolean array q >= q.max(axis=1, keepdims=True) - 1e-9)."),
        ([1.0, 1.0 + 1e-6], 1, "Only differences below 1e-9 are ties; 1e-6 is a real difference "
         "(do not round the q-values)."),
    ):
        P, R = _one_state(rewards)
        run(P, R, np.zeros(1), 1.0, f"one state, actions ending the episode with rewards {rewards}",
            np.array([best]), hint)
        n += 1

    # Figure 4.1: greedy with respect to the random policy's values is optimal.
    P, R = _gridworld()
    expected = _greedy(P, R, GRIDWORLD_RANDOM, 1.0)
    run(P, R, GRIDWORLD_RANDOM, 1.0, "the 4×4 gridworld, V = v_π of the random policy", expected,
        "Actions are 0 left, 1 down, 2 right, 3 up; e.g. from state 1 go left (0), from state 14 "
        "go right (2).")
    n += 1

    # A random MDP with S ≠ A.
    P, R = _random_mdp(2, 6, 4)
    V = np.random.default_rng(3).normal(size=6)
    run(P, R, V, 0.9, "a random MDP with 6 states and 4 actions", _greedy(P, R, V, 0.9),
        "Compute q = R + γ P @ V, shape (S, A), and take the best action of each ROW (axis=1).")
    n += 1
    passed(name, n)


# ------------------------------------------------------------------------------- value iteration


def check_value_iteration(fn: Fn) -> None:
    """Check ``fn(P (S,A,S), R (S,A), gamma, theta, max_sweeps) -> (V (S,), n_sweeps)``:
    synchronous value iteration from ``V = 0`` (see the module's docstring)."""
    name = "value_iteration"
    n = 0

    def run(P, R, gamma, theta, max_sweeps, label):
        shown = f"{name}({label}, gamma={gamma}, theta={theta}, max_sweeps={max_sweeps})"
        inputs = _copies(P, R)
        result = call(fn, name, P, R, gamma, theta=theta, max_sweeps=max_sweeps)
        _expect_unchanged(inputs, [P, R], ["P", "R"], name)
        return _expect_values_and_sweeps(result, len(R), shown) + (shown,)

    P, R = _one_state([1.0, 3.0])
    V, sweeps, shown = run(P, R, 1.0, 1e-8, 1000, "one state, actions ending the episode with "
                           "rewards [1, 3]")
    hint = "v*(s) = max_a q(s, a)."
    if np.isclose(V[0], 2.0):
        hint += " You averaged over the actions: value iteration takes the MAXIMUM."
    elif np.isclose(V[0], 1.0):
        hint += " You returned the smallest action value."
    expect_array_close(V, np.array([3.0]), shown, hint)
    _expect_sweeps(sweeps, 2, shown, "Sweep 1 gives 3, sweep 2 changes nothing and stops the loop. "
                   + SWEEP_COUNT_HINT)
    n += 1

    # Stay (1 per step, forever) or leave (5 once): the discount decides.
    P, R = _stay_or_leave()
    for gamma, expected, hint in (
        (0.9, 10.0, "With γ = 0.9, staying forever is worth 1/(1 − γ) = 10 > 5."),
        (0.5, 5.0, "With γ = 0.5, staying is worth only 1/(1 − γ) = 2 < 5: leave."),
    ):
        V, _, shown = run(P, R, gamma, 1e-10, 100_000,
                          "one state: stay and earn 1, or earn 5 and end the episode")
        expect_array_close(V, np.array([expected]), shown, hint)
        n += 1

    # Synchronous, not in place.
    P, R = _backward_chain(3)
    V, sweeps, shown = run(P, R, 0.9, 0.0, 1, "a chain 2 → 1 → 0 → end, reward 1 on the last step")
    expect_array_close(V, np.array([1.0, 0.0, 0.0]), shown, IN_PLACE_HINT)
    _expect_sweeps(sweeps, 1, shown, "With max_sweeps=1, do exactly one sweep.")
    n += 1

    # The gridworld: v* is minus the number of steps to the nearest corner, exact after 3 sweeps.
    P, R = _gridworld()
    for k in (1, 2):
        V, sweeps, shown = run(P, R, 1.0, 0.0, k, "the 4×4 gridworld")
        _expect_values(V, np.maximum(GRIDWORLD_OPTIMAL, -k), shown,
                           f"After {k} sweeps from V = 0 every value is −min({k}, steps to the "
                           "nearest terminal corner).")
        _expect_sweeps(sweeps, k, shown, f"With theta=0, do exactly max_sweeps={k} sweeps.")
        n += 1
    V, sweeps, shown = run(P, R, 1.0, 1e-10, 100_000, "the 4×4 gridworld")
    _expect_values(V, GRIDWORLD_OPTIMAL, shown,
                       "v*(s) = −(steps to the nearest terminal corner).")
    _expect_sweeps(sweeps, 4, shown, "Sweep 3 reaches v* (at most 3 steps to a corner) and sweep 4 "
                   "changes nothing. " + SWEEP_COUNT_HINT)
    n += 1

    # A geometric series, as for policy evaluation: 11 sweeps to theta = 1e-3.
    P, R = _self_loop(1.0)
    V, sweeps, shown = run(P, R, 0.5, 1e-3, 1000, "one state that earns 1 and comes back forever")
    expect_array_close(V, np.array([2 * (1 - 0.5 ** 11)]), shown,
                       "Return the values of the LAST sweep: V_11 = 2 (1 − 0.5^11) = 1.99902.")
    _expect_sweeps(sweeps, 11, shown, "Sweep k changes V by 0.5^(k−1), first below theta = 1e-3 at "
                   "k = 11. " + SWEEP_COUNT_HINT)
    n += 1

    # A random MDP: the result satisfies the Bellman optimality equation.
    P, R = _random_mdp(4, 5, 3)
    V, _, shown = run(P, R, 0.9, 1e-12, 100_000, "a random MDP with 5 states and 3 actions")
    residual = np.abs(V - (R + 0.9 * P @ V).max(axis=1)).max()
    if not residual < 1e-6:
        raise AssertionError(f"{shown} returned {fmt_array(V)}, which misses the Bellman optimality "
                             f"equation V = max_a (R + γ P V) by {residual:.3g}. Check which axis "
                             "of P you sum over (P[s, a, s2]) and that you maximise over actions "
                             "(axis=1).")
    expect_array_close(V, _optimal(P, R, 0.9, 1e-12)[0], shown)
    n += 1
    passed(name, n)
