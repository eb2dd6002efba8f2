"""pytest configuration shared by the unit tests and nbval's notebook runs.

Notebooks executed by ``pytest`` run in quick mode (small training budgets) and headless. The
kernels nbval starts inherit this process's environment, so setting it here is enough.
"""

import os

os.environ["COURSE_QUICK"] = "1"
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.pop("MPLBACKEND", None)  # the kernels use the inline backend, as a student's would
