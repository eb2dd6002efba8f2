"""Unit tests of course_utils.checks: each check passes on the reference implementation
and fails, with a helpful message, on plausible wrong answers of students."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from check_helpers import assert_fails, assert_passes, not_implemented, own_copy
from course_utils.agents import baseline_advantage, policy_gradient_loss
from course_utils.checks import (
    check_baseline_advantage,
    check_discounted_reward_to_go,
    check_reward_to_go,
    check_surrogate_loss,
)
from course_utils.returns import reward_to_go, sum_of_rewards

# The package's answers as a student would write them: the checks refuse the package's own
# functions (checks.common.references).
baseline_advantage, policy_gradient_loss, reward_to_go = map(
    own_copy, (baseline_advantage, policy_gradient_loss, reward_to_go))


# ------------------------------------------------------------------------------- reward_to_go


def rtg_loop(rewards):
    """A correct student answer written with a Python loop."""
    out = torch.zeros_like(rewards)
    running = 0.0
    for t in reversed(range(len(rewards))):
        running = running + rewards[t]
        out[t] = running
    return out


def rtg_forward_cumsum(rewards):
    return torch.cumsum(rewards, 0)


def rtg_excluding_current(rewards):
    return rewards.flip(0).cumsum(0).flip(0) - rewards


def rtg_including_previous(rewards):
    """Off by one the other way: G_t starts at r_{t-1}."""
    out = rewards.flip(0).cumsum(0).flip(0)
    return torch.cat([out[:1], out[:-1]])


def rtg_in_place(rewards):
    for t in range(len(rewards) - 2, -1, -1):
        rewards[t] += rewards[t + 1]
    return rewards


def rtg_list(rewards):
    return [rewards[t:].sum().item() for t in range(len(rewards))]


def rtg_numpy(rewards):
    return np.cumsum(rewards.numpy()[::-1])[::-1].copy()


def rtg_flip_only_once(rewards):
    return rewards.flip(0).cumsum(0)


def rtg_scalar(rewards):
    return rewards.sum()


def rtg_keepdim(rewards):
    return reward_to_go(rewards).unsqueeze(-1)


def test_check_reward_to_go_passes_on_reference(capsys):
    assert_passes(check_reward_to_go, reward_to_go, capsys, "reward_to_go")
    assert_passes(check_reward_to_go, rtg_loop, capsys, "reward_to_go")
    assert_passes(check_reward_to_go, lambda r: reward_to_go(r.double()), capsys, "reward_to_go")
    assert_passes(check_reward_to_go, functools.partial(reward_to_go, gamma=1.0), capsys,
                  "reward_to_go")


@pytest.mark.parametrize("mutant, fragments", [
    (rtg_forward_cumsum, ["[1.0, 3.0, 6.0, 10.0, 15.0]", "[15.0, 14.0, 12.0, 9.0, 5.0]",
                          "to the END of the episode"]),
    (rtg_excluding_current, ["[14.0, 12.0, 9.0, 5.0, 0.0]", "to the END"]),
    (rtg_including_previous, ["expected [15.0, 14.0, 12.0, 9.0, 5.0]"]),
    (sum_of_rewards, ["[15.0, 15.0, 15.0, 15.0, 15.0]", "to the END"]),
    (rtg_in_place, ["modified its input rewards in place"]),
    (rtg_list, ["returned list; expected a torch.Tensor"]),
    (rtg_numpy, ["returned ndarray; expected a torch.Tensor"]),
    (rtg_flip_only_once, ["[5.0, 9.0, 12.0, 14.0, 15.0]"]),
    (rtg_scalar, ["returned shape (); expected (5,)"]),
    (rtg_keepdim, ["returned shape (5, 1); expected (5,)"]),
])
def test_check_reward_to_go_fails_on_mutants(mutant, fragments):
    assert_fails(check_reward_to_go, mutant, "reward_to_go", *fragments)


def test_check_reward_to_go_catches_error_only_on_long_random_case():
    """Right on the short examples, wrong after 100 steps: the random case catches it."""
    def truncated_horizon(rewards):
        out = reward_to_go(rewards)
        if len(rewards) > 100:
            out = torch.stack([rewards[t:t + 100].sum() for t in range(len(rewards))])
        return out

    assert_fails(check_reward_to_go, truncated_horizon, "200 random rewards",
                 "Each G_t must equal rewards[t:].sum().")


def test_check_reward_to_go_not_implemented():
    message = assert_fails(check_reward_to_go, not_implemented, "not implemented")
    assert "reward_to_go" in message and "NotImplementedError" in message


def test_check_reward_to_go_other_errors_propagate():
    def typo(rewards):
        return rewards.flip().cumsum(0)  # TypeError: flip() needs dims

    with pytest.raises(TypeError):
        check_reward_to_go(typo)


# ------------------------------------------------------------------------------- discounted


def disc_loop(rewards, gamma):
    out = torch.zeros_like(rewards)
    running = 0.0
    for t in reversed(range(len(rewards))):
        running = rewards[t] + gamma * running
        out[t] = running
    return out


def disc_absolute_powers(rewards, gamma):
    """γ^k instead of γ^(k−t)."""
    weighted = rewards * gamma ** torch.arange(len(rewards), dtype=rewards.dtype)
    return weighted.flip(0).cumsum(0).flip(0)


def disc_closed_form(rewards, gamma):
    """γ^(−t) Σ_{k≥t} γ^k r_k, with γ = 0 special-cased: overflows on long episodes."""
    if gamma == 0:
        return rewards.clone()
    powers = gamma ** torch.arange(len(rewards), dtype=rewards.dtype)
    return (rewards * powers).flip(0).cumsum(0).flip(0) / powers


def disc_closed_form_plain(rewards, gamma):
    powers = gamma ** torch.arange(len(rewards), dtype=rewards.dtype)
    return (rewards * powers).flip(0).cumsum(0).flip(0) / powers


def disc_ignores_gamma(rewards, gamma):
    return reward_to_go(rewards)


def disc_discounts_current_reward(rewards, gamma):
    """G_t = γ (r_t + G_{t+1})."""
    out = torch.zeros_like(rewards)
    running = 0.0
    for t in reversed(range(len(rewards))):
        running = gamma * (rewards[t] + running)
        out[t] = running
    return out


def disc_forward(rewards, gamma):
    out = torch.zeros_like(rewards)
    running = 0.0
    for t in range(len(rewards)):
        running = rewards[t] + gamma * running
        out[t] = running
    return out


def disc_in_place(rewards, gamma):
    for t in range(len(rewards) - 2, -1, -1):
        rewards[t] += gamma * rewards[t + 1]
    return rewards


def disc_sum_of_rewards(rewards, gamma):
    return sum_of_rewards(rewards)


def test_check_discounted_passes_on_reference(capsys):
    name = "discounted_reward_to_go"
    assert_passes(check_discounted_reward_to_go, reward_to_go, capsys, name)
    assert_passes(check_discounted_reward_to_go, lambda r, gamma: reward_to_go(r, gamma=gamma), capsys,
                  name)
    assert_passes(check_discounted_reward_to_go, disc_loop, capsys, name)
    assert_passes(check_discounted_reward_to_go, functools.partial(reward_to_go), capsys, name)


def test_check_discounted_passes_gamma_by_keyword(capsys):
    """γ is passed as `gamma=`, as the exercise's signature names it, so the check sets it."""
    assert_passes(check_discounted_reward_to_go, functools.partial(reward_to_go, gamma=0.99),
                  capsys, "discounted_reward_to_go")


