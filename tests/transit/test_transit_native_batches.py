"""rewrap, sign, verify and hmac batches run on the native batch path: one audit record
per group of like items (``items``, ``batch_size``), not one per item; every item is
still authorized and fails alone, and ``reference`` is echoed."""

from __future__ import annotations

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


def _records(server: InProcessServer, key: str, operation: str) -> list[dict[str, Any]]:
    with server.client() as http:
        answer = http.get("/v1/audit", params={"key": key, "operation": operation,
                                               "limit": "1000"})
        return [r for r in answer.json()["records"]
                if r["detail"].get("path", "").startswith("transit/")]


def _batch(root: Vault, path: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    answer = root.write(path, {"batch_input": items})
    assert answer.status_code == 200, answer.text  # Vault: 200 for these, failures inside
    return list(answer.json()["data"]["batch_results"])


def _groups(records: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return sorted((r["outcome"], r["detail"]["items"], r["detail"]["batch_size"])
                  for r in records)


def test_sign_and_verify_batches_write_a_record_per_group(
        server: InProcessServer, root: Vault) -> None:
    root.data(root.write("keys/nb-sign", {"type": "ecdsa-p256"}))
    signed = _batch(root, "sign/nb-sign", [
        {"input": b64(b"a"), "reference": "a"}, {"input": b64(b"b"), "reference": 2},
        {"input": "!!", "reference": "bad"}, {"input": b64(b"c")}])
    assert [r["reference"] for r in signed] == ["a", 2, "bad", ""]
    assert "error" in signed[2] and all("signature" in signed[i] for i in (0, 1, 3))
    assert _groups(_records(server, "nb-sign", "sign")) == [("error", "1", "4"),
                                                             ("ok", "3", "4")]
    checked = _batch(root, "verify/nb-sign", [
        {"input": b64(b"a"), "signature": signed[0]["signature"], "reference": "good"},
        {"input": b64(b"b"), "signature": signed[0]["signature"], "reference": "wrong"},
        {"input": b64(b"a"), "signature": "nonsense", "reference": "malformed"}])
    assert [(r["reference"], r["valid"]) for r in checked] == [
        ("good", True), ("wrong", False), ("malformed", False)]
    assert "error" in checked[2] and "error" not in checked[1]
    assert len(_records(server, "nb-sign", "verify")) == 2  # ok (2 items), error (1)


def test_hmac_batches_and_their_verification(server: InProcessServer, root: Vault) -> None:
    root.data(root.write("keys/nb-mac", {"type": "hmac"}))
    tagged = _batch(root, "hmac/nb-mac", [{"input": b64(b"x"), "reference": 1},
                                          {"input": b64(b"y"), "reference": 2}])
    assert all(r["hmac"].startswith("vault:v1:") for r in tagged)
    checked = _batch(root, "verify/nb-mac", [
        {"input": b64(b"x"), "hmac": tagged[0]["hmac"]},
        {"input": b64(b"x"), "hmac": tagged[1]["hmac"]}])
    assert [r["valid"] for r in checked] == [True, False]
    assert _groups(_records(server, "nb-mac", "mac")) == [("ok", "2", "2"), ("ok", "2", "2")]


def test_rewrap_batches_refuse_another_keys_ciphertext_alone(
        server: InProcessServer, root: Vault) -> None:
    root.data(root.write("keys/nb-wrap"))
    root.data(root.write("keys/nb-other"))
    mine = root.data(root.write("encrypt/nb-wrap", {"plaintext": b64(b"m")}))["ciphertext"]
    other = root.data(root.write("encrypt/nb-other", {"plaintext": b64(b"o")}))["ciphertext"]
    root.data(root.write("keys/nb-wrap/rotate"))
    wrapped = _batch(root, "rewrap/nb-wrap", [{"ciphertext": mine, "reference": "m"},
                                              {"ciphertext": other, "reference": "o"}])
    assert wrapped[0]["ciphertext"].startswith("vault:v2:") and wrapped[0]["key_version"] == 2
    assert wrapped[1] == {"error": "the ciphertext belongs to another key", "reference": "o"}
    plain = root.data(root.write("decrypt/nb-wrap", {"ciphertext": wrapped[0]["ciphertext"]}))
    assert plain["plaintext"] == b64(b"m")
    assert _groups(_records(server, "nb-wrap", "reencrypt")) == [("error", "1", "2"),
                                                                  ("ok", "1", "2")]
    # a missing path key: nothing is rewrapped, even another key's ciphertext
    missing = _batch(root, "rewrap/nb-none", [{"ciphertext": other, "reference": 1}])
    assert missing == [{"error": "no key named nb-none", "reference": 1}]


def test_each_item_is_still_authorized(server: InProcessServer, root: Vault) -> None:
    root.data(root.write("keys/nb-auth", {"type": "ed25519"}))
    with server.client() as http:
        assert http.put("/v1/policies/nb-verifier", json={"rules": [
            {"keys": "nb-auth", "operations": ["verify"]}]}).status_code == 200
        token = http.post("/v1/auth/tokens", json={"policies": ["nb-verifier"]}
                          ).json()["token"]
    with server.anonymous() as http:
        weak = Vault(http, token)
        refused = _batch(weak, "sign/nb-auth", [{"input": b64(b"a"), "reference": "r"}])
        assert refused[0]["error"].startswith("permission denied")
        assert refused[0]["reference"] == "r"
        assert errors(weak.write("sign/nb-auth", {"input": b64(b"a")}), 403)
