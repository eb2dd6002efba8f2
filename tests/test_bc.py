"""Unit tests of behaviour cloning (course_utils.agents.bc) and the PushT evaluation protocol
(course_utils.envs.pusht_eval)."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

import course_utils.envs  # noqa: F401  (registers PushT)
from course_utils.agents.bc import (
    BCAgent,
    HistoryPolicy,
    bc_mse_loss,
    dagger,
    history_space,
    previous_and_current,
    pusht_features,
    pusht_history_features,
    pusht_history_frame,
    pusht_pusher_frame,
    train_bc,
)
from course_utils.envs.pusht_demos import load_demos
from course_utils.envs.pusht_eval import evaluate_pusht
from course_utils.envs.pusht_expert import PushTExpert, evaluate_expert
from course_utils.trajectory import evaluate

OBS = gym.spaces.Box(np.array([0.0, -2.0, 0.0], np.float32), np.array([10.0, 2.0, 1.0], np.float32))
ACT = gym.spaces.Box(np.array([0.0, -1.0], np.float32), np.array([512.0, 1.0], np.float32))


def toy_data(n=512, seed=0):
    """Actions a smooth function of the observation, in the action space's units."""
    rng = np.random.default_rng(seed)
    obs = rng.uniform(OBS.low, OBS.high, (n, 3))
    unit = np.stack([np.tanh(obs[:, 0] / 5 - 1 + obs[:, 1]), np.sin(obs[:, 2] * 3)], axis=1) * 0.9
    return obs, ACT.low + (unit + 1) / 2 * (ACT.high - ACT.low)


def test_policy_maps_observations_to_actions_in_the_action_space():
    agent = BCAgent(OBS, ACT, n_layers=2, size=16, device="cpu", seed=0)
    obs, _ = toy_data(7)
    assert agent.policy(torch.as_tensor(obs, dtype=torch.float32)).shape == (7, 2)
    actions = agent.policy.greedy_action(obs)
    assert actions.shape == (7, 2) and np.all(actions >= ACT.low) and np.all(actions <= ACT.high)
    assert agent.policy.get_action(obs[0]).shape == (2,)


def test_normalisation_round_trips_and_spans_the_bounds():
    policy = BCAgent(OBS, ACT, device="cpu").policy
    obs = torch.zeros(3, 3)
    env_actions = torch.tensor([[0.0, -1.0], [512.0, 1.0], [128.0, 0.5]])
    unit = policy.to_unit(env_actions, obs)
    assert torch.allclose(unit, torch.tensor([[-1.0, -1.0], [1.0, 1.0], [-0.5, 0.5]]))
    assert torch.allclose(policy.to_env(unit, obs), env_actions)
    assert torch.allclose(policy.inputs(torch.tensor([[10.0, -2.0, 0.5]])), torch.tensor([[1.0, -1.0, 0.0]]))


def test_actions_in_the_pusher_frame_are_moves_along_the_block_axes():
    env = gym.make("course_utils/PushT-v0")
    policy = BCAgent(env.observation_space, env.action_space, features=pusht_features,
                     action_frame=pusht_pusher_frame, action_scale=100.0, device="cpu").policy
    # Block angle 0: the block's axes are the world's; π/2: its x axis is the world's y axis.
    obs = torch.tensor([[100.0, 200.0, 0, 0, 0], [500.0, 10.0, 0, 0, 0], [100.0, 200.0, 0, 0, math.pi / 2]])
    unit = policy.to_unit(torch.tensor([[150.0, 180.0], [512.0, 0.0], [150.0, 180.0]]), obs)
    assert torch.allclose(unit, torch.tensor([[0.5, -0.2], [0.12, -0.1], [-0.2, -0.5]]), atol=1e-6)
    # Mapped back and clipped to the workspace.
    assert torch.allclose(policy.to_env(torch.tensor([[0.5, -0.2], [1.0, -1.0], [-0.2, -0.5]]), obs),
                          torch.tensor([[150.0, 180.0], [512.0, 0.0], [150.0, 180.0]]), atol=1e-4)
    # One observation (no batch axis), as when acting.
    assert np.allclose(policy.greedy_action(np.array([100.0, 200.0, 0, 0, 0])).shape, (2,))


