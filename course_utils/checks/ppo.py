"""Checks of notebook 07's exercises: PPO's clipped surrogate loss, the approximate KL divergence
used for early stopping, the whole PPO update, and the log-density of a diagonal Gaussian policy.

In the loss checks every argument is a tensor of shape ``(B,)`` (one minibatch): ``log_probs`` =
log π_θ(a|s) under the policy being trained, ``old_log_probs`` = log π_old(a|s) recorded when the
rollout was collected, the ratio ``r = π_θ / π_old = exp(log_probs − old_log_probs)``. The
known-answer minibatch has one sample in each of the six cells of the case table (A > 0 or A < 0
× r below, inside or above [1 − ε, 1 + ε]), so the value AND the gradient of every cell are
checked. The update check runs one update of a small actor-critic on a fixed rollout with fixed
seeds, beside ``agents.ppo.ppo_update``, and compares the epochs run, the metrics and the
parameters after it; a wrong result is matched against the usual mistakes, each run the same way.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Optional, Sequence

import gymnasium as gym
import torch
from torch import nn

from course_utils.agents.ppo import ActorCritic, PPOConfig, Rollout, ppo_update
from course_utils.checks.common import (
    Fn,
    call,
    expect_close,
    expect_scalar_loss,
    expect_tensor,
    expect_tensors_unchanged,
    passed,
    references,
)

__all__ = [
    "check_approx_kl",
    "check_clipped_surrogate",
    "check_gaussian_log_prob",
    "check_ppo_update",
]

_CLIP = 0.2
# The six cells of the case table, ε = 0.2: (advantage, ratio, objective min(rA, clip(r)A),
# whether the gradient is zero, what the cell teaches).
_CELLS = [
    (2.0, 0.6, 1.2, False, "A > 0 and r = 0.6 below 1 − ε: the unclipped r·A = 1.2 is the smaller "
                           "term, so it counts (with its gradient): the clip never stops PPO "
                           "from undoing a step that made a good action LESS likely."),
    (1.0, 1.1, 1.1, False, "A > 0 and r = 1.1 inside [1 − ε, 1 + ε]: the objective is r·A."),
    (3.0, 1.5, 3.6, True, "A > 0 and r = 1.5 above 1 + ε: the objective is clipped at "
                          "(1 + ε)·A = 3.6 and is flat there (zero gradient): no incentive to "
                          "push r further."),
    (-2.0, 0.5, -1.6, True, "A < 0 and r = 0.5 below 1 − ε: the objective is clipped at "
                            "(1 − ε)·A = −1.6 and is flat there (zero gradient)."),
    (-1.0, 0.9, -0.9, False, "A < 0 and r = 0.9 inside [1 − ε, 1 + ε]: the objective is r·A."),
    (-0.5, 1.5, -0.75, False, "A < 0 and r = 1.5 above 1 + ε: the unclipped r·A = −0.75 is the "
                              "smaller term, so it counts (with its gradient): a step that made "
                              "a bad action MORE likely can always be undone."),
]
_OLD_LOG_PROBS = [-1.0, -0.5, -2.0, -1.5, -0.7, -1.2]
RATIO_HINT = ("The ratio is r = π_θ(a|s) / π_old(a|s) = exp(log_probs − old_log_probs): "
              "exponentiate the DIFFERENCE of the log-probabilities.")


def _expect_loss_value(loss: torch.Tensor, expected: float, shown: str,
                       mistakes: Sequence[tuple[float, str]], hint: str) -> None:
    """The scalar ``loss`` equals ``expected``; otherwise the hint of the matching mistake."""
    value = loss.item()
    if not math.isfinite(value):
        raise AssertionError(f"{shown} returned {value}; expected {expected:.4f}. {hint}")
    if math.isclose(value, expected, rel_tol=1e-4, abs_tol=1e-4):
        return
    for wrong, wrong_hint in mistakes:
        if math.isclose(wrong, expected, rel_tol=1e-4, abs_tol=1e-4):
            continue  # this mistake gives the right answer here: it says nothing
        if math.isclose(value, wrong, rel_tol=1e-4, abs_tol=1e-4):
            hint = wrong_hint
            break
    raise AssertionError(f"{shown} returned {value:.4f}; expected {expected:.4f}. {hint}")


def _gradients(loss: torch.Tensor, inputs: dict[str, torch.Tensor], shown: str
               ) -> dict[str, Optional[torch.Tensor]]:
    """∂loss/∂input for every input (None where no gradient reaches it)."""
    if not loss.requires_grad:
        raise AssertionError(f"{shown} has no gradient: do not detach its inputs, and do not use "
                             ".item() or NumPy inside it.")
    grads = torch.autograd.grad(loss, list(inputs.values()), allow_unused=True)
    return dict(zip(inputs, grads))



def _surrogate(log_probs, old_log_probs, advantages, clip, *, ratio: str = "exp",
               combine: str = "min", clip_where: str = "ratio", sign: float = 1.0,
               reduce=torch.mean) -> torch.Tensor:
    """The clipped surrogate loss in float64; the keywords make the common mistakes."""
    lp, old, adv = log_probs.detach().double(), old_log_probs.detach().double(), \
        advantages.detach().double()
    r = {"exp": torch.exp(lp - old), "difference": lp - old, "quotient": lp / old,
         "inverted": torch.exp(old - lp)}[ratio]
    clipped_ratio = {"ratio": r.clamp(1 - clip, 1 + clip), "upper": r.clamp(max=1 + clip),
                     "product": None}[clip_where]
    clipped = (r * adv).clamp(1 - clip, 1 + clip) if clipped_ratio is None else clipped_ratio * adv
    objective = {"min": torch.minimum(r * adv, clipped), "max": torch.maximum(r * adv, clipped),
                 "clipped": clipped, "unclipped": r * adv,
                 "min_ratio": torch.minimum(r, r.clamp(1 - clip, 1 + clip)) * adv}[combine]
    return -sign * reduce(objective)


def _surrogate_mistakes(log_probs, old_log_probs, advantages, clip):
    args = (log_probs, old_log_probs, advantages, clip)
    return [
        (_surrogate(*args, ratio="difference"),
         RATIO_HINT + " log_probs − old_log_probs is log r, not r."),
        (_surrogate(*args, ratio="quotient"),
         RATIO_HINT + " log_probs / old_log_probs is not the ratio of the probabilities."),
        (_surrogate(*args, ratio="inverted"),
         "The ratio is the wrong way round: r = π_θ / π_old = exp(log_probs − old_log_probs)."),
        (_surrogate(*args, sign=-1.0),
         "Check the sign: the clipped objective is MAXIMISED, so the loss to minimise is "
         "−mean(min(r·A, clip(r, 1 − ε, 1 + ε)·A))."),
        (_surrogate(*args, combine="max"),
         "Take the MINIMUM of the two terms, not the maximum: the clipped objective is a "
         "pessimistic bound on the unclipped one."),
        (_surrogate(*args, combine="clipped"),
         "The min is missing: the objective is min(r·A, clip(r, 1 − ε, 1 + ε)·A); the clipped "
         "term alone would never let PPO undo a step that moved r outside the range in the wrong "
         "direction."),
        (_surrogate(*args, combine="unclipped"),
         "The ratio is not clipped: that is the unclipped surrogate −mean(r·A). Take "
         "min(r·A, clip(r, 1 − ε, 1 + ε)·A)."),
        (_surrogate(*args, combine="min_ratio"),
         "Take the minimum of the two OBJECTIVES r·A and clip(r, 1 − ε, 1 + ε)·A, not of the two "
         "ratios: when A < 0, multiplying by A swaps which one is smaller."),
        (_surrogate(*args, clip_where="product"),
         "Clip the RATIO, then multiply by the advantage: clip(r, 1 − ε, 1 + ε)·A, not "
         "clip(r·A, 1 − ε, 1 + ε)."),
        (_surrogate(*args, clip_where="upper"),
         "Clip the ratio on both sides, to [1 − ε, 1 + ε]: torch.clamp(r, 1 - clip, 1 + clip)."),
        (_surrogate(*args, reduce=torch.sum), "Average over the minibatch instead of summing."),
    ]


def _cell_inputs(cells: list[int]) -> tuple[list[float], list[float], list[float]]:
    old = [_OLD_LOG_PROBS[i] for i in cells]
    new = [round(o + math.log(_CELLS[i][1]), 6) for o, i in zip(old, cells)]
    return new, old, [_CELLS[i][0] for i in cells]


def _check_old_detached(grad_old: Any, shown: str) -> None:
    if grad_old is not None and grad_old.abs().max() > 0:
        raise AssertionError(
            f"{shown} sends a gradient into old_log_probs: detach them "
            "(old_log_probs.detach()). π_old is the policy that COLLECTED the rollout, fixed "
            "numbers for all the epochs of the update; only log π_θ is trained.")


def _check_surrogate_gradient(grad: Any, log_probs: list[float], old: list[float],
                              advantages: list[float], clip: float, shown: str) -> None:
    """∂L/∂log π_i = −r_i A_i / B where the min picks the unclipped term, 0 where it is clipped."""
    B = len(log_probs)
    if grad is None:
        raise AssertionError(f"{shown}: no gradient reaches log_probs. Do not detach log_probs "
                             "(nor compute the ratio with .item() or NumPy): PPO trains the "
                             "policy through them.")
    for i in range(B):
        r = math.exp(log_probs[i] - old[i])
        flat = (advantages[i] > 0 and r > 1 + clip) or (advantages[i] < 0 and r < 1 - clip)
        want = 0.0 if flat else -r * advantages[i] / B
        got = grad[i].item()
        if not math.isclose(got, want, rel_tol=1e-3, abs_tol=1e-5):
            side = "below" if r < 1 - clip else "above" if r > 1 + clip else "inside"
            where = (f"A = {advantages[i]} and r = {r:.2f} ({side} the range "
                     f"[{1 - clip:.1f}, {1 + clip:.1f}])")
            if flat:
                why = ("the objective is CLIPPED there and flat, so the gradient must be 0. Clip "
                       "the ratio (torch.clamp(ratio, 1 - clip, 1 + clip)) so that no gradient "
                       "flows through the clipped term, and take the min of the two terms.")
            else:
                why = (f"the min picks the unclipped term r·A there, so ∂L/∂log π = −r·A / B = "
                       f"{want:.4f} (∂r/∂log π = r, because r = exp(log π − log π_old)).")
            raise AssertionError(f"the gradient of {shown} with respect to log_probs is {got:.4f} "
                                 f"at index {i}; expected {want:.4f}. At {where} {why}")


def _unknown_mistake(value: float, expected: float, mistakes) -> bool:
    """``value`` is wrong, and none of the known ``mistakes`` explains it."""
    def close(a: float, b: float) -> bool:
        return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-4)
    return not close(value, expected) and not any(close(value, wrong) and not close(wrong, expected)
                                                  for wrong, _ in mistakes)


def _check_cell(fn: Fn, name: str, i: int) -> None:
    """Cell ``i`` of the case table alone (B = 1): its value and its gradient."""
    advantage, ratio, objective, flat, why = _CELLS[i]
    new, old, adv = _cell_inputs([i])
    log_probs = torch.tensor(new, requires_grad=True)
    shown = (f"{name}(log_probs={new}, old_log_probs={old}, advantages={adv}, "
             f"clip={_CLIP}) (r = {ratio})")
    loss = expect_scalar_loss(call(fn, name, log_probs, torch.tensor(old), torch.tensor(adv),
                                    _CLIP), shown)
    _expect_loss_value(loss, -objective, shown, [], why)
    grads = _gradients(loss, {"log_probs": log_probs}, shown)
    _check_surrogate_gradient(grads["log_probs"], new, old, adv, _CLIP, shown)


def check_clipped_surrogate(fn: Fn) -> None:
    """Check ``fn(log_probs (B,), old_log_probs (B,), advantages (B,), clip) -> scalar`` is PPO's
    clipped surrogate loss ``−mean(min(r·A, clip(r, 1 − ε, 1 + ε)·A))`` with
    ``r = exp(log_probs − old_log_probs)`` and ``ε = clip``; no gradient flows into
    ``old_log_probs``."""
    name = "clipped_surrogate"
    hint = ("L = −mean(min(r·A, clip(r, 1 − ε, 1 + ε)·A)) with r = exp(log_probs − "
            "old_log_probs).")
    n = 0
    # The six cells together, with old_log_probs that would carry a gradient.
    new, old, adv = _cell_inputs(list(range(6)))
    log_probs, old_log_probs = torch.tensor(new, requires_grad=True), torch.tensor(
        old, requires_grad=True)
    inputs = {"log_probs": log_probs, "old_log_probs": old_log_probs,
              "advantages": torch.tensor(adv)}
    copies = {k: v.detach().clone() for k, v in inputs.items()}
    shown = (f"{name}(log_probs={new}, old_log_probs={old}, advantages={adv}, clip={_CLIP}) "
             f"(r = {[cell[1] for cell in _CELLS]})")
    # −mean([1.2, 1.1, 3.6, −1.6, −0.9, −0.75]) = −2.65 / 6 = −0.441667
    loss = expect_scalar_loss(call(fn, name, *inputs.values(), _CLIP), shown)
    expect_tensors_unchanged(name, inputs, copies)
    mistakes = _surrogate_mistakes(torch.tensor(new), torch.tensor(old), torch.tensor(adv), _CLIP)
    if _unknown_mistake(loss.item(), -2.65 / 6, mistakes):
        for i in range(6):  # find the first cell of the case table that it gets wrong
            _check_cell(fn, name, i)
    _expect_loss_value(loss, -2.65 / 6, shown, mistakes, hint)
    grads = _gradients(loss, {"log_probs": log_probs, "old_log_probs": old_log_probs}, shown)
    _check_old_detached(grads["old_log_probs"], shown)
    _check_surrogate_gradient(grads["log_probs"], new, old, adv, _CLIP, shown)
    n += 1

    # Each cell alone (B = 1): its value and its gradient.
    for i in range(6):
        _check_cell(fn, name, i)
        n += 1

    # First epoch: π_θ = π_old, r = 1 everywhere.
    shown = f"{name}(log_probs=old_log_probs={old}, advantages={adv}, clip={_CLIP})"
    loss = expect_scalar_loss(call(fn, name, torch.tensor(old), torch.tensor(old),
                                    torch.tensor(adv), _CLIP), shown)
    _expect_loss_value(loss, -sum(adv) / 6, shown,
                       _surrogate_mistakes(torch.tensor(old), torch.tensor(old),
                                           torch.tensor(adv), _CLIP),
                       "In the first epoch π_θ = π_old, so r = 1 and the loss is −mean(A).")
    n += 1

    # Log-probabilities of a high-dimensional continuous action: π itself underflows.
    low_old, low_new = [-120.0, -135.0, -150.0], [-119.9, -135.3, -149.5]
    shown = (f"{name}(log_probs={low_new}, old_log_probs={low_old}, advantages=[1.0, 1.0, -1.0], "
             f"clip={_CLIP})")
    loss = expect_scalar_loss(call(fn, name, torch.tensor(low_new), torch.tensor(low_old),
                                    torch.tensor([1.0, 1.0, -1.0]), _CLIP), shown)
    expected = _surrogate(torch.tensor(low_new), torch.tensor(low_old),
                          torch.tensor([1.0, 1.0, -1.0]), _CLIP).item()
    if not math.isfinite(loss.item()):
        raise AssertionError(
            f"{shown} returned {loss.item()}; expected {expected:.4f}. Compute the ratio as "
            "exp(log_probs − old_log_probs), never as exp(log_probs) / exp(old_log_probs): with "
            "log-probabilities like −120 (continuous actions in many dimensions) both "
            "probabilities round to 0, and 0 / 0 = nan.")
    _expect_loss_value(loss, expected, shown, [], hint)
    n += 1

    generator = torch.Generator().manual_seed(70)
    old = -torch.rand(256, generator=generator) * 3
    new = old + torch.randn(256, generator=generator) * 0.3
    advantages = torch.randn(256, generator=generator)
    shown = f"{name}(a random minibatch of 256, clip=0.1)"
    loss = expect_scalar_loss(call(fn, name, new, old, advantages, 0.1), shown)
    _expect_loss_value(loss, _surrogate(new, old, advantages, 0.1).item(), shown,
                       _surrogate_mistakes(new, old, advantages, 0.1),
                       hint + " Use the clip argument for ε, not a constant 0.2.")
    n += 1
    passed(name, n)


# ------------------------------------------------------------------------------ approximate KL


def _kl(log_probs, old_log_probs) -> float:
    log_ratio = log_probs.double() - old_log_probs.double()
    return ((log_ratio.exp() - 1.0) - log_ratio).mean().item()


def _kl_mistakes(log_probs, old_log_probs):
    log_ratio = log_probs.double() - old_log_probs.double()
    ratio = log_ratio.exp()
    return [
        ((-log_ratio).mean().item(),
         "That is the naive estimator mean(log π_old − log π): unbiased but noisy, and it can be "
         "NEGATIVE, although a KL divergence never is. Use mean((r − 1) − log r) with "
         "r = exp(log_probs − old_log_probs): every term is ≥ 0."),
        (log_ratio.mean().item(),
         "That is mean(log π − log π_old) = mean(log r), which has the wrong sign and can be "
         "negative. Use mean((r − 1) − log r) with r = exp(log_probs − old_log_probs)."),
        (((1.0 / ratio - 1.0) + log_ratio).mean().item(),
         "The ratio is the wrong way round: r = π / π_old = exp(log_probs − old_log_probs)."),
        (((ratio - 1.0) + log_ratio).mean().item(),
         "Check the sign of the log: (r − 1) − log r, which is ≥ 0 because log r ≤ r − 1."),
        ((ratio - log_ratio).mean().item(),
         "The − 1 is missing: (r − 1) − log r, which is 0 when π = π_old."),
        ((log_ratio - (ratio - 1.0)).mean().item(),
         "Check the sign: (r − 1) − log r, which is ≥ 0 (log r ≤ r − 1)."),
        ((0.5 * log_ratio ** 2).mean().item(),
         "That is the estimator ½ (log r)²; this course uses (r − 1) − log r, which is unbiased "
         "and never negative."),
        (((ratio - 1.0) - log_ratio).sum().item(), "Average over the minibatch instead of summing."),
        (log_ratio.abs().mean().item(),
         "mean |log r| is not a KL estimate: use mean((r − 1) − log r)."),
    ]


def _expect_kl(result: Any, expected: float, shown: str, mistakes, hint: str) -> None:
    if isinstance(result, float):
        raise AssertionError(f"{shown} returned a float; return a tensor (no .item(), which "
                             "waits for the GPU): the update averages the minibatches' estimates "
                             "and compares the average with target_kl once per epoch.")
    result = expect_tensor(result, (), shown)
    _expect_loss_value(result, expected, shown, mistakes, hint)


def check_approx_kl(fn: Fn) -> None:
    """Check ``fn(log_probs (B,), old_log_probs (B,)) -> scalar`` is the approximate KL
    divergence ``mean((r − 1) − log r)`` with ``r = π / π_old = exp(log_probs −
    old_log_probs)``: an estimate of KL(π_old ‖ π) from the rollout's actions, never negative."""
    name = "approx_kl"
    hint = "approx KL = mean((r − 1) − log r) with r = exp(log_probs − old_log_probs)."
    n = 0
    old_list = [-1.2, -0.4, -1.0, -0.3]
    shown = f"{name}(log_probs={old_list}, old_log_probs={old_list})"
    _expect_kl(call(fn, name, torch.tensor(old_list), torch.tensor(old_list)), 0.0, shown, [],
               "When π = π_old (r = 1) the divergence is 0: (1 − 1) − log 1 = 0.")
    n += 1
    # log r = [0.2, −0.1, −1.0, 0.0]: (e^0.2 − 1.2, e^−0.1 − 0.9, e^−1, 0)
    #   = (0.021403, 0.004837, 0.367879, 0.0), mean 0.098530
    # log r = [0.5, 0.3]: (e^0.5 − 1.5, e^0.3 − 1.3) = (0.148721, 0.049859), mean 0.099290; the
    #   naive mean(log π_old − log π) is −0.4 there.
    for new_list, old_list, expected in (([-1.0, -0.5, -2.0, -0.3], [-1.2, -0.4, -1.0, -0.3],
                                          0.098530),
                                         ([-0.5, -1.0], [-1.0, -1.3], 0.099290)):
        inputs = {"log_probs": torch.tensor(new_list), "old_log_probs": torch.tensor(old_list)}
        copies = {k: v.clone() for k, v in inputs.items()}
        shown = f"{name}(log_probs={new_list}, old_log_probs={old_list})"
        result = call(fn, name, *inputs.values())
        expect_tensors_unchanged(name, inputs, copies)
        _expect_kl(result, expected, shown, _kl_mistakes(*inputs.values()), hint)
        n += 1
    generator = torch.Generator().manual_seed(71)
    old = -torch.rand(1000, generator=generator) * 3
    new = old + torch.randn(1000, generator=generator) * 0.5
    shown = f"{name}(a random minibatch of 1000)"
    result = call(fn, name, new, old)
    _expect_kl(result, _kl(new, old), shown, _kl_mistakes(new, old), hint)
    n += 1
    passed(name, n)




