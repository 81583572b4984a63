"""Broker and store outages.

The broker is paused for 30 s (SIGSTOP, SIGCONT: the embedded broker keeps its data in
memory, so it cannot be restarted) and the worker resumes without help. The database
(a private PostgreSQL) goes away while the planner publishes signals and proposals: they
are retried and stored when it is back, none lost.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from sqlalchemy import create_engine, text

from simulator import default_shock, generate_company, generate_events
from core import topics
from territory.backtest import BacktestResult, run_backtest
from core.settings import Settings
from tests.kafka_io import committed_offsets, end_offsets, produce, read_all, wait_for
from tests.postgres import running_postgres
from tests.services import in_own_process
from tests.test_crash import PLANNING, account_states, planning_settings

pytestmark = pytest.mark.slow

PAUSE_S = 30


def all_committed(bootstrap: str, group: str, partitions: int) -> bool:
    ends = end_offsets(bootstrap, {topic: partitions for topic in topics.INPUT_TOPICS})
    return all(offset >= ends[tp] for tp, offset in committed_offsets(bootstrap, group, ends).items())


def test_worker_resumes_after_the_broker_was_paused_for_30_seconds(broker, start_worker):
    company = generate_company(seed=41, n_reps=5, n_accounts=400)
    events = generate_events(company, months=8, seed=41)
    half = len(events) // 2
    worker = start_worker(TERRITORY_APP_ID="pause")
    produce(broker.bootstrap_servers, events[:half])
    wait_for(
        lambda: worker.metric("territory_intake_events_total", {"outcome": "applied"}) >= half,
        180,
        "the first half applied",
    )

    os.kill(broker.process.pid, signal.SIGSTOP)
    try:
        paused = time.monotonic()
        clean = run_backtest(events, Settings())  # the clean run fills part of the pause
        time.sleep(max(0.0, PAUSE_S - (time.monotonic() - paused)))
        assert worker.process.poll() is None, "the worker gave up while the broker was away"
    finally:
        os.kill(broker.process.pid, signal.SIGCONT)

    produce(broker.bootstrap_servers, events[half:])
    wait_for(
        lambda: all_committed(broker.bootstrap_servers, "pause", broker.partitions),
        240,
        "the same worker to consume the second half after the pause",
    )
    assert worker.process.poll() is None  # no restart, no manual action
    wait_for(lambda: worker.metric("territory_worker_ready") == 1, 60, "the worker to be ready again")
    applied = worker.metric("territory_intake_events_total", {"outcome": "applied"})
    duplicates = worker.metric("territory_intake_events_total", {"outcome": "duplicate"})
    assert applied == len(events)  # redelivered after the pause: recognised as duplicates, not applied twice
    assert duplicates >= 0
    assert account_states(value for _, value in read_all(broker.bootstrap_servers, topics.STATE)) == account_states(
        clean.snapshots.values()
    )


def outage_events() -> list:
    company = generate_company(seed=7, n_accounts=800)
    return generate_events(company, months=20, shock=default_shock(company), seed=7)


def clean_outage_run() -> BacktestResult:
    """The events without Kafka or an outage (in a process of its own, beside the live run)."""
    settings = planning_settings()
    return run_backtest(outage_events(), settings)


def test_signals_and_proposals_wait_for_the_database_and_are_stored_when_it_is_back(broker, start_worker):
    events = outage_events()
    with in_own_process(clean_outage_run) as clean_run, running_postgres() as database:
        worker = start_worker(
            TERRITORY_APP_ID="store-outage",
            TERRITORY_DB_URL=database.url,
            TERRITORY_ALERT_SINKS="kafka,log",
            **PLANNING,
        )
        wait_for(lambda: worker.metric("territory_worker_ready") == 1, 120, "the worker to be ready")
        database.stop()
        produce(broker.bootstrap_servers, events)
        clean = clean_run.result(timeout=600)
        assert clean.signals and clean.proposals
        # The planner goes on judging: every signal of the clean run is published meanwhile.
        wait_for(
            lambda: len(read_all(broker.bootstrap_servers, topics.SIGNALS, quiet_s=1)) >= len(clean.signals),
            300,
            "the planner to publish its signals while the database is down",
        )
        wait_for(lambda: worker.metric("territory_store_errors_total") > 0, 30, "the store errors to show")
        assert worker.metric("territory_worker_ready") == 0  # /readyz names the store while it is down
        time.sleep(5)
        database.start()

        wait_for(
            lambda: all_committed(broker.bootstrap_servers, "store-outage", broker.partitions),
            240,
            "every input message committed",
        )

        def stored() -> tuple[list[str], dict[str, object]]:
            engine = create_engine(database.url)
            try:
                with engine.connect() as connection:
                    signals = sorted(row[0] for row in connection.execute(text("SELECT signal_id FROM signals")))
                    proposals = dict(connection.execute(text("SELECT proposal_id, alerted_at FROM proposals")).all())
            finally:
                engine.dispose()
            return signals, proposals

        wait_for(
            lambda: (
                stored()[0] == sorted(s["signal_id"] for s in clean.signals)
                and set(stored()[1]) == {p["proposal_id"] for p in clean.proposals}
                and all(stored()[1].values())
            ),
            120,
            "every signal and proposal stored and alerted",
        )
        assert worker.process.poll() is None
        assert "store unavailable while reading signals, retrying" in worker.log()
