"""ECDSA signatures in two spellings: ASN.1 DER (keyquorum's) and JWS's raw ``r || s``.

RFC 7518 §3.4 fixes JWS ECDSA signatures as the two integers, big-endian, each
padded to the curve's size; ``signing`` produces and checks DER. The Vault
transit API offers both (``marshaling_algorithm``), so the conversion lives here,
beside the other primitives.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from keyquorum.crypto.errors import InvalidSignatureInput

CURVE_BYTES = {"ecdsa-p256": 32, "ecdsa-p384": 48, "ecdsa-p521": 66,
               "ecdsa-secp256k1": 32}


def der_to_raw(alg: str, der: bytes) -> bytes:
    size = CURVE_BYTES[alg]
    r, s = decode_dss_signature(der)
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def raw_to_der(alg: str, raw: bytes) -> bytes:
    size = CURVE_BYTES[alg]
    if len(raw) != 2 * size:
        raise InvalidSignatureInput(f"a JWS {alg} signature is {2 * size} bytes")
    return encode_dss_signature(int.from_bytes(raw[:size], "big"),
                                int.from_bytes(raw[size:], "big"))
