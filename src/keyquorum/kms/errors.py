"""AWS KMS exception names for keyquorum's errors, and the ones only the KMS API raises.

An AWS SDK decides what to do with an error by its ``__type`` (retry a
``DependencyTimeoutException``, give up on a ``NotFoundException``), so every
answer carries AWS's name for what happened. The domain errors keep their
stable keyquorum codes for the audit record; ``aws_error`` names them for the
client. Errors raised here subclass the domain errors (an unknown credential is
``Unauthenticated``, a bad field ``InvalidRequest``), so the pipeline audits
and counts them like any other refusal.
"""

from __future__ import annotations

from typing import ClassVar

from keyquorum.errors import (
    ApprovalRequired,
    AuditUnavailable,
    Conflict,
    Forbidden,
    InvalidCiphertext,
    InvalidRequest,
    KeyquorumError,
    KeyStateError,
    NotFound,
    RateLimited,
    Sealed,
    StorageUnavailable,
    TooLarge,
    Unauthenticated,
)


class KmsAuthError(Unauthenticated):
    """A request whose signature does not show who sent it."""

    aws_type: ClassVar[str] = "UnrecognizedClientException"


class MissingAuthenticationToken(KmsAuthError):
    aws_type = "MissingAuthenticationTokenException"


class IncompleteSignature(KmsAuthError):
    aws_type = "IncompleteSignatureException"


class InvalidSignature(KmsAuthError):
    aws_type = "InvalidSignatureException"


class UnrecognizedClient(KmsAuthError):
    aws_type = "UnrecognizedClientException"


class KmsRequestError(InvalidRequest):
    """A request AWS would refuse by this name (a bad field, an unsupported call)."""

    aws_type: ClassVar[str] = "ValidationException"

    def __init__(self, message: str, aws_type: str | None = None) -> None:
        super().__init__(message)
        if aws_type is not None:
            self.aws_type = aws_type  # type: ignore[misc]


def validation(message: str) -> KmsRequestError:
    return KmsRequestError(message, "ValidationException")


def unsupported(message: str) -> KmsRequestError:
    return KmsRequestError(message, "UnsupportedOperationException")


def serialization(message: str) -> KmsRequestError:
    return KmsRequestError(message, "SerializationException")


class KmsStateError(KeyStateError):
    """A key state refusal under AWS's name (``DisabledException``,
    ``KMSInvalidStateException``)."""

    aws_type: ClassVar[str] = "KMSInvalidStateException"

    def __init__(self, message: str, aws_type: str | None = None) -> None:
        super().__init__(message)
        if aws_type is not None:
            self.aws_type = aws_type  # type: ignore[misc]


class KmsConflict(Conflict):
    """A conflict under AWS's name (``AlreadyExistsException``, ``InvalidKeyUsageException``)."""

    aws_type: ClassVar[str] = "AlreadyExistsException"

    def __init__(self, message: str, aws_type: str | None = None) -> None:
        super().__init__(message)
        if aws_type is not None:
            self.aws_type = aws_type  # type: ignore[misc]


class KmsNotFound(NotFound):
    aws_type: ClassVar[str] = "NotFoundException"


class IncorrectKey(InvalidCiphertext):
    aws_type: ClassVar[str] = "IncorrectKeyException"


class KmsInvalidCiphertext(InvalidCiphertext):
    aws_type: ClassVar[str] = "InvalidCiphertextException"


_BY_DOMAIN: tuple[tuple[type[KeyquorumError], str, int], ...] = (
    (ApprovalRequired, "AccessDeniedException", 400),
    (Unauthenticated, "UnrecognizedClientException", 400),
    (Forbidden, "AccessDeniedException", 400),
    (NotFound, "NotFoundException", 400),
    (InvalidCiphertext, "InvalidCiphertextException", 400),
    (KeyStateError, "KMSInvalidStateException", 400),
    (Conflict, "KMSInvalidStateException", 400),
    (TooLarge, "ValidationException", 400),
    (RateLimited, "ThrottlingException", 400),
    (Sealed, "DependencyTimeoutException", 503),
    (AuditUnavailable, "DependencyTimeoutException", 503),
    (StorageUnavailable, "DependencyTimeoutException", 503),
    (InvalidRequest, "ValidationException", 400),
)
"""Most specific first. AWS answers every client error 400 (and so do we: SDKs read the
``__type``); an outage (sealed, audit or storage unavailable) is the retryable 503
``DependencyTimeoutException``, so SDK retries behave as against a slow AWS."""


def aws_error(error: KeyquorumError) -> tuple[int, str, str]:
    """(HTTP status, ``__type``, message) of the AWS answer to ``error``."""
    named = getattr(error, "aws_type", None)
    if isinstance(named, str):
        status = 503 if named == "DependencyTimeoutException" else 400
        return status, named, _message(error)
    for kind, aws_type, status in _BY_DOMAIN:
        if isinstance(error, kind):
            return status, aws_type, _message(error)
    return 500, "KMSInternalException", "internal error"


def _message(error: KeyquorumError) -> str:
    if isinstance(error, ApprovalRequired):
        approval = error.details.get("approval_id")
        return (f"{error.message} (approval_id {approval}; re-send the same request with the "
                "header X-Keyquorum-Approval-Id once it is approved)")
    return error.message
