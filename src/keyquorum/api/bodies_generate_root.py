"""Typed bodies of the break-glass routes (``/v1/sys/generate-root``).

Strict models as in ``bodies``: a malformed request (no share, a public key that
is not an X-Wing PEM, a nonce of the wrong shape) is refused whole, before the
ceremony runs. Shares are never repeated in a refusal or a repr.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field, WithJsonSchema

from keyquorum.api.bodies import Body
from keyquorum.api.bodies_admin import TokenTtl
from keyquorum.crypto import kem_box
from keyquorum.crypto.kem import HYBRID_PEM_LABEL


def _public_key(value: object) -> str:
    kem_box.check_public_pem(value)  # ValueError says what a valid one is
    assert isinstance(value, str)
    return value


def _nonce(value: object) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        raise ValueError("must be the nonce of the root token generation in progress")
    return value


PublicKey = Annotated[str, BeforeValidator(_public_key), WithJsonSchema({
    "type": "string", "maxLength": 4096,
    "description": f"the requester's {HYBRID_PEM_LABEL} PEM (x25519-ml-kem-768), from "
                   "`keyquorum custodian keygen` or made by `keyquorum operator "
                   "generate-root init`: the new root token is answered sealed to it"})]
Nonce = Annotated[str, BeforeValidator(_nonce),
                  WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 64})]


class StartGenerateRoot(Body):
    """``POST /v1/sys/generate-root/init``: the requester's public key and the first share."""

    public_key: PublicKey
    share: str = Field(repr=False)
    ttl: TokenTtl = None


class SubmitGenerateRootShare(Body):
    """``POST /v1/sys/generate-root/update``: a share, for the attempt its nonce names."""

    nonce: Nonce
    share: str = Field(repr=False)


class CancelGenerateRoot(Body):
    """``POST /v1/sys/generate-root/cancel``: only with the attempt's nonce."""

    nonce: Nonce


__all__ = ["CancelGenerateRoot", "StartGenerateRoot", "SubmitGenerateRootShare"]
