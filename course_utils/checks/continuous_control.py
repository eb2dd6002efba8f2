"""Checks of notebook 08's exercises: the DDPG update, the TD3 target (target policy smoothing
and clipped double Q), the TD3 update, SAC's tanh log-probability correction and the SAC update.

Batches follow the agents' conventions: ``rewards``, ``terminated`` (1.0 where the next state is
terminal) and Q-values have shape ``(B,)``; actions live in the unit box ``[-1, 1]^d``. Every
known-answer batch puts large next-state values in the rows of terminal transitions, so a missing
terminal mask cannot go unnoticed, and makes the two critics disagree in both directions, so that
a maximum (or one critic alone) shows.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.buffers import ReplayBatch
from course_utils.checks.common import (call, expect_close, expect_tensor,
                                        expect_tensors_unchanged, expect_update_metrics,
                                        first_difference, fmt, Fn, passed, references, snapshot)
from course_utils.device import get_device
from course_utils.nn import polyak_update

__all__ = [
    "check_ddpg_update",
    "check_sac_update",
    "check_tanh_log_prob_correction",
    "check_td3_target",
    "check_td3_update",
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
    result = call(fn, name, rewards, next_observations, terminated, gamma, actor,
                  [critic1, critic2], noise_std, noise_clip, generator)
    return result, actor, critic1, critic2


def _smoothed_actions(name: str, shown: str, critic1: _Critic, critic2: _Critic,
                      batch_shape: tuple[int, int]) -> torch.Tensor:
    """The one action batch both critics were shown (or an error saying what went wrong)."""
    for label, critic in (("critics_target[0]", critic1), ("critics_target[1]", critic2)):
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


@references("course_utils.agents.ddpg.td3_target")
def check_td3_target(fn: Fn) -> None:
    """Check ``fn(rewards, next_observations, terminated, gamma, actor_target, critics_target,
    noise_std, noise_clip, generator) -> (B,)`` is TD3's target: target policy smoothing
    ``ã = clip(μ'(s') + clip(ε, −c, c), −1, 1)``, ``ε ~ N(0, σ²)``, then clipped double Q
    ``y = r + γ (1 − terminated) min_j Q'_j(s', ã)`` over the list ``critics_target``; with one
    critic and σ = 0, DDPG's target."""
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
             f"gamma={_GAMMA}, <target actor>, [<critic 1>, <critic 2>], noise_std=0.0, "
             "noise_clip=0.5)")
    first_observations = next_observations
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
                f"μ'(s') = {fmt(mu)}, but critics_target[0] saw {fmt(critic1.seen[0])}. Call "
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
    # 4. DDPG is the special case: one target critic, no smoothing.
    shown = (f"{name}(…the first batch…, gamma={_GAMMA}, <target actor>, [<critic 1>], "
             "noise_std=0.0, noise_clip=0.5) (DDPG's target: one critic, no noise)")
    rewards, terminated = torch.tensor(_REWARDS), torch.tensor(_TERMINATED)
    next_observations = first_observations
    actor, critic1, _ = _td3_networks()
    result = call(fn, name, rewards, next_observations, terminated, _GAMMA, actor, [critic1], 0.0,
                  0.5, torch.Generator().manual_seed(0))
    q1, _, _ = _td3_reference(rewards, next_observations, terminated, _GAMMA, actor, critic1,
                              critic1)
    expect_close(result, _mask(rewards, q1, terminated, _GAMMA), shown,
                 "Take the minimum over however many critics the list holds (torch.stack(…)"
                 ".min(dim=0) works for one or two); with one critic it is that critic's value.")
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


@references("course_utils.agents.sac.tanh_log_prob_correction")
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




# ------------------------------------------------------------------------- the update steps
#
# An update check builds a small agent twice from one seed, runs the student's update and the
# reference on the same batch with the same random numbers (three calls: TD3's actor moves on the
# second only), and compares the losses and every parameter after each call. The agents' Adam
# optimisers are replaced by plain SGD, whose step is proportional to the gradient (Adam's first
# step is ±lr whatever the gradient's size, which would hide most mistakes). Where the results
# differ, the check runs the usual mistakes (the reference with one thing changed) and names
# the one whose parameters match the student's.

