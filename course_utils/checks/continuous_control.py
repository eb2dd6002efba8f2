"""Checks of notebook 08's exercises: the DDPG critic target and actor loss, the TD3 target
(target policy smoothing and clipped double Q), and SAC's tanh log-probability correction, soft
critic target and temperature loss.

Batches follow the agents' conventions: ``rewards``, ``terminated`` (1.0 where the next state is
terminal) and Q-values have shape ``(B,)``; actions live in the unit box ``[-1, 1]^d``. Every
known-answer batch puts large next-state values in the rows of terminal transitions, so a missing
terminal mask cannot go unnoticed, and makes the two critics disagree in both directions, so that
a maximum (or one critic alone) shows.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from course_utils.checks.common import (call, expect_close, expect_scalar_loss, expect_tensor,
                                                expect_tensors_unchanged, fmt, Fn, passed, references)

__all__ = [
    "check_ddpg_actor_loss",
    "check_ddpg_critic_target",
    "check_sac_critic_target",
    "check_tanh_log_prob_correction",
    "check_td3_target",
    "check_temperature_loss",
]

TERMINAL_HINT = ("A terminated transition has no future: its target is the reward alone, y = r, "
                 "whatever the critics say about s' (multiply the bootstrap term by "
                 "1 − terminated).")
INVERTED_HINT = "The mask is inverted: bootstrap where terminated = 0, not where it is 1."
REWARD_MASKED_HINT = ("The reward of a terminated transition still counts: y = r there. Mask only "
                      "the bootstrap term, r + γ (1 − terminated) · (value of s').")
NO_GAMMA_HINT = "Discount the next state's value: y = r + γ (1 − terminated) · (value of s')."
MAX_HINT = ("That takes the MAXIMUM of the two critics: clipped double Q uses their minimum, "
            "min(Q1'(s', a'), Q2'(s', a')), which is what counters overestimation.")
MEAN_HINT = "That averages the two critics: clipped double Q uses their minimum."
ONE_CRITIC_HINT = ("That uses one critic only: take the minimum of BOTH target critics, "
                   "min(Q1'(s', a'), Q2'(s', a')).")

# A batch of B = 4 transitions; transition 2 is terminal and its next-state values are large.
_REWARDS = [1.0, 0.0, -1.0, 2.0]
_TERMINATED = [0.0, 0.0, 1.0, 0.0]
_GAMMA = 0.9


def _mask(rewards: torch.Tensor, bootstrap: torch.Tensor, terminated: Any, gamma: float) -> torch.Tensor:
    return rewards + gamma * (1.0 - terminated) * bootstrap


def _diagnose(result: torch.Tensor, expected: torch.Tensor,
              mistakes: Sequence[tuple[torch.Tensor, str]], default: str) -> str:
    """The hint of the first known mistake whose value equals ``result`` (and not the answer)."""
    for wrong, hint in mistakes:
        if wrong.shape != expected.shape or torch.allclose(wrong.double(), expected.double(),
                                                            atol=1e-4):
            continue  # this mistake gives the right answer here: it says nothing
        if result.shape == wrong.shape and torch.allclose(result.detach().double(),
                                                          wrong.double(), atol=1e-4):
            return hint
    return default


def _expect_match(result: Any, expected: torch.Tensor, shown: str,
                  mistakes: Sequence[tuple[torch.Tensor, str]], hint: str) -> None:
    """``result`` equals ``expected``; otherwise an AssertionError with the best hint."""
    result = expect_tensor(result, tuple(expected.shape), shown)
    if not torch.isfinite(result).all():
        raise AssertionError(f"{shown} returned {fmt(result)}, which is not finite; expected "
                             f"{fmt(expected)}. {hint}")
    if torch.allclose(result.detach().double(), expected.double(), rtol=1e-4, atol=1e-4):
        return
    if expected.numel() > 12:
        wrong = int((~torch.isclose(result.detach().double(), expected.double(), rtol=1e-4,
                                    atol=1e-4)).flatten().nonzero()[0])
        raise AssertionError(f"{shown} gave {result.flatten()[wrong].item():.4f} at index {wrong}; "
                             f"expected {expected.flatten()[wrong].item():.4f}. "
                             + _diagnose(result, expected, mistakes, hint))
    raise AssertionError(f"{shown} returned {fmt(result)}; expected {fmt(expected)}. "
                         + _diagnose(result, expected, mistakes, hint))


def _random_batch(seed: int, batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    rewards = torch.randn(batch_size, generator=generator)
    terminated = (torch.rand(batch_size, generator=generator) < 0.3).float()
    return rewards, terminated


# ------------------------------------------------------------------------------ DDPG critic target


def _ddpg_mistakes(rewards, next_q, terminated, gamma):
    return [
        (_mask(rewards, next_q, 0.0, gamma), TERMINAL_HINT),
        (_mask(rewards, next_q, 1.0 - terminated, gamma), INVERTED_HINT),
        ((1.0 - terminated) * _mask(rewards, next_q, 0.0, gamma), REWARD_MASKED_HINT),
        (rewards + (1.0 - terminated) * next_q, NO_GAMMA_HINT),
        (gamma * _mask(rewards, next_q, terminated, 1.0),
         "Only the next state's value is discounted, not the reward: y = r + γ (1 − d) Q'."),
        (_mask(rewards, -next_q, terminated, gamma),
         "The next state's value is ADDED: y = r + γ (1 − terminated) Q'(s', μ'(s'))."),
    ]


@references("course_utils.agents.legacy_ddpg.ddpg_critic_target")
def check_ddpg_critic_target(fn: Fn) -> None:
    """Check ``fn(rewards (B,), next_q_target (B,), terminated (B,), gamma) -> (B,)`` is DDPG's
    critic target ``y = r + γ (1 − terminated) Q'(s', μ'(s'))``."""
    name = "ddpg_critic_target"
    hint = ("y = r + γ (1 − terminated) · next_q_target, where next_q_target = Q'(s', μ'(s')) "
            "comes from the target critic at the target actor's action.")
    next_q = [10.0, -4.0, 50.0, 3.0]
    rewards, next_q_t, terminated = (torch.tensor(_REWARDS), torch.tensor(next_q),
                                     torch.tensor(_TERMINATED))
    copies = {"rewards": rewards.clone(), "next_q_target": next_q_t.clone(),
              "terminated": terminated.clone()}
    shown = (f"{name}(rewards={_REWARDS}, next_q_target={next_q}, terminated={_TERMINATED}, "
             f"gamma={_GAMMA})")
    result = call(fn, name, rewards, next_q_t, terminated, _GAMMA)
    expect_tensors_unchanged(name, {"rewards": rewards, "next_q_target": next_q_t,
                                    "terminated": terminated}, copies)
    _expect_match(result, _mask(rewards, next_q_t, terminated, _GAMMA), shown,
                  _ddpg_mistakes(rewards, next_q_t, terminated, _GAMMA), hint)
    n = 1
    for gamma, why in ((0.0, "With γ = 0 the target is the reward alone."),
                       (1.0, "γ = 1 is allowed (no discount): y = r + (1 − terminated) Q'.")):
        shown = f"{name}(…the same batch…, gamma={gamma})"
        expect_close(call(fn, name, rewards, next_q_t, terminated, gamma),
                     _mask(rewards, next_q_t, terminated, gamma), shown, why)
        n += 1
    shown = f"{name}(…the same batch…, terminated=[1.0, 1.0, 1.0, 1.0], gamma=0.99)"
    expect_close(call(fn, name, rewards, next_q_t, torch.ones(4), 0.99), rewards, shown,
                 TERMINAL_HINT)
    n += 1
    rewards, terminated = _random_batch(10)
    next_q_t = torch.randn(64, generator=torch.Generator().manual_seed(11)) * 10
    shown = f"{name}(a random batch of 64 transitions, gamma=0.99)"
    _expect_match(call(fn, name, rewards, next_q_t, terminated, 0.99),
                  _mask(rewards, next_q_t, terminated, 0.99), shown,
                  _ddpg_mistakes(rewards, next_q_t, terminated, 0.99), hint)
    passed(name, n + 1)


# ------------------------------------------------------------------------------- DDPG actor loss


@references("course_utils.agents.legacy_ddpg.ddpg_actor_loss")
def check_ddpg_actor_loss(fn: Fn) -> None:
    """Check ``fn(q_values (B,)) -> scalar`` is ``−mean(q_values)`` with its gradient intact."""
    name = "ddpg_actor_loss"
    values = [1.0, -2.0, 4.0, 5.0]
    q_values = torch.tensor(values, requires_grad=True)
    shown = f"{name}(q_values={values})"
    loss = expect_scalar_loss(call(fn, name, q_values), shown)
    expected = -2.0
    value = loss.item()
    if abs(value - expected) > 1e-4:
        hint = "The actor loss is −(1/B) Σ Q(s, μ(s)): minimising it maximises the critic's value."
        if abs(value + expected) < 1e-4:
            hint = ("Check the sign: optimisers MINIMISE, and the actor must MAXIMISE Q(s, μ(s)), "
                    "so the loss is −mean Q.")
        elif abs(value - 4 * expected) < 1e-4:
            hint = "Average over the B states of the batch instead of summing."
        raise AssertionError(f"{shown} returned {value:.4f}; expected {expected:.4f}. {hint}")
    if not loss.requires_grad:
        raise AssertionError(f"{shown} has no gradient: do not detach q_values or use .item(); "
                             "the actor learns through ∂Q/∂a.")
    (grad,) = torch.autograd.grad(loss, q_values)
    expect_close(grad, torch.full((4,), -0.25), f"the gradient of {shown} with respect to q_values",
                 "∂L/∂Q_i must be −1/B for every state i.")
    q = torch.randn(256, generator=torch.Generator().manual_seed(12)) * 5
    expect_close(call(fn, name, q), -q.mean(), f"{name}(256 random Q-values)")
    passed(name, 3)


# ------------------------------------------------------------------------------------ TD3 target


class _Actor(nn.Module):
    """A small deterministic 'target actor': μ'(s) = tanh(W s), actions in (−1, 1)."""

    def __init__(self, weight: Sequence[Sequence[float]]) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2, bias=False)
        with torch.no_grad():
            self.linear.weight.copy_(torch.tensor(weight))

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.linear(observations))


