"""What a custodian's proofs of possession are bound to, shared by the server and the CLI/SDK.

A custodian proves it still holds share ``index`` with a Schnorr proof
(``crypto.vss.prove_possession``) over a context built here from the server's
fresh challenge, the custodian's name, the share index and the seal generation.
Each field is length-prefixed after a domain tag, so the proof cannot be
replayed for another challenge, another custodian or index, or after a rekey
(a new generation), and no two different field sets give the same bytes.
"""

from __future__ import annotations

_DOMAIN = b"keyquorum/custodian-drill/v1"


def proof_context(challenge: bytes, name: str, index: int, generation: int) -> bytes:
    fields = (challenge, name.encode("utf-8"), index.to_bytes(4, "big"),
              generation.to_bytes(4, "big"))
    return _DOMAIN + b"".join(len(f).to_bytes(4, "big") + f for f in fields)


_KEY_DOMAIN = b"keyquorum/custodian-key-registration/v1"


def key_registration_context(challenge: bytes, name: str, index: int, generation: int,
                             fingerprint: str) -> bytes:
    """What a proof registering a custodian's public key is bound to.

    The drill's fields plus the fingerprint of the key being registered, under another
    domain tag: a drill proof cannot register a key, and a proof made for one key
    cannot register another (an operator relaying it cannot swap in their own).
    """
    fields = (challenge, name.encode("utf-8"), index.to_bytes(4, "big"),
              generation.to_bytes(4, "big"), fingerprint.encode("ascii"))
    return _KEY_DOMAIN + b"".join(len(f).to_bytes(4, "big") + f for f in fields)
