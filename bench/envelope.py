"""Envelope encryption throughput and memory: the SDK and the CLI next to their ceilings.

Starts its own keyquorum server (data keys come from it, as in production),
writes a random file (1 GiB by default) and measures, each run in a fresh
process so that its peak RSS (``VmHWM``) is its own:

- SDK ``encrypt_file`` / ``decrypt_file`` file → file, and file → /dev/null
  (no write cost: the format's own speed), with 0, 1 (default) and 2 cipher
  threads;
- the CLI, ``keyquorum file encrypt|decrypt IN OUT`` (wall time, interpreter
  start-up and the server call included);
- references in the same run: a plain file copy (the machine's I/O ceiling for
  file → file), ``openssl speed -evp aes-256-gcm -bytes <segment size>`` (the
  single-core AES-GCM ceiling), pyca's ``AESGCM.encrypt_into`` on one and two
  threads (does the GIL get released?), and the AWS Encryption SDK for Python
  (raw AES keyring, same file) with its defaults and with settings matched to
  ours (1 MiB frames, the committing suite without signatures).

``--big`` adds the flat-memory check: a generated stream of ``--big-size``
(10 GiB) encrypted and decrypted through a pipe, by the SDK in one process and by
``keyquorum file encrypt - - | keyquorum file decrypt - -``, next to the same at
1 GiB. Prints a table and writes ``bench/results/envelope.json``.

    python bench/envelope.py                 # 1 GiB, 3 repetitions, everything
    python bench/envelope.py --size 256MiB --repeat 1 --no-esdk   # a quick look
    python bench/envelope.py --big           # + 10 GiB through pipes (flat memory)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
KEY = "bench/envelope"
SEGMENT = 1 << 20
MiB = 1 << 20


@dataclass
class Row:
    group: str
    scenario: str
    mb_per_s: float | None  # best run; MB = 10^6 bytes, as openssl counts
    median_mb_per_s: float | None = None
    peak_rss_mib: float | None = None
    runs: list[float] = field(default_factory=list)
    note: str = ""


def parse_size(text: str) -> int:
    match = re.fullmatch(r"(?i)(\d+)\s*(b|kib|k|mib|m|gib|g)?", text.strip())
    if match is None:
        raise argparse.ArgumentTypeError("sizes look like 1073741824, 256MiB or 10GiB")
    unit = (match.group(2) or "b").lower()[0]
    return int(match.group(1)) * {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[unit]


# -- work done in a child process -----------------------------------------------------------


class Generated:
    """``size`` bytes from one random 1 MiB block, repeated: a stream nothing stores."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.block = memoryview(os.urandom(MiB))

    def readinto(self, view: memoryview) -> int:
        n = min(len(view), self.left, MiB)
        view[:n] = self.block[:n]
        self.left -= n
        return n


