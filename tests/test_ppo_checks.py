"""Notebook 07's exercise checks (course_utils.checks.ppo): each passes on correct
solutions (several styles) and fails, with a helpful message, on the mistakes students make."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from check_helpers import assert_fails, assert_passes, not_implemented, own_copy
from course_utils.agents import ppo as ppo_module
from course_utils.checks import (check_approx_kl, check_clipped_surrogate, check_gaussian_log_prob,
                                 check_ppo_update)

# ------------------------------------------------------------------------ clipped surrogate

SURROGATE_ANSWER = "expected -0.4417"


def clipped_surrogate(log_probs, old_log_probs, advantages, clip):
    """The notebook's solution."""
    ratio = torch.exp(log_probs - old_log_probs.detach())
    clipped = torch.clamp(ratio, 1 - clip, 1 + clip)
    return -torch.min(ratio * advantages, clipped * advantages).mean()


def surrogate_max_of_negatives(log_probs, old_log_probs, advantages, clip):
    """Correct, in CleanRL's style: the max of the two negated terms."""
    log_ratio = log_probs - old_log_probs.detach()
    ratio = log_ratio.exp()
    return torch.max(-advantages * ratio, -advantages * ratio.clamp(1 - clip, 1 + clip)).mean()


def surrogate_where(log_probs, old_log_probs, advantages, clip):
    """Correct, choosing the term with torch.where."""
    ratio = (log_probs - old_log_probs.detach()).exp()
    unclipped, clipped = ratio * advantages, ratio.clamp(1 - clip, 1 + clip) * advantages
    return -torch.where(unclipped < clipped, unclipped, clipped).mean()


def _surrogate_with(ratio=lambda lp, old: torch.exp(lp - old.detach()),
                    objective=lambda r, a, c: torch.min(r * a, r.clamp(1 - c, 1 + c) * a),
                    reduce=torch.mean, sign=-1.0):
    def fn(log_probs, old_log_probs, advantages, clip):
        return sign * reduce(objective(ratio(log_probs, old_log_probs), advantages, clip))
    return fn


surrogate_ratio_difference = _surrogate_with(ratio=lambda lp, old: lp - old.detach())
surrogate_ratio_quotient = _surrogate_with(ratio=lambda lp, old: lp / old.detach())
surrogate_ratio_of_probabilities = _surrogate_with(
    ratio=lambda lp, old: torch.exp(lp) / torch.exp(old.detach()))
surrogate_ratio_inverted = _surrogate_with(ratio=lambda lp, old: torch.exp(old.detach() - lp))
surrogate_old_not_detached = _surrogate_with(ratio=lambda lp, old: torch.exp(lp - old))
surrogate_no_min = _surrogate_with(objective=lambda r, a, c: r.clamp(1 - c, 1 + c) * a)
surrogate_max = _surrogate_with(
    objective=lambda r, a, c: torch.max(r * a, r.clamp(1 - c, 1 + c) * a))
surrogate_unclipped = _surrogate_with(objective=lambda r, a, c: r * a)
surrogate_min_of_ratios = _surrogate_with(
    objective=lambda r, a, c: torch.min(r, r.clamp(1 - c, 1 + c)) * a)
surrogate_clips_product = _surrogate_with(
    objective=lambda r, a, c: torch.min(r * a, (r * a).clamp(1 - c, 1 + c)))
surrogate_upper_clip_only = _surrogate_with(
    objective=lambda r, a, c: torch.min(r * a, r.clamp(max=1 + c) * a))
surrogate_objective_not_loss = _surrogate_with(sign=1.0)
surrogate_sum = _surrogate_with(reduce=torch.sum)
surrogate_fixed_clip = _surrogate_with(
    objective=lambda r, a, c: torch.min(r * a, r.clamp(0.8, 1.2) * a))


