"""Unit tests of behaviour cloning and DAgger (course_utils.agents.bc) and of the PushT evaluation
protocol (course_utils.envs.pusht_eval)."""

from __future__ import annotations

import dataclasses
import math

import gymnasium as gym
import numpy as np
import pytest
import torch

import course_utils.envs  # noqa: F401  (registers PushT)
from course_utils.agents.bc import (BCConfig, BCPolicy, DAggerConfig, HistoryPolicy, bc_update, dagger,
                                    history_space, train)
from course_utils.envs.pusht_demos import load_demos
from course_utils.envs.pusht_eval import evaluate_pusht
from course_utils.envs.pusht_expert import PushTExpert, evaluate_expert
from course_utils.envs.pusht_features import (previous_and_current, pusht_features, pusht_history_features,
                                              pusht_history_frame, pusht_pusher_frame)
from course_utils.trajectory import evaluate

OBS = gym.spaces.Box(np.array([0.0, -2.0, 0.0], np.float32), np.array([10.0, 2.0, 1.0], np.float32))
ACT = gym.spaces.Box(np.array([0.0, -1.0], np.float32), np.array([512.0, 1.0], np.float32))


def small(**changes) -> BCConfig:
    return BCConfig(**{"n_layers": 1, "size": 8, "epochs": 2, "batch_size": 16, "progress": False,
                       "device": "cpu", **changes})


def toy_data(n=512, seed=0):
    """Actions a smooth function of the observation, in the action space's units."""
    rng = np.random.default_rng(seed)
    obs = rng.uniform(OBS.low, OBS.high, (n, 3))
    unit = np.stack([np.tanh(obs[:, 0] / 5 - 1 + obs[:, 1]), np.sin(obs[:, 2] * 3)], axis=1) * 0.9
    return obs, ACT.low + (unit + 1) / 2 * (ACT.high - ACT.low)


# ------------------------------------------------------------------------------------ the policy

def test_policy_maps_observations_to_actions_in_the_action_space():
    policy = BCPolicy(OBS, ACT, small(n_layers=2, size=16))
    obs, _ = toy_data(7)
    assert policy(torch.as_tensor(obs, dtype=torch.float32)).shape == (7, 2)
    actions = policy.greedy_action(obs)
    assert actions.shape == (7, 2) and np.all(actions >= ACT.low) and np.all(actions <= ACT.high)
    assert policy.get_action(obs[0]).shape == (2,)


def test_the_seed_fixes_the_initial_weights():
    first, again, other = (BCPolicy(OBS, ACT, small(seed=s)) for s in (0, 0, 1))
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), again.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(first.parameters(), other.parameters()))


def test_normalisation_round_trips_and_spans_the_bounds():
    policy = BCPolicy(OBS, ACT, small())
    obs = torch.zeros(3, 3)
    env_actions = torch.tensor([[0.0, -1.0], [512.0, 1.0], [128.0, 0.5]])
    unit = policy.to_unit(env_actions, obs)
    assert torch.allclose(unit, torch.tensor([[-1.0, -1.0], [1.0, 1.0], [-0.5, 0.5]]))
    assert torch.allclose(policy.to_env(unit, obs), env_actions)


def test_actions_in_the_pusher_frame_are_moves_along_the_block_axes():
    env = gym.make("course_utils/PushT-v0")
    policy = BCPolicy(env.observation_space, env.action_space, small(action_scale=100.0),
                      pusht_features, pusht_pusher_frame)
    # Block angle 0: the block's axes are the world's; π/2: its x axis is the world's y axis.
    obs = torch.tensor([[100.0, 200.0, 0, 0, 0], [500.0, 10.0, 0, 0, 0], [100.0, 200.0, 0, 0, math.pi / 2]])
    unit = policy.to_unit(torch.tensor([[150.0, 180.0], [512.0, 0.0], [150.0, 180.0]]), obs)
    assert torch.allclose(unit, torch.tensor([[0.5, -0.2], [0.12, -0.1], [-0.2, -0.5]]), atol=1e-6)
    # Mapped back and clipped to the workspace.
    assert torch.allclose(policy.to_env(torch.tensor([[0.5, -0.2], [1.0, -1.0], [-0.2, -0.5]]), obs),
                          torch.tensor([[150.0, 180.0], [512.0, 0.0], [150.0, 180.0]]), atol=1e-4)
    assert policy.greedy_action(np.array([100.0, 200.0, 0, 0, 0])).shape == (2,)


