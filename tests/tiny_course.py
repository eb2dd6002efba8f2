"""A tiny course for the autograder's tests: a complete notebook of three exercises whose check
cells define their checks inline; each exercise stands alone, so a kernel restarted after one still
grades the others."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_utils.instructor.student import make_student_version

NAME = "tiny.ipynb"

DOUBLE = """\
def double(x):
    ### BEGIN SOLUTION
    return 2 * x
    ### END SOLUTION"""

CHECK_DOUBLE = """\
def check_double(fn):
    assert fn(3) == 6, f"double(3) returned {fn(3)!r}; expected 6."
    print("✓ double: all 1 tests passed.")


check_double(double)"""

TOTAL = """\
def total(xs):
    ### BEGIN SOLUTION
    result = 0
    for x in xs:
        result += x
    return result
    ### END SOLUTION"""

CHECK_TOTAL = """\
def check_total(fn):
    assert fn([1, 2, 3]) == 6, f"total([1, 2, 3]) returned {fn([1, 2, 3])!r}; expected 6."
    print("✓ total: all 1 tests passed.")


check_total(total)
### BEGIN HIDDEN TESTS
assert total([]) == 0, "hidden test: total([]) must be 0"
### END HIDDEN TESTS"""

SQUARE = """\
def square(x):
    ### BEGIN SOLUTION
    return x * x
    ### END SOLUTION"""

CHECK_SQUARE = """\
def check_square(fn):
    assert fn(4) == 16, f"square(4) returned {fn(4)!r}; expected 16."
    print("✓ square: all 1 tests passed.")


check_square(square)"""

# The exercise cell of each function, and its check cell just after it.
EXERCISE_CELLS = {"double": 2, "total": 5, "square": 8}
FULL_MARKS = {"double": 2, "sum of a list": 1, "square": 1}


def complete_notebook() -> nbformat.NotebookNode:
    """The complete notebook: points and a name in metadata, a hidden test in 'total'."""
    nb = new_notebook(
        cells=[
            new_markdown_cell("# A tiny course"),
            new_markdown_cell("Write `double`."),
            new_code_cell(DOUBLE),
            new_code_cell(CHECK_DOUBLE, metadata={"grading": {"points": 2}}),
            new_markdown_cell("Write `total`."),
            new_code_cell(TOTAL),
            new_code_cell(CHECK_TOTAL, metadata={"grading": {"exercise": "sum of a list"}}),
            new_markdown_cell("Write `square`."),
            new_code_cell(SQUARE),
            new_code_cell(CHECK_SQUARE),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    for index, cell in enumerate(nb.cells):
        cell.id = f"cell-{index}"  # the same ids at every call, as in a notebook and its student version
    return nb


def student_version() -> nbformat.NotebookNode:
    return make_student_version(complete_notebook())


def solved(**answers: str) -> nbformat.NotebookNode:
    """The student version with each solution pasted in, or ``answers[function]`` instead."""
    nb = student_version()
    complete = complete_notebook()
    for function, index in EXERCISE_CELLS.items():
        nb.cells[index].source = answers.get(function, complete.cells[index].source)
    return nb


def submit(nb: nbformat.NotebookNode, folder: Path, student: str = "alice") -> Path:
    path = folder / student / NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path
