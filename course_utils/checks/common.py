"""What every exercise check uses: calling the student's function and comparing its result.

A check prints one line starting with ✓ when every case passes, and otherwise raises an
``AssertionError`` whose message says which case failed, what was expected and what came back.
An exercise not attempted yet (``raise NotImplementedError()``) fails with a message saying so.

A check declares with :func:`references` which functions of the package implement its exercise.
While :func:`call` runs the student's function, those functions refuse to run: a student who
imports the package's answer, or wraps it, fails with a message saying that the exercise asks for
their own implementation. (Their code objects are swapped for one that raises, so this holds
however the student reached the function: ``from ... import gae``, a module attribute, a method.)
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import random
import sys
import types
from typing import Any, Callable, Iterator, Optional, Sequence, TypeVar

import numpy as np
import torch
from torch import nn

Fn = Callable[..., Any]
Check = TypeVar("Check", bound=Callable[..., Any])

# The name under which refusing code finds the refusal, in the reference's module globals.
_REFUSAL = "__course_utils_refuse_reference__"
# The references of the checks now running (pushed by @references), as dotted names.
_running_references: list[str] = []


class _ReferenceRefused(BaseException):
    """Raised inside the student's code when it calls a refused reference: a BaseException, so
    that a student's ``except Exception`` does not swallow it on its way out."""


def _refuse(*args: Any, **kwargs: Any) -> Any:
    """The body a refused reference runs instead of its own. Run as the reference, it looks the
    refusal up in the reference's module globals, where :func:`_refusing` put it."""
    return __course_utils_refuse_reference__()  # type: ignore[name-defined]  # noqa: F821


