"""Handling of one input message: validate, deduplicate, order in event time, apply.

`Intake.handle` decides what happens to each message and reports every outcome
through `on_outcome(topic, outcome, field)`: applied, duplicate or deadlettered. A
message waiting for its account is *held* (and counted in `held_count`) until it is
applied or dead-lettered, so at any moment

    applied + duplicate + deadlettered + held == messages consumed.

Tables are any MutableMapping (Faust tables in the worker, dicts in unit tests), and
the sends are injected. Any error becomes a dead letter: a bad message never stops
the worker.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import heapq
import hmac
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, MutableMapping

from core.clock import SYSTEM_CLOCK, Clock
from core.contract import ContractError, Event, parse_event
from monitor import dedupe
from monitor.state import AccountState, RepState, apply_account_event, apply_rep_event, state_of
from core import topics

if TYPE_CHECKING:
    from core.settings import Settings

log = logging.getLogger(__name__)

Send = Callable[[str, dict[str, Any]], Awaitable[Any]]
OnOutcome = Callable[[str, str, "str | None"], None]

# Events that add into event-time windows (sales, minutes, pipeline).
WINDOWED = frozenset({"order.placed", "activity.logged", "opportunity.updated"})

# Events that only make sense for an account we know; they wait for its upsert.
NEEDS_ACCOUNT = frozenset(
    {"order.placed", "activity.logged", "opportunity.updated", "assignment.override", "account.closed"}
)


@dataclass(frozen=True)
class Origin:
    """Where a message came from, and the message itself, for dead-lettering unchanged.

    Only the position is kept in state (`to_dict`): a held event is stored parsed, never as
    its raw message, whose extra fields could make the account's record too large."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None

    @property
    def source(self) -> str:
        return f"{self.topic}:{self.partition}"

    def to_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset, "key": _text(self.key)}

    @classmethod
    def from_dict(cls, row: dict[str, Any], value: bytes | None = None) -> "Origin":
        key = row["key"].encode() if row.get("key") is not None else None
        if value is None and row.get("value_base64") is not None:  # held before events were stored parsed
            value = base64.b64decode(row["value_base64"])
        return cls(row["topic"], row["partition"], row["offset"], key, value)


@dataclass
class _Batch:
    """What one batch has read and changed, until it is written at its end."""

    accounts: dict[str, AccountState | None] = field(default_factory=dict)  # account id -> state (None: none)
    changed_accounts: set[str] = field(default_factory=set)
    reps: dict[str, Any] = field(default_factory=dict)
    changed_reps: set[str] = field(default_factory=set)
    stream_times: dict[str, Any] = field(default_factory=dict)
    # Snapshots for the planner in the order they were made, one per key unless an erasure
    # came between; `pending` points at the one later records of a key are added into.
    snapshots: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    pending: dict[str, int] = field(default_factory=dict)
    # Input stream -> [earliest, newest] event time of the snapshots (ISO, UTC).
    times: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class IntakeRules:
    late_horizon: timedelta = timedelta(days=400)
    hold_for: timedelta = timedelta(days=30)
    max_held_per_account: int = 100
    pseudonym_key: bytes = b"territory-demo-pseudonym-key"
    # Events dated further ahead of the wall clock are dead-lettered `in_the_future`.
    future_margin: timedelta = timedelta(days=3)
    # Held events of one account, in bytes of their JSON; more are dead-lettered.
    max_held_bytes_per_account: int = 256 * 1024
    # Largest record the broker accepts. An account's row may use ROW_SHARE of it: its snapshot
    # to the planner adds the orders released with it, and the changelog adds key and framing.
    max_record_bytes: int = 1_000_000

    @classmethod
    def from_settings(cls, settings: "Settings") -> "IntakeRules":
        return cls(
            late_horizon=timedelta(days=settings.late_horizon_days),
            hold_for=timedelta(days=settings.hold_days),
            max_held_per_account=settings.max_held_per_account,
            pseudonym_key=settings.pseudonym_key.encode(),
            future_margin=timedelta(days=settings.future_margin_days),
            max_held_bytes_per_account=settings.max_held_bytes_per_account,
            max_record_bytes=settings.max_record_bytes,
        )

    @property
    def max_row_bytes(self) -> int:
        return int(self.max_record_bytes * ROW_SHARE)


