"""Checks of notebook 06's exercises: the n-step return, generalised advantage estimation (GAE),
A2C's rollout collection on a vector environment, and the A2C update.

Conventions (those of ``course_utils.returns.gae`` and ``course_utils.agents.a2c``): time is the
first dimension, ``(T,)`` for one environment or ``(T, N)`` for N environments stepped together;
``terminated`` is 1.0 where step t reached a terminal state (no bootstrap: V(s_{t+1}) = 0) and
``done`` is 1.0 where the episode ended at step t, terminated or truncated (the λ-trace stops);
``next_values[t]`` is V of the observation that followed step t (at a truncation, the episode's
final observation). Every known-answer case puts a large value on the next state of a terminal
step, so a missing terminal mask cannot go unnoticed. Targets and advantages are constants for the
losses that use them: the n-step return and GAE must come back without gradient.

The rollout and update checks run the student's function and the reference on the same seeds and
compare every stored tensor (the rollout) or every parameter after the step (the update, with
plain SGD so that a gradient's scale shows); a mismatch is named by running the usual mistakes
the same way and finding the one that gives the student's result.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from course_utils.agents.a2c import A2CConfig, ActorCritic, Rollout
from course_utils.checks.common import (
    Fn,
    call,
    expect_tensor,
    expect_tensors_unchanged,
    fmt,
    passed,
    references,
)
from course_utils.returns import gae as _library_gae

__all__ = [
    "check_a2c_update",
    "check_collect_rollout",
    "check_gae",
    "check_n_step_return",
]

DETACH_TARGET_HINT = ("Compute it from values.detach() (or under torch.no_grad()), or return "
                      "result.detach().")


# --------------------------------------------------------------------------- shared helpers


def _diagnose(result: torch.Tensor, expected: torch.Tensor,
              mistakes: Sequence[tuple[torch.Tensor, str]], default: str) -> str:
    """The hint of the first known mistake whose value equals ``result`` (and not the answer)."""
    result, expected = result.detach().double(), expected.double()
    for wrong, hint in mistakes:
        wrong = torch.as_tensor(wrong).double()
        if wrong.shape != expected.shape or torch.allclose(wrong, expected, rtol=1e-4, atol=1e-4):
            continue  # this mistake gives the right answer here: it says nothing
        if result.shape == wrong.shape and torch.allclose(result, wrong, rtol=1e-4, atol=1e-4):
            return hint
    return default


def _expect_match(result: Any, expected: torch.Tensor, shown: str,
                  mistakes: Sequence[tuple[torch.Tensor, str]], hint: str) -> torch.Tensor:
    """``result`` is a tensor equal to ``expected``; otherwise an AssertionError with the best
    hint (for a large tensor the message shows the first entry that differs)."""
    result = expect_tensor(result, tuple(expected.shape), shown)
    if not torch.isfinite(result).all():
        raise AssertionError(f"{shown} returned {fmt(result)}, which is not finite; expected "
                             f"{fmt(expected)}. {hint}")
    got, want = result.detach().double(), expected.double()
    if torch.allclose(got, want, rtol=1e-4, atol=1e-4):
        return result
    diagnosis = _diagnose(result, expected, mistakes, hint)
    if expected.numel() > 12:
        wrong = int((~torch.isclose(got, want, rtol=1e-4, atol=1e-4)).flatten().nonzero()[0])
        index = tuple(int(i) for i in torch.unravel_index(torch.tensor(wrong), expected.shape))
        where = index[0] if len(index) == 1 else index
        raise AssertionError(f"{shown} gave {got.flatten()[wrong].item():.4f} at index {where}; "
                             f"expected {want.flatten()[wrong].item():.4f}. {diagnosis}")
    raise AssertionError(f"{shown} returned {fmt(result)}; expected {fmt(expected)}. {diagnosis}")


def _expect_no_gradient(result: torch.Tensor, shown: str, what: str) -> None:
    if result.requires_grad:
        raise AssertionError(f"{shown} carries a gradient back into the critic's values, but "
                             f"{what} {DETACH_TARGET_HINT}")


# ------------------------------------------------------------------------- the TD error (GAE, λ = 0)


def _td(rewards, values, next_values, terminated, gamma):
    return rewards + gamma * (1.0 - terminated) * next_values - values


# ---------------------------------------------------------------------------- n-step return


def _n_step(rewards: torch.Tensor, values: torch.Tensor, last_value: Any, terminated: bool,
            gamma: float, n: int, *, power_n: bool = False, absolute: bool = False,
            shift: int = 0, mask: bool = True, bootstrap_end: bool = True,
            bootstrap: bool = True, extra: int = 0) -> torch.Tensor:
    """``G_t^(n)`` for every t, written out in float64; the keywords make the common mistakes:
    ``power_n`` discounts the bootstrap by γ^n also where the episode ends first, ``absolute``
    discounts by γ^k instead of γ^(k−t), ``shift`` = −1 bootstraps from V(s_{t+n−1}), ``mask``
    False ignores ``terminated``, ``bootstrap_end`` False never bootstraps from ``last_value``,
    ``bootstrap`` False never bootstraps at all, ``extra`` = 1 sums n + 1 rewards."""
    r = rewards.detach().double().tolist()
    T = len(r)
    end_value = 0.0 if (terminated and mask) or not bootstrap_end else float(last_value)
    v = values.detach().double().tolist() + [end_value]
    out = []
    for t in range(T):
        end = min(t + n + extra, T)
        total = sum(gamma ** (k if absolute else k - t) * r[k] for k in range(t, end))
        if bootstrap:
            power = n + extra if power_n else end - t
            total += gamma ** (power + (t if absolute else 0)) * v[max(end + shift, 0)]
        out.append(total)
    return torch.tensor(out, dtype=torch.float64)


def _n_step_mistakes(rewards, values, last_value, terminated, gamma, n):
    args = (rewards, values, last_value, terminated, gamma, n)
    return [
        (_n_step(*args, mask=False),
         "The episode terminated at the end of this trajectory: V(s_T) = 0 there, so the steps "
         "within n of the end do not bootstrap from last_value."),
        (_n_step(*args, bootstrap_end=False),
         "The trajectory was cut, not terminated (terminated=False): the steps within n of the "
         "end bootstrap from last_value = V(s_T), discounted by γ^(T−t)."),
        (_n_step(*args, power_n=True),
         "Near the end the sum stops at T, so the bootstrap V(s_T) is discounted by γ^(T−t), "
         "not γ^n: the power is the number of rewards summed."),
        (_n_step(*args, absolute=True),
         "Discount relative to the CURRENT step t: the reward r_{t+k}, k steps ahead, is "
         "weighted γ^k whatever t is (not γ^(t+k)), and V(s_{t+m}) γ^m."),
        (_n_step(*args, shift=-1),
         "Bootstrap from V(s_{t+n}), the state n steps ahead (values[t + n]), not values[t + n − 1]: "
         "the n rewards r_t … r_{t+n−1} lead to s_{t+n}."),
        (_n_step(*args, extra=1),
         "Sum n rewards, r_t … r_{t+n−1} (k = 0 … n − 1), then bootstrap from V(s_{t+n})."),
        (_n_step(*args, bootstrap=False),
         "Bootstrap: add γ^n V(s_{t+n}) (values[t + n], or last_value past the end unless "
         "terminated) to the n discounted rewards."),
    ]


def check_n_step_return(fn: Fn) -> None:
    """Check ``fn(rewards (T,), values (T,), last_value (), terminated, gamma, n) -> (T,)`` is
    the n-step return of every step of one trajectory,
    ``G_t^(n) = Σ_{k<n} γ^k r_{t+k} + γ^n V(s_{t+n})``, where ``values[t] = V(s_t)``,
    ``last_value = V(s_T)`` (the observation after the last step) and ``terminated`` (a bool)
    says whether s_T is terminal (then V(s_T) = 0). Near the end the sum stops at T:
    ``G_t = Σ_{k<T−t} γ^k r_{t+k} + γ^(T−t) V(s_T)``. The result carries no gradient."""
    name = "n_step_return"
    hint = ("G_t = Σ_{k<m} γ^k r_{t+k} + γ^m V(s_{t+m}) with m = min(n, T − t); "
            "V(s_T) = last_value, or 0 if terminated.")
    n_cases = 0
    rewards_list, values_list = [1.0, 2.0, 3.0, 4.0], [0.5, 1.0, 1.5, 2.0]
    # Worked by hand with γ = 0.5 and last_value = 10:
    #   n = 2:  G_0 = 1 + 0.5·2 + 0.25·V(s_2)=1.5 = 2.375    G_1 = 2 + 0.5·3 + 0.25·2.0 = 4.0
    #           G_2 = 3 + 0.5·4 + 0.25·10 = 7.5            G_3 = 4 + 0.5·10 = 9.0
    #   n = 2, terminated: G_2 = 3 + 0.5·4 = 5.0, G_3 = 4.0 (no bootstrap from s_T)
    #   n = 1 (TD targets): [1 + 0.5·1.0, 2 + 0.5·1.5, 3 + 0.5·2.0, 4 + 0.5·10] = [1.5, 2.75, 4.0, 9.0]
    #   n ≥ T (Monte Carlo, bootstrapped from s_T): [3.875, 5.75, 7.5, 9.0]; terminated:
    #   [3.25, 4.5, 5.0, 4.0]
    cases = [
        (False, 2, [2.375, 4.0, 7.5, 9.0], hint),
        (True, 2, [2.375, 4.0, 5.0, 4.0], hint + " Here the episode terminated: V(s_T) = 0."),
        (False, 1, [1.5, 2.75, 4.0, 9.0], "With n = 1 the n-step return is the TD target "
                                          "r_t + γ V(s_{t+1})."),
        (False, 4, [3.875, 5.75, 7.5, 9.0], "With n = T the n-step return is the Monte Carlo "
                                            "return, bootstrapped from V(s_T) = last_value."),
        (False, 10, [3.875, 5.75, 7.5, 9.0], "With n > T the sum stops at the end of the "
                                             "trajectory: the Monte Carlo return bootstrapped "
                                             "from V(s_T)."),
        (True, 10, [3.25, 4.5, 5.0, 4.0], "With n > T and a terminal end it is the plain Monte "
                                          "Carlo return Σ γ^k r_{t+k}."),
    ]
    for terminated, n, expected, why in cases:
        inputs = {"rewards": torch.tensor(rewards_list), "values": torch.tensor(values_list),
                  "last_value": torch.tensor(10.0)}
        copies = {k: v.clone() for k, v in inputs.items()}
        shown = (f"{name}(rewards={rewards_list}, values={values_list}, "
                 f"last_value=torch.tensor(10.0), terminated={terminated}, gamma=0.5, n={n})")
        result = call(fn, name, *inputs.values(), terminated, 0.5, n)
        expect_tensors_unchanged(name, inputs, copies)
        _expect_match(result, torch.tensor(expected), shown,
                      _n_step_mistakes(*inputs.values(), terminated, 0.5, n), why)
        n_cases += 1

    generator = torch.Generator().manual_seed(61)
    rewards = torch.randn(30, generator=generator)
    values = torch.randn(30, generator=generator) * 5
    last_value = torch.tensor(20.0)
    for terminated, n in ((False, 5), (True, 5), (False, 30), (True, 7)):
        shown = (f"{name}(30 random rewards and values, last_value=torch.tensor(20.0), "
                 f"terminated={terminated}, gamma=0.99, n={n})")
        expected = _n_step(rewards, values, last_value, terminated, 0.99, n).float()
        _expect_match(call(fn, name, rewards, values, last_value, terminated, 0.99, n), expected,
                      shown, _n_step_mistakes(rewards, values, last_value, terminated, 0.99, n),
                      hint)
        n_cases += 1

    values_grad = torch.tensor(values_list, requires_grad=True)
    last_grad = torch.tensor(10.0, requires_grad=True)
    shown = (f"{name}(rewards={rewards_list}, values=<values of the critic, with "
             "requires_grad=True>, last_value=<likewise>, terminated=False, gamma=0.5, n=2)")
    result = _expect_match(call(fn, name, torch.tensor(rewards_list), values_grad, last_grad,
                                False, 0.5, 2), torch.tensor(cases[0][2]), shown, [], hint)
    _expect_no_gradient(result, shown, "the n-step return is a TARGET for the critic, a "
                                        "constant in its loss.")
    n_cases += 1
    passed(name, n_cases)


# -------------------------------------------------------------------------------------- GAE


def _gae_variant(rewards, values, next_values, terminated, done, gamma, lam, *,
                 bootstrap_mask: str = "terminated", trace_mask: str = "done",
                 decay: Optional[float] = None, forward: bool = False, shifted: bool = False,
                 plus_values: bool = False) -> torch.Tensor:
    """GAE written out in float64; the keywords make the common mistakes."""
    r, v, nv, term, dn = (x.detach().double() for x in (rewards, values, next_values,
                                                         terminated, done))
    if shifted:  # V(s_{t+1}) taken from values[t + 1]
        nv = torch.cat([v[1:], nv[-1:]])
    bootstrap = {"terminated": 1.0 - term, "done": 1.0 - dn, "none": torch.ones_like(term)}
    trace = {"done": 1.0 - dn, "terminated": 1.0 - term, "none": torch.ones_like(dn)}
    deltas = r + gamma * bootstrap[bootstrap_mask] * nv - v
    keep = trace[trace_mask]
    decay = gamma * lam if decay is None else decay
    advantages = torch.zeros_like(deltas)
    running = torch.zeros_like(deltas[0])
    if forward:  # A_t = δ_t + γλ (1 − done_{t−1}) A_{t−1}
        for t in range(len(r)):
            running = deltas[t] + (decay * keep[t - 1] * running if t > 0 else 0.0)
            advantages[t] = running
    else:
        for t in range(len(r) - 1, -1, -1):
            running = deltas[t] + decay * keep[t] * running
            advantages[t] = running
    return advantages + v if plus_values else advantages


def _gae_mistakes(rewards, values, next_values, terminated, done, gamma, lam):
    args = (rewards, values, next_values, terminated, done, gamma, lam)
    return [
        (_gae_variant(*args, bootstrap_mask="none"),
         "A terminated step has no future: δ_t = r_t − V(s_t) there (multiply γ V(s_{t+1}) by "
         "1 − terminated_t)."),
        (_gae_variant(*args, trace_mask="terminated"),
         "The trace must also stop where an episode was truncated: use done (terminated OR "
         "truncated) in the recursion, A_t = δ_t + γλ (1 − done_t) A_{t+1}."),
        (_gae_variant(*args, trace_mask="none"),
         "The trace leaks across the end of an episode: the advantage of an episode's last step "
         "must not include the TD errors of the next episode. Stop the recursion there, "
         "A_t = δ_t + γλ (1 − done_t) A_{t+1}."),
        (_gae_variant(*args, bootstrap_mask="none", trace_mask="none"),
         "Neither mask is applied: δ_t = r_t + γ (1 − terminated_t) V(s_{t+1}) − V(s_t), and the "
         "trace stops where an episode ends, A_t = δ_t + γλ (1 − done_t) A_{t+1}."),
        (_gae_variant(*args, bootstrap_mask="done"),
         "A truncated episode (done = 1, terminated = 0) did not reach a terminal state: its TD "
         "error still bootstraps from next_values. Use terminated in δ_t and done in the trace."),
        (_gae_variant(*args, bootstrap_mask="done", trace_mask="terminated"),
         "The two masks are swapped: terminated removes the bootstrap in δ_t, done stops the "
         "trace."),
        (_gae_variant(*args, decay=lam),
         "The trace decays by γλ per step, not λ alone: A_t = δ_t + γλ (1 − done_t) A_{t+1}."),
        (_gae_variant(*args, decay=gamma),
         "The trace decays by γλ per step, not γ alone (λ is missing)."),
        (_gae_variant(*args, forward=True),
         "The recursion runs BACKWARDS in time, from t = T − 1 down to 0: A_t needs A_{t+1}."),
        (_gae_variant(*args, shifted=True),
         "Use next_values[t] for V(s_{t+1}), not values[t + 1]: where an episode ends, "
         "values[t + 1] is the first state of the NEXT episode."),
        (_gae_variant(*args, plus_values=True),
         "That is the λ-return A_t + V(s_t) (the critic's target); return the advantages A_t."),
        (-_gae_variant(*args),
         "Check the sign: δ_t = r_t + γ (1 − terminated_t) V(s_{t+1}) − V(s_t)."),
    ]


def _monte_carlo_advantage(rewards, values, next_values, terminated, done, gamma) -> torch.Tensor:
    """G_t − V(s_t), with G_t the discounted return to the end of the episode, bootstrapped from
    next_values where an episode was truncated or the rollout ends (float64)."""
    r, v, nv, term, dn = (x.double() for x in (rewards, values, next_values, terminated, done))
    returns = torch.zeros_like(r)
    following = torch.zeros_like(r[0])
    for t in range(len(r) - 1, -1, -1):
        last = dn[t] if t < len(r) - 1 else torch.ones_like(dn[t])
        tail = last * (1.0 - term[t]) * nv[t] + (1.0 - last) * following
        following = r[t] + gamma * tail
        returns[t] = following
    return returns - v


def _consistent_rollout(generator: torch.Generator, T: int, N: Optional[int] = None):
    """A rollout whose next_values[t] = values[t + 1] inside episodes, as the loop collects it."""
    shape = (T,) if N is None else (T, N)
    rewards = torch.randn(shape, generator=generator)
    values = torch.randn((T + 1, *shape[1:]), generator=generator) * 3
    ends = torch.rand(shape, generator=generator)
    terminated = (ends < 0.1).float()
    done = torch.maximum(terminated, (ends > 0.9).float())
    final = torch.randn(shape, generator=generator) * 3 + 30  # V of a truncated episode's last obs
    next_values = torch.where(done > 0, final, values[1:])
    return rewards, values[:-1].clone(), next_values, terminated, done


@references("course_utils.returns.gae")
def check_gae(fn: Fn) -> None:
    """Check ``fn(rewards, values, next_values, terminated, done, gamma, lam) -> advantages`` is
    generalised advantage estimation, as ``course_utils.returns.gae``: every argument a tensor of
    shape ``(T,)`` (one environment) or ``(T, N)`` (N environments, time first); the TD error
    ``δ_t = r_t + γ (1 − terminated_t) next_values_t − values_t`` and the backward recursion
    ``A_t = δ_t + γλ (1 − done_t) A_{t+1}``. Returns the advantages (shape of rewards), without
    gradient."""
    name = "gae"
    hint = ("δ_t = r_t + γ (1 − terminated_t) V(s_{t+1}) − V(s_t), then backwards from t = T − 1: "
            "A_t = δ_t + γλ (1 − done_t) A_{t+1} (A_T = 0).")
    n = 0
    # Worked by hand:
    # 1. One episode, no ending inside, γ = 0.5, λ = 0.8 (γλ = 0.4): δ = [1 + 0.5·1.0 − 0.5,
    #    0 + 0.5·(−0.5) − 1.0, 2 + 0.5·3.0 + 0.5] = [1.0, −1.25, 4.0]; A_2 = 4.0,
    #    A_1 = −1.25 + 0.4·4.0 = 0.35, A_0 = 1.0 + 0.4·0.35 = 1.14.
    # 2. γ = λ = 0.5 (γλ = 0.25) from here on. Step 1 terminates (its next value 8.0 must be ignored): δ = [1 + 0.5·1 − 1,
    #    2 − 1, 0 + 0.5·2 − 2, 1 + 0.5·4 − 2] = [0.5, 1.0, −1.0, 1.0]; A_3 = 1.0,
    #    A_2 = −1.0 + 0.25·1.0 = −0.75, A_1 = δ_1 = 1.0 (the trace stops), A_0 = 0.5 + 0.25·1.0
    #    = 0.75.
    # 3. Step 1 is truncated instead: δ_1 = 2 + 0.5·8 − 1 = 5.0 (it bootstraps), A_1 = 5.0 (the
    #    trace still stops), A_0 = 0.5 + 0.25·5.0 = 1.75; A_2 and A_3 as in 2.
    cases = [
        ([1.0, 0.0, 2.0], [0.5, 1.0, -0.5], [1.0, -0.5, 3.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0],
         0.8, [1.14, 0.35, 4.0], hint),
        ([1.0, 2.0, 0.0, 1.0], [1.0, 1.0, 2.0, 2.0], [1.0, 8.0, 2.0, 4.0], [0.0, 1.0, 0.0, 0.0],
         [0.0, 1.0, 0.0, 0.0], 0.5, [0.75, 1.0, -0.75, 1.0],
         "Step 1 ends its episode in a terminal state: δ_1 = r_1 − V(s_1), and the trace must not "
         "carry step 2's TD errors back across it."),
        ([1.0, 2.0, 0.0, 1.0], [1.0, 1.0, 2.0, 2.0], [1.0, 8.0, 2.0, 4.0], [0.0, 0.0, 0.0, 0.0],
         [0.0, 1.0, 0.0, 0.0], 0.5, [1.75, 5.0, -0.75, 1.0],
         "Step 1 ends its episode by truncation: δ_1 bootstraps from next_values[1] (terminated "
         "= 0), but the trace stops there (done = 1)."),
    ]
    names = ("rewards", "values", "next_values", "terminated", "done")
    for *lists, lam, expected, why in cases:
        inputs = {k: torch.tensor(x) for k, x in zip(names, lists)}
        copies = {k: v.clone() for k, v in inputs.items()}
        shown = f"{name}(" + ", ".join(f"{k}={x}" for k, x in zip(names, lists)) \
            + f", gamma=0.5, lam={lam})"
        result = call(fn, name, *inputs.values(), 0.5, lam)
        expect_tensors_unchanged(name, inputs, copies)
        _expect_match(result, torch.tensor(expected), shown,
                      _gae_mistakes(*inputs.values(), 0.5, lam), why)
        n += 1

    generator = torch.Generator().manual_seed(62)
    rollout = _consistent_rollout(generator, 40)
    for lam, expected, why in (
            (0.0, _td(*(x.double() for x in rollout[:3]), rollout[3].double(), 0.99),
             "With λ = 0 GAE is the TD error alone: A_t = δ_t."),
            (1.0, _monte_carlo_advantage(*rollout, 0.99),
             "With λ = 1 GAE is the Monte Carlo advantage G_t − V(s_t): the discounted return to "
             "the end of the episode (bootstrapped from next_values only where the episode was "
             "truncated or the rollout ends) minus V(s_t).")):
        shown = (f"{name}(a rollout of 40 steps with several episode ends, gamma=0.99, lam={lam})")
        _expect_match(call(fn, name, *rollout, 0.99, lam), expected.float(), shown,
                      _gae_mistakes(*rollout, 0.99, lam), why)
        n += 1

    for T, N, gamma, lam in ((50, None, 0.99, 0.95), (16, 4, 0.9, 0.8)):
        rollout = _consistent_rollout(generator, T, N)
        what = f"{T} steps" if N is None else f"(T, N) = ({T}, {N}), time first"
        shown = f"{name}(a random rollout of {what}, gamma={gamma}, lam={lam})"
        _expect_match(call(fn, name, *rollout, gamma, lam), _library_gae(*rollout, gamma, lam),
                      shown, _gae_mistakes(*rollout, gamma, lam),
                      hint + ("" if N is None else " With N environments the recursion runs over "
                              "the first (time) dimension, for all N columns at once."))
        n += 1

    lists = cases[0][:5]
    inputs = [torch.tensor(x) for x in lists]
    inputs[1].requires_grad_(True)
    inputs[2].requires_grad_(True)
    shown = (f"{name}(…the first rollout…, values and next_values from the critic with "
             "requires_grad=True, gamma=0.5, lam=0.8)")
    result = _expect_match(call(fn, name, *inputs, 0.5, 0.8), torch.tensor(cases[0][6]), shown,
                           [], hint)
    _expect_no_gradient(result, shown, "the advantages are constants that weigh the policy's "
                                        "log-probabilities (and, plus V, the critic's targets).")
    n += 1
    passed(name, n)




# ------------------------------------------------------------------------ rollout collection


class _WalkEnv(gym.Env):
    """A walk on a line for the rollout check: observation ``[x, mode, x·mode]``, action 1 moves
    x by +1 and 0 by −1, reward ``1 + 0.1 x`` after the move, terminated once ``|x| ≥ 2.5``;
    episodes start at x ∈ {±0.5, ±1.5}. The check's actor moves towards 0 when ``mode = +1``
    (the episode runs into its time limit) and away from 0 when ``mode = −1`` (it terminates)."""

    def __init__(self, mode: float) -> None:
        self.mode = mode
        self.observation_space = gym.spaces.Box(-10.0, 10.0, (3,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.x = 0.5

    def _observation(self) -> np.ndarray:
        return np.array([self.x, self.mode, self.x * self.mode], dtype=np.float32)

    def reset(self, *, seed: Optional[int] = None, options: Any = None):
        super().reset(seed=seed)
        self.x = float(self.np_random.choice([-1.5, -0.5, 0.5, 1.5]))
        return self._observation(), {}

    def step(self, action: Any):
        self.x += 1.0 if int(action) == 1 else -1.0
        return self._observation(), 1.0 + 0.1 * self.x, abs(self.x) >= 2.5, False, {}


# (mode, time limit) of the check's three environments: the first is truncated, the second is
# terminated and truncated at the same step (from x = ±0.5), the third only terminated.
_WALKS = ((1.0, 3), (-1.0, 2), (-1.0, 6))


def _walk_envs(seed: int) -> tuple[gym.vector.VectorEnv, np.ndarray]:
    def maker(mode: float, limit: int) -> Callable[[], gym.Env]:
        return lambda: gym.wrappers.TimeLimit(_WalkEnv(mode), max_episode_steps=limit)
    envs = gym.vector.SyncVectorEnv([maker(*walk) for walk in _WALKS],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    envs = gym.wrappers.vector.RecordEpisodeStatistics(envs)
    observations, _ = envs.reset(seed=seed)
    return envs, observations


def _walk_model() -> ActorCritic:
    """An actor that is deterministic in practice (logits ±50·x·mode: whatever way it samples,
    the action is the same) and a linear critic ``V(s) = x + 0.5 mode + 0.25 x·mode + 2``."""
    envs, _ = _walk_envs(0)
    model = ActorCritic(envs.single_observation_space, envs.single_action_space,
                        A2CConfig(n_layers=0, device="cpu"))
    with torch.no_grad():
        model.actor[0].weight.copy_(torch.tensor([[0.0, 0.0, 50.0], [0.0, 0.0, -50.0]]))
        model.actor[0].bias.zero_()
        model.critic[0].weight.copy_(torch.tensor([[1.0, 0.5, 0.25]]))
        model.critic[0].bias.fill_(2.0)
    return model


_ROLLOUT_FIELDS = ("observations", "actions", "values", "rewards", "dones", "last_values")


def _collect_variant(envs: gym.vector.VectorEnv, model: ActorCritic, observations: np.ndarray,
                     n_steps: int, gamma: float, mistake: Optional[str] = None
                     ) -> tuple[dict[str, torch.Tensor], np.ndarray]:
    """The rollout written out plainly; ``mistake`` makes one of the usual ones."""
    fields: dict[str, list] = {name: [] for name in _ROLLOUT_FIELDS[:-1]}
    for _ in range(n_steps):
        obs = torch.as_tensor(observations, dtype=torch.float32)
        actions, values = model.act(obs)
        next_obs, rewards, terminated, truncated, infos = envs.step(actions.numpy())
        rewards = torch.as_tensor(rewards, dtype=torch.float32)
        bootstrap = {"bootstrap_terminated": truncated,
                     "bootstrap_all_ends": terminated | truncated}.get(mistake, truncated & ~terminated)
        if mistake != "no_bootstrap":
            for i in np.flatnonzero(bootstrap):
                source = {"autoreset_obs": next_obs[i], "current_value": observations[i]}.get(
                    mistake, infos["final_obs"][i])
                value = model.value(torch.as_tensor(np.asarray(source), dtype=torch.float32)[None])[0]
                rewards[i] += (1.0 if mistake == "no_gamma" else gamma) * value.detach()
        ends = terminated if mistake == "dones_terminated" else terminated | truncated
        fields["observations"].append(torch.as_tensor(next_obs if mistake == "next_obs_stored"
                                                      else observations, dtype=torch.float32))
        fields["actions"].append(actions)
        fields["values"].append(values)
        fields["rewards"].append(rewards)
        fields["dones"].append(torch.as_tensor(ends, dtype=torch.float32))
        observations = next_obs
    result = {name: torch.stack(values) for name, values in fields.items()}
    with torch.no_grad():
        last = result["observations"][-1] if mistake == "last_values_stale" else \
            torch.as_tensor(observations, dtype=torch.float32)
        result["last_values"] = model.value(last)
    return result, observations


_COLLECT_MISTAKES = {
    "no_bootstrap": "A truncated episode (truncated, not terminated) is treated as terminal: its "
                    "last step must still be credited with the future the time limit cut off, "
                    "γ V(final observation), added to its reward.",
    "autoreset_obs": "The bootstrap uses the observation that step() returned, which after a "
                     "same-step autoreset is already the FIRST observation of the next episode. "
                     "Use the episode's true last observation, infos['final_obs'][i].",
    "no_gamma": "The bootstrap of a truncated step is discounted: its reward gains γ V(final "
                "observation), not V(final observation).",
    "current_value": "The bootstrap value is that of the state AFTER the step, the final "
                     "observation of the truncated episode, not of the observation the action "
                     "was chosen on.",
    "bootstrap_terminated": "A step that terminated AND hit the time limit in the same step reached "
                            "a terminal state: it has no future to bootstrap. Bootstrap only where "
                            "truncated and not terminated.",
    "bootstrap_all_ends": "Only truncated (not terminated) episodes bootstrap: a terminated "
                          "episode reached a state with no future, V = 0.",
    "dones_terminated": "dones must mark every episode end, truncations included (1.0 where "
                        "terminated or truncated): GAE's trace must stop there, and the update "
                        "must not bootstrap from the next episode's first observation.",
    "next_obs_stored": "observations[t] must be the observation the action a_t was chosen on, "
                       "s_t, not the one step() returned after it.",
    "last_values_stale": "last_values is V(s_T) of the observations AFTER the last step (those "
                         "the next rollout starts from), not of the last stored ones.",
}


def _rollout_fields(result: Any, shown: str) -> tuple[dict[str, torch.Tensor], np.ndarray]:
    if not (isinstance(result, tuple) and len(result) == 2):
        raise AssertionError(f"{shown} returned {type(result).__name__}; expected a pair "
                             "(rollout, observations): the Rollout and the observations the "
                             "next rollout starts from.")
    rollout, observations = result
    missing = [name for name in _ROLLOUT_FIELDS if not hasattr(rollout, name)]
    if missing:
        raise AssertionError(f"{shown} returned a rollout without {', '.join(missing)}; build it "
                             "with Rollout.empty(...) (or Rollout(...)) and fill every field.")
    fields = {name: getattr(rollout, name) for name in _ROLLOUT_FIELDS}
    for name, tensor in fields.items():
        if not isinstance(tensor, torch.Tensor):
            raise AssertionError(f"{shown}: rollout.{name} is a {type(tensor).__name__}; "
                                 "expected a torch.Tensor on the model's device.")
        if tensor.requires_grad:
            raise AssertionError(f"{shown}: rollout.{name} carries a gradient; the rollout is "
                                 "data: compute the values under torch.no_grad() (model.act "
                                 "and model.value inside it).")
    if isinstance(observations, torch.Tensor):
        observations = observations.cpu().numpy()
    return {name: t.detach().cpu() for name, t in fields.items()}, np.asarray(observations)


def _same_rollout(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return all(a[name].shape == b[name].shape
               and torch.allclose(a[name].double(), b[name].double(), rtol=1e-5, atol=1e-5)
               for name in _ROLLOUT_FIELDS)


@references("course_utils.agents.a2c.collect_rollout")
def check_collect_rollout(fn: Fn) -> None:
    """Check ``fn(envs, model, observations, n_steps, gamma) -> (rollout, observations)``, the
    rollout of ``course_utils.agents.a2c``: on three environments with same-step autoreset
    (one runs into its time limit, one terminates and hits the limit in the same step, one
    terminates), two rollouts in a row are compared field by field with the reference; the
    truncation bootstrap ``reward += γ V(final observation)`` is checked on the way."""
    name = "collect_rollout"
    model = _walk_model()
    n = 0
    for seed, (gamma, n_steps) in enumerate(((0.9, 4), (0.5, 7))):
        shown = (f"{name}(envs (3 environments), model, observations, n_steps={n_steps}, "
                 f"gamma={gamma})")
        expected_envs, expected_obs = _walk_envs(seed)
        envs, observations = _walk_envs(seed)
        for part in ("the first rollout", "the next rollout (from the observations returned)"):
            expected, expected_obs = _collect_variant(expected_envs, model, expected_obs,
                                                      n_steps, gamma)
            result, observations = _rollout_fields(
                call(fn, name, envs, model, observations, n_steps, gamma), shown)
            if result["observations"].shape != expected["observations"].shape:
                raise AssertionError(f"{shown}: rollout.observations has shape "
                                     f"{tuple(result['observations'].shape)}; expected "
                                     f"{tuple(expected['observations'].shape)} (T, N, obs_size).")
            if not _same_rollout(result, expected):
                raise AssertionError(f"{shown}, {part}: " + _explain_rollout(
                    result, expected, model, seed, n_steps, gamma, part))
            if observations.shape != expected_obs.shape or not np.allclose(observations,
                                                                           expected_obs):
                raise AssertionError(f"{shown}: the observations returned are not those after "
                                     "the last step: return the last observations that step() "
                                     "gave, so that the next rollout continues from them.")
            n += 1
    passed(name, n)


def _explain_rollout(result: dict[str, torch.Tensor], expected: dict[str, torch.Tensor],
                     model: ActorCritic, seed: int, n_steps: int, gamma: float, part: str) -> str:
    """The hint of the mistake that reproduces ``result``, else the first field that differs."""
    for mistake, hint in _COLLECT_MISTAKES.items():
        envs, observations = _walk_envs(seed=seed)
        wrong, observations = _collect_variant(envs, model, observations, n_steps, gamma, mistake)
        if part.startswith("the next"):
            wrong, _ = _collect_variant(envs, model, observations, n_steps, gamma, mistake)
        if not _same_rollout(wrong, expected) and _same_rollout(result, wrong):
            return hint
    for field in _ROLLOUT_FIELDS:
        got, want = result[field], expected[field]
        if got.shape != want.shape:
            return f"rollout.{field} has shape {tuple(got.shape)}; expected {tuple(want.shape)}."
        close = torch.isclose(got.double(), want.double(), rtol=1e-5, atol=1e-5)
        if not close.all():
            index = tuple(int(i) for i in (~close).nonzero()[0])
            where = "[" + ", ".join(map(str, index)) + "]"
            return (f"rollout.{field}{where} is {got[index].tolist()}; expected "
                    f"{want[index].tolist()}. Store at step t the observation acted on, the "
                    "action, V(s_t), the reward (plus γ V(final observation) where the episode "
                    "was truncated, not terminated) and 1.0 in dones where an episode ended.")
    return "the rollout differs from the reference."


# ------------------------------------------------------------------------------- the update


def _update_setup(seed: int, config: A2CConfig) -> tuple[ActorCritic, Rollout]:
    """A small model and a rollout of T = 6 steps of N = 3 environments whose stored values are
    the model's own (as when the update follows the collection), with a few episode ends."""
    torch.manual_seed(seed)
    model = ActorCritic(gym.spaces.Box(-5.0, 5.0, (4,), np.float32), gym.spaces.Discrete(3), config)
    generator = torch.Generator().manual_seed(seed)
    T, N = 6, 3
    observations = torch.randn(T, N, 4, generator=generator)
    with torch.no_grad():
        values = model.value(observations.reshape(T * N, 4)).reshape(T, N)
        last_values = model.value(torch.randn(N, 4, generator=generator))
    rollout = Rollout(observations=observations,
                      actions=torch.randint(0, 3, (T, N), generator=generator),
                      values=values, rewards=torch.randn(T, N, generator=generator) * 2 + 1,
                      dones=(torch.rand(T, N, generator=generator) < 0.25).float(),
                      last_values=last_values)
    return model, rollout


