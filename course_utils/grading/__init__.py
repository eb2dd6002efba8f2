"""Exercise checks (``check_*``), the student-version builder and the instructors' command line.

``python -m course_utils.grading build-student`` writes ``notebooks/student/``.
"""

from course_utils.grading.checks import (
    check_baseline_advantage,
    check_discounted_reward_to_go,
    check_reward_to_go,
    check_surrogate_loss,
)

__all__ = [
    "check_baseline_advantage",
    "check_discounted_reward_to_go",
    "check_reward_to_go",
    "check_surrogate_loss",
]
