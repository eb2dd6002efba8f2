"""Unit tests of course_utils.agents.legacy_dqn: the TD targets, EpsilonGreedyPolicy and DQNAgent."""

from __future__ import annotations

import copy
import io

import gymnasium as gym
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_utils.agents.base import OffPolicyAgent
from course_utils.agents.legacy_dqn import DQNAgent, EpsilonGreedyPolicy, double_dqn_target, dqn_target
from course_utils.buffers import ReplayBatch
from course_utils.nn import MLPConfig, polyak_update

OBS_SPACE = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)


def make_agent(action_space=gym.spaces.Discrete(2), **kwargs):
    n = int(action_space.n) if isinstance(action_space, gym.spaces.Discrete) else 2
    kwargs.setdefault("network", MLPConfig(4, n, n_layers=1, size=16, activation="relu"))
    kwargs.setdefault("seed", 0)
    return DQNAgent(OBS_SPACE, action_space, device="cpu", **kwargs)


def make_batch(size=32, n_actions=2, action_start=0, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return ReplayBatch(
        observations=torch.randn(size, 4, generator=generator),
        actions=torch.randint(n_actions, (size,), generator=generator) + action_start,
        rewards=torch.randn(size, generator=generator),
        next_observations=torch.randn(size, 4, generator=generator),
        terminated=torch.rand(size, generator=generator) < 0.3,
        truncated=torch.rand(size, generator=generator) < 0.1,
    )


def parameters(module):
    return [p.detach().clone() for p in module.parameters()]


def assert_same(tensors_a, tensors_b):
    assert len(tensors_a) == len(tensors_b)
    for a, b in zip(tensors_a, tensors_b):
        assert torch.equal(a, b)


def expected_loss(agent, batch, loss_fn=F.smooth_l1_loss):
    """The loss the agent should minimise, computed here from its networks' current weights."""
    with torch.no_grad():
        q = agent.q_network(batch.observations)
        q_taken = q.gather(1, (batch.actions - agent.action_start)[:, None]).squeeze(1)
        next_max = agent.target_network(batch.next_observations).max(dim=1).values
        targets = batch.rewards + agent.gamma * (1 - batch.terminated.float()) * next_max
        return loss_fn(q_taken, targets).item(), q_taken.mean().item()


# ------------------------------------------------------------------------------- TD targets

REWARDS = torch.tensor([1.0, 2.0, 0.0])
NEXT_Q_ONLINE = torch.tensor([[2.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
NEXT_Q_TARGET = torch.tensor([[1.0, 3.0], [5.0, 4.0], [7.0, 2.0]])
TERMINATED = torch.tensor([0.0, 0.0, 1.0])


def test_dqn_target_hand_computed():
    targets = dqn_target(REWARDS, NEXT_Q_ONLINE, NEXT_Q_TARGET, TERMINATED, 0.5)
    # r + γ max_a Q_target(s', a): 1 + 0.5·3, 2 + 0.5·5; the terminal transition keeps only r.
    torch.testing.assert_close(targets, torch.tensor([2.5, 4.5, 0.0]), rtol=0, atol=0)


def test_double_dqn_target_hand_computed():
    targets = double_dqn_target(REWARDS, NEXT_Q_ONLINE, NEXT_Q_TARGET, TERMINATED, 0.5)
    # The online net picks a* = [0, 1, 0]; the target evaluates it: 1 + 0.5·1, 2 + 0.5·4, 0.
    torch.testing.assert_close(targets, torch.tensor([1.5, 4.0, 0.0]), rtol=0, atol=0)


def test_dqn_target_ignores_the_online_values():
    a = dqn_target(REWARDS, NEXT_Q_ONLINE, NEXT_Q_TARGET, TERMINATED, 0.9)
    b = dqn_target(REWARDS, -100 * NEXT_Q_ONLINE, NEXT_Q_TARGET, TERMINATED, 0.9)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_targets_with_gamma_zero_are_the_rewards():
    for target in (dqn_target, double_dqn_target):
        torch.testing.assert_close(target(REWARDS, NEXT_Q_ONLINE, NEXT_Q_TARGET, TERMINATED, 0.0),
                                   REWARDS, rtol=0, atol=0)


# ------------------------------------------------------------------------------- construction


def test_refuses_box_action_space():
    with pytest.raises(ValueError, match="DQN needs a Discrete action space.*DDPG, TD3 or SAC"):
        make_agent(gym.spaces.Box(-1.0, 1.0, (2,), np.float32))


@pytest.mark.parametrize("space", [gym.spaces.Discrete(16),
                                   gym.spaces.Box(0, 255, (4, 4), np.uint8)])
def test_refuses_observation_spaces_other_than_a_flat_box(space):
    with pytest.raises(ValueError, match="observation_space must be a one-dimensional Box"):
        DQNAgent(space, gym.spaces.Discrete(2), device="cpu")


def test_is_an_off_policy_agent_with_a_frozen_target_copy():
    agent = make_agent()
    assert isinstance(agent, OffPolicyAgent)
    assert isinstance(agent.policy, EpsilonGreedyPolicy)
    assert agent.target_network is not agent.q_network
    assert_same(parameters(agent.target_network), parameters(agent.q_network))
    assert all(not p.requires_grad for p in agent.target_network.parameters())
    assert all(p.requires_grad for p in agent.q_network.parameters())


@pytest.mark.parametrize("kwargs, message", [
    ({"loss": "l1"}, "loss must be 'huber' or 'mse'"),
    ({"tau": 0.0}, r"tau must be in \(0, 1\]"),
    ({"tau": 1.5}, r"tau must be in \(0, 1\]"),
    ({"target_update_every": 0}, "target_update_every must be an int >= 1"),
    ({"network": MLPConfig(4, 3)}, "network.output_size must be the number of actions 2"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_agent(**kwargs)


def test_default_network_and_seed_reproducibility():
    a = DQNAgent(OBS_SPACE, gym.spaces.Discrete(3), device="cpu", seed=4)
    b = DQNAgent(OBS_SPACE, gym.spaces.Discrete(3), device="cpu", seed=4)
    c = DQNAgent(OBS_SPACE, gym.spaces.Discrete(3), device="cpu", seed=5)
    sizes = [(m.in_features, m.out_features) for m in a.q_network if isinstance(m, torch.nn.Linear)]
    assert sizes == [(4, 128), (128, 128), (128, 3)]
    assert_same(parameters(a.q_network), parameters(b.q_network))
    assert not torch.equal(a.q_network[0].weight, c.q_network[0].weight)


# ------------------------------------------------------------------------------- acting


def test_act_with_epsilon_zero_is_greedy():
    steps = []
    agent = make_agent(gym.spaces.Discrete(3), epsilon=lambda step: steps.append(step) or 0.0)
    observations = torch.randn(50, 4, generator=torch.Generator().manual_seed(1)).numpy()
    greedy = agent.q_network(torch.as_tensor(observations)).argmax(dim=1).tolist()
    assert len(set(greedy)) > 1  # the test sees more than one greedy action
    assert [agent.act(o, step=10 + i) for i, o in enumerate(observations)] == greedy
    assert steps == list(range(10, 60))  # the schedule is asked at the given steps
    assert [agent.policy.greedy_action(o) for o in observations] == greedy


def test_act_with_epsilon_one_is_uniform():
    agent = make_agent(gym.spaces.Discrete(3), epsilon=lambda step: 1.0)
    observation = np.zeros(4, dtype=np.float32)
    actions = np.array([agent.act(observation, step) for step in range(3000)])
    counts = np.bincount(actions, minlength=3)
    assert counts.sum() == 3000 and len(counts) == 3
    assert (counts > 850).all() and (counts < 1150).all()


def test_act_follows_the_epsilon_schedule():
    agent = make_agent(epsilon=lambda step: 1.0 if step < 100 else 0.0)
    observation = np.ones(4, dtype=np.float32)
    greedy = agent.policy.greedy_action(observation)
    early = [agent.act(observation, step % 100) for step in range(400)]
    assert agent.policy.epsilon == 1.0
    late = [agent.act(observation, step) for step in range(100, 300)]
    assert agent.policy.epsilon == 0.0
    assert set(early) == {0, 1}
    assert late == [greedy] * 200


def test_act_is_reproducible_with_seed():
    def actions(seed):
        agent = make_agent(seed=seed, epsilon=lambda step: 0.5)
        observations = torch.randn(200, 4, generator=torch.Generator().manual_seed(0)).numpy()
        return [agent.act(o, 0) for o in observations]

    assert actions(7) == actions(7)


def test_discrete_with_start():
    space = gym.spaces.Discrete(3, start=-1)
    agent = make_agent(space, epsilon=lambda step: 1.0)
    observation = np.zeros(4, dtype=np.float32)
    random_actions = {agent.act(observation, 0) for _ in range(300)}
    assert random_actions == {-1, 0, 1}
    agent.epsilon = lambda step: 0.0
    observations = torch.randn(30, 4, generator=torch.Generator().manual_seed(2)).numpy()
    greedy = (agent.q_network(torch.as_tensor(observations)).argmax(dim=1) - 1).tolist()
    assert [agent.act(o, 0) for o in observations] == greedy
    # Stored actions -1, 0, 1 index the network's outputs 0, 1, 2.
    batch = make_batch(n_actions=3, action_start=-1)
    loss, q_mean = expected_loss(agent, batch)
    metrics = agent.update(batch)
    assert metrics["loss"].item() == pytest.approx(loss, rel=1e-5)
    assert metrics["q"].item() == pytest.approx(q_mean, rel=1e-5)


# ------------------------------------------------------------------------------- updates


def test_update_returns_the_huber_loss_and_mean_q_before_the_step():
    agent = make_agent(gamma=0.9)
    batch = make_batch()
    loss, q_mean = expected_loss(agent, batch)
    metrics = agent.update(batch)
    assert set(metrics) == {"loss", "q"}
    assert isinstance(metrics["loss"], torch.Tensor) and not metrics["loss"].requires_grad
    assert metrics["loss"].item() == pytest.approx(loss, rel=1e-5)
    assert metrics["q"].item() == pytest.approx(q_mean, rel=1e-5)
    assert agent.updates == 1


def test_mse_loss_option():
    agent = make_agent(loss="mse")
    batch = make_batch()
    loss, _ = expected_loss(agent, batch, F.mse_loss)
    assert agent.update(batch)["loss"].item() == pytest.approx(loss, rel=1e-5)


def test_update_reduces_the_td_loss_on_a_fixed_batch():
    agent = make_agent(learning_rate=1e-2, target_update_every=10_000)
    batch = make_batch(size=64)
    losses = [agent.update(batch)["loss"].item() for _ in range(60)]
    final, _ = expected_loss(agent, batch)
    assert final < 0.7 * losses[0]
    assert np.mean(losses[-10:]) < np.mean(losses[:10])


def test_student_td_target_is_called_with_the_documented_arguments():
    calls = []

    def spy(rewards, next_q_online, next_q_target, terminated, gamma):
        calls.append((rewards, next_q_online, next_q_target, terminated, gamma))
        return torch.zeros_like(rewards)  # an odd target, to see it used

    agent = make_agent(td_target=spy, gamma=0.8)
    batch = make_batch(size=16)
    with torch.no_grad():
        next_online = agent.q_network(batch.next_observations)
        next_target = agent.target_network(batch.next_observations)
        q_taken = agent.q_network(batch.observations).gather(1, batch.actions[:, None]).squeeze(1)
    loss = agent.update(batch)["loss"].item()
    assert len(calls) == 1
    rewards, next_q_online, next_q_target, terminated, gamma = calls[0]
    assert torch.equal(rewards, batch.rewards)
    torch.testing.assert_close(next_q_online, next_online)
    torch.testing.assert_close(next_q_target, next_target)
    assert terminated.dtype == torch.float32
    assert torch.equal(terminated, batch.terminated.float())
    assert gamma == 0.8
    assert not next_q_online.requires_grad and not next_q_target.requires_grad
    # The loss regresses Q(s, a) onto the spy's zeros.
    assert loss == pytest.approx(F.smooth_l1_loss(q_taken, torch.zeros(16)).item(), rel=1e-5)


def test_double_dqn_target_plugs_in():
    agent = make_agent(td_target=double_dqn_target, gamma=0.9)
    for _ in range(3):  # online and target networks now differ
        agent.update(make_batch(seed=1))
    agent.target_update_every = 10**6
    batch = make_batch(seed=2)
    with torch.no_grad():
        q_taken = agent.q_network(batch.observations).gather(1, batch.actions[:, None]).squeeze(1)
        best = agent.q_network(batch.next_observations).argmax(dim=1, keepdim=True)
        evaluated = agent.target_network(batch.next_observations).gather(1, best).squeeze(1)
        targets = batch.rewards + 0.9 * (1 - batch.terminated.float()) * evaluated
    loss = agent.update(batch)["loss"].item()
    assert loss == pytest.approx(F.smooth_l1_loss(q_taken, targets).item(), rel=1e-5)


@pytest.mark.parametrize("shape", [(32, 1), (1, 32), (31,), ()])
def test_td_target_of_the_wrong_shape_is_reported(shape):
    agent = make_agent(td_target=lambda r, qo, qt, d, g: torch.zeros(shape))
    before = parameters(agent.q_network)
    with pytest.raises(ValueError, match=r"td_target returned shape .*, expected \(32,\)") as info:
        agent.update(make_batch())
    assert str(tuple(shape)) in str(info.value)
    assert_same(parameters(agent.q_network), before)
    assert agent.updates == 0


def test_hard_target_update_every_n_updates():
    agent = make_agent(tau=1.0, target_update_every=3, learning_rate=1e-2)
    batch = make_batch()
    initial = parameters(agent.target_network)
    for _ in range(2):
        agent.update(batch)
        assert_same(parameters(agent.target_network), initial)
    assert not torch.equal(agent.q_network[0].weight, agent.target_network[0].weight)
    agent.update(batch)  # the third
    copied = parameters(agent.target_network)
    assert_same(copied, parameters(agent.q_network))
    for _ in range(2):
        agent.update(batch)
        assert_same(parameters(agent.target_network), copied)
    agent.update(batch)  # the sixth
    assert_same(parameters(agent.target_network), parameters(agent.q_network))


def test_polyak_target_update():
    agent = make_agent(tau=0.25, target_update_every=2, learning_rate=1e-2)
    batch = make_batch()
    initial = parameters(agent.target_network)
    agent.update(batch)
    assert_same(parameters(agent.target_network), initial)
    agent.update(batch)
    online = parameters(agent.q_network)
    for target, theta, theta_target in zip(agent.target_network.parameters(), online, initial):
        torch.testing.assert_close(target.detach(), 0.25 * theta + 0.75 * theta_target,
                                   rtol=0, atol=1e-6)
        assert not torch.equal(target, theta)


def test_target_update_function_is_pluggable():
    calls = []

    def spy(target, source, tau):
        calls.append((target, source, tau))
        polyak_update(target, source, tau)

    agent = make_agent(target_update=spy, tau=0.5, target_update_every=2)
    for _ in range(5):
        agent.update(make_batch())
    assert len(calls) == 2
    assert all(t is agent.target_network and s is agent.q_network and tau == 0.5
               for t, s, tau in calls)


def test_target_network_gets_no_gradients():
    agent = make_agent(target_update_every=1000)
    agent.update(make_batch())
    assert all(p.grad is None and not p.requires_grad for p in agent.target_network.parameters())
    assert all(p.grad is not None for p in agent.q_network.parameters())


# ------------------------------------------------------------------------------- state_dict


def test_state_dict_round_trip():
    agent = make_agent(target_update_every=3, learning_rate=1e-2)
    for i in range(5):
        agent.update(make_batch(seed=i))
    buffer = io.BytesIO()
    torch.save(agent.state_dict(), buffer)
    buffer.seek(0)
    copy_agent = make_agent(target_update_every=3, learning_rate=1e-2, seed=123)
    copy_agent.load_state_dict(torch.load(buffer, weights_only=True))
    assert copy_agent.updates == 5
    observations = torch.randn(10, 4)
    assert torch.equal(copy_agent.policy.q_values(observations),
                       agent.policy.q_values(observations))
    assert_same(parameters(copy_agent.target_network), parameters(agent.target_network))
    state, copied_state = agent.optimizer.state_dict(), copy_agent.optimizer.state_dict()
    assert state["param_groups"] == copied_state["param_groups"]
    assert state["state"].keys() == copied_state["state"].keys()
    for index, moments in state["state"].items():
        for name, value in moments.items():
            assert torch.equal(copied_state["state"][index][name], value), name
    # Both go on identically: same step (optimizer moments) and same target update (step 6).
    batch = make_batch(seed=9)
    assert torch.equal(agent.update(batch)["loss"], copy_agent.update(batch)["loss"])
    assert_same(parameters(copy_agent.q_network), parameters(agent.q_network))
    assert_same(parameters(copy_agent.target_network), parameters(agent.q_network))


def test_state_dict_is_detached_from_later_training_when_deep_copied():
    agent = make_agent(learning_rate=1e-2)
    saved = copy.deepcopy(agent.state_dict())
    before = parameters(agent.q_network)
    agent.update(make_batch())
    agent.load_state_dict(saved)
    assert_same(parameters(agent.q_network), before)
    assert agent.updates == 0
