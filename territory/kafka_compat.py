"""Work-arounds for Kafka-protocol brokers that answer "latest offset" wrongly.

The embedded broker answers ListOffsets(latest) with the start of the newest batch + 1
instead of the log end (docs/ARCHITECTURE.md, quirk 2), while fetch is right. Faust trusts
that answer as the end of a changelog when it recovers a table, so a restarted worker
stopped early and kept stale values. `install_exact_end_offsets` makes Faust's consumer
find the end by reading from the reported offset until nothing more comes: the same
answer as ListOffsets on a correct broker, a little slower, and only at recovery.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition

log = logging.getLogger(__name__)

_installed = False


async def probe_end_offsets(
    bootstrap_servers: str | list[str],
    reported: Mapping[TopicPartition, int],
    *,
    quiet_ms: int = 300,
    **client_options: Any,
) -> dict[TopicPartition, int]:
    """True log end per partition: read on from the reported end until a poll comes back empty."""
    ends = dict(reported)
    if not ends:
        return ends
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        **client_options,
    )
    await consumer.start()
    try:
        consumer.assign(list(ends))
        for tp, offset in ends.items():
            consumer.seek(tp, offset)
        while True:
            batches = await consumer.getmany(timeout_ms=quiet_ms)
            if not batches:
                return ends
            for tp, records in batches.items():
                if records:
                    ends[tp] = max(ends[tp], records[-1].offset + 1)
    finally:
        await consumer.stop()


def install_exact_end_offsets(**client_options: Any) -> None:
    """Patch Faust's aiokafka driver so table recovery reads changelogs to their real end.
    `client_options`: how to connect (TLS, SASL), as for every other client."""
    global _installed
    if _installed:
        return
    from faust.transport.drivers import aiokafka as driver

    reported_highwaters = driver.AIOKafkaConsumerThread._highwaters

    async def exact_highwaters(self, partitions: Iterable[TopicPartition]) -> Mapping[TopicPartition, int]:
        partitions = list(partitions)
        reported = await reported_highwaters(self, partitions)
        bootstrap = self._ensure_consumer()._client._bootstrap_servers
        exact = await probe_end_offsets(bootstrap, reported, **client_options)
        corrected = {tp: (reported[tp], exact[tp]) for tp in reported if exact[tp] != reported[tp]}
        if corrected:
            log.info(
                "corrected %d end offsets the broker reported short: %s",
                len(corrected),
                ", ".join(f"{tp.topic}[{tp.partition}] {a}->{b}" for tp, (a, b) in list(corrected.items())[:5]),
            )
        return exact

    setattr(driver.AIOKafkaConsumerThread, "_highwaters", exact_highwaters)  # patch a method of faust's class
    _installed = True