#: Share of the broker's record limit an account's state row may take (see IntakeRules).
ROW_SHARE = 0.8


class Intake:
    """Applies input messages to the account and rep tables, a batch at a time.

    Within a batch (`handle_batch`) rows are read from the tables once and kept in memory;
    at its end each changed row is written once, then one snapshot per changed account or
    rep goes to the planner, carrying every order the batch applied to it and the event
    times it saw per input stream (the planner's watermark reads those). Dead letters are
    sent as they happen. A crash before the end of a batch loses its writes and its offsets
    alike: the batch is read again, and the rows it did write (the event ids they keep)
    recognise what was applied."""

    def __init__(
        self,
        *,
        accounts: MutableMapping[str, Any],
        reps: MutableMapping[str, Any],
        stream_times: MutableMapping[str, Any],
        send_state: Send,
        send_deadletter: Send,
        on_outcome: OnOutcome,
        rules: IntakeRules = IntakeRules(),
        is_caught_up: Callable[[str], bool] = lambda source: True,
        clock: Clock = SYSTEM_CLOCK,
    ):
        self.accounts = accounts
        self.reps = reps
        self.stream_times = stream_times
        self.send_state = send_state
        self.send_deadletter = send_deadletter
        self.on_outcome = on_outcome
        self.rules = rules
        self.is_caught_up = is_caught_up
        # Wall time (aware UTC): what `in_the_future` is judged against and when a dead letter was written.
        self.clock = clock
        # partition -> heap of (hold deadline in event time, account id)
        self._deadlines: dict[int, list[tuple[str, str]]] = {}
        self.held_count = 0
        self._batch = _Batch()

    def rebuild_hold_index(self) -> None:
        """After a restart: find held events in the recovered table again."""
        self._deadlines, self.held_count = {}, 0
        for account_id, row in list(self.accounts.items()):
            for entry in state_of(row).held if row else []:
                self._track_hold(account_id, entry)

    async def handle(self, *, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None) -> None:
        """One message: a batch of one."""
        await self.handle_batch([Origin(topic, partition, offset, key, value)])

    async def handle_batch(self, messages: Iterable[Origin]) -> None:
        """Messages in the order they were read (per input partition, by offset)."""
        self._batch = _Batch()
        for origin in messages:
            try:
                await self._handle(origin)
            except Exception as error:  # noqa: BLE001 - a bug must not stop the stream
                log.exception("failed to handle %s[%s]@%s", origin.topic, origin.partition, origin.offset)
                await self._deadletter(origin, "internal", "internal", f"internal: {type(error).__name__}: {error}")
        await self._flush()

    # --- rows of this batch -------------------------------------------------------------

    def _account_row(self, account_id: str) -> AccountState | None:
        """The account's state in this batch. From the table: its own top-level copy (the buckets
        and lists are shared, as a row's were), since the table keeps the state object itself."""
        rows = self._batch.accounts
        if account_id not in rows:
            row = self.accounts.get(account_id)
            rows[account_id] = None if row is None else copy.copy(state_of(row))
        return rows[account_id]

    def _put_account(self, account_id: str, state: AccountState) -> None:
        """`state` is the account's row for the rest of the batch, and the table's at its end."""
        self._batch.accounts[account_id] = state
        self._batch.changed_accounts.add(account_id)

    def _rep_row(self, rep_id: str) -> dict[str, Any] | None:
        rows = self._batch.reps
        if rep_id not in rows:
            rows[rep_id] = self.reps.get(rep_id)
        return rows[rep_id]

    def _stream_time(self, source: str) -> str | None:
        times = self._batch.stream_times
        if source not in times:
            times[source] = self.stream_times.get(source)
        return times[source]

    async def _flush(self) -> None:
        batch = self._batch
        for account_id in sorted(batch.changed_accounts):
            self.accounts[account_id] = batch.accounts[account_id]
        for rep_id in sorted(batch.changed_reps):
            self.reps[rep_id] = batch.reps[rep_id]
        for source, moment in batch.stream_times.items():
            if moment is not None and moment != self.stream_times.get(source):
                self.stream_times[source] = moment
        for key, record in batch.snapshots:
            await self.send_state(key, record)
        if batch.times:
            # Per input stream, the earliest and newest event time of the batch's snapshots.
            await self.send_state("stream-times", {"kind": "stream_times", "times": batch.times})
        self._batch = _Batch()

    def _queue_snapshot(self, key: str, record: dict[str, Any], event: Event | None, origin: Origin) -> None:
        """The record replaces this batch's earlier one for `key`, adding up the orders. Its
        event time goes to the batch's `stream_times` record, sent after every snapshot of the
        batch: the planner may split a batch, and must not judge a day on a snapshot's time
        while other snapshots of the same batch, with orders of that day, are still to come."""
        batch = self._batch
        if event is not None:
            self._note_time(event, origin)
            record = {**record, "stream_times_follow": True}
        at = batch.pending.get(key)
        if at is not None and "orders" in record:
            record = {**record, "orders": batch.snapshots[at][1].get("orders", []) + record["orders"]}
        if at is None:
            batch.pending[key] = len(batch.snapshots)
            batch.snapshots.append((key, record))
        else:
            batch.snapshots[at] = (key, record)

    def _note_time(self, event: Event, origin: Origin) -> None:
        """`event`'s time goes into this batch's `stream_times` record for its stream."""
        moment = event.occurred_at.astimezone(timezone.utc).isoformat()
        earliest, newest = self._batch.times.get(origin.source, (moment, moment))
        self._batch.times[origin.source] = [min(earliest, moment), max(newest, moment)]

    def _close_snapshot(self, key: str) -> None:
        """Later records of `key` in this batch start a snapshot of their own (after an erasure)."""
        self._batch.pending.pop(key, None)

    # --- one message ----------------------------------------------------------------------

    async def _handle(self, origin: Origin) -> None:
        topic = origin.topic
        try:
            event = parse_event(origin.value, topic=topic, key=origin.key)
        except ContractError as error:
            await self._deadletter(origin, error.field, "invalid", str(error))
            return
        event_digest = dedupe.digest(event.event_id)
        if dedupe.was_seen(self._seen_of(event), event_digest):
            self._send_again(event, origin)
            self.on_outcome(topic, "duplicate", None)
            return
        stream_time = self._stream_time(origin.source)
        moment = event.occurred_at.astimezone(timezone.utc)
        # A date far ahead would move this stream's time (and the planner's watermark) there:
        # every later order would then be `too_late`, for good.
        latest = self.clock.now() + self.rules.future_margin
        if moment > latest:
            await self._deadletter(
                origin,
                "occurred_at",
                "in_the_future",
                f"occurred_at: in_the_future: {moment.isoformat()} is more than "
                f"{self.rules.future_margin.days} days after now ({latest.date()} at the latest)",
            )
            return
        # Only events that add into time windows can be too late; an old profile upsert
        # (an account untouched for years) is simply older than the newest one.
        if (
            event.type in WINDOWED
            and stream_time
            and moment < datetime.fromisoformat(stream_time) - self.rules.late_horizon
        ):
            await self._deadletter(
                origin,
                "occurred_at",
                "too_late",
                f"occurred_at: too_late: {moment.date()} is more than {self.rules.late_horizon.days} "
                f"days before this stream's time {stream_time[:10]}",
            )
            return
        # An erasure is stamped with the moment it was asked for, not when anything happened:
        # it must not move the stream's time.
        if event.type != "account.erased" and (stream_time is None or moment.isoformat() > stream_time):
            self._batch.stream_times[origin.source] = moment.isoformat()
        try:
            await self._apply(event, origin, event_digest)
        except Exception as error:  # noqa: BLE001 - a bug must not stop the stream
            log.exception("failed to apply event %s", event.event_id)
            await self._deadletter(origin, "internal", "internal", f"internal: {type(error).__name__}: {error}")
            return
        await self._expire_holds(origin.partition, moment)

    def _send_again(self, event: Event, origin: Origin) -> None:
        """A duplicate may be a message read again after a crash that wrote its row but lost
        the snapshot sent after it: send that again (the planner keeps the newest snapshot of
        each account and rep, and counts each order once). A rep is sent again whatever the
        reason (there are few); an account when the message is at or before its row's
        applied offset (a copy sent again by a producer is not)."""
        if event.type == "rep.upserted":
            row = self._rep_row(event.data["rep_id"])
            if row:
                rep = RepState.from_dict(row)
                log.info("rep %s read again at %s@%s: snapshot sent again", rep.rep_id, origin.source, origin.offset)
                self._queue_snapshot(
                    f"rep:{rep.rep_id}", {"kind": "rep", **_stamp(event, origin), **rep.to_dict()}, event, origin
                )
            return
        account_id = event.data["account_id"]
        state = self._account_row(account_id)
        if state is None or event.type == "account.erased":
            return
        if state.known and origin.offset <= state.applied_offsets.get(origin.topic, -1):
            self._send_account(
                account_id, state, event, origin, [_order_of(event)] if event.type == "order.placed" else []
            )

    def _seen_of(self, event: Event) -> dedupe.Seen:
        if event.type == "rep.upserted":
            return dedupe.flat((self._rep_row(event.data["rep_id"]) or {}).get("seen"))
        state = self._account_row(event.data["account_id"])
        return state.seen if state is not None else {}

    def _remember(self, seen: dedupe.Seen, event: Event, origin: Origin, event_digest: str) -> None:
        """Mark the event applied and forget the days beyond the late horizon of each stream."""
        day = event.occurred_at.astimezone(timezone.utc).date().isoformat()
        dedupe.remember(seen, origin.topic, day, event_digest)

        def oldest_day(topic: str) -> str | None:
            stream_time = self._stream_time(f"{topic}:{origin.partition}")
            if not stream_time:
                return None
            return (datetime.fromisoformat(stream_time) - self.rules.late_horizon).date().isoformat()

        dedupe.prune(seen, oldest_day)

    async def _apply(self, event: Event, origin: Origin, event_digest: str) -> None:
        if event.type == "rep.upserted":
            self._apply_rep(event, origin, event_digest)
            return
        account_id = event.data["account_id"]
        # Whether it was applied is the event id's to say (`_handle`), never the offset: Faust
        # may hand over a record prefetched before a rebalance ahead of earlier ones it reads
        # again after seeking back, and those earlier ones were not applied.
        state = self._account_row(account_id)
        if event.type == "account.erased":
            self._erase(account_id, state, event, origin, event_digest)
            return
        if event.type in NEEDS_ACCOUNT and (state is None or not state.known):
            await self._hold(account_id, state, event, origin, event_digest)
            return
        state = apply_account_event(state, event, name_hash=self._pseudonym(event.data.get("name")))
        _note_offset(state.applied_offsets, origin)
        self._remember(state.seen, event, origin, event_digest)
        # The row is encoded to measure it only when its size bound nears the limit: most
        # rows are a few kB, and encoding each for each of its events was a tenth of the intake.
        bound = None if state.row_bytes is None else state.row_bytes + _growth_bound(origin)
        if bound is None or bound > self.rules.max_row_bytes:
            state.row_bytes = None
            row = state.to_dict()
            bound = _json_size(row) + _ROW_BYTES_FIELD
            if bound > self.rules.max_row_bytes:
                # The changelog record (and the snapshot) would be refused by the broker, which
                # stops the worker; the account keeps its state without this event.
                await self._deadletter(
                    origin,
                    "data.account_id",
                    "state_too_large",
                    f"data.account_id: state_too_large: account {account_id!r} would need {bound} bytes "
                    f"of state, over {self.rules.max_row_bytes} ({_largest_part(row)})",
                )
                return
        state.row_bytes = bound
        orders = [_order_of(event)] if event.type == "order.placed" else []
        if event.type == "account.upserted" and state.held:
            state, released = self._release(state)
            state.row_bytes = None  # measured again at its next event
            orders += [_order_of(e) for e in released if e.type == "order.placed"]
        self._put_account(account_id, state)
        self._send_account(account_id, state, event, origin, orders)
        self.on_outcome(origin.topic, "applied", None)

    def _send_account(
        self, account_id: str, state: AccountState, event: Event, origin: Origin, orders: list[list]
    ) -> None:
        # With the orders this update applied, by day: the planner sums regional daily sales from them.
        self._queue_snapshot(
            f"account:{account_id}",
            {"kind": "account", **_stamp(event, origin), **state.public_dict(), "orders": orders},
            event,
            origin,
        )

    def _apply_rep(self, event: Event, origin: Origin, event_digest: str) -> None:
        rep = apply_rep_event(event)
        current = self._rep_row(rep.rep_id)
        seen = dedupe.flat(current.get("seen")) if current else {}
        self._remember(seen, event, origin, event_digest)
        if current and RepState.from_dict(current).updated_at > rep.updated_at:
            # An older version of the rep arrived late: the newer one stays (its id is kept).
            self._batch.reps[rep.rep_id] = {**current, "seen": seen}
        else:
            self._batch.reps[rep.rep_id] = {**rep.to_dict(), "seen": seen}
            log.info("rep %s applied from %s@%s", rep.rep_id, origin.source, origin.offset)
            self._queue_snapshot(
                f"rep:{rep.rep_id}", {"kind": "rep", **_stamp(event, origin), **rep.to_dict()}, event, origin
            )
        self._batch.changed_reps.add(rep.rep_id)
        self.on_outcome(origin.topic, "applied", None)

    async def _hold(
        self, account_id: str, state: AccountState | None, event: Event, origin: Origin, event_digest: str
    ) -> None:
        state = state or AccountState(account_id=account_id)
        if len(state.held) >= self.rules.max_held_per_account:
            await self._deadletter(
                origin,
                "data.account_id",
                "unknown_account",
                f"data.account_id: unknown_account {account_id!r}: "
                f"{self.rules.max_held_per_account} events already wait for it",
            )
            return
        # The parsed event (contract fields only), not the raw message: extra fields are allowed
        # in a message and must not be what fills the account's state record.
        entry = {
            "occurred_at": event.occurred_at.astimezone(timezone.utc).isoformat(),
            "deadline": (event.occurred_at.astimezone(timezone.utc) + self.rules.hold_for).isoformat(),
            "origin": origin.to_dict(),
            "event": _event_dict(event),
        }
        held_bytes = sum(_json_size(held) for held in state.held) + _json_size(entry)
        if held_bytes > self.rules.max_held_bytes_per_account:
            await self._deadletter(
                origin,
                "data.account_id",
                "unknown_account",
                f"data.account_id: unknown_account {account_id!r}: events waiting for it "
                f"would take {held_bytes} bytes, over {self.rules.max_held_bytes_per_account}",
            )
            return
        state.held.append(entry)
        state.row_bytes = None  # measured again at its next event
        _note_offset(state.applied_offsets, origin)
        self._remember(state.seen, event, origin, event_digest)
        self._put_account(account_id, state)
        self._track_hold(account_id, entry)

    def _track_hold(self, account_id: str, entry: dict[str, Any]) -> None:
        heapq.heappush(self._deadlines.setdefault(entry["origin"]["partition"], []), (entry["deadline"], account_id))
        self.held_count += 1

    def _release(self, state: AccountState) -> tuple[AccountState, list[Event]]:
        """The account arrived: apply what waited for it, in event-time order."""
        held, state.held = sorted(state.held, key=lambda entry: entry["occurred_at"]), []
        released = []
        for entry in held:
            origin = Origin.from_dict(entry["origin"])
            event = _held_event(entry, origin)
            state = apply_account_event(state, event)
            released.append(event)
            # Applied inside the account's snapshot: its own stream's time goes out with it (that
            # stream's last event may be this one, and only stream_times moves the watermark).
            self._note_time(event, origin)
            self.on_outcome(origin.topic, "applied", None)
        self.held_count -= len(held)
        return state, released

    async def _expire_holds(self, partition: int, now: datetime) -> None:
        """Dead-letter held events whose wait ran out.

        The wait is judged on the accounts stream the account would arrive on: while that
        stream still has unread messages, only its own event time counts (orders must not
        expire because the accounts partition is consumed later than the orders one)."""
        heap = self._deadlines.get(partition, [])
        accounts_source = f"{topics.ACCOUNTS}:{partition}"
        cutoff = now.isoformat()
        if not self.is_caught_up(accounts_source):
            cutoff = min(cutoff, self._stream_time(accounts_source) or "")
        while heap and heap[0][0] < cutoff:
            deadline, account_id = heapq.heappop(heap)
            state = self._account_row(account_id)
            if state is None:
                continue
            expired = [entry for entry in state.held if entry["deadline"] == deadline]
            if not expired:
                continue  # released already
            state.held = [entry for entry in state.held if entry["deadline"] != deadline]
            self._put_account(account_id, state)
            self.held_count -= len(expired)
            for entry in expired:
                origin = Origin.from_dict(entry["origin"])
                # The raw message was not kept: the dead letter carries the validated event.
                value = origin.value or json.dumps(_event_dict(_held_event(entry, origin))).encode()
                await self._deadletter(
                    Origin.from_dict(entry["origin"], value),
                    "data.account_id",
                    "unknown_account",
                    f"data.account_id: unknown_account {account_id!r}: no account.upserted "
                    f"within {self.rules.hold_for.days} days of event time",
                )

    def _erase(
        self, account_id: str, state: AccountState | None, event: Event, origin: Origin, event_digest: str
    ) -> None:
        # What stays is a row without a single fact about the account: the offsets and event
        # ids it applied, so that a replay of its old events cannot bring it back.
        kept = AccountState(account_id=account_id)
        if state is not None:
            self.held_count -= len(state.held)
            kept.applied_offsets, kept.seen = state.applied_offsets, state.seen
        _note_offset(kept.applied_offsets, origin)
        self._remember(kept.seen, event, origin, event_digest)
        self._put_account(account_id, kept)
        self.on_outcome(origin.topic, "applied", None)
        # No event time: an erasure happens now, not in the history the planner judges.
        key = f"account:{account_id}"
        self._close_snapshot(key)
        self._queue_snapshot(
            key, {"kind": "account_erased", "account_id": account_id, "source": origin.source}, None, origin
        )
        self._close_snapshot(key)
        log.info("erased account %s from intake state (%s)", account_id, "found" if state else "not present")

    def _pseudonym(self, name: str | None) -> str | None:
        return pseudonym(self.rules.pseudonym_key, name)

    async def _deadletter(self, origin: Origin, field: str, code: str, reason: str) -> None:
        scrubbed = without_names(origin.value, self.rules.pseudonym_key)
        await self.send_deadletter(
            _text(origin.key) or "",
            {
                "reason": reason,
                "reason_code": code,
                "field": field,
                "topic": origin.topic,
                "partition": origin.partition,
                "offset": origin.offset,
                "key": _text(origin.key),
                # The original message, unchanged: as text when it is UTF-8 and small, as base64
                # up to DEADLETTER_MAX_RAW bytes (a dead letter must fit Kafka's 1 MB limit, or its
                # send fails and the message would be lost); a longer one is cut there, and its
                # size, hash and topic/partition/offset still identify the whole original.
                **_original_value(scrubbed),
                # data.name replaced by its pseudonym (the rest of the message is unchanged).
                **({"value_pseudonymised": True} if scrubbed is not origin.value else {}),
                "deadlettered_at": self.clock.now().isoformat(),
            },
        )
        self.on_outcome(origin.topic, "deadlettered", field)
        log.warning("dead-lettered %s[%s]@%s: %s", origin.topic, origin.partition, origin.offset, reason)


