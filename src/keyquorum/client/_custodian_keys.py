"""A custodian's own key, on the custodian's machine: make it, and open a sealed share.

Nothing here talks to the server. ``new_key_file`` makes the key pair and its
passphrase-protected file (the private key never leaves this machine);
``open_delivered_share`` opens the share the server sealed to it, after checking,
before the passphrase is even asked for, that the server sealed the share to THIS
key and holds THIS key in the custodian's name: an operator who registered their
own key in the custodian's place (and read the share) is caught here, at first use.
The share is then checked against the seal's public commitments.

Every refusal is a ``CustodianKeyError`` (a ``ValueError``, from
``keyquorum.seal.custodian_key``) with a stable ``code``:

- ``invalid_key_file``, ``wrong_key_passphrase``, ``weak_passphrase``: the key file;
- ``wrong_custodian_key``: the key file or the envelope is another custodian's;
- ``custodian_key_mismatch``: the server names another key than this file's;
- ``invalid_share_envelope``: damaged or edited, or not a share of this seal.

The formats are the server's own modules (``keyquorum.seal.custodian_key``,
``keyquorum.seal.share_envelope``), imported on first use so that importing the
SDK loads none of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._custodians import DeliveredShare


@dataclass(frozen=True)
class NewKeyFile:
    """A new key pair: the file to keep (0600, this machine only) and the public key."""

    name: str
    public_pem: str
    fingerprint: str
    file_bytes: bytes = field(repr=False)


def new_key_file(name: str, passphrase: str) -> NewKeyFile:
    """A fresh key pair for custodian ``name``, its private half sealed under ``passphrase``."""
    from keyquorum.seal import custodian_key

    pair = custodian_key.generate(name)
    data = custodian_key.seal_key_file(pair, passphrase)
    return NewKeyFile(name, pair.public_pem, pair.fingerprint, data)


@dataclass(frozen=True)
class KeyFileInfo:
    """What a key file says without its passphrase."""

    name: str
    public_pem: str
    fingerprint: str


def read_key_file(data: bytes) -> KeyFileInfo:
    from keyquorum.seal import custodian_key

    read = custodian_key.read_key_file(data)
    return KeyFileInfo(read.name, read.public_pem, read.fingerprint)


def check_delivery(delivered: DeliveredShare, key_file: bytes) -> KeyFileInfo:
    """Refuse, before any passphrase, a share that is not this key file's to open."""
    from keyquorum.seal.custodian_key import CustodianKeyError

    info = read_key_file(key_file)
    if info.name != delivered.custodian:
        raise CustodianKeyError("wrong_custodian_key", f"this key file is {info.name!r}'s; "
                                  f"the share is {delivered.custodian!r}'s")
    if delivered.key_fingerprint != info.fingerprint:
        raise CustodianKeyError(
            "custodian_key_mismatch",
            f"the server holds another public key in your name ({delivered.key_fingerprint}) "
            f"than this key file's ({info.fingerprint}). Unless you registered it yourself, "
            "someone put their key in your place: tell the other custodians and rekey")
    if delivered.recipient != info.fingerprint:
        raise CustodianKeyError(
            "custodian_key_mismatch",
            f"the server sealed your share to another key ({delivered.recipient}) than this "
            f"key file's ({info.fingerprint}): whoever holds that key may have read your "
            "share. Tell the other custodians and rekey")
    return info


def open_delivered_share(delivered: DeliveredShare, key_file: bytes, passphrase: str) -> str:
    """The custodian's share: checked (``check_delivery``), opened, and verified against
    the seal's commitments."""
    from keyquorum.crypto import vss
    from keyquorum.errors import InvalidRequest
    from keyquorum.seal import custodian_key
    from keyquorum.seal.custodian_key import CustodianKeyError
    from keyquorum.seal.share_envelope import ShareEnvelope, open_share
    from keyquorum.seal.shares import decode_share

    check_delivery(delivered, key_file)
    envelope = ShareEnvelope.from_text(delivered.envelope)
    if (envelope.custodian, envelope.index, envelope.generation) != (
            delivered.custodian, delivered.index, delivered.generation):
        raise CustodianKeyError("invalid_share_envelope", "the envelope is not the share of "
                                "this custodian for the current seal generation")
    key = custodian_key.open_key_file(custodian_key.read_key_file(key_file), passphrase)
    share = open_share(envelope, key)
    try:
        parsed = decode_share(share)
    except InvalidRequest:
        raise CustodianKeyError("invalid_share_envelope", "the envelope holds no share") \
            from None
    commitments = [bytes.fromhex(c) for c in delivered.commitments]
    if parsed.index != delivered.index or not vss.verify_share(parsed, commitments):
        raise CustodianKeyError("invalid_share_envelope", "the opened share does not match the "
                                "seal's commitments")
    return share
