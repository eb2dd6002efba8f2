"""Checks of the real notebooks: committed student versions and both directions of every check.

- The committed student version is byte-identical to a fresh build.
- It holds no solution, no hidden test and no output.
- The complete notebook has exercises, a check for each, and every check passed when it was
  executed (nbval executes the complete notebooks itself; this file never re-executes them).
- Executed in quick mode, every check cell of the student version fails: a check that cannot fail
  is a defect.

The per-notebook assertions are plain functions, so they can be tried on any notebook.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from course_utils.instructor.student import (
    find_check_cells,
    find_exercise_cells,
    read_notebook,
    solution_blocks,
    student_path,
    student_text,
)

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
COMPLETE_NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
FIX = "run `python -m course_utils.instructor build-student` and commit notebooks/student/"
# Errors that show a check refused an unfinished exercise (its own message, or the stub's).
EXPECTED_ERRORS = ("AssertionError", "NotImplementedError")
CELL_TIMEOUT_S = 600
CHECK_CALL = re.compile(r"^\s*check_\w+\(")  # the same rule as find_check_cells


def _text(cell: nbformat.NotebookNode) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _stream_text(cell: nbformat.NotebookNode) -> str:
    """Everything a code cell printed (stdout and stderr)."""
    return "".join(
        "".join(out.text) if isinstance(out.text, list) else out.text
        for out in cell.get("outputs", [])
        if out.output_type == "stream"
    )


def _errors(cell: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [out for out in cell.get("outputs", []) if out.output_type == "error"]


def assert_student_up_to_date(complete: Path) -> None:
    """The committed student version exists and equals a fresh build, byte for byte."""
    student = student_path(complete)
    assert student.is_file(), f"{student} is missing: {FIX}"
    assert student.read_bytes() == student_text(complete).encode("utf-8"), f"{student} is out of date: {FIX}"


def assert_student_has_no_solutions(complete: Path) -> None:
    """No markers, no solution or hidden-test text, no outputs in the committed student version."""
    student_file = student_path(complete)
    assert student_file.is_file(), f"{student_file} is missing: {FIX}"
    student = read_notebook(student_file)
    full = read_notebook(complete)
    assert len(student.cells) == len(full.cells), f"{student_file} has another number of cells: {FIX}"
    for index, (cell, full_cell) in enumerate(zip(student.cells, full.cells)):
        where = f"{student_file}, cell {index}"
        text = _text(cell)
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
            assert marker not in text, f"{where}: contains '{marker}'"
        full_lines = _text(full_cell).split("\n")
        for block in solution_blocks(_text(full_cell), source=str(complete), cell_index=index):
            body = "\n".join(full_lines[block.begin + 1 : block.end])
            if body.strip():
                assert body not in text, f"{where}: the {block.what.lower()} text of the complete notebook leaked"
        if cell.cell_type == "code":
            assert not cell.outputs, f"{where}: has outputs"
            assert cell.execution_count is None, f"{where}: has an execution count"


def assert_checks_pass_in_complete(complete: Path) -> None:
    """Exercises exist, each has a check, and every check cell printed ✓ and raised nothing."""
    nb = read_notebook(complete)
    exercises, checks = find_exercise_cells(nb), find_check_cells(nb)
    assert exercises, f"{complete}: no exercise cell (a code cell with '### BEGIN SOLUTION')"
    assert len(checks) >= len(exercises), (
        f"{complete}: {len(exercises)} exercise cells {exercises} but only {len(checks)} check cells {checks}"
    )
    for index in checks:
        cell = nb.cells[index]
        errors = _errors(cell)
        assert not errors, f"{complete}, cell {index}: the check raised {errors[0].ename}: {errors[0].evalue}"
        passed = [line for line in _stream_text(cell).splitlines() if line.startswith("✓")]
        calls = sum(1 for line in _text(cell).split("\n") if CHECK_CALL.match(line))
        assert len(passed) >= max(calls, 1), (
            f"{complete}, cell {index}: expected a '✓' line from each of its {calls} check calls, "
            f"found {len(passed)}; execute the complete notebook and commit its outputs"
        )


def execute_student(complete: Path) -> nbformat.NotebookNode:
    """Execute the committed student version in quick mode, errors allowed, and return it.

    It runs in the complete notebook's folder, so relative paths (data, checkpoints) resolve as
    they do for the complete notebook.
    """
    nb = read_notebook(student_path(complete))
    env = dict(os.environ, COURSE_QUICK="1", SDL_VIDEODRIVER="dummy")
    env.pop("MPLBACKEND", None)  # a non-inline backend set by CI would break plots in the kernel
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=CELL_TIMEOUT_S,
        allow_errors=True,
        resources={"metadata": {"path": str(complete.parent)}},
    )
    client.execute(env=env)
    return nb


def assert_checks_fail_in_student(complete: Path) -> None:
    """Every check cell of the student version ends in AssertionError or NotImplementedError."""
    nb = execute_student(complete)
    wrong: list[str] = []
    for index in find_check_cells(nb):
        errors = _errors(nb.cells[index])
        if not errors:
            printed = _stream_text(nb.cells[index]).strip().replace("\n", " | ")
            wrong.append(f"cell {index} passed without the solution (printed: {printed!r})")
        elif errors[0].ename not in EXPECTED_ERRORS:
            expected = " or ".join(EXPECTED_ERRORS)
            wrong.append(f"cell {index} raised {errors[0].ename}: {errors[0].evalue} instead of {expected}")
    listing = "\n  ".join(wrong)
    assert not wrong, f"{student_path(complete)}: checks that cannot fail on the student version:\n  {listing}"


_ids = [path.name for path in COMPLETE_NOTEBOOKS]


@pytest.mark.parametrize("complete", COMPLETE_NOTEBOOKS, ids=_ids)
def test_student_version_up_to_date(complete: Path) -> None:
    assert_student_up_to_date(complete)


@pytest.mark.parametrize("complete", COMPLETE_NOTEBOOKS, ids=_ids)
def test_student_version_has_no_solutions(complete: Path) -> None:
    assert_student_has_no_solutions(complete)


@pytest.mark.parametrize("complete", COMPLETE_NOTEBOOKS, ids=_ids)
def test_checks_pass_in_complete_notebook(complete: Path) -> None:
    assert_checks_pass_in_complete(complete)


@pytest.mark.parametrize("complete", COMPLETE_NOTEBOOKS, ids=_ids)
def test_checks_fail_on_student_version(complete: Path) -> None:
    assert_checks_fail_in_student(complete)


def test_no_orphan_student_versions() -> None:
    """Every student version has its complete notebook."""
    students = sorted((NOTEBOOKS_DIR / "student").glob("*.ipynb"))
    orphans = [path.name for path in students if not (NOTEBOOKS_DIR / path.name).is_file()]
    assert not orphans, f"student versions without a complete notebook: {orphans}; {FIX}"
