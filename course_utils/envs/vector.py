"""Vector environments for on-policy training (notebooks 06 and 07).

``make_vector_env`` builds N copies of a gymnasium environment stepped together, in the form
the rollout loops of ``agents/a2c.py`` and ``agents/ppo.py`` expect:

* **same-step autoreset**: when an episode ends, ``step`` returns the first observation of the
  next episode and puts the true last observation in ``infos["final_obs"]`` (with the mask
  ``infos["_final_obs"]``), so a truncated episode can bootstrap from ``V(final observation)``;
* **raw episode returns**: ``RecordEpisodeStatistics`` sits beneath any reward normalisation,
  so ``infos["episode"]["r"]`` is the environment's own return;
* optional **reward normalisation** with gymnasium's ``NormalizeReward`` (rewards divided by a
  running standard deviation of the discounted return; training only, evaluation sees raw
  rewards).

Observation normalisation is not done here but by the model (PPO's ``ActorCritic`` with
``PPOConfig(normalize_observations=True)``): gymnasium's vector ``NormalizeObservation`` leaves
``infos["final_obs"]`` unnormalised, and an evaluation environment or an animation would need a
copy of its statistics. Kept in the agent, the statistics are applied, frozen between updates,
wherever the model acts, and are saved with its state_dict.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import gymnasium as gym

from course_utils.validation import check_int


def make_vector_env(env_id: str, n_envs: int, seed: Optional[int] = None, async_: bool = False,
                    normalize_reward: bool = False, gamma: float = 0.99,
                    wrappers: Sequence[Callable[[gym.Env], gym.Env]] = (),
                    **env_kwargs: Any) -> gym.vector.VectorEnv:
    """``n_envs`` copies of ``env_id`` with same-step autoreset, reset with ``seed`` (env i gets
    ``seed + i``).

    Args:
        env_id: a registered gymnasium id, e.g. ``"CartPole-v1"``.
        n_envs: N, the number of environments.
        seed: seeds the first reset and the action space.
        async_: one process per environment (``AsyncVectorEnv``), worth it when a step is slow;
            by default all step in this process (``SyncVectorEnv``).
        normalize_reward: divide rewards by the running std of the γ-discounted return.
        gamma: the discount of that return (the agent's γ).
        wrappers: applied to each single environment, in order, before vectorising.
        env_kwargs: passed to ``gym.make``.
    """
    n_envs = check_int("n_envs", n_envs)
    envs = gym.make_vec(env_id, num_envs=n_envs, vectorization_mode="async" if async_ else "sync",
                        vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
                        wrappers=list(wrappers), **env_kwargs)
    envs = gym.wrappers.vector.RecordEpisodeStatistics(envs)
    if normalize_reward:
        envs = gym.wrappers.vector.NormalizeReward(envs, gamma=gamma)
    envs.action_space.seed(seed)
    envs.reset(seed=seed)
    return envs
