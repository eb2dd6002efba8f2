"""Unit tests of course_utils.envs.blackjack: the vectorised simulator follows gymnasium's
Blackjack-v1 (sab=True) exactly on the same cards and agrees with it in distribution; the exact
values agree with simulation and with Sutton & Barto."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

from course_utils.envs.blackjack import (
    HIT,
    POLICY_SHAPE,
    STICK,
    exact_action_values,
    expected_return,
    play_blackjack_episodes,
    state_index,
    threshold_policy,
)


class ScriptedDeck:
    """Stands in for a NumPy generator: the cards come from a list, every uniform draw is 0.5."""

    def __init__(self, cards):
        self.cards = list(cards)
        self.used = 0

    def _next(self):
        card = self.cards[self.used]
        self.used += 1
        return card

    def choice(self, options):  # gymnasium's draw_card and its choice of suit for rendering
        return options[0] if isinstance(options[0], str) else self._next()

    def integers(self, low, high, size=None):
        shape = (size,) if isinstance(size, (int, np.integer)) else tuple(size)
        return np.array([self._next() for _ in range(int(np.prod(shape)))], dtype=np.int64).reshape(shape)

    def random(self, size=None):
        return np.full(size, 0.5)


def play_gymnasium(env, policy, deck):
    """One episode of gymnasium's Blackjack with its cards taken from ``deck``."""
    env.unwrapped._np_random = deck
    observation, _ = env.reset()
    steps, done = [], False
    while not done:
        action = int(policy[observation])
        steps.append((tuple(int(x) for x in observation), action))
        observation, reward, terminated, truncated, _ = env.step(action)
        done = terminated or truncated
    return steps, reward, deck.used


def test_same_cards_give_the_same_episode_as_gymnasium():
    """3,000 episodes on random decks with random deterministic policies: every state, action,
    reward and the number of cards used agree with gymnasium's Blackjack-v1 (sab=True)."""
    env = gym.make("Blackjack-v1", sab=True)
    rng = np.random.default_rng(0)
    naturals = 0
    for episode in range(3000):
        cards = np.minimum(rng.integers(1, 14, size=60), 10).tolist()
        if episode % 10 == 0:  # force some naturals for player and dealer
            cards[:4] = [rng.choice([1, 10]), rng.choice([1, 10]), 1, 10]
        policy = (rng.random(POLICY_SHAPE) < rng.uniform(0.2, 0.8)).astype(float)
        steps, reward, used = play_gymnasium(env, policy, ScriptedDeck(cards))
        deck = ScriptedDeck(cards)
        ours = play_blackjack_episodes(policy, 1, deck)
        assert ours.episode(0) == steps, episode
        assert ours.rewards[0] == reward, (episode, steps, cards[:8])
        assert deck.used == used, episode
        naturals += sorted(cards[2:4]) == [1, 10]
    assert naturals >= 300


def test_naturals_follow_the_sab_rules():
    stick_all = np.zeros(POLICY_SHAPE)
    cases = [
        ([10, 7, 1, 10], 1.0),   # player natural, dealer 17: a win
        ([1, 10, 10, 1], 0.0),   # both naturals: a draw
        ([10, 5, 1, 10, 6], 1.0),  # the dealer draws to 21 with three cards: the natural still wins
        ([10, 1, 10, 10], -1.0),   # dealer natural against 20: a loss
    ]
    for cards, reward in cases:
        assert play_blackjack_episodes(stick_all, 1, ScriptedDeck(cards)).rewards[0] == reward, cards
    # The same soft 21 reached by hitting is no natural: against a three-card 21 it draws.
    hit_below_21 = threshold_policy(21)
    episodes = play_blackjack_episodes(hit_below_21, 1, ScriptedDeck([10, 5, 1, 5, 5, 6]))
    assert episodes.episode(0) == [((16, 10, 1), HIT), ((21, 10, 1), STICK)]
    assert episodes.rewards[0] == 0.0


def test_the_dealer_sticks_on_soft_17():
    stick_all = np.zeros(POLICY_SHAPE)
    # Dealer ace + 6 = soft 17: he sticks, so the player's 18 wins without another card drawn.
    deck = ScriptedDeck([1, 6, 10, 8, 10])
    assert play_blackjack_episodes(stick_all, 1, deck).rewards[0] == 1.0
    assert deck.used == 4


def return_frequencies(rewards):
    return np.array([np.mean(rewards == value) for value in (-1.0, 0.0, 1.0)])


