"""keyquorum.audit: the durable record of every state change and every use of a key."""

from __future__ import annotations

from keyquorum.audit.log import AuditLog
from keyquorum.audit.records import OUTCOMES, AuditRecord, to_json

__all__ = ["OUTCOMES", "AuditLog", "AuditRecord", "to_json"]
