"""The overdue-rotation gauge uses each key's NIST Table 1 row: an RSA encryption key is a
key-transport key (2 years), an RSA signing key a signature key (1 year)."""

from __future__ import annotations

from keyquorum.clock import OffsetClock
from keyquorum.keys.cryptoperiods import YEAR
from keyquorum.metrics.collector import overdue_rotations
from keyquorum.service.context import RequestContext
from keyquorum.service.core import Core
from keyquorum.service.lifecycle import KeyLifecycle, NewKey


def test_rsa_encryption_keys_are_held_to_two_years_and_signing_keys_to_one(
        core: Core, clock: OffsetClock) -> None:
    ctx = RequestContext(request_id="t", client=None)
    ctx.identity = core.tokens.create_root(created_by="t")[1]
    lifecycle = KeyLifecycle(core)
    lifecycle.create(ctx, NewKey("m/rsa-enc", "rsa-2048", purpose="encrypt"))
    lifecycle.create(ctx, NewKey("m/rsa-sign", "rsa-2048"))
    assert overdue_rotations(core, clock.now()) == 0
    clock.advance(1.5 * YEAR)
    assert overdue_rotations(core, clock.now()) == 1  # the signing key only
    clock.advance(YEAR)
    assert overdue_rotations(core, clock.now()) == 2
