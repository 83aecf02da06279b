"""The Shamir seal: the always-present recovery path to the root key.

A random scalar is split with Feldman verifiable secret sharing; the public
commitments are stored, so each share is checked alone at submission. The
unseal key is HKDF(secret) and wraps the root key with AES-256-GCM. A rekey
splits a fresh secret and wraps a fresh root key under it
(``service.root_rotation``), starting the next ``generation``: old shares no
longer match, and the root key they open opens nothing made after the rekey.

The secret, the unseal key, the submitted shares and the root key they open are
held in bytearrays and wiped as soon as they have served (review F10): a share
once the round it belongs to ends, the secret and the unseal key once the root
key is unwrapped. The root key returned is the caller's to wipe.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import threading
from base64 import b64decode, b64encode
from dataclasses import dataclass, field

from keyquorum.crypto import aead, vss
from keyquorum.crypto.errors import InvalidCiphertext
from keyquorum.crypto.kdf import hkdf_sha256_into
from keyquorum.crypto.wipe import wipe
from keyquorum.errors import Forbidden, InvalidRequest
from keyquorum.seal.fingerprint import root_key_id, seal_fingerprint
from keyquorum.seal.shares import decode_share, encode_share

MAX_SHARES = 32
_UNSEAL_KEY_INFO = b"keyquorum/shamir/unseal-key/v1"
_ROOT_AAD = b"keyquorum/seal/shamir/root-key"
# Custodian names appear in paths (/v1/sys/custodians/{name}/proof) and reports.
_ROOT_ID = re.compile(r"[0-9a-f]{32}")
_CUSTODIAN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")


def default_custodian_names(shares: int) -> tuple[str, ...]:
    """``share-1`` … ``share-n``: the custodians of shares given no names."""
    return tuple(f"share-{i}" for i in range(1, shares + 1))


@dataclass(frozen=True)
class ShamirSealConfig:
    """What is stored for the Shamir seal: public commitments and the wrapped root key."""

    shares: int
    threshold: int
    commitments: tuple[bytes, ...]
    custodians: tuple[str, ...]
    wrapped_root: bytes = field(repr=False)
    generation: int = 1  # bumped by every rekey; stores made before rekeys existed are 1
    # The public id of the root key this seal wraps (``seal.fingerprint``); "" in stores
    # made before it was recorded (their backups get it from the running server).
    root_id: str = ""

    @property
    def fingerprint(self) -> str | None:
        """The seal fingerprint operators pin backups to (None without a root key id)."""
        if not self.root_id:
            return None
        return seal_fingerprint(self.root_id, self.shares, self.threshold, self.commitments)

    @property
    def names(self) -> tuple[str, ...]:
        """Each share's custodian, in index order (``share-<i>`` where none was named)."""
        return self.custodians or default_custodian_names(self.shares)

    def to_json(self) -> bytes:
        return json.dumps({
            "kind": "shamir", "generation": self.generation,
            "shares": self.shares, "threshold": self.threshold,
            "commitments": [c.hex() for c in self.commitments],
            "custodians": list(self.custodians),
            "wrapped_root": b64encode(self.wrapped_root).decode(),
            **({"root_id": self.root_id} if self.root_id else {}),
        }).encode()

    @classmethod
    def from_json(cls, data: bytes) -> ShamirSealConfig:
        raw = json.loads(data)
        config = cls(
            shares=raw["shares"], threshold=raw["threshold"],
            commitments=tuple(bytes.fromhex(c) for c in raw["commitments"]),
            custodians=tuple(raw.get("custodians", [])),
            wrapped_root=b64decode(raw["wrapped_root"]),
            generation=int(raw.get("generation", 1)),
            root_id=str(raw.get("root_id", "")),
        )
        # A header read from a backup is not authenticated yet: a split that does not
        # fit its own commitments (Feldman: one per coefficient) is refused as malformed.
        try:
            validate_split(config.shares, config.threshold)
        except InvalidRequest:
            raise ValueError("a stored Shamir seal entry is malformed") from None
        if len(config.commitments) != config.threshold or (
                config.root_id and not _ROOT_ID.fullmatch(config.root_id)):
            raise ValueError("a stored Shamir seal entry is malformed")
        return config


