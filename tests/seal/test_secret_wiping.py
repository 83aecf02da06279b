"""The seal's secrets are overwritten once they have served (review F10).

Shares, the Shamir secret, the unseal key and the barrier keys live in bytearrays;
these tests keep a reference to each buffer and check it holds zeros afterwards,
which a secret that was only dropped (as before) would not.
"""

from __future__ import annotations

import base64
import json

import pytest

from keyquorum.crypto import vss
from keyquorum.errors import InvalidRequest
from keyquorum.seal.barrier import Barrier, Keyring, open_keyring, seal_keyring
from keyquorum.seal.shamir import UnsealProgress, create_shamir_seal, open_root, verified_share
from keyquorum.seal.shares import decode_share, encode_share

ROOT = bytes(range(32))
ZERO = bytearray(32)


def test_a_share_is_parsed_into_a_buffer_and_the_text_buffer_is_left_to_its_owner() -> None:
    _, texts = create_shamir_seal(ROOT, 3, 2)
    text = bytearray(b"  " + texts[0].encode() + b"\n")
    share = decode_share(text)
    assert isinstance(share.value, bytearray)
    assert encode_share(share) == texts[0]
    assert text.strip() == texts[0].encode()  # untouched: the caller wipes it


@pytest.mark.parametrize("mangle", [
    lambda t: t[:12] + t[12:30].upper() + t[30:],  # case of the value does not matter
    lambda t: t[:20] + " " + t[20:],  # spaces typed from paper are dropped
])
def test_a_share_typed_by_hand_still_parses(mangle) -> None:  # type: ignore[no-untyped-def]
    _, texts = create_shamir_seal(ROOT, 3, 2)
    assert encode_share(decode_share(bytearray(mangle(texts[1]).encode()))) == texts[1]


@pytest.mark.parametrize(("text", "message"), [
    ("kqs1-01-" + "a" * 51 + "-00000000", "not valid base32"),
    ("kqs1-01-" + "1" * 52 + "-00000000", "not valid base32"),
    ("kqs1-01-" + "a" * 52 + "-00000000", "checksum does not match"),
    ("kqs2-01-" + "a" * 52 + "-00000000", "must look like"),
    ("kqs1-0x-" + "a" * 52 + "-00000000", "index must be a number"),
    ("kqs1-é-" + "a" * 52 + "-00000000", "must look like|index must be a number"),
])
def test_a_malformed_share_is_refused_without_echoing_it(text: str, message: str) -> None:
    for given in (text, bytearray(text.encode())):
        with pytest.raises(InvalidRequest, match=message) as refused:
            decode_share(given)
        assert "a" * 20 not in refused.value.message


def test_unseal_progress_wipes_every_share_when_the_round_completes() -> None:
    config, texts = create_shamir_seal(ROOT, 3, 2)
    progress = UnsealProgress()
    shares = [verified_share(config, bytearray(t.encode())) for t in texts[:2]]
    assert progress.add(config, shares[0]) is None
    assert shares[0].value != ZERO  # held while the round is open
    root = progress.add(config, shares[1])
    assert isinstance(root, bytearray) and root == bytearray(ROOT)
    assert [s.value for s in shares] == [ZERO, ZERO]


def test_resetting_or_refusing_wipes_the_shares_held() -> None:
    config, texts = create_shamir_seal(ROOT, 3, 2)
    progress = UnsealProgress()
    first = verified_share(config, texts[0])
    progress.add(config, first)
    again = verified_share(config, texts[0])
    with pytest.raises(InvalidRequest, match="already submitted"):
        progress.add(config, again)
    assert again.value == ZERO  # the refused duplicate
    progress.reset()
    assert first.value == ZERO and progress.count == 0


def test_the_secret_and_shares_made_at_init_are_wiped(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[tuple[bytes | bytearray, list[vss.Share]]] = []
    split = vss.split

    def keep(n: int, k: int, secret: bytes | None = None):  # type: ignore[no-untyped-def]
        dealt = split(n, k, secret)
        made.append((dealt[0], dealt[1]))
        return dealt

    monkeypatch.setattr(vss, "split", keep)
    config, texts = create_shamir_seal(ROOT, 3, 2)
    secret, shares = made[0]
    assert secret == ZERO and all(s.value == ZERO for s in shares)
    assert open_root(config, [decode_share(t) for t in texts[:2]]) == bytearray(ROOT)


def test_a_barrier_wipe_overwrites_every_key_of_its_keyring() -> None:
    keyring = Keyring.generate().rotated()
    barrier = Barrier(keyring)
    ciphertext = barrier.encrypt("entry", b"data")
    barrier.wipe()
    assert all(key == ZERO for key in keyring.terms.values())
    assert barrier.decrypt("entry", ciphertext) == b"data"  # a request holding it finishes


def test_the_keyring_is_stored_as_before_and_opens_into_buffers() -> None:
    keyring = Keyring.generate().rotated()
    written = {str(t): base64.b64encode(k).decode() for t, k in keyring.terms.items()}
    assert bytes(keyring.serialize()) == json.dumps(written).encode()  # the stored format
    root = bytearray(range(32))
    opened = open_keyring(root, seal_keyring(root, keyring))
    assert opened.terms == keyring.terms
    assert all(isinstance(key, bytearray) for key in opened.terms.values())
    compact = json.dumps(written, separators=(",", ":")).encode()  # another spelling
    assert Keyring.deserialize(compact).terms == keyring.terms
