"""Audit page tokens: the server accepts exactly the tokens it could have issued.

Review F3c: a 19-digit token of 2^63 or more reached SQLite as an integer it cannot
bind and answered 500. Any token that is not ``str(id)`` of a possible record is
400 ``invalid_request`` "page_token is not one this server issued".
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from keyquorum.audit import AuditLog, AuditRecord
from keyquorum.errors import InvalidRequest
from keyquorum.storage.engine import migrate, open_engine, sqlite_url
from kq_inprocess import inprocess_app

NOT_ISSUED = [
    "9223372036854775808",  # 2^63: one past the id column's range (was a 500)
    "18446744073709551615",  # 2^64 - 1
    "99999999999999999999",
    "0",  # ids start at 1
    "-1", "+5", " 5", "5 ", "5\n", "05", "1e3", "0x10", "",
    "١٢",  # Arabic-Indic digits: str.isdigit() says yes, but the server never writes them
    "²",  # a superscript two: isdigit() is True, int() refuses it
    "abc",
]


@pytest.fixture
def audit(tmp_path: Path) -> Iterator[AuditLog]:
    engine: Engine = open_engine(sqlite_url(tmp_path))
    migrate(engine)
    log = AuditLog(engine)
    log.start()
    for n in range(5):
        log.write_sync(AuditRecord(time=1_700_000_000.0 + n, request_id=f"r{n}",
                                   identity=None, operation="encrypt", key="app/k",
                                   key_version=1, outcome="ok", error_code=None, client=None))
    yield log
    log.stop(timeout=10)
    engine.dispose()


@pytest.mark.parametrize("token", NOT_ISSUED)
def test_a_token_the_server_never_issues_is_invalid_request(audit: AuditLog, token: str) -> None:
    with pytest.raises(InvalidRequest, match="page_token is not one this server issued"):
        audit.query(limit=2, page_token=token)


def test_the_largest_token_of_the_documented_shape_is_still_a_token(audit: AuditLog) -> None:
    """Tokens are ids below 10^18 (18 digits): every one of that shape resumes a page."""
    records, _next = audit.query(limit=2, page_token="9" * 18)
    assert [r.request_id for r in records] == ["r4", "r3"]


def test_issued_tokens_page_through_every_record_once(audit: AuditLog) -> None:
    seen: list[str] = []
    token: str | None = None
    while True:
        records, token = audit.query(limit=2, page_token=token)
        seen += [r.request_id for r in records]
        if token is None:
            break
    assert seen == ["r4", "r3", "r2", "r1", "r0"]


def test_audit_route_answers_400_for_a_token_past_the_id_range(tmp_path: Path) -> None:
    with inprocess_app(tmp_path / "data") as kq:
        for token in ("9223372036854775808", "99999999999999999999", "²"):
            answer = kq.http.get("/v1/audit", params={"page_token": token})
            assert answer.status_code == 400, answer.text
            # refused by the documented pattern before the log sees it
            assert answer.json()["error"]["code"] == "invalid_request"
            assert answer.json()["error"]["message"].startswith("page_token")
        assert kq.http.get("/v1/audit", params={"limit": 1}).status_code == 200
