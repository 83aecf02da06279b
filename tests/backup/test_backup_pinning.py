"""Review F1: a swapped backup cannot run code on the recovery host, nor restore (or pass a
drill as) a store the operator does not own.

Two real keyquorum stores on SQLite: the victim's, and an attacker's that makes its own
backups with its own root key, so every forged file here authenticates perfectly under
*some* root key. The attacker's headers name a PKCS#11 module that is a real shared
library whose constructor writes a marker file when loaded, and a KMS endpoint that is
a listening socket counting connections. Restore and drill must refuse each forgery
with nothing loaded, nothing contacted and nothing written.
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from conftest import CoreFactory
from keyquorum.backup.drill import run_drill
from keyquorum.backup.format import (
    BackupHeader,
    BackupMismatch,
    InvalidBackup,
    open_body,
    read_header,
    seal_backup,
)
from keyquorum.backup.recovery_config import parse_recovery_config
from keyquorum.backup.restore import restore
from keyquorum.backup.writer import start_backup
from keyquorum.crypto.random import random_bytes
from keyquorum.errors import InvalidRequest, KeyquorumError, WrongPassphrase
from keyquorum.seal import cloudkms, kinds
from keyquorum.seal.entry import SealEntry
from keyquorum.seal.seal_set import SEAL_SET_PREFIX, SHAMIR_ENTRY, Unlock
from keyquorum.seal.shamir import ShamirSealConfig
from keyquorum.seal.trust import SealTrust
from keyquorum.service.context import RequestContext
from keyquorum.service.core import Core
from keyquorum.service.seal_change import SealAddCeremony
from sealset_support import SOFTHSM_MODULE, Evil, MotoKms, SoftHsm, evil, moto_kms, softhsm

pytestmark = pytest.mark.postgresql

__all__ = ["evil", "moto_kms", "softhsm"]

PIN_ENV = "KEYQUORUM_HSM_PIN_BACKUP_TEST"
PHRASE = "the victim's own long passphrase"

@dataclass
class Victim:
    core: Core
    shares: list[str]
    fingerprint: str
    backup: Path
    label: str
    kms_key: str


def _ctx(core: Core) -> RequestContext:
    ctx = RequestContext(request_id="t", client="local")
    ctx.identity = core.tokens.create_root(created_by="t")[1]
    return ctx


def _add_seal(core: Core, body: dict[str, Any], shares: list[str]) -> None:
    """Propose the seal and have two custodians approve it (service.seal_change)."""
    ceremony = SealAddCeremony(core)
    nonce = ceremony.start(_ctx(core), kinds.parse_request(body)).nonce
    assert nonce is not None
    for share in shares[:2]:
        ceremony.submit(_ctx(core), nonce, share)
    assert body.get("id") in {s.id for s in core.seal_set.seals()}


def _write_backup(core: Core, path: Path) -> Path:
    path.write_bytes(b"".join(start_backup(core, segment_size=4096).chunks))
    return path


@pytest.fixture
def victim(make_core: CoreFactory, tmp_path: Path, softhsm: SoftHsm, moto_kms: MotoKms,
           monkeypatch: pytest.MonkeyPatch) -> Victim:
    monkeypatch.setenv(PIN_ENV, "1234")
    trust = SealTrust(pkcs11_modules=frozenset({SOFTHSM_MODULE}),
                      kms_endpoints=frozenset({moto_kms.endpoint_url}),
                      kms_plain_http_hosts=frozenset({"127.0.0.1"}))
    core = make_core(seal_trust=trust)
    shares = make_core.init_answer(core)["shares"]
    label = softhsm.token()
    kms_key = moto_kms.create_key()
    _add_seal(core, {"type": "pkcs11", "id": "hsm", "module": SOFTHSM_MODULE,
                     "token_label": label, "key_label": "root", "pin_env": PIN_ENV}, shares)
    _add_seal(core, {"type": "awskms", "id": "kms", **moto_kms.params(kms_key)}, shares)
    _add_seal(core, {"type": "passphrase", "id": "pp", "passphrase": PHRASE}, shares)
    answer = make_core.init_answer(core)
    assert answer["seal_fingerprint"] == core.custodians().seal_fingerprint
    backup = _write_backup(core, tmp_path / "victim.kqbk")
    return Victim(core, answer["shares"], answer["seal_fingerprint"], backup, label, kms_key)


def _recovery(victim: Victim, moto: MotoKms, *, expect: bool = True) -> dict[str, Any]:
    """The victim operator's own recovery config: their HSM and KMS seals, their pin."""
    return {"expect": [victim.fingerprint] if expect else [],
            "seals": [{"type": "pkcs11", "id": "hsm", "module": SOFTHSM_MODULE,
                       "token_label": victim.label, "key_label": "root", "pin_env": PIN_ENV},
                      {"type": "awskms", "id": "kms", **moto.params(victim.kms_key)}],
            "kms_plain_http_hosts": ["127.0.0.1"]}


