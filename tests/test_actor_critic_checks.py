"""Notebook 06's exercise checks (course_utils.checks.actor_critic): each passes on
correct solutions (several styles) and fails, with a helpful message, on the mistakes students
make."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from check_helpers import assert_fails, assert_passes, not_implemented, own_copy
from course_utils.checks import (check_actor_critic_loss, check_gae, check_n_step_return,
                                  check_td_error)
from course_utils.returns import gae as library_gae

# The package's answers as a student would write them: the checks refuse the package's own
# functions (checks.common.references).
library_gae = own_copy(library_gae)

# ---------------------------------------------------------------------------------- TD error

TD_ANSWER = "expected [2.3, 0.7, -2.0, 3.9]"


def td_error(rewards, values, next_values, terminated, gamma):
    """The notebook's solution."""
    return rewards + gamma * (1 - terminated) * next_values - values


def td_where(rewards, values, next_values, terminated, gamma):
    """Correct, with torch.where on a boolean mask."""
    target = torch.where(terminated.bool(), rewards, rewards + gamma * next_values)
    return target - values


def td_no_mask(rewards, values, next_values, terminated, gamma):
    return rewards + gamma * next_values - values


def td_inverted_mask(rewards, values, next_values, terminated, gamma):
    return rewards + gamma * terminated * next_values - values


def td_target_only(rewards, values, next_values, terminated, gamma):
    return rewards + gamma * (1 - terminated) * next_values


def td_wrong_sign(rewards, values, next_values, terminated, gamma):
    return values - (rewards + gamma * (1 - terminated) * next_values)


def td_swapped(rewards, values, next_values, terminated, gamma):
    return rewards + gamma * (1 - terminated) * values - next_values


def td_no_gamma(rewards, values, next_values, terminated, gamma):
    return rewards + (1 - terminated) * next_values - values


def td_in_place(rewards, values, next_values, terminated, gamma):
    rewards += gamma * (1 - terminated) * next_values
    return rewards - values


def td_numpy(rewards, values, next_values, terminated, gamma):
    return td_error(rewards, values, next_values, terminated, gamma).numpy()


def td_flattens(rewards, values, next_values, terminated, gamma):
    return td_error(rewards, values, next_values, terminated, gamma).flatten()


def test_check_td_error_passes_on_references(capsys):
    for fn in (td_error, td_where):
        assert_passes(check_td_error, fn, capsys, "td_error")


@pytest.mark.parametrize("mutant, fragments", [
    (td_no_mask, [TD_ANSWER, "terminated step has no future"]),
    (td_inverted_mask, [TD_ANSWER, "mask is inverted"]),
    (td_target_only, [TD_ANSWER, "That is the TD target"]),
    (td_wrong_sign, [TD_ANSWER, "Check the sign"]),
    (td_swapped, [TD_ANSWER, "values and next_values are swapped"]),
    (td_no_gamma, [TD_ANSWER, "Discount the next state's value"]),
    (td_in_place, ["modified its input rewards in place"]),
    (td_numpy, ["returned ndarray; expected a torch.Tensor"]),
    (td_flattens, ["(T, N) = (16, 4)", "returned shape (64,); expected (16, 4)"]),
])
def test_check_td_error_fails_on_mutants(mutant, fragments):
    assert_fails(check_td_error, mutant, "td_error", *fragments)


def test_check_td_error_not_implemented():
    assert_fails(check_td_error, not_implemented, "td_error is not implemented yet")


# ----------------------------------------------------------------------------- n-step return

N_STEP_ANSWER = "expected [2.375, 4.0, 7.5, 9.0]"


def n_step_return(rewards, values, last_value, terminated, gamma, n):
    """The notebook's solution."""
    T = len(rewards)
    v = torch.cat([values, (0.0 if terminated else 1.0) * last_value.reshape(1)]).detach()
    G = torch.empty_like(rewards)
    for t in range(T):
        end = min(t + n, T)
        G[t] = sum(gamma ** (k - t) * rewards[k] for k in range(t, end)) + gamma ** (end - t) * v[end]
    return G


