"""The store's share, on SQLite and on
a real PostgreSQL server: long ids fit, racing decisions, erasure everywhere, retention,
pagination, locked databases."""

from __future__ import annotations

import multiprocessing
import threading

import pytest
from sqlalchemy import event

from alerts.store import DecisionError, Store
from tests import records


def proposal(
    proposal_id: str,
    accounts: list[str],
    reps: tuple[str, str] = ("A", "B"),
    event_time: str = "2025-05-01T00:00:00+00:00",
) -> dict:
    return {
        "proposal_id": proposal_id,
        "status": "optimal",
        "imbalance_before": 0.2,
        "imbalance_after": 0.05,
        "event_time": event_time,
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


# --------------------------------------------------------------------------- item 6: racing decisions


def _decide_when_both_are_ready(url: str, proposal_id: str, decision: str, barrier, results) -> None:
    """Runs in its own process: decide, but hold the first write to the proposals table until
    the other process reaches its own (so both have read the proposal as pending). A process
    blocked earlier by a row lock never reaches the barrier; the other then goes on after the
    barrier's timeout. On SQLite that is always so (each decision takes the write lock at
    its start), so a short timeout there."""
    store = Store(url)
    hold_s = 2 if store.is_sqlite else 15
    waited = []

    def hold_the_write(connection, cursor, statement, parameters, context, executemany):
        if not waited and statement.lstrip().upper().startswith("UPDATE PROPOSALS"):
            waited.append(True)
            try:
                barrier.wait(timeout=hold_s)
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
    store.save_proposal(records.proposal(proposal("p1", ["a1"])))
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    processes = [
        context.Process(target=_decide_when_both_are_ready, args=(store.url, "p1", decision, barrier, results))
        for decision in ("approved", "rejected")
    ]
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


# --------------------------------------------------------------------------- item 5: long ids, bad data


def long_id(prefix: str) -> str:
    """An id of the contract's maximum length (core.contract.MAX_ID_LENGTH)."""
    from core.contract import MAX_ID_LENGTH

    return (prefix + "-" + "x" * MAX_ID_LENGTH)[:MAX_ID_LENGTH]


def test_ids_as_long_as_the_contract_allows_fit_every_column(store):
    from alerts.alert import alert_from_proposal, alert_from_signal
    from alerts.dispatch import Dispatcher

    rep = long_id("rep-lisa.mueller@example-crm-export.com")
    signal = {
        "signal_id": "s-long",
        "kind": "imbalance",
        "state": "over",
        "severity": "warning",
        "subject": {"type": "rep", "id": rep},
        "detected_at": "2025-05-01T00:00:00+00:00",
        "emitted_at": "2026-11-24T10:00:00+00:00",
        "evidence": {"metric": "potential", "share": 0.5, "fair_share": 0.3},
    }
    assert store.save_signal(records.signal(signal)) is True
    # Nine HubSpot reps (e-mail addresses as ids), each as long as allowed, in one proposal.
    reps = [long_id(f"rep{i}.name@hubspot-portal-{i}.example.com") for i in range(9)]
    moves = [
        {
            "account_id": long_id(f"account-{i}"),
            "from_rep": reps[i],
            "to_rep": reps[(i + 1) % 9],
            "potential": 10.0,
            "workload": 1.0,
            "reason": f"owner {reps[i]} inactive; nearest active rep {reps[(i + 1) % 9]}",
        }
        for i in range(9)
    ]
    wide = {**proposal("p-wide", []), "moves": moves}
    assert store.save_proposal(records.proposal(wide)) is True
    dispatcher = Dispatcher([], store.outbox(), throttle_s=60, retry_max_s=60)
    dispatcher.sinks = {"webhook": None}  # only the outbox rows are under test
    dispatcher.submit(alert_from_signal(records.signal(signal)))
    dispatcher.submit(alert_from_proposal(records.proposal(wide)))
    assert {item.key for item in store.outbox().due(float("inf"))} == {
        alert_from_signal(records.signal(signal)).key,
        alert_from_proposal(records.proposal(wide)).key,
    }
    row = store.decide("p-wide", "approved", actor=long_id("manager"), comment="nine reps agreed")
    assert row.status == "approved"
    assert {m.account_id for m in store.moves("p-wide")} == {m["account_id"] for m in moves}
    assert store.signals()[0].subject == f"rep:{rep}"


def test_data_the_database_refuses_is_skipped_and_counted_not_retried_for_ever(store):
    """A NUL character is valid in a contract id, but PostgreSQL cannot store it in a text
    column (DataError). The alert stage must go on with the next message, counting the one it
    dropped; an outage (the database unreachable) is still retried."""
    import asyncio

    from alerts.agents import RejectedByStore, StoreRetry
    from core.metrics import Metrics

    metrics = Metrics.create()
    stored = StoreRetry(metrics, first_delay_s=0.01, max_delay_s=0.01)
    nul = proposal("p-nul", ["acc\x00ount"])

    async def save_both() -> list[str]:
        outcomes = []
        for item in (nul, proposal("p-next", ["a2"], reps=("C", "D"))):
            try:
                await asyncio.wait_for(
                    stored.call(store.save_proposal, records.proposal(item), what="storing a proposal"), 30
                )
                outcomes.append("stored")
            except RejectedByStore:
                outcomes.append("rejected")
        return outcomes

    outcomes = asyncio.run(save_both())
    rejected = (
        metrics.registry.get_sample_value("territory_store_rejected_writes_total", {"operation": "storing a proposal"})
        or 0
    )
    if store.is_sqlite:  # SQLite stores the NUL
        assert outcomes == ["stored", "stored"] and rejected == 0
    else:
        assert outcomes == ["rejected", "stored"] and rejected == 1
        assert store.proposal("p-nul") is None
    assert store.proposal("p-next").status == "pending"
    assert (
        metrics.registry.get_sample_value("territory_store_errors_total", {"operation": "storing a proposal"}) or 0
    ) == 0


def test_upgrading_a_0002_database_keeps_its_outbox_rows_findable(store):
    """Migration 0003 on a database with data: the outbox rows get their key hashes."""
    from importlib.resources import files

    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(files("alerts") / "migrations"))
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0002")
        connection.exec_driver_sql(
            "INSERT INTO deliveries (alert_key, sink, alert, due_at, pending, attempts) "
            "VALUES ('shock:DE-08', 'webhook', '{\"v\": 1}', 100.0, true, 0)"
        )
    store.migrate()
    outbox = store.outbox()
    assert [(d.key, d.alert) for d in outbox.due(200.0)] == [("shock:DE-08", {"v": 1})]
    outbox.upsert("shock:DE-08", "webhook", {"v": 2}, due_at=100.0)  # the same row, not a second
    assert [(d.key, d.alert) for d in outbox.due(200.0)] == [("shock:DE-08", {"v": 2})]


