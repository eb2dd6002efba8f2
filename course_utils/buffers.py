"""Replay memory for off-policy learning: transitions kept in preallocated tensors on a device.

A ``ReplayBuffer`` of capacity ``C`` holds the last ``C`` transitions ``(s, a, r, s', terminated,
truncated)`` in one tensor per field, on the training device, so that a sampled batch is ready
for the networks without a copy::

    buffer = ReplayBuffer.for_env(env, capacity=100_000, device=get_device())
    buffer.add(observation, action, reward, next_observation, terminated, truncated)
    batch = buffer.sample(128)          # ReplayBatch of tensors with leading dimension 128

``terminated`` and ``truncated`` are stored separately because they mean different things:
``terminated`` is the end of the MDP (no future reward, the target does not bootstrap), while
``truncated`` is a time limit of the experiment (the state still has a future; the target
bootstraps from ``s'``). ``next_observation`` must therefore be the true next state, also at
truncation, not the first observation of the next episode.

``MixedReplay`` mixes a fixed share of demonstrations into every batch.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Optional, Union

import gymnasium as gym
import numpy as np
import torch

from course_utils.device import get_device
from course_utils.validation import check_int


@dataclass(frozen=True)
class ReplayBatch:
    """A batch of ``B`` transitions, each field a tensor with leading dimension ``B``.

    ``observations`` and ``next_observations`` are ``(B, *obs_shape)``, ``actions`` is
    ``(B, *action_shape)`` (``(B,)`` of int64 for a discrete action space), ``rewards`` is
    ``(B,)`` float32, ``terminated`` and ``truncated`` are ``(B,)`` bool.
    """

    observations: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_observations: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor

    def __len__(self) -> int:
        return len(self.rewards)


_FIELDS = tuple(f.name for f in fields(ReplayBatch))


def _space_layout(space: gym.Space, name: str) -> tuple[tuple[int, ...], torch.dtype]:
    """Shape and tensor dtype under which elements of ``space`` are stored.

    Box elements are stored as float32; the integer spaces (Discrete, MultiBinary, MultiDiscrete)
    as int64, so a discrete action can index a network's outputs without a conversion.
    """
    if isinstance(space, gym.spaces.Box):
        return tuple(space.shape), torch.float32
    if isinstance(space, (gym.spaces.Discrete, gym.spaces.MultiBinary, gym.spaces.MultiDiscrete)):
        return tuple(space.shape), torch.int64
    raise TypeError(f"{name}: a ReplayBuffer stores Box, Discrete, MultiBinary or MultiDiscrete "
                    f"spaces, got {space!r}; flatten Dict observations first "
                    "(gymnasium.wrappers.FlattenObservation)")


def _dtype_kind(value: Union[np.ndarray, torch.Tensor]) -> str:
    """NumPy's one-letter kind of an array's or a tensor's dtype: f(loat), i(nt), u(nsigned), b(ool)…"""
    if not isinstance(value, torch.Tensor):
        return value.dtype.kind
    if value.dtype == torch.bool:
        return "b"
    if value.dtype.is_floating_point:
        return "f"
    if value.dtype.is_complex:
        return "c"
    return "u" if value.dtype == torch.uint8 else "i"


# The kinds each stored dtype accepts without losing meaning (no float into an integer action).
_ACCEPTED_KINDS = {"f": "fiub", "i": "iub", "u": "iub", "b": "b"}


def _converted(name: str, value: Any, array: Union[np.ndarray, torch.Tensor], dtype: torch.dtype,
               accepted_kinds: str, device: torch.device) -> torch.Tensor:
    """``array`` (``value`` as an array) as a tensor of ``dtype`` on ``device``, or a TypeError
    naming ``name`` when its kind of number would lose meaning in ``dtype``."""
    if _dtype_kind(array) not in accepted_kinds:
        hint = ("a discrete action must be an integer" if name == "actions"
                else "convert it to a number first")
        raise TypeError(f"{name}: the buffer stores {dtype}, got {array.dtype} "
                        f"(value {value!r:.80}); {hint}")
    tensor = array if isinstance(array, torch.Tensor) else torch.from_numpy(
        np.ascontiguousarray(array))
    return tensor.to(device=device, dtype=dtype)