@pytest.mark.parametrize("mutant, fragments", [
    (disc_absolute_powers, ["gamma=0.5", "[1.75, 0.75, 0.25]",
                            "Discount relative to the CURRENT step: γ^(k−t), not γ^k."]),
    (disc_ignores_gamma, ["gamma=0.5", "[3.0, 2.0, 1.0]", "expected [1.75, 1.5, 1.0]"]),
    (disc_discounts_current_reward, ["gamma=0.5", "[0.875, 0.75, 0.5]"]),
    (disc_forward, ["[1.0, 3.0, 6.0, 10.0, 15.0]", "to the END"]),
    (disc_in_place, ["modified its input rewards in place"]),
    (disc_sum_of_rewards, ["[15.0, 15.0, 15.0, 15.0, 15.0]"]),
    (disc_closed_form, ["torch.ones(5000), gamma=0.9", "overflow", "G_t = r_t + γ G_{t+1}"]),
    (disc_closed_form_plain, ["gamma=0.0", "With γ = 0 only the immediate reward counts."]),
    (lambda r, gamma: disc_loop(r, gamma).tolist(), ["returned list; expected a torch.Tensor"]),
    (lambda r, gamma: disc_loop(r, gamma).numpy(), ["returned ndarray; expected a torch.Tensor"]),
])
def test_check_discounted_fails_on_mutants(mutant, fragments):
    assert_fails(check_discounted_reward_to_go, mutant, "discounted_reward_to_go", *fragments)


