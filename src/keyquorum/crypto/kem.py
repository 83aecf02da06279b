"""Key encapsulation: ML-KEM, X25519 (DHKEM), and the X-Wing hybrid.

- ``ml-kem-768``, ``ml-kem-1024``: FIPS 203 via pyca. Private material is the
  64-byte seed (d || z).
- ``x25519``: DHKEM(X25519, HKDF-SHA256) exactly as RFC 9180 §4.1: the
  encapsulation is the 32-byte ephemeral public key; the shared secret is
  ExtractAndExpand(dh, enc || pkR) with the RFC's labeled HKDF and
  suite_id ``"KEM" || 0x0020``. Private material is the raw 32-byte key.
- ``x25519-ml-kem-768``: X-Wing (draft-connolly-cfrg-xwing-kem), combining
  ML-KEM-768 and X25519 with the draft's SHA3-256 combiner and label.
  Private material is ML-KEM seed (64) || X25519 private key (32) = 96 bytes:
  the *expanded* form of an X-Wing seed (SHAKE256(seed, 96)), not the draft's
  32-byte seed, because pyca has no X-Wing and we keep what pyca loads. The
  public key is pk_M (1184) || pk_X (32), PEM-armored with the label
  ``X25519-ML-KEM-768 PUBLIC KEY`` (there is no registered SPKI for it here).

Every failure to decapsulate (wrong length, not a point, all-zero X25519
output) is the same ``InvalidCiphertext``. ML-KEM itself never fails on a
well-sized ciphertext: it answers with an implicit-rejection secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm as _PycaUnsupported
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from keyquorum.crypto.errors import InvalidCiphertext, UnsupportedAlgorithm
from keyquorum.crypto.kdf import hkdf_expand, hkdf_extract
from keyquorum.crypto.random import random_bytes

__all__ = ["KEM_ALGORITHMS", "KemKey", "encapsulate", "generate_private", "public_key_bytes"]

KEM_ALGORITHMS: tuple[str, ...] = ("ml-kem-768", "ml-kem-1024", "x25519-ml-kem-768", "x25519")

HYBRID_PEM_LABEL = "X25519-ML-KEM-768 PUBLIC KEY"

# X-Wing combiner label, the ASCII art "\./" "/^\" (draft §5.3): 5c2e2f2f5e5c.
XWING_LABEL = b"\\.//^\\"

# RFC 9180 §4.1 / §7.1: KEM id 0x0020 is DHKEM(X25519, HKDF-SHA256).
_DHKEM_SUITE_ID = b"KEM\x00\x20"
_HPKE_VERSION = b"HPKE-v1"

_MLKEM_SEED = 64
_X25519_SIZE = 32
_MLKEM768_PK = 1184
_MLKEM768_CT = 1088


@dataclass(frozen=True)
class _MlKem:
    private: Any
    public: Any
    ciphertext_size: int


_MLKEM = {
    "ml-kem-768": _MlKem(mlkem.MLKEM768PrivateKey, mlkem.MLKEM768PublicKey, 1088),
    "ml-kem-1024": _MlKem(mlkem.MLKEM1024PrivateKey, mlkem.MLKEM1024PublicKey, 1568),
}


_PRIVATE_SIZES = {
    "ml-kem-768": _MLKEM_SEED,
    "ml-kem-1024": _MLKEM_SEED,
    "x25519-ml-kem-768": _MLKEM_SEED + _X25519_SIZE,
    "x25519": _X25519_SIZE,
}


def _check(alg: str) -> None:
    if alg not in KEM_ALGORITHMS:
        raise UnsupportedAlgorithm("kem", alg, KEM_ALGORITHMS)


def generate_private(alg: str) -> bytes:
    """Fresh private material for ``alg`` in its storage shape (module docstring)."""
    _check(alg)
    # Every shape is uniformly random bytes: ML-KEM seeds (d || z) and X25519
    # private keys are defined that way (FIPS 203 §7.1, RFC 7748 §5).
    return random_bytes(_PRIVATE_SIZES[alg])


class KemKey:
    """A loaded decapsulation key. The repr names the algorithm only."""

    __slots__ = ("_mlkem", "_public_raw", "_x25519", "alg")

    def __init__(self, alg: str, private: bytes) -> None:
        _check(alg)
        self.alg = alg
        private = bytes(private)
        self._mlkem: Any = None
        self._x25519: x25519.X25519PrivateKey | None = None
        if len(private) != _PRIVATE_SIZES[alg]:
            raise ValueError(f"{alg} private material must be {_PRIVATE_SIZES[alg]} bytes")
        if alg == "x25519":
            self._x25519 = x25519.X25519PrivateKey.from_private_bytes(private)
        elif alg == "x25519-ml-kem-768":
            self._mlkem = mlkem.MLKEM768PrivateKey.from_seed_bytes(private[:_MLKEM_SEED])
            self._x25519 = x25519.X25519PrivateKey.from_private_bytes(private[_MLKEM_SEED:])
        else:
            self._mlkem = _MLKEM[alg].private.from_seed_bytes(private)
        parts = []
        if self._mlkem is not None:
            parts.append(self._mlkem.public_key().public_bytes_raw())
        if self._x25519 is not None:
            parts.append(self._x25519.public_key().public_bytes_raw())
        self._public_raw = b"".join(parts)

    def __repr__(self) -> str:
        return f"KemKey(alg={self.alg!r})"

    def public_raw(self) -> bytes:
        """The raw encapsulation key (for the hybrid: pk_M || pk_X)."""
        return self._public_raw

    def public_pem(self) -> str:
        """SubjectPublicKeyInfo PEM; for the hybrid, raw bytes in a labelled PEM armor."""
        if self.alg == "x25519-ml-kem-768":
            return _armor(HYBRID_PEM_LABEL, self._public_raw)
        key = self._x25519 if self.alg == "x25519" else self._mlkem
        assert key is not None
        return key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")

    def decapsulate(self, encapsulation: bytes) -> bytes:
        """The 32-byte shared secret, or ``InvalidCiphertext``."""
        enc = bytes(encapsulation)
        try:
            if self.alg == "x25519":
                assert self._x25519 is not None
                if len(enc) != _X25519_SIZE:
                    raise InvalidCiphertext()
                dh = self._x25519.exchange(x25519.X25519PublicKey.from_public_bytes(enc))
                return _dhkem_shared_secret(dh, enc, self._public_raw)
            if self.alg == "x25519-ml-kem-768":
                assert self._x25519 is not None
                if len(enc) != _MLKEM768_CT + _X25519_SIZE:
                    raise InvalidCiphertext()
                ct_m, ct_x = enc[:_MLKEM768_CT], enc[_MLKEM768_CT:]
                ss_m = self._mlkem.decapsulate(ct_m)
                ss_x = self._x25519.exchange(x25519.X25519PublicKey.from_public_bytes(ct_x))
                return _xwing_combiner(ss_m, ss_x, ct_x, self._public_raw[_MLKEM768_PK:])
            if len(enc) != _MLKEM[self.alg].ciphertext_size:
                raise InvalidCiphertext()
            return self._mlkem.decapsulate(enc)
        except (ValueError, TypeError):
            # pyca raises ValueError for an all-zero X25519 result (a small-order
            # point) and for malformed input; both are just a bad encapsulation.
            raise InvalidCiphertext() from None


def encapsulate(alg: str, public_pem: str) -> tuple[bytes, bytes]:
    """Encapsulate to a public key PEM; returns ``(shared_secret, encapsulation)``."""
    _check(alg)
    if alg == "x25519-ml-kem-768":
        raw = _unarmor(HYBRID_PEM_LABEL, public_pem, _MLKEM768_PK + _X25519_SIZE)
        try:
            pk_m = mlkem.MLKEM768PublicKey.from_public_bytes(raw[:_MLKEM768_PK])
        except ValueError:
            raise ValueError("public_pem is not a valid x25519-ml-kem-768 public key") from None
        pk_x = raw[_MLKEM768_PK:]
        ss_m, ct_m = pk_m.encapsulate()
        ephemeral = x25519.X25519PrivateKey.generate()
        ct_x = ephemeral.public_key().public_bytes_raw()
        ss_x = _exchange(ephemeral, pk_x, alg)
        return _xwing_combiner(ss_m, ss_x, ct_x, pk_x), ct_m + ct_x
    public = _load_public(alg, public_pem)
    if alg == "x25519":
        pk_r = public.public_bytes_raw()
        ephemeral = x25519.X25519PrivateKey.generate()
        enc = ephemeral.public_key().public_bytes_raw()
        dh = _exchange(ephemeral, pk_r, alg)
        return _dhkem_shared_secret(dh, enc, pk_r), enc
    shared, ciphertext = public.encapsulate()
    return shared, ciphertext


def public_key_bytes(alg: str, public_pem: str) -> bytes:
    """The raw encapsulation key a public key PEM holds, checked as ``encapsulate`` checks
    it (``ValueError`` saying what is wrong): what a fingerprint of the key is taken over."""
    _check(alg)
    if alg == "x25519-ml-kem-768":
        raw = _unarmor(HYBRID_PEM_LABEL, public_pem, _MLKEM768_PK + _X25519_SIZE)
        try:
            mlkem.MLKEM768PublicKey.from_public_bytes(raw[:_MLKEM768_PK])
        except ValueError:
            raise ValueError("public_pem is not a valid x25519-ml-kem-768 public key") from None
        return raw
    raw_key: bytes = _load_public(alg, public_pem).public_bytes_raw()
    return raw_key


def _xwing_combiner(ss_m: bytes, ss_x: bytes, ct_x: bytes, pk_x: bytes) -> bytes:
    """X-Wing Combiner: SHA3-256(ss_M || ss_X || ct_X || pk_X || XWingLabel)."""
    return hashlib.sha3_256(ss_m + ss_x + ct_x + pk_x + XWING_LABEL).digest()


def _dhkem_shared_secret(dh: bytes, enc: bytes, pk_r: bytes) -> bytes:
    """RFC 9180 ExtractAndExpand(dh, kem_context = enc || pkRm), Nsecret = 32."""
    labeled_ikm = _HPKE_VERSION + _DHKEM_SUITE_ID + b"eae_prk" + dh
    eae_prk = hkdf_extract(b"", labeled_ikm)
    length = 32
    labeled_info = (length.to_bytes(2, "big") + _HPKE_VERSION + _DHKEM_SUITE_ID
                    + b"shared_secret" + enc + pk_r)
    return hkdf_expand(eae_prk, labeled_info, length)


def _exchange(ephemeral: x25519.X25519PrivateKey, peer: bytes, alg: str) -> bytes:
    try:
        return ephemeral.exchange(x25519.X25519PublicKey.from_public_bytes(peer))
    except ValueError:
        # All-zero output: the recipient key is a small-order point (RFC 9180 §7.1.4).
        raise ValueError(f"public_pem is not a valid {alg} public key") from None


def _load_public(alg: str, public_pem: str) -> Any:
    wanted = x25519.X25519PublicKey if alg == "x25519" else _MLKEM[alg].public
    try:
        public = serialization.load_pem_public_key(public_pem.encode("ascii"))
    except (ValueError, UnicodeError, TypeError, AttributeError, _PycaUnsupported):
        public = None
    if not isinstance(public, wanted):
        raise ValueError(f"public_pem is not a valid {alg} public key")
    return public


def _armor(label: str, raw: bytes) -> str:
    """RFC 7468 textual encoding: base64 in 64-column lines between BEGIN/END."""
    body = base64.b64encode(raw).decode("ascii")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


def _unarmor(label: str, text: str, size: int) -> bytes:
    """Parse ``_armor`` output strictly: the label and the decoded size must match."""
    error = ValueError(f"public_pem must be a {label} PEM of {size} bytes")
    if not isinstance(text, str):
        raise error
    lines = text.strip().splitlines()
    begin, end = f"-----BEGIN {label}-----", f"-----END {label}-----"
    if len(lines) < 3 or lines[0] != begin or lines[-1] != end:
        raise error
    try:
        raw = base64.b64decode("".join(line.strip() for line in lines[1:-1]), validate=True)
    except (binascii.Error, ValueError):
        raise error from None
    if len(raw) != size:
        raise error
    return raw
