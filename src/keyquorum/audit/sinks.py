"""Audit sinks outside the database: an append-only JSON-lines file and syslog.

Each sink runs on its own thread behind its own queue, so a slow, hung or full
sink holds up nobody but the requests that must wait for it. What happens when
a sink fails is explicit, per sink:

- ``required``: the records of a group must reach the sink within its
  ``timeout``, or the group's transaction rolls back and its operations fail
  with ``audit_unavailable`` (fail closed). Records go to a sink *before* the
  database commits, so a rolled-back group can leave a record in the sink that
  the database does not have: a sink may over-report, never miss.
- ``best-effort``: records are queued and the caller goes on. A failure, a
  timeout or a full queue is counted, shown in health and metrics, and logged
  as an alert; the operation still succeeds.

A sink that is stuck (its current write has run longer than its timeout) fails
a required delivery at once instead of making every request wait it out again.
Lines are the export format's ``record`` lines (``export.py``), so a file sink is
itself a chain that ``keyquorum audit verify --file`` can check.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import stat
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from keyquorum.audit.export import record_line
from keyquorum.errors import AuditUnavailable

log = logging.getLogger("keyquorum.audit.sinks")

REQUIRED = "required"
BEST_EFFORT = "best-effort"
_KINDS = ("file", "syslog")
_FIELDS = {
    "file": {"name", "type", "policy", "timeout", "path", "max_bytes", "keep", "fsync"},
    "syslog": {"name", "type", "policy", "timeout", "address", "facility"},
}
# RFC 5424 facility codes keyquorum accepts: security/authorization messages, or local use.
_FACILITIES = {"auth": 4, "authpriv": 10, **{f"local{i}": 16 + i for i in range(8)}}
SINK_KINDS: tuple[str, ...] = _KINDS
FACILITIES: tuple[str, ...] = tuple(_FACILITIES)
"""The names the request schema of ``PUT /v1/sys/audit/sinks/{name}`` lists."""
_MAX_QUEUED = 10_000  # best-effort groups waiting for one sink before new ones are dropped


@dataclass(frozen=True, slots=True)
class SinkConfig:
    """One sink as configured (``audit_sinks`` in the config file)."""

    name: str
    type: str
    policy: str = REQUIRED
    timeout: float = 2.0
    path: str | None = None
    max_bytes: int = 100 * 1024 * 1024
    keep: int = 5
    fsync: bool = True
    address: str | None = None
    facility: str = "authpriv"

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"name": self.name, "type": self.type, "policy": self.policy,
                                "timeout": self.timeout}
        if self.type == "file":
            body.update(path=self.path, max_bytes=self.max_bytes, keep=self.keep,
                        fsync=self.fsync)
        else:
            body.update(address=self.address, facility=self.facility)
        return body


def parse_sink_configs(raw: object) -> tuple[SinkConfig, ...]:
    """Validate ``audit_sinks`` strictly at start-up; each mistake names the sink."""
    if not isinstance(raw, list):
        raise ValueError("audit_sinks must be a list of sink objects")
    configs = tuple(parse_sink_config(item, index) for index, item in enumerate(raw))
    names = [config.name for config in configs]
    if len(set(names)) != len(names):
        raise ValueError("audit_sinks: sink names must be unique")
    return configs


def parse_sink_config(item: object, index: int = 0) -> SinkConfig:
    where = f"audit_sinks[{index}]"
    if not isinstance(item, Mapping):
        raise ValueError(f"{where}: a sink is an object with name, type and policy")
    kind = item.get("type")
    if kind not in _KINDS:
        raise ValueError(f"{where}: type must be one of {', '.join(_KINDS)}")
    unknown = set(item) - _FIELDS[kind]
    if unknown:
        raise ValueError(f"{where}: unknown field(s) for a {kind} sink: "
                         f"{', '.join(sorted(map(str, unknown)))}")
    name = item.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 64 or not name.replace(
            "-", "").replace("_", "").isalnum():
        raise ValueError(f"{where}: name must be 1-64 letters, digits, - or _")
    policy = item.get("policy", REQUIRED)
    if policy not in (REQUIRED, BEST_EFFORT):
        raise ValueError(f"{where}: policy must be '{REQUIRED}' or '{BEST_EFFORT}'")
    timeout = item.get("timeout", 2.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) \
            or not 0.01 <= timeout <= 60:
        raise ValueError(f"{where}: timeout must be 0.01-60 seconds")
    if kind == "file":
        path = item.get("path")
        if not isinstance(path, str) or not path:
            raise ValueError(f"{where}: a file sink needs a path")
        max_bytes = item.get("max_bytes", 100 * 1024 * 1024)
        keep = item.get("keep", 5)
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 4096:
            raise ValueError(f"{where}: max_bytes must be an integer of at least 4096")
        if isinstance(keep, bool) or not isinstance(keep, int) or not 1 <= keep <= 1000:
            raise ValueError(f"{where}: keep must be 1-1000 rotated files")
        fsync = item.get("fsync", True)
        if not isinstance(fsync, bool):
            raise ValueError(f"{where}: fsync must be true or false")
        return SinkConfig(name, kind, policy, float(timeout), path=path, max_bytes=max_bytes,
                          keep=keep, fsync=fsync)
    address = item.get("address", "unix:///dev/log")
    if not isinstance(address, str):
        raise ValueError(f"{where}: address must be a string")
    _parse_address(address, where)
    facility = item.get("facility", "authpriv")
    if facility not in _FACILITIES:
        raise ValueError(f"{where}: facility must be one of {', '.join(_FACILITIES)}")
    return SinkConfig(name, kind, policy, float(timeout), address=address, facility=facility)


def _parse_address(address: str, where: str = "syslog") -> tuple[str, Any]:
    parts = urlsplit(address)
    if parts.scheme == "unix" and parts.path:
        return "unix", parts.path
    if parts.scheme in ("udp", "tcp") and parts.hostname and parts.port:
        return parts.scheme, (parts.hostname, parts.port)
    raise ValueError(f"{where}: address must be udp://HOST:PORT, tcp://HOST:PORT or "
                     "unix:///PATH")


class Sink(Protocol):
    def write(self, lines: Sequence[bytes]) -> None: ...

    def close(self) -> None: ...


class FileSink:
    """Append-only JSON lines (``O_APPEND``, mode 0600), rotated by size into ``PATH.1..keep``.

    The file is reached through its directory's descriptor and opened with
    ``O_NOFOLLOW``: a symlink planted under the sink's name is refused (``ELOOP``),
    and rotation renames only within that directory. A new file is created with
    ``O_EXCL``; an existing regular file is appended to only if it looks like one a
    sink made (``_made_by_a_sink``), so a sink pointed at a store, a password file
    or anything else that was there first refuses to write instead of appending to
    it and renaming it away. FIFOs and devices (a config-file sink's choice) are
    opened as they are.
    """

    def __init__(self, config: SinkConfig) -> None:
        assert config.path is not None
        self._path = Path(config.path)
        self._config = config
        self._fd: int | None = None
        self._size = 0

    def _dir(self) -> int:
        return os.open(self._path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def _open(self) -> int:
        if self._fd is None:
            folder, name = self._dir(), self._path.name
            flags = os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
            try:
                try:
                    fd, created = os.open(name, flags | os.O_CREAT | os.O_EXCL, 0o600,
                                          dir_fd=folder), True
                except FileExistsError:
                    # A FIFO without a reader blocks here: that is a hung sink, and the
                    # worker thread's timeout is what protects callers from it.
                    fd, created = os.open(name, flags, dir_fd=folder), False
                if not created and not _made_by_a_sink(fd, name, folder):
                    os.close(fd)
                    raise PermissionError(f"{self._path} exists and was not made by a "
                                          "keyquorum audit sink: refusing to write to it")
            finally:
                os.close(folder)
            self._fd = fd
            self._size = os.fstat(fd).st_size
        return self._fd

    def write(self, lines: Sequence[bytes]) -> None:
        fd = self._open()
        data = memoryview(b"".join(lines))
        try:
            while data:
                written = os.write(fd, data)
                data = data[written:]
            if self._config.fsync:
                os.fsync(fd)
        except OSError:
            self.close()  # reopen on the next write (e.g. after space was freed)
            raise
        self._size += sum(map(len, lines))
        if self._size >= self._config.max_bytes and stat.S_ISREG(os.fstat(fd).st_mode):
            self._rotate()

    def _rotate(self) -> None:
        self.close()
        keep, name = self._config.keep, self._path.name
        folder = self._dir()
        try:  # renames of directory entries only, inside the sink's own directory
            for index in range(keep - 1, 0, -1):
                with contextlib.suppress(FileNotFoundError):
                    os.rename(f"{name}.{index}", f"{name}.{index + 1}",
                              src_dir_fd=folder, dst_dir_fd=folder)
            os.rename(name, f"{name}.1", src_dir_fd=folder, dst_dir_fd=folder)
        finally:
            os.close(folder)

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


# Every line a sink writes starts so (export.record_line, export.checkpoint_line).
_LINE_STARTS = (b'{"type":"record"', b'{"type":"checkpoint"')


def _made_by_a_sink(fd: int, name: str, folder: int) -> bool:
    """Whether an existing file is one a sink made: anything else is left alone.

    Not a regular file (a FIFO, a device): the config file named it, accept. A
    regular file must have the mode a sink creates (no group or other bits), one
    link, this process's owner, and be empty or start with a record line.
    """
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        return True
    if info.st_mode & 0o077 or info.st_nlink != 1 or info.st_uid != os.geteuid():
        return False
    if info.st_size == 0:
        return True
    reader = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder)
    try:
        same = os.fstat(reader).st_ino == info.st_ino
        start = os.pread(reader, max(map(len, _LINE_STARTS)), 0)
        return same and start.startswith(_LINE_STARTS)
    finally:
        os.close(reader)


class SyslogSink:
    """RFC 5424 messages (severity notice) over UDP, TCP (octet counting) or a Unix socket."""

    def __init__(self, config: SinkConfig) -> None:
        assert config.address is not None
        self._kind, self._target = _parse_address(config.address)
        self._timeout = config.timeout
        self._pri = _FACILITIES[config.facility] * 8 + 5
        self._host = socket.gethostname() or "-"
        self._sock: socket.socket | None = None

    def _socket(self) -> socket.socket:
        if self._sock is None:
            if self._kind == "unix":
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            elif self._kind == "udp":
                sock = socket.socket(socket.AF_INET6 if ":" in self._target[0]
                                     else socket.AF_INET, socket.SOCK_DGRAM)
            else:
                sock = socket.socket(socket.AF_INET6 if ":" in self._target[0]
                                     else socket.AF_INET, socket.SOCK_STREAM)
            sock.settimeout(self._timeout)
            try:
                sock.connect(self._target)
            except OSError:
                sock.close()
                raise
            self._sock = sock
        return self._sock

    def write(self, lines: Sequence[bytes]) -> None:
        sock = self._socket()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        try:
            for line in lines:
                message = (f"<{self._pri}>1 {stamp} {self._host} keyquorum {os.getpid()} "
                           "audit - ").encode("ascii") + line.rstrip(b"\n")
                if self._kind == "tcp":
                    sock.sendall(str(len(message)).encode("ascii") + b" " + message)
                else:
                    sock.send(message)
        except OSError:
            self.close()
            raise

    def close(self) -> None:
        if self._sock is not None:
            sock, self._sock = self._sock, None
            sock.close()


def open_sink(config: SinkConfig) -> Sink:
    return FileSink(config) if config.type == "file" else SyslogSink(config)


class _Ticket:
    __slots__ = ("done", "ok")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = False


class SinkWorker:
    """One sink's thread, queue and health counters."""

    def __init__(self, config: SinkConfig, sink: Sink | None = None) -> None:
        self.config = config
        self._sink = sink if sink is not None else open_sink(config)
        self._queue: deque[tuple[list[bytes], _Ticket]] = deque()
        self._cond = threading.Condition()
        self._running = False
        self._thread: threading.Thread | None = None
        self._busy_since: float | None = None
        self.delivered = 0
        self.failures = 0
        self.dropped = 0
        self.last_error: str | None = None
        self.last_failure_at: float | None = None
        self.healthy = True

    def start(self) -> None:
        with self._cond:
            if self._running:
                return
            self._running = True
            self._thread = threading.Thread(target=self._run, daemon=True,
                                            name=f"keyquorum-sink-{self.config.name}")
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._running = False
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)  # a hung sink's thread is a daemon: left behind

    @property
    def stuck(self) -> bool:
        busy = self._busy_since
        return busy is not None and time.monotonic() - busy > self.config.timeout

    def submit(self, lines: list[bytes]) -> _Ticket | None:
        """Queue ``lines``; ``None`` if the queue is full (counted as a drop)."""
        ticket = _Ticket()
        with self._cond:
            if len(self._queue) >= _MAX_QUEUED or not self._running:
                self._fail("queue full" if self._running else "stopped", dropped=len(lines))
                return None
            self._queue.append((lines, ticket))
            self._cond.notify()
        return ticket

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and self._running:
                    self._cond.wait()
                if not self._queue:
                    return
                lines, ticket = self._queue.popleft()
            self._busy_since = time.monotonic()
            try:
                self._sink.write(lines)
            except Exception as exc:  # any failure: counted, alerted, never raised here
                with self._cond:
                    self._fail(type(exc).__name__, dropped=len(lines))
            else:
                with self._cond:
                    self.delivered += len(lines)
                    if not self.healthy:
                        log.warning("audit sink %s recovered", self.config.name)
                    self.healthy = True
                ticket.ok = True
            finally:
                self._busy_since = None
                ticket.done.set()

    def _fail(self, reason: str, *, dropped: int = 0) -> None:
        """Count a failure and alert (logged: the sink's name and the error's kind, no records)."""
        self.failures += 1
        self.dropped += dropped if self.config.policy == BEST_EFFORT else 0
        self.last_error = reason
        self.last_failure_at = time.time()
        if self.healthy or self.failures % 100 == 0:
            log.error("ALERT audit sink %s (%s) failed: %s (%d failures so far)",
                      self.config.name, self.config.policy, reason, self.failures)
        self.healthy = False

    def timed_out(self) -> None:
        with self._cond:
            self._fail("timeout")

    def status(self) -> dict[str, Any]:
        return {"name": self.config.name, "type": self.config.type,
                "policy": self.config.policy, "healthy": self.healthy and not self.stuck,
                "delivered": self.delivered, "failures": self.failures,
                "dropped": self.dropped, "queued": len(self._queue),
                "last_error": self.last_error, "last_failure_at": self.last_failure_at}

    def close(self) -> None:
        self._sink.close()


