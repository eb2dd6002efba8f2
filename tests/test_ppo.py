"""agents/ppo.py: the configuration, the actor-critic, the update against hand-computed values,
the rollout's truncation bootstrap, and train() on tiny budgets (plus one short learning run)."""

from __future__ import annotations

import dataclasses
import math
import re

import gymnasium as gym
import numpy as np
import pytest
import torch

from course_utils.agents.ppo import ActorCritic, PPOConfig, Rollout, ppo_update, train
from course_utils.nn import RunningNorm

BOX4 = gym.spaces.Box(-5.0, 5.0, (4,))


# ----------------------------------------------------------------------------- configuration


@pytest.mark.parametrize("field, value, message", [
    ("n_envs", 0, "n_envs must be an int >= 1"),
    ("batch_size", 2.5, "batch_size must be an int"),
    ("learning_rate", 0.0, "learning_rate must be positive"),
    ("clip", float("nan"), "clip must be positive"),
    ("gamma", 1.5, "gamma must be in [0, 1]"),
    ("gae_lambda", -0.1, "gae_lambda must be in [0, 1]"),
    ("target_kl", 0.0, "target_kl must be positive or None"),
    ("state_dependent_every", -1, "state_dependent_every must be an int >= 0"),
])
def test_config_names_the_bad_field(field, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        PPOConfig(**{field: value})


def test_config_extends_train_config_and_logs_every_update():
    config = PPOConfig(total_steps=10, seed=3)
    assert (config.total_steps, config.seed, config.log_every) == (10, 3, 1)


# ----------------------------------------------------------------------------- networks


def test_discrete_actor_critic_shapes_and_nearly_uniform_start():
    torch.manual_seed(0)
    model = ActorCritic(BOX4, gym.spaces.Discrete(3), PPOConfig(size=8), device="cpu")
    observations = torch.randn(5, 4)
    actions, log_probs, values = model.act(observations)
    assert actions.shape == (5,) and actions.dtype == torch.int64
    assert log_probs.shape == values.shape == (5,)
    # The actor's last layer has gain 0.01: the first policy is close to uniform.
    assert torch.allclose(log_probs, torch.full((5,), -math.log(3)), atol=0.05)
    new_log_probs, entropy, new_values = model.evaluate(observations, actions)
    assert torch.allclose(new_log_probs, log_probs) and torch.allclose(new_values, values)
    assert entropy.shape == (5,) and new_log_probs.requires_grad
    assert isinstance(model.greedy_action(np.zeros(4, dtype=np.float32)), int)
    assert all(layer.bias.abs().max() == 0 for layer in model.critic
               if isinstance(layer, torch.nn.Linear))


def test_gaussian_actor_critic_scores_the_sample_it_stores():
    torch.manual_seed(0)
    config = PPOConfig(size=8, initial_log_std=-1.0)
    model = ActorCritic(BOX4, gym.spaces.Box(-1.0, 1.0, (2,)), config, device="cpu")
    observations = torch.randn(6, 4)
    actions, log_probs, _ = model.act(observations)
    assert actions.shape == (6, 2) and torch.allclose(model.log_std, torch.full((2,), -1.0))
    mean = model.actor(observations)
    expected = torch.distributions.Normal(mean, math.exp(-1.0)).log_prob(actions).sum(-1)
    assert torch.allclose(log_probs, expected, atol=1e-5)
    _, entropy, _ = model.evaluate(observations, actions)
    # Entropy of a diagonal Gaussian: Σ_j (log σ_j + ½ log 2πe), the same in every state.
    assert torch.allclose(entropy, torch.full((6,), 2 * (-1.0 + 0.5 * math.log(2 * math.pi * math.e))))
    assert model.greedy_action(np.zeros(4, dtype=np.float32)).shape == (2,)


def test_state_dependent_noise_is_phi_times_w_held_until_redrawn_and_scored():
    torch.manual_seed(0)
    config = PPOConfig(size=8, initial_log_std=-1.0, state_dependent_every=4)
    model = ActorCritic(BOX4, gym.spaces.Box(-1.0, 1.0, (2,)), config, device="cpu")
    assert model.log_std.shape == (8, 2)  # one σ per (feature, action dimension)
    observations = torch.randn(3, 4)
    model.resample_exploration(3)
    actions, log_probs, _ = model.act(observations)
    again, _, _ = model.act(observations)
    assert torch.equal(actions, again)  # W is held between draws: same state, same action
    features = model.actor[:-2](observations)  # φ(s): the last hidden layer
    mean = model.actor[-2:](features)
    noise = torch.einsum("nf,nfd->nd", features, model.exploration)
    assert torch.allclose(actions, mean + noise, atol=1e-6)
    # a_i ~ N(μ_i(s), Σ_j φ_j(s)² σ_ji²): the log-probability act stores and evaluate recomputes.
    std = torch.sqrt(features ** 2 @ torch.full((8, 2), math.exp(-2.0)) + 1e-6)
    expected = torch.distributions.Normal(mean, std).log_prob(actions).sum(-1)
    assert torch.allclose(log_probs, expected, atol=1e-5)
    assert torch.allclose(model.action_std(observations), std, atol=1e-6)
    new_log_probs, _, _ = model.evaluate(observations, actions)
    assert torch.allclose(new_log_probs, expected, atol=1e-5)
    new_log_probs.sum().backward()
    assert model.log_std.grad.abs().sum() > 0
    model.resample_exploration(3)
    assert not torch.equal(model.act(observations)[0], actions)
    # Over many draws of W, φ(s) W has that variance.
    draws = torch.distributions.Normal(0.0, model.log_std.exp().detach()).sample((20_000,))
    samples = torch.einsum("f,nfd->nd", features[0].detach(), draws)
    assert torch.allclose(samples.var(0), std[0].detach() ** 2, rtol=0.05)


def test_state_dependent_noise_needs_a_hidden_layer_and_is_redrawn_every_k_steps(monkeypatch):
    with pytest.raises(ValueError, match="n_layers must be ≥ 1"):
        PPOConfig(n_layers=0, state_dependent_every=4)
    draws = []
    original = ActorCritic.resample_exploration
    monkeypatch.setattr(ActorCritic, "resample_exploration",
                        lambda self, n: (draws.append(n), original(self, n)))
    config = PPOConfig(total_steps=64, n_envs=2, n_steps=32, batch_size=32, n_epochs=1,
                       state_dependent_every=8, progress=False, size=8)
    model, _ = train("Pendulum-v1", config, device="cpu")
    assert draws == [2] * 4 and model.exploration.shape == (2, 8, 1)  # t = 0, 8, 16, 24


@pytest.mark.parametrize("observation_space, action_space, message", [
    (BOX4, gym.spaces.MultiDiscrete([2, 2]), "action_space must be a Discrete space"),
    (BOX4, gym.spaces.Discrete(2, start=1), "Discrete(n) starting at 0"),
    (gym.spaces.Box(0.0, 1.0, (2, 2)), gym.spaces.Discrete(2), "observation_space must be a one"),
])
def test_actor_critic_refuses_unsupported_spaces(observation_space, action_space, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        ActorCritic(observation_space, action_space, PPOConfig(), device="cpu")


def test_actor_critic_refuses_observations_of_the_wrong_size():
    model = ActorCritic(BOX4, gym.spaces.Discrete(2), PPOConfig(size=8), device="cpu")
    with pytest.raises(ValueError, match="observations must end in dimension 4"):
        model.value(torch.zeros(3, 5))


def test_running_norm_matches_the_moments_of_all_batches():
    norm = RunningNorm(2, torch.device("cpu"))
    data = torch.randn(300, 2) * torch.tensor([3.0, 0.5]) + torch.tensor([1.0, -2.0])
    for batch in data.split(100):
        norm.update(batch)
    assert torch.allclose(norm.mean, data.mean(0), atol=1e-4)
    assert torch.allclose(norm.var, data.var(0, unbiased=False), atol=1e-3)
    assert torch.allclose(norm(data).mean(0), torch.zeros(2), atol=1e-4)


# ----------------------------------------------------------------------------- the update


def _rollout(model: ActorCritic, n: int = 8, shift: float = 0.0) -> Rollout:
    torch.manual_seed(1)
    observations = torch.randn(n, 4)
    actions, log_probs, values = model.act(observations)
    advantages = torch.randn(n) * 2 + 1
    return Rollout(observations, actions, log_probs + shift, values, advantages,
                   values + advantages)


def test_update_first_minibatch_matches_the_formula():
    """One epoch, one minibatch: the returned losses are those of the formula at θ = θ_old."""
    torch.manual_seed(0)
    config = PPOConfig(size=8, n_epochs=1, batch_size=8, entropy_coef=0.1)
    model = ActorCritic(BOX4, gym.spaces.Discrete(2), config, device="cpu")
    rollout = _rollout(model, shift=0.5)  # log π_old = log π_θ + 0.5: r = e^−0.5 ≈ 0.61 < 1 − ε
    log_probs, entropy, values = model.evaluate(rollout.observations, rollout.actions)
    a = (rollout.advantages - rollout.advantages.mean()) / (rollout.advantages.std() + 1e-8)
    r = math.exp(-0.5)
    # r < 1 − ε: the min picks r·A where A > 0 and (1 − ε)·A where A < 0.
    objective = torch.where(a > 0, r * a, 0.8 * a)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    metrics = ppo_update(model, optimizer, rollout, config, torch.Generator().manual_seed(0))
    assert metrics["epochs"] == 1
    assert torch.isclose(metrics["policy_loss"], -objective.mean(), atol=1e-5)
    assert torch.isclose(metrics["value_loss"], ((values - rollout.returns) ** 2).mean())
    assert torch.isclose(metrics["entropy"], entropy.mean())
    assert torch.isclose(metrics["approx_kl"], torch.tensor(r - 1 + 0.5), atol=1e-5)
    assert metrics["clip_fraction"] == 1.0


def test_update_clips_the_gradient_norm():
    torch.manual_seed(0)
    config = PPOConfig(size=8, n_epochs=1, batch_size=8, max_grad_norm=1e-3)
    model = ActorCritic(BOX4, gym.spaces.Discrete(2), config, device="cpu")
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)  # the step is the clipped gradient
    ppo_update(model, optimizer, _rollout(model), config, torch.Generator().manual_seed(0))
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert (after - before).norm() <= 1e-3 * (1 + 1e-4)


def test_update_stops_its_epochs_at_the_target_kl():
    torch.manual_seed(0)
    config = PPOConfig(size=8, n_epochs=5, batch_size=4, learning_rate=0.05)
    model = ActorCritic(BOX4, gym.spaces.Discrete(2), config, device="cpu")
    rollout = _rollout(model)

    def epochs(target_kl):
        copy = ActorCritic(BOX4, gym.spaces.Discrete(2), config, device="cpu")
        copy.load_state_dict(model.state_dict())
        optimizer = torch.optim.Adam(copy.parameters(), lr=config.learning_rate)
        return ppo_update(copy, optimizer, rollout, dataclasses.replace(config, target_kl=target_kl),
                          torch.Generator().manual_seed(0))["epochs"]

    assert epochs(None) == 5
    assert epochs(1e-9) == 1  # the first epoch already moved the policy
    assert epochs(1e9) == 5


# ----------------------------------------------------------------------------- train


class Clock(gym.Env):
    """Observation: the step within the episode; reward 1 per step. With ``terminate`` the
    episode reaches a terminal state after 3 steps, otherwise a time limit truncates it."""

    def __init__(self, terminate: bool = False) -> None:
        self.observation_space = gym.spaces.Box(0.0, 10.0, (1,))
        self.action_space = gym.spaces.Discrete(2)
        self.terminate, self.t = terminate, 0

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], dtype=np.float32), {}

    def step(self, action):
        self.t += 1
        return np.array([self.t], dtype=np.float32), 1.0, self.terminate and self.t == 3, False, {}


