"""Check of notebook 09's RL fine-tuning exercise: the residual TD3 update step of
``course_utils.agents.rlft`` (``rlft_update(agent, batch, config) -> metrics``).

The check builds a small ``RLFTAgent`` twice from one seed (a small frozen BC policy on PushT's
``[previous, current]`` states, one hidden layer of 16 units), runs the student's update and the
reference on the same three batches with the same random numbers, six calls in all, and compares
the losses and every parameter after each call. The schedule exercises what the update must
respect: ``agent.actor_active`` is False for the first two calls (the critics' warm-up, though
the second is a ``policy_delay``-th call), the third is a critic-only call, the fourth and sixth
step the actor and move the targets, and the fifth bootstraps from targets that differ from the
online networks. A second, shorter run uses ``config.ibrl = False``.

As in the update checks of notebook 08, the agent's Adam optimisers are replaced by plain SGD
(Adam's first step is ±lr whatever the gradient's size, which would hide most mistakes), and the
residual actor's last layer gets random weights, so that ``a(s) ≠ π_BC(s)`` from the start (with
the zero initialisation, the residual penalty and tanh would not show). The BC policy's moves
reach about 2 units (200 px), so that a clamp to TD3's ``[−1, 1]`` box shows. Where the results
differ, the check runs the usual mistakes (the reference with one thing changed) and names the
one whose parameters match the student's.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.buffers import ReplayBatch
from course_utils.checks.common import (call, expect_tensors_unchanged, expect_update_metrics,
                                        first_difference, Fn, passed, references, snapshot)
from course_utils.nn import polyak_update

__all__ = ["check_rlft_update"]

_B = 16  # transitions per batch
_N_BATCHES = 3
_LEARNING_RATE = 0.05  # plain SGD for the actor and the critics
# (batch index, agent.actor_active) of each call: the critics' warm-up, then TD3's delay.
_SCHEDULE = ((0, False), (1, False), (2, True), (0, True), (1, True), (2, True))
_SCHEDULE_NO_IBRL = ((0, True), (1, True))
_FIELDS = ("observations", "actions", "rewards", "next_observations", "terminated", "truncated")
_NETWORKS = {"actor": "the residual actor f_φ", "critics": "the critics",
             "actor_target": "the target actor", "critics_target": "the target critics"}


def _config() -> Any:
    from course_utils.agents.rlft import RLFTConfig

    # ρ = 30 px (0.3 in BC's unit), a large smoothing noise with a tight clip, τ ≠ 1/2 (so that
    # swapping τ and 1 − τ shows) and a residual penalty large enough to move the actor.
    return RLFTConfig(n_layers=1, size=16, residual_scale=30.0, gamma=0.9, tau=0.2,
                      target_noise=0.2, target_noise_clip=0.1, policy_delay=2,
                      residual_penalty=0.5, ibrl=True, seed=6, progress=False)


def _bc_policy() -> nn.Module:
    """A small BC policy on PushT's [previous, current] states, on the CPU (RLFTAgent's device),
    with fixed weights; its output layer scaled so that its moves reach about 2 units."""
    import gymnasium as gym

    from course_utils.agents.bc import BCConfig, BCPolicy, history_space
    from course_utils.envs.pusht import WORKSPACE
    from course_utils.envs.pusht_features import pusht_history_features, pusht_history_frame

    states = gym.spaces.Box(np.zeros(5), np.array([WORKSPACE] * 4 + [2 * np.pi]), dtype=np.float64)
    actions = gym.spaces.Box(0.0, WORKSPACE, (2,), dtype=np.float32)
    policy = BCPolicy(history_space(states), actions,
                      BCConfig(n_layers=1, size=16, seed=3, device="cpu"),
                      pusht_history_features, pusht_history_frame)
    with torch.no_grad():
        policy.net[-2].weight.mul_(8.0)
        policy.net[-2].bias.mul_(8.0)
    return policy


def _agent(config: Any) -> nn.Module:
    """The check's agent: SGD optimisers, a random last layer of the residual actor (copied into
    the target actor), targets that record gradients (so that a target computed outside
    ``torch.no_grad()`` shows; in training they are frozen)."""
    from course_utils.agents.rlft import RLFTAgent

    agent = RLFTAgent(_bc_policy(), config)
    generator = torch.Generator().manual_seed(31)
    with torch.no_grad():
        last = agent.actor[-2]
        last.weight.copy_(torch.randn(last.weight.shape, generator=generator) * 0.5)
        last.bias.copy_(torch.randn(last.bias.shape, generator=generator) * 0.5)
    agent.actor_target.load_state_dict(agent.actor.state_dict())
    agent.actor_optimizer = torch.optim.SGD(agent.actor.parameters(), lr=_LEARNING_RATE)
    agent.critic_optimizer = torch.optim.SGD(agent.critics.parameters(), lr=_LEARNING_RATE)
    agent.actor_target.requires_grad_(True)
    agent.critics_target.requires_grad_(True)
    return agent


def _batches(agent: nn.Module) -> list[ReplayBatch]:
    """Fixed batches of B transitions in the agent's inputs ``x = [features, π_BC(s)]``, on the
    agent's device: rows 0-2 terminated (a success: reward 1), rows 3-5 truncated (not
    terminated), the other rewards sparse or small; actions near BC's."""
    device = next(agent.critics.parameters()).device
    rng = np.random.default_rng(17)

    def pairs() -> torch.Tensor:
        current = np.column_stack([rng.uniform(60, 450, (_B, 2)), rng.uniform(120, 390, (_B, 2)),
                                   rng.uniform(0, 2 * np.pi, _B)])
        previous = current + np.column_stack([rng.normal(0, 8, (_B, 4)), rng.normal(0, 0.05, _B)])
        return torch.tensor(np.concatenate([previous, current], axis=1), dtype=torch.float32)

    batches = []
    for _ in range(_N_BATCHES):
        x, next_x = agent.encode(pairs()), agent.encode(pairs())
        actions = x[:, -2:] + torch.tensor(rng.normal(0, 0.2, (_B, 2)), dtype=torch.float32)
        rewards = torch.tensor(np.where(rng.random(_B) < 0.3, 1.0, 0.0) + rng.normal(0, 0.1, _B),
                               dtype=torch.float32)
        terminated = torch.zeros(_B, dtype=torch.bool)
        truncated = torch.zeros(_B, dtype=torch.bool)
        terminated[:3], truncated[3:6], rewards[:3] = True, True, 1.0
        fields = (x, actions, rewards, next_x, terminated, truncated)
        batches.append(ReplayBatch(*(field.to(device) for field in fields)))
    return batches