class SinkSet:
    """Every configured sink; ``deliver`` enforces each one's failure policy.

    Sinks can be added and removed while records flow: the list is replaced, never
    edited in place, so a delivery in progress finishes on the list it started with.
    """

    def __init__(self, workers: Sequence[SinkWorker]) -> None:
        self._workers = list(workers)
        self._change = threading.Lock()
        self._started = False

    def names(self) -> list[str]:
        return [worker.config.name for worker in self._workers]

    def add(self, config: SinkConfig) -> None:
        """Start delivering to a new sink (its name must be new)."""
        worker = SinkWorker(config)
        with self._change:
            if config.name in self.names():
                raise ValueError(f"an audit sink named {config.name!r} exists")
            if self._started:
                worker.start()
            self._workers = [*self._workers, worker]

    def remove(self, name: str) -> SinkConfig:
        """Stop delivering to sink ``name``; its thread drains what it holds, then ends."""
        with self._change:
            found = [w for w in self._workers if w.config.name == name]
            if not found:
                raise KeyError(name)
            self._workers = [w for w in self._workers if w.config.name != name]
        found[0].stop(timeout=0)
        return found[0].config

    @classmethod
    def from_configs(cls, configs: Sequence[SinkConfig]) -> SinkSet:
        return cls([SinkWorker(config) for config in configs])

    def start(self) -> None:
        with self._change:
            self._started = True
            for worker in self._workers:
                worker.start()

    def stop(self) -> None:
        with self._change:
            self._started = False
            for worker in self._workers:
                worker.stop()

    def __bool__(self) -> bool:
        return bool(self._workers)

    def deliver(self, rows: Sequence[dict[str, Any]]) -> None:
        """Hand linked rows to every sink; ``AuditUnavailable`` if a required one fails."""
        if not self._workers:
            return
        self.deliver_lines([record_line(row) for row in rows])

    def deliver_lines(self, lines: list[bytes]) -> None:
        waits: list[tuple[SinkWorker, _Ticket | None]] = []
        for worker in self._workers:  # one snapshot of the list for this delivery
            required = worker.config.policy == REQUIRED
            if worker.stuck:
                worker.timed_out()
                if required:
                    raise AuditUnavailable(f"audit sink {worker.config.name} is not "
                                           "answering, so nothing was done")
            ticket = worker.submit(lines)
            if required:
                waits.append((worker, ticket))
        for worker, ticket in waits:
            if ticket is None:
                raise AuditUnavailable(f"audit sink {worker.config.name} is not accepting "
                                       "records, so nothing was done")
            if not ticket.done.wait(worker.config.timeout):
                worker.timed_out()
                raise AuditUnavailable(f"audit sink {worker.config.name} timed out, so "
                                       "nothing was done")
            if not ticket.ok:
                raise AuditUnavailable(f"audit sink {worker.config.name} failed, so "
                                       "nothing was done")

    def status(self) -> list[dict[str, Any]]:
        return [worker.status() for worker in self._workers]
