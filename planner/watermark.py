"""Event time the planner may judge at: a low watermark over the input streams.

Input topic-partitions are consumed unevenly (one can be weeks of event time ahead of
another during a replay), so the newest event time seen runs ahead of most data.
Judging at the slowest stream's time means every month inside the window is complete.
A stream the intake has read to its end (it reports "caught up") holds nothing back;
a stream that exists but has not delivered yet holds time until it has.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Mapping


class Watermark:
    """
    Examples
    --------
    >>> from datetime import timezone
    >>> day = lambda d: datetime(2025, 1, d, tzinfo=timezone.utc)
    >>> mark = Watermark().expect(["orders:0", "orders:1", "reps:0"])
    >>> mark.observe("orders:0", day(20)); mark.observe("reps:0", day(1))
    >>> mark.current is None          # orders:1 has not delivered yet
    True
    >>> mark.observe("orders:1", day(5)); mark.current.day
    1
    >>> mark.caught_up("reps:0"); mark.current.day    # reps:0 read to its end: it holds nothing back
    5
    >>> mark.caught_up("orders:0"); mark.caught_up("orders:1"); mark.current.day  # all read: newest time
    20
    >>> mark.observe("orders:1", day(3)); mark.current.day  # read again: orders:1 holds time again
    5
    """

    def __init__(self) -> None:
        self._newest: dict[str, datetime] = {}
        self._done: dict[str, bool] = {}
        self.first_event_at: datetime | None = None

    def expect(self, sources: Iterable[str]) -> "Watermark":
        """Streams that exist but may not have delivered anything yet."""
        for source in sources:
            self._done.setdefault(source, False)
        return self

    def observe(self, source: str, occurred_at: datetime) -> None:
        """An event time of `source`: the stream is being read again, whatever the time. (So
        records delivered twice after a crash leave the watermark as they found it; the intake
        reports "caught up" again after every batch that sent a time of the stream.)"""
        if source not in self._newest or occurred_at > self._newest[source]:
            self._newest[source] = occurred_at
        self._done[source] = False
        if self.first_event_at is None or occurred_at < self.first_event_at:
            self.first_event_at = occurred_at

    def caught_up(self, source: str, done: bool = True) -> None:
        """The intake has read `source` to its end (or not any more)."""
        self._done[source] = done

    @property
    def all_caught_up(self) -> bool:
        """Every expected stream is read to its end."""
        return all(self._done.values())

    @property
    def current(self) -> datetime | None:
        if not self._newest:
            return None
        active = [source for source, done in self._done.items() if not done]
        if any(source not in self._newest for source in active):
            return None  # an expected stream has not delivered yet
        return min(self._newest[s] for s in active) if active else max(self._newest.values())

    def state_dict(self) -> dict[str, Any]:
        return {
            "newest": {s: t.isoformat() for s, t in self._newest.items()},
            "first_event_at": self.first_event_at.isoformat() if self.first_event_at else None,
            "caught_up": sorted(source for source, done in self._done.items() if done),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> "Watermark":
        self._newest = {s: datetime.fromisoformat(t) for s, t in state.get("newest", {}).items()}
        # Read to its end as at the checkpoint: the intake reports a change, not its state
        # again, so a planner taken over by another worker would otherwise wait for good. A
        # stream with news since then says so with its next stream time (`observe`).
        caught_up = set(state.get("caught_up", ()))
        self._done = {s: s in caught_up for s in sorted(set(self._newest) | caught_up)}
        first = state.get("first_event_at")
        self.first_event_at = datetime.fromisoformat(first) if first else None
        return self
