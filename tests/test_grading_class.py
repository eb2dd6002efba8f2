"""Grading a class: parallel jobs, shards and their merge, resuming after an interrupt.

Each test grades a few submissions of the tiny course (``tiny_course``); what must hold is that
every way of grading a class gives the grades of one plain serial run.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path

import pytest

from course_utils.instructor import batch
from course_utils.instructor.__main__ import main
from course_utils.instructor.batch import Task, merge, parse_shard, shard
from course_utils.instructor.report import read_json
from tiny_course import solved, student_version, submit

# Four students: full marks, nothing done, one wrong answer, one error.
ANSWERS = {
    "alice": {},
    "bob": None,
    "carol": {"total": "def total(xs):\n    return 0"},
    "dave": {"square": "def square(x):\n    raise ValueError('no')"},
}


@pytest.fixture
def classroom(course: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder of the four students' submissions; the working folder is ``tmp_path``."""
    for student, answers in ANSWERS.items():
        submit(student_version() if answers is None else solved(**answers), tmp_path / "class", student)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "class"


def _autograde(out: str, *options: str) -> int:
    return main(["autograde", "class", "--source", "course", "--out", f"{out}/grades.csv", *options])


def _reports(out: str) -> dict[str, object]:
    """What a run wrote, less the seconds each submission took."""
    grades = json.loads(Path(out, "grades.json").read_text(encoding="utf-8"))
    for total in grades["totals"]:
        del total["seconds"]
    return {
        "csv": Path(out, "grades.csv").read_text(encoding="utf-8"),
        "totals": grades["totals"],
        "rows": grades["rows"],
        "feedback": {
            path.name: path.read_text(encoding="utf-8") for path in sorted(Path(out, "feedback").iterdir())
        },
    }


def test_parallel_jobs_and_merged_shards_grade_as_one_serial_run(classroom: Path) -> None:
    assert _autograde("serial", "--jobs", "1") == 0
    serial = _reports("serial")
    assert [(total["submission"], total["points"]) for total in serial["totals"]] == [
        ("class/alice/tiny.ipynb", 4),
        ("class/bob/tiny.ipynb", 0),
        ("class/carol/tiny.ipynb", 3),
        ("class/dave/tiny.ipynb", 3),
    ]
    assert _autograde("parallel", "--jobs", "3") == 0
    assert _reports("parallel") == serial

    assert _autograde("shard1", "--shard", "1/2", "--jobs", "2") == 0
    assert _autograde("shard2", "--shard", "2/2", "--jobs", "1") == 0
    shard_one = json.loads(Path("shard1/grades.json").read_text(encoding="utf-8"))
    assert shard_one["shard"] == "1/2"
    assert [total["submission"] for total in shard_one["totals"]] == [
        "class/alice/tiny.ipynb",
        "class/carol/tiny.ipynb",
    ]
    code = main(["merge", "shard2/grades.json", "shard1/grades.json", "--out", "merged/grades.csv"])
    assert code == 0
    assert _reports("merged") == serial


def test_an_interrupted_run_leaves_valid_files_and_resume_grades_only_the_rest(
    classroom: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    graded: list[str] = []
    grade = batch._grade

    def interrupted_after_two(task: Task, limits: batch.Limits):  # type: ignore[no-untyped-def]
        if len(graded) == 2:
            raise KeyboardInterrupt
        graded.append(task.name)
        return grade(task, limits)

    monkeypatch.setattr(batch, "_grade", interrupted_after_two)
    assert _autograde("out", "--jobs", "1") == 130
    assert "Run the same command with --resume" in capsys.readouterr().err
    results, _ = read_json(Path("out/grades.json"))
    assert [result.submission for result in results] == graded
    assert graded == ["class/alice/tiny.ipynb", "class/bob/tiny.ipynb"]
    assert Path("out/grades.csv").read_text(encoding="utf-8").count("\n") == 1 + 2 * 3
    assert sorted(path.name for path in Path("out/feedback").iterdir()) == [
        "alice__tiny.html",
        "bob__tiny.html",
    ]

    graded.clear()
    monkeypatch.setattr(batch, "_grade", lambda task, limits: graded.append(task.name) or grade(task, limits))
    assert _autograde("out", "--jobs", "1", "--resume") == 0
    assert graded == ["class/carol/tiny.ipynb", "class/dave/tiny.ipynb"]
    resumed = _reports("out")

    assert _autograde("fresh", "--jobs", "1") == 0
    assert resumed == _reports("fresh")


def test_merge_refuses_a_submission_graded_twice(classroom: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _autograde("one", "--shard", "1/2", "--jobs", "1") == 0
    assert main(["merge", "one/grades.json", "one/grades.json"]) == 2
    message = "class/alice/tiny.ipynb is graded in both one/grades.json and one/grades.json"
    assert message in capsys.readouterr().err


def test_merge_warns_of_missing_shards(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "part.json"
    path.write_text(json.dumps({"shard": "2/3", "totals": [], "rows": []}), encoding="utf-8")
    assert main(["merge", str(path), "--out", str(tmp_path / "grades.csv")]) == 0
    assert "shards 1/3, 3/3 are missing" in capsys.readouterr().err


def test_merge_rejects_a_file_that_is_not_grades(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "notes.json"
    path.write_text('{"hello": 1}', encoding="utf-8")
    assert main(["merge", str(path)]) == 2
    assert "is not a grades file written by autograde" in capsys.readouterr().err


def test_merge_rejects_shards_of_different_counts() -> None:
    with pytest.raises(ValueError, match="different counts"):
        merge([(Path("a.json"), [], "1/2"), (Path("b.json"), [], "2/3")])


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_shards_split_a_class_exactly(n: int) -> None:
    tasks = [Task(i, Path(f"{i}.ipynb"), Path("c.ipynb"), str(i)) for i in range(10)]
    slices = [shard(tasks, k, n) for k in range(1, n + 1)]
    assert sorted(task.position for part in slices for task in part) == list(range(10))
    assert max(map(len, slices)) - min(map(len, slices)) <= 1


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0"])
def test_parse_shard_rejects_bad_shards(text: str) -> None:
    with pytest.raises(ValueError, match="a shard is K/N"):
        parse_shard(text)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--jobs", "0"], "must be a whole number ≥ 1, not 0"),
        (["--shard", "3/2"], "a shard is K/N"),
        (["--memory-limit", "lots"], "memory limit must be like 4G"),
    ],
)
def test_cli_rejects_bad_options_naming_them(
    option: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["autograde", "anything", *option])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_an_interrupt_stops_the_parallel_workers(course: Path, tmp_path: Path) -> None:
    """The first grade is interrupted while a slow submission is still being graded: its worker
    stops at once, rather than after the submission's 60 s."""
    slow = "import time\ntime.sleep(60)\ndef double(x):\n    return 2 * x"
    paths = [submit(solved(), tmp_path, "alice"), submit(solved(double=slow), tmp_path, "slow"),
             submit(solved(double=slow), tmp_path, "slower")]
    tasks = [Task(position, path, course, path.as_posix()) for position, path in enumerate(paths)]
    seen: list[str] = []

    def interrupt(result: object) -> None:
        seen.append(str(result))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        batch.grade_all(tasks, batch.Limits(), jobs=2, on_result=interrupt)
    assert len(seen) == 1
    workers = [child.pid for child in multiprocessing.active_children()]
    deadline = time.monotonic() + 10
    while any(map(_running, workers)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(_running, workers))


def _running(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie does not: it has exited, unreaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")
