"""Unit tests of course_utils.envs.pusht: PushT (gym-pusht 0.1.8 on pymunk 7) and goal-conditioned PushT."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from gymnasium.utils.env_checker import check_env  # noqa: E402

import course_utils.envs  # noqa: E402,F401  (registers the environments)
from course_utils.envs import GOAL_PUSHT_ID, PUSHT_ID  # noqa: E402
from course_utils.envs.pusht import (BLOCK_COG, BLOCK_MOMENT, GOAL_POSE, T_AREA,  # noqa: E402
                                     GoalPushTEnv, PushTEnv, coverage, coverage_reward,
                                     polygon_intersection_area, t_keypoints, t_polygons)

FAR_STATE = np.array([480.0, 480.0, 120.0, 120.0, 0.0])  # agent in a corner, block far from the goal


def rasterised_coverage(pose: np.ndarray, goal_pose: np.ndarray, step: float = 0.5) -> float:
    """Coverage estimated on a grid of points (cell centres of side ``step``) over the goal T's box."""
    goal = t_polygons(goal_pose).reshape(-1, 2)
    low, high = goal.min(axis=0), goal.max(axis=0)
    xs = np.arange(low[0], high[0], step) + step / 2
    ys = np.arange(low[1], high[1], step) + step / 2
    points = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)

    def inside_t(pose):
        local = (points - pose[:2]) @ np.array([[np.cos(pose[2]), -np.sin(pose[2])],
                                                 [np.sin(pose[2]), np.cos(pose[2])]])
        bar = (np.abs(local[:, 0]) <= 60) & (local[:, 1] >= 0) & (local[:, 1] <= 30)
        stem = (np.abs(local[:, 0]) <= 15) & (local[:, 1] > 30) & (local[:, 1] <= 120)
        return bar | stem

    return float((inside_t(np.asarray(pose)) & inside_t(np.asarray(goal_pose))).sum() * step**2 / T_AREA)


# ------------------------------------------------------------------------------------- spaces
def test_registered_with_time_limit_and_spaces():
    env = gym.make(PUSHT_ID)
    assert env.spec.max_episode_steps == 300
    assert env.action_space == gym.spaces.Box(0.0, 512.0, shape=(2,), dtype=np.float32)
    assert env.observation_space.shape == (5,) and env.observation_space.dtype == np.float64
    np.testing.assert_allclose(env.observation_space.high, [512, 512, 512, 512, 2 * np.pi])
    observation, info = env.reset(seed=0)
    assert observation.shape == (5,) and env.observation_space.contains(observation)
    goal_env = gym.make(GOAL_PUSHT_ID)
    assert goal_env.spec.max_episode_steps == 300
    assert set(goal_env.observation_space.spaces) == {"observation", "achieved_goal", "desired_goal"}
    assert goal_env.observation_space["achieved_goal"].shape == (3,)


@pytest.mark.parametrize("obs_type", ["state", "keypoints", "pixels"])
def test_passes_gymnasium_checker(obs_type):
    check_env(PushTEnv(obs_type=obs_type, render_mode="rgb_array", render_size=64), skip_render_check=True)


@pytest.mark.parametrize("obs_type", ["state", "keypoints"])
def test_observations_lie_in_the_observation_space(obs_type):
    # check_env resets once, unseeded; resets 0-299 include T's that stick out of the workspace
    # (seeds 43, 56 and 60 among them; 56 has a corner at x = -16), which a [0, 512] keypoint box
    # did not contain.
    env = PushTEnv(obs_type=obs_type)
    actions = np.random.default_rng(0).uniform(0, 512, size=(20, 2))
    for seed in range(300):
        observation, _ = env.reset(seed=seed)
        assert env.observation_space.contains(observation), (seed, observation)
        if seed % 30 == 0:  # and after pushes
            for action in actions:
                observation = env.step(action)[0]
                assert env.observation_space.contains(observation), (seed, observation)


def test_goal_env_passes_gymnasium_checker():
    check_env(GoalPushTEnv(), skip_render_check=True)


