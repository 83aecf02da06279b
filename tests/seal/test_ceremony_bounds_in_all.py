"""Issue 12, "anonymous callers cannot disrupt a ceremony": the parts the F14 tests left out.

``test_ceremony_abuse.py`` shows each bound per address; these show the bounds over
all addresses together (many addresses cannot make the service do unbounded work),
for the automatic unseal and for break glass, and that Vault's spelling of the
unseal reset (``bao operator unseal -reset``) needs the round's nonce like the
native one.
"""

from __future__ import annotations

import pytest

from conftest import CoreFactory
from http_helpers import assert_error, ok
from inprocess_server import InProcessServer
from keyquorum.errors import RateLimited
from keyquorum.service.generate_root import GenerateRoot


def test_automatic_unseal_attempts_are_bounded_in_all_as_well(make_core: CoreFactory
                                                              ) -> None:
    limit = make_core().seal_set.auto_limit
    for n in range(3):  # three addresses, one try each: no address is over its own bound
        limit.take(f"198.51.100.{n}")
    with pytest.raises(RateLimited, match="in all") as refused:
        limit.take("203.0.113.10")  # a fourth address, never seen, waits too
    assert refused.value.details["retry_after"] >= 1


def test_break_glass_refusals_are_bounded_in_all_as_well(make_core: CoreFactory) -> None:
    failures = GenerateRoot(make_core()).failures
    for n in range(120):  # 120 addresses, one refusal each
        failures.check(f"10.0.{n // 250}.{n % 250}")
        failures.note(f"10.0.{n // 250}.{n % 250}")
    with pytest.raises(RateLimited, match="in all"):
        failures.check("203.0.113.10")
    # Successes are never counted: an address under its bound that only succeeds is
    # refused only while everyone's refusals are over the bound.
    fresh = GenerateRoot(make_core()).failures
    for _ in range(50):
        fresh.check("203.0.113.10")
    with pytest.raises(RateLimited, match="from this address"):
        for _ in range(11):
            fresh.check("198.51.100.7")
            fresh.note("198.51.100.7")


def test_vaults_unseal_reset_needs_the_nonce_too(fresh_inprocess: InProcessServer) -> None:
    server = fresh_inprocess
    server.init(shares=3, threshold=2)
    vault = server.anonymous()
    first = ok(vault.put("/v1/sys/unseal", content=f'{{"key": "{server.shares[0]}"}}'))
    assert first["progress"] == 1 and first["nonce"]
    for body in ('{"reset": true}', '{"reset": true, "nonce": "' + "0" * 32 + '"}'):
        assert_error(vault.put("/v1/sys/unseal", content=body), 403, "forbidden")
        assert ok(vault.get("/v1/sys/seal-status"))["progress"] == 1  # kept
    done = ok(vault.put("/v1/sys/unseal", content=f'{{"reset": true, "nonce": '
                                                  f'"{first["nonce"]}"}}'))
    assert done["progress"] == 0
