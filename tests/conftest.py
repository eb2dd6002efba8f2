"""Fixtures shared by the unit tests."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """One PyTorch thread for every unit test: the networks are tiny, and on a shared CPU extra
    threads only contend (an update takes 6 ms with 2 threads, 1 ms with 1)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
