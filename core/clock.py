"""The one clock type that logic reads time from.

Two readings: `now()`, an aware UTC wall-clock time for timestamps people read
(emitted_at, created_at, decided_at), and `monotonic()`, seconds for measuring durations
(cooldowns, backoffs), which an NTP step of the wall clock must not stretch or shrink.
The worker injects `SystemClock`; a backtest or a test injects a `ManualClock` it moves
itself (in a backtest, event time is the clock).

>>> clock = ManualClock(datetime(2025, 3, 1, tzinfo=timezone.utc))
>>> start = clock.monotonic()
>>> clock.advance(timedelta(hours=2)).now().isoformat(), clock.monotonic() - start
('2025-03-01T02:00:00+00:00', 7200.0)
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...


class SystemClock:
    """The machine's clocks."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told to; its durations are those of its wall time."""

    def __init__(self, moment: datetime | None = None):
        self._moment = moment or datetime(1970, 1, 1, tzinfo=timezone.utc)

    def now(self) -> datetime:
        return self._moment

    def monotonic(self) -> float:
        return self._moment.timestamp()

    def set(self, moment: datetime) -> "ManualClock":
        if moment.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._moment = moment
        return self

    def advance(self, by: timedelta) -> "ManualClock":
        return self.set(self._moment + by)


SYSTEM_CLOCK = SystemClock()
