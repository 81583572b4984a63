"""The one place that knows Faust's and aiokafka's internals: every read or write of their
private attributes in the stages goes through here.

Written against faust-streaming 0.15.3, aiokafka 0.14.0 and mode-streaming 0.7.1 (the
versions in constraints.txt). After upgrading any of them, check the attributes below
still exist and mean the same (``tests/test_health.py`` runs them on a real worker):

- ``app.consumer._committed_offset`` (faust ``transport.consumer.Consumer``): the last
  committed offset per partition, None when none is known -- :func:`committed_offset`,
  :func:`consumer_state`.
- ``app.consumer._unacked_messages``, ``._active_partitions``, ``._acked`` and
  ``._read_offset`` (the same consumer): flow control and per-partition offsets, for the
  worker's SIGUSR1 dump -- :func:`consumer_state`.
- ``app.consumer._thread._consumer._client._conns`` (faust's ``ThreadDelegateConsumer``
  -> ``AIOKafkaConsumerThread`` -> aiokafka ``AIOKafkaConsumer`` -> ``AIOKafkaClient``):
  the client's open broker connections, each with ``connected()`` --
  :func:`broker_connected`.
- ``agent._actors`` (faust ``agents.Agent``): the agent's running actors --
  :func:`agent_actors`.
- ``faust.streams._current_event`` (a context variable): the event a stream is processing,
  which decides the changelog partition of a table write -- :func:`as_current` sets it.

Three other places touch them on purpose, each because it patches behaviour at worker start
rather than reading state, and lives where that patch is installed:

- ``territory/faust_fixes.py`` replaces ``Consumer.ack`` and ``Consumer._new_offset`` (a
  redelivered record must not block rebalances or the commit; it reads ``_unacked_messages``,
  ``_acked`` and ``_committed_offset``), ``Consumer.wait_empty`` (a rebalance waits for
  the batches in hand, not forever; it calls ``_wait_for_ack`` and
  ``_clean_unacked_messages``) and ``Recovery.on_recovery_completed`` (stream partitions are
  seeked before they are fetched again).
- ``territory/kafka_compat.py`` replaces ``AIOKafkaConsumerThread._highwaters`` of Faust's
  aiokafka driver and reads ``_ensure_consumer()._client._bootstrap_servers`` (the broker
  work-around, which imports the driver and so stays in the command-line shell).
- ``core/producing.py`` wraps the Faust producer's ``send_soon`` to keep each queued
  message's delivery future (``durable`` waits for them before a batch is acknowledged).

This module imports no Faust or aiokafka module when it is loaded (it reads attributes of
the objects handed in, so ``monitor`` and ``alerts`` may both use it); :func:`as_current`
imports ``faust.streams`` when it runs, inside a worker.
"""

from __future__ import annotations

import weakref
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

#: Copies of the connection table tried before giving up (it changes in another thread).
_COPY_ATTEMPTS = 3


def committed_offset(consumer: Any, tp: Any) -> int | None:
    """The offset the Faust `consumer` last committed for partition `tp`; None if unknown."""
    return consumer._committed_offset.get(tp)


def fetched_highwaters(app: Any, topic_names: Iterable[str]) -> Iterator[tuple[Any, int]]:
    """(partition, fetch high watermark) of this worker's assigned partitions of `topic_names`,
    for those fetched at least once (before that the lag is unknown, not zero)."""
    wanted = set(topic_names)
    for tp in app.consumer.assignment():
        if tp.topic in wanted:
            highwater = app.consumer.highwater(tp)
            if highwater is not None:
                yield tp, highwater


def broker_connected(app: Any) -> bool:
    """Whether the Kafka client of the Faust `app`'s consumer holds at least one live
    connection (aiokafka drops a connection as soon as it closes). Raises what the
    attribute reads raise while the consumer is not started, or gone."""
    client = app.consumer._thread._consumer._client  # aiokafka AIOKafkaConsumer's client
    # The consumer runs in its own thread: copy its connection table, retrying a copy
    # that raced with a change.
    for _ in range(_COPY_ATTEMPTS):
        try:
            conns = list(client._conns.values())
            break
        except RuntimeError:
            conns = []
    return any(conn.connected() for conn in conns)


def agent_actors(agent: Any) -> list[Any]:
    """The actors the Faust `agent` runs (each a mode Service with ``actor_task``)."""
    return list(agent._actors)


def consumer_state(app: Any) -> str:
    """Flow control and per-partition offsets as the Faust `app`'s consumer tracks them
    (private fields: a diagnostic, not an interface, hence the guard)."""
    try:
        consumer: Any = app.consumer  # faust.transport.consumer.Consumer; the fields are not in ConsumerT
        lines = [
            f"flow active: {app.flow_control.is_active()}, unacked messages: {len(consumer._unacked_messages)}",
            f"active partitions: {sorted(map(tuple, consumer._active_partitions or ()))}",
        ]
        for tp in sorted(consumer.assignment()):
            acked = consumer._acked.get(tp) or []
            lines.append(
                f"  {tp.topic}[{tp.partition}]: read {consumer._read_offset.get(tp)}, "
                f"committed {consumer._committed_offset.get(tp)}, acked pending commit {len(acked)}"
                f"{f' (from {min(acked)})' if acked else ''}, highwater {consumer.highwater(tp)}"
            )
        return "\n".join(lines)
    except Exception as error:  # noqa: BLE001 - a diagnostic must not fail the signal handler
        return f"consumer state unavailable: {error!r}"


@contextmanager
def as_current(event: Any) -> Iterator[None]:
    """Run the block as if `event` (a Faust ``EventT``) were the stream's current event: Faust
    tables send a write to the changelog partition of the current event (and the RocksDB store
    keys it by that partition). Sets faust.streams' private context variable, as stream
    iteration does (faust-streaming 0.15.3; tests/test_crash.py and test_scale_out.py check
    the result)."""
    from faust import streams as faust_streams

    token = faust_streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust_streams._current_event.reset(token)
