"""Command line for instructors: ``python -m course_utils.instructor <command> ...``.

Commands:
    build-student [--notebooks DIR] [--check]
        Write notebooks/student/ from the complete notebooks (``--check``: write nothing, exit 1
        when a student version is missing, out of date or orphaned).
    autograde SUBMISSION... [--source DIR_OR_NOTEBOOK] [--out grades.csv] [--json PATH]
              [--feedback DIR] [--cell-timeout S] [--notebook-timeout S] [--memory-limit SIZE]
              [--jobs N] [--shard K/N] [--resume]
        Execute each submitted notebook (files, or folders searched for *.ipynb), N at a time,
        grade its exercises, write the grades as CSV and JSON, one HTML feedback report per
        submission, and print a summary table (see course_utils.instructor.autograde). The grades
        files are rewritten after each submission; ``--resume`` keeps the grades they hold.
        ``--shard K/N`` grades the K-th of N slices of the class.
    merge GRADES_JSON... [--out grades.csv] [--json PATH] [--feedback DIR]
        Combine the JSON grades of several shards (or runs) into one set of reports.

Exit codes: 0 success (autograde: grading ran, whatever the scores), 1 student versions out of
date (``--check``), 2 bad input (a missing file or directory, unbalanced solution markers, a
submission without its complete notebook, invalid grading metadata, a grades file that cannot be
read or merged), 130 interrupted (the grades so far are written).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from course_utils.instructor.autograde import (
    CELL_TIMEOUT_S,
    DEFAULT_SOURCE,
    NOTEBOOK_TIMEOUT_S,
    SubmissionGrade,
    complete_notebook_for,
    exercises_of,
    find_submissions,
)
from course_utils.instructor.batch import Limits, Task, grade_all, merge, parse_shard, shard
from course_utils.instructor.jail import landlock_abi
from course_utils.instructor.report import (
    common_folder,
    read_json,
    summary_table,
    write_csv,
    write_feedback,
    write_json,
)
from course_utils.instructor.sandbox import DEFAULT_MEMORY_LIMIT, parse_memory
from course_utils.instructor.student import build_student_versions, read_notebook

DEFAULT_NOTEBOOKS = "notebooks"


def _shown(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:  # outside it
        return str(path)


def _fix_command(notebooks: str) -> str:
    """The command that brings the student versions up to date."""
    command = "python -m course_utils.instructor build-student"
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


def _positive_int(text: str) -> int:
    """An argparse type: a whole number ≥ 1."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number ≥ 1, not {text}")
    return int(text)


def _argument_type(parse: Callable[[str], object]) -> Callable[[str], object]:
    """An argparse type from a parser that raises ValueError with its own message."""

    def convert(text: str) -> object:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return convert


def _report_paths(args: argparse.Namespace) -> tuple[Path, Path, Path]:
    """The CSV, the JSON and the feedback folder that ``--out``, ``--json`` and ``--feedback`` name."""
    out = Path(args.out)
    json_path = Path(args.json) if args.json else out.with_suffix(".json")
    feedback = Path(args.feedback) if args.feedback else out.parent / "feedback"
    return out, json_path, feedback


def _write_reports(results: list[SubmissionGrade], args: argparse.Namespace, shard_label: str | None) -> None:
    """Print the summary table and write every report."""
    out, json_path, feedback = _report_paths(args)
    print(summary_table(results))
    write_csv(results, out)
    write_json(results, json_path, shard_label)
    reports = write_feedback(results, feedback)
    print(f"\nWrote {_shown(out)}, {_shown(json_path)} and {len(reports)} feedback reports in "
          f"{_shown(feedback)}.")


def _previous_grades(json_path: Path, tasks: list[Task]) -> dict[str, SubmissionGrade]:
    """The grades ``json_path`` already holds for ``tasks`` (same submission, same notebook), by
    submission; raises ValueError when the file cannot be read."""
    if not json_path.is_file():
        return {}
    previous = {result.submission: result for result in read_json(json_path)[0]}
    return {
        task.name: previous[task.name]
        for task in tasks
        if task.name in previous and previous[task.name].notebook == str(task.complete)
    }


