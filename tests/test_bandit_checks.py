"""Unit tests of notebook 01's checks (course_utils.checks.bandits): each check passes on
reference implementations (several correct styles) and fails, with a helpful message, on plausible
wrong answers of students."""

from __future__ import annotations

import numpy as np
import pytest

from check_helpers import assert_fails, assert_passes
from course_utils.checks import (
    check_epsilon_greedy,
    check_gradient_bandit_update,
    check_incremental_update,
    check_ucb_select,
)


def rows_of(q):
    return np.arange(q.shape[0])


# ------------------------------------------------------------------------------- incremental update


def update_reference(q, actions, rewards, step_size):
    new = q.copy()
    rows = rows_of(q)
    new[rows, actions] += step_size * (rewards - q[rows, actions])
    return new


def update_loop(q, actions, rewards, step_size):
    """Correct, with a Python loop over runs."""
    new = q.astype(float).copy()
    steps = np.broadcast_to(step_size, actions.shape)
    for r, (a, reward) in enumerate(zip(actions, rewards)):
        new[r, a] = new[r, a] + steps[r] * (reward - new[r, a])
    return new


def update_one_hot(q, actions, rewards, step_size):
    """Correct, with a one-hot mask instead of fancy indexing."""
    mask = np.zeros_like(q)
    mask[rows_of(q), actions] = 1.0
    chosen = (q * mask).sum(axis=1)
    return q + mask * (np.asarray(step_size) * (rewards - chosen))[:, None]


def update_in_place(q, actions, rewards, step_size):
    rows = rows_of(q)
    q[rows, actions] += step_size * (rewards - q[rows, actions])
    return q


def update_column_indexing(q, actions, rewards, step_size):
    new = q.copy()
    new[:, actions] += step_size * (rewards - q[:, actions])
    return new


def update_every_arm(q, actions, rewards, step_size):
    return q + np.asarray(step_size).reshape(-1, 1) * (rewards[:, None] - q)


def update_wrong_sign(q, actions, rewards, step_size):
    new, rows = q.copy(), rows_of(q)
    new[rows, actions] += step_size * (q[rows, actions] - rewards)
    return new


def update_forgets_old_estimate(q, actions, rewards, step_size):
    new, rows = q.copy(), rows_of(q)
    new[rows, actions] = step_size * (rewards - q[rows, actions])
    return new


def update_no_error_term(q, actions, rewards, step_size):
    new, rows = q.copy(), rows_of(q)
    new[rows, actions] += step_size * rewards
    return new


def update_swapped_weights(q, actions, rewards, step_size):
    new, rows = q.copy(), rows_of(q)
    new[rows, actions] = step_size * q[rows, actions] + (1 - step_size) * rewards
    return new


def update_first_step_size_only(q, actions, rewards, step_size):
    return update_reference(q, actions, rewards, np.ravel(step_size)[0])


def update_returns_chosen_values(q, actions, rewards, step_size):
    rows = rows_of(q)
    return q[rows, actions] + step_size * (rewards - q[rows, actions])


def update_list(q, actions, rewards, step_size):
    return update_reference(q, actions, rewards, step_size).tolist()


def update_sample_mean_of_two(q, actions, rewards, step_size):
    """Averages the old estimate and the reward, whatever the step size."""
    new, rows = q.copy(), rows_of(q)
    new[rows, actions] = (q[rows, actions] + rewards) / 2
    return new


def test_check_incremental_update_passes_on_references(capsys):
    for fn in (update_reference, update_loop, update_one_hot):
        assert_passes(check_incremental_update, fn, capsys, "incremental_update")


