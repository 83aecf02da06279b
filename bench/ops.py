"""Crypto-operation throughput of a real keyquorum server, next to its ceilings.

Starts its own server (``python -m keyquorum server``) on loopback, initializes,
unseals, creates an aes-256-gcm key and drives it with ``wrk`` (keep-alive,
many connections, a Lua script POSTing JSON with the bearer token):

  (a) single encrypt, 1 KiB          (b) single decrypt, 1 KiB
  (c) batched encrypt, 100 x 1 KiB   (d) batched decrypt, 100 x 1 KiB
  (e) create an aes-256-gcm key      (f) rotate a key (round robin over 256 keys)

(e) and (f) run with 8 connections (the OpenBao reference figure: raft storage,
file audit, about 630 creates/s with 8 clients on the 2-core VM) and with
``--connections``. Every create names a new key (``bench/c<run>/<thread>-<n>``).

Next to them, in the same run: the same operations called in-process on the
service objects (no HTTP, no audit: the ceiling of the Python service layer),
and ``openssl speed -evp aes-256-gcm -bytes 1024`` (the single-core AES-GCM
ceiling). Prints a table and writes ``bench/results/ops.json``.

    python bench/ops.py                  # 10 s per scenario, wrk -t2 -c64
    python bench/ops.py --quick          # 3 s per scenario, shorter ceilings
    python bench/ops.py --profile        # also cProfile the in-process single encrypt
    python bench/ops.py --profile-server # also run the server under pyinstrument
    python bench/ops.py --only lifecycle --http-only   # create and rotate, nothing else

Audit is on for every HTTP request (it always is: there is no switch to turn it off).
The column ``cpu ms/req`` is the server's CPU time (every thread, every worker process,
read from /proc) over the run, divided by the requests wrk completed.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import cProfile
import io
import json
import os
import platform
import pstats
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
KEY = "bench/aes"
ITEM_BYTES = 1024
BENCH_CONTEXT = {"tenant": "acme-corp", "purpose": "bench"}
BATCH = 100

# wrk's done() reports its own summary as one JSON line.
WRK_DONE = """
done = function(summary, latency, requests)
  io.write(string.format(
    'WRKJSON {"requests":%%d,"duration_us":%%d,"bytes":%%d,"errors_connect":%%d,' ..
    '"errors_read":%%d,"errors_write":%%d,"errors_status":%%d,"errors_timeout":%%d,' ..
    '"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"max_us":%%d,"mean_us":%%.1f}\\n',
    summary.requests, summary.duration, summary.bytes, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
"""

# wrk reads the body from a file.
LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
local f = assert(io.open("%(body)s", "rb"))
wrk.body = f:read("*a")
f:close()
""" + WRK_DONE

# Create and rotate build each request in Lua: a new key name per create (thread id and a
# counter), a round robin over pre-made keys for rotate. wrk.format replaces wrk.headers
# with the table it is given and sends Content-Length only with a body, so a rotate is a
# bodiless POST (no Content-Type needed).
LIFECYCLE_LUA = """
wrk.method = "POST"
local kind = "%(kind)s"
local prefix = "%(prefix)s"
local keys = %(keys)d
local json_headers = {["Authorization"] = "Bearer %(token)s",
                      ["Content-Type"] = "application/json"}
local bare_headers = {["Authorization"] = "Bearer %(token)s"}
local counter = 0
local threads = 0
tid = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function request()
  counter = counter + 1
  if kind == "create" then
    local body = string.format('{"name":"%%s/%%d-%%d","spec":"aes-256-gcm"}',
                               prefix, tid, counter)
    return wrk.format(nil, "/v1/keys", json_headers, body)
  end
  local path = string.format("/v1/keys/%%s/%%d/rotate", prefix, (tid * 7919 + counter) %% keys)
  return wrk.format(nil, path, bare_headers)
end
""" + WRK_DONE
ROTATE_KEYS = 256
"""Keys each rotate run spreads over (fresh ones per run): a rotate reads and answers every
version of its key, so the count bounds how long the version lists grow during a run."""


@dataclass
class Row:
    scenario: str
    method: str
    items_per_request: int
    requests_per_s: float | None
    items_per_s: float
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: int = 0
    note: str = ""
    server_cpu_ms: float | None = None  # server CPU (all threads, all workers) per request


# -- helpers ------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _process_tree_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) used so far by ``pid`` and its descendants (Linux /proc)."""
    proc = Path("/proc")
    if not (proc / str(pid)).exists():
        return None
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        parents[int(entry.name)] = int(fields[1])
        used[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    total = 0.0
    for candidate, seconds in used.items():
        ancestor = candidate
        while ancestor > 1 and ancestor != pid:
            ancestor = parents.get(ancestor, 0)
        if ancestor == pid:
            total += seconds
    return total


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _keyquorum_source() -> str:
    """Where the server's code comes from (PYTHONPATH can point at another worktree)."""
    found = subprocess.run([sys.executable, "-c",
                            "import keyquorum, os; print(os.path.dirname(keyquorum.__file__))"],
                           capture_output=True, text=True, check=False)
    return found.stdout.strip()


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    script = ROOT / "scripts" / "install-bench-deps"
    print(f"wrk is missing: running {script.relative_to(ROOT)} to install it (apt-get)",
          file=sys.stderr)
    subprocess.run([str(script)], check=False)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("error: wrk is still missing; install the Debian package `wrk`")
    return found


class Server:
    """A keyquorum server of the benchmark's own, on loopback, optionally under pyinstrument."""

    def __init__(self, data_dir: Path, *, profile_to: Path | None = None,
                 workers: int = 1) -> None:
        self.data_dir = data_dir
        self.workers = workers
        self.port = _free_port()
        self.addr = f"http://127.0.0.1:{self.port}"
        self.profile_to = profile_to
        self.process: subprocess.Popen[bytes] | None = None
        self.token = ""
        self.log = data_dir.parent / "server.log"

    def start(self) -> None:
        server_args = ["-m", "keyquorum", "server", "--data-dir", str(self.data_dir),
                       "--listen", f"127.0.0.1:{self.port}", "--workers", str(self.workers)]
        if self.profile_to is not None:
            # Flat: self time per function, hottest first (the tree is thousands of lines).
            command = [sys.executable, "-m", "pyinstrument", "--renderer", "text",
                       "-p", "flat=true", "-p", "show_all=true", "-o", str(self.profile_to),
                       *server_args]
        else:
            command = [sys.executable, *server_args]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"error: the server exited; see {self.log}")
            try:
                httpx.get(f"{self.addr}/v1/sys/health", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise SystemExit("error: the server did not start listening")

    def open(self) -> None:
        answer = httpx.post(f"{self.addr}/v1/sys/init", json={"shares": 3, "threshold": 2},
                            timeout=30)
        answer.raise_for_status()
        body = answer.json()
        self.token = body["root_token"]
        for share in body["shares"][:2]:
            httpx.post(f"{self.addr}/v1/sys/unseal", json={"share": share},
                       timeout=30).raise_for_status()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.addr, timeout=60,
                            headers={"Authorization": f"Bearer {self.token}"})

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        # SIGINT: uvicorn shuts down cleanly, and pyinstrument (if any) writes its report.
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# -- HTTP scenarios under wrk ------------------------------------------------------------------


def run_wrk(wrk: str, server: Server, path: str, body: bytes | None, *, threads: int,
            connections: int, duration: float, work_dir: Path, label: str,
            script_text: str | None = None) -> dict[str, Any]:
    """One wrk run: a fixed ``body`` POSTed to ``path``, or a script of its own."""
    if script_text is None:
        assert body is not None
        body_file = work_dir / f"{label}.json"
        body_file.write_bytes(body)
        script_text = LUA % {"token": server.token, "body": body_file}
    script = work_dir / f"{label}.lua"
    script.write_text(script_text)
    command = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s",
               "--latency", "--timeout", "10s", "-s", str(script), f"{server.addr}{path}"]
    assert server.process is not None
    cpu_before = _process_tree_cpu(server.process.pid)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    cpu_after = _process_tree_cpu(server.process.pid)
    if done.returncode != 0:
        raise SystemExit(f"error: wrk failed ({done.returncode}): {done.stderr.strip()}")
    match = re.search(r"^WRKJSON (\{.*\})$", done.stdout, re.MULTILINE)
    if match is None:
        raise SystemExit(f"error: no summary from wrk:\n{done.stdout}\n{done.stderr}")
    stats: dict[str, Any] = json.loads(match.group(1))
    stats["text"] = done.stdout[:match.start()].rstrip()
    stats["server_cpu_s"] = (cpu_after - cpu_before
                             if cpu_before is not None and cpu_after is not None else None)
    return stats


def _row(name: str, method: str, items: int, stats: dict[str, Any]) -> Row:
    seconds = stats["duration_us"] / 1e6
    rps = stats["requests"] / seconds
    errors = sum(stats[k] for k in ("errors_connect", "errors_read", "errors_write",
                                    "errors_status", "errors_timeout"))
    cpu = stats.get("server_cpu_s")
    return Row(name, method, items, rps, rps * items, stats["p50_us"] / 1000,
               stats["p99_us"] / 1000, errors,
               server_cpu_ms=cpu * 1000 / stats["requests"]
               if cpu is not None and stats["requests"] else None)


def http_scenarios(wrk: str, server: Server, args: argparse.Namespace,
                   work_dir: Path) -> list[Row]:
    plaintext = os.urandom(ITEM_BYTES)
    # --context: every item carries an encryption context, so the audit HMACs it too.
    extra = {"context": BENCH_CONTEXT} if args.context else {}
    single_encrypt = json.dumps({"plaintext": _b64(plaintext), **extra}).encode()
    batch_encrypt = json.dumps(
        {"batch": [{"plaintext": _b64(os.urandom(ITEM_BYTES)), **extra}
                   for _ in range(BATCH)]}).encode()
    with server.client() as http:
        http.post("/v1/keys", json={"name": KEY, "spec": "aes-256-gcm"}).raise_for_status()
        answer = http.post(f"/v1/keys/{KEY}/encrypt", content=single_encrypt,
                           headers={"Content-Type": "application/json"})
        answer.raise_for_status()
        ciphertext = answer.json()["ciphertext"]
        answer = http.post(f"/v1/keys/{KEY}/encrypt", content=batch_encrypt,
                           headers={"Content-Type": "application/json"})
        answer.raise_for_status()
        ciphertexts = [r["ciphertext"] for r in answer.json()["results"]]
        single_decrypt = json.dumps({"ciphertext": ciphertext, **extra}).encode()
        batch_decrypt = json.dumps(
            {"batch": [{"ciphertext": c, **extra} for c in ciphertexts]}).encode()
        # Every body must be answered 200 before it is measured.
        for path, body in ((f"/v1/keys/{KEY}/decrypt", single_decrypt),
                           (f"/v1/keys/{KEY}/decrypt", batch_decrypt)):
            http.post(path, content=body,
                      headers={"Content-Type": "application/json"}).raise_for_status()

    scenarios = [
        ("encrypt 1 KiB", f"/v1/keys/{KEY}/encrypt", single_encrypt, 1),
        ("decrypt 1 KiB", f"/v1/keys/{KEY}/decrypt", single_decrypt, 1),
        (f"batch encrypt {BATCH} x 1 KiB", f"/v1/keys/{KEY}/encrypt", batch_encrypt, BATCH),
        (f"batch decrypt {BATCH} x 1 KiB", f"/v1/keys/{KEY}/decrypt", batch_decrypt, BATCH),
    ]
    rows = []
    for index, (name, path, body, items) in enumerate(scenarios):
        print(f"  wrk: {name} ({args.duration:g}s, -t{args.threads} -c{args.connections})",
              file=sys.stderr)
        stats = run_wrk(wrk, server, path, body, threads=args.threads,
                        connections=args.connections, duration=args.duration,
                        work_dir=work_dir, label=f"s{index}")
        rows.append(_row(name, f"http (wrk -c{args.connections})", items, stats))
    return rows


def lifecycle_scenarios(wrk: str, server: Server, args: argparse.Namespace,
                        work_dir: Path) -> list[Row]:
    """Create (a new aes-256-gcm key per request) and rotate, at 8 and ``--connections``."""
    rows = []
    connection_counts = sorted({8, args.connections})
    for run, connections in enumerate(connection_counts):
        for kind in ("create", "rotate"):
            threads = min(args.threads, connections)
            if kind == "rotate":  # fresh keys, one version each, for every rotate run
                with server.client() as http:
                    for number in range(ROTATE_KEYS):
                        http.post("/v1/keys", json={"name": f"bench/r{run}/{number}",
                                                    "spec": "aes-256-gcm"}).raise_for_status()
                    # bodiless, so no Content-Type: must be answered 200
                    http.post(f"/v1/keys/bench/r{run}/0/rotate").raise_for_status()
            print(f"  wrk: {kind} ({args.duration:g}s, -t{threads} -c{connections})",
                  file=sys.stderr)
            prefix = f"bench/c{run}" if kind == "create" else f"bench/r{run}"
            script = LIFECYCLE_LUA % {"token": server.token, "kind": kind, "prefix": prefix,
                                      "keys": ROTATE_KEYS}
            stats = run_wrk(wrk, server, "/v1/keys", None, threads=threads,
                            connections=connections, duration=args.duration,
                            work_dir=work_dir, label=f"{kind}{run}", script_text=script)
            name = "create aes-256-gcm key" if kind == "create" else "rotate key"
            rows.append(_row(name, f"http (wrk -c{connections})", 1, stats))
    return rows


# -- in-process ceiling ----------------------------------------------------------------------


def new_key(name: str, spec: str) -> Any:
    """What ``lifecycle.create`` takes: a ``NewKey``, or the JSON body before typed requests
    (so the benchmark also drives a worktree of an older commit, through PYTHONPATH)."""
    try:
        from keyquorum.service.lifecycle import NewKey  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return {"name": name, "spec": spec}
    return NewKey(name, spec)


@contextlib.contextmanager
def in_process_service(data_dir: Path) -> Iterator[tuple[Any, Any, Any]]:
    """A core and its services on a data dir of their own: init, unseal, root context."""
    from keyquorum.api.app import build_services
    from keyquorum.config import Settings
    from keyquorum.runtime.wiring import build_core
    from keyquorum.service.context import RequestContext

    data_dir.mkdir(parents=True, exist_ok=True)
    core = build_core(Settings(data_dir=data_dir))
    services = build_services(core)
    answer = core.init(3, 2)
    for share in answer["shares"][:2]:
        core.unseal(share)
    identity = core.tokens.authenticate(answer["root_token"])

    def context() -> RequestContext:
        return RequestContext(request_id="bench", client="127.0.0.1", identity=identity)

    services.lifecycle.create(context(), new_key(KEY, "aes-256-gcm"))
    try:
        yield core, services, context
    finally:
        core.seal()
        core.engine.dispose()


def _timed(function: Callable[[], object], iterations: int) -> float:
    for _ in range(min(200, iterations)):  # warm caches (key handles, counters)
        function()
    start = time.perf_counter()
    for _ in range(iterations):
        function()
    return time.perf_counter() - start


def in_process_scenarios(data_dir: Path, iterations: int,
                         profile: Path | None) -> list[Row]:
    rows = []
    with in_process_service(data_dir) as (_core, services, context):
        ops = services.operations
        plaintext = os.urandom(ITEM_BYTES)
        ciphertext = ops.encrypt(context(), KEY, plaintext, None).ciphertext
        batch_plaintexts = [os.urandom(ITEM_BYTES) for _ in range(BATCH)]
        batch_ciphertexts = [ops.encrypt(context(), KEY, one, None).ciphertext
                             for one in batch_plaintexts]

        def encrypt_one() -> None:
            ops.encrypt(context(), KEY, plaintext, None)

        def decrypt_one() -> None:
            ops.decrypt(context(), ciphertext, None, expected_key=KEY)

        def encrypt_batch() -> None:
            ctx = context()
            for one in batch_plaintexts:
                ops.encrypt(ctx, KEY, one, None)

        def decrypt_batch() -> None:
            ctx = context()
            for one in batch_ciphertexts:
                ops.decrypt(ctx, one, None, expected_key=KEY)

        batches = max(1, iterations // BATCH)
        for name, function, count, items in (
                ("encrypt 1 KiB", encrypt_one, iterations, 1),
                ("decrypt 1 KiB", decrypt_one, iterations, 1),
                (f"batch encrypt {BATCH} x 1 KiB", encrypt_batch, batches, BATCH),
                (f"batch decrypt {BATCH} x 1 KiB", decrypt_batch, batches, BATCH)):
            seconds = _timed(function, count)
            rows.append(Row(name, "in-process (1 thread)", items, count / seconds,
                            count * items / seconds, note="service layer only: no HTTP, no audit"))

        if profile is not None:
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(iterations):
                encrypt_one()
            profiler.disable()
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats("cumulative").print_stats(30)
            stats.sort_stats("tottime").print_stats(25)
            profile.write_text(out.getvalue())
            print(f"  cProfile of {iterations} in-process encrypts: {profile}", file=sys.stderr)
    return rows


# -- OpenSSL reference -------------------------------------------------------------------------


def openssl_reference(seconds: int) -> Row | None:
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    done = subprocess.run([openssl, "speed", "-evp", "aes-256-gcm", "-bytes", str(ITEM_BYTES),
                           "-seconds", str(seconds)], capture_output=True, text=True, check=False)
    text = done.stdout + done.stderr
    # "Doing AES-256-GCM for 3s on 1024 size blocks: 2411658 AES-256-GCM's in 2.99s" (3.x);
    # 1.1 says "... ops for 3s ... ops in 2.99s". The time is CPU time: one core's rate.
    match = re.search(r"Doing \S+ (?:ops )?for \d+s on \d+ size blocks: (\d+) \S+ in "
                      r"([\d.]+)s", text)
    if match is None:
        print(f"  could not parse openssl speed output:\n{text}", file=sys.stderr)
        return None
    ops = int(match.group(1)) / float(match.group(2))
    return Row("AES-256-GCM 1 KiB", "openssl speed (1 core)", 1, None, ops,
               note="raw cipher, no framing, no key lookup")


# -- output -------------------------------------------------------------------------------------


def print_table(rows: list[Row]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # plain text, same columns
        for row in rows:
            print(row)
        return
    table = Table(title="keyquorum operations (aes-256-gcm keys, 1 KiB items)")
    for column in ("scenario", "method", "req/s", "items/s", "p50 ms", "p99 ms", "errors",
                   "cpu ms/req"):
        table.add_column(column, justify="left" if column in ("scenario", "method") else "right")

    def number(value: float | None, digits: int = 0) -> str:
        return "-" if value is None else f"{value:,.{digits}f}"

    for row in rows:
        table.add_row(row.scenario, row.method, number(row.requests_per_s),
                      number(row.items_per_s), number(row.p50_ms, 2), number(row.p99_ms, 2),
                      str(row.errors) if row.method.startswith("http") else "-",
                      number(row.server_cpu_ms, 2))
    Console(width=max(120, shutil.get_terminal_size().columns)).print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=1,
                        help="server processes (keyquorum server --workers)")
    parser.add_argument("--iterations", type=int, default=20000,
                        help="in-process iterations per single-item scenario")
    parser.add_argument("--quick", action="store_true",
                        help="3 s per wrk run, fewer in-process iterations, 1 s openssl")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the in-process single encrypt (bench/results/)")
    parser.add_argument("--profile-server", action="store_true",
                        help="run the server under pyinstrument (pip install pyinstrument)")
    parser.add_argument("--context", action="store_true",
                        help="give every item an encryption context (audited as HMACs)")
    parser.add_argument("--only", choices=("crypto", "lifecycle"),
                        help="run only the crypto scenarios or only create/rotate")
    parser.add_argument("--http-only", action="store_true",
                        help="skip the in-process ceiling and the openssl reference")
    parser.add_argument("--output", type=Path, default=RESULTS / "ops.json")
    args = parser.parse_args()
    if args.quick:
        args.duration = min(args.duration, 3.0)
        args.iterations = min(args.iterations, 5000)
    openssl_seconds = 1 if args.quick else 3

    wrk = ensure_wrk()
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="kq-bench-") as tmp:
        work_dir = Path(tmp)
        profile_to = RESULTS / "server-profile.txt" if args.profile_server else None
        server = Server(work_dir / "server" / "data", profile_to=profile_to,
                        workers=args.workers)
        server.data_dir.parent.mkdir(parents=True)
        print(f"starting keyquorum server on {server.addr}", file=sys.stderr)
        server.start()
        try:
            server.open()
            if args.only != "lifecycle":
                rows += http_scenarios(wrk, server, args, work_dir)
            if args.only != "crypto":
                rows += lifecycle_scenarios(wrk, server, args, work_dir)
        finally:
            server.stop()
        if profile_to is not None:
            print(f"  pyinstrument profile of the server: {profile_to}", file=sys.stderr)
        if not args.http_only and args.only != "lifecycle":
            print("  in-process ceiling", file=sys.stderr)
            rows += in_process_scenarios(work_dir / "inproc",
                                         args.iterations,
                                         RESULTS / "inprocess-encrypt.prof.txt"
                                         if args.profile else None)
    if not args.http_only and args.only != "lifecycle":
        print("  openssl speed reference", file=sys.stderr)
        reference = openssl_reference(openssl_seconds)
        if reference is not None:
            rows.append(reference)

    print_table(rows)
    result = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "settings": {"duration_s": args.duration, "connections": args.connections,
                     "workers": args.workers,
                     "threads": args.threads, "item_bytes": ITEM_BYTES, "batch": BATCH,
                     "in_process_iterations": args.iterations, "audit": "on",
                     "only": args.only, "keyquorum": _keyquorum_source()},
        "targets": {"single_encrypt_per_s": 5000, "batched_items_per_s": 100000,
                    "creates_per_s_8_connections": 630},
        "rows": [asdict(row) for row in rows],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"results: {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
