"""The PushT evaluation protocol (Diffusion Policy's): mean maximum coverage over seeded resets.

A policy runs one episode from ``env.reset(seed=s)`` for every seed (by default the 50 seeds
0–49, at most 300 steps each: PushT's time limit). An episode's score is the **maximum** of
``info["coverage"]`` over its steps (the block may be pushed past its best pose later, and an
episode ends at success anyway); the protocol's score is the mean of those maxima. The success
rate is the fraction of episodes that reached coverage > 0.95. Chi et al. (2023) report the
same score on 50 environment seeds (their table 1: 0.67 for LSTM-GMM on states, 0.95 for
Diffusion Policy).

    from course_utils.envs.pusht_eval import evaluate_pusht
    scores = evaluate_pusht(policy)           # policy(obs) -> action, or an agent with .policy
    scores["mean_max_coverage"], scores["success_rate"]
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import gymnasium as gym
import numpy as np

from course_utils.validation import check_int

__all__ = ["evaluate_pusht"]


def _action_function(policy: Any) -> Callable[[Any], Any]:
    """What to call for an action: ``greedy_action`` when there is one (evaluation acts without
    exploration), else ``get_action``, else the policy itself; an agent is evaluated by its policy."""
    policy = getattr(policy, "policy", policy)
    for name in ("greedy_action", "get_action"):
        if callable(getattr(policy, name, None)):
            return getattr(policy, name)
    if callable(policy):
        return policy
    raise TypeError(f"policy must be callable or have greedy_action/get_action, got {type(policy).__name__}")


def evaluate_pusht(policy: Any, seeds: Iterable[int] = range(50), env_id: str = "course_utils/PushT-v0",
                   max_steps: int = 300, **env_kwargs: Any) -> dict[str, Any]:
    """Run ``policy`` once from ``env.reset(seed=s)`` for every seed in ``seeds``.

    Args:
        policy: maps an observation to an action: a callable, an object with ``greedy_action``
            or ``get_action`` (``greedy_action`` is preferred), or an agent with ``.policy``.
            If the policy (or the agent's policy) has a ``reset()`` method, it is called at the
            start of every episode (the scripted expert and action chunks keep state).
        seeds: the reset seeds, one episode each (the protocol: ``range(50)``).
        env_id: a registered PushT id; ``env_kwargs`` go to ``gym.make`` (e.g. ``obs_type``).
        max_steps: cut an episode after this many steps (PushT truncates at 300 by itself).

    Returns:
        ``{"max_coverage": (S,), "success": (S,) bool, "steps": (S,) int}`` per seed, and
        ``"mean_max_coverage"`` and ``"success_rate"`` (floats), ``S = len(seeds)``.
    """
    import course_utils.envs  # noqa: F401  (registers the environments)

    seeds = [check_int("seeds", s, minimum=0) for s in seeds]
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    max_steps = check_int("max_steps", max_steps)
    act = _action_function(policy)
    reset = getattr(getattr(policy, "policy", policy), "reset", None)
    env = gym.make(env_id, **env_kwargs)
    max_coverage, success, steps = [], [], []
    for seed in seeds:
        obs, info = env.reset(seed=seed)
        if callable(reset):
            reset()
        best, reached, t, done = info["coverage"], bool(info["is_success"]), 0, False
        while not done and t < max_steps:
            obs, _, terminated, truncated, info = env.step(act(obs))
            best, t, done = max(best, info["coverage"]), t + 1, terminated or truncated
            reached = reached or bool(info["is_success"])
        max_coverage.append(best)
        success.append(reached)
        steps.append(t)
    env.close()
    result = {"max_coverage": np.array(max_coverage), "success": np.array(success),
              "steps": np.array(steps)}
    result["mean_max_coverage"] = float(result["max_coverage"].mean())
    result["success_rate"] = float(result["success"].mean())
    return result
