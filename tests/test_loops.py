"""Unit tests of course_utils.loops: train_agent (with a Tracker) and evaluate."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from course_utils.agents import Agent, PGAgent, PGPolicy, Policy
from course_utils.loops import evaluate, train_agent
from course_utils.tracking import Tracker
from course_utils.trajectory import sample_trajectory

DOCUMENTED_KEYS = {"return", "return_std", "episode_length", "env_steps"}


class ConstantPolicy(Policy):
    def __init__(self, action=0):
        self.action = action

    def get_action(self, observation):
        return self.action


class FakeAgent(Agent):
    """Records what it was given; raises KeyboardInterrupt inside update number `interrupt_at`."""

    def __init__(self, interrupt_at=None):
        self.policy = ConstantPolicy(0)
        self.batches = []
        self.interrupt_at = interrupt_at
        self.updates = 0

    def update(self, trajectories):
        if self.interrupt_at is not None and len(self.batches) == self.interrupt_at:
            raise KeyboardInterrupt
        self.batches.append(list(trajectories))
        self.updates += 1
        return {"loss": float(self.updates), "fake_metric": 0.5}


@pytest.fixture
def env():
    env = gym.make("CartPole-v1")
    yield env
    env.close()


# ------------------------------------------------------------------------------- train_agent


def test_train_agent_logs_documented_keys(env):
    agent = FakeAgent()
    tracker = train_agent(env, agent, n_iterations=4, min_timesteps=25, seed=0, progress=False)
    assert isinstance(tracker, Tracker)
    assert len(tracker) == 4
    assert set(tracker.keys) == DOCUMENTED_KEYS | {"loss", "fake_metric"}
    for key in tracker.keys:
        assert tracker.steps(key) == [0, 1, 2, 3]
    history = tracker.history
    assert len(agent.batches) == 4
    sizes = [sum(len(t) for t in batch) for batch in agent.batches]
    assert all(size >= 25 for size in sizes)
    assert history["env_steps"] == np.cumsum(sizes).tolist()
    for i, batch in enumerate(agent.batches):
        returns = np.array([t.total_reward for t in batch])
        assert history["return"][i] == pytest.approx(returns.mean())
        assert history["return_std"][i] == pytest.approx(returns.std())
        assert history["episode_length"][i] == pytest.approx(np.mean([len(t) for t in batch]))
    assert history["loss"] == [1.0, 2.0, 3.0, 4.0]
    assert history["fake_metric"] == [0.5] * 4


def test_train_agent_is_reproducible_with_seed(env):
    a = train_agent(env, FakeAgent(), 2, 30, seed=3, progress=False)
    b = train_agent(env, FakeAgent(), 2, 30, seed=3, progress=False)
    assert a.history == b.history


def test_train_agent_seed_only_seeds_the_first_reset(env):
    agent = FakeAgent()
    train_agent(env, agent, 3, 1, seed=0, progress=False)
    first_obs = [batch[0].observations[0] for batch in agent.batches]
    expected = sample_trajectory(env, ConstantPolicy(0), seed=0).observations[0]
    np.testing.assert_array_equal(first_obs[0], expected)
    assert not np.array_equal(first_obs[1], first_obs[0])
    assert not np.array_equal(first_obs[2], first_obs[1])


def test_train_agent_max_steps(env):
    agent = FakeAgent()
    agent.policy = ConstantPolicy(1)
    tracker = train_agent(env, agent, 1, 12, seed=0, progress=False, max_steps=4)
    assert [len(t) for t in agent.batches[0]] == [4, 4, 4]
    assert tracker.last("episode_length") == 4.0
    assert all(t.truncated[-1] for t in agent.batches[0])


def test_continue_with_the_same_tracker(env):
    agent = FakeAgent()
    tracker = Tracker("run")
    returned = train_agent(env, agent, 2, 20, tracker=tracker, seed=0, progress=False)
    assert returned is tracker
    steps_after_first = tracker.last("env_steps")
    train_agent(env, agent, 3, 20, tracker=tracker, progress=False)
    assert len(tracker) == 5
    assert tracker.steps("return") == [0, 1, 2, 3, 4]
    env_steps = tracker.history["env_steps"]
    sizes = [sum(len(t) for t in batch) for batch in agent.batches]
    assert env_steps == np.cumsum(sizes).tolist()
    assert env_steps[2] == steps_after_first + sizes[2]
    assert tracker.history["loss"] == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_keyboard_interrupt_keeps_history_and_agent(env, capsys):
    agent = FakeAgent(interrupt_at=2)
    tracker = Tracker()
    returned = train_agent(env, agent, 5, 20, tracker=tracker, seed=0, progress=False)
    assert returned is tracker
    assert len(tracker) == 2
    assert tracker.steps("return") == [0, 1]
    assert agent.updates == 2 and len(agent.batches) == 2
    assert tracker.history["loss"] == [1.0, 2.0]
    assert "Interrupted after 2 of 5 iterations" in capsys.readouterr().out
    # The same agent and tracker can go on.
    agent.interrupt_at = None
    train_agent(env, agent, 1, 20, tracker=tracker, progress=False)
    assert tracker.steps("return") == [0, 1, 2]
    assert agent.updates == 3


def test_keyboard_interrupt_in_first_iteration(env, capsys):
    tracker = train_agent(env, FakeAgent(interrupt_at=0), 3, 20, seed=0, progress=False)
    assert len(tracker) == 0
    assert "Interrupted after 0 of 3" in capsys.readouterr().out


def test_keyboard_interrupt_keeps_a_real_agents_training(env):
    torch.manual_seed(0)
    policy = PGPolicy(env.observation_space, env.action_space, n_layers=1, size=8, device="cpu")
    agent = PGAgent(policy)
    calls = {"n": 0}
    original = agent.update

    def update(trajectories):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(trajectories)

    agent.update = update
    before = [p.detach().clone() for p in policy.parameters()]
    tracker = train_agent(env, agent, 5, 20, seed=0, progress=False)
    assert len(tracker) == 2
    assert agent.policy is policy
    assert all(not torch.equal(p, q) for p, q in zip(policy.parameters(), before))


def test_other_exceptions_propagate(env):
    class Broken(FakeAgent):
        def update(self, trajectories):
            raise ZeroDivisionError("boom")

    with pytest.raises(ZeroDivisionError, match="boom"):
        train_agent(env, Broken(), 2, 10, progress=False)


@pytest.mark.parametrize("n", [-1, -10])
def test_negative_n_iterations_raises(env, n):
    with pytest.raises(ValueError, match="n_iterations must be >= 0"):
        train_agent(env, FakeAgent(), n, 10, progress=False)


def test_zero_iterations(env):
    agent = FakeAgent()
    tracker = train_agent(env, agent, 0, 10, progress=False)
    assert len(tracker) == 0 and agent.batches == []


def test_min_timesteps_below_one_raises(env):
    with pytest.raises(ValueError, match="min_timesteps"):
        train_agent(env, FakeAgent(), 1, 0, progress=False)


def test_progress_false_prints_nothing(env, capsys):
    train_agent(env, FakeAgent(), 3, 20, seed=0, progress=False)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_progress_true_shows_a_bar(env, capsys):
    train_agent(env, FakeAgent(), 3, 20, seed=0, progress=True)
    out = capsys.readouterr().out
    assert "training" in out and "3/3" in out


def test_live_plot_every(env, monkeypatch):
    tracker = Tracker()
    calls = []
    monkeypatch.setattr(tracker, "live_plot", lambda keys: calls.append((len(tracker), tuple(keys))))
    monkeypatch.setattr(tracker, "finish_live_plot", lambda: calls.append("finish"))
    train_agent(env, FakeAgent(), 5, 10, tracker=tracker, seed=0, progress=False,
                live_plot_every=2, live_plot_keys=("return", "loss"))
    assert calls == [(2, ("return", "loss")), (4, ("return", "loss")), (5, ("return", "loss")),
                     "finish"]


def test_no_live_plot_by_default(env, monkeypatch):
    tracker = Tracker()
    monkeypatch.setattr(tracker, "live_plot", lambda *a, **k: pytest.fail("live_plot called"))
    train_agent(env, FakeAgent(), 2, 10, tracker=tracker, progress=False)


# ------------------------------------------------------------------------------- evaluate


class GreedySpy:
    def __init__(self):
        self.greedy_calls = 0

    def greedy_action(self, observation):
        self.greedy_calls += 1
        return int(observation[2] + 0.5 * observation[3] > 0)

    def get_action(self, observation):
        raise AssertionError("get_action used although greedy_action exists")


def test_evaluate_returns_n_episodes(env):
    returns = evaluate(env, ConstantPolicy(0), n_episodes=4, seed=0)
    assert isinstance(returns, np.ndarray) and returns.shape == (4,)
    expected = [sample_trajectory(env, ConstantPolicy(0), seed=s).total_reward for s in range(4)]
    np.testing.assert_array_equal(returns, expected)


def test_evaluate_uses_greedy_action(env):
    policy = GreedySpy()
    returns = evaluate(gym.make("CartPole-v1", max_episode_steps=30), policy, n_episodes=2,
                       seed=0)
    np.testing.assert_array_equal(returns, [30.0, 30.0])
    assert policy.greedy_calls == 60


def test_evaluate_not_greedy_uses_get_action(env):
    class Both(ConstantPolicy):
        def greedy_action(self, observation):
            raise AssertionError("greedy_action used with greedy=False")

    returns = evaluate(env, Both(0), n_episodes=2, seed=0, greedy=False)
    assert returns.shape == (2,)


def test_evaluate_callable_policy(env):
    returns = evaluate(env, lambda obs: 0, n_episodes=2, seed=1)
    assert returns.shape == (2,) and (returns > 0).all()


def test_evaluate_is_reproducible_with_seed(env):
    torch.manual_seed(0)
    policy = PGPolicy(env.observation_space, env.action_space, n_layers=1, size=8, device="cpu")
    a = evaluate(env, policy, n_episodes=3, seed=10)
    b = evaluate(env, policy, n_episodes=3, seed=10)
    np.testing.assert_array_equal(a, b)
    # Episodes use seeds seed, seed + 1, ...: not all the same episode.
    starts = [env.reset(seed=s)[0] for s in (10, 11, 12)]
    assert not np.array_equal(starts[0], starts[1])
    expected = [sample_trajectory(env, policy.greedy_action, seed=s).total_reward
                for s in (10, 11, 12)]
    np.testing.assert_array_equal(a, expected)


def test_evaluate_sampling_reproducible_with_torch_seed(env):
    torch.manual_seed(0)
    policy = PGPolicy(env.observation_space, env.action_space, n_layers=1, size=8, device="cpu")
    torch.manual_seed(1)
    a = evaluate(env, policy, n_episodes=3, seed=0, greedy=False)
    torch.manual_seed(1)
    b = evaluate(env, policy, n_episodes=3, seed=0, greedy=False)
    np.testing.assert_array_equal(a, b)


def test_agent_metric_named_like_a_loop_metric(env):
    class Clashing(FakeAgent):
        def update(self, trajectories):
            super().update(trajectories)
            return {"return": 1.0}

    with pytest.raises(ValueError, match="'return'"):
        train_agent(env, Clashing(), 1, 10, seed=0, progress=False)
