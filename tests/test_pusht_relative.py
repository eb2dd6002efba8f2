"""RelativePushT (notebook 09, section 2): PushT seen through scaled features, driven by relative moves."""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from course_utils.envs import RELATIVE_PUSHT_IDS  # noqa: E402
from course_utils.envs.pusht_relative import RelativePushT  # noqa: E402


@pytest.mark.parametrize("reward", sorted(RELATIVE_PUSHT_IDS))
def test_registered_with_pusht_s_time_limit_and_the_chosen_reward(reward):
    env = gym.make(RELATIVE_PUSHT_IDS[reward])
    assert env.observation_space.shape == (6,) and env.action_space.shape == (2,)
    assert env.unwrapped.reward_kind == reward
    observation, _ = env.reset(seed=0)
    assert env.observation_space.contains(observation)
    steps, truncated = 0, False
    while not truncated:  # standing still never succeeds: PushT's 300-step limit ends it
        observation, _, terminated, truncated, _ = env.step(np.zeros(2, dtype=np.float32))
        steps += 1
        assert not terminated and env.observation_space.contains(observation)
    assert steps == 300


def test_observation_is_the_state_scaled_to_minus_one_one_with_the_angle_as_cos_sin():
    env = RelativePushT()
    observation, _ = env.reset(options={"reset_to_state": [256.0, 128.0, 384.0, 0.0, np.pi / 2]})
    np.testing.assert_allclose(observation, [0.0, -0.5, 0.5, -1.0, 0.0, 1.0], atol=1e-6)


def test_an_action_moves_the_target_relative_to_the_pusher_and_stays_on_the_table():
    env = RelativePushT()
    env.reset(options={"reset_to_state": [100.0, 100.0, 400.0, 400.0, 0.0]})
    targets = []
    env.env.step = lambda target, step=env.env.step: (targets.append(np.array(target)), step(target))[1]
    env.step(np.array([0.5, -1.0]))
    np.testing.assert_allclose(targets[-1], [100.0 + 0.5 * RelativePushT.MOVE, 100.0 - RelativePushT.MOVE])
    env.reset(options={"reset_to_state": [20.0, 500.0, 300.0, 300.0, 0.0]})
    env.step(np.array([-3.0, 3.0]))  # clipped to a move of (−60, +60), then to the table [0, 512]
    np.testing.assert_allclose(targets[-1], [0.0, 512.0])
