"""Checks of notebook 05's exercises: the score of a softmax policy, reward-to-go (plain, and
discounted with a bootstrap value), and the REINFORCE update.

The update check runs the student's update and the reference on identical agents (same initial
weights) and one fixed batch of three episodes (the second one truncated), twice in a row, and
compares the returned losses and the parameters after each update. A loss that differs is
compared with the losses that the usual mistakes give, to name the mistake.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Optional

import gymnasium as gym
import numpy as np
import torch

from course_utils.agents.reinforce import (EpisodeBatch, ReinforceAgent, ReinforceConfig,
                                           discounted_reward_to_go, reinforce_update)
from course_utils.checks.common import (call, expect_close, expect_tensor, expect_tensors_unchanged,
                                        fmt, Fn, passed, references)

__all__ = ["check_discounted_reward_to_go", "check_reinforce_update", "check_reward_to_go",
           "check_softmax_score"]


# ------------------------------------------------------------------------------- softmax score


def check_softmax_score(fn: Fn) -> None:
    """Check ``fn(logits (B, n), actions (B,)) -> (B, n)`` is ``∇_logits log softmax(logits)_a``."""
    name = "softmax_score"
    logits, actions = torch.tensor([[0.0, 0.0], [0.0, 0.0]]), torch.tensor([0, 1])
    shown = f"{name}(logits={fmt(logits)}, actions={fmt(actions)})"
    expect_close(call(fn, name, logits, actions), torch.tensor([[0.5, -0.5], [-0.5, 0.5]]), shown,
                 "With two equally likely actions, the chosen action's logit goes up by 1 − π = 0.5 "
                 "and the other's down by π = 0.5.")
    logits, actions = torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([0])
    shown = f"{name}(logits={fmt(logits)}, actions={fmt(actions)})"
    probs = torch.softmax(logits, -1)
    expected = torch.nn.functional.one_hot(actions, 3) - probs
    result = call(fn, name, logits.clone(), actions.clone())
    expect_tensor(result, (1, 3), shown)
    if torch.allclose(result.detach().float(), -expected, atol=1e-4):
        raise AssertionError(f"{shown} returned {fmt(result)}; expected {fmt(expected)}. The sign is "
                             "reversed: the chosen action's logit must go UP (log π_a increases).")
    if torch.allclose(result.detach().float(), torch.nn.functional.one_hot(actions, 3).float(),
                      atol=1e-4):
        raise AssertionError(f"{shown} returned {fmt(result)}; expected {fmt(expected)}. The "
                             "normaliser log Σ_b exp(z_b) depends on every logit: its derivative "
                             "adds −π_b to each component.")
    expect_close(result, expected, shown, "Differentiate log π_a = z_a − log Σ_b exp(z_b) with "
                 "respect to each logit z_b.")
    # Random logits: against autograd, and the lemma E_{a~π}[∇ log π(a)] = 0 row by row.
    generator = torch.Generator().manual_seed(5)
    logits = torch.randn(6, 4, generator=generator) * 2
    actions = torch.randint(0, 4, (6,), generator=generator)
    leaf = logits.clone().requires_grad_(True)
    log_pi = torch.log_softmax(leaf, -1).gather(1, actions[:, None]).sum()
    (autograd,) = torch.autograd.grad(log_pi, leaf)
    shown = f"{name}(6 random rows of 4 logits, their actions)"
    result = call(fn, name, logits.clone(), actions.clone())
    expect_close(result, autograd, shown, "Each row must equal the gradient of that row's "
                 "log π(a|·) with respect to its logits (as autograd computes it).")
    every_action = torch.arange(4).repeat(6)
    scores = call(fn, name, logits.repeat_interleave(4, 0), every_action).reshape(6, 4, 4)
    expected_score = (torch.softmax(logits, -1)[:, :, None] * scores).sum(1)
    expect_close(expected_score, torch.zeros(6, 4), f"Σ_a π(a) {name}(logits, a)",
                 "The expected score under π must be zero (the lemma).")
    passed(name, 5)


# ------------------------------------------------------------------------------- reward-to-go


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


@references("course_utils.returns.reward_to_go",
            "course_utils.agents.reinforce.discounted_reward_to_go")
def check_discounted_reward_to_go(fn: Fn) -> None:
    """Check ``fn(rewards (T,), gamma, last_value=0.0) -> (T,)`` computes
    ``G_t = r_t + γ G_{t+1}`` backwards from ``G_T = last_value``."""
    name = "discounted_reward_to_go"
    n = _reward_to_go_cases(name, lambda r: call(fn, name, r, gamma=1.0))
    examples = [
        ([1.0, 1.0, 1.0], 0.5, 0.0, [1.75, 1.5, 1.0],
         "Discount relative to the CURRENT step: γ^(k−t), not γ^k."),
        ([0.0, 0.0, 10.0], 0.9, 0.0, [8.1, 9.0, 10.0], "A reward k steps ahead is worth γ^k of it now."),
        ([1.0, 2.0, 3.0], 0.0, 0.0, [1.0, 2.0, 3.0], "With γ = 0 only the immediate reward counts."),
        ([1.0, 1.0, 1.0], 0.5, 8.0, [2.75, 3.5, 5.0],
         "The recursion starts from G_T = last_value: the last step's return is r_{T−1} + γ "
         "last_value, and the bootstrap reaches step t discounted by γ^(T−t)."),
        ([0.0, 2.0], 1.0, 10.0, [12.0, 12.0], "With γ = 1 the bootstrap value adds to every G_t."),
    ]
    for rewards, gamma, last_value, expected, hint in examples:
        args = f"{rewards}, gamma={gamma}" + (f", last_value={last_value}" if last_value else "")
        kwargs = {"last_value": last_value} if last_value else {}
        result = call(fn, name, torch.tensor(rewards), gamma=gamma, **kwargs)
        expect_close(result, torch.tensor(expected), f"{name}({args})", hint)
    last = torch.tensor(4.0)
    result = call(fn, name, torch.tensor([1.0, 1.0]), gamma=0.5, last_value=last)
    expect_close(result, torch.tensor([2.5, 3.0]), f"{name}([1.0, 1.0], gamma=0.5, "
                 "last_value=tensor(4.))", "last_value may also be a 0-d tensor, such as V(o_T).")
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
    passed(name, n + len(examples) + 3)


# ------------------------------------------------------------------------------- the update

# One batch of three episodes of 5, 3 and 4 steps; the second was truncated, the others terminated.
_LENGTHS = [5, 3, 4]
_TRUNCATED = [False, True, False]
_CASES = [  # (what the case is, the config's settings)
    ("reward-to-go, γ = 1, no baseline", dict(reward_to_go=True, gamma=1.0, baseline=False)),
    ("total return, γ = 1, no baseline", dict(reward_to_go=False, gamma=1.0, baseline=False)),
    ("reward-to-go, γ = 0.9, baseline", dict(reward_to_go=True, gamma=0.9, baseline=True,
                                              value_steps=3)),
]


def _fixed_batch() -> EpisodeBatch:
    generator = torch.Generator().manual_seed(0)
    steps, episodes = sum(_LENGTHS), len(_LENGTHS)
    return EpisodeBatch(
        observations=torch.randn(steps, 4, generator=generator),
        actions=torch.randint(0, 2, (steps,), generator=generator),
        rewards=torch.rand(steps, generator=generator) * 2.0 - 0.5,
        lengths=list(_LENGTHS),
        truncated=torch.tensor(_TRUNCATED),
        final_observations=torch.randn(episodes, 4, generator=generator),
    )


def _fixed_agent(config: ReinforceConfig) -> ReinforceAgent:
    torch.manual_seed(7)
    space = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
    return ReinforceAgent(space, gym.spaces.Discrete(2), config, device="cpu")


def _returns(agent: ReinforceAgent, batch: EpisodeBatch, config: ReinforceConfig,
             bootstrap: str = "truncated", across_episodes: bool = False,
             gamma: Optional[float] = None, reward_to_go: Optional[bool] = None) -> torch.Tensor:
    """Each step's return, with the options of the usual mistakes."""
    gamma = config.gamma if gamma is None else gamma
    reward_to_go = config.reward_to_go if reward_to_go is None else reward_to_go
    with torch.no_grad():
        values = agent.value(batch.final_observations).squeeze(-1) if agent.value is not None \
            else torch.zeros(len(batch.lengths))
    mask = {"truncated": batch.truncated.float(), "none": torch.zeros(len(batch.lengths)),
            "all": torch.ones(len(batch.lengths))}[bootstrap]
    if across_episodes:
        return discounted_reward_to_go(batch.rewards, gamma)
    returns = []
    for rewards, last in zip(batch.rewards.split(batch.lengths), values * mask):
        g = discounted_reward_to_go(rewards, gamma, last)
        returns.append(g if reward_to_go else g[0].expand_as(g))
    return torch.cat(returns)


