"""Returns and advantages: what each step of a trajectory is credited with.

Shapes: ``(T,)`` for one episode, or ``(T, N)`` for N environments stepped together (time first).
"""

from __future__ import annotations

import torch


def _as_float_tensor(name: str, x: torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.dim() not in (1, 2):
        raise ValueError(f"{name} must have shape (T,) or (T, N), got {tuple(x.shape)}")
    return x.float() if not torch.is_floating_point(x) else x


def _check_gamma(gamma: float) -> None:
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")


def sum_of_rewards(rewards: torch.Tensor) -> torch.Tensor:
    """The episode's total reward ``r(τ) = Σ_t r_t`` at every step: shape ``(T,)``.

    This is the weight of the plain policy-gradient estimator: every action is credited with the
    whole episode's reward, including rewards that came before it.
    """
    rewards = _as_float_tensor("rewards", rewards)
    if rewards.dim() != 1:
        raise ValueError(f"rewards must have shape (T,) for one episode, got {tuple(rewards.shape)}")
    return rewards.sum().expand_as(rewards).clone()


def reward_to_go(rewards: torch.Tensor, gamma: float = 1.0) -> torch.Tensor:
    """``G_t = Σ_{k≥t} γ^{k−t} r_k`` for each step of one episode: shape ``(T,)`` or ``(T, N)``.

    With ``gamma == 1`` this is a reversed cumulative sum (vectorised). With ``gamma < 1`` it uses
    the recursion ``G_t = r_t + γ G_{t+1}`` backwards in time (vectorised over N): the closed form
    ``γ^{−t} Σ_{k≥t} γ^k r_k`` overflows for long episodes.
    """
    rewards = _as_float_tensor("rewards", rewards)
    _check_gamma(gamma)
    if gamma == 1.0:
        return rewards.flip(0).cumsum(0).flip(0)
    returns = torch.empty_like(rewards)
    running = torch.zeros(rewards.shape[1:], dtype=rewards.dtype, device=rewards.device)
    for t in range(rewards.shape[0] - 1, -1, -1):
        running = rewards[t] + gamma * running
        returns[t] = running
    return returns


def gae(rewards: torch.Tensor, values: torch.Tensor, next_values: torch.Tensor,
        terminated: torch.Tensor, done: torch.Tensor,
        gamma: float = 0.99, lam: float = 0.95) -> torch.Tensor:
    """Generalised advantage estimation, ``A_t = Σ_{l≥0} (γλ)^l δ_{t+l}`` within an episode.

    Args (all ``(T,)`` or all ``(T, N)``):
        rewards: ``r_t``.
        values: ``V(s_t)``.
        next_values: ``V`` of the observation that followed step t; at a truncation, that of the
            final observation of the episode (not the first of the next one).
        terminated: 1 where step t reached a terminal state: no bootstrap, ``V(s_{t+1}) = 0``.
        done: 1 where the episode ended at step t (terminated or truncated): the λ-trace stops.

    The TD error is ``δ_t = r_t + γ (1 − terminated_t) V(s_{t+1}) − V(s_t)`` and the recursion
    ``A_t = δ_t + γλ (1 − done_t) A_{t+1}`` runs backwards. λ = 0 gives ``δ_t``; λ = 1 gives the
    Monte Carlo advantage ``G_t − V(s_t)`` (bootstrapped only at a truncation). Returns a tensor
    of the shape of ``rewards``, without gradient.
    """
    _check_gamma(gamma)
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam}")
    args = {"rewards": rewards, "values": values, "next_values": next_values,
            "terminated": terminated, "done": done}
    tensors = {name: _as_float_tensor(name, x).detach() for name, x in args.items()}
    shape = tensors["rewards"].shape
    for name, x in tensors.items():
        if x.shape != shape:
            raise ValueError(
                f"gae: {name} has shape {tuple(x.shape)} but rewards has shape {tuple(shape)}; "
                "all arguments must share the shape (T,) or (T, N)"
            )
    r, v, v_next = tensors["rewards"], tensors["values"], tensors["next_values"]
    not_terminal, not_done = 1.0 - tensors["terminated"], 1.0 - tensors["done"]
    deltas = r + gamma * not_terminal * v_next - v
    advantages = torch.empty_like(deltas)
    running = torch.zeros(deltas.shape[1:], dtype=deltas.dtype, device=deltas.device)
    for t in range(shape[0] - 1, -1, -1):
        running = deltas[t] + gamma * lam * not_done[t] * running
        advantages[t] = running
    return advantages
