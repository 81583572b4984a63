"""The same record delivered twice must not leave the consumer waiting for an ack forever
(territory.faust_fixes): Faust's consumer, no broker needed (it is not started)."""

from __future__ import annotations

import faust
from faust.types import TP
from faust.types.tuples import Message

from territory.faust_fixes import install_redelivered_ack_fix


def _copy(tp: TP, offset: int) -> Message:
    return Message(tp.topic, tp.partition, offset, 0.0, 0, None, b"k", b"v", None)


def _pending_after_acking_two_copies(app: faust.App) -> int:
    consumer = app.consumer
    tp = TP("crm.accounts", 0)
    first, second = _copy(tp, 71), _copy(tp, 71)
    for message in (first, second):
        consumer.track_message(message)
    consumer.ack(first)
    consumer.ack(second)  # the redelivered copy, acked while offset 71 waits for its commit
    return len(consumer._unacked_messages)


def test_a_redelivered_copy_is_no_longer_in_flight_once_acked(monkeypatch):
    from faust.transport.consumer import Consumer

    monkeypatch.setattr(Consumer, "ack", Consumer.ack)  # undone after the test
    monkeypatch.setattr(Consumer, "_new_offset", Consumer._new_offset)
    app = faust.App("fix-test", broker="kafka://127.0.0.1:9", web_enabled=False)
    app.topics.acks_enabled_for = lambda topic: True
    assert _pending_after_acking_two_copies(app) == 1, "without the fix the copy stays in flight"
    install_redelivered_ack_fix()
    fixed = faust.App("fix-test-2", broker="kafka://127.0.0.1:9", web_enabled=False)
    fixed.topics.acks_enabled_for = lambda topic: True
    assert _pending_after_acking_two_copies(fixed) == 0


def test_the_commit_moves_past_offsets_acknowledged_twice(monkeypatch):
    """What a stuck worker held: committed 211, every offset up to 367 acknowledged, some of
    them twice and one below the committed offset; the next commit must be 368."""
    from faust.transport.consumer import Consumer

    monkeypatch.setattr(Consumer, "ack", Consumer.ack)
    monkeypatch.setattr(Consumer, "_new_offset", Consumer._new_offset)
    tp = TP("sales.activities", 0)

    def next_commit(app: faust.App) -> int | None:
        consumer = app.consumer
        consumer._committed_offset[tp] = 211
        consumer._acked[tp] = [210] + list(range(211, 368)) + list(range(211, 368, 5))
        return consumer._new_offset(tp)

    stuck = next_commit(faust.App("fix-test-3", broker="kafka://127.0.0.1:9", web_enabled=False))
    assert stuck is not None and stuck < 368, "without the fix the commit stops at the first repeat"
    install_redelivered_ack_fix()
    assert next_commit(faust.App("fix-test-4", broker="kafka://127.0.0.1:9", web_enabled=False)) == 368
