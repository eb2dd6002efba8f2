"""RL fine-tuning of a behaviour-cloned policy (notebook 09, PushT): residual TD3 on a frozen BC policy.

The BC policy ``π_BC`` (``agents/bc.py``: previous and current state in, a move in the pusher's
frame out, in units of 100 px) stays frozen. A small *residual* actor learns a correction
bounded to ``ρ`` (``residual_scale`` px), and a critic judges the corrected action::

    a(s) = π_BC(s) + ρ tanh(f_φ(s, π_BC(s)))          f_φ's last layer starts at 0: a = π_BC at first
    y    = r + γ (1 − terminated) min_j Q'_j(s', a'(s') + clip(ε, −c, c))        (TD3's target)
    critics: min Σ_j (1/B) Σ (Q_j(s, a) − y)²
    actor:   min (1/B) Σ [−Q_1(s, a(s)) + β ‖tanh f_φ‖²]     (β: residual_penalty, keeps a near BC)

Residual RL (Johannink et al. 2019; Silver et al. 2018) starts *at* BC's score and can move
the target only ``ρ`` px. The critics learn alone until ``actor_starts`` (then TD3's delayed
actor), on batches that are half demonstrations, half online (RLPD's symmetric sampling, Ball
et al. 2023), with LayerNorm. ``ibrl=True`` (IBRL, Hu et al. 2023): act, and bootstrap, with
whichever of ``π_BC(s)`` and ``a(s)`` the critic values more.

**Reward.** Success (coverage > 0.95) ends the episode, so a reward paid at every step near the
goal (PushT's coverage reward, or ManiSkill's shaped reward) pays *more* for hovering just
below 0.95 than for finishing. Training uses ``r = 1{success} + λ (γ Φ(s') − Φ(s))``: the
success indicator plus an optional potential-based shaping term (Ng et al. 1999), ``Φ`` the mean
of ManiSkill3's rotation and position terms (``envs.pusht.shaped_reward``), which guides
without changing which policy is best. The default is the sparse reward (λ = 0).

**Measured** (BC seed 0: 0.52 success / 0.873 mean max coverage on the protocol's resets 0-49,
0.57 success on the validation resets 300-329; 1 CPU thread, 2 shared cores): every variant
first *loses* success when the actor starts, then recovers part of it. ρ = 30 px with λ = 1
(no IBRL): validation success 0.57 → 0.00 and stays there; ρ = 10 px, IBRL, λ = 1: 0.10-0.27;
ρ = 10 px, IBRL, λ = 0, β = 0.01, σ = 3 px: 0.23 → 0.47 by 20k steps; the same with critic
warm-up to 10k and 40k steps: 0.23 → 0.73 at 35k, yet the agent of that evaluation scores
0.52 / 0.854 on resets 0-49, BC's own success rate. The critic cannot resolve the few-pixel
differences that decide PushT (5 px of acting noise already costs BC 0.2 success), and the
actor exploits its errors a few px away from the data; hence the small default ρ = 4 px.
With the defaults (``benchmarks/solve.py rlft``, 30k steps, 133-144 s of training), success /
mean max coverage on resets 0-49, BC → fine-tuned, seeds 0, 1, 2: 0.52 / 0.873 → 0.58 / 0.841,
0.44 / 0.907 → 0.56 / 0.854, 0.56 / 0.880 → 0.40 / 0.885. The median success rises from 0.52 to
0.56 and the median coverage falls from 0.880 to 0.854: no improvement beyond the noise of 50
episodes (±0.07), far from the issue's 0.70 / 0.95.

Pseudocode of ``train``::

    fill the demonstration buffer with the (mirrored) demonstrations, rewards as above
    for t = 1 … total_steps (episodes from reset seeds first_reset_seed, +1, …):
        u = a(s) + N(0, σ²) (IBRL: the better of π_BC(s), a(s) by Q_1, plus noise)
        step the environment with u; store (s, u, r, s', terminated, truncated)
        if t > learning_starts: updates_per_step × update(agent, half demo / half online batch)

Everything is in the BC policy's unit action frame; ``s`` is the pair [previous, current state].
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.buffers import MixedReplay, ReplayBatch, ReplayBuffer
from course_utils.envs.pusht import GOAL_POSE, SUCCESS_THRESHOLD, shaped_reward
from course_utils.nn import MLPConfig, build_mlp, make_adam, polyak_update
from course_utils.tracking import TrainConfig, Tracker, TrainingRun

__all__ = ["RLFTAgent", "RLFTConfig", "ResidualPolicy", "demo_transitions", "potential",
           "residual_action", "rlft_update", "train"]


@dataclass
class RLFTConfig(TrainConfig):
    """Residual TD3 on a frozen BC policy; the defaults are the benchmark's recipe."""

    total_steps: int = 30_000
    eval_every: int = 5_000
    keep_best: bool = True  # judged on eval_seeds (never the protocol's 0-49)
    residual_scale: float = 4.0  # px: the most the residual moves BC's target
    n_layers: int = 2
    size: int = 128
    layer_norm: bool = True  # LayerNorm in the critics (RLPD)
    actor_learning_rate: float = 1e-4
    critic_learning_rate: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    buffer_size: int = 200_000
    batch_size: int = 128
    demo_ratio: float = 0.5  # RLPD: half of every batch from the demonstrations
    learning_starts: int = 1_000  # steps of BC + noise before the first update
    actor_starts: int = 5_000  # critic-only updates before this step
    updates_per_step: int = 1
    exploration_noise: float = 0.03  # σ in BC's unit (100 px): 3 px (5 px already costs BC 0.2 success)
    target_noise: float = 0.02
    target_noise_clip: float = 0.04
    policy_delay: int = 2
    residual_penalty: float = 0.01  # β: the actor also minimises β mean ‖tanh f_φ‖² (stay near BC)
    shaping: float = 0.0  # λ of the potential-based shaping (λ = 1 only in variants that collapsed)
    ibrl: bool = True  # act and bootstrap with the better of BC and the residual actor
    first_reset_seed: int = 1_000  # training episodes' reset seeds: 1000, 1001, ...
    eval_seeds: tuple[int, ...] = field(default_factory=lambda: tuple(range(300, 330)))


