"""agents/sac.py: the squashed Gaussian actor, its log-probability, the SAC update and train."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.distributions import Normal, TransformedDistribution
from torch.distributions.transforms import TanhTransform

from course_utils.agents.sac import (SACAgent, SACConfig, SquashedGaussianActor, sac_update,
                                     sample_action, tanh_log_prob_correction, train)
from course_utils.buffers import ReplayBatch
from course_utils.device import get_device

OBS = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
ACT = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)


def batch(n=8):
    g = torch.Generator().manual_seed(0)
    done = torch.zeros(n, dtype=torch.bool)
    done[0] = True
    fields = (torch.randn(n, 3, generator=g), torch.rand(n, 2, generator=g) * 2 - 1,
              torch.randn(n, generator=g), torch.randn(n, 3, generator=g), done,
              torch.zeros(n, dtype=torch.bool))
    return ReplayBatch(*(f.to(get_device()) for f in fields))


def test_tanh_correction_by_hand_and_finite():
    u = torch.tensor([[0.0, 1.0], [30.0, -30.0]])
    expected0 = math.log(1.0) + math.log(1 - math.tanh(1.0) ** 2)
    result = tanh_log_prob_correction(u)
    assert abs(result[0].item() - expected0) < 1e-5
    assert abs(result[1].item() - 2 * 2 * (math.log(2) - 30)) < 1e-3


def test_sample_matches_torch_distributions():
    actor = SquashedGaussianActor(3, 2, SACConfig(size=16))
    obs = torch.randn(4, 3, device=get_device())
    torch.manual_seed(0)
    actions, log_probs = sample_action(actor, obs)
    mean, log_std = actor(obs)
    torch.manual_seed(0)
    pre_tanh = mean + log_std.exp() * torch.randn_like(mean)
    expected = TransformedDistribution(Normal(mean, log_std.exp()), TanhTransform()).log_prob(
        torch.tanh(pre_tanh)).sum(-1)
    assert actions.shape == (4, 2) and actions.abs().max() < 1
    assert torch.allclose(log_probs, expected, atol=1e-3)


def test_agent_shapes_and_actions_in_bounds():
    agent = SACAgent(OBS, gym.spaces.Box(-2.0, 2.0, (1,), np.float32), SACConfig(size=16))
    assert agent.target_entropy == -1.0 and abs(agent.log_alpha.exp().item() - 1.0) < 1e-6
    action = agent.greedy_action(np.zeros(3, np.float32))
    assert action.shape == (1,) and abs(action[0]) <= 2
    assert agent.explore(np.zeros(3, np.float32)).shape == (1,)


def test_sac_update_moves_everything_and_the_temperature_follows_the_entropy():
    config = SACConfig(size=16, tau=0.5)
    agent = SACAgent(OBS, ACT, config)
    before = {k: v.clone() for k, v in agent.state_dict().items()}
    metrics = sac_update(agent, batch(), config)
    assert {"critic_loss", "actor_loss", "alpha_loss", "alpha", "entropy"} <= set(metrics)
    for key, value in agent.state_dict().items():
        assert not torch.equal(value, before[key]), key
    # entropy above the target (−2): α falls
    assert metrics["entropy"] > -2 and agent.log_alpha.item() < 0
    assert agent.updates == 1


def test_train_runs_and_logs_the_temperature():
    config = SACConfig(size=16, total_steps=300, learning_starts=100, batch_size=16,
                       eval_every=300, eval_episodes=1, log_every=100, progress=False)
    agent, tracker = train(gym.make("Pendulum-v1"), config)
    assert {"alpha", "entropy", "critic_loss", "eval_return"} <= set(tracker.keys)
    assert agent.updates == 200 and tracker.last("alpha") < 1.0


def test_train_with_a_custom_update():
    calls = []

    def update(agent, batch, config):
        calls.append(len(batch))
        return {"critic_loss": torch.zeros(())}

    config = SACConfig(size=16, total_steps=120, learning_starts=100, batch_size=4,
                       train_every=5, progress=False)
    train(gym.make("Pendulum-v1"), config, update=update)
    assert calls == [4] * 4  # steps 105, 110, 115, 120


def test_argument_errors():
    with pytest.raises(ValueError, match="action_space"):
        SACAgent(OBS, gym.spaces.Discrete(2), SACConfig())
