"""PushT demonstrations: record them (scripted expert or your own mouse), save, load.

**File format** (one compressed ``.npz``; ``N`` steps in all, ``E`` episodes)::

    observations        (N, 5) float32  the state each action was taken in
    actions             (N, 2) float64  the action taken (float64: replayed from ``reset(seed=...)``
                                        they reproduce the episode exactly; rounded to float32,
                                        contacts amplify the rounding: drifts of up to 0.07 px)
    coverage            (N,)   float32  the coverage after the action (info["coverage"])
    episode_ends        (E,)   int64    one past the last step of each episode: episode i is
                                        steps episode_ends[i-1] : episode_ends[i] (from 0)
    final_observations  (E, 5) float32  the state after each episode's last action
    seeds               (E,)   int64    the reset seed of each episode (replay: reset(seed=...))
    sources             (E,)   str      "expert", "teleop" or "mirror" (PushTDemos.mirrored)

The observation after step t of an episode is ``observations[t + 1]``, or the episode's final
observation after its last step, so every transition ``(s, a, r, s')`` can be rebuilt (the
reward is ``clip(coverage / 0.95, 0, 1)``; an episode terminated if its last coverage > 0.95).
``episode_ends`` is the convention of Diffusion Policy's replay buffers.

Commands::

    python -m course_utils.envs.pusht_demos record --episodes 50 --out demos.npz      # the expert
    python -m course_utils.envs.pusht_demos teleop --out my_demos.npz                 # your mouse

``teleop`` opens a window (it needs a display): move the mouse onto the blue pusher and it
follows the mouse. Keys: ``S`` saves the episode and starts the next one, ``D`` discards it,
``Q`` or Escape saves the file and quits. An episode ends by itself on success or after 300 steps,
and waits for ``S`` or ``D``. Episodes are added to the file if it exists.

The course ships a small set recorded with the expert, :data:`DEFAULT_DEMOS`
(``load_demos()`` with no argument): 200 episodes from the reset seeds 100-299, disjoint from the
evaluation protocol's seeds 0-49 (``course_utils.envs.pusht_eval``).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import gymnasium as gym
import numpy as np

from course_utils.validation import check_int

__all__ = ["DEFAULT_DEMOS", "ENGAGE_DISTANCE", "FIRST_DEMO_SEED", "EpisodeRecorder", "PushTDemos", "load_demos",
           "mouse_to_action", "record_expert_demos", "save_demos", "teleoperate"]

DEFAULT_DEMOS = Path(__file__).resolve().parent.parent / "data" / "pusht_demos.npz"
# Demonstrations start from reset seeds 100, 101, …: never from the evaluation protocol's
# seeds 0-49, so a cloned policy is not scored on initial states it was trained on.
FIRST_DEMO_SEED = 100
ENGAGE_DISTANCE = 30.0  # px: the pusher follows the mouse once the mouse has come this close
_FIELDS = ("observations", "actions", "coverage", "episode_ends", "final_observations", "seeds", "sources")


@dataclass
class PushTDemos:
    """Demonstrations in the file format of the module's docstring (arrays of the same names)."""

    observations: np.ndarray
    actions: np.ndarray
    coverage: np.ndarray
    episode_ends: np.ndarray
    final_observations: np.ndarray
    seeds: np.ndarray
    sources: np.ndarray

    def __post_init__(self) -> None:
        n, e = len(self.observations), len(self.episode_ends)
        shapes = {"observations": (n, 5), "actions": (n, 2), "coverage": (n,), "episode_ends": (e,),
                  "final_observations": (e, 5), "seeds": (e,), "sources": (e,)}
        for name, shape in shapes.items():
            if np.shape(getattr(self, name)) != shape:
                raise ValueError(f"{name} must have shape {shape}, got {np.shape(getattr(self, name))}")
        ends = np.asarray(self.episode_ends)
        if e and (ends[-1] != n or np.any(np.diff(np.concatenate([[0], ends])) < 1)):
            raise ValueError(f"episode_ends must increase strictly and end at {n} (the number of "
                             f"steps), got {ends.tolist()}")

    @property
    def num_episodes(self) -> int:
        return len(self.episode_ends)

    @property
    def episode_starts(self) -> np.ndarray:
        """The first step of each episode, ``(E,)``."""
        return np.concatenate([[0], self.episode_ends[:-1]]).astype(np.int64)

    @property
    def episode_lengths(self) -> np.ndarray:
        return np.diff(np.concatenate([[0], self.episode_ends]))

    @property
    def max_coverage(self) -> np.ndarray:
        """The best coverage of each episode, ``(E,)``."""
        return np.maximum.reduceat(self.coverage, self.episode_starts) if self.num_episodes else np.zeros(0)

    def episode(self, i: int) -> dict[str, np.ndarray]:
        """Episode ``i``: ``observations (T, 5)``, ``actions (T, 2)``, ``coverage (T,)``,
        ``next_observations (T, 5)`` and its ``seed`` and ``source``."""
        if not -self.num_episodes <= i < self.num_episodes:
            raise IndexError(f"episode index {i} out of range for {self.num_episodes} episodes")
        i %= self.num_episodes
        start, end = self.episode_starts[i], self.episode_ends[i]
        observations = self.observations[start:end]
        return {"observations": observations, "actions": self.actions[start:end],
                "coverage": self.coverage[start:end],
                "next_observations": np.concatenate([observations[1:], self.final_observations[i:i + 1]]),
                "seed": int(self.seeds[i]), "source": str(self.sources[i])}

    def episodes(self) -> Iterator[dict[str, np.ndarray]]:
        return (self.episode(i) for i in range(self.num_episodes))

    def mirrored(self) -> "PushTDemos":
        """The same episodes reflected in the goal T's axis (``course_utils.envs.pusht.mirror_states``):
        PushT is symmetric under that reflection, so they are demonstrations too, from other
        initial states, and ``demos + demos.mirrored()`` doubles a data set for free.

        Coverage, episode ends and seeds are kept; the source becomes ``"mirror"``. A mirrored
        episode replays from ``reset(options={"reset_to_state": observations[start]})``, not from
        its seed, and matches its original up to the walls, which are symmetric to within a pixel.
        """
        from course_utils.envs.pusht import mirror_positions, mirror_states

        return PushTDemos(mirror_states(self.observations).astype(self.observations.dtype),
                          mirror_positions(self.actions).astype(self.actions.dtype), self.coverage.copy(),
                          self.episode_ends.copy(),
                          mirror_states(self.final_observations).astype(self.final_observations.dtype),
                          self.seeds.copy(), np.full(self.num_episodes, "mirror", dtype=self.sources.dtype))

    def __add__(self, other: "PushTDemos") -> "PushTDemos":
        return PushTDemos(
            *(np.concatenate([getattr(self, f), getattr(other, f)]) for f in _FIELDS[:3]),
            np.concatenate([self.episode_ends, other.episode_ends + len(self.observations)]),
            *(np.concatenate([getattr(self, f), getattr(other, f)]) for f in _FIELDS[4:]))


