"""Vault key types and the keyquorum specs behind them.

Vault's own names map to the keyquorum spec that does the same thing. Types
Vault has and keyquorum has no spec for are refused by name (never mapped to a
near neighbour: a client asking for aes128 must not silently get aes256).
keyquorum's other specs (post-quantum ML-DSA / ML-KEM, XChaCha20, AES-GCM-SIV,
secp256k1, ...) are offered as ``kq-<spec>``: a prefix Vault does not use, so
no name can ever mean one thing to Vault and another here.
"""

from __future__ import annotations

from keyquorum.errors import InvalidRequest
from keyquorum.keys.specs import SPECS, get_spec

_CANDIDATES: dict[str, str] = {
    "aes256-gcm96": "aes-256-gcm",
    "aes128-gcm96": "aes-128-gcm",
    "chacha20-poly1305": "chacha20-poly1305",
    "ed25519": "ed25519",
    "ecdsa-p256": "ecdsa-p256",
    "ecdsa-p384": "ecdsa-p384",
    "ecdsa-p521": "ecdsa-p521",
    "rsa-2048": "rsa-2048",
    "rsa-3072": "rsa-3072",
    "rsa-4096": "rsa-4096",
    "hmac": "hmac-sha256",
}
VAULT_TYPES: dict[str, str] = {t: s for t, s in _CANDIDATES.items() if s in SPECS}
"""Vault's types whose keyquorum spec exists in this build."""
UNSUPPORTED_TYPES: dict[str, str] = {
    "ecdsa-p521": "keyquorum has no P-521 spec; use ecdsa-p384",
    "rsa-2048": "keyquorum keeps RSA keys of 3072 bits or more; use rsa-3072",
    "managed_key": "managed keys are not supported",
    "aes128-cmac": "CMAC keys are not supported",
    "aes256-cmac": "CMAC keys are not supported",
}
KQ_PREFIX = "kq-"
_SPEC_TO_TYPE = {spec: vault_type for vault_type, spec in VAULT_TYPES.items()}
_CURVE_NAMES = {"ecdsa-p256": "P-256", "ecdsa-p384": "P-384", "ecdsa-p521": "P-521",
                "ecdsa-secp256k1": "secp256k1"}
_HMAC_BITS = {"hmac-sha224": 224, "hmac-sha256": 256, "hmac-sha384": 384, "hmac-sha512": 512}


def spec_for_type(vault_type: str) -> str:
    """The keyquorum spec a create asks for, or a refusal that says why."""
    if vault_type in VAULT_TYPES:
        return VAULT_TYPES[vault_type]
    if vault_type in UNSUPPORTED_TYPES:
        raise InvalidRequest(f"key type {vault_type} is not supported: "
                             f"{UNSUPPORTED_TYPES[vault_type]}")
    if vault_type.startswith(KQ_PREFIX) and vault_type[len(KQ_PREFIX):] in SPECS:
        return vault_type[len(KQ_PREFIX):]
    known = [*VAULT_TYPES, *(KQ_PREFIX + s for s in SPECS if s not in _SPEC_TO_TYPE)]
    raise InvalidRequest(f"unknown key type {vault_type}; known types: {', '.join(known)}")


def type_for_spec(spec: str) -> str:
    return _SPEC_TO_TYPE.get(spec, KQ_PREFIX + spec)


def curve_name(spec: str) -> str:
    """The ``name`` Vault gives an asymmetric version (the curve, or the algorithm)."""
    return _CURVE_NAMES.get(spec, spec)


def hmac_bits(spec: str) -> int | None:
    return _HMAC_BITS.get(spec)


def capabilities(spec: str, purpose: str | None = None) -> dict[str, bool]:
    """Vault's ``supports_*`` flags for a spec (an RSA key of purpose encrypt encrypts
    and decrypts with OAEP and does not sign)."""
    family = get_spec(spec).family
    encrypts = family == "aead" or (family == "sign" and purpose == "encrypt")
    return {"supports_encryption": encrypts,
            "supports_decryption": encrypts,
            "supports_derivation": False,  # derived keys are refused (see fields)
            "supports_signing": family == "sign" and purpose != "encrypt"}
