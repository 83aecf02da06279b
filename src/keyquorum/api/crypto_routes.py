"""The cryptographic routes, served by a lean ASGI front instead of FastAPI's router.

Encrypt, decrypt, sign and friends are the hot path: thousands of small
requests a second. FastAPI's routing, dependency injection and middleware
stack cost more per request than the cryptography and the audit write
together, so these routes are matched and answered here, in front of the
FastAPI app, and every other path is passed through to it unchanged.

They are not a second pipeline: each route is one row of ``KEY_ROUTES`` /
``KEYLESS_ROUTES`` (its typed item model, the permission checked on the key
the path names, and the service verb), and ``Runner.run_crypto`` takes every
row through the same steps as every other request: limited body, typed
parse, authenticate, validate the name, authorize, service, serialize, audit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from keyquorum.api.bodies import (
    Body,
    DataKeyItem,
    DecapsulateItem,
    DecryptItem,
    DecryptOaepItem,
    EncryptItem,
    EncryptOaepItem,
    MacItem,
    RandomItem,
    ReencryptItem,
    SignItem,
    VerifyItem,
    VerifyMacItem,
)
from keyquorum.service.context import RequestContext
from keyquorum.service.operations import CryptoOperations, Used

Call = Callable[[CryptoOperations, RequestContext, "str | None", Any, bool], Used]


@dataclass(frozen=True)
class CryptoRoute:
    """One crypto route: how its items are parsed, authorized and run.

    ``permission`` is checked by the pipeline on the key the path names, with
    each item's context (rules with ``context_keys``); None when the service
    discovers the key itself (decrypt: the ciphertext names it).
    """

    operation: str  # the audit operation
    model: type[Body]
    call: Call
    permission: str | None
    empty_body_ok: bool = False


def _encrypt(ops: CryptoOperations, ctx: RequestContext, name: str | None, item: EncryptItem,
             may_block: bool) -> Used:
    assert name is not None
    return ops.encrypt(ctx, name, item.plaintext, item.context, may_block=may_block)


def _decrypt(ops: CryptoOperations, ctx: RequestContext, name: str | None, item: DecryptItem,
             may_block: bool) -> Used:
    return ops.decrypt(ctx, item.ciphertext, item.context, expected_key=name,
                       allow_compromised=item.unsafe_allow_compromised, may_block=may_block)


def _reencrypt(ops: CryptoOperations, ctx: RequestContext, _name: str | None,
               item: ReencryptItem, may_block: bool) -> Used:
    return ops.reencrypt(ctx, item.ciphertext, item.context,
                         destination_key=item.destination_key,
                         destination_context=item.target_context(),
                         allow_compromised=item.unsafe_allow_compromised, may_block=may_block)


def _datakey(ops: CryptoOperations, ctx: RequestContext, name: str | None, item: DataKeyItem,
             may_block: bool) -> Used:
    assert name is not None
    return ops.datakey(ctx, name, item.bits, item.context, with_plaintext=item.plaintext,
                       may_block=may_block)


def _encrypt_oaep(ops: CryptoOperations, ctx: RequestContext, name: str | None,
                  item: EncryptOaepItem, may_block: bool) -> Used:
    assert name is not None
    return ops.encrypt_oaep(ctx, name, item.plaintext, item.hash, may_block=may_block)


def _decrypt_oaep(ops: CryptoOperations, ctx: RequestContext, name: str | None,
                  item: DecryptOaepItem, may_block: bool) -> Used:
    assert name is not None
    return ops.decrypt_oaep(ctx, name, item.ciphertext, item.hash, version=item.key_version,
                            may_block=may_block)


def _sign(ops: CryptoOperations, ctx: RequestContext, name: str | None, item: SignItem,
          may_block: bool) -> Used:
    assert name is not None
    return ops.sign(ctx, name, message=item.message, digest=item.digest, hash_name=item.hash,
                    scheme=item.scheme, may_block=may_block)


def _verify(ops: CryptoOperations, ctx: RequestContext, name: str | None, item: VerifyItem,
            may_block: bool) -> Used:
    assert name is not None
    return ops.verify(ctx, name, item.signature, message=item.message, digest=item.digest,
                      hash_name=item.hash, version=item.key_version, scheme=item.scheme,
                      may_block=may_block)


def _mac(ops: CryptoOperations, ctx: RequestContext, name: str | None, item: MacItem,
         may_block: bool) -> Used:
    assert name is not None
    return ops.mac(ctx, name, item.message, may_block=may_block)


def _verify_mac(ops: CryptoOperations, ctx: RequestContext, name: str | None,
                item: VerifyMacItem, may_block: bool) -> Used:
    assert name is not None
    return ops.verify_mac(ctx, name, item.message, item.mac, version=item.key_version,
                          may_block=may_block)


def _decapsulate(ops: CryptoOperations, ctx: RequestContext, name: str | None,
                 item: DecapsulateItem, may_block: bool) -> Used:
    assert name is not None
    return ops.decapsulate(ctx, name, item.encapsulation, version=item.key_version,
                           may_block=may_block)


def _random(ops: CryptoOperations, _ctx: RequestContext, _name: str | None, item: RandomItem,
            _may_block: bool) -> Used:
    return ops.random(item.bytes)


KEY_ROUTES: dict[str, CryptoRoute] = {
    "encrypt": CryptoRoute("encrypt", EncryptItem, _encrypt, "encrypt"),
    "decrypt": CryptoRoute("decrypt", DecryptItem, _decrypt, None),
    "datakey": CryptoRoute("datakey", DataKeyItem, _datakey, "datakey", empty_body_ok=True),
    "encrypt-oaep": CryptoRoute("encrypt", EncryptOaepItem, _encrypt_oaep, "encrypt"),
    "decrypt-oaep": CryptoRoute("decrypt", DecryptOaepItem, _decrypt_oaep, "decrypt"),
    "sign": CryptoRoute("sign", SignItem, _sign, "sign"),
    "verify": CryptoRoute("verify", VerifyItem, _verify, "verify"),
    "mac": CryptoRoute("mac", MacItem, _mac, "mac"),
    "verify-mac": CryptoRoute("mac", VerifyMacItem, _verify_mac, "mac"),
    "decapsulate": CryptoRoute("decapsulate", DecapsulateItem, _decapsulate, "decapsulate"),
}
"""``POST /v1/keys/{name}/{segment}``."""

KEYLESS_ROUTES: dict[str, CryptoRoute] = {
    "/v1/decrypt": CryptoRoute("decrypt", DecryptItem, _decrypt, None),
    "/v1/reencrypt": CryptoRoute("reencrypt", ReencryptItem, _reencrypt, None),
    "/v1/random": CryptoRoute("random", RandomItem, _random, "random"),
}


def match(path: str) -> tuple[CryptoRoute, str | None] | None:
    """The route and the key name the path gives (None for keyless routes), if any."""
    keyless = KEYLESS_ROUTES.get(path)
    if keyless is not None:
        return keyless, None
    if path.startswith("/v1/keys/"):
        name, slash, segment = path[len("/v1/keys/"):].rpartition("/")
        route = KEY_ROUTES.get(segment)
        if slash and route is not None:  # an empty name ("/v1/keys//encrypt") is refused
            return route, name           # by the pipeline's name check, as a bad name

    return None