class Discard:
    def write(self, data: memoryview) -> int:
        return len(data)


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one measured operation in this (fresh) process; the parent reads its RSS."""
    mode = spec["mode"]
    if mode == "idle":
        import keyquorum.envelope  # noqa: F401 - what every SDK run has loaded
        return {"seconds": 0.0}
    if mode == "copy":
        buf = memoryview(bytearray(SEGMENT))
        started = time.perf_counter()
        with open(spec["src"], "rb", buffering=0) as src, \
                open(spec["dst"], "wb", buffering=0) as dst:
            while n := src.readinto(buf):
                dst.write(buf[:n])
        return {"seconds": time.perf_counter() - started}
    if mode.startswith("esdk"):
        return esdk_worker(spec)
    from keyquorum.client import Client
    from keyquorum.envelope import decrypt_file, decrypt_stream, encrypt_file, encrypt_stream

    with Client(spec["addr"], spec["token"]) as kq:
        started = time.perf_counter()
        if mode == "sdk-encrypt":
            encrypt_file(spec["src"], spec["dst"], keys=[KEY], client=kq,
                         threads=spec["threads"])
        elif mode == "sdk-decrypt":
            decrypt_file(spec["src"], spec["dst"], client=kq, threads=spec["threads"])
        elif mode == "sdk-pipe":  # generated → encrypt → OS pipe → decrypt → discarded
            read_fd, write_fd = os.pipe()

            def produce() -> None:
                with open(write_fd, "wb", buffering=0) as pipe:
                    encrypt_stream(Generated(spec["size"]), pipe, keys=[KEY], client=kq)

            producer = threading.Thread(target=produce)
            producer.start()
            with open(read_fd, "rb", buffering=0) as pipe:
                result = decrypt_stream(pipe, Discard(), client=kq)
            producer.join()
            assert result.plaintext_size == spec["size"]
        else:
            raise SystemExit(f"unknown mode {mode}")
        return {"seconds": time.perf_counter() - started}


def esdk_worker(spec: dict[str, Any]) -> dict[str, Any]:
    import aws_encryption_sdk
    from aws_cryptographic_material_providers.mpl import AwsCryptographicMaterialProviders
    from aws_cryptographic_material_providers.mpl.config import MaterialProvidersConfig
    from aws_cryptographic_material_providers.mpl.models import (
        AesWrappingAlg,
        CreateRawAesKeyringInput,
    )
    from aws_encryption_sdk import Algorithm, CommitmentPolicy

    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    providers = AwsCryptographicMaterialProviders(config=MaterialProvidersConfig())
    keyring = providers.create_raw_aes_keyring(input=CreateRawAesKeyringInput(
        key_namespace="bench", key_name="envelope", wrapping_key=bytes.fromhex(spec["kek"]),
        wrapping_alg=AesWrappingAlg.ALG_AES256_GCM_IV12_TAG16))
    options: dict[str, Any] = {}
    if spec["mode"] == "esdk-encrypt" and spec.get("matched"):
        options = {"algorithm": Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY,
                   "frame_length": SEGMENT}
    started = time.perf_counter()
    with open(spec["src"], "rb") as src, open(spec["dst"], "wb") as dst, client.stream(
            mode="e" if spec["mode"] == "esdk-encrypt" else "d", source=src, keyring=keyring,
            encryption_context={"bench": "envelope"}, **options) as stream:
        for chunk in stream:
            dst.write(chunk)
    return {"seconds": time.perf_counter() - started}


# -- the parent: processes, references, table ----------------------------------------------


def peak_rss_mib() -> float:
    """This process's own peak RSS (VmHWM), in MiB.

    Not ``wait4``'s ``ru_maxrss``: Linux carries a child's maximum across fork and
    exec, so a child reports at least its parent's size at the fork.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# ``python -m keyquorum`` that writes its own peak RSS to $KQ_PEAK_FILE at exit.
MEASURED_KEYQUORUM = f"""
import atexit, os, runpy, sys
sys.path.insert(0, {str(ROOT / "bench")!r})
from envelope import peak_rss_mib
atexit.register(lambda: open(os.environ["KQ_PEAK_FILE"], "w").write(str(peak_rss_mib())))
sys.argv[0] = "keyquorum"
runpy.run_module("keyquorum", run_name="__main__", alter_sys=True)
"""


def measured(command: list[str], **popen: Any) -> tuple[float, str]:
    """Run ``command``; returns (wall seconds, stdout). Fails loudly."""
    started = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.PIPE, check=False, **popen)
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(command[:6])} ... exited {done.returncode}")
    return time.perf_counter() - started, done.stdout.decode()


def in_child(spec: dict[str, Any]) -> tuple[float, float]:
    """(seconds the operation took inside the child, the child's peak RSS MiB)."""
    _, out = measured([sys.executable, __file__, "--worker", json.dumps(spec)])
    answer = json.loads(out.strip().splitlines()[-1])
    return answer["seconds"], answer["peak_rss_mib"]


def keyquorum_command(env: dict[str, str], peak_file: Path) -> tuple[list[str], dict[str, str]]:
    return [sys.executable, "-c", MEASURED_KEYQUORUM], {**env, "KQ_PEAK_FILE": str(peak_file)}


