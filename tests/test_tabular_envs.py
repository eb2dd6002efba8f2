"""Unit tests of course_utils.envs.tabular: the gridworld and the Gambler's problem as gymnasium
environments with FrozenLake's transition table, and the conversion of such tables to arrays."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from course_utils.envs import (GAMBLER_ID, GRIDWORLD_ID, GamblerEnv, GridWorldEnv, TabularEnv,
                               table_to_arrays, transition_arrays)

LEFT, DOWN, RIGHT, UP = 0, 1, 2, 3


def solve_policy(P, R, policy, gamma=1.0):
    """v_π exactly, by the linear Bellman equation (I − γ P_π) v = R_π."""
    P_pi = np.einsum("sa,sat->st", policy, P)
    return np.linalg.solve(np.eye(len(R)) - gamma * P_pi, (policy * R).sum(axis=1))


def value_iteration(P, R, gamma=1.0, theta=1e-13):
    V = np.zeros(len(R))
    while True:
        new = (R + gamma * P @ V).max(axis=1)
        if np.abs(new - V).max() < theta:
            return new
        V = new


# ------------------------------------------------------------------------------- registration


def test_registered_ids_make_the_environments():
    grid = gym.make(GRIDWORLD_ID)
    assert isinstance(grid.unwrapped, GridWorldEnv)
    assert grid.spec.max_episode_steps == 100
    gambler = gym.make(GAMBLER_ID, p_heads=0.25)
    assert isinstance(gambler.unwrapped, GamblerEnv) and gambler.unwrapped.p_heads == 0.25
    assert gambler.spec.max_episode_steps is None
    assert GRIDWORLD_ID == "course_utils/GridWorld-v0" and GAMBLER_ID == "course_utils/Gambler-v0"


@pytest.mark.parametrize("env_id, kwargs", [(GRIDWORLD_ID, {"render_mode": "ansi"}),
                                            (GAMBLER_ID, {"render_mode": "ansi"}),
                                            (GAMBLER_ID, {"goal": 7, "p_heads": 1.0})])
def test_gymnasium_env_checker_passes_without_warnings(env_id, kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(gym.make(env_id, **kwargs).unwrapped)
    assert not caught, [str(w.message) for w in caught]


# ------------------------------------------------------------------------------- gridworld


def test_gridworld_table_is_example_4_1():
    env = GridWorldEnv()
    assert env.observation_space == gym.spaces.Discrete(16)
    assert env.action_space == gym.spaces.Discrete(4)
    assert env.terminal_states == (0, 15)
    P = env.P
    # Moves, including into the walls (state unchanged) and into a terminal corner.
    assert P[5][LEFT] == [(1.0, 4, -1.0, False)]
    assert P[5][UP] == [(1.0, 1, -1.0, False)]
    assert P[5][RIGHT] == [(1.0, 6, -1.0, False)]
    assert P[5][DOWN] == [(1.0, 9, -1.0, False)]
    assert P[4][LEFT] == [(1.0, 4, -1.0, False)]
    assert P[3][UP] == [(1.0, 3, -1.0, False)]
    assert P[1][LEFT] == [(1.0, 0, -1.0, True)]
    assert P[11][DOWN] == [(1.0, 15, -1.0, True)]
    # Terminal states are absorbing with reward 0, as in FrozenLake.
    for s in (0, 15):
        for a in range(4):
            assert P[s][a] == [(1.0, s, 0.0, True)]


def test_gridworld_random_policy_values_are_figure_4_1():
    P, R = transition_arrays(GridWorldEnv())
    V = solve_policy(P[1:15][:, :, 1:15], R[1:15], np.full((14, 4), 0.25))
    expected = -np.array([14, 20, 22, 14, 18, 20, 20, 20, 20, 18, 14, 22, 20, 14])
    np.testing.assert_allclose(V, expected, atol=1e-9)


def test_gridworld_optimal_values_are_minus_the_distance_to_a_corner():
    P, R = transition_arrays(GridWorldEnv(size=5))
    V = value_iteration(P, R)
    rows, cols = np.divmod(np.arange(25), 5)
    distance = np.minimum(rows + cols, (4 - rows) + (4 - cols))
    np.testing.assert_allclose(V, -distance)


def test_gridworld_steps_follow_the_table():
    env = GridWorldEnv()
    state, info = env.reset(seed=0, options={"state": 6})
    assert state == 6 and info == {"prob": pytest.approx(1 / 14)}
    assert env.step(UP) == (2, -1.0, False, False, {"prob": 1.0})
    assert env.step(LEFT) == (1, -1.0, False, False, {"prob": 1.0})
    assert env.step(LEFT) == (0, -1.0, True, False, {"prob": 1.0})
    assert env.step(RIGHT) == (0, 0.0, True, False, {"prob": 1.0})  # absorbing


def test_gridworld_resets_uniformly_in_non_terminal_states_and_is_seeded():
    env = GridWorldEnv()
    starts = [env.reset(seed=seed)[0] for seed in range(2000)]
    assert set(starts) == set(range(1, 15))
    assert [GridWorldEnv().reset(seed=3)[0] for _ in range(3)] == [starts[3]] * 3
    counts = np.bincount(starts, minlength=16)[1:15]
    assert counts.min() > 2000 / 14 * 0.6


def test_gridworld_custom_terminals_size_and_reward():
    env = GridWorldEnv(size=3, terminal_states=[4], step_reward=-2.0)
    assert env.observation_space.n == 9 and env.terminal_states == (4,)
    assert env.P[1][DOWN] == [(1.0, 4, -2.0, True)]
    assert env.P[0][RIGHT] == [(1.0, 1, -2.0, False)]


def test_gridworld_renders_text():
    env = GridWorldEnv(render_mode="ansi")
    env.reset(seed=0, options={"state": 5})
    assert env.render() == "T . . .\n. x . .\n. . . .\n. . . T\n"
    assert GridWorldEnv().render() is None


@pytest.mark.parametrize("kwargs, fragment", [
    ({"size": 1}, "size must be an int >= 2"),
    ({"size": 4.0}, "size must be an int"),
    ({"terminal_states": []}, "terminal_states must be a non-empty proper subset"),
    ({"terminal_states": [16]}, "terminal_states must be a non-empty proper subset of 0, …, 15"),
    ({"terminal_states": range(16)}, "proper subset"),
    ({"step_reward": float("nan")}, "step_reward must be a finite number"),
    ({"step_reward": True}, "step_reward must be a finite number"),
    ({"render_mode": "human"}, "render_mode must be None or one of ['ansi']"),
])
def test_gridworld_bad_arguments(kwargs, fragment):
    with pytest.raises(ValueError) as info:
        GridWorldEnv(**kwargs)
    assert fragment in str(info.value)


def test_step_before_reset_and_bad_actions_are_refused():
    env = GridWorldEnv()
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(0)
    env.reset(seed=0)
    for action in (4, -1, 1.0, True, "left"):
        with pytest.raises(ValueError, match=r"action must be an int in 0, …, 3"):
            env.step(action)
    assert env.step(np.int64(2))[1] == -1.0
    with pytest.raises(ValueError, match=r"options\['state'\] must be a state in 0, …, 15"):
        env.reset(options={"state": 16})


# ------------------------------------------------------------------------------- gambler


def test_gambler_table_caps_stakes_and_pays_at_the_goal():
    env = GamblerEnv(goal=100, p_heads=0.4)
    assert env.observation_space == gym.spaces.Discrete(101)
    assert env.action_space == gym.spaces.Discrete(50, start=1)
    assert env.P[30][10] == [(0.4, 40, 0.0, False), (pytest.approx(0.6), 20, 0.0, False)]
    assert env.P[60][40] == [(0.4, 100, 1.0, True), (pytest.approx(0.6), 20, 0.0, False)]
    assert env.P[30][50] == env.P[30][30]  # capped at min(s, 100 − s) = 30
    assert env.P[99][2] == env.P[99][1] == [(0.4, 100, 1.0, True), (pytest.approx(0.6), 98, 0.0, False)]
    assert env.P[1][1] == [(0.4, 2, 0.0, False), (pytest.approx(0.6), 0, 0.0, True)]
    for s in (0, 100):
        assert all(env.P[s][a] == [(1.0, s, 0.0, True)] for a in range(1, 51))
    assert env.max_stake(30) == 30 and env.max_stake(70) == 30 and env.max_stake(50) == 50


def test_gambler_certain_coins_drop_impossible_outcomes():
    assert GamblerEnv(goal=10, p_heads=1.0).P[3][2] == [(1.0, 5, 0.0, False)]
    assert GamblerEnv(goal=10, p_heads=0.0).P[3][3] == [(1.0, 0, 0.0, True)]


def test_gambler_odd_goal():
    env = GamblerEnv(goal=7)
    assert env.action_space == gym.spaces.Discrete(3, start=1)
    assert env.P[4][3] == [(0.4, 7, 1.0, True), (pytest.approx(0.6), 1, 0.0, False)]


def test_gambler_optimal_values_are_bold_play():
    """For p_heads < 1/2 bold play is optimal; its success probability at 25, 50, 75 is
    p², p and p + (1 − p) p."""
    P, R = transition_arrays(GamblerEnv(p_heads=0.4))
    V = value_iteration(P, R)
    assert V[50] == pytest.approx(0.4, abs=1e-9)
    assert V[25] == pytest.approx(0.16, abs=1e-9)
    assert V[75] == pytest.approx(0.4 + 0.6 * 0.4, abs=1e-9)
    assert V[0] == 0 and V[100] == 0  # terminal
    assert np.all(np.diff(V[:100]) > 0)


def test_gambler_steps_sample_the_coin_with_p_heads():
    env = GamblerEnv(goal=100, p_heads=0.3)
    wins = 0
    env.reset(seed=0)
    for _ in range(4000):
        env.reset(options={"state": 50})
        state, reward, terminated, truncated, info = env.step(50)
        assert terminated and not truncated
        assert (state, reward, round(info["prob"], 9)) in [(100, 1.0, 0.3), (0, 0.0, 0.7)]
        wins += state == 100
    assert abs(wins / 4000 - 0.3) < 6 * np.sqrt(0.3 * 0.7 / 4000)


def test_gambler_episodes_end_and_are_reproducible():
    def episode(seed):
        env = GamblerEnv(goal=20, p_heads=0.45)
        state, _ = env.reset(seed=seed)
        trace, terminated = [state], False
        while not terminated:
            state, reward, terminated, _, _ = env.step(1)
            trace.append(state)
        return trace, reward

    (trace, reward), (again, _) = episode(7), episode(7)
    assert trace == again and trace[-1] in (0, 20) and reward == (trace[-1] == 20)


@pytest.mark.parametrize("kwargs, fragment", [
    ({"goal": 1}, "goal must be an int >= 2"),
    ({"p_heads": 1.5}, "p_heads must be a probability in [0, 1]"),
    ({"p_heads": float("nan")}, "p_heads must be a probability"),
    ({"p_heads": "0.4"}, "p_heads must be a probability"),
])
def test_gambler_bad_arguments(kwargs, fragment):
    with pytest.raises(ValueError) as info:
        GamblerEnv(**kwargs)
    assert fragment in str(info.value)


def test_gambler_actions_are_stakes_from_one():
    env = GamblerEnv(goal=10)
    env.reset(seed=0, options={"state": 5})
    with pytest.raises(ValueError, match=r"action must be an int in 1, …, 5"):
        env.step(0)
    assert env.step(5)[0] in (0, 10)


# ------------------------------------------------------------------------------- transition arrays


def test_transition_arrays_of_the_gridworld():
    P, R = transition_arrays(gym.make(GRIDWORLD_ID))  # wrapped: uses .unwrapped
    assert P.shape == (16, 4, 16) and R.shape == (16, 4)
    assert P[5, LEFT, 4] == 1.0 and P[1, LEFT].sum() == 0.0  # moving into a corner ends it
    assert np.all(P[[0, 15]] == 0) and np.all(R[[0, 15]] == 0)
    assert np.all(R[1:15] == -1.0)


def test_transition_arrays_of_frozenlake_match_its_table():
    env = gym.make("FrozenLake-v1", map_name="4x4", is_slippery=True)
    P, R = transition_arrays(env)
    table = env.unwrapped.P
    assert P.shape == (16, 4, 16)
    for s in range(16):
        for a in range(4):
            expected_P, expected_R = np.zeros(16), 0.0
            for prob, s2, reward, done in table[s][a]:
                expected_R += prob * reward
                if not done:
                    expected_P[s2] += prob
            np.testing.assert_allclose(P[s, a], expected_P)
            assert R[s, a] == pytest.approx(expected_R)
    # From state 14, moving right reaches the goal with probability 1/3 (slippery).
    assert R[14, RIGHT] == pytest.approx(1 / 3)
    # Holes and the goal are terminal: zero rows.
    for s in (5, 7, 11, 12, 15):
        assert P[s].sum() == 0 and R[s].sum() == 0
    # Row sums are the probability that the episode goes on.
    assert P[14, RIGHT].sum() == pytest.approx(2 / 3)
    assert P[0].sum(axis=1) == pytest.approx(np.ones(4))


def test_frozenlake_4x4_optimal_success_probability():
    """With γ = 1 the optimal value of the start state is the best success probability."""
    P, R = transition_arrays(gym.make("FrozenLake-v1"))
    assert value_iteration(P, R, theta=1e-12)[0] == pytest.approx(0.8235, abs=1e-4)


def test_transition_arrays_of_the_gambler_map_columns_to_stakes():
    P, R = transition_arrays(GamblerEnv(goal=10, p_heads=0.4))
    assert P.shape == (11, 5, 11) and R.shape == (11, 5)
    # Column j is the stake j + 1.
    assert P[3, 0, 4] == pytest.approx(0.4) and P[3, 0, 2] == pytest.approx(0.6)
    assert P[3, 2, 6] == pytest.approx(0.4) and P[3, 2, 0] == 0.0  # losing everything ends it
    assert R[8, 1] == pytest.approx(0.4) and R[8, 0] == 0.0


def test_table_to_arrays_rejects_bad_tables():
    good = {0: {0: [(1.0, 1, 0.0, False)]}, 1: {0: [(1.0, 1, 0.0, True)]}}
    P, R = table_to_arrays(good, 2, 1)
    assert P[0, 0, 1] == 1.0 and P[1].sum() == 0
    with pytest.raises(ValueError, match=r"no entry P\[1\]\[0\]"):
        table_to_arrays({0: good[0], 1: {}}, 2, 1)
    with pytest.raises(ValueError, match=r"P\[0\]\[0\] sum to 0.9, not 1"):
        table_to_arrays({0: {0: [(0.9, 1, 0.0, False)]}, 1: good[1]}, 2, 1)
    with pytest.raises(ValueError, match=r"P\[0\]\[0\] leads to state 2, outside 0, …, 1"):
        table_to_arrays({0: {0: [(1.0, 2, 0.0, False)]}, 1: good[1]}, 2, 1)
    with pytest.raises(ValueError, match="negative probability"):
        table_to_arrays({0: {0: [(-0.5, 1, 0.0, False), (1.5, 1, 0.0, False)]}, 1: good[1]}, 2, 1)
    with pytest.raises(ValueError, match="n_states must be an int >= 1"):
        table_to_arrays(good, 0, 1)


def test_transition_arrays_needs_a_discrete_table():
    with pytest.raises(ValueError, match="has no transition table P"):
        transition_arrays(gym.make("CartPole-v1"))


def test_tabular_env_validates_its_table():
    good = {0: {0: [(1.0, 1, 0.0, False)]}, 1: {0: [(1.0, 1, 0.0, True)]}}
    env = TabularEnv(good, [1.0, 0.0])
    assert env.reset(seed=0) == (0, {"prob": 1.0})
    assert env.step(0) == (1, 0.0, False, False, {"prob": 1.0})
    with pytest.raises(ValueError, match="initial_distribution must be"):
        TabularEnv(good, [0.5, 0.2])
    with pytest.raises(ValueError, match="one entry for every state"):
        TabularEnv(good, [1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"P\[0\]\[0\] sum to"):
        TabularEnv({0: {0: [(0.5, 1, 0.0, False)]}, 1: good[1]}, [1.0, 0.0])
    with pytest.raises(ValueError, match=r"P\[0\] must hold the actions 1, 2"):
        TabularEnv(good, [1.0, 0.0], action_start=1)
