"""The barrier binds each stored secret to its path and keeps old terms readable."""

from __future__ import annotations

import pytest

from keyquorum.seal.barrier import Barrier, BarrierError, Keyring, open_keyring, seal_keyring


def test_round_trip_and_path_binding() -> None:
    barrier = Barrier(Keyring.generate())
    blob = barrier.encrypt("keys/a/versions/1", b"secret material")
    assert b"secret material" not in blob
    assert barrier.decrypt("keys/a/versions/1", blob) == b"secret material"
    with pytest.raises(BarrierError):
        barrier.decrypt("keys/b/versions/1", blob)  # moved to another row


def test_tampering_and_truncation_fail() -> None:
    barrier = Barrier(Keyring.generate())
    blob = bytearray(barrier.encrypt("p", b"x" * 40))
    blob[-1] ^= 1
    with pytest.raises(BarrierError):
        barrier.decrypt("p", bytes(blob))
    with pytest.raises(BarrierError):
        barrier.decrypt("p", bytes(blob[:10]))


def test_rotation_returns_a_new_keyring_and_old_terms_still_decrypt() -> None:
    first = Keyring.generate()
    old_blob = Barrier(first).encrypt("p", b"old")
    second = first.rotated()
    assert first.active_term == 1 and second.active_term == 2
    barrier = Barrier(second)
    assert barrier.decrypt("p", old_blob) == b"old"
    assert barrier.decrypt("p", barrier.encrypt("p", b"new")) == b"new"


def test_keyring_sealed_under_root_key_only_opens_with_it() -> None:
    keyring = Keyring.generate()
    blob = seal_keyring(b"\x01" * 32, keyring)
    assert open_keyring(b"\x01" * 32, blob).terms == keyring.terms
    with pytest.raises(BarrierError):
        open_keyring(b"\x02" * 32, blob)
    assert keyring.terms[1].hex() not in repr(keyring)
