"""Actor-critic agents for vector environments (notebooks 06 and 07): A2C and PPO.

Both learn from rollouts of ``T`` steps of ``N`` environments (``course_utils.buffers.
RolloutBuffer``, trained by ``course_utils.loops.train_on_policy``). The actor is a ``PGPolicy``
(Categorical for discrete actions, diagonal Gaussian for a Box), the critic a separate MLP
``V(o)``. The pieces a student writes are parameters of the agents, so their own code trains
them:

* ``actor_critic_loss``: A2C's ``−log π(a|o)·A + c_v (V(o) − R)² − c_e H[π(·|o)]``;
* ``ppo_clip_loss``: PPO's clipped surrogate ``−min(r A, clip(r, 1 − ε, 1 + ε) A)``, with the
  importance ratio ``r = π(a|o) / π_old(a|o)``;
* ``value_loss``: ``(V(o) − R)²``, optionally clipped around the rollout's values;
* ``approx_kl``: the estimator ``(r − 1) − log r`` of ``KL(π_old ‖ π)`` that stops PPO's epochs.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from course_utils.agents.base import Policy
from course_utils.agents.pg import PGPolicy
from course_utils.buffers import RolloutBuffer
from course_utils.device import get_device
from course_utils.nn import Activation, MLPConfig, build_mlp, make_adam
from course_utils.returns import gae
from course_utils.schedules import linear_schedule
from course_utils.validation import check_int

# (log_probs (B,), advantages (B,), values (B,), returns (B,), entropy (B,), c_v, c_e) -> scalar
ActorCriticLoss = Callable[..., torch.Tensor]
# (log_probs (B,), old_log_probs (B,), advantages (B,), clip or None) -> scalar
PPOLoss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, Optional[float]], torch.Tensor]
# (values (B,), returns (B,), old_values (B,), clip or None) -> scalar
ValueLoss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, Optional[float]], torch.Tensor]
# (rewards, values, next_values, terminated, done (all (T, N)), gamma, lam) -> advantages (T, N)
AdvantageFn = Callable[..., torch.Tensor]
# (log_probs, old_log_probs, advantages, values, returns, entropy (all (B,)), clip, c_v, c_e)
#   -> scalar: PPO's whole loss in one function
PPOFullLoss = Callable[..., torch.Tensor]
# (log_probs (B,), old_log_probs (B,)) -> scalar
KLEstimate = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# ------------------------------------------------------------------------------- losses


def actor_critic_loss(log_probs: torch.Tensor, advantages: torch.Tensor, values: torch.Tensor,
                      returns: torch.Tensor, entropy: torch.Tensor, value_coef: float = 0.5,
                      entropy_coef: float = 0.0) -> torch.Tensor:
    """A2C's loss ``mean(−log π(a|o) A + c_v (V(o) − R)² − c_e H[π(·|o)])``, all inputs ``(B,)``.

    The advantages are constants (no gradient flows into the critic through them); the critic
    learns from the squared error only.
    """
    policy_loss = -(log_probs * advantages.detach()).mean()
    return policy_loss + value_coef * ((values - returns) ** 2).mean() - entropy_coef * entropy.mean()


def ppo_clip_loss(log_probs: torch.Tensor, old_log_probs: torch.Tensor,
                  advantages: torch.Tensor, clip: Optional[float] = 0.2) -> torch.Tensor:
    """PPO's clipped surrogate loss ``−mean(min(r A, clip(r, 1 − ε, 1 + ε) A))``, inputs ``(B,)``.

    ``r = exp(log π(a|o) − log π_old(a|o))``. The minimum takes the clipped term only where it
    is the more pessimistic one: for ``A > 0`` once ``r > 1 + ε``, for ``A < 0`` once
    ``r < 1 − ε``; there the gradient is zero, so one rollout cannot push π far from π_old.
    ``clip=None`` gives the unclipped surrogate ``−mean(r A)`` (an ablation).
    """
    ratio = torch.exp(log_probs - old_log_probs)
    if clip is None:
        return -(ratio * advantages).mean()
    clipped = torch.clamp(ratio, 1.0 - clip, 1.0 + clip)
    return -torch.minimum(ratio * advantages, clipped * advantages).mean()


def value_loss(values: torch.Tensor, returns: torch.Tensor, old_values: torch.Tensor,
               clip: Optional[float] = None) -> torch.Tensor:
    """``mean((V(o) − R)²)``; with ``clip``, PPO's pessimistic version
    ``mean(max((V − R)², (V_old + clip(V − V_old, −ε, ε) − R)²))``, all inputs ``(B,)``."""
    squared_error = (values - returns) ** 2
    if clip is None:
        return squared_error.mean()
    clipped_values = old_values + torch.clamp(values - old_values, -clip, clip)
    return torch.maximum(squared_error, (clipped_values - returns) ** 2).mean()


def approx_kl(log_probs: torch.Tensor, old_log_probs: torch.Tensor) -> torch.Tensor:
    """``mean((r − 1) − log r)`` with ``r = π/π_old``: an unbiased, never negative estimate of
    ``KL(π_old ‖ π)`` from samples of π_old (Schulman's k3 estimator), inputs ``(B,)``."""
    log_ratio = log_probs - old_log_probs
    return (torch.exp(log_ratio) - 1.0 - log_ratio).mean()


def explained_variance(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``1 − Var(R − V) / Var(R)``: 1 for a perfect critic, 0 for a constant one (NaN if Var(R) = 0)."""
    return 1.0 - (targets - predictions).var() / targets.var()


# ------------------------------------------------------------------------------- networks


class RunningNormalizer(nn.Module):
    """Standardises observations with a running mean and variance: ``clip((o − μ) / σ, ±10)``.

    The statistics are buffers of the module, so they live on its device, are saved with the
    agent's ``state_dict`` and are applied, frozen, wherever the agent acts (evaluation,
    animations, the bootstrap value of a truncated episode's final observation).
    """

    def __init__(self, size: int, device: torch.device, clip: float = 10.0) -> None:
        super().__init__()
        self.clip = clip
        self.register_buffer("mean", torch.zeros(size, device=device))
        self.register_buffer("var", torch.ones(size, device=device))
        self.register_buffer("count", torch.tensor(1e-4, device=device))

    @torch.no_grad()
    def update(self, observations: torch.Tensor) -> None:
        """Merge the moments of a batch ``(B, size)`` (Chan et al.'s parallel algorithm)."""
        batch_mean, batch_var = observations.mean(0), observations.var(0, unbiased=False)
        batch_count = observations.shape[0]
        total = self.count + batch_count
        delta = batch_mean - self.mean
        self.var.copy_((self.var * self.count + batch_var * batch_count
                        + delta ** 2 * self.count * batch_count / total) / total)
        self.mean.add_(delta * batch_count / total)
        self.count.copy_(total)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return torch.clamp((observations - self.mean) / torch.sqrt(self.var + 1e-8),
                           -self.clip, self.clip)


def _orthogonal_init(mlp: nn.Sequential, output_gain: float) -> None:
    """Orthogonal weights (gain √2 for hidden layers), zero biases: the PPO implementations'
    choice. A small ``output_gain`` makes the initial policy nearly uniform (or its mean ≈ 0)."""
    linears = [layer for layer in mlp if isinstance(layer, nn.Linear)]
    for i, layer in enumerate(linears):
        nn.init.orthogonal_(layer.weight, output_gain if i == len(linears) - 1 else np.sqrt(2))
        nn.init.zeros_(layer.bias)


class ActorCritic(nn.Module, Policy):
    """An actor ``π(·|o)`` (a ``PGPolicy``) and a separate critic ``V(o)``, on one device.

    Args:
        observation_space: a one-dimensional Box.
        action_space: Discrete (Categorical policy) or a one-dimensional Box (diagonal Gaussian;
            the sample itself is stored and scored, the environment receives it clipped).
        n_layers, size, activation: hidden layers of actor and critic.
        initial_log_std: the Gaussian's starting ``log σ`` (continuous actions).
        orthogonal_init: initialise as the PPO implementations do (see ``_orthogonal_init``).
        normalize_observations: standardise observations with running statistics that
            ``update_normalizer`` updates (the agents do it once per rollout).
        device: default ``get_device()``.
    """

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, n_layers: int = 2,
                 size: int = 64, activation: Activation = "tanh", initial_log_std: float = 0.0,
                 orthogonal_init: bool = True, normalize_observations: bool = False,
                 device: Optional[torch.device | str] = None) -> None:
        super().__init__()
        self.device = torch.device(device) if device is not None else get_device()
        self.actor = PGPolicy(observation_space, action_space, n_layers, size, activation,
                              initial_log_std, device=self.device)
        self.discrete = self.actor.discrete
        self.observation_size = self.actor.observation_size
        self.critic = build_mlp(MLPConfig(self.observation_size, 1, n_layers, size, activation),
                                device=self.device)
        if orthogonal_init:
            _orthogonal_init(self.actor.net, output_gain=0.01)
            _orthogonal_init(self.critic, output_gain=1.0)
        self.normalizer = (RunningNormalizer(self.observation_size, self.device)
                           if normalize_observations else None)

    def _prepared(self, observations: Any) -> torch.Tensor:
        """Observations ``(..., obs_size)`` as float32 on the device, normalised if configured."""
        observations = torch.as_tensor(observations, dtype=torch.float32, device=self.device)
        if observations.shape[-1:] != (self.observation_size,):
            raise ValueError(f"observations must end in dimension {self.observation_size}, "
                             f"got shape {tuple(observations.shape)}")
        return self.normalizer(observations) if self.normalizer is not None else observations

    def value(self, observations: Any) -> torch.Tensor:
        """``V(o)`` for observations ``(B, obs_size)``: ``(B,)``."""
        return self.critic(self._prepared(observations)).squeeze(-1)

    @torch.no_grad()
    def act(self, observations: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For N observations ``(N, obs_size)``: sampled actions ``(N,)`` (discrete) or ``(N, d)``
        (unclipped), their ``log π(a|o)`` ``(N,)`` and ``V(o)`` ``(N,)``; all on the device."""
        observations = self._prepared(observations)
        distribution = self.actor.distribution(observations)
        actions = distribution.sample()
        values = self.critic(observations).squeeze(-1)
        return actions + self.actor.action_start, distribution.log_prob(actions), values

    def evaluate_actions(self, observations: torch.Tensor, actions: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``log π(a|o)``, the entropy ``H[π(·|o)]`` and ``V(o)``, each ``(B,)``, with gradients."""
        observations = self._prepared(observations)
        distribution = self.actor.distribution(observations)
        return (distribution.log_prob(actions - self.actor.action_start), distribution.entropy(),
                self.critic(observations).squeeze(-1))

    def get_action(self, observation: np.ndarray) -> Any:
        """A sample of ``π(·|o)`` for one observation (the evaluation and animation helpers)."""
        return self.actor.get_action(self._prepared(observation))

    def greedy_action(self, observation: np.ndarray) -> Any:
        """The mode of ``π(·|o)``: the most likely action, or the Gaussian's mean."""
        return self.actor.greedy_action(self._prepared(observation))

    def update_normalizer(self, observations: torch.Tensor) -> None:
        """Fold observations ``(..., obs_size)`` into the running statistics (if normalising)."""
        if self.normalizer is not None:
            self.normalizer.update(torch.as_tensor(observations, dtype=torch.float32,
                                                   device=self.device).reshape(-1, self.observation_size))


# ------------------------------------------------------------------------------- agents


class ActorCriticAgent:
    """What A2C and PPO share: the model, Adam with optional linear learning-rate annealing,
    gradient-norm clipping, GAE's γ and λ, and checkpoints. Subclasses define ``update``.

    ``anneal_steps``: decay the learning rate linearly to 0 over this many environment steps
    (the samples of the rollouts seen so far); ``None`` keeps it constant.
    ``advantage_fn``: what ``train_on_policy`` computes each rollout's advantages with
    (``rollout.compute_advantages(..., advantage_fn=agent.advantage_fn)``): ``returns.gae`` or a
    student's function of its signature.
    """

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, n_layers: int,
                 size: int, activation: Activation, learning_rate: float, gamma: float,
                 gae_lambda: float, max_grad_norm: Optional[float], anneal_steps: Optional[int],
                 initial_log_std: float, orthogonal_init: bool, normalize_observations: bool,
                 device: Optional[torch.device | str], seed: Optional[int],
                 advantage_fn: AdvantageFn = gae) -> None:
        if not learning_rate > 0:  # also refuses NaN
            raise ValueError(f"learning_rate must be positive, got {learning_rate!r}")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {gamma!r}")
        if not 0.0 <= gae_lambda <= 1.0:
            raise ValueError(f"gae_lambda must be in [0, 1], got {gae_lambda!r}")
        if max_grad_norm is not None and not max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be positive or None, got {max_grad_norm!r}")
        if seed is not None:
            torch.manual_seed(seed)
        self.policy = ActorCritic(observation_space, action_space, n_layers, size, activation,
                                  initial_log_std, orthogonal_init, normalize_observations, device)
        self.device = self.policy.device
        self.gamma, self.gae_lambda = gamma, gae_lambda
        self.advantage_fn = advantage_fn
        self.max_grad_norm = max_grad_norm
        self.learning_rate = (linear_schedule(learning_rate, 0.0, anneal_steps)
                              if anneal_steps is not None else (lambda step: learning_rate))
        self.optimizer = make_adam(self.policy.parameters(), learning_rate, self.device)
        self.env_steps = 0  # samples of all rollouts so far: drives the annealing
        self.updates = 0

    def _start_update(self, rollout: RolloutBuffer) -> float:
        """Check the rollout and set this update's learning rate; returns it."""
        if rollout.advantages is None:
            raise ValueError("rollout: call rollout.compute_advantages(...) before update")
        learning_rate = self.learning_rate(self.env_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate
        return learning_rate

    def _gradient_step(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
        self.optimizer.step()

    def _finish_update(self, rollout: RolloutBuffer) -> None:
        # The normaliser changes only between rollouts: the log-probabilities stored while
        # acting and those recomputed in the update then see the same inputs (ratio 1 at first).
        self.policy.update_normalizer(rollout.observations)
        self.env_steps += len(rollout)
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"policy": self.policy.state_dict(), "optimizer": self.optimizer.state_dict(),
                "env_steps": self.env_steps, "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.env_steps, self.updates = int(state["env_steps"]), int(state["updates"])


def _checked_loss(name: str, loss: Any) -> torch.Tensor:
    """A student's loss function must return a scalar tensor."""
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        raise ValueError(f"{name} must return a scalar tensor, got "
                         f"{tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss)}")
    return loss


class A2CAgent(ActorCriticAgent):
    """A2C (Mnih et al. 2016, synchronous): one gradient step on the whole rollout.

    Args:
        observation_space, action_space: see ``ActorCritic``.
        n_layers, size, activation, initial_log_std, orthogonal_init, normalize_observations:
            the networks (see ``ActorCritic``).
        learning_rate, anneal_steps: Adam's step size, optionally decayed (see
            ``ActorCriticAgent``).
        gamma, gae_lambda: discount and GAE's λ (λ = 1: Monte Carlo returns bootstrapped at the
            rollout's end, A2C's n-step return).
        value_coef, entropy_coef: ``c_v`` and ``c_e`` of the loss.
        max_grad_norm: clip the gradient's global norm (``None``: no clipping).
        normalize_advantages: standardise the rollout's advantages.
        loss_fn: ``actor_critic_loss`` or a student's function of the same signature.
        advantage_fn: ``returns.gae`` or a student's function of the same signature (see
            ``ActorCriticAgent``).
        device, seed: where the networks live; seeds their initialisation.
    """

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, n_layers: int = 2,
                 size: int = 64, activation: Activation = "tanh", learning_rate: float = 7e-4,
                 gamma: float = 0.99, gae_lambda: float = 1.0, value_coef: float = 0.5,
                 entropy_coef: float = 0.0, max_grad_norm: Optional[float] = 0.5,
                 normalize_advantages: bool = False, loss_fn: ActorCriticLoss = actor_critic_loss,
                 advantage_fn: AdvantageFn = gae,
                 anneal_steps: Optional[int] = None, initial_log_std: float = 0.0,
                 orthogonal_init: bool = True, normalize_observations: bool = False,
                 device: Optional[torch.device | str] = None, seed: Optional[int] = None) -> None:
        super().__init__(observation_space, action_space, n_layers, size, activation,
                         learning_rate, gamma, gae_lambda, max_grad_norm, anneal_steps,
                         initial_log_std, orthogonal_init, normalize_observations, device, seed,
                         advantage_fn)
        self.value_coef, self.entropy_coef = value_coef, entropy_coef
        self.normalize_advantages = normalize_advantages
        self.loss_fn = loss_fn

    def update(self, rollout: RolloutBuffer) -> dict[str, torch.Tensor]:
        """One gradient step on ``loss_fn`` over all ``T·N`` samples of the rollout."""
        learning_rate = self._start_update(rollout)
        observations, actions = rollout.observations.flatten(0, 1), rollout.actions.flatten(0, 1)
        advantages, returns = rollout.advantages.flatten(), rollout.returns.flatten()
        if self.normalize_advantages:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        log_probs, entropy, values = self.policy.evaluate_actions(observations, actions)
        loss = _checked_loss("loss_fn", self.loss_fn(log_probs, advantages, values, returns,
                                                     entropy, self.value_coef, self.entropy_coef))
        self._gradient_step(loss)
        self._finish_update(rollout)
        return {"loss": loss.detach(), "policy_loss": -(log_probs * advantages).mean().detach(),
                "value_loss": ((values - returns) ** 2).mean().detach(),
                "entropy": entropy.mean().detach(),
                "explained_variance": explained_variance(rollout.values.flatten(), returns),
                "learning_rate": torch.tensor(learning_rate)}


class PPOAgent(ActorCriticAgent):
    """PPO with the clipped surrogate (Schulman et al. 2017), as in CleanRL and SB3.

    Each update runs ``n_epochs`` passes over the rollout in shuffled minibatches of
    ``batch_size``, stopping early once the epoch's mean ``approx_kl`` exceeds ``target_kl``.

    Args (besides ``A2CAgent``'s):
        n_epochs, batch_size: the passes over the rollout and the minibatch size.
        clip: PPO's ε; ``None`` gives the unclipped surrogate (an ablation).
        clip_value: clip the value loss around the rollout's values (``None``: plain squared error).
        normalize_advantages: standardise the advantages of each minibatch (switchable for an
            ablation).
        target_kl: stop the epochs once the approximate KL exceeds it (``None``: never).
        policy_loss, value_loss_fn: ``ppo_clip_loss`` and ``value_loss`` or a student's own.
        loss_fn: a student's whole loss ``loss_fn(log_probs, old_log_probs, advantages, values,
            returns, entropy, clip, value_coef, entropy_coef) -> scalar``, minimised instead of
            ``policy_loss + c_v value_loss_fn − c_e entropy`` when given (those two then only
            report their metrics). It sees no old values, so it excludes ``clip_value``.
        approx_kl_fn: ``approx_kl`` or a student's own; its epoch mean decides the early stop.
    """

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, n_layers: int = 2,
                 size: int = 64, activation: Activation = "tanh", learning_rate: float = 3e-4,
                 gamma: float = 0.99, gae_lambda: float = 0.95, n_epochs: int = 10,
                 batch_size: int = 64, clip: Optional[float] = 0.2,
                 clip_value: Optional[float] = None, value_coef: float = 0.5,
                 entropy_coef: float = 0.0, max_grad_norm: Optional[float] = 0.5,
                 normalize_advantages: bool = True, target_kl: Optional[float] = None,
                 policy_loss: PPOLoss = ppo_clip_loss, value_loss_fn: ValueLoss = value_loss,
                 loss_fn: Optional[PPOFullLoss] = None, approx_kl_fn: KLEstimate = approx_kl,
                 anneal_steps: Optional[int] = None, initial_log_std: float = 0.0,
                 orthogonal_init: bool = True, normalize_observations: bool = False,
                 device: Optional[torch.device | str] = None, seed: Optional[int] = None) -> None:
        for name, value in (("clip", clip), ("clip_value", clip_value), ("target_kl", target_kl)):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive or None, got {value!r}")
        if loss_fn is not None and clip_value is not None:
            raise ValueError("clip_value needs the rollout's values, which loss_fn does not "
                             "receive: pass clip_value=None with loss_fn (or use value_loss_fn)")
        super().__init__(observation_space, action_space, n_layers, size, activation,
                         learning_rate, gamma, gae_lambda, max_grad_norm, anneal_steps,
                         initial_log_std, orthogonal_init, normalize_observations, device, seed)
        self.n_epochs = check_int("n_epochs", n_epochs)
        self.batch_size = check_int("batch_size", batch_size)
        self.clip, self.clip_value, self.target_kl = clip, clip_value, target_kl
        self.value_coef, self.entropy_coef = value_coef, entropy_coef
        self.normalize_advantages = normalize_advantages
        self.policy_loss, self.value_loss_fn = policy_loss, value_loss_fn
        self.loss_fn, self.approx_kl_fn = loss_fn, approx_kl_fn

    def update(self, rollout: RolloutBuffer) -> dict[str, torch.Tensor]:
        """Minibatch epochs on ``policy_loss + c_v value_loss − c_e entropy`` (or ``loss_fn``);
        returns the means over the minibatches of the last epoch run, and ``epochs`` (fewer if
        the approximate KL stopped them)."""
        learning_rate = self._start_update(rollout)
        epochs = 0
        for _ in range(self.n_epochs):
            epoch_metrics: list[dict[str, torch.Tensor]] = []
            for batch in rollout.minibatches(self.batch_size):
                log_probs, entropy, values = self.policy.evaluate_actions(batch.observations,
                                                                          batch.actions)
                advantages = batch.advantages
                if self.normalize_advantages and len(batch) > 1:
                    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
                if self.loss_fn is None:
                    policy_loss = _checked_loss("policy_loss", self.policy_loss(
                        log_probs, batch.log_probs, advantages, self.clip))
                    critic_loss = _checked_loss("value_loss_fn", self.value_loss_fn(
                        values, batch.returns, batch.values, self.clip_value))
                    loss = policy_loss + self.value_coef * critic_loss \
                        - self.entropy_coef * entropy.mean()
                else:
                    loss = _checked_loss("loss_fn", self.loss_fn(
                        log_probs, batch.log_probs, advantages, values, batch.returns, entropy,
                        self.clip, self.value_coef, self.entropy_coef))
                    with torch.no_grad():  # the two parts, for the metrics only
                        policy_loss = self.policy_loss(log_probs, batch.log_probs, advantages,
                                                       self.clip)
                        critic_loss = self.value_loss_fn(values, batch.returns, batch.values, None)
                self._gradient_step(loss)
                with torch.no_grad():
                    ratio = torch.exp(log_probs - batch.log_probs)
                    clipped = ((ratio - 1.0).abs() > self.clip).float().mean() \
                        if self.clip is not None else torch.zeros((), device=self.device)
                    kl = _checked_loss("approx_kl_fn", self.approx_kl_fn(log_probs,
                                                                         batch.log_probs))
                    epoch_metrics.append({
                        "loss": loss.detach(), "policy_loss": policy_loss.detach(),
                        "value_loss": critic_loss.detach(), "entropy": entropy.mean().detach(),
                        "approx_kl": kl, "clip_fraction": clipped})
            epochs += 1
            metrics = {name: torch.stack([m[name] for m in epoch_metrics]).mean()
                       for name in epoch_metrics[0]}
            # One synchronisation per epoch (not per minibatch) to decide on early stopping.
            if self.target_kl is not None and metrics["approx_kl"].item() > self.target_kl:
                break
        self._finish_update(rollout)
        return {**metrics, "explained_variance": explained_variance(rollout.values.flatten(),
                                                                    rollout.returns.flatten()),
                "epochs": torch.tensor(float(epochs)), "learning_rate": torch.tensor(learning_rate)}