def _unlock(config: dict[str, Any]) -> tuple[Unlock, tuple[str, ...]]:
    local = parse_recovery_config(config)
    return Unlock(auto_seals=local.seals, trust=local.trust), local.expect


def _reseal(source: Path, root_key: bytes, out: Path,
            edit: Any, body_root: bytes | None = None) -> Path:
    """Rewrite a backup's header with ``edit(public)`` and seal it under ``root_key``.

    ``body_root`` opens the original body (default: ``root_key``): the attacker knows
    the root key of their own store, so every file made here authenticates under it.
    """
    data = source.read_bytes()
    header, raw = read_header(io.BytesIO(data))
    body = io.BytesIO()
    src = io.BytesIO(data)
    read_header(src)
    open_body(src, header, raw, body_root or root_key, body)
    public = json.loads(json.dumps(header.public))
    edit(public)
    forged = BackupHeader(header.segment_size, public, random_bytes(32), random_bytes(7))
    out.write_bytes(b"".join(seal_backup(forged, root_key, [body.getvalue()])))
    return out


def _evil_seals(evil: Evil) -> dict[str, str]:
    """Header entries naming the attacker's module and endpoint, under the victim's seal ids."""
    wrapped = random_bytes(60)
    module = SealEntry("pkcs11", "hsm", {"module": str(evil.module), "token_label": "kq",
                                         "key_label": "root", "pin_env": PIN_ENV,
                                         "mechanism": "CKM_AES_GCM"}, wrapped)
    kms = SealEntry("awskms", "kms", {"key_id": "k", "region": "us-east-1",
                                      "endpoint_url": evil.endpoint}, wrapped)
    return {SEAL_SET_PREFIX + e.id: base64.b64encode(e.to_json()).decode()
            for e in (module, kms)}


def _refused(backup: Path, target: Path, unlock: Unlock, expect: tuple[str, ...],
             error: type[KeyquorumError]) -> None:
    with pytest.raises(error):
        restore(backup, target, unlock, expect=expect)
    assert not target.exists()


def test_restore_refuses_backup_from_another_store_before_loading_anything(
        victim: Victim, make_core: CoreFactory, moto_kms: MotoKms, evil: Evil,
        tmp_path: Path) -> None:
    attacker = make_core()
    own = _write_backup(attacker, tmp_path / "attacker.kqbk")

    def arm(public: dict[str, Any]) -> None:
        public["seals"].update(_evil_seals(evil))
        public["seal_fingerprint"] = victim.fingerprint  # a claim: never believed

    forged = _reseal(own, attacker.root_key(), tmp_path / "forged.kqbk", arm)
    target = tmp_path / "restored"
    pinned_auto, expect = _unlock(_recovery(victim, moto_kms))
    _refused(forged, target, pinned_auto, expect, BackupMismatch)
    unpinned_auto, none = _unlock(_recovery(victim, moto_kms, expect=False))
    _refused(forged, target, unpinned_auto, none, BackupMismatch)
    _refused(forged, target, Unlock(shares=tuple(victim.shares[:2])), (), InvalidRequest)
    _refused(forged, target, Unlock(shares=tuple(victim.shares[:2])), expect, BackupMismatch)
    _refused(forged, target, Unlock(passphrase=PHRASE), (), WrongPassphrase)
    assert evil.untouched()
    # The victim's own backup, the same way, opens: the refusals above are about the file.
    result = restore(victim.backup, target, pinned_auto, expect=expect)
    assert result.seal_fingerprint == victim.fingerprint and evil.untouched()


