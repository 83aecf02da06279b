"""A started server forbids core dumps, is not dumpable, and locks its memory where it may
(review F10, ``keyquorum.runtime.hardening``)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kq_support import ServerProcess, free_port

pytestmark = [pytest.mark.server,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc")]

_CAP_IPC_LOCK = 14
_CAP_SYS_PTRACE = 19
_PR_CAPBSET_DROP = 24

# Run in a process of the same user as the server, with CAP_SYS_PTRACE given up (what
# any other process of the service user has): can it open the process's memory?
# /proc/PID/mem needs ptrace attach rights, which a non-dumpable process denies.
_PEEK = textwrap.dedent("""
    import ctypes, sys
    libc = ctypes.CDLL(None, use_errno=True)
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]
    header, data = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3
    assert libc.capget(ctypes.byref(header), data) == 0
    for field in ("effective", "permitted", "inheritable"):
        setattr(data[0], field, getattr(data[0], field) & ~(1 << 19))  # CAP_SYS_PTRACE
    assert libc.capset(ctypes.byref(header), data) == 0
    try:
        open(f"/proc/{sys.argv[1]}/mem", "rb").close()
        print("readable")
    except PermissionError:
        print("refused")
""")


def _peek(pid: int) -> str:
    done = subprocess.run([sys.executable, "-c", _PEEK, str(pid)], capture_output=True,
                          text=True, timeout=30, check=True)
    return done.stdout.strip()


def _allow_core_dumps() -> None:
    """In the server's process before exec: core dumps as large as this user may allow,
    so that the server itself must be what forbids them; and, for root, no
    CAP_SYS_PTRACE after exec, so that it is no more privileged than the checking
    process (the kernel lets a process attach only to one whose capabilities it has)."""
    import ctypes

    _soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    if os.geteuid() == 0:
        hard = resource.RLIM_INFINITY
        # (where this is refused, the control below shows it and the test is skipped)
        ctypes.CDLL(None, use_errno=True).prctl(_PR_CAPBSET_DROP, _CAP_SYS_PTRACE, 0, 0, 0)
    resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))


def _core_limits(pid: int) -> list[str]:
    with open(f"/proc/{pid}/limits") as limits:
        line = next(x for x in limits if x.startswith("Max core file size"))
    return line.split()[4:6]  # soft, hard


def _locked_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return int(next(x for x in status if x.startswith("VmLck:")).split()[1])


def _may_lock() -> bool:
    """Whether a process started from here may lock all its memory (what the server
    checks): no RLIMIT_MEMLOCK, or CAP_IPC_LOCK."""
    if resource.getrlimit(resource.RLIMIT_MEMLOCK)[0] == resource.RLIM_INFINITY:
        return True
    with open("/proc/self/status") as status:
        caps = int(next(x for x in status if x.startswith("CapEff:")).split()[1], 16)
    return bool(caps >> _CAP_IPC_LOCK & 1)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    started = ServerProcess(data_dir=tmp_path / "data", port=free_port(), test_clock=False,
                            preexec=_allow_core_dumps)
    try:
        started.start()
        yield started
    finally:
        started.stop()


def test_a_server_started_allowing_core_dumps_forbids_them(server: ServerProcess) -> None:
    control = subprocess.Popen(["sleep", "30"], preexec_fn=_allow_core_dumps)
    try:  # started the same way, an ordinary process may dump core
        if _core_limits(control.pid) == ["0", "0"]:
            pytest.skip("this user may not allow core dumps at all (hard limit 0)")
    finally:
        control.kill()
        control.wait()
    assert server.process is not None
    assert _core_limits(server.process.pid) == ["0", "0"]
    health = httpx.get(f"{server.addr}/v1/sys/health").json()
    assert health["hardening"]["core_dumps"] is False
    assert health["hardening"]["dumpable"] is False


def test_a_same_user_process_without_ptrace_rights_cannot_read_the_server(
        server: ServerProcess) -> None:
    control = subprocess.Popen(["sleep", "30"], preexec_fn=_allow_core_dumps)
    try:  # an ordinary process started the same way is dumpable: the check can tell
        if _peek(control.pid) != "readable":
            pytest.skip("here a process cannot give up the rights to read a process")
    finally:
        control.kill()
        control.wait()
    assert server.process is not None
    assert _peek(server.process.pid) == "refused"


def test_memory_is_locked_where_the_process_may_lock_it(server: ServerProcess) -> None:
    assert server.process is not None
    health = httpx.get(f"{server.addr}/v1/sys/health").json()
    assert health["hardening"]["memory_lock"] == "try"
    assert health["hardening"]["memory_locked"] is _may_lock()
    assert (_locked_kib(server.process.pid) > 0) is _may_lock()
    log = (server.data_dir.parent / f"server-{server.port}.log").read_text()
    assert "process hardening: core dumps off, not dumpable" in log
    assert health["hardening"]["freed_memory_overwritten"] is False


def test_health_says_when_the_allocator_overwrites_freed_memory(tmp_path: Path) -> None:
    server = ServerProcess(data_dir=tmp_path / "data", port=free_port(), test_clock=False,
                           env={"PYTHONMALLOC": "malloc", "GLIBC_TUNABLES":
                                "glibc.malloc.perturb=165:glibc.malloc.tcache_count=0"})
    try:
        server.start()
        health = httpx.get(f"{server.addr}/v1/sys/health").json()
        assert health["hardening"]["freed_memory_overwritten"] is True
    finally:
        server.stop()


def test_every_worker_is_hardened(tmp_path: Path) -> None:
    server = ServerProcess(data_dir=tmp_path / "data", port=free_port(), test_clock=False,
                           extra_args=["--workers", "2"], preexec=_allow_core_dumps)
    try:
        server.start()
        assert server.process is not None
        pid = server.process.pid
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            workers = [int(p) for p in children.read().split()]
        assert len(workers) == 2
        for worker in workers:
            assert _core_limits(worker) == ["0", "0"]
            assert _peek(worker) == "refused"
            assert (_locked_kib(worker) > 0) is _may_lock()  # fork does not pass locks on
    finally:
        server.stop()


def test_a_config_file_chooses_the_memory_lock(tmp_path: Path) -> None:
    config = tmp_path / "kq.json"
    config.write_text(json.dumps({"memory_lock": "off"}))
    server = ServerProcess(data_dir=tmp_path / "data", port=free_port(), test_clock=False,
                           extra_args=["--config", str(config)])
    try:
        server.start()
        assert server.process is not None
        health = httpx.get(f"{server.addr}/v1/sys/health").json()
        assert health["hardening"]["memory_lock"] == "off"
        assert health["hardening"]["memory_locked"] is False
        assert _locked_kib(server.process.pid) == 0
    finally:
        server.stop()
    config.write_text(json.dumps({"memory_lock": "sometimes"}))
    refused = subprocess.run([sys.executable, "-m", "keyquorum", "server", "--data-dir",
                              str(tmp_path / "other"), "--listen", f"127.0.0.1:{free_port()}",
                              "--config", str(config)], capture_output=True, text=True,
                             timeout=60)
    assert refused.returncode != 0
    assert "memory_lock must be one of: try, require, off" in refused.stderr