def test_check_discounted_catches_wrong_recursion_on_random_case():
    """Right on every short example (γ ∈ {0, 0.5, 0.9, 1}), wrong for γ = 0.99."""
    def hard_coded(rewards, gamma):
        if gamma == 0.99:
            return disc_loop(rewards, 0.98)
        return disc_loop(rewards, gamma)

    assert_fails(check_discounted_reward_to_go, hard_coded, "gamma=0.99",
                 "It must satisfy G_t = r_t + γ G_{t+1}.")


def test_check_discounted_catches_float16_precision():
    def half(rewards, gamma):
        return disc_loop(rewards.half(), gamma).float()

    assert_fails(check_discounted_reward_to_go, half, "discounted_reward_to_go")


def test_check_discounted_not_implemented():
    assert_fails(check_discounted_reward_to_go, not_implemented,
                 "discounted_reward_to_go is not implemented")


# ------------------------------------------------------------------------------- surrogate loss


def loss_wrong_sign(log_probs, weights):
    return (log_probs * weights).mean()


def loss_sum(log_probs, weights):
    return -(log_probs * weights).sum()


def loss_detached(log_probs, weights):
    return -(log_probs.detach() * weights).mean()


def loss_item(log_probs, weights):
    return -(log_probs * weights).mean().item()


def loss_rewrapped(log_probs, weights):
    return torch.tensor(-(log_probs * weights).mean().item())


def loss_mean_of_means(log_probs, weights):
    return -log_probs.mean() * weights.mean()


def loss_probs(log_probs, weights):
    return -(log_probs.exp() * weights).mean()


def loss_unreduced(log_probs, weights):
    return -(log_probs * weights)


def loss_keepdim(log_probs, weights):
    return -(log_probs * weights).mean().reshape(1)


def loss_numpy(log_probs, weights):
    return -(log_probs.detach().numpy() * weights.numpy()).mean()


def loss_normalised_weights(log_probs, weights):
    w = (weights - weights.mean()) / weights.std()
    return -(log_probs * w).mean()


def loss_in_place(log_probs, weights):
    return (log_probs * weights.neg_()).mean()


def test_check_surrogate_loss_passes_on_reference(capsys):
    assert_passes(check_surrogate_loss, policy_gradient_loss, capsys, "surrogate_loss")
    assert_passes(check_surrogate_loss, lambda lp, w: -(lp * w).sum() / len(lp), capsys,
                  "surrogate_loss")
    assert_passes(check_surrogate_loss, lambda lp, w: -torch.dot(lp, w) / lp.numel(), capsys,
                  "surrogate_loss")


