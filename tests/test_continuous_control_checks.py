"""Notebook 08's exercise checks: they pass on correct solutions (the library's and other correct
styles) and fail, with a useful message, on the mistakes students make."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from check_helpers import assert_fails, assert_passes, not_implemented, own_copy
from course_utils.agents.legacy_ddpg import (ddpg_actor_loss, ddpg_critic_target, td3_critic_target,
                                      td3_target, td3_target_actions)
from course_utils.agents.legacy_sac import sac_critic_target, tanh_log_prob_correction, temperature_loss
from course_utils.checks import (check_ddpg_actor_loss, check_ddpg_critic_target,
                                  check_sac_critic_target, check_tanh_log_prob_correction,
                                  check_td3_target, check_temperature_loss)

# The package's answers as a student would write them: the checks refuse the package's own
# functions (checks.common.references).
ddpg_actor_loss, ddpg_critic_target, td3_target = map(own_copy, (ddpg_actor_loss, ddpg_critic_target,
                                                                 td3_target))
sac_critic_target, tanh_log_prob_correction, temperature_loss = map(
    own_copy, (sac_critic_target, tanh_log_prob_correction, temperature_loss))

# ------------------------------------------------------------------------ DDPG critic target


def ddpg_where(rewards, next_q_target, terminated, gamma):
    """Correct, with torch.where."""
    return torch.where(terminated > 0.5, rewards, rewards + gamma * next_q_target)


def ddpg_no_mask(rewards, next_q_target, terminated, gamma):
    return rewards + gamma * next_q_target


def ddpg_inverted_mask(rewards, next_q_target, terminated, gamma):
    return rewards + gamma * terminated * next_q_target


def ddpg_masks_reward(rewards, next_q_target, terminated, gamma):
    return (1 - terminated) * (rewards + gamma * next_q_target)


def ddpg_no_gamma(rewards, next_q_target, terminated, gamma):
    return rewards + (1 - terminated) * next_q_target


def ddpg_discounts_reward(rewards, next_q_target, terminated, gamma):
    return gamma * (rewards + (1 - terminated) * next_q_target)


def ddpg_in_place(rewards, next_q_target, terminated, gamma):
    rewards += gamma * (1 - terminated) * next_q_target
    return rewards


def ddpg_column(rewards, next_q_target, terminated, gamma):
    return (rewards + gamma * (1 - terminated) * next_q_target)[:, None]


def test_check_ddpg_critic_target_passes_on_references(capsys):
    for fn in (ddpg_critic_target, ddpg_where):
        assert_passes(check_ddpg_critic_target, fn, capsys, "ddpg_critic_target")


@pytest.mark.parametrize("mutant, fragments", [
    (ddpg_no_mask, ["expected [10.0, -3.6, -1.0, 4.7]", "terminated transition has no future"]),
    (ddpg_inverted_mask, ["mask is inverted"]),
    (ddpg_masks_reward, ["reward of a terminated transition still counts"]),
    (ddpg_no_gamma, ["Discount the next state's value"]),
    (ddpg_discounts_reward, ["Only the next state's value is discounted"]),
    (ddpg_in_place, ["modified its input rewards in place"]),
    (ddpg_column, ["returned shape (4, 1); expected (4,)"]),
])
def test_check_ddpg_critic_target_fails_on_mutants(mutant, fragments):
    assert_fails(check_ddpg_critic_target, mutant, "ddpg_critic_target", *fragments)


def test_check_ddpg_critic_target_not_implemented():
    assert_fails(check_ddpg_critic_target, not_implemented,
                 "ddpg_critic_target is not implemented yet")


# ---------------------------------------------------------------------------- DDPG actor loss


def actor_loss_neg_sum_over_len(q_values):
    """Correct, written out."""
    return -q_values.sum() / len(q_values)


def actor_loss_wrong_sign(q_values):
    return q_values.mean()


def actor_loss_sum(q_values):
    return -q_values.sum()


def actor_loss_detached(q_values):
    return -q_values.detach().mean()


def actor_loss_item(q_values):
    return -q_values.mean().item()


def actor_loss_per_state(q_values):
    return -q_values


def actor_loss_squared(q_values):
    return (q_values ** 2).mean()


def test_check_ddpg_actor_loss_passes_on_references(capsys):
    for fn in (ddpg_actor_loss, actor_loss_neg_sum_over_len):
        assert_passes(check_ddpg_actor_loss, fn, capsys, "ddpg_actor_loss")


@pytest.mark.parametrize("mutant, fragments", [
    (actor_loss_wrong_sign, ["expected -2.0000", "Check the sign"]),
    (actor_loss_sum, ["expected -2.0000", "Average over the B states"]),
    (actor_loss_detached, ["has no gradient"]),
    (actor_loss_item, ["returned a float", "no .item()"]),
    (actor_loss_per_state, ["shape (4,)", "expected a scalar"]),
    (actor_loss_squared, ["returned 11.5000; expected -2.0000"]),
])
def test_check_ddpg_actor_loss_fails_on_mutants(mutant, fragments):
    assert_fails(check_ddpg_actor_loss, mutant, "ddpg_actor_loss", *fragments)


def test_check_ddpg_actor_loss_not_implemented():
    assert_fails(check_ddpg_actor_loss, not_implemented, "ddpg_actor_loss is not implemented yet")


# --------------------------------------------------------------------------------- TD3 target


def td3_written_out(rewards, next_observations, terminated, gamma, actor_target, critic1_target,
                    critic2_target, noise_std, noise_clip, generator=None):
    """Correct, in the style of the TD3 authors' code (randn_like, no generator)."""
    with torch.no_grad():
        mu = actor_target(next_observations)
        noise = (torch.randn_like(mu) * noise_std).clamp(-noise_clip, noise_clip)
        actions = (mu + noise).clamp(-1.0, 1.0)
        q = torch.min(critic1_target(next_observations, actions),
                      critic2_target(next_observations, actions))
        return rewards + gamma * (1 - terminated) * q