def _resolve(dotted: str) -> types.FunctionType:
    """The function named ``package.module.function`` or ``package.module.Class.method``."""
    parts = dotted.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            target: Any = importlib.import_module(".".join(parts[:split]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[split:]:
            target = getattr(target, attribute)
        while hasattr(target, "__wrapped__"):  # decorated, e.g. by @torch.no_grad(): its own code
            target = target.__wrapped__
        if not isinstance(target, types.FunctionType) or target.__code__.co_freevars:
            raise TypeError(f"reference {dotted} must be a plain function or method, not {target!r}")
        return target
    raise ModuleNotFoundError(f"reference {dotted}: no module of it can be imported")


def references(*dotted: str) -> Callable[[Check], Check]:
    """Declare the package's implementations of a check's exercise, as dotted names (resolved
    when the check runs): while the check runs the student's function, they refuse to run."""

    def decorate(check: Check) -> Check:
        @functools.wraps(check)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            _running_references.extend(dotted)
            try:
                return check(*args, **kwargs)
            finally:
                del _running_references[len(_running_references) - len(dotted):]

        guarded.references = dotted  # type: ignore[attr-defined]
        return guarded  # type: ignore[return-value]

    return decorate


@contextlib.contextmanager
def _refusing(name: str) -> Iterator[None]:
    """While the body runs, each reference of the running checks raises when called; then an
    AssertionError if the student's code called one, whatever it did with the refusal."""
    # id of the refusing code object given to a reference -> (its name, the reference, its code).
    # By id: code objects compare equal by content, and two references may share a name.
    swapped: dict[int, tuple[str, types.FunctionType, types.CodeType]] = {}
    called: list[str] = []

    def refusal() -> None:
        called.append(swapped[id(sys._getframe(1).f_code)][0])  # the refusing code that ran
        raise _ReferenceRefused()

    try:
        for dotted in dict.fromkeys(_running_references):
            function = _resolve(dotted)
            if id(function.__code__) in swapped:  # the same function under two names
                continue
            refusing = _refuse.__code__.replace(co_name=function.__name__)  # one per reference
            swapped[id(refusing)] = (dotted, function, function.__code__)
            function.__globals__[_REFUSAL] = refusal
            function.__code__ = refusing
        yield
    except _ReferenceRefused:
        pass  # recorded in `called`
    finally:
        for _, function, code in swapped.values():
            function.__code__ = code
            function.__globals__.pop(_REFUSAL, None)
    if called:
        raise AssertionError(
            f"{name} called {called[0]}, the package's own implementation of this exercise: the "
            "exercise asks for your own implementation."
        )


def call(fn: Fn, name: str, *args: Any, **kwargs: Any) -> Any:
    """Call the student's function, turning 'not implemented yet' into a clear failure; the
    references of the running check refuse to run meanwhile (see :func:`references`)."""
    with _refusing(name):
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


def expect_scalar_loss(loss: Any, call: str, over: str = "the batch") -> torch.Tensor:
    """``loss`` is a scalar tensor, still differentiable; otherwise say what was returned instead
    (a Python number from ``.item()``, or one value per sample not yet averaged ``over``)."""
    if isinstance(loss, (float, int)):
        raise AssertionError(f"{call} returned a {type(loss).__name__}; return the tensor itself "
                             "(no .item()), so that PyTorch can differentiate it.")
    if isinstance(loss, torch.Tensor) and loss.dim() > 0 and loss.numel() > 1:
        raise AssertionError(f"{call} returned a tensor of shape {tuple(loss.shape)}; expected "
                             f"a scalar (shape ()): average over {over}.")
    return expect_tensor(loss, (), call)


def expect_close(result: Any, expected: torch.Tensor, call: str, hint: str = "") -> None:
    result = expect_tensor(result, tuple(expected.shape), call)
    if not torch.allclose(result.detach().double(), expected.double(), rtol=1e-4, atol=1e-4):
        raise AssertionError(
            f"{call} returned {fmt(result)}; expected {fmt(expected)}." + (f" {hint}" if hint else "")
        )


def fmt_array(x: Any) -> str:
    """A short text for a NumPy array: its values (rounded) when small, else its shape."""
    array = np.asarray(x)
    return str(np.round(array.astype(float), 4).tolist()) if array.size <= 12 \
        else f"an array of shape {array.shape}"


def expect_array(result: Any, shape: tuple[int, ...], call: str, integer: bool = False) -> np.ndarray:
    """``result`` if it is a NumPy array of ``shape`` (of an integer dtype if ``integer``)."""
    if not isinstance(result, np.ndarray):
        raise AssertionError(f"{call} returned {type(result).__name__}; expected a numpy.ndarray.")
    if result.shape != shape:
        raise AssertionError(f"{call} returned shape {result.shape}; expected {shape}.")
    if integer and not np.issubdtype(result.dtype, np.integer):
        raise AssertionError(f"{call} returned an array of dtype {result.dtype}; expected integer "
                             "indices (np.argmax and rng.integers give them).")
    return result


def expect_array_close(result: Any, expected: np.ndarray, call: str, hint: str = "") -> None:
    """``result`` is a NumPy array of ``expected``'s shape and values (to 1e-6); for a large 2-D
    array the message shows the first row that differs."""
    expected = np.asarray(expected, dtype=float)
    result = expect_array(result, expected.shape, call)
    if result.dtype.kind not in "biuf":
        raise AssertionError(f"{call} returned an array of dtype {result.dtype}; expected numbers.")
    close = np.isclose(result.astype(float), expected, rtol=1e-6, atol=1e-6)
    if close.all():
        return
    if expected.size > 12 and expected.ndim == 2:
        row = int(np.flatnonzero(~close.all(axis=1))[0])
        call, result, expected = f"{call}[{row}]", result[row], expected[row]
    raise AssertionError(f"{call} returned {fmt_array(result)}; expected {fmt_array(expected)}."
                         + (f" {hint}" if hint else ""))


def expect_unchanged(function: str, argument: str, before: np.ndarray, after: np.ndarray) -> None:
    """The student's ``function`` left its input ``argument`` as it was (``before`` is a copy)."""
    if not np.array_equal(before, after):
        raise AssertionError(f"{function} modified its input {argument} in place; compute a new "
                             f"array (e.g. start from {argument}.copy()).")


def expect_tensors_unchanged(function: str, inputs: dict[str, torch.Tensor],
                             copies: dict[str, torch.Tensor]) -> None:
    """The student's ``function`` left each tensor of ``inputs`` (argument name → tensor) as it
    was; ``copies`` holds clones taken before the call."""
    for argument, tensor in inputs.items():
        if not torch.equal(tensor.detach(), copies[argument]):
            raise AssertionError(f"{function} modified its input {argument} in place; compute a "
                                 "new tensor (the batch or rollout must stay as it was collected).")


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of ``module``'s state (parameters and buffers), to compare after later updates."""
    return {name: value.detach().clone() for name, value in module.state_dict().items()}


def first_difference(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor],
                     names: dict[str, str]) -> Optional[str]:
    """The first entry of ``expected`` that ``state`` does not match, named by ``names`` (the
    state key's first component → a network's name, else the key); None if all match."""
    for key, value in expected.items():
        if not torch.allclose(state[key].double(), value.double(), rtol=1e-4, atol=1e-6):
            return names.get(key.split(".")[0], key)
    return None


def expect_update_metrics(result: Any, expected: dict[str, torch.Tensor], keys: Sequence[str],
                          call: str, hint: Callable[[str, float], str]) -> None:
    """An update step's returned metrics ``result`` is a dict holding, for each of ``keys`` that
    ``expected`` (the reference's metrics) holds, a scalar close to it; ``hint(key, expected
    value)`` explains a wrong value."""
    if not isinstance(result, dict):
        raise AssertionError(f"{call} returned {type(result).__name__}; expected a dict of "
                             "metrics such as {'critic_loss': critic_loss.detach(), …}.")
    for key in keys:
        if key not in expected:
            continue
        if key not in result:
            raise AssertionError(f"{call} returned no {key!r}; expected the metrics "
                                 f"{sorted(expected)}.")
        value = torch.as_tensor(result[key]).detach().double().cpu()
        want = float(expected[key])
        if value.shape != () or not torch.allclose(value, torch.tensor(want, dtype=torch.float64),
                                                   rtol=1e-4, atol=1e-5):
            shown = f"{float(value):.5f}" if value.numel() == 1 else fmt(value)
            raise AssertionError(f"{call}: {key} = {shown}; expected {want:.5f}. {hint(key, want)}")


def passed(name: str, n_cases: int) -> None:
    print(f"✓ {name}: all {n_cases} tests passed.")


@contextlib.contextmanager
def global_generators(seed: int) -> Iterator[None]:
    """Seed NumPy's and Python's global generators for a moment, then restore their states."""
    numpy_state, python_state = np.random.get_state(), random.getstate()
    np.random.seed(seed)
    random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)