def n_step_powers(rewards, values, last_value, terminated, gamma, n):
    """Correct, with a tensor of discounts and no_grad."""
    with torch.no_grad():
        T = len(rewards)
        bootstrap = torch.cat([values, torch.zeros(1) if terminated else last_value.view(1)])
        returns = []
        for t in range(T):
            m = min(n, T - t)
            discounts = gamma ** torch.arange(m, dtype=rewards.dtype)
            returns.append((discounts * rewards[t:t + m]).sum() + gamma ** m * bootstrap[t + m])
        return torch.stack(returns)


def _n_step_with(power, origin=lambda t: t, shift=0, end_value=None, extra=0):
    def fn(rewards, values, last_value, terminated, gamma, n):
        T = len(rewards)
        tail = 0.0 if terminated else float(last_value)
        v = values.detach().tolist() + [tail if end_value is None else end_value(tail, last_value)]
        out = []
        for t in range(T):
            end = min(t + n + extra, T)
            total = sum(gamma ** (k - origin(t)) * rewards[k].item()
                        for k in range(t, end))
            out.append(total + gamma ** power(t, end, n) * v[end + shift])
        return torch.tensor(out)
    return fn


n_step_ignores_terminated = _n_step_with(lambda t, end, n: end - t,
                                         end_value=lambda tail, last: float(last))
n_step_no_bootstrap_at_end = _n_step_with(lambda t, end, n: end - t,
                                          end_value=lambda tail, last: 0.0)
n_step_power_n = _n_step_with(lambda t, end, n: n)
n_step_absolute_discount = _n_step_with(lambda t, end, n: end, origin=lambda t: 0)
n_step_off_by_one = _n_step_with(lambda t, end, n: end - t, shift=-1)
n_step_n_plus_one = _n_step_with(lambda t, end, n: end - t, extra=1)


def n_step_no_bootstrap(rewards, values, last_value, terminated, gamma, n):
    T = len(rewards)
    return torch.stack([sum(gamma ** (k - t) * rewards[k] for k in range(t, min(t + n, T)))
                        for t in range(T)])


def n_step_not_detached(rewards, values, last_value, terminated, gamma, n):
    T = len(rewards)
    v = torch.cat([values, (0.0 if terminated else 1.0) * last_value.reshape(1)])
    return torch.stack([sum(gamma ** (k - t) * rewards[k] for k in range(t, min(t + n, T)))
                        + gamma ** (min(t + n, T) - t) * v[min(t + n, T)] for t in range(T)])


def n_step_in_place(rewards, values, last_value, terminated, gamma, n):
    result = n_step_return(rewards, values, last_value, terminated, gamma, n)
    values.zero_()
    return result


def n_step_numpy(rewards, values, last_value, terminated, gamma, n):
    return n_step_return(rewards, values, last_value, terminated, gamma, n).numpy()


def test_check_n_step_return_passes_on_references(capsys):
    for fn in (n_step_return, n_step_powers):
        assert_passes(check_n_step_return, fn, capsys, "n_step_return")


@pytest.mark.parametrize("mutant, fragments", [
    (n_step_ignores_terminated, ["terminated=True, gamma=0.5, n=2", "V(s_T) = 0 there"]),
    (n_step_no_bootstrap_at_end, [N_STEP_ANSWER, "cut, not terminated"]),
    (n_step_power_n, [N_STEP_ANSWER, "discounted by γ^(T−t), not γ^n"]),
    (n_step_absolute_discount, [N_STEP_ANSWER, "relative to the CURRENT step"]),
    (n_step_off_by_one, [N_STEP_ANSWER, "not values[t + n − 1]"]),
    (n_step_n_plus_one, [N_STEP_ANSWER, "Sum n rewards"]),
    (n_step_no_bootstrap, [N_STEP_ANSWER, "Bootstrap: add γ^n V(s_{t+n})"]),
    (n_step_not_detached, ["requires_grad=True", "carries a gradient back", "is a TARGET"]),
    (n_step_in_place, ["modified its input values in place"]),
    (n_step_numpy, ["returned ndarray; expected a torch.Tensor"]),
])
def test_check_n_step_return_fails_on_mutants(mutant, fragments):
    assert_fails(check_n_step_return, mutant, "n_step_return", *fragments)


