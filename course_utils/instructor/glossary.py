"""Glossary.md: every formal definition of the notebooks, verbatim, in course order.

A definition is a Markdown blockquote whose first line starts with ``> **Term**``. The glossary
is generated, never edited by hand: ``python -m course_utils.instructor.glossary`` rewrites it, and
``--check`` (used by the tests) fails when it is out of step with the notebooks.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

_TERM = re.compile(r"^> \*\*(.+?)\*\*")
HEADER = (
    "# Glossary\n\n"
    "Every term the course defines, in the words of the notebook that defines it, in course "
    "order.\nGenerated from the notebooks by `python -m course_utils.instructor.glossary`; do not edit by "
    "hand.\n"
)


def extract_definitions(markdown: str) -> list[str]:
    """The definition blockquotes of a Markdown text, each as its lines joined by newlines."""
    definitions, current = [], None
    for line in markdown.splitlines():
        if current is None and _TERM.match(line):
            current = [line]
        elif current is not None and line.startswith(">"):
            current.append(line)
        elif current is not None:
            definitions.append("\n".join(current))
            current = None
    if current is not None:
        definitions.append("\n".join(current))
    return definitions


def notebook_definitions(path: Path) -> tuple[str, list[str]]:
    """The notebook's title (its first heading) and its definitions in order of appearance."""
    cells = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
    markdown = ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
    title = next((line.lstrip("# ").strip() for text in markdown for line in text.splitlines()
                  if line.startswith("# ")), Path(path).stem)
    return title, [d for text in markdown for d in extract_definitions(text)]


def render_glossary(notebooks_dir: str | Path = "notebooks") -> str:
    """The text of Glossary.md for the complete notebooks in ``notebooks_dir``."""
    parts = [HEADER]
    for path in sorted(Path(notebooks_dir).glob("*.ipynb")):
        title, definitions = notebook_definitions(path)
        if definitions:
            parts.append(f"\n## [{title}](notebooks/{path.name})\n")
            parts.extend(f"\n{definition}\n" for definition in definitions)
    return "".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.instructor.glossary", description=__doc__)
    parser.add_argument("--notebooks", default="notebooks", help="folder of complete notebooks")
    parser.add_argument("--output", default="Glossary.md")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if the glossary is out of date")
    args = parser.parse_args(argv)
    text = render_glossary(args.notebooks)
    output = Path(args.output)
    if args.check:
        if not output.is_file() or output.read_text(encoding="utf-8") != text:
            print(f"{output} is out of date: run python -m course_utils.instructor.glossary")
            return 1
        print(f"{output} is up to date.")
        return 0
    output.write_text(text, encoding="utf-8")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
