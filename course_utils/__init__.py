"""course_utils: the small package every notebook of the course imports.

Modules (each with one job): ``device`` (get_device, set_seed), ``nn`` (MLPConfig, build_mlp),
``trajectory`` (experiences, trajectories, sampling), ``returns`` (sum of rewards, reward-to-go,
GAE), ``buffers`` (replay memory), ``tracking`` (Tracker, the shared bookkeeping of every training loop),
``render`` (animations of episodes),
``agents`` (one reference file per algorithm), ``envs`` (the course's environments), ``checks``
(the exercise checks), ``instructor`` (student versions, autograding, the glossary),
``validation`` (argument checks).
"""

from course_utils.device import get_device, set_seed
from course_utils.nn import MLPConfig, build_mlp, from_numpy, to_numpy

__all__ = ["get_device", "set_seed", "MLPConfig", "build_mlp", "from_numpy", "to_numpy"]
__version__ = "0.1.0"