# ------------------------------------------------------------------------------ the PPO update

_METRICS = ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction")
_SHUFFLE = ("one permutation per epoch, order = torch.randperm(B, generator=generator), and "
            "minibatch k = order[k·M : (k + 1)·M]")

# Each mistake: (its name in _mutant_update, the message that names it).
_UPDATE_MISTAKES = [
    ("max", "The parameters move as if the objective took the MAXIMUM of r·Â and "
            "clip(r, 1 − ε, 1 + ε)·Â: take the minimum, the pessimistic bound (exercise 1)."),
    ("sign", "The policy moves the wrong way: the clipped objective is MAXIMISED, so the loss "
             "that the optimiser minimises is its negative (exercise 1)."),
    ("inverted", "The ratio is the wrong way round: r = π_θ / π_old = exp(log π_θ − log π_old), "
                 "with log π_θ from model.evaluate and log π_old = rollout.log_probs."),
    ("no_exp", "The ratio is r = exp(log π_θ − log π_old): the difference of the "
               "log-probabilities is log r, not r."),
    ("no_normalisation", "The advantages are not normalised, although config.normalize_advantages "
                         "asks for it: Â ← (Â − mean) / (std + 1e-8) within each minibatch."),
    ("always_normalisation", "The advantages are normalised although "
                             "config.normalize_advantages is False: normalise only when it asks."),
    ("rollout_normalisation", "The advantages are normalised over the whole rollout: normalise "
                              "them within each MINIBATCH, with its own mean and std."),
    ("no_kl_stop", "All the epochs ran although the approximate KL exceeded config.target_kl: "
                   "after each epoch, stop when its mean approximate KL is above target_kl."),
    ("no_grad_clip", "The gradient is not clipped: after loss.backward() and before "
                     "optimizer.step(), scale it to a global norm of at most "
                     "config.max_grad_norm (torch.nn.utils.clip_grad_norm_ on model.parameters())."),
    ("no_zero_grad", "The gradients accumulate from one minibatch to the next: reset them "
                     "(optimizer.zero_grad()) before each loss.backward()."),
    ("entropy_sign", "The entropy bonus has the wrong sign: the loss SUBTRACTS "
                     "config.entropy_coef · mean(H), so minimising it raises the entropy."),
    ("value_sign", "The value loss has the wrong sign: the loss ADDS "
                   "config.value_coef · mean((V(s) − R)²)."),
    ("one_permutation", f"The minibatches are the same in every epoch: draw {_SHUFFLE}."),
]


