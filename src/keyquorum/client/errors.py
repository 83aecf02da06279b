"""Exceptions raised by the keyquorum SDK, one per stable API error code.

    KeyquorumClientError
    ├── TransportError                 no answer: connection refused, timeout, TLS failure
    └── KeyquorumAPIError              the server answered with an error (code, status)
        ├── InvalidRequestError        400 invalid_request
        │   ├── WrongPassphraseError       400 wrong_passphrase
        │   ├── SealUnavailableError       400 seal_unavailable (carries reason)
        │   └── InvalidProofError          400 invalid_proof
        ├── InvalidCiphertextError     400 invalid_ciphertext
        ├── UnauthenticatedError       401 unauthenticated
        ├── ForbiddenError             403 forbidden
        │   ├── SelfApprovalError          403 self_approval
        │   ├── ApprovalMismatchError      403 approval_mismatch
        │   └── ApprovalNotRequesterError  403 approval_not_requester
        ├── ApprovalRequiredError      403 approval_required (carries approval_id)
        ├── NotFoundError              404 not_found
        ├── ConflictError              409 conflict
        │   ├── DuplicateApprovalError     409 duplicate_approval
        │   ├── ApprovalConsumedError      409 approval_consumed
        │   ├── ApprovalExpiredError       409 approval_expired
        │   ├── ApprovalRejectedError      409 approval_rejected
        │   ├── SealRequiredError          409 seal_required
        │   ├── ChallengeExpiredError      409 challenge_expired
        │   ├── ChallengeUsedError         409 challenge_used
        │   └── CustodianKeyRequiredError  409 custodian_key_required
        ├── KeyStateError              409 key_state
        ├── TooLargeError              413 too_large
        ├── RateLimitedError           429 rate_limited
        ├── SealedError                503 sealed
        ├── AuditUnavailableError      503 audit_unavailable
        └── StorageUnavailableError    503 storage_unavailable

An unknown code (a newer server) raises ``KeyquorumAPIError`` itself, so
``except KeyquorumAPIError`` always catches every answered error.

Every ``KeyquorumAPIError`` carries the ``request_id`` of the request it came
from (match it against the server's audit log). None carries the token: the
message is the server's, and the server never echoes secrets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = [
    "ApprovalConsumedError",
    "ApprovalExpiredError",
    "ApprovalMismatchError",
    "ApprovalNotRequesterError",
    "ApprovalRejectedError",
    "ApprovalRequiredError",
    "AuditUnavailableError",
    "ChallengeExpiredError",
    "ChallengeUsedError",
    "ConflictError",
    "CustodianKeyRequiredError",
    "DuplicateApprovalError",
    "ForbiddenError",
    "InvalidCiphertextError",
    "InvalidProofError",
    "InvalidRequestError",
    "KeyStateError",
    "KeyquorumAPIError",
    "KeyquorumClientError",
    "NotFoundError",
    "RateLimitedError",
    "SealRequiredError",
    "SealUnavailableError",
    "SealedError",
    "SelfApprovalError",
    "StorageUnavailableError",
    "TooLargeError",
    "TransportError",
    "UnauthenticatedError",
    "WrongPassphraseError",
]


class KeyquorumClientError(Exception):
    """Base of every exception the SDK raises on purpose."""


class TransportError(KeyquorumClientError):
    """No answer came back: the connection failed, timed out or TLS did not verify."""

    def __init__(self, message: str, *, addr: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.addr = addr

    def __repr__(self) -> str:
        return f"TransportError({self.message!r})"


class KeyquorumAPIError(KeyquorumClientError):
    """The server answered with an error; ``code`` is the stable API error code."""

    code_name: ClassVar[str] = ""  # the code a subclass stands for ("" for the base)
    http_status: ClassVar[int] = 0

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.code_name or "unknown"
        self.status = status if status is not None else self.http_status
        self.request_id = request_id
        self.details: dict[str, Any] = dict(details or {})

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, "
                f"status={self.status}, request_id={self.request_id!r})")


class InvalidRequestError(KeyquorumAPIError):
    """Malformed JSON, bad base64, unknown field value or bad name."""

    code_name = "invalid_request"
    http_status = 400


class WrongPassphraseError(InvalidRequestError):
    """The passphrase opens no passphrase seal."""

    code_name = "wrong_passphrase"


class SealUnavailableError(InvalidRequestError):
    """An HSM or cloud KMS seal could not be used; ``reason`` says which part failed."""

    code_name = "seal_unavailable"

    @property
    def reason(self) -> str | None:
        value = self.details.get("reason")
        return None if value is None else str(value)


class InvalidCiphertextError(KeyquorumAPIError):
    """The ciphertext does not parse or authenticate (also: wrong context)."""

    code_name = "invalid_ciphertext"
    http_status = 400


class UnauthenticatedError(KeyquorumAPIError):
    """Missing, unknown, expired or revoked token."""

    code_name = "unauthenticated"
    http_status = 401


class ForbiddenError(KeyquorumAPIError):
    """The token's policies do not allow this operation on this key."""

    code_name = "forbidden"
    http_status = 403


