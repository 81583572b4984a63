"""Alert sinks and their dispatcher: one incident is one alert, updated not
repeated; a failing sink is retried with backoff, never blocks the others and never
loses the alert. Real receivers: Alertmanager (Debian's package), an HTTP webhook
receiver checking the HMAC signature, an aiosmtpd SMTP server."""

from __future__ import annotations

import base64
import logging
from datetime import datetime, timedelta, timezone

import pytest

from core.records import Proposal, Signal, Subject
from detectors import imbalance as imbalance_detector
from detectors import market_shock
from tests import records
from alerts.alert import Alert, alert_from_proposal, alert_from_signal
from alerts.dispatch import Dispatcher, MemoryOutbox
from alerts.sinks import (
    AlertmanagerSink,
    LogSink,
    SinkError,
    SmtpSink,
    WebhookSink,
    redact_url,
    sign,
    sinks_from_settings,
    verify_signature,
)
from core.settings import Settings
from tests.services import alertmanager, alertmanager_alerts, free_port, smtp_server, webhook_receiver

T0 = 1_800_000_000.0


class Clock:
    """A `core.clock.Clock` at `seconds` (Unix time), which the test sets. A datetime holds whole
    microseconds: `now()` rounds up, so a clock set to a stored due time reads as due."""

    def __init__(self, seconds: float = T0):
        self.seconds = seconds

    def now(self) -> datetime:
        moment = datetime.fromtimestamp(self.seconds, timezone.utc)
        return moment if moment.timestamp() >= self.seconds else moment + timedelta(microseconds=1)

    def monotonic(self) -> float:
        return self.seconds


class Recorder:
    """A sink that keeps what it got; `down` makes it fail like an unreachable receiver."""

    def __init__(self, name: str):
        self.name = name
        self.got: list[Alert] = []
        self.calls = 0
        self.down = False
        self.error: Exception | None = None

    def send(self, alert: Alert, previous: Alert | None = None) -> None:
        self.calls += 1
        if self.error is not None:
            raise self.error
        if self.down:
            raise SinkError(f"{self.name}: connection refused")
        self.got.append(alert)


def shock(size: float = -0.2, *, state: str = "drop", region: str = "DE-BY", n: int = 0) -> Signal:
    subject, evidence = (
        Subject("region", region, "Bavaria"),
        {"direction": state, "size": size, "started_on": "2025-05-01"},
    )
    return records.signal(
        {
            "signal_id": f"sig-{n}",
            "kind": "market_shock",
            "state": state,
            "severity": "critical",
            "subject": subject.to_json(),
            "evidence": evidence,
            "summary": market_shock.summary(subject, state, evidence),
            "detected_at": "2025-05-20T00:00:00+00:00",
            "emitted_at": f"2026-01-01T00:00:{n:02d}+00:00",
        }
    )


def imbalance(state: str = "under", severity: str = "warning", share: float = 0.10, n: int = 0) -> Signal:
    subject = Subject("rep", "R-munich")
    evidence = {
        "metric": "potential",
        "share": share,
        "fair_share": 0.125,
        "deviation": share / 0.125 - 1,
        "threshold": -0.1,
        "accounts": 231,
    }
    return records.signal(
        {
            "signal_id": f"sig-i{n}",
            "kind": "imbalance",
            "state": state,
            "severity": severity,
            "subject": subject.to_json(),
            "evidence": evidence,
            "summary": imbalance_detector.summary(subject, state, evidence),
            "detected_at": "2025-05-31T18:12:00+00:00",
            "emitted_at": f"2026-01-01T00:01:{n:02d}+00:00",
        }
    )


def proposal(proposal_id: str, reps: tuple[str, str] = ("A", "B"), accounts: int = 1) -> Proposal:
    return records.proposal(
        {
            "proposal_id": proposal_id,
            "status": "optimal",
            "imbalance_before": 0.2,
            "imbalance_after": 0.05,
            "event_time": "2025-05-01T00:00:00+00:00",
            "trigger_signals": ["sig-1"],
            "seconds": 0.4,
            "created_at": "2026-01-01T00:00:00+00:00",
            "moves": [
                {
                    "account_id": f"a{i}",
                    "from_rep": reps[0],
                    "to_rep": reps[1],
                    "potential": 1000.0,
                    "workload": 0.0,
                    "reason": "closer",
                }
                for i in range(accounts)
            ],
        }
    )


