"""Vault's answer shapes: the response envelope and ``{"errors": [...]}``.

Every success is ``{request_id, lease_id, renewable, lease_duration, data,
wrap_info, warnings, auth}`` as Vault answers it; every refusal is
``{"errors": [message]}`` with the status Vault uses for the same kind of
refusal (400 for caller mistakes and bad ciphertexts, 403 for any token or
policy refusal, 404 for a missing key on read, 503 while sealed). The message
is the domain error's own: it states the rule and never carries secret bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from keyquorum.errors import (
    ApprovalRequired,
    AuditUnavailable,
    Forbidden,
    KeyquorumError,
    NotFound,
    RateLimited,
    Sealed,
    StorageUnavailable,
    TooLarge,
    Unauthenticated,
)


@dataclass
class Answer:
    """What an endpoint answers: Vault's ``data`` and ``warnings``, or no content."""

    data: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    status: int = 200
    raw: dict[str, Any] | None = None  # sys endpoints that answer without the envelope

    def body(self, request_id: str) -> dict[str, Any] | None:
        if self.status == 204:
            return None
        if self.raw is not None:
            return self.raw
        return {"request_id": request_id, "lease_id": "", "renewable": False,
                "lease_duration": 0, "data": self.data, "wrap_info": None,
                "warnings": self.warnings or None, "auth": None}


class MethodNotAllowed(KeyquorumError):
    code = "unsupported_operation"
    status = 405


class UnsupportedPath(KeyquorumError):
    code = "not_found"
    status = 404


def vault_status(error: KeyquorumError, *, on_key_read: bool = False) -> int:
    """Vault's status for a domain error."""
    if isinstance(error, Unauthenticated | Forbidden | ApprovalRequired):
        return 403  # Vault answers every token and policy refusal with 403
    if isinstance(error, Sealed | AuditUnavailable | StorageUnavailable):
        return 503
    if isinstance(error, TooLarge):
        return 413
    if isinstance(error, RateLimited):
        return 429
    if isinstance(error, MethodNotAllowed):
        return 405
    if isinstance(error, UnsupportedPath) or (isinstance(error, NotFound) and on_key_read):
        return 404
    if error.status >= 500:
        return 500
    return 400  # caller mistakes, bad ciphertexts, key states, missing keys in crypto calls


def vault_message(error: KeyquorumError) -> str:
    if isinstance(error, Unauthenticated):
        return "permission denied"
    if isinstance(error, Forbidden):
        return f"permission denied: {error.message}"
    if isinstance(error, Sealed):
        return "keyquorum is sealed"
    if error.status >= 500 and not isinstance(
            error, AuditUnavailable | StorageUnavailable | Sealed):
        return "internal error"
    return f"{error.code}: {error.message}" if isinstance(error, ApprovalRequired) \
        else error.message


def error_body(error: KeyquorumError) -> dict[str, Any]:
    return {"errors": [vault_message(error)]}
