"""Finite MDPs given by their transition table, in the format of gymnasium's FrozenLake.

A *transition table* lists, for every state ``s`` and action ``a``, the possible outcomes of
taking ``a`` in ``s``::

    env.unwrapped.P[s][a] == [(prob, next_state, reward, terminated), ...]

with probabilities summing to 1. ``terminated`` says that the episode ends with this transition
(``next_state`` is terminal). A terminal state is absorbing: every action leads back to it with
probability 1, reward 0 and ``terminated=True``, as in FrozenLake.

:class:`TabularEnv` turns any such table into a gymnasium environment (it samples ``step`` from
the table). Two environments of Sutton & Barto's chapter 4 are built on it:

* :class:`GridWorldEnv`, Example 4.1: a 4 × 4 grid whose top-left and bottom-right cells are
  terminal; every move costs −1; moves off the grid leave the state unchanged. Registered as
  ``course_utils/GridWorld-v0`` (with a 100-step time limit, as FrozenLake-v1).
* :class:`GamblerEnv`, Example 4.3: the gambler's capital ``s ∈ {0, …, goal}``; a stake wins
  with probability ``p_heads`` (capital ``s + stake``) and loses otherwise (``s − stake``);
  reaching ``goal`` pays +1 and ends the episode, reaching 0 ends it with nothing. Registered as
  ``course_utils/Gambler-v0``.

:func:`transition_arrays` converts the table of any of them (FrozenLake's too) into two NumPy
arrays, ``P`` of shape ``(S, A, S)`` and ``R`` of shape ``(S, A)``, so that one vectorised set of
dynamic-programming functions solves them all::

    import gymnasium as gym
    import course_utils.envs  # registers the environments
    from course_utils.envs import transition_arrays
    P, R = transition_arrays(gym.make("course_utils/GridWorld-v0"))
    q = R + gamma * P @ V     # all action values at once, shape (S, A)
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from course_utils.validation import check_int

__all__ = ["GamblerEnv", "GridWorldEnv", "TabularEnv", "table_to_arrays", "transition_arrays"]

Transition = tuple[float, int, float, bool]
Table = dict[int, dict[int, list[Transition]]]

# Actions of the grid worlds, in FrozenLake's order, so that one drawing function serves both.
LEFT, DOWN, RIGHT, UP = 0, 1, 2, 3
_MOVES = {LEFT: (0, -1), DOWN: (1, 0), RIGHT: (0, 1), UP: (-1, 0)}


def _check_probability(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


class TabularEnv(gym.Env):
    """A gymnasium environment defined by a transition table (see the module's docstring).

    Args:
        P: the table, ``P[s][a] = [(prob, next_state, reward, terminated), ...]`` for every state
            ``s`` in ``range(n_states)`` and action ``a`` in the action space.
        initial_distribution: ``p0``, shape ``(n_states,)``, summing to 1.
        action_start: the smallest action (``Discrete(n, start=action_start)``).
        render_mode: ``None`` or ``"ansi"`` (a text picture of the current state).

    ``reset(options={"state": s})`` starts in state ``s`` instead of drawing from ``p0``.
    ``step`` returns ``info = {"prob": p}``, the probability of the transition taken (as
    FrozenLake does); episodes never end by truncation here (``gym.make`` may add a time limit).
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, P: Table, initial_distribution: Sequence[float], action_start: int = 0,
                 render_mode: str | None = None):
        p0 = np.asarray(initial_distribution, dtype=float)
        if p0.ndim != 1 or len(p0) == 0 or (p0 < 0).any() or not np.isclose(p0.sum(), 1.0):
            raise ValueError("initial_distribution must be a 1-D array of probabilities summing to 1, "
                             f"got {initial_distribution!r}")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, "
                             f"got {render_mode!r}")
        n_states = len(p0)
        if sorted(P) != list(range(n_states)):
            raise ValueError(f"P must have one entry for every state 0, …, {n_states - 1} "
                             f"(the length of initial_distribution)")
        actions = sorted(P[0])
        if not actions or actions != list(range(actions[0], actions[0] + len(actions))) \
                or actions[0] != action_start:
            raise ValueError(f"P[0] must hold the actions {action_start}, {action_start + 1}, …; "
                             f"got {actions}")
        self.P = P
        self.initial_distribution = p0
        self.observation_space = spaces.Discrete(n_states)
        self.action_space = spaces.Discrete(len(actions), start=action_start)
        # Validates every entry of the table once, here, rather than at some later step.
        table_to_arrays(P, n_states, len(actions), action_start)
        self.render_mode = render_mode
        self.s: int | None = None
        self.last_action: int | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        if "state" in options:
            state = options["state"]
            if not self.observation_space.contains(state):
                raise ValueError(f"options['state'] must be a state in 0, …, "
                                 f"{self.observation_space.n - 1}, got {state!r}")
            self.s = int(state)
        else:
            self.s = int(self.np_random.choice(len(self.initial_distribution),
                                               p=self.initial_distribution))
        self.last_action = None
        return self.s, {"prob": float(self.initial_distribution[self.s])}

    def step(self, action: Any):
        if self.s is None:
            raise RuntimeError("call reset() before step()")
        if isinstance(action, (bool, np.bool_)) or not self.action_space.contains(action):
            space = self.action_space
            raise ValueError(f"action must be an int in {space.start}, …, {space.start + space.n - 1}, "
                             f"got {action!r}")
        transitions = self.P[self.s][int(action)]
        probs = np.array([t[0] for t in transitions])
        index = int(self.np_random.choice(len(transitions), p=probs / probs.sum()))
        prob, next_state, reward, terminated = transitions[index]
        self.s, self.last_action = int(next_state), int(action)
        return self.s, float(reward), bool(terminated), False, {"prob": float(prob)}

    def render(self) -> str | None:
        if self.render_mode == "ansi":
            return self._render_text()
        return None

    def _render_text(self) -> str:
        return f"state {self.s}\n"


