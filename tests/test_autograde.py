"""Tests of the autograder: the tiny course (``tiny_course``) for each behaviour, then notebook 05
itself."""

from __future__ import annotations

import csv
import json
import time
import uuid
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from course_utils.instructor import autograde
from course_utils.instructor.__main__ import main
from course_utils.instructor.autograde import (
    execute_notebook,
    exercises_of,
    grade_submission,
    restore_check_cells,
)
from course_utils.instructor.student import read_notebook, student_path
from tiny_course import (CHECK_DOUBLE, CHECK_SQUARE, CHECK_TOTAL, FULL_MARKS, NAME, complete_notebook,
                         solved, student_version, submit)

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
SHORT_TIMEOUT_S = 5


def _grade(nb: nbformat.NotebookNode, course: Path, **limits: float) -> dict[str, tuple[float, str]]:
    """Grade ``nb`` as a submission: {exercise: (points, message)}."""
    result = grade_submission(submit(nb, course.parents[1]), course, **limits)
    return {grade.exercise: (grade.points, grade.message) for grade in result.grades}


def _points(grades: dict[str, tuple[float, str]]) -> dict[str, float]:
    return {exercise: points for exercise, (points, _) in grades.items()}


def _rewrite_ids(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Every cell gets a new id, as when an editor rewrites them."""
    for cell in nb.cells:
        cell.id = uuid.uuid4().hex[:8]
    return nb


# --- exercises and restoring check cells (no kernel) ----------------------------------------------


def test_exercises_named_and_weighted_by_metadata() -> None:
    exercises = exercises_of(complete_notebook())
    assert [(e.name, e.points, e.index) for e in exercises] == [
        ("double", 2, 3),
        ("sum of a list", 1, 6),
        ("square", 1, 9),
    ]


@pytest.mark.parametrize(
    ("grading", "error"),
    [
        ({"points": -1}, "grading.points"),
        ({"points": "two"}, "grading.points"),
        ({"exercise": ""}, "grading.exercise"),
    ],
)
def test_invalid_grading_metadata_is_an_error_naming_the_cell(grading: dict[str, object], error: str) -> None:
    nb = complete_notebook()
    nb.cells[9].metadata["grading"] = grading
    with pytest.raises(ValueError, match=rf"tiny, cell 9: metadata {error}"):
        exercises_of(nb, source="tiny")


def test_duplicate_exercise_names_are_an_error() -> None:
    nb = complete_notebook()
    nb.cells[9].metadata["grading"] = {"exercise": "double"}
    with pytest.raises(ValueError, match="cells 3 and 9 are both exercise 'double'"):
        exercises_of(nb)


def test_restoring_keeps_added_cells_and_puts_deleted_checks_back_in_place() -> None:
    complete = complete_notebook()
    submission = solved()
    submission.cells.insert(2, new_code_cell("helper = 1"))  # the student's own cell
    del submission.cells[7]  # the check of 'total' (index 6 before the insertion)
    submission.cells[4].source = 'print("✓ double")'  # a tampered check of 'double'
    graded, positions = restore_check_cells(submission, complete, exercises_of(complete))
    sources = [cell.source for cell in graded.cells]
    assert sources == [
        *(cell.source for cell in submission.cells[:4]),
        CHECK_DOUBLE,
        submission.cells[5].source,
        submission.cells[6].source,
        CHECK_TOTAL,
        *(cell.source for cell in submission.cells[7:9]),
        CHECK_SQUARE,
    ]
    assert positions == [4, 7, 10]
    assert submission.cells[4].source == 'print("✓ double")', "the submission itself is left untouched"


# --- grading (each test runs one kernel) ----------------------------------------------------------


def test_solved_submission_scores_full_marks(course: Path) -> None:
    grades = _grade(solved(), course)
    assert _points(grades) == FULL_MARKS
    assert grades["double"][1] == "✓ double: all 1 tests passed."


def test_untouched_student_version_scores_zero(course: Path) -> None:
    grades = _grade(student_version(), course)
    assert grades == {name: (0, "not implemented yet") for name in FULL_MARKS}


def test_infinite_loop_times_out_only_that_exercise(course: Path) -> None:
    started = time.monotonic()
    endless = "def square(x):\n    while True:\n        pass"
    grades = _grade(solved(square=endless), course, cell_timeout=SHORT_TIMEOUT_S)
    assert time.monotonic() - started < 60
    assert grades["square"] == (0, f"timed out after {SHORT_TIMEOUT_S} s")
    assert _points(grades) == {**FULL_MARKS, "square": 0}


def test_loop_that_ignores_the_interrupt_is_killed_and_grading_goes_on(
    course: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(autograde, "INTERRUPT_GRACE_S", 3)
    # The interrupt lands in the inner loop, inside the try: it is swallowed.
    stubborn = """\
def double(x):
    while True:
        try:
            while True:
                pass
        except BaseException:
            pass"""
    started = time.monotonic()
    grades = _grade(solved(double=stubborn), course, cell_timeout=SHORT_TIMEOUT_S)
    assert time.monotonic() - started < 60
    assert grades["double"] == (
        0,
        f"timed out after {SHORT_TIMEOUT_S} s; the kernel ignored the interrupt and was killed",
    )
    assert _points(grades) == {**FULL_MARKS, "double": 0}


def test_kernel_crash_scores_that_exercise_zero_and_grading_goes_on(course: Path) -> None:
    grades = _grade(solved(double="def double(x):\n    import os\n    os._exit(1)"), course)
    assert grades["double"] == (0, "kernel died: the kernel process exited with code 1")
    assert _points(grades) == {**FULL_MARKS, "double": 0}


def test_a_crash_before_the_check_is_named_in_its_message(course: Path) -> None:
    grades = _grade(solved(double="import os\nos._exit(1)"), course)  # in the exercise cell itself
    assert grades["double"] == (
        0,
        "NameError: name 'double' is not defined; cell 3 (import os): kernel died: the kernel process exited with code 1",
    )
    assert _points(grades) == {**FULL_MARKS, "double": 0}


def test_endless_prints_are_capped_but_the_check_line_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(autograde, "MAX_PRINTED_CHARS", 10_000)
    nb = new_notebook(cells=[new_code_cell("for _ in range(1000):\n    print('x' * 99)\nprint('✓ done')")])
    execute_notebook(nb, tmp_path)
    printed = "".join(out.text for out in nb.cells[0].outputs if out.output_type == "stream")
    assert len(printed) <= 10_000 + len("✓ done\n")
    assert printed.endswith("x\n✓ done\n")


def test_notebook_time_limit_stops_grading_the_rest(course: Path) -> None:
    slow = "def double(x):\n    import time\n    time.sleep(60)\n    return 2 * x"
    started = time.monotonic()
    grades = _grade(solved(double=slow), course, cell_timeout=60, notebook_timeout=SHORT_TIMEOUT_S)
    assert time.monotonic() - started < 30
    assert grades["double"] == (0, f"timed out: the notebook time limit of {SHORT_TIMEOUT_S} s was reached")
    not_run = f"not run: notebook time limit ({SHORT_TIMEOUT_S} s) reached"
    assert grades["sum of a list"] == grades["square"] == (0, not_run)


@pytest.mark.parametrize("new_ids", [False, True], ids=["same ids", "ids rewritten"])
def test_tampered_check_cells_are_graded_by_the_original(course: Path, new_ids: bool) -> None:
    nb = solved(double="def double(x):\n    return x + 1", total="def total(xs):\n    return 0")
    nb.cells[3].source = 'print("✓ double: all 1 tests passed.")'  # the check call is gone
    nb.cells[6].source = "check_total(sum)"  # the call checks something else
    grades = _grade(_rewrite_ids(nb) if new_ids else nb, course)
    assert grades["double"] == (0, "double(3) returned 4; expected 6.")
    assert grades["sum of a list"] == (0, "total([1, 2, 3]) returned 0; expected 6.")
    assert grades["square"][0] == 1


@pytest.mark.parametrize("new_ids", [False, True], ids=["same ids", "ids rewritten"])
def test_deleted_check_cells_are_restored(course: Path, new_ids: bool) -> None:
    nb = solved(total="def total(xs):\n    return 0")
    del nb.cells[6], nb.cells[3]  # the checks of 'total' and 'double'
    grades = _grade(_rewrite_ids(nb) if new_ids else nb, course)
    assert grades["double"] == (2, "✓ double: all 1 tests passed.")
    assert grades["sum of a list"] == (0, "total([1, 2, 3]) returned 0; expected 6.")


def test_hidden_tests_run(course: Path) -> None:
    almost = "def total(xs):\n    return sum(xs) if xs else None"  # passes the visible check only
    assert "hidden test" not in student_version().cells[6].source
    grades = _grade(solved(total=almost), course)
    assert grades["sum of a list"] == (0, "hidden test: total([]) must be 0")
    assert _points(grades) == {**FULL_MARKS, "sum of a list": 0}


def test_unreadable_submission_scores_zero(course: Path) -> None:
    path = course.parents[1] / "bob" / NAME
    path.parent.mkdir()
    path.write_text("{not a notebook", encoding="utf-8")
    result = grade_submission(path, course)
    assert [grade.points for grade in result.grades] == [0, 0, 0]
    assert all(grade.message.startswith("could not read the notebook:") for grade in result.grades)


# --- the command line and its reports -------------------------------------------------------------


def test_cli_writes_csv_json_html_and_a_summary(
    course: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    submit(solved(), tmp_path, student="alice")
    hostile = "def double(x):\n    raise ValueError(\"<script>alert('x')</script>\")"
    submit(solved(double=hostile), tmp_path, student="mallory")
    code = main(["autograde", "alice", f"mallory/{NAME}", "--source", "course", "--out", "out/grades.csv"])
    assert code == 0
    table = capsys.readouterr().out
    assert f"alice/{NAME}" in table and "4/4" in table and "2/4" in table

    with open("out/grades.csv", newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["submission", "exercise", "points", "max_points", "message"]
    assert rows[1] == [f"alice/{NAME}", "double", "2", "2", "✓ double: all 1 tests passed."]
    assert rows[4] == [f"mallory/{NAME}", "double", "0", "2", "ValueError: <script>alert('x')</script>"]
    assert len(rows) == 1 + 2 * 3

    grades = json.loads(Path("out/grades.json").read_text(encoding="utf-8"))
    assert [(t["submission"], t["points"], t["max_points"]) for t in grades["totals"]] == [
        (f"alice/{NAME}", 4, 4),
        (f"mallory/{NAME}", 2, 4),
    ]
    assert grades["rows"][3]["message"] == rows[4][4]

    report = Path("out/feedback/mallory__tiny.html").read_text(encoding="utf-8")
    assert "<script>" not in report
    assert "ValueError: &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in report
    assert "Total: 2 / 4 points" in report and "✗" in report and "✓" in report
    assert Path("out/feedback/alice__tiny.html").is_file()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["nobody/tiny.ipynb"], "submission not found: nobody/tiny.ipynb"),
        (["empty"], "no notebook (*.ipynb) in folder empty"),
        (["alice/other.ipynb"], "no complete notebook for alice/other.ipynb: course/other.ipynb does not"),
        (["alice/other.ipynb", "--source", "nowhere"], "complete notebooks not found: nowhere"),
    ],
)
def test_cli_bad_input_exits_2_naming_it(
    course: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    arguments: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "alice").mkdir()
    nbformat.write(student_version(), tmp_path / "alice" / "other.ipynb")
    source = [] if "--source" in arguments else ["--source", "course"]
    assert main(["autograde", *arguments, *source]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "grades.csv").exists()


# --- notebook 05 ----------------------------------------------------------------------------------

COMPLETE_05 = NOTEBOOKS_DIR / "05_policy_gradient.ipynb"


def test_notebook_05_student_version_scores_zero() -> None:
    result = grade_submission(student_path(COMPLETE_05), COMPLETE_05)
    assert len(result.grades) == 4
    for grade in result.grades:
        assert grade.points == 0
        assert "is not implemented yet" in grade.message, grade


def test_notebook_05_solved_submission_scores_full_marks(tmp_path: Path) -> None:
    complete = read_notebook(COMPLETE_05)
    solutions = {cell.id: cell.source for cell in complete.cells if "### BEGIN SOLUTION" in cell.source}
    submission = read_notebook(student_path(COMPLETE_05))
    for cell in submission.cells:
        cell.source = solutions.get(cell.get("id"), cell.source)
    path = tmp_path / "alice" / COMPLETE_05.name
    path.parent.mkdir()
    nbformat.write(submission, path)
    result = grade_submission(path, COMPLETE_05)
    assert [(grade.points, grade.max_points) for grade in result.grades] == [(1, 1)] * 4, result.grades
