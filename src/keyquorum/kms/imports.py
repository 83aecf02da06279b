"""Bring your own key: keys waiting for material, import tokens, and unwrapping.

A CreateKey with ``Origin: EXTERNAL`` makes no native key yet: it records a
*pending* key (its KeyId, spec, description and tags; a named system entry,
nothing secret) that KMS shows as ``PendingImport``. ImportKeyMaterial then
creates the ordinary keyquorum key ``kms/<KeyId>`` with the caller's material
as version 1 (origin ``imported``), so no key with material nobody chose ever
exists.

**Import tokens** need no storage: GetParametersForImport makes an RSA wrapping
key pair and answers its public key with a token that is the barrier's
encryption of {the wrapping private key, the wrapping algorithm, the expiry},
bound by the barrier's associated data to the one KeyId. Only this store can
open a token, a token opens only for its key, and it carries its one key pair;
it is valid for 24 hours, as AWS's.

**Expiry** (``ExpirationModel`` ``KEY_MATERIAL_EXPIRES``): the material's ``ValidTo`` is
a named system entry beside the key (``kms/material-expiry/<KeyId>``; a time, nothing
secret). It is written just before the first import creates the key (and removed if
that fails), in the transaction of a re-import, and removed in the transaction that
takes the material out, so a key has an expiry exactly while it holds expiring
material. ``kms.expiry`` reads it at use time and sweeps it from the scheduler.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap_with_padding,
)
from sqlalchemy import Connection

from keyquorum.keys.specs import get_spec
from keyquorum.kms.errors import KmsRequestError, unsupported
from keyquorum.seal.barrier import Barrier, BarrierError
from keyquorum.storage import system_repo

PENDING_PREFIX = "kms/pending-import/"
EXPIRY_PREFIX = "kms/material-expiry/"
TOKEN_LIFETIME = 24 * 3600
WRAPPING_ALGORITHMS = ("RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "RSA_AES_KEY_WRAP_SHA_1",
                       "RSA_AES_KEY_WRAP_SHA_256")
WRAPPING_KEY_BITS = {"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}
IMPORTABLE = ("aes-256-gcm", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512")
"""Specs whose material is raw bytes of one length (the material a KMS client wraps);
asymmetric imports would need PKCS#8 parsing per family and are not offered yet."""


@dataclass(frozen=True)
class PendingKey:
    """A KMS key made with Origin EXTERNAL whose material has not been imported."""

    key_id: str
    spec: str
    description: str
    labels: dict[str, str]
    created_at: float
    created_by: str | None

    @property
    def name(self) -> str:
        return "kms/" + self.key_id

    def to_bytes(self) -> bytes:
        return json.dumps({"key_id": self.key_id, "spec": self.spec,
                           "description": self.description, "labels": self.labels,
                           "created_at": self.created_at,
                           "created_by": self.created_by}).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> PendingKey:
        raw = json.loads(data)
        return cls(key_id=raw["key_id"], spec=raw["spec"], description=raw["description"],
                   labels=dict(raw["labels"]), created_at=float(raw["created_at"]),
                   created_by=raw.get("created_by"))


def save_pending(conn: Connection, pending: PendingKey) -> None:
    system_repo.insert_entry(conn, PENDING_PREFIX + pending.key_id, pending.to_bytes(),
                             pending.created_at)


def find_pending(conn: Connection, key_id: str) -> PendingKey | None:
    data = system_repo.get_entry(conn, PENDING_PREFIX + key_id)
    return None if data is None else PendingKey.from_bytes(data)


def all_pending(conn: Connection) -> list[PendingKey]:
    return [PendingKey.from_bytes(v)
            for v in system_repo.entries_with_prefix(conn, PENDING_PREFIX).values()]


def drop_pending(conn: Connection, key_id: str) -> None:
    system_repo.delete_entry(conn, PENDING_PREFIX + key_id)


