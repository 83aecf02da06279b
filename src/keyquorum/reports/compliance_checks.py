"""The compliance controls and how each is judged: pure functions of gathered evidence.

Every check takes the ``Evidence`` the report gathered once (``reports/compliance.py``)
and answers ``(status, reason)``: ``pass``, ``attention`` (a person must look: a
weak spot, or evidence the service cannot see) or ``fail``. Control-level checks
judge the service as a whole; per-key checks judge each key of the inventory.
Nothing here reads storage, so every rule is unit-testable with made-up evidence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from keyquorum.auth.dual_settings import EXPORT, IMPORT, REVOKE, SCHEDULE_DELETION
from keyquorum.clock import rfc3339
from keyquorum.config import is_loopback
from keyquorum.keys.states import KeyState, VersionState
from keyquorum.reports.inventory import (
    COMPROMISED_IN_USE,
    DEACTIVATED_IN_USE,
    ROTATION_OVERDUE,
    Inventory,
    InventoryEntry,
    primary_activated_at,
)

PASS, ATTENTION, FAIL = "pass", "attention", "fail"
STATUSES = (PASS, ATTENTION, FAIL)
RANK = {PASS: 0, ATTENTION: 1, FAIL: 2}
PCI = "PCI DSS v4.0"
NIST = "NIST SP 800-57 Part 1 Rev. 5"

# Key-management actions that handle key material or end a key: dual control must
# cover these for split knowledge and dual control to hold (PCI DSS 3.7.6).
KEY_ACTIONS = frozenset({SCHEDULE_DELETION, REVOKE, EXPORT, IMPORT})

# Specs implementing algorithms NIST approves: AES-GCM (FIPS 197, SP 800-38D), HMAC
# (FIPS 198-1), ECDSA/EdDSA/RSA (FIPS 186-5), ML-KEM (FIPS 203), ML-DSA (FIPS 204).
NIST_APPROVED = frozenset({
    "aes-256-gcm", "aes-128-gcm", "hmac-sha224", "hmac-sha256", "hmac-sha384",
    "hmac-sha512", "ed25519",
    "ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "rsa-3072", "rsa-4096", "ml-dsa-44",
    "ml-dsa-65", "ml-dsa-87", "ml-kem-768", "ml-kem-1024"})
# Approved, but only for a while: SP 800-57 Part 1 Table 4 allows 112-bit security
# (RSA-2048) through 2030. A person should plan the move, so these need attention.
NIST_UNTIL_2030 = frozenset({"rsa-2048"})

BARRIER = "AES-256-GCM"
"""The barrier (the key-encrypting key layer) is AES-256-GCM: 256-bit security, the
strongest any spec offers, so every key's KEK is at least as strong as the key."""


def worst(statuses: list[str] | tuple[str, ...]) -> str:
    return max(statuses, key=RANK.__getitem__, default=PASS)


@dataclass(frozen=True)
class Evidence:
    """Everything the controls are judged on, gathered once per report."""

    now: float
    inventory: Inventory
    threshold: int
    shares: int
    custodians: tuple[str, ...]
    custodians_named: bool
    dual_approvals: int
    dual_operations: frozenset[str]
    tls: bool
    listen_host: str
    storage: str
    undestroyed: dict[str, list[int]] = field(default_factory=dict)  # destroyed but has material
    # Custodian drills (service/custodians.py): shares shown within the window, and the margin.
    custodians_verified: int | None = None
    custodian_margin: int | None = None
    custodian_warning: str | None = None
    drill_window_days: int = 90
    # Custodians who never proved their share since it was handed out (it does not count).
    custodians_unacknowledged: tuple[str, ...] = ()
    shares_sealed: int = 0  # shares handed out sealed to their custodian's key


# -- per-key checks: (entry, evidence) -> (status, reason) ---------------------------------

KeyCheck = Callable[[InventoryEntry, Evidence], tuple[str, str]]


def _exportable(entry: InventoryEntry, _ev: Evidence) -> tuple[str, str]:
    if entry.key.exportable and entry.key.state is not KeyState.DESTROYED:
        return ATTENTION, "exportable: its material may leave the service"
    return PASS, "not exportable: its material never leaves the service"