def _loss(agent: ReinforceAgent, batch: EpisodeBatch, weights: torch.Tensor) -> float:
    with torch.no_grad():
        log_probs = agent.policy.distribution(batch.observations).log_prob(batch.actions)
    return float(-(log_probs * weights).mean())


def _mistaken_losses(agent: ReinforceAgent, batch: EpisodeBatch,
                     config: ReinforceConfig) -> list[tuple[float, str]]:
    """The losses that the usual mistakes give on this batch (before any step), with their hint."""
    def baseline(returns: torch.Tensor, net: Any = agent.value) -> torch.Tensor:
        if net is None:
            return returns
        with torch.no_grad():
            return returns - net(batch.observations).squeeze(-1)

    returns = _returns(agent, batch, config)
    loss = _loss(agent, batch, baseline(returns))
    steps, episodes = sum(batch.lengths), len(batch.lengths)
    mistakes = [
        (-loss, "The loss has the wrong sign: that is gradient DESCENT on the return. Optimisers "
                "minimise, so minimise minus the objective's surrogate."),
        (loss * steps, "The loss sums over the B steps of the batch: average it over them (the "
                       "surrogate loss (6) divides by B)."),
        (loss * steps / episodes, "The loss divides by the number of episodes N: the surrogate "
                                  "loss (6) averages over the B steps of the batch."),
        (_loss(agent, batch, baseline(_returns(agent, batch, config,
                                               reward_to_go=not config.reward_to_go))),
         "Reward-to-go and the episode's total return are mixed up: config.reward_to_go says "
         "which weight each step gets (Ĝ_t, or the return Ĝ_0 of its whole episode)."),
        (_loss(agent, batch, baseline(_returns(agent, batch, config, across_episodes=True))),
         "The returns run across episode boundaries: compute them for each episode from its own "
         "rewards (batch.rewards.split(batch.lengths))."),
    ]
    if config.gamma != 1.0:
        mistakes.append((_loss(agent, batch, baseline(_returns(agent, batch, config, gamma=1.0))),
                         "The returns are not discounted: use config.gamma."))
    if agent.value is not None:
        mistakes += [
            (_loss(agent, batch, baseline(_returns(agent, batch, config, bootstrap="none"))),
             "The truncated episode was treated as terminal: a time limit cut it off, so its "
             "returns are bootstrapped from V_φ(o_T) of its final observation."),
            (_loss(agent, batch, baseline(_returns(agent, batch, config, bootstrap="all"))),
             "A terminated episode was bootstrapped: after a terminal state the future is zero; "
             "only truncated episodes (batch.truncated) get V_φ(o_T)."),
            (_loss(agent, batch, returns),
             "No baseline was subtracted: with agent.value, the weights are Ĝ_t − V_φ(o_t)."),
        ]
        refitted = copy.deepcopy(agent)
        for _ in range(config.value_steps):
            value_loss = torch.nn.functional.mse_loss(
                refitted.value(batch.observations).squeeze(-1), returns)
            refitted.value_optimizer.zero_grad()
            value_loss.backward()
            refitted.value_optimizer.step()
        mistakes.append((_loss(agent, batch, baseline(returns, refitted.value)),
                         "The baseline was refitted before the weights were computed: evaluate "
                         "V_φ(o_t) first (refitted on this batch, it has already seen Ĝ_t)."))
    return mistakes


