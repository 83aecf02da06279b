"""Crash consistency: SIGKILL the server under concurrent writes, restart, check nothing broke.

One real server process, three kill cycles. In each cycle many writer threads
(each with its own HTTP client) create keys, rotate a few shared keys from
several threads at once, and encrypt (single and batched) under them, recording
every answer that came back 200. At a random moment the server gets SIGKILL.
After restart and unseal, everything acknowledged must still be there:

- every key whose create was answered 200 exists and lists;
- every key has versions 1..n without gaps or duplicates, exactly one primary
  (the highest, ``active``) and every earlier version ``deactivated``;
- no acknowledged rotation was lost (n >= 1 + acknowledged rotations) and no
  rotation appeared from nowhere (n <= 1 + attempted rotations);
- every ciphertext answered 200 decrypts to its plaintext under its context,
  naming the same key and version;
- the SQLite file passes ``PRAGMA integrity_check`` and is still in WAL mode.
"""

from __future__ import annotations

import base64
import os
import random
import signal
import sqlite3
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from kq_support import ServerProcess, free_port

CYCLES = 3
SHARED_KEYS = 3  # rotated by several threads at once
ROTATORS = 4
CREATORS = 2
ENCRYPTORS = 4
BATCH_ENCRYPTORS = 1
BATCH_SIZE = 20
WARM_UP_CIPHERTEXTS = 20  # acknowledged in the cycle before the kill clock starts
WARM_UP_ROTATIONS = 2


@dataclass
class Sealed:
    """One acknowledged encryption: what was sent and what came back."""

    key: str
    key_version: int
    ciphertext: str
    plaintext: bytes
    context: dict[str, str] | None


