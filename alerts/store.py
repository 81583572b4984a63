"""The proposal store: signals, proposals, decisions, the alert outbox and weekly
reports in a SQL database (SQLAlchemy 2; SQLite by default, PostgreSQL by URL).

The schema is owned by Alembic migrations (``alerts/migrations``); :meth:`Store.migrate`
brings any database to the head, including one made by the first, pre-Alembic release.

A proposal's life: pending -> approved | rejected, or superseded when a newer
proposal touches any of the same reps; approved -> applied once its new assignments
are published. Every transition is written to the audit log with who, when and why.

Each approval and each apply also keeps a snapshot of the whole alignment after it, in the
same transaction as the decision (alerts.history: ``alignment_snapshots``,
``alignment_accounts``).
"""

from __future__ import annotations

import fcntl
import math
import re
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from importlib.resources import files
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from alembic import command
from alembic.config import Config
from sqlalchemy import and_, create_engine, delete, event, func, insert, inspect, or_, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker

from alerts import history
from alerts.dispatch import OutboxItem
from alerts.schema import (
    AlignmentAccountRow,
    AlignmentSnapshotRow,
    AuditRow,
    DeliveryRow,
    KnownAccountRow,
    KnownRepRow,
    MoveRow,
    ProposalRow,
    ReportRow,
    SignalRow,
    StreamMarkRow,
    alert_key_hash,
    now_utc,
)
from core.clock import SYSTEM_CLOCK, Clock
from core.records import Proposal, Signal

__all__ = [
    "AlreadyDecided",
    "AuditRow",
    "DecisionError",
    "KnownOwner",
    "MoveRow",
    "ProposalRow",
    "ReportRow",
    "SignalRow",
    "SqlOutbox",
    "Store",
]

#: C0 and C1 control characters and Unicode line separators: refused in names and comments.
CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: decided_by and the audit log's actor are String(200) (alerts.schema).
MAX_ACTOR_LENGTH = 200
#: Decisions a person can take on a pending proposal.
DECISIONS = ("approved", "rejected")


class DecisionError(ValueError):
    """A decision that cannot be taken, e.g. on a proposal that is no longer pending."""


class AlreadyDecided(DecisionError):
    """The proposal is not pending any more: someone (or a newer proposal) decided first."""


def _not_pending(proposal_id: str, row: "ProposalRow | None", decision: str) -> DecisionError:
    if row is None:
        return DecisionError(f"no proposal {proposal_id!r}")
    by = f" by {row.decided_by}" if row.decided_by and row.status in ("approved", "rejected", "applied") else ""
    if row.status == "superseded" and row.superseded_by:
        by = f" by proposal {row.superseded_by}"
    return AlreadyDecided(f"proposal {proposal_id} is already {row.status}{by}, not pending: it cannot be {decision}")


def row_reps(row: ProposalRow) -> set[str]:
    """The reps a stored proposal changes (senders and receivers of its moves), from the row's
    ``reps`` column: no payload is read."""
    return set(filter(None, row.reps.split(",")))


