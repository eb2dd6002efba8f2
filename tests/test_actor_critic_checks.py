"""Notebook 06's exercise checks (course_utils.checks.actor_critic): each passes on
correct solutions (several styles) and fails, with a helpful message, on the mistakes students
make."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from check_helpers import assert_fails, assert_passes, not_implemented, own_copy
from course_utils.agents.a2c import A2CConfig, Rollout, a2c_update, collect_rollout
from course_utils.checks import (check_a2c_update, check_collect_rollout, check_gae,
                                  check_n_step_return)
from course_utils.returns import gae as library_gae

# The package's answers as a student would write them: the checks refuse the package's own
# functions (checks.common.references).
library_gae = own_copy(library_gae)
reference_collect = own_copy(collect_rollout)
reference_update = own_copy(a2c_update)

# ----------------------------------------------------------------------------- n-step return

N_STEP_ANSWER = "expected [2.375, 4.0, 7.5, 9.0]"


def n_step_return(rewards, values, last_value, terminated, gamma, n):
    """The notebook's solution."""
    T = len(rewards)
    v = torch.cat([values, (0.0 if terminated else 1.0) * last_value.reshape(1)]).detach()
    G = torch.empty_like(rewards)
    for t in range(T):
        end = min(t + n, T)
        G[t] = sum(gamma ** (k - t) * rewards[k] for k in range(t, end)) + gamma ** (end - t) * v[end]
    return G


def n_step_powers(rewards, values, last_value, terminated, gamma, n):
    """Correct, with a tensor of discounts and no_grad."""
    with torch.no_grad():
        T = len(rewards)
        bootstrap = torch.cat([values, torch.zeros(1) if terminated else last_value.view(1)])
        returns = []
        for t in range(T):
            m = min(n, T - t)
            discounts = gamma ** torch.arange(m, dtype=rewards.dtype)
            returns.append((discounts * rewards[t:t + m]).sum() + gamma ** m * bootstrap[t + m])
        return torch.stack(returns)


def _n_step_with(power, origin=lambda t: t, shift=0, end_value=None, extra=0):
    def fn(rewards, values, last_value, terminated, gamma, n):
        T = len(rewards)
        tail = 0.0 if terminated else float(last_value)
        v = values.detach().tolist() + [tail if end_value is None else end_value(tail, last_value)]
        out = []
        for t in range(T):
            end = min(t + n + extra, T)
            total = sum(gamma ** (k - origin(t)) * rewards[k].item()
                        for k in range(t, end))
            out.append(total + gamma ** power(t, end, n) * v[end + shift])
        return torch.tensor(out)
    return fn


n_step_ignores_terminated = _n_step_with(lambda t, end, n: end - t,
                                         end_value=lambda tail, last: float(last))
n_step_no_bootstrap_at_end = _n_step_with(lambda t, end, n: end - t,
                                          end_value=lambda tail, last: 0.0)
n_step_power_n = _n_step_with(lambda t, end, n: n)
n_step_absolute_discount = _n_step_with(lambda t, end, n: end, origin=lambda t: 0)
n_step_off_by_one = _n_step_with(lambda t, end, n: end - t, shift=-1)
n_step_n_plus_one = _n_step_with(lambda t, end, n: end - t, extra=1)


def n_step_no_bootstrap(rewards, values, last_value, terminated, gamma, n):
    T = len(rewards)
    return torch.stack([sum(gamma ** (k - t) * rewards[k] for k in range(t, min(t + n, T)))
                        for t in range(T)])


def n_step_not_detached(rewards, values, last_value, terminated, gamma, n):
    T = len(rewards)
    v = torch.cat([values, (0.0 if terminated else 1.0) * last_value.reshape(1)])
    return torch.stack([sum(gamma ** (k - t) * rewards[k] for k in range(t, min(t + n, T)))
                        + gamma ** (min(t + n, T) - t) * v[min(t + n, T)] for t in range(T)])


def n_step_in_place(rewards, values, last_value, terminated, gamma, n):
    result = n_step_return(rewards, values, last_value, terminated, gamma, n)
    values.zero_()
    return result


def n_step_numpy(rewards, values, last_value, terminated, gamma, n):
    return n_step_return(rewards, values, last_value, terminated, gamma, n).numpy()


def test_check_n_step_return_passes_on_references(capsys):
    for fn in (n_step_return, n_step_powers):
        assert_passes(check_n_step_return, fn, capsys, "n_step_return")


