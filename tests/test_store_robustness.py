"""Issue 13 (valid input must never stop the service), the store's share, on SQLite and on
a real PostgreSQL server: long ids fit, racing decisions, erasure everywhere, retention,
pagination, locked databases."""

from __future__ import annotations

import multiprocessing
import threading

import pytest
from sqlalchemy import create_engine, event

from alerts.schema import Base
from alerts.store import DecisionError, Store
from tests.postgres import postgres_server


@pytest.fixture(scope="module")
def postgres_url():
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'db' / 'store.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
        engine = create_engine(url)
        with engine.begin() as connection:  # each test starts from an empty database
            for table in ("alembic_version", *reversed([t.name for t in Base.metadata.sorted_tables])):
                connection.exec_driver_sql(f'DROP TABLE IF EXISTS "{table}" CASCADE')
        engine.dispose()
    store = Store(url)
    store.migrate()
    yield store
    store.engine.dispose()


def proposal(proposal_id: str, accounts: list[str], reps: tuple[str, str] = ("A", "B"),
             event_time: str = "2025-05-01T00:00:00+00:00") -> dict:
    return {"proposal_id": proposal_id, "status": "optimal", "imbalance_before": 0.2, "imbalance_after": 0.05,
            "event_time": event_time, "trigger_signals": [],
            "moves": [{"account_id": a, "from_rep": reps[0], "to_rep": reps[1], "potential": 10.0, "workload": 0.0,
                       "reason": "test"} for a in accounts]}


# --------------------------------------------------------------------------- item 6: racing decisions


def _decide_when_both_are_ready(url: str, proposal_id: str, decision: str, barrier, results) -> None:
    """Runs in its own process: decide, but hold the first write to the proposals table until
    the other process reaches its own (so both have read the proposal as pending). A process
    blocked earlier by a row lock never reaches the barrier; the other then goes on after the
    barrier's timeout."""
    store = Store(url)
    waited = []

    def hold_the_write(connection, cursor, statement, parameters, context, executemany):
        if not waited and statement.lstrip().upper().startswith("UPDATE PROPOSALS"):
            waited.append(True)
            try:
                barrier.wait(timeout=15)
            except threading.BrokenBarrierError:
                pass

    event.listen(store.engine, "before_cursor_execute", hold_the_write)
    try:
        store.decide(proposal_id, decision, actor=f"{decision}-person", comment="race")
        results.put((decision, "won"))
    except DecisionError as error:
        results.put((decision, f"refused: {error}"))
    except Exception as error:  # noqa: BLE001 - the test reports any other failure
        results.put((decision, f"crashed: {type(error).__name__}: {error}"))
    finally:
        store.engine.dispose()


def test_approve_and_reject_racing_in_two_processes_one_wins_the_other_is_told_it_is_decided(store):
    store.save_proposal(proposal("p1", ["a1"]))
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    processes = [context.Process(target=_decide_when_both_are_ready, args=(store.url, "p1", decision, barrier,
                                                                             results))
                 for decision in ("approved", "rejected")]
    try:
        for process in processes:
            process.start()
        outcomes = dict(results.get(timeout=120) for _ in processes)
        for process in processes:
            process.join(30)
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join()
    winners = [decision for decision, outcome in outcomes.items() if outcome == "won"]
    assert len(winners) == 1, outcomes
    (loser,) = set(outcomes) - set(winners)
    assert outcomes[loser].startswith(f"refused: proposal p1 is already {winners[0]} by {winners[0]}-person"), outcomes
    row = store.proposal("p1")
    assert (row.status, row.decided_by) == (winners[0], f"{winners[0]}-person")
    assert [a.action for a in reversed(store.audit("p1"))] == ["proposed", winners[0]]
