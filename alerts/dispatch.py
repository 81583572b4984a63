"""Deliver alerts to every sink: one row per (incident, sink) in an outbox, deduplicated,
throttled, retried with backoff, never dropped.

Why an outbox: an alert must survive a sink that is down and a worker that restarts,
and an incident that changes five times while a sink is throttled or down must arrive
once, in its newest state, not five times. So `submit` only writes the newest alert
into the (key, sink) row and schedules it; `deliver_due` sends what is due. Each sink
runs in its own thread during a round, so a sink that hangs until its timeout does not
delay the others; every outbox read and write happens in the calling thread.

The outbox protocol is small and uses plain types so the SQL store can implement it
(`alerts.store`, table `deliveries`); `MemoryOutbox` is the reference implementation.
"""

from __future__ import annotations

import copy
import logging
import math
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterable, Protocol

from alerts.alert import Alert
from alerts.sinks import Sink, SinkError
from core.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger("territory.alerts")

RETRY_JITTER = 0.1  # a retry waits up to 10 % longer than its backoff, so workers do not retry in step


@dataclass(frozen=True)
class OutboxItem:
    """A pending (key, sink) row as the dispatcher sees it."""

    key: str
    sink: str
    alert: dict[str, Any]  # Alert.to_json() of the newest alert for the key
    due_at: float  # Unix seconds
    attempts: int = 0  # failed attempts since the last success
    last_error: str | None = None


class Outbox(Protocol):
    """Where deliveries wait. One row per (key, sink); a row is *pending* until its
    current alert was delivered. Times are Unix seconds; alerts are JSON dicts.

    upsert(key, sink, alert, due_at)
        Put `alert` in the row, creating it if needed, and make it pending. A row that was
        not pending gets `due_at`. A pending row keeps the earlier of its due time and
        `due_at` -- except a row that is failing (attempts > 0) keeps its retry time, so
        updates do not hurry retries of a sink that is down. Never a second row.
    due(now, retry_within_s=inf, throttle_within_s=inf) -> list[OutboxItem]
        The pending rows with due_at <= now, oldest due first; and those whose due_at lies
        further ahead than it legitimately can: more than `retry_within_s` for a failing row,
        more than `throttle_within_s` for another. Such a time was stored before the wall
        clock was stepped back; waiting for it would hold the alert for the size of the step.
    mark_sent(item, sent_at)
        `item.alert` was delivered at `sent_at`: remember both (for `last_sent`), reset
        attempts and error. The row stays pending only if its alert was replaced by a
        newer one (an `upsert` while the send was in flight).
    mark_failed(item, error, next_at)
        The send failed: attempts + 1, last_error = error, due_at = next_at, still pending.
    last_sent(key, sink) -> (sent_at, alert) | None
        The last alert delivered to the sink under this key and when.
    pending_count() -> int
        Rows still pending (due now or later).
    """

    def upsert(self, key: str, sink: str, alert: dict[str, Any], due_at: float) -> None: ...

    def due(
        self, now: float, retry_within_s: float = math.inf, throttle_within_s: float = math.inf
    ) -> list[OutboxItem]: ...

    def mark_sent(self, item: OutboxItem, sent_at: float) -> None: ...

    def mark_failed(self, item: OutboxItem, error: str, next_at: float) -> None: ...

    def last_sent(self, key: str, sink: str) -> tuple[float, dict[str, Any]] | None: ...

    def pending_count(self) -> int: ...


@dataclass
class _Row:
    alert: dict[str, Any]
    due_at: float
    pending: bool = True
    attempts: int = 0
    last_error: str | None = None
    sent_at: float | None = None
    sent_alert: dict[str, Any] | None = None