class _Critic(nn.Module):
    """A 'target critic' Q(s, a) = s·u + a·v, which records every action batch it is shown."""

    def __init__(self, u: Sequence[float], v: Sequence[float]) -> None:
        super().__init__()
        self.u = nn.Parameter(torch.tensor(u))
        self.v = nn.Parameter(torch.tensor(v))
        self.seen: list[torch.Tensor] = []

    def forward(self, observations: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        self.seen.append(actions.detach().clone())
        return observations @ self.u + actions @ self.v


def _td3_networks() -> tuple[_Actor, _Critic, _Critic]:
    # The critics disagree in sign on the observation term: each is the smaller on some rows.
    return (_Actor([[0.8, -0.5, 0.3], [-0.4, 0.2, 0.9]]), _Critic([2.0, 1.0, -1.0], [3.0, -1.0]),
            _Critic([-1.0, 2.0, 1.5], [-2.0, 2.0]))


def _td3_reference(rewards, next_observations, terminated, gamma, actor, critic1, critic2,
                   actions=None):
    with torch.no_grad():
        actions = actor(next_observations) if actions is None else actions
        q1 = next_observations @ critic1.u + actions @ critic1.v
        q2 = next_observations @ critic2.u + actions @ critic2.v
    return q1, q2, _mask(rewards, torch.minimum(q1, q2), terminated, gamma)


def _td3_mistakes(rewards, q1, q2, terminated, gamma):
    least = torch.minimum(q1, q2)
    return [
        (_mask(rewards, torch.maximum(q1, q2), terminated, gamma), MAX_HINT),
        (_mask(rewards, (q1 + q2) / 2, terminated, gamma), MEAN_HINT),
        (_mask(rewards, q1, terminated, gamma), ONE_CRITIC_HINT),
        (_mask(rewards, q2, terminated, gamma), ONE_CRITIC_HINT),
        (_mask(rewards, least, 0.0, gamma), TERMINAL_HINT),
        (_mask(rewards, least, 1.0 - terminated, gamma), INVERTED_HINT),
        ((1.0 - terminated) * _mask(rewards, least, 0.0, gamma), REWARD_MASKED_HINT),
        (rewards + (1.0 - terminated) * least, NO_GAMMA_HINT),
    ]


def _td3_call(fn: Fn, name: str, rewards, next_observations, terminated, gamma, noise_std,
              noise_clip, networks=None, seed: int = 0):
    actor, critic1, critic2 = networks if networks is not None else _td3_networks()
    generator = torch.Generator().manual_seed(seed)
    result = call(fn, name, rewards, next_observations, terminated, gamma, actor, critic1,
                  critic2, noise_std, noise_clip, generator)
    return result, actor, critic1, critic2


def _smoothed_actions(name: str, shown: str, critic1: _Critic, critic2: _Critic,
                      batch_shape: tuple[int, int]) -> torch.Tensor:
    """The one action batch both critics were shown (or an error saying what went wrong)."""
    for label, critic in (("critic1_target", critic1), ("critic2_target", critic2)):
        if len(critic.seen) != 1:
            raise AssertionError(
                f"{shown} called {label} {len(critic.seen)} times; expected once, on "
                "(next_observations, smoothed next actions).")
        if tuple(critic.seen[0].shape) != batch_shape:
            raise AssertionError(f"{shown} gave {label} actions of shape "
                                 f"{tuple(critic.seen[0].shape)}; expected {batch_shape}.")
    if not torch.equal(critic1.seen[0], critic2.seen[0]):
        raise AssertionError(
            f"{shown} showed the two critics different actions. Smooth once, ã = clip(μ'(s') + "
            "clip(ε, −c, c), −1, 1), and evaluate BOTH target critics at the same ã.")
    return critic1.seen[0]


@references("course_utils.agents.legacy_ddpg.td3_target")
def check_td3_target(fn: Fn) -> None:
    """Check ``fn(rewards, next_observations, terminated, gamma, actor_target, critic1_target,
    critic2_target, noise_std, noise_clip, generator) -> (B,)`` is TD3's target: target policy
    smoothing ``ã = clip(μ'(s') + clip(ε, −c, c), −1, 1)``, ``ε ~ N(0, σ²)``, then clipped double
    Q ``y = r + γ (1 − terminated) min(Q1'(s', ã), Q2'(s', ã))``."""
    name = "td3_target"
    hint = ("y = r + γ (1 − terminated) min(Q1'(s', ã), Q2'(s', ã)) with ã the target actor's "
            "smoothed action at the NEXT observations.")
    n = 0
    # 1. No noise (σ = 0): the clipped double-Q part alone, on a known batch.
    rewards, terminated = torch.tensor(_REWARDS), torch.tensor(_TERMINATED)
    next_observations = torch.tensor([[1.0, 2.0, 0.5], [-1.0, 0.5, 2.0], [3.0, 3.0, 3.0],
                                      [0.5, -2.0, -1.0]])
    copies = {"rewards": rewards.clone(), "next_observations": next_observations.clone(),
              "terminated": terminated.clone()}
    shown = (f"{name}(rewards={_REWARDS}, next_observations=<4 × 3>, terminated={_TERMINATED}, "
             f"gamma={_GAMMA}, <target actor>, <critic 1>, <critic 2>, noise_std=0.0, "
             "noise_clip=0.5)")
    result, actor, critic1, critic2 = _td3_call(fn, name, rewards, next_observations, terminated,
                                                _GAMMA, 0.0, 0.5)
    expect_tensors_unchanged(name, {"rewards": rewards, "next_observations": next_observations,
                                    "terminated": terminated}, copies)
    result = expect_tensor(result, (4,), shown)
    q1, q2, expected = _td3_reference(rewards, next_observations, terminated, _GAMMA, actor,
                                      critic1, critic2)
    if critic1.seen and critic1.seen[0].shape == (4, 2):
        mu = actor(next_observations).detach()
        if not torch.allclose(critic1.seen[0], mu, atol=1e-5):
            raise AssertionError(
                f"{shown}: with noise_std = 0 the critics must see the target actor's action "
                f"μ'(s') = {fmt(mu)}, but critic1_target saw {fmt(critic1.seen[0])}. Call "
                "actor_target(next_observations), add the clipped noise, then clip to [−1, 1].")
    _expect_match(result, expected, shown, _td3_mistakes(rewards, q1, q2, terminated, _GAMMA), hint)
    n += 1
    shown = f"{name}(…the same batch…, terminated=[1.0, 1.0, 1.0, 1.0], gamma=0.99, noise_std=0.2)"
    result, *_ = _td3_call(fn, name, rewards, next_observations, torch.ones(4), 0.99, 0.2, 0.5)
    expect_close(result, rewards, shown, TERMINAL_HINT)
    n += 1

    # 2. Huge noise: every noise entry is clipped to ±c, and actions near the bounds to [−1, 1].
    B = 200
    generator = torch.Generator().manual_seed(13)
    next_observations = torch.randn(B, 3, generator=generator) * 2  # μ' from −1 to 1
    rewards, terminated = _random_batch(14, B)
    noise_clip = 0.3
    shown = (f"{name}(a batch of {B}, gamma=0.99, noise_std=100.0, noise_clip={noise_clip}) "
             "(with σ ≫ c nearly every noise entry is clipped to ±c)")
    result, actor, critic1, critic2 = _td3_call(fn, name, rewards, next_observations, terminated,
                                                0.99, 100.0, noise_clip, seed=1)
    result = expect_tensor(result, (B,), shown)
    smoothed = _smoothed_actions(name, shown, critic1, critic2, (B, 2))
    mu = actor(next_observations).detach()
    if smoothed.abs().max() > 1.0 + 1e-6:
        raise AssertionError(
            f"{shown}: the critics saw actions up to {smoothed.abs().max().item():.3f} in absolute "
            "value. Clip the smoothed action to the action box: ã = clip(μ'(s') + noise, −1, 1) "
            "(torch.clamp(…, -1.0, 1.0)).")
    shift = smoothed - mu
    inside = (mu.abs() < 1.0 - noise_clip - 0.05)  # entries whose ã is not cut by the box
    if (shift[inside].abs() > noise_clip + 1e-5).any():
        worst = shift[inside].abs().max().item()
        raise AssertionError(
            f"{shown}: the noise added to μ'(s') reached {worst:.3f} in absolute value; expected "
            f"at most noise_clip = {noise_clip}. Clip the NOISE before adding it: "
            "clip(ε, −c, c) with ε ~ N(0, σ²), e.g. (noise_std * torch.randn(…))"
            ".clamp(-noise_clip, noise_clip).")
    if (shift[inside].abs() < 1e-6).float().mean() > 0.5:
        raise AssertionError(
            f"{shown}: the critics saw μ'(s') itself, without noise. Target policy smoothing adds "
            "clip(ε, −c, c) with ε ~ N(0, noise_std²) to the target action.")
    if (shift[inside].abs() < noise_clip - 1e-4).float().mean() > 0.1:
        raise AssertionError(
            f"{shown}: most noise entries should be ±{noise_clip} (σ = 100 is clipped to ±c), but "
            f"many are smaller. The noise is ε ~ N(0, σ²) with σ = noise_std (torch.randn times "
            "noise_std), clipped to [−c, c].")
    q1, q2, expected = _td3_reference(rewards, next_observations, terminated, 0.99, actor,
                                      critic1, critic2, actions=smoothed)
    _expect_match(result, expected, shown + ", evaluated at the actions your critics saw",
                  _td3_mistakes(rewards, q1, q2, terminated, 0.99), hint)
    n += 1

    # 3. The noise's distribution: N(0, σ²) per entry, independent, clipped at c = 2.5σ.
    B = 20_000
    next_observations = torch.randn(B, 3, generator=generator) * 0.2  # μ' near 0: no box clipping
    rewards, terminated = _random_batch(15, B)
    shown = f"{name}(a batch of {B:,}, gamma=0.99, noise_std=0.2, noise_clip=0.5)"
    result, actor, critic1, critic2 = _td3_call(fn, name, rewards, next_observations, terminated,
                                                0.99, 0.2, 0.5, seed=2)
    expect_tensor(result, (B,), shown)
    smoothed = _smoothed_actions(name, shown, critic1, critic2, (B, 2))
    noise = smoothed - actor(next_observations).detach()
    spread = noise.std(dim=0)
    if (noise.std(dim=0) < 1e-6).any() or (noise[:, 0] - noise[:, 1]).abs().max() < 1e-6:
        raise AssertionError(
            f"{shown}: the noise is the same for every transition or for every action dimension. "
            "Draw one independent ε per entry of the (B, d) action batch, e.g. "
            "torch.randn(next_actions.shape, generator=generator).")
    expected_std = 0.2 * 0.989  # N(0, 1) clipped at ±2.5 has standard deviation 0.989
    if not ((spread - expected_std).abs() < 0.015).all() or noise.mean().abs() > 0.01:
        raise AssertionError(
            f"{shown}: the noise has mean {noise.mean().item():.3f} and standard deviations "
            f"{fmt(spread)} per dimension; expected mean 0 and about {expected_std:.3f} "
            "(σ = noise_std = 0.2, clipped at ±0.5). ε ~ N(0, σ²) is noise_std * torch.randn(…), "
            "not torch.rand (uniform) and not σ² times it.")
    correlation = torch.corrcoef(noise.T)[0, 1].abs().item()
    if correlation > 0.05:
        raise AssertionError(f"{shown}: the noise of the two action dimensions is correlated "
                             f"({correlation:.2f}); draw an independent ε for every entry.")
    n += 1
    passed(name, n)


# ------------------------------------------------------------------ SAC: tanh log-prob correction


def _exact_correction(pre_tanh: torch.Tensor) -> torch.Tensor:
    """Σ_i log(1 − tanh(u_i)²) in float64, exact also for large |u|."""
    u = pre_tanh.double().abs()
    return (2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))).sum(dim=-1)


