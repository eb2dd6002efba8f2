"""Run the course's agent and Stable-Baselines3 in one sitting and print the README's table.

    python benchmarks/compare.py dqn CartPole-v1 LunarLander-v3 --peer-python /path/to/sb3-venv/bin/python

For each task and seed (0, 1, 2 by default), ``solve.py`` and ``sb3_peer.py`` run one after the
other, alternating, so both see the same machine load. Every JSON line is appended to
``--out`` (default ``benchmarks/results.jsonl``); the table shows the median over seeds of the
environment steps and seconds to solve (a run that did not solve counts as its budget).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(command: list[str]) -> dict:
    """Run one benchmark process and return the JSON of its last line."""
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        raise SystemExit(f"{' '.join(command)} failed:\n{completed.stderr[-2000:]}")
    return json.loads(lines[-1])


def median_cell(results: list[dict]) -> str:
    """``steps / seconds`` medians, with how many seeds solved."""
    steps = statistics.median(r["env_steps"] for r in results)
    seconds = statistics.median(r["seconds"] for r in results)
    solved = sum(r["solved"] for r in results)
    return f"{steps:,.0f} steps, {seconds:.0f} s ({solved}/{len(results)} solved)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("algo")
    parser.add_argument("env_ids", nargs="+")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--peer-python", required=True,
                        help="a Python with stable-baselines3 installed")
    parser.add_argument("--budget", type=int, default=None)
    parser.add_argument("--out", type=Path, default=HERE / "results.jsonl")
    args = parser.parse_args()
    budget = ["--budget", str(args.budget)] if args.budget else []
    rows = []
    for env_id in args.env_ids:
        ours, peer = [], []
        for seed in args.seeds:
            for runner, python, script in ((ours, sys.executable, "solve.py"),
                                           (peer, args.peer_python, "sb3_peer.py")):
                result = run([python, str(HERE / script), args.algo, env_id, "--seed", str(seed),
                              *budget])
                runner.append(result)
                with args.out.open("a") as f:
                    f.write(json.dumps(result) + "\n")
                print(json.dumps(result), flush=True)
        rows.append(f"| {args.algo} | {env_id} | {median_cell(ours)} | {median_cell(peer)} |")
    print("| algorithm | task | course_utils (median of seeds) | Stable-Baselines3 (median) |")
    print("|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
