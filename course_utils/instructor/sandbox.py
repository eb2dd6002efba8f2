"""Where and how a submission runs: its own temporary folder, a clean environment, a confined kernel.

Each submission runs in a fresh temporary folder (:func:`workspace`) that holds only copies of its
notebook's data files, never the complete notebooks, and that is both the kernel's working folder
and its HOME. The kernel's environment (:func:`kernel_env`) keeps only what Python and the course
need, so tokens, SSH agent sockets and cloud credentials of the instructor's shell never reach it.
The kernel itself starts confined (:class:`JailedKernelManager`, see
:mod:`course_utils.instructor.jail`): it can write only inside that folder, and its memory is capped.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager

from course_utils.instructor import jail

__all__ = [
    "DEFAULT_MEMORY_LIMIT",
    "JailedKernelManager",
    "jailed_kernel_manager",
    "kernel_env",
    "parse_memory",
    "workspace",
]

DEFAULT_MEMORY_LIMIT = 4 * 2**30  # bytes of address space per kernel; a quick-mode notebook uses < 2 GiB
# Environment variables a kernel keeps: where Python and its libraries are, locale, and the settings
# that change how numerical libraries run (threads, devices). Everything else, secrets included, is
# dropped.
_KEPT_VARIABLES = {
    "PATH", "LANG", "LANGUAGE", "TZ", "TERM", "PYTHONPATH", "VIRTUAL_ENV", "CONDA_PREFIX",
    "CONDA_DEFAULT_ENV", "LD_LIBRARY_PATH", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "CUDA_VISIBLE_DEVICES",
    "COURSE_DEVICE",
}
_KEPT_PREFIXES = ("LC_",)
# The folder that holds course_utils: the kernel imports the same course_utils as the grader.
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def parse_memory(text: str) -> int | None:
    """A memory limit as a user writes it: ``4G``, ``512M``, ``1500000000`` (bytes) or ``none``.

    Raises ValueError naming the text otherwise.
    """
    if text.strip().lower() == "none":
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", text, re.IGNORECASE)
    if not match:
        raise ValueError(f"memory limit must be like 4G, 512M, a number of bytes, or none; not {text!r}")
    number, unit = float(match.group(1)), match.group(2).upper()
    limit = int(number * 1024 ** " KMGT".index(unit or " "))
    if limit < 2**28:
        raise ValueError(f"memory limit {text!r} is below 256M: a kernel with PyTorch cannot start")
    return limit


@contextmanager
def workspace(data_folder: Path) -> Iterator[Path]:
    """A fresh folder for one submission, inside a temporary folder removed on leaving.

    It holds copies of the regular files of ``data_folder`` (the complete notebook's folder) that
    are not notebooks: the data a notebook may read by relative path.
    """
    with tempfile.TemporaryDirectory(prefix="autograde-") as temporary:
        # One level down, so that where writes cannot be confined, ``../x`` still lands in the
        # temporary folder.
        folder = Path(temporary).resolve() / "submission"
        (folder / "tmp").mkdir(parents=True)
        for item in sorted(data_folder.iterdir()):
            if item.is_file() and not item.is_symlink() and item.suffix != ".ipynb":
                shutil.copy2(item, folder / item.name)
        yield folder


def kernel_env(folder: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a kernel that runs in ``folder``: the variables of ``base`` (default:
    this process's) that Python and the course need, HOME and TMPDIR inside ``folder``, quick
    mode, headless rendering."""
    base = dict(os.environ) if base is None else base
    env = {
        name: value
        for name, value in base.items()
        if name in _KEPT_VARIABLES or name.startswith(_KEPT_PREFIXES)
    }
    paths = [str(_PACKAGE_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env.update(
        HOME=str(folder),
        TMPDIR=str(folder / "tmp"),
        PYTHONPATH=os.pathsep.join(dict.fromkeys(paths)),
        PYTHONDONTWRITEBYTECODE="1",  # the package's folders are not writable from the kernel
        COURSE_QUICK="1",
        SDL_VIDEODRIVER="dummy",
    )
    return env


class JailedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernels start confined to :attr:`writable` with :attr:`memory_limit`
    (set them on a subclass: :func:`jailed_kernel_manager`)."""

    writable: Path
    memory_limit: int | None = None

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        command = super().format_kernel_cmd(extra_arguments)
        if sys.platform == "win32":  # no rlimits, no Landlock: only the working folder separates
            return command
        return jail.jailed_command(command, self.writable, self.memory_limit)


def jailed_kernel_manager(writable: Path, memory_limit: int | None) -> type[JailedKernelManager]:
    """The kernel manager class for kernels confined to ``writable`` with ``memory_limit`` bytes."""
    return type("JailedKernelManager", (JailedKernelManager,),
                {"writable": writable, "memory_limit": memory_limit})
