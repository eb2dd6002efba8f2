"""Checks of notebook 04's exercises: the Polyak (soft) update of a target network, ε-greedy
action selection, the Double DQN target and the DQN update step.

The target works on a batch of ``B`` transitions: ``rewards`` ``(B,)``, the Q-values of the next
states under the online and the target network ``(B, A)``, and ``terminated`` ``(B,)`` as floats
(1.0 where the next state is terminal). Every known-answer case puts large Q-values in the rows of
terminal transitions, so a missing terminal mask cannot go unnoticed, and uses different best
actions for the two networks, so that "which network selects, which one evaluates" shows.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from course_utils.agents.dqn import DQNConfig, QNetworks, dqn_update
from course_utils.buffers import ReplayBatch
from course_utils.nn import polyak_update

from course_utils.checks.common import (call, expect_close, expect_tensor, expect_tensors_unchanged,
                                                fmt, Fn, passed, references)

__all__ = [
    "check_double_dqn_target",
    "check_dqn_update",
    "check_epsilon_greedy_actions",
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


@references("course_utils.agents.dqn.double_dqn_target")
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
    return net.requires_grad_(False)  # as QNetworks' target network


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


# ------------------------------------------------------------------------------- ε-greedy


def _frequencies(actions: torch.Tensor, n_actions: int) -> torch.Tensor:
    return torch.bincount(actions.long().flatten(), minlength=n_actions).double() / actions.numel()


def _expect_actions(result: Any, n_rows: int, n_actions: int, shown: str) -> torch.Tensor:
    result = expect_tensor(result, (n_rows,), shown)
    if result.dtype.is_floating_point or result.dtype == torch.bool:
        raise AssertionError(f"{shown} returned a tensor of dtype {result.dtype}; expected "
                             "integer actions (argmax and torch.randint give int64).")
    if result.min() < 0 or result.max() >= n_actions:
        raise AssertionError(f"{shown} returned actions outside 0 … {n_actions - 1}.")
    return result


def check_epsilon_greedy_actions(fn: Fn) -> None:
    """Check ``fn(q_values (B, A), epsilon, generator) -> actions (B,)``: in each row
    independently, with probability ε a uniformly random action among all A, otherwise
    ``argmax_a q_values[row, a]``; every random number is drawn with ``generator``."""
    name = "epsilon_greedy_actions"
    n = 0
    q_values = torch.tensor([[0.0, 2.0, 1.0], [5.0, -1.0, 4.0], [1.0, 2.0, 3.0],
                             [-3.0, -2.0, -4.0], [0.5, 0.125, 0.25]])
    copy_ = q_values.clone()
    shown = f"{name}(q_values={q_values.tolist()}, epsilon=0.0, generator)"
    result = _expect_actions(call(fn, name, q_values, 0.0, torch.Generator().manual_seed(0)),
                             5, 3, shown)
    expect_tensors_unchanged(name, {"q_values": q_values}, {"q_values": copy_})
    if not torch.equal(result.long(), q_values.argmax(dim=1)):
        hint = ("With ε = 0 no action is random (ε is the probability of a random action): every "
                "row takes the argmax over the ACTIONS of its own row (dim=1).")
        raise AssertionError(f"{shown} returned {result.tolist()}; expected "
                             f"{q_values.argmax(dim=1).tolist()}. {hint}")
    n += 1

    # A large batch whose greedy action is 0 in every row: frequencies measure the rule.
    B, A = 20_000, 4
    q_values = torch.zeros(B, A)
    q_values[:, 0] = 1.0
    for epsilon in (1.0, 0.2):
        shown = f"{name}(q_values=<{B} rows whose greedy action is 0, A = {A}>, epsilon={epsilon}, generator)"
        result = _expect_actions(call(fn, name, q_values, epsilon,
                                      torch.Generator().manual_seed(1)), B, A, shown)
        frequencies = _frequencies(result, A)
        greedy = 1.0 - epsilon + epsilon / A
        expected = torch.full((A,), epsilon / A, dtype=torch.float64)
        expected[0] = greedy
        if not torch.allclose(frequencies, expected, atol=0.02):
            got = [round(f, 3) for f in frequencies.tolist()]
            want = [round(f, 3) for f in expected.tolist()]
            uniform = bool((frequencies - 1.0 / A).abs().max() < 0.02)
            if abs(frequencies[0] - (epsilon + (1.0 - epsilon) / A)) < 0.02:
                hint = ("ε is the probability of the RANDOM action; act greedily with "
                        "probability 1 − ε.")
            elif frequencies.max() > 0.999 or (uniform and epsilon < 1.0):
                hint = ("Every row made the same choice (all greedy, or all random): flip one "
                        "coin PER ROW, e.g. a uniform number of shape (B,).")
            elif abs(frequencies[0] - (1.0 - epsilon)) < 0.02:
                hint = ("The random action must be uniform over ALL actions, the greedy one "
                        "included: the greedy action's probability is 1 − ε + ε/A.")
            elif frequencies[-1] < 0.005:
                hint = (f"Action {A - 1} is never drawn: a random action is one of 0 … A − 1 "
                        "(torch.randint's upper bound is exclusive).")
            else:
                hint = ("With probability ε a uniformly random action among all A, otherwise "
                        "the greedy one; the greedy action's probability is 1 − ε + ε/A.")
            raise AssertionError(f"{shown}: the actions' frequencies were {got}; expected about "
                                 f"{want}. {hint}")
        n += 1

    q_values = torch.randn(1_000, 5, generator=torch.Generator().manual_seed(2))
    shown = f"{name}(q_values=<1000 × 5>, epsilon=0.5, generator=<seeded>) called twice"
    first = _expect_actions(call(fn, name, q_values, 0.5, torch.Generator().manual_seed(3)),
                            1_000, 5, shown)
    torch.rand(10)  # the global generator moves on: only the given one may matter
    second = call(fn, name, q_values, 0.5, torch.Generator().manual_seed(3))
    if not torch.equal(first, second):
        raise AssertionError(f"{shown} with two generators seeded alike returned different "
                             "actions: draw every random number with the `generator` argument "
                             "(e.g. torch.rand(..., generator=generator)), so that a seed "
                             "reproduces the run.")
    n += 1
    passed(name, n)


# ------------------------------------------------------------------------------- the update step

_B, _OBS, _A = 8, 3, 3


def _update_batch() -> ReplayBatch:
    """Eight transitions: 1 and 5 terminated, 3 and 6 truncated (they must bootstrap), rewards
    large enough that the Huber loss is in its linear part for some of them."""
    generator = torch.Generator().manual_seed(15)
    return ReplayBatch(
        observations=torch.randn(_B, _OBS, generator=generator),
        actions=torch.tensor([0, 2, 1, 1, 0, 2, 2, 1]),
        rewards=torch.tensor([1.0, -2.0, 0.5, 3.0, 0.0, 1.5, -0.5, 2.5]),
        next_observations=torch.randn(_B, _OBS, generator=generator) * 2,
        terminated=torch.tensor([False, True, False, False, False, True, False, False]),
        truncated=torch.tensor([False, False, False, True, False, False, True, False]))


def _update_networks() -> QNetworks:
    """Small Q-networks whose target differs from the online network (so that using the wrong
    one shows); the target's parameters require gradients here, so a gradient reaching them
    shows too."""
    torch.manual_seed(40)
    nets = QNetworks(_OBS, _A, n_layers=1, size=16, device="cpu")
    with torch.no_grad():
        for parameter in nets.target.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    nets.target.requires_grad_(True)
    return nets


def _optimizer(nets: QNetworks) -> torch.optim.Optimizer:
    """Plain SGD (Adam's first step is nearly sign(gradient) and would hide scale mistakes), with
    stale gradients left from an earlier step, which zero_grad must clear."""
    optimizer = torch.optim.SGD(nets.online.parameters(), lr=0.5)
    for parameter in nets.online.parameters():
        parameter.grad = torch.full_like(parameter, 0.7)
    return optimizer


_CASES = (  # (double, target_update_every, step, what the case shows)
    (True, 1, 1, "Double DQN, the target updated after every step"),
    (False, 1, 1, "DQN (config.double=False)"),
    (True, 2, 1, "target_update_every=2, step=1: the target must not move"),
    (True, 2, 4, "target_update_every=2, step=4: the target moves"),
)


def _update_config(double: bool, every: int) -> DQNConfig:
    return DQNConfig(gamma=0.9, double=double, tau=0.25, target_update_every=every,
                     max_grad_norm=0.5, device="cpu")


def _variant(nets: QNetworks, optimizer: torch.optim.Optimizer, batch: ReplayBatch,
             config: DQNConfig, step: int, mistake: Optional[str] = None) -> torch.Tensor:
    """The update step, or the one a known ``mistake`` makes; returns the loss."""
    n = len(batch)
    q_all = nets.online(torch.cat([batch.observations, batch.next_observations]))
    q_s = q_all[:n]
    q_taken = (q_s.max(dim=1).values if mistake == "max_q_s"
               else q_s.gather(1, batch.actions[:, None]).squeeze(1))
    done = batch.terminated.float()
    if mistake == "truncated_terminal":
        done = (batch.terminated | batch.truncated).float()
    elif mistake == "no_mask":
        done = torch.zeros_like(done)
    elif mistake == "inverted_mask":
        done = 1.0 - done
    with torch.enable_grad() if mistake == "online_only_grad" else torch.no_grad():
        next_q_target = nets.target(batch.next_observations)
        next_q_online = q_all[n:] if mistake == "online_only_grad" else q_all[n:].detach()
        double = not config.double if mistake == "double_flag_ignored" else config.double
        select = next_q_online if double else next_q_target
        evaluate = next_q_target
        if mistake in ("online_only", "online_only_grad"):
            select = evaluate = next_q_online
        elif mistake == "swapped_roles":
            select, evaluate = next_q_target, next_q_online
        values = evaluate.gather(1, select.argmax(dim=1, keepdim=True)).squeeze(1)
        sign = -1.0 if mistake == "bootstrap_sign" else 1.0
        targets = batch.rewards + sign * config.gamma * (1.0 - done) * values
    if mistake == "mse":
        loss = F.mse_loss(q_taken, targets)
    else:
        loss = F.smooth_l1_loss(q_taken, targets, reduction="sum" if mistake == "sum" else "mean")
    if mistake == "ascent":
        loss = -loss  # gradient ascent: the step goes up the Huber loss
    if mistake != "no_zero_grad":
        optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if config.max_grad_norm is not None and mistake != "no_clip":
        nn.utils.clip_grad_norm_(nets.online.parameters(), config.max_grad_norm)
    optimizer.step()
    due = step % config.target_update_every == 0 or mistake == "target_every_step"
    if mistake != "target_frozen" and due:
        tau = {"hard_copy": 1.0, "tau_swapped": 1.0 - config.tau}.get(mistake, config.tau)
        polyak_update(nets.target, nets.online, tau)
    return loss.detach()


_UPDATE_HINTS = {
    "online_only": "The target was computed with the ONLINE network alone: the target network "
                   "must evaluate the next action, y = r + γ (1 − terminated) Q_θ̄(s', a*).",
    "online_only_grad": "The target was computed with the ONLINE network, and with gradients "
                        "flowing through it: the target network must evaluate the next action, "
                        "and y is a constant (compute it under torch.no_grad()).",
    "double_flag_ignored": "config.double was ignored: with double=True the online network "
                           "selects a* and the target network evaluates it; with double=False "
                           "the target network does both, a* = argmax_a' Q_θ̄(s', a').",
    "swapped_roles": "The networks' roles are swapped: the ONLINE network selects "
                     "a* = argmax_a' Q_θ(s', a'), the TARGET network evaluates it.",
    "truncated_terminal": "A truncated transition was treated as terminal. Only `terminated` "
                          "cuts the bootstrap: a time limit stops the episode in a state that "
                          "still has a future, and its stored s' is the true next state.",
    "no_mask": "The bootstrap term of terminated transitions was kept: their target is y = r "
               "(multiply it by 1 − terminated).",
    "inverted_mask": "The terminal mask is inverted: bootstrap where terminated is 0.",
    "bootstrap_sign": "The bootstrap term has the wrong sign: y = r + γ (1 − terminated) · "
                      "(value of s').",
    "ascent": "The parameters moved UP the loss (a wrong sign): minimise the loss, "
              "loss.backward() then optimizer.step().",
    "mse": "That is the squared error: DQN minimises the Huber loss of the TD errors "
           "(F.smooth_l1_loss, κ = 1).",
    "sum": "The loss is summed over the batch: average it (the Huber loss's default reduction).",
    "no_clip": "The gradient's norm was not clipped to config.max_grad_norm (between backward "
               "and the optimiser's step).",
    "no_zero_grad": "The gradients of an earlier step were not cleared: call "
                    "optimizer.zero_grad() before loss.backward().",
    "max_q_s": "The loss used max_a Q_θ(s, a): regress the value of the action TAKEN, "
               "Q_θ(s, a) with a from the batch.",
    "target_frozen": "The target network never moved: every config.target_update_every "
                     "gradient steps, θ̄ ← τ θ + (1 − τ) θ̄ (your polyak_update).",
    "target_every_step": "The target network moved at a step where it must not: update it only "
                         "when step % config.target_update_every == 0.",
    "hard_copy": "The target network became a copy of the online one: move it only τ of the "
                 "way, θ̄ ← τ θ + (1 − τ) θ̄ with τ = config.tau.",
    "tau_swapped": "The roles of τ are swapped in the target update: θ̄ ← τ θ + (1 − τ) θ̄.",
}


def _state(nets: QNetworks) -> list[torch.Tensor]:
    return [p.detach().clone() for p in nets.parameters()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.allclose(x, y, atol=1e-5, rtol=1e-4) for x, y in zip(a, b))


def _as_loss(metrics: Any, shown: str) -> float:
    if not isinstance(metrics, dict) or "loss" not in metrics:
        raise AssertionError(f"{shown} returned {type(metrics).__name__}; expected a dict with "
                             "the loss, e.g. {'loss': loss.detach(), 'q': …}.")
    loss = metrics["loss"]
    if isinstance(loss, torch.Tensor) and loss.numel() == 1:
        return float(loss.detach())
    if isinstance(loss, (int, float)) and not isinstance(loss, bool):
        return float(loss)
    raise AssertionError(f"{shown}: metrics['loss'] is {type(loss).__name__}; expected the loss "
                         "(a scalar tensor).")


def _outcome(update: Callable[..., Any], double: bool, every: int, step: int,
             mistake: Optional[str] = None) -> tuple[Any, list[torch.Tensor], QNetworks, ReplayBatch]:
    """Run ``update`` (or the ``mistake`` variant) on fresh copies of the fixed networks, batch and
    optimiser; returns what it returned, the parameters after it, the networks and the batch."""
    nets, batch, config = _update_networks(), _update_batch(), _update_config(double, every)
    optimizer = _optimizer(nets)
    if mistake is None:
        result = update(nets, optimizer, batch, config, step)
    else:
        result = {"loss": _variant(nets, optimizer, batch, config, step, mistake)}
    return result, _state(nets), nets, batch


@references("course_utils.agents.dqn.dqn_update")
def check_dqn_update(fn: Fn) -> None:
    """Check ``fn(nets, optimizer, batch, config, step) -> {'loss': …, …}``: one DQN update on a
    fixed batch, compared with the reference (loss and parameters after the step) in four
    cases (Double DQN, DQN, a step without and one with the target update)."""
    name = "dqn_update"
    for double, every, step, what in _CASES:
        shown = f"{name}(…) on the check's fixed batch of {_B} transitions ({what})"
        expected, expected_state, _, _ = _outcome(dqn_update, double, every, step)
        expected_loss = float(expected["loss"])

        def student(nets, optimizer, batch, config, step):
            return call(fn, name, nets, optimizer, batch, config, step)

        result, state, nets, batch = _outcome(student, double, every, step)
        if any(p.grad is not None and bool(p.grad.abs().sum() > 0)
               for p in nets.target.parameters()):
            raise AssertionError(
                f"{shown}: the TARGET network received gradients. The target y is a fixed "
                "regression label (a semi-gradient method): compute it under torch.no_grad() "
                "(or .detach() it), so that no gradient flows into it.")
        fresh = _update_batch()
        for field in ("observations", "actions", "rewards", "next_observations", "terminated",
                      "truncated"):
            if not torch.equal(getattr(batch, field), getattr(fresh, field)):
                raise AssertionError(f"{shown} modified batch.{field} in place; the replayed "
                                     "batch must stay as it was sampled.")
        loss = _as_loss(result, shown)
        n_online = len(list(nets.online.parameters()))
        loss_ok = math.isclose(loss, expected_loss, rel_tol=1e-4, abs_tol=1e-5)
        online_ok = _same(state[:n_online], expected_state[:n_online])
        target_ok = _same(state[n_online:], expected_state[n_online:])
        if loss_ok and online_ok and target_ok:
            continue
        parts = [part for part, ok in (("the loss", loss_ok),
                                       ("the online network's parameters after the step",
                                        online_ok),
                                       ("the target network's parameters after the step",
                                        target_ok)) if not ok]
        verb = "differ" if len(parts) > 1 else "differs"
        differ = (f"{shown}: {' and '.join(parts)} {verb} from the reference (loss {loss:.4f}, "
                  f"expected {expected_loss:.4f}).")
        for mistake, hint in _UPDATE_HINTS.items():
            wrong, wrong_state, _, _ = _outcome(None, double, every, step, mistake)
            if (math.isclose(float(wrong["loss"]), expected_loss, rel_tol=1e-4, abs_tol=1e-5)
                    and _same(wrong_state, expected_state)):
                continue  # this mistake changes nothing in this case
            if (math.isclose(loss, float(wrong["loss"]), rel_tol=1e-4, abs_tol=1e-5)
                    and _same(state, wrong_state)):
                break
        else:
            hint = ("Compare with the key equations: y = r + γ (1 − terminated) Q_θ̄(s', a*), "
                    "the Huber loss of Q_θ(s, a) − y averaged over the batch, one clipped "
                    "optimiser step, then the target update when it is due.")
        raise AssertionError(f"{differ} {hint}")
    passed(name, len(_CASES))