def _td3_with(smooth, combine):
    def target(rewards, next_observations, terminated, gamma, actor_target, critic1_target,
               critic2_target, noise_std, noise_clip, generator=None):
        actions = smooth(actor_target(next_observations), noise_std, noise_clip, generator)
        q1 = critic1_target(next_observations, actions)
        q2 = critic2_target(next_observations, actions)
        return combine(rewards, q1, q2, terminated, gamma)
    return target


def _good_combine(rewards, q1, q2, terminated, gamma):
    return td3_critic_target(rewards, q1, q2, terminated, gamma)


def _smooth_unclipped_noise(actions, std, clip, generator):
    return (actions + std * torch.randn(actions.shape, generator=generator)).clamp(-1, 1)


def _smooth_unclipped_actions(actions, std, clip, generator):
    noise = (std * torch.randn(actions.shape, generator=generator)).clamp(-clip, clip)
    return actions + noise


def _smooth_no_noise(actions, std, clip, generator):
    return actions


def _smooth_uniform(actions, std, clip, generator):
    noise = (std * (2 * torch.rand(actions.shape, generator=generator) - 1)).clamp(-clip, clip)
    return (actions + noise).clamp(-1, 1)


def _smooth_one_noise(actions, std, clip, generator):
    noise = (std * torch.randn(1, generator=generator)).clamp(-clip, clip)
    return (actions + noise).clamp(-1, 1)


def _smooth_variance(actions, std, clip, generator):
    noise = (std ** 2 * torch.randn(actions.shape, generator=generator)).clamp(-clip, clip)
    return (actions + noise).clamp(-1, 1)


def td3_separate_noise(rewards, next_observations, terminated, gamma, actor_target,
                       critic1_target, critic2_target, noise_std, noise_clip, generator=None):
    mu = actor_target(next_observations)
    a1 = td3_target_actions(mu, noise_std, noise_clip, generator)
    a2 = td3_target_actions(mu, noise_std, noise_clip, generator)
    q = torch.min(critic1_target(next_observations, a1), critic2_target(next_observations, a2))
    return rewards + gamma * (1 - terminated) * q


