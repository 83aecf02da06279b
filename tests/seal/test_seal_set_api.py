"""Seal set requests through the real app (in process): bad seal requests are refused and
nothing is stored (SoftHSM2 through PKCS#11, KMS on a moto server), seal changes under dual
control need approval, and the passphrase unseal body is checked.

(Auto-unseal across restarts, then a lost HSM token and a disabled KMS key, on a server
process: tests/e2e/test_sealset_e2e.py.)
"""

from __future__ import annotations

from typing import Any

import pytest

from conftest import MakeInProcess
from dual_control_support import cast, make_token, needs_approval
from http_helpers import assert_error, ok
from inprocess_server import InProcessServer
from sealset_support import (
    SOFTHSM_MODULE,
    MotoKms,
    SoftHsm,
    add_seal,
    moto_kms,
    seal_trust_config,
    softhsm,
)

pytestmark = pytest.mark.postgresql

__all__ = ["moto_kms", "softhsm"]

PIN_ENV = "KEYQUORUM_HSM_PIN_SEAL_API"
PHRASE = "a long passphrase nobody guesses"


@pytest.fixture
def server(make_inprocess: MakeInProcess, moto_kms: MotoKms,
           monkeypatch: pytest.MonkeyPatch) -> InProcessServer:
    """An initialized, unsealed server whose environment holds the PKCS#11 PIN variable,
    configured to allow SoftHSM2 and the moto KMS (and nothing else)."""
    monkeypatch.setenv(PIN_ENV, "1234")  # read by the seal code in this process
    server = make_inprocess(config=seal_trust_config(moto_kms))
    server.init()
    server.unseal()
    return server


def pkcs11_body(label: str, seal_id: str = "a-hsm") -> dict[str, Any]:
    return {"type": "pkcs11", "id": seal_id, "module": SOFTHSM_MODULE, "token_label": label,
            "key_label": "kq-root", "pin_env": PIN_ENV}


def test_bad_seal_requests_are_refused_and_nothing_is_stored(
        server: InProcessServer, softhsm: SoftHsm, moto_kms: MotoKms,
        monkeypatch: pytest.MonkeyPatch) -> None:
    label = softhsm.token(pin="4321")  # the server's PIN variable holds 1234: wrong
    refusals: list[tuple[dict[str, Any], int, str, str | None]] = [
        ({"type": "dev"}, 400, "invalid_request", None),
        ({"type": "shamir"}, 400, "invalid_request", None),
        ({"type": "passphrase", "passphrase": "too short"}, 400, "invalid_request", None),
        # Native code and endpoints only from the server's config file (review F2).
        ({**pkcs11_body(label), "module": "/nonexistent/lib.so"}, 400, "invalid_request",
         "not_configured"),
        ({**pkcs11_body(label), "pin_env": "HOME"}, 400, "invalid_request",
         "not_configured"),
        ({**{k: v for k, v in pkcs11_body(label).items() if k != "pin_env"},
          "pin_file": "/etc/shadow"}, 400,
         "invalid_request", "not_configured"),
        ({"type": "awskms", "key_id": "k", "region": "us-east-1",
          "endpoint_url": "http://127.0.0.1:9"}, 400, "invalid_request", "not_configured"),
        (pkcs11_body(label), 400, "seal_unavailable", "pin_incorrect"),
        (pkcs11_body("no-such-token"), 400, "seal_unavailable", "token_not_found"),
        ({**pkcs11_body(label), "pin": "1234"}, 400, "invalid_request", None),
        ({"type": "awskms", **moto_kms.params("11111111-2222-3333-4444-555555555555")}, 400,
         "seal_unavailable", "key_not_found"),
    ]
    with server.client() as http:
        for body, code, error, reason in refusals:
            refused = assert_error(http.post("/v1/sys/seals", json=body), code, error)
            assert refused.get("reason") == reason, refused
            assert "1234" not in refused["message"] and "too short" not in refused["message"]
        assert_error(http.delete("/v1/sys/seals/shamir"), 409, "seal_required")
        assert_error(http.delete("/v1/sys/seals/nothing"), 404, "not_found")
        assert [s["id"] for s in ok(http.get("/v1/sys/seals"))["seals"]] == ["shamir"]

        add_seal(http, {"type": "passphrase", "passphrase": PHRASE}, server.shares[:2])
        again = http.post("/v1/sys/seals", json={"type": "passphrase", "passphrase": PHRASE})
        assert_error(again, 409, "conflict")

        ok(http.put("/v1/policies/seal-reader",
                    json={"rules": [{"keys": "**", "operations": ["sys:read"]}]}))
        token = make_token(http, ["seal-reader"], "seal-reader")
    with server.client(token) as limited:
        assert len(ok(limited.get("/v1/sys/seals"))["seals"]) == 2
        assert_error(limited.post("/v1/sys/seals", json={"type": "passphrase",
                                                         "id": "other",
                                                         "passphrase": PHRASE}),
                     403, "forbidden")
        assert_error(limited.delete("/v1/sys/seals/passphrase"), 403, "forbidden")
    with server.client() as http:
        ok(http.post("/v1/sys/seal"))
        assert_error(http.post("/v1/sys/seals", json={"type": "passphrase",
                                                      "passphrase": PHRASE}), 503, "sealed")
        # Removing the passphrase seal is fine: Shamir stays.
        server.unseal()
        assert ok(http.delete("/v1/sys/seals/passphrase"))["removed"] is True
        assert [s["id"] for s in ok(http.get("/v1/sys/seals"))["seals"]] == ["shamir"]
        records = ok(http.get("/v1/audit", params={"limit": 200}))["records"]
    operations = {r["operation"] for r in records}
    assert {"sys:seal-add", "sys:seal-remove"} <= operations
    assert any(r["operation"] == "sys:seal-add" and r["error_code"] == "seal_unavailable"
               for r in records)


