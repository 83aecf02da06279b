"""``transit/random`` and ``transit/hash``: no key involved.

random is the native ``random`` operation (same permission, same OS CSPRNG,
same 1024-byte bound per call). hash needs a valid token and no permission
(it touches no key and no secret, as in Vault any token with access to the
path may call it); it is audited like every request.
"""

from __future__ import annotations

import hashlib
from typing import Any

from keyquorum.errors import InvalidRequest
from keyquorum.service.context import RequestContext
from keyquorum.transit import fields
from keyquorum.transit.calls import Call
from keyquorum.transit.envelope import Answer

MAX_RANDOM_BYTES = 1024
FORMATS = ("base64", "hex")
HASHES = {"sha2-224": "sha224", "sha2-256": "sha256", "sha2-384": "sha384",
          "sha2-512": "sha512", "sha3-224": "sha3_224", "sha3-256": "sha3_256",
          "sha3-384": "sha3_384", "sha3-512": "sha3_512"}


def _encode(data: bytes, output: str) -> str:
    if output not in FORMATS:
        raise InvalidRequest("format must be base64 or hex")
    return data.hex() if output == "hex" else fields.encode_b64(data)


async def random(call: Call) -> Answer:
    """``random``, ``random/:bytes``, ``random/:source/:bytes`` (source platform/all)."""
    body = dict(call.body)
    for segment in call.segments[1:]:
        if segment.isdigit():
            body["bytes"] = segment
        elif segment in FORMATS:
            body["format"] = segment
        elif segment not in ("platform", "all"):
            raise InvalidRequest("random takes random/:source/:bytes with source platform "
                                 "or all")
    if (fields.text(body, "source", "platform") or "platform") not in ("platform", "all"):
        raise InvalidRequest("source must be platform or all: keyquorum's randomness is the "
                             "OS CSPRNG")
    count = fields.integer(body, "bytes", 32, low=1, high=MAX_RANDOM_BYTES)
    output = fields.text(body, "format", "base64") or "base64"
    assert count is not None
    ops = call.services.operations

    def work(_ctx: RequestContext) -> dict[str, Any]:
        return {"random_bytes": _encode(ops.random(count).data, output)}

    return Answer(await call.run("random", None, work, permission="random", in_thread=False))


async def hash_input(call: Call) -> Answer:
    """``hash`` and ``hash/:algorithm``."""
    body = dict(call.body)
    if len(call.segments) > 1:
        body.setdefault("algorithm", call.segments[1])
    algorithm = fields.text(body, "algorithm", "sha2-256") or "sha2-256"
    if algorithm not in HASHES:
        raise InvalidRequest(f"algorithm must be one of {', '.join(HASHES)}")
    output = fields.text(body, "format", "hex") or "hex"
    data = fields.b64(body, "input", required=True) or b""

    def work(_ctx: RequestContext) -> dict[str, Any]:
        return {"sum": _encode(hashlib.new(HASHES[algorithm], data).digest(), output)}

    return Answer(await call.run("hash", None, work, permission=None, in_thread=False))
