"""What one audit record says, and its row and JSON forms.

A record names the caller by token *accessor*, never by token, and carries no
key material or plaintext: ``detail`` is for short non-secret facts (a reason,
a destination key), and callers own that promise. The encryption context may
carry personal data, so it is kept only HMAC'd (``context``: hashed name →
hashed value, see ``hashing.py``); an auditor finds records by hashing a known
value through the API.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson

from keyquorum.clock import rfc3339

OUTCOMES = frozenset({"ok", "denied", "error"})

# Column widths of ``audit_records``: values are cut to fit before the write, so one
# over-long client-supplied field cannot fail the whole group it is committed with.
_WIDTHS = {"request_id": 64, "identity": 64, "operation": 32, "key": 128,
           "error_code": 32, "client": 64}


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """Who did what to which key version, when, and how it ended."""

    time: float
    request_id: str
    identity: str | None
    operation: str
    key: str | None
    key_version: int | None
    outcome: str
    error_code: str | None
    client: str | None
    detail: dict[str, str] | None = None
    context: dict[str, str] | None = None  # already HMAC'd: never a clear value
    id: int | None = None  # set only on records read back from storage
    chain_hash: str | None = None  # likewise

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError("outcome must be one of ok, denied, error")


def _fit(value: str | None, width: int) -> str | None:
    return value if value is None or len(value) <= width else value[:width]


def to_row(record: AuditRecord) -> dict[str, Any]:
    """The insert row: a plain dict, built by hand because this runs on every request."""
    return {
        "time": record.time,
        "request_id": _fit(record.request_id, _WIDTHS["request_id"]),
        "identity": _fit(record.identity, _WIDTHS["identity"]),
        "operation": _fit(record.operation, _WIDTHS["operation"]),
        "key": _fit(record.key, _WIDTHS["key"]),
        "key_version": record.key_version,
        "outcome": record.outcome,
        "error_code": _fit(record.error_code, _WIDTHS["error_code"]),
        "client": _fit(record.client, _WIDTHS["client"]),
        # orjson: compact and sorted like json.dumps(sort_keys=True, separators=(",", ":")),
        # several times faster on the hot path (non-ASCII stays UTF-8; the chain's
        # canonical form escapes it).
        "detail": None if record.detail is None else orjson.dumps(
            record.detail, option=orjson.OPT_SORT_KEYS).decode(),
        "context": None if not record.context else orjson.dumps(
            record.context, option=orjson.OPT_SORT_KEYS).decode(),
    }


def from_row(row: Any) -> AuditRecord:
    return AuditRecord(
        time=row.time, request_id=row.request_id, identity=row.identity,
        operation=row.operation, key=row.key, key_version=row.key_version,
        outcome=row.outcome, error_code=row.error_code, client=row.client,
        detail=None if row.detail is None else json.loads(row.detail),
        context=None if row.context is None else json.loads(row.context), id=row.id,
        chain_hash=row.chain_hash)


def to_json(record: AuditRecord) -> dict[str, Any]:
    """The API form (API.md's audit record); ``detail`` is added only when present."""
    body: dict[str, Any] = {
        "id": record.id,
        "time": rfc3339(record.time),
        "request_id": record.request_id,
        "identity": record.identity,
        "operation": record.operation,
        "key": record.key,
        "key_version": record.key_version,
        "outcome": record.outcome,
        "error_code": record.error_code,
        "client": record.client,
    }
    if record.detail is not None:
        body["detail"] = record.detail
    if record.context is not None:
        body["context"] = record.context
    if record.chain_hash is not None:
        body["chain_hash"] = record.chain_hash
    return body
