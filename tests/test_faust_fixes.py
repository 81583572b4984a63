"""The fixes of territory.faust_fixes, on Faust's own consumer and recovery (not started, no
broker): no record may leave the consumer waiting for an ack forever (one delivered twice, or
one that no batch holds), and no record may be skipped by a seek after a rebalance."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import faust
from faust.types import TP
from faust.types.tuples import Message

from core.producing import unfinished_batch_stays_unacked
from territory.faust_fixes import (
    install_bounded_rebalance_wait,
    install_redelivered_ack_fix,
    install_seek_before_resume,
)


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


def _consumer_holding_a_stray_message(name: str, monkeypatch):
    """A consumer (not started) with one tracked message that nothing will acknowledge."""
    app = faust.App(name, broker="kafka://127.0.0.1:9", web_enabled=False)
    app.topics.acks_enabled_for = lambda topic: True
    consumer = app.consumer

    async def no_commit(*args, **kwargs) -> bool:
        return False

    monkeypatch.setattr(consumer, "commit", no_commit)
    monkeypatch.setattr(consumer, "commit_and_end_transactions", no_commit)
    stray = _copy(TP("territory.state", 0), 2010)
    consumer.track_message(stray)
    return consumer, stray


def test_a_rebalance_stops_waiting_for_a_message_no_batch_holds(monkeypatch):
    """Seen in tests/test_scale_out.py: one state record stayed unacknowledged with both
    stages idle, and the worker waited in its rebalance for good."""
    from faust.transport.consumer import Consumer

    monkeypatch.setattr(Consumer, "wait_empty", Consumer.wait_empty)
    consumer, stray = _consumer_holding_a_stray_message("fix-test-5", monkeypatch)

    async def waits() -> bool:
        waiting = asyncio.ensure_future(consumer.wait_empty())
        await asyncio.sleep(3)
        still_waiting = not waiting.done()
        consumer._unacked_messages.clear()  # lets Faust's own loop end
        await waiting
        return still_waiting

    assert consumer.loop.run_until_complete(waits()), "without the fix the wait does not end"
    install_bounded_rebalance_wait(settle_s=0.2)
    fixed, stray = _consumer_holding_a_stray_message("fix-test-6", monkeypatch)
    fixed.loop.run_until_complete(asyncio.wait_for(fixed.wait_empty(), timeout=30))
    assert not stray.acked  # given up on, not acknowledged: its offset is read again


def test_a_rebalance_waits_for_a_batch_in_hand(monkeypatch):
    """A message of a batch that is being applied is waited for, however long the batch takes."""
    from faust.transport.consumer import Consumer

    monkeypatch.setattr(Consumer, "wait_empty", Consumer.wait_empty)
    install_bounded_rebalance_wait(settle_s=0.2)
    consumer, message = _consumer_holding_a_stray_message("fix-test-7", monkeypatch)

    async def slow_batch() -> None:
        with unfinished_batch_stays_unacked([]):
            await asyncio.sleep(2.5)  # many times settle_s
            consumer.ack(message)

    async def rebalance() -> bool:
        batch = asyncio.create_task(slow_batch())
        await asyncio.sleep(0)  # the batch is in hand before the wait starts
        await asyncio.wait_for(consumer.wait_empty(), timeout=30)
        acked = message.acked
        await batch
        return acked

    assert consumer.loop.run_until_complete(rebalance()), "the wait ended before the batch acknowledged its message"


class _Calls:
    """A consumer and the parts of an app that `Recovery.on_recovery_completed` touches,
    writing down the order of the calls that matter."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        stream, changelog = TP("sales.orders", 0), TP("territory-accounts-changelog", 0)
        self.assigned = {stream, changelog}

        class Consumer:
            def assignment(inner) -> set:
                return self.assigned

            def resume_partitions(inner, partitions) -> None:
                self.calls.append(f"resume {sorted(tp.topic for tp in partitions)}")

            async def perform_seek(inner) -> None:
                self.calls.append("seek")

            def resume_flow(inner) -> None:
                self.calls.append("resume flow")

        async def nothing(*args, **kwargs) -> None:
            return None

        self.consumer = Consumer()
        self.app = SimpleNamespace(
            consumer=self.consumer,
            consumer_generation_id=0,
            on_rebalance_complete=SimpleNamespace(send=nothing),
            conf=SimpleNamespace(broker_request_timeout=5),
            flow_control=SimpleNamespace(resume=lambda: None),
            _fetcher=SimpleNamespace(maybe_start=nothing),
            assignor=SimpleNamespace(assigned_standbys=lambda: set()),
            on_rebalance_end=lambda: None,
        )

    def recovery(self) -> SimpleNamespace:
        async def wait(coroutine, timeout=None):
            return await coroutine

        return SimpleNamespace(
            app=self.app,
            log=SimpleNamespace(info=lambda *a, **k: None, dev=lambda *a, **k: None, warning=lambda *a, **k: None),
            tables=SimpleNamespace(values=lambda: [], on_actives_ready=lambda: None, on_standbys_ready=lambda: None),
            actives_for_table={},
            standbys_for_table={},
            completed=asyncio.Event(),
            _set_recovery_ended=lambda: None,
            _wait=wait,
            _is_changelog_tp=lambda tp: tp.topic.endswith("-changelog"),
        )


def test_the_stream_partitions_are_seeked_before_they_are_fetched_again(monkeypatch):
    """Resumed before the seek, they handed the streams records from the client's old position
    and the seek turned the rest into a gap Faust committed unread (lost events)."""
    from faust.tables.recovery import Recovery

    monkeypatch.setattr(Recovery, "on_recovery_completed", Recovery.on_recovery_completed)
    before = _Calls()
    asyncio.run(Recovery.on_recovery_completed(before.recovery(), 0))
    assert before.calls.index("resume ['sales.orders']") < before.calls.index("seek"), "Faust's own order changed"
    install_seek_before_resume()
    after = _Calls()
    asyncio.run(Recovery.on_recovery_completed(after.recovery(), 0))
    assert after.calls == ["seek", "resume ['sales.orders']", "resume flow"]
    assert "resume_partitions" not in vars(after.consumer)  # the consumer's own methods again


def test_the_apps_position_guards_run_after_the_seek_and_before_fetching_resumes(monkeypatch):
    """The planner seeks back to what its checkpoint applied there: after Faust's seek (which
    would undo it) and before records are fetched from the committed offset."""
    from faust.tables.recovery import Recovery

    monkeypatch.setattr(Recovery, "on_recovery_completed", Recovery.on_recovery_completed)
    install_seek_before_resume()
    calls = _Calls()

    async def guard(consumer) -> None:
        assert consumer is calls.consumer
        calls.calls.append("guard")

    calls.app.territory_position_guards = [guard]
    asyncio.run(Recovery.on_recovery_completed(calls.recovery(), 0))
    assert calls.calls == ["seek", "guard", "resume ['sales.orders']", "resume flow"]
