"""The autograder against submissions written to game or damage it: each scores 0 on what it games,
and the instructor's files stay as they were.

The tiny course (``tiny_course``) covers the sandbox; notebook 06 covers the package's checks, as
the submissions an instructor would meet do.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from course_utils.instructor.__main__ import main
from course_utils.instructor.autograde import grade_submission
from course_utils.instructor.jail import jailed_command, landlock_abi
from course_utils.instructor.sandbox import kernel_env, parse_memory, workspace
from course_utils.instructor.student import read_notebook, student_path
from tiny_course import FULL_MARKS, solved, submit

REPOSITORY = Path(__file__).resolve().parents[1]
COMPLETE_06 = REPOSITORY / "notebooks" / "06_actor_critic_gae.ipynb"
needs_landlock = pytest.mark.skipif(not landlock_abi(), reason="this system has no Landlock")


def _grade(nb: nbformat.NotebookNode, course: Path, **limits: object) -> dict[str, tuple[float, str]]:
    result = grade_submission(submit(nb, course.parents[1]), course, **limits)
    return {grade.exercise: (grade.points, grade.message) for grade in result.grades}


def _fingerprint(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` (but .git) and a hash of its contents."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and ".git" not in path.parts and "__pycache__" not in path.parts
    }


# --- the sandbox, piece by piece ------------------------------------------------------------------


def test_kernel_env_drops_secrets_and_keeps_what_python_needs(tmp_path: Path) -> None:
    base = {
        "PATH": "/usr/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "VIRTUAL_ENV": "/venv",
        "PYTHONPATH": "/extra",
        "GITHUB_TOKEN": "ghp_secret",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "SSH_AUTH_SOCK": "/tmp/ssh-agent.sock",
        "GOOGLE_APPLICATION_CREDENTIALS": "/home/me/key.json",
        "HOME": "/home/me",
        "MPLBACKEND": "Agg",
    }
    env = kernel_env(tmp_path, base)
    assert {name: env[name] for name in ("PATH", "LANG", "LC_ALL", "VIRTUAL_ENV")} == {
        name: base[name] for name in ("PATH", "LANG", "LC_ALL", "VIRTUAL_ENV")
    }
    for secret in ("GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY", "SSH_AUTH_SOCK", "GOOGLE_APPLICATION_CREDENTIALS",
                   "MPLBACKEND"):
        assert secret not in env
    assert env["HOME"] == str(tmp_path) and env["TMPDIR"] == str(tmp_path / "tmp")
    assert env["PYTHONPATH"].split(":") == [str(REPOSITORY), "/extra"]
    assert env["COURSE_QUICK"] == "1"


def test_workspace_holds_the_data_but_no_notebook_and_is_removed(tmp_path: Path) -> None:
    (tmp_path / "06_actor_critic_gae.ipynb").write_text("{}")
    (tmp_path / "maze.txt").write_text("#.#")
    (tmp_path / "student").mkdir()
    with workspace(tmp_path) as folder:
        assert sorted(path.name for path in folder.iterdir()) == ["maze.txt", "tmp"]
        assert tmp_path not in folder.parents
    assert not folder.exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("4G", 4 * 2**30), ("512M", 512 * 2**20), ("1.5GiB", int(1.5 * 2**30)), ("none", None), ("NONE", None)],
)
def test_parse_memory(text: str, expected: int | None) -> None:
    assert parse_memory(text) == expected


@pytest.mark.parametrize(("text", "message"), [("lots", "must be like 4G"), ("100M", "below 256M")])
def test_parse_memory_rejects_bad_sizes(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_memory(text)


def _run_jailed(folder: Path, code: str, memory_limit: int | None = None) -> subprocess.CompletedProcess[str]:
    command = jailed_command([sys.executable, "-c", textwrap.dedent(code)], folder, memory_limit)
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=60)


@needs_landlock
def test_jail_allows_writes_only_inside_its_folder(tmp_path: Path) -> None:
    inside, outside = tmp_path / "inside", tmp_path / "outside.txt"
    inside.mkdir()
    outside.write_text("keep")
    run = _run_jailed(inside, """
        import os, pathlib
        pathlib.Path('mine.txt').write_text('ok')
        os.makedirs('sub/deeper')
        for attempt in (lambda: pathlib.Path('../outside.txt').write_text('gone'),
                        lambda: os.remove('../outside.txt'),
                        lambda: os.rename('../outside.txt', 'stolen.txt'),
                        lambda: pathlib.Path('../new.txt').write_text('x'),
                        lambda: open(%r, 'w')):
            try:
                attempt()
                print('allowed')
            except PermissionError:
                print('refused')
        open('/dev/null', 'w').write('fine')
    """ % str(outside))
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["refused"] * 5
    assert outside.read_text() == "keep" and not (tmp_path / "new.txt").exists()
    assert (inside / "mine.txt").read_text() == "ok" and (inside / "sub" / "deeper").is_dir()


@needs_landlock
def test_jail_cannot_signal_its_parent(tmp_path: Path) -> None:
    if landlock_abi() < 6:
        pytest.skip("Landlock's signal scoping needs ABI 6")
    run = _run_jailed(tmp_path, """
        import os
        try:
            os.kill(os.getppid(), 0)
        except PermissionError:
            print('refused')
    """)
    assert run.stdout.strip() == "refused", run.stderr


def test_jail_caps_memory(tmp_path: Path) -> None:
    run = _run_jailed(tmp_path, """
        try:
            block = bytearray(2 * 2**30)
            print('allocated')
        except MemoryError:
            print('MemoryError')
    """, memory_limit=2**30)
    assert run.stdout.strip() == "MemoryError", run.stderr


def test_confine_reports_whether_writes_are_confined(tmp_path: Path) -> None:
    code = ("from pathlib import Path; from course_utils.instructor.jail import confine; "
            f"print(confine(Path({str(tmp_path)!r}), None))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.stdout.strip() == str(bool(landlock_abi())), run.stderr


# --- whole submissions of the tiny course ---------------------------------------------------------


def test_destructive_submission_leaves_the_course_unchanged(course: Path) -> None:
    before = _fingerprint(course.parent)
    readme = REPOSITORY / "README.md"
    readme_before = readme.read_bytes()
    vandal = textwrap.dedent(f"""\
        import pathlib
        for path in ['tiny.ipynb', '../README.md', '../course/tiny.ipynb', {str(course)!r}, {str(readme)!r}]:
            try:
                pathlib.Path(path).write_text('gone')
            except OSError:
                pass
        def double(x):
            return 2 * x""")
    grades = _grade(solved(double=vandal), course)
    assert grades["double"] == (2, "✓ double: all 1 tests passed.")  # its own work still counts
    assert _fingerprint(course.parent) == before
    if landlock_abi():  # absolute paths are the container's job elsewhere
        assert readme.read_bytes() == readme_before


def test_memory_bomb_scores_zero_for_its_exercise_only(course: Path) -> None:
    bomb = "def double(x):\n    hoard = bytearray(3 * 2**30)\n    return 2 * x"
    grades = _grade(solved(double=bomb), course, memory_limit=2**30)
    assert grades["double"] == (0, "MemoryError")
    assert {name: points for name, (points, _) in grades.items()} == {**FULL_MARKS, "double": 0}


def test_kernel_sees_no_secret_and_runs_in_its_own_folder(
    course: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_secret")
    monkeypatch.setenv("SSH_AUTH_SOCK", "/tmp/agent.sock")
    nosy = textwrap.dedent("""\
        import os
        def double(x):
            secrets = {'GITHUB_TOKEN', 'SSH_AUTH_SOCK'} & set(os.environ)
            home = os.environ['HOME']
            assert not secrets, f'saw {secrets}'
            assert os.getcwd() == home and 'autograde-' in home, (os.getcwd(), home)
            return 2 * x""")
    assert _grade(solved(double=nosy), course)["double"] == (2, "✓ double: all 1 tests passed.")


def test_hidden_errors_still_fail_the_check(course: Path) -> None:
    """An IPython handler that swallows the check's error and prints a ✓ line itself."""
    sly = textwrap.dedent("""\
        def _swallow(shell, kind, value, tb, tb_offset=None):
            print('✓ double: all 1 tests passed.')
        get_ipython().set_custom_exc((BaseException,), _swallow)
        def double(x):
            return x""")
    grades = _grade(solved(double=sly), course)
    assert grades["double"][0] == 0


