"""agents/rlft.py: residual TD3 on a frozen BC policy (notebook 09)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import course_utils.envs  # noqa: F401  (registers PushT)
from course_utils.agents import rlft
from course_utils.agents.bc import BCConfig, BCPolicy, HistoryPolicy, history_space
from course_utils.buffers import ReplayBatch
from course_utils.envs.pusht import GOAL_POSE
from course_utils.envs.pusht_demos import load_demos
from course_utils.envs.pusht_eval import evaluate_pusht
from course_utils.envs.pusht_features import pusht_history_features, pusht_history_frame

torch.set_num_threads(1)


def make_bc(seed: int = 0) -> BCPolicy:
    env = gym.make("course_utils/PushT-v0")
    config = BCConfig(n_layers=2, size=32, seed=seed, device="cpu")
    return BCPolicy(history_space(env.observation_space), env.action_space, config, pusht_history_features,
                    pusht_history_frame)


def small_config(**changes) -> rlft.RLFTConfig:
    return rlft.RLFTConfig(**{"size": 32, "batch_size": 16, "progress": False, "eval_every": 0,
                              "keep_best": False, **changes})


def random_batch(agent: rlft.RLFTAgent, n: int = 16, seed: int = 0) -> ReplayBatch:
    generator = torch.Generator().manual_seed(seed)
    states = torch.cat([torch.rand(n, 4, generator=generator) * 512, torch.rand(n, 1, generator=generator) * 6,
                        torch.rand(n, 4, generator=generator) * 512, torch.rand(n, 1, generator=generator) * 6], 1)
    x = agent.encode(states)
    return ReplayBatch(x, torch.randn(n, 2, generator=generator) * 0.3, torch.rand(n, generator=generator),
                       agent.encode(states.flip(0)), torch.rand(n, generator=generator) < 0.2,
                       torch.zeros(n, dtype=torch.bool))


def test_starts_exactly_at_the_bc_policy():
    bc = make_bc()
    agent = rlft.RLFTAgent(bc, small_config())
    ours = evaluate_pusht(rlft.ResidualPolicy(agent), seeds=[3, 4], max_steps=30)
    theirs = evaluate_pusht(HistoryPolicy(bc), seeds=[3, 4], max_steps=30)
    np.testing.assert_array_equal(ours["max_coverage"], theirs["max_coverage"])
    x = random_batch(agent).observations
    torch.testing.assert_close(agent.act(x), x[:, -2:])


def test_the_residual_is_bounded_by_residual_scale():
    agent = rlft.RLFTAgent(make_bc(), small_config(residual_scale=20.0))
    for parameter in agent.actor.parameters():  # a large residual everywhere
        torch.nn.init.normal_(parameter, std=3.0)
    x = random_batch(agent, 64).observations
    shift = (agent.act(x) - x[:, -2:]) * agent.bc[0].action_scale  # px, along the block's axes
    assert shift.abs().max() <= 20.0 + 1e-4 and shift.abs().max() > 15.0
    assert torch.equal(rlft.residual_action(torch.ones(2, 2), -torch.ones(2, 2), 0.25), torch.full((2, 2), 0.75))


def test_bad_residual_scale_raises():
    with pytest.raises(ValueError, match="residual_scale"):
        rlft.RLFTAgent(make_bc(), small_config(residual_scale=0.0))


def test_potential_and_training_reward():
    config = small_config(gamma=0.9, shaping=2.0)
    at_goal = np.array([300.0, 300.0, *GOAL_POSE])
    away = np.array([300.0, 300.0, 150.0, 150.0, GOAL_POSE[2] + np.pi])
    assert rlft.potential(at_goal) == pytest.approx(1.0)
    assert rlft.potential(away) < 0.05
    both = rlft.training_reward(np.stack([away, at_goal]), np.stack([at_goal, at_goal]), np.array([True, False]),
                                config)
    np.testing.assert_allclose(both, [1 + 2.0 * (0.9 - rlft.potential(away)), 2.0 * (0.9 - 1.0)])


def test_demo_transitions_line_up():
    demos = load_demos()
    agent = rlft.RLFTAgent(make_bc(), small_config())
    data = rlft.demo_transitions(demos, agent, small_config())
    n = len(demos.observations)
    assert data["observation"].shape == (n, agent.n_inputs) and data["action"].shape == (n, 2)
    inner = np.setdiff1d(np.arange(n - 1), demos.episode_ends - 1)  # steps followed by one of their episode
    np.testing.assert_allclose(data["next_observation"][inner], data["observation"][inner + 1], atol=1e-5)
    assert data["terminated"].sum() == (demos.coverage[demos.episode_ends - 1] > 0.95).sum() > 0
    assert not data["terminated"][inner].any()
    # Unit actions map back to the demonstrated actions.
    first = torch.as_tensor(np.concatenate([demos.observations[:1], demos.observations[:1]], 1), dtype=torch.float32)
    back = agent.bc[0].to_env(torch.as_tensor(data["action"][:1]), first)
    np.testing.assert_allclose(back.numpy(), demos.actions[:1], atol=1e-3)


def test_update_trains_critics_then_actor_with_delay():
    config = small_config(policy_delay=2)
    agent = rlft.RLFTAgent(make_bc(), config)
    batch = random_batch(agent)
    actor = [p.clone() for p in agent.actor.parameters()]
    critics = [p.clone() for p in agent.critics.parameters()]
    agent.actor_active = False
    for _ in range(2):
        metrics = rlft.rlft_update(agent, batch, config)
    assert "actor_loss" not in metrics
    assert all(torch.equal(a, b) for a, b in zip(actor, agent.actor.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(critics, agent.critics.parameters()))
    agent.actor_active = True
    assert "actor_loss" not in rlft.rlft_update(agent, batch, config)  # update 3: critics only
    assert "actor_loss" in rlft.rlft_update(agent, batch, config)
    assert not all(torch.equal(a, b) for a, b in zip(actor, agent.actor.parameters()))
    losses = [float(rlft.rlft_update(agent, batch, config)["critic_loss"]) for _ in range(60)]
    assert losses[-1] < losses[0]


def test_ibrl_acts_with_the_better_proposal():
    agent = rlft.RLFTAgent(make_bc(), small_config(ibrl=True))
    for parameter in agent.actor.parameters():
        torch.nn.init.normal_(parameter, std=1.0)
    x = random_batch(agent, 32).observations
    chosen, proposal = agent.choose(x, ibrl=True), agent.act(x)
    q_bc = agent.q(agent.critics[:1], x, x[:, -2:])[0]
    q_rl = agent.q(agent.critics[:1], x, proposal)[0]
    expected = torch.where((q_rl >= q_bc)[:, None], proposal, x[:, -2:])
    torch.testing.assert_close(chosen, expected)


def test_train_runs_on_training_seeds_and_logs():
    demos = load_demos()
    config = small_config(total_steps=120, learning_starts=40, actor_starts=80, eval_every=60,
                          eval_seeds=(300,), log_every=40)
    agent, tracker = rlft.train(make_bc(), demos, config)
    assert tracker.last("env_steps") == 120 and agent.updates == 80
    assert {"critic_loss", "q", "actor_loss", "success_rate", "mean_max_coverage"} <= set(tracker.keys)
