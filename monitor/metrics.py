"""Prometheus metrics of the worker, on one registry passed in (tests use a fresh one)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

NAMESPACE = "territory"


@dataclass
class Metrics:
    registry: CollectorRegistry
    events: Counter
    deadlettered: Counter
    held: Gauge
    rep_potential: Gauge
    rep_workload: Gauge
    rep_accounts: Gauge
    rep_share: Gauge
    rep_fair_share: Gauge
    imbalance: Gauge
    signals: Counter
    proposals: Counter
    rebalance_seconds: Histogram
    proposal_moves: Gauge
    alerts: Counter
    watermark: Gauge
    planner_updates: Counter
    planner_errors: Counter
    model_error: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> "Metrics":
        registry = registry if registry is not None else CollectorRegistry()
        kw = {"namespace": NAMESPACE, "registry": registry}
        return cls(
            registry=registry,
            events=Counter("events", "Input messages by topic and outcome (applied, duplicate, deadlettered).",
                           ["topic", "outcome"], subsystem="intake", **kw),
            deadlettered=Counter("deadlettered", "Input messages dead-lettered, by topic and offending field.",
                                 ["topic", "field"], subsystem="intake", **kw),
            held=Gauge("held_events", "Events waiting for their account to arrive.", subsystem="intake", **kw),
            rep_potential=Gauge("potential", "Territory potential per rep (trailing sales).", ["rep"],
                                subsystem="rep", **kw),
            rep_workload=Gauge("workload_minutes", "Activity minutes per rep over the trailing window.", ["rep"],
                               subsystem="rep", **kw),
            rep_accounts=Gauge("accounts", "Accounts served per rep.", ["rep"], subsystem="rep", **kw),
            rep_share=Gauge("potential_share_ratio", "Rep's share of total potential.", ["rep"],
                            subsystem="rep", **kw),
            rep_fair_share=Gauge("fair_share_ratio", "Rep's capacity-weighted fair share.", ["rep"],
                                 subsystem="rep", **kw),
            imbalance=Gauge("imbalance_ratio", "Largest |share / fair share - 1| over reps.",
                            subsystem="territory", **kw),
            signals=Counter("signals", "Detector signals published, by kind and state.", ["kind", "state"],
                            subsystem="detector", **kw),
            proposals=Counter("proposals", "Rebalance proposals published, by solver status.", ["status"],
                              subsystem="rebalancer", **kw),
            rebalance_seconds=Histogram("solve_seconds", "Rebalancer solve time.", subsystem="rebalancer",
                                        buckets=(0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120), **kw),
            proposal_moves=Gauge("last_proposal_moves", "Moves in the latest proposal.", subsystem="rebalancer",
                                 **kw),
            alerts=Counter("alerts", "Alerts sent, by sink.", ["sink"], subsystem="alerts", **kw),
            watermark=Gauge("event_time_watermark_seconds", "Newest event time seen by the planner (Unix).",
                            subsystem="planner", **kw),
            planner_updates=Counter("updates", "Account and rep snapshots applied by the planner.",
                                    subsystem="planner", **kw),
            planner_errors=Counter("errors", "Judgements that failed (see the worker log).",
                                   subsystem="planner", **kw),
            model_error=Gauge("mean_absolute_error", "Potential model's prequential MAE of the last monthly "
                              "scoring (yearly potential, currency units).", subsystem="model", **kw),
        )

    def serve(self, port: int, address: str = "127.0.0.1") -> int:
        """Expose /metrics on `address:port`; returns the bound port."""
        server, _thread = start_http_server(port, addr=address, registry=self.registry)
        return int(server.server_address[1])
