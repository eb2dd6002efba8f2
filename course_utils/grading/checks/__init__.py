"""Exercise checks, one module per notebook; ``common`` holds what they share."""

from course_utils.grading.checks.policy_gradient import (
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
