"""Audit rows written inside a state change's own transaction.

A lifecycle change and its audit record commit together or not at all, so a
change can never land unaudited (fail closed) and an audit failure leaves
nothing half-written. The record is a link of the audit chain like any other
and reaches the required sinks before the transaction commits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from sqlalchemy import Connection

from keyquorum.audit.log import AuditLog
from keyquorum.audit.records import AuditRecord
from keyquorum.errors import AuditUnavailable
from keyquorum.storage.errors import is_storage_failure, transient_conflict

if TYPE_CHECKING:  # the audit package does not depend on the service layer at run time
    from keyquorum.service.context import RequestContext


def write_audit_in(audit: AuditLog, conn: Connection, ctx: RequestContext, *, operation: str,
                   key: str | None, key_version: int | None, now: float,
                   detail: Mapping[str, str] | None = None) -> None:
    """Append the change's record on ``conn``.

    ``detail`` holds the facts the change itself learned (a reason, the versions
    erased, an approval id); they are passed here as values, never through the
    request context. ``ctx.detail`` carries only what a front set before the
    call (a foreign API's name and path), and comes first so a change's own
    facts win on a clash.
    """
    facts = {**ctx.detail, **detail} if detail else ctx.detail
    record = AuditRecord(time=now, request_id=ctx.request_id, identity=ctx.accessor,
                         operation=operation, key=key, key_version=key_version, outcome="ok",
                         error_code=None, client=ctx.client,
                         detail=dict(facts) if facts else None)
    try:
        audit.append_in(conn, [record])
    except AuditUnavailable:
        raise
    except Exception as exc:  # storage (SQLAlchemy or the driver itself) or anything else
        if is_storage_failure(exc) or transient_conflict(exc):
            raise  # a full disk or a deadlock is the store's failure, not the audit's
        # The caller's transaction rolls back with it: no change without its record.
        raise AuditUnavailable() from exc
    ctx.audited = True