gym.register("course_tests/ClockTruncated-v0", entry_point=Clock, max_episode_steps=3)
gym.register("course_tests/ClockTerminated-v0", entry_point=Clock, kwargs={"terminate": True})


def _capture(store):
    def update(model, optimizer, rollout, config, generator):
        store.append((model, rollout))
        return {"epochs": 0}
    return update


@pytest.mark.parametrize("env_id, bootstraps", [("course_tests/ClockTruncated-v0", True),
                                                ("course_tests/ClockTerminated-v0", False)])
def test_a_truncated_episode_bootstraps_from_its_final_observation(env_id, bootstraps):
    """λ = 0: R_t = r_t + γ V(s_{t+1}); at the episode's third step s_{t+1} is the final
    observation [3] for a truncation (not the next episode's [0]), and nothing for a terminal."""
    store = []
    config = PPOConfig(total_steps=12, n_envs=2, n_steps=6, gamma=0.5, gae_lambda=0.0, size=8,
                       progress=False)
    train(env_id, config, update=_capture(store), device="cpu")
    model, rollout = store[0]
    with torch.no_grad():
        v = {t: model.value(torch.tensor([[float(t)]])).item() for t in range(4)}
    returns = rollout.returns.reshape(6, 2)[:, 0]  # environment 0, steps 0 … 5
    last = 1.0 + 0.5 * v[3] if bootstraps else 1.0
    expected = [1.0 + 0.5 * v[1], 1.0 + 0.5 * v[2], last] * 2
    assert np.allclose(returns.tolist(), expected, atol=1e-5)


