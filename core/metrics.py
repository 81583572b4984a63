"""Prometheus metrics of the worker, on one registry passed in (tests use a fresh one)."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from typing import TypedDict

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

NAMESPACE = "territory"
PACKAGE = "territory-monitor"  # pyproject.toml [project] name
PROCESSING_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
MOVES_BUCKETS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
#: Proposal lifecycle states exported by territory_store_proposals.
PROPOSAL_STATES = ("pending", "approved", "rejected", "superseded", "applied")


def package_version() -> str:
    """The installed version of the territory-monitor distribution ("unknown" when not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        return "unknown"


class _Common(TypedDict):
    """The keyword arguments every metric of the worker shares."""

    namespace: str
    registry: CollectorRegistry


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
    rep_quota_attainment: Gauge
    rep_quota_pace: Gauge
    imbalance: Gauge
    district_potential: Gauge
    district_accounts: Gauge
    district_imbalance: Gauge
    sales_region_potential: Gauge
    sales_region_accounts: Gauge
    signals: Counter
    proposals: Counter
    rebalance_seconds: Histogram
    proposal_moves: Gauge
    solving: Gauge
    alerts: Counter
    watermark: Gauge
    planner_updates: Counter
    planner_errors: Counter
    model_error: Gauge
    # Operations metrics (lag, latency, detector state, store, deliveries, build, readiness).
    intake_lag: Gauge
    planner_lag: Gauge
    intake_processing_seconds: Histogram
    out_of_band: Gauge
    rebalancer_moves: Histogram
    store_proposals: Gauge
    deliveries: Counter
    outbox_pending: Gauge
    build_info: Gauge
    worker_ready: Gauge
    # Store outages and scale-out.
    store_errors: Counter
    assigned_partitions: Gauge
    leader: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> "Metrics":
        registry = registry if registry is not None else CollectorRegistry()
        kw: _Common = {"namespace": NAMESPACE, "registry": registry}
        return cls(
            registry=registry,
            events=Counter(
                "events",
                "Input messages by topic and outcome (applied, duplicate, deadlettered).",
                ["topic", "outcome"],
                subsystem="intake",
                **kw,
            ),
            deadlettered=Counter(
                "deadlettered",
                "Input messages dead-lettered, by topic and offending field.",
                ["topic", "field"],
                subsystem="intake",
                **kw,
            ),
            held=Gauge("held_events", "Events waiting for their account to arrive.", subsystem="intake", **kw),
            rep_potential=Gauge(
                "potential", "Territory potential per rep (trailing sales).", ["rep"], subsystem="rep", **kw
            ),
            rep_workload=Gauge(
                "workload_minutes", "Activity minutes per rep over the trailing window.", ["rep"], subsystem="rep", **kw
            ),
            rep_accounts=Gauge("accounts", "Accounts served per rep.", ["rep"], subsystem="rep", **kw),
            rep_share=Gauge("potential_share_ratio", "Rep's share of total potential.", ["rep"], subsystem="rep", **kw),
            rep_fair_share=Gauge(
                "fair_share_ratio", "Rep's capacity-weighted fair share.", ["rep"], subsystem="rep", **kw
            ),
            rep_quota_attainment=Gauge(
                "quota_attainment_ratio",
                "Rep's sales of the calendar year's complete months / their quota (reps with a quota).",
                ["rep"],
                subsystem="rep",
                **kw,
            ),
            rep_quota_pace=Gauge(
                "quota_pace_ratio",
                "Rep's sales of the year so far / what their quota expects by now (seasonal; reps with a quota).",
                ["rep"],
                subsystem="rep",
                **kw,
            ),
            imbalance=Gauge(
                "imbalance_ratio", "Largest |share / fair share - 1| over reps.", subsystem="territory", **kw
            ),
            district_potential=Gauge(
                "potential",
                "Territory potential per district (its reps' sum).",
                ["district"],
                subsystem="district",
                **kw,
            ),
            district_accounts=Gauge(
                "accounts", "Accounts served per district.", ["district"], subsystem="district", **kw
            ),
            district_imbalance=Gauge(
                "imbalance_ratio",
                "Largest |share / fair share - 1| over the district's reps (shares as the scope computes them).",
                ["district"],
                subsystem="district",
                **kw,
            ),
            sales_region_potential=Gauge(
                "potential",
                "Territory potential per sales region (its districts' reps' sum).",
                ["sales_region"],
                subsystem="sales_region",
                **kw,
            ),
            sales_region_accounts=Gauge(
                "accounts",
                "Accounts served per sales region.",
                ["sales_region"],
                subsystem="sales_region",
                **kw,
            ),
            signals=Counter(
                "signals",
                "Detector signals published, by kind and state.",
                ["kind", "state"],
                subsystem="detector",
                **kw,
            ),
            proposals=Counter(
                "proposals",
                "Rebalance proposals published, by solver status.",
                ["status"],
                subsystem="rebalancer",
                **kw,
            ),
            rebalance_seconds=Histogram(
                "solve_seconds",
                "Rebalancer solve time.",
                subsystem="rebalancer",
                buckets=(0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120),
                **kw,
            ),
            proposal_moves=Gauge("last_proposal_moves", "Moves in the latest proposal.", subsystem="rebalancer", **kw),
            solving=Gauge(
                "solving",
                "1 from a judgement that asks for a rebalance until its proposal is sent, else 0.",
                subsystem="rebalancer",
                **kw,
            ),
            alerts=Counter("alerts", "Alerts sent, by sink.", ["sink"], subsystem="alerts", **kw),
            watermark=Gauge(
                "event_time_watermark_seconds",
                "Newest event time seen by the planner (Unix).",
                subsystem="planner",
                **kw,
            ),
            planner_updates=Counter(
                "updates", "Account and rep snapshots applied by the planner.", subsystem="planner", **kw
            ),
            planner_errors=Counter("errors", "Judgements that failed (see the worker log).", subsystem="planner", **kw),
            model_error=Gauge(
                "mean_absolute_error",
                "Potential model's prequential MAE of the last monthly scoring (yearly potential, currency units).",
                subsystem="model",
                **kw,
            ),
            intake_lag=Gauge(
                "lag_messages",
                "Input messages not yet read: fetch high watermark minus the "
                "consumer's position, per input topic-partition.",
                ["topic", "partition"],
                subsystem="intake",
                **kw,
            ),
            planner_lag=Gauge(
                "lag_messages",
                "Records on territory.state the planner has not applied yet: the fetch high "
                "watermark minus the offset after the last record it applied (only on the worker "
                "that holds the planner, once it has applied one).",
                ["partition"],
                subsystem="planner",
                **kw,
            ),
            intake_processing_seconds=Histogram(
                "processing_seconds",
                "Seconds from the Kafka record's timestamp to the event applied by the intake.",
                subsystem="intake",
                buckets=PROCESSING_BUCKETS,
                **kw,
            ),
            out_of_band=Gauge(
                "out_of_band",
                "Subjects currently out of band (signal open), per detector kind.",
                ["kind"],
                subsystem="detector",
                **kw,
            ),
            rebalancer_moves=Histogram(
                "moves", "Moves per rebalance proposal.", subsystem="rebalancer", buckets=MOVES_BUCKETS, **kw
            ),
            store_proposals=Gauge(
                "proposals", "Stored proposals per lifecycle state.", ["state"], subsystem="store", **kw
            ),
            deliveries=Counter(
                "deliveries",
                "Alert deliveries by sink and outcome (sent, failed, skipped).",
                ["sink", "outcome"],
                subsystem="alerts",
                **kw,
            ),
            outbox_pending=Gauge(
                "outbox_pending", "Alert deliveries still pending in the outbox.", subsystem="alerts", **kw
            ),
            build_info=Gauge("build_info", "Version of the worker; always 1.", ["version", "python"], **kw),
            store_errors=Counter(
                "errors",
                "Store calls that failed (database unreachable) and are retried, by operation.",
                ["operation"],
                subsystem="store",
                **kw,
            ),
            assigned_partitions=Gauge(
                "assigned_partitions",
                "Topic-partitions this worker consumes, by role "
                "(intake: input topics; planner: the state topic; alerts: signals and "
                "proposals).",
                ["role"],
                subsystem="worker",
                **kw,
            ),
            leader=Gauge(
                "leader",
                "1 on the worker that runs the leader-only jobs (alert delivery, weekly "
                "review, publishing approvals), else 0.",
                subsystem="worker",
                **kw,
            ),
            worker_ready=Gauge(
                "ready", "1 when the worker is ready (GET /readyz answers 200), else 0.", subsystem="worker", **kw
            ),
        )._with_build_info()

    def _with_build_info(self) -> "Metrics":
        self.build_info.labels(package_version(), platform.python_version()).set(1)
        return self

    def serve(self, port: int, address: str = "127.0.0.1") -> int:
        """Expose /metrics on `address:port`; returns the bound port."""
        server, _thread = start_http_server(port, addr=address, registry=self.registry)
        return int(server.server_address[1])
