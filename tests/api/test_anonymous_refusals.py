"""An anonymous flood is counted per client, not written one record each (review F12).

The review's 3,000 token-less ``POST /v1/keys/<'z' * 120><i>/encrypt`` requests wrote
3,000 audit records (+2.9 MiB) and 3,000 ``keyquorum_operations_total`` series
labelled with names nobody validated. Now a client's first refusal in a window is
recorded at once (so an attack shows immediately), the rest of the window is one
summary record with the count, and no record or series names the key.
"""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from keyquorum.api.anonymous import SUMMARY_OPERATION, WINDOW_SECONDS
from keyquorum.api.front import Front
from keyquorum.clock import OffsetClock
from keyquorum.service.core import Core
from keyquorum.storage.schema import audit_records

pytestmark = pytest.mark.anyio

FLOOD = 3000


def audit_rows(core: Core) -> int:
    with core.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(audit_records)).scalar_one())


async def operation_series(api: httpx.AsyncClient) -> list[str]:
    scrape = await api.get("/metrics")
    assert scrape.status_code == 200, scrape.text
    return [line for line in scrape.text.splitlines()
            if line.startswith("keyquorum_operations_total{")]


def series_names(lines: list[str]) -> list[str]:
    """The series (name and labels) of exposition lines, without their values."""
    return [line.rpartition(" ")[0] for line in lines]


async def flood(anonymous_api: httpx.AsyncClient) -> None:
    """Half with no token, half with a token that does not exist."""
    for i in range(FLOOD):
        headers = {"Authorization": "Bearer kq_not-a-token"} if i % 2 else {}
        answer = await anonymous_api.post(f"/v1/keys/{'z' * 120}{i}/encrypt",
                                          json={"plaintext": "aGk="}, headers=headers)
        assert answer.status_code == 401, answer.text


async def test_an_anonymous_flood_adds_a_handful_of_audit_records_and_no_metrics_series(
        api: httpx.AsyncClient, anonymous_api: httpx.AsyncClient, core: Core) -> None:
    series_before = await operation_series(api)
    rows_before = audit_rows(core)

    await flood(anonymous_api)

    assert audit_rows(core) - rows_before <= 3  # today: 1, the first refusal
    new_series = set(series_names(await operation_series(api))) - set(
        series_names(series_before))
    assert len(new_series) <= 3, new_series  # today: the refusals' and the first scrape's
    assert all('key=""' in series for series in new_series), new_series


async def test_the_window_closes_with_one_summary_record_counting_the_refusals(
        api: httpx.AsyncClient, anonymous_api: httpx.AsyncClient, core: Core,
        clock: OffsetClock, running_app: Front) -> None:
    await flood(anonymous_api)

    clock.advance(WINDOW_SECONDS + 1)
    await running_app.services.runner.flush_anonymous()

    first = (await api.get("/v1/audit", params={"operation": "encrypt"})).json()["records"]
    summaries = (await api.get("/v1/audit", params={"operation": SUMMARY_OPERATION})
                 ).json()["records"]
    assert len(summaries) == 1, summaries
    summary = summaries[0]
    # the first refusal was recorded on its own when it happened; the summary counts the rest
    assert len(first) == 1
    assert first[0]["key"] is None and first[0]["error_code"] == "unauthenticated"
    assert int(summary["detail"]["items"]) == FLOOD - 1
    assert summary["detail"]["codes"] == f"unauthenticated={FLOOD - 1}"
    assert summary["key"] is None and summary["outcome"] == "denied"
    assert summary["client"] == first[0]["client"]