def _clone(batch: ReplayBatch) -> ReplayBatch:
    return ReplayBatch(*(getattr(batch, field).clone() for field in _FIELDS))


def _run(update: Fn, config: Any, schedule: Sequence[tuple[int, bool]],
         name: Optional[str] = None) -> tuple[list[dict[str, torch.Tensor]], list[Any], list[int],
                                              nn.Module, list[ReplayBatch], list[ReplayBatch]]:
    """The agent's state, the returned metrics and ``agent.updates`` after each call of the
    schedule; the student's function (``name`` given) through ``call``. Leaves the global
    generator as it found it (and seeds it, so that a draw from it is reproducible)."""
    with torch.random.fork_rng(devices=[]):
        agent = _agent(config)
        batches = _batches(agent)
        copies = [_clone(batch) for batch in batches]
        torch.manual_seed(22)
        states, metrics, counts = [], [], []
        for index, active in schedule:
            agent.actor_active = active
            batch = batches[index]
            result = call(update, name, agent, batch, config) if name else update(agent, batch,
                                                                                   config)
            states.append(snapshot(agent))
            metrics.append(result)
            counts.append(agent.updates)
    return states, metrics, counts, agent, batches, copies


# ------------------------------------------------------------------------------ the mistakes


def _rlft_variant(mistake: str) -> Fn:
    """The reference update with one ``mistake`` (a test double of a student's error); "none"
    is the reference itself. A mistake ending in "_actor" is made in the actor's step only, its
    plain name in the target's next action too."""

    def propose(agent: Any, actor: nn.Module, inputs: torch.Tensor,
                in_target: bool) -> tuple[torch.Tensor, torch.Tensor]:
        made = mistake.removesuffix("_actor")
        if mistake.endswith("_actor") and in_target:
            made = "none"
        raw = actor(inputs)
        residual = raw if made == "no_tanh" else torch.tanh(raw)
        scale = 1.0 if made == "no_rho" else agent.rho
        return (scale * residual if made == "no_base" else inputs[:, -2:] + scale * residual,
                residual)

    def update(agent: Any, batch: ReplayBatch, config: Any) -> dict[str, torch.Tensor]:
        x, next_x = batch.observations, batch.next_observations
        done = batch.terminated | batch.truncated if mistake == "truncated" else batch.terminated
        if mistake == "max":
            reduce = lambda q: q.max(dim=0).values  # noqa: E731
        elif mistake == "one_critic":
            reduce = lambda q: q[0]  # noqa: E731
        else:
            reduce = lambda q: q.min(dim=0).values  # noqa: E731
        ibrl = {"no_ibrl": False, "ibrl_always": True}.get(mistake, config.ibrl)
        with torch.no_grad():
            actor = agent.actor if mistake == "online_actor" else agent.actor_target
            critics = agent.critics if mistake == "online_critics" else agent.critics_target
            next_action, _ = propose(agent, actor, next_x, in_target=True)
            if mistake != "no_noise":
                generator = None if mistake == "global_rng" else agent.generator
                noise = config.target_noise * torch.randn(next_action.shape, generator=generator)
                if mistake != "unclipped_noise":
                    noise = noise.clamp(-config.target_noise_clip, config.target_noise_clip)
                next_action = next_action + noise.to(next_action.device)
            if mistake == "clamped":
                next_action = next_action.clamp(-1.0, 1.0)
            next_q = reduce(agent.q(critics, next_x, next_action))
            if ibrl:
                next_q = torch.maximum(next_q, reduce(agent.q(critics, next_x, next_x[:, -2:])))
            mask = 1.0 if mistake == "no_terminal" else 1.0 - done.float()
            targets = batch.rewards + config.gamma * mask * next_q
        q_values = agent.q(agent.critics, x, batch.actions)
        critic_loss = sum(F.mse_loss(q, targets) for q in q_values)
        if mistake == "critic_loss_mean":
            critic_loss = critic_loss / len(q_values)
        joint = mistake == "actor_into_critic"  # one backward() of the sum of both losses
        agent.critic_optimizer.zero_grad(set_to_none=True)
        if not joint:
            critic_loss.backward()
            agent.critic_optimizer.step()
        agent.updates += 1
        metrics = {"critic_loss": critic_loss.detach(), "q": q_values[0].detach().mean()}
        delayed = agent.updates % config.policy_delay == 0 or mistake == "every_step"
        active = agent.actor_active or mistake == "ignores_active"
        if active and delayed:
            if not joint:
                agent.critics.requires_grad_(False)
            action, residual = propose(agent, agent.actor, x, in_target=False)
            q = agent.q(agent.critics, x, action)
            q_actor = q.min(dim=0).values if mistake == "actor_min_q" else q[0]
            sign = 1.0 if mistake == "actor_sign" else -1.0
            actor_loss = sign * q_actor.mean()
            if mistake == "penalty_mean":
                actor_loss = actor_loss + config.residual_penalty * (residual ** 2).mean()
            elif mistake != "no_penalty":
                actor_loss = actor_loss + config.residual_penalty * (residual ** 2).sum(dim=-1).mean()
            agent.critics.requires_grad_(True)
            agent.actor_optimizer.zero_grad(set_to_none=True)
            if joint:
                (critic_loss + actor_loss).backward()
                agent.critic_optimizer.step()
            else:
                actor_loss.backward()
            agent.actor_optimizer.step()
            if mistake not in ("frozen_targets", "polyak_every_step"):
                tau = {"hard_copy": 1.0, "tau_swapped": 1.0 - config.tau}.get(mistake, config.tau)
                polyak_update(agent.actor_target, agent.actor, tau)
                polyak_update(agent.critics_target, agent.critics, tau)
            metrics["actor_loss"] = actor_loss.detach()
        elif joint:
            critic_loss.backward()
            agent.critic_optimizer.step()
        if mistake == "polyak_every_step":
            polyak_update(agent.actor_target, agent.actor, config.tau)
            polyak_update(agent.critics_target, agent.critics, config.tau)
        return metrics

    return update