class GridWorldEnv(TabularEnv):
    """Sutton & Barto's Example 4.1: a ``size × size`` grid of states ``row * size + col``.

    Actions, as in FrozenLake: 0 left, 1 down, 2 right, 3 up. Every move costs ``step_reward``
    (−1), including the one into a terminal cell; a move off the grid leaves the state unchanged.
    The terminal states (default: the top-left and bottom-right corners) are absorbing with
    reward 0. Episodes start in a uniformly drawn non-terminal state.
    """

    def __init__(self, size: int = 4, terminal_states: Sequence[int] | None = None,
                 step_reward: float = -1.0, render_mode: str | None = None):
        self.size = check_int("size", size, minimum=2)
        n = self.size * self.size
        if terminal_states is None:
            terminal_states = (0, n - 1)
        terminal = sorted({int(s) for s in terminal_states})
        if any(not 0 <= s < n for s in terminal) or len(terminal) == 0 or len(terminal) == n:
            raise ValueError(f"terminal_states must be a non-empty proper subset of 0, …, {n - 1}, "
                             f"got {terminal_states!r}")
        if isinstance(step_reward, bool) or not isinstance(step_reward, (int, float)) \
                or not math.isfinite(step_reward):
            raise ValueError(f"step_reward must be a finite number, got {step_reward!r}")
        self.terminal_states = tuple(terminal)
        self.step_reward = float(step_reward)
        P: Table = {}
        for s in range(n):
            if s in terminal:
                P[s] = {a: [(1.0, s, 0.0, True)] for a in _MOVES}
                continue
            row, col = divmod(s, self.size)
            P[s] = {}
            for a, (d_row, d_col) in _MOVES.items():
                r, c = row + d_row, col + d_col
                s2 = r * self.size + c if 0 <= r < self.size and 0 <= c < self.size else s
                P[s][a] = [(1.0, s2, self.step_reward, s2 in terminal)]
        p0 = np.array([0.0 if s in terminal else 1.0 for s in range(n)])
        super().__init__(P, p0 / p0.sum(), render_mode=render_mode)

    def _render_text(self) -> str:
        rows = []
        for row in range(self.size):
            cells = []
            for col in range(self.size):
                s = row * self.size + col
                cells.append("x" if s == self.s else "T" if s in self.terminal_states else ".")
            rows.append(" ".join(cells))
        return "\n".join(rows) + "\n"


