"""Grading a class: several submissions at once, one shard of a class, resuming, merging shards.

A class is a list of :class:`Task` in a fixed order (the order of the submissions on the command
line, folders searched in sorted order). :func:`shard` takes a deterministic slice of it, so that
N machines, each grading shard K/N, grade every submission exactly once; :func:`merge` puts their
grades back together in the class's order. :func:`grade_all` grades the tasks on ``jobs``
processes and hands each result over as soon as it is ready, which is what makes an interrupted
run resumable: the caller writes the grades after each one.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from course_utils.instructor.autograde import (
    CELL_TIMEOUT_S,
    NOTEBOOK_TIMEOUT_S,
    SubmissionGrade,
    grade_submission,
)
from course_utils.instructor.sandbox import DEFAULT_MEMORY_LIMIT

__all__ = ["Limits", "Task", "grade_all", "merge", "parse_shard", "shard"]


@dataclass(frozen=True)
class Task:
    """One submission to grade, and its place in the class."""

    position: int  # in the class's order
    submission: Path
    complete: Path  # the complete notebook it is graded against
    name: str  # how reports show the submission


@dataclass(frozen=True)
class Limits:
    """The limits every submission is graded under."""

    cell_timeout: float = CELL_TIMEOUT_S
    notebook_timeout: float = NOTEBOOK_TIMEOUT_S
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` as (K, N), with 1 ≤ K ≤ N; raises ValueError naming the text otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise ValueError(f"a shard is K/N with 1 ≤ K ≤ N (shard 2 of 4: 2/4), not {text!r}")
    return int(match.group(1)), int(match.group(2))


def shard(tasks: list[Task], k: int, n: int) -> list[Task]:
    """Shard K of N: every N-th task from the K-th. The N shards split any class exactly, and
    each gets about as many submissions of each notebook as the others."""
    return [task for task in tasks if task.position % n == k - 1]


def _grade(task: Task, limits: Limits) -> SubmissionGrade:
    """Grade one task (in a worker process when grading in parallel)."""
    result = grade_submission(
        task.submission,
        task.complete,
        name=task.name,
        cell_timeout=limits.cell_timeout,
        notebook_timeout=limits.notebook_timeout,
        memory_limit=limits.memory_limit,
    )
    return dataclasses.replace(result, position=task.position)


def grade_all(
    tasks: Iterable[Task],
    limits: Limits,
    jobs: int,
    on_result: Callable[[SubmissionGrade], None],
) -> None:
    """Grade ``tasks``, ``jobs`` at a time, calling ``on_result`` with each grade as it is ready.

    With ``jobs`` = 1 they are graded one after another in this process; otherwise each in a
    worker process of its own, started fresh (``spawn``: no state of this process is shared).
    A grade does not depend on ``jobs``. On KeyboardInterrupt the tasks not started are cancelled,
    those running are stopped, and the interrupt propagates.
    """
    tasks = list(tasks)
    if jobs < 1:
        raise ValueError(f"jobs must be ≥ 1, not {jobs}")
    if jobs == 1 or len(tasks) <= 1:
        for task in tasks:
            on_result(_grade(task, limits))
        return
    pool = concurrent.futures.ProcessPoolExecutor(
        max_workers=min(jobs, len(tasks)), mp_context=multiprocessing.get_context("spawn")
    )
    try:
        futures = [pool.submit(_grade, task, limits) for task in tasks]
        for future in concurrent.futures.as_completed(futures):
            on_result(future.result())
    except BaseException:
        # Stop the workers too, or the interpreter would wait for their submissions at exit
        # (concurrent.futures has no public way before Python 3.14: terminate_workers). A kernel
        # whose worker is gone exits by itself (ipykernel watches its parent).
        workers = list((pool._processes or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for worker in workers:
            worker.terminate()
        raise
    pool.shutdown()


def merge(
    parts: list[tuple[Path, list[SubmissionGrade], str | None]],
) -> tuple[list[SubmissionGrade], list[str]]:
    """The grades of several runs (each: its file, its grades, its shard ``"K/N"`` or None), in
    the class's order, and warnings: the shards of N that are missing.

    Raises ValueError when a submission was graded in two of them, or when shards of different
    N are mixed.
    """
    seen: dict[str, Path] = {}
    merged: list[SubmissionGrade] = []
    for path, results, _ in parts:
        for result in results:
            if result.submission in seen:
                raise ValueError(
                    f"{result.submission} is graded in both {seen[result.submission]} and {path}: "
                    "merge each shard once"
                )
            seen[result.submission] = path
            merged.append(result)
    shards = [parse_shard(label) for _, _, label in parts if label]
    counts = {n for _, n in shards}
    if len(counts) > 1:
        raise ValueError(f"shards of different counts cannot be merged: {sorted(counts)}")
    warnings = []
    if counts:
        (n,) = counts
        missing = sorted(set(range(1, n + 1)) - {k for k, _ in shards})
        if missing:
            warnings.append(f"shards {', '.join(f'{k}/{n}' for k in missing)} are missing: their "
                            "submissions have no grades")
    return sorted(merged, key=lambda result: result.position), warnings
