"""Checks of notebook 09's PushT exercises: the behaviour-cloning loss and the coverage of a pose.

Conventions: actions are normalised to ``[-1, 1]``, a batch of ``B`` of them ``(B, d)``. A pose
is ``(x, y, angle)`` of the T's origin (the middle of the crossbar's outer edge) in the 512 × 512
workspace; ``course_utils.envs.pusht.t_polygons(pose)`` gives the T's two rectangles as world
corners ``(2, 4, 2)``; coverage is ``area(T ∩ goal T) / area(goal T)`` (the T's area is 6300).
"""

from __future__ import annotations

import numpy as np
import torch

from course_utils.checks.common import (call, expect_close, expect_scalar_loss,
                                                expect_tensors_unchanged, fmt, Fn, passed, references)

__all__ = ["check_bc_loss", "check_coverage"]


# ------------------------------------------------------------------------------------- BC loss

# B = 3 transitions of d = 2 (B ≠ d, so a mean over the wrong axis shows): the differences
# predicted − demonstrated are [[0.5, −1], [0, 2], [−0.25, 0.5]], not all of size 0 or 1, so
# that squared and absolute errors differ.
_PREDICTED = [[0.5, -0.5], [0.0, 1.0], [-0.75, 0.25]]
_DEMONSTRATED = [[0.0, 0.5], [0.0, -1.0], [-0.5, -0.25]]
_OVER = "the batch and the action dimensions"  # what the BC loss averages over


def _bc_mistake(value: float, predicted: torch.Tensor, demonstrated: torch.Tensor) -> str:
    """The hint for a wrong loss value, from the mistakes students make."""
    error = predicted - demonstrated
    B, d = error.shape
    mse = (error ** 2).mean().item()
    candidates = [
        (-mse, "Check the sign: the loss is the squared error itself, which the optimiser MINIMISES."),
        (mse * B * d, "Average over the batch and the action dimensions (.mean()), not .sum(): a sum "
                      "grows with the batch size, and so would the step size."),
        (mse * d, "Average over the action dimensions too: .mean() over all B·d entries, not a "
                  "sum over the action dimensions then a mean over the batch."),
        (error.abs().mean().item(), "That is the mean ABSOLUTE error; the BC loss here is the mean "
                                    "SQUARED error, (predicted − demonstrated)²."),
        (error.mean().item() ** 2, "Square each difference first, then average: mean((p − a)²), not "
                                   "(mean(p − a))²."),
        (mse ** 0.5, "No square root: the loss is the mean squared error, not its root."),
    ]
    for wrong, hint in candidates:
        if abs(value - wrong) < 1e-4:
            return hint
    return "loss = mean over batch and action dimensions of (predicted − demonstrated)²."


@references("course_utils.agents.bc.bc_mse_loss")
def check_bc_loss(fn: Fn) -> None:
    """Check ``fn(predicted_actions (B, d), demo_actions (B, d)) -> scalar`` is the mean squared
    error over batch and action dimensions, with its gradient intact and its inputs untouched."""
    name = "bc_loss"
    predicted = torch.tensor(_PREDICTED, requires_grad=True)
    demonstrated = torch.tensor(_DEMONSTRATED)
    copies = {"predicted_actions": predicted.detach().clone(), "demo_actions": demonstrated.clone()}
    shown = f"{name}(predicted_actions={_PREDICTED}, demo_actions={_DEMONSTRATED})"
    loss = expect_scalar_loss(call(fn, name, predicted, demonstrated), shown, _OVER)
    expect_tensors_unchanged(name, {"predicted_actions": predicted.detach(), "demo_actions": demonstrated},
                             copies)
    expected = ((predicted.detach() - demonstrated) ** 2).mean().item()  # 5.5625 / 6
    value = loss.item()
    if abs(value - expected) > 1e-4:
        raise AssertionError(f"{shown} returned {value:.4f}; expected {expected:.4f}. "
                             f"{_bc_mistake(value, predicted.detach(), demonstrated)}")
    if not loss.requires_grad:
        raise AssertionError(f"{shown} has no gradient: do not detach predicted_actions or use "
                             ".item()/NumPy inside the loss; the policy learns through it.")
    (grad,) = torch.autograd.grad(loss, predicted)
    expect_close(grad, 2 * (predicted.detach() - demonstrated) / demonstrated.numel(),
                 f"the gradient of {shown} with respect to predicted_actions",
                 "∂L/∂p_ij must be 2 (p_ij − a_ij) / (B·d).")
    generator = torch.Generator().manual_seed(13)
    p, a = torch.randn(256, 2, generator=generator), torch.rand(256, 2, generator=generator) * 2 - 1
    result = expect_scalar_loss(call(fn, name, p, a), f"{name}(256 random predictions and actions)",
                                _OVER)
    expected = ((p - a) ** 2).mean()
    if abs(result.item() - expected.item()) > 1e-4:
        raise AssertionError(f"{name}(256 random predictions and actions) returned {fmt(result)}; expected "
                             f"{expected.item():.4f}. {_bc_mistake(result.item(), p, a)}")
    zero = expect_scalar_loss(call(fn, name, a.clone(), a), f"{name}(a, a)", _OVER)
    if abs(zero.item()) > 1e-6:
        raise AssertionError(f"{name}(a, a) returned {zero.item():.4f}; a policy that predicts the "
                             "demonstrated actions exactly must have loss 0.")
    passed(name, 4)


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
