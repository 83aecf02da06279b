"""Audit sinks managed at run time, next to the ones fixed in the config file.

Sinks from the config file are part of the deployment and cannot be removed
through the API (edit the file). Sinks added through the API are stored (system
entry ``audit/sinks``, no secrets in it) and come back on restart; removing one
is the dual-controlled action ``audit-sink-remove``, since quietly dropping the
copy of the log an auditor relies on is exactly what an insider would want.

Where an API sink may write is the config file's choice (``sink_targets``): a
listed directory or syslog address, never ``required``. Stored sinks are checked
again whenever they are (re)started, so a store restored from elsewhere, or a
config that no longer lists a target, never opens what it does not allow.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from sqlalchemy import Connection, Engine

from keyquorum.audit.sink_targets import SinkNotAllowed, SinkTargets
from keyquorum.audit.sinks import SinkConfig, SinkSet, parse_sink_config
from keyquorum.clock import Clock
from keyquorum.errors import Conflict, NotFound
from keyquorum.storage.system_repo import get_entry, put_entry

RUNTIME_SINKS_ENTRY = "audit/sinks"
log = logging.getLogger("keyquorum.audit.sinks")


class AuditSinkRegistry:
    """Which sinks exist, where each came from, and the stored list of API-added ones."""

    def __init__(self, engine: Engine, clock: Clock, sinks: SinkSet,
                 configured: tuple[SinkConfig, ...],
                 targets: SinkTargets | None = None) -> None:
        self._engine = engine
        self._targets = targets or SinkTargets()
        self._clock = clock
        self._sinks = sinks
        self._configured = {config.name for config in configured}
        self._lock = threading.Lock()
        self.reload()

    def _stored(self) -> list[SinkConfig]:
        with self._engine.connect() as conn:
            raw = get_entry(conn, RUNTIME_SINKS_ENTRY)
        items = json.loads(raw) if raw else []
        return [parse_sink_config(item, index) for index, item in enumerate(items)]

    def _save(self, conn: Connection, configs: list[SinkConfig]) -> None:
        put_entry(conn, RUNTIME_SINKS_ENTRY,
                  json.dumps([c.to_json() for c in configs]).encode(), self._clock.now())

    def reload(self) -> None:
        """Make the running sinks match storage (at start, and when another worker changed it)."""
        with self._lock:
            wanted = {config.name: config for config in self._allowed(self._stored())}
            running = set(self._sinks.names()) - self._configured
            for name in running - set(wanted):
                self._sinks.remove(name)
            for name in set(wanted) - running:
                if name not in self._configured:
                    self._sinks.add(wanted[name])

    def _allowed(self, stored: list[SinkConfig]) -> list[SinkConfig]:
        """Stored API sinks as the config allows them now (best-effort); others not started."""
        allowed = []
        for config in stored:
            try:
                allowed.append(self._targets.check(config))
            except SinkNotAllowed:
                log.error("audit sink %s is not started: its destination is not listed in "
                          "the config file (audit_sink_dirs / audit_syslog_targets)",
                          config.name)
        return allowed

    def describe(self) -> list[dict[str, Any]]:
        configs = {c.name: c for c in self._stored()}
        answer = []
        for status in self._sinks.status():
            name = status["name"]
            source = "config" if name in self._configured else "api"
            config = configs.get(name)
            answer.append({**status, "source": source,
                           "config": config.to_json() if config else None})
        return answer

    def add(self, config: SinkConfig, conn: Connection) -> dict[str, Any]:
        """Store a new sink in the caller's unit of work; its ``SinksChanged`` event starts
        it (``reload``) once committed, here and on every worker. ``config`` is checked
        (``parse_sink_config``, from the request's ``PutAuditSink``) and must be a
        destination the config file lists, best-effort (``SinkTargets.check``)."""
        config = self._targets.check(config)
        with self._lock:
            if config.name in self._sinks.names():
                raise Conflict(f"an audit sink named {config.name!r} exists; remove it first")
            stored = self._stored()
            self._save(conn, [*stored, config])
        return config.to_json()

    def check_removable(self, name: str) -> None:
        if name in self._configured:
            raise Conflict(f"audit sink {name!r} is set in the config file; remove it there")
        if name not in self._sinks.names():
            raise NotFound(f"no audit sink named {name!r}")

    def remove(self, name: str, conn: Connection) -> None:
        """Drop a sink from storage in the caller's unit of work (stopped by ``reload``)."""
        with self._lock:
            self.check_removable(name)
            self._save(conn, [c for c in self._stored() if c.name != name])
