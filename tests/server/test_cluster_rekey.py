"""A rekey on one node rotates the root key; the other nodes follow it or seal themselves.

Two in-process nodes on one PostgreSQL (``cluster_support``), both unsealed with the
first generation's shares. A rekey on A re-seals the keyring under a new root key that
never travels through the database: B hears that the keyring changed (its change feed,
or its revision check when the notification is lost) and, with no seal of its own that
opens the new key, seals itself, audited; an HSM seal both nodes can reach hands B the
new key instead. Until B has noticed, nothing is made from its retired root key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cluster_support import cluster_nodes, until
from custodian_keys_support import Custodians
from http_helpers import ok
from inprocess_server import InProcessServer
from keyquorum.runtime.change_feed import ChangeFeed
from pg_support import PostgresCluster
from sealset_support import SOFTHSM_MODULE, SoftHsm, add_seal, seal_trust_config, softhsm

__all__ = ["softhsm"]

NAMES = ["share-1", "share-2", "share-3"]
BOUND = 10.0
"""Seconds for B to seal: its revision check runs every 0.5 s (docs/CLUSTER.md), and it
gives a retired root key 2 s to be replaced (``root_follow.GRACE``); the rest is room
for a loaded test machine."""


def feed_of(node: InProcessServer) -> ChangeFeed:
    assert node.core is not None and isinstance(node.core.peers, ChangeFeed)
    return node.core.peers


def rekey(node: InProcessServer, people: Custodians) -> list[str]:
    """Rekey on ``node`` with two of its shares; the new generation's shares, opened."""
    with node.client() as http:
        started = ok(http.post("/v1/sys/rekey/init", json={
            "reissue": True, "custodian_keys": people.keys_body()}))
    with node.anonymous() as anyone:
        for share in node.shares[:2]:
            done = ok(anyone.post("/v1/sys/rekey/update",
                                  json={"nonce": started["nonce"], "share": share}))
    assert done["root_key_rotated"] is True
    return people.open_all(done)


def sealed(node: InProcessServer) -> bool:
    assert node.core is not None
    return node.core.sealed


def a_ciphertext(a: InProcessServer, b: InProcessServer) -> dict[str, Any]:
    ok(a.client().post("/v1/keys", json={"name": "rekey/k", "spec": "aes-256-gcm"}))
    made: dict[str, Any] = ok(b.client().post("/v1/keys/rekey/k/encrypt",
                                              json={"plaintext": "aGk="}))
    return made


def audit_of(node: InProcessServer, operation: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = ok(node.client().get(
        "/v1/audit", params={"operation": operation}))["records"]
    return records


def test_a_rekey_on_one_node_seals_the_node_left_with_the_old_root_key(
        two_nodes: tuple[InProcessServer, ...]) -> None:
    a, b = two_nodes
    sealed_text = a_ciphertext(a, b)
    new_shares = rekey(a, Custodians(NAMES))
    until(lambda: sealed(b), BOUND)
    assert not sealed(a)
    [record] = [r for r in audit_of(a, "sys:seal") if r["client"] == "cluster"]
    assert record["outcome"] == "ok"
    assert record["detail"]["reason"] == "root-key-rotated"
    b.unseal(new_shares[:2])  # the new generation opens B again, and the old data with it
    assert not sealed(b)
    opened = ok(b.client().post("/v1/keys/rekey/k/decrypt",
                                json={"ciphertext": sealed_text["ciphertext"]}))
    assert opened["plaintext"] == "aGk="


def test_a_lost_notification_of_the_rekey_is_caught_by_the_revision_check(
        two_nodes: tuple[InProcessServer, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = two_nodes
    monkeypatch.setattr(feed_of(a), "publish", lambda event: None)  # NOTIFY never sent
    checks = feed_of(b).checks
    rekey(a, Custodians(NAMES))
    until(lambda: sealed(b), BOUND)
    until(lambda: feed_of(b).checks > checks, BOUND)  # counted as the check reads


def test_until_it_notices_a_node_makes_nothing_from_its_retired_root_key(
        two_nodes: tuple[InProcessServer, ...]) -> None:
    a, b = two_nodes
    feed_of(b).stop()  # B cannot hear of the rekey (as in the moment before it does)
    rekey(a, Custodians(NAMES))
    refused = b.client().get("/v1/sys/backup")  # a backup is made from the root key
    assert refused.status_code == 503, refused.text
    assert "rotated the root key" in refused.json()["error"]["message"]
    assert ok(b.client().post("/v1/keys", json={"name": "rekey/still", "spec": "aes-256-gcm"}))
    assert a.client().get("/v1/sys/backup").status_code == 200


def test_an_hsm_seal_both_nodes_reach_hands_the_other_node_the_new_root_key(
        postgres: PostgresCluster, tmp_path: Path, softhsm: SoftHsm,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYQUORUM_HSM_PIN_FOLLOW", "1234")
    label = softhsm.token(pin="1234")
    with cluster_nodes(postgres, tmp_path, config=seal_trust_config()) as (a, b):
        with a.client() as http:
            add_seal(http, {"type": "pkcs11", "id": "hsm", "module": SOFTHSM_MODULE,
                            "token_label": label, "key_label": "kq-root",
                            "pin_env": "KEYQUORUM_HSM_PIN_FOLLOW"}, a.shares[:2])
        rekey(a, Custodians(NAMES))
        until(lambda: len(audit_of(a, "sys:root-key-reload")) == 1, BOUND)
        assert not sealed(b)
        assert a.core is not None and b.core is not None
        assert b.core.root_key() == a.core.root_key()  # the new one: it opens the keyring
        assert b.client().get("/v1/sys/backup").status_code == 200
