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
