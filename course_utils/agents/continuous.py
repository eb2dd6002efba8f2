"""Building blocks shared by the continuous-control agents (DDPG, TD3, SAC) of notebook 08.

Networks work with actions in the unit box ``[-1, 1]^d`` (what ``tanh`` produces); the
environment's bounds ``[low, high]`` appear only at the boundary, in ``ActionScaler``. The replay
buffer stores the actions the environment received; agents map them back with ``to_unit``.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from course_utils.agents.base import Policy
from course_utils.nn import MLPConfig, build_mlp


def check_box_action_space(action_space: gym.Space, algorithm: str) -> None:
    """A one-dimensional, bounded Box, or a ValueError that says what the algorithm needs."""
    if not (isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1
            and np.all(np.isfinite(action_space.low)) and np.all(np.isfinite(action_space.high))):
        raise ValueError(f"action_space: {algorithm} needs a bounded one-dimensional Box, got "
                         f"{action_space}; for discrete actions use DQN")


class ActionScaler:
    """Maps actions between the unit box ``[-1, 1]^d`` and the environment's ``[low, high]``."""

    def __init__(self, action_space: gym.spaces.Box, device: torch.device) -> None:
        low = torch.as_tensor(action_space.low, dtype=torch.float32, device=device)
        high = torch.as_tensor(action_space.high, dtype=torch.float32, device=device)
        self.centre, self.half_width = (high + low) / 2, (high - low) / 2

    def to_env(self, unit_actions: torch.Tensor) -> torch.Tensor:
        """``low + (a + 1)/2 · (high − low)``, for ``a`` in ``[-1, 1]``."""
        return self.centre + self.half_width * unit_actions

    def to_unit(self, env_actions: torch.Tensor) -> torch.Tensor:
        """The inverse of ``to_env``."""
        return (env_actions - self.centre) / self.half_width


class QCritic(nn.Module):
    """``Q(s, a)``: an MLP on the concatenation of observation and (unit-box) action, ``(B,)``."""

    def __init__(self, observation_size: int, action_size: int, n_layers: int, size: int,
                 device: torch.device) -> None:
        super().__init__()
        self.net = build_mlp(MLPConfig(observation_size + action_size, 1, n_layers, size, "relu"),
                             device=device)

    def forward(self, observations: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([observations, actions], dim=-1)).squeeze(-1)


class DeterministicActor(nn.Module):
    """``μ(s) = tanh(MLP(s))``: a deterministic action in the unit box, ``(B, d)``."""

    def __init__(self, observation_size: int, action_size: int, n_layers: int, size: int,
                 device: torch.device) -> None:
        super().__init__()
        self.net = build_mlp(MLPConfig(observation_size, action_size, n_layers, size, "relu",
                                       output_activation="tanh"), device=device)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.net(observations)


class ActorPolicy(Policy):
    """The environment-facing policy of an actor: unit-box actions scaled to ``[low, high]``.

    ``explore`` (unit-box action -> unit-box action, e.g. adding noise) is applied by
    ``get_action``; ``greedy_action`` is the deterministic action used in evaluation.
    """

    def __init__(self, deterministic: Callable[[torch.Tensor], torch.Tensor],
                 scaler: ActionScaler, device: torch.device,
                 explore: Optional[Callable[[torch.Tensor], torch.Tensor]] = None) -> None:
        self.deterministic = deterministic
        self.scaler = scaler
        self.device = device
        self.explore = explore

    @torch.no_grad()
    def _act(self, observation: Any, explore: bool) -> np.ndarray:
        unit = self.deterministic(torch.as_tensor(observation, dtype=torch.float32,
                                                  device=self.device))
        if explore and self.explore is not None:
            unit = self.explore(unit).clamp(-1.0, 1.0)
        return self.scaler.to_env(unit).cpu().numpy()

    def greedy_action(self, observation: Any) -> np.ndarray:
        return self._act(observation, explore=False)

    def get_action(self, observation: Any) -> np.ndarray:
        return self._act(observation, explore=True)


class GaussianNoise:
    """Independent Gaussian exploration noise ``N(0, σ²)`` per action dimension (unit box)."""

    def __init__(self, sigma: float, generator: Optional[torch.Generator] = None) -> None:
        self.sigma = sigma
        self.generator = generator

    def __call__(self, unit_actions: torch.Tensor) -> torch.Tensor:
        noise = torch.randn(unit_actions.shape, generator=self.generator)
        return unit_actions + self.sigma * noise.to(unit_actions.device)

    def reset(self) -> None:
        """Gaussian noise has no memory; here so all noises share one interface."""


class OrnsteinUhlenbeckNoise:
    """Temporally correlated noise ``x ← x + θ(−x)dt + σ√dt·N(0, 1)`` (the DDPG paper's choice).

    Successive actions keep pushing in the same direction for a while, which explores physical
    systems with momentum better than independent noise. ``reset`` at the start of an episode.
    """

    def __init__(self, sigma: float, theta: float = 0.15, dt: float = 1e-2,
                 generator: Optional[torch.Generator] = None) -> None:
        self.sigma, self.theta, self.dt = sigma, theta, dt
        self.generator = generator
        self.state: Optional[torch.Tensor] = None

    def __call__(self, unit_actions: torch.Tensor) -> torch.Tensor:
        if self.state is None:
            self.state = torch.zeros(unit_actions.shape)
        gaussian = torch.randn(unit_actions.shape, generator=self.generator)
        self.state = (self.state - self.theta * self.state * self.dt
                      + self.sigma * np.sqrt(self.dt) * gaussian)
        return unit_actions + self.state.to(unit_actions.device)

    def reset(self) -> None:
        self.state = None
