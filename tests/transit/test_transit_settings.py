"""Vault-only key settings (``deletion_allowed``, ``min_encryption_version``) are kept in
their own table: they survive a restart, the native API neither shows nor edits them, and
changing them is an audited ``update`` that needs the native twin's permission."""

from __future__ import annotations

from typing import Any

from inprocess_server import InProcessServer
from transit_support import Vault, errors


def _native_key(server: InProcessServer, name: str) -> dict[str, Any]:
    with server.client() as http:
        answer = http.get(f"/v1/keys/{name}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json())


def test_settings_survive_a_restart(make_inprocess: Any) -> None:
    server: InProcessServer = make_inprocess()
    server.init()
    server.unseal()
    with server.anonymous() as http:
        vault = Vault(http, server.root_token)
        vault.data(vault.write("keys/kept"))
        vault.data(vault.write("keys/kept/rotate"))
        vault.data(vault.write("keys/kept/config", {"deletion_allowed": True,
                                                    "min_encryption_version": 2}))
    shares, token = server.shares, server.root_token
    server.stop()
    server.start()
    server.unseal(shares[:2])
    with server.anonymous() as http:
        read = Vault(http, token).data(Vault(http, token).request("GET", "keys/kept"))
    assert (read["deletion_allowed"], read["min_encryption_version"]) == (True, 2)


def test_settings_are_not_native_labels_and_labels_do_not_set_them(
        inprocess_server: InProcessServer) -> None:
    server = inprocess_server
    with server.anonymous() as http:
        vault = Vault(http, server.root_token)
        vault.data(vault.write("keys/lab"))
        vault.data(vault.write("keys/lab/config", {"deletion_allowed": True}))
        assert _native_key(server, "lab")["labels"] == {}
        # A native label of the old spelling is only a label: it neither allows deletion
        # nor changes what transit answers.
        vault.data(vault.write("keys/lab2"))
        with server.client() as native:
            answer = native.patch("/v1/keys/lab2", json={"labels": {
                "vault-transit/deletion-allowed": "true",
                "vault-transit/min-encryption-version": "1"}})
            assert answer.status_code == 200, answer.text
        read = vault.data(vault.request("GET", "keys/lab2"))
        assert (read["deletion_allowed"], read["min_encryption_version"]) == (False, 0)
        assert "deletion is not allowed" in errors(vault.request("DELETE", "keys/lab2"),
                                                   400)[0]
        # ...and a native update of labels leaves transit's settings as they were.
        with server.client() as native:
            assert native.patch("/v1/keys/lab", json={"labels": {"team": "a"}}
                                ).status_code == 200
        assert vault.data(vault.request("GET", "keys/lab"))["deletion_allowed"] is True


def test_config_is_an_audited_update_that_needs_the_update_permission(
        inprocess_server: InProcessServer) -> None:
    server = inprocess_server
    with server.client() as http:
        assert http.put("/v1/policies/reader", json={"rules": [
            {"keys": "cfg", "operations": ["read"]}]}).status_code == 200
        reader = http.post("/v1/auth/tokens", json={"policies": ["reader"]}).json()["token"]
    with server.anonymous() as http:
        root, weak = Vault(http, server.root_token), Vault(http, reader)
        root.data(root.write("keys/cfg"))
        assert errors(weak.write("keys/cfg/config", {"deletion_allowed": True}), 403)
        assert weak.data(weak.request("GET", "keys/cfg"))["deletion_allowed"] is False
        root.data(root.write("keys/cfg/config", {"deletion_allowed": True}))
        assert root.data(root.request("GET", "keys/cfg"))["deletion_allowed"] is True
    with server.client() as http:
        records = http.get("/v1/audit", params={"key": "cfg", "operation": "update",
                                                "limit": "100"}).json()["records"]
    outcomes = sorted(r["outcome"] for r in records
                      if r.get("detail", {}).get("path") == "transit/keys/cfg/config")
    assert outcomes == ["denied", "ok"], records
