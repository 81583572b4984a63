"""Alignment history on SQLite and on PostgreSQL: every approval and every
apply keeps a dated snapshot of account -> rep (district, segment); `territory alignment
list|show|diff|export|restore`. A diff of two snapshots lists exactly the approved moves
between them; a restore is a pending proposal that goes through review like any other."""

from __future__ import annotations

import asyncio
import csv
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from alerts import decisions
from alerts.store import KnownOwner, Store
from core.clock import ManualClock
from core.records import Proposal
from territory.cli import app
from tests import records

# Ids a CSV, a shell or a spreadsheet could trip over.
COMMA = 'acme, "north"'
FORMULA = '=HYPERLINK("x")'
UNICODE = "Zürich-株式会社"
PLAIN = "a1"
OTHER = "a2"
REP_A, REP_B, REP_C = "rep,A", "=rep-B", "рэп-C"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
T1 = datetime(2026, 3, 9, 15, 30, tzinfo=timezone.utc)


def payload(proposal_id: str, moves: list[tuple[str, str, str]], event_time: str) -> dict[str, Any]:
    """A stored proposal as the planner makes it, with the review's account and rep rows."""
    return records.proposal(
        {
            "proposal_id": proposal_id,
            "event_time": event_time,
            "moves": [{"account_id": a, "from_rep": f, "to_rep": t, "potential": 10.0} for a, f, t in moves],
            "accounts": [
                {"account_id": a, "lat": 52.5, "lon": 13.4, "rep_id": REP_A, "potential": 10.0, "segment": "key, acc"}
                for a in (COMMA, FORMULA, UNICODE, PLAIN, OTHER)
            ],
            "reps": [
                {"rep_id": REP_A, "home_lat": 52.5, "home_lon": 13.4, "district": "Nord"},
                {"rep_id": REP_B, "home_lat": 48.1, "home_lon": 11.6, "district": "=Süd"},
                {"rep_id": REP_C, "home_lat": 50.1, "home_lon": 8.7, "district": "West"},
            ],
        }
    ).to_json()


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, dict[str, Any]]] = []

    async def send(self, topic: str, key: bytes, value: dict[str, Any]) -> None:
        self.sent.append((topic, key, value))


def approve(store: Store, proposal_id: str, by: str = "m.keller") -> None:
    outcome = asyncio.run(decisions.approve(store, Recorder(), proposal_id, actor=by, comment="fair again"))
    assert outcome.status == "applied", outcome


def company(store: Store) -> None:
    owners = {a: KnownOwner(REP_A, False, "2025-01-01T00:00:00+00:00") for a in (COMMA, FORMULA, PLAIN)}
    owners |= {UNICODE: KnownOwner(REP_B, False, "2025-01-01T00:00:00+00:00"), OTHER: KnownOwner(REP_C, False)}
    store.record_owners(owners, {REP_A: True, REP_B: True, REP_C: True}, "2025-04-01T00:00:00+00:00")


@pytest.fixture
def history(store: Store) -> Store:
    return two_approvals(store)


def two_approvals(store: Store) -> Store:
    """Two approvals a week apart: p1 moves PLAIN and COMMA, p2 moves FORMULA, UNICODE and
    COMMA again. No worker runs, so the owner mirror never learns of either."""
    store.clock = ManualClock(T0)
    company(store)
    store.save_proposal(
        records.proposal(payload("p1", [(PLAIN, REP_A, REP_B), (COMMA, REP_A, REP_B)], "2025-04-01T00:00:00+00:00"))
    )
    approve(store, "p1")
    store.clock = ManualClock(T1)
    store.save_proposal(
        records.proposal(
            payload(
                "p2",
                [(FORMULA, REP_A, REP_C), (UNICODE, REP_B, REP_A), (COMMA, REP_B, REP_C)],
                "2025-05-01T00:00:00+00:00",
            )
        )
    )
    # The worker has reported p1's override of COMMA (p2 moves it on from there), not yet that of PLAIN.
    store.record_owners({COMMA: KnownOwner(REP_B, False, "2025-04-01T00:00:00+00:00")}, {}, None)
    approve(store, "p2")
    return store


def cli(store: Store, *args: str, expect: int = 0, kafka_url: str = "") -> Any:
    env = {"TERRITORY_DB_URL": store.url, "TERRITORY_KAFKA_URL": kafka_url}
    result = CliRunner().invoke(app, ["alignment", *args], env=env)
    assert result.exit_code == expect, result.output
    assert "Traceback" not in result.output
    return result


def worker_catches_up(store: Store) -> None:
    """The owner mirror as the worker reports it once it applied every approved override."""
    latest = store.alignment_rows(store.alignment_snapshots()[-1].id)
    store.record_owners({a: KnownOwner(r.rep_id, False, r.rep_at) for a, r in latest.items()}, {}, None)


def ids(store: Store) -> list[int]:
    return [s.id for s in store.alignment_snapshots()]


