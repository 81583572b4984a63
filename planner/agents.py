"""Faust wiring of the planner stage: state snapshots -> company view -> detectors -> signals
and proposals. The logic is in session.py and planner.py."""

from __future__ import annotations

import asyncio
import contextlib
import math
import json
import logging
from typing import Any, Awaitable, Callable

import faust

from core.producing import durable, unfinished_batch_stays_unacked
from core.clock import SYSTEM_CLOCK, Clock
from core import topics
from core.metrics import Metrics
from core.records import Proposal
from core.settings import Settings
from monitor import worker_health
from monitor.agents import LAG_INTERVAL_S
from planner.input_position import seek_back_to
from planner.planner import Evaluation
from planner.session import PlanningSession

log = logging.getLogger(__name__)

#: A table store URL for tables kept in memory ("memory://" alone is an empty URL to Faust,
#: which then falls back to the app's store).
IN_MEMORY = "memory://planner"

#: How long one call judges days in turn before it lets the batch be acknowledged. A worker
#: far behind (after a restart) would otherwise hold its batch, and so any rebalance that
#: waits for it, for as long as the whole catch-up takes; the timer goes on from there.
CATCH_UP_SLICE_S = 1.0


async def catch_up(judge_one_day: Callable[[], Awaitable[None]], behind: Callable[[], bool], budget_s: float) -> None:
    """Judge once, then day after day while `behind`, for about `budget_s` seconds, letting
    the event loop run other work (the intake, rebalance callbacks) between the days."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget_s
    await judge_one_day()
    while behind() and loop.time() < deadline:
        await asyncio.sleep(0)
        await judge_one_day()


class SolveInFlight:
    """A rebalance request's solve (CP-SAT, seconds) runs in a thread while the planner judges
    on, so signals of the days after it are not held up by it; one at a time, so proposals go
    out in the order they were asked for. `publish` sends the proposal; a failed solve is
    reported to `on_error` (inside the `except`) and makes no proposal; `on_done` is called
    once either is over (no solve in flight any more).

    >>> async def demo():
    ...     published = []
    ...     async def publish(proposal): published.append(proposal)
    ...     solves = SolveInFlight(publish)
    ...     await solves.start(lambda: "first"); await solves.start(lambda: "second")
    ...     await solves.finish()
    ...     return published, solves.in_flight
    >>> asyncio.run(demo())
    (['first', 'second'], False)
    """

    def __init__(
        self,
        publish: Callable[[Any], Awaitable[None]],
        on_error: Callable[[], None] = lambda: None,
        on_done: Callable[[], None] = lambda: None,
    ) -> None:
        self._publish, self._on_error, self._on_done = publish, on_error, on_done
        self._task: asyncio.Future[None] | None = None

    @property
    def in_flight(self) -> bool:
        """A solve or its publishing is not done yet."""
        return self._task is not None and not self._task.done()

    async def start(self, solve: Callable[[], Any]) -> None:
        """Solve in a thread, after the solve in flight and its proposal are done."""
        await self.finish()
        self._task = asyncio.ensure_future(self._run(solve))
        self._task.add_done_callback(lambda _: self._on_done())

    async def finish(self) -> None:
        """Wait for the solve in flight, if any, and the publishing of its proposal."""
        task, self._task = self._task, None
        if task is not None:
            await task

    async def _run(self, solve: Callable[[], Any]) -> None:
        try:
            proposal = await asyncio.get_running_loop().run_in_executor(None, solve)
            await self._publish(proposal)
        except Exception:  # noqa: BLE001 - a failed solve must not stop the planner
            self._on_error()


def register_planner(app: faust.App, settings: Settings, metrics: Metrics, clock: Clock = SYSTEM_CLOCK) -> None:
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
        return PlanningSession(
            settings, accounts=plan_accounts, reps=plan_reps, meta=plan_meta, clock=clock, expected_sources=every_input
        )

    session: list[PlanningSession] = [new_session()]
    # Per state-topic partition, the offset after the last record taken: a jump ahead is logged,
    # and what the checkpoint saves as applied (planner.input_position).
    next_offset: dict[str, int] = {}
    judging = asyncio.Lock()  # the agent, the timer and the recovery callback: one at a time

    @plan_meta.on_recover
    async def restore_checkpoint() -> None:
        """Faust recovers the tables after every rebalance, and only after the agents have
        started: load the checkpoint now. A worker that does not own the state partition
        keeps an empty planner, which never judges."""
        async with judging:
            # Its proposal out first; the session taking over starts from the checkpoint (one
            # owed is not written: a repeat of the proposal carries the same id).
            await solves.finish()
            owed[0] = False
            fresh = new_session()
            if any(tp.topic == topics.STATE for tp in app.consumer.assignment()) and fresh.restore():
                if fresh.judged_at is not None:
                    metrics.watermark.set(fresh.judged_at.timestamp())
            session[0] = fresh

    async def judge() -> None:
        """Call holding `judging`. Judges day by day towards the watermark (`PlanningSession.judge`),
        a slice at a time: the session stays `due` while behind, so the next batch or the timer
        goes on."""
        try:
            await catch_up(_judge, lambda: session[0].behind, CATCH_UP_SLICE_S)
        except Exception:  # noqa: BLE001 - a failed judgement must not stop the planner
            metrics.planner_errors.inc()
            log.exception("planner failed to judge; will judge again on the next update")
            return
        # After publishing, and before the batch's offsets can be committed (take() acks
        # a batch when its loop body is done): a crash judges again and publishes the same
        # ids, and the daily sales folded from this batch are never lost with the offsets.
        checkpoint()

    def checkpoint() -> None:
        """The session's checkpoint, unless a proposal is still being solved: the checkpoint
        would record it as asked for, and a crash before it is out would lose it. Skipped, it is
        owed and written once the proposal is out (a crash meanwhile judges again from the last
        one; the planner resumes from the input offsets it holds, not the group's)."""
        if solves.in_flight:
            owed[0] = True
            return
        session[0].checkpoint()
        owed[0] = False

    async def _judge() -> None:
        evaluation = session[0].judge()
        if evaluation is None:
            return
        # What the solve reads of the planner is read now: judging goes on while it runs.
        solve = session[0].solver(evaluation.rebalance) if evaluation.rebalance is not None else None
        if solve is not None:
            # Up before its signals go out: whoever sees them can tell a proposal is coming.
            metrics.solving.set(1)
        try:
            await _publish(evaluation)
        except BaseException:
            metrics.solving.set(1 if unsolved[0] else 0)
            raise
        if solve is not None:
            unsolved[0] += 1
            await solves.start(solve)

    async def _publish(evaluation: Evaluation) -> None:
        judged_at = session[0].judged_at
        assert judged_at is not None, "set by the judgement"
        metrics.watermark.set(judged_at.timestamp())
        for kind, count in session[0].planner.out_of_band().items():
            metrics.out_of_band.labels(kind).set(count)
        _export_aggregates(metrics, evaluation)
        if evaluation.model_error is not None:
            metrics.model_error.set(evaluation.model_error)
        for signal in evaluation.signals:
            message = signal.to_json()
            await signals_topic.send(key=signal.subject.id.encode(), value=message)
            metrics.signals.labels(signal.kind, signal.state).inc()
            log.info(
                "signal %s: %s %s %s %s",
                signal.signal_id,
                signal.kind,
                signal.subject.id,
                signal.state,
                json.dumps(message["evidence"]),
            )

    async def publish_proposal(proposal: Proposal | None) -> None:
        if proposal is None:
            log.info("travel proposal: nothing saves enough travel this week")
            return
        await proposals_topic.send(key=proposal.proposal_id.encode(), value=proposal.to_json())
        metrics.proposals.labels(proposal.status).inc()
        metrics.rebalance_seconds.observe(proposal.seconds)
        metrics.proposal_moves.set(len(proposal.moves))
        metrics.rebalancer_moves.observe(len(proposal.moves))
        log.info(
            "proposal %s (%s): %s, %d moves in %.1f s",
            proposal.proposal_id,
            proposal.mode,
            proposal.status,
            len(proposal.moves),
            proposal.seconds,
        )

    def solve_failed() -> None:
        metrics.planner_errors.inc()
        log.exception("planner failed to solve a rebalance request; no proposal for it")

    def solve_done() -> None:
        unsolved[0] -= 1
        if owed[0]:
            asyncio.ensure_future(write_owed_checkpoint())
        else:
            metrics.solving.set(1 if unsolved[0] else 0)

    async def write_owed_checkpoint() -> None:
        """The checkpoint skipped while a solve was in flight, as soon as its proposal is out
        (a stop soon after would otherwise leave the planner to judge it all again); the
        solving gauge drops once it is written, so whoever waits for it sees a settled planner."""
        async with judging:
            if owed[0] and not solves.in_flight:
                checkpoint()
                await durable(app)
        metrics.solving.set(1 if unsolved[0] else 0)

    solves = SolveInFlight(publish_proposal, on_error=solve_failed, on_done=solve_done)
    unsolved = [0]  # requests asked for whose proposal is not out yet
    owed = [False]  # a checkpoint was skipped while a solve was in flight

    @app.agent(state_topic, name="planner")
    async def planner_agent(stream: faust.StreamT) -> None:
        batches = stream.take_events(settings.planner_batch, within=settings.planner_interval_s)  # type: ignore[attr-defined]
        async for events in batches:
            for event in events:
                message = event.message
                partition = f"{message.topic}:{message.partition}"
                expected = next_offset.get(partition)
                if expected is None:
                    log.info("planner: reads %s from offset %d", partition, message.offset)
                elif message.offset > expected:
                    log.warning("planner: %s jumped from offset %d to %d unread", partition, expected, message.offset)
                next_offset[partition] = message.offset + 1
            # Acknowledged only once applied and checkpointed, also if the worker stops half-way.
            with unfinished_batch_stays_unacked(events):
                await apply_batch([event.value for event in events])

    async def never_past_the_checkpoint(consumer: Any) -> None:
        """Run by Faust's recovery after its seek to the committed offsets and before fetching
        resumes (territory.faust_fixes): read on from what the checkpoint applied."""
        next_offset.clear()
        for tp in consumer.assignment():
            if tp.topic != topics.STATE:
                continue
            partition = f"{tp.topic}:{tp.partition}"
            committed = worker_health.committed_offset(consumer, tp)
            applied = session[0].input_offsets.get(partition, 0)
            offset = seek_back_to(committed, applied)
            log.info("planner: %s committed at %s, applied to %d by the checkpoint", partition, committed, applied)
            if offset is not None:
                if committed is not None:
                    log.warning(
                        "planner: the group's offset for %s is %d, past the %d its checkpoint applied: reading from there",
                        partition,
                        committed,
                        applied,
                    )
                await consumer.seek(tp, offset)

    app.territory_position_guards = [*getattr(app, "territory_position_guards", ()), never_past_the_checkpoint]  # type: ignore[attr-defined]

    async def apply_batch(batch: list) -> None:
        async with judging:  # a recovery must not swap the session between apply and checkpoint
            metrics.planner_updates.inc(session[0].apply(batch))
            session[0].input_offsets.update(next_offset)
            if session[0].due:
                await judge()
            else:
                # Folded in, not judged: saved all the same before the batch is acknowledged.
                checkpoint()
            # The checkpoint on the broker before the batch's offsets can be committed.
            await durable(app)

    @app.timer(LAG_INTERVAL_S)
    async def export_lag() -> None:
        """territory_planner_lag_messages: how far the planner is behind its input."""
        for tp, highwater in worker_health.fetched_highwaters(app, [topics.STATE]):
            applied = session[0].input_offsets.get(f"{tp.topic}:{tp.partition}")
            if applied is None:  # nothing applied since the start: unknown, not zero
                continue
            metrics.planner_lag.labels(str(tp.partition)).set(max(0, highwater - applied))

    @app.timer(max(1.0, settings.planner_interval_s))
    async def judge_between_batches() -> None:
        """Judge when time moved without new updates (a stream went idle), or when a
        rebalance held back by the cooldown is due; while behind, slice after slice until
        caught up (waiting for the next tick after each slice left the planner idle half of
        a catch-up once the input was read). The lock is let go between slices, so a batch
        or a rebalance waiting for it goes first."""
        while not judging.locked() and session[0].due:
            async with judging:
                before = session[0].judged_at
                await judge()
                progressed = session[0].behind and session[0].judged_at != before
            if not progressed:
                return
            await asyncio.sleep(0)


def _export_aggregates(metrics: Metrics, evaluation) -> None:
    for rep_id, aggregate in evaluation.aggregates.items():
        metrics.rep_potential.labels(rep_id).set(aggregate.potential)
        metrics.rep_workload.labels(rep_id).set(aggregate.workload_min)
        metrics.rep_accounts.labels(rep_id).set(aggregate.accounts)
        metrics.rep_share.labels(rep_id).set(aggregate.share)
        metrics.rep_fair_share.labels(rep_id).set(aggregate.fair_share)
        standing = evaluation.quota.get(rep_id)
        if standing is not None:
            metrics.rep_quota_attainment.labels(rep_id).set(standing.attainment)
            metrics.rep_quota_pace.labels(rep_id).set(standing.pace)
        else:  # no quota (any more): no figure, rather than the last one standing
            for gauge in (metrics.rep_quota_attainment, metrics.rep_quota_pace):
                with contextlib.suppress(KeyError):
                    gauge.remove(rep_id)
    metrics.imbalance.set(evaluation.imbalance)
    for district, members in _grouped(evaluation.aggregates.values(), "district").items():
        metrics.district_potential.labels(district).set(math.fsum(a.potential for a in members))
        metrics.district_accounts.labels(district).set(sum(a.accounts for a in members))
        metrics.district_imbalance.labels(district).set(max(abs(a.deviation) for a in members))
    for region, members in _grouped(evaluation.aggregates.values(), "sales_region").items():
        metrics.sales_region_potential.labels(region).set(math.fsum(a.potential for a in members))
        metrics.sales_region_accounts.labels(region).set(sum(a.accounts for a in members))


def _grouped(aggregates, attribute: str) -> dict[str, list]:
    """The rep aggregates by their district or sales region (reps without one in none)."""
    groups: dict[str, list] = {}
    for aggregate in aggregates:
        key = getattr(aggregate, attribute)
        if key is not None:
            groups.setdefault(key, []).append(aggregate)
    return groups
