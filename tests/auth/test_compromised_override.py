"""Reading under a compromised version needs its own permission, not just decrypt."""

from __future__ import annotations

import base64

from inprocess_server import InProcessServer


def test_override_needs_unprotect_compromised(shared_inprocess: InProcessServer) -> None:
    with shared_inprocess.client() as root:
        assert root.post("/v1/keys", json={"name": "ir/k", "spec": "aes-256-gcm"}).is_success
        plaintext = base64.b64encode(b"old data").decode()
        ct = root.post("/v1/keys/ir/k/encrypt", json={"plaintext": plaintext}).json()
        assert root.post("/v1/keys/ir/k/revoke",
                         json={"version": 1, "reason": "compromised"}).is_success
        for name, operations in [("ir-decrypt", ["decrypt"]),
                                 ("ir-override", ["decrypt", "unprotect-compromised"])]:
            assert root.put(f"/v1/policies/{name}", json={"rules": [
                {"keys": "ir/*", "operations": operations}]}).is_success
        plain_user = root.post("/v1/auth/tokens", json={"policies": ["ir-decrypt"]}).json()
        responder = root.post("/v1/auth/tokens", json={"policies": ["ir-override"]}).json()

    body = {"ciphertext": ct["ciphertext"], "unsafe_allow_compromised": True}
    with shared_inprocess.client(plain_user["token"]) as http:
        refused = http.post("/v1/decrypt", json=body)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "forbidden"
        without = http.post("/v1/decrypt", json={"ciphertext": ct["ciphertext"]})
        assert without.status_code == 409 and without.json()["error"]["code"] == "key_state"
    with shared_inprocess.client(responder["token"]) as http:
        allowed = http.post("/v1/decrypt", json=body)
        assert allowed.status_code == 200 and allowed.json()["plaintext"] == plaintext
