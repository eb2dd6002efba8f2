"""Command line for instructors: ``python -m course_utils.grading <command> ...``.

Commands:
    build-student [--notebooks DIR] [--check]
        Write notebooks/student/ from the complete notebooks (``--check``: write nothing, exit 1
        when a student version is missing, out of date or orphaned).
    autograde SUBMISSION... [--source DIR_OR_NOTEBOOK] [--out grades.csv] [--json PATH]
              [--feedback DIR] [--cell-timeout S] [--notebook-timeout S]
        Execute each submitted notebook (files, or folders searched for *.ipynb), grade its
        exercises, write the grades as CSV and JSON, one HTML feedback report per submission, and
        print a summary table (see course_utils.grading.autograde).

Exit codes: 0 success (autograde: grading ran, whatever the scores), 1 student versions out of
date (``--check``), 2 bad input (a missing file or directory, unbalanced solution markers, a
submission without its complete notebook, invalid grading metadata).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from course_utils.grading.autograde import (
    CELL_TIMEOUT_S,
    DEFAULT_SOURCE,
    NOTEBOOK_TIMEOUT_S,
    complete_notebook_for,
    exercises_of,
    find_submissions,
    grade_submission,
)
from course_utils.grading.report import summary_table, write_csv, write_feedback, write_json
from course_utils.grading.student import build_student_versions, read_notebook

DEFAULT_NOTEBOOKS = "notebooks"


def _shown(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:  # outside it
        return str(path)


def _fix_command(notebooks: str) -> str:
    """The command that brings the student versions up to date."""
    command = "python -m course_utils.grading build-student"
    return command if notebooks == DEFAULT_NOTEBOOKS else f"{command} --notebooks {notebooks}"


def _reason(student_file: Path, notebooks_dir: Path) -> str:
    """Why a student file is listed: missing, orphaned or out of date."""
    if not (notebooks_dir / student_file.name).is_file():
        return "orphan: its complete notebook no longer exists"
    if not student_file.is_file():
        return "missing"
    return "out of date"


def _build_student(args: argparse.Namespace) -> int:
    """The ``build-student`` command."""
    notebooks_dir = Path(args.notebooks)
    try:
        changed = build_student_versions(notebooks_dir, check=args.check)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.check:
        if not changed:
            print("All student versions are up to date.")
            return 0
        print("Student versions out of date:")
        for path in changed:
            print(f"  {_shown(path)} ({_reason(path, notebooks_dir)})")
        print(f"Run: {_fix_command(args.notebooks)}")
        return 1
    for path in changed:
        print(f"{'wrote' if path.is_file() else 'removed'} {_shown(path)}")
    if not changed:
        print("All student versions are up to date; nothing written.")
    return 0


def _grading_plan(submissions: list[str], source: Path) -> list[tuple[Path, Path]]:
    """Each submission with its complete notebook, checked before anything runs.

    Raises FileNotFoundError or ValueError naming every submission without its complete notebook,
    or a complete notebook with nothing to grade or invalid grading metadata.
    """
    plan: list[tuple[Path, Path]] = []
    missing: list[str] = []
    for submission in find_submissions(submissions):
        try:
            plan.append((submission, complete_notebook_for(submission, source)))
        except FileNotFoundError as error:
            missing.append(str(error))
    if missing:
        raise FileNotFoundError("\n".join(missing))
    for complete in sorted({complete for _, complete in plan}):
        exercises_of(read_notebook(complete), source=_shown(complete))
    return plan


def _positive_seconds(text: str) -> float:
    """An argparse type: a time limit in seconds, > 0."""
    seconds = float(text)
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, not {text}")
    return seconds


def _autograde(args: argparse.Namespace) -> int:
    """The ``autograde`` command."""
    out = Path(args.out)
    json_path = Path(args.json) if args.json else out.with_suffix(".json")
    feedback = Path(args.feedback) if args.feedback else out.parent / "feedback"
    try:
        plan = _grading_plan(args.submissions, Path(_shown(Path(args.source))))
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    results = []
    for number, (submission, complete) in enumerate(plan, start=1):
        print(f"[{number}/{len(plan)}] {_shown(submission)}", end=" ", file=sys.stderr, flush=True)
        result = grade_submission(
            submission,
            complete,
            name=Path(_shown(submission)).as_posix(),
            cell_timeout=args.cell_timeout,
            notebook_timeout=args.notebook_timeout,
        )
        print(f"{result.points:g}/{result.max_points:g} points ({result.seconds:.0f} s)", file=sys.stderr)
        results.append(result)
    print(summary_table(results))
    write_csv(results, out)
    write_json(results, json_path)
    reports = write_feedback(results, feedback)
    print(
        f"\nWrote {_shown(out)}, {_shown(json_path)} and {len(reports)} feedback reports in {_shown(feedback)}."
    )
    return 0


def make_parser() -> argparse.ArgumentParser:
    """The argument parser; each command is a subparser whose ``handler`` runs it."""
    parser = argparse.ArgumentParser(
        prog="python -m course_utils.grading",
        description="Tools for instructors: student versions of the notebooks, autograding.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    build = commands.add_parser(
        "build-student",
        help="write notebooks/student/ from the complete notebooks",
        description="Replace solutions with stubs, drop hidden tests and outputs, and write the "
        "student versions into NOTEBOOKS/student/.",
    )
    build.add_argument(
        "--notebooks",
        default=DEFAULT_NOTEBOOKS,
        metavar="DIR",
        help="folder of the complete notebooks (default: notebooks)",
    )
    build.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a student version is out of date"
    )
    build.set_defaults(handler=_build_student)

    grade = commands.add_parser(
        "autograde",
        help="grade submitted student notebooks",
        description="Execute each submitted notebook in a fresh kernel (quick mode), with its check "
        "cells restored from the complete notebook (hidden tests included), and grade each exercise: "
        "its points when its check prints ✓, else 0. Writes the grades as CSV and JSON, an HTML "
        "feedback report per submission, and prints a summary table.",
    )
    grade.add_argument(
        "submissions",
        nargs="+",
        metavar="SUBMISSION",
        help="a submitted notebook, or a folder searched for *.ipynb (e.g. one folder per student)",
    )
    grade.add_argument(
        "--source",
        default=str(DEFAULT_SOURCE),
        metavar="DIR_OR_NOTEBOOK",
        help="the complete notebook to grade against, or a folder of them matched by file name "
        "(default: the repository's notebooks/)",
    )
    grade.add_argument("--out", default="grades.csv", metavar="CSV", help="the grades (default: grades.csv)")
    grade.add_argument(
        "--json", metavar="PATH", help="the grades as JSON (default: the CSV's path with .json)"
    )
    grade.add_argument(
        "--feedback", metavar="DIR", help="folder of the HTML reports (default: feedback/ beside the CSV)"
    )
    grade.add_argument(
        "--cell-timeout",
        type=_positive_seconds,
        default=CELL_TIMEOUT_S,
        metavar="S",
        help=f"time limit of one cell, in seconds (default: {CELL_TIMEOUT_S})",
    )
    grade.add_argument(
        "--notebook-timeout",
        type=_positive_seconds,
        default=NOTEBOOK_TIMEOUT_S,
        metavar="S",
        help=f"time limit of one submission, in seconds (default: {NOTEBOOK_TIMEOUT_S})",
    )
    grade.set_defaults(handler=_autograde)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = make_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
