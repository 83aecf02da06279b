"""boto3 Encrypt through keyquorum's AWS KMS API next to the same run against moto_server.

    python bench/kms.py                  # 10 s per server, 8 client threads
    python bench/kms.py --quick          # 3 s per server
    python bench/kms.py --duration 20 --threads 16

Both servers are started here, on loopback, one after the other:

- **keyquorum**: ``python -m keyquorum server`` (SQLite store; every request's SigV4
  signature verified against an access key's barrier-encrypted secret, and its audit
  record durably written before the answer, as always), a SYMMETRIC_DEFAULT key made
  through CreateKey with an access key holding ``root``;
- **moto**: ``moto_server`` (the ``moto[server]`` emulator: in memory, no signature
  check, no audit), the same key made the same way.

Each run is the same: ``--threads`` Python threads, each with its own boto3 client
(retries off), call ``Encrypt`` with 1 KiB of plaintext and an encryption context
in a loop for ``--duration`` seconds; every call's latency is recorded (client side,
so boto3's own signing and parsing are in it, identically for both servers). wrk
cannot be used here: every request needs a fresh SigV4 signature.

Also measured, in this process: the cost of verifying one SigV4 signature
(``keyquorum.kms.sigv4.parse`` + ``verify``, botocore's canonical request), the
part of a KMS request a native request does not pay.

Output: a table, and ``bench/results/kms.json`` (gitignored) with every row, the
settings and the machine. This is a 2-core machine shared with the load generator:
the Python client threads take a large share of it, so read the numbers as a
comparison between the two servers under the same client, not as capacity.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "bench"))
from ops import Server, _free_port  # noqa: E402

PLAINTEXT = os.urandom(1024)
CONTEXT = {"tenant": "bench"}


def client(addr: str, key_id: str, secret: str) -> Any:
    return boto3.client("kms", endpoint_url=addr, region_name="eu-west-1",
                        aws_access_key_id=key_id, aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": 1},
                                      max_pool_connections=4))


def load(addr: str, key_id: str, secret: str, kms_key: str, args: argparse.Namespace
         ) -> dict[str, Any]:
    """``args.threads`` clients calling Encrypt for ``args.duration`` seconds."""
    latencies: list[list[float]] = [[] for _ in range(args.threads)]
    errors = [0] * args.threads
    clients = [client(addr, key_id, secret) for _ in range(args.threads)]
    for each in clients:  # connections open and credentials resolved before the clock runs
        each.encrypt(KeyId=kms_key, Plaintext=PLAINTEXT, EncryptionContext=CONTEXT)
    start = threading.Event()
    deadline = [0.0]

    def run(index: int) -> None:
        mine, kms = latencies[index], clients[index]
        start.wait()
        while time.perf_counter() < deadline[0]:
            began = time.perf_counter()
            try:
                kms.encrypt(KeyId=kms_key, Plaintext=PLAINTEXT, EncryptionContext=CONTEXT)
            except Exception:  # counted; a benchmark goes on
                errors[index] += 1
                continue
            mine.append(time.perf_counter() - began)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(args.threads)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    deadline[0] = began + args.duration
    start.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    every = sorted(x for mine in latencies for x in mine)
    if not every:
        raise SystemExit("error: no request succeeded")

    def pct(p: float) -> float:
        return every[min(len(every) - 1, int(len(every) * p))] * 1000

    return {"requests": len(every), "errors": sum(errors), "seconds": round(elapsed, 2),
            "req_per_s": round(len(every) / elapsed, 1), "p50_ms": round(pct(0.50), 2),
            "p99_ms": round(pct(0.99), 2), "max_ms": round(every[-1] * 1000, 2)}


def keyquorum_run(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    (work / "kq").mkdir()
    server = Server(work / "kq" / "data")
    try:
        server.start()
        server.open()
        with server.client() as http:
            made = http.post("/v1/auth/access-keys", json={"policies": ["root"]})
            made.raise_for_status()
            access = made.json()
        kms = client(server.addr, access["access_key_id"], access["secret_access_key"])
        key = kms.create_key(Description="bench")["KeyMetadata"]["KeyId"]
        return load(server.addr, access["access_key_id"], access["secret_access_key"], key,
                    args)
    finally:
        server.stop()


def moto_run(work: Path, args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    binary = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
    port = _free_port()
    addr = f"http://127.0.0.1:{port}"
    with open(work / "moto.log", "ab") as log:
        process = subprocess.Popen([binary, "-H", "127.0.0.1", "-p", str(port)],
                                   stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{addr}/moto-api/", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit("error: moto_server did not start") from None
                time.sleep(0.1)
        kms = client(addr, "testing", "testing")
        key = kms.create_key(Description="bench")["KeyMetadata"]["KeyId"]
        from importlib.metadata import version

        return load(addr, "testing", "testing", key, args), version("moto")
    finally:
        process.terminate()
        process.wait(timeout=30)


def sigv4_cost(rounds: int = 5000) -> dict[str, Any]:
    """Microseconds to parse and verify one signed KMS request (botocore-signed)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from keyquorum.kms import sigv4

    key = {"access_key_id": "KQAKBENCHBENCHBENCH2", "secret_access_key": "s" * 40}
    body = json.dumps({"KeyId": "alias/bench", "Plaintext": "eA=="}).encode()
    request = AWSRequest(method="POST", url="http://127.0.0.1:8200/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService.Encrypt",
        "Host": "127.0.0.1:8200"})
    SigV4Auth(Credentials(key["access_key_id"], key["secret_access_key"]), "kms",
              "eu-west-1").add_auth(request)
    headers = {name.lower(): value for name, value in request.headers.items()}
    began = time.perf_counter()
    for _ in range(rounds):
        claims = sigv4.parse(headers)
        sigv4.verify(claims, key["secret_access_key"], method="POST", path="/", query="",
                     headers=headers, body=body)
    per_request = (time.perf_counter() - began) / rounds
    return {"rounds": rounds, "us_per_request": round(per_request * 1e6, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--quick", action="store_true", help="3 s per server")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--dir", default=None, help="where the servers keep their data")
    args = parser.parse_args()
    if args.quick:
        args.duration = 3.0
    with tempfile.TemporaryDirectory(prefix="kq-kms-", dir=args.dir) as tmp:
        work = Path(tmp)
        ours = keyquorum_run(work, args)
        theirs, moto_version = moto_run(work, args)
    cost = sigv4_cost()
    rows = [{"server": "keyquorum", **ours}, {"server": f"moto_server {moto_version}",
                                              **theirs}]
    columns = ("server", "req_per_s", "p50_ms", "p99_ms", "max_ms", "requests", "errors")
    print(f"boto3 Encrypt, 1 KiB + context, {args.threads} client threads, "
          f"{args.duration:g} s each")
    print(" | ".join(f"{c:>22}" if c == "server" else f"{c:>10}" for c in columns))
    for row in rows:
        print(" | ".join(f"{row[c]!s:>22}" if c == "server" else f"{row[c]!s:>10}"
                         for c in columns))
    print(f"SigV4 parse + verify (botocore canonical request): {cost['us_per_request']} us "
          "per request")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "kms.json"
    out.write_text(json.dumps({
        "rows": rows, "sigv4": cost, "settings": vars(args),
        "moto_setup": "moto_server (in memory, no signature check, no audit)",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": sys.version.split()[0]}}, indent=2))
    print(f"\nwritten: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
