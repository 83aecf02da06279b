"""Inventory, compliance and metrics on a seeded store, through the app with its clock moved.

The module's server is seeded once: keys of many ages, states and uses are made
at t0, the test clock is moved 100 days (the scheduler rotates and destroys what
is due), and the keys are used again. Every inventory flag and every control
outcome is then checked against what the seeding did.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from http_helpers import assert_error, b64, create_key, encrypt, ok
from inprocess_server import InProcessServer
from pg_support import StoreDatabases

pytestmark = pytest.mark.postgresql

DAY = 86400
EVIL_OWNER = '"><img src=x onerror=alert(1)>'
EVIL_DESCRIPTION = "<script>alert('owned')</script>"

# name -> the flags the seeding must raise (and no others)
EXPECTED_FLAGS = {
    "rep/clean": [],            # owned, rotates every 30d (the scheduler rotated it), used
    "rep/noowner": ["unused_90d", "no_owner"],   # never used in 100 days, no owner
    "rep/exportable": ["exportable"],
    "rep/overdue": ["rotation_overdue"],          # ed25519, own crypto_period 30d, 100d old
    "rep/compromised": ["compromised_in_use"],    # v1 revoked compromised, then asked again
    "rep/deactivated": ["deactivated_in_use"],    # v1 rotated out, still decrypting
    "rep/disabled": [],          # 100 days past its 30d crypto-period, but not in use
    "rep/evil": [],              # a hostile owner and description, otherwise fine
    "rep/gone": [],              # destroyed: a tombstone raises nothing
    "rep/young": [],             # created after the move: never used, but not for 90 days
}


@dataclass
class Seeded:
    server: InProcessServer
    http: httpx.Client
    tokens: dict[str, str]
    encrypts_on_clean: int


def _token(http: httpx.Client, policies: list[str]) -> str:
    return str(ok(http.post("/v1/auth/tokens", json={"policies": policies}))["token"])


@pytest.fixture(scope="module")
def seeded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           migrated_store: Path, store_backend: str) -> Iterator[Seeded]:
    home = tmp_path_factory.mktemp("reports")
    databases = StoreDatabases(request, store_backend)
    server = InProcessServer(home / "data", migrated=migrated_store,
                             config={"audit_sink_dirs": [str(home)], **databases.new()})
    try:  # stopped even when start, init, unseal or the seeding fails
        server.start()
        server.init()
        server.unseal()
        http = server.client()
        owned = {"owner": "payments-team", "description": "card data at rest"}
        create_key(http, "rep/clean", "aes-256-gcm", rotation_period="30d", **owned)
        create_key(http, "rep/noowner", "hmac-sha256", description="webhook signatures")
        create_key(http, "rep/exportable", "aes-256-gcm", exportable=True, **owned)
        create_key(http, "rep/overdue", "ed25519", crypto_period="30d", **owned)
        create_key(http, "rep/compromised", "aes-256-gcm", **owned)
        create_key(http, "rep/deactivated", "aes-256-gcm", **owned)
        create_key(http, "rep/disabled", "aes-256-gcm", crypto_period="30d", **owned)
        create_key(http, "rep/evil", "aes-256-gcm", owner=EVIL_OWNER,
                   description=EVIL_DESCRIPTION)
        create_key(http, "rep/gone", "aes-256-gcm")

        compromised_ct = encrypt(http, "rep/compromised", b"old secret")["ciphertext"]
        ok(http.post("/v1/decrypt", json={"ciphertext": compromised_ct}))  # before: not counted
        ok(http.post("/v1/keys/rep/compromised/revoke",
                     json={"version": 1, "reason": "compromised"}))
        deactivated_ct = encrypt(http, "rep/deactivated", b"old data")["ciphertext"]
        ok(http.post("/v1/keys/rep/deactivated/rotate"))
        ok(http.post("/v1/keys/rep/disabled/disable"))
        ok(http.post("/v1/keys/rep/gone/schedule-deletion", json={"days": 7}))

        moved = server.advance_clock(100 * DAY)
        assert "rep/clean" in str(moved) and "rep/gone" in str(moved)  # rotated, destroyed

        # (tokens made before the move would have expired: the default TTL is 32 days)
        tokens = {role: _token(http, [role]) for role in ("auditor", "operator", "key-user")}
        ok(http.put("/v1/sys/audit/sinks/trail", json={  # a second copy of the log
            "type": "file", "policy": "best-effort",
            "path": str(server.data_dir.parent / "trail.jsonl")}))
        create_key(http, "rep/young", "chacha20-poly1305", **owned)
        for _ in range(2):  # refused: the version is compromised
            assert_error(http.post("/v1/decrypt", json={"ciphertext": compromised_ct}),
                         409, "key_state")
        ok(http.post("/v1/keys/rep/compromised/decrypt", json={  # the audited override
            "ciphertext": compromised_ct, "unsafe_allow_compromised": True}))
        ok(http.post("/v1/decrypt", json={"ciphertext": deactivated_ct}))
        encrypt(http, "rep/clean", b"new")
        ok(http.post("/v1/keys/rep/clean/encrypt",
                     json={"batch": [{"plaintext": b64(b"x")}] * 3}))
        for name in ("rep/exportable", "rep/compromised", "rep/deactivated", "rep/evil"):
            encrypt(http, name, b"new")
        ok(http.post("/v1/keys/rep/overdue/sign", json={"message": b64(b"m")}))
        yield Seeded(server, http, tokens, encrypts_on_clean=4)
    finally:
        server.stop()  # closes its clients too
        databases.drop_all()


def _inventory(seeded: Seeded) -> dict[str, dict[str, Any]]:
    body = ok(seeded.http.get("/v1/reports/inventory"))
    return {key["name"]: key for key in body["keys"]}


def _compliance(seeded: Seeded) -> dict[str, Any]:
    return ok(seeded.http.get("/v1/reports/compliance"))  # type: ignore[no-any-return]


def test_every_inventory_flag_matches_the_seeding(seeded: Seeded) -> None:
    keys = _inventory(seeded)
    assert {name: keys[name]["flags"] for name in EXPECTED_FLAGS} == EXPECTED_FLAGS
    summary = ok(seeded.http.get("/v1/reports/inventory"))["summary"]
    assert summary["flags"] == {"rotation_overdue": 1, "unused_90d": 1, "no_owner": 1,
                                "exportable": 1, "compromised_in_use": 1,
                                "deactivated_in_use": 1}
    assert summary["by_state"] == {"destroyed": 1, "disabled": 1, "enabled": 8}


def test_inventory_shows_age_against_crypto_period_use_and_versions(seeded: Seeded) -> None:
    keys = _inventory(seeded)
    overdue = keys["rep/overdue"]
    assert overdue["crypto_period"]["seconds"] == 30 * DAY
    assert overdue["crypto_period"]["source"] == "key"
    assert overdue["crypto_period"]["default"]["table_row"] == 1
    assert overdue["crypto_period"]["exceeded"] is True
    assert 100 <= overdue["primary_age_days"] < 101
    assert "30 days" in overdue["findings"][0]["detail"]
    clean = keys["rep/clean"]
    assert clean["crypto_period"]["source"] == "default"
    assert clean["crypto_period"]["seconds"] == 2 * 365 * DAY
    assert clean["primary_version"] == 2  # rotated by the scheduler when the clock moved
    assert clean["primary_age_days"] < 1
    assert clean["next_rotation"] is not None
    assert clean["protect_count"] == seeded.encrypts_on_clean
    assert [v["protect_count"] for v in clean["versions"]] == [0, seeded.encrypts_on_clean]
    assert clean["last_used_at"] is not None
    assert keys["rep/noowner"]["last_used_at"] is None
    assert keys["rep/gone"]["state"] == "destroyed"
    assert all(v["state"] == "destroyed" for v in keys["rep/gone"]["versions"])


def test_decrypt_attempts_on_the_revoked_version_are_counted_by_outcome(seeded: Seeded) -> None:
    compromised = _inventory(seeded)["rep/compromised"]
    [attempts] = compromised["compromised_decrypt_attempts"]
    assert attempts["version"] == 1
    assert attempts["by_outcome"] == {"error": 2, "ok": 1}  # the one before revoking: no
    assert attempts["total"] == 3
    deactivated = _inventory(seeded)["rep/deactivated"]
    [uses] = deactivated["deactivated_uses"]
    assert (uses["version"], uses["by_outcome"]) == (1, {"ok": 1})


EXPECTED_CONTROLS = {
    "pci-3.6.1": "attention",     # shares not given to named custodians; an exportable key
    "pci-3.6.1.1": "attention",   # keys without owner or description
    "pci-3.6.1.2": "pass",
    "pci-3.6.1.3": "attention",   # unnamed custodians
    "pci-3.6.1.4": "attention",   # exportable key
    "pci-3.7.1": "pass",
    "pci-3.7.2": "attention",     # plain HTTP on loopback; exportable key
    "pci-3.7.3": "pass",
    "pci-3.7.4": "fail",          # rep/overdue outlived its crypto-period
    "pci-3.7.5": "fail",          # ... and was not replaced
    "pci-3.7.6": "fail",          # dual control off while an exportable key exists
    "pci-3.7.7": "pass",
    "pci-3.7.8": "fail",          # no share shown in the 100 days since init (window 90)
    "pci-3.7.9": "attention",     # exportable key
    "nist-generation": "attention",   # chacha20-poly1305 is not NIST-approved
    "nist-storage": "pass",
    "nist-distribution": "attention",
    "nist-crypto-period": "fail",
    "nist-rotation": "attention",     # keys with no automatic rotation
    "nist-retirement": "fail",
    "nist-destruction": "attention",  # the compromised version still holds material
    "nist-split-knowledge": "fail",
    "nist-custodian-acknowledgement": "fail",
    "nist-accountability": "pass",    # chain and checkpoints verify, the sink is healthy
}


def test_every_control_outcome_matches_the_seeding(seeded: Seeded) -> None:
    body = _compliance(seeded)
    controls = {c["id"]: c for c in body["controls"]}
    assert {cid: c["status"] for cid, c in controls.items()} == EXPECTED_CONTROLS
    assert body["status"] == "fail"
    per_key = {k["key"]: k for k in body["keys"]}
    assert per_key["rep/overdue"]["controls"]["pci-3.7.4"] == "fail"
    assert per_key["rep/overdue"]["status"] == "fail"
    assert per_key["rep/clean"]["controls"]["pci-3.7.4"] == "pass"
    assert per_key["rep/disabled"]["controls"]["nist-crypto-period"] == "pass"
    assert per_key["rep/compromised"]["controls"]["pci-3.7.5"] == "attention"
    assert per_key["rep/deactivated"]["controls"]["nist-retirement"] == "attention"
    assert per_key["rep/compromised"]["controls"]["nist-destruction"] == "attention"
    assert per_key["rep/gone"]["controls"]["nist-destruction"] == "pass"
    assert per_key["rep/young"]["controls"]["nist-generation"] == "attention"
    assert per_key["rep/exportable"]["controls"]["pci-3.7.9"] == "attention"
    assert "rep/overdue" in controls["pci-3.7.4"]["summary"]
    assert controls["pci-3.7.6"]["evidence"][0] == "dual control: off"
    assert "sinks are healthy" in controls["nist-accountability"]["summary"]
    assert any("trail (file, best-effort, healthy" in line
               for line in controls["nist-accountability"]["evidence"])


def test_turning_on_dual_control_passes_split_knowledge(seeded: Seeded) -> None:
    # Runs after the other compliance checks (file order); nothing later revokes or deletes.
    ok(seeded.http.put("/v1/sys/dual-control", json={"approvals": 1}))
    controls = {c["id"]: c["status"] for c in _compliance(seeded)["controls"]}
    assert controls["pci-3.7.6"] == "pass"
    assert controls["nist-split-knowledge"] == "pass"


def test_html_reports_escape_hostile_owner_and_description(seeded: Seeded,
                                                           tmp_path: Path) -> None:
    for path in ("/v1/reports/compliance?format=html", "/v1/reports/inventory?format=html"):
        answer = seeded.http.get(path)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/html")
        assert "default-src 'none'" in answer.headers["content-security-policy"]
        page = answer.text
        assert "<script" not in page and "<img" not in page
        assert html.escape(EVIL_OWNER, quote=True) in page
    inventory_page = seeded.http.get("/v1/reports/inventory?format=html").text
    assert html.escape(EVIL_DESCRIPTION, quote=True) in inventory_page


def test_reports_need_reports_read(seeded: Seeded) -> None:
    with seeded.server.anonymous() as anonymous:
        assert_error(anonymous.get("/v1/reports/inventory"), 401, "unauthenticated")
    for role in ("key-user", "operator"):
        with seeded.server.client(seeded.tokens[role]) as http:
            assert_error(http.get("/v1/reports/compliance"), 403, "forbidden")
            assert_error(http.get("/v1/reports/inventory"), 403, "forbidden")
    with seeded.server.client(seeded.tokens["auditor"]) as http:
        assert ok(http.get("/v1/reports/inventory"))["summary"]["keys"] == 10
        assert ok(http.get("/v1/reports/compliance"))["controls"]


def test_an_unknown_report_format_is_refused(seeded: Seeded) -> None:
    assert_error(seeded.http.get("/v1/reports/compliance?format=pdf"), 400, "invalid_request")


def _scrape(http: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = http.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(answer.text) for s in family.samples}


def _operations(key: str, operation: str, outcome: str) -> tuple[str, tuple[tuple[str, str],
                                                                           ...]]:
    return ("keyquorum_operations_total",
            (("key", key), ("operation", operation), ("outcome", outcome)))


def test_metrics_count_operations_and_gauge_keys(seeded: Seeded) -> None:
    with seeded.server.client(seeded.tokens["operator"]) as http:
        before = _scrape(http)
        assert before[_operations("rep/clean", "encrypt", "ok")] == seeded.encrypts_on_clean
        assert before[_operations("rep/compromised", "decrypt", "error")] == 2
        assert before[("keyquorum_keys", (("state", "enabled"),))] == 8
        assert before[("keyquorum_keys", (("state", "disabled"),))] == 1
        assert before[("keyquorum_keys", (("state", "destroyed"),))] == 1
        assert before[("keyquorum_keys", (("state", "destroy-scheduled"),))] == 0
        assert before[("keyquorum_rotations_overdue", ())] == 1
        assert before[("keyquorum_sealed", ())] == 0
        assert ("keyquorum_audit_backlog", ()) in before
        sink = (("policy", "best-effort"), ("sink", "trail"), ("type", "file"))
        assert before[("keyquorum_audit_sink_healthy", sink)] == 1
        assert before[("keyquorum_audit_sink_failures_total", sink)] == 0
        assert before[("keyquorum_audit_sink_delivered_total", sink)] > 0
        encrypt(seeded.http, "rep/clean", b"one more")
        ok(seeded.http.post("/v1/keys/rep/clean/encrypt",
                            json={"batch": [{"plaintext": b64(b"y")}] * 5}))
        after = _scrape(http)
    assert after[_operations("rep/clean", "encrypt", "ok")] == seeded.encrypts_on_clean + 6
    timed = ("keyquorum_request_duration_seconds_count", (("operation", "encrypt"),))
    assert after[timed] == before[timed] + 2  # two requests, however many items
    scrapes = _operations("", "sys:metrics", "ok")
    assert after[scrapes] == before.get(scrapes, 0) + 1  # scrapes are audited requests too


def test_metrics_need_a_token_with_sys_read(seeded: Seeded) -> None:
    assert_error(seeded.server.anonymous().get("/metrics"), 401, "unauthenticated")
    for role in ("auditor", "key-user"):
        with seeded.server.client(seeded.tokens[role]) as http:
            assert_error(http.get("/metrics"), 403, "forbidden")
