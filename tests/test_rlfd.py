"""Unit tests of RL from demonstrations: the demonstrations' replay buffer, MixedReplay (a fixed
ratio of demonstrations in every batch, inside train_off_policy), Monte Carlo returns and the
BC / Monte Carlo pre-training of DDPG, TD3 and SAC."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import course_utils.envs  # noqa: F401  (registers PushT)
from course_utils.agents.bc import (demo_replay_buffer, discounted_returns, pretrain_actor,
                                    pretrain_critic)
from course_utils.agents.legacy_ddpg import DDPGAgent, TD3Agent
from course_utils.agents.legacy_sac import SACAgent
from course_utils.buffers import MixedReplay, ReplayBuffer
from course_utils.envs.pusht import coverage_reward
from course_utils.envs.pusht_demos import PushTDemos, load_demos
from course_utils.loops import train_off_policy


def small_demos():
    """Two episodes of 3 and 2 steps; the first reaches the goal (terminated), the second not."""
    rng = np.random.default_rng(0)
    observations = rng.uniform(0, 512, (5, 5)).astype(np.float32)
    return PushTDemos(observations=observations, actions=rng.uniform(0, 512, (5, 2)),
                      coverage=np.array([0.1, 0.5, 0.97, 0.2, 0.3], np.float32),
                      episode_ends=np.array([3, 5]), final_observations=np.full((2, 5), 7.0, np.float32),
                      seeds=np.array([0, 1]), sources=np.array(["expert", "expert"]))


def buffer_of(value, n=10, capacity=100):
    buffer = ReplayBuffer(capacity, (5,), (2,), action_dtype=torch.float32, device="cpu", seed=0)
    buffer.extend(np.full((n, 5), value), np.full((n, 2), value), np.full(n, value), np.full((n, 5), value),
                  np.zeros(n, bool), np.zeros(n, bool))
    return buffer


# ------------------------------------------------------------------ demonstrations in replay

def test_demo_buffer_holds_the_transitions_in_the_stored_order():
    demos = small_demos()
    buffer = demo_replay_buffer(demos, device="cpu")
    assert len(buffer) == 5 and buffer.capacity == 5
    batch = buffer.at(torch.arange(5))
    assert torch.allclose(batch.observations, torch.as_tensor(demos.observations))
    assert torch.allclose(batch.actions, torch.as_tensor(demos.actions, dtype=torch.float32))
    rewards = torch.as_tensor(coverage_reward(demos.coverage), dtype=torch.float32)
    assert torch.allclose(batch.rewards, rewards)
    # s' is the next step's state within an episode, the final observation at its end.
    expected_next = np.stack([demos.observations[1], demos.observations[2], demos.final_observations[0],
                              demos.observations[4], demos.final_observations[1]])
    assert torch.allclose(batch.next_observations, torch.as_tensor(expected_next))
    assert batch.terminated.tolist() == [False, False, True, False, False]
    assert batch.truncated.tolist() == [False, False, False, False, True]


def test_demo_buffer_applies_the_observation_transform_to_both_states():
    buffer = demo_replay_buffer(small_demos(), device="cpu", observation_transform=lambda o: o[:, :2] / 512)
    batch = buffer.at(torch.arange(5))
    assert batch.observations.shape == (5, 2) and batch.next_observations.shape == (5, 2)
    assert torch.allclose(batch.next_observations[2], torch.full((2,), 7.0 / 512))


def test_the_shipped_demos_give_one_terminated_transition_per_episode():
    demos = load_demos()
    batch = demo_replay_buffer(demos, device="cpu").at(torch.arange(len(demos.observations)))
    assert int(batch.terminated.sum()) == demos.num_episodes and not batch.truncated.any()
    assert torch.all(batch.rewards[batch.terminated] == 1.0)


# --------------------------------------------------------------------------------- mixing

def test_mixed_batches_take_the_ratio_from_the_demonstrations_first():
    mixed = MixedReplay(buffer_of(1.0), buffer_of(-1.0), demo_ratio=0.25)
    batch = mixed.sample(64)
    assert len(batch) == 64
    assert torch.all(batch.rewards[:16] == -1.0) and torch.all(batch.rewards[16:] == 1.0)
    for ratio, n_demo in ((0.0, 0), (1.0, 64), (0.5, 32)):
        mixed.demo_ratio = ratio
        assert int((mixed.sample(64).rewards == -1.0).sum()) == n_demo


def test_mixed_replay_adds_to_the_agents_buffer_only_and_samples_demos_while_it_is_empty():
    own, demos = buffer_of(1.0, n=0), buffer_of(-1.0)
    mixed = MixedReplay(own, demos, demo_ratio=0.25)
    assert len(mixed) == 0 and torch.all(mixed.sample(8).rewards == -1.0)
    mixed.add(np.zeros(5), np.zeros(2), 2.0, np.zeros(5), False, False)
    assert len(own) == 1 and len(demos) == 10 and len(mixed) == 1


def test_mixed_replay_refuses_mismatched_buffers_and_bad_ratios():
    with pytest.raises(ValueError, match="demo_ratio"):
        MixedReplay(buffer_of(1.0), buffer_of(-1.0), demo_ratio=1.5)
    other = ReplayBuffer(10, (3,), (2,), action_dtype=torch.float32, device="cpu")
    other.extend(np.zeros((2, 3)), np.zeros((2, 2)), np.zeros(2), np.zeros((2, 3)), np.zeros(2, bool),
                 np.zeros(2, bool))
    with pytest.raises(ValueError, match="demo_buffer stores observations as \\(3,\\)"):
        MixedReplay(buffer_of(1.0), other)
    with pytest.raises(ValueError, match="demo_buffer is empty"):
        MixedReplay(buffer_of(1.0), buffer_of(-1.0, n=0))


def test_mixed_replay_state_dict_round_trip():
    mixed = MixedReplay(buffer_of(1.0), buffer_of(-1.0), demo_ratio=0.25)
    copy = MixedReplay(buffer_of(0.0, n=3), buffer_of(0.0, n=2), demo_ratio=0.5)
    copy.load_state_dict(mixed.state_dict())
    assert copy.demo_ratio == 0.25 and len(copy) == 10 and len(copy.demo_buffer) == 10
    assert torch.equal(copy.sample(8).rewards, mixed.sample(8).rewards)


class _PendulumLike(gym.Env):
    """A 5-dimensional observation and 2-D action, to drive train_off_policy quickly."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (5,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.observation_space.sample(), {}

    def step(self, action):
        self.t += 1
        return self.observation_space.sample(), float(-np.sum(np.square(action))), False, self.t >= 20, {}


