"""The inventory and compliance reports as self-contained, readable HTML pages.

Security: key names, owners, descriptions and every other string in the report
can come from clients, so every value goes through ``html.escape`` (quotes
included) on its way into the page, through the one helper ``_e``; nothing is
inserted raw except this module's own fixed markup. The page loads nothing
(no scripts, fonts or stylesheets from elsewhere), so it can be mailed or
archived as evidence and opened offline.
"""

from __future__ import annotations

import html
from typing import Any

from keyquorum.reports.compliance import ComplianceReport
from keyquorum.reports.inventory import Inventory

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;color:#1b1f24}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em}
table{border-collapse:collapse;width:100%;margin:.5em 0}
th,td{border:1px solid #d0d7de;padding:.35em .5em;text-align:left;vertical-align:top}
th{background:#f6f8fa}.status{font-weight:600;text-transform:uppercase;font-size:.85em}
.pass{color:#1a7f37}.attention{color:#9a6700}.fail{color:#cf222e}
ul{margin:.2em 0;padding-left:1.2em}details{margin:.2em 0}code{font-size:.9em}
"""


def _e(value: object) -> str:
    """Every value from the report enters the page through here, escaped."""
    return html.escape("" if value is None else str(value), quote=True)


def _status(status: str) -> str:
    return f'<span class="status {_e(status)}">{_e(status)}</span>'


def _control_row(control: dict[str, Any]) -> str:
    evidence = "".join(f"<li>{_e(item)}</li>" for item in control["evidence"])
    keys = ""
    if control["keys"]:
        rows = "".join(f"<tr><td><code>{_e(k['key'])}</code></td><td>{_status(k['status'])}"
                       f"</td><td>{_e(k['reason'])}</td></tr>" for k in control["keys"])
        keys = (f"<details><summary>{len(control['keys'])} key(s)</summary><table><tr>"
                f"<th>key</th><th>status</th><th>reason</th></tr>{rows}</table></details>")
    return (f"<tr><td><code>{_e(control['requirement'])}</code><br>{_e(control['framework'])}"
            f"</td><td><strong>{_e(control['title'])}</strong><br>{_e(control['summary'])}"
            f"{f'<ul>{evidence}</ul>' if evidence else ''}{keys}</td>"
            f"<td>{_status(control['status'])}</td></tr>")


def _page(title: str, content: str) -> str:
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>"
            f"<h1>{_e(title)}</h1>{content}</body></html>")


_UPPER_BOUND = (" Protect counts marked &le; are upper bounds: they include usage blocks"
                " reserved by another worker, or never given back after a crash.")


def render_inventory_html(inventory: Inventory) -> str:
    body = inventory.to_json()
    summary = body["summary"]
    flags = ", ".join(f"{n} {_e(flag)}" for flag, n in summary["flags"].items())
    states = ", ".join(f"{n} {_e(state)}" for state, n in summary["by_state"].items())
    rows = []
    for key in body["keys"]:
        period = key["crypto_period"]
        findings = "".join(f"<li><strong>{_e(f['flag'])}</strong>: {_e(f['detail'])}</li>"
                           for f in key["findings"])
        rows.append(
            f"<tr><td><code>{_e(key['name'])}</code><br>{_e(key['description'])}</td>"
            f"<td>{_e(key['owner'])}</td><td>{_e(key['spec'])}</td><td>{_e(key['state'])}</td>"
            f"<td>{_e(key['primary_version'])} of {len(key['versions'])}</td>"
            f"<td>{'' if key['protect_count_exact'] else '&le; '}{_e(key['protect_count'])}"
            f"</td><td>{_e(key['last_used_at'])}</td>"
            f"<td>{_e(key['primary_age_days'])} of {_e(period['seconds'] // 86400)} days"
            f"</td><td>{_e(key['next_rotation'])}</td>"
            f"<td>{f'<ul>{findings}</ul>' if findings else ''}</td></tr>")
    return _page("keyquorum key inventory", (
        f"<p>Generated {_e(body['generated_at'])}. {_e(summary['keys'])} key(s): {states}. "
        f"Flags: {flags}.{_UPPER_BOUND if summary['protect_counts'] != 'exact' else ''}</p>"
        "<table><tr><th>key</th><th>owner</th><th>spec</th>"
        "<th>state</th><th>primary</th><th>protects</th><th>last use</th>"
        "<th>primary age / crypto-period</th><th>next rotation</th><th>flags</th></tr>"
        f"{''.join(rows)}</table>"))


def render_compliance_html(report: ComplianceReport) -> str:
    body = report.to_json()
    summary = body["summary"]
    controls = "".join(_control_row(c) for c in body["controls"])
    ids = [c["id"] for c in body["controls"] if c["keys"]]
    header = "".join(f"<th><code>{_e(i)}</code></th>" for i in ids)
    key_rows = "".join(
        f"<tr><td><code>{_e(k['key'])}</code></td><td>{_e(k['owner'])}</td>"
        f"<td>{_status(k['status'])}</td>"
        + "".join(f"<td>{_status(k['controls'][i]) if i in k['controls'] else ''}</td>"
                  for i in ids) + "</tr>"
        for k in body["keys"])
    counts = ", ".join(f"{n} {_e(s)}" for s, n in summary["controls"].items())
    key_counts = ", ".join(f"{n} {_e(s)}" for s, n in summary["keys"].items())
    return _page("keyquorum compliance report", (
        f"<p>Generated {_e(body['generated_at'])}. Overall: {_status(body['status'])}. "
        f"Controls: {counts}. Keys: {key_counts}.</p>"
        "<p>PCI DSS v4.0 Requirement 3.6&ndash;3.7 and NIST SP 800-57 Part 1 Rev. 5, judged "
        "on evidence from the running service. <em>attention</em> means a person must look: "
        "a weak spot, or evidence the service cannot see.</p>"
        "<h2>Controls</h2><table><tr><th>requirement</th><th>control and evidence</th>"
        f"<th>status</th></tr>{controls}</table>"
        "<h2>Keys</h2><table><tr><th>key</th><th>owner</th><th>overall</th>"
        f"{header}</tr>{key_rows}</table>"))