class ReplayBuffer:
    """A circular buffer of the last ``capacity`` transitions, stored as tensors on ``device``.

    Args:
        capacity: the number of transitions kept; the oldest is overwritten when full.
        observation_shape: shape of one observation, e.g. ``(4,)`` for CartPole.
        action_shape: shape of one action: ``()`` for a discrete action.
        observation_dtype, action_dtype: the stored dtypes (float32 observations; int64 discrete
            actions or float32 continuous ones).
        device: where the tensors live (default ``get_device()``).
        seed: seeds the buffer's own generator, so sampling is reproducible.

    ``ReplayBuffer.for_env(env, capacity)`` reads the shapes and dtypes from the env's spaces.
    """

    def __init__(self, capacity: int, observation_shape: tuple[int, ...],
                 action_shape: tuple[int, ...] = (),
                 observation_dtype: torch.dtype = torch.float32,
                 action_dtype: torch.dtype = torch.int64,
                 device: Optional[Union[torch.device, str]] = None,
                 seed: Optional[int] = None) -> None:
        self.capacity = check_int("capacity", capacity)
        self.device = torch.device(device) if device is not None else get_device()
        shapes = {"observations": tuple(observation_shape), "actions": tuple(action_shape),
                  "rewards": (), "next_observations": tuple(observation_shape),
                  "terminated": (), "truncated": ()}
        dtypes = {"observations": observation_dtype, "actions": action_dtype,
                  "rewards": torch.float32, "next_observations": observation_dtype,
                  "terminated": torch.bool, "truncated": torch.bool}
        self._storage = {name: torch.zeros((self.capacity, *shapes[name]), dtype=dtypes[name],
                                           device=self.device) for name in _FIELDS}
        self._arrays = ({name: t.numpy() for name, t in self._storage.items()}
                        if self.device.type == "cpu" else None)
        # NumPy dtype kinds each field accepts: f(loat), i(nt), u(nsigned), b(ool).
        self._accepted_kinds = {name: _ACCEPTED_KINDS[_dtype_kind(t)]
                                for name, t in self._storage.items()}
        self._position = 0  # where the next transition goes
        self._size = 0
        # Indices are drawn on the CPU (cheap, and reproducible across devices), then moved.
        self._generator = torch.Generator()
        if seed is not None:
            self._generator.manual_seed(seed)
        else:
            self._generator.seed()

    @classmethod
    def for_env(cls, env: gym.Env, capacity: int,
                device: Optional[Union[torch.device, str]] = None,
                seed: Optional[int] = None) -> "ReplayBuffer":
        """A buffer shaped for ``env``'s observation and action spaces."""
        observation_shape, observation_dtype = _space_layout(env.observation_space,
                                                             "observation space")
        action_shape, action_dtype = _space_layout(env.action_space, "action space")
        return cls(capacity, observation_shape, action_shape, observation_dtype, action_dtype,
                   device, seed)

    def __len__(self) -> int:
        return self._size

    def __repr__(self) -> str:
        obs = self._storage["observations"]
        return (f"ReplayBuffer({self._size}/{self.capacity} transitions, observations "
                f"{tuple(obs.shape[1:])} {obs.dtype}, actions "
                f"{tuple(self._storage['actions'].shape[1:])} {self._storage['actions'].dtype}, "
                f"on {self.device})")

    # ------------------------------------------------------------------------------ adding

    def add(self, observation: Any, action: Any, reward: float, next_observation: Any,
            terminated: bool, truncated: bool) -> None:
        """Store one transition ``(s, a, r, s', terminated, truncated)``, overwriting the oldest."""
        values = (observation, action, reward, next_observation, terminated, truncated)
        if self._arrays is None:  # storage on an accelerator: go through torch
            self.extend(*(np.asarray(value)[None] for value in values))
            return
        # On the CPU, NumPy views of the storage make one transition a few cheap writes.
        # Every field is checked before any is written: a bad value leaves the buffer unchanged.
        values = tuple(np.asarray(value) for value in values)
        for (name, array), value in zip(self._arrays.items(), values):
            if value.shape != array.shape[1:] or value.dtype.kind not in self._accepted_kinds[name]:
                self._checked(name, value[None])  # raises the error that names the problem
        for array, value in zip(self._arrays.values(), values):
            array[self._position] = value
        self._position = (self._position + 1) % self.capacity
        self._size = min(self._size + 1, self.capacity)

    def extend(self, observation: Any, action: Any, reward: Any, next_observation: Any,
               terminated: Any, truncated: Any) -> None:
        """Store ``n`` transitions at once, each argument with leading dimension ``n``.

        For example the transitions of ``n`` parallel environments, or a relabelled episode.
        """
        values = {"observations": observation, "actions": action, "rewards": reward,
                  "next_observations": next_observation, "terminated": terminated,
                  "truncated": truncated}
        tensors = {name: self._checked(name, value) for name, value in values.items()}
        counts = {name: len(t) for name, t in tensors.items()}
        n = counts["rewards"]
        if len(set(counts.values())) != 1:
            raise ValueError(f"extend: every field needs the same number of transitions, got {counts}")
        if n > self.capacity:  # only the last `capacity` would survive
            tensors = {name: t[-self.capacity:] for name, t in tensors.items()}
            # Where n calls of `add` would have put them, so position and order match `add`'s.
            self._position = (self._position + n - self.capacity) % self.capacity
            n = self.capacity
        indices = ((self._position + torch.arange(n)) % self.capacity).to(self.device)
        for name, t in tensors.items():
            self._storage[name][indices] = t
        self._position = (self._position + n) % self.capacity
        self._size = min(self._size + n, self.capacity)

    def _checked(self, name: str, value: Any) -> torch.Tensor:
        """``value`` as a tensor of the stored dtype on the device, or an error naming ``name``."""
        stored = self._storage[name]
        array = value.detach() if isinstance(value, torch.Tensor) else np.asarray(value)
        shape = tuple(array.shape)
        if len(shape) == 0 or shape[1:] != tuple(stored.shape[1:]):
            raise ValueError(f"{name}: expected shape {tuple(stored.shape[1:])} per transition, "
                             f"got {shape[1:] if shape else shape} (value {value!r:.80})")
        return _converted(name, value, array, stored.dtype, self._accepted_kinds[name],
                          self.device)

    # ---------------------------------------------------------------------------- sampling

    def sample(self, batch_size: int) -> ReplayBatch:
        """``batch_size`` transitions drawn uniformly with replacement."""
        batch_size = check_int("batch_size", batch_size)
        if self._size == 0:
            raise ValueError("sample: the buffer is empty; add transitions first")
        indices = torch.randint(self._size, (batch_size,), generator=self._generator)
        return self.at(indices)

    def at(self, indices: torch.Tensor) -> ReplayBatch:
        """The transitions stored at ``indices`` (0 … len-1 in storage order), one gather each."""
        indices = indices.to(self.device)
        return ReplayBatch(**{name: t[indices] for name, t in self._storage.items()})

    # --------------------------------------------------------------------------- save/load

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to rebuild the buffer: its filled part, position and generator."""
        return {"capacity": self.capacity, "position": self._position, "size": self._size,
                # A copy: on the CPU a slice shares (and torch.save writes) the whole storage.
                "storage": {name: t[: self._size].to("cpu", copy=True)
                            for name, t in self._storage.items()},
                "generator": self._generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a ``state_dict`` from a buffer of the same capacity, shapes and dtypes."""
        if state["capacity"] != self.capacity:
            raise ValueError(f"load_state_dict: saved capacity {state['capacity']} differs from "
                             f"this buffer's {self.capacity}")
        for name, saved in state["storage"].items():
            stored = self._storage[name]
            if saved.shape[1:] != stored.shape[1:] or saved.dtype != stored.dtype:
                raise ValueError(f"load_state_dict: saved {name} are {tuple(saved.shape[1:])} "
                                 f"{saved.dtype}, this buffer stores {tuple(stored.shape[1:])} "
                                 f"{stored.dtype}")
        for name, saved in state["storage"].items():
            self._storage[name][: len(saved)] = saved.to(self.device)
        self._position, self._size = state["position"], state["size"]
        self._generator.set_state(state["generator"])