def surrogate_flat_everywhere(log_probs, old_log_probs, advantages, clip):
    """The right values, but the ratio's gradient is cut wherever it lies outside the range."""
    ratio = torch.exp(log_probs - old_log_probs.detach())
    outside = (ratio < 1 - clip) | (ratio > 1 + clip)
    ratio = torch.where(outside, ratio.detach(), ratio)
    return -torch.min(ratio * advantages, ratio.clamp(1 - clip, 1 + clip) * advantages).mean()


def surrogate_one_cell_wrong(log_probs, old_log_probs, advantages, clip):
    """An unusual bug (no hint of its own): only the clipped term where A < 0."""
    ratio = torch.exp(log_probs - old_log_probs.detach())
    clipped = ratio.clamp(1 - clip, 1 + clip) * advantages
    return -torch.where(advantages < 0, clipped, torch.min(ratio * advantages, clipped)).mean()


def surrogate_item(log_probs, old_log_probs, advantages, clip):
    return clipped_surrogate(log_probs, old_log_probs, advantages, clip).item()


def surrogate_in_place(log_probs, old_log_probs, advantages, clip):
    advantages.clamp_(min=0.0)
    return clipped_surrogate(log_probs, old_log_probs, advantages, clip)


def test_check_clipped_surrogate_passes_on_references(capsys):
    for fn in (clipped_surrogate, surrogate_max_of_negatives, surrogate_where):
        assert_passes(check_clipped_surrogate, fn, capsys, "clipped_surrogate")


@pytest.mark.parametrize("mutant, fragments", [
    (surrogate_ratio_difference, [SURROGATE_ANSWER, "exponentiate the DIFFERENCE"]),
    (surrogate_ratio_quotient, [SURROGATE_ANSWER, "is not the ratio of the probabilities"]),
    (surrogate_ratio_of_probabilities, ["log_probs=[-119.9", "nan", "0 / 0"]),
    (surrogate_ratio_inverted, [SURROGATE_ANSWER, "wrong way round"]),
    (surrogate_old_not_detached, ["sends a gradient into old_log_probs",
                                  "old_log_probs.detach()"]),
    (surrogate_no_min, ["returned -0.5333; expected -0.4417", "The min is missing"]),
    (surrogate_max, ["returned -0.7833; expected -0.4417", "MINIMUM"]),
    (surrogate_unclipped, [SURROGATE_ANSWER, "ratio is not clipped"]),
    (surrogate_min_of_ratios, ["returned -0.5667; expected -0.4417", "not of the two ratios"]),
    (surrogate_clips_product, [SURROGATE_ANSWER, "Clip the RATIO, then multiply"]),
    (surrogate_upper_clip_only, [SURROGATE_ANSWER, "on both sides"]),
    (surrogate_objective_not_loss, ["returned 0.4417; expected -0.4417", "Check the sign"]),
    (surrogate_sum, ["returned -2.6500; expected -0.4417", "instead of summing"]),
    (surrogate_fixed_clip, ["clip=0.1", "Use the clip argument"]),
    (surrogate_flat_everywhere, ["with respect to log_probs is 0.0000 at index 0",
                                 "expected -0.2000", "below the range [0.8, 1.2]",
                                 "the min picks the unclipped term"]),
    (surrogate_one_cell_wrong, ["advantages=[-0.5], clip=0.2) (r = 1.5) returned 0.6000; "
                                "expected 0.7500", "A < 0 and r = 1.5 above 1 + ε"]),
    (surrogate_item, ["returned a float", "no .item()"]),
    (surrogate_in_place, ["modified its input advantages in place"]),
])
def test_check_clipped_surrogate_fails_on_mutants(mutant, fragments):
    assert_fails(check_clipped_surrogate, mutant, "clipped_surrogate", *fragments)


def test_check_clipped_surrogate_not_implemented():
    assert_fails(check_clipped_surrogate, not_implemented,
                 "clipped_surrogate is not implemented yet")


# ------------------------------------------------------------------------------ approximate KL

