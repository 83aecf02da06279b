"""Where sinks added through the API may write: the directories and syslog hosts the config allows.

An audit sink is a file the server creates, appends to and renames, or a socket
it streams every record to. Given to whoever holds ``sys:audit``, an unchecked
path is a way to overwrite or rotate any file the service user can reach (the
store itself included), and an unchecked syslog address is a way to stream the
log off the box. So a sink added through the API:

- writes only to a file directly inside a directory listed in the config file's
  ``audit_sink_dirs`` (resolved when the config is read; a request names the
  resolved directory itself), and the file is opened by ``FileSink``
  without following symlinks, and only if keyquorum created it;
- sends only to an address listed in ``audit_syslog_targets``;
- is never ``required``: a sink an API caller can point at a dead address must
  not be able to make every request, the approvals to remove it included,
  answer ``audit_unavailable``.

Sinks in the config file's ``audit_sinks`` are the operator's own choice and are
not limited here (they may name a FIFO or a device).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

from keyquorum.audit.sinks import BEST_EFFORT, REQUIRED, SinkConfig
from keyquorum.errors import InvalidRequest


class SinkNotAllowed(InvalidRequest):
    """An API sink names a destination the config file does not list, or asks to be required."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="not_configured")


@dataclass(frozen=True)
class SinkTargets:
    """The config file's ``audit_sink_dirs`` (resolved) and ``audit_syslog_targets``."""

    dirs: tuple[str, ...] = ()
    syslog: frozenset[str] = frozenset()

    @classmethod
    def from_config(cls, raw: dict[str, Any]) -> SinkTargets:
        dirs = raw.get("audit_sink_dirs", [])
        targets = raw.get("audit_syslog_targets", [])
        for name, value in (("audit_sink_dirs", dirs), ("audit_syslog_targets", targets)):
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise ValueError(f"{name} must be a list of strings")
        if not all(os.path.isabs(d) for d in dirs):
            raise ValueError("audit_sink_dirs must be absolute directory paths")
        return cls(tuple(os.path.realpath(d) for d in dirs), frozenset(targets))

    def check(self, config: SinkConfig) -> SinkConfig:
        """``config`` as an API sink may have it (best-effort), or ``SinkNotAllowed``."""
        if config.policy == REQUIRED:
            raise SinkNotAllowed("a sink added through the API cannot be required (a dead "
                                 "one would stop every request): give policy best-effort, "
                                 "or list it in the config file's audit_sinks")
        if config.type == "file":
            self._check_path(str(config.path))
        elif config.address not in self.syslog:
            raise SinkNotAllowed("the syslog address is not listed in the server's "
                                 "configuration (audit_syslog_targets)")
        return replace(config, policy=BEST_EFFORT)

    def _check_path(self, path: str) -> None:
        folder, name = os.path.split(path)
        if not os.path.isabs(path) or not name or name in (".", ".."):
            raise SinkNotAllowed("a file sink's path must be an absolute file path")
        if folder != os.path.normpath(folder) or folder not in self.dirs:
            raise SinkNotAllowed("a file sink added through the API must be a file directly "
                                 "in a directory listed in audit_sink_dirs")
