"""Unit tests of notebook 09's PushT checks (course_utils.checks.pusht): each check passes
on reference implementations (several correct styles) and fails, with a helpful message, on
plausible wrong answers of students."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib.path import Path

from check_helpers import assert_fails, assert_passes, own_copy
from course_utils.agents.bc import bc_update
from course_utils.envs.pusht import T_AREA, T_RECTANGLES, coverage, t_polygons
from course_utils.checks.pusht import check_bc_update, check_coverage

# The package's answers as a student would write them: the checks refuse the package's own
# functions (checks.common.references).
bc_update, coverage = map(own_copy, (bc_update, coverage))

# What every check must do (fail when unfinished, when returning nothing...) is tested for all
# exported checks at once in test_every_check.py.


# ---------------------------------------------------------------------------------- BC update

def update_functional(policy, optimizer, observations, actions):
    """Correct, with torch.nn.functional, the target under no_grad and the loss not detached."""
    with torch.no_grad():
        target = policy.to_unit(actions, observations)
    loss = F.mse_loss(policy(observations), target)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss


def update_by_hand(policy, optimizer, observations, actions):
    """Correct: the sum of squares divided by the number of entries, zero_grad first."""
    optimizer.zero_grad()
    error = policy(observations) - policy.to_unit(actions, observations)
    loss = (error ** 2).sum() / error.numel()
    loss.backward()
    optimizer.step()
    return loss.detach()


@pytest.mark.parametrize("fn", [bc_update, update_functional, update_by_hand])
def test_bc_update_passes_correct_implementations(fn, capsys):
    assert_passes(check_bc_update, fn, capsys, "bc_update")


def mutant(loss_of, zero_grad=True, step=True):
    """An update step with the loss ``loss_of(policy, observations, actions)`` and the
    optimiser's calls as given."""
    def update(policy, optimizer, observations, actions):
        loss = loss_of(policy, observations, actions)
        if zero_grad:
            optimizer.zero_grad()
        loss.backward()
        if step:
            optimizer.step()
        return loss.detach()
    return update


def unit_error(policy, observations, actions):
    return policy(observations) - policy.to_unit(actions, observations)


def test_bc_update_in_pixels_fails():
    assert_fails(check_bc_update, mutant(lambda p, o, a: ((p(o) - a) ** 2).mean()),
                 "PIXELS", "policy.to_unit(actions, observations)")


def test_bc_update_in_the_environments_frame_fails():
    assert_fails(check_bc_update, mutant(lambda p, o, a: ((p.to_env(p(o), o) - a) ** 2).mean()),
                 "in pixels")


def test_bc_update_sum_instead_of_mean_fails():
    assert_fails(check_bc_update, mutant(lambda p, o, a: (unit_error(p, o, a) ** 2).sum()),
                 "summed over the batch")


def test_bc_update_without_zero_grad_fails():
    assert_fails(check_bc_update, mutant(lambda p, o, a: (unit_error(p, o, a) ** 2).mean(), zero_grad=False),
                 "optimizer.zero_grad()")


def test_bc_update_without_the_optimizers_step_fails():
    assert_fails(check_bc_update, mutant(lambda p, o, a: (unit_error(p, o, a) ** 2).mean(), step=False),
                 "did not move")


def test_bc_update_zero_grad_between_backward_and_step_fails():
    def late_zero_grad(policy, optimizer, observations, actions):
        loss = (unit_error(policy, observations, actions) ** 2).mean()
        loss.backward()
        optimizer.zero_grad()
        optimizer.step()
        return loss.detach()

    assert_fails(check_bc_update, late_zero_grad, "did not move")


def test_bc_update_with_a_detached_prediction_fails():
    def detached(policy, observations, actions):
        return ((policy(observations).detach() - policy.to_unit(actions, observations)) ** 2).mean()

    assert_fails(check_bc_update, mutant(detached), "found no gradient", ".detach()")


def test_bc_update_with_the_target_built_from_the_prediction_fails():
    def from_prediction(policy, observations, actions):
        predicted = policy(observations)
        return ((predicted - policy.to_unit(policy.to_env(predicted, observations), observations)) ** 2).mean()

    assert_fails(check_bc_update, mutant(from_prediction), "built from the prediction")


def test_bc_update_wrong_sign_fails():
    assert_fails(check_bc_update, mutant(lambda p, o, a: -(unit_error(p, o, a) ** 2).mean()), "wrong sign")


def test_bc_update_returning_a_number_fails():
    def item(policy, optimizer, observations, actions):
        return mutant(lambda p, o, a: (unit_error(p, o, a) ** 2).mean())(
            policy, optimizer, observations, actions).item()

    assert_fails(check_bc_update, item, "no .item()")


def test_bc_update_modifying_the_batch_fails():
    def in_place(policy, optimizer, observations, actions):
        loss = mutant(lambda p, o, a: (unit_error(p, o, a) ** 2).mean())(policy, optimizer, observations, actions)
        actions -= 1.0
        return loss

    assert_fails(check_bc_update, in_place, "modified its input actions")


