"""Unit tests of course_utils.loops.train_on_policy and course_utils.envs.vector: rollouts of
N environments, truncation bootstrap from the final observation, raw episode returns under
reward normalisation, evaluation schedule and seeds, interruption, checkpoints and resume."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from course_utils import loops
from course_utils.agents.actor_critic import A2CAgent
from course_utils.envs.vector import make_vector_env
from course_utils.loops import train_on_policy
from course_utils.tracking import Tracker

EVAL_SEED_OFFSET = 1_000_000


class Counter(gym.Env):
    """Observation ``[t]`` (the step within the episode), reward 1; never terminates by itself."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], dtype=np.float32), {}

    def step(self, action):
        self.t += 1
        return np.array([self.t], dtype=np.float32), 1.0, False, False, {}


class RecordingA2C(A2CAgent):
    """A small A2C that keeps a copy of each rollout it is given and can raise
    KeyboardInterrupt on update number ``interrupt_at``."""

    def __init__(self, env, interrupt_at=None, **kwargs):
        super().__init__(env.single_observation_space, env.single_action_space, n_layers=1,
                         size=8, device="cpu", seed=0, **kwargs)
        self.interrupt_at = interrupt_at
        self.rollouts = []

    def update(self, rollout):
        if self.interrupt_at is not None and self.updates + 1 == self.interrupt_at:
            raise KeyboardInterrupt
        self.rollouts.append({name: getattr(rollout, name).clone() for name in
                              ("observations", "rewards", "truncated", "terminated",
                               "bootstrap_values", "returns")})
        return super().update(rollout)


