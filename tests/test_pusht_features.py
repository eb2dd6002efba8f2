"""Unit tests of PushT's network inputs and action frame (course_utils.envs.pusht_features)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from course_utils.envs.pusht_features import (previous_and_current, pusht_features, pusht_history_features,
                                              pusht_history_frame, pusht_pusher_frame)


def test_pusht_features_are_normalised_and_continuous_in_the_angle():
    obs = torch.tensor([[0.0, 512.0, 256.0, 256.0, 0.0], [0.0, 512.0, 256.0, 256.0, 2 * math.pi - 1e-6]])
    features = pusht_features(obs)
    assert features.shape == (2, 12)
    assert torch.allclose(features[:, :4], torch.tensor([-1.0, 1.0, 0.0, 0.0]).expand(2, 4))
    assert torch.allclose(features[0], features[1], atol=1e-5)  # 0 and 2π are the same pose
    # The pusher 100 px along the block's x axis, the block turned by π/2: local (100, 0) / 128.
    turned = pusht_features(torch.tensor([[256.0, 356.0, 256.0, 256.0, math.pi / 2]]))
    assert torch.allclose(turned[0, 6:8], torch.tensor([100 / 128, 0.0]), atol=1e-6)
    # At the goal pose the error to the goal is zero and there is no angle left to turn.
    at_goal = pusht_features(torch.tensor([[0.0, 0.0, 256.0, 256.0, math.pi / 4]]))
    assert torch.allclose(at_goal[0, 8:], torch.tensor([0.0, 0.0, 1.0, 0.0]), atol=1e-6)
    # The goal's centre of gravity 45 px along the block's x axis (angle π/4 again).
    shifted = torch.tensor([[0.0, 0.0, 256.0 - 45 / math.sqrt(2), 256.0 - 45 / math.sqrt(2), math.pi / 4]])
    assert torch.allclose(pusht_features(shifted)[0, 8:10], torch.tensor([45 / 128, 0.0]), atol=1e-5)


def test_pusher_frame_is_the_pusher_and_the_blocks_rotation():
    obs = torch.tensor([[100.0, 200.0, 0, 0, 0], [100.0, 200.0, 0, 0, math.pi / 2]])
    origin, rotation = pusht_pusher_frame(obs)
    assert torch.equal(origin, obs[:, :2])
    assert torch.allclose(rotation[0], torch.eye(2))
    # At π/2 the block's x axis is the world's y axis.
    assert torch.allclose(rotation[1] @ torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), atol=1e-6)


def test_previous_and_current_pairs_restart_at_every_episode():
    obs = np.arange(10.0).reshape(5, 2)  # two episodes: steps 0-2 and 3-4
    pairs = previous_and_current(obs, episode_ends=[3, 5])
    np.testing.assert_array_equal(pairs, [[0, 1, 0, 1], [0, 1, 2, 3], [2, 3, 4, 5],
                                          [6, 7, 6, 7], [6, 7, 8, 9]])
    with pytest.raises(ValueError, match="episode_ends"):
        previous_and_current(obs, episode_ends=[3, 4])


def test_pusht_history_features_add_the_motion_since_the_previous_state():
    state = torch.tensor([100.0, 200.0, 256.0, 256.0, 0.3])
    moved = state + torch.tensor([12.8, 0.0, 0.0, 0.0, 0.0])  # the pusher moved 12.8 px along x
    still = pusht_history_features(torch.cat([state, state]))
    assert still.shape == (24,) and torch.allclose(still[12:], torch.zeros(12))
    assert torch.allclose(still[:12], pusht_features(state))
    motion = pusht_history_features(torch.cat([state, moved]))[12:]
    assert torch.allclose(motion[0], torch.tensor(10 * 12.8 / 256), atol=1e-6)  # the scaled x position
    origin, rotation = pusht_history_frame(torch.cat([state, moved]))
    assert torch.allclose(origin, moved[:2])
    assert torch.allclose(rotation, pusht_pusher_frame(moved)[1])