td3_max = _td3_with(td3_target_actions, lambda r, q1, q2, d, g: r + g * (1 - d) * torch.max(q1, q2))
td3_mean = _td3_with(td3_target_actions, lambda r, q1, q2, d, g: r + g * (1 - d) * (q1 + q2) / 2)
td3_critic1_only = _td3_with(td3_target_actions, lambda r, q1, q2, d, g: r + g * (1 - d) * q1)
td3_no_mask = _td3_with(td3_target_actions, lambda r, q1, q2, d, g: r + g * torch.min(q1, q2))
td3_no_gamma = _td3_with(td3_target_actions, lambda r, q1, q2, d, g: r + (1 - d) * torch.min(q1, q2))
td3_unclipped_noise = _td3_with(_smooth_unclipped_noise, _good_combine)
td3_unclipped_actions = _td3_with(_smooth_unclipped_actions, _good_combine)
td3_no_noise = _td3_with(_smooth_no_noise, _good_combine)
td3_uniform_noise = _td3_with(_smooth_uniform, _good_combine)
td3_one_noise = _td3_with(_smooth_one_noise, _good_combine)
td3_variance_noise = _td3_with(_smooth_variance, _good_combine)


def td3_on_observations_mean(rewards, next_observations, terminated, gamma, actor_target,
                             critic1_target, critic2_target, noise_std, noise_clip, generator=None):
    """Forgets the target actor: evaluates the critics at zero actions."""
    actions = torch.zeros(len(rewards), 2)
    q = torch.min(critic1_target(next_observations, actions),
                  critic2_target(next_observations, actions))
    return rewards + gamma * (1 - terminated) * q


def test_check_td3_target_passes_on_references(capsys):
    for fn in (td3_target, td3_written_out, _td3_with(td3_target_actions, _good_combine)):
        assert_passes(check_td3_target, fn, capsys, "td3_target")


@pytest.mark.parametrize("mutant, fragments", [
    (td3_max, ["noise_std=0.0", "MAXIMUM of the two critics"]),
    (td3_mean, ["averages the two critics"]),
    (td3_critic1_only, ["one critic only"]),
    (td3_no_mask, ["terminated transition has no future"]),
    (td3_no_gamma, ["Discount the next state's value"]),
    (td3_unclipped_noise, ["noise_std=100.0", "at most noise_clip = 0.3", "Clip the NOISE"]),
    (td3_unclipped_actions, ["noise_std=100.0", "Clip the smoothed action to the action box"]),
    (td3_no_noise, ["without noise"]),
    (td3_uniform_noise, ["noise_std=0.2", "expected mean 0 and about 0.198"]),
    (td3_variance_noise, ["noise_std=0.2", "not σ² times it"]),
    (td3_one_noise, ["the same for every transition"]),
    (td3_separate_noise, ["showed the two critics different actions"]),
    (td3_on_observations_mean, ["must see the target actor's action"]),
])
def test_check_td3_target_fails_on_mutants(mutant, fragments):
    assert_fails(check_td3_target, mutant, "td3_target", *fragments)


def test_check_td3_target_not_implemented():
    assert_fails(check_td3_target, not_implemented, "td3_target is not implemented yet")


# ------------------------------------------------------------------ tanh log-prob correction


def correction_log_cosh(pre_tanh):
    """Correct: log(1 − tanh²u) = −2 log cosh u = −2(|u| + log(1 + e^{−2|u|}) − log 2)."""
    u = pre_tanh.abs()
    return (-2.0 * (u + torch.log1p(torch.exp(-2.0 * u)) - math.log(2.0))).sum(-1)


def correction_naive(pre_tanh):
    return torch.log(1 - torch.tanh(pre_tanh) ** 2).sum(dim=-1)


def correction_epsilon(pre_tanh):
    return torch.log(1 - torch.tanh(pre_tanh) ** 2 + 1e-6).sum(dim=-1)


def correction_clamped(pre_tanh):
    return torch.log((1 - torch.tanh(pre_tanh) ** 2).clamp(min=1e-6)).sum(dim=-1)


def correction_no_sum(pre_tanh):
    return 2.0 * (math.log(2.0) - pre_tanh - F.softplus(-2.0 * pre_tanh))


