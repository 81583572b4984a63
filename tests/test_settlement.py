"""A proposal's alert resolves once people decide on it, but not while a newer pending
proposal for the same reps owns the incident."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from alerts.agents import ProposalSettlement
from alerts.dispatch import Dispatcher
from alerts.store import Store
from core.clock import ManualClock
from tests import records


class RecordingSink:
    name = "webhook"

    def __init__(self):
        self.received = []

    def send(self, alert, previous=None):
        self.received.append(alert)


def proposal(proposal_id: str, reps: tuple[str, str]) -> dict:
    return records.proposal(
        {
            "proposal_id": proposal_id,
            "status": "optimal",
            "imbalance_before": 0.3,
            "imbalance_after": 0.05,
            "event_time": "2025-05-01T00:00:00+00:00",
            "created_at": "2026-11-24T10:00:00+00:00",
            "trigger_signals": [],
            "moves": [
                {
                    "account_id": "a1",
                    "from_rep": reps[0],
                    "to_rep": reps[1],
                    "potential": 10.0,
                    "workload": 0.0,
                    "distance_km": 5.0,
                    "reason": "R1 over",
                }
            ],
        }
    ).to_json()


def test_decided_proposals_resolve_their_alert_once(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.migrate()
    sink = RecordingSink()
    clock = ManualClock(datetime.fromtimestamp(1000.0, timezone.utc))
    dispatcher = Dispatcher([sink], store.outbox(), throttle_s=0, retry_max_s=60, clock=clock)
    settlement = ProposalSettlement(store, dispatcher)

    store.save_proposal(records.proposal(proposal("p1", ("R1", "R2"))))
    store.save_proposal(records.proposal(proposal("p2", ("R1", "R2"))))  # supersedes p1 and owns the same incident
    assert settlement.resolve_new() == 0  # p1 superseded, but p2 keeps "proposal:R1,R2" firing

    store.decide("p2", "approved", actor="maria", comment="go")
    assert settlement.resolve_new() == 1
    dispatcher.deliver_due()
    (alert,) = sink.received
    assert alert.key == "proposal:R1,R2" and alert.resolved
    assert alert.annotations["decided_by"] == "maria" and alert.annotations["decision"] == "approved"

    # A restarted worker reads the log again: nothing new goes out.
    ProposalSettlement(store, dispatcher).resolve_new()
    clock.advance(timedelta(seconds=10))
    dispatcher.deliver_due()
    assert len(sink.received) == 1