def test_train_logs_updates_episodes_and_evaluations_and_continues():
    config = PPOConfig(total_steps=128, n_envs=2, n_steps=16, batch_size=16, n_epochs=2,
                       eval_every=64, eval_episodes=1, progress=False, size=8)
    model, tracker = train("CartPole-v1", config, device="cpu")
    assert tracker.last("env_steps") == 128
    assert {"return", "episode_length", "policy_loss", "value_loss", "entropy", "approx_kl",
            "clip_fraction", "epochs", "explained_variance", "eval_return"} <= set(tracker.keys)
    assert len(tracker.history["policy_loss"]) == 4  # one row per update
    assert tracker.steps("eval_return") == [64, 128]
    model, tracker = train("CartPole-v1", dataclasses.replace(config, total_steps=192),
                           model=model, tracker=tracker)
    assert tracker.last("env_steps") == 192


def test_train_anneals_the_learning_rate_and_normalises_continuous_observations():
    rates, store = [], []

    def update(model, optimizer, rollout, config, generator):
        rates.append(optimizer.param_groups[0]["lr"])
        store.append(model)
        return ppo_update(model, optimizer, rollout, config, generator)

    config = PPOConfig(total_steps=256, n_envs=2, n_steps=32, batch_size=32, n_epochs=1,
                       learning_rate=1e-3, anneal_lr=True, normalize_observations=True,
                       normalize_reward=True, progress=False, size=8)
    model, _ = train("Pendulum-v1", config, update=update, device="cpu")
    assert np.allclose(rates, [1e-3 * (1 - k / 4) for k in range(4)])
    assert model.obs_norm.count > 256 and model.log_std.shape == (1,)


def test_ppo_solves_cartpole_with_the_benchmark_settings():
    config = PPOConfig(total_steps=30_000, seed=0, eval_every=2_000, solved_at=475, n_envs=8,
                       n_steps=32, learning_rate=2.5e-3, gamma=0.98, gae_lambda=0.8, n_epochs=10,
                       batch_size=256, progress=False)
    _, tracker = train("CartPole-v1", config, device="cpu")
    assert tracker.last("eval_return") >= 475 and tracker.last("env_steps") <= 30_000


def test_ppo_with_state_dependent_noise_solves_pendulum_with_the_benchmark_settings():
    settings = dict(n_envs=8, n_steps=128, normalize_reward=True, normalize_observations=True,
                    learning_rate=1e-3, gamma=0.9, gae_lambda=0.95, n_epochs=10, batch_size=64,
                    state_dependent_every=4)
    config = PPOConfig(total_steps=20_000, seed=1, eval_every=1_000, solved_at=-200,
                       progress=False, **settings)
    _, tracker = train("Pendulum-v1", config, device="cpu")
    assert tracker.last("eval_return") >= -200 and tracker.last("env_steps") <= 20_000