@pytest.mark.parametrize("mutant, fragments", [
    (update_in_place, ["modified its input q in place", "q.copy()"]),
    (update_column_indexing, ["expected [[0.0, 0.0, 1.0], [2.0, 2.0, 3.0]]", "only the CHOSEN arm"]),
    (update_every_arm, ["returned [[1.0, 1.0, 1.0], [2.0, 2.75, 3.5]]", "only the CHOSEN arm"]),
    (update_wrong_sign, ["returned [[0.0, 0.0, -1.0], [0.0, 2.0, 3.0]]"]),
    (update_forgets_old_estimate, ["returned [[0.0, 0.0, 1.0], [1.0, 2.0, 3.0]]"]),
    (update_no_error_term, ["returned [[0.0, 0.0, 1.0], [2.25, 2.0, 3.0]]"]),
    (update_swapped_weights, ["returned [[0.0, 0.0, 3.0], [4.0, 2.0, 3.0]]"]),
    (update_first_step_size_only, ["step_size=[1.0, 0.5, 0.25]", "run r uses step_size[r]"]),
    (update_returns_chosen_values, ["returned shape (2,); expected (2, 3)"]),
    (update_list, ["returned list; expected a numpy.ndarray"]),
    (update_sample_mean_of_two, ["expected [[0.0, 0.0, 1.0], [2.0, 2.0, 3.0]]"]),
])
def test_check_incremental_update_fails_on_mutants(mutant, fragments):
    assert_fails(check_incremental_update, mutant, "incremental_update", *fragments)


def test_check_incremental_update_catches_low_precision_step_sizes():
    """Exact for step sizes 1, 1/2 and 1/4, but 1/3 in float16 spoils the running mean."""
    def half_precision(q, actions, rewards, step_size):
        return update_reference(q, actions, rewards, np.float16(step_size))

    assert_fails(check_incremental_update, half_precision, "running means", "sample average")


def test_check_incremental_update_catches_error_only_on_random_case():
    def hard_coded(q, actions, rewards, step_size):
        if q.shape[0] > 100:
            return update_reference(q, actions, rewards, 0.5)
        return update_reference(q, actions, rewards, step_size)

    assert_fails(check_incremental_update, hard_coded, "300 random runs with 10 arms")


# ------------------------------------------------------------------------------- ε-greedy


def eg_reference(q, epsilon, rng):
    n_runs, k = q.shape
    ties = q == q.max(axis=1, keepdims=True)
    greedy = np.argmax(np.where(ties, rng.random(q.shape), -1.0), axis=1)
    explore = rng.random(n_runs) < epsilon
    return np.where(explore, rng.integers(k, size=n_runs), greedy)


def eg_loop(q, epsilon, rng):
    """Correct, one run at a time with rng.choice among the tied arms."""
    actions = np.empty(q.shape[0], dtype=np.int64)
    for r, row in enumerate(q):
        if rng.random() < epsilon:
            actions[r] = rng.integers(len(row))
        else:
            actions[r] = rng.choice(np.flatnonzero(row == row.max()))
    return actions


def eg_argmax_ties_first(q, epsilon, rng):
    greedy = np.argmax(q, axis=1)
    explore = rng.random(len(q)) < epsilon
    return np.where(explore, rng.integers(q.shape[1], size=len(q)), greedy)


def eg_one_coin(q, epsilon, rng):
    if rng.random() < epsilon:
        return rng.integers(q.shape[1], size=len(q))
    ties = q == q.max(axis=1, keepdims=True)
    return np.argmax(np.where(ties, rng.random(q.shape), -1.0), axis=1)


def eg_explore_non_greedy_only(q, epsilon, rng):
    greedy = eg_reference(q, 0.0, rng)
    k = q.shape[1]
    other = (greedy + rng.integers(1, k, size=len(q))) % k
    return np.where(rng.random(len(q)) < epsilon, other, greedy)


def eg_epsilon_inverted(q, epsilon, rng):
    return eg_reference(q, 1 - epsilon, rng)


def eg_global_numpy(q, epsilon, rng):
    ties = q == q.max(axis=1, keepdims=True)
    greedy = np.argmax(np.where(ties, np.random.random(q.shape), -1.0), axis=1)
    explore = np.random.random(len(q)) < epsilon
    return np.where(explore, np.random.randint(q.shape[1], size=len(q)), greedy)


