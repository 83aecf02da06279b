"""Key specs: what each algorithm is for and how its material is made and loaded.

The registry is the one place that ties a spec name to a purpose, a family of
operations, and a crypto verb from ``keyquorum.crypto``; services ask it
instead of branching on spec strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keyquorum.crypto import aead, kem, mac, rsa_oaep, signing
from keyquorum.errors import InvalidRequest

# NIST SP 800-38D bound for random 96-bit nonces: at most 2^32 invocations per key.
GCM_RANDOM_NONCE_LIMIT = 2**32

PURPOSES = ("encrypt", "sign", "mac", "kem", "agree")


@dataclass(frozen=True)
class KeySpec:
    name: str
    family: str  # aead | mac | sign | kem
    purposes: tuple[str, ...]
    default_usage_limit: int | None = None
    asymmetric: bool = False

    @property
    def default_purpose(self) -> str:
        return self.purposes[0]

    def generate(self) -> bytes:
        """Fresh private material from the OS CSPRNG (through the crypto package)."""
        if self.family == "aead":
            return aead.generate_key(self.name)
        if self.family == "mac":
            return mac.generate_key(self.name)
        if self.family == "sign":
            return signing.generate_private(self.name)
        return kem.generate_private(self.name)

    def load(self, material: bytes, purpose: str | None = None) -> Any:
        """A ready-to-use key object (cipher or key pair) for the hot path; an RSA key of
        purpose ``encrypt`` loads as an OAEP key (same PKCS#8 material)."""
        if self.family == "aead":
            return aead.AeadKey(self.name, material)
        if self.family == "mac":
            return mac.MacKey(self.name, material)
        if self.family == "sign" and purpose == "encrypt":
            return rsa_oaep.OaepKey(self.name, material)
        if self.family == "sign":
            return signing.SigningKey(self.name, material)
        return kem.KemKey(self.name, material)


_SPECS = (
    KeySpec("aes-256-gcm", "aead", ("encrypt",), GCM_RANDOM_NONCE_LIMIT),
    # 128-bit security, for Vault's aes128-gcm96 keys; aes-256-gcm is recommended.
    KeySpec("aes-128-gcm", "aead", ("encrypt",), GCM_RANDOM_NONCE_LIMIT),
    KeySpec("chacha20-poly1305", "aead", ("encrypt",), GCM_RANDOM_NONCE_LIMIT),
    KeySpec("xchacha20-poly1305", "aead", ("encrypt",)),
    KeySpec("aes-256-gcm-siv", "aead", ("encrypt",)),
    KeySpec("hmac-sha224", "mac", ("mac",)),  # for AWS HMAC_224; prefer hmac-sha256
    KeySpec("hmac-sha256", "mac", ("mac",)),
    KeySpec("hmac-sha384", "mac", ("mac",)),
    KeySpec("hmac-sha512", "mac", ("mac",)),
    KeySpec("ed25519", "sign", ("sign",), asymmetric=True),
    KeySpec("ecdsa-p256", "sign", ("sign",), asymmetric=True),
    KeySpec("ecdsa-p384", "sign", ("sign",), asymmetric=True),
    KeySpec("ecdsa-p521", "sign", ("sign",), asymmetric=True),
    KeySpec("ecdsa-secp256k1", "sign", ("sign",), asymmetric=True),
    # 112-bit security (NIST SP 800-57: acceptable through 2030), for AWS and Vault
    # clients; rsa-3072 or rsa-4096 is recommended for new keys.
    # RSA keys sign, or (purpose encrypt) decrypt RSAES-OAEP blocks made with their
    # public key: never both, so one key pair never serves two schemes.
    KeySpec("rsa-2048", "sign", ("sign", "encrypt"), asymmetric=True),
    KeySpec("rsa-3072", "sign", ("sign", "encrypt"), asymmetric=True),
    KeySpec("rsa-4096", "sign", ("sign", "encrypt"), asymmetric=True),
    KeySpec("ml-dsa-44", "sign", ("sign",), asymmetric=True),
    KeySpec("ml-dsa-65", "sign", ("sign",), asymmetric=True),
    KeySpec("ml-dsa-87", "sign", ("sign",), asymmetric=True),
    KeySpec("x25519", "kem", ("agree", "kem"), asymmetric=True),
    KeySpec("ml-kem-768", "kem", ("kem",), asymmetric=True),
    KeySpec("ml-kem-1024", "kem", ("kem",), asymmetric=True),
    KeySpec("x25519-ml-kem-768", "kem", ("kem",), asymmetric=True),
)
SPECS: dict[str, KeySpec] = {spec.name: spec for spec in _SPECS}


def get_spec(name: object) -> KeySpec:
    if not isinstance(name, str) or name not in SPECS:
        raise InvalidRequest(f"unknown spec; known specs: {', '.join(SPECS)}")
    return SPECS[name]


def resolve_purpose(spec: KeySpec, purpose: object | None) -> str:
    if purpose is None:
        return spec.default_purpose
    if purpose not in spec.purposes:
        raise InvalidRequest(
            f"spec {spec.name} supports purposes {', '.join(spec.purposes)}, not {purpose!s}")
    return str(purpose)
