"""Audit appends per second: SQLite (one node), and one, two, three nodes on PostgreSQL.

Each node is a process of its own (its own engine, ``AuditLog`` writer thread and
``--threads`` caller threads calling ``write_sync`` in a loop), as separate hosts
would be, so the nodes do not share one GIL. On PostgreSQL every node appends to
its own chain (``audit_head`` keyed by node); before the per-node chains all of
them took one head row. The PostgreSQL server is the tests' (``tests/pg_support.py``:
a fresh cluster under /tmp, ``fsync=off``), so the figures show CPU and lock
contention on this machine, not a disk.

    python bench/audit_nodes.py                    # SQLite, then 1, 2, 3 PostgreSQL nodes
    python bench/audit_nodes.py --only sqlite --seconds 5
    python bench/audit_nodes.py --only postgresql --nodes 1 2
    python bench/audit_nodes.py --only postgresql --durable   # fsync and synchronous_commit on

Output: a table, and ``bench/results/audit_nodes.json`` (gitignored) with every
row, the settings and the machine's load.
"""

from __future__ import annotations

import argparse
import inspect
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "tests"))  # pg_support: the tests' PostgreSQL


def _record(n: int) -> Any:
    from keyquorum.audit.records import AuditRecord
    return AuditRecord(time=time.time(), request_id=f"bench-{n}", identity="accessor-bench",
                       operation="encrypt", key="bench/aes", key_version=1, outcome="ok",
                       error_code=None, client="127.0.0.1")


def _open_log(url: str, node: str | None) -> Any:
    from keyquorum.audit.log import AuditLog
    from keyquorum.storage.engine import migrate, open_engine
    engine = open_engine(url)
    migrate(engine)
    # Older trees (before the per-node chains) have no ``node`` argument.
    if node is not None and "node" in inspect.signature(AuditLog).parameters:
        return AuditLog(engine, node=node)
    return AuditLog(engine)


def _node_main(url: str, node: str | None, threads: int, seconds: float,
               start_at: float, out: Any) -> None:
    """One node: ``threads`` callers appending for ``seconds``; sends its count."""
    audit = _open_log(url, node)
    audit.start()
    counts = [0] * threads
    stop_at = start_at + seconds

    def caller(index: int) -> None:
        n = 0
        while time.time() < start_at:
            time.sleep(0.001)
        while time.time() < stop_at:
            audit.write_sync(_record(n))
            n += 1
        counts[index] = n

    workers = [threading.Thread(target=caller, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    audit.stop()
    out.send(sum(counts))


def run(url: str, nodes: int, threads: int, seconds: float, node_names: bool) -> float:
    """Appends per second across ``nodes`` node processes on ``url``."""
    _open_log(url, "bench-0" if node_names else None).stop()  # migrate once, first
    context = multiprocessing.get_context("spawn")
    start_at = time.time() + 3.0  # every process started and connected by then
    pipes, processes = [], []
    for index in range(nodes):
        ours, theirs = context.Pipe()
        process = context.Process(target=_node_main, args=(
            url, f"bench-{index}" if node_names else None, threads, seconds, start_at,
            theirs))
        process.start()
        pipes.append(ours)
        processes.append(process)
    total = sum(int(pipe.recv()) for pipe in pipes)
    for process in processes:
        process.join()
    return total / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--threads", type=int, default=16, help="callers per node")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--durable", action="store_true",
                        help="PostgreSQL with fsync and synchronous_commit on: each group's "
                             "commit waits for a WAL flush, as on a real database")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    if args.only in (None, "sqlite"):
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory(prefix="kq-bench-audit-") as scratch:
                url = f"sqlite:///{Path(scratch) / 'keyquorum.db'}"
                rate = run(url, 1, args.threads, args.seconds, node_names=False)
            rows.append({"store": "sqlite", "nodes": 1, "appends_per_s": round(rate)})
            print(f"sqlite      1 node   {rate:9.0f} appends/s", flush=True)
    if args.only in (None, "postgresql"):
        from pg_support import PostgresCluster, find_bindir
        bindir = find_bindir()
        if bindir is None:
            raise SystemExit("no PostgreSQL 15+ server binaries here")
        cluster = PostgresCluster(bindir, durable=args.durable)
        cluster.start()
        os.environ["KEYQUORUM_DATABASE_PASSWORD"] = cluster.password
        try:
            for _ in range(args.repeat):
                for count in args.nodes:
                    database = cluster.create_database()
                    url = str(cluster.settings_for(database)["database_url"])
                    rate = run(url, count, args.threads, args.seconds, node_names=True)
                    cluster.drop_database(database)
                    rows.append({"store": "postgresql", "nodes": count,
                                 "durable": args.durable, "appends_per_s": round(rate)})
                    print(f"postgresql  {count} node{'s' if count > 1 else ' '}  "
                          f"{rate:9.0f} appends/s", flush=True)
        finally:
            cluster.stop()
            cluster.remove()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "audit_nodes.json").write_text(json.dumps({
        "rows": rows, "threads_per_node": args.threads, "seconds": args.seconds,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_before": os.getloadavg()}}, indent=2) + "\n")


if __name__ == "__main__":
    main()