def correction_sum_batch(pre_tanh):
    return (2.0 * (math.log(2.0) - pre_tanh - F.softplus(-2.0 * pre_tanh))).sum(dim=0)


def correction_mean(pre_tanh):
    return (2.0 * (math.log(2.0) - pre_tanh - F.softplus(-2.0 * pre_tanh))).mean(dim=-1)


def correction_wrong_sign(pre_tanh):
    return -tanh_log_prob_correction(pre_tanh)


def correction_no_factor_two(pre_tanh):
    return (math.log(2.0) - pre_tanh - F.softplus(-2.0 * pre_tanh)).sum(dim=-1)


def correction_without_tanh(pre_tanh):
    return torch.log(1 - pre_tanh ** 2).sum(dim=-1)


def correction_numpy(pre_tanh):
    return torch.from_numpy(tanh_log_prob_correction(pre_tanh.detach()).numpy())


def correction_in_place(pre_tanh):
    pre_tanh.mul_(1.0)
    pre_tanh.abs_()
    return tanh_log_prob_correction(pre_tanh)


def test_check_tanh_log_prob_correction_passes_on_references(capsys):
    for fn in (tanh_log_prob_correction, correction_log_cosh):
        assert_passes(check_tanh_log_prob_correction, fn, capsys, "tanh_log_prob_correction")


@pytest.mark.parametrize("mutant, fragments", [
    (correction_naive, ["pre_tanh=[[10.0, -10.0, 0.0]", "inf", "softplus(−2u)"]),
    (correction_epsilon, ["large |u|", "Adding a small ε"]),
    (correction_clamped, ["large |u|", "Adding a small ε"]),
    (correction_no_sum, ["returned shape (4, 3); expected (4,)", "Sum over the action dimensions"]),
    (correction_sum_batch, ["returned shape (3,); expected (4,)", "not over the batch"]),
    (correction_mean, ["do not average"]),
    (correction_wrong_sign, ["Check the sign"]),
    (correction_no_factor_two, ["A factor 2 is missing"]),
    (correction_without_tanh, ["nan", "log(1 − u²)"]),
    (correction_numpy, ["carries no gradient"]),
    (correction_in_place, ["modified its input pre_tanh in place"]),
])
def test_check_tanh_log_prob_correction_fails_on_mutants(mutant, fragments):
    assert_fails(check_tanh_log_prob_correction, mutant, "tanh_log_prob_correction", *fragments)


def test_check_tanh_log_prob_correction_not_implemented():
    assert_fails(check_tanh_log_prob_correction, not_implemented,
                 "tanh_log_prob_correction is not implemented yet")


# -------------------------------------------------------------------------- SAC critic target


def sac_written_out(rewards, next_q1_target, next_q2_target, next_log_probs, terminated, alpha,
                    gamma):
    """Correct, with the soft value named."""
    soft_value = torch.min(next_q1_target, next_q2_target) - alpha * next_log_probs
    return torch.where(terminated.bool(), rewards, rewards + gamma * soft_value)


def sac_plus_log_prob(r, q1, q2, lp, d, alpha, gamma):
    return r + gamma * (1 - d) * (torch.min(q1, q2) + alpha * lp)


def sac_no_entropy(r, q1, q2, lp, d, alpha, gamma):
    return r + gamma * (1 - d) * torch.min(q1, q2)


def sac_no_alpha(r, q1, q2, lp, d, alpha, gamma):
    return r + gamma * (1 - d) * (torch.min(q1, q2) - lp)


def sac_entropy_outside(r, q1, q2, lp, d, alpha, gamma):
    return r + gamma * (1 - d) * torch.min(q1, q2) - alpha * lp


def sac_max(r, q1, q2, lp, d, alpha, gamma):
    return r + gamma * (1 - d) * (torch.max(q1, q2) - alpha * lp)


def sac_no_mask(r, q1, q2, lp, d, alpha, gamma):
    return r + gamma * (torch.min(q1, q2) - alpha * lp)


def sac_float_alpha_only(r, q1, q2, lp, d, alpha, gamma):
    """Works with a float α but breaks on the tensor the agent passes."""
    return r + gamma * (1 - d) * (torch.min(q1, q2) - float(alpha) * lp) \
        if isinstance(alpha, float) else r


