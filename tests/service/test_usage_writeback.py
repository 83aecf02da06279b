"""A seal writes back what the hot path kept in memory: exact counts and the last use."""

from __future__ import annotations

import base64

from http_helpers import create_key, ok, unique
from inprocess_server import InProcessServer


def test_a_seal_right_after_a_use_keeps_its_count_and_its_time(
        inprocess_server: InProcessServer) -> None:
    name = unique("wb/k")
    with inprocess_server.client() as root:
        create_key(root, name, "aes-256-gcm")
        for _ in range(2):
            ok(root.post(f"/v1/keys/{name}/encrypt",
                         json={"plaintext": base64.b64encode(b"x").decode()}))
        ok(root.post("/v1/sys/seal"))  # before any scheduler run could flush anything
    inprocess_server.unseal()
    with inprocess_server.client() as root:
        key = ok(root.get(f"/v1/keys/{name}"))
    assert key["versions"][0]["protect_count"] == 2  # not the 4096 reserved
    assert key["last_used_at"] and key["versions"][0]["last_used_at"]
