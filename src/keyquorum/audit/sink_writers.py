"""What an audit sink writes to: an append-only JSON-lines file, or syslog.

A writer is called from its sink's own thread (``sinks.SinkWorker``), one group of
lines at a time; it raises on failure and reconnects or reopens on the next write.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from keyquorum.audit.sink_config import FACILITY_CODES, SinkConfig, parse_syslog_address


class Sink(Protocol):
    """A destination: ``write`` raises on any failure, ``close`` lets go of it."""

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
        self._kind, self._target = parse_syslog_address(config.address)
        self._timeout = config.timeout
        self._pri = FACILITY_CODES[config.facility] * 8 + 5
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
