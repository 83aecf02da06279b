"""Who each new share is sealed to, at init and at rekey, and sealing them.

Each custodian's key comes from one of two places:

- **registered**: the custodian put it in their name themselves, with a proof of
  possession of their current share (``CustodianRegistry.register_key``);
- **given** in the ceremony's request (``custodian_keys``: init, where no share
  exists yet, and rekey start, for a newcomer or a custodian who lost their key),
  by the operator who runs it. Such a key is registered in the custodian's name
  when the ceremony completes (``init`` or ``rekey``), and the plan, its status
  and its audit record show every fingerprint, and which registered keys a rekey
  replaces, to approvers and to the custodians who submit shares to it.

Either way the custodian's CLI compares the fingerprint the server sealed their
share to with their own key file before trusting the share (``keyquorum custodian
decrypt-share``): an operator who gave their own key in a custodian's place gets
the share, but the custodian sees the mismatch on first use.

A rekey needs a key for every custodian of the new share set: it never answers a
share in the clear (review F11). Init without keys still answers plain shares
(there is nobody yet to have registered one); ``delivery`` says which.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Connection

from keyquorum.errors import CustodianKeyRequired, InvalidRequest
from keyquorum.seal import custodian_key
from keyquorum.seal.shamir import ShamirSealConfig
from keyquorum.seal.share_envelope import seal_share
from keyquorum.storage import custodians_repo as repo


@dataclass(frozen=True)
class Recipient:
    """The key one custodian's share is sealed to, and where it came from."""

    name: str
    public_pem: str
    fingerprint: str
    source: str  # registered | given
    replaces: str | None = None  # the registered key a given one replaces


def check_given(given: Mapping[str, str] | None, names: tuple[str, ...]) -> dict[str, str]:
    """The request's ``custodian_keys``, each a valid public key of a custodian in ``names``."""
    if not given:
        return {}
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise InvalidRequest(f"custodian_keys names no custodian of the share set: "
                             f"{', '.join(unknown)[:256]}")
    return {name: custodian_key.check_public_key(pem, name) for name, pem in given.items()}


def resolve(conn: Connection, names: tuple[str, ...],
            given: Mapping[str, str] | None) -> dict[str, Recipient]:
    """A key per custodian of ``names``: given in the request, else registered.

    ``CustodianKeyRequired`` names every custodian with neither.
    """
    checked = check_given(given, names)
    registered = repo.get_keys(conn, names)
    recipients: dict[str, Recipient] = {}
    for name in names:
        before = registered.get(name)
        if name in checked:
            pem = checked[name]
            print_ = custodian_key.fingerprint(pem)
            replaces = before.fingerprint if before and before.fingerprint != print_ else None
            recipients[name] = Recipient(name, pem, print_, "given", replaces)
        elif before is not None:
            recipients[name] = Recipient(name, before.public_key, before.fingerprint,
                                         "registered")
    missing = [name for name in names if name not in recipients]
    if missing:
        raise CustodianKeyRequired(
            "every custodian of the new share set needs a public key, so that no share is "
            "ever answered in the clear; none is registered or given for: "
            f"{', '.join(missing)[:512]}. Each custodian runs `keyquorum custodian keygen` "
            "and `keyquorum custodian register-key` with their current share, or the "
            "operator gives a newcomer's key (custodian_keys)")
    return recipients


def seal_all(config: ShamirSealConfig, texts: list[str],
             recipients: Mapping[str, Recipient]) -> dict[int, repo.Delivery]:
    """Each share text sealed to its custodian's key, by share index."""
    deliveries = {}
    for index, (name, text) in enumerate(zip(config.names, texts, strict=True), start=1):
        recipient = recipients[name]
        envelope = seal_share(text, recipient.public_pem, custodian=name, index=index,
                              generation=config.generation)
        deliveries[index] = repo.Delivery(recipient.fingerprint, envelope.to_text())
    return deliveries


def register_given(conn: Connection, recipients: Mapping[str, Recipient], now: float,
                   how: str) -> None:
    """Inside the ceremony's transaction: the keys the request gave become registered."""
    for recipient in recipients.values():
        if recipient.source == "given":
            repo.put_key(conn, repo.CustodianKeyRow(
                recipient.name, custodian_key.ALGORITHM, recipient.public_pem,
                recipient.fingerprint, now, how))


def describe(config: ShamirSealConfig, deliveries: Mapping[int, repo.Delivery]
             ) -> list[dict[str, object]]:
    """The answer's ``encrypted_shares``: ciphertexts and public facts only."""
    return [{"custodian": name, "index": index, "recipient": deliveries[index].recipient,
             "envelope": deliveries[index].envelope}
            for index, name in enumerate(config.names, start=1)]


def plan_keys(recipients: Mapping[str, Recipient]) -> dict[str, str]:
    """What approvers and the audit record see of the keys: one fingerprint each, and
    which registered keys the request replaces."""
    facts = {"recipients": ", ".join(f"{r.name}={r.fingerprint}"
                                     for r in recipients.values())[:1024]}
    replaced = [f"{r.name}: {r.replaces} -> {r.fingerprint}" for r in recipients.values()
                if r.replaces]
    if replaced:
        facts["keys_replaced"] = "; ".join(replaced)[:1024]
    return facts


def given_for_init(names: tuple[str, ...], given: Mapping[str, str] | None
                   ) -> dict[str, Recipient]:
    """At init, where nobody has registered anything yet: every custodian's key from the
    request, or none at all (then the shares are answered in the clear, once)."""
    checked = check_given(given, names)
    if not checked:
        return {}
    missing = [name for name in names if name not in checked]
    if missing:
        raise InvalidRequest("custodian_keys must give a key for every custodian, or none; "
                             f"missing: {', '.join(missing)[:512]}")
    return {name: Recipient(name, checked[name], custodian_key.fingerprint(checked[name]),
                            "given") for name in names}