def test_drill_against_a_backup_from_another_store_never_passes(
        victim: Victim, make_core: CoreFactory, moto_kms: MotoKms, evil: Evil,
        tmp_path: Path) -> None:
    attacker = make_core()
    attacker_shares = make_core.init_answer(attacker)["shares"]
    forged = _reseal(_write_backup(attacker, tmp_path / "attacker.kqbk"), attacker.root_key(),
                     tmp_path / "forged.kqbk", lambda p: p["seals"].update(_evil_seals(evil)))
    pinned_auto, expect = _unlock(_recovery(victim, moto_kms))
    attempts = [
        (pinned_auto, expect),
        (_unlock(_recovery(victim, moto_kms, expect=False))[0], ()),
        (Unlock(shares=tuple(victim.shares[:2])), ()),
        (Unlock(shares=tuple(victim.shares[:2])), expect),
        (Unlock(passphrase=PHRASE), ()),
        # Even the attacker's own shares: the pin names the victim's seal set.
        (Unlock(shares=tuple(attacker_shares[:2])), expect),
    ]
    for unlock, pin in attempts:
        report = run_drill(forged, unlock, expect=pin, scratch_parent=tmp_path)
        assert not report.ok and [s.name for s in report.steps] == ["restore"], report
    assert evil.untouched()
    assert list(tmp_path.glob("keyquorum-drill-*")) == []
    # The victim's own backup passes the same drill, pinned and through its HSM seal.
    report = run_drill(victim.backup, pinned_auto, expect=expect, scratch_parent=tmp_path)
    assert report.ok and report.pinned and report.seal_fingerprint == victim.fingerprint


def test_restore_refuses_a_root_key_swapped_under_the_pinned_seal_set(
        victim: Victim, make_core: CoreFactory, moto_kms: MotoKms, tmp_path: Path) -> None:
    """The attacker may Encrypt under the victim's KMS key (a common grant): they keep the
    victim's genuine Shamir entry, so the pin matches, and wrap their own root key under
    the victim's KMS key in the victim's seal id. The root key id check refuses it."""
    attacker = make_core()
    attacker_root = attacker.root_key()
    swapped = cloudkms.create(attacker_root, "kms", cloudkms.parse_params(
        moto_kms.params(victim.kms_key)), 1.0)
    genuine, _ = read_header(io.BytesIO(victim.backup.read_bytes()))

    def swap(public: dict[str, Any]) -> None:
        public["seals"] = {SHAMIR_ENTRY: genuine.public["seals"][SHAMIR_ENTRY],
                           SEAL_SET_PREFIX + "kms": base64.b64encode(swapped.to_json()
                                                                     ).decode()}

    forged = _reseal(_write_backup(attacker, tmp_path / "attacker.kqbk"), attacker_root,
                     tmp_path / "swapped.kqbk", swap)
    kms_only = _recovery(victim, moto_kms)
    kms_only["seals"] = kms_only["seals"][1:]
    unlock, expect = _unlock(kms_only)
    with pytest.raises(BackupMismatch, match="root key"):
        restore(forged, tmp_path / "restored", unlock, expect=expect)
    assert not (tmp_path / "restored").exists()
    assert not run_drill(forged, unlock, expect=expect, scratch_parent=tmp_path).ok


def test_an_edited_split_and_an_added_module_are_refused_before_any_seal_is_tried(
        victim: Victim, moto_kms: MotoKms, evil: Evil, tmp_path: Path) -> None:
    """The review's reproduction A: the real commitments with threshold 32, plus a module."""
    def edit(public: dict[str, Any]) -> None:
        raw = json.loads(base64.b64decode(public["seals"][SHAMIR_ENTRY]))
        raw["threshold"] = raw["shares"] = 32
        public["seals"][SHAMIR_ENTRY] = base64.b64encode(json.dumps(raw).encode()).decode()
        public["seals"].update(_evil_seals(evil))

    # Re-sealed under the real root key (the worst case: as if the body still authenticated).
    edited = _reseal(victim.backup, victim.core.root_key(), tmp_path / "edited.kqbk", edit)
    target = tmp_path / "restored"
    pinned_auto, expect = _unlock(_recovery(victim, moto_kms))
    for unlock, pin in [(Unlock(shares=tuple(victim.shares[:2])), ()),
                        (Unlock(shares=tuple(victim.shares[:2])), expect),
                        (pinned_auto, expect)]:
        _refused(edited, target, unlock, pin, InvalidBackup)
        assert not run_drill(edited, unlock, expect=pin, scratch_parent=tmp_path).ok
    assert evil.untouched()


