"""Reports of autograded submissions: CSV and JSON grades, a terminal table, HTML feedback.

Every report shows the same rows, one per submission and exercise:
``submission, exercise, points, max_points, message``.
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
from collections import defaultdict
from pathlib import Path

from course_utils.grading.autograde import SubmissionGrade

__all__ = [
    "COLUMNS",
    "feedback_html",
    "grade_rows",
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


def write_csv(results: list[SubmissionGrade], path: Path) -> None:
    """The grades as CSV (UTF-8), with a header row of :data:`COLUMNS`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        for row in grade_rows(results):
            writer.writerow([_number(v) if isinstance(v, float | int) else v for v in row.values()])


def write_json(results: list[SubmissionGrade], path: Path) -> None:
    """The grades as JSON: ``{"totals": [...], "rows": [...]}``, totals one per submission."""
    totals = [
        {
            "submission": result.submission,
            "notebook": result.notebook,
            "points": result.points,
            "max_points": result.max_points,
            "seconds": round(result.seconds, 1),
        }
        for result in results
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"totals": totals, "rows": grade_rows(results)}, indent=2, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")


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


def _report_name(submission: str, common: str) -> str:
    """A file name for a submission's report, from its path below the folder ``common`` to all
    submissions: ``submissions/alice/05_pg.ipynb`` -> ``alice__05_pg.html``."""
    path = Path(os.path.relpath(submission, common) if common else submission).with_suffix("")
    parts = [part for part in path.parts if part not in (path.anchor, "..", ".")]
    name = re.sub(r"[^\w.-]+", "_", "__".join(parts)).lstrip(".") or "submission"
    return name + ".html"


def write_feedback(results: list[SubmissionGrade], folder: Path) -> list[Path]:
    """Write one HTML report per submission into ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        common = os.path.commonpath([os.path.dirname(result.submission) for result in results])
    except ValueError:  # absolute and relative paths mixed, or no submission
        common = ""
    written: list[Path] = []
    for result in results:
        path = folder / _report_name(result.submission, common)
        stem, copy = path.stem, 2
        while path in written:  # two submissions whose names flatten alike
            path, copy = folder / f"{stem}-{copy}.html", copy + 1
        path.write_text(feedback_html(result), encoding="utf-8")
        written.append(path)
    return written
