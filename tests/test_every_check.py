"""Properties every exercise check of the course must have, whichever notebook it belongs to.

Parametrised over everything `course_utils.instructor` exports, so a new check is covered as soon
as it is exported.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import course_utils
import course_utils.checks as grading
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


# --- the package's own implementation is refused ---------------------------------------------------

GUARDED = [(check, dotted) for check in ALL_CHECKS for dotted in getattr(check, "references", ())]


def _package_functions() -> dict[str, str]:
    """Every function defined in course_utils outside grading: name -> dotted name."""
    found: dict[str, str] = {}
    for module_info in pkgutil.walk_packages(course_utils.__path__, "course_utils."):
        if module_info.name.startswith("course_utils.instructor"):
            continue
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if inspect.isfunction(value) and value.__module__ == module.__name__:
                found.setdefault(name, f"{module.__name__}.{name}")
    return found


def test_a_check_whose_exercise_the_package_implements_refuses_it():
    """A check named after a function of the package declares that function a reference."""
    package = _package_functions()
    missing = [
        (check.__name__, package[exercise])
        for check in ALL_CHECKS
        if (exercise := check.__name__.removeprefix("check_")) in package
        and package[exercise] not in getattr(check, "references", ())
    ]
    assert not missing
    assert len(GUARDED) >= 20


@pytest.mark.parametrize(("check", "dotted"), GUARDED, ids=lambda item: getattr(item, "__name__", item))
def test_delegating_to_the_package_fails_with_a_message_saying_so(check, dotted, capsys):
    module_name, _, name = dotted.rpartition(".")
    try:
        owner = importlib.import_module(module_name)
    except ModuleNotFoundError:  # a method: module.Class.method
        module_name, _, class_name = module_name.rpartition(".")
        owner = getattr(importlib.import_module(module_name), class_name)
    reference = getattr(owner, name)
    exercise = check.__name__.removeprefix("check_")
    own_implementation = f"{exercise} called {dotted}, the package's own implementation"

    def wrapper(*args, **kwargs):  # however it is reached: here by module attribute, at call time
        return getattr(owner, name)(*args, **kwargs)

    def swallows(*args, **kwargs):  # the refusal cannot be caught by `except Exception`
        try:
            return reference(*args, **kwargs)
        except Exception:
            return None

    for student in (wrapper, swallows):
        with pytest.raises(AssertionError, match=own_implementation):
            check(student)
    if not inspect.isclass(owner):  # a function (a method needs its instance)
        with pytest.raises(AssertionError, match=own_implementation):
            check(reference)
    assert "✓" not in capsys.readouterr().out
    assert inspect.unwrap(reference).__code__.co_name == name, "the reference's own code is back"
    assert "__course_utils_refuse_reference__" not in inspect.unwrap(reference).__globals__
