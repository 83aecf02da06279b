"""Rule conditions behind a trusted proxy: address ranges of IPv6 clients, from the
X-Forwarded-For that the server process's HTTP layer believes (``trusted_proxies``).

(Conditions themselves, in process: tests/auth/test_roles_conditions.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from http_helpers import assert_error, b64, create_key, encrypt, ok, unique
from kq_support import ServerProcess, configured_server

pytestmark = pytest.mark.server


def holder(server: ServerProcess, root: httpx.Client, policy: str,
           rules: list[dict[str, Any]]) -> httpx.Client:
    """A client whose token holds only ``policy``, freshly written with ``rules``."""
    ok(root.put(f"/v1/policies/{policy}", json={"rules": rules}))
    token = ok(root.post("/v1/auth/tokens", json={"policies": [policy]}))["token"]
    return server.client(token)


@pytest.fixture
def behind_proxy(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server that believes X-Forwarded-For from 127.0.0.1 (a reverse proxy on the host)."""
    server = configured_server(tmp_path, {"trusted_proxies": ["127.0.0.1"]})
    try:  # stopped even when start, init or unseal fails
        server.start()
        server.init()
        server.unseal()
        yield server
    finally:
        server.stop()


def test_ipv6_source_ranges_through_a_trusted_proxy(behind_proxy: ServerProcess) -> None:
    with behind_proxy.client() as root:
        name = unique("v6/key")
        create_key(root, name, "aes-256-gcm")
        text = encrypt(root, name, b"v6")["ciphertext"]
        rules = [{"keys": "v6/*", "operations": ["decrypt"],
                  "conditions": {"source": ["2001:db8:aa::/48", "192.0.2.0/24"]}}]
        with holder(behind_proxy, root, "v6-office", rules) as http:
            def decrypt(forwarded: str) -> httpx.Response:
                return http.post("/v1/decrypt", json={"ciphertext": text},
                                 headers={"X-Forwarded-For": forwarded})

            assert ok(decrypt("2001:db8:aa::17"))["plaintext"] == b64(b"v6")
            ok(decrypt("192.0.2.44"))
            assert_error(decrypt("2001:db8:ab::17"), 403, "forbidden")
            assert_error(decrypt("198.51.100.7"), 403, "forbidden")
            assert_error(http.post("/v1/decrypt", json={"ciphertext": text}),
                         403, "forbidden")  # the proxy itself (127.0.0.1) is not in range
        clients = {(r["client"], r["outcome"]) for r in ok(root.get(
            "/v1/audit", params={"key": name, "operation": "decrypt"}))["records"]}
        assert ("2001:db8:aa::17", "ok") in clients
        assert ("2001:db8:ab::17", "denied") in clients
