"""Event time the planner may judge at: a low watermark over the input streams.

Input topic-partitions are consumed unevenly (one can be weeks of event time ahead of
another during a replay), so the newest event time seen runs ahead of most data.
Judging at the slowest active stream's time means every month inside the window is
complete. A stream with no message for `idle_after_s` wall seconds has nothing more
to wait for and stops holding time back.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, Callable, Mapping


class Watermark:
    """
    Examples
    --------
    >>> from datetime import timezone
    >>> wall = [0.0]
    >>> mark = Watermark(idle_after_s=10, clock=lambda: wall[0])
    >>> day = lambda d: datetime(2025, 1, d, tzinfo=timezone.utc)
    >>> mark.observe("orders:0", day(20)); mark.observe("orders:1", day(5)); mark.observe("reps:0", day(1))
    >>> mark.current.day
    1
    >>> wall[0] = 11.0; mark.observe("orders:0", day(21)); mark.observe("orders:1", day(6))
    >>> mark.current.day    # reps:0 went quiet: idle
    6
    """

    def __init__(self, idle_after_s: float, clock: Callable[[], float] = time.monotonic):
        self.idle_after_s = idle_after_s
        self._clock = clock
        self._newest: dict[str, datetime] = {}
        self._last_seen: dict[str, float] = {}
        self.first_event_at: datetime | None = None

    def observe(self, source: str, occurred_at: datetime) -> None:
        if source not in self._newest or occurred_at > self._newest[source]:
            self._newest[source] = occurred_at
        self._last_seen[source] = self._clock()
        if self.first_event_at is None or occurred_at < self.first_event_at:
            self.first_event_at = occurred_at

    @property
    def current(self) -> datetime | None:
        if not self._newest:
            return None
        now = self._clock()
        active = [self._newest[s] for s in self._newest if now - self._last_seen[s] <= self.idle_after_s]
        # All idle: everything sent so far has been read, so the newest time is complete.
        return min(active) if active else max(self._newest.values())

    def state_dict(self) -> dict[str, Any]:
        return {"newest": {s: t.isoformat() for s, t in self._newest.items()},
                "first_event_at": self.first_event_at.isoformat() if self.first_event_at else None}

    def load_state_dict(self, state: Mapping[str, Any]) -> "Watermark":
        self._newest = {s: datetime.fromisoformat(t) for s, t in state.get("newest", {}).items()}
        # After a restart every stream counts as active until it proves idle again.
        self._last_seen = {s: self._clock() for s in self._newest}
        first = state.get("first_event_at")
        self.first_event_at = datetime.fromisoformat(first) if first else None
        return self
