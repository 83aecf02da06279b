"""Vault's trim is keyquorum's destroy-versions: the material of every version below
``min_available_version`` is erased, under Vault's rules, the ``delete`` permission and
dual control's ``destroy-versions``, with one audit record; refusals store nothing."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Any

import pytest

from dual_control_support import cast
from inprocess_server import InProcessServer
from transit_support import Vault, b64, errors

_NUMBERS = itertools.count()


@pytest.fixture(scope="module")
def server(shared_inprocess: InProcessServer) -> InProcessServer:
    return shared_inprocess


@pytest.fixture(scope="module")
def root(server: InProcessServer) -> Iterator[Vault]:
    with server.anonymous() as http:
        yield Vault(http, server.root_token)


def _three_versions(root: Vault, name: str) -> str:
    """A key at version 3 and a ciphertext of version 1."""
    root.data(root.write(f"keys/{name}"))
    first = root.data(root.write(f"encrypt/{name}", {"plaintext": b64(b"v1")}))["ciphertext"]
    root.data(root.write(f"keys/{name}/rotate"))
    root.data(root.write(f"keys/{name}/rotate"))
    return str(first)


def _version_states(server: InProcessServer, name: str) -> dict[int, str]:
    with server.client() as http:
        return {v["version"]: v["state"] for v in http.get(f"/v1/keys/{name}").json()["versions"]}


def _records(server: InProcessServer, name: str) -> list[dict[str, Any]]:
    with server.client() as http:
        return list(http.get("/v1/audit", params={"key": name, "operation": "delete",
                                                  "limit": "100"}).json()["records"])


@pytest.mark.parametrize(("config", "body", "message"), [
    ({}, {}, "missing min_available_version"),
    ({"min_decryption_version": 2}, {"min_available_version": 2},
     "minimum available version cannot be set when minimum encryption version is not set"),
    ({"min_decryption_version": 2, "min_encryption_version": 2}, {"min_available_version": 3},
     "minimum available version cannot be greater than minmum encryption version"),
    ({"min_encryption_version": 3}, {"min_available_version": 2},
     "minimum available version cannot be greater than minimum decryption version"),
    ({"min_decryption_version": 2, "min_encryption_version": 2}, {"min_available_version": 0},
     "minimum available version should be positive"),
    ({"min_decryption_version": 2, "min_encryption_version": 2},
     {"min_available_version": "two"}, "min_available_version must be a whole number"),
])
def test_vaults_rules_refuse_with_vaults_words_and_destroy_nothing(
        server: InProcessServer, root: Vault, config: dict[str, Any], body: dict[str, Any],
        message: str) -> None:
    name = f"trim-bad-{next(_NUMBERS)}"
    _three_versions(root, name)
    if config:
        root.data(root.write(f"keys/{name}/config", config))
    assert errors(root.write(f"keys/{name}/trim", body), 400)[0].startswith(message)
    assert "destroyed" not in _version_states(server, name).values()


def test_trim_destroys_the_versions_below_and_the_key_goes_on(
        server: InProcessServer, root: Vault) -> None:
    old = _three_versions(root, "trimmed")
    root.data(root.write("keys/trimmed/config", {"min_decryption_version": 2,
                                                 "min_encryption_version": 2}))
    answer = root.data(root.write("keys/trimmed/trim", {"min_available_version": 2}))
    assert answer["min_available_version"] == 2 and set(answer["keys"]) == {"2", "3"}
    assert _version_states(server, "trimmed") == {1: "destroyed", 2: "deactivated",
                                                  3: "active"}
    # the key goes on: encrypt and decrypt with the kept versions; version 1 is gone
    text = root.data(root.write("encrypt/trimmed", {"plaintext": b64(b"on")}))["ciphertext"]
    assert root.data(root.write("decrypt/trimmed", {"ciphertext": text}))["plaintext"] \
        == b64(b"on")
    assert errors(root.write("decrypt/trimmed", {"ciphertext": old}), 400)
    # the same bound again is accepted (nothing left to erase); a lower one is refused
    root.data(root.write("keys/trimmed/trim", {"min_available_version": 2}))
    assert errors(root.write("keys/trimmed/trim", {"min_available_version": 1}), 400) == [
        "minimum available version cannot be decremented"]
    # Vault's rules between the minimums hold after a trim; refused configs change nothing
    assert errors(root.write("keys/trimmed/config", {"min_decryption_version": 1}), 400) == [
        "min decryption version should not be less then min available version"]
    assert errors(root.write("keys/trimmed/config", {"min_encryption_version": 1}), 400) == [
        "cannot set min encryption/decryption values; min encryption version of 1 must be "
        "greater than or equal to min decryption version of 2"]
    read = root.data(root.request("GET", "keys/trimmed"))
    assert (read["min_decryption_version"], read["min_encryption_version"]) == (2, 2)
    record = next(r for r in _records(server, "trimmed")
                  if r["outcome"] == "ok" and r["detail"].get("versions") == "1")
    assert record["detail"]["action"] == "destroy-versions"
    assert record["detail"]["path"] == "transit/keys/trimmed/trim"


def test_trim_needs_the_delete_permission(server: InProcessServer, root: Vault) -> None:
    _three_versions(root, "trim-perm")
    root.data(root.write("keys/trim-perm/config", {"min_decryption_version": 2,
                                                   "min_encryption_version": 2}))
    with server.client() as http:
        assert http.put("/v1/policies/trim-updater", json={"rules": [
            {"keys": "trim-perm", "operations": ["read", "update", "rotate"]}]}
        ).status_code == 200
        token = http.post("/v1/auth/tokens", json={"policies": ["trim-updater"]}
                          ).json()["token"]
    with server.anonymous() as http:
        weak = Vault(http, token)
        assert errors(weak.write("keys/trim-perm/trim", {"min_available_version": 2}), 403)
    assert "destroyed" not in _version_states(server, "trim-perm").values()


def test_native_destroy_versions_follows_the_state_machine(
        server: InProcessServer, root: Vault) -> None:
    _three_versions(root, "native-trim")
    with server.client() as http:
        refused = http.post("/v1/keys/native-trim/destroy-versions", json={"below": 2})
        assert refused.status_code == 409, refused.text  # min_decrypt_version is still 1
        assert "min_decrypt_version" in refused.text
        assert http.patch("/v1/keys/native-trim",
                          json={"min_decrypt_version": 3}).status_code == 200
        done = http.post("/v1/keys/native-trim/destroy-versions", json={"below": 3})
        assert done.status_code == 200, done.text
        states = {v["version"]: v["state"] for v in done.json()["versions"]}
        assert states == {1: "destroyed", 2: "destroyed", 3: "active"}
        assert http.post("/v1/keys/native-trim/destroy-versions",
                         json={"below": 0}).status_code == 400
    read = root.data(root.request("GET", "keys/native-trim"))
    assert read["min_available_version"] == 3


def test_trim_is_under_dual_control_like_schedule_deletion(
        fresh_inprocess: InProcessServer) -> None:
    server = fresh_inprocess
    server.init()
    server.unseal()
    with server.anonymous() as http:
        root = Vault(http, server.root_token)
        _three_versions(root, "guarded-trim")
        root.data(root.write("keys/guarded-trim/config", {"min_decryption_version": 2,
                                                          "min_encryption_version": 2}))
    people = cast(server)
    try:
        with server.anonymous() as http:
            admin = Vault(http, people.admin)
            body = {"min_available_version": 2}
            message = errors(admin.write("keys/guarded-trim/trim", body), 403)[0]
            assert message.startswith("approval_required: destroy-versions")
            found = re.search(r"apr_[A-Za-z0-9_-]+", message)
            assert found is not None
            assert "destroyed" not in _version_states(server, "guarded-trim").values()
            people.approve(found.group(0))
            done = admin.data(admin.write("keys/guarded-trim/trim",
                                          {**body, "approval_id": found.group(0)}))
            assert done["min_available_version"] == 2
    finally:
        people.close()
