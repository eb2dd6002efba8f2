"""Exercise checks (``check_*``), the student-version builder and the instructors' command line.

``python -m course_utils.grading build-student`` writes ``notebooks/student/``.
"""

from course_utils.grading.checks import *  # noqa: F401,F403  (every check_* function)
from course_utils.grading.checks import __all__
