"""Checks of notebook 06's exercises: the TD error, the n-step return, generalised advantage
estimation (GAE) and the actor-critic loss.

Conventions (those of ``course_utils.returns.gae`` and the on-policy agents): time is the first
dimension, ``(T,)`` for one environment or ``(T, N)`` for N environments stepped together;
``terminated`` is 1.0 where step t reached a terminal state (no bootstrap: V(s_{t+1}) = 0) and
``done`` is 1.0 where the episode ended at step t, terminated or truncated (the λ-trace stops);
``next_values[t]`` is V of the observation that followed step t (at a truncation, the episode's
final observation). Every known-answer case puts a large value on the next state of a terminal
step, so a missing terminal mask cannot go unnoticed. Targets and advantages are constants for the
losses that use them: the n-step return and GAE must come back without gradient.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import torch

from course_utils.checks.common import (call, expect_close, expect_scalar_loss, expect_tensor, fmt,
                                                Fn, passed, references)
from course_utils.returns import gae as _library_gae

__all__ = [
    "check_actor_critic_loss",
    "check_gae",
    "check_n_step_return",
    "check_td_error",
]

TERMINAL_HINT = ("A terminated step has no future: δ = r − V(s) there, whatever the critic says "
                 "about s' (multiply the bootstrap term by 1 − terminated).")
INVERTED_HINT = "The mask is inverted: bootstrap where terminated = 0, not where it is 1."
NO_GAMMA_HINT = "Discount the next state's value: r + γ (1 − terminated) V(s')."
HALF_HINT = ("This course's value loss has no ½: value_coef · mean((R − V)²), i.e. "
             "value_coef * F.mse_loss(values, returns). You multiplied it by ½.")
ENTROPY_SIGN_HINT = ("The entropy bonus is SUBTRACTED: − entropy_coef · mean(H). Minimising the "
                     "loss then keeps the entropy up, i.e. the policy exploring.")
SUM_HINT = "Average over the batch (mean) instead of summing, for every term of the loss."
DETACH_TARGET_HINT = ("Compute it from values.detach() (or under torch.no_grad()), or return "
                      "result.detach().")


# --------------------------------------------------------------------------- shared helpers


def _expect_unchanged(function: str, inputs: dict[str, torch.Tensor],
                      copies: dict[str, torch.Tensor]) -> None:
    """The student's ``function`` left each input tensor as it was (``copies`` are clones)."""
    for argument, tensor in inputs.items():
        if not torch.equal(tensor.detach(), copies[argument]):
            raise AssertionError(f"{function} modified its input {argument} in place; compute a "
                                 "new tensor (the rollout must stay as it was collected).")


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


def _expect_loss_value(loss: torch.Tensor, expected: float, shown: str,
                       mistakes: Sequence[tuple[float, str]], hint: str) -> None:
    """The scalar ``loss`` equals ``expected``; otherwise the hint of the matching mistake."""
    value = loss.item()
    if not math.isfinite(value):
        raise AssertionError(f"{shown} returned {value}; expected {expected:.4f}. {hint}")
    if math.isclose(value, expected, rel_tol=1e-4, abs_tol=1e-4):
        return
    for wrong, wrong_hint in mistakes:
        if math.isclose(wrong, expected, rel_tol=1e-4, abs_tol=1e-4):
            continue
        if math.isclose(value, wrong, rel_tol=1e-4, abs_tol=1e-4):
            hint = wrong_hint
            break
    raise AssertionError(f"{shown} returned {value:.4f}; expected {expected:.4f}. {hint}")


def _gradients(loss: torch.Tensor, inputs: dict[str, torch.Tensor], shown: str
               ) -> dict[str, Optional[torch.Tensor]]:
    """∂loss/∂input for every input (None where no gradient reaches it)."""
    if not loss.requires_grad:
        raise AssertionError(f"{shown} has no gradient: do not detach log_probs or values, and do "
                             "not use .item() or NumPy inside the loss.")
    grads = torch.autograd.grad(loss, list(inputs.values()), allow_unused=True)
    return dict(zip(inputs, grads))


def _expect_gradient(grad: Optional[torch.Tensor], expected: torch.Tensor, argument: str,
                     shown: str, missing: str, hint: str) -> None:
    if grad is None or (grad.abs().max() == 0 and expected.abs().max() > 0):
        raise AssertionError(f"{shown}: no gradient reaches {argument}. {missing}")
    expect_close(grad, expected, f"the gradient of {shown} with respect to {argument}", hint)


