"""The approval store: every refusal has its own error, and consumption happens once."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import Engine, select

from keyquorum.auth.approvals import (
    APPROVE,
    REJECT,
    Approval,
    ApprovalStore,
    canonical_request,
    request_hash,
)
from keyquorum.errors import (
    ApprovalConsumed,
    ApprovalExpired,
    ApprovalMismatch,
    ApprovalNotRequester,
    ApprovalRejected,
    ApprovalRequired,
    DuplicateApproval,
    Forbidden,
    InvalidRequest,
    NotFound,
    SelfApproval,
)
from keyquorum.storage.schema import approvals as approvals_table

pytestmark = pytest.mark.postgresql

PARAMS = {"reason": "compromised", "note": "laptop stolen"}


@pytest.fixture
def store(engine: Engine, clock: Any) -> ApprovalStore:
    return ApprovalStore(engine, clock)


def open_revoke(store: ApprovalStore, required: int = 2, ttl: float = 3600,
                params: dict[str, Any] | None = None) -> Approval:
    return store.open(action="revoke", key="payments/cards", requester="acc_alice",
                      params=PARAMS if params is None else params,
                      summary={"reason": "compromised"}, required=required, ttl=ttl)


def approved(store: ApprovalStore, required: int = 2) -> Approval:
    approval = open_revoke(store, required)
    for n in range(required):
        approval = store.decide(approval.id, f"acc_approver{n}", APPROVE)
    return approval


def consume(store: ApprovalStore, approval: Approval, **changes: Any) -> Approval:
    request: dict[str, Any] = {"requester": "acc_alice", "action": "revoke",
                               "key": "payments/cards", "params": PARAMS, "required": 2}
    request.update(changes)
    return store.consume(approval.id, **request)


def test_a_new_request_is_pending_and_shows_the_whole_request_but_no_hash(
        store: ApprovalStore, clock: Any) -> None:
    approval = open_revoke(store)
    assert approval.id.startswith("apr_") and len(approval.id) == 36
    assert (approval.state, approval.approvals, approval.required) == ("pending", 0, 2)
    assert approval.expires_at == clock.now() + 3600
    shown = approval.to_json(clock.now())
    assert shown["summary"] == {"reason": "compromised"}
    assert shown["requester"] == "acc_alice" and shown["state"] == "pending"
    assert approval.request_hash not in str(shown)
    assert shown["request"] == PARAMS  # every parameter, not only the summary (F7)


def test_m_approvals_from_distinct_identities_approve_it(store: ApprovalStore) -> None:
    approval = open_revoke(store, required=2)
    first = store.decide(approval.id, "acc_bob", APPROVE, "checked the ticket")
    assert (first.state, first.approvals, first.decided_at) == ("pending", 1, None)
    second = store.decide(approval.id, "acc_carol", APPROVE)
    assert (second.state, second.approvals) == ("approved", 2)
    assert second.decided_at is not None
    assert [(d.identity, d.note) for d in second.decisions] == [
        ("acc_bob", "checked the ticket"), ("acc_carol", None)]


def test_the_requester_cannot_approve_or_reject_their_own_request(store: ApprovalStore) -> None:
    approval = open_revoke(store)
    for decision in (APPROVE, REJECT):
        with pytest.raises(SelfApproval) as caught:
            store.decide(approval.id, "acc_alice", decision)
        assert caught.value.code == "self_approval" and isinstance(caught.value, Forbidden)
    assert store.get(approval.id).decisions == ()


def test_one_identity_cannot_approve_twice(store: ApprovalStore) -> None:
    approval = open_revoke(store, required=2)
    store.decide(approval.id, "acc_bob", APPROVE)
    with pytest.raises(DuplicateApproval) as caught:
        store.decide(approval.id, "acc_bob", APPROVE)
    assert caught.value.code == "duplicate_approval"
    with pytest.raises(DuplicateApproval):
        store.decide(approval.id, "acc_bob", REJECT)
    assert store.get(approval.id).approvals == 1


def test_an_approved_request_is_consumed_once(store: ApprovalStore) -> None:
    approval = approved(store)
    used = consume(store, approval)
    assert used.state == "consumed" and used.consumed_at is not None
    with pytest.raises(ApprovalConsumed) as caught:
        consume(store, approval)
    assert caught.value.code == "approval_consumed"


def test_a_pending_request_still_requires_approval(store: ApprovalStore) -> None:
    approval = open_revoke(store, required=2)
    store.decide(approval.id, "acc_bob", APPROVE)
    with pytest.raises(ApprovalRequired) as caught:
        consume(store, approval)
    assert caught.value.details == {"approval_id": approval.id, "approvals": 1,
                                    "approvals_required": 2}
    assert store.get(approval.id).state == "pending"


def test_a_raised_requirement_applies_to_requests_already_approved(
        store: ApprovalStore) -> None:
    approval = approved(store, required=2)
    with pytest.raises(ApprovalRequired):
        consume(store, approval, required=3)
    store.decide(approval.id, "acc_dave", APPROVE)
    assert consume(store, approval, required=3).state == "consumed"


@pytest.mark.parametrize("change", [
    {"params": {"reason": "compromised", "note": "laptop lost"}},
    {"params": {"reason": "compromised"}},
    {"params": {**PARAMS, "version": 1}},
    {"key": "payments/other"},
    {"action": "schedule-deletion"},
], ids=["changed-value", "missing-field", "extra-field", "other-key", "other-action"])
def test_a_different_request_cannot_use_the_approval(store: ApprovalStore,
                                                     change: dict[str, Any]) -> None:
    approval = approved(store)
    with pytest.raises(ApprovalMismatch) as caught:
        consume(store, approval, **change)
    assert caught.value.code == "approval_mismatch"
    assert consume(store, approval).state == "consumed"  # still usable for the real one


def test_only_the_requester_can_use_the_approval(store: ApprovalStore) -> None:
    approval = approved(store)
    for other in ("acc_approver0", "acc_mallory"):
        with pytest.raises(ApprovalNotRequester) as caught:
            consume(store, approval, requester=other)
        assert caught.value.code == "approval_not_requester"
    assert store.get(approval.id).state == "approved"


def test_an_expired_request_can_be_neither_decided_nor_used(store: ApprovalStore,
                                                            clock: Any) -> None:
    pending = open_revoke(store, ttl=600)
    ready = approved(store)
    clock.advance(3600)
    with pytest.raises(ApprovalExpired) as caught:
        store.decide(pending.id, "acc_bob", APPROVE)
    assert caught.value.code == "approval_expired"
    with pytest.raises(ApprovalExpired):
        consume(store, ready)
    assert store.get(ready.id).status(clock.now()) == "expired"


def test_one_rejection_vetoes_even_after_approval(store: ApprovalStore) -> None:
    approval = approved(store)
    rejected = store.decide(approval.id, "acc_dave", REJECT, "not during the freeze")
    assert rejected.state == "rejected"
    with pytest.raises(ApprovalRejected) as caught:
        consume(store, approval)
    assert caught.value.code == "approval_rejected"
    with pytest.raises(ApprovalRejected):
        store.decide(approval.id, "acc_erin", APPROVE)


def test_a_consumed_request_cannot_be_decided(store: ApprovalStore) -> None:
    approval = approved(store)
    consume(store, approval)
    with pytest.raises(ApprovalConsumed):
        store.decide(approval.id, "acc_dave", REJECT)


def test_unknown_ids_are_not_found(store: ApprovalStore) -> None:
    missing = "apr_" + "0" * 32
    with pytest.raises(NotFound):
        store.decide(missing, "acc_bob", APPROVE)
    with pytest.raises(NotFound):
        store.consume(missing, requester="acc_alice", action="revoke", key=None, params={},
                      required=1)


def test_bad_decisions_and_notes_are_refused(store: ApprovalStore) -> None:
    approval = open_revoke(store)
    with pytest.raises(InvalidRequest):
        store.decide(approval.id, "acc_bob", "maybe")
    with pytest.raises(InvalidRequest):
        store.decide(approval.id, "acc_bob", APPROVE, "x" * 1025)
    with pytest.raises(InvalidRequest):
        store.decide(approval.id, "acc_bob", APPROVE, 7)  # type: ignore[arg-type]


def test_concurrent_consumers_one_wins(store: ApprovalStore) -> None:
    approval = approved(store)
    start = threading.Barrier(8)
    outcomes: list[str] = []

    def resend() -> None:
        start.wait()
        try:
            consume(store, approval)
            outcomes.append("ran")
        except ApprovalConsumed:
            outcomes.append("consumed")

    threads = [threading.Thread(target=resend) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["consumed"] * 7 + ["ran"]


def test_concurrent_approvers_are_all_counted(store: ApprovalStore) -> None:
    approval = open_revoke(store, required=6)
    start = threading.Barrier(6)

    def decide(n: int) -> None:
        start.wait()
        store.decide(approval.id, f"acc_approver{n}", APPROVE)

    threads = [threading.Thread(target=decide, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    final = store.get(approval.id)
    assert (final.state, final.approvals) == ("approved", 6)
    assert len({d.identity for d in final.decisions}) == 6


def test_restore_gives_back_only_this_consumption(store: ApprovalStore, clock: Any) -> None:
    approval = approved(store)
    used = consume(store, approval)
    assert store.restore(used) is True
    assert store.get(approval.id).state == "approved"
    clock.advance(1)
    again = consume(store, approval)
    assert store.restore(used) is False  # a stale consumption cannot reopen a newer one
    assert store.get(approval.id).consumed_at == again.consumed_at


def test_the_hash_is_canonical_exact_and_salted() -> None:
    first = request_hash("apr_1", "revoke", "k", {"a": 1, "b": "x"})
    assert first == request_hash("apr_1", "revoke", "k", {"b": "x", "a": 1})
    assert first != request_hash("apr_1", "revoke", "k", {"a": 1.0, "b": "x"})
    assert first != request_hash("apr_2", "revoke", "k", {"a": 1, "b": "x"})
    assert first != request_hash("apr_1", "revoke", None, {"a": 1, "b": "x"})
    assert canonical_request("revoke", "k", {"é": 1}) == \
        '{"action":"revoke","key":"k","params":{"é":1}}'.encode()
    with pytest.raises(InvalidRequest):
        canonical_request("revoke", "k", {"a": float("nan")})


def test_the_whole_request_is_stored_beside_its_salted_hash(store: ApprovalStore,
                                                            engine: Engine) -> None:
    params = {"reason": "compromised", "note": "the words approvers must read"}
    approval = open_revoke(store, params=params)
    with engine.connect() as conn:
        row = conn.execute(select(approvals_table)
                           .where(approvals_table.c.id == approval.id)).one()
    assert "the words approvers must read" in row.summary  # kept to show it (review F7)
    assert len(row.request_hash) == 64 and row.request_hash not in row.summary
    assert store.get(approval.id).request == params


def test_list_filters_by_state_newest_first_and_pages(store: ApprovalStore,
                                                      clock: Any) -> None:
    made = []
    for _ in range(5):
        made.append(open_revoke(store, required=1, ttl=600))
        clock.advance(1)
    store.decide(made[0].id, "acc_bob", REJECT)
    store.decide(made[1].id, "acc_bob", APPROVE)
    consume(store, made[1], required=1)
    store.decide(made[2].id, "acc_bob", APPROVE)
    open_now, _ = store.list(state="open")
    assert [a.id for a in open_now] == [made[4].id, made[3].id, made[2].id]
    assert [a.id for a in store.list(state="rejected")[0]] == [made[0].id]
    assert [a.id for a in store.list(state="consumed")[0]] == [made[1].id]
    assert [a.id for a in store.list(state="approved")[0]] == [made[2].id]
    page, token = store.list(limit=2)
    assert [a.id for a in page] == [made[4].id, made[3].id] and token
    rest, last = store.list(limit=10, page_token=token)
    assert [a.id for a in rest] == [made[2].id, made[1].id, made[0].id] and last is None
    clock.advance(600)
    assert store.list(state="open")[0] == []
    assert {a.id for a in store.list(state="expired")[0]} == {
        made[2].id, made[3].id, made[4].id}
    with pytest.raises(InvalidRequest):
        store.list(state="bogus")
    with pytest.raises(InvalidRequest):
        store.list(page_token="%%%")
