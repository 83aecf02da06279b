"""Sealing a short secret to one holder's KEM public key: only their private key opens it.

The server sometimes has to hand a secret to one person through other people's
hands: a break-glass root token travels back through the custodian whose share
completed the quorum (``service.generate_root``), like Vault's PGP-encrypted
``encoded_token``. The person asking brings a public key; the server seals the
secret to it and forgets it; whoever carries the box learns nothing.

The construction is KEM-DEM, the shape of HPKE's base mode:

- the X-Wing hybrid KEM (``x25519-ml-kem-768``, ``crypto.kem``) encapsulates a
  fresh shared secret to the recipient's public key: opening needs both the
  X25519 and the ML-KEM-768 private halves, so a quantum break of one alone is
  not enough;
- HKDF-SHA256 of that secret, with a domain label and the caller's ``context``
  as info, gives a one-message AES-256-GCM key (the nonce is random anyway);
- the associated data is the label, the recipient's public key fingerprint and
  ``context``, so a box cannot be moved to another ceremony or recipient
  without failing to open.

Box layout (bytes): ``b"kqbox1"`` || encapsulation (1120) || nonce (12) ||
ciphertext with tag. Every failure to open is the one ``InvalidCiphertext``.

Private keys are kept by the CLI in a PEM armor of the 96-byte X-Wing material
(``generate``/``load_private_pem``); the server never sees one.
"""

from __future__ import annotations

import hashlib

from keyquorum.crypto import kem
from keyquorum.crypto.aead import AeadKey
from keyquorum.crypto.errors import InvalidCiphertext
from keyquorum.crypto.kdf import hkdf_sha256

__all__ = ["ALG", "check_public_pem", "generate", "load_private_pem", "open_box",
           "public_fingerprint", "seal_to"]

ALG = "x25519-ml-kem-768"
PRIVATE_PEM_LABEL = "KEYQUORUM X25519-ML-KEM-768 PRIVATE KEY"
_MAGIC = b"kqbox1"
_PUBLIC_SIZE = 1184 + 32
_PRIVATE_SIZE = 64 + 32
_ENC_SIZE = 1088 + 32
_NONCE_SIZE = 12
_TAG_SIZE = 16
_DOMAIN = b"keyquorum kem-box v1\x00"
_AEAD = "aes-256-gcm"


def check_public_pem(public_pem: object) -> bytes:
    """The raw public key of an ``X25519-ML-KEM-768 PUBLIC KEY`` PEM, or ``ValueError``
    saying what a valid one looks like (the PEM a ``KemKey`` of ``ALG`` prints)."""
    if not isinstance(public_pem, str):
        raise ValueError(f"public_key must be a {kem.HYBRID_PEM_LABEL} PEM")
    return kem._unarmor(kem.HYBRID_PEM_LABEL, public_pem, _PUBLIC_SIZE)


def public_fingerprint(public_pem: str) -> str:
    """A short public name for a recipient key: SHA-256 of the raw key, 32 hex digits.

    Shown on both sides (the ceremony's status, the CLI holding the private key)
    so people can check the box goes to the key they think it does.
    """
    return hashlib.sha256(check_public_pem(public_pem)).hexdigest()[:32]


def generate() -> tuple[str, str]:
    """A fresh recipient key pair as ``(private_pem, public_pem)`` (OS CSPRNG).

    The private armor is for a 0600 file on the requester's machine only.
    """
    material = kem.generate_private(ALG)
    return kem._armor(PRIVATE_PEM_LABEL, material), kem.KemKey(ALG, material).public_pem()


def load_private_pem(text: str) -> kem.KemKey:
    """The key of a private armor made by ``generate``; ``ValueError`` if it is not one."""
    material = kem._unarmor(PRIVATE_PEM_LABEL, text, _PRIVATE_SIZE)
    return kem.KemKey(ALG, material)


def _key_and_aad(shared: bytes, public_raw: bytes, context: bytes) -> tuple[AeadKey, bytes]:
    fingerprint = hashlib.sha256(public_raw).digest()
    aad = _DOMAIN + fingerprint + context
    return AeadKey(_AEAD, hkdf_sha256(shared, info=aad, length=32)), aad


def seal_to(public_pem: str, plaintext: bytes, *, context: bytes) -> bytes:
    """Seal ``plaintext`` to the holder of ``public_pem``'s private key, bound to ``context``."""
    public_raw = check_public_pem(public_pem)
    shared, encapsulation = kem.encapsulate(ALG, public_pem)
    key, aad = _key_and_aad(shared, public_raw, context)
    nonce, ciphertext = key.encrypt(plaintext, aad)
    return _MAGIC + encapsulation + nonce + ciphertext


def open_box(key: kem.KemKey, box: bytes, *, context: bytes) -> bytes:
    """The sealed plaintext, or ``InvalidCiphertext`` (wrong key, context, or a damaged box)."""
    if key.alg != ALG or not isinstance(box, bytes | bytearray):
        raise InvalidCiphertext()
    box = bytes(box)
    head = len(_MAGIC)
    if len(box) < head + _ENC_SIZE + _NONCE_SIZE + _TAG_SIZE or box[:head] != _MAGIC:
        raise InvalidCiphertext()
    encapsulation = box[head:head + _ENC_SIZE]
    nonce = box[head + _ENC_SIZE:head + _ENC_SIZE + _NONCE_SIZE]
    shared = key.decapsulate(encapsulation)
    aead, aad = _key_and_aad(shared, key.public_raw(), context)
    return aead.decrypt(nonce, box[head + _ENC_SIZE + _NONCE_SIZE:], aad)