def test_keypoints_and_pixels_observations():
    state = np.array([100.0, 400.0, 250.0, 200.0, 0.3])
    env = PushTEnv(obs_type="keypoints")
    keypoints, _ = env.reset(options={"reset_to_state": state})
    assert keypoints.shape == (18,)
    np.testing.assert_allclose(keypoints[:16], t_keypoints(state[2:]).ravel())
    np.testing.assert_allclose(keypoints[16:], state[:2])
    corners = keypoints[:16].reshape(8, 2)
    # gym-pusht's diagram: 0-1 the crossbar's outer edge (120), 1-2 its end (30), 6-7 the stem's end (30).
    assert np.linalg.norm(corners[1] - corners[0]) == pytest.approx(120)
    assert np.linalg.norm(corners[2] - corners[1]) == pytest.approx(30)
    assert np.linalg.norm(corners[6] - corners[7]) == pytest.approx(30)
    env = PushTEnv(obs_type="pixels", observation_width=64, observation_height=48)
    observation, _ = env.reset(options={"reset_to_state": state})
    assert observation["pixels"].shape == (48, 64, 3) and observation["pixels"].dtype == np.uint8
    np.testing.assert_allclose(observation["agent_pos"], state[:2])
    default, _ = PushTEnv(obs_type="pixels").reset(seed=0)
    assert default["pixels"].shape == (96, 96, 3)


# ----------------------------------------------------------------------------------- dynamics
def test_reset_is_deterministic_with_a_seed():
    env = PushTEnv()
    first, _ = env.reset(seed=3)
    actions = np.random.default_rng(0).uniform(0, 512, size=(30, 2))
    run1 = [env.step(a)[0] for a in actions]
    second, _ = env.reset(seed=3)
    run2 = [env.step(a)[0] for a in actions]
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(np.array(run1), np.array(run2))
    other, _ = env.reset(seed=4)
    assert not np.array_equal(first, other)


def test_reset_distribution_is_gym_pusht_s():
    env = PushTEnv()
    starts = np.array([env.reset(seed=s)[0] for s in range(200)])
    assert np.all(starts[:, :2] == np.round(starts[:, :2]))  # integer positions, as in gym-pusht
    assert starts[:, :2].min() >= 50 and starts[:, :2].max() < 450
    assert starts[:, 2:4].min() >= 100 and starts[:, 2:4].max() < 400
    assert np.all((starts[:, 4] >= 0) & (starts[:, 4] < 2 * np.pi))
    assert starts[:, 4].std() > 1.0  # angles spread over the whole circle


@pytest.mark.parametrize("state", [[10.0, 20.0, 300.0, 150.0, 1.0], [256.0, 100.0, 200.5, 333.25, 5.5],
                                   [400.0, 400.0, 120.0, 380.0, 0.0]])
def test_reset_to_state_is_exact(state):
    env = PushTEnv()
    observation, info = env.reset(options={"reset_to_state": state})
    # Exact up to floating-point rounding (pymunk stores the centre of gravity, not the origin).
    np.testing.assert_allclose(observation, state, rtol=0, atol=1e-9)
    np.testing.assert_allclose(info["block_pose"], state[2:], rtol=0, atol=1e-9)
    # An angle outside [0, 2π) comes back modulo 2π, the same pose.
    wrapped, _ = env.reset(options={"reset_to_state": [*state[:4], state[4] + 4 * np.pi]})
    np.testing.assert_allclose(wrapped, state, rtol=0, atol=1e-9)


