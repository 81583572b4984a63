"""The proposal store on SQLite and on a real PostgreSQL server: migrations, idempotent
writes, superseding, decisions and their audit log, the alert outbox, reports, erasure."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from alerts.schema import Base
from alerts.store import DecisionError, Store
from core.clock import ManualClock
from tests import records


def proposal(proposal_id: str, accounts: list[str], reps: tuple[str, str] = ("A", "B")) -> dict:
    return {
        "proposal_id": proposal_id,
        "status": "optimal",
        "imbalance_before": 0.2,
        "imbalance_after": 0.05,
        "event_time": "2025-05-01T00:00:00+00:00",
        "trigger_signals": [],
        "moves": [
            {
                "account_id": a,
                "from_rep": reps[0],
                "to_rep": reps[1],
                "potential": 10.0,
                "workload": 0.0,
                "reason": "test",
            }
            for a in accounts
        ],
    }


def test_migrations_upgrade_an_empty_database_to_the_models(store):
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        tables = set(inspect(connection).get_table_names())
    # Index/type rendering differs harmlessly between backends; tables and columns must not.
    assert [d for d in differences if d[0] in ("add_table", "remove_table", "add_column", "remove_column")] == []
    assert {"signals", "proposals", "moves", "audit_log", "deliveries", "reports", "alembic_version"} <= tables
    store.migrate()  # a second upgrade is a no-op


def test_a_pre_alembic_database_is_stamped_and_upgraded(tmp_path):
    from alembic import command
    from alembic.config import Config
    from importlib.resources import files

    url = f"sqlite:///{tmp_path / 'old.db'}"
    config = Config()
    config.set_main_option("script_location", str(files("alerts") / "migrations"))
    engine = create_engine(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.exec_driver_sql("DROP TABLE alembic_version")  # as the first release left it
    store = Store(url)
    store.migrate()
    assert store.save_proposal(records.proposal(proposal("p1", ["a1"]))) is True
    assert store.proposal("p1").reps == "A,B"


def test_proposal_is_stored_once_and_newer_supersedes_older_for_the_same_reps(store):
    assert store.save_proposal(records.proposal(proposal("p1", ["a1"]))) is True
    store.mark_alerted("p1")
    assert store.save_proposal(records.proposal(proposal("p1", ["a1"]))) is False  # redelivered: no second alert
    assert (
        store.save_proposal(records.proposal(proposal("p2", ["a2"], reps=("C", "D")))) is True
    )  # other reps: both stand
    assert store.save_proposal(records.proposal(proposal("p3", ["a3"], reps=("B", "E")))) is True  # shares B with p1
    status = {row.proposal_id: (row.status, row.superseded_by) for row in store.proposals()}
    assert status == {"p1": ("superseded", "p3"), "p2": ("pending", None), "p3": ("pending", None)}
    assert [row.proposal_id for row in store.proposals("pending")] == ["p2", "p3"]


def test_unalerted_proposal_is_alerted_again_after_a_crash(store):
    store.save_proposal(records.proposal(proposal("p1", ["a1"])))
    assert store.save_proposal(records.proposal(proposal("p1", ["a1"]))) is True


def test_decisions_follow_the_lifecycle_and_are_audited(store):
    store.save_proposal(records.proposal(proposal("p1", ["a1"])))
    store.save_proposal(records.proposal(proposal("p2", ["a2"], reps=("C", "D"))))
    row = store.decide("p1", "approved", actor="maria", comment="fits the Q3 plan")
    assert (row.status, row.decided_by, row.decision_comment) == ("approved", "maria", "fits the Q3 plan")
    with pytest.raises(DecisionError, match="p1 is already approved by maria, not pending"):
        store.decide("p1", "rejected", actor="maria")
    with pytest.raises(DecisionError, match="no proposal 'nope'"):
        store.decide("nope", "approved", actor="maria")
    with pytest.raises(DecisionError, match="decision must be one of"):
        store.decide("p2", "maybe", actor="maria")
    store.decide("p2", "rejected", actor="tom", comment="R7 is on leave")
    assert store.mark_applied("p1") is True and store.mark_applied("p1") is False
    assert store.mark_applied("p2") is False  # rejected proposals are never applied
    assert store.proposal("p1").status == "applied" and store.proposal("p1").applied_at is not None
    trail = [(a.action, a.actor, a.proposal_id, a.comment) for a in reversed(store.audit())]
    assert trail == [
        ("proposed", "worker", "p1", None),
        ("proposed", "worker", "p2", None),
        ("approved", "maria", "p1", "fits the Q3 plan"),
        ("rejected", "tom", "p2", "R7 is on leave"),
        ("applied", "worker", "p1", None),
    ]


def test_outbox_keeps_one_row_per_incident_and_sink_until_sent(store):
    outbox = store.outbox()
    outbox.upsert("shock:DE-08", "webhook", {"v": 1}, due_at=100.0)
    outbox.upsert("shock:DE-08", "webhook", {"v": 2}, due_at=150.0)  # an update, not a second alert
    outbox.upsert("shock:DE-08", "smtp", {"v": 2}, due_at=100.0)
    assert outbox.due(99.0) == []
    webhook, smtp = outbox.due(120.0)
    assert [(d.sink, d.alert) for d in (webhook, smtp)] == [("webhook", {"v": 2}), ("smtp", {"v": 2})]
    outbox.mark_failed(webhook, "connection refused", next_at=130.0)
    outbox.upsert("shock:DE-08", "webhook", {"v": 3}, due_at=0.0)  # a failing row keeps its retry time
    outbox.mark_sent(smtp, 121.0)
    assert [(d.sink, d.alert, d.attempts, d.last_error) for d in outbox.due(130.0)] == [
        ("webhook", {"v": 3}, 1, "connection refused")
    ]
    assert outbox.last_sent("shock:DE-08", "smtp") == (121.0, {"v": 2})
    assert outbox.last_sent("shock:DE-08", "webhook") is None
    assert outbox.pending_count() == 1


def test_a_sink_that_is_down_gets_the_alert_from_the_database_outbox_when_it_is_back(store):
    from alerts.alert import alert_from_signal
    from alerts.dispatch import Dispatcher
    from alerts.sinks import SinkError

    class FlakySink:
        name = "webhook"

        def __init__(self):
            self.up, self.received = False, []

        def send(self, alert, previous=None):
            if not self.up:
                raise SinkError("connection refused")
            self.received.append(alert)

    clock = ManualClock(datetime.fromtimestamp(1000.0, timezone.utc))
    sink = FlakySink()
    dispatcher = Dispatcher([sink], store.outbox(), throttle_s=300, retry_max_s=60, clock=clock)
    dispatcher.submit(
        alert_from_signal(
            records.signal(
                {
                    "signal_id": "s1",
                    "kind": "market_shock",
                    "state": "drop",
                    "severity": "critical",
                    "subject": {"type": "region", "id": "DE-01"},
                    "detected_at": "2025-04-10T00:00:00+00:00",
                    "emitted_at": "2026-11-24T10:00:00+00:00",
                    "evidence": {},
                }
            )
        )
    )
    assert dispatcher.deliver_due().failed == 1 and sink.received == []
    # A restart: a new dispatcher on the same database still holds the alert.
    sink.up = True
    clock.advance(timedelta(seconds=61))
    dispatcher = Dispatcher([sink], store.outbox(), throttle_s=300, retry_max_s=60, clock=clock)
    assert dispatcher.deliver_due().sent == 1
    assert [a.key for a in sink.received] == ["market_shock:region:DE-01"]
    assert store.outbox().pending_count() == 0


def test_reports_are_kept(store):
    report_id = store.save_report("2026-W48", "Weekly review", "<html></html>", ["p1"])
    store.report_sent(report_id)
    (row,) = store.reports("2026-W48")
    assert (row.subject, row.proposal_ids, row.sent_at is not None) == ("Weekly review", ["p1"], True)


def test_erase_removes_moves_and_scrubs_payloads(store):
    store.save_proposal(records.proposal(proposal("p1", ["a1", "a2"])))
    store.save_signal(
        records.signal(
            {
                "signal_id": "s1",
                "kind": "coverage_gap",
                "state": "open",
                "severity": "critical",
                "subject": {"type": "rep", "id": "C"},
                "detected_at": "2025-05-01",
                "evidence": {"account_ids": ["a1", "a3"]},
            }
        )
    )
    assert store.erase_account("a1") == {"moves": 1, "proposals_scrubbed": 1, "signals_scrubbed": 1}
    assert [m.account_id for m in store.moves("p1")] == ["a2"]
    assert [m["account_id"] for m in store.proposals()[0].payload["moves"]] == ["a2"]
    assert store.signals()[0].payload["evidence"]["account_ids"] == ["a3"]
    assert set(store.erase_account("a1").values()) == {0}


def _migrate(url: str) -> None:
    Store(url).migrate()


def test_workers_starting_together_migrate_the_schema_once(store):
    """Four processes migrate one empty database at once (workers starting together): each
    waits for the one that holds the migration lock, none fails."""
    import multiprocessing

    from sqlalchemy import inspect

    engine = create_engine(store.url)
    with engine.begin() as connection:  # back to empty: the fixture migrated it already
        for table in ("alembic_version", *reversed([t.name for t in Base.metadata.sorted_tables])):
            connection.exec_driver_sql(f'DROP TABLE IF EXISTS "{table}"')
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_migrate, args=(store.url,)) for _ in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    assert [process.exitcode for process in processes] == [0, 0, 0, 0]
    assert {"proposals", "signals", "deliveries", "alembic_version"} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_an_alert_erased_while_it_is_sent_ends_the_delivery_round_normally(store):
    """`erase_account` deletes an outbox row whose key names the account, and it may do so while
    a delivery round sends that row (the owner mirror, or `territory erase`, runs beside the
    dispatcher): the round records the other rows and sends nothing twice."""
    from alerts.alert import alert_from_signal
    from alerts.dispatch import Dispatcher

    class ErasingSink:
        name = "webhook"

        def __init__(self):
            self.received = []

        def send(self, alert, previous=None):
            self.received.append(alert.key)
            if alert.key.endswith(":acct-1"):
                store.erase_account("acct-1")  # the account is erased while its alert is in flight

    clock = ManualClock(datetime.fromtimestamp(1000.0, timezone.utc))
    sink = ErasingSink()
    dispatcher = Dispatcher([sink], store.outbox(), throttle_s=300, retry_max_s=60, clock=clock)
    for signal_id, subject in (("s1", {"type": "account", "id": "acct-1"}), ("s2", {"type": "region", "id": "DE-01"})):
        signal = {
            "signal_id": signal_id,
            "kind": "market_shock",
            "state": "drop",
            "severity": "critical",
            "subject": subject,
            "detected_at": "2025-04-10T00:00:00+00:00",
            "emitted_at": "2026-11-24T10:00:00+00:00",
            "evidence": {},
        }
        dispatcher.submit(alert_from_signal(records.signal(signal)))
    report = dispatcher.deliver_due()
    assert (report.sent, report.failed) == (2, 0)
    assert sorted(sink.received) == ["market_shock:account:acct-1", "market_shock:region:DE-01"]
    assert store.outbox().pending_count() == 0
    clock.advance(timedelta(seconds=600))
    dispatcher.deliver_due()
    assert len(sink.received) == 2  # nothing sent twice
