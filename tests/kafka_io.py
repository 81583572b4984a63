"""Test helpers that talk to a real broker: produce contract events, read output topics."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from typing import Any, Callable, Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition


def produce(bootstrap: str, messages: Iterable[tuple[str, str | None, Any]]) -> int:
    """Send (topic, key, value) in order; dict values are JSON-encoded, bytes go as they are."""

    async def run() -> int:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        count = 0
        try:
            for topic, key, value in messages:
                raw = value if isinstance(value, (bytes, type(None))) else json.dumps(value).encode()
                await producer.send(topic, raw, key=key.encode() if key is not None else None)
                count += 1
            await producer.flush()
        finally:
            await producer.stop()
        return count

    return asyncio.run(run())


def read_topic(
    bootstrap: str, topic: str, *, until: Callable[[list[dict]], bool], timeout_s: float = 60.0
) -> list[dict]:
    """Read `topic` from the start (no consumer group) until `until(messages)` or the timeout."""

    async def run() -> list[dict]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
        await consumer.start()
        try:
            partitions = await _partitions(consumer, topic)
            consumer.assign([TopicPartition(topic, p) for p in partitions])
            await consumer.seek_to_beginning()
            found: list[dict] = []
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and not until(found):
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    found.extend(json.loads(record.value) for record in records)
            return found
        finally:
            await consumer.stop()

    return asyncio.run(run())


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[int]:
    for _ in range(50):
        partitions = consumer.partitions_for_topic(topic)
        if partitions:
            return sorted(partitions)
        await consumer._client.force_metadata_update()  # topic metadata may not be cached yet
        await asyncio.sleep(0.1)
    raise AssertionError(f"topic {topic} not found")


def metric_samples(port: int, name: str, labels: dict[str, str] | None = None) -> list[float]:
    """The values of the samples of `name` (with these labels) on a worker's /metrics page."""
    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in (labels or {}).items())
    ]


def metric_value(port: int, name: str, labels: dict[str, str] | None = None) -> float:
    """Sum of the samples of `name` (with these labels) on a worker's /metrics page."""
    return sum(metric_samples(port, name, labels), 0.0)


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except OSError:
            pass  # the worker's metrics endpoint may not be up yet
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


#: The value `read_all` gives a deleted key's record (a JSON null is None).
TOMBSTONE = object()


def read_all(
    bootstrap: str, topic: str, *, quiet_s: float = 2.0, timeout_s: float = 60.0
) -> list[tuple[bytes | None, dict]]:
    """Every (key, value) of `topic`, read until nothing new arrives for `quiet_s` (a
    tombstone's value is `TOMBSTONE`)."""

    async def run() -> list[tuple[bytes | None, dict]]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            partitions = await _partitions(consumer, topic)
            consumer.assign([TopicPartition(topic, p) for p in partitions])
            await consumer.seek_to_beginning()
            found: list[tuple[bytes | None, dict]] = []
            deadline, last_new = time.monotonic() + timeout_s, time.monotonic()
            while time.monotonic() < deadline and time.monotonic() - last_new < quiet_s:
                batches = await consumer.getmany(timeout_ms=300)
                for records in batches.values():
                    found.extend(
                        (record.key, TOMBSTONE if record.value is None else json.loads(record.value))
                        for record in records
                    )
                    last_new = time.monotonic()
            return found
        finally:
            await consumer.stop()

    return asyncio.run(run())


def end_offsets(bootstrap: str, partitions: dict[str, int]) -> dict[TopicPartition, int]:
    """True end offsets of {topic: partition count} (read, not asked: the embedded broker
    answers ListOffsets short)."""
    from territory.kafka_compat import probe_end_offsets

    tps = {TopicPartition(topic, p): 0 for topic, count in partitions.items() for p in range(count)}
    return asyncio.run(probe_end_offsets(bootstrap, tps))


def committed_offsets(bootstrap: str, group: str, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
    """The group's committed offsets, asked without joining the group."""

    async def run() -> dict[TopicPartition, int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
        await consumer.start()
        try:
            return {tp: (await consumer.committed(tp)) or 0 for tp in partitions}
        finally:
            await consumer.stop()

    return asyncio.run(run())
