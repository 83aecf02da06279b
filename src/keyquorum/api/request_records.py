"""What one request's audit records say: the record of a call or a refusal, and for a
batch one record per distinct outcome (``BatchTally``) rather than one per item."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keyquorum.audit.keys import AuditKeys
from keyquorum.audit.records import AuditRecord
from keyquorum.errors import ApprovalRequired, Forbidden, KeyquorumError, Unauthenticated
from keyquorum.service.context import RequestContext
from keyquorum.service.operations import Used, subject_of

DENIALS = (Unauthenticated, Forbidden, ApprovalRequired)
"""Refusals recorded with outcome ``denied`` (the rest are ``error``)."""


def make_record(ctx: RequestContext, operation: str, key: str | None, version: int | None,
                 error: KeyquorumError | None, now: float, audit_keys: AuditKeys | None,
                 detail: Mapping[str, str] | None, context: dict[str, str] | None
                 ) -> AuditRecord:
    outcome = "ok" if error is None else ("denied" if isinstance(error, DENIALS) else "error")
    if error is not None and error.audit_detail:  # what a refusal says about itself
        detail = {**(detail or {}), **error.audit_detail}
    # The context may carry personal data: only its HMAC is stored. Sealed (no audit
    # key), no operation ran, so there is nothing to hash and nothing is kept.
    hashed = audit_keys.hash_context(context) if context and audit_keys else None
    return AuditRecord(time=now, request_id=ctx.request_id, identity=ctx.accessor,
                       operation=operation, key=key, key_version=version, outcome=outcome,
                       error_code=error.code if error else None, client=ctx.client,
                       detail=dict(detail) if detail else None, context=hashed)


class BatchTally:
    """One audit record per (key, version, outcome, error, detail, context) of a batch.

    Every item is still accounted for — who, which key and version, how it ended,
    and how many — without writing a hundred near-identical rows per request.
    """

    __slots__ = ("groups",)

    def __init__(self) -> None:
        self.groups: dict[tuple[Any, ...], list[Any]] = {}

    def add(self, key: str | None, version: int | None, error: KeyquorumError | None,
            detail: dict[str, str] | None, context: dict[str, str] | None) -> None:
        group = (key, version, error.code if error else None,
                 tuple(sorted(detail.items())) if detail else (),
                 tuple(sorted(context.items())) if context else ())
        entry = self.groups.get(group)
        if entry is None:
            self.groups[group] = [1, error, detail, context]
        else:
            entry[0] += 1

    def records(self, ctx: RequestContext, operation: str, now: float, batch_size: int,
                audit_keys: AuditKeys | None) -> list[AuditRecord]:
        return [
            make_record(ctx, operation, key, version, error, now, audit_keys,
                         {**ctx.detail, **(detail or {}), "items": str(count),
                          "batch_size": str(batch_size)},
                         context)
            for (key, version, _code, _detail, _context), (count, error, detail, context)
            in self.groups.items()]


_OVERRIDE_FACT = {"override": "unsafe_allow_compromised"}
"""What an item's record says when it used the compromised-version override (never
changed: it is shared by every such record)."""


def override_fact(result: Used) -> dict[str, str] | None:
    """The detail an item's record carries when it used the override, else None."""
    return _OVERRIDE_FACT if getattr(result, "override", False) else None


def item_facts(result: Used | None, error: KeyquorumError | None, key: str | None
                ) -> tuple[str | None, int | None, dict[str, str] | None]:
    """The key, version and detail an item's record names."""
    if result is not None:
        return result.key or key, result.version, override_fact(result)
    subject = subject_of(error) if error is not None else None
    if subject is not None:
        return subject[0], subject[1], None
    return key, None, None


def context_of(item: Any) -> dict[str, str] | None:
    return getattr(item, "context", None)