class EpisodeRecorder:
    """Collects the steps of one episode at a time into :class:`PushTDemos`.

    ``start(seed, source)``, then ``add(observation, action, coverage)`` for every step, then
    ``finish(final_observation)`` to keep the episode or ``discard()`` to drop it; ``demos()``
    returns everything kept so far.
    """

    def __init__(self) -> None:
        self._episodes: list[PushTDemos] = []
        self._steps: list[tuple[np.ndarray, np.ndarray, float]] | None = None

    def start(self, seed: int, source: str) -> None:
        self._steps, self._seed, self._source = [], int(seed), str(source)

    def add(self, observation: np.ndarray, action: np.ndarray, coverage: float) -> None:
        if self._steps is None:
            raise RuntimeError("add() called before start()")
        self._steps.append((np.asarray(observation, np.float32), np.asarray(action, np.float64),
                            float(coverage)))

    def __len__(self) -> int:
        """The number of steps of the episode in progress."""
        return len(self._steps or [])

    def finish(self, final_observation: np.ndarray) -> None:
        if not self._steps:
            raise RuntimeError("finish() needs an episode with at least one step")
        observations, actions, coverage = zip(*self._steps)
        self._episodes.append(PushTDemos(
            np.stack(observations), np.stack(actions), np.array(coverage, np.float32),
            np.array([len(observations)], np.int64), np.asarray(final_observation, np.float32)[None],
            np.array([self._seed], np.int64), np.array([self._source])))
        self._steps = None

    def discard(self) -> None:
        self._steps = None

    @property
    def num_episodes(self) -> int:
        return len(self._episodes)

    def demos(self) -> PushTDemos:
        result = _empty_demos()
        for episode in self._episodes:
            result = result + episode
        return result