#: How long a SQLite writer waits for another one's lock before "database is locked".
SQLITE_BUSY_TIMEOUT_S = 30.0


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL: readers never wait for the writer, and a writer waits for readers no more. (The
    busy timeout is the driver's ``timeout``, set where the engine is made.)"""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode = WAL")  # stays "memory" for an in-memory database
    finally:
        cursor.close()


#: pg_advisory_xact_lock key that serialises schema migrations (any constant shared by workers).
MIGRATION_LOCK_KEY = 7_130_221


class Store:
    """Idempotent writes: storing the same signal or proposal twice keeps one row."""

    def __init__(self, url: str, *, clock: Clock = SYSTEM_CLOCK):
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        #: What decisions and alignment snapshots are dated with (a test's ManualClock).
        self.clock = clock
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        # Pre-ping: after a database restart the pool's old connections are found dead and
        # replaced before use, rather than failing the first call on each.
        connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_S} if self.is_sqlite else {}
        self.engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def writing(self) -> Iterator[Any]:
        """A session for a read-then-write transaction, committed at the end.

        On SQLite the transaction takes the write lock first (``BEGIN IMMEDIATE``): two
        deferred transactions that both read and then both write deadlock, and SQLite fails
        one at once with "database is locked" instead of letting it wait its busy timeout."""
        with self.sessions.begin() as session:
            if self.is_sqlite:
                session.execute(text("BEGIN IMMEDIATE"))
            yield session

    # ------------------------------------------------------------------ schema

    def migrate(self) -> None:
        """Upgrade the database to the newest schema (Alembic ``upgrade head``).

        A database made before migrations existed (tables but no ``alembic_version``)
        is first stamped as revision 0001, which is exactly what it holds."""
        config = Config()
        config.set_main_option("script_location", str(files("alerts") / "migrations"))
        # Several workers start together on one database: one migrates, the others wait for it
        # and then find the schema at head.
        with self._migration_file_lock(), self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            config.attributes["connection"] = connection
            tables = set(inspect(connection).get_table_names())
            if "proposals" in tables and "alembic_version" not in tables:
                command.stamp(config, "0001")
            command.upgrade(config, "head")

    @contextmanager
    def _migration_file_lock(self) -> Iterator[None]:
        """An exclusive lock file beside a SQLite database (its DDL is not transactional)."""
        parsed = make_url(self.url)
        if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
            yield
            return
        with open(f"{parsed.database}.migrate-lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def create_schema(self) -> None:
        """Kept for callers of the first release: the same as :meth:`migrate`."""
        self.migrate()

    # ------------------------------------------------------------------ signals and proposals

    def has_signal(self, signal_id: str) -> bool:
        with self.sessions() as session:
            return session.get(SignalRow, signal_id) is not None

    def save_signal(self, signal: Signal) -> bool:
        """Store a signal (its payload: the message as published, ``to_json``); False when it
        was already stored."""
        with self.writing() as session:
            if session.get(SignalRow, signal.signal_id) is not None:
                return False
            payload = signal.to_json()
            session.add(
                SignalRow(
                    signal_id=signal.signal_id,
                    kind=signal.kind,
                    state=signal.state,
                    severity=signal.severity,
                    subject=f"{signal.subject.type}:{signal.subject.id}",
                    detected_at=payload["detected_at"],
                    payload=payload,
                )
            )
            return True

    def save_proposal(self, proposal: Proposal, *, actor: str = "worker", comment: str | None = None) -> bool:
        """Store a pending proposal (its payload: the message as published, ``to_json``) and its
        moves; older pending ones that touch any of the same reps become superseded (their moves
        would conflict). ``actor`` and ``comment``: who asked for it and why, in the audit log
        (the worker's planner, or a person asking to restore an old alignment).

        Returns False when the proposal was stored and alerted before (a redelivered
        message), so the caller alerts once per proposal, and again only if the alert
        was not sent before a crash.
        """
        reps = sorted(proposal.touched_reps)
        proposal_id = proposal.proposal_id
        with self.writing() as session:
            existing = session.get(ProposalRow, proposal_id)
            if existing is not None:
                return existing.alerted_at is None
            for older in session.scalars(select(ProposalRow).where(ProposalRow.status == "pending")):
                older_reps = row_reps(older)
                # A proposal with no moves shares no rep, but still only one can stand.
                if older_reps & set(reps) or not older_reps or not reps:
                    older.status = "superseded"
                    older.superseded_by = proposal_id
                    session.add(
                        AuditRow(
                            actor=actor,
                            action="superseded",
                            proposal_id=older.proposal_id,
                            detail={"by": proposal_id},
                        )
                    )
            payload = proposal.to_json()
            session.add(
                ProposalRow(
                    proposal_id=proposal_id,
                    status="pending",
                    solver_status=proposal.status,
                    move_count=len(proposal.moves),
                    imbalance_before=proposal.imbalance_before,
                    imbalance_after=proposal.imbalance_after,
                    event_time=payload["event_time"],
                    payload=payload,
                    reps=",".join(reps),
                    moves=[
                        MoveRow(
                            account_id=m.account_id,
                            from_rep=m.from_rep,
                            to_rep=m.to_rep,
                            potential=m.potential,
                            workload=m.workload,
                            reason=m.reason,
                        )
                        for m in proposal.moves
                    ],
                )
            )
            session.add(
                AuditRow(
                    actor=actor,
                    action="proposed",
                    proposal_id=proposal_id,
                    comment=comment or None,
                    detail={"moves": len(proposal.moves), "reps": reps},
                )
            )
            return True

    def mark_alerted(self, proposal_id: str) -> None:
        with self.writing() as session:
            session.get(ProposalRow, proposal_id).alerted_at = now_utc()

    def proposal(self, proposal_id: str) -> ProposalRow | None:
        with self.sessions() as session:
            return session.get(ProposalRow, proposal_id)

    def proposals(self, status: str | None = None, *, limit: int | None = None, offset: int = 0) -> list[ProposalRow]:
        """Proposals oldest first (ties by id, so pages neither repeat nor skip a row); a page
        of at most `limit` after skipping `offset` when given."""
        with self.sessions() as session:
            query = select(ProposalRow).order_by(ProposalRow.stored_at, ProposalRow.proposal_id)
            if status:
                query = query.where(ProposalRow.status == status)
            if offset:
                query = query.offset(offset)
            if limit is not None:
                query = query.limit(limit)
            return list(session.scalars(query))

    def proposal_counts(self) -> dict[str, int]:
        """Stored proposals per status, counted by the database (one grouped COUNT, no rows
        loaded). Only statuses that occur are keys."""
        query = select(ProposalRow.status, func.count()).group_by(ProposalRow.status)
        with self.sessions() as session:
            return {status: count for status, count in session.execute(query)}

    def moves(self, proposal_id: str) -> list[MoveRow]:
        with self.sessions() as session:
            return list(session.scalars(select(MoveRow).where(MoveRow.proposal_id == proposal_id).order_by(MoveRow.id)))

    def signals(self) -> list[SignalRow]:
        with self.sessions() as session:
            return list(session.scalars(select(SignalRow).order_by(SignalRow.stored_at)))

    def latest_signals(self, kind: str) -> list[Signal]:
        """The newest stored signal of `kind` per subject (by detected time, then by when it
        was stored), read through ``Signal.from_json``, ordered by subject. A detector signals
        a subject's change of state, so this is each subject's state now."""
        query = select(SignalRow).where(SignalRow.kind == kind).order_by(SignalRow.stored_at, SignalRow.signal_id)
        newest: dict[tuple[str, str], Signal] = {}
        with self.sessions() as session:
            for row in session.scalars(query):
                signal = row.record()
                subject = (signal.subject.type, signal.subject.id)
                if subject not in newest or signal.detected_at >= newest[subject].detected_at:
                    newest[subject] = signal
        return [newest[subject] for subject in sorted(newest)]

    # ------------------------------------------------------------------ decisions

    def decide(
        self,
        proposal_id: str,
        decision: str,
        *,
        actor: str,
        comment: str = "",
        excluded: Mapping[str, str] | None = None,
        effective_at: str | None = None,
    ) -> ProposalRow:
        """Approve or reject a pending proposal; raises :class:`DecisionError` naming
        the proposal's state when it is not pending (or not there).

        The transition is one conditional UPDATE (``WHERE status = 'pending'``): of two
        decisions racing, in two processes too, exactly one changes the row and the other
        finds it decided. ``SELECT ... FOR UPDATE`` would not do: SQLite ignores it.

        ``excluded`` (account id -> why) marks moves an approval leaves out; ``effective_at``
        is when the approval takes effect on the data's clock (see alerts.decisions).

        An approval keeps the alignment after it as a snapshot (and a baseline of the one
        before, when there is none yet) in the same transaction: no approval without its
        snapshot, whatever fails afterwards."""
        if decision not in DECISIONS:
            raise DecisionError(f"decision must be one of {DECISIONS}, got {decision!r}")
        if not actor.strip():
            raise DecisionError("actor must name who decides")
        if len(actor) > MAX_ACTOR_LENGTH:
            raise DecisionError(f"by: at most {MAX_ACTOR_LENGTH} characters")
        # Names and comments go into e-mail headers, alert texts and log lines: a line break
        # there could forge a header or a log entry.
        for field, value in (("by", actor), ("comment", comment)):
            if CONTROL_CHARACTERS.search(value or ""):
                raise DecisionError(f"{field}: must not contain control characters (line breaks, tabs and the like)")
        with self.writing() as session:
            changed = session.execute(
                update(ProposalRow)
                .where(ProposalRow.proposal_id == proposal_id, ProposalRow.status == "pending")
                .values(
                    status=decision,
                    decided_at=now_utc(self.clock),
                    decided_by=actor,
                    decision_comment=comment or None,
                    effective_at=effective_at,
                )
                .execution_options(synchronize_session=False)
            ).rowcount
            row = session.get(ProposalRow, proposal_id, populate_existing=True)
            if changed != 1:
                raise _not_pending(proposal_id, row, decision)
            detail: dict[str, Any] = {"moves": row.move_count}
            if excluded:
                for move in session.scalars(
                    select(MoveRow).where(MoveRow.proposal_id == proposal_id, MoveRow.account_id.in_(list(excluded)))
                ):
                    move.excluded = excluded[move.account_id]
                detail["excluded"] = dict(excluded)
            session.add(
                AuditRow(actor=actor, action=decision, proposal_id=proposal_id, comment=comment or None, detail=detail)
            )
            if decision == "approved":
                self._snapshot_after(session, row, "approved", actor)
            return row

    def mark_applied(self, proposal_id: str, *, actor: str = "worker") -> bool:
        """An approved proposal's assignments were published. False if it already was
        (conditional, as :meth:`decide`: two publishers racing record it once)."""
        with self.writing() as session:
            changed = session.execute(
                update(ProposalRow)
                .where(ProposalRow.proposal_id == proposal_id, ProposalRow.status == "approved")
                .values(status="applied", applied_at=now_utc(self.clock))
                .execution_options(synchronize_session=False)
            ).rowcount
            if changed != 1:
                return False
            row = session.get(ProposalRow, proposal_id, populate_existing=True)
            session.add(
                AuditRow(actor=actor, action="applied", proposal_id=proposal_id, detail={"moves": row.move_count})
            )
            self._snapshot_after(session, row, "applied", actor)
            return True

    # ------------------------------------------------------------------ alignment history

    def _snapshot_after(self, session: Any, row: ProposalRow, verb: str, actor: str) -> None:
        """Keep the alignment after `row`'s moves (those not left out) as a snapshot, in the
        caller's transaction; first a baseline (the alignment before) when none exists."""
        previous = self._latest_alignment(session)
        mirror = {
            r.account_id: KnownOwner(r.rep_id, r.closed, r.owner_at) for r in session.scalars(select(KnownAccountRow))
        }
        payload = row.payload or {}
        account_rows = payload.get("accounts") or ()
        districts = {
            rep["rep_id"]: rep.get("district") or None
            for rep in payload.get("reps") or ()
            if isinstance(rep, Mapping) and rep.get("rep_id") is not None
        }
        taken_at = now_utc(self.clock)
        if previous is None:
            baseline = history.next_alignment(None, mirror, account_rows=account_rows, districts=districts)
            self._write_snapshot(session, baseline, "baseline", None, actor, taken_at)
            previous = baseline
        moves = session.scalars(
            select(MoveRow).where(MoveRow.proposal_id == row.proposal_id, MoveRow.excluded.is_(None))
        )
        after = history.next_alignment(
            previous,
            mirror,
            account_rows=account_rows,
            districts=districts,
            moves=[(m.account_id, m.to_rep) for m in moves],
            moved_at=row.effective_at or row.event_time,
        )
        reason = f"{verb} {row.proposal_id}"
        restored = history.restored_snapshot(row.proposal_id)
        if restored is not None:
            reason += f", restores #{restored}"
        self._write_snapshot(session, after, reason, row.proposal_id, actor, taken_at)

    @staticmethod
    def _write_snapshot(
        session: Any,
        alignment: Mapping[str, history.Aligned],
        reason: str,
        proposal_id: str | None,
        actor: str,
        taken_at: datetime,
    ) -> int:
        snapshot = AlignmentSnapshotRow(
            taken_at=taken_at,
            reason=reason[:300],
            proposal_id=proposal_id,
            actor=actor,
            accounts=len(alignment),
            reps=len({e.rep_id for e in alignment.values() if e.rep_id is not None}),
        )
        session.add(snapshot)
        session.flush()
        rows = [
            {
                "snapshot_id": snapshot.id,
                "account_id": account_id,
                "rep_id": e.rep_id,
                "district": e.district,
                "segment": e.segment,
                "rep_at": e.rep_at,
            }
            for account_id, e in alignment.items()
        ]
        for start in range(0, len(rows), 10_000):  # one multi-row INSERT per batch
            session.execute(insert(AlignmentAccountRow), rows[start : start + 10_000])
        return snapshot.id

    def _latest_alignment(self, session: Any) -> dict[str, history.Aligned] | None:
        latest = session.scalar(select(func.max(AlignmentSnapshotRow.id)))
        return None if latest is None else self._rows(session, latest)

    @staticmethod
    def _rows(session: Any, snapshot_id: int) -> dict[str, history.Aligned]:
        query = (
            select(AlignmentAccountRow)
            .where(AlignmentAccountRow.snapshot_id == snapshot_id)
            .order_by(AlignmentAccountRow.account_id)
        )
        return {
            r.account_id: history.Aligned(r.rep_id, r.rep_at, r.district, r.segment) for r in session.scalars(query)
        }

    def alignment_snapshots(self) -> list[AlignmentSnapshotRow]:
        """Every alignment snapshot, oldest first (their accounts are not loaded)."""
        with self.sessions() as session:
            return list(session.scalars(select(AlignmentSnapshotRow).order_by(AlignmentSnapshotRow.id)))

    def alignment_snapshot(self, snapshot_id: int) -> AlignmentSnapshotRow | None:
        with self.sessions() as session:
            return session.get(AlignmentSnapshotRow, snapshot_id)

    def alignment_snapshot_at(self, moment: datetime) -> AlignmentSnapshotRow | None:
        """The last snapshot taken at or before `moment` (aware)."""
        with self.sessions() as session:
            query = (
                select(AlignmentSnapshotRow)
                .where(AlignmentSnapshotRow.taken_at <= moment)
                .order_by(AlignmentSnapshotRow.taken_at.desc(), AlignmentSnapshotRow.id.desc())
                .limit(1)
            )
            return session.scalars(query).first()

    def alignment_rows(self, snapshot_id: int) -> dict[str, history.Aligned]:
        """A snapshot's accounts, by account id (empty for an unknown snapshot)."""
        with self.sessions() as session:
            return self._rows(session, snapshot_id)

    def alignment_diff(self, first: int, second: int) -> list[history.Change]:
        """The accounts whose rep differs from snapshot `first` to snapshot `second`."""
        with self.sessions() as session:
            return history.diff(self._rows(session, first), self._rows(session, second))

    def current_alignment(self) -> dict[str, history.Aligned]:
        """The alignment now, as a snapshot taken now without moves would hold it: the worker's
        owners, and approved moves it has not reported yet (from the latest snapshot)."""
        with self.sessions() as session:
            previous = self._latest_alignment(session)
            mirror = {
                r.account_id: KnownOwner(r.rep_id, r.closed, r.owner_at)
                for r in session.scalars(select(KnownAccountRow))
            }
        return history.next_alignment(previous, mirror)

    def audit(self, proposal_id: str | None = None, limit: int = 200) -> list[AuditRow]:
        with self.sessions() as session:
            query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
            if proposal_id:
                query = query.where(AuditRow.proposal_id == proposal_id)
            return list(session.scalars(query))

    def outbox(self) -> SqlOutbox:
        """The alert outbox in this database (the dispatcher's ``Outbox``)."""
        return SqlOutbox(self)

    # ------------------------------------------------------------------ owners, as the worker sees them

    def record_state(self, snapshots: Iterable[Mapping[str, Any]]) -> None:
        """Mirror the worker's state snapshots (territory.state): each account's owner and
        whether it is closed, each rep's activity, the newest event time. What an approval
        checks its moves against (:meth:`known_owners`, :meth:`known_reps`)."""
        self.record_owners(*fold_state(snapshots))

    def record_owners(
        self, accounts: Mapping[str, KnownOwner | None], reps: Mapping[str, bool], newest: str | None
    ) -> None:
        """:meth:`record_state` of an already folded batch (:func:`fold_state`)."""
        if not accounts and not reps and newest is None:
            return
        with self.writing() as session:
            for account_id, owner in accounts.items():
                row = session.get(KnownAccountRow, account_id)
                if owner is None:
                    if row is not None:
                        session.delete(row)
                elif row is None:
                    session.add(
                        KnownAccountRow(
                            account_id=account_id, rep_id=owner.rep_id, closed=owner.closed, owner_at=owner.owner_at
                        )
                    )
                elif not (owner.owner_at and row.owner_at and later(row.owner_at, owner.owner_at)):
                    # An older owner (a snapshot read again) never overwrites a newer one.
                    row.rep_id, row.closed, row.owner_at = owner.rep_id, owner.closed, owner.owner_at
            for rep_id, active in reps.items():
                row = session.get(KnownRepRow, rep_id)
                if row is None:
                    session.add(KnownRepRow(rep_id=rep_id, active=active))
                else:
                    row.active = active
            if newest is not None:
                mark = session.get(StreamMarkRow, "state_time")
                if mark is None:
                    session.add(StreamMarkRow(name="state_time", value=newest))
                elif later(newest, mark.value):
                    mark.value = newest

    def known_owners(self, account_ids: Iterable[str]) -> dict[str, KnownOwner]:
        ids = list(account_ids)
        with self.sessions() as session:
            rows: Iterable[KnownAccountRow] = (
                session.scalars(select(KnownAccountRow).where(KnownAccountRow.account_id.in_(ids))) if ids else []
            )
            return {r.account_id: KnownOwner(r.rep_id, r.closed, r.owner_at) for r in rows}

    def all_known_owners(self) -> dict[str, KnownOwner]:
        """Every account of the owner mirror (closed ones too): the alignment as the worker
        last reported it (``territory export-alignment``)."""
        with self.sessions() as session:
            rows = session.scalars(select(KnownAccountRow).order_by(KnownAccountRow.account_id))
            return {r.account_id: KnownOwner(r.rep_id, r.closed, r.owner_at) for r in rows}

    def proposal_ids_newest_first(self) -> list[str]:
        """Every stored proposal's id, the newest moment judged (``event_time``) first, ties
        the last stored first; no payload is loaded."""
        with self.sessions() as session:
            found = list(
                session.execute(select(ProposalRow.proposal_id, ProposalRow.event_time, ProposalRow.stored_at))
            )

        def newest(item: Any) -> tuple[datetime, datetime]:
            moment = datetime.fromisoformat(item.event_time.replace("Z", "+00:00"))
            moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
            stored = item.stored_at if item.stored_at.tzinfo else item.stored_at.replace(tzinfo=timezone.utc)
            return moment, stored

        return [item.proposal_id for item in sorted(found, key=newest, reverse=True)]

    def known_reps(self, rep_ids: Iterable[str]) -> dict[str, bool]:
        """rep id -> active, for the reps the worker has reported."""
        ids = list(rep_ids)
        with self.sessions() as session:
            rows: Iterable[KnownRepRow] = (
                session.scalars(select(KnownRepRow).where(KnownRepRow.rep_id.in_(ids))) if ids else []
            )
            return {r.rep_id: r.active for r in rows}

    def state_time(self) -> str | None:
        """The newest event time among the mirrored snapshots (the data's clock), if any."""
        with self.sessions() as session:
            mark = session.get(StreamMarkRow, "state_time")
            return mark.value if mark is not None else None

    # ------------------------------------------------------------------ weekly reports

    def save_report(self, week: str, subject: str, html: str, proposal_ids: list[str]) -> int:
        with self.writing() as session:
            row = ReportRow(week=week, subject=subject, html=html, proposal_ids=proposal_ids)
            session.add(row)
            session.flush()
            return row.id

    def report_sent(self, report_id: int) -> None:
        with self.writing() as session:
            session.get(ReportRow, report_id).sent_at = now_utc()

    def reports(self, week: str | None = None) -> list[ReportRow]:
        with self.sessions() as session:
            query = select(ReportRow).order_by(ReportRow.id)
            if week:
                query = query.where(ReportRow.week == week)
            return list(session.scalars(query))

    # ------------------------------------------------------------------ retention

    def prune(self, *, retention_days: int, now: datetime | None = None) -> dict[str, int]:
        """Delete what is older than `retention_days`: decided proposals (with their moves
        and audit entries; pending ones wait for a decision however old), signals, outbox
        rows already sent and not pending again, and stored reports. Returns counts by kind."""
        cutoff = (now or now_utc()) - timedelta(days=retention_days)
        pruned = {}
        with self.writing() as session:
            decided = select(ProposalRow.proposal_id).where(
                ProposalRow.status.in_(("rejected", "superseded", "applied")),
                func.coalesce(ProposalRow.decided_at, ProposalRow.stored_at) < cutoff,
            )
            ids = list(session.scalars(decided))
            for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500)):
                session.execute(delete(MoveRow).where(MoveRow.proposal_id.in_(chunk)))
                session.execute(delete(AuditRow).where(AuditRow.proposal_id.in_(chunk)))
                session.execute(delete(ProposalRow).where(ProposalRow.proposal_id.in_(chunk)))
            pruned["proposals"] = len(ids)
            pruned["signals"] = session.execute(delete(SignalRow).where(SignalRow.stored_at < cutoff)).rowcount
            pruned["deliveries"] = session.execute(
                delete(DeliveryRow).where(DeliveryRow.pending.is_(False), DeliveryRow.sent_at < cutoff.timestamp())
            ).rowcount
            pruned["reports"] = session.execute(delete(ReportRow).where(ReportRow.created_at < cutoff)).rowcount
        return pruned

    # ------------------------------------------------------------------ erasure

    def erase_account(self, account_id: str) -> dict[str, int]:
        """Remove an account from every table of the store: its moves, and every mention in
        proposals, signals, the audit log, the alert outbox and stored reports. Records
        about it (an account's entry in a list) are dropped; its id inside texts becomes
        ``[erased]``; an outbox row whose very key names it is deleted. Returns how many
        rows changed, by kind: moves, proposals_scrubbed and signals_scrubbed always (as
        the first release did), audit, deliveries, reports and alignment_rows (its rows in
        the alignment snapshots, whose counts follow) when any changed there."""
        removed = dict.fromkeys(
            (
                "moves",
                "proposals_scrubbed",
                "signals_scrubbed",
                "audit_scrubbed",
                "deliveries_scrubbed",
                "reports_scrubbed",
                "alignment_rows",
            ),
            0,
        )
        mention = mention_pattern(account_id)
        with self.writing() as session:
            for move in session.scalars(select(MoveRow).where(MoveRow.account_id == account_id)):
                session.delete(move)
                removed["moves"] += 1
            known = session.get(KnownAccountRow, account_id)
            if known is not None:
                session.delete(known)
            # Its rows in every alignment snapshot; their counts follow.
            snapshots = list(
                session.scalars(
                    select(AlignmentAccountRow.snapshot_id).where(AlignmentAccountRow.account_id == account_id)
                )
            )
            removed["alignment_rows"] = session.execute(
                delete(AlignmentAccountRow).where(AlignmentAccountRow.account_id == account_id)
            ).rowcount
            for snapshot_id in snapshots:
                reps = select(func.count(func.distinct(AlignmentAccountRow.rep_id))).where(
                    AlignmentAccountRow.snapshot_id == snapshot_id
                )
                session.execute(
                    update(AlignmentSnapshotRow)
                    .where(AlignmentSnapshotRow.id == snapshot_id)
                    .values(accounts=AlignmentSnapshotRow.accounts - 1, reps=reps.scalar_subquery())
                )
            for proposal in session.scalars(select(ProposalRow)):
                payload = scrub(proposal.payload, account_id, mention)
                if payload != proposal.payload:
                    proposal.payload = payload
                    proposal.move_count = len(payload.get("moves", []))
                    removed["proposals_scrubbed"] += 1
                comment = scrub(proposal.decision_comment, account_id, mention)
                if comment != proposal.decision_comment:
                    proposal.decision_comment = comment
            for signal in session.scalars(select(SignalRow)):
                payload, subject = (
                    scrub(signal.payload, account_id, mention),
                    scrub(signal.subject, account_id, mention),
                )
                if (payload, subject) != (signal.payload, signal.subject):
                    signal.payload, signal.subject = payload, subject
                    removed["signals_scrubbed"] += 1
            for entry in session.scalars(select(AuditRow)):
                detail, comment = scrub(entry.detail, account_id, mention), scrub(entry.comment, account_id, mention)
                if (detail, comment) != (entry.detail, entry.comment):
                    entry.detail, entry.comment = detail, comment
                    removed["audit_scrubbed"] += 1
            for delivery in session.scalars(select(DeliveryRow)):
                if mention.search(delivery.alert_key):
                    session.delete(delivery)  # an incident about the account itself
                    removed["deliveries_scrubbed"] += 1
                    continue
                scrubbed = (
                    scrub(delivery.alert, account_id, mention),
                    scrub(delivery.sent_alert, account_id, mention),
                    scrub(delivery.last_error, account_id, mention),
                )
                if scrubbed != (delivery.alert, delivery.sent_alert, delivery.last_error):
                    delivery.alert, delivery.sent_alert, delivery.last_error = scrubbed
                    removed["deliveries_scrubbed"] += 1
            for report in session.scalars(select(ReportRow)):
                scrubbed = (
                    scrub(report.subject, account_id, mention),
                    scrub(report.html, account_id, mention),
                    scrub(report.proposal_ids, account_id, mention),
                )
                if scrubbed != (report.subject, report.html, report.proposal_ids):
                    report.subject, report.html, report.proposal_ids = scrubbed
                    removed["reports_scrubbed"] += 1
        first_release = ("moves", "proposals_scrubbed", "signals_scrubbed")
        return {kind: count for kind, count in removed.items() if kind in first_release or count}


