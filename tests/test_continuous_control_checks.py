"""Notebook 08's exercise checks: they pass on correct solutions (the library's and other correct
styles) and fail, with a useful message, on the mistakes students make."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from check_helpers import assert_fails, assert_passes, not_implemented, own_copy
from course_utils.agents import ddpg, sac
from course_utils.agents.sac import sample_action
from course_utils.checks import (check_ddpg_update, check_sac_update,
                                 check_tanh_log_prob_correction, check_td3_target,
                                 check_td3_update)
from course_utils.checks.continuous_control import _ddpg_variant, _sac_variant
from course_utils.nn import polyak_update

# The package's answers as a student would write them: the checks refuse the package's own
# functions (checks.common.references).
td3_target, tanh_log_prob_correction = map(own_copy, (ddpg.td3_target, sac.tanh_log_prob_correction))
ddpg_update, td3_update, sac_update = map(own_copy, (ddpg.ddpg_update, ddpg.td3_update,
                                                     sac.sac_update))


def td3_target_actions(actions, std, clip, generator):
    noise = (std * torch.randn(actions.shape, generator=generator)).clamp(-clip, clip)
    return (actions + noise).clamp(-1.0, 1.0)


def td3_critic_target(rewards, q1, q2, terminated, gamma):
    return rewards + gamma * (1.0 - terminated) * torch.minimum(q1, q2)


# --------------------------------------------------------------------------------- TD3 target


def td3_written_out(rewards, next_observations, terminated, gamma, actor_target, critics_target,
                    noise_std, noise_clip, generator=None):
    """Correct, in the style of the TD3 authors' code (randn_like, no generator), for 1 or 2."""
    with torch.no_grad():
        mu = actor_target(next_observations)
        noise = (torch.randn_like(mu) * noise_std).clamp(-noise_clip, noise_clip)
        actions = (mu + noise).clamp(-1.0, 1.0)
        q = critics_target[0](next_observations, actions)
        for critic in critics_target[1:]:
            q = torch.min(q, critic(next_observations, actions))
        return rewards + gamma * (1 - terminated) * q


def _td3_with(smooth, combine):
    def target(rewards, next_observations, terminated, gamma, actor_target, critics_target,
               noise_std, noise_clip, generator=None):
        actions = smooth(actor_target(next_observations), noise_std, noise_clip, generator)
        q1 = critics_target[0](next_observations, actions)
        q2 = critics_target[-1](next_observations, actions)
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
                       critics_target, noise_std, noise_clip, generator=None):
    mu = actor_target(next_observations)
    a1 = td3_target_actions(mu, noise_std, noise_clip, generator)
    a2 = td3_target_actions(mu, noise_std, noise_clip, generator)
    q = torch.min(critics_target[0](next_observations, a1), critics_target[1](next_observations, a2))
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
                             critics_target, noise_std, noise_clip, generator=None):
    """Forgets the target actor: evaluates the critics at zero actions."""
    actions = torch.zeros(len(rewards), 2)
    q = torch.min(critics_target[0](next_observations, actions),
                  critics_target[1](next_observations, actions))
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


def td3_two_critics_only(rewards, next_observations, terminated, gamma, actor_target,
                         critics_target, noise_std, noise_clip, generator=None):
    """Unpacks exactly two critics: fails on DDPG's single critic."""
    critic1, critic2 = critics_target
    return _td3_with(td3_target_actions, _good_combine)(
        rewards, next_observations, terminated, gamma, actor_target, [critic1, critic2], noise_std,
        noise_clip, generator)


def test_check_td3_target_fails_with_one_critic_unsupported():
    with pytest.raises((AssertionError, ValueError)):
        check_td3_target(td3_two_critics_only)


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


# ------------------------------------------------------------------------------ update steps