def test_check_sac_critic_target_passes_on_references(capsys):
    for fn in (sac_critic_target, sac_written_out):
        assert_passes(check_sac_critic_target, fn, capsys, "sac_critic_target")


@pytest.mark.parametrize("mutant, fragments", [
    (sac_plus_log_prob, ["alpha=0.2", "wrong sign"]),
    (sac_no_entropy, ["entropy term −α log π(a'|s') is missing"]),
    (sac_no_alpha, ["Weigh the log-probability by the temperature"]),
    (sac_entropy_outside, ["inside the discount and the mask"]),
    (sac_max, ["MAXIMUM of the two critics"]),
    (sac_no_mask, ["terminated transition has no future"]),
    (sac_float_alpha_only, ["alpha=torch.tensor(0.2)"]),
])
def test_check_sac_critic_target_fails_on_mutants(mutant, fragments):
    assert_fails(check_sac_critic_target, mutant, "sac_critic_target", *fragments)


def test_check_sac_critic_target_not_implemented():
    assert_fails(check_sac_critic_target, not_implemented, "sac_critic_target is not implemented yet")


# ---------------------------------------------------------------------------- temperature loss


def temperature_written_out(log_alpha, log_probs, target_entropy):
    """Correct: the gap is a constant for this loss."""
    gap = (log_probs + target_entropy).detach().mean()
    return -log_alpha * gap


def temperature_not_detached(log_alpha, log_probs, target_entropy):
    return -(log_alpha * (log_probs + target_entropy)).mean()


def temperature_wrong_sign(log_alpha, log_probs, target_entropy):
    return (log_alpha * (log_probs.detach() + target_entropy)).mean()


def temperature_alpha(log_alpha, log_probs, target_entropy):
    return -(log_alpha.exp() * (log_probs.detach() + target_entropy)).mean()


def temperature_sum(log_alpha, log_probs, target_entropy):
    return -(log_alpha * (log_probs.detach() + target_entropy)).sum()


def temperature_entropy_sign(log_alpha, log_probs, target_entropy):
    return -(log_alpha * (log_probs.detach() - target_entropy)).mean()


def temperature_alpha_detached(log_alpha, log_probs, target_entropy):
    return -(log_alpha.detach() * (log_probs.detach() + target_entropy)).mean()


def temperature_item(log_alpha, log_probs, target_entropy):
    return -(log_alpha * (log_probs.detach() + target_entropy)).mean().item()


def test_check_temperature_loss_passes_on_references(capsys):
    for fn in (temperature_loss, temperature_written_out):
        assert_passes(check_temperature_loss, fn, capsys, "temperature_loss")


@pytest.mark.parametrize("mutant, fragments", [
    (temperature_not_detached, ["sends a gradient into log_probs", "log_probs.detach()"]),
    (temperature_wrong_sign, ["returned 1.5596; expected -1.5596", "Check the sign"]),
    (temperature_alpha, ["loss in terms of α itself"]),
    (temperature_sum, ["Average over the batch"]),
    (temperature_entropy_sign, ["is ADDED"]),
    (temperature_alpha_detached, ["no gradient with respect to log_alpha"]),
    (temperature_item, ["returned a float"]),
])
def test_check_temperature_loss_fails_on_mutants(mutant, fragments):
    assert_fails(check_temperature_loss, mutant, "temperature_loss", *fragments)


def test_check_temperature_loss_not_implemented():
    assert_fails(check_temperature_loss, not_implemented, "temperature_loss is not implemented yet")


# ---------------------------------------------------------------------------------- all checks


ALL_CHECKS = [check_ddpg_critic_target, check_ddpg_actor_loss, check_td3_target,
              check_tanh_log_prob_correction, check_sac_critic_target, check_temperature_loss]


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda check: check.__name__)
def test_every_check_refuses_numpy_arrays(check):
    def as_numpy(*args, **kwargs):
        return np.zeros(4)

    with pytest.raises(AssertionError, match="returned ndarray; expected a torch.Tensor"):
        check(as_numpy)
