"""Exercise checks: each tests a student's function on cases with known answers and properties.

A check prints one line starting with ✓ when every case passes, and otherwise raises an
``AssertionError`` whose message says which case failed, what was expected and what came back.
An exercise not attempted yet (``raise NotImplementedError()``) fails with a message saying so.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

Fn = Callable[..., Any]


def _call(fn: Fn, name: str, *args: Any, **kwargs: Any) -> Any:
    """Call the student's function, turning 'not implemented yet' into a clear failure."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise AssertionError(
            f"{name} is not implemented yet: replace `raise NotImplementedError()` with your code."
        ) from None


def _fmt(x: Any) -> str:
    if isinstance(x, torch.Tensor):
        return str([round(v, 4) for v in x.detach().flatten().tolist()]) if x.numel() <= 12 \
            else f"a tensor of shape {tuple(x.shape)}"
    return repr(x)


def _expect_tensor(result: Any, shape: tuple[int, ...], call: str) -> torch.Tensor:
    if not isinstance(result, torch.Tensor):
        raise AssertionError(f"{call} returned {type(result).__name__}; expected a torch.Tensor.")
    if tuple(result.shape) != shape:
        raise AssertionError(f"{call} returned shape {tuple(result.shape)}; expected {shape}.")
    return result


def _expect_close(result: Any, expected: torch.Tensor, call: str, hint: str = "") -> None:
    result = _expect_tensor(result, tuple(expected.shape), call)
    if not torch.allclose(result.detach().double(), expected.double(), rtol=1e-4, atol=1e-4):
        raise AssertionError(
            f"{call} returned {_fmt(result)}; expected {_fmt(expected)}." + (f" {hint}" if hint else "")
        )


def _passed(name: str, n_cases: int) -> None:
    print(f"✓ {name}: all {n_cases} tests passed.")


def _reward_to_go_cases(fn: Fn, name: str, call: Callable[[torch.Tensor], Any]) -> int:
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
        result = call(r)
        _expect_close(result, torch.tensor(expected), f"{name}({rewards})", hint)
        if not torch.equal(r, torch.tensor(rewards)):
            raise AssertionError(f"{name} modified its input rewards in place; compute a new tensor.")
    return len(examples)


def check_reward_to_go(fn: Fn) -> None:
    """Check ``fn(rewards (T,)) -> (T,)`` computes ``G_t = Σ_{k≥t} r_k``."""
    name = "reward_to_go"
    n = _reward_to_go_cases(fn, name, lambda r: _call(fn, name, r))
    torch.manual_seed(0)
    rewards = torch.randn(200)
    result = _expect_tensor(_call(fn, name, rewards.clone()), (200,), f"{name}(200 random rewards)")
    expected = torch.tensor([rewards[t:].sum().item() for t in range(200)])
    _expect_close(result, expected, f"{name}(200 random rewards)",
                  "Each G_t must equal rewards[t:].sum().")
    _passed(name, n + 1)


