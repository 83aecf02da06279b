"""Digital signatures: Ed25519, ECDSA, RSA (PSS or PKCS#1 v1.5) and ML-DSA.

Private material is stored in one fixed shape per family (see docs/FORMAT.md):
the raw 32-byte seed for Ed25519 and ML-DSA, PKCS#8 DER for EC and RSA.

Ed25519 and ML-DSA sign messages, never digests: both hash internally, and
signing a caller-supplied digest would be a different scheme (Ed25519ph,
HashML-DSA) that verifiers do not expect, so a digest is refused with a message
that says so; the one exception is ML-DSA's external mu (``EXTERNAL_MU``), which
signs the message's own 64-byte mu and makes an ordinary ML-DSA signature.
ECDSA and RSA-PSS accept either a message (hashed here) or a digest the caller
computed (``Prehashed``); the digest length must match the
named hash so a truncated or mismatched digest can never be signed.
``verify`` answers False for a bad signature and raises only for caller mistakes.

RSA pads with PSS unless the caller names ``scheme="pkcs1v15"`` (RSASSA-PKCS1-v1_5,
RFC 8017 §8.2): still sound for signatures and what many verifiers (JWT RS256, X.509
tooling, AWS KMS and Vault clients) expect. PSS stays the default because its security
proof is tight. A scheme on a key that is not RSA is refused rather than ignored, so a
caller never believes a padding was applied that was not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.exceptions import UnsupportedAlgorithm as _PycaUnsupported
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from keyquorum.crypto.errors import InvalidSignatureInput, UnsupportedAlgorithm

__all__ = [
    "SCHEMES",
    "SIGNING_ALGORITHMS",
    "SigningKey",
    "generate_private",
    "verify_with_public_pem",
]

EXTERNAL_MU = "external-mu"
"""``hash_name`` for ML-DSA's externally computed mu (FIPS 204: mu = SHAKE256(tr || M'),
64 bytes), which AWS KMS calls MessageType EXTERNAL_MU. Unlike HashML-DSA it is not
another scheme: the signature is an ordinary ML-DSA signature of the message, which any
ML-DSA verifier checks against the message; only where mu is computed differs."""
MU_BYTES = 64

PSS = "pss"
PKCS1V15 = "pkcs1v15"
SCHEMES = (PSS, PKCS1V15)
"""RSA signature paddings; ``None`` means PSS."""

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


@dataclass(frozen=True)
class _Spec:
    family: str  # "ed25519" | "ecdsa" | "rsa" | "ml-dsa"
    default_hash: str | None = None
    curve: type[ec.EllipticCurve] | None = None
    bits: int = 0
    mldsa_private: Any = None
    mldsa_public: Any = None


_SPECS: dict[str, _Spec] = {
    "ed25519": _Spec("ed25519"),
    "ecdsa-p256": _Spec("ecdsa", "sha256", curve=ec.SECP256R1),
    "ecdsa-p384": _Spec("ecdsa", "sha384", curve=ec.SECP384R1),
    "ecdsa-p521": _Spec("ecdsa", "sha512", curve=ec.SECP521R1),
    "ecdsa-secp256k1": _Spec("ecdsa", "sha256", curve=ec.SECP256K1),
    # 2048 bits is ~112-bit security: allowed by NIST SP 800-57 through 2030, offered for
    # AWS KMS and Vault compatibility; 3072+ is what docs/API.md recommends.
    "rsa-2048": _Spec("rsa", "sha256", bits=2048),
    "rsa-3072": _Spec("rsa", "sha256", bits=3072),
    "rsa-4096": _Spec("rsa", "sha256", bits=4096),
    "ml-dsa-44": _Spec("ml-dsa", mldsa_private=mldsa.MLDSA44PrivateKey,
                       mldsa_public=mldsa.MLDSA44PublicKey),
    "ml-dsa-65": _Spec("ml-dsa", mldsa_private=mldsa.MLDSA65PrivateKey,
                       mldsa_public=mldsa.MLDSA65PublicKey),
    "ml-dsa-87": _Spec("ml-dsa", mldsa_private=mldsa.MLDSA87PrivateKey,
                       mldsa_public=mldsa.MLDSA87PublicKey),
}
SIGNING_ALGORITHMS: tuple[str, ...] = tuple(_SPECS)

# 65537 is the only public exponent anyone should use (NIST SP 800-56B).
_RSA_EXPONENT = 65537


def _spec(alg: str) -> _Spec:
    try:
        return _SPECS[alg]
    except (KeyError, TypeError):
        raise UnsupportedAlgorithm("signing", alg, SIGNING_ALGORITHMS) from None


def generate_private(alg: str) -> bytes:
    """Fresh private material for ``alg`` in its storage shape."""
    spec = _spec(alg)
    if spec.family == "ed25519":
        return ed25519.Ed25519PrivateKey.generate().private_bytes_raw()
    if spec.family == "ml-dsa":
        return spec.mldsa_private.generate().private_bytes_raw()
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if spec.family == "ecdsa":
        assert spec.curve is not None
        key = ec.generate_private_key(spec.curve())
    else:
        key = rsa.generate_private_key(public_exponent=_RSA_EXPONENT, key_size=spec.bits)
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class SigningKey:
    """A loaded private key. The repr names the algorithm only."""

    __slots__ = ("_private", "_public", "_spec", "alg")

    def __init__(self, alg: str, private: bytes) -> None:
        self._spec = _spec(alg)
        self.alg = alg
        self._private = _load_private(alg, self._spec, bytes(private))
        self._public = self._private.public_key()

    def __repr__(self) -> str:
        return f"SigningKey(alg={self.alg!r})"

    def public_pem(self) -> str:
        """The public key as SubjectPublicKeyInfo PEM."""
        return self._public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")

    def sign(
        self,
        *,
        message: bytes | None = None,
        digest: bytes | None = None,
        hash_name: str | None = None,
        scheme: str | None = None,
    ) -> bytes:
        """Sign exactly one of ``message`` or ``digest`` (see the module docstring)."""
        data, algorithm, prehashed = _prepare(self.alg, self._spec, message, digest, hash_name,
                                              scheme)
        family = self._spec.family
        if algorithm == EXTERNAL_MU:
            return self._private.sign_mu(data)  # type: ignore[no-any-return]
        if family == "ecdsa":
            return self._private.sign(data, ec.ECDSA(_hash_arg(algorithm, prehashed)))
        if family == "rsa":
            return self._private.sign(data, _rsa_padding(algorithm, scheme),
                                      _hash_arg(algorithm, prehashed))
        return self._private.sign(data)

    def verify(
        self,
        signature: bytes,
        *,
        message: bytes | None = None,
        digest: bytes | None = None,
        hash_name: str | None = None,
        scheme: str | None = None,
    ) -> bool:
        """True if ``signature`` is valid; False for any bad signature."""
        return _verify(self.alg, self._spec, self._public, signature, message, digest, hash_name,
                       scheme)


def verify_with_public_pem(
    alg: str,
    public_pem: str,
    signature: bytes,
    *,
    message: bytes | None = None,
    digest: bytes | None = None,
    hash_name: str | None = None,
    scheme: str | None = None,
) -> bool:
    """Verify against a SubjectPublicKeyInfo PEM, as a client would."""
    spec = _spec(alg)
    try:
        public = serialization.load_pem_public_key(public_pem.encode("ascii"))
    except (ValueError, UnicodeError, TypeError, AttributeError, _PycaUnsupported):
        raise ValueError(f"public_pem is not a valid {alg} public key") from None
    _check_public(alg, spec, public)
    return _verify(alg, spec, public, signature, message, digest, hash_name, scheme)


def _verify(
    alg: str,
    spec: _Spec,
    public: Any,
    signature: bytes,
    message: bytes | None,
    digest: bytes | None,
    hash_name: str | None,
    scheme: str | None,
) -> bool:
    data, algorithm, prehashed = _prepare(alg, spec, message, digest, hash_name, scheme)
    try:
        if algorithm == EXTERNAL_MU:
            public.verify_mu(signature, data)
        elif spec.family == "ecdsa":
            public.verify(signature, data, ec.ECDSA(_hash_arg(algorithm, prehashed)))
        elif spec.family == "rsa":
            public.verify(signature, data, _rsa_padding(algorithm, scheme),
                          _hash_arg(algorithm, prehashed))
        else:
            public.verify(signature, data)
    except (InvalidSignature, ValueError, TypeError):
        # A malformed signature (bad DER, wrong length) is just a bad signature.
        return False
    return True


def _prepare(
    alg: str,
    spec: _Spec,
    message: bytes | None,
    digest: bytes | None,
    hash_name: str | None,
    scheme: str | None = None,
) -> tuple[bytes, Any, bool]:
    """Check the caller's arguments; return (data, hash algorithm, is-a-digest)."""
    if (message is None) == (digest is None):
        raise InvalidSignatureInput("pass exactly one of message or digest")
    if scheme is not None:
        if spec.family != "rsa":
            raise InvalidSignatureInput(
                f"scheme applies to RSA keys only; {alg} has one signature scheme")
        if scheme not in SCHEMES:
            raise InvalidSignatureInput(f"scheme must be one of {', '.join(SCHEMES)}")
    if spec.family == "ml-dsa" and hash_name == EXTERNAL_MU:
        if digest is None or len(digest) != MU_BYTES:
            raise InvalidSignatureInput(f"an external mu is a {MU_BYTES}-byte digest")
        return bytes(digest), EXTERNAL_MU, True
    if spec.family in ("ed25519", "ml-dsa"):
        if digest is not None:
            raise InvalidSignatureInput(f"{alg} signs messages, not digests")
        if hash_name is not None:
            raise InvalidSignatureInput(f"{alg} hashes internally; hash_name is not accepted")
        assert message is not None
        return bytes(message), None, False
    name = hash_name if hash_name is not None else spec.default_hash
    if name not in _HASHES:
        raise InvalidSignatureInput("hash_name must be one of sha256, sha384, sha512")
    algorithm = _HASHES[name]()
    if digest is None:
        assert message is not None
        return bytes(message), algorithm, False
    if len(digest) != algorithm.digest_size:
        raise InvalidSignatureInput(
            f"a {name} digest is {algorithm.digest_size} bytes, got {len(digest)}"
        )
    return bytes(digest), algorithm, True


