"""Canaries: known answers made at backup time, checked by the recovery drill.

For every enabled key whose primary version may protect data, the server makes
one canary with the key's own service primitives (the same key object, ``kq1:``
format and verbs the API uses): an encryption of random bytes, a MAC or a
signature of a random message, or an encapsulation to a KEM key's public key.
The canaries travel inside the encrypted backup body. A restored instance
passes the drill only if each one answers as expected: the ciphertext decrypts
to the same bytes, the MAC is recomputed equal, the old signature verifies and
a new one verifies under the public key of backup time, the encapsulation
yields the same shared secret. Each proves the restored material is exactly
the material that was backed up.
"""

from __future__ import annotations

import base64
import hmac
import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keyquorum.crypto import kem, rsa_oaep
from keyquorum.crypto.random import random_bytes
from keyquorum.crypto.signing import verify_with_public_pem
from keyquorum.errors import KeyquorumError
from keyquorum.keys.ciphertext import open_with, parse_ciphertext, seal_with
from keyquorum.keys.specs import get_spec
from keyquorum.keys.states import KeyState, Use, check_use
from keyquorum.storage import keys_repo

if TYPE_CHECKING:
    from keyquorum.service.core import Core
    from keyquorum.service.keycache import LoadedKey

log = logging.getLogger("keyquorum.backup")

CANARY_BYTES = 32
CONTEXT_NAME = "keyquorum-backup-canary"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: object) -> bytes:
    if not isinstance(value, str):
        raise ValueError("a canary field is not base64 text")
    return base64.b64decode(value, validate=True)


def _enabled_key_names(core: Core) -> list[str]:
    with core.engine.connect() as conn:
        return keys_repo.key_names(conn, state=KeyState.ENABLED)


def _protect_allowed(core: Core, loaded: LoadedKey) -> int | None:
    """The primary version if it may protect one more item now (state and usage limit)."""
    key = loaded.key
    version = key.primary_version
    stored = key.version(version)
    try:
        check_use(key_state=key.state, version_state=stored.state if stored else "destroyed",
                  use=Use.PROTECT, is_primary=True, version=version,
                  min_decrypt_version=key.min_decrypt_version)
    except KeyquorumError:
        return None
    limit = key.usage_limit or get_spec(key.spec).default_usage_limit
    if limit is not None and core.keys.protect_count(key, version) >= limit:
        return None  # a canary must not spend the version's last allowed use
    return version


def _make_one(core: Core, loaded: LoadedKey, version: int, backup_id: str) -> dict[str, Any]:
    key = loaded.key
    handle = core.keys.handle(loaded, version)
    base = {"key": key.name, "key_id": key.id, "version": version, "spec": key.spec}
    secret = random_bytes(CANARY_BYTES)
    if key.purpose == "encrypt" and key.spec in rsa_oaep.OAEP_ALGORITHMS:
        # An RSA encryption key: encrypt to the public half (as clients do), so the
        # restored private half must decrypt it.
        stored = key.version(version)
        if stored is None or stored.public_key is None:
            raise ValueError("no public key")
        block = rsa_oaep.encrypt_with_public_pem(key.spec, stored.public_key, secret)
        return {**base, "kind": "decrypt-oaep", "ciphertext": _b64(block),
                "plaintext": _b64(secret)}
    if key.purpose == "encrypt":
        context = {CONTEXT_NAME: backup_id}
        core.keys.count_protect(loaded, version)  # a real protect: it spends a nonce
        text = seal_with(handle, uuid.UUID(key.id), version, secret, context)
        return {**base, "kind": "decrypt", "ciphertext": text, "context": context,
                "plaintext": _b64(secret)}
    if key.purpose == "mac":
        core.keys.count_protect(loaded, version)
        return {**base, "kind": "mac", "message": _b64(secret), "mac": _b64(handle.mac(secret))}
    if key.purpose == "sign":
        core.keys.count_protect(loaded, version)
        stored = key.version(version)
        return {**base, "kind": "sign", "message": _b64(secret),
                "signature": _b64(handle.sign(message=secret)),
                "public_key_pem": stored.public_key if stored else None}
    stored = key.version(version)
    if stored is None or stored.public_key is None:
        raise ValueError("no public key")
    shared, encapsulation = kem.encapsulate(key.spec, stored.public_key)
    return {**base, "kind": "decapsulate", "encapsulation": _b64(encapsulation),
            "shared_secret": _b64(shared)}


def make_canaries(core: Core, backup_id: str) -> list[dict[str, Any]]:
    """One canary per enabled key whose primary version can be used now (needs unsealed)."""
    core.barrier()
    canaries: list[dict[str, Any]] = []
    for name in _enabled_key_names(core):
        try:
            loaded = core.keys.get(name)
            version = _protect_allowed(core, loaded)
            if version is not None:
                canaries.append(_make_one(core, loaded, version, backup_id))
        except (KeyquorumError, ValueError) as exc:
            # A key that cannot make one (deleted meanwhile, material gone) is left out;
            # the drill checks what was made.
            log.warning("no backup canary for a key (%s)", type(exc).__name__)
    return canaries


@dataclass(frozen=True)
class CanaryResult:
    key: str
    version: int
    kind: str
    ok: bool
    error: str | None = None


def _answers(core: Core, canary: dict[str, Any]) -> bool:
    loaded = core.keys.get_by_id(str(canary["key_id"]))
    version = int(canary["version"])
    handle = core.keys.handle(loaded, version)
    kind = canary["kind"]
    if kind == "decrypt":
        header, header_bytes, body = parse_ciphertext(str(canary["ciphertext"]))
        plaintext = open_with(handle, header, header_bytes, body, canary.get("context"))
        return hmac.compare_digest(plaintext, _unb64(canary["plaintext"]))
    if kind == "decrypt-oaep":
        return hmac.compare_digest(handle.decrypt(_unb64(canary["ciphertext"])),
                                   _unb64(canary["plaintext"]))
    if kind == "mac":
        return hmac.compare_digest(handle.mac(_unb64(canary["message"])),
                                   _unb64(canary["mac"]))
    if kind == "sign":
        message = _unb64(canary["message"])
        if not handle.verify(_unb64(canary["signature"]), message=message):
            return False
        # The restored private half signs; the public half of backup time must accept it.
        fresh = handle.sign(message=message)
        return verify_with_public_pem(loaded.key.spec, str(canary["public_key_pem"]), fresh,
                                      message=message)
    if kind == "decapsulate":
        shared = handle.decapsulate(_unb64(canary["encapsulation"]))
        return hmac.compare_digest(shared, _unb64(canary["shared_secret"]))
    raise ValueError(f"unknown canary kind {kind!r}")


def check_canaries(core: Core, canaries: list[dict[str, Any]]) -> list[CanaryResult]:
    """Check every canary against an unsealed (restored) core; one result each."""
    results = []
    for canary in canaries:
        key, version, kind = str(canary.get("key")), int(canary.get("version", 0)), \
            str(canary.get("kind"))
        try:
            ok = _answers(core, canary)
            results.append(CanaryResult(key, version, kind, ok,
                                        None if ok else "wrong answer"))
        except Exception as exc:  # any failure is this canary failing, named by its type
            message = exc.message if isinstance(exc, KeyquorumError) else type(exc).__name__
            results.append(CanaryResult(key, version, kind, False, message))
    return results
