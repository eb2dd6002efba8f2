"""Unit tests of course_utils.buffers.RolloutBuffer: layout, checks, GAE with episode ends
(terminated, truncated with bootstrap, no leak across episodes) and minibatches."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from course_utils.buffers import RolloutBuffer
from course_utils.returns import gae


def make_rollout(n_steps=3, n_envs=2, seed=0):
    return RolloutBuffer(n_steps, n_envs, observation_shape=(2,), device="cpu", seed=seed)


def step(n_envs=2, reward=1.0, value=0.0, terminated=False, truncated=False, bootstrap=None):
    """`add` arguments for one step of n_envs environments."""
    return dict(observations=np.zeros((n_envs, 2), dtype=np.float32),
                actions=torch.zeros(n_envs, dtype=torch.int64),
                log_probs=torch.zeros(n_envs), rewards=np.full(n_envs, reward),
                values=torch.full((n_envs,), value),
                terminated=np.full(n_envs, terminated), truncated=np.full(n_envs, truncated),
                bootstrap_values=bootstrap)


def filled(rewards, values, terminated, truncated, bootstrap):
    """A rollout of shape (T, N) from per-field arrays of that shape."""
    rewards, values = np.asarray(rewards, dtype=np.float32), np.asarray(values, dtype=np.float32)
    n_steps, n_envs = rewards.shape
    rollout = RolloutBuffer(n_steps, n_envs, observation_shape=(2,), device="cpu", seed=0)
    for t in range(n_steps):
        rollout.add(np.zeros((n_envs, 2)), np.zeros(n_envs, dtype=np.int64), np.zeros(n_envs),
                    rewards[t], values[t], np.asarray(terminated[t], dtype=bool),
                    np.asarray(truncated[t], dtype=bool), np.asarray(bootstrap[t], np.float32))
    return rollout


# ------------------------------------------------------------------------------- layout


def test_for_env_shapes_and_dtypes():
    envs = gym.make_vec("Pendulum-v1", num_envs=3)
    rollout = RolloutBuffer.for_env(envs, n_steps=5, device="cpu")
    assert rollout.observations.shape == (5, 3, 3) and rollout.observations.dtype == torch.float32
    assert rollout.actions.shape == (5, 3, 1) and rollout.actions.dtype == torch.float32
    for name in ("log_probs", "rewards", "values", "bootstrap_values"):
        assert getattr(rollout, name).shape == (5, 3), name
    assert rollout.terminated.dtype == torch.bool and rollout.truncated.shape == (5, 3)
    discrete = RolloutBuffer.for_env(gym.make_vec("CartPole-v1", num_envs=2), 4, device="cpu")
    assert discrete.actions.shape == (4, 2) and discrete.actions.dtype == torch.int64
    assert "0/4 steps × 2 envs" in repr(discrete)


def test_add_stores_step_by_step_until_full_then_reset():
    rollout = make_rollout()
    assert len(rollout) == 0 and not rollout.full
    for t in range(3):
        rollout.add(**step(reward=t, value=10 * t))
    assert rollout.full and len(rollout) == 6
    np.testing.assert_array_equal(rollout.rewards.numpy(), [[0, 0], [1, 1], [2, 2]])
    np.testing.assert_array_equal(rollout.values.numpy(), [[0, 0], [10, 10], [20, 20]])
    assert not rollout.bootstrap_values.any()  # None: no truncation
    with pytest.raises(ValueError, match="full"):
        rollout.add(**step())
    rollout.reset()
    assert rollout.step == 0 and rollout.advantages is None
    rollout.add(**step(reward=7))
    assert rollout.rewards[0].tolist() == [7, 7]


@pytest.mark.parametrize("field, value, error, words", [
    ("observations", np.zeros((2, 3)), ValueError, "expected shape (2, 2)"),
    ("observations", np.zeros(2), ValueError, "expected shape (2, 2)"),
    ("actions", np.zeros(3, dtype=np.int64), ValueError, "expected shape (2,)"),
    ("actions", np.array([0.5, 1.0]), TypeError, "discrete action must be an integer"),
    ("rewards", np.array(["a", "b"]), TypeError, "convert it to a number"),
    ("values", torch.zeros(2, 1), ValueError, "expected shape (2,)"),
    ("terminated", np.array([0, 1]), TypeError, "torch.bool"),
    ("truncated", np.array([True]), ValueError, "expected shape (2,)"),
    ("bootstrap_values", np.zeros(3), ValueError, "expected shape (2,)"),
])
def test_add_errors_name_the_argument_and_leave_the_rollout_unchanged(field, value, error, words):
    rollout = make_rollout()
    args = step()
    args[field] = value
    with pytest.raises(error, match=rf"^{field}: ") as info:
        rollout.add(**args)
    assert words in str(info.value)
    assert rollout.step == 0


def test_compute_and_minibatches_need_a_full_rollout():
    rollout = make_rollout()
    rollout.add(**step())
    with pytest.raises(ValueError, match="1 of 3 steps"):
        rollout.compute_advantages(torch.zeros(2))
    with pytest.raises(ValueError, match="compute_advantages first"):
        next(rollout.minibatches(2))
    rollout.add(**step())
    rollout.add(**step())
    with pytest.raises(ValueError, match=r"last_values: expected shape \(2,\)"):
        rollout.compute_advantages(torch.zeros(3))


@pytest.mark.parametrize("n_steps", [0, -1, 2.0])
def test_bad_sizes(n_steps):
    with pytest.raises(ValueError, match="n_steps must be an int >= 1"):
        RolloutBuffer(n_steps, 2, (2,), device="cpu")


# ------------------------------------------------------------------------------- GAE


def test_truncation_bootstraps_from_the_final_observation_and_termination_does_not():
    # Two environments, γ = 0.5, λ = 1, rewards 1, V = 0.1, 0.2, 0.3, V(after the rollout) = 5.
    # Env 0 is truncated at step 1 with V(final observation) = 10; env 1 terminates there.
    rollout = filled(rewards=[[1, 1], [1, 1], [1, 1]], values=[[.1, .1], [.2, .2], [.3, .3]],
                     terminated=[[0, 0], [0, 1], [0, 0]], truncated=[[0, 0], [1, 0], [0, 0]],
                     bootstrap=[[0, 0], [10, 99], [0, 0]])  # 99: not truncated, never used
    advantages, returns = rollout.compute_advantages(torch.tensor([5.0, 5.0]), gamma=0.5, lam=1.0)
    # Env 0: G_2 = 1 + 0.5·5 = 3.5; G_1 = 1 + 0.5·10 = 6 (the next episode's V(o_2) unused);
    #        G_0 = 1 + 0.5·G_1 = 4.
    # Env 1: G_2 = 3.5; G_1 = 1 (terminal); G_0 = 1 + 0.5·1 = 1.5.
    np.testing.assert_allclose(returns.numpy(), [[4.0, 1.5], [6.0, 1.0], [3.5, 3.5]], rtol=1e-6)
    np.testing.assert_allclose(advantages.numpy(), returns.numpy() - rollout.values.numpy(),
                               rtol=1e-6)
    assert rollout.advantages is advantages and rollout.returns is returns


def test_truncation_at_the_last_step_uses_the_final_observation_not_last_values():
    rollout = filled(rewards=[[1.0]], values=[[0.0]], terminated=[[0]], truncated=[[1]],
                     bootstrap=[[4.0]])
    _, returns = rollout.compute_advantages(torch.tensor([100.0]), gamma=0.5, lam=0.9)
    assert returns.item() == pytest.approx(1 + 0.5 * 4.0)


def test_a_students_advantage_fn_gets_float_masks_and_the_final_observations_value():
    received = {}

    def my_gae(rewards, values, next_values, terminated, done, gamma, lam):
        received.update(next_values=next_values.clone(), terminated=terminated.clone(),
                        done=done.clone(), gamma=gamma, lam=lam)
        return 2.0 * gae(rewards, values, next_values, terminated, done, gamma, lam)

    def example():  # env 0 truncated at step 1 (V(final observation) = 10), env 1 terminated
        return filled(rewards=[[1, 1], [1, 1], [1, 1]], values=[[.1, .1], [.2, .2], [.3, .3]],
                      terminated=[[0, 0], [0, 1], [0, 0]], truncated=[[0, 0], [1, 0], [0, 0]],
                      bootstrap=[[0, 0], [10, 99], [0, 0]])

    reference = example()
    expected, _ = reference.compute_advantages(torch.tensor([5.0, 5.0]), gamma=0.5, lam=0.8)
    rollout = example()
    advantages, returns = rollout.compute_advantages(torch.tensor([5.0, 5.0]), gamma=0.5,
                                                     lam=0.8, advantage_fn=my_gae)
    assert received["terminated"].dtype == received["done"].dtype == torch.float32
    np.testing.assert_array_equal(received["terminated"].numpy(), [[0, 0], [0, 1], [0, 0]])
    np.testing.assert_array_equal(received["done"].numpy(), [[0, 0], [1, 1], [0, 0]])
    np.testing.assert_allclose(received["next_values"][:, 0].numpy(), [0.2, 10.0, 5.0])
    assert (received["gamma"], received["lam"]) == (0.5, 0.8)
    torch.testing.assert_close(advantages, 2.0 * expected)
    torch.testing.assert_close(returns, advantages + rollout.values)
    assert rollout.advantages is advantages


def test_an_advantage_fn_of_the_wrong_shape_is_refused_by_name():
    rollout = make_rollout()
    for _ in range(3):
        rollout.add(**step())
    with pytest.raises(ValueError, match=r"advantage_fn must return a tensor of shape \(3, 2\)"):
        rollout.compute_advantages(torch.zeros(2), advantage_fn=lambda r, *rest: r.flatten())
    with pytest.raises(ValueError, match="advantage_fn must return a tensor"):
        rollout.compute_advantages(torch.zeros(2), advantage_fn=lambda r, *rest: r.numpy())
    assert rollout.advantages is None


def test_gae_equals_per_episode_gae_through_episode_boundaries():
    # Random rewards and values; episodes end (terminated or truncated) at random steps. The
    # advantages of each episode segment must equal GAE on that segment alone: nothing leaks
    # across a boundary, in either direction.
    generator = np.random.default_rng(0)
    n_steps, n_envs, gamma, lam = 12, 3, 0.9, 0.8
    rewards = generator.normal(size=(n_steps, n_envs))
    values = generator.normal(size=(n_steps, n_envs))
    ends = generator.random((n_steps, n_envs)) < 0.3
    terminated = ends & (generator.random((n_steps, n_envs)) < 0.5)
    truncated = ends & ~terminated
    bootstrap = np.where(truncated, generator.normal(size=(n_steps, n_envs)), 0.0)
    last_values = generator.normal(size=n_envs)
    rollout = filled(rewards, values, terminated, truncated, bootstrap)
    advantages, _ = rollout.compute_advantages(torch.tensor(last_values, dtype=torch.float32),
                                               gamma, lam)
    f32 = lambda x: torch.tensor(np.asarray(x, dtype=np.float32))  # noqa: E731
    n_segments = 0
    for env in range(n_envs):
        start = 0
        for t in range(n_steps):
            if not (ends[t, env] or t == n_steps - 1):
                continue
            segment = slice(start, t + 1)
            next_values = np.append(values[start + 1:t + 1, env],
                                    bootstrap[t, env] if truncated[t, env] else
                                    (last_values[env] if t == n_steps - 1 else 0.0))
            done = np.zeros(t + 1 - start)
            expected = gae(f32(rewards[segment, env]), f32(values[segment, env]), f32(next_values),
                           f32(terminated[segment, env]), f32(done), gamma, lam)
            np.testing.assert_allclose(advantages[segment, env].numpy(), expected.numpy(),
                                       rtol=1e-5, atol=1e-6)
            start, n_segments = t + 1, n_segments + 1
    assert n_segments > n_envs  # the rollout did contain episode boundaries


# ------------------------------------------------------------------------------- minibatches


def full_rollout(seed=0):
    rollout = make_rollout(n_steps=5, n_envs=2, seed=seed)
    for t in range(5):
        args = step(reward=t)
        args["log_probs"] = torch.tensor([10.0 * t, 10.0 * t + 1])  # identifies (t, env)
        args["actions"] = torch.tensor([2 * t, 2 * t + 1])
        rollout.add(**args)
    rollout.compute_advantages(torch.zeros(2))
    return rollout


def test_minibatches_cover_every_sample_once_and_keep_fields_together():
    rollout = full_rollout()
    batches = list(rollout.minibatches(4))
    assert [len(b) for b in batches] == [4, 4, 2]
    ids = torch.cat([b.log_probs for b in batches])
    assert sorted(ids.tolist()) == sorted(rollout.log_probs.flatten().tolist())
    for batch in batches:  # each sample's fields come from the same (t, env)
        t, env = batch.log_probs // 10, batch.log_probs % 10
        assert torch.equal(batch.actions, (2 * t + env).long())
        assert torch.equal(batch.returns, rollout.returns[t.long(), env.long()])
        assert batch.observations.shape == (len(batch), 2)


def test_minibatches_are_reproducible_with_a_seed_and_differ_across_seeds():
    order = lambda seed: torch.cat([b.log_probs for b in full_rollout(seed).minibatches(3)])  # noqa: E731
    assert torch.equal(order(1), order(1))
    assert not torch.equal(order(1), order(2))
