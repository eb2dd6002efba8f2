"""benchmarks/solve.py prints the protocol's JSON line; compare.py summarises seeds correctly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import compare  # noqa: E402
import protocol  # noqa: E402


def test_solve_prints_one_json_line_with_the_protocol_fields():
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / "solve.py"), "dqn", "CartPole-v1", "--seed", "3",
         "--budget", "1200", "--eval-every", "600"],
        capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert {"algo", "env", "seed", "solved", "env_steps", "seconds", "score"} <= set(result)
    assert (result["algo"], result["env"], result["seed"]) == ("dqn", "CartPole-v1", 3)
    # 1,200 steps are far too few to balance the pole for 475 steps.
    assert result["solved"] is False and result["env_steps"] == 1200
    assert 0 < result["seconds"] and 8 <= result["score"] < 475


def test_solve_refuses_an_unknown_task():
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / "solve.py"), "dqn", "MountainCar-v0"],
        capture_output=True, text=True, timeout=60)
    assert completed.returncode != 0 and "MountainCar-v0" in completed.stderr


def test_protocol_targets_are_the_registered_thresholds():
    assert protocol.task("CartPole-v1").target == 475
    assert protocol.task("LunarLander-v3").target == 200
    assert protocol.task("Pendulum-v1").eval_every == 1_000
    with pytest.raises(SystemExit, match="unknown task"):
        protocol.task("Breakout-v5")


def test_median_cell_takes_medians_and_counts_solved_runs():
    results = [{"env_steps": 10_000, "seconds": 9.0, "solved": True},
               {"env_steps": 30_000, "seconds": 40.0, "solved": False},
               {"env_steps": 20_000, "seconds": 12.5, "solved": True}]
    assert compare.median_cell(results) == "20,000 steps, 12 s (2/3 solved)"


@pytest.mark.parametrize("algo, env_id", [("a2c", "CartPole-v1"), ("ppo", "Pendulum-v1")])
def test_on_policy_solve_runs_on_vector_envs_and_stops_at_the_budget(algo, env_id):
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / "solve.py"), algo, env_id, "--seed", "1",
         "--budget", "600", "--eval-every", "300"],
        capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert (result["algo"], result["env"], result["seed"]) == (algo, env_id, 1)
    # Rollouts of n_envs·n_steps samples: evaluated after the first update past 300 steps.
    assert result["solved"] is False and 300 <= result["env_steps"]
    assert result["seconds"] > 0 and result["score"] < protocol.task(env_id).target


def test_every_algorithm_has_settings_for_the_issues_tasks():
    import solve
    assert set(solve.SETTINGS["ppo"]) == {"CartPole-v1", "LunarLander-v3", "Pendulum-v1"}
    assert set(solve.SETTINGS["a2c"]) == {"CartPole-v1", "LunarLander-v3"}
    # Each algorithm trains through an agent maker or a solve_<algo> function of its own.
    assert all(algo in solve.MAKERS or callable(getattr(solve, f"solve_{algo}", None))
               for algo in solve.SETTINGS)


def test_bc_on_pusht_reports_the_mean_max_coverage_and_the_demonstration_steps():
    from course_utils.envs.pusht_demos import load_demos

    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / "solve.py"), "bc", "course_utils/PushT-v0", "--seed", "0",
         "--budget", "1", "--eval-every", "1", "--demos", "5"],
        capture_output=True, text=True, timeout=300, check=True)
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert (result["algo"], result["env"], result["seed"]) == ("bc", "course_utils/PushT-v0", 0)
    # One epoch on 5 demonstrations is far from imitating the expert.
    # The 5 episodes and their mirror images.
    assert result["env_steps"] == 2 * int(load_demos().episode_ends[4]) and result["solved"] is False
    assert result["seconds"] > 0 and 0 <= result["score"] < protocol.task("course_utils/PushT-v0").target
    assert result["best_score"] == result["score"] and result["best_epoch"] == 1


@pytest.mark.parametrize("n_bits, budget, solvable", [(2, 60, True), (20, 2, False)])
def test_her_on_bitflip_reports_the_success_rate_and_the_number_of_bits(n_bits, budget, solvable):
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / "solve.py"), "her", "course_utils/BitFlip-v0", "--seed", "0",
         "--n-bits", str(n_bits), "--budget", str(budget), "--eval-every", "1"],
        capture_output=True, text=True, timeout=300, check=True)
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert (result["algo"], result["n_bits"]) == ("her", n_bits)
    # Evaluations come after whole episodes of n steps, at most `budget` of them.
    assert 0 < result["env_steps"] <= budget * n_bits and result["env_steps"] % n_bits == 0
    # Two bits are solved within a few episodes; twenty in two episodes are not.
    assert result["solved"] is solvable and (result["score"] == 1.0) is solvable


def test_throughput_prints_the_speed_of_each_number_of_environments():
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / "throughput.py"), "--env-id", "CartPole-v1",
         "--n-envs", "2", "4", "--steps", "300", "--device", "cpu"],
        capture_output=True, text=True, timeout=120, check=True)
    results = [json.loads(line) for line in completed.stdout.strip().splitlines()]
    assert [r["n_envs"] for r in results] == [2, 4]
    for result in results:
        # Whole rollouts of n_envs × 32 steps: at least the 300 asked for, less than one more.
        rollout = result["n_envs"] * result["n_steps"]
        assert 300 <= result["env_steps"] < 300 + rollout and result["env_steps"] % rollout == 0
        assert result["device"] == "cpu" and result["steps_per_second"] > 0


def test_grading_times_a_class_and_checks_it_was_graded():
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / "grading.py"), "--notebook", "01_bandits.ipynb",
         "--submissions", "2", "--jobs", "2"],
        capture_output=True, text=True, timeout=300, check=True)
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert (result["notebook"], result["submissions"], result["jobs"]) == ("01_bandits.ipynb", 2, 2)
    assert result["full_marks"] == 2, "both solved submissions score all their points"
    assert result["seconds"] > 0  # both rounded: seconds to 0.1, per submission to 0.01
    assert result["seconds_per_submission"] == pytest.approx(result["seconds"] / 2, abs=0.06)


@pytest.mark.parametrize("algo", ["ddpg", "td3", "sac"])
def test_ddpg_td3_and_sac_train_through_their_single_file_train(algo):
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / "solve.py"), algo, "Pendulum-v1", "--seed", "0",
         "--budget", "1200", "--eval-every", "600"],
        capture_output=True, text=True, timeout=300, check=True)
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert (result["algo"], result["env"], result["env_steps"]) == (algo, "Pendulum-v1", 1200)
    assert result["solved"] is False and result["score"] < -200


def test_rlft_on_pusht_reports_the_success_rate_and_the_bc_starting_point(tmp_path):
    # From a saved (untrained) BC policy: a few RL steps, then the protocol's 50 resets.
    import gymnasium as gym
    import torch

    import course_utils.envs  # noqa: F401
    from course_utils.agents.bc import BCConfig, BCPolicy, history_space
    from course_utils.envs.pusht_features import pusht_history_features, pusht_history_frame

    env = gym.make("course_utils/PushT-v0")
    bc = BCPolicy(history_space(env.observation_space), env.action_space,
                  BCConfig(n_layers=3, size=256, device="cpu"), pusht_history_features, pusht_history_frame)
    torch.save(bc.state_dict(), tmp_path / "bc.pt")
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / "solve.py"), "rlft", "course_utils/PushT-v0", "--seed", "0",
         "--budget", "40", "--eval-every", "40", "--bc-checkpoint", str(tmp_path / "bc.pt")],
        capture_output=True, text=True, timeout=600, check=True)
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert (result["algo"], result["env"], result["env_steps"]) == ("rlft", "course_utils/PushT-v0", 40)
    assert result["solved"] is False and 0 <= result["score"] <= result["bc_success_rate"] + 0.1
    assert 0 <= result["mean_max_coverage"] <= 1 and 0 <= result["bc_mean_max_coverage"] <= 1
    assert result["bc_seconds"] == 0 and result["validation_steps"] == [40]


def test_pusht_from_scratch_reports_the_success_rate_and_whether_it_learned():
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / "pusht_from_scratch.py"), "--reward", "shaped",
         "--budget", "1024", "--n-envs", "2", "--seed", "0"],
        capture_output=True, text=True, timeout=600, check=True)
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert (result["algo"], result["env"], result["seed"]) == (
        "ppo-scratch", "course_utils/RelativePushTShaped-v0", 0)
    # Two rollouts of 2 x 256 steps: far too few to learn to push the T home.
    assert result["env_steps"] == 1024 and result["solved"] is False and result["success_rate"] == 0
    assert 0 <= result["score"] < 0.9 and result["n_envs"] == 2
    assert result["first_100_return"] == result["last_100_return"]  # the same two episodes


def test_pusht_from_scratch_refuses_a_budget_that_finishes_no_episode():
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / "pusht_from_scratch.py"), "--budget", "500", "--n-envs", "2"],
        capture_output=True, text=True, timeout=120)
    assert completed.returncode != 0 and "--budget 500 is too small" in completed.stderr


def test_notebook_09_plots_the_benchmark_s_own_rlft_numbers():
    # Notebook 09 cannot afford three seeds of RL fine-tuning, so it plots the numbers that
    # solve.py rlft wrote to results.jsonl; they must be the latest line of each seed.
    import ast

    notebook = json.loads((BENCHMARKS.parent / "notebooks" / "09_pusht_bc_her.ipynb").read_text())
    source = next("".join(cell["source"]) for cell in notebook["cells"]
                  if "BENCHMARK_RLFT = " in "".join(cell["source"]))
    plotted = {node.targets[0].id: ast.literal_eval(node.value) for node in ast.parse(source).body
               if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
               and node.targets[0].id in ("BENCHMARK_STEPS", "BENCHMARK_RLFT")}
    lines = [json.loads(line) for line in (BENCHMARKS / "results.jsonl").read_text().splitlines()]
    latest = {line["seed"]: line for line in lines
              if line["algo"] == "rlft" and line["env"] == "course_utils/PushT-v0"}
    assert set(plotted["BENCHMARK_RLFT"]) == set(latest) == {0, 1, 2}
    for seed, (curve, bc_rate, rl_rate) in plotted["BENCHMARK_RLFT"].items():
        assert latest[seed]["validation_steps"] == plotted["BENCHMARK_STEPS"]
        assert (curve, bc_rate, rl_rate) == (latest[seed]["validation_success"],
                                             latest[seed]["bc_success_rate"], latest[seed]["score"])