def _generated(entry: InventoryEntry, _ev: Evidence) -> tuple[str, str]:
    if entry.key.origin != "generated":
        return ATTENTION, (f"origin {entry.key.origin}: generated outside keyquorum, so its "
                           "generation is not evidenced here")
    return PASS, "generated inside keyquorum from the OS CSPRNG"


def _approved(entry: InventoryEntry, _ev: Evidence) -> tuple[str, str]:
    if entry.key.spec in NIST_UNTIL_2030:
        return ATTENTION, (f"{entry.key.spec} gives 112-bit security, which NIST SP 800-57 "
                           "accepts only through 2030; move to rsa-3072 or rsa-4096")
    if entry.key.spec not in NIST_APPROVED:
        return ATTENTION, (f"{entry.key.spec} is not among the NIST-approved algorithms this "
                           "report checks against (FIPS 186-5, 197, 198-1, 203, 204)")
    return PASS, f"{entry.key.spec} is a NIST-approved algorithm"


def _in_use(entry: InventoryEntry) -> bool:
    return entry.key.state is KeyState.ENABLED


def _crypto_period(entry: InventoryEntry, ev: Evidence) -> tuple[str, str]:
    period = entry.period
    activated = primary_activated_at(entry.key)
    days = period.seconds // 86400
    where = "the key's own" if period.overridden else (
        f"NIST Table 1 row {period.default.table_row}")
    if not _in_use(entry) or activated is None:
        return PASS, f"not in use ({entry.key.state.value}); crypto-period {days} days ({where})"
    if ev.now - activated > period.seconds:
        return FAIL, (f"primary version {entry.key.primary_version} has outlived its "
                      f"crypto-period of {days} days ({where})")
    return PASS, (f"primary version {entry.key.primary_version} is within its crypto-period "
                  f"of {days} days ({where}) until {rfc3339(activated + period.seconds)}")


def _rotation(entry: InventoryEntry, ev: Evidence) -> tuple[str, str]:
    key, period = entry.key, entry.period
    if not _in_use(entry):
        return PASS, f"not in use ({key.state.value})"
    if key.next_rotation is not None and key.next_rotation <= ev.now:
        return FAIL, f"rotation was due {rfc3339(key.next_rotation)} and has not happened"
    if key.rotation_period is None:
        return ATTENTION, ("no automatic rotation: rotate by hand before the crypto-period "
                           "ends")
    if key.rotation_period > period.seconds:
        return ATTENTION, (f"rotates every {key.rotation_period // 86400} days, longer than "
                           f"its crypto-period of {period.seconds // 86400} days")
    return PASS, f"rotates automatically every {key.rotation_period // 86400} days"


def _key_change(entry: InventoryEntry, ev: Evidence) -> tuple[str, str]:
    results = [_crypto_period(entry, ev), _rotation(entry, ev)]
    status = worst(tuple(s for s, _ in results))
    return status, "; ".join(reason for s, reason in results if s == status)


def _retirement(entry: InventoryEntry, ev: Evidence) -> tuple[str, str]:
    found = {f.flag: f.detail for f in entry.findings}
    if ROTATION_OVERDUE in found:
        return FAIL, f"past its crypto-period or rotation date and not replaced: " \
                     f"{found[ROTATION_OVERDUE]}"
    notes = [found[flag] for flag in (COMPROMISED_IN_USE, DEACTIVATED_IN_USE) if flag in found]
    if notes:
        return ATTENTION, "; ".join(notes)
    return PASS, ("retired versions only unprotect (never protect) and none is still asked "
                  "to open data")


def _storage(entry: InventoryEntry, ev: Evidence) -> tuple[str, str]:
    leftover = ev.undestroyed.get(entry.key.name)
    if leftover:
        return FAIL, (f"version(s) {', '.join(map(str, leftover))} are marked destroyed but "
                      "their material is still stored")
    return PASS, f"material stored only as {BARRIER} barrier ciphertext"


