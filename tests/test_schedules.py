"""Unit tests of course_utils.schedules: linear_schedule."""

from __future__ import annotations


import numpy as np
import pytest

from course_utils.schedules import linear_schedule


def test_linear_schedule_values():
    epsilon = linear_schedule(start=1.0, end=0.05, duration=10_000)
    assert epsilon(0) == 1.0
    assert epsilon(2_500) == pytest.approx(0.7625, abs=1e-12)
    assert epsilon(5_000) == pytest.approx(0.525, abs=1e-12)
    assert epsilon(10_000) == pytest.approx(0.05, abs=1e-12)
    assert epsilon(10_001) == pytest.approx(0.05, abs=1e-12)
    assert epsilon(10**9) == pytest.approx(0.05, abs=1e-12)
    assert epsilon(-5) == 1.0  # before the start: the start value


def test_linear_schedule_increasing_and_numpy_steps():
    noise = linear_schedule(start=0.0, end=2.0, duration=4)
    assert [noise(step) for step in range(6)] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.0]
    assert noise(np.int64(3)) == 1.5


def test_linear_schedule_is_monotonic():
    epsilon = linear_schedule(1.0, 0.1, 100)
    values = [epsilon(step) for step in range(0, 150)]
    assert all(a >= b for a, b in zip(values, values[1:]))
    assert values[0] == 1.0 and values[-1] == pytest.approx(0.1)


def test_linear_schedule_duration_one():
    schedule = linear_schedule(3.0, 1.0, 1)
    assert [schedule(step) for step in (-1, 0, 1, 2)] == [3.0, 3.0, 1.0, 1.0]


@pytest.mark.parametrize("duration", [0, -10, 2.5, "100", None, True])
def test_linear_schedule_bad_duration(duration):
    with pytest.raises(ValueError, match="duration must be an int >= 1"):
        linear_schedule(1.0, 0.0, duration)
