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
    app = faust.App("fix-test", broker="kafka://127.0.0.1:9", web_enabled=False)
    app.topics.acks_enabled_for = lambda topic: True
    assert _pending_after_acking_two_copies(app) == 1, "without the fix the copy stays in flight"
    install_redelivered_ack_fix()
    fixed = faust.App("fix-test-2", broker="kafka://127.0.0.1:9", web_enabled=False)
    fixed.topics.acks_enabled_for = lambda topic: True
    assert _pending_after_acking_two_copies(fixed) == 0
