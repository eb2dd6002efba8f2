"""Checks of notebook 04's exercises: the DQN and Double DQN targets, the Polyak (soft) update of
a target network, and a linear ε schedule.

The targets work on a batch of ``B`` transitions: ``rewards`` ``(B,)``, the Q-values of the next
states under the online and the target network ``(B, A)``, and ``terminated`` ``(B,)`` as floats
(1.0 where the next state is terminal). Every known-answer case puts large Q-values in the rows of
terminal transitions, so a missing terminal mask cannot go unnoticed, and uses different best
actions for the two networks, so that "which network selects, which one evaluates" shows.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

import numpy as np
import torch
from torch import nn

from course_utils.checks.common import (call, expect_close, expect_tensor, expect_tensors_unchanged,
                                                fmt, Fn, passed, references)

__all__ = [
    "check_double_dqn_target",
    "check_dqn_target",
    "check_linear_epsilon",
    "check_polyak_update",
]

TERMINAL_HINT = ("A terminated transition has no future: its target is the reward alone, "
                 "y = r, whatever the networks say about s' (multiply the bootstrap term by "
                 "1 − terminated).")

# One batch of B = 4 transitions with A = 2 actions (B ≠ A, so a max over the wrong dimension
# shows as a wrong shape). Transition 2 is terminal and its next-state values are the largest.
_REWARDS = [1.0, 0.0, -1.0, 2.0]
_NEXT_Q_ONLINE = [[4.0, 1.0], [0.0, 2.0], [3.0, 6.0], [1.0, 0.0]]
_NEXT_Q_TARGET = [[1.0, 3.0], [2.0, 0.0], [5.0, 4.0], [0.0, -1.0]]
_TERMINATED = [0.0, 0.0, 1.0, 0.0]
_GAMMA = 0.9


def _batch() -> tuple[torch.Tensor, ...]:
    return (torch.tensor(_REWARDS), torch.tensor(_NEXT_Q_ONLINE), torch.tensor(_NEXT_Q_TARGET),
            torch.tensor(_TERMINATED))


def _formula(rewards: torch.Tensor, next_values: torch.Tensor, terminated: torch.Tensor,
             gamma: float) -> torch.Tensor:
    return rewards + gamma * (1.0 - terminated) * next_values


def _reference_dqn(rewards, next_q_online, next_q_target, terminated, gamma):
    return _formula(rewards, next_q_target.max(dim=1).values, terminated, gamma)


def _reference_double(rewards, next_q_online, next_q_target, terminated, gamma):
    chosen = next_q_online.argmax(dim=1, keepdim=True)
    return _formula(rewards, next_q_target.gather(1, chosen).squeeze(1), terminated, gamma)


def _known_mistakes(rewards, next_q_online, next_q_target, terminated, gamma):
    """The targets that common mistakes produce, with the hint each deserves."""
    select_online = next_q_online.argmax(dim=1, keepdim=True)
    select_target = next_q_target.argmax(dim=1, keepdim=True)
    return [
        (_formula(rewards, next_q_target.max(dim=1).values, terminated, gamma),
         "That is the DQN target, max_a' Q_target(s', a'): in Double DQN the ONLINE network "
         "selects a* = argmax_a' Q_online(s', a') and the TARGET network evaluates it, "
         "Q_target(s', a*)."),
        (_formula(rewards, next_q_target.gather(1, select_online).squeeze(1), terminated, gamma),
         "That is the Double DQN target (the online network selects the action): the DQN "
         "target takes the maximum of the TARGET network's values, max_a' Q_target(s', a')."),
        (_formula(rewards, next_q_online.max(dim=1).values, terminated, gamma),
         "That uses max_a' Q_online(s', a'): the target network must provide the values; the "
         "online network may only choose the action (in Double DQN) or not appear at all (DQN)."),
        (_formula(rewards, next_q_online.gather(1, select_target).squeeze(1), terminated, gamma),
         "The roles are swapped: the ONLINE network selects a* = argmax_a' Q_online(s', a'), the "
         "TARGET network evaluates it."),
        (_formula(rewards, next_q_target.gather(1, select_online).squeeze(1), 0.0, gamma),
         TERMINAL_HINT),
        (_formula(rewards, next_q_target.max(dim=1).values, 0.0, gamma), TERMINAL_HINT),
        (_formula(rewards, next_q_target.gather(1, select_online).squeeze(1), 1.0 - terminated,
                  gamma), "The mask is inverted: bootstrap where terminated = 0, not where it is 1."),
        (_formula(rewards, next_q_target.max(dim=1).values, 1.0 - terminated, gamma),
         "The mask is inverted: bootstrap where terminated = 0, not where it is 1."),
        ((1.0 - terminated) * _formula(rewards, next_q_target.max(dim=1).values, 0.0, gamma),
         "The reward of a terminated transition still counts: y = r there. Mask only the "
         "bootstrap term, r + γ (1 − terminated) · (value of s')."),
        ((1.0 - terminated) * _formula(rewards, next_q_target.gather(1, select_online).squeeze(1),
                                       0.0, gamma),
         "The reward of a terminated transition still counts: y = r there. Mask only the "
         "bootstrap term, r + γ (1 − terminated) · (value of s')."),
        (rewards + (1.0 - terminated) * next_q_target.max(dim=1).values,
         "Discount the next state's value: y = r + γ (1 − terminated) · (value of s')."),
        (rewards + (1.0 - terminated) * next_q_target.gather(1, select_online).squeeze(1),
         "Discount the next state's value: y = r + γ (1 − terminated) · (value of s')."),
    ]


def _diagnose(result: torch.Tensor, expected: torch.Tensor, inputs, default: str) -> str:
    """The hint of the first known mistake whose target equals ``result`` (and not the answer)."""
    for wrong, hint in _known_mistakes(*inputs):
        if torch.allclose(wrong, expected, atol=1e-4):
            continue  # this mistake gives the right answer here: it says nothing
        if torch.allclose(result.detach().double(), wrong.double(), atol=1e-4):
            return hint
    return default


def _check_target(fn: Fn, name: str, reference: Callable[..., torch.Tensor], hint: str) -> int:
    """The known-answer batch, γ = 0 and γ = 1 edge cases, and a random batch; returns the count."""
    n = 0
    inputs = _batch()
    names = ("rewards", "next_q_online", "next_q_target", "terminated")
    copies = {k: v.clone() for k, v in zip(names, inputs)}
    shown = (f"{name}(rewards={_REWARDS}, next_q_online={_NEXT_Q_ONLINE}, "
             f"next_q_target={_NEXT_Q_TARGET}, terminated={_TERMINATED}, gamma={_GAMMA})")
    result = call(fn, name, *inputs, _GAMMA)
    expect_tensors_unchanged(name, dict(zip(names, inputs)), copies)
    expected = reference(*inputs, _GAMMA)
    result = expect_tensor(result, (4,), shown)
    if not torch.allclose(result.detach().double(), expected.double(), atol=1e-4):
        raise AssertionError(f"{shown} returned {fmt(result)}; expected {fmt(expected)}. "
                             + _diagnose(result, expected, (*inputs, _GAMMA), hint))
    n += 1

    rewards, online, target, terminated = _batch()
    for gamma, why in ((0.0, "With γ = 0 the target is the reward alone."),
                       (1.0, "γ = 1 is allowed (no discount): y = r + (1 − terminated) · value of s'.")):
        shown = f"{name}(…the same batch…, gamma={gamma})"
        expect_close(call(fn, name, rewards, online, target, terminated, gamma),
                     reference(rewards, online, target, terminated, gamma), shown, why)
        n += 1

    all_terminal = torch.ones(4)
    shown = f"{name}(…the same batch…, terminated=[1.0, 1.0, 1.0, 1.0], gamma=0.99)"
    expect_close(call(fn, name, rewards, online, target, all_terminal, 0.99), rewards, shown,
                 TERMINAL_HINT)
    n += 1

    generator = torch.Generator().manual_seed(4)
    B, A = 64, 5
    rewards = torch.randn(B, generator=generator)
    online = torch.randn(B, A, generator=generator) * 10
    target = torch.randn(B, A, generator=generator) * 10
    terminated = (torch.rand(B, generator=generator) < 0.3).float()
    shown = f"{name}(a random batch of {B} transitions with {A} actions, gamma=0.99)"
    result = expect_tensor(call(fn, name, rewards, online, target, terminated, 0.99), (B,), shown)
    expected = reference(rewards, online, target, terminated, 0.99)
    if not torch.allclose(result.detach().double(), expected.double(), atol=1e-4):
        wrong = int((~torch.isclose(result.detach().double(), expected.double(), atol=1e-4))
                    .nonzero()[0])
        diagnosis = _diagnose(result, expected, (rewards, online, target, terminated, 0.99), hint)
        if diagnosis == hint and terminated[wrong] == 1.0:
            diagnosis = f"Transition {wrong} is terminated. {TERMINAL_HINT}"
        raise AssertionError(
            f"{shown} gave {result[wrong].item():.4f} for transition {wrong}; expected "
            f"{expected[wrong].item():.4f}. {diagnosis}")
    n += 1
    return n


@references("course_utils.agents.legacy_dqn.dqn_target")
def check_dqn_target(fn: Fn) -> None:
    """Check ``fn(rewards (B,), next_q_online (B, A), next_q_target (B, A), terminated (B,),
    gamma) -> (B,)`` is the DQN target ``r + γ (1 − terminated) max_a' Q_target(s', a')``."""
    name = "dqn_target"
    n = _check_target(fn, name, _reference_dqn,
                      "y = r + γ (1 − terminated) max_a' Q_target(s', a'): the maximum over the "
                      "ACTIONS (dim=1) of the target network's values.")
    passed(name, n)


