"""Unit tests of course_utils.agents.dqn: the Double DQN target, the networks, the update step,
the lockstep evaluation and the training loop."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from course_utils.agents.dqn import (DQNConfig, QNetworks, double_dqn_target, dqn_update,
                                     evaluate, make_state, train)
from course_utils.buffers import ReplayBatch

gym.register(id="test/ShortCartPole-v0", entry_point="gymnasium.envs.classic_control:CartPoleEnv",
             max_episode_steps=8)


class ShiftedCartPole(gym.Wrapper):
    """CartPole whose actions are Discrete(2, start=5): 5 pushes left, 6 right."""

    def __init__(self) -> None:
        super().__init__(gym.make("CartPole-v1").unwrapped)
        self.action_space = gym.spaces.Discrete(2, start=5)

    def step(self, action):
        assert action in (5, 6), action
        return self.env.step(action - 5)


gym.register(id="test/ShiftedActions-v0", entry_point=ShiftedCartPole, max_episode_steps=20)


def tiny_config(**changes) -> DQNConfig:
    settings = dict(total_steps=400, learning_starts=100, eval_every=0, buffer_size=1_000,
                    batch_size=16, size=16, progress=False, device="cpu", log_every=100)
    settings.update(changes)
    return DQNConfig(**settings)


def make_batch(size=6, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return ReplayBatch(observations=torch.randn(size, 4, generator=generator),
                       actions=torch.randint(2, (size,), generator=generator),
                       rewards=torch.randn(size, generator=generator),
                       next_observations=torch.randn(size, 4, generator=generator),
                       terminated=torch.tensor([False, True, False, False, True, False])[:size],
                       truncated=torch.tensor([False, False, True, False, False, False])[:size])


def params(module):
    return [p.detach().clone() for p in module.parameters()]


# ------------------------------------------------------------------------------ the target


def test_double_dqn_target_hand_computed():
    rewards = torch.tensor([1.0, 0.0, -1.0])
    online = torch.tensor([[4.0, 1.0], [0.0, 2.0], [3.0, 6.0]])  # selects 0, 1, 1
    target = torch.tensor([[1.0, 3.0], [2.0, 0.0], [5.0, 4.0]])
    terminated = torch.tensor([0.0, 0.0, 1.0])
    y = double_dqn_target(rewards, online, target, terminated, 0.5)
    assert torch.allclose(y, torch.tensor([1.0 + 0.5 * 1.0, 0.0 + 0.5 * 0.0, -1.0]))
    # The target network selecting too gives DQN's max_a' Q_target(s', a').
    y = double_dqn_target(rewards, target, target, terminated, 0.5)
    assert torch.allclose(y, torch.tensor([1.0 + 0.5 * 3.0, 0.0 + 0.5 * 2.0, -1.0]))


# ------------------------------------------------------------------------------ the networks


def test_q_networks_shapes_and_a_frozen_target_copy():
    torch.manual_seed(0)
    nets = QNetworks(4, 3, n_layers=2, size=8, device="cpu")
    assert nets(torch.zeros(5, 4)).shape == (5, 3)
    assert nets.target(torch.zeros(5, 4)).shape == (5, 3)
    assert all(not p.requires_grad for p in nets.target.parameters())
    for a, b in zip(nets.online.parameters(), nets.target.parameters()):
        assert torch.equal(a, b) and a.data_ptr() != b.data_ptr()
    observation = np.ones(4, dtype=np.float32)
    assert nets.greedy_action(observation) == int(nets(torch.ones(4)).argmax())
    nets.action_start = 5
    assert nets.greedy_action(observation) == int(nets(torch.ones(4)).argmax()) + 5


# ------------------------------------------------------------------------------ the update


def huber(x):
    return torch.where(x.abs() <= 1, 0.5 * x ** 2, x.abs() - 0.5)


@pytest.mark.parametrize("double", [True, False])
def test_update_against_a_hand_computed_step(double):
    torch.manual_seed(1)
    nets = QNetworks(4, 2, n_layers=1, size=8, device="cpu")
    with torch.no_grad():
        for p in nets.target.parameters():
            p.add_(0.5)
    batch = make_batch()
    config = DQNConfig(gamma=0.9, double=double, tau=0.1, target_update_every=1,
                       max_grad_norm=None, device="cpu")
    online_before, target_before = params(nets.online), params(nets.target)

    # By hand: one transition at a time, then plain SGD on the mean Huber loss.
    losses, qs = [], []
    for i in range(len(batch)):
        q_s = nets.online(batch.observations[i])
        with torch.no_grad():
            next_online = nets.online(batch.next_observations[i])
            next_target = nets.target(batch.next_observations[i])
            chooser = next_online if double else next_target
            bootstrap = 0.0 if batch.terminated[i] else 0.9 * next_target[chooser.argmax()]
            y = batch.rewards[i] + bootstrap  # truncated (i = 2) bootstraps
        losses.append(huber(q_s[batch.actions[i]] - y))
        qs.append(q_s[batch.actions[i]])
    manual = torch.stack(losses).mean()
    gradients = torch.autograd.grad(manual, list(nets.online.parameters()))

    optimizer = torch.optim.SGD(nets.online.parameters(), lr=0.1)
    metrics = dqn_update(nets, optimizer, batch, config, step=1)
    assert torch.allclose(metrics["loss"], manual.detach(), atol=1e-6)
    assert torch.allclose(metrics["q"], torch.stack(qs).mean().detach(), atol=1e-6)
    assert not metrics["loss"].requires_grad
    for after, before, gradient in zip(nets.online.parameters(), online_before, gradients):
        assert torch.allclose(after, before - 0.1 * gradient, atol=1e-6)
    for after, before, online in zip(nets.target.parameters(), target_before,
                                     nets.online.parameters()):
        assert torch.allclose(after, 0.9 * before + 0.1 * online, atol=1e-6)
    assert all(p.grad is None for p in nets.target.parameters())


def test_truncated_transitions_bootstrap_and_terminated_ones_do_not():
    torch.manual_seed(2)
    nets = QNetworks(4, 2, n_layers=1, size=8, device="cpu")
    batch = make_batch()
    config = DQNConfig(gamma=0.9, max_grad_norm=None, device="cpu")
    truncated_as_terminal = ReplayBatch(batch.observations, batch.actions, batch.rewards,
                                        batch.next_observations,
                                        batch.terminated | batch.truncated, batch.truncated)
    losses = []
    for b in (batch, truncated_as_terminal):
        copy = QNetworks(4, 2, n_layers=1, size=8, device="cpu")
        copy.load_state_dict(nets.state_dict())
        losses.append(dqn_update(copy, torch.optim.SGD(copy.online.parameters(), lr=0.1), b,
                                 config, 1)["loss"])
    assert not torch.isclose(losses[0], losses[1])


def test_target_moves_every_c_steps_only_and_clipping_bounds_the_step():
    torch.manual_seed(3)
    nets = QNetworks(4, 2, n_layers=1, size=8, device="cpu")
    optimizer = torch.optim.SGD(nets.online.parameters(), lr=1.0)
    config = DQNConfig(tau=1.0, target_update_every=3, max_grad_norm=1e-3, device="cpu")
    batch = make_batch()
    for step in (1, 2):
        before = params(nets.online)
        dqn_update(nets, optimizer, batch, config, step)
        moved = torch.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(nets.online.parameters(),
                                                                     before)))
        assert moved <= 1e-3 + 1e-6  # lr 1 × a gradient clipped to norm 1e-3
        assert not all(torch.equal(a, b) for a, b in zip(nets.online.parameters(),
                                                         nets.target.parameters()))
    dqn_update(nets, optimizer, batch, config, 3)
    assert all(torch.equal(a, b) for a, b in zip(nets.online.parameters(),
                                                 nets.target.parameters()))


def test_repeated_updates_reduce_the_loss_on_a_fixed_batch():
    torch.manual_seed(4)
    nets = QNetworks(4, 2, n_layers=1, size=16, device="cpu")
    optimizer = torch.optim.Adam(nets.online.parameters(), lr=1e-2)
    config = DQNConfig(target_update_every=10**9, device="cpu")  # a fixed regression target
    batch = make_batch()
    losses = [dqn_update(nets, optimizer, batch, config, step)["loss"] for step in range(1, 200)]
    assert losses[-1] < 0.1 * losses[0]


# ------------------------------------------------------------------------------ evaluation


def test_lockstep_evaluation_equals_one_episode_at_a_time():
    torch.manual_seed(5)
    nets = QNetworks(4, 2, n_layers=1, size=8, device="cpu")
    envs = [gym.make("CartPole-v1") for _ in range(3)]
    returns = evaluate(envs, nets, seed=100)
    env = gym.make("CartPole-v1")
    for i, expected in enumerate(returns):
        observation, _ = env.reset(seed=100 + i)
        total, done = 0.0, False
        while not done:
            observation, reward, terminated, truncated, _ = env.step(nets.greedy_action(observation))
            total += reward
            done = terminated or truncated
        assert total == expected


# ------------------------------------------------------------------------------ training


def test_train_runs_logs_and_calls_the_update_given():
    calls = []

    def counting_update(nets, optimizer, batch, config, step):
        calls.append(step)
        assert len(batch) == config.batch_size
        return dqn_update(nets, optimizer, batch, config, step)

    config = tiny_config(eval_every=200, eval_episodes=2, train_every=2, gradient_steps=3)
    state = train(config, update=counting_update,
                  on_evaluation=lambda nets: {"measured": 1.0})
    # Updates after steps 101 … 400 that are multiples of 2: 150 rounds of 3.
    assert calls == list(range(1, 451)) and state.updates == 450
    tracker = state.tracker
    assert tracker.steps("eval_return") == [200, 400]
    assert tracker.history["measured"] == [1.0, 1.0]
    for key in ("return", "episode_length", "loss", "q", "eval_return_std"):
        assert key in tracker.keys
    assert tracker.last("env_steps") == 400
    assert len(state.buffer) == 400


def test_train_is_reproducible_and_continues_a_run():
    first = train(tiny_config(total_steps=300))
    again = train(tiny_config(total_steps=300))
    assert first.tracker.history["loss"] == again.tracker.history["loss"]
    continued = train(tiny_config(total_steps=500), state=first)
    assert continued is first
    assert continued.tracker.last("env_steps") == 500 and len(first.buffer) == 500


def test_truncated_episodes_store_their_true_last_observation():
    state = train(tiny_config(env_id="test/ShortCartPole-v0", total_steps=200,
                              learning_starts=1_000))
    stored = state.buffer.at(torch.arange(len(state.buffer)))
    ends = torch.nonzero(stored.truncated).squeeze(1)
    assert len(ends) > 0 and not stored.terminated[ends].any()
    for i in ends.tolist()[:-1]:
        # The next row starts a new episode: its observation is the reset, not the stored s'.
        assert not torch.equal(stored.next_observations[i], stored.observations[i + 1])
        assert torch.equal(stored.next_observations[i - 1], stored.observations[i])


def test_actions_of_a_shifted_discrete_space():
    state = train(tiny_config(env_id="test/ShiftedActions-v0", total_steps=300))
    stored = state.buffer.at(torch.arange(len(state.buffer)))
    assert set(stored.actions.tolist()) == {0, 1}  # stored as indices of the network's outputs
    assert state.nets.greedy_action(np.zeros(4, dtype=np.float32)) in (5, 6)


@pytest.mark.parametrize(("env_id", "changes", "message"), [
    ("Pendulum-v1", {}, "env.action_space: DQN needs a Discrete action space"),
    ("CartPole-v1", {"tau": 0.0}, "config.tau must be in (0, 1]"),
])
def test_bad_arguments(env_id, changes, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_state(gym.make(env_id), tiny_config(env_id=env_id, **changes))
