"""Faust wiring of the intake stage (the logic is in intake.py) and of worker membership."""

from __future__ import annotations

import logging
from typing import Any

import faust
from faust.types import TP, EventT

from monitor import worker_health
from monitor.intake import Intake, IntakeRules, Origin
from core.producing import durable, unfinished_batch_stays_unacked
from core.clock import SYSTEM_CLOCK, Clock
from core.metrics import Metrics
from core import topics
from core.settings import Settings
from monitor.regions import default_admin_areas

log = logging.getLogger(__name__)

#: How often the intake lag gauge is refreshed (seconds).
LAG_INTERVAL_S = 5.0


def register_intake(app: faust.App, settings: Settings, metrics: Metrics, clock: Clock = SYSTEM_CLOCK) -> None:
    """Input topics -> validated, deduplicated events -> account/rep tables -> state snapshots."""
    default_admin_areas().load()  # now, not inside the first batch with an account
    # Raw bytes: validation is ours, so a message that is not even JSON is dead-lettered, not crashed on.
    inputs = app.topic(
        *topics.INPUT_TOPICS, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    state_topic = app.topic(topics.STATE, key_serializer="raw", value_serializer="json")
    deadletter_topic = app.topic(topics.DEADLETTER, key_serializer="raw", value_serializer="json")
    accounts = app.Table("accounts", default=None, partitions=settings.partitions)
    reps = app.Table("reps", default=None, partitions=settings.partitions)
    stream_times = app.Table("stream-times", default=None, partitions=settings.partitions)

    processed: dict = {}  # input partition -> next offset to process
    reported: dict = {}  # source -> caught-up state last told to the planner

    async def send_state(key: str, value: dict) -> None:
        await state_topic.send(key=key.encode(), value=value)
        if value.get("kind") == "stream_times":
            # The planner marks every stream with a time here unread, also one whose held events
            # another stream's message released: report_progress must tell it again.
            for source in value["times"]:
                reported[source] = False

    async def send_deadletter(key: str, value: dict) -> None:
        await deadletter_topic.send(key=key.encode(), value=value)

    def on_outcome(topic: str, outcome: str, field: str | None) -> None:
        metrics.events.labels(topic, outcome).inc()
        if outcome == "deadlettered":
            metrics.deadlettered.labels(topic, field or "").inc()

    def position(tp: TP) -> int:
        return processed.get(tp, worker_health.committed_offset(app.consumer, tp) or 0)

    def is_caught_up(source: str) -> bool:
        """Read to its end? The fetch high watermark is right on the embedded broker even
        where ListOffsets is not."""
        topic, _, partition = source.rpartition(":")
        tp = TP(topic, int(partition))
        highwater = app.consumer.highwater(tp)
        return highwater is not None and position(tp) >= highwater

    intake = Intake(
        accounts=accounts,
        reps=reps,
        stream_times=stream_times,
        send_state=send_state,
        send_deadletter=send_deadletter,
        on_outcome=on_outcome,
        rules=IntakeRules.from_settings(settings),
        is_caught_up=is_caught_up,
        clock=clock,
    )

    @app.on_partitions_revoked.connect
    async def forget_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        """A partition may come back after another worker read on: what this worker knew of
        it (its position, what it told the planner) is stale then."""
        revoked: set[TP] = args[0] if args else kwargs.get("revoked", set())
        for tp in revoked:
            processed.pop(tp, None)
            reported.pop(f"{tp.topic}:{tp.partition}", None)

    @accounts.on_recover
    async def find_held_events() -> None:
        """Agents start before Faust recovers the tables (after every rebalance): only now does
        the accounts table hold the events that wait for their account."""
        intake.rebuild_hold_index()
        metrics.held.set(intake.held_count)

    @app.agent(inputs, name="intake")
    async def intake_agent(stream: faust.StreamT) -> None:
        # A batch at a time: each account's row is written once per batch and the planner
        # gets one snapshot per changed account (take_events acks the batch after the body).
        # (StreamT's stub lacks take_events; Stream has it since faust-streaming 0.10.)
        batches = stream.take_events(settings.intake_batch, within=settings.intake_batch_s)  # type: ignore[attr-defined]
        async for events in batches:
            # Acknowledged only once applied and durable, also if the worker stops half-way.
            with unfinished_batch_stays_unacked(events):
                by_partition: dict[int, list[EventT]] = {}
                for event in events:
                    by_partition.setdefault(event.message.partition, []).append(event)
                for partition, group in sorted(by_partition.items()):
                    # Tables are partitioned like the input topics: written as if in the stream of
                    # this partition's last event, each row goes to its partition's changelog.
                    with worker_health.as_current(group[-1]):
                        await intake.handle_batch(
                            Origin(
                                e.message.topic, e.message.partition, e.message.offset, e.message.key, e.message.value
                            )
                            for e in group
                        )
                    now = clock.now().timestamp()
                    for event in group:
                        message = event.message
                        if message.timestamp:  # seconds since the epoch (Kafka's record timestamp)
                            metrics.intake_processing_seconds.observe(max(0.0, now - message.timestamp))
                        processed[message.tp] = message.offset + 1
                # The rows and snapshots must be on the broker before the batch is acknowledged:
                # Faust commits acknowledged input offsets without waiting for its producer, and a
                # crash in between would lose the batch's effects for good (found by the crash test).
                await durable(app)
                metrics.held.set(intake.held_count)

    @app.timer(max(0.5, settings.planner_interval_s))
    async def report_progress() -> None:
        """Tell the planner which input partitions are read to their end: those hold its
        event-time watermark back no longer."""
        for tp in app.consumer.assignment():
            if tp.topic not in topics.INPUT_TOPICS:
                continue
            source = f"{tp.topic}:{tp.partition}"
            caught_up = is_caught_up(source)
            if reported.get(source) != caught_up:
                await state_topic.send(
                    key=f"progress:{source}".encode(),
                    value={"kind": "progress", "source": source, "caught_up": caught_up},
                )
                reported[source] = caught_up

    @app.timer(LAG_INTERVAL_S)
    async def export_lag() -> None:
        """territory_intake_lag_messages: fetch high watermark minus position, per input partition."""
        for tp, highwater in worker_health.fetched_highwaters(app, topics.INPUT_TOPICS):
            metrics.intake_lag.labels(tp.topic, str(tp.partition)).set(max(0, highwater - position(tp)))


def register_membership(app: faust.App, metrics: Metrics) -> None:
    """territory_worker_assigned_partitions{role} and territory_worker_leader: what this
    worker owns in its consumer group, refreshed after every rebalance."""
    roles = {
        **{topic: "intake" for topic in topics.INPUT_TOPICS},
        topics.STATE: "planner",
        topics.SIGNALS: "alerts",
        topics.PROPOSALS: "alerts",
    }

    @app.timer(LAG_INTERVAL_S)
    async def export_membership() -> None:
        counts = dict.fromkeys(("intake", "planner", "alerts"), 0)
        for tp in app.consumer.assignment():
            if tp.topic in roles:
                counts[roles[tp.topic]] += 1
        for role, count in counts.items():
            metrics.assigned_partitions.labels(role).set(count)
        metrics.leader.set(1 if app.is_leader() else 0)