def _mutant_update(model: ActorCritic, optimizer: torch.optim.Optimizer, rollout: Rollout,
                   config: PPOConfig, generator: torch.Generator, mistake: str) -> dict[str, Any]:
    """``ppo_update`` with one of the ``_UPDATE_MISTAKES`` made."""
    n = rollout.advantages.shape[0]
    all_advantages = rollout.advantages
    if mistake == "rollout_normalisation":
        all_advantages = (all_advantages - all_advantages.mean()) / (all_advantages.std() + 1e-8)
    normalise = {"no_normalisation": False, "always_normalisation": True,
                 "rollout_normalisation": False}.get(mistake, config.normalize_advantages)
    order = torch.randperm(n, generator=generator) if mistake == "one_permutation" else None
    for epoch in range(config.n_epochs):
        if mistake != "one_permutation":
            order = torch.randperm(n, generator=generator)
        stats = []
        for start in range(0, n, config.batch_size):
            index = order[start:start + config.batch_size]
            log_probs, entropy, values = model.evaluate(rollout.observations[index],
                                                        rollout.actions[index])
            advantages = all_advantages[index]
            if normalise and len(index) > 1:
                advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
            log_ratio = log_probs - rollout.log_probs[index]
            ratio = {"inverted": torch.exp(-log_ratio), "no_exp": log_ratio}.get(
                mistake, torch.exp(log_ratio))
            clipped = torch.clamp(ratio, 1.0 - config.clip, 1.0 + config.clip)
            pick = torch.max if mistake == "max" else torch.min
            policy_loss = -pick(ratio * advantages, clipped * advantages).mean()
            if mistake == "sign":
                policy_loss = -policy_loss
            value_loss = ((values - rollout.returns[index]) ** 2).mean()
            loss = policy_loss \
                + (-1.0 if mistake == "value_sign" else 1.0) * config.value_coef * value_loss \
                - (-1.0 if mistake == "entropy_sign" else 1.0) * config.entropy_coef * entropy.mean()
            if mistake != "no_zero_grad":
                optimizer.zero_grad()
            loss.backward()
            if mistake != "no_grad_clip":
                nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            with torch.no_grad():
                true_ratio = torch.exp(log_probs - rollout.log_probs[index])
                stats.append(((true_ratio - 1.0) - torch.log(true_ratio)).mean())
        if (mistake != "no_kl_stop" and config.target_kl is not None
                and torch.stack(stats).mean() > config.target_kl):
            break
    return {"epochs": epoch + 1}


