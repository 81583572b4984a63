"""territory_store_proposals counts proposals with one grouped COUNT, not by loading rows."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import event

from alerts.agents import proposal_counts
from alerts.store import Store
from core.metrics import PROPOSAL_STATES
from tests import records


def proposal(proposal_id: str, reps: tuple[str, str]) -> dict:
    return {
        "proposal_id": proposal_id,
        "status": "optimal",
        "imbalance_before": 0.2,
        "imbalance_after": 0.05,
        "event_time": "2025-05-01T00:00:00+00:00",
        "trigger_signals": [],
        "moves": [
            {
                "account_id": f"acc-{proposal_id}",
                "from_rep": reps[0],
                "to_rep": reps[1],
                "potential": 10.0,
                "workload": 0.0,
                "reason": "test",
            }
        ],
    }


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.migrate()
    yield store
    store.engine.dispose()


def statements_during(store: Store, action) -> tuple[object, list[str]]:
    """What `action()` returned and the SQL statements it sent."""
    sent: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        sent.append(statement)

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        return action(), sent
    finally:
        event.remove(store.engine, "before_cursor_execute", record)


def test_an_empty_store_counts_zero_in_every_state(store):
    assert store.proposal_counts() == {}
    assert proposal_counts(store) == {state: 0 for state in PROPOSAL_STATES}


def test_counts_per_state_come_from_one_grouped_count(store):
    store.save_proposal(records.proposal(proposal("p1", ("A", "B"))))
    store.save_proposal(records.proposal(proposal("p2", ("A", "C"))))  # supersedes p1 (shares rep A)
    store.save_proposal(records.proposal(proposal("p3", ("D", "E"))))
    store.save_proposal(records.proposal(proposal("p4", ("F", "G"))))
    store.decide("p3", "approved", actor="m.keller", comment="go")
    store.mark_applied("p3")
    store.decide("p4", "rejected", actor="m.keller", comment="no")

    counts, sent = statements_during(store, lambda: proposal_counts(store))

    assert counts == {"pending": 1, "approved": 0, "rejected": 1, "superseded": 1, "applied": 1}
    assert list(counts) == list(PROPOSAL_STATES)
    assert store.proposal_counts() == {"pending": 1, "rejected": 1, "superseded": 1, "applied": 1}
    # One statement, grouped, that reads no proposal's payload.
    assert len(sent) == 1, sent
    assert "count(" in sent[0].lower() and "group by" in sent[0].lower()
    assert "payload" not in sent[0].lower()