# Three calls on one batch: TD3's actor moves at the second only, and the third target shows
# whether it came from the online actor (which has moved) or the target actor.
_CALLS = 3

_OBSERVATION_SPACE = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
_ACTION_SPACE = gym.spaces.Box(-2.0, 2.0, (2,), np.float32)
_NETWORKS = {"actor": "the actor", "critics": "the critics", "actor_target": "the target actor",
             "critics_target": "the target critics", "log_alpha": "log α"}


def _update_batch() -> ReplayBatch:
    """16 transitions: rows 0-3 terminated, rows 4-7 truncated (not terminated), large rewards."""
    generator = torch.Generator().manual_seed(21)
    device = get_device()
    batch_size = 16
    terminated = torch.zeros(batch_size, dtype=torch.bool)
    truncated = torch.zeros(batch_size, dtype=torch.bool)
    terminated[:4], truncated[4:8] = True, True
    fields = (torch.randn(batch_size, 3, generator=generator),
              torch.rand(batch_size, 2, generator=generator) * 2 - 1,
              torch.randn(batch_size, generator=generator) * 3,
              torch.randn(batch_size, 3, generator=generator), terminated, truncated)
    return ReplayBatch(*(field.to(device) for field in fields))


def _sgd_agent(make_agent: Callable[[], nn.Module]) -> nn.Module:
    agent = make_agent()
    agent.actor_optimizer = torch.optim.SGD(agent.actor.parameters(), lr=0.05)
    agent.critic_optimizer = torch.optim.SGD(agent.critics.parameters(), lr=0.05)
    if hasattr(agent, "log_alpha"):
        agent.alpha_optimizer = torch.optim.SGD([agent.log_alpha], lr=0.05)
    # The targets take gradients in the check only, so that a target computed outside
    # torch.no_grad() shows: its gradient reaches them (in training they are frozen).
    agent.critics_target.requires_grad_(True)
    if hasattr(agent, "actor_target"):
        agent.actor_target.requires_grad_(True)
    return agent


def _run(update: Fn, make_agent: Callable[[], nn.Module], config: Any, n_calls: int,
         name: Optional[str] = None) -> tuple[list[dict[str, torch.Tensor]], list[Any], nn.Module]:
    """The agent's state and the returned metrics after each of ``n_calls`` updates; the
    student's function (``name`` given) through ``call``. Seeds the global generator for SAC."""
    agent, batch = _sgd_agent(make_agent), _update_batch()
    states, metrics = [], []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(22)
        for _ in range(n_calls):
            result = call(update, name, agent, batch, config) if name else update(agent, batch,
                                                                                   config)
            states.append(snapshot(agent))
            metrics.append(result)
    return states, metrics, agent


def _check_update(fn: Fn, name: str, reference: Fn, make_agent: Callable[[], nn.Module],
                  config: Any, mistakes: Sequence[tuple[Fn, str]], losses: Sequence[str]) -> int:
    """Run ``fn`` and ``reference`` as described above; the number of cases passed."""
    try:
        states, metrics, agent = _run(fn, make_agent, config, _CALLS, name)
    except RuntimeError as error:
        if "backward through the graph a second time" in str(error):
            raise AssertionError(
                f"{name} failed with PyTorch's 'Trying to backward through the graph a second "
                "time': a second loss reuses part of a graph that an earlier backward() freed. "
                "The temperature's loss must treat log π as a constant (log_probs.detach()), and "
                "each loss gets its own forward pass.") from None
        raise
    for label, network in (("the target critics", agent.critics_target),
                           ("the target actor", getattr(agent, "actor_target", None))):
        if network is not None and any(p.grad is not None and p.grad.abs().sum() > 0
                                       for p in network.parameters()):
            raise AssertionError(
                f"After {name}, {label} have gradients: the target y was computed with autograd "
                "recording, so the critic's loss differentiates through it. Compute y inside "
                "`with torch.no_grad():` (it is a regression target, a constant).")
    expected_states, expected_metrics, _ = _run(reference, make_agent, config, _CALLS)
    for call_index in range(_CALLS):
        shown = f"{name}(agent, batch, config), call {call_index + 1} of {_CALLS} on the same batch"
        expect_update_metrics(
            metrics[call_index], expected_metrics[call_index], losses, shown,
            lambda key, want: _diagnose_update(states[call_index], call_index, make_agent, config,
                                               mistakes, f"the {key} must be {want:.5f}"))
        different = first_difference(states[call_index], expected_states[call_index], _NETWORKS)
        if different is not None:
            hint = _diagnose_update(states[call_index], call_index, make_agent, config, mistakes,
                                    "compare your steps with the equations above")
            raise AssertionError(f"{shown}: the parameters of {different} differ from the "
                                 f"reference's after the update. {hint}")
    return _CALLS


