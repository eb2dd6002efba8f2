"""Checks of notebook 09's PushT exercises: the behaviour-cloning update step and the coverage
of a pose.

Conventions: a BC policy maps observations ``(B, n)`` to normalised actions ``(B, d)``;
``policy.to_unit(actions, observations)`` maps the demonstrated environment actions (pixels on
PushT) into the same frame. A pose is ``(x, y, angle)`` of the T's origin (the middle of the
crossbar's outer edge) in the 512 × 512 workspace; ``course_utils.envs.pusht.t_polygons(pose)``
gives the T's two rectangles as world corners ``(2, 4, 2)``; coverage is
``area(T ∩ goal T) / area(goal T)`` (the T's area is 6300).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

import numpy as np
import torch

from course_utils.checks.common import (call, expect_scalar_loss, expect_tensors_unchanged, Fn,
                                        passed, references)

__all__ = ["check_bc_update", "check_coverage"]


# ------------------------------------------------------------------------------ BC update step

_B = 6  # transitions per batch (≠ d = 2, so that a reduction over the wrong axis shows)
_LEARNING_RATE = 0.05  # plain SGD: unlike Adam, its step grows with the loss's scale


def _policy_and_optimizer() -> tuple[Any, torch.optim.Optimizer]:
    """A small PushT policy (block features, actions in the pusher's frame) with fixed weights,
    and plain SGD on its parameters."""
    from course_utils.agents.bc import BCConfig, BCPolicy
    from course_utils.envs.pusht_features import pusht_features, pusht_pusher_frame
    import gymnasium as gym

    box = gym.spaces.Box(0.0, 512.0, (5,), dtype=np.float32)
    config = BCConfig(n_layers=2, size=16, action_scale=100.0, seed=3, device="cpu")
    with torch.random.fork_rng():  # the check leaves the global generator as it found it
        policy = BCPolicy(box, gym.spaces.Box(0.0, 512.0, (2,), dtype=np.float32), config,
                          pusht_features, pusht_pusher_frame)
    return policy, torch.optim.SGD(policy.parameters(), lr=_LEARNING_RATE)


def _batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Two fixed batches of PushT states ``(B, 5)`` and demonstrated actions ``(B, 2)``, pixels:
    moves of up to 60 px from the pusher."""
    rng = np.random.default_rng(7)
    batches = []
    for _ in range(2):
        states = np.column_stack([rng.uniform(60, 450, (_B, 4)), rng.uniform(0, 2 * np.pi, _B)])
        actions = states[:, :2] + rng.uniform(-60, 60, (_B, 2))
        batches.append((torch.tensor(states, dtype=torch.float32),
                        torch.tensor(actions, dtype=torch.float32)))
    return batches


def _variant(policy: Any, optimizer: torch.optim.Optimizer, observations: torch.Tensor,
             actions: torch.Tensor, mistake: Optional[str]) -> torch.Tensor:
    """The reference update (``mistake`` None) or one of the usual mistakes."""
    predicted = policy(observations)
    target = policy.to_unit(actions, observations)
    if mistake == "pixels":
        loss = ((predicted - actions) ** 2).mean()
    elif mistake == "env_frame":
        loss = ((policy.to_env(predicted, observations) - actions) ** 2).mean()
    elif mistake == "sum":
        loss = ((predicted - target) ** 2).sum()
    elif mistake == "target_from_prediction":
        loss = ((predicted - policy.to_unit(policy.to_env(predicted, observations), observations)) ** 2).mean()
    else:
        loss = ((predicted - target) ** 2).mean()
    if mistake == "ascent":
        loss = -loss
    if mistake != "no_zero_grad":
        optimizer.zero_grad()
    loss.backward()
    if mistake != "no_step":
        optimizer.step()
    return loss.detach()


_HINTS = {
    "pixels": "The loss compared the network's output with the demonstrated actions in PIXELS: "
              "the network predicts normalised actions, so map the demonstrations into its frame "
              "first, policy.to_unit(actions, observations).",
    "env_frame": "The loss was computed in pixels (the prediction mapped by to_env): compare in "
                 "the network's normalised frame, with the targets policy.to_unit(actions, "
                 "observations); a loss in pixels is 10,000 times larger and its step too.",
    "sum": "The loss is summed over the batch: average it over the batch and the action "
           "dimensions (.mean()), or the step size grows with the batch size.",
    "ascent": "The parameters moved UP the loss (a wrong sign): minimise the squared error, "
              "loss.backward() then optimizer.step().",
    "no_zero_grad": "The gradients of the first call were still there in the second: call "
                    "optimizer.zero_grad() before loss.backward() (PyTorch adds new gradients "
                    "to .grad).",
    "no_step": "The parameters did not move: after loss.backward(), optimizer.step() applies "
               "the gradient (and zero_grad must come before backward, not between backward and "
               "step).",
    "target_from_prediction": "The target was built from the prediction, so the loss is about 0 "
                              "and teaches nothing: the target is the DEMONSTRATED action, "
                              "policy.to_unit(actions, observations).",
}


def _run(update: Callable[..., Any], mistake: Optional[str] = None
         ) -> tuple[list[float], list[list[torch.Tensor]], list[Any]]:
    """Two successive updates on fresh copies of the fixed policy and batches: the losses, the
    parameters after each, and what ``update`` returned."""
    policy, optimizer = _policy_and_optimizer()
    losses, states, returned = [], [], []
    for observations, actions in _batches():
        if mistake is None:
            result = update(policy, optimizer, observations, actions)
        else:
            result = _variant(policy, optimizer, observations, actions, mistake)
        returned.append(result)
        losses.append(float(result.detach()) if isinstance(result, torch.Tensor) and result.numel() == 1
                      else math.nan)
        states.append([p.detach().clone() for p in policy.parameters()])
    return losses, states, returned


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.allclose(x, y, atol=1e-6, rtol=1e-4) for x, y in zip(a, b))