def _count_backward_passes(module: Optional[torch.nn.Module]) -> list[int]:
    """A counter of the backward passes that reach ``module``'s first parameter (hooks stay on
    this check's own copy of the agent only)."""
    counter = [0]
    if module is not None:
        first = next(module.parameters())
        first.register_hook(lambda grad: counter.__setitem__(0, counter[0] + 1))
    return counter


def _expect_loss(metrics: Any, key: str, shown: str) -> float:
    if not isinstance(metrics, dict) or key not in metrics:
        raise AssertionError(f"{shown} returned {type(metrics).__name__} {metrics!r:.80}; expected "
                             f"a dict of metrics with the key {key!r}.")
    value = metrics[key]
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise AssertionError(f"{shown}: metrics[{key!r}] has shape {tuple(value.shape)}; "
                                 "expected one number (the loss averaged over the batch).")
        value = value.item()
    if not isinstance(value, (int, float)):
        raise AssertionError(f"{shown}: metrics[{key!r}] is {type(value).__name__}; expected a "
                             "number or a one-element tensor.")
    return float(value)


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.allclose(p, q, rtol=1e-4, atol=1e-5) for p, q in zip(a.parameters(), b.parameters()))


def _compare(student: ReinforceAgent, reference: ReinforceAgent, before: ReinforceAgent,
             shown: str, second: bool) -> None:
    accumulate = (" It went wrong only at the second update: are the gradients zeroed before each "
                  "backward? (Left over from the first update, they add up.)" if second else "")
    if not _same(student.policy, reference.policy):
        if _same(student.policy, before.policy):
            raise AssertionError(f"{shown}: the policy's parameters did not change; take one step "
                                 "of agent.policy_optimizer on the loss." + accumulate)
        raise AssertionError(f"{shown}: the loss is right but the policy's parameters after the "
                             "step differ from the reference's: backpropagate that loss and take "
                             "ONE step of agent.policy_optimizer." + accumulate)
    if reference.value is not None and not _same(student.value, reference.value):
        if _same(student.value, before.value):
            raise AssertionError(f"{shown}: the baseline V_φ was not trained; regress V_φ(o_t) on "
                                 "the returns Ĝ_t with agent.value_optimizer." + accumulate)
        raise AssertionError(
            f"{shown}: V_φ's parameters after the update differ from the reference's. Regress "
            "V_φ(o_t) on the returns Ĝ_t (bootstrapped at the truncation; not the advantages), "
            "config.value_steps steps of agent.value_optimizer on the mean squared error, "
            "zeroing its gradients before each." + accumulate)