def _correction_mistakes(pre_tanh: torch.Tensor) -> list[tuple[torch.Tensor, str]]:
    u = pre_tanh.double()
    per_entry = 2.0 * (math.log(2.0) - u.abs() - F.softplus(-2.0 * u.abs()))
    with_epsilon = torch.log(1.0 - torch.tanh(pre_tanh).double() ** 2 + 1e-6)
    with_epsilon32 = torch.log(1.0 - torch.tanh(pre_tanh) ** 2 + 1e-6).double()
    clamped32 = torch.log((1.0 - torch.tanh(pre_tanh) ** 2).clamp(min=1e-6)).double()
    epsilon_hint = ("Adding a small ε inside the log (log(1 − tanh(u)² + ε)) or clamping keeps it "
                    "finite but wrong: for large |u| the term is stuck near log ε instead of "
                    "2(log 2 − |u|), and its gradient vanishes. Use the exact stable form "
                    "log(1 − tanh(u)²) = 2 (log 2 − u − softplus(−2u)).")
    return [
        (-per_entry.sum(dim=-1), "Check the sign: log(1 − tanh(u)²) ≤ 0, so the correction is "
                                 "≤ 0 (log π(a|s) = log N(u) − Σ log(1 − tanh(u_i)²))."),
        (per_entry.mean(dim=-1), "Sum over the action dimensions, do not average: the Jacobian of "
                                 "the elementwise tanh is diagonal, so its log-determinant is a SUM."),
        ((math.log(2.0) - u.abs() - F.softplus(-2.0 * u.abs())).sum(dim=-1),
         "A factor 2 is missing: 1 − tanh(u)² = 4 / (e^u + e^(−u))², so its log is "
         "2 (log 2 − u − softplus(−2u))."),
        (with_epsilon.sum(dim=-1), epsilon_hint),
        (with_epsilon32.sum(dim=-1), epsilon_hint),
        (clamped32.sum(dim=-1), epsilon_hint),
    ]