def _update_case(continuous: bool) -> tuple[ActorCritic, Rollout, PPOConfig, str]:
    """A small actor-critic and a rollout of 48 samples, built from fixed seeds: with a
    Categorical policy (2 actions), normalised advantages and a target KL that stops the update
    after its third of 4 epochs; or with a Gaussian policy (2 dimensions), raw advantages and
    all 3 epochs. The old log-probabilities are those of the model plus noise, so that some
    ratios start outside [1 − ε, 1 + ε]; the gradient-norm limit binds."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(8 if continuous else 7)
        action_space = gym.spaces.Box(-1.0, 1.0, (2,)) if continuous else gym.spaces.Discrete(2)
        config = PPOConfig(size=16, learning_rate=0.01, n_epochs=3 if continuous else 4,
                           batch_size=16, clip=0.2, value_coef=0.5, entropy_coef=0.01,
                           max_grad_norm=0.2, normalize_advantages=not continuous,
                           target_kl=None if continuous else 0.014)
        model = ActorCritic(gym.spaces.Box(-5.0, 5.0, (4,)), action_space, config, device="cpu")
        observations = torch.randn(48, 4)
        actions, log_probs, values = model.act(observations)
        advantages = 3.0 * torch.randn(48) + 1.0
        rollout = Rollout(observations, actions, log_probs + 0.15 * torch.randn(48), values,
                          advantages, values + advantages + 0.5 * torch.randn(48))
    shown = ("a Gaussian policy (2 dimensions), normalize_advantages=False, target_kl=None, "
             "3 epochs" if continuous else
             "a Categorical policy (2 actions), normalize_advantages=True, target_kl=0.014, 4 epochs")
    return model, rollout, config, f"one update of {shown}, 3 minibatches of 16 per epoch"


def _run_update(fn: Fn, model: ActorCritic, rollout: Rollout, config: PPOConfig,
                name: Optional[str] = None, mistake: Optional[str] = None
                ) -> tuple[Any, torch.Tensor, ActorCritic]:
    """Run an update on a copy of ``model`` with a fresh Adam and the generator seeded 0: the
    student's ``fn`` (through ``call`` when ``name`` is given) or a mutant; returns what it
    returned, the parameters after it (flat) and the copy."""
    model = copy.deepcopy(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    generator = torch.Generator().manual_seed(0)
    if mistake is not None:
        result = _mutant_update(model, optimizer, rollout, config, generator, mistake)
    elif name is not None:
        result = call(fn, name, model, optimizer, rollout, config, generator)
        if torch.equal(generator.get_state(), torch.Generator().manual_seed(0).get_state()):
            raise AssertionError(f"{name} did not shuffle with the generator it was given: draw "
                                 f"{_SHUFFLE}, so that the order is random and reproducible.")
    else:
        result = fn(model, optimizer, rollout, config, generator)
    return result, torch.cat([p.detach().flatten() for p in model.parameters()]), model


def _as_number(value: Any, key: str, shown: str) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.detach())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise AssertionError(f"{shown}: the returned {key!r} is {value!r}; expected a number or a "
                         "one-element tensor.")


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, rtol=1e-4, atol=1e-5)


def _diagnose_update(params: torch.Tensor, epochs: int, model: ActorCritic, rollout: Rollout,
                     config: PPOConfig, expected: torch.Tensor, expected_epochs: int) -> str:
    """The message of the first known mistake whose update ends where the student's did."""
    for mistake, message in _UPDATE_MISTAKES:
        result, wrong, _ = _run_update(None, model, rollout, config, mistake=mistake)
        if _close(wrong, expected) and result["epochs"] == expected_epochs:
            continue  # this mistake changes nothing here: it says nothing
        if _close(params, wrong) and epochs == result["epochs"]:
            return message
    return ""


