"""Blackjack played many episodes at once with NumPy, under the rules of gymnasium's
``Blackjack-v1`` with ``sab=True`` (Sutton & Barto's Example 5.1).

gymnasium's environment plays one episode at a time in Python: fine for a few thousand
episodes, minutes for the half million of Figure 5.1. :func:`play_blackjack_episodes` plays
``n`` episodes in lockstep (one NumPy step per card drawn) and returns them as arrays.

**The rules** (those of ``gym.make("Blackjack-v1", sab=True)``). Cards come from an infinite
deck: 1 (ace) to 9 with probability 1/13 each, 10 with probability 4/13 (ten, jack, queen,
king). The dealer gets two cards, one of them showing, the player two. An ace is *usable* when
counting it as 11 does not take the hand over 21; a hand's sum counts a usable ace as 11. The
player hits (action 1: draw a card) until she sticks (action 0) or her sum exceeds 21 (bust:
reward −1, the episode ends). When she sticks, the dealer draws until his sum is 17 or more
(he sticks on a soft 17); then a dealer bust or a higher player sum gives +1, a lower one −1,
equal sums 0. A *natural* (ace and ten as the first two cards) wins +1 when the player sticks on
it at once, unless the dealer has one too (then 0). Rewards are 0 before the last step, and
γ = 1, so the return of every step of an episode is its final reward.

**States** are gymnasium's observations ``(player_sum, dealer_card, usable_ace)``, with
``player_sum`` in 4…21, ``dealer_card`` (the showing card) in 1…10 and ``usable_ace`` in {0, 1},
inside gymnasium's observation space ``Tuple(Discrete(32), Discrete(11), Discrete(2))``.
:func:`state_index` numbers them ``0 … 703`` for tabular arrays.

**Policies** are arrays of shape ``(32, 11, 2)`` (:data:`POLICY_SHAPE`): ``policy[s, d, u]`` is
the probability of hitting in state ``(s, d, u)``, 0 or 1 for a deterministic policy. The
book only considers sums 12–21 (with 11 or less, hitting cannot bust, so the player always
hits): :func:`threshold_policy` builds such policies.

**Exact values.** With an infinite deck the game is a small MDP whose transition probabilities
are known, so values need no sampling: :func:`exact_action_values` computes ``Q^π`` (or ``Q^*``)
by a backward recursion over the player's hand (a hit only ever increases its hard total), and
:func:`expected_return` the expected return of a freshly dealt episode. They are the ground
truth the Monte Carlo estimates of notebook 03 are measured against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from course_utils.validation import check_int

__all__ = [
    "HIT",
    "N_STATES",
    "POLICY_SHAPE",
    "STICK",
    "BlackjackEpisodes",
    "exact_action_values",
    "expected_return",
    "play_blackjack_episodes",
    "state_index",
    "threshold_policy",
]

STICK, HIT = 0, 1
POLICY_SHAPE = (32, 11, 2)
N_STATES = 32 * 11 * 2


def state_index(player_sum: Any, dealer_card: Any, usable_ace: Any) -> Any:
    """The index ``0 … 703`` of the state ``(player_sum, dealer_card, usable_ace)`` (arrays
    broadcast), in C order of :data:`POLICY_SHAPE`: ``policy.reshape(-1)[state_index(...)]`` is
    ``policy[player_sum, dealer_card, usable_ace]``."""
    return np.ravel_multi_index((np.asarray(player_sum), np.asarray(dealer_card),
                                 np.asarray(usable_ace, dtype=int)), POLICY_SHAPE)


def threshold_policy(stick_from: int = 20) -> np.ndarray:
    """The deterministic policy that sticks on a sum of ``stick_from`` or more and hits below
    (``stick_from=20``: the policy of Sutton & Barto's Figure 5.1)."""
    policy = np.ones(POLICY_SHAPE)
    policy[check_int("stick_from", stick_from, minimum=0):] = 0.0
    return policy


@dataclass
class BlackjackEpisodes:
    """``n`` episodes as arrays; step ``t`` of episode ``i`` exists when ``t < lengths[i]``, and
    the padding after an episode's end holds −1.

    Attributes:
        player_sums: ``(n, T)`` the player's sum at each decision.
        usable_aces: ``(n, T)`` 1 if the player holds a usable ace at that decision.
        dealer_cards: ``(n,)`` the dealer's showing card (1 = ace), the same all episode.
        actions: ``(n, T)`` the actions taken (0 stick, 1 hit).
        lengths: ``(n,)`` the number of decisions of each episode (≥ 1).
        rewards: ``(n,)`` the final reward (−1, 0 or +1): the return of every step.
    """

    player_sums: np.ndarray
    usable_aces: np.ndarray
    dealer_cards: np.ndarray
    actions: np.ndarray
    lengths: np.ndarray
    rewards: np.ndarray

    def __len__(self) -> int:
        return len(self.rewards)

    @property
    def mask(self) -> np.ndarray:
        """``(n, T)`` True at the steps that exist."""
        return np.arange(self.actions.shape[1]) < self.lengths[:, None]

    def states(self) -> np.ndarray:
        """``(n, T)`` the :func:`state_index` of each step, −1 in the padding."""
        mask = self.mask
        dealer = np.broadcast_to(self.dealer_cards[:, None], self.actions.shape)
        index = state_index(np.where(mask, self.player_sums, 0), dealer, np.where(mask, self.usable_aces, 0))
        return np.where(mask, index, -1)

    def episode(self, i: int) -> list[tuple[tuple[int, int, int], int]]:
        """Episode ``i`` as a list of ``((player_sum, dealer_card, usable_ace), action)``."""
        return [((int(self.player_sums[i, t]), int(self.dealer_cards[i]), int(self.usable_aces[i, t])),
                 int(self.actions[i, t])) for t in range(int(self.lengths[i]))]


def _draw(rng: Any, size: Any) -> np.ndarray:
    """Cards from an infinite deck: 1 … 9 with probability 1/13 each, 10 with 4/13."""
    return np.minimum(np.asarray(rng.integers(1, 14, size=size)), 10)


def _as_array(name: str, value: Any, n: int, low: int, high: int) -> np.ndarray:
    array = np.broadcast_to(np.asarray(value), (n,)) if np.ndim(value) == 0 else np.asarray(value)
    if array.shape != (n,) or not np.issubdtype(array.dtype, np.integer) and array.dtype != bool:
        raise ValueError(f"{name} must be an int or an int array of shape ({n},), got {value!r}")
    if array.size and (array.min() < low or array.max() > high):
        raise ValueError(f"{name} must lie in {low}…{high}, got values from {array.min()} to {array.max()}")
    return array.astype(np.int64)


def play_blackjack_episodes(policy: np.ndarray, n: int, rng: np.random.Generator, *,
                            start: tuple[Any, Any, Any] | None = None,
                            first_action: Any = None) -> BlackjackEpisodes:
    """Play ``n`` independent episodes of Blackjack (the module's rules) with ``policy``.

    Args:
        policy: ``(32, 11, 2)`` probabilities of hitting in each state (see the module).
        n: the number of episodes.
        rng: a ``numpy.random.Generator``; every card and every random action comes from it.
        start: optional ``(player_sum, dealer_card, usable_ace)``, each an int or an ``(n,)``
            array: start every episode in that state instead of dealing (the dealer's hidden card
            is still drawn). A usable-ace start needs a sum in 12…21, any other one a sum in
            4…21. A start with a usable ace and sum 21 counts as a natural (the only two-card
            hand it can be is an ace and a ten).
        first_action: optional action (an int or an ``(n,)`` array) taken at the first decision
            whatever the policy says; the policy takes over from the second. With random
            ``start`` and ``first_action`` this gives Monte Carlo's *exploring starts*.

    Returns:
        The episodes as a :class:`BlackjackEpisodes`.
    """
    n = check_int("n", n)
    policy = np.asarray(policy, dtype=float)
    if policy.shape != POLICY_SHAPE:
        raise ValueError(f"policy must have shape {POLICY_SHAPE} (probabilities of hitting indexed "
                         f"[player_sum, dealer_card, usable_ace]), got {policy.shape}")
    if not np.all((policy >= 0) & (policy <= 1)):
        raise ValueError("policy must hold probabilities of hitting, in [0, 1]")

    if start is None:
        cards = _draw(rng, (n, 4))  # the order of gymnasium's reset: dealer's two, then player's two
        dealer_shown = cards[:, 0]
        dealer_hard, dealer_ace = cards[:, 0] + cards[:, 1], (cards[:, 0] == 1) | (cards[:, 1] == 1)
        player_hard, player_ace = cards[:, 2] + cards[:, 3], (cards[:, 2] == 1) | (cards[:, 3] == 1)
        player_natural = player_ace & (player_hard == 11)
    else:
        if len(start) != 3:
            raise ValueError(f"start must be (player_sum, dealer_card, usable_ace), got {start!r}")
        usable = _as_array("start's usable_ace", start[2], n, 0, 1).astype(bool)
        player_sum = _as_array("start's player_sum", start[0], n, 4, 21)
        if np.any(usable & (player_sum < 12)):
            raise ValueError("a start with a usable ace needs a player_sum in 12…21")
        dealer_shown = _as_array("start's dealer_card", start[1], n, 1, 10)
        hidden = _draw(rng, n)
        dealer_hard, dealer_ace = dealer_shown + hidden, (dealer_shown == 1) | (hidden == 1)
        player_hard, player_ace = player_sum - 10 * usable, usable.copy()
        player_natural = usable & (player_sum == 21)
    if first_action is not None:
        first_action = _as_array("first_action", first_action, n, 0, 1)
    dealer_natural = dealer_ace & (dealer_hard == 11)

    rewards = np.zeros(n)
    active, stuck, natural_win = np.ones(n, dtype=bool), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    sums, aces, actions = [], [], []
    t = 0
    while active.any():
        idx = np.flatnonzero(active)
        usable = player_ace[idx] & (player_hard[idx] + 10 <= 21)
        player_sum = player_hard[idx] + 10 * usable
        if t == 0 and first_action is not None:
            act = first_action[idx]
        else:
            p_hit = policy[player_sum, dealer_shown[idx], usable.astype(int)]
            act = (rng.random(len(idx)) < p_hit).astype(np.int64)
        for columns, values in ((sums, player_sum), (aces, usable), (actions, act)):
            column = np.full(n, -1, dtype=np.int64)
            column[idx] = values
            columns.append(column)
        sticking, hitting = idx[act == STICK], idx[act == HIT]
        if t == 0:
            natural_win[sticking] = player_natural[sticking] & ~dealer_natural[sticking]
        stuck[sticking] = True
        active[sticking] = False
        cards = _draw(rng, len(hitting))
        player_hard[hitting] += cards
        player_ace[hitting] |= cards == 1
        bust = hitting[player_hard[hitting] > 21]
        rewards[bust] = -1.0
        active[bust] = False
        t += 1

    # The dealer plays out every hand the player stuck on.
    idx = np.flatnonzero(stuck)
    while idx.size:
        dealer_sum = dealer_hard[idx] + 10 * (dealer_ace[idx] & (dealer_hard[idx] + 10 <= 21))
        idx = idx[dealer_sum < 17]
        cards = _draw(rng, len(idx))
        dealer_hard[idx] += cards
        dealer_ace[idx] |= cards == 1
    stuck_idx = np.flatnonzero(stuck)
    player_score = player_hard[stuck_idx] + 10 * (player_ace[stuck_idx] & (player_hard[stuck_idx] + 10 <= 21))
    dealer_sum = dealer_hard[stuck_idx] + 10 * (dealer_ace[stuck_idx] & (dealer_hard[stuck_idx] + 10 <= 21))
    dealer_score = np.where(dealer_sum > 21, 0, dealer_sum)
    rewards[stuck_idx] = np.sign(player_score - dealer_score)
    rewards[natural_win] = 1.0

    actions = np.stack(actions, axis=1)
    return BlackjackEpisodes(player_sums=np.stack(sums, axis=1), usable_aces=np.stack(aces, axis=1),
                             dealer_cards=dealer_shown.astype(np.int64), actions=actions,
                             lengths=(actions >= 0).sum(axis=1), rewards=rewards)


CARD_PROBABILITIES = np.array([0.0] + [1 / 13] * 9 + [4 / 13])  # index: card value 1 … 10
_CARDS = range(1, 11)


def _dealer_final_distribution() -> np.ndarray:
    """``(11, 6)``: for each showing card 1 … 10, the probabilities that the dealer ends on
    17, 18, 19, 20, 21 or busts (his hidden card included)."""
    memo: dict[tuple[int, bool], np.ndarray] = {}

    def play(hard: int, ace: bool) -> np.ndarray:
        if (hard, ace) not in memo:
            total = hard + 10 if ace and hard + 10 <= 21 else hard
            if total > 21:
                memo[hard, ace] = np.eye(6)[5]
            elif total >= 17:
                memo[hard, ace] = np.eye(6)[total - 17]
            else:
                memo[hard, ace] = sum(CARD_PROBABILITIES[c] * play(hard + c, ace or c == 1) for c in _CARDS)
        return memo[hard, ace]

    final = np.zeros((11, 6))
    for shown in _CARDS:
        final[shown] = sum(CARD_PROBABILITIES[c] * play(shown + c, shown == 1 or c == 1) for c in _CARDS)
    return final


def exact_action_values(policy: np.ndarray | None = None, epsilon: float = 0.0) -> np.ndarray:
    """The exact action values of Blackjack (the module's rules, γ = 1) for a hand that is not a
    natural: ``q[player_sum, dealer_card, usable_ace, action]``, shape ``(32, 11, 2, 2)``.

    ``policy`` (probabilities of hitting, shape ``(32, 11, 2)``) gives ``Q^π``, the value of taking
    the action and following ``policy`` afterwards; ``None`` gives the optimal ``Q^*``. States that
    cannot occur (sums below 4 or above 21, a usable ace with a sum below 12, dealer card 0) hold
    NaN. The state value is ``V^π(s) = Σ_a π(a|s) Q^π(s, a)``, and ``V^*(s) = max_a Q^*(s, a)``.

    With ``policy=None`` and ``epsilon > 0``: the action values of the best ε-soft policy, which
    takes the better action with probability ``1 − ε/2`` and the other with ``ε/2`` in every
    state with a sum of 12 or more (and always hits below 12, where hitting cannot bust).
    """
    if policy is not None:
        policy = np.asarray(policy, dtype=float)
        if policy.shape != POLICY_SHAPE:
            raise ValueError(f"policy must have shape {POLICY_SHAPE}, got {policy.shape}")
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float, np.integer, np.floating)) \
            or not 0 <= epsilon <= 1:
        raise ValueError(f"epsilon must be a number in [0, 1], got {epsilon!r}")
    if policy is not None and epsilon:
        raise ValueError("epsilon applies to the best ε-soft policy (policy=None) only")
    final = _dealer_final_distribution()
    dealer_scores = np.array([17, 18, 19, 20, 21, 0])  # a busted dealer scores 0
    q = np.full(POLICY_SHAPE + (2,), np.nan)
    for dealer in _CARDS:
        value: dict[tuple[int, bool], float] = {}
        for hard in range(21, 1, -1):  # a hit raises the hard total: solve from 21 down
            for ace in (True, False):
                usable = ace and hard + 10 <= 21
                total = hard + 10 * usable
                stick = float(final[dealer] @ np.sign(total - dealer_scores))
                hit = sum(CARD_PROBABILITIES[c] * (-1.0 if hard + c > 21 else value[hard + c, ace or c == 1])
                          for c in _CARDS)
                if policy is None and total < 12:
                    value[hard, ace] = hit if epsilon else max(stick, hit)
                elif policy is None:
                    value[hard, ace] = (1 - epsilon / 2) * max(stick, hit) + epsilon / 2 * min(stick, hit)
                else:
                    p_hit = policy[total, dealer, int(usable)]
                    value[hard, ace] = p_hit * hit + (1 - p_hit) * stick
                if hard >= 4 or usable:  # hands that exist: two cards make at least 4 (or soft 12)
                    q[total, dealer, int(usable)] = (stick, hit)
    return q