@references("course_utils.agents.legacy_sac.tanh_log_prob_correction")
def check_tanh_log_prob_correction(fn: Fn) -> None:
    """Check ``fn(pre_tanh (B, d)) -> (B,)`` is ``Σ_i log(1 − tanh(u_i)²)``, exact and finite
    also for large ``|u|``, with the right gradient."""
    name = "tanh_log_prob_correction"
    hint = "The correction is Σ_i log(1 − tanh(u_i)²), summed over the last (action) dimension."
    n = 0
    for rows, why in (([[0.0, 0.0, 0.0], [1.0, -1.0, 0.5], [0.5, 2.0, -3.0], [0.2, -0.7, 1.2]],
                       "small |u|"),
                      ([[10.0, -10.0, 0.0], [20.0, 0.0, 1.0], [-50.0, 50.0, 9.0],
                        [0.5, -12.0, 30.0]], "large |u|: float32 rounds tanh(u)² to 1 there")):
        pre_tanh = torch.tensor(rows)
        copy = pre_tanh.clone()
        shown = f"{name}(pre_tanh={rows})"
        result = call(fn, name, pre_tanh)
        if not torch.equal(pre_tanh, copy):
            raise AssertionError(f"{name} modified its input pre_tanh in place; compute a new "
                                 "tensor (the actor still needs u for log N(u)).")
        expected = _exact_correction(pre_tanh).float()
        if isinstance(result, torch.Tensor) and tuple(result.shape) == (4, 3):
            raise AssertionError(
                f"{shown} returned shape (4, 3); expected (4,). Sum over the action dimensions "
                "(dim=-1): log π of a d-dimensional action has one correction term per dimension.")
        if isinstance(result, torch.Tensor) and tuple(result.shape) == (3,):
            raise AssertionError(f"{shown} returned shape (3,); expected (4,). Sum over the LAST "
                                 "dimension (the action's), not over the batch.")
        result = expect_tensor(result, (4,), shown)
        if not torch.isfinite(result).all():
            raise AssertionError(
                f"{shown} returned {fmt(result)}; expected {fmt(expected)} ({why}). The naive "
                "log(1 − torch.tanh(u)**2) takes the log of a number that rounds to 0 (−inf), "
                "and log(1 − u²) the log of a negative number (NaN). Use the identity "
                "log(1 − tanh(u)²) = 2 (log 2 − u − softplus(−2u)), which is exact and finite "
                "for every u (torch.nn.functional.softplus).")
        _expect_match(result, expected, f"{shown} ({why})", _correction_mistakes(pre_tanh), hint)
        n += 1

    pre_tanh = torch.tensor([[0.3, -2.0, 12.0], [-15.0, 0.0, 1.5]], requires_grad=True)
    shown = f"the gradient of {name}(pre_tanh={fmt(pre_tanh)}).sum()"
    result = expect_tensor(call(fn, name, pre_tanh), (2,), f"{name}(pre_tanh={fmt(pre_tanh)})")
    if not result.requires_grad:
        raise AssertionError(f"{name}(pre_tanh={fmt(pre_tanh)}) carries no gradient: the actor "
                             "learns through the correction, so do not detach u or use NumPy.")
    (grad,) = torch.autograd.grad(result.sum(), pre_tanh)
    expect_close(grad, -2.0 * torch.tanh(pre_tanh.detach()), shown,
                 "d/du log(1 − tanh(u)²) = −2 tanh(u): finite, and ±2 for large |u|.")
    n += 1

    generator = torch.Generator().manual_seed(16)
    pre_tanh = torch.randn(500, 4, generator=generator) * 6
    shown = f"{name}(500 × 4 random pre-tanh values, |u| up to {pre_tanh.abs().max().item():.0f})"
    _expect_match(call(fn, name, pre_tanh), _exact_correction(pre_tanh).float(), shown,
                  _correction_mistakes(pre_tanh), hint)
    n += 1
    passed(name, n)