KL_CALL = "approx_kl(log_probs=[-1.0, -0.5, -2.0, -0.3], old_log_probs=[-1.2, -0.4, -1.0, -0.3])"


def approx_kl(log_probs, old_log_probs):
    """The notebook's solution."""
    log_ratio = log_probs - old_log_probs
    return ((log_ratio.exp() - 1) - log_ratio).mean()


@torch.no_grad()
def approx_kl_ratio(log_probs, old_log_probs):
    """Correct, through the ratio and torch.log."""
    ratio = torch.exp(log_probs - old_log_probs)
    return torch.mean(ratio - 1 - torch.log(ratio))


def kl_naive(log_probs, old_log_probs):
    return (old_log_probs - log_probs).mean()


def kl_new_minus_old(log_probs, old_log_probs):
    return (log_probs - old_log_probs).mean()


def kl_inverted_ratio(log_probs, old_log_probs):
    log_ratio = old_log_probs - log_probs
    return ((log_ratio.exp() - 1) - log_ratio).mean()


def kl_log_sign(log_probs, old_log_probs):
    log_ratio = log_probs - old_log_probs
    return ((log_ratio.exp() - 1) + log_ratio).mean()


def kl_no_minus_one(log_probs, old_log_probs):
    log_ratio = log_probs - old_log_probs
    return (log_ratio.exp() - log_ratio).mean()


def kl_squared(log_probs, old_log_probs):
    return (0.5 * (log_probs - old_log_probs) ** 2).mean()


def kl_sum(log_probs, old_log_probs):
    log_ratio = log_probs - old_log_probs
    return ((log_ratio.exp() - 1) - log_ratio).sum()


def kl_per_sample(log_probs, old_log_probs):
    log_ratio = log_probs - old_log_probs
    return (log_ratio.exp() - 1) - log_ratio


def kl_item(log_probs, old_log_probs):
    return approx_kl(log_probs, old_log_probs).item()


def test_check_approx_kl_passes_on_references(capsys):
    for fn in (approx_kl, approx_kl_ratio):
        assert_passes(check_approx_kl, fn, capsys, "approx_kl")


@pytest.mark.parametrize("mutant, fragments", [
    (kl_naive, [KL_CALL, "returned 0.2250; expected 0.0985", "can be NEGATIVE"]),
    (kl_new_minus_old, [KL_CALL, "returned -0.2250", "wrong sign and can be negative"]),
    (kl_inverted_ratio, [KL_CALL, "wrong way round"]),
    (kl_log_sign, [KL_CALL, "sign of the log"]),
    (kl_no_minus_one, ["returned 1.0000; expected 0.0000"]),
    (kl_squared, [KL_CALL, "½ (log r)²"]),
    (kl_sum, [KL_CALL, "instead of summing"]),
    (kl_per_sample, ["returned shape (4,); expected ()"]),
    (kl_item, ["returned a float", "no .item()"]),
])
def test_check_approx_kl_fails_on_mutants(mutant, fragments):
    assert_fails(check_approx_kl, mutant, "approx_kl", *fragments)


def test_check_approx_kl_names_the_negative_naive_estimate():
    """Right on the first cases, naive afterwards: the message shows the negative estimate."""
    calls = []

    def naive_later(log_probs, old_log_probs):
        calls.append(None)
        return approx_kl(log_probs, old_log_probs) if len(calls) < 3 else \
            kl_naive(log_probs, old_log_probs)

    assert_fails(check_approx_kl, naive_later, "returned -0.4000; expected 0.0993",
                 "can be NEGATIVE")


def test_check_approx_kl_not_implemented():
    assert_fails(check_approx_kl, not_implemented, "approx_kl is not implemented yet")


# ------------------------------------------------------------------------------ the PPO update

UPDATE_DIFFERS = "the parameters after your update differ from the reference's"


