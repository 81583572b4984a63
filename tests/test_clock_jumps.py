"""A wall clock stepped by NTP (back or forward) must not stop the service: the planner's
rebalance cooldown is measured on the clock's monotonic reading (the machine's live, event
time in a backtest), and the alert outbox never holds an alert longer than its retry or throttle
interval, whatever the wall clock did."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from alerts.alert import alert_from_signal
from alerts.dispatch import Dispatcher, MemoryOutbox
from alerts.store import Store
from planner.planner import Planner
from planner.session import PlanningSession
from core.settings import Settings
from tests.test_planner import START, company
from tests.test_sinks import Clock, Recorder, imbalance, shock

DAY = 86_400.0
WATERMARK = START + timedelta(days=91)


class SteppedClock:
    """A `core.clock.Clock` whose wall time the test steps like NTP does; durations come from a
    stopwatch the test moves by hand, or from the machine's monotonic clock (as live)."""

    def __init__(self, stopwatch: bool = True) -> None:
        self.wall = datetime(2026, 1, 1, tzinfo=timezone.utc)
        self.elapsed = 0.0
        self._machine = not stopwatch

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return time.monotonic() if self._machine else self.elapsed


def settings(cooldown_s: float) -> Settings:
    return Settings(
        tolerance=0.10, hysteresis=0.8, warmup_days=30, rebalance_cooldown_s=cooldown_s, potential="trailing"
    )


def propose_then_clear(planner: Planner) -> None:
    assert planner.evaluate(*company(a_sales=300.0), watermark=WATERMARK, first_event_at=START).rebalance
    planner.evaluate(*company(a_sales=125.0), watermark=WATERMARK, first_event_at=START)  # back in band


# --- the planner's cooldown ----------------------------------------------------------------


def test_a_wall_clock_stepped_back_does_not_hold_proposals_of_the_live_planner():
    clock = SteppedClock(stopwatch=False)  # durations as live: the machine's monotonic clock
    planner = Planner(settings(cooldown_s=0), clock=clock)
    propose_then_clear(planner)
    clock.wall -= timedelta(days=1)  # NTP steps the wall clock back
    again = planner.evaluate(*company(a_sales=300.0), watermark=WATERMARK, first_event_at=START)
    assert again.rebalance is not None and not planner.rebalance_pending


@pytest.mark.parametrize("step", [timedelta(days=-1), timedelta(days=1)])
def test_the_cooldown_is_measured_by_the_monotonic_clock_whatever_the_wall_clock_does(step):
    clock = SteppedClock()
    planner = Planner(settings(cooldown_s=60), clock=clock)
    propose_then_clear(planner)
    clock.wall += step
    clock.elapsed += 10
    held = planner.evaluate(*company(a_sales=300.0), watermark=WATERMARK, first_event_at=START)
    assert held.rebalance is None and planner.rebalance_pending  # a day forward does not end it early
    clock.elapsed += 50
    released = planner.evaluate(*company(a_sales=300.0), watermark=WATERMARK, first_event_at=START)
    assert released.rebalance is not None  # a day back does not prolong it


def test_the_planning_session_hands_its_clock_to_the_planner():
    clock = SteppedClock()
    session = PlanningSession(settings(cooldown_s=60), accounts={}, reps={}, meta={}, clock=clock)
    # Judged here without the session's batches, which tell its planner what changed: every
    # judgement must then recompute the month.
    session.planner.incremental = False
    propose_then_clear(session.planner)
    clock.wall -= timedelta(days=1)
    clock.elapsed += 60
    assert (
        session.planner.evaluate(*company(a_sales=300.0), watermark=WATERMARK, first_event_at=START).rebalance
        is not None
    )


# --- the alert outbox ----------------------------------------------------------------------


@pytest.fixture(params=["memory", "sql"])
def outbox(request, tmp_path):
    if request.param == "memory":
        return MemoryOutbox()
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.migrate()
    return store.outbox()


def test_a_retry_is_not_held_longer_than_the_longest_backoff_when_the_clock_steps_back(outbox):
    clock, sink = Clock(), Recorder("hook")
    dispatch = Dispatcher([sink], outbox, throttle_s=300, retry_max_s=60, clock=clock)
    sink.down = True
    dispatch.submit(alert_from_signal(shock()))
    assert dispatch.deliver_due().failed == 1
    sink.down = False
    clock.seconds -= DAY  # the retry time stored before lies a day ahead now
    assert dispatch.deliver_due().sent == 1 and len(sink.got) == 1


def test_a_retry_within_its_backoff_still_waits(outbox):
    clock, sink = Clock(), Recorder("hook")
    dispatch = Dispatcher([sink], outbox, throttle_s=300, retry_max_s=60, clock=clock)
    sink.down = True
    dispatch.submit(alert_from_signal(shock()))
    dispatch.deliver_due()
    for _ in range(8):  # backoff grows to retry_max_s (plus jitter): always legitimately in the future
        (item,) = outbox.due(clock.seconds + 100)
        clock.seconds = item.due_at - 0.01
        assert dispatch.deliver_due().failed == 0
        clock.seconds = item.due_at
        assert dispatch.deliver_due().failed == 1


def test_a_throttled_update_is_not_held_longer_than_the_throttle_when_the_clock_steps_back(outbox):
    clock, sink = Clock(), Recorder("hook")
    dispatch = Dispatcher([sink], outbox, throttle_s=300, retry_max_s=60, clock=clock)
    dispatch.submit(alert_from_signal(imbalance(share=0.10)))
    assert dispatch.deliver_due().sent == 1
    clock.seconds += 10
    dispatch.submit(alert_from_signal(imbalance(share=0.09, n=1)))  # throttled until T0 + 300
    assert dispatch.deliver_due().sent == 0
    clock.seconds -= DAY
    assert dispatch.deliver_due().sent == 1
    assert [a.body["evidence"]["share"] for a in sink.got] == [0.10, 0.09]


def test_after_a_step_back_the_throttle_counts_from_now(outbox):
    clock, sink = Clock(), Recorder("hook")
    dispatch = Dispatcher([sink], outbox, throttle_s=300, retry_max_s=60, clock=clock)
    dispatch.submit(alert_from_signal(imbalance(share=0.10)))
    dispatch.deliver_due()
    clock.seconds -= DAY  # the last send now lies a day ahead
    dispatch.submit(alert_from_signal(imbalance(share=0.09, n=1)))
    assert dispatch.deliver_due().sent == 0  # still throttled...
    clock.seconds += 300
    assert dispatch.deliver_due().sent == 1  # ...for one throttle interval, not a day and one