def test_check_n_step_return_not_implemented():
    assert_fails(check_n_step_return, not_implemented, "n_step_return is not implemented yet")


# --------------------------------------------------------------------------------------- GAE

GAE_ANSWER = "expected [1.14, 0.35, 4.0]"
TERMINAL_ANSWER = "expected [0.75, 1.0, -0.75, 1.0]"
TRUNCATED_ANSWER = "expected [1.75, 5.0, -0.75, 1.0]"


def gae(rewards, values, next_values, terminated, done, gamma, lam):
    """The notebook's solution."""
    deltas = rewards + gamma * (1 - terminated) * next_values - values
    advantages = torch.zeros_like(deltas)
    running = 0.0
    for t in reversed(range(len(rewards))):
        running = deltas[t] + gamma * lam * (1 - done[t]) * running
        advantages[t] = running
    return advantages.detach()


@torch.no_grad()
def gae_list(rewards, values, next_values, terminated, done, gamma, lam):
    """Correct, collecting a list and stacking it (under no_grad)."""
    advantages, last = [], torch.zeros_like(rewards[0])
    for t in range(len(rewards) - 1, -1, -1):
        delta = rewards[t] + gamma * next_values[t] * (1.0 - terminated[t]) - values[t]
        last = delta + gamma * lam * (1.0 - done[t]) * last
        advantages.append(last)
    return torch.stack(advantages[::-1])


def _gae_with(bootstrap_mask="terminated", trace_mask="done", decay=lambda g, l: g * l,
              shifted=False, plus_values=False, forward=False):
    @torch.no_grad()
    def fn(rewards, values, next_values, terminated, done, gamma, lam):
        masks = {"terminated": terminated, "done": done, "none": torch.zeros_like(done)}
        if shifted:
            next_values = torch.cat([values[1:], next_values[-1:]])
        deltas = rewards + gamma * (1 - masks[bootstrap_mask]) * next_values - values
        advantages, running = torch.zeros_like(deltas), torch.zeros_like(deltas[0])
        steps = range(len(rewards)) if forward else reversed(range(len(rewards)))
        for t in steps:
            keep = 1 - masks[trace_mask][t]
            running = deltas[t] + decay(gamma, lam) * keep * running
            advantages[t] = running
        return advantages + values if plus_values else advantages
    return fn


gae_no_terminal_mask = _gae_with(bootstrap_mask="none")
gae_leaks_across_episodes = _gae_with(trace_mask="none")
gae_trace_stops_at_terminal_only = _gae_with(trace_mask="terminated")
gae_no_bootstrap_at_truncation = _gae_with(bootstrap_mask="done")
gae_lambda_without_gamma = _gae_with(decay=lambda g, l: l)
gae_gamma_without_lambda = _gae_with(decay=lambda g, l: g)
gae_shifted_values = _gae_with(shifted=True)
gae_lambda_return = _gae_with(plus_values=True)
gae_forward = _gae_with(forward=True)


def gae_not_detached(rewards, values, next_values, terminated, done, gamma, lam):
    deltas = rewards + gamma * (1 - terminated) * next_values - values
    advantages, running = [], 0.0
    for t in reversed(range(len(rewards))):
        running = deltas[t] + gamma * lam * (1 - done[t]) * running
        advantages.insert(0, running)
    return torch.stack(advantages)


def gae_last_dimension(rewards, values, next_values, terminated, done, gamma, lam):
    """Right for one environment; loops over the LAST dimension, which breaks (T, N)."""
    deltas = (rewards + gamma * (1 - terminated) * next_values - values).detach()
    advantages, running = torch.zeros_like(deltas), 0.0
    for t in reversed(range(rewards.shape[-1])):
        running = deltas[..., t] + gamma * lam * (1 - done[..., t]) * running
        advantages[..., t] = running
    return advantages


