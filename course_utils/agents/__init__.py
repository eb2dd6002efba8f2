"""One file per algorithm, each readable top to bottom: its config, networks, update step and
``train``. Import from the algorithm's module, e.g. ``from course_utils.agents.ppo import train``."""