def test_reset_to_state_rejects_a_bad_state():
    env = PushTEnv()
    with pytest.raises(ValueError, match="reset_to_state"):
        env.reset(options={"reset_to_state": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match="reset_to_state"):
        env.reset(options={"reset_to_state": [1.0, 2.0, 3.0, np.nan, 0.0]})


def test_block_has_gym_pusht_s_mass_properties():
    env = PushTEnv()
    env.reset(seed=0)
    assert env.block.mass == 1 and env.block.moment == BLOCK_MOMENT == 3000
    assert tuple(env.block.center_of_gravity) == BLOCK_COG == (0, 45)
    assert all(shape.friction == 0 for shape in env.space.shapes)  # frictionless, as in gym-pusht
    assert env.space.damping == 0 and tuple(env.space.gravity) == (0, 0)


def test_agent_follows_the_pd_controller():
    """The agent's path from rest equals the PD recurrence, 10 substeps of 0.01 s per step."""
    env = PushTEnv()
    env.reset(options={"reset_to_state": FAR_STATE})  # nothing to touch on the way
    target = np.array([300.0, 420.0])
    position, velocity = FAR_STATE[:2].copy(), np.zeros(2)
    for _ in range(5):
        observation, *_ = env.step(target)
        for _ in range(10):  # gym-pusht's k_p = 100, k_v = 20, dt = 0.01 (literals, not the module's)
            velocity = velocity + (100 * (target - position) - 20 * velocity) * 0.01
            position = position + velocity * 0.01  # semi-implicit Euler, as pymunk integrates
        np.testing.assert_allclose(observation[:2], position, rtol=0, atol=1e-9)
    # Critically damped: after 5 steps (0.5 s) it is close but has not overshot.
    assert 0 < np.linalg.norm(target - observation[:2]) < 10
    np.testing.assert_array_equal(observation[2:], FAR_STATE[2:])  # the block was not touched


def test_block_moves_only_while_pushed():
    env = PushTEnv()
    # Agent just below the stem's end of an upright T (stem pointing down), pushing up.
    state = np.array([256.0, 400.0, 256.0, 250.0, 0.0])
    env.reset(options={"reset_to_state": state})
    for _ in range(5):
        observation, *_ = env.step([256.0, 330.0])
    assert observation[3] < 250.0 - 10  # pushed up along the stem, without turning
    assert abs(observation[2] - 256.0) < 1e-6 and min(observation[4], 2 * np.pi - observation[4]) < 1e-6
    for _ in range(5):
        observation, *_ = env.step([256.0, 480.0])  # retreat (the agent first brakes)
    left_at = observation.copy()
    for _ in range(5):
        observation, *_ = env.step([256.0, 480.0])
    np.testing.assert_array_equal(observation[2:], left_at[2:])  # quasi-static: no drift


# ----------------------------------------------------------------------------------- coverage
def test_coverage_is_one_at_the_goal_and_zero_far_away():
    assert coverage(GOAL_POSE, GOAL_POSE) == pytest.approx(1.0, abs=1e-12)
    assert coverage([100.0, 100.0, 0.0], GOAL_POSE) == 0.0
    assert coverage([*GOAL_POSE[:2], GOAL_POSE[2] + np.pi], GOAL_POSE) < 0.5
    pose = np.array([200.0, 300.0, 2.0])
    assert coverage(pose, pose) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("dx", [0.0, 5.0, -12.0, 30.0])
def test_coverage_of_a_sideways_shift_is_analytic(dx):
    # An upright T shifted by dx: the crossbars overlap by (120 − |dx|) × 30, the stems by
    # (30 − |dx|) × 90.
    expected = ((120 - abs(dx)) * 30 + max(30 - abs(dx), 0) * 90) / T_AREA
    assert coverage([256.0 + dx, 256.0, 0.0], [256.0, 256.0, 0.0]) == pytest.approx(expected, abs=1e-12)


def test_coverage_matches_a_rasterised_estimate():
    rng = np.random.default_rng(0)
    goals = np.column_stack([rng.uniform(150, 350, (12, 2)), rng.uniform(-np.pi, np.pi, 12)])
    poses = goals + np.column_stack([rng.normal(0, 25, (12, 2)), rng.normal(0, 0.6, 12)])
    exact = coverage(poses, goals)
    estimates = np.array([rasterised_coverage(p, g) for p, g in zip(poses, goals)])
    assert exact.shape == (12,) and exact.std() > 0.1  # a spread of overlaps, not all 0 or 1
    np.testing.assert_allclose(exact, estimates, atol=0.01)


def test_coverage_is_symmetric_and_rigid_invariant():
    rng = np.random.default_rng(1)
    a = np.column_stack([rng.uniform(200, 300, (50, 2)), rng.uniform(0, 2 * np.pi, 50)])
    b = a + np.column_stack([rng.normal(0, 20, (50, 2)), rng.normal(0, 0.5, 50)])
    np.testing.assert_allclose(coverage(a, b), coverage(b, a), atol=1e-9)
    # Move both Ts by the same rotation (about the world origin) and translation.
    angle, shift = 0.7, np.array([13.0, -8.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])

    def moved(poses):
        return np.column_stack([poses[:, :2] @ rotation.T + shift, poses[:, 2] + angle])

    np.testing.assert_allclose(coverage(moved(a), moved(b)), coverage(a, b), atol=1e-9)


def test_polygon_intersection_area_of_squares():
    square = np.array([[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]])
    shifted = square + [1.0, 1.0]
    diamond = np.array([[1.0, -0.5], [2.5, 1.0], [1.0, 2.5], [-0.5, 1.0]])  # rotated 45° about (1, 1)
    apart = square + [5.0, 0.0]
    areas = polygon_intersection_area(np.stack([square, square, square, square]),
                                      np.stack([square, shifted, diamond, apart]))
    # The diamond (area 2 · 1.5² = 4.5) sticks out of the square by 4 tips, each a right triangle
    # of height 0.5 on a base of 1 (area 0.25): 4.5 − 1 = 3.5.
    np.testing.assert_allclose(areas, [4.0, 1.0, 3.5, 0.0], atol=1e-12)


def test_coverage_reward():
    np.testing.assert_allclose(coverage_reward(np.array([0.0, 0.475, 0.95, 1.0])), [0.0, 0.5, 1.0, 1.0])


def test_shaped_reward_terms_at_the_goal_and_away_from_it():
    from course_utils.envs.pusht import shaped_reward
    cog = GOAL_POSE[:2] + np.array([[np.cos(np.pi / 4), -np.sin(np.pi / 4)],
                                    [np.sin(np.pi / 4), np.cos(np.pi / 4)]]) @ np.array(BLOCK_COG)
    at_goal = shaped_reward(GOAL_POSE, GOAL_POSE, cog, 0.5)  # pusher on the centre of gravity
    for name in ("rotation", "position", "reaching"):
        assert at_goal[name] == pytest.approx(1.0)
    assert at_goal["reward"] == pytest.approx(0.5 + 0.5 + 0.05)
    assert shaped_reward(GOAL_POSE, GOAL_POSE, cog, 0.96)["reward"] == 3.0  # success bonus
    # Upside down on the goal: no rotation reward; 30 px along x: position (1 − tanh(1/4))².
    flipped = shaped_reward([*GOAL_POSE[:2], GOAL_POSE[2] + np.pi], GOAL_POSE, cog, 0.0)
    shifted = shaped_reward(GOAL_POSE + [30.0, 0.0, 0.0], GOAL_POSE, cog + [30.0, 0.0], 0.0)
    assert flipped["rotation"] == pytest.approx(0.0, abs=1e-12)
    assert shifted["position"] == pytest.approx((1 - np.tanh(0.25)) ** 2)
    assert shifted["rotation"] == pytest.approx(1.0) and shifted["reaching"] == pytest.approx(1.0)
    quarter = shaped_reward(GOAL_POSE + [0.0, 0.0, np.pi / 2], GOAL_POSE, cog, 0.0)
    assert quarter["rotation"] == pytest.approx(0.25)
    far = shaped_reward(GOAL_POSE, GOAL_POSE, cog + [120.0, 0.0], 0.0)
    assert far["reaching"] == pytest.approx(np.sqrt(1 - np.tanh(1.0)))
    batch = shaped_reward(np.tile(GOAL_POSE, (4, 1)), GOAL_POSE, np.tile(cog, (4, 1)), np.zeros(4))
    assert batch["reward"].shape == (4,)


def test_shaped_reward_option_changes_only_the_reward():
    from course_utils.envs.pusht import shaped_reward
    with pytest.raises(ValueError, match="reward"):
        gym.make(PUSHT_ID, reward="dense")
    plain, shaped = gym.make(PUSHT_ID), gym.make(PUSHT_ID, reward="shaped")
    plain.reset(seed=3), shaped.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(30):
        action = rng.uniform(0, 512, 2)
        obs_a, reward_a, term_a, _, info_a = plain.step(action)
        obs_b, reward_b, term_b, _, info_b = shaped.step(action)
        np.testing.assert_array_equal(obs_a, obs_b)
        assert term_a == term_b and info_a["coverage"] == info_b["coverage"]
        assert reward_a == pytest.approx(float(coverage_reward(info_a["coverage"])))  # default unchanged
        expected = shaped_reward(info_b["block_pose"], info_b["goal_pose"], info_b["pos_agent"],
                                 info_b["coverage"])["reward"]
        assert reward_b == pytest.approx(float(expected))
    _, info = shaped.reset(options={"reset_to_state": [480.0, 480.0, *GOAL_POSE]})
    _, reward, terminated, _, info = shaped.step([480.0, 480.0])
    assert terminated and info["is_success"] and reward == 3.0


# ---------------------------------------------------------------------------------- episodes
def test_info_has_coverage_and_success_every_step():
    env = gym.make(PUSHT_ID)
    _, info = env.reset(seed=0)
    assert {"coverage", "is_success"} <= set(info)
    rng = np.random.default_rng(0)
    for _ in range(20):
        _, reward, terminated, truncated, info = env.step(rng.uniform(0, 512, 2))
        assert {"coverage", "is_success", "n_contacts", "block_pose", "goal_pose"} <= set(info)
        assert 0.0 <= info["coverage"] <= 1.0 and info["is_success"] == (info["coverage"] > 0.95)
        assert reward == pytest.approx(float(coverage_reward(info["coverage"])))


def test_success_terminates():
    env = gym.make(PUSHT_ID)
    _, info = env.reset(options={"reset_to_state": [480.0, 480.0, *GOAL_POSE]})
    assert info["coverage"] == pytest.approx(1.0) and info["is_success"]
    _, reward, terminated, truncated, info = env.step([480.0, 480.0])
    assert terminated and not truncated and reward == 1.0 and info["is_success"]


def test_truncates_after_300_steps():
    env = gym.make(PUSHT_ID)
    env.reset(options={"reset_to_state": FAR_STATE})
    for t in range(1, 301):
        _, _, terminated, truncated, info = env.step(FAR_STATE[:2])
        assert not terminated and truncated == (t == 300), t
    assert not info["is_success"]


@pytest.mark.parametrize("action", [[1.0, 2.0, 3.0], [[1.0, 2.0]], [np.nan, 3.0], [np.inf, 3.0], "left"])
def test_bad_actions_raise_a_clear_error(action):
    env = PushTEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(action)


def test_actions_outside_the_box_are_clipped():
    env = PushTEnv()
    env.reset(options={"reset_to_state": FAR_STATE})
    for _ in range(40):
        observation, *_ = env.step([800.0, -300.0])
    np.testing.assert_allclose(observation[:2], [512.0, 0.0], atol=0.5)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="obs_type"):
        PushTEnv(obs_type="image")
    with pytest.raises(ValueError, match="render_mode"):
        PushTEnv(render_mode="rgb")
    with pytest.raises(ValueError, match="observation_width"):
        PushTEnv(observation_width=0)
    with pytest.raises(RuntimeError, match="reset"):
        PushTEnv().step([1.0, 1.0])


