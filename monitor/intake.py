"""Handling of one input message, with the side effects behind small interfaces.

`Intake.handle` validates, deduplicates and applies a message, and says what happened;
the Faust agent supplies tables (any MutableMapping) and the send functions. Any error
becomes a dead-letter with a reason: one bad message never stops the worker.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, MutableMapping

from monitor.contract import ContractError, Event, parse_event
from monitor.state import AccountState, apply_account_event, apply_rep_event

log = logging.getLogger(__name__)

Send = Callable[[str, dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class Outcome:
    status: str              # "applied" | "duplicate" | "deadlettered"
    field: str | None = None
    reason: str | None = None


class Intake:
    def __init__(
        self,
        *,
        accounts: MutableMapping[str, Any],
        reps: MutableMapping[str, Any],
        seen_events: MutableMapping[str, Any],
        send_state: Send,
        send_deadletter: Send,
    ):
        self.accounts = accounts
        self.reps = reps
        self.seen_events = seen_events
        self.send_state = send_state
        self.send_deadletter = send_deadletter

    async def handle(self, *, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None) -> Outcome:
        try:
            event = parse_event(value, topic=topic, key=key)
        except ContractError as error:
            return await self._deadletter(error.field, str(error), topic, partition, offset, key, value)
        if event.event_id in self.seen_events:
            return Outcome("duplicate")
        try:
            await self._apply(event, partition)
        except Exception as error:  # noqa: BLE001 - a bug must not stop the stream
            log.exception("failed to apply event %s", event.event_id)
            return await self._deadletter("internal", f"internal: {type(error).__name__}: {error}",
                                          topic, partition, offset, key, value)
        # Marked seen after applying: a crash in between re-applies an idempotent upsert
        # at worst, and the message is redelivered since its offset was not committed.
        self.seen_events[event.event_id] = event.occurred_at.isoformat()
        return Outcome("applied")

    async def _apply(self, event: Event, partition: int) -> None:
        # The planner's watermark needs to know which input stream (topic and partition)
        # each update came from: they are consumed unevenly.
        origin = {"occurred_at": event.occurred_at.isoformat(), "source": f"{event.topic}:{partition}"}
        if event.type == "rep.upserted":
            rep = apply_rep_event(event)
            self.reps[rep.rep_id] = rep.to_dict()
            await self.send_state(f"rep:{rep.rep_id}", {"kind": "rep", **origin, **rep.to_dict()})
            return
        account_id = event.data["account_id"]
        previous = self.accounts.get(account_id)
        account = apply_account_event(AccountState.from_dict(previous) if previous else None, event)
        self.accounts[account_id] = account.to_dict()
        await self.send_state(f"account:{account_id}", {"kind": "account", **origin,
                                                        **account.to_dict()})

    async def _deadletter(self, field: str, reason: str, topic: str, partition: int, offset: int,
                          key: bytes | None, value: bytes | None) -> Outcome:
        await self.send_deadletter(
            _text(key) or "",
            {
                "reason": reason,
                "field": field,
                "topic": topic,
                "partition": partition,
                "offset": offset,
                "key": _text(key),
                # The original message, unchanged: as text when it is UTF-8, always as base64.
                "value": _text(value),
                "value_base64": base64.b64encode(value).decode("ascii") if value is not None else None,
                "deadlettered_at": datetime.now(timezone.utc).isoformat(),
            },
        )
        return Outcome("deadlettered", field, reason)


def _text(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
