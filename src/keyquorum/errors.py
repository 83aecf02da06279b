"""Domain errors, one class per stable API error code.

Services raise these; exactly one place (``keyquorum.api.errors``) maps them to
HTTP. Messages state the rule that was broken and never carry secret bytes.

    KeyquorumError
    ├── InvalidRequest        400 invalid_request
    │   ├── WrongPassphrase       400 wrong_passphrase
    │   ├── SealUnavailable       400 seal_unavailable (``reason`` says which part failed)
    │   └── InvalidProof          400 invalid_proof
    ├── InvalidCiphertext     400 invalid_ciphertext
    ├── Unauthenticated       401 unauthenticated
    ├── Forbidden             403 forbidden
    │   ├── SelfApproval          403 self_approval
    │   ├── ApprovalMismatch      403 approval_mismatch
    │   └── ApprovalNotRequester  403 approval_not_requester
    ├── ApprovalRequired      403 approval_required
    ├── NotFound              404 not_found
    ├── Conflict              409 conflict
    │   ├── DuplicateApproval     409 duplicate_approval
    │   ├── ApprovalConsumed      409 approval_consumed
    │   ├── ApprovalExpired       409 approval_expired
    │   ├── ApprovalRejected      409 approval_rejected
    │   ├── SealRequired          409 seal_required
    │   ├── ChallengeExpired      409 challenge_expired
    │   ├── ChallengeUsed         409 challenge_used
    │   └── CustodianKeyRequired  409 custodian_key_required
    ├── KeyStateError         409 key_state
    ├── TooLarge              413 too_large
    ├── RateLimited           429 rate_limited
    ├── Sealed                503 sealed
    ├── AuditUnavailable      503 audit_unavailable
    └── StorageUnavailable    503 storage_unavailable
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class KeyquorumError(Exception):
    """Base of every error with a stable code."""

    code: ClassVar[str] = "internal"
    status: ClassVar[int] = 500
    # The key (and version) a refusal concerns when the service discovered it (from a
    # ciphertext's header, an approval): for the audit record only, never the answer.
    audit_subject: tuple[str | None, int | None] | None = None
    # Facts about the refusal for its audit record (the approval a guarded action
    # opened): set by the service that raises it, written by the pipeline.
    audit_detail: Mapping[str, str] | None = None

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code}: {self.message})"


class InvalidRequest(KeyquorumError):
    code = "invalid_request"
    status = 400


class WrongPassphrase(InvalidRequest):
    """The passphrase opens no passphrase seal (never says how close it came)."""

    code = "wrong_passphrase"

    def __init__(self, message: str = "the passphrase does not open any passphrase seal",
                 **details: Any) -> None:
        super().__init__(message, **details)


class SealUnavailable(InvalidRequest):
    """An HSM or cloud KMS seal could not be used: missing library or module, unknown
    token or key, wrong PIN, unreachable service. ``reason`` is a stable word for which."""

    code = "seal_unavailable"


class InvalidProof(InvalidRequest):
    """A custodian's proof of possession does not verify (forged, wrong share or challenge)."""

    code = "invalid_proof"


class InvalidCiphertext(KeyquorumError):
    """One answer for every failure to parse or authenticate: never say which check failed."""

    code = "invalid_ciphertext"
    status = 400

    def __init__(self, message: str = "ciphertext is invalid or does not match the context",
                 **details: Any) -> None:
        super().__init__(message, **details)


class Unauthenticated(KeyquorumError):
    code = "unauthenticated"
    status = 401

    def __init__(self, message: str = "missing, unknown, expired or revoked token",
                 **details: Any) -> None:
        super().__init__(message, **details)


class Forbidden(KeyquorumError):
    code = "forbidden"
    status = 403


class ApprovalRequired(KeyquorumError):
    code = "approval_required"
    status = 403


class SelfApproval(Forbidden):
    """Dual control: the requester of an approval may not decide it."""

    code = "self_approval"


class ApprovalMismatch(Forbidden):
    """Dual control: the re-sent request is not the one that was approved."""

    code = "approval_mismatch"


class ApprovalNotRequester(Forbidden):
    """Dual control: only the identity that asked may use an approval."""

    code = "approval_not_requester"


class NotFound(KeyquorumError):
    code = "not_found"
    status = 404


class Conflict(KeyquorumError):
    code = "conflict"
    status = 409


class DuplicateApproval(Conflict):
    """Dual control: this identity already decided this approval."""

    code = "duplicate_approval"


class ApprovalConsumed(Conflict):
    """Dual control: the approval was already used; an approval runs its request once."""

    code = "approval_consumed"


class ApprovalExpired(Conflict):
    """Dual control: the approval's time to live has passed."""

    code = "approval_expired"


class ApprovalRejected(Conflict):
    """Dual control: an approver rejected the request."""

    code = "approval_rejected"


class SealRequired(Conflict):
    """The change would remove a way back to the root key that must stay (Shamir)."""

    code = "seal_required"


class ChallengeExpired(Conflict):
    """A custodian challenge's time to live has passed: ask for a fresh one."""

    code = "challenge_expired"


class ChallengeUsed(Conflict):
    """A custodian challenge already answered a proof: each answers exactly one."""

    code = "challenge_used"


class CustodianKeyRequired(Conflict):
    """A rekey would hand out a share with no key to seal it to: it never answers one in
    the clear. The message names the custodians without a registered or given key."""

    code = "custodian_key_required"


class KeyStateError(KeyquorumError):
    code = "key_state"
    status = 409


class TooLarge(KeyquorumError):
    code = "too_large"
    status = 413


class RateLimited(KeyquorumError):
    code = "rate_limited"
    status = 429


class Sealed(KeyquorumError):
    code = "sealed"
    status = 503

    def __init__(self, message: str = "the service is sealed or not initialized",
                 **details: Any) -> None:
        super().__init__(message, **details)


class AuditUnavailable(KeyquorumError):
    code = "audit_unavailable"
    status = 503

    def __init__(self, message: str = "the audit write failed, so nothing was done",
                 **details: Any) -> None:
        super().__init__(message, **details)


class StorageUnavailable(KeyquorumError):
    """The database could not be written because its disk is full or failing.

    The change's transaction rolled back, so nothing was changed; the same request
    succeeds once space is freed. Not the caller's mistake and not a bug: never a 500.
    """

    code = "storage_unavailable"
    status = 503

    def __init__(self, message: str = "storage is full or failing; nothing was changed",
                 **details: Any) -> None:
        super().__init__(message, **details)


ALL_ERRORS: tuple[type[KeyquorumError], ...] = (
    InvalidRequest, InvalidCiphertext, Unauthenticated, Forbidden, ApprovalRequired,
    NotFound, Conflict, KeyStateError, TooLarge, RateLimited, Sealed, AuditUnavailable,
    SelfApproval, ApprovalMismatch, ApprovalNotRequester, DuplicateApproval, ApprovalConsumed,
    ApprovalExpired, ApprovalRejected, WrongPassphrase, SealUnavailable, SealRequired,
    InvalidProof, ChallengeExpired, ChallengeUsed, StorageUnavailable, CustodianKeyRequired,
)
