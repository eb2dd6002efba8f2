"""Unit tests of course_utils.agents: the abstractions, random agents and REINFORCE (PGAgent)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn
from torch.distributions import Categorical, Normal

from course_utils.agents import (
    Agent,
    PGAgent,
    PGPolicy,
    Policy,
    RandomAgent,
    RandomPolicy,
    baseline_advantage,
    policy_gradient_loss,
)
from course_utils.device import set_seed
from course_utils.nn import MLPConfig, build_mlp
from course_utils.returns import reward_to_go
from course_utils.trajectory import TrajectoryBuilder, sample_trajectories

OBS4 = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
OBS3 = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
ACT2 = gym.spaces.Box(-2.0, 2.0, (2,), np.float32)


@pytest.fixture
def discrete_policy():
    torch.manual_seed(0)
    return PGPolicy(OBS4, gym.spaces.Discrete(3), n_layers=1, size=16, device="cpu")


@pytest.fixture
def gaussian_policy():
    torch.manual_seed(0)
    return PGPolicy(OBS3, ACT2, n_layers=1, size=16, device="cpu")


# ------------------------------------------------------------------------------- base


def test_abstract_classes_cannot_be_instantiated():
    with pytest.raises(TypeError):
        Policy()
    with pytest.raises(TypeError):
        Agent()


@pytest.mark.parametrize("space", [
    gym.spaces.Discrete(5),
    gym.spaces.Discrete(3, start=-1),
    gym.spaces.Box(-1.0, 1.0, (3,), np.float32),
    gym.spaces.MultiDiscrete([2, 3]),
])
def test_random_policy_actions_in_space_and_reproducible(space):
    a = RandomPolicy(space, seed=7)
    first = [a.get_action(np.zeros(4)) for _ in range(50)]
    assert all(space.contains(action) for action in first)
    b = RandomPolicy(space, seed=7)
    second = [b.get_action(None) for _ in range(50)]
    for x, y in zip(first, second):
        np.testing.assert_array_equal(x, y)
    c = RandomPolicy(space, seed=8)
    third = [c.get_action(None) for _ in range(50)]
    assert any(not np.array_equal(x, z) for x, z in zip(first, third))


def test_random_policy_covers_discrete_space():
    policy = RandomPolicy(gym.spaces.Discrete(4), seed=0)
    assert {int(policy.get_action(None)) for _ in range(200)} == {0, 1, 2, 3}


def test_random_agent():
    agent = RandomAgent(gym.spaces.Discrete(2), seed=1)
    assert isinstance(agent, Agent)
    assert isinstance(agent.policy, RandomPolicy) and isinstance(agent.policy, Policy)
    actions = [agent.policy.get_action(None) for _ in range(20)]
    again = RandomAgent(gym.spaces.Discrete(2), seed=1)
    assert actions == [again.policy.get_action(None) for _ in range(20)]
    assert agent.update([]) == {}


def test_random_agent_plays_cartpole():
    env = gym.make("CartPole-v1")
    trajs = sample_trajectories(env, RandomAgent(env.action_space, seed=0), 100, seed=0)
    assert sum(len(t) for t in trajs) >= 100
    assert set(np.concatenate([t.actions for t in trajs]).tolist()) == {0, 1}


# ------------------------------------------------------------------------------- PGPolicy discrete


def test_discrete_policy_log_prob(discrete_policy):
    obs = torch.randn(5, 4)
    actions = torch.tensor([0, 1, 2, 1, 0])
    log_probs = discrete_policy.log_prob(obs, actions)
    assert log_probs.shape == (5,)
    assert (log_probs <= 0).all()
    logits = discrete_policy.net(obs)
    expected = torch.log_softmax(logits, -1)[torch.arange(5), actions]
    torch.testing.assert_close(log_probs, expected)
    assert log_probs.requires_grad


def test_discrete_policy_distribution(discrete_policy):
    dist = discrete_policy.distribution(torch.randn(6, 4))
    assert isinstance(dist, Categorical)
    assert dist.batch_shape == (6,)
    torch.testing.assert_close(dist.probs.sum(-1), torch.ones(6))
    assert (dist.probs > 0).all()


def test_discrete_get_action_int_in_range(discrete_policy):
    obs = np.random.default_rng(0).normal(size=4).astype(np.float32)
    actions = [discrete_policy.get_action(obs) for _ in range(300)]
    assert all(type(a) is int and 0 <= a < 3 for a in actions)
    assert set(actions) == {0, 1, 2}
    # Frequencies follow π(·|o).
    probs = discrete_policy.distribution(torch.as_tensor(obs)[None]).probs[0]
    freqs = np.bincount(actions, minlength=3) / len(actions)
    np.testing.assert_allclose(freqs, probs.detach().numpy(), atol=0.1)


def test_get_action_reproducible_with_torch_seed(discrete_policy):
    obs = np.ones(4, dtype=np.float32)
    torch.manual_seed(5)
    first = [discrete_policy.get_action(obs) for _ in range(20)]
    torch.manual_seed(5)
    assert [discrete_policy.get_action(obs) for _ in range(20)] == first


def test_discrete_greedy_action(discrete_policy):
    for seed in range(5):
        obs = np.random.default_rng(seed).normal(size=4).astype(np.float32)
        logits = discrete_policy.net(torch.as_tensor(obs))
        greedy = discrete_policy.greedy_action(obs)
        assert type(greedy) is int
        assert greedy == int(logits.argmax())
        assert discrete_policy.greedy_action(obs) == greedy


def test_get_action_has_no_grad(discrete_policy, gaussian_policy):
    out = gaussian_policy.get_action(np.zeros(3, np.float32))
    assert isinstance(out, np.ndarray)  # a tensor with grad could not become an array


def test_discrete_policy_respects_space_start():
    space = gym.spaces.Discrete(3, start=1)
    policy = PGPolicy(OBS4, space, device="cpu")
    obs = np.zeros(4, np.float32)
    assert all(space.contains(policy.get_action(obs)) for _ in range(50))
    assert space.contains(policy.greedy_action(obs))


# ------------------------------------------------------------------------------- PGPolicy Gaussian


def test_gaussian_log_prob_is_sum_of_normal_log_probs(gaussian_policy):
    with torch.no_grad():
        gaussian_policy.log_std.copy_(torch.tensor([-0.3, 0.4]))
    obs = torch.randn(7, 3)
    actions = torch.randn(7, 2)
    log_probs = gaussian_policy.log_prob(obs, actions)
    assert log_probs.shape == (7,)
    mean = gaussian_policy.net(obs)
    per_dim = Normal(mean, torch.tensor([-0.3, 0.4]).exp()).log_prob(actions)
    torch.testing.assert_close(log_probs, per_dim.sum(-1))
    # By hand, for the first row.
    std = np.exp([-0.3, 0.4])
    a, m = actions[0].numpy(), mean[0].detach().numpy()
    by_hand = np.sum(-0.5 * ((a - m) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi))
    assert log_probs[0].item() == pytest.approx(by_hand, abs=1e-5)


def test_gaussian_distribution_shapes(gaussian_policy):
    dist = gaussian_policy.distribution(torch.randn(4, 3))
    assert dist.batch_shape == (4,) and dist.event_shape == (2,)


def test_log_std_is_a_learned_parameter(gaussian_policy):
    assert isinstance(gaussian_policy.log_std, nn.Parameter)
    assert gaussian_policy.log_std.shape == (2,)
    torch.testing.assert_close(gaussian_policy.log_std.data, torch.full((2,), -0.5))
    assert any(p is gaussian_policy.log_std for p in gaussian_policy.parameters())
    gaussian_policy.log_prob(torch.randn(4, 3), torch.randn(4, 2)).sum().backward()
    assert gaussian_policy.log_std.grad is not None
    assert gaussian_policy.log_std.grad.abs().sum() > 0


def test_initial_log_std():
    policy = PGPolicy(OBS3, ACT2, initial_log_std=0.25, device="cpu")
    torch.testing.assert_close(policy.log_std.data, torch.full((2,), 0.25))


def test_discrete_policy_has_no_log_std(discrete_policy):
    assert not hasattr(discrete_policy, "log_std")


def test_gaussian_get_action_shape_and_spread(gaussian_policy):
    obs = np.array([0.1, -0.2, 0.3], dtype=np.float32)
    torch.manual_seed(0)
    actions = np.stack([gaussian_policy.get_action(obs) for _ in range(3000)])
    single = gaussian_policy.get_action(obs)
    assert isinstance(single, np.ndarray) and single.shape == (2,)
    assert single.dtype == np.float32
    mean = gaussian_policy.net(torch.as_tensor(obs)).detach().numpy()
    np.testing.assert_allclose(actions.mean(0), mean, atol=0.05)
    np.testing.assert_allclose(actions.std(0), np.exp(-0.5), rtol=0.06)


def test_gaussian_greedy_action_is_mean(gaussian_policy):
    obs = np.array([0.5, 0.5, -0.5], dtype=np.float32)
    greedy = gaussian_policy.greedy_action(obs)
    assert isinstance(greedy, np.ndarray) and greedy.shape == (2,)
    np.testing.assert_allclose(greedy, gaussian_policy.net(torch.as_tensor(obs)).detach().numpy(),
                               rtol=1e-6)
    np.testing.assert_array_equal(gaussian_policy.greedy_action(obs), greedy)


def test_policy_on_real_env_spaces():
    env = gym.make("Pendulum-v1")
    policy = PGPolicy(env.observation_space, env.action_space, device="cpu")
    obs, _ = env.reset(seed=0)
    assert policy.get_action(obs).shape == (1,)


# ------------------------------------------------------------------------------- bad spaces


@pytest.mark.parametrize("observation_space", [
    gym.spaces.Dict({"x": OBS4}),
    gym.spaces.Box(0, 255, (84, 84, 3), np.uint8),
    gym.spaces.Box(0.0, 1.0, (2, 2), np.float32),
    gym.spaces.Discrete(16),
    gym.spaces.MultiDiscrete([3, 3]),
])
def test_unsupported_observation_space(observation_space):
    with pytest.raises(ValueError, match="observation_space must be a one-dimensional Box"):
        PGPolicy(observation_space, gym.spaces.Discrete(2), device="cpu")


@pytest.mark.parametrize("action_space", [
    gym.spaces.Dict({"a": gym.spaces.Discrete(2)}),
    gym.spaces.MultiDiscrete([2, 3]),
    gym.spaces.MultiBinary(3),
    gym.spaces.Tuple((gym.spaces.Discrete(2), gym.spaces.Discrete(2))),
    gym.spaces.Box(-1.0, 1.0, (2, 2), np.float32),
    gym.spaces.Box(0, 255, (84, 84, 3), np.uint8),
])
def test_unsupported_action_space(action_space):
    with pytest.raises(ValueError, match="action_space must be"):
        PGPolicy(OBS4, action_space, device="cpu")


@pytest.mark.parametrize("shape", [(5, 3), (5,), (5, 5)])
def test_log_prob_wrong_observation_size(discrete_policy, shape):
    with pytest.raises(ValueError, match=r"observations must end in dimension 4"):
        discrete_policy.log_prob(torch.randn(shape), torch.zeros(5, dtype=torch.long))


def test_distribution_wrong_observation_size(gaussian_policy):
    with pytest.raises(ValueError, match=r"observations must end in dimension 3, got shape \(2, 4\)"):
        gaussian_policy.distribution(torch.randn(2, 4))


@pytest.mark.parametrize("method", ["get_action", "greedy_action"])
def test_single_observation_wrong_size(discrete_policy, method):
    with pytest.raises(ValueError, match="observation"):
        getattr(discrete_policy, method)(np.zeros(5, np.float32))


# ------------------------------------------------------------------------------- loss and advantage


def test_policy_gradient_loss_value_and_gradient():
    log_probs = torch.tensor([-0.5, -1.0, -2.0], requires_grad=True)
    weights = torch.tensor([1.0, 2.0, 3.0])
    loss = policy_gradient_loss(log_probs, weights)
    assert loss.shape == ()
    assert loss.item() == pytest.approx(8.5 / 3)
    loss.backward()
    torch.testing.assert_close(log_probs.grad, -weights / 3)


def test_policy_gradient_loss_random():
    g = torch.Generator().manual_seed(0)
    lp, w = torch.randn(64, generator=g), torch.randn(64, generator=g)
    assert policy_gradient_loss(lp, w).item() == pytest.approx(-(lp * w).mean().item())


def test_baseline_advantage_values_and_no_grad_into_values():
    returns = torch.tensor([3.0, 2.0, 1.0])
    values = torch.tensor([1.0, 1.5, -1.0], requires_grad=True)
    advantage = baseline_advantage(returns, values)
    assert advantage.tolist() == [2.0, 0.5, 2.0]
    assert not advantage.requires_grad
    assert values.grad is None


def test_baseline_advantage_keeps_grad_of_returns():
    returns = torch.tensor([1.0, 2.0], requires_grad=True)
    advantage = baseline_advantage(returns, torch.tensor([0.5, 0.5], requires_grad=True))
    advantage.sum().backward()
    assert returns.grad.tolist() == [1.0, 1.0]


# ------------------------------------------------------------------------------- PGAgent.update


def cartpole_batch(seed=0, min_timesteps=60):
    env = gym.make("CartPole-v1")
    torch.manual_seed(seed)
    policy = PGPolicy(env.observation_space, env.action_space, n_layers=1, size=16, device="cpu")
    trajs = sample_trajectories(env, policy, min_timesteps, seed=seed)
    return policy, trajs


def pendulum_batch(seed=0):
    env = gym.make("Pendulum-v1")
    torch.manual_seed(seed)
    policy = PGPolicy(env.observation_space, env.action_space, n_layers=1, size=16, device="cpu")
    trajs = sample_trajectories(env, policy, 40, seed=seed, max_steps=20)
    return policy, trajs


def snapshot(module):
    return [p.detach().clone() for p in module.parameters()]


def changed(module, before):
    return [not torch.equal(p, q) for p, q in zip(module.parameters(), before)]


@pytest.mark.parametrize("make", [cartpole_batch, pendulum_batch])
def test_update_returns_finite_loss_and_changes_policy(make):
    policy, trajs = make()
    agent = PGAgent(policy, weights_fn=reward_to_go)
    before = snapshot(policy)
    metrics = agent.update(trajs)
    assert set(metrics) == {"loss"}
    assert isinstance(metrics["loss"], float) and np.isfinite(metrics["loss"])
    assert all(changed(policy, before))
    assert agent.policy is policy


def test_update_loss_value_matches_reference():
    policy, trajs = cartpole_batch()
    from course_utils.trajectory import compile_trajectories
    batch = compile_trajectories(trajs, reward_to_go, device="cpu")
    with torch.no_grad():
        expected = -(policy.log_prob(batch.observations, batch.actions) * batch.weights).mean()
    metrics = PGAgent(policy, weights_fn=reward_to_go).update(trajs)
    assert metrics["loss"] == pytest.approx(expected.item(), rel=1e-5)


def test_update_gaussian_changes_log_std():
    policy, trajs = pendulum_batch()
    before = policy.log_std.detach().clone()
    PGAgent(policy, learning_rate=1e-2).update(trajs)
    assert not torch.equal(policy.log_std.detach(), before)


def test_update_with_baseline_returns_value_loss_and_trains_both():
    policy, trajs = cartpole_batch()
    baseline = build_mlp(MLPConfig(4, 1, n_layers=1, size=16), device="cpu")
    agent = PGAgent(policy, weights_fn=reward_to_go, baseline=baseline, baseline_steps=3)
    p_before, b_before = snapshot(policy), snapshot(baseline)
    metrics = agent.update(trajs)
    assert set(metrics) == {"loss", "value_loss"}
    assert np.isfinite(metrics["loss"]) and np.isfinite(metrics["value_loss"])
    assert metrics["value_loss"] > 0
    assert all(changed(policy, p_before)) and all(changed(baseline, b_before))


def test_baseline_regression_reduces_value_loss():
    policy, trajs = cartpole_batch()
    baseline = build_mlp(MLPConfig(4, 1, n_layers=1, size=16), device="cpu")
    agent = PGAgent(policy, weights_fn=reward_to_go, baseline=baseline, baseline_steps=1,
                    baseline_learning_rate=0.05)
    losses = [agent.update(trajs)["value_loss"] for _ in range(15)]
    assert losses[-1] < 0.5 * losses[0]


def test_update_uses_weights_fn_and_loss_fn():
    policy, trajs = cartpole_batch()
    calls = {"weights": [], "loss": []}

    def weights_spy(rewards):
        calls["weights"].append(rewards.clone())
        return reward_to_go(rewards)

    def loss_spy(log_probs, weights):
        calls["loss"].append((log_probs.detach().clone(), weights.detach().clone(),
                              log_probs.requires_grad))
        return policy_gradient_loss(log_probs, weights)

    PGAgent(policy, weights_fn=weights_spy, loss_fn=loss_spy).update(trajs)
    assert [len(r) for r in calls["weights"]] == [len(t) for t in trajs]
    assert len(calls["loss"]) == 1
    log_probs, weights, requires_grad = calls["loss"][0]
    n = sum(len(t) for t in trajs)
    assert log_probs.shape == (n,) and weights.shape == (n,) and requires_grad
    expected = torch.cat([reward_to_go(torch.as_tensor(t.rewards)) for t in trajs])
    torch.testing.assert_close(weights, expected)


def test_loss_fn_decides_the_update():
    """A loss_fn of zero gradient leaves the policy as it was: the agent really uses it."""
    policy, trajs = cartpole_batch()
    before = snapshot(policy)
    metrics = PGAgent(policy, loss_fn=lambda lp, w: (lp * 0.0).sum() + 1.25).update(trajs)
    assert metrics["loss"] == 1.25
    assert not any(changed(policy, before))


def test_update_uses_advantage_fn_with_baseline_evaluated_before_refit():
    policy, trajs = cartpole_batch()
    torch.manual_seed(1)
    baseline = build_mlp(MLPConfig(4, 1, n_layers=1, size=16), device="cpu")
    seen = {}

    def advantage_spy(returns, values):
        seen["returns"], seen["values"] = returns.detach().clone(), values.detach().clone()
        return baseline_advantage(returns, values)

    def loss_spy(log_probs, weights):
        seen["weights"] = weights.detach().clone()
        return policy_gradient_loss(log_probs, weights)

    from course_utils.trajectory import compile_trajectories
    batch = compile_trajectories(trajs, reward_to_go, device="cpu")
    with torch.no_grad():
        values_before = baseline(batch.observations).squeeze(-1)
    agent = PGAgent(policy, weights_fn=reward_to_go, loss_fn=loss_spy, baseline=baseline,
                    advantage_fn=advantage_spy)
    agent.update(trajs)
    torch.testing.assert_close(seen["returns"], batch.weights)
    torch.testing.assert_close(seen["values"], values_before)
    torch.testing.assert_close(seen["weights"], batch.weights - values_before)


def test_advantage_fn_unused_without_baseline():
    policy, trajs = cartpole_batch()

    def never(returns, values):
        raise AssertionError("advantage_fn called without a baseline")

    PGAgent(policy, advantage_fn=never).update(trajs)


def test_normalize_advantages():
    policy, trajs = cartpole_batch()
    seen = []
    agent = PGAgent(policy, weights_fn=reward_to_go, normalize_advantages=True,
                    loss_fn=lambda lp, w: seen.append(w.detach()) or policy_gradient_loss(lp, w))
    agent.update(trajs)
    assert seen[0].mean().item() == pytest.approx(0.0, abs=1e-5)
    assert seen[0].std().item() == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_loss_raises_floating_point_error_and_leaves_policy(bad):
    policy, trajs = cartpole_batch()
    before = snapshot(policy)
    agent = PGAgent(policy, loss_fn=lambda lp, w: policy_gradient_loss(lp, w) * bad)
    with pytest.raises(FloatingPointError, match="policy loss is (nan|inf).*loss_fn"):
        agent.update(trajs)
    assert not any(changed(policy, before))


def test_nan_weights_raise_floating_point_error():
    policy, trajs = cartpole_batch()
    agent = PGAgent(policy, weights_fn=lambda r: r / 0.0 * 0.0)
    with pytest.raises(FloatingPointError, match="weights_fn"):
        agent.update(trajs)


@pytest.mark.parametrize("lr", [0.0, -1e-3])
def test_rejects_bad_learning_rate(lr):
    with pytest.raises(ValueError, match="learning_rate must be positive"):
        PGAgent(PGPolicy(OBS4, gym.spaces.Discrete(2), device="cpu"), learning_rate=lr)


@pytest.mark.parametrize("steps", [0, -2, 2.5])
def test_rejects_bad_baseline_steps(steps):
    with pytest.raises(ValueError, match="baseline_steps must be an int >= 1"):
        PGAgent(PGPolicy(OBS4, gym.spaces.Discrete(2), device="cpu"), baseline_steps=steps)


def test_pg_agent_is_an_agent():
    agent = PGAgent(PGPolicy(OBS4, gym.spaces.Discrete(2), device="cpu"))
    assert isinstance(agent, Agent) and isinstance(agent.policy, Policy)


def test_update_single_trajectory_built_by_hand():
    policy = PGPolicy(OBS4, gym.spaces.Discrete(2), device="cpu")
    builder = TrajectoryBuilder()
    for t in range(3):
        builder.add_experience(np.full(4, 0.1 * t, np.float32), t % 2, 1.0, t == 2, False)
    metrics = PGAgent(policy, weights_fn=reward_to_go).update([builder.trajectory])
    assert np.isfinite(metrics["loss"])


# ------------------------------------------------------------------------------- learning


def run_reinforce(seed: int, iterations: int = 25, batch: int = 500) -> list[float]:
    set_seed(seed)
    env = gym.make("CartPole-v1")
    policy = PGPolicy(env.observation_space, env.action_space, device="cpu")
    agent = PGAgent(policy, learning_rate=1e-2, weights_fn=reward_to_go,
                    normalize_advantages=True)
    returns = []
    for iteration in range(iterations):
        trajs = sample_trajectories(env, agent, batch, seed=seed if iteration == 0 else None)
        agent.update(trajs)
        returns.append(float(np.mean([t.total_reward for t in trajs])))
    env.close()
    return returns


def test_reinforce_with_reward_to_go_learns_cartpole():
    # Measured over seeds 0-7 (first 3 → last 3 iterations): the smallest gain was 40 → 91,
    # seed 0 goes from about 36 to about 450. The thresholds below hold for all eight seeds.
    returns = run_reinforce(seed=0)
    first, last = np.mean(returns[:3]), np.mean(returns[-3:])
    assert first < 60, returns
    assert last > 2 * first and last > first + 40, returns
