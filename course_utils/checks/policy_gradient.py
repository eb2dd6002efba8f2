"""Checks of notebook 05's exercises: surrogate loss, reward-to-go (plain and discounted),
advantage with a baseline."""

from __future__ import annotations

from typing import Any, Callable

import torch

from course_utils.checks.common import (call, expect_close, expect_scalar_loss, expect_tensor, fmt,
                                                Fn, passed, references)


def _reward_to_go_cases(name: str, run: Callable[[torch.Tensor], Any]) -> int:
    """Cases shared by the undiscounted and the discounted reward-to-go (with γ = 1)."""
    examples = [
        ([1.0, 2.0, 3.0, 4.0, 5.0], [15.0, 14.0, 12.0, 9.0, 5.0],
         "G_t sums the rewards from step t to the END of the episode."),
        ([3.0], [3.0], "A one-step episode's reward-to-go is its reward."),
        ([0.0, 0.0, 1.0], [1.0, 1.0, 1.0], "A reward at the end is credited to every earlier step."),
        ([1.0, -1.0, 2.0], [2.0, 1.0, 2.0], "Negative rewards count too."),
    ]
    for rewards, expected, hint in examples:
        r = torch.tensor(rewards)
        result = run(r)
        expect_close(result, torch.tensor(expected), f"{name}({rewards})", hint)
        if not torch.equal(r, torch.tensor(rewards)):
            raise AssertionError(f"{name} modified its input rewards in place; compute a new tensor.")
    return len(examples)


@references("course_utils.returns.reward_to_go")
def check_reward_to_go(fn: Fn) -> None:
    """Check ``fn(rewards (T,)) -> (T,)`` computes ``G_t = Σ_{k≥t} r_k``."""
    name = "reward_to_go"
    n = _reward_to_go_cases(name, lambda r: call(fn, name, r))
    torch.manual_seed(0)
    rewards = torch.randn(200)
    result = expect_tensor(call(fn, name, rewards.clone()), (200,), f"{name}(200 random rewards)")
    expected = torch.tensor([rewards[t:].sum().item() for t in range(200)])
    expect_close(result, expected, f"{name}(200 random rewards)",
                 "Each G_t must equal rewards[t:].sum().")
    passed(name, n + 1)


@references("course_utils.returns.reward_to_go")
def check_discounted_reward_to_go(fn: Fn) -> None:
    """Check ``fn(rewards (T,), gamma) -> (T,)`` computes ``G_t = Σ_{k≥t} γ^{k−t} r_k``."""
    name = "discounted_reward_to_go"
    n = _reward_to_go_cases(name, lambda r: call(fn, name, r, gamma=1.0))
    examples = [
        ([1.0, 1.0, 1.0], 0.5, [1.75, 1.5, 1.0],
         "Discount relative to the CURRENT step: γ^(k−t), not γ^k."),
        ([0.0, 0.0, 10.0], 0.9, [8.1, 9.0, 10.0], "A reward k steps ahead is worth γ^k of it now."),
        ([1.0, 2.0, 3.0], 0.0, [1.0, 2.0, 3.0], "With γ = 0 only the immediate reward counts."),
    ]
    for rewards, gamma, expected, hint in examples:
        result = call(fn, name, torch.tensor(rewards), gamma=gamma)
        expect_close(result, torch.tensor(expected), f"{name}({rewards}, gamma={gamma})", hint)
    torch.manual_seed(1)
    rewards = torch.randn(300)
    result = expect_tensor(call(fn, name, rewards.clone(), gamma=0.99), (300,),
                           f"{name}(300 random rewards, gamma=0.99)")
    expect_close(result[:-1], rewards[:-1] + 0.99 * result[1:].detach(),
                 f"{name}(300 random rewards, gamma=0.99)[:-1]",
                 "It must satisfy G_t = r_t + γ G_{t+1}.")
    long_call = f"{name}(torch.ones(5000), gamma=0.9)"
    long = expect_tensor(call(fn, name, torch.ones(5000), gamma=0.9), (5000,), long_call)
    if not torch.isfinite(long).all():
        first = int((~torch.isfinite(long)).nonzero()[0])
        raise AssertionError(
            f"{long_call} gave {long[first].item()} at step {first}. Powers like γ^(−t) overflow "
            "on long episodes: use the recursion G_t = r_t + γ G_{t+1}."
        )
    expect_close(long[:1], torch.tensor([10.0]), f"{long_call}[:1]", "G_0 = 1/(1−γ) = 10.")
    passed(name, n + len(examples) + 2)


@references("course_utils.agents.pg.policy_gradient_loss")
def check_surrogate_loss(fn: Fn) -> None:
    """Check ``fn(log_probs (B,), weights (B,)) -> scalar`` is ``−mean(log_probs · weights)``."""
    name = "surrogate_loss"
    log_probs = torch.tensor([-0.5, -1.0, -2.0], requires_grad=True)
    weights = torch.tensor([1.0, 2.0, 3.0])
    shown = f"{name}(log_probs={fmt(log_probs)}, weights={fmt(weights)})"
    loss = expect_scalar_loss(call(fn, name, log_probs, weights), shown)
    expected = 8.5 / 3
    value = loss.item()
    if abs(value - expected) > 1e-4:
        hint = ""
        if abs(value + expected) < 1e-4:
            hint = " Check the sign: optimisers MINIMISE, and we want to MAXIMISE J(θ)."
        elif abs(value - 3 * expected) < 1e-4:
            hint = " Average over the B timesteps of the batch instead of summing."
        raise AssertionError(f"{shown} returned {value:.4f}; expected {expected:.4f}.{hint}")
    if not loss.requires_grad:
        raise AssertionError(f"{shown} has no gradient: do not detach log_probs or use .item().")
    (grad,) = torch.autograd.grad(loss, log_probs)
    expect_close(grad, -weights / 3, f"the gradient of {shown} with respect to log_probs",
                 "∂L/∂log π_t must be −w_t / B.")
    torch.manual_seed(2)
    lp, w = torch.randn(64), torch.randn(64)
    expect_close(call(fn, name, lp, w), -(lp * w).mean(), f"{name}(64 random steps)")
    passed(name, 4)


@references("course_utils.agents.pg.baseline_advantage")
def check_baseline_advantage(fn: Fn) -> None:
    """Check ``fn(returns (B,), values (B,)) -> (B,)`` is ``returns − values`` with no gradient
    flowing into the values."""
    name = "baseline_advantage"
    returns = torch.tensor([3.0, 2.0, 1.0])
    values = torch.tensor([1.0, 1.0, 1.0], requires_grad=True)
    shown = f"{name}(returns={fmt(returns)}, values={fmt(values)})"
    result = call(fn, name, returns, values)
    expect_close(result, torch.tensor([2.0, 1.0, 0.0]), shown, "A_t = G_t − V(s_t).")
    if result.requires_grad:
        raise AssertionError(
            f"{shown} carries a gradient into the value network: detach the values "
            "(values.detach()). The policy loss must not train the baseline; the baseline is "
            "trained by its own regression loss."
        )
    torch.manual_seed(3)
    g, v = torch.randn(50) * 10, torch.randn(50)
    expect_close(call(fn, name, g, v), g - v, f"{name}(50 random returns and values)")
    passed(name, 3)