@references("course_utils.agents.legacy_dqn.double_dqn_target")
def check_double_dqn_target(fn: Fn) -> None:
    """Check ``fn(rewards, next_q_online, next_q_target, terminated, gamma) -> (B,)`` is the
    Double DQN target ``r + γ (1 − terminated) Q_target(s', argmax_a' Q_online(s', a'))``."""
    name = "double_dqn_target"
    n = _check_target(fn, name, _reference_double,
                      "y = r + γ (1 − terminated) Q_target(s', a*) with a* = argmax_a' "
                      "Q_online(s', a') (e.g. next_q_target.gather(1, a*[:, None]).squeeze(1)).")
    passed(name, n)


# ------------------------------------------------------------------------------- Polyak update


def _network(fill: Optional[float] = None, seed: int = 0) -> nn.Module:
    """A small MLP with two weight matrices and two bias vectors; every parameter is ``fill``
    (or random, from ``seed``)."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    if fill is not None:
        with torch.no_grad():
            for parameter in net.parameters():
                parameter.fill_(fill)
    return net


def _parameters(net: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.parameters()]


def _target_like_the_agents(net: nn.Module) -> nn.Module:
    return net.requires_grad_(False)  # as DQNAgent's target network


def _run_polyak(fn: Fn, name: str, target: nn.Module, source: nn.Module, tau: float,
                shown: str) -> Any:
    target_before, source_before = _parameters(target), _parameters(source)
    result = call(fn, name, target, source, tau)
    if any(p.grad_fn is not None or p.requires_grad for p in target.parameters()):
        raise AssertionError(
            f"{shown}: the target network's parameters now carry a computation graph back to the "
            "source (online) network, which would grow with every update. Wrap the update in "
            "`with torch.no_grad():` (or work on `.data`).")
    if not all(torch.equal(a, b) for a, b in zip(_parameters(source), source_before)):
        raise AssertionError(f"{shown} changed the SOURCE (online) network; only the target "
                             "network moves: θ' ← τ θ + (1 − τ) θ'.")
    if all(torch.equal(a, b) for a, b in zip(_parameters(target), target_before)) and tau > 0:
        if isinstance(result, nn.Module) and result is not target:
            raise AssertionError(
                f"{shown} returned a new network and left the target network unchanged. Update "
                "the target's parameters IN PLACE (e.g. target_parameter.mul_(1 − τ)"
                ".add_(τ · source_parameter), or .copy_()): the agent keeps using its own target "
                "network object and never sees a returned copy.")
        raise AssertionError(
            f"{shown} left the target network unchanged. Update each of its parameters IN PLACE "
            "(rebinding a name, `target_parameter = …`, changes nothing outside the function).")
    return result


@references("course_utils.nn.polyak_update")
def check_polyak_update(fn: Fn) -> None:
    """Check ``fn(target, source, tau)`` moves ``target``'s parameters in place to
    ``τ · source + (1 − τ) · target`` and leaves ``source`` alone."""
    name = "polyak_update"
    n = 0
    for tau, expected_value in ((0.1, 0.1), (1.0, 1.0), (0.5, 0.5)):
        target, source = _target_like_the_agents(_network(0.0)), _network(1.0)
        shown = (f"{name}(target=<a network with every parameter 0>, source=<the same network "
                 f"with every parameter 1>, tau={tau})")
        _run_polyak(fn, name, target, source, tau, shown)
        for index, parameter in enumerate(target.parameters()):
            if not torch.allclose(parameter, torch.full_like(parameter, expected_value), atol=1e-6):
                hint = "θ' ← τ θ + (1 − τ) θ': τ weighs the SOURCE (online) network."
                if torch.allclose(parameter, torch.full_like(parameter, 1.0 - tau), atol=1e-6):
                    hint = ("The roles of τ are swapped: θ' ← τ θ + (1 − τ) θ', so a small τ moves "
                            "the target only a little towards the source.")
                elif tau < 1 and torch.allclose(parameter, torch.ones_like(parameter)):
                    hint = ("The target became a copy of the source, which is τ = 1 (a hard "
                            "update); with τ = 0.1 it moves only a tenth of the way.")
                elif torch.equal(parameter, torch.zeros_like(parameter)):
                    hint = ("This tensor was not updated: update EVERY parameter tensor of the "
                            "target (weights and biases of every layer).")
                raise AssertionError(
                    f"{shown}: parameter tensor {index} of the target became "
                    f"{fmt(parameter)}; expected every entry to be {expected_value}. {hint}")
        n += 1

    target, source = _target_like_the_agents(_network(seed=1)), _network(seed=2)
    before = _parameters(target)
    shown = f"{name}(target=<random network>, source=<another random network>, tau=0.005)"
    _run_polyak(fn, name, target, source, 0.005, shown)
    for index, (parameter, old, new) in enumerate(zip(target.parameters(), before,
                                                      source.parameters())):
        expected = 0.005 * new.detach() + 0.995 * old
        if not torch.allclose(parameter, expected, atol=1e-6):
            hint = ("Only this tensor is wrong: update every parameter tensor (weights and "
                    "biases of every layer)." if torch.equal(parameter, old) else
                    "θ' ← τ θ + (1 − τ) θ' for every entry.")
            raise AssertionError(f"{shown}: parameter tensor {index} (shape "
                                 f"{tuple(parameter.shape)}) of the target is wrong. {hint}")
    n += 1

    target, source = _target_like_the_agents(_network(seed=3)), _network(seed=4)
    before = _parameters(target)
    call(fn, name, target, source, 0.0)
    if not all(torch.equal(a, b) for a, b in zip(_parameters(target), before)):
        raise AssertionError(f"{name}(target, source, tau=0.0) changed the target; with τ = 0 "
                             "the target must stay as it is.")
    n += 1
    passed(name, n)


# ------------------------------------------------------------------------------- ε schedule


def _expect_real(result: Any, shown: str) -> float:
    if isinstance(result, torch.Tensor) and result.numel() == 1:
        result = result.item()
    if isinstance(result, np.ndarray) and result.size == 1:
        result = result.reshape(())[()]
    if isinstance(result, bool) or not isinstance(result, (int, float, np.integer, np.floating)):
        raise AssertionError(f"{shown} returned {type(result).__name__}; expected a number "
                             "(the value of ε at that step).")
    return float(result)


def _reference_epsilon(step: int, start: float, end: float, duration: int) -> float:
    return start + min(step / duration, 1.0) * (end - start)


@references("course_utils.schedules.linear_schedule")
def check_linear_epsilon(fn: Fn) -> None:
    """Check ``fn(step, start, end, duration) -> float``: ``start`` at step 0, a straight line to
    ``end`` at step ``duration``, then ``end`` for ever (decreasing or increasing)."""
    name = "linear_epsilon"
    cases = [
        (0, 1.0, 0.05, 1000, "At step 0, ε = start."),
        (1, 1.0, 0.0, 10, "After 1 of 10 steps ε has moved 1/10 of the way: use step / duration "
                          "(not step / (duration − 1))."),
        (250, 1.0, 0.1, 1000, "ε = start + (step / duration) · (end − start)."),
        (500, 1.0, 0.05, 1000, "Halfway through, ε is halfway between start and end."),
        (1000, 1.0, 0.05, 1000, "At step = duration, ε = end."),
        (5000, 1.0, 0.05, 1000, "After duration steps ε stays at end: clamp step / duration "
                                "at 1."),
        (10**6, 0.5, 0.01, 20_000, "Long after duration, ε is still end."),
        (300, 0.0, 1.0, 1000, "An increasing schedule works the same way: start + "
                              "(step / duration) · (end − start)."),
        (2000, 0.0, 1.0, 1000, "An increasing schedule also stays at end after duration (clamp "
                               "the fraction step / duration at 1, not ε against end)."),
    ]
    for step, start, end, duration, hint in cases:
        shown = f"{name}(step={step}, start={start}, end={end}, duration={duration})"
        value = _expect_real(call(fn, name, step, start, end, duration), shown)
        expected = _reference_epsilon(step, start, end, duration)
        if not math.isclose(value, expected, rel_tol=1e-6, abs_tol=1e-6):
            if math.isclose(value, _reference_epsilon(step, end, start, duration), abs_tol=1e-6):
                hint = "start and end are swapped: ε begins at start and ends at end."
            elif 0 < step < duration and math.isclose(value, start, abs_tol=1e-6):
                hint = ("ε has not moved from start. `step // duration` is integer division, 0 "
                        "until the end: use step / duration.")
            raise AssertionError(f"{shown} returned {value:.6g}; expected {expected:.6g}. {hint}")
    values = [_expect_real(call(fn, name, step, 1.0, 0.05, 100), f"{name}(step={step}, …)")
              for step in range(0, 201)]
    expected = [_reference_epsilon(step, 1.0, 0.05, 100) for step in range(0, 201)]
    for step, (value, want) in enumerate(zip(values, expected)):
        if not math.isclose(value, want, rel_tol=1e-6, abs_tol=1e-6):
            raise AssertionError(f"{name}(step={step}, start=1.0, end=0.05, duration=100) returned "
                                 f"{value:.6g}; expected {want:.6g}: a straight line from start "
                                 "to end over duration steps, then end.")
    passed(name, len(cases) + 1)
