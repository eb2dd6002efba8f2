"""Build the student versions of the course notebooks from the complete (instructor) ones.

Conventions (nbgrader's syntax, so instructors may also use nbgrader):

- In a code cell, the solution of an exercise sits between a line ``### BEGIN SOLUTION`` and a
  line ``### END SOLUTION``; the markers may be indented (inside a function body) and a cell may
  hold several blocks. The student version replaces each block by ``# YOUR CODE HERE`` and
  ``raise NotImplementedError()`` at the indentation of the ``### BEGIN SOLUTION`` line.
- In a markdown cell the same markers surround a written answer, replaced by ``YOUR ANSWER HERE``.
- Lines between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS`` are dropped, markers
  included.
- Outputs and execution counts are cleared; cell ids, metadata and everything else are kept.

The build is deterministic: the same complete notebook always gives byte-identical student files,
so a test can compare the committed student versions with a fresh build.
"""

from __future__ import annotations

import copy
import io
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

__all__ = [
    "STUDENT_DIR_NAME",
    "build_student_versions",
    "check_calls",
    "find_check_cells",
    "find_exercise_cells",
    "make_student_version",
    "notebook_text",
    "read_notebook",
    "solution_blocks",
    "student_path",
    "student_text",
]

STUDENT_DIR_NAME = "student"

# A marker is a line of its own; anything after it on the line (a note to the instructor) is
# allowed, because a marker that failed to match would leak the solution to students.
_MARKER = re.compile(r"^(?P<indent>[ \t]*)###[ \t]*(?P<kind>BEGIN|END)[ \t]+(?P<what>SOLUTION|HIDDEN TESTS)\b")
_CHECK_CALL = re.compile(r"^\s*(?P<check>check_\w+)\(")

# "Open in Colab" links to a complete notebook (…/blob/<branch>/notebooks/NAME.ipynb) are pointed
# at its student version, so that a student who follows a badge gets the exercises.
_COLAB_LINK = re.compile(r"(colab\.research\.google\.com/github/[^)\s]*?/notebooks/)(?!student/)(\w+\.ipynb)")

_CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
_ANSWER_STUB = ("YOUR ANSWER HERE",)

# Cell metadata written by executing the notebook (timings), not by its author: keeping it would
# make the student version change every time the complete notebook is re-executed.
_EXECUTION_CELL_METADATA = ("execution",)
# Notebook metadata holding the state of widgets (e.g. tqdm bars) whose outputs are cleared.
_EXECUTION_NOTEBOOK_METADATA = ("widgets",)


@dataclass(frozen=True)
class Block:
    """One marked region of a cell's source: lines ``begin`` to ``end`` (the markers), 0-based."""

    what: str  # "SOLUTION" or "HIDDEN TESTS"
    begin: int
    end: int
    indent: str  # indentation of the BEGIN marker


def _where(source: str | None, cell_index: int) -> str:
    """Where an error is, for messages: ``path, cell 3`` or ``cell 3``."""
    return f"{source}, cell {cell_index}" if source else f"cell {cell_index}"


def _source_text(cell: nbformat.NotebookNode) -> str:
    """A cell's source as one string (on disk it may be a list of lines)."""
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def solution_blocks(text: str, *, source: str | None = None, cell_index: int = 0) -> list[Block]:
    """The solution and hidden-test blocks of one cell's source, in order.

    Raises ValueError (naming ``source`` and ``cell_index``) for a BEGIN without its END, an END
    without its BEGIN, or a block opened inside another.
    """
    blocks: list[Block] = []
    open_block: tuple[str, int, str] | None = None  # (what, line, indent)
    lines = text.split("\n")
    for number, line in enumerate(lines):
        match = _MARKER.match(line)
        if match is None:
            continue
        what, kind = match["what"], match["kind"]
        if kind == "BEGIN":
            if open_block is not None:
                raise ValueError(
                    f"{_where(source, cell_index)}: '### BEGIN {what}' on line {number + 1} is nested "
                    f"inside '### BEGIN {open_block[0]}' from line {open_block[1] + 1}; "
                    f"close it with '### END {open_block[0]}' first"
                )
            open_block = (what, number, match["indent"])
        else:
            if open_block is None or open_block[0] != what:
                raise ValueError(
                    f"{_where(source, cell_index)}: '### END {what}' on line {number + 1} has no "
                    f"matching '### BEGIN {what}' before it"
                )
            blocks.append(Block(what=what, begin=open_block[1], end=number, indent=open_block[2]))
            open_block = None
    if open_block is not None:
        raise ValueError(
            f"{_where(source, cell_index)}: '### BEGIN {open_block[0]}' on line {open_block[1] + 1} "
            f"has no matching '### END {open_block[0]}'"
        )
    return blocks