def pseudonym(key: bytes, name: str | None) -> str | None:
    """A name's keyed pseudonym (names are never stored, see README, privacy)."""
    if not name:
        return None
    text = name.strip().casefold().encode("utf-8", "surrogatepass")  # a dead letter's name may be invalid
    return hmac.new(key, text, hashlib.sha256).hexdigest()[:16]


def without_names(raw: bytes | None, key: bytes) -> bytes | None:
    """The message with `data.name` replaced by its pseudonym: dead letters are kept and read
    by people, and names are never stored."""
    if raw is None or b'"name"' not in raw:
        return raw
    try:
        document = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return raw  # not JSON: nothing to find a name in
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not data["name"]:
        return raw  # no name (a number or a boolean there is no one's name)
    data["name"] = f"pseudonym:{pseudonym(key, data['name'])}"
    try:
        return json.dumps(document).encode()
    except (ValueError, RecursionError):  # e.g. nested too deep to write again: keep no copy
        return b'{"removed": "the message held a name and could not be rewritten without it"}'


#: Raw bytes of a dead-lettered message kept whole (as base64: 4/3 of it, ~680 KB).
DEADLETTER_MAX_RAW = 512 * 1024
#: ... and also as text up to this size (JSON escaping can double it).
DEADLETTER_MAX_TEXT = 64 * 1024