# ------------------------------------------------------------------------------------ networks


def _mlp(n_in: int, n_out: int, config: RLFTConfig, layer_norm: bool) -> nn.Sequential:
    """``build_mlp``'s MLP, with a LayerNorm after each hidden linear layer if asked."""
    net = build_mlp(MLPConfig(n_in, n_out, config.n_layers, config.size, "relu"), device="cpu")
    if not layer_norm:
        return net
    layers: list[nn.Module] = []
    for module in net:
        layers.append(module)
        if isinstance(module, nn.Linear) and module.out_features == config.size:
            layers.append(nn.LayerNorm(config.size))
    return nn.Sequential(*layers)


class RLFTAgent(nn.Module):
    """The frozen BC policy, the residual actor ``f_φ``, twin critics and their target copies.

    ``bc`` maps ``[previous, current]`` states ``(B, 10)`` to unit actions ``(B, 2)`` and has
    ``inputs(states) -> features (B, m)`` and ``to_env(units, states) -> PushT actions``
    (a ``BCPolicy`` on ``history_space``). ``state_dict`` holds the residual actor and critics.
    """

    def __init__(self, bc: nn.Module, config: RLFTConfig) -> None:
        super().__init__()
        if not config.residual_scale > 0:
            raise ValueError(f"residual_scale must be > 0 px, got {config.residual_scale}")
        torch.manual_seed(config.seed)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.bc = [bc.requires_grad_(False).eval()]  # a list: not a submodule, not saved
        n_inputs = bc.inputs(torch.zeros(1, bc.n_observations)).shape[-1] + 2  # x = [features, π_BC]
        self.rho = config.residual_scale / bc.action_scale  # ρ in BC's unit
        self.n_inputs = n_inputs
        self.actor = _mlp(n_inputs, 2, config, layer_norm=False)
        nn.init.zeros_(self.actor[-2].weight)  # zero output: a(s) = π_BC(s) at the start
        nn.init.zeros_(self.actor[-2].bias)
        self.critics = nn.ModuleList(_mlp(n_inputs + 2, 1, config, config.layer_norm) for _ in range(2))
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critics_target = copy.deepcopy(self.critics).requires_grad_(False)
        self.actor_optimizer = make_adam(self.actor.parameters(), config.actor_learning_rate, "cpu")
        self.critic_optimizer = make_adam(self.critics.parameters(), config.critic_learning_rate, "cpu")
        self.updates = 0  # critic updates, for the policy delay
        self.actor_active = True  # train() holds the actor still before config.actor_starts

    @torch.no_grad()
    def encode(self, states: torch.Tensor) -> torch.Tensor:
        """``x = [features(s), π_BC(s)]`` ``(B, m + 2)`` of pairs ``(B, 10)``: what the networks see.
        The BC policy is frozen, so the buffers store ``x`` and updates never run it."""
        return torch.cat([self.bc[0].inputs(states), self.bc[0](states)], dim=-1)

    def q(self, critics: nn.ModuleList, inputs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``Q_j(x, a)`` of every critic: ``(n_critics, B)``."""
        inputs = torch.cat([inputs, actions], dim=-1)
        return torch.stack([critic(inputs).squeeze(-1) for critic in critics])

    def act(self, inputs: torch.Tensor, target: bool = False) -> torch.Tensor:
        """``a(s) = π_BC(s) + ρ tanh(f_φ(x))`` ``(B, 2)`` from ``x`` ``(B, m + 2)``, with the
        online or the target actor."""
        actor = self.actor_target if target else self.actor
        return residual_action(inputs[:, -2:], torch.tanh(actor(inputs)), self.rho)

    @torch.no_grad()
    def choose(self, inputs: torch.Tensor, noise: float = 0.0, ibrl: bool = False) -> torch.Tensor:
        """The acting action in BC's unit ``(B, 2)``: ``a(s)`` (IBRL: the better of π_BC and a by
        ``Q_1``), plus ``N(0, noise²)``."""
        action = self.act(inputs)
        if ibrl:
            q = self.q(self.critics[:1], inputs.repeat(2, 1), torch.cat([inputs[:, -2:], action]))[0]
            action = torch.where((q[len(inputs):] >= q[:len(inputs)])[:, None], action, inputs[:, -2:])
        if noise > 0:
            action = action + noise * torch.randn(action.shape, generator=self.generator)
        return action


def residual_action(base: torch.Tensor, residual: torch.Tensor, rho: float) -> torch.Tensor:
    """``a = π_BC(s) + ρ · residual``: ``base`` ``(B, 2)``, ``residual`` in ``[-1, 1]`` ``(B, 2)``."""
    return base + rho * residual


# ---------------------------------------------------------------------------------- update step


def rlft_update(agent: RLFTAgent, batch: ReplayBatch, config: RLFTConfig) -> dict[str, torch.Tensor]:
    """One TD3 step for the residual actor (the notebook's exercise): both critics on the target
    ``y = r + γ (1 − terminated) min_j Q'_j(s', a'(s') + clipped noise)`` (IBRL: the better of
    ``π_BC(s')`` and ``a'(s')`` by the target critics); every ``policy_delay``-th call from
    ``actor_starts`` on, one actor step on ``−mean Q_1(s, a(s)) + β mean ‖tanh f_φ‖²`` and the
    Polyak updates."""
    x, next_x = batch.observations, batch.next_observations  # [features, π_BC(s)] (B, m + 2)
    with torch.no_grad():
        next_action = agent.act(next_x, target=True)
        noise = (config.target_noise * torch.randn(next_action.shape, generator=agent.generator))
        next_action = next_action + noise.clamp(-config.target_noise_clip, config.target_noise_clip)
        next_q = agent.q(agent.critics_target, next_x, next_action).min(dim=0).values
        if config.ibrl:  # bootstrap from the better proposal
            base_q = agent.q(agent.critics_target, next_x, next_x[:, -2:]).min(dim=0).values
            next_q = torch.maximum(next_q, base_q)
        targets = batch.rewards + config.gamma * (1.0 - batch.terminated.float()) * next_q
    q_values = agent.q(agent.critics, x, batch.actions)  # (2, B)
    critic_loss = sum(F.mse_loss(q, targets) for q in q_values)
    agent.critic_optimizer.zero_grad(set_to_none=True)
    critic_loss.backward()
    agent.critic_optimizer.step()
    agent.updates += 1
    metrics = {"critic_loss": critic_loss.detach(), "q": q_values[0].detach().mean()}
    if agent.actor_active and agent.updates % config.policy_delay == 0:
        agent.critics.requires_grad_(False)  # the gradient goes through Q into a, not into Q
        residual = torch.tanh(agent.actor(x))
        action = residual_action(x[:, -2:], residual, agent.rho)
        actor_loss = (-agent.q(agent.critics[:1], x, action)[0].mean()
                      + config.residual_penalty * (residual ** 2).sum(dim=-1).mean())
        agent.critics.requires_grad_(True)
        agent.actor_optimizer.zero_grad(set_to_none=True)
        actor_loss.backward()
        agent.actor_optimizer.step()
        polyak_update(agent.actor_target, agent.actor, config.tau)
        polyak_update(agent.critics_target, agent.critics, config.tau)
        metrics["actor_loss"] = actor_loss.detach()
    return metrics


# --------------------------------------------------------------------------------- training


def potential(states: np.ndarray) -> np.ndarray:
    """``Φ(s)``: the mean of ManiSkill3's rotation and position terms, in [0, 1], of PushT
    states ``(..., 5)`` → ``(...)``."""
    states = np.asarray(states, dtype=np.float64)
    terms = shaped_reward(states[..., 2:5], GOAL_POSE, states[..., 0:2], np.zeros(states.shape[:-1]))
    return (terms["rotation"] + terms["position"]) / 2


def training_reward(state: np.ndarray, next_state: np.ndarray, success: np.ndarray,
                    config: RLFTConfig) -> np.ndarray:
    """``1{success} + λ (γ Φ(s') − Φ(s))`` for states ``(..., 5)``, ``success`` ``(...)``."""
    shaping = config.gamma * potential(next_state) - potential(state)
    return np.asarray(success, dtype=np.float64) + config.shaping * shaping


class ResidualPolicy:
    """The greedy fine-tuned policy for ``evaluate_pusht``: remembers the previous state."""

    def __init__(self, agent: RLFTAgent, ibrl: bool = False) -> None:
        self.agent, self.ibrl, self.previous = agent, ibrl, None

    def reset(self) -> None:
        self.previous = None

    def __call__(self, observation: np.ndarray) -> np.ndarray:
        observation = np.asarray(observation, dtype=np.float64)
        previous = observation if self.previous is None else self.previous
        self.previous = observation
        states = torch.as_tensor(np.concatenate([previous, observation]), dtype=torch.float32)[None]
        unit = self.agent.choose(self.agent.encode(states), ibrl=self.ibrl)
        return self.agent.bc[0].to_env(unit, states)[0].numpy()


def demo_transitions(demos: Any, agent: RLFTAgent, config: RLFTConfig) -> dict[str, np.ndarray]:
    """The demonstrations (``PushTDemos``) as transitions of inputs ``x`` ``(N, m + 2)`` (see
    ``RLFTAgent.encode``) with unit actions ``(N, 2)``, the training reward and ``terminated`` at
    a final success."""
    from course_utils.envs.pusht_features import previous_and_current

    ends, starts = demos.episode_ends, demos.episode_starts
    next_states = np.concatenate([demos.observations[1:], demos.observations[-1:]]).astype(np.float64)
    next_states[ends - 1] = demos.final_observations
    pairs = previous_and_current(demos.observations, ends)
    next_pairs = np.concatenate([demos.observations, next_states], axis=1)
    next_pairs[starts, :5] = demos.observations[starts]  # the pair after step t is [s_t, s_t+1]
    success = demos.coverage > SUCCESS_THRESHOLD
    terminated = np.zeros(len(pairs), dtype=bool)
    terminated[ends - 1] = success[ends - 1]
    with torch.no_grad():
        states = torch.as_tensor(pairs, dtype=torch.float32)
        units = agent.bc[0].to_unit(torch.as_tensor(demos.actions, dtype=torch.float32), states).numpy()
    return {"observation": agent.encode(states).numpy(), "action": units,
            "reward": training_reward(demos.observations, next_states, success, config),
            "next_observation": agent.encode(torch.as_tensor(next_pairs, dtype=torch.float32)).numpy(),
            "terminated": terminated, "truncated": np.zeros(len(pairs), bool)}


def train(bc: nn.Module, demos: Any, config: Optional[RLFTConfig] = None,
          update: Callable[..., dict[str, torch.Tensor]] = rlft_update,
          agent: Optional[RLFTAgent] = None, tracker: Optional[Tracker] = None,
          env_id: str = "course_utils/PushT-v0") -> tuple[RLFTAgent, Tracker]:
    """Fine-tune the frozen BC policy ``bc`` with residual TD3 on PushT; ``demos`` (a
    ``PushTDemos``, e.g. ``load_demos()`` + ``.mirrored()``) fill half of every batch.

    ``update(agent, batch, config)`` is the update step (yours in the notebook). Evaluations
    (``success_rate``, ``mean_max_coverage`` over ``config.eval_seeds``, the score being
    ``success_rate``) run every ``eval_every`` steps. Returns ``(agent, tracker)``.
    """
    from course_utils.envs.pusht_eval import evaluate_pusht

    config = config if config is not None else RLFTConfig()
    agent = agent if agent is not None else RLFTAgent(bc, config)
    shape = (agent.n_inputs,)
    buffer = ReplayBuffer(config.buffer_size, shape, (2,), action_dtype=torch.float32, device="cpu",
                          seed=config.seed)
    demo_buffer = ReplayBuffer(len(demos.observations), shape, (2,), action_dtype=torch.float32,
                               device="cpu", seed=config.seed + 1)
    demo_buffer.extend(*demo_transitions(demos, agent, config).values())
    replay = MixedReplay(buffer, demo_buffer, config.demo_ratio)
    env = gym.make(env_id)

    def evaluate() -> dict[str, float]:
        result = evaluate_pusht(ResidualPolicy(agent, config.ibrl), config.eval_seeds, env_id)
        return {"success_rate": result["success_rate"], "mean_max_coverage": result["mean_max_coverage"]}

    with TrainingRun(config, agent, evaluate, tracker, score_key="success_rate",
                     plot_keys=("success", "success_rate")) as run:
        episode = int(run.step > 0) * 1_000_000 + len(run.tracker.history.get("return", []))
        state, info = env.reset(seed=config.first_reset_seed + episode)
        pairs = torch.as_tensor(np.concatenate([state, state]), dtype=torch.float32)[None]
        x, episode_return, length, best = agent.encode(pairs), 0.0, 0, info["coverage"]
        while not run.finished:
            unit = agent.choose(x, config.exploration_noise, config.ibrl)
            next_state, _, terminated, truncated, info = env.step(agent.bc[0].to_env(unit, pairs)[0].numpy())
            reward = float(training_reward(state, next_state, info["is_success"], config))
            pairs = torch.as_tensor(np.concatenate([state, next_state]), dtype=torch.float32)[None]
            next_x = agent.encode(pairs)
            replay.add(x[0].numpy(), unit[0].numpy(), reward, next_x[0].numpy(), terminated, truncated)
            episode_return, length, best = episode_return + reward, length + 1, max(best, info["coverage"])
            agent.actor_active = run.step >= config.actor_starts
            if run.step + 1 > config.learning_starts:
                for _ in range(config.updates_per_step):
                    run.update(update(agent, replay.sample(config.batch_size), config))
            run.advance(1)
            if terminated or truncated:
                run.episode(episode_return, length, success=float(info["is_success"]), max_coverage=best)
                episode += 1
                state, info = env.reset(seed=config.first_reset_seed + episode)
                pairs = torch.as_tensor(np.concatenate([state, state]), dtype=torch.float32)[None]
                x, episode_return, length, best = agent.encode(pairs), 0.0, 0, info["coverage"]
            else:
                state, x = next_state, next_x
    env.close()
    return agent, run.tracker