def _diagnose_update(state: dict[str, torch.Tensor], call_index: int,
                     make_agent: Callable[[], nn.Module], config: Any,
                     mistakes: Sequence[tuple[Fn, str]], default: str) -> str:
    for mistake, hint in mistakes:
        try:
            wrong_states, _, _ = _run(mistake, make_agent, config, call_index + 1)
        except RuntimeError:
            continue
        if first_difference(state, wrong_states[call_index], _NETWORKS) is None:
            return hint
    return default[0].upper() + default[1:] + "."


WRONG_ACTOR_HINT = ("The target's next action comes from the ONLINE actor: use the target actor, "
                    "μ'(s') = agent.actor_target(next_observations) (the wrong network).")
WRONG_CRITIC_HINT = ("The target is computed with the ONLINE critics: bootstrap from the target "
                     "critics, agent.critics_target (the wrong network).")
TRUNCATED_HINT = ("A truncated transition is treated as terminal: mask the bootstrap with "
                  "batch.terminated only. A time limit ends the episode, not the MDP: s' still "
                  "has a future, so its target bootstraps.")
FROZEN_TARGETS_HINT = ("The target networks never move: after the actor's step, "
                       "polyak_update(target, online, config.tau) for the actor and the critics.")
ACTOR_SIGN_HINT = ("The actor climbs down the critic: its loss is −mean Q(s, μ(s)) (optimisers "
                   "minimise; the actor must maximise Q).")


def _ddpg_variant(mistake: str) -> Fn:
    """The reference DDPG/TD3 update with one ``mistake`` (test double of a student's error)."""

    def update(agent: Any, batch: ReplayBatch, config: Any) -> dict[str, torch.Tensor]:
        done = batch.terminated | batch.truncated if mistake == "truncated" else batch.terminated
        with torch.no_grad():
            actor = agent.actor if mistake == "online_actor" else agent.actor_target
            critics = agent.critics if mistake == "online_critics" else agent.critics_target
            next_actions = actor(batch.next_observations)
            if config.target_noise > 0 and mistake != "no_noise":
                noise = torch.randn(next_actions.shape, generator=agent.generator)
                noise = config.target_noise * noise.to(next_actions.device)
                if mistake != "unclipped_noise":
                    noise = noise.clamp(-config.target_noise_clip, config.target_noise_clip)
                next_actions = (next_actions + noise).clamp(-1.0, 1.0)
            next_q = torch.stack([critic(batch.next_observations, next_actions)
                                  for critic in critics])
            next_q = next_q.max(dim=0).values if mistake == "max" else next_q.min(dim=0).values
            targets = batch.rewards + config.gamma * (1.0 - done.float()) * next_q
        q_values = [critic(batch.observations, batch.actions) for critic in agent.critics]
        critic_loss = sum(F.mse_loss(q, targets) for q in q_values)
        agent.critic_optimizer.zero_grad()
        critic_loss.backward()
        agent.critic_optimizer.step()
        agent.updates += 1
        metrics = {"critic_loss": critic_loss.detach()}
        if agent.updates % config.policy_delay == 0 or mistake == "every_step":
            agent.critics.requires_grad_(False)
            sign = 1.0 if mistake == "actor_sign" else -1.0
            actor_loss = sign * agent.critics[0](batch.observations,
                                                 agent.actor(batch.observations)).mean()
            agent.critics.requires_grad_(True)
            agent.actor_optimizer.zero_grad()
            actor_loss.backward()
            agent.actor_optimizer.step()
            if mistake != "frozen_targets":
                polyak_update(agent.actor_target, agent.actor, config.tau)
                polyak_update(agent.critics_target, agent.critics, config.tau)
            metrics["actor_loss"] = actor_loss.detach()
        return metrics

    return update