def test_bad_arguments_of_the_policy_are_named():
    with pytest.raises(ValueError, match="action_space must be bounded"):
        BCPolicy(OBS, gym.spaces.Box(-np.inf, np.inf, (2,)), small())
    with pytest.raises(ValueError, match="observation_space is unbounded"):
        BCPolicy(gym.spaces.Box(-np.inf, np.inf, (3,)), ACT, small())
    with pytest.raises(ValueError, match="action_space must be a one-dimensional Box"):
        BCPolicy(OBS, gym.spaces.Discrete(3), small())
    with pytest.raises(ValueError, match="action_scale"):
        BCPolicy(OBS, ACT, small(action_scale=0.0))
    with pytest.raises(ValueError, match="size"):
        BCPolicy(OBS, ACT, small(size=0))


# ------------------------------------------------------------------------------ the update step

def test_bc_update_is_one_sgd_step_on_the_mean_squared_error_in_the_unit_frame():
    policy = BCPolicy(OBS, ACT, small(n_layers=0))  # a linear map: W u_in + b
    obs, actions = (torch.as_tensor(x, dtype=torch.float32) for x in toy_data(4))
    inputs = (obs - policy.obs_centre) / policy.obs_half
    target = 2 * actions / torch.tensor([512.0, 2.0]) - torch.tensor([1.0, 0.0])  # by hand
    weight, bias = (p.detach().clone() for p in policy.net.parameters())
    error = inputs @ weight.T + bias - target  # (B, d)
    expected_loss = (error ** 2).mean()
    # ∂L/∂W = 2/(B·d) Σ_i error_i inputs_iᵀ, ∂L/∂b = 2/(B·d) Σ_i error_i.
    grad_w, grad_b = 2 * error.T @ inputs / error.numel(), 2 * error.sum(0) / error.numel()
    optimizer = torch.optim.SGD(policy.parameters(), lr=0.1)
    for p in policy.parameters():  # a stale gradient that zero_grad must clear
        p.grad = torch.ones_like(p)
    loss = bc_update(policy, optimizer, obs, actions)
    assert loss.shape == () and not loss.requires_grad
    assert loss.item() == pytest.approx(expected_loss.item(), rel=1e-5)
    new_weight, new_bias = policy.net.parameters()
    assert torch.allclose(new_weight, weight - 0.1 * grad_w, atol=1e-6)
    assert torch.allclose(new_bias, bias - 0.1 * grad_b, atol=1e-6)


# ------------------------------------------------------------------------------------- training

def test_training_logs_every_epoch_and_learns_a_toy_set():
    obs, actions = toy_data()
    config = small(n_layers=2, size=64, epochs=60, batch_size=64, learning_rate=3e-3)
    policy, tracker = train(BCPolicy(OBS, ACT, config), obs, actions, config)
    losses = tracker.history["loss"]
    assert len(losses) == 60 and tracker.steps("loss") == list(range(1, 61))
    assert tracker.x_label == "epoch" and losses[-1] < 0.1 * losses[0]
    assert np.abs(policy.greedy_action(obs) - actions)[:, 0].mean() < 0.05 * 512


