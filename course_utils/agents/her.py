"""Hindsight Experience Replay (HER, Andrychowicz et al. 2017) for goal-conditioned off-policy RL.

A goal environment (gymnasium-robotics' interface) gives Dict observations: ``observation``
``o_t``, ``achieved_goal`` ``ag_t`` (what the state achieves) and ``desired_goal`` ``g``; its
sparse reward ``r = compute_reward(ag_{t+1}, g, info)`` is a function of the goals alone. The
agent acts on ``concat(o_t, g)``. An episode that misses ``g`` teaches nothing with a sparse
reward, but it is a success for the goals it did achieve: HER stores every transition once with
``g`` and ``k`` more times with a goal ``g' = ag_j`` achieved later in the same episode, the
reward (and the end of the task) recomputed for ``g'``. The ``future`` strategy draws ``j``
uniformly from ``{t+1, …, T}`` (``ag_{t+1}`` is what transition t itself achieved)::

    for each episode:
        g ← the episode's goal; play T steps with a_t = explore(concat(o_t, g))
        for t = 0 … T−1:
            store (o_t‖g, a_t, r_t, o_{t+1}‖g, terminated_t, truncated_t)
            for k goals g' = ag_j, j ~ U{t+1, …, T}:
                store (o_t‖g', a_t, compute_reward(ag_{t+1}, g'), o_{t+1}‖g',
                       compute_terminated(ag_{t+1}, g'), truncated_t)
        gradient_steps times: update(the agent, a batch sampled from the replay memory)

Any off-policy agent learns from this memory; ``train`` drives DQN (bit flipping,
``dqn_goal_agent``) and DDPG/TD3 (goal-conditioned PushT, ``ddpg_goal_agent``) through the same
small ``GoalAgent`` adapter, whose update step is the agent's own file's (``agents/dqn.py``,
``agents/ddpg.py``). The notebook's student writes ``store_episode``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from course_utils.agents import ddpg, dqn
from course_utils.buffers import MixedReplay, ReplayBatch, ReplayBuffer
from course_utils.device import get_device, set_seed
from course_utils.nn import make_adam
from course_utils.tracking import Tracker, TrainConfig, TrainingRun
from course_utils.validation import check_int


@dataclass
class HERConfig(TrainConfig):
    """The HER loop's settings (the defaults: the paper's bit-flipping ones). Counts are
    environment steps except ``gradient_steps``, which counts updates after each episode."""

    her_k: int = 4  # relabelled copies of each transition (0: plain replay, no HER)
    gradient_steps: int = 16  # updates after each episode (the paper's optimisation steps)
    batch_size: int = 128
    buffer_size: int = 1_000_000
    learning_starts: int = 0  # no update before this step (the agent explores from the start)
    log_every: int = 1_000


# ------------------------------------------------------------------------ goal observations


def goal_observations(observations: np.ndarray, goals: np.ndarray) -> np.ndarray:
    """What a goal-conditioned agent sees: ``concat(observation, goal)`` along the last axis,
    float32; ``(..., obs_dim)`` and ``(..., goal_dim)`` give ``(..., obs_dim + goal_dim)``."""
    return np.concatenate([np.asarray(observations, dtype=np.float32),
                           np.asarray(goals, dtype=np.float32)], axis=-1)


def goal_observation_space(space: gym.Space) -> gym.spaces.Box:
    """The Box of ``goal_observations`` for a goal env's Dict ``observation_space``: the bounds
    of ``observation`` followed by those of ``desired_goal``, float32."""
    if not isinstance(space, gym.spaces.Dict) or not {"observation", "desired_goal"} <= set(space):
        raise ValueError(f"space: expected a goal environment's Dict observation space with "
                         f"'observation' and 'desired_goal', got {space!r}")
    parts = [gym.spaces.flatten_space(space[key]) for key in ("observation", "desired_goal")]
    return gym.spaces.Box(np.concatenate([p.low for p in parts]).astype(np.float32),
                          np.concatenate([p.high for p in parts]).astype(np.float32),
                          dtype=np.float32)


@dataclass(frozen=True)
class GoalEpisode:
    """One episode of ``T`` steps in a goal environment.

    ``observations`` ``(T+1, obs_dim)`` and ``achieved_goals`` ``(T+1, goal_dim)`` include the
    first and the last observation: ``achieved_goals[t + 1]`` is what transition t achieved.
    ``desired_goal`` ``(goal_dim,)``; ``actions`` ``(T, *action_shape)`` as the buffer stores
    them; ``rewards``, ``terminated``, ``truncated`` ``(T,)``; ``infos`` the step infos, an
    object array ``(T,)`` (so ``infos[rows]`` works like the other fields).
    """

    observations: np.ndarray
    achieved_goals: np.ndarray
    desired_goal: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    infos: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))

    def __len__(self) -> int:
        return len(self.rewards)


# ------------------------------------------------------------------------ the exercise

RewardFn = Callable[[np.ndarray, np.ndarray, Any], Any]


def store_episode(buffer: Any, episode: GoalEpisode, k: int, rng: np.random.Generator,
                  compute_reward: RewardFn, compute_terminated: Optional[RewardFn] = None) -> int:
    """Store ``episode`` in ``buffer`` (``buffer.extend(obs, actions, rewards, next_obs,
    terminated, truncated)``, each with leading dimension n) with its own goal, then ``k``
    relabelled copies of each transition (HER's ``future`` strategy); return the number stored,
    ``T·(1 + k)``.

    The goal indices are drawn ONCE, as ``rng.integers(t + 1, T + 1, size=(T, k))`` with
    ``t = np.arange(T)[:, None]``: row t holds the indices ``j`` of the k goals
    ``achieved_goals[j]`` of transition t. A copy's reward is ``compute_reward(achieved_goals[t+1],
    goal, infos[t])`` and its ``terminated`` is ``compute_terminated(…)`` with the same arguments
    (False without one), both called once on the whole batch of T·k copies; ``truncated`` is the
    transition's own.
    """
    T = len(episode)
    goal = np.broadcast_to(episode.desired_goal, (T, len(episode.desired_goal)))
    buffer.extend(goal_observations(episode.observations[:-1], goal), episode.actions,
                  episode.rewards, goal_observations(episode.observations[1:], goal),
                  episode.terminated, episode.truncated)
    if k == 0:
        return T
    t = np.arange(T)[:, None]
    goal_indices = rng.integers(t + 1, T + 1, size=(T, k))  # future: j ~ U{t+1, …, T}
    rows = np.repeat(np.arange(T), k)  # the transition of each copy, (T·k,)
    goals = episode.achieved_goals[goal_indices.reshape(-1)]  # (T·k, goal_dim)
    achieved = episode.achieved_goals[rows + 1]  # what transition t achieved
    rewards = compute_reward(achieved, goals, episode.infos[rows])
    terminated = (compute_terminated(achieved, goals, episode.infos[rows])
                  if compute_terminated is not None else np.zeros(T * k, dtype=bool))
    buffer.extend(goal_observations(episode.observations[rows], goals), episode.actions[rows],
                  rewards, goal_observations(episode.observations[rows + 1], goals), terminated,
                  episode.truncated[rows])
    return T * (1 + k)


StoreFn = Callable[[Any, GoalEpisode, int, np.random.Generator, RewardFn, Optional[RewardFn]], int]


# ------------------------------------------------------------------------ agents


@dataclass
class GoalAgent:
    """What the HER loop needs from an off-policy agent, whatever its kind.

    ``explore(goal_obs) -> (env_action, stored_action)``: the training action and what the
    buffer stores (DQN: the action's index; DDPG: the action in the unit box);
    ``greedy(goal_obs) -> env_action``; ``update(batch) -> metrics``: one gradient step (the
    agent file's update, or the notebook's); ``module``: the networks (saved by keep_best).
    ``buffer`` is made by ``train`` (or set beforehand, e.g. a ``MixedReplay`` with demos).
    """

    module: nn.Module
    explore: Callable[[np.ndarray], tuple[Any, np.ndarray]]
    greedy: Callable[[np.ndarray], Any]
    update: Callable[[ReplayBatch], dict[str, torch.Tensor]]
    end_episode: Callable[[], None] = lambda: None
    buffer: Optional[ReplayBuffer | MixedReplay] = None


def dqn_goal_agent(env: gym.Env, config: dqn.DQNConfig, update: dqn.UpdateFn = dqn.dqn_update,
                   epsilon: float = 0.2) -> GoalAgent:
    """DQN (``agents/dqn.py``'s ``QNetworks`` and ``update``, with ``config``'s network and
    target settings; ``HERConfig`` sets the replay memory, the batch and the number of updates)
    on ``concat(observation, goal)``, exploring ε-greedily with a constant ε."""
    if not isinstance(env.action_space, gym.spaces.Discrete):
        raise ValueError(f"env.action_space: DQN needs a Discrete action space, got "
                         f"{env.action_space}; use ddpg_goal_agent for a Box")
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon!r}")
    device = torch.device(config.device) if config.device is not None else get_device()
    set_seed(config.seed)
    n_actions, start = int(env.action_space.n), int(env.action_space.start)
    nets = dqn.QNetworks(goal_observation_space(env.observation_space).shape[0], n_actions,
                         config.n_layers, config.size, device)
    nets.action_start = start
    optimizer = make_adam(nets.online.parameters(), config.learning_rate, device)
    rng = np.random.default_rng(config.seed)
    updates = 0

    def explore(goal_observation: np.ndarray) -> tuple[int, np.ndarray]:
        index = (int(rng.integers(n_actions)) if rng.random() < epsilon
                 else nets.greedy_action(goal_observation) - start)
        return index + start, np.int64(index)

    def learn(batch: ReplayBatch) -> dict[str, torch.Tensor]:
        nonlocal updates
        updates += 1
        return update(nets, optimizer, batch, config, updates)

    return GoalAgent(nets, explore, nets.greedy_action, learn)


def ddpg_goal_agent(env: gym.Env, config: ddpg.DDPGConfig,
                    update: ddpg.Update = ddpg.ddpg_update,
                    agent: Optional[ddpg.DDPGAgent] = None) -> GoalAgent:
    """DDPG or TD3 (``agents/ddpg.py``'s ``DDPGAgent`` and ``update``, e.g. ``td3_update`` with
    ``td3_config()``) on ``concat(observation, goal)``; pass ``agent`` to start from trained
    networks (e.g. an actor pre-trained by behaviour cloning)."""
    agent = agent if agent is not None else ddpg.DDPGAgent(
        goal_observation_space(env.observation_space), env.action_space, config)

    def explore(goal_observation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        unit = agent.explore(goal_observation)
        return agent.to_env(unit), unit.cpu().numpy()

    return GoalAgent(agent, explore, agent.greedy_action, lambda batch: update(agent, batch, config),
                     agent.end_episode)


# ------------------------------------------------------------------------ the loop


def play_episode(env: gym.Env, act: Callable[[np.ndarray], tuple[Any, Any]],
                 seed: Optional[int] = None) -> GoalEpisode:
    """One episode acting on ``concat(observation, desired_goal)``; ``act`` returns the
    environment's action and the action to store."""
    observation, _ = env.reset(seed=seed)
    observations, stored, rewards, terminated, truncated, infos = [observation], [], [], [], [], []
    while True:
        action, kept = act(goal_observations(observation["observation"],
                                             observation["desired_goal"]))
        observation, reward, term, trunc, info = env.step(action)
        for values, value in zip((observations, stored, rewards, terminated, truncated, infos),
                                 (observation, kept, float(reward), term, trunc, info)):
            values.append(value)
        if term or trunc:
            break
    info_array = np.empty(len(infos), dtype=object)
    info_array[:] = infos
    return GoalEpisode(observations=np.stack([o["observation"] for o in observations]),
                       achieved_goals=np.stack([o["achieved_goal"] for o in observations]),
                       desired_goal=np.asarray(observations[0]["desired_goal"]),
                       actions=np.stack(stored), rewards=np.asarray(rewards, dtype=np.float32),
                       terminated=np.asarray(terminated), truncated=np.asarray(truncated),
                       infos=info_array)


def success_of(episode: GoalEpisode) -> bool:
    """Whether the episode ended at its goal: the last info's ``is_success`` (else reward 0)."""
    last = episode.infos[-1] if len(episode.infos) else {}
    return bool(last.get("is_success", episode.rewards[-1] == 0.0))


def check_goal_env(env: gym.Env) -> None:
    """A ValueError unless ``env`` has gymnasium-robotics' goal interface."""
    space = env.observation_space
    if not (isinstance(space, gym.spaces.Dict)
            and {"observation", "achieved_goal", "desired_goal"} <= set(space)
            and callable(getattr(env.unwrapped, "compute_reward", None))):
        raise ValueError("env: HER needs a goal environment: a Dict observation space of "
                         "'observation', 'achieved_goal' and 'desired_goal' and a vectorised "
                         f"compute_reward(achieved_goal, desired_goal, info); got {env} with "
                         f"observation space {space}")


def train(env: gym.Env, agent: GoalAgent, config: HERConfig, store: StoreFn = store_episode,
          tracker: Optional[Tracker] = None, eval_env: Optional[gym.Env] = None) -> Tracker:
    """Train ``agent`` on the goal environment ``env`` with HER, episode by episode.

    ``store`` writes each episode into the replay memory (``store_episode``, or the notebook's).
    Evaluation: ``eval_success`` (``solved_at`` and ``keep_best`` use it) and ``eval_return`` of
    ``config.eval_episodes`` greedy episodes on ``eval_env`` (default: a new ``env.spec``),
    seeds ``seed + 1_000_000 + i``.
    Logged per episode: ``return``, ``episode_length``, ``success``. Whole episodes only: the
    last one may end past ``total_steps``. Pass the agent and the tracker again to continue.
    """
    check_goal_env(env)
    for name in ("gradient_steps", "batch_size", "buffer_size"):
        check_int(name, getattr(config, name))
    for name in ("her_k", "learning_starts"):
        check_int(name, getattr(config, name), minimum=0)
    if agent.buffer is None:
        discrete = isinstance(env.action_space, gym.spaces.Discrete)
        agent.buffer = ReplayBuffer(
            config.buffer_size, goal_observation_space(env.observation_space).shape,
            env.action_space.shape, action_dtype=torch.int64 if discrete else torch.float32,
            device=next(agent.module.parameters()).device, seed=config.seed)
    goal_env = env.unwrapped
    compute_terminated = getattr(goal_env, "compute_terminated", None)
    if config.eval_every and eval_env is None:
        eval_env = gym.make(env.spec)
    if eval_env is not None:
        check_goal_env(eval_env)

    def greedy(goal_observation: np.ndarray) -> tuple[Any, Any]:
        action = agent.greedy(goal_observation)
        return action, action

    def evaluate() -> dict[str, float]:
        episodes = [play_episode(eval_env, greedy, config.seed + 1_000_000 + i)
                    for i in range(config.eval_episodes)]
        return {"eval_success": float(np.mean([success_of(e) for e in episodes])),
                "eval_return": float(np.mean([e.rewards.sum() for e in episodes]))}

    rng = np.random.default_rng(config.seed)  # the relabelled goals' generator
    with TrainingRun(config, agent.module, evaluate, tracker, score_key="eval_success",
                     plot_keys=("success", "eval_success")) as run:
        first = run.step == 0
        env.action_space.seed(config.seed if first else None)
        seed = config.seed if first else config.seed + run.step  # then the env's own stream
        while not run.finished:
            episode = play_episode(env, agent.explore, seed)
            seed = None
            store(agent.buffer, episode, config.her_k, rng, goal_env.compute_reward,
                  compute_terminated)
            agent.end_episode()
            if run.step + len(episode) > config.learning_starts:
                for _ in range(config.gradient_steps):
                    run.update(agent.update(agent.buffer.sample(config.batch_size)))
            run.advance(len(episode))  # logs and evaluates after this episode's updates
            run.episode(float(episode.rewards.sum()), len(episode),
                        success=float(success_of(episode)))
    return run.tracker