_DDPG_MISTAKES = [("online_actor", WRONG_ACTOR_HINT), ("online_critics", WRONG_CRITIC_HINT),
                  ("truncated", TRUNCATED_HINT), ("frozen_targets", FROZEN_TARGETS_HINT),
                  ("actor_sign", ACTOR_SIGN_HINT)]
_TD3_MISTAKES = _DDPG_MISTAKES + [
    ("max", MAX_HINT),
    ("no_noise", "The target action is not smoothed: add clip(ε, −c, c), ε ~ N(0, σ²), to "
                 "μ'(s') (target policy smoothing; config.target_noise, config.target_noise_clip, "
                 "drawn from agent.generator)."),
    ("unclipped_noise", "The smoothing noise is not clipped: add clip(ε, −c, c) with "
                        "c = config.target_noise_clip, then clip the action to [−1, 1]."),
    ("every_step", "The actor (and the targets) moved at every call: TD3 delays them, one actor "
                   "step and one Polyak update every config.policy_delay critic updates "
                   "(agent.updates counts them)."),
]


def _ddpg_agent(config: Any) -> Callable[[], nn.Module]:
    from course_utils.agents.ddpg import DDPGAgent
    return lambda: DDPGAgent(_OBSERVATION_SPACE, _ACTION_SPACE, config)


@references("course_utils.agents.ddpg.ddpg_update")
def check_ddpg_update(fn: Fn) -> None:
    """Check ``fn(agent, batch, config) -> metrics`` is DDPG's update: the critic's step on
    ``y = r + γ (1 − terminated) Q'(s', μ'(s'))`` (target networks, no gradient), the actor's
    step on ``−mean Q(s, μ(s))``, then the Polyak updates of both targets."""
    from course_utils.agents.ddpg import DDPGConfig, ddpg_update
    config = DDPGConfig(n_layers=1, size=16, gamma=0.9, tau=0.5, seed=3)
    mistakes = [(_ddpg_variant(m), hint) for m, hint in _DDPG_MISTAKES]
    n = _check_update(fn, "ddpg_update", ddpg_update, _ddpg_agent(config), config, mistakes,
                      ("critic_loss", "actor_loss"))
    passed("ddpg_update", n)


@references("course_utils.agents.ddpg.td3_update")
def check_td3_update(fn: Fn) -> None:
    """Check ``fn(agent, batch, config) -> metrics`` is TD3's update: both critics' step on the
    smoothed clipped double-Q target, and every ``policy_delay``-th call the actor's step and the
    Polyak updates."""
    from course_utils.agents.ddpg import td3_config, td3_update
    # Large smoothing noise with a tight clip, so that clipping matters in 16 × 2 draws.
    config = td3_config(n_layers=1, size=16, gamma=0.9, tau=0.5, target_noise=0.5,
                        target_noise_clip=0.3, seed=4)
    mistakes = [(_ddpg_variant(m), hint) for m, hint in _TD3_MISTAKES]
    n = _check_update(fn, "td3_update", td3_update, _ddpg_agent(config), config, mistakes,
                      ("critic_loss", "actor_loss"))
    passed("td3_update", n)


