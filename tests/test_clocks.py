"""Logic reads time from an injected `core.clock.Clock`: the intake's `in_the_future` check and
dead letters, the alert message, Alertmanager's endsAt, the approval retry's grace period, the
store's time defaults, the weekly review, an alert's update time, the failed-login window and
an import's time. Every timestamp is aware UTC."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from alerts import decisions
from alerts.alert import Alert, alert_from_signal, proposal_settled
from alerts.alert import alert_from_proposal as proposal_alert
from alerts.web.auth import FailedAuthLimiter
from connectors.mapping import Context
from alerts.messages import alert_from_proposal
from tests import records
from alerts.schema import CLOCK_OPTION, AuditRow, Base
from alerts.sinks import AlertmanagerSink
from alerts.weekly import next_run
from core import topics
from core.clock import SYSTEM_CLOCK, ManualClock
from core.settings import Settings
from monitor.intake import Intake

NOW = datetime(2031, 5, 6, 7, 8, 9, tzinfo=timezone.utc)  # far from the machine's time


def test_the_intake_judges_in_the_future_and_dates_dead_letters_by_its_clock():
    dead: list[dict] = []

    async def keep(key: str, value: dict) -> None:
        dead.append(value)

    async def ignore(key: str, value: dict) -> None:
        return None

    intake = Intake(
        accounts={},
        reps={},
        stream_times={},
        send_state=ignore,
        send_deadletter=keep,
        on_outcome=lambda topic, outcome, field: None,
        clock=ManualClock(NOW),
    )

    def send(when: datetime, event_id: str) -> None:
        value = json.dumps(
            {
                "event_id": event_id,
                "type": "order.placed",
                "occurred_at": when.isoformat(),
                "data": {"order_id": event_id, "account_id": "a1", "amount": 5},
            }
        ).encode()
        asyncio.run(intake.handle(topic=topics.ORDERS, partition=0, offset=len(dead), key=b"a1", value=value))

    send(NOW + timedelta(days=2), "within-margin")  # ahead of the machine's time, not of the clock's
    assert dead == []
    send(NOW + timedelta(days=4), "ahead")
    assert [d["reason_code"] for d in dead] == ["in_the_future"]
    assert dead[0]["deadlettered_at"] == "2031-05-06T07:08:09+00:00"


def test_the_alert_message_is_sent_at_the_clocks_time():
    proposal = records.proposal(
        {
            "proposal_id": "p1",
            "status": "optimal",
            "moves": [],
            "imbalance_before": 0.3,
            "imbalance_after": 0.05,
            "seconds": 1.0,
            "trigger_signals": [],
            "event_time": "2031-05-01T00:00:00+00:00",
        }
    )
    assert alert_from_proposal(proposal, clock=ManualClock(NOW))["sent_at"] == "2031-05-06T07:08:09+00:00"


def test_alertmanager_ends_a_firing_alert_a_ttl_after_the_clocks_time():
    sink = AlertmanagerSink("http://127.0.0.1:9", firing_ttl_s=3600, clock=ManualClock(NOW))
    alert = Alert(
        key="k",
        status="firing",
        severity="warning",
        summary="x",
        description="",
        labels={"alertname": "x"},
        annotations={},
        body={},
        starts_at=NOW - timedelta(days=1),
    )
    assert [item["endsAt"] for item in sink.payload(alert)] == ["2031-05-06T08:08:09.000000Z"]


class OneApproval:
    """A store holding one proposal approved at NOW; publishing it is what the test watches."""

    def proposals(self, status: str):
        return [SimpleNamespace(proposal_id="p1", decided_at=NOW)]

    def moves(self, proposal_id: str):
        raise LookupError("publishing p1")


def test_the_approval_retry_leaves_an_approval_younger_than_the_grace_period_by_the_clock():
    young = ManualClock(NOW + timedelta(seconds=30))
    assert asyncio.run(decisions.apply_approved(OneApproval(), None, older_than_s=60, clock=young)) == []
    old = ManualClock(NOW + timedelta(seconds=61))
    with pytest.raises(LookupError, match="publishing p1"):
        asyncio.run(decisions.apply_approved(OneApproval(), None, older_than_s=60, clock=old))


def test_the_stores_time_defaults_read_the_clock_its_engine_carries():
    engine = create_engine("sqlite://").execution_options(**{CLOCK_OPTION: ManualClock(NOW)})
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(AuditRow(actor="maria", action="approved"))
        session.commit()
        (at,) = session.scalars(select(AuditRow.at)).all()
    assert at.replace(tzinfo=at.tzinfo or timezone.utc) == NOW  # SQLite hands it back naive


def test_the_weekly_review_runs_next_after_the_clocks_time():
    # Monday 07:00 in Berlin (summer time) is 05:00 UTC.
    assert next_run(Settings(), clock=ManualClock(NOW)) == datetime(2031, 5, 12, 5, tzinfo=timezone.utc)


def test_an_alert_is_dated_by_the_clock_it_is_made_with():
    signal = records.signal(
        {
            "signal_id": "sig-1",
            "kind": "coverage_gap",
            "state": "open",
            "severity": "critical",
            "subject": {"type": "rep", "id": "R1"},
            "detected_at": "2031-05-01T00:00:00+00:00",
            "emitted_at": "2031-05-01T00:00:01+00:00",
        }
    )
    assert alert_from_signal(signal, clock=ManualClock(NOW)).updated_at == NOW
    proposal = records.proposal({"proposal_id": "p1"})
    assert proposal_alert(proposal, clock=ManualClock(NOW)).updated_at == NOW
    settled = proposal_settled(proposal, "approved", clock=ManualClock(NOW))
    assert settled.updated_at == settled.ends_at == NOW and settled.body["sent_at"] == NOW.isoformat()


def test_the_failed_login_window_is_timed_by_the_clocks_monotonic_reading():
    clock = ManualClock(NOW)
    limiter = FailedAuthLimiter(1, 60.0, clock=clock)
    limiter.failed("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") == pytest.approx(60.0)
    clock.advance(timedelta(seconds=45))
    assert limiter.retry_after("10.0.0.1") == pytest.approx(15.0)


def test_an_imports_time_defaults_to_the_system_clock_in_whole_seconds():
    before = SYSTEM_CLOCK.now().replace(microsecond=0)
    imported_at = Context().imported_at
    assert imported_at.tzinfo is not None and imported_at.microsecond == 0
    assert before <= imported_at <= SYSTEM_CLOCK.now()
