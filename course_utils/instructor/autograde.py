"""Grade submitted student notebooks: ``python -m course_utils.instructor autograde``.

What is graded
    An *exercise* is a check cell of the complete notebook: a code cell with a line
    ``check_<name>(...)`` (see :func:`course_utils.instructor.student.find_check_cells`). The cell's
    metadata may say how it is graded::

        "grading": {"exercise": "reward_to_go", "points": 2}

    ``exercise`` defaults to ``<name>`` of the cell's first ``check_<name>(`` call and ``points`` to
    1. An exercise earns all its points when its check cell runs without error and prints a line
    starting with ✓, and 0 otherwise; the grade's message says why (the check's message, "not
    implemented yet", the error, "timed out after N s", "kernel died: ...").

How a submission is graded
    1. Its check cells are replaced by those of the complete notebook, hidden tests included
       (``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS``, dropped from the student version),
       so a check a student edited or deleted grades as written. A check cell is found by its cell
       id, else by its check call (Colab may rewrite ids); a deleted one is put back after the
       cell that precedes it in the complete notebook. Cells the student added stay. Each restored
       check cell first imports its checks afresh from the package (:data:`FRESH_CHECKS`), so a
       check the student redefined, or a check helper they patched, is not the one that runs.
    2. The notebook runs in a fresh ``python3`` kernel, in quick mode (``COURSE_QUICK=1``), one
       cell at a time, in a temporary folder of its own with a clean environment, confined to that
       folder and to a memory limit (:mod:`course_utils.instructor.sandbox`). An error in a cell does
       not stop the next ones; a cell past its time limit is interrupted; a kernel that dies (or
       ignores the interrupt and is killed) is replaced by a fresh one and execution goes on with
       the next cell. Past the notebook's time limit no further cell runs.
    3. Each exercise is scored from its check cell: passed when the cell ran without error and
       printed a line starting with ✓.

Student code runs only in the kernel, never in the grading process.
"""

from __future__ import annotations

import copy
import difflib
import logging
import math
import subprocess
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

from course_utils.checks import __all__ as PACKAGE_CHECKS
from course_utils.instructor.sandbox import DEFAULT_MEMORY_LIMIT, jailed_kernel_manager, kernel_env, workspace
from course_utils.instructor.student import check_calls, find_check_cells, read_notebook

__all__ = [
    "CELL_TIMEOUT_S",
    "DEFAULT_SOURCE",
    "FRESH_CHECKS",
    "NOTEBOOK_TIMEOUT_S",
    "Execution",
    "Exercise",
    "ExerciseGrade",
    "SubmissionGrade",
    "complete_notebook_for",
    "execute_notebook",
    "exercises_of",
    "find_submissions",
    "grade_submission",
    "restore_check_cells",
    "score",
]

# The repository's complete notebooks, wherever the command is run from.
DEFAULT_SOURCE = Path(__file__).resolve().parents[2] / "notebooks"
CELL_TIMEOUT_S = 120
NOTEBOOK_TIMEOUT_S = 900
# How long a kernel may take to stop after the interrupt before it is killed: a loop with a bare
# ``except:`` swallows the KeyboardInterrupt and would otherwise run forever.
INTERRUPT_GRACE_S = 10
# A message is one line of a table; a student's exception can be megabytes long.
MAX_MESSAGE_CHARS = 1000
# Printed text kept per cell: a print in an endless loop sends hundreds of MB within a time limit.
MAX_PRINTED_CHARS = 1_000_000

# What a restored check cell runs before its checks: it drops every module of the checks package
# from Python's cache, so that the import after it loads the checks from disk, whatever the
# submission redefined or patched.
FRESH_CHECKS = (
    "# Added by the grader: the checks, imported afresh from the package.\n"
    "import sys as _grader_sys\n"
    "for _grader_module in [name for name in _grader_sys.modules\n"
    "                       if name.startswith('course_utils.checks')]:\n"
    "    del _grader_sys.modules[_grader_module]\n"
    "from course_utils.checks import {checks}\n"
)