# ----------------------------------------------------------------------------- SAC critic target


def _sac_reference(rewards, q1, q2, log_probs, terminated, alpha, gamma):
    return _mask(rewards, torch.minimum(q1, q2) - alpha * log_probs, terminated, gamma)


def _sac_mistakes(rewards, q1, q2, log_probs, terminated, alpha, gamma):
    least = torch.minimum(q1, q2)
    soft = least - alpha * log_probs
    return [
        (_sac_reference(rewards, q1, q2, -log_probs, terminated, alpha, gamma),
         "The entropy bonus has the wrong sign: the soft value is min Q − α log π(a'|s') "
         "(−log π is the entropy, and it is rewarded)."),
        (_mask(rewards, least, terminated, gamma),
         "The entropy term −α log π(a'|s') is missing from the soft value of s'."),
        (_mask(rewards, least - log_probs, terminated, gamma),
         "Weigh the log-probability by the temperature: −α log π(a'|s')."),
        (_mask(rewards, least, terminated, gamma) - alpha * log_probs,
         "The entropy term belongs to the NEXT state's soft value, inside the discount and the "
         "mask: y = r + γ (1 − d)(min Q' − α log π(a'|s'))."),
        (_mask(rewards, least, terminated, gamma) - gamma * alpha * log_probs,
         "The entropy term belongs inside the terminal mask as well: a terminated transition's "
         "target is r alone."),
        (_mask(rewards, torch.maximum(q1, q2) - alpha * log_probs, terminated, gamma), MAX_HINT),
        (_mask(rewards, (q1 + q2) / 2 - alpha * log_probs, terminated, gamma), MEAN_HINT),
        (_mask(rewards, q1 - alpha * log_probs, terminated, gamma), ONE_CRITIC_HINT),
        (_mask(rewards, soft, 0.0, gamma), TERMINAL_HINT),
        (_mask(rewards, soft, 1.0 - terminated, gamma), INVERTED_HINT),
        ((1.0 - terminated) * _mask(rewards, soft, 0.0, gamma), REWARD_MASKED_HINT),
        (rewards + (1.0 - terminated) * soft, NO_GAMMA_HINT),
    ]