@pytest.mark.parametrize("mutant, fragments", [
    (n_step_ignores_terminated, ["terminated=True, gamma=0.5, n=2", "V(s_T) = 0 there"]),
    (n_step_no_bootstrap_at_end, [N_STEP_ANSWER, "cut, not terminated"]),
    (n_step_power_n, [N_STEP_ANSWER, "discounted by γ^(T−t), not γ^n"]),
    (n_step_absolute_discount, [N_STEP_ANSWER, "relative to the CURRENT step"]),
    (n_step_off_by_one, [N_STEP_ANSWER, "not values[t + n − 1]"]),
    (n_step_n_plus_one, [N_STEP_ANSWER, "Sum n rewards"]),
    (n_step_no_bootstrap, [N_STEP_ANSWER, "Bootstrap: add γ^n V(s_{t+n})"]),
    (n_step_not_detached, ["requires_grad=True", "carries a gradient back", "is a TARGET"]),
    (n_step_in_place, ["modified its input values in place"]),
    (n_step_numpy, ["returned ndarray; expected a torch.Tensor"]),
])
def test_check_n_step_return_fails_on_mutants(mutant, fragments):
    assert_fails(check_n_step_return, mutant, "n_step_return", *fragments)


def test_check_n_step_return_not_implemented():
    assert_fails(check_n_step_return, not_implemented, "n_step_return is not implemented yet")


# --------------------------------------------------------------------------------------- GAE

GAE_ANSWER = "expected [1.14, 0.35, 4.0]"
TERMINAL_ANSWER = "expected [0.75, 1.0, -0.75, 1.0]"
TRUNCATED_ANSWER = "expected [1.75, 5.0, -0.75, 1.0]"


def gae(rewards, values, next_values, terminated, done, gamma, lam):
    """The notebook's solution."""
    deltas = rewards + gamma * (1 - terminated) * next_values - values
    advantages = torch.zeros_like(deltas)
    running = 0.0
    for t in reversed(range(len(rewards))):
        running = deltas[t] + gamma * lam * (1 - done[t]) * running
        advantages[t] = running
    return advantages.detach()


@torch.no_grad()
def gae_list(rewards, values, next_values, terminated, done, gamma, lam):
    """Correct, collecting a list and stacking it (under no_grad)."""
    advantages, last = [], torch.zeros_like(rewards[0])
    for t in range(len(rewards) - 1, -1, -1):
        delta = rewards[t] + gamma * next_values[t] * (1.0 - terminated[t]) - values[t]
        last = delta + gamma * lam * (1.0 - done[t]) * last
        advantages.append(last)
    return torch.stack(advantages[::-1])


def _gae_with(bootstrap_mask="terminated", trace_mask="done", decay=lambda g, l: g * l,
              shifted=False, plus_values=False, forward=False):
    @torch.no_grad()
    def fn(rewards, values, next_values, terminated, done, gamma, lam):
        masks = {"terminated": terminated, "done": done, "none": torch.zeros_like(done)}
        if shifted:
            next_values = torch.cat([values[1:], next_values[-1:]])
        deltas = rewards + gamma * (1 - masks[bootstrap_mask]) * next_values - values
        advantages, running = torch.zeros_like(deltas), torch.zeros_like(deltas[0])
        steps = range(len(rewards)) if forward else reversed(range(len(rewards)))
        for t in steps:
            keep = 1 - masks[trace_mask][t]
            running = deltas[t] + decay(gamma, lam) * keep * running
            advantages[t] = running
        return advantages + values if plus_values else advantages
    return fn


gae_no_terminal_mask = _gae_with(bootstrap_mask="none")
gae_leaks_across_episodes = _gae_with(trace_mask="none")
gae_trace_stops_at_terminal_only = _gae_with(trace_mask="terminated")
gae_no_bootstrap_at_truncation = _gae_with(bootstrap_mask="done")
gae_lambda_without_gamma = _gae_with(decay=lambda g, l: l)
gae_gamma_without_lambda = _gae_with(decay=lambda g, l: g)
gae_shifted_values = _gae_with(shifted=True)
gae_lambda_return = _gae_with(plus_values=True)
gae_forward = _gae_with(forward=True)


