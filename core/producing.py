"""Wait for what a worker produced to reach the broker (shared by the stages' Faust wiring)."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


async def durable(app: Any) -> None:
    """Wait until everything the Faust `app` produced so far (table changelogs included) is on
    the broker. Call it before a batch is acknowledged: Faust commits acknowledged input
    offsets without waiting for its producer, and a crash in between loses the batch's
    effects for good. A producer that is stopping (shutdown, rebalance) cannot flush: the
    batch is then read again after the restart and recognised by its rows, as after a crash."""
    try:
        await app.producer.flush()
    except RuntimeError as error:  # "Cannot flush: Producer not Running"
        log.warning("could not flush the producer before acknowledging a batch: %s", error)
