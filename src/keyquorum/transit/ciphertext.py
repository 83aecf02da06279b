"""``vault:v<N>:<base64>`` ↔ keyquorum's ``kq1:`` ciphertexts.

The base64 part is the keyquorum ciphertext's bytes (``kq1:`` is base64url of the
same bytes), so the conversion is lossless and free: a transit ciphertext is a
native ciphertext in Vault's spelling, ``N`` is the key version its header names
(tools that read the version from the prefix keep working), and either spelling
decrypts through either API. A prefix that disagrees with the header is refused:
nothing is decrypted under a version the caller did not name.
"""

from __future__ import annotations

import base64
import binascii

from keyquorum.errors import InvalidCiphertext
from keyquorum.keys.ciphertext import PREFIX

VAULT_PREFIX = "vault:v"


def to_vault(native: str, version: int) -> str:
    """``vault:v<version>:`` + standard base64 of a ``kq1:`` ciphertext's bytes."""
    raw = base64.urlsafe_b64decode(_padded(native[len(PREFIX):]))
    return f"{VAULT_PREFIX}{version}:{base64.b64encode(raw).decode('ascii')}"


def split_vault(text: object, prefix: str = VAULT_PREFIX) -> tuple[int, bytes]:
    """The version a ``vault:v<N>:`` value names and its decoded bytes."""
    if not isinstance(text, str) or not text.startswith(prefix):
        raise InvalidCiphertext("invalid ciphertext: no prefix")
    number, colon, rest = text[len(prefix):].partition(":")
    if not colon or not number.isdigit() or not 1 <= len(number) <= 10 or int(number) < 1:
        raise InvalidCiphertext("invalid ciphertext: could not parse version")
    try:
        raw = base64.b64decode(rest, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidCiphertext("invalid ciphertext: could not decode base64") from None
    return int(number), raw


def from_vault(text: object) -> tuple[int, str]:
    """The version a transit ciphertext's prefix names and the ``kq1:`` ciphertext.

    A ``kq1:`` ciphertext is taken as it is (the version then comes from its header).
    """
    if isinstance(text, str) and text.startswith(PREFIX):
        return 0, text
    number, raw = split_vault(text)
    return number, PREFIX + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _padded(text: str) -> str:
    return text + "=" * (-len(text) % 4)
