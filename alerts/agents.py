"""Faust wiring of the alert stage: store what the planner publishes, then alert once
per incident through every configured sink (alerts/dispatch.py, alerts/sinks.py).

The `territory.alerts` topic is written here directly (the "kafka" sink); every other
sink goes through the dispatcher and its database outbox, so a sink that is down gets
the alert when it is back, and one that hangs never holds up the stream.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any, Callable, TypeVar

import faust
from prometheus_client import Counter
from sqlalchemy.exc import DataError, SQLAlchemyError

from alerts.alert import alert_from_proposal, alert_from_signal, proposal_settled
from alerts.dispatch import Dispatcher
from alerts.messages import alert_from_proposal as alert_message
from alerts.sinks import sinks_from_settings
from alerts.store import Store, fold_state, later, row_reps
from core.clock import SYSTEM_CLOCK, Clock
from core.metrics import Metrics
from core.records import Proposal, RecordError, Signal
from core import topics
from core.settings import Settings

log = logging.getLogger("territory.alerts")
T = TypeVar("T")

#: How often due deliveries (new alerts, throttled updates, retries) are sent.
DELIVERY_INTERVAL_S = 2.0
#: The owner mirror writes at most this many state snapshots at once, at least this often.
OWNER_BATCH, OWNER_BATCH_S = 1000, 2.0
#: How often the store is pruned of what is older than settings.retention_days.
PRUNE_INTERVAL_S = 3600.0
#: How often territory_store_proposals{state} is refreshed from the store.
PROPOSAL_GAUGE_INTERVAL_S = 10.0


def register_alerts(
    app: faust.App, settings: Settings, store: Store, metrics: Metrics, clock: Clock = SYSTEM_CLOCK
) -> Dispatcher:
    signals_topic = app.topic(topics.SIGNALS, key_serializer="raw", value_serializer="json")
    proposals_topic = app.topic(topics.PROPOSALS, key_serializer="raw", value_serializer="json")
    alerts_topic = app.topic(topics.ALERTS, key_serializer="raw", value_serializer="json")
    to_kafka = "kafka" in [s.strip() for s in settings.alert_sinks.split(",")]
    review_url = f"http://127.0.0.1:{settings.web_port}/proposals/{{id}}" if settings.web_port else None
    dispatcher = Dispatcher(
        sinks_from_settings(settings, clock=clock),
        store.outbox(),
        throttle_s=settings.alert_throttle_s,
        retry_max_s=settings.alert_retry_max_s,
        clock=clock,
        metrics=metrics,
    )

    stored = StoreRetry(metrics)
    unreadable = unreadable_messages(metrics)

    @app.agent(signals_topic, name="signal-alerts")
    async def alert_signals(stream: faust.StreamT) -> None:
        async for message in stream:
            signal = _read(Signal, message, unreadable)
            if signal is None:
                continue
            try:
                if await stored.call(store.has_signal, signal.signal_id, what="reading signals"):
                    continue  # a redelivered signal: queued and stored before
                # Queued first, then stored: a crash in between queues it again after the restart,
                # and the outbox merges the repeat into the same incident (an upsert, not a new row).
                await stored.call(dispatcher.submit, alert_from_signal(signal, clock=clock), what="queueing an alert")
                await stored.call(store.save_signal, signal, what="storing a signal")
            except RejectedByStore:
                continue  # logged and counted; the next signal is not held up by this one

    @app.agent(proposals_topic, name="proposal-alerts")
    async def alert_proposals(stream: faust.StreamT) -> None:
        async for message in stream:
            proposal = _read(Proposal, message, unreadable)
            if proposal is None:
                continue
            try:
                await _alert_proposal(proposal)
            except RejectedByStore:
                continue  # logged and counted; the next proposal is not held up by this one

    async def _alert_proposal(proposal: Proposal) -> None:
        # Stored first; a redelivered, already alerted proposal is recognised and skipped.
        if not await stored.call(store.save_proposal, proposal, what="storing a proposal"):
            return
        if to_kafka:
            await alerts_topic.send(key=proposal.proposal_id.encode(), value=alert_message(proposal, clock=clock))
            metrics.alerts.labels("kafka").inc()
        url = review_url.format(id=proposal.proposal_id) if review_url else None
        await stored.call(
            dispatcher.submit, alert_from_proposal(proposal, review_url=url, clock=clock), what="queueing an alert"
        )
        await stored.call(store.mark_alerted, proposal.proposal_id, what="marking a proposal alerted")

    mirror = OwnerMirror(store)
    state_topic = app.topic(topics.STATE, key_serializer="raw", value_serializer="json")

    @app.agent(state_topic, name="owner-mirror")
    async def mirror_owners(stream: faust.StreamT) -> None:
        """Keeps the owners an approval checks its moves against (alerts.decisions.stale_moves).

        One write attempt per batch, never a wait: the planner reads the same topic, and an
        agent that waited for the database would hold the planner up. What is not written
        stays pending (the newest owner per account) and goes with the next batch."""
        async for batch in stream.take(OWNER_BATCH, within=OWNER_BATCH_S):
            mirror.add(batch)
            try:
                await asyncio.to_thread(mirror.flush)
            except DataError as error:
                stored.rejected.labels("recording owners").inc()
                log.error("the store refused owners; skipped: %s", _brief(error))
                mirror.drop_pending()
            except SQLAlchemyError as error:
                metrics.store_errors.labels("recording owners").inc()
                log.warning("store unavailable, %d owners wait for it: %s", mirror.pending, _brief(error))

    settled = ProposalSettlement(store, dispatcher, clock=clock)

    # On the leader only: with several workers each due row is sent by one of them.
    @app.timer(DELIVERY_INTERVAL_S, on_leader=True)
    async def deliver_alerts() -> None:
        try:
            await asyncio.to_thread(settled.resolve_new)
            report = await asyncio.to_thread(dispatcher.deliver_due)
        except SQLAlchemyError as error:  # the outbox is in the store: deliver when it is back
            metrics.store_errors.labels("delivering alerts").inc()
            log.warning("store unavailable, alert deliveries wait for it: %s", _brief(error))
            return
        for sink, problem in report.errors.items():
            log.warning("alert delivery to %s failed, will retry: %s", sink, problem)

    # On the leader only: one worker prunes.
    @app.timer(PRUNE_INTERVAL_S, on_leader=True)
    async def prune_store() -> None:
        try:
            pruned = await asyncio.to_thread(store.prune, retention_days=settings.retention_days)
        except SQLAlchemyError as error:  # an outage: prune on the next round
            metrics.store_errors.labels("pruning").inc()
            log.warning("store unavailable, pruning waits for it: %s", _brief(error))
            return
        if any(pruned.values()):
            log.info("pruned from the store (older than %d days): %s", settings.retention_days, pruned)

    @app.timer(PROPOSAL_GAUGE_INTERVAL_S)
    async def export_proposal_states() -> None:
        try:
            counts = await asyncio.to_thread(proposal_counts, store)
        except SQLAlchemyError as error:  # a store outage must not stop the worker (readiness shows it)
            metrics.store_errors.labels("counting proposals").inc()
            log.warning("store unavailable, proposal counts not refreshed: %s", _brief(error))
            return
        for state, count in counts.items():
            metrics.store_proposals.labels(state).set(count)

    return dispatcher


R = TypeVar("R", Signal, Proposal)
_UNREADABLE: "weakref.WeakKeyDictionary[Any, Counter]" = weakref.WeakKeyDictionary()


def unreadable_messages(metrics: Metrics) -> Counter:
    """territory_alerts_unreadable_messages_total{record}: messages on territory.signals or
    territory.proposals that are not a valid record (a producer of another version, a hand-made
    message). Skipped with a log line naming the field: one bad message must not stop alerting."""
    counter = _UNREADABLE.get(metrics.registry)
    if counter is None:
        counter = Counter(
            "unreadable_messages",
            "Messages on the signal and proposal topics that are not a valid record (skipped), by record.",
            ["record"],
            namespace="territory",
            subsystem="alerts",
            registry=metrics.registry,
        )
        _UNREADABLE[metrics.registry] = counter
    return counter


def _read(record: type[R], message: Any, unreadable: Counter) -> R | None:
    try:
        return record.from_json(message)
    except (RecordError, ValueError, TypeError) as error:
        unreadable.labels(record.__name__.lower()).inc()
        log.error("unreadable %s message skipped: %s", record.__name__.lower(), error)
        return None


class RejectedByStore(Exception):
    """The database refused a value (``DataError``: e.g. a NUL character, which the contract
    allows in an id but PostgreSQL cannot store in a text column). Bad data, not an outage:
    retrying cannot help, so the message is dropped, logged and counted."""

    def __init__(self, what: str, error: Exception):
        super().__init__(f"the store refused the data while {what}: {_brief(error)}")
        self.what = what


_REJECTED_WRITES: "weakref.WeakKeyDictionary[Any, Counter]" = weakref.WeakKeyDictionary()


def rejected_writes(metrics: Metrics) -> Counter:
    """territory_store_rejected_writes_total{operation}: data the database refused (one
    counter per registry; Prometheus refuses a second registration of a name)."""
    counter = _REJECTED_WRITES.get(metrics.registry)
    if counter is None:
        counter = Counter(
            "rejected_writes",
            "Store writes the database refused as bad data (skipped, not retried), by operation.",
            ["operation"],
            namespace="territory",
            subsystem="store",
            registry=metrics.registry,
        )
        _REJECTED_WRITES[metrics.registry] = counter
    return counter


class StoreRetry:
    """Runs a store call in a thread and, while the database is unreachable, retries it with
    exponential backoff (1 s doubling to 30 s) instead of failing. The agent waits meanwhile,
    so its Kafka offset is not committed and nothing it has not stored is lost.

    A value the database refuses (``DataError``) is not an outage: it raises
    :class:`RejectedByStore` at once, counted in territory_store_rejected_writes_total, and
    the agent goes on with its next message."""

    def __init__(self, metrics: Metrics, *, first_delay_s: float = 1.0, max_delay_s: float = 30.0):
        self.metrics = metrics
        self.rejected = rejected_writes(metrics)
        self.first_delay_s, self.max_delay_s = first_delay_s, max_delay_s

    async def call(self, action: Callable[..., T], *args: Any, what: str) -> T:
        delay = self.first_delay_s
        while True:
            try:
                return await asyncio.to_thread(action, *args)
            except DataError as error:
                self.rejected.labels(what).inc()
                log.error("the store refused the data while %s; skipped: %s", what, _brief(error))
                raise RejectedByStore(what, error) from error
            except SQLAlchemyError as error:
                self.metrics.store_errors.labels(what).inc()
                log.warning("store unavailable while %s, retrying in %.0f s: %s", what, delay, _brief(error))
                await asyncio.sleep(delay)
                delay = min(self.max_delay_s, delay * 2)


def _brief(error: Exception) -> str:
    """First line of a driver error (SQLAlchemy appends the statement and a link)."""
    return str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__


def proposal_counts(store: Store) -> dict[str, int]:
    """Stored proposals per lifecycle state (territory_store_proposals)."""
    from core.metrics import PROPOSAL_STATES

    counted = store.proposal_counts()  # one grouped COUNT: this runs every few seconds
    return {state: counted.get(state, 0) for state in PROPOSAL_STATES}


class ProposalSettlement:
    """Resolves a proposal's alert once people decided on it (from the review page, the
    CLI in another process, or by a newer proposal superseding it): reads the audit log
    past the last entry seen. After a restart it reads from the start; resolving again
    is harmless, the dispatcher does not re-send identical content."""

    SETTLING = ("approved", "rejected", "superseded")

    def __init__(self, store: Store, dispatcher: Dispatcher, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.store, self.dispatcher, self.seen, self.clock = store, dispatcher, 0, clock

    def resolve_new(self) -> int:
        entries = [a for a in reversed(self.store.audit(limit=500)) if a.id > self.seen]
        resolved = 0
        for entry in entries:
            self.seen = max(self.seen, entry.id)
            if entry.action not in self.SETTLING or entry.proposal_id is None:
                continue
            row = self.store.proposal(entry.proposal_id)
            if row is None:
                continue
            try:
                proposal = row.record()
            except RecordError as error:  # stored by an older version without a field it needs now
                log.warning("proposal %s settled but its alert cannot be resolved: %s", entry.proposal_id, error)
                continue
            # A pending proposal for the same reps owns that incident now: leave it firing.
            if any(row_reps(p) == proposal.touched_reps for p in self.store.proposals("pending")):
                continue
            actor = None if entry.actor == "worker" else entry.actor
            self.dispatcher.submit(
                proposal_settled(proposal, entry.action, actor=actor, comment=entry.comment, clock=self.clock)
            )
            resolved += 1
        return resolved


class OwnerMirror:
    """Mirrors the worker's account owners and rep activity into the store (for checking
    approvals), writing only what changed since this process last wrote it: most snapshots
    are about sales, not owners. An erased account is erased from the whole store too, so
    an erasure that reached only Kafka (a CRM's account.erased) leaves nothing behind."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.written: dict[str, Any] = {}  # "account:ID" / "rep:ID" -> what the store holds
        # Told but not written yet (the newest per account and rep): kept while the store is
        # away, so the agent never has to wait for it.
        self._accounts: dict[str, Any] = {}
        self._reps: dict[str, bool] = {}
        self._newest: str | None = None

    @property
    def pending(self) -> int:
        return len(self._accounts) + len(self._reps)

    def record(self, snapshots: list[dict[str, Any]]) -> None:
        self.add(snapshots)
        self.flush()

    def add(self, snapshots: list[dict[str, Any]]) -> None:
        """Fold snapshots into what is to be written; no I/O."""
        accounts, reps, newest = fold_state(snapshots)
        self._accounts.update(accounts)
        self._reps.update(reps)
        if newest is not None and (self._newest is None or later(newest, self._newest)):
            self._newest = newest

    def flush(self) -> None:
        """Write what changed; on a store error it raises and keeps everything pending."""
        accounts = {a: o for a, o in self._accounts.items() if self.written.get(f"account:{a}", _UNSET) != o}
        reps = {r: active for r, active in self._reps.items() if self.written.get(f"rep:{r}", _UNSET) != active}
        self.store.record_owners(accounts, reps, self._newest)
        for account_id, owner in accounts.items():
            if owner is None:
                self.store.erase_account(account_id)
                self.written.pop(f"account:{account_id}", None)
            else:
                self.written[f"account:{account_id}"] = owner
        self.written.update({f"rep:{r}": active for r, active in reps.items()})
        self.drop_pending()

    def drop_pending(self) -> None:
        self._accounts, self._reps, self._newest = {}, {}, None


_UNSET = object()
