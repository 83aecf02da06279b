"""Backup, restore and recovery drill: how long they take on a store of a given size.

Builds a store in-process (the cost of a backup is SQLite, JSON lines and
AES-GCM, not HTTP): ``--keys`` managed keys of every family, each rotated
``--rotations`` times, and ``--audit`` audit records linked into the hash chain
(the audit log is what makes a real store large). Then, each ``--repeat`` times:

- ``backup``: the server's own backup writer (canaries, consistent snapshot,
  sealed KQST segments) into a file, as ``GET /v1/sys/backup`` streams it;
- ``restore``: ``keyquorum operator restore``'s function, shares given, into a
  fresh directory (authenticate all, migrate, insert, audit record);
- ``drill``: ``keyquorum operator drill``'s function (restore, unseal, every
  canary, audit chain verify), with its own step timings.

References in the same run: SQLite's online backup API copying the live store
(the floor for any consistent copy), and that copy encrypted by ``openssl enc
-aes-256-ctr`` (what a naive "copy then encrypt" backup costs, with no
integrity, no seal set and no canaries); for restore, ``openssl`` decrypting it
back. Ratios are keyquorum's time over the reference's. Prints a table and
writes ``bench/results/backup.json``.

    python bench/backup.py                      # 200 keys, 100k audit records, 3 runs
    python bench/backup.py --audit 20000 --repeat 1    # a quick look
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from keyquorum.audit.chain import AuditChain
from keyquorum.audit.records import AuditRecord, to_row
from keyquorum.backup.drill import run_drill
from keyquorum.backup.restore import restore
from keyquorum.backup.writer import start_backup
from keyquorum.config import Settings
from keyquorum.runtime.wiring import build_core
from keyquorum.seal.seal_set import Unlock
from keyquorum.service.context import RequestContext
from keyquorum.service.core import Core
from keyquorum.service.lifecycle import KeyLifecycle, NewKey

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SPECS = ("aes-256-gcm", "chacha20-poly1305", "hmac-sha256", "ed25519", "ecdsa-p256",
         "ml-kem-768", "ml-dsa-44")
MB = 1_000_000
_BENCH_KEY_HEX = "00" * 32  # openssl's key for the reference only: a fixed, obvious test value


def build_store(data_dir: Path, keys: int, rotations: int, audit: int) -> tuple[Core, list[str]]:
    core = build_core(Settings(data_dir=data_dir))
    shares = core.init(3, 2)["shares"]
    for share in shares[:2]:
        core.unseal(share)
    lifecycle = KeyLifecycle(core)
    ctx = RequestContext(request_id="bench", client=None)
    ctx.identity = core.tokens.create_root(created_by="bench")[1]
    for n in range(keys):
        name = f"bench/{n:04d}"
        lifecycle.create(ctx, NewKey(name, SPECS[n % len(SPECS)]))
        for _ in range(rotations):
            lifecycle.rotate(ctx, name)
    chain = AuditChain(core.engine)
    now = time.time()
    for start in range(0, audit, 5000):
        rows = [to_row(AuditRecord(
            time=now, request_id=f"bench-{i}", identity="bench-accessor", operation="encrypt",
            key=f"bench/{i % max(keys, 1):04d}", key_version=1, outcome="ok", error_code=None,
            client="127.0.0.1", detail={"bytes": "1024"}))
            for i in range(start, min(start + 5000, audit))]
        with core.engine.begin() as conn:
            chain.append(conn, rows)
    return core, shares


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def store_bytes(data_dir: Path) -> int:
    return sum(p.stat().st_size for p in data_dir.iterdir() if p.is_file())


def sqlite_copy(source: Path, target: Path) -> None:
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def openssl(mode: str, source: Path, target: Path) -> None:
    subprocess.run(["openssl", "enc", "-aes-256-ctr", mode, "-K", _BENCH_KEY_HEX,
                    "-iv", "00" * 16, "-in", str(source), "-out", str(target)], check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=200)
    parser.add_argument("--rotations", type=int, default=2)
    parser.add_argument("--audit", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="kq-bench-backup-"))
    try:
        live = work / "live"
        live.mkdir()
        print(f"building a store: {args.keys} keys, {args.rotations} rotations each, "
              f"{args.audit} audit records ...", file=sys.stderr)
        core, shares = build_store(live, args.keys, args.rotations, args.audit)
        database = next(live.glob("*.db"))
        with sqlite3.connect(database) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = store_bytes(live)
        unlock = Unlock(shares=tuple(shares[:2]))
        runs: dict[str, list[float]] = {name: [] for name in (
            "backup", "restore", "drill", "ref: sqlite backup API",
            "ref: sqlite backup + openssl enc", "ref: openssl dec")}
        drill_steps: list[dict[str, float]] = []
        backup_size = 0
        for n in range(args.repeat):
            out = work / f"b{n}.kqbk"

            def write(path: Path = out) -> int:
                made = start_backup(core)
                with path.open("wb") as stream:
                    for chunk in made.chunks:
                        stream.write(chunk)
                return made.canaries

            seconds, canaries = timed(write)
            runs["backup"].append(seconds)
            backup_size = out.stat().st_size
            seconds, _ = timed(lambda path=out, i=n: restore(path, work / f"r{i}", unlock))
            runs["restore"].append(seconds)
            seconds, report = timed(lambda path=out: run_drill(path, unlock, scratch_parent=work))
            if not report.ok:
                raise SystemExit(f"the drill failed: {report.to_json()}")
            runs["drill"].append(seconds)
            drill_steps.append({s.name: s.seconds for s in report.steps})

            copy, sealed, opened = work / f"c{n}.db", work / f"c{n}.enc", work / f"c{n}.dec"
            runs["ref: sqlite backup API"].append(timed(lambda a=copy: sqlite_copy(database, a))[0])
            copy.unlink()
            runs["ref: sqlite backup + openssl enc"].append(timed(
                lambda a=copy, b=sealed: (sqlite_copy(database, a), openssl("-e", a, b)))[0])
            runs["ref: openssl dec"].append(timed(lambda a=sealed, b=opened:
                                                  openssl("-d", a, b))[0])
            for path in (out, copy, sealed, opened):
                path.unlink()
            shutil.rmtree(work / f"r{n}")
        core.seal()
        core.engine.dispose()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    best = {name: min(times) for name, times in runs.items()}
    reference = {"backup": "ref: sqlite backup + openssl enc", "restore": "ref: openssl dec",
                 "drill": "ref: openssl dec"}
    rows = []
    for name, times in runs.items():
        ref = reference.get(name)
        rows.append({"operation": name, "best_s": round(best[name], 3),
                     "median_s": round(statistics.median(times), 3),
                     "mb_per_s": round(size / MB / best[name], 1),
                     "ratio_to_reference": round(best[name] / best[ref], 1) if ref else None,
                     "reference": ref})
    print(f"\nstore {size / MB:.1f} MB ({args.keys} keys, {args.audit} audit records); "
          f"backup file {backup_size / MB:.1f} MB with {canaries} canaries; "
          f"{args.repeat} run(s), best of each\n")
    print(f"{'operation':36} {'best s':>8} {'median s':>9} {'MB/s':>8} {'x ref':>7}")
    for row in rows:
        ratio = f"{row['ratio_to_reference']:.1f}" if row["ratio_to_reference"] else ""
        print(f"{row['operation']:36} {row['best_s']:8.3f} {row['median_s']:9.3f} "
              f"{row['mb_per_s']:8.1f} {ratio:>7}")
    steps = {name: round(min(s[name] for s in drill_steps), 3) for name in drill_steps[0]}
    print("drill steps (best, s): " + ", ".join(f"{k} {v}" for k, v in steps.items()))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "backup.json").write_text(json.dumps({
        "store_bytes": size, "backup_bytes": backup_size, "canaries": canaries,
        "keys": args.keys, "rotations": args.rotations, "audit_records": args.audit,
        "repeat": args.repeat, "rows": rows, "drill_steps_best_s": steps,
        "runs": runs, "machine": {"python": platform.python_version(),
                                  "platform": platform.platform()}}, indent=2) + "\n")
    print(f"\nwrote {RESULTS / 'backup.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
