"""How long one ``keyquorum`` command takes to start and finish, for shell scripts.

A script that calls ``keyquorum encrypt`` a hundred times pays Python's start-up
and the CLI's imports every time. This runs each command 20 times (interleaved,
so a burst of load on a shared machine hits every command alike) and reports the
minimum and median wall time and the median CPU time (user + system of the
child), next to ``python -c pass``: the floor no Python CLI gets under.

Commands: ``keyquorum --version``, ``keyquorum --help``, and one ``keyquorum
encrypt`` of 5 bytes against a server of the benchmark's own (one worker, on
loopback, with a key made first). The CLI is run as its console script runs it
(``from keyquorum.cli.main import run; run()``), so ``PYTHONPATH`` picks the
source tree. ``--compare SRC`` measures another tree's CLI in the same run (say a
worktree of an older commit), against the same server. Prints a table and
writes ``bench/results/cli.json``.

    python bench/cli.py
    git worktree add /tmp/old <commit> && python bench/cli.py --compare /tmp/old/src
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ops import RESULTS, Server, _keyquorum_source

KEY = "bench/cli"
RUN_CLI = "from keyquorum.cli.main import run; run()"


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], env: dict[str, str], stdin: bytes) -> tuple[float, float]:
    """Wall and CPU seconds of one run; a failing command stops the benchmark."""
    cpu = _child_cpu()
    started = time.perf_counter()
    done = subprocess.run(command, env=env, input=stdin, capture_output=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(command)} failed: {done.stderr.decode()[-500:]}")
    return wall, _child_cpu() - cpu


def commands(server: Server) -> dict[str, tuple[list[str], bytes]]:
    python = sys.executable
    return {
        "python -c pass": ([python, "-c", "pass"], b""),
        "keyquorum --version": ([python, "-c", RUN_CLI, "--version"], b""),
        "keyquorum --help": ([python, "-c", RUN_CLI, "--help"], b""),
        "keyquorum encrypt": ([python, "-c", RUN_CLI, "encrypt", KEY], b"hello"),
    }


def measure(server: Server, sources: dict[str, str | None], runs: int
            ) -> dict[str, dict[str, dict[str, float]]]:
    base_env = {**os.environ, "KEYQUORUM_ADDR": server.addr, "KEYQUORUM_TOKEN": server.token}
    envs = {}
    for label, src in sources.items():
        env = dict(base_env)
        if src is not None:
            env["PYTHONPATH"] = src
        envs[label] = env
    walls: dict[tuple[str, str], list[float]] = {}
    cpus: dict[tuple[str, str], list[float]] = {}
    table = commands(server)
    for env in envs.values():  # warm the byte-code caches and the server's key
        for command, stdin in table.values():
            timed(command, env, stdin)
    for _ in range(runs):
        for name, (command, stdin) in table.items():
            for label, env in envs.items():
                if name == "python -c pass" and label != next(iter(envs)):
                    continue  # the floor does not depend on the tree
                wall, cpu = timed(command, env, stdin)
                walls.setdefault((label, name), []).append(wall)
                cpus.setdefault((label, name), []).append(cpu)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for (label, name), samples in walls.items():
        out.setdefault(label, {})[name] = {
            "min_ms": round(min(samples) * 1000, 1),
            "median_ms": round(statistics.median(samples) * 1000, 1),
            "cpu_median_ms": round(statistics.median(cpus[(label, name)]) * 1000, 1),
            "runs": len(samples),
        }
    return out


def print_table(results: dict[str, dict[str, dict[str, float]]]) -> None:
    print(f"{'tree':<10} {'command':<22} {'min ms':>8} {'median ms':>10} {'cpu ms':>8}")
    for label, rows in results.items():
        for name, row in rows.items():
            print(f"{label:<10} {name:<22} {row['min_ms']:>8.1f} {row['median_ms']:>10.1f} "
                  f"{row['cpu_median_ms']:>8.1f}")
    if len(results) == 2:
        (new_label, new), (old_label, old) = results.items()
        print()
        for name in new:
            if name in old and name != "python -c pass":
                ratio = new[name]["median_ms"] / old[name]["median_ms"]
                print(f"{name:<22} median {new_label}/{old_label}: {ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--compare", metavar="SRC",
                        help="Another source tree (its src/) to measure in the same run.")
    parser.add_argument("--label", default="this")
    parser.add_argument("--compare-label", default="compared")
    parser.add_argument("--output", type=Path, default=RESULTS / "cli.json")
    args = parser.parse_args()
    sources: dict[str, str | None] = {args.label: None}
    if args.compare:
        sources[args.compare_label] = args.compare
    with tempfile.TemporaryDirectory(prefix="kq-bench-cli-") as scratch:
        server = Server(Path(scratch) / "data")
        server.start()
        try:
            server.open()
            with server.client() as http:
                http.post("/v1/keys", json={"name": KEY, "spec": "aes-256-gcm"}
                          ).raise_for_status()
            results = measure(server, sources, args.runs)
        finally:
            server.stop()
    print_table(results)
    record: dict[str, Any] = {
        "benchmark": "cli start-up", "runs": args.runs, "python": platform.python_version(),
        "source": _keyquorum_source(), "compare": args.compare,
        "load_average": os.getloadavg(), "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    main()
