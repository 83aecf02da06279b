"""Break glass (issue 12): a custodian quorum can always mint a new root token.

Like Vault's ``generate-root``, but opening an attempt needs a share (as an unseal
round does), the token only ever leaves the server sealed to the requester's
X-Wing public key, cancelling needs the attempt's nonce, and every step is in the
audit log without the token, a share or the nonce. The real app, in process.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx

from dual_control_support import cast, needs_approval
from http_helpers import assert_error, ok
from inprocess_server import InProcessServer
from keyquorum.auth.break_glass import open_root_token
from keyquorum.crypto import kem_box
from keyquorum.crypto.errors import InvalidCiphertext

GR = "/v1/sys/generate-root"


def _requester() -> tuple[str, str]:
    return kem_box.generate()


def _generate(server: InProcessServer, public_pem: str, shares: list[str],
              ttl: str | None = None) -> dict[str, Any]:
    """Open with the first share, submit the rest with the nonce; the last answer."""
    anyone = server.anonymous()
    body: dict[str, Any] = {"public_key": public_pem, "share": shares[0]}
    if ttl is not None:
        body["ttl"] = ttl
    opened = ok(anyone.post(f"{GR}/init", json=body))
    answer = opened
    for share in shares[1:]:
        answer = ok(anyone.post(f"{GR}/update", json={"nonce": opened["nonce"],
                                                      "share": share}))
    return answer


def _records(server: InProcessServer, token: str) -> list[dict[str, Any]]:
    with server.client(token) as http:
        found = ok(http.get("/v1/audit", params={"limit": 1000}))["records"]
    mine = [r for r in found if str(r["operation"]).startswith("sys:generate-root")]
    return sorted(mine, key=lambda r: r["id"])  # oldest first


def test_a_quorum_mints_a_root_token_when_every_privileged_token_is_lost(
        fresh_inprocess: InProcessServer) -> None:
    server = fresh_inprocess
    server.init(shares=5, threshold=3)
    server.unseal(server.shares[:3])
    with server.client() as root:
        operator = ok(root.post("/v1/auth/tokens", json={"policies": ["operator"],
                                                         "name": "ops"}))
        me = ok(root.get("/v1/auth/tokens/self"))["accessor"]
        ok(root.delete(f"/v1/auth/tokens/{me}"))  # revoke root: its children go too
    for lost in (server.root_token, operator["token"]):
        with server.client(lost) as http:
            assert_error(http.get("/v1/auth/tokens/self"), 401, "unauthenticated")

    private_pem, public_pem = _requester()
    anyone = server.anonymous()
    opened = ok(anyone.post(f"{GR}/init", json={"public_key": public_pem,
                                                 "share": server.shares[4]}))
    assert opened["started"] is True and opened["progress"] == 1 and opened["required"] == 3
    assert len(opened["nonce"]) == 32 and opened["attempt"].startswith("gr_")
    assert opened["public_key_fingerprint"] == kem_box.public_fingerprint(public_pem)
    status = ok(anyone.get(GR))
    assert status["progress"] == 1 and status["opened_by"] == "share-5"
    assert "nonce" not in status and opened["nonce"] not in json.dumps(status)

    second = ok(anyone.post(f"{GR}/update", json={"nonce": opened["nonce"],
                                                   "share": server.shares[1]}))
    assert second["progress"] == 2 and "encoded_token" not in second
    done = ok(anyone.post(f"{GR}/update", json={"nonce": opened["nonce"],
                                                 "share": server.shares[0]}))
    assert done["complete"] is True and done["accessor"].startswith("acc_")
    assert "token" not in done and "kq_" not in json.dumps(done)  # only the sealed box
    token = open_root_token(private_pem, done["encoded_token"], done["attempt"])
    assert ok(anyone.get(GR))["started"] is False  # the attempt is gone

    with server.client(token) as http:
        me = ok(http.get("/v1/auth/tokens/self"))
        assert me["policies"] == ["root"] and me["accessor"] == done["accessor"]
        ok(http.post("/v1/keys", json={"name": "after/glass", "spec": "aes-256-gcm"}))
    records = _records(server, token)
    steps = [(r["operation"], r["outcome"], r["detail"].get("progress")) for r in records]
    assert steps == [("sys:generate-root-init", "ok", "1/3"),
                     ("sys:generate-root-update", "ok", "2/3"),
                     ("sys:generate-root-update", "ok", "3/3")]
    assert records[-1]["detail"]["completed"] == "true"
    assert records[-1]["detail"]["accessor"] == done["accessor"]
    assert {r["detail"]["attempt"] for r in records} == {done["attempt"]}
    written = json.dumps(records)
    for secret in (token, opened["nonce"], *server.shares):
        assert secret not in written


def test_the_token_opens_only_with_the_requesters_key_and_attempt(
        inprocess_server: InProcessServer) -> None:
    private_pem, public_pem = _requester()
    other_private, _ = _requester()
    done = _generate(inprocess_server, public_pem, inprocess_server.shares[:2], ttl="1h")
    box = done["encoded_token"]
    for key, attempt in ((other_private, done["attempt"]), (private_pem, "gr_0000000000000000")):
        try:
            open_root_token(key, box, attempt)
        except InvalidCiphertext:
            pass
        else:
            raise AssertionError("the box opened for the wrong key or attempt")
    raw = bytearray(base64.b64decode(box))
    raw[-1] ^= 1
    try:
        open_root_token(private_pem, base64.b64encode(bytes(raw)).decode(), done["attempt"])
    except InvalidCiphertext:
        pass
    else:
        raise AssertionError("a damaged box opened")
    token = open_root_token(private_pem, box, done["attempt"])
    with inprocess_server.client(token) as http:
        me = ok(http.get("/v1/auth/tokens/self"))
    assert me["expires_at"] is not None and done["expires_at"] == me["expires_at"]


def test_generate_root_works_while_dual_control_guards_privileged_tokens(
        inprocess_server: InProcessServer) -> None:
    people = cast(inprocess_server, approvals=2)
    try:  # minting a privileged token through the API now needs two approvals ...
        needs_approval(people.http(people.admin).post(
            "/v1/auth/tokens", json={"policies": ["dc-admin"], "name": "more"}))
        private_pem, public_pem = _requester()
        # ... the custodians' quorum does not: it is the stronger control.
        done = _generate(inprocess_server, public_pem, inprocess_server.shares[1:3])
        token = open_root_token(private_pem, done["encoded_token"], done["attempt"])
        with inprocess_server.client(token) as http:
            assert ok(http.get("/v1/auth/tokens/self"))["policies"] == ["root"]
    finally:
        people.close()


def _refused(answer: httpx.Response, status: int, code: str) -> None:
    assert_error(answer, status, code)


def test_anonymous_callers_cannot_open_advance_or_cancel_an_attempt(
        inprocess_server: InProcessServer) -> None:
    server = inprocess_server
    _, public_pem = _requester()
    anyone = server.anonymous()
    # No share, a made-up share, a bad key: no attempt is opened.
    _refused(anyone.post(f"{GR}/init", json={"public_key": public_pem}), 400,
             "invalid_request")
    _refused(anyone.post(f"{GR}/init", json={"public_key": "not a key",
                                              "share": server.shares[0]}), 400,
             "invalid_request")
    forged = server.shares[0][:-6] + ("aaaaaa" if not server.shares[0].endswith("aaaaaa")
                                      else "bbbbbb")
    _refused(anyone.post(f"{GR}/init", json={"public_key": public_pem, "share": forged}), 400,
             "invalid_request")
    assert ok(anyone.get(GR))["started"] is False

    opened = ok(anyone.post(f"{GR}/init", json={"public_key": public_pem,
                                                 "share": server.shares[0]}))
    # The slot is taken: nobody opens another one, even with a share.
    _refused(anyone.post(f"{GR}/init", json={"public_key": public_pem,
                                              "share": server.shares[1]}), 409, "conflict")
    # Cancel and submit need the nonce.
    wrong = "0" * 32 if opened["nonce"] != "0" * 32 else "1" * 32
    _refused(anyone.post(f"{GR}/cancel", json={"nonce": wrong}), 403, "forbidden")
    _refused(anyone.post(f"{GR}/cancel", json={}), 400, "invalid_request")
    _refused(anyone.post(f"{GR}/update", json={"nonce": wrong, "share": server.shares[1]}),
             400, "invalid_request")
    assert ok(anyone.get(GR))["progress"] == 1  # kept
    # A share submitted twice is refused by itself.
    _refused(anyone.post(f"{GR}/update", json={"nonce": opened["nonce"],
                                                "share": server.shares[0]}),
             400, "invalid_request")
    cancelled = ok(anyone.post(f"{GR}/cancel", json={"nonce": opened["nonce"]}))
    assert cancelled["cancelled"] is True and ok(anyone.get(GR))["started"] is False
    records = _records(server, server.root_token)
    assert [r["operation"] for r in records if r["outcome"] == "ok"] == [
        "sys:generate-root-init", "sys:generate-root-cancel"]
    assert any(r["error_code"] == "forbidden" for r in records)


def test_refusals_are_bounded_per_address_and_in_all(
        inprocess_server: InProcessServer) -> None:
    server = inprocess_server
    _, public_pem = _requester()
    flooder = server.anonymous()
    for _ in range(10):
        _refused(flooder.post(f"{GR}/cancel", json={"nonce": "f" * 32}), 404, "not_found")
    refused = flooder.post(f"{GR}/init", json={"public_key": public_pem,
                                                "share": server.shares[0]})
    _refused(refused, 429, "rate_limited")  # even with a real share: over its bound
    assert int(refused.headers["Retry-After"]) >= 1
    assert server.core is not None
    server.core.clock.advance(61)
    ok(flooder.post(f"{GR}/init", json={"public_key": public_pem, "share": server.shares[0]}))


def test_a_sealed_service_refuses_until_the_custodians_unseal(
        inprocess_server: InProcessServer) -> None:
    server = inprocess_server
    _, public_pem = _requester()
    ok(server.client().post("/v1/sys/seal"))
    _refused(server.anonymous().post(f"{GR}/init", json={"public_key": public_pem,
                                                          "share": server.shares[0]}),
             503, "sealed")
