"""Where tensors live and how runs are made reproducible."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

_VALID_DEVICES = ("cpu", "cuda", "mps")


def get_device() -> torch.device:
    """Return the device to train on: CUDA if available, else Apple's MPS, else the CPU.

    The environment variable ``COURSE_DEVICE`` (``cpu``, ``cuda``, ``cuda:1``, ``mps``) overrides
    the choice, for example to compare CPU and GPU timings or to keep a small run on the CPU.
    """
    requested = os.environ.get("COURSE_DEVICE", "").strip()
    if requested:
        message = (f"COURSE_DEVICE={requested!r} is not a device; expected one of "
                   f"{_VALID_DEVICES} (optionally with an index, such as 'cuda:1')")
        if requested.split(":")[0] not in _VALID_DEVICES:
            raise ValueError(message)
        try:
            return torch.device(requested)
        except RuntimeError:
            raise ValueError(message) from None
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def set_seed(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's generators (CUDA included) and make cuDNN deterministic.

    Environments are seeded separately, through ``env.reset(seed=seed)``: gymnasium keeps its own
    generator per environment.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {seed!r}")
    seed = int(seed)  # random.seed refuses NumPy integers
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