def _destruction(entry: InventoryEntry, ev: Evidence) -> tuple[str, str]:
    status, reason = _storage(entry, ev)
    if status == FAIL:
        return status, reason
    key = entry.key
    if key.state is KeyState.DESTROYED:
        return PASS, "destroyed: material erased, metadata kept as a tombstone"
    if key.state is KeyState.DESTROY_SCHEDULED:
        return PASS, f"destruction scheduled for {rfc3339(key.destroy_at)}"
    kept = [v.version for v in key.versions if v.state is VersionState.COMPROMISED]
    if kept:
        return ATTENTION, (f"compromised version(s) {', '.join(map(str, kept))} still hold "
                           "material: schedule deletion once their data is re-encrypted")
    return PASS, "no version awaits destruction"


def _documented(entry: InventoryEntry, _ev: Evidence) -> tuple[str, str]:
    missing = [what for what, value in (("owner", entry.key.owner),
                                        ("description", entry.key.description))
               if not (value or "").strip()]
    if missing and entry.key.state is not KeyState.DESTROYED:
        return ATTENTION, f"no {' and no '.join(missing)}: the key's usage is not documented"
    return PASS, "owner and description document the key's usage"


def _substitution(entry: InventoryEntry, ev: Evidence) -> tuple[str, str]:
    if entry.key.origin != "generated":
        return ATTENTION, (f"origin {entry.key.origin}: material came from outside; confirm "
                           "who supplied it")
    return PASS, "generated here; ciphertexts and stored material are bound to its key id"


# -- control-level checks -------------------------------------------------------------------


def _split_knowledge(ev: Evidence) -> tuple[str, str]:
    if ev.threshold < 2:
        return FAIL, (f"a single unseal share (threshold {ev.threshold} of {ev.shares}) "
                      "reconstructs the root key: no split knowledge")
    exportable = any(e.key.exportable and e.key.state is not KeyState.DESTROYED
                     for e in ev.inventory.entries)
    if ev.dual_approvals < 1:
        if exportable:
            return FAIL, ("dual control is off while exportable keys exist: one person can "
                          "take key material out")
        return ATTENTION, ("split knowledge holds (root key in shares) but dual control is "
                           "off: one person can revoke or schedule destruction of keys")
    missing = sorted(KEY_ACTIONS - ev.dual_operations)
    if missing:
        return ATTENTION, (f"dual control ({ev.dual_approvals} approval(s)) does not cover "
                           f"{', '.join(missing)}")
    return PASS, (f"root key split {ev.threshold}-of-{ev.shares}; dual control with "
                  f"{ev.dual_approvals} approval(s) covers {', '.join(sorted(KEY_ACTIONS))}")


def _custodians(ev: Evidence) -> tuple[str, str]:
    if ev.threshold < 2:
        return FAIL, "one custodian alone can reconstruct the root key"
    if not ev.custodians_named:
        return ATTENTION, "unseal shares are not assigned to named custodians"
    return PASS, (f"{ev.shares} named custodians each hold one share; {ev.threshold} are "
                  "needed and none holds the key in the clear")


def _root_key_split(ev: Evidence) -> tuple[str, str]:
    if ev.threshold < 2:
        return FAIL, (f"a single unseal share (threshold {ev.threshold}) reconstructs the root "
                      "key that protects every stored key")
    return PASS, (f"stored keys are encrypted under the barrier, whose keyring is encrypted "
                  f"under a root key held only as {ev.threshold}-of-{ev.shares} shares")


def _transport(ev: Evidence) -> tuple[str, str]:
    if ev.tls:
        return PASS, "the API is served over TLS"
    if is_loopback(ev.listen_host):
        return ATTENTION, ("plain HTTP on a loopback address: only local clients (or a TLS "
                           "proxy in front) can reach it; confirm the proxy")
    return FAIL, f"plain HTTP on {ev.listen_host}: keys and data cross the network unencrypted"


