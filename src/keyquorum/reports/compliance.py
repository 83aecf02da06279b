"""The compliance report: PCI DSS v4.0 3.6-3.7 and NIST SP 800-57 controls, from live evidence.

Each control gets ``pass``, ``fail`` or ``attention`` (evidence needs a person:
a weak spot, or something the service cannot see), with the evidence it was
judged on and, where the control is about keys, a result per key. A control's
status is the worst of its own check and its keys' results.

Evidence comes from the running service only: keys and versions (storage),
the inventory's use and flags (``reports/inventory.py``), the seal (Shamir
threshold and shares, custodians), dual control (``core.dual_control``), the
listener's transport settings, and the audit log (``audit_controls`` below).
The controls and their rules are in ``reports/compliance_checks.py``.

Controls covered: PCI DSS v4.0 3.6.1, 3.6.1.1-3.6.1.4, 3.7.1-3.7.9; NIST SP
800-57 Part 1 Rev. 5 key generation, storage, distribution, crypto-period,
rotation, retirement, destruction, split knowledge and dual control, custodian
acknowledgement, and accountability (audit). Control texts are paraphrased,
never quoted; the standards themselves are the reference.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from keyquorum.clock import rfc3339
from keyquorum.reports.compliance_checks import (
    ATTENTION,
    CATALOGUE,
    FAIL,
    NIST,
    PASS,
    RANK,
    STATUSES,
    ControlSpec,
    Evidence,
    KeyCheck,
    worst,
)
from keyquorum.reports.inventory import build_inventory
from keyquorum.seal.shamir import default_custodian_names
from keyquorum.service.core import Core
from keyquorum.storage import reports_repo


@dataclass(frozen=True)
class KeyResult:
    key: str
    status: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"key": self.key, "status": self.status, "reason": self.reason}


@dataclass(frozen=True)
class Control:
    id: str
    framework: str
    requirement: str
    title: str
    status: str
    summary: str
    evidence: tuple[str, ...] = ()
    keys: tuple[KeyResult, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "framework": self.framework, "requirement": self.requirement,
                "title": self.title, "status": self.status, "summary": self.summary,
                "evidence": list(self.evidence), "keys": [k.to_json() for k in self.keys]}


@dataclass(frozen=True)
class ComplianceReport:
    generated_at: float
    controls: tuple[Control, ...]
    owners: dict[str, str | None] = field(default_factory=dict)  # key -> owner, for people

    def key_statuses(self) -> dict[str, dict[str, str]]:
        """Per key: each control's result for it."""
        table: dict[str, dict[str, str]] = {}
        for control in self.controls:
            for result in control.keys:
                table.setdefault(result.key, {})[control.id] = result.status
        return table

    def to_json(self) -> dict[str, Any]:
        per_key = self.key_statuses()
        keys = [{"key": name, "owner": self.owners.get(name),
                 "status": worst(tuple(statuses.values())), "controls": statuses}
                for name, statuses in sorted(per_key.items())]
        counted = Counter(c.status for c in self.controls)
        key_counts = Counter(k["status"] for k in keys)
        return {
            "generated_at": rfc3339(self.generated_at),
            "status": worst(tuple(c.status for c in self.controls)),
            "summary": {"controls": {s: counted.get(s, 0) for s in STATUSES},
                        "keys": {s: key_counts.get(s, 0) for s in STATUSES}},
            "controls": [c.to_json() for c in self.controls],
            "keys": keys,
        }


# -- evidence -------------------------------------------------------------------------------


