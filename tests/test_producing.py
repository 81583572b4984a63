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
