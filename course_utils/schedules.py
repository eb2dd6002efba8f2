"""Schedules: a number that changes with the training step, such as ε or a noise scale.

A schedule is any function ``step -> value``. The linear one covers the older agents' needs::

    epsilon = linear_schedule(start=1.0, end=0.05, duration=10_000)
    epsilon(0), epsilon(5_000), epsilon(50_000)    # 1.0, 0.525, 0.05
"""

from __future__ import annotations

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