def test_the_students_update_is_called_with_minibatches_and_a_cosine_learning_rate():
    obs, actions = toy_data(256)
    config = small(epochs=4, batch_size=64, learning_rate=1e-2)
    calls, rates = [], []

    def student_update(policy, optimizer, observations, actions):
        calls.append((observations.shape, actions.shape))
        rates.append(optimizer.param_groups[0]["lr"])
        return bc_update(policy, optimizer, observations, actions)

    train(BCPolicy(OBS, ACT, config), obs, actions, config, update=student_update)
    assert len(calls) == 4 * 4 and calls[0] == ((64, 3), (64, 2))
    # 4 epochs of 4 minibatches: lr · (1 + cos(π k / 16)) / 2 for k = 0 … 15.
    assert np.allclose(rates, [1e-2 * (1 + math.cos(math.pi * k / 16)) / 2 for k in range(16)])
    rates.clear()
    train(BCPolicy(OBS, ACT, config), obs, actions, dataclasses.replace(config, cosine_decay=False),
          update=student_update)
    assert rates == [1e-2] * 16


def test_a_continued_run_counts_epochs_on_and_an_interrupt_keeps_the_history(capsys):
    obs, actions = toy_data(64)
    config = small(epochs=10)
    calls = []

    def interrupting(policy, optimizer, observations, actions):
        calls.append(1)
        if len(calls) == 3 * 4 + 2:  # in epoch 4 (4 minibatches an epoch)
            raise KeyboardInterrupt
        return bc_update(policy, optimizer, observations, actions)

    policy = BCPolicy(OBS, ACT, config)
    before = [p.detach().clone() for p in policy.parameters()]
    policy, tracker = train(policy, obs, actions, config, update=interrupting)
    assert tracker.steps("loss")[:3] == [1, 2, 3] and "Interrupted" in capsys.readouterr().out
    assert any(not torch.equal(b, p) for b, p in zip(before, policy.parameters()))
    policy, tracker = train(policy, obs, actions, config, tracker=tracker)  # continues to epoch 10
    assert tracker.last("env_steps") == 10  # TrainingRun's step count: epochs here


def test_periodic_evaluation_and_keep_best():
    obs, actions = toy_data(32)
    config = small(epochs=5, eval_every=2, keep_best=True)
    scores = iter([0.9, 0.1])
    seen = []

    def evaluate_policy(policy):
        seen.append([p.detach().clone() for p in policy.parameters()])
        return {"coverage": next(scores)}

    policy, tracker = train(BCPolicy(OBS, ACT, config), obs, actions, config, evaluate=evaluate_policy)
    assert tracker.steps("coverage") == [2, 4]
    assert all(torch.equal(a, b) for a, b in zip(seen[0], policy.parameters()))  # epoch 2's weights


def test_bad_training_arguments_are_named():
    obs, actions = toy_data(16)
    policy = BCPolicy(OBS, ACT, small())
    with pytest.raises(ValueError, match="observations must have shape \\(N, 3\\)"):
        train(policy, obs[:, :2], actions, small())
    with pytest.raises(ValueError, match="actions must have shape \\(N, 2\\)"):
        train(policy, obs, actions[:, 0], small())
    with pytest.raises(ValueError, match="same, non-zero length"):
        train(policy, obs, actions[:8], small())
    with pytest.raises(ValueError, match="epochs"):
        train(policy, obs, actions, small(epochs=-1))
    with pytest.raises(ValueError, match="batch_size"):
        train(policy, obs, actions, small(batch_size=0))
    with pytest.raises(ValueError, match="learning_rate"):
        train(policy, obs, actions, small(learning_rate=0.0))
    with pytest.raises(ValueError, match="eval_every > 0 needs an evaluate"):
        train(policy, obs, actions, small(eval_every=1))


def test_a_nan_loss_raises():
    obs, actions = toy_data(16)
    obs[0, 0] = np.nan
    with pytest.raises(FloatingPointError, match="'loss' became nan"):
        train(BCPolicy(OBS, ACT, small()), obs, actions, small())


