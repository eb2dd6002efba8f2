"""Unit tests of course_utils.device: choosing the device and seeding every generator."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from course_utils.device import get_device, set_seed

# ------------------------------------------------------------------------------- get_device


@pytest.fixture
def no_override(monkeypatch):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)


def fake_accelerators(monkeypatch, cuda: bool, mps: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


@pytest.mark.parametrize("value, expected", [
    ("cpu", torch.device("cpu")),
    ("  cpu\n", torch.device("cpu")),
    ("cuda", torch.device("cuda")),
    ("cuda:1", torch.device("cuda", 1)),
    ("mps", torch.device("mps")),
])
def test_course_device_overrides(monkeypatch, value, expected):
    # The override wins even over an available accelerator.
    fake_accelerators(monkeypatch, cuda=True, mps=True)
    monkeypatch.setenv("COURSE_DEVICE", value)
    device = get_device()
    assert isinstance(device, torch.device)
    assert device == expected


@pytest.mark.parametrize("value", ["gpu", "tpu", "CUDA", "cpu0", "npu:0"])
def test_course_device_invalid_lists_valid_names(monkeypatch, value):
    monkeypatch.setenv("COURSE_DEVICE", value)
    with pytest.raises(ValueError) as info:
        get_device()
    message = str(info.value)
    assert "COURSE_DEVICE" in message
    assert repr(value) in message
    for name in ("cpu", "cuda", "mps"):
        assert name in message


def test_course_device_bad_index_is_a_value_error_naming_the_variable(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cuda:abc")
    with pytest.raises(ValueError, match="COURSE_DEVICE"):
        get_device()


def test_empty_override_means_automatic(monkeypatch):
    fake_accelerators(monkeypatch, cuda=False, mps=False)
    monkeypatch.setenv("COURSE_DEVICE", "  ")
    assert get_device() == torch.device("cpu")


def test_unset_is_cpu_on_this_machine(no_override):
    if torch.cuda.is_available() or torch.backends.mps.is_available():
        pytest.skip("this machine has an accelerator")
    assert get_device() == torch.device("cpu")


def test_unset_prefers_cuda_over_mps(monkeypatch, no_override):
    fake_accelerators(monkeypatch, cuda=True, mps=True)
    assert get_device() == torch.device("cuda")


def test_unset_uses_mps_when_no_cuda(monkeypatch, no_override):
    fake_accelerators(monkeypatch, cuda=False, mps=True)
    assert get_device() == torch.device("mps")


def test_unset_falls_back_to_cpu(monkeypatch, no_override):
    fake_accelerators(monkeypatch, cuda=False, mps=False)
    assert get_device() == torch.device("cpu")


# ------------------------------------------------------------------------------- set_seed


def draws() -> tuple:
    return (
        [random.random() for _ in range(3)],
        np.random.rand(3).tolist(),
        torch.rand(3).tolist(),
        torch.randint(0, 1000, (3,)).tolist(),
    )


@pytest.mark.parametrize("seed", [0, 123, 2**32 - 1])
def test_set_seed_reproduces_random_numpy_and_torch(seed):
    set_seed(seed)
    first = draws()
    set_seed(seed)
    second = draws()
    assert first == second


def test_set_seed_different_seeds_give_different_draws():
    set_seed(1)
    first = draws()
    set_seed(2)
    second = draws()
    for a, b in zip(first, second):
        assert a != b


def test_set_seed_makes_cudnn_deterministic(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", False)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    set_seed(0)
    assert torch.backends.cudnn.deterministic is True
    assert torch.backends.cudnn.benchmark is False


def test_set_seed_accepts_numpy_integers():
    set_seed(np.int64(7))
    first = draws()
    set_seed(np.int64(7))
    assert draws() == first


@pytest.mark.parametrize("seed", [1.0, "0", None, True, False, [0], np.float64(3.0)])
def test_set_seed_rejects_non_int(seed):
    with pytest.raises(TypeError, match="seed"):
        set_seed(seed)