def _make_update(*, pick=torch.min, sign=-1.0, ratio=lambda log_ratio: log_ratio.exp(),
                 normalise="config", kl_stop=True, grad_clip=True, zero_grad=True,
                 entropy_sign=1.0, value_sign=1.0, shuffle="epoch", epochs_offset=0, metrics="last",
                 clip_fraction=lambda r, c: ((r - 1).abs() > c).float().mean()):
    """The notebook's solution, in a student's style, with a mistake switched on."""
    def update(model, optimizer, rollout, config, generator):
        n = len(rollout.advantages)
        advantages_all = rollout.advantages
        if normalise == "rollout":
            advantages_all = (advantages_all - advantages_all.mean()) / (advantages_all.std() + 1e-8)
        order = torch.randperm(n, generator=generator) if shuffle == "once" else None
        history = []
        for epoch in range(config.n_epochs):
            if shuffle == "epoch":
                order = torch.randperm(n, generator=generator)
            elif shuffle == "none":
                order = torch.arange(n)
            elif shuffle == "global":
                order = torch.randperm(n)
            rows = []
            for start in range(0, n, config.batch_size):
                i = order[start:start + config.batch_size]
                log_probs, entropy, values = model.evaluate(rollout.observations[i],
                                                            rollout.actions[i])
                advantages = advantages_all[i]
                if (normalise == "config" and config.normalize_advantages) or normalise == "always":
                    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
                r = ratio(log_probs - rollout.log_probs[i])
                objective = pick(r * advantages, r.clamp(1 - config.clip, 1 + config.clip) * advantages)
                policy_loss = sign * objective.mean()
                value_loss = F.mse_loss(values, rollout.returns[i])
                loss = policy_loss + value_sign * config.value_coef * value_loss \
                    - entropy_sign * config.entropy_coef * entropy.mean()
                if zero_grad:
                    optimizer.zero_grad()
                loss.backward()
                if grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                optimizer.step()
                kl = approx_kl(log_probs.detach(), rollout.log_probs[i])
                rows.append(torch.stack([policy_loss.detach(), value_loss.detach(),
                                         entropy.mean().detach(), kl,
                                         clip_fraction(r.detach(), config.clip)]))
            means = torch.stack(rows).mean(0)
            history.append(means)
            if kl_stop and config.target_kl is not None and means[3] > config.target_kl:
                break
        if metrics == "all epochs":
            means = torch.stack(history).mean(0)
        names = ["policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction"]
        return {**dict(zip(names, means)), "epochs": epoch + 1 + epochs_offset}
    return update


ppo_update = _make_update()


def ppo_update_with_functions(model, optimizer, rollout, config, generator):
    """Correct, as the notebook writes it: exercises 1 and 2 inside, metrics as Python floats."""
    n = rollout.advantages.shape[0]
    for epoch in range(config.n_epochs):
        order = torch.randperm(n, generator=generator)
        rows = []
        for start in range(0, n, config.batch_size):
            i = order[start:start + config.batch_size]
            log_probs, entropy, values = model.evaluate(rollout.observations[i], rollout.actions[i])
            advantages = rollout.advantages[i]
            if config.normalize_advantages:
                advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
            policy_loss = clipped_surrogate(log_probs, rollout.log_probs[i], advantages, config.clip)
            value_loss = ((values - rollout.returns[i]) ** 2).mean()
            loss = policy_loss + config.value_coef * value_loss - config.entropy_coef * entropy.mean()
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            with torch.no_grad():
                ratio = torch.exp(log_probs - rollout.log_probs[i])
                rows.append([policy_loss.item(), value_loss.item(), entropy.mean().item(),
                             approx_kl(log_probs, rollout.log_probs[i]).item(),
                             ((ratio - 1).abs() > config.clip).float().mean().item()])
        means = np.mean(rows, axis=0)
        if config.target_kl is not None and means[3] > config.target_kl:
            break
    return {"policy_loss": means[0], "value_loss": means[1], "entropy": means[2],
            "approx_kl": means[3], "clip_fraction": means[4], "epochs": epoch + 1}


