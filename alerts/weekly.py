"""The weekly review as a job: build it from the pending proposals and each rep's latest
quota pace, keep it in the store, e-mail it; on a cron schedule in the worker (APScheduler)
or on demand (`territory report --week`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from alerts.quota_pace import KIND as QUOTA_PACE
from alerts.report import WeeklyReport, build_weekly_report, iso_week
from alerts.sinks import SmtpSink
from alerts.store import Store
from core.clock import SYSTEM_CLOCK, Clock
from core.settings import Settings

log = logging.getLogger("territory.report")


@dataclass(frozen=True)
class Digest:
    report_id: int
    report: WeeklyReport
    sent_to: tuple[str, ...]  # empty when no recipients are configured


def recipients(settings: Settings) -> list[str]:
    """`report_to`, else `smtp_to` (comma lists)."""
    chosen = settings.report_to or settings.smtp_to
    return [part.strip() for part in chosen.split(",") if part.strip()]


def review_url(settings: Settings) -> str | None:
    return f"http://127.0.0.1:{settings.web_port}/proposals/{{proposal_id}}" if settings.web_port else None


def build_digest(store: Store, settings: Settings, *, clock: Clock = SYSTEM_CLOCK, send: bool = True) -> Digest:
    """Build this week's review of every pending proposal, store it and (with ``send``
    and recipients configured) e-mail it. Raises on a mail failure after storing. The week
    and the time it was generated are the clock's, in `report_timezone`."""
    now = clock.now().astimezone(ZoneInfo(settings.report_timezone))
    proposals = [row.record() for row in store.proposals("pending")]
    report = build_weekly_report(
        proposals,
        week=iso_week(now),
        generated_at=now,
        review_url=review_url(settings),
        quota_pace=store.latest_signals(QUOTA_PACE),
    )
    report_id = store.save_report(report.week, report.subject, report.html, report.proposal_ids)
    to = recipients(settings) if send else []
    if to:
        mailer = SmtpSink(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_from,
            to,
            starttls=bool(settings.smtp_starttls),
            user=settings.smtp_user,
            password=settings.smtp_password,
        )
        mailer.deliver(report_message(report, settings.smtp_from, to), what=f"weekly review {report.week}")
        store.report_sent(report_id)
    return Digest(report_id, report, tuple(to))


def report_message(report: WeeklyReport, sender: str, to: list[str]) -> EmailMessage:
    """Plain text, and HTML with the pictures as inline parts (mail clients that show
    no data-URI pictures, such as Gmail and Outlook, show these)."""
    msg = EmailMessage()
    msg["Subject"] = report.subject
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="territory-monitor")
    msg.set_content(report.text)
    msg.add_alternative(report.email_html(), subtype="html")
    *_, html_part = msg.iter_parts()  # multipart/alternative: the text, then the HTML
    for image in report.images:
        html_part.add_related(image.png, maintype="image", subtype="png", cid=f"<{image.cid}>")
    return msg


def schedule_weekly_review(
    store: Store, settings: Settings, is_leader: Callable[[], bool] = lambda: True, clock: Clock = SYSTEM_CLOCK
) -> AsyncIOScheduler:
    """An APScheduler job on the running event loop at `report_cron` in `report_timezone`
    (default Monday 07:00 Europe/Berlin). The build runs in a thread: matplotlib and
    the database must not block the stream. Call ``start()`` from the loop.

    Every worker schedules the job; only the one for which `is_leader()` holds when it
    fires builds and sends the review, so several workers send it once."""
    zone = ZoneInfo(settings.report_timezone)
    scheduler = AsyncIOScheduler(timezone=zone)

    async def weekly() -> None:
        import asyncio

        if not is_leader():
            log.info("weekly review due: another worker (the leader) sends it")
            return
        try:
            digest = await asyncio.to_thread(build_digest, store, settings, clock=clock)
        except Exception:  # noqa: BLE001 - a failed review must not stop the worker; it is logged
            log.exception("weekly review failed")
            return
        log.info(
            "weekly review %s: %d pending proposals, sent to %s",
            digest.report.week,
            len(digest.report.proposal_ids),
            ", ".join(digest.sent_to) or "nobody (no TERRITORY_REPORT_TO)",
        )

    scheduler.add_job(
        weekly,
        CronTrigger.from_crontab(settings.report_cron, timezone=zone),
        id="weekly-review",
        coalesce=True,
        misfire_grace_time=3600,
    )
    return scheduler


def next_run(settings: Settings, *, after: datetime | None = None, clock: Clock = SYSTEM_CLOCK) -> datetime:
    """When the weekly review runs next after `after` (default: the clock's now): the cron
    read as the scheduler reads it."""
    zone = ZoneInfo(settings.report_timezone)
    trigger = CronTrigger.from_crontab(settings.report_cron, timezone=zone)
    return trigger.get_next_fire_time(None, after or clock.now().astimezone(zone))


def register_weekly_review(app, store: Store, settings: Settings, clock: Clock = SYSTEM_CLOCK) -> None:
    """Start the weekly review's scheduler with the worker (a Faust task runs on its loop)."""
    holder: dict[str, AsyncIOScheduler] = {}

    @app.task
    async def start_weekly_review() -> None:
        holder["scheduler"] = scheduler = schedule_weekly_review(store, settings, is_leader=app.is_leader, clock=clock)
        scheduler.start()
        log.info(
            "weekly review scheduled (%s, %s): next at %s",
            settings.report_cron,
            settings.report_timezone,
            next_run(settings, clock=clock).isoformat(),
        )
