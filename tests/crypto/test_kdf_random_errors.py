"""HKDF known answers (RFC 5869), the CSPRNG wrapper, and the error tree."""

from __future__ import annotations

import pytest

import keyquorum.crypto as crypto
from keyquorum.crypto.errors import (
    CryptoError,
    InvalidCiphertext,
    InvalidSignatureInput,
    UnsupportedAlgorithm,
)
from keyquorum.crypto.kdf import hkdf_expand, hkdf_extract, hkdf_sha256
from keyquorum.crypto.random import random_bytes

# RFC 5869 Appendix A.1.
IKM = bytes([0x0B] * 22)
SALT = bytes(range(0x0D))
INFO = bytes(range(0xF0, 0xFA))
PRK = "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5"
OKM = "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"


def test_rfc5869_known_answer() -> None:
    assert hkdf_sha256(IKM, info=INFO, length=42, salt=SALT).hex() == OKM
    assert hkdf_extract(SALT, IKM).hex() == PRK
    assert hkdf_expand(bytes.fromhex(PRK), INFO, 42).hex() == OKM


def test_info_separates_purposes() -> None:
    assert hkdf_sha256(b"k" * 32, info=b"a") != hkdf_sha256(b"k" * 32, info=b"b")
    assert len(hkdf_sha256(b"k" * 32, info=b"a")) == 32


@pytest.mark.parametrize("length", [0, 255 * 32 + 1])
def test_length_bounds(length: int) -> None:
    with pytest.raises(ValueError):
        hkdf_sha256(b"k", info=b"", length=length)


def test_random_bytes() -> None:
    assert len(random_bytes(32)) == 32
    assert random_bytes(0) == b""
    assert random_bytes(32) != random_bytes(32)
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError):
            random_bytes(bad)  # type: ignore[arg-type]


def test_error_tree() -> None:
    assert issubclass(InvalidCiphertext, CryptoError)
    assert issubclass(InvalidSignatureInput, CryptoError)
    assert issubclass(InvalidSignatureInput, ValueError)
    assert issubclass(UnsupportedAlgorithm, CryptoError)
    assert issubclass(UnsupportedAlgorithm, ValueError)
    assert not issubclass(InvalidCiphertext, ValueError)
    assert str(InvalidCiphertext()) == "ciphertext is invalid or does not match the context"


def test_package_exports_are_sorted_and_real() -> None:
    assert crypto.__all__ == sorted(crypto.__all__)
    for name in crypto.__all__:
        assert getattr(crypto, name) is not None
