"""Bearer tokens: created once, stored only as a SHA-256 hash, named by a public accessor.

The token text (``kq_`` + 32 random bytes, base64url) is shown to its holder once
and never stored, logged or audited. Audit records and revocation use the
``accessor``, a separate random id that grants nothing.

``authenticate`` is on every request, so valid tokens are cached in memory by
hash. Expiry is still checked against the clock on every call; a revocation in
this process drops the entry at once; a revocation made by another node is seen
within ``revalidate_after`` seconds (and the one storage read made then: while it
runs, the event loop answers from the entry), or at once when its change event
arrives.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from keyquorum.auth.identity import ROOT_POLICY_NAME, Identity
from keyquorum.auth.rules import validate_policy_name
from keyquorum.clock import Clock
from keyquorum.errors import Forbidden, InvalidRequest, NotFound, Unauthenticated
from keyquorum.storage import tokens_repo
from keyquorum.storage.tokens_repo import TokenRow

TOKEN_PREFIX = "kq_"  # noqa: S105 -- a public prefix, not a secret
TOKEN_BYTES = 32
MAX_TOKEN_NAME = 128
MAX_POLICIES = 64
_TOKEN_SHAPE = re.compile(r"kq_[A-Za-z0-9_-]{43}")
_TOKEN_LENGTH = 46
_ACCESSOR_SHAPE = re.compile(r"acc_[0-9a-f]{16}")


def new_token() -> str:
    """Fresh token text from the OS CSPRNG."""
    raw = secrets.token_bytes(TOKEN_BYTES)
    return TOKEN_PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def new_accessor() -> str:
    return "acc_" + secrets.token_hex(8)


def token_hash(token: str) -> bytes:
    """What is stored instead of the token. No salt is needed: the token is 256 random bits."""
    return hashlib.sha256(token.encode("ascii")).digest()


def validate_policies(policies: object) -> tuple[str, ...]:
    """A non-empty list of well-formed policy names, de-duplicated in order."""
    if isinstance(policies, str) or not isinstance(policies, Sequence) or not policies:
        raise InvalidRequest("policies must be a non-empty list of policy names")
    if len(policies) > MAX_POLICIES:
        raise InvalidRequest(f"a token holds at most {MAX_POLICIES} policies")
    return tuple(dict.fromkeys(validate_policy_name(name) for name in policies))


def validate_ttl(ttl: float | None) -> float | None:
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not math.isfinite(ttl) \
            or ttl <= 0:
        raise InvalidRequest("ttl must be a positive number of seconds")
    return float(ttl)


def validate_token_name(name: object) -> str:
    """A token's name: 1-128 printable characters (it is shown in listings and audit)."""
    if not isinstance(name, str) or not 0 < len(name) <= MAX_TOKEN_NAME \
            or not name.isprintable():
        raise InvalidRequest(f"token name must be 1-{MAX_TOKEN_NAME} printable characters")
    return name


def check_child_token(parent: Identity, policies: Sequence[str], ttl: float | None,
                      now: float, *, orphan: bool = False) -> float | None:
    """Apply the rules for ``parent`` creating a token; return the ttl to use.

    A non-root token may only hand out policies it holds itself (else any token
    with ``sys:tokens`` could mint root); and a child never outlives its parent,
    so a ttl past the parent's expiry is clipped to the parent's remaining life.
    An orphan (``check_orphan``: a root parent) is not clipped: it is made to
    outlive its parent, e.g. the operators' tokens minted with a break-glass root
    token that has a ttl.
    """
    if orphan:
        check_orphan(parent)
    wanted = validate_policies(policies)
    ttl = validate_ttl(ttl)
    if not parent.is_root:
        missing = [name for name in wanted if name not in parent.policies]
        if missing:
            raise Forbidden("a token may only grant policies it holds itself; not held: "
                            + ", ".join(missing))
    if parent.expires_at is None:
        return ttl
    remaining = parent.expires_at - now
    if remaining <= 0:
        raise Unauthenticated()
    return ttl if orphan or (ttl is not None and ttl <= remaining) else remaining


def check_orphan(parent: Identity) -> None:
    """Only a root holder may mint a token that outlives its own revocation.

    Any other ``sys:tokens`` holder minting orphans would reopen review F13: a thief
    with a stolen ``sys:tokens`` token could leave tokens behind that the cleanup of
    the stolen one does not reach. A root holder can already do anything, so an
    orphan gives it nothing it did not have; it exists so that init's root token can
    be revoked after setup without taking the operators' tokens with it.
    """
    if not parent.is_root:
        raise Forbidden("only a root token may create an orphan token")


