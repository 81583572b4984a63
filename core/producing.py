"""Wait for what a worker produced to reach the broker (shared by the stages' Faust wiring)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)

#: Messages Faust's producer buffer holds before the agents wait for it. Faust's 100 made the
#: agents stop every 100 table writes and drain the buffer one message at a time (a third of
#: the pipeline's time in bench/load.py); `durable` drains it before each acknowledgement anyway.
PRODUCER_BUFFER_MESSAGES = 20_000


def widen_producer_buffer(app: Any) -> None:
    """Let the agents run ahead of the producer by up to PRODUCER_BUFFER_MESSAGES messages."""
    app.producer.buffer.max_messages = PRODUCER_BUFFER_MESSAGES


async def durable(app: Any) -> None:
    """Wait until everything the Faust `app` produced so far (table changelogs included) is on
    the broker. Call it before a batch is acknowledged: Faust commits acknowledged input
    offsets without waiting for its producer, and a crash in between loses the batch's
    effects for good. A producer that is stopping (shutdown, rebalance) cannot flush: the
    batch is then read again after the restart and recognised by its rows, as after a crash.

    The buffer is drained here rather than by Faust's own flush, which gives up once no
    message left it for 0.1 s (and then returns with messages still waiting)."""
    buffer = app.producer.buffer
    while buffer.size:
        if buffer.state != "running":
            log.warning("could not flush the producer before acknowledging a batch: it is %s", buffer.state)
            return
        await asyncio.sleep(0)  # the buffer's own task hands the messages to the Kafka client
    try:
        await app.producer.flush()
    except RuntimeError as error:  # "Cannot flush: Producer not Running"
        log.warning("could not flush the producer before acknowledging a batch: %s", error)