@dataclass(frozen=True)
class KnownOwner:
    """An account's owner as the worker last reported it."""

    rep_id: str | None
    closed: bool
    owner_at: str | None = None


def later(moment: str, than: str) -> bool:
    return datetime.fromisoformat(moment.replace("Z", "+00:00")) > datetime.fromisoformat(than.replace("Z", "+00:00"))


def fold_state(
    snapshots: Iterable[Mapping[str, Any]],
) -> tuple[dict[str, KnownOwner | None], dict[str, bool], str | None]:
    """The newest owner per account (None: erased), activity per rep and the newest event
    time in a batch of territory.state snapshots. Pure."""
    accounts: dict[str, KnownOwner | None] = {}
    reps: dict[str, bool] = {}
    newest: str | None = None
    for snapshot in snapshots:
        kind = snapshot.get("kind")
        if kind == "account_erased":  # stamped when asked for: it does not move the data's clock
            accounts[snapshot["account_id"]] = None
            continue
        if kind not in ("account", "rep"):
            continue  # progress marks
        moment = snapshot.get("occurred_at")
        if moment and (newest is None or later(moment, newest)):
            newest = moment
        if kind == "rep":
            reps[snapshot["rep_id"]] = bool(snapshot.get("active", True))
        elif snapshot.get("known", True):
            accounts[snapshot["account_id"]] = KnownOwner(
                snapshot.get("rep_id"), bool(snapshot.get("closed")), snapshot.get("owner_at")
            )
    return accounts, reps, newest