_RESIDUAL = "a(s) = π_BC(s) + ρ tanh(f_φ(x)) with π_BC(s) = x[:, -2:] and ρ = agent.rho"
_MISTAKES = [
    ("global_rng", "The smoothing noise was drawn from PyTorch's global generator: draw it from "
                   "the agent's, config.target_noise * torch.randn(shape, "
                   "generator=agent.generator) (so that runs are reproducible)."),
    ("no_noise", "The target's next action is not smoothed: add clip(ε, −c, c), ε ~ N(0, σ²), "
                 "to a'(s') (target policy smoothing; σ = config.target_noise, "
                 "c = config.target_noise_clip, drawn with generator=agent.generator)."),
    ("unclipped_noise", "The smoothing noise is not clipped: add clip(ε, −c, c) with "
                        "c = config.target_noise_clip."),
    ("clamped", "The next action was clipped to [−1, 1]: there is no action box here (TD3 of "
                "notebook 08 had one). Actions are moves in BC's unit (100 px) and may exceed 1: "
                "a'(s') + clip(ε, −c, c), nothing more."),
    ("max", "The target takes the MAXIMUM of the two target critics: clipped double Q uses their "
            "minimum, min_j Q'_j(s', ·), which is what counters overestimation."),
    ("one_critic", "The target uses one target critic only: take the minimum of BOTH, "
                   "min_j Q'_j(s', ·) (clipped double Q)."),
    ("no_terminal", "A terminated transition has no future: its target is the reward alone, "
                    "y = r (multiply the bootstrap term by 1 − batch.terminated)."),
    ("truncated", "A truncated transition is treated as terminal: mask the bootstrap with "
                  "batch.terminated only. A time limit ends the episode, not the task: s' still "
                  "has a future, so its target bootstraps."),
    ("online_actor", "The target's next action comes from the ONLINE actor: use the target "
                     "actor, agent.act(next_x, target=True) (the wrong network)."),
    ("online_critics", "The target is computed with the ONLINE critics: bootstrap from the target "
                       "critics, agent.critics_target (the wrong network)."),
    ("no_ibrl", "With config.ibrl the target bootstraps from the better of the two proposals: "
                "y = r + γ (1 − terminated) max(min_j Q'_j(s', ã'), min_j Q'_j(s', π_BC(s'))), "
                "π_BC(s') = next_x[:, -2:] (IBRL)."),
    ("ibrl_always", "With config.ibrl = False the target uses the residual actor's proposal "
                    "alone: bootstrap from the better of π_BC(s') and a'(s') only when "
                    "config.ibrl is True."),
    ("critic_loss_mean", "The critics' loss is the SUM of the two critics' mean squared errors, "
                         "Σ_j (1/B) Σ (Q_j(s, a) − y)², not their average."),
    ("ignores_active", "The actor moved while agent.actor_active was False: the critics learn "
                       "alone until then (step the actor only when agent.actor_active and "
                       "agent.updates % config.policy_delay == 0)."),
    ("every_step", "The actor (and the targets) moved at a call that is not a "
                   "config.policy_delay-th one: TD3 delays them, one actor step and one Polyak "
                   "update every config.policy_delay critic updates (agent.updates counts them)."),
    ("polyak_every_step", "The target networks moved at every call: the Polyak updates go with "
                          "the actor's (delayed) step, after it."),
    ("frozen_targets", "The target networks never move: after the actor's step, "
                       "polyak_update(target, online, config.tau) for the actor and the critics."),
    ("hard_copy", "The target networks were copied from the online ones (a hard update, τ = 1): "
                  "move them a fraction τ = config.tau, θ' ← τ θ + (1 − τ) θ' "
                  "(polyak_update(target, online, config.tau))."),
    ("tau_swapped", "The target networks moved by 1 − τ instead of τ: θ' ← τ θ + (1 − τ) θ' "
                    "(polyak_update(target, online, config.tau), target first), so that they "
                    "trail the online networks slowly."),
    ("actor_sign", "The actor climbs down the critic: its loss is −mean Q_1(s, a(s)) + β "
                   "mean ‖tanh f_φ‖² (optimisers minimise; the actor must maximise Q)."),
    ("actor_min_q", "The actor's loss uses the minimum of the two critics: TD3's actor follows "
                    "the first critic alone, −mean Q_1(s, a(s)) (agent.critics[0]); the minimum "
                    "belongs in the target."),
    ("no_penalty", "The residual penalty is missing from the actor's loss: add β mean ‖tanh "
                   "f_φ(x)‖² (β = config.residual_penalty; squared residual summed over the two "
                   "action dimensions, averaged over the batch), which keeps a near π_BC."),
    ("penalty_mean", "The residual penalty averages over the two action dimensions: it is β "
                     "times the batch mean of ‖tanh f_φ(x)‖², the squared residual SUMMED over "
                     "the action dimensions ((residual ** 2).sum(dim=-1).mean())."),
    ("actor_into_critic", "The actor's loss moved the critics: its gradient must reach the "
                          "residual actor only. Take the critics' step first, then compute the "
                          "actor's loss with the critics frozen "
                          "(agent.critics.requires_grad_(False) … requires_grad_(True)), and "
                          "never backward() the sum of both losses."),
]
for _where, _suffix in (("", ""), (" in the actor's step", "_actor")):
    _MISTAKES += [
        ("no_rho" + _suffix, f"The residual scale ρ is ignored{_where}: {_RESIDUAL} (agent.act "
                             "does it), so that the residual moves BC's action by at most "
                             "config.residual_scale px."),
        ("no_base" + _suffix, f"The BC action is missing{_where}: the residual is a correction "
                              f"added to π_BC(s), {_RESIDUAL}."),
        ("no_tanh" + _suffix, f"The residual is not squashed{_where}: {_RESIDUAL}; tanh keeps "
                              "it in [−1, 1] (and the penalty is on tanh f_φ)."),
    ]