def _sac_variant(mistake: str) -> Fn:
    """The reference SAC update with one ``mistake``."""
    from course_utils.agents.sac import sample_action

    def update(agent: Any, batch: ReplayBatch, config: Any) -> dict[str, torch.Tensor]:
        alpha = agent.log_alpha.detach().exp()
        done = batch.terminated | batch.truncated if mistake == "truncated" else batch.terminated
        with torch.no_grad():
            next_actions, next_log_probs = sample_action(agent.actor, batch.next_observations)
            critics = agent.critics if mistake == "online_critics" else agent.critics_target
            next_q = torch.stack([c(batch.next_observations, next_actions) for c in critics])
            next_q = next_q.max(dim=0).values if mistake == "max" else next_q.min(dim=0).values
            sign = -1.0 if mistake == "target_entropy_sign" else 1.0
            targets = batch.rewards + config.gamma * (1.0 - done.float()) * (
                next_q - sign * alpha * next_log_probs)
        q1, q2 = (critic(batch.observations, batch.actions) for critic in agent.critics)
        critic_loss = F.mse_loss(q1, targets) + F.mse_loss(q2, targets)
        agent.critic_optimizer.zero_grad()
        critic_loss.backward()
        agent.critic_optimizer.step()
        agent.critics.requires_grad_(False)
        actions, log_probs = sample_action(agent.actor, batch.observations)
        q_new = torch.minimum(*(critic(batch.observations, actions) for critic in agent.critics))
        sign = -1.0 if mistake == "actor_entropy_sign" else 1.0
        actor_loss = (sign * alpha * log_probs - q_new).mean()
        agent.critics.requires_grad_(True)
        agent.actor_optimizer.zero_grad()
        actor_loss.backward()
        agent.actor_optimizer.step()
        gap = log_probs.detach() + agent.target_entropy
        if mistake == "alpha_sign":
            alpha_loss = (agent.log_alpha * gap).mean()
        elif mistake == "alpha_not_log":
            alpha_loss = -(agent.log_alpha.exp() * gap).mean()
        else:
            alpha_loss = -(agent.log_alpha * gap).mean()
        agent.alpha_optimizer.zero_grad()
        alpha_loss.backward()
        agent.alpha_optimizer.step()
        if mistake != "frozen_targets":
            polyak_update(agent.critics_target, agent.critics, config.tau)
        return {"critic_loss": critic_loss.detach(), "actor_loss": actor_loss.detach(),
                "alpha_loss": alpha_loss.detach()}

    return update


_SAC_MISTAKES = [
    ("online_critics", WRONG_CRITIC_HINT),
    ("max", MAX_HINT),
    ("truncated", TRUNCATED_HINT),
    ("frozen_targets", "The target critics never move: polyak_update(agent.critics_target, "
                       "agent.critics, config.tau) after the steps."),
    ("target_entropy_sign", "The entropy term of the target has the wrong sign: the soft value "
                            "of s' is min_j Q'_j(s', a') − α log π(a'|s') (−log π is the "
                            "entropy, and it is a bonus)."),
    ("actor_entropy_sign", "The entropy term of the actor's loss has the wrong sign: minimise "
                           "mean(α log π(ã|s) − min_j Q_j(s, ã)), which rewards entropy."),
    ("alpha_sign", "The temperature's loss has the wrong sign: −log α · mean(log π + H̄) raises α "
                   "when the entropy is below the target."),
    ("alpha_not_log", "The temperature's loss uses α = exp(log α): write it with log α itself, "
                      "−log α · mean(log π(ã|s) + H̄), equation (14)."),
]


@references("course_utils.agents.sac.sac_update")
def check_sac_update(fn: Fn) -> None:
    """Check ``fn(agent, batch, config) -> metrics`` is SAC's update: the twin critics' step on the
    soft target, the reparameterised actor step, the temperature step on log α, the Polyak
    update of the target critics."""
    from course_utils.agents.sac import SACAgent, SACConfig, sac_update
    config = SACConfig(n_layers=1, size=16, gamma=0.9, tau=0.5, initial_alpha=0.5, seed=5)
    mistakes = [(_sac_variant(m), hint) for m, hint in _SAC_MISTAKES]
    n = _check_update(fn, "sac_update", sac_update,
                      lambda: SACAgent(_OBSERVATION_SPACE, _ACTION_SPACE, config), config,
                      mistakes, ("critic_loss", "actor_loss", "alpha_loss"))
    passed("sac_update", n)
