"""Compliance controls judged on made-up evidence (no storage, no server), and the HTML page."""

from __future__ import annotations

import html
from dataclasses import replace

import pytest

from keyquorum.audit.chain import ChainHead
from keyquorum.audit.verify import Fault, VerifyReport
from keyquorum.auth.dual_settings import ACTIONS, EXPORT
from keyquorum.keys.cryptoperiods import DAY
from keyquorum.keys.models import Key, KeyVersion
from keyquorum.keys.states import KeyState, VersionState
from keyquorum.reports.compliance import Control, evaluate
from keyquorum.reports.compliance_checks import CATALOGUE, Evidence, worst
from keyquorum.reports.html import render_compliance_html, render_inventory_html
from keyquorum.reports.inventory import Inventory, InventoryEntry, KeyUse, key_findings

NOW = 1_800_000_000.0


def make_key(name: str, **changes: object) -> Key:
    created = changes.pop("created_at", NOW - DAY)
    base = Key(id=name, name=name, spec="aes-256-gcm", purpose="encrypt",
               state=KeyState.ENABLED, primary_version=1, min_decrypt_version=1,
               origin="generated", exportable=False, deletion_window_days=30,
               created_at=created, updated_at=created, revision=1,  # type: ignore[arg-type]
               owner="team", description="orders at rest", rotation_period=90 * DAY,
               next_rotation=NOW + 30 * DAY,
               versions=(KeyVersion(name, 1, VersionState.ACTIVE, created,  # type: ignore[arg-type]
                                    activated_at=created),))  # type: ignore[arg-type]
    return replace(base, **changes)  # type: ignore[arg-type]


def evidence(*keys: Key, **changes: object) -> Evidence:
    entries = []
    for key in keys:
        use = KeyUse(last_used_at=NOW - 60)
        entries.append(InventoryEntry(key, use, tuple(key_findings(key, use, NOW))))
    base = Evidence(now=NOW, inventory=Inventory(NOW, tuple(entries)), threshold=2, shares=3,
                    custodians=("ann", "bob", "cy"), custodians_named=True, dual_approvals=1,
                    dual_operations=frozenset(ACTIONS), tls=True, listen_host="0.0.0.0",
                    storage="sqlite", custodians_verified=3, custodian_margin=1)
    return replace(base, **changes)  # type: ignore[arg-type]


def controls(ev: Evidence) -> dict[str, Control]:
    return {c.id: c for c in evaluate(ev).controls}


def key_status(control: Control, name: str) -> str:
    return next(r.status for r in control.keys if r.key == name)


def test_the_catalogue_covers_pci_3_6_and_3_7_and_the_nist_topics() -> None:
    ids = [spec.id for spec in CATALOGUE]
    assert len(ids) == len(set(ids))
    pci = {spec.requirement for spec in CATALOGUE if spec.id.startswith("pci-")}
    assert pci == {"3.6.1", "3.6.1.1", "3.6.1.2", "3.6.1.3", "3.6.1.4", *(
        f"3.7.{n}" for n in range(1, 10))}
    assert {"nist-generation", "nist-storage", "nist-distribution", "nist-crypto-period",
            "nist-rotation", "nist-retirement", "nist-destruction", "nist-split-knowledge",
            "nist-custodian-acknowledgement"} <= set(ids)


def test_a_well_run_service_passes_everything() -> None:
    found = controls(evidence(make_key("app/orders")))
    assert {cid: c.status for cid, c in found.items() if c.status != "pass"} == {}
    assert "quorum margin 1" in found["pci-3.7.8"].summary


def test_custodian_drills_judge_the_quorum_margin() -> None:
    zero = controls(evidence(make_key("app/k"), custodians_verified=2, custodian_margin=0,
                             custodian_warning="one more lost share locks the data"))
    below = controls(evidence(make_key("app/k"), custodians_verified=1, custodian_margin=-1,
                              custodian_warning="the data is already locked"))
    unknown = controls(evidence(make_key("app/k"), custodians_verified=None,
                                custodian_margin=None))
    for cid in ("pci-3.7.8", "nist-custodian-acknowledgement"):
        assert zero[cid].status == "attention"
        assert "one more lost share locks the data" in zero[cid].summary
        assert below[cid].status == "fail"
        assert unknown[cid].status == "attention"


def test_worst_orders_fail_over_attention_over_pass() -> None:
    assert worst(("pass", "attention", "pass")) == "attention"
    assert worst(("attention", "fail")) == "fail"
    assert worst(()) == "pass"


