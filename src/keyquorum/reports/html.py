"""The inventory and compliance reports as self-contained, readable HTML pages.

Security: key names, owners, descriptions and every other string in the report
can come from clients, so every value goes through ``html.escape`` (quotes
included) on its way into the page, through the one helper ``_e``; nothing is
inserted raw except this module's own fixed markup. The page loads nothing
(no scripts, fonts or stylesheets from elsewhere), so it can be mailed or
archived as evidence and opened offline.

Both pages fit a printed A4 page (nothing wider than the text column: long
names wrap, the compliance report lists keys instead of a control-by-key
matrix), show the reason for every result that is not a pass inline (never in a
collapsed element a printout would hide), and open with their provenance: the
server, its version, the generation time, the audit chain head and the audit
key that signs the page (``reports/signed.py``).
"""

from __future__ import annotations

import html
import json
from typing import Any

from keyquorum.reports.compliance import ComplianceReport
from keyquorum.reports.inventory import Inventory

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:60em;padding:0 1em;
color:#1b1f24}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;width:100%;margin:.5em 0}
th,td{border:1px solid #d0d7de;padding:.35em .5em;text-align:left;vertical-align:top}
th{background:#f6f8fa}.status{font-weight:600;text-transform:uppercase;font-size:.85em}
.pass{color:#1a7f37}.attention{color:#9a6700}.fail{color:#cf222e}
ul{margin:.2em 0;padding-left:1.2em}code{font-size:.9em}
td{overflow-wrap:break-word}.status,.when{white-space:nowrap}
.provenance{border:1px solid #d0d7de;padding:.5em .8em;
background:#f6f8fa;font-size:.9em}.provenance dt{font-weight:600;float:left;width:11em}
.provenance dd{margin:0 0 .1em 11em;overflow-wrap:anywhere}
@page{size:A4;margin:12mm}
@media print{body{font-size:9.5pt;margin:0;max-width:none;padding:0}
tr{break-inside:avoid}h2{break-after:avoid}}
"""


def _e(value: object) -> str:
    """Every value from the report enters the page through here, escaped (no value: —)."""
    return html.escape("\u2014" if value is None or value == "" else str(value), quote=True)


def _time(value: str | None) -> str:
    """A time as the CLI shows it (whole seconds, UTC): ``2026-12-05T07:48:51Z``."""
    return value.split(".")[0].removesuffix("Z") + "Z" if value else "\u2014"


def _when(value: str | None) -> str:
    """A time for a table cell, escaped, never wrapped at a hyphen (``2026-12-`` / ``05T...``)."""
    return f'<span class="when">{_e(_time(value))}</span>'


def _name(value: str) -> str:
    """A key name, escaped, that may wrap after a ``/`` but never inside a segment."""
    return "/<wbr>".join(_e(part) for part in str(value).split("/"))


def _provenance(facts: dict[str, Any] | None) -> str:
    """The page's origin, first thing on it; the same facts in a meta tag for tools."""
    if not facts:
        return ""
    head = facts["audit_chain_head"]
    rows = [("server", f"{facts['server']['node']} (keyquorum {facts['server']['version']})"),
            ("generated", _time(facts["generated_at"])),
            ("audit chain head", f"record {head['records']}, chain hash "
                                 f"{head['chain_hash']}"),
            ("signed by", f"audit checkpoint key {facts['audit_key_id']}"),
            ("check it", "keyquorum report verify THIS-FILE --public-key audit.pem")]
    return ('<dl class="provenance">' + "".join(f"<dt>{_e(k)}</dt><dd><code>{_e(v)}</code></dd>"
                                                 for k, v in rows) + "</dl>")


def _status(status: str) -> str:
    return f'<span class="status {_e(status)}">{_e(status)}</span>'


def _control_row(control: dict[str, Any]) -> str:
    evidence = "".join(f"<li>{_e(item)}</li>" for item in control["evidence"])
    keys = ""
    if control["keys"]:
        flagged = [k for k in control["keys"] if k["status"] != "pass"]
        passed = len(control["keys"]) - len(flagged)
        items = "".join(f"<li><code>{_name(k['key'])}</code> {_status(k['status'])}: "
                        f"{_e(k['reason'])}</li>" for k in flagged)
        keys = (f"<p>Keys: {passed} pass" + (f", {len(flagged)} not:" if flagged else ".")
                + "</p>" + (f"<ul>{items}</ul>" if items else ""))
    return (f"<tr><td><code>{_e(control['requirement'])}</code><br>{_e(control['framework'])}"
            f"</td><td><strong>{_e(control['title'])}</strong><br>{_e(control['summary'])}"
            f"{f'<ul>{evidence}</ul>' if evidence else ''}{keys}</td>"
            f"<td>{_status(control['status'])}</td></tr>")


def _page(title: str, content: str, facts: dict[str, Any] | None = None) -> str:
    meta = (f'<meta name="keyquorum-provenance" content="{_e(json.dumps(facts))}">'
            if facts else "")
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"{meta}<title>{_e(title)}</title><style>{_STYLE}</style></head><body>"
            f"<h1>{_e(title)}</h1>{_provenance(facts)}{content}</body></html>")


_UPPER_BOUND = (" Protect counts marked &le; are upper bounds: they include usage blocks"
                " reserved by another worker, or never given back after a crash.")


def render_inventory_html(inventory: Inventory, facts: dict[str, Any] | None = None) -> str:
    body = inventory.to_json()
    summary = body["summary"]
    flags = ", ".join(f"{n} {_e(flag)}" for flag, n in summary["flags"].items())
    states = ", ".join(f"{n} {_e(state)}" for state, n in summary["by_state"].items())
    rows = []
    for key in body["keys"]:
        period = key["crypto_period"]
        findings = "".join(f"<li><strong>{_e(f['flag'])}</strong>: {_e(f['detail'])}</li>"
                           for f in key["findings"])
        described = f"<br>{_e(key['description'])}" if key["description"] else ""
        upper = "" if key["protect_count_exact"] else "&le; "
        # Seven columns, pairs stacked in a cell: the table fits a printed A4 page.
        rows.append(
            f"<tr><td><code>{_name(key['name'])}</code>{described}</td>"
            f"<td>{_e(key['owner'])}</td><td>{_e(key['spec'])}<br>{_e(key['state'])}</td>"
            f"<td>{_e(key['primary_version'])} of {len(key['versions'])}<br>"
            f"{upper}{_e(key['protect_count'])}</td>"
            f"<td>{_when(key['last_used_at'])}<br>{_when(key['next_rotation'])}</td>"
            f"<td>{_e(key['primary_age_days'])} of {_e(period['seconds'] // 86400)} days</td>"
            f"<td>{f'<ul>{findings}</ul>' if findings else ''}</td></tr>")
    return _page("keyquorum key inventory", facts=facts, content=(
        f"<p>{_e(summary['keys'])} key(s): {states}. "
        f"Flags: {flags}.{_UPPER_BOUND if summary['protect_counts'] != 'exact' else ''}</p>"
        "<table><tr><th>key</th><th>owner</th><th>spec<br>state</th>"
        "<th>primary version<br>protects</th><th>last use<br>next rotation</th>"
        "<th>primary age / crypto-period</th><th>flags</th></tr>"
        f"{''.join(rows)}</table>"))


def _key_item(key: dict[str, Any], reasons: dict[tuple[str, str], str]) -> str:
    """One key that does not pass: each control it does not pass, with the reason."""
    failing = "".join(
        f"<li><code>{_e(cid)}</code> {_status(status)}: {_e(reasons.get((key['key'], cid)))}"
        "</li>" for cid, status in key["controls"].items() if status != "pass")
    return (f"<li><code>{_name(key['key'])}</code> (owner {_e(key['owner'])}) "
            f"{_status(key['status'])}<ul>{failing}</ul></li>")


def render_compliance_html(report: ComplianceReport,
                           facts: dict[str, Any] | None = None) -> str:
    body = report.to_json()
    summary = body["summary"]
    controls = "".join(_control_row(c) for c in body["controls"])
    reasons = {(k["key"], c["id"]): k["reason"] for c in body["controls"] for k in c["keys"]}
    flagged = [k for k in body["keys"] if k["status"] != "pass"]
    passing = [k for k in body["keys"] if k["status"] == "pass"]
    # A list, not a control-by-key matrix: it fits a printed page whatever the count.
    keys = (f"<ul>{''.join(_key_item(k, reasons) for k in flagged)}</ul>" if flagged
            else "<p>Every key passes every control about keys.</p>")
    if passing:
        keys += ("<p>Passing every control: "
                 + ", ".join(f"<code>{_e(k['key'])}</code> (owner {_e(k['owner'])})"
                             for k in passing) + ".</p>")
    counts = ", ".join(f"{n} {_e(s)}" for s, n in summary["controls"].items())
    key_counts = ", ".join(f"{n} {_e(s)}" for s, n in summary["keys"].items())
    return _page("keyquorum compliance report", facts=facts, content=(
        f"<p>Overall: {_status(body['status'])}. "
        f"Controls: {counts}. Keys: {key_counts}.</p>"
        "<p>PCI DSS v4.0 Requirement 3.6&ndash;3.7 and NIST SP 800-57 Part 1 Rev. 5, judged "
        "on evidence from the running service. <em>attention</em> means a person must look: "
        "a weak spot, or evidence the service cannot see.</p>"
        "<h2>Controls</h2><table><tr><th>requirement</th><th>control and evidence</th>"
        f"<th>status</th></tr>{controls}</table>"
        f"<h2>Keys not passing</h2>{keys}"))