def eg_fixed_seed(q, epsilon, rng):
    return eg_reference(q, epsilon, np.random.default_rng(0))


def eg_argmin(q, epsilon, rng):
    return eg_reference(-q, epsilon, rng)


def eg_global_argmax(q, epsilon, rng):
    return np.full(len(q), np.argmax(q)) % q.shape[1]


def eg_float_actions(q, epsilon, rng):
    return eg_reference(q, epsilon, rng).astype(float)


def eg_k_minus_one(q, epsilon, rng):
    """Explores with rng.integers(k - 1): the last arm is never explored."""
    greedy = eg_reference(q, 0.0, rng)
    return np.where(rng.random(len(q)) < epsilon, rng.integers(q.shape[1] - 1, size=len(q)), greedy)


def eg_column_argmax(q, epsilon, rng):
    return eg_reference(q.T, epsilon, rng)


def eg_sorts_q_in_place(q, epsilon, rng):
    actions = eg_reference(q, epsilon, rng)
    q.sort(axis=1)
    return actions


def eg_ties_with_random_noise(q, epsilon, rng):
    """Adds small noise to q before argmax: also breaks ties, but changes near-ties too. Here
    the noise is too large (0.1), so it sometimes picks an arm that is not greedy."""
    greedy = np.argmax(q + 0.1 * rng.random(q.shape), axis=1)
    return np.where(rng.random(len(q)) < epsilon, rng.integers(q.shape[1], size=len(q)), greedy)


def test_check_epsilon_greedy_passes_on_references(capsys):
    for fn in (eg_reference, eg_loop):
        assert_passes(check_epsilon_greedy, fn, capsys, "epsilon_greedy")


def test_check_epsilon_greedy_passes_on_tiny_noise_tie_breaking(capsys):
    """Noise far below the gaps between estimates is a correct tie-breaker on the check's cases."""
    def tiny_noise(q, epsilon, rng):
        greedy = np.argmax(q + 1e-9 * rng.random(q.shape), axis=1)
        return np.where(rng.random(len(q)) < epsilon, rng.integers(q.shape[1], size=len(q)), greedy)

    assert_passes(check_epsilon_greedy, tiny_noise, capsys, "epsilon_greedy")


@pytest.mark.parametrize("mutant, fragments", [
    (eg_argmax_ties_first, ["arms 1, 3 and 4 tie", "[1.0, 0.0, 0.0]", "Break ties uniformly at random",
                            "np.argmax always returns the FIRST"]),
    (eg_one_coin, ["epsilon=0.5", "Each run tosses its own coin"]),
    (eg_explore_non_greedy_only, ["epsilon=1", "[0.249, 0.25, 0.249, 0.253, 0.0]", "ALL k arms"]),
    (eg_epsilon_inverted, ["epsilon=0", "expected [2, 0, 1, 2]"]),
    (eg_global_numpy, ["same seed", "not from np.random"]),
    (eg_fixed_seed, ["seeds 7 and 8"]),
    (eg_argmin, ["expected [2, 0, 1, 2]", "argmax of its ROW"]),
    (eg_global_argmax, ["expected [2, 0, 1, 2]"]),
    (eg_float_actions, ["dtype float64", "expected integer"]),
    (eg_k_minus_one, ["epsilon=1", "uniformly random over ALL k arms"]),
    (eg_column_argmax, ["returned shape (3,); expected (4,)"]),
    (eg_sorts_q_in_place, ["modified its input q in place"]),
    (eg_ties_with_random_noise, ["[0.3, 0.3001, 0.2999]", "Only EXACTLY equal estimates are ties"]),
])
def test_check_epsilon_greedy_fails_on_mutants(mutant, fragments):
    assert_fails(check_epsilon_greedy, mutant, "epsilon_greedy", *fragments)


