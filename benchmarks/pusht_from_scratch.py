"""PPO from scratch on PushT (notebook 09, section 2) for budgets longer than the notebook's.

    python benchmarks/pusht_from_scratch.py --reward shaped --budget 1000000 --n-envs 32 --seed 0
    {"algo": "ppo-scratch", "env": "course_utils/RelativePushTShaped-v0", …, "score": …, "success_rate": …}

``agents/ppo.py`` trains on ``RelativePushT`` (scaled observations, moves relative to the pusher)
with PushT's coverage reward or ManiSkill3's shaped one, with the notebook's settings except the
number of environments; the greedy policy is then scored on the PushT protocol (resets 0-49):
``score`` is the mean maximum coverage, ``success_rate`` the fraction of episodes that reached
coverage > 0.95. ``solved`` uses the protocol's target for PushT (0.9). Also reported: the mean
training return of the first and of the last 100 episodes, which shows whether it learned at all.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # protocol.py, however this is started
from protocol import result_line, task  # noqa: E402

from course_utils.agents import ppo  # noqa: E402
from course_utils.envs import RELATIVE_PUSHT_IDS  # noqa: E402
from course_utils.envs.pusht_eval import evaluate_pusht  # noqa: E402

# Notebook 09's settings (its cell that trains PPO from scratch), but for n_envs.
SETTINGS = dict(n_steps=256, n_layers=2, size=64, learning_rate=3e-4, gamma=0.99,
                gae_lambda=0.95, n_epochs=10, batch_size=256, entropy_coef=0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reward", choices=sorted(RELATIVE_PUSHT_IDS), default="shaped")
    parser.add_argument("--budget", type=int, default=1_000_000, help="environment steps")
    parser.add_argument("--n-envs", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="PyTorch CPU threads")
    args = parser.parse_args()
    if args.budget < 300 * args.n_envs:  # the returns below need finished episodes
        parser.error(f"--budget {args.budget} is too small: each of the --n-envs {args.n_envs} "
                     "environments needs 300 steps to finish one episode")
    torch.set_num_threads(args.threads)
    env_id = RELATIVE_PUSHT_IDS[args.reward]
    config = ppo.PPOConfig(total_steps=args.budget, n_envs=args.n_envs, seed=args.seed,
                           progress=False, **SETTINGS)
    model, tracker = ppo.train(env_id, config, device="cpu")
    scores = evaluate_pusht(model.greedy_action, range(50), env_id)
    returns = tracker.history["return"]
    score = scores["mean_max_coverage"]
    print(result_line("ppo-scratch", env_id, args.seed, score >= task("course_utils/PushT-v0").target,
                      int(tracker.last("env_steps")), tracker.last("train_seconds"), score,
                      success_rate=round(scores["success_rate"], 2), n_envs=args.n_envs,
                      first_100_return=round(float(np.mean(returns[:100])), 1),
                      last_100_return=round(tracker.mean_last("return", 100), 1),
                      device="cpu", threads=args.threads))


if __name__ == "__main__":
    main()