def test_pusht_features_are_normalised_and_continuous_in_the_angle():
    obs = torch.tensor([[0.0, 512.0, 256.0, 256.0, 0.0], [0.0, 512.0, 256.0, 256.0, 2 * math.pi - 1e-6]])
    features = pusht_features(obs)
    assert features.shape == (2, 12)
    assert torch.allclose(features[:, :4], torch.tensor([-1.0, 1.0, 0.0, 0.0]).expand(2, 4))
    assert torch.allclose(features[0], features[1], atol=1e-5)  # 0 and 2π are the same pose
    # The pusher 100 px along the block's x axis, the block turned by π/2: local (100, 0) / 128.
    turned = pusht_features(torch.tensor([[256.0, 356.0, 256.0, 256.0, math.pi / 2]]))
    assert torch.allclose(turned[0, 6:8], torch.tensor([100 / 128, 0.0]), atol=1e-6)
    # At the goal pose the error to the goal is zero and there is no angle left to turn.
    at_goal = pusht_features(torch.tensor([[0.0, 0.0, 256.0, 256.0, math.pi / 4]]))
    assert torch.allclose(at_goal[0, 8:], torch.tensor([0.0, 0.0, 1.0, 0.0]), atol=1e-6)
    # The goal's centre of gravity 45 px along the block's x axis (angle π/4 again).
    shifted = torch.tensor([[0.0, 0.0, 256.0 - 45 / math.sqrt(2), 256.0 - 45 / math.sqrt(2), math.pi / 4]])
    assert torch.allclose(pusht_features(shifted)[0, 8:10], torch.tensor([45 / 128, 0.0]), atol=1e-5)


def test_training_decreases_the_loss_on_a_toy_set():
    obs, actions = toy_data()
    agent = BCAgent(OBS, ACT, n_layers=2, size=64, learning_rate=3e-3, device="cpu", seed=0)
    tracker = train_bc(agent, obs, actions, epochs=60, batch_size=64, progress=False)
    losses = tracker.history["train_loss"]
    assert len(losses) == 60 and tracker.steps("train_loss") == list(range(1, 61))
    assert losses[-1] < 0.1 * losses[0]
    predicted = agent.policy.greedy_action(obs)
    assert np.abs(predicted - actions)[:, 0].mean() < 0.05 * 512


def test_a_continued_run_counts_epochs_on():
    obs, actions = toy_data(64)
    agent = BCAgent(OBS, ACT, n_layers=1, size=8, device="cpu", seed=0)
    tracker = train_bc(agent, obs, actions, epochs=2, progress=False)
    train_bc(agent, obs, actions, epochs=3, tracker=tracker, progress=False)
    assert tracker.steps("train_loss") == [1, 2, 3, 4, 5]


def test_the_students_loss_fn_is_called_and_trains_the_policy():
    calls = []

    def student_loss(predicted, demonstrated):
        calls.append((predicted.shape, demonstrated.shape))
        return ((predicted - demonstrated).abs()).mean()  # any differentiable loss trains it

    obs, actions = toy_data(256)
    agent = BCAgent(OBS, ACT, n_layers=2, size=32, learning_rate=3e-3, loss_fn=student_loss,
                    device="cpu", seed=0)
    tracker = train_bc(agent, obs, actions, epochs=20, batch_size=64, progress=False)
    assert len(calls) == 20 * 4 and calls[0] == ((64, 2), (64, 2))
    assert tracker.history["train_loss"][-1] < 0.5 * tracker.history["train_loss"][0]