def audit_controls(core: Core, now: float) -> tuple[Control, ...]:
    """The audit-related controls (accountability of key use).

    One place for everything the report says about the audit log. Judged here:
    the writer runs, every sink is healthy (a failing ``required`` sink fails
    requests; a failing ``best-effort`` sink loses records), and the hash chain
    with its signed checkpoints verifies (a full check reads every record, so a
    verification younger than ``report_evidence_max_age``, five minutes by default,
    is reused and its time is shown; a seal discards it).
    """
    running = core.audit.running
    sinks = core.audit.sinks.status()
    failing = [s for s in sinks if not s["healthy"]]
    verified_at, chain = core.audit_trail.recent_verification(
        core.settings.report_evidence_max_age)
    bad = chain.first_bad
    evidence = (
        "every request is audited (ok, denied, error) before its answer leaves; a failed "
        "audit write fails the request (audit_unavailable)",
        f"audit log writer running: {'yes' if running else 'no'}; records queued: "
        f"{core.audit.backlog}",
        "sinks: " + (", ".join(f"{s['name']} ({s['type']}, {s['policy']}, "
                               f"{'healthy' if s['healthy'] else 'FAILING'}, "
                               f"{s['failures']} failures, {s['dropped']} dropped)"
                               for s in sinks) or "the database only"),
        f"hash chain verified at {rfc3339(verified_at)}: {chain.records} records, "
        + ("intact" if chain.ok else f"BROKEN at record {bad.id if bad else '?'}")
        + f"; {chain.checkpoints} signed checkpoints"
        + (f", the newest good one at record {chain.last_checkpoint}; "
           f"{chain.unsigned_tail} records after it (chain only)"
           if chain.last_checkpoint is not None else
           f", none covering it yet; all {chain.records} records are protected by the "
           "chain only"),
    )
    required_failing = [s["name"] for s in failing if s["policy"] == "required"]
    if not chain.ok:
        status, summary = FAIL, (f"the audit chain is broken at record {bad.id if bad else '?'}"
                                 f": {bad.reason if bad else 'unknown'}")
    elif not running:
        status, summary = FAIL, "the audit log is not running: no operation can be recorded"
    elif required_failing:
        status, summary = FAIL, (f"required audit sink(s) {', '.join(required_failing)} are "
                                 "failing: operations fail with audit_unavailable")
    elif failing:
        status, summary = ATTENTION, ("best-effort audit sink(s) "
                                      f"{', '.join(s['name'] for s in failing)} are failing: "
                                      "their copies of the log have gaps")
    elif chain.last_checkpoint is None and chain.records:
        status, summary = ATTENTION, ("the audit chain is intact but no signed checkpoint "
                                      "covers it yet (one is made at the interval and on seal)")
    else:
        status, summary = PASS, ("the audit log runs, fails closed, its sinks are healthy and "
                                 "its hash chain and signed checkpoints verify")
    return (Control("nist-accountability", NIST, "accountability and audit",
                    "Key use and state changes are recorded and attributable", status, summary,
                    evidence),)


def _undestroyed(core: Core) -> dict[str, list[int]]:
    """Versions marked destroyed whose material is still stored (must never happen)."""
    with core.engine.connect() as conn:
        return reports_repo.destroyed_with_material(conn)


def gather(core: Core) -> Evidence:
    """Everything the controls are judged on, read once."""
    inventory = build_inventory(core)
    status = core.seal_status()
    drills = core.custodians()
    custodians = drills.custodians
    names = tuple(c.name for c in custodians)
    dual = core.dual_control.settings()
    settings = core.settings
    return Evidence(
        now=inventory.generated_at, inventory=inventory,
        threshold=int(status.threshold or 0), shares=int(status.shares or 0),
        custodians=names,
        # Unnamed shares are listed as share-1..share-N: nobody is accountable for them.
        custodians_named=names != default_custodian_names(len(names)),
        dual_approvals=dual.approvals, dual_operations=frozenset(dual.operations),
        tls=settings.tls_cert is not None, listen_host=settings.host,
        storage=core.engine.dialect.name, undestroyed=_undestroyed(core),
        custodians_verified=drills.quorum.verified, custodian_margin=drills.quorum.margin,
        custodian_warning=drills.quorum.warning,
        drill_window_days=drills.quorum.drill_window_days,
        custodians_unacknowledged=drills.quorum.unacknowledged,
        shares_sealed=sum(1 for c in custodians if c.delivery == "encrypted"))


def _key_results(ev: Evidence, check: KeyCheck) -> tuple[KeyResult, ...]:
    return tuple(KeyResult(e.key.name, *check(e, ev)) for e in ev.inventory.entries)


def _control(ev: Evidence, spec: ControlSpec) -> Control:
    """A control judged on its own check and, if it is about keys, on every key."""
    own = spec.judge(ev)
    results = _key_results(ev, spec.per_key) if spec.per_key is not None else ()
    status = worst((own[0], *(r.status for r in results)))
    summary = own[1]
    if RANK[status] > RANK[own[0]]:
        bad = [r.key for r in results if r.status == status]
        summary = f"{summary}; {status} for {len(bad)} key(s): {', '.join(bad[:10])}" + (
            " ..." if len(bad) > 10 else "")
    return Control(spec.id, spec.framework, spec.requirement, spec.title, status, summary,
                   spec.evidence(ev), results)



def evaluate(ev: Evidence, audit: tuple[Control, ...] = ()) -> ComplianceReport:
    """Judge every control of the catalogue (then the audit controls) on ``ev``."""
    return ComplianceReport(ev.now, (*(_control(ev, spec) for spec in CATALOGUE), *audit),
                            {e.key.name: e.key.owner for e in ev.inventory.entries})


def build_compliance(core: Core) -> ComplianceReport:
    core.barrier()
    evidence = gather(core)
    return evaluate(evidence, audit_controls(core, evidence.now))