class GamblerEnv(TabularEnv):
    """Sutton & Barto's Example 4.3, the Gambler's problem.

    The state is the capital ``s ∈ {0, …, goal}``; ``0`` and ``goal`` are terminal. An action is
    a stake in ``1, …, goal // 2`` (``Discrete(goal // 2, start=1)``). A gymnasium action space
    is the same in every state, while the book allows stakes up to ``min(s, goal − s)``: a larger
    stake is capped at that maximum (so it duplicates the maximum stake). With probability
    ``p_heads`` the coin comes up heads and the gambler wins the stake, else loses it. Reaching
    ``goal`` pays +1; every other reward is 0, so with γ = 1 the value of a state is the
    probability of reaching the goal from it. Episodes start with a uniformly drawn capital in
    ``1, …, goal − 1``.
    """

    def __init__(self, goal: int = 100, p_heads: float = 0.4, render_mode: str | None = None):
        self.goal = check_int("goal", goal, minimum=2)
        self.p_heads = _check_probability("p_heads", p_heads)
        P: Table = {}
        for s in range(self.goal + 1):
            P[s] = {}
            for stake in range(1, self.goal // 2 + 1):
                if s in (0, self.goal):
                    P[s][stake] = [(1.0, s, 0.0, True)]
                    continue
                bet = self.max_stake(s) if stake > self.max_stake(s) else stake
                win, lose = s + bet, s - bet
                outcomes = [(self.p_heads, win, 1.0 if win == self.goal else 0.0, win == self.goal),
                            (1.0 - self.p_heads, lose, 0.0, lose == 0)]
                P[s][stake] = [t for t in outcomes if t[0] > 0]
        p0 = np.array([0.0 if s in (0, self.goal) else 1.0 for s in range(self.goal + 1)])
        super().__init__(P, p0 / p0.sum(), action_start=1, render_mode=render_mode)

    def max_stake(self, capital: int) -> int:
        """The largest stake the book allows with this capital, ``min(s, goal − s)``."""
        return min(capital, self.goal - capital)

    def _render_text(self) -> str:
        return f"capital {self.s} of {self.goal}\n"


def table_to_arrays(P: Table, n_states: int, n_actions: int,
                    action_start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The arrays ``(P, R)`` of a transition table (see :func:`transition_arrays`).

    Raises ValueError, naming the state and action, for a missing entry, a next state out of
    range, a negative probability or probabilities that do not sum to 1.
    """
    n_states = check_int("n_states", n_states)
    n_actions = check_int("n_actions", n_actions)
    P_array = np.zeros((n_states, n_actions, n_states))
    R_array = np.zeros((n_states, n_actions))
    for s in range(n_states):
        for column in range(n_actions):
            a = column + action_start
            try:
                transitions = P[s][a]
            except (KeyError, IndexError):
                raise ValueError(f"the transition table has no entry P[{s}][{a}]") from None
            total = 0.0
            for prob, next_state, reward, terminated in transitions:
                if not 0 <= next_state < n_states:
                    raise ValueError(f"P[{s}][{a}] leads to state {next_state}, outside 0, …, "
                                     f"{n_states - 1}")
                if prob < 0:
                    raise ValueError(f"P[{s}][{a}] has a negative probability {prob}")
                total += prob
                R_array[s, column] += prob * reward
                if not terminated:
                    P_array[s, column, next_state] += prob
            if not math.isclose(total, 1.0, abs_tol=1e-9):
                raise ValueError(f"the probabilities of P[{s}][{a}] sum to {total}, not 1")
    return P_array, R_array


def transition_arrays(env: gym.Env) -> tuple[np.ndarray, np.ndarray]:
    """The transition table of ``env`` (wrapped or not) as two NumPy arrays.

    Returns:
        P: shape ``(S, A, S)``; ``P[s, a, s2]`` is the probability that taking action ``a`` in
            state ``s`` leads to ``s2`` *and the episode goes on*. Transitions with
            ``terminated=True`` contribute no mass, so a row ``P[s, a]`` sums to the probability
            that the episode continues, and the rows of terminal states are zero. With this
            convention the value of every terminal state is 0 by construction, and
            ``R + gamma * P @ V`` is the action value of every (s, a) at once.
        R: shape ``(S, A)``; ``R[s, a]`` is the expected reward of taking ``a`` in ``s``,
            ``Σ prob · reward`` over the table's entries.

    Column ``j`` of the action axis is the action ``action_space.start + j`` (the Gambler's
    stakes start at 1).
    """
    base = env.unwrapped
    if not hasattr(base, "P"):
        raise ValueError(f"{base!r} has no transition table P (expected FrozenLake's format: "
                         "P[s][a] = [(prob, next_state, reward, terminated), ...])")
    if not isinstance(base.observation_space, spaces.Discrete) \
            or not isinstance(base.action_space, spaces.Discrete):
        raise ValueError("transition_arrays needs Discrete observation and action spaces, got "
                         f"{base.observation_space} and {base.action_space}")
    return table_to_arrays(base.P, int(base.observation_space.n), int(base.action_space.n),
                           int(base.action_space.start))
