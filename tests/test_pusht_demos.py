"""Unit tests of the PushT expert (course_utils.envs.pusht_expert) and demonstrations
(course_utils.envs.pusht_demos): file format, recorder, loader, the shipped set, mouse mapping."""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import course_utils.envs  # noqa: E402,F401  (registers the environments)
from course_utils.envs import GOAL_PUSHT_ID, PUSHT_ID  # noqa: E402
from course_utils.envs.pusht import coverage_reward  # noqa: E402
from course_utils.envs.pusht_demos import (DEFAULT_DEMOS, EpisodeRecorder, PushTDemos,  # noqa: E402
                                           load_demos, main, mouse_to_action, record_expert_demos,
                                           save_demos)
from course_utils.envs.pusht_expert import PushTExpert, evaluate_expert  # noqa: E402


# ------------------------------------------------------------------------------------- expert
def test_expert_solves_seeded_resets():
    result = evaluate_expert(seeds=[0, 1, 2])
    assert result["success"].tolist() == [True, True, True]
    assert result["mean_max_coverage"] > 0.95 and result["success_rate"] == 1.0
    assert np.all(result["steps"] < 300)


def test_expert_solves_a_sampled_goal():
    env = gym.make(GOAL_PUSHT_ID)
    expert = PushTExpert()
    obs, info = env.reset(seed=3)
    done = False
    while not done:
        obs, reward, terminated, truncated, info = env.step(expert(obs))
        done = terminated or truncated
    assert terminated and info["is_success"] and reward == 0.0


def test_expert_rejects_a_bad_observation():
    with pytest.raises(ValueError, match="obs"):
        PushTExpert()(np.zeros(4))


def test_expert_needs_its_pushes():
    """Without pushing (standing still) the same episodes are not solved: the test can fail."""
    env = gym.make(PUSHT_ID)
    obs, info = env.reset(seed=0)
    for _ in range(300):
        obs, _, terminated, truncated, info = env.step(obs[:2])
        if terminated or truncated:
            break
    assert not info["is_success"]


# ---------------------------------------------------------------------------------- the format
def _toy_demos() -> PushTDemos:
    recorder = EpisodeRecorder()
    for e, length in enumerate([3, 2]):
        recorder.start(seed=10 + e, source="expert")
        for t in range(length):
            recorder.add(np.full(5, 10 * e + t), np.array([t, -t]), coverage=0.1 * t)
        recorder.finish(np.full(5, 10 * e + length))
    recorder.start(seed=99, source="teleop")
    recorder.add(np.zeros(5), np.zeros(2), 0.0)
    recorder.discard()  # a discarded episode leaves no trace
    return recorder.demos()


def test_recorder_layout_and_episode_access():
    demos = _toy_demos()
    assert demos.num_episodes == 2 and demos.episode_ends.tolist() == [3, 5]
    assert demos.episode_starts.tolist() == [0, 3] and demos.episode_lengths.tolist() == [3, 2]
    np.testing.assert_allclose(demos.max_coverage, [0.2, 0.1], rtol=1e-6)
    second = demos.episode(1)
    assert second["seed"] == 11 and second["source"] == "expert"
    np.testing.assert_array_equal(second["observations"][:, 0], [10, 11])
    np.testing.assert_array_equal(second["next_observations"][:, 0], [11, 12])  # ends with the final one
    np.testing.assert_array_equal(demos.episode(-1)["actions"], second["actions"])
    with pytest.raises(IndexError):
        demos.episode(2)
    assert [len(e["actions"]) for e in demos.episodes()] == [3, 2]


def test_save_and_load_round_trip(tmp_path):
    demos = _toy_demos()
    path = save_demos(demos, tmp_path / "sub" / "demos")  # no .npz suffix added, folders made
    assert path.exists() and path.name == "demos"
    loaded = load_demos(path)
    for field in ("observations", "actions", "coverage", "episode_ends", "final_observations", "seeds",
                  "sources"):
        np.testing.assert_array_equal(getattr(loaded, field), getattr(demos, field))
    both = loaded + demos
    assert both.episode_ends.tolist() == [3, 5, 8, 10] and both.num_episodes == 4


def test_bad_files_and_layouts_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_demos(tmp_path / "missing.npz")
    np.savez_compressed(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="lacks"):
        load_demos(tmp_path / "other.npz")
    demos = _toy_demos()
    with pytest.raises(ValueError, match="episode_ends"):
        PushTDemos(demos.observations, demos.actions, demos.coverage, np.array([3, 4]),
                   demos.final_observations, demos.seeds, demos.sources)
    with pytest.raises(ValueError, match="actions"):
        PushTDemos(demos.observations, demos.actions[:, :1], demos.coverage, demos.episode_ends,
                   demos.final_observations, demos.seeds, demos.sources)
    with pytest.raises(RuntimeError):
        EpisodeRecorder().add(np.zeros(5), np.zeros(2), 0.0)


