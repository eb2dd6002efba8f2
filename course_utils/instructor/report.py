"""Reports of autograded submissions: CSV and JSON grades, a terminal table, HTML feedback.

Every report shows the same rows, one per submission and exercise:
``submission, exercise, points, max_points, message``. The JSON holds all a report needs, so
:func:`read_json` gives back the graded submissions (to resume a run, or merge shards). Files are
written whole or not at all: an interrupted run leaves the previous complete file.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import re
from collections import defaultdict
from pathlib import Path

from course_utils.instructor.autograde import ExerciseGrade, SubmissionGrade

__all__ = [
    "COLUMNS",
    "common_folder",
    "feedback_html",
    "grade_rows",
    "read_json",
    "report_name",
    "summary_table",
    "write_csv",
    "write_feedback",
    "write_json",
]

COLUMNS = ("submission", "exercise", "points", "max_points", "message")


def _number(points: float) -> str:
    """Points as an instructor writes them: 1, 0.5."""
    return f"{points:g}"


def grade_rows(results: list[SubmissionGrade]) -> list[dict[str, str | float]]:
    """One row per submission and exercise, keyed by :data:`COLUMNS`."""
    return [
        {
            "submission": result.submission,
            "exercise": grade.exercise,
            "points": grade.points,
            "max_points": grade.max_points,
            "message": grade.message,
        }
        for result in results
        for grade in result.grades
    ]


def _write_whole(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically: readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8", newline="")
    os.replace(partial, path)


def write_csv(results: list[SubmissionGrade], path: Path) -> None:
    """The grades as CSV (UTF-8), with a header row of :data:`COLUMNS`."""
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(COLUMNS)
    for row in grade_rows(results):
        writer.writerow([_number(v) if isinstance(v, float | int) else v for v in row.values()])
    _write_whole(path, text.getvalue())


def write_json(results: list[SubmissionGrade], path: Path, shard: str | None = None) -> None:
    """The grades as JSON: ``{"shard", "totals": [...], "rows": [...]}``, totals one per
    submission (with its position in the class's order), rows as in :func:`grade_rows` with each
    exercise's verdict; ``shard`` is ``"K/N"`` for a shard's grades, else None."""
    totals = [
        {
            "submission": result.submission,
            "notebook": result.notebook,
            "position": result.position,
            "points": result.points,
            "max_points": result.max_points,
            "seconds": round(result.seconds, 1),
        }
        for result in results
    ]
    verdicts = [grade.passed for result in results for grade in result.grades]
    rows = [{**row, "passed": passed} for row, passed in zip(grade_rows(results), verdicts)]
    text = json.dumps({"shard": shard, "totals": totals, "rows": rows}, indent=2, ensure_ascii=False)
    _write_whole(path, text + "\n")


def read_json(path: Path) -> tuple[list[SubmissionGrade], str | None]:
    """The graded submissions that :func:`write_json` wrote to ``path``, and its shard.

    Raises ValueError naming the file when it is not such a file.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        grades: dict[str, list[ExerciseGrade]] = defaultdict(list)
        for row in data["rows"]:
            grades[row["submission"]].append(ExerciseGrade(
                row["exercise"], row["points"], row["max_points"], row["passed"], row["message"]
            ))
        results = [
            SubmissionGrade(
                submission=total["submission"],
                notebook=total["notebook"],
                grades=grades[total["submission"]],
                seconds=total["seconds"],
                position=total["position"],
            )
            for total in data["totals"]
        ]
        return results, data["shard"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path} is not a grades file written by autograde: {error!r}") from None


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Text table lines: the first column left-aligned, the others right-aligned."""
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]

    def line(row: list[str]) -> str:
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:])]
        return "  ".join(cells).rstrip()

    return [line(header), "  ".join("-" * width for width in widths), *map(line, rows)]


def summary_table(results: list[SubmissionGrade]) -> str:
    """Points of each submission in each exercise, and totals; one table per complete notebook."""
    by_notebook: dict[str, list[SubmissionGrade]] = defaultdict(list)
    for result in results:
        by_notebook[result.notebook].append(result)
    blocks: list[str] = []
    for notebook, group in by_notebook.items():
        exercises = [grade.exercise for grade in group[0].grades]
        maximum = _number(group[0].max_points)
        rows = [
            [
                result.submission,
                *(_number(grade.points) for grade in result.grades),
                f"{_number(result.points)}/{maximum}",
            ]
            for result in group
        ]
        lines = _table(["submission", *exercises, "total"], rows)
        blocks.append("\n".join([f"Graded against {notebook}:", *lines]))
    return "\n\n".join(blocks)


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #222; }
h1 { font-size: 1.4rem; }
.meta { color: #555; }
.total { font-size: 1.2rem; font-weight: bold; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: 0.5rem; text-align: left; vertical-align: top; }
td.verdict { font-size: 1.2rem; text-align: center; }
tr.passed td.verdict { color: #1a7f37; }
tr.failed td.verdict { color: #cf222e; }
td.points { white-space: nowrap; }
pre { margin: 0; white-space: pre-wrap; word-break: break-word; font-size: 0.9rem; }
"""


def feedback_html(result: SubmissionGrade) -> str:
    """A self-contained HTML page for one submission: each exercise's verdict, points and message.

    Everything a student controls (file name, messages of their errors) is escaped.
    """
    escape = html.escape
    rows = "\n".join(
        f'<tr class="{"passed" if grade.passed else "failed"}">'
        f"<td>{escape(grade.exercise)}</td>"
        f'<td class="verdict">{"✓" if grade.passed else "✗"}</td>'
        f'<td class="points">{_number(grade.points)} / {_number(grade.max_points)}</td>'
        f"<td><pre>{escape(grade.message)}</pre></td></tr>"
        for grade in result.grades
    )
    title = f"Feedback: {Path(result.submission).name}"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{escape(title)}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>{escape(title)}</h1>
<p class="meta">Submission <code>{escape(result.submission)}</code>, graded against
<code>{escape(Path(result.notebook).name)}</code>.</p>
<p class="total">Total: {_number(result.points)} / {_number(result.max_points)} points</p>
<table>
<thead><tr><th>Exercise</th><th></th><th>Points</th><th>Message</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
</body>
</html>
"""


def report_name(submission: str, common: str) -> str:
    """A file name for a submission's report, from its path below the folder ``common`` to all
    submissions: ``submissions/alice/05_pg.ipynb`` -> ``alice__05_pg.html``."""
    path = Path(os.path.relpath(submission, common) if common else submission).with_suffix("")
    parts = [part for part in path.parts if part not in (path.anchor, "..", ".")]
    name = re.sub(r"[^\w.-]+", "_", "__".join(parts)).lstrip(".") or "submission"
    return name + ".html"


def common_folder(submissions: list[str]) -> str:
    """The folder common to all ``submissions`` (as reports show them), which report names omit."""
    try:
        return os.path.commonpath([os.path.dirname(submission) for submission in submissions])
    except ValueError:  # absolute and relative paths mixed, or no submission
        return ""


def write_feedback(results: list[SubmissionGrade], folder: Path, common: str | None = None) -> list[Path]:
    """Write one HTML report per submission into ``folder``; returns their paths.

    A report's name is the submission's path below ``common`` (default: the folder common to
    ``results``; see :func:`report_name`).
    """
    if common is None:
        common = common_folder([result.submission for result in results])
    written: list[Path] = []
    for result in results:
        path = folder / report_name(result.submission, common)
        stem, copy = path.stem, 2
        while path in written:  # two submissions whose names flatten alike
            path, copy = folder / f"{stem}-{copy}.html", copy + 1
        _write_whole(path, feedback_html(result))
        written.append(path)
    return written
