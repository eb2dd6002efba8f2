"""Unit tests of notebook 04's checks (course_utils.checks.dqn): each check passes on
reference implementations (several correct styles) and fails, with a helpful message, on
plausible wrong answers of students."""

from __future__ import annotations

import copy

import pytest
import torch

from check_helpers import assert_fails, assert_passes, not_implemented, own_copy
import torch.nn.functional as F
from torch import nn

from course_utils.agents.dqn import double_dqn_target, dqn_update
from course_utils.checks import (
    check_double_dqn_target,
    check_dqn_update,
    check_epsilon_greedy_actions,
    check_polyak_update,
)
from course_utils.nn import polyak_update

# The package's answers as a student would write them: the checks refuse the package's own
# functions (checks.common.references).
double_dqn_target, dqn_update, polyak_update = map(
    own_copy, (double_dqn_target, dqn_update, polyak_update))

# The known-answer batch of the checks: B = 4 transitions, A = 2 actions, transition 2 terminal.
DOUBLE_ANSWER = "expected [1.9, 0.0, -1.0, 2.0]"


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
    """DQN's target: the target network selects and evaluates."""
    return rewards + gamma * (1 - terminated) * next_q_target.max(dim=1).values


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
    """The check's own target networks are built like QNetworks': no gradient."""
    check_polyak_update(polyak_update)


# ------------------------------------------------------------------------------- ε-greedy


def greedy_where(q_values, epsilon, generator):
    """Correct: one coin per row, a random action per row, torch.where."""
    B, A = q_values.shape
    explore = torch.rand(B, generator=generator) < epsilon
    return torch.where(explore, torch.randint(A, (B,), generator=generator), q_values.argmax(dim=1))


def greedy_loop(q_values, epsilon, generator):
    """Correct, a row at a time."""
    actions = []
    for row in q_values:
        if torch.rand((), generator=generator) < epsilon:
            actions.append(int(torch.randint(len(row), (), generator=generator)))
        else:
            actions.append(int(row.argmax()))
    return torch.tensor(actions)


def greedy_non_greedy_random(q_values, epsilon, generator):
    """The random action excludes the greedy one."""
    B, A = q_values.shape
    best = q_values.argmax(dim=1)
    offset = torch.randint(1, A, (B,), generator=generator)
    explore = torch.rand(B, generator=generator) < epsilon
    return torch.where(explore, (best + offset) % A, best)


def greedy_inverted(q_values, epsilon, generator):
    B, A = q_values.shape
    explore = torch.rand(B, generator=generator) >= epsilon
    return torch.where(explore, torch.randint(A, (B,), generator=generator), q_values.argmax(dim=1))


def greedy_one_coin(q_values, epsilon, generator):
    B, A = q_values.shape
    if torch.rand((), generator=generator) < epsilon:
        return torch.randint(A, (B,), generator=generator)
    return q_values.argmax(dim=1)


def greedy_randint_too_small(q_values, epsilon, generator):
    B, A = q_values.shape
    explore = torch.rand(B, generator=generator) < epsilon
    return torch.where(explore, torch.randint(A - 1, (B,), generator=generator),
                       q_values.argmax(dim=1))


def greedy_global_generator(q_values, epsilon, generator):
    B, A = q_values.shape
    explore = torch.rand(B) < epsilon
    return torch.where(explore, torch.randint(A, (B,)), q_values.argmax(dim=1))


def greedy_argmax_dim0(q_values, epsilon, generator):
    return q_values.argmax(dim=0)


def greedy_float(q_values, epsilon, generator):
    return greedy_where(q_values, epsilon, generator).float()


def test_check_epsilon_greedy_actions_passes_on_references(capsys):
    for fn in (greedy_where, greedy_loop):
        assert_passes(check_epsilon_greedy_actions, fn, capsys, "epsilon_greedy_actions")


@pytest.mark.parametrize("mutant, fragments", [
    (greedy_non_greedy_random, ["epsilon=1.0", "uniform over ALL actions"]),
    (greedy_inverted, ["epsilon=0.0", "probability of a random action"]),
    (greedy_one_coin, ["epsilon=0.2", "coin PER ROW"]),
    (greedy_randint_too_small, ["Action 3 is never drawn"]),
    (greedy_global_generator, ["called twice", "`generator` argument"]),
    (greedy_argmax_dim0, ["returned shape (3,); expected (5,)"]),
    (greedy_float, ["dtype torch.float32", "integer actions"]),
])
def test_check_epsilon_greedy_actions_fails_on_mutants(mutant, fragments):
    assert_fails(check_epsilon_greedy_actions, mutant, "epsilon_greedy_actions", *fragments)


# ------------------------------------------------------------------------------- the update step
# Each mutant is the reference with one mistake a student makes, written as a student would.


def _update(nets, optimizer, batch, config, step, *, select="config", evaluate="target",
            done="terminated", grad_target=False, loss_fn=F.smooth_l1_loss, sign=1.0, clip=True,
            zero_grad=True, target_update="due", tau=None):
    q = nets.online(batch.observations).gather(1, batch.actions[:, None]).squeeze(1)
    context = torch.enable_grad() if grad_target else torch.no_grad()
    with context:
        next_online, next_target = nets.online(batch.next_observations), nets.target(batch.next_observations)
        chooser = {"config": next_online if config.double else next_target, "online": next_online,
                   "target": next_target}[select]
        values = {"target": next_target, "online": next_online}[evaluate]
        value = values.gather(1, chooser.argmax(dim=1, keepdim=True)).squeeze(1)
        d = {"terminated": batch.terminated.float(),
             "either": (batch.terminated | batch.truncated).float()}[done]
        y = batch.rewards + config.gamma * (1 - d) * value
    loss = sign * loss_fn(q, y)
    if zero_grad:
        optimizer.zero_grad()
    loss.backward()
    if clip:
        nn.utils.clip_grad_norm_(nets.online.parameters(), config.max_grad_norm)
    optimizer.step()
    if target_update == "always" or (target_update == "due" and step % config.target_update_every == 0):
        polyak_update(nets.target, nets.online, config.tau if tau is None else tau)
    return {"loss": loss.detach(), "q": q.detach().mean()}


