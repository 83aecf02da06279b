"""Key names (no path tricks) and the spec registry."""

from __future__ import annotations

import pytest

from keyquorum.errors import InvalidRequest
from keyquorum.keys.names import validate_key_name
from keyquorum.keys.specs import SPECS, get_spec, resolve_purpose


@pytest.mark.parametrize("name", ["a", "payments/cards", "a.b_c-d/0/z", "x" * 128])
def test_good_names(name: str) -> None:
    assert validate_key_name(name) == name


@pytest.mark.parametrize("name", ["", "x" * 129, "../etc", "a//b", "a/./b", "/a", "a/",
                                  "A", "a b", "a%2fb", "ä", None, 7])
def test_bad_names_are_refused_with_the_rule(name: object) -> None:
    with pytest.raises(InvalidRequest):
        validate_key_name(name)


def test_every_architecture_spec_is_registered() -> None:
    expected = {"aes-256-gcm", "chacha20-poly1305", "xchacha20-poly1305", "aes-256-gcm-siv",
                "hmac-sha256", "hmac-sha384", "hmac-sha512", "ed25519", "ecdsa-p256",
                "ecdsa-p384", "ecdsa-secp256k1", "rsa-3072", "rsa-4096", "x25519",
                "ml-kem-768", "ml-kem-1024", "ml-dsa-44", "ml-dsa-65", "ml-dsa-87",
                "x25519-ml-kem-768"}
    # and the compatibility specs AWS KMS and Vault clients ask for (issues 13 and 14)
    compatibility = {"rsa-2048", "ecdsa-p521", "hmac-sha224", "aes-128-gcm"}
    assert set(SPECS) == expected | compatibility


def test_gcm_gets_a_safe_default_usage_limit() -> None:
    assert get_spec("aes-256-gcm").default_usage_limit == 2**32
    assert get_spec("aes-128-gcm").default_usage_limit == 2**32


def test_unknown_spec_and_wrong_purpose() -> None:
    with pytest.raises(InvalidRequest, match="unknown spec"):
        get_spec("des")
    with pytest.raises(InvalidRequest, match="supports purposes"):
        resolve_purpose(get_spec("ed25519"), "encrypt")
    assert resolve_purpose(get_spec("x25519"), None) == "agree"
    assert resolve_purpose(get_spec("x25519"), "kem") == "kem"