def _sgd_with_stale_gradients(model: ActorCritic) -> torch.optim.Optimizer:
    """Plain SGD, so that a gradient's scale shows in the step (Adam's first step hides it),
    and gradients left over from an earlier backward, which an update must clear."""
    for parameter in model.parameters():
        parameter.grad = torch.full_like(parameter, 0.3)
    return torch.optim.SGD(model.parameters(), lr=0.1)


def _update_variant(model: ActorCritic, optimizer: torch.optim.Optimizer, rollout: Rollout,
                    config: A2CConfig, mistake: Optional[str] = None) -> dict[str, torch.Tensor]:
    """The A2C update written out plainly; ``mistake`` makes one of the usual ones."""
    gamma = 0.99 if mistake == "gamma_ignored" else config.gamma
    lam = {"lambda_one": 1.0, "lambda_095": 0.95}.get(mistake, config.gae_lambda)
    last = torch.zeros_like(rollout.last_values) if mistake == "no_last_value" else rollout.last_values
    next_values = rollout.values if mistake == "unshifted" else \
        torch.cat([rollout.values[1:], last[None]])
    dones = torch.zeros_like(rollout.dones) if mistake == "no_dones" else rollout.dones
    advantages = _library_gae(rollout.rewards, rollout.values, next_values, dones, dones, gamma, lam)
    returns = (advantages + rollout.values).flatten()
    advantages = advantages.flatten()
    observations, actions = rollout.observations.flatten(0, 1), rollout.actions.flatten()
    distribution = model.distribution(observations)
    log_probs, entropy = distribution.log_prob(actions), distribution.entropy()
    values = model.value(observations)
    if mistake == "not_detached":
        advantages = returns - values  # the same numbers, but a gradient into the critic
    normalize = config.normalize_advantages != (mistake == "normalization_flipped")
    if normalize:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    if mistake != "not_detached":
        advantages = advantages.detach()
    policy_loss = (1.0 if mistake == "policy_sign" else -1.0) * (log_probs * advantages).mean()
    target = advantages.detach() if mistake == "advantage_target" else returns
    value_loss = ((target - values) ** 2).mean()
    value_coef = {"half_value": 0.5 * config.value_coef, "value_coef_ignored": 1.0}.get(
        mistake, config.value_coef)
    entropy_coef = {"entropy_sign": -config.entropy_coef, "no_entropy": 0.0}.get(
        mistake, config.entropy_coef)
    loss = policy_loss + value_coef * value_loss - entropy_coef * entropy.mean()
    if mistake != "no_zero_grad":
        optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if mistake != "no_clip":
        nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
    optimizer.step()
    return {"loss": loss.detach(), "policy_loss": policy_loss.detach(),
            "value_loss": value_loss.detach(), "entropy": entropy.mean().detach()}


