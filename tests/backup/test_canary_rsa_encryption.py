"""A backup canary for an RSA encryption key: made with the public half (as a client
encrypts), answered only by the private half; a changed canary fails."""

from __future__ import annotations

from pathlib import Path

from keyquorum.backup.canaries import check_canaries, make_canaries
from keyquorum.config import Settings
from keyquorum.runtime.wiring import build_core
from keyquorum.service.context import RequestContext
from keyquorum.service.lifecycle import KeyLifecycle, NewKey


def test_rsa_encryption_key_canary_round_trips_and_catches_a_change(tmp_path: Path) -> None:
    core = build_core(Settings(data_dir=tmp_path))
    shares = core.init(3, 2)["shares"]
    for share in shares[:2]:
        core.unseal(share)
    ctx = RequestContext(request_id="t", client=None)
    ctx.identity = core.tokens.create_root(created_by="t")[1]
    KeyLifecycle(core).create(ctx, NewKey("u/rsa-enc", "rsa-2048", purpose="encrypt"))
    canaries = make_canaries(core, "backup-1")
    assert [c["kind"] for c in canaries] == ["decrypt-oaep"]
    assert all(r.ok for r in check_canaries(core, canaries))
    changed = dict(canaries[0])
    changed["plaintext"] = "AAAA" + changed["plaintext"][4:]
    assert [r.ok for r in check_canaries(core, [changed])] == [False]
    core.seal()
    core.engine.dispose()
