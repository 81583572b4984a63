"""The store's tables (SQLAlchemy 2 declarative models).

Alembic migrations in ``alerts/migrations`` create and change them; the models here
describe the current head, and a test checks that the two agree.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from core.clock import SYSTEM_CLOCK, Clock
from core.records import PROPOSAL_MODES, Proposal, Signal

#: A proposal's life: pending -> approved | rejected | superseded; approved -> applied.
PROPOSAL_STATES = ("pending", "approved", "rejected", "superseded", "applied")


class Base(DeclarativeBase):
    """The declarative base of the store's tables (SQLAlchemy needs a class of its own)."""


#: Execution option carrying the `Clock` that the tables' time defaults (stored_at, at,
#: created_at) read: ``engine.execution_options(**{CLOCK_OPTION: clock})``. Without it they
#: read the system clock.
CLOCK_OPTION = "territory_clock"


def now_utc(clock: Clock = SYSTEM_CLOCK) -> datetime:
    """The clock's time, aware UTC."""
    return clock.now()


def _default_now(context: Any) -> datetime:
    """A column default: the time of the clock the statement runs with (see CLOCK_OPTION)."""
    return now_utc(context.execution_options.get(CLOCK_OPTION, SYSTEM_CLOCK))


def alert_key_hash(key: str) -> str:
    """What the outbox is unique on: the SHA-256 of an alert key, in hex."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class SignalRow(Base):
    __tablename__ = "signals"

    signal_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    state: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    # "type:id": a contract id is up to 200 characters (core.contract.MAX_ID_LENGTH).
    subject: Mapped[str] = mapped_column(String(256), index=True)
    detected_at: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    stored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_default_now)

    def record(self) -> Signal:
        """The stored signal as published (the payload read through ``Signal.from_json``):
        what every reader of a stored signal reads, rather than the payload's keys."""
        return Signal.from_json(self.payload)


class ProposalRow(Base):
    __tablename__ = "proposals"

    proposal_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), index=True, default="pending")
    solver_status: Mapped[str] = mapped_column(String(16))
    move_count: Mapped[int] = mapped_column(Integer)
    imbalance_before: Mapped[float] = mapped_column(Float)
    imbalance_after: Mapped[float] = mapped_column(Float)
    event_time: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    stored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_default_now)
    alerted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Reps the proposal touches, comma separated and sorted: what "the same reps" means
    # when a newer proposal supersedes an older one.
    reps: Mapped[str] = mapped_column(Text, default="")  # any number of reps, 200 characters each
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    decision_comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    applied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    superseded_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # When an approval takes effect on the data's clock (alerts.decisions: the override's
    # occurred_at), fixed at the decision so every re-publish sends the same messages.
    effective_at: Mapped[str | None] = mapped_column(String(40), nullable=True)
    moves: Mapped[list["MoveRow"]] = relationship(back_populates="proposal", cascade="all, delete-orphan")

    def record(self) -> Proposal:
        """The stored proposal as published (the payload read through ``Proposal.from_json``):
        what every reader of a stored proposal reads, rather than the payload's keys."""
        return Proposal.from_json(self.payload)

    @property
    def mode(self) -> str:
        """The proposal's ``mode`` (``core.records.PROPOSAL_MODES``) without reading the whole
        record: a list shows dozens of proposals, and reading one with thousands of account
        rows through ``Proposal.from_json`` takes tens of milliseconds."""
        mode = self.payload.get("mode")
        return mode if mode in PROPOSAL_MODES else PROPOSAL_MODES[0]


class MoveRow(Base):
    __tablename__ = "moves"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    proposal_id: Mapped[str] = mapped_column(ForeignKey("proposals.proposal_id"), index=True)
    account_id: Mapped[str] = mapped_column(String(200))
    from_rep: Mapped[str | None] = mapped_column(String(200), nullable=True)
    to_rep: Mapped[str] = mapped_column(String(200))
    potential: Mapped[float] = mapped_column(Float)
    workload: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text)  # may quote rep ids and chain placement reasons
    # Why the approval left this move out (stale: the account changed since the proposal).
    excluded: Mapped[str | None] = mapped_column(Text, nullable=True)
    proposal: Mapped[ProposalRow] = relationship(back_populates="moves")


class AuditRow(Base):
    """Who did what, when and why: every decision and state change of a proposal."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_default_now, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(32))
    proposal_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class DeliveryRow(Base):
    """The alert outbox: one row per (incident, sink), kept until the sink has it."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("key_hash", "sink", name="uq_deliveries_key_hash_sink"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # An alert key joins every rep a proposal touches: unbounded, so rows are found by its hash.
    alert_key: Mapped[str] = mapped_column(Text)
    key_hash: Mapped[str] = mapped_column(String(64))
    sink: Mapped[str] = mapped_column(String(32))
    alert: Mapped[dict[str, Any]] = mapped_column(JSON)
    due_at: Mapped[float] = mapped_column(Float, index=True)
    pending: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    sent_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    sent_alert: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class ReportRow(Base):
    """A weekly review as it was built (and sent)."""

    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    week: Mapped[str] = mapped_column(String(10), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_default_now)
    subject: Mapped[str] = mapped_column(String(300))
    html: Mapped[str] = mapped_column(Text)
    proposal_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class KnownAccountRow(Base):
    """The newest owner of an account as the worker's intake reported it (territory.state):
    what an approval checks its moves against. Erasing the account deletes its row."""

    __tablename__ = "known_accounts"

    account_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    rep_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    owner_at: Mapped[str | None] = mapped_column(String(40), nullable=True)


class KnownRepRow(Base):
    """Whether a rep is active, as the worker's intake reported it last."""

    __tablename__ = "known_reps"

    rep_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class StreamMarkRow(Base):
    """Named marks of the worker's streams; ``state_time``: the newest event time of the
    snapshots mirrored, the data's clock when an approval is dated."""

    __tablename__ = "stream_marks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(64))


class AlignmentSnapshotRow(Base):
    """An alignment as it stood at a moment (alerts.history): taken when a proposal is
    approved and when it is applied, and a ``baseline`` before the first approval. Its
    accounts are rows of ``alignment_accounts``; ``accounts`` and ``reps`` count them."""

    __tablename__ = "alignment_snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    taken_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_default_now, index=True)
    # "baseline", "approved P", "applied P" (", restores #N" for a restore proposal).
    reason: Mapped[str] = mapped_column(String(300))
    proposal_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    accounts: Mapped[int] = mapped_column(Integer)
    reps: Mapped[int] = mapped_column(Integer)


class AlignmentAccountRow(Base):
    """One account of an alignment snapshot: its rep, the rep's district and the account's
    segment then; ``rep_at`` is when (on the data's clock) the account got that rep, so the
    next snapshot can tell an approved move from an older owner the worker still reports."""

    __tablename__ = "alignment_accounts"

    snapshot_id: Mapped[int] = mapped_column(ForeignKey("alignment_snapshots.id"), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(200), primary_key=True, index=True)  # erasure finds it
    rep_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    district: Mapped[str | None] = mapped_column(Text, nullable=True)
    segment: Mapped[str | None] = mapped_column(Text, nullable=True)
    rep_at: Mapped[str | None] = mapped_column(String(40), nullable=True)