def test_recorded_expert_episodes_replay_exactly():
    demos = record_expert_demos(3, seed=1)
    assert demos.num_episodes == 3 and demos.seeds.tolist() == [1, 2, 3]
    assert set(demos.sources) == {"expert"}
    env = gym.make(PUSHT_ID)
    for episode in demos.episodes():
        obs, _ = env.reset(seed=episode["seed"])
        np.testing.assert_allclose(obs, episode["observations"][0], rtol=1e-6)
        assert episode["actions"].dtype == np.float64  # exact actions: an exact replay
        for t, action in enumerate(episode["actions"]):
            obs, reward, terminated, truncated, info = env.step(action)
            # Observations are stored as float32: equal up to that rounding.
            np.testing.assert_allclose(obs, episode["next_observations"][t], rtol=1e-6, atol=1e-4)
            assert info["coverage"] == pytest.approx(episode["coverage"][t], abs=1e-6)
        assert terminated or truncated
        assert reward == pytest.approx(float(coverage_reward(episode["coverage"][-1])), abs=1e-4)


def test_record_command_writes_a_file(tmp_path, capsys):
    out = tmp_path / "demos.npz"
    main(["record", "--episodes", "1", "--out", str(out), "--seed", "7"])
    demos = load_demos(out)
    assert demos.num_episodes == 1 and demos.seeds.tolist() == [7]
    assert "1 episodes" in capsys.readouterr().out


def test_shipped_demonstrations():
    assert DEFAULT_DEMOS.exists() and DEFAULT_DEMOS.stat().st_size < 1_000_000
    demos = load_demos()
    assert demos.num_episodes >= 50 and set(demos.sources) == {"expert"}
    assert len(np.unique(demos.seeds)) == demos.num_episodes
    # A policy cloned from them is evaluated on seeds 0-49: none may start where a demonstration did.
    assert not set(demos.seeds.tolist()) & set(range(50))
    assert demos.max_coverage.mean() > 0.9
    assert demos.observations.dtype == np.float32 and demos.actions.shape == (len(demos.observations), 2)
    assert demos.actions.min() >= 0 and demos.actions.max() <= 512


# ------------------------------------------------------------------------------ teleoperation
def test_mouse_to_action():
    np.testing.assert_allclose(mouse_to_action((256, 128), 512), [256, 128])
    np.testing.assert_allclose(mouse_to_action((340, 680), 680), [256, 512])  # scaled
    np.testing.assert_allclose(mouse_to_action((-5, 900), 512), [0, 512])  # clipped
    with pytest.raises(ValueError, match="mouse_position"):
        mouse_to_action((1, 2, 3), 512)
    with pytest.raises(ValueError, match="window_size"):
        mouse_to_action((1, 2), 0)


def test_teleoperation_loop_with_a_scripted_mouse(tmp_path, monkeypatch):
    """The interactive loop, driven by a fake mouse and keyboard (SDL's dummy video driver)."""
    import pygame

    from course_utils.envs.pusht import PushTEnv
    from course_utils.envs.pusht_demos import teleoperate

    start, _ = PushTEnv().reset(seed=1000)
    far = (start[:2] + 100) % 512  # away from the pusher: nothing moves until the mouse reaches it
    mouse = [far, far] + [start[:2] + [3 * t, 0] for t in range(6)]
    keys = [[] for _ in mouse] + [[pygame.K_s], [pygame.K_q]]
    frame = iter(range(len(keys)))

    def events():
        i = next(frame)
        monkeypatch.setattr(pygame.mouse, "get_pos", lambda: tuple(mouse[min(i, len(mouse) - 1)]))
        return [pygame.event.Event(pygame.KEYDOWN, key=k) for k in keys[i]]

    monkeypatch.setattr(pygame.event, "get", events)
    out = tmp_path / "mine.npz"
    save_demos(_toy_demos(), out)  # an existing file: the new episode is added to it
    demos = teleoperate(out, seed=1000)
    assert demos.num_episodes == 3 and demos.sources.tolist() == ["expert", "expert", "teleop"]
    mine = demos.episode(2)
    assert mine["seed"] == 1000 and len(mine["actions"]) == 6  # the two far frames are not steps
    np.testing.assert_allclose(mine["actions"][:, 0], start[0] + 3 * np.arange(6), rtol=1e-6)
    np.testing.assert_allclose(mine["observations"][0], start, rtol=1e-6)
    assert load_demos(out).num_episodes == 3


def test_mirrored_demonstrations_replay_from_their_first_state():
    demos = record_expert_demos(2, seed=3)
    mirrored = demos.mirrored()
    assert mirrored.num_episodes == 2 and set(mirrored.sources) == {"mirror"}
    np.testing.assert_array_equal(mirrored.episode_ends, demos.episode_ends)
    np.testing.assert_allclose(mirrored.mirrored().actions, demos.actions)
    assert not np.allclose(mirrored.observations, demos.observations)
    both = demos + mirrored
    assert both.num_episodes == 4
    env = gym.make("course_utils/PushT-v0")
    episode = mirrored.episode(1)
    obs, _ = env.reset(options={"reset_to_state": episode["observations"][0]})
    for action, coverage, next_obs in zip(episode["actions"], episode["coverage"], episode["next_observations"]):
        obs, _, _, _, info = env.step(action)
        # The first state is stored in float32, and contacts amplify its rounding a little.
        assert info["coverage"] == pytest.approx(coverage, abs=1e-2)
    np.testing.assert_allclose(obs[:4], next_obs[:4], atol=1.0)
