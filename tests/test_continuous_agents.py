"""Unit tests of the continuous-control agents: shared blocks, DDPG/TD3 and SAC."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.distributions import Normal, TransformedDistribution
from torch.distributions.transforms import TanhTransform

from course_utils.agents.continuous import (ActionScaler, GaussianNoise, OrnsteinUhlenbeckNoise,
                                            check_box_action_space)
from course_utils.agents.legacy_ddpg import (DDPGAgent, TD3Agent, ddpg_actor_loss, ddpg_critic_target,
                                      td3_critic_target, td3_target, td3_target_actions)
from course_utils.agents.legacy_sac import (SACAgent, sac_critic_target, tanh_log_prob_correction,
                                     temperature_loss)
from course_utils.buffers import ReplayBuffer
from course_utils.loops import train_off_policy

CPU = torch.device("cpu")
BOX = gym.spaces.Box(low=np.array([-2.0, 0.0], dtype=np.float32),
                     high=np.array([2.0, 10.0], dtype=np.float32))
OBS = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)


def filled_buffer(n=64, seed=0):
    rng = np.random.default_rng(seed)
    buffer = ReplayBuffer(256, (3,), (2,), action_dtype=torch.float32, device="cpu", seed=seed)
    low, high = BOX.low, BOX.high
    buffer.extend(rng.uniform(-1, 1, (n, 3)), rng.uniform(low, high, (n, 2)), rng.normal(size=n),
                  rng.uniform(-1, 1, (n, 3)), rng.random(n) < 0.1, np.zeros(n, bool))
    return buffer


# ------------------------------------------------------------------------- shared blocks

@pytest.mark.parametrize("space", [gym.spaces.Discrete(3),
                                   gym.spaces.Box(-np.inf, np.inf, (2,)),
                                   gym.spaces.Box(-1, 1, (2, 2))])
def test_agents_refuse_spaces_they_cannot_act_in(space):
    with pytest.raises(ValueError, match="action_space: SAC needs a bounded one-dimensional Box"):
        check_box_action_space(space, "SAC")
    with pytest.raises(ValueError, match="action_space"):
        DDPGAgent(OBS, space, device=CPU)


def test_action_scaler_maps_the_unit_box_onto_the_bounds_and_back():
    scaler = ActionScaler(BOX, CPU)
    unit = torch.tensor([[-1.0, -1.0], [0.0, 0.0], [1.0, 1.0]])
    env = scaler.to_env(unit)
    assert torch.allclose(env, torch.tensor([[-2.0, 0.0], [0.0, 5.0], [2.0, 10.0]]))
    assert torch.allclose(scaler.to_unit(env), unit)


def test_gaussian_noise_has_the_requested_spread_and_is_seeded():
    zeros = torch.zeros(20_000, 2)
    noise = GaussianNoise(0.3, torch.Generator().manual_seed(1))(zeros)
    assert abs(noise.std().item() - 0.3) < 0.01 and abs(noise.mean().item()) < 0.01
    again = GaussianNoise(0.3, torch.Generator().manual_seed(1))(zeros)
    assert torch.equal(noise, again)


def test_ornstein_uhlenbeck_noise_is_correlated_and_resets():
    noise = OrnsteinUhlenbeckNoise(sigma=0.5, theta=0.15, dt=0.01,
                                   generator=torch.Generator().manual_seed(0))
    samples = torch.stack([noise(torch.zeros(1)) for _ in range(2000)]).squeeze(1).numpy()
    lag_one = np.corrcoef(samples[:-1], samples[1:])[0, 1]
    assert lag_one > 0.9  # independent noise would give about 0
    noise.reset()
    assert noise.state is None
    first = noise(torch.zeros(1))
    assert abs(first.item()) < 0.5 * math.sqrt(0.01) * 5  # restarts from 0: one small step


# -------------------------------------------------------------------- targets and losses

def test_ddpg_and_td3_targets_mask_terminal_transitions():
    rewards = torch.tensor([1.0, 2.0])
    terminated = torch.tensor([0.0, 1.0])
    assert torch.allclose(ddpg_critic_target(rewards, torch.tensor([10.0, 10.0]), terminated, 0.9),
                          torch.tensor([10.0, 2.0]))
    assert torch.allclose(td3_critic_target(rewards, torch.tensor([10.0, 5.0]),
                                            torch.tensor([4.0, 50.0]), terminated, 0.5),
                          torch.tensor([3.0, 2.0]))  # min(10, 4) = 4: 1 + 0.5·4
    assert ddpg_actor_loss(torch.tensor([1.0, 3.0])).item() == -2.0


def test_td3_target_actions_clip_noise_and_actions():
    actions = torch.tensor([[0.95, -0.2, 0.0]]).repeat(5000, 1)
    smoothed = td3_target_actions(actions, noise_std=0.2, noise_clip=0.5,
                                  generator=torch.Generator().manual_seed(0))
    assert smoothed.min() >= -1.0 and smoothed.max() <= 1.0
    difference = smoothed[:, 1:] - actions[:, 1:]
    assert difference.abs().max() <= 0.5 + 1e-6 and difference.abs().max() > 0.45
    assert abs(difference.std().item() - 0.2) < 0.02
    assert torch.equal(td3_target_actions(actions, 0.0, 0.5), actions)


def test_tanh_log_prob_correction_is_the_log_jacobian_and_stays_finite():
    u = torch.tensor([[0.0, 1.0], [-2.0, 3.0]])
    naive = torch.log(1 - torch.tanh(u) ** 2).sum(-1)
    assert torch.allclose(tanh_log_prob_correction(u), naive, atol=1e-5)
    big = tanh_log_prob_correction(torch.tensor([[20.0, -30.0]]))
    assert torch.isfinite(big).all()
    assert torch.allclose(big, torch.tensor([2 * (math.log(2) - 20) + 2 * (math.log(2) - 30)]))


def test_squashed_gaussian_log_prob_matches_torch_distributions():
    agent = SACAgent(OBS, BOX, size=16, device=CPU, seed=0)
    observations = torch.rand(6, 3)
    torch.manual_seed(3)
    actions, log_probs = agent.actor.sample(observations)
    mean, log_std = agent.actor._mean_log_std(observations)
    reference = TransformedDistribution(Normal(mean, log_std.exp()), [TanhTransform()])
    expected = reference.log_prob(actions.clamp(-0.999999, 0.999999)).sum(-1)
    assert torch.allclose(log_probs, expected, atol=1e-3)
    assert actions.abs().max() < 1


def test_sac_target_and_temperature_loss():
    target = sac_critic_target(torch.tensor([1.0, 1.0]), torch.tensor([3.0, 3.0]),
                               torch.tensor([2.0, 5.0]), torch.tensor([-1.0, -1.0]),
                               torch.tensor([0.0, 1.0]), 0.5, 0.9)
    assert torch.allclose(target, torch.tensor([1 + 0.9 * (2.0 + 0.5), 1.0]))
    log_alpha = torch.zeros((), requires_grad=True)
    loss = temperature_loss(log_alpha, torch.tensor([0.5, 0.5]), target_entropy=-2.0)
    loss.backward()
    # Entropy −log π = −0.5 is above the target −2: α should fall, so the gradient is positive.
    assert loss.item() == pytest.approx(0.0) and log_alpha.grad.item() == pytest.approx(1.5)
    log_alpha.grad = None
    temperature_loss(log_alpha, torch.tensor([3.0]), target_entropy=-2.0).backward()
    assert log_alpha.grad.item() == pytest.approx(-1.0)  # entropy −3 < −2: α rises


# ---------------------------------------------------------------------------- the agents

@pytest.mark.parametrize("make", [lambda: DDPGAgent(OBS, BOX, size=16, device=CPU, seed=0),
                                  lambda: TD3Agent(OBS, BOX, size=16, device=CPU, seed=0),
                                  lambda: SACAgent(OBS, BOX, size=16, device=CPU, seed=0)])
def test_actions_lie_within_the_bounds(make):
    agent = make()
    for observation in np.random.default_rng(0).uniform(-1, 1, (50, 3)).astype(np.float32):
        for action in (agent.act(observation, 0), agent.policy.greedy_action(observation)):
            assert action.shape == (2,) and BOX.contains(action.astype(np.float32))


def test_td3_updates_the_actor_and_the_targets_every_second_step():
    agent = TD3Agent(OBS, BOX, size=16, device=CPU, seed=0)
    batch = filled_buffer().sample(32)
    actor = [p.clone() for p in agent.actor.parameters()]
    target = [p.clone() for p in agent.critics_target.parameters()]
    agent.update(batch)
    assert all(torch.equal(a, p) for a, p in zip(actor, agent.actor.parameters()))
    assert all(torch.equal(a, p) for a, p in zip(target, agent.critics_target.parameters()))
    agent.update(batch)
    assert not all(torch.equal(a, p) for a, p in zip(actor, agent.actor.parameters()))
    assert not all(torch.equal(a, p) for a, p in zip(target, agent.critics_target.parameters()))
    assert len(agent.critics) == 2


def test_a_students_critic_target_trains_the_agent():
    calls = []

    def my_target(rewards, next_q, terminated, gamma):
        calls.append(next_q.shape)
        return ddpg_critic_target(rewards, next_q, terminated, gamma)

    agent = DDPGAgent(OBS, BOX, size=16, critic_target=my_target, device=CPU, seed=0)
    agent.update(filled_buffer().sample(32))
    assert calls == [torch.Size([32])]


def test_a_students_whole_td3_target_trains_the_agent_like_the_separate_pieces():
    """``td3_target`` (one function: smoothing and clipped double Q) gives the same update as
    ``target_smoothing`` followed by ``critic_target``."""
    calls = []

    def my_td3_target(*args):
        calls.append(len(args))
        return td3_target(*args)

    batch = filled_buffer().sample(32)
    pieces = TD3Agent(OBS, BOX, size=16, device=CPU, seed=0)
    whole = TD3Agent(OBS, BOX, size=16, td3_target=my_td3_target, device=CPU, seed=0)
    for _ in range(2):
        pieces.update(batch)
        whole.update(batch)
    assert calls == [10, 10]
    for a, b in zip(pieces.critics.parameters(), whole.critics.parameters()):
        assert torch.allclose(a, b)


def test_td3_target_needs_twin_critics():
    with pytest.raises(ValueError, match="td3_target needs twin_critics=True"):
        DDPGAgent(OBS, BOX, size=16, td3_target=td3_target, device=CPU)


@pytest.mark.parametrize("make", [lambda: DDPGAgent(OBS, BOX, size=32, device=CPU, seed=0),
                                  lambda: SACAgent(OBS, BOX, size=32, device=CPU, seed=0,
                                                   learning_rate=3e-3, learn_alpha=False,
                                                   initial_alpha=1e-3)])
def test_the_critic_fits_a_fixed_batch(make):
    agent = make()
    batch = filled_buffer().sample(64)
    losses = [agent.update(batch)["critic_loss"].item() for _ in range(150)]
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])


def test_sac_learns_its_temperature_towards_the_target_entropy():
    agent = SACAgent(OBS, BOX, size=16, device=CPU, seed=0, learning_rate=1e-2,
                     target_entropy=-10.0)  # far below the initial entropy: α must fall
    batch = filled_buffer().sample(64)
    alphas = [agent.update(batch)["alpha"].item() for _ in range(30)]
    assert alphas[0] == 1.0 and alphas[-1] < 0.9


@pytest.mark.parametrize("make", [lambda: TD3Agent(OBS, BOX, size=16, device=CPU, seed=0),
                                  lambda: SACAgent(OBS, BOX, size=16, device=CPU, seed=0)])
def test_state_dict_round_trip(make):
    agent, copy = make(), make()
    batch = filled_buffer().sample(32)
    for _ in range(3):
        agent.update(batch)
    copy.load_state_dict(agent.state_dict())
    observation = np.zeros(3, np.float32)
    assert np.array_equal(agent.policy.greedy_action(observation),
                          copy.policy.greedy_action(observation))
    assert copy.updates == 3


def test_end_episode_resets_ornstein_uhlenbeck_noise():
    noise = OrnsteinUhlenbeckNoise(0.2)
    agent = DDPGAgent(OBS, BOX, size=16, exploration=noise, device=CPU, seed=0)
    agent.act(np.zeros(3, np.float32), 0)
    assert noise.state is not None
    agent.end_episode()
    assert noise.state is None


@pytest.mark.parametrize("cls", [TD3Agent, SACAgent])
def test_short_run_on_pendulum(cls):
    env, eval_env = gym.make("Pendulum-v1"), gym.make("Pendulum-v1")
    agent = cls(env.observation_space, env.action_space, size=16, device=CPU, seed=0)
    buffer = ReplayBuffer.for_env(env, 1_000, device=CPU, seed=0)
    tracker = train_off_policy(env, agent, buffer, 300, seed=0, learning_starts=100,
                               batch_size=32, eval_env=eval_env, eval_every=300,
                               eval_episodes=1, progress=False)
    assert agent.updates == 200 and len(buffer) == 300
    assert tracker.steps("eval_return") == [300] and np.isfinite(tracker.last("critic_loss"))