def gae_in_place(rewards, values, next_values, terminated, done, gamma, lam):
    rewards -= values
    return library_gae(rewards + values, values, next_values, terminated, done, gamma, lam)


def gae_numpy(rewards, values, next_values, terminated, done, gamma, lam):
    return library_gae(rewards, values, next_values, terminated, done, gamma, lam).numpy()


def test_check_gae_passes_on_references(capsys):
    for fn in (library_gae, gae, gae_list):
        assert_passes(check_gae, fn, capsys, "gae")


@pytest.mark.parametrize("mutant, fragments", [
    (gae_no_terminal_mask, [TERMINAL_ANSWER, "terminated step has no future"]),
    (gae_leaks_across_episodes, [TERMINAL_ANSWER, "The trace leaks across the end of an episode"]),
    (gae_trace_stops_at_terminal_only, [TRUNCATED_ANSWER, "also stop where an episode was "
                                                          "truncated"]),
    (gae_no_bootstrap_at_truncation, [TRUNCATED_ANSWER, "still bootstraps from next_values"]),
    (gae_lambda_without_gamma, [GAE_ANSWER, "decays by γλ per step, not λ alone"]),
    (gae_gamma_without_lambda, [GAE_ANSWER, "not γ alone"]),
    (gae_forward, [GAE_ANSWER, "runs BACKWARDS in time"]),
    (gae_shifted_values, [TRUNCATED_ANSWER, "not values[t + 1]"]),
    (gae_lambda_return, [GAE_ANSWER, "That is the λ-return"]),
    (gae_not_detached, ["requires_grad=True", "carries a gradient back", "detach"]),
    (gae_last_dimension, ["(T, N) = (16, 4), time first", "first (time) dimension"]),
    (gae_in_place, ["modified its input rewards in place"]),
    (gae_numpy, ["returned ndarray; expected a torch.Tensor"]),
])
def test_check_gae_fails_on_mutants(mutant, fragments):
    assert_fails(check_gae, mutant, "gae", *fragments)


def test_check_gae_not_implemented():
    assert_fails(check_gae, not_implemented, "gae is not implemented yet")


def test_check_gae_identities_catch_a_mutant_that_is_right_on_the_hand_cases():
    """Right on the three small worked cases, wrong once rollouts are longer than 4 steps."""
    def short_only(rewards, values, next_values, terminated, done, gamma, lam):
        result = library_gae(rewards, values, next_values, terminated, done, gamma, lam)
        return result if len(rewards) <= 4 else result * (1 - done) + done * (rewards - values)

    assert_fails(check_gae, short_only, "lam=0.0", "still bootstraps from next_values")


# ------------------------------------------------------------------------- actor-critic loss

AC_CALL = "actor_critic_loss(log_probs=[-0.5, -1.0, -2.0, -0.25]"


def actor_critic_loss(log_probs, advantages, values, returns, entropy, value_coef, entropy_coef):
    """The notebook's solution."""
    policy_loss = -(log_probs * advantages.detach()).mean()
    value_loss = ((returns - values) ** 2).mean()
    return policy_loss + value_coef * value_loss - entropy_coef * entropy.mean()


def ac_mse(log_probs, advantages, values, returns, entropy, value_coef, entropy_coef):
    """Correct, with F.mse_loss and the terms in another order."""
    return (value_coef * F.mse_loss(values, returns) - entropy_coef * entropy.mean()
            - torch.mean(advantages.detach() * log_probs))


def _ac_with(policy=lambda lp, a: -(lp * a.detach()).mean(),
             value=lambda v, r: ((r - v) ** 2).mean(), entropy_sign=1.0):
    def fn(log_probs, advantages, values, returns, entropy, value_coef, entropy_coef):
        return (policy(log_probs, advantages) + value_coef * value(values, returns)
                - entropy_sign * entropy_coef * entropy.mean())
    return fn


