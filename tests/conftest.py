"""Fixtures shared by the unit tests."""

from pathlib import Path

import nbformat
import pytest
import torch

import tiny_course


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """One PyTorch thread for every unit test: the networks are tiny, and on a shared CPU extra
    threads only contend (an update takes 6 ms with 2 threads, 1 ms with 1)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def course(tmp_path: Path) -> Path:
    """The tiny course's complete notebook (``tiny_course``), written to ``course/tiny.ipynb``."""
    path = tmp_path / "course" / tiny_course.NAME
    path.parent.mkdir()
    nbformat.write(tiny_course.complete_notebook(), path)
    return path
