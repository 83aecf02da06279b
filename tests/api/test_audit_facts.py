"""Each change's audit record carries its facts, passed as values, not through the context.

Services used to write their facts (a revoke's reason, the versions a trim erased,
a new token's accessor) into ``ctx.detail``, a mutable side channel whatever wrote
the record later read. Now a change hands its facts to its own record
(``write_audit_in(detail=)``, ``Change.detail``, ``Audited(detail=)``), the route
passes the request's facts to the pipeline (``Runner.run(detail=)``), and a
refusal carries its own (``error.audit_detail``). These tests read the records back
through ``GET /v1/audit``; the last one checks by AST that no service or route
writes ``ctx.detail`` any more.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.anyio

SRC = Path(__file__).resolve().parents[2] / "src" / "keyquorum"


async def records(api: httpx.AsyncClient, operation: str) -> list[dict[str, Any]]:
    answer = await api.get("/v1/audit", params={"operation": operation})
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["records"]
    return found


def facts(record: dict[str, Any]) -> dict[str, str]:
    """A record's detail (absent from the JSON when it has none)."""
    detail: dict[str, str] = record.get("detail") or {}
    return detail


async def create_key(api: httpx.AsyncClient, name: str) -> None:
    made = await api.post("/v1/keys", json={"name": name, "spec": "aes-256-gcm"})
    assert made.status_code in (200, 201), made.text


async def test_a_revoke_records_its_reason_and_note(api: httpx.AsyncClient) -> None:
    await create_key(api, "facts/revoked")
    answer = await api.post("/v1/keys/facts/revoked/revoke",
                            json={"reason": "compromised", "note": "laptop stolen"})
    assert answer.status_code == 200, answer.text

    [record] = [r for r in await records(api, "revoke") if r["key"] == "facts/revoked"]
    assert record["outcome"] == "ok"
    assert record["detail"]["reason"] == "compromised"
    assert record["detail"]["note"] == "laptop stolen"


async def test_a_refused_trim_is_told_apart_from_a_refused_deletion(
        api: httpx.AsyncClient) -> None:
    await create_key(api, "facts/trim")
    await api.post("/v1/keys/facts/trim/rotate")
    # min_decrypt_version is still 1: nothing below 2 may be erased yet
    answer = await api.post("/v1/keys/facts/trim/destroy-versions", json={"below": 2})
    assert answer.status_code == 409, answer.text

    [record] = [r for r in await records(api, "delete") if r["key"] == "facts/trim"]
    assert record["outcome"] == "error"
    assert record["error_code"] == "key_state"
    assert record["detail"]["action"] == "destroy-versions"
    assert record["detail"]["below"] == "2"


async def test_a_cancelled_deletion_names_its_action(api: httpx.AsyncClient) -> None:
    await create_key(api, "facts/kept")
    scheduled = await api.post("/v1/keys/facts/kept/schedule-deletion", json={"days": 7})
    assert scheduled.status_code == 200, scheduled.text
    cancelled = await api.post("/v1/keys/facts/kept/cancel-deletion")
    assert cancelled.status_code == 200, cancelled.text

    deletes = [r for r in await records(api, "delete") if r["key"] == "facts/kept"]
    assert sorted(str(facts(r).get("action")) for r in deletes) \
        == ["None", "cancel-deletion"]


async def test_token_records_name_the_token_made_and_every_token_revoked_with_it(
        api: httpx.AsyncClient) -> None:
    parent = (await api.post("/v1/auth/tokens", json={"policies": ["root"]})).json()
    headers = {"Authorization": f"Bearer {parent['token']}"}
    child = (await api.post("/v1/auth/tokens", json={"policies": ["root"]},
                            headers=headers)).json()
    revoked = await api.delete(f"/v1/auth/tokens/{parent['accessor']}")
    assert revoked.status_code == 200, revoked.text

    token_records = await records(api, "sys:tokens")
    made = {facts(r).get("created_accessor") for r in token_records}
    assert {parent["accessor"], child["accessor"]} <= made
    [revoke] = [r for r in token_records if "revoked_accessor" in facts(r)]
    assert revoke["detail"]["revoked_accessor"] == parent["accessor"]
    assert revoke["detail"]["cascade"] == "1"


async def test_policy_records_name_the_policy_when_refused_too(api: httpx.AsyncClient) -> None:
    good = await api.put("/v1/policies/facts-reader",
                         json={"rules": [{"keys": "facts/*", "operations": ["read"]}]})
    assert good.status_code == 200, good.text
    bad = await api.put("/v1/policies/facts-broken",
                        json={"rules": [{"keys": "facts/*", "operations": ["no-such-op"]}]})
    assert bad.status_code == 400, bad.text

    named = [(r["outcome"], facts(r)["policy"]) for r in await records(api, "sys:policies")
             if "policy" in facts(r)]
    assert ("ok", "facts-reader") in named
    assert ("error", "facts-broken") in named


async def test_a_backup_record_names_the_backup_it_made(api: httpx.AsyncClient) -> None:
    answer = await api.get("/v1/sys/backup")
    assert answer.status_code == 200
    backup_id = answer.headers["x-keyquorum-backup-id"]

    [record] = await records(api, "sys:backup")
    assert record["detail"]["backup_id"] == backup_id
    assert int(record["detail"]["canaries"]) >= 0


async def test_a_key_list_records_its_prefix(api: httpx.AsyncClient) -> None:
    answer = await api.get("/v1/keys", params={"prefix": "facts/"})
    assert answer.status_code == 200, answer.text
    [record] = await records(api, "list")
    assert record["detail"]["prefix"] == "facts/"


# Modules that may set ``ctx.detail``: the pipeline, and fronts naming a request's
# protocol and path before any call (a scheduled job is its own front).
FRONTS = {
    "api/runner.py", "api/front.py", "api/errors.py", "kms/front.py", "kms/expiry.py",
    "transit/front.py", "transit/native_crypto.py",
}
# Still being moved to values (each change hands its facts to its own record): none.
CONVERTING: set[str] = set()


def _writes_ctx_detail(tree: ast.AST) -> list[int]:
    """Lines assigning ``….detail`` of a context, its items, or calling ``update`` on it."""
    lines = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in ("update", "setdefault", "pop", "clear"):
            targets = [node.func.value]
        for target in targets:
            while isinstance(target, ast.Subscript):
                target = target.value
            if isinstance(target, ast.Attribute) and target.attr == "detail" \
                    and "ctx" in ast.unparse(target.value):
                lines.append(node.lineno)
    return lines


def test_no_service_or_route_writes_facts_into_the_request_context() -> None:
    writers = {}
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        if relative in FRONTS or relative in CONVERTING:
            continue
        lines = _writes_ctx_detail(ast.parse(path.read_text(), str(path)))
        if lines:
            writers[relative] = lines
    assert writers == {}


def test_the_check_finds_a_write() -> None:
    sample = "def f(ctx):\n    ctx.detail['a'] = 'b'\n    call.ctx.detail.update(x=1)\n"
    assert _writes_ctx_detail(ast.parse(sample)) == [2, 3]