def cli(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one ``keyquorum`` command."""
    with tempfile.TemporaryDirectory() as tmp:
        command, env = keyquorum_command(env, Path(tmp) / "peak")
        wall, _ = measured([*command, *args], env=env)
        return wall, float((Path(tmp) / "peak").read_text())


def openssl_speed(block: int, seconds: int) -> float | None:
    """openssl speed's single-core AES-256-GCM rate at ``block`` bytes, in MB/s."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    done = subprocess.run([openssl, "speed", "-evp", "aes-256-gcm", "-bytes", str(block),
                           "-seconds", str(seconds)], capture_output=True, text=True,
                          check=False)
    # "Doing AES-256-GCM ops for 3s on 1048576 size blocks: 10838 AES-256-GCM ops in 2.99s"
    # (openssl 3; 1.1 has no "ops"); the time is CPU time, so this is one core's rate.
    match = re.search(r"on \d+ size blocks: (\d+) \S+ (?:ops )?in ([\d.]+)s",
                      done.stdout + done.stderr)
    if match is None:
        return None
    return int(match.group(1)) * block / float(match.group(2)) / 1e6


def pyca_rate(threads: int, seconds: float = 2.0) -> float:
    """pyca ``AESGCM.encrypt_into`` on SEGMENT-byte blocks from ``threads`` threads, MB/s."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    cipher, data, nonce = AESGCM(os.urandom(32)), os.urandom(SEGMENT), os.urandom(12)
    counts = [0] * threads
    stop = time.perf_counter() + seconds

    def spin(i: int) -> None:
        out = bytearray(SEGMENT + 16)
        while time.perf_counter() < stop:
            cipher.encrypt_into(nonce, data, None, out)
            counts[i] += 1

    workers = [threading.Thread(target=spin, args=(i,)) for i in range(threads)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(counts) * SEGMENT / (time.perf_counter() - started) / 1e6


def make_data(path: Path, size: int) -> None:
    with open(path, "wb", buffering=0) as out:
        left = size
        while left:
            n = min(left, 16 * MiB)
            out.write(os.urandom(n))
            left -= n


def row(group: str, scenario: str, size: int, runs: list[tuple[float, float]],
        note: str = "") -> Row:
    rates = [size / s / 1e6 for s, _ in runs]
    return Row(group, scenario, max(rates), statistics.median(rates),
               max(rss for _, rss in runs), [round(r) for r in rates], note)


def print_table(rows: list[Row], openssl: float | None) -> None:
    print()
    print("| group | scenario | MB/s best | MB/s median | vs openssl 1 core "
          "| peak RSS MiB | note |")
    print("|---|---|---:|---:|---:|---:|---|")
    for r in rows:
        ratio = f"{r.mb_per_s / openssl:.0%}" if openssl and r.mb_per_s else ""
        best = f"{r.mb_per_s:,.0f}" if r.mb_per_s else ""
        median = f"{r.median_mb_per_s:,.0f}" if r.median_mb_per_s else ""
        rss = f"{r.peak_rss_mib:,.0f}" if r.peak_rss_mib else ""
        print(f"| {r.group} | {r.scenario} | {best} | {median} | {ratio} | {rss} | {r.note} |")


def cli_pipe(size: int, env: dict[str, str]) -> tuple[float, float, float]:
    """generate | keyquorum file encrypt - - | keyquorum file decrypt - - > /dev/null.

    Returns (wall seconds, encrypt peak RSS MiB, decrypt peak RSS MiB).
    """
    started = time.perf_counter()
    with open(os.devnull, "wb") as null, tempfile.TemporaryDirectory() as tmp:
        enc_cmd, enc_env = keyquorum_command(env, Path(tmp) / "encrypt")
        dec_cmd, dec_env = keyquorum_command(env, Path(tmp) / "decrypt")
        gen = subprocess.Popen([sys.executable, __file__, "--generate", str(size)],
                               stdout=subprocess.PIPE)
        enc = subprocess.Popen([*enc_cmd, "file", "encrypt", "-", "-", "--key", KEY],
                               stdin=gen.stdout, stdout=subprocess.PIPE, env=enc_env)
        dec = subprocess.Popen([*dec_cmd, "file", "decrypt", "-", "-"], stdin=enc.stdout,
                               stdout=null, env=dec_env)
        for pipe in (gen.stdout, enc.stdout):
            if pipe is not None:
                pipe.close()
        for process in (gen, enc, dec):
            if process.wait() != 0:
                raise SystemExit(f"error: a pipeline process exited {process.returncode}")
        peaks = [float((Path(tmp) / name).read_text()) for name in ("encrypt", "decrypt")]
    return time.perf_counter() - started, peaks[0], peaks[1]


def generate(size: int) -> None:
    source, buf = Generated(size), memoryview(bytearray(MiB))
    out = sys.stdout.buffer
    while n := source.readinto(buf):
        out.write(buf[:n])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default=1 << 30, help="default 1GiB")
    parser.add_argument("--repeat", type=int, default=3, help="runs per scenario (interleaved)")
    parser.add_argument("--big", action="store_true", help="also --big-size through pipes")
    parser.add_argument("--big-size", type=parse_size, default=10 << 30, help="default 10GiB")
    parser.add_argument("--no-esdk", action="store_true", help="skip the AWS Encryption SDK")
    parser.add_argument("--dir", type=Path, default=None, help="where the files go (a temp dir)")
    parser.add_argument("--openssl-seconds", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS / "envelope.json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--generate", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps({**worker(json.loads(args.worker)), "peak_rss_mib": peak_rss_mib()}))
        return
    if args.generate is not None:
        generate(args.generate)
        return

    sys.path.insert(0, str(ROOT / "bench"))
    from ops import Server  # the same server harness as bench/ops.py

    size = args.size
    rows: list[Row] = []
    extra: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="kq-envelope-", dir=args.dir) as tmp:
        work = Path(tmp)
        server = Server(work / "server" / "data")
        server.data_dir.parent.mkdir(parents=True)
        print(f"starting keyquorum server on {server.addr}", file=sys.stderr)
        server.start()
        try:
            server.open()
            with server.client() as http:
                http.post("/v1/keys", json={"name": KEY, "spec": "aes-256-gcm"}
                          ).raise_for_status()
            env = {**os.environ, "KEYQUORUM_ADDR": server.addr,
                   "KEYQUORUM_TOKEN": server.token}
            base = {"addr": server.addr, "token": server.token}
            data, sealed, out = work / "data.bin", work / "data.kqs", work / "out.bin"
            print(f"  writing {size:,} random bytes", file=sys.stderr)
            make_data(data, size)
            in_child({"mode": "copy", "src": str(data), "dst": str(out)})  # warm-up
            in_child({**base, "mode": "sdk-encrypt", "src": str(data), "dst": str(sealed),
                      "threads": 1})
            _, idle_rss = in_child({"mode": "idle"})
            extra["idle_sdk_process_rss_mib"] = round(idle_rss, 1)
            started = time.perf_counter()
            cli(["--version"], env)
            extra["cli_startup_s"] = round(time.perf_counter() - started, 2)

            def sdk(mode: str, threads: int, dst: Path | str) -> Any:
                src = data if mode == "sdk-encrypt" else sealed
                return lambda: in_child({**base, "mode": mode, "src": str(src),
                                         "dst": str(dst), "threads": threads})

            scenarios: list[tuple[str, str, Any, str]] = [
                ("reference", "file copy → file (read + write, no crypto)",
                 lambda: in_child({"mode": "copy", "src": str(data), "dst": str(out)}),
                 "the I/O ceiling for file → file"),
            ]
            for threads in (0, 1, 2):
                label = f"threads={threads}" + (" (default)" if threads == 1 else "")
                for verb in ("encrypt", "decrypt"):
                    scenarios.append(("SDK", f"{verb} file → file, {label}",
                                      sdk(f"sdk-{verb}", threads, out), ""))
                    scenarios.append(("SDK", f"{verb} file → /dev/null, {label}",
                                      sdk(f"sdk-{verb}", threads, os.devnull),
                                      "read + crypto, no write"))
            scenarios += [
                ("CLI", "file encrypt IN OUT", lambda: cli(
                    ["file", "encrypt", str(data), str(out), "--key", KEY, "--quiet"], env),
                 "wall time, start-up included"),
                ("CLI", "file decrypt IN OUT", lambda: cli(
                    ["file", "decrypt", str(sealed), str(out), "--quiet"], env),
                 "wall time, start-up included"),
                ("CLI", "file decrypt IN /dev/null", lambda: cli(
                    ["file", "decrypt", str(sealed), os.devnull, "--quiet"], env),
                 "wall time, start-up included"),
            ]
            runs: dict[str, list[tuple[float, float]]] = {s[1]: [] for s in scenarios}
            for rep in range(args.repeat):
                print(f"  repetition {rep + 1}/{args.repeat}", file=sys.stderr)
                for _, name, run, _ in scenarios:
                    if "→ file" in name or "OUT" in name:
                        # Same start for every run that writes a file: on this VM a page
                        # freed a few seconds ago has gone back to the host and costs a
                        # fault to get again, so a write right after another write is
                        # faster than one after a pause (see bench/README.md).
                        in_child({"mode": "copy", "src": str(data), "dst": str(out)})
                        out.unlink()
                    runs[name].append(run())
                    out.unlink(missing_ok=True)
            startup = extra["cli_startup_s"]
            for group, name, _, note in scenarios:
                if group == "CLI":
                    best = min(wall for wall, _ in runs[name])
                    note += f"; {size / max(best - startup, 1e-9) / 1e6:,.0f} MB/s without it"
                rows.append(row(group, name, size, runs[name], note))

            print("  openssl speed and pyca", file=sys.stderr)
            openssl = openssl_speed(SEGMENT, args.openssl_seconds)
            rows.insert(0, Row("reference", "openssl speed -evp aes-256-gcm -bytes 1048576",
                               openssl, note="1 core, raw cipher (system openssl CLI)"))
            for threads in (1, 2):
                rows.insert(1 + (threads - 1), Row(
                    "reference", f"pyca AESGCM.encrypt_into 1 MiB, {threads} thread(s)",
                    pyca_rate(threads), note="the library the SDK uses; raw cipher"))

            if not args.no_esdk:
                kek = os.urandom(32).hex()
                esdk_ct = work / "data.esdk"
                for matched, label in ((False, "defaults: 4 KiB frames, ECDSA-signed suite"),
                                       (True, "1 MiB frames, committing suite, no signature")):
                    print(f"  AWS Encryption SDK ({label})", file=sys.stderr)
                    enc = in_child({"mode": "esdk-encrypt", "src": str(data),
                                    "dst": str(esdk_ct), "kek": kek, "matched": matched})
                    dec = in_child({"mode": "esdk-decrypt", "src": str(esdk_ct),
                                    "dst": str(out), "kek": kek})
                    out.unlink(missing_ok=True)
                    rows.append(row("AWS ESDK", f"encrypt file → file ({label})", size, [enc],
                                    "raw AES keyring"))
                    rows.append(row("AWS ESDK", f"decrypt file → file ({label})", size, [dec],
                                    "raw AES keyring"))

            if args.big:
                for n in (1 << 30, args.big_size):
                    print(f"  {n:,} bytes through pipes", file=sys.stderr)
                    seconds, rss = in_child({**base, "mode": "sdk-pipe", "size": n})
                    rows.append(Row("flat memory", f"SDK {n / (1 << 30):g} GiB generated → "
                                    "encrypt → pipe → decrypt", n / seconds / 1e6,
                                    peak_rss_mib=rss, note="one process, both ends"))
                    wall, enc_rss, dec_rss = cli_pipe(n, env)
                    rows.append(Row("flat memory", f"CLI {n / (1 << 30):g} GiB gen | file "
                                    "encrypt - - | file decrypt - -", n / wall / 1e6,
                                    peak_rss_mib=max(enc_rss, dec_rss),
                                    note=f"RSS encrypt {enc_rss:.0f} / decrypt {dec_rss:.0f}"))
        finally:
            server.stop()

    print_table(rows, openssl)
    print(f"\nidle SDK process RSS: {extra['idle_sdk_process_rss_mib']} MiB; "
          f"CLI start-up: {extra['cli_startup_s']} s")
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "settings": {"size": size, "segment_size": SEGMENT, "repeat": args.repeat,
                     "big_size": args.big_size if args.big else None},
        "openssl_mb_per_s": openssl,
        **extra,
        "rows": [asdict(r) for r in rows],
    }
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"results: {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
