"""Unit tests of notebook 04's checks (course_utils.checks.dqn): each check passes on
reference implementations (several correct styles) and fails, with a helpful message, on
plausible wrong answers of students."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from check_helpers import assert_fails, assert_passes, not_implemented, own_copy
from course_utils.agents.legacy_dqn import double_dqn_target, dqn_target
from course_utils.checks import (
    check_double_dqn_target,
    check_dqn_target,
    check_linear_epsilon,
    check_polyak_update,
)
from course_utils.nn import polyak_update
from course_utils.schedules import linear_schedule

# The package's answers as a student would write them: the checks refuse the package's own
# functions (checks.common.references).
double_dqn_target, dqn_target, polyak_update, linear_schedule = map(
    own_copy, (double_dqn_target, dqn_target, polyak_update, linear_schedule))

# The known-answer batch of the checks: B = 4 transitions, A = 2 actions, transition 2 terminal.
DQN_ANSWER = "expected [3.7, 1.8, -1.0, 2.0]"
DOUBLE_ANSWER = "expected [1.9, 0.0, -1.0, 2.0]"


# ------------------------------------------------------------------------------- DQN target


def dqn_where(rewards, next_q_online, next_q_target, terminated, gamma):
    """Correct, with torch.where on a boolean mask."""
    bootstrap = rewards + gamma * next_q_target.max(dim=1).values
    return torch.where(terminated.bool(), rewards, bootstrap)


def dqn_amax(rewards, next_q_online, next_q_target, terminated, gamma):
    """Correct, with amax and an explicit 'not done' factor."""
    not_done = 1 - terminated
    return rewards + not_done * gamma * torch.amax(next_q_target, dim=-1)


def dqn_no_mask(rewards, next_q_online, next_q_target, terminated, gamma):
    return rewards + gamma * next_q_target.max(dim=1).values


def dqn_inverted_mask(rewards, next_q_online, next_q_target, terminated, gamma):
    return rewards + gamma * terminated * next_q_target.max(dim=1).values


def dqn_online_max(rewards, next_q_online, next_q_target, terminated, gamma):
    return rewards + gamma * (1 - terminated) * next_q_online.max(dim=1).values


def dqn_max_over_batch(rewards, next_q_online, next_q_target, terminated, gamma):
    return gamma * next_q_target.max(dim=0).values


def dqn_keepdim(rewards, next_q_online, next_q_target, terminated, gamma):
    return (rewards + gamma * (1 - terminated) * next_q_target.max(dim=1).values)[:, None]


def dqn_mean(rewards, next_q_online, next_q_target, terminated, gamma):
    return rewards + gamma * (1 - terminated) * next_q_target.mean(dim=1)


def dqn_no_gamma(rewards, next_q_online, next_q_target, terminated, gamma):
    return rewards + (1 - terminated) * next_q_target.max(dim=1).values


def dqn_masks_reward_too(rewards, next_q_online, next_q_target, terminated, gamma):
    return (1 - terminated) * (rewards + gamma * next_q_target.max(dim=1).values)


def dqn_in_place(rewards, next_q_online, next_q_target, terminated, gamma):
    return rewards.add_(gamma * (1 - terminated) * next_q_target.max(dim=1).values)


def dqn_numpy(rewards, next_q_online, next_q_target, terminated, gamma):
    return (rewards + gamma * (1 - terminated) * next_q_target.max(dim=1).values).numpy()


def dqn_only_small_batches(rewards, next_q_online, next_q_target, terminated, gamma):
    """Right on the 4-transition batch, then a loop that forgets the mask after transition 9."""
    out = dqn_target(rewards, next_q_online, next_q_target, terminated, gamma)
    if len(rewards) > 10:
        out[10:] = rewards[10:] + gamma * next_q_target[10:].max(dim=1).values
    return out


def test_check_dqn_target_passes_on_references(capsys):
    for fn in (dqn_target, dqn_where, dqn_amax):
        assert_passes(check_dqn_target, fn, capsys, "dqn_target")


@pytest.mark.parametrize("mutant, fragments", [
    (dqn_no_mask, [DQN_ANSWER, "[3.7, 1.8, 3.5, 2.0]", "terminated transition has no future"]),
    (dqn_inverted_mask, [DQN_ANSWER, "mask is inverted"]),
    (dqn_online_max, [DQN_ANSWER, "target network must provide the values"]),
    (double_dqn_target, [DQN_ANSWER, "That is the Double DQN target"]),
    (dqn_max_over_batch, ["returned shape (2,); expected (4,)"]),
    (dqn_keepdim, ["returned shape (4, 1); expected (4,)"]),
    (dqn_mean, [DQN_ANSWER, "maximum over the ACTIONS"]),
    (dqn_no_gamma, [DQN_ANSWER, "Discount the next state's value"]),
    (dqn_masks_reward_too, [DQN_ANSWER, "[3.7, 1.8, 0.0, 2.0]", "Mask only the bootstrap term"]),
    (dqn_in_place, ["modified its input rewards in place"]),
    (dqn_numpy, ["returned ndarray; expected a torch.Tensor"]),
    (dqn_only_small_batches, ["random batch of 64 transitions", "terminated transition has no future"]),
])
def test_check_dqn_target_fails_on_mutants(mutant, fragments):
    assert_fails(check_dqn_target, mutant, "dqn_target", *fragments)


def test_check_dqn_target_not_implemented():
    assert_fails(check_dqn_target, not_implemented, "dqn_target is not implemented yet")


# ------------------------------------------------------------------------------- Double DQN


def double_index(rewards, next_q_online, next_q_target, terminated, gamma):
    """Correct, with advanced indexing instead of gather."""
    best = next_q_online.argmax(dim=1)
    values = next_q_target[torch.arange(len(rewards)), best]
    return rewards + gamma * (1.0 - terminated) * values


def double_where(rewards, next_q_online, next_q_target, terminated, gamma):
    best = next_q_online.argmax(1, keepdim=True)
    return torch.where(terminated > 0.5, rewards,
                       rewards + gamma * next_q_target.gather(1, best).squeeze(-1))


def double_select_target(rewards, next_q_online, next_q_target, terminated, gamma):
    return dqn_target(rewards, next_q_online, next_q_target, terminated, gamma)


def double_online_max(rewards, next_q_online, next_q_target, terminated, gamma):
    return rewards + gamma * (1 - terminated) * next_q_online.max(dim=1).values


def double_swapped(rewards, next_q_online, next_q_target, terminated, gamma):
    best = next_q_target.argmax(dim=1, keepdim=True)
    return rewards + gamma * (1 - terminated) * next_q_online.gather(1, best).squeeze(1)


def double_no_mask(rewards, next_q_online, next_q_target, terminated, gamma):
    best = next_q_online.argmax(dim=1, keepdim=True)
    return rewards + gamma * next_q_target.gather(1, best).squeeze(1)


def double_inverted_mask(rewards, next_q_online, next_q_target, terminated, gamma):
    best = next_q_online.argmax(dim=1, keepdim=True)
    return rewards + gamma * terminated * next_q_target.gather(1, best).squeeze(1)


def double_no_squeeze(rewards, next_q_online, next_q_target, terminated, gamma):
    best = next_q_online.argmax(dim=1, keepdim=True)
    return rewards[:, None] + gamma * (1 - terminated[:, None]) * next_q_target.gather(1, best)


def double_column_indexing(rewards, next_q_online, next_q_target, terminated, gamma):
    best = next_q_online.argmax(dim=1)
    return rewards + gamma * (1 - terminated) * next_q_target[:, best]


def double_no_gamma(rewards, next_q_online, next_q_target, terminated, gamma):
    best = next_q_online.argmax(dim=1, keepdim=True)
    return rewards + (1 - terminated) * next_q_target.gather(1, best).squeeze(1)


def test_check_double_dqn_target_passes_on_references(capsys):
    for fn in (double_dqn_target, double_index, double_where):
        assert_passes(check_double_dqn_target, fn, capsys, "double_dqn_target")


@pytest.mark.parametrize("mutant, fragments", [
    (double_select_target, [DOUBLE_ANSWER, "That is the DQN target"]),
    (double_online_max, [DOUBLE_ANSWER, "target network must provide the values"]),
    (double_swapped, [DOUBLE_ANSWER, "roles are swapped"]),
    (double_no_mask, [DOUBLE_ANSWER, "terminated transition has no future"]),
    (double_inverted_mask, [DOUBLE_ANSWER, "mask is inverted"]),
    (double_no_squeeze, ["expected (4,)"]),
    (double_column_indexing, ["returned shape (4, 4); expected (4,)"]),
    (double_no_gamma, [DOUBLE_ANSWER, "Discount the next state's value"]),
])
def test_check_double_dqn_target_fails_on_mutants(mutant, fragments):
    assert_fails(check_double_dqn_target, mutant, "double_dqn_target", *fragments)


def test_check_double_dqn_target_not_implemented():
    assert_fails(check_double_dqn_target, not_implemented,
                 "double_dqn_target is not implemented yet")


# ------------------------------------------------------------------------------- Polyak update


def polyak_data(target, source, tau):
    """Correct, on .data, in the style of many tutorials."""
    for t, s in zip(target.parameters(), source.parameters()):
        t.data.copy_(tau * s.data + (1.0 - tau) * t.data)


def polyak_state_dict(target, source, tau):
    """Correct, through state dicts."""
    source_state = source.state_dict()
    target.load_state_dict({key: tau * source_state[key] + (1 - tau) * value
                            for key, value in target.state_dict().items()})


@torch.no_grad()
def polyak_mul_add(target, source, tau):
    for t, s in zip(target.parameters(), source.parameters()):
        t.mul_(1 - tau).add_(tau * s)


def polyak_returns_copy(target, source, tau):
    new = copy.deepcopy(target)
    with torch.no_grad():
        for t, s in zip(new.parameters(), source.parameters()):
            t.copy_(tau * s + (1 - tau) * t)
    return new


def polyak_rebinds(target, source, tau):
    for t, s in zip(target.parameters(), source.parameters()):
        t = tau * s.detach() + (1 - tau) * t  # noqa: F841  (rebinds a local name only)


@torch.no_grad()
def polyak_swapped_tau(target, source, tau):
    for t, s in zip(target.parameters(), source.parameters()):
        t.copy_((1 - tau) * s + tau * t)


def polyak_without_no_grad(target, source, tau):
    for t, s in zip(target.parameters(), source.parameters()):
        t.copy_(tau * s + (1 - tau) * t)


@torch.no_grad()
def polyak_moves_source(target, source, tau):
    for t, s in zip(target.parameters(), source.parameters()):
        s.copy_(tau * s + (1 - tau) * t)
        t.copy_(s)


@torch.no_grad()
def polyak_weights_only(target, source, tau):
    for (name, t), s in zip(target.named_parameters(), source.parameters()):
        if name.endswith("weight"):
            t.copy_(tau * s + (1 - tau) * t)


def polyak_hard_copy(target, source, tau):
    target.load_state_dict(source.state_dict())


@torch.no_grad()
def polyak_first_layer_only(target, source, tau):
    first_target, first_source = next(iter(target.children())), next(iter(source.children()))
    for t, s in zip(first_target.parameters(), first_source.parameters()):
        t.copy_(tau * s + (1 - tau) * t)


def test_check_polyak_update_passes_on_references(capsys):
    for fn in (polyak_update, polyak_data, polyak_state_dict, polyak_mul_add):
        assert_passes(check_polyak_update, fn, capsys, "polyak_update")


@pytest.mark.parametrize("mutant, fragments", [
    (polyak_returns_copy, ["returned a new network and left the target network unchanged",
                           "IN PLACE"]),
    (polyak_rebinds, ["left the target network unchanged", "rebinding a name"]),
    (polyak_swapped_tau, ["tau=0.1", "expected every entry to be 0.1", "roles of τ are swapped"]),
    (polyak_without_no_grad, ["computation graph", "torch.no_grad()"]),
    (polyak_moves_source, ["changed the SOURCE (online) network"]),
    (polyak_weights_only, ["parameter tensor 1", "update EVERY parameter tensor"]),
    (polyak_first_layer_only, ["parameter tensor 2", "update EVERY parameter tensor"]),
    (polyak_hard_copy, ["tau=0.1", "expected every entry to be 0.1", "a hard update"]),
])
def test_check_polyak_update_fails_on_mutants(mutant, fragments):
    assert_fails(check_polyak_update, mutant, "polyak_update", *fragments)


def test_check_polyak_update_not_implemented():
    assert_fails(check_polyak_update, not_implemented, "polyak_update is not implemented yet")


def test_check_polyak_update_leaves_no_graph_on_the_checks_networks():
    """The check's own target networks are built like DQNAgent's: no gradient."""
    check_polyak_update(polyak_update)


# ------------------------------------------------------------------------------- ε schedule


def epsilon_library(step, start, end, duration):
    return linear_schedule(start, end, duration)(step)


def epsilon_interp(step, start, end, duration):
    """Correct: np.interp clamps outside [0, duration] and returns a NumPy float."""
    return np.interp(step, [0, duration], [start, end])


def epsilon_branches(step, start, end, duration):
    if step >= duration:
        return end
    return start + (end - start) * step / duration


def epsilon_unclamped(step, start, end, duration):
    return start + (end - start) * step / duration


def epsilon_off_by_one(step, start, end, duration):
    return start + (end - start) * min(step / (duration - 1), 1.0)


def epsilon_integer_division(step, start, end, duration):
    return start + (end - start) * min(step // duration, 1)


def epsilon_swapped(step, start, end, duration):
    return end + (start - end) * min(step / duration, 1.0)


def epsilon_clamp_against_end(step, start, end, duration):
    """Right for decreasing schedules only."""
    return max(end, start - (start - end) * step / duration)


def epsilon_exponential(step, start, end, duration):
    return end + (start - end) * np.exp(-step / duration)


def epsilon_step_plus_one(step, start, end, duration):
    return start + (end - start) * min((step + 1) / duration, 1.0)


def epsilon_tuple(step, start, end, duration):
    return (start + (end - start) * min(step / duration, 1.0),)


def test_check_linear_epsilon_passes_on_references(capsys):
    for fn in (epsilon_library, epsilon_interp, epsilon_branches):
        assert_passes(check_linear_epsilon, fn, capsys, "linear_epsilon")


@pytest.mark.parametrize("mutant, fragments", [
    (epsilon_unclamped, ["step=5000", "expected 0.05", "clamp step / duration"]),
    (epsilon_off_by_one, ["step=1, start=1.0, end=0.0, duration=10", "expected 0.9",
                          "not step / (duration − 1)"]),
    (epsilon_integer_division, ["step=1", "integer division"]),
    (epsilon_swapped, ["step=0", "start and end are swapped"]),
    (epsilon_clamp_against_end, ["step=300, start=0.0, end=1.0", "increasing schedule"]),
    (epsilon_exponential, ["step=1", "expected 0.9"]),
    (epsilon_step_plus_one, ["step=0", "expected 1", "ε = start"]),
    (epsilon_tuple, ["returned tuple; expected a number"]),
])
def test_check_linear_epsilon_fails_on_mutants(mutant, fragments):
    assert_fails(check_linear_epsilon, mutant, "linear_epsilon", *fragments)


def test_check_linear_epsilon_not_implemented():
    assert_fails(check_linear_epsilon, not_implemented, "linear_epsilon is not implemented yet")
