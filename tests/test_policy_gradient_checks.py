"""Mutant tests of notebook 05's checks: each check passes on the reference implementation and
fails, with a helpful message, on plausible wrong answers of students."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from check_helpers import assert_fails, assert_passes, not_implemented, own_copy
from torch import nn

from course_utils.agents import reinforce
from course_utils.checks import (
    check_discounted_reward_to_go,
    check_reinforce_update,
    check_reward_to_go,
    check_softmax_score,
)
from course_utils.returns import reward_to_go, sum_of_rewards

# The package's answers as a student would write them: the checks refuse the package's own
# functions (checks.common.references).
reward_to_go = own_copy(reward_to_go)
discounted_reward_to_go = own_copy(reinforce.discounted_reward_to_go)
reinforce_update = own_copy(reinforce.reinforce_update)


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


def disc_loop(rewards, gamma, last_value=0.0):
    out = torch.zeros_like(rewards)
    running = last_value
    for t in reversed(range(len(rewards))):
        running = rewards[t] + gamma * running
        out[t] = running
    return out


def disc_absolute_powers(rewards, gamma, last_value=0.0):
    """γ^k instead of γ^(k−t)."""
    weighted = rewards * gamma ** torch.arange(len(rewards), dtype=rewards.dtype)
    return weighted.flip(0).cumsum(0).flip(0) + last_value


def disc_closed_form(rewards, gamma, last_value=0.0):
    """γ^(−t) Σ_{k≥t} γ^k r_k, with γ = 0 special-cased: overflows on long episodes."""
    if gamma == 0:
        return rewards.clone()
    powers = gamma ** torch.arange(len(rewards), dtype=rewards.dtype)
    tail = last_value * gamma ** torch.arange(len(rewards), 0, -1, dtype=rewards.dtype)
    return (rewards * powers).flip(0).cumsum(0).flip(0) / powers + tail


def disc_closed_form_plain(rewards, gamma, last_value=0.0):
    powers = gamma ** torch.arange(len(rewards), dtype=rewards.dtype)
    return (rewards * powers).flip(0).cumsum(0).flip(0) / powers


def disc_ignores_gamma(rewards, gamma, last_value=0.0):
    return reward_to_go(rewards) + last_value


def disc_discounts_current_reward(rewards, gamma, last_value=0.0):
    """G_t = γ (r_t + G_{t+1})."""
    out = torch.zeros_like(rewards)
    running = 0.0
    for t in reversed(range(len(rewards))):
        running = gamma * (rewards[t] + running)
        out[t] = running
    return out


def disc_forward(rewards, gamma, last_value=0.0):
    out = torch.zeros_like(rewards)
    running = 0.0
    for t in range(len(rewards)):
        running = rewards[t] + gamma * running
        out[t] = running
    return out


def disc_in_place(rewards, gamma, last_value=0.0):
    for t in range(len(rewards) - 2, -1, -1):
        rewards[t] += gamma * rewards[t + 1]
    return rewards


def disc_sum_of_rewards(rewards, gamma, last_value=0.0):
    return sum_of_rewards(rewards)


def disc_no_bootstrap(rewards, gamma, last_value=0.0):
    return disc_loop(rewards, gamma)


def disc_undiscounted_bootstrap(rewards, gamma, last_value=0.0):
    """The bootstrap value added to every step without its discount γ^(T−t)."""
    return disc_loop(rewards, gamma) + last_value


def disc_bootstrap_at_last_step(rewards, gamma, last_value=0.0):
    """G_{T−1} = last_value instead of r_{T−1} + γ last_value."""
    out = disc_loop(rewards, gamma, last_value)
    return torch.cat([disc_loop(rewards[:-1], gamma, last_value), torch.as_tensor([last_value],
                                                                                  dtype=out.dtype)])


def disc_float_only(rewards, gamma, last_value=0.0):
    """Works with a float bootstrap value only."""
    if isinstance(last_value, torch.Tensor):
        return disc_loop(rewards, gamma)
    return disc_loop(rewards, gamma, last_value)


def test_check_discounted_passes_on_reference(capsys):
    name = "discounted_reward_to_go"
    assert_passes(check_discounted_reward_to_go, discounted_reward_to_go, capsys, name)
    assert_passes(check_discounted_reward_to_go, disc_loop, capsys, name)
    assert_passes(check_discounted_reward_to_go,
                  lambda r, gamma, last_value=0.0: disc_loop(r.double(), gamma, last_value),
                  capsys, name)


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
    (lambda r, gamma, last_value=0.0: disc_loop(r, gamma).tolist(),
     ["returned list; expected a torch.Tensor"]),
    (lambda r, gamma, last_value=0.0: disc_loop(r, gamma).numpy(),
     ["returned ndarray; expected a torch.Tensor"]),
    (disc_no_bootstrap, ["last_value=8.0", "[1.75, 1.5, 1.0]", "expected [2.75, 3.5, 5.0]",
                         "starts from G_T = last_value"]),
    (disc_undiscounted_bootstrap, ["last_value=8.0", "[9.75, 9.5, 9.0]", "γ^(T−t)"]),
    (disc_bootstrap_at_last_step, ["[10.0, 9.0, 7.0, 4.0, 0.0]", "to the END"]),
    (disc_float_only, ["last_value=tensor(4.)", "0-d tensor"]),
])
def test_check_discounted_fails_on_mutants(mutant, fragments):
    assert_fails(check_discounted_reward_to_go, mutant, "discounted_reward_to_go", *fragments)


def test_check_discounted_catches_wrong_recursion_on_random_case():
    """Right on every short example (γ ∈ {0, 0.5, 0.9, 1}), wrong for γ = 0.99."""
    def hard_coded(rewards, gamma, last_value=0.0):
        if gamma == 0.99:
            return disc_loop(rewards, 0.98, last_value)
        return disc_loop(rewards, gamma, last_value)

    assert_fails(check_discounted_reward_to_go, hard_coded, "gamma=0.99",
                 "It must satisfy G_t = r_t + γ G_{t+1}.")


def test_check_discounted_catches_float16_precision():
    def half(rewards, gamma, last_value=0.0):
        return disc_loop(rewards.half(), gamma, last_value).float()

    assert_fails(check_discounted_reward_to_go, half, "discounted_reward_to_go")


def test_check_discounted_not_implemented():
    assert_fails(check_discounted_reward_to_go, not_implemented,
                 "discounted_reward_to_go is not implemented")




# ------------------------------------------------------------------------------- softmax score


def score_reference(logits, actions):
    return nn.functional.one_hot(actions, logits.shape[-1]) - torch.softmax(logits, -1)


def score_by_autograd(logits, actions):
    leaf = logits.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(torch.log_softmax(leaf, -1).gather(1, actions[:, None]).sum(), leaf)
    return grad


def test_check_softmax_score_passes(capsys):
    assert_passes(check_softmax_score, score_reference, capsys, "softmax_score")
    assert_passes(check_softmax_score, score_by_autograd, capsys, "softmax_score")


@pytest.mark.parametrize("mutant, fragments", [
    (lambda z, a: -score_reference(z, a), ["expected [0.5, -0.5, -0.5, 0.5]", "1 − π = 0.5"]),
    (lambda z, a: nn.functional.one_hot(a, z.shape[-1]).float(),
     ["[1.0, 0.0, 0.0, 1.0]", "expected [0.5, -0.5, -0.5, 0.5]"]),
    (lambda z, a: nn.functional.one_hot(a, z.shape[-1]) - z, ["returned [1.0, 0.0, 0.0, 1.0]"]),
    (lambda z, a: nn.functional.one_hot(a, z.shape[-1]) - torch.log_softmax(z, -1),
     ["returned [1.6931, 0.6931, 0.6931, 1.6931]"]),
    (lambda z, a: score_reference(z, torch.zeros_like(a)),
     ["[0.5, -0.5, 0.5, -0.5]", "expected [0.5, -0.5, -0.5, 0.5]"]),
    (lambda z, a: score_reference(z, a).sum(-1), ["returned shape (2,); expected (2, 2)"]),
    (lambda z, a: score_reference(z, a).numpy(), ["expected a torch.Tensor"]),
])
def test_check_softmax_score_fails_on_mutants(mutant, fragments):
    assert_fails(check_softmax_score, mutant, "softmax_score", *fragments)


def test_check_softmax_score_sign_and_normaliser_hints():
    message = assert_fails(check_softmax_score,
                           lambda z, a: -score_reference(z, a) if z.shape[0] == 1 else score_reference(z, a))
    assert "The sign is reversed" in message
    message = assert_fails(check_softmax_score,
                           lambda z, a: nn.functional.one_hot(a, z.shape[-1]).float()
                           if z.shape[0] == 1 else score_reference(z, a))
    assert "its derivative adds −π_b" in message


def test_check_softmax_score_catches_error_only_on_random_case():
    def three_actions_only(logits, actions):
        out = score_reference(logits, actions)
        return out if logits.shape[0] < 6 else out * 0.9

    assert_fails(check_softmax_score, three_actions_only, "6 random rows", "autograd")


# ------------------------------------------------------------------------------- the update


def update_variant(agent, batch, config, *, sign=1.0, reduce="mean", reward_to_go=None,
                   gamma=None, bootstrap="truncated", across=False, detach=True, baseline=True,
                   refit_first=False, zero_grad=True, step=True, value_target="returns",
                   value_zero_grad=True, train_value=True, episode_mean=False):
    """The reference update with one of the usual mistakes switched on."""
    reward_to_go = config.reward_to_go if reward_to_go is None else reward_to_go
    gamma = config.gamma if gamma is None else gamma
    n = len(batch.lengths)
    last_values = torch.zeros(n)
    if agent.value is not None:
        values = agent.value(batch.final_observations).squeeze(-1)
        values = values.detach() if detach else values
        mask = {"truncated": batch.truncated.float(), "none": torch.zeros(n),
                "all": torch.ones(n)}[bootstrap]
        last_values = values * mask
    if across:
        returns = reinforce.discounted_reward_to_go(batch.rewards, gamma)
    else:
        returns = []
        for rewards, last in zip(batch.rewards.split(batch.lengths), last_values):
            g = discounted_reward_to_go_with_grad(rewards, gamma, last)
            returns.append(g if reward_to_go else g[0].expand_as(g))
        returns = torch.cat(returns)

    def fit_value():
        target = returns.detach() if value_target == "returns" else weights.detach()
        for _ in range(config.value_steps):
            value_loss = nn.functional.mse_loss(agent.value(batch.observations).squeeze(-1), target)
            if value_zero_grad:
                agent.value_optimizer.zero_grad()
            value_loss.backward()
            agent.value_optimizer.step()
        return value_loss

    weights = returns
    if agent.value is not None and refit_first:
        fit_value()
    if agent.value is not None and baseline:
        values = agent.value(batch.observations).squeeze(-1)
        weights = returns - (values.detach() if detach else values)
    log_probs = agent.policy.distribution(batch.observations).log_prob(batch.actions)
    loss = -(log_probs * weights).sum() * sign
    loss = loss / (n if episode_mean else len(log_probs)) if reduce == "mean" else loss
    if zero_grad:
        agent.policy_optimizer.zero_grad()
    loss.backward()
    if step:
        agent.policy_optimizer.step()
    metrics = {"loss": loss.detach()}
    if agent.value is not None:
        value_loss = fit_value() if train_value and not refit_first else torch.tensor(0.0)
        if refit_first:
            value_loss = nn.functional.mse_loss(agent.value(batch.observations).squeeze(-1),
                                                returns.detach())
        metrics["value_loss"] = value_loss.detach()
    return metrics


def discounted_reward_to_go_with_grad(rewards, gamma, last_value):
    """The recursion on tensors, so that a non-detached bootstrap value keeps its gradient."""
    out, running = [], last_value
    for t in range(len(rewards) - 1, -1, -1):
        running = rewards[t] + gamma * running
        out.append(running)
    return torch.stack(out[::-1])


def variant(**mistakes):
    return functools.partial(update_variant, **mistakes)


def test_check_reinforce_update_passes(capsys):
    assert_passes(check_reinforce_update, reinforce_update, capsys, "reinforce_update")
    assert_passes(check_reinforce_update, variant(), capsys, "reinforce_update")


def test_check_reinforce_update_passes_zero_grad_after_step(capsys):
    """Zeroing the gradients after the step (instead of before backward) is also right."""
    def zero_after(agent, batch, config):
        metrics = update_variant(agent, batch, config, zero_grad=False)
        agent.policy_optimizer.zero_grad()
        return metrics

    assert_passes(check_reinforce_update, zero_after, capsys, "reinforce_update")


@pytest.mark.parametrize("mistakes, fragments", [
    (dict(sign=-1.0), ["(reward-to-go, γ = 1, no baseline), update 1", "wrong sign",
                       "gradient DESCENT"]),
    (dict(reduce="sum"), ["sums over the B steps"]),
    (dict(episode_mean=True), ["divides by the number of episodes N"]),
    (dict(reward_to_go=False), ["(reward-to-go, γ = 1, no baseline)", "mixed up"]),
    (dict(reward_to_go=True), ["(total return, γ = 1, no baseline)", "mixed up"]),
    (dict(across=True), ["run across episode boundaries"]),
    (dict(gamma=1.0), ["(reward-to-go, γ = 0.9, baseline)", "not discounted"]),
    (dict(bootstrap="none"), ["truncated episode was treated as terminal"]),
    (dict(bootstrap="all"), ["A terminated episode was bootstrapped"]),
    (dict(baseline=False), ["No baseline was subtracted"]),
    (dict(refit_first=True), ["refitted before the weights were computed"]),
    (dict(detach=False), ["gradient flows into the baseline", "detach"]),
    (dict(step=False), ["the policy's parameters did not change"]),
    (dict(zero_grad=False), ["update 2 of 2", "only at the second update",
                             "gradients zeroed before each backward"]),
    (dict(train_value=False), ["(reward-to-go, γ = 0.9, baseline), update 1",
                               "the baseline V_φ was not trained"]),
    (dict(value_target="weights"), ["V_φ's parameters after the update differ", "not the advantages"]),
    (dict(value_zero_grad=False), ["V_φ's parameters after the update differ",
                                   "zeroing its gradients before each"]),
])
def test_check_reinforce_update_fails_on_mutants(mistakes, fragments):
    assert_fails(check_reinforce_update, variant(**mistakes), "reinforce_update", *fragments)


def test_check_reinforce_update_catches_a_leak_that_does_not_change_the_parameters():
    """A baseline not detached in the policy loss, but zeroed before its regression: every loss
    and parameter is right; only the gradient reaching V_φ shows the mistake."""
    message = assert_fails(check_reinforce_update, variant(detach=False))
    assert "the policy loss's gradient flows into the baseline" in message


def test_check_reinforce_update_untrained_value_parameters():
    def no_value_step(agent, batch, config):
        if agent.value is None:
            return update_variant(agent, batch, config)
        optimizer, agent.value_optimizer = agent.value_optimizer, torch.optim.SGD(
            agent.value.parameters(), lr=0.0)
        try:
            return update_variant(agent, batch, config)
        finally:
            agent.value_optimizer = optimizer

    assert_fails(check_reinforce_update, no_value_step, "the baseline V_φ was not trained")


def test_check_reinforce_update_wrong_returns():
    def no_metrics(agent, batch, config):
        update_variant(agent, batch, config)
        return None

    def wrong_value_loss(agent, batch, config):
        metrics = update_variant(agent, batch, config)
        if "value_loss" in metrics:
            metrics["value_loss"] = metrics["value_loss"] * 2
        return metrics

    def float_loss(agent, batch, config):
        return {key: value.item() for key, value in update_variant(agent, batch, config).items()}

    def modifies_batch(agent, batch, config):
        batch.rewards.mul_(1.0)
        batch.rewards[0] += 1.0
        return update_variant(agent, batch, config)

    assert_fails(check_reinforce_update, no_metrics, "returned NoneType", "'loss'")
    check_reinforce_update(float_loss)
    assert_fails(check_reinforce_update, wrong_value_loss, "metrics['value_loss']",
                 "the last regression step")
    assert_fails(check_reinforce_update, modifies_batch, "modified its input rewards in place")


def test_check_reinforce_update_not_implemented():
    assert_fails(check_reinforce_update, not_implemented, "reinforce_update is not implemented")