# --------------------------------------------------------------------------------- the check


def _diagnose(state: dict[str, torch.Tensor], call_index: int, config: Any,
              schedule: Sequence[tuple[int, bool]], default: str) -> str:
    for mistake, hint in _MISTAKES:
        try:
            wrong_states = _run(_rlft_variant(mistake), config, schedule[:call_index + 1])[0]
        except RuntimeError:
            continue
        if first_difference(state, wrong_states[call_index], _NETWORKS) is None:
            return hint
    return default


def _describe(schedule: Sequence[tuple[int, bool]], call_index: int, config: Any) -> str:
    index, active = schedule[call_index]
    updates = call_index + 1
    if not active:
        what = "agent.actor_active = False: critics only"
    elif updates % config.policy_delay:
        what = f"critic update {updates}: critics only"
    else:
        what = f"critic update {updates}: critics, then the actor and the targets"
    return (f"call {call_index + 1} of {len(schedule)} (batch {index + 1}, {what}"
            f"{'' if config.ibrl else ', config.ibrl = False'})")


def _compare(fn: Fn, name: str, config: Any, schedule: Sequence[tuple[int, bool]]) -> int:
    """Run ``fn`` and the reference on ``schedule``; raise at the first difference."""
    from course_utils.agents.rlft import rlft_update

    states, metrics, counts, agent, batches, copies = _run(fn, config, schedule, name)
    for batch, copy in zip(batches, copies):
        expect_tensors_unchanged(name, {field: getattr(batch, field) for field in _FIELDS},
                                 {field: getattr(copy, field) for field in _FIELDS})
    for label in ("critics_target", "actor_target"):
        if any(p.grad is not None and p.grad.abs().sum() > 0
               for p in getattr(agent, label).parameters()):
            raise AssertionError(
                f"After {name}, {_NETWORKS[label]} have gradients: the target y was computed with "
                "autograd recording, so the critics' loss differentiates through it. Compute y "
                "inside `with torch.no_grad():` (it is a regression target, a constant).")
    expected_states, expected_metrics, expected_counts = _run(rlft_update, config, schedule)[:3]
    for call_index in range(len(schedule)):
        shown = f"{name}(agent, batch, config), {_describe(schedule, call_index, config)}"
        expect_update_metrics(
            metrics[call_index], expected_metrics[call_index], ("critic_loss", "actor_loss"), shown,
            lambda key, want: _diagnose(states[call_index], call_index, config, schedule,
                                        f"The {key} must be {want:.5f}."))
        if counts[call_index] != expected_counts[call_index]:
            raise AssertionError(
                f"{shown}: agent.updates is {counts[call_index]} after the call; expected "
                f"{expected_counts[call_index]}. It counts the critic updates: add 1 at every "
                "call (agent.updates += 1, after the critics' step); the policy delay reads it.")
        different = first_difference(states[call_index], expected_states[call_index], _NETWORKS)
        if different is not None:
            hint = _diagnose(states[call_index], call_index, config, schedule,
                             "Compare your steps with the equations above.")
            raise AssertionError(f"{shown}: the parameters of {different} differ from the "
                                 f"reference's after the update. {hint}")
    return len(schedule)


@references("course_utils.agents.rlft.rlft_update")
def check_rlft_update(fn: Fn) -> None:
    """Check ``fn(agent, batch, config) -> metrics`` is the residual TD3 update of
    ``agents/rlft.py``: both critics' step on ``y = r + γ (1 − terminated) min_j Q'_j(s', ã')``
    with ``ã' = a'(s') + clip(ε, −c, c)`` (IBRL: the better of that and ``π_BC(s')``), then, when
    ``agent.actor_active`` and every ``policy_delay``-th call, the actor's step on
    ``−mean Q_1(s, a(s)) + β mean ‖tanh f_φ‖²`` and the Polyak updates of both targets."""
    name = "rlft_update"
    config = _config()
    n = _compare(fn, name, config, _SCHEDULE)
    n += _compare(fn, name, dataclasses.replace(config, ibrl=False), _SCHEDULE_NO_IBRL)
    passed(name, n)