def test_bc_update_check_prints_no_solution_code():
    message = assert_fails(check_bc_update, mutant(lambda p, o, a: ((p(o) - a) ** 2).mean()))
    assert "backward()\n" not in message and "def " not in message


# ------------------------------------------------------------------------------------ coverage

def coverage_exact(pose, goal_pose):
    """Correct: the library's exact polygon intersection."""
    return float(coverage(pose, goal_pose))


def coverage_raster_paths(pose, goal_pose):
    """Correct: a 1-px grid over the goal's bounding box, matplotlib's point-in-polygon test."""
    goal = t_polygons(goal_pose)
    low, high = goal.reshape(-1, 2).min(axis=0), goal.reshape(-1, 2).max(axis=0)
    xs, ys = np.arange(low[0] + 0.5, high[0], 1.0), np.arange(low[1] + 0.5, high[1], 1.0)
    points = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)

    def inside(polygons):
        return Path(polygons[0]).contains_points(points) | Path(polygons[1]).contains_points(points)

    in_goal = inside(goal)
    return (in_goal & inside(t_polygons(pose))).sum() / in_goal.sum()


def _inside_t(points, pose, angle_sign=1.0, rectangles=T_RECTANGLES):
    """Points (M, 2) inside the T at pose, by moving them into the T's frame: R(−θ)(p − origin)."""
    c, s = np.cos(angle_sign * pose[2]), np.sin(angle_sign * pose[2])
    d = points - pose[:2]
    local = np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1]], axis=1)
    low, high = rectangles.min(axis=1), rectangles.max(axis=1)
    return np.any(np.all((local[:, None] >= low) & (local[:, None] <= high), axis=-1), axis=1)


def _grid(spacing=1.0):
    xs = np.arange(spacing / 2, 512, spacing)
    return np.stack(np.meshgrid(xs, xs), axis=-1).reshape(-1, 2)


def coverage_raster_local(pose, goal_pose):
    """Correct: the whole workspace on a 1-px grid, inside tests in each T's own frame."""
    points = _grid()
    in_goal = _inside_t(points, goal_pose)
    return float((in_goal & _inside_t(points, pose)).sum() / in_goal.sum())


@pytest.mark.parametrize("fn", [coverage_exact, coverage_raster_paths, coverage_raster_local])
def test_coverage_passes_correct_implementations(fn, capsys):
    assert_passes(check_coverage, fn, capsys, "coverage")


def test_coverage_ignoring_the_angle_fails():
    def no_angle(pose, goal_pose):
        return coverage_raster_local(np.array([*pose[:2], 0.0]), np.array([*goal_pose[:2], 0.0]))

    assert_fails(check_coverage, no_angle, "Turned by π")


def test_coverage_as_intersection_over_union_fails():
    def iou(pose, goal_pose):
        points = _grid()
        a, b = _inside_t(points, pose), _inside_t(points, goal_pose)
        return float((a & b).sum() / (a | b).sum())

    assert_fails(check_coverage, iou, "not IoU")


def test_coverage_as_a_percentage_fails():
    assert_fails(check_coverage, lambda p, g: 100 * coverage_exact(p, g), "not a percentage")


def test_coverage_of_the_crossbar_only_fails():
    def crossbar_only(pose, goal_pose):
        points = _grid()
        in_goal = _inside_t(points, goal_pose)
        return float((in_goal & _inside_t(points, pose, rectangles=T_RECTANGLES[:1])).sum() / in_goal.sum())

    assert_fails(check_coverage, crossbar_only, "expected 1.0000")


def test_coverage_rotating_the_wrong_way_fails():
    def wrong_way(pose, goal_pose):
        points = _grid()
        in_goal = _inside_t(points, goal_pose, angle_sign=-1.0)
        return float((in_goal & _inside_t(points, pose, angle_sign=-1.0)).sum() / in_goal.sum())

    assert_fails(check_coverage, wrong_way, "Rotated Ts")


def test_coverage_divided_by_the_workspace_fails():
    def per_workspace(pose, goal_pose):
        points = _grid()
        return float((_inside_t(points, goal_pose) & _inside_t(points, pose)).sum() / len(points))

    assert_fails(check_coverage, per_workspace, "A T exactly on its goal covers all of it")


def test_coverage_returning_an_array_fails():
    assert_fails(check_coverage, lambda p, g: np.array([coverage_exact(p, g)]), "expected one number")


def test_coverage_hand_computed_cases_agree_with_the_area():
    # The check's hand-computed fractions: two axis-aligned Ts, checked with the exact function.
    goal = np.array([256.0, 256.0, 0.0])
    for shift, area in (((10, 0), 3300 + 1800), ((30, 0), 2700), ((0, 15), 1800 + 450 + 2250)):
        pose = goal + np.array([*shift, 0.0])
        assert coverage(pose, goal) == pytest.approx(area / T_AREA)
