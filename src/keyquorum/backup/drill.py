"""The recovery drill: restore a backup into scratch, open it, check every canary.

People rehearse disaster recovery before the disaster: the drill does all of
it on a throw-away copy and says, step by step with timings, whether the
backup and the shares (or other seals) in hand would bring the service back:

- ``restore``: the backup matches the pinned seal fingerprint (if automatic
  seals are used, a pin is required), authenticates and rebuilds a store
  (``restore.py``); a backup made by another keyquorum fails here;
- ``unseal``: a keyquorum core on the scratch store opens with what was given
  (shares go through the service's own unseal, one by one, as at a real start);
- ``canaries``: every canary made at backup time answers as expected;
- ``audit``: the restored audit chain verifies and ends with the restore record.

The scratch directory is removed afterwards, pass or fail. A step that fails
stops the drill; the steps after it are not run.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keyquorum.backup.canaries import CanaryResult, check_canaries
from keyquorum.backup.restore import RestoreResult, restore
from keyquorum.config import Settings
from keyquorum.errors import KeyquorumError
from keyquorum.seal.seal_set import Unlock, open_root_key
from keyquorum.service.core import Core
from keyquorum.service.seals import seal_entries


@dataclass(frozen=True)
class DrillStep:
    name: str
    ok: bool
    seconds: float
    detail: str


@dataclass
class DrillReport:
    backup: str
    steps: list[DrillStep] = field(default_factory=list)
    canaries: list[CanaryResult] = field(default_factory=list)
    backup_id: str | None = None
    seal_fingerprint: str | None = None
    pinned: bool = False

    @property
    def ok(self) -> bool:
        return len(self.steps) == len(STEPS) and all(step.ok for step in self.steps)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "backup": self.backup, "backup_id": self.backup_id,
                "seal_fingerprint": self.seal_fingerprint, "pinned": self.pinned,
                "steps": [vars(step) for step in self.steps],
                "canaries": [vars(result) for result in self.canaries]}


STEPS = ("restore", "unseal", "canaries", "audit")


class _StepFailed(Exception):
    pass


def _unseal(core: Core, unlock: Unlock) -> str:
    if unlock.shares:
        for share in unlock.shares:
            core.unseal(share)
            if not core.sealed:
                return "opened with shares"
        config = core.seal_config
        needed = config.threshold if config else "?"
        raise _StepFailed(f"{len(unlock.shares)} share(s) given; {needed} are needed")
    with core.engine.connect() as conn:
        entries = seal_entries(conn)
    core.open_with_root_key(open_root_key(entries, unlock))
    return "opened through the seal set"


def _check(core: Core, canaries: list[dict[str, Any]], report: DrillReport) -> str:
    report.canaries = check_canaries(core, canaries)
    failed = [r for r in report.canaries if not r.ok]
    if failed:
        raise _StepFailed(f"{len(failed)} of {len(canaries)} canaries failed")
    return f"{len(canaries)} canaries answered" if canaries else \
        "no canaries (the backup had no usable enabled keys)"


def _audit(core: Core) -> str:
    verified = core.audit_trail.verify()
    if not verified.ok:
        fault = verified.first_bad.to_json() if verified.first_bad else {}
        raise _StepFailed(f"the restored audit chain does not verify: {fault}")
    last, _ = core.audit.query(limit=1)
    if not last or last[0].operation != "sys:restore":
        raise _StepFailed("the restored audit chain does not end with the restore record")
    return f"{verified.records} records verify; the last is sys:restore"


def run_drill(backup: Path, unlock: Unlock, *, scratch_parent: Path | None = None,
              expect: tuple[str, ...] = ()) -> DrillReport:
    """Run every step on a scratch copy; the report says what passed and how long it took.

    ``expect``: the seal fingerprints the backup must belong to (``backup.pin``).
    """
    report = DrillReport(backup=str(backup), pinned=bool(expect))
    scratch = Path(tempfile.mkdtemp(prefix="keyquorum-drill-", dir=scratch_parent))
    core: Core | None = None

    def step(name: str, action: Callable[[], str]) -> None:
        started = time.perf_counter()
        try:
            detail, ok = action(), True
        except _StepFailed as exc:
            detail, ok = str(exc), False
        except KeyquorumError as exc:
            detail, ok = f"{exc.code}: {exc.message}", False
        report.steps.append(DrillStep(name, ok, round(time.perf_counter() - started, 4),
                                      detail))
        if not ok:
            raise _StepFailed(detail)

    restored: list[RestoreResult] = []

    def do_restore() -> str:
        result = restore(backup, scratch / "data", unlock, expect=expect)
        restored.append(result)
        report.backup_id = result.backup_id
        report.seal_fingerprint = result.seal_fingerprint
        rows = sum(result.tables.values())
        return f"{rows} rows in {len(result.tables)} tables, made {result.created_at}"

    def do_unseal() -> str:
        nonlocal core
        from keyquorum.runtime.wiring import build_core  # the server's wiring, on the scratch

        core = build_core(Settings(data_dir=scratch / "data"))
        return _unseal(core, unlock)

    try:
        step("restore", do_restore)
        step("unseal", do_unseal)
        assert core is not None
        opened: Core = core
        step("canaries", lambda: _check(opened, restored[0].canaries, report))
        step("audit", lambda: _audit(opened))
    except _StepFailed:
        pass
    finally:
        if core is not None:
            core.seal()
            core.audit.stop()
            core.engine.dispose()
        shutil.rmtree(scratch, ignore_errors=True)
    return report
