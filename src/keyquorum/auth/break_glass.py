"""The box a break-glass root token travels in, from the server to whoever asked for it.

A root token minted by a custodian quorum (``service.generate_root``) is answered
to the custodian whose share completed the quorum, who may not be the person who
asked for it. So it is never answered in the clear: it is sealed
(``crypto.kem_box``) to the public key the requester gave when the attempt was
opened, and bound to that attempt's public id, so a box cannot be replayed as
another attempt's. The server, the custodians and anyone reading the answer see
only the box; the requester's private key, which never left their machine,
opens it (``keyquorum operator generate-root decode``).

Both sides use this module: the server seals, the SDK and CLI open. It needs
nothing but ``keyquorum.crypto``.
"""

from __future__ import annotations

import base64
import binascii

from keyquorum.crypto import kem_box
from keyquorum.crypto.errors import InvalidCiphertext
from keyquorum.crypto.kem import KemKey

_CONTEXT = b"keyquorum generate-root v1\x00"


def _context(attempt: str) -> bytes:
    return _CONTEXT + attempt.encode("ascii")


def seal_root_token(public_pem: str, token: str, attempt: str) -> str:
    """``encoded_token``: the token sealed to ``public_pem`` for ``attempt``, in base64."""
    box = kem_box.seal_to(public_pem, token.encode("ascii"), context=_context(attempt))
    return base64.b64encode(box).decode("ascii")


def open_root_token(private_pem: str, encoded_token: str, attempt: str) -> str:
    """The token in ``encoded_token``; ``InvalidCiphertext`` if this key or attempt is not
    the one it was sealed for, or the text was damaged (never says which)."""
    return open_root_token_with(kem_box.load_private_pem(private_pem), encoded_token,
                                attempt)


def open_root_token_with(key: KemKey, encoded_token: str, attempt: str) -> str:
    """``open_root_token`` with a loaded key (a custodian's key file, opened with its
    passphrase, serves as well as a key made for the attempt)."""
    try:
        box = base64.b64decode(encoded_token.strip(), validate=True)
    except (binascii.Error, ValueError, AttributeError):
        raise InvalidCiphertext() from None
    plain = kem_box.open_box(key, box, context=_context(attempt))
    try:
        return plain.decode("ascii")
    except UnicodeDecodeError:  # pragma: no cover - the box authenticated: it is ours
        raise InvalidCiphertext() from None