def counter_envs(n_envs=2, max_episode_steps=3):
    return gym.vector.SyncVectorEnv(
        [lambda: gym.wrappers.TimeLimit(Counter(), max_episode_steps)] * n_envs,
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


def test_rollouts_of_n_envs_and_truncation_bootstraps_from_the_final_observation():
    envs = counter_envs()
    agent = RecordingA2C(envs, gamma=0.5, gae_lambda=1.0)
    tracker = train_on_policy(envs, agent, 2 * 4 * 2, n_steps=4, seed=0, progress=False)
    assert len(agent.rollouts) == 2 and tracker.steps("env_steps") == [8, 16]
    first = agent.rollouts[0]
    # Same-step autoreset: after the truncation at t = 3 the stored observation is 0 again.
    np.testing.assert_array_equal(first["observations"][:, :, 0].numpy(), [[0, 0], [1, 1],
                                                                          [2, 2], [0, 0]])
    assert first["truncated"][:, 0].tolist() == [False, False, True, False]
    assert not first["terminated"].any()
    # The bootstrap is V of the final observation [3], computed with the policy of the rollout.
    value_of_3 = agent_value_before_update(envs, observation=3.0)
    assert first["bootstrap_values"][2].tolist() == pytest.approx([value_of_3] * 2, abs=1e-6)
    assert first["bootstrap_values"][[0, 1, 3]].abs().max() == 0
    # Returns at the truncated step: r + γ V([3]).
    assert first["returns"][2].tolist() == pytest.approx([1 + 0.5 * value_of_3] * 2, abs=1e-6)
    assert tracker.history["return"] == [3.0] * 4 and tracker.steps("return") == [6, 6, 12, 12]


def agent_value_before_update(envs, observation):
    fresh = RecordingA2C(envs)  # the same seed: the same initial critic
    return fresh.policy.value(torch.tensor([[observation]])).item()


def test_episode_returns_are_raw_under_reward_normalisation():
    envs = make_vector_env("CartPole-v1", 2, seed=0, normalize_reward=True)
    agent = RecordingA2C(envs)
    tracker = train_on_policy(envs, agent, 400, n_steps=20, seed=0, progress=False)
    stored = torch.cat([r["rewards"].flatten() for r in agent.rollouts])
    assert not torch.all(stored == 1.0)  # the agent learned from normalised rewards …
    returns, lengths = tracker.history["return"], tracker.history["episode_length"]
    assert len(returns) > 2 and returns == lengths  # … the tracker logs CartPole's own returns


def test_evaluation_after_each_multiple_with_fixed_seeds(monkeypatch):
    seeds = []
    original = loops.evaluate

    def spy(env, policy, n_episodes, seed=None, greedy=True):
        seeds.append((seed, n_episodes))
        return original(env, policy, n_episodes, seed=seed, greedy=greedy)

    monkeypatch.setattr(loops, "evaluate", spy)
    envs = make_vector_env("CartPole-v1", 4, seed=0)
    agent = RecordingA2C(envs)
    tracker = train_on_policy(envs, agent, 200, n_steps=5, seed=7, progress=False,
                              eval_env=gym.make("CartPole-v1", max_episode_steps=20),
                              eval_every=50, eval_episodes=2,
                              on_evaluation=lambda step: {"extra": step / 10})
    # Rollouts of 20 steps: the first update past 50, 100, 150, 200.
    assert tracker.steps("eval_return") == [60, 100, 160, 200]
    assert seeds == [(7 + EVAL_SEED_OFFSET, 2)] * 4
    assert tracker.history["extra"] == [6.0, 10.0, 16.0, 20.0]
    assert "train_seconds" in tracker.keys


def test_keep_best_and_solved_at():
    envs = make_vector_env("CartPole-v1", 2, seed=0)
    agent = RecordingA2C(envs)
    tracker = train_on_policy(envs, agent, 400, n_steps=10, seed=0, progress=False,
                              eval_env=gym.make("CartPole-v1"), eval_every=20, eval_episodes=1,
                              solved_at=0.0)  # any return reaches 0: stop at the first evaluation
    assert tracker.steps("eval_return") == [20] and agent.updates == 1


def test_keyboard_interrupt_keeps_history_and_checkpoint_resume_continues(tmp_path, capsys):
    path = tmp_path / "run.pt"
    envs = make_vector_env("CartPole-v1", 2, seed=0)
    agent = RecordingA2C(envs, interrupt_at=3)
    tracker = Tracker("a2c", x_label="environment steps")
    returned = train_on_policy(envs, agent, 200, n_steps=10, seed=0, progress=False,
                               tracker=tracker, checkpoint=path)
    assert returned is tracker
    out = capsys.readouterr().out
    assert "Interrupted at step 60 of 200" in out and f"checkpoint written to {path}" in out
    assert agent.updates == 2
    # Two updates logged at 20 and 40, and the interrupted rollout's steps at 60.
    assert tracker.steps("env_steps") == [20, 40, 60] and tracker.steps("loss") == [20, 40]
    history = tracker.state_dict()["rows"]
    payload = torch.load(path, weights_only=False)
    assert payload["state"]["step"] == 60 and payload["agent"]["updates"] == 2

    # A fresh agent and tracker resume from the file.
    envs = make_vector_env("CartPole-v1", 2, seed=0)
    agent = RecordingA2C(envs)
    tracker = train_on_policy(envs, agent, 200, n_steps=10, seed=0, progress=False,
                              checkpoint=path)
    assert f"Resuming from {path} at step 60" in capsys.readouterr().out
    assert agent.updates == 2 + 7 and agent.env_steps == 40 + 140
    rows = tracker.state_dict()["rows"]
    assert rows[:len(history)] == history and tracker.name == "a2c"
    assert tracker.steps("loss") == [20, 40] + list(range(80, 201, 20))


def test_continue_after_interrupt_without_checkpoint(capsys):
    envs = make_vector_env("CartPole-v1", 2, seed=0)
    agent = RecordingA2C(envs, interrupt_at=2)
    tracker = train_on_policy(envs, agent, 100, n_steps=10, seed=0, progress=False)
    assert "checkpoint" not in capsys.readouterr().out and tracker.last("env_steps") == 40
    agent.interrupt_at = None
    train_on_policy(envs, agent, 100, n_steps=10, seed=0, progress=False, tracker=tracker)
    assert tracker.last("env_steps") == 100 and agent.updates == 1 + 3


@pytest.mark.parametrize("kwargs, message", [
    ({"n_steps": 0}, "n_steps must be an int >= 1"),
    ({"eval_every": 10}, "eval_every > 0 needs an eval_env"),
    ({"keep_best": True}, "keep_best need evaluations"),
    ({"eval_episodes": 0}, "eval_episodes must be an int >= 1"),
    ({"checkpoint_every": -1}, "checkpoint_every must be an int >= 0"),
])
def test_argument_errors(kwargs, message):
    envs = make_vector_env("CartPole-v1", 2, seed=0)
    kwargs = {"n_steps": 5, **kwargs}
    with pytest.raises(ValueError, match=message):
        train_on_policy(envs, RecordingA2C(envs), 20, progress=False, **kwargs)


def test_envs_must_autoreset_in_the_same_step():
    envs = gym.make_vec("CartPole-v1", num_envs=2)  # NEXT_STEP, gymnasium's default
    with pytest.raises(ValueError, match="SAME_STEP"):
        train_on_policy(envs, RecordingA2C(envs), 20, n_steps=5, progress=False)
    with pytest.raises(ValueError, match="VectorEnv"):
        train_on_policy(gym.make("CartPole-v1"), RecordingA2C(envs), 20, n_steps=5,
                        progress=False)


def test_make_vector_env_seeds_and_wraps():
    first = make_vector_env("CartPole-v1", 3, seed=4)
    second = make_vector_env("CartPole-v1", 3, seed=4)
    assert first.num_envs == 3
    assert first.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP
    np.testing.assert_array_equal(first.reset(seed=4)[0], second.reset(seed=4)[0])
    assert isinstance(make_vector_env("CartPole-v1", 2, normalize_reward=True),
                      gym.wrappers.vector.NormalizeReward)
    with pytest.raises(ValueError, match="n_envs must be an int >= 1"):
        make_vector_env("CartPole-v1", 0)
