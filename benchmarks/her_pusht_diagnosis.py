"""Why HER + DDPG + demonstrations fails on the goal-conditioned PushT (issue 17, items 1 and 4).

    python benchmarks/her_pusht_diagnosis.py --features scaled --steps 60000 --seed 0
    python benchmarks/her_pusht_diagnosis.py --features block  --steps 60000 --seed 0

The recipe of notebook 09 (section 5): expert demonstrations with random goals stored with HER
(k = 4), a DDPG agent (3 × 256) whose actor is pre-trained by behaviour cloning on them, then
HER + DDPG with 25 % demonstrations in every batch and 64 updates per episode. It measures

(a) the pre-trained actor's mean maximum coverage and success rate on random goals;
(b) the fraction of HER-relabelled goals for which the block did not move (the achieved goal at
    the goal index within 1 px and 0.01 rad of the one at t), on the demonstrations, on the
    pre-trained actor's own episodes and on the agent's episodes during training;
(c) the critic's error on the demonstrations: Q(s, a) against their discounted Monte Carlo
    returns (successful demonstrations, which end at the goal, so the return is exact);
(d) updates per environment step;

and the success after training, for the goal given to the networks either as the notebook does
(``scaled``: positions in [-1, 1], the angle as cos and sin) or in the block's frame (``block``:
the goal's position and angle relative to the block, the pusher relative to the block, as
``agents/bc.py``'s ``pusht_features`` does for the fixed goal). Prints one JSON line last.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

import course_utils.envs  # noqa: F401  (registers GoalPushT)
from course_utils.agents import ddpg, her
from course_utils.buffers import MixedReplay, ReplayBuffer
from course_utils.envs.pusht import coverage
from course_utils.envs.pusht_expert import PushTExpert
from course_utils.nn import make_adam

GOAL_ID = "course_utils/GoalPushT-v0"
OBS_DIM = 5  # PushT's state: agent x, y, block x, y, angle; then the goal (x, y, angle)


class GoalFeatures(nn.Module):
    """``concat(state (5,), goal pose (3,))`` in pixels and radians → network inputs."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.size = {"scaled": 10, "block": 12}[kind]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        positions = x[..., :4] / 256.0 - 1.0
        angle, goal_angle = x[..., 4], x[..., 7]
        cos, sin = torch.cos(angle), torch.sin(angle)
        if self.kind == "scaled":  # the notebook's: every pose in the workspace's frame
            return torch.cat([positions, cos[..., None], sin[..., None], x[..., 5:7] / 256.0 - 1.0,
                              torch.cos(goal_angle)[..., None], torch.sin(goal_angle)[..., None]], -1)

        def to_block_frame(v: torch.Tensor) -> torch.Tensor:  # R(θ)ᵀ v
            return torch.stack([cos * v[..., 0] + sin * v[..., 1], -sin * v[..., 0] + cos * v[..., 1]], -1)

        pusher = to_block_frame(x[..., 0:2] - x[..., 2:4]) / 128.0
        error = to_block_frame(x[..., 5:7] - x[..., 2:4]) / 128.0  # the goal's origin, block frame
        turn = goal_angle - angle
        return torch.cat([positions, cos[..., None], sin[..., None], pusher, error,
                          torch.cos(turn)[..., None], torch.sin(turn)[..., None]], -1)


class FeatureCriticNet(nn.Module):
    """A critic's MLP on ``concat(features(observation), action)``."""

    def __init__(self, features: GoalFeatures, net: nn.Module) -> None:
        super().__init__()
        self.features, self.net = features, net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([self.features(x[..., :OBS_DIM + 3]), x[..., OBS_DIM + 3:]], -1))


def make_agent(env: gym.Env, kind: str, config: ddpg.DDPGConfig) -> ddpg.DDPGAgent:
    """agents/ddpg.py's DDPGAgent with the goal features in front of its actor and critics."""
    features = GoalFeatures(kind)
    inner = gym.spaces.Box(-np.inf, np.inf, (features.size,), np.float32)
    agent = ddpg.DDPGAgent(inner, env.action_space, config)
    agent.actor = nn.Sequential(features, agent.actor)
    for critic in agent.critics:
        critic.net = FeatureCriticNet(features, critic.net)
    # Fresh targets and optimisers over the wrapped networks (the features have no parameters).
    agent.actor_target = copy.deepcopy(agent.actor).requires_grad_(False)
    agent.critics_target = copy.deepcopy(agent.critics).requires_grad_(False)
    agent.actor_optimizer = make_adam(agent.actor.parameters(), config.actor_learning_rate)
    agent.critic_optimizer = make_adam(agent.critics.parameters(), config.critic_learning_rate)
    return agent


