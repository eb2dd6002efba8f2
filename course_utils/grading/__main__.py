"""Command line for instructors: ``python -m course_utils.grading <command> ...``.

Commands:
    build-student [--notebooks DIR] [--check]
        Write notebooks/student/ from the complete notebooks (``--check``: write nothing, exit 1
        when a student version is missing, out of date or orphaned).

Exit codes: 0 success, 1 student versions out of date (``--check``), 2 bad input (a missing
directory, unbalanced solution markers).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from course_utils.grading.student import build_student_versions

DEFAULT_NOTEBOOKS = "notebooks"


def _shown(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
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


def make_parser() -> argparse.ArgumentParser:
    """The argument parser; each command is a subparser whose ``handler`` runs it."""
    parser = argparse.ArgumentParser(
        prog="python -m course_utils.grading",
        description="Tools for instructors: student versions of the notebooks.",
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = make_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