@references("course_utils.agents.ppo.ppo_update")
def check_ppo_update(fn: Fn) -> None:
    """Check ``fn(model, optimizer, rollout, config, generator) -> metrics`` is PPO's update: one
    update of a small ``ActorCritic`` on a fixed ``Rollout`` must run as many epochs, return the
    same last-epoch means of ``policy_loss``, ``value_loss``, ``entropy``, ``approx_kl`` and
    ``clip_fraction``, and leave the same parameters as ``agents.ppo.ppo_update``."""
    name = "ppo_update"
    n = 0
    for continuous in (False, True):
        model, rollout, config, shown = _update_case(continuous)
        shown = f"{name}: {shown}"
        inputs = {field: getattr(rollout, field) for field in Rollout.__dataclass_fields__}
        copies = {field: tensor.clone() for field, tensor in inputs.items()}
        result, params, _ = _run_update(fn, model, rollout, config, name)
        expect_tensors_unchanged(name, inputs, copies)
        reference, expected, _ = _run_update(ppo_update, model, rollout, config)
        if not isinstance(result, dict) or not {"epochs", *_METRICS} <= set(result):
            got = sorted(result) if isinstance(result, dict) else type(result).__name__
            raise AssertionError(f"{shown} returned {got}; expected a dict with the keys "
                                 f"{['epochs', *_METRICS]} (the training loop logs them).")
        epochs = int(_as_number(result["epochs"], "epochs", shown))
        wrong = not _close(params, expected) or epochs != reference["epochs"]
        if wrong:
            hint = _diagnose_update(params, epochs, model, rollout, config, expected,
                                    reference["epochs"])
            if hint:
                raise AssertionError(f"{shown}: the parameters after your update differ from "
                                     f"the reference's. {hint}")
        if epochs != reference["epochs"]:
            raise AssertionError(
                f"{shown} ran {epochs} epochs; expected {reference['epochs']}. After each epoch "
                "compare the MEAN approximate KL of its minibatches, mean((r − 1) − log r), with "
                "config.target_kl (None: never stop) and stop the epochs when it is larger; "
                "'epochs' counts the epochs run, the last one included.")
        if wrong:
            largest = (params - expected).abs().max().item()
            raise AssertionError(
                f"{shown}: the parameters after your update differ from the reference's (by up "
                f"to {largest:.2e}). Check, minibatch by minibatch: {_SHUFFLE}; "
                "log π_θ, H and V from model.evaluate; the advantages normalised within the "
                "minibatch if config asks; the loss −mean(min(r·Â, clip(r, 1 − ε, 1 + ε)·Â)) + "
                "c_v·mean((V − R)²) − c_e·mean(H) with config's coefficients; then zero_grad, "
                "backward, clip_grad_norm_ to config.max_grad_norm, step.")
        for key in _METRICS:
            value = _as_number(result[key], key, shown)
            want = float(reference[key])
            if not math.isclose(value, want, rel_tol=1e-4, abs_tol=1e-5):
                raise AssertionError(
                    f"{shown} returned {key}={value:.5f}; expected {want:.5f}: the mean over the "
                    "minibatches of the LAST epoch run, computed on each minibatch before its "
                    "gradient step (clip_fraction: the share of samples with |r − 1| > ε).")
        n += 1
    passed(name, n)


