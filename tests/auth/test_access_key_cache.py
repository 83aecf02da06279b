"""Cached access-key secrets do not outlive a seal or a revocation, in any worker.

SigV4 needs the secret itself, so keys in use are cached in memory: sealing drops
every cached secret at once, and a revocation (here, or announced by a sibling
worker as a typed change event) drops that key's entry before the next request.
"""

from __future__ import annotations

from typing import Any

from keyquorum.service.changes import AccessKeyRevoked


def _cached_key(core: Any) -> tuple[str, str]:
    with core.engine.begin() as conn:
        key_id, _secret, identity = core.access_keys.create(
            policies=["default"], ttl=None, name="cache-test", created_by=None,
            connection=conn)
    core.access_keys.lookup(key_id)  # into the cache, as a signed request does
    assert core.access_keys.cached(key_id) is not None
    return key_id, identity.accessor


def test_sealing_drops_every_cached_access_key_secret(core: Any) -> None:
    key_id, _accessor = _cached_key(core)
    core.seal()
    assert core.access_keys.cached(key_id) is None


def test_a_revocation_announced_by_a_sibling_worker_drops_the_cached_secret(core: Any) -> None:
    key_id, accessor = _cached_key(core)
    core.apply_peer_event(AccessKeyRevoked(accessor).to_wire())
    assert core.access_keys.cached(key_id) is None


def test_a_revocation_here_drops_the_cached_secret_after_commit(core: Any) -> None:
    from keyquorum.service.context import system_context

    key_id, accessor = _cached_key(core)
    with core.changes.audited(system_context("t"), "sys:tokens") as change:
        core.access_keys.revoke(accessor, connection=change.conn)
        change.events.append(AccessKeyRevoked(accessor))
        assert core.access_keys.cached(key_id) is not None  # not before the commit
    assert core.access_keys.cached(key_id) is None