# nbclient logs every timeout and dead kernel as an error; the grades report them instead.
_NBCLIENT_LOG = logging.getLogger(f"{__name__}.nbclient")
_NBCLIENT_LOG.setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class Exercise:
    """One graded exercise: a check cell of the complete notebook."""

    name: str
    points: float
    index: int  # of the check cell in the complete notebook
    cell: nbformat.NotebookNode  # the check cell, hidden tests included


@dataclass(frozen=True)
class ExerciseGrade:
    """The grade of one exercise of one submission."""

    exercise: str
    points: float
    max_points: float
    passed: bool
    message: str


@dataclass(frozen=True)
class SubmissionGrade:
    """The grades of one submitted notebook."""

    submission: str  # as reports show it
    notebook: str  # the complete notebook it was graded against, as reports show it
    grades: list[ExerciseGrade]
    seconds: float
    position: int = 0  # in the whole class's order of submissions, which shards and merges keep

    @property
    def points(self) -> float:
        return sum(grade.points for grade in self.grades)

    @property
    def max_points(self) -> float:
        return sum(grade.max_points for grade in self.grades)


@dataclass
class Execution:
    """What happened while a notebook ran, beyond what its cells' outputs show."""

    notebook_timeout: float
    incidents: dict[int, str] = field(default_factory=dict)  # cell index -> timeout or kernel death
    failed: set[int] = field(default_factory=set)  # cells whose execution the kernel reported failed
    not_run_from: int | None = None  # the first cell the notebook time limit left unrun


# --- exercises ------------------------------------------------------------------------------------


def exercises_of(complete: nbformat.NotebookNode, source: str = "notebook") -> list[Exercise]:
    """The exercises of a complete notebook, in order; ``source`` names it in errors.

    Raises ValueError for a notebook without check cells, ``grading`` metadata that is not
    ``{"exercise": <non-empty str>, "points": <number ≥ 0>}`` (both optional), or two exercises with
    the same name.
    """
    exercises: list[Exercise] = []
    for index in find_check_cells(complete):
        cell = complete.cells[index]
        where = f"{source}, cell {index}"
        grading = cell.metadata.get("grading", {})
        if not isinstance(grading, dict):
            raise ValueError(f"{where}: metadata 'grading' must be an object, not {grading!r}")
        name = grading.get("exercise", check_calls(cell.source)[0].removeprefix("check_"))
        points = grading.get("points", 1)
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"{where}: metadata grading.exercise must be a non-empty string, not {name!r}")
        if isinstance(points, bool) or not isinstance(points, (int, float)) or not 0 <= points < math.inf:
            raise ValueError(f"{where}: metadata grading.points must be a number ≥ 0, not {points!r}")
        exercises.append(Exercise(name=name, points=points, index=index, cell=cell))
    if not exercises:
        raise ValueError(f"{source}: no check cell (a code cell with a line `check_<name>(`); nothing to grade")
    seen: dict[str, int] = {}
    for exercise in exercises:
        if exercise.name in seen:
            raise ValueError(
                f"{source}: cells {seen[exercise.name]} and {exercise.index} are both exercise "
                f"'{exercise.name}'; give one another name with metadata grading.exercise"
            )
        seen[exercise.name] = exercise.index
    return exercises


# --- restoring the check cells --------------------------------------------------------------------


