"""Records ``gym_pusht_replays.npz`` (next to this file) with gym-pusht 0.1.8 itself, on pymunk 6.

Not a test and not part of course_utils: run it in a separate environment that has gym-pusht,
    python -m venv /tmp/gympusht && /tmp/gympusht/bin/pip install gym-pusht==0.1.8 "pymunk<7"
    /tmp/gympusht/bin/python tests/data/record_gym_pusht_replays.py
(recorded with gym-pusht 0.1.8, pymunk 6.11.1, numpy 2.4, Python 3.11, x86-64 Linux).
tests/test_pusht.py replays the episodes in course_utils' PushT (pymunk 7).

Two kinds of record:

- ``starts`` (3, 5), ``actions`` (3, 40, 2), ``states`` (3, 41, 5), ``wall_contacts`` (3, 40):
  three episodes started in a fresh space, the block's angle set before its position and no
  physics step before the first action (as course_utils' ``reset_to_state`` does). Episode 0:
  uniform random actions, the block never touches a wall; episode 1: the block pressed against
  the bottom wall (39 of 40 steps); episode 2: pushed into the top-left corner (left and top
  walls). ``wall_contacts[e, t]``: block-wall contact points after step t.
- ``reset_seed`` (50), ``reset_drawn`` (5,), ``reset_actions`` (12, 2), ``reset_states`` (13, 5):
  gym-pusht's own ``reset(seed=50)`` (``reset_drawn``: the state it draws, before its reset
  places the block, position first, and runs one physics step; at that moment the pusher
  overlaps the block) and 12 steps of its action space's samples (``action_space.seed(50)``).
"""

from pathlib import Path

import numpy as np
import pymunk
from gym_pusht.envs.pusht import PushTEnv
from gymnasium.utils import seeding

T = 40


def episodes():
    """The three fresh-space episodes: start states and actions."""
    rng = np.random.default_rng(0)  # free pushing, uniform random actions
    free = np.array([rng.integers(50, 450), rng.integers(50, 450), rng.integers(150, 350),
                     rng.integers(150, 350), rng.uniform(0, 2 * np.pi)], dtype=np.float64)
    starts, actions = [free], [rng.uniform(0, 512, (T, 2))]
    for seed, wall in ((111, "bottom"), (113, "top")):  # the agent drives the block into a wall
        rng = np.random.default_rng(seed)
        along, depth, angle = rng.uniform(150, 360), rng.uniform(130, 160), rng.uniform(0, 2 * np.pi)
        if wall == "bottom":
            block, agent, target = (along, 512 - depth), (along, 512 - depth - 150), (along, 552)
        else:
            block, agent, target = (along, depth), (along, depth + 150), (along, -40)
        starts.append(np.array([*agent, *block, angle]))
        actions.append(np.clip(np.array(target) + rng.normal(0, 40, (T, 2)), 0, 512))
    return np.array(starts), np.array(actions)


def block_wall_contacts(env) -> int:
    walls = [shape for shape in env.space.shapes if isinstance(shape, pymunk.Segment)]
    return sum(len(block.shapes_collide(wall).points) for block in env._block_shapes for wall in walls)


def main():
    env = PushTEnv(obs_type="state")
    env.reset(seed=0)  # (each episode below then gets a fresh space of its own)
    starts, actions = episodes()
    states, wall_contacts = [], []
    for start, episode_actions in zip(starts, actions):
        env._setup()  # a fresh space: no contacts cached from an earlier step
        env.block.angle = start[4]  # angle first, then position, and no physics step
        env.block.position = tuple(start[2:4])
        env.agent.position = tuple(start[:2])
        trajectory, contacts = [env.get_obs()], []
        for action in episode_actions:
            trajectory.append(env.step(action)[0])
            contacts.append(block_wall_contacts(env))
        states.append(trajectory)
        wall_contacts.append(contacts)

    seed = 50
    rng, _ = seeding.np_random(seed)  # the generator reset(seed=50) makes, drawn from as it does
    drawn = np.array([rng.integers(50, 450), rng.integers(50, 450), rng.integers(100, 400),
                      rng.integers(100, 400), rng.uniform(-np.pi, np.pi)])
    observation, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    reset_actions = np.array([env.action_space.sample() for _ in range(12)])
    assert np.array_equal(observation[:2], drawn[:2])  # the agent is where it was drawn
    reset_states = [observation] + [env.step(action)[0] for action in reset_actions]

    np.savez_compressed(Path(__file__).with_name("gym_pusht_replays.npz"),
                        starts=starts, actions=actions, states=np.array(states),
                        wall_contacts=np.array(wall_contacts), reset_seed=seed, reset_drawn=drawn,
                        reset_actions=reset_actions, reset_states=np.array(reset_states))


if __name__ == "__main__":
    main()
