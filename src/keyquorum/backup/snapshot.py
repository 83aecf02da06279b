"""The whole store as the backup body's lines, read in one consistent read.

The rows come from ``storage/snapshot.py`` (every table, in dependency order,
inside one read transaction: see ``consistent_read`` there); this module is the
body's format.

The body is JSON lines (UTF-8), each a directive object or a row array::

    {"table": "keys", "columns": ["id", ...], "binary": ["material"], "rows": 3}
    ["7f0c...", "payments/cards", ...]            one line per row, in column order
    {"canary": {...}}                             after the last table

Binary columns are standard base64 strings; ``None`` is ``null``; floats are
written as the shortest decimal that reads back to the same double.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import orjson
from sqlalchemy import Connection

from keyquorum.storage.snapshot import layouts, table_rows


def body_lines(conn: Connection, counts: dict[str, int],
               canaries: list[dict[str, Any]]) -> Iterator[bytes]:
    """The body, a line at a time: each table's directive and rows, then the canaries."""
    for layout in layouts():
        positions = [layout.columns.index(name) for name in layout.binary]
        yield orjson.dumps({"table": layout.name, "columns": list(layout.columns),
                            "binary": list(layout.binary),
                            "rows": counts[layout.name]}) + b"\n"
        for row in table_rows(conn, layout.name):
            values = list(row)
            for at in positions:
                if values[at] is not None:
                    values[at] = base64.b64encode(values[at]).decode("ascii")
            yield orjson.dumps(values) + b"\n"
    for canary in canaries:
        yield orjson.dumps({"canary": canary}) + b"\n"
