"""The weekly review job: built from pending proposals, kept in the store, e-mailed to a
real (local) SMTP server with inline pictures; scheduled by cron in a time zone."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from territory.sample_report import sample_proposal
from alerts.store import Store
from alerts.weekly import build_digest, next_run, schedule_weekly_review
from core.clock import ManualClock
from territory.cli import app
from core.settings import Settings
from tests.services import smtp_server
from tests import records


@pytest.fixture(scope="module")
def proposal():
    return sample_proposal(time_limit_s=3.0)


@pytest.fixture
def store(tmp_path, proposal):
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.migrate()
    store.save_proposal(records.proposal(proposal))
    return store


def test_the_digest_is_stored_and_mailed_with_its_pictures_inline(store, proposal):
    with smtp_server() as server:
        settings = Settings(smtp_host=server.host, smtp_port=server.port, report_to="manager@example.com")
        digest = build_digest(store, settings, clock=ManualClock(datetime(2026, 11, 30, 6, tzinfo=timezone.utc)))
        server.wait_for(1)
    assert digest.report.week == "2026-W49" and digest.sent_to == ("manager@example.com",)
    (row,) = store.reports("2026-W49")
    assert row.sent_at is not None and row.proposal_ids == [proposal["proposal_id"]]
    assert proposal["moves"][0]["account_id"] in row.html
    (message,) = server.messages
    assert message["Subject"] == digest.report.subject and "2026-W49" in message["Subject"]
    images = [part for part in message.walk() if part.get_content_type() == "image/png"]
    html = next(part for part in message.walk() if part.get_content_type() == "text/html").get_content()
    assert len(images) >= 2  # the map and the shares chart at least
    assert all(f"cid:{image['Content-ID'].strip('<>')}" in html for image in images)
    assert "data:image/png" not in html  # mail clients that block data URIs still see them


def test_report_command_writes_and_stores_without_mail(tmp_path, monkeypatch, store):
    monkeypatch.setenv("TERRITORY_DB_URL", store.url)
    monkeypatch.setenv("TERRITORY_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "review.html"
    result = CliRunner().invoke(app, ["report", "--week", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "not e-mailed: set TERRITORY_REPORT_TO" in result.output
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert len(store.reports()) == 1


def test_report_command_says_when_mail_fails_and_keeps_the_report(tmp_path, monkeypatch, store):
    from territory.broker import free_port

    monkeypatch.setenv("TERRITORY_DB_URL", store.url)
    monkeypatch.setenv("TERRITORY_SMTP_PORT", str(free_port()))  # nobody listens there
    monkeypatch.setenv("TERRITORY_REPORT_TO", "manager@example.com")
    result = CliRunner().invoke(app, ["report", "--week", "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 1 and "stored but not sent" in result.output
    assert len(store.reports()) == 1 and store.reports()[0].sent_at is None


def test_schedule_follows_the_cron_in_its_time_zone(store):
    settings = Settings(report_cron="30 6 * * fri", report_timezone="America/New_York")
    after = datetime(2026, 11, 24, 12, tzinfo=timezone.utc)  # a Tuesday
    assert next_run(settings, after=after) == datetime(2026, 11, 27, 6, 30, tzinfo=ZoneInfo("America/New_York"))
    assert next_run(Settings(), after=after) == datetime(2026, 11, 30, 7, tzinfo=ZoneInfo("Europe/Berlin"))

    async def started_job():
        scheduler = schedule_weekly_review(store, settings)
        scheduler.start()
        try:
            (job,) = scheduler.get_jobs()
            return job.next_run_time
        finally:
            scheduler.shutdown(wait=False)

    upcoming = asyncio.run(started_job())
    assert upcoming.weekday() == 4 and (upcoming.hour, upcoming.minute) == (6, 30)
    assert upcoming.utcoffset() == ZoneInfo("America/New_York").utcoffset(upcoming.replace(tzinfo=None))