# ------------------------------------------------------------------------------ Gaussian policy

_LOG_2PI = math.log(2 * math.pi)


def _gaussian(actions, mean, log_std, *, std: str = "exp", reduce: str = "sum",
              log_term: float = 1.0, constant: float = 1.0, sign: float = 1.0,
              variance: str = "squared") -> torch.Tensor:
    """log N(a; μ, diag(σ²)) summed over the dimensions, in float64; the keywords make the
    common mistakes."""
    a, mu, log_sigma = actions.double(), mean.double(), log_std.double()
    sigma = {"exp": log_sigma.exp(), "log_std": log_sigma, "log_var": (0.5 * log_sigma).exp()}[std]
    denominator = sigma ** 2 if variance == "squared" else sigma
    per_dimension = -sign * (a - mu) ** 2 / (2 * denominator) \
        - log_term * torch.log(sigma) - constant * 0.5 * _LOG_2PI
    return per_dimension.sum(-1) if reduce == "sum" else per_dimension.mean(-1)


def _gaussian_mistakes(actions, mean, log_std) -> list[tuple[torch.Tensor, str]]:
    args = (actions, mean, log_std)
    return [
        (_gaussian(*args, reduce="mean"),
         "Sum the log-densities of the d dimensions (the density is their PRODUCT), do not "
         "average them."),
        (_gaussian(*args, std="log_std"),
         "log_std is log σ: the standard deviation is σ = exp(log_std)."),
        (_gaussian(*args, std="log_var"),
         "log_std is log σ, not log σ²: σ = exp(log_std), σ² = exp(2·log_std)."),
        (_gaussian(*args, variance="plain"),
         "Divide the squared error by 2σ², the variance, not by 2σ."),
        (_gaussian(*args, log_term=0.0),
         "The normalising term − log σ_j is missing (the density's 1/σ)."),
        (_gaussian(*args, constant=0.0),
         "The constant − ½ log 2π per dimension is missing; the ratio of two densities does not "
         "need it, but a log-density does."),
        (_gaussian(*args, constant=2.0),
         "The constant is − ½ log 2π per dimension, not − log 2π."),
        (_gaussian(*args, sign=-1.0),
         "Check the sign of the squared error: − (a − μ)² / (2σ²), the density falls away "
         "from the mean."),
    ]


