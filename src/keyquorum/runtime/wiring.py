"""How a serving process is put together: its ``Core`` and its uvicorn options.

One place for both, used by the single-process server (``keyquorum.runtime.server``), every
``--workers`` process (``keyquorum.runtime.cluster``) and the backup drill, which opens its
scratch copy exactly as the server would open the store. Nothing here imports the
server or the cluster, so neither has to import the other.
"""

from __future__ import annotations

import socket
from typing import Any

from keyquorum.audit.nodes import audit_node_name
from keyquorum.clock import Clock, OffsetClock, SystemClock
from keyquorum.config import Settings
from keyquorum.runtime.change_feed import join_cluster
from keyquorum.runtime.http_limits import HttpLimits
from keyquorum.runtime.http_protocol import guarded_protocol
from keyquorum.service.core import Core
from keyquorum.storage.engine import migrate, open_engine


def build_core(settings: Settings, worker: int = 0) -> Core:
    """``worker``: this process's index under ``--workers`` (it names its audit chain on
    PostgreSQL, ``audit.nodes``)."""
    settings.validate()
    engine = open_engine(settings.url, password_file=settings.database_password_file)
    migrate(engine)
    clock: Clock = OffsetClock() if settings.unsafe_test_clock else SystemClock()
    core = Core(settings, engine, clock, node=settings.node_name or socket.gethostname(),
                audit_node=audit_node_name(settings, engine.dialect.name, worker))
    if engine.dialect.name == "postgresql":  # other nodes may share the database
        join_cluster(core)
    return core


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How every keyquorum HTTP server runs: quiet, TLS when configured, forwarded
    client addresses believed only from configured proxies (they go into the audit log),
    and slow, idle or oversized clients cut off (``keyquorum.runtime.http_limits``).

    Call it in the process that serves: the protocol class it makes holds that
    process's table of open connections."""
    options: dict[str, Any] = {"log_level": "warning", "access_log": False,
                               "server_header": False, "timeout_graceful_shutdown": 10,
                               "proxy_headers": bool(settings.trusted_proxies),
                               "http": guarded_protocol(HttpLimits.from_settings(settings))}
    if settings.trusted_proxies:
        options["forwarded_allow_ips"] = ",".join(settings.trusted_proxies)
    if settings.tls_cert is not None:
        options["ssl_certfile"] = str(settings.tls_cert)
        options["ssl_keyfile"] = str(settings.tls_key)
    return options
