"""Confine a grading kernel: writes only below its folder, a memory limit, no signals outward.

``python course_utils/instructor/jail.py --writable DIR [--memory-limit BYTES] -- COMMAND...`` confines
itself, then becomes COMMAND (``exec``), which keeps the confinement and passes it to every process
it starts. The autograder starts each kernel this way
(:class:`course_utils.instructor.sandbox.JailedKernelManager`).

What it confines
    * **Writes**: on Linux 5.13 or newer (Landlock), files and folders can be created, written,
      renamed or deleted only below ``DIR`` (and in ``/dev/shm``, writes to devices such as
      ``/dev/null``); relative and absolute paths alike. Reading stays allowed everywhere, so the
      kernel can import the installed packages. Without Landlock (another OS, an older kernel),
      :func:`landlock_abi` returns 0 and only the working folder separates the submission from
      the instructor's files: the autograder says so.
    * **Memory**: the address space is capped at ``BYTES`` (``RLIMIT_AS``): an allocation beyond it
      fails with MemoryError in the cell that made it instead of taking the machine down.
    * **Signals** (Landlock ABI 6, Linux 6.12): the kernel cannot signal processes outside its
      confinement, such as the grader.

Not confined: reading files, the network, CPU time (the grader's time limits handle that).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["confine", "jailed_command", "landlock_abi"]

# Linux's system calls for Landlock (the same number on every architecture) and its constants, from
# <linux/landlock.h>.
_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38
_WRITE_FILE, _REMOVE_DIR, _REMOVE_FILE = 1 << 1, 1 << 4, 1 << 5
_MAKE_ANYTHING = sum(1 << bit for bit in range(6, 13))  # char, dir, reg, sock, fifo, block, sym
_REFER, _TRUNCATE = 1 << 13, 1 << 14  # ABI 2 and 3
_SCOPE_SIGNAL = 1 << 1  # ABI 6


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def landlock_abi() -> int:
    """The Landlock ABI version this system offers; 0 where it has none (not Linux, too old,
    disabled)."""
    if not sys.platform.startswith("linux"):
        return 0
    version = _libc().syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), _CREATE_RULESET_VERSION)
    return max(version, 0)


def _restrict_writes(writable: Path, abi: int) -> None:
    """Allow writes only below ``writable``, /dev/shm and to existing devices, for this process and
    every process it starts."""
    libc = _libc()
    write_rights = _WRITE_FILE | _REMOVE_DIR | _REMOVE_FILE | _MAKE_ANYTHING
    write_rights |= (_REFER if abi >= 2 else 0) | (_TRUNCATE if abi >= 3 else 0)
    attr = _RulesetAttr(handled_access_fs=write_rights, scoped=_SCOPE_SIGNAL if abi >= 6 else 0)
    size = ctypes.sizeof(ctypes.c_uint64) * (3 if abi >= 6 else 2 if abi >= 4 else 1)
    ruleset = libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), 0)
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    device_rights = _WRITE_FILE | (_TRUNCATE if abi >= 3 else 0)
    try:
        for path, rights in [(writable, write_rights), (Path("/dev/shm"), write_rights),
                             (Path("/dev"), device_rights)]:
            if not path.is_dir():
                continue
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                rule = _PathBeneathAttr(allowed_access=rights, parent_fd=fd)
                if libc.syscall(_SYS_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), 0) < 0:
                    raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
            finally:
                os.close(fd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if libc.syscall(_SYS_RESTRICT_SELF, ruleset, 0) < 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)


def confine(writable: Path, memory_limit: int | None) -> bool:
    """Confine this process (see the module's docstring); True if its writes are confined, False
    where the system has no Landlock."""
    if memory_limit is not None:
        import resource  # POSIX only; the grader starts no jail on Windows

        try:
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
        except (ValueError, OSError):  # macOS refuses RLIMIT_AS: the kernel runs without the cap
            pass
    abi = landlock_abi()
    if abi:
        _restrict_writes(writable, abi)
    return abi > 0


def jailed_command(command: Sequence[str], writable: Path, memory_limit: int | None) -> list[str]:
    """``command`` run confined: the command line that confines itself, then executes it."""
    limit = [] if memory_limit is None else ["--memory-limit", str(memory_limit)]
    # Run as a script, not with -m: importing course_utils.instructor would import every check.
    return [sys.executable, __file__, "--writable", str(writable), *limit, "--", *command]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="jail.py",
                                     description="Run COMMAND confined (see the module's docstring).")
    parser.add_argument("--writable", required=True, type=Path, metavar="DIR")
    parser.add_argument("--memory-limit", type=int, metavar="BYTES")
    parser.add_argument("command", nargs="+", metavar="COMMAND")
    args = parser.parse_args(argv)
    confine(args.writable.resolve(), args.memory_limit)
    os.execvp(args.command[0], args.command)


if __name__ == "__main__":
    main()
