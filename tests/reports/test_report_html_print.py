"""The inventory page printed: a time in a table cell stays whole on one line.

Browsers break text after a hyphen, so a narrow cell printed on A4 split
``2026-12-05T14:48:24Z`` into ``2026-12-`` and ``05T14:48:24Z`` (seen in headless
Chromium's PDF). Times sit in a span that does not wrap.
"""

from __future__ import annotations

import re

from http_helpers import create_key, ok, unique
from inprocess_server import InProcessServer

WHEN = re.compile(r'<span class="when">\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ</span>')


def test_a_time_in_an_inventory_cell_is_never_broken_at_its_hyphens(
        inprocess_server: InProcessServer) -> None:
    with inprocess_server.client() as root:
        name = unique("print/k")
        create_key(root, name, "aes-256-gcm")
        ok(root.post(f"/v1/keys/{name}/encrypt", json={"plaintext": "eA=="}))  # a last use
        page = root.get("/v1/reports/inventory", params={"format": "html"}).text
    assert WHEN.search(page), "the last use is not kept whole"
    style = page.split("<style>")[1].split("</style>")[0]
    nowrap = next(rule for rule in style.split("}") if "white-space:nowrap" in rule)
    assert ".when" in nowrap.split("{")[0]