def _matches(losses: list[float], states: list[list[torch.Tensor]], mistake: str) -> bool:
    wrong_losses, wrong_states, _ = _run(None, mistake)  # type: ignore[arg-type]
    return all(math.isclose(x, y, rel_tol=1e-4, abs_tol=1e-6) for x, y in zip(losses, wrong_losses)) \
        and all(_same(s, w) for s, w in zip(states, wrong_states))


@references("course_utils.agents.bc.bc_update")
def check_bc_update(fn: Fn) -> None:
    """Check ``fn(policy, optimizer, observations (B, n), actions (B, d)) -> loss``: two
    successive BC updates (plain SGD, fixed weights, fixed PushT batches) compared with the
    reference in the losses returned and the parameters after each step."""
    from course_utils.agents.bc import bc_update

    name = "bc_update"
    shown = f"{name}(policy, optimizer, observations, actions) on the check's two fixed batches of {_B}"
    expected_losses, expected_states, _ = _run(bc_update)
    batches = _batches()
    copies = [{"observations": o.clone(), "actions": a.clone()} for o, a in batches]

    def student(policy, optimizer, observations, actions):
        try:
            return call(fn, name, policy, optimizer, observations, actions)
        except RuntimeError as error:
            if "does not require grad" in str(error):
                raise AssertionError(
                    f"{shown}: loss.backward() found no gradient. The prediction must stay "
                    "connected to the network: do not .detach() it, or compute it under "
                    "torch.no_grad(); only the target is data.") from None
            raise

    policy, optimizer = _policy_and_optimizer()
    losses, states = [], []
    for (observations, actions), copy in zip(batches, copies):
        result = student(policy, optimizer, observations, actions)
        expect_tensors_unchanged(name, {"observations": observations, "actions": actions}, copy)
        loss = expect_scalar_loss(result, shown, "the batch and the action dimensions")
        losses.append(float(loss.detach()))
        states.append([p.detach().clone() for p in policy.parameters()])
    losses_ok = all(math.isclose(x, y, rel_tol=1e-4, abs_tol=1e-6) for x, y in zip(losses, expected_losses))
    first_ok, second_ok = (_same(s, e) for s, e in zip(states, expected_states))
    if losses_ok and first_ok and second_ok:
        passed(name, 2)
        return
    for mistake, hint in _HINTS.items():
        if _matches(losses, states, mistake):
            break
    else:
        if losses_ok and not first_ok:
            hint = ("The loss is right but the step is not: the gradient must be that of the "
                    "returned loss, one optimizer.step() per call.")
        elif losses_ok:
            hint = _HINTS["no_zero_grad"]
        else:
            hint = ("The loss is the mean over batch and action dimensions of (π(s) − u)², "
                    "u = policy.to_unit(actions, observations).")
    got = ", ".join(f"{x:.4f}" for x in losses)
    want = ", ".join(f"{x:.4f}" for x in expected_losses)
    raise AssertionError(f"{shown}: returned the losses {got}, expected {want}"
                         f"{'' if first_ok and second_ok else ', and the parameters after the steps differ'}. "
                         f"{hint}")


# ------------------------------------------------------------------------------------ coverage

_TOLERANCE = 0.01  # a rasterised coverage on a 1-px grid is within about 0.003 of the exact one