def test_a_single_share_threshold_fails_split_knowledge_and_storage() -> None:
    found = controls(evidence(make_key("app/k"), threshold=1, shares=1))
    for cid in ("pci-3.7.6", "nist-split-knowledge", "pci-3.6.1.2", "pci-3.6.1.3",
                "pci-3.7.3", "nist-storage"):
        assert found[cid].status == "fail", cid


@pytest.mark.parametrize(("exportable", "approvals", "operations", "status"), [
    (False, 0, ACTIONS, "attention"),   # dual control off
    (True, 0, ACTIONS, "fail"),         # off while material can be exported
    (False, 1, ACTIONS - {EXPORT}, "attention"),  # on, but not over export
    (True, 2, ACTIONS, "pass"),
])
def test_dual_control(exportable: bool, approvals: int, operations: frozenset[str],
                      status: str) -> None:
    ev = evidence(make_key("app/k", exportable=exportable), dual_approvals=approvals,
                  dual_operations=frozenset(operations))
    found = controls(ev)
    assert found["pci-3.7.6"].status == status
    assert found["nist-split-knowledge"].status == status


@pytest.mark.parametrize(("tls", "host", "status"), [
    (True, "0.0.0.0", "pass"), (False, "127.0.0.1", "attention"), (False, "0.0.0.0", "fail")])
def test_transport_for_distribution(tls: bool, host: str, status: str) -> None:
    found = controls(evidence(make_key("app/k"), tls=tls, listen_host=host))
    assert found["pci-3.7.2"].status == status
    assert found["nist-distribution"].status == status


def test_unnamed_custodians_need_attention() -> None:
    found = controls(evidence(make_key("app/k"), custodians_named=False))
    assert found["pci-3.6.1.3"].status == "attention"
    assert found["pci-3.6.1.2"].status == "pass"  # storage does not depend on names


def test_crypto_period_exceeded_fails_key_change_and_retirement_for_that_key_only() -> None:
    old = make_key("app/old", created_at=NOW - 800 * DAY, rotation_period=None,
                   next_rotation=None)
    ok = make_key("app/ok")
    found = controls(evidence(old, ok))
    for cid in ("pci-3.7.4", "nist-crypto-period", "pci-3.7.5", "nist-retirement"):
        assert found[cid].status == "fail", cid
        assert key_status(found[cid], "app/old") == "fail"
        assert key_status(found[cid], "app/ok") == "pass"
    assert "app/old" in found["pci-3.7.4"].summary


def test_rotation_rules() -> None:
    none = make_key("app/none", rotation_period=None, next_rotation=None)
    slow = make_key("app/slow", rotation_period=1000 * DAY, next_rotation=NOW + DAY)
    late = make_key("app/late", next_rotation=NOW - 60)
    off = make_key("app/off", state=KeyState.DISABLED, next_rotation=NOW - 60)
    rotation = controls(evidence(none, slow, late, off))["nist-rotation"]
    assert {r.key: r.status for r in rotation.keys} == {
        "app/none": "attention", "app/slow": "attention", "app/late": "fail", "app/off": "pass"}
    assert rotation.status == "fail"


def test_destruction_fails_when_destroyed_versions_keep_material() -> None:
    gone = make_key("app/gone", state=KeyState.DESTROYED)
    found = controls(evidence(gone, undestroyed={"app/gone": [1]}))
    for cid in ("nist-destruction", "nist-storage", "pci-3.7.3"):
        assert key_status(found[cid], "app/gone") == "fail", cid
    clean = controls(evidence(gone))["nist-destruction"]
    assert key_status(clean, "app/gone") == "pass"


def test_compromised_versions_still_holding_material_need_attention() -> None:
    k = make_key("app/c", primary_version=2, versions=(
        KeyVersion("app/c", 1, VersionState.COMPROMISED, NOW - DAY, deactivated_at=NOW - 60),
        KeyVersion("app/c", 2, VersionState.ACTIVE, NOW - 60, activated_at=NOW - 60)))
    found = controls(evidence(k))
    assert key_status(found["nist-destruction"], "app/c") == "attention"


def test_imported_keys_and_unapproved_algorithms_need_attention() -> None:
    found = controls(evidence(make_key("app/imp", origin="imported"),
                              make_key("app/cc", spec="chacha20-poly1305")))
    assert key_status(found["pci-3.7.1"], "app/imp") == "attention"
    assert key_status(found["pci-3.7.7"], "app/imp") == "attention"
    assert key_status(found["nist-generation"], "app/cc") == "attention"
    assert key_status(found["nist-generation"], "app/imp") == "pass"