# --------------------------------------------------------------------------- item 8: erasure everywhere


ERASED_ACCOUNT = "acct-erase-me-4711"


def every_row_as_text(store: Store) -> dict[str, list[str]]:
    """Every row of every table of the store, as text (JSON columns included)."""
    from sqlalchemy import inspect as inspect_database, text

    rows: dict[str, list[str]] = {}
    with store.engine.connect() as connection:
        for table in inspect_database(connection).get_table_names():
            rows[table] = [repr(tuple(row)) for row in connection.execute(text(f'SELECT * FROM "{table}"'))]
    return rows


def test_erase_removes_the_account_from_every_table(store):
    from alerts.alert import alert_from_proposal, alert_from_signal
    from alerts.dispatch import Dispatcher

    other = "acct-keep-0815"
    wide = proposal("p1", [ERASED_ACCOUNT, other])
    wide["accounts"] = [{"account_id": ERASED_ACCOUNT, "rep_id": "A"}, {"account_id": other, "rep_id": "A"}]
    wide["explanation"] = f"moving {ERASED_ACCOUNT} and {other} evens out A"
    store.save_proposal(records.proposal(wide))
    signal = {
        "signal_id": "s1",
        "kind": "coverage_gap",
        "state": "open",
        "severity": "critical",
        "subject": {"type": "rep", "id": "C"},
        "detected_at": "2025-05-01",
        "emitted_at": "2026-11-24T10:00:00+00:00",
        "evidence": {"account_ids": [ERASED_ACCOUNT, other], "note": f"{ERASED_ACCOUNT} has no rep"},
    }
    store.save_signal(records.signal(signal))
    dispatcher = Dispatcher([], store.outbox(), throttle_s=60, retry_max_s=60)
    dispatcher.sinks = {"webhook": None}  # only the outbox rows are under test
    dispatcher.submit(alert_from_signal(records.signal(signal)))
    dispatcher.submit(alert_from_proposal(records.proposal(wide)))
    (item, *_) = store.outbox().due(float("inf"))
    store.outbox().mark_sent(item, 1.0)
    store.decide("p1", "approved", actor="maria", comment=f"{ERASED_ACCOUNT} asked for a new rep")
    store.save_report(
        "2026-W48", f"Weekly review: {ERASED_ACCOUNT}", f"<td>{ERASED_ACCOUNT}</td><td>{other}</td>", ["p1"]
    )
    before = every_row_as_text(store)
    assert [table for table, rows in before.items() if any(ERASED_ACCOUNT in row for row in rows)], before

    removed = store.erase_account(ERASED_ACCOUNT)

    after = every_row_as_text(store)
    assert {
        table: [row for row in rows if ERASED_ACCOUNT in row]
        for table, rows in after.items()
        if any(ERASED_ACCOUNT in row for row in rows)
    } == {}
    assert removed["moves"] == 1 and removed["proposals_scrubbed"] == 1 and removed["signals_scrubbed"] == 1
    assert removed["deliveries_scrubbed"] >= 1 and removed["reports_scrubbed"] == 1 and removed["audit_scrubbed"] == 1
    # The rest stays: the other account, and every row.
    assert [m.account_id for m in store.moves("p1")] == [other]
    assert other in store.reports()[0].html
    counts_before = {table: len(rows) for table, rows in before.items()}
    # Its moves go, and its rows in the alignment snapshots the approval took (a baseline, the approved one).
    assert {table: len(rows) for table, rows in after.items()} == {
        **counts_before,
        "moves": counts_before["moves"] - 1,
        "alignment_accounts": counts_before["alignment_accounts"] - 2,
    }
    assert [(s.accounts, s.reps) for s in store.alignment_snapshots()] == [(1, 1), (1, 1)]
    assert set(store.erase_account(ERASED_ACCOUNT).values()) == {0}


