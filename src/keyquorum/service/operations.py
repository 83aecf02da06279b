"""Cryptographic operations on managed keys: one item at a time; the API batches.

Each verb authorizes, asks the state machine, counts usage, and calls the
crypto package through the key's cached object. It returns the answer with
the key name and version it used, so every item can be audited exactly.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from keyquorum.crypto.errors import InvalidCiphertext as CryptoInvalid
from keyquorum.crypto.random import random_bytes
from keyquorum.errors import (
    Conflict,
    InvalidCiphertext,
    InvalidRequest,
    KeyStateError,
    NotFound,
    TooLarge,
)
from keyquorum.keys.ciphertext import open_with, parse_ciphertext, seal_with
from keyquorum.keys.specs import get_spec
from keyquorum.keys.states import Use, check_use
from keyquorum.service.context import RequestContext
from keyquorum.service.core import Core
from keyquorum.service.fields import b64, b64decode_field, check_fields
from keyquorum.service.keycache import LoadedKey
from keyquorum.service.lifecycle import KeyLifecycle

MAX_CONTEXT_ENTRIES = 64
MAX_CONTEXT_BYTES = 8 * 1024
DATAKEY_BITS = (128, 192, 256, 512)
HASHES = ("sha256", "sha384", "sha512")


@dataclass(frozen=True)
class ItemResult:
    answer: dict[str, Any]
    key: str | None
    key_version: int | None


@lru_cache(maxsize=65536)
def _key_uuid(key_id: str) -> uuid.UUID:
    """Parsing a key id per request is measurable on the hot path; ids never change."""
    return uuid.UUID(key_id)


@lru_cache(maxsize=65536)
def _key_id_text(key_id: uuid.UUID) -> str:
    return str(key_id)


def parse_context(value: object, field: str = "context") -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise InvalidRequest(f"{field} must be a map of strings to strings")
    if len(value) > MAX_CONTEXT_ENTRIES or sum(
            len(k) + len(v) for k, v in value.items()) > MAX_CONTEXT_BYTES:
        raise InvalidRequest(f"{field} is limited to {MAX_CONTEXT_ENTRIES} entries and "
                             f"{MAX_CONTEXT_BYTES} bytes")
    return value


def _optional_version(item: dict[str, Any], field: str = "key_version") -> int | None:
    value = item.get(field)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidRequest(f"{field} must be a positive integer")
    return value


class CryptoOperations:
    def __init__(self, core: Core, lifecycle: KeyLifecycle) -> None:
        self.core = core
        self.lifecycle = lifecycle

    # -- shared steps ----------------------------------------------------------------------

    def _key_for(self, ctx: RequestContext, operation: str, name: str, purposes: tuple[str, ...],
                 context: dict[str, str] | None = None) -> LoadedKey:
        self.core.barrier()
        assert ctx.identity is not None
        # The request's facts go along for rules with conditions (context keys, source
        # address); rules without them are answered from the authorizer's cache.
        self.core.authorizer.authorize(ctx.identity, operation, name, client=ctx.client,
                                       context=context)
        loaded = self.core.keys.get(name)
        if loaded.key.purpose not in purposes:
            raise Conflict(f"key {name} has purpose {loaded.key.purpose}; "
                           f"{operation} needs a key for {' or '.join(purposes)}")
        return loaded

    def _check_plaintext(self, data: bytes, field: str = "plaintext") -> None:
        if len(data) > self.core.settings.max_item_bytes:
            raise TooLarge(f"{field} exceeds {self.core.settings.max_item_bytes} bytes")

    def _protect_version(self, ctx: RequestContext, loaded: LoadedKey) -> tuple[LoadedKey, int]:
        """The primary version, counted; rotates first or after when the usage limit is hit."""
        for _ in range(3):
            key = loaded.key
            version = key.primary_version
            stored = key.version(version)
            check_use(key_state=key.state, version_state=stored.state if stored else "destroyed",
                      use=Use.PROTECT, is_primary=True, version=version,
                      min_decrypt_version=key.min_decrypt_version)
            limit = key.usage_limit or get_spec(key.spec).default_usage_limit
            count = self.core.keys.count_protect(loaded, version)
            if limit is None or count < limit:
                return loaded, version
            if count == limit:  # the last allowed use: serve it, then move on
                self._rotate_spent(ctx, key.name, version)
                return loaded, version
            self._rotate_spent(ctx, key.name, version)
            loaded = self.core.keys.get(key.name)
        raise KeyStateError("the key's usage limit was reached and rotation did not complete")

    def _rotate_spent(self, ctx: RequestContext, name: str, version: int) -> None:
        rotation_ctx = RequestContext(request_id=ctx.request_id, client=ctx.client,
                                      identity=ctx.identity)
        self.lifecycle.rotate_for_usage(rotation_ctx, name, version)

    def _unprotect_check(self, loaded: LoadedKey, version: int, *,
                         allow_compromised: bool = False) -> None:
        key = loaded.key
        stored = key.version(version)
        if stored is None:
            raise NotFound(f"key {key.name} has no version {version}")
        check_use(key_state=key.state, version_state=stored.state, use=Use.UNPROTECT,
                  is_primary=version == key.primary_version, version=version,
                  min_decrypt_version=key.min_decrypt_version,
                  allow_compromised=allow_compromised)

    def _used(self, loaded: LoadedKey, version: int) -> None:
        self.core.keys.mark_used(loaded, version, self.core.clock.now())

    # -- encryption --------------------------------------------------------------------------

    def encrypt(self, ctx: RequestContext, name: str, item: object) -> ItemResult:
        body = check_fields(item, {"plaintext", "context"})
        plaintext = b64decode_field(body, "plaintext")
        assert plaintext is not None
        self._check_plaintext(plaintext)
        context = parse_context(body.get("context"))
        ctx.context = context  # audited HMAC'd, never in clear
        return self._encrypt_bytes(ctx, "encrypt", name, plaintext, context, {})

    def _encrypt_bytes(self, ctx: RequestContext, operation: str, name: str, plaintext: bytes,
                       context: dict[str, str] | None, extra: dict[str, Any]) -> ItemResult:
        loaded = self._key_for(ctx, operation, name, ("encrypt",), context)
        loaded, version = self._protect_version(ctx, loaded)
        handle = self.core.keys.handle(loaded, version)
        text = seal_with(handle, _key_uuid(loaded.key.id), version, plaintext, context)
        self._used(loaded, version)
        return ItemResult({"ciphertext": text, "key_version": version, **extra},
                          loaded.key.name, version)

    def _open(self, ctx: RequestContext, operation: str, text: object,
              context: dict[str, str] | None, *, expected_key: str | None,
              allow_compromised: bool) -> tuple[bytes, LoadedKey, int]:
        self.core.barrier()
        if not isinstance(text, str):
            raise InvalidRequest("ciphertext must be a string")
        try:
            header, header_bytes, body = parse_ciphertext(text)
        except CryptoInvalid as exc:
            raise InvalidCiphertext() from exc
        try:
            loaded = self.core.keys.get_by_id(_key_id_text(header.key_id))
        except NotFound as exc:
            raise InvalidCiphertext() from exc
        name = loaded.key.name
        ctx.key, ctx.key_version = name, header.key_version
        assert ctx.identity is not None
        self.core.authorizer.authorize(ctx.identity, operation, name, client=ctx.client,
                                       context=context)
        if expected_key is not None and name != expected_key:
            raise InvalidCiphertext("the ciphertext belongs to another key")
        if header.algorithm != loaded.key.spec:
            raise InvalidCiphertext()
        self._unprotect_check(loaded, header.key_version, allow_compromised=allow_compromised)
        stored = loaded.key.version(header.key_version)
        if allow_compromised and stored is not None and stored.state.value == "compromised":
            # The override is its own permission: holding decrypt is not enough to read
            # data under a key everyone should assume the attacker holds too.
            self.core.authorizer.authorize(ctx.identity, "unprotect-compromised", name,
                                           client=ctx.client, context=context)
            ctx.detail["override"] = "unsafe_allow_compromised"
        handle = self.core.keys.handle(loaded, header.key_version)
        try:
            plaintext = open_with(handle, header, header_bytes, body, context)
        except CryptoInvalid as exc:
            raise InvalidCiphertext() from exc
        self._used(loaded, header.key_version)
        return plaintext, loaded, header.key_version

    @staticmethod
    def _override(body: dict[str, Any]) -> bool:
        value = body.get("unsafe_allow_compromised", False)
        if not isinstance(value, bool):
            raise InvalidRequest("unsafe_allow_compromised must be true or false")
        return value

    def decrypt(self, ctx: RequestContext, item: object, *,
                expected_key: str | None = None) -> ItemResult:
        body = check_fields(item, {"ciphertext", "context", "unsafe_allow_compromised"})
        context = parse_context(body.get("context"))
        ctx.context = context  # audited HMAC'd, never in clear
        plaintext, loaded, version = self._open(
            ctx, "decrypt", body.get("ciphertext"), context, expected_key=expected_key,
            allow_compromised=self._override(body))
        return ItemResult({"plaintext": b64(plaintext), "key": loaded.key.name,
                           "key_version": version}, loaded.key.name, version)

    def reencrypt(self, ctx: RequestContext, item: object) -> ItemResult:
        body = check_fields(item, {"ciphertext", "context", "destination_key",
                                   "destination_context", "unsafe_allow_compromised"})
        context = parse_context(body.get("context"))
        ctx.context = context  # audited HMAC'd, never in clear
        plaintext, loaded, _ = self._open(ctx, "reencrypt", body.get("ciphertext"), context,
                                          expected_key=None,
                                          allow_compromised=self._override(body))
        destination = body.get("destination_key") or loaded.key.name
        if not isinstance(destination, str):
            raise InvalidRequest("destination_key must be a key name")
        destination_context = (parse_context(body["destination_context"], "destination_context")
                               if "destination_context" in body else context)
        return self._encrypt_bytes(ctx, "reencrypt", destination, plaintext,
                                   destination_context, {"key": destination})

    def datakey(self, ctx: RequestContext, name: str, item: object) -> ItemResult:
        body = check_fields(item, {"bits", "context", "plaintext"})
        bits = body.get("bits", 256)
        if bits not in DATAKEY_BITS or isinstance(bits, bool):
            raise InvalidRequest(f"bits must be one of {', '.join(map(str, DATAKEY_BITS))}")
        want_plaintext = body.get("plaintext", True)
        if not isinstance(want_plaintext, bool):
            raise InvalidRequest("plaintext must be true or false")
        context = parse_context(body.get("context"))
        ctx.context = context  # audited HMAC'd, never in clear
        data_key = random_bytes(bits // 8)
        extra = {"plaintext": b64(data_key)} if want_plaintext else {}
        return self._encrypt_bytes(ctx, "datakey", name, data_key, context, extra)

    # -- signatures, MACs, KEM -----------------------------------------------------------------

    def sign(self, ctx: RequestContext, name: str, item: object) -> ItemResult:
        body = check_fields(item, {"message", "digest", "hash"})
        message = b64decode_field(body, "message", required=False)
        digest = b64decode_field(body, "digest", required=False)
        if (message is None) == (digest is None):
            raise InvalidRequest("give exactly one of message or digest")
        hash_name = self._hash(body, digest is not None)
        if message is not None:
            self._check_plaintext(message, "message")
        loaded = self._key_for(ctx, "sign", name, ("sign",))
        loaded, version = self._protect_version(ctx, loaded)
        handle = self.core.keys.handle(loaded, version)
        signature = handle.sign(message=message, digest=digest, hash_name=hash_name)
        self._used(loaded, version)
        return ItemResult({"signature": b64(signature), "key_version": version},
                          loaded.key.name, version)

    @staticmethod
    def _hash(body: dict[str, Any], required: bool) -> str | None:
        value = body.get("hash")
        if value is None:
            if required:
                raise InvalidRequest(f"digest needs hash: one of {', '.join(HASHES)}")
            return None
        if value not in HASHES:
            raise InvalidRequest(f"hash must be one of {', '.join(HASHES)}")
        return str(value)

    def _version_for_use(self, loaded: LoadedKey, body: dict[str, Any]) -> int:
        version = _optional_version(body) or loaded.key.primary_version
        self._unprotect_check(loaded, version)
        return version

    def verify(self, ctx: RequestContext, name: str, item: object) -> ItemResult:
        body = check_fields(item, {"message", "digest", "hash", "signature", "key_version"})
        message = b64decode_field(body, "message", required=False)
        digest = b64decode_field(body, "digest", required=False)
        if (message is None) == (digest is None):
            raise InvalidRequest("give exactly one of message or digest")
        hash_name = self._hash(body, digest is not None)
        signature = b64decode_field(body, "signature")
        loaded = self._key_for(ctx, "verify", name, ("sign",))
        version = self._version_for_use(loaded, body)
        handle = self.core.keys.handle(loaded, version)
        valid = handle.verify(signature, message=message, digest=digest, hash_name=hash_name)
        self._used(loaded, version)
        return ItemResult({"valid": bool(valid), "key_version": version}, name, version)

    def mac(self, ctx: RequestContext, name: str, item: object) -> ItemResult:
        body = check_fields(item, {"message"})
        message = b64decode_field(body, "message")
        assert message is not None
        self._check_plaintext(message, "message")
        loaded = self._key_for(ctx, "mac", name, ("mac",))
        loaded, version = self._protect_version(ctx, loaded)
        tag = self.core.keys.handle(loaded, version).mac(message)
        self._used(loaded, version)
        return ItemResult({"mac": b64(tag), "key_version": version}, name, version)

    def verify_mac(self, ctx: RequestContext, name: str, item: object) -> ItemResult:
        body = check_fields(item, {"message", "mac", "key_version"})
        message = b64decode_field(body, "message")
        tag = b64decode_field(body, "mac")
        loaded = self._key_for(ctx, "mac", name, ("mac",))
        version = self._version_for_use(loaded, body)
        valid = self.core.keys.handle(loaded, version).verify(message, tag)
        self._used(loaded, version)
        return ItemResult({"valid": bool(valid), "key_version": version}, name, version)

    def decapsulate(self, ctx: RequestContext, name: str, item: object) -> ItemResult:
        body = check_fields(item, {"encapsulation", "context", "key_version"})
        encapsulation = b64decode_field(body, "encapsulation")
        context = parse_context(body.get("context"))
        ctx.context = context  # audited HMAC'd, never in clear
        loaded = self._key_for(ctx, "decapsulate", name, ("kem", "agree"), context)
        version = self._version_for_use(loaded, body)
        try:
            secret = self.core.keys.handle(loaded, version).decapsulate(encapsulation)
        except CryptoInvalid as exc:
            raise InvalidCiphertext("the encapsulation is invalid for this key") from exc
        self._used(loaded, version)
        return ItemResult({"shared_secret": b64(secret), "key_version": version}, name, version)

    def public_key(self, ctx: RequestContext, name: str, version: int | None) -> ItemResult:
        self.core.barrier()
        assert ctx.identity is not None
        self.core.authorizer.authorize(ctx.identity, "read", name, client=ctx.client)
        loaded = self.core.keys.get(name)
        if not get_spec(loaded.key.spec).asymmetric:
            raise Conflict(f"key {name} is symmetric and has no public key")
        number = version or loaded.key.primary_version
        stored = loaded.key.version(number)
        if stored is None:
            raise NotFound(f"key {name} has no version {number}")
        if stored.public_key is None or stored.state.value == "destroyed":
            raise KeyStateError(f"version {number} is {stored.state.value}")
        return ItemResult({"public_key_pem": stored.public_key, "version": number,
                           "spec": loaded.key.spec}, name, number)

    def random(self, ctx: RequestContext, item: object) -> ItemResult:
        body = check_fields(item, {"bytes"})
        count = body.get("bytes")
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 1024:
            raise InvalidRequest("bytes must be an integer from 1 to 1024")
        assert ctx.identity is not None
        self.core.authorizer.authorize(ctx.identity, "random", None, client=ctx.client)
        return ItemResult({"random": b64(random_bytes(count))}, None, None)
