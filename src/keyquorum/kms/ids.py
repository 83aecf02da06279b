"""KMS names for keyquorum keys: KeyId, ARN, aliases, specs and states.

A key's KeyId is its keyquorum id (the ``keys.id`` UUID); its ARN is
``arn:aws:kms:<region>:<account>:key/<id>`` with the region the request was
signed for and the configured account (``aws_account_id``). A key is reachable
from KMS by KeyId, key ARN, a stored alias (``CreateAlias``) or
``alias/<native name>``, which needs no row: every native key has it.

Keys created through KMS are named ``kms/<KeyId>`` natively, so policies can
grant ``kms/**`` and ``keyquorum key list`` shows them beside the others.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from sqlalchemy import Connection

from keyquorum.errors import InvalidRequest
from keyquorum.keys.models import Key
from keyquorum.keys.names import validate_key_name
from keyquorum.keys.states import KeyState
from keyquorum.kms.errors import KmsNotFound, KmsRequestError, KmsStateError, unsupported
from keyquorum.kms.imports import PendingKey, find_pending
from keyquorum.storage import aliases_repo, keys_repo

KMS_PREFIX = "kms/"
ALIAS_PREFIX = "alias/"
_ARN = re.compile(r"arn:aws[a-z-]*:kms:([a-z0-9-]+):(\d{12}):(key|alias)/(.+)")
_ALIAS = re.compile(r"alias/[a-zA-Z0-9/_-]{1,250}")


@dataclass(frozen=True)
class Names:
    """Where a request is answered: the ARN parts."""

    region: str
    account: str

    def key_arn(self, key_id: str) -> str:
        return f"arn:aws:kms:{self.region}:{self.account}:key/{key_id}"

    def alias_arn(self, alias: str) -> str:
        return f"arn:aws:kms:{self.region}:{self.account}:{alias}"


@dataclass(frozen=True)
class Target:
    """What a KeyId field names: the native name to authorize, and the key if it exists."""

    name: str | None
    key: Key | None
    pending: PendingKey | None = None  # Origin EXTERNAL, no material imported yet

    def require(self, identifier: str) -> Key:
        if self.key is None and self.pending is not None:
            raise KmsStateError(f"{self.pending.key_id} is pending import",
                                "KMSInvalidStateException")
        if self.key is None:
            raise KmsNotFound(f"Key '{identifier}' does not exist")
        return self.key


def new_kms_key() -> tuple[str, str]:
    """(KeyId, native name) for a key made by CreateKey."""
    key_id = str(uuid.uuid4())
    return key_id, KMS_PREFIX + key_id


def validate_alias(alias: object) -> str:
    if not isinstance(alias, str) or not _ALIAS.fullmatch(alias):
        raise KmsRequestError("AliasName must be alias/ followed by 1-250 of "
                              "a-z A-Z 0-9 / _ -", "InvalidAliasNameException")
    if alias.startswith("alias/aws/"):
        raise KmsRequestError("the alias/aws/ prefix is reserved for AWS managed keys",
                              "NotFoundException")
    return alias


def native_name_of_alias(alias: str) -> str | None:
    """The native key name ``alias/<name>`` stands for, if it is a valid native name."""
    try:
        return validate_key_name(alias[len(ALIAS_PREFIX):])
    except InvalidRequest:
        return None


def arn_region(identifier: object) -> str | None:
    """The region of an ARN identifier (answers name the key in the region it was asked
    by: keyquorum keys belong to no region), else None."""
    arn = _ARN.fullmatch(identifier) if isinstance(identifier, str) else None
    return arn.group(1) if arn is not None else None


def key_id_of(identifier: str, names: Names) -> str:
    """The KeyId a KeyId or key ARN of this account names, else "" (aliases need storage)."""
    arn = _ARN.fullmatch(identifier)
    if arn is not None:
        if arn.group(2) != names.account or arn.group(3) != "key":
            return ""
        identifier = arn.group(4)
    return identifier if len(identifier) == 36 and identifier.count("-") == 4 else ""


def resolve(conn: Connection, identifier: object, names: Names) -> Target:
    """The key a KeyId / key ARN / alias / alias ARN names.

    A valid ``alias/<native name>`` without a row gives the name even when no key
    has it, so the caller's permission is checked on the name (as the native API
    does) before ``NotFoundException``.
    """
    if not isinstance(identifier, str) or not 1 <= len(identifier) <= 2048:
        raise KmsRequestError("KeyId must be a string of 1-2048 characters")
    text = identifier
    arn = _ARN.fullmatch(text)
    if arn is not None:
        if arn.group(2) != names.account:
            raise KmsNotFound(f"Key '{identifier}' does not exist")
        text = arn.group(4) if arn.group(3) == "key" else "alias/" + arn.group(4)
    if text.startswith(ALIAS_PREFIX):
        row = aliases_repo.get_alias(conn, text)
        if row is not None:
            key = keys_repo.get_key(conn, key_id=row.key_id)
            return Target(key.name if key else None, key)
        native = native_name_of_alias(text)
        if native is None:
            raise KmsNotFound(f"Alias '{identifier}' is not found.")
        return Target(native, keys_repo.get_key(conn, name=native))
    try:
        key_id = str(uuid.UUID(text))
    except ValueError:
        raise KmsNotFound(f"Invalid keyId '{identifier}'") from None
    key = keys_repo.get_key(conn, key_id=key_id)
    if key is None:
        pending = find_pending(conn, key_id)
        if pending is not None:
            return Target(pending.name, None, pending)
    return Target(key.name if key else None, key)


# -- specs, usages and states ------------------------------------------------------------

KEY_SPECS: dict[str, str] = {
    "SYMMETRIC_DEFAULT": "aes-256-gcm",
    "HMAC_224": "hmac-sha224",
    "HMAC_256": "hmac-sha256",
    "HMAC_384": "hmac-sha384",
    "HMAC_512": "hmac-sha512",
    "ECC_NIST_P256": "ecdsa-p256",
    "ECC_NIST_P384": "ecdsa-p384",
    "ECC_NIST_P521": "ecdsa-p521",
    "ECC_SECG_P256K1": "ecdsa-secp256k1",
    "ECC_NIST_EDWARDS25519": "ed25519",
    "RSA_2048": "rsa-2048",
    "RSA_3072": "rsa-3072",
    "RSA_4096": "rsa-4096",
    "ML_DSA_44": "ml-dsa-44",
    "ML_DSA_65": "ml-dsa-65",
    "ML_DSA_87": "ml-dsa-87",
}
"""AWS KeySpec → keyquorum spec, for the specs both have with the same meaning."""
_AWS_SPEC = {spec: aws for aws, spec in KEY_SPECS.items()}
_AEAD = ("aes-256-gcm", "chacha20-poly1305", "xchacha20-poly1305", "aes-256-gcm-siv")
USAGES = {"encrypt": "ENCRYPT_DECRYPT", "sign": "SIGN_VERIFY", "mac": "GENERATE_VERIFY_MAC",
          "kem": "KEY_ENCAPSULATION", "agree": "KEY_AGREEMENT"}
_NOT_HERE = {
    "SM2": "ECC_NIST_P256",
}


def keyquorum_spec(key_spec: str, usage: str | None) -> str:
    """The keyquorum spec for an AWS KeySpec and KeyUsage, or UnsupportedOperationException
    saying what to use instead."""
    if key_spec in _NOT_HERE:
        raise unsupported(f"KeySpec {key_spec} is not available in keyquorum; use "
                          f"{_NOT_HERE[key_spec]}")
    spec = KEY_SPECS.get(key_spec)
    if spec is None:
        raise KmsRequestError(f"KeySpec {key_spec!s} is not a valid key spec")
    natural = "ENCRYPT_DECRYPT" if spec == "aes-256-gcm" else \
        "GENERATE_VERIFY_MAC" if spec in MACS else "SIGN_VERIFY"
    if usage is not None and usage != natural:
        if spec.startswith("rsa-") and usage == "ENCRYPT_DECRYPT":
            return spec  # an RSA encryption key (keyquorum_purpose)
        if spec.startswith("ecdsa-") and usage == "KEY_AGREEMENT":
            raise unsupported(f"KeyUsage {usage} with {key_spec} is not available in "
                              "keyquorum (its EC keys sign); use a native x25519 key "
                              "for key agreement")
        raise KmsRequestError(f"KeyUsage {usage} is not compatible with KeySpec {key_spec}")
    return spec


def keyquorum_purpose(spec: str, usage: str | None) -> str | None:
    """The native purpose when it is not the spec's default: ``encrypt`` for RSA keys
    made with KeyUsage ENCRYPT_DECRYPT."""
    return "encrypt" if spec.startswith("rsa-") and usage == "ENCRYPT_DECRYPT" else None


def aws_spec(spec: str) -> str:
    """A keyquorum spec's AWS KeySpec; specs AWS does not have are named in its style."""
    if spec in _AEAD:
        return "SYMMETRIC_DEFAULT"
    return _AWS_SPEC.get(spec, spec.upper().replace("-", "_"))