@references("torch.distributions.normal.Normal.log_prob",
            "torch.distributions.multivariate_normal.MultivariateNormal.log_prob")
def check_gaussian_log_prob(fn: Fn) -> None:
    """Check ``fn(actions (B, d), mean (B, d), log_std (d,)) -> (B,)`` is the log-density of the
    diagonal Gaussian ``N(mean, diag(exp(log_std)²))`` at the actions, computed from the formula
    (not with ``torch.distributions``), with gradients into ``mean`` and ``log_std``."""
    name = "gaussian_log_prob"
    hint = "log π(a|s) = Σ_j [−(a_j − μ_j)² / (2σ_j²) − log σ_j − ½ log 2π], σ_j = exp(log_std_j)."
    n = 0
    lists = {"actions": [[0.5, -1.0], [2.0, 0.0], [-0.3, 0.7]],
             "mean": [[0.0, -0.5], [1.0, 0.5], [0.2, 0.7]], "log_std": [0.5, 0.2]}
    actions, mean = torch.tensor(lists["actions"]), torch.tensor(lists["mean"], requires_grad=True)
    log_std = torch.tensor(lists["log_std"], requires_grad=True)
    shown = f"{name}(" + ", ".join(f"{k}={v}" for k, v in lists.items()) + ")"
    result = call(fn, name, actions, mean, log_std)
    if isinstance(result, torch.Tensor) and tuple(result.shape) == (3, 2):
        raise AssertionError(f"{shown} returned shape (3, 2); expected (3,): sum the "
                             "log-densities of the d dimensions (the density of independent "
                             "dimensions is the product of theirs).")
    result = expect_tensor(result, (3,), shown)
    expected = _gaussian(actions, mean.detach(), log_std.detach())
    if not torch.allclose(result.detach().double(), expected, rtol=1e-4, atol=1e-4):
        for wrong, wrong_hint in _gaussian_mistakes(actions, mean.detach(), log_std.detach()):
            if torch.allclose(result.detach().double(), wrong, rtol=1e-4, atol=1e-4):
                hint = wrong_hint
                break
        expect_close(result, expected, shown, hint)
    n += 1

    # ∂/∂μ_j = (a_j − μ_j) / σ_j², ∂/∂log σ_j = (a_j − μ_j)² / σ_j² − 1 (summed over the batch).
    grads = _gradients(result.sum(), {"mean": mean, "log_std": log_std}, f"the sum of {shown}")
    sigma2 = torch.tensor(lists["log_std"]).mul(2).exp()
    difference = actions - mean.detach()
    for key, want in (("mean", difference / sigma2), ("log_std", (difference ** 2 / sigma2 - 1).sum(0))):
        if grads[key] is None:
            raise AssertionError(f"{shown}: no gradient reaches {key}. Do not detach it: PPO "
                                 "trains the mean and log σ through this log-density.")
        expect_close(grads[key], want, f"the gradient of the sum of {shown} with respect to {key}",
                     hint)
    n += 1

    shown = f"{name}(actions=[[0.0]], mean=[[0.0]], log_std=[0.0])"
    result = expect_tensor(call(fn, name, torch.zeros(1, 1), torch.zeros(1, 1), torch.zeros(1)),
                           (1,), shown)
    expect_close(result, torch.tensor([-0.5 * _LOG_2PI]), shown,
                 "At the mean of a standard normal the log-density is − ½ log 2π ≈ −0.9189.")
    n += 1

    generator = torch.Generator().manual_seed(73)
    mean = torch.randn(4, 100, generator=generator)
    actions = mean + 3.0 * torch.randn(4, 100, generator=generator)
    log_std = torch.full((100,), -1.0)
    shown = f"{name}(a batch of 4 actions of 100 dimensions, log_std=−1)"
    result = expect_tensor(call(fn, name, actions, mean, log_std), (4,), shown)
    expected = _gaussian(actions, mean, log_std)
    if not torch.isfinite(result).all():
        raise AssertionError(
            f"{shown} returned {result.tolist()}; expected values near {expected.mean():.0f}. "
            "Sum the log-densities of the dimensions: multiplying 100 densities underflows to 0, "
            "whose log is −inf.")
    expect_close(result, expected, shown, hint)
    n += 1
    passed(name, n)