# --------------------------------------------------------------------------------- rendering
def test_rgb_array_render():
    env = gym.make(PUSHT_ID, render_mode="rgb_array")
    env.reset(options={"reset_to_state": FAR_STATE})
    frame = env.render()
    assert frame.shape == (680, 680, 3) and frame.dtype == np.uint8
    scale = 680 / 512
    # The goal T's centre of gravity is drawn green, the block grey, the agent blue, the rest white.
    goal_cog = GOAL_POSE[:2] + np.array([[np.cos(GOAL_POSE[2]), -np.sin(GOAL_POSE[2])],
                                         [np.sin(GOAL_POSE[2]), np.cos(GOAL_POSE[2])]]) @ BLOCK_COG
    x, y = (goal_cog * scale).astype(int)
    red, green, blue = frame[y, x].astype(int)
    assert green > red + 50 and green > blue + 50
    x, y = (FAR_STATE[:2] * scale).astype(int)
    red, green, blue = frame[y, x].astype(int)
    assert blue > red + 50
    block_point = (FAR_STATE[2:4] + [0.0, 70.0]) * scale  # inside the stem of the upright T
    assert np.ptp(frame[int(block_point[1]), int(block_point[0])].astype(int)) < 60  # grey
    assert frame[10 * 680 // 512 + 20, 340].tolist() == [255, 255, 255]
    small = PushTEnv(render_mode="rgb_array", render_size=128)
    small.reset(seed=0)
    assert small.render().shape == (128, 128, 3)


def test_render_without_mode_returns_none():
    env = PushTEnv()
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert env.render() is None


def test_human_render_headless():
    # With SDL's dummy video driver the window exists but is not shown; rendering must not fail.
    env = PushTEnv(render_mode="human", render_size=64)
    env.reset(seed=0)
    env.step([100.0, 100.0])
    assert env.window is not None
    env.close()
    assert env.window is None


# --------------------------------------------------------------------------------- goal PushT
def test_goal_env_samples_goals_inside_the_workspace():
    env = GoalPushTEnv()
    goals = np.array([env.reset(seed=s)[0]["desired_goal"] for s in range(30)])
    assert len(np.unique(goals[:, 0])) == 30
    corners = t_keypoints(goals)
    assert corners.min() >= 40 and corners.max() <= 512 - 40
    again, _ = env.reset(seed=5)
    np.testing.assert_array_equal(again["desired_goal"], goals[5])
    observation, _ = env.reset(options={"goal": [300.0, 200.0, 1.0],
                                        "reset_to_state": [50.0, 50.0, 300.0, 200.0, 1.0]})
    np.testing.assert_allclose(observation["desired_goal"], [300.0, 200.0, 1.0])
    np.testing.assert_allclose(observation["achieved_goal"], [300.0, 200.0, 1.0], atol=1e-9)
    with pytest.raises(ValueError, match="goal"):
        env.reset(options={"goal": [1.0, 2.0]})
    with pytest.raises(ValueError, match="reward_type"):
        GoalPushTEnv(reward_type="shaped")


@pytest.mark.parametrize("reward_type", ["sparse", "dense"])
def test_compute_reward_is_vectorised(reward_type):
    env = GoalPushTEnv(reward_type=reward_type)
    rng = np.random.default_rng(0)
    desired = np.column_stack([rng.uniform(150, 350, (64, 2)), rng.uniform(0, 2 * np.pi, 64)])
    achieved = desired + np.column_stack([rng.normal(0, 3, (64, 2)), rng.normal(0, 0.05, 64)])
    achieved[::4] = desired[::4]  # some exact successes
    info = np.array([{} for _ in range(64)])
    batched = env.compute_reward(achieved, desired, info)
    assert batched.shape == (64,)
    single = np.array([env.compute_reward(a, d, {}) for a, d in zip(achieved, desired)])
    np.testing.assert_array_equal(batched, single)
    covered = coverage(achieved, desired)
    expected = np.where(covered > 0.95, 0.0, -1.0) if reward_type == "sparse" else coverage_reward(covered)
    np.testing.assert_array_equal(batched, expected)
    assert len(np.unique(batched)) > 1
    np.testing.assert_array_equal(env.compute_terminated(achieved, desired, info), covered > 0.95)
    assert env.compute_truncated(achieved, desired, info).shape == (64,)


def test_goal_env_relabelling_contract():
    """The reward of every step equals compute_reward on its goals; relabelled with the achieved
    goal (HER), a transition is a success."""
    env = gym.make(GOAL_PUSHT_ID)
    observation, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    achieved, desired, rewards, terminals = [], [], [], []
    for _ in range(30):
        observation, reward, terminated, _, info = env.step(rng.uniform(0, 512, 2))
        achieved.append(observation["achieved_goal"])
        desired.append(observation["desired_goal"])
        rewards.append(reward)
        terminals.append(terminated)
    unwrapped = env.unwrapped
    achieved, desired = np.array(achieved), np.array(desired)
    np.testing.assert_array_equal(unwrapped.compute_reward(achieved, desired, None), rewards)
    np.testing.assert_array_equal(unwrapped.compute_terminated(achieved, desired, None), terminals)
    np.testing.assert_array_equal(unwrapped.compute_reward(achieved, achieved, None), np.zeros(30))
    assert unwrapped.compute_terminated(achieved, achieved, None).all()
    # The block's pose in the observation is the achieved goal.
    np.testing.assert_array_equal(observation["observation"][2:], observation["achieved_goal"])


# ------------------------------------------------------------------ agreement with gym-pusht 0.1.8
# Numbers computed with gym-pusht 0.1.8 itself (pymunk 6.11, shapely), in a separate environment.
GYM_PUSHT_COVERAGE = [([256.0, 256.0, np.pi / 4], 1.0), ([260.0, 250.0, 0.9], 0.7203799009104619),
                      ([240.0, 270.0, 0.3], 0.3884313728162333), ([300.0, 230.0, 2.0], 0.0608023075885575),
                      ([256.0, 256.0, np.pi / 4 + np.pi], 0.0)]
# From the state [150, 250, 240, 230, 0.5] (set angle first, no settling step), the agent driven
# round a circle through the block: a_t = (256, 270) + 70 (cos(0.25 t + π), sin(0.25 t + π)).
GYM_PUSHT_STATES = {
    19: [276.1965954698137, 332.25367807755794, 350.21855164216356, 366.81429105329534, 1.6311901682749634],
    39: [321.4256049526213, 268.2919929959529, 350.1603345249624, 367.975212461512, 1.5972526250752925],
    59: [272.92092070864703, 206.777302226852, 351.5037152354547, 372.22727733401945, 1.6392584927721796],
}


def test_coverage_equals_gym_pusht_s():
    poses, expected = zip(*GYM_PUSHT_COVERAGE)
    np.testing.assert_allclose(coverage(np.array(poses), GOAL_POSE), expected, rtol=0, atol=1e-9)


def test_trajectory_equals_gym_pusht_s():
    """Same start, same actions: the same states as gym-pusht, to floating-point rounding."""
    env = PushTEnv()
    env.reset(options={"reset_to_state": [150.0, 250.0, 240.0, 230.0, 0.5]})
    for t in range(60):
        angle = 0.25 * t + np.pi
        observation, *_ = env.step([256 + 70 * np.cos(angle), 270 + 70 * np.sin(angle)])
        if t in GYM_PUSHT_STATES:
            np.testing.assert_allclose(observation, GYM_PUSHT_STATES[t], rtol=0, atol=1e-6)
    assert np.linalg.norm(observation[2:4] - [240.0, 230.0]) > 100  # the block was pushed far


@pytest.fixture(scope="module")
def gym_pusht_replays():
    """Episodes recorded with gym-pusht 0.1.8 on pymunk 6.11.1 (tests/data/record_gym_pusht_replays.py)."""
    with np.load(Path(__file__).parent / "data" / "gym_pusht_replays.npz") as data:
        return dict(data)


def replay(env: PushTEnv, actions: np.ndarray, first: np.ndarray) -> np.ndarray:
    """The states ``(T + 1, 5)``: ``first`` then the observation after each action."""
    return np.array([first, *(env.step(action)[0] for action in actions)])


@pytest.mark.parametrize("episode", [0, 1, 2], ids=["free", "against-a-wall", "in-a-corner"])
def test_gym_pusht_s_episodes_replay_bit_for_bit(gym_pusht_replays, episode):
    """Same start in a fresh space, same actions: gym-pusht's states exactly, wall contacts included."""
    recorded = gym_pusht_replays
    block_wall_steps = (recorded["wall_contacts"][episode] > 0).sum()
    assert block_wall_steps == [0, 39, 37][episode]  # what each episode is there for
    env = PushTEnv()
    first, _ = env.reset(options={"reset_to_state": recorded["starts"][episode]})
    states = replay(env, recorded["actions"][episode], first)
    np.testing.assert_array_equal(states, recorded["states"][episode])


def test_gym_pusht_s_reset_leaves_a_contact_its_observation_does_not_carry(gym_pusht_replays):
    """gym-pusht's reset(seed=50) runs a physics step with the pusher overlapping the block, and the
    contact stays cached. Redoing that reset here continues its episode bit for bit; starting a
    fresh space from its observation (reset_to_state) diverges, by the numbers in the docstring."""
    recorded = gym_pusht_replays
    drawn, actions, expected = recorded["reset_drawn"], recorded["reset_actions"], recorded["reset_states"]
    env = PushTEnv()
    env.reset(seed=int(recorded["reset_seed"]))  # draws the state gym-pusht's reset(seed=50) draws
    assert [*env.agent.position, env.block.angle] == [*drawn[:2], drawn[4]]
    np.testing.assert_allclose(env.block_pose[:2], drawn[2:4], rtol=0, atol=1e-9)
    # gym-pusht's reset: the block (created at angle 0) gets its position, then its angle (turning
    # about the centre of gravity), then one physics step.
    env.block.angle = 0.0
    env.block.position = tuple(drawn[2:4])
    env.block.angle = drawn[4]
    env.space.step(0.01)
    np.testing.assert_array_equal(replay(env, actions, env.state), expected)

    first, _ = env.reset(options={"reset_to_state": expected[0]})  # the same state, no cached contact
    states = replay(env, actions, first)
    gap = np.linalg.norm(states[:, 2:4] - expected[:, 2:4], axis=1)
    assert gap[0] < 1e-9
    assert gap[1] == pytest.approx(0.43, abs=0.01)
    assert gap[3] == pytest.approx(1.1, abs=0.05)  # the block meets a wall
    assert gap[11] == pytest.approx(22.4, abs=0.1)


# ------------------------------------------------------------------------------ symmetry
def test_mirror_maps_the_goal_to_itself_and_keeps_the_coverage():
    from course_utils.envs.pusht import mirror_positions, mirror_states

    np.testing.assert_allclose(mirror_positions(np.array([[256.0, 256.0], [10.0, 500.0]])),
                               [[256.0, 256.0], [12.0, 502.0]])
    goal_state = np.array([0.0, 0.0, *GOAL_POSE])
    np.testing.assert_allclose(mirror_states(goal_state)[2:], GOAL_POSE)
    rng = np.random.default_rng(0)
    states = np.column_stack([rng.uniform(0, 512, (20, 4)), rng.uniform(0, 2 * np.pi, 20)])
    np.testing.assert_allclose(mirror_states(mirror_states(states)), states, atol=1e-9)  # an involution
    poses = np.column_stack([rng.uniform(180, 330, (20, 2)), rng.uniform(0, 2 * np.pi, 20)])
    mirrored = mirror_states(np.column_stack([np.zeros((20, 2)), poses]))[:, 2:]
    np.testing.assert_allclose(coverage(mirrored, GOAL_POSE), coverage(poses, GOAL_POSE), atol=1e-9)
    assert coverage(poses, GOAL_POSE).max() > 0.1  # some of the poses overlap the goal


def test_a_mirrored_episode_replays_as_the_mirror_of_the_episode():
    from course_utils.envs.pusht import mirror_positions, mirror_states
    from course_utils.envs.pusht_expert import PushTExpert

    env, expert = gym.make(PUSHT_ID), PushTExpert()
    obs, _ = env.reset(seed=7)
    states, actions, coverages = [obs], [], []
    for _ in range(40):
        actions.append(expert(obs))
        obs, _, terminated, _, info = env.step(actions[-1])
        states.append(obs)
        coverages.append(info["coverage"])
        if terminated:
            break
    obs, _ = env.reset(options={"reset_to_state": mirror_states(states[0])})
    for t, action in enumerate(actions):
        obs, _, _, _, info = env.step(mirror_positions(action))
        expected = mirror_states(states[t + 1])
        np.testing.assert_allclose(obs[:4], expected[:4], atol=1e-6)
        assert abs((obs[4] - expected[4] + np.pi) % (2 * np.pi) - np.pi) < 1e-6
        assert info["coverage"] == pytest.approx(coverages[t], abs=1e-6)
    assert max(coverages) > 0.3  # the expert did push the block