def test_erase_command_does_not_print_the_database_password(postgres_url):
    from sqlalchemy.engine import make_url
    from typer.testing import CliRunner

    from territory.cli import app

    # The test cluster trusts every login, so any password connects.
    url = make_url(postgres_url).set(password="s3cret-pw").render_as_string(hide_password=False)
    result = CliRunner().invoke(
        app, ["erase", ERASED_ACCOUNT], env={"TERRITORY_DB_URL": url, "TERRITORY_KAFKA_URL": ""}
    )
    assert result.exit_code == 2, result.output
    assert "removed 0 moves" in result.output
    assert "s3cret-pw" not in result.output and "***" in result.output


# --------------------------------------------------------------------------- low items


@pytest.mark.parametrize(
    "field, actor, comment",
    [
        ("by", "maria\r\nBcc: everyone@example.com", "fine"),
        ("comment", "maria", "ok\nINFO territory.decisions: proposal p2 approved by ceo"),
        ("comment", "maria", "bell\x07"),
    ],
)
def test_a_name_or_comment_with_line_breaks_or_control_characters_is_refused(store, field, actor, comment):
    store.save_proposal(records.proposal(proposal("p1", ["a1"])))
    with pytest.raises(DecisionError, match=rf"^{field}: must not contain control characters"):
        store.decide("p1", "approved", actor=actor, comment=comment)
    assert store.proposal("p1").status == "pending"


def test_proposals_are_listed_a_page_at_a_time(store):
    for number in range(5):
        store.save_proposal(records.proposal(proposal(f"p{number}", [f"a{number}"], reps=(f"R{number}", f"S{number}"))))
    pages = [[row.proposal_id for row in store.proposals(limit=2, offset=offset)] for offset in (0, 2, 4)]
    assert pages == [["p0", "p1"], ["p2", "p3"], ["p4"]]
    assert [row.proposal_id for row in store.proposals("pending", limit=1, offset=1)] == ["p1"]


