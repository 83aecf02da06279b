"""The seal set on a real server: SoftHSM2 through PKCS#11, KMS on a moto server, a passphrase.

The scenario the issue asks for: seals are added, the server unseals itself on
restart, then the HSM token is deleted and the KMS key disabled, and the server
stays sealed with a clear status while a passphrase or Shamir shares still open
it and every ciphertext made before decrypts.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from e2e.dual_control_support import cast, make_token, needs_approval
from e2e.e2e_helpers import assert_error, create_key, encrypt, ok, unb64
from kq_support import ServerProcess, free_port
from sealset_support import SOFTHSM_MODULE, MotoKms, SoftHsm, moto_kms, softhsm

__all__ = ["moto_kms", "softhsm"]

pytestmark = pytest.mark.server
PIN_ENV = "KQ_E2E_SEAL_PIN"
PHRASE = "a long passphrase nobody guesses"


@pytest.fixture
def server(tmp_path: Path, softhsm: SoftHsm, moto_kms: MotoKms,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerProcess]:
    """An initialized, unsealed server whose environment reaches SoftHSM2 and moto."""
    monkeypatch.setenv(PIN_ENV, "1234")  # inherited by the server process
    started = ServerProcess(data_dir=tmp_path / "data", port=free_port())
    started.start()
    started.init()
    started.unseal()
    try:
        yield started
    finally:
        started.stop()


def pkcs11_body(label: str, seal_id: str = "a-hsm") -> dict[str, Any]:
    return {"type": "pkcs11", "id": seal_id, "module": SOFTHSM_MODULE, "token_label": label,
            "key_label": "kq-root", "pin_env": PIN_ENV}


def status(server: ServerProcess) -> dict[str, Any]:
    return ok(httpx.get(f"{server.addr}/v1/sys/seal-status", timeout=10))  # type: ignore[no-any-return]


def settled(server: ServerProcess, timeout: float = 30.0) -> dict[str, Any]:
    """Seal status once the start-up attempt is over: unsealed, or every automatic seal tried."""
    deadline = time.monotonic() + timeout
    while True:
        body = status(server)
        automatic = [s for s in body["seals"] if s["automatic"]]
        if not body["sealed"] or all(s["last_attempt"] for s in automatic):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.1)


def seals_by_id(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in body["seals"]}


def decrypts_all(server: ServerProcess, made: list[tuple[str, bytes]]) -> None:
    with server.client() as http:
        for ciphertext, plaintext in made:
            answer = ok(http.post("/v1/decrypt", json={"ciphertext": ciphertext}))
            assert unb64(answer["plaintext"]) == plaintext


def test_auto_unseal_then_lost_hsm_and_kms_leave_shamir_and_passphrase(
        server: ServerProcess, softhsm: SoftHsm, moto_kms: MotoKms) -> None:
    label = softhsm.token()
    key_id = moto_kms.create_key()
    made: list[tuple[str, bytes]] = []
    with server.client() as http:
        create_key(http, "seal/data", "aes-256-gcm")
        for n in range(5):
            plaintext = f"record {n}".encode()
            made.append((encrypt(http, "seal/data", plaintext)["ciphertext"], plaintext))
        added = ok(http.post("/v1/sys/seals", json=pkcs11_body(label)))
        assert added["type"] == "pkcs11" and added["automatic"] is True
        assert added["params"]["pin_env"] == PIN_ENV and "1234" not in str(added)

    # Restart: the HSM opens it with nobody there.
    server.restart()
    body = settled(server)
    assert body["sealed"] is False
    assert seals_by_id(body)["a-hsm"]["last_attempt"]["ok"] is True
    decrypts_all(server, made)

    with server.client() as http:
        ok(http.post("/v1/sys/seals", json={"type": "awskms", "id": "b-kms",
                                            **moto_kms.params(key_id)}))
        ok(http.post("/v1/sys/seals", json={"type": "passphrase", "passphrase": PHRASE}))
        listed = ok(http.get("/v1/sys/seals"))["seals"]
        assert [s["id"] for s in listed] == ["shamir", "a-hsm", "b-kms", "passphrase"]
        assert PHRASE not in str(listed)
        assert {"salt", "opslimit", "memlimit"} <= set(listed[3]["params"])
        assert listed[2]["params"]["key_id"] == key_id
        made.append((encrypt(http, "seal/data", b"after seals")["ciphertext"], b"after seals"))
    # seal-status answers anyone: it names the seals, not where the HSM, PIN or key are.
    public = status(server)
    assert [s["id"] for s in public["seals"]] == ["shamir", "a-hsm", "b-kms", "passphrase"]
    assert all("params" not in s for s in public["seals"])
    assert PIN_ENV not in str(public) and key_id not in str(public)

    # The token is gone: the HSM seal fails with a reason, KMS opens it.
    softhsm.delete_token(label)
    server.restart()
    body = settled(server)
    assert body["sealed"] is False
    attempts = seals_by_id(body)
    assert attempts["a-hsm"]["last_attempt"]["ok"] is False
    assert attempts["a-hsm"]["last_attempt"]["reason"] == "token_not_found"
    assert attempts["b-kms"]["last_attempt"]["ok"] is True
    decrypts_all(server, made)

    # The KMS key is disabled too: sealed, with a clear status and one log line each.
    moto_kms.client().disable_key(KeyId=key_id)
    server.restart()
    body = settled(server)
    assert body["sealed"] is True
    attempts = seals_by_id(body)
    assert attempts["b-kms"]["last_attempt"]["reason"] == "key_disabled"
    assert attempts["a-hsm"]["last_attempt"]["reason"] == "token_not_found"
    log = (server.data_dir.parent / f"server-{server.port}.log").read_text()
    assert "auto-unseal: seal b-kms (awskms) is unavailable (key_disabled)" in log
    assert "1234" not in log and PHRASE not in log

    # A wrong passphrase is refused, audited, and never written anywhere; after three
    # wrong ones in a row, guessing on is slowed down (Retry-After) while the right one
    # still opens once the wait is over.
    for _ in range(4):
        wrong = httpx.post(f"{server.addr}/v1/sys/unseal",
                           json={"passphrase": "not the right passphrase"}, timeout=30)
        assert_error(wrong, 400, "wrong_passphrase")
    slowed = httpx.post(f"{server.addr}/v1/sys/unseal", json={"passphrase": PHRASE},
                        timeout=30)
    assert_error(slowed, 429, "rate_limited")
    assert slowed.headers["Retry-After"] == "1"
    assert status(server)["sealed"] is True
    time.sleep(1.1)

    # The passphrase opens it; every ciphertext made before decrypts.
    opened = ok(httpx.post(f"{server.addr}/v1/sys/unseal", json={"passphrase": PHRASE},
                           timeout=30))
    assert opened["sealed"] is False
    decrypts_all(server, made)
    with server.client() as http:
        records = ok(http.get("/v1/audit", params={"operation": "sys:unseal",
                                                   "limit": 50}))["records"]
        assert any(r["error_code"] == "wrong_passphrase" for r in records)
        assert any(r["error_code"] == "seal_unavailable" for r in records)
        ok(http.post("/v1/sys/seal"))

    # And Shamir, the recovery path, opens it as always.
    assert server.unseal(server.shares[1:])["sealed"] is False
    decrypts_all(server, made)
    assert PHRASE not in (server.data_dir.parent / f"server-{server.port}.log").read_text()


def test_bad_seal_requests_are_refused_and_nothing_is_stored(
        server: ServerProcess, softhsm: SoftHsm, moto_kms: MotoKms,
        monkeypatch: pytest.MonkeyPatch) -> None:
    label = softhsm.token(pin="4321")  # the server's PIN variable holds 1234: wrong
    refusals: list[tuple[dict[str, Any], int, str, str | None]] = [
        ({"type": "dev"}, 400, "invalid_request", None),
        ({"type": "shamir"}, 400, "invalid_request", None),
        ({"type": "passphrase", "passphrase": "too short"}, 400, "invalid_request", None),
        ({**pkcs11_body(label), "module": "/nonexistent/lib.so"}, 400, "seal_unavailable",
         "module_missing"),
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

        ok(http.post("/v1/sys/seals", json={"type": "passphrase", "passphrase": PHRASE}))
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


def test_seal_changes_under_dual_control_need_approval(server: ServerProcess) -> None:
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
        ok(http.post("/v1/sys/seals", json={**body, "approval_id": approval}))

        removal = needs_approval(http.delete("/v1/sys/seals/passphrase"))
        assert len(ok(http.get("/v1/sys/seals"))["seals"]) == 2
        people.approve(removal)
        assert ok(http.delete("/v1/sys/seals/passphrase",
                              params={"approval_id": removal}))["removed"] is True
        assert [s["id"] for s in ok(http.get("/v1/sys/seals"))["seals"]] == ["shamir"]
    finally:
        people.close()


def test_passphrase_unseal_body_is_checked(server: ServerProcess) -> None:
    for body in ({"passphrase": 7}, {"passphrase": ""}, {"passphrase": PHRASE, "share": "x"}):
        with server.client() as http:
            ok(http.post("/v1/sys/seal"))
        answer = httpx.post(f"{server.addr}/v1/sys/unseal", json=body, timeout=30)
        assert_error(answer, 400, "invalid_request")
        server.unseal()
