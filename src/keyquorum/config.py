"""Server settings, validated at start-up (not at first use)."""

from __future__ import annotations

import ipaddress
import json
import math
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from keyquorum.audit.sink_targets import SinkTargets
from keyquorum.audit.sinks import SinkConfig, parse_sink_configs
from keyquorum.auth.dual_settings import OFF, DualControlSettings, parse_settings
from keyquorum.errors import KeyquorumError
from keyquorum.seal.trust import SealTrust
from keyquorum.transit.mounts import DEFAULT_MOUNTS, parse_mounts

SEAL_TRUST_FIELDS = ("pkcs11_modules", "kms_endpoints", "kms_plain_http_hosts",
                     "pkcs11_pin_env_prefix", "pkcs11_pin_dir")
SINK_TARGET_FIELDS = ("audit_sink_dirs", "audit_syslog_targets")

DEFAULT_LISTEN = "127.0.0.1:8200"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    listen: str = DEFAULT_LISTEN
    # The store: None for the embedded SQLite file in data_dir, or postgresql://HOST/DB.
    # Out of the repr: a URL may carry a password (storage.postgres says where else it
    # can come from: database_password_file, KEYQUORUM_DATABASE_PASSWORD, libpq's own).
    database_url: str | None = field(default=None, repr=False)
    database_password_file: Path | None = None
    max_item_bytes: int = 64 * 1024
    max_batch_items: int = 1000
    max_body_bytes: int = 128 * 1024 * 1024
    scheduler_interval: float = 30.0
    usage_reserve_block: int = 4096
    default_deletion_window_days: int = 30
    default_token_ttl: float = 32 * 86400
    unsafe_test_clock: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    allow_plain_http: bool = False
    # Addresses whose X-Forwarded-For is believed; none by default, so a client
    # cannot put someone else's address into the audit log.
    trusted_proxies: tuple[str, ...] = ()
    # Server processes sharing the socket and store (``--workers``); set by the server.
    workers: int = 1
    # Audit sinks besides the database (file, syslog), each required or best-effort.
    audit_sinks: tuple[SinkConfig, ...] = ()
    # Seconds between signed audit checkpoints (one is also made on seal).
    audit_checkpoint_interval: float = 300.0
    # The oldest audit-chain verification a compliance report may reuse (a full check
    # reads every record); a seal always discards it.
    report_evidence_max_age: float = 300.0
    # Dual control's floor: ``{"approvals": M, "operations"?: [...], "ttl"?: "24h"}`` in the
    # file; settings made through the API may be stricter, never weaker. Off by default.
    dual_control: DualControlSettings = OFF
    # Custodian drills: a share counts toward the quorum margin if it was shown (issued,
    # proved or used at unseal) within this many days.
    drill_window_days: int = 90
    # Lock the server's memory against swap (``runtime.hardening``): try (where
    # permitted, else one warning), require (refuse to start without) or off.
    memory_lock: str = "try"
    # Hostile or broken HTTP clients (keyquorum.runtime.http_limits says why each exists).
    # Seconds to send a request's headers, from the connection (or from the first byte
    # of a later request on a kept-alive connection); idle keep-alive is uvicorn's 5 s.
    header_timeout: float = 10.0
    # Longest wait for the next piece of a request body, and the slowest average rate
    # (bytes/s, 0 for none) a body may arrive at once ``body_timeout`` has passed.
    body_timeout: float = 30.0
    min_body_rate: int = 1024
    # Header fields (names + values), how many, and the request target; 431 / 414 past them.
    max_header_bytes: int = 64 * 1024
    max_headers: int = 100
    max_url_bytes: int = 8 * 1024
    # Open connections per process; None: the soft file-descriptor limit less a reserve.
    max_connections: int | None = None
    # The AWS KMS API (docs/AWS-KMS.md): the account in key ARNs, the regions a SigV4
    # signature may be scoped to (any when empty), and ``keyquorum dev
    # --aws-any-credentials`` (any well-formed signature is root; never from a file).
    aws_account_id: str = "000000000000"
    aws_regions: tuple[str, ...] = ()
    aws_any_credentials: bool = False
    # Trust roots: the PKCS#11 modules, KMS endpoints and PIN sources a seal may use
    # (``seal.trust``), from the config file's pkcs11_modules, kms_endpoints,
    # kms_plain_http_hosts, pkcs11_pin_env_prefix and pkcs11_pin_dir. Nothing by default:
    # the API chooses among what is listed here and never adds to it.
    seal_trust: SealTrust = field(default_factory=SealTrust)
    # Where sinks added through the API may write (``audit.sink_targets``): the config
    # file's audit_sink_dirs and audit_syslog_targets. Nothing by default.
    audit_sink_targets: SinkTargets = field(default_factory=SinkTargets)

    # Vault transit API mounts (``transit.mounts``): mount path -> key-name prefix, given
    # in the config file as {"transit": "", "team-a": "team-a/"}.
    vault_transit_mounts: tuple[tuple[str, str], ...] = DEFAULT_MOUNTS

    # A cluster node that starts sealed may be handed the root key by an unsealed peer
    # (``service.node_handoff``): its name (the id of its ``node`` seal; default the
    # host name), its private key file (``keyquorum operator seals node-key``) and the
    # cluster's audit key id it trusts the answer from (a trust root: ``key_id`` of
    # ``GET /v1/audit/public-key``). Without node_key_file the node never asks.
    node_name: str | None = None
    node_key_file: Path | None = None
    node_trust_key: str | None = None
    # Seconds between a node's looks at the shared store: requests to answer, its own
    # answer, and the cluster's seal epoch (``POST /v1/sys/seal`` seals every node).
    node_link_interval: float = 1.0
    # Seconds this node's clock may differ from the database's (PostgreSQL) before it
    # stops running the scheduled jobs (``service.clock_skew``): other nodes run them.
    max_clock_skew: float = 5.0

    @property
    def host(self) -> str:
        return parse_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return parse_listen(self.listen)[1]

    def validate(self) -> Settings:
        host, _ = parse_listen(self.listen)
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("--tls-cert and --tls-key go together")
        if self.tls_cert is None and not self.allow_plain_http and not is_loopback(host):
            raise ValueError(
                f"refusing plain HTTP on non-loopback address {host}: give --tls-cert/--tls-key "
                "or --allow-plain-http")
        if not 1 <= self.max_item_bytes <= 64 * 1024 * 1024:
            raise ValueError("max_item_bytes must be between 1 byte and 64 MiB")
        if not 1 <= self.max_batch_items <= 100_000:
            raise ValueError("max_batch_items must be between 1 and 100000")
        if not 7 <= self.default_deletion_window_days <= 30:
            raise ValueError("default_deletion_window_days must be 7-30")
        if self.scheduler_interval <= 0:
            raise ValueError("scheduler_interval must be positive")
        if not 1 <= self.audit_checkpoint_interval <= 86400:
            raise ValueError("audit_checkpoint_interval must be 1-86400 seconds")
        if not 0 <= self.report_evidence_max_age <= 86400:
            raise ValueError("report_evidence_max_age must be 0-86400 seconds")
        if not 1 <= self.drill_window_days <= 3650:
            raise ValueError("drill_window_days must be 1-3650")
        if self.memory_lock not in ("try", "require", "off"):
            raise ValueError("memory_lock must be one of: try, require, off")
        _check_seconds("header_timeout", self.header_timeout, 0.1, 3600)
        _check_seconds("body_timeout", self.body_timeout, 0.1, 3600)
        _check_count("min_body_rate", self.min_body_rate, 0, 1 << 30)
        _check_count("max_header_bytes", self.max_header_bytes, 1024, 16 << 20)
        _check_count("max_headers", self.max_headers, 8, 10_000)
        _check_count("max_url_bytes", self.max_url_bytes, 256, 1 << 20)
        if self.max_connections is not None:
            _check_count("max_connections", self.max_connections, 16, 1_000_000)
        if not isinstance(self.aws_account_id, str) or not re.fullmatch(
                r"\d{12}", self.aws_account_id):
            raise ValueError("aws_account_id must be 12 digits")
        if not all(isinstance(r, str) and re.fullmatch(r"[a-z0-9-]{1,32}", r)
                   for r in self.aws_regions):
            raise ValueError("aws_regions must be region names (e.g. us-east-1)")
        self._validate_node()
        if self.database_url is not None:
            from keyquorum.storage.postgres import check_database_url  # lazily: SQLAlchemy

            check_database_url(self.database_url)
        return self

    def _validate_node(self) -> None:
        _check_seconds("node_link_interval", self.node_link_interval, 0.05, 60)
        _check_seconds("max_clock_skew", self.max_clock_skew, 0.1, 3600)
        if self.node_name is not None and not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,47}",
                                                           self.node_name):
            raise ValueError("node_name must be 1-48 of a-z 0-9 . _ - (it is a seal id)")
        if (self.node_key_file is None) != (self.node_trust_key is None):
            raise ValueError("node_key_file and node_trust_key go together")
        if self.node_trust_key is not None and not re.fullmatch(r"[0-9a-f]{64}",
                                                                self.node_trust_key):
            raise ValueError("node_trust_key is the cluster's audit key id: 64 hex digits")

    @property
    def url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'keyquorum.db'}"


