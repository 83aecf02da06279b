"""Process hardening at server start: no core dumps, not dumpable, memory locked.

Why (security review F10): while unsealed, the server process holds the root key,
the barrier keys and every key it has loaded, and custodians' shares pass through
it. A core dump (a crash, ``systemd-coredump``, ``abrt``, ``gcore``) writes all of
that to disk; any process of the same user can read ``/proc/PID/mem`` or attach a
debugger; and pages the kernel swaps out land on disk. So before any secret exists
``apply`` (called by ``keyquorum server`` and ``dev``, again in every ``--workers``
child, since memory locks are not inherited across ``fork``):

- sets ``RLIMIT_CORE`` to (0, 0): no core file, and the process cannot raise it again;
- clears the dumpable flag (``prctl(PR_SET_DUMPABLE, 0)``, Linux): no core dump
  through a pipe either, no ``ptrace`` and no ``/proc/PID/mem`` for other processes
  of the same user (root, with ``CAP_SYS_PTRACE``, still can);
- locks its memory (``mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)``) so that no
  page is written to swap: ``MCL_ONFAULT`` locks pages as they are touched, rather
  than faulting in every reserved stack and arena at once. Where that is not
  permitted (``RLIMIT_MEMLOCK`` finite and no ``CAP_IPC_LOCK``) it is not attempted:
  with a finite limit, ``MCL_FUTURE`` would make later allocations fail once the
  process grows. The ``memory_lock`` setting chooses: ``try`` (the default: lock
  where permitted, one warning otherwise), ``require`` (refuse to start) or ``off``.

What was achieved is printed at start and shown in ``/v1/sys/health``
(``hardening``); a warning never names a secret. It also says whether the process
was started with an allocator that overwrites freed memory (``PYTHONMALLOC=malloc``
with glibc's ``perturb`` tunable and no ``tcache``: set in the environment before
Python starts, so only the operator can choose it). docs/SECURITY.md says what the
host must still provide (``LimitCORE=0``, ``LimitMEMLOCK=infinity``, encrypted swap).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import resource
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["MEMORY_LOCK_MODES", "Hardening", "apply", "current", "dumpable"]

log = logging.getLogger("keyquorum.hardening")

MEMORY_LOCK_MODES = ("try", "require", "off")
_PR_GET_DUMPABLE = 3
_PR_SET_DUMPABLE = 4
_MCL_CURRENT = 1
_MCL_FUTURE = 2
_MCL_ONFAULT = 4  # Linux 4.4+
_CAP_IPC_LOCK = 14
_EINVAL = 22


@dataclass(frozen=True)
class Hardening:
    """What ``apply`` achieved in this process."""

    core_dumps: bool  # False once RLIMIT_CORE is (0, 0)
    dumpable: bool | None  # None where it cannot be changed (not Linux)
    memory_locked: bool
    memory_lock: str  # the setting: try, require or off
    freed_memory_overwritten: bool = False  # by the allocator (the environment's choice)
    problems: tuple[str, ...] = ()  # what was not achieved, and why

    def describe(self) -> dict[str, Any]:
        """For the health answer."""
        return {"core_dumps": self.core_dumps, "dumpable": self.dumpable,
                "memory_locked": self.memory_locked, "memory_lock": self.memory_lock,
                "freed_memory_overwritten": self.freed_memory_overwritten}

    def summary(self) -> str:
        """One line for the start-up log."""
        parts = ["core dumps " + ("ON" if self.core_dumps else "off"),
                 {True: "DUMPABLE", False: "not dumpable", None: "dumpable flag unsupported"}[
                     self.dumpable],
                 "memory locked" if self.memory_locked else
                 f"memory NOT locked (memory_lock={self.memory_lock})",
                 "freed memory " + ("overwritten" if self.freed_memory_overwritten
                                    else "not overwritten")]
        return "process hardening: " + ", ".join(parts)


_applied: Hardening | None = None


def current() -> Hardening | None:
    """What this process achieved, or None if ``apply`` never ran here (in-process tests)."""
    return _applied


def apply(memory_lock: str = "try", *, warn: bool = True) -> Hardening:
    """Harden this process (see the module docstring); idempotent.

    With ``warn``, what could not be done is logged as ONE warning; ``require`` raises
    ``SystemExit`` when memory cannot be locked.
    """
    global _applied
    if memory_lock not in MEMORY_LOCK_MODES:
        raise ValueError(f"memory_lock must be one of: {', '.join(MEMORY_LOCK_MODES)}")
    problems: list[str] = []
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # lowering is always allowed
    core_dumps = resource.getrlimit(resource.RLIMIT_CORE) != (0, 0)
    libc = _libc()
    is_dumpable: bool | None = None
    if libc is None:
        problems.append(f"the dumpable flag cannot be cleared on {sys.platform} (Linux only)")
    else:
        if libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
            problems.append(f"prctl(PR_SET_DUMPABLE) failed: {os.strerror(ctypes.get_errno())}")
        is_dumpable = dumpable(libc)
    locked = False
    if memory_lock != "off":
        locked, why = _lock_memory(libc)
        if why:
            problems.append(why)
            if memory_lock == "require":
                raise SystemExit(f"error: memory_lock is require, but {why}")
    _applied = Hardening(core_dumps, is_dumpable, locked, memory_lock,
                         freed_memory_overwritten(os.environ), tuple(problems))
    if problems and warn:
        log.warning("process hardening incomplete: %s", "; ".join(problems))
    return _applied


def dumpable(libc: Any | None = None) -> bool | None:
    """This process's dumpable flag (``PR_GET_DUMPABLE``); None where there is none."""
    libc = libc or _libc()
    if libc is None:
        return None
    return bool(libc.prctl(_PR_GET_DUMPABLE, 0, 0, 0, 0))


