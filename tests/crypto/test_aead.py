"""AEAD: round trips for every algorithm; any change to ciphertext, nonce, AAD
or key ends in the one vague InvalidCiphertext."""

from __future__ import annotations

import pytest

from keyquorum.crypto.aead import AEAD_ALGORITHMS, AeadKey, generate_key, nonce_size
from keyquorum.crypto.errors import InvalidCiphertext, UnsupportedAlgorithm

EXPECTED_NONCES = {"aes-256-gcm": 12, "chacha20-poly1305": 12,
                   "xchacha20-poly1305": 24, "aes-256-gcm-siv": 12, "aes-128-gcm": 12}
EXPECTED_KEY_SIZES = {"aes-128-gcm": 16}


@pytest.fixture(params=AEAD_ALGORITHMS)
def key(request: pytest.FixtureRequest) -> AeadKey:
    return AeadKey(request.param, generate_key(request.param))


def test_algorithms_and_nonce_sizes() -> None:
    assert set(AEAD_ALGORITHMS) == set(EXPECTED_NONCES)
    for alg, size in EXPECTED_NONCES.items():
        assert nonce_size(alg) == size
        assert len(generate_key(alg)) == EXPECTED_KEY_SIZES.get(alg, 32)


def test_aes_128_gcm_is_pycas_aes_gcm_with_a_16_byte_key() -> None:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key = generate_key("aes-128-gcm")
    assert len(key) == 16 and key != generate_key("aes-128-gcm")
    nonce, sealed = AeadKey("aes-128-gcm", key).encrypt(b"secret", b"aad")
    assert AESGCM(key).decrypt(nonce, sealed, b"aad") == b"secret"
    # NIST GCM test case 3 (AES-128, 96-bit IV): a known answer, not only a round trip.
    kat = AeadKey("aes-128-gcm", bytes.fromhex("feffe9928665731c6d6a8f9467308308"))
    _, out = kat.encrypt(bytes.fromhex(
        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
        "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255"), b"",
        nonce=bytes.fromhex("cafebabefacedbaddecaf888"))
    assert out.hex().endswith("4d5c2af327cd64a62cf35abd2ba6fab4")
    with pytest.raises(ValueError, match="16 bytes"):
        AeadKey("aes-128-gcm", bytes(32))  # never silently AES-256


@pytest.mark.parametrize("plaintext", [b"", b"x", b"hello world" * 100])
def test_round_trip(key: AeadKey, plaintext: bytes) -> None:
    nonce, ciphertext = key.encrypt(plaintext, b"aad")
    assert len(nonce) == EXPECTED_NONCES[key.alg]
    assert len(ciphertext) == len(plaintext) + 16
    assert key.decrypt(nonce, ciphertext, b"aad") == plaintext


def test_random_nonces_differ(key: AeadKey) -> None:
    assert len({key.encrypt(b"same", b"")[0] for _ in range(20)}) == 20


def test_fixed_nonce_is_deterministic(key: AeadKey) -> None:
    nonce = bytes(EXPECTED_NONCES[key.alg])
    assert key.encrypt(b"m", b"a", nonce) == key.encrypt(b"m", b"a", nonce)


def test_every_bit_flip_of_ciphertext_fails(key: AeadKey) -> None:
    nonce, ciphertext = key.encrypt(b"secret message", b"aad")
    for i in range(len(ciphertext)):
        tampered = bytearray(ciphertext)
        tampered[i] ^= 0x01
        with pytest.raises(InvalidCiphertext):
            key.decrypt(nonce, bytes(tampered), b"aad")


def test_wrong_aad_nonce_or_key_fails(key: AeadKey) -> None:
    nonce, ciphertext = key.encrypt(b"secret", b"aad")
    other_nonce = bytes([nonce[0] ^ 1]) + nonce[1:]
    other_key = AeadKey(key.alg, generate_key(key.alg))
    for attempt in (
        lambda: key.decrypt(nonce, ciphertext, b"aad2"),
        lambda: key.decrypt(nonce, ciphertext, b""),
        lambda: key.decrypt(other_nonce, ciphertext, b"aad"),
        lambda: other_key.decrypt(nonce, ciphertext, b"aad"),
    ):
        with pytest.raises(InvalidCiphertext):
            attempt()


def test_wrong_nonce_length_or_short_ciphertext_fails(key: AeadKey) -> None:
    nonce, ciphertext = key.encrypt(b"secret", b"")
    for bad_nonce in (nonce[:-1], nonce + b"\x00", b"", bytes(16)):
        with pytest.raises(InvalidCiphertext):
            key.decrypt(bad_nonce, ciphertext, b"")
    for bad in (b"", ciphertext[:15], ciphertext[:-1]):
        with pytest.raises(InvalidCiphertext):
            key.decrypt(nonce, bad, b"")


def test_encrypt_refuses_a_wrong_length_nonce(key: AeadKey) -> None:
    with pytest.raises(ValueError, match="nonces must be"):
        key.encrypt(b"m", b"", bytes(EXPECTED_NONCES[key.alg] + 1))


def test_repr_shows_algorithm_only(key: AeadKey) -> None:
    assert repr(key) == f"AeadKey(alg={key.alg!r})"


@pytest.mark.parametrize("bad", [b"", bytes(16), bytes(31), bytes(33)])
def test_key_length_is_checked_without_echoing_the_key(bad: bytes) -> None:
    with pytest.raises(ValueError) as info:
        AeadKey("aes-256-gcm", bad)
    assert "32 bytes" in str(info.value)


def test_unknown_algorithm() -> None:
    with pytest.raises(UnsupportedAlgorithm):
        AeadKey("aes-128-cbc", bytes(32))
    with pytest.raises(UnsupportedAlgorithm):
        generate_key("rot13")
    with pytest.raises(UnsupportedAlgorithm) as info:
        nonce_size(b"\x01secret-looking-bytes" * 4)  # type: ignore[arg-type]
    assert "secret" not in str(info.value)


def test_algorithms_are_not_interchangeable() -> None:
    key = bytes(range(32))
    nonce, ciphertext = AeadKey("aes-256-gcm", key).encrypt(b"m", b"")
    with pytest.raises(InvalidCiphertext):
        AeadKey("aes-256-gcm-siv", key).decrypt(nonce, ciphertext, b"")