def _coverage_cases() -> list[tuple[tuple[float, float, float], tuple[float, float, float], float, str]]:
    """(pose, goal_pose, coverage, why) with coverages computed by hand (axis-aligned Ts) or by
    the exact polygon intersection of course_utils.envs.pusht.coverage (the rotated ones)."""
    from course_utils.envs.pusht import coverage

    q = np.pi / 4
    cases = [
        ((256.0, 256.0, q), (256.0, 256.0, q), 1.0, "A T exactly on its goal covers all of it."),
        ((100.0, 100.0, 0.0), (400.0, 400.0, 1.0), 0.0, "Two Ts far apart do not overlap."),
        # Shifted right by 10: crossbars overlap 110 × 30, stems 20 × 90; (3300 + 1800) / 6300.
        ((266.0, 256.0, 0.0), (256.0, 256.0, 0.0), 5100 / 6300,
         "Shifted by 10 px along x: crossbars overlap 110 × 30, stems 20 × 90, so (3300 + 1800)/6300."),
        # Shifted right by 30: the crossbars overlap 90 × 30; the stems just touch.
        ((286.0, 256.0, 0.0), (256.0, 256.0, 0.0), 2700 / 6300,
         "Shifted by 30 px along x: only the crossbars overlap, 90 × 30 = 2700 of 6300."),
        # Shifted along y by 15: crossbar ∩ crossbar 120 × 15, shifted crossbar ∩ stem 30 × 15,
        # stem ∩ stem 30 × 75: 4500 / 6300.
        ((256.0, 271.0, 0.0), (256.0, 256.0, 0.0), 4500 / 6300,
         "Shifted by 15 px along y: 120 × 15 (crossbars) + 30 × 15 (crossbar on stem) + 30 × 75 "
         "(stems) = 4500 of 6300; a T is two rectangles, and a rectangle of one T can overlap "
         "either rectangle of the other."),
        ((256.0, 256.0, np.pi), (256.0, 256.0, 0.0), 0.0,
         "Turned by π about its origin, the T points the other way: no overlap (the angle matters)."),
    ]
    rotated = (((266.0, 250.0, q + 0.3), (256.0, 256.0, q)), ((250.0, 256.0, 1.0), (256.0, 256.0, 0.2)))
    for pose, goal in rotated:
        cases.append((pose, goal, float(coverage(np.array(pose), np.array(goal))),
                      "Rotated Ts: rotate the T's local corners by the pose's angle, "
                      "world = p + R(θ) local."))
    return cases


def _coverage_mistake(fn_value: float, expected: float) -> str:
    """A hint for the common wrong answers, recognised from the value returned."""
    if abs(fn_value - 100 * expected) < 100 * _TOLERANCE and expected > 0.05:
        return "Return a fraction in [0, 1], not a percentage."
    if 0 < expected < 1 and fn_value < expected - _TOLERANCE:
        iou = expected / (2 - expected)  # |A ∩ B| / |A ∪ B| with |A| = |B|
        if abs(fn_value - iou) < _TOLERANCE:
            return "Divide by the goal T's area (6300), not by the area of the union: coverage, not IoU."
    return ""


@references("course_utils.envs.pusht.coverage")
def check_coverage(fn: Fn) -> None:
    """Check ``fn(pose (3,), goal_pose (3,)) -> float`` returns the fraction of the goal T covered
    by the T at ``pose``, to within 0.01 (so a rasterised answer on a 1-px grid passes), on hand-
    computed shifted Ts, identical and disjoint ones, a T turned by π and two rotated cases."""
    name = "coverage"
    cases = _coverage_cases()
    for pose, goal, expected, why in cases:
        pose_array, goal_array = np.array(pose), np.array(goal)
        shown = (f"{name}(pose={[round(float(v), 4) for v in pose]}, "
                 f"goal_pose={[round(float(v), 4) for v in goal]})")
        result = call(fn, name, pose_array.copy(), goal_array.copy())
        if isinstance(result, torch.Tensor) or np.ndim(result) != 0:
            raise AssertionError(f"{shown} returned {result!r:.80}; expected one number (a float).")
        try:
            value = float(result)
        except (TypeError, ValueError):
            raise AssertionError(f"{shown} returned {result!r:.80}; expected a float in [0, 1].") from None
        if not abs(value - expected) <= _TOLERANCE:
            hint = _coverage_mistake(value, expected) or why
            raise AssertionError(f"{shown} returned {value:.4f}; expected {expected:.4f} (± {_TOLERANCE}). "
                                 f"{hint}")
    passed(name, len(cases))
