"""A custodian's own key pair, made on the custodian's machine: what shares are sealed to.

The algorithm is the hybrid KEM keyquorum already implements (``crypto.kem``,
``x25519-ml-kem-768``, X-Wing): a share sealed today must stay secret for as long
as the data it protects, so the delivery resists a later quantum computer
(ML-KEM-768) and does not rest on ML-KEM alone (X25519).

- **Public key**: the kem module's labelled PEM; registered with the server
  (``service.custodian_keys``) and shown everywhere by its **fingerprint**
  ``kqck1:`` + SHA-256 over a domain tag, the algorithm and the raw key. The
  custodian compares it with what ``keyquorum custodian keygen`` printed: an
  operator who registered their own key in a custodian's place is caught there.
- **Private key file**: JSON, the 96-byte private material under AES-256-GCM with
  a key from Argon2id over the custodian's passphrase (``crypto.pwhash``, the same
  standard KDF and costs as the passphrase seal). The associated data binds the
  custodian's name, the algorithm and the public key's fingerprint, so the public
  half written in the file cannot be swapped without the file failing to open.
  The file is created 0600 by the CLI and never leaves the custodian's machine.
"""

from __future__ import annotations

import hashlib
import json
from base64 import b64decode, b64encode
from dataclasses import dataclass, field
from typing import Any

from keyquorum.crypto import aead, kem
from keyquorum.crypto.errors import InvalidCiphertext
from keyquorum.crypto.pwhash import SALT_SIZE, Argon2Params, argon2id_key
from keyquorum.crypto.random import random_bytes
from keyquorum.errors import InvalidRequest

ALGORITHM = "x25519-ml-kem-768"
FINGERPRINT_PREFIX = "kqck1:"
KEY_FILE_FORMAT = "keyquorum-custodian-key"
KEY_FILE_VERSION = 1
MIN_PASSPHRASE = 12
MAX_PUBLIC_PEM = 4096  # the hybrid PEM is ~1.6 KiB; anything far larger is not one
_FINGERPRINT_DOMAIN = b"keyquorum/custodian-key-fingerprint/v1\x00"
_FILE_DOMAIN = b"keyquorum/custodian-key-file/v1"
_AEAD = "aes-256-gcm"


class CustodianKeyError(ValueError):
    """A key file, passphrase or sealed share cannot be used on the custodian's machine;
    ``code`` is stable (the CLI prints ``error: <code>: <message>``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def fingerprint(public_pem: str) -> str:
    """``kqck1:<64 hex>`` of a public key (``ValueError`` if it is not a custodian key)."""
    raw = kem.public_key_bytes(ALGORITHM, public_pem)
    digest = hashlib.sha256(_FINGERPRINT_DOMAIN + ALGORITHM.encode() + b"\x00" + raw)
    return FINGERPRINT_PREFIX + digest.hexdigest()


def check_public_key(value: object, who: str) -> str:
    """A custodian public key PEM from a request, or ``InvalidRequest`` naming ``who``."""
    if not isinstance(value, str) or len(value) > MAX_PUBLIC_PEM:
        raise InvalidRequest(f"the key of {who} must be an {ALGORITHM} public key PEM "
                             "(`keyquorum custodian keygen` writes one)")
    try:
        fingerprint(value)
    except ValueError:
        raise InvalidRequest(f"the key of {who} is not an {ALGORITHM} public key PEM "
                             "(`keyquorum custodian keygen` writes one)") from None
    return value.strip() + "\n"


def grouped(print_: str) -> str:
    """A fingerprint in groups of four hex digits, for a person to read aloud and compare."""
    prefix, _, digits = print_.partition(":")
    return f"{prefix}:" + " ".join(digits[i:i + 4] for i in range(0, len(digits), 4))


@dataclass(frozen=True)
class CustodianKeyPair:
    """A freshly generated pair: the PEM to register and the private material to protect."""

    name: str
    public_pem: str
    private: bytes = field(repr=False)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_pem)


def generate(name: str) -> CustodianKeyPair:
    """A new key pair for custodian ``name`` (private material from the OS CSPRNG)."""
    private = kem.generate_private(ALGORITHM)
    return CustodianKeyPair(name, kem.KemKey(ALGORITHM, private).public_pem(), private)


def _file_aad(name: str, print_: str) -> bytes:
    fields = (name.encode("utf-8"), ALGORITHM.encode(), print_.encode())
    return _FILE_DOMAIN + b"".join(len(f).to_bytes(4, "big") + f for f in fields)


def _check_passphrase(passphrase: str) -> bytes:
    if len(passphrase) < MIN_PASSPHRASE:
        raise CustodianKeyError("weak_passphrase", f"the key file passphrase must be at "
                                f"least {MIN_PASSPHRASE} characters")
    return passphrase.encode("utf-8")


def seal_key_file(pair: CustodianKeyPair, passphrase: str,
                  params: Argon2Params | None = None) -> bytes:
    """The private key file's bytes: the public half in the clear, the private half sealed."""
    secret = _check_passphrase(passphrase)
    params = params or Argon2Params(salt=random_bytes(SALT_SIZE))
    print_ = pair.fingerprint
    key = aead.AeadKey(_AEAD, argon2id_key(secret, params))
    nonce, body = key.encrypt(pair.private, _file_aad(pair.name, print_))
    document: dict[str, Any] = {
        "format": KEY_FILE_FORMAT, "version": KEY_FILE_VERSION, "name": pair.name,
        "algorithm": ALGORITHM, "public_key": pair.public_pem, "fingerprint": print_,
        "kdf": {"name": "argon2id", "salt": b64encode(params.salt).decode(),
                "opslimit": params.opslimit, "memlimit": params.memlimit},
        "aead": _AEAD, "nonce": b64encode(nonce).decode(), "ciphertext": b64encode(body).decode()}
    return (json.dumps(document, indent=2) + "\n").encode()


