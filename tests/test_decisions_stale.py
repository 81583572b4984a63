"""Stale approvals. An approval checks each move against the owners the
store knows now (mirrored from the worker's state snapshots) and refuses stale moves unless
told to approve only the still-valid ones; an approved move then wins over CRM owner changes
dated before the approval and loses to those dated after it. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from alerts import decisions
from alerts.decisions import DecisionError, approval_messages
from alerts.store import Store
from core.contract import validate_envelope
from monitor.state import apply_account_event
from core import topics
from tests import records

PROPOSED_AT = "2025-05-01T00:00:00+00:00"


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, dict[str, Any]]] = []

    async def send(self, topic: str, key: bytes, value: dict[str, Any]) -> None:
        self.sent.append((topic, key, value))


def proposal(moves: list[tuple[str, str, str]]) -> dict:
    return {
        "proposal_id": "p1",
        "status": "optimal",
        "imbalance_before": 0.2,
        "imbalance_after": 0.05,
        "event_time": PROPOSED_AT,
        "trigger_signals": [],
        "moves": [
            {"account_id": a, "from_rep": f, "to_rep": t, "potential": 10.0, "workload": 0.0, "reason": "test"}
            for a, f, t in moves
        ],
    }


def snapshot(account_id: str, rep_id: str | None, occurred_at: str, closed: bool = False) -> dict:
    """An account snapshot as the intake sends it on territory.state (the fields that matter here)."""
    return {
        "kind": "account",
        "account_id": account_id,
        "rep_id": rep_id,
        "closed": closed,
        "known": True,
        "owner_at": occurred_at,
        "occurred_at": occurred_at,
        "source": "crm.accounts:0",
    }


def rep_snapshot(rep_id: str, active: bool, occurred_at: str = PROPOSED_AT) -> dict:
    return {"kind": "rep", "rep_id": rep_id, "active": active, "occurred_at": occurred_at, "source": "crm.reps:0"}


@pytest.fixture
def company(store):
    """Four moves proposed at PROPOSED_AT; since then a1 went to C in the CRM, a2 was closed,
    a3's target rep D left, a4 is as it was."""
    store.save_proposal(
        records.proposal(proposal([("a1", "A", "B"), ("a2", "A", "B"), ("a3", "A", "D"), ("a4", "A", "B")]))
    )
    later = "2025-05-03T00:00:00+00:00"
    store.record_state(
        [
            snapshot("a1", "A", PROPOSED_AT),
            snapshot("a2", "A", PROPOSED_AT),
            snapshot("a3", "A", PROPOSED_AT),
            snapshot("a4", "A", PROPOSED_AT),
            rep_snapshot("A", True),
            rep_snapshot("B", True),
            rep_snapshot("D", True),
        ]
    )
    store.record_state(
        [
            snapshot("a1", "C", later),
            snapshot("a2", "A", later, closed=True),
            rep_snapshot("D", False, later),
            snapshot("a4", "A", "2025-05-04T00:00:00+00:00"),
        ]
    )
    return store


def test_an_approval_with_stale_moves_is_refused_naming_each_and_why(company):
    publisher = Recorder()
    with pytest.raises(DecisionError) as refused:
        asyncio.run(decisions.approve(company, publisher, "p1", actor="maria", comment="go"))
    message = str(refused.value)
    assert "3 of 4 moves are stale" in message
    assert "a1: now owned by C, not A" in message
    assert "a2: the account is closed" in message
    assert "a3: the target rep D is not active" in message
    assert "a4" not in message.split("stale:", 1)[1]
    assert "only the still-valid moves" in message
    assert company.proposal("p1").status == "pending" and publisher.sent == []


def test_approving_only_the_still_valid_moves_publishes_those_and_audits_the_rest(company):
    publisher = Recorder()
    outcome = asyncio.run(
        decisions.approve(company, publisher, "p1", actor="maria", comment="go", only_valid_moves=True)
    )
    assert (outcome.status, outcome.moves) == ("applied", 1)
    assert {key for _, key, _ in publisher.sent} == {b"a4"}
    (approved,) = [a for a in company.audit("p1") if a.action == "approved"]
    assert approved.detail["excluded"] == {
        "a1": "now owned by C, not A",
        "a2": "the account is closed",
        "a3": "the target rep D is not active",
    }
    # A retry publishes the same: the excluded moves stay out.
    row = company.proposal("p1")
    assert approval_messages(row, company.moves("p1")) == publisher.sent


def test_an_approval_of_nothing_valid_is_refused_even_when_only_valid_moves_are_asked_for(store):
    store.save_proposal(records.proposal(proposal([("a1", "A", "B")])))
    store.record_state([snapshot("a1", "C", "2025-05-02T00:00:00+00:00")])
    with pytest.raises(DecisionError, match="no move is still valid"):
        asyncio.run(decisions.approve(store, Recorder(), "p1", actor="maria", comment="go", only_valid_moves=True))
    assert store.proposal("p1").status == "pending"


def test_an_erased_account_leaves_the_owner_mirror(store):
    store.record_state([snapshot("a1", "A", PROPOSED_AT)])
    store.erase_account("a1")
    assert store.known_owners(["a1"]) == {}


