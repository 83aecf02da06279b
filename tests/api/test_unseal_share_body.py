"""The unseal route reads a share from the raw body into a buffer, never into a str (F10).

The share's characters are moved out of the body into their own buffer (``x``s are
left in the body, which is parsed and validated as before) and the buffer is wiped
once the share was used; a body that spells the share some other way still unseals.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from keyquorum.api.share_body import is_placeholder, take_share
from keyquorum.seal.shares import decode_share

SHARE = "kqs1-01-" + "a" * 52 + "-0123abcd"


def test_the_share_moves_out_of_the_body_into_its_own_buffer() -> None:
    body = bytearray(json.dumps({"share": SHARE}).encode())
    share = take_share(body)
    assert share == bytearray(SHARE.encode())
    assert json.loads(body) == {"share": "x" * len(SHARE)}
    assert is_placeholder(json.loads(body)["share"], share)


@pytest.mark.parametrize("body", [
    b'{"passphrase": "a share"}',  # no share at all
    b'{"share": null, "auto": true}',  # not a string
    b'{"share": "kqs1-01-\\u0061' + b"a" * 51 + b'-0123abcd"}',  # spelled with an escape
    b'{"share": "' + SHARE.encode() + b'", "share": "' + SHARE.encode() + b'"}',  # twice
])
def test_a_share_spelled_otherwise_is_left_in_the_body(body: bytes) -> None:
    buffer = bytearray(body)
    assert take_share(buffer) is None
    assert buffer == bytearray(body)


def test_a_share_string_found_anywhere_but_the_top_is_not_the_share() -> None:
    body = bytearray(b'{"other": {"share": "' + SHARE.encode() + b'"}}')
    share = take_share(body)
    assert share is not None  # taken, but the parsed body has no top-level share of x's
    assert not is_placeholder(json.loads(body).get("share"), share)


def _unseal_raw(server: Any, body: bytes) -> dict[str, Any]:
    with server.anonymous({"Content-Type": "application/json"}) as http:
        answer = http.post("/v1/sys/unseal", content=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_shares_unseal_however_their_json_is_written(fresh_inprocess: Any) -> None:
    fresh_inprocess.init(3, 2)
    first, second = fresh_inprocess.shares[:2]
    index, value, checksum = first.split("-")[1:]
    spaced = f"kqs1-{index}-{value[:20]} {value[20:]}-{checksum}"  # as typed from paper
    answer = _unseal_raw(fresh_inprocess, b'{ "share" :\n"' + spaced.encode() + b'" }')
    assert answer["progress"] == 1 and answer["sealed"] is True
    escaped = second.replace("kqs1", "kqs\\u0031")  # still the same share, as a str
    answer = _unseal_raw(fresh_inprocess, b'{"share": "' + escaped.encode() + b'"}')
    assert answer["sealed"] is False
    assert decode_share(second).index == 2


def test_a_bad_share_in_the_body_is_refused_without_being_echoed(fresh_inprocess: Any) -> None:
    fresh_inprocess.init(3, 2)
    with fresh_inprocess.anonymous() as http:
        refused = http.post("/v1/sys/unseal", json={"share": SHARE})
        nested = http.post("/v1/sys/unseal", json={"x": {"share": SHARE}})
    assert refused.status_code == 400 and "checksum" in refused.json()["error"]["message"]
    assert SHARE not in refused.text and "a" * 20 not in refused.text
    assert nested.status_code == 400 and SHARE not in nested.text
