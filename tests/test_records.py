"""The records on territory.signals and territory.proposals: what the planner publishes reads
back equal, and a message that is not a record is refused naming the field."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from prometheus_client import CollectorRegistry

from core.records import Proposal, RecordError, Signal
from core.settings import Settings
from planner.session import PlanningSession
from tests.test_planner import START, company


@pytest.fixture(scope="module")
def published() -> tuple[list[Signal], Proposal]:
    settings = Settings(tolerance=0.10, hysteresis=0.8, warmup_days=30, potential="trailing", solver_time_limit_s=5)
    session = PlanningSession(settings, accounts={}, reps={}, meta={})
    evaluation = session.planner.evaluate(
        *company(a_sales=300.0), watermark=datetime(2025, 4, 2, tzinfo=timezone.utc), first_event_at=START
    )
    session.judged_at = datetime(2025, 4, 2, tzinfo=timezone.utc)
    return evaluation.signals, session.solve(evaluation.rebalance)


def test_what_the_planner_publishes_reads_back_equal(published):
    signals, proposal = published
    for signal in signals:
        message = json.loads(json.dumps(signal.to_json()))  # as it crosses the topic
        assert Signal.from_json(message) == signal and Signal.from_json(message).to_json() == message
    message = json.loads(json.dumps(proposal.to_json()))
    assert proposal.moves and Proposal.from_json(message).to_json() == message
    assert Proposal.from_json(message).touched_reps == {"A", "B"}


@pytest.mark.parametrize(
    "change, error",
    [
        (lambda m: m.pop("signal_id"), "signal.signal_id: required"),
        (lambda m: m.update(severity="loud"), "signal.severity: must be one of"),
        (lambda m: m["subject"].pop("id"), "signal.subject.id: required"),
        (lambda m: m.update(evidence=[1, 2]), "signal.evidence: must be Mapping"),
        (lambda m: m.update(detected_at="yesterday"), "signal.detected_at: must be an ISO 8601 time"),
        (lambda m: m.update(kind="Market Shock"), "signal.kind: must be snake_case"),
    ],
)
def test_a_signal_message_that_is_not_a_record_is_refused_naming_the_field(published, change, error):
    message = json.loads(json.dumps(published[0][0].to_json()))
    change(message)
    with pytest.raises(RecordError, match=error.replace("(", r"\(")):
        Signal.from_json(message)


@pytest.mark.parametrize(
    "change, error",
    [
        (lambda m: m["moves"][0].pop("to_rep"), "proposal.moves[0].to_rep: required"),
        (lambda m: m["moves"][0].update(potential="12"), "proposal.moves[0].potential: must be float, got str"),
        (lambda m: m["before"][1].update(accounts=True), "proposal.before[1].accounts: must be int, got bool"),
        (lambda m: m.update(trigger_signals="sig-1"), "proposal.trigger_signals: must be list"),
        (lambda m: m.update(mode="shuffle"), "proposal.mode: must be one of"),
    ],
)
def test_a_proposal_message_that_is_not_a_record_is_refused_naming_the_field(published, change, error):
    message = json.loads(json.dumps(published[1].to_json()))
    change(message)
    with pytest.raises(RecordError, match=error.replace("[", r"\[").replace("]", r"\]")):
        Proposal.from_json(message)


def test_the_alert_stage_skips_and_counts_an_unreadable_message(published, caplog):
    from alerts.agents import _read, unreadable_messages
    from core.metrics import Metrics

    counter = unreadable_messages(Metrics.create(CollectorRegistry()))
    assert _read(Signal, published[0][0].to_json(), counter) == published[0][0]
    with caplog.at_level("ERROR", logger="territory.alerts"):
        assert _read(Signal, {"kind": "imbalance"}, counter) is None
        assert _read(Proposal, "not an object", counter) is None
    assert counter.labels("signal")._value.get() == 1 and counter.labels("proposal")._value.get() == 1
    assert "signal.signal_id: required" in caplog.text
