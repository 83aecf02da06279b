"""Review F14: anonymous callers cannot disrupt the seal ceremonies.

- an anonymous ``{"reset": true}`` no longer throws away the custodians' unseal progress:
  it needs the nonce the round's submitters were given (never shown in seal-status);
- wrong passphrases from one address slow that address down, not the operator typing the
  right one from another, and all addresses together are bounded;
- one address cannot hold every open challenge of a custodian; all together are bounded;
- ``{"auto": true}`` (HSM and KMS calls, no token) is rate limited.
"""

from __future__ import annotations

import pytest

from conftest import CoreFactory
from http_helpers import assert_error, ok
from inprocess_server import InProcessServer
from keyquorum.crypto.vss import PROOF_SIZE
from keyquorum.errors import InvalidProof, RateLimited, WrongPassphrase
from keyquorum.seal.passphrase_throttle import PassphraseThrottle
from keyquorum.service.context import RequestContext
from keyquorum.service.custodians import CLIENT_CHALLENGES


def test_anonymous_reset_needs_the_nonce_given_to_the_submitters(
        fresh_inprocess: InProcessServer) -> None:
    server = fresh_inprocess
    server.init(shares=3, threshold=2)
    anyone = server.anonymous()
    first = ok(anyone.post("/v1/sys/unseal", json={"share": server.shares[0]}))
    nonce = first["nonce"]
    assert first["progress"] == 1 and len(nonce) == 32
    public = ok(anyone.get("/v1/sys/seal-status"))
    assert not public.get("nonce") and nonce not in str(public)  # (Vault shape: "")
    for body in ({"reset": True}, {"reset": True, "nonce": "0" * 32},
                 {"reset": True, "nonce": nonce[:-1] + ("0" if nonce[-1] != "0" else "1")}):
        assert_error(anyone.post("/v1/sys/unseal", json=body), 403, "forbidden")
        assert ok(anyone.get("/v1/sys/seal-status"))["progress"] == 1  # kept
    assert_error(anyone.post("/v1/sys/unseal", json={"share": server.shares[1],
                                                     "nonce": nonce}), 400, "invalid_request")
    # The custodians' own reset works, and the next round has a new nonce.
    assert ok(anyone.post("/v1/sys/unseal", json={"reset": True, "nonce": nonce})
              )["progress"] == 0
    again = ok(anyone.post("/v1/sys/unseal", json={"share": server.shares[1]}))
    assert again["nonce"] != nonce
    done = ok(anyone.post("/v1/sys/unseal", json={"share": server.shares[2]}))
    assert done["sealed"] is False and "nonce" not in done
    # Nothing to discard: a reset without a nonce is harmless and allowed.
    ok(server.client().post("/v1/sys/seal"))
    assert ok(anyone.post("/v1/sys/unseal", json={"reset": True}))["progress"] == 0


class Clock:
    def __init__(self) -> None:
        self.value = 1_000.0

    def __call__(self) -> float:
        return self.value


def _guess(throttle: PassphraseThrottle, client: str, right: bool = False) -> None:
    with throttle.attempt(client):
        if not right:
            raise WrongPassphrase()


def test_wrong_passphrases_from_one_address_do_not_lock_out_another() -> None:
    """The review: six anonymous wrong guesses (honouring Retry-After), then the right
    passphrase answered 429. Now the guesser's address waits; the operator's does not."""
    clock = Clock()
    throttle = PassphraseThrottle(clock, free_failures=3, global_failures=30)
    guesser, operator = "198.51.100.66", "203.0.113.10"
    for _ in range(6):  # three free guesses, then each one makes the guesser wait
        with pytest.raises(WrongPassphrase):
            _guess(throttle, guesser)
        if throttle.failures(guesser) > 3:
            with pytest.raises(RateLimited) as refused:
                _guess(throttle, guesser, right=True)  # even the right one must wait
            clock.value += refused.value.details["retry_after"]  # honouring Retry-After
    with pytest.raises(WrongPassphrase):
        _guess(throttle, guesser)
    _guess(throttle, operator, right=True)  # the operator, from elsewhere, at once
    with pytest.raises(RateLimited):
        _guess(throttle, guesser)


def test_wrong_passphrases_from_every_address_together_are_bounded() -> None:
    clock = Clock()
    throttle = PassphraseThrottle(clock, free_failures=3, global_failures=10,
                                  global_window=60)
    for n in range(10):  # ten addresses, one guess each: no address is slowed alone
        with pytest.raises(WrongPassphrase):
            _guess(throttle, f"198.51.100.{n}")
    with pytest.raises(RateLimited) as refused:
        _guess(throttle, "198.51.100.200")
    assert "from all addresses" in refused.value.message
    clock.value += refused.value.details["retry_after"]
    _guess(throttle, "203.0.113.10", right=True)


def test_one_address_cannot_hold_every_open_challenge_of_a_custodian(
        make_core: CoreFactory) -> None:
    core = make_core()
    config = core.initialized_seal_config()
    registry = core.custodian_registry

    def ask(client: str) -> dict:
        return registry.challenge(config, "share-1", RequestContext(request_id="t",
                                                                    client=client))

    for _ in range(4):
        ask("198.51.100.66")
    with pytest.raises(RateLimited, match="from this address"):
        ask("198.51.100.66")
    ask("203.0.113.10")  # the custodian still gets one (the custodian's cap is 5)
    with pytest.raises(RateLimited, match="for this custodian"):
        ask("203.0.113.11")
    # In all: 64 open challenges at most, whichever addresses ask (20 custodians x 5
    # per custodian would allow 100).
    many = make_core(initialized=False)
    many.init(20, 2)
    config = many.initialized_seal_config()
    opened = 0
    with pytest.raises(RateLimited, match="in all"):
        for n in range(100):
            many.custodian_registry.challenge(config, f"share-{n % 20 + 1}", RequestContext(
                request_id="t", client=f"10.0.0.{n}"))
            opened += 1
    assert opened == 64


def test_automatic_unseal_attempts_are_rate_limited(inprocess_server: InProcessServer) -> None:
    server = inprocess_server
    ok(server.client().post("/v1/sys/seal"))
    anyone = server.anonymous()
    assert_error(anyone.post("/v1/sys/unseal", json={"auto": True}), 503, "sealed")
    refused = anyone.post("/v1/sys/unseal", json={"auto": True})
    assert_error(refused, 429, "rate_limited")
    assert int(refused.headers["Retry-After"]) >= 1
    assert server.core is not None
    server.core.clock.advance(31)  # the test clock (its HTTP route needs an unsealed server)
    assert_error(anyone.post("/v1/sys/unseal", json={"auto": True}), 503, "sealed")


def test_refused_proofs_do_not_free_an_address_to_hold_every_challenge_slot(
        make_core: CoreFactory) -> None:
    """A proof refused before its challenge was spent (wrong size, or sent under another
    custodian's name) gave the address its open-challenge allowance back while the
    challenge still held one of the custodian's five slots: one address could then
    hold all five and lock the custodian out of drills and key registration."""
    core = make_core()
    config = core.initialized_seal_config()
    registry = core.custodian_registry
    attacker = RequestContext(request_id="t", client="198.51.100.66")
    for n in range(CLIENT_CHALLENGES + 1):
        challenge = registry.challenge(config, "share-1", attacker)
        name, proof = ("share-1", b"short") if n % 2 else ("share-2", bytes(PROOF_SIZE))
        with pytest.raises(InvalidProof):
            registry.prove(config, name, challenge["challenge_id"], proof, attacker)
    registry.challenge(config, "share-1", RequestContext(request_id="t", client="203.0.113.10"))