def update_separate_passes(nets, optimizer, batch, config, step):
    """Correct, with separate forward passes and F.huber_loss."""
    return _update(nets, optimizer, batch, config, step, loss_fn=F.huber_loss)


def update_online_only(nets, optimizer, batch, config, step):
    return _update(nets, optimizer, batch, config, step, select="online", evaluate="online")


def update_online_only_with_grad(nets, optimizer, batch, config, step):
    return _update(nets, optimizer, batch, config, step, select="online", evaluate="online",
                   grad_target=True)


def update_target_only(nets, optimizer, batch, config, step):
    """DQN's target whatever config.double says."""
    return _update(nets, optimizer, batch, config, step, select="target")


def update_no_no_grad(nets, optimizer, batch, config, step):
    return _update(nets, optimizer, batch, config, step, grad_target=True)


def update_truncated_terminal(nets, optimizer, batch, config, step):
    return _update(nets, optimizer, batch, config, step, done="either")


def update_frozen_target(nets, optimizer, batch, config, step):
    return _update(nets, optimizer, batch, config, step, target_update="never")


def update_target_every_step(nets, optimizer, batch, config, step):
    return _update(nets, optimizer, batch, config, step, target_update="always")


def update_hard_copy(nets, optimizer, batch, config, step):
    return _update(nets, optimizer, batch, config, step, tau=1.0)


def update_ascent(nets, optimizer, batch, config, step):
    return _update(nets, optimizer, batch, config, step, sign=-1.0)


def update_mse(nets, optimizer, batch, config, step):
    return _update(nets, optimizer, batch, config, step, loss_fn=F.mse_loss)


def update_summed(nets, optimizer, batch, config, step):
    return _update(nets, optimizer, batch, config, step,
                   loss_fn=lambda q, y: F.smooth_l1_loss(q, y, reduction="sum"))


def update_no_clip(nets, optimizer, batch, config, step):
    return _update(nets, optimizer, batch, config, step, clip=False)


def update_no_zero_grad(nets, optimizer, batch, config, step):
    return _update(nets, optimizer, batch, config, step, zero_grad=False)


def update_swapped(nets, optimizer, batch, config, step):
    return _update(nets, optimizer, batch, config, step, select="target", evaluate="online")


def update_no_metrics(nets, optimizer, batch, config, step):
    _update(nets, optimizer, batch, config, step)
    return None


def update_changes_batch(nets, optimizer, batch, config, step):
    batch.rewards.clamp_(-1, 1)  # "reward clipping", in place
    return _update(nets, optimizer, batch, config, step)


def test_check_dqn_update_passes_on_references(capsys):
    for fn in (dqn_update, update_separate_passes):
        assert_passes(check_dqn_update, fn, capsys, "dqn_update")


@pytest.mark.parametrize("mutant, fragments", [
    (update_online_only, ["Double DQN", "ONLINE network alone"]),
    (update_online_only_with_grad, ["ONLINE network, and with gradients"]),
    (update_target_only, ["Double DQN", "config.double was ignored"]),
    (update_no_no_grad, ["TARGET network received gradients", "torch.no_grad()"]),
    (update_truncated_terminal, ["truncated transition was treated as terminal"]),
    (update_frozen_target, ["target network's parameters", "never moved"]),
    (update_target_every_step, ["step=1: the target must not move", "only when step %"]),
    (update_hard_copy, ["became a copy of the online one"]),
    (update_ascent, ["wrong sign"]),
    (update_mse, ["Huber loss"]),
    (update_summed, ["the loss differs", "summed over the batch"]),
    (update_no_clip, ["not clipped"]),
    (update_no_zero_grad, ["zero_grad"]),
    (update_swapped, ["roles are swapped"]),
    (update_no_metrics, ["returned NoneType; expected a dict with the loss"]),
    (update_changes_batch, ["modified batch.rewards in place"]),
])
def test_check_dqn_update_fails_on_mutants(mutant, fragments):
    assert_fails(check_dqn_update, mutant, "dqn_update", *fragments)


def test_check_dqn_update_not_implemented():
    assert_fails(check_dqn_update, not_implemented, "dqn_update is not implemented yet")


def test_the_checks_variant_without_mistake_is_the_reference():
    """The check's mistake variants start from the same update as the reference."""
    from course_utils.checks import dqn as checks

    for double, every, step, _ in checks._CASES:
        expected, expected_state, _, _ = checks._outcome(dqn_update, double, every, step)
        _, state, _, _ = checks._outcome(
            lambda *args: {"loss": checks._variant(*args)}, double, every, step)
        assert checks._same(state, expected_state)


def test_every_named_mistake_changes_some_case():
    """A hint that no case can produce would be dead text."""
    from course_utils.checks import dqn as checks

    for mistake in checks._UPDATE_HINTS:
        changes = []
        for double, every, step, _ in checks._CASES:
            expected, expected_state, _, _ = checks._outcome(dqn_update, double, every, step)
            wrong, wrong_state, _, _ = checks._outcome(None, double, every, step, mistake)
            changes.append(not (torch.isclose(wrong["loss"], expected["loss"])
                                and checks._same(wrong_state, expected_state)))
        assert any(changes), mistake
