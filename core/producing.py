"""Wait for what a worker produced to reach the broker (shared by the stages' Faust wiring).

Table rows leave a Faust app through its producer buffer (`send_soon`): a queue emptied by one
task that hands each message to the Kafka client. The buffer's own flush is not a delivery
guarantee: it returns as soon as the queue is empty, while the task may still be holding the
last message, and it gives up after 0.1 s without progress (a slow hand-over on a loaded
machine). So every message given to the buffer is tracked here by its delivery future, and
`durable` waits for those futures themselves.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

log = logging.getLogger(__name__)

#: How often a wait for deliveries checks that the producer is still running.
_POLL_S = 1.0

#: Batches whose work has started and not ended (see `batches_in_hand`).
_in_hand = 0


class _Deliveries:
    """The delivery futures of the messages given to a producer's buffer and not yet delivered."""

    def __init__(self, producer: Any) -> None:
        self.pending: set[asyncio.Future] = set()
        self.failures: list[BaseException] = []
        hand_to_buffer = producer.send_soon

        def send_soon(future: asyncio.Future) -> None:
            self.pending.add(future)
            future.add_done_callback(self._settled)
            hand_to_buffer(future)

        producer.send_soon = send_soon

    def _settled(self, future: asyncio.Future) -> None:
        self.pending.discard(future)
        if not future.cancelled() and future.exception() is not None:
            self.failures.append(future.exception())  # type: ignore[arg-type]


def track_deliveries(app: Any) -> None:
    """Track every message the Faust `app` queues from now on; call it when the app is built,
    before anything is produced."""
    producer = app.producer
    if not isinstance(getattr(producer, "territory_deliveries", None), _Deliveries):
        producer.territory_deliveries = _Deliveries(producer)


async def durable(app: Any) -> None:
    """Wait until everything the Faust `app` produced so far (table changelogs included) is on
    the broker. Call it before a batch is acknowledged: Faust commits acknowledged input
    offsets without waiting for its producer, and a crash in between loses the batch's
    effects for good. A producer that is stopping (shutdown, rebalance) cannot deliver: the
    batch is then read again after the restart and recognised by its rows, as after a crash.
    A message the broker refused is logged as an error."""
    producer = app.producer
    deliveries = getattr(producer, "territory_deliveries", None)
    if not isinstance(deliveries, _Deliveries):
        raise RuntimeError("durable() needs track_deliveries(app) when the app is built")
    while deliveries.pending:
        if producer.buffer.state != "running":
            log.warning(
                "producer stopping with %d messages undelivered; the batch will be read again",
                len(deliveries.pending),
            )
            return
        await asyncio.wait(set(deliveries.pending), timeout=_POLL_S)
    for failure in deliveries.failures:
        # Raising would crash the worker into the same batch again and again: said loudly instead.
        log.error("the broker refused a message of this batch, it is not stored: %r", failure)
    deliveries.failures.clear()
    try:
        # What went to the Kafka client directly (`topic.send`) waits in its own batches.
        await producer.flush()
    except RuntimeError as error:  # "Cannot flush: Producer not Running"
        log.warning("could not flush the producer before acknowledging a batch: %s", error)


@contextmanager
def unfinished_batch_stays_unacked(events: Sequence[Any]) -> Iterator[None]:
    """Run a batch's work so that its input offsets are committed only if the work finished.

    Faust's `take_events` acks every event of its batch in a `finally`, and a stopping stream
    closes that generator at once, while the agent is still in the middle of the batch's work
    (a worker's shutdown; the consumer commits the acknowledged offsets right after): the
    batch's effects were lost for good. So the work holds a reference of its own on each
    message, which that ack does not take away, and gives it back only once the work is done
    (or failed with an Exception, left to Faust as before: holding a failed batch would stop
    the partition's commits for good). A batch whose work was cancelled is read again after
    the restart, and recognised by its rows where it was applied."""
    global _in_hand
    held = []
    for event in events:
        message = event.message
        extra = 1 if message.refcount else 2  # a message no stream counted yet: one ack leaves one
        message.incref(extra)
        held.append((message, extra))
    _in_hand += 1
    try:
        yield
    except Exception:
        _release(held)
        raise
    else:
        _release(held)
    finally:
        _in_hand -= 1


def batches_in_hand() -> int:
    """How many batches of this process are being worked on right now (inside
    `unfinished_batch_stays_unacked`): a rebalance waits for them, and only for them."""
    return _in_hand


def _release(held: Sequence[tuple[Any, int]]) -> None:
    for message, extra in held:
        message.decref(extra)
