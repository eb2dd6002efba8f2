"""Time to autograde a class: N solved submissions of one notebook, graded with several --jobs.

    python benchmarks/grading.py --notebook 06_actor_critic_gae.ipynb --submissions 60 --jobs 1 2

Each submission is the notebook's student version with every solution filled in (so every cell
runs, as for a student who finished), graded by ``python -m course_utils.instructor autograde``.
Prints one JSON line per --jobs value: ``{"notebook", "submissions", "jobs", "seconds",
"seconds_per_submission", "full_marks"}``; ``full_marks`` counts the submissions that scored all
their points, a check that the run graded what it timed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from course_utils.instructor.student import read_notebook, student_path

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def solved_submission(complete: Path) -> nbformat.NotebookNode:
    """The student version of ``complete`` with each solution cell put back."""
    solutions = {
        cell.id: cell.source for cell in read_notebook(complete).cells if "### BEGIN SOLUTION" in cell.source
    }
    submission = read_notebook(student_path(complete))
    for cell in submission.cells:
        cell.source = solutions.get(cell.get("id"), cell.source)
    return submission


def time_class(complete: Path, submissions: int, jobs: int) -> dict[str, object]:
    """Grade ``submissions`` copies of the solved notebook with ``jobs`` at once; the JSON record."""
    with tempfile.TemporaryDirectory(prefix="grading-benchmark-") as folder:
        root = Path(folder)
        nb = solved_submission(complete)
        for number in range(submissions):
            path = root / "class" / f"student{number:03d}" / complete.name
            path.parent.mkdir(parents=True)
            nbformat.write(nb, path)
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "course_utils.instructor", "autograde", str(root / "class"),
             "--source", str(complete.parent), "--out", str(root / "grades.csv"), "--jobs", str(jobs)],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        seconds = time.perf_counter() - started
        totals = json.loads((root / "grades.json").read_text(encoding="utf-8"))["totals"]
    return {
        "notebook": complete.name,
        "submissions": submissions,
        "jobs": jobs,
        "seconds": round(seconds, 1),
        "seconds_per_submission": round(seconds / submissions, 2),
        "full_marks": sum(total["points"] == total["max_points"] for total in totals),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notebook", default="06_actor_critic_gae.ipynb",
                        help="a complete notebook's file name")
    parser.add_argument("--submissions", type=int, default=60)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    for jobs in args.jobs:
        print(json.dumps(time_class(NOTEBOOKS / args.notebook, args.submissions, jobs)), flush=True)


if __name__ == "__main__":
    main()
