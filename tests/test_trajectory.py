"""Unit tests of course_utils.trajectory: building and sampling trajectories, evaluating a policy."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

from course_utils.trajectory import (
    ExperienceData,
    Trajectory,
    TrajectoryBuilder,
    action_function,
    env_action,
    evaluate,
    sample_trajectories,
    sample_trajectory,
)


def always_zero(observation):
    return 0


def balance(observation):
    """A good CartPole controller: push towards the side the pole is falling to."""
    return int(observation[2] + 0.5 * observation[3] > 0)


@pytest.fixture
def cartpole():
    env = gym.make("CartPole-v1")
    yield env
    env.close()


def build(rewards, terminated=True, truncated=False, obs_dim=3, actions=None, final=True):
    """A finished trajectory with observations [t, t, t] and the given rewards."""
    builder = TrajectoryBuilder()
    n = len(rewards)
    for t, r in enumerate(rewards):
        last = t == n - 1
        action = t % 2 if actions is None else actions[t]
        builder.add_experience(np.full(obs_dim, t, dtype=np.float32), action, r,
                               terminated and last, truncated and last,
                               np.full(obs_dim, t + 1, dtype=np.float32) if final else None)
    return builder.trajectory


# ------------------------------------------------------------------------------- builder


def test_truncated_episode_is_not_marked_terminated():
    builder = TrajectoryBuilder()
    assert builder.add_experience(np.zeros(2), 0, 1.0, False, False) is False
    assert builder.add_experience(np.ones(2), 1, 1.0, False, True) is True
    traj = builder.trajectory
    np.testing.assert_array_equal(traj.terminated, [False, False])
    np.testing.assert_array_equal(traj.truncated, [False, True])


def test_terminated_episode_is_not_marked_truncated():
    builder = TrajectoryBuilder()
    builder.add_experience(np.zeros(2), 0, 1.0, False, False)
    builder.add_experience(np.ones(2), 1, 1.0, True, False)
    traj = builder.trajectory
    np.testing.assert_array_equal(traj.terminated, [False, True])
    np.testing.assert_array_equal(traj.truncated, [False, False])


def test_both_flags_recorded_as_given():
    builder = TrajectoryBuilder()
    assert builder.add_experience(np.zeros(2), 0, 1.0, np.bool_(True), np.bool_(True))
    traj = builder.trajectory
    assert traj.terminated.tolist() == [True] and traj.truncated.tolist() == [True]


def test_done_and_len():
    builder = TrajectoryBuilder()
    assert not builder.done and len(builder) == 0
    builder.add_experience(np.zeros(2), 0, 0.0, False, False)
    assert not builder.done and len(builder) == 1
    builder.add_experience(np.zeros(2), 0, 0.0, True, False)
    assert builder.done and len(builder) == 2


@pytest.mark.parametrize("terminated, truncated", [(True, False), (False, True)])
def test_add_after_end_raises(terminated, truncated):
    builder = TrajectoryBuilder()
    builder.add_experience(np.zeros(2), 0, 1.0, terminated, truncated)
    with pytest.raises(RuntimeError, match="add_experience.*already ended"):
        builder.add_experience(np.zeros(2), 0, 1.0, False, False)
    assert len(builder) == 1
    assert len(builder.trajectory) == 1


def test_reading_unfinished_trajectory_raises():
    builder = TrajectoryBuilder()
    with pytest.raises(RuntimeError, match="trajectory.*0 steps"):
        builder.trajectory
    builder.add_experience(np.zeros(2), 0, 1.0, False, False)
    builder.add_experience(np.zeros(2), 0, 1.0, False, False)
    with pytest.raises(RuntimeError, match="trajectory.*2 steps"):
        builder.trajectory


@pytest.mark.parametrize("bad", [np.zeros(3), np.zeros((2, 1)), np.float32(0.0)])
def test_observation_of_different_shape_raises(bad):
    builder = TrajectoryBuilder()
    builder.add_experience(np.zeros(2), 0, 1.0, False, False)
    with pytest.raises(ValueError, match=r"observation has shape .* \(2,\)"):
        builder.add_experience(bad, 0, 1.0, False, False)
    assert len(builder) == 1
    builder.add_experience(np.ones(2), 0, 1.0, True, False)  # still usable
    assert len(builder.trajectory) == 2


@pytest.mark.parametrize("reward", [np.nan, np.inf, -np.inf, np.float32("nan")])
def test_non_finite_reward_raises(reward):
    builder = TrajectoryBuilder()
    with pytest.raises(ValueError, match="reward must be finite"):
        builder.add_experience(np.zeros(2), 0, reward, True, False)
    assert len(builder) == 0 and not builder.done


def test_experience_data_is_frozen():
    exp = ExperienceData(np.zeros(2), 1, 0.5, False, True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        exp.reward = 1.0


# ------------------------------------------------------------------------------- Trajectory


def test_trajectory_arrays_shapes_dtypes():
    traj = build([1.0, 2.0, 3.5], terminated=False, truncated=True)
    assert isinstance(traj, Trajectory)
    assert len(traj) == 3
    assert traj.observations.shape == (3, 3)
    np.testing.assert_array_equal(traj.observations[:, 0], [0, 1, 2])
    assert traj.actions.shape == (3,)
    assert np.issubdtype(traj.actions.dtype, np.integer)
    np.testing.assert_array_equal(traj.actions, [0, 1, 0])
    assert traj.rewards.dtype == np.float32
    np.testing.assert_array_equal(traj.rewards, [1.0, 2.0, 3.5])
    assert traj.terminated.dtype == bool and traj.truncated.dtype == bool
    np.testing.assert_array_equal(traj.final_observation, [3, 3, 3])
    assert traj.total_reward == pytest.approx(6.5)
    assert isinstance(traj.total_reward, float)


def test_trajectory_continuous_actions_shape():
    actions = [np.array([0.1, -0.2]), np.array([0.3, 0.4])]
    traj = build([0.0, 1.0], actions=actions)
    assert traj.actions.shape == (2, 2)
    np.testing.assert_allclose(traj.actions, np.stack(actions))


def test_final_observation_none_when_not_given():
    assert build([1.0], final=False).final_observation is None


def test_final_observation_is_last_given():
    builder = TrajectoryBuilder()
    builder.add_experience(np.zeros(2), 0, 1.0, False, False, np.full(2, 7.0))
    builder.add_experience(np.zeros(2), 0, 1.0, False, True, np.full(2, 9.0))
    np.testing.assert_array_equal(builder.trajectory.final_observation, [9.0, 9.0])


# ------------------------------------------------------------------------------- action_function


class ConstantPolicy:
    def __init__(self, action):
        self.action = action
        self.calls = 0

    def get_action(self, observation):
        self.calls += 1
        return self.action


class ConstantAgent:
    def __init__(self, action):
        self.policy = ConstantPolicy(action)

    def update(self, trajectories):
        return {}


def test_action_function_agent():
    agent = ConstantAgent(1)
    act = action_function(agent)
    assert act(np.zeros(4)) == 1
    assert agent.policy.calls == 1


def test_action_function_policy():
    policy = ConstantPolicy(2)
    act = action_function(policy)
    assert act(np.zeros(4)) == 2 and policy.calls == 1


def test_action_function_callable():
    assert action_function(always_zero) is always_zero
    act = action_function(lambda obs: int(obs.sum()))
    assert act(np.ones(3)) == 3


def test_action_function_prefers_get_action_over_call():
    class Both(ConstantPolicy):
        def __call__(self, observation):
            raise AssertionError("__call__ used instead of get_action")

    assert action_function(Both(5))(np.zeros(1)) == 5


class NoPolicy:
    policy = None


@pytest.mark.parametrize("bad", [42, "policy", None, NoPolicy(), [always_zero]])
def test_action_function_bad_object(bad):
    with pytest.raises(TypeError, match="expected an agent, a policy .* or a callable"):
        action_function(bad)


# ------------------------------------------------------------------------------- sampling


def test_sample_cartpole_always_left(cartpole):
    traj = sample_trajectory(cartpole, always_zero, seed=0)
    assert 5 <= len(traj) <= 20
    assert traj.total_reward == len(traj)
    np.testing.assert_array_equal(traj.rewards, np.ones(len(traj)))
    assert traj.terminated[-1] and not traj.terminated[:-1].any()
    assert not traj.truncated.any()
    np.testing.assert_array_equal(traj.actions, np.zeros(len(traj)))
    assert traj.observations.shape == (len(traj), 4)
    assert traj.observations.dtype == np.float32
    assert traj.final_observation.shape == (4,)
    # The pole fell: the final observation is outside the angle limit (0.2095 rad).
    assert abs(traj.final_observation[2]) > 0.2
    # Consecutive observations chain: o_0's reset state is seeded, and o_T differs from o_{T-1}.
    assert not np.array_equal(traj.final_observation, traj.observations[-1])


def test_sample_is_deterministic_with_seed(cartpole):
    a = sample_trajectory(cartpole, balance, seed=3, max_steps=40)
    b = sample_trajectory(cartpole, balance, seed=3, max_steps=40)
    np.testing.assert_array_equal(a.observations, b.observations)
    np.testing.assert_array_equal(a.actions, b.actions)
    np.testing.assert_array_equal(a.final_observation, b.final_observation)
    c = sample_trajectory(cartpole, balance, seed=4, max_steps=40)
    assert not np.array_equal(a.observations[0], c.observations[0])


def test_sample_with_agent_and_policy(cartpole):
    agent = ConstantAgent(1)
    traj = sample_trajectory(cartpole, agent, seed=0)
    assert agent.policy.calls == len(traj)
    np.testing.assert_array_equal(traj.actions, np.ones(len(traj)))


@pytest.mark.parametrize("max_steps", [1, 5, 17])
def test_max_steps_recorded_as_truncation(cartpole, max_steps):
    traj = sample_trajectory(cartpole, balance, seed=0, max_steps=max_steps)
    assert len(traj) == max_steps
    assert traj.truncated[-1] and not traj.truncated[:-1].any()
    assert not traj.terminated.any()
    assert traj.final_observation is not None


def test_env_time_limit_recorded_as_truncation():
    env = gym.make("CartPole-v1", max_episode_steps=25)
    traj = sample_trajectory(env, balance, seed=0)
    assert len(traj) == 25
    assert traj.truncated[-1] and not traj.terminated.any()


class RecordActions(gym.Wrapper):
    """Remembers every action the environment was given."""

    def __init__(self, env):
        super().__init__(env)
        self.received = []

    def step(self, action):
        self.received.append(np.array(action, copy=True))
        return super().step(action)


def test_continuous_actions_clipped_only_for_the_env():
    env = RecordActions(gym.make("Pendulum-v1"))
    actions = iter([np.array([5.0], dtype=np.float32), np.array([-7.5], dtype=np.float32),
                    np.array([0.5], dtype=np.float32)])
    traj = sample_trajectory(env, lambda obs: next(actions), seed=0, max_steps=3)
    np.testing.assert_array_equal(traj.actions, [[5.0], [-7.5], [0.5]])
    assert traj.actions.dtype == np.float32
    np.testing.assert_array_equal(np.stack(env.received), [[2.0], [-2.0], [0.5]])


def test_clipped_action_gives_the_same_step_as_the_bound():
    """The environment really acted with 2.0: same trajectory as a policy returning 2.0."""
    env = gym.make("Pendulum-v1")
    big = sample_trajectory(env, lambda obs: np.array([5.0], np.float32), seed=1, max_steps=4)
    bound = sample_trajectory(env, lambda obs: np.array([2.0], np.float32), seed=1, max_steps=4)
    np.testing.assert_array_equal(big.observations, bound.observations)
    np.testing.assert_array_equal(big.rewards, bound.rewards)


BOX = gym.spaces.Box(-2.0, 2.0, (2,), np.float32)


def test_env_action_clips_box_actions():
    out = env_action(np.array([5.0, -0.5], np.float32), BOX)
    np.testing.assert_array_equal(out, [2.0, -0.5])
    np.testing.assert_array_equal(env_action(np.array([-3.0, 3.0]), BOX), [-2.0, 2.0])


def test_env_action_does_not_modify_the_stored_action():
    action = np.array([5.0, -7.0], np.float32)
    env_action(action, BOX)
    np.testing.assert_array_equal(action, [5.0, -7.0])


def test_env_action_tensors_become_numpy():
    out = env_action(torch.tensor([3.0, 1.0], requires_grad=True), BOX)
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, [2.0, 1.0])
    discrete = env_action(torch.tensor(1), gym.spaces.Discrete(3))
    assert type(discrete) is int and discrete == 1


@pytest.mark.parametrize("action", [np.array(2), np.array(2, dtype=np.int32),
                                    np.array(2, dtype=np.uint8)])
def test_env_action_zero_d_integer_array_becomes_int(action):
    out = env_action(action, gym.spaces.Discrete(3))
    assert type(out) is int and out == 2


@pytest.mark.parametrize("action", [1, np.int64(1), np.array([1, 0])])
def test_env_action_other_discrete_actions_unchanged(action):
    assert env_action(action, gym.spaces.MultiDiscrete([2, 2])) is action


def test_sample_with_tensor_actions(cartpole):
    traj = sample_trajectory(cartpole, lambda obs: torch.tensor(0), seed=0)
    assert traj.terminated[-1]
    assert traj.actions.tolist() == [0] * len(traj)


def test_discrete_actions_not_modified():
    env = RecordActions(gym.make("CartPole-v1"))
    sample_trajectory(env, always_zero, seed=0)
    assert all(a == 0 for a in env.received)


def test_sample_trajectories_reaches_min_timesteps_with_whole_episodes(cartpole):
    trajs = sample_trajectories(cartpole, always_zero, min_timesteps=50, seed=0)
    lengths = [len(t) for t in trajs]
    assert sum(lengths) >= 50
    assert sum(lengths) - lengths[-1] < 50  # stops as soon as the budget is reached
    for t in trajs:
        assert t.terminated[-1] or t.truncated[-1]
    # Only the first reset is seeded: later episodes start elsewhere.
    starts = {tuple(t.observations[0]) for t in trajs}
    assert len(starts) == len(trajs)
    again = sample_trajectories(cartpole, always_zero, min_timesteps=50, seed=0)
    assert [len(t) for t in again] == lengths
    for a, b in zip(trajs, again):
        np.testing.assert_array_equal(a.observations, b.observations)


def test_sample_trajectories_one_step(cartpole):
    trajs = sample_trajectories(cartpole, always_zero, min_timesteps=1, seed=0)
    assert len(trajs) == 1


def test_sample_trajectories_max_steps(cartpole):
    trajs = sample_trajectories(cartpole, balance, min_timesteps=20, seed=0, max_steps=7)
    assert [len(t) for t in trajs] == [7, 7, 7]
    assert all(t.truncated[-1] and not t.terminated.any() for t in trajs)


@pytest.mark.parametrize("bad", [0, -5])
def test_sample_trajectories_rejects_min_timesteps_below_one(cartpole, bad):
    with pytest.raises(ValueError, match="min_timesteps"):
        sample_trajectories(cartpole, always_zero, min_timesteps=bad)


# ------------------------------------------------------------------------------- evaluate


class LinearPolicy:
    """A small torch policy: greedy = the likelier action, get_action samples."""

    def __init__(self):
        torch.manual_seed(0)
        self.net = torch.nn.Linear(4, 2)

    def _logits(self, observation):
        return self.net(torch.as_tensor(observation, dtype=torch.float32))

    @torch.no_grad()
    def greedy_action(self, observation):
        return int(self._logits(observation).argmax())

    @torch.no_grad()
    def get_action(self, observation):
        return int(torch.distributions.Categorical(logits=self._logits(observation)).sample())


class GreedySpy:
    def __init__(self):
        self.greedy_calls = 0

    def greedy_action(self, observation):
        self.greedy_calls += 1
        return balance(observation)

    def get_action(self, observation):
        raise AssertionError("get_action used although greedy_action exists")


def test_evaluate_returns_n_episodes(cartpole):
    returns = evaluate(cartpole, ConstantPolicy(0), n_episodes=4, seed=0)
    assert isinstance(returns, np.ndarray) and returns.shape == (4,)
    expected = [sample_trajectory(cartpole, ConstantPolicy(0), seed=s).total_reward for s in range(4)]
    np.testing.assert_array_equal(returns, expected)


def test_evaluate_uses_greedy_action():
    policy = GreedySpy()
    returns = evaluate(gym.make("CartPole-v1", max_episode_steps=30), policy, n_episodes=2, seed=0)
    np.testing.assert_array_equal(returns, [30.0, 30.0])
    assert policy.greedy_calls == 60


def test_evaluate_not_greedy_uses_get_action(cartpole):
    class Both(ConstantPolicy):
        def greedy_action(self, observation):
            raise AssertionError("greedy_action used with greedy=False")

    returns = evaluate(cartpole, Both(0), n_episodes=2, seed=0, greedy=False)
    assert returns.shape == (2,)


def test_evaluate_callable_policy(cartpole):
    returns = evaluate(cartpole, lambda obs: 0, n_episodes=2, seed=1)
    assert returns.shape == (2,) and (returns > 0).all()


def test_evaluate_is_reproducible_and_uses_consecutive_seeds(cartpole):
    policy = LinearPolicy()
    a = evaluate(cartpole, policy, n_episodes=3, seed=10)
    np.testing.assert_array_equal(a, evaluate(cartpole, policy, n_episodes=3, seed=10))
    expected = [sample_trajectory(cartpole, policy.greedy_action, seed=s).total_reward
                for s in (10, 11, 12)]
    np.testing.assert_array_equal(a, expected)


def test_evaluate_sampling_reproducible_with_torch_seed(cartpole):
    policy = LinearPolicy()
    torch.manual_seed(1)
    a = evaluate(cartpole, policy, n_episodes=3, seed=0, greedy=False)
    torch.manual_seed(1)
    b = evaluate(cartpole, policy, n_episodes=3, seed=0, greedy=False)
    np.testing.assert_array_equal(a, b)
