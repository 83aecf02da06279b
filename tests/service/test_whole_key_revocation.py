"""Revoking a whole key: every version the reason applies to moves, the rest stay."""

from __future__ import annotations

import base64

import pytest

from inprocess_server import InProcessServer

pytestmark = pytest.mark.postgresql


def test_whole_key_revocation_after_rotation(shared_inprocess: InProcessServer) -> None:
    plaintext = base64.b64encode(b"kept").decode()
    with shared_inprocess.client() as http:
        assert http.post("/v1/keys", json={"name": "rv/k", "spec": "aes-256-gcm"}).is_success
        old = http.post("/v1/keys/rv/k/encrypt", json={"plaintext": plaintext}).json()
        assert http.post("/v1/keys/rv/k/rotate").is_success  # v1 deactivated, v2 active

        retired = http.post("/v1/keys/rv/k/revoke", json={"reason": "superseded"})
        assert retired.status_code == 200, retired.text
        assert [v["state"] for v in retired.json()["versions"]] == ["deactivated"] * 2
        refused = http.post("/v1/keys/rv/k/encrypt", json={"plaintext": plaintext})
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "key_state"
        still = http.post("/v1/decrypt", json={"ciphertext": old["ciphertext"]})
        assert still.status_code == 200 and still.json()["plaintext"] == plaintext

        again = http.post("/v1/keys/rv/k/revoke", json={"reason": "superseded"})
        assert again.status_code == 409 and again.json()["error"]["code"] == "key_state"

        compromised = http.post("/v1/keys/rv/k/revoke", json={"reason": "compromised"})
        assert compromised.status_code == 200
        assert [v["state"] for v in compromised.json()["versions"]] == ["compromised"] * 2
        gone = http.post("/v1/decrypt", json={"ciphertext": old["ciphertext"]})
        assert gone.status_code == 409