def _pristine(cell: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of a complete notebook's check cell, ready to run: no outputs, no execution timings,
    and the package's checks it calls imported afresh at its top (:data:`FRESH_CHECKS`)."""
    fresh = copy.deepcopy(cell)
    fresh.outputs, fresh.execution_count = [], None
    fresh.metadata.pop("execution", None)
    checks = [name for name in dict.fromkeys(check_calls(cell.source)) if name in PACKAGE_CHECKS]
    if checks:
        fresh.source = FRESH_CHECKS.format(checks=", ".join(checks)) + fresh.source
    return fresh


def _first_line(cell: nbformat.NotebookNode) -> str:
    return cell.source.strip().split("\n", 1)[0]


def _find_check_cell(cells: list[nbformat.NotebookNode], exercise: Exercise, taken: set[int]) -> int | None:
    """The submission's copy of an exercise's check cell: same id, else a cell with the same check call.

    Among several cells with that call (a student may copy it into their own cells), the one most
    like the original.
    """
    cell_id = exercise.cell.get("id")
    for index, cell in enumerate(cells):
        if cell_id and cell.get("id") == cell_id and index not in taken:
            return index
    call = check_calls(exercise.cell.source)[0]
    candidates = [
        index
        for index, cell in enumerate(cells)
        if index not in taken and cell.cell_type == "code" and call in check_calls(cell.source)
    ]
    return max(
        candidates,
        key=lambda index: difflib.SequenceMatcher(None, cells[index].source, exercise.cell.source).ratio(),
        default=None,
    )


def _locate(cells: list[nbformat.NotebookNode], target: nbformat.NotebookNode) -> int | None:
    """The submission's copy of a complete notebook's cell: same id, else same type and first line.

    The first line survives the student version and the student's edits of an exercise cell (its
    ``def`` line) and of every cell they left alone.
    """
    for index, cell in enumerate(cells):
        if target.get("id") and cell.get("id") == target.get("id"):
            return index
    first_line = _first_line(target)
    for index, cell in enumerate(cells):
        if first_line and cell.cell_type == target.cell_type and _first_line(cell) == first_line:
            return index
    return None


def _insertion_point(
    complete: nbformat.NotebookNode,
    cells: list[nbformat.NotebookNode],
    exercise: Exercise,
    placed: dict[int, int],
) -> int:
    """Where a deleted check cell goes back: the submission index to insert it before.

    That is after the submission's copy of the nearest complete cell before it; ``placed`` gives
    the insertion point right after each earlier check cell. With nothing recognisable before it,
    the cell goes at the end, after all the student's code.
    """
    for index in range(exercise.index - 1, -1, -1):
        if index in placed:
            return placed[index]
        found = _locate(cells, complete.cells[index])
        if found is not None:
            return found + 1
    return len(cells)


def restore_check_cells(
    submission: nbformat.NotebookNode, complete: nbformat.NotebookNode, exercises: list[Exercise]
) -> tuple[nbformat.NotebookNode, list[int]]:
    """A copy of ``submission`` with the complete notebook's check cells, and where each now is.

    Returns the notebook to grade and, for each exercise, the index of its check cell in it.
    """
    cells = submission.cells
    replaced: dict[int, Exercise] = {}  # submission index -> the exercise whose check cell it was
    inserted: dict[int, list[Exercise]] = defaultdict(list)  # submission index -> checks to put before it
    placed: dict[int, int] = {}  # complete index of a check cell -> the insertion point after it
    for exercise in exercises:
        index = _find_check_cell(cells, exercise, taken=set(replaced))
        if index is None:
            index = _insertion_point(complete, cells, exercise, placed)
            inserted[index].append(exercise)
            placed[exercise.index] = index
        else:
            replaced[index] = exercise
            placed[exercise.index] = index + 1

    graded = nbformat.from_dict({key: value for key, value in submission.items() if key != "cells"})
    graded = copy.deepcopy(graded)  # its metadata too: the submission stays untouched
    graded.cells = []
    positions: dict[str, int] = {}

    def add_check(exercise: Exercise) -> None:
        positions[exercise.name] = len(graded.cells)
        graded.cells.append(_pristine(exercise.cell))

    for index in range(len(cells) + 1):
        for exercise in inserted.get(index, []):
            add_check(exercise)
        if index in replaced:
            add_check(replaced[index])
        elif index < len(cells):
            graded.cells.append(copy.deepcopy(cells[index]))
    return graded, [positions[exercise.name] for exercise in exercises]


# --- executing ------------------------------------------------------------------------------------


class _Watchdog:
    """Kills the kernel process when a cell runs ``seconds`` long: the last resort, when the
    kernel ignored nbclient's interrupt."""

    def __init__(self, process: subprocess.Popen[bytes] | None, seconds: float) -> None:
        self.fired = False
        self._process = process
        self._timer = threading.Timer(seconds, self._kill)
        self._timer.daemon = True

    def _kill(self) -> None:
        if self._process is not None:
            self.fired = True
            self._process.kill()

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._timer.cancel()


class _GradingClient(NotebookClient):
    """A NotebookClient that keeps at most MAX_PRINTED_CHARS of each cell's printed text.

    Past that, only the lines grading reads (those starting with ✓) are kept from a cell's
    prints; errors and other outputs are kept whole.
    """

    def __init__(self, nb: nbformat.NotebookNode, **kwargs: object) -> None:
        super().__init__(nb, **kwargs)
        self._printed: dict[int, int] = defaultdict(int)  # cell index -> characters printed

    def output(
        self, outs: list[nbformat.NotebookNode], msg: dict, display_id: str | None, cell_index: int
    ) -> nbformat.NotebookNode | None:
        if msg["msg_type"] == "stream":
            text = msg["content"]["text"]
            room = max(0, MAX_PRINTED_CHARS - self._printed[cell_index])
            self._printed[cell_index] += len(text)
            if len(text) > room:  # one message may hold all of a cell's prints
                cut = text.rfind("\n", 0, room) + 1  # at a line's end, so kept ✓ lines start lines
                ticks = (line for line in text[cut:].splitlines(keepends=True) if line.startswith("✓"))
                text = text[:cut] + "".join(ticks)
                if not text:
                    return None
                msg = {**msg, "content": {**msg["content"], "text": text}}
        return super().output(outs, msg, display_id, cell_index)


def _death_cause(process: subprocess.Popen[bytes] | None) -> str:
    """Why the kernel died, as far as its exit status tells."""
    code = process.poll() if process is not None else None
    if code is None:
        return "the kernel stopped responding"
    if code < 0:
        hint = " (out of memory?)" if code == -9 else ""  # SIGKILL, as the system's OOM killer sends
        return f"the kernel process was killed by signal {-code}{hint}"
    return f"the kernel process exited with code {code}"


def _execute_cells(
    client: NotebookClient, start: int, deadline: float, cell_timeout: float, execution: Execution
) -> int:
    """Run the notebook's cells from ``start`` in the client's kernel; the cell to resume at.

    Returns ``len(cells)`` when done, the cell after one that killed the kernel, or the first cell
    the notebook time limit leaves unrun.
    """
    # The local kernel process, to kill it if it hangs (other provisioners have none: no watchdog).
    process = getattr(client.km.provisioner, "process", None)
    cells = client.nb.cells
    for index in range(start, len(cells)):
        cell = cells[index]
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return index
        limit = min(cell_timeout, remaining)
        timed_out = (
            f"timed out after {cell_timeout:g} s"
            if limit == cell_timeout
            else f"timed out: the notebook time limit of {execution.notebook_timeout:g} s was reached"
        )
        client.timeout = max(1, math.ceil(limit))  # nbclient's timeout is whole seconds
        started = time.monotonic()
        with _Watchdog(process, limit + INTERRUPT_GRACE_S) as watchdog:
            try:
                client.execute_cell(cell, index)
            except DeadKernelError:
                execution.incidents[index] = (
                    f"{timed_out}; the kernel ignored the interrupt and was killed"
                    if watchdog.fired
                    else f"kernel died: {_death_cause(process)}"
                )
                return index + 1
        if time.monotonic() - started >= limit:
            execution.incidents[index] = timed_out
    return len(cells)


def execute_notebook(
    nb: nbformat.NotebookNode,
    folder: Path,
    *,
    cell_timeout: float = CELL_TIMEOUT_S,
    notebook_timeout: float = NOTEBOOK_TIMEOUT_S,
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
) -> Execution:
    """Execute ``nb`` in place, cell by cell, in fresh ``python3`` kernels working in ``folder``.

    Each kernel has ``folder`` as its working folder and HOME, the environment of
    :func:`~course_utils.instructor.sandbox.kernel_env`, may write only inside ``folder`` (where the
    system allows: see :mod:`course_utils.instructor.jail`) and use at most ``memory_limit`` bytes
    (None: no limit). Errors stay in the cells' outputs; timeouts, kernel deaths, failed cells and
    the cells the notebook time limit left unrun are in the returned :class:`Execution`.
    """
    execution = Execution(notebook_timeout=notebook_timeout)
    client = _GradingClient(
        nb,
        kernel_name="python3",  # whatever kernel the student's notebook names
        kernel_manager_class=jailed_kernel_manager(folder, memory_limit),
        allow_errors=True,
        interrupt_on_timeout=True,
        shutdown_kernel="immediate",  # nothing in it is worth a graceful shutdown's wait
        resources={"metadata": {"path": str(folder)}},
        # Errors are recorded from the kernel's reply, not only from the error outputs: a submission
        # can hide the outputs (IPython's custom exception handlers), not the reply's status.
        on_cell_error=lambda cell, cell_index, execute_reply: execution.failed.add(cell_index),
        log=_NBCLIENT_LOG,
    )
    deadline = time.monotonic() + notebook_timeout
    next_cell = 0
    while next_cell < len(nb.cells) and time.monotonic() < deadline:
        # A fresh kernel, shut down on leaving. Its own output (warnings, C libraries' prints) would
        # interleave with the progress lines; what the cells print reaches their outputs anyway.
        env = kernel_env(folder)
        with client.setup_kernel(env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
            next_cell = _execute_cells(client, next_cell, deadline, cell_timeout, execution)
    if next_cell < len(nb.cells):
        execution.not_run_from = next_cell
    return execution


# --- scoring --------------------------------------------------------------------------------------


def _stdout(cell: nbformat.NotebookNode) -> str:
    outputs = cell.get("outputs", [])
    return "".join(out.text for out in outputs if out.output_type == "stream" and out.name == "stdout")


def _error_message(error: nbformat.NotebookNode) -> str:
    """A failed check's message: the check's own words, or the error."""
    if error.ename == "NotImplementedError":
        return "not implemented yet"
    if error.ename == "AssertionError":
        return error.evalue or "AssertionError (no message)"
    return f"{error.ename}: {error.evalue}" if error.evalue else error.ename


def _verdict(nb: nbformat.NotebookNode, position: int, execution: Execution) -> tuple[bool, str]:
    """Whether the check cell at ``position`` passed, and its message."""
    if position in execution.incidents:
        return False, execution.incidents[position]
    if execution.not_run_from is not None and position >= execution.not_run_from:
        return False, f"not run: notebook time limit ({execution.notebook_timeout:g} s) reached"
    outputs = nb.cells[position].get("outputs", [])
    errors = [out for out in outputs if out.output_type == "error"]
    if errors:
        return False, _error_message(errors[0])
    if position in execution.failed:
        return False, "the check cell ended in an error, whose output was suppressed"
    ticks = [line.strip() for line in _stdout(nb.cells[position]).splitlines() if line.startswith("✓")]
    if ticks:
        return True, "; ".join(ticks)
    return False, "the check printed no line starting with ✓"


def _cell_name(nb: nbformat.NotebookNode, index: int) -> str:
    """A cell as a student can find it: its number and first line."""
    first_line = _first_line(nb.cells[index])
    return f"cell {index + 1} ({first_line[:40]}{'…' if len(first_line) > 40 else ''})"


def _shorten(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE_CHARS else message[: MAX_MESSAGE_CHARS - 1] + "…"


def score(
    nb: nbformat.NotebookNode, exercises: list[Exercise], positions: list[int], execution: Execution
) -> list[ExerciseGrade]:
    """Grade each exercise from its check cell at ``positions`` in the executed notebook ``nb``.

    A failed exercise's message also names the timeouts and kernel deaths of the cells since the
    previous check cell (its exercise cell, usually), which often explain a NameError.
    """
    grades: list[ExerciseGrade] = []
    for exercise, position in zip(exercises, positions):
        passed, message = _verdict(nb, position, execution)
        if not passed:
            previous = max((other for other in positions if other < position), default=-1)
            notes = [
                f"{_cell_name(nb, index)}: {incident}"
                for index, incident in sorted(execution.incidents.items())
                if previous < index < position
            ]
            message = "; ".join([message, *notes])
        points = exercise.points if passed else 0
        grades.append(ExerciseGrade(exercise.name, points, exercise.points, passed, _shorten(message)))
    return grades


# --- submissions ----------------------------------------------------------------------------------


def find_submissions(paths: list[str | Path]) -> list[Path]:
    """The notebooks to grade: files as given, and every ``*.ipynb`` under a folder (sorted).

    Raises FileNotFoundError naming a path that does not exist or a folder without notebooks.
    """
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            notebooks = sorted(p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
            if not notebooks:
                raise FileNotFoundError(f"no notebook (*.ipynb) in folder {path}")
            found.extend(notebooks)
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"submission not found: {path}")
    unique: dict[Path, Path] = {}  # the same file given twice is graded once
    for path in found:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def complete_notebook_for(submission: Path, source: Path) -> Path:
    """The complete notebook to grade ``submission`` against.

    ``source`` is either that notebook, or a folder holding one with the submission's file name
    (``alice/05_policy_gradient.ipynb`` -> ``notebooks/05_policy_gradient.ipynb``). Raises
    FileNotFoundError naming what is missing.
    """
    if source.is_file():
        return source
    if not source.is_dir():
        raise FileNotFoundError(f"complete notebooks not found: {source}")
    complete = source / submission.name
    if not complete.is_file():
        raise FileNotFoundError(
            f"no complete notebook for {submission}: {complete} does not exist "
            "(rename the submission, or name its complete notebook with --source NOTEBOOK)"
        )
    return complete


def grade_submission(
    submission: Path,
    complete: Path,
    *,
    name: str | None = None,
    cell_timeout: float = CELL_TIMEOUT_S,
    notebook_timeout: float = NOTEBOOK_TIMEOUT_S,
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
) -> SubmissionGrade:
    """Grade one submitted notebook against its complete notebook.

    It runs in a temporary folder of its own, holding copies of the complete notebook's data files
    (:func:`~course_utils.instructor.sandbox.workspace`), with at most ``memory_limit`` bytes per
    kernel. ``name`` is how reports show the submission (default: its path). A submission that is
    not a readable notebook scores 0 on every exercise, with the reason.
    """
    started = time.monotonic()
    complete_nb = read_notebook(complete)
    exercises = exercises_of(complete_nb, source=str(complete))
    try:
        submitted = read_notebook(submission)
    except (OSError, ValueError) as error:  # not JSON, not nbformat 4: the student's file is broken
        message = _shorten(f"could not read the notebook: {error}")
        grades = [ExerciseGrade(exercise.name, 0, exercise.points, False, message) for exercise in exercises]
    else:
        graded, positions = restore_check_cells(submitted, complete_nb, exercises)
        with workspace(complete.parent) as folder:
            execution = execute_notebook(
                graded,
                folder,
                cell_timeout=cell_timeout,
                notebook_timeout=notebook_timeout,
                memory_limit=memory_limit,
            )
        grades = score(graded, exercises, positions, execution)
    return SubmissionGrade(
        submission=name or str(submission),
        notebook=str(complete),
        grades=grades,
        seconds=time.monotonic() - started,
    )
