"""Backup from a real server, wipe it, restore into a fresh directory, and get it all back.

One server is filled with keys of every family (a rotated key with old
versions among them), policies and tokens, and backed up with the CLI. The
tests then restore that one backup: through the CLI into a fresh directory
served by a new server, in-process for every way a backup can be damaged, and
through the drill command.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from http_helpers import assert_error, b64, encrypt, ok, unb64
from keyquorum.backup.format import InvalidBackup, read_header
from keyquorum.backup.restore import restore
from keyquorum.errors import InvalidRequest, Sealed, WrongPassphrase
from keyquorum.seal.seal_set import Unlock
from keyquorum.seal.shamir import create_shamir_seal
from kq_support import ServerProcess, free_port
from sealset_support import add_seal

pytestmark = pytest.mark.server

SPECS = {"bk/aes": "aes-256-gcm", "bk/chacha": "chacha20-poly1305", "bk/mac": "hmac-sha256",
         "bk/ed": "ed25519", "bk/ec": "ecdsa-p256", "bk/kem": "ml-kem-768",
         "bk/dsa": "ml-dsa-44"}
SEGMENT = 1024  # small segments: the test backup spans many, so first and last differ
PHRASE = "an obviously fake test passphrase for backups"


@dataclass
class Made:
    """What the original service produced before it was backed up and wiped."""

    backup: Path
    shares: list[str] = field(repr=False)
    root_token: str = field(repr=False)
    user_token: str = field(repr=False)
    ciphertexts: list[tuple[str, dict[str, str] | None, bytes, int]] = field(default_factory=list)
    signatures: list[tuple[str, bytes, str]] = field(default_factory=list)
    macs: list[tuple[str, bytes, str]] = field(default_factory=list)
    backup_summary: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""  # the seal fingerprint custodian status showed


def kq(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "keyquorum", *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=120)


def _fill(http: httpx.Client, made: Made) -> None:
    for name, spec in SPECS.items():
        ok(http.post("/v1/keys", json={"name": name, "spec": spec}))
    for round_ in range(3):  # bk/aes ends with versions 1, 2, 3: each with its ciphertexts
        for context in (None, {"tenant": f"t{round_}"}):
            plaintext = f"secret {round_} {context}".encode()
            answer = encrypt(http, "bk/aes", plaintext, context)
            made.ciphertexts.append((answer["ciphertext"], context, plaintext,
                                     answer["key_version"]))
        if round_ < 2:
            ok(http.post("/v1/keys/bk/aes/rotate"))
    answer = encrypt(http, "bk/chacha", b"chacha data")
    made.ciphertexts.append((answer["ciphertext"], None, b"chacha data", 1))
    for name in ("bk/ed", "bk/ec", "bk/dsa"):
        signed = ok(http.post(f"/v1/keys/{name}/sign", json={"message": b64(b"signed")}))
        made.signatures.append((name, b"signed", signed["signature"]))
    tag = ok(http.post("/v1/keys/bk/mac/mac", json={"message": b64(b"maced")}))
    made.macs.append(("bk/mac", b"maced", tag["mac"]))
    ok(http.put("/v1/policies/bk-readers", json={"rules": [
        {"keys": "bk/**", "operations": ["decrypt", "verify", "mac", "read"]}]}))
    made.user_token = ok(http.post("/v1/auth/tokens", json={
        "policies": ["bk-readers"], "name": "bk-user"}))["token"]
    add_seal(http, {"type": "passphrase", "passphrase": PHRASE}, made.shares[:2])


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Made]:
    base = tmp_path_factory.mktemp("backup")
    server = ServerProcess(data_dir=base / "data", port=free_port())
    server.start()
    try:
        server.init()
        server.unseal()
        made = Made(backup=base / "service.kqbk", shares=server.shares,
                    root_token=server.root_token, user_token="")
        with server.client() as http:
            _fill(http, made)
        operator = ok(server.client().post("/v1/auth/tokens", json={"policies": ["operator"]}))
        with server.client(made.user_token) as user:  # sys:backup is the operator's
            assert_error(user.get("/v1/sys/backup"), 403, "forbidden")
        with server.client(operator["token"]) as op:
            assert_error(op.get("/v1/sys/backup", params={"segment_size": 8}), 400,
                         "invalid_request")
        answer = kq("--json", "operator", "backup", str(made.backup), "--segment-size",
                    str(SEGMENT), env={"KEYQUORUM_ADDR": server.addr,
                                       "KEYQUORUM_TOKEN": operator["token"]})
        assert answer.returncode == 0, answer.stderr
        made.backup_summary = json.loads(answer.stdout)
        made.fingerprint = ok(server.client().get("/v1/sys/custodians"))["seal_fingerprint"]
    finally:
        server.stop()
    shutil.rmtree(base / "data")  # the original is gone: only the backup is left
    yield made


def share_file(tmp_path: Path, shares: list[str], name: str = "shares.txt") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(shares) + "\n")
    path.chmod(0o600)
    return path


def test_backup_file_is_private_and_its_header_names_what_it_holds(made: Made) -> None:
    assert stat.S_IMODE(made.backup.stat().st_mode) == 0o600
    assert not list(made.backup.parent.glob("*.partial"))
    with made.backup.open("rb") as stream:
        header, _raw = read_header(stream)
    public = header.public
    assert public["schema_revision"] and public["server_version"]
    assert "seal/shamir" in public["seals"]
    assert public["tables"]["keys"] == len(SPECS)
    assert public["tables"]["key_versions"] == len(SPECS) + 2  # bk/aes rotated twice
    assert public["tables"]["tokens"] >= 3 and public["tables"]["audit_records"] > 10
    assert public["canaries"] == len(SPECS) == made.backup_summary["canaries"]
    assert made.backup_summary["backup_id"] == public["backup_id"]
    # Every backup shows the seal fingerprint, the one custodian status shows (review F1).
    assert made.fingerprint.startswith("kqfp1:")
    assert made.backup_summary["seal_fingerprint"] == public["seal_fingerprint"] \
        == made.fingerprint
    raw = made.backup.read_bytes()
    assert b"bk/aes" not in raw and b"secret" not in raw  # names and rows only in the body


def test_restore_into_a_fresh_directory_brings_everything_back(made: Made, tmp_path: Path
                                                               ) -> None:
    target = tmp_path / "restored"
    answer = kq("--json", "operator", "restore", str(made.backup), "--data-dir", str(target),
                "--share-file", str(share_file(tmp_path, made.shares[1:])))
    assert answer.returncode == 0, answer.stderr
    summary = json.loads(answer.stdout)
    assert summary["backup_id"] == made.backup_summary["backup_id"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o700

    server = ServerProcess(data_dir=target, port=free_port())
    server.start()
    try:
        status = httpx.get(f"{server.addr}/v1/sys/seal-status").json()
        assert status["initialized"] and status["sealed"]  # starts sealed
        server.unseal(made.shares[1:])  # any quorum of the same shares opens it
        server.root_token = made.root_token
        with server.client(made.user_token) as user:  # a token made before still works
            for text, context, plaintext, version in made.ciphertexts:
                body: dict[str, Any] = {"ciphertext": text}
                if context is not None:
                    body["context"] = context
                answer_ = ok(user.post("/v1/decrypt", json=body))
                assert unb64(answer_["plaintext"]) == plaintext
                assert answer_["key_version"] == version
            assert {v for *_, v in made.ciphertexts} == {1, 2, 3}
            for name, message, signature in made.signatures:
                assert ok(user.post(f"/v1/keys/{name}/verify", json={
                    "message": b64(message), "signature": signature}))["valid"] is True
            for name, message, tag in made.macs:
                assert ok(user.post(f"/v1/keys/{name}/verify-mac", json={
                    "message": b64(message), "mac": tag}))["valid"] is True
        with server.client() as root:
            verified = ok(root.post("/v1/audit/verify"))
            assert verified["ok"] is True, verified
            records = ok(root.get("/v1/audit", params={"limit": 1000}))["records"]
            restored_at = [r for r in records if r["operation"] == "sys:restore"]
            assert len(restored_at) == 1
            older = [r for r in records if r["id"] < restored_at[0]["id"]]
            assert older and older[0]["operation"] == "sys:backup"  # the last before it
            assert older[0]["outcome"] == "ok" and older[0]["detail"] == {
                "backup_id": summary["backup_id"], "canaries": str(len(SPECS))}
            assert restored_at[0]["detail"]["backup_id"] == summary["backup_id"]
            assert ok(root.get("/v1/policies/bk-readers"))["rules"]
            assert ok(root.get("/v1/keys/bk/aes"))["primary_version"] == 3
    finally:
        server.stop()


def _refused(backup: Path, target: Path, shares: list[str], error: type[Exception]) -> str:
    with pytest.raises(error) as caught:
        restore(backup, target, Unlock(shares=tuple(shares)))
    assert not target.exists(), "a refused restore created the target"
    return str(caught.value.message)  # type: ignore[attr-defined]


def _positions(made: Made) -> dict[str, int]:
    raw = made.backup.read_bytes()
    with made.backup.open("rb") as stream:
        _header, header_raw = read_header(stream)
    header_size = len(header_raw)
    return {"magic": 0, "segment size": 7, "public header": 30,
            "seal entry": raw.index(b"seal/shamir") + 20, "salt": header_size - 60,
            "commitment": header_size - 1, "first segment": header_size + 5,
            "first tag": header_size + SEGMENT + 3, "last segment": len(raw) - 40,
            "last tag": len(raw) - 1}


@pytest.mark.parametrize("where", ["magic", "segment size", "public header", "seal entry",
                                   "salt", "commitment", "first segment", "first tag",
                                   "last segment", "last tag"])
def test_a_flipped_byte_anywhere_is_refused_and_nothing_is_created(
        made: Made, tmp_path: Path, where: str) -> None:
    raw = bytearray(made.backup.read_bytes())
    raw[_positions(made)[where]] ^= 0x01
    damaged = tmp_path / "damaged.kqbk"
    damaged.write_bytes(raw)
    error: type[Exception] = InvalidBackup
    if where == "seal entry":  # the shares no longer match the edited commitments or config
        error = (InvalidBackup, InvalidRequest, Sealed)  # type: ignore[assignment]
    _refused(damaged, tmp_path / "target", made.shares[:2], error)


def test_an_edit_that_keeps_the_header_valid_json_is_refused(made: Made, tmp_path: Path
                                                             ) -> None:
    raw = made.backup.read_bytes()
    at = raw.index(b'"canaries":') + len(b'"canaries":')
    edited = raw[:at] + (b"0" if raw[at:at + 1] != b"0" else b"1") + raw[at + 1:]
    (tmp_path / "edited.kqbk").write_bytes(edited)
    _refused(tmp_path / "edited.kqbk", tmp_path / "target", made.shares[:2], InvalidBackup)


@pytest.mark.parametrize("cut", ["1 byte", "a tag", "at a segment boundary", "to the header",
                                 "mid header", "to nothing"])
def test_a_truncated_backup_is_refused_and_nothing_is_created(
        made: Made, tmp_path: Path, cut: str) -> None:
    raw = made.backup.read_bytes()
    with made.backup.open("rb") as stream:
        _header, header_raw = read_header(stream)
    keep = {"1 byte": len(raw) - 1, "a tag": len(raw) - 16,
            "at a segment boundary": len(header_raw) + 3 * (SEGMENT + 16),
            "to the header": len(header_raw), "mid header": 40, "to nothing": 0}[cut]
    (tmp_path / "cut.kqbk").write_bytes(raw[:keep])
    _refused(tmp_path / "cut.kqbk", tmp_path / "target", made.shares[:2], InvalidBackup)


def test_shares_of_another_store_or_too_few_are_refused(made: Made, tmp_path: Path) -> None:
    _config, foreign = create_shamir_seal(os.urandom(32), 3, 2)
    message = _refused(made.backup, tmp_path / "target", foreign[:2], InvalidRequest)
    assert "share" in message and foreign[0] not in message
    _refused(made.backup, tmp_path / "target", made.shares[:1], Sealed)
    answer = kq("operator", "restore", str(made.backup), "--data-dir", str(tmp_path / "t2"),
                "--share", foreign[0], "--share", foreign[1])
    assert answer.returncode == 1 and "error: invalid_request:" in answer.stderr
    assert foreign[0] not in answer.stderr and not (tmp_path / "t2").exists()


def test_the_passphrase_seal_alone_restores_and_drills(made: Made, tmp_path: Path) -> None:
    """The backup carries the seal set: its passphrase seal opens it with no share at all."""
    phrase_file = tmp_path / "phrase"
    phrase_file.write_text(PHRASE + "\n")
    phrase_file.chmod(0o600)
    with pytest.raises(WrongPassphrase):
        restore(made.backup, tmp_path / "wrong", Unlock(passphrase=PHRASE + "!"))
    assert not (tmp_path / "wrong").exists()
    result = restore(made.backup, tmp_path / "restored", Unlock(passphrase=PHRASE))
    assert result.backup_id == made.backup_summary["backup_id"]
    assert (tmp_path / "restored").is_dir()
    answer = kq("--json", "operator", "drill", "--backup", str(made.backup),
                "--passphrase-file", str(phrase_file))
    assert answer.returncode == 0, answer.stdout + answer.stderr
    report = json.loads(answer.stdout)
    assert report["ok"] is True and all(c["ok"] for c in report["canaries"])
    assert PHRASE not in answer.stdout + answer.stderr


def test_a_non_empty_directory_is_refused_and_left_alone(made: Made, tmp_path: Path) -> None:
    target = tmp_path / "busy"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(InvalidRequest, match="not empty"):
        restore(made.backup, target, Unlock(shares=tuple(made.shares[:2])))
    assert [p.name for p in target.iterdir()] == ["keep.txt"]


def test_the_drill_passes_end_to_end(made: Made, tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"  # the drill's scratch instance goes under TMPDIR
    scratch.mkdir()
    answer = kq("operator", "drill", "--backup", str(made.backup), "--share-file",
                str(share_file(tmp_path, made.shares[:1], "one")), "--share-file",
                str(share_file(tmp_path, made.shares[2:], "two")), "--json",
                env={"TMPDIR": str(scratch)})
    assert answer.returncode == 0, answer.stdout + answer.stderr
    report = json.loads(answer.stdout)
    assert report["ok"] is True
    assert [s["name"] for s in report["steps"]] == ["restore", "unseal", "canaries", "audit"]
    assert all(s["ok"] and s["seconds"] >= 0 for s in report["steps"])
    assert len(report["canaries"]) == len(SPECS)
    assert {c["kind"] for c in report["canaries"]} == {"decrypt", "mac", "sign", "decapsulate"}
    assert all(c["ok"] for c in report["canaries"])
    assert not list(scratch.iterdir()), "the drill left its scratch instance behind"
    table = kq("operator", "drill", "--backup", str(made.backup), "--share", made.shares[0],
               "--share", made.shares[1])
    assert table.returncode == 0 and "PASS" in table.stdout and "canaries" in table.stdout


def test_the_drill_fails_with_exit_1_on_too_few_shares_or_a_damaged_backup(
        made: Made, tmp_path: Path) -> None:
    answer = kq("operator", "drill", "--backup", str(made.backup), "--share", made.shares[0],
                "--json")
    assert answer.returncode == 1
    report = json.loads(answer.stdout)
    assert report["ok"] is False and report["steps"][0]["name"] == "restore"
    assert report["steps"][0]["detail"].startswith("sealed:")
    raw = bytearray(made.backup.read_bytes())
    raw[-1] ^= 0x80
    (tmp_path / "bad.kqbk").write_bytes(raw)
    answer = kq("operator", "drill", "--backup", str(tmp_path / "bad.kqbk"), "--share",
                made.shares[0], "--share", made.shares[1])
    assert answer.returncode == 1 and "FAIL" in answer.stdout
