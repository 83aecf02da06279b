"""keyquorum as a cluster: throughput by layout, and how fast a change reaches other nodes.

In one run, on this machine, four layouts each get a fresh store:

  sqlite-1    one node on SQLite (the embedded default), wrk straight at it
  pg-1        one node on PostgreSQL, wrk straight at it
  pg-2-lb     two nodes on one PostgreSQL behind HAProxy
  pg-3-lb     three nodes on one PostgreSQL behind HAProxy

The nodes and the balancer are the tests' own (tests/process_cluster.py: server
processes, the second and third unsealed by the enrolled-node hand-off;
tests/haproxy_support.py: health checks on /v1/sys/health). PostgreSQL is a fresh
cluster under /tmp started like the tests' (tests/pg_support.py), but durable:
``fsync=on``, ``synchronous_commit=on``, as SQLite's ``synchronous=FULL`` is.

Per layout, with ``wrk`` (bench/ops.py's Lua scripts): encrypt 1 KiB, create an
aes-256-gcm key (a new name per request), rotate (round robin over fresh keys);
requests/s, p50/p99, errors, and the CPU (ms per request) of the keyquorum nodes,
of PostgreSQL and of HAProxy, from /proc.

Then, on three nodes, state propagation: a token revoked on node 1, polled on
node 2 (every 5 ms) until it is refused; a key rotated on node 1, polled on node 2
until its encrypts use the new version. Median and max from the revoke/rotate call
to the first answer that shows it on the other node.

    python bench/cluster.py               # 5 s per wrk run, -t2 -c32
    python bench/cluster.py --quick       # 2 s per run, fewer propagation samples
    python bench/cluster.py --only pg-3-lb --duration 10

Audit appends per second by node count: bench/audit_nodes.py. Output: a table, and
``bench/results/cluster.json`` (gitignored).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from ops import LIFECYCLE_LUA, LUA, ROTATE_KEYS, _process_tree_cpu, ensure_wrk

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "tests"))  # the tests' cluster harness, PostgreSQL, HAProxy

from haproxy_support import HAProxy  # noqa: E402
from kq_support import ServerProcess, free_port  # noqa: E402
from pg_support import PostgresCluster, find_bindir  # noqa: E402
from process_cluster import ProcessCluster  # noqa: E402

KEY = "bench/aes"
LAYOUTS = ("sqlite-1", "pg-1", "pg-2-lb", "pg-3-lb")


@dataclass
class Target:
    """Where wrk sends its requests, and the processes whose CPU it costs."""

    layout: str
    addr: str
    token: str
    nodes: list[int]  # pids of keyquorum server processes
    postgres: int | None = None  # pid of the postmaster
    balancer: int | None = None  # pid of haproxy


@dataclass
class Row:
    layout: str
    scenario: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    nodes_cpu_ms: float | None = None
    postgres_cpu_ms: float | None = None
    haproxy_cpu_ms: float | None = None


@dataclass
class Propagation:
    change: str
    samples_ms: list[float] = field(default_factory=list)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def max_ms(self) -> float:
        return max(self.samples_ms)


# -- layouts ---------------------------------------------------------------------------


@contextmanager
def layout(name: str, postgres: PostgresCluster | None, work: Path) -> Iterator[Target]:
    """The layout ``name`` started on a fresh store, stopped when left."""
    base = work / name
    base.mkdir(parents=True)
    with ExitStack() as stack:
        if name == "sqlite-1":
            server = ServerProcess(data_dir=base / "data", port=free_port(), test_clock=False)
            stack.callback(server.stop)
            server.start()
            server.init()
            server.unseal()
            yield Target(name, server.addr, server.root_token, [_pid(server)])
            return
        assert postgres is not None
        size = int(name.split("-")[1])
        cluster = stack.enter_context(ProcessCluster(postgres, base, size,
                                                     link_interval=1.0))
        postmaster = int((postgres.data / "postmaster.pid").read_text().split()[0])
        pids = [_pid(node) for node in cluster.nodes]
        if size == 1:
            yield Target(name, cluster.nodes[0].addr, cluster.root_token, pids, postmaster)
            return
        balancer = stack.enter_context(HAProxy(base / "haproxy", [
            (node.name, node.port) for node in cluster.nodes], check_interval=1.0))
        assert balancer.process is not None
        yield Target(name, balancer.addr, cluster.root_token, pids, postmaster,
                     balancer.process.pid)


def _pid(server: ServerProcess) -> int:
    assert server.process is not None
    return server.process.pid


# -- wrk ---------------------------------------------------------------------------------


def _cpu(pids: list[int]) -> float | None:
    used = [_process_tree_cpu(pid) for pid in pids]
    return None if any(u is None for u in used) else sum(u for u in used if u is not None)


def run_wrk(wrk: str, target: Target, path: str, script_text: str, args: argparse.Namespace,
            work: Path, label: str) -> Row:
    script = work / f"{target.layout}-{label}.lua"
    script.write_text(script_text)
    groups = {"nodes": target.nodes, "postgres": [target.postgres] if target.postgres else [],
              "haproxy": [target.balancer] if target.balancer else []}
    before = {group: _cpu(pids) if pids else None for group, pids in groups.items()}
    done = subprocess.run([wrk, f"-t{args.threads}", f"-c{args.connections}",
                           f"-d{max(1, round(args.duration))}s", "--latency", "--timeout", "10s",
                           "-s", str(script), f"{target.addr}{path}"],
                          capture_output=True, text=True, check=False)
    after = {group: _cpu(pids) if pids else None for group, pids in groups.items()}
    match = re.search(r"^WRKJSON (\{.*\})$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or match is None:
        raise SystemExit(f"error: wrk failed ({done.returncode}): {done.stderr.strip()}\n"
                         f"{done.stdout}")
    stats = json.loads(match.group(1))
    seconds = stats["duration_us"] / 1e6
    requests = max(1, stats["requests"])
    errors = sum(stats[k] for k in ("errors_connect", "errors_read", "errors_write",
                                    "errors_status", "errors_timeout"))

    def per_request(group: str) -> float | None:
        start, end = before[group], after[group]
        return None if start is None or end is None else (end - start) * 1000 / requests

    return Row(target.layout, label, stats["requests"] / seconds, stats["p50_us"] / 1000,
               stats["p99_us"] / 1000, errors, per_request("nodes"),
               per_request("postgres"), per_request("haproxy"))


def scenarios(wrk: str, target: Target, args: argparse.Namespace, work: Path) -> list[Row]:
    with httpx.Client(base_url=target.addr, timeout=60,
                      headers={"Authorization": f"Bearer {target.token}"}) as http:
        http.post("/v1/keys", json={"name": KEY, "spec": "aes-256-gcm"}).raise_for_status()
        body = json.dumps({"plaintext": base64.b64encode(os.urandom(1024)).decode()}).encode()
        http.post(f"/v1/keys/{KEY}/encrypt", content=body,
                  headers={"Content-Type": "application/json"}).raise_for_status()
        for number in range(ROTATE_KEYS):
            http.post("/v1/keys", json={"name": f"bench/r/{number}", "spec": "aes-256-gcm"}
                      ).raise_for_status()
    body_file = work / f"{target.layout}-encrypt.json"
    body_file.write_bytes(body)
    rows = []
    for label, path, script in [
            ("encrypt 1 KiB", f"/v1/keys/{KEY}/encrypt",
             LUA % {"token": target.token, "body": body_file}),
            ("create key", "/v1/keys", LIFECYCLE_LUA % {
                "token": target.token, "kind": "create", "prefix": "bench/c",
                "keys": ROTATE_KEYS}),
            ("rotate key", "/v1/keys", LIFECYCLE_LUA % {
                "token": target.token, "kind": "rotate", "prefix": "bench/r",
                "keys": ROTATE_KEYS})]:
        print(f"  {target.layout}: {label}", file=sys.stderr)
        rows.append(run_wrk(wrk, target, path, script, args, work, label))
    return rows


# -- propagation ---------------------------------------------------------------------------


def _until(condition: Any, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("error: a change did not reach the other node within 10 s")
        time.sleep(0.005)


def propagation(postgres: PostgresCluster, work: Path, samples: int) -> list[Propagation]:
    """Token revocations and key rotations on node 1, seen on node 2 (three nodes)."""
    revoked, rotated = Propagation("token revoked"), Propagation("key rotated")
    with ProcessCluster(postgres, work / "propagation", 3, link_interval=1.0) as cluster, \
            cluster.client(0) as a, cluster.client(1) as b:
        a.put("/v1/policies/bench-users", json={"rules": [
            {"keys": "bench/**", "operations": ["encrypt", "read"]}]}).raise_for_status()
        a.post("/v1/keys", json={"name": KEY, "spec": "aes-256-gcm"}).raise_for_status()
        encrypt = {"plaintext": "aGk="}
        for _ in range(samples):
            made = a.post("/v1/auth/tokens", json={"policies": ["bench-users"]}).json()
            with httpx.Client(base_url=b.base_url, timeout=10, headers={
                    "Authorization": f"Bearer {made['token']}"}) as user:
                user.post(f"/v1/keys/{KEY}/encrypt", json=encrypt).raise_for_status()
                started = time.monotonic()
                a.delete(f"/v1/auth/tokens/{made['accessor']}").raise_for_status()
                _until(lambda user=user: user.post(f"/v1/keys/{KEY}/encrypt",
                                                   json=encrypt).status_code == 401)
                revoked.samples_ms.append((time.monotonic() - started) * 1000)
        for _ in range(samples):
            version = b.post(f"/v1/keys/{KEY}/encrypt", json=encrypt).json()["key_version"]
            started = time.monotonic()
            a.post(f"/v1/keys/{KEY}/rotate", json={}).raise_for_status()
            _until(lambda version=version: b.post(f"/v1/keys/{KEY}/encrypt", json=encrypt
                                                  ).json()["key_version"] > version)
            rotated.samples_ms.append((time.monotonic() - started) * 1000)
    return [revoked, rotated]


# -- output ----------------------------------------------------------------------------------


def print_table(rows: list[Row], propagations: list[Propagation]) -> None:
    def number(value: float | None, digits: int = 0) -> str:
        return "-" if value is None else f"{value:,.{digits}f}"

    header = (f"{'layout':<10} {'scenario':<14} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'errors':>6} {'node cpu':>9} {'pg cpu':>7} {'lb cpu':>7}  (cpu: ms/request)")
    print(header)
    for row in rows:
        print(f"{row.layout:<10} {row.scenario:<14} {number(row.requests_per_s):>8} "
              f"{number(row.p50_ms, 1):>8} {number(row.p99_ms, 1):>8} {row.errors:>6} "
              f"{number(row.nodes_cpu_ms, 2):>9} {number(row.postgres_cpu_ms, 2):>7} "
              f"{number(row.haproxy_cpu_ms, 2):>7}")
    for found in propagations:
        print(f"propagation, {found.change} on node 1 -> seen on node 2: median "
              f"{found.median_ms:.0f} ms, max {found.max_ms:.0f} ms "
              f"({len(found.samples_ms)} samples)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--samples", type=int, default=20, help="propagation samples each")
    parser.add_argument("--only", choices=LAYOUTS, nargs="*", help="these layouts only")
    parser.add_argument("--quick", action="store_true", help="2 s runs, 8 samples")
    parser.add_argument("--output", type=Path, default=RESULTS / "cluster.json")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.samples = min(args.duration, 2.0), min(args.samples, 8)
    wrk = ensure_wrk()
    bindir = find_bindir()
    if bindir is None:
        raise SystemExit("error: no PostgreSQL 15+ binaries (apt-get install postgresql)")
    postgres = PostgresCluster(bindir, durable=True)
    os.environ["KEYQUORUM_DATABASE_PASSWORD"] = postgres.password
    rows: list[Row] = []
    propagations: list[Propagation] = []
    try:
        postgres.start()
        with tempfile.TemporaryDirectory(prefix="kq-bench-cluster-") as tmp:
            work = Path(tmp)
            for name in args.only or LAYOUTS:
                print(f"layout {name}", file=sys.stderr)
                with layout(name, postgres if name != "sqlite-1" else None, work) as target:
                    rows += scenarios(wrk, target, args, work)
            if args.samples:
                print("propagation (three nodes)", file=sys.stderr)
                propagations = propagation(postgres, work, args.samples)
    finally:
        postgres.remove()
    print_table(rows, propagations)
    result = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "load": os.getloadavg()},
        "settings": {"duration_s": args.duration, "connections": args.connections,
                     "threads": args.threads, "postgresql": postgres.options},
        "rows": [asdict(row) for row in rows],
        "propagation": [{"change": p.change, "median_ms": p.median_ms, "max_ms": p.max_ms,
                         "samples_ms": p.samples_ms} for p in propagations],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"results: {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