def test_rsa_2048_keys_need_attention_and_the_other_compat_specs_pass() -> None:
    found = controls(evidence(make_key("app/rsa2k", spec="rsa-2048", purpose="sign"),
                              make_key("app/p521", spec="ecdsa-p521", purpose="sign"),
                              make_key("app/h224", spec="hmac-sha224", purpose="mac")))
    generation = found["nist-generation"]
    assert key_status(generation, "app/rsa2k") == "attention"
    reason = next(r.reason for r in generation.keys if r.key == "app/rsa2k")
    assert "through 2030" in reason and "rsa-3072" in reason
    assert key_status(generation, "app/p521") == "pass"
    assert key_status(generation, "app/h224") == "pass"


def test_undocumented_keys_need_attention_for_the_architecture_description() -> None:
    found = controls(evidence(make_key("app/bare", owner=None, description=None)))
    control = found["pci-3.6.1.1"]
    assert control.status == "attention"
    assert "no owner and no description" in control.keys[0].reason


def test_report_json_has_per_key_rollups_and_counts() -> None:
    report = evaluate(evidence(make_key("app/a"), make_key("app/x", exportable=True)))
    body = report.to_json()
    keys = {k["key"]: k for k in body["keys"]}
    assert keys["app/a"]["status"] == "pass"
    assert keys["app/x"]["status"] == "attention"
    assert keys["app/x"]["controls"]["pci-3.7.9"] == "attention"
    assert sum(body["summary"]["controls"].values()) == len(body["controls"])
    assert body["summary"]["keys"] == {"pass": 1, "attention": 1, "fail": 0}


EVIL_OWNER = '"><img src=x onerror=alert(1)>'
EVIL_DESCRIPTION = "<script>alert('pwned')</script>"


def test_html_pages_escape_every_client_supplied_string() -> None:
    key = make_key("app/evil", owner=EVIL_OWNER, description=EVIL_DESCRIPTION)
    ev = evidence(key)
    for page in (render_compliance_html(evaluate(ev)), render_inventory_html(ev.inventory)):
        assert "<script" not in page and "<img" not in page
        assert html.escape(EVIL_OWNER, quote=True) in page
        assert page.startswith("<!DOCTYPE html>") and "http" not in page  # loads nothing
    assert html.escape(EVIL_DESCRIPTION, quote=True) in render_inventory_html(ev.inventory)


def fake_core(running: bool, *sinks: dict[str, object]) -> object:
    from types import SimpleNamespace

    status = [{"name": "s", "type": "file", "policy": "best-effort", "healthy": True,
               "failures": 0, "dropped": 0, **sink} for sink in sinks]
    chain = VerifyReport(ok=True, records=10, head=ChainHead(10, "ab" * 32), checkpoints=1,
                         last_checkpoint=8)
    return SimpleNamespace(
        audit=SimpleNamespace(running=running, backlog=0,
                              sinks=SimpleNamespace(status=lambda: status)),
        audit_trail=SimpleNamespace(recent_verification=lambda _age: (NOW, chain)),
        settings=SimpleNamespace(report_evidence_max_age=300.0))


@pytest.mark.parametrize(("running", "sinks", "status", "words"), [
    (True, (), "pass", "chain and signed checkpoints verify"),
    (True, ({"name": "siem", "healthy": True},), "pass", "sinks are healthy"),
    (True, ({"name": "siem", "healthy": False},), "attention", "siem are failing"),
    (True, ({"name": "wal", "policy": "required", "healthy": False},), "fail", "wal"),
    (False, (), "fail", "not running"),
])
def test_audit_controls_judge_the_writer_and_the_sinks(running: bool, sinks: tuple,
                                                       status: str, words: str) -> None:
    from keyquorum.reports.compliance import audit_controls

    [control] = audit_controls(fake_core(running, *sinks), NOW)  # type: ignore[arg-type]
    assert control.id == "nist-accountability"
    assert control.status == status
    assert words in control.summary


@pytest.mark.parametrize(("chain", "status", "words"), [
    (VerifyReport(ok=False, records=9, head=ChainHead(9, "ab" * 32), checkpoints=1,
                  last_checkpoint=None, first_bad=Fault(4, "record 4 is missing")),
     "fail", "broken at record 4"),
    (VerifyReport(ok=True, records=9, head=ChainHead(9, "ab" * 32), checkpoints=0,
                  last_checkpoint=None), "attention", "no signed checkpoint"),
])
def test_audit_controls_judge_the_hash_chain(chain: VerifyReport, status: str,
                                             words: str) -> None:
    from types import SimpleNamespace

    from keyquorum.reports.compliance import audit_controls

    core = fake_core(True)
    core.audit_trail = SimpleNamespace(  # type: ignore[attr-defined]
        recent_verification=lambda _age: (NOW, chain))
    [control] = audit_controls(core, NOW)  # type: ignore[arg-type]
    assert control.status == status and words in control.summary
