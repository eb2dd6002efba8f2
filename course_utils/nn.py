"""Small neural-network builders (in the spirit of CS285's ``build_mlp``) and ``RunningNorm``, a
layer that standardises observations with running statistics."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Union

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from course_utils.device import get_device
from course_utils.validation import check_int

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
    "sigmoid": nn.Sigmoid,
    "selu": nn.SELU,
    "softplus": nn.Softplus,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "identity": nn.Identity,
}

Activation = Union[str, nn.Module]


@dataclass
class MLPConfig:
    """What ``build_mlp`` builds: ``n_layers`` hidden layers of ``size`` units, then an output layer.

    Activations are given by name (a key of ``ACTIVATIONS``) or as an ``nn.Module`` instance.
    """

    input_size: int
    output_size: int
    n_layers: int = 2
    size: int = 64
    activation: Activation = "tanh"
    output_activation: Activation = "identity"


def make_activation(activation: Activation) -> nn.Module:
    """A fresh activation module from a name, or a copy of the module given (so nets share none)."""
    if isinstance(activation, nn.Module):
        return copy.deepcopy(activation)
    if isinstance(activation, str) and activation.lower() in ACTIVATIONS:
        return ACTIVATIONS[activation.lower()]()
    raise ValueError(
        f"unknown activation {activation!r}; expected an nn.Module or one of {sorted(ACTIVATIONS)}"
    )


def build_mlp(config: MLPConfig, device: torch.device | str | None = None) -> nn.Sequential:
    """Build a multi-layer perceptron ``(..., input_size) -> (..., output_size)`` on ``device``.

    ``device`` defaults to ``get_device()``. Each call builds new modules, so two networks built
    from one config share no parameters.
    """
    for name in ("input_size", "output_size", "size"):
        check_int(f"MLPConfig.{name}", getattr(config, name))
    check_int("MLPConfig.n_layers", config.n_layers, minimum=0)
    layers: list[nn.Module] = []
    in_size = config.input_size
    for _ in range(config.n_layers):
        layers += [nn.Linear(in_size, config.size), make_activation(config.activation)]
        in_size = config.size
    layers += [nn.Linear(in_size, config.output_size), make_activation(config.output_activation)]
    return nn.Sequential(*layers).to(device if device is not None else get_device())


def from_numpy(array: np.ndarray | float, device: torch.device | str | None = None) -> torch.Tensor:
    """A float32 tensor on ``device`` (default ``get_device()``) from a NumPy array or number."""
    return torch.as_tensor(np.asarray(array), dtype=torch.float32,
                           device=device if device is not None else get_device())


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A NumPy copy of a tensor, detached from the graph and moved to the CPU."""
    # .cpu() returns the same tensor on the CPU, whose memory .numpy() would share: copy.
    return tensor.detach().cpu().numpy().copy()


@torch.no_grad()
def orthogonal_init(mlp: nn.Sequential, last_gain: float) -> None:
    """Initialise ``mlp``'s linear layers in place as CleanRL's PPO does: orthogonal weights with
    gain √2, the last layer's with ``last_gain``, and zero biases. A small ``last_gain`` (0.01)
    makes a policy's first outputs nearly uniform (or its mean nearly 0); 1.0 suits a critic."""
    linears = [layer for layer in mlp if isinstance(layer, nn.Linear)]
    for i, layer in enumerate(linears):
        nn.init.orthogonal_(layer.weight, last_gain if i == len(linears) - 1 else np.sqrt(2))
        nn.init.zeros_(layer.bias)


@torch.no_grad()
def polyak_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Move ``target``'s parameters towards ``source``'s in place: ``θ' ← τ θ + (1 − τ) θ'``.

    ``tau = 1`` copies ``source`` (a hard update); a small ``tau`` such as 0.005 lets the target
    network trail the online one slowly, which keeps the regression targets of DQN, DDPG, TD3 and
    SAC from moving with every gradient step. Buffers (e.g. batch-norm statistics) are copied.
    """
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau must be in [0, 1], got {tau!r}")
    target_parameters, source_parameters = list(target.parameters()), list(source.parameters())
    if len(target_parameters) != len(source_parameters):
        raise ValueError("polyak_update: target and source have different architectures "
                         f"({len(target_parameters)} vs {len(source_parameters)} parameter tensors)")
    target_buffers, source_buffers = list(target.buffers()), list(source.buffers())
    if len(target_buffers) != len(source_buffers):
        raise ValueError("polyak_update: target and source have different architectures "
                         f"({len(target_buffers)} vs {len(source_buffers)} buffers)")
    # In-place lerp_ and copy_ would broadcast a smaller source tensor silently: compare shapes.
    for i, (t, s) in enumerate(zip(target_parameters + target_buffers,
                                   source_parameters + source_buffers)):
        if t.shape != s.shape:
            kind = "parameter" if i < len(target_parameters) else "buffer"
            raise ValueError("polyak_update: target and source have different architectures "
                             f"({kind} {i}: shape {tuple(t.shape)} vs {tuple(s.shape)})")
    for target_parameter, source_parameter in zip(target_parameters, source_parameters):
        target_parameter.lerp_(source_parameter, tau)  # θ' + τ (θ − θ')
    for target_buffer, source_buffer in zip(target_buffers, source_buffers):
        target_buffer.copy_(source_buffer)


def make_adam(parameters, learning_rate: float,
              device: torch.device | str | None = None) -> torch.optim.Adam:
    """Adam, fused into one kernel where PyTorch supports it (CPU and CUDA).

    The fused implementation updates every parameter tensor in one call; for the small networks
    of RL, whose updates are dominated by per-operation overhead, it halves the optimiser's time.
    """
    device = torch.device(device) if device is not None else get_device()
    parameters = list(parameters)  # an iterator would be used up by a first, failed attempt
    if device.type in ("cpu", "cuda"):
        try:
            return torch.optim.Adam(parameters, lr=learning_rate, fused=True)
        except RuntimeError:  # torch < 2.4 has no fused Adam on the CPU: the plain one then
            pass
    return torch.optim.Adam(parameters, lr=learning_rate)


def flat_size(space: gym.Space, name: str) -> int:
    """The size of a flat Box observation space or of a Discrete/Box action space."""
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    if isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
        return int(space.shape[0])
    raise ValueError(
        f"{name} must be a Discrete space or a one-dimensional Box, got {space}"
    )


class RunningNorm(nn.Module):
    """Standardises observations, ``clip((o − μ) / σ, ±10)``, with running statistics. They are
    buffers (saved with the model, on its device) and change only between rollouts, so that the
    log-probabilities stored while acting and those of the update see the same inputs."""

    def __init__(self, size: int, device: torch.device) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(size, device=device))
        self.register_buffer("var", torch.ones(size, device=device))
        self.register_buffer("count", torch.tensor(1e-4, device=device))

    @torch.no_grad()
    def update(self, observations: torch.Tensor) -> None:
        """Merge the moments of a batch ``(B, size)`` (Chan et al.'s parallel algorithm)."""
        batch_mean, batch_var = observations.mean(0), observations.var(0, unbiased=False)
        batch_count = observations.shape[0]
        total = self.count + batch_count
        delta = batch_mean - self.mean
        self.var.copy_((self.var * self.count + batch_var * batch_count
                        + delta ** 2 * self.count * batch_count / total) / total)
        self.mean.add_(delta * batch_count / total)
        self.count.copy_(total)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return torch.clamp((observations - self.mean) / torch.sqrt(self.var + 1e-8), -10.0, 10.0)
