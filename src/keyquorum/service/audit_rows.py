"""Audit rows written inside a state change's own transaction.

A lifecycle change and its audit record commit together or not at all, so a
change can never land unaudited (fail closed) and an audit failure leaves
nothing half-written.
"""

from __future__ import annotations

import json

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from keyquorum.errors import AuditUnavailable
from keyquorum.service.context import RequestContext
from keyquorum.storage.schema import audit_records


def write_audit_in(conn: Connection, ctx: RequestContext, *, operation: str, key: str | None,
                   key_version: int | None, now: float) -> None:
    try:
        _insert(conn, ctx, operation=operation, key=key, key_version=key_version, now=now)
    except SQLAlchemyError as exc:
        # The caller's transaction rolls back with it: no change without its record.
        raise AuditUnavailable() from exc
    ctx.audited = True


def _insert(conn: Connection, ctx: RequestContext, *, operation: str, key: str | None,
            key_version: int | None, now: float) -> None:
    conn.execute(audit_records.insert().values(
        time=now, request_id=ctx.request_id, identity=ctx.accessor, operation=operation,
        key=key, key_version=key_version, outcome="ok", error_code=None, client=ctx.client,
        detail=json.dumps(ctx.detail, sort_keys=True) if ctx.detail else None,
    ))
