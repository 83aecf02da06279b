"""Reports an auditor can rely on: fresh evidence, no null, provenance, a signature.

The compliance report never reuses an audit verification across a seal or older
than ``report_evidence_max_age``; every answer names the server, its version, the
generation time and the audit chain head, and is signed by the audit checkpoint
key, so a saved copy is checked offline (``keyquorum.reports.signed.verify``).
"""

from __future__ import annotations

import json
import re

import httpx
import pytest

from http_helpers import create_key, ok, unique
from inprocess_server import InProcessServer
from keyquorum.reports.signed import verify


@pytest.fixture
def server(inprocess_server: InProcessServer) -> InProcessServer:
    return inprocess_server


def _accountability(report: dict) -> dict:
    return next(c for c in report["controls"] if c["id"] == "nist-accountability")


def _public_pem(root: httpx.Client) -> str:
    return str(ok(root.get("/v1/audit/public-key"))["public_key_pem"])


def test_evidence_is_not_reused_across_a_seal(server: InProcessServer) -> None:
    with server.client() as root:
        create_key(root, unique("rep/k"), "aes-256-gcm")
        before = _accountability(ok(root.get("/v1/reports/compliance")))["evidence"][-1]
        ok(root.post("/v1/sys/seal"))  # signs a checkpoint
    server.unseal()  # and so does the unseal
    with server.client() as root:
        after = _accountability(ok(root.get("/v1/reports/compliance")))
    newest = r"; (\d+) signed checkpoints, the newest good one at record (\d+)"
    was, now = re.search(newest, before), re.search(newest, after["evidence"][-1])
    assert was and now, (before, after["evidence"][-1])
    # A new verification after the seal, not the evidence from before it.
    assert int(now.group(1)) > int(was.group(1)) and int(now.group(2)) > int(was.group(2))
    assert after["status"] == "pass"


def test_evidence_older_than_the_freshness_setting_is_checked_again(
        server: InProcessServer) -> None:
    with server.client() as root:
        first = _accountability(ok(root.get("/v1/reports/compliance")))["evidence"][-1]
        again = _accountability(ok(root.get("/v1/reports/compliance")))["evidence"][-1]
        assert again == first  # reused within five minutes
        server.advance_clock(301)
        later = _accountability(ok(root.get("/v1/reports/compliance")))["evidence"][-1]
    assert later != first  # a new verification, with its own time and count


def test_json_reports_carry_provenance_and_a_signature_that_catches_edits(
        server: InProcessServer) -> None:
    with server.client() as root:
        create_key(root, unique("rep/j"), "aes-256-gcm")
        pem = _public_pem(root)
        for name in ("compliance", "inventory"):
            body = ok(root.get(f"/v1/reports/{name}"))
            facts = body["provenance"]
            assert facts["server"]["node"] and facts["server"]["version"]
            assert facts["audit_chain_head"]["records"] > 0
            assert re.fullmatch(r"[0-9a-f]{64}", facts["audit_chain_head"]["chain_hash"])
            text = json.dumps(body, indent=2).encode()  # as a person saves it
            verdict = verify(text, pem)
            assert (verdict.ok, verdict.pinned) == (True, True), verdict.reason
            assert verify(text).ok and not verify(text).pinned  # checks, but not pinned
            body["summary"]["keys"] = 999 if name == "inventory" else body["summary"]["keys"]
            body["status"] = "pass" if name == "compliance" else body.get("status")
            body["generated_at"] = "2000-01-01T00:00:00Z"
            assert not verify(json.dumps(body).encode(), pem).ok
    other = ("-----BEGIN PUBLIC KEY-----\n"
             "MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n"
             "-----END PUBLIC KEY-----\n")
    assert "not by the given public key" in verify(text, other).reason


def test_html_reports_fit_a_page_say_why_and_are_signed(server: InProcessServer) -> None:
    with server.client() as root:
        name = unique("rep/h")
        create_key(root, name, "aes-256-gcm")  # no description: attention, with a reason
        pem = _public_pem(root)
        page = root.get("/v1/reports/compliance", params={"format": "html"}).text
        inventory = root.get("/v1/reports/inventory", params={"format": "html"}).text
    for html in (page, inventory):
        assert "None" not in html and "null" not in html.split("<!-- keyquorum-signature")[0]
        assert "audit chain head" in html and "@page{size:A4" in html
        assert verify(html.encode(), pem).ok
        edited = html.replace("keyquorum", "keyquorun", 1).encode()
        assert not verify(edited, pem).ok
    assert "<details" not in page  # nothing a printout would hide
    assert f"<code>{name.replace('/', '/<wbr>')}</code>" in page  # wraps at / only
    assert "no description" in page
    verdict = verify(page.encode(), pem)
    assert verdict.provenance and verdict.provenance["audit_chain_head"]["records"] > 0
