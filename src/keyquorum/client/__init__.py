"""keyquorum Python SDK: a typed client for the keyquorum HTTP API.

    from keyquorum.client import Client

    with Client() as kq:                     # $KEYQUORUM_ADDR, $KEYQUORUM_TOKEN
        sealed = kq.encrypt("payments/cards", b"4111...", {"tenant": "acme"})
        plain = kq.decrypt(sealed.ciphertext, {"tenant": "acme"}).plaintext

``AsyncClient`` has the same methods as coroutines. Errors are in
``keyquorum.client.errors`` (and re-exported here).
"""

from __future__ import annotations

from ._async_client import AsyncClient
from ._client import Client
from ._models import (
    AuditPage,
    AuditRecord,
    AuditVerification,
    Custodian,
    CustodianProof,
    DataKey,
    DataKeyItem,
    DecapsulateItem,
    DecryptItem,
    DecryptResult,
    DeletionScheduled,
    EncryptItem,
    EncryptResult,
    Health,
    InitResult,
    Key,
    KeyPage,
    KeyVersion,
    Mac,
    Policy,
    PolicyRule,
    PublicKey,
    ReencryptItem,
    SealStatus,
    SharedSecret,
    Signature,
    SignItem,
    Token,
    TokenInfo,
    Verification,
    VerifyItem,
    VerifyMacItem,
)
from .errors import (
    ApprovalRequiredError,
    AuditUnavailableError,
    ConflictError,
    ForbiddenError,
    InvalidCiphertextError,
    InvalidRequestError,
    KeyquorumAPIError,
    KeyquorumClientError,
    KeyStateError,
    NotFoundError,
    RateLimitedError,
    SealedError,
    TooLargeError,
    TransportError,
    UnauthenticatedError,
)

__all__ = [
    "ApprovalRequiredError",
    "AsyncClient",
    "AuditPage",
    "AuditRecord",
    "AuditUnavailableError",
    "AuditVerification",
    "Client",
    "ConflictError",
    "Custodian",
    "CustodianProof",
    "DataKey",
    "DataKeyItem",
    "DecapsulateItem",
    "DecryptItem",
    "DecryptResult",
    "DeletionScheduled",
    "EncryptItem",
    "EncryptResult",
    "ForbiddenError",
    "Health",
    "InitResult",
    "InvalidCiphertextError",
    "InvalidRequestError",
    "Key",
    "KeyPage",
    "KeyStateError",
    "KeyVersion",
    "KeyquorumAPIError",
    "KeyquorumClientError",
    "Mac",
    "NotFoundError",
    "Policy",
    "PolicyRule",
    "PublicKey",
    "RateLimitedError",
    "ReencryptItem",
    "SealStatus",
    "SealedError",
    "SharedSecret",
    "SignItem",
    "Signature",
    "Token",
    "TokenInfo",
    "TooLargeError",
    "TransportError",
    "UnauthenticatedError",
    "Verification",
    "VerifyItem",
    "VerifyMacItem",
]