@dataclass(frozen=True, slots=True)
class _Cached:
    identity: Identity
    loaded_at: float  # time.monotonic(): freshness of the cache, not token expiry


class TokenStore:
    """Tokens in the ``tokens`` table, with a hash-keyed in-memory cache for authentication."""

    def __init__(self, engine: Engine, clock: Clock, *, revalidate_after: float = 10.0,
                 cache_size: int = 100_000) -> None:
        self._engine = engine
        self._clock = clock
        self._revalidate_after = revalidate_after
        self._cache_size = cache_size
        self._cache: dict[bytes, _Cached] = {}
        self._lock = threading.Lock()
        # Bumped by every revocation: a lookup that started before one must not
        # put what it read into the cache (it may be the token just revoked).
        self._epoch = 0
        # Tokens being read again because their entry is due: meanwhile the event loop
        # keeps answering from the entry, so a busy token sends one read to storage
        # when it is due, not one (and a thread) per request in flight.
        self._refreshing: set[bytes] = set()

    def create(self, *, policies: Sequence[str], ttl: float | None, name: str | None,
               created_by: str | None, orphan: bool = False,
               connection: Connection | None = None) -> tuple[str, Identity]:
        """Store a new token and return its text (the only time it exists) and identity.

        The caller applies ``check_child_token`` (and ``check_orphan`` for an orphan)
        first; this only validates shape. ``created_by`` names the minter even for an
        orphan: ``orphan`` only keeps its revocation from reaching the new token.
        """
        wanted = validate_policies(policies)
        ttl = validate_ttl(ttl)
        if name is not None:
            validate_token_name(name)
        now = self._clock.now()
        identity = Identity(
            accessor=new_accessor(), name=name, policies=wanted,
            expires_at=None if ttl is None else now + ttl, created_at=now,
            orphan=orphan or not _is_accessor(created_by))
        token = new_token()
        row = TokenRow(accessor=identity.accessor, token_hash=token_hash(token), name=name,
                       policies=wanted, created_at=now, created_by=created_by,
                       expires_at=identity.expires_at, revoked_at=None, orphan=orphan)
        if connection is not None:  # part of the caller's transaction (init)
            tokens_repo.insert_token(connection, row)
        else:
            with self._engine.begin() as own:
                tokens_repo.insert_token(own, row)
        return token, identity

    def create_root(self, created_by: str = "init",
                    connection: Connection | None = None) -> tuple[str, Identity]:
        """A token holding the ``root`` policy, without expiry (made at init)."""
        return self.create(policies=[ROOT_POLICY_NAME], ttl=None, name="root",
                           created_by=created_by, connection=connection)

    def authenticate(self, token: str) -> Identity:
        """The identity behind ``token``; ``Unauthenticated`` if malformed, unknown,
        expired or revoked (one answer for all, so callers cannot probe which)."""
        identity = self._identity_of(token, may_block=True)
        assert identity is not None
        return identity

    def authenticate_cached(self, token: str) -> Identity | None:
        """``authenticate`` without asking storage, for the event loop: None when the
        token is not cached or is due to be checked again (ask ``authenticate`` from a
        thread then); refusals are the same."""
        return self._identity_of(token, may_block=False)

    def _identity_of(self, token: str, *, may_block: bool) -> Identity | None:
        if not isinstance(token, str) or len(token) != _TOKEN_LENGTH or not token.isascii():
            raise Unauthenticated()
        digest = token_hash(token)
        # The cache and the index are keyed by SHA-256 of the token: lookup timing
        # can only reveal a prefix of a hash, which gives no way to build a token.
        entry = self._cache.get(digest)
        if entry is None or time.monotonic() - entry.loaded_at > self._revalidate_after:
            # The full shape check runs only before storage is asked, not per cached hit.
            if not _TOKEN_SHAPE.fullmatch(token):
                raise Unauthenticated()
            if may_block:
                entry = self._load(digest)
            elif entry is None or digest not in self._refreshing:
                return None
        expires_at = entry.identity.expires_at
        if expires_at is not None and expires_at <= self._clock.now():
            with self._lock:
                self._cache.pop(digest, None)
            raise Unauthenticated()
        return entry.identity

    def _load(self, digest: bytes) -> _Cached:
        with self._lock:
            epoch = self._epoch
            self._refreshing.add(digest)
        try:
            with self._engine.connect() as connection:
                row = tokens_repo.find_by_hash(connection, digest)
        finally:
            with self._lock:
                self._refreshing.discard(digest)
        if row is None or not hmac.compare_digest(row.token_hash, digest) \
                or row.revoked_at is not None:
            with self._lock:
                self._cache.pop(digest, None)
            raise Unauthenticated()
        entry = _Cached(_identity(row), time.monotonic())
        with self._lock:
            if self._epoch == epoch:
                if len(self._cache) >= self._cache_size and digest not in self._cache:
                    self._cache.pop(next(iter(self._cache)))  # oldest insertion
                self._cache[digest] = entry
        return entry

    def get(self, accessor: str) -> Identity:
        """The identity named by ``accessor`` (also when expired); ``NotFound`` if
        unknown or revoked."""
        row = self._row(accessor)
        if row is None or row.revoked_at is not None:
            raise NotFound("no token with that accessor")
        return _identity(row)

    def revoke(self, accessor: str, connection: Connection | None = None) -> list[Identity]:
        """Revoke the token and every token it minted, transitively, at once.

        A token made with a stolen ``sys:tokens`` token must not outlive the cleanup
        of the thief's token (review F13): children are found by ``created_by`` and
        revoked in the same transaction, however deep; only orphans (which only a
        root holder can mint) are left, with what they minted. Returns every token
        this call revoked (the token first; it is included even if it was revoked
        before, and its children are still swept). With ``connection`` the writes
        are part of the caller's unit of work, whose ``TokenRevoked`` events drop
        the cached identities (``forget``) after commit.
        """
        row = self._row(accessor)
        if row is None:
            raise NotFound("no token with that accessor")
        now = self._clock.now()
        if connection is not None:
            return _revoke_lineage(connection, row, now)
        with self._engine.begin() as own:
            revoked = _revoke_lineage(own, row, now)
        # After the commit, so a concurrent lookup either reads the revocation or
        # sees the epoch move and keeps its read out of the cache.
        for gone in revoked:
            self.forget(gone.accessor)
        return revoked

    def descendants(self, accessor: str) -> list[Identity]:
        """The tokens ``revoke(accessor)`` would revoke along with it, in the same order,
        without revoking anything (what ``DELETE ...?dry_run=true`` shows). A token
        minted between this answer and the revocation is revoked too: the
        revocation's own answer lists what it did."""
        row = self._row(accessor)
        if row is None or row.revoked_at is not None:
            raise NotFound("no token with that accessor")
        with self._engine.connect() as connection:
            return [_identity(child) for child in _lineage(connection, row.accessor)]

    def forget(self, accessor: str) -> None:
        """Drop any cached identity for ``accessor`` (another process revoked it)."""
        with self._lock:
            self._epoch += 1
            for digest in [d for d, e in self._cache.items() if e.identity.accessor == accessor]:
                del self._cache[digest]

    def _row(self, accessor: str) -> TokenRow | None:
        if not isinstance(accessor, str) or not _ACCESSOR_SHAPE.fullmatch(accessor):
            return None
        with self._engine.connect() as connection:
            return tokens_repo.find_by_accessor(connection, accessor)


