"""Custodian key pairs for tests: what `keyquorum custodian keygen` makes, held in memory.

A rekey seals every new share to its custodian's key and answers envelopes only;
a test plays each custodian: it gives the public keys (``keys_body``, as the
request's ``custodian_keys``) and opens the envelopes with the private halves
(``open_all``), as each custodian's machine would.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from keyquorum.crypto import kem
from keyquorum.seal import custodian_key
from keyquorum.seal.share_envelope import ShareEnvelope, open_share


class Custodians:
    """One key pair per custodian name."""

    def __init__(self, names: Iterable[str]) -> None:
        self.pairs = {name: custodian_key.generate(name) for name in names}

    def add(self, name: str) -> None:
        self.pairs[name] = custodian_key.generate(name)

    def private(self, name: str) -> kem.KemKey:
        return kem.KemKey(custodian_key.ALGORITHM, self.pairs[name].private)

    def keys_body(self, names: Sequence[str] | None = None) -> dict[str, str]:
        """``custodian_keys`` for a request: name -> public key PEM."""
        chosen = self.pairs if names is None else {n: self.pairs[n] for n in names}
        return {name: pair.public_pem for name, pair in chosen.items()}

    def fingerprint(self, name: str) -> str:
        return self.pairs[name].fingerprint

    def open(self, item: Mapping[str, Any]) -> str:
        """One ``encrypted_shares`` item opened by its custodian."""
        envelope = ShareEnvelope.from_text(item["envelope"])
        return open_share(envelope, self.private(str(item["custodian"])))

    def open_all(self, answer: Mapping[str, Any]) -> list[str]:
        """Every share of an init or rekey answer, in share order (each by its custodian)."""
        items = sorted(answer["encrypted_shares"], key=lambda item: item["index"])
        return [self.open(item) for item in items]