@dataclass
class Ledger:
    """What the writers saw acknowledged (and attempted), shared by all threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    created: set[str] = field(default_factory=set)
    create_attempted: set[str] = field(default_factory=set)
    rotations_ok: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    rotations_attempted: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    max_version_seen: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    sealed: list[Sealed] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def saw_version(self, key: str, version: int) -> None:
        with self.lock:
            self.max_version_seen[key] = max(self.max_version_seen[key], version)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _random_context(rng: random.Random) -> dict[str, str] | None:
    if rng.random() < 0.3:
        return None
    return {"tenant": f"t{rng.randrange(100)}", "purpose": rng.choice(["a", "b", "c"])}


class Writers:
    """The writer threads of one cycle; they run until stopped or the server is gone."""

    def __init__(self, server: ServerProcess, ledger: Ledger, shared: list[str], cycle: int,
                 seed: int) -> None:
        self.server = server
        self.ledger = ledger
        self.shared = shared
        self.cycle = cycle
        self.seed = seed
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.requests = 0
        self._count_lock = threading.Lock()

    def start(self) -> None:
        jobs = ([self._creator] * CREATORS + [self._rotator] * ROTATORS
                + [self._encryptor] * ENCRYPTORS + [self._batch_encryptor] * BATCH_ENCRYPTORS)
        for index, job in enumerate(jobs):
            thread = threading.Thread(target=self._guard, args=(job, index), daemon=True,
                                      name=f"writer-{self.cycle}-{index}")
            self.threads.append(thread)
            thread.start()

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)
            assert not thread.is_alive(), f"{thread.name} did not stop"

    def _guard(self, job, index: int) -> None:  # type: ignore[no-untyped-def]
        rng = random.Random(self.seed * 1000 + index)
        # Short timeouts: after the kill every request fails fast with a transport error.
        with httpx.Client(base_url=self.server.addr, timeout=10,
                          headers={"Authorization": f"Bearer {self.server.root_token}"}
                          ) as http:
            try:
                while not self.stop.is_set():
                    job(http, rng, index)
                    with self._count_lock:
                        self.requests += 1
            except httpx.TransportError:
                return  # the server is gone (killed): this writer is done
            except Exception as exc:  # a writer's own check failed: make the test fail
                with self.ledger.lock:
                    self.ledger.unexpected.append(f"{job.__name__}: {exc!r}")

    def _note_unexpected(self, what: str, answer: httpx.Response) -> None:
        # A 5xx while the server is being killed is fine; anything else is a finding.
        if answer.status_code >= 500:
            return
        with self.ledger.lock:
            self.ledger.unexpected.append(f"{what}: {answer.status_code} {answer.text[:200]}")

    def _creator(self, http: httpx.Client, rng: random.Random, index: int) -> None:
        name = f"crash/c{self.cycle}/w{index}/k{rng.getrandbits(40):x}"
        with self.ledger.lock:
            self.ledger.create_attempted.add(name)
        answer = http.post("/v1/keys", json={"name": name, "spec": "aes-256-gcm"})
        if answer.status_code == 200:
            body = answer.json()
            assert body["name"] == name and body["primary_version"] == 1
            with self.ledger.lock:
                self.ledger.created.add(name)
            self.ledger.saw_version(name, 1)
            # Use the new key at once, so fresh keys carry ciphertexts too.
            self._encrypt_one(http, rng, name)
        else:
            self._note_unexpected(f"create {name}", answer)

    def _rotator(self, http: httpx.Client, rng: random.Random, _index: int) -> None:
        name = rng.choice(self.shared)
        with self.ledger.lock:
            self.ledger.rotations_attempted[name] += 1
        answer = http.post(f"/v1/keys/{name}/rotate")
        if answer.status_code == 200:
            body = answer.json()
            with self.ledger.lock:
                self.ledger.rotations_ok[name] += 1
            self.ledger.saw_version(name, body["primary_version"])
        elif answer.status_code != 409:  # a concurrent-change conflict is an allowed answer
            self._note_unexpected(f"rotate {name}", answer)

    def _encrypt_one(self, http: httpx.Client, rng: random.Random, name: str) -> None:
        plaintext = rng.randbytes(rng.randrange(1, 300))
        context = _random_context(rng)
        item: dict[str, object] = {"plaintext": _b64(plaintext)}
        if context is not None:
            item["context"] = context
        answer = http.post(f"/v1/keys/{name}/encrypt", json=item)
        if answer.status_code == 200:
            body = answer.json()
            self._record(name, body, plaintext, context)
        else:
            self._note_unexpected(f"encrypt {name}", answer)

    def _record(self, name: str, body: dict, plaintext: bytes,
                context: dict[str, str] | None) -> None:
        self.ledger.saw_version(name, body["key_version"])
        with self.ledger.lock:
            self.ledger.sealed.append(Sealed(name, body["key_version"], body["ciphertext"],
                                             plaintext, context))

    def _pick_key(self, rng: random.Random) -> str:
        with self.ledger.lock:
            mine = [k for k in self.ledger.created if k.startswith(f"crash/c{self.cycle}/")]
        if mine and rng.random() < 0.3:
            return rng.choice(mine)
        return rng.choice(self.shared)

    def _encryptor(self, http: httpx.Client, rng: random.Random, _index: int) -> None:
        self._encrypt_one(http, rng, self._pick_key(rng))

    def _batch_encryptor(self, http: httpx.Client, rng: random.Random, _index: int) -> None:
        name = self._pick_key(rng)
        items = []
        for _ in range(BATCH_SIZE):
            plaintext = rng.randbytes(rng.randrange(1, 200))
            context = _random_context(rng)
            items.append((plaintext, context))
        batch = [{"plaintext": _b64(p), **({"context": c} if c else {})} for p, c in items]
        answer = http.post(f"/v1/keys/{name}/encrypt", json={"batch": batch})
        if answer.status_code != 200:
            self._note_unexpected(f"batch encrypt {name}", answer)
            return
        results = answer.json()["results"]
        assert len(results) == len(items)
        for (plaintext, context), result in zip(items, results, strict=True):
            if "error" in result:
                with self.ledger.lock:
                    self.ledger.unexpected.append(f"batch item on {name}: {result['error']}")
                continue
            self._record(name, result, plaintext, context)


# -- checks after restart -----------------------------------------------------------------------


def _all_keys(http: httpx.Client) -> dict[str, dict]:
    found: dict[str, dict] = {}
    token: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 1000}
        if token:
            params["page_token"] = token
        answer = http.get("/v1/keys", params=params)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        for key in body["keys"]:
            assert key["name"] not in found, f"key {key['name']} listed twice"
            found[key["name"]] = key
        token = body.get("next_page_token")
        if not token:
            return found


def _check_versions(name: str, key: dict) -> int:
    numbers = [v["version"] for v in key["versions"]]
    n = len(numbers)
    assert sorted(numbers) == list(range(1, n + 1)), f"{name}: versions {numbers} have gaps/dups"
    assert key["primary_version"] == n, f"{name}: primary {key['primary_version']} != highest {n}"
    states = {v["version"]: v["state"] for v in key["versions"]}
    assert states[n] == "active", f"{name}: primary version {n} is {states[n]}"
    active = [v for v, s in states.items() if s == "active"]
    assert active == [n], f"{name}: active versions {active} (exactly one primary expected)"
    stale = {v: s for v, s in states.items() if v != n and s != "deactivated"}
    assert not stale, f"{name}: earlier versions not deactivated: {stale}"
    assert key["state"] == "enabled", f"{name}: key state {key['state']}"
    return n


def _check_decrypts(http: httpx.Client, sealed: list[Sealed]) -> None:
    for start in range(0, len(sealed), 500):
        chunk = sealed[start:start + 500]
        batch = [{"ciphertext": s.ciphertext, **({"context": s.context} if s.context else {})}
                 for s in chunk]
        answer = http.post("/v1/decrypt", json={"batch": batch})
        assert answer.status_code == 200, answer.text
        for entry, result in zip(chunk, answer.json()["results"], strict=True):
            assert "error" not in result, (
                f"ciphertext under {entry.key} v{entry.key_version} no longer decrypts: "
                f"{result['error']}")
            assert base64.b64decode(result["plaintext"]) == entry.plaintext
            assert result["key"] == entry.key
            assert result["key_version"] == entry.key_version


def _check_sqlite(db: Path, *, server_running: bool) -> None:
    # Read-only while the server runs (WAL lets a reader in beside the writer).
    mode = "ro" if server_running else "rw"
    conn = sqlite3.connect(f"file:{db}?mode={mode}", uri=True, timeout=15)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        # Storage agrees with the API on the shape of every key's versions.
        rows = conn.execute(
            "SELECT k.name, k.primary_version, COUNT(v.version), MAX(v.version), "
            "MIN(v.version) FROM keys k JOIN key_versions v ON v.key_id = k.id "
            "GROUP BY k.id").fetchall()
        for name, primary, count, highest, lowest in rows:
            assert (lowest, highest, primary) == (1, count, count), (
                f"{name}: stored versions {lowest}..{highest} ({count}), primary {primary}")
    finally:
        conn.close()


def _verify(server: ServerProcess, ledger: Ledger, shared: list[str]) -> None:
    with server.client() as http:
        health = http.get("/v1/sys/health")
        assert health.status_code == 200, health.text
        assert health.json()["sealed"] is False
        keys = _all_keys(http)
        missing = ledger.created - set(keys)
        assert not missing, f"keys created with 200 but gone after the crash: {sorted(missing)}"
        phantom = {k for k in keys if k.startswith("crash/")} - ledger.create_attempted
        assert not phantom, f"keys nobody created: {sorted(phantom)}"
        for name in keys:
            # The listing and the single-key answer must agree.
            answer = http.get(f"/v1/keys/{name}")
            assert answer.status_code == 200, answer.text
            key = answer.json()
            listed = [(v["version"], v["state"]) for v in keys[name]["versions"]]
            assert [(v["version"], v["state"]) for v in key["versions"]] == listed
            n = _check_versions(name, key)
            assert n >= ledger.max_version_seen.get(name, 1), (
                f"{name}: version {ledger.max_version_seen[name]} was acknowledged, "
                f"only {n} survived")
            if name in shared:
                assert n >= 1 + ledger.rotations_ok[name], (
                    f"{name}: {ledger.rotations_ok[name]} rotations acknowledged, {n} versions")
                assert n <= 1 + ledger.rotations_attempted[name], (
                    f"{name}: {n} versions but only {ledger.rotations_attempted[name]} "
                    "rotations attempted")
        _check_decrypts(http, ledger.sealed)


@pytest.mark.server
@pytest.mark.slow
def test_sigkill_under_concurrent_writes_loses_nothing_acknowledged(tmp_path: Path) -> None:
    seed = int(os.environ.get("KQ_CRASH_SEED", random.randrange(1 << 30)))
    print(f"crash test seed: {seed} (KQ_CRASH_SEED={seed} repeats the kill moments)")
    rng = random.Random(seed)
    server = ServerProcess(data_dir=tmp_path / "data", port=free_port())
    server.start()
    try:
        server.init(shares=3, threshold=2)
        server.unseal()
        shared = [f"crash/shared/k{i}" for i in range(SHARED_KEYS)]
        ledger = Ledger()
        with server.client() as http:
            for name in shared:
                answer = http.post("/v1/keys", json={"name": name, "spec": "aes-256-gcm"})
                assert answer.status_code == 200, answer.text
                ledger.created.add(name)
                ledger.create_attempted.add(name)
                ledger.rotations_attempted[name] = 0
        # Different kill moments per cycle: early, middle, late (each jittered), counted
        # from when the writers are under way, so a slow start cannot make a cycle empty.
        windows = [(0.0, 0.6), (0.6, 1.4), (1.4, 2.5)]
        for cycle in range(CYCLES):
            before = len(ledger.sealed)
            rotated_before = sum(ledger.rotations_ok.values())
            writers = Writers(server, ledger, shared, cycle, seed + cycle)
            writers.start()
            deadline = time.monotonic() + 30
            while (len(ledger.sealed) - before < WARM_UP_CIPHERTEXTS
                   or sum(ledger.rotations_ok.values()) - rotated_before < WARM_UP_ROTATIONS):
                assert time.monotonic() < deadline, "the writers made no progress in 30 s"
                assert not ledger.unexpected, "\n".join(ledger.unexpected[:20])
                time.sleep(0.01)
            delay = rng.uniform(*windows[cycle % len(windows)])
            time.sleep(delay)
            server.stop(signal.SIGKILL)
            writers.join()
            print(f"cycle {cycle}: killed {delay:.2f}s after warm-up, {writers.requests} requests, "
                  f"{len(ledger.sealed)} ciphertexts ({len(ledger.sealed) - before} "
                  f"this cycle), {len(ledger.created)} keys, rotations ok/attempted "
                  f"{sum(ledger.rotations_ok.values())}/"
                  f"{sum(ledger.rotations_attempted.values())}")
            assert ledger.sealed, "no encryption was acknowledged before the kill"
            assert not ledger.unexpected, "\n".join(ledger.unexpected[:20])

            server.start()
            # Any threshold of shares opens it; use a different pair than at first.
            status = server.unseal(server.shares[1:3])
            assert status["sealed"] is False
            _verify(server, ledger, shared)
            _check_sqlite(server.data_dir / "keyquorum.db", server_running=True)
    finally:
        server.stop()
    _check_sqlite(server.data_dir / "keyquorum.db", server_running=False)
