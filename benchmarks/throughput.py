"""PPO's training speed in environment steps per second, on one device, for several numbers of
environments: one JSON line per setting.

    python benchmarks/throughput.py --device cpu --n-envs 8 64
    python benchmarks/throughput.py --device cuda --n-envs 8 64     # on a machine with a GPU

Each setting trains the course's PPO (``solve.py``'s settings for the task, its rollout length
and minibatch size) for ``--steps`` environment steps without evaluation and reports the
training loop's own ``steps_per_second`` (acting, stepping the environments, the updates). The
environments always step on the CPU; on a GPU the networks, the rollout storage and the updates
run there, so the GPU pays off when N·T samples per update are many.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # solve.py, however this is started
from solve import SETTINGS, make_ppo  # noqa: E402

from course_utils.agents.ppo import train  # noqa: E402
from course_utils.device import get_device  # noqa: E402


def measure(env_id: str, n_envs: int, total_steps: int, device: torch.device, seed: int = 0) -> dict:
    """Train PPO for ``total_steps`` steps on ``n_envs`` environments; its speed as a dict."""
    settings = {**SETTINGS["ppo"][env_id]["config"], "n_envs": n_envs}
    _, tracker = train(env_id, make_ppo(env_id, seed, total_steps, **settings), device=device)
    return {"algo": "ppo", "env": env_id, "n_envs": n_envs, "n_steps": settings["n_steps"],
            "device": str(device), "threads": torch.get_num_threads(),
            "env_steps": int(tracker.last("env_steps")),
            "steps_per_second": round(float(tracker.last("steps_per_second")), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-id", default="LunarLander-v3", choices=sorted(SETTINGS["ppo"]))
    parser.add_argument("--n-envs", type=int, nargs="+", default=[8, 64])
    parser.add_argument("--steps", type=int, default=200_000,
                        help="environment steps per setting (rounded up to whole rollouts)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto")
    parser.add_argument("--threads", type=int, default=1, help="PyTorch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = get_device() if args.device == "auto" else torch.device(args.device)
    for n_envs in args.n_envs:
        print(json.dumps(measure(args.env_id, n_envs, args.steps, device)), flush=True)


if __name__ == "__main__":
    main()
