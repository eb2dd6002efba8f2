"""The benchmark protocol shared by ``solve.py`` (the course's agents) and ``sb3_peer.py``.

A run trains until a deterministic evaluation reaches the task's target or a step budget runs
out. Every ``eval_every`` environment steps, 10 episodes of the greedy (deterministic) policy are
played on a separate evaluation environment, with the same seeds each time; the task is solved
when their mean return reaches the target. ``env_steps`` is the step count at that evaluation and
``seconds`` the training wall-clock time up to it, evaluation time excluded. One CPU thread
unless told otherwise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional

EVAL_EPISODES = 10
EVAL_SEED_OFFSET = 1_000_000  # evaluation episodes use seeds seed + offset, seed + offset + 1, …


@dataclass(frozen=True)
class Task:
    """A benchmark task: its solving target, evaluation period and default step budget."""

    target: float
    eval_every: int
    budget: int
    eval_episodes: int = EVAL_EPISODES


TASKS = {
    "CartPole-v1": Task(target=475.0, eval_every=2_000, budget=100_000),
    "LunarLander-v3": Task(target=200.0, eval_every=10_000, budget=300_000),
    "Pendulum-v1": Task(target=-200.0, eval_every=1_000, budget=50_000),
    # PushT (Diffusion Policy's protocol): the score is the mean maximum coverage over the 50
    # seeded resets 0-49 (course_utils.envs.pusht_eval.evaluate_pusht), not a return; solved at
    # 0.9, IBC's best on state observations (Chi et al. 2023; the scripted expert scores 0.96).
    # For behaviour cloning, eval_every and budget count epochs over the demonstrations, and
    # the whole budget runs (its learning rate decays to 0 by the last epoch): solved if an
    # evaluation reached the target, the score is the last one, best_score the best.
    "course_utils/PushT-v0": Task(target=0.9, eval_every=50, budget=300),
    # Bit flipping with HER (Andrychowicz et al. 2017): solved when the greedy policy reaches
    # every goal of 100 seeded evaluation episodes (success rate 1.0). eval_every and budget
    # count episodes of n steps, so they grow with the number of bits n; the benchmark's value
    # is the largest n solved.
    "course_utils/BitFlip-v0": Task(target=1.0, eval_every=150, budget=1_500, eval_episodes=100),
}


def task(env_id: str) -> Task:
    """The protocol's settings for ``env_id``, or an error listing the known tasks."""
    if env_id not in TASKS:
        raise SystemExit(f"unknown task {env_id!r}; the protocol knows {sorted(TASKS)}")
    return TASKS[env_id]


def result_line(algo: str, env_id: str, seed: int, solved: bool, env_steps: int, seconds: float,
                score: Optional[float], **extra: Any) -> str:
    """The one JSON line a benchmark run prints last."""
    return json.dumps({"algo": algo, "env": env_id, "seed": seed, "solved": solved,
                       "env_steps": env_steps, "seconds": round(seconds, 2),
                       "score": None if score is None else round(float(score), 2), **extra})