def test_a_zero_loss_gets_a_zero_update_and_the_default_is_mse():
    obs, actions = toy_data(8)
    agent = BCAgent(OBS, ACT, n_layers=1, size=8, device="cpu", seed=0)
    batch = torch.as_tensor(obs, dtype=torch.float32), torch.as_tensor(actions, dtype=torch.float32)
    expected = bc_mse_loss(agent.policy(batch[0]), agent.policy.to_unit(batch[1], batch[0])).item()
    assert agent.update(*batch).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("loss_fn, message", [
    (lambda p, a: (p - a) ** 2, "scalar tensor"),
    (lambda p, a: ((p - a) ** 2).mean().item(), "scalar tensor"),
    (lambda p, a: ((p.detach() - a) ** 2).mean(), "detached"),
])
def test_a_bad_loss_fn_is_refused_with_a_clear_error(loss_fn, message):
    obs, actions = toy_data(16)
    agent = BCAgent(OBS, ACT, n_layers=1, size=8, loss_fn=loss_fn, device="cpu")
    with pytest.raises(ValueError, match=message):
        train_bc(agent, obs, actions, epochs=1, progress=False)


def test_bad_arguments_are_named():
    obs, actions = toy_data(16)
    agent = BCAgent(OBS, ACT, n_layers=1, size=8, device="cpu")
    with pytest.raises(ValueError, match="observations must have shape \\(N, 3\\)"):
        train_bc(agent, obs[:, :2], actions, epochs=1, progress=False)
    with pytest.raises(ValueError, match="actions must have shape \\(N, 2\\)"):
        train_bc(agent, obs, actions[:, 0], epochs=1, progress=False)
    with pytest.raises(ValueError, match="same, non-zero length"):
        train_bc(agent, obs, actions[:8], epochs=1, progress=False)
    with pytest.raises(ValueError, match="epochs"):
        train_bc(agent, obs, actions, epochs=-1, progress=False)
    with pytest.raises(ValueError, match="eval_every > 0 needs evaluate"):
        train_bc(agent, obs, actions, epochs=1, eval_every=1, progress=False)
    with pytest.raises(TypeError, match="loss_fn must be callable"):
        BCAgent(OBS, ACT, loss_fn="mse")
    with pytest.raises(ValueError, match="action_space must be bounded"):
        BCAgent(OBS, gym.spaces.Box(-np.inf, np.inf, (2,)))
    with pytest.raises(ValueError, match="observation_space is unbounded"):
        BCAgent(gym.spaces.Box(-np.inf, np.inf, (3,)), ACT)
    with pytest.raises(ValueError, match="action_space must be a one-dimensional Box"):
        BCAgent(OBS, gym.spaces.Discrete(3))


def test_a_nan_loss_raises():
    obs, actions = toy_data(16)
    obs[0, 0] = np.nan
    agent = BCAgent(OBS, ACT, n_layers=1, size=8, device="cpu")
    with pytest.raises(FloatingPointError, match="BC loss is nan"):
        train_bc(agent, obs, actions, epochs=1, progress=False)


def test_an_interrupt_keeps_the_policy_and_the_history(capsys):
    obs, actions = toy_data(64)
    calls = []

    def interrupting_loss(predicted, demonstrated):
        calls.append(1)
        if len(calls) == 3 * 4 + 2:  # the third minibatch of epoch 4 (4 minibatches an epoch)
            raise KeyboardInterrupt
        return ((predicted - demonstrated) ** 2).mean()

    agent = BCAgent(OBS, ACT, n_layers=1, size=8, loss_fn=interrupting_loss, device="cpu", seed=0)
    before = [p.detach().clone() for p in agent.policy.parameters()]
    tracker = train_bc(agent, obs, actions, epochs=10, batch_size=16, progress=False)
    assert tracker.steps("train_loss") == [1, 2, 3]
    assert "Interrupted" in capsys.readouterr().out
    assert any(not torch.equal(b, p) for b, p in zip(before, agent.policy.parameters()))


def test_periodic_evaluation_is_logged_every_eval_every_epochs_and_at_the_end():
    obs, actions = toy_data(32)
    agent = BCAgent(OBS, ACT, n_layers=1, size=8, device="cpu")
    seen = []
    tracker = train_bc(agent, obs, actions, epochs=5, eval_every=2, progress=False,
                       evaluate=lambda a: seen.append(a) or {"coverage": 0.5})
    assert tracker.steps("coverage") == [2, 4, 5] and seen == [agent] * 3