def test_retention_prunes_old_decided_proposals_sent_deliveries_and_reports(store):
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import update

    from alerts.schema import ProposalRow, ReportRow, SignalRow

    now = datetime(2027, 1, 1, tzinfo=timezone.utc)
    old, recent = now - timedelta(days=400), now - timedelta(days=10)
    store.save_proposal(records.proposal(proposal("p-old-rejected", ["a1"], reps=("A", "B"))))
    store.save_proposal(records.proposal(proposal("p-old-pending", ["a2"], reps=("C", "D"))))
    store.save_proposal(records.proposal(proposal("p-new-rejected", ["a3"], reps=("E", "F"))))
    store.decide("p-old-rejected", "rejected", actor="maria", comment="no")
    store.decide("p-new-rejected", "rejected", actor="maria", comment="no")
    store.save_signal(
        records.signal(
            {
                "signal_id": "s-old",
                "kind": "coverage_gap",
                "state": "open",
                "severity": "critical",
                "subject": {"type": "rep", "id": "C"},
                "detected_at": "2025-05-01",
                "evidence": {},
            }
        )
    )
    outbox = store.outbox()
    outbox.upsert("old-sent", "webhook", {"v": 1}, due_at=old.timestamp())
    outbox.upsert("old-pending", "webhook", {"v": 1}, due_at=old.timestamp())
    (sent, _) = sorted(outbox.due(now.timestamp()), key=lambda item: item.key, reverse=True)
    outbox.mark_sent(sent, old.timestamp())
    old_report, new_report = (
        store.save_report(week, "Weekly review", "<html/>", []) for week in ("2025-W01", "2026-W52")
    )
    with store.writing() as session:
        session.execute(
            update(ProposalRow)
            .values(stored_at=old, decided_at=old)
            .where(ProposalRow.proposal_id.in_(["p-old-rejected", "p-old-pending"]))
        )
        session.execute(
            update(ProposalRow)
            .values(stored_at=recent, decided_at=recent)
            .where(ProposalRow.proposal_id == "p-new-rejected")
        )
        session.execute(update(ReportRow).values(created_at=old).where(ReportRow.id == old_report))
        session.execute(update(ReportRow).values(created_at=recent).where(ReportRow.id == new_report))
        session.execute(update(SignalRow).values(stored_at=old))

    pruned = store.prune(retention_days=365, now=now)

    assert pruned == {"proposals": 1, "signals": 1, "deliveries": 1, "reports": 1}
    # A pending proposal is never pruned: someone still has to decide on it.
    assert sorted(row.proposal_id for row in store.proposals()) == ["p-new-rejected", "p-old-pending"]
    assert store.moves("p-old-rejected") == [] and store.audit("p-old-rejected") == []
    assert [item.key for item in outbox.due(now.timestamp())] == ["old-pending"]
    assert [row.id for row in store.reports()] == [new_report]
    assert store.signals() == []


def test_a_locked_sqlite_database_is_a_clear_error_with_its_own_exit_status(tmp_path, monkeypatch):
    import sqlite3

    from typer.testing import CliRunner

    from alerts import store as store_module
    from territory.cli import app

    monkeypatch.setattr(store_module, "SQLITE_BUSY_TIMEOUT_S", 0.2)
    path = tmp_path / "locked.db"
    store = Store(f"sqlite:///{path}")
    store.migrate()
    store.save_proposal(records.proposal(proposal("p1", ["a1"])))
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # another writer holds the database
    try:
        result = CliRunner().invoke(
            app,
            ["proposals", "reject", "p1", "--comment", "no", "--by", "maria"],
            env={"TERRITORY_DB_URL": store.url, "TERRITORY_KAFKA_URL": ""},
        )
    finally:
        locker.rollback()
        locker.close()
    assert result.exit_code == 3, result.output
    assert "the store is locked or unreachable" in result.output and "nothing was decided" in result.output
    assert "Traceback" not in result.output
    assert store.proposal("p1").status == "pending"