def expected_return(policy: np.ndarray) -> float:
    """The exact expected return of one freshly dealt episode played with ``policy``
    (probabilities of hitting, shape ``(32, 11, 2)``), naturals included."""
    policy = np.asarray(policy, dtype=float)
    q = exact_action_values(policy)
    v = policy * q[..., HIT] + (1 - policy) * q[..., STICK]
    total = 0.0
    for dealer in _CARDS:
        # the probability that the hidden card completes a dealer natural
        dealer_natural = {1: CARD_PROBABILITIES[10], 10: CARD_PROBABILITIES[1]}.get(dealer, 0.0)
        for c1 in _CARDS:
            for c2 in _CARDS:
                p = CARD_PROBABILITIES[dealer] * CARD_PROBABILITIES[c1] * CARD_PROBABILITIES[c2]
                ace = c1 == 1 or c2 == 1
                usable = ace and c1 + c2 + 10 <= 21
                player_sum = c1 + c2 + 10 * usable
                if usable and player_sum == 21:  # a natural: sticking wins unless the dealer has one too
                    p_hit = policy[21, dealer, 1]
                    total += p * (p_hit * q[21, dealer, 1, HIT] + (1 - p_hit) * (1 - dealer_natural))
                else:
                    total += p * v[player_sum, dealer, int(usable)]
    return float(total)
