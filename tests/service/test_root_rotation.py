"""A rekey rotates the root key (review F11, t27): retired shares together with an old
backup's public header no longer open a backup made after the rekey; old backups still
open with the old shares; the rotation is one transaction (a failure changes nothing);
HSM seals follow the new root key, passphrase seals stop the rekey.

(Root keys across ``--workers``: tests/server/test_custodian_rekey_workers.py. Shares
sealed to their custodians: tests/service/test_share_delivery.py.)
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from conftest import MakeInProcess
from custodian_keys_support import Custodians
from http_helpers import assert_error, create_key, encrypt, ok, unb64
from inprocess_server import InProcessServer
from keyquorum.backup.format import InvalidBackup, open_body, read_header
from keyquorum.backup.restore import open_backup
from keyquorum.errors import AuditUnavailable, InvalidRequest
from keyquorum.seal.barrier import KEYRING_ENTRY, BarrierError, open_keyring
from keyquorum.seal.fingerprint import root_key_id
from keyquorum.seal.seal_set import Unlock, open_root_key
from keyquorum.storage.system_repo import get_entry
from sealset_support import (
    SOFTHSM_MODULE,
    MotoKms,
    SoftHsm,
    add_seal,
    moto_kms,
    seal_trust_config,
    softhsm,
)

__all__ = ["moto_kms", "softhsm"]

NAMES = ["share-1", "share-2", "share-3"]
SECRET = b"written after the rekey"


def _backup(server: InProcessServer, path: Path) -> Path:
    with server.client() as http:
        answer = http.get("/v1/sys/backup")
    assert answer.status_code == 200, answer.text
    path.write_bytes(answer.content)
    return path


def _rekey(server: InProcessServer, people: Custodians, shares: list[str],
           body: dict[str, Any] | None = None) -> dict[str, Any]:
    with server.client() as http:
        started = ok(http.post("/v1/sys/rekey/init", json=body or {
            "reissue": True, "custodian_keys": people.keys_body()}))
    with server.anonymous() as anyone:
        for share in shares:
            done = ok(anyone.post("/v1/sys/rekey/update",
                                  json={"nonce": started["nonce"], "share": share}))
    return done  # type: ignore[no-any-return]


def _stored(server: InProcessServer, name: str) -> bytes:
    assert server.core is not None
    with server.core.engine.connect() as conn:
        value = get_entry(conn, name)
    assert value is not None
    return value


def test_retired_shares_and_an_old_backup_header_do_not_open_a_backup_made_after_rekey(
        inprocess_server: InProcessServer, tmp_path: Path) -> None:
    server = inprocess_server
    old_shares = list(server.shares)
    before = _backup(server, tmp_path / "before.kqbk")
    people = Custodians(NAMES)
    done = _rekey(server, people, old_shares[:2])
    assert done["root_key_rotated"] is True
    new_shares = people.open_all(done)
    with server.client() as http:
        create_key(http, "after/rekey", "aes-256-gcm")
        ciphertext = encrypt(http, "after/rekey", SECRET)["ciphertext"]
    after = _backup(server, tmp_path / "after.kqbk")

    # F11's t27: the retired shares with the old header give the OLD root key...
    with before.open("rb") as src:
        old_header, _ = read_header(src)
    old_root = open_root_key(old_header.seal_entries(), Unlock(shares=tuple(old_shares[:2])))
    # ...which no longer opens the backup made after the rekey (the body key derives from
    # the root key: the first segment does not authenticate).
    with after.open("rb") as src:
        header, raw = read_header(src)
        with pytest.raises(InvalidBackup):
            open_body(src, header, raw, old_root, io.BytesIO())
    assert header.public["seal_fingerprint"] != old_header.public["seal_fingerprint"]
    # Nor do the retired shares open the new header at all.
    with pytest.raises(InvalidRequest, match="commitments"):
        open_backup(after, Unlock(shares=tuple(old_shares[:2])))

    # The new shares open it, and the key made after the rekey is in it.
    _header, new_root, body = open_backup(after, Unlock(shares=tuple(new_shares[:2])))
    with body:
        body.seek(0)
        assert b"after/rekey" in body.read()
    assert new_root != old_root
    assert root_key_id(new_root) != root_key_id(old_root)
    # Old backups stay openable by old shares (docs/SECURITY.md says so).
    _header, opened, body = open_backup(before, Unlock(shares=tuple(old_shares[1:])))
    body.close()
    assert opened == old_root

    # The service stayed up, and after a seal only the new shares open it; data written
    # before and after the rekey both decrypt (the keyring's terms are unchanged).
    with server.client() as http:
        ok(http.post("/v1/sys/seal"))
    with server.anonymous() as anyone:
        assert_error(anyone.post("/v1/sys/unseal", json={"share": old_shares[0]}),
                     400, "invalid_request")
    assert server.unseal(new_shares[1:])["sealed"] is False
    with server.client() as http:
        plain = ok(http.post("/v1/decrypt", json={"ciphertext": ciphertext}))["plaintext"]
    assert unb64(plain) == SECRET


def test_the_keyring_is_sealed_under_the_new_root_key_only(
        inprocess_server: InProcessServer) -> None:
    server = inprocess_server
    old_root = open_root_key({"seal/shamir": _stored(server, "seal/shamir")},
                             Unlock(shares=tuple(server.shares[:2])))
    people = Custodians(NAMES)
    new_shares = people.open_all(_rekey(server, people, server.shares[:2]))
    keyring = _stored(server, KEYRING_ENTRY)
    with pytest.raises(BarrierError):
        open_keyring(old_root, keyring)
    new_root = open_root_key({"seal/shamir": _stored(server, "seal/shamir")},
                             Unlock(shares=tuple(new_shares[:2])))
    assert open_keyring(new_root, keyring).terms  # same terms, new wrap


def test_a_rekey_that_fails_at_its_quorum_changes_nothing(
        inprocess_server: InProcessServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rotation is one transaction with the audit record: no record, no rotation."""
    server = inprocess_server
    shamir, keyring = _stored(server, "seal/shamir"), _stored(server, KEYRING_ENTRY)
    people = Custodians(NAMES)
    with server.client() as http:
        nonce = ok(http.post("/v1/sys/rekey/init", json={
            "reissue": True, "custodian_keys": people.keys_body()}))["nonce"]
    with server.anonymous() as anyone:
        ok(anyone.post("/v1/sys/rekey/update", json={"nonce": nonce,
                                                     "share": server.shares[0]}))
    assert server.core is not None
    audit = server.core.audit

    def fail(*_args: object, **_kwargs: object) -> None:
        raise AuditUnavailable()

    monkeypatch.setattr(audit, "append_in", fail)
    with server.anonymous() as anyone:
        refused = anyone.post("/v1/sys/rekey/update", json={"nonce": nonce,
                                                             "share": server.shares[1]})
    monkeypatch.undo()
    assert refused.status_code == 503, refused.text
    assert (_stored(server, "seal/shamir"), _stored(server, KEYRING_ENTRY)) == (shamir, keyring)
    with server.anonymous() as anyone:
        status = ok(anyone.get("/v1/sys/rekey"))
    assert status["started"] and status["progress"] == 1  # the ceremony is still there
    with server.client() as http:
        ok(http.post("/v1/sys/seal"))
    assert server.unseal(server.shares[1:])["sealed"] is False  # the old shares still rule


