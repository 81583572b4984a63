"""The one place that knows Faust's and aiokafka's internals: every read of their private
attributes in the stages goes through here.

Written against faust-streaming 0.15.3, aiokafka 0.14.0 and mode-streaming 0.7.1 (the
versions in constraints.txt). After upgrading any of them, check the attributes below
still exist and mean the same (``tests/test_health.py`` runs them on a real worker):

- ``app.consumer._committed_offset`` (faust ``transport.consumer.Consumer``): the last
  committed offset per partition, None when none is known -- :func:`committed_offset`.
- ``app.consumer._thread._consumer._client._conns`` (faust's ``ThreadDelegateConsumer``
  -> ``AIOKafkaConsumerThread`` -> aiokafka ``AIOKafkaConsumer`` -> ``AIOKafkaClient``):
  the client's open broker connections, each with ``connected()`` --
  :func:`broker_connected`.
- ``agent._actors`` (faust ``agents.Agent``): the agent's running actors --
  :func:`agent_actors`.

The other place is ``territory/kafka_compat.py``: at worker start it replaces
``AIOKafkaConsumerThread._highwaters`` of Faust's aiokafka driver and reads
``_ensure_consumer()._client._bootstrap_servers`` (the broker work-around, which imports
the driver and so stays in the command-line shell).

This module imports neither Faust nor aiokafka: it only reads attributes of the objects
handed in, so ``monitor`` and ``alerts`` may both use it.
"""

from __future__ import annotations

from typing import Any

#: Copies of the connection table tried before giving up (it changes in another thread).
_COPY_ATTEMPTS = 3


def committed_offset(consumer: Any, tp: Any) -> int | None:
    """The offset the Faust `consumer` last committed for partition `tp`; None if unknown."""
    return consumer._committed_offset.get(tp)


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
