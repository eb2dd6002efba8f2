"""Unit tests of course_utils.agents.reinforce: networks, reward-to-go, the update, train()."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from course_utils.agents.reinforce import (CategoricalPolicy, EpisodeBatch, GaussianPolicy,
                                           ReinforceAgent, ReinforceConfig,
                                           discounted_reward_to_go, reinforce_update, train)
from course_utils.tracking import Tracker

OBS = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)


def agent_for(config: ReinforceConfig, action_space: gym.Space = gym.spaces.Discrete(2)):
    torch.manual_seed(0)
    return ReinforceAgent(OBS, action_space, config, device="cpu")


def one_episode_batch(rewards, truncated=False, final=None, actions=None) -> EpisodeBatch:
    T = len(rewards)
    return EpisodeBatch(
        observations=torch.zeros(T, 4),
        actions=torch.as_tensor(actions if actions is not None else [0] * T),
        rewards=torch.tensor(rewards, dtype=torch.float32),
        lengths=[T],
        truncated=torch.tensor([truncated]),
        final_observations=torch.zeros(1, 4) if final is None else final,
    )


# ------------------------------------------------------------------------------- networks


def test_categorical_policy_shapes_and_sampling():
    policy = CategoricalPolicy(4, 3, ReinforceConfig(size=16))
    dist = policy.distribution(torch.zeros(5, 4))
    assert dist.probs.shape == (5, 3)
    assert policy.sample(torch.zeros(4)).shape == ()
    assert policy.greedy(torch.zeros(4)).shape == ()


def test_categorical_sampling_follows_the_softmax():
    """The Gumbel-max sample is distributed as softmax(logits)."""
    policy = CategoricalPolicy(4, 2, ReinforceConfig())
    with torch.no_grad():
        policy.net[-2].weight.zero_()
        policy.net[-2].bias.copy_(torch.tensor([0.0, np.log(3.0)]))  # π = (0.25, 0.75)
        torch.manual_seed(0)
        draws = torch.stack([policy.sample(torch.zeros(4)) for _ in range(4000)]).float()
    assert abs(draws.mean().item() - 0.75) < 0.03


def test_gaussian_policy_log_prob_is_the_diagonal_gaussian():
    policy = GaussianPolicy(3, 2, ReinforceConfig())
    obs, action = torch.randn(1, 3), torch.tensor([[0.3, -0.2]])
    mean, log_std = policy.net(obs), policy.log_std
    by_hand = -0.5 * (((action - mean) / log_std.exp()) ** 2 + 2 * log_std
                      + np.log(2 * np.pi)).sum(-1)
    assert torch.allclose(policy.distribution(obs).log_prob(action), by_hand, atol=1e-5)
    assert policy.sample(torch.zeros(3)).shape == (2,)


def test_agent_builds_a_baseline_only_when_asked():
    assert agent_for(ReinforceConfig(baseline=False)).value is None
    agent = agent_for(ReinforceConfig(baseline=True, n_layers=1, size=8))
    assert agent.value(torch.zeros(7, 4)).shape == (7, 1)
    assert agent.value_optimizer is not None


def test_agent_acts_with_the_action_space_types():
    discrete = agent_for(ReinforceConfig())
    assert discrete.act(np.zeros(4, np.float32)) in (0, 1)
    assert discrete.act(np.zeros(4, np.float32), greedy=True) in (0, 1)
    box = agent_for(ReinforceConfig(), gym.spaces.Box(-1.0, 1.0, (2,), np.float32))
    assert box.act(np.zeros(4, np.float32)).shape == (2,)


@pytest.mark.parametrize("observation_space, action_space, message", [
    (gym.spaces.Discrete(3), gym.spaces.Discrete(2), "observation_space must be"),
    (OBS, gym.spaces.MultiDiscrete([2, 2]), "action_space must be Discrete or"),
    (OBS, gym.spaces.Discrete(2, start=1), "starting at 0"),
])
def test_agent_refuses_unsupported_spaces(observation_space, action_space, message):
    with pytest.raises(ValueError, match=message):
        ReinforceAgent(observation_space, action_space, ReinforceConfig(), device="cpu")


# ------------------------------------------------------------------------------- reward-to-go


def test_discounted_reward_to_go_known_values():
    rewards = torch.tensor([1.0, 1.0, 1.0])
    assert torch.allclose(discounted_reward_to_go(rewards, 1.0), torch.tensor([3.0, 2.0, 1.0]))
    assert torch.allclose(discounted_reward_to_go(rewards, 0.5), torch.tensor([1.75, 1.5, 1.0]))
    assert torch.allclose(discounted_reward_to_go(rewards, 0.5, torch.tensor(8.0)),
                          torch.tensor([2.75, 3.5, 5.0]))
    assert torch.isfinite(discounted_reward_to_go(torch.ones(5000), 0.9)).all()


# ------------------------------------------------------------------------------- the update


def test_update_hand_computed_loss_and_step():
    """Untrained weights of the last layer zeroed: π = (½, ½), log π = −log 2 for every action,
    so the loss is log 2 × mean weight; one Adam step moves each logit bias by lr."""
    config = ReinforceConfig(reward_to_go=True, gamma=1.0, learning_rate=0.1)
    agent = agent_for(config)
    with torch.no_grad():
        agent.policy.net[-2].weight.zero_()
        agent.policy.net[-2].bias.zero_()
    metrics = reinforce_update(agent, one_episode_batch([1.0, 2.0, 3.0], actions=[0, 0, 0]), config)
    # weights Ĝ = (6, 5, 3), mean 14/3
    assert metrics["loss"].item() == pytest.approx(np.log(2) * 14 / 3, rel=1e-5)
    # every action was 0 with positive weight: action 0's logit goes up, action 1's down
    bias = agent.policy.net[-2].bias.detach()
    assert bias[0].item() == pytest.approx(0.1, rel=1e-3)
    assert bias[1].item() == pytest.approx(-0.1, rel=1e-3)


def test_update_total_return_weights():
    config = ReinforceConfig(reward_to_go=False, gamma=1.0)
    agent = agent_for(config)
    with torch.no_grad():
        agent.policy.net[-2].weight.zero_()
        agent.policy.net[-2].bias.zero_()
    metrics = reinforce_update(agent, one_episode_batch([1.0, 2.0, 3.0]), config)
    assert metrics["loss"].item() == pytest.approx(np.log(2) * 6, rel=1e-5)


def test_update_bootstraps_only_truncated_episodes_and_detaches_the_baseline():
    config = ReinforceConfig(gamma=0.5, baseline=True, value_steps=1)
    for truncated, tail in ((True, 1.0), (False, 0.0)):
        agent = agent_for(config)
        with torch.no_grad():  # V ≡ 4, π = (½, ½)
            for layer in (agent.value[-2], agent.policy.net[-2]):
                layer.weight.zero_()
                layer.bias.zero_()
            agent.value[-2].bias.fill_(4.0)
        batch = one_episode_batch([1.0, 1.0], truncated=truncated)
        metrics = reinforce_update(agent, batch, config)
        # Ĝ = (1.5, 1) + γ^(T−t) V(o_T) for a truncated episode, i.e. + (1, 2); weights Ĝ − 4
        returns = torch.tensor([1.5, 1.0]) + tail * torch.tensor([1.0, 2.0])
        expected = np.log(2) * (returns - 4.0).mean().item()
        assert metrics["loss"].item() == pytest.approx(expected, rel=1e-5)
        assert metrics["value_loss"].item() == pytest.approx(((4.0 - returns) ** 2).mean().item(),
                                                             rel=1e-5)


def test_update_returns_stay_within_episodes():
    config = ReinforceConfig(reward_to_go=True, gamma=1.0)
    agent = agent_for(config)
    with torch.no_grad():
        agent.policy.net[-2].weight.zero_()
        agent.policy.net[-2].bias.zero_()
    batch = EpisodeBatch(torch.zeros(4, 4), torch.zeros(4, dtype=torch.long),
                         torch.tensor([1.0, 1.0, 10.0, 10.0]), [2, 2], torch.tensor([False, False]),
                         torch.zeros(2, 4))
    # Ĝ = (2, 1, 20, 10): mean 33/4 (across episodes it would be (22, 21, 20, 10))
    assert reinforce_update(agent, batch, config)["loss"].item() == pytest.approx(
        np.log(2) * 33 / 4, rel=1e-5)


# ------------------------------------------------------------------------------- train


def test_train_runs_a_tiny_budget_and_logs():
    config = ReinforceConfig(total_steps=600, batch_steps=200, seed=3, log_every=200,
                             baseline=True, gamma=0.99, progress=False, size=16)
    agent, tracker = train(gym.make("CartPole-v1"), config)
    steps = tracker.last("env_steps")
    assert 600 <= steps < 600 + 200 + 500
    assert {"return", "episode_length", "loss", "value_loss"} <= set(tracker.keys)
    assert sum(tracker.history["episode_length"]) == steps
    assert agent.value is not None


def test_train_calls_the_given_update_with_whole_episodes():
    seen = []

    def spy(agent, batch, config):
        seen.append(batch)
        return {"loss": torch.tensor(0.0)}

    env = gym.make("CartPole-v1", max_episode_steps=15)
    config = ReinforceConfig(total_steps=100, batch_steps=40, progress=False)
    train(env, config, update=spy)
    assert seen
    for batch in seen:
        assert sum(batch.lengths) >= 40 and sum(batch.lengths) == len(batch.rewards)
        assert batch.observations.shape == (len(batch.rewards), 4)
        assert batch.final_observations.shape == (len(batch.lengths), 4)
        # only the time limit (15 steps) truncates; shorter episodes terminated
        for length, truncated in zip(batch.lengths, batch.truncated.tolist()):
            assert length == 15 if truncated else length <= 15
    assert any(any(batch.truncated.tolist()) for batch in seen)


def test_train_is_reproducible_and_continues_a_run():
    config = ReinforceConfig(total_steps=1_000, batch_steps=250, seed=1, progress=False)
    _, first = train(gym.make("CartPole-v1"), config)
    _, again = train(gym.make("CartPole-v1"), config)
    assert first.history["return"] == again.history["return"]
    agent, tracker = train(gym.make("CartPole-v1"), config)
    longer = ReinforceConfig(total_steps=2_000, batch_steps=250, seed=1, progress=False)
    train(gym.make("CartPole-v1"), longer, agent=agent, tracker=tracker)
    assert tracker.last("env_steps") >= 2_000


def test_train_evaluates_and_stops_when_solved():
    config = ReinforceConfig(total_steps=5_000, batch_steps=200, eval_every=400, eval_episodes=2,
                             solved_at=0.0, progress=False)
    _, tracker = train(gym.make("CartPole-v1"), config, tracker=Tracker("t", "environment steps"))
    assert len(tracker.history["eval_return"]) == 1
    assert tracker.last("env_steps") < 1_000


def test_train_continuous_actions():
    config = ReinforceConfig(total_steps=400, batch_steps=200, progress=False, size=16)
    agent, tracker = train(gym.make("Pendulum-v1"), config)
    assert isinstance(agent.policy, GaussianPolicy)
    assert tracker.last("env_steps") >= 400


@pytest.mark.parametrize("settings, message", [
    (dict(batch_steps=0), "batch_steps must be >= 1"),
    (dict(gamma=1.5), r"gamma must be in \[0, 1\]"),
])
def test_train_refuses_bad_settings(settings, message):
    with pytest.raises(ValueError, match=message):
        train(gym.make("CartPole-v1"), ReinforceConfig(progress=False, **settings))


def test_train_learns_cartpole():
    """The full algorithm (reward-to-go, γ = 0.99, baseline) improves quickly on CartPole."""
    config = ReinforceConfig(total_steps=25_000, gamma=0.99, baseline=True, seed=0,
                             progress=False)
    _, tracker = train(gym.make("CartPole-v1"), config)
    returns = tracker.history["return"]
    assert np.mean(returns[-10:]) > 3 * np.mean(returns[:10])