def _check_seconds(name: str, value: object, low: float, high: float) -> None:
    # bool is an int subclass: ``true`` is not one second
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not math.isfinite(value) or not low <= value <= high):
        raise ValueError(f"{name} must be a number of seconds from {low:g} to {high:g}")


def _check_count(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}")


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"listen address must be HOST:PORT, got {listen!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_config_file(settings: Settings, path: Path) -> Settings:
    """Overlay a JSON config file's known fields on ``settings``; unknown fields are an error."""
    raw: dict[str, Any] = json.loads(path.read_text())
    for name in ("seal_trust", "audit_sink_targets"):  # built from the fields below only
        if name in raw:
            raise ValueError(f"unknown config fields: {name}")
    trust = {name: raw.pop(name) for name in SEAL_TRUST_FIELDS if name in raw}
    if trust:
        raw["seal_trust"] = SealTrust.from_config(trust)
    targets = {name: raw.pop(name) for name in SINK_TARGET_FIELDS if name in raw}
    if targets:
        raw["audit_sink_targets"] = SinkTargets.from_config(targets)
    if "vault_transit_mounts" in raw:
        raw["vault_transit_mounts"] = parse_mounts(raw["vault_transit_mounts"])
    known = {f.name for f in fields(Settings)}
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"unknown config fields: {', '.join(sorted(unknown))}")
    for name in ("data_dir", "tls_cert", "tls_key", "database_password_file"):
        if raw.get(name) is not None:
            raw[name] = Path(raw[name])
    if raw.get("node_key_file") is not None:
        raw["node_key_file"] = Path(raw["node_key_file"])
    if "aws_any_credentials" in raw:
        raise ValueError("aws_any_credentials is not a config field: only `keyquorum dev "
                         "--aws-any-credentials` accepts any AWS signature")
    if "aws_regions" in raw:
        regions = raw["aws_regions"]
        if not isinstance(regions, list) or not all(isinstance(r, str) for r in regions):
            raise ValueError("aws_regions must be a list of region names")
        raw["aws_regions"] = tuple(regions)
    if "trusted_proxies" in raw:
        proxies = raw["trusted_proxies"]
        if not isinstance(proxies, list) or not all(isinstance(p, str) for p in proxies):
            raise ValueError("trusted_proxies must be a list of addresses")
        raw["trusted_proxies"] = tuple(proxies)
    if "audit_sinks" in raw:
        raw["audit_sinks"] = parse_sink_configs(raw["audit_sinks"])
    if "dual_control" in raw:
        try:
            raw["dual_control"] = parse_settings(raw["dual_control"], config=True)
        except KeyquorumError as exc:
            raise ValueError(exc.message) from None
    return replace(settings, **raw)
