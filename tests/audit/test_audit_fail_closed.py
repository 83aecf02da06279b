"""Audit before answer, fail closed: when the audit write fails, nothing is done or told.

A trigger added to the live SQLite store (as a full disk or a broken sink would)
makes every audit insert fail; the server must answer 503 audit_unavailable,
return no ciphertext, and leave no lifecycle change behind.
"""

from __future__ import annotations

import base64
import sqlite3

from inprocess_server import InProcessServer

FAIL_AUDIT = """
CREATE TRIGGER fail_audit BEFORE INSERT ON audit_records
BEGIN SELECT RAISE(ABORT, 'audit storage is broken'); END;
"""


def break_audit(server: InProcessServer, broken: bool) -> None:
    with sqlite3.connect(server.data_dir / "keyquorum.db", timeout=30) as db:
        db.execute("DROP TRIGGER IF EXISTS fail_audit")
        if broken:
            db.executescript(FAIL_AUDIT)


def test_failed_audit_write_fails_the_operation_and_changes_nothing(
        inprocess_server: InProcessServer) -> None:
    with inprocess_server.client() as http:
        assert http.post("/v1/keys", json={"name": "app/k", "spec": "aes-256-gcm"}).is_success
        plaintext = base64.b64encode(b"secret").decode()
        ciphertext = http.post("/v1/keys/app/k/encrypt",
                               json={"plaintext": plaintext}).json()["ciphertext"]

        break_audit(inprocess_server, broken=True)
        try:
            for path, body in [
                ("/v1/keys/app/k/encrypt", {"plaintext": plaintext}),
                ("/v1/decrypt", {"ciphertext": ciphertext}),
                ("/v1/keys/app/k/encrypt", {"batch": [{"plaintext": plaintext}] * 3}),
                ("/v1/keys", {"name": "app/new", "spec": "ed25519"}),
                ("/v1/keys/app/k/rotate", {}),
            ]:
                answer = http.post(path, json=body)
                assert answer.status_code == 503, (path, answer.text)
                assert answer.json()["error"]["code"] == "audit_unavailable"
                assert "ciphertext" not in answer.text and "plaintext" not in answer.text
        finally:
            break_audit(inprocess_server, broken=False)

        # Nothing the refused requests asked for happened.
        assert http.get("/v1/keys/app/new").status_code == 404
        key = http.get("/v1/keys/app/k").json()
        assert key["primary_version"] == 1 and len(key["versions"]) == 1
        # And the service works again once audit storage does.
        again = http.post("/v1/decrypt", json={"ciphertext": ciphertext})
        assert again.status_code == 200 and again.json()["plaintext"] == plaintext
