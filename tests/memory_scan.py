"""Reading another process's memory for secrets, as an attacker with a dump would.

``count_in_memory(pid, needles)`` reads every readable mapping of the process
through ``/proc/PID/mem`` (what a core dump holds, less the read-only code and data
of mapped files, which cannot hold a secret made at run time) and counts where each
needle occurs: on the C stack of one of its threads (where OpenSSL and the
interpreter leave what their frames held until that depth is used again, out of
reach of any wiping) apart from everywhere else. It needs ``ptrace`` rights over
the process: root, or the same user while the process is dumpable
(``PermissionError`` otherwise).

Also ``process_secrets``: the secrets of a keyquorum data dir, worked out offline
from its store and the shares (root key, Shamir secret, barrier keys), as needles.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

_CHUNK = 64 << 20


def _regions(pid: int) -> list[tuple[int, int]]:
    regions = []
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            fields = line.split()
            perms = fields[1]
            path = fields[5] if len(fields) > 5 else ""
            if not perms.startswith("r") or path in ("[vvar]", "[vsyscall]", "[vvar_vclock]"):
                continue
            if path.startswith("/") and "w" not in perms:
                continue  # a file's code or constants
            low, high = (int(x, 16) for x in fields[0].split("-"))
            regions.append((low, high))
    return regions


@dataclass
class Found:
    """Where the needles were found: on threads' C stacks, and everywhere else."""

    elsewhere: dict[str, int]
    on_stacks: dict[str, int]

    def report(self) -> dict[str, dict[str, int]]:
        return {"elsewhere": {k: n for k, n in self.elsewhere.items() if n},
                "on thread stacks": {k: n for k, n in self.on_stacks.items() if n}}


def _stack_regions(pid: int, regions: list[tuple[int, int]]) -> set[tuple[int, int]]:
    """The mappings holding a thread's stack pointer (``/proc/PID/task/TID/syscall``
    gives it for every thread waiting in a system call, as an idle server's are)."""
    pointers = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "syscall").read_text().split()
        except OSError:
            continue
        if len(fields) >= 9:
            pointers.append(int(fields[7], 16))
    return {(low, high) for low, high in regions if any(low <= sp < high for sp in pointers)}


def count_in_memory(pid: int, needles: dict[str, bytes]) -> Found:
    """How often each needle occurs in the process's memory (overlaps at region
    edges of 64 MiB chunks are read twice, so a needle is never missed there)."""
    found = Found(dict.fromkeys(needles, 0), dict.fromkeys(needles, 0))
    longest = max(len(n) for n in needles.values())
    regions = _regions(pid)
    stacks = _stack_regions(pid, regions)
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for low, high in regions:
            counts = found.on_stacks if (low, high) in stacks else found.elsewhere
            at = low
            while at < high:
                size = min(_CHUNK, high - at)
                try:
                    mem.seek(at)
                    data = mem.read(size + (longest - 1 if at + size < high else 0))
                except OSError:  # unmapped meanwhile, or a guard page
                    break
                for name, needle in needles.items():
                    start = data.find(needle)
                    while 0 <= start < size:
                        counts[name] += 1
                        start = data.find(needle, start + 1)
                at += size
    return found


def process_secrets(data_dir: Path, shares: list[str], threshold: int) -> dict[str, bytes]:
    """The root key, the Shamir secret, the unseal key derived from it and each barrier
    key of the store in ``data_dir`` (opened offline from its seal entries with
    ``threshold`` of ``shares``)."""
    from keyquorum.crypto import vss
    from keyquorum.crypto.kdf import hkdf_sha256
    from keyquorum.seal.barrier import KEYRING_ENTRY, open_keyring
    from keyquorum.seal.seal_set import SEAL_PREFIX, Unlock, open_root_key
    from keyquorum.seal.shamir import _UNSEAL_KEY_INFO
    from keyquorum.seal.shares import decode_share

    with sqlite3.connect(data_dir / "keyquorum.db") as conn:
        entries = dict(conn.execute("SELECT name, value FROM system_entries"))
    root = open_root_key({k: v for k, v in entries.items() if k.startswith(SEAL_PREFIX)},
                         Unlock(shares=tuple(shares[:threshold])))
    secret = bytes(vss.combine([decode_share(s) for s in shares[:threshold]]))
    found = {"root key": root, "Shamir secret": secret,
             "unseal key": hkdf_sha256(secret, info=_UNSEAL_KEY_INFO)}
    for term, key in open_keyring(root, entries[KEYRING_ENTRY]).terms.items():
        found[f"barrier key {term}"] = bytes(key)
    return found
