"""Unit tests of course_utils.returns: sum_of_rewards, reward_to_go and gae."""

from __future__ import annotations

import pytest
import torch

from course_utils.returns import gae, reward_to_go, sum_of_rewards


def close(a, b, tol=1e-5):
    torch.testing.assert_close(torch.as_tensor(a).double(), torch.as_tensor(b).double(),
                               rtol=tol, atol=tol)


def reference_rtg(rewards: list[float], gamma: float) -> list[float]:
    """Σ_{k≥t} γ^{k−t} r_k, straight from the definition."""
    return [sum(gamma ** (k - t) * rewards[k] for k in range(t, len(rewards)))
            for t in range(len(rewards))]


# ------------------------------------------------------------------------------- sum_of_rewards


def test_sum_of_rewards():
    rewards = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    result = sum_of_rewards(rewards)
    assert result.shape == (5,) and result.dtype == torch.float32
    assert result.tolist() == [15.0] * 5
    assert rewards.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_sum_of_rewards_is_writable_copy():
    result = sum_of_rewards(torch.tensor([1.0, 2.0]))
    result[0] = 0.0  # an expanded view would make this fail or write through
    assert result.tolist() == [0.0, 3.0]


def test_sum_of_rewards_integers_and_lists():
    result = sum_of_rewards([1, -2, 4])
    assert result.dtype == torch.float32 and result.tolist() == [3.0, 3.0, 3.0]


@pytest.mark.parametrize("shape", [(3, 2), (), (2, 2, 2)])
def test_sum_of_rewards_rejects_non_1d(shape):
    with pytest.raises(ValueError, match="rewards must have shape"):
        sum_of_rewards(torch.ones(shape))


# ------------------------------------------------------------------------------- reward_to_go


def test_reward_to_go_undiscounted():
    rewards = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    result = reward_to_go(rewards)
    assert result.tolist() == [15.0, 14.0, 12.0, 9.0, 5.0]
    assert result.dtype == torch.float32
    assert rewards.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]  # input untouched


@pytest.mark.parametrize("rewards, gamma, expected", [
    ([1.0, 1.0, 1.0], 0.5, [1.75, 1.5, 1.0]),
    ([0.0, 0.0, 10.0], 0.9, [8.1, 9.0, 10.0]),
    ([1.0, 2.0, 3.0], 0.0, [1.0, 2.0, 3.0]),
    ([1.0, -1.0, 2.0, 0.5], 0.99, [1.0 - 0.99 + 2 * 0.99**2 + 0.5 * 0.99**3,
                                    -1.0 + 0.99 * 2 + 0.5 * 0.99**2, 2.0 + 0.5 * 0.99, 0.5]),
    ([4.0], 0.3, [4.0]),
])
def test_reward_to_go_discounted_known_values(rewards, gamma, expected):
    result = reward_to_go(torch.tensor(rewards), gamma)
    assert result.shape == (len(rewards),)
    close(result, expected)
    close(result, reference_rtg(rewards, gamma))


@pytest.mark.parametrize("gamma", [1.0, 0.97, 0.5])
def test_reward_to_go_random_against_definition(gamma):
    rewards = torch.randn(40, generator=torch.Generator().manual_seed(0))
    close(reward_to_go(rewards, gamma), reference_rtg(rewards.tolist(), gamma), tol=1e-4)


@pytest.mark.parametrize("gamma", [1.0, 0.9])
def test_reward_to_go_time_major_batch(gamma):
    rewards = torch.randn(7, 3, generator=torch.Generator().manual_seed(1))
    result = reward_to_go(rewards, gamma)
    assert result.shape == (7, 3)
    for n in range(3):
        close(result[:, n], reward_to_go(rewards[:, n], gamma))
        close(result[:, n], reference_rtg(rewards[:, n].tolist(), gamma), tol=1e-4)


def test_reward_to_go_recursion():
    rewards = torch.randn(300, generator=torch.Generator().manual_seed(2))
    result = reward_to_go(rewards, 0.99)
    close(result[:-1], rewards[:-1] + 0.99 * result[1:], tol=1e-4)
    close(result[-1], rewards[-1])


