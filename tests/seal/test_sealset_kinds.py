"""Each seal kind wraps and unwraps the root key for real (SoftHSM2, moto), and
``open_root_key`` opens stored entries offline with each kind, as restore does."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from keyquorum.crypto.pwhash import Argon2Params
from keyquorum.crypto.random import random_bytes
from keyquorum.errors import InvalidRequest, Sealed, SealUnavailable, WrongPassphrase
from keyquorum.seal import cloudkms, hsm, kinds, passphrase
from keyquorum.seal.entry import SealEntry
from keyquorum.seal.seal_set import SEAL_SET_PREFIX, SHAMIR_ENTRY, Unlock, open_root_key
from keyquorum.seal.shamir import create_shamir_seal
from keyquorum.seal.trust import SealTrust
from sealset_support import SOFTHSM_MODULE, MotoKms, SoftHsm, moto_kms, softhsm

__all__ = ["moto_kms", "softhsm"]

ROOT = random_bytes(32)
PHRASE = "correct horse battery staple"
CHEAP = Argon2Params(salt=b"s" * 16, opslimit=1, memlimit=8192 * 8)  # unit tests only


def _pkcs11(label: str) -> dict[str, object]:
    return hsm.parse_params({"module": SOFTHSM_MODULE, "token_label": label,
                             "key_label": "kq-root-wrap", "pin_env": "KQ_TEST_PIN"})


# -- passphrase --------------------------------------------------------------------------


def test_passphrase_seal_round_trip_and_stores_no_secret() -> None:
    entry = passphrase.create(ROOT, "pp-1", PHRASE, 1.0)
    assert passphrase.open_root(entry, PHRASE) == ROOT
    stored = entry.to_json()
    assert PHRASE.encode() not in stored and ROOT not in stored
    assert entry.params["kdf"] == "argon2id" and entry.params["memlimit"] >= 64 * 1024 * 1024
    again = SealEntry.from_json(stored)
    assert passphrase.open_root(again, PHRASE) == ROOT


def test_wrong_passphrase_is_refused() -> None:
    entry = passphrase.create(ROOT, "pp-1", PHRASE, 1.0, CHEAP)
    with pytest.raises(WrongPassphrase) as caught:
        passphrase.open_root(entry, PHRASE + "!")
    assert PHRASE not in str(caught.value)


@pytest.mark.parametrize("bad", ["short", "", 42, None, "x" * 1025])
def test_a_passphrase_must_be_long_enough(bad: object) -> None:
    with pytest.raises(InvalidRequest, match=r"16-1024 characters|must be a string"):
        passphrase.create(ROOT, "pp-1", bad, 1.0, CHEAP)


def test_the_wrapped_root_is_bound_to_the_seal_id_and_kind() -> None:
    entry = passphrase.create(ROOT, "pp-1", PHRASE, 1.0, CHEAP)
    moved = dataclasses.replace(entry, id="pp-2")
    with pytest.raises(WrongPassphrase):
        passphrase.open_root(moved, PHRASE)


# -- pkcs11 (SoftHSM2) -------------------------------------------------------------------


def test_pkcs11_seal_wraps_in_the_token_with_a_non_extractable_key(
        softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KQ_TEST_PIN", "1234")
    label = softhsm.token()
    entry = hsm.create(ROOT, "hsm-1", _pkcs11(label), 1.0)
    assert "1234" not in entry.to_json().decode() and ROOT not in entry.to_json()
    assert hsm.open_root(entry) == ROOT
    # A second seal on the same token finds the same key instead of making another.
    second = hsm.create(ROOT, "hsm-2", _pkcs11(label), 1.0)
    assert hsm.open_root(second) == ROOT

    import pkcs11
    from pkcs11 import Attribute, KeyType, ObjectClass

    token = pkcs11.lib(SOFTHSM_MODULE).get_token(token_label=label)
    with token.open(user_pin="1234") as session:
        key = session.get_key(ObjectClass.SECRET_KEY, KeyType.AES, label="kq-root-wrap")
        assert key[Attribute.TOKEN] and key[Attribute.SENSITIVE]
        assert not key[Attribute.EXTRACTABLE]
        assert key[Attribute.VALUE_LEN] == 32


def test_pkcs11_pin_from_a_file(softhsm: SoftHsm, tmp_path: Path) -> None:
    label = softhsm.token(pin="4321")
    pin_file = tmp_path / "pin"
    pin_file.write_text("4321\n")
    params = hsm.parse_params({"module": SOFTHSM_MODULE, "token_label": label,
                               "key_label": "k", "pin_file": str(pin_file)})
    entry = hsm.create(ROOT, "hsm-f", params, 1.0)
    assert hsm.open_root(entry) == ROOT


@pytest.mark.parametrize(("change", "reason"), [
    ({"module": "/nonexistent/libnothing.so"}, "module_missing"),
    ({"module": "/etc/hostname"}, "module_missing"),
    ({"token_label": "no-such-token"}, "token_not_found"),
])
def test_pkcs11_bad_configuration_is_refused_with_a_reason(
        softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch, change: dict[str, str],
        reason: str) -> None:
    monkeypatch.setenv("KQ_TEST_PIN", "1234")
    params = {**_pkcs11(softhsm.token()), **change}
    with pytest.raises(SealUnavailable) as caught:
        hsm.create(ROOT, "hsm-x", params, 1.0)
    assert caught.value.details["reason"] == reason


def test_pkcs11_wrong_or_missing_pin(softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch) -> None:
    label = softhsm.token()
    monkeypatch.setenv("KQ_TEST_PIN", "9999")
    with pytest.raises(SealUnavailable) as caught:
        hsm.create(ROOT, "hsm-x", _pkcs11(label), 1.0)
    assert caught.value.details["reason"] == "pin_incorrect"
    assert "9999" not in caught.value.message
    monkeypatch.delenv("KQ_TEST_PIN")
    with pytest.raises(SealUnavailable) as caught:
        hsm.create(ROOT, "hsm-x", _pkcs11(label), 1.0)
    assert caught.value.details["reason"] == "pin_missing"


@pytest.mark.parametrize("body", [
    {"module": SOFTHSM_MODULE, "token_label": "t", "key_label": "k"},  # no PIN source
    {"module": SOFTHSM_MODULE, "token_label": "t", "key_label": "k", "pin_env": "A",
     "pin_file": "/p"},
    {"module": "relative.so", "token_label": "t", "key_label": "k", "pin_env": "A"},
])
def test_pkcs11_parameters_are_checked_before_anything_is_contacted(body: dict) -> None:
    with pytest.raises(InvalidRequest):
        hsm.parse_params(body)


def test_a_deleted_token_leaves_the_pkcs11_seal_unavailable(
        softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KQ_TEST_PIN", "1234")
    label = softhsm.token()
    entry = hsm.create(ROOT, "hsm-d", _pkcs11(label), 1.0)
    softhsm.delete_token(label)
    with pytest.raises(SealUnavailable) as caught:
        hsm.open_root(entry)
    assert caught.value.details["reason"] == "token_not_found"


# -- awskms (moto) -----------------------------------------------------------------------


def test_awskms_seal_round_trip_with_a_bound_context(moto_kms: MotoKms) -> None:
    key_id = moto_kms.create_key()
    entry = cloudkms.create(ROOT, "kms-1", cloudkms.parse_params(moto_kms.params(key_id)), 1.0)
    assert cloudkms.open_root(entry) == ROOT
    assert ROOT not in entry.to_json()
    with pytest.raises(SealUnavailable) as caught:  # another seal's context: KMS refuses
        cloudkms.open_root(dataclasses.replace(entry, id="kms-2"))
    assert caught.value.details["reason"] == "unwrap_failed"


def test_awskms_unknown_and_disabled_keys(moto_kms: MotoKms) -> None:
    params = cloudkms.parse_params(moto_kms.params("00000000-0000-0000-0000-000000000000"))
    with pytest.raises(SealUnavailable) as caught:
        cloudkms.create(ROOT, "kms-x", params, 1.0)
    assert caught.value.details["reason"] == "key_not_found"
    key_id = moto_kms.create_key()
    entry = cloudkms.create(ROOT, "kms-1", cloudkms.parse_params(moto_kms.params(key_id)), 1.0)
    moto_kms.client().disable_key(KeyId=key_id)
    with pytest.raises(SealUnavailable) as caught:
        cloudkms.open_root(entry)
    assert caught.value.details["reason"] == "key_disabled"


def test_awskms_unreachable_endpoint() -> None:
    from kq_support import free_port

    params = cloudkms.parse_params({"key_id": "k", "region": "us-east-1",
                                    "endpoint_url": f"http://127.0.0.1:{free_port()}"})
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    with pytest.raises(SealUnavailable) as caught:
        cloudkms.create(ROOT, "kms-x", params, 1.0)
    assert caught.value.details["reason"] == "unreachable"


@pytest.mark.parametrize("body", [
    {"region": "us-east-1"}, {"key_id": "k", "region": "mars"},
    {"key_id": "k", "region": "us-east-1", "endpoint_url": "ftp://x"},
])
def test_awskms_parameters_are_checked(body: dict) -> None:
    with pytest.raises(InvalidRequest):
        cloudkms.parse_params(body)


# -- requests and open_root_key ------------------------------------------------------------


@pytest.mark.parametrize("body", [
    {"type": "shamir"}, {"type": "dev"}, {}, {"type": "passphrase", "passphrase": "short"},
    {"type": "passphrase", "id": "shamir", "passphrase": PHRASE},
    {"type": "passphrase", "id": "Bad Id", "passphrase": PHRASE},
])
def test_bad_seal_requests_are_refused(body: dict) -> None:
    with pytest.raises(InvalidRequest):
        kinds.parse_request(body)


def test_a_request_never_shows_its_passphrase() -> None:
    request = kinds.parse_request({"type": "passphrase", "passphrase": PHRASE})
    assert request.id == "passphrase"
    assert PHRASE not in repr(request) and PHRASE not in str(request.public())


def _stored(*seals: SealEntry) -> dict[str, bytes]:
    config, shares = create_shamir_seal(ROOT, 3, 2)
    entries = {SHAMIR_ENTRY: config.to_json()}
    entries.update({SEAL_SET_PREFIX + s.id: s.to_json() for s in seals})
    entries["shares"] = "\n".join(shares).encode()  # not a seal entry: ignored by the opener
    return entries


def test_open_root_key_with_each_kind(softhsm: SoftHsm, moto_kms: MotoKms,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KQ_TEST_PIN", "1234")
    label = softhsm.token()
    key_id = moto_kms.create_key()
    pp = passphrase.create(ROOT, "pp", PHRASE, 1.0, CHEAP)
    token = hsm.create(ROOT, "hsm", _pkcs11(label), 1.0)
    cloud = cloudkms.create(ROOT, "kms", cloudkms.parse_params(moto_kms.params(key_id)), 1.0)
    entries = _stored(pp, token, cloud)
    shares = entries.pop("shares").decode().split("\n")

    assert open_root_key(entries, Unlock(shares=tuple(shares[:2]))) == ROOT
    assert open_root_key(entries, Unlock(passphrase=PHRASE)) == ROOT
    with pytest.raises(WrongPassphrase):
        open_root_key(entries, Unlock(passphrase="not the passphrase!!"))
    # Automatic seals open only as the operator's local config describes them, and only
    # with what that config allows (the stored entry gives just its wrapped root).
    trust = SealTrust(pkcs11_modules=frozenset({SOFTHSM_MODULE}),
                      kms_endpoints=frozenset({moto_kms.endpoint_url}),
                      kms_plain_http_hosts=frozenset({"127.0.0.1"}), pin_env_prefix="KQ_TEST")
    local = (dataclasses.replace(token, wrapped_root=b""),
             dataclasses.replace(cloud, wrapped_root=b""))
    assert open_root_key(_stored(token), Unlock(auto_seals=local[:1], trust=trust)) == ROOT
    assert open_root_key(_stored(cloud), Unlock(auto_seals=local[1:], trust=trust)) == ROOT
    assert open_root_key(_stored(token, cloud), Unlock(auto_seals=local, trust=trust)) == ROOT
    with pytest.raises(Sealed, match="not listed"):  # a module the local config does not list
        open_root_key(_stored(token), Unlock(auto_seals=local[:1]))

    # Both automatic seals lost: only Shamir (or the passphrase) opens it, and Sealed says why.
    softhsm.delete_token(label)
    moto_kms.client().disable_key(KeyId=key_id)
    with pytest.raises(Sealed) as caught:
        open_root_key(_stored(token, cloud), Unlock(auto_seals=local, trust=trust))
    assert "seal hsm" in caught.value.message and "seal kms" in caught.value.message
    assert open_root_key(entries, Unlock(shares=tuple(shares[1:]))) == ROOT
    assert open_root_key(entries, Unlock(passphrase=PHRASE)) == ROOT
    with pytest.raises(InvalidRequest):
        open_root_key(entries, Unlock())


def test_a_missing_library_is_a_clear_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pkcs11", None)  # as if python-pkcs11 were not installed
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(SealUnavailable, match=r"keyquorum\[hsm\]") as caught:
        hsm.create(ROOT, "hsm-x", _pkcs11("t"), 1.0)
    assert caught.value.details["reason"] == "library_missing"
    params = cloudkms.parse_params({"key_id": "k", "region": "us-east-1"})
    with pytest.raises(SealUnavailable, match=r"keyquorum\[awskms\]") as caught:
        cloudkms.create(ROOT, "kms-x", params, 1.0)
    assert caught.value.details["reason"] == "library_missing"
