"""The proposal store: signals, proposals and moves in a SQL database (SQLAlchemy 2)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, create_engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker


class Base(DeclarativeBase):
    """The declarative base of the store's tables (SQLAlchemy needs a class of its own)."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


class SignalRow(Base):
    __tablename__ = "signals"

    signal_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    state: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(200), index=True)
    detected_at: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    stored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


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
    stored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    alerted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    moves: Mapped[list["MoveRow"]] = relationship(back_populates="proposal", cascade="all, delete-orphan")


class MoveRow(Base):
    __tablename__ = "moves"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    proposal_id: Mapped[str] = mapped_column(ForeignKey("proposals.proposal_id"), index=True)
    account_id: Mapped[str] = mapped_column(String(200))
    from_rep: Mapped[str | None] = mapped_column(String(200), nullable=True)
    to_rep: Mapped[str] = mapped_column(String(200))
    potential: Mapped[float] = mapped_column(Float)
    workload: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(String(500))
    proposal: Mapped[ProposalRow] = relationship(back_populates="moves")


class Store:
    """Idempotent writes: storing the same signal or proposal twice keeps one row."""

    def __init__(self, url: str):
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        self.engine = create_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def create_schema(self) -> None:
        Base.metadata.create_all(self.engine)

    def save_signal(self, signal: dict[str, Any]) -> bool:
        """Store a signal; False when it was already stored."""
        with self.sessions.begin() as session:
            if session.get(SignalRow, signal["signal_id"]) is not None:
                return False
            session.add(SignalRow(
                signal_id=signal["signal_id"], kind=signal["kind"], state=signal["state"],
                severity=signal["severity"], subject=f'{signal["subject"]["type"]}:{signal["subject"]["id"]}',
                detected_at=signal["detected_at"], payload=signal,
            ))
            return True

    def save_proposal(self, proposal: dict[str, Any]) -> bool:
        """Store a pending proposal and its moves; older pending ones become superseded.

        Returns False when the proposal was stored and alerted before (a redelivered
        message), so the caller alerts once per proposal, and again only if the alert
        was not sent before a crash.
        """
        with self.sessions.begin() as session:
            existing = session.get(ProposalRow, proposal["proposal_id"])
            if existing is not None:
                return existing.alerted_at is None
            for older in session.scalars(select(ProposalRow).where(ProposalRow.status == "pending")):
                older.status = "superseded"
            session.add(ProposalRow(
                proposal_id=proposal["proposal_id"], status="pending", solver_status=proposal["status"],
                move_count=len(proposal["moves"]), imbalance_before=proposal["imbalance_before"],
                imbalance_after=proposal["imbalance_after"], event_time=proposal["event_time"], payload=proposal,
                moves=[MoveRow(account_id=m["account_id"], from_rep=m["from_rep"], to_rep=m["to_rep"],
                               potential=m["potential"], workload=m["workload"], reason=m["reason"])
                       for m in proposal["moves"]],
            ))
            return True

    def mark_alerted(self, proposal_id: str) -> None:
        with self.sessions.begin() as session:
            session.get(ProposalRow, proposal_id).alerted_at = _now()

    def erase_account(self, account_id: str) -> dict[str, int]:
        """Remove an account from the store: its moves, and its id inside stored proposals
        and signals. Returns what was removed, by kind."""
        removed = {"moves": 0, "proposals_scrubbed": 0, "signals_scrubbed": 0}
        with self.sessions.begin() as session:
            for move in session.scalars(select(MoveRow).where(MoveRow.account_id == account_id)):
                session.delete(move)
                removed["moves"] += 1
            for proposal in session.scalars(select(ProposalRow)):
                moves = [m for m in proposal.payload.get("moves", []) if m.get("account_id") != account_id]
                if len(moves) != len(proposal.payload.get("moves", [])):
                    proposal.payload = {**proposal.payload, "moves": moves}
                    removed["proposals_scrubbed"] += 1
            for signal in session.scalars(select(SignalRow)):
                ids = signal.payload.get("evidence", {}).get("account_ids")
                if ids and account_id in ids:
                    evidence = {**signal.payload["evidence"], "account_ids": [i for i in ids if i != account_id]}
                    signal.payload = {**signal.payload, "evidence": evidence}
                    removed["signals_scrubbed"] += 1
        return removed

    def proposals(self, status: str | None = None) -> list[ProposalRow]:
        with self.sessions() as session:
            query = select(ProposalRow).order_by(ProposalRow.stored_at)
            if status:
                query = query.where(ProposalRow.status == status)
            return list(session.scalars(query))

    def moves(self, proposal_id: str) -> list[MoveRow]:
        with self.sessions() as session:
            return list(session.scalars(select(MoveRow).where(MoveRow.proposal_id == proposal_id).order_by(MoveRow.id)))

    def signals(self) -> list[SignalRow]:
        with self.sessions() as session:
            return list(session.scalars(select(SignalRow).order_by(SignalRow.stored_at)))
