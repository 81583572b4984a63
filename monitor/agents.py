"""Faust wiring of the intake and planner stages. The logic is in intake.py and planner.py."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import faust
from faust.types import TP

from monitor.intake import Intake, IntakeRules
from core.metrics import Metrics
from monitor.session import PlanningSession
from core import topics
from core.settings import Settings

log = logging.getLogger(__name__)

#: A table store URL for tables kept in memory ("memory://" alone is an empty URL to Faust,
#: which then falls back to the app's store).
IN_MEMORY = "memory://planner"
#: How often the intake lag gauge is refreshed (seconds).
LAG_INTERVAL_S = 5.0


def register_intake(app: faust.App, settings: Settings, metrics: Metrics) -> None:
    """Input topics -> validated, deduplicated events -> account/rep tables -> state snapshots."""
    # Raw bytes: validation is ours, so a message that is not even JSON is dead-lettered, not crashed on.
    inputs = app.topic(*topics.INPUT_TOPICS, key_type=bytes, value_type=bytes,
                       key_serializer="raw", value_serializer="raw")
    state_topic = app.topic(topics.STATE, key_serializer="raw", value_serializer="json")
    deadletter_topic = app.topic(topics.DEADLETTER, key_serializer="raw", value_serializer="json")
    accounts = app.Table("accounts", default=None, partitions=settings.partitions)
    reps = app.Table("reps", default=None, partitions=settings.partitions)
    seen_events = app.Table("seen-events", default=None, partitions=settings.partitions)
    stream_times = app.Table("stream-times", default=None, partitions=settings.partitions)

    async def send_state(key: str, value: dict) -> None:
        await state_topic.send(key=key.encode(), value=value)

    async def send_deadletter(key: str, value: dict) -> None:
        await deadletter_topic.send(key=key.encode(), value=value)

    def on_outcome(topic: str, outcome: str, field: str | None) -> None:
        metrics.events.labels(topic, outcome).inc()
        if outcome == "deadlettered":
            metrics.deadlettered.labels(topic, field or "").inc()

    processed: dict = {}   # input partition -> next offset to process
    reported: dict = {}    # source -> caught-up state last told to the planner

    def position(tp: TP) -> int:
        return processed.get(tp, app.consumer._committed_offset.get(tp) or 0)

    def is_caught_up(source: str) -> bool:
        """Read to its end? The fetch high watermark is right on the embedded broker even
        where ListOffsets is not."""
        topic, _, partition = source.rpartition(":")
        tp = TP(topic, int(partition))
        highwater = app.consumer.highwater(tp)
        return highwater is not None and position(tp) >= highwater

    intake = Intake(
        accounts=accounts, reps=reps, seen_events=seen_events, stream_times=stream_times,
        send_state=send_state, send_deadletter=send_deadletter, on_outcome=on_outcome,
        rules=IntakeRules.from_settings(settings),
        is_caught_up=is_caught_up,
    )

    @accounts.on_recover
    async def find_held_events() -> None:
        """Agents start before Faust recovers the tables (after every rebalance): only now does
        the accounts table hold the events that wait for their account."""
        intake.rebuild_hold_index()
        metrics.held.set(intake.held_count)

    @app.agent(inputs, name="intake")
    async def intake_agent(stream: faust.StreamT) -> None:
        async for event in stream.events():
            message = event.message
            await intake.handle(topic=message.topic, partition=message.partition, offset=message.offset,
                                key=message.key, value=message.value)
            metrics.held.set(intake.held_count)
            if message.timestamp:  # seconds since the epoch (Kafka's record timestamp)
                metrics.intake_processing_seconds.observe(max(0.0, time.time() - message.timestamp))
            processed[message.tp] = message.offset + 1
            reported[f"{message.topic}:{message.partition}"] = False  # the planner marks it unread again

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
                await state_topic.send(key=f"progress:{source}".encode(),
                                       value={"kind": "progress", "source": source, "caught_up": caught_up})
                reported[source] = caught_up

    @app.timer(LAG_INTERVAL_S)
    async def export_lag() -> None:
        """territory_intake_lag_messages: fetch high watermark minus position, per input partition."""
        for tp in app.consumer.assignment():
            if tp.topic not in topics.INPUT_TOPICS:
                continue
            highwater = app.consumer.highwater(tp)
            if highwater is None:  # not fetched yet: unknown, not zero
                continue
            metrics.intake_lag.labels(tp.topic, str(tp.partition)).set(max(0, highwater - position(tp)))


def register_planner(app: faust.App, settings: Settings, metrics: Metrics) -> None:
    """State snapshots -> company view (one partition) -> detectors -> signals and proposals."""
    state_topic = app.topic(topics.STATE, key_serializer="raw", value_serializer="json")
    signals_topic = app.topic(topics.SIGNALS, key_serializer="raw", value_serializer="json")
    proposals_topic = app.topic(topics.PROPOSALS, key_serializer="raw", value_serializer="json")
    # One partition, written from batches (outside per-event iteration): the partitioner
    # picks the changelog partition, which can only be 0.
    # In memory whatever TERRITORY_TABLE_STORE says: Faust's RocksDB store can only be written
    # while a stream event is current (it takes the partition from it), and these are not.
    plan_accounts = app.Table("plan-accounts", default=None, partitions=1, use_partitioner=True, store=IN_MEMORY)
    plan_reps = app.Table("plan-reps", default=None, partitions=1, use_partitioner=True, store=IN_MEMORY)
    plan_meta = app.Table("plan-meta", default=None, partitions=1, use_partitioner=True, store=IN_MEMORY)
    every_input = [f"{topic}:{partition}" for topic in topics.INPUT_TOPICS for partition in range(settings.partitions)]

    def new_session() -> PlanningSession:
        return PlanningSession(settings, accounts=plan_accounts, reps=plan_reps, meta=plan_meta,
                               expected_sources=every_input)

    session: list[PlanningSession] = [new_session()]
    judging = asyncio.Lock()  # the agent, the timer and the recovery callback: one at a time

    @plan_meta.on_recover
    async def restore_checkpoint() -> None:
        """Faust recovers the tables after every rebalance, and only after the agents have
        started: load the checkpoint now. A worker that does not own the state partition
        keeps an empty planner, which never judges."""
        async with judging:
            fresh = new_session()
            if any(tp.topic == topics.STATE for tp in app.consumer.assignment()) and fresh.restore():
                if fresh.judged_at is not None:
                    metrics.watermark.set(fresh.judged_at.timestamp())
            session[0] = fresh

    async def judge() -> None:
        """Call holding `judging`."""
        try:
            await _judge()
        except Exception:  # noqa: BLE001 - a failed judgement must not stop the planner
            metrics.planner_errors.inc()
            log.exception("planner failed to judge; will judge again on the next update")
            return
        # After publishing, and before the batch's offsets can be committed (take() acks
        # a batch when its loop body is done): a crash judges again and publishes the same
        # ids, and the daily sales folded from this batch are never lost with the offsets.
        session[0].checkpoint()

    async def _judge() -> None:
        evaluation = session[0].judge()
        if evaluation is None:
            return
        metrics.watermark.set(session[0].judged_at.timestamp())
        for kind, count in session[0].planner.out_of_band().items():
            metrics.out_of_band.labels(kind).set(count)
        _export_aggregates(metrics, evaluation)
        if evaluation.model_error is not None:
            metrics.model_error.set(evaluation.model_error)
        for signal in evaluation.signals:
            await signals_topic.send(key=signal["subject"]["id"].encode(), value=signal)
            metrics.signals.labels(signal["kind"], signal["state"]).inc()
            log.info("signal %s: %s %s %s %s", signal["signal_id"], signal["kind"], signal["subject"]["id"],
                     signal["state"], json.dumps(signal["evidence"]))
        if evaluation.rebalance is not None:
            # CP-SAT runs in a thread so the worker keeps heart-beating during the solve.
            proposal = await asyncio.get_running_loop().run_in_executor(
                None, session[0].solve, evaluation.rebalance)
            await proposals_topic.send(key=proposal["proposal_id"].encode(), value=proposal)
            metrics.proposals.labels(proposal["status"]).inc()
            metrics.rebalance_seconds.observe(proposal["seconds"])
            metrics.proposal_moves.set(len(proposal["moves"]))
            metrics.rebalancer_moves.observe(len(proposal["moves"]))
            log.info("proposal %s (%s): %s, %d moves in %.1f s", proposal["proposal_id"], proposal["mode"],
                     proposal["status"], len(proposal["moves"]), proposal["seconds"])

    @app.agent(state_topic, name="planner")
    async def planner_agent(stream: faust.StreamT) -> None:
        async for batch in stream.take(settings.planner_batch, within=settings.planner_interval_s):
            async with judging:  # a recovery must not swap the session between apply and checkpoint
                metrics.planner_updates.inc(session[0].apply(batch))
                await judge()

    @app.timer(max(1.0, settings.planner_interval_s))
    async def judge_between_batches() -> None:
        """Judge when time moved without new updates (a stream went idle), or when a
        rebalance held back by the cooldown is due."""
        if not judging.locked() and session[0].due:
            async with judging:
                await judge()


def register_membership(app: faust.App, metrics: Metrics) -> None:
    """territory_worker_assigned_partitions{role} and territory_worker_leader: what this
    worker owns in its consumer group, refreshed after every rebalance."""
    roles = {**{topic: "intake" for topic in topics.INPUT_TOPICS}, topics.STATE: "planner",
             topics.SIGNALS: "alerts", topics.PROPOSALS: "alerts"}

    @app.timer(LAG_INTERVAL_S)
    async def export_membership() -> None:
        counts = dict.fromkeys(("intake", "planner", "alerts"), 0)
        for tp in app.consumer.assignment():
            if tp.topic in roles:
                counts[roles[tp.topic]] += 1
        for role, count in counts.items():
            metrics.assigned_partitions.labels(role).set(count)
        metrics.leader.set(1 if app.is_leader() else 0)


def _export_aggregates(metrics: Metrics, evaluation) -> None:
    for rep_id, aggregate in evaluation.aggregates.items():
        metrics.rep_potential.labels(rep_id).set(aggregate.potential)
        metrics.rep_workload.labels(rep_id).set(aggregate.workload_min)
        metrics.rep_accounts.labels(rep_id).set(aggregate.accounts)
        metrics.rep_share.labels(rep_id).set(aggregate.share)
        metrics.rep_fair_share.labels(rep_id).set(aggregate.fair_share)
    metrics.imbalance.set(evaluation.imbalance)