def ddpg_update_not_detached(agent, batch, config):
    """The target computed with autograd recording (no torch.no_grad)."""
    targets = ddpg.td3_target(batch.rewards, batch.next_observations, batch.terminated.float(),
                              config.gamma, agent.actor_target, agent.critics_target, 0.0, 0.0)
    q = agent.critics[0](batch.observations, batch.actions)
    critic_loss = F.mse_loss(q, targets)
    agent.critic_optimizer.zero_grad()
    critic_loss.backward()
    agent.critic_optimizer.step()
    agent.critics.requires_grad_(False)
    actor_loss = -agent.critics[0](batch.observations, agent.actor(batch.observations)).mean()
    agent.critics.requires_grad_(True)
    agent.actor_optimizer.zero_grad()
    actor_loss.backward()
    agent.actor_optimizer.step()
    polyak_update(agent.actor_target, agent.actor, config.tau)
    polyak_update(agent.critics_target, agent.critics, config.tau)
    return {"critic_loss": critic_loss.detach(), "actor_loss": actor_loss.detach()}


def ddpg_update_no_metrics(agent, batch, config):
    ddpg.ddpg_update(agent, batch, config)  # (refused while checked: the check says so)


def ddpg_update_returns_nothing(agent, batch, config):
    _ddpg_variant("none")(agent, batch, config)


def test_check_ddpg_update_passes_on_reference(capsys):
    assert_passes(check_ddpg_update, ddpg_update, capsys, "ddpg_update")
    assert_passes(check_ddpg_update, _ddpg_variant("none"), capsys, "ddpg_update")


@pytest.mark.parametrize("mistake, fragments", [
    ("online_actor", ["ONLINE actor", "wrong network"]),
    ("online_critics", ["ONLINE critics", "wrong network"]),
    ("truncated", ["truncated transition is treated as terminal"]),
    ("frozen_targets", ["target networks never move"]),
    ("actor_sign", ["climbs down the critic"]),
])
def test_check_ddpg_update_names_mistakes(mistake, fragments):
    assert_fails(check_ddpg_update, _ddpg_variant(mistake), "ddpg_update", *fragments)


@pytest.mark.parametrize("mutant, fragments", [
    (ddpg_update_not_detached, ["have gradients", "torch.no_grad()"]),
    (ddpg_update_no_metrics, ["ddpg_update called course_utils.agents.ddpg.ddpg_update"]),
    (ddpg_update_returns_nothing, ["returned NoneType; expected a dict"]),
    (not_implemented, ["ddpg_update is not implemented yet"]),
])
def test_check_ddpg_update_fails_on_mutants(mutant, fragments):
    assert_fails(check_ddpg_update, mutant, *fragments)


def test_check_td3_update_passes_on_reference(capsys):
    assert_passes(check_td3_update, td3_update, capsys, "td3_update")


@pytest.mark.parametrize("mistake, fragments", [
    ("online_actor", ["ONLINE actor", "call 3 of 3"]),
    ("online_critics", ["ONLINE critics"]),
    ("max", ["MAXIMUM of the two critics"]),
    ("no_noise", ["not smoothed"]),
    ("unclipped_noise", ["noise is not clipped"]),
    ("every_step", ["moved at every call", "call 1 of 3"]),
    ("frozen_targets", ["target networks never move"]),
    ("truncated", ["truncated transition is treated as terminal"]),
    ("actor_sign", ["climbs down the critic"]),
])
def test_check_td3_update_names_mistakes(mistake, fragments):
    assert_fails(check_td3_update, _ddpg_variant(mistake), "td3_update", *fragments)


def test_check_td3_update_not_implemented():
    assert_fails(check_td3_update, not_implemented, "td3_update is not implemented yet")


def sac_update_alpha_through_log_probs(agent, batch, config):
    """The temperature's loss not detached from the log-probabilities (after the actor's step)."""
    alpha = agent.log_alpha.detach().exp()
    with torch.no_grad():
        next_actions, next_log_probs = sample_action(agent.actor, batch.next_observations)
        next_q = torch.minimum(*(c(batch.next_observations, next_actions)
                                 for c in agent.critics_target))
        targets = batch.rewards + config.gamma * (1 - batch.terminated.float()) * (
            next_q - alpha * next_log_probs)
    q1, q2 = (c(batch.observations, batch.actions) for c in agent.critics)
    critic_loss = F.mse_loss(q1, targets) + F.mse_loss(q2, targets)
    agent.critic_optimizer.zero_grad()
    critic_loss.backward()
    agent.critic_optimizer.step()
    actions, log_probs = sample_action(agent.actor, batch.observations)
    q_new = torch.minimum(*(c(batch.observations, actions) for c in agent.critics))
    actor_loss = (alpha * log_probs - q_new).mean()
    agent.actor_optimizer.zero_grad()
    actor_loss.backward()
    agent.actor_optimizer.step()
    alpha_loss = -(agent.log_alpha * (log_probs + agent.target_entropy)).mean()
    agent.alpha_optimizer.zero_grad()
    alpha_loss.backward()
    agent.alpha_optimizer.step()
    polyak_update(agent.critics_target, agent.critics, config.tau)
    return {"critic_loss": critic_loss.detach(), "actor_loss": actor_loss.detach(),
            "alpha_loss": alpha_loss.detach()}


