"""The election scenario, rerun: three trustees, and one of them loses their share.

The IACR needed all three of three trustees, and one had lost their part: the
result was locked forever, and nobody knew until the day it was needed. Here the
threshold is 2 of 3 (3 of 3 is refused unless forced), each share is sealed to
its trustee's own key so whoever runs the ceremony sees ciphertexts only, and a
share counts only once its trustee has acknowledged it. So when carol's laptop
dies before she ever opens her share, the loss shows the same day: she is named
as unacknowledged, the margin is 0 (not 1), and health, metrics and the
compliance report say so. Alice and bob alone open the service; a rekey gives
carol's place to dave, whose share only he can open; the margin returns to 1 once
he acknowledges, and every old share is dead.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from http_helpers import assert_error, ok
from keyquorum.client import Client
from keyquorum.client._custodian_keys import new_key_file, open_delivered_share
from keyquorum.seal.custodian_key import CustodianKeyError
from kq_support import ServerProcess, free_port

PASSPHRASES = {"alice": "alice's long passphrase", "bob": "bob's long passphrase",
               "carol": "carol's long passphrase", "dave": "dave's long passphrase"}
pytestmark = pytest.mark.server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(data_dir=tmp_path / "data", port=free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _custodians(server: ServerProcess) -> dict:
    with server.client() as http:
        return ok(http.get("/v1/sys/custodians"))  # type: ignore[no-any-return]


def _control(server: ServerProcess, control_id: str) -> dict:
    with server.client() as http:
        report = ok(http.get("/v1/reports/compliance"))
    return next(c for c in report["controls"] if c["id"] == control_id)  # type: ignore[no-any-return]


def test_a_lost_share_shows_at_once_and_a_quorum_recovers_and_replaces_it(
        server: ServerProcess) -> None:
    # Each trustee makes their key pair at home; only public keys travel.
    machines = {name: new_key_file(name, PASSPHRASES[name]) for name in PASSPHRASES}
    kq = Client(server.addr)

    # The election's own mistake, 3 of 3, is refused unless forced.
    with server.anonymous() as anyone:
        assert_error(anyone.post("/v1/sys/init", json={"shares": 3, "threshold": 3}),
                     400, "invalid_request")
    made = kq.init(3, 2, ["alice", "bob", "carol"], custodian_keys={
        name: machines[name].public_pem for name in ("alice", "bob", "carol")})
    assert made.shares == () and made.delivery == "encrypted"  # the operator sees no share
    server.root_token = made.root_token
    kq = Client(server.addr, made.root_token)

    # Alice and bob open their shares on their own machines (checking the server sealed
    # them to their own keys) and acknowledge; carol's laptop dies first.
    shares = {}
    for name in ("alice", "bob"):
        delivered = kq.custodian_share(name)
        shares[name] = open_delivered_share(delivered, machines[name].file_bytes,
                                            PASSPHRASES[name])
        assert delivered.recipient == delivered.key_fingerprint == machines[name].fingerprint
        kq.unseal(shares[name])  # the first unseal is their acknowledgement
    # Nobody else can open carol's envelope, not even with a trustee's key and passphrase.
    with pytest.raises(CustodianKeyError):
        open_delivered_share(kq.custodian_share("carol"), machines["alice"].file_bytes,
                             PASSPHRASES["alice"])

    # The same day: carol is named, and the margin is 0, not the 1 a count of shares
    # handed out would claim.
    status = _custodians(server)
    assert (status["threshold"], status["verified"], status["margin"]) == (2, 2, 0)
    assert status["unacknowledged"] == ["carol"]
    assert "one more lost share locks the data" in status["warning"]
    assert "never acknowledged by their custodian: carol" in status["warning"]
    health = httpx.get(f"{server.addr}/v1/sys/health").json()
    assert health["custodians"]["unacknowledged"] == 1  # no token: how many, not who
    with server.client() as http:
        metrics = http.get("/metrics").text
    assert "keyquorum_custodian_quorum_margin 0.0" in metrics
    assert 'keyquorum_custodian_acknowledged{custodian="carol",index="3"} 0.0' in metrics
    control = _control(server, "pci-3.7.8")
    assert control["status"] == "attention" and "carol" in control["summary"]

    # Still recoverable: alice and bob are a quorum (their shares unsealed it above).
    assert httpx.get(f"{server.addr}/v1/sys/health").json()["sealed"] is False

    # A rekey gives carol's place to dave (his key given by the operator: he holds no
    # share to register it with); alice and bob bring the quorum.
    started = kq.rekey_init(replace=("carol", "dave"),
                            custodian_keys={"dave": machines["dave"].public_pem})
    assert started.new_custodians == ("alice", "bob", "dave")
    assert {r["custodian"]: r["source"] for r in started.recipients} == {
        "alice": "registered", "bob": "registered", "dave": "given"}
    assert kq.rekey_submit(started.nonce or "", shares["alice"]).progress == 1
    done = kq.rekey_submit(started.nonce or "", shares["bob"])
    assert done.complete and done.generation == 2 and len(done.encrypted_shares) == 3
    # Bob completed the quorum, yet holds only his own new share.
    with pytest.raises(CustodianKeyError):
        open_delivered_share(kq.custodian_share("dave"), machines["bob"].file_bytes,
                             PASSPHRASES["bob"])
    status = _custodians(server)
    assert status["unacknowledged"] == ["alice", "bob", "dave"] and status["margin"] == -2

    new = {}
    for name in ("alice", "bob", "dave"):
        new[name] = open_delivered_share(kq.custodian_share(name), machines[name].file_bytes,
                                         PASSPHRASES[name])
        assert kq.prove_share(name, new[name]).valid  # acknowledged
    status = _custodians(server)
    assert (status["margin"], status["unacknowledged"]) == (1, [])
    assert "warning" not in status
    assert _control(server, "pci-3.7.8")["status"] == "pass"

    # No downtime; the old shares are dead, the new ones open the service.
    assert httpx.get(f"{server.addr}/v1/sys/health").status_code == 200
    with server.client() as http:
        ok(http.post("/v1/sys/seal"))
    for old in shares.values():
        assert_error(httpx.post(f"{server.addr}/v1/sys/unseal", json={"share": old}),
                     400, "invalid_request")
    assert server.unseal([new["bob"], new["dave"]])["sealed"] is False
    kq.close()