@dataclass(frozen=True)
class KeyFile:
    """A key file read without its passphrase: who it is for and its public half."""

    name: str
    public_pem: str
    fingerprint: str
    params: Argon2Params
    nonce: bytes
    ciphertext: bytes = field(repr=False)


def read_key_file(data: bytes) -> KeyFile:
    """Parse a key file (no passphrase needed: only its public half is used here)."""
    bad = CustodianKeyError("invalid_key_file", "this is not a keyquorum custodian key file "
                            "(`keyquorum custodian keygen` writes one)")
    try:
        doc = json.loads(data)
        if doc.get("format") != KEY_FILE_FORMAT or doc.get("version") != KEY_FILE_VERSION \
                or doc.get("algorithm") != ALGORITHM or doc.get("aead") != _AEAD:
            raise bad
        kdf = doc["kdf"]
        if kdf.get("name") != "argon2id":
            raise bad
        params = Argon2Params(salt=b64decode(kdf["salt"], validate=True),
                              opslimit=int(kdf["opslimit"]), memlimit=int(kdf["memlimit"]))
        public_pem = str(doc["public_key"])
        key_file = KeyFile(name=str(doc["name"]), public_pem=public_pem,
                           fingerprint=fingerprint(public_pem), params=params,
                           nonce=b64decode(doc["nonce"], validate=True),
                           ciphertext=b64decode(doc["ciphertext"], validate=True))
    except CustodianKeyError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError):
        raise bad from None
    if doc.get("fingerprint") != key_file.fingerprint:
        raise bad
    return key_file


def open_key_file(key_file: KeyFile, passphrase: str) -> kem.KemKey:
    """The private key, or ``CustodianKeyError`` (``wrong_key_passphrase``) for a wrong
    passphrase or an edited file: the tag cannot tell the two apart, and says neither."""
    key = aead.AeadKey(_AEAD, argon2id_key(passphrase.encode("utf-8"), key_file.params))
    try:
        private = key.decrypt(key_file.nonce, key_file.ciphertext,
                              _file_aad(key_file.name, key_file.fingerprint))
    except InvalidCiphertext:
        raise CustodianKeyError("wrong_key_passphrase", "the passphrase does not open this "
                                "key file (or the file was edited)") from None
    loaded = kem.KemKey(ALGORITHM, private)
    if fingerprint(loaded.public_pem()) != key_file.fingerprint:  # cannot happen unedited
        raise CustodianKeyError("invalid_key_file", "the key file's halves do not match")
    return loaded