def key_state(state: KeyState) -> str:
    return {KeyState.ENABLED: "Enabled", KeyState.DISABLED: "Disabled",
            KeyState.DESTROY_SCHEDULED: "PendingDeletion",
            KeyState.DESTROYED: "Unavailable"}[state]


_RSA_SIGNING = ("RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512",
                "RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384",
                "RSASSA_PKCS1_V1_5_SHA_512")
SIGNING = {
    "ecdsa-p256": ("ECDSA_SHA_256",), "ecdsa-secp256k1": ("ECDSA_SHA_256",),
    "ecdsa-p384": ("ECDSA_SHA_384",), "ecdsa-p521": ("ECDSA_SHA_512",),
    "ed25519": ("ED25519_SHA_512",),
    "rsa-2048": _RSA_SIGNING, "rsa-3072": _RSA_SIGNING, "rsa-4096": _RSA_SIGNING,
    "ml-dsa-44": ("ML_DSA_SHAKE_256",), "ml-dsa-65": ("ML_DSA_SHAKE_256",),
    "ml-dsa-87": ("ML_DSA_SHAKE_256",),
}
"""The SigningAlgorithms each signing spec answers, in AWS's order."""
MACS = {"hmac-sha224": "HMAC_SHA_224", "hmac-sha256": "HMAC_SHA_256",
        "hmac-sha384": "HMAC_SHA_384", "hmac-sha512": "HMAC_SHA_512"}
