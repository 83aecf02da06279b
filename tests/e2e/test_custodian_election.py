"""The election scenario: 3 trustees, any 2 open the key; one loses a share.

The drills make the loss visible long before the shares are needed (margin 0,
a warning in custodians, health, metrics and the compliance report); the other
two still unseal; a rekey replaces the lost custodian and the margin returns to
1, while every old share stops working.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from http_helpers import assert_error, ok
from keyquorum.client import Client
from kq_support import ServerProcess, free_port

DAY = 86400
pytestmark = pytest.mark.server


@pytest.fixture
def election(tmp_path) -> Iterator[ServerProcess]:
    server = ServerProcess(data_dir=tmp_path / "data", port=free_port())
    server.start()
    try:
        server.init(3, 2, custodians=["alice", "bob", "carol"])
        server.unseal()
        yield server
    finally:
        server.stop()


def _custodians(server: ServerProcess) -> dict:
    with server.client() as http:
        return ok(http.get("/v1/sys/custodians"))  # type: ignore[no-any-return]


def _metric(server: ServerProcess, name: str) -> list[str]:
    with server.client() as http:
        text = http.get("/metrics").text
    return [line for line in text.splitlines() if line.startswith(name)]


def _control(server: ServerProcess, control_id: str) -> dict:
    with server.client() as http:
        report = ok(http.get("/v1/reports/compliance"))
    return next(c for c in report["controls"] if c["id"] == control_id)  # type: ignore[no-any-return]


def test_lost_share_shows_in_drills_and_a_rekey_replaces_its_custodian(
        election: ServerProcess) -> None:
    server = election
    alice, bob, carol = server.shares
    kq = Client(server.addr, server.root_token)

    # Every trustee proves possession; nothing is missing.
    for name, share in (("alice", alice), ("bob", bob), ("carol", carol)):
        assert kq.prove_share(name, share).valid
    status = _custodians(server)
    assert (status["margin"], status["threshold"], status["drill_window_days"]) == (1, 2, 90)
    assert "warning" not in status
    assert [c["verified_by"] for c in status["custodians"]] == ["proof"] * 3
    assert status["commitments"] == server.commitments

    # A season passes; carol's share is gone, so only alice and bob can prove theirs.
    server.advance_clock(91 * DAY)
    assert _custodians(server)["margin"] == -2
    for name, share in (("alice", alice), ("bob", bob)):
        kq.prove_share(name, share)
    status = _custodians(server)
    assert status["margin"] == 0
    assert "one more lost share locks the data" in status["warning"]
    carol_row = next(c for c in status["custodians"] if c["name"] == "carol")
    assert carol_row["verified_by"] == "proof"  # ...but more than 90 days ago
    health = httpx.get(f"{server.addr}/v1/sys/health").json()
    assert health["custodians"]["margin"] == 0
    assert "one more lost share" in health["custodians"]["warning"]
    assert _metric(server, "keyquorum_custodian_quorum_margin ") == [
        "keyquorum_custodian_quorum_margin 0.0"]
    assert len(_metric(server, "keyquorum_custodian_last_verified_timestamp_seconds{")) == 3
    control = _control(server, "pci-3.7.8")
    assert control["status"] == "attention"
    assert "one more lost share locks the data" in control["summary"]

    # The other two still open the service.
    with server.client() as http:
        ok(http.post("/v1/sys/seal"))
    assert server.unseal([alice, bob])["sealed"] is False

    # A rekey gives carol's place to dave; alice and bob bring the quorum.
    started = kq.rekey_init(replace=("carol", "dave"))
    assert (started.started, started.progress, started.required) == (True, 0, 2)
    assert started.new_custodians == ("alice", "bob", "dave")
    assert kq.rekey_submit(started.nonce or "", alice).progress == 1
    done = kq.rekey_submit(started.nonce or "", bob)
    assert done.complete and len(done.shares) == 3 and done.generation == 2
    assert done.custodians == ("alice", "bob", "dave")
    assert not kq.rekey_status().started
    _new_alice, new_bob, new_dave = done.shares

    status = _custodians(server)
    assert status["margin"] == 1 and "warning" not in status
    assert [c["name"] for c in status["custodians"]] == ["alice", "bob", "dave"]
    assert {c["verified_by"] for c in status["custodians"]} == {"issued"}
    assert _control(server, "pci-3.7.8")["status"] == "pass"

    # No downtime: the service stayed unsealed. The new share proves; old ones are dead.
    assert httpx.get(f"{server.addr}/v1/sys/health").status_code == 200
    assert kq.prove_share("dave", new_dave).valid
    with pytest.raises(ValueError, match="does not match"):
        kq.prove_share("alice", alice)
    with server.client() as http:
        ok(http.post("/v1/sys/seal"))
    for old in (alice, bob, carol):
        assert_error(httpx.post(f"{server.addr}/v1/sys/unseal", json={"share": old}),
                     400, "invalid_request")
    assert server.unseal([new_bob, new_dave])["sealed"] is False
    kq.close()