def _empty_demos() -> PushTDemos:
    return PushTDemos(np.zeros((0, 5), np.float32), np.zeros((0, 2), np.float64), np.zeros(0, np.float32),
                      np.zeros(0, np.int64), np.zeros((0, 5), np.float32), np.zeros(0, np.int64),
                      np.zeros(0, dtype="<U6"))


def save_demos(demos: PushTDemos, path: str | Path) -> Path:
    """Write ``demos`` to a compressed ``.npz`` (the format of the module's docstring)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as file:  # a file object: np.savez would append ".npz" to a bare name
        np.savez_compressed(file, **{field: getattr(demos, field) for field in _FIELDS})
    return path


def load_demos(path: str | Path | None = None) -> PushTDemos:
    """Read demonstrations from ``path`` (the course's shipped set by default)."""
    path = Path(DEFAULT_DEMOS if path is None else path)
    if not path.exists():
        raise FileNotFoundError(f"no demonstration file at {path}")
    with np.load(path, allow_pickle=False) as data:
        missing = [field for field in _FIELDS if field not in data]
        if missing:
            raise ValueError(f"{path} is not a PushT demonstration file: it lacks {missing}")
        return PushTDemos(*(data[field] for field in _FIELDS))


def record_expert_demos(num_episodes: int, seed: int = FIRST_DEMO_SEED, successful_only: bool = False,
                        max_attempts: int | None = None) -> PushTDemos:
    """Episodes of :class:`~course_utils.envs.pusht_expert.PushTExpert` on PushT, from
    ``reset(seed=seed)``, ``seed + 1``, …; with ``successful_only`` the failed ones are skipped
    (and more seeds tried, ``max_attempts`` at most, 2 × num_episodes by default)."""
    import course_utils.envs  # noqa: F401  (registers the environments)
    from course_utils.envs.pusht_expert import PushTExpert

    num_episodes = check_int("num_episodes", num_episodes)
    seed = check_int("seed", seed, minimum=0)
    max_attempts = 2 * num_episodes if max_attempts is None else check_int("max_attempts", max_attempts)
    env, expert, recorder = gym.make("course_utils/PushT-v0"), PushTExpert(), EpisodeRecorder()
    for episode_seed in range(seed, seed + max_attempts):
        if recorder.num_episodes == num_episodes:
            break
        obs, _ = env.reset(seed=episode_seed)
        expert.reset()
        recorder.start(episode_seed, "expert")
        done = False
        while not done:
            action = expert(obs)
            next_obs, _, terminated, truncated, info = env.step(action)
            recorder.add(obs, action, info["coverage"])
            obs, done = next_obs, terminated or truncated
        if successful_only and not info["is_success"]:
            recorder.discard()
        else:
            recorder.finish(obs)
    env.close()
    return recorder.demos()


# --------------------------------------------------------------------------- teleoperation
def mouse_to_action(mouse_position: Sequence[float], window_size: int) -> np.ndarray:
    """A mouse position in a ``window_size`` × ``window_size`` window → a PushT action ``(2,)``.

    The window shows the 512 × 512 workspace scaled, with the same axes (x right, y down), so
    the action is the position times ``512 / window_size``, clipped to the workspace.
    """
    window_size = check_int("window_size", window_size)
    position = np.asarray(mouse_position, dtype=np.float64)
    if position.shape != (2,) or not np.all(np.isfinite(position)):
        raise ValueError(f"mouse_position must be 2 finite numbers, got {mouse_position!r}")
    return np.clip(position * (512.0 / window_size), 0.0, 512.0)


def teleoperate(out: str | Path, seed: int = 1000, window_size: int = 512) -> PushTDemos:
    """Record demonstrations with the mouse in a pygame window (see the module's docstring) and
    add them to ``out``. Needs a display. Episodes use reset seeds ``seed``, ``seed + 1``, ….
    Returns everything in ``out`` afterwards."""
    import pygame

    from course_utils.envs.pusht import PushTEnv

    out, seed = Path(out), check_int("seed", seed, minimum=0)
    env = PushTEnv(render_mode="human", render_size=check_int("window_size", window_size))
    recorder, episode_seed = EpisodeRecorder(), seed
    obs, info = env.reset(seed=episode_seed)
    recorder.start(episode_seed, "teleop")
    engaged, finished, running = False, False, True
    while running:
        for event in pygame.event.get():
            key = event.key if event.type == pygame.KEYDOWN else None
            if event.type == pygame.QUIT or key in (pygame.K_q, pygame.K_ESCAPE):
                running = False
            elif key in (pygame.K_s, pygame.K_d):
                if key == pygame.K_s and len(recorder):
                    steps = len(recorder)
                    recorder.finish(obs)
                    print(f"episode {recorder.num_episodes} kept: {steps} steps, "
                          f"coverage {info['coverage']:.2f}")
                else:
                    recorder.discard()
                episode_seed += 1
                obs, info = env.reset(seed=episode_seed)
                recorder.start(episode_seed, "teleop")
                engaged, finished = False, False
        if not running:
            break
        action = mouse_to_action(pygame.mouse.get_pos(), window_size)
        # Like gym-pusht's teleoperation: nothing moves until the mouse has reached the pusher.
        engaged = engaged or np.linalg.norm(action - obs[:2]) < ENGAGE_DISTANCE
        if engaged and not finished:
            next_obs, _, terminated, _, info = env.step(action)
            recorder.add(obs, action, info["coverage"])
            obs = next_obs
            finished = terminated or len(recorder) >= 300
            state = "success: S to save, D to discard" if terminated else (
                "300 steps: S to save, D to discard" if finished else f"coverage {info['coverage']:.2f}")
            pygame.display.set_caption(f"PushT teleop, episode {recorder.num_episodes + 1}: {state}")
        else:
            env.render()  # keep the window alive (and at 10 frames per second) while waiting
    if len(recorder) and not finished:
        recorder.discard()  # an unfinished episode is not a demonstration
    env.close()
    demos = recorder.demos()
    if out.exists():
        demos = load_demos(out) + demos
    save_demos(demos, out)
    print(f"{recorder.num_episodes} new episodes; {demos.num_episodes} in {out}")
    return demos


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m course_utils.envs.pusht_demos",
                                     description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    record = commands.add_parser("record", help="record the scripted expert")
    record.add_argument("--episodes", type=int, required=True, help="number of episodes to keep")
    record.add_argument("--out", required=True, help="the .npz file to write")
    record.add_argument("--seed", type=int, default=FIRST_DEMO_SEED,
                        help=f"reset seed of the first episode (default {FIRST_DEMO_SEED})")
    record.add_argument("--successful-only", action="store_true", help="keep only successful episodes")
    teleop = commands.add_parser("teleop", help="record your own demonstrations with the mouse")
    teleop.add_argument("--out", required=True, help="the .npz file to add episodes to")
    teleop.add_argument("--seed", type=int, default=1000, help="reset seed of the first episode")
    teleop.add_argument("--window-size", type=int, default=512, help="window side in pixels")
    args = parser.parse_args(argv)
    if args.command == "record":
        demos = record_expert_demos(args.episodes, seed=args.seed, successful_only=args.successful_only)
        path = save_demos(demos, args.out)
        print(f"{demos.num_episodes} episodes, {len(demos.observations)} steps, mean max coverage "
              f"{demos.max_coverage.mean():.3f}, success {np.mean(demos.max_coverage > 0.95):.2f} → "
              f"{path} ({path.stat().st_size / 1024:.0f} KiB)")
    else:
        teleoperate(args.out, seed=args.seed, window_size=args.window_size)


if __name__ == "__main__":
    main()