def dispatcher(*sinks: Recorder, clock: Clock, throttle_s: float = 300.0, retry_max_s: float = 60.0):
    outbox = MemoryOutbox()
    return Dispatcher(
        sinks, outbox, throttle_s=throttle_s, retry_max_s=retry_max_s, retry_base_s=2.0, clock=clock
    ), outbox


# ---------------------------------------------------------------------------- alerts


def test_signal_alert_has_a_stable_key_routing_labels_and_resolves_when_cleared():
    firing = alert_from_signal(imbalance(), review_url="http://review/p/1")
    cleared = alert_from_signal(imbalance(state="cleared", severity="info", share=0.124))
    assert firing.key == cleared.key == "imbalance:rep:R-munich:potential"
    assert (firing.status, cleared.status) == ("firing", "resolved")
    assert firing.labels == {
        "alertname": "TerritoryImbalance",
        "severity": "warning",
        "service": "territory-monitor",
        "kind": "imbalance",
        "subject_type": "rep",
        "subject": "R-munich",
        "rep": "R-munich",
        "metric": "potential",
    }
    assert firing.summary == "R-munich is under the fair share of potential: 10.0% vs fair share 12.5%, -20%"
    assert firing.annotations["review_url"] == "http://review/p/1"
    assert Alert.from_json(firing.to_json()) == firing
    assert alert_from_signal(shock()).labels["region"] == "DE-BY"
    assert "Bavaria (DE-BY)" in alert_from_signal(shock()).summary


def test_the_alert_says_what_the_detector_wrote_and_a_signal_without_a_summary_still_reads():
    assert alert_from_signal(shock()).summary == (
        "market shock in Bavaria (DE-BY): demand dropped 20% against the rest of the country since 2025-05-01"
    )
    # Published before signals carried a summary: kind, state and subject.
    old = records.signal({**shock().to_json(), "summary": None})
    assert old.summary == ""
    alert = alert_from_signal(old)
    assert alert.summary == "market shock drop for region Bavaria (DE-BY)"
    assert alert.description.startswith(alert.summary + "\nstate: drop\nevidence: direction=drop; size=-0.2")


def test_superseding_proposal_for_the_same_reps_updates_the_same_alert():
    first, newer, other = (
        alert_from_proposal(proposal("p1")),
        alert_from_proposal(proposal("p2", accounts=2)),
        alert_from_proposal(proposal("p3", reps=("C", "D"))),
    )
    assert first.key == newer.key == "proposal:A,B" != other.key
    assert first.labels["alertname"] == "TerritoryRebalanceProposal" and "proposal_id" not in first.labels
    assert newer.annotations["proposal_id"] == "p2"
    assert newer.body["alert_id"] == "alert-p2" and "move 2 accounts" in newer.summary
    assert newer.description.count("move account") == 2


# ---------------------------------------------------------------------------- dispatcher


def test_one_shock_updated_five_times_is_one_row_sent_once_per_throttle_window_with_the_last_content():
    clock, sink = Clock(), Recorder("hook")
    dispatch, outbox = dispatcher(sink, clock=clock)
    dispatch.submit(alert_from_signal(shock(-0.20)))
    assert dispatch.deliver_due().sent == 1
    for n, size in enumerate((-0.22, -0.25, -0.28, -0.31, -0.35), start=1):
        clock.seconds += 10
        dispatch.submit(alert_from_signal(shock(size, n=n)))
        assert dispatch.deliver_due().sent == 0  # throttled: the update waits, replacing the one before
    assert list(outbox.rows()) == [(sink.got[0].key, "hook")]
    clock.seconds = T0 + 299
    assert dispatch.deliver_due().sent == 0
    clock.seconds = T0 + 300
    report = dispatch.deliver_due()
    assert (report.sent, report.pending) == (1, 0)
    assert [a.body["evidence"]["size"] for a in sink.got] == [-0.20, -0.35]
    assert sink.got[1].starts_at == sink.got[0].starts_at  # the same incident, still starting when it started


def test_resolution_goes_out_at_once_and_replaces_a_throttled_update():
    clock, sink = Clock(), Recorder("hook")
    dispatch, _ = dispatcher(sink, clock=clock)
    dispatch.submit(alert_from_signal(imbalance(share=0.10)))
    dispatch.deliver_due()
    clock.seconds += 5
    dispatch.submit(alert_from_signal(imbalance(share=0.09, n=1)))  # throttled update
    clock.seconds += 5
    dispatch.submit(alert_from_signal(imbalance(state="cleared", severity="info", share=0.124, n=2)))
    assert dispatch.deliver_due().sent == 1
    assert [a.status for a in sink.got] == ["firing", "resolved"]
    clock.seconds += 1000
    assert dispatch.deliver_due().sent == 0  # the replaced update is not sent after all