def test_check_epsilon_greedy_catches_explore_excluding_greedy_for_small_epsilon():
    """Uniform over all arms at ε = 1, but for ε < 1 explores only among the non-greedy arms: the
    greedy arm then gets 1 − ε = 90% instead of 1 − ε + ε/k = 91%."""
    def special_cased(q, epsilon, rng):
        if epsilon >= 1:
            return eg_reference(q, epsilon, rng)
        return eg_explore_non_greedy_only(q, epsilon, rng)

    assert_fails(check_epsilon_greedy, special_cased, "epsilon=0.1", "expected 91% for arm 9",
                 "the greedy one included")


def test_check_epsilon_greedy_restores_global_generators():
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    check_epsilon_greedy(eg_reference)
    assert np.random.random() == expected


def test_check_epsilon_greedy_out_of_range():
    def one_based(q, epsilon, rng):
        return eg_reference(q, epsilon, rng) + 1

    assert_fails(check_epsilon_greedy, one_based, "outside [0, 2]")


# ------------------------------------------------------------------------------- UCB


def ucb_reference(q, counts, t, c):
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = q + c * np.sqrt(np.log(t) / counts)
    return np.argmax(np.where(counts == 0, np.inf, scores), axis=1)


def ucb_untried_mask(q, counts, t, c):
    """Correct: compute the bonus only where N > 0, then pick an untried arm if any."""
    safe = np.maximum(counts, 1)
    scores = q + c * np.sqrt(np.log(t) / safe)
    untried = counts == 0
    return np.where(untried.any(axis=1), np.argmax(untried, axis=1), np.argmax(scores, axis=1))


def ucb_counts_floor_one(q, counts, t, c):
    return np.argmax(q + c * np.sqrt(np.log(t) / np.maximum(counts, 1)), axis=1)


def ucb_counts_plus_one(q, counts, t, c):
    return np.argmax(q + c * np.sqrt(np.log(t) / (counts + 1)), axis=1)


def ucb_t_not_log(q, counts, t, c):
    with np.errstate(divide="ignore"):
        return np.argmax(q + c * np.sqrt(t / counts), axis=1)


def ucb_no_sqrt(q, counts, t, c):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.argmax(np.where(counts == 0, np.inf, q + c * np.log(t) / counts), axis=1)


def ucb_c_inside(q, counts, t, c):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.argmax(np.where(counts == 0, np.inf, q + np.sqrt(c * np.log(t) / counts)), axis=1)


def ucb_log10(q, counts, t, c):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.argmax(np.where(counts == 0, np.inf, q + c * np.sqrt(np.log10(t) / counts)), axis=1)


def ucb_minus(q, counts, t, c):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.argmax(np.where(counts == 0, np.inf, q - c * np.sqrt(np.log(t) / counts)), axis=1)


def ucb_global_argmax(q, counts, t, c):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.argmax(np.where(counts == 0, np.inf, q + c * np.sqrt(np.log(t) / counts)))


