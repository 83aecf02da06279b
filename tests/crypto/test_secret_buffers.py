"""Secrets that can be overwritten: ``crypto.wipe`` and the operations that write into
buffers (HKDF, AES-GCM unwrapping, Ed25519 scalars) instead of answering ``bytes``."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from nacl import bindings as sodium

from keyquorum.crypto import aead, scalars
from keyquorum.crypto.errors import InvalidCiphertext
from keyquorum.crypto.kdf import hkdf_sha256, hkdf_sha256_into
from keyquorum.crypto.random import random_buffer
from keyquorum.crypto.wipe import unsafe_wipe_bytes, wipe


def test_wipe_overwrites_a_bytearray_in_place_and_it_stays_usable() -> None:
    secret = bytearray(os.urandom(32))
    same = secret
    wipe(secret)
    assert same is secret and secret == bytearray(32)
    secret.extend(b"more")  # the ctypes view was released: the buffer can grow again
    assert len(secret) == 36


def test_wipe_overwrites_only_a_views_bytes_and_accepts_nothing() -> None:
    buffer = bytearray(b"public-SECRET-public")
    wipe(memoryview(buffer)[7:13])
    assert buffer == bytearray(b"public-\0\0\0\0\0\0-public")
    wipe(None)
    wipe(bytearray())


def test_unsafe_wipe_bytes_overwrites_a_fresh_object_and_leaves_shared_ones_alone() -> None:
    fresh = os.urandom(48)
    unsafe_wipe_bytes(fresh)
    assert fresh == bytes(48)
    single = bytes([65])  # one-byte objects are the interpreter's shared singletons
    unsafe_wipe_bytes(single)
    assert single == b"A"


def test_random_buffer_is_fresh_random_bytes_in_a_bytearray() -> None:
    first, second = random_buffer(32), random_buffer(32)
    assert isinstance(first, bytearray) and len(first) == 32
    assert first != second


def test_hkdf_into_a_buffer_gives_what_hkdf_gives() -> None:
    ikm = bytearray(os.urandom(32))
    out = hkdf_sha256_into(ikm, info=b"purpose")
    assert isinstance(out, bytearray)
    assert bytes(out) == hkdf_sha256(bytes(ikm), info=b"purpose")


def test_aes_gcm_unwraps_into_a_buffer_and_refuses_a_wrong_key() -> None:
    key = random_buffer(32)
    nonce, body = aead.AeadKey("aes-256-gcm", key).encrypt(b"the root key", b"aad")
    opened = aead.open_into(key, nonce, body, b"aad")
    assert isinstance(opened, bytearray) and opened == bytearray(b"the root key")
    with pytest.raises(InvalidCiphertext):
        aead.open_into(random_buffer(32), nonce, body, b"aad")


def test_a_cipher_made_from_a_buffer_keeps_working_after_the_buffer_is_wiped() -> None:
    """The barrier wipes its key buffers on seal while a request may still hold the
    barrier: that request's cipher must neither fail nor encrypt under zeros."""
    key = random_buffer(32)
    original = bytes(key)
    cipher = aead.AeadKey("aes-256-gcm", key)
    wipe(key)
    nonce, body = cipher.encrypt(b"data", b"aad")
    assert aead.AeadKey("aes-256-gcm", original).decrypt(nonce, body, b"aad") == b"data"


def _scalar(value: int) -> bytes:
    return value.to_bytes(32, "little")


def test_scalar_operations_into_buffers_match_pynacl() -> None:
    x = sodium.crypto_core_ed25519_scalar_reduce(os.urandom(64))
    y = sodium.crypto_core_ed25519_scalar_reduce(os.urandom(64))
    out = bytearray(32)
    scalars.mul_into(out, x, bytearray(y))
    assert bytes(out) == sodium.crypto_core_ed25519_scalar_mul(x, y)
    scalars.add_into(out, x, y)
    assert bytes(out) == sodium.crypto_core_ed25519_scalar_add(x, y)
    scalars.sub_into(out, x, y)
    assert bytes(out) == sodium.crypto_core_ed25519_scalar_sub(x, y)
    scalars.invert_into(out, x)
    assert bytes(out) == sodium.crypto_core_ed25519_scalar_invert(x)
    assert scalars.base_mul(bytearray(x)) == sodium.crypto_scalarmult_ed25519_base_noclamp(x)
    with pytest.raises(ValueError):
        scalars.invert_into(out, bytes(32))
    with pytest.raises(ValueError):
        scalars.base_mul(bytes(32))
    with pytest.raises(ValueError, match="bytearray"):
        scalars.mul_into(bytes(32), x, y)  # type: ignore[arg-type]


def test_canonical_scalars_are_below_the_group_order() -> None:
    order = 2**252 + 27742317777372353535851937790883648493
    assert scalars.is_canonical(bytearray(_scalar(order - 1)))
    assert not scalars.is_canonical(_scalar(order))
    assert not scalars.is_canonical(b"short")
    assert scalars.is_canonical(scalars.random_scalar())


_AFTER_ONE_OPERATION = """
import os, sys, threading, time
from keyquorum.crypto import aead
key = bytearray(os.urandom(32))
print(bytes(b ^ 0x5A for b in key).hex(), flush=True)  # masked: no copy of it here
def work():
    cipher = aead.AeadKey("aes-256-gcm", key)
    cipher.encrypt(b"data", b"aad")
    if sys.argv[1] == "scrub":
        aead.scrub_stack("aes-256-gcm")
thread = threading.Thread(target=work)
thread.start()
thread.join()
print("done", flush=True)
time.sleep(60)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/mem")
def test_scrub_stack_overwrites_the_key_copy_an_aes_gcm_operation_left() -> None:
    """pyca/OpenSSL leave a copy of the key on the calling thread's C stack after each
    operation; the thread has ended and the cipher is freed, yet the copy remains
    until scrub_stack overwrites it (what the barrier does after every operation)."""
    from memory_scan import count_in_memory

    found = {}
    for mode in ("plain", "scrub"):
        child = subprocess.Popen([sys.executable, "-c", _AFTER_ONE_OPERATION, mode],
                                 stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout is not None
            key = bytes(b ^ 0x5A for b in bytes.fromhex(child.stdout.readline()))
            assert child.stdout.readline().strip() == "done"
            counts = count_in_memory(child.pid, {"key": key})
            found[mode] = counts.elsewhere["key"] + counts.on_stacks["key"]
        except PermissionError:
            pytest.skip("this user may not read another process's memory")
        finally:
            child.kill()
            child.wait()
    assert found == {"plain": 2, "scrub": 1}  # the key's own buffer, and the copy
