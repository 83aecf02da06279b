"""Built-in roles end to end: real tokens for each role through the real app (in process).

key-admin manages but cannot use keys; key-user uses but cannot manage; the
auditor reads the audit log only; the operator runs the service but touches no
key. Every refusal is a 403 ``forbidden`` and is audited as ``denied``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from http_helpers import assert_error, b64, create_key, encrypt, ok, unique
from inprocess_server import InProcessServer

pytestmark = pytest.mark.postgresql

ROLES = ("key-admin", "key-user", "auditor", "operator", "approver")


@pytest.fixture(scope="module")
def root(shared_inprocess: InProcessServer) -> Iterator[httpx.Client]:
    with shared_inprocess.client() as client:
        yield client


@pytest.fixture(scope="module")
def tokens(root: httpx.Client) -> dict[str, dict[str, Any]]:
    """One token per built-in role, made by root."""
    return {role: ok(root.post("/v1/auth/tokens", json={"policies": [role], "name": role}))
            for role in ROLES}


@pytest.fixture(scope="module")
def as_role(shared_inprocess: InProcessServer,
            tokens: dict[str, dict[str, Any]]) -> Iterator[dict[str, httpx.Client]]:
    clients = {role: shared_inprocess.client(tokens[role]["token"]) for role in ROLES}
    yield clients
    for client in clients.values():
        client.close()


def forbidden(answer: httpx.Response) -> None:
    assert_error(answer, 403, "forbidden")


def test_builtin_roles_are_listed_read_only_and_usable(root: httpx.Client) -> None:
    ok(root.put("/v1/policies/roles-custom", json={"rules": [
        {"keys": "roles/**", "operations": ["read"]}]}))
    listed = {p["name"]: p for p in ok(root.get("/v1/policies"))["policies"]}
    for role in ROLES:
        assert listed[role]["builtin"] is True and listed[role]["description"]
        assert ok(root.get(f"/v1/policies/{role}")) == {"name": role, **{
            k: v for k, v in listed[role].items() if k != "name"}}
        error = assert_error(root.put(f"/v1/policies/{role}", json={"rules": [
            {"keys": "**", "operations": ["*"]}]}), 409, "conflict")
        assert error["message"] == f"the {role} policy is built in and cannot be changed"
        error = assert_error(root.delete(f"/v1/policies/{role}"), 409, "conflict")
        assert error["message"] == f"the {role} policy is built in and cannot be deleted"
    assert listed["key-user"]["rules"] == [{
        "keys": "**", "effect": "allow", "operations": [
            "encrypt", "decrypt", "reencrypt", "datakey", "sign", "verify", "mac",
            "decapsulate", "random", "read"]}]
    assert listed["roles-custom"] == {"name": "roles-custom", "rules": [
        {"keys": "roles/**", "operations": ["read"], "effect": "allow"}]}  # not built in


def test_key_admin_manages_keys_but_never_uses_them(root: httpx.Client,
                                                    as_role: dict[str, httpx.Client],
                                                    tokens: dict[str, dict[str, Any]]) -> None:
    admin = as_role["key-admin"]
    name = unique("roles/admin")
    made = ok(admin.post("/v1/keys", json={"name": name, "spec": "aes-256-gcm"}))
    assert made["created_by"] == tokens["key-admin"]["accessor"]
    assert ok(admin.get(f"/v1/keys/{name}"))["name"] == name
    assert name in [k["name"] for k in ok(admin.get("/v1/keys", params={"prefix": "roles/"}))[
        "keys"]]
    ok(admin.patch(f"/v1/keys/{name}", json={"description": "managed by key-admin"}))
    assert ok(admin.post(f"/v1/keys/{name}/rotate"))["primary_version"] == 2
    assert ok(admin.post(f"/v1/keys/{name}/disable"))["state"] == "disabled"
    assert ok(admin.post(f"/v1/keys/{name}/enable"))["state"] == "enabled"
    ok(admin.post(f"/v1/keys/{name}/revoke", json={"version": 1, "reason": "compromised"}))
    assert ok(admin.post(f"/v1/keys/{name}/schedule-deletion", json={"days": 7}))["destroy_at"]
    ok(admin.post(f"/v1/keys/{name}/cancel-deletion"))

    text = encrypt(root, name, b"secret")["ciphertext"]
    forbidden(admin.post(f"/v1/keys/{name}/encrypt", json={"plaintext": b64(b"x")}))
    forbidden(admin.post("/v1/decrypt", json={"ciphertext": text}))
    forbidden(admin.post(f"/v1/keys/{name}/decrypt", json={"ciphertext": text}))
    forbidden(admin.post("/v1/reencrypt", json={"ciphertext": text}))
    forbidden(admin.post(f"/v1/keys/{name}/datakey"))
    forbidden(admin.post("/v1/random", json={"bytes": 8}))
    forbidden(admin.get("/v1/audit"))
    forbidden(admin.post("/v1/auth/tokens", json={"policies": ["key-admin"]}))
    forbidden(admin.get("/v1/policies"))
    forbidden(admin.get("/v1/sys/custodians"))
    forbidden(admin.post("/v1/sys/seal"))


def test_key_user_uses_keys_but_never_manages_them(root: httpx.Client,
                                                   as_role: dict[str, httpx.Client]) -> None:
    user = as_role["key-user"]
    name, signer, macer = unique("roles/use"), unique("roles/sig"), unique("roles/mac")
    create_key(root, name, "aes-256-gcm")
    create_key(root, signer, "ed25519")
    create_key(root, macer, "hmac-sha256")

    text = ok(user.post(f"/v1/keys/{name}/encrypt", json={"plaintext": b64(b"hi")}))[
        "ciphertext"]
    assert ok(user.post("/v1/decrypt", json={"ciphertext": text}))["plaintext"] == b64(b"hi")
    ok(user.post("/v1/reencrypt", json={"ciphertext": text}))
    ok(user.post(f"/v1/keys/{name}/datakey"))
    signature = ok(user.post(f"/v1/keys/{signer}/sign", json={"message": b64(b"m")}))[
        "signature"]
    assert ok(user.post(f"/v1/keys/{signer}/verify", json={
        "message": b64(b"m"), "signature": signature}))["valid"] is True
    ok(user.post(f"/v1/keys/{macer}/mac", json={"message": b64(b"m")}))
    ok(user.post("/v1/random", json={"bytes": 8}))
    ok(user.get(f"/v1/keys/{name}"))
    ok(user.get(f"/v1/keys/{signer}/public-key"))

    forbidden(user.post("/v1/keys", json={"name": unique("roles/new"), "spec": "aes-256-gcm"}))
    forbidden(user.post(f"/v1/keys/{name}/rotate"))
    forbidden(user.patch(f"/v1/keys/{name}", json={"description": "mine now"}))
    forbidden(user.post(f"/v1/keys/{name}/disable"))
    forbidden(user.post(f"/v1/keys/{name}/enable"))
    forbidden(user.post(f"/v1/keys/{name}/revoke", json={"reason": "superseded"}))
    forbidden(user.post(f"/v1/keys/{name}/schedule-deletion", json={"days": 7}))
    forbidden(user.post(f"/v1/keys/{name}/cancel-deletion"))
    forbidden(user.get("/v1/keys", params={"prefix": "roles/"}))  # no list: said, not empty
    forbidden(user.get("/v1/audit"))
    forbidden(user.post("/v1/auth/tokens", json={"policies": ["key-user"]}))
    forbidden(user.post("/v1/sys/seal"))
    assert ok(root.get(f"/v1/keys/{name}"))["primary_version"] == 1  # nothing changed


def test_auditor_reads_the_audit_log_and_nothing_else(root: httpx.Client,
                                                      as_role: dict[str, httpx.Client]) -> None:
    auditor = as_role["auditor"]
    name = unique("roles/audited")
    create_key(root, name, "aes-256-gcm")
    records = ok(auditor.get("/v1/audit", params={"key": name}))["records"]
    assert [r["operation"] for r in records] == ["create"]
    forbidden(auditor.get(f"/v1/keys/{name}"))
    forbidden(auditor.post(f"/v1/keys/{name}/encrypt", json={"plaintext": b64(b"x")}))
    forbidden(auditor.post("/v1/keys", json={"name": unique("roles/a"), "spec": "aes-256-gcm"}))
    forbidden(auditor.post(f"/v1/keys/{name}/rotate"))
    forbidden(auditor.get("/v1/policies"))
    forbidden(auditor.post("/v1/auth/tokens", json={"policies": ["auditor"]}))
    forbidden(auditor.get("/v1/sys/custodians"))
    forbidden(auditor.post("/v1/random", json={"bytes": 8}))


def test_operator_runs_the_service_but_touches_no_key(root: httpx.Client,
                                                      as_role: dict[str, httpx.Client]) -> None:
    operator = as_role["operator"]
    name = unique("roles/op")
    create_key(root, name, "aes-256-gcm")
    child = ok(operator.post("/v1/auth/tokens", json={"policies": ["operator"], "ttl": "1h"}))
    assert child["policies"] == ["operator"]
    # it can hand out only what it holds, so it cannot mint a key-user for itself
    forbidden(operator.post("/v1/auth/tokens", json={"policies": ["key-user"]}))
    ok(operator.put("/v1/policies/roles-op-made", json={"rules": [
        {"keys": "roles/**", "operations": ["read"]}]}))
    assert "key-admin" in [p["name"] for p in ok(operator.get("/v1/policies"))["policies"]]
    assert ok(operator.post("/v1/policies/simulate", json={
        "policies": ["key-user"], "operation": "decrypt", "key": name}))["allowed"] is True
    ok(operator.get("/v1/sys/custodians"))
    ok(operator.delete(f"/v1/auth/tokens/{child['accessor']}"))

    forbidden(operator.post(f"/v1/keys/{name}/encrypt", json={"plaintext": b64(b"x")}))
    forbidden(operator.get(f"/v1/keys/{name}"))
    forbidden(operator.post("/v1/keys", json={"name": unique("roles/o"), "spec": "aes-256-gcm"}))
    forbidden(operator.post(f"/v1/keys/{name}/rotate"))
    forbidden(operator.post(f"/v1/keys/{name}/schedule-deletion", json={"days": 7}))
    forbidden(operator.get("/v1/audit"))
    forbidden(operator.post("/v1/random", json={"bytes": 8}))


def test_approver_does_nothing_but_approve(root: httpx.Client,
                                           as_role: dict[str, httpx.Client]) -> None:
    approver = as_role["approver"]
    name = unique("roles/appr")
    create_key(root, name, "aes-256-gcm")
    forbidden(approver.get(f"/v1/keys/{name}"))
    forbidden(approver.post(f"/v1/keys/{name}/encrypt", json={"plaintext": b64(b"x")}))
    forbidden(approver.post(f"/v1/keys/{name}/rotate"))
    forbidden(approver.get("/v1/audit"))
    forbidden(approver.get("/v1/policies"))


def test_refusals_are_audited_as_denied(root: httpx.Client, as_role: dict[str, httpx.Client],
                                        tokens: dict[str, dict[str, Any]]) -> None:
    name = unique("roles/denied")
    create_key(root, name, "aes-256-gcm")
    forbidden(as_role["key-admin"].post(f"/v1/keys/{name}/encrypt",
                                        json={"plaintext": b64(b"x")}))
    records = ok(root.get("/v1/audit", params={
        "identity": tokens["key-admin"]["accessor"], "key": name}))["records"]
    assert [(r["operation"], r["outcome"], r["error_code"]) for r in records] == [
        ("encrypt", "denied", "forbidden")]


def test_operator_can_seal(inprocess_server: InProcessServer) -> None:
    with inprocess_server.client() as root:
        tokens = {role: ok(root.post("/v1/auth/tokens", json={"policies": [role]}))["token"]
                  for role in ("operator", "key-admin")}
    with inprocess_server.client(tokens["key-admin"]) as admin:
        forbidden(admin.post("/v1/sys/seal"))
    with inprocess_server.client(tokens["operator"]) as operator:
        assert ok(operator.post("/v1/sys/seal"))["sealed"] is True
    assert inprocess_server.anonymous().get("/v1/sys/seal-status").json()["sealed"] is True