def ucb_untried_last(q, counts, t, c):
    """Treats untried arms as the worst (count 0 → bonus 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        bonus = np.where(counts == 0, 0.0, c * np.sqrt(np.log(t) / counts))
    return np.argmax(q + bonus, axis=1)


def ucb_in_place_counts(q, counts, t, c):
    counts += counts == 0  # avoid dividing by zero, in place
    return np.argmax(q + c * np.sqrt(np.log(t) / counts), axis=1)


def ucb_column_argmax(q, counts, t, c):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.argmax(np.where(counts == 0, np.inf, q + c * np.sqrt(np.log(t) / counts)), axis=0)


def test_check_ucb_select_passes_on_references(capsys):
    for fn in (ucb_reference, ucb_untried_mask):
        assert_passes(check_ucb_select, fn, capsys, "ucb_select")


@pytest.mark.parametrize("mutant, fragments", [
    (ucb_counts_floor_one, ["counts=[[3, 0, 7], [0, 0, 5]]", "choose an untried arm before any tried one"]),
    (ucb_counts_plus_one, ["counts=[[1, 3]]", "not N(a) + 1"]),
    (ucb_t_not_log, ["counts=[[4, 100]]", "the natural log of t"]),
    (ucb_no_sqrt, ["counts=[[4, 100]]", "the square root of the ratio"]),
    (ucb_c_inside, ["c=4.0", "c multiplies the square root"]),
    (ucb_log10, ["counts=[[2, 400]]", "not log10"]),
    (ucb_minus, ["counts=[[5, 50, 20]]", "returned [1]; expected [0]"]),
    (ucb_global_argmax, ["returned int64; expected a numpy.ndarray"]),
    (ucb_untried_last, ["counts=[[3, 0, 7], [0, 0, 5]]", "untried"]),
    (ucb_in_place_counts, ["modified its input counts in place"]),
    (ucb_column_argmax, ["returned shape (3,); expected (1,)"]),
])
def test_check_ucb_select_fails_on_mutants(mutant, fragments):
    assert_fails(check_ucb_select, mutant, "ucb_select", *fragments)


def test_check_ucb_select_catches_row_mix_up_on_random_case():
    """Right on one-run cases, but uses the first run's counts for every run."""
    def first_row_counts(q, counts, t, c):
        return ucb_reference(q, np.broadcast_to(counts[:1], counts.shape), t, c)

    assert_fails(check_ucb_select, first_row_counts, "random runs")


# ------------------------------------------------------------------------------- gradient bandit


def gb_reference(h, pi, actions, rewards, baseline, alpha):
    one_hot = np.zeros_like(h)
    one_hot[rows_of(h), actions] = 1.0
    return h + alpha * (rewards - np.asarray(baseline))[:, None] * (one_hot - pi)


def gb_two_steps(h, pi, actions, rewards, baseline, alpha):
    """Correct: every arm down by α(R − B)π(a), then the chosen one up by α(R − B)."""
    step = alpha * (rewards - baseline)
    new = h - step[:, None] * pi
    new[rows_of(h), actions] += step
    return new


def gb_chosen_only(h, pi, actions, rewards, baseline, alpha):
    new, rows = h.copy(), rows_of(h)
    new[rows, actions] += alpha * (rewards - baseline) * (1 - pi[rows, actions])
    return new


def gb_sign_flipped(h, pi, actions, rewards, baseline, alpha):
    return 2 * h - gb_reference(h, pi, actions, rewards, baseline, alpha)


def gb_ignores_baseline(h, pi, actions, rewards, baseline, alpha):
    return gb_reference(h, pi, actions, rewards, 0.0, alpha)


def gb_adds_baseline(h, pi, actions, rewards, baseline, alpha):
    return gb_reference(h, pi, actions, rewards, -np.asarray(baseline), alpha)


def gb_chosen_probability_for_all(h, pi, actions, rewards, baseline, alpha):
    one_hot = np.zeros_like(h)
    rows = rows_of(h)
    one_hot[rows, actions] = 1.0
    return h + alpha * (rewards - baseline)[:, None] * (one_hot - pi[rows, actions][:, None])


def gb_column_indexing(h, pi, actions, rewards, baseline, alpha):
    one_hot = np.zeros_like(h)
    one_hot[:, actions] = 1.0
    return h + alpha * (rewards - np.asarray(baseline))[:, None] * (one_hot - pi)


def gb_in_place(h, pi, actions, rewards, baseline, alpha):
    h += gb_reference(h, pi, actions, rewards, baseline, alpha) - h
    return h


def gb_no_alpha(h, pi, actions, rewards, baseline, alpha):
    return gb_reference(h, pi, actions, rewards, baseline, 1.0)


def gb_uniform_instead_of_pi(h, pi, actions, rewards, baseline, alpha):
    return gb_reference(h, pi, actions, rewards, baseline, alpha) + \
        alpha * (rewards - np.asarray(baseline))[:, None] * (pi - 1 / h.shape[1])


