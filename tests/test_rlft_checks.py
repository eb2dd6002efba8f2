"""Notebook 09's RL fine-tuning check (course_utils.checks.rlft.check_rlft_update): it passes on
correct solutions (the library's and another correct style) and fails, naming the mistake, on
the mistakes students make. What every check must do (fail when unfinished, when returning
nothing, ...) is tested for all exported checks at once in test_every_check.py."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from check_helpers import assert_fails, assert_passes, not_implemented, own_copy
from course_utils.agents import rlft
from course_utils.checks import check_rlft_update
from course_utils.checks.rlft import _MISTAKES, _rlft_variant
from course_utils.nn import polyak_update

# The package's answer as a student would write it: the check refuses the package's own function.
rlft_update = own_copy(rlft.rlft_update)
HINTS = dict(_MISTAKES)


def rlft_update_by_hand(agent, batch, config):
    """Correct, in another style: the critics called one by one, torch.minimum, IBRL by
    torch.where, the critics not frozen for the actor's loss (their gradient is cleared before
    their next step), zero_grad() with its defaults."""
    x, next_x = batch.observations, batch.next_observations
    with torch.no_grad():
        base = next_x[:, -2:]
        proposal = base + agent.rho * torch.tanh(agent.actor_target(next_x))
        noise = torch.randn(proposal.shape, generator=agent.generator) * config.target_noise
        proposal = proposal + torch.clamp(noise, -config.target_noise_clip, config.target_noise_clip)
        q1, q2 = (critic(torch.cat([next_x, proposal], -1)).squeeze(-1)
                  for critic in agent.critics_target)
        value = torch.minimum(q1, q2)
        if config.ibrl:
            b1, b2 = (critic(torch.cat([next_x, base], -1)).squeeze(-1)
                      for critic in agent.critics_target)
            value = torch.where(torch.minimum(b1, b2) > value, torch.minimum(b1, b2), value)
        y = batch.rewards + config.gamma * (~batch.terminated).float() * value
    inputs = torch.cat([x, batch.actions], -1)
    q_values = [critic(inputs).squeeze(-1) for critic in agent.critics]
    critic_loss = F.mse_loss(q_values[0], y) + F.mse_loss(q_values[1], y)
    agent.critic_optimizer.zero_grad()
    critic_loss.backward()
    agent.critic_optimizer.step()
    agent.updates += 1
    metrics = {"critic_loss": critic_loss.detach()}
    if agent.actor_active and agent.updates % config.policy_delay == 0:
        residual = torch.tanh(agent.actor(x))
        action = x[:, -2:] + agent.rho * residual
        q = agent.critics[0](torch.cat([x, action], -1)).squeeze(-1)
        actor_loss = -q.mean() + config.residual_penalty * residual.pow(2).sum(-1).mean()
        agent.actor_optimizer.zero_grad()
        actor_loss.backward()
        agent.actor_optimizer.step()
        for target, online in ((agent.actor_target, agent.actor),
                               (agent.critics_target, agent.critics)):
            polyak_update(target, online, config.tau)
        metrics["actor_loss"] = actor_loss.detach()
    return metrics


@pytest.mark.parametrize("fn", [rlft_update, _rlft_variant("none"), rlft_update_by_hand],
                         ids=["reference", "variant_none", "by_hand"])
def test_check_rlft_update_passes_correct_implementations(fn, capsys):
    assert_passes(check_rlft_update, fn, capsys, "rlft_update")


def test_the_success_line():
    """Six calls with IBRL, two without."""
    import io
    from contextlib import redirect_stdout

    out = io.StringIO()
    with redirect_stdout(out):
        check_rlft_update(rlft_update)
    assert out.getvalue() == "✓ rlft_update: all 8 tests passed.\n"


# Each mistake, a distinctive part of its message, and the call at which it first shows.
MISTAKES = {
    "global_rng": ["global generator", "generator=agent.generator"],
    "no_noise": ["not smoothed", "call 1 of 6"],
    "unclipped_noise": ["noise is not clipped", "call 1 of 6"],
    "clamped": ["no action box", "call 1 of 6"],
    "max": ["MAXIMUM of the two target critics", "call 1 of 6"],
    "one_critic": ["one target critic only", "call 1 of 6"],
    "no_terminal": ["has no future", "1 − batch.terminated", "call 1 of 6"],
    "truncated": ["truncated transition is treated as terminal", "call 1 of 6"],
    "online_actor": ["ONLINE actor", "call 5 of 6"],
    "online_critics": ["ONLINE critics", "call 2 of 6"],
    "no_ibrl": ["better of the two proposals", "call 1 of 6"],
    "ibrl_always": ["config.ibrl = False", "call 1 of 2"],
    "critic_loss_mean": ["SUM of the two critics", "call 1 of 6"],
    "ignores_active": ["actor_active was False", "call 2 of 6"],
    "every_step": ["not a config.policy_delay-th one", "call 3 of 6"],
    "polyak_every_step": ["moved at every call", "call 1 of 6"],
    "frozen_targets": ["target networks never move", "call 4 of 6"],
    "hard_copy": ["hard update", "call 4 of 6"],
    "tau_swapped": ["moved by 1 − τ instead of τ", "call 4 of 6"],
    "actor_sign": ["climbs down the critic", "call 4 of 6"],
    "actor_min_q": ["first critic alone", "call 4 of 6"],
    "no_penalty": ["residual penalty is missing", "call 4 of 6"],
    "penalty_mean": ["SUMMED over the action dimensions", "call 4 of 6"],
    "actor_into_critic": ["actor's loss moved the critics", "call 4 of 6"],
    "no_rho": ["residual scale ρ is ignored:", "call 1 of 6"],
    "no_base": ["BC action is missing:", "call 1 of 6"],
    "no_tanh": ["residual is not squashed:", "call 1 of 6"],
    "no_rho_actor": ["residual scale ρ is ignored in the actor's step", "call 4 of 6"],
    "no_base_actor": ["BC action is missing in the actor's step", "call 4 of 6"],
    "no_tanh_actor": ["residual is not squashed in the actor's step", "call 4 of 6"],
}


def test_every_diagnosed_mistake_is_tested_and_has_its_own_message():
    assert set(MISTAKES) == set(HINTS) and len(HINTS) == len(_MISTAKES)
    assert len(set(HINTS.values())) == len(HINTS)


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_check_rlft_update_names_each_mistake(mistake, capsys):
    message = assert_fails(check_rlft_update, _rlft_variant(mistake), "rlft_update",
                           *MISTAKES[mistake])
    assert HINTS[mistake] in message
    for other, hint in HINTS.items():
        assert other == mistake or hint not in message
    assert "✓" not in capsys.readouterr().out


def rlft_update_target_with_grad(agent, batch, config):
    """The target computed with autograd recording (no torch.no_grad())."""
    next_x = batch.next_observations
    next_action = agent.act(next_x, target=True)
    noise = config.target_noise * torch.randn(next_action.shape, generator=agent.generator)
    next_action = next_action + noise.clamp(-config.target_noise_clip, config.target_noise_clip)
    next_q = agent.q(agent.critics_target, next_x, next_action).min(dim=0).values
    if config.ibrl:
        next_q = torch.maximum(next_q, agent.q(agent.critics_target, next_x, next_x[:, -2:]).min(dim=0).values)
    targets = batch.rewards + config.gamma * (1.0 - batch.terminated.float()) * next_q
    critic_loss = sum(F.mse_loss(q, targets) for q in agent.q(agent.critics, batch.observations, batch.actions))
    agent.critic_optimizer.zero_grad()
    critic_loss.backward()
    agent.critic_optimizer.step()
    agent.updates += 1
    return {"critic_loss": critic_loss.detach()}


def rlft_update_no_counter(agent, batch, config):
    """The reference without agent.updates += 1 (it restores the count the reference added)."""
    metrics = _rlft_variant("none")(agent, batch, config)
    agent.updates -= 1
    return metrics


def rlft_update_in_place(agent, batch, config):
    """Scales the rewards of the batch in place."""
    batch.rewards.mul_(2.0)
    return _rlft_variant("none")(agent, batch, config)


@pytest.mark.parametrize("mutant, fragments", [
    (lambda agent, batch, config: {}, ["call 1 of 6", "returned no 'critic_loss'"]),
    (lambda agent, batch, config: None, ["returned NoneType; expected a dict"]),
    (not_implemented, ["rlft_update is not implemented yet"]),
    (rlft_update_target_with_grad, ["have gradients", "torch.no_grad()"]),
    (rlft_update_no_counter, ["agent.updates is 0 after the call; expected 1"]),
    (rlft_update_in_place, ["modified its input rewards in place"]),
])
def test_check_rlft_update_fails_on_mutants(mutant, fragments, capsys):
    assert_fails(check_rlft_update, mutant, *fragments)
    assert "✓" not in capsys.readouterr().out


def test_a_stub_that_returns_the_metrics_without_updating_fails():
    def stub(agent, batch, config):
        agent.updates += 1
        return {"critic_loss": torch.tensor(0.0), "actor_loss": torch.tensor(0.0)}

    assert_fails(check_rlft_update, stub, "critic_loss = 0.00000; expected")


def test_the_check_leaves_the_global_generator_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check_rlft_update(rlft_update)
    assert torch.equal(torch.rand(3), expected)
