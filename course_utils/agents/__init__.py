"""Reference agents, built from pluggable parts so that students' own functions can train them."""

from course_utils.agents.base import Agent, Policy, RandomAgent, RandomPolicy
from course_utils.agents.pg import PGAgent, PGPolicy, baseline_advantage, policy_gradient_loss

__all__ = ["Agent", "Policy", "RandomAgent", "RandomPolicy", "PGAgent", "PGPolicy",
           "baseline_advantage", "policy_gradient_loss"]