class ApprovalRequiredError(KeyquorumAPIError):
    """Dual control: the operation waits for approval ``approval_id``."""

    code_name = "approval_required"
    http_status = 403

    @property
    def approval_id(self) -> str | None:
        value = self.details.get("approval_id")
        return None if value is None else str(value)


class SelfApprovalError(ForbiddenError):
    """Dual control: the requester may not decide their own request."""

    code_name = "self_approval"


class ApprovalMismatchError(ForbiddenError):
    """Dual control: the approval was given for a different request (key or parameters)."""

    code_name = "approval_mismatch"


class ApprovalNotRequesterError(ForbiddenError):
    """Dual control: only the identity that made the request may use its approval."""

    code_name = "approval_not_requester"


class NotFoundError(KeyquorumAPIError):
    """No such key, version, token or policy."""

    code_name = "not_found"
    http_status = 404


class ConflictError(KeyquorumAPIError):
    """Name taken, concurrent change, or wrong purpose for the operation."""

    code_name = "conflict"
    http_status = 409


class DuplicateApprovalError(ConflictError):
    """Dual control: this identity already decided this request."""

    code_name = "duplicate_approval"


class ApprovalConsumedError(ConflictError):
    """Dual control: the approval was already used (it runs its request once)."""

    code_name = "approval_consumed"


class ApprovalExpiredError(ConflictError):
    """Dual control: the approval request's time to live has passed."""

    code_name = "approval_expired"


class ApprovalRejectedError(ConflictError):
    """Dual control: an approver rejected the request."""

    code_name = "approval_rejected"


class SealRequiredError(ConflictError):
    """The change would remove Shamir, the recovery path to the root key."""

    code_name = "seal_required"


class ChallengeExpiredError(ConflictError):
    """A custodian challenge's time to live passed before the proof came: ask again."""

    code_name = "challenge_expired"


class ChallengeUsedError(ConflictError):
    """The custodian challenge already answered a proof (each answers one)."""

    code_name = "challenge_used"


class CustodianKeyRequiredError(ConflictError):
    """A rekey needs a public key for every custodian of the new share set (none is ever
    answered in the clear); the message names the custodians without one."""

    code_name = "custodian_key_required"


class InvalidProofError(InvalidRequestError):
    """A custodian's proof of possession did not verify (wrong share, challenge or name)."""

    code_name = "invalid_proof"


class KeyStateError(KeyquorumAPIError):
    """The key's or version's state forbids the operation."""

    code_name = "key_state"
    http_status = 409


class TooLargeError(KeyquorumAPIError):
    """The payload is over the server's limit."""

    code_name = "too_large"
    http_status = 413


class RateLimitedError(KeyquorumAPIError):
    """Over quota; retry later."""

    code_name = "rate_limited"
    http_status = 429


class SealedError(KeyquorumAPIError):
    """The service is sealed or not initialized."""

    code_name = "sealed"
    http_status = 503


class AuditUnavailableError(KeyquorumAPIError):
    """The audit write failed, so nothing was done."""

    code_name = "audit_unavailable"
    http_status = 503


class StorageUnavailableError(KeyquorumAPIError):
    """The server's storage is full or failing, so nothing was changed; retry later."""

    code_name = "storage_unavailable"
    http_status = 503


_BY_CODE: dict[str, type[KeyquorumAPIError]] = {
    cls.code_name: cls
    for cls in (
        InvalidRequestError, InvalidCiphertextError, UnauthenticatedError, ForbiddenError,
        ApprovalRequiredError, NotFoundError, ConflictError, KeyStateError, TooLargeError,
        RateLimitedError, SealedError, AuditUnavailableError, SelfApprovalError,
        ApprovalMismatchError, ApprovalNotRequesterError, DuplicateApprovalError,
        ApprovalConsumedError, ApprovalExpiredError, ApprovalRejectedError,
        WrongPassphraseError, SealUnavailableError, SealRequiredError, InvalidProofError,
        ChallengeExpiredError, ChallengeUsedError, StorageUnavailableError,
        CustodianKeyRequiredError,
    )
}


def error_from_body(body: Any, *, status: int | None, request_id: str | None) -> KeyquorumAPIError:
    """Build the exception for an ``{"error": {...}}`` body (a whole answer or a batch item)."""
    error = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping):
        return KeyquorumAPIError(
            f"unexpected answer from the server (HTTP {status})",
            code="unexpected_answer", status=status, request_id=request_id,
        )
    code = str(error.get("code") or "unknown")
    message = str(error.get("message") or code)
    request_id = str(error.get("request_id") or request_id or "") or None
    details = {k: v for k, v in error.items() if k not in ("code", "message", "request_id")}
    cls = _BY_CODE.get(code, KeyquorumAPIError)
    if status is None:
        status = cls.http_status or None
    return cls(message, code=code, status=status, request_id=request_id, details=details)
