"""A custodian's key pair and key file, and a share sealed to it: what opens and what does
not, each refusal with its stable code (``seal.custodian_key``, ``seal.share_envelope``)."""

from __future__ import annotations

import base64
import dataclasses
import json

import pytest

from keyquorum.crypto.pwhash import MIN_MEMLIMIT, MIN_OPSLIMIT, Argon2Params
from keyquorum.errors import InvalidRequest
from keyquorum.seal import custodian_key
from keyquorum.seal.share_envelope import ShareEnvelope, open_share, seal_share

PASSPHRASE = "a custodian's own passphrase"
FAST = Argon2Params(salt=b"\x01" * 16, opslimit=MIN_OPSLIMIT, memlimit=MIN_MEMLIMIT)
SHARE = "kqs1-02-" + "a" * 52 + "-00000000"


def _file(name: str = "alice") -> tuple[custodian_key.CustodianKeyPair, bytes]:
    pair = custodian_key.generate(name)
    return pair, custodian_key.seal_key_file(pair, PASSPHRASE, FAST)


def test_a_key_file_opens_with_its_passphrase_and_keeps_the_private_half_sealed() -> None:
    pair, data = _file()
    document = json.loads(data)
    assert document["fingerprint"] == pair.fingerprint
    assert base64.b64encode(pair.private).decode() not in data.decode()
    assert pair.private.hex() not in data.decode()
    read = custodian_key.read_key_file(data)  # no passphrase: only the public half
    assert (read.name, read.fingerprint, read.public_pem) == (
        "alice", pair.fingerprint, pair.public_pem)
    key = custodian_key.open_key_file(read, PASSPHRASE)
    assert custodian_key.fingerprint(key.public_pem()) == pair.fingerprint
    assert "private" not in repr(pair) and pair.private.hex() not in repr(read)


def test_a_wrong_passphrase_or_a_swapped_public_half_does_not_open_the_key_file() -> None:
    _pair, data = _file()
    with pytest.raises(custodian_key.CustodianKeyError) as wrong:
        custodian_key.open_key_file(custodian_key.read_key_file(data), "not the passphrase")
    assert wrong.value.code == "wrong_key_passphrase"
    # Someone replaces the public half (and its fingerprint) with their own key: the
    # associated data binds the fingerprint, so the file no longer opens.
    other = custodian_key.generate("alice")
    document = json.loads(data)
    document.update(public_key=other.public_pem, fingerprint=other.fingerprint)
    swapped = custodian_key.read_key_file(json.dumps(document).encode())
    with pytest.raises(custodian_key.CustodianKeyError) as edited:
        custodian_key.open_key_file(swapped, PASSPHRASE)
    assert edited.value.code == "wrong_key_passphrase"
    # A fingerprint that does not match the public half is refused on reading.
    document = json.loads(data)
    document["fingerprint"] = other.fingerprint
    with pytest.raises(custodian_key.CustodianKeyError) as mismatch:
        custodian_key.read_key_file(json.dumps(document).encode())
    assert mismatch.value.code == "invalid_key_file"
    for junk in (b"", b"{}", b"not json", json.dumps({"format": "x"}).encode()):
        with pytest.raises(custodian_key.CustodianKeyError) as bad:
            custodian_key.read_key_file(junk)
        assert bad.value.code == "invalid_key_file"


def test_a_short_passphrase_is_refused_before_anything_is_written() -> None:
    with pytest.raises(custodian_key.CustodianKeyError) as weak:
        custodian_key.seal_key_file(custodian_key.generate("bob"), "short", FAST)
    assert weak.value.code == "weak_passphrase"


def test_fingerprints_name_one_key_and_a_bad_public_key_is_refused_with_its_owner() -> None:
    one, two = custodian_key.generate("a"), custodian_key.generate("a")
    assert one.fingerprint != two.fingerprint
    assert one.fingerprint.startswith("kqck1:") and len(one.fingerprint) == 6 + 64
    # The same key with other line breaks has the same fingerprint (raw key bytes).
    body = "".join(one.public_pem.strip().splitlines()[1:-1])
    relined = "\n".join(["-----BEGIN X25519-ML-KEM-768 PUBLIC KEY-----",
                         body[:100], body[100:], "-----END X25519-ML-KEM-768 PUBLIC KEY-----"])
    assert custodian_key.fingerprint(relined) == one.fingerprint
    assert custodian_key.grouped(one.fingerprint).count(" ") == 15
    for bad in ("", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----", 42,
                "x" * 5000):
        with pytest.raises(InvalidRequest, match="the key of carol"):
            custodian_key.check_public_key(bad, "carol")


def test_an_envelope_opens_only_with_its_custodians_key_and_never_when_edited() -> None:
    alice, bob = custodian_key.generate("alice"), custodian_key.generate("bob")
    alice_key = custodian_key.open_key_file(
        custodian_key.read_key_file(custodian_key.seal_key_file(alice, PASSPHRASE, FAST)),
        PASSPHRASE)
    sealed = seal_share(SHARE, alice.public_pem, custodian="alice", index=2, generation=3)
    text = sealed.to_text()
    assert SHARE not in text and text.startswith("kqse1:")
    parsed = ShareEnvelope.from_text(text)
    assert (parsed.custodian, parsed.index, parsed.generation, parsed.recipient) == (
        "alice", 2, 3, alice.fingerprint)
    assert open_share(parsed, alice_key) == SHARE

    bob_key = custodian_key.open_key_file(
        custodian_key.read_key_file(custodian_key.seal_key_file(bob, PASSPHRASE, FAST)),
        PASSPHRASE)
    with pytest.raises(custodian_key.CustodianKeyError) as wrong:
        open_share(parsed, bob_key)
    assert wrong.value.code == "wrong_custodian_key"

    box = parsed.box
    edits = [dataclasses.replace(parsed, index=1), dataclasses.replace(parsed, generation=4),
             dataclasses.replace(parsed, custodian="bob"),
             dataclasses.replace(parsed, box=box[:-1] + bytes([box[-1] ^ 1])),  # the tag
             dataclasses.replace(parsed, box=box[:6] + bytes(1120) + box[1126:]),  # the KEM
             dataclasses.replace(parsed, box=box[:40])]
    for edited in edits:
        with pytest.raises(custodian_key.CustodianKeyError) as tampered:
            open_share(ShareEnvelope.from_text(edited.to_text()), alice_key)
        assert tampered.value.code == "invalid_share_envelope"
    for junk in ("", "kqse1:", "kqse1:!!!", text[:-10], "kqs1-01-abc", None):
        with pytest.raises(custodian_key.CustodianKeyError) as bad:
            ShareEnvelope.from_text(junk)
        assert bad.value.code == "invalid_share_envelope"