def update_modifies_rollout(model, optimizer, rollout, config, generator):
    rollout.advantages.sub_(rollout.advantages.mean())
    return ppo_update(model, optimizer, rollout, config, generator)


def update_returns_loss(model, optimizer, rollout, config, generator):
    return ppo_update(model, optimizer, rollout, config, generator)["policy_loss"]


def test_check_ppo_update_passes_on_references(capsys):
    for fn in (ppo_update, ppo_update_with_functions, own_copy(ppo_module.ppo_update)):
        assert_passes(check_ppo_update, fn, capsys, "ppo_update")


@pytest.mark.parametrize("mutant, fragments", [
    (_make_update(pick=torch.max), [UPDATE_DIFFERS, "MAXIMUM"]),
    (_make_update(sign=1.0), [UPDATE_DIFFERS, "is MAXIMISED"]),
    (_make_update(ratio=lambda log_ratio: torch.exp(-log_ratio)), [UPDATE_DIFFERS,
                                                                     "wrong way round"]),
    (_make_update(ratio=lambda log_ratio: log_ratio), [UPDATE_DIFFERS, "is log r, not r"]),
    (_make_update(normalise="never"), [UPDATE_DIFFERS, "are not normalised"]),
    (_make_update(normalise="always"), ["Gaussian", UPDATE_DIFFERS,
                                        "config.normalize_advantages is False"]),
    (_make_update(normalise="rollout"), [UPDATE_DIFFERS, "within each MINIBATCH"]),
    (_make_update(kl_stop=False), [UPDATE_DIFFERS, "exceeded config.target_kl"]),
    (_make_update(grad_clip=False), [UPDATE_DIFFERS, "gradient is not clipped"]),
    (_make_update(zero_grad=False), [UPDATE_DIFFERS, "optimizer.zero_grad()"]),
    (_make_update(entropy_sign=-1.0), [UPDATE_DIFFERS, "entropy bonus has the wrong sign"]),
    (_make_update(value_sign=-1.0), [UPDATE_DIFFERS, "value loss has the wrong sign"]),
    (_make_update(shuffle="once"), [UPDATE_DIFFERS, "the same in every epoch"]),
    (_make_update(shuffle="none"), ["did not shuffle with the generator"]),
    (_make_update(shuffle="global"), ["did not shuffle with the generator",
                                      "generator=generator"]),
    (_make_update(epochs_offset=-1), ["ran 2 epochs; expected 3", "MEAN approximate KL"]),
    (_make_update(metrics="all epochs"), ["returned policy_loss=", "LAST epoch"]),
    (_make_update(clip_fraction=lambda r, c: (r > 1 + c).float().mean()),
     ["returned clip_fraction=", "|r − 1| > ε"]),
    (update_modifies_rollout, ["modified its input advantages in place"]),
    (update_returns_loss, ["returned Tensor; expected a dict", "clip_fraction"]),
])
def test_check_ppo_update_fails_on_mutants(mutant, fragments):
    assert_fails(check_ppo_update, mutant, "ppo_update", *fragments)


def test_check_ppo_update_refuses_the_package_update():
    assert_fails(check_ppo_update, ppo_module.ppo_update, "called course_utils.agents.ppo.ppo_update",
                 "your own implementation")


def test_check_ppo_update_not_implemented():
    assert_fails(check_ppo_update, not_implemented, "ppo_update is not implemented yet")


# ------------------------------------------------------------------------------ Gaussian policy

LOG_2PI = float(np.log(2 * np.pi))


def gaussian_log_prob(actions, mean, log_std):
    """The notebook's solution."""
    return (-((actions - mean) ** 2) / (2 * torch.exp(2 * log_std)) - log_std
            - 0.5 * LOG_2PI).sum(-1)


def gaussian_via_std(actions, mean, log_std):
    """Correct, through σ and the normalised error."""
    std = log_std.exp()
    z = (actions - mean) / std
    return -0.5 * (z ** 2).sum(dim=1) - torch.log(std).sum() - 0.5 * actions.shape[1] * LOG_2PI