def test_a_failing_sink_is_retried_with_growing_backoff_and_the_other_sink_is_unaffected():
    clock, good, bad = Clock(), Recorder("good"), Recorder("bad")
    bad.down = True
    dispatch, outbox = dispatcher(good, bad, clock=clock, retry_max_s=20.0)
    dispatch.submit(alert_from_signal(shock()))
    report = dispatch.deliver_due()
    assert (report.sent, report.failed, report.pending) == (1, 1, 1)
    assert "connection refused" in report.errors["bad"] and len(good.got) == 1
    delays = []
    for _ in range(6):
        row = outbox.rows()[(good.got[0].key, "bad")]
        delays.append(row["due_at"] - clock.seconds)
        clock.seconds = row["due_at"] - 0.01
        assert dispatch.deliver_due().failed == 0  # not due yet
        clock.seconds = row["due_at"]
        assert dispatch.deliver_due().failed == 1
    for delay, expected in zip(delays, (2, 4, 8, 16, 20, 20)):
        assert expected <= delay <= expected * 1.1  # base * 2**attempts capped at retry_max_s, + jitter
    assert outbox.rows()[(good.got[0].key, "bad")]["attempts"] == 7
    assert len(good.got) == 1 and bad.calls == 7


def test_a_sink_that_was_down_gets_the_newest_alert_once_it_is_back():
    clock, sink = Clock(), Recorder("hook")
    sink.down = True
    dispatch, outbox = dispatcher(sink, clock=clock, retry_max_s=30.0)
    dispatch.submit(alert_from_signal(shock(-0.2)))
    dispatch.deliver_due()
    for n in range(1, 4):  # updates while it is down do not hurry its retries, they replace the content
        clock.seconds += 1
        dispatch.submit(alert_from_signal(shock(-0.2 - n / 100, n=n)))
        assert dispatch.deliver_due().sent == 0
    sink.down = False
    clock.seconds += 60
    report = dispatch.deliver_due()
    assert (report.sent, report.pending) == (1, 0)
    assert [a.body["evidence"]["size"] for a in sink.got] == [-0.23]
    assert outbox.rows()[(sink.got[0].key, "hook")]["attempts"] == 0


def test_identical_content_is_not_sent_again():
    clock, sink = Clock(), Recorder("hook")
    dispatch, _ = dispatcher(sink, clock=clock)
    dispatch.submit(alert_from_signal(shock(-0.2)))
    dispatch.deliver_due()
    clock.seconds += 400
    dispatch.submit(alert_from_signal(shock(-0.2, n=7)))  # re-emitted: new signal id and time, same content
    report = dispatch.deliver_due()
    assert (report.sent, report.skipped, len(sink.got)) == (0, 1, 1)
    # Changed and changed back before the throttle window ended: nothing new to say either.
    dispatch.submit(alert_from_signal(shock(-0.3, n=8)))
    dispatch.submit(alert_from_signal(shock(-0.2, n=9)))
    clock.seconds += 400
    assert dispatch.deliver_due().sent == 0 and len(sink.got) == 1


def test_a_sink_that_is_down_is_tried_once_per_round_and_a_refused_alert_does_not_block_the_next():
    clock, sink = Clock(), Recorder("hook")
    dispatch, outbox = dispatcher(sink, clock=clock)
    sink.down = True
    dispatch.submit(alert_from_signal(shock(region="DE-BY")))
    dispatch.submit(alert_from_signal(shock(region="DE-BE")))
    report = dispatch.deliver_due()
    assert (sink.calls, report.failed, report.pending) == (1, 2, 2)  # one timeout per round, not one per alert
    assert all(row["attempts"] == 1 for row in outbox.rows().values())
    sink.down, sink.error = False, SinkError("HTTP 400: bad alert", sink_down=False)
    clock.seconds += 10
    assert dispatch.deliver_due().failed == 2 and sink.calls == 3  # item errors: each alert tried