@references("course_utils.agents.legacy_sac.sac_critic_target")
def check_sac_critic_target(fn: Fn) -> None:
    """Check ``fn(rewards, next_q1_target, next_q2_target, next_log_probs, terminated, alpha,
    gamma) -> (B,)`` is the soft Bellman target
    ``y = r + γ (1 − terminated)(min(Q1', Q2') − α log π(a'|s'))``."""
    name = "sac_critic_target"
    hint = ("y = r + γ (1 − terminated)(min(Q1'(s', a'), Q2'(s', a')) − α log π(a'|s')), with "
            "a' ~ π(·|s') sampled fresh.")
    q1_list, q2_list, lp_list = [5.0, -2.0, 40.0, 3.0], [4.0, -1.0, 30.0, 6.0], [-1.0, 0.5, -2.0, 2.0]
    alpha = 0.2
    rewards, q1, q2 = torch.tensor(_REWARDS), torch.tensor(q1_list), torch.tensor(q2_list)
    log_probs, terminated = torch.tensor(lp_list), torch.tensor(_TERMINATED)
    names = ("rewards", "next_q1_target", "next_q2_target", "next_log_probs", "terminated")
    inputs = dict(zip(names, (rewards, q1, q2, log_probs, terminated)))
    copies = {k: v.clone() for k, v in inputs.items()}
    n = 0
    for alpha_value, alpha_shown in ((alpha, f"{alpha}"),
                                     (torch.tensor(alpha), f"torch.tensor({alpha})")):
        shown = (f"{name}(rewards={_REWARDS}, next_q1_target={q1_list}, next_q2_target={q2_list}, "
                 f"next_log_probs={lp_list}, terminated={_TERMINATED}, alpha={alpha_shown}, "
                 f"gamma={_GAMMA})")
        result = call(fn, name, rewards, q1, q2, log_probs, terminated, alpha_value, _GAMMA)
        expect_tensors_unchanged(name, inputs, copies)
        _expect_match(result, _sac_reference(rewards, q1, q2, log_probs, terminated, alpha, _GAMMA),
                      shown, _sac_mistakes(rewards, q1, q2, log_probs, terminated, alpha, _GAMMA),
                      hint)
        n += 1
    shown = f"{name}(…the same batch…, alpha=0.0, gamma={_GAMMA})"
    expect_close(call(fn, name, rewards, q1, q2, log_probs, terminated, 0.0, _GAMMA),
                 _mask(rewards, torch.minimum(q1, q2), terminated, _GAMMA), shown,
                 "With α = 0 the soft target is TD3's clipped double-Q target.")
    n += 1
    shown = f"{name}(…the same batch…, terminated=[1.0, 1.0, 1.0, 1.0], alpha=0.2, gamma=0.99)"
    expect_close(call(fn, name, rewards, q1, q2, log_probs, torch.ones(4), alpha, 0.99), rewards,
                 shown, TERMINAL_HINT)
    n += 1
    rewards, terminated = _random_batch(17)
    generator = torch.Generator().manual_seed(18)
    q1, q2 = torch.randn(64, generator=generator) * 10, torch.randn(64, generator=generator) * 10
    log_probs = torch.randn(64, generator=generator) * 2
    shown = f"{name}(a random batch of 64 transitions, alpha=torch.tensor(0.05), gamma=0.99)"
    _expect_match(call(fn, name, rewards, q1, q2, log_probs, terminated, torch.tensor(0.05), 0.99),
                  _sac_reference(rewards, q1, q2, log_probs, terminated, 0.05, 0.99), shown,
                  _sac_mistakes(rewards, q1, q2, log_probs, terminated, 0.05, 0.99), hint)
    passed(name, n + 1)


