"""`territory backtest`: the live intake and planner code over a file of events, without Kafka.

Events are read from a JSON-lines file (one contract envelope per line), ordered by
event time, and pushed through the same `Intake` and `PlanningSession` the worker runs,
with dicts for tables and event time as the clock. The planner judges once per day of
event time; detectors judge complete days and months, so the signals are the ones the
live worker produces for the same events.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

from monitor.intake import Intake, IntakeRules
from planner.session import PlanningSession
from core import topics
from core.clock import SYSTEM_CLOCK, ManualClock
from core.settings import Settings

_TOPIC_OF_TYPE = {event_type: topic for topic, types in topics.TYPES_BY_TOPIC.items() for event_type in types}


@dataclass
class BacktestResult:
    events: int = 0
    outcomes: Counter = field(default_factory=Counter)
    signals: list[dict[str, Any]] = field(default_factory=list)
    proposals: list[dict[str, Any]] = field(default_factory=list)
    first_event_at: str | None = None
    last_event_at: str | None = None
    # The final state, for comparing with a live worker's: the last snapshot per account and
    # rep, the last judgement's per-rep aggregates and the planner's checkpoint.
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)
    aggregates: dict[str, Any] = field(default_factory=dict)
    checkpoint: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "outcomes": dict(self.outcomes),
            "event_time": {"first": self.first_event_at, "last": self.last_event_at},
            "signals": dict(Counter(f"{s['kind']}:{s['state']}" for s in self.signals)),
            "proposals": len(self.proposals),
            "moves_proposed": sum(len(p["moves"]) for p in self.proposals),
            "first_signal": self.signals[0] if self.signals else None,
        }


def read_events(path: Path) -> list[tuple[str, str, dict[str, Any]]]:
    """(topic, key, envelope) per line; lines that are not JSON objects go through as they are
    and are dead-lettered by the intake, just as on Kafka."""
    messages = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            try:
                envelope = json.loads(line)
            except ValueError:
                envelope = line.rstrip("\n")
            messages.append(_route(envelope))
    return messages


def _route(envelope: Any) -> tuple[str, str, Any]:
    if not isinstance(envelope, dict):
        return topics.ORDERS, "", envelope
    data = envelope.get("data")
    if not isinstance(data, dict):
        data = {}
    # A type that is no string (a list, an object: unhashable) is of no topic: the intake
    # dead-letters it on the default one.
    event_type = envelope.get("type")
    topic = _TOPIC_OF_TYPE.get(event_type, topics.ORDERS) if isinstance(event_type, str) else topics.ORDERS
    key = data.get("rep_id") if event_type == "rep.upserted" else data.get("account_id")
    return topic, str(key or ""), envelope


def _event_time(envelope: Any) -> str:
    moment = envelope.get("occurred_at") if isinstance(envelope, dict) else None
    try:
        return datetime.fromisoformat(str(moment).replace("Z", "+00:00")).astimezone(timezone.utc).isoformat()
    except ValueError:
        return ""


def run_backtest(
    messages: Iterable[tuple[str, str, Any]],
    settings: Settings,
    on_progress: Callable[[int], None] | None = None,
    judge_every_days: int = 1,
) -> BacktestResult:
    """Replay `messages` through the intake and the planner; the planner judges once every
    `judge_every_days` of event time (a live worker judges whenever a batch arrives: whatever
    the cadence, it must find the same signals)."""
    ordered = sorted(messages, key=lambda message: _event_time(message[2]))  # stable: ties keep file order
    result = BacktestResult()
    clock = ManualClock(datetime.min.replace(tzinfo=timezone.utc))
    snapshots: list[dict[str, Any]] = []

    async def collect(key: str, value: dict[str, Any]) -> None:
        snapshots.append(value)
        result.snapshots[key] = value

    async def ignore(key: str, value: dict[str, Any]) -> None:
        return None

    intake = Intake(
        accounts={},
        reps={},
        stream_times={},
        send_state=collect,
        send_deadletter=ignore,
        on_outcome=lambda topic, outcome, field_name: result.outcomes.update([outcome]),
        rules=IntakeRules.from_settings(settings),
        # Not the event-time clock below: it is set from the very events judged, so none would
        # ever be `in_the_future`. Dates ahead of the machine's time are dead-lettered, as live.
        clock=SYSTEM_CLOCK,
    )
    # Event time is the clock (cooldowns are measured in it), and the file is in order: after
    # each event every stream is read up to now.
    session = PlanningSession(settings, accounts={}, reps={}, meta={}, clock=clock)

    def judge() -> None:
        evaluation = session.judge(step_days=False)  # at the cadence asked for
        if evaluation is None:
            return
        result.signals.extend(signal.to_json() for signal in evaluation.signals)
        result.aggregates = evaluation.aggregates or result.aggregates
        if evaluation.rebalance is not None:
            proposal = session.solve(evaluation.rebalance)
            if proposal is not None:
                result.proposals.append(proposal.to_json())
        session.checkpoint()

    judged_day = None
    for offset, (topic, key, envelope) in enumerate(ordered):
        moment = _event_time(envelope)
        if moment:
            clock.set(max(clock.now(), datetime.fromisoformat(moment)))
            result.first_event_at = result.first_event_at or moment
            result.last_event_at = moment
        raw = envelope.encode() if isinstance(envelope, str) else json.dumps(envelope).encode()
        _run(intake.handle(topic=topic, partition=0, offset=offset, key=key.encode(), value=raw))
        session.apply(snapshots)
        snapshots.clear()
        session.watermark.caught_up(f"{topic}:0")
        result.events += 1
        day = clock.now().date()
        if judged_day is None or (day - judged_day).days >= judge_every_days:
            judge()
            judged_day = day
        if on_progress and offset % 5000 == 0:
            on_progress(offset)
    judge()
    result.checkpoint = dict(session.meta)
    return result


def _run(coroutine) -> Any:
    # The intake's sends are coroutines; here they complete at once, so one loop serves all.
    return _LOOP.run_until_complete(coroutine)


_LOOP = asyncio.new_event_loop()


def write_outputs(result: BacktestResult, out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"signals": out / "signals.jsonl", "proposals": out / "proposals.jsonl", "summary": out / "summary.json"}
    paths["signals"].write_text("".join(json.dumps(s) + "\n" for s in result.signals), encoding="utf-8")
    paths["proposals"].write_text("".join(json.dumps(p) + "\n" for p in result.proposals), encoding="utf-8")
    paths["summary"].write_text(json.dumps(result.summary(), indent=2), encoding="utf-8")
    return paths
