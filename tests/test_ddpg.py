"""agents/ddpg.py: DDPG and TD3's networks, target, updates and replay loop."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from course_utils.agents import ddpg
from course_utils.agents.ddpg import (DDPGAgent, DDPGConfig, ExplorationNoise, QCritic,
                                      ddpg_update, td3_config, td3_target, td3_update, train)
from course_utils.buffers import ReplayBatch
from course_utils.device import get_device

OBS = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
ACT = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)


class Affine(torch.nn.Module):
    """Q(s, a) = s·u + a·v, or μ(s) = tanh(s·w): hand-computable networks."""

    def __init__(self, weights, actor=False):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(weights))
        self.actor = actor

    def forward(self, observations, actions=None):
        if self.actor:
            return torch.tanh(observations @ self.w)
        return observations @ self.w[:2] + actions @ self.w[2:]


def batch(n=8, terminated=(0,), truncated=(1,)):
    g = torch.Generator().manual_seed(0)
    done = torch.zeros(n, dtype=torch.bool)
    cut = torch.zeros(n, dtype=torch.bool)
    done[list(terminated)], cut[list(truncated)] = True, True
    fields = (torch.randn(n, 3, generator=g), torch.rand(n, 1, generator=g) * 2 - 1,
              torch.randn(n, generator=g), torch.randn(n, 3, generator=g), done, cut)
    return ReplayBatch(*(f.to(get_device()) for f in fields))


def test_td3_target_by_hand():
    rewards, terminated = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 1.0])
    next_obs = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    actor = Affine([[0.0], [0.0]], actor=True)  # μ'(s') = 0
    critic1, critic2 = Affine([1.0, 2.0, 0.0]), Affine([3.0, -1.0, 0.0])
    y = td3_target(rewards, next_obs, terminated, 0.5, actor, [critic1, critic2], 0.0, 0.5)
    # row 0: min(1, 3) = 1 → 1 + 0.5·1; row 1: terminal → 2
    assert torch.allclose(y, torch.tensor([1.5, 2.0]))
    y = td3_target(rewards, next_obs, terminated, 0.5, actor, [critic2], 0.0, 0.5)  # DDPG
    assert torch.allclose(y, torch.tensor([2.5, 2.0]))


def test_td3_target_smoothing_noise_is_clipped_and_actions_stay_in_the_box():
    seen = []

    class Recorder(torch.nn.Module):
        def forward(self, observations, actions):
            seen.append(actions)
            return actions.sum(-1)

    actor = Affine([[0.0], [0.0], [0.0]], actor=True)
    next_obs = torch.zeros(1000, 3)
    td3_target(torch.zeros(1000), next_obs, torch.zeros(1000), 0.9, actor, [Recorder()], 10.0,
               0.3, torch.Generator().manual_seed(0))
    assert seen[0].abs().max() <= 0.3 + 1e-6 and (seen[0].abs() > 0.29).float().mean() > 0.9


def test_networks_have_the_expected_shapes_and_bounds():
    agent = DDPGAgent(OBS, ACT, td3_config(size=16))
    obs = torch.randn(5, 3, device=get_device())
    assert agent.actor(obs).shape == (5, 1) and agent.actor(obs).abs().max() <= 1
    assert len(agent.critics) == 2 and agent.critics[0](obs, agent.actor(obs)).shape == (5,)
    assert isinstance(agent.critics[0], QCritic)
    assert len(DDPGAgent(OBS, ACT, DDPGConfig(size=16)).critics) == 1
    action = agent.greedy_action(np.zeros(3, np.float32))
    assert action.shape == (1,) and -2 <= action[0] <= 2
    assert agent.explore(np.zeros(3, np.float32)).shape == (1,)


def test_exploration_noise_gaussian_and_ou():
    gauss = ExplorationNoise(2, 0.1, generator=torch.Generator().manual_seed(0))
    samples = torch.stack([gauss() for _ in range(4000)])
    assert abs(samples.std().item() - 0.1) < 0.01
    ou = ExplorationNoise(1, 0.2, theta=0.15, generator=torch.Generator().manual_seed(0))
    path = torch.stack([ou() for _ in range(2000)]).squeeze(-1).numpy()
    assert np.corrcoef(path[:-1], path[1:])[0, 1] > 0.9
    ou.reset()
    assert torch.equal(ou.state, torch.zeros(1))


def test_ddpg_update_moves_actor_critic_and_targets():
    config = DDPGConfig(size=16, tau=0.5)
    agent = DDPGAgent(OBS, ACT, config)
    before = {k: v.clone() for k, v in agent.state_dict().items()}
    metrics = ddpg_update(agent, batch(), config)
    assert set(metrics) == {"critic_loss", "actor_loss", "q"}
    for key, value in agent.state_dict().items():
        assert not torch.equal(value, before[key]), key


def test_td3_update_delays_the_actor_and_the_targets():
    config = td3_config(size=16)
    agent = DDPGAgent(OBS, ACT, config)
    actor = [p.clone() for p in agent.actor.parameters()]
    target = [p.clone() for p in agent.critics_target.parameters()]
    assert "actor_loss" not in td3_update(agent, batch(), config)
    assert all(torch.equal(a, b) for a, b in zip(actor, agent.actor.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(target, agent.critics_target.parameters()))
    assert "actor_loss" in td3_update(agent, batch(), config)
    assert not all(torch.equal(a, b) for a, b in zip(actor, agent.actor.parameters()))
    assert agent.updates == 2


def test_update_bootstraps_truncated_transitions():
    """A truncated-only batch and a batch without any flag give the same update."""
    config = DDPGConfig(size=16)
    a, b = DDPGAgent(OBS, ACT, config), DDPGAgent(OBS, ACT, config)
    m1 = ddpg_update(a, batch(terminated=[], truncated=range(8)), config)
    m2 = ddpg_update(b, batch(terminated=[], truncated=[]), config)
    assert torch.allclose(m1["critic_loss"], m2["critic_loss"])


def test_train_logs_evaluates_and_continues():
    env = gym.make("Pendulum-v1")
    config = DDPGConfig(size=16, total_steps=300, learning_starts=100, batch_size=16,
                        eval_every=150, eval_episodes=1, log_every=100, progress=False)
    agent, tracker = train(env, config)
    assert tracker.last("env_steps") == 300 and len(tracker.history["eval_return"]) == 2
    assert {"critic_loss", "actor_loss", "q", "return"} <= set(tracker.keys)
    assert len(agent.buffer) == 300
    config.total_steps = 400
    agent, tracker = train(env, config, agent=agent, tracker=tracker)
    assert tracker.last("env_steps") == 400 and len(agent.buffer) == 400


def test_train_stores_the_final_observation_and_terminated_only():
    env = gym.make("Pendulum-v1", max_episode_steps=50)
    config = DDPGConfig(size=16, total_steps=50, learning_starts=50, progress=False)
    agent, _ = train(env, config)
    stored = agent.buffer.at(torch.arange(50))
    assert not stored.terminated.any() and stored.truncated.tolist() == [False] * 49 + [True]
    # the truncated transition's next observation is its true successor, not a reset state:
    # Pendulum's next (cos θ, sin θ) follows from θ and θ̇ after one step of 0.05 s.
    cos, sin, speed = stored.next_observations[-1].tolist()
    assert abs(cos ** 2 + sin ** 2 - 1) < 1e-5
    assert not torch.equal(stored.next_observations[-1], stored.observations[-1])
    assert torch.allclose(stored.next_observations[:-1, :2], stored.observations[1:, :2])


def test_train_td3_with_its_update():
    env = gym.make("Pendulum-v1")
    config = td3_config(size=16, total_steps=200, learning_starts=100, batch_size=16,
                        log_every=50, progress=False)
    agent, tracker = train(env, config, update=td3_update)
    assert agent.updates == 100 and "actor_loss" in tracker.keys


def test_argument_errors():
    with pytest.raises(ValueError, match="action_space"):
        DDPGAgent(OBS, gym.spaces.Discrete(3), DDPGConfig())
    with pytest.raises(ValueError, match="batch_size"):
        train(gym.make("Pendulum-v1"), DDPGConfig(batch_size=0, progress=False))
    with pytest.raises(ValueError, match="action_space"):
        train(gym.make("CartPole-v1"), DDPGConfig(progress=False))


def test_ddpg_learns_pendulum_a_little():
    """600 steps: the critic's loss is finite and the actor has moved away from its start."""
    config = DDPGConfig(total_steps=600, learning_starts=200, progress=False, log_every=200)
    agent, tracker = train(gym.make("Pendulum-v1"), config)
    assert np.isfinite(tracker.last("critic_loss"))
    assert ddpg.__doc__ and "td3_target" in ddpg.__doc__