def _autograde(args: argparse.Namespace) -> int:
    """The ``autograde`` command."""
    out, json_path, feedback = _report_paths(args)
    shard_label = f"{args.shard[0]}/{args.shard[1]}" if args.shard else None
    try:
        plan = _grading_plan(args.submissions, Path(_shown(Path(args.source))))
        tasks = [
            Task(position, submission, complete, Path(_shown(submission)).as_posix())
            for position, (submission, complete) in enumerate(plan)
        ]
        if args.shard:
            tasks = shard(tasks, *args.shard)
        done = _previous_grades(json_path, tasks) if args.resume else {}
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not landlock_abi():
        print("note: this system cannot confine a kernel's writes (Landlock needs Linux 5.13 or newer; "
              "on macOS the memory limit does not apply either): a submission can still write outside "
              "its folder by absolute path; grade in a container.", file=sys.stderr)
    results = dict(done)
    todo = [task for task in tasks if task.name not in done]
    if done:
        print(f"Resuming: {len(done)} of {len(tasks)} submissions already graded in {_shown(json_path)}.",
              file=sys.stderr)
    common = common_folder([task.name for task in tasks])

    def record(result: SubmissionGrade) -> None:
        """Keep a finished grade, and write every report with it: nothing is lost to a crash."""
        results[result.submission] = result
        print(f"[{len(results)}/{len(tasks)}] {result.submission} {result.points:g}/{result.max_points:g} "
              f"points ({result.seconds:.0f} s)", file=sys.stderr, flush=True)
        ordered = sorted(results.values(), key=lambda grade: grade.position)
        write_csv(ordered, out)
        write_json(ordered, json_path, shard_label)
        write_feedback([result], feedback, common)

    limits = Limits(args.cell_timeout, args.notebook_timeout, args.memory_limit)
    try:
        grade_all(todo, limits, args.jobs, record)
    except KeyboardInterrupt:
        print(f"\nInterrupted: {len(results)} of {len(tasks)} submissions graded, their grades are in "
              f"{_shown(out)} and {_shown(json_path)}. Run the same command with --resume to grade the rest.",
              file=sys.stderr)
        return 130
    _write_reports(sorted(results.values(), key=lambda grade: grade.position), args, shard_label)
    return 0


def _merge(args: argparse.Namespace) -> int:
    """The ``merge`` command."""
    try:
        parts = [(Path(path), *read_json(Path(path))) for path in args.grades]
        results, warnings = merge(parts)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    _write_reports(results, args, None)
    return 0


def _add_report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="grades.csv", metavar="CSV", help="the grades (default: grades.csv)")
    parser.add_argument(
        "--json", metavar="PATH", help="the grades as JSON (default: the CSV's path with .json)"
    )
    parser.add_argument(
        "--feedback", metavar="DIR", help="folder of the HTML reports (default: feedback/ beside the CSV)"
    )


def make_parser() -> argparse.ArgumentParser:
    """The argument parser; each command is a subparser whose ``handler`` runs it."""
    parser = argparse.ArgumentParser(
        prog="python -m course_utils.instructor",
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
        "cells restored from the complete notebook (hidden tests included), in a temporary folder of "
        "its own, with a clean environment, confined to that folder and a memory limit; grade each "
        "exercise: its points when its check prints ✓, else 0. Writes the grades as CSV and JSON "
        "after each submission, an HTML feedback report per submission, and prints a summary table.",
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
    _add_report_options(grade)
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
    grade.add_argument(
        "--memory-limit",
        type=_argument_type(parse_memory),
        default=DEFAULT_MEMORY_LIMIT,
        metavar="SIZE",
        help="memory of one kernel, such as 4G or 512M, or none (default: "
        f"{DEFAULT_MEMORY_LIMIT // 2**30}G); an allocation past it fails in the cell that made it",
    )
    grade.add_argument(
        "--jobs",
        type=_positive_int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="submissions graded at once, each in its own process and kernel (default: the number "
        f"of CPUs, {os.cpu_count() or 1} here)",
    )
    grade.add_argument(
        "--shard",
        type=_argument_type(parse_shard),
        metavar="K/N",
        help="grade only the K-th of N slices of the submissions (every N-th from the K-th); "
        "combine the N shards' JSON files with the merge command",
    )
    grade.add_argument(
        "--resume",
        action="store_true",
        help="keep the grades the JSON file already holds (from an interrupted run) and grade only "
        "the other submissions",
    )
    grade.set_defaults(handler=_autograde)

    combine = commands.add_parser(
        "merge",
        help="combine the grades of several shards into one set of reports",
        description="Read the JSON grades of autograde runs (such as the N shards of a class, "
        "--shard K/N), and write them as one CSV, JSON and feedback set, in the class's order.",
    )
    combine.add_argument("grades", nargs="+", metavar="GRADES_JSON", help="a JSON file written by autograde")
    _add_report_options(combine)
    combine.set_defaults(handler=_merge)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = make_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