def _original_value(raw: bytes | None) -> dict[str, Any]:
    if raw is None:
        return {"value": None, "value_base64": None}
    kept = raw[:DEADLETTER_MAX_RAW]
    original: dict[str, Any] = {
        "value": _text(raw) if len(raw) <= DEADLETTER_MAX_TEXT else None,
        "value_base64": _b64(kept),
    }
    if len(kept) < len(raw):
        original.update(value_truncated=True, value_bytes=len(raw), value_sha256=hashlib.sha256(raw).hexdigest())
    return original


#: Characters the `row_bytes` field itself may take in a row.
_ROW_BYTES_FIELD = 32


def _growth_bound(origin: Origin) -> int:
    """The most one event can add to its account's row (`AccountState.row_bytes`): its own
    text, escaped (a 4-byte UTF-8 character becomes 12 characters of JSON: 3x), plus the
    bookkeeping around it: a month bucket, an event digest under its topic and day, the
    topic's offset, times, the admin area codes."""
    return 3 * len(origin.value or b"") + 2048


def _json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")))


def _largest_part(row: dict[str, Any]) -> str:
    sizes = {name: _json_size(value) for name, value in row.items()}
    name = max(sizes, key=lambda key: sizes[key])
    count = f"{len(row[name])} entries, " if isinstance(row[name], (dict, list)) else ""
    return f"{name}: {count}{sizes[name]} bytes"


