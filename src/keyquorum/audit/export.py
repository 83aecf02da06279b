"""The audit export format: JSON lines a verifier can check with no server.

One object per line, each with a ``type``:

- ``header``: ``{"type": "header", "format": "keyquorum-audit", "version": 1 or 2,
  "exported_at", "public_key_pem", "key_id"}`` (first line of an export; a file
  sink has none, and then the public key must be given to the verifier). Version
  2: the trail has several nodes' chains;
- ``node`` (version 2): ``{"type": "node", "node", "first_braid"}``, one per
  registered node: the first braid that must name it;
- ``record``: the stored record exactly as linked (``id`` is its place in its
  chain, ``time`` as stored, ``detail`` and ``context`` as the stored JSON strings,
  ``chain_hash``), with ``node`` when the chain is not node 1's;
- ``checkpoint``: ``{"type": "checkpoint", "seq", "chain_hash", "time",
  "key_id", "signature"}``, and for a braid's entry also ``node`` (if not 1),
  ``braid``, ``previous`` and ``heads`` (every ``[node, seq, chain_hash]`` it names);
- ``end``: ``{"type": "end", "seq", "chain_hash"}`` (with ``node`` if not 1), the
  last lines of an export, one per chain: the head the export was cut at, so an
  export truncated in transit is noticed (it is not signed: a deliberate cut is
  what checkpoints held outside catch).

Records appear in chain order, chain after chain. The same record lines go to the
file sink, so a sink file is verifiable as it stands.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any

import orjson

from keyquorum.audit.chain import CHAIN_FIELDS, ChainHead
from keyquorum.audit.checkpoints import Checkpoint

FORMAT = "keyquorum-audit"
VERSION = 1
VERSIONS = (1, 2)
LEGACY_NODE = 1


class ExportFormatError(ValueError):
    """A line of an export is not a well-formed header, record or checkpoint."""

    def __init__(self, line_number: int, message: str) -> None:
        super().__init__(f"line {line_number}: {message}")
        self.line_number = line_number


def record_line(row: dict[str, Any]) -> bytes:
    """A linked row as one export line (bytes, newline-terminated)."""
    body: dict[str, Any] = {"type": "record"}
    node = row.get("node", LEGACY_NODE)
    if node != LEGACY_NODE:
        body["node"] = node
    seq = row.get("seq")
    body["id"] = row["id"] if seq is None else seq  # the place in the chain
    for name in CHAIN_FIELDS[1:]:
        body[name] = row[name]
    body["chain_hash"] = row["chain_hash"]
    return orjson.dumps(body) + b"\n"


def checkpoint_line(checkpoint: Checkpoint) -> bytes:
    return orjson.dumps({"type": "checkpoint", **checkpoint.to_json()}) + b"\n"


def end_line(head: ChainHead, node: int = LEGACY_NODE) -> bytes:
    body: dict[str, Any] = {"type": "end"}
    if node != LEGACY_NODE:
        body["node"] = node
    body.update(seq=head.seq, chain_hash=head.chain_hash)
    return orjson.dumps(body) + b"\n"


def node_line(node: int, first_braid: int) -> bytes:
    return orjson.dumps({"type": "node", "node": node, "first_braid": first_braid}) + b"\n"


def header_line(exported_at: float, public_key_pem: str, key_id: str,
                version: int = VERSION) -> bytes:
    return orjson.dumps({"type": "header", "format": FORMAT, "version": version,
                         "exported_at": exported_at, "public_key_pem": public_key_pem,
                         "key_id": key_id}) + b"\n"


_TYPES = ("header", "node", "record", "checkpoint", "end")
_RECORD_TYPES: dict[str, tuple[type, ...]] = {
    "id": (int,), "time": (float, int), "request_id": (str,), "identity": (str, type(None)),
    "operation": (str,), "key": (str, type(None)), "key_version": (int, type(None)),
    "outcome": (str,), "error_code": (str, type(None)), "client": (str, type(None)),
    "detail": (str, type(None)), "context": (str, type(None)), "chain_hash": (str,),
}


def read_export(stream: IO[bytes]) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each line; ``ExportFormatError`` names a malformed one.

    Parsing uses the standard ``json`` module: floats come back bit-exact, which
    the chain's canonical encoding relies on.
    """
    for number, raw in enumerate(stream, start=1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise ExportFormatError(number, "not a JSON object") from None
        if not isinstance(item, dict) or item.get("type") not in _TYPES:
            raise ExportFormatError(number, "not a header, node, record, checkpoint or end "
                                    "line")
        node = item.get("node", LEGACY_NODE)
        if isinstance(node, bool) or not isinstance(node, int) or node < 1:
            raise ExportFormatError(number, "node must be a positive integer")
        if item["type"] == "record":
            for name, types in _RECORD_TYPES.items():
                value = item.get(name)
                if name not in item or isinstance(value, bool) or not isinstance(value, types):
                    raise ExportFormatError(number, f"record field {name!r} is missing or "
                                            "of the wrong type")
        yield number, item