# --------------------------------------------------------------------------- snapshots


def test_every_approval_and_apply_keeps_a_snapshot_after_a_baseline(history: Store):
    listed = [(s.reason, s.proposal_id, s.actor, s.accounts) for s in history.alignment_snapshots()]
    assert listed == [
        ("baseline", None, "m.keller", 5),
        ("approved p1", "p1", "m.keller", 5),
        ("applied p1", "p1", "m.keller", 5),
        ("approved p2", "p2", "m.keller", 5),
        ("applied p2", "p2", "m.keller", 5),
    ]
    latest = history.alignment_rows(ids(history)[-1])
    assert {a: r.rep_id for a, r in latest.items()} == {
        PLAIN: REP_B,
        COMMA: REP_C,
        FORMULA: REP_C,
        UNICODE: REP_A,
        OTHER: REP_C,
    }
    assert latest[FORMULA].district == "West" and latest[FORMULA].segment == "key, acc"


def test_a_diff_of_the_baseline_and_the_latest_lists_exactly_the_approved_moves(history: Store):
    first, *_, last = ids(history)
    changes = history.alignment_diff(first, last)
    assert {(c.account_id, c.from_rep, c.to_rep) for c in changes} == {
        (PLAIN, REP_A, REP_B),
        (COMMA, REP_A, REP_C),  # moved twice: from where it started to where it ended
        (FORMULA, REP_A, REP_C),
        (UNICODE, REP_B, REP_A),
    }
    # By date: the last snapshot on or before each day; between the two days only p2 moved.
    shown = cli(history, "diff", "2026-03-02", "2026-03-09")
    assert "3 accounts changed rep" in shown.output
    for account_id in (FORMULA, UNICODE, COMMA):
        assert account_id in shown.output
    assert PLAIN not in shown.output.split("changed rep", 1)[1]


def test_a_diff_of_equal_snapshots_is_empty(history: Store):
    snapshot = ids(history)[1]
    assert history.alignment_diff(snapshot, snapshot) == []
    approved_p2, applied_p2 = ids(history)[-2:]
    assert history.alignment_diff(approved_p2, applied_p2) == []
    shown = cli(history, "diff", str(applied_p2), "2026-12-31")
    assert "no account changed rep" in shown.output


def test_list_and_show(history: Store):
    listed = cli(history, "list")
    for text in ("baseline", "approved p1", "applied p2", "2026-03-02", "2026-03-09"):
        assert text in listed.output
    shown = cli(history, "show", "2026-03-09")
    assert "applied p2" in shown.output and "5 accounts, 3 reps" in shown.output
    assert UNICODE in shown.output and REP_C in shown.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["show", "999"], "SNAPSHOT: no alignment snapshot 999"),
        (["show", "2026-02-30"], "SNAPSHOT: '2026-02-30' is neither a snapshot id nor a date"),
        (["show", "2020-01-01"], "SNAPSHOT: no alignment snapshot on or before 2020-01-01"),
        (["diff", "1", "yesterday"], "B: 'yesterday' is neither a snapshot id nor a date"),
        (["export", "2020-01-01", "--format", "csv", "--out", "x.csv"], "no alignment snapshot on or before"),
        (["export", "2026-03-09", "--format", "xml", "--out", "x.csv"], "--format must be"),
        (["restore", "2020-01-01", "--by", "j.doe"], "no alignment snapshot on or before"),
    ],
)
def test_errors_name_the_argument_and_exit_2(history: Store, args: list[str], message: str):
    result = cli(history, *args, expect=2)
    assert message in result.output


def test_an_empty_history_says_so(store: Store):
    assert "no alignment snapshot yet" in cli(store, "list").output
    assert "no alignment snapshot yet" in cli(store, "show", "2026-01-01", expect=2).output


def test_erasing_an_account_removes_it_from_every_snapshot(history: Store):
    assert history.erase_account(UNICODE)["alignment_rows"] == 5
    for snapshot in ids(history):
        assert UNICODE not in history.alignment_rows(snapshot)
    assert {s.accounts for s in history.alignment_snapshots()} == {4}


# --------------------------------------------------------------------------- export


def read_csv(path: Path, encoding: str = "utf-8-sig") -> list[list[str]]:
    with path.open(encoding=encoding, newline="") as handle:
        return list(csv.reader(handle))


def test_csv_export_keeps_odd_ids_and_neutralises_formulas(history: Store, tmp_path: Path):
    out = tmp_path / "alignment.csv"
    result = cli(history, "export", str(ids(history)[0]), "--format", "csv", "--out", str(out))
    assert "wrote 5 accounts" in result.output
    rows = read_csv(out)
    assert rows[0] == ["account_id", "rep_id", "district", "segment"]
    assert sorted(rows[1:]) == sorted(
        [
            [COMMA, REP_A, "Nord", "key, acc"],
            ["'" + FORMULA, REP_A, "Nord", "key, acc"],
            [PLAIN, REP_A, "Nord", "key, acc"],
            [OTHER, REP_C, "West", "key, acc"],
            [UNICODE, "'" + REP_B, "'=Süd", "key, acc"],
        ]
    )


