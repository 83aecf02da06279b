"""The backup format, the consistent snapshot and the canary check, without a server."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from sqlalchemy import func, select

from keyquorum.backup.canaries import check_canaries
from keyquorum.backup.format import (
    BackupHeader,
    InvalidBackup,
    open_body,
    read_header,
    seal_backup,
)
from keyquorum.backup.restore import restore
from keyquorum.backup.writer import start_backup
from keyquorum.config import Settings
from keyquorum.runtime.wiring import build_core
from keyquorum.seal.seal_set import Unlock
from keyquorum.service.context import RequestContext
from keyquorum.service.lifecycle import KeyLifecycle, NewKey
from keyquorum.storage.engine import migrate, open_engine, sqlite_url
from keyquorum.storage.schema import policies
from keyquorum.storage.snapshot import consistent_read

ROOT = bytes(range(32))


def _header(segment_size: int = 16) -> BackupHeader:
    return BackupHeader(segment_size, {"format": "keyquorum-backup", "seals": {}, "tables": {},
                                       "canaries": 0}, os.urandom(32), os.urandom(7))


def _roundtrip(body: bytes, root: bytes = ROOT, segment_size: int = 16) -> bytes:
    data = b"".join(seal_backup(_header(segment_size), ROOT, [body[:5], body[5:]]))
    src = io.BytesIO(data)
    header, raw = read_header(src)
    out = io.BytesIO()
    open_body(src, header, raw, root, out)
    return out.getvalue()


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 32, 100])
def test_bodies_of_every_shape_round_trip(size: int) -> None:
    body = os.urandom(size)
    assert _roundtrip(body) == body


def test_segments_follow_the_kqst_layout() -> None:
    # 32 bytes in 16-byte segments: two full segments, the second flagged last (no empty one).
    data = b"".join(seal_backup(_header(16), ROOT, [os.urandom(32)]))
    _parsed, raw = read_header(io.BytesIO(data))
    assert len(data) == len(raw) + 2 * (16 + 16)


def test_another_root_key_cannot_open_it() -> None:
    with pytest.raises(InvalidBackup):
        _roundtrip(b"body", root=bytes(32))


def test_not_a_backup_says_so() -> None:
    with pytest.raises(InvalidBackup, match="not a keyquorum backup"):
        read_header(io.BytesIO(b"KQST" + bytes(100)))


def test_the_snapshot_sees_no_write_made_after_it_began(tmp_path: Path) -> None:
    engine = open_engine(sqlite_url(tmp_path))
    migrate(engine)
    count = select(func.count()).select_from(policies)
    with consistent_read(engine) as snapshot:
        assert snapshot.execute(count).scalar() == 0
        with engine.begin() as writer:
            writer.execute(policies.insert().values(name="p", rules="[]", created_at=0.0,
                                                    updated_at=0.0))
        assert snapshot.execute(count).scalar() == 0  # still the snapshot's view
    with engine.connect() as conn:
        assert conn.execute(count).scalar() == 1
    engine.dispose()


def test_a_canary_that_no_longer_answers_fails_the_check(tmp_path: Path) -> None:
    (tmp_path / "live").mkdir()
    core = build_core(Settings(data_dir=tmp_path / "live"))
    shares = core.init(3, 2)["shares"]
    for share in shares[:2]:
        core.unseal(share)
    lifecycle = KeyLifecycle(core)
    ctx = RequestContext(request_id="t", client=None)
    ctx.identity = core.tokens.create_root(created_by="t")[1]
    lifecycle.create(ctx, NewKey("u/aes", "aes-256-gcm"))
    lifecycle.create(ctx, NewKey("u/mac", "hmac-sha512"))
    made = start_backup(core, segment_size=64)
    (tmp_path / "b.kqbk").write_bytes(b"".join(made.chunks))
    core.seal()
    core.engine.dispose()

    result = restore(tmp_path / "b.kqbk", tmp_path / "copy", Unlock(shares=tuple(shares[1:])))
    assert [c["kind"] for c in result.canaries] == ["decrypt", "mac"]
    copy = build_core(Settings(data_dir=tmp_path / "copy"))
    for share in shares[1:]:
        copy.unseal(share)
    assert all(r.ok for r in check_canaries(copy, result.canaries))
    wrong = [dict(c) for c in result.canaries]
    wrong[0]["plaintext"] = "AAAA" + wrong[0]["plaintext"][4:]
    wrong[1]["mac"] = "AAAA" + wrong[1]["mac"][4:]
    assert [r.ok for r in check_canaries(copy, wrong)] == [False, False]
    wrong[0]["key_id"] = "00000000-0000-0000-0000-000000000000"
    failed = check_canaries(copy, wrong)[0]
    assert not failed.ok and failed.error
    copy.seal()
    copy.engine.dispose()