def _acknowledgement(ev: Evidence) -> tuple[str, str]:
    """Custodians acknowledged their shares (a first proof) and still hold them (drills);
    judged on the quorum margin, which counts acknowledged shares only. A custodian who
    never acknowledged is named: their share may be lost already."""
    margin = ev.custodian_margin
    if margin is None or ev.custodians_verified is None:
        return ATTENTION, "custodian drills are not recorded"
    seen = (f"{ev.custodians_verified} of {ev.shares} custodians proved their share (by a "
            f"drill or at unseal) in the last {ev.drill_window_days} days; "
            f"{ev.threshold} are needed")
    missing = ev.custodians_unacknowledged
    unacknowledged = (f"not yet acknowledged by: {', '.join(missing)}" if missing else "")
    if margin < 0:
        return FAIL, ev.custodian_warning or seen
    if margin == 0:
        return ATTENTION, ev.custodian_warning or seen
    if missing:
        return ATTENTION, f"{seen}: quorum margin {margin}; {unacknowledged}"
    return PASS, f"{seen}: quorum margin {margin}; every custodian acknowledged their share"


def _structural(text: str) -> Callable[[Evidence], tuple[str, str]]:
    return lambda _ev: (PASS, text)


def _seal_evidence(ev: Evidence) -> tuple[str, ...]:
    return (f"root key: Shamir {ev.threshold}-of-{ev.shares} (Feldman-verifiable shares), "
            "in memory only while unsealed",
            f"custodians: {', '.join(ev.custodians) or 'none'}",
            f"shares handed out sealed to their custodian's own key: {ev.shares_sealed} of "
            f"{ev.shares}",
            "not yet acknowledged: " + (', '.join(ev.custodians_unacknowledged) or 'none'))


def _storage_evidence(ev: Evidence) -> tuple[str, ...]:
    return (f"key material stored only as {BARRIER} barrier ciphertext, bound to its key id "
            "and version", "the barrier keyring is encrypted under the root key",
            f"one store: {ev.storage} database", *_seal_evidence(ev))


def _dual_evidence(ev: Evidence) -> tuple[str, ...]:
    state = (f"{ev.dual_approvals} approval(s) for {', '.join(sorted(ev.dual_operations))}"
             if ev.dual_approvals else "off")
    return (f"dual control: {state}", *_seal_evidence(ev))


@dataclass(frozen=True)
class ControlSpec:
    """One control: what it is, how it is judged on its own, and (if about keys) per key."""

    id: str
    framework: str
    requirement: str
    title: str  # paraphrases the requirement; the standard is the reference
    judge: Callable[[Evidence], tuple[str, str]]
    evidence: Callable[[Evidence], tuple[str, ...]]
    per_key: KeyCheck | None = None


def _says(*lines: str) -> Callable[[Evidence], tuple[str, ...]]:
    return lambda _ev: lines


def _specs_in_use(ev: Evidence) -> tuple[str, ...]:
    return ("specs in use: " + ", ".join(sorted({e.key.spec for e in ev.inventory.entries})),)


