"""A share counts toward the quorum margin only once its custodian has proved it at least
once (acknowledged receipt): handing it out proves nothing. Status, health, metrics and
the compliance report name the custodians who have not acknowledged; migration 0006
turns shares that were only ever "issued" into unacknowledged ones."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import column, insert, select, table

from http_helpers import ok
from inprocess_server import InProcessServer
from keyquorum.storage.custodians_repo import list_custodians
from keyquorum.storage.engine import migrate, open_engine


def _custodians(server: InProcessServer) -> dict:
    with server.client() as http:
        return ok(http.get("/v1/sys/custodians"))  # type: ignore[no-any-return]


def _control(server: InProcessServer, control_id: str) -> dict:
    with server.client() as http:
        report = ok(http.get("/v1/reports/compliance"))
    return next(c for c in report["controls"] if c["id"] == control_id)  # type: ignore[no-any-return]


def test_a_share_counts_toward_the_margin_only_after_its_custodian_acknowledges(
        fresh_inprocess: InProcessServer) -> None:
    server = fresh_inprocess
    server.init(3, 2, custodians=["ann", "ben", "cy"])
    with server.anonymous() as anyone:  # init alone: nobody has shown a share yet
        quorum = anyone.get("/v1/sys/health").json()["custodians"]
    assert (quorum["verified"], quorum["margin"]) == (0, -2)
    assert quorum["unacknowledged"] == 3  # health needs no token: how many, not who
    assert "never acknowledged by their custodian: 3 custodian(s)" in quorum["warning"]
    assert "ann" not in quorum["warning"]
    # Unsealing with ann's and ben's shares is their acknowledgement; cy never shows hers.
    server.unseal(server.shares[:2])
    status = _custodians(server)
    assert (status["verified"], status["margin"]) == (2, 0)
    assert status["unacknowledged"] == ["cy"]
    assert "never acknowledged by their custodian: cy" in status["warning"]
    rows = {c["name"]: c for c in status["custodians"]}
    assert rows["cy"]["acknowledged"] is False and rows["cy"]["acknowledged_at"] is None
    assert rows["cy"]["issued_at"] is not None and rows["cy"]["verified_by"] is None
    assert rows["ann"]["acknowledged"] is True and rows["ann"]["verified_by"] == "unseal"
    with server.anonymous() as anyone:
        health = anyone.get("/v1/sys/health").json()
    assert health["custodians"]["unacknowledged"] == 1
    control = _control(server, "nist-custodian-acknowledgement")
    assert control["status"] == "attention"
    assert "cy" in control["summary"]
    assert any("not yet acknowledged: cy" in line for line in control["evidence"])
    with server.client() as http:
        metrics = http.get("/metrics").text
    assert 'keyquorum_custodian_acknowledged{custodian="cy",index="3"} 0.0' in metrics
    assert 'keyquorum_custodian_acknowledged{custodian="ann",index="1"} 1.0' in metrics

    # cy proves her share: acknowledged, counted, and nobody is missing any more.
    proved = server.sdk(server.root_token).prove_share("cy", server.shares[2])
    assert proved.valid
    status = _custodians(server)
    assert (status["verified"], status["margin"], status["unacknowledged"]) == (3, 1, [])
    assert "warning" not in status
    assert _control(server, "pci-3.7.8")["status"] == "pass"


def test_a_rekey_starts_every_new_share_unacknowledged(inprocess_server: InProcessServer
                                                       ) -> None:
    from custodian_keys_support import Custodians

    server = inprocess_server
    for i, name in enumerate(("share-1", "share-2", "share-3")):
        server.sdk(server.root_token).prove_share(name, server.shares[i])
    assert _custodians(server)["margin"] == 1
    people = Custodians(["share-1", "share-2", "share-3"])
    with server.client() as http:
        nonce = ok(http.post("/v1/sys/rekey/init", json={
            "reissue": True, "custodian_keys": people.keys_body()}))["nonce"]
        for share in server.shares[:2]:
            done = ok(http.post("/v1/sys/rekey/update", json={"nonce": nonce, "share": share}))
    status = _custodians(server)
    assert (status["verified"], status["margin"]) == (0, -2)
    assert status["unacknowledged"] == ["share-1", "share-2", "share-3"]
    new = people.open_all(done)
    for i, name in enumerate(("share-1", "share-2")):
        server.sdk(server.root_token).prove_share(name, new[i])
    status = _custodians(server)
    assert (status["margin"], status["unacknowledged"]) == (0, ["share-3"])


def test_migration_0006_leaves_issued_only_shares_unacknowledged(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'kq.db'}")
    migrate(engine, "0005_vault_transit")
    old = table("custodians", column("generation"), column("index"), column("name"),
                column("issued_at"), column("last_verified_at"), column("verified_by"))
    with engine.begin() as conn:
        conn.execute(insert(old), [
            {"generation": 1, "index": 1, "name": "a", "issued_at": 10.0,
             "last_verified_at": 10.0, "verified_by": "issued"},
            {"generation": 1, "index": 2, "name": "b", "issued_at": 10.0,
             "last_verified_at": 50.0, "verified_by": "proof"},
            {"generation": 1, "index": 3, "name": "c", "issued_at": None,
             "last_verified_at": None, "verified_by": None}])
    migrate(engine)
    with engine.connect() as conn:
        rows = {r.name: r for r in list_custodians(conn, 1)}
        assert conn.execute(select(column("name")).select_from(
            table("custodian_keys"))).all() == []
    assert (rows["a"].last_verified_at, rows["a"].verified_by, rows["a"].acknowledged_at,
            rows["a"].delivery) == (None, None, None, "plaintext")
    assert (rows["b"].acknowledged_at, rows["b"].verified_by) == (50.0, "proof")
    assert (rows["c"].acknowledged_at, rows["c"].delivery) == (None, None)
    engine.dispose()
