"""The passphrase seal: Argon2id turns a passphrase into a key that wraps the root key.

The Argon2id costs and salt are stored in the entry (public), so they can be
raised for new seals without breaking old ones. The root key is wrapped with
AES-256-GCM under the derived key, with the seal's id and kind as associated
data. A wrong passphrase fails the tag: one ``WrongPassphrase``, nothing more.

Derivations run one at a time per process: each costs 64 MiB, and the unseal
route is unauthenticated, so concurrent guesses must not multiply the memory.
"""

from __future__ import annotations

import threading
from base64 import b64decode, b64encode
from typing import Any

from keyquorum.crypto import aead
from keyquorum.crypto.errors import InvalidCiphertext
from keyquorum.crypto.pwhash import SALT_SIZE, Argon2Params, argon2id_key
from keyquorum.crypto.random import random_bytes
from keyquorum.errors import InvalidRequest, WrongPassphrase
from keyquorum.seal.entry import PASSPHRASE, SealEntry, wrap_aad

MIN_LENGTH = 16
MAX_LENGTH = 1024
_DERIVE_LOCK = threading.Lock()


def check_passphrase(value: object) -> bytes:
    """The passphrase as UTF-8 bytes, or ``InvalidRequest`` stating the rule (never echoing it)."""
    if not isinstance(value, str):
        raise InvalidRequest("passphrase must be a string")
    if not MIN_LENGTH <= len(value) <= MAX_LENGTH:
        raise InvalidRequest(f"a passphrase must be {MIN_LENGTH}-{MAX_LENGTH} characters long")
    return value.encode("utf-8")


def _derive(passphrase: bytes, params: Argon2Params) -> aead.AeadKey:
    with _DERIVE_LOCK:
        return aead.AeadKey("aes-256-gcm", argon2id_key(passphrase, params))


def create(root_key: bytes, seal_id: str, passphrase: object, now: float,
           params: Argon2Params | None = None) -> SealEntry:
    """A new passphrase seal wrapping ``root_key`` (``params``: a fresh salt, default costs)."""
    secret = check_passphrase(passphrase)
    params = params or Argon2Params(salt=random_bytes(SALT_SIZE))
    nonce, body = _derive(secret, params).encrypt(root_key, wrap_aad(PASSPHRASE, seal_id))
    stored: dict[str, Any] = {"kdf": "argon2id", "salt": b64encode(params.salt).decode(),
                              "opslimit": params.opslimit, "memlimit": params.memlimit,
                              "aead": "aes-256-gcm"}
    return SealEntry(PASSPHRASE, seal_id, stored, nonce + body, now)


def _params(entry: SealEntry) -> Argon2Params:
    try:
        return Argon2Params(salt=b64decode(entry.params["salt"]),
                            opslimit=int(entry.params["opslimit"]),
                            memlimit=int(entry.params["memlimit"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"passphrase seal {entry.id} has malformed parameters") from exc


def open_root(entry: SealEntry, passphrase: str) -> bytes:
    """The root key, or ``WrongPassphrase`` if this seal does not open with it."""
    try:
        key = _derive(passphrase.encode("utf-8"), _params(entry))
        wrapped = entry.wrapped_root
        return key.decrypt(wrapped[:12], wrapped[12:], entry.aad)
    except InvalidCiphertext:
        raise WrongPassphrase() from None
