"""Faust wiring of the alert stage: store what the planner publishes, then alert once."""

from __future__ import annotations

import asyncio
import logging

import faust

from alerts.messages import alert_from_proposal, move_lines, summary_line
from alerts.store import Store
from monitor.metrics import Metrics
from territory import topics

log = logging.getLogger("territory.alerts")


def register_alerts(app: faust.App, store: Store, metrics: Metrics) -> None:
    signals_topic = app.topic(topics.SIGNALS, key_serializer="raw", value_serializer="json")
    proposals_topic = app.topic(topics.PROPOSALS, key_serializer="raw", value_serializer="json")
    alerts_topic = app.topic(topics.ALERTS, key_serializer="raw", value_serializer="json")

    @app.agent(signals_topic, name="signal-store")
    async def store_signals(stream: faust.StreamT) -> None:
        async for signal in stream:
            await asyncio.to_thread(store.save_signal, signal)

    @app.agent(proposals_topic, name="proposal-alerts")
    async def alert_proposals(stream: faust.StreamT) -> None:
        async for proposal in stream:
            # Stored first; a redelivered, already alerted proposal is recognised and skipped.
            if not await asyncio.to_thread(store.save_proposal, proposal):
                continue
            alert = alert_from_proposal(proposal)
            await alerts_topic.send(key=proposal["proposal_id"].encode(), value=alert)
            metrics.alerts.labels("kafka").inc()
            log.warning(summary_line(proposal))
            for line in move_lines(proposal):
                log.warning(line)
            metrics.alerts.labels("log").inc()
            await asyncio.to_thread(store.mark_alerted, proposal["proposal_id"])
