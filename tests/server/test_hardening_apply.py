"""``runtime.hardening.apply`` in a process of its own: what it does where memory may not be
locked (review F10). A server started with it is tested in test_process_hardening.py."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux prctl")

_CAP_IPC_LOCK = 14
_PR_CAPBSET_DROP = 24

_APPLY = textwrap.dedent("""
    import json, sys
    from keyquorum.runtime import hardening
    done = hardening.apply(sys.argv[1])
    print(json.dumps(done.describe()))
""")


def _without_lock_rights() -> None:
    """Before exec: a small RLIMIT_MEMLOCK and, for root, no CAP_IPC_LOCK after exec."""
    import ctypes

    resource.setrlimit(resource.RLIMIT_MEMLOCK, (64 * 1024, 64 * 1024))
    if os.geteuid() == 0:  # (where this is refused, memory gets locked: the test skips)
        ctypes.CDLL(None, use_errno=True).prctl(_PR_CAPBSET_DROP, _CAP_IPC_LOCK, 0, 0, 0)


def _apply(mode: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-c", _APPLY, mode], capture_output=True,
                          text=True, timeout=60, preexec_fn=_without_lock_rights)
    if done.returncode == 0 and json.loads(done.stdout)["memory_locked"]:
        pytest.skip("here the rights to lock memory cannot be taken away")
    return done


def test_where_memory_may_not_be_locked_try_warns_once_and_goes_on() -> None:
    done = _apply("try")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"core_dumps": False, "dumpable": False,
                                       "memory_locked": False, "memory_lock": "try",
                                       "freed_memory_overwritten": False}
    warnings = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(warnings) == 1
    assert "RLIMIT_MEMLOCK is 65536 bytes" in warnings[0]
    assert "LimitMEMLOCK=infinity" in warnings[0]


def test_where_memory_may_not_be_locked_require_refuses_to_start() -> None:
    done = _apply("require")
    assert done.returncode != 0
    assert "memory_lock is require, but memory is not locked" in done.stderr


def test_memory_lock_off_does_not_lock_and_does_not_warn() -> None:
    done = _apply("off")
    assert done.returncode == 0 and done.stderr == ""
    assert json.loads(done.stdout)["memory_locked"] is False


def test_an_allocator_that_overwrites_freed_memory_is_recognised() -> None:
    from keyquorum.runtime.hardening import freed_memory_overwritten

    assert freed_memory_overwritten({}) is False
    assert freed_memory_overwritten({"PYTHONMALLOC": "malloc"}) is False
    tunables = "glibc.malloc.perturb=165:glibc.malloc.tcache_count=0"
    assert freed_memory_overwritten({"PYTHONMALLOC": "malloc", "GLIBC_TUNABLES": tunables})
    assert not freed_memory_overwritten({"PYTHONMALLOC": "pymalloc",
                                         "GLIBC_TUNABLES": tunables})
    assert not freed_memory_overwritten({"PYTHONMALLOC": "malloc",
                                         "GLIBC_TUNABLES": "glibc.malloc.perturb=165"})


def test_an_unknown_memory_lock_setting_is_refused() -> None:
    from keyquorum.runtime.hardening import apply

    with pytest.raises(ValueError, match="memory_lock must be one of: try, require, off"):
        apply("sometimes")