def _gaussian_with(error=lambda a, m, s: (a - m) ** 2 / (2 * s ** 2), log_term=lambda s: torch.log(s),
                   constant=0.5 * LOG_2PI, std=torch.exp, reduce=lambda x: x.sum(-1)):
    def fn(actions, mean, log_std):
        s = std(log_std)
        return reduce(-error(actions, mean, s) - log_term(s) - constant)
    return fn


def gaussian_torch(actions, mean, log_std):
    return torch.distributions.Normal(mean, log_std.exp()).log_prob(actions).sum(-1)


def gaussian_product(actions, mean, log_std):
    std = log_std.exp()
    density = torch.exp(-((actions - mean) ** 2) / (2 * std ** 2)) / (std * np.sqrt(2 * np.pi))
    return torch.log(density.prod(-1))


def gaussian_detached(actions, mean, log_std):
    return gaussian_log_prob(actions, mean.detach(), log_std)


def test_check_gaussian_log_prob_passes_on_references(capsys):
    for fn in (gaussian_log_prob, gaussian_via_std):
        assert_passes(check_gaussian_log_prob, fn, capsys, "gaussian_log_prob")


@pytest.mark.parametrize("mutant, fragments", [
    (_gaussian_with(reduce=lambda x: x), ["returned shape (3, 2); expected (3,)", "sum the"]),
    (_gaussian_with(reduce=lambda x: x.mean(-1)), ["do not average"]),
    (_gaussian_with(std=lambda log_std: log_std), ["σ = exp(log_std)"]),
    (_gaussian_with(std=lambda log_std: (0.5 * log_std).exp()), ["not log σ²"]),
    (_gaussian_with(error=lambda a, m, s: (a - m) ** 2 / (2 * s)), ["not by 2σ"]),
    (_gaussian_with(log_term=lambda s: 0.0), ["− log σ_j is missing"]),
    (_gaussian_with(constant=0.0), ["log 2π per dimension is missing"]),
    (_gaussian_with(constant=LOG_2PI), ["not − log 2π"]),
    (_gaussian_with(error=lambda a, m, s: -(a - m) ** 2 / (2 * s ** 2)), ["sign of the squared"]),
    (gaussian_product, ["underflows to 0"]),
    (gaussian_detached, ["no gradient reaches mean"]),
    (gaussian_torch, ["called torch.distributions.normal.Normal.log_prob"]),
])
def test_check_gaussian_log_prob_fails_on_mutants(mutant, fragments):
    assert_fails(check_gaussian_log_prob, mutant, "gaussian_log_prob", *fragments)


def test_check_gaussian_log_prob_not_implemented():
    assert_fails(check_gaussian_log_prob, not_implemented, "gaussian_log_prob is not implemented yet")


# --------------------------------------------------------------------------------- all checks


LOSS_CHECKS = [check_clipped_surrogate, check_approx_kl]


@pytest.mark.parametrize("check", LOSS_CHECKS, ids=lambda check: check.__name__)
def test_every_check_refuses_numpy_arrays(check):
    def as_numpy(*args, **kwargs):
        return np.zeros(())

    with pytest.raises(AssertionError, match="returned ndarray; expected a torch.Tensor"):
        check(as_numpy)


@pytest.mark.parametrize("check", LOSS_CHECKS, ids=lambda check: check.__name__)
def test_every_check_refuses_numpy_computations(check):
    """A solution computed in NumPy and wrapped back into a tensor has no gradient (the losses)
    or is refused as an array (the KL estimate)."""
    def through_numpy(*args, **kwargs):
        arrays = [a.detach().numpy() if isinstance(a, torch.Tensor) else a for a in args]
        log_ratio = arrays[0] - arrays[1]
        return np.mean(np.exp(log_ratio) - 1 - log_ratio)

    with pytest.raises(AssertionError, match="expected a torch.Tensor|returned a float"):
        check(through_numpy)
