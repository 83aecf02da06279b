"""Verifying an export file (or a file sink's file) with no server: only the public key.

Two passes over the file: the first gathers the signed checkpoints (few) and the
``end`` line, the second streams the records through the chain checker, so a
file of any size is checked in constant memory. The public key must come from
the auditor (kept from ``GET /v1/audit/public-key`` or an earlier export): the
header's copy is only informative, since whoever edits a file can edit its header.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from keyquorum.audit.chain import LEGACY_NODE, ChainHead
from keyquorum.audit.checkpoints import Checkpoint
from keyquorum.audit.export import ExportFormatError, read_export
from keyquorum.audit.verify import Fault, VerifyReport, verify_chain


def _records(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as stream:
        for _number, item in read_export(stream):
            if item["type"] == "record":
                yield item


def verify_file(path: Path, public_pem: str,
                trusted: Sequence[Checkpoint] = ()) -> VerifyReport:
    """Check an export or sink file; ``ExportFormatError`` if a line is malformed.

    An export (it has a header) must hold every chain the braids and its node lines
    name, each closed by its end line. A sink file (no header) holds the chains of
    the nodes that write to it: a chain absent from it is not held to the braids.
    """
    checkpoints: list[Checkpoint] = []
    ends: dict[int, ChainHead] = {}
    registry: dict[int, int] = {}
    has_header = False
    with path.open("rb") as stream:
        for number, item in read_export(stream):
            kind = item["type"]
            if ends and kind != "end":
                raise ExportFormatError(number, "a line follows the end lines")
            if kind == "header":
                if number != 1 or has_header:
                    raise ExportFormatError(number, "the header must be the first line")
                has_header = True
            elif kind == "node":
                first_braid = item.get("first_braid")
                if isinstance(first_braid, bool) or not isinstance(first_braid, int):
                    raise ExportFormatError(number, "a node line needs node and first_braid")
                registry[item["node"]] = first_braid
            elif kind == "checkpoint":
                try:
                    checkpoints.append(Checkpoint.from_line(item))
                except ValueError as exc:
                    raise ExportFormatError(number, str(exc)) from None
            elif kind == "end":
                seq, chain_hash = item.get("seq"), item.get("chain_hash")
                if isinstance(seq, bool) or not isinstance(seq, int) \
                        or not isinstance(chain_hash, str):
                    raise ExportFormatError(number, "the end line needs seq and chain_hash")
                node = item.get("node", LEGACY_NODE)
                if node in ends:
                    raise ExportFormatError(number, f"a second end line for node {node}")
                ends[node] = ChainHead(seq, chain_hash)
    report = verify_chain(_records(path), [*checkpoints, *trusted], public_pem, heads=ends,
                          registry=registry, partial=not has_header)
    if report.ok and has_header:
        unended = sorted(set(registry) - set(ends)) if ends else [LEGACY_NODE]
        if unended:
            return replace(report, ok=False, first_bad=Fault(
                report.head.seq + 1, "the export has no end line: it was cut short",
                unended[0]))
    return report
