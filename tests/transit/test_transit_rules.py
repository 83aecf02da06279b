"""The transit API follows the native rules: policies, key states, audit, bad input.

One in-process server for the module. Requests are Vault-framed (no JSON content
type, ``X-Vault-Token``), answers are Vault's envelope or ``{"errors": [...]}``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from inprocess_server import InProcessServer
from transit_support import Vault, b64, errors

pytestmark = pytest.mark.postgresql


@pytest.fixture(scope="module")
def server(shared_inprocess: InProcessServer) -> InProcessServer:
    return shared_inprocess


@pytest.fixture(scope="module")
def root(server: InProcessServer) -> Iterator[Vault]:
    with server.anonymous() as http:
        yield Vault(http, server.root_token)


def _token(server: InProcessServer, name: str, rules: list[dict[str, Any]]) -> str:
    with server.client() as http:
        assert http.put(f"/v1/policies/{name}", json={"rules": rules}).status_code == 200
        answer = http.post("/v1/auth/tokens", json={"policies": [name], "name": name})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["token"])


def _audit(server: InProcessServer, **filters: str) -> list[dict[str, Any]]:
    with server.client() as http:
        answer = http.get("/v1/audit", params={"limit": "1000", **filters})
        assert answer.status_code == 200, answer.text
        return list(answer.json()["records"])


def _keys(server: InProcessServer) -> list[str]:
    with server.client() as http:
        return [k["name"] for k in http.get("/v1/keys").json()["keys"]]


def test_encrypt_decrypt_round_trip_in_vaults_envelope(root: Vault) -> None:
    root.data(root.write("keys/rt"))
    encrypted = root.data(root.write("encrypt/rt", {"plaintext": b64(b"secret\n")}))
    assert encrypted["ciphertext"].startswith("vault:v1:")
    assert encrypted["key_version"] == 1
    plain = root.data(root.write("decrypt/rt", {"ciphertext": encrypted["ciphertext"]}))
    assert plain == {"plaintext": b64(b"secret\n")}


def test_bearer_token_works_as_well_as_x_vault_token(server: InProcessServer) -> None:
    with server.client() as http:  # Authorization: Bearer
        answer = http.request("PUT", "/v1/transit/keys/bearer", content=b"")
        assert answer.status_code == 200, answer.text


def test_wrong_or_missing_token_is_403_and_nothing_is_stored(
        server: InProcessServer) -> None:
    with server.anonymous() as http:
        wrong = Vault(http, "kq_" + "x" * 43)
        assert errors(wrong.write("keys/nope"), 403) == ["permission denied"]
        assert errors(Vault(http, "").write("keys/nope"), 403) == ["permission denied"]
    assert "nope" not in _keys(server)


def test_unknown_path_and_wrong_method(root: Vault) -> None:
    assert errors(root.write("nothing/here"), 404) == ["unsupported path"]
    assert errors(root.request("GET", "encrypt/rt"), 405)


def test_malformed_base64_is_400(root: Vault) -> None:
    root.write("keys/b64")
    assert errors(root.write("encrypt/b64", {"plaintext": "!!"}), 400) == [
        "plaintext is not valid base64"]
    assert errors(root.write("decrypt/b64", {"ciphertext": "vault:v1:!!"}), 400)


def test_another_keys_ciphertext_is_refused(root: Vault) -> None:
    root.write("keys/k-a")
    root.write("keys/k-b")
    text = root.data(root.write("encrypt/k-a", {"plaintext": b64(b"x")}))["ciphertext"]
    assert errors(root.write("decrypt/k-b", {"ciphertext": text}), 400)
    assert errors(root.write("rewrap/k-b", {"ciphertext": text}), 400)


def test_a_version_prefix_that_does_not_exist_is_refused(root: Vault) -> None:
    root.write("keys/v9")
    text = root.data(root.write("encrypt/v9", {"plaintext": b64(b"x")}))["ciphertext"]
    forged = "vault:v9:" + text.split(":", 2)[2]
    assert errors(root.write("decrypt/v9", {"ciphertext": forged}), 400) == [
        "invalid ciphertext: version is too new"]
    root.write("keys/v9/rotate")
    wrong = "vault:v2:" + text.split(":", 2)[2]  # exists, but the header says 1
    assert errors(root.write("decrypt/v9", {"ciphertext": wrong}), 400)


def test_batch_items_fail_alone_and_references_are_echoed(
        server: InProcessServer, root: Vault) -> None:
    root.write("keys/batch")
    answer = root.write("encrypt/batch", {"batch_input": [
        {"plaintext": b64(b"one"), "reference": "r1"},
        {"plaintext": "!!", "reference": "r2"},
        {"plaintext": b64(b"three"), "reference": "r3"}]})
    assert answer.status_code == 400  # as Vault: any failed item makes the answer 400
    results = answer.json()["data"]["batch_results"]
    assert [r["reference"] for r in results] == ["r1", "r2", "r3"]
    assert "error" in results[1] and "ciphertext" in results[0] and "ciphertext" in results[2]
    decrypted = root.data(root.write("decrypt/batch", {"batch_input": [
        {"ciphertext": results[0]["ciphertext"]}, {"ciphertext": results[2]["ciphertext"]}]}))
    assert [r["plaintext"] for r in decrypted["batch_results"]] == [b64(b"one"), b64(b"three")]
    records = [r for r in _audit(server, key="batch", operation="encrypt")]
    assert {(r["outcome"], r["detail"]["items"]) for r in records} == {("ok", "2"),
                                                                       ("error", "1")}
    assert {r["detail"]["path"] for r in records} == {"transit/encrypt/batch"}


def test_associated_data_binds_the_ciphertext(root: Vault) -> None:
    root.write("keys/aad")
    aad = b64(b"row-17")
    text = root.data(root.write("encrypt/aad", {"plaintext": b64(b"x"),
                                                "associated_data": aad}))["ciphertext"]
    assert errors(root.write("decrypt/aad", {"ciphertext": text}), 400)
    plain = root.data(root.write("decrypt/aad", {"ciphertext": text, "associated_data": aad}))
    assert plain["plaintext"] == b64(b"x")


def test_parameters_keyquorum_cannot_honour_are_refused(root: Vault) -> None:
    message = errors(root.write("keys/derived", {"derived": True}), 400)[0]
    assert "derived is not supported" in message
    root.write("keys/conv")
    assert errors(root.write("encrypt/conv", {"plaintext": b64(b"x"), "context": "YWJj"}), 400)
    assert "not supported" in errors(root.write("keys/cmac", {"type": "aes128-cmac"}), 400)[0]
    assert "k128" not in str(root.request("LIST", "keys").json())


def test_aes128_gcm96_is_the_native_aes_128_gcm_spec(
        server: InProcessServer, root: Vault) -> None:
    made = root.data(root.write("keys/k128", {"type": "aes128-gcm96"}))
    assert (made["type"], made["kq_spec"]) == ("aes128-gcm96", "aes-128-gcm")
    text = root.data(root.write("encrypt/k128", {"plaintext": b64(b"x")}))["ciphertext"]
    with server.client() as http:
        native = http.get("/v1/keys/k128").json()
        assert native["spec"] == "aes-128-gcm" and native["versions"][0]["protect_count"] == 1
    assert root.data(root.write("decrypt/k128", {"ciphertext": text}))["plaintext"] == b64(b"x")


def test_ciphertexts_move_between_the_transit_and_native_apis(
        server: InProcessServer, root: Vault) -> None:
    from keyquorum.transit.ciphertext import from_vault, to_vault

    root.write("keys/both")
    text = root.data(root.write("encrypt/both", {"plaintext": b64(b"hi"),
                                                 "associated_data": b64(b"a")}))["ciphertext"]
    with server.client() as http:
        native = http.post("/v1/keys/both/decrypt", json={
            "ciphertext": from_vault(text)[1], "context": {"associated_data": b64(b"a")}})
        assert native.status_code == 200, native.text
        assert native.json()["plaintext"] == b64(b"hi")
        made = http.post("/v1/keys/both/encrypt", json={"plaintext": b64(b"back")}).json()
    plain = root.data(root.write("decrypt/both", {"ciphertext": to_vault(made["ciphertext"],
                                                                         made["key_version"])}))
    assert plain["plaintext"] == b64(b"back")


def test_a_transit_call_needs_its_native_twins_permission(server: InProcessServer) -> None:
    with server.client() as http:
        http.post("/v1/keys", json={"name": "perm", "spec": "aes-256-gcm"})
    token = _token(server, "transit-encrypt-only",
                   [{"keys": "perm", "operations": ["encrypt"]}])
    with server.anonymous() as http:
        user = Vault(http, token)
        text = user.data(user.write("encrypt/perm", {"plaintext": b64(b"x")}))["ciphertext"]
        assert errors(user.write("decrypt/perm", {"ciphertext": text}), 403)
        assert errors(user.write("keys/perm/rotate"), 403)
        assert errors(user.request("GET", "keys/perm"), 403)
    denied = [r for r in _audit(server, key="perm") if r["outcome"] == "denied"]
    assert {r["operation"] for r in denied} == {"decrypt", "rotate", "read"}


def test_audit_records_name_the_transit_path_and_the_token_accessor(
        server: InProcessServer, root: Vault) -> None:
    root.write("keys/audited")
    root.write("encrypt/audited", {"plaintext": b64(b"x")})
    with server.client() as http:
        accessor = http.get("/v1/auth/tokens/self").json()["accessor"]
    records = _audit(server, key="audited", operation="encrypt")
    assert records[-1]["detail"] == {"api": "vault-transit", "path": "transit/encrypt/audited"}
    assert records[-1]["identity"] == accessor


def test_key_states_refuse(server: InProcessServer, root: Vault) -> None:
    root.write("keys/off")
    with server.client() as http:
        assert http.post("/v1/keys/off/disable", json={}).status_code == 200
    assert errors(root.write("encrypt/off", {"plaintext": b64(b"x")}), 400)


def test_delete_needs_deletion_allowed_and_schedules_the_deletion(
        server: InProcessServer, root: Vault) -> None:
    root.write("keys/gone")
    assert "deletion is not allowed" in errors(root.request("DELETE", "keys/gone"), 400)[0]
    root.data(root.write("keys/gone/config", {"deletion_allowed": True}))
    answer = root.request("DELETE", "keys/gone")
    assert answer.status_code == 200, answer.text
    assert "scheduled the key for destruction" in answer.json()["warnings"][0]
    assert root.data(root.request("GET", "keys/gone"))["kq_state"] == "destroy-scheduled"
    assert "gone" not in root.data(root.request("LIST", "keys"))["keys"]


def test_a_refused_call_is_audited_once(server: InProcessServer, root: Vault) -> None:
    root.write("keys/once")
    errors(root.write("encrypt/once", {"plaintext": "!!"}), 400)
    refused = [r for r in _audit(server, key="once") if r["outcome"] != "ok"]
    assert [(r["operation"], r["error_code"]) for r in refused] == [
        ("encrypt", "invalid_request")]


def test_batch_sign_verify_and_hmac(root: Vault) -> None:
    root.write("keys/bsign", {"type": "ecdsa-p256"})
    signed = root.data(root.write("sign/bsign", {"batch_input": [
        {"input": b64(b"a"), "reference": "a"}, {"input": b64(b"b"), "reference": "b"}]}))
    sigs = [r["signature"] for r in signed["batch_results"]]
    checked = root.write("verify/bsign", {"batch_input": [
        {"input": b64(b"a"), "signature": sigs[0]}, {"input": b64(b"b"), "signature": sigs[0]},
        {"input": "!!", "signature": sigs[0]}]})
    assert checked.status_code == 200  # as Vault: verify batches answer 200, items fail alone
    results = checked.json()["data"]["batch_results"]
    assert results[0] == {"valid": True, "reference": ""}
    assert results[1] == {"valid": False, "reference": ""}
    assert results[2]["valid"] is False and "error" in results[2]
    root.write("keys/bmac", {"type": "hmac"})
    tags = root.data(root.write("hmac/bmac", {"batch_input": [{"input": b64(b"m")}]}))
    tag = tags["batch_results"][0]["hmac"]
    assert root.data(root.write("verify/bmac", {"input": b64(b"m"), "hmac": tag})) == {
        "valid": True}


def test_prehashed_sign_with_a_path_hash_algorithm(root: Vault) -> None:
    import hashlib

    root.write("keys/pre", {"type": "ecdsa-p384"})
    digest = b64(hashlib.sha384(b"msg").digest())
    signed = root.data(root.write("sign/pre/sha2-384", {"input": digest, "prehashed": True}))
    verdict = root.data(root.write("verify/pre/sha2-384", {
        "input": b64(b"msg"), "signature": signed["signature"]}))
    assert verdict == {"valid": True}
    assert errors(root.write("sign/pre", {"input": b64(b"m"), "hash_algorithm": "sha1"}), 400)


def test_export_needs_the_export_permission_and_is_audited_without_material(
        server: InProcessServer, root: Vault) -> None:
    root.write("keys/exp", {"exportable": True, "type": "ed25519"})
    token = _token(server, "transit-reader", [{"keys": "exp", "operations": ["read"]}])
    with server.anonymous() as http:
        reader = Vault(http, token)
        assert errors(reader.request("GET", "export/signing-key/exp"), 403)
        public = reader.data(reader.request("GET", "export/public-key/exp"))
        assert "BEGIN PUBLIC KEY" in public["keys"]["1"]
    private = root.data(root.request("GET", "export/signing-key/exp/1"))["keys"]["1"]
    assert len(base64.b64decode(private)) == 64  # Vault's Ed25519 export: seed || public
    records = _audit(server, key="exp", operation="export")
    assert sorted(r["outcome"] for r in records) == ["denied", "ok"]
    assert private not in str(records)


def test_vaults_put_reaches_the_native_unseal_and_a_text_form_still_does_not(
        server: InProcessServer) -> None:
    with server.anonymous() as http:
        form = http.post("/v1/sys/unseal", content=b"share=x",
                         headers={"content-type": "text/plain"})
        assert form.status_code == 415  # the native framing (security review F15) stays
        vault = http.put("/v1/sys/unseal", content=b'{"key": "not-a-share", "reset": false}')
        assert vault.status_code == 200 and vault.json()["t"] == 2  # already unsealed
        again = http.put("/v1/sys/init", content=b'{"secret_shares": 3, "secret_threshold": 2}')
        assert again.status_code >= 400
        body = again.json()
        assert body["errors"] == [body["error"]["message"]]  # Vault's field beside ours
        status = http.get("/v1/sys/seal-status").json()
        assert (status["sealed"], status["t"], status["n"], status["type"]) == (
            False, 2, 3, "shamir")
        assert status["threshold"] == 2  # keyquorum's own fields stay


def test_a_body_is_read_only_once_its_token_could_be_valid(server: InProcessServer) -> None:
    big = b'{"plaintext": "' + b"A" * (128 * 1024) + b'"}'
    with server.anonymous() as http:
        nobody = http.put("/v1/transit/encrypt/rt", content=big)
        assert errors(nobody, 403) == ["permission denied"]
        assert nobody.headers["connection"] == "close"  # unread: not reused
        wrong = http.put("/v1/transit/encrypt/rt", content=big,
                         headers={"X-Vault-Token": "kq_" + "z" * 43})
        assert errors(wrong, 403) == ["permission denied"]


def test_encrypt_creates_a_missing_key_only_for_a_token_that_may_create_it(
        server: InProcessServer, root: Vault) -> None:
    made = root.data(root.write("encrypt/upserted", {"plaintext": b64(b"x")}))
    assert made["key_version"] == 1
    assert root.data(root.request("GET", "keys/upserted"))["type"] == "aes256-gcm96"
    created = _audit(server, key="upserted", operation="create")
    assert created[0]["detail"]["upsert"] == "true"
    token = _token(server, "transit-encrypt-any", [{"keys": "*", "operations": ["encrypt"]}])
    with server.anonymous() as http:
        user = Vault(http, token)
        assert errors(user.write("encrypt/not-made", {"plaintext": b64(b"x")}), 400)
    assert "not-made" not in _keys(server)


def test_random_and_hash_options(root: Vault) -> None:
    assert len(root.data(root.write("random/all/12", {"format": "hex"}))["random_bytes"]) == 24
    assert errors(root.write("random", {"source": "seal"}), 400)
    assert errors(root.write("random/2048"), 400)  # the native bound: 1024 bytes
    digest = root.data(root.write("hash/sha3-256", {"input": b64(b"abc"), "format": "base64"}))
    assert digest["sum"] == "Ophdp0/iJbIEXBcta9OQvYVfCG4+nVJbRr/iRRFDFTI="


def test_unrecognized_fields_are_named_in_warnings_as_vault_does(root: Vault) -> None:
    root.write("keys/warn")
    answer = root.write("encrypt/warn", {"plaintext": b64(b"x"), "plaintxt": "y", "zz": 1})
    assert answer.status_code == 200
    assert answer.json()["warnings"] == [
        "Endpoint ignored these unrecognized parameters: [plaintxt zz]"]
    clean = root.write("encrypt/warn", {"plaintext": b64(b"x")})
    assert clean.json()["warnings"] is None
