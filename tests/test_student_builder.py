"""Unit tests of the student-version builder on small synthetic notebooks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from course_utils.instructor.student import (
    build_student_versions,
    find_check_cells,
    find_exercise_cells,
    make_student_version,
    notebook_text,
    student_path,
)

EXERCISE = """\
def total(xs: list[float]) -> float:
    \"\"\"Sum of xs.\"\"\"
    ### BEGIN SOLUTION
    result = 0.0
    for x in xs:
        result += x
    ### END SOLUTION
    return result"""

CHECK = "check_total(total)"


def _notebook() -> nbformat.NotebookNode:
    """A small complete notebook: an exercise, its check, a written answer, an executed cell."""
    executed = new_code_cell(
        "print('hi')", execution_count=3, outputs=[new_output("stream", name="stdout", text="hi\n")]
    )
    executed.metadata["execution"] = {"iopub.execute_input": "2024-01-01T00:00:00"}
    nb = new_notebook(
        cells=[
            new_markdown_cell("# Title"),
            new_code_cell(EXERCISE, metadata={"tags": ["exercise"]}),
            new_code_cell(
                CHECK + "\n### BEGIN HIDDEN TESTS\nassert total([1, 2]) == 3\n### END HIDDEN TESTS",
                execution_count=2,
                outputs=[new_output("stream", name="stdout", text="✓ total\n")],
            ),
            new_markdown_cell("Why?\n\n### BEGIN SOLUTION\nBecause sums add up.\n### END SOLUTION\n"),
            executed,
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    return nb


def _write(path: Path, nb: nbformat.NotebookNode) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def _run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "course_utils.instructor", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


# --- make_student_version -------------------------------------------------------------------------


def test_solution_replaced_with_stub_at_marker_indentation() -> None:
    student = make_student_version(_notebook())
    assert student.cells[1].source == (
        "def total(xs: list[float]) -> float:\n"
        '    """Sum of xs."""\n'
        "    # YOUR CODE HERE\n"
        "    raise NotImplementedError()\n"
        "    return result"
    )


def test_several_blocks_in_one_cell() -> None:
    source = (
        "### BEGIN SOLUTION\na = 1\n### END SOLUTION\nb = 2\n"
        "if b:\n\t### BEGIN SOLUTION\n\tc = 3\n\t### END SOLUTION\n"
    )
    student = make_student_version(new_notebook(cells=[new_code_cell(source)]))
    assert student.cells[0].source == (
        "# YOUR CODE HERE\nraise NotImplementedError()\nb = 2\nif b:\n"
        "\t# YOUR CODE HERE\n\traise NotImplementedError()\n"
    )


def test_markdown_answer_replaced() -> None:
    student = make_student_version(_notebook())
    assert student.cells[3].source == "Why?\n\nYOUR ANSWER HERE\n"


def test_colab_links_point_at_the_student_version() -> None:
    base = "https://colab.research.google.com/github/org/repo/blob/main/notebooks/"
    badge = f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({base}05_pg.ipynb)"
    nb = new_notebook(cells=[new_markdown_cell(f"# Title\n\n{badge}\n\n[next](06_ac.ipynb)")])
    student = make_student_version(nb)
    assert f"]({base}student/05_pg.ipynb)" in student.cells[0].source
    assert "[next](06_ac.ipynb)" in student.cells[0].source  # relative links stay as they are
    # Idempotent: a link that already points at a student version is left alone.
    assert make_student_version(student).cells[0].source == student.cells[0].source


def test_hidden_tests_removed_with_markers() -> None:
    student = make_student_version(_notebook())
    assert student.cells[2].source == CHECK


def test_outputs_and_execution_info_cleared() -> None:
    student = make_student_version(_notebook())
    for cell in student.cells:
        if cell.cell_type == "code":
            assert cell.outputs == []
            assert cell.execution_count is None
            assert "execution" not in cell.metadata


def test_ids_tags_and_notebook_metadata_kept() -> None:
    nb = _notebook()
    student = make_student_version(nb)
    assert [cell.id for cell in student.cells] == [cell.id for cell in nb.cells]
    assert student.cells[1].metadata["tags"] == ["exercise"]
    assert student.metadata == nb.metadata
    assert [cell.cell_type for cell in student.cells] == [cell.cell_type for cell in nb.cells]


def test_input_untouched() -> None:
    nb = _notebook()
    before = notebook_text(nb)
    make_student_version(nb)
    assert notebook_text(nb) == before


def test_cell_without_markers_unchanged() -> None:
    student = make_student_version(_notebook())
    assert student.cells[0].source == "# Title"
    assert student.cells[4].source == "print('hi')"


@pytest.mark.parametrize(
    "source, fragment",
    [
        ("### BEGIN SOLUTION\nx = 1\n", "no matching '### END SOLUTION'"),
        ("x = 1\n### END SOLUTION\n", "no matching '### BEGIN SOLUTION'"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n### END SOLUTION", "nested"),
        ("### BEGIN SOLUTION\n### BEGIN HIDDEN TESTS\n### END HIDDEN TESTS\n### END SOLUTION", "nested"),
        ("### BEGIN SOLUTION\nx = 1\n### END HIDDEN TESTS\n", "no matching '### BEGIN HIDDEN TESTS'"),
    ],
)
def test_unbalanced_or_nested_markers_raise(source: str, fragment: str) -> None:
    nb = new_notebook(cells=[new_markdown_cell("intro"), new_code_cell("ok = 1"), new_code_cell(source)])
    with pytest.raises(ValueError, match="cell 2") as error:
        make_student_version(nb, source="notebooks/05_pg.ipynb")
    assert "notebooks/05_pg.ipynb" in str(error.value)
    assert fragment in str(error.value)


def test_unbalanced_markers_in_markdown_raise() -> None:
    nb = new_notebook(cells=[new_markdown_cell("### BEGIN SOLUTION\nanswer")])
    with pytest.raises(ValueError, match="cell 0"):
        make_student_version(nb)


def test_find_exercise_and_check_cells() -> None:
    nb = _notebook()
    assert find_exercise_cells(nb) == [1]  # the markdown answer is not a code exercise
    assert find_check_cells(nb) == [2]
    # A mention of check_ that is not a call at the start of a line is not a check cell.
    other = new_notebook(cells=[new_code_cell("x = 1  # check_total(total) later"), new_code_cell("  check_a(1)")])
    assert find_check_cells(other) == [1]


def test_student_path() -> None:
    assert student_path("notebooks/05_x.ipynb") == Path("notebooks/student/05_x.ipynb")


# --- build_student_versions ------------------------------------------------------------------------


def test_build_is_deterministic(tmp_path: Path) -> None:
    complete = _write(tmp_path / "05_x.ipynb", _notebook())
    assert build_student_versions(tmp_path) == [student_path(complete)]
    first = student_path(complete).read_bytes()
    student_path(complete).unlink()
    build_student_versions(tmp_path)
    assert student_path(complete).read_bytes() == first
    # A second build finds nothing to do.
    assert build_student_versions(tmp_path) == []
    assert b"BEGIN SOLUTION" not in first and b"result = 0.0" not in first


def test_build_keeps_nbformat_4_4_without_ids_deterministic(tmp_path: Path) -> None:
    """Upgrading a 4.4 notebook would add random cell ids; the builder must not."""
    nb = _notebook()
    nb.nbformat_minor = 4
    for cell in nb.cells:
        del cell["id"]
    complete = tmp_path / "01_old.ipynb"
    complete.write_text(nbformat.writes(nb), encoding="utf-8")
    build_student_versions(tmp_path)
    first = student_path(complete).read_bytes()
    student_path(complete).unlink()
    build_student_versions(tmp_path)
    assert student_path(complete).read_bytes() == first
    assert b'"id"' not in first


def test_check_mode_reports_and_writes_nothing(tmp_path: Path) -> None:
    a = _write(tmp_path / "01_a.ipynb", _notebook())
    b = _write(tmp_path / "02_b.ipynb", _notebook())
    build_student_versions(tmp_path)
    assert build_student_versions(tmp_path, check=True) == []

    # Stale: the complete notebook changed. Missing: a new notebook. Orphan: its notebook is gone.
    changed = _notebook()
    changed.cells[0].source = "# New title"
    _write(a, changed)
    c = _write(tmp_path / "03_c.ipynb", _notebook())
    orphan = _write(tmp_path / "student" / "99_gone.ipynb", _notebook())
    snapshot = {path: path.read_bytes() for path in (tmp_path / "student").iterdir()}

    reported = build_student_versions(tmp_path, check=True)
    assert reported == sorted([student_path(a), student_path(c), orphan])
    assert {path: path.read_bytes() for path in (tmp_path / "student").iterdir()} == snapshot

    # A real build fixes all three and leaves the up-to-date one alone.
    assert build_student_versions(tmp_path) == reported
    assert not orphan.exists()
    assert student_path(c).is_file()
    assert sorted(p.name for p in (tmp_path / "student").iterdir()) == ["01_a.ipynb", "02_b.ipynb", "03_c.ipynb"]
    assert build_student_versions(tmp_path, check=True) == []
    assert student_path(b).is_file()


def test_build_does_not_recurse_or_touch_other_files(tmp_path: Path) -> None:
    _write(tmp_path / "01_a.ipynb", _notebook())
    (tmp_path / "student").mkdir()
    readme = tmp_path / "student" / "README.md"
    readme.write_text("generated folder")
    build_student_versions(tmp_path)
    assert readme.read_text() == "generated folder"
    assert not (tmp_path / "student" / "student").exists()


def test_malformed_notebook_stops_build_before_writing(tmp_path: Path) -> None:
    _write(tmp_path / "01_a.ipynb", _notebook())
    _write(tmp_path / "02_bad.ipynb", new_notebook(cells=[new_code_cell("### BEGIN SOLUTION\nx = 1")]))
    with pytest.raises(ValueError, match=r"02_bad\.ipynb, cell 0"):
        build_student_versions(tmp_path)
    assert not (tmp_path / "student" / "01_a.ipynb").exists()


# --- command line ----------------------------------------------------------------------------------


def test_cli_exit_codes(tmp_path: Path) -> None:
    notebooks = tmp_path / "nbs"
    _write(notebooks / "05_x.ipynb", _notebook())

    stale = _run_cli("build-student", "--notebooks", str(notebooks), "--check", cwd=tmp_path)
    assert stale.returncode == 1, stale.stderr
    assert "05_x.ipynb" in stale.stdout and "missing" in stale.stdout
    assert "python -m course_utils.instructor build-student --notebooks" in stale.stdout
    assert not (notebooks / "student").exists()

    built = _run_cli("build-student", "--notebooks", str(notebooks), cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    assert (notebooks / "student" / "05_x.ipynb").is_file()

    fresh = _run_cli("build-student", "--notebooks", str(notebooks), "--check", cwd=tmp_path)
    assert fresh.returncode == 0, fresh.stderr
    assert "up to date" in fresh.stdout


def test_cli_default_dir_and_bad_input(tmp_path: Path) -> None:
    _write(tmp_path / "notebooks" / "01_bad.ipynb", new_notebook(cells=[new_code_cell("### END SOLUTION")]))
    bad = _run_cli("build-student", cwd=tmp_path)
    assert bad.returncode == 2
    assert "01_bad.ipynb, cell 0" in bad.stderr

    assert _run_cli("build-student", "--notebooks", "does-not-exist", cwd=tmp_path).returncode == 2
    assert _run_cli(cwd=tmp_path).returncode == 2  # no command: argparse usage error