def test_the_fingerprint_pins_shamir_generation_and_root_key(
        victim: Victim, make_core: CoreFactory) -> None:
    """Everything that shows the fingerprint shows the same one; another store's differs."""
    config = victim.core.seal_config
    assert config is not None and config.fingerprint == victim.fingerprint
    header, _ = read_header(io.BytesIO(victim.backup.read_bytes()))
    assert header.public["seal_fingerprint"] == victim.fingerprint
    other = make_core()
    assert other.custodians().seal_fingerprint != victim.fingerprint
    # Same commitments, another root key id: another fingerprint.
    assert replace(config, root_id="00" * 16).fingerprint != victim.fingerprint
    legacy = ShamirSealConfig.from_json(replace(config, root_id="").to_json())
    assert legacy.fingerprint is None


@pytest.mark.parametrize(("config", "message"), [
    ({"expect": ["kqfp1:nothex"]}, "64 hex digits"),
    ({"seals": [{"type": "passphrase", "id": "p"}]}, "automatic seals only"),
    ({"seals": [{"type": "pkcs11", "id": "h", "module": SOFTHSM_MODULE, "token_label": "t",
                 "key_label": "k", "pin_env": "HOME"}]}, "pin_env must start with"),
    ({"seals": [{"type": "awskms", "id": "k", "key_id": "k", "region": "us-east-1",
                 "endpoint_url": "http://kms.example"}]}, "must be https"),
    ({"extra": 1}, "unknown recovery config fields"),
])
def test_a_bad_recovery_config_is_refused_with_the_rule(config: dict[str, Any],
                                                        message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_recovery_config(config)


def test_operator_restore_and_drill_commands_take_the_pin_and_the_local_seals(
        victim: Victim, make_core: CoreFactory, moto_kms: MotoKms, tmp_path: Path) -> None:
    """The same through ``keyquorum operator restore|drill`` (no server needed)."""
    from typer.testing import CliRunner

    from keyquorum.cli.main import app

    config = tmp_path / "recovery.json"
    config.write_text(json.dumps(_recovery(victim, moto_kms)))
    attacker = make_core()
    forged = _write_backup(attacker, tmp_path / "attacker.kqbk")
    runner = CliRunner()

    def kq(*args: str) -> Any:
        return runner.invoke(app, list(args), env={"KEYQUORUM_ADDR": "http://127.0.0.1:9"})

    refused = kq("operator", "restore", str(forged), "--data-dir", str(tmp_path / "r1"),
                 "--recovery-config", str(config))
    assert refused.exit_code == 1 and "backup_mismatch" in refused.stderr
    assert not (tmp_path / "r1").exists()
    failed = kq("--json", "operator", "drill", "--backup", str(forged), "--recovery-config",
                str(config))
    assert failed.exit_code == 1 and json.loads(failed.stdout)["ok"] is False
    passed = kq("--json", "operator", "drill", "--backup", str(victim.backup),
                "--recovery-config", str(config))
    assert passed.exit_code == 0, passed.output
    report = json.loads(passed.stdout)
    assert report["pinned"] is True and report["seal_fingerprint"] == victim.fingerprint
    restored = kq("--json", "operator", "restore", str(victim.backup), "--data-dir",
                  str(tmp_path / "r2"), "--expect", victim.fingerprint, "--share",
                  victim.shares[0], "--share", victim.shares[2])
    assert restored.exit_code == 0, restored.output
    assert json.loads(restored.stdout)["seal_fingerprint"] == victim.fingerprint
    bad = kq("operator", "restore", str(victim.backup), "--data-dir", str(tmp_path / "r3"),
             "--expect", "kqfp1:nothex")
    assert bad.exit_code != 0 and "64 hex digits" in bad.output
