"""A share sealed to its custodian's public key: what init and rekey hand out.

The server seals each new share to the key its custodian registered
(``seal.custodian_key``), so whoever runs the ceremony, and whoever completes a
rekey, sees ciphertexts only. Only the custodian's machine opens one.

Construction (one-shot hybrid public key encryption, in the spirit of RFC 9180's
base mode, from keyquorum's own verbs):

    shared, enc = KEM.Encap(pk)                        X-Wing (x25519-ml-kem-768)
    key = HKDF-SHA256(shared, salt = enc, info = DOMAIN || header)
    ct  = AES-256-GCM(key, random nonce, share text, aad = DOMAIN || header || enc)

``header`` is the length-prefixed custodian name, share index, seal generation and
the recipient key's fingerprint: an envelope moved to another custodian or
generation, or relabelled with another recipient, fails to authenticate. The text
form is ``kqse1:`` + base64url(JSON). Every parse or authentication failure is one
``CustodianKeyError`` ``invalid_share_envelope`` (it never says which check failed);
an envelope for another key is ``wrong_custodian_key``, said before any decryption
(the recipient is public).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field

from keyquorum.crypto import aead, kem
from keyquorum.crypto.errors import InvalidCiphertext
from keyquorum.crypto.kdf import hkdf_sha256
from keyquorum.seal.custodian_key import ALGORITHM, CustodianKeyError, fingerprint

PREFIX = "kqse1:"
MAX_ENVELOPE = 8192
_DOMAIN = b"keyquorum/share-envelope/v1"
_AEAD = "aes-256-gcm"


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
    enc: bytes = field(repr=False)
    nonce: bytes = field(repr=False)
    ciphertext: bytes = field(repr=False)

    def header(self) -> bytes:
        fields = (self.custodian.encode("utf-8"), self.index.to_bytes(4, "big"),
                  self.generation.to_bytes(4, "big"), self.recipient.encode("ascii"))
        return _DOMAIN + b"".join(len(f).to_bytes(4, "big") + f for f in fields)

    def to_text(self) -> str:
        body = {"v": 1, "custodian": self.custodian, "index": self.index,
                "generation": self.generation, "recipient": self.recipient,
                "enc": _b64(self.enc), "nonce": _b64(self.nonce), "ct": _b64(self.ciphertext)}
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
            if raw["v"] != 1:
                raise ValueError
            envelope = cls(custodian=str(raw["custodian"]), index=int(raw["index"]),
                           generation=int(raw["generation"]), recipient=str(raw["recipient"]),
                           enc=_unb64(raw["enc"]), nonce=_unb64(raw["nonce"]),
                           ciphertext=_unb64(raw["ct"]))
        except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError):
            raise _invalid() from None
        if not (1 <= envelope.index <= 255 and envelope.generation >= 1):
            raise _invalid()
        return envelope


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: object) -> bytes:
    if not isinstance(text, str):
        raise ValueError("not base64")
    return base64.b64decode(text, validate=True)


def _key(shared: bytes, envelope: ShareEnvelope) -> aead.AeadKey:
    return aead.AeadKey(_AEAD, hkdf_sha256(shared, salt=envelope.enc,
                                           info=envelope.header()))


def seal_share(share: str, public_pem: str, *, custodian: str, index: int,
               generation: int) -> ShareEnvelope:
    """Seal one share text to a custodian's public key (fresh KEM encapsulation)."""
    recipient = fingerprint(public_pem)
    shared, enc = kem.encapsulate(ALGORITHM, public_pem)
    bound = ShareEnvelope(custodian, index, generation, recipient, enc, b"", b"")
    nonce, body = _key(shared, bound).encrypt(share.encode("ascii"), bound.header() + enc)
    return ShareEnvelope(custodian, index, generation, recipient, enc, nonce, body)


def open_share(envelope: ShareEnvelope, private: kem.KemKey) -> str:
    """The share text, on the custodian's machine, with the custodian's private key."""
    if fingerprint(private.public_pem()) != envelope.recipient:
        raise CustodianKeyError("wrong_custodian_key", "this share was sealed to another "
                                 f"key ({envelope.recipient}), not to this key file")
    try:
        shared = private.decapsulate(envelope.enc)
        plain = _key(shared, envelope).decrypt(envelope.nonce, envelope.ciphertext,
                                               envelope.header() + envelope.enc)
        return plain.decode("ascii")
    except (InvalidCiphertext, UnicodeDecodeError):
        raise _invalid() from None
