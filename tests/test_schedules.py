"""Unit tests of course_utils.schedules: linear_schedule and exponential_schedule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from course_utils.schedules import exponential_schedule, linear_schedule


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


def test_exponential_schedule_values():
    epsilon = exponential_schedule(start=0.9, end=0.05, decay_steps=1000)
    assert epsilon(0) == pytest.approx(0.9, abs=1e-12)
    assert epsilon(1000) == pytest.approx(0.05 + 0.85 * math.exp(-1), abs=1e-12)
    assert epsilon(500) == pytest.approx(0.05 + 0.85 * math.exp(-0.5), abs=1e-12)
    assert epsilon(100_000) == pytest.approx(0.05, abs=1e-12)
    assert epsilon(-100) == pytest.approx(0.9, abs=1e-12)  # negative steps count as 0
    values = [epsilon(step) for step in range(0, 5000, 100)]
    assert all(a > b for a, b in zip(values, values[1:]))


def test_exponential_schedule_float_decay():
    schedule = exponential_schedule(1.0, 0.0, 2.5)
    assert schedule(5) == pytest.approx(math.exp(-2.0), abs=1e-12)


@pytest.mark.parametrize("decay_steps", [0, -1, 0.0, float("nan")])
def test_exponential_schedule_bad_decay_steps(decay_steps):
    with pytest.raises(ValueError, match="decay_steps must be > 0"):
        exponential_schedule(1.0, 0.0, decay_steps)
