"""Default crypto-periods: every spec maps to a NIST SP 800-57 Table 1 row; keys override."""

from __future__ import annotations

from dataclasses import replace

import pytest

from keyquorum.keys.cryptoperiods import (
    DAY,
    YEAR,
    crypto_period_of,
    default_crypto_period,
)
from keyquorum.keys.models import Key
from keyquorum.keys.specs import SPECS
from keyquorum.keys.states import KeyState


def _key(spec: str, crypto_period: int | None = None) -> Key:
    return Key(id="k", name="k", spec=spec, purpose=SPECS[spec].default_purpose,
               state=KeyState.ENABLED, primary_version=1, min_decrypt_version=1,
               origin="generated", exportable=False, deletion_window_days=30, created_at=0.0,
               updated_at=0.0, revision=1, crypto_period=crypto_period)


@pytest.mark.parametrize("spec", sorted(SPECS))
def test_every_spec_has_a_table_row_and_a_period_of_one_to_three_years(spec: str) -> None:
    period = default_crypto_period(spec)
    assert period.table_row in (1, 3, 6, 13)
    assert 1 * YEAR <= period.seconds <= 3 * YEAR
    assert period.key_type and period.suggested


@pytest.mark.parametrize(("spec", "row", "years"), [
    ("aes-256-gcm", 6, 2), ("chacha20-poly1305", 6, 2), ("xchacha20-poly1305", 6, 2),
    ("aes-256-gcm-siv", 6, 2),
    ("hmac-sha256", 3, 2), ("hmac-sha512", 3, 2),
    ("ed25519", 1, 1), ("ecdsa-p256", 1, 1), ("rsa-4096", 1, 1), ("ml-dsa-65", 1, 1),
    ("x25519", 13, 1), ("ml-kem-768", 13, 1), ("x25519-ml-kem-768", 13, 1),
])
def test_spec_maps_to_its_nist_row(spec: str, row: int, years: int) -> None:
    period = default_crypto_period(spec)
    assert (period.table_row, period.seconds) == (row, years * YEAR)


def test_rsa_encryption_keys_are_key_transport_keys_not_signature_keys() -> None:
    period = default_crypto_period("rsa-2048", "encrypt")
    assert (period.table_row, period.seconds) == (10, 2 * YEAR)
    assert default_crypto_period("rsa-2048", "sign").table_row == 1
    assert default_crypto_period("rsa-2048").table_row == 1
    key = replace(_key("rsa-3072"), purpose="encrypt")
    assert crypto_period_of(key).seconds == 2 * YEAR


def test_symmetric_encryption_keys_cite_both_encryption_and_key_wrapping_rows() -> None:
    assert "row 7" in default_crypto_period("aes-256-gcm").key_type


def test_a_key_without_its_own_period_gets_the_spec_default() -> None:
    effective = crypto_period_of(_key("ed25519"))
    assert (effective.seconds, effective.overridden) == (YEAR, False)
    assert effective.to_json()["source"] == "default"


def test_a_keys_own_crypto_period_overrides_the_default_either_way() -> None:
    shorter = crypto_period_of(_key("aes-256-gcm", 30 * DAY))
    longer = crypto_period_of(_key("ed25519", 3 * YEAR))
    assert (shorter.seconds, shorter.overridden) == (30 * DAY, True)
    assert (longer.seconds, longer.overridden) == (3 * YEAR, True)
    assert shorter.default.table_row == 6  # the row is still reported next to the override
    assert shorter.to_json()["source"] == "key"


def test_an_unknown_spec_is_an_error_not_a_silent_default() -> None:
    with pytest.raises(KeyError):
        default_crypto_period("des")