def gb_recomputes_softmax_wrongly(h, pi, actions, rewards, baseline, alpha):
    """Uses exp(H) without normalising instead of the given π."""
    return gb_reference(h, np.exp(h), actions, rewards, baseline, alpha)


def gb_baseline_as_array_only(h, pi, actions, rewards, baseline, alpha):
    return gb_reference(h, pi, actions, rewards, baseline.reshape(-1), alpha)


def test_check_gradient_bandit_update_passes_on_references(capsys):
    for fn in (gb_reference, gb_two_steps):
        assert_passes(check_gradient_bandit_update, fn, capsys, "gradient_bandit_update")


@pytest.mark.parametrize("mutant, fragments", [
    (gb_chosen_only, ["returned [[1.1931, 0.0, 0.0], [0.0, 0.0, -0.3333]]", "for EVERY arm a"]),
    (gb_sign_flipped, ["returned [[0.1931, 0.25, 0.25], [-0.1667, -0.1667, 0.3333]]"]),
    (gb_ignores_baseline, ["baseline=[1.0, 1.0]", "expected [[1.1931, -0.25, -0.25], "
                                                   "[0.1667, 0.1667, -0.3333]]"]),
    (gb_adds_baseline, ["baseline=[1.0, 1.0]", "for EVERY arm a"]),
    (gb_chosen_probability_for_all, ["returned [[1.1931, -0.5, -0.5], [0.1667, 0.1667, -0.3333]]"]),
    (gb_column_indexing, ["actions=[0, 2]", "for EVERY arm a"]),
    (gb_in_place, ["modified its input H in place"]),
    (gb_no_alpha, ["alpha=0.5", "for EVERY arm a"]),
    (gb_uniform_instead_of_pi, ["actions=[0, 2]"]),
    (gb_recomputes_softmax_wrongly, ["actions=[0, 2]"]),
    (lambda *args: gb_reference(*args).tolist(), ["returned list; expected a numpy.ndarray"]),
])
def test_check_gradient_bandit_update_fails_on_mutants(mutant, fragments):
    assert_fails(check_gradient_bandit_update, mutant, "gradient_bandit_update", *fragments)


def test_check_gradient_bandit_update_other_errors_propagate():
    """A student's own error (here: a float baseline has no .reshape) is shown as it is."""
    with pytest.raises(AttributeError):
        check_gradient_bandit_update(gb_baseline_as_array_only)


def test_check_gradient_bandit_update_catches_changed_sum():
    """Right on the two known cases, wrong (a drifting sum) on bigger problems."""
    def drifting(h, pi, actions, rewards, baseline, alpha):
        new = gb_reference(h, pi, actions, rewards, baseline, alpha)
        return new + 0.01 if h.shape[1] > 3 else new

    assert_fails(check_gradient_bandit_update, drifting, "changed the sum of the preferences",
                 "never changes Σ_a H(a)")


def test_check_gradient_bandit_update_catches_biased_expected_step():
    """Keeps Σ H and is right when B = 0 and when R = B, but scales the update by the baseline:
    only the expected-update case (baseline 2.5) catches it."""
    def baseline_scaled(h, pi, actions, rewards, baseline, alpha):
        b = np.asarray(baseline, dtype=float)
        scale = 1.0 if (b.ndim > 0 or b == 0.0) else 1.0 + b
        return gb_reference(h, pi, actions, rewards, baseline, alpha * scale)

    assert_fails(check_gradient_bandit_update, baseline_scaled, "baseline=2.5",
                 "the same for every baseline")


# ------------------------------------------------------------------------------- all checks


ALL_CHECKS = [check_incremental_update, check_epsilon_greedy, check_ucb_select,
              check_gradient_bandit_update]


@pytest.mark.parametrize("check", ALL_CHECKS)
def test_every_check_refuses_torch_tensors(check):
    import torch

    def as_tensor(*args, **kwargs):
        return torch.zeros(3)

    with pytest.raises(AssertionError, match="returned Tensor; expected a numpy.ndarray"):
        check(as_tensor)
