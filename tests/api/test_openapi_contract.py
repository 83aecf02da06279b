"""The OpenAPI document is the contract: complete, committed, and behind a token.

- It lists exactly the routes of API.md's tables, the crypto routes the front
  answers included (reliability review F2: 11 were missing).
- Every body-taking operation declares its request schema; no operation
  declares the 422 this server never sends; every one declares the error body.
- ``docs/openapi.json`` is what the server serves (``scripts/gen-openapi``).
- ``/openapi.json`` needs a token (security review F15), and test-only routes
  appear only on servers started with them.
"""

from __future__ import annotations

import json
import re
import runpy
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from keyquorum.api.openapi import build_document

if TYPE_CHECKING:
    from conftest import CoreFactory

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _normalized(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def api_md_routes() -> set[tuple[str, str]]:
    """(method, path) of every row of docs/API.md's route tables."""
    routes: set[tuple[str, str]] = set()
    for line in (ROOT / "docs" / "API.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0] or any(
                word not in METHODS for word in cells[0].replace("·", " ").split()):
            continue
        methods = cells[0].replace("·", " ").split()
        paths = re.findall(r"`(/[^`]*)`", cells[1])
        if not paths:
            continue
        full = [paths[0]]
        for alternative in paths[1:]:  # `/v1/x/approve` · `/reject`: same parent
            full.append(alternative if alternative.count("/") > 1
                        else paths[0].rsplit("/", 1)[0] + alternative)
        routes.update((method, _normalized(path)) for method in methods for path in full)
    return routes


def document_routes(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), _normalized(path))
            for path, item in document["paths"].items() for method in item}


def test_api_md_and_the_document_list_the_same_routes(app: Any) -> None:
    documented = api_md_routes()
    served = document_routes(build_document(app.app))

    assert len(documented) > 60
    assert documented - served == set(), "in API.md but not in the document"
    assert served - documented == set(), "in the document but not in API.md"


def test_every_crypto_route_of_the_front_is_in_the_document(app: Any) -> None:
    paths = build_document(app.app)["paths"]

    for segment in ("encrypt", "decrypt", "datakey", "sign", "verify", "mac", "verify-mac",
                    "decapsulate"):
        operation = paths[f"/v1/keys/{{name}}/{segment}"]["post"]
        assert operation["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    for path in ("/v1/decrypt", "/v1/reencrypt", "/v1/random"):
        assert "200" in paths[path]["post"]["responses"]


def test_operations_declare_bodies_errors_and_never_422(app: Any) -> None:
    document = build_document(app.app)
    schemas = document["components"]["schemas"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert "422" not in responses, (method, path)
            for status in ("400", "401", "403", "413", "503"):
                assert status in responses, (method, path, status)
            body = operation.get("requestBody")
            if body is not None:
                schema = body["content"]["application/json"]["schema"]
                refs = re.findall(r"#/components/schemas/(\w+)", json.dumps(schema))
                assert all(ref in schemas for ref in refs), (method, path, refs)
    assert {"CreateKey", "EncryptItem", "Error"} <= set(schemas)
    create = document["paths"]["/v1/keys"]["post"]["requestBody"]
    assert create["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CreateKey"}
    assert schemas["CreateKey"]["additionalProperties"] is False


def test_the_committed_document_is_the_one_the_server_builds() -> None:
    generator = runpy.run_path(str(ROOT / "scripts" / "gen-openapi"), run_name="gen_openapi")
    committed = (ROOT / "docs" / "openapi.json").read_text()
    assert committed == generator["render"](), "docs/openapi.json is stale: run scripts/gen-openapi"


async def test_openapi_json_needs_a_token(anonymous_api: httpx.AsyncClient,
                                          api: httpx.AsyncClient, app: Any) -> None:
    refused = await anonymous_api.get("/openapi.json")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthenticated"

    served = await api.get("/openapi.json")
    assert served.status_code == 200
    assert served.json() == json.loads(json.dumps(build_document(app.app, test_clock=True)))
    assert "/v1/sys/unsafe/clock" in served.json()["paths"]  # this core runs a test clock


def test_test_only_routes_are_absent_unless_the_server_was_started_with_them(
        make_core: CoreFactory) -> None:
    from keyquorum.api.app import create_app

    plain = make_core(unsafe_test_clock=False)
    document = build_document(create_app(plain, run_scheduler=False).app, test_clock=False)
    assert "/v1/sys/unsafe/clock" not in document["paths"]
    committed = json.loads((ROOT / "docs" / "openapi.json").read_text())
    assert "/v1/sys/unsafe/clock" not in committed["paths"]


def test_the_key_state_filter_names_every_key_state() -> None:
    from typing import get_args

    from keyquorum.api.routes_keys import KeyStateName
    from keyquorum.keys.states import KeyState

    assert set(get_args(KeyStateName)) == {state.value for state in KeyState}
