"""Properties every exercise check of the course must have, whichever notebook it belongs to.

Parametrised over everything `course_utils.grading` exports, so a new check is covered as soon
as it is exported.
"""

from __future__ import annotations

import pytest

import course_utils.grading as grading
from check_helpers import not_implemented

ALL_CHECKS = [getattr(grading, name) for name in grading.__all__ if name.startswith("check_")]


def test_every_notebook_has_checks():
    assert len(ALL_CHECKS) >= 17, [check.__name__ for check in ALL_CHECKS]


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda check: check.__name__)
def test_an_unfinished_exercise_fails_with_a_message_saying_so(check, capsys):
    exercise = check.__name__.removeprefix("check_")
    with pytest.raises(AssertionError, match=f"{exercise}.*not implemented yet"):
        check(not_implemented)
    assert "✓" not in capsys.readouterr().out


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda check: check.__name__)
def test_a_function_that_returns_nothing_fails(check, capsys):
    """A student who forgot `return` (or who updates a table in place and returns None)."""
    with pytest.raises(AssertionError):
        check(lambda *args, **kwargs: None)
    assert "✓" not in capsys.readouterr().out


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda check: check.__name__)
def test_a_bug_that_raises_is_shown_as_itself(check, capsys):
    """A bug that raises (here a TypeError) propagates unchanged: the check does not disguise it
    as a wrong answer."""
    def typo(*args, **kwargs):
        return [0.0] + "1"

    with pytest.raises(TypeError):
        check(typo)
    assert "✓" not in capsys.readouterr().out