_UPDATE_MISTAKES = {
    "not_detached": "The advantage is not detached: computed as returns − V(s) from the values "
                    "that carry a gradient, the policy term also trains the critic (to make the "
                    "advantages of likely actions large). The advantages are constant weights.",
    "policy_sign": "Check the sign of the policy term: the optimiser MINIMISES, and the actor must "
                   "MAXIMISE mean(log π · Â), so the loss has −mean(log π · Â).",
    "entropy_sign": "The entropy bonus is SUBTRACTED from the loss (− c_e · mean(H)): minimising "
                    "the loss then keeps the policy random, i.e. exploring.",
    "no_entropy": "The entropy bonus − c_e · mean(H) is missing (config.entropy_coef).",
    "half_value": "This course's value loss has no ½: c_v · mean((R − V)²).",
    "value_coef_ignored": "Weigh the value loss by config.value_coef.",
    "advantage_target": "The critic regresses on the λ-returns R_t = Â_t + V(s_t), not on the "
                        "advantages.",
    "no_clip": "The gradient is not clipped: clip its global norm to config.max_grad_norm "
               "between backward() and the optimiser's step.",
    "no_zero_grad": "The gradients of an earlier backward are still there and add up with this "
                    "one: clear them (optimizer.zero_grad()) before backward().",
    "no_dones": "The advantages bootstrap and trace across episode ends: where dones is 1, "
                "V(s_{t+1}) is the next episode's (a truncation's bootstrap is already in the "
                "reward), so use dones both as GAE's terminated and as its done.",
    "no_last_value": "The last step of the rollout bootstraps from V(s_T), rollout.last_values: "
                     "the rollout ended, not the episode.",
    "unshifted": "V(s_{t+1}) of step t is values[t + 1] (and last_values after the last step), "
                 "not values[t].",
    "gamma_ignored": "Use config.gamma for the discount.",
    "lambda_one": "Use config.gae_lambda for GAE's λ.",
    "lambda_095": "Use config.gae_lambda for GAE's λ.",
    "normalization_flipped": "Standardise the advantages (mean 0, std 1 over the rollout) if and "
                             "only if config.normalize_advantages is set.",
}