# ------------------------------------------------------------------------------ temperature loss


@references("course_utils.agents.legacy_sac.temperature_loss")
def check_temperature_loss(fn: Fn) -> None:
    """Check ``fn(log_alpha (), log_probs (B,), target_entropy) -> scalar`` is
    ``−log α · mean(log π(a|s) + H_target)``, with no gradient into the log-probabilities."""
    name = "temperature_loss"
    n = 0
    for alpha, lp_list, target_entropy in ((0.5, [-1.0, 0.5, -2.0, 1.5], -2.0),
                                           (1.5, [0.2, 0.4, -0.3, 0.9], -1.0)):
        log_alpha = torch.tensor(math.log(alpha), requires_grad=True)
        log_probs = torch.tensor(lp_list, requires_grad=True)
        shown = (f"{name}(log_alpha=log({alpha}), log_probs={lp_list}, "
                 f"target_entropy={target_entropy})")
        loss = expect_scalar_loss(call(fn, name, log_alpha, log_probs, target_entropy), shown)
        gap = sum(lp_list) / len(lp_list) + target_entropy  # mean(log π + H_target)
        expected = -math.log(alpha) * gap
        value = loss.item()
        if abs(value - expected) > 1e-4:
            hint = ("L(log α) = −log α · mean(log π(a|s) + H_target): it raises α when the entropy "
                    "−mean log π is below the target and lowers it when above.")
            if abs(value + expected) < 1e-4:
                hint = ("Check the sign: L = −log α · mean(log π + H_target). With the opposite "
                        "sign α would fall when the policy's entropy is too low.")
            elif abs(value + alpha * gap) < 1e-4:
                hint = ("That is the loss in terms of α itself, −α · mean(log π + H_target); this "
                        "exercise uses the parameter we optimise, log α: −log α · mean(…).")
            elif abs(value - len(lp_list) * expected) < 1e-4:
                hint = "Average over the batch instead of summing."
            elif abs(value + math.log(alpha) * (gap - 2 * target_entropy)) < 1e-4:
                hint = ("The target entropy enters as log π + H_target (H_target = −|A| is "
                        "ADDED): the entropy −log π is compared with H_target.")
            raise AssertionError(f"{shown} returned {value:.4f}; expected {expected:.4f}. {hint}")
        if not loss.requires_grad:
            raise AssertionError(f"{shown} has no gradient with respect to log_alpha: do not "
                                 "detach log_alpha or use .item(); it is the parameter learned here.")
        grad_alpha, grad_log_probs = torch.autograd.grad(loss, [log_alpha, log_probs],
                                                         allow_unused=True)
        if grad_log_probs is not None and grad_log_probs.abs().max() > 0:
            raise AssertionError(
                f"{shown} sends a gradient into log_probs, i.e. into the actor. Detach them "
                "(log_probs.detach()): this loss trains the temperature only; the actor has its "
                "own loss.")
        if grad_alpha is None:
            raise AssertionError(f"{shown} has no gradient with respect to log_alpha.")
        expect_close(grad_alpha, torch.tensor(-gap),
                     f"the gradient of {shown} with respect to log_alpha",
                     "∂L/∂log α = −mean(log π + H_target).")
        n += 1
    passed(name, n)