def _override_then_upsert(store: Store, upsert_at: str) -> str:
    """Approve a1: A -> B, apply the published override, then a CRM upsert of a1 saying
    owner A dated `upsert_at` (arriving after the override); the owner the worker keeps."""
    publisher = Recorder()
    outcome = asyncio.run(decisions.approve(store, publisher, "p1", actor="maria", comment="go"))
    assert outcome.status == "applied"
    (override,) = [value for topic, _, value in publisher.sent if topic == topics.OVERRIDES]
    state = apply_account_event(
        None,
        validate_envelope(
            {
                "event_id": "u0",
                "type": "account.upserted",
                "occurred_at": PROPOSED_AT,
                "source": "crm",
                "data": {"account_id": "a1", "lat": 52.5, "lon": 13.4, "rep_id": "A"},
            },
            topic=topics.ACCOUNTS,
            key=b"a1",
        ),
    )
    state = apply_account_event(state, validate_envelope(override, topic=topics.OVERRIDES, key=b"a1"))
    assert state.rep_id == "B"
    state = apply_account_event(
        state,
        validate_envelope(
            {
                "event_id": "u1",
                "type": "account.upserted",
                "occurred_at": upsert_at,
                "source": "crm",
                "data": {"account_id": "a1", "lat": 52.5, "lon": 13.4, "rep_id": "A"},
            },
            topic=topics.ACCOUNTS,
            key=b"a1",
        ),
    )
    return state.rep_id


def test_an_approved_move_wins_over_a_crm_owner_upsert_dated_before_the_approval(store):
    """The worker had seen data up to 2025-05-10 when the manager approved: a CRM upsert
    dated 2025-05-05 (after the proposal, before the approval) that arrives late must not
    undo the approved move, which the CRM export carries."""
    store.save_proposal(records.proposal(proposal([("a1", "A", "B")])))
    store.record_state([snapshot("a1", "A", PROPOSED_AT), snapshot("x9", "Z", "2025-05-10T00:00:00+00:00")])
    assert _override_then_upsert(store, "2025-05-05T00:00:00+00:00") == "B"


def test_a_crm_owner_upsert_dated_after_the_approval_wins(store):
    """The CRM is the system of record: an owner set there after the approval has the last word."""
    store.save_proposal(records.proposal(proposal([("a1", "A", "B")])))
    store.record_state([snapshot("a1", "A", PROPOSED_AT), snapshot("x9", "Z", "2025-05-10T00:00:00+00:00")])
    assert _override_then_upsert(store, "2025-05-11T00:00:00+00:00") == "A"


def test_the_owner_mirror_writes_changes_only_and_erases_an_erased_account_everywhere(store):
    from sqlalchemy import event

    from alerts.agents import OwnerMirror

    store.save_proposal(records.proposal(proposal([("a1", "A", "B")])))
    mirror = OwnerMirror(store)
    mirror.record([snapshot("a1", "A", PROPOSED_AT), rep_snapshot("B", True)])
    writes = []
    event.listen(
        store.engine,
        "before_cursor_execute",
        lambda conn, cursor, statement, *rest: (
            writes.append(statement) if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")) else None
        ),
    )
    mirror.record([snapshot("a1", "A", PROPOSED_AT), rep_snapshot("B", True)])  # nothing new
    assert writes == []
    mirror.record(
        [
            {
                "kind": "account_erased",
                "account_id": "a1",
                "occurred_at": "2026-01-01T00:00:00+00:00",
                "source": "crm.accounts:0",
            }
        ]
    )
    assert store.known_owners(["a1"]) == {} and store.moves("p1") == []
    assert store.state_time() == PROPOSED_AT  # an erasure does not move the data's clock


@pytest.mark.slow
def test_a_running_worker_mirrors_owners_into_the_store(broker, start_worker):
    """The owner-mirror agent beside the planner on territory.state: the store learns every
    account's owner and every rep's activity, and the data's clock."""
    from tests.kafka_io import produce, wait_for
    from tests.test_end_to_end import ACCOUNTS, REPS, scenario

    worker = start_worker(TERRITORY_PLANNER_INTERVAL_S="0.3")
    produce(broker.bootstrap_servers, scenario())
    worker_store = Store(worker.db_url)
    worker_store.migrate()  # the worker may not have got to it yet (it waits for the same lock)
    wait_for(
        lambda: len(worker_store.known_owners(ACCOUNTS)) == len(ACCOUNTS),
        90,
        "the worker to mirror every account's owner into the store",
    )
    assert {a: o.rep_id for a, o in worker_store.known_owners(ACCOUNTS).items()} == {
        a: owner for a, (owner, *_rest) in ACCOUNTS.items()
    }
    assert worker_store.known_reps(REPS) == dict.fromkeys(REPS, True)
    assert worker_store.state_time() is not None
    worker_store.engine.dispose()


def test_the_owner_mirror_keeps_what_it_could_not_write_and_writes_it_once_the_store_is_back(store):
    """The mirror reads territory.state beside the planner: while the database is away it must
    not wait for it (that held the planner up, and no signal was published), and nothing it
    was told may be lost."""
    from alerts.agents import OwnerMirror

    mirror = OwnerMirror(store)
    real, calls = store.record_owners, []

    def unavailable(*args, **kwargs):
        calls.append(args)
        raise OperationalError("INSERT", {}, Exception("connection refused"))

    store.record_owners = unavailable
    mirror.add([snapshot("a1", "A", PROPOSED_AT)])
    with pytest.raises(OperationalError):
        mirror.flush()
    mirror.add([snapshot("a2", "B", PROPOSED_AT), rep_snapshot("B", False)])
    assert mirror.pending == 3 and len(calls) == 1
    store.record_owners = real
    mirror.flush()
    assert mirror.pending == 0
    assert set(store.known_owners(["a1", "a2"])) == {"a1", "a2"}