def test_seal_changes_under_dual_control_need_approval(server: InProcessServer) -> None:
    with server.client() as root:
        ok(root.put("/v1/policies/seal-admin",
                    json={"rules": [{"keys": "**", "operations": ["sys:seal", "sys:read"]}]}))
        operator = make_token(root, ["seal-admin"], "seal-operator")
    people = cast(server, approvals=2)
    try:
        body = {"type": "passphrase", "passphrase": PHRASE}
        http = people.http(operator)
        approval = needs_approval(http.post("/v1/sys/seals", json=body))
        assert [s["id"] for s in ok(http.get("/v1/sys/seals"))["seals"]] == ["shamir"]
        summary = ok(people.http(people.approvers[0]).get(f"/v1/approvals/{approval}"))
        assert PHRASE not in str(summary)
        people.approve(approval)
        # Approved, it is a proposal: custodians' shares add it (service.seal_change).
        assert add_seal(http, {**body, "approval_id": approval}, server.shares[1:]
                        )["id"] == "passphrase"

        removal = needs_approval(http.delete("/v1/sys/seals/passphrase"))
        assert len(ok(http.get("/v1/sys/seals"))["seals"]) == 2
        people.approve(removal)
        assert ok(http.delete("/v1/sys/seals/passphrase",
                              params={"approval_id": removal}))["removed"] is True
        assert [s["id"] for s in ok(http.get("/v1/sys/seals"))["seals"]] == ["shamir"]
    finally:
        people.close()


def test_passphrase_unseal_body_is_checked(server: InProcessServer) -> None:
    for body in ({"passphrase": 7}, {"passphrase": ""}, {"passphrase": PHRASE, "share": "x"}):
        with server.client() as http:
            ok(http.post("/v1/sys/seal"))
        with server.anonymous() as anonymous:
            answer = anonymous.post("/v1/sys/unseal", json=body)
        assert_error(answer, 400, "invalid_request")
        server.unseal()
