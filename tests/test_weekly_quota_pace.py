"""Quota pace in the weekly review and on the review page's index: each rep's latest
quota_pace signal in the store, shown even in a week with no pending proposal."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from alerts.store import Store
from alerts.web import review_app
from alerts.weekly import build_digest
from core.clock import ManualClock
from core.records import Signal, Subject
from core.settings import Settings
from tests.test_alignment_history import Recorder
from tests.test_alignment_web import WRITE_TOKEN, bearer, tables

NOW = datetime(2025, 6, 2, 6, tzinfo=timezone.utc)


def pace(rep: str, state: str, month: int, **figures: Any) -> Signal:
    evidence = {
        "year": 2025,
        "quota": 1_200_000.0,
        "sales_to_date": 300_000.0,
        "expected_to_date": 400_000.0,
        "gap": -100_000.0,
        "pace": 0.75,
        "attainment": 0.25,
        "projected_year_end": 900_000.0,
        "test": "year_to_date",
        **figures,
    }
    return Signal.make(
        kind="quota_pace",
        state=state,
        severity="info" if state == "cleared" else "warning",
        subject=Subject("rep", rep),
        evidence=evidence,
        detected_at=datetime(2025, month, 1, tzinfo=timezone.utc),
        emitted_at=datetime(2025, month, 1, 6, tzinfo=timezone.utc),
    )


def stored_paces(store: Store) -> Store:
    # R1 fell behind in March and is ahead since May: only the May signal counts.
    store.save_signal(pace("R1", "behind", 3, sales_to_date=111_111.0))
    store.save_signal(
        pace(
            "R1",
            "ahead",
            5,
            sales_to_date=654_321.0,
            expected_to_date=500_000.0,
            gap=154_321.0,
            pace=1.31,
            projected_year_end=1_570_370.0,
        )
    )
    store.save_signal(pace("R2", "behind", 4))
    store.save_signal(pace("R3", "cleared", 5, sales_to_date=420_000.0, pace=1.0, gap=0.0))
    # R4's quota was removed: nothing to pace any more, no row.
    store.save_signal(
        pace("R4", "cleared", 5, **dict.fromkeys(("quota", "sales_to_date", "expected_to_date", "gap", "pace")))
    )
    store.save_signal(  # another kind: not quota pace
        Signal.make(
            kind="imbalance",
            state="over",
            severity="warning",
            subject=Subject("rep", "R9"),
            evidence={"metric": "potential", "share": 0.4},
            detected_at=datetime(2025, 5, 1, tzinfo=timezone.utc),
            emitted_at=datetime(2025, 5, 1, 6, tzinfo=timezone.utc),
        )
    )
    return store


def test_the_store_gives_each_reps_latest_signal_of_a_kind(store: Store):
    latest = stored_paces(store).latest_signals("quota_pace")
    assert [(s.subject.id, s.state) for s in latest] == [
        ("R1", "ahead"),
        ("R2", "behind"),
        ("R3", "cleared"),
        ("R4", "cleared"),
    ]
    assert store.latest_signals("market_shock") == []


def test_the_weekly_review_shows_quota_pace_with_nothing_pending(store: Store):
    digest = build_digest(stored_paces(store), Settings(), clock=ManualClock(NOW), send=False)
    report = digest.report
    assert report.proposal_ids == [] and "nothing pending" in report.subject
    html = report.html
    section = html[html.index('id="quota-pace"') :]
    section = section[: section.index("</section>")]
    rows = tables(section)["quota-pace-reps"]
    assert [row[:2] for row in rows] == [["R1", "ahead"], ["R2", "behind"], ["R3", "on pace"]]
    r1 = rows[0]
    assert "654,321" in r1 and "500,000" in r1 and "+154,321" in r1 and "1,570,370" in r1
    assert "111,111" not in html  # R1's older signal
    assert "R4" not in section and "R9" not in section
    assert "Nothing pending" in html  # the empty week still says so
    assert "Quota pace" in report.text and "R1 ahead" in report.text and "R2 behind" in report.text


def test_the_review_index_shows_quota_pace_with_nothing_pending(store: Store):
    stored_paces(store)
    settings = Settings(api_token=WRITE_TOKEN, api_read_token="", web_port=0)

    async def run() -> str:
        async with TestClient(TestServer(review_app(store, Recorder(), settings))) as client:
            response = await client.get("/", headers=bearer(WRITE_TOKEN))
            assert response.status == 200
            return await response.text()

    page = asyncio.run(run())
    assert "no proposal is pending" in page
    rows = tables(page)["quota-pace-reps"]
    assert [row[:2] for row in rows] == [["R1", "ahead"], ["R2", "behind"], ["R3", "on pace"]]
    assert "+154,321" in rows[0]