# The controls, in report order.
CATALOGUE: tuple[ControlSpec, ...] = (
    ControlSpec(
        "pci-3.6.1", PCI, "3.6.1",
        "Keys protecting stored data are protected against disclosure and misuse",
        _custodians, _storage_evidence, _exportable),
    ControlSpec(
        "pci-3.6.1.1", PCI, "3.6.1.1",
        "The cryptographic architecture is documented (algorithms, keys, strength, expiry, "
        "usage)",
        _structural("the inventory documents every key's algorithm, crypto-period, expiry "
                    "and use"),
        _says("GET /v1/reports/inventory lists every key with spec, crypto-period and use"),
        _documented),
    ControlSpec(
        "pci-3.6.1.2", PCI, "3.6.1.2",
        "Secret and private keys are stored encrypted under a key-encrypting key at least "
        "as strong, or as key shares",
        _root_key_split, _storage_evidence, _storage),
    ControlSpec(
        "pci-3.6.1.3", PCI, "3.6.1.3",
        "Access to cleartext key components is restricted to the fewest custodians",
        _custodians, _seal_evidence),
    ControlSpec(
        "pci-3.6.1.4", PCI, "3.6.1.4", "Keys are stored in the fewest possible locations",
        _structural("one encrypted store; material is used in place"), _storage_evidence,
        _exportable),
    ControlSpec(
        "pci-3.7.1", PCI, "3.7.1", "Strong keys are generated",
        _structural("keys are generated inside the service from the OS CSPRNG"),
        _specs_in_use, _generated),
    ControlSpec(
        "pci-3.7.2", PCI, "3.7.2", "Keys are distributed securely", _transport,
        _says("keys are used in place over the API; only data keys (datakey) and exportable "
              "keys leave it"),
        _exportable),
    ControlSpec(
        "pci-3.7.3", PCI, "3.7.3", "Keys are stored securely",
        _root_key_split, _storage_evidence, _storage),
    ControlSpec(
        "pci-3.7.4", PCI, "3.7.4", "Keys are changed at the end of their crypto-period",
        _structural("every spec has a crypto-period (NIST SP 800-57 Table 1) unless the key "
                    "sets its own; rotation is scheduled per key"),
        _says("crypto-periods: keys/cryptoperiods.py"), _key_change),
    ControlSpec(
        "pci-3.7.5", PCI, "3.7.5",
        "Keys are retired or replaced at the end of their crypto-period, when weakened, or "
        "when compromised",
        _structural("retired versions never protect new data (the state machine refuses it)"),
        _says("revoked-compromised versions refuse decryption except through the audited "
              "override"),
        _retirement),
    ControlSpec(
        "pci-3.7.6", PCI, "3.7.6",
        "Manual cleartext key operations use split knowledge and dual control",
        _split_knowledge, _dual_evidence),
    ControlSpec(
        "pci-3.7.7", PCI, "3.7.7", "Unauthorized substitution of keys is prevented",
        _structural("key ids are random UUIDs; ciphertexts name key and version in "
                    "authenticated headers; stored material is bound to its path"),
        _says(), _substitution),
    ControlSpec(
        "pci-3.7.8", PCI, "3.7.8", "Key custodians acknowledge their responsibilities",
        _acknowledgement, _seal_evidence),
    ControlSpec(
        "pci-3.7.9", PCI, "3.7.9", "Customers receive guidance when keys are shared with them",
        _structural("no key is shared in the clear except data keys and exportable keys"),
        _says(), _exportable),
    ControlSpec(
        "nist-generation", NIST, "key generation",
        "Keys are generated with approved algorithms and an approved random source",
        _structural("material comes from the OS CSPRNG through pyca/cryptography and "
                    "libsodium"),
        _specs_in_use, _approved),
    ControlSpec(
        "nist-storage", NIST, "key storage", "Keys are protected in storage",
        _root_key_split, _storage_evidence, _storage),
    ControlSpec(
        "nist-distribution", NIST, "key distribution", "Keys are protected in transit",
        _transport, _says(), _exportable),
    ControlSpec(
        "nist-crypto-period", NIST, "crypto-period (section 5.3, Table 1)",
        "Each key is used only within its crypto-period",
        _structural("every key has a crypto-period"), _says(), _crypto_period),
    ControlSpec(
        "nist-rotation", NIST, "key rotation", "Keys are replaced before their crypto-period ends",
        _structural("rotation keeps old versions for unprotect only"), _says(), _rotation),
    ControlSpec(
        "nist-retirement", NIST, "key retirement",
        "Retired and compromised keys are no longer used",
        _structural("deactivated and compromised versions never protect"), _says(),
        _retirement),
    ControlSpec(
        "nist-destruction", NIST, "key destruction", "Keys no longer needed are destroyed",
        _structural("destruction erases material after a cancellable waiting period"),
        _says(), _destruction),
    ControlSpec(
        "nist-split-knowledge", NIST, "split knowledge and dual control",
        "No single person can reconstruct the root key or act alone on keys",
        _split_knowledge, _dual_evidence),
    ControlSpec(
        "nist-custodian-acknowledgement", NIST, "custodian acknowledgement",
        "Key custodians acknowledge their responsibilities",
        _acknowledgement, _seal_evidence),
)