class MixedReplay:
    """The agent's replay buffer with demonstrations mixed into every batch at a fixed ratio.

    ``sample(B)`` returns ``round(demo_ratio · B)`` transitions from ``demo_buffer`` followed by
    the rest from ``buffer`` (demonstrations first), one ``ReplayBatch``; ``add`` and ``extend``
    go to ``buffer`` only, so the demonstrations are never overwritten. It stands in for a
    ``ReplayBuffer`` wherever a loop adds and samples (``add``, ``extend``, ``sample``, ``len``,
    ``state_dict``), e.g. HER's demonstrations in notebook 09::

        agent.buffer = MixedReplay(agent.buffer, demo_buffer, demo_ratio=0.25)

    Both buffers must store the same shapes and dtypes and live on the same device.
    ``len`` is the agent's part; ``state_dict`` saves both parts.
    """

    def __init__(self, buffer: ReplayBuffer, demo_buffer: ReplayBuffer, demo_ratio: float = 0.25) -> None:
        if not 0.0 <= demo_ratio <= 1.0:
            raise ValueError(f"demo_ratio must be in [0, 1], got {demo_ratio}")
        if len(demo_buffer) == 0 and demo_ratio > 0:
            raise ValueError("demo_buffer is empty; add the demonstrations first")
        for name in _FIELDS:
            mine, theirs = buffer._storage[name], demo_buffer._storage[name]
            if mine.shape[1:] != theirs.shape[1:] or mine.dtype != theirs.dtype or mine.device != theirs.device:
                raise ValueError(f"demo_buffer stores {name} as {tuple(theirs.shape[1:])} {theirs.dtype} on "
                                 f"{theirs.device}, buffer as {tuple(mine.shape[1:])} {mine.dtype} on "
                                 f"{mine.device}")
        self.buffer, self.demo_buffer, self.demo_ratio = buffer, demo_buffer, float(demo_ratio)

    def __len__(self) -> int:
        return len(self.buffer)

    def add(self, *transition: Any) -> None:
        self.buffer.add(*transition)

    def extend(self, *transitions: Any) -> None:
        self.buffer.extend(*transitions)

    def sample(self, batch_size: int) -> ReplayBatch:
        batch_size = check_int("batch_size", batch_size)
        n_demo = round(self.demo_ratio * batch_size)
        if n_demo == batch_size or len(self.buffer) == 0:  # nothing of the agent's yet
            return self.demo_buffer.sample(batch_size)
        if n_demo == 0:
            return self.buffer.sample(batch_size)
        demo, own = self.demo_buffer.sample(n_demo), self.buffer.sample(batch_size - n_demo)
        return ReplayBatch(**{name: torch.cat([getattr(demo, name), getattr(own, name)]) for name in _FIELDS})

    def state_dict(self) -> dict[str, Any]:
        return {"buffer": self.buffer.state_dict(), "demo_buffer": self.demo_buffer.state_dict(),
                "demo_ratio": self.demo_ratio}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.buffer.load_state_dict(state["buffer"])
        self.demo_buffer.load_state_dict(state["demo_buffer"])
        self.demo_ratio = float(state["demo_ratio"])