def set_expiry(conn: Connection, key_id: str, valid_to: float | None, now: float) -> None:
    """Record when the key's imported material expires (None: it does not)."""
    if valid_to is None:
        system_repo.delete_entry(conn, EXPIRY_PREFIX + key_id)
    else:
        system_repo.put_entry(conn, EXPIRY_PREFIX + key_id,
                              json.dumps({"valid_to": valid_to}).encode(), now)


def expiry_of(conn: Connection, key_id: str) -> float | None:
    """When the key's imported material expires (None: it does not, or it has none)."""
    data = system_repo.get_entry(conn, EXPIRY_PREFIX + key_id)
    return None if data is None else float(json.loads(data)["valid_to"])


def all_expiries(conn: Connection) -> dict[str, float]:
    """KeyId → ValidTo of every key holding expiring imported material."""
    return {name[len(EXPIRY_PREFIX):]: float(json.loads(value)["valid_to"])
            for name, value in system_repo.entries_with_prefix(conn, EXPIRY_PREFIX).items()}


def check_importable(spec: str) -> None:
    if spec not in IMPORTABLE:
        raise unsupported("keyquorum imports SYMMETRIC_DEFAULT and HMAC key material; "
                          "asymmetric imports are not offered")


# -- tokens -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportParameters:
    token: bytes = field(repr=False)
    public_key_der: bytes
    valid_to: float


def _token_path(key_id: str) -> str:
    return f"kms/import-token/{key_id}"


def new_parameters(barrier: Barrier, key_id: str, algorithm: str, key_spec: str,
                   now: float) -> ImportParameters:
    private = rsa.generate_private_key(65537, WRAPPING_KEY_BITS[key_spec])
    private_der = private.private_bytes(serialization.Encoding.DER,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    valid_to = now + TOKEN_LIFETIME
    inner = json.dumps({"algorithm": algorithm, "valid_to": valid_to,
                        "private": base64.b64encode(private_der).decode()}).encode()
    public_der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return ImportParameters(barrier.encrypt(_token_path(key_id), inner), public_der, valid_to)


def unwrap(barrier: Barrier, key_id: str, token: bytes, wrapped: bytes, now: float,
           spec: str) -> bytes:
    """The key material inside ``wrapped``, after the token was checked: it must be one
    this store made, for this key, not expired."""
    try:
        inner = json.loads(barrier.decrypt(_token_path(key_id), token))
    except (BarrierError, ValueError):
        raise KmsRequestError("the import token is not valid for this key",
                              "InvalidImportTokenException") from None
    if inner["valid_to"] < now:
        raise KmsRequestError("the import token has expired; call GetParametersForImport "
                              "again", "ExpiredImportTokenException")
    private = serialization.load_der_private_key(base64.b64decode(inner["private"]), None)
    assert isinstance(private, rsa.RSAPrivateKey)
    algorithm: str = inner["algorithm"]
    digest = hashes.SHA1() if algorithm.endswith("SHA_1") else hashes.SHA256()  # noqa: S303
    oaep = padding.OAEP(mgf=padding.MGF1(digest), algorithm=digest, label=None)
    try:
        if algorithm.startswith("RSAES_OAEP"):
            material = private.decrypt(wrapped, oaep)
        else:  # RSA_AES_KEY_WRAP: RSA-OAEP(ephemeral AES key) || AES-KWP(material)
            size = private.key_size // 8
            ephemeral = private.decrypt(wrapped[:size], oaep)
            material = aes_key_unwrap_with_padding(ephemeral, wrapped[size:])
    except (ValueError, InvalidUnwrap):
        raise KmsRequestError("the encrypted key material could not be unwrapped with "
                              "this import token's wrapping key",
                              "InvalidCiphertextException") from None
    expected = len(get_spec(spec).generate())
    if len(material) != expected:
        raise KmsRequestError(f"the key material must be {expected} bytes for this key",
                              "IncorrectKeyMaterialException")
    return material
