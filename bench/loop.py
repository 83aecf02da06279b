"""Does one slow request stall the others? Health latency on the same worker during a batch.

Starts its own one-worker server, creates an RSA-4096 signing key, then sends
one batch of 1,000 sign items while a second client probes
``GET /v1/sys/health`` every 20 ms on a fresh connection. Reports the probe
latency (p50 / p99 / max) during the batch, next to the same probes with no
batch running (the reference, in the same run). Prints a table and writes
``bench/results/loop.json``.

    python bench/loop.py                 # this checkout
    PYTHONPATH=/tmp/old/src python bench/loop.py --label before   # another one
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
from ops import RESULTS, Server, _keyquorum_source

BATCH = 1000
PROBE_EVERY = 0.02


def probe(addr: str, stop: threading.Event, samples: list[float]) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        httpx.get(f"{addr}/v1/sys/health", timeout=30)
        samples.append((time.perf_counter() - started) * 1000)
        time.sleep(PROBE_EVERY)


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(server: Server, seconds_idle: float) -> dict[str, object]:
    with server.client() as http:
        http.post("/v1/keys", json={"name": "bench/rsa", "spec": "rsa-4096"}).raise_for_status()
        items = [{"message": base64.b64encode(b"m%d" % i).decode()} for i in range(BATCH)]
        http.post("/v1/keys/bench/rsa/sign", json={"message": items[0]["message"]})

        idle: list[float] = []
        stop = threading.Event()
        worker = threading.Thread(target=probe, args=(server.addr, stop, idle))
        worker.start()
        time.sleep(seconds_idle)
        stop.set()
        worker.join()

        busy: list[float] = []
        stop = threading.Event()
        worker = threading.Thread(target=probe, args=(server.addr, stop, busy))
        worker.start()
        started = time.perf_counter()
        answer = http.post("/v1/keys/bench/rsa/sign", json={"batch": items}, timeout=600)
        batch_seconds = time.perf_counter() - started
        stop.set()
        worker.join()
        answer.raise_for_status()
    return {"batch_seconds": batch_seconds,
            "idle": {"n": len(idle), "p50_ms": statistics.median(idle),
                     "p99_ms": percentile(idle, 0.99), "max_ms": max(idle)},
            "during_batch": {"n": len(busy), "p50_ms": statistics.median(busy),
                             "p99_ms": percentile(busy, 0.99), "max_ms": max(busy)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    parser.add_argument("--output", type=Path, default=RESULTS / "loop.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kq-loop-") as scratch:
        server = Server(Path(scratch) / "data")
        server.start()
        try:
            server.open()
            result = measure(server, args.idle_seconds)
        finally:
            server.stop()
    result["label"] = args.label
    result["source"] = _keyquorum_source()
    print(f"{args.label}: one batch of {BATCH} RSA-4096 signs took "
          f"{result['batch_seconds']:.2f} s")
    print(f"{'health probe':<28}{'n':>6}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for name in ("idle", "during_batch"):
        row = result[name]
        assert isinstance(row, dict)
        print(f"{name.replace('_', ' '):<28}{row['n']:>6}{row['p50_ms']:>10.1f}"
              f"{row['p99_ms']:>10.1f}{row['max_ms']:>10.1f}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
