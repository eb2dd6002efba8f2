"""Glossary.md holds every `> **Term**` definition of the notebooks, verbatim and in order."""

import json
from pathlib import Path

from course_utils.instructor.glossary import extract_definitions, main, render_glossary

ROOT = Path(__file__).resolve().parent.parent


def test_extract_definitions_keeps_multiline_blockquotes_and_skips_other_quotes():
    text = (
        "Intro.\n\n> **Policy** A mapping\n> from observations.\n\n"
        "> Just a quote, not a definition.\n\n> **Agent** The learner."
    )
    assert extract_definitions(text) == [
        "> **Policy** A mapping\n> from observations.",
        "> **Agent** The learner.",
    ]


def test_glossary_is_in_step_with_the_notebooks():
    expected = render_glossary(ROOT / "notebooks")
    actual = (ROOT / "Glossary.md").read_text(encoding="utf-8")
    assert actual == expected, "Glossary.md is out of date: run `python -m course_utils.instructor.glossary`"


def test_every_notebook_definition_appears_verbatim_in_the_glossary():
    glossary = (ROOT / "Glossary.md").read_text(encoding="utf-8")
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        for cell in cells:
            if cell["cell_type"] == "markdown":
                for definition in extract_definitions("".join(cell["source"])):
                    assert definition in glossary, f"{path.name}: missing from Glossary.md:\n{definition}"


def test_check_mode_reports_a_stale_glossary(tmp_path, capsys):
    stale = tmp_path / "Glossary.md"
    stale.write_text("# Glossary\n", encoding="utf-8")
    assert main(["--notebooks", str(ROOT / "notebooks"), "--output", str(stale), "--check"]) == 1
    assert "out of date" in capsys.readouterr().out
    assert main(["--notebooks", str(ROOT / "notebooks"), "--output", str(stale)]) == 0
    assert main(["--notebooks", str(ROOT / "notebooks"), "--output", str(stale), "--check"]) == 0


def _defined_terms(notebooks_dir: Path) -> dict[str, list[str]]:
    """Each defined term (case-insensitive) -> the notebooks that define it."""
    terms: dict[str, list[str]] = {}
    for path in sorted(notebooks_dir.glob("*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] == "markdown":
                for definition in extract_definitions("".join(cell["source"])):
                    term = definition.split("**")[1].lower()
                    terms.setdefault(term, []).append(path.name)
    return terms


def test_every_term_is_defined_once_in_the_course():
    """A later notebook recalls a term in plain text; defining it again would give the glossary
    two entries, possibly with two meanings."""
    twice = {term: where for term, where in _defined_terms(ROOT / "notebooks").items()
             if len(where) > 1}
    assert not twice, f"terms defined more than once: {twice}"


def test_a_term_defined_twice_is_found(tmp_path):
    cell = {"cell_type": "markdown", "metadata": {}, "source": ["> **Return** The sum.\n"]}
    for name in ("a.ipynb", "b.ipynb"):
        (tmp_path / name).write_text(json.dumps({"cells": [cell]}), encoding="utf-8")
    assert _defined_terms(tmp_path) == {"return": ["a.ipynb", "b.ipynb"]}