def gae_not_detached(rewards, values, next_values, terminated, done, gamma, lam):
    deltas = rewards + gamma * (1 - terminated) * next_values - values
    advantages, running = [], 0.0
    for t in reversed(range(len(rewards))):
        running = deltas[t] + gamma * lam * (1 - done[t]) * running
        advantages.insert(0, running)
    return torch.stack(advantages)


def gae_last_dimension(rewards, values, next_values, terminated, done, gamma, lam):
    """Right for one environment; loops over the LAST dimension, which breaks (T, N)."""
    deltas = (rewards + gamma * (1 - terminated) * next_values - values).detach()
    advantages, running = torch.zeros_like(deltas), 0.0
    for t in reversed(range(rewards.shape[-1])):
        running = deltas[..., t] + gamma * lam * (1 - done[..., t]) * running
        advantages[..., t] = running
    return advantages


def gae_in_place(rewards, values, next_values, terminated, done, gamma, lam):
    rewards -= values
    return library_gae(rewards + values, values, next_values, terminated, done, gamma, lam)


def gae_numpy(rewards, values, next_values, terminated, done, gamma, lam):
    return library_gae(rewards, values, next_values, terminated, done, gamma, lam).numpy()


def test_check_gae_passes_on_references(capsys):
    for fn in (library_gae, gae, gae_list):
        assert_passes(check_gae, fn, capsys, "gae")


@pytest.mark.parametrize("mutant, fragments", [
    (gae_no_terminal_mask, [TERMINAL_ANSWER, "terminated step has no future"]),
    (gae_leaks_across_episodes, [TERMINAL_ANSWER, "The trace leaks across the end of an episode"]),
    (gae_trace_stops_at_terminal_only, [TRUNCATED_ANSWER, "also stop where an episode was "
                                                          "truncated"]),
    (gae_no_bootstrap_at_truncation, [TRUNCATED_ANSWER, "still bootstraps from next_values"]),
    (gae_lambda_without_gamma, [GAE_ANSWER, "decays by γλ per step, not λ alone"]),
    (gae_gamma_without_lambda, [GAE_ANSWER, "not γ alone"]),
    (gae_forward, [GAE_ANSWER, "runs BACKWARDS in time"]),
    (gae_shifted_values, [TRUNCATED_ANSWER, "not values[t + 1]"]),
    (gae_lambda_return, [GAE_ANSWER, "That is the λ-return"]),
    (gae_not_detached, ["requires_grad=True", "carries a gradient back", "detach"]),
    (gae_last_dimension, ["(T, N) = (16, 4), time first", "first (time) dimension"]),
    (gae_in_place, ["modified its input rewards in place"]),
    (gae_numpy, ["returned ndarray; expected a torch.Tensor"]),
])
def test_check_gae_fails_on_mutants(mutant, fragments):
    assert_fails(check_gae, mutant, "gae", *fragments)


def test_check_gae_not_implemented():
    assert_fails(check_gae, not_implemented, "gae is not implemented yet")


def test_check_gae_identities_catch_a_mutant_that_is_right_on_the_hand_cases():
    """Right on the three small worked cases, wrong once rollouts are longer than 4 steps."""
    def short_only(rewards, values, next_values, terminated, done, gamma, lam):
        result = library_gae(rewards, values, next_values, terminated, done, gamma, lam)
        return result if len(rewards) <= 4 else result * (1 - done) + done * (rewards - values)

    assert_fails(check_gae, short_only, "lam=0.0", "still bootstraps from next_values")


# ----------------------------------------------------------------------- rollout collection


def collect(envs, model, observations, n_steps, gamma, mistake=None):
    """The rollout as a student writes it (one flag per usual mistake)."""
    rollout = Rollout.empty(n_steps, envs.num_envs, model.observation_size, model.device)
    for t in range(n_steps):
        obs = torch.as_tensor(observations, dtype=torch.float32)
        with torch.no_grad():
            actions = model.distribution(obs).sample()
            values = model.value(obs)
        next_obs, rewards, terminated, truncated, infos = envs.step(actions.numpy())
        rewards = torch.as_tensor(rewards, dtype=torch.float32)
        for i in range(envs.num_envs):
            cut = truncated[i] if mistake == "bootstrap_terminated" else truncated[i] and not terminated[i]
            if mistake == "bootstrap_every_end":
                cut = truncated[i] or terminated[i]
            if cut and mistake != "truncated_as_terminal":
                source = {"autoreset": next_obs[i], "current": observations[i]}.get(
                    mistake, infos["final_obs"][i])
                with torch.no_grad():
                    value = model.value(torch.as_tensor(source, dtype=torch.float32)[None])[0]
                rewards[i] += value if mistake == "no_gamma" else gamma * value
        rollout.observations[t] = torch.as_tensor(next_obs) if mistake == "next_obs" else obs
        rollout.actions[t], rollout.values[t], rollout.rewards[t] = actions, values, rewards
        ends = terminated if mistake == "dones_terminated" else terminated | truncated
        rollout.dones[t] = torch.as_tensor(ends, dtype=torch.float32)
        observations = next_obs
    last = rollout.observations[-1] if mistake == "stale_last" else \
        torch.as_tensor(observations, dtype=torch.float32)
    with torch.no_grad():
        rollout.last_values = model.value(last)
    if mistake == "with_gradient":
        rollout.values = model.value(rollout.observations.flatten(0, 1)).reshape(rollout.values.shape)
    return rollout, observations