def test_a_sink_that_raises_something_unexpected_keeps_the_alert_and_spares_the_others(caplog):
    clock, good, broken = Clock(), Recorder("good"), Recorder("broken")
    broken.error = KeyError("bug")
    dispatch, outbox = dispatcher(good, broken, clock=clock)
    dispatch.submit(alert_from_signal(shock()))
    with caplog.at_level(logging.ERROR, "territory.alerts"):
        report = dispatch.deliver_due()
    assert (report.sent, report.failed, len(good.got)) == (1, 1, 1)
    assert "KeyError" in outbox.rows()[(good.got[0].key, "broken")]["last_error"]


def test_delivered_alerts_are_counted_per_sink():
    from core.metrics import Metrics

    metrics, clock, good, bad = Metrics.create(), Clock(), Recorder("good"), Recorder("bad")
    bad.down = True
    dispatch = Dispatcher([good, bad], MemoryOutbox(), throttle_s=0, retry_max_s=1, clock=clock, metrics=metrics)
    dispatch.submit(alert_from_signal(shock()))
    dispatch.deliver_due()
    value = metrics.registry.get_sample_value
    assert (
        value("territory_alerts_alerts_total", {"sink": "good"}),
        value("territory_alerts_alerts_total", {"sink": "bad"}),
    ) == (1.0, None)


def test_log_sink_writes_the_headline_and_the_moves(caplog):
    with caplog.at_level(logging.INFO, "territory.alerts"):
        LogSink().send(alert_from_proposal(proposal("p1", accounts=2)))
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("[FIRING] proposal p1: move 2 accounts") and len(lines) == 3


def test_sinks_from_settings_builds_the_configured_sinks_and_names_missing_settings():
    settings = Settings(
        alert_sinks="kafka,log,alertmanager,webhook,smtp",
        alertmanager_url="http://127.0.0.1:9093",
        webhook_url="http://127.0.0.1:1/hook",
        webhook_secret="s",
        smtp_to="a@x, b@x",
    )
    sinks = sinks_from_settings(settings)
    assert [s.name for s in sinks] == ["log", "alertmanager", "webhook", "smtp"]
    assert sinks[3].recipients == ["a@x", "b@x"]
    with pytest.raises(ValueError, match="TERRITORY_ALERTMANAGER_URL"):
        sinks_from_settings(settings.with_(alertmanager_url=""))
    with pytest.raises(ValueError, match="TERRITORY_WEBHOOK_SECRET"):
        sinks_from_settings(settings.with_(webhook_secret=""))
    with pytest.raises(ValueError, match="TERRITORY_SMTP_TO"):
        sinks_from_settings(settings.with_(smtp_to=" "))
    with pytest.raises(ValueError, match="TERRITORY_ALERT_SINKS.*pager"):
        sinks_from_settings(settings.with_(alert_sinks="log,pager"))
    assert [s.name for s in sinks_from_settings(Settings())] == ["log"]


# ---------------------------------------------------------------------------- real receivers


def test_alertmanager_receives_the_alert_its_update_and_its_resolution():
    with alertmanager() as url:
        clock = Clock()
        outbox = MemoryOutbox()
        dispatch = Dispatcher([AlertmanagerSink(url)], outbox, throttle_s=0, retry_max_s=60, clock=clock)
        dispatch.submit(alert_from_signal(imbalance(share=0.11), review_url="http://127.0.0.1:8088/signals"))
        assert dispatch.deliver_due().sent == 1
        [alert] = alertmanager_alerts(url, service="territory-monitor")
        assert alert["labels"] == {
            "alertname": "TerritoryImbalance",
            "severity": "warning",
            "kind": "imbalance",
            "service": "territory-monitor",
            "subject_type": "rep",
            "subject": "R-munich",
            "rep": "R-munich",
            "metric": "potential",
        }
        assert alert["annotations"]["summary"].startswith("R-munich is under the fair share of potential: 11.0%")
        assert alert["annotations"]["signal_id"] == "sig-i0"
        assert alert["generatorURL"] == "http://127.0.0.1:8088/signals"
        assert alert["status"]["state"] in ("active", "unprocessed")

        # Worse: severity goes up. Still one active alert for the incident, now critical.
        clock.seconds += 1
        dispatch.submit(alert_from_signal(imbalance(severity="critical", share=0.07, n=1)))
        assert dispatch.deliver_due().sent == 1
        [alert] = alertmanager_alerts(url, service="territory-monitor")
        assert alert["labels"]["severity"] == "critical" and "7.0%" in alert["annotations"]["summary"]

        clock.seconds += 1
        dispatch.submit(alert_from_signal(imbalance(state="cleared", severity="info", share=0.124, n=2)))
        assert dispatch.deliver_due().sent == 1
        assert alertmanager_alerts(url, service="territory-monitor") == []  # resolved: no longer active