def _hash_arg(algorithm: Any, prehashed: bool) -> Any:
    return Prehashed(algorithm) if prehashed else algorithm


def _rsa_padding(algorithm: Any, scheme: str | None) -> padding.AsymmetricPadding:
    """PSS with MGF1 over the same hash and salt as long as the digest (RFC 8017 §9.1),
    or PKCS#1 v1.5 when the caller names it."""
    if scheme == PKCS1V15:
        return padding.PKCS1v15()
    return padding.PSS(mgf=padding.MGF1(algorithm), salt_length=algorithm.digest_size)


def _load_private(alg: str, spec: _Spec, private: bytes) -> Any:
    """Load private material, checking it really is a key of ``alg``."""
    wrong = ValueError(f"private material is not a valid {alg} private key")
    try:
        if spec.family == "ed25519":
            if len(private) != 32:
                raise wrong
            return ed25519.Ed25519PrivateKey.from_private_bytes(private)
        if spec.family == "ml-dsa":
            if len(private) != 32:
                raise wrong
            return spec.mldsa_private.from_seed_bytes(private)
        key = serialization.load_der_private_key(private, password=None)
    except (ValueError, TypeError, _PycaUnsupported):
        raise wrong from None
    _check_public(alg, spec, key.public_key(), wrong)
    return key


def _check_public(alg: str, spec: _Spec, public: Any, error: Exception | None = None) -> None:
    """Refuse a key whose type, curve or size is not the one ``alg`` names."""
    if spec.family == "ed25519":
        ok = isinstance(public, ed25519.Ed25519PublicKey)
    elif spec.family == "ml-dsa":
        ok = isinstance(public, spec.mldsa_public)
    elif spec.family == "ecdsa":
        ok = (
            spec.curve is not None
            and isinstance(public, ec.EllipticCurvePublicKey)
            and isinstance(public.curve, spec.curve)
        )
    else:
        ok = isinstance(public, rsa.RSAPublicKey) and public.key_size == spec.bits
    if not ok:
        raise error or ValueError(f"the key is not a {alg} key")
