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
import hashlib
import heapq
import hmac
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Awaitable, Callable, MutableMapping

from core.clock import SYSTEM_CLOCK, Clock
from core.contract import ContractError, Event, parse_event
from monitor.state import AccountState, RepState, apply_account_event, apply_rep_event
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
    def __init__(
        self,
        *,
        accounts: MutableMapping[str, Any],
        reps: MutableMapping[str, Any],
        seen_events: MutableMapping[str, Any],
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
        self.seen_events = seen_events
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

    def rebuild_hold_index(self) -> None:
        """After a restart: find held events in the recovered table again."""
        self._deadlines, self.held_count = {}, 0
        for account_id, row in list(self.accounts.items()):
            for entry in (row or {}).get("held", []):
                self._track_hold(account_id, entry)

    async def handle(self, *, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None) -> None:
        origin = Origin(topic, partition, offset, key, value)
        try:
            event = parse_event(value, topic=topic, key=key)
        except ContractError as error:
            await self._deadletter(origin, error.field, "invalid", str(error))
            return
        if event.event_id in self.seen_events:
            self.on_outcome(topic, "duplicate", None)
            return
        stream_time = self.stream_times.get(origin.source)
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
            self.stream_times[origin.source] = moment.isoformat()
        try:
            await self._apply(event, origin)
        except Exception as error:  # noqa: BLE001 - a bug must not stop the stream
            log.exception("failed to apply event %s", event.event_id)
            await self._deadletter(origin, "internal", "internal", f"internal: {type(error).__name__}: {error}")
            return
        # Marked seen after applying: a crash in between redelivers the message (its offset
        # was not committed), and applying it again is prevented only from here on.
        self.seen_events[event.event_id] = moment.isoformat()
        await self._expire_holds(partition, moment)

    async def _apply(self, event: Event, origin: Origin) -> None:
        if event.type == "rep.upserted":
            await self._apply_rep(event, origin)
            return
        account_id = event.data["account_id"]
        row = self.accounts.get(account_id)
        state = AccountState.from_dict(row) if row else None
        if state is not None and origin.offset <= state.applied_offsets.get(origin.topic, -1):
            # Applied before a crash, read again: its effect is in the row, its seen mark was lost,
            # and its snapshot may be lost too: send it again (the planner keeps the newest
            # snapshot per account and counts each order once).
            self.on_outcome(origin.topic, "duplicate", None)
            if state.known and event.type != "account.erased":
                await self._send_account(
                    account_id, state, event, origin, [_order_of(event)] if event.type == "order.placed" else []
                )
            return
        if event.type == "account.erased":
            await self._erase(account_id, state, origin)
            return
        if event.type in NEEDS_ACCOUNT and (state is None or not state.known):
            await self._hold(account_id, state, event, origin)
            return
        state = apply_account_event(state, event, name_hash=self._pseudonym(event.data.get("name")))
        state.applied_offsets[origin.topic] = origin.offset
        row = state.to_dict()
        size = _json_size(row)
        if size > self.rules.max_row_bytes:
            # The changelog record (and the snapshot) would be refused by the broker, which stops
            # the worker; the account keeps its state without this event.
            await self._deadletter(
                origin,
                "data.account_id",
                "state_too_large",
                f"data.account_id: state_too_large: account {account_id!r} would need {size} bytes "
                f"of state, over {self.rules.max_row_bytes} ({_largest_part(row)})",
            )
            return
        self.on_outcome(origin.topic, "applied", None)
        orders = [_order_of(event)] if event.type == "order.placed" else []
        if event.type == "account.upserted" and state.held:
            state, released = self._release(state)
            orders += [_order_of(e) for e in released if e.type == "order.placed"]
            row = state.to_dict()
        self.accounts[account_id] = row
        await self._send_account(account_id, state, event, origin, orders)

    async def _send_account(
        self, account_id: str, state: AccountState, event: Event, origin: Origin, orders: list[list]
    ) -> None:
        # With the orders this update applied, by day: the planner sums regional daily sales from them.
        await self.send_state(
            f"account:{account_id}",
            {"kind": "account", **_stamp(event, origin), **state.public_dict(), "orders": orders},
        )

    async def _apply_rep(self, event: Event, origin: Origin) -> None:
        rep = apply_rep_event(event)
        current = self.reps.get(rep.rep_id)
        self.on_outcome(origin.topic, "applied", None)
        if current and RepState.from_dict(current).updated_at > rep.updated_at:
            return  # an older version of the rep arrived late: the newer one stays
        self.reps[rep.rep_id] = rep.to_dict()
        await self.send_state(f"rep:{rep.rep_id}", {"kind": "rep", **_stamp(event, origin), **rep.to_dict()})

    async def _hold(self, account_id: str, state: AccountState | None, event: Event, origin: Origin) -> None:
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
        state.applied_offsets[origin.topic] = origin.offset
        self.accounts[account_id] = state.to_dict()
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
            cutoff = min(cutoff, self.stream_times.get(accounts_source) or "")
        while heap and heap[0][0] < cutoff:
            deadline, account_id = heapq.heappop(heap)
            row = self.accounts.get(account_id)
            if not row:
                continue
            state = AccountState.from_dict(row)
            expired = [entry for entry in state.held if entry["deadline"] == deadline]
            if not expired:
                continue  # released already
            state.held = [entry for entry in state.held if entry["deadline"] != deadline]
            self.accounts[account_id] = state.to_dict()
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

    async def _erase(self, account_id: str, state: AccountState | None, origin: Origin) -> None:
        if state is not None:
            self.held_count -= len(state.held)
            self.accounts.pop(account_id, None)
        self.on_outcome(origin.topic, "applied", None)
        # No event time: an erasure happens now, not in the history the planner judges.
        await self.send_state(
            f"account:{account_id}", {"kind": "account_erased", "account_id": account_id, "source": origin.source}
        )
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


def _json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")))


def _largest_part(row: dict[str, Any]) -> str:
    sizes = {name: _json_size(value) for name, value in row.items()}
    name = max(sizes, key=lambda key: sizes[key])
    count = f"{len(row[name])} entries, " if isinstance(row[name], (dict, list)) else ""
    return f"{name}: {count}{sizes[name]} bytes"


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
