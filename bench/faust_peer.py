"""The plainest stateful Faust app a user would write for the same input: the load
benchmark's peer (bench/load.py runs it on the same broker and the same events).

One agent over the six input topics, JSON decode, one Table update per event (events seen
per account), a Prometheus counter of events. No validation, no ordering, no planner.

    PEER_KAFKA_URL=kafka://127.0.0.1:9092 PEER_APP_ID=peer PEER_PARTITIONS=4 \\
        PEER_METRICS_PORT=9300 PEER_DATA_DIR=/tmp/peer python bench/faust_peer.py worker
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import faust
from prometheus_client import Counter, start_http_server

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core import topics  # noqa: E402

app = faust.App(
    os.environ.get("PEER_APP_ID", "peer"),
    broker=os.environ.get("PEER_KAFKA_URL", "kafka://127.0.0.1:9092"),
    datadir=os.environ.get("PEER_DATA_DIR", "/tmp/faust-peer"),
    topic_partitions=int(os.environ.get("PEER_PARTITIONS", "4")),
    web_enabled=False,
)
inputs = app.topic(*topics.INPUT_TOPICS, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
events_per_account = app.Table(
    "events-per-account", default=int, partitions=int(os.environ.get("PEER_PARTITIONS", "4"))
)
events_total = Counter("peer_events_total", "Events the peer applied")


@app.agent(inputs)
async def count(stream: faust.StreamT) -> None:
    async for value in stream:
        event = json.loads(value)
        data = event.get("data") or {}
        events_per_account[data.get("account_id") or data.get("rep_id") or ""] += 1
        events_total.inc()


if __name__ == "__main__":
    start_http_server(int(os.environ.get("PEER_METRICS_PORT", "9300")), addr="127.0.0.1")
    app.main()