def _expect_value_and_entropy_gradients(grads: dict[str, Optional[torch.Tensor]],
                                        difference: torch.Tensor, value_coef: float,
                                        entropy_coef: float, shown: str) -> None:
    """The gradients of ``… + value_coef · mean((R − V)²) − entropy_coef · mean(H)`` into
    ``values`` and ``entropy`` (``difference`` is ``R − V``, shape ``(B,)``): the part an
    actor-critic loss and PPO's loss share."""
    B = len(difference)
    _expect_gradient(grads["values"], -2.0 * value_coef * difference / B, "values", shown,
                     "Do not detach values: the critic learns from value_coef · mean((R − V)²).",
                     "∂L/∂V_i must be −2 · value_coef · (R_i − V_i) / B: value_coef · "
                     "mean((R − V)²), no ½.")
    _expect_gradient(grads["entropy"], torch.full((B,), -entropy_coef / B), "entropy", shown,
                     "Do not detach entropy: the bonus keeps the policy exploring only if it is "
                     "differentiated.",
                     "∂L/∂H_i must be −entropy_coef / B: − entropy_coef · mean(H).")


def _value_loss(values: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
    return ((returns.double() - values.double()) ** 2).mean()


# --------------------------------------------------------------------------------- TD error


def _td(rewards, values, next_values, terminated, gamma):
    return rewards + gamma * (1.0 - terminated) * next_values - values


def _td_mistakes(rewards, values, next_values, terminated, gamma):
    r, v, nv, d = (x.double() for x in (rewards, values, next_values, terminated))
    return [
        (_td(r, v, nv, 0.0, gamma), TERMINAL_HINT),
        (_td(r, v, nv, 1.0 - d, gamma), INVERTED_HINT),
        (r + (1.0 - d) * nv - v, NO_GAMMA_HINT),
        (r + gamma * (1.0 - d) * nv,
         "That is the TD target r + γ (1 − terminated) V(s'): the TD error subtracts the "
         "current estimate, δ = target − V(s)."),
        (-_td(r, v, nv, d, gamma),
         "Check the sign: δ = r + γ (1 − terminated) V(s') − V(s), positive when the step went "
         "better than the critic expected."),
        (_td(r, nv, v, d, gamma),
         "values and next_values are swapped: V(s') (next_values) is bootstrapped, V(s) (values) "
         "is subtracted."),
        ((1.0 - d) * (r + gamma * nv) - v,
         "The reward of a terminated step still counts: δ = r − V(s) there. Mask only the "
         "bootstrap term, γ (1 − terminated) V(s')."),
        (r + gamma * (1.0 - d) * (nv - v),
         "Only V(s') is discounted and masked; V(s) is subtracted in full: "
         "δ = r + γ (1 − terminated) V(s') − V(s)."),
    ]


@references("course_utils.returns.gae")
def check_td_error(fn: Fn) -> None:
    """Check ``fn(rewards, values, next_values, terminated, gamma) -> δ`` is the TD error
    ``δ = r + γ (1 − terminated) V(s') − V(s)``, elementwise: every argument a tensor of the same
    shape ``(B,)`` (or ``(T, N)``), ``terminated`` 1.0 where the step reached a terminal state."""
    name = "td_error"
    hint = ("δ = r + γ (1 − terminated) V(s') − V(s): rewards + gamma * (1 - terminated) * "
            "next_values - values.")
    n = 0
    # B = 4 steps; step 2 is terminal and its next value is large.
    # δ = [1 + 0.9·2 − 0.5, 0 + 0.9·3 − 2, −1 − 1, 2 + 0.9·1 + 1] = [2.3, 0.7, −2.0, 3.9]
    rewards_list, values_list = [1.0, 0.0, -1.0, 2.0], [0.5, 2.0, 1.0, -1.0]
    next_list, terminated_list = [2.0, 3.0, 50.0, 1.0], [0.0, 0.0, 1.0, 0.0]
    inputs = {"rewards": torch.tensor(rewards_list), "values": torch.tensor(values_list),
              "next_values": torch.tensor(next_list), "terminated": torch.tensor(terminated_list)}
    copies = {k: v.clone() for k, v in inputs.items()}
    shown = (f"{name}(rewards={rewards_list}, values={values_list}, next_values={next_list}, "
             f"terminated={terminated_list}, gamma=0.9)")
    result = call(fn, name, *inputs.values(), 0.9)
    _expect_unchanged(name, inputs, copies)
    _expect_match(result, torch.tensor([2.3, 0.7, -2.0, 3.9]), shown,
                  _td_mistakes(*inputs.values(), 0.9), hint)
    n += 1

    r, v, nv, d = inputs.values()
    for gamma, why in ((0.0, "With γ = 0 the TD error is r − V(s)."),
                       (1.0, "γ = 1 is allowed (no discount): δ = r + (1 − terminated) V(s') − "
                             "V(s).")):
        shown = f"{name}(…the same steps…, gamma={gamma})"
        _expect_match(call(fn, name, r, v, nv, d, gamma), _td(r, v, nv, d, gamma), shown,
                      _td_mistakes(r, v, nv, d, gamma), why)
        n += 1
    shown = f"{name}(…the same steps…, terminated=[1.0, 1.0, 1.0, 1.0], gamma=0.99)"
    _expect_match(call(fn, name, r, v, nv, torch.ones(4), 0.99), r - v, shown,
                  _td_mistakes(r, v, nv, torch.ones(4), 0.99), TERMINAL_HINT)
    n += 1

    generator = torch.Generator().manual_seed(60)
    for shape in ((64,), (16, 4)):
        r = torch.randn(shape, generator=generator)
        v, nv = (torch.randn(shape, generator=generator) * 5 for _ in range(2))
        d = (torch.rand(shape, generator=generator) < 0.2).float()
        what = (f"a random batch of {shape[0]} steps" if len(shape) == 1 else
                f"random steps of shape (T, N) = {shape}, time first")
        _expect_match(call(fn, name, r, v, nv, d, 0.99), _td(r, v, nv, d, 0.99),
                      f"{name}({what}, gamma=0.99)", _td_mistakes(r, v, nv, d, 0.99),
                      hint + " Elementwise: it works unchanged on any shape.")
        n += 1
    passed(name, n)


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
        _expect_unchanged(name, inputs, copies)
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
        _expect_unchanged(name, inputs, copies)
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


# ------------------------------------------------------------------------ actor-critic loss


def _ac_loss(log_probs, advantages, values, returns, entropy, value_coef, entropy_coef, *,
             policy_sign: float = 1.0, weights=None, value_term=None, entropy_sign: float = 1.0,
             reduce=torch.mean) -> float:
    lp, adv, ent = log_probs.double(), advantages.double(), entropy.double()
    weights = adv if weights is None else weights.double()
    value_term = (returns.double() - values.double()) ** 2 if value_term is None else value_term
    return (-policy_sign * reduce(lp * weights) + value_coef * reduce(value_term)
            - entropy_sign * entropy_coef * reduce(ent)).item()


def _ac_mistakes(log_probs, advantages, values, returns, entropy, value_coef, entropy_coef):
    args = (log_probs, advantages, values, returns, entropy, value_coef, entropy_coef)
    difference = returns.double() - values.double()
    return [
        (_ac_loss(*args, policy_sign=-1.0),
         "Check the sign of the policy term: optimisers MINIMISE, and the actor must MAXIMISE "
         "mean(log π · A), so the loss has −mean(log π · A)."),
        (_ac_loss(*args, value_term=0.5 * difference ** 2), HALF_HINT),
        (_ac_loss(*args, entropy_sign=-1.0), ENTROPY_SIGN_HINT),
        (_ac_loss(*args, reduce=torch.sum), SUM_HINT),
        (_ac_loss(log_probs, advantages, values, returns, entropy, 1.0, entropy_coef),
         "Weigh the value loss by value_coef: + value_coef · mean((R − V)²)."),
        (_ac_loss(log_probs, advantages, values, returns, entropy, value_coef, 0.0),
         "The entropy bonus is missing: − entropy_coef · mean(H)."),
        (_ac_loss(log_probs, advantages, values, returns, entropy, value_coef, 1.0),
         "Weigh the entropy bonus by entropy_coef: − entropy_coef · mean(H)."),
        (_ac_loss(*args, value_term=difference.abs()),
         "The value loss is the mean SQUARED error, mean((R − V)²), not the absolute error."),
        (_ac_loss(*args, value_term=difference),
         "Square the value error: mean((R − V)²); a plain mean(R − V) can be made arbitrarily "
         "small by raising V."),
        (_ac_loss(*args, value_term=advantages.double() ** 2),
         "The value loss compares the critic's values with the returns: mean((returns − values)²). "
         "The advantages are detached, so a loss built from them does not train the critic."),
        (_ac_loss(*args, weights=returns),
         "The policy term weighs log π by the ADVANTAGE (how much better than the critic "
         "expected), not by the return: −mean(log π · A)."),
        (_ac_loss(*args, policy_sign=0.0),
         "The policy term −mean(log π · A) is missing."),
    ]


@references("course_utils.agents.actor_critic.actor_critic_loss")
def check_actor_critic_loss(fn: Fn) -> None:
    """Check ``fn(log_probs (B,), advantages (B,), values (B,), returns (B,), entropy (B,),
    value_coef, entropy_coef) -> scalar`` is
    ``−mean(log π · A) + value_coef · mean((R − V)²) − entropy_coef · mean(H)``, with the
    advantages treated as constants (no gradient flows into them) and no ½ in the value loss."""
    name = "actor_critic_loss"
    hint = ("L = −mean(log π · A.detach()) + value_coef · mean((R − V)²) − entropy_coef · "
            "mean(H).")
    n = 0
    lists = {"log_probs": [-0.5, -1.0, -2.0, -0.25], "advantages": [1.0, -2.0, 1.5, 3.0],
             "values": [0.5, 1.0, -1.0, 2.0], "returns": [2.0, -1.5, 0.5, 3.0],
             "entropy": [0.7, 0.6, 0.5, 0.4]}
    # −mean(log π·A) = −(−0.5 + 2.0 − 3.0 − 0.75)/4 = 0.5625; R − V = [1.5, −2.5, 1.5, 1.0],
    # mean((R − V)²) = 11.75/4 = 2.9375; mean(H) = 0.55.
    # L = 0.5625 + 0.4·2.9375 − 0.05·0.55 = 1.71
    value_coef, entropy_coef, expected = 0.4, 0.05, 1.71
    inputs = {k: torch.tensor(x, requires_grad=k != "returns") for k, x in lists.items()}
    copies = {k: v.detach().clone() for k, v in inputs.items()}
    shown = f"{name}(" + ", ".join(f"{k}={x}" for k, x in lists.items()) \
        + f", value_coef={value_coef}, entropy_coef={entropy_coef})"
    loss = expect_scalar_loss(call(fn, name, *inputs.values(), value_coef, entropy_coef), shown)
    _expect_unchanged(name, inputs, copies)
    plain = {k: v.detach() for k, v in inputs.items()}
    _expect_loss_value(loss, expected, shown,
                       _ac_mistakes(*plain.values(), value_coef, entropy_coef), hint)
    n += 1

    grads = _gradients(loss, {k: v for k, v in inputs.items() if k != "returns"}, shown)
    if grads["advantages"] is not None and grads["advantages"].abs().max() > 0:
        raise AssertionError(
            f"{shown} sends a gradient into advantages: detach them (advantages.detach()). "
            "A = r + γ V(s') − V(s) is computed from the critic; without the detach the policy "
            "term −log π · A would also train the critic, to make the advantages of likely "
            "actions large. The critic learns from the value loss alone.")
    B = len(lists["log_probs"])
    advantages, difference = plain["advantages"], plain["returns"] - plain["values"]
    _expect_gradient(grads["log_probs"], -advantages / B, "log_probs", shown,
                     "Do not detach log_probs: the policy learns through them.",
                     "∂L/∂log π_i must be −A_i / B: −mean(log π · A).")
    _expect_value_and_entropy_gradients(grads, difference, value_coef, entropy_coef, shown)
    n += 1

    shown = f"{name}(…the same batch…, value_coef=0.0, entropy_coef=0.0)"
    loss = expect_scalar_loss(call(fn, name, *plain.values(), 0.0, 0.0), shown)
    _expect_loss_value(loss, 0.5625, shown, _ac_mistakes(*plain.values(), 0.0, 0.0),
                       "With both coefficients 0 the loss is the policy term −mean(log π · A) "
                       "alone.")
    n += 1

    generator = torch.Generator().manual_seed(63)
    batch = [torch.randn(64, generator=generator) * scale for scale in (1.0, 2.0, 3.0, 3.0, 1.0)]
    batch[0], batch[4] = -batch[0].abs(), batch[4].abs()
    shown = f"{name}(a random batch of 64 steps, value_coef=0.25, entropy_coef=0.01)"
    loss = expect_scalar_loss(call(fn, name, *batch, 0.25, 0.01), shown)
    _expect_loss_value(loss, _ac_loss(*batch, 0.25, 0.01), shown,
                       _ac_mistakes(*batch, 0.25, 0.01), hint)
    n += 1
    passed(name, n)