@references("course_utils.agents.reinforce.reinforce_update")
def check_reinforce_update(fn: Fn) -> None:
    """Check ``fn(agent, batch, config) -> metrics``: two updates on a fixed batch, for three
    configurations, give the reference's losses and parameters."""
    name = "reinforce_update"
    for what, settings in _CASES:
        config = ReinforceConfig(**settings)
        batch = _fixed_batch()
        copies = {key: getattr(batch, key).clone() for key in
                  ("observations", "actions", "rewards", "truncated", "final_observations")}
        student, reference = _fixed_agent(config), _fixed_agent(config)
        for update in (1, 2):
            shown = f"{name} ({what}), update {update} of 2 on one batch"
            before = copy.deepcopy(reference)
            expected = reinforce_update(reference, _fixed_batch(), config)
            leaks = _count_backward_passes(student.value)
            metrics = call(fn, name, student, batch, config)
            expect_tensors_unchanged(name, {k: getattr(batch, k) for k in copies}, copies)
            loss = _expect_loss(metrics, "loss", shown)
            if abs(loss - expected["loss"].item()) > 1e-4 * max(1.0, abs(loss)):
                hints = [hint for value, hint in _mistaken_losses(before, _fixed_batch(), config)
                         if abs(loss - value) <= 1e-4 * max(1.0, abs(value))]
                hint = hints[0] if hints else (
                    "Check the weights (config.reward_to_go, config.gamma, the bootstrap of "
                    "truncated episodes, the baseline) and the loss (its sign, the mean over the "
                    "B steps of the batch).")
                raise AssertionError(f"{shown}: metrics['loss'] is {loss:.4f}; expected "
                                     f"{expected['loss'].item():.4f}. {hint}")
            if student.value is not None:
                if leaks[0] > config.value_steps:
                    raise AssertionError(
                        f"{shown}: the policy loss's gradient flows into the baseline V_φ. The "
                        "weights are constants of the policy loss: detach V_φ's outputs (the "
                        "baseline and the bootstrap values), so that only its regression trains it.")
            _compare(student, reference, before, shown, update == 2)
            if student.value is not None:
                value_loss = _expect_loss(metrics, "value_loss", shown)
                if abs(value_loss - expected["value_loss"].item()) > 1e-4 * max(1.0, abs(value_loss)):
                    raise AssertionError(
                        f"{shown}: metrics['value_loss'] is {value_loss:.4f}; expected "
                        f"{expected['value_loss'].item():.4f}, the mean squared error of the last "
                        "regression step (V_φ(o_t) against the returns Ĝ_t).")
    passed(name, 2 * len(_CASES))