def test_reward_to_go_long_episode_is_finite():
    result = reward_to_go(torch.ones(5000), 0.9)
    assert torch.isfinite(result).all()
    assert result[0].item() == pytest.approx(10.0, abs=1e-4)
    assert result[-1].item() == pytest.approx(1.0)
    assert result[-2].item() == pytest.approx(1.9)


def test_reward_to_go_integer_input_and_float64_kept():
    assert reward_to_go(torch.tensor([1, 2])).tolist() == [3.0, 2.0]
    assert reward_to_go(torch.tensor([1.0, 2.0], dtype=torch.float64), 0.5).dtype == torch.float64


def test_reward_to_go_does_not_modify_input_discounted():
    rewards = torch.tensor([1.0, 2.0, 3.0])
    reward_to_go(rewards, 0.5)
    assert rewards.tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("gamma", [-0.1, 1.01, 2.0, float("nan")])
def test_reward_to_go_gamma_outside_unit_interval(gamma):
    with pytest.raises(ValueError, match="gamma must be in"):
        reward_to_go(torch.ones(3), gamma)


def test_reward_to_go_rejects_3d():
    with pytest.raises(ValueError, match=r"rewards must have shape \(T,\) or \(T, N\)"):
        reward_to_go(torch.ones(2, 2, 2))


def test_reward_to_go_empty_episode_is_consistent():
    assert reward_to_go(torch.ones(0), 0.9).shape == (0,)


# ------------------------------------------------------------------------------- gae


def episode(T=6, seed=0, truncated=False):
    """One episode: next_values[t] = values[t+1], and V(o_T) at the end."""
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randn(T, generator=g)
    values = torch.randn(T + 1, generator=g)
    terminated = torch.zeros(T)
    done = torch.zeros(T)
    done[-1] = 1.0
    if not truncated:
        terminated[-1] = 1.0
    return rewards, values[:-1], values[1:], terminated, done


@pytest.mark.parametrize("truncated", [False, True])
def test_gae_lambda_zero_is_td_error(truncated):
    r, v, v_next, term, done = episode(truncated=truncated)
    result = gae(r, v, v_next, term, done, gamma=0.9, lam=0.0)
    close(result, r + 0.9 * (1 - term) * v_next - v)


def test_gae_lambda_one_is_monte_carlo_on_terminated_episode():
    r, v, v_next, term, done = episode(T=8)
    result = gae(r, v, v_next, term, done, gamma=0.95, lam=1.0)
    close(result, reward_to_go(r, 0.95) - v)
    # Undiscounted as well.
    close(gae(r, v, v_next, term, done, gamma=1.0, lam=1.0), reward_to_go(r) - v)


def test_gae_lambda_one_bootstraps_at_truncation():
    r, v, v_next, term, done = episode(T=5, truncated=True)
    result = gae(r, v, v_next, term, done, gamma=0.9, lam=1.0)
    # G_t plus the discounted value of the final observation.
    tail = torch.tensor([0.9 ** (5 - t) for t in range(5)]) * v_next[-1]
    close(result, reward_to_go(r, 0.9) + tail - v)


def test_gae_bootstraps_at_truncation_not_at_termination():
    r, v, v_next = torch.tensor([1.0]), torch.tensor([0.5]), torch.tensor([2.0])
    done = torch.tensor([1.0])
    truncated = gae(r, v, v_next, torch.tensor([0.0]), done, gamma=0.9, lam=0.95)
    terminated = gae(r, v, v_next, torch.tensor([1.0]), done, gamma=0.9, lam=0.95)
    close(truncated, [1.0 + 0.9 * 2.0 - 0.5])
    close(terminated, [1.0 - 0.5])


def test_gae_hand_computed_three_steps():
    rewards = torch.tensor([1.0, 0.0, 2.0])
    values = torch.tensor([0.5, 1.0, 1.5])
    next_values = torch.tensor([1.0, 1.5, 0.7])
    terminated = torch.tensor([0.0, 0.0, 0.0])
    done = torch.tensor([0.0, 0.0, 1.0])  # truncated after 3 steps
    # δ = [1.4, 0.35, 1.13]; A_2 = 1.13, A_1 = 0.35 + 0.72·1.13, A_0 = 1.4 + 0.72·A_1.
    a2 = 1.13
    a1 = 0.35 + 0.72 * a2
    a0 = 1.4 + 0.72 * a1
    result = gae(rewards, values, next_values, terminated, done, gamma=0.9, lam=0.8)
    close(result, [a0, a1, a2])
    assert result[0].item() == pytest.approx(2.237792, abs=1e-5)