def test_train_off_policy_learns_from_mixed_batches():
    env = _PendulumLike()
    agent = TD3Agent(env.observation_space, env.action_space, size=16, device="cpu", seed=0)
    seen = []
    update = agent.update
    agent.update = lambda batch: seen.append(batch.rewards.clone()) or update(batch)
    own = ReplayBuffer.for_env(env, 1_000, device="cpu", seed=0)
    mixed = MixedReplay(own, buffer_of(-7.0), demo_ratio=0.25)
    train_off_policy(env, agent, mixed, 120, seed=0, learning_starts=100, batch_size=8, progress=False)
    assert len(own) == 120 and len(seen) == 20
    assert all(torch.all(r[:2] == -7.0) and not torch.any(r[2:] == -7.0) for r in seen)


# -------------------------------------------------------------------------- pre-training

def test_discounted_returns_restart_at_every_episode():
    returns = discounted_returns(np.array([1.0, 0.0, 2.0, 3.0, 1.0]), np.array([3, 5]), gamma=0.5)
    assert np.allclose(returns, [1 + 0.25 * 2, 0.5 * 2, 2.0, 3 + 0.5 * 1, 1.0])


PUSHT = gym.make("course_utils/PushT-v0")


def _scaled(observations):
    return np.asarray(observations, np.float32) / 512


@pytest.mark.parametrize("agent_type", [DDPGAgent, TD3Agent, SACAgent])
def test_actor_pretraining_moves_the_actor_towards_the_demonstrated_actions(agent_type):
    demos = load_demos()
    agent = agent_type(PUSHT.observation_space, PUSHT.action_space, size=64, device="cpu", seed=0)
    buffer = demo_replay_buffer(demos, device="cpu", seed=0, observation_transform=_scaled)
    losses = pretrain_actor(agent, buffer, steps=300, progress=False)
    assert losses[-1] < 0.5 * losses[0]
    observations = torch.as_tensor(_scaled(demos.observations[:500]))
    greedy = torch.as_tensor(np.stack([agent.policy.greedy_action(o) for o in observations.numpy()]))
    error = (greedy - torch.as_tensor(demos.actions[:500], dtype=torch.float32)).abs().mean()
    assert error < 100  # px; an untrained actor sits near the centre, ~130 px from them
    if hasattr(agent, "actor_target"):
        targets = agent.actor_target.parameters()
        assert all(torch.equal(p, q) for p, q in zip(agent.actor.parameters(), targets))


@pytest.mark.parametrize("agent_type", [TD3Agent, SACAgent])
def test_critic_pretraining_regresses_on_the_monte_carlo_returns(agent_type):
    demos = load_demos()
    agent = agent_type(PUSHT.observation_space, PUSHT.action_space, size=64, gamma=0.9, device="cpu", seed=0)
    losses = pretrain_critic(agent, demos, steps=600, observation_transform=_scaled, progress=False)
    assert losses[-1] < 0.3 * losses[0]
    # The last step of a successful episode has return 1 (reward 1, no future); its first steps
    # much less, since the block starts far from the goal.
    first, last = demos.episode_starts[:50], demos.episode_ends[:50] - 1
    obs = torch.as_tensor(_scaled(demos.observations))
    actions = agent.scaler.to_unit(torch.as_tensor(demos.actions, dtype=torch.float32))
    with torch.no_grad():
        q = agent.critics[0](obs, actions)
    assert q[last].mean() > q[first].mean() + 0.3
    targets = agent.critics_target.parameters()
    assert all(torch.equal(p, q) for p, q in zip(agent.critics.parameters(), targets))


def test_pretraining_refuses_an_agent_without_an_actor():
    with pytest.raises(TypeError, match="DDPGAgent, TD3Agent or SACAgent"):
        pretrain_actor(object(), buffer_of(1.0))