#: What an erased account's id becomes inside stored texts.
ERASED = "[erased]"


def mention_pattern(account_id: str) -> re.Pattern[str]:
    """The id as a whole token: erasing "A-1" leaves "A-10" alone."""
    return re.compile(rf"(?<![\w.@-]){re.escape(account_id)}(?![\w.@-])")


def scrub(value: Any, account_id: str, mention: re.Pattern[str]) -> Any:
    """`value` (JSON-like) without the account: list entries that are the account (its id,
    or a record whose ``account_id`` is it) are dropped; mentions in strings and keys are
    replaced by :data:`ERASED`. Pure; returns an equal value when there is nothing to erase."""
    if isinstance(value, str):
        return mention.sub(ERASED, value)
    if isinstance(value, list):
        return [
            scrub(item, account_id, mention)
            for item in value
            if item != account_id and not (isinstance(item, dict) and item.get("account_id") == account_id)
        ]
    if isinstance(value, dict):
        return {scrub(key, account_id, mention): scrub(item, account_id, mention) for key, item in value.items()}
    return value


class SqlOutbox:
    """``alerts.dispatch.Outbox`` on the store's ``deliveries`` table: alerts wait in
    the database, so a restart or a sink that is down loses none (semantics in the
    protocol's docstring; ``MemoryOutbox`` is the reference)."""

    def __init__(self, store: Store) -> None:
        self.sessions = store.sessions
        self.writing = store.writing

    @staticmethod
    def _row(session: Any, key: str, sink: str) -> DeliveryRow | None:
        query = select(DeliveryRow).where(DeliveryRow.key_hash == alert_key_hash(key), DeliveryRow.sink == sink)
        return session.scalars(query.with_for_update()).one_or_none()

    def upsert(self, key: str, sink: str, alert: dict[str, Any], due_at: float) -> None:
        with self.writing() as session:
            row = self._row(session, key, sink)
            if row is None:
                session.add(
                    DeliveryRow(
                        alert_key=key,
                        key_hash=alert_key_hash(key),
                        sink=sink,
                        alert=alert,
                        due_at=due_at,
                        pending=True,
                        attempts=0,
                    )
                )
                return
            row.alert = alert
            if not row.pending:
                row.due_at = due_at
            elif row.attempts == 0:  # a failing row keeps its retry time
                row.due_at = min(row.due_at, due_at)
            row.pending = True

    def due(
        self, now: float, retry_within_s: float = math.inf, throttle_within_s: float = math.inf
    ) -> list[OutboxItem]:
        due = [DeliveryRow.due_at <= now]
        # Times further ahead than their interval allows: stored before the wall clock stepped back.
        if math.isfinite(retry_within_s):
            due.append(and_(DeliveryRow.attempts > 0, DeliveryRow.due_at > now + retry_within_s))
        if math.isfinite(throttle_within_s):
            due.append(and_(DeliveryRow.attempts == 0, DeliveryRow.due_at > now + throttle_within_s))
        with self.sessions() as session:
            rows = session.scalars(
                select(DeliveryRow)
                .where(DeliveryRow.pending.is_(True), or_(*due))
                .order_by(DeliveryRow.due_at, DeliveryRow.id)
            )
            return [OutboxItem(r.alert_key, r.sink, r.alert, r.due_at, r.attempts, r.last_error) for r in rows]

    def mark_sent(self, item: OutboxItem, sent_at: float) -> None:
        with self.writing() as session:
            row = self._row(session, item.key, item.sink)
            if row is None:
                return  # erased while it was sent (`Store.erase_account`): nothing left to record
            row.sent_at, row.sent_alert, row.attempts, row.last_error = sent_at, item.alert, 0, None
            # A newer alert may have replaced the content while this one was in flight.
            row.pending = row.alert != item.alert

    def mark_failed(self, item: OutboxItem, error: str, next_at: float) -> None:
        with self.writing() as session:
            row = self._row(session, item.key, item.sink)
            if row is None:
                return  # erased while it was tried (`Store.erase_account`): nothing left to retry
            row.attempts += 1
            row.last_error = error[:2000]
            row.due_at = next_at

    def last_sent(self, key: str, sink: str) -> tuple[float, dict[str, Any]] | None:
        with self.sessions() as session:
            row = self._row(session, key, sink)
            if row is None or row.sent_at is None or row.sent_alert is None:
                return None
            return row.sent_at, row.sent_alert

    def pending_count(self) -> int:
        with self.sessions() as session:
            count = session.scalar(select(func.count()).select_from(DeliveryRow).where(DeliveryRow.pending.is_(True)))
            return count or 0
