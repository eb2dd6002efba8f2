"""Checks of notebook 07's exercises: PPO's clipped surrogate loss, the approximate KL divergence
used for early stopping, and the full PPO loss.

Every argument is a tensor of shape ``(B,)`` (one minibatch): ``log_probs`` = log π_θ(a|s) under
the policy being trained, ``old_log_probs`` = log π_old(a|s) recorded when the rollout was
collected, the ratio ``r = π_θ / π_old = exp(log_probs − old_log_probs)``. The known-answer
minibatch has one sample in each of the six cells of the case table (A > 0 or A < 0 × r below,
inside or above [1 − ε, 1 + ε]), so the value AND the gradient of every cell are checked.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import torch

from course_utils.checks.actor_critic import (ENTROPY_SIGN_HINT, HALF_HINT, SUM_HINT,
                                                      _expect_loss_value, _expect_unchanged,
                                                      _expect_value_and_entropy_gradients,
                                                      _gradients)
from course_utils.checks.common import call, expect_scalar_loss, expect_tensor, Fn, passed, references

__all__ = [
    "check_approx_kl",
    "check_clipped_surrogate",
    "check_ppo_loss",
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


@references("course_utils.agents.actor_critic.ppo_clip_loss")
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
    _expect_unchanged(name, inputs, copies)
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
        raise AssertionError(f"{shown} returned a float; return a tensor (no .item()): the "
                             "training loop calls .item() once per epoch, not per minibatch.")
    result = expect_tensor(result, (), shown)
    _expect_loss_value(result, expected, shown, mistakes, hint)


@references("course_utils.agents.actor_critic.approx_kl")
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
        _expect_unchanged(name, inputs, copies)
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


# ------------------------------------------------------------------------------ full PPO loss


def _ppo(log_probs, old_log_probs, advantages, values, returns, entropy, clip, value_coef,
         entropy_coef, *, surrogate: Optional[dict] = None, value_factor: float = 1.0,
         value_term: str = "squared", entropy_sign: float = 1.0, reduce=torch.mean) -> float:
    difference = returns.double() - values.double()
    value = {"squared": difference ** 2, "abs": difference.abs(), "plain": difference}[value_term]
    policy = _surrogate(log_probs, old_log_probs, advantages, clip, reduce=reduce,
                        **(surrogate or {}))
    return (policy + value_coef * value_factor * reduce(value)
            - entropy_sign * entropy_coef * reduce(entropy.double())).item()


def _ppo_mistakes(*args):
    log_probs, old_log_probs, advantages, values, returns, entropy, clip, value_coef, \
        entropy_coef = args
    return [
        (_ppo(*args, surrogate={"sign": -1.0}),
         "Check the sign of the policy term: the clipped objective is MAXIMISED, so the loss has "
         "−mean(min(r·A, clip(r, 1 − ε, 1 + ε)·A))."),
        (_ppo(*args, surrogate={"combine": "unclipped"}),
         "The policy term is not clipped: use the clipped surrogate "
         "−mean(min(r·A, clip(r, 1 − ε, 1 + ε)·A)), not −mean(r·A)."),
        (_ppo(*args, surrogate={"ratio": "difference"}), RATIO_HINT),
        (_ppo(*args, surrogate={"combine": "max"}),
         "Take the MINIMUM of r·A and clip(r, 1 − ε, 1 + ε)·A, not the maximum."),
        (_ppo(*args, value_factor=0.5), HALF_HINT),
        (_ppo(*args, value_factor=-1.0),
         "The value loss is ADDED: + value_coef · mean((R − V)²)."),
        (_ppo(*args, entropy_sign=-1.0), ENTROPY_SIGN_HINT),
        (_ppo(log_probs, old_log_probs, advantages, values, returns, entropy, clip, 1.0,
              entropy_coef), "Weigh the value loss by value_coef: + value_coef · mean((R − V)²)."),
        (_ppo(log_probs, old_log_probs, advantages, values, returns, entropy, clip, value_coef,
              0.0), "The entropy bonus is missing: − entropy_coef · mean(H)."),
        (_ppo(log_probs, old_log_probs, advantages, values, returns, entropy, clip, value_coef,
              1.0), "Weigh the entropy bonus by entropy_coef: − entropy_coef · mean(H)."),
        (_ppo(*args, value_term="abs"),
         "The value loss is the mean SQUARED error, mean((R − V)²), not the absolute error."),
        (_ppo(*args, value_term="plain"), "Square the value error: mean((R − V)²)."),
        (_ppo(*args, reduce=torch.sum), SUM_HINT),
    ]


@references("course_utils.agents.actor_critic.ppo_clip_loss", "course_utils.agents.actor_critic.value_loss")
def check_ppo_loss(fn: Fn) -> None:
    """Check ``fn(log_probs, old_log_probs, advantages, values, returns, entropy, clip,
    value_coef, entropy_coef) -> scalar`` (tensors of shape ``(B,)``) is PPO's loss
    ``−mean(min(r·A, clip(r, 1 − ε, 1 + ε)·A)) + value_coef · mean((R − V)²) −
    entropy_coef · mean(H)`` with ``r = exp(log_probs − old_log_probs)``: no ½ in the value loss,
    no gradient into ``old_log_probs``."""
    name = "ppo_loss"
    hint = ("L = −mean(min(r·A, clip(r, 1 − ε, 1 + ε)·A)) + value_coef · mean((R − V)²) − "
            "entropy_coef · mean(H), r = exp(log_probs − old_log_probs).")
    n = 0
    new, old, adv = _cell_inputs(list(range(6)))
    lists = {"log_probs": new, "old_log_probs": old, "advantages": adv,
             "values": [0.5, 1.0, -1.0, 2.0, 0.0, 1.5], "returns": [2.0, -1.5, 0.0, 3.0, 1.0, 1.0],
             "entropy": [0.7, 0.6, 0.5, 0.4, 0.9, 1.2]}
    value_coef, entropy_coef = 0.5, 0.05
    # clipped surrogate −2.65/6 (one sample per cell of the case table); R − V = [1.5, −2.5, 1.0,
    # 1.0, 1.0, −0.5], mean((R − V)²) = 11.75/6; mean(H) = 4.3/6:
    # L = −2.65/6 + 0.5·11.75/6 − 0.05·4.3/6 = 3.01/6 = 0.501667
    expected = (-2.65 + 0.5 * 11.75 - 0.05 * 4.3) / 6
    inputs = {k: torch.tensor(x, requires_grad=k in ("log_probs", "old_log_probs", "values",
                                                     "entropy")) for k, x in lists.items()}
    copies = {k: v.detach().clone() for k, v in inputs.items()}
    shown = f"{name}(" + ", ".join(f"{k}={x}" for k, x in lists.items()) \
        + f", clip={_CLIP}, value_coef={value_coef}, entropy_coef={entropy_coef})"
    loss = expect_scalar_loss(call(fn, name, *inputs.values(), _CLIP, value_coef, entropy_coef),
                               shown)
    _expect_unchanged(name, inputs, copies)
    plain = [v.detach() for v in inputs.values()]
    _expect_loss_value(loss, expected, shown,
                       _ppo_mistakes(*plain, _CLIP, value_coef, entropy_coef), hint)
    n += 1

    grads = _gradients(loss, {k: inputs[k] for k in ("log_probs", "old_log_probs", "values",
                                                     "entropy")}, shown)
    _check_old_detached(grads["old_log_probs"], shown)
    _check_surrogate_gradient(grads["log_probs"], new, old, adv, _CLIP, shown)
    difference = torch.tensor(lists["returns"]) - torch.tensor(lists["values"])
    _expect_value_and_entropy_gradients(grads, difference, value_coef, entropy_coef, shown)
    n += 1

    shown = f"{name}(…the same minibatch…, clip={_CLIP}, value_coef=0.0, entropy_coef=0.0)"
    loss = expect_scalar_loss(call(fn, name, *plain, _CLIP, 0.0, 0.0), shown)
    _expect_loss_value(loss, -2.65 / 6, shown, _ppo_mistakes(*plain, _CLIP, 0.0, 0.0),
                       "With both coefficients 0 the loss is the clipped surrogate alone, "
                       "−mean(min(r·A, clip(r, 1 − ε, 1 + ε)·A)).")
    n += 1

    generator = torch.Generator().manual_seed(72)
    old = -torch.rand(128, generator=generator) * 3
    batch = [old + torch.randn(128, generator=generator) * 0.3, old,
             torch.randn(128, generator=generator), torch.randn(128, generator=generator) * 3,
             torch.randn(128, generator=generator) * 3, torch.rand(128, generator=generator) * 2]
    args = (0.1, 0.25, 0.01)
    shown = f"{name}(a random minibatch of 128, clip=0.1, value_coef=0.25, entropy_coef=0.01)"
    loss = expect_scalar_loss(call(fn, name, *batch, *args), shown)
    _expect_loss_value(loss, _ppo(*batch, *args), shown, _ppo_mistakes(*batch, *args),
                       hint + " Use the clip argument for ε, not a constant 0.2.")
    n += 1
    passed(name, n)