@pytest.mark.parametrize("first_truncated", [False, True])
def test_gae_trace_cut_between_two_episodes_in_one_sequence(first_truncated):
    first = episode(T=4, seed=1, truncated=first_truncated)
    second = episode(T=3, seed=2, truncated=True)
    joined = [torch.cat([a, b]) for a, b in zip(first, second)]
    result = gae(*joined, gamma=0.9, lam=0.8)
    close(result[:4], gae(*first, gamma=0.9, lam=0.8))
    close(result[4:], gae(*second, gamma=0.9, lam=0.8))
    # Without the cut the first episode's advantages would include the second's.
    leaky = gae(*joined[:4], torch.zeros(7), gamma=0.9, lam=0.8)
    assert not torch.allclose(leaky[:4], result[:4])


def test_gae_time_major_batch_equals_separate_calls():
    g = torch.Generator().manual_seed(3)
    T, N = 9, 4
    r, v, v_next = (torch.randn(T, N, generator=g) for _ in range(3))
    done = (torch.rand(T, N, generator=g) < 0.3).float()
    term = done * (torch.rand(T, N, generator=g) < 0.5).float()
    result = gae(r, v, v_next, term, done, gamma=0.97, lam=0.9)
    assert result.shape == (T, N)
    for n in range(N):
        close(result[:, n], gae(r[:, n], v[:, n], v_next[:, n], term[:, n], done[:, n],
                                gamma=0.97, lam=0.9))


def test_gae_accepts_bool_flags():
    r, v, v_next, term, done = episode(T=4, truncated=True)
    close(gae(r, v, v_next, term.bool(), done.bool()), gae(r, v, v_next, term, done))


def test_gae_default_gamma_lambda():
    r, v, v_next, term, done = episode(T=5)
    close(gae(r, v, v_next, term, done), gae(r, v, v_next, term, done, gamma=0.99, lam=0.95))
    assert not torch.allclose(gae(r, v, v_next, term, done),
                              gae(r, v, v_next, term, done, gamma=0.9, lam=0.95))


@pytest.mark.parametrize("index, name", [(1, "values"), (2, "next_values"), (3, "terminated"),
                                         (4, "done")])
@pytest.mark.parametrize("bad_shape", [(5,), (6, 1), (1, 6)])
def test_gae_mismatched_shapes_name_the_argument(index, name, bad_shape):
    args = list(episode(T=6))
    args[index] = torch.zeros(bad_shape)
    with pytest.raises(ValueError, match=f"gae: {name} has shape"):
        gae(*args)


def test_gae_rewards_shape_mismatch_and_3d():
    r, v, v_next, term, done = episode(T=6)
    with pytest.raises(ValueError, match="rewards has shape"):
        gae(r[:5], v, v_next, term, done)
    with pytest.raises(ValueError, match=r"values must have shape \(T,\) or \(T, N\)"):
        gae(r, v.reshape(1, 2, 3), v_next, term, done)


@pytest.mark.parametrize("kwargs, name", [({"gamma": 1.5}, "gamma"), ({"gamma": -0.01}, "gamma"),
                                          ({"lam": 1.2}, "lam"), ({"lam": -0.5}, "lam")])
def test_gae_rejects_gamma_lambda_outside_unit_interval(kwargs, name):
    with pytest.raises(ValueError, match=f"{name} must be in"):
        gae(*episode(), **kwargs)


def test_gae_result_has_no_grad():
    r, v, v_next, term, done = episode(T=5)
    v = v.clone().requires_grad_(True)
    v_next = v_next.clone().requires_grad_(True)
    r = r.clone().requires_grad_(True)
    result = gae(r, v, v_next, term, done)
    assert not result.requires_grad
    assert result.grad_fn is None
    assert v.grad is None
