"""Stable-Baselines3 under the course's benchmark protocol, for the README's peer column.

    pip install stable-baselines3==2.9.2      # in its own virtual environment
    python benchmarks/sb3_peer.py dqn CartPole-v1 --seed 0

Hyperparameters are rl-zoo3 2.9.2's (hyperparams/<algo>.yml). DQN's ε schedule is a fraction of
the zoo's ``n_timesteps``; it is converted to the same number of steps whatever the budget, so a
longer budget does not stretch exploration; likewise the zoo's linear schedules (``lin_<x>``,
PPO's and A2C's learning rate and clip range) reach 0 at the zoo's ``n_timesteps``. PPO and A2C
run on the zoo's ``n_envs`` environments (``make_vec_env``). Evaluation follows ``protocol.py``: same period, episodes,
seeds and target as ``solve.py``, with its time excluded from ``seconds``.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import A2C, DDPG, DQN, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.noise import NormalActionNoise

from protocol import EVAL_EPISODES, EVAL_SEED_OFFSET, result_line, task

ALGORITHMS = {"dqn": DQN, "sac": SAC, "td3": TD3, "ddpg": DDPG, "ppo": PPO, "a2c": A2C}
# rl-zoo3 2.9.2's hyperparams/td3.yml and ddpg.yml, Pendulum-v1 (the same for both).
_ZOO_PENDULUM_TD3_DDPG = dict(n_timesteps=20_000, gamma=0.98, buffer_size=200_000,
                              learning_starts=10_000, noise_type="normal", noise_std=0.1,
                              gradient_steps=1, train_freq=1, learning_rate=1e-3,
                              net_arch=[400, 300])
# rl-zoo3 2.9.2, hyperparams/<algo>.yml.
ZOO = {
    "dqn": {
        "CartPole-v1": dict(n_timesteps=50_000, learning_rate=2.3e-3, batch_size=64,
                            buffer_size=100_000, learning_starts=1_000, gamma=0.99,
                            target_update_interval=10, train_freq=256, gradient_steps=128,
                            exploration_fraction=0.16, exploration_final_eps=0.04,
                            net_arch=[256, 256]),
        "LunarLander-v3": dict(n_timesteps=100_000, learning_rate=6.3e-4, batch_size=128,
                               buffer_size=50_000, learning_starts=0, gamma=0.99,
                               target_update_interval=250, train_freq=4, gradient_steps=-1,
                               exploration_fraction=0.12, exploration_final_eps=0.1,
                               net_arch=[256, 256]),
    },
    "sac": {"Pendulum-v1": dict(n_timesteps=20_000, learning_rate=1e-3)},
    "td3": {"Pendulum-v1": _ZOO_PENDULUM_TD3_DDPG},
    "ddpg": {"Pendulum-v1": _ZOO_PENDULUM_TD3_DDPG},
    # On-policy: n_envs environments; "lin_<x>" is the zoo's linear decay from x to 0 over the
    # run (SB3's progress_remaining goes from 1 to 0 over total_timesteps, i.e. the budget).
    "ppo": {
        "CartPole-v1": dict(n_timesteps=100_000, n_envs=8, n_steps=32, batch_size=256,
                            gae_lambda=0.8, gamma=0.98, n_epochs=20, ent_coef=0.0,
                            learning_rate="lin_0.001", clip_range="lin_0.2"),
        "LunarLander-v3": dict(n_timesteps=1_000_000, n_envs=16, n_steps=1024, batch_size=64,
                               gae_lambda=0.98, gamma=0.999, n_epochs=4, ent_coef=0.01),
        "Pendulum-v1": dict(n_timesteps=100_000, n_envs=4, n_steps=1024, gae_lambda=0.95,
                            gamma=0.9, n_epochs=10, ent_coef=0.0, learning_rate=1e-3,
                            clip_range=0.2, use_sde=True, sde_sample_freq=4),
    },
    "a2c": {
        "CartPole-v1": dict(n_timesteps=500_000, n_envs=8, ent_coef=0.0),
        "LunarLander-v3": dict(n_timesteps=200_000, n_envs=8, gamma=0.995, n_steps=5,
                               learning_rate="lin_0.00083", ent_coef=0.00001),
    },
}


class ProtocolEvaluation(BaseCallback):
    """Evaluates every ``eval_every`` steps, keeps evaluation time apart, stops when solved."""

    def __init__(self, env_id: str, seed: int, eval_every: int, target: float) -> None:
        super().__init__()
        self.eval_env = gym.make(env_id)
        self.seed, self.eval_every, self.target = seed, eval_every, target
        self.eval_seconds = 0.0
        self.history: list[tuple[int, float]] = []

    def _on_step(self) -> bool:
        # With N environments the step count grows N at a time: evaluate at the first step on
        # or past each multiple of eval_every (with one environment, exactly at the multiples).
        if self.num_timesteps // self.eval_every <= len(self.history):
            return True
        start = time.perf_counter()
        returns = []
        for episode in range(EVAL_EPISODES):
            observation, _ = self.eval_env.reset(seed=self.seed + EVAL_SEED_OFFSET + episode)
            done, total = False, 0.0
            while not done:
                action, _ = self.model.predict(observation, deterministic=True)
                observation, reward, terminated, truncated, _ = self.eval_env.step(action)
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
        self.eval_seconds += time.perf_counter() - start
        self.history.append((self.num_timesteps, float(np.mean(returns))))
        return np.mean(returns) < self.target  # False stops training


def linear(initial: float, n_timesteps: int, budget: int):
    """The zoo's ``lin_<x>``: from x to 0 over the zoo's ``n_timesteps``, whatever the budget
    (SB3's ``progress_remaining`` goes from 1 to 0 over the budget), then 0."""
    return lambda progress_remaining: initial * max(
        0.0, 1.0 - (1.0 - progress_remaining) * budget / n_timesteps)


def make_model(algo: str, env_id: str, seed: int, budget: int) -> BaseAlgorithm:
    """The Stable-Baselines3 model with the zoo's hyperparameters for ``env_id``."""
    if env_id not in ZOO[algo]:
        raise SystemExit(f"no zoo settings for {algo} on {env_id!r}; known: {sorted(ZOO[algo])}")
    zoo = dict(ZOO[algo][env_id])
    n_timesteps = zoo.pop("n_timesteps")
    n_envs = zoo.pop("n_envs", None)
    env = make_vec_env(env_id, n_envs=n_envs, seed=seed) if n_envs else gym.make(env_id)
    for name, value in zoo.items():
        if isinstance(value, str) and value.startswith("lin_"):
            zoo[name] = linear(float(value[len("lin_"):]), n_timesteps, budget)
    if "net_arch" in zoo:
        zoo["policy_kwargs"] = dict(net_arch=zoo.pop("net_arch"))
    if "exploration_fraction" in zoo:  # the same ε schedule in steps, whatever the budget
        zoo["exploration_fraction"] = zoo["exploration_fraction"] * n_timesteps / budget
    if zoo.pop("noise_type", None) == "normal":
        n_actions = env.action_space.shape[0]
        zoo["action_noise"] = NormalActionNoise(np.zeros(n_actions),
                                                zoo.pop("noise_std") * np.ones(n_actions))
    return ALGORITHMS[algo]("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **zoo)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("algo", choices=sorted(ZOO))
    parser.add_argument("env_id")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=None)
    parser.add_argument("--budget", type=int, default=None, help="environment steps at most")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    protocol = task(args.env_id)
    eval_every = args.eval_every or protocol.eval_every
    budget = args.budget or protocol.budget
    torch.set_num_threads(args.threads)
    model = make_model(args.algo, args.env_id, args.seed, budget)
    callback = ProtocolEvaluation(args.env_id, args.seed, eval_every, protocol.target)
    start = time.perf_counter()
    model.learn(total_timesteps=budget, callback=callback)
    seconds = time.perf_counter() - start - callback.eval_seconds
    steps, score = callback.history[-1] if callback.history else (model.num_timesteps, None)
    print(result_line(f"sb3-{args.algo}", args.env_id, args.seed,
                      solved=score is not None and score >= protocol.target,
                      env_steps=steps, seconds=seconds, score=score,
                      evaluations=[round(r, 1) for _, r in callback.history]))


if __name__ == "__main__":
    main()