def test_webhook_body_is_signed_and_a_wrong_secret_is_detected():
    alert = alert_from_signal(shock())
    with webhook_receiver("s3cret") as receiver:
        WebhookSink(receiver.url, "s3cret").send(alert)
        assert receiver.received == [alert.to_json()]
        assert receiver.headers[0]["X-Territory-Alert-Key"] == alert.key
        assert receiver.headers[0]["X-Territory-Signature"].startswith("sha256=")
        with pytest.raises(SinkError, match="HTTP 401") as refused:
            WebhookSink(receiver.url, "wrong").send(alert)
        assert refused.value.sink_down is False
        assert len(receiver.rejected) == 1 and len(receiver.received) == 1
    body = WebhookSink("http://x", "k").body(alert)
    assert verify_signature("k", body, sign("k", body)) and not verify_signature("k", body + b" ", sign("k", body))
    # A wrong secret, no header, a bare hex digest without "sha256=": all refused.
    assert not verify_signature("other", body, sign("k", body)) and not verify_signature("k", body, None)
    assert not verify_signature("k", body, sign("k", body).removeprefix("sha256="))


def test_webhook_url_credentials_go_in_a_basic_auth_header_and_errors_show_them_redacted():
    alert = alert_from_signal(shock())
    with webhook_receiver("s3cret") as receiver:
        url = receiver.url.replace("http://", "http://hook%40user:p%3Ass-9f2@") + "?token=tok-7c1"
        WebhookSink(url, "s3cret").send(alert)
        assert receiver.received == [alert.to_json()]
        assert receiver.headers[0]["Authorization"] == "Basic " + base64.b64encode(b"hook@user:p:ss-9f2").decode()
    # The receiver is gone: the error names where, without the password or the query.
    with pytest.raises(SinkError) as failed:
        WebhookSink(url, "s3cret").send(alert)
    message = str(failed.value)
    assert message.startswith("webhook http://***@127.0.0.1:") and "/hook?***" in message
    assert "p%3Ass-9f2" not in message and "tok-7c1" not in message and "hook%40user" not in message
    assert redact_url("https://am.example/api") == "https://am.example/api"


def test_smtp_sink_sends_a_text_and_html_mail_to_every_recipient():
    with smtp_server() as server:
        sink = SmtpSink(
            server.host, server.port, "monitor@example.org", ["sales@example.org", "ops@example.org"], timeout_s=5
        )
        sink.send(alert_from_proposal(proposal("p9", accounts=2), review_url="http://127.0.0.1:8088/p/p9"))
        sink.send(alert_from_signal(imbalance(state="cleared", severity="info", share=0.124)))
        [first, second] = server.wait_for(2)
    assert server.envelopes[0] == ("monitor@example.org", ["sales@example.org", "ops@example.org"])
    assert first["Subject"].startswith("[FIRING] proposal p9: move 2 accounts")
    assert first["To"] == "sales@example.org, ops@example.org"
    assert first["X-Territory-Alert-Key"] == "proposal:A,B"
    text = first.get_body(("plain",)).get_content()
    assert "move account a1" in text and "http://127.0.0.1:8088/p/p9" in text
    assert "<pre>" in first.get_body(("html",)).get_content()
    assert second["Subject"].startswith("[RESOLVED] R-munich is back within the fair share")


def test_webhook_that_is_down_gets_the_alert_after_it_comes_back():
    clock = Clock()
    port = free_port()  # nothing listens here yet
    sink = WebhookSink(f"http://127.0.0.1:{port}/hook", "s3cret", timeout_s=3)
    dispatch = Dispatcher([sink], MemoryOutbox(), throttle_s=300, retry_max_s=60, clock=clock)
    dispatch.submit(alert_from_signal(shock()))
    report = dispatch.deliver_due()
    assert (report.sent, report.failed, report.pending) == (1 - 1, 1, 1)
    assert "refused" in report.errors["webhook"].lower()
    with webhook_receiver("s3cret", port=port) as receiver:
        assert dispatch.deliver_due().sent == 0  # not due yet: backing off
        clock.seconds += 5
        report = dispatch.deliver_due()
        assert (report.sent, report.pending) == (1, 0)
        assert [body["key"] for body in receiver.received] == ["market_shock:region:DE-BY"]