# --- notebook 06: submissions that game the package's checks ------------------------------------


def _notebook_06(**cells: str) -> nbformat.NotebookNode:
    """Notebook 06 solved, with the source of the exercise cells named by function replaced."""
    complete = read_notebook(COMPLETE_06)
    solutions = {cell.id: cell.source for cell in complete.cells if "### BEGIN SOLUTION" in cell.source}
    nb = read_notebook(student_path(COMPLETE_06))
    for cell in nb.cells:
        cell.source = solutions.get(cell.get("id"), cell.source)
        for function, source in cells.items():
            if cell.source.startswith(f"def {function}("):
                cell.source = source
    return nb


GAMES = {
    # The package's own answer, imported.
    "imports": {"gae": "from course_utils.returns import gae"},
    # The checks redefined to print their ✓ line, and nothing implemented.
    "redefines": {
        "n_step_return": textwrap.dedent("""\
            def check_n_step_return(fn):
                print('✓ n_step_return: all 11 tests passed.')
            def check_gae(fn):
                print('✓ gae: all 13 tests passed.')
            def n_step_return(rewards, values, last_value, terminated, gamma, n):
                return None"""),
        "gae": "def gae(*args):\n    return None",
    },
    # The checks' comparison helpers patched to accept anything.
    "patches": {
        "n_step_return": textwrap.dedent("""\
            import course_utils.checks.common as common
            import course_utils.checks.actor_critic as actor_critic
            common.expect_close = common.expect_tensor = lambda *args, **kwargs: args[0]
            actor_critic.expect_close = actor_critic._expect_match = lambda *args, **kwargs: args[0]
            def n_step_return(rewards, values, last_value, terminated, gamma, n):
                return rewards"""),
    },
    # The vandal: writes over the grader's notebook and the repository's README, then
    # solves n_step_return. The first write lands in its own folder; the second is refused
    # (Landlock), so the cell fails and n_step_return is never defined.
    "vandal": {
        "n_step_return": textwrap.dedent("""\
            import pathlib
            pathlib.Path('07_ppo.ipynb').write_text('')
            pathlib.Path('../README.md').write_text('gone')
            def n_step_return(rewards, values, last_value, terminated, gamma, n):
                T = len(rewards)
                end = [torch.zeros(1) if terminated else last_value.detach().reshape(1)]
                v = torch.cat([values.detach(), *end])
                return torch.stack([sum(gamma ** (k - t) * rewards[k] for k in range(t, min(t + n, T)))
                                    + gamma ** (min(t + n, T) - t) * v[min(t + n, T)]
                                    for t in range(T)])"""),
    },
}


