"""Access keys: AWS-style credentials (an id and a secret) that are identities like tokens.

An access key holds policies, may expire, is named by a public accessor (the
identity its audit records carry) and can be revoked: everything a token is.
The difference is how it is shown: a SigV4 signature is an HMAC keyed by a key
derived from the secret, so the server must be able to recompute it, and the
secret cannot be stored as a hash like a token. It is stored encrypted by the
barrier (its storage path, with the accessor, is the associated data), so a
sealed store or a copied database file yields nothing, and it is never logged,
audited or put in a repr.

Secrets of keys in use are cached in memory (as the barrier and key material
are); expiry is checked on every call, a revocation in this process drops the
entry at once, and another worker's revocation is seen within
``revalidate_after`` seconds.
"""

from __future__ import annotations

import secrets
import string
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine

from keyquorum.auth.identity import Identity
from keyquorum.auth.tokens import (
    new_accessor,
    validate_policies,
    validate_token_name,
    validate_ttl,
)
from keyquorum.clock import Clock
from keyquorum.errors import NotFound, Sealed, Unauthenticated
from keyquorum.seal.barrier import Barrier, BarrierError
from keyquorum.storage import access_keys_repo
from keyquorum.storage.access_keys_repo import AccessKeyRow

ACCESS_KEY_PREFIX = "KQAK"
"""AWS access key ids are 20 upper-case characters (``AKIA...``); ours start ``KQAK``."""
_ID_ALPHABET = string.ascii_uppercase + "234567"
_ID_LENGTH = 20
SECRET_BYTES = 30  # 40 base64url characters, the length of an AWS secret access key


def new_access_key_id() -> str:
    body = "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH - 4))
    return ACCESS_KEY_PREFIX + body


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def is_access_key_id(value: object) -> bool:
    return (isinstance(value, str) and len(value) == _ID_LENGTH
            and value.startswith(ACCESS_KEY_PREFIX)
            and all(c in _ID_ALPHABET for c in value[4:]))


def _secret_path(accessor: str) -> str:
    return f"access-keys/{accessor}/secret"


@dataclass(frozen=True, slots=True)
class AccessKey:
    """What ``lookup`` finds: the identity and the secret that signs its requests."""

    access_key_id: str
    identity: Identity
    secret: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class AccessKeyInfo:
    """An access key as listed: everything but the secret."""

    access_key_id: str
    accessor: str
    name: str | None
    policies: tuple[str, ...]
    created_at: float
    created_by: str | None
    expires_at: float | None


@dataclass(frozen=True, slots=True)
class _Cached:
    key: AccessKey
    loaded_at: float