def _student_source(text: str, stub: tuple[str, ...], *, source: str | None, cell_index: int) -> str:
    """A cell's source with solutions replaced by ``stub`` and hidden tests removed."""
    lines = text.split("\n")
    out: list[str] = []
    position = 0
    for block in solution_blocks(text, source=source, cell_index=cell_index):
        out.extend(lines[position : block.begin])
        if block.what == "SOLUTION":
            out.extend(block.indent + line for line in stub)
        position = block.end + 1
    # split("\n") keeps a final "" for a trailing newline, so the join restores it exactly.
    out.extend(lines[position:])
    return "\n".join(out)


def make_student_version(nb: nbformat.NotebookNode, source: str | None = None) -> nbformat.NotebookNode:
    """Return the student version of a complete notebook; ``nb`` itself is left untouched.

    Besides replacing solutions and dropping hidden tests, it points "Open in Colab" links to
    complete notebooks at their student versions.

    ``source`` (the notebook's path, when known) only serves error messages: unbalanced or nested
    markers raise ValueError naming it and the cell index.
    """
    student = nbformat.from_dict(copy.deepcopy(dict(nb)))
    for key in _EXECUTION_NOTEBOOK_METADATA:
        student.metadata.pop(key, None)
    for index, cell in enumerate(student.cells):
        stub = _CODE_STUB if cell.cell_type == "code" else _ANSWER_STUB
        cell.source = _student_source(_source_text(cell), stub, source=source, cell_index=index)
        if cell.cell_type == "markdown":
            cell.source = _COLAB_LINK.sub(r"\1student/\2", cell.source)
        for key in _EXECUTION_CELL_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return student


def check_calls(text: str) -> list[str]:
    """The check functions a cell's source calls on lines of their own (``check_<name>(``), in order."""
    return [match["check"] for match in map(_CHECK_CALL.match, text.split("\n")) if match]


def find_check_cells(nb: nbformat.NotebookNode) -> list[int]:
    """Indices of the code cells that call a check function (a line ``check_<name>(``)."""
    return [
        index
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and check_calls(_source_text(cell))
    ]


def find_exercise_cells(nb: nbformat.NotebookNode) -> list[int]:
    """Indices of the code cells holding at least one solution block."""
    return [
        index
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        and any(block.what == "SOLUTION" for block in solution_blocks(_source_text(cell), cell_index=index))
    ]


def student_path(notebook_path: str | Path) -> Path:
    """Where the student version of a complete notebook lives: ``notebooks/student/<name>``."""
    notebook_path = Path(notebook_path)
    return notebook_path.parent / STUDENT_DIR_NAME / notebook_path.name


def read_notebook(path: str | Path) -> nbformat.NotebookNode:
    """Read a v4 notebook exactly as stored.

    No conversion on purpose: upgrading an nbformat 4.4 notebook gives its cells random ids,
    which would make the student versions differ at every build.
    """
    nb = nbformat.read(Path(path), as_version=nbformat.NO_CONVERT)
    if nb.get("nbformat") != 4:
        raise ValueError(f"{path}: nbformat {nb.get('nbformat')} is not supported; save it as nbformat 4")
    return nb


def notebook_text(nb: nbformat.NotebookNode) -> str:
    """The exact text ``nbformat.write`` gives for ``nb`` (sorted keys, final newline)."""
    buffer = io.StringIO()
    nbformat.write(nb, buffer)
    return buffer.getvalue()


def student_text(notebook_path: str | Path) -> str:
    """The text of the student version of the complete notebook at ``notebook_path``."""
    return notebook_text(make_student_version(read_notebook(notebook_path), source=str(notebook_path)))


def _write_text(path: Path, text: str) -> None:
    """Write UTF-8 with "\\n" line ends on every platform (text mode would give "\\r\\n" on Windows)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))


def build_student_versions(notebooks_dir: str | Path = "notebooks", check: bool = False) -> list[Path]:
    """Write the student version of every ``notebooks_dir/*.ipynb`` into ``notebooks_dir/student/``.

    Student files whose complete notebook no longer exists are removed. Returns the student files
    that changed (created, rewritten or removed), in sorted order. With ``check=True`` nothing is
    written or removed, and the returned list holds the student files that are missing, out of
    date or orphaned, so an empty list means everything is up to date.
    """
    notebooks_dir = Path(notebooks_dir)
    if not notebooks_dir.is_dir():
        raise FileNotFoundError(f"notebooks directory not found: {notebooks_dir}")
    complete = sorted(notebooks_dir.glob("*.ipynb"))
    # Render everything first, so a malformed notebook stops the build before any file changes.
    wanted = {student_path(path): student_text(path) for path in complete}

    changed: list[Path] = []
    for path, text in wanted.items():
        if not path.is_file() or path.read_bytes() != text.encode("utf-8"):
            changed.append(path)
            if not check:
                _write_text(path, text)
    student_dir = notebooks_dir / STUDENT_DIR_NAME
    for orphan in sorted(student_dir.glob("*.ipynb")):
        if orphan not in wanted:
            changed.append(orphan)
            if not check:
                orphan.unlink()
    return sorted(changed)
