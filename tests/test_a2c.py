"""Unit tests of course_utils.agents.a2c: the networks, the rollout (with the truncation
bootstrap), the update against values worked by hand, and train()."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from course_utils.agents.a2c import (A2CConfig, ActorCritic, Rollout, a2c_update,
                                     collect_rollout, train)
from course_utils.envs.vector import make_vector_env

CPU = dict(device="cpu")


def cartpole_model(**settings) -> ActorCritic:
    env = gym.make("CartPole-v1")
    return ActorCritic(env.observation_space, env.action_space, A2CConfig(**CPU, **settings))


def test_networks_shapes_and_initialisation():
    torch.manual_seed(0)
    model = cartpole_model(n_layers=2, size=16)
    observations = torch.randn(5, 4)
    assert model.distribution(observations).probs.shape == (5, 2)
    assert model.value(observations).shape == (5,)
    actions, values = model.act(observations)
    assert actions.shape == (5,) and actions.dtype == torch.int64 and values.shape == (5,)
    assert not values.requires_grad
    assert model.greedy_action(np.zeros(4, dtype=np.float32)) in (0, 1)
    assert model.get_action(np.zeros(4, dtype=np.float32)) in (0, 1)
    # Orthogonal initialisation with a small output gain: a nearly uniform first policy.
    assert all(float(layer.bias.detach().abs().max()) == 0.0 for layer in model.actor if hasattr(layer, "bias"))
    assert torch.allclose(model.distribution(observations).probs, torch.full((5, 2), 0.5), atol=0.05)
    assert len([m for m in model.actor if isinstance(m, torch.nn.Linear)]) == 3


def test_networks_refuse_unsupported_spaces():
    box = gym.spaces.Box(-1.0, 1.0, (3,))
    with pytest.raises(ValueError, match="action_space must be Discrete"):
        ActorCritic(box, box, A2CConfig(**CPU))
    with pytest.raises(ValueError, match="action_space must be Discrete"):
        ActorCritic(box, gym.spaces.Discrete(3, start=1), A2CConfig(**CPU))
    with pytest.raises(ValueError, match="observation_space must be a one-dimensional Box"):
        ActorCritic(gym.spaces.Box(-1.0, 1.0, (2, 2)), gym.spaces.Discrete(2), A2CConfig(**CPU))
    with pytest.raises(ValueError, match="action_space must be Discrete"):
        train("Pendulum-v1", A2CConfig(total_steps=10, progress=False, **CPU))


def test_collect_rollout_stores_t_by_n_and_bootstraps_truncations_from_the_final_observation():
    torch.manual_seed(0)
    model = cartpole_model()
    envs = make_vector_env("CartPole-v1", 2, seed=3, max_episode_steps=3)
    observations, _ = envs.reset(seed=3)
    rollout, after = collect_rollout(envs, model, observations, 5, 0.9)
    assert rollout.observations.shape == (5, 2, 4)
    for name in ("actions", "values", "rewards", "dones"):
        assert getattr(rollout, name).shape == (5, 2), name
    assert rollout.last_values.shape == (2,)
    assert torch.equal(rollout.observations[0], torch.as_tensor(observations, dtype=torch.float32))
    assert torch.allclose(rollout.last_values, model.value(torch.as_tensor(after, dtype=torch.float32)))
    # Replay the same actions on a twin of the environments to find the truncated episodes'
    # true last observations: step 2 (the time limit) earns 1 + γ V(final observation).
    twin = make_vector_env("CartPole-v1", 2, seed=3, max_episode_steps=3)
    twin.reset(seed=3)
    for t in range(5):
        _, _, terminated, truncated, infos = twin.step(rollout.actions[t].numpy())
        assert torch.equal(rollout.dones[t], torch.as_tensor(terminated | truncated, dtype=torch.float32))
        cut = truncated & ~terminated
        for i in range(2):
            expected = 1.0
            if cut[i]:
                final = torch.as_tensor(infos["final_obs"][i], dtype=torch.float32)
                expected += 0.9 * float(model.value(final[None])[0].detach())
            assert float(rollout.rewards[t, i]) == pytest.approx(expected, rel=1e-6)
    assert rollout.dones[2].tolist() == [1.0, 1.0] and (rollout.rewards[2] != 1.0).all()


def test_a2c_update_by_hand():
    """A uniform policy over 2 actions and a constant critic V = 0.5; one environment, two steps,
    the episode ending at the second: γ = 0.5, λ = 1 give Â = [1.5, 1.5], R = [2, 2]."""
    env = gym.make("CartPole-v1")
    config = A2CConfig(gamma=0.5, gae_lambda=1.0, value_coef=0.5, entropy_coef=0.01,
                       max_grad_norm=1e6, n_layers=0, **CPU)
    model = ActorCritic(env.observation_space, env.action_space, config)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        model.critic[0].bias.fill_(0.5)
    rollout = Rollout(observations=torch.zeros(2, 1, 4), actions=torch.tensor([[0], [1]]),
                      values=torch.full((2, 1), 0.5), rewards=torch.tensor([[1.0], [2.0]]),
                      dones=torch.tensor([[0.0], [1.0]]), last_values=torch.tensor([100.0]))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    metrics = a2c_update(model, optimizer, rollout, config)
    policy_loss = 1.5 * math.log(2.0)  # −mean(log ½ · 1.5)
    value_loss = 1.5 ** 2
    assert float(metrics["policy_loss"]) == pytest.approx(policy_loss, rel=1e-5)
    assert float(metrics["value_loss"]) == pytest.approx(value_loss, rel=1e-5)
    assert float(metrics["entropy"]) == pytest.approx(math.log(2.0), rel=1e-5)
    assert float(metrics["loss"]) == pytest.approx(policy_loss + 0.5 * value_loss
                                                   - 0.01 * math.log(2.0), rel=1e-5)
    # ∂/∂b of 0.5 · mean((2 − b)²) is −(2 − b) = −1.5: SGD moves b to 0.5 + 0.1 · 1.5.
    assert float(model.critic[0].bias.detach()) == pytest.approx(0.65, rel=1e-5)
    # The actor's logits: ∂(−mean(log π(a) Â))/∂logits = −mean((onehot(a) − ½) Â) = 0 here
    # (one action of each), and the entropy of a uniform policy is at its maximum: no step.
    assert torch.allclose(model.actor[0].bias, torch.zeros(2), atol=1e-6)


def test_a2c_update_clips_the_gradient_norm():
    torch.manual_seed(0)
    config = A2CConfig(max_grad_norm=0.01, n_layers=1, size=8, **CPU)
    model = cartpole_model(n_layers=1, size=8)
    rollout = Rollout(torch.randn(4, 2, 4), torch.randint(0, 2, (4, 2)), torch.zeros(4, 2),
                      torch.randn(4, 2) * 10, torch.zeros(4, 2), torch.zeros(2))
    a2c_update(model, torch.optim.SGD(model.parameters(), lr=1.0), rollout, config)
    norm = torch.cat([p.grad.flatten() for p in model.parameters()]).norm()
    assert float(norm) == pytest.approx(0.01, rel=1e-4)


def test_train_runs_a_tiny_budget_logs_and_evaluates():
    config = A2CConfig(total_steps=200, n_envs=4, n_steps=5, eval_every=100, eval_episodes=2,
                       log_every=40, progress=False, **CPU)
    model, tracker = train("CartPole-v1", config)
    assert isinstance(model, ActorCritic)
    assert tracker.last("env_steps") == 200
    assert len(tracker.history["eval_return"]) == 2 and "eval_return_std" in tracker.keys
    for key in ("loss", "policy_loss", "value_loss", "entropy", "return", "episode_length"):
        assert key in tracker.keys, key
    # A continued run starts from the tracker's last step.
    model, tracker = train("CartPole-v1", A2CConfig(**{**config.__dict__, "total_steps": 300}),
                           model=model, tracker=tracker)
    assert tracker.last("env_steps") == 300


def test_train_uses_the_given_functions_and_anneals_the_learning_rate():
    calls = {"collect": 0, "rates": []}

    def my_collect(envs, model, observations, n_steps, gamma):
        calls["collect"] += 1
        return collect_rollout(envs, model, observations, n_steps, gamma)

    def my_update(model, optimizer, rollout, config):
        calls["rates"].append(optimizer.param_groups[0]["lr"])
        return a2c_update(model, optimizer, rollout, config)

    config = A2CConfig(total_steps=100, n_envs=2, n_steps=5, learning_rate=1e-3, anneal_lr=True,
                       progress=False, **CPU)
    train("CartPole-v1", config, update=my_update, collect=my_collect)
    assert calls["collect"] == 10 and len(calls["rates"]) == 10
    assert calls["rates"][0] == pytest.approx(1e-3) and calls["rates"][-1] == pytest.approx(1e-4)


def test_train_solves_cartpole_with_the_benchmark_settings():
    """The benchmark's settings solve CartPole (deterministic evaluation ≥ 475) within 20,000 steps."""
    config = A2CConfig(total_steps=20_000, n_envs=8, n_steps=5, learning_rate=1e-3,
                       eval_every=2_000, solved_at=475, progress=False, **CPU)
    _, tracker = train("CartPole-v1", config)
    assert tracker.last("eval_return") >= 475
