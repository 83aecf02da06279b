"""Tokens: created once, stored as hashes, refused when unknown, expired or revoked."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import Engine, event, select

from keyquorum.auth.identity import Identity
from keyquorum.auth.tokens import TokenStore, check_child_token
from keyquorum.errors import Forbidden, InvalidRequest, NotFound, Unauthenticated
from keyquorum.storage.schema import tokens

pytestmark = pytest.mark.postgresql

if TYPE_CHECKING:  # a runtime import of conftest could pick another directory's conftest
    from conftest import FakeClock


@pytest.fixture
def store(engine: Engine, clock: FakeClock) -> TokenStore:
    return TokenStore(engine, clock)


def make(store: TokenStore, policies: list[str] | None = None,
         ttl: float | None = None) -> tuple[str, Identity]:
    return store.create(policies=policies or ["reader"], ttl=ttl, name="app",
                        created_by="acc_0000000000000000")


def test_created_token_authenticates_to_its_identity(store: TokenStore,
                                                     clock: FakeClock) -> None:
    token, identity = make(store, ["reader", "writer", "reader"], ttl=3600)
    assert identity.policies == ("reader", "writer")
    assert identity.expires_at == clock.now() + 3600
    assert identity.created_at == clock.now()
    assert store.authenticate(token) == identity
    assert store.get(identity.accessor) == identity


def test_token_and_accessor_have_the_documented_shapes(store: TokenStore) -> None:
    token, identity = make(store)
    assert token.startswith("kq_")
    assert len(base64.urlsafe_b64decode(token[3:] + "=")) == 32
    assert identity.accessor.startswith("acc_") and len(identity.accessor) == 20
    other, other_identity = make(store)
    assert other != token and other_identity.accessor != identity.accessor


def test_only_the_hash_is_stored_and_the_token_is_nowhere_in_the_database(
        store: TokenStore, engine: Engine, tmp_path: Path) -> None:
    token, _ = make(store)
    store.authenticate(token)
    with engine.connect() as connection:
        stored = connection.execute(select(tokens.c.token_hash)).scalar_one()
    assert stored == hashlib.sha256(token.encode()).digest()
    raw = base64.urlsafe_b64decode(token[3:] + "=")
    engine.dispose()
    for path in tmp_path.iterdir():  # the database, its WAL and anything else
        if path.is_file():
            content = path.read_bytes()
            assert token.encode() not in content
            assert token[3:].encode() not in content
            assert raw not in content


def test_secrets_stay_out_of_reprs_and_errors(store: TokenStore) -> None:
    token, identity = make(store)
    assert token not in repr(identity)
    store.revoke(identity.accessor)
    with pytest.raises(Unauthenticated) as caught:
        store.authenticate(token)
    assert token not in repr(caught.value) and token not in str(caught.value)


def test_expiry_is_checked_against_the_clock_even_for_cached_tokens(
        store: TokenStore, clock: FakeClock) -> None:
    token, identity = make(store, ttl=60)
    store.authenticate(token)  # now cached
    clock.advance(59.9)
    assert store.authenticate(token) == identity
    clock.advance(0.1)  # expires_at <= now: expired
    with pytest.raises(Unauthenticated):
        store.authenticate(token)
    assert store.get(identity.accessor) == identity  # still visible by accessor


def test_revoked_token_is_refused_at_once_though_it_was_cached(store: TokenStore) -> None:
    token, identity = make(store)
    other, _ = make(store)
    store.authenticate(token)
    store.revoke(identity.accessor)
    with pytest.raises(Unauthenticated):
        store.authenticate(token)
    store.revoke(identity.accessor)  # revoking twice changes nothing
    with pytest.raises(NotFound):
        store.get(identity.accessor)
    store.authenticate(other)  # others are untouched


def test_revocation_on_another_node_is_seen_after_revalidation(
        engine: Engine, clock: FakeClock) -> None:
    node_a = TokenStore(engine, clock, revalidate_after=0.0)
    node_b = TokenStore(engine, clock)
    token, identity = make(node_a)
    node_a.authenticate(token)
    node_b.revoke(identity.accessor)
    with pytest.raises(Unauthenticated):
        node_a.authenticate(token)


def test_cached_authentication_does_not_touch_the_database(
        store: TokenStore, engine: Engine) -> None:
    token, _ = make(store)
    store.authenticate(token)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda *args: statements.append(args[2]))
    for _ in range(100):
        store.authenticate(token)
    assert statements == []


@pytest.mark.parametrize("token", [
    "", "kq_", "kq_" + "A" * 42, "kq_" + "A" * 44, "xx_" + "A" * 43, "kq_" + "A" * 42 + "=",
    "kq_" + "A" * 42 + "!", " kq_" + "A" * 43, "kq_" + "é" * 43, None, 42,
])
def test_malformed_tokens_are_refused(store: TokenStore, token: object) -> None:
    with pytest.raises(Unauthenticated):
        store.authenticate(token)  # type: ignore[arg-type]


def test_unknown_token_is_refused(store: TokenStore) -> None:
    make(store)
    with pytest.raises(Unauthenticated):
        store.authenticate("kq_" + "A" * 43)


@pytest.mark.parametrize("accessor", ["acc_0123456789abcdef", "nonsense", ""])
def test_unknown_accessor_is_not_found(store: TokenStore, accessor: str) -> None:
    with pytest.raises(NotFound):
        store.get(accessor)
    with pytest.raises(NotFound):
        store.revoke(accessor)


def test_root_token_holds_root_and_never_expires(store: TokenStore, clock: FakeClock) -> None:
    token, identity = store.create_root()
    assert identity.is_root and identity.policies == ("root",) and identity.expires_at is None
    clock.advance(10 * 365 * 86400)
    assert store.authenticate(token).is_root


@pytest.mark.parametrize(("policies", "ttl"), [
    ([], None), ("reader", None), (["Bad Name"], None), ([""], None), ([3], None),
    (["reader"], 0), (["reader"], -5), (["reader"], float("nan")), (["reader"], True),
])
def test_bad_policies_or_ttl_are_invalid(store: TokenStore, policies: object,
                                         ttl: object) -> None:
    with pytest.raises(InvalidRequest):
        store.create(policies=policies, ttl=ttl, name=None, created_by=None)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest):
        check_child_token(_parent(("root",)), policies, ttl, 0.0)  # type: ignore[arg-type]


def _parent(policies: tuple[str, ...], expires_at: float | None = None) -> Identity:
    return Identity("acc_00000000000000aa", None, policies, expires_at, 0.0)


def test_a_child_may_only_get_policies_its_parent_holds() -> None:
    parent = _parent(("reader", "writer"))
    assert check_child_token(parent, ["reader"], 60, 0.0) == 60
    with pytest.raises(Forbidden) as caught:
        check_child_token(parent, ["reader", "admin", "root"], 60, 0.0)
    assert "only grant policies it holds" in caught.value.message
    assert "admin, root" in caught.value.message


def test_root_may_grant_any_policy() -> None:
    assert check_child_token(_parent(("root",)), ["admin", "root"], None, 0.0) is None


def test_a_child_never_outlives_its_parent() -> None:
    parent = _parent(("reader",), expires_at=1000.0)
    assert check_child_token(parent, ["reader"], 5000, now=400.0) == 600.0
    assert check_child_token(parent, ["reader"], None, now=400.0) == 600.0
    assert check_child_token(parent, ["reader"], 10, now=400.0) == 10
    with pytest.raises(Unauthenticated):
        check_child_token(parent, ["reader"], 10, now=1000.0)


def test_an_orphan_of_a_root_token_with_a_ttl_is_not_clipped_to_it() -> None:
    parent = _parent(("root",), expires_at=1000.0)  # a break-glass root token, say
    assert check_child_token(parent, ["reader"], 5000, now=400.0, orphan=True) == 5000
    assert check_child_token(parent, ["reader"], None, now=400.0, orphan=True) is None
    with pytest.raises(Unauthenticated):  # an expired parent mints nothing at all
        check_child_token(parent, ["reader"], 10, now=1000.0, orphan=True)
    with pytest.raises(Forbidden):  # review F13: only root makes what outlives it
        check_child_token(_parent(("reader",)), ["reader"], 10, now=400.0, orphan=True)


def test_a_due_token_is_read_again_once_while_the_loop_answers_from_its_entry(
        engine: Engine, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """When a busy token's entry is due, the event loop does not send every request in
    flight to storage (each one a thread and a read): the first goes, and until its
    read returns the others are answered from the entry. A token nobody is reading
    again, or one revoked here, is not."""
    import threading

    from keyquorum.storage import tokens_repo

    store = TokenStore(engine, clock, revalidate_after=0.0)  # always due
    token, identity = make(store)
    store.authenticate(token)
    assert store.authenticate_cached(token) is None  # due, and nobody is reading it

    reading, release = threading.Event(), threading.Event()
    real = tokens_repo.find_by_hash

    def slow(connection: object, digest: bytes) -> object:
        reading.set()
        assert release.wait(10)
        return real(connection, digest)  # type: ignore[arg-type]

    monkeypatch.setattr(tokens_repo, "find_by_hash", slow)
    reader = threading.Thread(target=store.authenticate, args=(token,))
    reader.start()
    try:
        assert reading.wait(10)
        assert store.authenticate_cached(token) == identity  # from the entry meanwhile
        store.forget(identity.accessor)  # revoked elsewhere: the entry is gone
        assert store.authenticate_cached(token) is None
    finally:
        release.set()
        reader.join()
    assert store.authenticate_cached(token) is None  # due again, nobody reading it
