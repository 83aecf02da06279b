"""Review F3: the operator role cannot take every key by adding a seal of its own.

The review's path: an operator token adds a passphrase seal it chose, downloads a
backup and opens every key offline. Adding a seal is now a custodian ceremony
(``service.seal_change``): the token only proposes, and the seal joins the seal set
when a quorum of Shamir shares is submitted. Real app, real store, real backups.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path

import pytest

from custodian_keys_support import Custodians
from http_helpers import assert_error, create_key, encrypt, ok, unb64
from inprocess_server import InProcessServer
from keyquorum.backup.restore import open_backup
from keyquorum.errors import WrongPassphrase
from keyquorum.seal.seal_set import Unlock
from sealset_support import add_seal

PHRASE = "operator-chosen-passphrase-123"
SECRET = b"TOP SECRET PAN 4111"


def _backup(http: object, path: Path) -> Path:
    answer = http.get("/v1/sys/backup")  # type: ignore[attr-defined]
    assert answer.status_code == 200, answer.text
    path.write_bytes(answer.content)
    return path


def _stored_entries(server: InProcessServer) -> dict[str, bytes]:
    with sqlite3.connect(server.data_dir / "keyquorum.db") as db:
        return {name: bytes(value) for name, value in
                db.execute("SELECT name, value FROM system_entries")}


def test_operator_role_cannot_read_any_key_through_a_seal_of_its_own(
        inprocess_server: InProcessServer, tmp_path: Path) -> None:
    server = inprocess_server
    with server.client() as root:
        create_key(root, "secret/x", "aes-256-gcm")
        ciphertext = encrypt(root, "secret/x", SECRET)["ciphertext"]
        operator = str(ok(root.post("/v1/auth/tokens", json={"policies": ["operator"]}))
                       ["token"])
    with server.client(operator) as http:
        assert_error(http.post("/v1/keys/secret/x/decrypt", json={"ciphertext": ciphertext}),
                     403, "forbidden")
        proposed = ok(http.post("/v1/sys/seals", json={"type": "passphrase", "id": "mine",
                                                       "passphrase": PHRASE}))
        assert proposed["started"] is True and proposed["required"] == 2
        assert proposed["seal"]["type"] == "passphrase" and proposed["progress"] == 0
        assert [s["id"] for s in ok(http.get("/v1/sys/seals"))["seals"]] == ["shamir"]
        # Nor can the operator finish it: shares are the credential, and it holds none.
        assert_error(http.post("/v1/sys/seal-add/update", json={
            "nonce": proposed["nonce"], "share": "kqs1-1-" + "A" * 52 + "-00000000"}),
            400, "invalid_request")
        assert_error(http.post("/v1/sys/seal-add/update", json={
            "nonce": "0" * 32, "share": server.shares[0]}), 400, "invalid_request")
        stolen = _backup(http, tmp_path / "stolen.kqbk")
    # Offline, with its own passphrase: the backup does not open, the store holds no copy
    # of the root key the passphrase opens (the pending wrap is under the barrier).
    with pytest.raises(WrongPassphrase):
        open_backup(stolen, Unlock(passphrase=PHRASE))
    stored = _stored_entries(server)
    pending = json.loads(stored["ceremony/seal-add"])
    assert "wrapped_root" not in pending["seal"] and "seal/set/mine" not in stored
    assert b"wrapped_root" not in base64.b64decode(pending["sealed_entry"])

    # The same request approved by a quorum of custodians adds the seal: the gate is the
    # shares, and only the shares (the audit log names each step).
    with server.anonymous() as anyone:  # custodians hold shares, not tokens
        status = ok(anyone.get("/v1/sys/seal-add"))
        assert status["seal"]["id"] == "mine" and "passphrase" not in json.dumps(
            status["seal"]["params"])
        for share in server.shares[1:]:
            answer = ok(anyone.post("/v1/sys/seal-add/update",
                                    json={"nonce": proposed["nonce"], "share": share}))
        assert answer["complete"] is True and answer["seal"]["id"] == "mine"
    with server.client(operator) as http:
        assert [s["id"] for s in ok(http.get("/v1/sys/seals"))["seals"]] == ["shamir", "mine"]
        approved = _backup(http, tmp_path / "approved.kqbk")
    _header, root_key, body = open_backup(approved, Unlock(passphrase=PHRASE))
    body.close()
    assert len(root_key) == 32
    with server.client() as root:
        records = ok(root.get("/v1/audit", params={"limit": 500}))["records"]
        assert unb64(ok(root.post("/v1/decrypt", json={"ciphertext": ciphertext}))
                     ["plaintext"]) == SECRET
    steps = [r["operation"] for r in records if r["operation"].startswith("sys:seal-add")]
    assert steps.count("sys:seal-add") >= 1 and steps.count("sys:seal-add-update") >= 2


def test_a_seal_proposal_is_one_at_a_time_cancellable_and_tied_to_its_generation(
        inprocess_server: InProcessServer) -> None:
    server = inprocess_server
    with server.client() as root:
        first = ok(root.post("/v1/sys/seals", json={"type": "passphrase",
                                                    "passphrase": PHRASE}))
        assert_error(root.post("/v1/sys/seals", json={"type": "passphrase", "id": "two",
                                                      "passphrase": PHRASE}), 409, "conflict")
        ok(root.post("/v1/sys/seal-add/update", json={"nonce": first["nonce"],
                                                      "share": server.shares[0]}))
        assert_error(root.post("/v1/sys/seal-add/update", json={
            "nonce": first["nonce"], "share": server.shares[0]}), 400, "invalid_request")
        cancelled = ok(root.delete("/v1/sys/seal-add"))
        assert cancelled["cancelled"] is True
        assert_error(root.post("/v1/sys/seal-add/update", json={
            "nonce": first["nonce"], "share": server.shares[1]}), 404, "not_found")
        assert ok(root.get("/v1/sys/seal-add"))["started"] is False
        # A rekey between proposal and quorum: the old shares no longer approve it.
        second = ok(root.post("/v1/sys/seals", json={"type": "passphrase",
                                                     "passphrase": PHRASE}))
        # (a pending proposal is not yet a seal: it does not stop the root key's rotation)
        keys = Custodians(["share-1", "share-2", "share-3"])
        rekey = ok(root.post("/v1/sys/rekey/init", json={"reissue": True,
                                                         "custodian_keys": keys.keys_body()}))
        for share in server.shares[:2]:
            done = ok(root.post("/v1/sys/rekey/update",
                                json={"nonce": rekey["nonce"], "share": share}))
        new_shares = keys.open_all(done)
        assert_error(root.post("/v1/sys/seal-add/update", json={
            "nonce": second["nonce"], "share": new_shares[0]}), 409, "conflict")
        assert [s["id"] for s in ok(root.get("/v1/sys/seals"))["seals"]] == ["shamir"]
        ok(root.delete("/v1/sys/seal-add"))
        added = add_seal(root, {"type": "passphrase", "passphrase": PHRASE}, new_shares[:2])
    assert added["id"] == "passphrase"


def test_a_proposal_without_sys_seal_or_while_sealed_is_refused(
        inprocess_server: InProcessServer) -> None:
    server = inprocess_server
    with server.client() as root:
        auditor = str(ok(root.post("/v1/auth/tokens", json={"policies": ["auditor"]}))
                      ["token"])
    with server.client(auditor) as http:
        assert_error(http.post("/v1/sys/seals", json={"type": "passphrase",
                                                      "passphrase": PHRASE}), 403, "forbidden")
        assert_error(http.delete("/v1/sys/seal-add"), 403, "forbidden")
    with server.client() as root:
        ok(root.post("/v1/sys/seal"))
        assert_error(root.post("/v1/sys/seals", json={"type": "passphrase",
                                                      "passphrase": PHRASE}), 503, "sealed")
