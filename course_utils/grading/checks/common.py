"""What every exercise check uses: calling the student's function and comparing its result.

A check prints one line starting with ✓ when every case passes, and otherwise raises an
``AssertionError`` whose message says which case failed, what was expected and what came back.
An exercise not attempted yet (``raise NotImplementedError()``) fails with a message saying so.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

Fn = Callable[..., Any]


def call(fn: Fn, name: str, *args: Any, **kwargs: Any) -> Any:
    """Call the student's function, turning 'not implemented yet' into a clear failure."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise AssertionError(
            f"{name} is not implemented yet: replace `raise NotImplementedError()` with your code."
        ) from None


def fmt(x: Any) -> str:
    if isinstance(x, torch.Tensor):
        return str([round(v, 4) for v in x.detach().flatten().tolist()]) if x.numel() <= 12 \
            else f"a tensor of shape {tuple(x.shape)}"
    return repr(x)


def expect_tensor(result: Any, shape: tuple[int, ...], call: str) -> torch.Tensor:
    if not isinstance(result, torch.Tensor):
        raise AssertionError(f"{call} returned {type(result).__name__}; expected a torch.Tensor.")
    if tuple(result.shape) != shape:
        raise AssertionError(f"{call} returned shape {tuple(result.shape)}; expected {shape}.")
    return result


def expect_close(result: Any, expected: torch.Tensor, call: str, hint: str = "") -> None:
    result = expect_tensor(result, tuple(expected.shape), call)
    if not torch.allclose(result.detach().double(), expected.double(), rtol=1e-4, atol=1e-4):
        raise AssertionError(
            f"{call} returned {fmt(result)}; expected {fmt(expected)}." + (f" {hint}" if hint else "")
        )


def passed(name: str, n_cases: int) -> None:
    print(f"✓ {name}: all {n_cases} tests passed.")