def test_crm_exports_write_the_crm_columns_and_leave_out_what_the_crm_refuses(store: Store, tmp_path: Path):
    store.clock = ManualClock(T0)
    sf_account, sf_user, other_user = "001000000000001AAA", "005000000000001AAA", "005000000000002AAA"
    store.record_owners(
        {sf_account: KnownOwner(sf_user, False), "123": KnownOwner("=boss@example.com", False)},
        {sf_user: True, other_user: True},
        None,
    )
    store.save_proposal(
        records.proposal(payload("p1", [(sf_account, sf_user, other_user)], "2025-04-01T00:00:00+00:00"))
    )
    approve(store, "p1")
    latest = str(ids(store)[-1])
    out = tmp_path / "sf.csv"
    result = cli(store, "export", latest, "--format", "salesforce", "--out", str(out))
    assert read_csv(out, "utf-8") == [["Id", "OwnerId"], [sf_account, other_user]]
    assert "left out" in result.output and "123" in result.output
    out = tmp_path / "hs.csv"
    cli(store, "export", latest, "--format", "hubspot", "--out", str(out))
    assert read_csv(out, "utf-8") == [["Record ID", "Company owner"], ["123", "'=boss@example.com"]]


# --------------------------------------------------------------------------- restore


def test_a_restore_is_a_pending_proposal_that_gives_back_the_old_alignment(history: Store):
    baseline = ids(history)[0]
    result = cli(history, "restore", str(baseline), "--by", "j.doe", "--comment", "back to March")
    assert "pending" in result.output
    pending = history.proposals("pending")
    assert len(pending) == 1
    row = pending[0]
    proposal = Proposal.from_json(row.payload)  # a valid record, as the alert stage reads it
    assert proposal.mode == "restore" and row.decided_at is None
    assert {(m.account_id, m.from_rep, m.to_rep) for m in proposal.moves} == {
        (PLAIN, REP_B, REP_A),
        (COMMA, REP_C, REP_A),
        (FORMULA, REP_C, REP_A),
        (UNICODE, REP_A, REP_B),
    }
    assert [(a.actor, a.action, a.comment) for a in history.audit(row.proposal_id)] == [
        ("j.doe", "proposed", "back to March")
    ]
    # Nothing changed before the approval: the latest snapshot is still p2's.
    assert history.alignment_snapshots()[-1].reason == "applied p2"
    # Approved like any other proposal, once the worker has reported the approved moves (until then
    # the approval is refused as stale: it is checked against the worker's owners); afterwards the
    # alignment is the baseline again.
    worker_catches_up(history)
    history.clock = ManualClock(datetime(2026, 3, 20, tzinfo=timezone.utc))
    approve(history, row.proposal_id, by="r.boss")
    assert history.alignment_snapshots()[-1].reason.startswith(f"applied {row.proposal_id}, restores #{baseline}")
    assert history.alignment_diff(baseline, ids(history)[-1]) == []


def test_restoring_the_current_alignment_creates_nothing(history: Store):
    result = cli(history, "restore", "2026-03-09", "--by", "j.doe", expect=2)
    assert "already" in result.output
    assert history.proposals("pending") == []


def test_a_restore_leaves_out_accounts_gone_since_and_reps_who_left(history: Store):
    history.record_owners({FORMULA: KnownOwner(REP_C, True)}, {REP_B: False}, None)  # closed; B left
    cli(history, "restore", str(ids(history)[0]), "--by", "j.doe")
    (row,) = history.proposals("pending")
    assert {m["account_id"] for m in row.payload["moves"]} == {COMMA, PLAIN}  # FORMULA closed, UNICODE to B
    notes = " ".join(row.payload["notes"])
    assert "closed" in notes and REP_B in notes


def test_an_older_owner_read_again_never_overwrites_a_newer_one(store):
    """The state topic can be read twice (after a restart, or a seek back to what the planner
    applied): an owner snapshot read again after a newer one must not bring the old owner back,
    or an approval is refused as stale (a live restore test saw "a2: now owned by A, not C")."""
    store.record_owners({"a2": KnownOwner(REP_C, False, "2025-04-02T00:00:00+00:00")}, {}, None)
    store.record_owners({"a2": KnownOwner(REP_A, False, "2025-01-01T00:00:00+00:00")}, {}, None)
    assert store.known_owners(["a2"])["a2"].rep_id == REP_C
    store.record_owners({"a2": KnownOwner(REP_B, True, "2025-04-02T00:00:00+00:00")}, {}, None)  # same time: news
    assert store.known_owners(["a2"])["a2"] == KnownOwner(REP_B, True, "2025-04-02T00:00:00+00:00")
