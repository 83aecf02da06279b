"""What every request meets at the front: JSON bodies only, and answers that are not
stored or sniffed (security review F15; 405 ``Allow``, reliability review F9).

- A body must say ``Content-Type: application/json`` (else 415). A cross-site page
  can send a ``text/plain`` "simple request" without a preflight; the review used
  one to initialize a server with shares nobody holds.
- Answers carry plaintexts, data keys, shares and tokens: every one says
  ``Cache-Control: no-store`` and ``X-Content-Type-Options: nosniff``, on the
  crypto front and on the FastAPI routes, success or error; HSTS when TLS is on.
- 405 names the methods the path allows.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from keyquorum.service.core import Core

if TYPE_CHECKING:
    from conftest import CoreFactory

pytestmark = pytest.mark.anyio

INIT = b'{"shares": 3, "threshold": 2}'


@pytest.mark.parametrize("content_type", [
    "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x", None])
async def test_a_json_body_not_sent_as_json_cannot_initialize_the_store(
        fresh_api: httpx.AsyncClient, fresh_core: Core, content_type: str | None) -> None:
    headers = {"Origin": "https://evil.example"}
    if content_type is not None:
        headers["Content-Type"] = content_type

    answer = await fresh_api.post("/v1/sys/init", content=INIT, headers=headers)

    assert answer.status_code == 415, answer.text
    assert "application/json" in answer.json()["error"]["message"]
    assert not fresh_core.initialized
    health = await fresh_api.get("/v1/sys/health")
    assert health.json()["initialized"] is False


async def test_the_same_body_sent_as_json_initializes_it(fresh_api: httpx.AsyncClient,
                                                        fresh_core: Core) -> None:
    """The control: only the media type differed."""
    answer = await fresh_api.post("/v1/sys/init", content=INIT,
                                  headers={"Content-Type": "application/json"})

    assert answer.status_code == 200, answer.text
    assert fresh_core.initialized


@pytest.mark.parametrize("path", ["/v1/keys/app/k/encrypt", "/v1/keys", "/v1/random"])
async def test_a_token_route_refuses_a_text_plain_body_too(api: httpx.AsyncClient,
                                                          path: str) -> None:
    answer = await api.post(path, content=b'{"name": "app/k", "spec": "aes-256-gcm"}',
                            headers={"Content-Type": "text/plain"})

    assert answer.status_code == 415, answer.text
    assert (await api.get("/v1/keys/app/k")).status_code == 404


Request = tuple[str, str, dict[str, Any], int]
ANSWERS: dict[str, Request] = {
    "200 front (ciphertext)": ("POST", "/v1/keys/app/k/encrypt", {"json": {"plaintext": "aGk="}},
                               200),
    "200 front (random)": ("POST", "/v1/random", {"json": {"bytes": 16}}, 200),
    "400 front": ("POST", "/v1/decrypt", {"json": {"ciphertext": "kq1:AAAA"}}, 400),
    "401 front": ("POST", "/v1/keys/app/k/encrypt",
                  {"json": {"plaintext": "aGk="}, "headers": {"Authorization": "Bearer no"}}, 401),
    "413 front": ("POST", "/v1/sys/unseal", {"json": {"share": "a" * 20_000}}, 413),
    "415 front": ("POST", "/v1/keys", {"content": b"{}", "headers": {"Content-Type": "text/xml"}},
                  415),
    "200 route (token)": ("POST", "/v1/auth/tokens", {"json": {"policies": ["key-user"]}}, 200),
    "200 route (health)": ("GET", "/v1/sys/health", {}, 200),
    "200 route (metrics)": ("GET", "/metrics", {}, 200),
    "400 route": ("POST", "/v1/keys/app/k/rotate", {"json": {"junk": 1}}, 400),
    "401 route": ("GET", "/v1/keys", {"headers": {"Authorization": "Bearer no"}}, 401),
    "404 route": ("GET", "/v1/keys/app/none", {}, 404),
    "404 path": ("GET", "/v1/nothing-here", {}, 404),
    "405 route": ("DELETE", "/v1/sys/health", {}, 405),
}


@pytest.mark.parametrize("request_", ANSWERS.values(), ids=ANSWERS.keys())
async def test_every_answer_says_no_store_and_nosniff(api: httpx.AsyncClient,
                                                      request_: Request) -> None:
    await api.post("/v1/keys", json={"name": "app/k", "spec": "aes-256-gcm"})
    method, path, options, status = request_

    answer = await api.request(method, path, **options)

    assert answer.status_code == status, answer.text
    assert set(answer.headers.get_list("cache-control")) == {"no-store"}
    assert answer.headers.get_list("x-content-type-options") == ["nosniff"]
    assert "strict-transport-security" not in answer.headers  # plain HTTP: HSTS means nothing


class TestWithTls:
    @pytest.fixture
    def core(self, make_core: CoreFactory, tmp_path: Path) -> Core:
        # The front only asks whether TLS is configured; the files are never read here.
        return make_core(tls_cert=tmp_path / "cert.pem", tls_key=tmp_path / "key.pem")

    @pytest.mark.parametrize("request_", [ANSWERS["200 front (random)"], ANSWERS["401 route"],
                                          ANSWERS["200 route (health)"]])
    async def test_every_answer_carries_hsts_when_tls_is_on(self, api: httpx.AsyncClient,
                                                           request_: Request) -> None:
        method, path, options, status = request_

        answer = await api.request(method, path, **options)

        assert answer.status_code == status, answer.text
        assert answer.headers["strict-transport-security"].startswith("max-age=")
        assert answer.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("DELETE", "/v1/sys/health", {"GET"}),
    ("DELETE", "/v1/sys/init", {"POST"}),  # GET is Vault's init status (transit)
    ("PATCH", "/v1/sys/unseal", {"POST"}),  # PUT is Vault's unseal (transit/vaultseal.py)
    ("DELETE", "/v1/auth/tokens", {"POST"}),
])
async def test_a_method_the_path_does_not_allow_is_405_naming_the_allowed_ones(
        api: httpx.AsyncClient, method: str, path: str, allowed: set[str]) -> None:
    answer = await api.request(method, path)

    assert answer.status_code == 405, answer.text
    assert answer.json()["error"]["code"] == "invalid_request"
    assert {m.strip() for m in answer.headers["allow"].split(",")} == allowed


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("PUT", "/v1/keys", {"GET", "POST"}),
    ("POST", "/v1/policies/some-policy", {"GET", "PUT", "DELETE"}),
])
async def test_405_on_a_path_with_several_routes_names_every_allowed_method(
        api: httpx.AsyncClient, method: str, path: str, allowed: set[str]) -> None:
    answer = await api.request(method, path)

    assert answer.status_code == 405, answer.text
    assert {m.strip() for m in answer.headers["allow"].split(",")} == allowed


@pytest.mark.parametrize("path", ["/v1/decrypt", "/v1/reencrypt", "/v1/random"])
async def test_a_crypto_path_asked_with_get_is_405_allow_post(api: httpx.AsyncClient,
                                                             path: str) -> None:
    answer = await api.get(path)

    assert answer.status_code == 405, answer.text
    assert answer.headers["allow"] == "POST"
