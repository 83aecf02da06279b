"""``transit/sign``, ``verify`` (signatures and HMACs) and ``hmac``, single and batch.

Native twins: sign → ``sign``, verify → ``verify``, hmac and HMAC verify →
``mac`` (as ``POST /v1/keys/{name}/mac`` and ``verify-mac``). Signatures and
tags are ``vault:v<N>:<base64>``; ``marshaling_algorithm=jws`` gives ECDSA's raw
``r || s`` in base64url, as Vault does. keyquorum signs RSA with PSS (salt as
long as the digest; the default) or PKCS#1 v1.5 (``signature_algorithm=pkcs1v15``),
signs with the latest version only, and computes HMACs with ``hmac`` keys only:
other requests are refused, never approximated.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from keyquorum.crypto.ecdsa_format import CURVE_BYTES, der_to_raw, raw_to_der
from keyquorum.errors import InvalidRequest
from keyquorum.service.context import RequestContext
from keyquorum.transit import fields
from keyquorum.transit.calls import Call
from keyquorum.transit.ciphertext import split_vault
from keyquorum.transit.crypto import each
from keyquorum.transit.envelope import Answer
from keyquorum.transit.types import hmac_bits

HASHES = {"sha2-256": "sha256", "sha2-384": "sha384", "sha2-512": "sha512"}
_INTERNAL_HASH = ("ed25519", "ml-dsa-44", "ml-dsa-65", "ml-dsa-87")
UNSUPPORTED = ("context", "salt_length_custom", "cmac")


def _spec(call: Call, name: str) -> str:
    return call.services.core.keys.get(name).key.spec


def _hash_name(item: dict[str, Any], path_hash: str | None, spec: str) -> str | None:
    wanted = fields.text(item, "hash_algorithm") or fields.text(item, "algorithm") \
        or path_hash or "sha2-256"
    if spec in _INTERNAL_HASH:
        return None  # Ed25519 and ML-DSA hash internally; Vault ignores the field too
    if wanted not in HASHES:
        raise InvalidRequest(f"hash_algorithm {wanted} is not supported; keyquorum signs "
                             f"with {', '.join(HASHES)}")
    return HASHES[wanted]


def _scheme(item: dict[str, Any], spec: str) -> str | None:
    """The RSA padding (None: PSS, the default); Vault's field is ignored for other keys
    when it names the default, as Vault ignores it, and refused when it asks for more."""
    signature_algorithm = fields.text(item, "signature_algorithm") or "pss"
    if signature_algorithm not in ("pss", "pkcs1v15"):
        raise InvalidRequest("signature_algorithm must be pss or pkcs1v15")
    if not spec.startswith("rsa-"):
        if signature_algorithm != "pss":
            raise InvalidRequest("signature_algorithm pkcs1v15 is for RSA keys")
        return None
    return None if signature_algorithm == "pss" else "pkcs1v15"


def _check_options(item: dict[str, Any], spec: str) -> None:
    _scheme(item, spec)
    salt = fields.text(item, "salt_length") or "auto"
    if salt not in ("auto", "hash"):
        raise InvalidRequest("salt_length must be auto or hash: keyquorum's PSS salt is as "
                             "long as the digest")
    marshaling = fields.text(item, "marshaling_algorithm") or "asn1"
    if marshaling not in ("asn1", "jws"):
        raise InvalidRequest("marshaling_algorithm must be asn1 or jws")
    if marshaling == "jws" and spec not in CURVE_BYTES:
        raise InvalidRequest("marshaling_algorithm jws is for ECDSA keys")
    if fields.boolean(item, "prehashed") and spec in _INTERNAL_HASH:
        raise InvalidRequest(f"{spec} keys sign messages, not prehashed input")


def _message(item: dict[str, Any]) -> tuple[bytes | None, bytes | None]:
    data = fields.b64(item, "input", required=True) or b""
    return (None, data) if fields.boolean(item, "prehashed") else (data, None)


def _jws(item: dict[str, Any]) -> bool:
    return (fields.text(item, "marshaling_algorithm") or "asn1") == "jws"


async def sign(call: Call) -> Answer:
    name = call.key_name()
    path_hash = call.segments[2] if len(call.segments) > 2 else None
    ops = call.services.operations

    async def one(item: dict[str, Any]) -> dict[str, Any]:
        def work(ctx: RequestContext) -> dict[str, Any]:
            fields.refuse_unsupported(item, UNSUPPORTED)
            spec = _spec(call, name)
            _check_options(item, spec)
            version = fields.integer(item, "key_version", None, low=0)
            message, digest = _message(item)
            hash_name = _hash_name(item, path_hash, spec)
            done = ops.sign(ctx, name, message=message, digest=digest, hash_name=hash_name,
                            scheme=_scheme(item, spec))
            if version and version != done.version:
                raise InvalidRequest("keyquorum signs with the latest version only")
            signature = done.signature
            if _jws(item):
                encoded = base64.urlsafe_b64encode(der_to_raw(spec, signature)).decode()
                encoded = encoded.rstrip("=")
            else:
                encoded = fields.encode_b64(signature)
            return {"signature": f"vault:v{done.version}:{encoded}",
                    "key_version": done.version}

        return await call.run_item("sign", name, work, permission="sign")

    return await each(call, one)


def _signature(item: dict[str, Any], spec: str) -> tuple[int, bytes]:
    text = item.get("signature")
    if _jws(item) and isinstance(text, str) and text.startswith("vault:v"):
        number, _, rest = text[len("vault:v"):].partition(":")
        try:
            raw = base64.urlsafe_b64decode(rest + "=" * (-len(rest) % 4))
        except (binascii.Error, ValueError):
            raise InvalidRequest("signature is not valid base64url") from None
        if not number.isdigit():
            raise InvalidRequest("signature has no version prefix")
        return int(number), raw_to_der(spec, raw)
    try:
        return split_vault(text)
    except Exception:
        raise InvalidRequest("signature must be vault:v<N>:<base64>") from None


async def verify(call: Call) -> Answer:
    name = call.key_name()
    path_hash = call.segments[2] if len(call.segments) > 2 else None
    ops = call.services.operations

    async def one(item: dict[str, Any]) -> dict[str, Any]:
        if item.get("hmac") is not None:
            return await _verify_hmac(call, name, item)

        def work(ctx: RequestContext) -> dict[str, Any]:
            fields.refuse_unsupported(item, UNSUPPORTED)
            spec = _spec(call, name)
            _check_options(item, spec)
            version, signature = _signature(item, spec)
            message, digest = _message(item)
            done = ops.verify(ctx, name, signature, message=message, digest=digest,
                              hash_name=_hash_name(item, path_hash, spec), version=version,
                              scheme=_scheme(item, spec))
            return {"valid": done.valid}

        return await call.run_item("verify", name, work, permission="verify")

    return await each(call, one, failed_item={"valid": False})


async def _verify_hmac(call: Call, name: str, item: dict[str, Any]) -> dict[str, Any]:
    ops = call.services.operations

    def work(ctx: RequestContext) -> dict[str, Any]:
        _check_hmac_algorithm(call, name, item, None)
        try:
            version, tag = split_vault(item.get("hmac"))
        except Exception:
            raise InvalidRequest("hmac must be vault:v<N>:<base64>") from None
        message = fields.b64(item, "input", required=True) or b""
        done = ops.verify_mac(ctx, name, message, tag, version=version)
        return {"valid": done.valid}

    return await call.run_item("mac", name, work, permission="mac")


def _check_hmac_algorithm(call: Call, name: str, item: dict[str, Any],
                          path_algorithm: str | None) -> None:
    spec = _spec(call, name)
    bits = hmac_bits(spec)
    if bits is None:
        raise InvalidRequest("keyquorum computes HMACs with hmac keys only (type hmac)")
    wanted = fields.text(item, "algorithm") or fields.text(item, "hash_algorithm") \
        or path_algorithm or "sha2-256"
    if wanted != f"sha2-{bits}":
        raise InvalidRequest(f"this key computes HMAC-SHA-{bits} only (algorithm sha2-{bits})")


async def hmac(call: Call) -> Answer:
    name = call.key_name()
    path_algorithm = call.segments[2] if len(call.segments) > 2 else None
    ops = call.services.operations

    async def one(item: dict[str, Any]) -> dict[str, Any]:
        def work(ctx: RequestContext) -> dict[str, Any]:
            _check_hmac_algorithm(call, name, item, path_algorithm)
            version = fields.integer(item, "key_version", None, low=0)
            message = fields.b64(item, "input", required=True) or b""
            done = ops.mac(ctx, name, message)
            if version and version != done.version:
                raise InvalidRequest("keyquorum computes HMACs with the latest version only")
            return {"hmac": f"vault:v{done.version}:{fields.encode_b64(done.tag)}"}

        return await call.run_item("mac", name, work, permission="mac")

    return await each(call, one)



