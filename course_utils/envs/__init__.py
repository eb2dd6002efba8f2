"""Small environments the course needs, as gymnasium environments.

``KArmedTestbed``: the k-armed testbed of notebook 01, vectorised over runs, registered as
``course_utils/Testbed-v0`` (create it with ``gymnasium.make_vec``).

``GridWorldEnv`` and ``GamblerEnv``: the finite MDPs of notebook 02 (Sutton & Barto's Examples
4.1 and 4.3) with FrozenLake's transition table ``P[s][a]``, registered as
``course_utils/GridWorld-v0`` and ``course_utils/Gambler-v0``; ``transition_arrays(env)`` turns
such a table (FrozenLake's too) into NumPy arrays ``P (S, A, S)`` and ``R (S, A)``.
"""

import gymnasium

from course_utils.envs.testbed import KArmedTestbed
from course_utils.envs.tabular import (GamblerEnv, GridWorldEnv, TabularEnv, table_to_arrays,
                                       transition_arrays)

__all__ = ["KArmedTestbed", "TESTBED_ID"]

TESTBED_ID = "course_utils/Testbed-v0"

if TESTBED_ID not in gymnasium.registry:  # importing twice (e.g. a reload) must not warn
    gymnasium.register(id=TESTBED_ID, vector_entry_point="course_utils.envs.testbed:KArmedTestbed")

# The finite MDPs of notebook 02 (Sutton & Barto, chapter 4), in FrozenLake's table format.
__all__ += ["GAMBLER_ID", "GRIDWORLD_ID", "GamblerEnv", "GridWorldEnv", "TabularEnv",
            "table_to_arrays", "transition_arrays"]

GRIDWORLD_ID = "course_utils/GridWorld-v0"
GAMBLER_ID = "course_utils/Gambler-v0"

if GRIDWORLD_ID not in gymnasium.registry:
    gymnasium.register(id=GRIDWORLD_ID, entry_point="course_utils.envs.tabular:GridWorldEnv",
                       max_episode_steps=100)
if GAMBLER_ID not in gymnasium.registry:
    gymnasium.register(id=GAMBLER_ID, entry_point="course_utils.envs.tabular:GamblerEnv")

# Notebook 03 (Sutton & Barto, chapters 5 and 6): the random walk, the maximisation-bias MDP, and
# Blackjack played many episodes at once (gymnasium's Blackjack-v1 rules with sab=True).
from course_utils.envs.blackjack import BlackjackEpisodes, play_blackjack_episodes  # noqa: E402
from course_utils.envs.max_bias import MaxBiasEnv  # noqa: E402
from course_utils.envs.random_walk import RandomWalkEnv  # noqa: E402

__all__ += ["MAX_BIAS_ID", "RANDOM_WALK_ID", "BlackjackEpisodes", "MaxBiasEnv", "RandomWalkEnv",
            "play_blackjack_episodes"]

RANDOM_WALK_ID = "course_utils/RandomWalk-v0"
MAX_BIAS_ID = "course_utils/MaxBias-v0"

if RANDOM_WALK_ID not in gymnasium.registry:
    gymnasium.register(id=RANDOM_WALK_ID, entry_point="course_utils.envs.random_walk:RandomWalkEnv")
if MAX_BIAS_ID not in gymnasium.registry:
    gymnasium.register(id=MAX_BIAS_ID, entry_point="course_utils.envs.max_bias:MaxBiasEnv")

# Notebook 09: PushT (gym-pusht 0.1.8 on pymunk 7) and its goal-conditioned variant. Registered
# by name only, so that importing course_utils.envs does not import pymunk and pygame; the
# classes are in course_utils.envs.pusht.
__all__ += ["GOAL_PUSHT_ID", "PUSHT_ID"]

PUSHT_ID = "course_utils/PushT-v0"
GOAL_PUSHT_ID = "course_utils/GoalPushT-v0"

if PUSHT_ID not in gymnasium.registry:
    gymnasium.register(id=PUSHT_ID, entry_point="course_utils.envs.pusht:PushTEnv", max_episode_steps=300)
if GOAL_PUSHT_ID not in gymnasium.registry:
    gymnasium.register(id=GOAL_PUSHT_ID, entry_point="course_utils.envs.pusht:GoalPushTEnv",
                       max_episode_steps=300)

# Notebook 09, section 2: PushT for PPO from scratch (scaled observations, moves relative to the
# pusher; course_utils.envs.pusht_relative), with PushT's reward and with the shaped one. The
# wrapped PushT-v0 keeps its 300-step limit.
__all__ += ["RELATIVE_PUSHT_IDS"]

RELATIVE_PUSHT_IDS = {"coverage": "course_utils/RelativePushT-v0",
                      "shaped": "course_utils/RelativePushTShaped-v0"}
for _reward, _env_id in RELATIVE_PUSHT_IDS.items():
    if _env_id not in gymnasium.registry:
        gymnasium.register(id=_env_id, entry_point="course_utils.envs.pusht_relative:RelativePushT",
                           kwargs={"reward": _reward})

# Notebook 09: the bit-flipping task of Hindsight Experience Replay, with the goal interface of
# gymnasium-robotics (its episode length is n_bits, so the environment truncates itself).
from course_utils.envs.bitflip import BitFlipEnv  # noqa: E402

__all__ += ["BITFLIP_ID", "BitFlipEnv"]

BITFLIP_ID = "course_utils/BitFlip-v0"

if BITFLIP_ID not in gymnasium.registry:
    gymnasium.register(id=BITFLIP_ID, entry_point="course_utils.envs.bitflip:BitFlipEnv")