def test_state_dict_round_trip():
    obs, actions = toy_data(32)
    agent = BCAgent(OBS, ACT, n_layers=1, size=8, device="cpu", seed=0)
    train_bc(agent, obs, actions, epochs=2, progress=False)
    other = BCAgent(OBS, ACT, n_layers=1, size=8, device="cpu", seed=1)
    other.load_state_dict(agent.state_dict())
    assert np.allclose(other.policy.greedy_action(obs), agent.policy.greedy_action(obs))


def test_the_policy_works_with_the_course_evaluate_loop():
    env = gym.make("course_utils/PushT-v0", max_episode_steps=5)
    agent = BCAgent(env.observation_space, env.action_space, n_layers=1, size=8, features=pusht_features,
                    device="cpu", seed=0)
    returns = evaluate(env, agent.policy, n_episodes=2, seed=0)
    assert returns.shape == (2,) and np.all(returns >= 0)


# ---------------------------------------------------------------------- evaluation protocol

def test_the_protocol_on_the_scripted_expert_gives_the_experts_numbers():
    scores = evaluate_pusht(PushTExpert(), seeds=range(3))
    again = evaluate_expert(range(3))
    for key in ("max_coverage", "success", "steps"):
        assert scores[key].shape == (3,) and np.array_equal(scores[key], again[key])
    assert scores["success"].all() and np.all(scores["max_coverage"] > 0.95)
    assert scores["mean_max_coverage"] == pytest.approx(scores["max_coverage"].mean())
    assert scores["success_rate"] == 1.0 and np.all(scores["steps"] < 300)


def test_the_protocol_takes_the_maximum_over_the_episode_not_the_last_coverage():
    # A policy that pushes the block out of place after step 40 by moving the pusher through it.
    expert = PushTExpert()
    steps = []

    def spoiler(obs):
        steps.append(1)
        return expert(obs) if len(steps) <= 40 else np.array([256.0, 256.0])

    spoiler.reset = lambda: (expert.reset(), steps.clear())
    env = gym.make("course_utils/PushT-v0")
    obs, info = env.reset(seed=0)
    expert.reset()
    best = info["coverage"]
    for _ in range(40):
        obs, _, terminated, _, info = env.step(expert(obs))
        best = max(best, info["coverage"])
    scores = evaluate_pusht(spoiler, seeds=[0], max_steps=80)
    assert scores["steps"][0] == 80 and scores["max_coverage"][0] >= best
    assert not scores["success"][0]


def test_the_protocol_accepts_agents_plain_functions_and_names_bad_arguments():
    env = gym.make("course_utils/PushT-v0")
    agent = BCAgent(env.observation_space, env.action_space, n_layers=1, size=8, features=pusht_features,
                    device="cpu", seed=0)
    by_agent = evaluate_pusht(agent, seeds=[1], max_steps=3)
    by_policy = evaluate_pusht(agent.policy.greedy_action, seeds=[1], max_steps=3)
    assert by_agent["max_coverage"] == pytest.approx(by_policy["max_coverage"])
    with pytest.raises(ValueError, match="seeds"):
        evaluate_pusht(agent, seeds=[-1])
    with pytest.raises(ValueError, match="seeds must name at least one seed"):
        evaluate_pusht(agent, seeds=[])
    with pytest.raises(TypeError, match="policy must be callable"):
        evaluate_pusht(42)


# ---------------------------------------------------------------------------------- DAgger

def test_dagger_labels_the_learners_states_with_the_expert():
    demos = load_demos()
    env = gym.make("course_utils/PushT-v0")
    agent = BCAgent(env.observation_space, env.action_space, n_layers=1, size=16, features=pusht_features,
                    device="cpu", seed=0)
    end = demos.episode_ends[1]
    obs, actions, tracker = dagger(agent, PushTExpert(), demos.observations[:end], demos.actions[:end],
                                   iterations=1, episodes_per_iteration=1, epochs=1, progress=False)
    # An untrained learner never succeeds: a whole 300-step episode of new states was added.
    assert len(obs) == end + 300 and tracker.last("dagger_states") == end + 300
    expert = PushTExpert()
    env.reset(seed=10_000)
    expert.reset()
    assert np.allclose(actions[end], expert(obs[end]))  # the first new state, labelled by the expert
    assert np.array_equal(obs[:end], demos.observations[:end])
    with pytest.raises(ValueError, match="beta"):
        dagger(agent, PushTExpert(), obs, actions, iterations=1, beta=2.0)


