"""An audit sink's configuration: ``SinkConfig``, and the strict parser that makes one.

The config file's ``audit_sinks`` and the body of ``PUT /v1/sys/audit/sinks/{name}``
both go through ``parse_sink_config``, so a sink is checked by one set of rules
wherever it comes from. What a sink does with its policy is in ``sinks.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

REQUIRED = "required"
BEST_EFFORT = "best-effort"
_KINDS = ("file", "syslog")
_FIELDS = {
    "file": {"name", "type", "policy", "timeout", "path", "max_bytes", "keep", "fsync"},
    "syslog": {"name", "type", "policy", "timeout", "address", "facility"},
}
# RFC 5424 facility codes keyquorum accepts: security/authorization messages, or local use.
FACILITY_CODES: Mapping[str, int] = {"auth": 4, "authpriv": 10,
                                     **{f"local{i}": 16 + i for i in range(8)}}
SINK_KINDS: tuple[str, ...] = _KINDS
FACILITIES: tuple[str, ...] = tuple(FACILITY_CODES)
"""The names the request schema of ``PUT /v1/sys/audit/sinks/{name}`` lists."""


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
    parse_syslog_address(address, where)
    facility = item.get("facility", "authpriv")
    if facility not in FACILITY_CODES:
        raise ValueError(f"{where}: facility must be one of {', '.join(FACILITY_CODES)}")
    return SinkConfig(name, kind, policy, float(timeout), address=address, facility=facility)


def parse_syslog_address(address: str, where: str = "syslog") -> tuple[str, Any]:
    """``("unix", path)`` or ``("udp" | "tcp", (host, port))``; ``ValueError`` otherwise."""
    parts = urlsplit(address)
    if parts.scheme == "unix" and parts.path:
        return "unix", parts.path
    if parts.scheme in ("udp", "tcp") and parts.hostname and parts.port:
        return parts.scheme, (parts.hostname, parts.port)
    raise ValueError(f"{where}: address must be udp://HOST:PORT, tcp://HOST:PORT or "
                     "unix:///PATH")
