"""Pure rules of drills and rekey: the margin warning, proof contexts, rekey plans."""

from __future__ import annotations

from typing import Any

import pytest

from keyquorum.api.bodies import parse_body
from keyquorum.api.bodies_sys import StartRekey
from keyquorum.errors import InvalidRequest, NotFound
from keyquorum.seal.custodian_proof import proof_context
from keyquorum.seal.shamir import ShamirSealConfig, create_shamir_seal
from keyquorum.service.custodians import margin_warning
from keyquorum.service.rekey import RekeyPlan, RekeyState, plan_for


def _config(names: list[str] | None = None) -> ShamirSealConfig:
    return create_shamir_seal(bytes(range(32)), 3, 2, names)[0]


def parse_plan(config: ShamirSealConfig, body: dict[str, Any]) -> RekeyPlan:
    """A rekey init body as the route takes it: the typed request, then the plan."""
    return plan_for(config, parse_body(StartRekey, body).to_domain())


def test_the_warning_says_what_is_at_stake() -> None:
    assert margin_warning(1, 3, 3, 2, 90) is None
    zero = margin_warning(0, 2, 3, 2, 90)
    assert zero is not None and "one more lost share locks the data" in zero
    below = margin_warning(-1, 1, 3, 2, 90)
    assert below is not None and "already locked" in below and "-1" in below


def test_proof_contexts_differ_in_every_field() -> None:
    base = proof_context(b"c" * 32, "alice", 1, 1)
    others = {proof_context(b"d" * 32, "alice", 1, 1), proof_context(b"c" * 32, "bob", 1, 1),
              proof_context(b"c" * 32, "alice", 2, 1), proof_context(b"c" * 32, "alice", 1, 2),
              # length prefixes: moving bytes between fields changes the context
              proof_context(b"c" * 31, "calice", 1, 1)}
    assert base not in others and len(others) == 5


def test_plans_are_checked_against_the_current_seal() -> None:
    config = _config(["ann", "bo", "cy"])
    swap = parse_plan(config, {"replace": {"custodian": "bo", "with": "dee"}})
    assert (swap.custodians, swap.shares, swap.threshold) == (("ann", "dee", "cy"), 3, 2)
    assert parse_plan(config, {"reissue": True}).custodians == ("ann", "bo", "cy")
    assert parse_plan(config, {"shares": 5, "threshold": 3}).custodians == ()
    assert parse_plan(config, {"shares": 3, "threshold": 3, "force": True}).threshold == 3
    with pytest.raises(NotFound):
        parse_plan(config, {"replace": {"custodian": "zed", "with": "dee"}})
    for bad in ({"replace": {"custodian": "bo", "with": "ann"}},
                {"replace": {"custodian": "bo", "with": "a/b"}},
                {"replace": {"custodian": "bo"}}, {"reissue": False},
                {"reissue": True, "shares": 3}, {"shares": 3, "threshold": 3},
                {"shares": 4, "threshold": 2, "custodians": ["a"]}, {"surprise": 1}):
        with pytest.raises(InvalidRequest):
            parse_plan(config, bad)


def test_unnamed_shares_keep_default_names_and_old_configs_are_generation_1() -> None:
    config = _config()
    assert config.names == ("share-1", "share-2", "share-3")
    plan = parse_plan(config, {"replace": {"custodian": "share-2", "with": "eve"}})
    assert plan.custodians == ("share-1", "eve", "share-3")
    legacy = config.to_json().replace(b'"generation": 1, ', b"")
    assert ShamirSealConfig.from_json(legacy).generation == 1


def test_a_stored_ceremony_round_trips_without_shares_in_the_clear() -> None:
    plan = parse_plan(_config(), {"reissue": True})
    state = RekeyState(nonce="n", generation=3, plan=plan, started_at=1.0, expires_at=2.0,
                       started_by="acc", indexes=(1,), sealed_shares="QUJD")
    assert RekeyState.from_json(state.to_json()) == state
    assert "QUJD" not in repr(state)


def test_a_store_from_before_drills_gets_unverified_rows_once(tmp_path) -> None:
    from keyquorum.storage import custodians_repo as repo
    from keyquorum.storage.engine import migrate, open_engine

    engine = open_engine(f"sqlite:///{tmp_path / 'kq.db'}")
    migrate(engine)
    names = _config(["ann", "bo", "cy"]).names
    repo.ensure_custodians(engine, 1, names)
    repo.ensure_custodians(engine, 1, names)  # a second worker: nothing more, no error
    with engine.connect() as conn:
        rows = repo.list_custodians(conn, 1)
    assert [(r.index, r.name, r.last_verified_at, r.verified_by) for r in rows] == [
        (1, "ann", None, None), (2, "bo", None, None), (3, "cy", None, None)]
    engine.dispose()