def check_discounted_reward_to_go(fn: Fn) -> None:
    """Check ``fn(rewards (T,), gamma) -> (T,)`` computes ``G_t = Σ_{k≥t} γ^{k−t} r_k``."""
    name = "discounted_reward_to_go"
    n = _reward_to_go_cases(fn, name, lambda r: _call(fn, name, r, gamma=1.0))
    examples = [
        ([1.0, 1.0, 1.0], 0.5, [1.75, 1.5, 1.0],
         "Discount relative to the CURRENT step: γ^(k−t), not γ^k."),
        ([0.0, 0.0, 10.0], 0.9, [8.1, 9.0, 10.0], "A reward k steps ahead is worth γ^k of it now."),
        ([1.0, 2.0, 3.0], 0.0, [1.0, 2.0, 3.0], "With γ = 0 only the immediate reward counts."),
    ]
    for rewards, gamma, expected, hint in examples:
        result = _call(fn, name, torch.tensor(rewards), gamma=gamma)
        _expect_close(result, torch.tensor(expected), f"{name}({rewards}, gamma={gamma})", hint)
    torch.manual_seed(1)
    rewards = torch.randn(300)
    result = _expect_tensor(_call(fn, name, rewards.clone(), gamma=0.99), (300,),
                            f"{name}(300 random rewards, gamma=0.99)")
    _expect_close(result[:-1], rewards[:-1] + 0.99 * result[1:].detach(),
                  f"{name}(300 random rewards, gamma=0.99)[:-1]",
                  "It must satisfy G_t = r_t + γ G_{t+1}.")
    long_call = f"{name}(torch.ones(5000), gamma=0.9)"
    long = _expect_tensor(_call(fn, name, torch.ones(5000), gamma=0.9), (5000,), long_call)
    if not torch.isfinite(long).all():
        first = int((~torch.isfinite(long)).nonzero()[0])
        raise AssertionError(
            f"{long_call} gave {long[first].item()} at step {first}. Powers like γ^(−t) overflow "
            "on long episodes: use the recursion G_t = r_t + γ G_{t+1}."
        )
    _expect_close(long[:1], torch.tensor([10.0]), f"{long_call}[:1]", "G_0 = 1/(1−γ) = 10.")
    _passed(name, n + len(examples) + 2)


def check_surrogate_loss(fn: Fn) -> None:
    """Check ``fn(log_probs (B,), weights (B,)) -> scalar`` is ``−mean(log_probs · weights)``."""
    name = "surrogate_loss"
    log_probs = torch.tensor([-0.5, -1.0, -2.0], requires_grad=True)
    weights = torch.tensor([1.0, 2.0, 3.0])
    call = f"{name}(log_probs={_fmt(log_probs)}, weights={_fmt(weights)})"
    loss = _call(fn, name, log_probs, weights)
    if isinstance(loss, float):
        raise AssertionError(f"{call} returned a float; return the tensor itself (no .item()), "
                             "so that PyTorch can differentiate it.")
    loss = _expect_tensor(loss, (), call)
    expected = 8.5 / 3
    value = loss.item()
    if abs(value - expected) > 1e-4:
        hint = ""
        if abs(value + expected) < 1e-4:
            hint = " Check the sign: optimisers MINIMISE, and we want to MAXIMISE J(θ)."
        elif abs(value - 3 * expected) < 1e-4:
            hint = " Average over the B timesteps of the batch instead of summing."
        raise AssertionError(f"{call} returned {value:.4f}; expected {expected:.4f}.{hint}")
    if not loss.requires_grad:
        raise AssertionError(f"{call} has no gradient: do not detach log_probs or use .item().")
    (grad,) = torch.autograd.grad(loss, log_probs)
    _expect_close(grad, -weights / 3, f"the gradient of {call} with respect to log_probs",
                  "∂L/∂log π_t must be −w_t / B.")
    torch.manual_seed(2)
    lp, w = torch.randn(64), torch.randn(64)
    _expect_close(_call(fn, name, lp, w), -(lp * w).mean(), f"{name}(64 random steps)")
    _passed(name, 4)


def check_baseline_advantage(fn: Fn) -> None:
    """Check ``fn(returns (B,), values (B,)) -> (B,)`` is ``returns − values`` with no gradient
    flowing into the values."""
    name = "baseline_advantage"
    returns = torch.tensor([3.0, 2.0, 1.0])
    values = torch.tensor([1.0, 1.0, 1.0], requires_grad=True)
    call = f"{name}(returns={_fmt(returns)}, values={_fmt(values)})"
    result = _call(fn, name, returns, values)
    _expect_close(result, torch.tensor([2.0, 1.0, 0.0]), call, "A_t = G_t − V(s_t).")
    if result.requires_grad:
        raise AssertionError(
            f"{call} carries a gradient into the value network: detach the values "
            "(values.detach()). The policy loss must not train the baseline; the baseline is "
            "trained by its own regression loss."
        )
    torch.manual_seed(3)
    g, v = torch.randn(50) * 10, torch.randn(50)
    _expect_close(_call(fn, name, g, v), g - v, f"{name}(50 random returns and values)")
    _passed(name, 3)