ac_not_detached = _ac_with(policy=lambda lp, a: -(lp * a).mean())
ac_policy_sign = _ac_with(policy=lambda lp, a: (lp * a.detach()).mean())
ac_half_value = _ac_with(value=lambda v, r: 0.5 * ((r - v) ** 2).mean())
ac_entropy_sign = _ac_with(entropy_sign=-1.0)
ac_values_detached = _ac_with(value=lambda v, r: ((r - v.detach()) ** 2).mean())
ac_value_abs = _ac_with(value=lambda v, r: (r - v).abs().mean())


def ac_sum(log_probs, advantages, values, returns, entropy, value_coef, entropy_coef):
    return (-(log_probs * advantages.detach()).sum() + value_coef * ((returns - values) ** 2).sum()
            - entropy_coef * entropy.sum())


def ac_per_step(log_probs, advantages, values, returns, entropy, value_coef, entropy_coef):
    return (-(log_probs * advantages.detach()) + value_coef * (returns - values) ** 2
            - entropy_coef * entropy)


def ac_item(log_probs, advantages, values, returns, entropy, value_coef, entropy_coef):
    return actor_critic_loss(log_probs, advantages, values, returns, entropy, value_coef,
                             entropy_coef).item()


def ac_value_from_advantages(log_probs, advantages, values, returns, entropy, value_coef,
                             entropy_coef):
    return (-(log_probs * advantages.detach()).mean() + value_coef * (advantages ** 2).mean()
            - entropy_coef * entropy.mean())


def ac_weights_returns(log_probs, advantages, values, returns, entropy, value_coef, entropy_coef):
    return (-(log_probs * returns).mean() + value_coef * ((returns - values) ** 2).mean()
            - entropy_coef * entropy.mean())


def test_check_actor_critic_loss_passes_on_references(capsys):
    for fn in (actor_critic_loss, ac_mse):
        assert_passes(check_actor_critic_loss, fn, capsys, "actor_critic_loss")


@pytest.mark.parametrize("mutant, fragments", [
    (ac_not_detached, [AC_CALL, "sends a gradient into advantages", "advantages.detach()"]),
    (ac_policy_sign, ["returned 0.5850; expected 1.7100", "sign of the policy term"]),
    (ac_half_value, ["returned 1.1225; expected 1.7100", "no ½"]),
    (ac_entropy_sign, ["returned 1.7650; expected 1.7100", "entropy bonus is SUBTRACTED"]),
    (ac_sum, ["Average over the batch"]),
    (ac_values_detached, ["no gradient reaches values", "Do not detach values"]),
    (ac_value_abs, ["mean SQUARED error"]),
    (ac_value_from_advantages, ["compares the critic's values with the returns"]),
    (ac_weights_returns, ["by the ADVANTAGE"]),
    (ac_per_step, ["shape (4,)", "expected a scalar"]),
    (ac_item, ["returned a float", "no .item()"]),
])
def test_check_actor_critic_loss_fails_on_mutants(mutant, fragments):
    assert_fails(check_actor_critic_loss, mutant, "actor_critic_loss", *fragments)


def test_check_actor_critic_loss_not_implemented():
    assert_fails(check_actor_critic_loss, not_implemented,
                 "actor_critic_loss is not implemented yet")


# --------------------------------------------------------------------------------- all checks


ALL_CHECKS = [check_td_error, check_n_step_return, check_gae, check_actor_critic_loss]


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda check: check.__name__)
def test_every_check_refuses_numpy_arrays(check):
    def as_numpy(*args, **kwargs):
        return np.zeros(4)

    with pytest.raises(AssertionError, match="returned ndarray; expected a torch.Tensor"):
        check(as_numpy)


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda check: check.__name__)
def test_every_check_refuses_numpy_inputs_turned_into_lists(check):
    """A function that converts its inputs with .tolist() and returns a Python list."""
    def as_list(*args, **kwargs):
        return [0.0, 0.0, 0.0, 0.0]

    with pytest.raises(AssertionError, match="returned list"):
        check(as_list)