def freed_memory_overwritten(environ: Mapping[str, str]) -> bool:
    """Whether this process was started so that freed memory is overwritten: Python's
    objects allocated by glibc's malloc (``PYTHONMALLOC=malloc``), which fills what is
    freed (``glibc.malloc.perturb``) and keeps no per-thread cache of freed blocks that
    would skip that (``glibc.malloc.tcache_count=0``)."""
    if environ.get("PYTHONMALLOC") != "malloc":
        return False
    tunables = dict(item.partition("=")[::2]
                    for item in environ.get("GLIBC_TUNABLES", "").split(":"))
    return tunables.get("glibc.malloc.perturb", "0") not in ("", "0") \
        and tunables.get("glibc.malloc.tcache_count") == "0"


def _libc() -> Any | None:
    if not sys.platform.startswith("linux"):
        return None
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _lock_memory(libc: Any | None) -> tuple[bool, str]:
    """(locked, why not): lock only where it is permitted without a limit to hit later."""
    if libc is None:
        return False, f"memory cannot be locked on {sys.platform} (Linux only)"
    soft, _hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    if soft != resource.RLIM_INFINITY and not _has_ipc_lock():
        return False, (f"memory is not locked: RLIMIT_MEMLOCK is {soft} bytes and the "
                       "process lacks CAP_IPC_LOCK (set LimitMEMLOCK=infinity in the "
                       "service unit); secrets may reach swap unless swap is encrypted")
    flags = _MCL_CURRENT | _MCL_FUTURE
    if libc.mlockall(flags | _MCL_ONFAULT) == 0:
        return True, ""
    error = ctypes.get_errno()
    if error == _EINVAL and libc.mlockall(flags) == 0:  # a kernel without MCL_ONFAULT
        return True, ""
    error = ctypes.get_errno() or error
    return False, f"mlockall failed ({os.strerror(error)}); secrets may reach swap"


def _has_ipc_lock() -> bool:
    """Whether CAP_IPC_LOCK is in this process's effective set (lifts RLIMIT_MEMLOCK)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> _CAP_IPC_LOCK & 1)
    except OSError:
        pass
    return False
