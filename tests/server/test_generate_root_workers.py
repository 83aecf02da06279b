"""Break glass across two workers: one attempt in the store, whichever worker takes a step."""

from __future__ import annotations

import pytest

from keyquorum.auth.break_glass import open_root_token
from keyquorum.crypto import kem_box
from kq_support import ServerProcess
from server.test_server_workers import fresh, workers_seen


@pytest.mark.server
def test_generate_root_holds_across_workers(two_workers: ServerProcess) -> None:
    server = two_workers
    assert len(workers_seen(server)) == 2
    init = fresh(server, "POST", "/v1/sys/init", json={"shares": 5, "threshold": 3}).json()
    shares = init["shares"]
    for share in shares[:3]:
        fresh(server, "POST", "/v1/sys/unseal", json={"share": share})
    private_pem, public_pem = kem_box.generate()
    opened = fresh(server, "POST", "/v1/sys/generate-root/init",
                   json={"public_key": public_pem, "share": shares[3]})
    assert opened.status_code == 200, opened.text
    nonce = opened.json()["nonce"]
    # Every worker sees the one attempt: none opens a second, all show its progress.
    for _ in range(6):
        again = fresh(server, "POST", "/v1/sys/generate-root/init",
                      json={"public_key": public_pem, "share": shares[4]})
        assert again.status_code == 409, again.text
        assert fresh(server, "GET", "/v1/sys/generate-root").json()["progress"] == 1
    second = fresh(server, "POST", "/v1/sys/generate-root/update",
                   json={"nonce": nonce, "share": shares[0]})
    assert second.json()["progress"] == 2, second.text
    done = fresh(server, "POST", "/v1/sys/generate-root/update",
                 json={"nonce": nonce, "share": shares[4]}).json()
    token = open_root_token(private_pem, done["encoded_token"], done["attempt"])
    # The token works on both workers.
    assert all(fresh(server, "GET", "/v1/auth/tokens/self", token).json()["policies"]
               == ["root"] for _ in range(6))