def _lineage(conn: Connection, accessor: str) -> list[TokenRow]:
    """Breadth first, every unrevoked token created by ``accessor`` or by one of those,
    orphans (and so what they made) left out."""
    found: list[TokenRow] = []
    seen, frontier = {accessor}, [accessor]
    while frontier:
        children = [c for c in tokens_repo.unrevoked_children(conn, frontier)
                    if c.accessor not in seen]
        seen.update(c.accessor for c in children)
        found += children
        frontier = [c.accessor for c in children]
    return found


def _revoke_lineage(conn: Connection, row: TokenRow, now: float) -> list[Identity]:
    """Revoke ``row`` and every token of its lineage, in one transaction."""
    if row.revoked_at is None:
        tokens_repo.revoke_token(conn, row.accessor, now)
    children = _lineage(conn, row.accessor)
    for child in children:
        tokens_repo.revoke_token(conn, child.accessor, now)
    return [_identity(row), *(_identity(child) for child in children)]


def _is_accessor(created_by: str | None) -> bool:
    """Whether ``created_by`` names a token (not init, break glass or nobody)."""
    return created_by is not None and _ACCESSOR_SHAPE.fullmatch(created_by) is not None


def _identity(row: TokenRow) -> Identity:
    # A token with no parent token (init's root, break glass's) dies with no other
    # token's revocation: it is reported as the orphan it is.
    return Identity(accessor=row.accessor, name=row.name, policies=row.policies,
                    expires_at=row.expires_at, created_at=row.created_at,
                    orphan=row.orphan or not _is_accessor(row.created_by))
