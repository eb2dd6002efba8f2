"""Unit tests of course_utils.loops.train_off_policy: updates, warm-up, truncation, evaluation,
early stopping, keep_best, interruption, checkpoints and resume, NaN detection, a DQN smoke run."""

from __future__ import annotations

import types

import gymnasium as gym
import numpy as np
import pytest
import torch

from course_utils import loops
from course_utils.agents.base import OffPolicyAgent, Policy
from course_utils.agents.legacy_dqn import DQNAgent
from course_utils.buffers import ReplayBuffer
from course_utils.loops import train_off_policy
from course_utils.nn import MLPConfig
from course_utils.schedules import linear_schedule
from course_utils.tracking import Tracker
from course_utils.trajectory import evaluate

EVAL_SEED_OFFSET = 1_000_000  # train_off_policy evaluates on seeds seed + 1_000_000, + 1, …


class FakeClock:
    """Stands in for time.perf_counter in the loop: time moves only when a test moves it."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now


class AgentPolicy(Policy):
    """Greedy: balances the pole while the agent is `good`, else always pushes left."""

    def __init__(self, agent):
        self.agent = agent
        self.greedy_calls = 0

    def greedy_action(self, observation):
        self.greedy_calls += 1
        agent = self.agent
        if agent.clock is not None:
            agent.clock.now += agent.seconds_per_evaluation_step
        if agent.interrupt_in_evaluation is not None and \
                self.greedy_calls > agent.interrupt_in_evaluation:
            raise KeyboardInterrupt
        if agent.good(agent.n_updates):
            return int(observation[2] + 0.5 * observation[3] > 0)
        return 0

    def get_action(self, observation):
        return self.greedy_action(observation)


class RecordingAgent(OffPolicyAgent):
    """Records what the loop asks of it.

    `act` always returns `action`; `update` returns loss(n) for its n-th update and raises
    KeyboardInterrupt on update number `interrupt_at` (before counting it).
    """

    def __init__(self, action=1, interrupt_at=None, loss=float, good=lambda n: True,
                 buffer=None, clock=None):
        self.action = action
        self.interrupt_at = interrupt_at
        self.loss = loss
        self.good = good
        self.buffer = buffer  # to record how full it was at each update
        self.clock = clock
        self.seconds_per_evaluation_step = 100.0
        self.interrupt_in_evaluation = None
        self.policy = AgentPolicy(self)
        self.n_updates = 0
        self.acts = []  # the steps given to act
        self.batch_sizes = []
        self.buffer_sizes = []  # len(buffer) at each update

    def act(self, observation, step):
        self.acts.append(step)
        if self.clock is not None:
            self.clock.now += 1.0  # one second per training step
        return self.action

    def update(self, batch):
        if self.interrupt_at is not None and self.n_updates + 1 == self.interrupt_at:
            raise KeyboardInterrupt
        self.n_updates += 1
        self.batch_sizes.append(len(batch))
        if self.buffer is not None:
            self.buffer_sizes.append(len(self.buffer))
        return {"loss": torch.tensor(self.loss(self.n_updates)), "fake": 0.5}

    def state_dict(self):
        return {"n_updates": self.n_updates, "weights": torch.full((2,), float(self.n_updates))}

    def load_state_dict(self, state):
        self.n_updates = int(state["n_updates"])
        assert torch.equal(state["weights"], torch.full((2,), float(self.n_updates)))


def cartpole(max_episode_steps=None):
    return gym.make("CartPole-v1", max_episode_steps=max_episode_steps)


def make_buffer(env, capacity=1000, seed=0):
    return ReplayBuffer.for_env(env, capacity, device="cpu", seed=seed)


def run(env, agent, buffer, total_steps, **kwargs):
    kwargs.setdefault("seed", 0)
    kwargs.setdefault("progress", False)
    kwargs.setdefault("batch_size", 8)
    return train_off_policy(env, agent, buffer, total_steps, **kwargs)


def contents(buffer, n=None):
    batch = buffer.at(torch.arange(len(buffer) if n is None else n))
    return {name: getattr(batch, name).numpy() for name in
            ("observations", "actions", "rewards", "next_observations", "terminated", "truncated")}


# ------------------------------------------------------------------------------- updates


def test_number_and_timing_of_updates():
    env = cartpole()
    buffer = make_buffer(env)
    agent = RecordingAgent(buffer=buffer)
    tracker = run(env, agent, buffer, 200, learning_starts=50, train_every=4, gradient_steps=3,
                  batch_size=8)
    # After the steps 52, 56, …, 200 (past learning_starts, multiples of train_every), 3 each.
    update_steps = [s for s in range(51, 201) if s % 4 == 0]
    assert agent.n_updates == 3 * len(update_steps) == 114
    assert agent.buffer_sizes == [s for s in update_steps for _ in range(3)]
    assert min(agent.buffer_sizes) > 50  # none before learning_starts
    assert agent.batch_sizes == [8] * 114
    assert len(buffer) == 200
    assert isinstance(tracker, Tracker) and tracker.x_label == "environment steps"


def test_learning_starts_zero_updates_from_the_first_step():
    env = cartpole()
    buffer = make_buffer(env)
    agent = RecordingAgent(buffer=buffer)
    run(env, agent, buffer, 30, learning_starts=0)
    assert agent.buffer_sizes == list(range(1, 31))
    assert agent.acts == list(range(30))


def test_random_actions_before_learning_starts_then_the_agents():
    env = cartpole()
    buffer = make_buffer(env)
    agent = RecordingAgent(action=1)
    run(env, agent, buffer, 150, learning_starts=60)
    assert agent.acts == list(range(60, 150))  # act is given the environment step
    actions = contents(buffer)["actions"]
    assert set(actions[:60].tolist()) == {0, 1}  # uniformly random warm-up
    assert (actions[60:] == 1).all()


def test_box_actions_pendulum():
    env = gym.make("Pendulum-v1", max_episode_steps=10)
    buffer = make_buffer(env)
    agent = RecordingAgent(action=np.array([0.5], dtype=np.float32))
    tracker = run(env, agent, buffer, 20, learning_starts=5)
    stored = contents(buffer)
    assert stored["actions"].shape == (20, 1) and stored["actions"].dtype == np.float32
    assert (np.abs(stored["actions"][:5]) <= 2.0).all() and (stored["actions"][:5] != 0.5).all()
    assert (stored["actions"][5:] == 0.5).all()
    assert np.flatnonzero(stored["truncated"]).tolist() == [9, 19]
    assert tracker.steps("return") == [10, 20]
    assert tracker.history["return"][0] == pytest.approx(stored["rewards"][:10].sum(), rel=1e-5)


def test_same_seed_same_transitions():
    def transitions(seed):
        env = cartpole()
        buffer = make_buffer(env)
        run(env, RecordingAgent(), buffer, 60, learning_starts=40, seed=seed)
        return contents(buffer)

    a, b, c = transitions(3), transitions(3), transitions(4)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert not np.array_equal(a["observations"], c["observations"])


def test_loop_logs_episodes_and_update_metrics():
    env = cartpole()
    buffer = make_buffer(env)
    agent = RecordingAgent(action=0, loss=float)
    tracker = run(env, agent, buffer, 100, learning_starts=20, log_every=40)
    terminated = contents(buffer)["terminated"]
    ends = (np.flatnonzero(terminated) + 1).tolist()  # constant pushes end episodes by falling
    assert ends and tracker.steps("return") == ends
    assert tracker.history["episode_length"] == np.diff([0] + ends).astype(float).tolist()
    assert tracker.history["return"] == tracker.history["episode_length"]  # +1 a step
    # Update metrics averaged per log_every steps: updates 1…20 by step 40, 21…60 by step 80,
    # and the last, partial interval (61…80) when the run stops.
    assert tracker.steps("loss") == [40, 80, 100]
    assert tracker.history["loss"] == [10.5, 40.5, 70.5]
    assert tracker.history["fake"] == [0.5, 0.5, 0.5]
    assert tracker.steps("steps_per_second") == [40, 80, 100]
    assert tracker.steps("train_seconds") == [40, 80, 100]
    assert tracker.history["env_steps"] == [40.0, 80.0, 100.0]


def test_truncation_stores_the_true_next_observation():
    env = cartpole(max_episode_steps=5)  # 5 steps are too few for CartPole to terminate
    buffer = make_buffer(env)
    tracker = run(env, RecordingAgent(), buffer, 20, learning_starts=20, seed=7)
    stored = contents(buffer)
    assert stored["truncated"].tolist() == [i % 5 == 4 for i in range(20)]
    assert not stored["terminated"].any()
    within = [i for i in range(19) if i % 5 != 4]
    np.testing.assert_array_equal(stored["next_observations"][within],
                                  stored["observations"][[i + 1 for i in within]])
    # The stored s' of a truncated step is where the episode got to, not the next reset.
    replay = cartpole(max_episode_steps=5)
    observation, _ = replay.reset(seed=7)
    np.testing.assert_array_equal(stored["observations"][0], observation)
    for i in range(5):
        observation, _, terminated, truncated, _ = replay.step(int(stored["actions"][i]))
    assert truncated and not terminated
    np.testing.assert_array_equal(stored["next_observations"][4], observation)
    assert not np.array_equal(stored["next_observations"][4], stored["observations"][5])
    assert tracker.steps("return") == [5, 10, 15, 20]
    assert tracker.history["return"] == [5.0] * 4
    assert tracker.history["episode_length"] == [5.0] * 4


def test_termination_is_stored_as_terminated_not_truncated():
    env = cartpole()
    buffer = make_buffer(env)
    run(env, RecordingAgent(action=0), buffer, 40, learning_starts=0)
    stored = contents(buffer)
    assert stored["terminated"].any() and not stored["truncated"].any()
    first_end = int(np.flatnonzero(stored["terminated"])[0])
    # After the end, the next transition starts from a fresh reset, not from s'.
    assert not np.array_equal(stored["observations"][first_end + 1],
                              stored["next_observations"][first_end])
    assert np.abs(stored["observations"][first_end + 1]).max() <= 0.05


# ------------------------------------------------------------------------------- evaluation


def test_evaluation_at_eval_every_multiples():
    env, eval_env = cartpole(), cartpole(max_episode_steps=20)
    buffer = make_buffer(env)
    agent = RecordingAgent(good=lambda n: n < 60)  # learning_starts 0: n_updates == step
    tracker = run(env, agent, buffer, 150, learning_starts=0, eval_env=eval_env, eval_every=50,
                  eval_episodes=3, log_every=1000, seed=5)
    assert tracker.steps("eval_return") == [50, 100, 150]
    assert tracker.steps("eval_return_std") == [50, 100, 150]
    # Each evaluation row, then the row the run ends with (where a continued run starts).
    assert tracker.steps("train_seconds") == [50, 100, 150, 150]
    assert tracker.steps("env_steps") == [150]
    assert set(tracker.keys) == {"return", "episode_length", "eval_return", "eval_return_std",
                                 "train_seconds", "env_steps", "steps_per_second", "loss", "fake"}
    # The greedy policy on the same evaluation seeds each time.
    good = evaluate(eval_env, AgentPolicy(RecordingAgent()), 3, seed=5 + EVAL_SEED_OFFSET)
    bad = evaluate(eval_env, AgentPolicy(RecordingAgent(good=lambda n: False)), 3,
                   seed=5 + EVAL_SEED_OFFSET)
    assert good.mean() == 20.0 and bad.mean() < 20.0
    assert tracker.history["eval_return"] == [good.mean(), bad.mean(), bad.mean()]
    assert tracker.history["eval_return_std"] == [good.std(), bad.std(), bad.std()]
    seconds = tracker.history["train_seconds"]
    assert seconds == sorted(seconds) and seconds[0] >= 0


def test_evaluation_time_is_not_training_time(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(loops, "time", types.SimpleNamespace(perf_counter=clock.perf_counter))
    env, eval_env = cartpole(), cartpole(max_episode_steps=5)
    agent = RecordingAgent(clock=clock)  # 1 s per training step, 100 s per evaluation step
    tracker = run(env, agent, make_buffer(env), 100, learning_starts=0, eval_env=eval_env,
                  eval_every=50, eval_episodes=1, log_every=100)
    assert clock.now == 100 + 2 * 500
    assert tracker.steps("train_seconds") == [50, 100, 100]
    assert tracker.history["train_seconds"] == [50.0, 100.0, 100.0]
    assert tracker.history["steps_per_second"] == [1.0]


def test_on_evaluation_metrics_are_logged():
    env, eval_env = cartpole(), cartpole(max_episode_steps=10)
    calls = []

    def on_evaluation(step):
        calls.append(step)
        return {"probe": step / 10, "q_start": np.float32(2.5)}

    tracker = run(env, RecordingAgent(), make_buffer(env), 90, learning_starts=100,
                  eval_env=eval_env, eval_every=30, eval_episodes=1,
                  on_evaluation=on_evaluation)
    assert calls == [30, 60, 90]
    assert tracker.steps("probe") == [30, 60, 90]
    assert tracker.history["probe"] == [3.0, 6.0, 9.0]
    assert tracker.history["q_start"] == [2.5, 2.5, 2.5]


def test_solved_at_stops_at_the_first_good_evaluation():
    env, eval_env = cartpole(), cartpole(max_episode_steps=20)
    buffer = make_buffer(env)
    agent = RecordingAgent(good=lambda n: n >= 80)  # learning_starts 0: n_updates == step
    tracker = run(env, agent, buffer, 1000, learning_starts=0, eval_env=eval_env, eval_every=40,
                  eval_episodes=2, solved_at=20.0)
    assert tracker.steps("eval_return") == [40, 80]
    assert tracker.history["eval_return"][-1] == 20.0
    assert tracker.history["eval_return"][0] < 20.0
    assert len(buffer) == 80 and agent.n_updates == 80 and agent.acts[-1] == 79


def test_keep_best_restores_the_best_evaluation(capsys):
    env, eval_env = cartpole(), cartpole(max_episode_steps=20)
    agent = RecordingAgent(good=lambda n: 50 <= n < 100)  # n_updates == step
    tracker = run(env, agent, make_buffer(env), 150, learning_starts=0, eval_env=eval_env,
                  eval_every=50, eval_episodes=2, keep_best=True)
    returns = tracker.history["eval_return"]
    assert returns[0] == 20.0 and returns[1] < 20.0 and returns[2] < 20.0
    assert agent.n_updates == 50  # the agent of step 50, not the last one (150)
    assert "Restored the agent of step 50" in capsys.readouterr().out


def test_without_keep_best_the_last_agent_stays():
    env, eval_env = cartpole(), cartpole(max_episode_steps=20)
    agent = RecordingAgent(good=lambda n: 50 <= n < 100)
    run(env, agent, make_buffer(env), 150, learning_starts=0, eval_env=eval_env, eval_every=50,
        eval_episodes=2)
    assert agent.n_updates == 150


# ------------------------------------------------------------------------------- interruption


def test_keyboard_interrupt_in_update_keeps_everything_and_resume_continues(tmp_path, capsys):
    path = tmp_path / "run" / "checkpoint.pt"
    env = cartpole()
    buffer = make_buffer(env)
    agent = RecordingAgent(interrupt_at=100, buffer=buffer)  # update k comes at step 50 + k
    tracker = Tracker("dqn", x_label="environment steps")
    returned = run(env, agent, buffer, 300, tracker=tracker, learning_starts=50, log_every=50,
                   checkpoint=path)
    assert returned is tracker
    out = capsys.readouterr().out
    assert "Interrupted at step 150 of 300" in out and f"checkpoint written to {path}" in out
    assert agent.n_updates == 99 and len(buffer) == 150
    # Means of updates 1…50 (logged at step 100) and 51…99 (logged at the interruption).
    assert tracker.steps("loss") == [100, 150] and tracker.history["loss"] == [25.5, 75.0]
    assert tracker.steps("return")[-1] <= 150
    history = tracker.state_dict()["rows"]
    first_buffer = contents(buffer)

    payload = torch.load(path, weights_only=False)
    assert payload["state"]["step"] == 150
    assert payload["agent"]["n_updates"] == 99
    assert payload["buffer"]["size"] == 150
    assert payload["tracker"]["rows"] == history
    assert not path.with_name(path.name + ".tmp").exists()

    # Resume in a fresh process: new agent, buffer and tracker.
    env = cartpole()
    buffer = make_buffer(env, seed=1)
    agent = RecordingAgent(buffer=buffer)
    tracker = run(env, agent, buffer, 300, learning_starts=50, log_every=50, checkpoint=path)
    assert f"Resuming from {path} at step 150" in capsys.readouterr().out
    assert agent.acts == list(range(150, 300))  # total_steps counts all steps, both runs
    assert agent.n_updates == 99 + 150
    assert agent.buffer_sizes[0] == 151 and agent.buffer_sizes[-1] == 300
    assert len(buffer) == 300
    for name, values in first_buffer.items():  # the buffer came back with the checkpoint
        np.testing.assert_array_equal(contents(buffer, 150)[name], values, err_msg=name)
    rows = tracker.state_dict()["rows"]
    assert rows[:len(history)] == history  # the history of the first run is kept
    assert all(step > 150 for step, _ in rows[len(history):])
    assert tracker.name == "dqn"
    # Losses 100…149, 150…199 and 200…249 after the resume.
    assert tracker.steps("loss") == [100, 150, 200, 250, 300]
    assert tracker.history["loss"] == [25.5, 75.0, 124.5, 174.5, 224.5]
    assert torch.load(path, weights_only=False)["state"]["step"] == 300

    # Done: a third call with the same total has nothing left to do.
    agent = RecordingAgent()
    again = run(env, agent, make_buffer(env), 300, learning_starts=50, checkpoint=path)
    assert agent.acts == [] and agent.n_updates == 249
    assert again.state_dict()["rows"] == rows


def test_keyboard_interrupt_without_checkpoint(capsys):
    env = cartpole()
    buffer = make_buffer(env)
    agent = RecordingAgent(action=0, interrupt_at=15)  # update k at step k
    tracker = Tracker()
    assert run(env, agent, buffer, 100, tracker=tracker, learning_starts=0) is tracker
    out = capsys.readouterr().out
    assert "Interrupted at step 15 of 100" in out and "checkpoint" not in out
    assert len(buffer) == 15 and agent.n_updates == 14
    assert agent.acts == list(range(15))
    assert 0 < tracker.steps("return")[-1] <= 15  # a constant push ends an episode by then


def test_continue_after_interrupt_without_checkpoint():
    env = cartpole()
    buffer = make_buffer(env)
    agent = RecordingAgent(action=0, interrupt_at=15)
    tracker = Tracker()
    run(env, agent, buffer, 100, tracker=tracker, learning_starts=0)
    assert agent.acts == list(range(15))
    steps_before = tracker.steps("return")
    agent.interrupt_at = None
    run(env, agent, buffer, 100, tracker=tracker, learning_starts=0)
    assert agent.acts == list(range(100))  # not [0, …, 14, 0, …, 99]
    assert len(buffer) == 100
    steps = tracker.steps("return")
    assert steps[:len(steps_before)] == steps_before and steps == sorted(steps)


def test_checkpoint_every(tmp_path, monkeypatch):
    saved = []
    original = loops._save_checkpoint

    def spy(path, agent, buffer, tracker, state):
        saved.append((state.step, len(buffer)))
        original(path, agent, buffer, tracker, state)

    monkeypatch.setattr(loops, "_save_checkpoint", spy)
    env = cartpole()
    run(env, RecordingAgent(), make_buffer(env), 250, learning_starts=0, checkpoint_every=100,
        checkpoint=tmp_path / "c.pt")
    assert saved[:2] == [(100, 100), (200, 200)] and saved[-1] == (250, 250)
    assert torch.load(tmp_path / "c.pt", weights_only=False)["state"]["step"] == 250


def test_interrupt_during_evaluation_counts_training_time_once(tmp_path, monkeypatch, capsys):
    clock = FakeClock()
    monkeypatch.setattr(loops, "time", types.SimpleNamespace(perf_counter=clock.perf_counter))
    env, eval_env = cartpole(), cartpole(max_episode_steps=5)
    agent = RecordingAgent(clock=clock)  # 1 s per training step
    agent.seconds_per_evaluation_step = 0.0
    agent.interrupt_in_evaluation = 5  # the first evaluation (5 steps) passes, the second stops
    path = tmp_path / "c.pt"
    run(env, agent, make_buffer(env), 200, learning_starts=0, eval_env=eval_env, eval_every=50,
        eval_episodes=1, checkpoint=path)
    assert "Interrupted at step 100" in capsys.readouterr().out
    state = torch.load(path, weights_only=False)["state"]
    assert state["step"] == 100
    assert state["train_seconds"] == 100.0  # 100 training steps of 1 s, not 150


# ------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_loss_raises_naming_the_metric(bad):
    env = cartpole()
    agent = RecordingAgent(loss=lambda n: bad if n == 30 else 1.0)
    with pytest.raises(FloatingPointError, match=rf"the agent's 'loss' became {bad} at step 40"):
        run(env, agent, make_buffer(env), 100, learning_starts=0, log_every=20)
    assert agent.n_updates == 40


@pytest.mark.parametrize("kwargs, message", [
    ({"eval_every": 10}, "eval_every > 0 needs an eval_env"),
    ({"solved_at": 100.0}, "solved_at and keep_best need evaluations"),
    ({"keep_best": True}, "solved_at and keep_best need evaluations"),
    ({"total_steps": -1}, "total_steps must be an int >= 0"),
    ({"total_steps": 10.0}, "total_steps must be an int >= 0"),
    ({"train_every": 0}, "train_every must be an int >= 1"),
    ({"gradient_steps": 0}, "gradient_steps must be an int >= 1"),
    ({"batch_size": 2.5}, "batch_size must be an int >= 1"),
    ({"eval_episodes": 0}, "eval_episodes must be an int >= 1"),
    ({"log_every": 0}, "log_every must be an int >= 1"),
    ({"learning_starts": -1}, "learning_starts must be an int >= 0"),
    ({"eval_every": -5}, "eval_every must be an int >= 0"),
    ({"checkpoint_every": True}, "checkpoint_every must be an int >= 0"),
    ({"live_plot_every": -1}, "live_plot_every must be an int >= 0"),
])
def test_argument_errors(kwargs, message):
    env = cartpole()
    agent = RecordingAgent()
    kwargs = {"total_steps": 20, **kwargs}
    with pytest.raises(ValueError, match=message):
        train_off_policy(env, agent, make_buffer(env), progress=False, **kwargs)
    assert agent.acts == []


def test_zero_total_steps_does_nothing():
    env = cartpole()
    buffer = make_buffer(env)
    tracker = run(env, RecordingAgent(), buffer, 0)
    assert len(tracker) == 0 and len(buffer) == 0


# ------------------------------------------------------------------------------- DQN


def test_dqn_smoke_run():
    env, eval_env = cartpole(), cartpole(max_episode_steps=30)
    agent = DQNAgent(env.observation_space, env.action_space,
                     network=MLPConfig(4, 2, n_layers=1, size=32, activation="relu"),
                     learning_rate=1e-3, epsilon=linear_schedule(1.0, 0.1, 300),
                     target_update_every=50, device="cpu", seed=0)
    buffer = make_buffer(env)
    start = torch.zeros(4)
    tracker = train_off_policy(
        env, agent, buffer, 400, seed=0, learning_starts=100, batch_size=32, eval_env=eval_env,
        eval_every=200, eval_episodes=2, log_every=100, progress=False,
        on_evaluation=lambda step: {"q_start": agent.policy.q_values(start).max()})
    assert agent.updates == 300 and len(buffer) == 400
    assert tracker.steps("loss") == [200, 300, 400] and tracker.steps("q") == [200, 300, 400]
    assert all(np.isfinite(tracker.history["loss"])) and all(np.isfinite(tracker.history["q"]))
    assert tracker.steps("eval_return") == [200, 400]
    assert all(1 <= r <= 30 for r in tracker.history["eval_return"])
    assert tracker.steps("q_start") == [200, 400]
    assert tracker.history["q_start"][-1] == pytest.approx(
        agent.policy.q_values(start).max().item())
    # Rewards of 1 a step: the Q-values have grown from their near-zero initialisation.
    assert tracker.history["q"][-1] > tracker.history["q"][0] > 0
    # The 300th update was a hard target update (every 50): the target is the online net.
    assert agent.target_network is not agent.q_network
    assert torch.equal(agent.target_network[0].weight, agent.q_network[0].weight)