def _note_offset(applied_offsets: dict[str, int], origin: Origin) -> None:
    """The row's highest applied offset per topic: a duplicate at or below it was read again
    (after a crash or a hand-over), so its snapshot may have been lost and is sent again."""
    applied_offsets[origin.topic] = max(origin.offset, applied_offsets.get(origin.topic, -1))


def _event_dict(event: Event) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "type": event.type,
        "occurred_at": event.occurred_at.isoformat(),
        "source": event.source,
        "data": event.data,
    }


def _held_event(entry: dict[str, Any], origin: Origin) -> Event:
    if "event" not in entry:  # held before events were stored parsed: the raw message is there
        return parse_event(origin.value, topic=origin.topic, key=origin.key)
    stored = entry["event"]
    return Event(
        stored["event_id"],
        stored["type"],
        datetime.fromisoformat(stored["occurred_at"]),
        stored["source"],
        stored["data"],
        origin.topic,
        _text(origin.key) or "",
    )


def _stamp(event: Event, origin: Origin) -> dict[str, Any]:
    # The planner's watermark needs to know which input stream (topic and partition)
    # each update came from: they are consumed unevenly.
    return {"occurred_at": event.occurred_at.astimezone(timezone.utc).isoformat(), "source": origin.source}


def _order_of(event: Event) -> list:
    """[day, amount, event id]: the planner sums regional daily sales from these, once per id."""
    return [event.occurred_at.astimezone(timezone.utc).date().isoformat(), event.data["amount"], event.event_id]


def _text(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _b64(raw: bytes | None) -> str | None:
    return base64.b64encode(raw).decode("ascii") if raw is not None else None