class AccessKeyStore:
    """Access keys in the ``access_keys`` table, with an id-keyed cache for SigV4."""

    def __init__(self, engine: Engine, clock: Clock, barrier: Callable[[], Barrier], *,
                 revalidate_after: float = 10.0, cache_size: int = 10_000) -> None:
        self._engine = engine
        self._clock = clock
        self._barrier = barrier
        self._revalidate_after = revalidate_after
        self._cache_size = cache_size
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()
        self._epoch = 0

    def create(self, *, policies: Sequence[str], ttl: float | None, name: str | None,
               created_by: str | None, connection: Connection) -> tuple[str, str, Identity]:
        """Store a new access key in the caller's transaction; return (access_key_id,
        secret, identity): the only time the secret is shown. The caller applies
        ``check_child_token`` first."""
        wanted = validate_policies(policies)
        ttl = validate_ttl(ttl)
        if name is not None:
            validate_token_name(name)
        now = self._clock.now()
        identity = Identity(accessor=new_accessor(), name=name, policies=wanted,
                            expires_at=None if ttl is None else now + ttl, created_at=now)
        secret = new_secret()
        sealed = self._barrier().encrypt(_secret_path(identity.accessor), secret.encode())
        access_key_id = new_access_key_id()
        access_keys_repo.insert_access_key(connection, AccessKeyRow(
            accessor=identity.accessor, access_key_id=access_key_id, sealed_secret=sealed,
            name=name, policies=wanted, created_at=now, created_by=created_by,
            expires_at=identity.expires_at, revoked_at=None))
        return access_key_id, secret, identity

    def lookup(self, access_key_id: str) -> AccessKey:
        """The identity and secret of ``access_key_id``; ``Unauthenticated`` if it is
        malformed, unknown, expired or revoked (one answer for all)."""
        try:
            self._barrier()  # sealed: no credential works, and none stays in memory
        except Sealed:
            self.clear()
            raise
        if not is_access_key_id(access_key_id):
            raise Unauthenticated()
        entry = self._cache.get(access_key_id)
        if entry is None or time.monotonic() - entry.loaded_at > self._revalidate_after:
            entry = self._load(access_key_id)
        expires_at = entry.key.identity.expires_at
        if expires_at is not None and expires_at <= self._clock.now():
            raise Unauthenticated()
        return entry.key

    def cached(self, access_key_id: str) -> AccessKey | None:
        """The key from memory when it is fresh and unexpired (no thread hop, no storage
        read: the hot path); None means ask ``lookup``."""
        entry = self._cache.get(access_key_id)
        if entry is None or time.monotonic() - entry.loaded_at > self._revalidate_after:
            return None
        expires_at = entry.key.identity.expires_at
        if expires_at is not None and expires_at <= self._clock.now():
            return None
        return entry.key

    def _load(self, access_key_id: str) -> _Cached:
        with self._lock:
            epoch = self._epoch
        with self._engine.connect() as connection:
            row = access_keys_repo.find_by_id(connection, access_key_id)
        if row is None or row.revoked_at is not None:
            with self._lock:
                self._cache.pop(access_key_id, None)
            raise Unauthenticated()
        try:
            secret = self._barrier().decrypt(_secret_path(row.accessor), row.sealed_secret)
        except BarrierError:  # a row moved or tampered with: not a credential
            raise Unauthenticated() from None
        entry = _Cached(AccessKey(row.access_key_id, _identity(row), secret.decode()),
                        time.monotonic())
        with self._lock:
            if self._epoch == epoch:
                if len(self._cache) >= self._cache_size and access_key_id not in self._cache:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[access_key_id] = entry
        return entry

    def list(self) -> list[AccessKeyInfo]:
        """Every access key not revoked (expired ones too: they still have an accessor)."""
        with self._engine.connect() as connection:
            rows = access_keys_repo.list_access_keys(connection)
        return [AccessKeyInfo(access_key_id=r.access_key_id, accessor=r.accessor, name=r.name,
                              policies=r.policies, created_at=r.created_at,
                              created_by=r.created_by, expires_at=r.expires_at)
                for r in rows]

    def get(self, accessor: str) -> Identity:
        """The identity named by ``accessor``; ``NotFound`` if unknown or revoked."""
        with self._engine.connect() as connection:
            row = access_keys_repo.find_by_accessor(connection, accessor)
        if row is None or row.revoked_at is not None:
            raise NotFound("no access key with that accessor")
        return _identity(row)

    def revoke(self, accessor: str, connection: Connection) -> None:
        """Revoke in the caller's transaction; call ``forget`` after it commits."""
        row = access_keys_repo.find_by_accessor(connection, accessor)
        if row is None:
            raise NotFound("no access key with that accessor")
        access_keys_repo.revoke_access_key(connection, accessor, self._clock.now())

    def forget(self, accessor: str) -> None:
        """Drop the cached entry of ``accessor`` (after its revocation committed)."""
        with self._lock:
            self._epoch += 1
            for key_id in [k for k, e in self._cache.items()
                           if e.key.identity.accessor == accessor]:
                del self._cache[key_id]

    def clear(self) -> None:
        """Drop every cached secret (the store was sealed)."""
        with self._lock:
            self._epoch += 1
            self._cache.clear()


def _identity(row: AccessKeyRow) -> Identity:
    return Identity(accessor=row.accessor, name=row.name, policies=row.policies,
                    expires_at=row.expires_at, created_at=row.created_at)
