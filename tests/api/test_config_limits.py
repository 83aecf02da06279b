"""Limits set in the config file apply to requests (the real app, in process).

(Moved from tests/server/test_server_tls_and_config.py: no server process needed.)"""

from __future__ import annotations

from conftest import MakeInProcess


def test_config_limits_apply(make_inprocess: MakeInProcess) -> None:
    server = make_inprocess(config={"max_item_bytes": 16, "max_batch_items": 2})
    server.init()
    server.unseal()
    with server.client() as http:
        assert http.post("/v1/keys", json={"name": "k", "spec": "aes-256-gcm"}).is_success
        ok = http.post("/v1/keys/k/encrypt", json={"plaintext": "QUFBQUFBQUFBQUFBQUFBQQ=="})
        assert ok.status_code == 200  # 16 bytes
        big = http.post("/v1/keys/k/encrypt", json={"plaintext": "QUFBQUFBQUFBQUFBQUFBQUE="})
        assert big.status_code == 413 and big.json()["error"]["code"] == "too_large"
        batch = http.post("/v1/keys/k/encrypt",
                          json={"batch": [{"plaintext": "QQ=="}] * 3})
        assert batch.status_code == 413
