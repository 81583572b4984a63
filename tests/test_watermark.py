"""The planner's watermark under at-least-once delivery: the intake's records of a batch whose
offsets were not committed before a crash are applied again on top of the checkpoint."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from planner.watermark import Watermark

SOURCES = ["orders:0", "orders:1", "accounts:0"]
START = datetime(2025, 1, 1, tzinfo=timezone.utc)


def apply(mark: Watermark, record: tuple) -> None:
    kind, source, value = record
    if kind == "time":
        mark.observe(source, value)
    else:
        mark.caught_up(source, value)


def records(seed: int, n: int = 60) -> list[tuple]:
    """Stream times (out of order within a stream, as the intake reads them) and progress reports."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        source = rng.choice(SOURCES)
        if rng.random() < 0.3:
            out.append(("progress", source, rng.random() < 0.7))
        else:
            out.append(("time", source, START + timedelta(hours=rng.randrange(24 * 40))))
    return out


def test_records_applied_again_after_a_checkpoint_change_nothing():
    """A crash between the checkpoint and the commit replays the batch's records on top of
    the checkpoint: the watermark must end where it was (what it judges must not differ)."""
    for seed in range(200):
        stream = records(seed)
        once = Watermark().expect(SOURCES)
        for record in stream:
            apply(once, record)
        cut = random.Random(seed).randrange(1, len(stream))
        again = Watermark().load_state_dict(once.state_dict()).expect(SOURCES)
        for record in stream[cut:]:  # the uncommitted tail, delivered a second time
            apply(again, record)
        assert again.state_dict() == once.state_dict(), seed
        assert again.current == once.current, seed


def test_a_stream_read_to_its_end_holds_nothing_back_until_its_next_time():
    day = lambda d: START + timedelta(days=d)  # noqa: E731
    mark = Watermark().expect(["orders:0", "orders:1"])
    mark.observe("orders:0", day(10))
    mark.observe("orders:1", day(3))
    assert mark.current == day(3)
    mark.caught_up("orders:1")
    assert mark.current == day(10)
    mark.observe("orders:1", day(2))  # any time of orders:1 means it is being read again
    assert mark.current == day(3)
