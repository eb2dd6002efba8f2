"""Schedules: a number that changes with the training step, such as ε or a noise scale.

A schedule is any function ``step -> value``. The two here cover the course's needs::

    epsilon = linear_schedule(start=1.0, end=0.05, duration=10_000)
    epsilon(0), epsilon(5_000), epsilon(50_000)    # 1.0, 0.525, 0.05
"""

from __future__ import annotations

import math
from typing import Callable

from course_utils.validation import check_int

Schedule = Callable[[int], float]


def linear_schedule(start: float, end: float, duration: int) -> Schedule:
    """``start`` at step 0, then a straight line to ``end`` at step ``duration``, then ``end``."""
    duration = check_int("duration", duration)

    def value(step: int) -> float:
        fraction = min(max(step, 0) / duration, 1.0)
        return start + fraction * (end - start)

    return value


def exponential_schedule(start: float, end: float, decay_steps: float) -> Schedule:
    """``end + (start − end) · exp(−step / decay_steps)``: the PyTorch DQN tutorial's ε."""
    if not decay_steps > 0:
        raise ValueError(f"decay_steps must be > 0, got {decay_steps!r}")

    def value(step: int) -> float:
        return end + (start - end) * math.exp(-max(step, 0) / decay_steps)

    return value