def test_the_policy_works_with_the_course_evaluate_loop():
    env = gym.make("course_utils/PushT-v0", max_episode_steps=5)
    policy = BCPolicy(env.observation_space, env.action_space, small(), pusht_features)
    returns = evaluate(env, policy, n_episodes=2, seed=0)
    assert returns.shape == (2,) and np.all(returns >= 0)


# --------------------------------------------------------------------------- one step of memory

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
    space = history_space(OBS)
    assert space.shape == (6,) and np.all(space.low == np.tile(OBS.low, 2))


def test_a_history_policy_trains_on_pairs_and_acts_in_pusht():
    demos = load_demos()
    env = gym.make("course_utils/PushT-v0")
    end = demos.episode_ends[1]
    pairs = previous_and_current(demos.observations[:end], demos.episode_ends[:2])
    config = small(epochs=1, batch_size=256)
    policy = BCPolicy(history_space(env.observation_space), env.action_space, config,
                      pusht_history_features, pusht_history_frame)
    policy, tracker = train(policy, pairs, demos.actions[:end], config)
    assert len(tracker.history["loss"]) == 1
    scores = evaluate_pusht(HistoryPolicy(policy), seeds=[0], max_steps=3)
    assert scores["steps"][0] == 3


# ---------------------------------------------------------------------------------------- DAgger

def test_dagger_labels_the_learners_states_with_the_expert():
    demos = load_demos()
    env = gym.make("course_utils/PushT-v0")
    config = small(epochs=1, batch_size=256, size=16)
    policy = BCPolicy(env.observation_space, env.action_space, config, pusht_features, pusht_pusher_frame)
    end = demos.episode_ends[1]
    calls = []

    def student_update(*args):
        calls.append(1)
        return bc_update(*args)

    dagger_config = DAggerConfig(**{**dataclasses.asdict(config), "iterations": 1, "episodes": 1})
    obs, actions, tracker = dagger(policy, PushTExpert(), demos.observations[:end], demos.actions[:end],
                                   dagger_config, update=student_update,
                                   evaluate=lambda p: {"coverage": 0.5})
    assert len(calls) == -(-(end + 300) // 256)  # one epoch on the aggregate, with the given update
    # An untrained learner never succeeds: a whole 300-step episode of new states was added.
    assert len(obs) == end + 300 and tracker.last("states") == end + 300
    assert tracker.steps("coverage") == [1] and tracker.last("loss") > 0
    expert = PushTExpert()
    env.reset(seed=10_000)
    expert.reset()
    assert np.allclose(actions[end], expert(obs[end]))  # the first new state, labelled by the expert
    assert np.array_equal(obs[:end], demos.observations[:end])
    with pytest.raises(ValueError, match="beta"):
        dagger(policy, PushTExpert(), obs, actions, dataclasses.replace(dagger_config, beta=2.0))
    with pytest.raises(ValueError, match="episodes"):
        dagger(policy, PushTExpert(), obs, actions, dataclasses.replace(dagger_config, episodes=0))


# ------------------------------------------------------------------------- evaluation protocol

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


def test_the_protocol_accepts_policies_plain_functions_and_names_bad_arguments():
    env = gym.make("course_utils/PushT-v0")
    policy = BCPolicy(env.observation_space, env.action_space, small(), pusht_features)
    by_policy = evaluate_pusht(policy, seeds=[1], max_steps=3)
    by_function = evaluate_pusht(policy.greedy_action, seeds=[1], max_steps=3)
    assert by_policy["max_coverage"] == pytest.approx(by_function["max_coverage"])
    with pytest.raises(ValueError, match="seeds"):
        evaluate_pusht(policy, seeds=[-1])
    with pytest.raises(ValueError, match="seeds must name at least one seed"):
        evaluate_pusht(policy, seeds=[])
    with pytest.raises(TypeError, match="policy must be callable"):
        evaluate_pusht(42)