def collect_with(mistake):
    def student(envs, model, observations, n_steps, gamma):
        return collect(envs, model, observations, n_steps, gamma, mistake)
    return student


def test_check_collect_rollout_passes_on_references(capsys):
    for fn in (reference_collect, collect):
        assert_passes(check_collect_rollout, fn, capsys, "collect_rollout")


@pytest.mark.parametrize("mistake, fragments", [
    ("truncated_as_terminal", ["is treated as terminal"]),
    ("autoreset", ["FIRST observation of the next episode", "infos['final_obs']"]),
    ("no_gamma", ["discounted"]),
    ("current", ["not of the observation the action was chosen on"]),
    ("bootstrap_terminated", ["terminated AND hit the time limit"]),
    ("bootstrap_every_end", ["a terminated episode reached a state with no future"]),
    ("dones_terminated", ["truncations included"]),
    ("next_obs", ["not the one step() returned after it"]),
    ("stale_last", ["observations AFTER the last step"]),
    ("with_gradient", ["rollout.values carries a gradient", "torch.no_grad()"]),
])
def test_check_collect_rollout_fails_on_mutants(mistake, fragments):
    assert_fails(check_collect_rollout, collect_with(mistake), "collect_rollout", *fragments)


def test_check_collect_rollout_fails_on_other_mistakes():
    def forgets_the_observations(envs, model, observations, n_steps, gamma):
        rollout, _ = collect(envs, model, observations, n_steps, gamma)
        return rollout, observations

    assert_fails(check_collect_rollout, forgets_the_observations, "the observations returned")

    def rollout_only(envs, model, observations, n_steps, gamma):
        return collect(envs, model, observations, n_steps, gamma)[0]

    assert_fails(check_collect_rollout, rollout_only, "expected a pair (rollout, observations)")

    def rewards_off_by_one(envs, model, observations, n_steps, gamma):
        rollout, observations = collect(envs, model, observations, n_steps, gamma)
        rollout.rewards = rollout.rewards + 1.0
        return rollout, observations

    assert_fails(check_collect_rollout, rewards_off_by_one, "rollout.rewards[0, 0]")


def test_check_collect_rollout_not_implemented():
    assert_fails(check_collect_rollout, not_implemented, "collect_rollout is not implemented yet")


# ------------------------------------------------------------------------------- the update


def update(model, optimizer, rollout, config, mistake=None):
    """The A2C update as a student writes it (one flag per usual mistake): GAE by hand."""
    T = rollout.rewards.shape[0]
    next_values = torch.cat([rollout.values[1:], rollout.last_values[None]])
    if mistake == "no_last_value":
        next_values[-1] = 0.0
    not_done = 1.0 - rollout.dones if mistake != "across_episodes" else torch.ones_like(rollout.dones)
    deltas = rollout.rewards + config.gamma * not_done * next_values - rollout.values
    advantages = torch.zeros_like(deltas)
    running = torch.zeros_like(deltas[0])
    for t in reversed(range(T)):
        running = deltas[t] + config.gamma * config.gae_lambda * not_done[t] * running
        advantages[t] = running
    returns = (advantages + rollout.values).flatten()
    distribution = model.distribution(rollout.observations.flatten(0, 1))
    log_probs = distribution.log_prob(rollout.actions.flatten())
    values = model.value(rollout.observations.flatten(0, 1))
    weights = returns - values if mistake == "no_detach" else returns - values.detach()
    if config.normalize_advantages:
        weights = (weights - weights.mean()) / (weights.std() + 1e-8)
    sign = 1.0 if mistake == "wrong_sign" else -1.0
    policy_loss = sign * (log_probs * weights).mean()
    value_loss = ((returns - values) ** 2).mean()
    if mistake == "half":
        value_loss = 0.5 * value_loss
    entropy = distribution.entropy().mean()
    entropy_term = config.entropy_coef * entropy
    loss = policy_loss + config.value_coef * value_loss + (
        entropy_term if mistake == "entropy_sign" else -entropy_term)
    if mistake != "no_zero_grad":
        optimizer.zero_grad()
    loss.backward()
    if mistake != "no_clip":
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
    optimizer.step()
    if mistake == "two_steps":
        optimizer.step()
    return {"loss": loss.item(), "policy_loss": policy_loss.item(), "value_loss": value_loss.item(),
            "entropy": entropy.item()}


