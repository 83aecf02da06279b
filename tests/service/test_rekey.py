"""Rekey over HTTP: shares verified one by one, a wrong one refused alone, dual control,
cancel, and every step in the audit log (never a share)."""

from __future__ import annotations

import httpx
import pytest
from typer.testing import CliRunner

from e2e.dual_control_support import cast, needs_approval
from e2e.e2e_helpers import assert_error, ok
from keyquorum.cli.main import app
from keyquorum.seal.shamir import create_shamir_seal
from kq_support import ServerProcess

pytestmark = pytest.mark.server


def _update(server: ServerProcess, nonce: str, share: str) -> httpx.Response:
    return httpx.post(f"{server.addr}/v1/sys/rekey/update", json={"nonce": nonce, "share": share})


def test_a_wrong_share_is_refused_alone_and_n_k_change(kq_server: ServerProcess) -> None:
    server = kq_server
    with server.client() as http:
        assert_error(http.post("/v1/sys/rekey/init", json={"shares": 4, "threshold": 4}),
                     400, "invalid_request")  # k = n needs force here too
        started = ok(http.post("/v1/sys/rekey/init", json={
            "shares": 4, "threshold": 3, "custodians": ["ann", "ben", "cat", "dov"]}))
        assert_error(http.post("/v1/sys/rekey/init", json={"reissue": True}), 409, "conflict")
    nonce = started["nonce"]
    assert (started["progress"], started["required"], started["new_threshold"]) == (0, 2, 3)
    _, foreign = create_shamir_seal(bytes(32), 3, 2)
    assert_error(_update(server, nonce, foreign[0]), 400, "invalid_request")
    assert_error(_update(server, "not-the-nonce", server.shares[0]), 400, "invalid_request")
    status = httpx.get(f"{server.addr}/v1/sys/rekey").json()  # no token needed
    assert (status["started"], status["progress"]) == (True, 0)
    assert ok(_update(server, nonce, server.shares[0]))["progress"] == 1
    assert_error(_update(server, nonce, server.shares[0]), 400, "invalid_request")
    assert httpx.get(f"{server.addr}/v1/sys/rekey").json()["submitted"] == [1]
    done = ok(_update(server, nonce, server.shares[2]))
    assert done["complete"] and len(done["shares"]) == 4 and done["threshold"] == 3
    seal = httpx.get(f"{server.addr}/v1/sys/seal-status").json()
    assert (seal["shares"], seal["threshold"]) == (4, 3)
    assert_error(_update(server, nonce, server.shares[1]), 404, "not_found")  # it is over

    with server.client() as http:
        records = ok(http.get("/v1/audit", params={"limit": 1000}))["records"]
    steps = [(r["operation"], r["outcome"]) for r in records
             if r["operation"].startswith("sys:rekey")]
    assert ("sys:rekey-init", "ok") in steps and ("sys:rekey-update", "error") in steps
    assert steps.count(("sys:rekey-update", "ok")) == 2
    text = str(records)
    for share in (*server.shares, *done["shares"]):
        assert share not in text and share.split("-")[2] not in text

    with server.client() as http:
        ok(http.post("/v1/sys/seal"))
    assert server.unseal(done["shares"][1:])["sealed"] is False


def test_cancel_needs_a_token_and_drops_the_ceremony(kq_server: ServerProcess) -> None:
    server = kq_server
    with server.client() as http:
        nonce = ok(http.post("/v1/sys/rekey/init", json={"reissue": True}))["nonce"]
    ok(_update(server, nonce, server.shares[0]))
    assert_error(httpx.delete(f"{server.addr}/v1/sys/rekey"), 401, "unauthenticated")
    with server.client() as http:
        assert ok(http.delete("/v1/sys/rekey"))["cancelled"] is True
        assert_error(http.delete("/v1/sys/rekey"), 404, "not_found")
    assert httpx.get(f"{server.addr}/v1/sys/rekey").json()["started"] is False
    assert_error(_update(server, nonce, server.shares[1]), 404, "not_found")
    with server.client() as http:  # the old shares still rule: nothing changed
        ok(http.post("/v1/sys/seal"))
    assert server.unseal(server.shares[1:])["sealed"] is False


def test_an_expired_ceremony_is_gone(kq_server: ServerProcess) -> None:
    server = kq_server
    with server.client() as http:
        nonce = ok(http.post("/v1/sys/rekey/init", json={"reissue": True}))["nonce"]
    server.advance_clock(3601)
    assert httpx.get(f"{server.addr}/v1/sys/rekey").json()["started"] is False
    assert_error(_update(server, nonce, server.shares[0]), 404, "not_found")


def test_rekey_under_dual_control_needs_approval(kq_server: ServerProcess) -> None:
    people = cast(kq_server)
    try:
        root = people.http()
        body = {"replace": {"custodian": "share-3", "with": "erin"}}
        approval_id = needs_approval(root.post("/v1/sys/rekey/init", json=body))
        assert_error(root.post("/v1/sys/rekey/init", json={**body, "approval_id": approval_id}),
                     403, "approval_required")
        people.approve(approval_id)
        started = ok(root.post("/v1/sys/rekey/init", json={**body, "approval_id": approval_id}))
        assert started["new_custodians"] == ["share-1", "share-2", "erin"]
        ok(_update(kq_server, started["nonce"], kq_server.shares[0]))
        done = ok(_update(kq_server, started["nonce"], kq_server.shares[1]))
        assert done["custodians"] == ["share-1", "share-2", "erin"]
    finally:
        people.close()


def test_cli_rekey_shows_the_new_shares_once(kq_server: ServerProcess, tmp_path) -> None:
    env = {"KEYQUORUM_ADDR": kq_server.addr, "KEYQUORUM_TOKEN": kq_server.root_token}
    runner = CliRunner()
    started = runner.invoke(app, ["operator", "rekey", "init", "--replace", "share-2=zoe"],
                            env=env)
    assert started.exit_code == 0, started.output
    assert "0/2" in started.stdout
    first = tmp_path / "one"
    first.write_text(kq_server.shares[0])
    assert runner.invoke(app, ["operator", "rekey", "submit", "--share-file", str(first)],
                         env=env).exit_code == 0
    last = runner.invoke(app, ["operator", "rekey", "submit"], input=kq_server.shares[2] + "\n",
                         env=env)
    assert last.exit_code == 0, last.output
    assert "WARNING" in last.stderr and "ONCE" in last.stderr
    assert "New unseal share 2 (zoe): kqs1-02-" in last.stdout
    status = runner.invoke(app, ["operator", "rekey", "status"], env=env)
    assert "no rekey in progress" in status.stdout