def sac_update_target_not_detached(agent, batch, config):
    """The soft target computed with autograd recording."""
    alpha = agent.log_alpha.detach().exp()
    next_actions, next_log_probs = sample_action(agent.actor, batch.next_observations)
    next_q = torch.minimum(*(c(batch.next_observations, next_actions)
                             for c in agent.critics_target))
    targets = batch.rewards + config.gamma * (1 - batch.terminated.float()) * (
        next_q - alpha * next_log_probs)
    q1, q2 = (c(batch.observations, batch.actions) for c in agent.critics)
    critic_loss = F.mse_loss(q1, targets) + F.mse_loss(q2, targets)
    agent.critic_optimizer.zero_grad()
    critic_loss.backward()
    agent.critic_optimizer.step()
    agent.critics.requires_grad_(False)
    actions, log_probs = sample_action(agent.actor, batch.observations)
    q_new = torch.minimum(*(c(batch.observations, actions) for c in agent.critics))
    actor_loss = (alpha * log_probs - q_new).mean()
    agent.critics.requires_grad_(True)
    agent.actor_optimizer.zero_grad()
    actor_loss.backward()
    agent.actor_optimizer.step()
    alpha_loss = -(agent.log_alpha * (log_probs.detach() + agent.target_entropy)).mean()
    agent.alpha_optimizer.zero_grad()
    alpha_loss.backward()
    agent.alpha_optimizer.step()
    polyak_update(agent.critics_target, agent.critics, config.tau)
    return {"critic_loss": critic_loss.detach(), "actor_loss": actor_loss.detach(),
            "alpha_loss": alpha_loss.detach()}


def test_check_sac_update_passes_on_reference(capsys):
    assert_passes(check_sac_update, sac_update, capsys, "sac_update")
    assert_passes(check_sac_update, _sac_variant("none"), capsys, "sac_update")


@pytest.mark.parametrize("mistake, fragments", [
    ("online_critics", ["ONLINE critics", "wrong network"]),
    ("max", ["MAXIMUM of the two critics"]),
    ("truncated", ["truncated transition is treated as terminal"]),
    ("frozen_targets", ["target critics never move"]),
    ("target_entropy_sign", ["entropy term of the target has the wrong sign"]),
    ("actor_entropy_sign", ["entropy term of the actor's loss has the wrong sign"]),
    ("alpha_sign", ["temperature's loss has the wrong sign"]),
    ("alpha_not_log", ["write it with log α itself"]),
])
def test_check_sac_update_names_mistakes(mistake, fragments):
    assert_fails(check_sac_update, _sac_variant(mistake), "sac_update", *fragments)


@pytest.mark.parametrize("mutant, fragments", [
    (sac_update_alpha_through_log_probs, ["backward through the graph a second time",
                                          "log_probs.detach()"]),
    (sac_update_target_not_detached, ["target critics have gradients", "torch.no_grad()"]),
    (not_implemented, ["sac_update is not implemented yet"]),
])
def test_check_sac_update_fails_on_mutants(mutant, fragments):
    assert_fails(check_sac_update, mutant, *fragments)


# ---------------------------------------------------------------------------------- all checks


@pytest.mark.parametrize("check", [check_td3_target, check_tanh_log_prob_correction],
                         ids=lambda check: check.__name__)
def test_formula_checks_refuse_numpy_arrays(check):
    def as_numpy(*args, **kwargs):
        return np.zeros(4)

    with pytest.raises(AssertionError, match="returned ndarray; expected a torch.Tensor"):
        check(as_numpy)