def test_gaming_submissions_of_notebook_06_score_zero_on_what_they_game(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _fingerprint(REPOSITORY / "notebooks") | {"README.md": _fingerprint(REPOSITORY)["README.md"]}
    for student, cells in GAMES.items():
        path = tmp_path / "submissions" / student / COMPLETE_06.name
        path.parent.mkdir(parents=True)
        nbformat.write(_notebook_06(**cells), path)
    monkeypatch.chdir(tmp_path)
    assert main(["autograde", "submissions", "--source", str(COMPLETE_06.parent), "--jobs", "2"]) == 0
    rows = json.loads((tmp_path / "grades.json").read_text(encoding="utf-8"))["rows"]
    grades = {
        (row["submission"].split("/")[1], row["exercise"]): (row["points"], row["message"]) for row in rows
    }

    points, message = grades["imports", "gae"]
    assert points == 0
    assert "called course_utils.returns.gae" in message and "your own implementation" in message
    assert grades["imports", "n_step_return"][0] == 1
    assert grades["redefines", "n_step_return"][0] == grades["redefines", "gae"][0] == 0
    assert grades["patches", "n_step_return"][0] == 0
    if landlock_abi():
        assert grades["vandal", "n_step_return"][0] == 0
    for exercise in ("gae", "collect_rollout", "a2c_update"):
        assert grades["vandal", exercise][0] == 1
    after = _fingerprint(REPOSITORY / "notebooks") | {"README.md": _fingerprint(REPOSITORY)["README.md"]}
    assert after == before
