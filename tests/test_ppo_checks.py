"""Notebook 07's exercise checks (course_utils.checks.ppo): each passes on correct
solutions (several styles) and fails, with a helpful message, on the mistakes students make."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from check_helpers import assert_fails, assert_passes, not_implemented
from course_utils.checks import check_approx_kl, check_clipped_surrogate, check_ppo_loss

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


# ------------------------------------------------------------------------------ full PPO loss


def ppo_loss(log_probs, old_log_probs, advantages, values, returns, entropy, clip, value_coef,
             entropy_coef):
    """The notebook's solution."""
    policy_loss = clipped_surrogate(log_probs, old_log_probs, advantages, clip)
    value_loss = ((returns - values) ** 2).mean()
    return policy_loss + value_coef * value_loss - entropy_coef * entropy.mean()


def ppo_mse(log_probs, old_log_probs, advantages, values, returns, entropy, clip, value_coef,
            entropy_coef):
    """Correct, with F.mse_loss and the CleanRL-style surrogate."""
    return (surrogate_max_of_negatives(log_probs, old_log_probs, advantages, clip)
            + value_coef * F.mse_loss(values, returns) - entropy_coef * entropy.mean())


def _ppo_with(surrogate=clipped_surrogate, value=lambda v, r: ((r - v) ** 2).mean(),
              entropy_sign=1.0):
    def fn(log_probs, old_log_probs, advantages, values, returns, entropy, clip, value_coef,
           entropy_coef):
        return (surrogate(log_probs, old_log_probs, advantages, clip)
                + value_coef * value(values, returns) - entropy_sign * entropy_coef * entropy.mean())
    return fn


ppo_half_value = _ppo_with(value=lambda v, r: 0.5 * ((r - v) ** 2).mean())
ppo_entropy_sign = _ppo_with(entropy_sign=-1.0)
ppo_unclipped = _ppo_with(surrogate=surrogate_unclipped)
ppo_surrogate_sign = _ppo_with(surrogate=surrogate_objective_not_loss)
ppo_ratio_difference = _ppo_with(surrogate=surrogate_ratio_difference)
ppo_old_not_detached = _ppo_with(surrogate=surrogate_old_not_detached)
ppo_values_detached = _ppo_with(value=lambda v, r: ((r - v.detach()) ** 2).mean())
ppo_value_abs = _ppo_with(value=lambda v, r: (r - v).abs().mean())
ppo_fixed_clip = _ppo_with(surrogate=surrogate_fixed_clip)


def ppo_value_subtracted(log_probs, old_log_probs, advantages, values, returns, entropy, clip,
                         value_coef, entropy_coef):
    return (clipped_surrogate(log_probs, old_log_probs, advantages, clip)
            - value_coef * ((returns - values) ** 2).mean() - entropy_coef * entropy.mean())


def ppo_no_coefficients(log_probs, old_log_probs, advantages, values, returns, entropy, clip,
                        value_coef, entropy_coef):
    return (clipped_surrogate(log_probs, old_log_probs, advantages, clip)
            + ((returns - values) ** 2).mean() - entropy.mean())


def ppo_per_sample(log_probs, old_log_probs, advantages, values, returns, entropy, clip,
                   value_coef, entropy_coef):
    ratio = torch.exp(log_probs - old_log_probs.detach())
    surrogate = -torch.min(ratio * advantages, ratio.clamp(1 - clip, 1 + clip) * advantages)
    return surrogate + value_coef * (returns - values) ** 2 - entropy_coef * entropy


def test_check_ppo_loss_passes_on_references(capsys):
    for fn in (ppo_loss, ppo_mse):
        assert_passes(check_ppo_loss, fn, capsys, "ppo_loss")


@pytest.mark.parametrize("mutant, fragments", [
    (ppo_half_value, ["returned 0.0121; expected 0.5017", "no ½"]),
    (ppo_entropy_sign, ["returned 0.5733; expected 0.5017", "entropy bonus is SUBTRACTED"]),
    (ppo_unclipped, ["expected 0.5017", "The policy term is not clipped"]),
    (ppo_surrogate_sign, ["expected 0.5017", "sign of the policy term"]),
    (ppo_ratio_difference, ["expected 0.5017", "exponentiate the DIFFERENCE"]),
    (ppo_old_not_detached, ["sends a gradient into old_log_probs"]),
    (ppo_values_detached, ["no gradient reaches values", "Do not detach values"]),
    (ppo_value_abs, ["mean SQUARED error"]),
    (ppo_value_subtracted, ["The value loss is ADDED"]),
    (ppo_no_coefficients, ["expected 0.5017"]),
    (ppo_fixed_clip, ["clip=0.1", "Use the clip argument"]),
    (ppo_per_sample, ["shape (6,)", "expected a scalar"]),
])
def test_check_ppo_loss_fails_on_mutants(mutant, fragments):
    assert_fails(check_ppo_loss, mutant, "ppo_loss", *fragments)


def test_check_ppo_loss_not_implemented():
    assert_fails(check_ppo_loss, not_implemented, "ppo_loss is not implemented yet")


# --------------------------------------------------------------------------------- all checks


ALL_CHECKS = [check_clipped_surrogate, check_approx_kl, check_ppo_loss]


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda check: check.__name__)
def test_every_check_refuses_numpy_arrays(check):
    def as_numpy(*args, **kwargs):
        return np.zeros(())

    with pytest.raises(AssertionError, match="returned ndarray; expected a torch.Tensor"):
        check(as_numpy)


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda check: check.__name__)
def test_every_check_refuses_numpy_computations(check):
    """A solution computed in NumPy and wrapped back into a tensor has no gradient (the losses)
    or is refused as an array (the KL estimate)."""
    def through_numpy(*args, **kwargs):
        arrays = [a.detach().numpy() if isinstance(a, torch.Tensor) else a for a in args]
        log_ratio = arrays[0] - arrays[1]
        return np.mean(np.exp(log_ratio) - 1 - log_ratio)

    with pytest.raises(AssertionError, match="expected a torch.Tensor|returned a float"):
        check(through_numpy)
