"""Faust wiring of the intake and planner stages. The logic is in intake.py and planner.py."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timedelta
from functools import partial

import faust

from monitor.intake import Intake, IntakeRules
from monitor.metrics import Metrics
from monitor.planner import Planner
from monitor.watermark import Watermark
from monitor.state import AccountState, RepState
from rebalancer import minimal_moves, place_accounts
from territory import topics
from territory.settings import Settings

log = logging.getLogger(__name__)


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

    intake = Intake(
        accounts=accounts, reps=reps, seen_events=seen_events, stream_times=stream_times,
        send_state=send_state, send_deadletter=send_deadletter, on_outcome=on_outcome,
        rules=IntakeRules(
            late_horizon=timedelta(days=settings.late_horizon_days),
            hold_for=timedelta(days=settings.hold_days),
            max_held_per_account=settings.max_held_per_account,
            pseudonym_key=settings.pseudonym_key.encode(),
        ),
    )

    @app.agent(inputs, name="intake")
    async def intake_agent(stream: faust.StreamT) -> None:
        intake.rebuild_hold_index()  # tables are recovered before agents start
        async for event in stream.events():
            message = event.message
            await intake.handle(topic=message.topic, partition=message.partition, offset=message.offset,
                                key=message.key, value=message.value)
            metrics.held.set(intake.held_count)


def register_planner(app: faust.App, settings: Settings, metrics: Metrics) -> None:
    """State snapshots -> company view (one partition) -> detector -> signals and proposals."""
    state_topic = app.topic(topics.STATE, key_serializer="raw", value_serializer="json")
    signals_topic = app.topic(topics.SIGNALS, key_serializer="raw", value_serializer="json")
    proposals_topic = app.topic(topics.PROPOSALS, key_serializer="raw", value_serializer="json")
    # One partition, written from batches (outside per-event iteration): the partitioner
    # picks the changelog partition, which can only be 0.
    plan_accounts = app.Table("plan-accounts", default=None, partitions=1, use_partitioner=True)
    plan_reps = app.Table("plan-reps", default=None, partitions=1, use_partitioner=True)
    plan_meta = app.Table("plan-meta", default=None, partitions=1, use_partitioner=True)
    planner = Planner(settings)

    # The agent and the timer both judge; one at a time.
    judging = asyncio.Lock()

    watermark = Watermark(idle_after_s=settings.idle_source_s)
    judged_at: list[datetime | None] = [None]  # the watermark of the last judgement

    async def judge() -> None:
        moment = watermark.current
        if moment is None:
            return
        async with judging:
            try:
                await _judge_at(moment)
            except Exception:  # noqa: BLE001 - a failed judgement must not stop the planner
                metrics.planner_errors.inc()
                log.exception("planner failed to judge at %s; will judge again on the next update", moment)

    async def _judge_at(moment: datetime) -> None:
        metrics.watermark.set(moment.timestamp())
        evaluation = planner.evaluate(
            (AccountState.from_dict(row) for row in plan_accounts.values()),
            (RepState.from_dict(row) for row in plan_reps.values()),
            watermark=moment, first_event_at=watermark.first_event_at,
        )
        judged_at[0] = moment
        _export_aggregates(metrics, evaluation)
        for signal in evaluation.signals:
            await signals_topic.send(key=signal["subject"]["id"].encode(), value=signal)
            metrics.signals.labels(signal["kind"], signal["state"]).inc()
            log.info("signal %s: %s %s %s %s", signal["signal_id"], signal["kind"], signal["subject"]["id"],
                     signal["state"], json.dumps(signal["evidence"]))
        if evaluation.rebalance is not None:
            await _rebalance(evaluation.rebalance, moment)
        plan_meta["planner"] = planner.state_dict()
        plan_meta["watermark"] = watermark.state_dict()

    async def _rebalance(request, moment: datetime) -> None:
        # CP-SAT runs in a thread so the worker keeps heart-beating during the solve.
        solve = place_accounts if request.mode == "place" else minimal_moves
        result = await asyncio.get_running_loop().run_in_executor(None, partial(
            solve, request.accounts, request.reps, tolerance=request.tolerance,
            candidate_reps=settings.candidate_reps, time_limit_s=settings.solver_time_limit_s,
            num_workers=settings.solver_workers))
        proposal = planner.proposal(request, result, moment)
        await proposals_topic.send(key=proposal["proposal_id"].encode(), value=proposal)
        metrics.proposals.labels(result.status).inc()
        metrics.rebalance_seconds.observe(result.seconds)
        metrics.proposal_moves.set(len(result.moves))
        log.info("proposal %s (%s): %s, %d moves in %.1f s", proposal["proposal_id"], request.mode, result.status,
                 len(result.moves), result.seconds)

    @app.agent(state_topic, name="planner")
    async def planner_agent(stream: faust.StreamT) -> None:
        if plan_meta.get("planner"):
            planner.load_state_dict(plan_meta["planner"])
        if plan_meta.get("watermark"):
            watermark.load_state_dict(plan_meta["watermark"])
        async for batch in stream.take(settings.planner_batch, within=settings.planner_interval_s):
            for snapshot in batch:
                kind = snapshot.pop("kind")
                watermark.observe(snapshot.pop("source"), _parse(snapshot.pop("occurred_at")))
                snapshot.pop("orders", None)
                if kind == "account_erased":
                    plan_accounts.pop(snapshot["account_id"], None)
                elif kind == "rep":
                    plan_reps[snapshot["rep_id"]] = snapshot
                else:
                    plan_accounts[snapshot["account_id"]] = snapshot
            metrics.planner_updates.inc(len(batch))
            await judge()

    @app.timer(max(1.0, settings.planner_interval_s))
    async def judge_between_batches() -> None:
        """Judge when time moved without new updates (a stream went idle), or when a
        rebalance held back by the cooldown is due."""
        if judging.locked():
            return
        if planner.rebalance_pending or (watermark.current is not None and watermark.current != judged_at[0]):
            await judge()


def _export_aggregates(metrics: Metrics, evaluation) -> None:
    for rep_id, aggregate in evaluation.aggregates.items():
        metrics.rep_potential.labels(rep_id).set(aggregate.potential)
        metrics.rep_workload.labels(rep_id).set(aggregate.workload_min)
        metrics.rep_accounts.labels(rep_id).set(aggregate.accounts)
        metrics.rep_share.labels(rep_id).set(aggregate.share)
        metrics.rep_fair_share.labels(rep_id).set(aggregate.fair_share)
    metrics.imbalance.set(evaluation.imbalance)


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
