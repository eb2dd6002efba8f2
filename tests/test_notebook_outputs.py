"""The committed notebooks' outputs read cleanly and stay small (what a student opens first).

A loop's progress is one line (``TrainingRun`` and ``progress`` update one output in place), never
a stream of bar refreshes and never on stderr, where JupyterLab shows it on a red background.
Animations are GIFs of at most about 200 KB, and a notebook stays under 1.5 MB.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
MAX_STREAMS_PER_CELL = 8  # a few printed lines between plots, e.g. one per seed
MAX_NOTEBOOK_BYTES = 1_500_000
MAX_IMAGE_BYTES = 250_000  # a decoded PNG or GIF


def _cells(path: Path) -> list[dict]:
    return [cell for cell in json.loads(path.read_text())["cells"] if cell["cell_type"] == "code"]


def _problems(path: Path) -> list[str]:
    problems = []
    size = path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        problems.append(f"{size / 1e6:.2f} MB (at most {MAX_NOTEBOOK_BYTES / 1e6} MB)")
    for index, cell in enumerate(_cells(path)):
        outputs = cell.get("outputs", [])
        streams = [o for o in outputs if o["output_type"] == "stream"]
        if len(streams) > MAX_STREAMS_PER_CELL:
            problems.append(f"code cell {index}: {len(streams)} stream outputs")
        for output in streams:
            text = "".join(output["text"])
            if output["name"] == "stderr" and ("%|" in text or "it/s" in text):
                problems.append(f"code cell {index}: a progress bar on stderr: {text[:60]!r}")
        for output in outputs:
            for mime, data in output.get("data", {}).items():
                if mime.startswith("image/") and mime != "image/svg+xml":
                    image_bytes = len(base64.b64decode("".join(data)))
                    if image_bytes > MAX_IMAGE_BYTES:
                        problems.append(f"code cell {index}: a {image_bytes / 1e3:.0f} KB {mime}")
                if mime == "text/html" and "<script" in "".join(data):
                    problems.append(f"code cell {index}: HTML with a script (an untrusted "
                                    "notebook shows it broken)")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_committed_outputs_are_tidy_and_small(path: Path):
    problems = _problems(path)
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)


def test_the_check_finds_what_it_looks_for(tmp_path: Path):
    bar = {"output_type": "stream", "name": "stderr", "text": ["runs:  50%|█    | 1/2 [00:01<00:01, 1.0it/s]"]}
    line = {"output_type": "stream", "name": "stdout", "text": ["seed 0: solved\n"]}
    script = {"output_type": "display_data", "metadata": {},
              "data": {"text/html": ["<div></div><script>animation()</script>"]}}
    big = {"output_type": "display_data", "metadata": {},
           "data": {"image/gif": base64.b64encode(b"G" * 300_000).decode()}}
    notebook = {"cells": [{"cell_type": "code", "source": [], "metadata": {},
                           "outputs": [line] * 9 + [bar, script, big]}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "messy.ipynb"
    path.write_text(json.dumps(notebook))
    found = "\n".join(_problems(path))
    assert "10 stream outputs" in found and "progress bar on stderr" in found
    assert "script" in found and "300 KB image/gif" in found and "MB" not in found
    path.write_text(json.dumps(notebook) + " " * MAX_NOTEBOOK_BYTES)
    assert any("MB" in problem for problem in _problems(path))
