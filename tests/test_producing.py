"""`core.producing.durable` returns only once every message the Faust app produced is on the
broker: table changelog rows go through Faust's producer buffer, whose own flush returns as
soon as its queue is empty (the message its sender task is still handing to the Kafka
client is not counted) and gives up after 0.1 s without progress. A worker that acknowledged
its batch then and crashed lost that batch's rows for good. Real broker, real Faust producer;
the only thing added is a delay in handing each message to the Kafka client, the window a
loaded machine opens."""

from __future__ import annotations

import asyncio

import faust
import pytest
from aiokafka import TopicPartition

from core.producing import durable, track_deliveries
from tests.kafka_io import end_offsets

ROWS = 30
TOPIC = "crm.accounts"  # any existing topic of the contract: durability does not depend on it


async def _produce_through_the_buffer(bootstrap: str, hand_over_delay_s: float) -> tuple[int, int]:
    """Queue ROWS messages the way a table does (`send_soon`), call `durable`, and return how
    many of them were delivered when it returned and how many were queued."""
    app = faust.App("producing-test", broker=f"kafka://{bootstrap}", web_enabled=False)
    producer = app.producer
    client_send = producer.send

    async def slow_send(*args, **kwargs):
        await asyncio.sleep(hand_over_delay_s)
        return await client_send(*args, **kwargs)

    producer.send = slow_send  # type: ignore[method-assign]
    track_deliveries(app)
    await producer.start()
    try:
        topic = app.topic(TOPIC, key_type=bytes, value_type=bytes)
        queued = [topic.send_soon(key=b"account-%d" % i, value=b"row", partition=0) for i in range(ROWS)]
        await durable(app)
        return sum(1 for future in queued if future.done() and not future.exception()), len(queued)
    finally:
        await producer.stop()


@pytest.mark.parametrize("hand_over_delay_s", [0.0, 0.15])
def test_durable_waits_for_every_queued_message(broker, hand_over_delay_s):
    before = end_offsets(broker.bootstrap_servers, {TOPIC: broker.partitions})[TopicPartition(TOPIC, 0)]
    delivered, queued = asyncio.run(_produce_through_the_buffer(broker.bootstrap_servers, hand_over_delay_s))
    assert delivered == queued
    after = end_offsets(broker.bootstrap_servers, {TOPIC: broker.partitions})[TopicPartition(TOPIC, 0)]
    assert after - before == ROWS


async def _acked_after_cancelling_a_batch(guarded: bool, finishes: bool = False) -> list[bool]:
    """Take a batch in a real Faust agent, stop the agent half-way through the batch's work
    (what a worker's shutdown does; or once the work is done if `finishes`) and tell which of
    the batch's messages Faust counts as done."""
    from core.producing import unfinished_batch_stays_unacked

    app = faust.App(f"batch-ack-test-{guarded}", broker="kafka://127.0.0.1:9", web_enabled=False, store="memory://")
    taken: list = []
    started = asyncio.Event()

    async def interrupted_work() -> None:
        started.set()
        if not finishes:
            await asyncio.sleep(30)

    @app.agent()
    async def work(stream) -> None:
        async for events in stream.take_events(3, within=0.2):
            taken.extend(events)
            if guarded:
                with unfinished_batch_stays_unacked(events):
                    await interrupted_work()
            else:
                await interrupted_work()

    async with work.test_context() as agent:
        for value in range(3):
            await agent.put(value)
        await asyncio.wait_for(started.wait(), 10)
        if finishes:
            await asyncio.sleep(0.2)  # the next batch is awaited: this one was acked
    await asyncio.sleep(0.2)  # the batch generator's finalizer runs (it acks in `finally`)
    return [event.message.acked for event in taken]


def test_faust_acks_a_batch_whose_work_was_interrupted():
    """Faust's take_events acks every event of a batch in a `finally`: a shutdown in the
    middle of the batch commits offsets whose effects never happened."""
    assert asyncio.run(_acked_after_cancelling_a_batch(guarded=False)) == [True, True, True]


def test_an_interrupted_batch_stays_unacked():
    assert asyncio.run(_acked_after_cancelling_a_batch(guarded=True)) == [False, False, False]


def test_a_finished_batch_is_acked_as_before():
    assert asyncio.run(_acked_after_cancelling_a_batch(guarded=True, finishes=True)) == [True, True, True]
