"""Calendar helpers shared by the simulator modules (all times tz-aware UTC)."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np


def as_utc(moment: datetime) -> datetime:
    """`moment` in UTC; naive datetimes are rejected because event time needs an offset."""
    if moment.tzinfo is None:
        raise ValueError(f"datetime must be timezone-aware, got {moment!r}")
    return moment.astimezone(timezone.utc)


def add_months(moment: datetime, months: int) -> datetime:
    """First instant of the calendar month `months` after `moment`'s month (UTC)."""
    moment = as_utc(moment)
    index = moment.year * 12 + (moment.month - 1) + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=timezone.utc)


def month_boundaries(start: datetime, months: int) -> list[datetime]:
    """`months + 1` boundaries: `start`, then the first instant of each following month.

    Month k of a simulation is [boundaries[k], boundaries[k + 1]); the first month
    is partial when `start` is not the first instant of a month.
    """
    start = as_utc(start)
    return [start] + [add_months(start, k) for k in range(1, months + 1)]


def iso(moment: datetime) -> str:
    """ISO 8601 with an explicit offset, e.g. 2025-01-03T10:15:00+00:00."""
    return as_utc(moment).isoformat()


# Orders and activities happen on weekdays between these hours (UTC): business time.
OPEN_HOUR = 7
CLOSE_HOUR = 19


def epoch_seconds(moment: datetime) -> int:
    return int(as_utc(moment).timestamp())


def business_intervals(t0: datetime, t1: datetime) -> tuple[np.ndarray, np.ndarray]:
    """Weekday business windows [OPEN_HOUR, CLOSE_HOUR) clipped to [t0, t1).

    Returns (starts, lengths) in epoch seconds, one entry per weekday with a
    non-empty overlap, in time order. Public holidays are ignored.
    """
    s0, s1 = epoch_seconds(t0), epoch_seconds(t1)
    if s1 <= s0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    first = np.datetime64(as_utc(t0).date(), "D")
    last = np.datetime64(as_utc(t1).date(), "D") + 1
    days = np.arange(first, last, dtype="datetime64[D]")
    days = days[np.is_busday(days)]
    midnight = days.astype("datetime64[s]").astype(np.int64)
    opens = np.maximum(midnight + OPEN_HOUR * 3600, s0)
    closes = np.minimum(midnight + CLOSE_HOUR * 3600, s1)
    keep = closes > opens
    return opens[keep], (closes - opens)[keep]


def business_seconds(t0: datetime, t1: datetime) -> int:
    """Seconds of business time in [t0, t1)."""
    return int(business_intervals(t0, t1)[1].sum())
