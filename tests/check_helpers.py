"""What the tests of the exercise checks share: a stub exercise and pass/fail assertions."""

from __future__ import annotations

import types

import pytest


def not_implemented(*args, **kwargs):
    """An exercise as the student version hands it out."""
    raise NotImplementedError()


def own_copy(fn):
    """The package's function ``fn`` as a student would write it: the same code, in a function of
    its own (the checks refuse the package's own functions; ``checks.common.references``). A
    decorated function keeps its decorator, around a copy of the function it wraps."""
    closure = fn.__closure__
    inner = getattr(fn, "__wrapped__", None)
    if inner is not None and closure:
        copied = own_copy(inner)
        closure = tuple(types.CellType(copied) if cell.cell_contents is inner else cell for cell in closure)
    copy = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, closure)
    copy.__kwdefaults__ = fn.__kwdefaults__
    return copy


def assert_passes(check, fn, capsys, name):
    """``check(fn)`` prints exactly one ✓ line naming the exercise."""
    check(fn)
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    assert lines[0].startswith("✓")
    assert name in lines[0] and "passed" in lines[0]


def assert_fails(check, fn, *fragments):
    """``check(fn)`` raises an AssertionError whose message contains every fragment."""
    with pytest.raises(AssertionError) as info:
        check(fn)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message
