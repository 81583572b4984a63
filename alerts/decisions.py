"""Decisions on proposals: approve or reject, and publish what an approval changes.

A decision is a database write (``Store.decide``, audited with who, when and why), but an
approval must also reach Kafka: the CRM export reads ``territory.assignments``, and the
worker's own state follows from ``assignment.override`` events on ``territory.overrides``.
Publishing cannot be part of the database transaction, so the order is

    decide (committed, audited)  ->  publish every move to both topics  ->  mark applied

and a failure in between (broker down, process killed) leaves the proposal ``approved``
but not ``applied``. :func:`apply` publishes it again, from ``territory proposals apply ID``
or the worker's retry timer. Every message is a pure function of the stored proposal and
decision (ids, timestamps and texts come from the store, never from the clock at publish
time), so a retry repeats exactly the same messages: the intake recognises the overrides'
event ids as duplicates, and the assignments' consumers keep the latest message per
account, which is the same one.

The override's ``occurred_at`` is the proposal's ``event_time`` (the planner's watermark
when it proposed), not the wall clock: the intake orders events by event time, and a
wall-clock time far ahead of the data would move the overrides stream's time past
everything that follows and win over later CRM updates that are in fact newer.

``publisher`` is anything with ``async send(topic, key, value)`` that returns once the
broker acknowledged the message: :class:`KafkaPublisher` (aiokafka, for the CLI) and
:class:`FaustPublisher` (the worker's own producer, for the review page).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any, Mapping, Protocol

from alerts.store import DecisionError, KnownOwner, MoveRow, ProposalRow, Store
from core import topics
from core.clock import SYSTEM_CLOCK, Clock

__all__ = [
    "DecisionError",
    "FaustPublisher",
    "KafkaPublisher",
    "Outcome",
    "Publisher",
    "StaleMove",
    "StaleProposal",
    "apply",
    "apply_approved",
    "approval_messages",
    "approve",
    "reject",
    "stale_moves",
]

log = logging.getLogger("territory.decisions")

#: ``source`` of the override events an approval publishes (shows in dead letters and logs).
APPROVAL_SOURCE = "territory-approval"
#: Publishing one approval gives up after this long; the proposal then stays ``approved``.
PUBLISH_TIMEOUT_S = 30.0
_MAX_EVENT_ID = 200  # core.contract.MAX_ID_LENGTH
_MAX_TEXT = 2000  # core.contract.MAX_TEXT_LENGTH


class Publisher(Protocol):
    """Where approved assignments go: one JSON message per call."""

    async def send(self, topic: str, key: bytes, value: dict[str, Any]) -> None:
        """Publish `value` under `key` and return once the broker acknowledged it."""
        ...


@dataclass(frozen=True)
class Outcome:
    """What a decision or an apply did.

    ``status`` is the proposal's status afterwards: ``applied`` when the approval is
    published, ``approved`` when publishing failed (``error`` says why; the decision
    stands and :func:`apply` retries), ``rejected`` for a rejection.
    """

    proposal_id: str
    status: str
    moves: int = 0  # moves published in this call (each is two messages: assignment, override)
    published: int = 0  # messages the broker acknowledged in this call
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- messages


def _utc(moment: datetime) -> datetime:
    # SQLite hands timezone-aware columns back naive; they were written in UTC.
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _parse(moment: str) -> datetime:
    return _utc(datetime.fromisoformat(moment.replace("Z", "+00:00")))


def _event_time(row: ProposalRow) -> str:
    """When the approval takes effect, on the data's clock, as ISO 8601 with an offset (the
    contract needs one): fixed at the decision (``effective_at``); the proposal's event time
    for approvals recorded before that column existed."""
    return _parse(row.effective_at or row.event_time).isoformat()


def effective_time(proposal_event_time: str, state_time: str | None) -> str:
    """When an approval takes effect: the newest event time the worker had reported when it
    was given (the data's clock, not the wall clock, which may be far ahead of the data),
    never before the proposal's own event time. Owner changes dated before it lose to the
    approved move, those dated after it win (see README, "The manager's review")."""
    proposed = _parse(proposal_event_time)
    return max(proposed, _parse(state_time)).isoformat() if state_time else proposed.isoformat()


@dataclass(frozen=True)
class StaleMove:
    """A move the account's current state no longer allows, and why."""

    account_id: str
    why: str


def stale_moves(moves: list[MoveRow], owners: Mapping[str, KnownOwner], active: Mapping[str, bool]) -> list[StaleMove]:
    """The moves that no longer fit what the worker reported since the proposal: the
    account was closed or erased, has another owner now, or the target rep is not active.
    An account or rep the store has no report on is not judged (nothing newer is known
    than what the planner proposed from). Pure."""
    stale = []
    for move in moves:
        owner = owners.get(move.account_id)
        if owner is not None and owner.closed:
            stale.append(StaleMove(move.account_id, "the account is closed"))
        elif owner is not None and owner.rep_id != move.from_rep:
            stale.append(
                StaleMove(move.account_id, f"now owned by {owner.rep_id or 'nobody'}, not {move.from_rep or 'nobody'}")
            )
        elif active.get(move.to_rep) is False:
            stale.append(StaleMove(move.account_id, f"the target rep {move.to_rep} is not active"))
    return stale


class StaleProposal(DecisionError):
    """Some moves of the proposal no longer fit the accounts' current state; nothing decided."""

    def __init__(self, proposal_id: str, stale: list[StaleMove], total: int):
        listed = "; ".join(f"{s.account_id}: {s.why}" for s in stale)
        if len(stale) == total:
            advice = "no move is still valid: reject it (a newer proposal will follow from the current state)"
        else:
            advice = (
                "approve only the still-valid moves (`territory proposals approve --only-valid`, or "
                '"only_valid": true in the API), or reject it'
            )
        super().__init__(
            f"proposal {proposal_id}: {len(stale)} of {total} moves are stale: {listed}. Nothing was decided; {advice}"
        )
        self.stale = stale


def _override_event_id(proposal_id: str, account_id: str) -> str:
    """``approval-<proposal>-<account>``: the same for every retry of the same approval, so
    the intake's event-id dedupe recognises a re-publish. Long account ids are hashed to
    stay inside the contract's 200 characters."""
    event_id = f"approval-{proposal_id}-{account_id}"
    if len(event_id) <= _MAX_EVENT_ID:
        return event_id
    return f"approval-{proposal_id}-{hashlib.sha256(account_id.encode()).hexdigest()[:32]}"


def _override_reason(row: ProposalRow) -> str:
    text = f"approved proposal {row.proposal_id}"
    if row.decision_comment:
        text += f": {row.decision_comment}"
    return text[:_MAX_TEXT]


def approval_messages(row: ProposalRow, moves: list[MoveRow]) -> list[tuple[str, bytes, dict[str, Any]]]:
    """(topic, key, value) of everything an approved proposal publishes, in order: per
    move, the assignment for the CRM and the override the worker's intake applies.

    The override sets ``locked`` to false explicitly: the contract reads an absent
    ``locked`` as true (a manager's override locks the account), which would lock every
    approved move. The rebalancer moves only unlocked accounts, or those of a rep who left
    (whose lock no longer holds), so false keeps the accounts as they were: movable by the
    next proposal.
    """
    if row.decided_at is None or not row.decided_by:
        raise DecisionError(f"proposal {row.proposal_id} has no recorded decision to publish")
    approved_at = _utc(row.decided_at).isoformat()
    occurred_at = _event_time(row)
    messages: list[tuple[str, bytes, dict[str, Any]]] = []
    for move in moves:
        if move.excluded:
            continue  # left out by the approval: stale
        key = move.account_id.encode("utf-8")
        messages.append(
            (
                topics.ASSIGNMENTS,
                key,
                {
                    "account_id": move.account_id,
                    "from_rep": move.from_rep,
                    "to_rep": move.to_rep,
                    "proposal_id": row.proposal_id,
                    "approved_by": row.decided_by,
                    "approved_at": approved_at,
                    "reason": move.reason,
                    "comment": row.decision_comment,
                },
            )
        )
        messages.append(
            (
                topics.OVERRIDES,
                key,
                {
                    "event_id": _override_event_id(row.proposal_id, move.account_id),
                    "type": "assignment.override",
                    "occurred_at": occurred_at,
                    "source": APPROVAL_SOURCE,
                    "data": {
                        "account_id": move.account_id,
                        "rep_id": move.to_rep,
                        "locked": False,
                        "reason": _override_reason(row),
                        "by": row.decided_by[:_MAX_TEXT],
                    },
                },
            )
        )
    return messages


# --------------------------------------------------------------------------- decisions


async def approve(
    store: Store,
    publisher: Publisher,
    proposal_id: str,
    *,
    actor: str,
    comment: str = "",
    only_valid_moves: bool = False,
    timeout_s: float = PUBLISH_TIMEOUT_S,
) -> Outcome:
    """Approve a pending proposal and publish its moves.

    Each move is checked against the owners the worker reported since (:func:`stale_moves`).
    With stale moves, :class:`StaleProposal` lists them and nothing is decided, unless
    ``only_valid_moves``: then the others are approved and the stale ones are left out
    (kept on the proposal with why, and in the audit log). None valid: refused either way.

    Raises :class:`DecisionError` (nothing changed) when the proposal is unknown or not
    pending. Once the decision is recorded it stands: a publishing failure is returned in
    ``Outcome.error`` with status ``approved``, never raised, so the caller can tell the
    person that the approval holds and will be published by a retry.
    """
    proposal = await asyncio.to_thread(store.proposal, proposal_id)
    if proposal is None:
        raise DecisionError(f"no proposal {proposal_id!r}")
    moves = await asyncio.to_thread(store.moves, proposal_id)
    owners = await asyncio.to_thread(store.known_owners, [m.account_id for m in moves])
    active = await asyncio.to_thread(store.known_reps, sorted({m.to_rep for m in moves}))
    stale = stale_moves(moves, owners, active)
    if stale and (not only_valid_moves or len(stale) == len(moves)):
        if proposal.status == "pending":
            raise StaleProposal(proposal_id, stale, len(moves))
    effective_at = effective_time(proposal.event_time, await asyncio.to_thread(store.state_time))
    row = await asyncio.to_thread(
        store.decide,
        proposal_id,
        "approved",
        actor=actor,
        comment=comment,
        excluded={s.account_id: s.why for s in stale},
        effective_at=effective_at,
    )
    log.info("proposal %s approved by %s: %s", proposal_id, actor, comment)
    return await _publish(store, publisher, row, applied_by=actor, timeout_s=timeout_s)


async def reject(
    store: Store, publisher: Publisher | None, proposal_id: str, *, actor: str, comment: str = ""
) -> Outcome:
    """Reject a pending proposal. Nothing is published: the assignments stay as they are.

    ``publisher`` is accepted (and unused) so callers treat both decisions alike.
    Raises :class:`DecisionError` when the proposal is unknown or not pending.
    """
    await asyncio.to_thread(store.decide, proposal_id, "rejected", actor=actor, comment=comment)
    log.info("proposal %s rejected by %s: %s", proposal_id, actor, comment)
    return Outcome(proposal_id, "rejected")


async def apply(
    store: Store, publisher: Publisher, proposal_id: str, *, actor: str = "worker", timeout_s: float = PUBLISH_TIMEOUT_S
) -> Outcome:
    """Publish an approved proposal that is not applied yet (the retry after a failure).

    An applied proposal is left alone (status ``applied``, nothing published): its
    messages are on the topics already. Raises :class:`DecisionError` for an unknown
    proposal or one that was never approved.
    """
    row = await asyncio.to_thread(store.proposal, proposal_id)
    if row is None:
        raise DecisionError(f"no proposal {proposal_id!r}")
    if row.status == "applied":
        return Outcome(proposal_id, "applied")
    if row.status != "approved":
        raise DecisionError(f"proposal {proposal_id} is {row.status}: only an approved proposal can be applied")
    return await _publish(store, publisher, row, applied_by=actor, timeout_s=timeout_s)


async def apply_approved(
    store: Store,
    publisher: Publisher,
    *,
    older_than_s: float = 60.0,
    actor: str = "worker",
    timeout_s: float = PUBLISH_TIMEOUT_S,
    clock: Clock = SYSTEM_CLOCK,
) -> list[Outcome]:
    """Apply every proposal approved at least `older_than_s` seconds ago but not applied.

    The grace period leaves a fresh approval to whoever is publishing it right now (a
    second publisher would only send duplicates, but there is no need to).
    """
    now = clock.now()
    rows = await asyncio.to_thread(store.proposals, "approved")
    outcomes = []
    for row in rows:
        if row.decided_at is not None and (now - _utc(row.decided_at)).total_seconds() < older_than_s:
            continue
        outcomes.append(await _publish(store, publisher, row, applied_by=actor, timeout_s=timeout_s))
    return outcomes


async def _publish(
    store: Store, publisher: Publisher, row: ProposalRow, *, applied_by: str, timeout_s: float
) -> Outcome:
    moves = [m for m in await asyncio.to_thread(store.moves, row.proposal_id) if not m.excluded]
    messages = approval_messages(row, moves)
    sent = 0
    try:
        async with asyncio.timeout(timeout_s):
            for topic, key, value in messages:
                await publisher.send(topic, key, value)
                sent += 1
    except Exception as error:  # noqa: BLE001 - any publishing failure leaves the approval for a retry
        reason = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        if isinstance(error, TimeoutError):
            reason = f"publishing timed out after {timeout_s:g} s"
        log.error(
            "proposal %s: approved, but publishing failed after %d of %d messages (%s); "
            "`territory proposals apply %s` or the worker retries",
            row.proposal_id,
            sent,
            len(messages),
            reason,
            row.proposal_id,
        )
        return Outcome(row.proposal_id, "approved", published=sent, error=reason)
    await asyncio.to_thread(store.mark_applied, row.proposal_id, actor=applied_by)
    log.info(
        "proposal %s applied: %d moves published to %s and %s",
        row.proposal_id,
        len(moves),
        topics.ASSIGNMENTS,
        topics.OVERRIDES,
    )
    return Outcome(row.proposal_id, "applied", moves=len(moves), published=sent)


# --------------------------------------------------------------------------- publishers


def encode(value: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON, as every other producer of the project writes it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class KafkaPublisher:
    """A :class:`Publisher` over its own aiokafka producer, for the command line.

    Use as ``async with KafkaPublisher(bootstrap) as publisher``. Not idempotent: the
    embedded broker rejects InitProducerId, and the messages are idempotent anyway.
    """

    def __init__(self, bootstrap_servers: str, **client_options: Any):
        from aiokafka import AIOKafkaProducer

        # client_options: TLS / SASL (core.kafka_auth.client_options)
        self._producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", **client_options)

    async def __aenter__(self) -> "KafkaPublisher":
        try:
            await self._producer.start()
        except BaseException:
            await self._producer.stop()  # a failed start leaves its client open
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._producer.stop()

    async def send(self, topic: str, key: bytes, value: dict[str, Any]) -> None:
        await self._producer.send_and_wait(topic, encode(value), key=key)


class FaustPublisher:
    """A :class:`Publisher` over a running Faust app's producer (the worker's own
    connection, on the worker's loop): no second Kafka client in the worker."""

    def __init__(self, app: Any):
        self._app = app

    async def send(self, topic: str, key: bytes, value: dict[str, Any]) -> None:
        await self._app.producer.send_and_wait(topic, key, encode(value), partition=None, timestamp=None, headers=None)
