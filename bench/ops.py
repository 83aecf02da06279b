"""Crypto-operation throughput of a real keyquorum server, next to its ceilings.

Starts its own server (``python -m keyquorum server``) on loopback, initializes,
unseals, creates an aes-256-gcm key and drives it with ``wrk`` (keep-alive,
many connections, a Lua script POSTing JSON with the bearer token):

  (a) single encrypt, 1 KiB          (b) single decrypt, 1 KiB
  (c) batched encrypt, 100 x 1 KiB   (d) batched decrypt, 100 x 1 KiB

Next to them, in the same run: the same operations called in-process on the
service objects (no HTTP, no audit: the ceiling of the Python service layer),
and ``openssl speed -evp aes-256-gcm -bytes 1024`` (the single-core AES-GCM
ceiling). Prints a table and writes ``bench/results/ops.json``.

    python bench/ops.py                  # 10 s per scenario, wrk -t2 -c64
    python bench/ops.py --quick          # 3 s per scenario, shorter ceilings
    python bench/ops.py --profile        # also cProfile the in-process single encrypt
    python bench/ops.py --profile-server # also run the server under pyinstrument

Audit is on for every HTTP request (it always is: there is no switch to turn it off).
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

# wrk reads the body from a file and reports its own JSON line from done().
LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
local f = assert(io.open("%(body)s", "rb"))
wrk.body = f:read("*a")
f:close()

local bad = 0
response = function(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end

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


# -- helpers ------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


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


def run_wrk(wrk: str, server: Server, path: str, body: bytes, *, threads: int, connections: int,
            duration: float, work_dir: Path, label: str) -> dict[str, Any]:
    body_file = work_dir / f"{label}.json"
    body_file.write_bytes(body)
    script = work_dir / f"{label}.lua"
    script.write_text(LUA % {"token": server.token, "body": body_file})
    command = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s",
               "--latency", "--timeout", "10s", "-s", str(script), f"{server.addr}{path}"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"error: wrk failed ({done.returncode}): {done.stderr.strip()}")
    match = re.search(r"^WRKJSON (\{.*\})$", done.stdout, re.MULTILINE)
    if match is None:
        raise SystemExit(f"error: no summary from wrk:\n{done.stdout}\n{done.stderr}")
    stats: dict[str, Any] = json.loads(match.group(1))
    stats["text"] = done.stdout[:match.start()].rstrip()
    return stats


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
        seconds = stats["duration_us"] / 1e6
        rps = stats["requests"] / seconds
        errors = sum(stats[k] for k in ("errors_connect", "errors_read", "errors_write",
                                        "errors_status", "errors_timeout"))
        rows.append(Row(name, "http (wrk)", items, rps, rps * items, stats["p50_us"] / 1000,
                        stats["p99_us"] / 1000, errors))
    return rows


# -- in-process ceiling ----------------------------------------------------------------------


@contextlib.contextmanager
def in_process_service(data_dir: Path) -> Iterator[tuple[Any, Any, Any]]:
    """A core and its services on a data dir of their own: init, unseal, root context."""
    from keyquorum.api.app import build_services
    from keyquorum.config import Settings
    from keyquorum.server import build_core
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

    services.lifecycle.create(context(), {"name": KEY, "spec": "aes-256-gcm"})
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
    table = Table(title="keyquorum crypto operations (aes-256-gcm, 1 KiB items)")
    for column in ("scenario", "method", "req/s", "items/s", "p50 ms", "p99 ms", "errors"):
        table.add_column(column, justify="left" if column in ("scenario", "method") else "right")

    def number(value: float | None, digits: int = 0) -> str:
        return "-" if value is None else f"{value:,.{digits}f}"

    for row in rows:
        table.add_row(row.scenario, row.method, number(row.requests_per_s),
                      number(row.items_per_s), number(row.p50_ms, 2), number(row.p99_ms, 2),
                      str(row.errors) if row.method.startswith("http") else "-")
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
            rows += http_scenarios(wrk, server, args, work_dir)
        finally:
            server.stop()
        if profile_to is not None:
            print(f"  pyinstrument profile of the server: {profile_to}", file=sys.stderr)
        print("  in-process ceiling", file=sys.stderr)
        rows += in_process_scenarios(work_dir / "inproc",
                                     args.iterations,
                                     RESULTS / "inprocess-encrypt.prof.txt"
                                     if args.profile else None)
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
                     "in_process_iterations": args.iterations, "audit": "on"},
        "targets": {"single_encrypt_per_s": 5000, "batched_items_per_s": 100000},
        "rows": [asdict(row) for row in rows],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"results: {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