@pytest.mark.parametrize("policy_name", ["stick on 20", "hit with probability 0.3"])
def test_returns_agree_with_gymnasium_in_distribution(policy_name):
    """The frequencies of −1, 0 and +1 over 20,000 gymnasium episodes and 400,000 simulated ones
    agree within six standard errors (of their difference)."""
    policy = threshold_policy(20) if policy_name == "stick on 20" else np.full(POLICY_SHAPE, 0.3)
    env = gym.make("Blackjack-v1", sab=True)
    env.reset(seed=1)
    rng = np.random.default_rng(1)
    theirs = []
    for _ in range(20_000):
        observation, _ = env.reset()
        done = False
        while not done:
            action = int(rng.random() < policy[observation])
            observation, reward, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
        theirs.append(reward)
    ours = play_blackjack_episodes(policy, 400_000, np.random.default_rng(2)).rewards
    p_theirs, p_ours = return_frequencies(np.array(theirs)), return_frequencies(ours)
    bound = 6 * np.sqrt(p_ours * (1 - p_ours) * (1 / 20_000 + 1 / 400_000))
    assert np.all(np.abs(p_theirs - p_ours) < bound), (p_theirs, p_ours, bound)


def test_initial_states_agree_with_the_deal():
    """First decisions: the usable-ace share and the mean sum match the exact deal."""
    episodes = play_blackjack_episodes(np.ones(POLICY_SHAPE), 400_000, np.random.default_rng(3))
    usable = episodes.usable_aces[:, 0]
    # P(usable ace in two cards) = 1 − P(no ace in either) = 1 − (12/13)².
    p = 1 - (12 / 13) ** 2
    assert abs(usable.mean() - p) < 6 * math.sqrt(p * (1 - p) / 400_000)
    assert set(np.unique(episodes.dealer_cards)) == set(range(1, 11))
    assert episodes.player_sums[:, 0].min() >= 4 and episodes.player_sums[:, 0].max() <= 21


def test_episode_arrays_are_consistent():
    episodes = play_blackjack_episodes(np.full(POLICY_SHAPE, 0.5), 5000, np.random.default_rng(4))
    assert len(episodes) == 5000
    mask = episodes.mask
    assert np.array_equal(mask.sum(axis=1), episodes.lengths) and episodes.lengths.min() >= 1
    assert np.all(episodes.actions[~mask] == -1) and np.all(episodes.player_sums[~mask] == -1)
    assert np.all(episodes.states()[~mask] == -1)
    assert set(np.unique(episodes.rewards)) <= {-1.0, 0.0, 1.0}
    rows = np.arange(5000)
    last = episodes.actions[rows, episodes.lengths - 1]
    assert np.all(episodes.actions[mask & (np.arange(mask.shape[1]) < (episodes.lengths - 1)[:, None])] == HIT)
    assert np.all(episodes.rewards[last == HIT] == -1.0)  # ending on a hit means a bust
    states = episodes.states()[mask]
    sums = episodes.player_sums[mask]
    assert np.array_equal(states, state_index(sums, np.broadcast_to(episodes.dealer_cards[:, None], mask.shape)[mask],
                                              episodes.usable_aces[mask]))


def test_same_seed_same_episodes():
    policy = np.full(POLICY_SHAPE, 0.5)
    a = play_blackjack_episodes(policy, 300, np.random.default_rng(5))
    b = play_blackjack_episodes(policy, 300, np.random.default_rng(5))
    c = play_blackjack_episodes(policy, 300, np.random.default_rng(6))
    assert np.array_equal(a.actions, b.actions) and np.array_equal(a.rewards, b.rewards)
    assert not np.array_equal(a.rewards, c.rewards)