class MemoryOutbox:
    """The `Outbox` in a dict, thread-safe; alerts are deep-copied as a database would."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], _Row] = {}
        self._lock = threading.Lock()

    def upsert(self, key: str, sink: str, alert: dict[str, Any], due_at: float) -> None:
        with self._lock:
            row = self._rows.get((key, sink))
            if row is None:
                self._rows[(key, sink)] = _Row(copy.deepcopy(alert), due_at)
                return
            row.alert = copy.deepcopy(alert)
            if not row.pending:
                row.due_at = due_at
            elif row.attempts == 0:
                row.due_at = min(row.due_at, due_at)
            row.pending = True

    def due(
        self, now: float, retry_within_s: float = math.inf, throttle_within_s: float = math.inf
    ) -> list[OutboxItem]:
        with self._lock:
            items = [
                OutboxItem(key, sink, copy.deepcopy(row.alert), row.due_at, row.attempts, row.last_error)
                for (key, sink), row in self._rows.items()
                if row.pending
                and (row.due_at <= now or row.due_at - now > (retry_within_s if row.attempts else throttle_within_s))
            ]
        return sorted(items, key=lambda item: item.due_at)

    def mark_sent(self, item: OutboxItem, sent_at: float) -> None:
        with self._lock:
            row = self._rows[(item.key, item.sink)]
            row.sent_at, row.sent_alert = sent_at, copy.deepcopy(item.alert)
            row.attempts, row.last_error = 0, None
            row.pending = row.alert != item.alert

    def mark_failed(self, item: OutboxItem, error: str, next_at: float) -> None:
        with self._lock:
            row = self._rows[(item.key, item.sink)]
            row.attempts += 1
            row.last_error = error
            row.due_at = next_at

    def last_sent(self, key: str, sink: str) -> tuple[float, dict[str, Any]] | None:
        with self._lock:
            row = self._rows.get((key, sink))
            if row is None or row.sent_at is None or row.sent_alert is None:
                return None
            return row.sent_at, copy.deepcopy(row.sent_alert)

    def pending_count(self) -> int:
        with self._lock:
            return sum(1 for row in self._rows.values() if row.pending)

    def rows(self) -> dict[tuple[str, str], dict[str, Any]]:
        """A snapshot of every row (tests and debugging)."""
        with self._lock:
            return {k: copy.deepcopy(vars(row)) for k, row in self._rows.items()}


@dataclass
class DeliveryReport:
    """What one `deliver_due` round did."""

    sent: int = 0
    failed: int = 0  # not delivered: tried and failed, or deferred because its sink was down this round
    skipped: int = 0  # identical to what the sink already has: marked delivered without sending
    pending: int = 0  # rows still pending after the round (failed ones and later ones)
    errors: dict[str, str] = field(default_factory=dict)  # sink -> last error of the round


@dataclass
class _Outcome:
    item: OutboxItem
    error: SinkError | None = None  # None: sent
    skipped: bool = False  # error: not tried, the sink was down; no error: nothing new to send
    sent_at: float = 0.0


class Dispatcher:
    """Sends alerts to sinks through an outbox.

    throttle_s: one incident is sent to a sink at most once per `throttle_s`; updates in
        between replace the waiting alert (the last content wins). A change of status
        (firing <-> resolved) goes out at once.
    retry_max_s: a failing send is retried after retry_base_s * 2**attempts seconds,
        at most retry_max_s, plus up to 10 % jitter.
    clock: its wall time (`now()`), as Unix seconds, dates the outbox rows: the outbox is
        shared between workers, which share no monotonic clock. A clock stepped back holds
        no alert longer than its interval: a stored time further ahead than the longest
        retry or throttle interval counts as due now.
    metrics: when given, `metrics.alerts.labels(sink).inc()` per alert delivered,
        `metrics.deliveries.labels(sink, outcome).inc()` per row handled in a round
        (outcome: sent, failed, skipped) and `metrics.outbox_pending` set after each round.
    """

    def __init__(
        self,
        sinks: Iterable[Sink],
        outbox: Outbox,
        *,
        throttle_s: float,
        retry_max_s: float,
        retry_base_s: float = 2.0,
        clock: Clock = SYSTEM_CLOCK,
        metrics: Any = None,
        rng: random.Random | None = None,
    ):
        self.sinks: dict[str, Sink] = {}
        for sink in sinks:
            if sink.name in self.sinks:
                raise ValueError(f"two sinks are named {sink.name!r}; each sink may be configured once")
            self.sinks[sink.name] = sink
        self.outbox = outbox
        self.throttle_s, self.retry_max_s, self.retry_base_s = throttle_s, retry_max_s, retry_base_s
        self.clock = clock
        self.metrics = metrics
        self._rng = rng or random.Random()

    def submit(self, alert: Alert) -> None:
        """Queue the newest state of an incident for every sink (upsert: never a second row)."""
        now = self._now()
        for name in self.sinks:
            last = self.outbox.last_sent(alert.key, name)
            this = alert
            if last is None:
                due_at = now
            else:
                sent_at, sent_json = last
                sent = Alert.from_json(sent_json)
                # An update of an ongoing incident keeps its start; only resolved -> firing starts a new one.
                if not (sent.resolved and not alert.resolved):
                    this = alert.with_(starts_at=min(sent.starts_at, alert.starts_at))
                # min: a send that lies ahead (the clock was stepped back since) throttles from now.
                due_at = now if sent.status != alert.status else max(now, min(sent_at, now) + self.throttle_s)
            self.outbox.upsert(alert.key, name, this.to_json(), due_at)

    def _now(self) -> float:
        """The clock's wall time in Unix seconds (what the outbox stores)."""
        return self.clock.now().timestamp()

    def backoff(self, attempts: int) -> float:
        """Seconds until the next try after `attempts` failed ones (attempts >= 1)."""
        delay = min(self.retry_max_s, self.retry_base_s * 2 ** max(0, attempts - 1))
        return delay * (1 + RETRY_JITTER * self._rng.random())

    def deliver_due(self) -> DeliveryReport:
        """Send every due row; each sink independently and in parallel. Never raises for a
        sink's failure: the row is kept with its error and retried later."""
        now = self._now()
        report = DeliveryReport()
        work: dict[str, list[tuple[OutboxItem, Alert, Alert | None]]] = {}
        for item in self.outbox.due(
            now, retry_within_s=self.retry_max_s * (1 + RETRY_JITTER), throttle_within_s=self.throttle_s
        ):
            if item.sink not in self.sinks:
                continue  # a sink no longer configured: its rows wait until it is configured again
            last = self.outbox.last_sent(item.key, item.sink)
            alert = Alert.from_json(item.alert)
            previous = Alert.from_json(last[1]) if last else None
            if last is not None and previous is not None and previous.content() == alert.content():
                # Nothing new for this sink: record it as delivered when it really was.
                self._record(_Outcome(item, None, skipped=True, sent_at=last[0]), report)
                continue
            work.setdefault(item.sink, []).append((item, alert, previous))
        if work:
            # Only the sends run in threads; every outbox read and write stays in this thread.
            with ThreadPoolExecutor(max_workers=len(work), thread_name_prefix="alert-sink") as pool:
                rounds = [pool.submit(self._send_all, self.sinks[name], jobs) for name, jobs in work.items()]
                outcomes = [outcome for future in rounds for outcome in future.result()]
            for outcome in outcomes:
                self._record(outcome, report)
        report.pending = self.outbox.pending_count()
        if self.metrics is not None and getattr(self.metrics, "outbox_pending", None) is not None:
            self.metrics.outbox_pending.set(report.pending)
        return report

    def _count(self, sink: str, outcome: str) -> None:
        if self.metrics is not None and getattr(self.metrics, "deliveries", None) is not None:
            self.metrics.deliveries.labels(sink, outcome).inc()

    def _send_all(self, sink: Sink, jobs: list[tuple[OutboxItem, Alert, Alert | None]]) -> list[_Outcome]:
        """One sink's due alerts, in order (runs in a worker thread). After a `sink_down`
        error the rest are not tried this round: one timeout per round, not one per alert."""
        outcomes: list[_Outcome] = []
        down: SinkError | None = None
        for item, alert, previous in jobs:
            if down is not None:
                outcomes.append(_Outcome(item, down, skipped=True))
                continue
            try:
                sink.send(alert, previous)
            except SinkError as error:
                outcomes.append(_Outcome(item, error))
                if error.sink_down:
                    down = error
                continue
            except Exception as error:  # a bug in a sink must not stop the dispatcher or lose the alert
                log.exception("alert sink %s raised for %s", sink.name, item.key)
                outcomes.append(_Outcome(item, SinkError(f"{sink.name}: {type(error).__name__}: {error}")))
                continue
            outcomes.append(_Outcome(item, None, sent_at=self._now()))
        return outcomes

    def _record(self, outcome: _Outcome, report: DeliveryReport) -> None:
        item = outcome.item
        if outcome.error is None:
            self.outbox.mark_sent(item, outcome.sent_at)
            if outcome.skipped:
                report.skipped += 1
                self._count(item.sink, "skipped")
                return
            report.sent += 1
            self._count(item.sink, "sent")
            if self.metrics is not None:
                self.metrics.alerts.labels(item.sink).inc()
            return
        error = str(outcome.error)
        if outcome.skipped:
            error = f"not tried: {item.sink} failed earlier in the same round: {error}"
        next_at = self._now() + self.backoff(item.attempts + 1)
        self.outbox.mark_failed(item, error, next_at)
        report.failed += 1
        self._count(item.sink, "failed")
        report.errors[item.sink] = str(outcome.error)
        log.warning(
            "alert %s to %s failed (attempt %d), retry in %.0f s: %s",
            item.key,
            item.sink,
            item.attempts + 1,
            next_at - self._now(),
            error,
        )
