"""Default crypto-periods per key spec, from NIST SP 800-57 Part 1 Rev. 5, Table 1.

A crypto-period is how long a key may be used for its purpose before it must
be replaced. SP 800-57 Part 1 Rev. 5, section 5.3.6, "Cryptoperiod
recommendations for specific key types", gives suggested periods in Table 1
("Suggested cryptoperiods for key types"). keyquorum measures the *originator-
usage period* (OUP): how long a version may stay the primary, i.e. keep
protecting new data. Older versions may still unprotect (the recipient-usage
period) while they are deactivated.

How each spec maps to a row of Table 1 (row numbers are the key types of
section 5.1.1 in the order Table 1 lists them):

========================================  ====================================  ==========
keyquorum spec (family / purpose)         Table 1 row                            default
========================================  ====================================  ==========
aes-256-gcm, aes-256-gcm-siv,             6  symmetric data-encryption key       2 years
chacha20-poly1305, xchacha20-poly1305        (OUP up to 2 years); also row 7,
(aead / encrypt)                             symmetric key-wrapping key (OUP up
                                             to 2 years) when used for ``datakey``
hmac-sha256/384/512 (mac)                 3  symmetric authentication key        2 years
                                             (OUP up to 2 years)
ed25519, ecdsa-*, rsa-*, ml-dsa-*         1  private signature key               1 year
(sign)                                       (1 to 3 years)
rsa-* (encrypt)                           10 private key-transport key           2 years
                                             (up to 2 years)
x25519 (agree)                            13 private static key-agreement key    1 year
                                             (1 to 2 years)
x25519, ml-kem-*, x25519-ml-kem-768       13 private static key-agreement key    1 year
(kem)                                        (1 to 2 years); see below
========================================  ====================================  ==========

Where Table 1 gives a range, the default is its *shorter* end, so the
inventory warns early; a key's own ``crypto_period`` (set on create or with
PATCH) overrides the default in either direction. Table 1 predates KEMs: a
KEM decapsulation key establishes shared keys as a static key-agreement
private key does, so it takes row 13, the stricter of the two candidate rows
(row 10, private key-transport key, suggests up to 2 years).
"""

from __future__ import annotations

from dataclasses import dataclass

from keyquorum.keys.models import Key
from keyquorum.keys.specs import SPECS

DAY = 86400
YEAR = 365 * DAY

SOURCE = "NIST SP 800-57 Part 1 Rev. 5, Table 1"


@dataclass(frozen=True)
class CryptoPeriod:
    """One row of Table 1 as keyquorum applies it."""

    seconds: int
    table_row: int
    key_type: str
    suggested: str  # Table 1's suggestion, in words

    def to_json(self) -> dict[str, object]:
        return {"seconds": self.seconds, "table_row": self.table_row,
                "key_type": self.key_type, "suggested": self.suggested, "source": SOURCE}


SYMMETRIC_DATA_ENCRYPTION = CryptoPeriod(
    2 * YEAR, 6, "symmetric data-encryption key (also row 7, symmetric key-wrapping key)",
    "originator-usage period up to 2 years")
SYMMETRIC_AUTHENTICATION = CryptoPeriod(
    2 * YEAR, 3, "symmetric authentication key", "originator-usage period up to 2 years")
PRIVATE_SIGNATURE = CryptoPeriod(
    1 * YEAR, 1, "private signature key", "1 to 3 years")
PRIVATE_KEY_TRANSPORT = CryptoPeriod(
    2 * YEAR, 10, "private key-transport key", "up to 2 years")
PRIVATE_KEY_AGREEMENT = CryptoPeriod(
    1 * YEAR, 13, "private static key-agreement key", "1 to 2 years")

_BY_FAMILY = {
    "aead": SYMMETRIC_DATA_ENCRYPTION,
    "mac": SYMMETRIC_AUTHENTICATION,
    "sign": PRIVATE_SIGNATURE,
    "kem": PRIVATE_KEY_AGREEMENT,  # both purposes, agree and kem: see the module docstring
}


def default_crypto_period(spec: str, purpose: str | None = None) -> CryptoPeriod:
    """The Table 1 row and default period for a spec (and purpose: an RSA key of purpose
    ``encrypt`` decrypts what clients encrypt to it, a key-transport key); ``KeyError``
    for an unknown spec."""
    family = SPECS[spec].family
    if family == "sign" and purpose == "encrypt":
        return PRIVATE_KEY_TRANSPORT
    return _BY_FAMILY[family]


@dataclass(frozen=True)
class EffectiveCryptoPeriod:
    """The period a key's primary version is held to, and where it comes from."""

    seconds: int
    overridden: bool  # True: the key's own crypto_period; False: the spec's default
    default: CryptoPeriod

    def to_json(self) -> dict[str, object]:
        return {"seconds": self.seconds, "source": "key" if self.overridden else "default",
                "default": self.default.to_json()}


def crypto_period_of(key: Key) -> EffectiveCryptoPeriod:
    default = default_crypto_period(key.spec, key.purpose)
    if key.crypto_period is not None:
        return EffectiveCryptoPeriod(int(key.crypto_period), True, default)
    return EffectiveCryptoPeriod(default.seconds, False, default)