def test_start_state_and_first_action():
    n = 1_000_000
    episodes = play_blackjack_episodes(threshold_policy(20), n, np.random.default_rng(7), start=(13, 2, 1))
    assert np.all(episodes.player_sums[:, 0] == 13) and np.all(episodes.usable_aces[:, 0] == 1)
    assert np.all(episodes.dealer_cards == 2)
    # Sutton & Barto's Figure 5.3: the value of this state under "stick on 20 or 21" is about −0.27726.
    value = episodes.rewards.mean()
    assert abs(value - (-0.27726)) < 6 * episodes.rewards.std() / math.sqrt(n)

    rng = np.random.default_rng(8)
    sums, dealers, aces = rng.integers(12, 22, size=n), rng.integers(1, 11, size=n), rng.integers(0, 2, size=n)
    actions = rng.integers(0, 2, size=n)
    policy = threshold_policy(18)
    episodes = play_blackjack_episodes(policy, n, rng, start=(sums, dealers, aces), first_action=actions)
    assert np.array_equal(episodes.actions[:, 0], actions)
    assert np.array_equal(episodes.player_sums[:, 0], sums) and np.array_equal(episodes.usable_aces[:, 0], aces)
    # The mean return of every (state, first action) pair agrees with the exact Q^π.
    q = exact_action_values(policy)
    index = state_index(sums, dealers, aces) * 2 + actions
    counts = np.bincount(index, minlength=2 * 704)
    means = np.bincount(index, weights=episodes.rewards, minlength=2 * 704) / np.maximum(counts, 1)
    exact = q.reshape(-1)
    natural = (state_index(21, np.arange(1, 11), 1)[:, None] * 2 + np.array([STICK])).ravel()
    checked = (counts > 0)
    checked[natural] = False  # an exploring start at a usable 21 is a natural: not q's hand
    z = (means[checked] - exact[checked]) / np.sqrt(1.0 / counts[checked])  # |return| ≤ 1
    assert np.abs(z).max() < 6, np.abs(z).max()


def test_expected_return_agrees_with_simulation():
    optimal_q = exact_action_values()
    optimal = (optimal_q[..., HIT] > optimal_q[..., STICK]).astype(float)
    optimal[np.isnan(optimal_q[..., STICK])] = 1.0
    for policy in (threshold_policy(20), optimal, np.full(POLICY_SHAPE, 0.5)):
        rewards = play_blackjack_episodes(policy, 500_000, np.random.default_rng(9)).rewards
        assert abs(rewards.mean() - expected_return(policy)) < 6 * rewards.std() / math.sqrt(500_000)


def test_exact_values_match_sutton_and_barto():
    q = exact_action_values(threshold_policy(20))
    assert q[13, 2, 1, HIT] == pytest.approx(-0.27726, abs=2e-4)  # Figure 5.3's "true value"
    q_star = exact_action_values()
    optimal_hit = q_star[..., HIT] > q_star[..., STICK]
    # Figure 5.2's optimal policy, dealer cards A, 2, …, 10 from left to right.
    usable = {18: "HSSSSSSSHH", 19: "SSSSSSSSSS"}
    no_usable = {12: "HHHSSSHHHH", 13: "HSSSSSHHHH", 16: "HSSSSSHHHH", 17: "SSSSSSSSSS"}
    for table, ace in ((usable, 1), (no_usable, 0)):
        for player_sum, row in table.items():
            assert "".join("H" if optimal_hit[player_sum, d, ace] else "S" for d in range(1, 11)) == row
    assert np.all(optimal_hit[12:18, 1:, 1])  # always hit a soft 17 or less
    assert np.isnan(q[3, 5, 0, 0]) and np.isnan(q[11, 5, 1, 0]) and np.isnan(q[15, 0, 0, 0])
    assert q[21, 5, 1, STICK] > 0.8 and q[21, 5, 0, HIT] == -1.0


@pytest.mark.parametrize("kwargs, match", [
    ({"policy": np.zeros((32, 11))}, "policy must have shape"),
    ({"policy": np.full(POLICY_SHAPE, 1.5)}, "probabilities"),
    ({"n": 0}, "n must be an int >= 1"),
    ({"start": (13, 2)}, "start must be"),
    ({"start": (22, 2, 0)}, "player_sum must lie in 4…21"),
    ({"start": (11, 2, 1)}, "usable ace needs a player_sum in 12…21"),
    ({"start": (13, 11, 0)}, "dealer_card must lie in 1…10"),
    ({"start": (np.array([13, 14]), 2, 0)}, "player_sum must be an int or an int array of shape"),
    ({"first_action": 2}, "first_action must lie in 0…1"),
])
def test_bad_arguments_are_refused(kwargs, match):
    arguments = {"policy": np.zeros(POLICY_SHAPE), "n": 3, "rng": np.random.default_rng(0)} | kwargs
    with pytest.raises(ValueError, match=match):
        play_blackjack_episodes(**arguments)
    with pytest.raises(ValueError, match="policy must have shape"):
        exact_action_values(np.zeros(3))
