"""The Shamir seal: the always-present recovery path to the root key.

A random scalar is split with Feldman verifiable secret sharing; the public
commitments are stored, so each share is checked alone at submission. The
unseal key is HKDF(secret) and wraps the root key with AES-256-GCM. The root
key never depends on the share set: rekeying (later) re-wraps the same root.
"""

from __future__ import annotations

import json
import threading
from base64 import b64decode, b64encode
from dataclasses import dataclass, field

from keyquorum.crypto import aead, vss
from keyquorum.crypto.errors import InvalidCiphertext
from keyquorum.crypto.kdf import hkdf_sha256
from keyquorum.errors import InvalidRequest
from keyquorum.seal.shares import decode_share, encode_share

MAX_SHARES = 32
_UNSEAL_KEY_INFO = b"keyquorum/shamir/unseal-key/v1"
_ROOT_AAD = b"keyquorum/seal/shamir/root-key"


@dataclass(frozen=True)
class ShamirSealConfig:
    """What is stored for the Shamir seal: public commitments and the wrapped root key."""

    shares: int
    threshold: int
    commitments: tuple[bytes, ...]
    custodians: tuple[str, ...]
    wrapped_root: bytes = field(repr=False)

    def to_json(self) -> bytes:
        return json.dumps({
            "kind": "shamir", "shares": self.shares, "threshold": self.threshold,
            "commitments": [c.hex() for c in self.commitments],
            "custodians": list(self.custodians),
            "wrapped_root": b64encode(self.wrapped_root).decode(),
        }).encode()

    @classmethod
    def from_json(cls, data: bytes) -> ShamirSealConfig:
        raw = json.loads(data)
        return cls(
            shares=raw["shares"], threshold=raw["threshold"],
            commitments=tuple(bytes.fromhex(c) for c in raw["commitments"]),
            custodians=tuple(raw.get("custodians", [])),
            wrapped_root=b64decode(raw["wrapped_root"]),
        )


def validate_split(shares: object, threshold: object) -> tuple[int, int]:
    if not isinstance(shares, int) or not isinstance(threshold, int) or isinstance(
            shares, bool) or isinstance(threshold, bool):
        raise InvalidRequest("shares and threshold must be integers")
    if not 1 <= threshold <= shares <= MAX_SHARES:
        raise InvalidRequest(f"need 1 <= threshold <= shares <= {MAX_SHARES}")
    return shares, threshold


def _unseal_cipher(secret: bytes) -> aead.AeadKey:
    return aead.AeadKey("aes-256-gcm", hkdf_sha256(secret, info=_UNSEAL_KEY_INFO))


def create_shamir_seal(
    root_key: bytes, shares: int, threshold: int, custodians: list[str] | None = None
) -> tuple[ShamirSealConfig, list[str]]:
    """Split a fresh secret, wrap ``root_key`` under it; return the config and share texts."""
    shares, threshold = validate_split(shares, threshold)
    names = list(custodians or [])
    if names and len(names) != shares:
        raise InvalidRequest("custodians must name exactly one custodian per share")
    if len(set(names)) != len(names):
        raise InvalidRequest("custodian names must be distinct")
    secret, split, commitments = vss.split(shares, threshold)
    nonce, body = _unseal_cipher(secret).encrypt(root_key, _ROOT_AAD)
    config = ShamirSealConfig(shares, threshold, tuple(commitments), tuple(names), nonce + body)
    return config, [encode_share(share) for share in split]


class UnsealProgress:
    """Verified shares submitted so far; each is checked alone against the commitments."""

    def __init__(self) -> None:
        self._shares: dict[int, vss.Share] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"UnsealProgress(count={len(self._shares)})"

    @property
    def count(self) -> int:
        return len(self._shares)

    def reset(self) -> None:
        with self._lock:
            self._shares.clear()

    def submit(self, config: ShamirSealConfig, text: object) -> bytes | None:
        """Add one share; return the root key once ``threshold`` verified shares are in."""
        share = decode_share(text)
        if share.index > config.shares:
            raise InvalidRequest(f"share index {share.index} is beyond the {config.shares} issued")
        if not vss.verify_share(share, list(config.commitments)):
            raise InvalidRequest("share does not match the seal's commitments")
        with self._lock:
            if share.index in self._shares:
                raise InvalidRequest(f"share {share.index} was already submitted")
            self._shares[share.index] = share
            if len(self._shares) < config.threshold:
                return None
            chosen = list(self._shares.values())[: config.threshold]
            self._shares.clear()
        secret = vss.combine(chosen)
        wrapped = config.wrapped_root
        try:
            return _unseal_cipher(secret).decrypt(wrapped[:12], wrapped[12:], _ROOT_AAD)
        except InvalidCiphertext as exc:  # verified shares make this unreachable short of tampering
            raise InvalidRequest("the shares do not open this seal") from exc
