"""Policy-gradient (REINFORCE) agent of notebook 05, with pluggable weights, loss and baseline.

Each pluggable part is an exercise of the notebook, so the student's own function trains the
agent: ``weights_fn`` (what each step is credited with: total reward, reward-to-go, discounted
reward-to-go), ``loss_fn`` (the surrogate loss) and ``advantage_fn`` (return minus baseline).
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical, Distribution, Independent, Normal

from course_utils.agents.base import Agent, Policy
from course_utils.device import get_device
from course_utils.nn import Activation, MLPConfig, build_mlp, flat_size
from course_utils.returns import sum_of_rewards
from course_utils.validation import check_int
from course_utils.trajectory import Trajectory, WeightsFn, compile_trajectories

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
AdvantageFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class PGPolicy(nn.Module, Policy):
    """A stochastic policy ``π_θ(a|o)`` built on an MLP.

    * Discrete actions: the MLP outputs logits, ``π_θ(·|o) = Categorical(softmax(logits))``.
    * Continuous actions (a Box of shape ``(d,)``): the MLP outputs the mean ``μ_θ(o)``, and a
      learned, state-independent ``log σ`` (one per dimension) gives a diagonal Gaussian
      ``N(μ_θ(o), diag(σ²))``. Learning ``log σ`` rather than σ keeps σ positive without a
      constraint.
    """

    def __init__(self, observation_space: gym.Space, action_space: gym.Space,
                 n_layers: int = 2, size: int = 64, activation: Activation = "tanh",
                 initial_log_std: float = -0.5,
                 device: torch.device | str | None = None) -> None:
        super().__init__()
        if not (isinstance(observation_space, gym.spaces.Box) and len(observation_space.shape) == 1):
            raise ValueError(
                f"observation_space must be a one-dimensional Box, got {observation_space}"
            )
        if not isinstance(action_space, (gym.spaces.Discrete, gym.spaces.Box)):
            raise ValueError(
                f"action_space must be Discrete or a one-dimensional Box, got {action_space}"
            )
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        # Discrete(n, start=s) has actions s … s+n−1; the network's outputs are indexed 0 … n−1.
        self.action_start = int(action_space.start) if self.discrete else 0
        self.device = torch.device(device) if device is not None else get_device()
        self.observation_size = flat_size(observation_space, "observation_space")
        self.net = build_mlp(
            MLPConfig(self.observation_size, flat_size(action_space, "action_space"),
                      n_layers=n_layers, size=size, activation=activation),
            device=self.device,
        )
        if not self.discrete:
            self.log_std = nn.Parameter(
                torch.full((action_space.shape[0],), initial_log_std, device=self.device))

    def _check_observations(self, observations: torch.Tensor) -> torch.Tensor:
        if observations.shape[-1:] != (self.observation_size,):
            raise ValueError(
                f"observations must end in dimension {self.observation_size}, "
                f"got shape {tuple(observations.shape)}"
            )
        return observations

    def distribution(self, observations: torch.Tensor) -> Distribution:
        """``π_θ(·|o)`` over action indices, for observations ``(B, obs_size)``: batch ``(B,)``."""
        out = self.net(self._check_observations(observations))
        if self.discrete:
            return Categorical(logits=out, validate_args=False)
        # Independent(..., 1) sums the per-dimension log-probabilities: a diagonal Gaussian.
        return Independent(Normal(out, self.log_std.exp(), validate_args=False), 1)

    def log_prob(self, observations: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``log π_θ(a_t|o_t)`` for a batch: observations ``(B, obs_size)`` → ``(B,)``."""
        return self.distribution(observations).log_prob(actions - self.action_start)

    def get_action(self, observation: np.ndarray):
        """Sample ``a ~ π_θ(·|o)`` for one observation: an int (discrete) or an array ``(d,)``.

        This runs once per environment step, so it samples directly instead of building a
        ``torch.distributions`` object (which costs more than the network itself here).
        """
        with torch.no_grad():
            out = self.net(self._observation_tensor(observation))
            if self.discrete:
                return int(torch.multinomial(torch.softmax(out, -1), 1)) + self.action_start
            return (out + self.log_std.exp() * torch.randn_like(out)).cpu().numpy()

    def greedy_action(self, observation: np.ndarray):
        """The most likely action (mode of π): for evaluation without exploration noise."""
        with torch.no_grad():
            out = self.net(self._observation_tensor(observation))
            return int(out.argmax()) + self.action_start if self.discrete else out.cpu().numpy()

    def _observation_tensor(self, observation: np.ndarray) -> torch.Tensor:
        """One observation ``(obs_size,)`` as a float32 tensor on the policy's device."""
        obs = torch.as_tensor(observation, dtype=torch.float32, device=self.device)
        if obs.shape != (self.observation_size,):
            raise ValueError(
                f"observation must have shape ({self.observation_size},), got {tuple(obs.shape)}"
            )
        return obs