def update_with(mistake):
    def student(model, optimizer, rollout, config):
        return update(model, optimizer, rollout, config, mistake)
    return student


def test_check_a2c_update_passes_on_references(capsys):
    for fn in (reference_update, update):
        assert_passes(check_a2c_update, fn, capsys, "a2c_update")


@pytest.mark.parametrize("mistake, fragments", [
    ("no_detach", ["The advantage is not detached"]),
    ("wrong_sign", ["Check the sign of the policy term"]),
    ("entropy_sign", ["entropy bonus is SUBTRACTED"]),
    ("half", ["no ½"]),
    ("no_clip", ["max_grad_norm=0.05", "not clipped"]),
    ("no_zero_grad", ["zero_grad"]),
    ("across_episodes", ["across episode ends"]),
    ("no_last_value", ["rollout.last_values"]),
    ("two_steps", ["differ from the reference's"]),
])
def test_check_a2c_update_fails_on_mutants(mistake, fragments):
    assert_fails(check_a2c_update, update_with(mistake), "a2c_update", *fragments)


def test_check_a2c_update_fails_without_a_step_or_metrics_or_with_an_in_place_rollout():
    assert_fails(check_a2c_update, lambda model, optimizer, rollout, config: {},
                 "left the parameters unchanged")

    def no_metrics(model, optimizer, rollout, config):
        update(model, optimizer, rollout, config)

    assert_fails(check_a2c_update, no_metrics, "returned NoneType; expected a dict")

    def wrong_loss(model, optimizer, rollout, config):
        return {**update(model, optimizer, rollout, config), "loss": 0.0}

    assert_fails(check_a2c_update, wrong_loss, "returned loss = 0.0000; expected 8.8170")

    def normalises_in_place(model, optimizer, rollout, config):
        rollout.rewards -= rollout.rewards.mean()
        return update(model, optimizer, rollout, config)

    assert_fails(check_a2c_update, normalises_in_place, "modified rollout.rewards in place")


def test_check_a2c_update_clipping_case_clips():
    """The second case's gradient is larger than its max_grad_norm, so that clipping shows."""
    import course_utils.checks.actor_critic as checks

    config = A2CConfig(gamma=0.95, gae_lambda=0.7, value_coef=0.25, entropy_coef=0.1,
                       max_grad_norm=0.05, normalize_advantages=True, n_layers=1, size=8,
                       device="cpu")
    model, rollout = checks._update_setup(1, config)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    update(model, optimizer, rollout, config, mistake="no_clip")
    norm = torch.cat([p.grad.flatten() for p in model.parameters()]).norm()
    assert norm > 10 * config.max_grad_norm


def test_check_a2c_update_not_implemented():
    assert_fails(check_a2c_update, not_implemented, "a2c_update is not implemented yet")



# --------------------------------------------------------------------------------- all checks


ALL_CHECKS = [check_n_step_return, check_gae]  # those that return one tensor


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda check: check.__name__)
def test_every_check_refuses_numpy_arrays(check):
    def as_numpy(*args, **kwargs):
        return np.zeros(4)

    with pytest.raises(AssertionError, match="returned ndarray; expected a torch.Tensor"):
        check(as_numpy)


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda check: check.__name__)
def test_every_check_refuses_numpy_inputs_turned_into_lists(check):
    """A function that converts its inputs with .tolist() and returns a Python list."""
    def as_list(*args, **kwargs):
        return [0.0, 0.0, 0.0, 0.0]

    with pytest.raises(AssertionError, match="returned list"):
        check(as_list)
