"""A share sealed to its custodian's public key: what init and rekey hand out.

The server seals each new share to the key its custodian registered
(``seal.custodian_key``), so whoever runs the ceremony, and whoever completes a
rekey, sees ciphertexts only. Only the custodian's machine opens one.

The sealing is ``crypto.kem_box`` (X-Wing KEM, HKDF-SHA256, AES-256-GCM: the one
KEM-DEM keyquorum uses, break glass's too), with the envelope's ``header`` as its
context: the length-prefixed custodian name, share index, seal generation and
recipient key fingerprint. An envelope moved to another custodian or generation,
or relabelled with another recipient, fails to open. The text form is ``kqse1:`` +
base64url(JSON). Every parse or authentication failure is one
``CustodianKeyError`` ``invalid_share_envelope`` (it never says which check
failed); an envelope for another key is ``wrong_custodian_key``, said before any
decryption (the recipient is public).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field

from keyquorum.crypto import kem, kem_box
from keyquorum.crypto.errors import InvalidCiphertext
from keyquorum.seal.custodian_key import CustodianKeyError, fingerprint

PREFIX = "kqse1:"
MAX_ENVELOPE = 8192
_DOMAIN = b"keyquorum/share-envelope/v1"


def _invalid() -> CustodianKeyError:
    return CustodianKeyError("invalid_share_envelope", "the share envelope is damaged or "
                             "was edited, or it was not made by keyquorum")


@dataclass(frozen=True)
class ShareEnvelope:
    """A sealed share and the public facts it is bound to."""

    custodian: str
    index: int
    generation: int
    recipient: str  # the fingerprint of the key it is sealed to
    box: bytes = field(repr=False)  # a kem_box: encapsulation, nonce, ciphertext

    def header(self) -> bytes:
        """The context the box is bound to."""
        fields = (self.custodian.encode("utf-8"), self.index.to_bytes(4, "big"),
                  self.generation.to_bytes(4, "big"), self.recipient.encode("ascii"))
        return _DOMAIN + b"".join(len(f).to_bytes(4, "big") + f for f in fields)

    def to_text(self) -> str:
        body = {"v": 1, "custodian": self.custodian, "index": self.index,
                "generation": self.generation, "recipient": self.recipient,
                "box": base64.b64encode(self.box).decode()}
        return PREFIX + base64.urlsafe_b64encode(
            json.dumps(body, separators=(",", ":")).encode()).decode().rstrip("=")

    @classmethod
    def from_text(cls, text: object) -> ShareEnvelope:
        if not isinstance(text, str) or len(text) > MAX_ENVELOPE:
            raise _invalid()
        text = text.strip()
        if not text.startswith(PREFIX):
            raise _invalid()
        body = text[len(PREFIX):]
        try:
            raw = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            if raw["v"] != 1 or not isinstance(raw["box"], str):
                raise ValueError
            envelope = cls(custodian=str(raw["custodian"]), index=int(raw["index"]),
                           generation=int(raw["generation"]), recipient=str(raw["recipient"]),
                           box=base64.b64decode(raw["box"], validate=True))
        except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError):
            raise _invalid() from None
        if not (1 <= envelope.index <= 255 and envelope.generation >= 1):
            raise _invalid()
        return envelope


def seal_share(share: str, public_pem: str, *, custodian: str, index: int,
               generation: int) -> ShareEnvelope:
    """Seal one share text to a custodian's public key (fresh KEM encapsulation)."""
    unsealed = ShareEnvelope(custodian, index, generation, fingerprint(public_pem), b"")
    box = kem_box.seal_to(public_pem, share.encode("ascii"), context=unsealed.header())
    return ShareEnvelope(custodian, index, generation, unsealed.recipient, box)


def open_share(envelope: ShareEnvelope, private: kem.KemKey) -> str:
    """The share text, on the custodian's machine, with the custodian's private key."""
    if fingerprint(private.public_pem()) != envelope.recipient:
        raise CustodianKeyError("wrong_custodian_key", "this share was sealed to another "
                                f"key ({envelope.recipient}), not to this key file")
    try:
        plain = kem_box.open_box(private, envelope.box, context=envelope.header())
        return plain.decode("ascii")
    except (InvalidCiphertext, UnicodeDecodeError):
        raise _invalid() from None