def expert_episode(env: gym.Env, seed: int) -> her.GoalEpisode:
    expert, base = PushTExpert(), env.unwrapped

    def act(_: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        action = expert({"observation": base.state, "desired_goal": base.goal_pose})
        return action, (action - 256.0) / 256.0  # stored in the unit box, as DDPG stores actions

    return her.play_episode(env, act, seed)


def unmoved_fraction(episodes: list[her.GoalEpisode], k: int, rng: np.random.Generator) -> float:
    """(b): the share of future goals ``ag_j`` (drawn as store_episode draws them) equal to ``ag_t``
    within 1 px and 0.01 rad: relabelled goals the block was already at."""
    still, total = 0, 0
    for e in episodes:
        T = len(e)
        j = rng.integers(np.arange(T)[:, None] + 1, T + 1, size=(T, k))
        start, goal = e.achieved_goals[:T, None, :], e.achieved_goals[j]
        turn = np.abs((goal[..., 2] - start[..., 2] + np.pi) % (2 * np.pi) - np.pi)
        moved = (np.linalg.norm(goal[..., :2] - start[..., :2], axis=-1) > 1.0) | (turn > 0.01)
        still += int((~moved).sum())
        total += moved.size
    return still / max(total, 1)


def rollouts(env: gym.Env, agent: ddpg.DDPGAgent, seeds: range) -> tuple[list, dict[str, float]]:
    """Greedy episodes: the episodes, their success rate and mean maximum coverage of the goal."""
    episodes, best = [], []
    for seed in seeds:
        e = her.play_episode(env, lambda o: (agent.greedy_action(o), np.zeros(2)), seed)
        episodes.append(e)
        best.append(coverage(e.achieved_goals, e.desired_goal).max())
    return episodes, {"success": float(np.mean([her.success_of(e) for e in episodes])),
                      "mean_max_coverage": float(np.mean(best))}


@torch.no_grad()
def critic_error(agent: ddpg.DDPGAgent, demos: list[her.GoalEpisode], gamma: float) -> dict[str, float]:
    """(c): Q(s, a) on the successful demonstrations against their discounted returns."""
    q, g = [], []
    for e in demos:
        if not e.terminated[-1]:
            continue
        returns = np.zeros(len(e))
        running = 0.0
        for t in reversed(range(len(e))):
            running = e.rewards[t] + gamma * running
            returns[t] = running
        obs = torch.as_tensor(her.goal_observations(e.observations[:-1],
                                                    np.broadcast_to(e.desired_goal, (len(e), 3))))
        q.append(agent.critics[0](obs, torch.as_tensor(e.actions, dtype=torch.float32)).numpy())
        g.append(returns)
    q, g = np.concatenate(q), np.concatenate(g)
    return {"q_mean": float(q.mean()), "return_mean": float(g.mean()),
            "q_mae": float(np.abs(q - g).mean()), "q_bias": float((q - g).mean()),
            "q_return_corr": float(np.corrcoef(q, g)[0, 1])}


def pretrain_actor(agent: ddpg.DDPGAgent, buffer: ReplayBuffer, steps: int) -> float:
    """Behaviour cloning of the actor on the demonstrations (MSE in the unit box)."""
    optimizer = torch.optim.Adam(agent.actor.parameters(), lr=1e-3)
    for _ in range(steps):
        batch = buffer.sample(256)
        loss = ((agent.actor(batch.observations) - batch.actions.clamp(-1, 1)) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    agent.actor_target.load_state_dict(agent.actor.state_dict())
    return float(loss.detach())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", choices=("scaled", "block"), default="scaled")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--demos", type=int, default=100)
    parser.add_argument("--pretrain", type=int, default=3_000)
    parser.add_argument("--steps", type=int, default=60_000)
    parser.add_argument("--gradient-steps", type=int, default=64)
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument("--bc-own-goals", action="store_true",
                        help="pre-train the actor on the demonstrations with their own goals only "
                             "(default: with the HER-relabelled copies too)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    env = gym.make(GOAL_ID)
    compute_reward, compute_terminated = env.unwrapped.compute_reward, env.unwrapped.compute_terminated
    demos = [expert_episode(gym.make(GOAL_ID), 100_000 + i) for i in range(args.demos)]
    demo_seconds = time.perf_counter() - start
    obs_shape = (OBS_DIM + 3,)
    demo_buffer = ReplayBuffer(sum(map(len, demos)) * 5, obs_shape, (2,), action_dtype=torch.float32,
                               device="cpu", seed=args.seed)
    rng = np.random.default_rng(args.seed)
    for e in demos:
        her.store_episode(demo_buffer, e, 4, rng, compute_reward, compute_terminated)
    config = ddpg.DDPGConfig(seed=args.seed, n_layers=3, size=256, actor_learning_rate=1e-4,
                             critic_learning_rate=1e-3, gamma=0.98, tau=0.005, exploration_noise=0.1)
    agent = make_agent(env, args.features, config)
    own_goals = ReplayBuffer(len(demo_buffer), obs_shape, (2,), action_dtype=torch.float32,
                             device="cpu", seed=args.seed)
    for e in demos:
        her.store_episode(own_goals, e, 0, rng, compute_reward, compute_terminated)
    bc_loss = pretrain_actor(agent, own_goals if args.bc_own_goals else demo_buffer, args.pretrain)
    eval_seeds = range(50_000, 50_000 + args.eval_episodes)
    pre_episodes, pretrained = rollouts(gym.make(GOAL_ID), agent, eval_seeds)
    result: dict[str, Any] = {
        "features": args.features, "seed": args.seed, "demos": args.demos,
        "pretrain_steps": args.pretrain, "bc_own_goals": args.bc_own_goals,
        "demo_success": float(np.mean([her.success_of(e) for e in demos])),
        "demo_steps": int(sum(map(len, demos))), "demo_seconds": round(demo_seconds, 1),
        "bc_loss": round(bc_loss, 4), "pretrained": pretrained,
        "unmoved_demos": unmoved_fraction(demos, 4, np.random.default_rng(1)),
        "unmoved_pretrained": unmoved_fraction(pre_episodes, 4, np.random.default_rng(1)),
        "critic_on_demos_before": critic_error(agent, demos, config.gamma)}
    print(json.dumps(result), flush=True)
    if args.steps == 0:
        return

    goal_agent = her.ddpg_goal_agent(env, config, ddpg.ddpg_update, agent)
    goal_agent.buffer = MixedReplay(ReplayBuffer(1_000_000, obs_shape, (2,), action_dtype=torch.float32,
                                                 device="cpu", seed=args.seed), demo_buffer, 0.25)
    played: list[her.GoalEpisode] = []

    def store(buffer: Any, episode: her.GoalEpisode, *rest: Any) -> int:
        played.append(episode)
        return her.store_episode(buffer, episode, *rest)

    her_config = her.HERConfig(total_steps=args.steps, seed=args.seed, her_k=4,
                               gradient_steps=args.gradient_steps, batch_size=256,
                               eval_every=args.steps // 3, eval_episodes=args.eval_episodes,
                               log_every=5_000, progress=False)
    tracker = her.train(env, goal_agent, her_config, store=store)
    _, final = rollouts(gym.make(GOAL_ID), agent, eval_seeds)
    result.update({
        "steps": int(tracker.last("env_steps")), "train_seconds": round(tracker.last("train_seconds"), 1),
        "updates_per_env_step": round(args.gradient_steps * len(played) / tracker.last("env_steps"), 3),
        "episodes": len(played), "mean_episode_length": float(np.mean([len(e) for e in played])),
        "training_success": float(np.mean([her.success_of(e) for e in played])),
        "unmoved_training": unmoved_fraction(played, 4, np.random.default_rng(2)),
        "eval_success_curve": tracker.history["eval_success"], "final": final,
        "critic_on_demos_after": critic_error(agent, demos, config.gamma),
        "wall_seconds": round(time.perf_counter() - start, 1)})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