def test_a_passphrase_seal_stops_a_rekey_before_it_starts(
        inprocess_server: InProcessServer) -> None:
    server = inprocess_server
    with server.client() as http:
        add_seal(http, {"type": "passphrase", "passphrase": "a long passphrase nobody guesses"},
                 server.shares[:2])
        refused = http.post("/v1/sys/rekey/init", json={
            "reissue": True, "custodian_keys": Custodians(NAMES).keys_body()})
        assert_error(refused, 409, "conflict")
        assert "passphrase seal(s) passphrase" in refused.json()["error"]["message"]
        assert ok(http.get("/v1/sys/rekey"))["started"] is False


def test_an_hsm_seal_opens_the_new_root_key_after_a_rekey(
        make_inprocess: MakeInProcess, softhsm: SoftHsm, moto_kms: MotoKms,
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KEYQUORUM_HSM_PIN_ROTATION", "1234")
    server = make_inprocess(config=seal_trust_config(moto_kms))
    server.init()
    server.unseal()
    label = softhsm.token(pin="1234")
    with server.client() as http:
        add_seal(http, {"type": "pkcs11", "id": "hsm", "module": SOFTHSM_MODULE,
                        "token_label": label, "key_label": "kq-root",
                        "pin_env": "KEYQUORUM_HSM_PIN_ROTATION"}, server.shares[:2])
    people = Custodians(NAMES)
    done = _rekey(server, people, server.shares[:2])
    assert done["root_key_rotated"] is True
    with server.client() as http:
        records = ok(http.get("/v1/audit", params={"operation": "sys:rekey-update"}))
    completed = [r for r in records["records"] if r.get("detail", {}).get("completed")]
    assert completed[0]["detail"]["seals_rewrapped"] == "hsm"
    # Sealed, the HSM alone opens the service again: it wraps the NEW root key.
    with server.client() as http:
        ok(http.post("/v1/sys/seal"))
    with server.anonymous() as anyone:
        assert ok(anyone.post("/v1/sys/unseal", json={"auto": True}))["sealed"] is False
    assert server.core is not None
    new_root = open_root_key({"seal/shamir": _stored(server, "seal/shamir")},
                             Unlock(shares=tuple(people.open_all(done)[:2])))
    assert server.core.root_key() == new_root
