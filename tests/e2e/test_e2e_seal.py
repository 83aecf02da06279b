"""A restarted server process comes back sealed, and its keys survive (over real HTTP).

(Init, unseal and seal themselves: tests/seal/test_init_unseal_seal.py, in process.)"""

from __future__ import annotations

import httpx
import pytest

from http_helpers import assert_error, create_key, encrypt, ok, unb64, unique
from kq_support import ServerProcess


@pytest.mark.server
def test_restart_comes_back_sealed_and_keys_survive(kq_server: ServerProcess) -> None:
    name = unique("survive")
    plaintexts = [b"first", b"second", b""]
    with kq_server.client() as http:
        create_key(http, name, "aes-256-gcm")
        sealed_texts = [encrypt(http, name, p, {"t": "1"})["ciphertext"] for p in plaintexts]
        signer = unique("survive-sig")
        create_key(http, signer, "ed25519")
        pem = ok(http.get(f"/v1/keys/{signer}/public-key"))["public_key_pem"]

    kq_server.restart()
    health = httpx.get(f"{kq_server.addr}/v1/sys/health")
    assert health.status_code == 503
    assert (health.json()["initialized"], health.json()["sealed"]) == (True, True)
    with kq_server.client() as http:
        assert_error(http.post(f"/v1/keys/{name}/encrypt", json={"plaintext": ""}),
                     503, "sealed")
        assert_error(http.post("/v1/decrypt", json={"ciphertext": sealed_texts[0]}),
                     503, "sealed")
        assert_error(http.get(f"/v1/keys/{name}"), 503, "sealed")

    kq_server.unseal([kq_server.shares[2], kq_server.shares[0]])
    assert httpx.get(f"{kq_server.addr}/v1/sys/health").status_code == 200
    with kq_server.client() as http:
        for text, plain in zip(sealed_texts, plaintexts, strict=True):
            answer = ok(http.post("/v1/decrypt", json={"ciphertext": text,
                                                      "context": {"t": "1"}}))
            assert unb64(answer["plaintext"]) == plain
            assert answer["key"] == name
        assert ok(http.get(f"/v1/keys/{signer}/public-key"))["public_key_pem"] == pem
