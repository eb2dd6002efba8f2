"""What the tests of the exercise checks share: a stub exercise and pass/fail assertions."""

from __future__ import annotations

import pytest


def not_implemented(*args, **kwargs):
    """An exercise as the student version hands it out."""
    raise NotImplementedError()


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
