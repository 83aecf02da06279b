"""Review F7, the rest: approvers see the complete request of every dual-controlled action.

Policy changes already showed every rule and a diff, and seal changes every public
parameter; the other actions showed an allow-listed summary with values cut at 512
characters (a 1,000-character revoke note lost its end). Now every approval carries
the complete request (``request``: the parameters it is for, exactly what its hash
covers), no summary value is cut, and a request too long to read whole is refused.
``destroy-versions`` (erasing material at once) is its own action, guarded wherever
``schedule-deletion`` is. Dual control's audit facts reach each record as values.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from conftest import CoreFactory
from dual_control_support import Cast, cast, needs_approval
from http_helpers import assert_error, create_key, ok, unique
from inprocess_server import InProcessServer
from keyquorum.auth.approvals import MAX_REQUEST_SHOWN, ApprovalStore
from keyquorum.auth.dual_settings import DualControlSettings
from keyquorum.errors import InvalidRequest
from keyquorum.storage import approvals_repo
from keyquorum.storage.approvals_repo import ApprovalRow


@pytest.fixture
def store(make_core: CoreFactory) -> ApprovalStore:
    """The approvals of a real (migrated) store."""
    core = make_core(initialized=False)
    return ApprovalStore(core.engine, core.clock)


@pytest.fixture
def people(inprocess_server: InProcessServer) -> Any:
    made = cast(inprocess_server, approvals=2)
    yield made
    made.close()


def _shown(people: Cast, approval_id: str) -> dict[str, Any]:
    shown: dict[str, Any] = ok(people.http(people.approvers[0]).get(
        f"/v1/approvals/{approval_id}"))
    return shown


def _records(people: Cast, operation: str) -> list[dict[str, Any]]:
    with people.server.client() as root:
        found: list[dict[str, Any]] = ok(root.get("/v1/audit", params={
            "operation": operation, "limit": 200}))["records"]
    return found


def test_every_guarded_action_shows_approvers_its_complete_request(people: Cast) -> None:
    admin = people.http(people.admin)
    name = unique("f7/key")
    create_key(admin, name, "aes-256-gcm")
    ok(admin.post(f"/v1/keys/{name}/rotate", json={}))
    # A note longer than the 512 characters a summary value used to keep, with the end
    # that matters last.
    note = "routine rotation clean-up; " * 36 + "AND mail the backup to evil@example.com"
    asked: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
        ("post", f"/v1/keys/{name}/revoke", {"reason": "superseded", "note": note},
         {"reason": "superseded", "note": note}),
        ("post", f"/v1/keys/{name}/schedule-deletion", {"days": 9}, {"days": 9}),
        ("post", f"/v1/keys/{name}/destroy-versions", {"below": 2},
         {"destroy_versions_below": 2}),
        ("post", "/v1/auth/tokens", {"policies": ["dc-admin"], "name": "more", "ttl": "2h"},
         {"policies": ["dc-admin"], "name": "more", "ttl": "2h"}),
        ("put", "/v1/sys/dual-control", {"approvals": 3, "ttl": "12h"},
         {"approvals": 3, "operations": None, "ttl": 43200.0}),
    ]
    for method, path, body, request in asked:
        approval = needs_approval(admin.request(method, path, json=body))
        shown = _shown(people, approval)
        if request.get("operations", 0) is None:  # dual control spells out every action
            request = {**request, "operations": shown["request"]["operations"]}
            assert "destroy-versions" in request["operations"]
        assert shown["request"] == request, path
        assert shown["requester_name"] == "admin"
        assert not any(value.endswith("…") for value in shown["summary"].values())
    revoke = _shown(people, needs_approval(admin.post(
        f"/v1/keys/{name}/revoke", json={"reason": "superseded", "note": note})))
    assert revoke["summary"]["note"] == note  # whole, end included
    trim = _shown(people, needs_approval(admin.post(f"/v1/keys/{name}/destroy-versions",
                                                    json={"below": 2})))
    assert trim["operation"] == "destroy-versions"  # not disguised as a deletion schedule
    assert trim["summary"] == {"destroy_versions_below": "2"}  # not an empty "days"


def test_a_request_too_long_to_show_whole_is_refused_not_cut(store: ApprovalStore
                                                             ) -> None:
    fits = {"note": "x" * (MAX_REQUEST_SHOWN - 200)}
    opened = store.open(action="revoke", key="k", requester="acc_a", params=fits,
                        summary={}, required=1, ttl=60)
    assert store.get(opened.id).request == fits
    with pytest.raises(InvalidRequest, match="approvers can read all of it"):
        store.open(action="revoke", key="k", requester="acc_a",
                   params={"note": "x" * MAX_REQUEST_SHOWN}, summary={}, required=1,
                   ttl=60)
    assert [a.id for a in store.list()[0]] == [opened.id]  # nothing stored


def test_approvals_stored_before_the_full_request_still_read(store: ApprovalStore) -> None:
    engine, clock = store._engine, store._clock
    with engine.begin() as conn:  # the summary column as it was written before
        approvals_repo.insert_approval(conn, ApprovalRow(
            id="apr_" + "0" * 32, operation="revoke", key="k", requester="acc_a",
            request_hash="0" * 64, summary=json.dumps({"reason": "compromised", "v": "2"}),
            required=1, state="pending", decisions="[]", created_at=clock.now(),
            expires_at=clock.now() + 60, decided_at=None, consumed_at=None))
    old = store.get("apr_" + "0" * 32)
    assert old.summary == {"reason": "compromised", "v": "2"} and old.request is None
    assert old.to_json(clock.now())["request"] is None


def test_destroy_versions_is_guarded_wherever_deletion_is_or_on_its_own() -> None:
    for listed, guarded in ((["schedule-deletion"], True), (["destroy-versions"], True),
                            (["revoke"], False)):
        settings = DualControlSettings(2, frozenset(listed))
        assert settings.guards("destroy-versions") is guarded, listed
    assert not DualControlSettings(2, frozenset({"destroy-versions"})).guards(
        "schedule-deletion")


def test_dual_control_facts_reach_each_record_as_values(people: Cast) -> None:
    admin = people.http(people.admin)
    name = unique("f7/facts")
    create_key(admin, name, "aes-256-gcm")
    ok(admin.post(f"/v1/keys/{name}/rotate", json={}))
    ok(people.http().patch(f"/v1/keys/{name}", json={"min_decrypt_version": 2}))  # root
    body = {"rules": [{"keys": "f7/**", "operations": ["read"]}]}
    requests: list[tuple[str, str, dict[str, Any], str, str | None]] = [
        ("put", "/v1/policies/f7-facts", body, "sys:policies", None),
        ("post", "/v1/auth/tokens", {"policies": ["dc-admin"], "name": "f7"}, "sys:tokens",
         None),
        ("post", f"/v1/keys/{name}/destroy-versions", {"below": 2}, "delete", name),
    ]
    for method, path, sent, operation, key in requests:
        approval = needs_approval(admin.request(method, path, json=sent))
        people.approve(approval)
        if "rules" in sent:  # another policy than the one approved: refused, and recorded
            wrong = {"rules": [{"keys": "**", "operations": ["*"]}], "approval_id": approval}
            assert_error(admin.request(method, path, json=wrong), 403, "approval_mismatch")
        ok(admin.request(method, path, json={**sent, "approval_id": approval}))
        records = [r for r in _records(people, operation)
                   if (r.get("detail") or {}).get("approval_id") == approval]
        facts = {(r["outcome"], r["error_code"], r["detail"].get("dual_control"),
                  r["detail"].get("action")) for r in records}
        action = {"sys:policies": "policy-put", "sys:tokens": "token-create-privileged",
                  "delete": "destroy-versions"}[operation]
        assert ("denied", "approval_required", "requested", action) in facts, path
        # A change's own facts win on its record: a trim says it destroyed versions.
        ran = "destroy-versions" if operation == "delete" else action
        assert ("ok", None, "approved", ran) in facts, path
        if "rules" in sent:
            assert ("denied", "approval_mismatch", None, action) in facts
        if key is not None:
            done = [r for r in records if r["outcome"] == "ok"]
            assert done[0]["key"] == key and done[0]["detail"]["versions"] == "1"


def test_approval_reads_name_the_approval_on_their_record(people: Cast) -> None:
    admin = people.http(people.admin)
    approval = needs_approval(admin.post("/v1/auth/tokens", json={
        "policies": ["dc-admin"], "name": "read-me"}))
    _shown(people, approval)
    outsider: httpx.Client = people.http(people.outsider)
    assert_error(outsider.get(f"/v1/approvals/{approval}"), 403, "forbidden")
    reads = [r for r in _records(people, "approvals:read")
             if (r.get("detail") or {}).get("approval_id") == approval]
    assert {r["outcome"] for r in reads} == {"ok", "denied"}


def test_a_proposed_seal_names_the_approval_it_used(people: Cast) -> None:
    root = people.http()  # root: its guarded requests need approvals like anyone's
    body = {"type": "passphrase", "id": "f7-pass", "passphrase": "correct horse battery 7"}
    approval = needs_approval(root.post("/v1/sys/seals", json=body))
    shown = _shown(people, approval)
    assert "correct horse" not in json.dumps(shown)  # public parameters only
    people.approve(approval)
    ok(root.post("/v1/sys/seals", json={**body, "approval_id": approval}))
    [record] = [r for r in _records(people, "sys:seal-add") if r["outcome"] == "ok"]
    assert record["detail"]["approval_id"] == approval
    assert record["detail"]["dual_control"] == "approved"
    assert record["detail"]["seal"] == "f7-pass"