def _parameters_after(fn: Fn, config: A2CConfig, seed: int, name: Optional[str] = None,
                      mistake: Optional[str] = None) -> tuple[list[torch.Tensor], Any, Rollout]:
    """Run one update (the student's ``fn`` when ``name`` is given, else the variant) on fresh
    copies of the setup; the parameters after it, the returned metrics and the rollout used."""
    model, rollout = _update_setup(seed, config)
    optimizer = _sgd_with_stale_gradients(model)
    if name is None:
        metrics = _update_variant(model, optimizer, rollout, config, mistake)
    else:
        metrics = call(fn, name, model, optimizer, rollout, config)
    return [p.detach().clone() for p in model.parameters()], metrics, rollout


def _same_parameters(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(x.shape == y.shape and torch.allclose(x, y, rtol=1e-4, atol=1e-6)
               for x, y in zip(a, b))


@references("course_utils.agents.a2c.a2c_update")
def check_a2c_update(fn: Fn) -> None:
    """Check ``fn(model, optimizer, rollout, config) -> metrics``, A2C's update as
    ``course_utils.agents.a2c.a2c_update``: one step (with plain SGD) on a fixed rollout of a
    fixed model, compared with the reference in every parameter and in the returned ``loss``,
    ``policy_loss``, ``value_loss`` and ``entropy``; twice, without and with advantage
    standardisation and gradient clipping."""
    name = "a2c_update"
    n = 0
    cases = (
        A2CConfig(gamma=0.9, gae_lambda=0.8, value_coef=0.5, entropy_coef=0.05,
                  max_grad_norm=1e6, normalize_advantages=False, n_layers=1, size=8, device="cpu"),
        A2CConfig(gamma=0.95, gae_lambda=0.7, value_coef=0.25, entropy_coef=0.1,
                  max_grad_norm=0.05, normalize_advantages=True, n_layers=1, size=8, device="cpu"),
    )
    for seed, config in enumerate(cases):
        shown = (f"{name}(model, optimizer, rollout of (T, N) = (6, 3), config with gamma="
                 f"{config.gamma}, gae_lambda={config.gae_lambda}, value_coef={config.value_coef}, "
                 f"entropy_coef={config.entropy_coef}, max_grad_norm={config.max_grad_norm:g}, "
                 f"normalize_advantages={config.normalize_advantages})")
        expected, expected_metrics, _ = _parameters_after(None, config, seed)
        untouched, _ = _update_setup(seed, config)
        got, metrics, rollout = _parameters_after(fn, config, seed, name)
        _, original = _update_setup(seed, config)
        for field in _ROLLOUT_FIELDS:
            if not torch.equal(getattr(rollout, field), getattr(original, field)):
                raise AssertionError(f"{name} modified rollout.{field} in place; compute new "
                                     "tensors (the rollout must stay as it was collected).")
        if _same_parameters(got, [p.detach() for p in untouched.parameters()]):
            raise AssertionError(f"{shown} left the parameters unchanged: compute the loss, "
                                 "call backward() on it and take the optimiser's step.")
        if not _same_parameters(got, expected):
            hint = ("The parameters after the step differ from the reference's. Check the "
                    "advantages (GAE on the rollout with V(s_{t+1}) and dones), the λ-returns "
                    "R = Â + V, the three terms of the loss and their coefficients, and the "
                    "order zero_grad, backward, clip, step; check_gae should pass first.")
            for mistake, mistake_hint in _UPDATE_MISTAKES.items():
                wrong, _, _ = _parameters_after(None, config, seed, mistake=mistake)
                if not _same_parameters(wrong, expected) and _same_parameters(got, wrong):
                    hint = mistake_hint
                    break
            raise AssertionError(f"{shown}: {hint}")
        n += 1
        if not isinstance(metrics, dict):
            raise AssertionError(f"{shown} returned {type(metrics).__name__}; expected a dict of "
                                 "the losses, {'loss': …, 'policy_loss': …, 'value_loss': …, "
                                 "'entropy': …}.")
        for key, want in expected_metrics.items():
            if key not in metrics:
                raise AssertionError(f"{shown} returned no {key!r}; expected the keys "
                                     f"{sorted(expected_metrics)}.")
            value = metrics[key]
            value = value.detach().double() if isinstance(value, torch.Tensor) else \
                torch.tensor(float(value), dtype=torch.float64)
            if value.numel() != 1 or not torch.allclose(value.reshape(()), want.double(),
                                                        rtol=1e-4, atol=1e-5):
                shown_value = f"{value.item():.4f}" if value.numel() == 1 else fmt(value)
                raise AssertionError(f"{shown} returned {key} = {shown_value}; expected "
                                     f"{want.item():.4f} (the mean over the T·N samples, the "
                                     "policy term with its minus sign).")
        n += 1
    passed(name, n)
