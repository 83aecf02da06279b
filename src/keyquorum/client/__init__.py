"""keyquorum Python SDK: a typed client for the keyquorum HTTP API.

    from keyquorum.client import Client

    with Client() as kq:                     # $KEYQUORUM_ADDR, $KEYQUORUM_TOKEN
        sealed = kq.encrypt("payments/cards", b"4111...", {"tenant": "acme"})
        plain = kq.decrypt(sealed.ciphertext, {"tenant": "acme"}).plaintext

``AsyncClient`` has the same methods as coroutines. Errors are in
``keyquorum.client.errors`` (and re-exported here).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names, for type checkers; at run time they load on first use
    from ._access_keys import AccessKey, AccessKeyInfo
    from ._admin_models import (
        AuditPage,
        AuditRecord,
        AuditVerification,
        DecidingRule,
        Policy,
        PolicyDecision,
        PolicyRule,
        RevokedCredential,
        Token,
        TokenInfo,
        TokenRevocation,
    )
    from ._approvals import Approval, ApprovalDecision, ApprovalPage, DualControlSettings
    from ._async_client import AsyncClient
    from ._client import Client
    from ._crypto_models import (
        DataKey,
        DataKeyItem,
        DecapsulateItem,
        DecryptItem,
        DecryptResult,
        EncryptItem,
        EncryptResult,
        Mac,
        OaepCiphertext,
        ReencryptItem,
        SharedSecret,
        Signature,
        SignItem,
        Verification,
        VerifyItem,
        VerifyMacItem,
    )
    from ._custodians import (
        CustodianChallenge,
        CustodianEntry,
        CustodianKeyRegistration,
        CustodianStatus,
        DeliveredShare,
        RekeyStatus,
        SealAddStatus,
    )
    from ._generate_root import GenerateRootStatus
    from ._models import (
        Custodian,
        CustodianProof,
        DeletionScheduled,
        EncryptedShare,
        Health,
        InitResult,
        Key,
        KeyPage,
        KeyVersion,
        PublicKey,
        Seal,
        SealStatus,
    )
    from .errors import (
        ApprovalConsumedError,
        ApprovalExpiredError,
        ApprovalMismatchError,
        ApprovalNotRequesterError,
        ApprovalRejectedError,
        ApprovalRequiredError,
        AuditUnavailableError,
        ChallengeExpiredError,
        ChallengeUsedError,
        ConflictError,
        CustodianKeyRequiredError,
        DuplicateApprovalError,
        ForbiddenError,
        InvalidCiphertextError,
        InvalidProofError,
        InvalidRequestError,
        KeyquorumAPIError,
        KeyquorumClientError,
        KeyStateError,
        NotFoundError,
        RateLimitedError,
        SealedError,
        SealRequiredError,
        SealUnavailableError,
        SelfApprovalError,
        StorageUnavailableError,
        TooLargeError,
        TransportError,
        UnauthenticatedError,
        WrongPassphraseError,
    )

_WHERE: dict[str, str] = {
    **dict.fromkeys(('AccessKey', 'AccessKeyInfo',), "_access_keys"),
    **dict.fromkeys((
        'AuditPage', 'AuditRecord', 'AuditVerification', 'DecidingRule', 'Policy',
        'PolicyDecision', 'PolicyRule', 'RevokedCredential', 'Token', 'TokenInfo',
        'TokenRevocation',
    ), "_admin_models"),
    **dict.fromkeys((
        'Approval', 'ApprovalDecision', 'ApprovalPage', 'DualControlSettings',
    ), "_approvals"),
    **dict.fromkeys(('AsyncClient',), "_async_client"),
    **dict.fromkeys(('Client',), "_client"),
    **dict.fromkeys((
        'DataKey', 'DataKeyItem', 'DecapsulateItem', 'DecryptItem', 'DecryptResult',
        'EncryptItem', 'EncryptResult', 'Mac', 'OaepCiphertext', 'ReencryptItem', 'SharedSecret',
        'SignItem', 'Signature', 'Verification', 'VerifyItem', 'VerifyMacItem',
    ), "_crypto_models"),
    **dict.fromkeys((
        'CustodianChallenge', 'CustodianEntry', 'CustodianKeyRegistration', 'CustodianStatus',
        'DeliveredShare', 'RekeyStatus', 'SealAddStatus',
    ), "_custodians"),
    **dict.fromkeys(('GenerateRootStatus',), "_generate_root"),
    **dict.fromkeys((
        'Custodian', 'CustodianProof', 'DeletionScheduled', 'EncryptedShare', 'Health',
        'InitResult', 'Key', 'KeyPage', 'KeyVersion', 'PublicKey', 'Seal', 'SealStatus',
    ), "_models"),
    **dict.fromkeys((
        'ApprovalConsumedError', 'ApprovalExpiredError', 'ApprovalMismatchError',
        'ApprovalNotRequesterError', 'ApprovalRejectedError', 'ApprovalRequiredError',
        'AuditUnavailableError', 'ChallengeExpiredError', 'ChallengeUsedError', 'ConflictError',
        'CustodianKeyRequiredError', 'DuplicateApprovalError', 'ForbiddenError',
        'InvalidCiphertextError', 'InvalidProofError',
        'InvalidRequestError', 'KeyStateError', 'KeyquorumAPIError', 'KeyquorumClientError',
        'NotFoundError', 'RateLimitedError', 'SealRequiredError', 'SealUnavailableError',
        'SealedError', 'SelfApprovalError', 'StorageUnavailableError', 'TooLargeError',
        'TransportError', 'UnauthenticatedError', 'WrongPassphraseError',
    ), "errors"),
}
"""Which private module defines each public name. Importing the package loads none of
them (nor httpx): ``keyquorum encrypt`` pays only for what it uses, and so does a
program that needs one class."""


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # the next lookup is a plain module attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])

__all__ = [
    "AccessKey",
    "AccessKeyInfo",
    "Approval",
    "ApprovalConsumedError",
    "ApprovalDecision",
    "ApprovalExpiredError",
    "ApprovalMismatchError",
    "ApprovalNotRequesterError",
    "ApprovalPage",
    "ApprovalRejectedError",
    "ApprovalRequiredError",
    "AsyncClient",
    "AuditPage",
    "AuditRecord",
    "AuditUnavailableError",
    "AuditVerification",
    "ChallengeExpiredError",
    "ChallengeUsedError",
    "Client",
    "ConflictError",
    "Custodian",
    "CustodianChallenge",
    "CustodianEntry",
    "CustodianKeyRegistration",
    "CustodianKeyRequiredError",
    "CustodianProof",
    "CustodianStatus",
    "DataKey",
    "DataKeyItem",
    "DecapsulateItem",
    "DecidingRule",
    "DecryptItem",
    "DecryptResult",
    "DeletionScheduled",
    "DeliveredShare",
    "DualControlSettings",
    "DuplicateApprovalError",
    "EncryptItem",
    "EncryptResult",
    "EncryptedShare",
    "ForbiddenError",
    "GenerateRootStatus",
    "Health",
    "InitResult",
    "InvalidCiphertextError",
    "InvalidProofError",
    "InvalidRequestError",
    "Key",
    "KeyPage",
    "KeyStateError",
    "KeyVersion",
    "KeyquorumAPIError",
    "KeyquorumClientError",
    "Mac",
    "NotFoundError",
    "OaepCiphertext",
    "Policy",
    "PolicyDecision",
    "PolicyRule",
    "PublicKey",
    "RateLimitedError",
    "ReencryptItem",
    "RekeyStatus",
    "RevokedCredential",
    "Seal",
    "SealAddStatus",
    "SealRequiredError",
    "SealStatus",
    "SealUnavailableError",
    "SealedError",
    "SelfApprovalError",
    "SharedSecret",
    "SignItem",
    "Signature",
    "StorageUnavailableError",
    "Token",
    "TokenInfo",
    "TokenRevocation",
    "TooLargeError",
    "TransportError",
    "UnauthenticatedError",
    "Verification",
    "VerifyItem",
    "VerifyMacItem",
    "WrongPassphraseError",
]