def validate_split(shares: object, threshold: object) -> tuple[int, int]:
    if not isinstance(shares, int) or not isinstance(threshold, int) or isinstance(
            shares, bool) or isinstance(threshold, bool):
        raise InvalidRequest("shares and threshold must be integers")
    if not 1 <= threshold <= shares <= MAX_SHARES:
        raise InvalidRequest(f"need 1 <= threshold <= shares <= {MAX_SHARES}")
    return shares, threshold


def check_margin(shares: int, threshold: int, force: object) -> None:
    """Refuse k = n unless forced: with every share needed, losing any one locks the data."""
    if force is not None and not isinstance(force, bool):
        raise InvalidRequest("force must be true or false")
    if threshold == shares and not force:
        raise InvalidRequest(
            f"threshold {threshold} of {shares} shares needs every share: losing any one "
            "share locks the data forever; choose a threshold below the number of shares, "
            "or give force to accept that risk")


def validate_custodians(names: object, shares: int) -> list[str]:
    """One distinct, path-safe custodian name per share ([] when none are given)."""
    if names is None:
        return []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InvalidRequest("custodians must be a list of names")
    if names and len(names) != shares:
        raise InvalidRequest("custodians must name exactly one custodian per share")
    for name in names:
        if not _CUSTODIAN_NAME.fullmatch(name):
            raise InvalidRequest("a custodian name is 1-64 characters of letters, digits and "
                                 "._@+- starting with a letter or digit")
    if len(set(names)) != len(names):
        raise InvalidRequest("custodian names must be distinct")
    return list(names)


def _unseal_key(secret: bytes | bytearray) -> bytearray:
    """The key wrapping the root key, derived from the Shamir secret (the caller wipes it)."""
    return hkdf_sha256_into(secret, info=_UNSEAL_KEY_INFO)


def wipe_shares(shares: list[vss.Share]) -> None:
    """Overwrite the values of shares that have served (those held in bytearrays)."""
    for share in shares:
        if isinstance(share.value, bytearray):
            wipe(share.value)


def create_shamir_seal(
    root_key: bytes | bytearray, shares: int, threshold: int,
    custodians: list[str] | None = None, generation: int = 1,
) -> tuple[ShamirSealConfig, list[str]]:
    """Split a fresh secret, wrap ``root_key`` under it; return the config and share texts."""
    shares, threshold = validate_split(shares, threshold)
    names = validate_custodians(custodians, shares)
    secret, split, commitments = vss.split(shares, threshold)
    unseal_key = _unseal_key(secret)
    try:
        nonce, body = aead.AeadKey("aes-256-gcm", unseal_key).encrypt(root_key, _ROOT_AAD)
        aead.scrub_stack("aes-256-gcm")  # the copy of the unseal key left on this stack
        texts = [encode_share(share) for share in split]
    finally:
        wipe(unseal_key)
        wipe(secret if isinstance(secret, bytearray) else None)
        wipe_shares(split)
    config = ShamirSealConfig(shares, threshold, tuple(commitments), tuple(names), nonce + body,
                              generation, root_key_id(root_key))
    return config, texts


def verified_share(config: ShamirSealConfig, text: object) -> vss.Share:
    """A share of this seal, checked alone against its commitments (or ``InvalidRequest``).

    Its value is a bytearray: ``UnsealProgress`` wipes the shares it was given, other
    callers wipe theirs with ``wipe_shares``."""
    share = decode_share(text)
    if share.index > config.shares:
        wipe_shares([share])
        raise InvalidRequest(f"share index {share.index} is beyond the {config.shares} issued")
    if not vss.verify_share(share, list(config.commitments)):
        wipe_shares([share])
        raise InvalidRequest("share does not match the seal's commitments")
    return share


