"""What the cryptographic operations answer, and the items a batch of them takes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._models import _b64_or_none, _int_or_none, b64decode

# --- cryptographic operations -------------------------------------------------


@dataclass(frozen=True)
class EncryptResult:
    """A ciphertext (text, ``kq1:...``) and the key version that made it."""

    ciphertext: str
    key_version: int | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> EncryptResult:
        return cls(ciphertext=str(body["ciphertext"]),
                   key_version=_int_or_none(body.get("key_version")))


@dataclass(frozen=True)
class OaepCiphertext:
    """An RSAES-OAEP block (bytes, not ``kq1:``) made for an RSA encryption key."""

    ciphertext: bytes
    key_version: int | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> OaepCiphertext:
        return cls(ciphertext=b64decode(str(body["ciphertext"])),
                   key_version=_int_or_none(body.get("key_version")))


@dataclass(frozen=True)
class DecryptResult:
    plaintext: bytes = field(repr=False)
    key: str | None = None
    key_version: int | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> DecryptResult:
        return cls(plaintext=b64decode(str(body["plaintext"])), key=body.get("key"),
                   key_version=_int_or_none(body.get("key_version")))


@dataclass(frozen=True)
class DataKey:
    """A data key wrapped under a managed key; ``plaintext`` only when asked for."""

    ciphertext: str
    plaintext: bytes | None = field(default=None, repr=False)
    key_version: int | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> DataKey:
        return cls(ciphertext=str(body["ciphertext"]),
                   plaintext=_b64_or_none(body.get("plaintext")),
                   key_version=_int_or_none(body.get("key_version")))


@dataclass(frozen=True)
class Signature:
    signature: bytes
    key_version: int | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Signature:
        return cls(signature=b64decode(str(body["signature"])),
                   key_version=_int_or_none(body.get("key_version")))


@dataclass(frozen=True)
class Verification:
    """The answer of verify and verify-mac."""

    valid: bool
    key_version: int | None = None

    def __bool__(self) -> bool:
        return self.valid

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Verification:
        return cls(valid=bool(body.get("valid")), key_version=_int_or_none(body.get("key_version")))


@dataclass(frozen=True)
class Mac:
    mac: bytes
    key_version: int | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Mac:
        return cls(mac=b64decode(str(body["mac"])),
                   key_version=_int_or_none(body.get("key_version")))


@dataclass(frozen=True)
class SharedSecret:
    shared_secret: bytes = field(repr=False)
    key_version: int | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> SharedSecret:
        return cls(shared_secret=b64decode(str(body["shared_secret"])),
                   key_version=_int_or_none(body.get("key_version")))


# Batch items: what to send for one item of a ``*_batch`` call.


@dataclass(frozen=True)
class EncryptItem:
    plaintext: bytes = field(repr=False)
    context: Mapping[str, str] | None = None


@dataclass(frozen=True)
class DecryptItem:
    ciphertext: str
    context: Mapping[str, str] | None = None


@dataclass(frozen=True)
class ReencryptItem:
    ciphertext: str
    context: Mapping[str, str] | None = None
    destination_key: str | None = None
    destination_context: Mapping[str, str] | None = None


@dataclass(frozen=True)
class DataKeyItem:
    bits: int | None = None
    context: Mapping[str, str] | None = None
    plaintext: bool = True


@dataclass(frozen=True)
class SignItem:
    """Sign a ``message``, or a precomputed ``digest`` made with ``hash``; ``scheme`` is
    the RSA padding (``pss``, the server's default, or ``pkcs1v15``), RSA keys only."""

    message: bytes | None = None
    digest: bytes | None = None
    hash: str | None = None
    scheme: str | None = None


@dataclass(frozen=True)
class VerifyItem:
    signature: bytes
    message: bytes | None = None
    digest: bytes | None = None
    hash: str | None = None
    key_version: int | None = None
    scheme: str | None = None


@dataclass(frozen=True)
class VerifyMacItem:
    message: bytes
    mac: bytes
    key_version: int | None = None


@dataclass(frozen=True)
class DecapsulateItem:
    encapsulation: bytes
    key_version: int | None = None
    context: Mapping[str, str] | None = None


