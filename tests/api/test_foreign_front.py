"""A foreign front end (AWS KMS, Vault transit) answers through the native pipeline.

A toy protocol here claims ``/toy/...``, finds its caller in its own header and
runs one operation through ``Runner.execute``: the native policy decides, the
audit chain records the operation (with the front's detail), the body limit and
the no-store headers of the native front apply, and an unknown caller is counted
as anonymous, not written as a record.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from tests.conftest import BASE_URL, asgi, lifespan

from keyquorum.api.foreign import Receive, Scope, Send
from keyquorum.api.front import Front, read_body
from keyquorum.api.services import Services
from keyquorum.errors import KeyquorumError
from keyquorum.service.context import RequestContext, next_request_id

pytestmark = pytest.mark.anyio


class ToyFront:
    """Reads ``X-Toy-Token`` as a keyquorum token; ``POST /toy/describe/<key>``."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def claims(self, scope: Scope) -> bool:
        return str(scope["path"]).startswith("/toy/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runner = self.services.runner
        token = dict(scope["headers"]).get(b"x-toy-token", b"").decode()
        ctx = RequestContext(request_id=next_request_id(), client="toy-client")
        name = str(scope["path"]).removeprefix("/toy/describe/")
        try:
            body = await read_body(receive, 1024 * 1024)
            answer = await runner.execute(
                ctx, "key:describe", name,
                lambda _ctx: {"name": name, "bytes": len(body)},
                permission="key:describe",
                credential=lambda c: runner.authenticate(f"Bearer {token}", c),
                detail={"via": "toy"})
            status, payload = 200, orjson.dumps(answer)
        except KeyquorumError as error:
            status, payload = error.status, orjson.dumps({"toy_error": error.code})
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/toy")]})
        await send({"type": "http.response.body", "body": payload})


@pytest.fixture
async def toy(app: Front) -> Any:
    app.foreign = (ToyFront(app.services),)
    async with lifespan(app):
        yield httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi(app)),
                                base_url=BASE_URL)


async def _audit(api: httpx.AsyncClient, **filters: str) -> list[dict[str, Any]]:
    answer = await api.get("/v1/audit", params={"limit": "1000", **filters})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["records"])


async def test_a_foreign_call_is_authorized_by_the_native_policy_and_audited(
        api: httpx.AsyncClient, toy: httpx.AsyncClient, root_token: str) -> None:
    answer = await toy.post("/toy/describe/team/k1", content=b"<not json>",
                            headers={"x-toy-token": root_token,
                                     "content-type": "application/x-toy"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"name": "team/k1", "bytes": 10}
    assert answer.headers["cache-control"] == "no-store"  # the native front's headers
    assert answer.headers["x-content-type-options"] == "nosniff"
    records = await _audit(api, operation="key:describe", key="team/k1")
    assert [(r["outcome"], r["detail"]) for r in records] == [("ok", {"via": "toy"})]


async def test_a_foreign_call_without_the_permission_is_denied_and_audited(
        api: httpx.AsyncClient, toy: httpx.AsyncClient, mint_token: Any) -> None:
    weak = await mint_token([{"keys": "team/*", "operations": ["encrypt"]}])
    answer = await toy.post("/toy/describe/team/k2", headers={"x-toy-token": weak})
    assert answer.status_code == 403
    assert answer.json() == {"toy_error": "forbidden"}
    records = await _audit(api, operation="key:describe", key="team/k2")
    assert [r["outcome"] for r in records] == ["denied"]


async def test_a_foreign_body_over_the_limit_is_refused_while_it_streams(
        app: Front, toy: httpx.AsyncClient, root_token: str) -> None:
    limit = app.services.core.settings.max_body_bytes
    answer = await toy.post("/toy/describe/team/k1", content=b"x" * (limit + 1),
                            headers={"x-toy-token": root_token})
    assert answer.status_code == 413
    assert answer.json() == {"toy_error": "too_large"}


async def test_an_unknown_foreign_caller_is_counted_not_written(
        api: httpx.AsyncClient, toy: httpx.AsyncClient) -> None:
    for _ in range(20):
        answer = await toy.post("/toy/describe/team/k3", headers={"x-toy-token": "nope"})
        assert answer.status_code == 401
    assert await _audit(api, operation="key:describe", key="team/k3") == []


def test_no_foreign_front_claims_a_native_crypto_path(app: Front) -> None:
    """The front answers native crypto paths before asking the foreign fronts (the hot
    path skips their checks), which is right only while none of them could claim one."""
    from keyquorum.api.crypto_routes import KEY_ROUTES, KEYLESS_ROUTES

    paths = [*KEYLESS_ROUTES, *(f"/v1/keys/app/k/{segment}" for segment in KEY_ROUTES),
             *(f"/v1/keys/{segment}/{segment}" for segment in KEY_ROUTES)]
    assert app.foreign, "the app has its foreign fronts"
    for front in app.foreign:
        for path in paths:
            scope = {"type": "http", "method": "POST", "path": path, "headers": []}
            assert not front.claims(scope), (type(front).__name__, path)