def recover_root_key(config: ShamirSealConfig, shares: list[vss.Share]) -> bytes:
    """The root key as ``bytes``, for the ceremonies that hand it on as such (rekey,
    seal-add, generate-root): that copy is not wiped. Unseal uses ``open_root``."""
    buffer = open_root(config, shares)
    try:
        return bytes(buffer)
    finally:
        wipe(buffer)


def open_root(config: ShamirSealConfig, shares: list[vss.Share]) -> bytearray:
    """The root key from ``threshold`` verified shares: the secret must unwrap it.

    The secret and the unseal key are wiped before this returns; the root key is a
    bytearray for the caller to wipe (the shares stay the caller's too).
    """
    secret = vss.combine(shares[: config.threshold])
    unseal_key = _unseal_key(secret)
    wipe(secret)
    wrapped = config.wrapped_root
    try:
        return aead.open_into(unseal_key, wrapped[:12], wrapped[12:], _ROOT_AAD)
    except InvalidCiphertext as exc:  # verified shares make this unreachable short of tampering
        raise InvalidRequest("the shares do not open this seal") from exc
    finally:
        wipe(unseal_key)


class UnsealProgress:
    """Verified shares submitted so far; each is checked alone against the commitments.

    The first accepted share starts a round and draws its ``nonce`` (OS CSPRNG),
    answered to the submitters only (never in the public seal-status): discarding a
    round's progress through the API needs it (``reset_with``), so an anonymous
    caller cannot keep throwing the custodians' shares away (review F14).
    """

    def __init__(self) -> None:
        self._shares: dict[int, vss.Share] = {}
        self._nonce: str | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"UnsealProgress(count={len(self._shares)})"

    @property
    def count(self) -> int:
        return len(self._shares)

    @property
    def nonce(self) -> str | None:
        """The current round's nonce (None while no share is in)."""
        with self._lock:
            return self._nonce

    def reset(self) -> None:
        """Discard the progress (sealing, opening by another seal, shutting down)."""
        with self._lock:
            self._discard()

    def _discard(self) -> None:
        wipe_shares(list(self._shares.values()))
        self._shares.clear()
        self._nonce = None

    def reset_with(self, nonce: object) -> None:
        """Discard the progress if ``nonce`` is the round's (constant time); nothing to
        discard is fine without one. Otherwise ``Forbidden``: the progress is kept."""
        with self._lock:
            if not self._shares:
                self._nonce = None
                return
            given = nonce.encode() if isinstance(nonce, str) else b""
            if self._nonce is None or not hmac.compare_digest(given, self._nonce.encode()):
                raise Forbidden("resetting unseal progress needs the nonce its submitters "
                                "were given")
            self._discard()

    def submit(self, config: ShamirSealConfig, text: object) -> bytes | None:
        """Add one share; return the root key once ``threshold`` verified shares are in.

        The key is a ``bytes`` copy (not wiped), for callers that pass it on as such
        (restore, drill, the ``--workers`` supervisor); the server's unseal uses ``add``.
        """
        buffer = self.add(config, verified_share(config, text))
        if buffer is None:
            return None
        root_key = bytes(buffer)
        wipe(buffer)
        return root_key

    def add(self, config: ShamirSealConfig, share: vss.Share) -> bytearray | None:
        """Add one verified share (this progress wipes it when the round ends); return
        the root key (a bytearray for the caller to wipe) at ``threshold`` shares."""
        with self._lock:
            if share.index in self._shares:
                wipe_shares([share])
                raise InvalidRequest(f"share {share.index} was already submitted")
            if not self._shares:
                self._nonce = secrets.token_hex(16)
            self._shares[share.index] = share
            if len(self._shares) < config.threshold:
                return None
            chosen = list(self._shares.values())
            self._shares.clear()
            self._nonce = None
        try:
            return open_root(config, chosen)
        finally:
            wipe_shares(chosen)