def policy_gradient_loss(log_probs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The surrogate loss ``L(θ) = −(1/B) Σ_t log π_θ(a_t|o_t) w_t``: its gradient is the
    (negated) policy-gradient estimate. ``log_probs`` and ``weights`` are ``(B,)``."""
    return -(log_probs * weights).mean()


def baseline_advantage(returns: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``A_t = G_t − V(s_t)``; the values are detached so the policy loss does not train V."""
    return returns - values.detach()


class PGAgent(Agent):
    """REINFORCE: one gradient step on the surrogate loss per batch of trajectories.

    Args:
        policy: the policy to train.
        learning_rate: Adam's step size for the policy.
        weights_fn: rewards ``(T,)`` → per-step weights ``(T,)`` (``sum_of_rewards``,
            ``reward_to_go``, a discounted reward-to-go, …).
        loss_fn: ``(log_probs (B,), weights (B,)) → scalar`` surrogate loss.
        baseline: optional value network ``(B, obs_size) → (B, 1)``; if given, the weights become
            advantages ``advantage_fn(weights, V(o))`` and V is regressed on the weights.
        advantage_fn: ``(returns (B,), values (B,)) → (B,)``.
        baseline_learning_rate, baseline_steps: Adam's step size and the number of regression
            steps of the baseline per batch.
        normalize_advantages: standardise the weights of each batch (zero mean, unit std).
    """

    def __init__(self, policy: PGPolicy, learning_rate: float = 5e-3,
                 weights_fn: WeightsFn = sum_of_rewards, loss_fn: LossFn = policy_gradient_loss,
                 baseline: Optional[nn.Module] = None,
                 advantage_fn: AdvantageFn = baseline_advantage,
                 baseline_learning_rate: float = 1e-2, baseline_steps: int = 5,
                 normalize_advantages: bool = False) -> None:
        if not learning_rate > 0:  # also refuses NaN
            raise ValueError(f"learning_rate must be positive, got {learning_rate}")
        if not baseline_learning_rate > 0:
            raise ValueError(f"baseline_learning_rate must be positive, got {baseline_learning_rate}")
        check_int("baseline_steps", baseline_steps)
        self.policy = policy
        self.weights_fn = weights_fn
        self.loss_fn = loss_fn
        self.advantage_fn = advantage_fn
        self.normalize_advantages = normalize_advantages
        self.optimizer = torch.optim.Adam(policy.parameters(), lr=learning_rate)
        self.baseline = baseline
        self.baseline_steps = baseline_steps
        if baseline is not None:
            self.baseline_optimizer = torch.optim.Adam(baseline.parameters(),
                                                       lr=baseline_learning_rate)

    def update(self, trajectories: Sequence[Trajectory]) -> dict[str, float]:
        batch = compile_trajectories(trajectories, self.weights_fn, device=self.policy.device)
        weights = batch.weights
        if self.baseline is not None:
            # The baseline is evaluated before it is refitted on this batch: refitting first would
            # let V(s_t) see G_t, which shrinks the advantages towards zero.
            weights = self.advantage_fn(batch.weights, self.baseline(batch.observations).squeeze(-1))
        if self.normalize_advantages:
            weights = (weights - weights.mean()) / (weights.std() + 1e-8)
        loss = self.loss_fn(self.policy.log_prob(batch.observations, batch.actions), weights)
        if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
            raise ValueError(f"loss_fn must return a scalar tensor, got "
                             f"{tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss)}")
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"the policy loss is {loss.item()}: check loss_fn and weights_fn for NaN or inf "
                "(for example a division by a zero standard deviation)"
            )
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        metrics = {"loss": loss.item()}
        if self.baseline is not None:
            metrics["value_loss"] = self._fit_baseline(batch.observations, batch.weights)
        return metrics

    def _fit_baseline(self, observations: torch.Tensor, returns: torch.Tensor) -> float:
        """Regress V(o_t) on the returns G_t by a few Adam steps on the mean squared error."""
        for _ in range(self.baseline_steps):
            value_loss = nn.functional.mse_loss(self.baseline(observations).squeeze(-1), returns)
            self.baseline_optimizer.zero_grad()
            value_loss.backward()
            self.baseline_optimizer.step()
        return value_loss.item()