@pytest.mark.parametrize("mutant, fragments", [
    (loss_wrong_sign, ["returned -2.8333", "expected 2.8333", "Check the sign"]),
    (loss_sum, ["returned 8.5000", "Average over the B timesteps"]),
    (loss_detached, ["has no gradient", "do not detach log_probs or use .item()"]),
    (loss_rewrapped, ["has no gradient", "do not detach log_probs or use .item()"]),
    (loss_item, ["returned a float", "no .item()"]),
    (loss_numpy, ["expected a torch.Tensor"]),
    (loss_mean_of_means, ["returned 2.3333", "expected 2.8333"]),
    (loss_probs, ["expected 2.8333"]),
    (loss_unreduced, ["shape (3,)", "expected a scalar", "average over the batch"]),
    (loss_keepdim, ["returned shape (1,); expected ()"]),
    (loss_normalised_weights, ["expected 2.8333"]),
    (loss_in_place, ["the gradient of"]),
])
def test_check_surrogate_loss_fails_on_mutants(mutant, fragments):
    assert_fails(check_surrogate_loss, mutant, "surrogate_loss", *fragments)


def test_check_surrogate_loss_wrong_sign_hint_only_for_sign():
    message = assert_fails(check_surrogate_loss, loss_mean_of_means)
    assert "Check the sign" not in message and "Average over" not in message


def test_check_surrogate_loss_catches_wrong_gradient():
    """The right value but a wrong gradient: only the gradient case catches it."""
    def squared(log_probs, weights):
        value = -(log_probs * weights).mean()
        return value + (log_probs ** 2).sum() - (log_probs ** 2).sum().detach()

    assert_fails(check_surrogate_loss, squared, "the gradient of", "∂L/∂log π_t must be −w_t / B.")


def test_check_surrogate_loss_catches_hard_coded_answer():
    def hard_coded(log_probs, weights):
        if len(log_probs) == 3:
            return -(log_probs * weights).mean()
        return -(log_probs * weights).sum()

    assert_fails(check_surrogate_loss, hard_coded, "64 random steps")


def test_check_surrogate_loss_not_implemented():
    assert_fails(check_surrogate_loss, not_implemented, "surrogate_loss is not implemented")


# ------------------------------------------------------------------------------- baseline advantage


def adv_not_detached(returns, values):
    return returns - values


def adv_plus(returns, values):
    return values.detach() + returns


def adv_reversed(returns, values):
    return values.detach() - returns


def adv_normalised(returns, values):
    a = returns - values.detach()
    return (a - a.mean()) / (a.std() + 1e-8)


def adv_mean_baseline(returns, values):
    return returns - values.detach().mean()


def adv_returns_only(returns, values):
    return returns.clone()


def adv_numpy(returns, values):
    return returns.numpy() - values.detach().numpy()


def adv_in_place(returns, values):
    return returns.sub_(values.detach())


def adv_squeezed_wrong(returns, values):
    return (returns - values.detach()).unsqueeze(-1)


def test_check_baseline_advantage_passes_on_reference(capsys):
    assert_passes(check_baseline_advantage, baseline_advantage, capsys, "baseline_advantage")
    assert_passes(check_baseline_advantage, lambda g, v: (g - v).detach(), capsys,
                  "baseline_advantage")
    assert_passes(check_baseline_advantage, lambda g, v: g - v.data, capsys, "baseline_advantage")


@pytest.mark.parametrize("mutant, fragments", [
    (adv_not_detached, ["carries a gradient into the value network", "values.detach()"]),
    (adv_plus, ["returned [4.0, 3.0, 2.0]", "expected [2.0, 1.0, 0.0]", "A_t = G_t − V(s_t)."]),
    (adv_reversed, ["returned [-2.0, -1.0, 0.0]", "A_t = G_t − V(s_t)."]),
    (adv_normalised, ["returned [1.0, 0.0, -1.0]", "A_t = G_t − V(s_t)."]),
    (adv_mean_baseline, ["50 random returns and values"]),
    (adv_returns_only, ["returned [3.0, 2.0, 1.0]"]),
    (adv_numpy, ["returned ndarray; expected a torch.Tensor"]),
    (adv_in_place, ["50 random returns and values"]),
    (adv_squeezed_wrong, ["returned shape (3, 1); expected (3,)"]),
])
def test_check_baseline_advantage_fails_on_mutants(mutant, fragments):
    assert_fails(check_baseline_advantage, mutant, "baseline_advantage", *fragments)


def test_check_baseline_advantage_not_implemented():
    assert_fails(check_baseline_advantage, not_implemented,
                 "baseline_advantage is not implemented")