def test_cosine_decay_anneals_the_learning_rate_to_zero_and_restores_it():
    obs, actions = toy_data(256)
    agent = BCAgent(OBS, ACT, n_layers=1, size=16, learning_rate=1e-2, device="cpu", seed=0)
    rates = []

    def recording_loss(predicted, demonstrated):
        rates.append(agent.optimizer.param_groups[0]["lr"])
        return bc_mse_loss(predicted, demonstrated)

    agent.loss_fn = recording_loss
    train_bc(agent, obs, actions, epochs=4, batch_size=64, cosine_decay=True, progress=False)
    # 4 epochs of 4 minibatches: lr · (1 + cos(π k / 16)) / 2 for k = 0 … 15.
    expected = [1e-2 * (1 + math.cos(math.pi * k / 16)) / 2 for k in range(16)]
    assert np.allclose(rates, expected) and rates[-1] < 1e-4
    assert agent.optimizer.param_groups[0]["lr"] == 1e-2  # the agent's own rate afterwards
    rates.clear()
    train_bc(agent, obs, actions, epochs=1, batch_size=64, progress=False)
    assert rates == [1e-2] * 4  # without the decay, the constant rate


def test_previous_and_current_pairs_restart_at_every_episode():
    obs = np.arange(10.0).reshape(5, 2)  # two episodes: steps 0-2 and 3-4
    pairs = previous_and_current(obs, episode_ends=[3, 5])
    np.testing.assert_array_equal(pairs, [[0, 1, 0, 1], [0, 1, 2, 3], [2, 3, 4, 5],
                                          [6, 7, 6, 7], [6, 7, 8, 9]])
    with pytest.raises(ValueError, match="episode_ends"):
        previous_and_current(obs, episode_ends=[3, 4])
    space = history_space(OBS)
    assert space.shape == (6,) and np.all(space.low == np.tile(OBS.low, 2))


def test_pusht_history_features_add_the_motion_since_the_previous_state():
    state = torch.tensor([100.0, 200.0, 256.0, 256.0, 0.3])
    moved = state + torch.tensor([12.8, 0.0, 0.0, 0.0, 0.0])  # the pusher moved 12.8 px along x
    still = pusht_history_features(torch.cat([state, state]))
    assert still.shape == (24,) and torch.allclose(still[12:], torch.zeros(12))
    assert torch.allclose(still[:12], pusht_features(state))
    motion = pusht_history_features(torch.cat([state, moved]))[12:]
    assert torch.allclose(motion[0], torch.tensor(10 * 12.8 / 256), atol=1e-6)  # the scaled x position
    origin, rotation = pusht_history_frame(torch.cat([state, moved]))
    assert torch.allclose(origin, moved[:2])


def test_history_policy_feeds_the_previous_observation_and_forgets_it_on_reset():
    seen = []

    class Recorder:
        def greedy_action(self, pair):
            seen.append(pair.copy())
            return pair[-2:]

    policy = HistoryPolicy(Recorder())
    first, second = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    policy.greedy_action(first)
    np.testing.assert_array_equal(policy(second), [3.0, 4.0])
    policy.reset()
    policy.get_action(second)
    np.testing.assert_array_equal(np.array(seen), [[1, 2, 1, 2], [1, 2, 3, 4], [3, 4, 3, 4]])


def test_the_pusht_constants_of_the_features_are_the_environments():
    from course_utils.agents import bc
    from course_utils.envs.pusht import BLOCK_COG, GOAL_POSE

    assert BLOCK_COG == (0.0, bc._COG_Y) and GOAL_POSE[2] == bc._GOAL_ANGLE
    rotation = np.array([[np.cos(GOAL_POSE[2]), -np.sin(GOAL_POSE[2])],
                         [np.sin(GOAL_POSE[2]), np.cos(GOAL_POSE[2])]])
    np.testing.assert_allclose(bc._GOAL_COG, GOAL_POSE[:2] + rotation @ np.array(BLOCK_COG))
