"""Send simulated events to Kafka with aiokafka, as fast as possible or paced by event time."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaProducer

from simulator.events import SimEvent

ProgressCallback = Callable[[int, int, datetime], None]

PROGRESS_EVERY = 1000


def encode_value(envelope: Mapping[str, Any]) -> bytes:
    """Compact JSON, UTF-8 (names with umlauts stay readable)."""
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


async def produce_events(
    events: Iterable[SimEvent],
    bootstrap_servers: str,
    *,
    speed: float | None = None,
    on_progress: ProgressCallback | None = None,
    linger_ms: int = 5,
    producer_config: Mapping[str, Any] | None = None,
) -> int:
    """Produce (topic, key, envelope) triples in order; returns how many were acknowledged.

    `speed`: simulated seconds per wall-clock second (2_592_000 = 30 days per second),
    measured from the first event's occurred_at; None sends as fast as possible.
    `on_progress(sent, total, occurred_at)` runs every ~1000 events and once at the end
    (`total` is 0 when `events` has no length). `producer_config` adds aiokafka
    producer options, e.g. {"max_batch_size": ...}.

    The producer is deliberately not idempotent: the embedded broker rejects
    InitProducerId, and consumers deduplicate by event_id anyway. Record timestamps
    are left to the producer's wall clock, not event time: a real broker's time-based
    retention would otherwise delete two-year-old simulated events at once.
    """
    if speed is not None and speed <= 0:
        raise ValueError(f"speed must be > 0 or None, got {speed}")
    total = len(events) if hasattr(events, "__len__") else 0  # type: ignore[arg-type]
    config = {"linger_ms": linger_ms, **(producer_config or {})}
    if config.get("enable_idempotence") or config.get("transactional_id"):
        raise ValueError("idempotent/transactional producing is not supported by the embedded broker")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, **config)
    await producer.start()
    try:
        return await _send_all(producer, events, total, speed, on_progress)
    finally:
        await producer.stop()


async def _send_all(
    producer: AIOKafkaProducer,
    events: Iterable[SimEvent],
    total: int,
    speed: float | None,
    on_progress: ProgressCallback | None,
) -> int:
    loop = asyncio.get_running_loop()
    wall_start = loop.time()
    first_at: datetime | None = None
    at: datetime | None = None
    sent = 0
    chunk: list[asyncio.Future] = []
    in_flight: list[asyncio.Future] = []
    for topic, key, envelope in events:
        at = datetime.fromisoformat(envelope["occurred_at"])
        if speed is not None:
            first_at = first_at or at
            delay = wall_start + (at - first_at).total_seconds() / speed - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        chunk.append(await producer.send(topic, value=encode_value(envelope), key=key.encode("utf-8")))
        sent += 1
        if len(chunk) >= PROGRESS_EVERY:
            # Keep one chunk in flight while the next is batched: bounded memory, errors
            # surface within two chunks, and the pipeline never drains completely.
            await asyncio.gather(*in_flight)
            in_flight, chunk = chunk, []
            if on_progress is not None:
                on_progress(sent, total, at)
    await producer.flush()
    await asyncio.gather(*in_flight, *chunk)
    if on_progress is not None and at is not None:
        on_progress(sent, total, at)
    return sent
