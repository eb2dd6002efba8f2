"""PushT's network inputs and action frame: what made behaviour cloning work on it (notebook 09).

- ``pusht_features``: a state ``(..., 5)`` → 12 normalised inputs, most in the block's own frame.
- ``pusht_pusher_frame``: actions as moves from the pusher along the block's axes.
- ``previous_and_current``, ``pusht_history_features``, ``pusht_history_frame``: the same on
  pairs ``[s_{t−1}, s_t]`` (one step of memory).

They use PushT's own constants (``BLOCK_COG``, ``GOAL_POSE``, ``WORKSPACE``), so the features
follow the environment if it changes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from course_utils.envs.pusht import BLOCK_COG, GOAL_POSE, WORKSPACE

__all__ = ["previous_and_current", "pusht_features", "pusht_history_features",
           "pusht_history_frame", "pusht_pusher_frame"]

_GOAL_ANGLE = float(GOAL_POSE[2])
# The goal's centre of gravity: the goal's origin plus R(θ_goal) · BLOCK_COG.
_GOAL_COG = (float(GOAL_POSE[0]) + BLOCK_COG[0] * math.cos(_GOAL_ANGLE) - BLOCK_COG[1] * math.sin(_GOAL_ANGLE),
             float(GOAL_POSE[1]) + BLOCK_COG[0] * math.sin(_GOAL_ANGLE) + BLOCK_COG[1] * math.cos(_GOAL_ANGLE))


def pusht_features(observations: torch.Tensor) -> torch.Tensor:
    """PushT ``state`` observations ``(..., 5)`` → network inputs ``(..., 12)``.

    - ``[agent_x, agent_y, block_x, block_y]`` mapped from ``[0, 512]`` to ``[-1, 1]`` (where the
      walls are);
    - ``cos θ, sin θ`` of the block's angle (the raw angle jumps from 2π to 0 where the pose does
      not change, which a network would have to learn as a cliff);
    - the pusher's position in the block's frame, ``R(θ)ᵀ(agent − block)`` / 128: where it is
      relative to the faces of the T, which decides a push;
    - the error to the goal in the block's frame: the goal's centre of gravity minus the block's,
      ``R(θ)ᵀ(goal_cog − cog)`` / 128, and ``cos, sin`` of the angle still to turn,
      ``θ_goal − θ``: what the expert's choice of push depends on.

    In the block's frame, one situation (pusher, block and goal placed alike relative to each
    other) looks the same wherever the block is and however it is turned.
    """
    positions = observations[..., :4] / (WORKSPACE / 2) - 1.0
    angle = observations[..., 4]
    cos, sin = torch.cos(angle), torch.sin(angle)

    def to_block_frame(vectors: torch.Tensor) -> torch.Tensor:  # R(θ)ᵀ v for v (..., 2)
        return torch.stack([cos * vectors[..., 0] + sin * vectors[..., 1],
                            -sin * vectors[..., 0] + cos * vectors[..., 1]], dim=-1)

    pusher = to_block_frame(observations[..., 0:2] - observations[..., 2:4]) / 128.0
    # The centre of gravity is at R(θ) BLOCK_COG from the block's origin.
    cog_x, cog_y = BLOCK_COG
    cog = observations[..., 2:4] + torch.stack([cog_x * cos - cog_y * sin, cog_x * sin + cog_y * cos], dim=-1)
    goal_cog = torch.as_tensor(_GOAL_COG, dtype=observations.dtype, device=observations.device)
    error = to_block_frame(goal_cog - cog) / 128.0
    turn = _GOAL_ANGLE - angle
    return torch.cat([positions, cos[..., None], sin[..., None], pusher, error,
                      torch.cos(turn)[..., None], torch.sin(turn)[..., None]], dim=-1)


def pusht_pusher_frame(observations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The frame PushT actions are predicted in (``BCPolicy``'s ``action_frame``): its origin is
    the pusher's position ``(..., 2)`` and its axes are the block's, the rotation ``R(θ)``
    ``(..., 2, 2)``. The policy then predicts where to move relative to the pusher (a small
    number where precision matters, while pushing), in the block's own directions (so pushing
    a face of the T is one output however the T is turned).
    """
    angle = observations[..., 4]
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.stack([torch.stack([cos, -sin], dim=-1), torch.stack([sin, cos], dim=-1)], dim=-2)
    return observations[..., :2], rotation


# ------------------------------------------------------------------ one step of memory

def previous_and_current(observations: Any, episode_ends: Any) -> np.ndarray:
    """``[s_{t−1}, s_t]`` for every step of consecutive episodes: ``(N, n)`` → ``(N, 2n)``.

    ``episode_ends`` ``(E,)`` is one past each episode's last step (PushTDemos' convention). At an
    episode's first step there is no previous observation and the current one stands in for it,
    as ``HistoryPolicy`` does when it acts.
    """
    observations = np.asarray(observations)
    ends = np.asarray(episode_ends, dtype=np.int64)
    if observations.ndim != 2 or ends.ndim != 1 or not len(ends) or ends[-1] != len(observations):
        raise ValueError(f"observations must be (N, n) and episode_ends end at N = {len(observations)}, "
                         f"got shapes {observations.shape} and {ends.shape}")
    previous = np.concatenate([observations[:1], observations[:-1]])
    starts = np.concatenate([[0], ends[:-1]])
    previous[starts] = observations[starts]
    return np.concatenate([previous, observations], axis=1)


def pusht_history_features(pairs: torch.Tensor) -> torch.Tensor:
    """``[previous, current]`` PushT states ``(..., 10)`` → network inputs ``(..., 24)``: the
    ``pusht_features`` of the current state and 10 × their change since the previous one (the
    pusher's and the block's motion, of order 1), which tells where the pusher was heading."""
    now, before = pusht_features(pairs[..., 5:]), pusht_features(pairs[..., :5])
    return torch.cat([now, 10.0 * (now - before)], dim=-1)


def pusht_history_frame(pairs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``pusht_pusher_frame`` of the current state of ``[previous, current]`` pairs ``(..., 10)``."""
    return pusht_pusher_frame(pairs[..., 5:])
